# SPDX-License-Identifier: MIT
"""emgctl monitor on a real terminal (a pty of fixed size): every line fits the width,
the screen never has more lines than the terminal, and headings, the firing-order line
and the help line are chosen to fit instead of being cut - at 80x24 and below."""
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

from emgtest import Daemon, EMGCTL, check, fail

# Burst groups within seconds: every glute fires in each hip-thrust repetition.
CONF = """
[device]
scenario = hip_thrust
"""

ESC = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_monitor(d, cols, rows, seconds):
    """emgctl monitor in a cols x rows pty for `seconds`; returns the last full frame's lines."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.pop("NO_COLOR", None)
    p = subprocess.Popen([EMGCTL, "-s", "127.0.0.1:%d" % d.port, "monitor", "--duration", str(seconds)],
                         stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.time() + seconds + 10
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    if p.wait(timeout=10) != 0:
        fail("emgctl monitor %dx%d exited %d: %r" % (cols, rows, p.returncode, out[-500:]))
    text = out.decode("utf-8")
    # Each redraw starts at the home position; the last one before leaving the screen.
    frames = [f for f in text.split("\x1b[H") if "\x1b[J" in f]
    if not frames:
        fail("no frame drawn at %dx%d: %r" % (cols, rows, text[:300]))
    frame = frames[-1].split("\x1b[J")[0]
    # The pty turns each "\n" into "\r\n".
    return [ESC.sub("", ln).rstrip("\r") for ln in frame.split("\n")]


d = Daemon(CONF)
try:
    for cols, rows, seconds in ((80, 24, 9), (64, 16, 3), (40, 8, 3), (132, 40, 3)):
        lines = run_monitor(d, cols, rows, seconds)
        for ln in lines:
            print("  |%s|" % ln)
        widest = max(len(ln) for ln in lines)
        check(widest <= cols - 1, "%dx%d: widest line %d cells (of %d)" % (cols, rows, widest, cols))
        check(len(lines) <= rows, "%dx%d: %d lines (of %d)" % (cols, rows, len(lines), rows))
        heading = [ln for ln in lines if ln.startswith("muscle ")]
        check(len(heading) == 1, "%dx%d: one column heading" % (cols, rows))
        h = heading[0]
        # Whole words only: the longest heading of each column that fits.
        check(re.search(r"\bRMS( \(log(, µV)?\))?\s", h) and re.search(r"(%MVC \(0-\d+%\)|%MVC|MVC)\s", h)
              and h.rstrip().endswith(("act", "burst", "last peak")),
              "%dx%d: headings whole: %r" % (cols, rows, h.rstrip()))
        order = [ln for ln in lines if ln.startswith(("firing order", "order"))]
        # ln_put() cuts at cols - 1: a shorter line was not cut; a full one must end whole.
        check(len(order) == 1 and (len(order[0]) < cols - 1 or order[0].endswith(("ms", "more)", "yet"))),
              "%dx%d: firing order whole: %r" % (cols, rows, order and order[0]))
        muscles = [ln for ln in lines if ln.startswith("glute_") or ln.startswith(("hip_", "...", "+"))]
        if rows >= 24:
            check(lines[-1].rstrip().endswith("quits"), "%dx%d: help line whole: %r" % (cols, rows, lines[-1]))
            check(cols < 80 or lines[-1].startswith("onset"), "%dx%d: help explains the columns" % (cols, rows))
            check(len(muscles) == 6, "%dx%d: all 6 muscles shown" % (cols, rows))
            check(lines[1].startswith("tick "), "%dx%d: tick line shown" % (cols, rows))
        if cols == 80:
            check(order[0].startswith(("firing order #", "order #")),
                  "80x24: a burst group arrived within %d s: %r" % (seconds, order[0]))
        if rows == 8:
            check(any(ln.startswith(("... ", "+")) and "more" in ln for ln in lines),
                  "%dx%d: muscles that do not fit are counted" % (cols, rows))
    # Without a terminal (--once, pipes, logs): plain lines within 80 columns, the
    # firing order whole whatever its length.
    out = subprocess.run([EMGCTL, "-s", "127.0.0.1:%d" % d.port, "monitor", "--once"],
                         capture_output=True, text=True, timeout=30)
    print(out.stdout)
    lines = out.stdout.splitlines()
    check(out.returncode == 0 and lines[2].startswith("muscle ") and len(lines) == 3 + 6 + 1,
          "--once: 2 header lines, the column names, 6 muscles, the firing order")
    check(all(len(ln) <= 80 for ln in lines[:-1]),
          "--once: every line but the firing order within 80 columns (widest %d)" % max(len(ln) for ln in lines[:-1]))
    check("\x1b" not in out.stdout, "--once: no escape sequences")
finally:
    d.close()
