#!/usr/bin/env bash
# Installs what streamgate needs on a fresh machine, idempotently: each step checks
# first and skips what is already there.
#   scripts/setup.sh           Rust and npm pieces for building and running
#   scripts/setup.sh --peers   also the test peers and tools (Python venv, nginx, Caddy, Redis, Chromium, VLC, wrk)
#   scripts/setup.sh --fuzz    also the fuzzing toolchain (nightly Rust, cargo-fuzz) for scripts/fuzz.sh
# The flags combine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
skip() { printf '    %s (already there)\n' "$*"; }

want_peers=false
want_fuzz=false
for arg in "$@"; do
  case "$arg" in
    --peers) want_peers=true ;;
    --fuzz) want_fuzz=true ;;
    *) echo "usage: scripts/setup.sh [--peers] [--fuzz]" >&2; exit 2 ;;
  esac
done

command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup first" >&2; exit 1; }

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  skip "Rust target wasm32-unknown-unknown"
else
  step "Adding Rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The wasm-bindgen CLI must be the exact version in Cargo.lock (the workspace pins it).
# It and worker-build are built unoptimised (--debug): that compiles in 3.6 minutes
# instead of 8.6, and they produce the same output, in about a second instead of a
# third of one on our wasm.
bindgen_version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" = "$bindgen_version" ]; then
  skip "wasm-bindgen CLI $bindgen_version"
else
  step "Installing wasm-bindgen CLI $bindgen_version (takes a minute or two once)"
  cargo install --debug wasm-bindgen-cli --version "$bindgen_version"
fi

# worker-build pairs with the `worker` crate version in Cargo.lock.
worker_version=$(grep -A1 '^name = "worker"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(worker-build --version 2>/dev/null)" = "$worker_version" ]; then
  skip "worker-build $worker_version"
else
  step "Installing worker-build $worker_version (takes two minutes once)"
  cargo install --debug worker-build --version "$worker_version"
fi

command -v node >/dev/null || { echo "node is missing: install Node.js 18 or later" >&2; exit 1; }
stamp=npm/node_modules/.package-lock.sha256
want_hash=$(sha256sum npm/package-lock.json | cut -d' ' -f1)
if [ -d npm/node_modules ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_hash" ]; then
  skip "npm dependencies (wasm-opt, esbuild, Node 22, wrangler, Miniflare, Deno, Bun, peers)"
else
  step "Installing npm dependencies"
  # `npm install` with the lock file installs the locked versions. `npm ci` would refuse:
  # the lock lists other platforms' optional binaries (deno, workerd) that the registry
  # here does not serve, which an install skips as it should.
  (cd npm && npm install --no-audit --no-fund --loglevel=error)
  # npm may rewrite the lock (other platforms' optional entries): stamp what it left.
  sha256sum npm/package-lock.json | cut -d' ' -f1 > "$stamp"
fi

if $want_fuzz; then
  # cargo-fuzz drives libFuzzer through nightly-only compiler flags.
  if rustup toolchain list | grep -q '^nightly-'; then
    skip "Rust nightly toolchain (fuzzing)"
  else
    step "Installing the Rust nightly toolchain, minimal profile (fuzzing)"
    rustup toolchain install nightly --profile minimal
  fi
  if cargo fuzz --version >/dev/null 2>&1; then
    skip "cargo-fuzz ($(cargo fuzz --version))"
  else
    step "Installing cargo-fuzz (takes a minute once)"
    cargo install cargo-fuzz --version 0.13.2
  fi
fi

$want_peers || exit 0

venv=.venv
stamp="$venv/.requirements.sha256"
want_hash=$(sha256sum tests/interop/requirements.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_hash" ]; then
  skip "Python interop peers in $venv"
else
  step "Installing Python interop peers into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
  echo "$want_hash" > "$stamp"
fi

# Debian packages: installs quietly, without starting any service they bring.
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "installing $* needs root; run: sudo apt-get install $*" >&2
    exit 1
  fi
  local created_policy=false
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    created_policy=true
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
  if $created_policy; then rm -f /usr/sbin/policy-rc.d; fi
}

if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  skip "nginx (secure_link peer)"
else
  step "Installing nginx-light (secure_link peer) from Debian"
  apt_install nginx-light
fi

# Caddy and Redis are the `streamgate serve` peers (forward_auth, and the shared state of
# several nodes). The tests start them on 127.0.0.1 ports with their own configuration;
# the packages' system services are never started (policy-rc.d above).
if command -v caddy >/dev/null; then
  skip "Caddy (forward_auth peer)"
else
  step "Installing Caddy (forward_auth peer) from Debian"
  apt_install caddy
fi

if command -v redis-server >/dev/null; then
  skip "Redis (serve's shared state)"
else
  step "Installing redis-server (serve's shared state) from Debian"
  apt_install redis-server
fi

if [ -x /usr/bin/chromium ]; then
  skip "Chromium (browser tests)"
else
  step "Installing Chromium (browser tests) from Debian"
  apt_install chromium
fi

if command -v wrk >/dev/null; then
  skip "wrk (gate load run)"
else
  step "Installing wrk (gate load run) from Debian"
  apt_install wrk
fi

if command -v cvlc >/dev/null; then
  skip "VLC (native player test)"
else
  step "Installing VLC, headless parts only (native player test) from Debian"
  apt_install --no-install-recommends vlc-bin vlc-plugin-base
fi
