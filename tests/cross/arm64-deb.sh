#!/bin/sh
# Build the arm64 Debian package natively, under qemu user emulation, in an arm64 Debian 12
# root, then lint, inspect and run it (README "arm64").  Not part of tests/run: it takes
# tens of minutes.  Needs root; skips (exit 77, with the install command) without
# debootstrap, qemu-user-static, lintian or file.
#   tests/cross/arm64-deb.sh            (run it with nice; it uses both cores for a while)
# ARM64_DEB_DIR: work directory (default build-arm64-deb/ in the tree); it keeps the root
# (root/, about 1 GB) for the next run, the packages and the logs of each phase.
# ARM64_MIRROR: Debian mirror (default: the host's apt source for bookworm).
#
# Why not `dpkg-buildpackage -aarm64` on the host: liblo-dev is not Multi-Arch: same, and
# installing liblo-dev:arm64 replaces the host's liblo-dev (README "arm64").  A whole arm64
# root has no such conflict, and building natively in it needs no cross rules at all.
set -u
# All in one function, which the shell reads whole before running it: editing this file
# during a run (it takes half an hour) cannot change what the run does next.
main() {
cd "$(dirname "$0")/../.."
TOP=$(pwd)
W=${ARM64_DEB_DIR:-$TOP/build-arm64-deb}
R=$W/root
BF=/proc/sys/fs/binfmt_misc
skip() { echo "SKIP arm64-deb: $*" >&2; exit 77; }
die() { echo "FAIL arm64-deb: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mount)"
for t in debootstrap:debootstrap qemu-aarch64-static:qemu-user-static lintian:lintian file:file \
	dpkg-deb:dpkg git:git; do
	command -v "${t%%:*}" >/dev/null 2>&1 || skip "no ${t%%:*} (apt-get install ${t#*:})"
done
[ -r /usr/share/binfmts/qemu-aarch64 ] || skip "no /usr/share/binfmts/qemu-aarch64 (apt-get install qemu-user-static)"
mkdir -p "$W" || die "cannot create $W"
W=$(cd "$W" && pwd)
R=$W/root

# ---- clean-up: unmount what we mounted, undo the binfmt registration ------------------------
MOUNTS=""
BF_MOUNTED=0
BF_REGISTERED=0
EMGD_PID=""
cleanup() {
	[ -n "$EMGD_PID" ] && kill "$EMGD_PID" 2>/dev/null
	for m in $MOUNTS; do # newest first
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	MOUNTS=""
	[ "$BF_REGISTERED" = 1 ] && echo -1 >"$BF/qemu-aarch64"
	[ "$BF_MOUNTED" = 1 ] && umount "$BF"
	BF_REGISTERED=0 BF_MOUNTED=0
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# Anything mounted below the root?  A root is never deleted while it is (rm -rf would go
# through a bind-mounted /dev into the host's).
mounted_below() { awk -v r="$1/" 'index($2, r) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; }
mnt() { # mnt MOUNT-ARGS... TARGET: mount and remember it for cleanup
	eval "t=\${$#}"
	mount "$@" || die "mount $*"
	MOUNTS="$t $MOUNTS"
}
ROOTENV="PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive"
in_root() { nice -n 10 chroot "$R" /usr/bin/env -i $ROOTENV "$@"; }

T0=$(date +%s)
TP=$T0
TIMES=""
phase() { # phase NAME: the time of the phase that ends here
	now=$(date +%s)
	TIMES="$TIMES  $1: $((now - TP)) s
"
	echo "== $1: $((now - TP)) s"
	TP=$now
}

# ---- arm64 binaries must run: binfmt_misc with qemu-aarch64 ---------------------------------
# qemu-user-static registers itself only where binfmt_misc is mounted when it is installed; in
# a container it usually is not.  Register it for this run (F: the kernel opens the
# interpreter now, so it need not exist inside the root), and take it away again at exit.
if [ ! -e "$BF/register" ]; then
	mount -t binfmt_misc binfmt_misc "$BF" 2>/dev/null ||
		skip "binfmt_misc is not mounted and cannot be (mount -t binfmt_misc binfmt_misc $BF)"
	BF_MOUNTED=1
fi
if [ ! -e "$BF/qemu-aarch64" ]; then
	f=/usr/share/binfmts/qemu-aarch64
	magic=$(sed -n 's/^magic //p' $f) mask=$(sed -n 's/^mask //p' $f)
	interp=$(sed -n 's/^interpreter //p' $f)
	flags=F
	grep -q '^preserve yes' $f && flags=FP
	# The kernel decodes the \xNN escapes itself.
	printf ':qemu-aarch64:M::%s:%s:%s:%s\n' "$magic" "$mask" "$interp" "$flags" >"$BF/register" ||
		skip "cannot register qemu-aarch64 in $BF (update-binfmts --enable qemu-aarch64)"
	BF_REGISTERED=1
	echo "arm64-deb: registered qemu-aarch64 in $BF for this run ($interp, flags $flags)"
fi
grep -q '^enabled' "$BF/qemu-aarch64" || skip "$BF/qemu-aarch64 is disabled (echo 1 >$BF/qemu-aarch64)"

# ---- the mirror: the host's apt source for bookworm -----------------------------------------
# Both source formats (sources.list lines and deb822 .sources); "URI SUITE" for every
# bookworm* suite of the main archive and the security archive.
apt_sources() {
	{
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -n 's/\[[^]]*\]//; s/^deb[[:space:]]\{1,\}\([^[:space:]]*\)[[:space:]]\{1,\}\([^[:space:]]*\).*/\1 \2/p'
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -r "$f" ] || continue
			awk 'function out() { if (ty ~ /(^| )deb( |$)/) for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]; ty = ""; nu = ns = 0 }
			/^[ \t]*$/ { out(); next } /^#/ { next }
			tolower($1) == "types:" { ty = $0 }
			tolower($1) == "uris:" { for (i = 2; i <= NF; i++) u[++nu] = $i }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) s[++ns] = $i }
			END { out() }' "$f"
		done
	} | awk '$2 ~ /^bookworm/'
}
MIRROR=${ARM64_MIRROR:-$(apt_sources | awk '$2 == "bookworm" { print $1; exit }')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# ---- phase 1: the arm64 Debian 12 root (kept for the next run) ------------------------------
if [ ! -e "$R/.emgd-root-ready" ]; then
	if [ -e "$R" ]; then # left half-made by an interrupted run
		mounted_below "$R" && die "$R is half-made and has mounts below it: umount them first"
		rm -rf "$R"
	fi
	echo "arm64-deb: debootstrap --arch=arm64 --variant=buildd --foreign bookworm from $MIRROR"
	nice -n 10 debootstrap --arch=arm64 --variant=buildd --foreign bookworm "$R" "$MIRROR" \
		>"$W/debootstrap1.log" 2>&1 || { tail -20 "$W/debootstrap1.log"; die "debootstrap (first stage), log $W/debootstrap1.log"; }
	phase "debootstrap first stage (download, unpack)"
	# Only needed with a binfmt registration without F (the interpreter looked up in the root).
	cp /usr/bin/qemu-aarch64-static "$R/usr/bin/"
	echo "arm64-deb: debootstrap --second-stage under qemu-aarch64 (several minutes)"
	nice -n 10 chroot "$R" /debootstrap/debootstrap --second-stage >"$W/debootstrap2.log" 2>&1 ||
		{ tail -20 "$W/debootstrap2.log"; die "debootstrap --second-stage, log $W/debootstrap2.log"; }
	# The same suites as the host (updates, security), not only what debootstrap wrote.
	apt_sources | awk '{ print "deb", $1, $2, "main" }' >"$R/etc/apt/sources.list"
	[ -s "$R/etc/apt/sources.list" ] || echo "deb $MIRROR bookworm main" >"$R/etc/apt/sources.list"
	touch "$R/.emgd-root-ready"
	phase "debootstrap second stage (under qemu)"
else
	echo "arm64-deb: reusing $R"
fi
[ "$(in_root dpkg --print-architecture)" = arm64 ] || die "$R is not an arm64 root"
ok "arm64 Debian $(cat "$R/etc/debian_version") root in $R (from $MIRROR)"

mounted_below "$R" && die "mounts below $R already (another run?): umount them first"
mnt -t proc proc "$R/proc"
mnt --bind /dev "$R/dev"
mnt --bind /dev/pts "$R/dev/pts"
mnt -t tmpfs tmpfs "$R/tmp"
mnt -t sysfs sysfs "$R/sys"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null

# ---- phase 2: the build dependencies from debian/control ------------------------------------
rm -rf "$R/build"
mkdir -p "$R/build/emgd"
git archive HEAD | tar -x -C "$R/build/emgd" || die "git archive HEAD"
VERSION=$(dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null ||
	sed -n '1s/.*(\(.*\)).*/\1/p' debian/changelog)
{ in_root apt-get update && in_root apt-get build-dep -y -Pnocheck /build/emgd; } >"$W/build-dep.log" 2>&1 ||
	{ tail -20 "$W/build-dep.log"; die "apt-get build-dep, log $W/build-dep.log"; }
phase "build dependencies (apt-get build-dep, under qemu)"

# ---- phase 3: dpkg-buildpackage, natively in emulation --------------------------------------
# nocheck: the unit suite under qemu is tests/cross/arm64.sh's (tests/run's arm64 tree); here it
# would compile under emulation too, and the build already takes most of the run.
echo "arm64-deb: dpkg-buildpackage -b -us -uc in the root (HEAD $(git rev-parse --short HEAD), $VERSION)"
in_root sh -c 'cd /build/emgd && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" DEB_BUILD_PROFILES=nocheck \
	dpkg-buildpackage -b -us -uc' >"$W/build.log" 2>&1 ||
	{ tail -40 "$W/build.log"; die "dpkg-buildpackage, log $W/build.log"; }
DEB=emgd_${VERSION}_arm64.deb
[ -f "$R/build/$DEB" ] || die "no $DEB after the build: $(ls "$R/build")"
rm -f "$W"/emgd_*
# All that the .changes lists (emgd-dbgsym too): lintian reads the .changes and needs them.
cp "$R/build/"emgd*_"${VERSION}"_arm64.* "$W/" || die "copying the package out"
phase "dpkg-buildpackage (under qemu)"
ok "built $W/$DEB ($(stat -c %s "$W/$DEB") bytes; installed size $(dpkg-deb -f "$W/$DEB" Installed-Size) KiB)"

# ---- phase 4: lintian and the contents ------------------------------------------------------
FAILS=0
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
lintian --fail-on error,warning --pedantic -I "$W/emgd_${VERSION}_arm64.changes" >"$W/lintian.log" 2>&1
lrc=$?
ne=$(grep -c '^E:' "$W/lintian.log") nw=$(grep -c '^W:' "$W/lintian.log")
echo "lintian --pedantic -I ($ne errors, $nw warnings, exit $lrc):"
grep -v '^running with root privileges' "$W/lintian.log" | sed 's/^/  /'
# It exits 0 also when it checked nothing ("Skipping X.changes: Y does not exist").
grep -q '^Skipping\|No packages selected' "$W/lintian.log" && bad "lintian checked nothing"
[ "$lrc" = 0 ] || [ "$ne$nw" != 00 ] || bad "lintian failed (exit $lrc)"
[ "$ne" = 0 ] && ok "lintian: no errors" || bad "lintian: $ne errors"
[ "$nw" = 0 ] && ok "lintian: no warnings" || bad "lintian: $nw warnings"
phase "lintian"

paths() { dpkg-deb -c "$1" | awk '{ p = $6; sub(/^\./, "", p); print p }' | sed 's/x86_64-linux-gnu/aarch64-linux-gnu/g' | sort; }
paths "$W/$DEB" >"$W/arm64.files"
# The amd64 package from the same commit, built on the host, if its build dependencies are
# there (as tests/package/test_deb.py builds it); else the list that test checks.
AMD=""
if [ "$(dpkg --print-architecture)" = amd64 ] && command -v dpkg-buildpackage >/dev/null &&
	dpkg-checkbuilddeps -Pnocheck debian/control 2>/dev/null; then
	rm -rf "$W/amd64"
	mkdir -p "$W/amd64/emgd"
	git archive HEAD | tar -x -C "$W/amd64/emgd"
	if (cd "$W/amd64/emgd" && env -u CFLAGS -u LDFLAGS -u CPPFLAGS -u MESON_TESTTHREADS LC_ALL=C.UTF-8 \
		DEB_BUILD_OPTIONS="nocheck parallel=2" DEB_BUILD_PROFILES=nocheck \
		nice -n 10 dpkg-buildpackage -b -us -uc) >"$W/amd64.log" 2>&1; then
		AMD=$W/amd64/emgd_${VERSION}_amd64.deb
	else
		tail -20 "$W/amd64.log"
		bad "the amd64 package (for comparison) did not build, log $W/amd64.log"
	fi
	phase "amd64 package on the host (for the comparison)"
fi
if [ -n "$AMD" ]; then
	paths "$AMD" >"$W/amd64.files"
	if cmp -s "$W/amd64.files" "$W/arm64.files"; then
		ok "the arm64 package holds the same $(wc -l <"$W/arm64.files") paths as the amd64 package"
	else
		bad "the arm64 and amd64 packages hold different paths (- amd64, + arm64):"
		diff "$W/amd64.files" "$W/arm64.files" | sed -n 's/^[<>]/  &/p'
	fi
fi
for p in /usr/sbin/emgd /usr/bin/emgctl /lib/systemd/system/emgd.service /lib/systemd/system/emgd@.service \
	/lib/udev/rules.d/70-emgd.rules /usr/lib/sysusers.d/emgd.conf /etc/emgd/emgd.conf \
	/usr/share/man/man8/emgd.8.gz /usr/share/man/man5/emgd.conf.5.gz /usr/share/man/man1/emgctl.1.gz \
	/usr/share/doc/emgd/copyright; do
	grep -qx "$p" "$W/arm64.files" || { bad "the package lacks $p"; lacks=1; }
done
[ -n "${lacks:-}" ] || ok "the package holds the binaries, both units, the udev rule, the sysusers file, the config and the man pages"
[ "$(dpkg-deb -f "$W/$DEB" Architecture)" = arm64 ] && ok "Architecture: arm64" || bad "Architecture is not arm64"
rm -rf "$W/x"
dpkg-deb -x "$W/$DEB" "$W/x" && dpkg-deb -e "$W/$DEB" "$W/x/DEBIAN" || bad "dpkg-deb -x/-e $DEB"
[ "$(cat "$W/x/DEBIAN/conffiles")" = /etc/emgd/emgd.conf ] && ok "/etc/emgd/emgd.conf is the conffile" ||
	bad "conffiles: $(cat "$W/x/DEBIAN/conffiles")"
for b in usr/sbin/emgd usr/bin/emgctl; do
	d=$(file -b "$W/x/$b")
	case $d in
	*"ARM aarch64"*) ok "$b: ${d%%, BuildID*}" ;;
	*) bad "$b is not an aarch64 executable: $d" ;;
	esac
done
echo "depends: $(dpkg-deb -f "$W/$DEB" Depends)"
phase "contents"

# ---- phase 5: install it in the root and run it under qemu ----------------------------------
# apt-get installs the .deb with dpkg -i and its dependencies (systemd for systemd-sysusers,
# which the buildd root has not); the postinst creates the emg group.
cp "$W/$DEB" "$R/tmp/"
# A kept root has the last run's package: purge it first, so that this is a fresh install
# (and the purge, the postrm, runs too).
if in_root dpkg-query -W emgd >/dev/null 2>&1; then
	in_root dpkg --purge emgd >"$W/purge.log" 2>&1 && ! in_root test -e /etc/emgd/emgd.conf &&
		ok "dpkg --purge emgd (the last run's) removed /etc/emgd/emgd.conf" ||
		bad "dpkg --purge emgd: $(tail -3 "$W/purge.log")"
fi
in_root apt-get install -y --no-install-recommends "/tmp/$DEB" >"$W/install.log" 2>&1 ||
	{ tail -20 "$W/install.log"; die "installing the package in the root, log $W/install.log"; }
[ "$(in_root dpkg-query -W -f='${Status} ${Version}' emgd)" = "install ok installed $VERSION" ] &&
	ok "dpkg -i (via apt-get install): emgd $VERSION installed" || bad "emgd is not installed: $(in_root dpkg-query -W emgd)"
in_root getent group emg >/dev/null && ok "the postinst created the emg group" || bad "no emg group after the install"
v=$(in_root emgd --version 2>&1)
[ "$v" = "emgd ${VERSION%-*}" ] && ok "emgd --version: $v" || bad "emgd --version: '$v' (expected 'emgd ${VERSION%-*}')"
out=$(in_root emgd --check-config -c /etc/emgd/emgd.conf 2>&1) &&
	ok "emgd --check-config -c /etc/emgd/emgd.conf: $(echo "$out" | tail -1)" ||
	bad "emgd --check-config -c /etc/emgd/emgd.conf: $out"
# The shipped config (the synth) on a port of its own: the root shares the host's network.
PORT=$((20000 + $$ % 20000))
t=$(date +%s)
# Not through in_root: $! would be the function's subshell, and SIGTERM would end only that.
# nice, chroot and env exec, so $! is emgd itself.
nice -n 10 chroot "$R" /usr/bin/env -i $ROOTENV emgd -c /etc/emgd/emgd.conf -l "127.0.0.1:$PORT" \
	>"$W/run.log" 2>&1 &
EMGD_PID=$!
st=""
i=0
while [ $i -lt 120 ] && kill -0 "$EMGD_PID" 2>/dev/null; do
	# emgctl status answers once the daemon streams (real-time synth, under qemu)
	st=$(in_root emgctl -s "127.0.0.1:$PORT" -t 1 status 2>&1) && break
	st=""
	i=$((i + 1))
done
if [ -n "$st" ]; then
	ok "emgd (synth) answers emgctl status after $(($(date +%s) - t)) s:"
	echo "$st" | sed 's/^/  /'
	# Subscribed for a few seconds, the stream must flow: the last of emgctl's 1 Hz plain
	# lines has ticks and no "no data".
	in_root emgctl -s "127.0.0.1:$PORT" monitor --duration 4 >"$W/monitor.log" 2>&1
	tl=$(grep '^tick ' "$W/monitor.log" | tail -1)
	case $tl in
	"tick 0,"* | *"no data"* | "") bad "no stream in 4 s of emgctl monitor: '$tl' (log $W/monitor.log)" ;;
	*) ok "emgctl monitor --duration 4 gets the stream: $tl" ;;
	esac
	awk '/^emgd / { b = "" } { b = b "  " $0 "\n" } END { printf "%s", b }' "$W/monitor.log" # the last second
else
	bad "emgd did not answer emgctl status on 127.0.0.1:$PORT"
fi
kill -TERM "$EMGD_PID" 2>/dev/null
( sleep 30; kill -KILL "$EMGD_PID" 2>/dev/null ) & # a daemon that ignores SIGTERM fails, not hangs
guard=$!
wait "$EMGD_PID"
rc=$?
kill "$guard" 2>/dev/null
EMGD_PID=""
[ $rc = 0 ] && ok "emgd exits 0 on SIGTERM" || bad "emgd exited $rc after SIGTERM"
echo "emgd's log:"
sed 's/^/  /' "$W/run.log"
phase "install and run (under qemu)"

echo "arm64-deb: times:"
printf '%s' "$TIMES"
echo "  total: $(($(date +%s) - T0)) s"
echo "arm64-deb: $W/$DEB, lintian $ne errors $nw warnings, $FAILS failed checks"
[ "$FAILS" = 0 ]
}
main "$@"; exit # on the same line: nothing after it is read, even if the file grew meanwhile
