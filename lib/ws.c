/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

/* ---- SHA-1 (FIPS 180-4), only for the handshake's accept key ---- */

static uint32_t rol(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		uint32_t f, k, t;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDC;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6;
		}
		t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

/* SHA-1 of a message shorter than 120 bytes (two blocks at most): all the handshake needs. */
static void sha1_short(const unsigned char *msg, size_t n, unsigned char out[20])
{
	uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
	unsigned char buf[128] = { 0 };
	size_t total = n + 9 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)n * 8;

	memcpy(buf, msg, n);
	buf[n] = 0x80;
	for (int i = 0; i < 8; i++)
		buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
	for (size_t off = 0; off < total; off += 64)
		sha1_block(h, buf + off);
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int emg_ws_accept_key(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char msg[24 + sizeof(guid)], dig[20];
	size_t o = 0;

	/* 16 bytes in base64: 22 alphabet characters, "==", and the 22nd carries 2 bits only */
	if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
		return -EINVAL;
	for (int i = 0; i < 22; i++)
		if (!key[i] || !strchr(b64, key[i]))
			return -EINVAL;
	if ((strchr(b64, key[21]) - b64) & 0xF)
		return -EINVAL;
	memcpy(msg, key, 24);
	memcpy(msg + 24, guid, sizeof(guid) - 1);
	sha1_short(msg, 24 + sizeof(guid) - 1, dig);
	for (size_t i = 0; i < 20; i += 3) {
		uint32_t v = (uint32_t)dig[i] << 16 | (i + 1 < 20 ? (uint32_t)dig[i + 1] << 8 : 0) |
			     (i + 2 < 20 ? dig[i + 2] : 0);
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < 20 ? b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < 20 ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

/* ---- UTF-8 ---- */

int emg_ws_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t need;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
			min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
			min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (n - i - 1 < need)
			return 0;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* ---- reading client frames ---- */

struct emg_ws_reader {
	size_t max;
	unsigned char hdr[14]; /* the frame header being read */
	size_t hn, hneed;
	int in_payload;
	int op, fin;
	uint64_t left;          /* payload bytes of this frame still to come */
	unsigned char mask[4];
	unsigned mpos;
	int frag_op;            /* opcode of the fragmented message under way, 0 = none */
	unsigned char *msg;     /* data message being reassembled */
	size_t msgn;
	unsigned char ctl[EMG_WS_MAX_CONTROL];
	size_t ctln;
	unsigned close_code;    /* violation: what to close with */
	int closed;
};

int emg_ws_reader_new(struct emg_ws_reader **out, size_t max_message)
{
	struct emg_ws_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->max = max_message;
	r->msg = malloc(max_message ? max_message : 1);
	if (!r->msg) {
		free(r);
		return -ENOMEM;
	}
	r->hneed = 2;
	*out = r;
	return 0;
}

void emg_ws_reader_free(struct emg_ws_reader *r)
{
	if (!r)
		return;
	free(r->msg);
	free(r);
}

unsigned emg_ws_close_code(const struct emg_ws_reader *r)
{
	return r->close_code;
}

int emg_ws_closed(const struct emg_ws_reader *r)
{
	return r->closed;
}

static int fail(struct emg_ws_reader *r, unsigned code)
{
	r->close_code = code;
	return -EPROTO;
}

/* A close code a peer may put on the wire (RFC 6455 7.4; 1004-1006 and 1015 never are). */
static int close_code_ok(unsigned c)
{
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/* The header is complete in r->hdr: check it and set up the payload. */
static int header_done(struct emg_ws_reader *r)
{
	unsigned b0 = r->hdr[0], b1 = r->hdr[1];
	unsigned plen = b1 & 0x7F;
	uint64_t len = plen;
	size_t mo = 2;

	if (plen == 126) {
		len = (uint64_t)r->hdr[2] << 8 | r->hdr[3];
		if (len < 126)
			return fail(r, EMG_WS_CLOSE_PROTOCOL); /* not minimal */
		mo = 4;
	} else if (plen == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | r->hdr[2 + i];
		if (len >> 63 || len <= 0xFFFF)
			return fail(r, EMG_WS_CLOSE_PROTOCOL);
		mo = 10;
	}
	memcpy(r->mask, r->hdr + mo, 4);
	r->mpos = 0;
	r->op = (int)(b0 & 0x0F);
	r->fin = !!(b0 & 0x80);
	r->left = len;
	if (r->op >= EMG_WS_CLOSE) {
		r->ctln = 0;
	} else {
		if (r->op == EMG_WS_CONT && !r->frag_op)
			return fail(r, EMG_WS_CLOSE_PROTOCOL); /* continuation of nothing */
		if (r->op != EMG_WS_CONT && r->frag_op)
			return fail(r, EMG_WS_CLOSE_PROTOCOL); /* new message inside a fragmented one */
		if (r->op != EMG_WS_CONT)
			r->msgn = 0;
		if (len > r->max - r->msgn)
			return fail(r, EMG_WS_CLOSE_TOO_BIG);
		if (r->op != EMG_WS_CONT)
			r->frag_op = r->op;
	}
	r->in_payload = 1;
	return 0;
}

/* The first two header bytes are in: the rules that need nothing more, and the header's size. */
static int header_start(struct emg_ws_reader *r)
{
	unsigned b0 = r->hdr[0], b1 = r->hdr[1], op = b0 & 0x0F;

	if (b0 & 0x70)
		return fail(r, EMG_WS_CLOSE_PROTOCOL); /* no extension was negotiated */
	if (op != EMG_WS_CONT && op != EMG_WS_TEXT && op != EMG_WS_BINARY && op != EMG_WS_CLOSE &&
	    op != EMG_WS_PING && op != EMG_WS_PONG)
		return fail(r, EMG_WS_CLOSE_PROTOCOL);
	if (!(b1 & 0x80))
		return fail(r, EMG_WS_CLOSE_PROTOCOL); /* clients must mask */
	if (op >= EMG_WS_CLOSE && (!(b0 & 0x80) || (b1 & 0x7F) > EMG_WS_MAX_CONTROL))
		return fail(r, EMG_WS_CLOSE_PROTOCOL);
	r->hneed = 2 + ((b1 & 0x7F) == 126 ? 2 : (b1 & 0x7F) == 127 ? 8 : 0) + 4;
	return 0;
}

/* The frame's payload is all in: deliver what is complete. */
static int frame_done(struct emg_ws_reader *r, emg_ws_message_fn fn, void *ud)
{
	int ret = 0;

	r->in_payload = 0;
	r->hn = 0;
	r->hneed = 2;
	if (r->op == EMG_WS_CLOSE) {
		if (r->ctln == 1)
			return fail(r, EMG_WS_CLOSE_PROTOCOL);
		if (r->ctln >= 2) {
			unsigned code = (unsigned)r->ctl[0] << 8 | r->ctl[1];
			if (!close_code_ok(code))
				return fail(r, EMG_WS_CLOSE_PROTOCOL);
			if (!emg_ws_utf8_valid(r->ctl + 2, r->ctln - 2))
				return fail(r, EMG_WS_CLOSE_BAD_DATA);
		}
		r->closed = 1;
		return fn ? fn(ud, EMG_WS_CLOSE, r->ctl, r->ctln) : 0;
	}
	if (r->op >= EMG_WS_CLOSE)
		return fn ? fn(ud, (enum emg_ws_opcode)r->op, r->ctl, r->ctln) : 0;
	if (!r->fin)
		return 0;
	if (r->frag_op == EMG_WS_TEXT && !emg_ws_utf8_valid(r->msg, r->msgn))
		return fail(r, EMG_WS_CLOSE_BAD_DATA);
	if (fn)
		ret = fn(ud, (enum emg_ws_opcode)r->frag_op, r->msg, r->msgn);
	r->frag_op = 0;
	r->msgn = 0;
	return ret;
}

int emg_ws_feed(struct emg_ws_reader *r, const void *buf, size_t len, emg_ws_message_fn fn, void *ud)
{
	const unsigned char *p = buf;
	size_t i = 0;
	int ret;

	if (r->close_code)
		return -EPROTO;
	while (i < len && !r->closed) {
		if (!r->in_payload) {
			r->hdr[r->hn++] = p[i++];
			if (r->hn == 2 && (ret = header_start(r)) < 0)
				return ret;
			if (r->hn < r->hneed)
				continue;
			if ((ret = header_done(r)) < 0)
				return ret;
			if (r->left == 0 && (ret = frame_done(r, fn, ud)) < 0)
				return ret;
			continue;
		}
		size_t take = len - i < r->left ? len - i : (size_t)r->left;
		unsigned char *dst = r->op >= EMG_WS_CLOSE ? r->ctl + r->ctln : r->msg + r->msgn;
		for (size_t k = 0; k < take; k++)
			dst[k] = p[i + k] ^ r->mask[r->mpos++ & 3];
		if (r->op >= EMG_WS_CLOSE)
			r->ctln += take;
		else
			r->msgn += take;
		i += take;
		r->left -= take;
		if (r->left == 0 && (ret = frame_done(r, fn, ud)) < 0)
			return ret;
	}
	return 0;
}

/* ---- writing server frames ---- */

size_t emg_ws_header(unsigned char hdr[EMG_WS_MAX_HEADER], enum emg_ws_opcode op, uint64_t len)
{
	hdr[0] = (unsigned char)(0x80 | (op & 0x0F));
	if (len < 126) {
		hdr[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xFFFF) {
		hdr[1] = 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}

size_t emg_ws_close_frame(unsigned char out[4], unsigned code)
{
	out[0] = 0x80 | EMG_WS_CLOSE;
	if (!code) {
		out[1] = 0;
		return 2;
	}
	out[1] = 2;
	out[2] = (unsigned char)(code >> 8);
	out[3] = (unsigned char)code;
	return 4;
}
