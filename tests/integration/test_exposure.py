# SPDX-License-Identifier: MIT
"""Network exposure of the control port, end to end over a real non-loopback link.

A network namespace joined to the host by a veth pair plays a remote host
(10.213.N.2); emgd listens on 0.0.0.0.  Every packet on the link is captured
(AF_PACKET) so bytes are counted on the wire, not by emgd itself:
  - control is loopback-only by default (built-in listen address);
  - without an allow list the remote host gets nothing back for any request,
    spoofed sources neither: amplification (bytes sent / bytes received from an
    unknown source) = 0;
  - with `allow = 10.213.N.2/32` it is served, and the bytes answered per byte
    received are measured per control message (printed as a table);
  - no reflection: every packet emgd puts on the link goes to an address that
    itself sent emgd a packet; a subscription from one socket never sends
    anything to another.
Needs root and `ip netns` (skipped otherwise)."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from emgtest import EMGD, Client, Daemon, check, free_udp_port

N = 1 + os.getpid() % 250
NS = "emgdx%d" % os.getpid()
HOST_IF, PEER_IF = "emgh%d" % (os.getpid() % 100000), "emgp%d" % (os.getpid() % 100000)
HOST_IP, PEER_IP = "10.213.%d.1" % N, "10.213.%d.2" % N
SPOOF = ["10.213.%d.%d" % (N, k) for k in (3, 4)]


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def setup_netns():
    steps = [["ip", "netns", "add", NS],
             ["ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF],
             ["ip", "link", "set", PEER_IF, "netns", NS],
             ["ip", "addr", "add", HOST_IP + "/29", "dev", HOST_IF],
             ["ip", "link", "set", HOST_IF, "up"],
             ["ip", "netns", "exec", NS, "ip", "addr", "add", PEER_IP + "/29", "dev", PEER_IF],
             ["ip", "netns", "exec", NS, "ip", "link", "set", PEER_IF, "up"],
             ["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"]]
    for s in steps:
        r = sh(*s)
        if r.returncode != 0:
            return "%s: %s" % (" ".join(s), r.stderr.strip())
    return None


def teardown_netns():
    sh("ip", "link", "del", HOST_IF)
    sh("ip", "netns", "del", NS)


# ---- the remote host's client, run inside the namespace ----------------------------------
REMOTE = r'''
import json, socket, struct, sys, time
daemon, port, spoof = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def pad(b): return b + b"\0" * (4 - len(b) % 4)
def osc(path, tags="", *args):
    data = b""
    for t, a in zip(tags, args):
        data += struct.pack(">i", a) if t == "i" else struct.pack(">f", a) if t == "f" else pad(a.encode())
    return pad(path.encode()) + pad(("," + tags).encode()) + data
msgs = {"ping": osc("/emgd/ping"), "status": osc("/emgd/status"), "stats": osc("/emgd/stats"),
        "latency": osc("/emgd/latency"), "subscribe": osc("/emgd/subscribe", "i", 2),
        "unsubscribe": osc("/emgd/unsubscribe"), "marker": osc("/emgd/marker", "s", "remote"),
        "calibrate/mvc (bad)": osc("/emgd/calibrate/mvc", "s", "nope"),
        "record/stop": osc("/emgd/record/stop"), "unknown address": osc("/x"),
        "malformed": b"\xff" * 20}
def drain(s, t):
    n = b = 0
    s.settimeout(t)
    try:
        while True:
            b += len(s.recv(70000)); n += 1
    except socket.timeout:
        pass
    return n, b
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("0.0.0.0", 0))
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); other.bind(("0.0.0.0", 0))
res = {"per_message": {}}
for name, m in msgs.items():
    a.sendto(m, (daemon, port))
    if name == "subscribe":   # the answer, not the stream that follows it
        n = b = 0
        a.settimeout(0.5)
        end = time.time() + 1
        while time.time() < end and not n:
            try:
                p = a.recv(70000)
            except socket.timeout:
                break
            if p.startswith(b"/emgd/subscribed"):
                n, b = 1, len(p)
        a.sendto(msgs["unsubscribe"], (daemon, port)); time.sleep(0.1); drain(a, 0.3)
    else:
        n, b = drain(a, 0.25)
    res["per_message"][name] = [len(m), n, b]
# a subscription streams to the subscriber only
a.sendto(msgs["subscribe"], (daemon, port))
res["stream"] = drain(a, 1.0)
res["other_socket"] = drain(other, 0.1)
a.sendto(msgs["unsubscribe"], (daemon, port)); drain(a, 0.3)
# spoofed sources (raw IPv4 + UDP): whatever they ask, nothing must come back to anyone
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for src in spoof:
    for m in (msgs["subscribe"], msgs["stats"], msgs["ping"]):
        udp = struct.pack(">HHHH", 40000, port, 8 + len(m), 0) + m
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(daemon))
        raw.sendto(ip + udp, (daemon, 0))
time.sleep(0.5)
print(json.dumps(res))
'''


def remote(daemon_ip, port):
    out = subprocess.run(["ip", "netns", "exec", NS, "/usr/bin/python3", "-c", REMOTE, daemon_ip,
                          str(port)] + SPOOF, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        print(out.stderr)
    check(out.returncode == 0, "remote client ran in the namespace")
    return json.loads(out.stdout)


class Capture(threading.Thread):
    """Every IPv4/UDP packet on an interface: (t, src, sport, dst, dport, payload bytes)."""

    def __init__(self, ifname):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.s.bind((ifname, 0))
        self.s.settimeout(0.2)
        self.pkts = []
        self.stop = False
        self.start()

    def run(self):
        while not self.stop:
            try:
                f = self.s.recv(70000)
            except socket.timeout:
                continue
            if len(f) < 42 or f[12:14] != b"\x08\x00" or f[23] != 17:
                continue
            ihl = (f[14] & 15) * 4
            src, dst = socket.inet_ntoa(f[26:30]), socket.inet_ntoa(f[30:34])
            sport, dport, ulen = struct.unpack(">HHH", f[14 + ihl:14 + ihl + 6])
            self.pkts.append((time.time(), src, sport, dst, dport, ulen - 8))

    def close(self):
        self.stop = True
        self.join()
        self.s.close()


# ---- default: loopback only ---------------------------------------------------------------
out = subprocess.run([EMGD, "--check-config"], capture_output=True, text=True)
check(out.returncode == 0 and "OSC 127.0.0.1:" in out.stdout, "control is loopback-only by default: %s" % out.stdout.strip())

if os.getuid() != 0:
    print("SKIP: needs root for a network namespace")
    sys.exit(77)
err = setup_netns()
if err:
    teardown_netns()
    print("SKIP: no network namespace here (%s)" % err)
    sys.exit(77)

port = free_udp_port()
d = None
cap = None
try:
    d = Daemon("[osc]\nlisten = 0.0.0.0:%d\n" % port, port=port)
    lo = Client(d)
    cap = Capture(HOST_IF)

    # 1. no allow list: the remote host and spoofed sources get nothing
    t0 = time.time()
    res = remote(HOST_IP, port)
    time.sleep(0.3)
    wire = [p for p in cap.pkts if p[0] >= t0]
    rx = sum(p[5] for p in wire if p[3] == HOST_IP and p[4] == port)
    tx = sum(p[5] for p in wire if p[1] == HOST_IP and p[2] == port)
    got = sum(v[1] for v in res["per_message"].values()) + res["stream"][0] + res["other_socket"][0]
    check(rx > 0 and tx == 0 and got == 0,
          "no allow list: %d bytes from the remote host (and spoofed sources), %d bytes back: amplification %.1f" % (rx, tx, tx / rx))
    st = lo.request("/emgd/stats", reply="/emgd/stats")[3]
    check(st[4] >= len(res["per_message"]) + 6, "every remote packet counted as denied (%d)" % st[4])
    unknown_factor = tx / rx

    # 2. allow the remote host: served, amplification measured per message, no reflection
    with open(d.conf, "a") as f:
        f.write("[osc]\nallow = %s/32\n" % PEER_IP)
    n = d.logtext().count("reload: applied")
    d.signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and d.logtext().count("reload: applied") == n:
        time.sleep(0.05)
    t0 = time.time()
    res = remote(HOST_IP, port)
    time.sleep(0.3)
    wire = [p for p in cap.pkts if p[0] >= t0]
    pm = res["per_message"]
    check(pm["ping"][1] == 1 and pm["subscribe"][1] == 1, "allowed remote host is answered: %s" % pm)
    check(res["stream"][0] >= 20, "its subscription streams to it (%d packets in 1 s)" % res["stream"][0])
    check(res["other_socket"][0] == 0, "nothing reaches another socket of the same host")
    askers = set()
    reflected = []
    for p in sorted(wire):
        if p[3] == HOST_IP and p[4] == port:
            askers.add((p[1], p[2]))
        elif p[1] == HOST_IP and p[2] == port and (p[3], p[4]) not in askers:
            reflected.append(p)
    check(not reflected, "no reflection: every packet emgd sent went to an address that had sent to it (%d packets checked)"
          % sum(1 for p in wire if p[1] == HOST_IP))
    spoofed_back = [p for p in wire if p[1] == HOST_IP and p[3] in SPOOF]
    check(not spoofed_back, "spoofed sources outside the allow list get nothing")
    print("\nbytes answered per byte received, allowed remote host (UDP payload):")
    print("%-22s %8s %8s %8s" % ("message", "in", "out", "factor"))
    print("%-22s %8d %8d %8.2f" % ("(unknown source, any)", rx, 0, unknown_factor))
    for name, (ln, k, b) in pm.items():
        print("%-22s %8d %8d %8.2f" % (name, ln, b, b / ln))
    check(pm["malformed"][2] == 0, "malformed packets get no reply even from an allowed host")
    check(max(b for _, _, b in pm.values()) <= 1472, "every reply fits one 1472-byte datagram")
    lo.close()
finally:
    if cap:
        cap.close()
    if d:
        rc = d.close()
    teardown_netns()
check(rc == 0, "clean exit")
