#!/usr/bin/env bash
# ctest smoke test of bench/peer_compare.sh (label "smoke": ~10 s, no figure is checked):
# a tiny closed-loop run against both servers must succeed and print the three ratios.
#   bench/peer_compare_smoke_test.sh <gemini-emulator> <vision-server> <vision-bench>
set -uo pipefail
if [ $# -lt 3 ]; then
  echo "usage: peer_compare_smoke_test.sh <gemini-emulator> <vision-server> <vision-bench>" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
out=$(EMULATOR_BIN=$1 SERVER_BIN=$2 BENCH_BIN=$3 \
      "$HERE/peer_compare.sh" --duration 2 --warmup 1 --concurrency 2 --channels 1 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 77 ] && exit 77
if [ "$rc" -ne 0 ]; then
  echo "FAIL: peer_compare.sh exited $rc" >&2
  exit 1
fi
for name in 'throughput' 'CPU efficiency' 'RSS \(peak\)'; do
  if ! grep -Eq "^$name +gateway +[0-9.]+ .* peer +[0-9.]+ .* ratio [0-9.]+x$" <<<"$out"; then
    echo "FAIL: no '$name' ratio line in the output" >&2
    exit 1
  fi
done
echo "PASS"
