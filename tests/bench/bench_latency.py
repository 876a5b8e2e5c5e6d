# SPDX-License-Identifier: MIT
"""bench_latency: sample arrival -> OSC packet sent, with the real daemon.

emgd runs on the synth at real-time pace: 256 channels at 2 kHz, one muscle
per channel (the synth's roles on both sides), the "bridge" exercise (all
muscles contract every ~4 s, so onsets and offsets come in bursts of dozens
in the same block - the worst case for the last event of a burst).  One real
OSC subscriber (oscsink) on loopback receives everything.  The daemon's own
histograms (/emgd/latency) time each record from the moment its sample block
arrived in the acquisition thread (CLOCK_MONOTONIC, taken by the synth right
after generating the block) to the return of sendto() on the main thread, for
onset/offset events (sent at once; onsets and offsets take the same path) and
for the metric bundles (50 Hz).  The run lasts until >= 10,000 onsets reached
the subscriber.  Target (DESIGN section 10): event p99 < 1 ms.

Usage: bench_latency.py [--onsets N] [--muscles N] [--rate HZ] [--timeout S] [--rt PRIO]
(--rt: [daemon] rt_priority, SCHED_FIFO for the dsp thread; default 0 as in emgd.conf)
"""
import argparse
import signal
import sys
import time

import benchlib as B
from emgtest import Daemon

ap = argparse.ArgumentParser()
ap.add_argument("--onsets", type=int, default=10000)
ap.add_argument("--muscles", type=int, default=256)
ap.add_argument("--rate", type=float, default=2000)
ap.add_argument("--timeout", type=float, default=900)
ap.add_argument("--rt", type=int, default=0)
a = ap.parse_args()

conf = ("[device]\nrate = %g\nchannels = %d\nscenario = bridge\n" % (a.rate, a.muscles)
        + B.muscles_conf(a.muscles) + "[daemon]\nrt_priority = %d\n" % a.rt)
print("Latency: sample-block arrival in the acquisition thread -> sendto(), real emgd, synth "
      "%d ch x %g Hz \"bridge\", %d muscles, 1 OSC subscriber on loopback, rt_priority %d"
      % (a.muscles, a.rate, a.muscles, a.rt))
print("machine: %s" % B.machine(), flush=True)
d = Daemon(conf)
try:
    sink = B.sink(d, 1, a.timeout)
    t0 = time.time()
    while time.time() - t0 < a.timeout:
        time.sleep(5)
        lat = B.latency(d)
        # events = onsets + offsets, about half each
        if lat and lat[0][0] >= 2 * a.onsets + 500:
            break
    sink.send_signal(signal.SIGTERM)
    res = B.sink_result(sink, 30)
    lat = B.latency(d)
    st = B.query(d, "/emgd/status", "/emgd/status")
    secs = time.time() - t0
finally:
    d.close()

ev, me = lat
print("%.0f s, %d onsets and %d offsets received, %d metric bundles (%d lost), overruns %s"
      % (secs, res["onsets"], res["offsets"], res["ticks"], res["lost_ticks"], st[3] if st else "?"))
print("%-26s | %7s | %8s | %8s | %8s | %8s" % ("record", "count", "p50 ms", "p99 ms", "p99.9 ms", "max ms"))
print("%-26s | %7d | %8.3f | %8.3f | %8.3f | %8.3f" % ("onset/offset events", *ev))
print("%-26s | %7d | %8.3f | %8.3f | %8.3f | %8.3f" % ("metric bundles (50 Hz)", *me))
ok = ev[2] < 1.0 and res["onsets"] >= a.onsets
print("target: event p99 < 1 ms over >= %d onsets: %s (p99 %.3f ms, %d onsets)"
      % (a.onsets, "met" if ok else "NOT met", ev[2], res["onsets"]))
sys.exit(0)
