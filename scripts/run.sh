#!/usr/bin/env bash
# The main job, locally: the edge gate under `wrangler dev` (real workerd, persisted KV and
# Durable Objects) in front of the demo origin. Prints a signed playback URL, a denied one
# and why, and the admin endpoint; runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
gate_port=${GATE_PORT:-8787}
origin_port=8788

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

scripts/setup.sh
step "Building the streamgate CLI"
cargo build -q -p streamgate-cli
sg="$root/target/debug/streamgate"

state=.streamgate-demo
mkdir -p "$state"
if [ ! -f "$state/demo.jwk" ]; then
  step "Making demo secrets in $state/ and .dev.vars (local only, gitignored)"
  "$sg" keygen --alg HS256 --kid demo --out "$state/demo.jwk" 2>/dev/null
  session_secret=$("$sg" keygen --alg HS512 | sed -n 's/.*"k": "\(.*\)".*/\1/p')
  admin_token=$("$sg" keygen --alg HS256 | sed -n 's/.*"k": "\(.*\)".*/\1/p')
  {
    printf 'KEYS=[{"jwk": %s}]\n' "$(tr -d '\n ' < "$state/demo.jwk")"
    printf 'SESSION_SECRET=%s\n' "$session_secret"
    printf 'ADMIN_TOKEN=%s\n' "$admin_token"
  } > .dev.vars
fi
admin_token=$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars)

step "Starting the demo origin on 127.0.0.1:$origin_port"
node scripts/demo-origin.mjs "$origin_port" &
origin_pid=$!
trap 'kill $origin_pid ${gate_pid:-} 2>/dev/null || true' EXIT

export WRANGLER_SEND_METRICS=false
wrangler() { npm/node_modules/.bin/node npm/node_modules/wrangler/bin/wrangler.js "$@"; }

step "Applying Token Guardian's D1 migrations (local)"
wrangler d1 migrations apply GUARDIAN --local --persist-to .wrangler/state

step "Starting the gate (wrangler dev builds it first; the first build takes a few minutes)"
# wrangler dev would fetch a real `request.cf` from Cloudflare; the gate gets a placeholder.
export CLOUDFLARE_CF_FETCH_ENABLED=false
# --test-scheduled exposes /__scheduled, which runs the Cron Trigger (misuse detection) now;
# a 30 s usage bucket (300 s deployed) puts demo traffic on the dashboard quickly.
npm/node_modules/.bin/node npm/node_modules/wrangler/bin/wrangler.js dev --ip 127.0.0.1 --port "$gate_port" \
  --persist-to .wrangler/state --log-level warn --test-scheduled --var GUARDIAN_BUCKET:30 &
gate_pid=$!
gate="http://127.0.0.1:$gate_port"
for _ in $(seq 1 600); do
  curl -sf "$gate/healthz" >/dev/null 2>&1 && break
  kill -0 $gate_pid 2>/dev/null || { echo "wrangler dev exited; see its output above" >&2; exit 1; }
  sleep 1
done
curl -sf "$gate/healthz" >/dev/null || { echo "the gate did not come up on $gate" >&2; exit 1; }

url=$("$sg" sign jwt --key "@$state/demo.jwk" --stream 'hls/**' --stream 'dash/**' --max-sessions 2 --ttl 3600 \
  --sub demo-viewer --url "$gate/hls/master.m3u8" 2>/dev/null)
dash=$("$sg" sign jwt --key "@$state/demo.jwk" --stream 'dash/**' --ttl 3600 --url "$gate/dash/manifest.mpd" 2>/dev/null)
denied="$gate/private/secret.m3u8?${url#*\?}"

cat <<EOT

The gate is up on $gate, in front of the demo origin on http://127.0.0.1:$origin_port.

Protected stream (HLS; at most 2 concurrent players, valid for an hour):
  $url
Watch it in a browser:
  http://127.0.0.1:$origin_port/player.html?src=$(node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$url")
DASH:
  $dash

A URL that gets denied (the same token, outside its streams):
  $denied
EOT
printf '  -> %s\n' "$(curl -s -o /dev/null -w 'HTTP %{http_code}, X-Streamgate-Reason: %header{x-streamgate-reason}' "$denied")"
printf '  and without a token -> %s\n' "$(curl -s -o /dev/null -w 'HTTP %{http_code}, X-Streamgate-Reason: %header{x-streamgate-reason}' "$gate/hls/master.m3u8")"
cat <<EOT

Admin API (token in .dev.vars):
  curl -X POST -H 'Authorization: Bearer $admin_token' $gate/admin/revoke -d '{"token": "<the token above>"}'
  curl -X POST -H 'Authorization: Bearer $admin_token' $gate/admin/block  -d '{"ip": "203.0.113.0/24"}'
  curl -H 'Authorization: Bearer $admin_token' '$gate/admin/sessions?sub=demo-viewer'

Token Guardian (misuse detection, every 5 minutes by the Cron Trigger):
  dashboard:        $gate/admin/   (sign in with the ADMIN_TOKEN above)
  run it now:       curl '$gate/__scheduled?cron=*/5+*+*+*+*'
  findings as JSON: curl -H 'Authorization: Bearer $admin_token' '$gate/admin/tokens?window=3h'

Health: $gate/healthz. Ctrl-C stops both.
EOT
wait $gate_pid
