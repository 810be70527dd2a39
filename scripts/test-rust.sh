#!/usr/bin/env bash
# The Rust workspace: formatting, lints, every test (unit, integration, doc).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# apikeys-http's axum mounts (feature `router`, off by default): lints, the
# secret-scanning receiver over sockets, the management API's mount and socket tests.
cargo clippy --locked -p apikeys-http --all-targets --features router -- -D warnings
cargo test --locked -p apikeys-http --features router --lib --test scanning_router --test manage
cargo test --locked -p apikeys-http --features router --doc
# The README's first command must keep working.
cargo run --quiet --locked --example quickstart >/dev/null
echo "quickstart: ran"
