#!/usr/bin/env bash
# Runs every test in every language: Rust (fmt, clippy, tests), Python, Node,
# then the packaged artifacts (scripts/test-packages.sh).
# Sets up everything it needs on a fresh machine (services, venv, npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each suite's wall-clock time, printed at the end (where CI's time goes).
times=()
timed() {
    local t=$SECONDS
    "$@"
    times+=("$(printf '%5d s  %s' $((SECONDS - t)) "$*")")
}

# Database servers and other services the tests need; exports their URLs and
# stops them again when this script exits.
t=$SECONDS
# shellcheck source=scripts/services.sh
source scripts/services.sh
# shellcheck source=scripts/redis.sh
source scripts/redis.sh
times+=("$(printf '%5d s  %s' $((SECONDS - t)) "services (PostgreSQL, Redis)")")

timed bash scripts/test-rust.sh
# The API Access Keys page in headless Chromium (installs it if missing).
timed bash scripts/test-browser.sh
timed bash scripts/test-python.sh
timed bash scripts/test-node.sh
# The shipped artifacts (crates, wheels, npm tarballs) installed the way users
# install them, reusing what the two suites above built.
timed bash scripts/test-packages.sh
echo "all test suites passed; time per suite:"
printf '%s\n' "${times[@]}"
echo "$(printf '%5d s' "$SECONDS")  in all"
