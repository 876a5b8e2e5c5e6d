/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the browser view's file server - emg_oscquery_answer() for
 * request targets under /ui/ (percent-decoding, the name rules, the file
 * types, the segment-by-segment O_NOFOLLOW open), against a real directory
 * made at start-up:
 *
 *   <tmp>/secret.txt           outside the served directory
 *   <tmp>/www/index.html       served at /ui/ and /ui/index.html
 *   <tmp>/www/view.js
 *   <tmp>/www/sub/a.css
 *   <tmp>/www/.hidden.js       a hidden file
 *   <tmp>/www/link.js  -> ../secret.txt   a symbolic link out
 *   <tmp>/www/sub/in.css -> ../view.js    a symbolic link within
 *   <tmp>/www/d.js/            a directory with a served extension
 *   <tmp>/www/notes.md         a type the view does not have
 *
 * Input: byte 0 picks the prefix put before each target ("/ui/", "/ui", "",
 * "/ui/sub/") and the method (GET or HEAD); the rest is a list of targets
 * separated by '\n'.
 *
 * Invariants besides memory and UB errors: the status is 200, 204, 400, 404 or
 * 405; a file answer (not JSON) is exactly one of the three servable files
 * with its type - never the secret, the hidden file, a link (in or out), a
 * directory or notes.md; the answer is a function of the request.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_answer.h"
#include "fuzz_main.h"
#include "muscles.h"
#include "oscquery.h"

static struct emg_oscquery *q;
static struct emg_muscles *map;

static const struct {
	const char *name, *body, *type;
} served[] = {
	{ "index.html", "<p>index</p>", "text/html; charset=utf-8" },
	{ "view.js", "let v = 1;", "text/javascript; charset=utf-8" },
	{ "sub/a.css", "p { }", "text/css; charset=utf-8" },
};

static void put(const char *dir, const char *name, const char *body)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(body, f) < 0 || fclose(f) != 0)
		abort();
}

static void init(void)
{
	static char tmp[] = "/tmp/emgd-fuzz-www-XXXXXX";
	char www[600], p[700];
	struct emg_oscquery_params prm = { .http = { "127.0.0.1", 0 }, .osc = { "127.0.0.1", 9000 } };

	if (!mkdtemp(tmp))
		abort();
	snprintf(www, sizeof(www), "%s/www", tmp);
	put(tmp, "secret.txt", "SECRET");
	if (mkdir(www, 0700) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/sub", www);
	if (mkdir(p, 0700) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/d.js", www);
	if (mkdir(p, 0700) < 0)
		abort();
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
		put(www, served[i].name, served[i].body);
	put(www, ".hidden.js", "HIDDEN");
	put(www, "notes.md", "NOTES");
	snprintf(p, sizeof(p), "%s/link.js", www);
	if (symlink("../secret.txt", p) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/sub/in.css", www);
	if (symlink("../view.js", p) < 0)
		abort();
	emg_muscles_new_default(&map);
	prm.www = www;
	if (emg_oscquery_new_offline(&q, &prm, map) < 0)
		abort();
}

static void check(const char *method, const char *target)
{
	struct emg_oscquery_reply r;
	int known = 0;

	if (fuzz_answer(q, method, target, 0, &r) < 0)
		return; /* out of memory only */
	if (r.status == 200) {
		if (!r.type)
			abort();
		if (strcmp(r.type, "application/json")) { /* not the namespace: a file of the view */
			for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
				if (r.len == strlen(served[i].body) && !memcmp(r.body, served[i].body, r.len)) {
					if (strcmp(r.type, served[i].type))
						abort();
					known = 1;
				}
			if (!known)
				abort(); /* the secret, the hidden file, a link, notes.md: never */
		}
	}
	free(r.body);
}

struct req {
	const char *prefix, *method;
};

static void one(const char *line, void *ud)
{
	const struct req *rq = ud;
	static char target[(1 << 13) + 16];

	snprintf(target, sizeof(target), "%s%s", rq->prefix, line);
	check(rq->method, target);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefix[] = { "/ui/", "/ui", "", "/ui/sub/" };
	static char buf[1 << 13];
	const char *pre, *method;

	if (!q)
		init();
	if (size < 1)
		return 0;
	pre = prefix[data[0] & 3];
	method = data[0] & 4 ? "HEAD" : "GET";
	fuzz_each_line(data + 1, size - 1, buf, sizeof(buf), one, &(struct req){ pre, method });
	return 0;
}
