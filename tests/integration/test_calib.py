# SPDX-License-Identifier: MIT
"""Calibration end to end: rest and MVC trials over OSC, %MVC levels published,
and the calibration persisting across a restart and a reload."""
import os
import signal

from emgtest import Client, Daemon, check, wait_log

MUSCLES = ["glute_max_l", "glute_max_r", "glute_med_l", "glute_med_r", "hip_flex_l", "hip_flex_r"]
conf = "[device]\nscenario = bridge\n"
d = Daemon(conf)
c = Client(d)
try:
    c.request("/emgd/subscribe", 60, reply="/emgd/subscribed")
    # The bridge script starts with >= 2 s of rest.
    r = c.request("/emgd/calibrate/rest", 1.0, reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "rest calibration accepted: %s" % (r,))
    r = c.request("/emgd/calibrate/rest", 1.0, reply="/emgd/ok")
    check(r and r[1] == "/emgd/error" and "already" in r[3][1], "a second calibration while one runs is refused")
    got = {}
    while len(got) < len(MUSCLES):
        m = c.wait_for(lambda m: m[1] == "/emgd/calibrated" and m[3][0] == "rest", 5)
        check(m is not None, "rest result arrives")
        got[m[3][1]] = m[3][2:]
    check(all(v[1] == 1 and 0 < v[0] < 50 for v in got.values()), "rest RMS per muscle in uV: %s" % {k: round(v[0], 2) for k, v in got.items()})
    st = c.request("/emgd/status", reply="/emgd/status")
    check(st[3][0] == "streaming", "state back to streaming after calibration")

    # An "MVC" with the muscle at rest (the bridge's 3 s lead): refused, naming the muscle and the numbers.
    r = c.request("/emgd/calibrate/mvc", "glute_med_r", 0.5, reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "mvc trial at rest starts")
    e = c.wait_for(lambda m: m[1] == "/emgd/error" and m[3][0] == "/emgd/calibrate/mvc", 3)
    check(e is not None and "glute_med_r" in e[3][1] and "uV" in e[3][1] and "rest" in e[3][1],
          "mvc at rest refused with /emgd/error naming the muscle and the numbers: %s" % (e[3] if e else None,))
    m = c.wait_for(lambda m: m[1] == "/emgd/calibrated" and m[3][0] == "mvc", 1) or \
        next((m for m in c.msgs if m[1] == "/emgd/calibrated" and m[3][0] == "mvc"), None)
    check(m is not None and m[3][1] == "glute_med_r" and m[3][3] == 0, "refused mvc reported ok=0: %s" % (m[3] if m else None,))

    # MVC of glute_max_l over 6 s: the bridge reps (~2 s on, ~2 s off) include a contraction.
    r = c.request("/emgd/calibrate/mvc", "glute_max_l", 6.0, reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "mvc calibration accepted")
    st = c.request("/emgd/status", reply="/emgd/status")
    check(st[3][0] == "calibrating", "state says calibrating during the trial")
    m = c.wait_for(lambda m: m[1] == "/emgd/calibrated" and m[3][0] == "mvc", 9)
    check(m is not None and m[3][1] == "glute_max_l" and m[3][2] > 20 and m[3][3] == 1, "mvc peak: %s" % (m[3] if m else None))
    mvc = m[3][2]
    lv = c.wait_for(lambda m: m[1] == "/emg/glute_max_l/level", 1)
    check(lv is not None, "/emg/glute_max_l/level published once an MVC exists")
    c.pump(4)
    levels = [m[3][0] for m in c.msgs if m[1] == "/emg/glute_max_l/level"]
    check(max(levels) > 0.3 and min(levels) >= 0, "levels span rest to contraction: %.3f..%.3f" % (min(levels), max(levels)))
    check(c.count("/emg/glute_med_l/level") == 0, "no level for muscles without an MVC")
    check(c.count("/emg/glute_med_r/level") == 0, "no level from a refused MVC")
    lv = [m[3] for m in c.msgs if m[1] == "/emg/levels"][-1]
    check(lv[0] >= 0 and all(x == -1 for x in lv[1:]), "/emg/levels: value for glute_max_l, -1 for the rest")
    check(os.path.exists(os.path.join(d.dir, "state", "calibration.ini")), "calibration saved to the state dir")
finally:
    c.close()
    d.close(keep=True)

# Restart on the same state dir: the level is there from the first tick.
d2 = Daemon(conf, workdir=d.dir, port=d.port)
c = Client(d2)
try:
    c.request("/emgd/subscribe", 20, reply="/emgd/subscribed")
    m = c.wait_for(lambda m: m[1] == "/emg/glute_max_l/level", 2)
    check(m is not None, "level published right after a restart (calibration persisted)")
    d2.signal(signal.SIGHUP)
    check(wait_log(d2, "reload: applied", 1, 10, c), "the reload applied")
    n = c.count("/emg/glute_max_l/level")
    c.pump(1.0)
    # the calibration's presence, not the rate: without it no level at all (a
    # loaded sanitized run once delivered 40-odd of the 50 in the second)
    got = c.count("/emg/glute_max_l/level") - n
    check(got >= 25, "level still published after a reload: %d in 1 s" % got)
finally:
    c.close()
    d2.close()
    d.tmp.cleanup()
