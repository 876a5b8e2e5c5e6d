#!/usr/bin/python3
"""Convert the emg-detectors trials (1608Moni/EMG_detectors, MIT) into emgdet.bin.

Run from this folder with the two .mat files beside it or give their folder:
    /usr/bin/python3 convert.py /path/to/emg-detectors
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
