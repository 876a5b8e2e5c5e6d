/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_ws: the RFC 6455 handshake key, masking, fragmentation,
 * the size limit, close, ping/pong and every rule a client frame can break. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"
#include "testutil.h"

#define MAXMSG 256

/* What the reader delivered. */
struct got {
	int n;
	enum emg_ws_opcode op[16];
	size_t len[16];
	unsigned char data[16][MAXMSG];
};

static int on_msg(void *ud, enum emg_ws_opcode op, const unsigned char *p, size_t len)
{
	struct got *g = ud;

	ck_assert_int_lt(g->n, 16);
	g->op[g->n] = op;
	g->len[g->n] = len;
	memcpy(g->data[g->n], p, len);
	g->n++;
	return 0;
}

/* A client frame: fin, opcode, masked with mask (NULL: unmasked), payload; returns its size. */
static size_t cframe(unsigned char *out, int fin, unsigned b0extra, int op, const unsigned char *mask,
		     const void *payload, size_t len)
{
	const unsigned char *p = payload;
	size_t o = 0;

	out[o++] = (unsigned char)((fin ? 0x80 : 0) | b0extra | (unsigned)op);
	if (len < 126) {
		out[o++] = (unsigned char)((mask ? 0x80 : 0) | len);
	} else if (len <= 0xFFFF) {
		out[o++] = (unsigned char)((mask ? 0x80 : 0) | 126);
		out[o++] = (unsigned char)(len >> 8);
		out[o++] = (unsigned char)len;
	} else {
		out[o++] = (unsigned char)((mask ? 0x80 : 0) | 127);
		for (int i = 0; i < 8; i++)
			out[o++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	if (mask) {
		memcpy(out + o, mask, 4);
		o += 4;
	}
	for (size_t i = 0; i < len; i++)
		out[o + i] = mask ? p[i] ^ mask[i & 3] : p[i];
	return o + len;
}

static const unsigned char M[4] = { 0x37, 0xfa, 0x21, 0x3d };

static struct emg_ws_reader *reader(void)
{
	struct emg_ws_reader *r;

	ck_assert_int_eq(emg_ws_reader_new(&r, MAXMSG), 0);
	return r;
}

/* Feed buf and expect a violation closed with code. */
static void expect_fail(const unsigned char *buf, size_t n, unsigned code)
{
	struct emg_ws_reader *r = reader();
	struct got g = { 0 };

	ck_assert_int_eq(emg_ws_feed(r, buf, n, on_msg, &g), -EPROTO);
	ck_assert_uint_eq(emg_ws_close_code(r), code);
	/* and it stays failed */
	ck_assert_int_eq(emg_ws_feed(r, buf, n, on_msg, &g), -EPROTO);
	emg_ws_reader_free(r);
}

START_TEST(test_accept_key)
{
	char out[29];

	/* RFC 6455 section 1.3 */
	ck_assert_int_eq(emg_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	ck_assert_int_eq(emg_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out), 0);
	ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
	ck_assert_int_eq(emg_ws_accept_key("", out), -EINVAL);
	ck_assert_int_eq(emg_ws_accept_key(NULL, out), -EINVAL);
	ck_assert_int_eq(emg_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out), -EINVAL);
	ck_assert_int_eq(emg_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=x", out), -EINVAL);
	ck_assert_int_eq(emg_ws_accept_key("dGhlIHNhbXBsZSBub25j*Q==", out), -EINVAL);
	/* the last character before "==" must carry only 2 bits (16 bytes exactly) */
	ck_assert_int_eq(emg_ws_accept_key("dGhlIHNhbXBsZSBub25jZR==", out), -EINVAL);
}
END_TEST

START_TEST(test_masked_text)
{
	struct emg_ws_reader *r = reader();
	struct got g = { 0 };
	unsigned char f[64];
	size_t n = cframe(f, 1, 0, EMG_WS_TEXT, M, "Hello", 5);

	/* byte by byte: the reader keeps state across any split */
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(emg_ws_feed(r, f + i, 1, on_msg, &g), 0);
	ck_assert_int_eq(g.n, 1);
	ck_assert_int_eq(g.op[0], EMG_WS_TEXT);
	ck_assert_uint_eq(g.len[0], 5);
	ck_assert_mem_eq(g.data[0], "Hello", 5);
	/* two frames in one read, and an empty one */
	n = cframe(f, 1, 0, EMG_WS_BINARY, M, "\x00\x01\x02", 3);
	n += cframe(f + n, 1, 0, EMG_WS_TEXT, M, "", 0);
	ck_assert_int_eq(emg_ws_feed(r, f, n, on_msg, &g), 0);
	ck_assert_int_eq(g.n, 3);
	ck_assert_int_eq(g.op[1], EMG_WS_BINARY);
	ck_assert_mem_eq(g.data[1], "\x00\x01\x02", 3);
	ck_assert_uint_eq(g.len[2], 0);
	emg_ws_reader_free(r);
}
END_TEST

START_TEST(test_fragmentation)
{
	struct emg_ws_reader *r = reader();
	struct got g = { 0 };
	unsigned char f[128];
	size_t n = cframe(f, 0, 0, EMG_WS_TEXT, M, "Hel", 3);

	/* a ping between fragments is delivered at once, the message when complete */
	n += cframe(f + n, 1, 0, EMG_WS_PING, M, "p", 1);
	n += cframe(f + n, 0, 0, EMG_WS_CONT, M, "lo ", 3);
	n += cframe(f + n, 1, 0, EMG_WS_CONT, M, "world", 5);
	ck_assert_int_eq(emg_ws_feed(r, f, n, on_msg, &g), 0);
	ck_assert_int_eq(g.n, 2);
	ck_assert_int_eq(g.op[0], EMG_WS_PING);
	ck_assert_int_eq(g.op[1], EMG_WS_TEXT);
	ck_assert_uint_eq(g.len[1], 11);
	ck_assert_mem_eq(g.data[1], "Hello world", 11);
	emg_ws_reader_free(r);

	/* a multi-byte character split across fragments is fine */
	r = reader();
	g.n = 0;
	n = cframe(f, 0, 0, EMG_WS_TEXT, M, "\xc2", 1);
	n += cframe(f + n, 1, 0, EMG_WS_CONT, M, "\xb5V", 2);
	ck_assert_int_eq(emg_ws_feed(r, f, n, on_msg, &g), 0);
	ck_assert_int_eq(g.n, 1);
	emg_ws_reader_free(r);

	/* continuation of nothing */
	n = cframe(f, 1, 0, EMG_WS_CONT, M, "x", 1);
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	/* a new data message inside a fragmented one */
	n = cframe(f, 0, 0, EMG_WS_TEXT, M, "a", 1);
	n += cframe(f + n, 1, 0, EMG_WS_BINARY, M, "b", 1);
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	/* a fragmented control frame */
	n = cframe(f, 0, 0, EMG_WS_PING, M, "a", 1);
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
}
END_TEST

START_TEST(test_oversize)
{
	static unsigned char big[70000], f[70100];
	size_t n;

	memset(big, 'a', sizeof(big));
	/* exactly the limit is fine */
	{
		struct emg_ws_reader *r = reader();
		struct got g = { 0 };
		n = cframe(f, 1, 0, EMG_WS_TEXT, M, big, MAXMSG);
		ck_assert_int_eq(emg_ws_feed(r, f, n, on_msg, &g), 0);
		ck_assert_int_eq(g.n, 1);
		emg_ws_reader_free(r);
	}
	/* one over, in one frame (refused on the header, before any payload) */
	n = cframe(f, 1, 0, EMG_WS_TEXT, M, big, MAXMSG + 1);
	expect_fail(f, 8, EMG_WS_CLOSE_TOO_BIG);
	/* or over several fragments */
	n = cframe(f, 0, 0, EMG_WS_BINARY, M, big, MAXMSG - 10);
	n += cframe(f + n, 1, 0, EMG_WS_CONT, M, big, 11);
	expect_fail(f, n, EMG_WS_CLOSE_TOO_BIG);
	/* a 64-bit length */
	n = cframe(f, 1, 0, EMG_WS_BINARY, M, big, sizeof(big));
	expect_fail(f, 14, EMG_WS_CLOSE_TOO_BIG);
	/* the length's top bit */
	memcpy(f, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00MASK", 14);
	expect_fail(f, 14, EMG_WS_CLOSE_PROTOCOL);
	/* lengths not minimally encoded */
	memcpy(f, "\x82\xfe\x00\x05MASK", 8);
	expect_fail(f, 8, EMG_WS_CLOSE_PROTOCOL);
	memcpy(f, "\x82\xff\x00\x00\x00\x00\x00\x00\x01\x00MASK", 14);
	expect_fail(f, 14, EMG_WS_CLOSE_PROTOCOL);
	/* a control frame over 125 bytes */
	n = cframe(f, 1, 0, EMG_WS_PING, M, big, 126);
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
}
END_TEST

START_TEST(test_close)
{
	struct emg_ws_reader *r = reader();
	struct got g = { 0 };
	unsigned char f[64], out[4];
	size_t n = cframe(f, 1, 0, EMG_WS_CLOSE, M, "\x03\xe8" "bye", 5);

	/* bytes after a close are not read */
	n += cframe(f + n, 1, 0, EMG_WS_TEXT, M, "late", 4);
	ck_assert_int_eq(emg_ws_feed(r, f, n, on_msg, &g), 0);
	ck_assert_int_eq(g.n, 1);
	ck_assert_int_eq(g.op[0], EMG_WS_CLOSE);
	ck_assert_uint_eq(g.len[0], 5);
	ck_assert(emg_ws_closed(r));
	emg_ws_reader_free(r);
	/* an empty close is fine */
	r = reader();
	g.n = 0;
	n = cframe(f, 1, 0, EMG_WS_CLOSE, M, "", 0);
	ck_assert_int_eq(emg_ws_feed(r, f, n, on_msg, &g), 0);
	ck_assert_int_eq(g.n, 1);
	emg_ws_reader_free(r);
	/* a one-byte close payload, codes a peer may not send, a reason that is not UTF-8 */
	n = cframe(f, 1, 0, EMG_WS_CLOSE, M, "\x03", 1);
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	n = cframe(f, 1, 0, EMG_WS_CLOSE, M, "\x03\xed", 2); /* 1005 */
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	n = cframe(f, 1, 0, EMG_WS_CLOSE, M, "\x00\x10", 2);
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	n = cframe(f, 1, 0, EMG_WS_CLOSE, M, "\x13\x88", 2); /* 5000 */
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	n = cframe(f, 1, 0, EMG_WS_CLOSE, M, "\x03\xe8\xff", 3);
	expect_fail(f, n, EMG_WS_CLOSE_BAD_DATA);
	/* what emgd sends */
	ck_assert_uint_eq(emg_ws_close_frame(out, 1009), 4);
	ck_assert_mem_eq(out, "\x88\x02\x03\xf1", 4);
	ck_assert_uint_eq(emg_ws_close_frame(out, 0), 2);
	ck_assert_mem_eq(out, "\x88\x00", 2);
}
END_TEST

START_TEST(test_ping_pong)
{
	struct emg_ws_reader *r = reader();
	struct got g = { 0 };
	unsigned char f[64];
	size_t n = cframe(f, 1, 0, EMG_WS_PING, M, "abc", 3);

	n += cframe(f + n, 1, 0, EMG_WS_PONG, M, "", 0);
	ck_assert_int_eq(emg_ws_feed(r, f, n, on_msg, &g), 0);
	ck_assert_int_eq(g.n, 2);
	ck_assert_int_eq(g.op[0], EMG_WS_PING);
	ck_assert_mem_eq(g.data[0], "abc", 3);
	ck_assert_int_eq(g.op[1], EMG_WS_PONG);
	emg_ws_reader_free(r);
}
END_TEST

START_TEST(test_bad_frames)
{
	unsigned char f[64];
	size_t n;

	/* unmasked client frame */
	n = cframe(f, 1, 0, EMG_WS_TEXT, NULL, "x", 1);
	expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	/* reserved opcodes */
	for (int op = 3; op <= 0xF; op++) {
		if (op == EMG_WS_CLOSE || op == EMG_WS_PING || op == EMG_WS_PONG)
			continue;
		n = cframe(f, 1, 0, op, M, "x", 1);
		expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	}
	/* RSV1..3 without a negotiated extension */
	for (unsigned rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
		n = cframe(f, 1, rsv, EMG_WS_TEXT, M, "x", 1);
		expect_fail(f, n, EMG_WS_CLOSE_PROTOCOL);
	}
	/* text that is not UTF-8: a lone continuation byte, an overlong, a surrogate */
	n = cframe(f, 1, 0, EMG_WS_TEXT, M, "a\x80", 2);
	expect_fail(f, n, EMG_WS_CLOSE_BAD_DATA);
	n = cframe(f, 1, 0, EMG_WS_TEXT, M, "\xc0\xaf", 2);
	expect_fail(f, n, EMG_WS_CLOSE_BAD_DATA);
	n = cframe(f, 1, 0, EMG_WS_TEXT, M, "\xed\xa0\x80", 3);
	expect_fail(f, n, EMG_WS_CLOSE_BAD_DATA);
	/* binary need not be UTF-8 */
	{
		struct emg_ws_reader *r = reader();
		n = cframe(f, 1, 0, EMG_WS_BINARY, M, "\xff\xfe", 2);
		ck_assert_int_eq(emg_ws_feed(r, f, n, NULL, NULL), 0);
		emg_ws_reader_free(r);
	}
}
END_TEST

START_TEST(test_utf8)
{
	ck_assert(emg_ws_utf8_valid((const unsigned char *)"", 0));
	ck_assert(emg_ws_utf8_valid((const unsigned char *)"\xce\xbc\xe2\x82\xac\xf0\x9f\x92\xaa", 9));
	ck_assert(!emg_ws_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	ck_assert(!emg_ws_utf8_valid((const unsigned char *)"\xe2\x82", 2));         /* truncated */
	ck_assert(!emg_ws_utf8_valid((const unsigned char *)"\xe0\x80\xaf", 3));     /* overlong */
	ck_assert(!emg_ws_utf8_valid((const unsigned char *)"\xff", 1));
}
END_TEST

START_TEST(test_server_header)
{
	unsigned char h[EMG_WS_MAX_HEADER];

	ck_assert_uint_eq(emg_ws_header(h, EMG_WS_BINARY, 5), 2);
	ck_assert_mem_eq(h, "\x82\x05", 2);
	ck_assert_uint_eq(emg_ws_header(h, EMG_WS_TEXT, 125), 2);
	ck_assert_uint_eq(emg_ws_header(h, EMG_WS_BINARY, 126), 4);
	ck_assert_mem_eq(h, "\x82\x7e\x00\x7e", 4);
	ck_assert_uint_eq(emg_ws_header(h, EMG_WS_BINARY, 65535), 4);
	ck_assert_uint_eq(emg_ws_header(h, EMG_WS_BINARY, 65536), 10);
	ck_assert_mem_eq(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}
END_TEST

/* A callback's error stops feeding and is returned as is. */
static int stop_cb(void *ud, enum emg_ws_opcode op, const unsigned char *p, size_t len)
{
	(void)op;
	(void)p;
	(void)len;
	++*(int *)ud;
	return -ENOSPC;
}

START_TEST(test_callback_stops)
{
	struct emg_ws_reader *r = reader();
	unsigned char f[64];
	int calls = 0;
	size_t n = cframe(f, 1, 0, EMG_WS_TEXT, M, "a", 1);

	n += cframe(f + n, 1, 0, EMG_WS_TEXT, M, "b", 1);
	ck_assert_int_eq(emg_ws_feed(r, f, n, stop_cb, &calls), -ENOSPC);
	ck_assert_int_eq(calls, 1);
	emg_ws_reader_free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ws");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_accept_key);
	tcase_add_test(tc, test_masked_text);
	tcase_add_test(tc, test_fragmentation);
	tcase_add_test(tc, test_oversize);
	tcase_add_test(tc, test_close);
	tcase_add_test(tc, test_ping_pong);
	tcase_add_test(tc, test_bad_frames);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_server_header);
	tcase_add_test(tc, test_callback_stops);
	suite_add_tcase(s, tc);
	return test_run(s);
}
