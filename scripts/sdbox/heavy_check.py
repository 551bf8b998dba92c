#!/usr/bin/env python3
# Inside the systemd box: one real TCP client of heavy_server.service (RESP by hand: the box
# has no redis-cli) — named, left idle until parker holds it, woken by its next command, then
# kept across `systemctl restart heavy_server`, then parked again and kept across
# `systemctl reload parker` (parker handing over to its successor). Exit 0 when all held.
import socket, subprocess, sys, time
from box_client import ask, stats, wait_for

end = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", 6380), timeout=5); break
    except OSError:
        if time.time() > end: print("   FAILED: heavy_server not listening"); sys.exit(1)
        time.sleep(0.1)
ok = ask(s, "CLIENT", "SETNAME", "alice") == "+OK"
ok &= wait_for("idle client parked with parker", lambda: stats().get("parker_parked_connections") == "1")
ok &= ask(s, "CLIENT", "GETNAME") == "$5\r\nalice"
print("   woken, session restored:", ok)
subprocess.run(["systemctl", "restart", "heavy_server"], check=True)
ok &= wait_for("new heavy_server up", lambda: subprocess.run(["systemctl", "is-active", "heavy_server"],
               capture_output=True, text=True).stdout.strip() == "active")
reply = ask(s, "CLIENT", "GETNAME")
print("   after restart, same connection:", repr(reply))
ok &= reply == "$5\r\nalice"
ok &= wait_for("parked again", lambda: stats().get("parker_parked_connections") == "1")
main_pid = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", "parker"],
                          capture_output=True, text=True).stdout.strip()
subprocess.run(["systemctl", "reload", "parker"], check=True)
ok &= wait_for("parker's successor holds it", lambda: subprocess.run(
    ["systemctl", "show", "-p", "MainPID", "--value", "parker"], capture_output=True, text=True).stdout.strip()
    not in (main_pid, "0") and stats().get("parker_parked_connections") == "1")
reply = ask(s, "CLIENT", "GETNAME")
print("   after parker's reload, same connection:", repr(reply))
ok &= reply == "$5\r\nalice"
sys.exit(0 if ok else 1)
