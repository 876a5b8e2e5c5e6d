# SPDX-License-Identifier: MIT
"""Control plane against the real daemon: leases, unsubscribe, subscriber cap,
per-source rate limit, malformed packets counted and dropped, replies only to
the sender."""
import os
import random
import socket
import struct
import time

from emgtest import Client, Daemon, check

d = Daemon("[osc]\nmax_subscribers = 3\nlease = 2\nmax_lease = 5\nrate_limit = 20\nrate_burst = 20\n")
clients = []
try:
    # Lease: default 2 s; the stream stops once it runs out and the daemon expires it.
    a = Client(d); clients.append(a)
    r = a.request("/emgd/subscribe", reply="/emgd/subscribed")
    check(r and r[1] == "/emgd/subscribed" and r[3] == [2], "subscribe without lease gets the default (2 s)")
    r = a.request("/emgd/subscribe", 999, reply="/emgd/subscribed")
    check(r and r[3] == [5], "a lease above max_lease is clamped (5 s)")
    r = a.request("/emgd/subscribe", 1.0, reply="/emgd/subscribed")
    check(r and r[3] == [1], "a float lease (Pure Data sends floats) is accepted")
    got = a.wait_for(lambda m: m[1] == "/emg/frame", 2)
    check(got is not None, "subscriber receives /emg/frame")
    # Expiry is checked on the daemon's 1 Hz tick: after lease + 1 s tick + margin nothing more arrives.
    a.pump(2.6)
    n = len(a.msgs)
    a.pump(1.5)
    check(len(a.msgs) == n, "nothing arrives after the lease expired (%d new)" % (len(a.msgs) - n))

    # Unsubscribe stops the stream at once.
    r = a.request("/emgd/subscribe", 5, reply="/emgd/subscribed")
    a.wait_for(lambda m: m[1] == "/emg/frame", 2)
    r = a.request("/emgd/unsubscribe", reply="/emgd/unsubscribed")
    check(r and r[1] == "/emgd/unsubscribed", "unsubscribe answered")
    a.pump(0.3)  # packets already in flight
    n = len(a.msgs)
    a.pump(1.0)
    check(len(a.msgs) == n, "no stream after unsubscribe")

    # Subscriber cap: 3 succeed, the 4th gets /emgd/error.
    subs = [Client(d) for _ in range(4)]
    clients.extend(subs)
    res = [s.request("/emgd/subscribe", 5, reply="/emgd/subscribed") for s in subs]
    check(all(r and r[1] == "/emgd/subscribed" for r in res[:3]), "first 3 subscribers accepted")
    check(res[3] and res[3][1] == "/emgd/error" and "limit" in res[3][3][1], "4th subscriber refused: %s" % (res[3][3] if res[3] else None))
    for s in subs[:3]:
        s.request("/emgd/unsubscribe", reply="/emgd/unsubscribed")

    # Rate limit: 200 pings in a burst from one socket; about burst (20) are answered.
    b = Client(d); clients.append(b)
    for _ in range(200):
        b.send("/emgd/ping")
    b.pump(0.5)
    pongs = b.count("/emgd/pong")
    check(10 <= pongs <= 30, "rate limit: %d of 200 pings answered (burst 20, 20/s)" % pongs)

    c = Client(d); clients.append(c)
    time.sleep(1.0)  # let the ping flood's bucket refill (rate limiter, not a sync)
    r = c.request("/emgd/stats", reply="/emgd/stats")
    received, handled, malformed, unknown, denied, limited, rejected, nsubs, web, web_dropped = r[3]
    check(limited >= 150, "rate-limited packets counted (%d)" % limited)
    check(rejected == 1, "cap rejections counted (%d)" % rejected)
    r = c.request("/emgd/nope", reply="/emgd/error")
    check(r and r[3] == ["/emgd/nope", "unknown address"], "unknown address answered with /emgd/error")
    r = c.request("/emgd/calibrate/mvc", reply="/emgd/ok")
    check(r and r[1] == "/emgd/error" and "usage" in r[3][1], "missing arguments answered with usage")
    r = c.request("/emgd/calibrate/mvc", "no_such_muscle", 2.0, reply="/emgd/ok")
    check(r and r[1] == "/emgd/error" and "unknown muscle" in r[3][1], "unknown muscle refused")
    check(d.proc.poll() is None, "daemon still running")
finally:
    for c_ in clients:
        c_.close()
    rc = d.close()
check(rc == 0, "clean exit status on SIGTERM")

# Malformed and random packets, on a daemon whose rate limit lets them all reach the parser:
# counted, dropped, never answered, and the daemon keeps running.
d = Daemon("[osc]\nrate_limit = 100000\nrate_burst = 100000\n")
c = Client(d)
try:
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.settimeout(0.3)
    rnd = random.Random(1)
    bad = [b"", b"x", b"/emg", b"/emgd/ping\0\0", b"/emgd/ping\0\0,i\0\0",  # truncated int
           b"#bundle\0" + b"\0" * 8 + struct.pack(">i", 1000) + b"/x\0\0",  # element overruns
           b"#bundle\0" + b"\0" * 8 + struct.pack(">i", 0),  # zero-size element
           b"\xff" * 9000]  # oversize garbage
    bad += [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 200))) for _ in range(300)]
    # In batches, each followed by a ping answered in order: the daemon has read the
    # batch, so nothing is lost to a full socket buffer (slow under sanitizers).
    for i in range(0, len(bad), 50):
        for p in bad[i:i + 50]:
            raw.sendto(p, ("127.0.0.1", d.port))
        check(c.request("/emgd/ping", reply="/emgd/pong") is not None, "alive after %d bad packets" % (i + 50))
    try:
        raw.recv(2000)
        answered = True
    except socket.timeout:
        answered = False
    check(not answered, "malformed packets get no reply")
    r = c.request("/emgd/stats", reply="/emgd/stats")
    check(r is not None and r[1] == "/emgd/stats", "daemon alive after %d bad packets: stats %s" % (len(bad), r[3] if r else None))
    received, handled, malformed, unknown, denied, limited, rejected, nsubs = r[3][:8]
    check(malformed == len(bad), "every malformed packet counted (%d of %d)" % (malformed, len(bad)))
finally:
    c.close()
    rc = d.close()
check(rc == 0, "clean exit after the malformed flood")
