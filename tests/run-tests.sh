#!/usr/bin/env bash
# Run every test binary under $BUILD/tests, capture cmocka's summaries (they
# go to stderr), and end with exactly one line: "N passed, M failed".
#
# VALGRIND=1 (make check VALGRIND=1) runs each test binary under memcheck:
# an invalid read/write, a use of uninitialised memory or a definite leak
# fails that binary (valgrind exits 99), whatever cmocka said. Only the test
# binaries themselves are checked (with libvbroker and the codec linked in):
# the vbhostd/vbrokerd they start are plain children (--trace-children=no);
# set VB_TEST_DAEMON_WRAPPER to wrap the daemons of the tests that honour it.
# Third-party leaks are suppressed in tests/valgrind.supp, never ours.
set -u
BUILD=${BUILD:-build}
LOGDIR="$BUILD/test-logs"
VALGRIND=${VALGRIND:-0}
[ -n "$VALGRIND" ] || VALGRIND=0
if [ "$VALGRIND" = "1" ]; then
  # memcheck runs code 20-50x slower: give each binary much longer
  PER_TEST_TIMEOUT=${VB_TEST_TIMEOUT:-1800}
else
  PER_TEST_TIMEOUT=${VB_TEST_TIMEOUT:-300}
fi
mkdir -p "$LOGDIR"
if [ "$VALGRIND" = "1" ]; then
  if [ "${SAN:-0}" = "1" ]; then
    echo "VALGRIND=1 cannot run ASan binaries (SAN=1): use one or the other" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "VALGRIND=1 but valgrind is not installed (apt-get install valgrind)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  VG_SUPP="$(pwd)/tests/valgrind.supp"
  # --child-silent-after-fork: a forked child that fails its exec _exit()s
  # with the parent's heap still mapped; that is not a leak.
  VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
      --errors-for-leak-kinds=definite --show-leak-kinds=definite
      --suppressions="$VG_SUPP" --trace-children=no --child-silent-after-fork=yes
      --num-callers=40 --gen-suppressions=all)
  # test_hostile and test_faults stretch their deadlines by this factor
  export VB_TEST_SLOWDOWN=${VB_TEST_SLOWDOWN:-10}
fi
vg_clean=0
vg_total=0
if [ "${SAN:-0}" = "1" ]; then
  # full unwinding so suppressions can match frames inside dlopen'ed plugins
  export ASAN_OPTIONS="fast_unwind_on_malloc=0:detect_leaks=1:abort_on_error=0"
  export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi

# The suite-wide secret scan (tests/scan/secret_scan.c, run after the rest):
# the tests note their passwords in VB_TS_SECRETS_FILE and leave copies of
# their temp dirs' logs and sqlite files in VB_TS_SCAN_DIR.
SCAN_ROOT="$BUILD/secret-scan"
rm -rf "$SCAN_ROOT"
mkdir -p -m 0700 "$SCAN_ROOT/files"
export VB_TS_SCAN_DIR="$(cd "$SCAN_ROOT/files" && pwd)"
export VB_TS_SECRETS_FILE="$(cd "$SCAN_ROOT" && pwd)/secrets"
export VB_TS_TEST_LOGS="$(cd "$LOGDIR" && pwd)"

passed=0
failed=0
shopt -s nullglob
run_binary() {
  local bin=$1
  name=$(basename "$bin")
  log="$LOGDIR/$name.log"
  start=$(date +%s.%N)
  if [ "$VALGRIND" = "1" ]; then
    vglog="$LOGDIR/$name.valgrind"
    rm -f "$vglog"
    timeout --kill-after=10 "$PER_TEST_TIMEOUT" "${VG[@]}" --log-file="$vglog" "$bin" >"$log" 2>&1
  else
    timeout --kill-after=10 "$PER_TEST_TIMEOUT" "$bin" >"$log" 2>&1
  fi
  rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  p=$(grep -aoE '\[  PASSED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  f=$(grep -aoE '\[  FAILED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    # crashed, timed out, or a group setup failed: count it as one failure
    f=1
  fi
  vgnote=""
  if [ "$VALGRIND" = "1" ]; then
    vg_total=$((vg_total + 1))
    vgerr=$(grep -aoE 'ERROR SUMMARY: [0-9]+ errors' "$vglog" 2>/dev/null | head -n 1 | grep -oE '[0-9]+')
    if [ "$rc" -eq 99 ] || [ -z "$vgerr" ] || [ "$vgerr" -ne 0 ]; then
      # memcheck found something (or never finished): the binary fails
      [ "$f" -eq 0 ] && f=1
      vgnote=", valgrind: ${vgerr:-no summary} errors, see $vglog"
    else
      vg_clean=$((vg_clean + 1))
      vgnote=", valgrind clean"
    fi
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$f" -eq 0 ]; then
    printf '  %-32s %3d passed  (%ss%s)\n' "$name" "$p" "$secs" "$vgnote"
  else
    printf '  %-32s %3d passed, %d FAILED (exit %d, %ss%s); log: %s\n' "$name" "$p" "$f" "$rc" "$secs" "$vgnote" "$log"
    grep -aE '\[  (FAILED|ERROR) \]|FAIL|error:|ERROR|Assertion|Sanitizer|runtime error' "$log" | head -n 20 | sed 's/^/      /'
    if [ "$VALGRIND" = "1" ] && grep -aqE '0x63 != |!= 0x63|status 99' "$log"; then
      # --error-exitcode=99 applies to forked copies of the test too
      # (--child-silent-after-fork hides their reports): a child that
      # leaks before _exit() makes the test see exit status 99
      echo "      (a forked child of the test exited 99: memcheck found errors or definite leaks in it;"
      echo "       rerun that binary under valgrind --child-silent-after-fork=no --log-file=X.%p to see them)"
    fi
    if [ -n "$vgnote" ] && [ "$vgnote" != ", valgrind clean" ]; then
      # the first stacks memcheck printed (definite leaks and invalid accesses)
      grep -aE '^==[0-9]+== (Invalid|Conditional|Use of|Syscall param|[0-9,]+ bytes in [0-9,]+ blocks are definitely|    (at|by) 0x)' \
        "$vglog" 2>/dev/null | head -n 30 | sed 's/^/      /'
    fi
  fi
}
for bin in "$BUILD"/tests/test_*; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  case "$bin" in *.d|*.o) continue ;; esac
  run_binary "$bin"
done
if [ -x "$BUILD/tests/secret_scan" ]; then
  run_binary "$BUILD/tests/secret_scan"
else
  echo "  secret_scan is missing (make all builds it)"
  failed=$((failed + 1))
fi
# the copies are only kept when the scan found something (for the post-mortem)
[ "$failed" -eq 0 ] && rm -rf "$SCAN_ROOT"
if [ "$VALGRIND" = "1" ]; then
  echo "valgrind: $vg_clean of $vg_total test binaries clean (memcheck; daemons not under valgrind unless VB_TEST_DAEMON_WRAPPER)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
