#!/usr/bin/env bash
# The API Access Keys page in a real browser (docs/management.md, "Tested in
# a browser"): Debian's headless Chromium, driven by playwright-core from
# npm, against the example server crates/apikeys-http/examples/management.rs.
# On a fresh machine (as root) it installs Chromium from Debian's packages.
# Writes docs/management-page.png when UPDATE_SCREENSHOT=1.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing chromium from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq chromium >/dev/null
    else
        echo "test-browser.sh: $CHROMIUM is missing; install Debian's chromium package (as root)" >&2
        exit 1
    fi
fi

cargo build --quiet --locked -p apikeys-http --features router --example management
target_dir="$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
server="$target_dir/debug/examples/management"

cd crates/apikeys-http/browser
npm ci --no-audit --no-fund --silent
shot=()
if [ "${UPDATE_SCREENSHOT:-0}" = 1 ]; then
    shot=("$OLDPWD/docs/management-page.png")
fi
CHROMIUM="$CHROMIUM" node test.mjs "$server" "${shot[@]}"
