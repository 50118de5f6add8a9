#!/usr/bin/env bash
# Instructions the gateway executes per call, counted by valgrind's callgrind: repeatable to a few
# per mille even on a shared, noisy machine (unlike wall-clock or CPU-time figures).
#
#   bench/callgrind_calls.sh [--build-dir build] [--rpc caption] [--seconds 20] [--label NAME]
#                            [-- extra vision-server flags...]
#
# Starts gemini-emulator (natively) and vision-server under callgrind; after 3 s of warm-up calls
# (connections, lazily made series) it counts the instructions of a window of --seconds while
# vision-bench keeps one --rpc call in flight (closed loop, one channel). Prints the calls served,
# instructions / calls, and the inclusive instructions per call of the telemetry functions
# (interceptor, call record, access log, Prometheus exporter, instrumented client).
# Compare flag paths side by side, e.g. telemetry on vs `-- --metrics_port=-1 --log_level=warning`.
# The callgrind files stay in $OUT_DIR (default: a temp dir, printed) for callgrind_annotate.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD_DIR="$REPO/build"
RPC=caption
SECONDS_PER_RUN=20
LABEL=run
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --rpc) RPC=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --) shift; SERVER_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "callgrind_calls.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || {
  echo "callgrind_calls.sh: needs valgrind (apt install valgrind)" >&2; exit 2; }
EMULATOR_BIN=${EMULATOR_BIN:-$BUILD_DIR/emulator/gemini-emulator}
SERVER_BIN=${SERVER_BIN:-$BUILD_DIR/service/vision-server}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bench/vision-bench}
for bin in "$EMULATOR_BIN" "$SERVER_BIN" "$BENCH_BIN"; do
  [ -x "$bin" ] || { echo "callgrind_calls.sh: $bin not built" >&2; exit 2; }
done

# shellcheck source=../tests/e2e/lib/processes.sh
. "$REPO/tests/e2e/lib/processes.sh"
vg_init
OUT_DIR=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vg-callgrind.XXXXXX")}
mkdir -p "$OUT_DIR"
KEY=bench-key
vg_start_emulator "$EMULATOR_BIN" --api_key "$KEY"

# Functions whose inclusive cost is the telemetry's (callgrind_annotate names, regex).
TELEMETRY='TelemetryInterceptor|CallRegistry::|CallRecord::|LogAccess|AccessLogFields|GenerateRequestId|PrometheusTelemetry|InstrumentedGeminiClient|Exchange::'

# One vision-server under callgrind: warm-up calls, then the counters are zeroed and dumped
# around the measured window.
wrapper="$OUT_DIR/valgrind-server.sh"
printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s %s "$@"\n' \
  "$OUT_DIR/$LABEL.callgrind" "$SERVER_BIN" >"$wrapper"
chmod +x "$wrapper"
# A port picked here, and readiness by connecting: with --log_level=warning the server prints no
# "listening" line.
VG_SERVER_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
GEMINI_API_KEY=$KEY "$wrapper" --metrics_port 0 --listen_host 127.0.0.1 \
  --gemini_base_url "$VG_EMULATOR_URL" "${SERVER_ARGS[@]}" --port "$VG_SERVER_PORT" \
  >"$OUT_DIR/$LABEL.log" 2>&1 &
VG_SERVER_PID=$!
VG_PIDS+=("$VG_SERVER_PID")
/usr/bin/python3 - "$VG_SERVER_PORT" "$VG_SERVER_PID" <<'PY' || { cat "$OUT_DIR/$LABEL.log" >&2; exit 1; }
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.time() + 180
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit('vision-server exited')
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit('vision-server did not listen within 180 s')
PY

# load SECONDS NAME: one --rpc call in flight for SECONDS; prints the calls that ended.
load() {
  "$BENCH_BIN" --target "127.0.0.1:$VG_SERVER_PORT" --rpc "$RPC" --concurrency 1 --channels 1 \
    --warmup_s 0 --duration_s "$1" --timeout_s 60 --json --label "$2" >"$OUT_DIR/$LABEL.$2.bench" ||
    true
  grep '^{' "$OUT_DIR/$LABEL.$2.bench" | sed -E 's/.*"ok":([0-9]+),"failed":([0-9]+).*/\1 \2/' |
    awk '{print $1 + $2}'
}
# dump_ir N: dumps the counters since the last zeroing (callgrind_control; applied when a server
# thread next runs) to LABEL.callgrind.N and prints their total.
dump_ir() {
  callgrind_control --dump "$VG_SERVER_PID" >/dev/null 2>&1
  local file="$OUT_DIR/$LABEL.callgrind.$1"
  for _ in $(seq 300); do [ -s "$file" ] && break; sleep 0.2; done
  (callgrind_annotate "$file" 2>/dev/null || true) | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

load 3 warmup >/dev/null
callgrind_control --zero "$VG_SERVER_PID" >/dev/null 2>&1
CALLS=$(load "$SECONDS_PER_RUN" loaded)
LOADED_IR=$(dump_ir 1)
LOADED_FILE="$OUT_DIR/$LABEL.callgrind.1"
kill -TERM "$VG_SERVER_PID"
wait "$VG_SERVER_PID" 2>/dev/null || true
[ "${CALLS:-0}" -gt 0 ] && [ -n "$LOADED_IR" ] || {
  echo "callgrind_calls.sh: no call completed or no dump" >&2; exit 1; }
# Idle threads (pollers, timers) add ~10k instructions per second: < 0.1% of a call here.
PER_CALL=$(( LOADED_IR / CALLS ))
echo "label $LABEL, rpc $RPC, server flags: ${SERVER_ARGS[*]:-(none)}"
echo "window: $LOADED_IR instructions, $CALLS calls in ${SECONDS_PER_RUN}s"
echo "per call:   $PER_CALL instructions"
echo "telemetry functions, inclusive instructions per call (loaded run):"
(callgrind_annotate --inclusive=yes --threshold=100 "$LOADED_FILE" 2>/dev/null ||
  true) | grep -E "$TELEMETRY" | grep -vE 'Impl::Impl|Exposer|StartHttp|~' | head -25 |
  awk -v calls="$CALLS" '{ir=$1; gsub(",", "", ir); $1=""; printf "  %10d %s\n", ir / calls, substr($0, 1, 150)}' ||
  true
echo "callgrind files: $OUT_DIR"
