#!/usr/bin/env bash
# Generates the Python stubs for vision.v1 and the google.rpc error details into OUT (default:
# ./gen next to this script) with Debian's protoc and grpc_python_plugin (protobuf-compiler-grpc).
#   generate.sh [OUT]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$HERE/gen}
# google/rpc/{status,error_details}.proto, as Debian ships them (golang-github-gogo-googleapis-dev;
# plain protos, no gogo options).
GOOGLEAPIS=${GOOGLEAPIS:-/usr/share/gocode/src/github.com/gogo/googleapis}
mkdir -p "$OUT"
protoc -I "$REPO/proto" -I "$GOOGLEAPIS" -I /usr/include \
  --python_out="$OUT" --grpc_python_out="$OUT" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  vision/v1/vision.proto google/rpc/status.proto google/rpc/error_details.proto
