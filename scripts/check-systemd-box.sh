#!/usr/bin/env bash
# The units against a real systemd 252 (PID 1 in a systemd-nspawn container):
#   scripts/check-systemd-box.sh [DEB]        (default: build-deb/parker_*.deb)
# Root only, slow, so not part of ctest or CI. Uses tools/systemd-box (set PARKER_TOOLS to
# its parent if it is not ../shared/tools) with an image of its own that has the package's
# runtime libraries (/var/tmp/parker-sdbox-bookworm.tar.zst).
#
# In the box, scripts/sdbox/driver.sh installs the .deb and checks: parker.socket listening
# with parker not running; the first connection starting parker (socket activation) and it
# becoming active only by READY=1 (Type=notify) with a STATUS=; the journal's priorities; a
# reload (USR2) handing over to a successor that becomes MAINPID;
# heavy_server.service parking a real TCP client with parker and getting it back;
# parker-keeper.service keeping that client across parker's SIGKILL (parker --keeper); stop
# (STOPPING=1) leaving the socket to systemd and the keeper running; parker@.service.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls -t build-deb/parker_*.deb 2>/dev/null | head -n1)}
[ -f "$deb" ] || { echo "no .deb (run ./dev.sh deb first, or pass one)" >&2; exit 2; }
tools=${PARKER_TOOLS:-$(cd .. && pwd)/shared/tools}
[ -x "$tools/systemd-box/boot-nspawn.sh" ] || { echo "systemd-box not found under $tools" >&2; exit 2; }

# The runtime dependencies of the package, without versions, preinstalled in the image (the
# box has no network of its own).
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$' | tr '\n' ' ')
export SDBOX_IMAGE=/var/tmp/parker-sdbox-bookworm.tar.zst
stamp=$SDBOX_IMAGE.deps
if [ ! -s "$SDBOX_IMAGE" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$deps" ]; then
  "$tools/systemd-box/make-image.sh" --force --extra "$deps"
  echo "$deps" > "$stamp"
fi

payload=$(mktemp -d /tmp/parker-sdbox-payload.XXXXXX)
trap 'rm -rf "$payload"' EXIT
cp scripts/sdbox/driver.sh scripts/sdbox/heavy_check.py scripts/sdbox/keeper_check.py scripts/sdbox/box_client.py scripts/sdbox/sdbox-driver.service "$payload/"
cp "$deb" "$payload/parker.deb"
"$tools/systemd-box/boot-nspawn.sh" --timeout 180 "$payload"
