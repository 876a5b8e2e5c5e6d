# SPDX-License-Identifier: MIT
"""OSCQuery end to end: the real emgd with [oscquery] on (and mdns = yes: without an
avahi-daemon, as in CI, it must log one line and go on).  The namespace is fetched over
HTTP with urllib and validated against the OSCQuery proposal (FULL_PATH of every node,
CONTENTS, TYPE of only i f s, ACCESS, RANGE and UNIT one entry per type tag, ?HOST_INFO,
single attributes, 404); then a subscriber collects ~7 s of the prone hip extension
script - metrics, onsets, offsets, calibrations, firing order, repetitions, and the
replies to every control request - and every address it received must be in the
namespace with exactly the type tags it arrived with."""
import json
import signal
import socket
import sys
import time
import urllib.error
import urllib.request

from emgtest import Client, Daemon, check, fail, free_tcp_port

MUSCLES = ["glute_max_l", "glute_max_r", "hamstring_l", "hamstring_r", "glute_med_l", "hip_flex_l"]



http_port = free_tcp_port()
CONF = """[device]
scenario = prone_hip_ext
[oscquery]
enabled = yes
http = 127.0.0.1:%d
mdns = yes
name = plinth 3
[muscles]
glute_max_l = 1
glute_max_r = 2
hamstring_l = 3
hamstring_r = 4
glute_med_l = 5
hip_flex_l = 6
""" % http_port
d = Daemon(CONF)
if "built without libmicrohttpd" in d.logtext():
    print("SKIP: emgd was built without libmicrohttpd (-Doscquery=disabled)")
    d.close()
    sys.exit(77)
base = "http://127.0.0.1:%d" % http_port


def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        check(r.headers.get_content_type() == "application/json", "GET %s is application/json" % path)
        return json.loads(r.read().decode("utf-8"))


def status_of(path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


c = Client(d)
try:
    root = get("/")
    leaves = {}  # full path -> node

    def walk(node, path):
        if node.get("FULL_PATH") != path:
            fail("node at %s says FULL_PATH %r" % (path, node.get("FULL_PATH")))
        if node.get("ACCESS") not in (0, 1, 2, 3):
            fail("%s: ACCESS %r" % (path, node.get("ACCESS")))
        if not isinstance(node.get("DESCRIPTION"), str) or not node["DESCRIPTION"]:
            fail("%s: no DESCRIPTION" % path)
        t = node.get("TYPE")
        if t is not None:
            if not isinstance(t, str) or set(t) - set("ifs"):
                fail("%s: TYPE %r (only i f s)" % (path, t))
            for attr in ("RANGE", "UNIT"):
                if attr in node and len(node[attr]) != len(t):
                    fail("%s: %s has %d entries for TYPE %s" % (path, attr, len(node[attr]), t))
            if "RANGE" in node and all(r is None for r in node["RANGE"]):
                fail("%s: RANGE %r says nothing (leave it out)" % (path, node["RANGE"]))
            for tag, rng in zip(t, node.get("RANGE", [])):
                if rng is not None and not set(rng) <= {"MIN", "MAX", "VALS"}:
                    fail("%s: RANGE entry %r" % (path, rng))
        if node.get("ACCESS", 0) != 0:
            leaves[path] = node
        for name, sub in node.get("CONTENTS", {}).items():
            walk(sub, (path if path != "/" else "") + "/" + name)

    walk(root, "/")
    check(len(leaves) >= 20 + 6 * len(MUSCLES), "namespace: %d methods, every FULL_PATH consistent" % len(leaves))
    for m in MUSCLES:
        for leaf, t in (("rms", "f"), ("level", "f"), ("active", "i"), ("onset", "fi"), ("offset", "ff"), ("lag", "f")):
            p = "/emg/%s/%s" % (m, leaf)
            if leaves.get(p, {}).get("TYPE") != t:
                fail("%s: %r, want TYPE %s" % (p, leaves.get(p), t))
    check(leaves["/emg/levels"]["TYPE"] == "f" * 6 and leaves["/emg/order"]["TYPE"] == "is" + "f" * 6,
          "per-muscle lists have one f per muscle")
    check(leaves["/emgd/subscribe"]["ACCESS"] == 2 and leaves["/emg/rep"]["ACCESS"] == 1
          and leaves["/emgd/status"]["ACCESS"] == 3, "ACCESS: 2 control, 1 published, 3 both")
    check(leaves["/emg/rep"]["RANGE"][9] == {"VALS": ["pct_mvc", "uV"]}, "/emg/rep unit values listed")

    hi = get("/?HOST_INFO")
    check(hi["NAME"] == "plinth 3" and hi["OSC_PORT"] == d.port and hi["OSC_TRANSPORT"] == "UDP"
          and hi["OSC_IP"] == "127.0.0.1", "HOST_INFO: %s" % {k: hi[k] for k in hi if k != "EXTENSIONS"})
    check(hi["EXTENSIONS"]["ACCESS"] and hi["EXTENSIONS"]["RANGE"] and hi["EXTENSIONS"]["VALUE"],
          "HOST_INFO EXTENSIONS")
    check(get("/emg/glute_max_l")["CONTENTS"]["rms"]["FULL_PATH"] == "/emg/glute_max_l/rms", "GET a container")
    check(get("/emg/order?TYPE") == {"TYPE": "is" + "f" * 6}, "GET ?TYPE")
    check(status_of("/emg/no_such_muscle/rms") == 404, "unknown address: 404")
    check(status_of("/emg/frame?VALUE") == 200, "VALUE of a streamed address: 200")
    check(status_of("/emgd/subscribe?VALUE") == 204, "VALUE of a control address: 204")

    # Every address emgd sends while streaming, calibrating and answering control requests.
    r = c.request("/emgd/subscribe", 30, reply="/emgd/subscribed")
    check(r is not None and r[1] == "/emgd/subscribed", "subscribed")
    for req, rep in (("/emgd/ping", "/emgd/pong"), ("/emgd/status", "/emgd/status"),
                     ("/emgd/stats", "/emgd/stats"), ("/emgd/latency", "/emgd/latency"),
                     ("/emgd/analytics/reset", "/emgd/ok"), ("/emgd/no/such", "/emgd/error")):
        check(c.request(req, reply=rep) is not None, "%s answered" % req)
    # the synth rests for the first 3 s: a short rest calibration, then an MVC trial while
    # glute max contracts in the first bridge (a trial at rest is refused, rightly)
    check(c.request("/emgd/calibrate/rest", 0.5, reply="/emgd/ok")[1] == "/emgd/ok", "rest calibration")
    check(c.wait_for(lambda m: m[1] == "/emgd/calibrated" and m[3][1] == MUSCLES[-1], 5) is not None,
          "rest calibration done")
    check(c.wait_for(lambda m: m[1] == "/emg/glute_max_l/onset", 10) is not None, "glute max contracts")
    r = c.request("/emgd/calibrate/mvc", "glute_max_l", 0.5, reply="/emgd/ok")
    check(r is not None and r[1] == "/emgd/ok", "MVC trial (%s)" % (r,))
    check(c.wait_for(lambda m: m[1] == "/emgd/calibrated" and m[3][0] == "mvc" and m[3][3] == 1, 5)
          is not None, "MVC done and accepted")
    # the repetitions after it are summarised in %MVC
    c.wait_for(lambda m: m[1] == "/emg/rep" and m[3][0] == "glute_max_l" and m[3][9] == "pct_mvc", 15)
    c.pump(0.5)
    check(c.request("/emgd/unsubscribe", reply="/emgd/unsubscribed") is not None, "unsubscribed")

    seen = {}
    for _, path, types, _ in c.msgs:
        seen.setdefault(path, set()).add(types)
    for must in ("/emg/order", "/emg/rep", "/emg/pair", "/emg/glute_max_l/lag", "/emg/glute_max_l/level",
                 "/emg/hamstring_l/onset", "/emg/hamstring_l/offset", "/emgd/calibrated", "/emgd/error"):
        check(must in seen, "received %s" % must)
    bad = []
    for path, tset in sorted(seen.items()):
        node = leaves.get(path)
        if node is None:
            bad.append("%s not in the namespace" % path)
            continue
        for t in tset:
            if node.get("TYPE", "") != t:
                bad.append("%s arrived as '%s', namespace says '%s'" % (path, t, node.get("TYPE", "")))
    check(not bad, "all %d addresses received are in the namespace with their type tags%s"
          % (len(seen), "" if not bad else ": " + "; ".join(bad)))
    check(any(x[1] == "/emg/rep" and x[3][0] == "glute_max_l" and x[3][9] == "pct_mvc" for x in c.msgs),
          "glute_max_l repetition in %MVC once calibrated")

    # A reload with one more muscle: the namespace follows the map.
    d.write_conf(CONF.replace("hip_flex_l = 6\n", "hip_flex_l = 6\nglute_med_r = 7\n"))
    d.signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and status_of("/emg/glute_med_r/rms") != 200:
        time.sleep(0.1)
    check(get("/emg/levels?TYPE") == {"TYPE": "f" * 7}, "after a reload: 7 muscles in the namespace")
    d.wait_ready()
finally:
    c.close()
    log = d.logtext()
    rc = d.close()
mdns_lines = [l for l in log.splitlines() if "mdns:" in l]
check(len(mdns_lines) >= 1 and all("Daemon not running" in l or "not running" in l or "advertising" in l
                                   for l in mdns_lines[:2]), "mdns says what it does: %s" % mdns_lines[:2])
check("oscquery: namespace on http://127.0.0.1:%d/" % http_port in log, "log names the URL")
check(rc == 0, "emgd exited cleanly")
