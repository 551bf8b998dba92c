#!/usr/bin/env bash
# The install as an outside program sees it: `cmake --install` into a staging root
# (DESTDIR, prefix /usr), every promised file there, the installed C example built with
# `cc -std=c11` and pkg-config alone, run against the installed parker; a CMake project
# built with find_package(parker) against the same root.
#   c_example_test.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
stage=$work/stage
parker_pid=
cleanup() { [ -n "$parker_pid" ] && kill "$parker_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

DESTDIR=$stage cmake --install "$build" --prefix /usr >"$work/install.log"

# lib, or lib/<multiarch> when the build was configured with prefix /usr.
pc=$(find "$stage/usr/lib" -name parker.pc | head -n1)
[ -n "$pc" ] || { echo "missing from the install: parker.pc"; exit 1; }
libdir=$(dirname "$(dirname "${pc#"$stage/usr/"}")")
missing=0
for f in usr/sbin/parker usr/bin/parkerctl usr/bin/heavy_server \
         "usr/$libdir/libparker.so" "usr/$libdir/libparker.so.0" "usr/$libdir/libparker.a" "usr/$libdir/libparker-uv.so.0" \
         "usr/$libdir/pkgconfig/parker.pc" "usr/$libdir/pkgconfig/parker-uv.pc" \
         "usr/$libdir/cmake/parker/parkerConfig.cmake" "usr/$libdir/cmake/parker/parkerTargets.cmake" \
         usr/include/parker/parker.h usr/include/parker/client.hpp usr/include/parker/version.h \
         usr/share/doc/parker/examples/park_one.c \
         usr/share/man/man8/parker.8 usr/share/man/man1/parkerctl.1 usr/share/man/man1/heavy_server.1 \
         usr/lib/systemd/system/parker.service usr/lib/systemd/system/parker.socket \
         usr/lib/systemd/system/parker@.service usr/lib/systemd/system/heavy_server.service \
         usr/lib/systemd/system/parker-keeper.service usr/lib/systemd/system/parker-keeper@.service \
         usr/sbin/parker-keeper usr/share/man/man8/parker-keeper.8; do
  if [ ! -e "$stage/$f" ]; then echo "missing from the install: /$f"; missing=1; fi
done
[ $missing = 0 ] || exit 1

# The staging root's .pc files first; they locate the root themselves (${pcfiledir}).
export PKG_CONFIG_PATH=$stage/usr/$libdir/pkgconfig
cc -std=c11 -Wall -Wextra -Werror "$stage/usr/share/doc/parker/examples/park_one.c" \
   $(pkg-config --cflags --libs parker) -o "$work/park_one"
export LD_LIBRARY_PATH=$stage/usr/$libdir
# A sanitizer build's libparker.so carries the ASan runtime, which then cannot come first.
export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0

"$stage/usr/sbin/parker" --socket "$work/parker.sock" >"$work/parker.log" 2>&1 &
parker_pid=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$work/parker.log" && break
  kill -0 "$parker_pid" 2>/dev/null || { cat "$work/parker.log"; exit 1; }
  sleep 0.05
done
grep -q "listening on" "$work/parker.log" || { echo "parker did not start"; cat "$work/parker.log"; exit 1; }

"$work/park_one" "$work/parker.sock"

# find_package(parker) from the staging root, linking parker::client from C.
mkdir -p "$work/consumer"
cat >"$work/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer LANGUAGES C CXX)
find_package(parker REQUIRED)
add_executable(park_one park_one.c)
target_link_libraries(park_one PRIVATE parker::client)
CMAKE
cp "$stage/usr/share/doc/parker/examples/park_one.c" "$work/consumer/"
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$stage/usr" \
      -DCMAKE_FIND_ROOT_PATH="$stage" >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
cmake --build "$work/consumer/build" >>"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
"$work/consumer/build/park_one" "$work/parker.sock"

kill -TERM "$parker_pid"
wait "$parker_pid"
parker_pid=
echo "install, pkg-config build, find_package build and both runs: ok"
