# SPDX-License-Identifier: MIT
"""Configured paths that are not regular files (issue 16 item 2).

A replay `file` or a calibration.ini that is a FIFO, a symlink to /dev/zero or a
directory used to block the main thread in open()/read(): start-up or a reload
hung and SIGTERM was ignored (signals arrive through signalfd on that thread).
Now every such path goes through emg_safeio: refused at once, with the reason,
and --check-config names file, line and key."""
import os
import signal
import subprocess
import tempfile
import time

from emgtest import EMGD, Client, Daemon, check, fail, free_udp_port

tmp = tempfile.TemporaryDirectory(prefix="emgd-hostile-")
T = tmp.name
fifo = os.path.join(T, "session.bdf")
os.mkfifo(fifo)
zero_csv = os.path.join(T, "zero.csv")
os.symlink("/dev/zero", zero_csv)


def run_emgd(args, timeout=10):
    """emgd that must exit by itself within timeout; returns (rc, output)."""
    p = subprocess.Popen([EMGD, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            out, _ = p.communicate(timeout=3)
            fail("emgd %s hung (exited only on SIGTERM):\n%s" % (args, out))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            fail("emgd %s hung and ignored SIGTERM (killed):\n%s" % (args, out))
    return p.returncode, out


def conf(name, text):
    path = os.path.join(T, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# --check-config: file, line, key and the reason.
for target, kind in [(fifo, "is a FIFO"), (zero_csv, "is a character device"), (T, "is a directory")]:
    c = conf("check.conf", "[device]\ndriver = replay\n# played back\nfile = %s\n" % target)
    rc, out = run_emgd(["--check-config", "-c", c])
    want = "check.conf:4: [device] file = %s: replay file %s: %s, not a regular file" % (target, target, kind)
    check(rc != 0 and want in out, "--check-config refuses %s: %s" % (os.path.basename(target), out.strip()[:160]))

# Start-up on a FIFO: exits at once with the reason instead of blocking in open().
t0 = time.time()
c = conf("start.conf", "[osc]\nlisten = 127.0.0.1:%d\n[daemon]\nstate_dir = %s/st\nrecordings_dir = %s/rec\nmlock = no\n"
         "[device]\ndriver = replay\nfile = %s\n" % (free_udp_port(), T, T, fifo))
rc, out = run_emgd(["-c", c])
check(rc != 0 and "is a FIFO, not a regular file" in out,
      "start on a FIFO replay file exits (rc %d) in %.1f s with the reason" % (rc, time.time() - t0))

# A running daemon asked to reload onto a FIFO keeps running and still stops on SIGTERM.
d = Daemon("[device]\nscenario = rest\n")
cl = Client(d)
try:
    d.write_conf("[device]\ndriver = replay\nfile = %s\n" % fifo)
    d.signal(signal.SIGHUP)
    end = time.time() + 10
    while "reload: refused" not in d.logtext() and time.time() < end:
        cl.pump(0.05)
    log = d.logtext()
    check("reload: refused" in log and "is a FIFO, not a regular file" in log,
          "reload onto a FIFO replay file is refused with the reason")
    r = cl.request("/emgd/ping", reply="/emgd/pong", timeout=5)
    check(r is not None and r[1] == "/emgd/pong", "the daemon still answers after the refused reload")
finally:
    cl.close()
    t0 = time.time()
    rc = d.close()
check(rc == 0, "SIGTERM stops it (rc %d, %.1f s)" % (rc, time.time() - t0))

# calibration.ini that is a FIFO, a symlink to /dev/zero, a directory: start-up goes on uncalibrated.
for name, make, kind in [("fifo", os.mkfifo, "is a FIFO"),
                         ("zero", lambda p: os.symlink("/dev/zero", p), "is a character device"),
                         ("dir", os.mkdir, "is a directory")]:
    w = tempfile.mkdtemp(prefix="emgd-hostile-calib-", dir=T)
    os.mkdir(os.path.join(w, "state"))
    make(os.path.join(w, "state", "calibration.ini"))
    t0 = time.time()
    d = Daemon("[device]\nscenario = rest\n", workdir=w)  # fails unless it answers a ping in time
    log = d.logtext()
    check("calibration %s/state/calibration.ini: %s, not a regular file" % (w, kind) in log,
          "calibration.ini %s: started in %.1f s, logged the reason" % (name, time.time() - t0))
    rc = d.close()
    check(rc == 0, "calibration.ini %s: SIGTERM stops it (rc %d)" % (name, rc))
print("PASS")
