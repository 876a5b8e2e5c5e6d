/* SPDX-License-Identifier: MIT */
/* The HackEEG MessagePack decoder against packets built from known samples,
 * byte for byte as hackeeg_driver.ino's send_sample_messagepack() writes
 * them: exact values across chunk boundaries, JSON replies in between,
 * gaps in the sample number, corrupted bytes (resync), stacked boards. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ads1299.h"
#include "devices/hackeeg_decode.h"
#include "testutil.h"

#define MAXF 6000

struct sink {
	unsigned channels;
	size_t n;
	float v[MAXF][32];
	uint64_t seq[MAXF];
	uint32_t lost[MAXF];
};

static struct sink S;

static void sink_emit(void *ud, const float *frames, unsigned nframes, uint64_t first_seq,
		      uint32_t lost)
{
	struct sink *s = ud;

	ck_assert_uint_gt(nframes, 0);
	for (unsigned i = 0; i < nframes; i++) {
		ck_assert_uint_lt(s->n, MAXF);
		memcpy(s->v[s->n], frames + (size_t)i * s->channels, s->channels * sizeof(float));
		s->seq[s->n] = first_seq + i;
		s->lost[s->n] = i == 0 ? lost : 0;
		s->n++;
	}
}

static struct test_rng rng = TEST_RNG_SEEDED(0xfeedfacecafebeefull);

static uint32_t rnd(void)
{
	return (uint32_t)(test_rng_u64(&rng) >> 32);
}

static int32_t counts[MAXF][32];

static void make_counts(size_t n, unsigned nch)
{
	static const int32_t edge[] = { 0, -1, 1, 8388607, -8388608, -8388607, 0x123456, -0x123456 };

	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < nch; c++)
			counts[i][c] = i < 8 ? edge[(i + c) % 8] : (int32_t)(rnd() & 0xFFFFFF) - 0x800000;
}

static void put24(uint8_t *p, int32_t v)
{
	uint32_t u = (uint32_t)v & 0xFFFFFF;

	p[0] = (uint8_t)(u >> 16);
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)u;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

/* Extra micros() after sample 300, and jitter: a Due that stalled, a late DRDY. */
static uint32_t stall_us, jitter_us, ts_base;

static uint32_t ts_shift(uint32_t sn)
{
	return ts_base + (sn >= 300 ? stall_us : 0) + (sn % 2 ? jitter_us : 0);
}

/* One packet; chips = 0: a single chip with nch channels, else chips x 8 stacked. */
static size_t put_packet(uint8_t *out, uint32_t sn, const int32_t *ch, unsigned nch, unsigned chips)
{
	static const uint8_t hdr[] = { 0x82, 0xa1, 0x43, 0xcc, 0xc8, 0xa1, 0x44, 0xc4 };
	unsigned len = chips ? 8 + 27 * chips : 8 + 3 + 3 * nch;
	uint8_t *d = out + 9;

	memcpy(out, hdr, 8);
	out[8] = (uint8_t)len;
	put_le32(d, sn * 500 + 12345 + ts_shift(sn));  /* micros() */
	put_le32(d + 4, sn);
	if (!chips) {
		d[8] = 0xC0;
		d[9] = 0x12;  /* some lead-off bits */
		d[10] = 0x30;
		for (unsigned c = 0; c < nch; c++)
			put24(d + 11 + 3 * c, ch[c]);
	} else {
		for (unsigned k = 0; k < chips; k++) {
			uint8_t *q = d + 8 + 27 * k;
			q[0] = 0xC0;
			q[1] = (uint8_t)k;
			q[2] = 0;
			for (unsigned c = 0; c < 8; c++)
				put24(q + 3 + 3 * c, ch[8 * k + c]);
		}
	}
	return 9 + len;
}

static float expect_uv(int32_t count, unsigned gain)
{
	return (float)((double)count * emg_ads1299_uv_per_count(gain));
}

static uint8_t stream[MAXF * 120];

static void feed_chunked(struct emg_hackeeg_dec *d, const uint8_t *p, size_t n, unsigned maxchunk)
{
	while (n) {
		size_t k = 1 + rnd() % maxchunk;
		if (k > n)
			k = n;
		emg_hackeeg_dec_feed(d, p, k);
		p += k;
		n -= k;
	}
}

static struct emg_hackeeg_dec *new_dec(unsigned channels, unsigned gain)
{
	static struct emg_hackeeg_dec d;

	memset(&S, 0, sizeof(S));
	S.channels = channels;
	ck_assert_int_eq(emg_hackeeg_dec_init(&d, channels, gain, sink_emit, &S), 0);
	return &d;
}

START_TEST(test_lengths)
{
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(35), 8);  /* ADS1299, firmware v0.3.0 */
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(23), 4);  /* ADS1299-4 */
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(29), 6);  /* ADS1299-6 */
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(62), 16); /* two stacked */
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(116), 32);
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(36), 0);
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(13), 0);
	ck_assert_uint_eq(emg_hackeeg_channels_for_len(38), 0);  /* 9 channels on one chip */
	struct emg_hackeeg_dec d;
	ck_assert_int_eq(emg_hackeeg_dec_init(&d, 0, 24, sink_emit, &S), -EINVAL);
	ck_assert_int_eq(emg_hackeeg_dec_init(&d, 33, 24, sink_emit, &S), -EINVAL);
	ck_assert_int_eq(emg_hackeeg_dec_init(&d, 8, 7, sink_emit, &S), -EINVAL);
}
END_TEST

START_TEST(test_exact_any_chunking)
{
	const size_t n = 3000;
	static const unsigned chunks[] = { 1, 3, 44, 45, 512, 1408, 100000 };

	make_counts(n, 8);
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += put_packet(stream + len, (uint32_t)i, counts[i], 8, 0);
	for (unsigned k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		struct emg_hackeeg_dec *d = new_dec(8, 24);

		feed_chunked(d, stream, len, chunks[k]);
		ck_assert_uint_eq(S.n, n);
		for (size_t i = 0; i < n; i++) {
			ck_assert_uint_eq(S.seq[i], i);
			ck_assert_uint_eq(S.lost[i], 0);
			for (unsigned c = 0; c < 8; c++)
				ck_assert_msg(S.v[i][c] == expect_uv(counts[i][c], 24),
					      "chunk %u frame %zu ch %u", chunks[k], i, c);
		}
		const struct emg_hackeeg_stats *st = emg_hackeeg_dec_stats(d);
		ck_assert_uint_eq(st->packets, n);
		ck_assert_uint_eq(st->skipped, 0);
		ck_assert_uint_eq(st->sync_losses, 0);
		ck_assert_uint_eq(st->last_status, 0xC01230);
		ck_assert_uint_eq(st->packet_channels, 8);
		ck_assert_uint_eq(st->last_timestamp_us, (n - 1) * 500 + 12345);
	}
}
END_TEST

/* The replies to rdatac etc. come as JSON Lines even in MessagePack mode. */
START_TEST(test_json_between)
{
	const size_t n = 100;
	struct emg_hackeeg_dec *d = new_dec(6, 12);
	const char *json = "{\"STATUS_CODE\":200,\"STATUS_TEXT\":\"Ok\"}\r\n";
	size_t len = 0;

	make_counts(n, 8);
	memcpy(stream, json, strlen(json));
	len += strlen(json);
	for (size_t i = 0; i < n; i++) {
		len += put_packet(stream + len, (uint32_t)(i + 1000), counts[i], 8, 0);
		if (i == 50) {
			memcpy(stream + len, json, strlen(json));
			len += strlen(json);
		}
	}
	feed_chunked(d, stream, len, 17);
	ck_assert_uint_eq(S.n, n);
	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 6; c++)
			ck_assert(S.v[i][c] == expect_uv(counts[i][c], 12));
	ck_assert_uint_eq(emg_hackeeg_dec_stats(d)->skipped, 2 * strlen(json));
	ck_assert_uint_eq(emg_hackeeg_dec_stats(d)->lost, 0);
}
END_TEST

START_TEST(test_gaps_and_corruption)
{
	const size_t n = 2000;
	struct emg_hackeeg_dec *d = new_dec(8, 24);
	size_t len = 0;
	bool gone[2000] = { false };

	make_counts(n, 8);
	for (size_t i = 0; i < n; i++) {
		size_t at = len;

		if (i >= 500 && i < 510) {   /* 10 samples lost on the way */
			gone[i] = true;
			continue;
		}
		len += put_packet(stream + len, (uint32_t)i, counts[i], 8, 0);
		if (i == 700) {
			stream[at + 2] ^= 0x40;      /* header byte corrupted */
			gone[i] = true;
		} else if (i == 800) {
			stream[at + 8] = 36;         /* impossible length */
			gone[i] = true;
		} else if (i == 900) {
			stream[at + 9 + 8] = 0x40;   /* status word without the 1100 nibble */
			gone[i] = true;
		} else if (i == 1000) {
			/* the first status byte lost: the status check catches the shift
			 * (a byte lost among channel bytes would not be detectable: no checksum) */
			memmove(stream + at + 17, stream + at + 18, len - at - 18);
			len--;
			gone[i] = true;
		} else if (i == 1100) {
			stream[len++] = 0x82;        /* a stray header byte */
			stream[len++] = 0xa1;
		}
	}
	feed_chunked(d, stream, len, 300);
	const struct emg_hackeeg_stats *st = emg_hackeeg_dec_stats(d);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (gone[i])
			continue;
		uint32_t lost = i == 510 ? 10 : (i == 701 || i == 801 || i == 901 || i == 1001) ? 1 : 0;
		ck_assert_uint_eq(S.seq[j], i);
		ck_assert_uint_eq(S.lost[j], lost);
		for (unsigned c = 0; c < 8; c++)
			ck_assert(S.v[j][c] == expect_uv(counts[i][c], 24));
		j++;
	}
	ck_assert_uint_eq(S.n, j);
	ck_assert_uint_eq(S.n, n - 14);
	ck_assert_uint_eq(st->lost, 14);
	ck_assert_uint_eq(st->sync_losses, 5);
	ck_assert_uint_eq(st->bad_packets, 3);
}
END_TEST

/*
 * Issue 16 #11: the Due counts reads, not conversions.  A stall shows only in
 * micros(): sample numbers 299, 300 contiguous but 4 periods (2 ms at 2 kHz)
 * apart in time are 3 lost samples.  Jitter under half a period is not a
 * loss, micros() wrapping at 2^32 is not one either, and without a rate the
 * timestamps are not judged.
 */
START_TEST(test_timestamp_gaps)
{
	const size_t n = 600;
	size_t len = 0;
	struct emg_hackeeg_dec *d;

	make_counts(n, 8);
	for (int mode = 0; mode < 4; mode++) {
		d = new_dec(8, 24);
		if (mode != 3)
			emg_hackeeg_dec_set_rate(d, 2000);
		stall_us = mode == 0 || mode == 3 ? 1500 : 0; /* 2000 us between 299 and 300 */
		jitter_us = mode == 1 ? 240 : 0;
		ts_base = mode == 2 ? 0xFFFFFFFFu - 12345 - 500 * 200 : 0; /* wraps at sample 200 */
		len = 0;
		for (size_t i = 0; i < n; i++)
			len += put_packet(stream + len, (uint32_t)i, counts[i], 8, 0);
		feed_chunked(d, stream, len, 300);
		const struct emg_hackeeg_stats *st = emg_hackeeg_dec_stats(d);
		ck_assert_uint_eq(S.n, n);
		if (mode == 0) {
			ck_assert_uint_eq(S.seq[299], 299);
			ck_assert_uint_eq(S.seq[300], 303);
			ck_assert_uint_eq(S.lost[300], 3);
			ck_assert_uint_eq(S.seq[n - 1], n - 1 + 3);
			ck_assert_uint_eq(st->lost, 3);
			ck_assert_uint_eq(st->stalls, 1);
			ck_assert_uint_eq(st->stall_lost, 3);
		} else {
			ck_assert_msg(st->lost == 0 && st->stalls == 0, "mode %d: lost %llu", mode,
				      (unsigned long long)st->lost);
			ck_assert_uint_eq(S.seq[n - 1], n - 1);
		}
		for (unsigned c = 0; c < 8; c++)
			ck_assert(S.v[400][c] == expect_uv(counts[400][c], 24));
	}
	stall_us = jitter_us = ts_base = 0;
}
END_TEST

/* Two stacked ADS1299: [status, 8 ch] twice; deliver 12 of the 16. */
START_TEST(test_stacked)
{
	const size_t n = 200;
	struct emg_hackeeg_dec *d = new_dec(12, 24);
	size_t len = 0;

	make_counts(n, 16);
	for (size_t i = 0; i < n; i++)
		len += put_packet(stream + len, (uint32_t)i, counts[i], 16, 2);
	feed_chunked(d, stream, len, 100);
	ck_assert_uint_eq(S.n, n);
	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 12; c++)
			ck_assert(S.v[i][c] == expect_uv(counts[i][c], 24));
	ck_assert_uint_eq(emg_hackeeg_dec_stats(d)->packet_channels, 16);
}
END_TEST

/* A board with fewer channels than asked for: counted, nothing delivered. */
START_TEST(test_short_packets)
{
	struct emg_hackeeg_dec *d = new_dec(8, 24);
	size_t len = 0;

	make_counts(10, 4);
	for (size_t i = 0; i < 10; i++)
		len += put_packet(stream + len, (uint32_t)i, counts[i], 4, 0);
	emg_hackeeg_dec_feed(d, stream, len);
	ck_assert_uint_eq(S.n, 0);
	ck_assert_uint_eq(emg_hackeeg_dec_stats(d)->short_packets, 10);
}
END_TEST

/* The sample number restarts at 0 after "start": not a loss. Reset keeps the index going. */
START_TEST(test_restart_and_reset)
{
	struct emg_hackeeg_dec *d = new_dec(8, 24);
	size_t len = 0;

	make_counts(40, 8);
	for (size_t i = 0; i < 20; i++)
		len += put_packet(stream + len, (uint32_t)(i + 100), counts[i], 8, 0);
	for (size_t i = 20; i < 40; i++)
		len += put_packet(stream + len, (uint32_t)(i - 20), counts[i], 8, 0);
	emg_hackeeg_dec_feed(d, stream, len);
	ck_assert_uint_eq(S.n, 40);
	ck_assert_uint_eq(S.lost[20], 0);
	ck_assert_uint_eq(S.seq[39], 39);
	emg_hackeeg_dec_feed(d, stream, 30); /* half a packet */
	emg_hackeeg_dec_reset(d, 1000);
	emg_hackeeg_dec_feed(d, stream, len);
	ck_assert_uint_eq(S.n, 80);
	ck_assert_uint_eq(S.seq[40], 1000);
	ck_assert(S.v[40][3] == expect_uv(counts[0][3], 24));
}
END_TEST

START_TEST(test_noise)
{
	struct emg_hackeeg_dec *d = new_dec(32, 24);

	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)rnd();
	feed_chunked(d, stream, sizeof(stream), 1000);
	ck_assert_uint_eq(S.n, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hackeeg_decode");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_lengths);
	tcase_add_test(tc, test_exact_any_chunking);
	tcase_add_test(tc, test_json_between);
	tcase_add_test(tc, test_gaps_and_corruption);
	tcase_add_test(tc, test_timestamp_gaps);
	tcase_add_test(tc, test_stacked);
	tcase_add_test(tc, test_short_packets);
	tcase_add_test(tc, test_restart_and_reset);
	tcase_add_test(tc, test_noise);
	suite_add_tcase(s, tc);
	return test_run(s);
}
