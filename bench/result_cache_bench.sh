#!/usr/bin/env bash
# The result cache (#21): a hit's latency and server CPU against a miss on the same image.
# gemini-emulator + two vision-servers pointed at it, one without a cache (every call a miss) and
# one with --result_cache_mb (after the warm-up every call is a hit); the same closed-loop
# vision-bench run (one image, one prompt) against each, for Detect and Segment. Prints p50/p99
# latency and the server's CPU per request (from /proc, vision-bench --server_pid).
#
#   bench/result_cache_bench.sh [--build-dir build] [--image-size 640x480] [--concurrency 4]
#                               [--duration-s 10] [--upstream-delay-ms 0] [--rpcs "detect segment"]
#                               [--store memory|redis]
# --store redis: the cached server keeps its entries in a redis-server this script starts.
# The emulator answers at once (--upstream-delay-ms 0): a miss's latency here is the gateway's
# and the emulator's work only; Gemini itself adds seconds on top of it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD_DIR="$REPO/build"
IMAGE_SIZE=640x480
CONCURRENCY=4
DURATION_S=10
UPSTREAM_DELAY_MS=0
RPCS="detect segment"
STORE=memory
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --image-size) IMAGE_SIZE=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --duration-s) DURATION_S=$2; shift 2 ;;
    --upstream-delay-ms) UPSTREAM_DELAY_MS=$2; shift 2 ;;
    --rpcs) RPCS=$2; shift 2 ;;
    --store) STORE=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "result_cache_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
EMULATOR_BIN=${EMULATOR_BIN:-$BUILD_DIR/emulator/gemini-emulator}
SERVER_BIN=${SERVER_BIN:-$BUILD_DIR/service/vision-server}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bench/vision-bench}
for bin in "$EMULATOR_BIN" "$SERVER_BIN" "$BENCH_BIN"; do
  [ -x "$bin" ] || { echo "result_cache_bench.sh: $bin not built" >&2; exit 2; }
done
# shellcheck source=../tests/e2e/lib/processes.sh
source "$REPO/tests/e2e/lib/processes.sh"
vg_init
KEY=bench-key

vg_start_emulator "$EMULATOR_BIN" --api_key "$KEY"
/usr/bin/python3 - "$VG_EMULATOR_URL" "$UPSTREAM_DELAY_MS" <<'EOF'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + '/emulator/config', method='POST',
                                 data=json.dumps({'response_delay_ms': int(sys.argv[2])}).encode(),
                                 headers={'Content-Type': 'application/json'})
urllib.request.urlopen(request, timeout=10).read()
EOF
GEMINI_API_KEY=$KEY vg_start_server "$SERVER_BIN" "$VG_EMULATOR_URL"
MISS_PID=$VG_SERVER_PID MISS_PORT=$VG_SERVER_PORT
mv "$VG_TMP/server.log" "$VG_TMP/server-miss.log"
CACHE_FLAGS=(--result_cache_mb 64)
if [ "$STORE" = redis ]; then
  # redis-server cannot listen on port 0: a port the kernel had free.
  REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$VG_TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  trap 'kill $REDIS_PID 2>/dev/null; vg_cleanup' EXIT
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    kill -0 $REDIS_PID || { cat "$VG_TMP/redis.log" >&2; exit 1; }
    sleep 0.05
  done
  CACHE_FLAGS=(--result_cache_redis "127.0.0.1:$REDIS_PORT")
elif [ "$STORE" != memory ]; then
  echo "result_cache_bench.sh: --store memory|redis" >&2; exit 2
fi
GEMINI_API_KEY=$KEY vg_start_server "$SERVER_BIN" "$VG_EMULATOR_URL" "${CACHE_FLAGS[@]}"
HIT_PID=$VG_SERVER_PID HIT_PORT=$VG_SERVER_PORT

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "store: ${STORE}"
echo "image ${IMAGE_SIZE} (generated PNG), concurrency ${CONCURRENCY}, ${DURATION_S} s per run," \
     "emulator delay ${UPSTREAM_DELAY_MS} ms"
# run PORT PID RPC: vision-bench closed loop; prints its JSON line.
run() {
  "$BENCH_BIN" --target "127.0.0.1:$1" --rpc "$3" --concurrency "$CONCURRENCY" \
    --duration_s "$DURATION_S" --warmup_s 2 --timeout_s 30 \
    --image_width "${IMAGE_SIZE%x*}" --image_height "${IMAGE_SIZE#*x}" \
    --server_pid "$2" --json | grep '^{'
}
printf '%-8s %-5s %8s %8s %8s %14s\n' rpc call p50_ms p99_ms rps cpu_ms_per_call
for rpc in $RPCS; do
  for kind in miss hit; do
    if [ "$kind" = miss ]; then line=$(run "$MISS_PORT" "$MISS_PID" "$rpc"); else line=$(run "$HIT_PORT" "$HIT_PID" "$rpc"); fi
    /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.argv[1])
if r["failed"]: sys.exit("failed requests: %s" % r["failures"])
print("%-8s %-5s %8.2f %8.2f %8.1f %14.3f" % (sys.argv[2], sys.argv[3], r["latency"]["p50_ms"],
      r["latency"]["p99_ms"], r["rps"], r["server"]["cpu_ms_per_request"]))' "$line" "$rpc" "$kind"
  done
done
