#!/usr/bin/env bash
# `buf curl` (a gRPC client nobody here wrote) against vision-server in front of gemini-emulator:
# reflection lists and describes every service, health says SERVING (no --schema), Caption streams a caption naming the colour,
# CountTokens counts, and a Caption without images is invalid_argument.
#   buf_curl_test.sh <gemini-emulator> <vision-server>
set -uo pipefail
EMULATOR=${1:-}
SERVER=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUF="$REPO/node_modules/.bin/buf"
for need in "$BUF" /usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto; do
  if [ ! -e "$need" ]; then
    echo "SKIP: $need missing (run scripts/install-deps.sh)" >&2
    exit 77
  fi
done
# shellcheck source=lib/processes.sh
. "$HERE/lib/processes.sh"
vg_args "$0 <gemini-emulator> <vision-server>" 2 "$@"
vg_init
export BUF_CACHE_DIR="$VG_TMP/buf-cache"

PASSED=0
FAILED=0
pass() { echo "ok: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $1" >&2; FAILED=$((FAILED + 1)); }

vg_start_emulator "$EMULATOR" --api_key test-key || exit 1
GEMINI_API_KEY=test-key vg_start_server "$SERVER" "$VG_EMULATOR_URL" || exit 1
URL="http://127.0.0.1:$VG_SERVER_PORT"
echo "emulator at $VG_EMULATOR_URL, vision-server at $URL"

bufcurl() {
  timeout 60 "$BUF" curl --protocol grpc --http2-prior-knowledge "$@"
}

# Every message's "text", joined; buf curl prints one JSON document per stream message.
join_texts() {
  node -e '
    const input = require("fs").readFileSync(0, "utf8");
    let text = "", count = 0, depth = 0, start = -1, inString = false, escaped = false;
    for (let i = 0; i < input.length; i++) {
      const c = input[i];
      if (inString) { if (escaped) escaped = false; else if (c === "\\") escaped = true;
                      else if (c === "\"") inString = false; continue; }
      if (c === "\"") inString = true;
      else if (c === "{") { if (depth++ === 0) start = i; }
      else if (c === "}" && --depth === 0) {
        const message = JSON.parse(input.slice(start, i + 1));
        count++; text += message.text ?? "";
      }
    }
    console.log(`${count}\t${text}`);'
}

# 1. Reflection.
if out=$(bufcurl --list-services "$URL" 2>&1) && grep -qx 'vision.v1.VisionService' <<<"$out"; then
  pass "list-services shows vision.v1.VisionService"
else
  fail "list-services: $out"
fi

# 2. Reflection describes every service it lists (issue #19): --list-methods needs each
# service's descriptor, health is called with nothing but the address, and a grpcurl-style
# "describe" (ServerReflectionInfo file_containing_symbol, as grpcurl/grpcui/Postman send it)
# answers a file descriptor for every listed service, never an error_response.
if out=$(bufcurl --list-methods "$URL" 2>&1) && grep -qx 'grpc.health.v1.Health/Check' <<<"$out" &&
   grep -qx 'vision.v1.VisionService/Detect' <<<"$out"; then
  pass "list-methods describes every service (health included)"
else
  fail "list-methods: $out"
fi
if out=$(bufcurl -d '{"service":"vision.v1.VisionService"}' \
           "$URL/grpc.health.v1.Health/Check" 2>&1) && grep -q '"SERVING"' <<<"$out"; then
  pass "health check SERVING without --schema"
else
  fail "health check without --schema: $out"
fi
REFLECTION_PROTO=/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto
services=$(bufcurl --list-services "$URL" 2>/dev/null)
for service in $services; do
  if out=$(bufcurl --schema "$REFLECTION_PROTO" -d "{\"file_containing_symbol\":\"$service\"}" \
             "$URL/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" 2>&1) &&
     grep -q '"fileDescriptorResponse"' <<<"$out" && ! grep -q '"errorResponse"' <<<"$out"; then
    pass "reflection describes $service"
  else
    fail "reflection cannot describe $service: $out"
  fi
done
[ "$(wc -w <<<"$services")" -ge 3 ] || fail "expected at least 3 services listed: $services"

# 3. Caption streams, with the image as base64 in the JSON request.
PNG_B64=$(node --input-type=module -e "
  import { redRectanglePng } from '$HERE/lib/png.mjs';
  process.stdout.write(redRectanglePng(320, 240).toString('base64'));")
REQUEST="{\"images\":[{\"content\":\"$PNG_B64\"}],\"prompt\":\"Describe the image.\"}"
if out=$(bufcurl -d "$REQUEST" "$URL/vision.v1.VisionService/Caption" 2>&1); then
  joined=$(join_texts <<<"$out")
  count=${joined%%$'\t'*}
  text=${joined#*$'\t'}
  if [ "$count" -ge 2 ] && grep -qiw 'red' <<<"$text" && grep -q '320x240' <<<"$text"; then
    pass "Caption streamed $count messages: $text"
  else
    fail "Caption: $count messages, text '$text'; raw: $out"
  fi
else
  fail "Caption: $out"
fi

# 4. CountTokens.
if out=$(bufcurl -d "{\"images\":[{\"content\":\"$PNG_B64\"}]}" \
           "$URL/vision.v1.VisionService/CountTokens" 2>&1) &&
   total=$(node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
                    if (!(r.totalTokens > 258 && r.estimatedImageTokens === 258)) process.exit(1);
                    console.log(r.totalTokens)' <<<"$out"); then
  pass "CountTokens totalTokens=$total"
else
  fail "CountTokens: $out"
fi

# 5. A Caption without images: invalid_argument, and buf curl fails.
if out=$(bufcurl -d '{"prompt":"Describe."}' "$URL/vision.v1.VisionService/Caption" 2>&1); then
  fail "Caption without images succeeded: $out"
elif grep -q '"invalid_argument"' <<<"$out"; then
  pass "Caption without images is invalid_argument"
else
  fail "Caption without images: $out"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
