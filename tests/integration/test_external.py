# SPDX-License-Identifier: MIT
"""Onsets on recordings emgd did not make, measured as a user would: the real emgd replays
each as a CSV (`driver = replay`, `realtime = no`: as fast as it is processed), default
settings, and a UDP receiver (a static `[osc] target`, so nothing is missed before it could
subscribe) takes /emg/<m>/onset, /offset and /emg/frame.  Nothing is lost: the last
tick arrives with 0 samples dropped and the log reports no lost frame.

1. External set 2 (tests/data/emg-detectors, emgdet-train.bin: an independent group's
   biophysical model, Yuvaraj et al. 2023, MIT): its first 8 contractions with an end, eight to
   a stream, each from 0.6-2.0 s of its trial's own rest before its onset to its end (1.5-2.5 s
   before the first, 1 s of rest after the last), white noise at 10, 20 and 40 dB (one draw,
   scaled).  Scored against the trials' first activity and end, as test_accuracy scores the
   same data through the pipeline in-process (bench_onset's "ext2x5" rows, 45 contractions:
   median |e| 12.0 / 5.0 / 7.0 ms, mean +12.1 / +6.0 / -6.9 ms, no miss).  Every contraction
   once, no other burst, onsets median |e| within the issue-12 target (25 ms at 10 dB, 10 ms
   above) and the mean within 15 ms at 10 dB, 10 ms above (the +-5 ms target is not met on
   this source: README "Signal validity"), offsets median |e| <= 40 ms.
   And eight of them cut to 0.2-0.35 s, the first 0.4-1.1 s into the stream, at 20 dB: the
   whole stream is the start-up; every contraction reported once, onsets median |e| <= 10 ms.
2. A real tibialis anterior (tests/data/emggo: emgGO's sample, MIT), 250 Hz, 56 ballistic
   contractions, the heart 10-20 dB over the rest EMG.  No onset truth: scored like
   test_accuracy's test_real_heartbeats (in-process: 56 of 56 found, 0.29 false onsets per
   minute of rest) - a contraction is found with an onset from 0.5 s before its marked window
   to its end, a false onset is one more than 0.5 s from every window.  Limits: 55 found, at
   most 1 false onset per minute of rest."""
import os
import random
import socket
import statistics
import struct
import tempfile
import time

from emgtest import Daemon, check, fail, mne_read, osc_messages, wait_new

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


# SO_RCVBUFFORCE (include/uapi/asm-generic/socket.h): set a receive buffer past rmem_max
# (needs CAP_NET_ADMIN); Python's socket module does not name it.
SO_RCVBUFFORCE = 33
BURST_BYTES = 8 << 20  # what the receive buffer must hold (the kernel doubles what is asked)


class Receiver:
    """A UDP socket, the daemon's static target, whose buffer holds a whole replay's output.
    A replay at `realtime = no` sends a second of the stream's metrics in well under a
    millisecond: the tibialis's 549 ticks and its events come in ~0.1 s, more datagrams than
    a default socket buffer (rmem_default, ~200 kB) holds, and a reader - a Python thread, or
    oscdump writing a file - lost ticks while the test and the daemon shared two busy cores.
    With root the buffer is set past rmem_max (SO_RCVBUFFORCE); `room` says what it got."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BURST_BYTES)
        except OSError:  # not root: as much as rmem_max allows
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BURST_BYTES)
        self.room = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.msgs = []

    def _receive(self, left):
        """The next datagram's messages into msgs, waiting at most left s."""
        self.sock.settimeout(left)
        try:
            self.msgs += [(addr, args) for addr, _, args in osc_messages(self.sock.recv(65536))]
        except socket.timeout:
            pass

    def wait_for(self, pred, timeout):
        """The first message for which pred is true, receiving until timeout s; None."""
        return wait_new(self.msgs, pred, timeout, self._receive)

    def close(self):
        self.sock.close()


def replay(name, rate, x, muscle, record=False):
    """Play samples x (uV) at rate through the real emgd; its (onset, offset) pairs of muscle.
    record: with `record = auto` too, and the recording read back by MNE must hold every
    sample (a replay at realtime = no waits for the recorder as for the DSP thread)."""
    tmp = tempfile.TemporaryDirectory(prefix="emgd-ext-")
    r = Receiver()  # first: the daemon sends to it from the first sample
    d = None
    try:
        csv = os.path.join(tmp.name, name + ".csv")
        with open(csv, "w") as f:
            f.write("# rate = %g\n%s\n" % (rate, muscle))
            f.writelines("%.4f\n" % v for v in x)
        d = Daemon("[device]\ndriver = replay\nfile = %s\nrealtime = no\n"
                   "[osc]\ntarget = 127.0.0.1:%d\npublish_rate = 1\n"
                   "[muscles]\n%s = 1\n" % (csv, r.port, muscle)
                   + ("[daemon]\nrecord = auto\n" if record else ""))
        # /emg/frame i i: tick, samples dropped; one tick per second of the stream, and the
        # DSP thread sends a tick after the events of the samples before it
        last_tick = len(x) // int(rate) - 1
        m = r.wait_for(lambda m: m[0] == "/emg/frame" and m[1][0] >= last_tick, 60)
        if m is None:
            ticks = [m[1][0] for m in r.msgs if m[0] == "/emg/frame"]
            fail("%s: no /emg/frame tick %d within 60 s (%d ticks, last %s):\n%s"
                 % (name, last_tick, len(ticks), ticks[-1:], d.logtext()[-2000:]))
        ticks = [m[1][0] for m in r.msgs if m[0] == "/emg/frame"]
        check(ticks == list(range(len(ticks))), "%s: every tick received (%d)" % (name, len(ticks)))
        check(m[1][1] == 0, "%s: played whole, 0 samples dropped (got %d)" % (name, m[1][1]))
        # realtime = no waits for the DSP thread: before it did, the replay outran it and the
        # frame ring dropped 29221 of part 1's 51493 frames
        check("frames lost" not in d.logtext(), "%s: no frame lost:\n%s" % (name, d.logtext()[-1000:]))
        check(not [m for m in r.msgs if m[0] == "/emgd/error"], "%s: no errors" % name)
        if record:
            # the last tick is a second's; the file's last frames come after it: stop once
            # the replay said it reached the end (the log line is the signal), and the
            # stop records every frame captured before it
            end = time.time() + 30
            while "end of replay file" not in d.logtext() and time.time() < end:
                time.sleep(0.05)
            check("end of replay file" in d.logtext(), "%s: the replay reached its end" % name)
            d.stop()
            recdir = os.path.join(d.dir, "rec")
            files = sorted(os.listdir(recdir)) if os.path.isdir(recdir) else []
            check(len(files) == 1, "%s: one recording (%s)" % (name, files))
            seen = mne_read(os.path.join(recdir, files[0]))
            check(seen["n_times"] >= len(x) - rate / 10 and "not written" not in d.logtext(),
                  "%s: the recording holds every sample: %d of %d, as MNE reads it%s"
                  % (name, seen["n_times"], len(x), "" if "not written" not in d.logtext()
                     else "; log: " + [l for l in d.logtext().splitlines() if "not written" in l][0]))
        on, out = None, []
        for m in r.msgs:
            if m[0] == "/emg/%s/onset" % muscle:
                on = m[1][1]
            elif m[0] == "/emg/%s/offset" % muscle and on is not None:
                out.append((on, on + round(m[1][1] * rate)))
                on = None
        return out
    finally:
        r.close()
        rc = d.close() if d else 0
        check(rc == 0, "%s: emgd exited cleanly" % name)


def external_set2(n=8, burst_uv=50.0, snr_db=20.0, seed=12, first_rest=(1.5, 2.5), cut=None):
    """(rate, stream, truth): n contractions of emgdet-train.bin, truth (onset, offset) samples
    (the EMGDET2 layout: tests/data/emg-detectors/convert.py); the first first_rest s into the
    stream, each cut to cut = (lo, hi) s after its onset (silent after it) when given."""
    with open(os.path.join(DATA, "emg-detectors", "emgdet-train.bin"), "rb") as f:
        b = f.read()
    magic, ntrials, nsamples, rate, _ = struct.unpack_from("<8sIIII", b, 0)
    check(magic == b"EMGDET2\0" and rate == 1000, "emgdet-train.bin: EMGDET2 at 1000 Hz")
    off, trials = 24, []
    for _ in range(ntrials):
        first, _thr, end, scale = struct.unpack_from("<IIIf", b, off)
        off += 16
        if end != 0xFFFFFFFF and first >= 2500 and end + 1000 <= nsamples:
            trials.append((first, end, [v * scale for v in struct.unpack_from("<%dh" % nsamples, b, off)]))
        off += 2 * nsamples
    check(len(trials) >= n, "%d trials with an end (need %d)" % (len(trials), n))
    rng = random.Random(seed)
    stream, truth = [], []
    for j, (first, end, x) in enumerate(trials[:n]):
        rest = rng.uniform(*first_rest) if j == 0 else rng.uniform(0.6, 2.0)
        gain = burst_uv / (sum(v * v for v in x[first:end]) / (end - first)) ** 0.5
        start = first - int(rest * rate)
        if cut:
            end = first + int(rng.uniform(*cut) * rate)
        truth.append((len(stream) + first - start, len(stream) + end - start))
        stream.extend(v * gain for v in x[start:end])
        if j == n - 1:  # 1 s of rest after the last: its own, or silence after a cut
            stream.extend(v * gain for v in x[end:end + 1000]) if not cut else stream.extend([0.0] * 1000)
    sd = burst_uv * 10 ** (-snr_db / 20)
    return rate, [v + rng.gauss(0, sd) for v in stream], truth


def tibialis():
    """(rate, samples in uV, windows) of emggo.bin's "tibialis" (EMGREAL2: tests/data/emggo/convert.py)."""
    with open(os.path.join(DATA, "emggo", "emggo.bin"), "rb") as f:
        b = f.read()
    check(b[:8] == b"EMGREAL2", "emggo.bin: EMGREAL2")
    (nrec,), off = struct.unpack_from("<I", b, 8), 12
    for _ in range(nrec):
        name, rate, nch, n, nwin, nbeats = struct.unpack_from("<16sfIIII", b, off)
        off += 36
        scale = struct.unpack_from("<%df" % nch, b, off)
        off += 4 * nch
        win = struct.unpack_from("<%dI" % (2 * nwin), b, off)
        off += 8 * nwin + 4 * nbeats
        if name.rstrip(b"\0") == b"tibialis":
            check(nch == 1, "tibialis: one channel")
            x = struct.unpack_from("<%dh" % n, b, off)
            return rate, [v * scale[0] for v in x], list(zip(win[0::2], win[1::2]))
        off += 2 * n * nch
    fail("emggo.bin: no tibialis recording")


# 1. external set 2 at 10, 20 and 40 dB (the same contractions and noise draw, scaled)
# limits: onsets median |e| (the issue-12 target), |mean e|, offsets median |e|, all in ms
LIMITS = {10: (25, 15, 40), 20: (10, 10, 40), 40: (10, 10, 40)}
for snr, (lim_med, lim_mean, lim_off) in LIMITS.items():
    rate, stream, truth = external_set2(snr_db=snr)
    got = replay("external-%gdB" % snr, rate, stream, "glute_max_l", record=snr == 20)
    errs, off_errs, extra = [], [], []
    for on, end in got:
        near = [t for t in truth if abs(on - t[0]) < 0.15 * rate]
        if not near:
            extra.append(on)
            continue
        errs.append((on - near[0][0]) * 1e3 / rate)
        off_errs.append((end - near[0][1]) * 1e3 / rate)
    print("external set 2, %d contractions at %g dB through emgd: onsets median |e| %.1f ms, "
          "mean %+.1f ms, max |e| %.1f ms; offsets median |e| %.1f ms, mean %+.1f ms; %d other bursts"
          % (len(truth), snr, statistics.median(map(abs, errs)) if errs else -1,
             statistics.mean(errs) if errs else 0, max(map(abs, errs)) if errs else -1,
             statistics.median(map(abs, off_errs)) if off_errs else -1,
             statistics.mean(off_errs) if off_errs else 0, len(extra)))
    check(len(errs) == len(truth), "%g dB: every contraction reported once: %d of %d (onsets %s, truth %s)"
          % (snr, len(errs), len(truth), [g[0] for g in got], [t[0] for t in truth]))
    check(not extra, "%g dB: no other burst (at %s)" % (snr, extra))
    check(statistics.median(map(abs, errs)) <= lim_med,
          "%g dB: onsets median |error| <= %g ms: %s" % (snr, lim_med, errs))
    check(abs(statistics.mean(errs)) <= lim_mean, "%g dB: onsets mean error within %g ms: %s"
          % (snr, lim_mean, errs))
    check(statistics.median(map(abs, off_errs)) <= lim_off,
          "%g dB: offsets median |error| <= %g ms: %s" % (snr, lim_off, off_errs))

# 1b. short contractions early: a trial of eight 0.2-0.35 s contractions recorded on its own,
# the first 0.4-1.1 s in, is all start-up (the first 7 s, where a burst must last 500 ms unless
# its power lies over 70 Hz, a muscle's): every one reported, as in-process (bench_onset shorts)
rate, stream, truth = external_set2(snr_db=20, seed=5, first_rest=(0.4, 1.1), cut=(0.2, 0.35))
got = replay("external-short", rate, stream, "glute_max_l")
errs = [(on - t[0]) * 1e3 / rate for on, _ in got for t in truth if abs(on - t[0]) < 0.15 * rate]
print("external set 2, %d contractions of 0.2-0.35 s from %.2f s, 20 dB, through emgd: %d reported, "
      "onsets median |e| %.1f ms" % (len(truth), truth[0][0] / rate, len(got),
                                      statistics.median(map(abs, errs)) if errs else -1))
check(len(got) == len(truth) and len(errs) == len(truth),
      "short contractions: every one reported once, no other: %d reported, %d matched, of %d"
      % (len(got), len(errs), len(truth)))
check(statistics.median(map(abs, errs)) <= 10, "short contractions: onsets median |e| <= 10 ms: %s" % errs)

# 2. the real tibialis with its heart: its replay's output needs a buffer only root can set
probe = Receiver()
room = probe.room
probe.close()
if room < BURST_BYTES:
    print("skip: the tibialis part needs a %d MB UDP receive buffer: run as root or raise "
          "net.core.rmem_max (this socket got %d kB)" % (BURST_BYTES >> 20, room >> 10))
    raise SystemExit(0)
rate, x, windows = tibialis()
got = replay("tibialis", rate, x, "tibialis_l", record=True)
pre, eligible = int(0.5 * rate), int(0.5 * rate)
found = sum(1 for a, b in windows if any(a <= on + pre and on < b for on, _ in got))
busy = [False] * (len(x) + 1)
for a, b in windows:
    for i in range(max(0, a - pre), min(len(x), b + pre)):
        busy[i] = True
fa = sum(1 for on, _ in got if eligible <= on < len(x) and not busy[on])
rest_min = sum(1 for i in range(eligible, len(x)) if not busy[i]) / rate / 60
print("tibialis through emgd: %d of %d contractions found, %d false onsets in %.1f min of rest "
      "(%.2f per min)" % (found, len(windows), fa, rest_min, fa / rest_min))
check(found >= 55, "tibialis: %d of %d contractions found (limit 55)" % (found, len(windows)))
check(fa / rest_min <= 1.0, "tibialis: %.2f false onsets per minute of rest (target 1)" % (fa / rest_min))
