/* SPDX-License-Identifier: MIT */
/*
 * emg_cyton_dec: the OpenBCI Cyton / Cyton+Daisy byte stream to frames in uV.
 *
 * Pure and allocation-free: no I/O, no malloc, no locks, so it runs on the
 * acquisition thread and under a fuzzer.  The struct is public only so that
 * callers can embed it or put it on the stack; treat its fields as private.
 *
 * Stream format (OpenBCI "Cyton Data Format"), 33-byte packets:
 *   0      0xA0 header
 *   1      sample counter, 0..255, +1 per packet
 *   2..25  8 channels, 24-bit big-endian two's complement
 *   26..31 6 aux bytes (accelerometer or other, ignored here)
 *   32     footer 0xC0..0xC6
 * Alignment: a packet is accepted when it starts with 0xA0 and ends with a
 * valid footer; after a sync loss (or at the start) the candidate must also
 * be followed by another 0xA0 before it is trusted, which makes false locks
 * on data bytes very unlikely.  There is no checksum: a corrupted channel
 * byte inside an aligned packet cannot be detected.
 *
 * Daisy: the board alternates packets; odd counters carry channels 1-8,
 * the next even counter carries channels 9-16 of the same frame (125 Hz).
 * A half without its partner is dropped (an "orphan").
 *
 * Lost frames come from the counter: without Daisy a gap of k counts is k
 * lost frames; with Daisy the frame number is ((counter - 1) mod 256) / 2
 * (0..127).  Gaps longer than the counter period (1.02 s, 1.02 s with Daisy)
 * alias and cannot be seen.
 *
 * FTDI: the FT231X prefixes every bulk-in packet (wMaxPacketSize bytes,
 * the last one of a transfer may be short) with two status bytes: modem
 * status and line status.  emg_cyton_dec_feed_ftdi() strips them and counts
 * line-status overruns (bit 1).
 */
#ifndef EMG_CYTON_DECODE_H
#define EMG_CYTON_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

#define EMG_CYTON_PACKET 33
#define EMG_CYTON_BATCH 32          /* frames buffered before they are emitted */
#define EMG_CYTON_MAX_CHANNELS 16

/* Frames out: nframes interleaved frames of `channels` floats in uV, the
 * first one with sample index first_seq; lost frames are missing before it. */
typedef emg_batch_emit_fn emg_cyton_emit_fn;

struct emg_cyton_stats {
	uint64_t packets;       /* well-formed packets */
	uint64_t frames;        /* frames emitted */
	uint64_t lost;          /* frames missing according to the counter */
	uint64_t sync_losses;   /* times the packet alignment was lost */
	uint64_t skipped;       /* bytes thrown away while searching for alignment */
	uint64_t orphans;       /* Daisy halves without their partner */
	uint64_t ftdi_packets;  /* FTDI USB packets seen */
	uint64_t ftdi_overruns; /* FTDI packets whose line status reported an overrun */
};

struct emg_cyton_dec {
	/* private */
	bool daisy;
	struct emg_batch out;   /* frames to the emit callback */
	uint8_t pkt[EMG_CYTON_PACKET + 1];
	struct emg_framing fr;  /* how much of pkt is a packet, in step or not */
	uint8_t last;           /* last counter (no Daisy) or frame number (Daisy) */
	bool half_valid;
	uint8_t half_counter;
	int32_t half[8];
	struct emg_cyton_stats st;
};

/* Set up for 8 (daisy = false) or 16 board channels, delivering the first
 * `channels` of them (1..8 or 1..16) at PGA gain `gain` (1, 2, 4, 6, 8, 12, 24).
 * Returns 0 or -EINVAL. */
int emg_cyton_dec_init(struct emg_cyton_dec *d, bool daisy, unsigned channels, unsigned gain,
		       emg_cyton_emit_fn emit, void *ud);

/* Forget partial packets and counter history (after a reconnect); the next
 * frame gets sample index next_seq.  Statistics are kept. */
void emg_cyton_dec_reset(struct emg_cyton_dec *d, uint64_t next_seq);

/* Feed raw serial bytes (status bytes already removed); emits what completes. */
void emg_cyton_dec_feed(struct emg_cyton_dec *d, const uint8_t *p, size_t n);

/* Feed one bulk-in transfer buffer of the FTDI: packets of maxpacket bytes
 * (the last may be short), each starting with two status bytes. */
void emg_cyton_dec_feed_ftdi(struct emg_cyton_dec *d, const uint8_t *p, size_t n,
			     size_t maxpacket);

/* Sample index of the next frame. */
uint64_t emg_cyton_dec_next_seq(const struct emg_cyton_dec *d);

/* Counters since init. */
const struct emg_cyton_stats *emg_cyton_dec_stats(const struct emg_cyton_dec *d);

#endif
