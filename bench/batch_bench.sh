#!/usr/bin/env bash
# Batch jobs (#20) at scale, on this machine (loopback only): one job of --items small images
# (default 10,000) through vision-server against gemini-emulator, then the very request file the
# gateway uploaded handled straight by the emulator, side by side.
#   gateway: CreateBatch (one client stream), GetBatch until SUCCEEDED, ReadBatchResults to the
#            end; the server's VmRSS before, at peak (sampled every 20 ms) and after (target: a
#            rise of at most 150 MiB: items stream through in constant memory both ways).
#   direct:  the gateway's JSONL uploaded to the emulator (resumable, 8 MiB chunks),
#            batchGenerateContent from it, batches.get until SUCCEEDED, the responses file
#            downloaded; the emulator's own time to run the lines is the GetBatch call that found
#            the job due (the emulator runs a job's lines inside it).
#
#   bench/batch_bench.sh [--build-dir build] [--items 10000] [--task detect]
#                        [--processing-ms 1000] [--runs 1] [-- extra vision-server flags...]
# Binaries default to BUILD_DIR/{emulator/gemini-emulator,service/vision-server,bench/batch-bench};
# override with EMULATOR_BIN, SERVER_BIN, BATCH_BENCH_BIN. JSON lines go to $OUT_DIR (default: a
# temp dir, printed at the end).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

BUILD_DIR="$REPO/build"
ITEMS=10000
TASK=detect
PROCESSING_MS=1000
RUNS=1
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --items) ITEMS=$2; shift 2 ;;
    --task) TASK=$2; shift 2 ;;
    --processing-ms) PROCESSING_MS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --) shift; SERVER_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "batch_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
EMULATOR_BIN=${EMULATOR_BIN:-$BUILD_DIR/emulator/gemini-emulator}
SERVER_BIN=${SERVER_BIN:-$BUILD_DIR/service/vision-server}
BATCH_BENCH_BIN=${BATCH_BENCH_BIN:-$BUILD_DIR/bench/batch-bench}
for bin in "$EMULATOR_BIN" "$SERVER_BIN" "$BATCH_BENCH_BIN"; do
  [ -x "$bin" ] || { echo "batch_bench.sh: $bin not built (cmake --build $BUILD_DIR)" >&2; exit 2; }
done

# shellcheck source=../tests/e2e/lib/processes.sh
. "$REPO/tests/e2e/lib/processes.sh"
vg_init
OUT_DIR=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vg-batch-bench.XXXXXX")}
mkdir -p "$OUT_DIR" "$VG_TMP/spool"

KEY=bench-key
vg_start_emulator "$EMULATOR_BIN" --api_key "$KEY" --batch_processing_ms "$PROCESSING_MS"
GEMINI_API_KEY=$KEY vg_start_server "$SERVER_BIN" "$VG_EMULATOR_URL" \
  --batch_spool_dir "$VG_TMP/spool" "${SERVER_ARGS[@]}"
echo "gemini-emulator pid $VG_EMULATOR_PID at $VG_EMULATOR_URL (batch processing ${PROCESSING_MS} ms)"
echo "vision-server   pid $VG_SERVER_PID at 127.0.0.1:$VG_SERVER_PORT"
echo "machine: $(nproc) cores; $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The input file of the emulator's newest job: the request file the gateway uploaded.
newest_input_file() {
  curl -fsS --max-time 30 -H "x-goog-api-key: $KEY" "$VG_EMULATOR_URL/v1beta/batches?pageSize=1" |
    node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
             console.log(r.operations[0].metadata.inputConfig.fileName)'
}

STATUS=0
for run in $(seq 1 "$RUNS"); do
  echo
  echo "=== run $run: gateway, $ITEMS $TASK items"
  "$BATCH_BENCH_BIN" --mode grpc --target "127.0.0.1:$VG_SERVER_PORT" --items "$ITEMS" \
    --task "$TASK" --server_pid "$VG_SERVER_PID" --label "gateway-$run" |
    tee "$OUT_DIR/gateway-$run.txt" || STATUS=1
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  INPUT=$(newest_input_file)
  JSONL="$VG_TMP/requests-$run.jsonl"
  curl -fsS --max-time 120 -H "x-goog-api-key: $KEY" -o "$JSONL" \
    "$VG_EMULATOR_URL/v1beta/$INPUT:download?alt=media"
  echo
  echo "=== run $run: direct, the gateway's request file ($INPUT, $(stat -c %s "$JSONL") bytes," \
       "$(wc -l <"$JSONL") lines) straight to the emulator"
  "$BATCH_BENCH_BIN" --mode gemini --gemini_base_url "$VG_EMULATOR_URL" --api_key "$KEY" \
    --jsonl "$JSONL" --server_pid "$VG_EMULATOR_PID" --label "direct-$run" |
    tee "$OUT_DIR/direct-$run.txt" || STATUS=1
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -f "$JSONL"
  # The emulator's jobs and files go, so that each run starts from the same state.
  curl -fsS --max-time 120 -X POST "$VG_EMULATOR_URL/emulator/reset" >/dev/null
done
grep -h '^{' "$OUT_DIR"/*.txt >"$OUT_DIR/results.jsonl" || true

echo
echo "=== summary ($RUNS run(s), medians)"
node - "$OUT_DIR/results.jsonl" <<'JS'
const rows = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const mib = (kib) => (kib / 1024).toFixed(1);
for (const side of ['gateway', 'direct']) {
  const r = rows.filter((x) => x.label.startsWith(side + '-'));
  if (!r.length) continue;
  const per = (key) => (1e6 * median(r.map((x) => x[key] / x.items))).toFixed(1);
  console.log(`${side.padEnd(8)} create ${per('create_s')} us/item, results ${per('read_s')} us/item, ` +
              `lines run by the emulator ${per('last_get_s')} us/item` +
              (side === 'gateway' ? `; server RSS ${mib(median(r.map((x) => x.rss_before_kib)))} -> ` +
                `${mib(median(r.map((x) => x.rss_peak_kib)))} MiB peak (rise ` +
                `${mib(median(r.map((x) => x.rss_peak_kib - x.rss_before_kib)))} MiB, target <= 150), ` +
                `${mib(median(r.map((x) => x.rss_after_kib)))} MiB after` : '') +
              `; ok ${r.every((x) => x.ok)}`);
}
JS
echo
echo "results (JSON lines): $OUT_DIR"
exit $STATUS
