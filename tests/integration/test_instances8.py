# SPDX-License-Identifier: MIT
"""Eight amplifiers on one host (issue 13): eight real emgd (synth) started at once from
one emgd.conf with `[osc] listen = auto` and `[oscquery] http = auto`, as emgd@NAME would
be, with no per-instance drop-in at all:
  - each binds its own OSC and HTTP port (auto: the first free of 9000, 9002, ... and
    9001, 9003, ...) and says so in its ports file;
  - each has its own state directory (<state_dir>@NAME) and recordings directory;
  - `emgctl --instance NAME status` finds and reaches each one; `emgctl instances`
    lists all eight; a bad or unknown name is refused with one line;
  - OSCQuery's HOST_INFO names the instance and its real OSC port (the mDNS service
    name is the same string);
  - each streams gap-free to a subscriber;
  - calibrating one writes only its own calibration.ini, and the others still have none;
  - SIGTERM: all exit 0 and remove their ports files."""
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

import liblo
from emgtest import EMGCTL, EMGD, Client, check, fail

NAMES = ["DM00AB01", "DM00AB02", "1-3", "1-1.4", "2-1", "A9Z", "3-2.1.7", "DQ0081XY"]

tmp = tempfile.TemporaryDirectory(prefix="emgd-inst8-")
conf = os.path.join(tmp.name, "emgd.conf")
state = os.path.join(tmp.name, "state")
with open(conf, "w") as f:
    # the rest scenario, so that a rest calibration is never refused for a burst
    f.write("[device]\nscenario = rest\n[osc]\nlisten = auto\n[oscquery]\nenabled = yes\nhttp = auto\n"
            "[daemon]\nmlock = no\nstate_dir = %s\nrecordings_dir = %s/recordings\n" % (state, state))
env = dict(os.environ)
env.pop("NOTIFY_SOCKET", None)
env.pop("WATCHDOG_USEC", None)
env.pop("STATE_DIRECTORY", None)
env.pop("RUNTIME_DIRECTORY", None)


def ctl(*args, timeout=20):
    return subprocess.run([EMGCTL, "-c", conf, *args], capture_output=True, text=True, timeout=timeout)


t0 = time.time()
procs, logs = {}, {}
for n in NAMES:
    logs[n] = open(os.path.join(tmp.name, "%s.log" % n), "w+")
    procs[n] = subprocess.Popen([EMGD, "-c", conf, "--instance", n, "-v"], stdout=logs[n],
                                stderr=subprocess.STDOUT, env=env)


def logtext(n):
    logs[n].flush()
    return open(logs[n].name).read()


try:
    # ---- all eight up: each found through emgctl --instance ---------------------------------
    ports = {}
    for n in NAMES:
        deadline = time.time() + 30
        while True:
            if procs[n].poll() is not None:
                fail("emgd --instance %s exited with %s:\n%s" % (n, procs[n].returncode, logtext(n)))
            out = ctl("--instance", n, "-t", "0.5", "status")
            if out.returncode == 0:
                break
            if time.time() > deadline:
                fail("emgctl --instance %s status: %s\n%s" % (n, out.stderr.strip(), logtext(n)))
            time.sleep(0.1)  # the daemon has not written its ports file yet: poll it
        check("streaming" in out.stdout and "sample rate  2000 Hz" in out.stdout,
              "emgctl --instance %s status: %s" % (n, out.stdout.splitlines()[0]))
        text = open(os.path.join(state + "@" + n, "ports")).read()
        kv = dict(l.split(" = ") for l in text.splitlines())
        ports[n] = (int(kv["osc"].rsplit(":", 1)[1]), int(kv["http"].rsplit(":", 1)[1]))
        check(("127.0.0.1:%d" % ports[n][0]) in out.stdout, "  ... reached on its own port %d" % ports[n][0])
    print("started and found all 8 in %.1f s" % (time.time() - t0))
    osc_ports = sorted(p[0] for p in ports.values())
    http_ports = sorted(p[1] for p in ports.values())
    check(len(set(osc_ports)) == 8 and len(set(http_ports)) == 8,
          "8 distinct OSC ports %s and 8 distinct HTTP ports %s" % (osc_ports, http_ports))
    check(all(p % 2 == 0 and 9000 <= p < 9128 for p in osc_ports) and
          all(p % 2 == 1 and 9001 <= p < 9129 for p in http_ports),
          "all from the auto ranges (even from 9000, odd from 9001)")
    check(len({os.path.realpath(state + "@" + n) for n in NAMES}) == 8 and
          all(os.path.isdir(state + "@" + n) for n in NAMES) and not os.path.exists(state),
          "8 state directories <state_dir>@NAME, none shared")

    out = ctl("instances")
    listed = {l.split()[0]: l.split()[1] for l in out.stdout.splitlines()[1:] if l.strip()}
    check(out.returncode == 0 and all(listed.get(n) == "127.0.0.1:%d" % ports[n][0] for n in NAMES),
          "emgctl instances lists all 8 with their ports")
    out = ctl("--instance", "NOPE", "status")
    check(out.returncode == 1 and out.stderr.count("\n") == 1 and "NOPE" in out.stderr,
          "an instance that is not running: one line (%s)" % out.stderr.strip())
    out = ctl("--instance", "../x", "status")
    check(out.returncode == 2 and "bad name" in out.stderr, "a bad instance name is a usage error")

    # ---- OSCQuery: each names its instance and its real OSC port ----------------------------
    for n in NAMES:
        info = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/?HOST_INFO" % ports[n][1], timeout=5).read())
        if not (info["NAME"].startswith("emgd %s on " % n) and info["OSC_PORT"] == ports[n][0]):
            fail("HOST_INFO of %s: %s" % (n, info))
    check(True, "HOST_INFO of each: NAME \"emgd <instance> on <host>\" (the mDNS name), OSC_PORT its own")

    # ---- each streams, gap-free -------------------------------------------------------------
    for n in NAMES:
        class D:
            addr = liblo.Address("127.0.0.1", ports[n][0], liblo.UDP)
        c = Client(D)
        c.request("/emgd/subscribe", 5, reply="/emgd/subscribed")
        ticks = []
        end = time.time() + 0.6
        while time.time() < end:
            c.pump(0.1)
        ticks = [m[3][0] for m in c.msgs if m[1] == "/emg/frame"]
        c.send("/emgd/unsubscribe")
        c.close()
        if len(ticks) < 3 or any(b != a + 1 for a, b in zip(ticks, ticks[1:])):
            fail("instance %s stream: ticks %s" % (n, ticks))
    check(True, "each of the 8 streams /emg/frame without a gap")

    # ---- calibrating one touches no other ---------------------------------------------------
    target = "1-3"
    out = ctl("--instance", target, "calibrate", "rest", "1")
    # isolation is the point here: a muscle whose onset detector fires on noise during the
    # trial is refused (exit 1), the others are saved all the same
    done = [l for l in out.stdout.splitlines() if l.startswith("rest: ") and l.endswith(" µV")]
    check(out.returncode in (0, 1) and done, "emgctl --instance %s calibrate rest 1: %d of 6 muscles (%s)"
          % (target, len(done), out.stdout.strip().replace("\n", "; ")[-200:]))
    cal = os.path.join(state + "@" + target, "calibration.ini")
    # the main loop saves right after sending the last result: one more answered request
    # from that single-threaded loop means the save is done
    check(ctl("--instance", target, "ping").returncode == 0, "%s answers after calibrating" % target)
    check(os.path.exists(cal) and "rest" in open(cal).read(), "%s has its calibration.ini" % target)
    others = [n for n in NAMES if n != target and os.path.exists(os.path.join(state + "@" + n, "calibration.ini"))]
    check(not others, "the 7 others have none (%s)" % others)
    for n in NAMES:
        if n != target and "calibration: loaded" in logtext(n):
            fail("%s loaded a calibration" % n)
finally:
    for n, p in procs.items():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    rcs = {}
    for n, p in procs.items():
        try:
            rcs[n] = p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            rcs[n] = "killed"
        logs[n].close()
check(all(r == 0 for r in rcs.values()), "all 8 stop cleanly: %s" % rcs)
check(not any(os.path.exists(os.path.join(state + "@" + n, "ports")) for n in NAMES),
      "and remove their ports files")
print("total %.1f s" % (time.time() - t0))
tmp.cleanup()
