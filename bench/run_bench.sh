#!/usr/bin/env bash
# Benchmarks vision-server against gemini-emulator on this machine (loopback only):
#  (a) overhead: the same open-loop load (--rate) sent straight to the emulator (baseline) and
#      through the gateway, one after the other; prints both and the gateway's p50/p99 overhead;
#  (b) capacity: --concurrency streams held open against a slow upstream (--delay-ms per
#      response), checking that every one completes; prints the server's RSS and threads;
#  (u) upload (only with --only u): one --upload-mib file uploaded straight to the emulator
#      (resumable protocol, 8 MiB chunks) and through the gateway (client-streaming Upload),
#      throughput side by side; then --upload-concurrency uploads of it at once through the
#      gateway, with the server's RSS rise. The file is made in $TMPDIR (default /tmp), not here.
# Both processes listen on port 0; the script reads their "listening" lines to find the ports.
#
#   bench/run_bench.sh [--build-dir build] [--rate 1000] [--duration 20] [--warmup 3]
#                      [--concurrency 2000] [--delay-ms 2000] [--hold 10] [--only a|b]
#                      [--emulator-threads 2] [--rpc caption|detect|segment]
#                      [--upload-mib 1024] [--upload-concurrency 10] [--upload-runs 3]
#                      [-- extra vision-server flags...]
# The baseline sends exactly the body the gateway sends upstream: one request is made through the
# gateway first and its upstream body is read back from the emulator (GET /emulator/requests).
# Binaries default to BUILD_DIR/{emulator/gemini-emulator,service/vision-server,bench/vision-bench};
# override with EMULATOR_BIN, SERVER_BIN, BENCH_BIN. Results also go to JSON lines in $OUT_DIR
# (default: a temp dir, printed at the end).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BUILD_DIR="$REPO/build"
RATE=1000
DURATION=20
WARMUP=3
CONCURRENCY=2000
DELAY_MS=2000
HOLD=10
ONLY=""
EMULATOR_THREADS=2
RPC=caption
UPLOAD_MIB=1024
UPLOAD_CONCURRENCY=10
UPLOAD_RUNS=3
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --delay-ms) DELAY_MS=$2; shift 2 ;;
    --hold) HOLD=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --emulator-threads) EMULATOR_THREADS=$2; shift 2 ;;
    --rpc) RPC=$2; shift 2 ;;
    --upload-mib) UPLOAD_MIB=$2; shift 2 ;;
    --upload-concurrency) UPLOAD_CONCURRENCY=$2; shift 2 ;;
    --upload-runs) UPLOAD_RUNS=$2; shift 2 ;;
    --) shift; SERVER_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
EMULATOR_BIN=${EMULATOR_BIN:-$BUILD_DIR/emulator/gemini-emulator}
SERVER_BIN=${SERVER_BIN:-$BUILD_DIR/service/vision-server}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bench/vision-bench}
UPLOAD_BENCH_BIN=${UPLOAD_BENCH_BIN:-$BUILD_DIR/bench/upload-bench}
# Optional: gRPC's own cost per stream with no work behind it (bench/grpc_floor.cc), run in (a).
FLOOR_BIN=${FLOOR_BIN:-$BUILD_DIR/bench/grpc-floor}
for bin in "$EMULATOR_BIN" "$SERVER_BIN" "$BENCH_BIN" "$UPLOAD_BENCH_BIN"; do
  [ -x "$bin" ] || { echo "run_bench.sh: $bin not built (cmake --build $BUILD_DIR)" >&2; exit 2; }
done

# Thousands of sockets: lift the soft descriptor limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# shellcheck source=../tests/e2e/lib/processes.sh
. "$REPO/tests/e2e/lib/processes.sh"
vg_init
OUT_DIR=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vg-bench.XXXXXX")}
mkdir -p "$OUT_DIR"

KEY=bench-key
vg_start_emulator "$EMULATOR_BIN" --api_key "$KEY" --threads "$EMULATOR_THREADS"
GEMINI_API_KEY=$KEY vg_start_server "$SERVER_BIN" "$VG_EMULATOR_URL" "${SERVER_ARGS[@]}"
echo "gemini-emulator pid $VG_EMULATOR_PID at $VG_EMULATOR_URL ($EMULATOR_THREADS threads)"
echo "vision-server   pid $VG_SERVER_PID at 127.0.0.1:$VG_SERVER_PORT"
echo "machine: $(nproc) cores; $(uname -sr)"

# The emulator's run-time config (POST /emulator/config): the upstream delay per response.
set_upstream_delay() {
  curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' \
    -d "{\"response_delay_ms\": $1}" "$VG_EMULATOR_URL/emulator/config" >/dev/null
}

# bench LABEL ARGS...: runs vision-bench, shows its report, keeps its JSON line in OUT_DIR/LABEL.json.
bench() {
  local label=$1
  shift
  echo
  echo "=== $label: vision-bench $*"
  local out="$OUT_DIR/$label.txt"
  local rc=0
  "$BENCH_BIN" --json --label "$label" "$@" >"$out" || rc=$?
  grep -v '^{' "$out" || true
  grep '^{' "$out" >"$OUT_DIR/$label.json" || true
  return $rc
}

json() {  # json FILE EXPR: evaluates a JS expression over the parsed JSON line `r`.
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
           console.log(eval(process.argv[2]))' "$1" "$2"
}

# record_gateway_body FILE: makes one --rpc request through the gateway and writes the body of
# the streamGenerateContent request it sent upstream to FILE; prints the model id.
record_gateway_body() {
  curl -fsS --max-time 10 -X DELETE "$VG_EMULATOR_URL/emulator/requests" >/dev/null
  "$BENCH_BIN" --target "127.0.0.1:$VG_SERVER_PORT" --rpc "$RPC" --concurrency 1 --warmup_s 0 \
    --duration_s 0.05 --fail_on_error >/dev/null
  curl -fsS --max-time 10 "$VG_EMULATOR_URL/emulator/requests" |
    node -e '
      const fs = require("fs");
      const requests = JSON.parse(fs.readFileSync(0, "utf8"));
      const r = requests.reverse().find((q) => /:streamGenerateContent/.test(q.target));
      if (!r || r.body_truncated || r.body === undefined) process.exit(1);
      fs.writeFileSync(process.argv[1], r.body);
      console.log(r.target.match(/models\/([^:]+):/)[1]);' "$1"
}

STATUS=0

if [ -z "$ONLY" ] || [ "$ONLY" = a ]; then
  set_upstream_delay 0
  COMMON=(--rpc "$RPC" --rate "$RATE" --duration_s "$DURATION" --warmup_s "$WARMUP"
          --timeout_s 30)
  BODY="$OUT_DIR/gateway_upstream_body.json"
  MODEL=$(record_gateway_body "$BODY") || {
    echo "run_bench.sh: could not record the gateway's upstream request" >&2
    exit 1
  }
  echo "baseline body: the gateway's own upstream request for $RPC ($(wc -c <"$BODY") bytes," \
       "model $MODEL)"
  bench direct --mode gemini --target "127.0.0.1:$VG_EMULATOR_PORT" --gemini_body "$BODY" \
    --model "$MODEL" --server_pid "$VG_EMULATOR_PID" "${COMMON[@]}" || STATUS=1
  bench gateway --mode grpc --target "127.0.0.1:$VG_SERVER_PORT" \
    --server_pid "$VG_SERVER_PID" "${COMMON[@]}" || STATUS=1
  if [ "$RPC" = caption ] && [ -x "$FLOOR_BIN" ]; then
    # The floor: the same load against a server whose Caption only writes two fixed messages.
    # callback: gRPC's callback API with the writes started on another thread, as the gateway
    # does; async: the completion-queue API (what the other threading model costs).
    for api in callback async; do
      "$FLOOR_BIN" --hop thread --api "$api" >"$VG_TMP/floor-$api.log" 2>&1 &
      FLOOR_PID=$!
      VG_PIDS+=("$FLOOR_PID")
      FLOOR_PORT=$(vg_wait_line "$VG_TMP/floor-$api.log" 'grpc-floor listening on [^ ]*:([0-9]+)' \
                   "$FLOOR_PID") || exit 1
      bench "floor-$api" --mode grpc --target "127.0.0.1:$FLOOR_PORT" \
        --server_pid "$FLOOR_PID" "${COMMON[@]}" || STATUS=1
      kill "$FLOOR_PID" 2>/dev/null || true
    done
  fi
  echo
  echo "=== (a) gateway overhead at $RATE $RPC streams/s (gateway - direct, same load)"
  node - "$OUT_DIR/direct.json" "$OUT_DIR/gateway.json" <<'JS'
const fs = require('fs');
const [direct, gateway] = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const row = (name, d, g) => console.log(
    `${name.padEnd(22)} ${d.toFixed(2).padStart(10)} ${g.toFixed(2).padStart(10)} ${(g - d).toFixed(2).padStart(10)}`);
console.log(`${''.padEnd(22)} ${'direct'.padStart(10)} ${'gateway'.padStart(10)} ${'overhead'.padStart(10)}`);
row('latency p50 (ms)', direct.latency.p50_ms, gateway.latency.p50_ms);
row('latency p90 (ms)', direct.latency.p90_ms, gateway.latency.p90_ms);
row('latency p99 (ms)', direct.latency.p99_ms, gateway.latency.p99_ms);
row('first message p50 (ms)', direct.first_message.p50_ms, gateway.first_message.p50_ms);
row('first message p99 (ms)', direct.first_message.p99_ms, gateway.first_message.p99_ms);
row('ok/s', direct.rps, gateway.rps);
console.log(`failed: direct ${direct.failed}, gateway ${gateway.failed}` +
            `; generator behind: direct ${direct.generator?.behind}, gateway ${gateway.generator?.behind}`);
if (direct.server) {
  console.log(`gemini-emulator: ${direct.server.cpu_ms_per_request.toFixed(3)} ms CPU per ` +
              `request (${direct.server.cores.toFixed(2)} cores) in the direct run`);
}
if (gateway.server) {
  console.log(`vision-server: RSS max ${(gateway.server.rss_kb_max / 1024).toFixed(1)} MiB, ` +
              `threads max ${gateway.server.threads_max}, ` +
              `${gateway.server.cpu_ms_per_request.toFixed(3)} ms CPU per request ` +
              `(${gateway.server.cores.toFixed(2)} cores), ` +
              `${gateway.server.context_switches_per_request?.toFixed(1)} context switches ` +
              `per request`);
}
for (const api of ['callback', 'async']) {
  const floorFile = process.argv[2].replace(/direct\.json$/, `floor-${api}.json`);
  if (!fs.existsSync(floorFile)) continue;
  const floor = JSON.parse(fs.readFileSync(floorFile, 'utf8'));
  console.log(`grpc-floor --api ${api} (gRPC alone, no upstream): ` +
              `${floor.server.cpu_ms_per_request.toFixed(3)} ms CPU per stream, ` +
              `${floor.server.context_switches_per_request?.toFixed(1)} context switches per ` +
              `stream, latency p50 ${floor.latency.p50_ms.toFixed(2)} ms`);
}
JS
fi

if [ -z "$ONLY" ] || [ "$ONLY" = b ]; then
  set_upstream_delay "$DELAY_MS"
  # Every stream lasts at least DELAY_MS; hold the load for HOLD seconds and require that every
  # stream started completes successfully.
  if bench concurrent --mode grpc --rpc "$RPC" --target "127.0.0.1:$VG_SERVER_PORT" \
       --server_pid "$VG_SERVER_PID" --concurrency "$CONCURRENCY" --warmup_s 0 \
       --duration_s "$HOLD" --timeout_s 60 --fail_on_error; then
    :
  else
    STATUS=1
  fi
  set_upstream_delay 0
  echo
  echo "=== (b) $CONCURRENCY concurrent streams, ${DELAY_MS} ms upstream delay"
  r="$OUT_DIR/concurrent.json"
  if [ -s "$r" ]; then
    echo "completed ok: $(json "$r" r.ok), failed: $(json "$r" r.failed)," \
         "unfinished: $(json "$r" r.unfinished), max in flight: $(json "$r" r.max_in_flight)"
    echo "latency p50 $(json "$r" r.latency.p50_ms) ms, p99 $(json "$r" r.latency.p99_ms) ms," \
         "max $(json "$r" r.latency.max_ms) ms"
    echo "vision-server: RSS $(json "$r" '(r.server.rss_kb_before/1024).toFixed(1)') MiB at the start ->" \
         "$(json "$r" '(r.server.rss_kb_max/1024).toFixed(1)') MiB max; threads" \
         "$(json "$r" r.server.threads_before) -> $(json "$r" r.server.threads_max) max;" \
         "$(json "$r" 'r.server.cpu_ms_per_request.toFixed(3)') ms CPU per stream"
    if [ "$(json "$r" 'r.failed === 0 && r.unfinished === 0 && r.ok > 0')" = true ] &&
       [ "$(json "$r" r.max_in_flight)" -ge "$CONCURRENCY" ]; then
      echo "all $CONCURRENCY-wide streams completed"
    else
      echo "NOT all streams completed" >&2
      STATUS=1
    fi
  else
    echo "no result" >&2
    STATUS=1
  fi
fi

if [ "$ONLY" = u ]; then
  # A PNG signature and header in front (the gateway sniffs and probes the first bytes), random
  # bytes after: uploads are stored, not decoded.
  UPLOAD_FILE=$(mktemp "${TMPDIR:-/tmp}/vg-upload-bench.XXXXXX")
  /usr/bin/python3 "$REPO/tests/e2e/lib/make_png.py" "$UPLOAD_FILE"
  head -c "$((UPLOAD_MIB * 1024 * 1024 - $(stat -c %s "$UPLOAD_FILE")))" /dev/urandom >>"$UPLOAD_FILE"
  echo "upload file: $UPLOAD_FILE ($(stat -c %s "$UPLOAD_FILE") bytes)"
  for run in $(seq 1 "$UPLOAD_RUNS"); do
    # Side by side, alternating, so that both see the same machine load.
    curl -fsS --max-time 10 -X POST "$VG_EMULATOR_URL/emulator/reset" >/dev/null
    "$UPLOAD_BENCH_BIN" --mode gemini --gemini_base_url "$VG_EMULATOR_URL" --api_key "$KEY" \
      --file "$UPLOAD_FILE" --label "direct-$run" | tee -a "$OUT_DIR/upload.txt" || STATUS=1
    curl -fsS --max-time 10 -X POST "$VG_EMULATOR_URL/emulator/reset" >/dev/null
    "$UPLOAD_BENCH_BIN" --mode grpc --target "127.0.0.1:$VG_SERVER_PORT" \
      --server_pid "$VG_SERVER_PID" --file "$UPLOAD_FILE" --label "gateway-$run" |
      tee -a "$OUT_DIR/upload.txt" || STATUS=1
  done
  curl -fsS --max-time 10 -X POST "$VG_EMULATOR_URL/emulator/reset" >/dev/null
  "$UPLOAD_BENCH_BIN" --mode grpc --target "127.0.0.1:$VG_SERVER_PORT" \
    --server_pid "$VG_SERVER_PID" --file "$UPLOAD_FILE" --concurrency "$UPLOAD_CONCURRENCY" \
    --label "gateway-x$UPLOAD_CONCURRENCY" | tee -a "$OUT_DIR/upload.txt" || STATUS=1
  rm -f "$UPLOAD_FILE"
  # Deletes the emulator's copies of the files (10 GiB at the defaults): can take more than 10 s
  # while the disk still writes them back.
  curl -fsS --max-time 120 -X POST "$VG_EMULATOR_URL/emulator/reset" >/dev/null
  echo
  echo "=== (u) ${UPLOAD_MIB} MiB upload: medians over $UPLOAD_RUNS runs"
  grep '^{' "$OUT_DIR/upload.txt" | node -e '
    const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
    const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
    const direct = median(rows.filter((r) => r.label.startsWith("direct-")).map((r) => r.mib_per_s));
    const gateway = median(rows.filter((r) => /^gateway-[0-9]+$/.test(r.label)).map((r) => r.mib_per_s));
    console.log(`direct ${direct.toFixed(1)} MiB/s, gateway ${gateway.toFixed(1)} MiB/s: ` +
                `gateway/direct = ${(100 * gateway / direct).toFixed(0)}% (target >= 80%)`);
    const many = rows.find((r) => r.label.startsWith("gateway-x"));
    if (many) {
      console.log(`${many.concurrency} concurrent uploads: ${many.mib_per_s.toFixed(1)} MiB/s total, ` +
                  `${many.failures} failed; server RSS ${(many.rss_before_kib / 1024).toFixed(1)} -> ` +
                  `${(many.rss_peak_kib / 1024).toFixed(1)} MiB peak, rise ` +
                  `${((many.rss_peak_kib - many.rss_before_kib) / 1024).toFixed(1)} MiB (target <= 200 MB)`);
    }'
fi

echo
echo "results (JSON lines): $OUT_DIR"
exit $STATUS
