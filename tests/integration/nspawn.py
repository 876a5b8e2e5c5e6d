# SPDX-License-Identifier: MIT
"""A throw-away systemd for the systemd and package tests (test_systemd.py, test_deb.py).

The host's own systemd boots as PID 1 in systemd-nspawn, in a root that has the host's
top-level links and a private copy of /etc with every service disabled, on a loopback-only
network; commands run inside through nsenter.  Facts that cost time to find:
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 and --system-call-filter=bpf, or IPAddressDeny= and
DevicePolicy= are silently not enforced; the caller's NOTIFY_SOCKET / WATCHDOG_* must not
leak into the container's PID 1; nspawn reads etc/os-release before it binds /usr."""
import glob
import os
import shutil
import subprocess
import time


def sh(*cmd, timeout=60, **kw):
    """Run a command on the host, output captured as text."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def missing():
    """Why a container cannot boot here (a sentence), or None."""
    if os.getuid() != 0:
        return "needs root to boot systemd in systemd-nspawn"
    for tool in ("systemd-nspawn", "nsenter"):
        if not shutil.which(tool):
            return "no %s (apt-get install systemd-container)" % tool
    if not os.path.exists("/usr/lib/systemd/systemd"):
        return "no /usr/lib/systemd/systemd on this host to boot"
    return None


def make_root(root, dirs=("usr", "var", "tmp", "root", "run", "proc", "sys", "dev"), drop=()):
    """Create root with the host's /bin, /lib... links and a private /etc where nothing is
    enabled but what systemd itself needs; `drop`: globs under etc/ to remove too.
    Returns the path of its etc."""
    for d in dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + link):
            os.symlink(os.readlink("/" + link), os.path.join(root, link))
    etc = os.path.join(root, "etc")
    sh("cp", "-a", "/etc", etc, timeout=120)
    for w in glob.glob(os.path.join(etc, "systemd", "system", "*.wants")) + \
            glob.glob(os.path.join(etc, "systemd", "system", "*", "*.wants")):
        shutil.rmtree(w, ignore_errors=True)
    for f in ("machine-id", "os-release", "fstab"):
        if os.path.lexists(os.path.join(etc, f)):
            os.unlink(os.path.join(etc, f))
    shutil.copy("/usr/lib/os-release", os.path.join(etc, "os-release"))
    open(os.path.join(etc, "machine-id"), "w").close()
    for pattern in drop:
        for f in glob.glob(os.path.join(etc, pattern)):
            shutil.rmtree(f) if os.path.isdir(f) and not os.path.islink(f) else os.unlink(f)
    target = os.path.join(etc, "systemd", "system", "default.target")
    if not os.path.lexists(target):
        os.symlink("/usr/lib/systemd/system/multi-user.target", target)
    return etc


class Container:
    """systemd booted in `root` as machine `machine`; `args`: extra systemd-nspawn options
    (binds).  boot() starts it, run() executes inside, poweroff() ends it."""

    def __init__(self, root, machine, log_path, args=()):
        self.root, self.machine, self.args = root, machine, list(args)
        self.log = open(log_path, "w+")
        self.proc = None
        self.pid1 = None

    def boot(self, timeout=30):
        """Start systemd-nspawn and find the container's PID 1; its host PID, or None."""
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "INVOCATION_ID"):
            env.pop(k, None)
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-q", "-D", self.root, "-M", self.machine, "--register=no", "--keep-unit"] +
            self.args + ["--private-network", "--system-call-filter=bpf", "--console=read-only", "-b"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        # no signal for "PID 1 exists": look for nspawn's child named systemd
        while time.time() < deadline and self.pid1 is None and self.proc.poll() is None:
            try:
                for k in open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read().split():
                    if open("/proc/%s/comm" % k).read().strip() == "systemd":
                        self.pid1 = int(k)
            except OSError:
                pass
            time.sleep(0.1)
        return self.pid1

    def boot_log(self, n=400):
        """The last n characters systemd-nspawn printed."""
        self.log.flush()
        return open(self.log.name).read().strip()[-n:]

    def run(self, *cmd, timeout=60):
        """Run a command inside the container (all its namespaces)."""
        return sh("nsenter", "-t", str(self.pid1), "-a", "--", *cmd, timeout=timeout)

    def wait_running(self, timeout=40):
        """Wait until systemd has booted; its state ("running", "degraded"), or "" if it
        never answered (PID 1 may still be setting up its namespaces: retried)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.run("systemctl", "is-system-running", "--wait", timeout=60).stdout.strip()
            if state:
                return state
            time.sleep(0.3)
        return ""

    def poweroff(self):
        """Shut the container down (killing our systemd-nspawn if it does not end in 20 s)."""
        if self.proc and self.proc.poll() is None:
            if self.pid1:
                sh("nsenter", "-t", str(self.pid1), "-a", "systemctl", "poweroff")
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own systemd-nspawn process
                self.proc.wait()
        self.log.close()
