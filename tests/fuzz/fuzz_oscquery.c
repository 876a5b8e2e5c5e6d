/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the OSCQuery HTTP request handler, emg_oscquery_answer() -
 * what the HTTP thread runs for every request, given the method and the raw
 * request target (before any decoding), without sockets.
 *
 * Input: byte 0 picks the method (GET, HEAD, POST, "", a long one), whether
 * a body was announced, and one of three muscle maps (a reload between
 * requests); the rest is a list of request targets separated by '\n'.
 *
 * Invariants checked besides memory and UB errors:
 *   - the status is one of 200, 204, 400, 404, 405, with a body only where
 *     it belongs (204: none) and a Content-Type on every 200;
 *   - a 200 is a JSON object ({...}) without raw control bytes;
 *   - a target whose path holds a NUL or control byte, raw or %-encoded, is
 *     never 200 (issue 16 #7: /emg%00/x was answered as /emg);
 *   - only GET and HEAD succeed; a request with a body never does;
 *   - the answer is a function of the request: asking again gives the same;
 *   - VALUEs kept from the input published as an OSC packet keep every 200 a
 *     JSON object without raw control bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_answer.h"
#include "fuzz_main.h"
#include "muscles.h"
#include "oscquery.h"

static struct emg_oscquery *q;
static struct emg_muscles *maps[3];
static unsigned cur_map; /* the map q serves */

static void init(void)
{
	struct emg_oscquery_params p = { .http = { "127.0.0.1", 0 }, .osc = { "127.0.0.1", 9000 } };

	emg_muscles_new_default(&maps[0]);
	emg_muscles_new(&maps[1]);
	emg_muscles_add(maps[1], "a", 0, EMG_SIDE_LEFT, "");
	emg_muscles_new(&maps[2]);
	for (unsigned i = 0; i < 64; i++) {
		char name[16];
		snprintf(name, sizeof(name), "m%u", i);
		emg_muscles_add(maps[2], name, i, i & 1 ? EMG_SIDE_RIGHT : EMG_SIDE_LEFT, "");
	}
	if (emg_oscquery_new_offline(&q, &p, maps[0]) < 0)
		abort();
}

/* 1 if the path part of target (before '?') has a control byte, raw or %XX-encoded. */
static int path_has_control(const char *t)
{
	for (const char *p = t; *p && *p != '?'; p++) {
		int c = (unsigned char)*p;
		if (c == '%' && p[1] && p[2]) {
			static const char hex[] = "0123456789abcdef0123456789ABCDEF";
			const char *h = strchr(hex, p[1]), *l = strchr(hex, p[2]);
			if (h && l && *h && *l)
				c = (int)((h - hex) % 16) * 16 + (int)((l - hex) % 16);
		}
		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

static void check(const char *method, const char *target, size_t upload)
{
	struct emg_oscquery_reply r;
	int ok = !strcmp(method, "GET") || !strcmp(method, "HEAD");

	if (fuzz_answer(q, method, target, upload, &r) < 0)
		return; /* out of memory only */
	if (r.status == 200) {
		if (!ok || upload || !r.type || path_has_control(target))
			abort();
		if (!strcmp(r.type, "application/json") &&
		    (r.len < 2 || r.body[0] != '{' || r.body[r.len - 1] != '}'))
			abort();
		for (size_t i = 0; i < r.len; i++)
			if ((unsigned char)r.body[i] < 0x20)
				abort();
	}
	free(r.body);
}

struct req {
	const char *method;
	size_t upload;
};

static void one(const char *line, void *ud)
{
	const struct req *rq = ud;

	check(rq->method, line, rq->upload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "", "GETGETGETGETGETGETGET",
					       "get", "OPTIONS", "GET" };
	static char buf[1 << 16];
	const char *method;
	size_t upload;

	if (!q)
		init();
	if (size < 1)
		return 0;
	method = methods[data[0] & 7];
	upload = (data[0] >> 3) & 1 ? (size_t)data[0] : 0;
	/* a reload only when the map changes: rebuilding the document is most of the cost */
	if ((unsigned)((data[0] >> 4) % 3) != cur_map) {
		cur_map = (unsigned)((data[0] >> 4) % 3);
		emg_oscquery_set_muscles(q, maps[cur_map]);
	}
	size--, data++;
	/* the same bytes as a packet from the publisher: its messages become VALUEs, rendered
	 * as JSON by the answers below ("/emg/frame\0\0,ii\0..." as the first line) */
	emg_oscquery_publish(q, data, size);
	/* each line a request target */
	fuzz_each_line(data, size, buf, sizeof(buf), one, &(struct req){ method, upload });
	return 0;
}
