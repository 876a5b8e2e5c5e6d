/* SPDX-License-Identifier: MIT */
/* The Cyton decoder against packets built from known samples: exact values
 * across arbitrary chunk boundaries, FTDI status bytes, lost packets,
 * corrupted and missing bytes (resync), Daisy interleave. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ads1299.h"
#include "devices/cyton_decode.h"
#include "testutil.h"

#define MAXF 4096

/* ---- a sink that records every frame with its sample index and lost count ---- */

struct sink {
	unsigned channels;
	size_t n;
	float v[MAXF][16];
	uint64_t seq[MAXF];
	uint32_t lost[MAXF];
	unsigned emits;
};

static void sink_emit(void *ud, const float *frames, unsigned nframes, uint64_t first_seq,
		      uint32_t lost)
{
	struct sink *s = ud;

	ck_assert_uint_gt(nframes, 0);
	s->emits++;
	for (unsigned i = 0; i < nframes; i++) {
		ck_assert_uint_lt(s->n, MAXF);
		memcpy(s->v[s->n], frames + (size_t)i * s->channels, s->channels * sizeof(float));
		s->seq[s->n] = first_seq + i;
		s->lost[s->n] = i == 0 ? lost : 0;
		s->n++;
	}
}

/* ---- known samples ---- */

static struct test_rng rng = TEST_RNG_SEEDED(0x123456789abcdefull);

static uint32_t rnd(void)
{
	return (uint32_t)(test_rng_u64(&rng) >> 32);
}

/* counts[i][c]: 24-bit signed, including the extremes */
static int32_t counts[MAXF][8];

static void make_counts(size_t n)
{
	static const int32_t edge[] = { 0, -1, 1, 8388607, -8388608, -8388607, 0x123456, -0x123456 };

	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 8; c++) {
			if (i < 8)
				counts[i][c] = edge[(i + c) % 8];
			else
				counts[i][c] = (int32_t)(rnd() & 0xFFFFFF) - 0x800000;
		}
}

static size_t put_packet(uint8_t *out, uint8_t counter, const int32_t *ch, uint8_t footer)
{
	out[0] = 0xA0;
	out[1] = counter;
	for (unsigned c = 0; c < 8; c++) {
		uint32_t u = (uint32_t)ch[c] & 0xFFFFFF;
		out[2 + 3 * c] = (uint8_t)(u >> 16);
		out[3 + 3 * c] = (uint8_t)(u >> 8);
		out[4 + 3 * c] = (uint8_t)u;
	}
	for (unsigned k = 0; k < 6; k++)
		out[26 + k] = (uint8_t)rnd();
	out[32] = footer;
	return 33;
}

/* A stream of n packets with counters start, start+1, ... built from counts[]. */
static size_t make_stream(uint8_t *out, size_t n, uint8_t start)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += put_packet(out + len, (uint8_t)(start + i), counts[i], (uint8_t)(0xC0 + i % 7));
	return len;
}

static float expect_uv(int32_t count, unsigned gain)
{
	return (float)((double)count * emg_ads1299_uv_per_count(gain));
}

static void feed_chunked(struct emg_cyton_dec *d, const uint8_t *p, size_t n, unsigned maxchunk)
{
	while (n) {
		size_t k = 1 + rnd() % maxchunk;
		if (k > n)
			k = n;
		emg_cyton_dec_feed(d, p, k);
		p += k;
		n -= k;
	}
}

static struct sink S;
static uint8_t stream[MAXF * 34 + 4096];
static uint8_t ftdi[MAXF * 64];

static struct emg_cyton_dec *new_dec(bool daisy, unsigned channels, unsigned gain)
{
	static struct emg_cyton_dec d;

	memset(&S, 0, sizeof(S));
	S.channels = channels;
	ck_assert_int_eq(emg_cyton_dec_init(&d, daisy, channels, gain, sink_emit, &S), 0);
	return &d;
}

START_TEST(test_scale_and_sign)
{
	const uint8_t p[3][3] = { { 0x7F, 0xFF, 0xFF }, { 0x80, 0x00, 0x00 }, { 0xFF, 0xFF, 0xFF } };

	ck_assert_int_eq(emg_s24be(p[0]), 8388607);
	ck_assert_int_eq(emg_s24be(p[1]), -8388608);
	ck_assert_int_eq(emg_s24be(p[2]), -1);
	/* OpenBCI: 4.5 V / 24 / (2^23 - 1) = 0.022351744 uV per count at gain 24 */
	ck_assert_double_eq_tol(emg_ads1299_uv_per_count(24), 0.0223517444, 1e-9);
	ck_assert_double_eq_tol(emg_ads1299_uv_per_count(1), 0.536441866, 1e-8);
	ck_assert_int_eq(emg_ads1299_gain_index(24), 6);
	ck_assert_int_eq(emg_ads1299_gain_index(3), -1);
}
END_TEST

START_TEST(test_invalid)
{
	struct emg_cyton_dec d;

	ck_assert_int_eq(emg_cyton_dec_init(&d, false, 9, 24, sink_emit, &S), -EINVAL);
	ck_assert_int_eq(emg_cyton_dec_init(&d, true, 17, 24, sink_emit, &S), -EINVAL);
	ck_assert_int_eq(emg_cyton_dec_init(&d, false, 0, 24, sink_emit, &S), -EINVAL);
	ck_assert_int_eq(emg_cyton_dec_init(&d, false, 8, 5, sink_emit, &S), -EINVAL);
	ck_assert_int_eq(emg_cyton_dec_init(&d, false, 8, 24, NULL, &S), -EINVAL);
}
END_TEST

/* Every chunking of the same stream gives the same, exact frames. */
START_TEST(test_exact_any_chunking)
{
	const size_t n = 1000;
	static const unsigned chunks[] = { 1, 2, 7, 33, 34, 62, 500, 40000 };

	make_counts(n);
	size_t len = make_stream(stream, n, 200); /* counter wraps 255 -> 0 */
	for (unsigned k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		struct emg_cyton_dec *d = new_dec(false, 8, 24);

		feed_chunked(d, stream, len, chunks[k]);
		/* the first packet waits for the next header before it is trusted;
		 * once aligned, every packet is out as soon as its last byte is in */
		ck_assert_uint_eq(S.n, n);
		for (size_t i = 0; i < n; i++) {
			ck_assert_uint_eq(S.seq[i], i);
			ck_assert_uint_eq(S.lost[i], 0);
			for (unsigned c = 0; c < 8; c++)
				ck_assert_msg(S.v[i][c] == expect_uv(counts[i][c], 24),
					      "chunk %u frame %zu ch %u: %g != %g", chunks[k], i, c,
					      S.v[i][c], expect_uv(counts[i][c], 24));
		}
		const struct emg_cyton_stats *st = emg_cyton_dec_stats(d);
		ck_assert_uint_eq(st->packets, n);
		ck_assert_uint_eq(st->lost, 0);
		ck_assert_uint_eq(st->sync_losses, 0);
		ck_assert_uint_eq(st->skipped, 0);
	}
}
END_TEST

/* Fewer channels than the board has, another gain. */
START_TEST(test_channels_gain)
{
	const size_t n = 50;
	struct emg_cyton_dec *d = new_dec(false, 3, 8);

	make_counts(n);
	size_t len = make_stream(stream, n, 0);
	stream[len++] = 0xA0;
	emg_cyton_dec_feed(d, stream, len);
	ck_assert_uint_eq(S.n, n);
	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 3; c++)
			ck_assert(S.v[i][c] == expect_uv(counts[i][c], 8));
}
END_TEST

/* Packets missing from the radio link: counted from the counter, the sample
 * index jumps over them, the frame after a gap reports it. */
START_TEST(test_lost_packets)
{
	const size_t n = 600;
	struct emg_cyton_dec *d = new_dec(false, 8, 24);
	size_t len = 0;

	make_counts(n);
	for (size_t i = 0; i < n; i++) {
		/* drop 100, 101, 102 and 300, and 256 in a row from 330 (one full
		 * counter period: invisible, it aliases to no loss) */
		if ((i >= 100 && i <= 102) || i == 300)
			continue;
		if (i >= 330 && i < 330 + 256)
			continue;
		len += put_packet(stream + len, (uint8_t)i, counts[i], 0xC0);
	}
	stream[len++] = 0xA0;
	feed_chunked(d, stream, len, 64);
	ck_assert_uint_eq(S.n, n - 4 - 256);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if ((i >= 100 && i <= 102) || i == 300 || (i >= 330 && i < 330 + 256))
			continue;
		uint32_t lost = i == 103 ? 3 : i == 301 ? 1 : 0;
		uint64_t seq = i <= 102 ? i : i <= 300 ? i : i < 330 ? i : i - 256;

		ck_assert_uint_eq(S.lost[j], lost);
		ck_assert_uint_eq(S.seq[j], seq);
		for (unsigned c = 0; c < 8; c++)
			ck_assert(S.v[j][c] == expect_uv(counts[i][c], 24));
		j++;
	}
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->lost, 4);
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->sync_losses, 0);
}
END_TEST

/* One corrupted footer, one corrupted header, one missing byte, garbage
 * between packets: each costs the damaged packet (counted as lost), the
 * decoder resyncs, and every other sample comes out exact. */
START_TEST(test_resync)
{
	const size_t n = 400;
	struct emg_cyton_dec *d = new_dec(false, 8, 24);
	size_t len = 0;
	bool damaged[400] = { false };

	make_counts(n);
	for (size_t i = 0; i < n; i++) {
		size_t at = len;

		len += put_packet(stream + len, (uint8_t)i, counts[i], 0xC0);
		if (i == 50) {
			stream[at + 32] = 0xA0;            /* footer corrupted */
			damaged[i] = true;
		} else if (i == 120) {
			stream[at] = 0x5A;                 /* header corrupted */
			damaged[i] = true;
		} else if (i == 200) {
			memmove(stream + at + 10, stream + at + 11, 22); /* a byte lost */
			len--;
			damaged[i] = true;
		} else if (i == 300) {
			static const uint8_t junk[] = "Failure: Communications timeout$$$\xA0\xC0";
			memcpy(stream + len, junk, sizeof(junk) - 1); /* garbage after it */
			len += sizeof(junk) - 1;
		}
	}
	stream[len++] = 0xA0;
	feed_chunked(d, stream, len, 40);
	const struct emg_cyton_stats *st = emg_cyton_dec_stats(d);
	ck_assert_uint_eq(S.n, n - 3);
	ck_assert_uint_eq(st->lost, 3);
	ck_assert_uint_eq(st->sync_losses, 4);
	ck_assert_uint_gt(st->skipped, 0);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (damaged[i])
			continue;
		ck_assert_uint_eq(S.seq[j], i);
		ck_assert_uint_eq(S.lost[j], (i == 51 || i == 121 || i == 201) ? 1 : 0);
		for (unsigned c = 0; c < 8; c++)
			ck_assert(S.v[j][c] == expect_uv(counts[i][c], 24));
		j++;
	}
}
END_TEST

/* Text before the stream (the reply to 'v') and a 0xA0 inside it. */
START_TEST(test_leading_text)
{
	const size_t n = 20;
	struct emg_cyton_dec *d = new_dec(false, 8, 24);
	const char *txt = "OpenBCI V3 8-16 channel\n\xA0 On Board ADS1299 Device ID: 0x3E\n$$$";
	size_t len = strlen(txt);

	memcpy(stream, txt, len);
	make_counts(n);
	len += make_stream(stream + len, n, 7);
	stream[len++] = 0xA0;
	feed_chunked(d, stream, len, 5);
	ck_assert_uint_eq(S.n, n);
	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 8; c++)
			ck_assert(S.v[i][c] == expect_uv(counts[i][c], 24));
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->skipped, strlen(txt));
}
END_TEST

/* FTDI framing: 2 status bytes per 64-byte USB packet, status-only packets
 * when the latency timer fires with nothing to send, an overrun flag. */
START_TEST(test_ftdi_framing)
{
	const size_t n = 300;
	struct emg_cyton_dec *d = new_dec(false, 8, 24);

	make_counts(n);
	size_t len = make_stream(stream, n, 0);
	stream[len++] = 0xA0;
	/* transfers of 1..4 USB packets, each 2 + up to 62 payload bytes */
	size_t pos = 0, packets = 0;
	while (pos < len) {
		size_t tlen = 0;
		unsigned npk = 1 + rnd() % 4;
		for (unsigned k = 0; k < npk && pos < len; k++) {
			size_t pay = rnd() % 5 == 0 ? 0 : 1 + rnd() % 62;
			if (pay > len - pos)
				pay = len - pos;
			ftdi[tlen] = 0x01;
			ftdi[tlen + 1] = packets == 17 ? 0x62 : 0x60; /* one overrun */
			memcpy(ftdi + tlen + 2, stream + pos, pay);
			pos += pay;
			packets++;
			tlen += 2 + pay;
			if (pay < 62)
				break; /* a short packet ends the transfer */
		}
		emg_cyton_dec_feed_ftdi(d, ftdi, tlen, 64);
	}
	ck_assert_uint_eq(S.n, n);
	for (size_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 8; c++)
			ck_assert(S.v[i][c] == expect_uv(counts[i][c], 24));
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->ftdi_packets, packets);
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->ftdi_overruns, 1);
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->skipped, 0);
}
END_TEST

/* Daisy: odd counters carry channels 1-8, the next even one 9-16. */
START_TEST(test_daisy)
{
	const size_t frames = 300;
	struct emg_cyton_dec *d = new_dec(true, 16, 24);
	size_t len = 0;

	make_counts(2 * frames);
	/* start on an even packet: an orphan daisy half from before */
	len += put_packet(stream + len, 0, counts[0], 0xC0);
	for (size_t f = 0; f < frames; f++) {
		uint8_t odd = (uint8_t)(2 * f + 1);
		if (f == 100)
			continue;                                 /* a whole frame lost */
		if (f != 150)                                     /* board half lost */
			len += put_packet(stream + len, odd, counts[2 * f], 0xC0);
		if (f != 200)                                     /* daisy half lost */
			len += put_packet(stream + len, (uint8_t)(odd + 1), counts[2 * f + 1], 0xC1);
	}
	stream[len++] = 0xA0;
	feed_chunked(d, stream, len, 70);
	ck_assert_uint_eq(S.n, frames - 3);
	size_t j = 0;
	for (size_t f = 0; f < frames; f++) {
		if (f == 100 || f == 150 || f == 200)
			continue;
		ck_assert_uint_eq(S.seq[j], f);
		ck_assert_uint_eq(S.lost[j], (f == 101 || f == 151 || f == 201) ? 1 : 0);
		for (unsigned c = 0; c < 8; c++) {
			ck_assert(S.v[j][c] == expect_uv(counts[2 * f][c], 24));
			ck_assert(S.v[j][8 + c] == expect_uv(counts[2 * f + 1][c], 24));
		}
		j++;
	}
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->lost, 3);
	ck_assert_uint_eq(emg_cyton_dec_stats(d)->orphans, 3); /* first even, 150's and 200's */
}
END_TEST

/* Reset after a reconnect: no loss reported across it, the index goes on. */
START_TEST(test_reset)
{
	const size_t n = 40;
	struct emg_cyton_dec *d = new_dec(false, 8, 24);

	make_counts(n);
	size_t len = make_stream(stream, n, 0);
	stream[len++] = 0xA0;
	emg_cyton_dec_feed(d, stream, len - 10); /* a partial packet pending */
	size_t got = S.n;
	emg_cyton_dec_reset(d, emg_cyton_dec_next_seq(d) + 5);
	len = make_stream(stream, n, 77);
	stream[len++] = 0xA0;
	emg_cyton_dec_feed(d, stream, len);
	ck_assert_uint_eq(S.n, got + n);
	ck_assert_uint_eq(S.seq[got], got + 5);
	ck_assert_uint_eq(S.lost[got], 0);
	for (unsigned c = 0; c < 8; c++)
		ck_assert(S.v[got][c] == expect_uv(counts[0][c], 24));
}
END_TEST

/* Random bytes never crash it and never produce frames out of thin air. */
START_TEST(test_noise)
{
	struct emg_cyton_dec *d = new_dec(true, 16, 24);

	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)rnd();
	feed_chunked(d, stream, sizeof(stream), 300);
	emg_cyton_dec_feed_ftdi(d, stream, sizeof(stream), 64);
	emg_cyton_dec_feed_ftdi(d, stream, 1, 64);
	ck_assert_uint_lt(S.n, 10);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cyton_decode");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_scale_and_sign);
	tcase_add_test(tc, test_invalid);
	tcase_add_test(tc, test_exact_any_chunking);
	tcase_add_test(tc, test_channels_gain);
	tcase_add_test(tc, test_lost_packets);
	tcase_add_test(tc, test_resync);
	tcase_add_test(tc, test_leading_text);
	tcase_add_test(tc, test_ftdi_framing);
	tcase_add_test(tc, test_daisy);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_noise);
	suite_add_tcase(s, tc);
	return test_run(s);
}
