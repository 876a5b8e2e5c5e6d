#!/usr/bin/python3
"""Convert the emg-detectors trials (1608Moni/EMG_detectors, MIT) into emgdet.bin
and emgdet-train.bin.

Run from this folder with the three .mat files beside it or give their folder:
    /usr/bin/python3 convert.py /path/to/emg-detectors
RawEMGforce300.mat (the authors' training trials) is in the repository's
history only: `git show 1225504:data/RawEMGforce300.mat > RawEMGforce300.mat`.
Needs python3-h5py and python3-scipy (Debian).  Not run by the tests: the
output is committed, this script documents how it was made.

Layout (little-endian):
    char magic[8] = "EMGDET1\\0"
    u32 ntrials, nsamples, rate_hz, onset_thr   (onset_thr: the authors' truth, 7999)
    per trial: u32 onset_first, f32 scale, i16 x[nsamples]   (value = x * scale)
onset_first is where the first motor-unit activity shows, before the
authors' threshold truth: the first sample from 7.9 s on where the 5 ms RMS
of the clean signal's first difference (its high-frequency content; the
clean rest holds a slow sub-1 % drift) reaches 1 % of its level over 8-10 s.

emgdet-train.bin: the 50 trials of RawEMGforce300.mat, whole (13 s), whose
contractions start at 3, 7 or 8 s and most of which end 5 s later:
    char magic[8] = "EMGDET2\0"
    u32 ntrials, nsamples, rate_hz, 0
    per trial: u32 first, u32 thr_on, u32 end, f32 scale, i16 x[nsamples]
thr_on is the authors' truth (the first |x| > 0.05); first and end (the first
sample after the activity; 0xffffffff: it runs to the end of the trial) use
the same 1 % of the first difference's RMS as onset_first, around the
threshold crossings.
"""
import os
import struct
import sys

import h5py
import numpy as np
import scipy.io as sio

NSAMP = 10000  # 8 s of rest, 2 s of contraction: all the tests need
src = sys.argv[1] if len(sys.argv) > 1 else "."
a = np.array(h5py.File(os.path.join(src, "TestDataRawEMGforce300.mat"), "r")["data"])
b = sio.loadmat(os.path.join(src, "RawEMGHighforce.mat"))["data"].T
trials = np.concatenate([a, b], axis=1)[:NSAMP, :]
out = [struct.pack("<8sIIII", b"EMGDET1\0", trials.shape[1], NSAMP, 1000, 7999)]
for t in range(trials.shape[1]):
    x = trials[:, t]
    d = np.diff(x)
    lvl = np.sqrt(np.mean(d[8000:] ** 2))
    r = np.sqrt(np.convolve(d ** 2, np.ones(5) / 5, mode="same"))
    first = 7900 + int(np.nonzero(r[7900:] > 0.01 * lvl)[0][0])
    scale = float(np.max(np.abs(x))) / 32767.0
    q = np.round(x / scale).astype("<i2")
    out.append(struct.pack("<If", first, scale) + q.tobytes())
open("emgdet.bin", "wb").write(b"".join(out))
print(trials.shape[1], "trials written")

c = sio.loadmat(os.path.join(src, "RawEMGforce300.mat"))["data"].T
out = [struct.pack("<8sIIII", b"EMGDET2\0", c.shape[1], c.shape[0], 1000, 0)]
for t in range(c.shape[1]):
    x = c[:, t]
    over = np.nonzero(np.abs(x) > 0.05)[0]
    thr_on, thr_off = int(over[0]), int(over[-1]) + 1
    d = np.diff(x)
    lvl = np.sqrt(np.mean(d[thr_on:thr_off - 1] ** 2))
    r = np.sqrt(np.convolve(d ** 2, np.ones(5) / 5, mode="same"))
    lo = thr_on - 100
    act = lo + np.nonzero(r[lo:thr_off + 100] > 0.01 * lvl)[0]
    first, end = int(act[0]), int(act[-1]) + 1
    if end >= c.shape[0] - 10:
        end = 0xFFFFFFFF
    scale = float(np.max(np.abs(x))) / 32767.0
    q = np.round(x / scale).astype("<i2")
    out.append(struct.pack("<IIIf", first, thr_on, end, scale) + q.tobytes())
open("emgdet-train.bin", "wb").write(b"".join(out))
print(c.shape[1], "training trials written")
