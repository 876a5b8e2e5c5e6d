# SPDX-License-Identifier: MIT
"""Helpers for integration tests: run the real emgd binary, talk to it with python3-liblo.

Every wait is on a real event (a reply, a message, process exit) with a deadline;
nothing sleeps for a fixed time hoping the daemon got there.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import liblo

EMGD = os.environ.get("EMGD", "emgd")
EMGCTL = os.environ.get("EMGCTL", "emgctl")


def _free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
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
        self.wait_ready()

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
        start = len(self.msgs)
        end = time.time() + timeout
        while True:
            for m in self.msgs[start:]:
                if pred(m):
                    return m
            start = len(self.msgs)
            left = end - time.time()
            if left <= 0:
                return None
            self.srv.recv(max(1, int(left * 1000)))

    def request(self, path, *args, reply, timeout=2.0):
        self.send(path, *args)
        m = self.wait_for(lambda m: m[1] in (reply, "/emgd/error"), timeout)
        return m

    def count(self, path):
        return sum(1 for m in self.msgs if m[1] == path)

    def close(self):
        self.srv.free()
