# SPDX-License-Identifier: MIT
"""Fault injection against the real daemon, part 3: a config file that is
unreadable (a directory, a FIFO, a device, no read permission), empty, binary
or huge - both for `emgd --check-config` and for a SIGHUP reload of a running
daemon.  Bad files are refused with one log line and the running configuration
keeps streaming; an empty file is valid (built-in defaults) and is applied."""
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

from emgtest import EMGD, Client, Daemon, check, free_udp_port

TIMEOUT = 30  # a check that hangs (a FIFO opened for reading) fails here, not in meson


def check_config(path, user=None):
    cmd = [EMGD, "--check-config", "-c", path]
    env = None
    if user:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
        # The other user may not be able to read files in the source tree (a fresh clone
        # in a mode-700 directory): ThreadSanitizer then aborts on its suppressions file.
        # --check-config starts no threads, so it needs none.
        env = dict(os.environ)
        env["TSAN_OPTIONS"] = ":".join(o for o in env.get("TSAN_OPTIONS", "").split(":")
                                       if o and not o.startswith("suppressions="))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % TIMEOUT
    return out.returncode, (out.stdout + out.stderr).strip()


# The daemon keeps its port whatever the file says (-l), and its state under STATE_DIRECTORY.
port = None
tmpdir = None
d = None
try:
    tmpdir = tempfile.mkdtemp(prefix="emgd-cfg-")
    port = free_udp_port()
    d = Daemon("[device]\nscenario = rest\n", port=port, args=("-l", "127.0.0.1:%d" % port),
               env={"STATE_DIRECTORY": os.path.join(tmpdir, "state")})
    good = open(d.conf).read()
    c = Client(d)
    c.request("/emgd/subscribe", 120, reply="/emgd/subscribed")
    check(c.wait_for(lambda m: m[1] == "/emg/frame", 2) is not None, "streaming on the good config")

    def make_dir(p):
        os.mkdir(p)

    def make_fifo(p):
        os.mkfifo(p)

    def make_binary(p):
        rnd = random.Random(8)
        with open(p, "wb") as f:
            f.write(bytes(rnd.choice(range(1, 256)) for _ in range(4096)))  # no NUL: a syntax error

    def make_binary_nul(p):
        with open(p, "wb") as f:
            f.write(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)

    def make_huge(p):
        with open(p, "w") as f:
            f.write(good + ("# padding " + "x" * 70 + "\n") * 14000)  # 1.1 MB of valid comments

    def make_sparse(p):
        with open(p, "w") as f:
            f.truncate(10 << 30)  # 10 GiB of holes: refused without reading

    def make_dev(p):
        os.symlink("/dev/zero", p)

    cases = [("a directory", make_dir, "not a regular file"),
             ("a FIFO", make_fifo, "not a regular file"),
             ("/dev/zero", make_dev, "not a regular file"),
             ("binary, no NUL", make_binary, ("syntax error", "line too long", "unknown")),
             ("binary with NUL bytes", make_binary_nul, "binary data"),
             ("huge (1.1 MB)", make_huge, "file too large"),
             ("sparse 10 GiB", make_sparse, "file too large")]
    for name, make, expect in cases:
        expect = expect if isinstance(expect, tuple) else (expect,)
        p = os.path.join(tmpdir, "bad.conf")
        make(p)
        t0 = time.time()
        rc, out = check_config(p)
        check(rc == 1 and any(e in out for e in expect) and len(out.splitlines()) == 1,
              "--check-config on %s: refused in %.2f s: %s" % (name, time.time() - t0, out[:120]))
        # the running daemon is pointed at it by replacing its config file, then SIGHUP
        os.unlink(d.conf)
        os.rename(p, d.conf)
        nlog = d.logtext().count("reload: refused")
        d.signal(signal.SIGHUP)
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and d.logtext().count("reload: refused") == nlog:
            c.pump(0.05)
        n0 = c.count("/emg/frame")
        c.pump(1.0)
        log = d.logtext()
        check(log.count("reload: refused") == nlog + 1 and any(e in log for e in expect),
              "SIGHUP with %s as the config: refused" % name)
        check(c.count("/emg/frame") - n0 >= 10, "still streaming (%d ticks in 1 s)" % (c.count("/emg/frame") - n0))
        if os.path.isdir(d.conf) and not os.path.islink(d.conf):
            os.rmdir(d.conf)
        else:
            os.unlink(d.conf)
        with open(d.conf, "w") as f:
            f.write(good)

    ticks = [m[3][0] for m in c.msgs if m[1] == "/emg/frame"]
    bad = [(a, b) for a, b in zip(ticks, ticks[1:]) if b - a != 1]
    check(not bad, "no tick lost across %d refused reloads (%d ticks): %s" % (len(cases), len(ticks), bad[:5]))

    # Unreadable for the user emgd runs as: root reads anything, so check as nobody.
    p = os.path.join(tmpdir, "noperm.conf")
    with open(p, "w") as f:
        f.write(good)
    os.chmod(p, 0)
    os.chmod(tmpdir, 0o755)
    if shutil.which("setpriv") and os.getuid() == 0:
        rc, out = check_config(p, user=65534)  # nobody
        check(rc == 1 and "cannot open: Permission denied" in out, "--check-config on a mode-000 file: %s" % out)
    elif os.access(p, os.R_OK):
        print("note: running as root without setpriv: a mode-000 file is readable; unreadable case skipped")
    else:
        rc, out = check_config(p)
        check(rc == 1 and "cannot open: Permission denied" in out, "--check-config on a mode-000 file: %s" % out)

    # Empty: valid (every built-in default) - accepted by --check-config and applied by SIGHUP.
    empty = os.path.join(tmpdir, "empty.conf")
    open(empty, "w").close()
    rc, out = check_config(empty)
    check(rc == 0 and "ok" in out, "--check-config on an empty file: %s" % out)
    with open(d.conf, "w"):
        pass
    nlog = d.logtext().count("reload: applied")
    d.signal(signal.SIGHUP)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and d.logtext().count("reload: applied") == nlog:
        c.pump(0.05)
    n0 = c.count("/emg/frame")
    c.pump(1.0)
    check(d.logtext().count("reload: applied") == nlog + 1 and c.count("/emg/frame") - n0 >= 10,
          "SIGHUP with an empty config: applied (built-in defaults), still streaming on port %d" % port)
    check(d.proc.poll() is None, "daemon alive after %d bad reloads" % len(cases))
    c.close()
finally:
    rc = d.close() if d else 0
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)
check(rc == 0, "clean exit")
