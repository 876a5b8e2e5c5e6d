# SPDX-License-Identifier: MIT
"""A recording whose directory is removed while it is written (issue 16 item 10).

The file keeps taking writes after its last link is gone, so emgd reported
"recording: ... closed (2.4 s, 0 frames dropped)" and /emgd/ok while the data
was already lost.  Now the recorder checks the link count (st_nlink) with every
record and at close: the log says the file was deleted, /emgd/record/stop
answers /emgd/error, and the lost frames are counted as dropped."""
import os
import re
import shutil
import time

from emgtest import Client, Daemon, check

d = Daemon("[device]\nscenario = rest\n")
c = Client(d)
rec = os.path.join(d.dir, "rec")
try:
    # 1. removed, then stopped at once (before the daemon's 1 s check)
    r = c.request("/emgd/record/start", "gone1", reply="/emgd/ok", timeout=5)
    check(r is not None and r[1] == "/emgd/ok", "recording gone1 started")
    c.pump(1.0)
    shutil.rmtree(rec)
    c.pump(0.3)  # a few 100 ms records: the recorder sees st_nlink == 0
    r = c.request("/emgd/record/stop", reply="/emgd/error", timeout=5)
    check(r is not None and r[1] == "/emgd/error" and "deleted" in r[3][1],
          "record/stop of a deleted recording answers /emgd/error: %r" % (r,))

    # the close finishes on the recorder's thread: a start before it is refused as busy
    end = time.time() + 5
    while not re.search(r"gone1\.bdf was deleted while being written.*data are gone", d.logtext()) \
            and time.time() < end:
        c.pump(0.1)

    # 2. removed and left running: the daemon stops it by itself and says so
    r = c.request("/emgd/record/start", "gone2", reply="/emgd/ok", timeout=5)
    check(r is not None and r[1] == "/emgd/ok", "recording gone2 started (the directory made anew): %r" % (r,))
    c.pump(0.5)
    shutil.rmtree(rec)
    end = time.time() + 5
    while "gone2.bdf stopped: the file was deleted" not in d.logtext() and time.time() < end:
        c.pump(0.1)
    r = c.request("/emgd/record/stop", reply="/emgd/error", timeout=5)
    check(r is not None and r[1] == "/emgd/error" and "deleted" in r[3][1],
          "the next record/stop says why it stopped: %r" % (r,))
    r = c.request("/emgd/status", reply="/emgd/status", timeout=5)
    check(r is not None and r[3][3] > 0, "the lost frames count in /emgd/status overruns: %r" % (r,))

    # 3. a recording left alone is still reported as closed fine
    r = c.request("/emgd/record/start", "kept", reply="/emgd/ok", timeout=5)
    c.pump(0.5)
    r = c.request("/emgd/record/stop", reply="/emgd/ok", timeout=5)
    check(r is not None and r[1] == "/emgd/ok", "an intact recording stops with /emgd/ok")
    end = time.time() + 5
    while "kept.bdf closed" not in d.logtext() and time.time() < end:
        c.pump(0.1)
finally:
    c.close()
    d.close(keep=True)

log = open(d.log.name).read()
check(re.search(r"gone1\.bdf was deleted while being written.*data are gone", log),
      "the log says gone1's data are gone")
check(re.search(r"gone2\.bdf stopped: the file was deleted", log), "the log says gone2 was deleted")
check(not re.search(r"gone[12]\.bdf closed \(", log), "neither is reported as closed successfully")
check(re.search(r"kept\.bdf closed \(", log) and os.path.exists(os.path.join(rec, "kept.bdf")),
      "the intact recording is closed and on disk")
check("2 recordings lost since start" in log, "the daemon counts lost recordings")
d.tmp.cleanup()
print("PASS")
