# SPDX-License-Identifier: MIT
"""Reloads that restart the device while recording (issue 16 item 1).

stop_engine() used to free the recorder but leave the dsp thread's pointer to
it, so the next dsp thread wrote every block into freed memory (ASan:
heap-use-after-free in emg_recorder_write), and the recording silently
stopped at the first [device] change.  Now the recording goes on in the same
file when the new device delivers the same signals, and in a new, announced
file when it does not.  Run in the ASan/UBSan and TSan trees too (tests/run)."""
import glob
import os
import signal
import time

from emgtest import Client, Daemon, check, mne_read, wait_log


RELOADS = 5
d = Daemon("[device]\nscenario = bridge\nsnr_db = 30\n")
c = Client(d)
try:
    r = c.request("/emgd/record/start", "x", reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "record/start x answered ok")
    t0 = time.time()
    for i in range(RELOADS):
        d.write_conf("[device]\nscenario = bridge\nsnr_db = %d\n" % (20 + i))
        d.signal(signal.SIGHUP)
        check(wait_log(d, "reload: applied", i + 1, 20, c), "reload %d applied (device restarted)" % (i + 1))
        check(wait_log(d, "continues after the device restart", i + 1, 5, c),
              "reload %d: the recording continues in the same file" % (i + 1))
        st = c.request("/emgd/status", reply="/emgd/status", timeout=5)
        check(st and st[1] == "/emgd/status" and st[3][0] == "recording",
              "reload %d: daemon alive, status %s" % (i + 1, st and st[3][0]))
    # Let the last engine record a little before changing the signals themselves.
    c.request("/emgd/marker", "after the reloads", reply="/emgd/ok")
    c.pump(0.5)
    t_same = time.time() - t0
    # A different rate cannot share the header: the file is closed, a new one continues.
    d.write_conf("[device]\nscenario = bridge\nsnr_db = 30\nrate = 4000\n")
    d.signal(signal.SIGHUP)
    check(wait_log(d, "reload: applied", RELOADS + 1, 20, c), "rate change applied")
    check(wait_log(d, "recording: continues in ", 1, 5, c), "a rate change continues the recording in a new, logged file")
    check(wait_log(d, "x.bdf closed (", 1, 10, c), "the first file is closed and logged")
    st = c.request("/emgd/status", reply="/emgd/status", timeout=5)
    check(st and st[3][0] == "recording" and st[3][1] == 4000, "still recording, now at 4000 Hz: %s" % (st and st[3]))
    c.pump(0.5)
    r = c.request("/emgd/record/stop", reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "record/stop answered ok")
    check(wait_log(d, "closed (", 2, 10, c), "the second file is closed")
finally:
    c.close()
    rc = d.stop()
    log = d.logtext()
    d.close(keep=True)

check(rc == 0, "emgd exited cleanly on SIGTERM (rc %s)" % rc)
check("ERROR: AddressSanitizer" not in log and "runtime error" not in log and "ThreadSanitizer" not in log,
      "no sanitizer report" + ("" if "Sanitizer" not in log else ":\n" + log[-3000:]))

rec = os.path.join(d.dir, "rec")
first = os.path.join(rec, "x.bdf")
info = mne_read(first)
descs = [a["description"] for a in info["annotations"]]
check(info["sfreq"] == 2000, "x.bdf at 2000 Hz")
check(sum("device restarted by a reload" in s for s in descs) == RELOADS,
      "x.bdf annotates each of the %d device restarts" % RELOADS)
check(any("after the reloads" in s for s in descs), "the marker sent after the restarts is in x.bdf")
check(info["duration"] >= 0.5 * t_same,
      "x.bdf covers the reloads: %.1f s of %.1f s (restarts lose a few samples each)" % (info["duration"], t_same))
others = [p for p in glob.glob(os.path.join(rec, "*.bdf")) if p != first]
check(len(others) == 1, "one continuation file: %s" % [os.path.basename(p) for p in others])
info2 = mne_read(others[0])
check(info2["sfreq"] == 4000 and info2["duration"] > 0, "the continuation is readable at 4000 Hz (%.1f s)" % info2["duration"])
print("PASS")
