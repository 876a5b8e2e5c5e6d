# SPDX-License-Identifier: MIT
"""Resident memory stays flat while recording with a subscriber (issue 16 item 12).

Anonymous RSS of the real daemon on the synth grew ~7 kB/min without recording
and ~28 kB/min with `record = auto`, for hours.  The causes, all found with
heaptrack and /proc/PID/pagemap (the heap itself was flat at 2.16 MB):
  - sd_notifyf() once a second: vasprintf's malloc(100) + shrinking realloc
    left 80- and 32-byte pieces in fastbins that never coalesce, so the heap
    top crept up 112 bytes a second;
  - the recorder's pending-annotation queue (4096 x 112 bytes, calloc'd, so not
    resident until written) was walked round, touching a new page every ~36
    annotations until it wrapped after ~20 minutes;
  - the two latency histograms in .bss (20 KiB) became resident bucket by bucket.

The issue's bound: after a 1-minute warm-up, <= 16 kB over 4 minutes, i.e. 4 kB a
minute.  For CI this test keeps that slope but measures a shorter span (WARMUP_S,
SPAN_S, overridable from the environment): growth <= 4 kB x SPAN_S / 60 (8 kB =
2 pages over 2 minutes).  tests/soak.py runs the same check for as long as wanted.
Sampling RssAnon on a timer is the measurement itself, not a synchronisation.
"""
import os
import time

from emgtest import Client, Daemon, check, rss_anon_kb

WARMUP_S = float(os.environ.get("MEMTEST_WARMUP_S", "45"))
SPAN_S = float(os.environ.get("MEMTEST_SPAN_S", "120"))
SLOPE_KB_PER_MIN = 4.0  # the issue: 16 kB over 4 minutes
INTERVAL_S = 10.0


d = Daemon("[daemon]\nrecord = auto\n")
c = Client(d)
samples = []
try:
    r = c.request("/emgd/subscribe", 10, reply="/emgd/subscribed", timeout=5)
    check(r is not None and r[1] == "/emgd/subscribed", "subscribed: %r" % (r,))
    t0 = time.time()
    next_renew = t0 + 3
    next_sample = t0 + WARMUP_S
    end = next_sample + SPAN_S
    frames = 0
    while True:
        now = time.time()
        if now >= next_renew:
            c.send("/emgd/subscribe", 10)  # renew the lease, as a real client does
            next_renew = now + 3
        if now >= next_sample:
            samples.append((now - t0, rss_anon_kb(d.proc.pid)))
            print("  t = %5.0f s  RssAnon %d kB" % samples[-1], flush=True)
            if now >= end:
                break
            next_sample = min(next_sample + INTERVAL_S, end)
        c.pump(min(next_renew, next_sample) - time.time())
        frames += c.count("/emg/frame")
        del c.msgs[:]  # the test's own memory stays flat too
    check(frames > 0.5 * 50 * (time.time() - t0), "the subscriber got the stream (%d frames)" % frames)
    r = c.request("/emgd/status", reply="/emgd/status", timeout=5)
    check(r is not None and r[3][0] == "recording", "still recording: %r" % (r,))
finally:
    c.close()
    d.close()

span = samples[-1][0] - samples[0][0]
growth = samples[-1][1] - samples[0][1]
limit = SLOPE_KB_PER_MIN * span / 60.0
print("RssAnon after %.0f s warm-up: %d kB -> %d kB over %.0f s: %+d kB (limit %.1f kB = %g kB/min)"
      % (samples[0][0], samples[0][1], samples[-1][1], span, growth, limit, SLOPE_KB_PER_MIN), flush=True)
check(growth <= limit, "anonymous RSS growth %+d kB <= %.1f kB over %.0f s" % (growth, limit, span))
