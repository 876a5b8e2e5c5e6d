# SPDX-License-Identifier: MIT
"""The real emgd on an emulated USB amplifier (tests/usb/mockamp.c: a umockdev
testbed served from another process): it streams; the amplifier is unplugged
mid-stream and emgd keeps running, says waiting-device in /emgd/status and
STATUS=, keeps the subscriber and keeps satisfying the watchdog; replugged, it
streams again.  Run once per driver: MOCKAMP_KIND=cyton or hackeeg."""
import os
import subprocess
import sys
import time

from emgtest import Client, Daemon, NotifySocket, check, fail

MOCKAMP = os.environ["MOCKAMP"]
USB_DATA_DIR = os.environ["USB_DATA_DIR"]
KIND = os.environ.get("MOCKAMP_KIND", "cyton")

mock = subprocess.Popen(["umockdev-wrapper", MOCKAMP, KIND, USB_DATA_DIR], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, text=True)


def mock_cmd(cmd):
    mock.stdin.write(cmd + "\n")
    mock.stdin.flush()
    return mock.stdout.readline().strip()


root = None
for line in mock.stdout:
    line = line.strip()
    if line.startswith("UMOCKDEV_DIR="):
        root = line.split("=", 1)[1]
    if line == "READY":
        break
if not root:
    fail("mockamp did not start")

ns = NotifySocket("usb-notify")
notes = ns.notes
recv_until = ns.recv_until
drain = ns.drain


def watchdog_pings(seconds):
    n = 0
    end = time.time() + seconds
    while time.time() < end:
        if recv_until(lambda m: "WATCHDOG=1" in m, min(0.3, max(0.01, end - time.time()))):
            n += 1
    return n


conf = "[device]\ndriver = %s\n" % KIND
if KIND == "cyton":
    conf += "rate = 0\nserial = DM00CYTN\n"
else:
    conf += "rate = 2000\nserial = 1-3\n"
env = {"LD_PRELOAD": "libumockdev-preload.so.0", "UMOCKDEV_DIR": root,
       **ns.env()}
d = None
try:
    d = Daemon(conf, env=env)
    c = Client(d)

    def status():
        r = c.request("/emgd/status", reply="/emgd/status")
        return r[3] if r and r[1] == "/emgd/status" else None

    def wait_status(state, timeout):
        end = time.time() + timeout
        st = None
        while time.time() < end:
            st = status()
            if st and st[0] == state:
                return st
            drain(0.1)
        return st

    st = wait_status("streaming", 15)
    rate = 250 if KIND == "cyton" else 2000
    check(st is not None and st[0] == "streaming" and st[1] == rate,
          "emgd streams from the emulated %s: %s" % (KIND, st))
    check(recv_until(lambda m: "READY=1" in m, 5, since=0) is not None, "READY=1")
    check(watchdog_pings(1.6) >= 2, "watchdog pinged while streaming")
    r = c.request("/emgd/subscribe", 60, reply="/emgd/subscribed")
    check(r is not None and r[1] == "/emgd/subscribed", "subscribed")

    # Unplug mid-stream.
    served = int(mock_cmd("served"))
    check(served > 0 and mock_cmd("streaming") == "1", "mid-stream (%d bytes served)" % served)
    mark = len(notes)
    check(mock_cmd("unplug") == "OK", "unplugged")
    st = wait_status("waiting-device", 5)
    check(st is not None and st[0] == "waiting-device", "/emgd/status says waiting-device: %s" % st)
    r = recv_until(lambda m: "STATUS=waiting-device" in m, 5, since=mark)
    check(r is not None, "STATUS= says waiting-device: %r" % r)
    check(watchdog_pings(2.2) >= 3, "watchdog still satisfied while waiting for the device")
    check(d.proc.poll() is None, "emgd still running")
    r = c.request("/emgd/ping", reply="/emgd/pong")
    check(r is not None and r[1] == "/emgd/pong", "still answers while waiting")
    n0 = c.count("/emgd/status")
    c.pump(1.2)
    check(c.count("/emgd/status") > n0, "the subscriber still gets /emgd/status")

    # Replug: streams again.
    check(mock_cmd("replug") == "OK", "replugged")
    st = wait_status("streaming", 15)
    check(st is not None and st[0] == "streaming", "streaming again after the replug: %s" % st)
    check(mock_cmd("streaming") == "1", "the driver restarted the board")
    s1 = int(mock_cmd("served"))
    time.sleep(1.0)
    s2 = int(mock_cmd("served"))
    check(s2 > s1, "samples flow again (%d -> %d bytes)" % (s1, s2))
    check(watchdog_pings(1.6) >= 2, "watchdog pinged after the replug (frames advance)")
    log = d.logtext()
    check("waiting for it" in log and "amplifier unplugged" in log, "the log tells the story")
    c.close()
finally:
    if d:
        rc = d.stop()
        print(d.logtext(), file=sys.stderr)
    try:
        mock_cmd("quit")
        mock.wait(5)
    except Exception:
        mock.kill()
    ns.close()
