#!/usr/bin/env bash
# streamgate scan against DuckDB on the same generated JSON Lines file, side by side in one
# run: MB/s, events/s and the ratio; the scan on one thread too. Also the detector alone,
# in memory, on one core.
#   scripts/bench-scan.sh            ~1.2 GB (VIEWERS=7500); the file is deleted afterwards
#   VIEWERS=3000 scripts/bench-scan.sh
# DuckDB runs `read_json(…, format='newline_delimited')` with a GROUP BY token computing
# distinct IPs, countries, ASNs and sessions, on every core (its default). Needs the Python
# peers (.venv, from scripts/setup.sh --peers; tests/interop/requirements.txt pins duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
viewers=${VIEWERS:-7500}
python=.venv/bin/python
"$python" -c 'import duckdb' 2>/dev/null || { echo "duckdb missing: run scripts/setup.sh --peers" >&2; exit 2; }

cargo build --quiet --profile cli -p streamgate-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file="$work/usage.jsonl"
target/cli/streamgate-simulate --viewers "$viewers" > "$file"
bytes=$(stat -c %s "$file")
events=$(wc -l < "$file")
cat "$file" > /dev/null # both runs read from the page cache
echo "file: $((bytes / 1000000)) MB, $events events, $(nproc) cores"
# Other busy processes take cores from both sides alike; say how busy the machine was.
echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
rate() { # label seconds
  awk -v l="$1" -v s="$2" -v b="$bytes" -v e="$events" \
    'BEGIN { printf "%-22s %7.2f s  %7.0f MB/s  %9.0f events/s\n", l, s, b / 1e6 / s, e / s }'
}

scan() { # output file, extra arguments; prints the seconds it took
  local out=$1 start code=0
  shift
  start=$(now)
  target/cli/streamgate scan --input "$file" --format json --allowed-referrer www.example.com "$@" \
    > "$out" 2> /dev/null || code=$?
  [ "$code" -le 1 ] || { echo "streamgate scan failed ($code)" >&2; exit 1; }
  awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }'
}

best_scan=999999
best_one=999999
best_duck=999999
for round in 1 2 3; do
  scan_s=$(scan "$work/rows.jsonl")
  one_s=$(scan "$work/one.jsonl" --threads 1)
  cmp -s "$work/rows.jsonl" "$work/one.jsonl" || { echo "one thread and all cores disagree" >&2; exit 1; }
  duck_s=$("$python" - "$file" <<'PY'
import sys, time, duckdb
start = time.perf_counter()
rows = duckdb.sql(f"""
  SELECT token, count(DISTINCT ip) AS ips, count(DISTINCT country) AS countries,
         count(DISTINCT asn) AS asns, count(DISTINCT sid) AS sessions
  FROM read_json('{sys.argv[1]}', format='newline_delimited') GROUP BY token""").fetchall()
print(time.perf_counter() - start)
PY
)
  best_scan=$(awk -v a="$best_scan" -v b="$scan_s" 'BEGIN { print (b < a) ? b : a }')
  best_one=$(awk -v a="$best_one" -v b="$one_s" 'BEGIN { print (b < a) ? b : a }')
  best_duck=$(awk -v a="$best_duck" -v b="$duck_s" 'BEGIN { print (b < a) ? b : a }')
  echo "round $round: streamgate scan $scan_s s (one thread $one_s s), duckdb $duck_s s"
done
echo "best of 3 (findings: $(wc -l < "$work/rows.jsonl") tokens):"
rate "streamgate scan" "$best_scan"
rate "streamgate, one thread" "$best_one"
rate "duckdb GROUP BY token" "$best_duck"
awk -v a="$best_duck" -v b="$best_scan" 'BEGIN { printf "ratio: streamgate scan is %.2fx DuckDB\n", a / b }'

echo "detector alone, in memory, one core:"
CARGO_PROFILE_BENCH_OPT_LEVEL=3 CARGO_PROFILE_BENCH_LTO=thin CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 \
  cargo bench --quiet -p streamgate-core --bench detector 2>/dev/null | grep '^detector'
