#!/usr/bin/env bash
# Side by side: our server and nginx-rtmp, at the same time, both pinned to the
# same core (SERVER_CPU); each fed by its own load process pinned to the other
# core (LOAD_CPU). For every player count, ROUNDS rounds with fresh servers;
# then a table of medians and of the median per-round ratio ours/nginx.
#
#   bench/compare.sh                         # 1 50 200 500 1000 players, 3 rounds, 20 s windows
#   PLAYERS="200" ROUNDS=3 DURATION=20 bench/compare.sh
#   EXTRA="latency publishers" bench/compare.sh  # also --latency and --publishers 200 (default: both)
#   PLAYERS=" " SOLO= EXTRA=hls bench/compare.sh # HLS_PUBLISHERS (50) publishers at 1 Mbit/s with `hls on`
#                                                # on both (bench/hls.conf.template, bench/nginx-rtmp-hls.conf.template)
#   EXTRA=record PLAYERS= SOLO= bench/compare.sh  # RECORD_PUBLISHERS (50) publishers at 1 Mbit/s, `record all` on both
#                                                 # servers; then bench/lib/record-check.ts counts the frames in the files
#   EXTRA=vod PLAYERS= SOLO= bench/compare.sh     # VOD: VOD_PLAYERS (100) players of one 10-minute MP4, then of
#                                                # the same as FLV, both servers with `play bench/media/vod`
#   SOLO="1000" bench/compare.sh     # also 1000 players one server at a time (default), key solo1000
#   EXTRA= PLAYERS=1000 ROUNDS=1 OURS_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" bench/compare.sh
#
# Installs nginx + libnginx-mod-rtmp with apt-get when missing. Results:
# bench/results/<UTC stamp>/*.json (one per run), summary.json and summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_TAG=compare
# log, NGX_MODULE, install_nginx_rtmp, pin_cores, raise_nofile, build_ours, stop_pid, stop_servers, wait_port
# shellcheck source=bench/lib/common.sh
. bench/lib/common.sh

PLAYERS=${PLAYERS:-"1 50 200 500 1000"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
EXTRA=${EXTRA-"latency publishers"}
# player counts also run one server at a time (each load process then has its core alone)
SOLO=${SOLO-"1000"}
PUBLISHERS=${PUBLISHERS:-200}
HLS_PUBLISHERS=${HLS_PUBLISHERS:-50}
RECORD_PUBLISHERS=${RECORD_PUBLISHERS:-50}
# our server's configuration in the hls and record modes (another template: a variant's cost)
HLS_TEMPLATE=${HLS_TEMPLATE:-bench/hls.conf.template}
RECORD_TEMPLATE=${RECORD_TEMPLATE:-bench/record.conf.template}
# more lines for nginx-rtmp's application (set by the record mode)
NGINX_APP_EXTRA=
VOD_PLAYERS=${VOD_PLAYERS:-100}
VOD_DIR=$ROOT/bench/media/vod
# the app/stream the load tool plays (the VOD runs change it)
STREAM_PATH=live/bench
OURS_PORT=${OURS_PORT:-19361}
NGINX_PORT=${NGINX_PORT:-19362}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
LOAD_ARGS=${LOAD_ARGS:-""}
# e.g. OURS_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (a .cpuprofile per server run)
# our server runs as `npm start` and `rtmp-server` run it: plain node, no flags (issue 14)
OURS_NODE_ARGS=${OURS_NODE_ARGS:-""}
# e.g. OURS_CONFIG=bench/flush-window.conf (its listen port is replaced by OURS_PORT)
OURS_CONFIG=${OURS_CONFIG:-""}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/bench/results/$STAMP}
# --- prerequisites -----------------------------------------------------------
install_nginx_rtmp
pin_cores
raise_nofile
build_ours
case " $EXTRA " in
  *" vod "*) node --import tsx bench/make-media.ts --vod >/dev/null ;;
  *) node --import tsx bench/make-media.ts >/dev/null ;;
esac

mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/rtmp-compare.XXXXXX)
OURS_PID=""
NGINX_PID=""

cleanup() { stop_servers; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start_servers() { # tag
  local tag=$1
  local ours_config=$OURS_CONFIG nginx_template=bench/nginx-rtmp.conf.template
  if [ "${HLS_RUN:-0}" = 1 ]; then
    # HLS on both, each writing to its own fresh directory
    rm -rf "$TMP/hls-ours" "$TMP/hls-nginx"
    mkdir -p "$TMP/hls-ours" "$TMP/hls-nginx"
    sed -e "s#@HLS_PATH@#$TMP/hls-ours#" "$HLS_TEMPLATE" >"$TMP/hls-ours.conf"
    ours_config=$TMP/hls-ours.conf
    nginx_template=bench/nginx-rtmp-hls.conf.template
  fi
  # info: the server logs each player's dropped frames when it leaves (read back with --server-log)
  # shellcheck disable=SC2086
  if [ "${STREAM_PATH%%/*}" = vod ] && [ -z "$ours_config" ]; then
    # our server with the same `play` directory as nginx-rtmp's
    ours_config=$TMP/ours-vod.conf
    printf 'rtmp { server { listen 127.0.0.1:%s; chunk_size 4096; application live { live on; } application vod { play %s; } } }\n' "$OURS_PORT" "$VOD_DIR" >"$ours_config"
  fi
  LOG_LEVEL=${LOG_LEVEL:-info} "${PIN_SERVER[@]}" node $OURS_NODE_ARGS dist/cli.js "$OURS_PORT" ${ours_config:+-c "$ours_config"} >"$OUT/server-ours-$tag.log" 2>&1 &
  OURS_PID=$!
  mkdir -p "$TMP/nginx"
  sed -e "s#@PORT@#$NGINX_PORT#" -e "s#@PID_FILE@#$TMP/nginx/nginx.pid#" -e "s#@MODULE@#$NGX_MODULE#" -e "s#@HLS_PATH@#$TMP/hls-nginx#" -e "s#@APP_EXTRA@#$NGINX_APP_EXTRA#" -e "s#@VOD_DIR@#$VOD_DIR#" \
    "$nginx_template" >"$TMP/nginx/nginx.conf"
  "${PIN_SERVER[@]}" nginx -e stderr -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$OUT/server-nginx-$tag.log" 2>&1 &
  NGINX_PID=$!
  wait_port "$OURS_PORT" "$OURS_PID" || { log "our server did not start:"; cat "$OUT/server-ours-$tag.log" >&2; return 1; }
  wait_port "$NGINX_PORT" "$NGINX_PID" || { log "nginx did not start:"; cat "$OUT/server-nginx-$tag.log" >&2; return 1; }
}

load_server() { # label (ours|nginx), pid, port, tag, load args... (in the background)
  local label=$1 pid=$2 port=$3 tag=$4
  shift 4
  local log_args=()
  # our server's JSON log tells the load tool the frames it dropped (nginx-rtmp logs none)
  [ "$label" = ours ] && log_args=(--server-log "$OUT/server-ours-$tag.log")
  # shellcheck disable=SC2086
  "${PIN_LOAD[@]}" node --import tsx bench/rtmp-load.ts --quiet --label "$label" --pid "$pid" "${log_args[@]}" \
    --url "rtmp://127.0.0.1:$port/$STREAM_PATH" --json "$OUT/$tag-$label.json" "$@" $LOAD_ARGS >"$OUT/$tag-$label.txt" 2>&1 &
}
load_ours() { load_server ours "$OURS_PID" "$OURS_PORT" "$@"; }
load_nginx() { load_server nginx "$NGINX_PID" "$NGINX_PORT" "$@"; }

# both servers loaded at the same time: key, round, load args...
run_pair() {
  local key=$1 round=$2
  shift 2
  local tag="$key-r$round"
  start_servers "$tag" || { stop_servers; return 0; }
  log "$tag: ours pid $OURS_PID, nginx pid $NGINX_PID: $*"
  load_ours "$tag" "$@"
  local a=$!
  load_nginx "$tag" "$@"
  local b=$!
  wait "$a" || log "$tag: load on ours failed: $(tail -3 "$OUT/$tag-ours.txt")"
  wait "$b" || log "$tag: load on nginx failed: $(tail -3 "$OUT/$tag-nginx.txt")"
  stop_servers
}

# one server loaded at a time (the load tool has a core to itself): key, round, load args...
run_solo() {
  local key=$1 round=$2
  shift 2
  local tag="$key-r$round"
  start_servers "$tag" || { stop_servers; return 0; }
  log "$tag (one at a time): ours pid $OURS_PID, nginx pid $NGINX_PID: $*"
  load_ours "$tag" "$@"
  wait $! || log "$tag: load on ours failed: $(tail -3 "$OUT/$tag-ours.txt")"
  load_nginx "$tag" "$@"
  wait $! || log "$tag: load on nginx failed: $(tail -3 "$OUT/$tag-nginx.txt")"
  stop_servers
}

# `record all` on both servers: P publishers (each with one player, as in the publishers mode), then the files checked
run_record() { # round
  local round=$1 tag="record$RECORD_PUBLISHERS-r$1"
  local rec_ours=$TMP/rec-ours rec_nginx=$TMP/rec-nginx
  rm -rf "$rec_ours" "$rec_nginx"
  mkdir -p "$rec_ours" "$rec_nginx"
  sed -e "s#@PORT@#$OURS_PORT#" -e "s#@RECORD_PATH@#$rec_ours#" "$RECORD_TEMPLATE" >"$TMP/ours-record.conf"
  local saved_config=$OURS_CONFIG
  OURS_CONFIG=$TMP/ours-record.conf
  NGINX_APP_EXTRA="record all; record_path $rec_nginx;"
  run_pair "record$RECORD_PUBLISHERS" "$round" --publishers "$RECORD_PUBLISHERS" --seconds "$DURATION"
  OURS_CONFIG=$saved_config
  NGINX_APP_EXTRA=""
  node --import tsx bench/lib/record-check.ts --json "$OUT/$tag-record.json" "ours=$rec_ours" "nginx=$rec_nginx" >&2 || log "$tag: record check failed"
  rm -rf "$rec_ours" "$rec_nginx"
}

log "results in $OUT"
for n in $PLAYERS; do
  for r in $(seq "$ROUNDS"); do run_pair "players$n" "$r" --players "$n" --seconds "$DURATION"; done
done
for n in $SOLO; do
  for r in $(seq "$ROUNDS"); do run_solo "solo$n" "$r" --players "$n" --seconds "$DURATION"; done
done
for x in $EXTRA; do
  case $x in
    latency) for r in $(seq "$ROUNDS"); do run_pair latency "$r" --latency --seconds "$DURATION"; done ;;
    publishers) for r in $(seq "$ROUNDS"); do run_pair "publishers$PUBLISHERS" "$r" --publishers "$PUBLISHERS" --seconds "$DURATION"; done ;;
    hls)
      for r in $(seq "$ROUNDS"); do
        HLS_RUN=1 run_pair "hls$HLS_PUBLISHERS" "$r" --publishers "$HLS_PUBLISHERS" --seconds "$DURATION"
        log "hls$HLS_PUBLISHERS-r$r: fragments left on disk: ours $(find "$TMP/hls-ours" -name '*.ts' | wc -l), nginx $(find "$TMP/hls-nginx" -name '*.ts' | wc -l)"
      done
      ;;
    record) for r in $(seq "$ROUNDS"); do run_record "$r"; done ;;
    vod)
      # VOD_PLAYERS players of one 10-minute file, MP4 then FLV (the same streams), from the servers' play directory
      STREAM_PATH=vod/mp4:vod.mp4
      for r in $(seq "$ROUNDS"); do run_pair "vod-mp4-$VOD_PLAYERS" "$r" --vod --players "$VOD_PLAYERS" --file "$VOD_DIR/vod.flv" --seconds "$DURATION"; done
      STREAM_PATH=vod/vod
      for r in $(seq "$ROUNDS"); do run_pair "vod-flv-$VOD_PLAYERS" "$r" --vod --players "$VOD_PLAYERS" --file "$VOD_DIR/vod.flv" --seconds "$DURATION"; done
      STREAM_PATH=live/bench
      ;;
    *) log "unknown EXTRA mode $x" ;;
  esac
done

node --import tsx bench/lib/compare-report.ts "$OUT"
