#!/usr/bin/env bash
# Builds the edge gate (workers/gate) with worker-build, using the wasm-bindgen CLI,
# wasm-opt and esbuild this project installs (worker-build's own downloads of them are
# not possible here). wrangler.toml runs this as its build command.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/workers/gate"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$root/npm/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$root/npm/node_modules/.bin/esbuild"
exec worker-build --release
