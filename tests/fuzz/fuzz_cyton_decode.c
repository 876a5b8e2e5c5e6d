/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the Cyton decoder.  The first input byte picks the set-up
 * (Daisy, channels, gain, FTDI framing, chunk sizes); the rest is the byte
 * stream.  Besides memory errors it checks that decoding does not depend on
 * how the stream is cut into chunks, that sample indices only grow, and
 * that every value is finite and inside the converter's range.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ads1299.h"
#include "devices/cyton_decode.h"
#include "fuzz_main.h"

#define MAXF 4096

struct rec {
	unsigned channels;
	double limit;
	size_t n;
	uint64_t next_seq;
	float v[MAXF * 16];
	uint64_t seq[MAXF];
	uint32_t lost[MAXF];
};

static struct rec A, B;

static void emit(void *ud, const float *f, unsigned n, uint64_t seq, uint32_t lost)
{
	struct rec *r = ud;

	if (n == 0 || seq < r->next_seq)
		abort();
	for (unsigned i = 0; i < n; i++) {
		for (unsigned c = 0; c < r->channels; c++)
			if (!isfinite(f[i * r->channels + c]) || fabs(f[i * r->channels + c]) > r->limit)
				abort();
		if (r->n < MAXF) {
			memcpy(r->v + r->n * 16, f + i * r->channels, r->channels * sizeof(float));
			r->seq[r->n] = seq + i;
			r->lost[r->n] = i ? 0 : lost;
			r->n++;
		}
	}
	r->next_seq = seq + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned gains[] = { 1, 2, 4, 6, 8, 12, 24, 24 };
	static struct emg_cyton_dec da, db;

	if (size < 1)
		return 0;
	uint8_t k = data[0];
	bool daisy = k & 1, ftdi = k & 2;
	unsigned channels = 1 + ((k >> 2) & 7) + (daisy ? 8 * ((k >> 5) & 1) : 0);
	unsigned gain = gains[(k >> 5) & 7];
	size_t chunk = 1 + (k >> 3);
	data++, size--;

	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	A.channels = B.channels = channels;
	A.limit = B.limit = 8388608.0 * emg_ads1299_uv_per_count(gain) * 1.0001;
	if (emg_cyton_dec_init(&da, daisy, channels, gain, emit, &A) ||
	    emg_cyton_dec_init(&db, daisy, channels, gain, emit, &B))
		abort();
	if (ftdi) {
		/* one transfer vs one 64-byte USB packet at a time: same result */
		emg_cyton_dec_feed_ftdi(&da, data, size, 64);
		for (size_t i = 0; i < size; i += 64)
			emg_cyton_dec_feed_ftdi(&db, data + i, size - i < 64 ? size - i : 64, 64);
	} else {
		emg_cyton_dec_feed(&da, data, size);
		for (size_t i = 0; i < size; i += chunk)
			emg_cyton_dec_feed(&db, data + i, size - i < chunk ? size - i : chunk);
	}
	if (A.n != B.n || memcmp(A.seq, B.seq, A.n * sizeof(A.seq[0])) ||
	    memcmp(A.lost, B.lost, A.n * sizeof(A.lost[0])) ||
	    memcmp(A.v, B.v, A.n * 16 * sizeof(float)))
		abort();
	const struct emg_cyton_stats *s = emg_cyton_dec_stats(&da);
	if (s->frames != A.n && A.n < MAXF)
		abort();
	if (s->packets > size / EMG_CYTON_PACKET + 1)
		abort();
	return 0;
}
