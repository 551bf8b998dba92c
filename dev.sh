#!/usr/bin/env bash
# The only way in, on a fresh Debian 12 machine as root:
#   ./dev.sh run     build, then start parker and heavy_server (Ctrl-C stops both)
#   ./dev.sh test    build, then run every test (SANITIZE=1: ASan + UBSan build)
#   ./dev.sh bench   build, then run the benchmark (extra flags go to parker_bench)
#   ./dev.sh build   just build
# Each installs the Debian packages it needs when they are missing, and says so.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES="g++ make cmake pkg-config libuv1-dev libspdlog-dev libfmt-dev libcli11-dev catch2"
TEST_PACKAGES="redis-tools redis-server nutcracker gnuplot-nox procps"
BENCH_PACKAGES="redis-server redis-tools nutcracker gnuplot-nox procps"

build_dir=build
cmake_flags=()
if [ "${SANITIZE:-0}" = 1 ]; then
  build_dir=build-sanitize
  cmake_flags+=(-DPARKER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
jobs=$(nproc)

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "dev.sh: installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "dev.sh: run as root (or install them yourself) to go on" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() {
  install_missing $BUILD_PACKAGES
  cmake -S . -B "$build_dir" "${cmake_flags[@]}" >/dev/null
  cmake --build "$build_dir" -j "$jobs"
}

case "${1:-}" in
  build)
    build ;;
  run)
    build
    shift
    exec ./scripts/run.sh "$build_dir/bin" "$@" ;;
  test)
    install_missing $TEST_PACKAGES
    build
    cd "$build_dir" && ctest --output-on-failure -j "$jobs" ;;
  bench)
    install_missing $BENCH_PACKAGES
    build
    shift
    "$build_dir/bin/parker_bench" --out bench/results "$@" ;;
  *)
    echo "usage: ./dev.sh run|test|bench|build   (SANITIZE=1 for an ASan/UBSan build)" >&2
    exit 2 ;;
esac
