/* SPDX-License-Identifier: MIT */
/*
 * emg_cp: where a series leaves its rest level - a step, or a linear ramp to
 * a plateau - by least squares.  The onset detector's refinement (onset.c)
 * runs it on a burst's amplitude history to place the onset where the ramp
 * left zero, and on the time-reversed history for the offset.
 *
 * Model for u[0..m): u = b before entry k, and b + A min(1, (j - k + 1) /
 * (R + 1)) from k on; R = 0 is a step.  b and A are free (least squares in
 * closed form), k runs over the series, R over a geometric grid up to
 * EMG_CP_RAMP_MAX.  O(1) per candidate from prefix sums, coarse to fine in
 * k: ~100 positions whatever m.  No allocation: the caller's scratch.
 */
#ifndef EMG_CHANGEPOINT_H
#define EMG_CHANGEPOINT_H

#include <stddef.h>

/* The longest ramp the fit tries, in entries. */
#define EMG_CP_RAMP_MAX 300

/* Doubles of scratch emg_cp_fit() needs for m entries. */
#define EMG_CP_SCRATCH(m) (2 * ((size_t)(m) + 1))

/* Best rise in u[0..m): its first entry k, ramp length in *ramp (0: a step), or -1 if none rises; a ramp must beat the best step by `margin` residual variances.  scratch: EMG_CP_SCRATCH(m) doubles, not overlapping u. */
long emg_cp_fit(const double *u, unsigned m, double *scratch, double margin, unsigned *ramp);

#endif
