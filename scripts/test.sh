#!/usr/bin/env bash
# Runs every check streamgate has: formatting, lints, the wasm32 build of the core, the
# Rust test suites, a bounded fuzzing run of every target, the interop suite against real peers,
# `streamgate serve` behind nginx and Caddy and on two nodes sharing Redis, and the npm package's build and
# suites in two Node versions and a real browser, and the edge gate end to end in workerd
# with stock players (hls.js and dash.js in Chromium, VLC).
# Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Incremental compilation only helps a second build of an edited tree; here it would keep
# gigabytes of session data next to the build (a full run filled a CI disk with it once).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
started=$SECONDS

scripts/setup.sh --peers --fuzz

step "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "Lints (clippy, warnings are errors; the core's .clippy.toml forbids clocks and OS randomness)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Lints of the core without its default features (the HMAC-only build of streamgate/hmac)"
cargo clippy -p streamgate-core --all-targets --no-default-features --locked -- -D warnings

step "Core builds for wasm32-unknown-unknown"
cargo build -p streamgate-core --target wasm32-unknown-unknown --release --locked

step "Rust tests (unit, vectors, reason codes, attacks, property tests, CLI, streamgate serve on loopback)"
cargo test --workspace --locked
cargo test -p streamgate-core --no-default-features --locked

step "Fuzzing smoke: every target for 15 s (long runs by hand: scripts/fuzz.sh 3600)"
scripts/fuzz.sh 15

step "Interop against real peers (PyJWT, akamai-edgeauth, nginx secure_link)"
cargo build -p streamgate-cli --locked
.venv/bin/python tests/interop/peers.py target/debug/streamgate

step "The README's install command (cargo install --profile cli), into target/install"
# The same target directory as every other build, so the bench smoke below reuses it.
cargo install --locked --profile cli --path crates/streamgate-cli --root target/install --target-dir target --force --quiet
installed=target/install/bin/streamgate

step "streamgate serve (the installed binary) behind real proxies: nginx auth_request and Caddy forward_auth, the example configs in deploy/"
python3 tests/serve/proxies.py "$installed"

step "streamgate serve (the installed binary) on several nodes: two processes sharing one redis-server"
python3 tests/serve/nodes.py "$installed"

step "npm package: build (wasm-bindgen, wasm-opt, esbuild) and size report"
(cd npm && npm run --silent build)

step "npm package tests in Node $(node --version) (API, interop, types, Chromium + hls.js, npm pack + Vite)"
(cd npm && node --test --test-concurrency=1 test/*.test.mjs test/*.test.cjs)

step "npm package tests in Node $(npm/node_modules/.bin/node --version)"
(cd npm && node_modules/.bin/node --test --test-concurrency=1 test/*.test.mjs test/*.test.cjs)

step "Edge gate: build (worker-build) and end-to-end tests in workerd (Miniflare), with hls.js, dash.js and VLC"
scripts/build-gate.sh
(cd workers/gate && ../../npm/node_modules/.bin/node --test --test-concurrency=1 test/*.test.mjs)

step "streamgate serve --origin under the gate's own suites (manifests, adversarial, hls.js and dash.js in Chromium)"
(cd workers/gate && GATE_BACKEND=serve ../../npm/node_modules/.bin/node --test --test-concurrency=1 \
  test/gate.test.mjs test/adversarial.test.mjs test/player.test.mjs)

step "Benchmark smoke runs (figures only; see the README for real runs)"
# The core's criterion benchmarks, each run once in the test profile (no extra build).
cargo test -p streamgate-core --bench core --locked 2>&1 | tail -2
(cd npm && BENCH_SECONDS=0.05 node_modules/.bin/node bench/bench.mjs | tail -3)
LOAD_SECONDS=1 LOAD_ROUNDS=1 npm/node_modules/.bin/node workers/gate/bench/load.mjs 2>/dev/null | tail -3
BENCH_SECONDS=1 BENCH_ROUNDS=1 scripts/bench-serve.sh | tail -3

printf '\nall checks passed in %ss\n' "$((SECONDS - started))"
