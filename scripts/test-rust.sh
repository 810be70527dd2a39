#!/usr/bin/env bash
# The Rust workspace: formatting, lints, every test (unit, integration, doc).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# apikeys-http's axum mounts (feature `router`, off by default): lints and the
# secret-scanning receiver over sockets.
cargo clippy -p apikeys-http --all-targets --features router --locked -- -D warnings
cargo test -p apikeys-http --features router --locked --test scanning_router
# The README's first command must keep working.
cargo run --quiet --locked --example quickstart >/dev/null
echo "quickstart: ran"
