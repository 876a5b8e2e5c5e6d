# SPDX-License-Identifier: MIT
"""Streaming contract: a python3-liblo subscriber and oscdump (as a static target)
both receive every muscle at the publish rate, onsets for the scripted
contractions arrive, and /emg/frame has no gaps on loopback."""
import subprocess
import time

from emgtest import Client, Daemon, check, fail, free_udp_port

MUSCLES = ["glute_max_l", "glute_max_r", "glute_med_l", "glute_med_r", "hip_flex_l", "hip_flex_r"]
DUR = 12.0

dump_port = free_udp_port()
d = Daemon("[osc]\npublish_rate = 50\ntarget = 127.0.0.1:%d\n[device]\nscenario = bridge\nsnr_db = 30\n"
           % dump_port)
# oscdump writes to a file: a pipe nobody reads fills in ~1 s and stalls it.
dump_out = open(d.dir + "/oscdump.txt", "w+")
dump = subprocess.Popen(["oscdump", "-L", str(dump_port)], stdout=dump_out, text=True)
c = Client(d)
try:
    r = c.request("/emgd/subscribe", 20, reply="/emgd/subscribed")
    check(r is not None and r[1] == "/emgd/subscribed" and r[3] == [20], "subscribe answered with the lease")
    t0 = time.time()
    c.pump(DUR)
    elapsed = time.time() - t0

    for m in MUSCLES:
        n = c.count("/emg/%s/rms" % m)
        check(abs(n / elapsed - 50) < 5, "%s rms at %.1f Hz (want 50)" % (m, n / elapsed))
        check(c.count("/emg/%s/active" % m) == n, "%s active with every rms" % m)
    types = {m[1]: m[2] for m in c.msgs}
    check(types.get("/emg/levels") == "f" * len(MUSCLES), "/emg/levels has one f per muscle")
    check(all(set(t) <= set("ifs") for t in types.values()), "only i f s type tags: %s" % sorted(set("".join(types.values()))))
    frames = [m[3][0] for m in c.msgs if m[1] == "/emg/frame"]
    gaps = [b - a for a, b in zip(frames, frames[1:]) if b - a != 1]
    check(len(frames) > 0 and not gaps, "/emg/frame sequence has no gaps (%d ticks)" % len(frames))
    check(all(m[3][1] == 0 for m in c.msgs if m[1] == "/emg/frame"), "no samples dropped")

    # The bridge script: >= 2 s rest, then ~2 s contractions every ~4 s; glute max
    # left and right are scripted in every rep, so in 12 s both must fire at least twice.
    for m in ["glute_max_l", "glute_max_r"]:
        on = c.count("/emg/%s/onset" % m)
        off = c.count("/emg/%s/offset" % m)
        check(on >= 2, "%s: %d onsets" % (m, on))
        check(off >= 1, "%s: %d offsets" % (m, off))
    # An onset goes out once its burst has lasted report_ms (150) + offset_ms (50);
    # in the stream's first startup_s (7 s), startup_report_ms (500) + offset_ms.
    ons = [(m[3][0], m[3][1] / 2000.0) for m in c.msgs if m[1].endswith("/onset")]
    early = [a for a, t in ons if t < 7.0]
    late = [a for a, t in ons if t >= 7.0]
    check(early and all(0.54 <= a < 0.85 for a in early),
          "onset ages in the start-up are 0.55..0.85 s: %s" % ["%.3f" % a for a in early[:6]])
    check(late and all(0.19 <= a < 0.5 for a in late),
          "onset ages after it are 0.2..0.5 s: %s" % ["%.3f" % a for a in late[:6]])
    st = [m for m in c.msgs if m[1] == "/emgd/status"]
    check(len(st) >= DUR - 2 and st[-1][3][0] == "streaming" and st[-1][3][1] == 2000 and st[-1][3][2] == 6,
          "/emgd/status at 1 Hz says streaming 2000 Hz 6 ch")
finally:
    dump.terminate()
    dump.wait(5)
    dump_out.seek(0)
    lines = dump_out.read().splitlines()
    dump_out.close()
    c.close()
    d.close()

n_rms = sum(1 for l in lines if " /emg/glute_med_r/rms f " in l)
check(n_rms > 40 * DUR * 0.8, "oscdump (static target) got %d glute_med_r/rms messages" % n_rms)
check(any("/emg/levels ffffff" in l for l in lines), "oscdump sees /emg/levels ffffff")
