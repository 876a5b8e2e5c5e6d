#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora in tests/fuzz/corpus/<target>/ (small, committed).

    /usr/bin/python3 tests/fuzz/make_corpus.py

Seeds are ordinary inputs - real control traffic, the documented config, small valid
CSV/EDF/BDF files - from which libFuzzer mutates.  Files named crash-* in the same
directories are regressions: inputs that once crashed a target (kept by hand, never
rewritten here).  Every file is replayed by the `fuzz-<target>` unit test.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- OSC --------------------------------------------------------------------

def pad(b):
    return b + b"\0" * (4 - len(b) % 4)


def osc(path, *args):
    tags, data = ",", b""
    for a in args:
        if isinstance(a, int):
            tags += "i"; data += struct.pack(">i", a)
        elif isinstance(a, float):
            tags += "f"; data += struct.pack(">f", a)
        else:
            tags += "s"; data += pad(a.encode())
    return pad(path.encode()) + pad(tags.encode()) + data


def bundle(*elems):
    return b"#bundle\0" + struct.pack(">II", 0, 1) + b"".join(struct.pack(">I", len(e)) + e for e in elems)


# fuzz_osc programs: set-up byte, then records (see tests/fuzz/fuzz_osc.c)
def raw(src, data):
    return bytes([src << 4 | 0]) + struct.pack(">H", len(data)) + data


def built(src, path_index, *args):  # args: (type index, 4 bytes)
    b = bytes([src << 4 | 4, path_index, len(args)])
    b += bytes(t for t, _ in args) + b"".join(struct.pack(">I", v) for _, v in args)
    return b


def wait(ms10):
    return bytes([0x0a, ms10])


EXPIRE, PUBLISH = b"\x0b", b"\x0c" + bytes(range(19))
LOOP, LOOP2, LOOPHOST2, V6LO, LAN, LAN_MAPPED, WAN, WAN6 = 0, 1, 2, 3, 5, 7, 9, 12

out("osc", "session", b"\x2d" + raw(LOOP, osc("/emgd/subscribe", 5)) + raw(LOOP, osc("/emgd/ping"))
    + PUBLISH + wait(50) + raw(LOOP, osc("/emgd/status")) + raw(LOOP, osc("/emgd/stats"))
    + raw(LOOP, osc("/emgd/unsubscribe")) + EXPIRE + PUBLISH)
out("osc", "control", b"\x05" + b"".join(raw(s, m) for s, m in [
    (LOOP, osc("/emgd/calibrate/rest", 2.0)), (LOOP, osc("/emgd/calibrate/mvc", "glute_max_l", 3)),
    (LOOP2, osc("/emgd/marker", "set 1")), (V6LO, osc("/emgd/record/start", "s1")),
    (V6LO, osc("/emgd/record/stop")), (LOOPHOST2, osc("/emgd/latency")),
    (LOOP, osc("/emgd/nope", 1, 2.5, "x"))]))
out("osc", "allow-list", b"\x85" + raw(LAN, osc("/emgd/subscribe", 2)) + raw(LAN_MAPPED, osc("/emgd/ping"))
    + raw(WAN, osc("/emgd/subscribe")) + raw(WAN6, osc("/emgd/ping")) + PUBLISH + wait(250) + EXPIRE + PUBLISH)
out("osc", "bundle", b"\x2e" + raw(LOOP, bundle(osc("/emgd/ping"), osc("/emgd/status"),
                                                 bundle(osc("/emgd/subscribe", 3)))))
out("osc", "built", b"\x29" + built(LOOP, 0, (0, 7)) + built(LOOP, 3) + built(LAN, 7, (2, 0), (1, 0x40400000))
    + bytes([0x09, 3, 3, 0, 0, 1, 0, 2, 0]) + b"\x0d\xff" + built(LAN, 0))
out("osc", "truncated", b"\x3f" + bytes([0x0e]) + struct.pack(">H", 20) + osc("/emgd/subscribe", 5) + b"\x0b")

# ---- config -----------------------------------------------------------------

with open(os.path.join(ROOT, "conf", "emgd.conf"), "rb") as f:
    out("config", "emgd.conf", f.read())
out("config", "minimal", "[osc]\nlisten = 127.0.0.1:9001\n")
out("config", "network", "[osc]\nlisten = [::]:9000\nallow = 192.168.1.0/24, fd00::/8 10.0.0.1\n"
    "target = 127.0.0.1:9100\ntarget = [::1]:9101\nmax_subscribers = 8\nrate_limit = 20\nrate_burst = 5\n")
out("config", "device", "[device]\ndriver = replay\nfile = /tmp/x.bdf\nrealtime = no\n"
    "[dsp]\nmains = 60\ndetector = tkeo\nhighpass_order = 4\nlowpass = 400\n"
    "[daemon]\nrecord = auto\nrecord_format = edf\nrt_priority = 10\n")
out("config", "muscles64", "[device]\nrate = 4000\nchannels = 64\n[muscles]\n"
    + "".join("m%02d = %d, site %d\n" % (i, i, i) for i in range(1, 65)))
out("config", "bad", "# comment\n[dsp]\ndetector = magic\n[nope]\nx = 1\n")

# ---- replay: CSV, EDF, BDF ----------------------------------------------------

out("replay_csv", "small.csv", "# rate = 2000\nglute_max_l,glute_max_r\n"
    + "".join("%.2f,%.2f\n" % (i * 1.5, -i * 0.5) for i in range(16)))
out("replay_csv", "comments.csv", "rate,250 Hz\n# names\na\n\n# gap\n1\n2e3\n-7.25\n")


def edf(bdf=False, plus=False, records=2, nsig=2, spr=8):
    """A small valid EDF/BDF (optionally EDF+C with an annotation signal)."""
    width = 3 if bdf else 2
    sigs = [("ch%d" % i, "uV", -3200.0, 3200.0, spr) for i in range(nsig)]
    if plus:
        sigs.append(("EDF Annotations" if not bdf else "BDF Annotations", "", -1, 1, 30 // width + 1))
    ns = len(sigs)
    f = lambda s, n: s.encode().ljust(n)[:n]
    hdr = (b"\xffBIOSEMI" if bdf else b"0       ")
    hdr += f("X X X X" if plus else "patient", 80) + f("Startdate 01-JAN-2024 X X X" if plus else "rec", 80)
    hdr += f("01.01.24", 8) + f("12.00.00", 8) + f(str(256 * (ns + 1)), 8)
    hdr += f(("BDF+C" if bdf else "EDF+C") if plus else ("24BIT" if bdf else ""), 44)
    hdr += f(str(records), 8) + f("0.1", 8) + f(str(ns), 4)
    for field, n in [(0, 16)]:
        hdr += b"".join(f(s[0], 16) for s in sigs)
    hdr += b"".join(f("AgAgCl" if s[1] else "", 80) for s in sigs)
    hdr += b"".join(f(s[1], 8) for s in sigs)
    hdr += b"".join(f("%g" % s[2], 8) for s in sigs)
    hdr += b"".join(f("%g" % s[3], 8) for s in sigs)
    dmin, dmax = (-8388608, 8388607) if bdf else (-32768, 32767)
    hdr += b"".join(f(str(dmin), 8) for s in sigs) + b"".join(f(str(dmax), 8) for s in sigs)
    hdr += b"".join(f("HP:20Hz" if s[1] else "", 80) for s in sigs)
    hdr += b"".join(f(str(s[4]), 8) for s in sigs)
    hdr += b"".join(f("", 32) for s in sigs)
    assert len(hdr) == 256 * (ns + 1), len(hdr)
    data = b""
    for r in range(records):
        for si, s in enumerate(sigs):
            if plus and si == ns - 1:
                tal = ("+%g\x14\x14\0" % (r * 0.1)).encode()
                if r == 0:
                    tal += b"+0.05\x14marker\x14\0"
                data += tal.ljust(s[4] * width, b"\0")
                continue
            for k in range(s[4]):
                v = (k * 997 + r * 31 + si * 7) % 2000 - 1000
                data += v.to_bytes(4, "little", signed=True)[:width]
    return hdr + data


out("replay_edf", "plain.edf", b"\0" + edf())
out("replay_edf", "plus.edf", b"\0" + edf(plus=True))
out("replay_edf", "plain.bdf", b"\1" + edf(bdf=True))
out("replay_edf", "plus.bdf", b"\1" + edf(bdf=True, plus=True, nsig=3, spr=4))

# ---- emgctl repair (fuzz_repair): the file itself, no selector byte -------------

good = edf(bdf=True, plus=True, records=4, nsig=2, spr=8)
out("repair", "good.bdf", good)
out("repair", "count-minus-one.bdf", good[:236] + b"-1      " + good[244:])
out("repair", "partial-record.bdf", good[:-7])
out("repair", "stale-count.edf", (lambda e: e[:236] + b"9       " + e[244:])(edf(plus=True, records=3)))
out("repair", "plain.edf", edf(records=2))
# issue 16 #9: a negative header size, a record count no integer type holds
out("repair", "crash-negative-hdrsize.bdf", good[:184] + b"-256    " + good[192:])
out("repair", "crash-count-1e30.bdf", good[:236] + b"1e30    " + good[244:])

# ---- calibration.ini (fuzz_calib) ------------------------------------------------

out("calib", "saved.ini", """# emgd calibration, written by emgd; one section per muscle
version = 1

[glute_max_l]
rest_method = hodges
rest_mean = 3.2500000000000001
rest_sd = 0.75
rest_var = 12.5
rest_raw_rms = 4.0999999999999996
rest_rms = 3.9000001
rest_time = 1700000000
mvc_rms = 412.5
mvc_time = 1700000100
mvc_trials = 3

[hip_flex_r]
mvc_rms = 88
mvc_time = 1700000200
mvc_trials = 1
""")
out("calib", "rest-only.ini", "version = 1\n[glute_med_l]\nrest_method = bonato\nrest_var = 2\n")
# found by fuzz_calib: loaded, but emg_calib_save() did not write it back
out("calib", "crash-mvc-trials-without-mvc.ini", "version = 1\n[glute_max_r]\nmvc_trials = 4\nrest_sd = 1\n")

# ---- amplifier byte streams (fuzz_cyton_decode, fuzz_hackeeg_decode) -----------

def s24(v):
    return (v & 0xffffff).to_bytes(3, "big")


def cyton_packet(n, ch=8):
    return bytes([0xA0, n & 0xff]) + b"".join(s24((n * 1000 + c * 37) * (-1) ** c) for c in range(ch)) \
        + b"\0" * 6 + b"\xC0"


stream = b"".join(cyton_packet(n) for n in range(12)) + cyton_packet(14)  # 13 lost
out("cyton_decode", "cyton8", bytes([0x1c]) + stream)
ftdi = b"".join(b"\x01\x60" + stream[i:i + 62] for i in range(0, len(stream), 62))
out("cyton_decode", "cyton8-ftdi", bytes([0x1e]) + ftdi)
daisy = b"".join(cyton_packet(n) for n in range(0, 12, 1))
out("cyton_decode", "daisy16", bytes([0x3d]) + daisy)


def hackeeg_packet(n, ch=8):
    d = struct.pack("<II", n * 500, n) + b"\xc0\x00\x00" + b"".join(s24(n * 10 - c) for c in range(ch))
    return b"\x82\xa1\x43\xcc\xc8\xa1\x44\xc4" + bytes([len(d)]) + d


hs = b'{"C":200,"D":"ok"}\r\n' + b"".join(hackeeg_packet(n) for n in range(10)) + hackeeg_packet(12)
out("hackeeg_decode", "hackeeg8", bytes([7]) + hs)
out("hackeeg_decode", "hackeeg16-short-packets", bytes([15]) + b"".join(hackeeg_packet(n) for n in range(3)))
