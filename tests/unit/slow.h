/* SPDX-License-Identifier: MIT */
/*
 * How many times slower than native this run's code is known to be, for the few
 * wall-clock bounds in the unit tests (a write that must not wait, real-time pacing):
 * Check's CK_TIMEOUT_MULTIPLIER, which tests/run sets for the sanitizer trees (4) and
 * tests/cross/arm64.sh for qemu-user emulation (5); 1 when unset.  Header-only.
 */
#ifndef EMG_TEST_SLOW_H
#define EMG_TEST_SLOW_H

#include <stdlib.h>

/* CK_TIMEOUT_MULTIPLIER as a number >= 1 (1 when unset or not a number). */
static inline double slow_factor(void)
{
	const char *s = getenv("CK_TIMEOUT_MULTIPLIER");
	double f = s ? strtod(s, NULL) : 1.0;

	return f >= 1.0 ? f : 1.0;
}

#endif
