#!/usr/bin/env bash
# Runs every test in every language: Rust (fmt, clippy, tests), Python, Node,
# then the packaged artifacts (scripts/test-packages.sh).
# Sets up everything it needs on a fresh machine (services, venv, npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."

# Database servers and other services the tests need; exports their URLs and
# stops them again when this script exits.
# shellcheck source=scripts/services.sh
source scripts/services.sh
# shellcheck source=scripts/redis.sh
source scripts/redis.sh

bash scripts/test-rust.sh
# The API Access Keys page in headless Chromium (installs it if missing).
bash scripts/test-browser.sh
bash scripts/test-python.sh
bash scripts/test-node.sh
# The shipped artifacts (crates, wheels, npm tarballs) installed the way users
# install them, reusing what the two suites above built.
bash scripts/test-packages.sh
echo "all test suites passed"
