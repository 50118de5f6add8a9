#!/usr/bin/env bash
# The `vision` CLI against vision-server in front of gemini-emulator: caption, count-tokens,
# detect and segment print what the server streams; a non-image fails with INVALID_ARGUMENT.
#   vision_cli_test.sh <gemini-emulator> <vision-server> <vision>
set -uo pipefail
EMULATOR=${1:-}
SERVER=${2:-}
CLI=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/processes.sh
. "$HERE/lib/processes.sh"
vg_args "$0 <gemini-emulator> <vision-server> <vision>" 3 "$@"
vg_init
FAILED=0
check() {  # check NAME OUTPUT REGEX
  if [[ $2 =~ $3 ]]; then echo "ok: $1"; else echo "FAIL: $1: $2" >&2; FAILED=$((FAILED + 1)); fi
}

/usr/bin/python3 "$HERE/lib/make_png.py" "$VG_TMP/blue.png"  # blue square at x, y 10..29

vg_start_emulator "$EMULATOR" --api_key k || exit 1
GEMINI_API_KEY=k vg_start_server "$SERVER" "$VG_EMULATOR_URL" || exit 1
ADDR=127.0.0.1:$VG_SERVER_PORT
IMG=$VG_TMP/blue.png

check caption "$("$CLI" caption "$IMG" --addr "$ADDR" 2>&1)" '64x48 image showing a blue shape.*\[STOP'
check count-tokens "$("$CLI" count-tokens "$IMG" --addr "$ADDR" 2>&1)" 'estimated_image_tokens: 258'
check detect "$("$CLI" detect "$IMG" --addr "$ADDR" 2>&1)" \
  'image 64x48 pixels image/png.*object 0 "blue" box x (9|10|11)\.\.(29|30|31) y (9|10|11)\.\.(29|30|31).*summary: 1 objects'
mkdir -p "$VG_TMP/masks"
check segment "$("$CLI" segment "$IMG" --addr "$ADDR" --masks_dir "$VG_TMP/masks" 2>&1)" \
  'mask 0 "blue" box .* area [0-9]+ .*summary: 1 objects'
if [ -s "$VG_TMP/masks/mask-0.png" ]; then echo "ok: mask PNG written"; else
  echo "FAIL: no mask PNG written" >&2; FAILED=$((FAILED + 1)); fi
# Upload, then every task on the file, and the files commands.
up=$("$CLI" upload "$IMG" --addr "$ADDR" --display_name blue 2>&1)
check upload "$up" '^files/g1-[a-z0-9-]+.*state STATE_ACTIVE, [0-9]+ bytes, image/png, 64x48.*sha256 [0-9a-f]{64}'
NAME=$(printf '%s\n' "$up" | head -1)
check upload-dedupe "$("$CLI" upload "$IMG" --addr "$ADDR" 2>&1 | head -1)" "^$NAME\$"
check detect-file "$("$CLI" detect "$NAME" --addr "$ADDR" 2>&1)" \
  'image 64x48 pixels image/png.*object 0 "blue" box x (9|10|11)\.\.(29|30|31) y (9|10|11)\.\.(29|30|31).*summary: 1 objects'
check caption-file "$("$CLI" caption "$NAME" "$IMG" --addr "$ADDR" 2>&1)" 'blue.*\[STOP'
check files-list "$("$CLI" files list --addr "$ADDR" 2>&1)" "$NAME"
check files-get "$("$CLI" files get "$NAME" --addr "$ADDR" 2>&1)" 'display_name blue'
check files-delete "$("$CLI" files delete "$NAME" --addr "$ADDR" 2>&1)" "deleted $NAME"
out=$("$CLI" files get "$NAME" --addr "$ADDR" 2>&1)
check files-get-deleted "$? $out" '^69 .*NOT_FOUND.*48 hours'
# The models this caller may use (the server's default allowlist of Gemini's list).
check models "$("$CLI" models --addr "$ADDR" 2>&1)" \
  '^gemini-3-flash-preview  in 1048576 / out 65536 tokens, thinks \(levels MINIMAL LOW MEDIUM HIGH\), default, segment default'
out=$("$CLI" detect /etc/hostname --addr "$ADDR" 2>&1)
code=$?
check not-an-image "$code $out" '^67 .*INVALID_ARGUMENT \(gRPC code 3\): image: unsupported image type.*reason: INVALID_REQUEST'
exit $((FAILED > 0))
