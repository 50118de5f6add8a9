# Sourced by the shell e2e tests and bench/run_bench.sh: start gemini-emulator and vision-server
# on port 0, wait for their "listening" lines (no sleeps as synchronisation), kill them on exit.
#
#   vg_start_emulator BINARY [ARGS...]   sets VG_EMULATOR_PID, VG_EMULATOR_URL, VG_EMULATOR_PORT
#   vg_start_server BINARY URL [ARGS...] sets VG_SERVER_PID, VG_SERVER_PORT (env GEMINI_API_KEY)
#   vg_cleanup                           kills both (installed as an EXIT trap by vg_init)

VG_WAIT_S=${VG_WAIT_S:-20}

# vg_args USAGE N "$@": exits 2 with USAGE unless at least N arguments were given.
vg_args() {
  local usage=$1 need=$2
  shift 2
  if [ $# -lt "$need" ]; then
    echo "usage: $usage" >&2
    exit 2
  fi
}

vg_init() {
  VG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vg-e2e.XXXXXX")
  VG_PIDS=()
  trap vg_cleanup EXIT
  trap 'exit 130' INT TERM
}

vg_cleanup() {
  local pid
  for pid in "${VG_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${VG_PIDS[@]}"; do
    # Give each a moment to stop, then make sure.
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  VG_PIDS=()
  [ -n "${VG_TMP:-}" ] && rm -rf "$VG_TMP"
}

# vg_wait_line FILE REGEX PID: prints capture group 1 of the first line of FILE matching REGEX
# (bash ERE). Fails if PID exits first or after VG_WAIT_S seconds, showing FILE.
vg_wait_line() {
  local file=$1 regex=$2 pid=$3 line fd tail_pid found=""
  # tail -F follows the log as it grows and stops when PID exits; timeout bounds the whole wait.
  exec {fd}< <(exec timeout "$VG_WAIT_S" tail -n +1 -F --pid="$pid" "$file" 2>/dev/null)
  tail_pid=$!
  while IFS= read -r -u "$fd" line; do
    if [[ $line =~ $regex ]]; then
      found=${BASH_REMATCH[1]}
      break
    fi
  done
  kill "$tail_pid" 2>/dev/null || true
  exec {fd}<&-
  if [ -n "$found" ]; then
    echo "$found"
    return 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "process $pid exited before printing /$regex/; its output:" >&2
  else
    echo "no line /$regex/ within ${VG_WAIT_S}s; output so far:" >&2
  fi
  sed 's/^/  | /' "$file" >&2
  return 1
}

vg_start_emulator() {
  local binary=$1
  shift
  local log="$VG_TMP/emulator.log"
  "$binary" --port 0 "$@" >"$log" 2>&1 &
  VG_EMULATOR_PID=$!
  VG_PIDS+=("$VG_EMULATOR_PID")
  VG_EMULATOR_URL=$(vg_wait_line "$log" 'gemini-emulator listening on (http://[^ ]+:[0-9]+)' \
                    "$VG_EMULATOR_PID") || return 1
  VG_EMULATOR_PORT=${VG_EMULATOR_URL##*:}
}

vg_start_server() {
  local binary=$1 url=$2
  shift 2
  local log="$VG_TMP/server.log"
  "$binary" --port 0 --metrics_port 0 --listen_host 127.0.0.1 --gemini_base_url "$url" "$@" \
    >"$log" 2>&1 &
  VG_SERVER_PID=$!
  VG_PIDS+=("$VG_SERVER_PID")
  VG_SERVER_PORT=$(vg_wait_line "$log" 'vision-server listening on [^ ]*:([0-9]+)' \
                   "$VG_SERVER_PID") || return 1
}
