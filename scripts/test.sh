#!/usr/bin/env bash
# Runs every check streamgate has: formatting, lints, the wasm32 build of the core, the
# Rust test suites and the interop suite against real peers. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
started=$SECONDS

scripts/setup.sh --peers

step "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "Lints (clippy, warnings are errors; the core's .clippy.toml forbids clocks and OS randomness)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Core builds for wasm32-unknown-unknown"
cargo build -p streamgate-core --target wasm32-unknown-unknown --release --locked

step "Rust tests (unit, vectors, reason codes, attacks, property tests, CLI)"
cargo test --workspace --locked

step "Interop against real peers (PyJWT, akamai-edgeauth, nginx secure_link)"
cargo build -p streamgate-cli --locked
.venv/bin/python tests/interop/peers.py target/debug/streamgate

printf '\nall checks passed in %ss\n' "$((SECONDS - started))"
