/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "ads1299.h"
#include "hackeeg_decode.h"

/* send_sample_messagepack(): messagepack_rdatac_header[] then the bin8 length. */
static const uint8_t header[8] = { 0x82, 0xa1, 0x43, 0xcc, 0xc8, 0xa1, 0x44, 0xc4 };

#define TS_SN_LEN 8 /* timestamp + sample number */

unsigned emg_hackeeg_channels_for_len(unsigned len)
{
	if (len < TS_SN_LEN + 3 + 3)
		return 0;
	unsigned p = len - TS_SN_LEN;

	if (p % 27 == 0)
		return p / 27 * 8;  /* k stacked ADS1299 (k = 1: one 8-channel chip) */
	if (p % 3 == 0 && p / 3 - 1 <= 8)
		return p / 3 - 1;   /* one ADS1299-4/-6 or ADS129x with fewer channels */
	return 0;
}

int emg_hackeeg_dec_init(struct emg_hackeeg_dec *d, unsigned channels, unsigned gain,
			 emg_hackeeg_emit_fn emit, void *ud)
{
	if (!d || !emit || channels < 1 || channels > EMG_HACKEEG_MAX_CHANNELS ||
	    emg_ads1299_gain_index(gain) < 0)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->channels = channels;
	return emg_batch_init(&d->out, EMG_HACKEEG_BATCH, channels, gain, emit, ud, &d->st.frames);
}

void emg_hackeeg_dec_reset(struct emg_hackeeg_dec *d, uint64_t next_seq)
{
	emg_framing_reset(&d->fr);
	emg_batch_reset(&d->out, next_seq);
}

void emg_hackeeg_dec_set_rate(struct emg_hackeeg_dec *d, double rate)
{
	d->period_us = rate > 0 ? 1e6 / rate : 0;
}

/* Samples skipped between two timestamps dt us apart (0 when on time). */
static uint32_t timestamp_gap(const struct emg_hackeeg_dec *d, uint32_t dt)
{
	double periods;

	if (d->period_us <= 0 || dt >= 0x80000000u) /* backwards: a restart, not a loss */
		return 0;
	periods = (double)dt / d->period_us;
	/* half a period of slack: micros() is read in the DRDY handler, a few us late at most */
	return periods >= 1.5 ? (uint32_t)(periods + 0.5) - 1 : 0;
}

uint64_t emg_hackeeg_dec_next_seq(const struct emg_hackeeg_dec *d)
{
	return emg_batch_next_seq(&d->out);
}

const struct emg_hackeeg_stats *emg_hackeeg_dec_stats(const struct emg_hackeeg_dec *d)
{
	return &d->st;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Status words must start with 1100 (ADS1299 datasheet, "Data Retrieval"). */
static bool status_ok(const uint8_t *data, unsigned len)
{
	unsigned p = len - TS_SN_LEN;

	if (p % 27 == 0) {
		for (unsigned k = 0; k < p / 27; k++)
			if ((data[TS_SN_LEN + 27 * k] & 0xF0) != 0xC0)
				return false;
		return true;
	}
	return (data[TS_SN_LEN] & 0xF0) == 0xC0;
}

static void packet(struct emg_hackeeg_dec *d, const uint8_t *data, unsigned len)
{
	unsigned nch = emg_hackeeg_channels_for_len(len);
	uint32_t sn = le32(data + 4);
	uint32_t lost = 0;
	bool stacked = (len - TS_SN_LEN) % 27 == 0;

	d->st.packets++;
	d->st.last_timestamp_us = le32(data);
	d->st.last_status = ((uint32_t)data[8] << 16) | ((uint32_t)data[9] << 8) | data[10];
	d->st.packet_channels = nch;
	if (d->fr.have_last) {
		uint32_t gap = sn - d->last - 1;

		/* A sample number that went backwards is a board restart, not a loss. */
		lost = gap < 0x80000000u ? gap : 0;
		if (gap < 0x80000000u) {
			/* micros() wraps every 71.6 min: the unsigned difference is right */
			uint32_t skipped = timestamp_gap(d, le32(data) - d->last_ts);

			if (skipped > lost) {
				d->st.stalls++;
				d->st.stall_lost += skipped - lost;
				lost = skipped;
			}
		}
	}
	d->last = sn;
	d->last_ts = le32(data);
	d->fr.have_last = true;
	if (nch < d->channels) {
		d->st.short_packets++;
		return;
	}
	int32_t counts[EMG_HACKEEG_MAX_CHANNELS];

	for (unsigned c = 0; c < d->channels; c++) {
		/* stacked: [status, 8 ch] per chip; single: status then channels */
		unsigned off = stacked ? TS_SN_LEN + 27 * (c / 8) + 3 + 3 * (c % 8)
				       : TS_SN_LEN + 3 + 3 * c;
		counts[c] = emg_s24be(data + off);
	}
	d->st.lost += lost;
	emg_batch_put(&d->out, counts, lost);
}

/* Examine the buffer; returns false when it needs more input. */
static bool step(struct emg_hackeeg_dec *d)
{
	unsigned n = d->fr.have < sizeof(header) ? d->fr.have : (unsigned)sizeof(header);

	if (d->fr.have == 0)
		return false;
	if (memcmp(d->pkt, header, n) != 0) {
		emg_framing_lose(&d->fr, &d->st.sync_losses);
		emg_framing_realign(&d->fr, d->pkt, header[0], &d->st.skipped);
		return true;
	}
	if (d->fr.have < EMG_HACKEEG_HEADER_LEN)
		return false;
	unsigned len = d->pkt[8];
	if (!emg_hackeeg_channels_for_len(len)) {
		d->st.bad_packets++;
		emg_framing_lose(&d->fr, &d->st.sync_losses);
		emg_framing_realign(&d->fr, d->pkt, header[0], &d->st.skipped);
		return true;
	}
	if (d->fr.have < EMG_HACKEEG_HEADER_LEN + len)
		return false;
	if (!status_ok(d->pkt + EMG_HACKEEG_HEADER_LEN, len)) {
		d->st.bad_packets++;
		emg_framing_lose(&d->fr, &d->st.sync_losses);
		emg_framing_realign(&d->fr, d->pkt, header[0], &d->st.skipped);
		return true;
	}
	packet(d, d->pkt + EMG_HACKEEG_HEADER_LEN, len);
	d->fr.locked = true;
	d->fr.have = 0;
	return false;
}

void emg_hackeeg_dec_feed(struct emg_hackeeg_dec *d, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (d->fr.have == 0 && p[i] != header[0]) {
			/* fast path between packets: skip to the next possible header */
			const uint8_t *q = memchr(p + i, header[0], n - i);
			size_t skip = q ? (size_t)(q - (p + i)) : n - i;

			emg_framing_lose(&d->fr, &d->st.sync_losses);
			d->st.skipped += skip;
			i += skip;
			continue;
		}
		if (d->fr.have >= EMG_HACKEEG_HEADER_LEN) {
			/* payload: copy as much as the packet still needs */
			unsigned want = EMG_HACKEEG_HEADER_LEN + d->pkt[8] - d->fr.have;
			size_t take = n - i < want ? n - i : want;

			memcpy(d->pkt + d->fr.have, p + i, take);
			d->fr.have += (unsigned)take;
			i += take;
		} else {
			d->pkt[d->fr.have++] = p[i++];
		}
		while (step(d))
			;
	}
	emg_batch_flush(&d->out);
}
