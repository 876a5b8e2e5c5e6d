/* SPDX-License-Identifier: MIT */
/*
 * emg_hackeeg_dec: the HackEEG MessagePack sample stream to frames in uV.
 *
 * Pure and allocation-free, like emg_cyton_dec.  The struct is public only
 * so that callers can embed it; treat its fields as private.
 *
 * In MessagePack mode the firmware (starcat-io/hackeeg-driver-arduino
 * v0.3.0, send_sample_messagepack()) writes one map per sample:
 *   82                 fixmap, 2 entries
 *   a1 43  cc c8       "C": uint8 200
 *   a1 44  c4 LEN      "D": bin8 of LEN bytes:
 *     0..3   timestamp, micros(), uint32 little-endian
 *     4..7   sample number, uint32 little-endian, 0 after "start", +1 per sample
 *     8..10  ADS1299 status word, 24-bit big-endian: 1100 LOFF_STATP LOFF_STATN GPIO[7:4]
 *     11..   channels, 24-bit big-endian two's complement
 * For one ADS1299 LEN = 8 + 3 + 3 * channels (35 for 8 channels).  Stacked
 * (daisy-chained) ADS1299s repeat [status, 8 channels]: LEN = 8 + 27 * k.
 * These exact bytes are matched by hand (no general MessagePack parser, no
 * libmsgpack); anything else in the stream -- the JSON Lines replies the
 * firmware sends to commands even in MessagePack mode -- is skipped.
 * A packet is accepted only if LEN has one of the shapes above and every
 * status word starts with the 1100 nibble; otherwise the decoder resyncs on
 * the next header.  Gaps come from the sample number.  There is no checksum:
 * a byte lost among the channel bytes of an aligned packet corrupts that
 * frame and costs the next one (which is then counted as lost).
 */
#ifndef EMG_HACKEEG_DECODE_H
#define EMG_HACKEEG_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

#define EMG_HACKEEG_MAX_CHANNELS 32  /* four stacked ADS1299 */
#define EMG_HACKEEG_BATCH 64         /* frames buffered before they are emitted */
#define EMG_HACKEEG_HEADER_LEN 9     /* map header, "C": 200, "D": bin8 LEN */

typedef emg_batch_emit_fn emg_hackeeg_emit_fn;

struct emg_hackeeg_stats {
	uint64_t packets;       /* well-formed sample packets */
	uint64_t frames;        /* frames emitted */
	uint64_t lost;          /* samples missing according to the sample number */
	uint64_t sync_losses;   /* times the packet alignment was lost */
	uint64_t skipped;       /* bytes skipped between packets (JSON replies, garbage) */
	uint64_t bad_packets;   /* headers followed by an impossible length or status word */
	uint64_t short_packets; /* packets with fewer channels than configured */
	uint64_t stalls;        /* gaps seen only in the micros() timestamp (the Due stalled) */
	uint64_t stall_lost;    /* samples those gaps lost (part of lost) */
	uint32_t last_status;   /* status word of the first ADS1299 in the last packet */
	uint32_t last_timestamp_us;
	unsigned packet_channels; /* channels in the last packet */
};

struct emg_hackeeg_dec {
	/* private */
	unsigned channels;
	struct emg_batch out;   /* frames to the emit callback */
	uint8_t pkt[EMG_HACKEEG_HEADER_LEN + 255];
	struct emg_framing fr;  /* how much of pkt is a packet, in step or not */
	uint32_t last;
	uint32_t last_ts;       /* micros() of the last packet */
	double period_us;       /* 1e6 / rate, 0 = timestamps unchecked */
	struct emg_hackeeg_stats st;
};

/* Set up to deliver the first `channels` (1..32) channels at PGA gain `gain`
 * (1, 2, 4, 6, 8, 12, 24).  Returns 0 or -EINVAL. */
int emg_hackeeg_dec_init(struct emg_hackeeg_dec *d, unsigned channels, unsigned gain,
			 emg_hackeeg_emit_fn emit, void *ud);

/* Check the firmware's micros() timestamps at rate Hz (0 = do not).  The Due
 * counts its reads, not the ADS1299's conversions: when the host is late to
 * read, the Due stalls, conversions are skipped and the sample number stays
 * contiguous - only the timestamp shows the gap, reported as lost samples. */
void emg_hackeeg_dec_set_rate(struct emg_hackeeg_dec *d, double rate);

/* Forget partial packets and sample-number history (after a reconnect); the
 * next frame gets sample index next_seq.  Statistics are kept. */
void emg_hackeeg_dec_reset(struct emg_hackeeg_dec *d, uint64_t next_seq);

/* Feed bytes from the CDC data endpoint; emits what completes. */
void emg_hackeeg_dec_feed(struct emg_hackeeg_dec *d, const uint8_t *p, size_t n);

/* Sample index of the next frame. */
uint64_t emg_hackeeg_dec_next_seq(const struct emg_hackeeg_dec *d);

/* Counters since init. */
const struct emg_hackeeg_stats *emg_hackeeg_dec_stats(const struct emg_hackeeg_dec *d);

/* Channels in a packet whose bin8 length is len, 0 if len is impossible. */
unsigned emg_hackeeg_channels_for_len(unsigned len);

#endif
