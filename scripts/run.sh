#!/usr/bin/env bash
# Set-up command 1: install what is needed, build, and run vision-server on port 50051.
# With GEMINI_API_KEY set it talks to Gemini; without it, it starts the bundled gemini-emulator
# and says so. Extra arguments go to vision-server (e.g. --default_model=gemini-3.1-pro-preview).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh --target vision-server gemini-emulator vision
BUILD_DIR=${BUILD_DIR:-build}
PORT=${PORT:-50051}

if [ -n "${GEMINI_API_KEY:-}" ]; then
  echo "run: GEMINI_API_KEY is set: serving Gemini (${GEMINI_BASE_URL:-https://generativelanguage.googleapis.com}) on port $PORT"
  exec "$BUILD_DIR/service/vision-server" --port="$PORT" "$@"
fi

emulator_out=$(mktemp)
"$BUILD_DIR/emulator/gemini-emulator" --port 0 --api_key emulator-key >"$emulator_out" &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null; rm -f "$emulator_out"' EXIT
url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$emulator_out" | head -n1 || true)
  [ -n "$url" ] && break
  kill -0 $emulator_pid 2>/dev/null || { echo "run: gemini-emulator failed to start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "run: gemini-emulator did not report its address" >&2; exit 1; }
echo "run: GEMINI_API_KEY is not set: using the bundled gemini-emulator at $url (simulated answers, no Gemini calls); serving on port $PORT"
GEMINI_API_KEY=emulator-key "$BUILD_DIR/service/vision-server" --port="$PORT" --gemini_base_url="$url" "$@" &
server_pid=$!
trap 'kill $server_pid $emulator_pid 2>/dev/null; rm -f "$emulator_out"' EXIT
trap 'kill -TERM $server_pid 2>/dev/null' INT TERM
wait $server_pid
