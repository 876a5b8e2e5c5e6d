# SPDX-License-Identifier: MIT
"""Reload under fire (issue 16): SIGHUPs that change device knobs, the muscle map, DSP and
OSC settings (publish rate, rate limit, lease, the listen address) while emgd records,
calibrates and streams to several subscribers, then a storm of SIGHUPs without waiting.

Checks: every reload is applied and the daemon stays up; a steady subscriber sees no tick
gap and no dropped samples except inside the window of a reload that restarted the device
(a [device] change, or a new muscle map on the synth, whose channels are generated per
muscle: documented as losing the samples of the restart); the other subscribers are kept
across every reload; a rest calibration after it all succeeds for every muscle; the
recording is one file throughout (same rate and channels), readable by MNE, with one
"config reloaded" annotation per reload and one "device restarted by a reload" per device
restart; SIGTERM exits 0; no sanitizer report (run in build-asan and build-tsan too)."""
import os
import signal
import time

from emgtest import Client, Daemon, check, mne_read, wait_log

MUSCLES = ["glute_max_l", "glute_max_r", "glute_med_l", "glute_med_r", "hip_flex_l", "hip_flex_r"]
SWAPPED = "[muscles]\n" + "".join("%s = %d\n" % (m, i + 1 + (1 if i % 2 == 0 else -1)) for i, m in enumerate(MUSCLES))
DEFAULT = "[muscles]\n" + "".join("%s = %d\n" % (m, i + 1) for i, m in enumerate(MUSCLES))


def conf(snr=30, dsp="", osc="", muscles=DEFAULT):
    # scenario rest: the calibration after the reloads must succeed for every muscle
    return "[device]\nscenario = rest\nsnr_db = %d\n[dsp]\n%s[osc]\n%s%s" % (snr, dsp, osc, muscles)


d = Daemon(conf())
port = d.port
# (kind, config): kind "device"/"muscles" restarts the device on the synth, the others do not
STEPS = [
    ("osc", conf(osc="publish_rate = 100\n")),
    ("dsp", conf(osc="publish_rate = 100\n", dsp="threshold_k = 4\n")),
    ("device", conf(snr=25, osc="publish_rate = 100\n", dsp="threshold_k = 4\n")),
    ("muscles", conf(snr=25, osc="publish_rate = 100\n", dsp="threshold_k = 4\n", muscles=SWAPPED)),
    ("osc", conf(snr=25, osc="publish_rate = 100\nlisten = 0.0.0.0:%d\n" % port, dsp="threshold_k = 4\n",
                 muscles=SWAPPED)),
    ("dsp", conf(snr=25, osc="listen = 0.0.0.0:%d\n" % port, dsp="detector = tkeo\n", muscles=SWAPPED)),
    ("device", conf(snr=28, osc="listen = 0.0.0.0:%d\n" % port, dsp="detector = tkeo\n", muscles=SWAPPED)),
    ("osc", conf(snr=28, osc="listen = 0.0.0.0:%d\nrate_limit = 100\nmax_lease = 120\npublish_rate = 50\n" % port,
                 dsp="detector = tkeo\n", muscles=SWAPPED)),
    ("muscles", conf(snr=28, osc="rate_limit = 100\nmax_lease = 120\n", dsp="detector = tkeo\n")),
    ("dsp", conf(snr=28, osc="rate_limit = 100\nmax_lease = 120\n", dsp="threshold_k = 3\ndetector = hodges\n")),
    ("osc", conf(snr=28, dsp="threshold_k = 3\ndetector = hodges\n")),
    ("device", conf(snr=30)),
]
STORM = [conf(snr=30, dsp="threshold_k = %d\n" % (3 + i % 2)) if i % 3 else conf(snr=20 + i) for i in range(6)]

steady = Client(d)
others = [Client(d) for _ in range(3)]
windows = []  # (t_start, t_end, restarted)
try:
    for k, c in enumerate([steady] + others):
        r = c.request("/emgd/subscribe", 30, reply="/emgd/subscribed")
        check(r and r[1] == "/emgd/subscribed", "subscriber %d" % k)
    r = steady.request("/emgd/record/start", "fire", reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "recording fire.bdf")
    steady.pump(0.3)

    def frames_after(t, n, timeout=10):
        """Pump until the steady subscriber has n frames stamped after t."""
        end = time.time() + timeout
        while time.time() < end:
            if sum(1 for m in steady.msgs if m[1] == "/emg/frame" and m[0] > t) >= n:
                return True
            steady.pump(0.05)
        return False

    applied = restarts = 0
    t0 = time.time()
    for i, (kind, text) in enumerate(STEPS):
        if i % 3 == 1:
            steady.send("/emgd/calibrate/rest", 1.0)  # a reload will land in the middle of it
        for c in [steady] + others:
            c.send("/emgd/subscribe", 30)
        d.write_conf(text)
        before = d.logtext().count("restarting the device")
        ts = time.time()
        d.signal(signal.SIGHUP)
        applied += 1
        check(wait_log(d, "reload: applied", applied, 30, steady), "reload %d (%s) applied" % (i + 1, kind))
        restarted = d.logtext().count("restarting the device") > before
        restarts += restarted
        check(restarted == (kind in ("device", "muscles")),
              "  ... %s the device" % ("restarted" if restarted else "did not restart"))
        check(frames_after(time.time(), 10), "  ... and the steady subscriber streams on")
        windows.append((ts, time.time(), restarted))
        st = steady.request("/emgd/status", reply="/emgd/status", timeout=5)
        check(st and st[1] == "/emgd/status", "  ... status answered: %s" % (st and st[3][0]))

    # the storm: six SIGHUPs without waiting, device and DSP changes mixed
    before = d.logtext().count("restarting the device")
    ts = time.time()
    steady.send("/emgd/calibrate/rest", 1.0)
    for text in STORM:
        d.write_conf(text)
        d.signal(signal.SIGHUP)
        steady.pump(0.02)
    # signals may coalesce: a reload re-reads whatever the file says by then
    end = time.time() + 30
    while time.time() < end and d.logtext().count("reload: applied") < applied + 1:
        steady.pump(0.05)
    n_storm = d.logtext().count("reload: applied") - applied
    check(n_storm >= 1, "storm: %d SIGHUPs, %d reloads applied" % (len(STORM), n_storm))
    check(frames_after(time.time(), 20), "storm: the steady subscriber streams on")
    applied = d.logtext().count("reload: applied")
    restarts_total = d.logtext().count("restarting the device")
    windows.append((ts, time.time(), d.logtext().count("restarting the device") > before))
    elapsed = time.time() - t0
    print("%d reloads (%d device restarts) in %.1f s" % (applied, restarts_total, elapsed))

    # ---- every subscriber kept, stream checked tick by tick ---------------------------------
    t_last = time.time()
    for c in others:
        c.msgs.clear()
    for c in [steady] + others:
        c.send("/emgd/subscribe", 30)
    frames_after(t_last, 10)
    for k, c in enumerate(others):
        c.pump(0.3)
        check(c.count("/emg/frame") > 0, "subscriber %d still receives after every reload" % (k + 1))
    frames = [(m[0], m[3][0], m[3][1]) for m in steady.msgs if m[1] == "/emg/frame"]
    bad = []
    for (ta, a, da), (tb, b, db) in zip(frames, frames[1:]):
        if b == a + 1 and db == da:
            continue
        inside = [w for w in windows if w[0] - 0.05 <= tb <= w[1] + 0.5]
        if not any(w[2] for w in inside):
            bad.append((round(tb - t0, 2), a, b, da, db, [w[2] for w in inside]))
    gaps = sum(1 for (_, a, _), (_, b, _) in zip(frames, frames[1:]) if b != a + 1)
    check(not bad, "%d frames, %d tick gaps, all inside a device restart's window (outside: %s)"
          % (len(frames), gaps, bad[:5]))

    # ---- calibration still works --------------------------------------------------------------
    steady.msgs.clear()
    r = steady.request("/emgd/calibrate/rest", 1.0, reply="/emgd/ok", timeout=5)
    check(r and r[1] == "/emgd/ok", "rest calibration after the reloads accepted")
    end = time.time() + 15
    while time.time() < end and steady.count("/emgd/calibrated") < len(MUSCLES):
        steady.pump(0.1)
    cal = [m[3] for m in steady.msgs if m[1] == "/emgd/calibrated"]
    check(len(cal) == len(MUSCLES) and all(a[3] == 1 for a in cal),
          "  ... and succeeds for all %d muscles: %s" % (len(MUSCLES), [(a[1], round(a[2], 1), a[3]) for a in cal]))

    r = steady.request("/emgd/record/stop", reply="/emgd/ok", timeout=5)
    check(r and r[1] == "/emgd/ok", "record/stop answered ok")
    check(wait_log(d, "fire.bdf closed (", 1, 10, steady), "fire.bdf closed")
finally:
    for c in [steady] + others:
        c.close()
    rc = d.stop()
    log = d.logtext()
    d.close(keep=True)

check(rc == 0, "emgd exited cleanly on SIGTERM (rc %s)" % rc)
check("Sanitizer" not in log and "runtime error" not in log,
      "no sanitizer report" + ("" if "Sanitizer" not in log else ":\n" + log[-3000:]))
rec = os.path.join(d.dir, "rec")
files = sorted(os.listdir(rec))
check(files == ["fire.bdf"], "one recording through every reload: %s" % files)
info = mne_read(os.path.join(rec, "fire.bdf"))
descs = [a["description"] for a in info["annotations"]]
check(sum("config reloaded" in s for s in descs) == applied,
      "fire.bdf: %d 'config reloaded' annotations for %d reloads" % (sum("config reloaded" in s for s in descs), applied))
check(sum("device restarted by a reload" in s for s in descs) == restarts_total,
      "fire.bdf: one 'device restarted by a reload' per device restart (%d)" % restarts_total)
check(info["sfreq"] == 2000 and info["duration"] >= 0.5 * elapsed,
      "fire.bdf readable: %.1f s at %g Hz over %.1f s of reloads" % (info["duration"], info["sfreq"], elapsed))
d.tmp.cleanup()
print("PASS")
