#!/usr/bin/env bash
# Installs what streamgate needs on a fresh machine, idempotently: each step checks
# first and skips what is already there.
#   scripts/setup.sh           Rust pieces for building and running
#   scripts/setup.sh --peers   also the interop peers (Python venv, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
skip() { printf '    %s (already there)\n' "$*"; }

want_peers=false
for arg in "$@"; do
  case "$arg" in
    --peers) want_peers=true ;;
    *) echo "usage: scripts/setup.sh [--peers]" >&2; exit 2 ;;
  esac
done

command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup first" >&2; exit 1; }

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  skip "Rust target wasm32-unknown-unknown"
else
  step "Adding Rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
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

if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  skip "nginx (secure_link peer)"
else
  step "Installing nginx-light (secure_link peer) from Debian"
  if [ "$(id -u)" -ne 0 ]; then
    echo "installing nginx needs root; run: sudo apt-get install nginx-light" >&2
    exit 1
  fi
  # Keep the package from starting a system-wide nginx: the tests start their own.
  created_policy=false
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    created_policy=true
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq nginx-light >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
  $created_policy && rm -f /usr/sbin/policy-rc.d
fi
