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

#include "devices/cyton_decode.h"
#include "fuzz_frames.h"
#include "fuzz_main.h"

static struct fuzz_frames A, B;

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

	fuzz_frames_reset(&A, channels, gain);
	fuzz_frames_reset(&B, channels, gain);
	if (emg_cyton_dec_init(&da, daisy, channels, gain, fuzz_frames_emit, &A) ||
	    emg_cyton_dec_init(&db, daisy, channels, gain, fuzz_frames_emit, &B))
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
	fuzz_frames_same(&A, &B);
	const struct emg_cyton_stats *s = emg_cyton_dec_stats(&da);
	if (s->frames != A.n && A.n < FUZZ_MAXF)
		abort();
	if (s->packets > size / EMG_CYTON_PACKET + 1)
		abort();
	return 0;
}
