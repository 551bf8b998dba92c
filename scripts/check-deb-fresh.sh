#!/usr/bin/env bash
# Installs the Debian package into a pristine Debian 12 root and runs parker from it:
#   scripts/check-deb-fresh.sh [DEB]          (default: build-deb/parker_*.deb, from ./dev.sh deb)
# Root only, slow (a fresh root, apt-get), so not part of ctest or CI. Uses the `fresh` tool
# (tools/fresh/run-in-fresh.sh: a debootstrap minbase root in a private namespace, deleted
# afterwards); set PARKER_TOOLS to its parent directory if it is not ../shared/tools.
#
# In the fresh root: apt-get install ./parker_*.deb (dependencies from the package alone),
# every program's --version, the user, units and man pages, parker started from /usr/sbin
# with --metrics-listen, parkerctl stats, GET /metrics, and the installed C example built with
# cc + pkg-config and run against that parker.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls -t build-deb/parker_*.deb 2>/dev/null | head -n1)}
[ -f "$deb" ] || { echo "no .deb (run ./dev.sh deb first, or pass one)" >&2; exit 2; }
tools=${PARKER_TOOLS:-$(cd .. && pwd)/shared/tools}
[ -x "$tools/fresh/run-in-fresh.sh" ] || { echo "fresh tool not found under $tools" >&2; exit 2; }

# run-in-fresh.sh clones a git repository into the root: give it one holding just the .deb.
carrier=$(mktemp -d /tmp/parker-deb-carrier.XXXXXX)
trap 'rm -rf "$carrier"' EXIT
cp "$deb" "$carrier/"
git -C "$carrier" init -q
git -C "$carrier" add .
git -C "$carrier" -c user.name=check -c user.email=check@localhost commit -q -m deb

"$tools/fresh/run-in-fresh.sh" --timeout 900 --env DEBIAN_FRONTEND=noninteractive "$carrier" '
set -eu
step() { echo "== $*"; }
step "apt-get install ./$(ls parker_*.deb)"
apt-get update -qq
apt-get install -y -qq ./parker_*.deb >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; exit 1; }
dpkg -s parker | grep -E "^(Version|Depends):"
step "versions"
parker --version; parkerctl --version; heavy_server --version
step "user, units, man pages, library"
getent passwd parker
ls /usr/lib/systemd/system/parker.service /usr/lib/systemd/system/parker.socket \
   /usr/lib/systemd/system/parker@.service /usr/lib/systemd/system/heavy_server.service \
   /usr/lib/systemd/system/parker-keeper.service /usr/lib/systemd/system/parker-keeper@.service
ls /usr/share/man/man8/parker.8* /usr/share/man/man1/parkerctl.1* /usr/share/man/man1/heavy_server.1*
ls /usr/lib/*/libparker.so.0 /usr/lib/*/libparker.a /usr/lib/*/pkgconfig/parker.pc /usr/include/parker/parker.h
step "parker from the package"
/usr/sbin/parker --socket /tmp/parker.sock --metrics-listen 127.0.0.1:0 >/tmp/parker.log 2>&1 &
pid=$!
for i in $(seq 100); do grep -q "listening on" /tmp/parker.log && break; sleep 0.1; done
cat /tmp/parker.log
parkerctl --socket /tmp/parker.sock stats | grep -E "^parker_(parked_connections|fd_budget) "
port=$(sed -n "s|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics|\1|p" /tmp/parker.log)
exec 3<>/dev/tcp/127.0.0.1/$port
printf "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" >&3
head -c 200 <&3 | head -n 3
exec 3<&-
step "the installed C example, built with cc + pkg-config"
apt-get install -y -qq gcc pkg-config >/tmp/apt2.log 2>&1 || { tail -20 /tmp/apt2.log; exit 1; }
cc -std=c11 /usr/share/doc/parker/examples/park_one.c $(pkg-config --cflags --libs parker) -o /tmp/park_one
/tmp/park_one /tmp/parker.sock
kill -TERM $pid; wait $pid
step "parker exited $?"
tail -2 /tmp/parker.log
echo DEB-FRESH-OK
'
