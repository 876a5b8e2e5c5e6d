/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "ads1299.h"
#include "cyton_decode.h"

#define HEADER 0xA0
#define FOOTER_MIN 0xC0
#define FOOTER_MAX 0xC6

int emg_cyton_dec_init(struct emg_cyton_dec *d, bool daisy, unsigned channels, unsigned gain,
		       emg_cyton_emit_fn emit, void *ud)
{
	unsigned max = daisy ? 16 : 8;

	if (!d || !emit || channels < 1 || channels > max || emg_ads1299_gain_index(gain) < 0)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->daisy = daisy;
	return emg_batch_init(&d->out, EMG_CYTON_BATCH, channels, gain, emit, ud, &d->st.frames);
}

void emg_cyton_dec_reset(struct emg_cyton_dec *d, uint64_t next_seq)
{
	emg_framing_reset(&d->fr);
	d->half_valid = false;
	emg_batch_reset(&d->out, next_seq);
}

uint64_t emg_cyton_dec_next_seq(const struct emg_cyton_dec *d)
{
	return emg_batch_next_seq(&d->out);
}

const struct emg_cyton_stats *emg_cyton_dec_stats(const struct emg_cyton_dec *d)
{
	return &d->st;
}

/* One frame (counts of up to 16 channels) preceded by `lost` missing frames. */
static void put_frame(struct emg_cyton_dec *d, const int32_t *counts, uint32_t lost)
{
	d->st.lost += lost;
	emg_batch_put(&d->out, counts, lost);
}

/* A well-formed packet. */
static void packet(struct emg_cyton_dec *d, const uint8_t *p)
{
	uint8_t counter = p[1];
	int32_t counts[16];

	d->st.packets++;
	if (!d->daisy) {
		uint32_t lost = d->fr.have_last ? (uint8_t)(counter - d->last - 1) : 0;

		for (unsigned c = 0; c < 8; c++)
			counts[c] = emg_s24be(p + 2 + 3 * c);
		d->last = counter;
		d->fr.have_last = true;
		put_frame(d, counts, lost);
		return;
	}
	if (counter & 1) {
		/* first half (channels 1-8); a pending half lost its partner */
		if (d->half_valid)
			d->st.orphans++;
		for (unsigned c = 0; c < 8; c++)
			d->half[c] = emg_s24be(p + 2 + 3 * c);
		d->half_counter = counter;
		d->half_valid = true;
		return;
	}
	if (!d->half_valid || (uint8_t)(d->half_counter + 1) != counter) {
		d->st.orphans++;
		if (d->half_valid)
			d->st.orphans++;
		d->half_valid = false;
		return;
	}
	d->half_valid = false;
	uint8_t frame = (uint8_t)((uint8_t)(counter - 1) >> 1); /* 0..127 */
	uint32_t lost = d->fr.have_last ? (uint8_t)((frame - d->last - 1) & 0x7F) : 0;

	memcpy(counts, d->half, sizeof(d->half));
	for (unsigned c = 0; c < 8; c++)
		counts[8 + c] = emg_s24be(p + 2 + 3 * c);
	d->last = frame;
	d->fr.have_last = true;
	put_frame(d, counts, lost);
}

static bool footer_ok(uint8_t b)
{
	return b >= FOOTER_MIN && b <= FOOTER_MAX;
}

static void feed(struct emg_cyton_dec *d, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];

		if (d->fr.have == 0 && b != HEADER) {
			emg_framing_lose(&d->fr, &d->st.sync_losses);
			d->st.skipped++;
			continue;
		}
		d->pkt[d->fr.have++] = b;
		/* Re-examine the buffer until it needs more input. */
		for (;;) {
			unsigned need = d->fr.locked ? EMG_CYTON_PACKET : EMG_CYTON_PACKET + 1;

			if (d->fr.have < need)
				break;
			if (footer_ok(d->pkt[EMG_CYTON_PACKET - 1]) &&
			    (d->fr.locked || d->pkt[EMG_CYTON_PACKET] == HEADER)) {
				packet(d, d->pkt);
				d->fr.locked = true;
				d->fr.have -= EMG_CYTON_PACKET;
				memmove(d->pkt, d->pkt + EMG_CYTON_PACKET, d->fr.have);
				continue;
			}
			emg_framing_lose(&d->fr, &d->st.sync_losses);
			emg_framing_realign(&d->fr, d->pkt, HEADER, &d->st.skipped);
		}
	}
}

void emg_cyton_dec_feed(struct emg_cyton_dec *d, const uint8_t *p, size_t n)
{
	feed(d, p, n);
	emg_batch_flush(&d->out);
}

void emg_cyton_dec_feed_ftdi(struct emg_cyton_dec *d, const uint8_t *p, size_t n,
			     size_t maxpacket)
{
	if (maxpacket <= 2)
		return;
	while (n) {
		size_t len = n < maxpacket ? n : maxpacket;

		d->st.ftdi_packets++;
		if (len >= 2) {
			if (p[1] & 0x02)
				d->st.ftdi_overruns++;
			feed(d, p + 2, len - 2);
		}
		p += len;
		n -= len;
	}
	emg_batch_flush(&d->out);
}
