#!/usr/bin/env bash
# Run every benchmark binary under $BUILD/bench (default build/); `make bench`
# builds them first. Run from anywhere: it works from the top of the tree.
#   bench_codec  the wire codec alone (bench/results/codec.json)
#   bench_e2e    vbroker end to end: starts its own vbhostd and vbrokerd on
#                127.0.0.1, prints one table, writes bench/results/latest.json
#                and latest.svg (knobs: BENCH_ROUNDS, BENCH_STEADY_ROUNDS,
#                BENCH_STEADY_OPENS, BENCH_SUSTAIN_SECONDS, ...
#                see bench/README.md); its nested-chain rows run
#                tests/peers/xenapi_sim.py, so they need python3
# `make bench-peer` (mk/bench.mk) runs bench/peer.sh instead: the same harness
# against libvirtd, side by side.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 1
mkdir -p bench/results

echo "== vbroker benchmarks =="
case "$BUILD" in *san*) echo "NOTE: $BUILD is a sanitizer build; its timings are not meaningful." ;; esac
echo

shopt -s nullglob
ran=0
failed=0
for bin in "$BUILD"/bench/bench_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  case "$bin" in *.d|*.o) continue ;; esac
  name=$(basename "$bin")
  echo "-- $name"
  case "$name" in
    bench_codec) args=(--json bench/results/codec.json) ;;
    *) args=() ;;
  esac
  if ! "$bin" "${args[@]}"; then
    echo "!! $name failed" >&2
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
