#!/usr/bin/env bash
# Checks the images scripts/build-images.sh built (opt-in, needs root and buildah):
#   - every shared library of the binaries and of libvips' loader modules resolves (ldd inside);
#   - the configured user is the fixed non-root 10001:10001 and processes run as uid 10001;
#   - no compiler and no -dev package in the runtime image; OCI labels present;
#   - gemini-emulator and vision-server started from the images (buildah run, chroot isolation,
#     host network) serve: a gRPC health check and a Caption through buf curl.
#   scripts/check-images.sh [VERSION]
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-${VERSION:-0.1.0}}
SERVER_IMAGE=vision-gateway/vision-server:$VERSION
EMULATOR_IMAGE=vision-gateway/gemini-emulator:$VERSION
BUF=$PWD/node_modules/.bin/buf
export BUILDAH_ISOLATION=chroot
FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vg-images.XXXXXX")
CONTAINERS=()
PGIDS=()
cleanup() {
  local g c
  for g in "${PGIDS[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
  for c in "${CONTAINERS[@]}"; do buildah rm "$c" >/dev/null 2>&1; done
  rm -rf "$TMP"
}
trap cleanup EXIT

for image in "$SERVER_IMAGE" "$EMULATOR_IMAGE"; do
  buildah inspect --type image "$image" >/dev/null 2>&1 || { echo "no image $image (scripts/build-images.sh)" >&2; exit 1; }
  user=$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$image")
  [ "$user" = "10001:10001" ] || fail "$image: user is '$user', not 10001:10001"
  for label in org.opencontainers.image.title org.opencontainers.image.version org.opencontainers.image.revision; do
    buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$label\"}}" "$image" | grep -q . ||
      fail "$image: label $label missing"
  done
  ctr=$(buildah from "$image")
  CONTAINERS+=("$ctr")
  uid=$(buildah run "$ctr" -- id -u)
  [ "$uid" = 10001 ] || fail "$image: processes run as uid $uid"
  missing=$(buildah run "$ctr" -- sh -c 'for f in /usr/local/bin/* /usr/lib/x86_64-linux-gnu/vips-modules-*/*.so; do ldd "$f" | sed "s|^|$f: |"; done' | grep 'not found')
  [ -z "$missing" ] || fail "$image: unresolved libraries: $missing"
  echo "$image: $(buildah run "$ctr" -- sh -c 'ldd /usr/local/bin/* | grep -c "=>"') library references, all resolve; user $user"
  tools=$(buildah run "$ctr" -- sh -c 'for t in cc gcc g++ c++ clang make cmake; do command -v $t; done; dpkg-query -W -f "\${Package}\n" | grep -- "-dev$"; true')
  [ -z "$tools" ] || fail "$image: build tools or -dev packages in the runtime image: $tools"
done

# The images serve: emulator and gateway from their images, on the host's loopback.
wait_line() {  # FILE REGEX: capture group 1 of the first matching line, within 60 s
  local i
  for i in $(seq 600); do
    if line=$(grep -Eo "$2" "$1" | head -1) && [ -n "$line" ]; then
      [[ $line =~ $2 ]] && echo "${BASH_REMATCH[1]}" && return 0
    fi
    sleep 0.1
  done
  echo "no /$2/ in $1:" >&2; cat "$1" >&2; return 1
}
emu_ctr=$(buildah from "$EMULATOR_IMAGE"); CONTAINERS+=("$emu_ctr")
setsid buildah run "$emu_ctr" -- /usr/local/bin/gemini-emulator --host 127.0.0.1 --port 0 --api_key image-check-key >"$TMP/emulator.log" 2>&1 &
PGIDS+=($!)
if url=$(wait_line "$TMP/emulator.log" 'listening on (http://[0-9.]+:[0-9]+)'); then
  srv_ctr=$(buildah from "$SERVER_IMAGE"); CONTAINERS+=("$srv_ctr")
  setsid buildah run --env GEMINI_API_KEY=image-check-key "$srv_ctr" -- /usr/local/bin/vision-server \
    --port 0 --listen_host 127.0.0.1 --gemini_base_url "$url" >"$TMP/server.log" 2>&1 &
  PGIDS+=($!)
  if port=$(wait_line "$TMP/server.log" 'listening on [0-9.]+:([0-9]+)'); then
    health=$(timeout 30 "$BUF" curl --protocol grpc --http2-prior-knowledge \
      --schema /usr/share/grpc-proto/grpc/health/v1/health.proto \
      -d '{"service":"vision.v1.VisionService"}' "http://127.0.0.1:$port/grpc.health.v1.Health/Check" 2>&1)
    echo "health check of vision-server in its image: $health" | tr -d '\n'; echo
    grep -q SERVING <<<"$health" || fail "health check: $health"
    png=$(/usr/bin/python3 tests/e2e/lib/make_png.py /dev/stdout | base64 -w0)
    caption=$(timeout 30 "$BUF" curl --protocol grpc --http2-prior-knowledge \
      -d "{\"images\":[{\"content\":\"$png\"}]}" "http://127.0.0.1:$port/vision.v1.VisionService/Caption" 2>&1)
    grep -q '"finishReason": *"STOP"' <<<"$caption" || fail "Caption through the images: $caption"
    echo "Caption through both images: $(grep -o '"text": *"[^"]*"' <<<"$caption" | head -3 | tr '\n' ' ')"
  else
    fail "vision-server did not start in its image"
  fi
else
  fail "gemini-emulator did not start in its image"
fi

buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep "vision-gateway/" 
[ $FAILED = 0 ] && echo "ok: images resolve every library, run as 10001, and serve"
exit $((FAILED > 0))
