#!/usr/bin/env bash
# Builds the Go example offline with Debian's Go packages (GOPATH mode, /usr/share/gocode):
# generates the vision.v1 stubs with protoc + protoc-gen-go + protoc-gen-go-grpc into a GOPATH
# under OUT, then builds OUT/vision-example. google.rpc's error details come from Debian's
# golang-google-genproto-dev (google.golang.org/genproto/googleapis/rpc/errdetails).
#   build.sh [OUT]        (default: ./out next to this script); then OUT/vision-example [flags] IMAGE
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "${1:-$HERE/out}" && cd "${1:-$HERE/out}" && pwd)
SRC="$OUT/gopath/src/vision-gateway"
rm -rf "$SRC"
mkdir -p "$SRC/example"
cp "$HERE/main.go" "$SRC/example/"
# The proto has no go_package option: the M flag names the Go package of the generated code.
GO_PACKAGE="Mvision/v1/vision.proto=vision-gateway/gen/vision/v1;visionv1"
protoc -I "$REPO/proto" -I /usr/include \
  --go_out="$OUT/gopath/src" --go_opt="$GO_PACKAGE" \
  --go-grpc_out="$OUT/gopath/src" --go-grpc_opt="$GO_PACKAGE" \
  vision/v1/vision.proto
export GO111MODULE=off GOPATH="$OUT/gopath:/usr/share/gocode" GOFLAGS= GOPROXY=off
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
  export GOCACHE="$OUT/gocache"
fi
cd "$SRC/example"
go vet .
go build -p 2 -o "$OUT/vision-example" .
