#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Subscribe to emgd and print every muscle's RMS once a second, onsets and repetitions.

Needs Debian's python3-liblo: run it with /usr/bin/python3 (a python3 from a venv or
pyenv does not see that module).

    /usr/bin/python3 emgd_subscribe.py [HOST:PORT] [SECONDS]

HOST:PORT is emgd's [osc] listen address (default 127.0.0.1:9000); SECONDS stops after
that long (default: until Ctrl-C).  emgd answers and streams to the address a request
came from, so this script sends from the port it listens on; the subscription is a
10 s lease renewed every 5 s (a script that dies stops its stream by itself).
"""
import sys
import time

import liblo

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000"
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else float("inf")
host, port = target.rsplit(":", 1)
emgd = liblo.Address(host, int(port), liblo.UDP)
srv = liblo.Server(0)  # any free UDP port
rms = {}  # muscle -> last /emg/<muscle>/rms, uV, in the order they first arrive


def on_message(path, args, types, src):
    parts = path.split("/")  # "", "emg", muscle, leaf  or  "", "emgd", what
    if path == "/emgd/subscribed":
        print("subscribed: lease %d s" % args[0], flush=True)
    elif path == "/emgd/error":
        print("emgd refused %s: %s" % (args[0], args[1]), flush=True)
    elif len(parts) == 4 and parts[1] == "emg" and parts[3] == "rms":
        rms[parts[2]] = args[0]
    elif len(parts) == 4 and parts[1] == "emg" and parts[3] == "onset":
        print("onset %s (%.0f ms ago)" % (parts[2], args[0] * 1e3), flush=True)
    elif path == "/emg/rep":
        print("rep %s #%d peak %.1f %s" % (args[0], args[1], args[2], args[9]), flush=True)


srv.add_method(None, None, on_message)  # every message, also those inside bundles
start = time.time()
renew = 0.0
report = start + 1.0
try:
    while time.time() - start < seconds:
        now = time.time()
        if now >= renew:
            srv.send(emgd, "/emgd/subscribe", 10)
            renew = now + 5.0
        if now >= report and rms:
            print("rms uV: " + "  ".join("%s %.1f" % kv for kv in rms.items()), flush=True)
            report = now + 1.0
        srv.recv(50)
finally:
    srv.send(emgd, "/emgd/unsubscribe")
