#!/usr/bin/env bash
# `streamgate serve` side by side with its peers in one run (figures, not a test), wrk on
# loopback and a 100 KB static file:
#   (a) nginx auth_request -> streamgate serve /auth (deploy/nginx/streamgate.conf)
#   (b) the same nginx -> a server block that returns 200 (the auth_request ceiling)
#   (c) nginx secure_link on the same file
#   streamgate serve /auth alone vs a bare hyper server answering 200
# with p50/p99 latency, CPU per request of each server process, and the ratios a/b, a/c
# and serve/bare. Needs nginx-light and wrk (scripts/setup.sh --peers).
#   scripts/bench-serve.sh                       5 s per case, 3 rounds (medians)
#   BENCH_SECONDS=10 BENCH_ROUNDS=5 scripts/bench-serve.sh
#   BENCH_SECONDS=1 BENCH_ROUNDS=1 scripts/bench-serve.sh   (the test command's smoke run, on the build its install step made)
#   BENCH_PROFILE=dev ...                                   (an unoptimised build, quicker to compile)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${BENCH_PROFILE:-cli}
cargo build --quiet --locked --profile "$profile" -p streamgate-cli
cargo build --quiet --locked --profile "$profile" -p streamgate-serve --example bare
dir=$profile
[ "$profile" = dev ] && dir=debug
python3 tests/serve/bench.py "target/$dir/streamgate" "target/$dir/examples/bare"
