#!/usr/bin/env bash
# HTTP-FLV against RTMP on OUR server (issue 16's speed figures):
#  - PLAYERS (default 200) players of one stream, RTMP then HTTP-FLV, each on a
#    fresh server pinned to SERVER_CPU, the load tool pinned to LOAD_CPU (as
#    bench/compare.sh): CPU seconds per delivered Gbit, ratio HTTP-FLV / RTMP
#    (target: within 10 %);
#  - publish-to-play latency of one player, RTMP then HTTP-FLV (the load tool's
#    --latency mode, which matches every received message to its send time):
#    p99 difference (target: within 5 ms).
# ROUNDS rounds of each; medians reported.
#
#   bench/flv-compare.sh
#   PLAYERS=200 ROUNDS=3 DURATION=20 bench/flv-compare.sh
#   SKIP_BUILD=1 ROUNDS=1 DURATION=5 bench/flv-compare.sh     # a quick check
#
# Results: bench/results/flv-<UTC stamp>/*.json and summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_TAG=flv-compare
# log, pin_cores, raise_nofile, build_ours, stop_pid, wait_port
# shellcheck source=bench/lib/common.sh
. bench/lib/common.sh
PLAYERS=${PLAYERS:-200}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
RTMP_PORT=${RTMP_PORT:-19381}
HTTP_PORT=${HTTP_PORT:-19382}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
LOAD_ARGS=${LOAD_ARGS:-""}
OUT=${OUT:-$ROOT/bench/results/flv-$(date -u +%Y%m%dT%H%M%SZ)}

pin_cores
raise_nofile
build_ours
node --import tsx bench/make-media.ts >/dev/null
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/flv-compare.XXXXXX)
sed -e "s/19381/$RTMP_PORT/" -e "s/19382/$HTTP_PORT/" bench/http-flv.conf >"$TMP/http-flv.conf"
SRV_PID=""
stop_server() { stop_pid "$SRV_PID"; SRV_PID=""; }
trap 'stop_server; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
start_server() { # tag
  LOG_LEVEL=${LOG_LEVEL:-info} "${PIN_SERVER[@]}" node dist/cli.js -c "$TMP/http-flv.conf" >"$OUT/server-$1.log" 2>&1 &
  SRV_PID=$!
  # (a port answered by another process does not count: ours must still be running)
  wait_port "$RTMP_PORT" "$SRV_PID" && wait_port "$HTTP_PORT" "$SRV_PID" && sleep 0.3 && kill -0 "$SRV_PID" 2>/dev/null || { log "server did not start:"; cat "$OUT/server-$1.log" >&2; exit 1; }
}
run() { # tag, load args...
  local tag=$1
  shift
  start_server "$tag"
  log "$tag: $*"
  # shellcheck disable=SC2086
  "${PIN_LOAD[@]}" node --import tsx bench/rtmp-load.ts --quiet --label "$tag" --pid "$SRV_PID" --server-log "$OUT/server-$tag.log" \
    --url "rtmp://127.0.0.1:$RTMP_PORT/live/bench" --json "$OUT/$tag.json" "$@" $LOAD_ARGS >"$OUT/$tag.txt" 2>&1 || log "$tag failed: $(tail -3 "$OUT/$tag.txt")"
  stop_server
}
FLV_URL="http://127.0.0.1:$HTTP_PORT/live/bench.flv"
uptime | tee "$OUT/uptime-before.txt" >&2
for r in $(seq "$ROUNDS"); do
  run "players-rtmp-r$r" --players "$PLAYERS" --seconds "$DURATION"
  run "players-flv-r$r" --players "$PLAYERS" --seconds "$DURATION" --flv-url "$FLV_URL"
  run "latency-rtmp-r$r" --latency --seconds "$DURATION"
  run "latency-flv-r$r" --latency --seconds "$DURATION" --flv-url "$FLV_URL"
done
uptime | tee "$OUT/uptime-after.txt" >&2
python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/summary.txt"
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def vals(kind, proto, path):
    v = []
    for r in range(1, rounds + 1):
        f = f'{out}/{kind}-{proto}-r{r}.json'
        if not os.path.exists(f): continue
        x = json.load(open(f))
        for k in path: x = x.get(k) if isinstance(x, dict) else None
        if isinstance(x, (int, float)): v.append(x)
    return v
def med(v): return statistics.median(v) if v else float('nan')
for label, path in (('CPU s per delivered Gbit', ('server', 'cpuSecondsPerGbit')), ('delivered Mbit/s', ('throughput', 'deliveredMbps')), ('server CPU cores', ('server', 'cpuCores'))):
    a, b = vals('players', 'rtmp', path), vals('players', 'flv', path)
    print(f'players {label}: rtmp median {med(a):.4f} {a}, http-flv median {med(b):.4f} {b}, ratio http-flv/rtmp {med(b)/med(a) if a and med(a) else float("nan"):.3f}')
for key in ('p50', 'p99', 'max'):
    a, b = vals('latency', 'rtmp', ('latencyMs', key)), vals('latency', 'flv', ('latencyMs', key))
    print(f'latency {key}: rtmp median {med(a):.3f} ms {a}, http-flv median {med(b):.3f} ms {b}, difference {med(b)-med(a):+.3f} ms')
PY
