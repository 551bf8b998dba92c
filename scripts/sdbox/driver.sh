#!/bin/bash
# Inside the systemd box (see scripts/check-systemd-box.sh): installs parker.deb and checks
# the units under systemd 252. Writes /sdbox/results.txt ending in SDBOX-DONE, then powers off.
exec > /sdbox/results.txt 2>&1
failures=0
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then echo "PASS $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}
wait_for() {  # wait_for SECONDS COMMAND...: polls every 0.1 s
  local tries=$(($1 * 10)); shift
  for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}
prop() { systemctl show -p "$2" --value "$1"; }
journal_has() { journalctl -u parker -o cat --no-pager | grep -q -- "$1"; }
sock=/run/parker/parker.sock

echo "== boot: $(timeout 60 systemctl is-system-running --wait) ($(systemctl --version | head -1))"
dpkg -i /sdbox/parker.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; }
check "package installed, user parker created" getent passwd parker
systemctl daemon-reload

echo "== socket activation"
systemctl start parker.socket
check "parker.socket listening" test "$(systemctl is-active parker.socket)" = active
check "socket file owned by parker, mode 0660" test "$(stat -c %U:%a $sock)" = parker:660
check "parker.service not started yet" test "$(systemctl is-active parker.service)" = inactive
parkerctl --socket $sock stats >/tmp/stats1 2>&1
check "the first connection started parker, which answered" grep -q '^parker_fd_budget ' /tmp/stats1
check "Type=notify: running after READY=1" test "$(prop parker SubState)" = running
check "STATUS= from parker: '$(prop parker StatusText)'" grep -q parked <<<"$(prop parker StatusText)"
# LimitNOFILE=1048576, capped by the box's own hard limit (nspawn inherits the host's).
box_hard=$(awk '/Max open files/ {print $5}' /proc/1/limits)
parker_soft=$(awk '/Max open files/ {print $4}' /proc/"$(prop parker MainPID)"/limits)
check "LimitNOFILE=$(prop parker LimitNOFILE) asked; parker runs with $parker_soft (box hard limit $box_hard)" \
  test "$parker_soft" = "$(( box_hard < 1048576 ? box_hard : 1048576 ))"
check "runs as parker" test "$(stat -c %U /proc/"$(prop parker MainPID)")" = parker
check "the listening socket came from systemd" journal_has 'listening on /run/parker/parker.sock (socket from systemd)'
# The journal keeps the priority from "<6>" and the message without a timestamp.
journalctl -u parker -o json --no-pager | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin]
mine = [l for l in lines if "listening on" in l.get("MESSAGE", "")]
print("   journal:", mine[0]["PRIORITY"], repr(mine[0]["MESSAGE"]))
sys.exit(0 if mine and mine[0]["PRIORITY"] == "6" and mine[0]["MESSAGE"].startswith("info listening") else 1)'
check "journal: priority 6, no timestamp, no <6> left" test $? = 0

echo "== reload (ExecReload = USR2: a successor takes everything over and becomes MAINPID)"
pid=$(prop parker MainPID)
systemctl reload parker
new_main() { test "$(prop parker MainPID)" != "$pid" -a "$(prop parker MainPID)" != 0; }
check "the successor is the main process now" wait_for 10 new_main
check "the old parker handed over and exited" wait_for 10 journal_has 'handed over the listener'
check "parker still active after the reload" test "$(systemctl is-active parker)" = active
parkerctl --socket $sock stats >/tmp/stats2 2>&1
check "the successor answers on the same socket" grep -q '^parker_fd_budget ' /tmp/stats2

echo "== heavy_server.service parks a real client with parker"
systemctl start heavy_server
python3 /sdbox/heavy_check.py
check "a client parked, woken, kept across systemctl restart heavy_server and across systemctl reload parker" test $? = 0

echo "== parker killed: Restart=on-failure, the socket stays"
kill -KILL "$(prop parker MainPID)"
restarted() { test "$(prop parker NRestarts)" = 1 -a "$(systemctl is-active parker)" = active; }
check "parker restarted" wait_for 10 restarted
check "socket file still there" test -S $sock

echo "== crash survival: parker-keeper.service, parker --keeper, parker SIGKILLed"
systemctl enable --now parker-keeper.service
check "parker-keeper.service active, listening" wait_for 10 test -S $sock.keeper
echo 'PARKER_OPTIONS=--keeper' > /etc/default/parker
systemctl restart parker
python3 /sdbox/keeper_check.py
check "a parked client kept across parker's SIGKILL by the keeper unit" test $? = 0

echo "== stop"
systemctl stop heavy_server parker.service
check "parker stopped (TERM: hand back, STOPPING=1, exit 0): $(prop parker Result)" test "$(prop parker Result)" = success
keeper_waits() { journalctl -u parker-keeper -o cat --no-pager | grep -q 'waiting for the next one'; }
check "parker-keeper stays, with nothing kept" wait_for 10 keeper_waits
check "parker-keeper.service still active" test "$(systemctl is-active parker-keeper)" = active
rm /etc/default/parker
check "the socket stays with systemd" test "$(systemctl is-active parker.socket)" = active -a -S $sock
check "shutdown logged" journal_has 'shutting down'

echo "== parker@web"
systemctl start parker@web
check "parker@web active on /run/parker/web/parker.sock" test "$(systemctl is-active parker@web)" = active -a -S /run/parker/web/parker.sock
check "parker@web answers" parkerctl --socket /run/parker/web/parker.sock --timeout 5 stats
systemctl stop parker@web

echo "== failed units: $(systemctl --failed --no-legend --plain | tr '\n' ' ')"
echo "== journal (parker, heavy_server):"
journalctl -o short-monotonic --no-pager -u parker -u parker.socket -u parker-keeper -u heavy_server -u parker@web | tail -50
echo "== $failures failure(s)"
[ "$failures" = 0 ] && echo "ALL-PASSED"
echo SDBOX-DONE
sync
exec >/dev/null 2>&1
systemctl poweroff --no-block
