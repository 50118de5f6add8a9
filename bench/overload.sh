#!/usr/bin/env bash
# Memory under overload (issue #8): gemini-emulator + vision-server, then
#  1. the sustainable rate of one RPC: open-loop vision-bench runs at rising --rates; the highest
#     rate whose requests all succeed (≥ 99%) within --slo-ms at p99 is sustainable;
#  2. --factor (4) times that rate for --overload-s seconds, with the server's RSS sampled every
#     second: the limits (--max_concurrent_calls, --max_queued_cpu_work) must shed the excess
#     with RESOURCE_EXHAUSTED / UNAVAILABLE, and RSS must level off. Prints RSS over time, its
#     peak in each half of the run, and the outcomes by code.
#
#   bench/overload.sh [--build-dir build] [--rpc detect] [--image-size 640x480]
#                     [--rates "25 50 100 200 400 800"] [--step-s 10] [--slo-ms 1000]
#                     [--factor 4] [--overload-s 120] [--upstream-delay-ms 50]
#                     [-- extra vision-server flags, e.g. --max_concurrent_calls=256]
# Binaries default to BUILD_DIR/{emulator/gemini-emulator,service/vision-server,bench/vision-bench};
# override with EMULATOR_BIN, SERVER_BIN, BENCH_BIN.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD_DIR="$REPO/build"
RPC=detect
IMAGE_SIZE=640x480
RATES="25 50 100 200 400 800"
STEP_S=10
SLO_MS=1000
FACTOR=4
OVERLOAD_S=120
UPSTREAM_DELAY_MS=50
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --rpc) RPC=$2; shift 2 ;;
    --image-size) IMAGE_SIZE=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --step-s) STEP_S=$2; shift 2 ;;
    --slo-ms) SLO_MS=$2; shift 2 ;;
    --factor) FACTOR=$2; shift 2 ;;
    --overload-s) OVERLOAD_S=$2; shift 2 ;;
    --upstream-delay-ms) UPSTREAM_DELAY_MS=$2; shift 2 ;;
    --) shift; SERVER_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "overload.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
EMULATOR_BIN=${EMULATOR_BIN:-$BUILD_DIR/emulator/gemini-emulator}
SERVER_BIN=${SERVER_BIN:-$BUILD_DIR/service/vision-server}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bench/vision-bench}
for bin in "$EMULATOR_BIN" "$SERVER_BIN" "$BENCH_BIN"; do
  [ -x "$bin" ] || { echo "overload.sh: $bin not built (cmake --build $BUILD_DIR)" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# shellcheck source=../tests/e2e/lib/processes.sh
. "$REPO/tests/e2e/lib/processes.sh"
vg_init
KEY=overload-key-$RANDOM$RANDOM
vg_start_emulator "$EMULATOR_BIN" --api_key "$KEY"
GEMINI_API_KEY=$KEY vg_start_server "$SERVER_BIN" "$VG_EMULATOR_URL" "${SERVER_ARGS[@]}"
/usr/bin/python3 - "$VG_EMULATOR_URL" "$UPSTREAM_DELAY_MS" <<'EOF'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + '/emulator/config', method='POST',
                                 data=json.dumps({'response_delay_ms': int(sys.argv[2])}).encode(),
                                 headers={'Content-Type': 'application/json'})
urllib.request.urlopen(request, timeout=10).read()
EOF
echo "vision-server pid $VG_SERVER_PID at 127.0.0.1:$VG_SERVER_PORT ${SERVER_ARGS[*]}"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rpc $RPC, image ${IMAGE_SIZE}, upstream delay ${UPSTREAM_DELAY_MS} ms"

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$VG_SERVER_PID/status"; }

# run RATE SECONDS: vision-bench open loop; prints its JSON line.
run() {
  "$BENCH_BIN" --target "127.0.0.1:$VG_SERVER_PORT" --rpc "$RPC" --rate "$1" --duration_s "$2" \
    --warmup_s 1 --timeout_s 30 --image_width "${IMAGE_SIZE%x*}" --image_height "${IMAGE_SIZE#*x}" \
    --server_pid "$VG_SERVER_PID" --json | grep '^{'
}
# field JSON EXPR: a value from vision-bench's JSON line (r is the parsed object).
field() { /usr/bin/python3 -c "import json,sys; r=json.loads(sys.argv[1]); print($2)" "$1"; }

echo
echo "== 1. sustainable rate (${STEP_S} s per rate; sustainable: >= 99% OK and p99 <= ${SLO_MS} ms)"
SUSTAINABLE=0
for rate in $RATES; do
  r=$(run "$rate" "$STEP_S")
  ok=$(field "$r" "r['ok']")
  failed=$(field "$r" "r['failed'] + r['unfinished']")
  p99=$(field "$r" "r['latency']['p99_ms']")
  echo "rate $rate/s: ok $ok, failed $failed $(field "$r" "r['failures']"), p50 $(field "$r" "r['latency']['p50_ms']") ms, p99 $p99 ms, RSS max $(field "$r" "round(r['server']['rss_kb_max'] / 1024, 1)") MiB"
  if /usr/bin/python3 -c "import sys; ok, failed, p99, slo = map(float, sys.argv[1:]); sys.exit(0 if ok > 0 and failed <= 0.01 * (ok + failed) and p99 <= slo else 1)" \
       "$ok" "$failed" "$p99" "$SLO_MS"; then
    SUSTAINABLE=$rate
  else
    break
  fi
done
if [ "$SUSTAINABLE" = 0 ]; then
  echo "overload.sh: not even the lowest rate was sustainable" >&2
  exit 1
fi
OVER=$((SUSTAINABLE * FACTOR))
echo "sustainable: $SUSTAINABLE/s"

echo
echo "== 2. ${FACTOR}x: $OVER/s for ${OVERLOAD_S} s (RSS every second)"
SAMPLES="$VG_TMP/rss.txt"
: >"$SAMPLES"
( start=$(date +%s); while kill -0 "$VG_SERVER_PID" 2>/dev/null; do
    echo "$(( $(date +%s) - start )) $(rss_mib)" >>"$SAMPLES"; sleep 1; done ) &
SAMPLER=$!
r=$(run "$OVER" "$OVERLOAD_S")
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
echo "ok $(field "$r" "r['ok']"), failed $(field "$r" "r['failed']") by code $(field "$r" "r['failures']"), unfinished $(field "$r" "r['unfinished']"), achieved $(field "$r" "round(r['generator']['achieved_rate'])")/s, p50 $(field "$r" "r['latency']['p50_ms']") ms, p99 $(field "$r" "r['latency']['p99_ms']") ms (successful calls)"
/usr/bin/python3 - "$SAMPLES" <<'EOF'
import sys
samples = [tuple(map(float, line.split())) for line in open(sys.argv[1]) if len(line.split()) == 2]
print('RSS (s: MiB): ' + ', '.join(f'{int(t)}: {m:.0f}' for t, m in samples[::10]))
half = len(samples) // 2
first, second = [m for _, m in samples[:half]], [m for _, m in samples[half:]]
if first and second:
    print(f'RSS start {samples[0][1]:.1f} MiB, peak in the first half {max(first):.1f} MiB, '
          f'peak in the second half {max(second):.1f} MiB, end {samples[-1][1]:.1f} MiB')
EOF
kill -0 "$VG_SERVER_PID" && echo "server alive at the end: True"
