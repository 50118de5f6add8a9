#!/usr/bin/env bash
# Installs everything vision-gateway needs on Debian 12 (bookworm). Idempotent: packages already
# present are skipped by apt, npm reuses node_modules. apt needs root; without it we say so and stop.
#   --apt-only   only the Debian packages (the Containerfile's build stage uses this)
set -euo pipefail
APT_ONLY=0
[ "${1:-}" = "--apt-only" ] && APT_ONLY=1
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  g++ cmake make ninja-build pkgconf ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev grpc-proto
  golang-github-gogo-googleapis-dev
  libssl-dev openssl libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libvips-dev
  # Performance (#18): whole-buffer inflate for PNG checks and masks (service/image/png_scan.cc).
  libdeflate-dev
  python3-grpcio
  yamllint
  # Observability (#10): Prometheus client library (pull endpoint); Prometheus server + promtool
  # for the e2e scrape test and the rule unit tests; python3-yaml for the monitoring checks.
  prometheus-cpp-dev prometheus python3-yaml
  # Resilience (#8): libFuzzer targets in tests/fuzz (clang 14, -fsanitize=fuzzer; the fuzzer
  # runtime is in libclang-rt-14-dev), run briefly by ctest (fuzz_build, fuzz_smoke.*).
  clang libclang-rt-14-dev
  # Benchmarks (bench/run_bench.sh resets the emulator between runs with curl).
  curl
  # Result cache (#21): hiredis, the Redis client library service/redis/ uses (its runtime
  # package, libhiredis0.14, reaches the image through image_packages.py like every library).
  libhiredis-dev
)
# Result cache (#21): the tests start a real redis-server (Redis 7) on a free loopback port. Not
# in the Containerfile's build stage (--apt-only): nothing there runs Redis.
((APT_ONLY)) || APT_PACKAGES+=(redis-server)
# Container images (#24): ctest's image_build_and_start builds both images (buildah, chroot
# isolation, on a Debian 12 base made with mmdebstrap) and starts them. Not needed inside the
# Containerfile's build stage (--apt-only).
((APT_ONLY)) || APT_PACKAGES+=(buildah mmdebstrap)
# Typed Go client example (#19, client/go, ctest e2e_client_go): Go 1.19 with grpc-go and the
# protobuf runtime from Debian, built offline in GOPATH mode; protoc-gen-go(-grpc) make the stubs.
# golang-github-golang-protobuf-1-5-dev is named so apt does not pick the 1.3 alternative that
# golang-google-grpc-dev also accepts (1.3 predates the protobuf APIv2 runtime the stubs use).
((APT_ONLY)) || APT_PACKAGES+=(golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev
  golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev golang-google-genproto-dev
  golang-golang-x-oauth2-dev)
# The README's examples pipe `vision --output json` into jq (e2e_readme_doctest runs them).
((APT_ONLY)) || APT_PACKAGES+=(jq)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: these Debian packages are missing and installing them needs root:" >&2
    echo "  ${missing[*]}" >&2
    echo "install-deps: re-run as root (or: sudo $0)." >&2
    exit 1
  fi
  echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
  # The image check (scripts/image_packages.py) resolves the runtime image's packages with apt,
  # which needs the package lists even when nothing is missing here.
  if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    apt-get update -q
  fi
fi

((APT_ONLY)) && exit 0
command -v npm >/dev/null || { echo "install-deps: npm (Node.js 20) is required for the test clients" >&2; exit 1; }
# Test clients and tooling only (buf curl, the official @google/genai SDK, @grpc/grpc-js,
# kubernetes-models + yaml for the offline manifest checks; the typed Node client example's
# Connect-ES runtime, protoc-gen-es and TypeScript, client/node).
if [ ! -x node_modules/.bin/buf ] || [ ! -d node_modules/@google/genai ] || [ ! -d node_modules/@grpc/grpc-js ] ||
   [ ! -d node_modules/kubernetes-models ] || [ ! -d node_modules/yaml ] ||
   [ ! -d node_modules/@connectrpc/connect-node ] || [ ! -x node_modules/.bin/protoc-gen-es ] ||
   [ ! -x node_modules/.bin/tsc ]; then
  echo "install-deps: installing npm test tooling (package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error
fi
