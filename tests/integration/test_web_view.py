# SPDX-License-Identifier: MIT
"""The browser view (issue 14 item 2) in a real browser against the real emgd.

Debian's Chromium (/usr/bin/chromium, skipped without) runs headless, driven by
puppeteer-core (installed by this test into a temporary directory with npm, as
test_oscquery_ws does for ws; skipped without npm or the registry) through
web_view.js. emgd runs the synth's default session with OSCQuery on and
[oscquery] www pointing at the source tree's www/ (EMGD_WWW_SRC). The page must
show one card per muscle with live numbers, an onset flash and ACTIVE for
glute max during the first bridge (about 3-6 s in), the band text going below /
in band / above for a band set in the page, the rep counter, device state and
overruns; then emgd is restarted on the same ports and the page must reconnect
by itself. Before the restart, the session controls are clicked: stop without
a recording (the /emgd/error shown), calibrate MVC of glute max (countdown,
then %MVC), start recording
(the daemon's /emgd/status, asked here over UDP, says recording), a marker
typed in the page (found afterwards in the BDF+ annotations by MNE, or in the
log without python3-mne) and stop; the firing-order line, latency and L:R
symmetry are shown. After it, calibrate rest in the new emgd's opening rest
(countdown, each muscle's rest level on the page); then a reload adds a muscle
(the page gets PATH_ADDED and shows seven cards, the new one live) and sets
[web] control = no (a marker click is refused and the controls grey out with
the reason). Screenshots (web_view.png, web_view-session.png) are left
in the build directory (the test's working directory) to judge readability. Also: the file server's refusals
(.., %2e%2e, unknown types) through the real HTTP server."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from emgtest import Client, Daemon, check, fail, free_tcp_port, mne_read

HERE = os.path.dirname(os.path.abspath(__file__))
WWW = os.environ.get("EMGD_WWW_SRC", os.path.join(HERE, "..", "..", "www"))
CHROMIUM = "/usr/bin/chromium"
MUSCLES = ["glute_max_l", "glute_max_r", "hamstring_l", "hamstring_r", "glute_med_l", "hip_flex_l"]


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)



def get(url):
    """(status, content type, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def raw_get(port, target):
    """A GET of target exactly as written (urllib would normalise the dots)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return int(data.split()[1])


if not os.path.exists(CHROMIUM):
    skip("%s missing: install Debian's chromium (.ci/deps) for the browser test" % CHROMIUM)
if not shutil.which("node") or not shutil.which("npm"):
    skip("node/npm not installed: the browser is driven by npm's puppeteer-core")
t_npm = time.time()
npmdir = tempfile.mkdtemp(prefix="emgd-ui-npm-")
r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", npmdir,
                    "puppeteer-core@24"], capture_output=True, text=True, timeout=300,
                   env=dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1"))
PUPPETEER = os.path.join(npmdir, "node_modules", "puppeteer-core")
if r.returncode != 0 or not os.path.isdir(PUPPETEER):
    shutil.rmtree(npmdir, ignore_errors=True)
    skip("npm install puppeteer-core failed (no registry?): %s" % r.stderr.strip()[-300:])

print("npm install puppeteer-core: %.1f s" % (time.time() - t_npm))
port = free_tcp_port()
conf = ("[oscquery]\nenabled = yes\nhttp = 127.0.0.1:%d\nwww = %s\n[muscles]\n%s" %
        (port, os.path.realpath(WWW), "".join("%s = %d\n" % (m, i + 1) for i, m in enumerate(MUSCLES))))
base = "http://127.0.0.1:%d" % port
shot = os.path.join(os.getcwd(), "web_view.png")
# Chromium first (it takes seconds to start on a loaded runner), then emgd: the page then
# meets the synth's script from its start, 8 s of rest before the first bridge.
drv = subprocess.Popen(["node", os.path.join(HERE, "web_view.js"), base + "/ui/", shot, ",".join(MUSCLES),
                        "glute_max_l"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                       env=dict(os.environ, PUPPETEER_MODULE=PUPPETEER))
timer = threading.Timer(270, drv.kill)  # a hung browser fails the test, not the suite
timer.start()
line = ""
for line in drv.stdout:
    print(line, end="", flush=True)
    if line.startswith(("BROWSER", "FAIL")):
        break
if not line.startswith("BROWSER"):
    drv.kill()
    fail("Chromium did not start")
d = Daemon(conf)
first = d
if "built without libmicrohttpd" in d.logtext():
    d.close()
    drv.kill()
    shutil.rmtree(npmdir, ignore_errors=True)
    skip("emgd was built without libmicrohttpd")
try:
    check("browser view on %s/ui/" % base in d.logtext(), "emgd logs the view's URL")
    # ---- the file server, through the real HTTP server ----
    st, ct, body = get(base + "/ui/osc.js")
    check(st == 200 and ct.startswith("text/javascript"), "/ui/osc.js: 200 %s" % ct)
    st, ct, body = get(base + "/ui/view.css")
    check(st == 200 and ct.startswith("text/css"), "/ui/view.css: 200 %s" % ct)
    st, ct, body = get(base + "/")
    check(st == 200 and ct == "application/json" and b'"FULL_PATH":"/"' in body, "the namespace stays at /")
    for t in ("/ui/../emgd.conf", "/ui/%2e%2e/conf/emgd.conf", "/ui/meson.build", "/ui/.x.js", "/ui/nothing.js"):
        check(raw_get(port, t) == 404, "%s: 404" % t)

    # ---- the page in Chromium ----
    drv.stdin.write("STARTED\n")
    drv.stdin.flush()
    done = False
    for line in drv.stdout:
        line = line.rstrip("\n")
        print(line, flush=True)
        if line == "STATUS?":
            c = Client(d)
            m = c.request("/emgd/status", reply="/emgd/status")
            c.close()
            drv.stdin.write("STATUS %s\n" % (m[3][0] if m and m[1] == "/emgd/status" else m))
            drv.stdin.flush()
        elif line == "RESTART":
            rc = d.stop()
            check(rc == 0, "emgd stopped (%s) with the page connected" % rc)
            time.sleep(1.0)  # the page sees the refused connections for a while
            d.log.close()
            d = Daemon(conf, port=d.port, workdir=d.dir)
            drv.stdin.write("RESTARTED\n")
            drv.stdin.flush()
        elif line == "RELOAD":
            d.write_conf(conf.replace("[muscles]\n", "[web]\ncontrol = no\n[muscles]\nglute_med_r = 7\n"))
            n = d.logtext().count("reload: applied")
            d.signal(signal.SIGHUP)
            end = time.time() + 15
            while d.logtext().count("reload: applied") == n and time.time() < end:
                time.sleep(0.05)
            check(d.logtext().count("reload: applied") > n, "emgd applied the reload")
            drv.stdin.write("RELOADED\n")
            drv.stdin.flush()
        elif line.startswith("FAIL"):
            break
        elif line == "DONE":
            done = True
    drv.wait(10)
    timer.cancel()
    check(done and drv.returncode == 0, "the browser checks passed (driver exit %s)" % drv.returncode)
    check(os.path.getsize(shot) > 10000, "screenshot saved: %s" % shot)
finally:
    if drv and drv.poll() is None:
        drv.kill()
    rc = d.stop()
    log = d.logtext()
    print("".join(l + "\n" for l in log.splitlines() if "calibration" in l or "marker:" in l), end="")
    if d is not first:
        d.log.close()
    recdir = os.path.join(first.dir, "rec")
    recs = [f for f in os.listdir(recdir) if f.startswith("webview")] if os.path.isdir(recdir) else []
    rec = os.path.join(first.dir, "rec", recs[0]) if len(recs) == 1 else None
    shutil.rmtree(npmdir, ignore_errors=True)
check(rec is not None, "one recording started from the page: %s" % recs)
check(rc == 0, "emgd exits 0 on SIGTERM with the page connected (%s)" % rc)
MARK = "set 2, hip thrust (from the page)"
check("marker: " + MARK in log, "the marker typed in the page is logged")
if subprocess.run(["/usr/bin/python3", "-c", "import mne"], capture_output=True).returncode == 0:
    descs = [a["description"] for a in mne_read(rec)["annotations"]]
    check(MARK in descs, "the marker is in the recording's annotations (MNE): %s" % descs)
else:
    print("skip: python3-mne missing, the annotation is not read back")
first.close()
check("ERROR" not in log and "runtime error" not in log, "no sanitizer reports in the log")
print("OK")
