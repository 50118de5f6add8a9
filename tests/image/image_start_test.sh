#!/usr/bin/env bash
# The images as an operator meets them (issue #24), on every CI run: builds both images with
# scripts/build-images.sh from the binaries ctest was given (--prebuilt: the freshly built ones,
# not a second compile inside the image; the runtime stage and its package list are the real
# ones), then scripts/check-images.sh: every library resolves inside, uid 10001, no compiler or
# -dev package, and gemini-emulator + vision-server started from the images serve a health check
# and a Caption. Needs root, buildah and mmdebstrap (scripts/install-deps.sh installs them) and
# Debian's mirror. The releasable image compiles inside instead: scripts/build-images.sh without
# --prebuilt (README "Images").
#   tests/image/image_start_test.sh BUILD_DIR
set -euo pipefail
BUILD_DIR=$(cd "${1:?usage: image_start_test.sh BUILD_DIR}" && pwd)
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "image_start_test: needs root (buildah, as scripts/test.sh runs)" >&2; exit 1; }
start=$(date +%s)
scripts/build-images.sh --prebuilt "$BUILD_DIR"
built=$(date +%s)
scripts/check-images.sh
echo "image_start_test: images built in $((built - start)) s, checked in $(($(date +%s) - built)) s"
