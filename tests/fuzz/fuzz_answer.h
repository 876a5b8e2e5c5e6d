/* SPDX-License-Identifier: MIT */
/* What the OSCQuery fuzz targets (fuzz_oscquery.c, fuzz_www.c) check of every answer. */
#ifndef EMG_FUZZ_ANSWER_H
#define EMG_FUZZ_ANSWER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oscquery.h"

/*
 * Answer a request twice into *r and abort if the two differ (the answer is a
 * function of the request) or the status is not one emgd answers (200, 204
 * without a body, 400, 404, 405).  0, or -1 when out of memory; free(r->body).
 */
static int fuzz_answer(struct emg_oscquery *q, const char *method, const char *target,
		       size_t upload, struct emg_oscquery_reply *r)
{
	struct emg_oscquery_reply r2;

	if (emg_oscquery_answer(q, method, target, upload, r) < 0)
		return -1;
	if (emg_oscquery_answer(q, method, target, upload, &r2) < 0) {
		free(r->body);
		return -1;
	}
	if (r2.status != r->status || r2.len != r->len || (r->len && memcmp(r->body, r2.body, r->len)))
		abort();
	free(r2.body);
	if (r->status != 200 && r->status != 204 && r->status != 400 && r->status != 404 &&
	    r->status != 405)
		abort();
	if (r->status == 204 && r->len)
		abort();
	return 0;
}

/* Each '\n'-separated line of the input (an embedded NUL ends the list, as it ends a C
 * string) to fn, through buf (cap bytes; a longer input is cut). */
static void fuzz_each_line(const uint8_t *data, size_t size, char *buf, size_t cap,
			   void (*fn)(const char *line, void *ud), void *ud)
{
	if (size >= cap)
		size = cap - 1;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *t = buf, *nl; t; t = nl) {
		nl = strchr(t, '\n');
		if (nl)
			*nl++ = '\0';
		fn(t, ud);
	}
}

#endif
