/* SPDX-License-Identifier: MIT */
/*
 * emg_lat: a fixed-size latency histogram with bounded relative error.
 *
 * Values (nanoseconds) fall into log2 octaves split into 32 linear
 * sub-buckets, so any quantile is within ~3 % of the true value, adding is
 * O(1) with no allocation, and the whole histogram is a few KiB.  Used by
 * the daemon to report sample-arrival -> sendto latency (/emgd/latency).
 */
#ifndef EMG_LATENCY_H
#define EMG_LATENCY_H

#include <stdint.h>

#define EMG_LAT_SUB 32
#define EMG_LAT_OCTAVES 40

struct emg_lat {
	uint64_t count;
	uint64_t max;
	uint64_t b[EMG_LAT_OCTAVES][EMG_LAT_SUB];
};

/* Forget everything. */
void emg_lat_reset(struct emg_lat *h);

/* Add one value in nanoseconds. */
void emg_lat_add(struct emg_lat *h, uint64_t ns);

/* Value at quantile q (0..1) in nanoseconds, 0 when empty (upper edge of its bucket). */
uint64_t emg_lat_quantile(const struct emg_lat *h, double q);

#endif
