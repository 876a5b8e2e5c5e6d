#!/bin/sh
# Cross-build emgd for arm64 into build-arm64/ and run the unit suite under qemu-user
# (README "arm64"; tests/run's arm64 stage).  Skips with a message, exit 77, when the cross
# toolchain, qemu or an arm64 library is missing (.ci/deps installs them).
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
# The cross file runs qemu with -L /: the loader must be libc6:arm64's (see arm64.txt).
[ -e /lib/ld-linux-aarch64.so.1 ] || skip "no /lib/ld-linux-aarch64.so.1 (libc6:arm64)"

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
# Every unit test runs, forked as natively (README "arm64": the hangs were the loader).
[ $# -eq 0 ] && set -- --suite unit
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-5} meson test -C "$B" --num-processes "$JOBS" \
	--timeout-multiplier 2 --print-errorlogs "$@"
rc=$?
echo "arm64: unit suite in $(( $(date +%s) - t1 )) s"
exit $rc
