#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer):
# builds everything into build-asan/ (-DVG_SANITIZE=address,undefined: Debug with -O1, frame
# pointers, UBSan without recovery) and runs ctest with runtime options that make any report a
# failure. The stress test runs at full size here (STRESS_CALLS calls per RPC kind,
# STRESS_SHUTDOWN_ROUNDS shutdowns; STRESS_SEED repeats a run). Extra arguments go to ctest,
# e.g. `scripts/sanitize.sh -R stress`.
#
# Not part of scripts/test.sh: see README "Sanitizers" for what a run costs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build-asan}
BUILD_DIR=$BUILD_DIR BUILD_TYPE=Debug CMAKE_ARGS="-DVG_SANITIZE=address,undefined" ./scripts/build.sh

# ASan stops at the first error (it cannot recover without -fsanitize-recover) and exits 1;
# leaks are reported at exit (LeakSanitizer) and fail the process too. UBSan is built with
# -fno-sanitize-recover=all, so its first report aborts; print_stacktrace shows where.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:detect_invalid_pointer_pairs=0:print_stacktrace=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Suppressions only for Debian's uninstrumented libraries, each justified in the file.
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export STRESS_CALLS=${STRESS_CALLS:-2000}
export STRESS_SHUTDOWN_ROUNDS=${STRESS_SHUTDOWN_ROUNDS:-40}
echo "sanitize: ASAN_OPTIONS=$ASAN_OPTIONS"
echo "sanitize: UBSAN_OPTIONS=$UBSAN_OPTIONS"
echo "sanitize: STRESS_CALLS=$STRESS_CALLS STRESS_SHUTDOWN_ROUNDS=$STRESS_SHUTDOWN_ROUNDS" \
     "STRESS_SEED=${STRESS_SEED:-default}"
# Not the image tests (label image): they would ship instrumented binaries in the release tags.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${TEST_JOBS:-2}" --timeout 1800 -LE image "$@"
