#!/usr/bin/env bash
# The Node package (bindings/node): installs its npm dev dependencies (from the
# committed package-lock.json), builds the addon with `napi build --platform
# --release` (on Linux x64: for glibc 2.17, `--use-napi-cross`), checks that the committed generated files (binding.js,
# index.d.ts) are what the build wrote, runs the tests with `node --test` and
# the TypeScript check (`tsc --noEmit --strict`) of a typed example using every call.
#
# The store and rate-limit tests run against real servers: PostgreSQL
# (APIKEYS_TEST_POSTGRES_URL, from scripts/services.sh) and Redis
# (APIKEYS_TEST_REDIS_URL, from scripts/redis.sh). scripts/test.sh sources both
# first; run by hand, source them first too. Without them this script fails:
# those tests are never skipped.
set -euo pipefail
cd "$(dirname "$0")/../bindings/node"

command -v node >/dev/null || { echo "test-node.sh: node is not installed (Node 20 or newer is needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "test-node.sh: npm is not installed" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "test-node.sh: Node $(node --version) is too old; Node 20 or newer is needed" >&2
    exit 1
fi
echo "node $(node --version), npm $(npm --version)"

missing=()
[ -n "${APIKEYS_TEST_POSTGRES_URL:-}" ] || missing+=("APIKEYS_TEST_POSTGRES_URL (source scripts/services.sh)")
[ -n "${APIKEYS_TEST_REDIS_URL:-}" ] || missing+=("APIKEYS_TEST_REDIS_URL (source scripts/redis.sh)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "test-node.sh: not set: ${missing[*]}; run scripts/test.sh, or source those scripts first" >&2
    exit 1
fi
# The Express and pdjs tests fail rather than skip when their packages are missing,
# or openssl (the pdjs Events client speaks only https: the tests make a throwaway certificate).
export APIKEYS_REQUIRE_TEST_DEPS=1
if ! command -v openssl >/dev/null 2>&1; then
    echo "test-node.sh: installing Debian's openssl (for the pdjs tests' certificate)"
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl) >/dev/null
    else
        (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl) >/dev/null
    fi
fi

if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
else
    npm install --no-audit --no-fund
fi

# The addon users install: on Linux x64 it is linked against glibc 2.17 with
# napi-rs's own cross toolchain (`--use-napi-cross`, fetched from npm into
# ~/.napi-rs), so it loads on any glibc distribution since CentOS 7, and
# stripped (`--strip`: the release profile keeps line tables, 30 MB of them);
# scripts/test-packages.sh packs this very file and checks it with objdump -T.
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
    npm run build -- --target x86_64-unknown-linux-gnu --use-napi-cross --strip
else
    npm run build
fi

# The per-platform packages (npm/*) are what `napi create-npm-dirs` writes for
# napi.targets in package.json; they are committed, so check they are current.
npx napi create-npm-dirs >/dev/null
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    if [ -n "$(git status --porcelain -- npm)" ] || ! git diff --exit-code -- npm; then
        git status --short -- npm >&2
        echo "test-node.sh: npm/ differs from what 'napi create-npm-dirs' writes; run it in bindings/node and commit npm/" >&2
        exit 1
    fi
fi

# The generated loader and types are committed; a build must not change them.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    if ! git diff --exit-code -- binding.js index.d.ts; then
        echo "test-node.sh: binding.js or index.d.ts differ from what 'npm run build' generates;" >&2
        echo "run 'npm run build' in bindings/node and commit them" >&2
        exit 1
    fi
fi

npm test
npm run typecheck
# A smoke run of the Express adapter's benchmark (docs/performance.md, "Adapters").
node bench-adapters.js --quick
echo "node: tests and type check passed"
