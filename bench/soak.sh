#!/usr/bin/env bash
# Memory over a long run with players joining and leaving: one server (run as
# `npm start` runs it), ROUNDS rounds of `rtmp-load` (a publisher and PLAYERS
# players for SECONDS, then everybody leaves). Prints the server's RSS before
# each round (its idle level after the previous crowd left), during it, and
# after; a leak shows as the idle level climbing round after round.
#
#   ROUNDS=20 PLAYERS=300 ROUND_SECONDS=20 bench/soak.sh       # about 10 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-20}
PLAYERS=${PLAYERS:-300}
SECONDS_PER_ROUND=${ROUND_SECONDS:-20}
PORT=${PORT:-19391}
OUT=${OUT:-bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
[ -f dist/cli.js ] || npm run --silent build
node --import tsx bench/make-media.ts >/dev/null
PIN_SERVER=(); PIN_LOAD=()
if [ "$(nproc)" -ge 2 ]; then PIN_SERVER=(taskset -c 0); PIN_LOAD=(taskset -c 1); fi
LOG_LEVEL=info "${PIN_SERVER[@]}" node dist/cli.js "$PORT" >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
sleep 1
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
printf '| round | RSS before (KiB) | steady mean (KiB) | after leave (KiB) | delivered/expected |\n|---|---|---|---|---|\n' | tee "$OUT/summary.md"
for r in $(seq "$ROUNDS"); do
  before=$(rss)
  "${PIN_LOAD[@]}" node --import tsx bench/rtmp-load.ts --quiet --pid "$PID" --url "rtmp://127.0.0.1:$PORT/live/soak" \
    --players "$PLAYERS" --seconds "$SECONDS_PER_ROUND" --json "$OUT/round-$r.json" >"$OUT/round-$r.txt" 2>&1
  node -e "const j=JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8')); const m=j.server.rssKiB; console.log('| $r | $before | '+Math.round(m.steadyMean)+' | '+Math.round(m.afterLeave)+' | '+j.throughput.ratio.toFixed(3)+' |')" "$OUT/round-$r.json" | tee -a "$OUT/summary.md"
done
sleep 12
echo "idle at the end (12 s after the last round): $(rss) KiB" | tee -a "$OUT/summary.md"
grep -c 'memory reclaimed' "$OUT/server.log" | xargs -I{} echo "collections after crowds left: {}" | tee -a "$OUT/summary.md"
