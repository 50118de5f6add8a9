#!/usr/bin/env bash
# Builds the libFuzzer targets (clang 14, -fsanitize=fuzzer,address,undefined) in their own tree
# and runs each for a bounded time from its seed corpus (tests/fuzz/corpus/<name>; read-only: new
# inputs go to a temporary directory). CI runs this through ctest (fuzz_build, fuzz_smoke.*).
#   run_fuzzers.sh [--build-only | --no-build] [target...]   (default: every target)
#   FUZZ_SECONDS    seconds per target (default 20)
#   FUZZ_BUILD_DIR  build tree (default build-fuzz)
#   FUZZ_ARGS       extra libFuzzer flags (e.g. "-jobs=2 -workers=2")
# A crash, leak, sanitizer report or broken invariant fails the run and leaves the reproducer in
# $FUZZ_BUILD_DIR/artifacts/<target>/; replay it with `<fuzzer binary> <file>`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ALL_TARGETS="sse_splitter_fuzz gemini_json_fuzz json_array_parser_fuzz spatial_item_fuzz mask_decoder_fuzz image_sniffer_fuzz"
BUILD=1
RUN=1
case "${1:-}" in
  --build-only) RUN=0; shift ;;
  --no-build) BUILD=0; shift ;;
esac
TARGETS=${*:-$ALL_TARGETS}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}

if ((BUILD)); then
  command -v clang++ >/dev/null ||
    { echo "run_fuzzers: clang++ is required (apt: clang libclang-rt-14-dev)" >&2; exit 1; }
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  fi
  # shellcheck disable=SC2086
  cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target $TARGETS
fi
((RUN)) || exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
failed=0
for target in $TARGETS; do
  seeds=tests/fuzz/corpus/${target%_fuzz}
  binary=$BUILD_DIR/tests/fuzz/$target
  [ -x "$binary" ] || { echo "run_fuzzers: $binary is not built" >&2; exit 1; }
  [ -d "$seeds" ] || { echo "run_fuzzers: no seed corpus $seeds" >&2; exit 1; }
  work=$(mktemp -d)
  mkdir -p "$BUILD_DIR/artifacts/$target"
  echo "== $target: ${SECONDS_PER_TARGET}s from $seeds"
  # shellcheck disable=SC2086
  if ! "$binary" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$target/" \
      ${FUZZ_ARGS:-} "$work" "$seeds" >"$work.log" 2>&1; then
    failed=1
    tail -n 80 "$work.log"
    echo "== $target FAILED (reproducer in $BUILD_DIR/artifacts/$target/)"
  else
    grep -E "DONE|^stat::(number_of_executed_units|peak_rss_mb|new_units_added)" \
      "$work.log" || true
  fi
  rm -rf "$work" "$work.log"
done
exit $failed
