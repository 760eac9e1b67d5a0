#!/usr/bin/env bash
# Run every test binary under $BUILD/tests, capture cmocka's summaries (they
# go to stderr), and end with exactly one line: "N passed, M failed".
set -u
BUILD=${BUILD:-build}
LOGDIR="$BUILD/test-logs"
PER_TEST_TIMEOUT=${VB_TEST_TIMEOUT:-300}
mkdir -p "$LOGDIR"
if [ "${SAN:-0}" = "1" ]; then
  # full unwinding so suppressions can match frames inside dlopen'ed plugins
  export ASAN_OPTIONS="fast_unwind_on_malloc=0:detect_leaks=1:abort_on_error=0"
  export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi

passed=0
failed=0
shopt -s nullglob
for bin in "$BUILD"/tests/test_*; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  case "$bin" in *.d|*.o) continue ;; esac
  name=$(basename "$bin")
  log="$LOGDIR/$name.log"
  start=$(date +%s.%N)
  timeout --kill-after=10 "$PER_TEST_TIMEOUT" "$bin" >"$log" 2>&1
  rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  p=$(grep -aoE '\[  PASSED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  f=$(grep -aoE '\[  FAILED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    # crashed, timed out, or a group setup failed: count it as one failure
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$f" -eq 0 ]; then
    printf '  %-32s %3d passed  (%ss)\n' "$name" "$p" "$secs"
  else
    printf '  %-32s %3d passed, %d FAILED (exit %d, %ss); log: %s\n' "$name" "$p" "$f" "$rc" "$secs" "$log"
    grep -aE '\[  (FAILED|ERROR) \]|FAIL|error:|ERROR|Assertion|Sanitizer|runtime error' "$log" | head -n 20 | sed 's/^/      /'
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
