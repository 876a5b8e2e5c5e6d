# SPDX-License-Identifier: MIT
"""emgd under a real systemd (issue 13): the build is installed into a throw-away tree
(`meson install --destdir`) and the host's own systemd is booted as PID 1 in
systemd-nspawn - host /usr bound read-only, a private copy of /etc with every service
disabled, the install bound on /usr/local, loopback-only network - then, as an admin
would:
  - `systemctl start emgd` -> active (running), Type=notify with STATUS=;
  - `emgctl status` answers;
  - `systemctl reload` keeps the PID (RELOADING=1/READY=1) and the journal says it applied;
  - the StateDirectory exists and belongs to the dynamic user;
  - a calibration survives `systemctl restart`;
  - a SIGSTOPped daemon misses its watchdog and is restarted (new PID, running);
  - `systemctl stop` is clean (Result=success, status 0);
  - `journalctl -u emgd` is sensible: no "<N>" prefixes leaking, no "is not a device";
  - the template: emgd@DM00ABCD (a serial) and emgd@1-3 (a HackEEG's port path) run
    `--instance DM00ABCD` / `--instance 1-3`, each on its own port from its
    emgd@<instance>.conf, with its own state directory and calibration, both streaming;
    an instance without its own port next to emgd.service fails with one clear line;
  - emgd@AUTO1 with `listen = auto` writes /run/emgd@AUTO1/ports, and `emgctl --instance
    NAME status` reaches all three as user nobody (the file is 0644 under UMask=0077);
    `emgctl instances` lists them.
Not testable in this sandbox: raising LimitMEMLOCK/LimitRTPRIO (the container cannot),
so mlock and RT priority are only looked at in the journal.
Needs root, systemd-nspawn (package systemd-container) and nsenter; skipped otherwise."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import nspawn
from emgtest import EMGD, check

T0 = time.time()
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(EMGD)))


def skip(why):
    print("SKIP: %s" % why)
    sys.exit(77)


why = nspawn.missing() or (None if shutil.which("meson") else "no meson")
if why:
    skip(why)
intro = subprocess.run(["meson", "introspect", BUILD, "--buildoptions"], capture_output=True, text=True).stdout
m = re.search(r'"name": "prefix", "value": "([^"]+)"', intro)
if not m or m.group(1) != "/usr/local":
    skip("build prefix is %s, the test binds the install on /usr/local" % (m.group(1) if m else "unknown"))

tmp = tempfile.mkdtemp(prefix="emgd-nspawn-", dir="/var/tmp")
root = os.path.join(tmp, "root")
inst = os.path.join(tmp, "inst")
box = None
sh = nspawn.sh


def cleanup():
    if box:
        box.poweroff()
    shutil.rmtree(tmp, ignore_errors=True)


def wait(cond, timeout=20, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


try:
    # ---- the install and the root ------------------------------------------------------
    r = sh("meson", "install", "-C", BUILD, "--destdir", inst, "--no-rebuild", "--quiet", timeout=120)
    check(r.returncode == 0, "meson install --destdir %s" % inst)
    nspawn.make_root(root)
    cfgdir = os.path.join(inst, "usr", "local", "etc", "emgd")
    check(os.path.exists(os.path.join(cfgdir, "emgd.conf")), "installed %s" % "/usr/local/etc/emgd/emgd.conf")

    # ---- boot --------------------------------------------------------------------------
    t = time.time()
    box = nspawn.Container(root, "emgdtest%d" % os.getpid(), os.path.join(tmp, "boot.log"),
                           ["--bind-ro=/usr", "--bind-ro=%s:/usr/local" % os.path.join(inst, "usr", "local")])
    if box.boot() is None:
        skip("systemd-nspawn could not boot here: %s" % box.boot_log())
    run = box.run
    state = box.wait_running(30)
    if not state:
        skip("systemctl cannot reach the container's systemd: %s" % run("systemctl", "is-system-running").stderr.strip())
    check(state in ("running", "degraded"), "systemd boots in %.1f s (%s%s)" % (
        time.time() - t, state,
        ": " + run("systemctl", "--failed", "--no-legend", "--plain").stdout.strip().replace("\n", ", ")
        if state == "degraded" else ""))

    def show(unit, *props):
        out = run("systemctl", "show", unit, "-p", ",".join(props)).stdout
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    def journal(unit, since=None):
        return run("journalctl", "-u", unit, "-o", "cat", "--no-pager").stdout

    def emgctl(*args, server="127.0.0.1:9000"):
        return run("/usr/local/bin/emgctl", "-s", server, *args, timeout=30)

    # ---- emgd.service ----------------------------------------------------------------------
    r = run("systemctl", "start", "emgd")
    st = show("emgd", "ActiveState", "SubState", "MainPID", "StatusText", "Type")
    check(r.returncode == 0 and st["ActiveState"] == "active" and st["SubState"] == "running",
          "systemctl start emgd: %s/%s %s" % (st["ActiveState"], st["SubState"], r.stderr.strip()))
    status = wait(lambda: show("emgd", "StatusText")["StatusText"], 5)
    check(st["Type"] == "notify" and status, "Type=notify, STATUS=%s" % status)
    r = emgctl("status")
    check(r.returncode == 0 and r.stdout.strip(), "emgctl status answers: %s" % r.stdout.strip().replace("\n", "; ")[:200])
    pid = st["MainPID"]
    r = run("systemctl", "reload", "emgd")
    check(r.returncode == 0 and show("emgd", "MainPID")["MainPID"] == pid
          and show("emgd", "SubState")["SubState"] == "running",
          "systemctl reload keeps PID %s, running" % pid)
    check(wait(lambda: "reload: applied" in journal("emgd"), 5), "the journal says the reload applied")

    # StateDirectory for the dynamic user
    r = run("stat", "-c", "%u %U %a", "/var/lib/private/emgd")
    uid = int(r.stdout.split()[0]) if r.returncode == 0 else -1
    r2 = run("ps", "-o", "uid=", "-p", pid)
    check(uid >= 61184 and r2.stdout.strip() == str(uid) and run("readlink", "/var/lib/emgd").stdout.strip() == "private/emgd",
          "StateDirectory /var/lib/emgd -> private/emgd, owned by the dynamic user (uid %d, %s)" % (uid, r.stdout.strip()))

    # calibration survives a restart
    r = emgctl("-t", "10", "calibrate", "rest", "1")
    check(r.returncode == 0, "emgctl calibrate rest 1: %s" % (r.stdout + r.stderr).strip()[:200])
    check(wait(lambda: run("test", "-s", "/var/lib/private/emgd/calibration.ini").returncode == 0, 10),
          "calibration.ini written to the state directory")
    before = run("cat", "/var/lib/private/emgd/calibration.ini").stdout
    r = run("systemctl", "restart", "emgd")
    pid2 = show("emgd", "MainPID")["MainPID"]
    check(r.returncode == 0 and pid2 != pid, "systemctl restart: new PID %s" % pid2)
    check(wait(lambda: "calibration: loaded /var/lib/emgd/calibration.ini" in journal("emgd"), 5)
          and run("cat", "/var/lib/private/emgd/calibration.ini").stdout == before,
          "the calibration survives the restart (loaded, file unchanged)")

    # the watchdog
    t = time.time()
    run("kill", "-STOP", pid2)
    newpid = wait(lambda: (lambda s: s["MainPID"] if s["MainPID"] not in ("0", pid2) and s["SubState"] == "running" else None)(
        show("emgd", "MainPID", "SubState")), 30)
    j = journal("emgd")
    check(newpid and "Watchdog timeout" in j, "SIGSTOP: the watchdog restarts emgd after %.1f s (PID %s -> %s)"
          % (time.time() - t, pid2, newpid))
    check(emgctl("status").returncode == 0, "and it answers again")

    # a second emgd on the taken port: the template instance without its own port
    r = run("systemctl", "start", "emgd@NOPORT")
    check(wait(lambda: "port is taken" in journal("emgd@NOPORT"), 10) is not None,
          "emgd@NOPORT next to emgd.service (both 127.0.0.1:9000) fails: %s"
          % [l for l in journal("emgd@NOPORT").splitlines() if "osc:" in l][:1])
    check(emgctl("status").returncode == 0 and show("emgd", "MainPID")["MainPID"] == newpid,
          "emgd.service keeps its port and PID")
    run("systemctl", "stop", "emgd@NOPORT")
    run("systemctl", "reset-failed", "emgd@NOPORT")

    # clean stop
    r = run("systemctl", "stop", "emgd")
    st = show("emgd", "ActiveState", "Result", "ExecMainStatus")
    check(r.returncode == 0 and st["ActiveState"] == "inactive" and st["Result"] == "success" and st["ExecMainStatus"] == "0",
          "systemctl stop: %s" % st)
    j = journal("emgd")
    bad = [l for l in j.splitlines() if re.match(r"^<\d>", l) or "is not a device" in l]
    check(not bad, "journal: no leaked <N> prefixes, no 'is not a device' (%d lines)" % len(j.splitlines()))
    for want in ("Started emgd", "reload: applied", "Watchdog timeout", "Stopped emgd"):
        check(any(want in l for l in j.splitlines()), "journal has %r" % want)
    print("journal (emgd.service, first lines):\n  " + "\n  ".join(j.splitlines()[:12]))
    memlock = [l for l in j.splitlines() if "mlock" in l or "priority" in l.lower()]
    if memlock:
        print("note: LimitMEMLOCK/LimitRTPRIO cannot be raised in this container: %s" % memlock[:2])

    # ---- the template: a serial and a port path ------------------------------------------
    ports = {"DM00ABCD": 9101, "1-3": 9102}
    for name, port in ports.items():
        with open(os.path.join(cfgdir, "emgd@%s.conf" % name), "w") as f:
            f.write("[osc]\nlisten = 127.0.0.1:%d\n" % port)
    for name in ports:
        r = run("systemctl", "start", "emgd@%s" % name)
        check(r.returncode == 0 and show("emgd@" + name, "SubState")["SubState"] == "running",
              "systemctl start emgd@%s: running %s" % (name, r.stderr.strip()))
    for name, port in ports.items():
        p = show("emgd@" + name, "MainPID")["MainPID"]
        argv = run("cat", "/proc/%s/cmdline" % p).stdout.split("\0")
        check(argv[-3:-1] == ["--instance", name] or argv[-2:] == ["--instance", name],
              "emgd@%s runs %s" % (name, " ".join(a for a in argv if a)))
        r = emgctl("status", server="127.0.0.1:%d" % port)
        check(r.returncode == 0 and "streaming" in r.stdout, "emgd@%s answers on its own port %d, streaming" % (name, port))
        check(run("test", "-d", "/var/lib/private/emgd@%s" % name).returncode == 0,
              "emgd@%s has its own state directory /var/lib/emgd@%s" % (name, name))
    # separate calibrations: calibrate one, the other stays uncalibrated
    r = emgctl("-t", "10", "calibrate", "rest", "1", server="127.0.0.1:9101")
    check(r.returncode == 0 and wait(lambda: run("test", "-s", "/var/lib/private/emgd@DM00ABCD/calibration.ini").returncode == 0, 10),
          "calibrating emgd@DM00ABCD writes /var/lib/emgd@DM00ABCD/calibration.ini")
    check(run("test", "-e", "/var/lib/private/emgd@1-3/calibration.ini").returncode != 0,
          "and leaves emgd@1-3's alone")
    run("systemctl", "restart", "emgd@DM00ABCD")
    check(wait(lambda: "calibration: loaded /var/lib/emgd@DM00ABCD/calibration.ini" in journal("emgd@DM00ABCD"), 5),
          "emgd@DM00ABCD loads its own calibration after a restart")
    # listen = auto: no port known in advance; emgctl --instance reads /run/emgd@NAME/ports,
    # also as an unprivileged user (the file is 0644 despite the units' UMask=0077)
    with open(os.path.join(cfgdir, "emgd@AUTO1.conf"), "w") as f:
        f.write("[osc]\nlisten = auto\n")
    r = run("systemctl", "start", "emgd@AUTO1")
    check(r.returncode == 0 and show("emgd@AUTO1", "SubState")["SubState"] == "running",
          "systemctl start emgd@AUTO1 (listen = auto): running")
    ports["AUTO1"] = None
    r = run("cat", "/run/emgd@AUTO1/ports")
    check(r.returncode == 0 and r.stdout.startswith("osc = 127.0.0.1:90"), "/run/emgd@AUTO1/ports: %s" % r.stdout.strip())
    for name in ports:
        r = run("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                "/usr/local/bin/emgctl", "--instance", name, "status")
        check(r.returncode == 0 and "streaming" in r.stdout,
              "emgctl --instance %s status, as nobody: %s" % (name, (r.stdout.splitlines() or [r.stderr.strip()])[0]))
    r = run("/usr/local/bin/emgctl", "instances")
    check(r.returncode == 0 and all(("\n%s " % n) in r.stdout for n in ports),
          "emgctl instances lists the three: %s" % r.stdout.strip().replace("\n", "; "))
    for name in ports:
        r = run("systemctl", "stop", "emgd@%s" % name)
        st = show("emgd@" + name, "Result", "ExecMainStatus")
        check(r.returncode == 0 and st["Result"] == "success", "systemctl stop emgd@%s: %s" % (name, st))
finally:
    cleanup()
print("systemd test: %.1f s" % (time.time() - T0))
