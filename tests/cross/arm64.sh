#!/bin/sh
# Cross-build emgd for arm64 into build-arm64/ and run the unit suite under qemu-user
# (README "arm64").  Skips with a message, exit 77, when the cross toolchain, qemu or an
# arm64 library is missing: it needs `dpkg --add-architecture arm64`, which CI does not do.
#   tests/cross/arm64.sh [meson test args: test names, --suite ...]
set -u
cd "$(dirname "$0")/../.."
B=${ARM64_BUILD:-build-arm64}
JOBS=$(nproc 2>/dev/null || echo 2)
skip() { echo "SKIP arm64: $*" >&2; exit 77; }

for t in aarch64-linux-gnu-gcc aarch64-linux-gnu-pkg-config qemu-aarch64-static; do
	command -v "$t" >/dev/null 2>&1 ||
		skip "no $t (apt-get install crossbuild-essential-arm64 qemu-user-static)"
done
# liblo-dev is not Multi-Arch: same (liblo-dev:arm64 would replace the host's liblo-dev),
# so only the runtime liblo7:arm64 is installed and a private liblo.pc points at it; the
# headers are the host's (identical for both architectures).
missing=""
for p in libc6-dev:arm64 libusb-1.0-0-dev:arm64 libsystemd-dev:arm64 check:arm64 libinih-dev:arm64 \
	libedf-dev:arm64 liblo7:arm64 liblo-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] || skip "missing:$missing (dpkg --add-architecture arm64; apt-get update; apt-get install$missing)"
lo=$(ls /usr/lib/aarch64-linux-gnu/liblo.so.7 2>/dev/null) || skip "no /usr/lib/aarch64-linux-gnu/liblo.so.7"

rm -rf "$B" "$B-pc"
mkdir -p "$B-pc"
ln -s "$lo" "$B-pc/liblo.so"
cat >"$B-pc/liblo.pc" <<PC
libdir=$(pwd)/$B-pc
includedir=/usr/include
Name: liblo
Version: $(dpkg-query -W -f='${Version}' liblo7:arm64 | sed 's/-.*//')
Description: liblo7:arm64 with the host's headers (tests/cross/arm64.sh)
Libs: -L\${libdir} -llo -lpthread
Cflags: -I\${includedir}
PC

t0=$(date +%s)
# OSCQuery/mDNS are auto: built when libmicrohttpd-dev:arm64/libavahi-client-dev:arm64 are there.
if ! meson setup "$B" --cross-file tests/cross/arm64.txt -Dpkg_config_path="$(pwd)/$B-pc" \
	--werror >"$B.setup.log" 2>&1; then
	cat "$B.setup.log"; exit 1
fi
if ! ninja -C "$B" -j "$JOBS" >"$B.build.log" 2>&1; then
	tail -50 "$B.build.log"; exit 1
fi
t1=$(date +%s)
echo "arm64: cross-built in $((t1 - t0)) s; unit suite under qemu-aarch64-static:"
# Emulation is several times slower than native: stretch Check's and meson's timeouts.
# CK_FORK=no: under qemu-user 7.2 a Check test case's forked child spins at full CPU and
# never finishes (test_filter: 28 cases pass in < 60 s unforked, hung > 12 min forked);
# no unit test needs fork mode (none expects a signal or an exit).
# Left out (ARM64_ALL=1 runs them too): they never finish under qemu-user here, a single
# guest thread spinning at full CPU (ring: two-thread spin-wait stress, synth: real-time
# pacing, record/replay/oscquery: threads or forked helpers) - not investigated further.
HANG="ring synth record replay oscquery"
if [ $# -eq 0 ]; then
	if [ "${ARM64_ALL:-0}" = 1 ]; then
		set -- --suite unit
	else
		echo "arm64: not run under qemu (hang there; ARM64_ALL=1 runs them): $HANG"
		for t in $(meson test -C "$B" --list --suite unit 2>/dev/null | sed -n 's|.* / ||p'); do
			case " $HANG " in *" $t "*) ;; *) set -- "$@" "$t" ;; esac
		done
	fi
fi
CK_FORK=no CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-5} meson test -C "$B" --num-processes "$JOBS" \
	--timeout-multiplier 2 --print-errorlogs "$@"
rc=$?
echo "arm64: unit suite in $(( $(date +%s) - t1 )) s"
exit $rc
