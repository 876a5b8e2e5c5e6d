#!/usr/bin/python3
"""Convert emgGO's two sample recordings (GallVp/emgGO, MIT) into emggo.bin.

Run from this folder:  /usr/bin/python3 convert.py /path/to/ta.mat /path/to/ecg8.mat
    ta.mat   = "samples/Sample Data.mat" of https://github.com/GallVp/emgGO at 2e71bc9
               (git show "2e71bc9:samples/Sample Data.mat" > ta.mat)
    ecg8.mat = "samples/ECG Contaminated.mat" at db7392f
Needs python3-scipy (Debian).  Not run by the tests: the output is
committed, this script documents how it was made.

tibialis: emgGO's docs: "a single channel of surface electromyography signal
recorded from the tibialis anterior muscle during multiple repetitions of
ballistic dorsiflexion.  It was recorded at a rate of 250 Hz", which
"contains 56 muscle activations".  Between them the QRS and P waves of the
heart stand out of the rest EMG (~80 bpm).  Units are not stated; the values
(bursts of 1-2 thousand, the QRS ~400) are read as uV.
ecg8: 8 channels at 2048 Hz, 20 s, named "ECG contaminated" by the authors:
a ~104 bpm heart (QRS ~0.5) under rhythmic bursts every ~1.8 s; read as mV.
It has too little rest for onsets to be scored without a truth: it is kept
for its heartbeats.

Nothing here is an onset truth; the authors marked none.  Two markings, by
rule:
- Activity windows (tibialis): on a zero-phase band-pass (20 Hz - 0.4 fs,
  4th order) and its 50 ms centred RMS env: activity where env > 15 x its
  median (the contractions are 25-50 x, a QRS ~5 x), merged across gaps
  < 0.3 s and kept if >= 0.1 s long; each start moved back, at most 60 ms,
  while env stays >= 2 x its median (the rise of a ballistic contraction),
  each end forward while it does.  The rule finds 56 windows, the count the
  authors state.  A marked onset is where the main burst rises: a small
  precursor before it is left out.
- R peaks: peaks of the channel mean of a zero-phase 5-40 Hz band-pass
  (2nd order), at least half its 99.5th percentile of |x| at rest and 0.4 s
  apart, outside the activity windows +-0.5 s (tibialis: 552; ecg8: 34,
  RR 0.53-0.66 s).

Layout (little-endian):
    char magic[8] = "EMGREAL2"
    u32 nrec
    per recording:
        char name[16]; f32 rate_hz; u32 nch, nsamples, nwin, nbeats
        f32 scale[nch]                      (uV per count, per channel)
        u32 win[nwin][2]                    (activity: first sample, first sample after)
        u32 beat[nbeats]                    (R peaks, samples)
        i16 x[nsamples][nch]                (interleaved; uV = x * scale[ch])
"""
import struct
import sys

import numpy as np
import scipy.io as sio
from scipy.signal import butter, find_peaks, sosfiltfilt


def windows(x, fs, hi=15.0, lo=2.0, back_s=0.06):
    bp = sosfiltfilt(butter(4, [20, 0.4 * fs], "band", fs=fs, output="sos"), x, axis=0)
    w = int(0.05 * fs)
    env = np.sqrt(np.convolve(np.mean(bp ** 2, axis=1), np.ones(w) / w, mode="same"))
    med = np.median(env)
    edges = np.flatnonzero(np.diff(np.r_[0, (env > hi * med).astype(int), 0]))
    out = []
    for a, b in zip(edges[0::2], edges[1::2]):
        if out and a - out[-1][1] < 0.3 * fs:
            out[-1][1] = b
        else:
            out.append([a, b])
    out = [o for o in out if o[1] - o[0] >= 0.1 * fs]
    for o in out:
        stop = o[0] - int(back_s * fs)
        while o[0] > stop and env[o[0] - 1] >= lo * med:
            o[0] -= 1
        while o[1] < len(env) and env[o[1]] >= lo * med:
            o[1] += 1
    return out


def rpeaks(x, fs, win):
    bp = sosfiltfilt(butter(2, [5, 40], "band", fs=fs, output="sos"), x, axis=0)
    s = np.mean(bp, axis=1)
    busy = np.zeros(len(s), bool)
    for a, b in win:
        busy[max(0, a - int(0.5 * fs)):b + int(0.5 * fs)] = True
    ref = np.percentile(np.abs(s[~busy]), 99.5)
    pk, _ = find_peaks(s, height=0.5 * ref, distance=int(0.4 * fs))
    return pk[~busy[pk]]


recs = []
for name, path, uv, marked in (("tibialis", sys.argv[1] if len(sys.argv) > 1 else "ta.mat", 1.0, True),
                               ("ecg8", sys.argv[2] if len(sys.argv) > 2 else "ecg8.mat", 1000.0, False)):
    m = sio.loadmat(path, squeeze_me=True, struct_as_record=False)["EMG"]
    x = np.asarray(m.channelData, dtype=float).reshape(len(m.channelData), -1) * uv
    x = x - np.mean(x, axis=0)
    fs = float(m.fs)
    win = windows(x, fs) if marked else []
    beats = rpeaks(x, fs, win)
    scale = np.max(np.abs(x), axis=0) / 32767.0
    q = np.round(x / scale).astype("<i2")
    print(name, fs, "Hz", x.shape, len(win), "windows", len(beats), "R peaks")
    recs.append(struct.pack("<16sfIIII", name.encode(), fs, x.shape[1], x.shape[0], len(win), len(beats)) +
                scale.astype("<f4").tobytes() + np.array(win, dtype="<u4").reshape(-1).tobytes() +
                np.array(beats, dtype="<u4").tobytes() + q.tobytes())
open("emggo.bin", "wb").write(struct.pack("<8sI", b"EMGREAL2", len(recs)) + b"".join(recs))
