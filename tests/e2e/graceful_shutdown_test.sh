#!/usr/bin/env bash
# SIGTERM drains vision-server: a Caption stream in flight when the signal arrives still
# completes (within --shutdown_grace_s), the server then exits 0; with a grace period shorter than
# the stream, the stream is cut off and the server still exits promptly.
#   graceful_shutdown_test.sh <gemini-emulator> <vision-server>
set -uo pipefail
EMULATOR=${1:-}
SERVER=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUF="$REPO/node_modules/.bin/buf"
[ -x "$BUF" ] || { echo "SKIP: $BUF missing (run scripts/install-deps.sh)" >&2; exit 77; }
# shellcheck source=lib/processes.sh
. "$HERE/lib/processes.sh"
vg_args "$0 <gemini-emulator> <vision-server>" 2 "$@"
vg_init
export BUF_CACHE_DIR="$VG_TMP/buf-cache"
FAILED=0
fail() { echo "FAIL: $1" >&2; FAILED=$((FAILED + 1)); }

/usr/bin/python3 "$HERE/lib/make_png.py" "$VG_TMP/square.png"
PNG_B64=$(base64 -w0 "$VG_TMP/square.png")

# Starts a Caption in the background; output in $1. Returns once the first message arrived.
start_caption() {
  local out=$1
  timeout 60 "$BUF" curl --protocol grpc --http2-prior-knowledge \
    -d "{\"images\":[{\"content\":\"$PNG_B64\"}]}" \
    "http://127.0.0.1:$VG_SERVER_PORT/vision.v1.VisionService/Caption" >"$out" 2>&1 &
  CAPTION_PID=$!
  vg_wait_line "$out" '("text")' "$CAPTION_PID" >/dev/null
}

# Waits (bounded) for PID, a child of this shell, to exit; sets `code` to its exit status.
wait_exit() {
  local pid=$1 limit=$2 start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - start > limit)); then code=timeout; return; fi
    sleep 0.05
  done
  wait "$pid"
  code=$?
}

# 1. Drain: each caption event is 300 ms apart, the grace period is 20 s.
vg_start_emulator "$EMULATOR" --api_key k --stream_event_delay_ms 300 || exit 1
GEMINI_API_KEY=k vg_start_server "$SERVER" "$VG_EMULATOR_URL" --shutdown_grace_s 20 || exit 1
start_caption "$VG_TMP/drain.out" || { fail "no first caption message"; exit 1; }
kill -TERM "$VG_SERVER_PID"
wait_exit "$CAPTION_PID" 30
[ "$code" = 0 ] || fail "the stream in flight did not complete after SIGTERM (exit $code): $(cat "$VG_TMP/drain.out")"
grep -q '"finishReason": *"STOP"' "$VG_TMP/drain.out" || fail "drained stream has no finishReason STOP: $(cat "$VG_TMP/drain.out")"
wait_exit "$VG_SERVER_PID" 20
[ "$code" = 0 ] || fail "vision-server did not exit 0 after draining (exit $code)"
grep -q "draining" "$VG_TMP/server.log" || fail "server log does not mention draining"
[ $FAILED = 0 ] && echo "ok: SIGTERM drains the stream in flight, then exits 0"

# 2. Bounded: events 2 s apart, grace 1 s: the stream is cut off, the server exits within ~1 s.
vg_cleanup
vg_init
vg_start_emulator "$EMULATOR" --api_key k --stream_event_delay_ms 2000 || exit 1
GEMINI_API_KEY=k vg_start_server "$SERVER" "$VG_EMULATOR_URL" --shutdown_grace_s 1 || exit 1
start_caption "$VG_TMP/cut.out" || { fail "no first caption message"; exit 1; }
start=$SECONDS
kill -TERM "$VG_SERVER_PID"
wait_exit "$VG_SERVER_PID" 10
[ "$code" = 0 ] || fail "vision-server did not exit 0 after the grace period (exit $code)"
((SECONDS - start <= 4)) || fail "shutdown took $((SECONDS - start)) s with a 1 s grace period"
wait_exit "$CAPTION_PID" 10
[ "$code" != 0 ] || fail "the cut-off stream reported success"
[ $FAILED = 0 ] && echo "ok: the grace period bounds the drain"

exit $((FAILED > 0))
