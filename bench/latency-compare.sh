#!/usr/bin/env bash
# Publish-to-play latency, ours against nginx-rtmp, measured by an independent
# tool (bench/latency-probe.py: plain sockets in Python, nothing of our code).
# Both servers run at once, pinned to SERVER_CPU, and are measured one at a
# time, alternating (ours, nginx, ours, nginx...), ROUNDS rounds each, with the
# probe pinned to LOAD_CPU. Fresh servers for every pair of rounds.
#
#   ROUNDS=5 SECONDS_PER_ROUND=20 bench/latency-compare.sh
#   OURS_CONFIG=bench/nagle.conf bench/latency-compare.sh
#
# Needs nginx + libnginx-mod-rtmp (bench/compare.sh installs them) and dist/
# (npm run build; SKIP_BUILD=1 uses the existing one).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_TAG=latency
# log, NGX_MODULE, build_ours, stop_pid, stop_servers, wait_port
# shellcheck source=bench/lib/common.sh
. bench/lib/common.sh
ROUNDS=${ROUNDS:-5}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-20}
OURS_PORT=${OURS_PORT:-19371}
NGINX_PORT=${NGINX_PORT:-19372}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OURS_NODE_ARGS=${OURS_NODE_ARGS:-"--max-semi-space-size=1 --single-threaded-gc"}
OURS_CONFIG=${OURS_CONFIG:-""}
OUT=${OUT:-$ROOT/bench/results/latency-$(date -u +%Y%m%dT%H%M%SZ)}

[ -f "$NGX_MODULE" ] || { log "no $NGX_MODULE: run bench/compare.sh once (it installs nginx-rtmp)"; exit 1; }
build_ours
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/rtmp-latency.XXXXXX)
OURS_PID=""
NGINX_PID=""
trap 'stop_servers; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
start_servers() {
  # shellcheck disable=SC2086
  LOG_LEVEL=${LOG_LEVEL:-warn} taskset -c "$SERVER_CPU" node $OURS_NODE_ARGS dist/cli.js "$OURS_PORT" ${OURS_CONFIG:+-c "$OURS_CONFIG"} >"$OUT/server-ours-$1.log" 2>&1 &
  OURS_PID=$!
  mkdir -p "$TMP/nginx"
  sed -e "s#@PORT@#$NGINX_PORT#" -e "s#@PID_FILE@#$TMP/nginx/nginx.pid#" -e "s#@MODULE@#$NGX_MODULE#" \
    bench/nginx-rtmp.conf.template >"$TMP/nginx/nginx.conf"
  taskset -c "$SERVER_CPU" nginx -e stderr -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$OUT/server-nginx-$1.log" 2>&1 &
  NGINX_PID=$!
  wait_port "$OURS_PORT" "$OURS_PID" && wait_port "$NGINX_PORT" "$NGINX_PID"
}
uptime | tee "$OUT/uptime-before.txt" >&2
for r in $(seq "$ROUNDS"); do
  start_servers "r$r"
  log "round $r: ours"
  taskset -c "$LOAD_CPU" python3 bench/latency-probe.py --label ours --url "rtmp://127.0.0.1:$OURS_PORT/live/lat" --seconds "$SECONDS_PER_ROUND" --json "$OUT/r$r-ours.json"
  log "round $r: nginx"
  taskset -c "$LOAD_CPU" python3 bench/latency-probe.py --label nginx --url "rtmp://127.0.0.1:$NGINX_PORT/live/lat" --seconds "$SECONDS_PER_ROUND" --json "$OUT/r$r-nginx.json"
  stop_servers
done
uptime | tee "$OUT/uptime-after.txt" >&2
python3 - "$OUT" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
for key in ('p50', 'p90', 'p99', 'p999', 'mean'):
    o = [json.load(open(f'{out}/r{r}-ours.json'))[key] for r in range(1, rounds + 1)]
    n = [json.load(open(f'{out}/r{r}-nginx.json'))[key] for r in range(1, rounds + 1)]
    print(f'{key}: ours median {statistics.median(o):.3f} ms (range {min(o):.3f}-{max(o):.3f}), nginx median {statistics.median(n):.3f} ms (range {min(n):.3f}-{max(n):.3f}), ratio {statistics.median(o)/statistics.median(n):.2f}')
EOF
