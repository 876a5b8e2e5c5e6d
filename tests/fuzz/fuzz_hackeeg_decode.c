/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the HackEEG MessagePack decoder.  The first input byte picks
 * the set-up (channels, gain, chunk size); the rest is the CDC byte stream.
 * Checks: no memory errors, the same frames whatever the chunking, sample
 * indices only grow, values finite and in range.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/hackeeg_decode.h"
#include "fuzz_frames.h"
#include "fuzz_main.h"

static struct fuzz_frames A, B;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned gains[] = { 1, 2, 4, 6, 8, 12, 24, 24 };
	static struct emg_hackeeg_dec da, db;

	if (size < 1)
		return 0;
	uint8_t k = data[0];
	unsigned channels = 1 + (k & 31);
	unsigned gain = gains[(k >> 5) & 7];
	size_t chunk = 1 + (size_t)(k % 53);
	data++, size--;

	fuzz_frames_reset(&A, channels, gain);
	fuzz_frames_reset(&B, channels, gain);
	if (emg_hackeeg_dec_init(&da, channels, gain, fuzz_frames_emit, &A) ||
	    emg_hackeeg_dec_init(&db, channels, gain, fuzz_frames_emit, &B))
		abort();
	emg_hackeeg_dec_feed(&da, data, size);
	for (size_t i = 0; i < size; i += chunk)
		emg_hackeeg_dec_feed(&db, data + i, size - i < chunk ? size - i : chunk);
	fuzz_frames_same(&A, &B);
	if (emg_hackeeg_dec_stats(&da)->packets > size / (EMG_HACKEEG_HEADER_LEN + 14) + 1)
		abort();
	return 0;
}
