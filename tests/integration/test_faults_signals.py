# SPDX-License-Identifier: MIT
"""Fault injection against the real daemon, part 2: signals.

- A SIGHUP storm while streaming: 50 reloads requested within 1 s; the daemon
  stays up, the subscriber keeps receiving, no tick is lost, no sample dropped.
- SIGTERM in the middle of a recording: emgd exits 0 and the file is closed
  cleanly - the header's record count matches the file size (nothing for
  `emgctl repair` to do), MNE reads it as it is, with the stop annotated."""
import os
import shutil
import signal
import subprocess
import time

from emgtest import Client, Daemon, EMGCTL, check, mne_read


# ---- SIGHUP storm --------------------------------------------------------------------------
d = Daemon()
c = Client(d)
try:
    c.request("/emgd/subscribe", 60, reply="/emgd/subscribed")
    check(c.wait_for(lambda m: m[1] == "/emg/frame", 2) is not None, "streaming")
    n0 = len(c.msgs)
    t0 = time.time()
    for i in range(50):
        d.signal(signal.SIGHUP)
        c.pump(0.02)
    storm = time.time() - t0
    c.pump(1.0)
    check(d.proc.poll() is None, "daemon alive after 50 SIGHUPs in %.2f s" % storm)
    frames = [m[3] for m in c.msgs[n0:] if m[1] == "/emg/frame"]
    ticks = [f[0] for f in frames]
    bad = [(a, b) for a, b in zip(ticks, ticks[1:]) if b - a != 1]
    check(len(ticks) >= 45 * (storm + 1.0) * 0.9 and not bad,
          "subscriber kept receiving across the storm: %d ticks in %.1f s, gaps %s" % (len(ticks), storm + 1.0, bad[:5]))
    check(all(f[1] == 0 for f in frames), "no samples dropped")
    log = d.logtext()
    n = log.count("reload: applied")
    check(1 <= n <= 50 and "refused" not in log, "%d reloads applied (signals coalesce), none refused" % n)
    r = c.request("/emgd/status", reply="/emgd/status")
    check(r is not None and r[3][0] == "streaming" and r[3][3] == 0, "status after the storm: %s" % (r[3] if r else None))
finally:
    c.close()
    rc = d.close()
check(rc == 0, "clean exit after the SIGHUP storm")

# ---- SIGTERM while recording ---------------------------------------------------------------
d = Daemon("[device]\nscenario = bridge\n")
c = Client(d)
try:
    r = c.request("/emgd/record/start", "term", reply="/emgd/ok")
    check(r is not None and r[1] == "/emgd/ok", "recording started")
    c.request("/emgd/marker", "before sigterm", reply="/emgd/ok")
    c.pump(2.5)  # 2.5 s of data: the length of the file is the point
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "SIGTERM while recording: exit status %s" % rc)
finally:
    c.close()
    d.close(keep=True)
path = os.path.join(d.dir, "rec", "term.bdf")
try:
    check(os.path.exists(path), "the recording exists")
    with open(path, "rb") as f:
        hdr = f.read(256)
        hbytes, nrec, dur, ns = int(hdr[184:192]), int(hdr[236:244]), float(hdr[244:252]), int(hdr[252:256])
        f.seek(256 + ns * 216)
        spr = [int(f.read(8)) for _ in range(ns)]
    size = os.path.getsize(path)
    check(nrec > 0 and hbytes + nrec * sum(spr) * 3 == size,
          "closed cleanly: header says %d records of %g s, the file holds exactly that (%d bytes)" % (nrec, dur, size))
    copy = path + ".copy.bdf"
    shutil.copy(path, copy)
    rep = subprocess.run([EMGCTL, "repair", copy], capture_output=True, text=True)
    check(rep.returncode == 0 and "nothing to repair" in rep.stdout, "emgctl repair: %s" % rep.stdout.strip())
    info = mne_read(path)  # as it is, no repair
    texts = [a["description"] for a in info["annotations"]]
    check(2.0 <= info["duration"] <= 4.0, "it holds %.1f s of the ~2.5 s recorded" % info["duration"])
    check("before sigterm" in texts and any("recording stopped: emgd stopped" in t for t in texts),
          "marker and the stop annotated: %s" % [t for t in texts if "onset" not in t and "offset" not in t][:6])
finally:
    d.tmp.cleanup()
