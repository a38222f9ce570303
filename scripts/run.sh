#!/usr/bin/env bash
# The main job, locally. Until the edge gate lands this is the offline demo: it builds the
# CLI, makes a key, signs playback URLs in all four schemes and shows what is allowed,
# what is denied, and why.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
printf '\033[1m==> Building the streamgate CLI\033[0m\n'
cargo build -q -p streamgate-cli
sg=target/debug/streamgate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Echo a command with long arguments (tokens) shortened, then run it.
show() {
  local shown=() arg
  for arg in "$@"; do
    if [ ${#arg} -gt 70 ]; then shown+=("${arg:0:60}…"); else shown+=("$arg"); fi
  done
  printf '\n\033[1m$ %s\033[0m\n' "${shown[*]}"
  "$@" || printf '(exit %s)\n' "$?"
}

printf '\n\033[1m==> A signing key (ES256) for the demo, in %s\033[0m\n' "$work"
$sg keygen --alg ES256 --kid demo --out "$work/demo.jwk"

url=$($sg sign jwt --key "@$work/demo.jwk" --stream 'live/match-*' --ttl 600 --sub viewer-1 --max-sessions 2 \
  --url 'https://cdn.example.com/live/match-42/index.m3u8')
printf '\nSigned playback URL:\n  %s\n' "$url"

show $sg verify "$url" --key "@$work/demo.jwk.pub" --ip 198.51.100.7
show $sg verify "${url/match-42/matchbox}" --key "@$work/demo.jwk.pub" --explain
show $sg verify "$url" --key "@$work/demo.jwk.pub" --now $(( $(date +%s) + 3600 ))

nimble=$($sg sign wmsauth --key defaultpassword --ip 203.0.113.7 --valid-minutes 20 \
  --url 'http://nimble.example.com:8081/live/stream/playlist.m3u8')
show $sg verify "$nimble" --key defaultpassword --ip 203.0.113.7
show $sg verify "$nimble" --key defaultpassword --ip 203.0.113.99 --explain

akamai=$($sg sign edgeauth --key 52a152a152a152a152a152a152a1 --acl '/vod/*' --ttl 300 \
  --url 'https://media.example.com/vod/film/master.m3u8')
show $sg verify "$akamai" --key 52a152a152a152a152a152a152a1

link=$($sg sign secure-link --key secret --ip 127.0.0.1 --ttl 300 --url 'http://127.0.0.1/s/link')
show $sg verify "$link" --key secret --ip 127.0.0.1

printf '\nReason codes:\n'
$sg reasons
