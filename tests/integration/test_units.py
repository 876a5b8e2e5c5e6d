# SPDX-License-Identifier: MIT
"""The systemd units and the udev rule as `meson install` puts them, checked offline
(no running systemd needed; test_systemd.py boots one):
  - udev rule -> instance name -> the selector emgd gets: the rule's SYSTEMD_WANTS for a
    Cyton (serial DM00ABCD) and a HackEEG (no serial: port path 1-3, behind a hub 1-1.4)
    names a valid unit, `systemd-analyze verify` accepts it, and the template's ExecStart,
    with systemd's specifier rules (%i verbatim, %I unescaped: `systemd-escape -u`), makes
    emgd select exactly that serial or port path (`emgd ... --check-config` says so);
  - DeviceAllow= lists only device classes or device nodes (no "/dev/bus/usb is not a
    device." at every start);
  - template instances get their own StateDirectory= and RuntimeDirectory=."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

from emgtest import EMGD, check

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(EMGD)))

tmp = tempfile.TemporaryDirectory(prefix="emgd-units-")
dest = os.path.join(tmp.name, "root")
out = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild", "--quiet"],
                     capture_output=True, text=True)
check(out.returncode == 0, "meson install --destdir (%s)" % out.stderr.strip()[-300:])


def find(name):
    for root, _, files in os.walk(dest):
        if name in files:
            return os.path.join(root, name)
    return None


rules = find("70-emgd.rules")
template = find("emgd@.service")
single = find("emgd.service")
check(rules and template and single, "installed: %s" % [os.path.relpath(p, dest) for p in (rules, template, single) if p])


def directives(path):
    d = {}
    for line in open(path):
        m = re.match(r"^(\w+)=(.*)$", line.strip())
        if m:
            d.setdefault(m.group(1), []).append(m.group(2))
    return d


tu = directives(template)
check(len(tu["ExecStart"]) == 1 and "%I" not in tu["ExecStart"][0] and "%i" in tu["ExecStart"][0],
      "template ExecStart uses %%i, not %%I: %s" % tu["ExecStart"][0])
for u in (template, single):
    for v in directives(u).get("DeviceAllow", []):
        dev = v.split()[0]
        check(dev.startswith(("char-", "block-")) or (os.path.exists(dev) and not os.path.isdir(dev)),
              "%s: DeviceAllow=%s is a device class or node" % (os.path.basename(u), v))
check(tu.get("StateDirectory") == ["emgd@%i"] and tu.get("RuntimeDirectory") == ["emgd@%i"],
      "template: StateDirectory=emgd@%%i, RuntimeDirectory=emgd@%%i (%s, %s)"
      % (tu.get("StateDirectory"), tu.get("RuntimeDirectory")))
check(directives(single).get("StateDirectory") == ["emgd"], "emgd.service: StateDirectory=emgd")

# ---- the udev rule: what it asks systemd to start ---------------------------------------
text = open(rules).read().replace("\\\n", " ")
wants = {}
for line in text.splitlines():
    if line.lstrip().startswith("#") or "SYSTEMD_WANTS" not in line:
        continue
    vid = re.search(r'ATTR\{idVendor\}=="(\w+)"', line).group(1)
    wants[vid] = re.search(r'ENV\{SYSTEMD_WANTS\}\+="([^"]+)"', line).group(1)
check(set(wants) == {"0403", "2341"}, "rules for the Cyton dongle (0403) and HackEEG (2341): %s" % wants)

# (device, vendor, sysfs attributes, kernel name) -> the serial emgd must select
cases = [("Cyton dongle", "0403", {"serial": "DM00ABCD"}, "1-2", "DM00ABCD"),
         ("HackEEG", "2341", {}, "1-3", "1-3"),
         ("HackEEG behind a hub", "2341", {}, "1-1.4", "1-1.4")]
sa = shutil.which("systemd-analyze")
esc = shutil.which("systemd-escape")
vdir = os.path.join(tmp.name, "units")
os.mkdir(vdir)
with open(template) as f, open(os.path.join(vdir, "emgd@.service"), "w") as g:
    # the installed binary under the destdir, so verify checks a real executable
    g.write(re.sub(r"^ExecStart=(\S+)", lambda m: "ExecStart=" + dest + m.group(1), f.read(), flags=re.M))

conf = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs if f == "emgd.conf" and r.endswith("etc/emgd")][0]
for what, vid, attrs, kernel, want in cases:
    unit = re.sub(r"\$attr\{(\w+)\}", lambda m: attrs.get(m.group(1), ""), wants[vid]).replace("$kernel", kernel)
    m = re.match(r"^emgd@(.+)\.service$", unit)
    check(m is not None, "%s: udev wants %s" % (what, unit))
    inst = m.group(1)
    if esc:
        # a valid unit name needs no mangling: systemd starts exactly this instance
        r = subprocess.run([esc, "--mangle", unit], capture_output=True, text=True)
        check(r.stdout.strip() == unit, "%s: %s is a valid unit name, used as is" % (what, unit))
        wrong = subprocess.run([esc, "-u", inst], capture_output=True, text=True).stdout.strip()
        if wrong != inst:
            print("note: with %%I it would have been --serial %s" % wrong)
    if sa:
        r = subprocess.run([sa, "verify", "--man=no", os.path.join(vdir, unit)], capture_output=True, text=True)
        check(r.returncode == 0 and not r.stderr.strip(), "%s: systemd-analyze verify %s%s" % (what, unit, (": " + r.stderr.strip()) if r.stderr.strip() else ""))
    # systemd's expansion: %i is the instance as it is in the unit name
    argv = shlex.split(tu["ExecStart"][0].replace("%i", inst))
    argv = [EMGD] + [conf if a.endswith("/emgd/emgd.conf") else a for a in argv[1:]]
    r = subprocess.run(argv + ["--check-config"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.rstrip().endswith(", serial %s)" % want),
          "%s: %s runs emgd %s -> selects serial %s (%s)"
          % (what, unit, " ".join(argv[1:]), want, (r.stdout or r.stderr).strip()))
if not sa or not esc:
    print("note: systemd-analyze/systemd-escape missing: unit names and verify not checked")
tmp.cleanup()
