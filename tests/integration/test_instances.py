# SPDX-License-Identifier: MIT
"""Many amplifiers on one host (issue 13), without systemd:
  - a second emgd on a port another one holds exits with one clear error line naming the
    port (no SO_REUSEADDR: both used to "work" and only one got the packets);
  - the first one keeps serving;
  - --instance NAME (emgd@NAME.service) selects [device] serial NAME and reads
    emgd@NAME.conf next to the config file on top of it, if it exists; bad names refused;
  - two instances with their own ports run side by side, each answering on its own;
  - a reload that moves the socket to another address on the same port
    (127.0.0.1:P -> 0.0.0.0:P) still works without SO_REUSEADDR."""
import os
import signal
import subprocess
import tempfile
import time

import liblo
from emgtest import EMGCTL, EMGD, Client, Daemon, check, free_udp_port


def run(*args, timeout=20):
    return subprocess.run([EMGD, *args], capture_output=True, text=True, timeout=timeout)


def reloaded(d, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if d.logtext().count("reload: applied") > n:
            return True
        time.sleep(0.05)
    return False


tmp = tempfile.TemporaryDirectory(prefix="emgd-inst-")
a = Daemon()
try:
    # ---- a second emgd on a bound port ------------------------------------------------------
    conf = os.path.join(tmp.name, "second.conf")
    with open(conf, "w") as f:
        f.write("[osc]\nlisten = 127.0.0.1:%d\n[daemon]\nstate_dir = %s/st2\nrecordings_dir = %s/rec2\nmlock = no\n"
                % (a.port, tmp.name, tmp.name))
    t0 = time.time()
    out = run("-c", conf)
    errs = [l for l in out.stderr.splitlines() if "osc:" in l]
    check(out.returncode != 0, "second emgd on 127.0.0.1:%d exits (status %d, %.1f s)"
          % (a.port, out.returncode, time.time() - t0))
    check(len(errs) == 1 and "127.0.0.1:%d" % a.port in errs[0] and "taken" in errs[0],
          "one clear line naming the port: %s" % (errs[0] if errs else out.stderr.strip()[-300:]))
    c = Client(a)
    check(c.request("/emgd/ping", reply="/emgd/pong") is not None, "the first emgd still answers")
    c.close()

    # ---- --instance: serial and the per-instance drop-in ------------------------------------
    base = os.path.join(tmp.name, "emgd.conf")
    with open(base, "w") as f:
        f.write("[osc]\nlisten = 127.0.0.1:9000\n[device]\nserial = FROM-BASE\n")
    p1 = free_udp_port()
    with open(os.path.join(tmp.name, "emgd@1-3.conf"), "w") as f:
        f.write("[osc]\nlisten = 127.0.0.1:%d\n" % p1)
    out = run("-c", base, "--instance", "1-3", "--check-config")
    check(out.returncode == 0 and "emgd.conf + %s/emgd@1-3.conf: ok" % tmp.name in out.stdout
          and "OSC 127.0.0.1:%d" % p1 in out.stdout,
          "--instance 1-3 reads emgd@1-3.conf on top: %s" % (out.stdout.strip() or out.stderr.strip()))
    out = run("-c", base, "--instance", "DM00ABCD", "--check-config")
    check(out.returncode == 0 and "+" not in out.stdout and "OSC 127.0.0.1:9000" in out.stdout,
          "without emgd@DM00ABCD.conf the config file alone: %s" % out.stdout.strip())
    with open(os.path.join(tmp.name, "emgd@bad.conf"), "w") as f:
        f.write("[osc]\nlisten = nowhere\n")
    out = run("-c", base, "--instance", "bad", "--check-config")
    check(out.returncode != 0 and "emgd@bad.conf:2: [osc] listen" in out.stderr,
          "an error in the drop-in names it: %s" % out.stderr.strip()[-200:])
    # emgctl --instance without a running instance: the fixed port of its drop-in
    out = subprocess.run([EMGCTL, "-c", base, "--instance", "1-3", "-t", "0.3", "ping"],
                         capture_output=True, text=True, timeout=20)
    check(out.returncode == 1 and "no answer from emgd at 127.0.0.1:%d" % p1 in out.stderr,
          "emgctl --instance 1-3 uses emgd@1-3.conf's [osc] listen: %s" % out.stderr.strip())
    for bad in ("../x", "", ".hidden", "a/b", "x" * 64):
        out = run("-c", base, "--instance", bad, "--check-config")
        check(out.returncode != 0 and "--instance" in out.stderr and "bad name" in out.stderr,
              "--instance %r refused" % bad[:20])

    # ---- two instances side by side ---------------------------------------------------------
    d1 = os.path.join(tmp.name, "i1")
    os.mkdir(d1)
    p2 = free_udp_port()
    with open(os.path.join(d1, "emgd.conf"), "w") as f:
        f.write("[daemon]\nmlock = no\nstate_dir = %s/state\nrecordings_dir = %s/rec\n" % (d1, d1))
    with open(os.path.join(d1, "emgd@A1.conf"), "w") as f:
        f.write("[osc]\nlisten = 127.0.0.1:%d\n[daemon]\nstate_dir = %s/stateA1\n" % (p2, d1))
    logf = open(os.path.join(d1, "log"), "w+")
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    proc = subprocess.Popen([EMGD, "-c", os.path.join(d1, "emgd.conf"), "--instance", "A1", "-v"],
                            stdout=logf, stderr=subprocess.STDOUT, env=env)
    try:
        class P:
            port = p2
            addr = liblo.Address("127.0.0.1", p2, liblo.UDP)
        c = Client(P)
        deadline = time.time() + 10
        pong = None
        while time.time() < deadline and pong is None and proc.poll() is None:
            pong = c.request("/emgd/ping", reply="/emgd/pong", timeout=0.2)
        check(pong is not None, "instance A1 answers on its own port %d next to the first on %d" % (p2, a.port))
        c.close()
        c = Client(a)
        check(c.request("/emgd/ping", reply="/emgd/pong") is not None, "and the first one still on %d" % a.port)
        c.close()
        logf.flush()
        log = open(logf.name).read()
        check("emgd@A1.conf on top" in log, "the log names the drop-in")
        check(os.path.isdir(os.path.join(d1, "stateA1")), "its state directory comes from the drop-in")
        # emgctl --instance: the ports file in that state directory
        out = subprocess.run([EMGCTL, "-c", os.path.join(d1, "emgd.conf"), "--instance", "A1", "status"],
                             capture_output=True, text=True, timeout=20)
        check(out.returncode == 0 and "emgd at 127.0.0.1:%d: streaming" % p2 in out.stdout,
              "emgctl --instance A1 finds it through stateA1/ports: %s" % (out.stdout.strip() or out.stderr.strip()))
        check(open(os.path.join(d1, "stateA1", "ports")).read() == "osc = 127.0.0.1:%d\n" % p2,
              "stateA1/ports says where it listens")
    finally:
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(10) == 0, "instance A1 stops cleanly")
        logf.close()

    # ---- reload: same port, another address -------------------------------------------------
    text = open(a.conf).read().replace("listen = 127.0.0.1:%d" % a.port, "listen = 0.0.0.0:%d" % a.port)
    with open(a.conf, "w") as f:
        f.write(text)
    n = a.logtext().count("reload: applied")
    a.signal(signal.SIGHUP)
    check(reloaded(a, n), "reload applied")
    check("cannot listen" not in a.logtext(), "moved from 127.0.0.1:%d to 0.0.0.0:%d" % (a.port, a.port))
    c = Client(a)
    check(c.request("/emgd/ping", reply="/emgd/pong") is not None, "and answers there")
    c.close()
    out = run("-c", conf)
    check(out.returncode != 0 and "taken" in out.stderr, "127.0.0.1:%d is still refused to another emgd" % a.port)
finally:
    rc = a.close()
    tmp.cleanup()
check(rc == 0, "clean exit")
