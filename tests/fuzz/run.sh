#!/usr/bin/env bash
# Run each libFuzzer target for $FUZZ_SECONDS seconds (make fuzz calls this).
#   BUILD=build FUZZ_SECONDS=60 tests/fuzz/run.sh frame uri conf authconf
# Prints executions, execs/s and crashes per target; exits 1 if any crashed.
set -u
BUILD=${BUILD:-build}
SECONDS_EACH=${FUZZ_SECONDS:-60}
FUZZ_DIR="$BUILD/fuzz"
SRC=$(cd "$(dirname "$0")" && pwd)

# -max_len per target: a frame stream holds one frame over the 64 KiB
# pre-auth limit; a URI a little over VB_URI_MAX_LEN; config files are
# small, and the size limits themselves are checked before any parsing.
max_len() {
  case "$1" in
    frame) echo 70000 ;;
    uri) echo 4200 ;;
    *) echo 16384 ;;
  esac
}

status=0
summary=()
for t in "$@"; do
  bin="$FUZZ_DIR/fuzz_$t"
  work="$FUZZ_DIR/corpus/$t"
  crashes="$FUZZ_DIR/crashes/$t"
  log="$FUZZ_DIR/fuzz_$t.log"
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz-build)" >&2; exit 2; }
  mkdir -p "$work" "$crashes"
  # the working copy keeps earlier finds; the seeds are refreshed each run
  cp -p "$SRC/corpus/$t"/* "$work"/ 2>/dev/null
  dirs=("$work")
  [ -d "$SRC/regressions/$t" ] && dirs+=("$SRC/regressions/$t")
  dict=()
  [ -f "$SRC/$t.dict" ] && dict=("-dict=$SRC/$t.dict")
  before=$(find "$crashes" -type f | wc -l)
  echo "fuzz: $t for ${SECONDS_EACH}s (log: $log)"
  "$bin" "${dirs[@]}" "${dict[@]}" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" \
    -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$crashes/" \
    >"$log" 2>&1
  rc=$?
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -n1 | awk '{print $2}')
  rate=$(grep -a 'stat::average_exec_per_sec' "$log" | tail -n1 | awk '{print $2}')
  cov=$(grep -aoE 'cov: [0-9]+' "$log" | tail -n1 | awk '{print $2}')
  units=$(find "$work" -type f | wc -l)
  new=$(( $(find "$crashes" -type f | wc -l) - before ))
  line=$(printf '%-9s %12s execs %8s execs/s  cov %5s  corpus %5s  crashes %d' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$units" "$new")
  if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
    status=1
    line="$line  FAILED (exit $rc)"
    echo "$line"
    grep -aE 'ERROR: |runtime error|SUMMARY|Test unit written' "$log" | head -n 10 | sed 's/^/    /'
  else
    echo "$line"
  fi
  summary+=("$line")
done
echo "fuzz summary (${SECONDS_EACH}s per target):"
printf '  %s\n' "${summary[@]}"
exit $status
