/* SPDX-License-Identifier: MIT */
/*
 * Shared by the ADS1299 decoders' fuzz targets (Cyton, HackEEG): a recorder
 * of the frames a decoder emits, which aborts on a frame that breaks the
 * contract - no frames, sample indices going back, a value not finite or
 * beyond the converter's full scale - and the comparison of two recordings
 * of one stream fed in different chunks, which must be equal.
 */
#ifndef EMG_FUZZ_FRAMES_H
#define EMG_FUZZ_FRAMES_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ads1299.h"

#define FUZZ_MAXF 4096 /* frames recorded (more are checked, not kept) */
#define FUZZ_MAXCH 32  /* the widest frame of either board */

struct fuzz_frames {
	unsigned channels;
	double limit; /* full scale, uV */
	size_t n;
	uint64_t next_seq;
	float v[FUZZ_MAXF * FUZZ_MAXCH];
	uint64_t seq[FUZZ_MAXF];
	uint32_t lost[FUZZ_MAXF];
};

/* Empty r for frames of `channels` at ADS1299 gain `gain`. */
static void fuzz_frames_reset(struct fuzz_frames *r, unsigned channels, unsigned gain)
{
	memset(r, 0, sizeof(*r));
	r->channels = channels;
	r->limit = 8388608.0 * emg_ads1299_uv_per_count(gain) * 1.0001;
}

/* The decoders' emit callback (ud: a struct fuzz_frames). */
static void fuzz_frames_emit(void *ud, const float *f, unsigned n, uint64_t seq, uint32_t lost)
{
	struct fuzz_frames *r = ud;

	if (n == 0 || seq < r->next_seq)
		abort();
	for (unsigned i = 0; i < n; i++) {
		for (unsigned c = 0; c < r->channels; c++)
			if (!isfinite(f[i * r->channels + c]) || fabs(f[i * r->channels + c]) > r->limit)
				abort();
		if (r->n < FUZZ_MAXF) {
			memcpy(r->v + r->n * FUZZ_MAXCH, f + i * r->channels, r->channels * sizeof(float));
			r->seq[r->n] = seq + i;
			r->lost[r->n] = i ? 0 : lost;
			r->n++;
		}
	}
	r->next_seq = seq + n;
}

/* Abort unless a and b recorded the same frames. */
static void fuzz_frames_same(const struct fuzz_frames *a, const struct fuzz_frames *b)
{
	if (a->n != b->n || memcmp(a->seq, b->seq, a->n * sizeof(a->seq[0])) ||
	    memcmp(a->lost, b->lost, a->n * sizeof(a->lost[0])) ||
	    memcmp(a->v, b->v, a->n * FUZZ_MAXCH * sizeof(float)))
		abort();
}

#endif
