/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the WebSocket frame reader (lib/ws.c) - what the OSCQuery
 * server's HTTP thread runs on every byte an upgraded client sends.
 *
 * Input: byte 0 picks the message size limit (16..4096) and the split of the
 * rest into reads (whole, byte by byte, or chunk sizes taken from byte 1);
 * the rest are the client's bytes.
 *
 * Invariants checked besides memory and UB errors:
 *   - a delivered data message is at most the limit, a control one at most
 *     125 bytes, text and close reasons are valid UTF-8, a close payload is
 *     empty or holds a code a peer may send;
 *   - a violation is -EPROTO with a close code of 1002, 1007 or 1009, and the
 *     reader then refuses everything;
 *   - the result does not depend on how the bytes were split into reads: the
 *     same messages (hashed) and the same verdict as feeding them at once;
 *   - every text message also goes through the OSCQuery command parser
 *     (emg_oscquery_command), which answers 0, -EINVAL or -ENOSPC and on 0
 *     fills both strings, NUL-terminated, within their buffers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_main.h"
#include "oscquery.h"
#include "ws.h"

struct seen {
	size_t max;
	unsigned n;
	uint64_t hash;
};

static int on_msg(void *ud, enum emg_ws_opcode op, const unsigned char *p, size_t len)
{
	struct seen *s = ud;

	if (op >= EMG_WS_CLOSE) {
		if (len > EMG_WS_MAX_CONTROL)
			abort();
		if (op == EMG_WS_CLOSE && len) {
			unsigned code = (unsigned)p[0] << 8 | p[1];
			if (len < 2 || code < 1000 || code >= 5000 || !emg_ws_utf8_valid(p + 2, len - 2))
				abort();
		}
	} else if (op == EMG_WS_TEXT || op == EMG_WS_BINARY) {
		if (len > s->max || (op == EMG_WS_TEXT && !emg_ws_utf8_valid(p, len)))
			abort();
		if (op == EMG_WS_TEXT) {
			char cmd[32], data[128];
			int r = emg_oscquery_command((const char *)p, len, cmd, sizeof(cmd), data,
						     sizeof(data));
			if (r != 0 && r != -EINVAL && r != -ENOSPC)
				abort();
			if (r == 0 && (!memchr(cmd, 0, sizeof(cmd)) || !memchr(data, 0, sizeof(data))))
				abort();
		}
	} else {
		abort(); /* continuation frames are never delivered on their own */
	}
	s->hash = (s->hash ^ (uint64_t)op) * 1099511628211ull;
	for (size_t i = 0; i < len; i++)
		s->hash = (s->hash ^ p[i]) * 1099511628211ull;
	s->n++;
	return 0;
}

/* Feed data in reads of the given chunk size (0: all at once); returns the verdict. */
static int run(const uint8_t *data, size_t size, size_t max, size_t chunk, struct seen *s,
	       unsigned *code)
{
	struct emg_ws_reader *r;
	int ret = 0;

	if (emg_ws_reader_new(&r, max) < 0)
		return -ENOMEM;
	s->max = max;
	for (size_t i = 0; i < size && ret == 0;) {
		size_t n = chunk && chunk < size - i ? chunk : size - i;
		ret = emg_ws_feed(r, data + i, n, on_msg, s);
		i += n;
	}
	*code = emg_ws_close_code(r);
	if (ret == -EPROTO) {
		if (*code != EMG_WS_CLOSE_PROTOCOL && *code != EMG_WS_CLOSE_BAD_DATA &&
		    *code != EMG_WS_CLOSE_TOO_BIG)
			abort();
		if (emg_ws_feed(r, "\x81\x80\0\0\0\0", 6, on_msg, s) != -EPROTO)
			abort();
	} else if (ret != 0 || *code) {
		abort();
	}
	emg_ws_reader_free(r);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a = { 0 }, b = { 0 };
	unsigned ca, cb;
	size_t max, chunk;
	int ra, rb;

	if (size < 2)
		return 0;
	max = (size_t)16 << (data[0] & 7);
	if (max > 4096)
		max = 4096;
	chunk = (data[0] & 0x80) ? 1 : (data[0] & 0x40) ? (size_t)data[1] % 17 + 1 : 0;
	data += 2;
	size -= 2;
	ra = run(data, size, max, 0, &a, &ca);
	rb = run(data, size, max, chunk, &b, &cb);
	if (ra == -ENOMEM || rb == -ENOMEM)
		return 0;
	if (ra != rb || ca != cb || a.n != b.n || a.hash != b.hash)
		abort();
	return 0;
}
