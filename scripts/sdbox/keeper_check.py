#!/usr/bin/env python3
# Inside the systemd box, with parker-keeper.service running and parker started with --keeper:
# one real TCP client of heavy_server.service, named and parked, then parker SIGKILLed. The
# restarted parker (Restart=on-failure) must take it back from the keeper, which systemd must
# not have killed with parker, and the client must be answered with its name on the same
# connection. Exit 0 when all held.
import os, signal, socket, subprocess, sys, time
from box_client import ask, stats, wait_for

def prop(unit, name):
    return subprocess.run(["systemctl", "show", "-p", name, "--value", unit],
                          capture_output=True, text=True).stdout.strip()

def journal(unit):
    return subprocess.run(["journalctl", "-u", unit, "-o", "cat", "--no-pager"],
                          capture_output=True, text=True).stdout

ok = wait_for("parker (with --keeper) and heavy_server up", lambda: stats().get("parker_fd_budget") is not None
              and prop("heavy_server", "ActiveState") == "active")
s = socket.create_connection(("127.0.0.1", 6380), timeout=10)
ok &= ask(s, "CLIENT", "SETNAME", "bob") == "+OK"
ok &= wait_for("bob parked", lambda: stats().get("parker_parked_connections") == "1")
print("   parker's own log starts no keeper:", "started parker-keeper" not in journal("parker"))
ok &= "started parker-keeper" not in journal("parker")
keeper_pid = prop("parker-keeper", "MainPID")
parker_pid = prop("parker", "MainPID")
restarts = int(prop("parker", "NRestarts"))
os.kill(int(parker_pid), signal.SIGKILL)  # no /bin/kill in the box (procps)
ok &= wait_for("parker restarted by systemd", lambda: int(prop("parker", "NRestarts")) == restarts + 1
               and prop("parker", "ActiveState") == "active" and prop("parker", "MainPID") not in (parker_pid, "0"), 15)
ok &= wait_for("the new parker restored bob from the keeper", lambda: "restored from the keeper" in journal("parker"))
print("   the keeper survived parker's death (pid %s, now %s)" % (keeper_pid, prop("parker-keeper", "MainPID")))
ok &= prop("parker-keeper", "MainPID") == keeper_pid and prop("parker-keeper", "ActiveState") == "active"
reply = ask(s, "CLIENT", "GETNAME")
print("   after parker's crash, same connection:", repr(reply))
ok &= reply == "$3\r\nbob"
sys.exit(0 if ok else 1)
