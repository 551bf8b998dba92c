#!/usr/bin/env bash
# `make run`: the demo pair until the parker daemon lands.
set -euo pipefail
bin=${1:-build/bin}
sock=${PARKER_DEMO_SOCKET:-/tmp/parker-demo.sock}
"$bin/demo_server" --socket "$sock" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
sleep 0.3
echo "Type lines; they appear on demo_server's output. Ctrl-D ends."
"$bin/demo_client" --socket "$sock"
