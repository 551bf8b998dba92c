#!/usr/bin/env bash
# The only way in, on a fresh Debian 12 machine as root:
#   ./dev.sh run     build, then start parker and heavy_server (Ctrl-C stops both)
#   ./dev.sh test    build, then run every test (SANITIZE=1: ASan + UBSan build)
#   ./dev.sh bench   build, then run the benchmark (extra flags go to parker_bench)
#   ./dev.sh build   just build
#   ./dev.sh deb     build the Debian package (Release, prefix /usr) into build-deb/
#   ./dev.sh fuzz [seconds]   build the libFuzzer targets (clang, in build-fuzz/) and run
#                    each for `seconds` (default 60); fails if one finds a crash
# Each installs the Debian packages it needs when they are missing, and says so.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES="g++ make cmake pkg-config libuv1-dev libspdlog-dev libfmt-dev libcli11-dev catch2 libhttp-parser-dev help2man"
# For the operator-facing tests: promtool (in prometheus) checks the /metrics exposition, curl fetches it.
OPS_TEST_PACKAGES="prometheus curl"
TEST_PACKAGES="redis-tools redis-server nutcracker gnuplot-nox procps python3-redis"
BENCH_PACKAGES="redis-server redis-tools nutcracker gnuplot-nox procps"
FUZZ_PACKAGES="clang-14 libclang-rt-14-dev"
FUZZ_TARGETS="fuzz_protocol_decode fuzz_frame_reader fuzz_client_incoming fuzz_heavy_resp_session"

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

# Builds the fuzzers into build-fuzz/ and runs each, one after the other, for $1 seconds on
# a corpus of its own in build-fuzz/fuzz/<target>/: the seeds kept in tests/fuzz/corpus, fresh
# ones from make_seeds (so message types added since are covered), and what earlier runs
# found. libFuzzer writes only there, never into the tree; a crash input stays in crashes/.
fuzz() {
  local seconds=${1:-60}
  case "$seconds" in
    ''|*[!0-9]*) echo "dev.sh: fuzz takes a number of seconds, not '$seconds'" >&2; exit 2 ;;
  esac
  install_missing $BUILD_PACKAGES $FUZZ_PACKAGES
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DPARKER_FUZZ=ON -DPARKER_BUILD_TESTS=OFF >/dev/null
  # Only the fuzzers and what they link, on two jobs: never the whole project.
  cmake --build build-fuzz -j 2 --target $FUZZ_TARGETS make_seeds
  rm -rf build-fuzz/fuzz/seeds
  build-fuzz/bin/make_seeds build-fuzz/fuzz/seeds ||
    echo "dev.sh: warning: a message type has no valid seed (see above); fuzzing without it" >&2
  local failed=0 target dir log seed
  for target in $FUZZ_TARGETS; do
    dir=build-fuzz/fuzz/$target
    log=$dir/last-run.log
    mkdir -p "$dir/corpus" "$dir/crashes"
    cp tests/fuzz/corpus/"$target"/* "$dir/corpus/"
    for seed in build-fuzz/fuzz/seeds/"$target"/*; do cp "$seed" "$dir/corpus/fresh-${seed##*/}"; done
    if "build-fuzz/bin/$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
         -artifact_prefix="$dir/crashes/" "$dir/corpus" >"$log" 2>&1; then
      local runs rate
      runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
      rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
      echo "dev.sh fuzz: $target: ok, $runs runs in ${seconds}s ($rate exec/s), corpus $(ls "$dir/corpus" | wc -l) inputs"
    else
      local crash
      crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
      echo "dev.sh fuzz: $target: FAILED: crash input ${crash:-(none written)}, log $log"
      failed=1
    fi
  done
  return $failed
}

case "${1:-}" in
  build)
    build ;;
  run)
    build
    shift
    exec ./scripts/run.sh "$build_dir/bin" "$@" ;;
  test)
    install_missing $TEST_PACKAGES $OPS_TEST_PACKAGES
    build
    cd "$build_dir" && ctest --output-on-failure -j "$jobs" ;;
  bench)
    install_missing $BENCH_PACKAGES
    build
    shift
    # bench/results unless the caller names its own --out (parker_bench takes one).
    out=(--out bench/results)
    for arg in "$@"; do
      case "$arg" in --out|--out=*) out=() ;; esac
    done
    "$build_dir/bin/parker_bench" "${out[@]}" "$@" ;;
  fuzz)
    fuzz "${2:-60}" ;;
  deb)
    # dpkg-shlibdeps (dpkg-dev) computes the package's dependencies from what it links.
    install_missing $BUILD_PACKAGES dpkg-dev
    cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DPARKER_BUILD_TESTS=OFF >/dev/null
    cmake --build build-deb -j "$jobs"
    (cd build-deb && cpack -G DEB) ;;
  *)
    echo "usage: ./dev.sh run|test|bench|build|deb   (SANITIZE=1 for an ASan/UBSan build)" >&2
    echo "       ./dev.sh fuzz [seconds]         (libFuzzer, each target that long; default 60)" >&2
    exit 2 ;;
esac
