# What the checks inside the systemd box share: parker's metrics through parkerctl, one RESP
# command by hand (the box has no redis-cli) and a bounded wait that prints its outcome.
import subprocess, time

def stats():
    out = subprocess.run(["parkerctl", "--socket", "/run/parker/parker.sock", "stats"],
                         capture_output=True, text=True).stdout
    return {l.split()[0]: l.split()[1] for l in out.splitlines() if l and not l.startswith("#")}

def ask(s, *words):
    s.sendall(("*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w), w) for w in words)).encode())
    return s.recv(4096).decode().strip()

def wait_for(what, cond, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            print("   ok:", what); return True
        time.sleep(0.1)
    print("   FAILED:", what); return False
