#!/usr/bin/env bash
# vision-server against the gateway a team would otherwise write (bench/peers/node_caption_peer.mjs:
# Node @grpc/grpc-js + @grpc/proto-loader + the official @google/genai SDK), both in front of the
# same gemini-emulator, under the same closed-loop Caption load from vision-bench; one after the
# other in one run. Prints each report, then the ratios (gateway / peer):
#   throughput      ok calls per second
#   CPU efficiency  calls per CPU-second of the server process (user + system, warm-up included)
#   RSS             the server's peak resident memory during its run
#
#   bench/peer_compare.sh [--build-dir build] [--concurrency 64] [--duration 10] [--warmup 2]
#                         [--emulator-threads 2] [--channels 4] [-- extra vision-server flags...]
# Binaries default to BUILD_DIR/{emulator/gemini-emulator,service/vision-server,bench/vision-bench}
# (override with EMULATOR_BIN, SERVER_BIN, BENCH_BIN); node from PATH with the repo's node_modules.
# Exits 1 if a call failed, 77 if node or its packages are missing. The emulator, both servers and
# the load generator share this machine's cores: compare ratios from the same run only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BUILD_DIR="$REPO/build"
CONCURRENCY=64
DURATION=10
WARMUP=2
EMULATOR_THREADS=2
CHANNELS=4
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --emulator-threads) EMULATOR_THREADS=$2; shift 2 ;;
    --channels) CHANNELS=$2; shift 2 ;;
    --) shift; SERVER_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "peer_compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
EMULATOR_BIN=${EMULATOR_BIN:-$BUILD_DIR/emulator/gemini-emulator}
SERVER_BIN=${SERVER_BIN:-$BUILD_DIR/service/vision-server}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bench/vision-bench}
for bin in "$EMULATOR_BIN" "$SERVER_BIN" "$BENCH_BIN"; do
  [ -x "$bin" ] || { echo "peer_compare.sh: $bin not built (cmake --build $BUILD_DIR)" >&2; exit 2; }
done
if ! command -v node >/dev/null ||
   ! (cd "$REPO" && node -e 'require.resolve("@google/genai"); require.resolve("@grpc/grpc-js");
                             require.resolve("@grpc/proto-loader")' 2>/dev/null); then
  echo "peer_compare.sh: node with @google/genai, @grpc/grpc-js, @grpc/proto-loader is needed" \
       "(npm ci in $REPO)" >&2
  exit 77
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck source=../tests/e2e/lib/processes.sh
. "$REPO/tests/e2e/lib/processes.sh"
vg_init
OUT_DIR=${OUT_DIR:-$VG_TMP}

KEY=bench-key
vg_start_emulator "$EMULATOR_BIN" --api_key "$KEY" --threads "$EMULATOR_THREADS"
GEMINI_API_KEY=$KEY vg_start_server "$SERVER_BIN" "$VG_EMULATOR_URL" "${SERVER_ARGS[@]}"
GEMINI_API_KEY=$KEY node "$HERE/peers/node_caption_peer.mjs" --gemini_base_url "$VG_EMULATOR_URL" \
  >"$VG_TMP/peer.log" 2>&1 &
PEER_PID=$!
VG_PIDS+=("$PEER_PID")
PEER_PORT=$(vg_wait_line "$VG_TMP/peer.log" 'node-peer listening on [^ ]*:([0-9]+)' "$PEER_PID")
echo "gemini-emulator pid $VG_EMULATOR_PID at $VG_EMULATOR_URL ($EMULATOR_THREADS threads)"
echo "vision-server   pid $VG_SERVER_PID at 127.0.0.1:$VG_SERVER_PORT"
echo "node peer       pid $PEER_PID at 127.0.0.1:$PEER_PORT (node $(node --version))"
echo "machine: $(nproc) cores; $(uname -sr)"

COMMON=(--rpc caption --concurrency "$CONCURRENCY" --duration_s "$DURATION" --warmup_s "$WARMUP"
        --channels "$CHANNELS" --timeout_s 30 --json)
STATUS=0
# run LABEL PORT PID: one closed-loop run against one server; its JSON line in OUT_DIR/LABEL.json.
run() {
  local label=$1 port=$2 pid=$3 out="$OUT_DIR/$1.txt" rc=0
  echo
  echo "=== $label: vision-bench --target 127.0.0.1:$port ${COMMON[*]}"
  "$BENCH_BIN" --target "127.0.0.1:$port" --server_pid "$pid" --label "$label" "${COMMON[@]}" \
    >"$out" || rc=$?
  grep -v '^{' "$out" || true
  grep '^{' "$out" >"$OUT_DIR/$label.json" || true
  if [ "$rc" -ne 0 ]; then STATUS=1; fi
}
run peer "$PEER_PORT" "$PEER_PID"
run gateway "$VG_SERVER_PORT" "$VG_SERVER_PID"

echo
node - "$OUT_DIR/gateway.json" "$OUT_DIR/peer.json" <<'EOF' || STATUS=1
const fs = require('fs');
const [gateway, peer] = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
for (const r of [gateway, peer]) {
  if (r.failed > 0 || r.unfinished > 0 || r.ok === 0) {
    console.log(`${r.label}: ${r.ok} ok, ${r.failed} failed, ${r.unfinished} unfinished`);
    process.exitCode = 1;
  }
}
const perCpuSecond = (r) => 1000 / r.server.cpu_ms_per_request;
const row = (name, g, p, unit, digits = 1) =>
  console.log(`${name.padEnd(16)} gateway ${g.toFixed(digits).padStart(9)} ${unit.padEnd(14)} ` +
              `peer ${p.toFixed(digits).padStart(9)} ${unit.padEnd(14)} ratio ${(g / p).toFixed(2)}x`);
console.log('gateway / node peer, one run, closed loop, same emulator:');
row('throughput', gateway.rps, peer.rps, 'calls/s');
row('CPU efficiency', perCpuSecond(gateway), perCpuSecond(peer), 'calls/CPU-s');
row('RSS (peak)', gateway.server.rss_kb_max / 1024, peer.server.rss_kb_max / 1024, 'MiB');
EOF
echo "(targets, issue #18: throughput >= 8x, CPU efficiency >= 8x, RSS <= 0.25x)"
exit $STATUS
