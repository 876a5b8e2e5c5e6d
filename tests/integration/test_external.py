# SPDX-License-Identifier: MIT
"""Onsets on data emgd did not make, measured as a user would: the real emgd replays a CSV
stream of an independent group's simulated contractions (tests/data/emg-detectors,
emgdet-train.bin: Yuvaraj et al. 2023, MIT) with white noise at 20 dB, default settings, and a
python3-liblo receiver (a static `[osc] target`, so nothing is missed before it subscribes)
takes /emg/<m>/onset and /offset. They are scored against the trials' known first activity
and end, as test_accuracy scores the same data through the pipeline in-process
(bench_onset's "ext2x5" rows: median |e| 5.0 ms, mean +6.0, no miss at 20 dB).

Eight contractions to a stream, each from 0.6-2.0 s of its own rest before its onset to its
end (1.5-2.5 s before the first, 1 s of rest after the last), as repetitions come; the
file plays as fast as the daemon takes it (`realtime = no`).  Checks: no frame lost, every
contraction reported once, no other burst, onsets within the issue-12 target (median |e| <= 10 ms) and
the mean within 10 ms (the +-5 ms target is not met on this source: README "Signal validity"),
offsets within 40 ms (median)."""
import os
import random
import statistics
import struct
import tempfile

from emgtest import Client, Daemon, check, fail, free_udp_port

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "emg-detectors",
                    "emgdet-train.bin")
N = 8           # contractions in the stream
BURST_UV = 50.0  # their RMS
SNR_DB = 20.0
SEED = 12


def trials(path):
    """(first, end, samples) of each trial whose contraction ends inside it (EMGDET2 layout,
    tests/data/emg-detectors/convert.py)."""
    with open(path, "rb") as f:
        b = f.read()
    magic, ntrials, nsamples, rate, _ = struct.unpack_from("<8sIIII", b, 0)
    check(magic == b"EMGDET2\0" and rate == 1000, "%s: an EMGDET2 file at 1000 Hz" % path)
    off, out = 24, []
    for _ in range(ntrials):
        first, _thr, end, scale = struct.unpack_from("<IIIf", b, off)
        off += 16
        x = struct.unpack_from("<%dh" % nsamples, b, off)
        off += 2 * nsamples
        if end != 0xFFFFFFFF and first >= 2500 and end + 1000 <= nsamples:
            out.append((first, end, [v * scale for v in x]))
    return rate, out


rate, ts = trials(DATA)
check(len(ts) >= N, "%d trials with an end (need %d)" % (len(ts), N))
rng = random.Random(SEED)
stream, truth = [], []  # truth: (onset, offset) sample indices in the stream
for j, (first, end, x) in enumerate(ts[:N]):
    rest = rng.uniform(1.5, 2.5) if j == 0 else rng.uniform(0.6, 2.0)
    start, stop = first - int(rest * rate), end + (1000 if j == N - 1 else 0)
    burst = x[first:end]
    gain = BURST_UV / (sum(v * v for v in burst) / len(burst)) ** 0.5
    truth.append((len(stream) + first - start, len(stream) + end - start))
    stream.extend(v * gain for v in x[start:stop])
sd = BURST_UV * 10 ** (-SNR_DB / 20)
stream = [v + rng.gauss(0, sd) for v in stream]

port = free_udp_port()
c = Client(None, port)  # first: the daemon sends it the stream from the first sample
d = None
try:
    tmp = tempfile.TemporaryDirectory(prefix="emgd-ext-")
    csv = os.path.join(tmp.name, "external.csv")
    with open(csv, "w") as f:
        f.write("# rate = %d\nglute_max_l\n" % rate)
        f.writelines("%.4f\n" % v for v in stream)
    d = Daemon("[device]\ndriver = replay\nfile = %s\nrealtime = no\n"
               "[osc]\ntarget = 127.0.0.1:%d\npublish_rate = 1\n"
               "[muscles]\nglute_max_l = 1\n" % (csv, port))
    c.d = d
    def bursts():
        """(onset, offset) sample pairs so far: each onset with the offset that follows it."""
        on, out = None, []
        for m in c.msgs:
            if m[1] == "/emg/glute_max_l/onset":
                on = m[3][1]
            elif m[1] == "/emg/glute_max_l/offset" and on is not None:
                out.append((on, on + round(m[3][1] * rate)))
                on = None
        return out

    # the last contraction's offset: all before it has been sent (one DSP thread, in order)
    last = lambda m: any(abs(b[0] - truth[-1][0]) < 0.15 * rate for b in bursts())
    if c.wait_for(last, 30) is None:
        fail("no offset of the last contraction within 30 s; got %s:\n%s"
             % (bursts(), d.logtext()[-2000:]))
    check(not [m for m in c.msgs if m[1] == "/emgd/error"], "no errors")
    # realtime = no waits for the DSP thread: before it did, the replay outran it and the
    # frame ring dropped 29221 of the stream's 51493 frames
    check("frames lost" not in d.logtext(), "no frame lost:\n%s" % d.logtext()[-1000:])
    errs, off_errs, extra = [], [], []
    for b in bursts():
        near = [t for t in truth if abs(b[0] - t[0]) < 0.15 * rate]
        if not near:
            extra.append(b[0])
            continue
        errs.append((b[0] - near[0][0]) * 1e3 / rate)
        off_errs.append((b[1] - near[0][1]) * 1e3 / rate)
    print("external set 2, %d contractions at %.0f dB through emgd: onsets median |e| %.1f ms, "
          "mean %+.1f ms, max |e| %.1f ms; offsets median |e| %.1f ms, mean %+.1f ms; %d other bursts"
          % (len(truth), SNR_DB, statistics.median(map(abs, errs)) if errs else -1,
             statistics.mean(errs) if errs else 0, max(map(abs, errs)) if errs else -1,
             statistics.median(map(abs, off_errs)) if off_errs else -1,
             statistics.mean(off_errs) if off_errs else 0, len(extra)))
    check(len(errs) == len(truth), "every contraction reported once: %d of %d (onsets %s, truth %s)"
          % (len(errs), len(truth), [b[0] for b in bursts()], [t[0] for t in truth]))
    check(not extra, "no other burst (at %s)" % extra)
    check(statistics.median(map(abs, errs)) <= 10, "onsets: median |error| <= 10 ms: %s" % errs)
    check(abs(statistics.mean(errs)) <= 10, "onsets: mean error within 10 ms: %s" % errs)
    check(statistics.median(map(abs, off_errs)) <= 40, "offsets: median |error| <= 40 ms: %s" % off_errs)
finally:
    c.close()
    rc = d.close() if d else 0
check(rc == 0, "emgd exited cleanly")
