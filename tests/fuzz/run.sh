#!/bin/sh
# Run one libFuzzer target for a fixed time:
#
#   tests/fuzz/run.sh TARGET [SECONDS] [libFuzzer options...]
#   tests/fuzz/run.sh osc 600            # ten minutes on the OSC control path
#   tests/fuzz/run.sh all 60             # every target, one minute each
#
# TARGET is osc, config, replay_csv, replay_edf, cyton_decode, hackeeg_decode, repair or
# calib, oscquery, ws or www (or all).  The first run sets up build-fuzz/ (clang, -Dfuzz=true, ASan + UBSan; override
# with BUILD=dir).  Seeds come from tests/fuzz/corpus/TARGET (read-only); what libFuzzer
# learns is kept in BUILD/corpus/TARGET across runs; a crash is written to
# BUILD/crashes/TARGET-crash-<sha1> - copy it into tests/fuzz/corpus/TARGET/ as a
# regression (the fuzz-TARGET unit test replays it), fix the bug, add a unit test.
#
# Prints one line per target: "fuzz-TARGET: OK|FAIL, N execs in S s, C crashes"; exits 1
# on a crash.  FUZZ_JOBS=N runs N workers in parallel (libFuzzer -fork).  FUZZ_TESTLOG=FILE
# also appends one meson-testlog.json-style line per target (tests/run counts them).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-fuzz}
ALL="osc config replay_csv replay_edf cyton_decode hackeeg_decode repair calib oscquery ws www"
[ $# -ge 1 ] || { sed -n '2,17p' "$0"; exit 2; }
target=$1; shift
secs=${1:-60}; [ $# -ge 1 ] && shift
[ "$target" = all ] && targets=$ALL || targets=$target

if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" --werror -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false >"$BUILD.setup.log" 2>&1 || { cat "$BUILD.setup.log"; exit 1; }
fi
# shellcheck disable=SC2086
ninja -C "$BUILD" $(for t in $targets; do echo "tests/fuzz_$t"; done) >"$BUILD.build.log" 2>&1 ||
	{ tail -40 "$BUILD.build.log"; exit 1; }

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
status=0
for t in $targets; do
	[ -x "$BUILD/tests/fuzz_$t" ] || { echo "fuzz-$t: FAIL, no such target"; status=1; continue; }
	mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes"
	log="$BUILD/fuzz-$t.log"
	fork=""
	[ "${FUZZ_JOBS:-1}" -gt 1 ] && fork="-fork=$FUZZ_JOBS -ignore_crashes=0"
	start=$(date +%s)
	# -max_len: room for oversize datagrams and whole small recordings
	# shellcheck disable=SC2086
	"$BUILD/tests/fuzz_$t" -max_total_time="$secs" -max_len=16384 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 $fork \
		-artifact_prefix="$BUILD/crashes/$t-" "$@" \
		"$BUILD/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	dur=$(( $(date +%s) - start ))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/.*Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\): cov.*/\1/p' "$log" | tail -1) # -fork
	# A slow unit is not a crash: libFuzzer writes one when an input ran over
	# -report_slow_units, which on a loaded machine (a niced fuzzer starved of
	# CPU) says more about the machine; it is reported, and replayed by hand.
	crashes=$(grep "Test unit written to" "$log" | grep -vc -- "-slow-unit-")
	slow=$(grep -c -- "Test unit written to .*-slow-unit-" "$log")
	if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ]; then
		echo "fuzz-$t: OK, ${execs:-0} execs in $dur s, 0 crashes$([ "$slow" -gt 0 ] && echo ", $slow slow units (see $log)")"
	else
		echo "fuzz-$t: FAIL, ${execs:-0} execs in $dur s, $crashes crashes (exit $rc; see $log)"
		grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5
		status=1
	fi
	if [ -n "${FUZZ_TESTLOG:-}" ]; then
		mkdir -p "$(dirname "$FUZZ_TESTLOG")"
		[ $rc -eq 0 ] && [ "$crashes" -eq 0 ] && res=OK || res=FAIL
		printf '{"name": "fuzz-%s", "result": "%s", "duration": %s, "execs": %s, "crashes": %s}\n' \
			"$t" "$res" "$dur" "${execs:-0}" "$crashes" >>"$FUZZ_TESTLOG"
	fi
done
exit $status
