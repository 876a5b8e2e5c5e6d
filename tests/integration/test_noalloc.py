# SPDX-License-Identifier: MIT
"""No allocation on the sample path (DESIGN section 1): the real emgd under an
LD_PRELOAD allocator shim (noalloc.c) that counts malloc/free calls per thread
once armed.  After start-up the test arms it and drives everything the
acquisition and dsp threads do in normal use - streaming, onsets and offsets
(the bridge scenario), a subscriber, rest and MVC calibrations, a recording
(the dsp thread feeds the recorder), markers, a same-device reload (the dsp
thread switches pipelines) - then requires zero calls from the threads named
emgd-acq (the synth's acquisition thread), emgd-usb and emgd-dsp.  The main
thread may allocate (liblo decodes control messages), and is counted to show
the shim works."""
import os
import signal
import struct
import subprocess
import tempfile
import time

from emgtest import Client, Daemon, check, fail

LIB = os.environ.get("NOALLOC_LIB")
if not LIB or not os.path.exists(LIB):
    fail("NOALLOC_LIB not set or missing: %r" % LIB)

CLASSES = ["main", "emgd-acq", "emgd-dsp", "emgd-usb", "other threads"]
NOTES = 32
HDR = struct.Struct("<II5Q")            # armed, nnotes, count[5]
NOTE = struct.Struct("<ii16s16sQ")      # tid, cls, comm, fn, ret


class Shim:
    def __init__(self, path):
        self.path = path
        with open(path, "wb") as f:
            f.write(b"\0" * 4096)

    def _rw(self, off, data=None):
        with open(self.path, "r+b") as f:
            f.seek(off)
            if data is None:
                return f.read(4096 - off)
            f.write(data)

    def arm(self, on):
        self._rw(0, struct.pack("<I", 1 if on else 0))

    def read(self):
        raw = self._rw(0)
        h = HDR.unpack_from(raw, 0)
        notes = []
        for i in range(min(h[1], NOTES)):
            tid, cls, comm, fn, ret = NOTE.unpack_from(raw, HDR.size + i * NOTE.size)
            notes.append((tid, CLASSES[cls], comm.rstrip(b"\0").decode(), fn.rstrip(b"\0").decode(), ret))
        return dict(zip(CLASSES, h[2:])), notes


def symbolise(pid, addr):
    """object+offset and, if addr2line knows it, function:line."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                if lo <= addr < hi and len(parts) >= 6:
                    obj, off = parts[5], addr - lo + int(parts[2], 16)
                    try:
                        out = subprocess.run(["addr2line", "-f", "-e", obj, hex(off)],
                                             capture_output=True, text=True, timeout=5).stdout.split()
                        return "%s+%#x %s" % (os.path.basename(obj), off, " ".join(out))
                    except (OSError, subprocess.SubprocessError):
                        return "%s+%#x" % (os.path.basename(obj), off)
    except OSError:
        pass
    return hex(addr)


tmp = tempfile.TemporaryDirectory(prefix="emgd-noalloc-")
shim = Shim(os.path.join(tmp.name, "counts"))
conf = "[device]\nscenario = bridge\n"
d = Daemon(conf, env={"LD_PRELOAD": LIB, "NOALLOC_FILE": shim.path})
c = Client(d)
try:
    names = set()
    for t in os.listdir("/proc/%d/task" % d.proc.pid):
        with open("/proc/%d/task/%s/comm" % (d.proc.pid, t)) as f:
            names.add(f.read().strip())
    check("emgd-acq" in names and "emgd-dsp" in names,
          "the sample-path threads are named: %s" % sorted(names))
    c.request("/emgd/subscribe", 60, reply="/emgd/subscribed")
    c.pump(1.0)  # start-up done: every ring, pipeline and socket exists

    shim.arm(True)
    t0 = time.time()
    r = c.request("/emgd/calibrate/rest", 1.0, reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "rest calibration accepted")
    m = c.wait_for(lambda m: m[1] == "/emgd/calibrated", 5)
    check(m is not None, "rest calibration result")
    c.pump(0.5)
    r = c.request("/emgd/record/start", "noalloc", reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "recording started: %s" % (r,))
    r = c.request("/emgd/calibrate/mvc", "glute_max_l", 2.0, reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "mvc calibration accepted")
    c.send("/emgd/marker", "set 1")
    m = c.wait_for(lambda m: m[1] == "/emgd/calibrated" and m[3][0] == "mvc", 5)
    check(m is not None, "mvc calibration result")
    d.signal(signal.SIGHUP)  # same device: the dsp thread switches to a new pipeline
    c.pump(1.0)
    r = c.request("/emgd/record/stop", reply="/emgd/ok")
    check(r and r[1] == "/emgd/ok", "recording stopped")
    while time.time() - t0 < 10:
        c.pump(0.5)
    counts, notes = shim.read()
    shim.arm(False)

    onsets = sum(1 for m in c.msgs if m[1].endswith("/onset"))
    offsets = sum(1 for m in c.msgs if m[1].endswith("/offset"))
    ticks = c.count("/emg/frame")
    check(onsets > 3 and offsets > 3 and ticks > 400,
          "armed for %.1f s: %d ticks, %d onsets, %d offsets published" % (time.time() - t0, ticks, onsets, offsets))
    print("allocator calls while armed:", ", ".join("%s %d" % kv for kv in counts.items()), flush=True)
    check(counts["main"] > 0, "the shim sees allocations (the main thread's)")
    for tid, cls, comm, fn, ret in notes:
        print("  %s (tid %d, %s): %s from %s" % (cls, tid, comm, fn, symbolise(d.proc.pid, ret)), flush=True)
    check(counts["emgd-acq"] == 0, "no malloc/free on the acquisition thread")
    check(counts["emgd-dsp"] == 0, "no malloc/free on the dsp thread")
    check(counts["emgd-usb"] == 0, "no malloc/free on a USB acquisition thread")
finally:
    c.close()
    rc = d.close()
    tmp.cleanup()
check(rc == 0, "emgd exited cleanly")
