#!/usr/bin/env bash
# `./dev.sh run`: parker and heavy_server side by side with their defaults, in the
# foreground. Ctrl-C (or TERM) stops both: heavy_server first, then parker.
set -euo pipefail
bin=${1:?usage: run.sh BIN_DIR [heavy_server flags...]}
shift || true
socket=${PARKER_SOCKET:-/tmp/parker-run-$(id -u).sock}
port=${HEAVY_PORT:-6380}

"$bin/parker" --socket "$socket" &
parker_pid=$!
heavy_pid=
stopped=
# INT, not TERM, for heavy_server: TERM would hand every connection to parker for a restart,
# and parker is about to stop too.
stop() {
  [ -n "$stopped" ] && return
  stopped=1
  [ -n "$heavy_pid" ] && kill -INT "$heavy_pid" 2>/dev/null && wait "$heavy_pid" 2>/dev/null || true
  kill -TERM "$parker_pid" 2>/dev/null && wait "$parker_pid" 2>/dev/null || true
}
trap stop EXIT INT TERM

for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done
"$bin/heavy_server" --port "$port" --parker "$socket" "$@" &
heavy_pid=$!
sleep 0.3
cat <<MSG

  parker (pid $parker_pid) listens on $socket
  heavy_server (pid $heavy_pid) serves Redis clients on 127.0.0.1:$port

  Try it:    redis-cli -p $port set greeting hello
             redis-cli -p $port             (an interactive session: leave it idle for a second,
                                             it is parked; its next command wakes it)
             redis-cli -p $port info parking   (parked_connections, parks_total, wakes_total)
             $bin/parkerctl --socket $socket stats
  Ctrl-C stops both.

MSG
wait "$heavy_pid"
