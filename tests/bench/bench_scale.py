# SPDX-License-Identifier: MIT
"""bench_scale: the whole daemon at 256 channels x 10 kHz, and 64 subscribers.

1. emgd on the synth, 256 channels at 10 kHz, one muscle per channel (the
   "session" script: rest, bridges, thrusts, abduction, prone extension),
   every channel through filter, envelopes, onsets, %MVC and OSC, for 60 s,
   with one subscriber (oscsink) taking every metric bundle.  CPU: the
   daemon's utime + stime over the steady state (from /proc, after 5 s of
   warm-up) and over its whole life (getrusage(RUSAGE_CHILDREN) after it
   exits), as % of one core.  Memory: VmHWM/VmRSS, split into private
   (RssAnon) and file-backed pages (RssFile: the binary and its shared
   libraries).  Overruns: /emgd/status and the subscriber's /emg/frame.
   Config mlock = no, like the tests: with mlock = yes every page of every
   mapped library is locked and resident.
2. 64 subscribers, 100 Hz publish rate, the default 6-muscle map at 2 kHz,
   30 s: every subscriber must receive every bundle (/emg/frame ticks
   without a gap).

Usage: bench_scale.py [--seconds S] [--subscribers N] [--sub-seconds S]
"""
import argparse
import resource
import sys
import time

import benchlib as B
from emgtest import Daemon

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--subscribers", type=int, default=64)
ap.add_argument("--sub-seconds", type=float, default=30)
a = ap.parse_args()

print("Scale: real emgd on the synth; machine: %s" % B.machine(), flush=True)

# ---- 1. 256 channels at 10 kHz ----
conf = "[device]\nrate = 10000\nchannels = 256\nscenario = session\n" + B.muscles_conf(256)
ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
start = time.time()
d = Daemon(conf)
pid = d.proc.pid
try:
    sink = B.sink(d, 1, a.seconds + 10)
    time.sleep(5)
    c0, w0 = B.proc_cpu_s(pid), time.time()
    time.sleep(a.seconds - 5)
    c1, w1 = B.proc_cpu_s(pid), time.time()
    mem = B.proc_mem_kb(pid)
    st = B.query(d, "/emgd/status", "/emgd/status")
    lat = B.latency(d)
    sink.terminate()
    res = B.sink_result(sink, 30)
finally:
    d.close()
life = time.time() - start
ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu_life = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
steady = 100.0 * (c1 - c0) / (w1 - w0)
overruns = st[3] if st else -1
print("%-44s | %s" % ("256 ch x 10 kHz, 256 muscles, %.0f s" % a.seconds, "value"))
print("%-44s | %.1f %%" % ("CPU, steady state (/proc, %.0f s)" % (w1 - w0), steady))
print("%-44s | %.1f %%" % ("CPU, whole life incl. start-up (getrusage)", 100.0 * cpu_life / life))
print("%-44s | %.1f MB (peak %.1f)" % ("RSS", mem["VmRSS"] / 1024, mem["VmHWM"] / 1024))
print("%-44s | %.1f MB private + %.1f MB binary/shared libs"
      % ("  of which", mem["RssAnon"] / 1024, mem["RssFile"] / 1024))
print("%-44s | %d (subscriber saw %d dropped samples)" % ("overruns (/emgd/status)", overruns, res["dropped_samples"]))
print("%-44s | %d received, %d lost" % ("metric bundles at the subscriber", res["ticks"], res["lost_ticks"]))
if lat:
    print("%-44s | p50 %.3f, p99 %.3f, p99.9 %.3f, max %.3f ms (%d)"
          % ("latency of onset/offset events", lat[0][1], lat[0][2], lat[0][3], lat[0][4], lat[0][0]))
    print("%-44s | p50 %.3f, p99 %.3f, p99.9 %.3f, max %.3f ms (%d)"
          % ("latency of metric bundles", lat[1][1], lat[1][2], lat[1][3], lat[1][4], lat[1][0]))
cpu_ok, rss_ok, ov_ok = steady < 25, mem["VmHWM"] < 10 * 1024, overruns == 0 and res["dropped_samples"] == 0
print("target: CPU < 25 %% of a core: %s; RSS < 10 MB: %s; zero overruns: %s"
      % ("met" if cpu_ok else "NOT met", "met" if rss_ok else "NOT met (%.1f MB)" % (mem["VmHWM"] / 1024),
         "met" if ov_ok else "NOT met"), flush=True)

# ---- 2. 64 subscribers at 100 Hz ----
# every subscriber is on loopback, which counts as one host for max_subscribers_per_host
conf2 = "[osc]\npublish_rate = 100\nmax_subscribers = %d\nmax_subscribers_per_host = %d\n" % (
    (max(64, a.subscribers),) * 2)
d = Daemon(conf2)
pid = d.proc.pid
try:
    sink = B.sink(d, a.subscribers, a.sub_seconds)
    time.sleep(2)
    c0, w0 = B.proc_cpu_s(pid), time.time()
    res = B.sink_result(sink, a.sub_seconds + 30)
    c1, w1 = B.proc_cpu_s(pid), time.time()
    lat = B.latency(d)
finally:
    d.close()
print("%d subscribers x 100 Hz, 6 muscles at 2 kHz, %.0f s: %d/%d subscribed, %d bundles received "
      "(fewest per subscriber %d), %d lost, %d duplicated, %d out of order; emgd CPU %.1f %%"
      % (a.subscribers, res["seconds"], res["subscribed"], a.subscribers, res["ticks"], res["min_ticks"],
         res["lost_ticks"], res["duplicate_ticks"], res["out_of_order"], 100.0 * (c1 - c0) / (w1 - w0)))
if lat:
    print("  metric bundle latency (block arrival -> sendto to every subscriber done): "
          "p50 %.3f, p99 %.3f, p99.9 %.3f, max %.3f ms" % lat[1][1:5])
print("target: %d subscribers at 100 Hz, zero lost bundles: %s"
      % (a.subscribers, "met" if res["lost_ticks"] == 0 and res["subscribed"] == a.subscribers else "NOT met"))
sys.exit(0)
