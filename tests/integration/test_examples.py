# SPDX-License-Identifier: MIT
"""The shipped client examples (examples/) against the real daemon: each subscribes,
receives the stream, and (Python, osc.js) unsubscribes when it stops.

    test_examples.py python|js|pd

python: examples/emgd_subscribe.py with Debian's python3-liblo.
js:     examples/emgd-subscribe.js with Node and osc.js (npm's `osc`, installed into a
        temporary directory; skipped without node/npm or the registry).
pd:     examples/emgd.pd in Pure Data (Debian's puredata-core, `pd -nogui`; skipped
        without it), pointed at the daemon with -send "emgd-port N".
"""
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

from emgtest import Client, Daemon, check, fail

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
MUSCLES = ["glute_max_l", "glute_max_r", "glute_med_l", "glute_med_r", "hip_flex_l", "hip_flex_r"]
# Onsets and repetitions within seconds: every glute fires in each hip-thrust repetition.
CONF = "[device]\nscenario = hip_thrust\n"


def skip(msg):
    print("SKIP: " + msg, flush=True)
    sys.exit(77)


def subscribers(d):
    c = Client(d)
    try:
        r = c.request("/emgd/stats", reply="/emgd/stats")
        return r[3][7] if r else None
    finally:
        c.close()


def check_script_output(name, out):
    """What the Python and osc.js examples print: the lease, RMS lines, onsets."""
    lines = out.splitlines()
    check("subscribed: lease 10 s" in lines, "%s: subscribed, lease 10 s" % name)
    rms = [ln for ln in lines if ln.startswith("rms uV: ")]
    check(len(rms) >= 2, "%s: %d RMS lines, one a second" % (name, len(rms)))
    vals = dict(re.findall(r"(\w+) (\d+\.\d)", rms[-1][len("rms uV: "):]))
    check(sorted(vals) == sorted(MUSCLES) and all(float(v) > 0 for v in vals.values()),
          "%s: RMS of every muscle, all > 0: %s" % (name, rms[-1]))
    check(any(ln.startswith("onset glute_max_") for ln in lines), "%s: onsets arrive" % name)


def wait_first_onset(d):
    """Start the example once the synth's repetitions have begun (3 s lead-in, then one
    every 4.5 s): its run then spans a whole repetition, whenever it got the CPU."""
    c = Client(d)
    try:
        c.send("/emgd/subscribe", 10)
        if not c.wait_for(lambda m: m[1].endswith("/onset"), 20):
            fail("no onset from the synth within 20 s")
        c.send("/emgd/unsubscribe")
        c.wait_for(lambda m: m[1] == "/emgd/unsubscribed", 2)
    finally:
        c.close()


def run_script(name, argv, d, seconds=10, env=None):
    wait_first_onset(d)
    out = subprocess.run(argv + ["127.0.0.1:%d" % d.port, str(seconds)], capture_output=True,
                         text=True, timeout=seconds + 30, env=env)
    print(out.stdout[-1500:])
    if out.returncode != 0:
        fail("%s exited %d: %s" % (name, out.returncode, out.stderr[-800:]))
    check_script_output(name, out.stdout)
    # The example's unsubscribe on the way out frees its slot at once.
    check(subscribers(d) == 0, "%s: unsubscribed when it stopped" % name)


def run_pd(d):
    pd = shutil.which("pd") or shutil.which("puredata")
    if not pd:
        skip("Pure Data not installed (Debian: puredata-core, in .ci/deps)")
    p = subprocess.Popen([pd, "-nogui", "-noaudio", "-nomidi", "-stderr", "-open",
                          os.path.join(EXAMPLES, "emgd.pd"), "-send", "emgd-port %d" % d.port],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen, subscribed, rms = [], False, []
    deadline = time.time() + 20
    try:
        buf = b""
        while time.time() < deadline and not (subscribed and len(rms) >= 3):
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if not r:
                if p.poll() is not None:
                    break
                continue
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode("utf-8", "replace").strip()
                seen.append(line)
                if line == "emgd-subscribed: 10":
                    subscribed = True
                m = re.match(r"glute_max_l-rms-uV: ([0-9.e+-]+)$", line)
                if m and subscribed:
                    rms.append(float(m.group(1)))
    finally:
        p.terminate()
        p.wait(timeout=10)
    print("\n".join(seen[-20:]))
    check(subscribed, "pd: [oscformat emgd subscribe] got /emgd/subscribed 10 back through [netsend -u -b]")
    check(len(rms) >= 3 and all(v > 0 for v in rms),
          "pd: glute_max_l RMS routed by [oscparse] -> [route emg emgd] -> [route glute_max_l]: %s" % rms)
    check(not any("error" in ln.lower() for ln in seen), "pd: no error in the Pd console")


which = sys.argv[1] if len(sys.argv) > 1 else ""
npmdir = None
env = None
if which == "js":
    if not shutil.which("node") or not shutil.which("npm"):
        skip("node/npm not installed: the example uses osc.js (npm's `osc`)")
    npmdir = tempfile.mkdtemp(prefix="emgd-oscjs-npm-")
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", npmdir, "osc@2"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not os.path.isdir(os.path.join(npmdir, "node_modules", "osc")):
        shutil.rmtree(npmdir, ignore_errors=True)
        skip("npm install osc failed (no registry?): %s" % r.stderr.strip()[-300:])
    env = dict(os.environ, NODE_PATH=os.path.join(npmdir, "node_modules"))
elif which not in ("python", "pd"):
    fail("usage: test_examples.py python|js|pd")

d = Daemon(CONF)
try:
    if which == "python":
        run_script("python", ["/usr/bin/python3", os.path.join(EXAMPLES, "emgd_subscribe.py")], d)
    elif which == "js":
        run_script("osc.js", ["node", os.path.join(EXAMPLES, "emgd-subscribe.js")], d, env=env)
    else:
        run_pd(d)
finally:
    d.close()
    if npmdir:
        shutil.rmtree(npmdir, ignore_errors=True)
