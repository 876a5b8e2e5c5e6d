# SPDX-License-Identifier: MIT
"""Shared helpers of the daemon benchmarks (bench_latency.py, bench_scale.py)."""
import json
import os
import platform
import subprocess

from emgtest import Client

OSCSINK = os.environ.get("OSCSINK", "oscsink")
ROLES = ["glute_max", "glute_med", "hip_flex", "hamstring", "erector"]


def muscles_conf(n):
    """n muscles on channels 1..n, cycling through the synth's roles and both sides."""
    lines = ["[muscles]"]
    for c in range(n):
        lines.append("%s_%s_%03d = %d" % (ROLES[(c // 2) % 5], "r" if c % 2 else "l", c, c + 1))
    return "\n".join(lines) + "\n"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()
    return "%s, %d CPUs, Linux %s, load %.2f %.2f %.2f" % (model, os.cpu_count(), platform.release(), *load)


def proc_cpu_s(pid):
    """utime + stime of a live process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_kb(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmLck"):
                out[k] = int(v.split()[0])
    return out


def query(d, path, reply):
    c = Client(d)
    try:
        m = c.request(path, reply=reply, timeout=3.0)
        return m[3] if m and m[1] == reply else None
    finally:
        c.close()


def latency(d):
    """/emgd/latency: (events n, p50, p99, p99.9, max ms), (metric bundles n, ...)."""
    a = query(d, "/emgd/latency", "/emgd/latency")
    return (tuple(a[0:5]), tuple(a[5:10])) if a else None


def sink(d, subscribers, seconds):
    """Start oscsink; returns the Popen (its stdout is one JSON line at the end)."""
    return subprocess.Popen([OSCSINK, "127.0.0.1:%d" % d.port, str(subscribers), str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def sink_result(p, timeout):
    out, _ = p.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])
