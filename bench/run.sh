#!/usr/bin/env bash
# Run every benchmark binary under $BUILD/bench (default build/); `make bench`
# builds them first. Each binary prints its own table; bench_codec also writes
# bench/results/latest.json. Run from the top of the tree.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1

echo "== vbroker benchmarks =="
echo "What exists today is the wire codec (proto/), so these are codec-only numbers:"
echo "in-memory encode/decode, no sockets, no daemons, no authentication."
echo "End-to-end latency and the comparison with libvirt arrive with vbhostd and the"
echo "broker; until then nothing here says how fast vbroker is for a user."
case "$BUILD" in *san*) echo "NOTE: $BUILD is a sanitizer build; its timings are not meaningful." ;; esac
echo

shopt -s nullglob
ran=0
failed=0
for bin in "$BUILD"/bench/bench_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  case "$bin" in *.d|*.o) continue ;; esac
  echo "-- $(basename "$bin")"
  if ! "$bin"; then
    echo "!! $(basename "$bin") failed" >&2
    failed=$((failed + 1))
  fi
  ran=$((ran + 1))
  echo
done

if [ "$ran" -eq 0 ]; then
  echo "no benchmarks in $BUILD/bench (run 'make bench')" >&2
  exit 1
fi
[ "$failed" -eq 0 ]
