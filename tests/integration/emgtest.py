# SPDX-License-Identifier: MIT
"""Helpers for integration tests: run the real emgd binary, talk to it with python3-liblo.

Every wait is on a real event (a reply, a message, process exit) with a deadline;
nothing sleeps for a fixed time hoping the daemon got there.
"""
import atexit
import base64
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import liblo

EMGD = os.environ.get("EMGD", "emgd")
EMGCTL = os.environ.get("EMGCTL", "emgctl")


def _ephemeral_low():
    """The lowest port the kernel hands out to unbound sockets (ip_local_port_range)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_port(kind):
    """A port free for `kind` now, below the kernel's ephemeral range.  A port the
    kernel picked (bind to 0) is in that range, where the client sockets of the
    tests running beside this one get theirs: one of them could take it before
    emgd binds it (an OSCQuery test saw "connection refused" under TSan)."""
    hi = min(_ephemeral_low(), 65536)
    lo = 20000 if hi > 21000 else 1024
    rng = random.Random(os.getpid() ^ int(time.monotonic_ns()))
    for _ in range(200):
        port = rng.randrange(lo, hi)
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, kind)  # a crowded range: let the kernel pick
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_udp_port():
    return _free_port(socket.SOCK_DGRAM)


def free_tcp_port():
    return _free_port(socket.SOCK_STREAM)


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg, flush=True)


def mne_read(path):
    """Read an EDF+/BDF+ file with MNE (an independent reader) in Debian's interpreter.

    Returns what read_edf_mne.py prints (channels, duration, annotations); exits the test
    with 77 (skipped) when python3-mne is missing."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(["/usr/bin/python3", os.path.join(here, "read_edf_mne.py"), path],
                         capture_output=True, text=True)
    if out.returncode == 77:
        print("SKIP: python3-mne not installed")
        sys.exit(77)
    check(out.returncode == 0, "MNE reads %s (%s)" % (os.path.basename(path), out.stderr.strip()[:200]))
    return json.loads(out.stdout)


class Daemon:
    """emgd on the synth with a private config, state dir and port."""

    def __init__(self, extra_conf="", args=(), env=None, port=None, workdir=None):
        """workdir: reuse another daemon's directory (its state dir survives)."""
        self.tmp = None if workdir else tempfile.TemporaryDirectory(prefix="emgd-test-")
        self.dir = workdir or self.tmp.name
        self.port = port or free_udp_port()
        self.conf = os.path.join(self.dir, "emgd.conf")
        self.write_conf(extra_conf)
        self.log = open(os.path.join(self.dir, "emgd.log"), "a+")
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.pop("WATCHDOG_USEC", None)
        if env:
            e.update(env)
        self.proc = subprocess.Popen([EMGD, "-c", self.conf, "-v", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)
        # A test that fails (sys.exit) before close() must not leave emgd running
        # beside the next tests: a fresh-clone run left one up for an hour.
        atexit.register(self._reap)
        self.wait_ready()

    def _reap(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def write_conf(self, extra):
        """The test's own settings, then extra; a key extra sets itself is left out of
        the former (a key set twice in one file is an error)."""
        own, section = set(), ""
        for line in extra.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line[1:line.find("]")]
            elif "=" in line and not line.startswith(("#", ";")):
                own.add((section, line.split("=", 1)[0].strip()))
        base = [("osc", "listen", "127.0.0.1:%d" % self.port),
                ("daemon", "state_dir", "%s/state" % self.dir),
                ("daemon", "recordings_dir", "%s/rec" % self.dir),
                ("daemon", "mlock", "no")]
        with open(self.conf, "w") as f:
            for sec in ("osc", "daemon"):
                f.write("[%s]\n" % sec)
                f.writelines("%s = %s\n" % (k, v) for s, k, v in base if s == sec and (s, k) not in own)
            f.write(extra)

    @property
    def addr(self):
        return liblo.Address("127.0.0.1", self.port, liblo.UDP)

    def wait_ready(self, timeout=10):
        c = Client(self)
        try:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    fail("emgd exited with %s:\n%s" % (self.proc.returncode, self.logtext()))
                if c.request("/emgd/ping", reply="/emgd/pong", timeout=0.2) is not None:
                    return
            fail("emgd did not answer /emgd/ping within %d s:\n%s" % (timeout, self.logtext()))
        finally:
            c.close()

    def logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("emgd did not stop on SIGTERM within %d s" % timeout)
        return self.proc.returncode

    def close(self, keep=False):
        rc = self.stop()
        self.log.close()
        if self.tmp and not keep:
            self.tmp.cleanup()
        return rc


def wait_log(d, text, n, timeout, client):
    """Wait until d's log holds n lines containing text (the line is the signal), pumping client."""
    end = time.time() + timeout
    while time.time() < end:
        if d.logtext().count(text) >= n:
            return True
        if d.proc.poll() is not None:
            fail("emgd exited (%s) while waiting for %r:\n%s" % (d.proc.returncode, text, d.logtext()[-3000:]))
        client.pump(0.05)
    return False


def wait_recorded(directory, prefix, timeout):
    """Wait until a recording in directory whose name starts with prefix holds a data record:
    its size passes the header's byte count (EDF/BDF bytes 184-191). The recorder writes
    whole 100 ms records, and a recording stopped before its first one is removed as empty."""
    end = time.time() + timeout
    while time.time() < end:
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if not name.startswith(prefix):
                continue
            try:
                with open(path, "rb") as f:
                    hbytes = int(f.read(256)[184:192])
                if os.path.getsize(path) > hbytes:
                    return True
            except (OSError, ValueError):
                pass  # not yet a whole header
        time.sleep(0.02)
    return False


def rss_anon_kb(pid):
    """Anonymous resident memory of process pid, kB (/proc/PID/status RssAnon)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/%d/status" % pid)


def oscquery_daemon(conf):
    """Daemon(conf) for a test of the OSCQuery server; the test is skipped (77) when this
    emgd was built without libmicrohttpd."""
    d = Daemon(conf)
    if "built without libmicrohttpd" in d.logtext():
        d.close()
        print("SKIP: emgd was built without libmicrohttpd")
        sys.exit(77)
    return d


class NotifySocket:
    """A fake systemd NOTIFY_SOCKET: collects emgd's sd_notify datagrams in .notes."""

    def __init__(self, tag="notify"):
        self.path = "/tmp/emgd-%s-%d.sock" % (tag, os.getpid())
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.notes = []

    def env(self, watchdog_usec=1000000):
        return {"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(watchdog_usec)}

    def recv_until(self, pred, timeout, since=None):
        """The next notification matching pred within timeout; with since, one already
        collected from notes[since] on counts too."""
        if since is not None:
            for m in self.notes[since:]:
                if pred(m):
                    return m
        end = time.time() + timeout
        while time.time() < end:
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.notes.append(m)
            if pred(m):
                return m
        return None

    def drain(self, seconds):
        """Keep reading for a while: the kernel queue is short and a full one would
        block emgd's sd_notify() (and its main loop) - systemd always reads."""
        self.recv_until(lambda m: False, seconds)

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def wait_new(msgs, pred, timeout, receive):
    """The first message added to msgs from now on for which pred is true, or None after timeout
    s; receive(seconds left) waits at most that long for more to be added."""
    start = len(msgs)
    end = time.time() + timeout
    while True:
        for m in msgs[start:]:
            if pred(m):
                return m
        start = len(msgs)
        left = end - time.time()
        if left <= 0:
            return None
        receive(left)


class Client:
    """An OSC client with its own port: subscriptions stream back to it."""

    def __init__(self, daemon, port=0):
        self.d = daemon
        self.srv = liblo.Server(port, liblo.UDP)
        self.srv.add_method(None, None, self._on)
        self.msgs = []  # (t, path, types, args)

    def _on(self, path, args, types, src):
        self.msgs.append((time.time(), path, types, list(args)))

    def send(self, path, *args):
        self.srv.send(self.d.addr, path, *args)

    def pump(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            self.srv.recv(max(1, int((end - time.time()) * 1000)))

    def wait_for(self, pred, timeout):
        """Receive until pred(msg) is true for a new message; return it or None."""
        return wait_new(self.msgs, pred, timeout, lambda left: self.srv.recv(max(1, int(left * 1000))))

    def request(self, path, *args, reply, timeout=2.0):
        self.send(path, *args)
        m = self.wait_for(lambda m: m[1] in (reply, "/emgd/error"), timeout)
        return m

    def count(self, path):
        return sum(1 for m in self.msgs if m[1] == path)

    def close(self):
        self.srv.free()


# ---- OSC packets and a raw WebSocket client (OSCQuery LISTEN and control) ----

def pad(b):
    return b + b"\0" * (4 - len(b) % 4)


def osc(path, *args):
    """An OSC message with i, f and s arguments."""
    tags, data = ",", b""
    for a in args:
        if isinstance(a, int):
            tags, data = tags + "i", data + struct.pack(">i", a)
        elif isinstance(a, float):
            tags, data = tags + "f", data + struct.pack(">f", a)
        else:
            tags, data = tags + "s", data + pad(a.encode())
    return pad(path.encode()) + pad(tags.encode()) + data


def _osc_string(b, i):
    e = b.index(b"\0", i)
    return b[i:e].decode(), (e + 4) & ~3


def osc_messages(b):
    """[(address, tags, [args])] of a packet: a message or a (flat) bundle; fails on a bundle
    whose elements do not fill it exactly and on a type tag emgd does not send (i f s only)."""
    if b.startswith(b"#bundle\0"):
        out, i = [], 16
        while i + 4 <= len(b):
            n = struct.unpack(">I", b[i:i + 4])[0]
            out += osc_messages(b[i + 4:i + 4 + n])
            i += 4 + n
        check(i == len(b), "bundle elements fill the packet exactly")
        return out
    addr, i = _osc_string(b, 0)
    tags, i = _osc_string(b, i)
    args = []
    for t in tags[1:]:
        if t == "f":
            args.append(struct.unpack(">f", b[i:i + 4])[0])
            i += 4
        elif t == "i":
            args.append(struct.unpack(">i", b[i:i + 4])[0])
            i += 4
        elif t == "s":
            s, i = _osc_string(b, i)
            args.append(s)
        else:
            fail("unexpected type tag %r in %s" % (t, addr))
    return [(addr, tags, args)]


def osc_parse(b):
    """(address, [args]) of one message (replies are never bundles)."""
    addr, _, args = osc_messages(b)[0]
    return addr, args


class WS:
    """A minimal WebSocket client on a raw socket (frames masked, as RFC 6455 wants)."""

    def __init__(self, host, port, origin=None, source=None):
        self.s = socket.socket()
        if source:
            self.s.bind((source, 0))
        self.s.settimeout(5)
        self.s.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        h = "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (host, port, key)
        if origin:
            h += "Origin: %s\r\n" % origin
        self.s.sendall((h + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.s.recv(4096)
            if not b:
                break
            self.buf += b
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])

    @staticmethod
    def encode(op, payload):
        """One masked frame, as bytes."""
        m = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        return hdr + m + bytes(c ^ m[i & 3] for i, c in enumerate(payload))

    def send(self, op, payload):
        self.s.sendall(self.encode(op, payload))

    def send_burst(self, op, payloads):
        """Several frames in one write, so the server reads them together."""
        self.s.sendall(b"".join(self.encode(op, p) for p in payloads))

    def text(self, s):
        self.send(1, s.encode())

    def frame(self, timeout=5):
        """(opcode, payload) of the next frame, or None at the deadline / end."""
        end = time.time() + timeout
        while True:
            if len(self.buf) >= 2:
                n, i = self.buf[1] & 0x7f, 2
                if n == 126:
                    n, i = (struct.unpack(">H", self.buf[2:4])[0], 4) if len(self.buf) >= 4 else (None, 0)
                elif n == 127:
                    n, i = (struct.unpack(">Q", self.buf[2:10])[0], 10) if len(self.buf) >= 10 else (None, 0)
                if n is not None and len(self.buf) >= i + n:
                    op, p = self.buf[0] & 0x0f, self.buf[i:i + n]
                    self.buf = self.buf[i + n:]
                    return op, p
            left = end - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                b = self.s.recv(65536)
            except socket.timeout:
                return None
            if not b:
                return None
            self.buf += b

    def request(self, pkt, want, timeout=5):
        """Send an OSC packet; the first reply whose address is in want (or /emgd/error)."""
        self.send(2, pkt)
        end = time.time() + timeout
        while time.time() < end:
            f = self.frame(end - time.time())
            if f is None:
                return None
            if f[0] == 8:
                return ("close", [struct.unpack(">H", f[1][:2])[0] if len(f[1]) >= 2 else 0])
            if f[0] == 2:
                m = osc_parse(f[1])
                if m[0] in want or m[0] == "/emgd/error":
                    return m
        return None

    def listen(self, path):
        self.text('{"COMMAND":"LISTEN","DATA":"%s"}' % path)

    def close(self):
        self.s.close()
