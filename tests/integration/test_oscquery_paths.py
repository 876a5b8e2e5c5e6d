# SPDX-License-Identifier: MIT
"""OSCQuery VALUE and PATH_CHANGED (issue 14): the real emgd, a raw WebSocket client.

HOST_INFO says LISTEN, VALUE and PATH_CHANGED. VALUE: /emgd/status?VALUE is what
/emgd/status answers over UDP, /emg/frame?VALUE moves with the tick, and in the
whole tree (GET /) every VALUE has one entry per TYPE tag. PATH_*: reloads that
change the muscle map send each WebSocket client, as JSON text frames, exactly
what changed - a muscle removed (PATH_REMOVED of its container, not of each
leaf), one added (PATH_ADDED), one moved to another channel (PATH_CHANGED: its
description), a muscle more (PATH_CHANGED of /emg/levels and /emg/order, whose
TYPE grows) - and a reload that changes nothing in the namespace sends nothing
(a ping's pong, queued behind any notification, marks the end)."""
import json
import signal
import time
import urllib.error
import urllib.request

from emgtest import WS, Client, check, fail, free_tcp_port, osc, osc_parse, oscquery_daemon

port = free_tcp_port()
BASE = "[oscquery]\nenabled = yes\nhttp = 127.0.0.1:%d\n" % port


def conf(muscles):
    return BASE + "[muscles]\n" + "".join("%s = %d\n" % mc for mc in muscles)


def get(path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            body = r.read()
            return r.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        return e.code, None


MAP1 = [("glute_max_l", 1), ("glute_max_r", 2), ("hamstring_l", 3), ("hamstring_r", 4)]
MAP2 = [("glute_max_l", 1), ("glute_max_r", 6), ("hamstring_l", 3), ("hip_flex_l", 5)]
MAP3 = MAP2 + [("glute_med_l", 7)]

d = oscquery_daemon(conf(MAP1))
c = Client(d)
ws = WS("127.0.0.1", port)
reloads = 0


def reload(muscles):
    """Rewrite the muscle map, SIGHUP, wait for the reload to be applied."""
    global reloads
    d.write_conf(conf(muscles))
    d.signal(signal.SIGHUP)
    reloads += 1
    end = time.time() + 15
    while d.logtext().count("reload: applied") < reloads:
        if time.time() > end:
            fail("reload %d not applied:\n%s" % (reloads, d.logtext()[-2000:]))
        time.sleep(0.05)


def notes():
    """The PATH_* notifications that arrived before the pong of a ping sent now."""
    ws.send(2, osc("/emgd/ping"))
    got = []
    while True:
        f = ws.frame(5)
        if f is None:
            fail("no pong after the notifications")
        if f[0] == 1:
            got.append(json.loads(f[1]))
        elif f[0] == 2 and osc_parse(f[1])[0] == "/emgd/pong":
            return sorted((n["COMMAND"], n["DATA"]) for n in got)


try:
    st, hi = get("/?HOST_INFO")
    ext = hi["EXTENSIONS"]
    check(ext["LISTEN"] is True and ext["VALUE"] is True and ext["PATH_CHANGED"] is True,
          "HOST_INFO: LISTEN, VALUE and PATH_CHANGED true")

    # ---- VALUE ----
    end = time.time() + 3
    while get("/emgd/status?VALUE")[0] == 204 and time.time() < end:
        time.sleep(0.1)  # /emgd/status is sent at 1 Hz
    st, v = get("/emgd/status?VALUE")
    r = c.request("/emgd/status", reply="/emgd/status")
    check(st == 200 and v["VALUE"][:3] == r[3][:3] == ["streaming", 2000, 4],
          "/emgd/status?VALUE %s is what /emgd/status answers %s" % (v, r[3]))
    st, f1 = get("/emg/frame?VALUE")
    time.sleep(0.2)
    st, f2 = get("/emg/frame?VALUE")
    check(f2["VALUE"][0] > f1["VALUE"][0], "/emg/frame?VALUE follows the tick: %s then %s" % (f1, f2))
    st, rms = get("/emg/glute_max_l/rms?VALUE")
    check(st == 200 and isinstance(rms["VALUE"][0], float) and rms["VALUE"][0] >= 0, "rms VALUE %s" % rms)
    check(get("/emg/order?VALUE")[0] in (200, 204), "/emg/order?VALUE: 204 until a group closes")
    st, root = get("/")
    counted = []

    def walk(n):
        if "VALUE" in n:
            if len(n["VALUE"]) != len(n.get("TYPE", "")):
                fail("%s: VALUE %r for TYPE %r" % (n["FULL_PATH"], n["VALUE"], n.get("TYPE")))
            counted.append(n["FULL_PATH"])
        for k in n.get("CONTENTS", {}).values():
            walk(k)
    walk(root)
    check(len(counted) >= 2 * 4 + 3 and "/emg/levels" in counted and "/emg/glute_max_l/rms" in counted,
          "GET /: %d nodes with a VALUE, one entry per TYPE tag" % len(counted))

    # ---- PATH_* on reloads ----
    check(notes() == [], "no notification before any reload")
    reload(MAP2)
    got = notes()
    check(got == [("PATH_ADDED", "/emg/hip_flex_l"), ("PATH_CHANGED", "/emg/glute_max_r"),
                  ("PATH_REMOVED", "/emg/hamstring_r")],
          "hamstring_r out, hip_flex_l in, glute_max_r on channel 6: %s" % got)
    reload(MAP3)
    got = notes()
    check(got == [("PATH_ADDED", "/emg/glute_med_l"), ("PATH_CHANGED", "/emg/levels"),
                  ("PATH_CHANGED", "/emg/order")],
          "a fifth muscle: its container, and the per-muscle lists whose TYPE grew: %s" % got)
    st, t = get("/emg/levels?TYPE")
    check(t == {"TYPE": "fffff"}, "the namespace says so: %s" % t)
    reload(MAP3)
    check(notes() == [], "a reload that changes nothing sends nothing")
    ws.text('{"COMMAND":"LISTEN","DATA":"/emg/glute_med_l/rms"}')
    end = time.time() + 3
    got = None
    while time.time() < end and got is None:
        f = ws.frame(end - time.time())
        if f and f[0] == 2:
            got = f[1] if b"/emg/glute_med_l/rms" in f[1] else None
    check(got is not None, "the added muscle streams to a client that LISTENs to it")
finally:
    ws.close()
    c.close()
    rc = d.stop()
    log = d.logtext()
d.close()
check(rc == 0, "emgd exits 0")
check("runtime error" not in log and "ERROR: " not in log, "no sanitizer reports")
print("OK")
