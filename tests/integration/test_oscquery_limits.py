# SPDX-License-Identifier: MIT
"""OSCQuery HTTP under attack, on the real daemon (issue 16 item 7).

Before: 500 connections that trickled a byte now and then denied GET /?HOST_INFO
for as long as they lasted (libmicrohttpd's timeout is an idle timeout, reset
by every byte, and each 127/8 address has its own per-IP budget); any host
could read the namespace whatever [osc] allow said; /emg%00/x was answered as
/emg.  Now every request must be complete within 5 s of its connection
(EMG_OSCQUERY_DEADLINE_MS), connections are capped (64, 8 per address), the
accept policy applies [osc] allow (loopback always), and a NUL or broken
escape in the URL is 400.

The attackers trickle one byte per second (faster than any idle timeout) and
never reconnect; the legitimate client retries until it is answered."""
import os
import signal
import socket
import threading
import time

from emgtest import Daemon, check, free_tcp_port

N_ATTACK = 500
DEADLINE = 5.0



def get(host, port, target, src=None, timeout=2.0):
    """(status, body) of GET target, or (None, b"") if refused or unanswered."""
    s = socket.socket()
    s.settimeout(timeout)
    try:
        if src:
            s.bind((src, 0))
        s.connect((host, port))
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError:
        return None, b""
    finally:
        s.close()
    if not data.startswith(b"HTTP/1."):
        return None, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def local_address():
    """This host's own non-loopback IPv4 address, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        a = s.getsockname()[0]
    except OSError:
        a = None
    s.close()
    return None if not a or a.startswith("127.") else a


port = free_tcp_port()
d = Daemon("[oscquery]\nenabled = yes\nhttp = 127.0.0.1:%d\n" % port)
try:
    st, body = get("127.0.0.1", port, b"/?HOST_INFO")
    check(st == 200 and b"OSC_PORT" in body, "HOST_INFO answered before the attack")

    # ---- NUL in the URL ----
    st, body = get("127.0.0.1", port, b"/emg%00/x")
    check(st == 400, "/emg%%00/x is refused with 400, not answered as /emg: %s %r" % (st, body[:60]))
    st, _ = get("127.0.0.1", port, b"/emg%2")
    check(st == 400, "a broken escape is 400")

    # ---- slowloris from 500 loopback addresses ----
    socks = []
    t0 = time.monotonic()
    for i in range(N_ATTACK):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind(("127.0.%d.%d" % (10 + i // 250, 1 + i % 250), 0))
            s.connect_ex(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    stop = threading.Event()
    first_round = threading.Event()
    alive = [len(socks)]

    def trickle():
        # one byte per socket per second: every idle timeout keeps being reset
        head = b"GET /?HOST_INFO HTTP/1.1\r\nX-Slow: "
        sent = {}
        while not stop.is_set():
            n = 0
            for s in socks:
                if s.fileno() < 0:
                    continue
                k = sent.get(s, 0)
                try:
                    if s.recv(1) == b"":
                        raise ConnectionResetError  # the server cut it
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()  # a slowloris does not come back
                    continue
                try:
                    s.send(head[k:k + 1] if k < len(head) else b"a")
                    sent[s] = k + 1
                    n += 1
                except BlockingIOError:
                    n += 1
                except OSError:
                    s.close()
            alive[0] = n
            first_round.set()  # every attacker has connected and sent its first byte
            stop.wait(1.0)

    th = threading.Thread(target=trickle)
    th.start()
    first_round.wait(10)
    t_attack, t0 = t0, time.monotonic()
    # the attack holds every slot it can get; the legitimate client keeps asking
    answered_at = None
    while time.monotonic() - t0 < DEADLINE + 10:
        st, body = get("127.0.0.1", port, b"/?HOST_INFO", timeout=1.0)
        if st == 200 and b"OSC_PORT" in body:
            answered_at = time.monotonic() - t0
            break
    # the attackers keep trickling: by the deadline every one of them is cut
    while time.monotonic() - t_attack < DEADLINE + 3 and alive[0] > 0:
        stop.wait(0.2)
    cut_at = time.monotonic() - t_attack
    stop.set()
    th.join()
    held = alive[0]
    for s in socks:
        s.close()
    print("slowloris: %d connections trickling 1 byte/s; HOST_INFO answered %s s into the attack; "
          "%d attacker connections alive %.1f s after they connected"
          % (len(socks), "%.1f" % answered_at if answered_at is not None else "never", held, cut_at))
    check(answered_at is not None and answered_at <= DEADLINE + 3,
          "GET /?HOST_INFO is answered within the %g s request deadline + 3 s during the attack"
          % DEADLINE)
    check(held == 0, "every trickling connection was cut within %.1f s (deadline %g s)" % (cut_at, DEADLINE))
    check(d.proc.poll() is None, "daemon alive after the attack")

    # ---- allow list: [osc] allow applies to HTTP ----
    me = local_address()
    if me is None:
        print("skip: no non-loopback address for the allow-list part")
    else:
        def reload(conf):
            n = d.logtext().count("reload: applied")
            d.write_conf(conf)
            d.signal(signal.SIGHUP)
            end = time.time() + 10
            while time.time() < end and d.logtext().count("reload: applied") == n:
                time.sleep(0.05)  # polling the log file: there is no event to await
            check(d.logtext().count("reload: applied") > n, "reload applied")

        reload("[oscquery]\nenabled = yes\nhttp = 0.0.0.0:%d\n" % port)
        st, data = get(me, port, b"/?HOST_INFO", src=me)
        check(st is None and data == b"", "%s (not in allow) gets 0 bytes: %s %r" % (me, st, data[:40]))
        st, _ = get("127.0.0.1", port, b"/?HOST_INFO")
        check(st == 200, "loopback is always served")
        reload("[osc]\nallow = %s/32\n[oscquery]\nenabled = yes\nhttp = 0.0.0.0:%d\n" % (me, port))
        st, _ = get(me, port, b"/?HOST_INFO", src=me)
        check(st == 200, "after a reload with allow = %s/32 it is served" % me)
finally:
    d.close()
print("PASS")
