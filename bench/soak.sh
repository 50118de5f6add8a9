#!/usr/bin/env bash
# Soak (issue #8): gemini-emulator + vision-server, then bench/soak.py for a fixed duration: mixed
# Caption/Detect/Segment/CountTokens calls (some with short deadlines, some cancelled mid-stream)
# while upstream faults are injected through the emulator's script mode. Prints the server's RSS,
# threads and open fds over time and the outcomes by RPC and gRPC code; fails if the server died,
# a call ended with a code no fault explains, or the API key reached the server's log.
#
#   bench/soak.sh [--build-dir build] [--duration 600] [--concurrency 16] [--fault-every 0.5]
#                 [--sample-every 30] [--deadline 8] [--seed 1] [--upstream-delay-ms 20]
#                 [-- extra vision-server flags, e.g. --max_concurrent_calls=8]
# Binaries default to BUILD_DIR/{emulator/gemini-emulator,service/vision-server}; override with
# EMULATOR_BIN, SERVER_BIN. Needs Debian's python3-grpcio (/usr/bin/python3), protoc and
# grpc_python_plugin (scripts/install-deps.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD_DIR="$REPO/build"
UPSTREAM_DELAY_MS=20
SOAK_ARGS=()
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --upstream-delay-ms) UPSTREAM_DELAY_MS=$2; shift 2 ;;
    --duration|--concurrency|--fault-every|--sample-every|--deadline|--seed)
      SOAK_ARGS+=("$1" "$2"); shift 2 ;;
    --) shift; SERVER_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
EMULATOR_BIN=${EMULATOR_BIN:-$BUILD_DIR/emulator/gemini-emulator}
SERVER_BIN=${SERVER_BIN:-$BUILD_DIR/service/vision-server}
for bin in "$EMULATOR_BIN" "$SERVER_BIN"; do
  [ -x "$bin" ] || { echo "soak.sh: $bin not built (cmake --build $BUILD_DIR)" >&2; exit 2; }
done

# shellcheck source=../tests/e2e/lib/processes.sh
. "$REPO/tests/e2e/lib/processes.sh"
vg_init
KEY=soak-key-$RANDOM$RANDOM$RANDOM
vg_start_emulator "$EMULATOR_BIN" --api_key "$KEY"
# The server's log (access log included, ~30 MB per 10 minutes) is scanned for the key below.
GEMINI_API_KEY=$KEY vg_start_server "$SERVER_BIN" "$VG_EMULATOR_URL" "${SERVER_ARGS[@]}"
echo "gemini-emulator pid $VG_EMULATOR_PID at $VG_EMULATOR_URL"
echo "vision-server   pid $VG_SERVER_PID at 127.0.0.1:$VG_SERVER_PORT ${SERVER_ARGS[*]}"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

rc=0
/usr/bin/python3 "$HERE/soak.py" --server "127.0.0.1:$VG_SERVER_PORT" \
  --emulator "$VG_EMULATOR_URL" --server-pid "$VG_SERVER_PID" \
  --upstream-delay-ms "$UPSTREAM_DELAY_MS" "${SOAK_ARGS[@]}" || rc=$?
if grep -qF "$KEY" "$VG_TMP/server.log"; then
  echo "soak: FAIL: the API key appeared in the server log" >&2
  rc=1
fi
echo "server log: $(wc -l <"$VG_TMP/server.log") lines"
exit $rc
