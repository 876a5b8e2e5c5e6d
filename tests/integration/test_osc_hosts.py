# SPDX-License-Identifier: MIT
"""Per-host limits on the real daemon (issue 16 items 5 and 6).

5: every subscribed port of a host got its own token bucket, seeded from the
   host's without debiting it: 64 subscribed ports of one host got 1,008 of
   1,024 pings answered (burst 100).  Now all ports of a host share one bucket.
6: one host could hold every subscriber slot for a whole lease.  Now
   [osc] max_subscribers_per_host (default 16; all of loopback is one host).

The attacker's sockets are bound to 127.0.0.9, so its budget is not the one
the test's own client (127.0.0.1) spends.  Replies are awaited, not slept for:
emgd handles datagrams in order on one socket, so once the marker client's
pong is back every earlier ping has been answered or dropped."""
import select
import socket
import struct
import time

from emgtest import Client, Daemon, check

HOST = "127.0.0.9"


def osc(path, types="", *args):
    def pad(b):
        b += b"\0"
        return b + b"\0" * (-len(b) % 4)
    out = pad(path.encode()) + pad(("," + types).encode())
    for t, a in zip(types, args):
        out += struct.pack(">i", a) if t == "i" else pad(a.encode())
    return out


def osc_strings(data):
    """The address and the string arguments of a plain message."""
    parts = [p for p in data.split(b"\0") if p]
    return [p.decode("utf-8", "replace") for p in parts]


def drain(socks):
    """Every datagram waiting on socks, as (sock index, bytes)."""
    got = []
    while True:
        r, _, _ = select.select(socks, [], [], 0)
        if not r:
            return got
        for s in r:
            got.append((socks.index(s), s.recv(65536)))


def sync(c):
    """A pong to our own ping: the daemon has handled everything sent before it.

    A slow (sanitized) daemon's socket buffer can overflow under the flood and the kernel
    drops the ping itself, so it is resent until answered; any answer still marks the end."""
    r = None
    end = time.monotonic() + 10
    while r is None and time.monotonic() < end:
        r = c.request("/emgd/ping", reply="/emgd/pong", timeout=0.5)
    check(r is not None and r[1] == "/emgd/pong", "the marker ping is answered")


def open_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((HOST, 0))
        socks.append(s)
    return socks


# ---- item 5: one bucket per host, however many of its ports subscribe ----
d = Daemon("[osc]\nrate_limit = 50\nrate_burst = 100\nmax_subscribers = 64\n"
           "max_subscribers_per_host = 64\n")
c = Client(d)
socks = open_ports(64)
try:
    t0 = time.monotonic()
    for s in socks:
        s.sendto(osc("/emgd/subscribe", "i", 300), ("127.0.0.1", d.port))
    for _ in range(16):
        for s in socks:
            s.sendto(osc("/emgd/ping"), ("127.0.0.1", d.port))
    sync(c)
    elapsed = time.monotonic() - t0
    got = drain(socks)
    subscribed = sum(1 for _, b in got if b.startswith(b"/emgd/subscribed"))
    pongs = sum(1 for _, b in got if b.startswith(b"/emgd/pong"))
    budget = 100 + 50 * elapsed
    print("64 ports of %s: %d subscribed, %d of 1024 pings answered in %.3f s (budget %.0f)"
          % (HOST, subscribed, pongs, elapsed, budget))
    check(subscribed == 64, "all 64 ports subscribed (per-host limit raised to 64 here)")
    check(subscribed + pongs <= budget + 1,
          "the host's 64 subscribed ports share one budget: %d answers <= %.0f (was 1,008 pongs)"
          % (subscribed + pongs, budget))
    # sustained: 1 s later one host has earned 50 tokens, not 64 x 50
    drain(socks)
    t1 = time.monotonic()
    c.wait_for(lambda m: False, 1.0)  # a second of the stream passes; nothing to await
    for _ in range(4):
        for s in socks:
            s.sendto(osc("/emgd/ping"), ("127.0.0.1", d.port))
    sync(c)
    dt = time.monotonic() - t1
    total = time.monotonic() - t0
    pongs2 = sum(1 for _, b in drain(socks) if b.startswith(b"/emgd/pong"))
    print("after %.2f s: %d of 256 pings answered" % (dt, pongs2))
    # the bucket is the host's over both rounds: what the first round left unused
    # (its budget minus its answers) carries over, so bound the two rounds together
    check(subscribed + pongs + pongs2 <= 100 + 50 * total + 1,
          "sustained rate is the host's: %d answers in %.2f s <= 100 + 50/s (64 buckets: 256 pongs)"
          % (subscribed + pongs + pongs2, total))
finally:
    for s in socks:
        s.close()
    c.close()
    d.close()

# ---- item 6: one host cannot take every subscriber slot ----
d = Daemon("[osc]\nmax_subscribers = 64\nrate_burst = 200\n")
c = Client(d)
socks = open_ports(64)
try:
    for s in socks:
        s.sendto(osc("/emgd/subscribe", "i", 300), ("127.0.0.1", d.port))
    sync(c)
    got = drain(socks)
    subscribed = sum(1 for _, b in got if b.startswith(b"/emgd/subscribed"))
    errors = [osc_strings(b) for _, b in got if b.startswith(b"/emgd/error")]
    print("64 subscribes from %s: %d subscribed, %d refused" % (HOST, subscribed, len(errors)))
    check(subscribed == 16, "default max_subscribers_per_host = 16 subscriptions for one host")
    check(len(errors) == 48 and all("max_subscribers_per_host = 16" in e[-1] for e in errors),
          "the other 48 get /emgd/error naming the limit: %r" % (errors[0] if errors else None))
    r = c.request("/emgd/stats", reply="/emgd/stats")
    check(r is not None and r[3][7] == 16 and r[3][6] >= 48,
          "/emgd/stats: 16 subscribers, 48 rejected: %r" % (r[3] if r else None))
    # all of loopback is one host: 127.0.0.1 does not get slots of its own either
    r = c.request("/emgd/subscribe", reply="/emgd/subscribed")
    check(r is not None and r[1] == "/emgd/error" and "per host" in r[3][1],
          "another loopback address shares the limit: %r" % (r[3] if r else None))
    # a slot freed by the host is usable again
    socks[0].sendto(osc("/emgd/unsubscribe"), ("127.0.0.1", d.port))
    r = c.request("/emgd/subscribe", reply="/emgd/subscribed")
    check(r is not None and r[1] == "/emgd/subscribed", "after an unsubscribe the slot is free")
finally:
    for s in socks:
        s.close()
    c.close()
    d.close()
print("PASS")
