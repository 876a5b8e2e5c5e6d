# SPDX-License-Identifier: MIT
"""Resident memory stays flat across reloads (issue 16 item 12).

A reload that changes [dsp] builds a whole new pipeline (filters, ECG stage,
onset detector, at 64 muscles about 0.5 MB) beside the old one, swaps it in
between two blocks and frees the old one.  Two things made RssAnon climb with
reloads: glibc raised its mmap threshold to the first large block freed, so later
pipelines came from the heap (fixed with a fixed threshold); and the old
pipeline's small blocks left holes in the heap that stayed resident, so the level
alternated between two values and crept up (a 2-hour soak: 8,236 -> 9,492 kB over
11 reloads; fixed with malloc_trim() once per reload).

Here: 64 muscles on 64 channels at 4 kHz, recording, one subscriber; RELOADS
reloads with [dsp] threshold_k alternating, each waited for by its "reload:
applied" log line (the signal, not a sleep).  The band of RssAnon (lowest and
highest sample) over the second half must not sit higher than over the first,
past WARM warm-up reloads, by more than SLACK_KB, and the band itself must be
narrower than BAND_KB: a flat line, not two levels a pipeline apart (without the
trim: 10,252-10,664 kB, floor +40 kB; with it 9,576-9,616 kB, +12 kB).

The start-up report gate is off here ([dsp] startup_s = 0).  With it on (every
reload starts a new detector, so with a reload every few hundred ms the whole
run is start-up, onsets held 550 ms) and a recording running, RssAnon
alternates by ~200 kB between the two configurations from about the 40th
reload on and comes back down by the 130th (8,772 -> 9,036 -> 8,836 kB over 160
reloads): two levels, not growth, and gone with `record = off` or a 300 ms
gate.  Not explained yet; this test keeps measuring what it was built for.
"""
import os
import signal

from emgtest import Client, Daemon, check, rss_anon_kb, wait_log

CH = 64
RELOADS = int(os.environ.get("MEMTEST_RELOADS", "40"))
WARM = 8
SLACK_KB = 32  # 8 pages: a histogram bucket or a log line's page may still land
BAND_KB = 128  # a quarter of the pipeline: what the two-level alternation was


def conf(k):
    return ("[device]\nrate = 4000\nchannels = %d\n[dsp]\nstartup_s = 0\nthreshold_k = %g\n[daemon]\nrecord = auto\n"
            "[muscles]\n%s" % (CH, k, "".join("m%02d = %d\n" % (i, i) for i in range(1, CH + 1))))


d = Daemon(conf(3))
c = Client(d)
samples = []
try:
    r = c.request("/emgd/subscribe", 30, reply="/emgd/subscribed", timeout=5)
    check(r is not None and r[1] == "/emgd/subscribed", "subscribed: %r" % (r,))
    for i in range(1, WARM + RELOADS + 1):
        d.write_conf(conf(3.5 if i % 2 else 3))
        d.signal(signal.SIGHUP)
        check(wait_log(d, "reload: applied", i, 30, c), "reload %d applied" % i)
        c.pump(0.1)  # a few blocks on the new pipeline before the sample
        del c.msgs[:]
        if i > WARM:
            samples.append(rss_anon_kb(d.proc.pid))
        if i % 5 == 0:
            c.send("/emgd/subscribe", 30)
    r = c.request("/emgd/status", reply="/emgd/status", timeout=5)
    check(r is not None and r[3][0] == "recording", "still recording: %r" % (r,))
finally:
    c.close()
    d.close()

half = len(samples) // 2
a, b = samples[:half], samples[half:]
print("RssAnon over reloads %d-%d: %d-%d kB; over %d-%d: %d-%d kB"
      % (WARM + 1, WARM + half, min(a), max(a), WARM + half + 1, WARM + len(samples), min(b), max(b)), flush=True)
check(min(b) - min(a) <= SLACK_KB, "floor %+d kB <= %d kB" % (min(b) - min(a), SLACK_KB))
check(max(b) - max(a) <= SLACK_KB, "ceiling %+d kB <= %d kB" % (max(b) - max(a), SLACK_KB))
check(max(b) - min(b) <= BAND_KB, "band %d kB <= %d kB" % (max(b) - min(b), BAND_KB))
