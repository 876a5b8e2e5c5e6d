# SPDX-License-Identifier: MIT
"""Hardening, checked on what the build produced:
  - the systemd units score <= 1.5 in `systemd-analyze security --offline=yes`;
  - emgd and emgctl are PIE, full RELRO (GNU_RELRO + BIND_NOW), use the stack
    protector (__stack_chk_fail) and _FORTIFY_SOURCE=3 (__*_chk calls, and the
    flag in compile_commands.json) - what hardening-check (devscripts) looks at;
  - the running daemon has dropped what it does not need: no_new_privs, and
    started as root it keeps only net_bind_service, sys_nice and ipc_lock."""
import glob
import json
import os
import re
import shutil
import subprocess

from emgtest import EMGCTL, EMGD, Daemon, check

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(EMGD)))
MAX_EXPOSURE = 1.5

# ---- systemd units -------------------------------------------------------------------------
units = sorted(glob.glob(os.path.join(BUILD, "systemd", "*.service")))
check(len(units) >= 2, "built units: %s" % [os.path.basename(u) for u in units])
sa = shutil.which("systemd-analyze")
if not sa or subprocess.run([sa, "security", "--help"], capture_output=True, text=True).stdout.find("--offline") < 0:
    print("note: systemd-analyze without --offline (systemd < 252): exposure not checked")
else:
    for u in units:
        out = subprocess.run([sa, "security", "--offline=yes", "--no-pager", u], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout)
        check(m is not None and float(m.group(1)) <= MAX_EXPOSURE,
              "%s: exposure %s (limit %.1f)" % (os.path.basename(u), m.group(1) if m else out.stderr.strip()[:200], MAX_EXPOSURE))

# ---- binaries ------------------------------------------------------------------------------
def readelf(*args):
    return subprocess.run(["readelf", "-W", *args], capture_output=True, text=True).stdout


for exe in (EMGD, EMGCTL):
    name = os.path.basename(exe)
    check("DYN (Position-Independent Executable" in readelf("-h", exe), "%s: PIE" % name)
    dyn = readelf("-d", exe)
    check("GNU_RELRO" in readelf("-l", exe) and re.search(r"\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW", dyn),
          "%s: full RELRO (GNU_RELRO + BIND_NOW)" % name)
    syms = readelf("--dyn-syms", exe)
    check("__stack_chk_fail" in syms, "%s: stack protector (__stack_chk_fail)" % name)
    chk = sorted(set(re.findall(r"\b(__\w+_chk)\b", syms)) - {"__stack_chk_fail"})
    check(len(chk) >= 3, "%s: fortified calls: %s" % (name, " ".join(chk)))
cc = os.path.join(BUILD, "compile_commands.json")
if os.path.exists(cc):
    cmds = [e["command"] for e in json.load(open(cc)) if e["file"].endswith(("emgd.c", "emgctl.c", "osc.c"))]
    check(cmds and all("-D_FORTIFY_SOURCE=3" in c and "-fstack-protector-strong" in c for c in cmds),
          "compiled with -D_FORTIFY_SOURCE=3 -fstack-protector-strong")

# ---- the running daemon ----------------------------------------------------------------------
d = Daemon()
try:
    status = open("/proc/%d/status" % d.proc.pid).read()
    f = dict(re.findall(r"^(\w+):\s*(\S+)", status, re.M))
    check(f.get("NoNewPrivs") == "1", "no_new_privs set")
    keep = (1 << 10) | (1 << 23) | (1 << 14)  # CAP_NET_BIND_SERVICE, CAP_SYS_NICE, CAP_IPC_LOCK
    for k in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        v = int(f[k], 16)
        check(v & ~keep == 0, "%s = %s: nothing beyond net_bind_service, sys_nice, ipc_lock" % (k, f[k]))
    if os.getuid() == 0:
        check(int(f["CapBnd"], 16) & ~keep == 0, "bounding set reduced to the same (%s)" % f["CapBnd"])
        check("privileges: all capabilities dropped" in d.logtext(), "the log says so")
finally:
    rc = d.close()
check(rc == 0, "clean exit")
