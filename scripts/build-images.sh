#!/usr/bin/env bash
# Builds the container images
#   vision-gateway/vision-server:$VERSION and vision-gateway/gemini-emulator:$VERSION
# with buildah (chroot isolation: works inside containers and without a daemon). Without
# BASE_IMAGE, a Debian 12 base is made locally with mmdebstrap from the machine's Debian mirror,
# so no container registry is needed. Needs root (apt, mmdebstrap, buildah).
#
#   scripts/build-images.sh                 # local base, both images, compiled in the build stage
#   BASE_IMAGE=docker.io/library/debian:12-slim scripts/build-images.sh
#   scripts/build-images.sh --prebuilt build  # the binaries of build/ (this Debian 12 host, same
#                                           # packages) instead of compiling again: what ctest's
#                                           # image_build_and_start does (see README "Images")
#   scripts/build-images.sh --archive DIR   # also write DIR/<image>.oci.tar (buildah push)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:-0.1.0}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${IMAGE_CACHE_DIR:-$HOME/.cache/vision-gateway-images}
LOCAL_BASE=localhost/vision-gateway/debian:12-minbase-merged-usr
ARCHIVE_DIR=""
PREBUILT_DIR=""
while (($#)); do
  case "$1" in
    --archive) ARCHIVE_DIR=${2:?--archive needs a directory}; shift 2 ;;
    --prebuilt) PREBUILT_DIR=${2:?--prebuilt needs a build directory}; shift 2 ;;
    *) echo "build-images: unknown argument $1" >&2; exit 2 ;;
  esac
done
export BUILDAH_ISOLATION=chroot

need=()
command -v buildah >/dev/null || need+=(buildah)
[ -n "${BASE_IMAGE:-}" ] || command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if ((${#need[@]})); then
  [ "$(id -u)" -eq 0 ] || { echo "build-images: needs ${need[*]} (apt, as root)" >&2; exit 1; }
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

now() { date +%s; }
t0=$(now)
if [ -z "${BASE_IMAGE:-}" ]; then
  if ! buildah inspect --type image "$LOCAL_BASE" >/dev/null 2>&1; then
    mkdir -p "$CACHE"
    echo "build-images: making a Debian 12 base with mmdebstrap ($MIRROR)"
    # Like debian:12-slim: /usr merged by mmdebstrap itself (the usr-is-merged package; without
    # the hook, bookworm's usrmerge package converts the tree and pulls in perl, 48 MB the
    # images never use), no documentation, man pages or translations.
    mmdebstrap --variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
      bookworm "$CACHE/debian12.tar" \
      "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
      "deb $SECURITY_MIRROR bookworm-security main"
    ctr=$(buildah from scratch)
    buildah add "$ctr" "$CACHE/debian12.tar" / >/dev/null
    buildah config --cmd /bin/bash "$ctr"
    buildah commit --rm "$ctr" "$LOCAL_BASE" >/dev/null
    rm -f "$CACHE/debian12.tar"
  fi
  BASE_IMAGE=$LOCAL_BASE
fi
t1=$(now)
echo "build-images: base $BASE_IMAGE ready ($((t1 - t0)) s)"

revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
CONTEXT=.
BINARIES=build
if [ -n "$PREBUILT_DIR" ]; then
  # The prebuilt stage's context: the two binaries (debug info stripped, as the build stage does)
  # and the packages that provide what they load, derived here from the binaries themselves.
  CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/vg-image-context.XXXXXX")
  trap 'rm -rf "$CONTEXT"' EXIT
  mkdir "$CONTEXT/prebuilt"
  for binary in service/vision-server emulator/gemini-emulator; do
    [ -x "$PREBUILT_DIR/$binary" ] || { echo "build-images: no $PREBUILT_DIR/$binary (scripts/build.sh)" >&2; exit 1; }
    strip --strip-debug -o "$CONTEXT/prebuilt/$(basename "$binary")" "$PREBUILT_DIR/$binary"
  done
  /usr/bin/python3 scripts/image_packages.py derive "$CONTEXT/prebuilt/vision-server" \
    "$CONTEXT/prebuilt/gemini-emulator" >"$CONTEXT/prebuilt/runtime-packages.txt"
  BINARIES=prebuilt
  revision="$revision-prebuilt"
  echo "build-images: binaries from $PREBUILT_DIR, $(wc -l <"$CONTEXT/prebuilt/runtime-packages.txt") runtime packages"
fi
for target in gemini-emulator vision-server; do
  start=$(now)
  buildah build --isolation chroot --layers \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$VERSION" \
    --build-arg REVISION="$revision" --build-arg BINARIES="$BINARIES" \
    --target "$target" -t "vision-gateway/$target:$VERSION" -f "$PWD/Containerfile" "$CONTEXT"
  echo "build-images: vision-gateway/$target:$VERSION built in $(($(now) - start)) s"
  if [ -n "$ARCHIVE_DIR" ]; then
    mkdir -p "$ARCHIVE_DIR"
    buildah push "vision-gateway/$target:$VERSION" "oci-archive:$ARCHIVE_DIR/$target.oci.tar:$VERSION"
  fi
done
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep 'vision-gateway/' || true
echo "build-images: done in $(($(now) - t0)) s"
