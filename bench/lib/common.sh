# shellcheck shell=bash
# The preamble the bench scripts share: sourced (never run) by bench/compare.sh,
# bench/latency-compare.sh and bench/flv-compare.sh, after their
# `set -euo pipefail` and `cd` to the repository root. Sourcing runs nothing but
# the NGX_MODULE assignment; each script calls the functions it needs.
#
# Reads:
#   BENCH_TAG             the log prefix (compare, latency, flv-compare): set it before sourcing
#   SERVER_CPU, LOAD_CPU  pin_cores: the core of the servers, the core of the load tool
#   SKIP_BUILD            build_ours: 1 = use the existing dist/ when dist/cli.js is there
#   OURS_PID, NGINX_PID   stop_servers: the two servers of a side-by-side run ("" = not running)
# Sets:
#   NGX_MODULE            nginx-rtmp's module (Debian's libnginx-mod-rtmp)
#   PIN_SERVER, PIN_LOAD  pin_cores: `taskset -c CPU` as arrays, empty with fewer than 2 cores
#   (ulimit -n)           raise_nofile: 65536, else the hard limit
# Functions: log, install_nginx_rtmp, pin_cores, raise_nofile, build_ours,
#   stop_pid, stop_servers, wait_port.

NGX_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so

log() { printf '[%s %s] %s\n' "$BENCH_TAG" "$(date +%H:%M:%S)" "$*" >&2; }

# nginx + libnginx-mod-rtmp with apt-get when missing; exits when the module is still not there
install_nginx_rtmp() {
  if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$NGX_MODULE" ]; then
    log "installing nginx + libnginx-mod-rtmp (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nginx libnginx-mod-rtmp >/dev/null
    # the package may start a system nginx on port 80: it is not ours to keep
    if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
  fi
  [ -f "$NGX_MODULE" ] || { log "no $NGX_MODULE after install"; exit 1; }
}

pin_cores() {
  if [ "$(nproc)" -lt 2 ]; then
    log "fewer than 2 cores: no pinning (results are not comparable to the reference)"
    PIN_SERVER=()
    PIN_LOAD=()
  else
    # arrays, not functions: `taskset ... &` must be the process whose pid $! gives (taskset execs)
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_LOAD=(taskset -c "$LOAD_CPU")
  fi
}

raise_nofile() {
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# dist/ (our server) from `npm run build`, unless SKIP_BUILD=1 and dist/cli.js exists
build_ours() {
  if [ "${SKIP_BUILD:-0}" = 1 ] && [ -f dist/cli.js ]; then
    log "SKIP_BUILD=1: using the existing dist/"
  else
    log "building our server (npm run build)"
    npm run --silent build
  fi
}

stop_pid() { # pid: TERM, wait up to 5 s, then KILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_servers() {
  stop_pid "$OURS_PID"; OURS_PID=""
  stop_pid "$NGINX_PID"; NGINX_PID=""
}

wait_port() { # port pid: up to 10 s for 127.0.0.1:port to accept; fails at once when pid has exited
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
