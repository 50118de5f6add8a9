#!/usr/bin/env bash
# Builds the Node example: generates the TypeScript stubs for vision.v1 and the google.rpc error
# details with protoc + protoc-gen-es (npm @bufbuild/protoc-gen-es) into OUT/gen, then compiles
# example.ts and the stubs with tsc into OUT/dist. OUT defaults to this folder; another OUT gets
# a copy of the sources and a link to the repo's node_modules.
#   build.sh [OUT]        then: node OUT/dist/example.js [flags] IMAGE (see README.md)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "${1:-$HERE}" && cd "${1:-$HERE}" && pwd)
NODE_MODULES=${NODE_MODULES:-$REPO/node_modules}
# google/rpc/error_details.proto as Debian ships it (golang-github-gogo-googleapis-dev; plain
# protos, no gogo options).
GOOGLEAPIS=${GOOGLEAPIS:-/usr/share/gocode/src/github.com/gogo/googleapis}
if [ "$OUT" != "$HERE" ]; then
  cp "$HERE/example.ts" "$HERE/tsconfig.json" "$HERE/package.json" "$OUT/"
  ln -sfn "$NODE_MODULES" "$OUT/node_modules"
fi
rm -rf "$OUT/gen" "$OUT/dist"
mkdir -p "$OUT/gen"
protoc -I "$REPO/proto" -I "$GOOGLEAPIS" -I /usr/include \
  --plugin=protoc-gen-es="$NODE_MODULES/.bin/protoc-gen-es" \
  --es_out="$OUT/gen" --es_opt=target=ts \
  vision/v1/vision.proto google/rpc/error_details.proto
"$NODE_MODULES/.bin/tsc" -p "$OUT"
