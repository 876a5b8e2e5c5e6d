#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Read an EDF+/BDF+ file with MNE and print what MNE sees as JSON.

    /usr/bin/python3 tests/integration/read_edf_mne.py FILE [--samples N]

Output: {"labels": [...], "units": ["uV", ...], "sfreq": f, "n_times": n, "duration": s,
         "meas_date": iso|null, "highpass": f, "lowpass": f,
         "annotations": [{"onset": s, "duration": s, "description": str}, ...],
         "first": {label: [uV, ...]}}   (first N samples per channel, in uV, with --samples)
Exit status 0 when MNE read the file, 2 when it did not (the error goes to stderr).
Debian's python3-mne belongs to /usr/bin/python3.
"""
import json
import sys
import warnings


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    path = args[0]
    nsamp = 0
    if "--samples" in args:
        nsamp = int(args[args.index("--samples") + 1])
    try:
        import mne
    except ImportError as e:
        print(f"mne not available: {e}", file=sys.stderr)
        return 77  # meson's "skipped"
    mne.set_log_level("ERROR")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.lower().endswith(".bdf"):
                raw = mne.io.read_raw_bdf(path, preload=False, verbose="ERROR")
            else:
                raw = mne.io.read_raw_edf(path, preload=False, verbose="ERROR")
    except Exception as e:  # noqa: BLE001 - report anything MNE raises
        print(f"MNE could not read {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    info = raw.info
    out = {
        "labels": list(raw.ch_names),
        # the physical dimension in the file (MNE itself scales uV to V)
        "units": [getattr(raw, "_orig_units", {}).get(name, "?") for name in raw.ch_names],
        "sfreq": float(info["sfreq"]),
        "n_times": int(raw.n_times),
        "duration": float(raw.n_times / info["sfreq"]),
        "meas_date": info["meas_date"].isoformat() if info["meas_date"] else None,
        "highpass": float(info["highpass"]),
        "lowpass": float(info["lowpass"]),
        "annotations": [
            {"onset": round(float(a["onset"]), 6), "duration": round(float(a["duration"]), 6),
             "description": str(a["description"])}
            for a in raw.annotations
        ],
    }
    if nsamp:
        data = raw.get_data(start=0, stop=min(nsamp, raw.n_times))
        out["first"] = {name: [round(float(v) * 1e6, 4) for v in data[i]]
                        for i, name in enumerate(raw.ch_names)}
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
