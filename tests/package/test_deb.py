# SPDX-License-Identifier: MIT
"""The Debian package (issue 13): build it, lint it, install it.

  - the source tree as it is (tracked and new files, not build trees) is copied to a
    temporary directory and built with `dpkg-buildpackage -us -uc -b` (nocheck: the unit
    suite already ran in build/), as README "Installing from the Debian package" says;
  - `lintian --fail-on error,warning`: no errors, no warnings that debian/emgd.lintian-
    overrides does not explain;
  - the .deb holds the binaries, both units, the udev rule, the sysusers file, the man
    pages and /etc/emgd/emgd.conf as a conffile, and its postinst creates the group and
    enables nothing;
  - as root with systemd-nspawn: `dpkg -i` in a booted throw-away root (host /usr under
    an overlay, copies of /etc and the dpkg database), then the "emg" group exists,
    emgd.service is installed but disabled and inactive, `emgd --check-config` passes,
    `systemctl start emgd` runs the packaged binary and `emgctl status` answers, and
    `dpkg --purge` removes the state directory and /etc/emgd.
Skipped (77) without dpkg-buildpackage/debhelper/lintian; the install part is skipped
without root, systemd-nspawn or overlayfs.  About 1-2 minutes on two cores."""
import glob
import os
import shutil
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import nspawn  # noqa: E402

T0 = time.time()


def skip(why):
    print("SKIP: %s" % why)
    sys.exit(77)


def fail(msg):
    print("FAIL: %s" % msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg, flush=True)


sh = nspawn.sh


for tool, pkg in (("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"), ("lintian", "lintian")):
    if not shutil.which(tool):
        skip("no %s (apt-get install %s)" % (tool, pkg))
r = sh("dpkg-checkbuilddeps", "-Pnocheck", os.path.join(SRC, "debian", "control"))
if r.returncode != 0:
    skip("build dependencies missing: %s" % r.stderr.strip())

tmp = tempfile.mkdtemp(prefix="emgd-deb-", dir="/var/tmp")
src = os.path.join(tmp, "emgd")
box = None
mounted = []


def cleanup():
    if box:
        box.poweroff()
    for m in reversed(mounted):
        sh("umount", m)
    shutil.rmtree(tmp, ignore_errors=True)


try:
    # ---- build from a copy: dpkg-buildpackage writes into the tree and its parent ----------
    r = sh("git", "-C", SRC, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if r.returncode == 0:
        files = [f for f in r.stdout.split("\0") if f and os.path.lexists(os.path.join(SRC, f))]
        for f in files:
            os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
            shutil.copy2(os.path.join(SRC, f), os.path.join(src, f), follow_symlinks=False)
    else:  # not a git checkout (a release tarball)
        shutil.copytree(SRC, src, symlinks=True, ignore=shutil.ignore_patterns("build*", "obj-*", "__pycache__"))
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=%d" % (os.cpu_count() or 2),
               DEB_BUILD_PROFILES="nocheck", LC_ALL="C.UTF-8")
    for k in ("MESON_TESTTHREADS", "MALLOC_PERTURB_", "CFLAGS", "LDFLAGS", "CPPFLAGS"):
        env.pop(k, None)
    t = time.time()
    r = sh("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, env=env, timeout=900)
    if r.returncode != 0:
        print((r.stdout + r.stderr)[-6000:])
    check(r.returncode == 0, "dpkg-buildpackage -us -uc -b (%.0f s)" % (time.time() - t))
    debs = glob.glob(os.path.join(tmp, "emgd_*.deb"))
    changes = glob.glob(os.path.join(tmp, "emgd_*.changes"))
    check(len(debs) == 1 and len(changes) == 1, "built %s" % [os.path.basename(d) for d in debs])
    deb = debs[0]

    # ---- lintian ---------------------------------------------------------------------------
    t = time.time()
    r = sh("lintian", "--fail-on", "error,warning", "-I", "--pedantic", changes[0], timeout=300)
    tags = [l for l in r.stdout.splitlines() if l[:2] in ("E:", "W:", "I:", "P:")]
    print("lintian (%.0f s):\n  %s" % (time.time() - t, "\n  ".join(tags) or "(nothing)"))
    check(r.returncode == 0 and not any(l.startswith(("E:", "W:")) for l in tags),
          "lintian: no errors, no warnings that are not overridden")

    # ---- contents --------------------------------------------------------------------------
    listing = sh("dpkg-deb", "-c", deb).stdout
    paths = {l.split()[5].lstrip(".") for l in listing.splitlines() if len(l.split()) >= 6}
    for p in ("/usr/sbin/emgd", "/usr/bin/emgctl", "/lib/systemd/system/emgd.service",
              "/lib/systemd/system/emgd@.service", "/lib/udev/rules.d/70-emgd.rules",
              "/usr/lib/sysusers.d/emgd.conf", "/etc/emgd/emgd.conf", "/usr/share/man/man8/emgd.8.gz",
              "/usr/share/man/man5/emgd.conf.5.gz", "/usr/share/man/man1/emgctl.1.gz",
              "/usr/share/doc/emgd/copyright"):
        check(p in paths, "the package holds %s" % p)
    ctrl = os.path.join(tmp, "control")
    sh("dpkg-deb", "-e", deb, ctrl)
    check(open(os.path.join(ctrl, "conffiles")).read().split() == ["/etc/emgd/emgd.conf"],
          "/etc/emgd/emgd.conf is the conffile")
    postinst = open(os.path.join(ctrl, "postinst")).read()
    check("systemd-sysusers" in postinst and "emgd.conf" in postinst, "postinst creates the emg group (systemd-sysusers)")
    check("deb-systemd-helper enable 'emgd.service'" not in postinst.split("was-enabled")[0],
          "postinst does not enable emgd.service on a fresh install")

    # ---- install into a booted throw-away root -----------------------------------------------
    why = nspawn.missing()
    root = os.path.join(tmp, "root")
    if not why:
        # host /usr under an overlay: dpkg -i writes into it
        for d in ("ovl/up", "ovl/work"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        nspawn.make_root(root, dirs=("usr", "var/lib", "tmp", "root", "run", "proc", "sys", "dev"),
                               drop=("emgd*", "udev/rules.d/*emgd*"))
        r = sh("mount", "-t", "overlay", "overlay", "-o", "lowerdir=/usr,upperdir=%s/ovl/up,workdir=%s/ovl/work"
               % (tmp, tmp), os.path.join(root, "usr"))
        if r.returncode != 0:
            why = "no overlayfs for a writable /usr: %s" % r.stderr.strip()
        else:
            mounted.append(os.path.join(root, "usr"))
    if why:
        print("SKIP (install part): %s" % why)
        print("package test: %.1f s" % (time.time() - T0))
        sys.exit(0)
    sh("cp", "-a", "/var/lib/dpkg", os.path.join(root, "var", "lib", "dpkg"), timeout=120)
    shutil.copy(deb, os.path.join(root, "root"))
    # Docker-style images carry a policy-rc.d that forbids every start/stop (exit 101):
    # hide it in the overlay so the maintainer scripts act as on a real host.
    if os.path.lexists(os.path.join(root, "usr", "sbin", "policy-rc.d")):
        os.unlink(os.path.join(root, "usr", "sbin", "policy-rc.d"))

    box = nspawn.Container(root, "emgddeb%d" % os.getpid(), os.path.join(tmp, "boot.log"))
    if box.boot() is None:
        print("SKIP (install part): systemd-nspawn could not boot here: %s" % box.boot_log())
        sys.exit(0)
    run = box.run
    state = box.wait_running(40)
    check(state in ("running", "degraded"), "systemd boots in the throw-away root (%s)" % state)

    r = run("dpkg", "-i", "/root/" + os.path.basename(deb), timeout=180)
    check(r.returncode == 0, "dpkg -i %s: %s" % (os.path.basename(deb), (r.stdout + r.stderr).strip()[-300:]))
    r = run("getent", "group", "emg")
    check(r.returncode == 0, "the emg group exists: %s" % r.stdout.strip())
    en = run("systemctl", "is-enabled", "emgd.service").stdout.strip()
    act = run("systemctl", "is-active", "emgd.service").stdout.strip()
    check(en == "disabled" and act == "inactive", "emgd.service installed, not enabled, not started (%s, %s)" % (en, act))
    r = run("emgd", "--check-config")
    check(r.returncode == 0, "emgd --check-config (built-in defaults): %s" % (r.stdout + r.stderr).strip()[-200:])
    r = run("emgd", "-c", "/etc/emgd/emgd.conf", "--check-config")
    check(r.returncode == 0, "emgd -c /etc/emgd/emgd.conf --check-config (the packaged conffile): %s"
          % (r.stdout + r.stderr).strip()[-200:])
    r = run("emgd", "--version")
    print("  " + (r.stdout + r.stderr).strip())
    r = run("systemd-analyze", "verify", "/lib/systemd/system/emgd.service", "/lib/systemd/system/emgd@.service")
    check(r.returncode == 0, "systemd-analyze verify on the packaged units %s" % r.stderr.strip()[-300:])
    r = run("systemctl", "start", "emgd")
    sub = run("systemctl", "show", "emgd", "-p", "SubState", "--value").stdout.strip()
    check(r.returncode == 0 and sub == "running", "systemctl start emgd: %s %s" % (sub, r.stderr.strip()))
    st = None
    for _ in range(50):
        st = run("emgctl", "-s", "127.0.0.1:9000", "status")
        if st.returncode == 0:
            break
        time.sleep(0.2)
    check(st.returncode == 0, "emgctl status answers the packaged daemon: %s" % st.stdout.strip().replace("\n", "; ")[:160])
    check(run("test", "-d", "/var/lib/private/emgd").returncode == 0, "the state directory /var/lib/private/emgd exists")
    # an amplifier instance as the udev rule would start it, on its own port
    run("sh", "-c", "printf '[osc]\\nlisten = 127.0.0.1:9101\\n' > /etc/emgd/emgd@DM00ABCD.conf")
    r = run("systemctl", "start", "emgd@DM00ABCD")
    sub = run("systemctl", "show", "emgd@DM00ABCD", "-p", "SubState", "--value").stdout.strip()
    check(r.returncode == 0 and sub == "running", "systemctl start emgd@DM00ABCD: %s %s" % (sub, r.stderr.strip()))
    r = run("dpkg", "--purge", "emgd", timeout=120)
    check(r.returncode == 0, "dpkg --purge emgd: %s" % (r.stdout + r.stderr).strip()[-300:])
    for u in ("emgd.service", "emgd@DM00ABCD.service"):
        check(run("systemctl", "is-active", u).stdout.strip() != "active", "removal stopped %s" % u)
    left = [p for p in ("/var/lib/emgd", "/var/lib/private/emgd", "/var/lib/emgd@DM00ABCD",
                        "/var/lib/private/emgd@DM00ABCD", "/usr/sbin/emgd")
            if run("test", "-e", p).returncode == 0]
    check(not left, "purge removed the state directories and the binary (left: %s)" % left)
    # /etc/emgd stays while it holds the admin's own emgd@DM00ABCD.conf (not ours to delete)
    check(run("test", "-e", "/etc/emgd/emgd.conf").returncode != 0, "purge removed the conffile /etc/emgd/emgd.conf")
finally:
    cleanup()
print("package test: %.1f s" % (time.time() - T0))
