/* SPDX-License-Identifier: MIT */
/*
 * Sliding RMS, O(1) per channel-sample, no drift.
 *
 * Layout: the ring holds the squared samples of the last `window` frames,
 * frame-major (ring[pos * nch + ch]), so the work of one frame is a straight
 * loop over contiguous channels that the compiler vectorises.
 *
 * Per channel two double accumulators:
 *   sum  - running sum of the window: += new square, -= the square leaving;
 *   pass - sum of the squares written since the write position last wrapped.
 * When the write position wraps, `pass` holds the sum of exactly the squares
 * in the ring (freshly accumulated, no subtractions) and replaces `sum`; it
 * restarts from zero.  The cancellation error of the running sum therefore
 * never outlives one window, and the correction costs one store per channel
 * per window - no periodic recompute loop, no burst of work.
 *
 * Squares are stored as float (what the ring holds is exactly what is later
 * subtracted, so add/subtract pairs match bit for bit up to the double
 * rounding of the sum).  Tiny negative sums left by cancellation are clamped
 * to 0 before the square root.
 *
 * Patches (emg_env_patch): a sample still in the window may be replaced
 * after the fact (the ECG stage's correction of the part of a heartbeat
 * before its trigger).  The ring entry takes the new square and `sum` the
 * difference.  `pass` too when the entry was written in the current pass,
 * i.e. at a ring index below pos; an entry at pos or above belongs to the
 * previous pass, is not in `pass`, and is overwritten (its new square
 * subtracted from `sum`) before the next wrap - the resynchronisation stays
 * exact.  The difference added to `pass` is one more rounding, gone at the
 * wrap after next.
 *
 * First fill: until `window` samples have arrived the RMS is
 * sqrt(sum / samples_so_far), i.e. the RMS of what has been seen, rather than
 * a value biased low by the zeros that pre-fill the ring.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "simd.h"

struct emg_env {
	unsigned nch;
	unsigned window;
	unsigned pos;     /* next write position, 0..window-1 */
	unsigned filled;  /* samples seen per channel, saturates at window */
	double inv_n;     /* 1 / min(filled, window) */
	double *sum;      /* [nch] running window sum */
	double *pass;     /* [nch] sum over the current pass */
	float *ring;      /* [window * nch] squares, frame-major */
	void (*run)(struct emg_env *e, const float *in, float *out, unsigned nframes);
};

typedef void (*run_fn)(struct emg_env *e, const float *in, float *out, unsigned nframes);
static run_fn pick_run(unsigned nch);

int emg_env_new(struct emg_env **out, unsigned nch, unsigned window)
{
	struct emg_env *e;

	if (!out || nch == 0 || window == 0)
		return -EINVAL;
	if ((size_t)window * nch > ((size_t)1 << 31) / sizeof(float))
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->nch = nch;
	e->window = window;
	e->sum = calloc(nch, sizeof(double));
	e->pass = calloc(nch, sizeof(double));
	e->ring = calloc((size_t)window * nch, sizeof(float));
	e->run = pick_run(nch);
	if (!e->sum || !e->pass || !e->ring) {
		emg_env_free(e);
		return -ENOMEM;
	}
	emg_env_reset(e);
	*out = e;
	return 0;
}

void emg_env_free(struct emg_env *e)
{
	if (!e)
		return;
	free(e->sum);
	free(e->pass);
	free(e->ring);
	free(e);
}

void emg_env_reset(struct emg_env *e)
{
	memset(e->sum, 0, e->nch * sizeof(double));
	memset(e->pass, 0, e->nch * sizeof(double));
	memset(e->ring, 0, (size_t)e->window * e->nch * sizeof(float));
	e->pos = 0;
	e->filled = 0;
	e->inv_n = 1.0;
}

unsigned emg_env_window(const struct emg_env *e)
{
	return e->window;
}

/* The run loop, once per ISA level (simd.h): vector code for whole groups of channels. */
#define EMG_KERNEL "envelope_kernel.h"
#include "simd_kernels.h"

static run_fn pick_run(unsigned nch)
{
#if EMG_SIMD_X86
	switch (emg_simd_level()) {
	case 4:
		return nch >= 16 ? run_v4 : run_v4_8;
	case 3:
		return run_v3;
	}
#endif
	(void)nch;
	return run_base;
}

void emg_env_run(struct emg_env *e, const float *in, float *out, unsigned nframes)
{
	e->run(e, in, out, nframes);
}

/* Ring index of the frame fed `age` frames ago, or -1 when it left the window (or never came). */
static long patch_index(const struct emg_env *e, unsigned age)
{
	if (age >= e->filled)
		return -1;
	return e->pos > age ? (long)(e->pos - 1 - age) : (long)(e->pos + e->window - 1 - age);
}

/* Patch one channel at ring index i: same float square as the run loop. */
static void patch_at(struct emg_env *e, long i, unsigned ch, float x)
{
	float *r = e->ring + (size_t)i * e->nch + ch;
	const float sq = x * x;
	const double d = (double)sq - (double)*r;

	*r = sq;
	e->sum[ch] += d;
	if ((unsigned long)i < e->pos)
		e->pass[ch] += d;
}

int emg_env_patch(struct emg_env *e, unsigned ch, unsigned age, float x)
{
	const long i = patch_index(e, age);

	if (ch >= e->nch)
		return -EINVAL;
	if (i < 0)
		return -ERANGE;
	patch_at(e, i, ch, x);
	return 0;
}

int emg_env_patch_frame(struct emg_env *e, unsigned age, const float *x, const uint8_t *mask)
{
	const long i = patch_index(e, age);

	if (i < 0)
		return -ERANGE;
	for (unsigned ch = 0; ch < e->nch; ch++)
		if (mask[ch])
			patch_at(e, i, ch, x[ch]);
	return 0;
}

float emg_env_value(const struct emg_env *e, unsigned ch)
{
	double s;

	if (ch >= e->nch || e->filled == 0)
		return 0.0f;
	s = e->sum[ch];
	return s > 0.0 ? (float)sqrt(s * e->inv_n) : 0.0f;
}
