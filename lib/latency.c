/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "latency.h"

void emg_lat_reset(struct emg_lat *h)
{
	memset(h, 0, sizeof(*h));
}

/* Octave o >= 1 holds [2^(o+4), 2^(o+5)); octave 0 holds [0, 32) at 1 ns resolution. */
static void locate(uint64_t v, unsigned *o, unsigned *s)
{
	if (v < EMG_LAT_SUB) {
		*o = 0;
		*s = (unsigned)v;
		return;
	}
	unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= 5 */
	*o = top - 4;
	if (*o >= EMG_LAT_OCTAVES) {
		*o = EMG_LAT_OCTAVES - 1;
		*s = EMG_LAT_SUB - 1;
		return;
	}
	*s = (unsigned)((v >> (top - 5)) & (EMG_LAT_SUB - 1));
}

static uint64_t upper(unsigned o, unsigned s)
{
	if (o == 0)
		return s;
	unsigned top = o + 4;
	return ((uint64_t)(EMG_LAT_SUB + s + 1) << (top - 5)) - 1;
}

void emg_lat_add(struct emg_lat *h, uint64_t ns)
{
	unsigned o, s;

	locate(ns, &o, &s);
	h->b[o][s]++;
	h->count++;
	if (ns > h->max)
		h->max = ns;
}

uint64_t emg_lat_quantile(const struct emg_lat *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		q = 0;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)(q * (double)h->count) + 1;
	for (unsigned o = 0; o < EMG_LAT_OCTAVES; o++)
		for (unsigned s = 0; s < EMG_LAT_SUB; s++) {
			seen += h->b[o][s];
			if (seen >= rank) {
				uint64_t u = upper(o, s);
				return u < h->max ? u : h->max;
			}
		}
	return h->max;
}
