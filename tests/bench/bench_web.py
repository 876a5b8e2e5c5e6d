# SPDX-License-Identifier: MIT
"""bench_web: 20 browser viewers on the OSCQuery WebSocket next to 16 UDP subscribers.

Two runs of the real emgd on the synth (default 6-muscle map, 2 kHz, 50 Hz publish), each
--seconds long after 3 s of warm-up, with 16 UDP subscribers (oscsink) taking every metric
bundle:
  1. UDP only;
  2. plus 20 WebSocket viewers (Node's `ws`, web_load.js: each from its own loopback
     address, LISTENing to what the browser view LISTENs to plus /emg/frame, asking
     /emgd/latency every 2 s) and one stalled viewer (a raw socket with a 2 KiB receive
     buffer that LISTENs to everything and never reads).
Measured: emgd's CPU (utime + stime from /proc, % of one core) and RSS; lost metric bundles
at the UDP subscribers (gaps in /emg/frame ticks); overruns (/emgd/status); whether the main
loop ever blocked - the round trip of a UDP /emgd/ping sent every 50 ms throughout, and
emgd's own /emgd/latency (block arrival -> sendto); per viewer the frames received and the
ticks it lost; the frames dropped for the stalled viewer (/emgd/stats, the per-client
drop-oldest queue).

Usage: bench_web.py [--seconds S] [--viewers N]   (needs node and npm's registry for `ws`)
"""
import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import benchlib as B
from emgtest import Daemon, free_tcp_port, osc, osc_parse

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--viewers", type=int, default=20)
a = ap.parse_args()
HERE = os.path.dirname(os.path.abspath(__file__))
MUSCLES = ["glute_max_l", "glute_max_r", "hamstring_l", "hamstring_r", "glute_med_l", "hip_flex_l"]
VIEW = ["/emgd/status", "/emgd/error", "/emgd/calibrated", "/emg/order", "/emg/levels", "/emg/rep"] + \
    ["/emg/%s/%s" % (m, k) for m in MUSCLES for k in ("rms", "active", "onset")]

if not shutil.which("node") or not shutil.which("npm"):
    print("SKIP: node/npm not installed (the viewers are Node's ws)")
    sys.exit(77)
npmdir = tempfile.mkdtemp(prefix="emgd-bench-npm-")
r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", npmdir, "ws@8"],
                   capture_output=True, text=True, timeout=300)
WS = os.path.join(npmdir, "node_modules", "ws")
if r.returncode != 0:
    shutil.rmtree(npmdir, ignore_errors=True)
    print("SKIP: npm install ws failed: %s" % r.stderr.strip()[-200:])
    sys.exit(77)


class Pinger(threading.Thread):
    """/emgd/ping over UDP every 50 ms; the round trips say whether the main loop blocked."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.rtt, self.lost, self.stop = port, [], 0, False
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(1.0)

    def run(self):
        ping = osc("/emgd/ping")
        while not self.stop:
            t0 = time.perf_counter()
            self.s.sendto(ping, ("127.0.0.1", self.port))
            try:
                while osc_parse(self.s.recv(2048))[0] != "/emgd/pong":
                    pass
                self.rtt.append((time.perf_counter() - t0) * 1000)
            except socket.timeout:
                self.lost += 1
            time.sleep(max(0, 0.05 - (time.perf_counter() - t0)))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))] if v else float("nan")


def stalled_viewer(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    for p in VIEW + ["/emg/frame"] + ["/emg/%s/level" % m for m in MUSCLES]:
        payload = json.dumps({"COMMAND": "LISTEN", "DATA": p}).encode()
        m = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + m + bytes(c ^ m[i & 3] for i, c in enumerate(payload)))
    return s  # never read from again


def run(viewers):
    port = free_tcp_port()
    d = Daemon("[oscquery]\nenabled = yes\nhttp = 127.0.0.1:%d\n[muscles]\n%s" %
               (port, "".join("%s = %d\n" % (m, i + 1) for i, m in enumerate(MUSCLES))))
    pid = d.proc.pid
    load, stalled, out = None, None, {}
    try:
        sink = B.sink(d, 16, a.seconds + 8)
        if viewers:
            load = subprocess.Popen(["node", os.path.join(HERE, "web_load.js"), "ws://127.0.0.1:%d/" % port,
                                     str(viewers), str(a.seconds + 6), ",".join(VIEW + ["/emg/frame"])],
                                    stdout=subprocess.PIPE, text=True, env=dict(os.environ, WS_MODULE=WS))
            if load.stdout.readline().strip() != "READY":
                raise SystemExit("the viewers did not connect")
            stalled = stalled_viewer(port)
        time.sleep(3)
        pinger = Pinger(d.port)
        pinger.start()
        c0, w0 = B.proc_cpu_s(pid), time.time()
        time.sleep(a.seconds)
        c1, w1 = B.proc_cpu_s(pid), time.time()
        pinger.stop = True
        pinger.join()
        out["cpu"] = 100.0 * (c1 - c0) / (w1 - w0)
        out["mem"] = B.proc_mem_kb(pid)
        out["status"] = B.query(d, "/emgd/status", "/emgd/status")
        out["stats"] = B.query(d, "/emgd/stats", "/emgd/stats")
        out["lat"] = B.latency(d)
        out["rtt"], out["ping_lost"] = pinger.rtt, pinger.lost
        if load:
            out["viewers"] = [json.loads(l) for l in load.communicate(timeout=30)[0].splitlines() if l.startswith("{")]
        sink.terminate()
        out["udp"] = B.sink_result(sink, 30)
    finally:
        if load and load.poll() is None:
            load.kill()
        if stalled:
            stalled.close()
        d.close()
    return out


print("Web viewers: real emgd on the synth; machine: %s" % B.machine(), flush=True)
try:
    base = run(0)
    web = run(a.viewers)
finally:
    shutil.rmtree(npmdir, ignore_errors=True)

vs = web["viewers"]
cols = ("16 UDP subscribers", "+ %d WS viewers + 1 stalled" % a.viewers)


def row(name, f):
    print("| %-46s | %-22s | %-28s |" % (name, f(base), f(web)))


print("| %-46s | %-22s | %-28s |" % (("%.0f s each" % a.seconds,) + cols))
print("|%s|%s|%s|" % ("-" * 48, "-" * 24, "-" * 30))
row("emgd CPU, % of one core", lambda r: "%.1f %%" % r["cpu"])
row("emgd RSS (peak)", lambda r: "%.1f MB (%.1f)" % (r["mem"]["VmRSS"] / 1024, r["mem"]["VmHWM"] / 1024))
row("UDP: metric bundles received / lost (16 subs)", lambda r: "%d / %d" % (r["udp"]["ticks"], r["udp"]["lost_ticks"]))
row("overruns (/emgd/status)", lambda r: "%d" % r["status"][3])
row("main loop: UDP ping RTT p50 / p99 / max", lambda r: "%.2f / %.2f / %.2f ms" % (pct(r["rtt"], 50), pct(r["rtt"], 99), max(r["rtt"])))
row("  pings unanswered within 1 s", lambda r: "%d of %d" % (r["ping_lost"], r["ping_lost"] + len(r["rtt"])))
row("metric bundle latency p99 / max (/emgd/latency)", lambda r: "%.2f / %.2f ms" % (r["lat"][1][2], r["lat"][1][4]))
row("WebSocket clients (/emgd/stats)", lambda r: "%d" % r["stats"][8])
print("| %-46s | %-22s | %-28s |" % ("viewers: ticks received each, min-max", "-", "%d-%d" % (min(v["ticks"] for v in vs), max(v["ticks"] for v in vs))))
print("| %-46s | %-22s | %-28s |" % ("viewers: ticks lost, sum (worst one)", "-", "%d (%d)" % (sum(v["lost"] for v in vs), max(v["lost"] for v in vs))))
print("| %-46s | %-22s | %-28s |" % ("viewers: /emgd/latency answers each, min", "-", "%d" % min(v["latency"] for v in vs)))
print("| %-46s | %-22s | %-28s |" % ("stalled viewer: frames dropped (/emgd/stats)", "-", "%d" % web["stats"][9]))
ok = (web["udp"]["lost_ticks"] == 0 and base["udp"]["lost_ticks"] == 0 and web["status"][3] == 0 and
      len(vs) == a.viewers and all(v["closed"] is None for v in vs) and web["stats"][9] > 0 and web["ping_lost"] == 0)
print("target: no UDP bundle lost, no overrun, every viewer served, the stalled one shed (counted): %s"
      % ("met" if ok else "NOT met"))
sys.exit(0 if ok else 1)
