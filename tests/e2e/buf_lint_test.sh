#!/usr/bin/env bash
# buf lint on proto/ with the repository's buf.yaml (STANDARD minus the two AIP-style exceptions).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUF="$REPO/node_modules/.bin/buf"
if [ ! -x "$BUF" ]; then
  echo "SKIP: $BUF missing (run scripts/install-deps.sh)" >&2
  exit 77
fi
BUF_CACHE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vg-buf-cache.XXXXXX")
export BUF_CACHE_DIR
trap 'rm -rf "$BUF_CACHE_DIR"' EXIT
cd "$REPO"
if ! out=$(timeout 120 "$BUF" lint 2>&1); then
  echo "FAIL: buf lint" >&2
  echo "$out" >&2
  exit 1
fi
echo "buf lint: clean"
echo "1 passed, 0 failed"
