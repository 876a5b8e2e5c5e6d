/* SPDX-License-Identifier: MIT */
/*
 * emg_batch: the output stage the ADS1299 decoders share (Cyton, HackEEG).
 *
 * Decoded frames of 24-bit counts are scaled to microvolts and collected;
 * a batch is handed to the emit callback when it is full, before a gap of
 * lost frames (so that the gap starts a batch and its first_seq/lost are
 * exact) and when the decoder says the input ended (emg_batch_flush).  No
 * allocation, lock or log: it runs on the USB event thread.
 */
#ifndef EMG_BATCH_H
#define EMG_BATCH_H

#include <stdbool.h>
#include <stdint.h>

/* Frames of channels floats in uV; first_seq is the first frame's sample
 * index, lost the frames missing just before it. */
typedef void (*emg_batch_emit_fn)(void *ud, const float *frames, unsigned nframes,
				  uint64_t first_seq, uint32_t lost);

/* Room for the largest batch: 64 frames of 32 channels (four stacked ADS1299). */
#define EMG_BATCH_MAX_FLOATS 2048

struct emg_batch {
	/* private */
	unsigned cap;            /* frames per batch */
	unsigned channels;
	double uv_per_count;
	emg_batch_emit_fn emit;
	void *ud;
	uint64_t *emitted;       /* the owner's frame counter */
	uint64_t seq;            /* sample index of the next frame */
	unsigned n;              /* frames waiting */
	uint64_t first_seq;
	uint32_t lost;
	float out[EMG_BATCH_MAX_FLOATS];
};

/* Batches of cap frames of channels channels at PGA gain (1..24); every
 * emitted frame is counted in *emitted.  -EINVAL if they do not fit. */
int emg_batch_init(struct emg_batch *b, unsigned cap, unsigned channels, unsigned gain,
		   emg_batch_emit_fn emit, void *ud, uint64_t *emitted);

/* Drop waiting frames; the next frame gets sample index next_seq. */
void emg_batch_reset(struct emg_batch *b, uint64_t next_seq);

/* Sample index the next frame gets. */
uint64_t emg_batch_next_seq(const struct emg_batch *b);

/* Add one frame (channels counts) that follows lost missing frames. */
void emg_batch_put(struct emg_batch *b, const int32_t *counts, uint32_t lost);

/* Emit the waiting frames, if any. */
void emg_batch_flush(struct emg_batch *b);

/*
 * Packet framing the two decoders share: how much of the next packet the
 * buffer holds, whether the stream is in step, and whether a previous
 * packet counter exists to measure gaps from.
 */
struct emg_framing {
	unsigned have;   /* bytes of the packet buffer in use */
	bool locked;     /* packets have been following each other */
	bool have_last;  /* a packet counter was seen (gaps can be counted) */
};

/* Forget everything: the next byte must start a packet. */
void emg_framing_reset(struct emg_framing *f);

/* The stream fell out of step: unlock, counting a loss in *losses if it was locked. */
void emg_framing_lose(struct emg_framing *f, uint64_t *losses);

/* buf[0..have) is not a packet: drop its first byte and all up to the next `header`, counted in *skipped. */
void emg_framing_realign(struct emg_framing *f, uint8_t *buf, uint8_t header, uint64_t *skipped);

#endif
