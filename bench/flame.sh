#!/usr/bin/env bash
# Profiles of the steady-state opens (issue 18 item 6): runs bench_e2e with
# BENCH_ONLY=steady and BENCH_PERF (perf record, DWARF call graphs, of the
# broker, both vbhostd and the app's process during each steady row), then
# for the cold DIGEST-MD5 open and the warm open on a shared transport:
#   bench/results/flame-KEY.folded   folded stacks (perf's stackcollapse)
#   bench/results/flame-KEY.svg      the flame graph (bench/flamegraph.py)
#   bench/results/flame-KEY.txt      perf report --stdio, by process and symbol
# Needs linux-perf (Debian) and python3; perf needs perf_event_paranoid <= 1
# or root to attach to the daemons. BUILD=DIR picks the build (default build).
# BENCH_STEADY_OPENS / BENCH_STEADY_ROUNDS as for the bench (defaults 100 / 1).
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "flame.sh: perf missing (apt-get install linux-perf)" >&2; exit 1; }
SC=$(ls /usr/lib/perf-core/scripts/python/stackcollapse.py 2>/dev/null || true)
[ -n "$SC" ] || { echo "flame.sh: perf's stackcollapse.py missing" >&2; exit 1; }
OUT=bench/results
mkdir -p "$OUT"
P=$(mktemp -d /tmp/vbflame.XXXXXX)
trap 'rm -rf "$P"' EXIT
BENCH_ONLY=steady BENCH_PERF="$P" BENCH_ROUNDS=1 BENCH_STEADY_ROUNDS=${BENCH_STEADY_ROUNDS:-1} \
  "$BUILD/bench/bench_e2e" --json "$P/steady.json" --svg "$P/steady.svg" > "$P/bench.txt"
grep -E '^steady:' "$P/bench.txt" || true

fold() { # data-file -> folded stacks on stdout, each stack prefixed by its process
  perf script -i "$1" -s "$SC" -- --kernel 2>/dev/null
}
for key in steady_cold_digest_tcp steady_warm_shared_tcp; do
  case $key in
    steady_cold_digest_tcp) what="cold open, full DIGEST-MD5 login over TCP (cold broker)" ;;
    steady_warm_shared_tcp) what="warm open on a shared transport (no login)" ;;
  esac
  folded="$OUT/flame-${key#steady_}.folded"
  : > "$folded"
  for f in "$P/$key".daemons.data "$P/$key".app*.data; do
    [ -s "$f" ] && fold "$f" >> "$folded"
  done
  python3 bench/flamegraph.py --title "vbroker $what: app, vbrokerd, vbhostd ($(date -u +%F))" \
    "$folded" > "$OUT/flame-${key#steady_}.svg"
  {
    echo "# $what: perf report --stdio --no-children --sort comm,dso,sym (daemons, then the app)"
    perf report -i "$P/$key.daemons.data" --stdio --no-children --sort comm,dso,sym -g none \
      --percent-limit 0.5 2>/dev/null | grep -v '^$' || true
    perf report -i "$P/$key.app0.data" --stdio --no-children --sort comm,dso,sym -g none \
      --percent-limit 0.5 2>/dev/null | grep -v '^$' || true
  } > "$OUT/flame-${key#steady_}.txt"
  echo "flame.sh: $OUT/flame-${key#steady_}.svg ($(wc -l < "$folded") stacks)"
done
