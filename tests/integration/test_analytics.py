# SPDX-License-Identifier: MIT
"""Firing order and repetitions end to end: the real emgd on the synth's scripted prone hip
extension (hamstring first, glute max 30-80 ms later, reps alternating left and right),
a python3-liblo subscriber, and the synth's ground truth (tests/integration/synth_truth.c
prints it for the same config file).

Checked against the truth: every repetition's burst group (/emg/order) is led by the
working side's hamstring and reports glute max's lag within 15 ms of the scripted lag;
/emg/<muscle>/lag and /emg/pair agree with it; /emg/rep numbers the repetitions 1, 2, ...
per muscle with peak RMS near the scripted plateau, the scripted duration (offsets are
detected 0.1-0.3 s late), the group's lag, and a symmetry index once both sides have
worked.  Three repetitions (left, right, left) take ~14 s of the script."""
import os
import subprocess
import time

from emgtest import Client, Daemon, check, fail

REPS = 3
CONF = """[device]
scenario = prone_hip_ext
pops = no
[analytics]
order_window_ms = 300
min_rest_ms = 500
pairs = glute_max_l:hamstring_l glute_max_r:hamstring_r glute_max_l:hip_flex_l
[muscles]
glute_max_l = 1
glute_max_r = 2
hamstring_l = 3
hamstring_r = 4
glute_med_l = 5
hip_flex_l = 6
"""
MUSCLES = ["glute_max_l", "glute_max_r", "hamstring_l", "hamstring_r", "glute_med_l", "hip_flex_l"]

d = Daemon(CONF)
c = Client(d)
try:
    # Ground truth for exactly this config.
    out = subprocess.run([os.environ["SYNTH_TRUTH"], d.conf], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    rate = float(out[0].split()[3])
    truth = []  # (muscle, rep, onset, offset, peak_mvc, mvc_uv)
    for line in out[1:]:
        name, ex, rep, on, off, peak, mvc = line.split()
        truth.append((name, int(rep), int(on), int(off), float(peak), float(mvc)))

    def true_burst(muscle, rep):
        for t in truth:
            if t[0] == muscle and t[1] == rep:
                return t
        return None

    r = c.request("/emgd/subscribe", 30, reply="/emgd/subscribed")
    check(r is not None and r[1] == "/emgd/subscribed", "subscribed")
    # Rep k works side L, R, L ...; its summary comes min_rest after the last offset.
    last = true_burst("glute_max_l" if REPS % 2 else "glute_max_r", REPS)
    deadline = time.time() + last[3] / rate + 3.0
    want = lambda m: sum(1 for x in c.msgs if x[1] == "/emg/rep" and x[3][0] == m)
    while time.time() < deadline and not all(
            want(m) >= (REPS + 1) // 2 for m in ["glute_max_l", "hamstring_l"]):
        c.pump(0.2)
    check(not [m for m in c.msgs if m[1] == "/emgd/error"], "no errors")

    onsets = {m: [x[3][1] for x in c.msgs if x[1] == "/emg/%s/onset" % m] for m in MUSCLES}
    orders = [x for x in c.msgs if x[1] == "/emg/order"]
    reps = [x[3] for x in c.msgs if x[1] == "/emg/rep"]
    lags = [(x[0], x[1], x[3][0]) for x in c.msgs if x[1].endswith("/lag")]
    pairs = [(x[0], x[3]) for x in c.msgs if x[1] == "/emg/pair"]
    check(all(o[2] == "is" + "f" * len(MUSCLES) for o in orders),
          "/emg/order is i s + one f per muscle (%d groups)" % len(orders))

    for k in range(1, REPS + 1):
        side = "l" if k % 2 else "r"
        ham, gmax = "hamstring_" + side, "glute_max_" + side
        th, tg = true_burst(ham, k), true_burst(gmax, k)
        true_lag = (tg[2] - th[2]) * 1e3 / rate
        check(30 <= true_lag <= 80, "rep %d (%s): scripted glute max lag %.1f ms" % (k, side, true_lag))
        # the detected hamstring onset of this rep (sample index in /emg/<m>/onset)
        det = [s for s in onsets[ham] if abs(s - th[2]) < 0.15 * rate]
        check(len(det) == 1, "rep %d: %s onset detected %s ms from the truth"
              % (k, ham, ["%.1f" % ((s - th[2]) * 1e3 / rate) for s in det]))
        # its burst group: the order message that arrived next with both muscles in it
        t_det = [x[0] for x in c.msgs if x[1] == "/emg/%s/onset" % ham and x[3][1] == det[0]][0]
        group = [o for o in orders if o[0] >= t_det and o[3][2 + MUSCLES.index(ham)] >= 0
                 and o[3][2 + MUSCLES.index(gmax)] >= 0]
        if not group:
            fail("rep %d: no /emg/order with %s and %s" % (k, ham, gmax))
        o = group[0][3]
        lag = o[2 + MUSCLES.index(gmax)] - o[2 + MUSCLES.index(ham)]
        check(o[1] == ham, "rep %d: %s fired first (order %s)" % (k, o[1], o))
        check(abs(lag - true_lag) <= 15,
              "rep %d: glute max lag %.1f ms vs scripted %.1f ms" % (k, lag, true_lag))
        check(o[2 + MUSCLES.index("hip_flex_l")] == -1.0, "rep %d: hip flexor silent" % k)
        # the same bundle: /emg/<gmax>/lag and /emg/pair gmax hamstring
        t_o = group[0][0]
        gl = [v for t, p, v in lags if p == "/emg/%s/lag" % gmax and abs(t - t_o) < 0.05]
        check(gl and abs(gl[0] - o[2 + MUSCLES.index(gmax)]) < 1e-3, "rep %d: /emg/%s/lag %s" % (k, gmax, gl))
        pl = [a for t, a in pairs if a[0] == gmax and a[1] == ham and abs(t - t_o) < 0.05]
        check(pl and abs(pl[0][2] - lag) < 1e-3, "rep %d: /emg/pair %s" % (k, pl))

        # repetition summaries of both muscles of the working side
        n = (k + 1) // 2  # this side's repetition number
        for m, t, is_first in ((ham, th, True), (gmax, tg, False)):
            rs = [x for x in reps if x[0] == m and x[1] == n]
            if not rs:
                fail("rep %d: no /emg/rep %s %d (got %s)" % (k, m, n, [x[:2] for x in reps]))
            name, num, peak, mean, ttp, dur, rlag, sym, paired, unit = rs[0]
            plateau = t[4] * t[5]
            true_dur = (t[3] - t[2]) / rate
            check(unit == "uV", "%s rep %d: not calibrated, so in uV" % (m, n))
            check(abs(peak / plateau - 1) < 0.3,
                  "%s rep %d: peak %.1f uV vs scripted plateau %.1f uV" % (m, n, peak, plateau))
            check(0 < mean <= peak and 0 < ttp < dur, "%s rep %d: mean %.1f, time to peak %.2f s"
                  % (m, n, mean, ttp))
            check(-0.05 < dur - true_dur < 0.35,
                  "%s rep %d: duration %.3f s vs scripted %.3f s" % (m, n, dur, true_dur))
            if is_first:
                check(rlag == 0, "%s rep %d: lag 0 (fired first)" % (m, n))
            else:
                check(abs(rlag - lag) < 1e-3, "%s rep %d: lag %.1f ms as in /emg/order" % (m, n, rlag))
            # symmetry: against the other side's last repetition, once there is one
            check(paired == (1 if k > 1 else 0), "%s rep %d: paired = %d" % (m, n, paired))
            if paired:
                check(abs(sym) < 60, "%s rep %d: symmetry index %.1f %%" % (m, n, sym))
    counts = {m: max([x[1] for x in reps if x[0] == m] or [0]) for m in MUSCLES}
    check(counts["glute_max_l"] == (REPS + 1) // 2 and counts["glute_max_r"] == REPS // 2,
          "repetition counts %s" % counts)

    # /emgd/analytics/reset: counts start again from 1
    r = c.request("/emgd/analytics/reset", reply="/emgd/ok")
    check(r is not None and r[1] == "/emgd/ok" and r[3] == ["/emgd/analytics/reset"], "reset answered /emgd/ok")
finally:
    c.close()
    rc = d.close()
check(rc == 0, "emgd exited cleanly")
