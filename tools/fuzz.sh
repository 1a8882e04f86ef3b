#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) and runs each for N seconds
# (default 60) from a seed corpus made by fuzz/make_corpus.sh. Prints executions and crashes
# per target; exits 1 when a target crashed (the input is kept in BUILD/crashes/TARGET/).
#   usage: tools/fuzz.sh [SECONDS] [TARGET...]      (targets: x3p manifest)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x3p manifest)
build=${BF_FUZZ_BUILD:-$root/build-fuzz}
if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang is not installed (tools/deps.sh installs it)" >&2
  exit 2
fi
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DBF_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if ! nice cmake --build "$build" -j 2 --target $(printf 'fuzz_%s ' "${targets[@]}") >"$build/build.log" 2>&1; then
  tail -30 "$build/build.log" >&2
  exit 1
fi
bash "$root/fuzz/make_corpus.sh" "$build/seeds"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t" crashes="$build/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  log="$build/fuzz_$t.log"
  set +e
  nice "$build/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 \
    -timeout=10 -max_len=65536 -artifact_prefix="$crashes/" "$corpus" "$build/seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  ncrash=$(find "$crashes" -type f | wc -l)
  echo "fuzz_$t: ${execs:-?} executions in ${secs} s, $ncrash crash(es), exit $rc (log $log)"
  if [ "$rc" -ne 0 ] || [ "$ncrash" -gt 0 ]; then
    failed=1
    grep -m 5 -E "ERROR|SUMMARY|runtime error" "$log" >&2 || true
  fi
done
exit $failed
