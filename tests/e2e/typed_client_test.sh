#!/usr/bin/env bash
# The typed client examples (client/python, client/node, client/go), end to end: the test builds
# the example exactly as its README says (stub generation included, so a proto change that breaks
# a client fails here), runs it against vision-server (TLS, bearer tokens) in front of
# gemini-emulator, and checks what it printed:
#   - the caption streamed in pieces, after one RESOURCE_EXHAUSTED whose ErrorInfo and RetryInfo
#     the example printed, and a retry after that delay (Gemini saw the caption request twice);
#   - the detected box, in pixels, matches the square drawn in the image;
#   - the upload went in several chunks and came back as an ACTIVE 64x48 file, then was deleted;
#   - with a wrong token the example fails with UNAUTHENTICATED, refused before the body (TLS: the
#     server's auth processor, whose refusal carries its reason in the message, not in ErrorInfo).
#   typed_client_test.sh python|node|go <gemini-emulator> <vision-server>
set -uo pipefail
LANGUAGE=${1:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3

case "$LANGUAGE" in
  python) needs=(protoc /usr/bin/grpc_python_plugin) ;;
  node) needs=(protoc node "$REPO/node_modules/.bin/protoc-gen-es" "$REPO/node_modules/.bin/tsc"
               "$REPO/node_modules/@connectrpc/connect-node") ;;
  go) needs=(protoc go protoc-gen-go protoc-gen-go-grpc /usr/share/gocode/src/google.golang.org/grpc
             /usr/share/gocode/src/google.golang.org/genproto/googleapis/rpc/errdetails) ;;
  *) echo "usage: $0 python|node|go <gemini-emulator> <vision-server>" >&2; exit 2 ;;
esac
needs+=(openssl curl /usr/share/gocode/src/github.com/gogo/googleapis/google/rpc/error_details.proto)
for need in "${needs[@]}"; do
  if ! command -v "$need" >/dev/null && [ ! -e "$need" ]; then
    echo "SKIP: $need missing (run scripts/install-deps.sh)" >&2
    exit 77
  fi
done
if [ "$LANGUAGE" = python ] && ! "$PY" -c 'import grpc'; then
  echo "SKIP: python3-grpcio missing (run scripts/install-deps.sh)" >&2
  exit 77
fi
shift
# shellcheck source=lib/processes.sh
. "$HERE/lib/processes.sh"
vg_args "$0 $LANGUAGE <gemini-emulator> <vision-server>" 2 "$@"
EMULATOR=$1
SERVER=$2
vg_init

PASSED=0
FAILED=0
pass() { echo "ok: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $1" >&2; FAILED=$((FAILED + 1)); }

# ---- a CA, the server's certificate, a caller's token -----------------------------------------
D="$VG_TMP/pki"
mkdir -p "$D"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$D/ca.key" -out "$D/ca.crt" -subj "/CN=typed-client-test-ca" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  2>/dev/null &&
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$D/server.key" -out "$D/server.csr" -subj "/CN=gateway" 2>/dev/null &&
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' \
  >"$D/server.ext" &&
openssl x509 -req -in "$D/server.csr" -CA "$D/ca.crt" -CAkey "$D/ca.key" -CAcreateserial \
  -days 2 -out "$D/server.crt" -extfile "$D/server.ext" 2>/dev/null ||
  { echo "cannot make test certificates" >&2; exit 1; }
TOKEN=typed-client-token-3c9a5e7f1d2b
printf 'example-%s %s\n' "$LANGUAGE" "$TOKEN" >"$VG_TMP/tokens"
printf '%s\n' "$TOKEN" >"$VG_TMP/token"
printf 'not-the-token-0000000000\n' >"$VG_TMP/wrong-token"
"$PY" "$HERE/lib/make_png.py" "$VG_TMP/square.png" || exit 1  # 64x48, blue square x,y 10..29
SIZE=$(stat -c %s "$VG_TMP/square.png")
CHUNK=50  # several chunks even for this small image

# ---- build the example: stub generation is part of it -----------------------------------------
OUT="$VG_TMP/$LANGUAGE"
case "$LANGUAGE" in
  python)
    build() { "$REPO/client/python/generate.sh" "$OUT/gen"; }
    example() { PYTHONPATH="$OUT/gen" "$PY" "$REPO/client/python/vision_example.py" "$@"; } ;;
  node)
    build() { "$REPO/client/node/build.sh" "$OUT"; }
    example() { node "$OUT/dist/example.js" "$@"; } ;;
  go)
    build() { "$REPO/client/go/build.sh" "$OUT"; }
    example() { "$OUT/vision-example" "$@"; } ;;
esac
if out=$(build 2>&1); then
  pass "$LANGUAGE example built (stubs generated from proto/)"
else
  echo "$out" >&2
  fail "$LANGUAGE example does not build"
  echo "$LANGUAGE: $PASSED passed, $FAILED failed"
  exit 1
fi

# ---- the gateway: TLS, tokens; Gemini asking for a longer wait than the gateway holds a call ---
KEY=typed-client-gemini-key-8d41
vg_start_emulator "$EMULATOR" --api_key "$KEY" || exit 1
GEMINI_API_KEY=$KEY vg_start_server "$SERVER" "$VG_EMULATOR_URL" \
  --tls_cert_file "$D/server.crt" --tls_key_file "$D/server.key" \
  --auth_tokens_file "$VG_TMP/tokens" --max_retry_delay_s 1 || exit 1
TARGET="localhost:$VG_SERVER_PORT"
echo "emulator at $VG_EMULATOR_URL, vision-server (TLS, tokens) at $TARGET"
# The next model request (the example's first Caption) gets Gemini's 429 with a RetryInfo of 2 s:
# over --max_retry_delay_s, so the gateway hands it to the caller at once (RESOURCE_EXHAUSTED).
curl -sf -X POST "$VG_EMULATOR_URL/emulator/script" -d '[{"status": 429, "body": {"error": {
  "code": 429, "message": "Quota exceeded, retry in 2s.", "status": "RESOURCE_EXHAUSTED",
  "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}}}]' \
  >/dev/null || { echo "cannot script the emulator" >&2; exit 1; }

# One word per streamed event, 20 ms apart: the caption arrives in pieces (the gateway merges
# pieces that queue up behind a write in flight, so how many is not exact).
curl -sf -X POST "$VG_EMULATOR_URL/emulator/config" \
  -d '{"caption_words_per_event": 1, "stream_event_delay_ms": 20}' >/dev/null ||
  { echo "cannot configure the emulator" >&2; exit 1; }

# ---- run it -----------------------------------------------------------------------------------
started_ns=$(date +%s%N)
example --target "$TARGET" --ca_file "$D/ca.crt" --token_file "$VG_TMP/token" \
  --chunk_size "$CHUNK" "$VG_TMP/square.png" >"$VG_TMP/stdout" 2>"$VG_TMP/stderr"
rc=$?
elapsed_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
echo "---- $LANGUAGE example, exit $rc; stdout:"
cat "$VG_TMP/stdout"
echo "---- stderr:"
cat "$VG_TMP/stderr"
echo "----"
[ $rc -eq 0 ] && pass "exit code 0" || fail "exit code $rc"

# expect NAME REGEX FILE: FILE has a line matching the extended regex.
expect() {
  if grep -Eq -- "$2" "$3"; then pass "$1"; else fail "$1: no line /$2/ in $(basename "$3")"; fi
}
STDOUT="$VG_TMP/stdout"
STDERR="$VG_TMP/stderr"

# Error details and the retry.
expect "RESOURCE_EXHAUSTED printed" '^caption failed: RESOURCE_EXHAUSTED: .*retry in 2s' "$STDERR"
expect "ErrorInfo reason read from the details" '^  ErrorInfo reason UPSTREAM_RATE_LIMITED \(domain vision-gateway\)$' "$STDERR"
expect "RetryInfo delay read from the details" '^  RetryInfo retry_delay 2s$' "$STDERR"
expect "request id read from the metadata" '^  request id [0-9a-f]{32}$' "$STDERR"
expect "retried after the RetryInfo delay" '^retrying caption in 2s \(attempt 2 of 3\)$' "$STDOUT"
[ "$elapsed_ms" -ge 2000 ] && pass "the run took ${elapsed_ms} ms, at least the 2 s asked for" ||
  fail "the run took ${elapsed_ms} ms: it cannot have waited the 2 s RetryInfo asked for"
captions=$(curl -sf "$VG_EMULATOR_URL/emulator/requests" |
           "$PY" -c 'import json, sys
print(sum("Caption this image." in r.get("body", "") for r in json.load(sys.stdin)))')
[ "$captions" = 2 ] && pass "Gemini saw the caption request twice (429, then the retry)" ||
  fail "Gemini saw $captions caption requests, expected 2"

# Caption: streamed text.
expect "caption text names the colour and the size" '^A 64x48 image .*blue' "$STDOUT"
if [[ $(grep -E '^\(caption: [0-9]+ pieces' "$STDOUT") =~ ^\(caption:\ ([0-9]+)\ pieces,\ finish_reason\ STOP,\ ([0-9]+)\ tokens\)$ ]] &&
   [ "${BASH_REMATCH[1]}" -ge 2 ] && [ "${BASH_REMATCH[2]}" -gt 258 ]; then
  pass "caption came in ${BASH_REMATCH[1]} pieces, finish STOP, ${BASH_REMATCH[2]} tokens"
else
  fail "caption summary line: $(grep -E '^\(caption' "$STDOUT")"
fi

# Detect: typed messages, box in pixels (the square spans 10..29, max exclusive: 30; the
# 0..1000 round trip may move an edge by a pixel).
expect "image info" '^image: 64x48 image/png$' "$STDOUT"
line=$(grep -E '^object 0 ' "$STDOUT")
if [[ $line =~ ^object\ 0\ [^:]*blue[^:]*:\ x\ ([0-9]+)-([0-9]+),\ y\ ([0-9]+)-([0-9]+)\ px$ ]]; then
  ok=1
  for pair in "${BASH_REMATCH[1]}:10" "${BASH_REMATCH[2]}:30" "${BASH_REMATCH[3]}:10" "${BASH_REMATCH[4]}:30"; do
    got=${pair%:*} want=${pair#*:}
    [ $((got - want)) -le 1 ] && [ $((want - got)) -le 1 ] || ok=0
  done
  [ $ok = 1 ] && pass "detected box in pixels: $line" || fail "box off the square: $line"
else
  fail "detection line: '$line'"
fi
expect "detect summary" '^summary: 1 objects, finish_reason STOP$' "$STDOUT"

# Upload in chunks, then delete.
chunks=$(( (SIZE + CHUNK - 1) / CHUNK ))
expect "uploaded in $chunks chunks, ACTIVE, upright size" \
  "^uploaded files/g1-[a-z0-9-]+ \\($SIZE bytes in $chunks chunks, 64x48 px, sha256 $(sha256sum "$VG_TMP/square.png" | cut -c1-64), STATE_ACTIVE\\)$" \
  "$STDOUT"
expect "deleted" '^deleted files/g1-' "$STDOUT"
files=$(curl -sf -H "x-goog-api-key: $KEY" "$VG_EMULATOR_URL/v1beta/files" | "$PY" -c 'import json, sys
print(len(json.load(sys.stdin).get("files", [])))')
[ "$files" = 0 ] && pass "no file left at Gemini" || fail "$files files left at Gemini"

# ---- a wrong token: UNAUTHENTICATED, a failing exit code -------------------------------------
# Over TLS the gateway refuses it before reading the body, in its auth processor: gRPC carries
# only a code and a message from there, so the reason leads the message (no ErrorInfo).
example --target "$TARGET" --ca_file "$D/ca.crt" --token_file "$VG_TMP/wrong-token" \
  "$VG_TMP/square.png" >"$VG_TMP/stdout" 2>"$VG_TMP/stderr"
rc=$?
echo "---- wrong token: exit $rc; stderr:"
cat "$VG_TMP/stderr"
echo "----"
[ $rc -ne 0 ] && pass "wrong token: exit code $rc" || fail "wrong token: exit code 0"
expect "wrong token: UNAUTHENTICATED, reason first" \
  '^caption failed: UNAUTHENTICATED: CALLER_UNAUTHENTICATED: ' "$STDERR"
if grep -q '^retrying' "$VG_TMP/stdout"; then fail "wrong token: retried"; else pass "wrong token: not retried"; fi

echo "$LANGUAGE: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
