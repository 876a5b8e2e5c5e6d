# SPDX-License-Identifier: MIT
"""The OSCQuery server's threads under concurrent clients and reloads (issue 16), for
ThreadSanitizer (build-tsan runs it: suite threads) as much as for the -O2 build.

At the same time, for a few seconds: six HTTP clients (each from its own loopback address,
so the per-address limit of 8 is not what is tested) fetch the namespace, HOST_INFO, a
muscle's node and the browser view in a loop; four WebSocket clients LISTEN to /emg/levels
and /emg/frame and read every frame, one of them also sending control over the socket
(/emgd/ping); a UDP client asks /emgd/stats (which reads the WebSocket counters) and a UDP
subscriber streams.  Meanwhile the main thread reloads: muscle maps A and B (the HTTP
thread's document is swapped), allow lists (the accept policy), [oscquery] www, and a new
[oscquery] name, which stops the server under its live clients and starts a new one (the
WebSocket clients reconnect).

Checks: every HTTP answer is 200 (or 404 for a muscle of the other map) with valid JSON
naming muscles of map A or B only; each WebSocket client gets frames after the last reload;
the UDP subscriber's ticks have no gap where the device did not restart; emgd answers and
exits 0; no sanitizer report in its log."""
import http.client
import json
import signal
import sys
import threading
import time

from emgtest import WS, Client, Daemon, check, fail, free_tcp_port, osc, osc_parse, wait_log

MAP_A = ["glute_max_l", "glute_max_r", "glute_med_l", "glute_med_r"]
MAP_B = ["glute_max_l", "hamstring_l", "glute_med_l", "hamstring_r"]
port = free_tcp_port()


def conf(muscles, allow="127.0.0.0/8", www="", name=""):
    return ("[osc]\nallow = %s\n[oscquery]\nenabled = yes\nhttp = 127.0.0.1:%d\nwww = %s\n%s[muscles]\n%s"
            % (allow, port, www, "name = %s\n" % name if name else "",
               "".join("%s = %d\n" % (m, i + 1) for i, m in enumerate(muscles))))


d = Daemon(conf(MAP_A))
if "built without libmicrohttpd" in d.logtext():
    d.close()
    print("SKIP: emgd was built without libmicrohttpd")
    sys.exit(77)
stop = threading.Event()
lock = threading.Lock()
http_ok = {"/": 0, "/?HOST_INFO": 0, "/emg/glute_max_l/rms": 0, "/emg/hamstring_l/rms": 0, "/ui/": 0}
http_bad = []
ws_frames = {}  # client -> [time of each binary frame]
ws_pongs = {}
ws_reconnects = {}


def http_worker(k):
    src = "127.0.2.%d" % (k + 1)
    paths = list(http_ok)
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(src, 0))
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            c.close()
        except (OSError, http.client.HTTPException) as e:
            # the server is restarted by the [oscquery] name reload: a refused or cut
            # connection is expected in that moment only, and retried
            with lock:
                http_bad.append((time.time(), path, "exception %r" % e))
            time.sleep(0.02)  # back off while the server restarts (no event to wait on from here)
            continue
        good = False
        if path == "/ui/":
            good = r.status in (200, 404)
        elif r.status == 200:
            try:
                j = json.loads(body)
                text = json.dumps(j)
                names = {m for m in MAP_A + MAP_B if "/emg/%s/" % m in text}
                good = names <= set(MAP_A) or names <= set(MAP_B)
            except ValueError:
                good = False
        elif r.status == 404 and path.startswith("/emg/"):
            good = True  # that muscle is not in the current map
        with lock:
            if good:
                http_ok[path] += 1
            else:
                http_bad.append((time.time(), path, "%d %r" % (r.status, body[:120])))


def ws_worker(k):
    src = "127.0.3.%d" % (k + 1)
    ws_frames[k], ws_pongs[k], ws_reconnects[k] = [], 0, 0
    while not stop.is_set():
        try:
            w = WS("127.0.0.1", port, source=src)
        except OSError:
            time.sleep(0.02)  # the server is being restarted: retry shortly
            continue
        if w.status != 101:
            w.close()
            time.sleep(0.02)
            continue
        w.listen("/emg/levels")
        w.listen("/emg/frame")
        n = 0
        while not stop.is_set():
            if k == 0 and n % 20 == 0:
                w.send(2, osc("/emgd/ping"))
            n += 1
            f = w.frame(1)
            if f is None or f[0] == 8:
                break
            if f[0] == 2:
                if osc_parse(f[1])[0] == "/emgd/pong":
                    ws_pongs[k] += 1
                else:
                    ws_frames[k].append(time.time())
        w.close()
        ws_reconnects[k] += 1


threads = [threading.Thread(target=http_worker, args=(k,)) for k in range(6)]
threads += [threading.Thread(target=ws_worker, args=(k,)) for k in range(4)]
sub = Client(d)
stats = Client(d)
restart_windows = []
rc = None
try:
    r = sub.request("/emgd/subscribe", 60, reply="/emgd/subscribed")
    check(r and r[1] == "/emgd/subscribed", "UDP subscriber")
    for t in threads:
        t.start()
    sub.pump(0.5)
    reloads = [conf(MAP_B), conf(MAP_B, allow="127.0.0.1/32, 127.0.2.0/24, 127.0.3.0/24"),
               conf(MAP_B, www="/nonexistent"), conf(MAP_A), conf(MAP_A, name="emgd threads test"),
               conf(MAP_B, name="emgd threads test"), conf(MAP_B, allow="127.0.0.0/8"), conf(MAP_A)]
    t0 = time.time()
    for i, text in enumerate(reloads):
        d.write_conf(text)
        before = d.logtext().count("restarting the device")
        ts = time.time()
        d.signal(signal.SIGHUP)
        check(wait_log(d, "reload: applied", i + 1, 30, sub), "reload %d applied" % (i + 1))
        for _ in range(5):
            m = stats.request("/emgd/stats", reply="/emgd/stats", timeout=5)
            if not (m and m[1] == "/emgd/stats"):
                fail("/emgd/stats not answered after reload %d" % (i + 1))
        sub.pump(0.4)
        restart_windows.append((ts, time.time(), d.logtext().count("restarting the device") > before))
    sub.send("/emgd/subscribe", 60)
    t_last = time.time()
    sub.pump(1.0)
    elapsed = time.time() - t0
finally:
    stop.set()
    for t in threads:
        t.join(10)
    sub.close()
    stats.close()
    rc = d.stop()
    log = d.logtext()
    d.close()

print("%d reloads in %.1f s; HTTP answers %s; WebSocket frames %s, pongs %s, reconnects %s"
      % (len(reloads), elapsed, http_ok, {k: len(v) for k, v in ws_frames.items()}, ws_pongs, ws_reconnects))
check(rc == 0, "emgd exited cleanly (rc %s)" % rc)
check("Sanitizer" not in log and "runtime error" not in log,
      "no sanitizer report" + ("" if "Sanitizer" not in log else ":\n" + log[log.find("WARNING: ThreadSanitizer"):][:4000]))
check(all(v > 0 for v in http_ok.values()), "every HTTP path answered while reloading")
# a refused or cut connection only while the server restarted: the reloads changing the name
names = [text.split("name = ")[1].split("\n")[0] if "name = " in text else "" for text in [""] + reloads]
server_restarts = [w for i, w in enumerate(restart_windows) if names[i + 1] != names[i]]
late = [b for b in http_bad if not b[2].startswith("exception")]
check(not late, "no wrong HTTP answer (status or JSON): %s" % late[:3])
exc = [b for b in http_bad if b[2].startswith("exception")]
outside = [b for b in exc if not any(w[0] - 0.05 <= b[0] <= w[1] for w in server_restarts)]
check(not outside, "%d refused or cut HTTP connections, all while the server restarted (%d restarts; outside: %s)"
      % (len(exc), len(server_restarts), outside[:3]))
frames = [(m[0], m[3][0], m[3][1]) for m in sub.msgs if m[1] == "/emg/frame"]
bad = [(round(tb - t0, 2), a, b) for (ta, a, da), (tb, b, db) in zip(frames, frames[1:])
       if (b != a + 1 or db != da) and not any(w[2] and w[0] - 0.05 <= tb <= w[1] for w in restart_windows)]
check(len(frames) > 100 and not bad, "UDP subscriber: %d frames, no gap outside a device restart (%s)"
      % (len(frames), bad[:3]))
check(all(any(t > t_last for t in v) for v in ws_frames.values()),
      "each of the 4 WebSocket clients streams after the last reload")
check(ws_pongs[0] > 0, "control over the WebSocket answered (%d pongs)" % ws_pongs[0])
print("PASS")
