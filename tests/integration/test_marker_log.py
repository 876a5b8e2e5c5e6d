# SPDX-License-Identifier: MIT
"""/emgd/marker text in the log (issue 16 item 4).

The marker was logged verbatim: a newline plus "<2>" forged a separate critical
journal entry with the client's words, ANSI escapes reached terminals, and a
60 KB marker was one 60 KB log line.  Now the log gets the text through
emg_text_clean() (the recorder's rule): control characters become spaces,
the line is capped at 200 bytes on a UTF-8 boundary and says it was cut."""
import time

from emgtest import Client, Daemon, check

ESC = "\x1b"
d = Daemon("[device]\nscenario = rest\n")
c = Client(d)
try:
    forged = "set 2\n<2>evil: disk on fire" + ESC + "[2J" + ESC + "]0;owned\x07 caf\u00e9 " + "x" * (60 * 1024)
    r = c.request("/emgd/marker", forged, reply="/emgd/ok", timeout=5)
    check(r is not None and r[1] == "/emgd/ok", "a 60 KB marker with a newline and escapes is accepted")
    r = c.request("/emgd/marker", "plain \u00e9t\u00e9 marker", reply="/emgd/ok")
    check(r is not None and r[1] == "/emgd/ok", "a plain marker is accepted")
    # The plain marker is logged after the hostile one: its line is the signal.
    end = time.time() + 10
    while "marker: plain" not in d.logtext() and time.time() < end:
        c.pump(0.05)
finally:
    c.close()
    d.close(keep=True)

with open(d.log.name, "rb") as f:
    raw = f.read()
lines = raw.split(b"\n")
check(b"marker: plain \xc3\xa9t\xc3\xa9 marker" in raw, "a plain marker is logged as sent (UTF-8 kept)")
check(not any(l.startswith(b"<2>evil") or l.startswith(b"evil") for l in lines),
      "no log line starts with the forged <2>evil")
check(b"\x1b" not in raw and b"\x07" not in raw, "no ESC or BEL byte reached the log")
mk = [l for l in lines if b"marker: set 2" in l]
check(len(mk) == 1, "the hostile marker is one log line")
check(len(mk[0]) <= 240, "the logged marker line is bounded: %d bytes" % len(mk[0]))
check(mk[0].endswith(b"[cut]") and b"<2>evil: disk on fire" in mk[0] and b"caf\xc3\xa9" in mk[0],
      "it keeps the words, says it was cut: %r" % mk[0][:100])
check(max(len(l) for l in lines) < 1024, "no log line is longer than 1 KB")
d.tmp.cleanup()
print("PASS")
