#!/usr/bin/env bash
# TLS, mTLS and caller tokens with clients nobody here wrote: buf curl (--cacert, --cert),
# Python grpcio (SSL, client certificates), Node @grpc/grpc-js (TLS) and openssl s_client
# (protocol versions, certificate rotation). Every certificate is made here with the openssl CLI
# in a temporary directory; nothing is checked in.
#   tls_test.sh <gemini-emulator> <vision-server>
set -uo pipefail
EMULATOR=${1:-}
SERVER=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUF="$REPO/node_modules/.bin/buf"
PY=/usr/bin/python3
HEALTH_PROTO=/usr/share/grpc-proto/grpc/health/v1/health.proto
for need in "$BUF" "$HEALTH_PROTO" /usr/bin/grpc_python_plugin "$REPO/node_modules/@grpc/grpc-js"; do
  if [ ! -e "$need" ]; then
    echo "SKIP: $need missing (run scripts/install-deps.sh)" >&2
    exit 77
  fi
done
if ! command -v openssl >/dev/null || ! command -v node >/dev/null || ! "$PY" -c 'import grpc'; then
  echo "SKIP: openssl, node or python3-grpcio missing" >&2
  exit 77
fi
# shellcheck source=lib/processes.sh
. "$HERE/lib/processes.sh"
vg_args "$0 <gemini-emulator> <vision-server>" 2 "$@"
vg_init
export BUF_CACHE_DIR="$VG_TMP/buf-cache"
D="$VG_TMP/pki"
mkdir -p "$D" "$VG_TMP/stubs"

PASSED=0
FAILED=0
pass() { echo "ok: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $1" >&2; FAILED=$((FAILED + 1)); }
check() {  # check NAME COMMAND...: passes when the command succeeds
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name: $out"; fi
}

# ---- certificates --------------------------------------------------------------------------
mkca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$D/$1.key" -out "$D/$1.crt" -subj "/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
}
issue() {  # issue CA NAME CN EXTENSIONS
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$D/$2.key" -out "$D/$2.csr" -subj "/CN=$3" 2>/dev/null &&
  printf '%b\n' "$4" >"$D/$2.ext" &&
  openssl x509 -req -in "$D/$2.csr" -CA "$D/$1.crt" -CAkey "$D/$1.key" -CAcreateserial \
    -days 2 -out "$D/$2.crt" -extfile "$D/$2.ext" 2>/dev/null
}
SERVER_EXT='basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1'
# The rotated certificate comes from another CA (rotated-ca): a client trusting only test-ca can
# tell which certificate its connection got (section 6).
mkca test-ca && mkca other-ca && mkca rotated-ca &&
issue test-ca server gateway-one "$SERVER_EXT" &&
issue rotated-ca server2 gateway-two "$SERVER_EXT" &&
issue test-ca client svc-a 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:svc-a' &&
issue other-ca stranger svc-a 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:svc-a' ||
  { echo "cannot make test certificates" >&2; exit 1; }
mkdir -p "$D/live"
cp "$D/server.crt" "$D/live/tls.crt"
cp "$D/server.key" "$D/live/tls.key"

"$PY" "$REPO/tests/e2e/lib/make_png.py" "$VG_TMP/square.png" || exit 1
PNG_B64=$(base64 -w0 "$VG_TMP/square.png")
REQUEST="{\"images\":[{\"content\":\"$PNG_B64\"}]}"

ALICE=alice-e2e-token-7f1d2c3b4a59
BOB=bob-e2e-token-0a9b8c7d6e5f
CAROL=carol-e2e-token-11223344556677
KEY=e2e-gemini-key-5ec2e7a1b9
printf 'alice %s\nbob %s\n' "$ALICE" "$BOB" >"$VG_TMP/tokens"

vg_start_emulator "$EMULATOR" --api_key "$KEY" || exit 1
GEMINI_API_KEY=$KEY vg_start_server "$SERVER" "$VG_EMULATOR_URL" \
  --tls_cert_file "$D/live/tls.crt" --tls_key_file "$D/live/tls.key" \
  --auth_tokens_file "$VG_TMP/tokens" --credentials_reload_interval_s 1 || exit 1
PORT=$VG_SERVER_PORT
URL="https://localhost:$PORT"
echo "emulator at $VG_EMULATOR_URL, vision-server (TLS, tokens) at $URL"

bufcurl() { timeout 60 "$BUF" curl --protocol grpc --cacert "$D/test-ca.crt" "$@"; }
pyclient() { timeout 60 "$PY" "$HERE/lib/tls_client.py" --png "$VG_TMP/square.png" --stubs "$VG_TMP/stubs" "$@"; }
nodeclient() { (cd "$REPO" && timeout 60 node "$HERE/lib/tls_client.mjs" "$@"); }
# The emulator's admin API (Python's urllib: curl is not among the installed packages).
emu() {  # emu METHOD PATH [BODY]
  "$PY" -c 'import sys, urllib.request as u
r = u.Request(sys.argv[1] + sys.argv[3], method=sys.argv[2],
              data=sys.argv[4].encode() if len(sys.argv) > 4 else None)
sys.stdout.write(u.urlopen(r, timeout=10).read().decode())' "$VG_EMULATOR_URL" "$@"
}
# The subject CN the server presents to a new connection.
served_cn() {
  openssl s_client -connect "127.0.0.1:$1" -servername localhost -alpn h2 </dev/null 2>/dev/null |
    openssl x509 -noout -subject -nameopt multiline 2>/dev/null | sed -n 's/^ *commonName *= *//p'
}

# 1. buf curl over TLS: reflection and health are open, Caption needs a token.
if out=$(bufcurl --list-services "$URL" 2>&1) && grep -qx 'vision.v1.VisionService' <<<"$out"; then
  pass "buf curl --cacert: reflection lists the service without a token"
else
  fail "buf curl list-services: $out"
fi
if out=$(bufcurl --schema "$HEALTH_PROTO" -d '{}' "$URL/grpc.health.v1.Health/Check" 2>&1) &&
   grep -q SERVING <<<"$out"; then
  pass "health is SERVING without a token"
else
  fail "health: $out"
fi
if out=$(bufcurl -H "authorization: Bearer $ALICE" -d "$REQUEST" \
           "$URL/vision.v1.VisionService/Caption" 2>&1) && grep -qi 'blue' <<<"$out"; then
  pass "buf curl Caption with alice's token"
else
  fail "buf curl Caption with token: $out"
fi
for how in none wrong; do
  header=()
  [ "$how" = wrong ] && header=(-H "authorization: Bearer wrong-token-000000000000")
  if out=$(bufcurl "${header[@]}" -d "$REQUEST" "$URL/vision.v1.VisionService/Caption" 2>&1); then
    fail "buf curl Caption with $how token succeeded: $out"
  elif grep -q '"unauthenticated"' <<<"$out" && grep -q 'CALLER_UNAUTHENTICATED' <<<"$out"; then
    pass "buf curl Caption with $how token is unauthenticated (CALLER_UNAUTHENTICATED)"
  else
    fail "buf curl Caption with $how token: $out"
  fi
done
# Under TLS the refusal comes from the server's auth processor, before the call's body is read.
refused_early=$(grep -c 'unauthenticated call refused before its body' "$VG_TMP/server.log")
if [ "$refused_early" -ge 2 ]; then
  pass "unauthenticated calls refused before their body ($refused_early in the server log)"
else
  fail "unauthenticated calls were not refused before their body (server log: $refused_early)"
fi

# 2. Python grpcio and Node grpc-js over TLS.
check "python grpcio over TLS with a token" pyclient --port "$PORT" --ca "$D/test-ca.crt" --token "$BOB" --expect ok
check "python grpcio without a token is UNAUTHENTICATED" pyclient --port "$PORT" --ca "$D/test-ca.crt" --expect UNAUTHENTICATED
check "python grpcio trusting another CA cannot connect" pyclient --port "$PORT" --ca "$D/other-ca.crt" --token "$BOB" --expect UNAVAILABLE
check "node grpc-js over TLS with a token" nodeclient "$PORT" "$D/test-ca.crt" "$VG_TMP/square.png" ok "$ALICE"
check "node grpc-js with a wrong token is UNAUTHENTICATED" nodeclient "$PORT" "$D/test-ca.crt" "$VG_TMP/square.png" UNAUTHENTICATED "wrong-token-000000000000"

# 3. Protocol versions: TLS 1.1 is refused by the server (the client is allowed to offer it).
# gRPC's TLS stack closes the connection without an alert; its log names the reason.
for v in 1 1_1; do
  out=$(openssl s_client -connect "127.0.0.1:$PORT" "-tls$v" -cipher 'DEFAULT:@SECLEVEL=0' -alpn h2 </dev/null 2>&1)
  rc=$?
  for _ in $(seq 1 50); do  # the server logs the failed handshake as it closes
    refusals=$(grep -c 'unsupported protocol' "$VG_TMP/server.log")
    [ "$refusals" -ge "${expected_refusals:=1}" ] && break
    sleep 0.1
  done
  if [ $rc -ne 0 ] && ! grep -q 'no protocols available' <<<"$out" &&
     grep -q 'Cipher is (NONE)' <<<"$out" && [ "$refusals" -ge "$expected_refusals" ]; then
    pass "openssl s_client -tls$v refused (server log: unsupported protocol x$refusals)"
    expected_refusals=$((refusals + 1))
  else
    fail "TLS ${v/_/.}: $out"
  fi
done
for v in 1_2 1_3; do
  out=$(openssl s_client -connect "127.0.0.1:$PORT" "-tls$v" -alpn h2 -CAfile "$D/test-ca.crt" </dev/null 2>&1)
  if grep -q "Protocol *: TLSv${v/_/.}" <<<"$out" || grep -q "TLSv${v/_/.}," <<<"$out"; then
    pass "openssl s_client -tls$v accepted"
  else
    fail "TLS ${v/_/.}: $out"
  fi
done

# 4. The key is not left in the process environment.
if tr '\0' '\n' <"/proc/$VG_SERVER_PID/environ" | grep -q "$KEY"; then
  fail "GEMINI_API_KEY still readable in /proc/$VG_SERVER_PID/environ"
else
  pass "the API key is gone from /proc/<pid>/environ"
fi

# 5. Token rotation: carol replaces alice (written as a Secret update: new file, rename).
printf 'carol %s\nbob %s\n' "$CAROL" "$BOB" >"$VG_TMP/tokens.new" && mv "$VG_TMP/tokens.new" "$VG_TMP/tokens"
for _ in $(seq 1 100); do
  pyclient --port "$PORT" --ca "$D/test-ca.crt" --token "$CAROL" --expect ok >/dev/null 2>&1 && break
  sleep 0.2
done
check "rotated token file: carol is let in" pyclient --port "$PORT" --ca "$D/test-ca.crt" --token "$CAROL" --expect ok
check "rotated token file: alice is refused" pyclient --port "$PORT" --ca "$D/test-ca.crt" --token "$ALICE" --expect UNAUTHENTICATED

# 6. Certificate rotation while a slow stream is open on the old certificate. The stream's
# client trusts only test-ca (bufcurl), which did not issue the rotated certificate: had its
# connection been made after the swap, its handshake would fail. Its first message, read before
# the swap, shows the stream was open then (the emulator's request log cannot: it already holds
# the Caption requests of the sections above).
emu POST /emulator/config '{"stream_event_delay_ms": 300, "caption_words_per_event": 1}' >/dev/null
bufcurl -H "authorization: Bearer $BOB" -d "$REQUEST" "$URL/vision.v1.VisionService/Caption" \
  >"$VG_TMP/open-stream.out" 2>&1 &
OPEN_PID=$!
opened=no
for _ in $(seq 1 100); do
  grep -q '"text"' "$VG_TMP/open-stream.out" && { opened=yes; break; }
  sleep 0.1
done
[ "$opened" = yes ] && pass "a stream is open (first message read) before the rotation" ||
  fail "no message of the open stream before the rotation: $(cat "$VG_TMP/open-stream.out")"
[ "$(served_cn "$PORT")" = gateway-one ] && pass "serving gateway-one before rotation" ||
  fail "before rotation the server presents '$(served_cn "$PORT")'"
cp "$D/server2.key" "$D/live/tls.key.new" && cp "$D/server2.crt" "$D/live/tls.crt.new" &&
  mv "$D/live/tls.key.new" "$D/live/tls.key" && mv "$D/live/tls.crt.new" "$D/live/tls.crt"
cn=""
for _ in $(seq 1 100); do
  cn=$(served_cn "$PORT")
  [ "$cn" = gateway-two ] && break
  sleep 0.2
done
[ "$cn" = gateway-two ] && pass "new connections get the rotated certificate" ||
  fail "after rotation the server presents '$cn'"
emu POST /emulator/config '{"stream_event_delay_ms": 0}' >/dev/null
if wait "$OPEN_PID" && grep -qi blue "$VG_TMP/open-stream.out"; then
  pass "the stream opened before the rotation completed"
else
  fail "open stream across rotation: $(cat "$VG_TMP/open-stream.out")"
fi
check "python grpcio trusting the rotated certificate's CA" pyclient --port "$PORT" --ca "$D/rotated-ca.crt" --token "$BOB" --expect ok
check "python grpcio trusting only the old CA is refused after rotation" pyclient --port "$PORT" --ca "$D/test-ca.crt" --token "$BOB" --expect UNAVAILABLE

# 7. mTLS: client certificates required, verified, and naming the caller.
GEMINI_API_KEY=$KEY vg_start_server "$SERVER" "$VG_EMULATOR_URL" \
  --tls_cert_file "$D/server.crt" --tls_key_file "$D/server.key" \
  --tls_client_ca_file "$D/test-ca.crt" --auth_client_cert --reflection=false || exit 1
MPORT=$VG_SERVER_PORT
echo "vision-server (mTLS, client certificate callers, no reflection) at localhost:$MPORT"
check "python grpcio with a client certificate" pyclient --port "$MPORT" --ca "$D/test-ca.crt" --cert "$D/client.crt" --key "$D/client.key" --expect ok
check "python grpcio without a client certificate is refused" pyclient --port "$MPORT" --ca "$D/test-ca.crt" --expect UNAVAILABLE
check "python grpcio with a certificate from another CA is refused" pyclient --port "$MPORT" --ca "$D/test-ca.crt" --cert "$D/stranger.crt" --key "$D/stranger.key" --expect UNAVAILABLE
if out=$(bufcurl --cert "$D/client.crt" --key "$D/client.key" --schema "$REPO/proto/vision/v1/vision.proto" \
           -d "$REQUEST" "https://localhost:$MPORT/vision.v1.VisionService/Caption" 2>&1) &&
   grep -qi blue <<<"$out"; then
  pass "buf curl --cert over mTLS"
else
  fail "buf curl mTLS: $out"
fi
if out=$(bufcurl --cert "$D/client.crt" --key "$D/client.key" --list-services "https://localhost:$MPORT" 2>&1); then
  fail "--reflection=false still lists services: $out"
else
  pass "--reflection=false: no reflection service"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
