#!/usr/bin/env bash
# Runs every coverage-guided fuzz target in fuzz/ (cargo-fuzz, libFuzzer), one after
# another, each for a bounded time, and prints one line per target. Exits non-zero if any
# target crashes (a panic, an assertion, a timeout or running out of memory) and prints
# the input that did it.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    default: 60 s, every target
# Needs the nightly toolchain and cargo-fuzz: scripts/setup.sh --fuzz installs them.
#
# The committed seeds in fuzz/corpus/<target> are read, never written: what a run finds
# goes to fuzz/target/corpus/<target> (kept between runs, ignored by git). To refresh the
# committed seeds after a long run, minimise into them (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzzing needs the nightly toolchain and cargo-fuzz: run scripts/setup.sh --fuzz" >&2
  exit 2
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

# No sanitizer: the core forbids unsafe code, and without ASan each target runs about
# twice as many inputs. Debug assertions (and with them overflow checks) stay on.
build_flags=(--sanitizer none --debug-assertions)
logs=fuzz/target/logs
mkdir -p "$logs"
echo "==> building the fuzz targets (nightly, release, debug assertions)"
if ! (cd fuzz && cargo +nightly fuzz build "${build_flags[@]}") >"$logs/build.log" 2>&1; then
  cat "$logs/build.log" >&2
  exit 1
fi
failed=()
printf '%-12s %10s %9s %7s %7s %11s %8s\n' target executions exec/s cov features "new inputs" corpus
for target in "${targets[@]}"; do
  work=fuzz/target/corpus/$target
  mkdir -p "$work" "fuzz/corpus/$target" "fuzz/artifacts/$target"
  log=$logs/$target.log
  status=0
  (cd fuzz && cargo +nightly fuzz run "${build_flags[@]}" "$target" "../$work" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="artifacts/$target/") >"$log" 2>&1 || status=$?
  # The last status line libFuzzer printed: "#N ... cov: C ft: F corp: U/S ...".
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  field() { sed -n "s/.*$1: *\([0-9]*\).*/\1/p" <<<"$last"; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  printf '%-12s %10s %9s %7s %7s %11s %8s\n' "$target" "${runs:-?}" "${speed:-?}" "$(field cov)" "$(field ft)" \
    "${added:-?}" "$(sed -n 's/.*corp: *\([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")"
  if [ "$status" -ne 0 ]; then
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "!! $target failed (exit $status); input: fuzz/${artifact:-artifacts/$target/ (none written)}; log: $log" >&2
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer|deadly signal" "$log" >&2 || true
    echo "   reproduce: cd fuzz && cargo +nightly fuzz run ${build_flags[*]} $target ${artifact:-}" >&2
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]}" >&2
  exit 1
fi
echo "no crashes in ${#targets[@]} targets (${seconds} s each)"
