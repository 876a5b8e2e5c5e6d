/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for emg_oscquery: the address table is consistent (units and
 * ranges line up with the type tags), the namespace is valid JSON with every
 * address of the table under its full path, and - when built with
 * libmicrohttpd - the HTTP server answers GET /, a node, an attribute,
 * ?HOST_INFO, 404, 204 and 400 as the OSCQuery proposal says, and follows a
 * new muscle map.  Every message emg_osc sends (stream, events, analytics,
 * replies, errors) is decoded and must match its table row's type tags.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "osc.h"
#include "oscquery.h"
#include "testutil.h"

/* ---- a minimal JSON validator (RFC 8259 grammar, no semantics) ---- */

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *value(const char *p, int depth);

static const char *string(const char *p)
{
	if (*p != '"')
		return NULL;
	for (p++; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
	}
	return p + 1;
}

static const char *number(const char *p)
{
	const char *s = p;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > s ? p : NULL;
}

static const char *value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		int obj = *p == '{';
		p = ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = string(ws(p));
				if (!p)
					return NULL;
				p = ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = value(p, depth + 1);
			if (!p)
				return NULL;
			p = ws(p);
			if (*p == ',') {
				p++;
				continue;
			}
			return *p == close ? p + 1 : NULL;
		}
	}
	if (*p == '"')
		return string(p);
	if (!strncmp(p, "true", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (!strncmp(p, "null", 4))
		return p + 4;
	return number(p);
}

static int json_valid(const char *s)
{
	const char *e = value(s, 0);

	return e && *ws(e) == '\0';
}

/* ---- fixtures ---- */

static struct emg_muscles *map3(void)
{
	struct emg_muscles *m;

	ck_assert_int_eq(emg_muscles_new(&m), 0);
	ck_assert_int_eq(emg_muscles_add(m, "glute_max_l", 0, EMG_SIDE_LEFT, "SENIAM \"GM\" site"), 0);
	ck_assert_int_eq(emg_muscles_add(m, "glute_max_r", 1, EMG_SIDE_RIGHT, ""), 0);
	ck_assert_int_eq(emg_muscles_add(m, "hamstring_l", 4, EMG_SIDE_LEFT, ""), 0);
	return m;
}

static unsigned count_items(const char *list)
{
	unsigned n = 1;

	if (!list || !*list)
		return 0;
	for (const char *p = list; *p; p++)
		n += *p == '|';
	return n;
}

START_TEST(test_table_consistent)
{
	char buf[64];
	unsigned rows = 0;

	for (unsigned i = 0;; i++, rows++) {
		const struct emg_osc_addr *a = emg_osc_address(i);
		unsigned tags = 0;
		if (!a)
			break;
		ck_assert_msg(a->path[0] == '/', "%s", a->path);
		ck_assert_msg(a->access >= 1 && a->access <= 3, "%s", a->path);
		ck_assert_msg(a->desc && strlen(a->desc) > 10, "%s has no description", a->path);
		for (const char *t = a->types; *t; t++) {
			ck_assert_msg(strchr("ifs*", *t), "%s: type '%c' (only i f s)", a->path, *t);
			tags += *t != '*';
		}
		/* a units or range list is empty or has one item per tag of the template */
		ck_assert_msg(count_items(a->units) == 0 || count_items(a->units) == tags,
			      "%s: %u units for %u tags", a->path, count_items(a->units), tags);
		ck_assert_msg(count_items(a->range) == 0 || count_items(a->range) == tags,
			      "%s: %u ranges for %u tags", a->path, count_items(a->range), tags);
		/* no two rows with the same path */
		for (unsigned k = 0; k < i; k++)
			ck_assert_str_ne(emg_osc_address(k)->path, a->path);
	}
	ck_assert_uint_ge(rows, 25);
	ck_assert_int_eq(emg_osc_types_expand("isf*", 3, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "isfff");
	ck_assert_int_eq(emg_osc_types_expand("f*", 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(emg_osc_types_expand("f*", 64, buf, sizeof(buf)), -ENOSPC);
}
END_TEST

START_TEST(test_namespace_json)
{
	struct emg_muscles *m = map3();
	char *json;
	size_t len;
	char want[256];

	ck_assert_int_eq(emg_oscquery_json(m, &json, &len), 0);
	ck_assert_uint_eq(strlen(json), len);
	ck_assert_msg(json_valid(json), "invalid JSON: %.400s", json);
	ck_assert_ptr_nonnull(strstr(json, "\"FULL_PATH\":\"/\""));
	/* every row, per muscle where it says {muscle} */
	for (unsigned i = 0;; i++) {
		const struct emg_osc_addr *a = emg_osc_address(i);
		const char *ph;
		if (!a)
			break;
		ph = strstr(a->path, "{muscle}");
		if (ph)
			snprintf(want, sizeof(want), "\"FULL_PATH\":\"%.*sglute_max_r%s\"",
				 (int)(ph - a->path), a->path, ph + 8);
		else
			snprintf(want, sizeof(want), "\"FULL_PATH\":\"%s\"", a->path);
		ck_assert_msg(strstr(json, want) != NULL, "%s missing", want);
	}
	/* expanded templates and their per-tag attributes */
	ck_assert_ptr_nonnull(strstr(json, "\"FULL_PATH\":\"/emg/levels\",\"DESCRIPTION\""));
	ck_assert_ptr_nonnull(strstr(json, "\"TYPE\":\"fff\",\"RANGE\":[{\"MIN\":-1},{\"MIN\":-1},{\"MIN\":-1}],"
					   "\"UNIT\":[\"ratio.mvc\",\"ratio.mvc\",\"ratio.mvc\"]"));
	ck_assert_ptr_nonnull(strstr(json, "\"TYPE\":\"isfff\""));
	ck_assert_ptr_nonnull(strstr(json, "\"TYPE\":\"siffffffis\""));
	ck_assert_ptr_nonnull(strstr(json, "{\"VALS\":[\"pct_mvc\",\"uV\"]}"));
	ck_assert_ptr_nonnull(strstr(json, "{\"MIN\":-200,\"MAX\":200}"));
	/* containers: ACCESS 0, no TYPE; the muscle's channel and (escaped) site */
	ck_assert_ptr_nonnull(strstr(json, "\"glute_max_l\":{\"FULL_PATH\":\"/emg/glute_max_l\","
					   "\"DESCRIPTION\":\"Muscle glute_max_l: amplifier channel 1, left side, "
					   "SENIAM \\\"GM\\\" site\",\"ACCESS\":0,\"CONTENTS\""));
	/* control: write-only, with no TYPE when it takes no argument */
	ck_assert_ptr_nonnull(strstr(json, "\"FULL_PATH\":\"/emgd/ping\",\"DESCRIPTION\":\"Answered with /emgd/pong\",\"ACCESS\":2}"));
	ck_assert_ptr_nonnull(strstr(json, "\"FULL_PATH\":\"/emgd/status\""));
	/* no RANGE when no argument has one (was "RANGE":[null]), and never an all-null one */
	ck_assert_ptr_nonnull(strstr(json, "\"FULL_PATH\":\"/emgd/record/start\",\"DESCRIPTION\":"));
	ck_assert_ptr_null(strstr(json, "\"RANGE\":[null]"));
	ck_assert_ptr_null(strstr(json, "\"RANGE\":[null,null"));
	{
		const char *rs = strstr(json, "\"FULL_PATH\":\"/emgd/record/start\"");
		const char *end = strchr(rs, '}');
		ck_assert_ptr_nonnull(strstr(rs, "\"TYPE\":\"s\""));
		ck_assert_msg(!memmem(rs, (size_t)(end - rs), "RANGE", 5), "record/start: %.*s",
			      (int)(end - rs), rs);
	}
	free(json);
	emg_muscles_free(m);
}
END_TEST

START_TEST(test_host_info)
{
	struct emg_oscquery_params p = { .http = { "127.0.0.1", 9001 }, .osc = { "127.0.0.1", 9000 } };
	char *json;
	size_t len;

	p.name = "plinth \"2\"";
	ck_assert_int_eq(emg_oscquery_host_info(&p, &json, &len), 0);
	ck_assert(json_valid(json));
	ck_assert_ptr_nonnull(strstr(json, "\"NAME\":\"plinth \\\"2\\\"\""));
	ck_assert_ptr_nonnull(strstr(json, "\"OSC_IP\":\"127.0.0.1\",\"OSC_PORT\":9000,\"OSC_TRANSPORT\":\"UDP\""));
	ck_assert_ptr_nonnull(strstr(json, "\"EXTENSIONS\":{\"ACCESS\":true,"));
	free(json);
	/* a wildcard listen address says nothing: clients use the HTTP server's address */
	snprintf(p.osc.host, sizeof(p.osc.host), "0.0.0.0");
	p.name = NULL;
	ck_assert_int_eq(emg_oscquery_host_info(&p, &json, &len), 0);
	ck_assert(json_valid(json));
	ck_assert_ptr_null(strstr(json, "OSC_IP"));
	ck_assert_ptr_nonnull(strstr(json, "\"NAME\":\"emgd on "));
	free(json);
}
END_TEST

/* ---- over HTTP ---- */

/* GET url from 127.0.0.1:port; returns the status, body (malloc'd) in *body. */
static int http_get(unsigned port, const char *url, char **body)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char req[512], *buf = NULL;
	size_t n = 0, cap = 0;
	int fd, status = -1;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", url);
	ck_assert_int_eq(write(fd, req, strlen(req)), (int)strlen(req));
	for (;;) {
		ssize_t r;
		if (n + 4097 > cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	ck_assert_ptr_nonnull(buf);
	buf[n] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &status);
	{
		char *b = strstr(buf, "\r\n\r\n");
		*body = strdup(b ? b + 4 : "");
		if (strstr(buf, "Content-Type: application/json") == NULL && status == 200)
			status = -2; /* JSON must say so */
	}
	free(buf);
	return status;
}

START_TEST(test_http)
{
	struct emg_muscles *m = map3(), *m2;
	struct emg_oscquery_params p = { .http = { "127.0.0.1", 0 }, .osc = { "127.0.0.1", 9000 } };
	struct emg_oscquery *q;
	char *body;
	unsigned port;

	if (!emg_oscquery_http_available()) {
		ck_assert_int_eq(emg_oscquery_new(&q, &p, m), -EOPNOTSUPP);
		emg_muscles_free(m);
		return;
	}
	ck_assert_int_eq(emg_oscquery_new(&q, &p, m), 0);
	port = emg_oscquery_port(q);
	ck_assert_uint_gt(port, 0);

	ck_assert_int_eq(http_get(port, "/", &body), 200);
	ck_assert(json_valid(body));
	ck_assert_ptr_nonnull(strstr(body, "\"FULL_PATH\":\"/emg/hamstring_l/rms\""));
	free(body);
	ck_assert_int_eq(http_get(port, "/emg/glute_max_r/", &body), 200);
	ck_assert(json_valid(body));
	ck_assert_msg(!strncmp(body, "{\"FULL_PATH\":\"/emg/glute_max_r\"", 31), "%s", body);
	ck_assert_ptr_null(strstr(body, "glute_max_l"));
	free(body);
	ck_assert_int_eq(http_get(port, "/emg/order?TYPE", &body), 200);
	ck_assert_str_eq(body, "{\"TYPE\":\"isfff\"}");
	free(body);
	ck_assert_int_eq(http_get(port, "/emgd/subscribe?ACCESS", &body), 200);
	ck_assert_str_eq(body, "{\"ACCESS\":2}");
	free(body);
	ck_assert_int_eq(http_get(port, "/emg/frame?HOST_INFO", &body), 200);
	ck_assert(json_valid(body));
	ck_assert_ptr_nonnull(strstr(body, "\"OSC_PORT\":9000"));
	free(body);
	ck_assert_int_eq(http_get(port, "/emg/nope", &body), 404);
	free(body);
	ck_assert_int_eq(http_get(port, "/emg?TYPE", &body), 204); /* a container has none */
	free(body);
	ck_assert_int_eq(http_get(port, "/emg/frame?VALUE", &body), 204);
	free(body);
	ck_assert_int_eq(http_get(port, "/emg/frame?BOGUS", &body), 400);
	free(body);
	ck_assert_int_eq(http_get(port, "/emg%00/x", &body), 400); /* was 200, as /emg */
	free(body);

	/* a reload with another map */
	ck_assert_int_eq(emg_muscles_new(&m2), 0);
	ck_assert_int_eq(emg_muscles_add(m2, "glute_med_r", 0, EMG_SIDE_RIGHT, ""), 0);
	ck_assert_int_eq(emg_oscquery_set_muscles(q, m2), 0);
	ck_assert_int_eq(http_get(port, "/emg/glute_max_r", &body), 404);
	free(body);
	ck_assert_int_eq(http_get(port, "/emg/levels?TYPE", &body), 200);
	ck_assert_str_eq(body, "{\"TYPE\":\"f\"}");
	free(body);
	emg_oscquery_free(q);
	emg_muscles_free(m2);

	/* a taken port is an error, not a crash */
	{
		struct emg_oscquery *q1, *q2;
		ck_assert_int_eq(emg_oscquery_new(&q1, &p, m), 0);
		p.http.port = (unsigned short)emg_oscquery_port(q1);
		ck_assert_int_lt(emg_oscquery_new(&q2, &p, m), 0);
		emg_oscquery_free(q1);
	}
	emg_muscles_free(m);
}
END_TEST

/* ---- request handling without sockets (the fuzz target's function) ---- */

static unsigned answer(struct emg_oscquery *q, const char *method, const char *target, char **body)
{
	struct emg_oscquery_reply r;

	ck_assert_int_eq(emg_oscquery_answer(q, method, target, 0, &r), 0);
	*body = r.body;
	return r.status;
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* The browser view's files at /ui/: only regular files of known types under www, else 404. */
START_TEST(test_www)
{
	struct emg_muscles *m = map3();
	struct emg_oscquery_params p = { .http = { "127.0.0.1", 0 }, .osc = { "127.0.0.1", 9000 } };
	struct emg_oscquery *q;
	struct emg_oscquery_reply r;
	char tmp[] = "/tmp/emgd-www-XXXXXX", www[600], path[700], *body;
	static const char *const missing[] = {
		"/ui/../secret.txt", "/ui/%2e%2e/secret.txt", "/ui/.hidden.js", "/ui/sub/../index.html",
		"/ui//index.html", "/ui/link.js", "/ui/dir.js", "/ui/notes.md", "/ui/nothere.js",
		"/ui/index.html%00.js", "/ui/a\\b.js", "/ui/dirlink/x.js", "/uix", "/ui/sub/",
	};

	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(www, sizeof(www), "%s/www", tmp);
	ck_assert_int_eq(mkdir(www, 0755), 0);
	put_file(tmp, "secret.txt", "outside\n");
	put_file(www, "index.html", "<!DOCTYPE html><title>v</title>\n");
	put_file(www, "osc.js", "'use strict';\n");
	put_file(www, "notes.md", "# not a type the view has\n");
	put_file(www, ".hidden.js", "x\n");
	snprintf(path, sizeof(path), "%s/dir.js", www);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sub", www);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	put_file(path, "x.js", "x\n");
	/* symbolic links never lead anywhere, inside or out */
	snprintf(path, sizeof(path), "%s/link.js", www);
	ck_assert_int_eq(symlink("osc.js", path), 0);
	snprintf(path, sizeof(path), "%s/dirlink", www);
	ck_assert_int_eq(symlink(tmp, path), 0);

	/* without a directory: no view */
	ck_assert_int_eq(emg_oscquery_new_offline(&q, &p, m), 0);
	ck_assert_uint_eq(answer(q, "GET", "/ui/", &body), 404);
	free(body);
	ck_assert_int_eq(emg_oscquery_set_www(q, www), 0);
	ck_assert_int_eq(emg_oscquery_answer(q, "GET", "/ui/", 0, &r), 0);
	ck_assert_uint_eq(r.status, 200);
	ck_assert_str_eq(r.type, "text/html; charset=utf-8");
	ck_assert_str_eq(r.body, "<!DOCTYPE html><title>v</title>\n");
	free(r.body);
	ck_assert_uint_eq(answer(q, "GET", "/ui", &body), 200); /* the page's links are absolute */
	free(body);
	ck_assert_uint_eq(answer(q, "HEAD", "/ui/index.html?v=2", &body), 200);
	free(body);
	ck_assert_int_eq(emg_oscquery_answer(q, "GET", "/ui/osc.js", 0, &r), 0);
	ck_assert_uint_eq(r.status, 200);
	ck_assert_str_eq(r.type, "text/javascript; charset=utf-8");
	ck_assert_uint_eq(r.len, strlen("'use strict';\n"));
	free(r.body);
	ck_assert_uint_eq(answer(q, "GET", "/ui/sub/x.js", &body), 200);
	free(body);
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		unsigned st = answer(q, "GET", missing[i], &body);
		ck_assert_msg(st == 404 || st == 400, "%s: %u", missing[i], st);
		free(body);
	}
	ck_assert_uint_eq(answer(q, "POST", "/ui/", &body), 405);
	free(body);
	/* the namespace stays at /, and /ui is none of its addresses */
	ck_assert_uint_eq(answer(q, "GET", "/", &body), 200);
	ck_assert(json_valid(body));
	ck_assert_ptr_null(strstr(body, "\"/ui"));
	free(body);
	ck_assert_uint_eq(answer(q, "GET", "/ui/?HOST_INFO", &body), 200);
	ck_assert(json_valid(body));
	free(body);
	ck_assert_int_eq(emg_oscquery_set_www(q, ""), 0);
	ck_assert_uint_eq(answer(q, "GET", "/ui/osc.js", &body), 404);
	free(body);
	emg_oscquery_free(q);
	emg_muscles_free(m);

	snprintf(path, sizeof(path), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(path), 0);
}
END_TEST

/* Regression (issue 16 #7): "/emg%00/x" was answered as "/emg" (MHD decodes %00 to a C string end). */
START_TEST(test_answer_decoding)
{
	struct emg_muscles *m = map3();
	struct emg_oscquery_params p = { .http = { "127.0.0.1", 0 }, .osc = { "127.0.0.1", 9000 } };
	struct emg_oscquery *q;
	struct emg_oscquery_reply r;
	char *body, longp[600];
	static const char *const bad[] = { "/emg%00/x", "/emg%00", "/emg%2", "/emg%zz/x", "/emg%0a",
					   "/emg\x01/x", "/emg?TY%00PE", "/emg?%G1", "*",
					   "http://h/emg" };

	ck_assert_int_eq(emg_oscquery_new_offline(&q, &p, m), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(answer(q, "GET", bad[i], &body) == 400, "%s not refused", bad[i]);
		free(body);
	}
	/* escapes of ordinary characters decode */
	ck_assert_uint_eq(answer(q, "GET", "/emg/%67lute_max_l/rms", &body), 200);
	ck_assert_msg(!strncmp(body, "{\"FULL_PATH\":\"/emg/glute_max_l/rms\"", 35), "%s", body);
	free(body);
	ck_assert_uint_eq(answer(q, "GET", "/emg/levels?TYP%45", &body), 200);
	ck_assert_str_eq(body, "{\"TYPE\":\"fff\"}");
	free(body);
	ck_assert_uint_eq(answer(q, "GET", "/emg/levels?TYPE=1&ACCESS", &body), 200);
	ck_assert_str_eq(body, "{\"TYPE\":\"fff\"}");
	free(body);
	ck_assert_uint_eq(answer(q, "HEAD", "/?HOST_INFO", &body), 200);
	free(body);
	ck_assert_uint_eq(answer(q, "GET", "/emg?", &body), 200);
	free(body);
	ck_assert_uint_eq(answer(q, "POST", "/emg", &body), 405);
	free(body);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_uint_eq(answer(q, "GET", longp, &body), 404);
	free(body);
	ck_assert_int_eq(emg_oscquery_answer(q, "GET", "/emg", 10, &r), 0);
	ck_assert_uint_eq(r.status, 400); /* a body */
	free(r.body);
	emg_oscquery_free(q);
	emg_muscles_free(m);
}
END_TEST

/* A local address that is not loopback (the test host's own), or 0. */
static int local_address(struct sockaddr_in *out)
{
	struct ifaddrs *ifa, *i;
	int found = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i && !found; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((const unsigned char *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr)[0] != 127) {
			*out = *(struct sockaddr_in *)i->ifa_addr;
			found = 1;
		}
	freeifaddrs(ifa);
	return found;
}

/* Bytes answered to GET / from source src to dst:port (0 = refused without a byte). */
static ssize_t get_from(const struct sockaddr_in *src, const struct sockaddr_in *dst, unsigned port)
{
	struct sockaddr_in s = *src, d = *dst;
	static const char req[] = "GET /?HOST_INFO HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	char buf[4096];
	ssize_t n, total = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	s.sin_port = 0;
	d.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0);
	if (connect(fd, (struct sockaddr *)&d, sizeof(d)) < 0) {
		close(fd);
		return 0;
	}
	(void)!write(fd, req, sizeof(req) - 1);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	close(fd);
	return total;
}

/* Regression (issue 16 #7): any host could read the namespace whatever [osc] allow said. */
START_TEST(test_http_allow)
{
	struct emg_muscles *m = map3();
	struct emg_oscquery_params p = { .http = { "0.0.0.0", 0 }, .osc = { "127.0.0.1", 9000 } };
	struct emg_oscquery *q;
	struct sockaddr_in me, lo = { .sin_family = AF_INET };
	struct emg_cidr net = { .family = AF_INET, .prefix = 32 };
	unsigned port;

	if (!emg_oscquery_http_available() || !local_address(&me)) {
		emg_muscles_free(m);
		return; /* no HTTP server, or no address but loopback to come from */
	}
	inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
	ck_assert_int_eq(emg_oscquery_new(&q, &p, m), 0);
	port = emg_oscquery_port(q);
	ck_assert_int_gt(get_from(&lo, &lo, port), 0);       /* loopback: always */
	ck_assert_int_eq(get_from(&me, &me, port), 0);       /* not in allow: not a byte */
	memcpy(net.addr, &me.sin_addr, 4);
	emg_oscquery_set_allow(q, &net, 1);                   /* reload with allow = me/32 */
	ck_assert_int_gt(get_from(&me, &me, port), 0);
	emg_oscquery_set_allow(q, NULL, 0);
	ck_assert_int_eq(get_from(&me, &me, port), 0);
	emg_oscquery_free(q);
	emg_muscles_free(m);
}
END_TEST

/* ---- what the publisher really sends matches the table ---- */

#define NCAP 512
static unsigned char cap_buf[NCAP][EMG_OSC_MAX_PACKET];
static size_t cap_len[NCAP];
static unsigned ncap;

static int cap_send(void *ud, const void *buf, size_t len, const struct sockaddr *to, socklen_t tl)
{
	ck_assert_uint_lt(ncap, NCAP);
	ck_assert_uint_le(len, EMG_OSC_MAX_PACKET);
	memcpy(cap_buf[ncap], buf, len);
	cap_len[ncap++] = len;
	return (int)len;
}

/* The type tags the table gives a concrete path, or NULL. */
static const char *table_types(const char *path, unsigned nm, char *buf, size_t len)
{
	for (unsigned i = 0;; i++) {
		const struct emg_osc_addr *a = emg_osc_address(i);
		const char *ph;
		size_t pre;
		if (!a)
			return NULL;
		ph = strstr(a->path, "{muscle}");
		if (ph) {
			/* "/emg/{muscle}/rms" matches "/emg/<name>/rms" */
			const char *suf = ph + 8, *tail;
			pre = (size_t)(ph - a->path);
			if (strncmp(path, a->path, pre))
				continue;
			tail = strchr(path + pre, '/');
			if (!tail || strcmp(tail, suf) || tail == path + pre)
				continue;
		} else if (strcmp(path, a->path)) {
			continue;
		}
		ck_assert_int_eq(emg_osc_types_expand(a->types, nm, buf, len), 0);
		return buf;
	}
}

/* Check one OSC message (not a bundle) against the table; count it. */
static void check_msg(const unsigned char *b, size_t n, unsigned nm, unsigned *checked)
{
	char want[128];
	const char *path = (const char *)b, *types, *t;
	size_t pl = strnlen(path, n);

	ck_assert_uint_lt(pl, n);
	types = path + ((pl + 4) & ~(size_t)3);
	ck_assert_int_eq(types[0], ',');
	t = table_types(path, nm, want, sizeof(want));
	ck_assert_msg(t != NULL, "%s is not in the address table", path);
	ck_assert_msg(!strcmp(types + 1, t), "%s sent as '%s', the table says '%s'", path, types + 1, t);
	(*checked)++;
}

static void check_packet(const unsigned char *b, size_t n, unsigned nm, unsigned *checked)
{
	if (n >= 16 && !memcmp(b, "#bundle", 8)) {
		size_t off = 16;
		while (off + 4 <= n) {
			uint32_t len;
			memcpy(&len, b + off, 4);
			len = ntohl(len);
			ck_assert_uint_le(off + 4 + len, n);
			check_packet(b + off + 4, len, nm, checked);
			off += 4 + len;
		}
		return;
	}
	check_msg(b, n, nm, checked);
}

static int h_ok(void *ud, char *err, size_t len)
{
	return 0;
}

START_TEST(test_published_match_table)
{
	struct emg_muscles *m = map3();
	struct emg_osc_params p = { .max_subscribers = 4, .default_lease_s = 10, .max_lease_s = 60,
				    .rate_limit = 1000, .rate_burst = 1000 };
	struct emg_osc_handlers h = { .analytics_reset = h_ok };
	struct emg_osc *o;
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(5000) };
	union {
		struct emg_out r;
		unsigned char b[sizeof(struct emg_out) + 3 * sizeof(struct emg_out_muscle)];
	} u;
	struct emg_analytics_order ord;
	struct emg_analytics_rep rep;
	static const char *const ctl[] = { "/emgd/subscribe", "/emgd/ping", "/emgd/status",
					   "/emgd/stats", "/emgd/latency", "/emgd/analytics/reset",
					   "/emgd/marker", "/emgd/nope", "/emgd/unsubscribe" };
	unsigned checked = 0;

	inet_pton(AF_INET, "127.0.0.1", &from.sin_addr);
	ck_assert_int_eq(emg_osc_new(&o, &p, &h), 0);
	emg_osc_set_sender(o, cap_send, NULL);
	ck_assert_int_eq(emg_osc_set_muscles(o, m), 0);
	ncap = 0;
	/* replies (and errors) to control requests without arguments */
	for (unsigned i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
		unsigned char req[64] = { 0 };
		size_t n = strlen(ctl[i]);
		memcpy(req, ctl[i], n);
		n = (n + 4) & ~(size_t)3;
		memcpy(req + n, ",\0\0\0", 4);
		emg_osc_handle(o, req, n + 4, (struct sockaddr *)&from, sizeof(from), 1000);
		if (i == 0)
			ck_assert_uint_eq(emg_osc_subscribers(o), 1);
	}
	/* subscribe again for the stream */
	{
		unsigned char req[] = "/emgd/subscribe\0,\0\0\0";
		emg_osc_handle(o, req, 20, (struct sockaddr *)&from, sizeof(from), 2000);
	}
	memset(&u, 0, sizeof(u));
	u.r.type = EMG_OUT_METRICS;
	u.r.nmuscles = 3;
	u.r.m[0].level = 0.5f; /* one calibrated muscle: /level too */
	u.r.m[1].level = -1;
	u.r.m[2].level = -1;
	emg_osc_publish_metrics(o, &u.r);
	u.r.type = EMG_OUT_ONSET;
	emg_osc_publish_event(o, &u.r, 0);
	u.r.type = EMG_OUT_OFFSET;
	emg_osc_publish_event(o, &u.r, 0);
	{
		struct emg_osc_status st = { "streaming", 2000, 3, 0 };
		emg_osc_publish_status(o, &st);
	}
	emg_osc_publish_calibrated(o, "rest", "glute_max_l", 3.0f, 1);
	memset(&ord, 0, sizeof(ord));
	ord.group = 7;
	ord.first = 2;
	ord.nmuscles = 3;
	ord.lag_ms[0] = 40;
	ord.lag_ms[1] = -1;
	ord.lag_ms[2] = 0;
	ord.npairs = 1;
	ord.pair[0].a = 0;
	ord.pair[0].b = 2;
	ord.pair[0].lag_ms = 40;
	emg_osc_publish_order(o, &ord);
	memset(&rep, 0, sizeof(rep));
	rep.muscle = 1;
	rep.rep = 3;
	emg_osc_publish_rep(o, &rep);
	rep.calibrated = 1;
	emg_osc_publish_rep(o, &rep);

	for (unsigned i = 0; i < ncap; i++)
		check_packet(cap_buf[i], cap_len[i], 3, &checked);
	/* 9 replies + subscribed, 3 x (rms active) + level + levels + frame, onset, offset,
	 * status, calibrated, order + 2 lags + pair, 2 reps */
	ck_assert_uint_eq(checked, 9 + 1 + 9 + 2 + 2 + 4 + 2);
	emg_osc_free(o);
	emg_muscles_free(m);
}
END_TEST

static void tap_to_oscquery(void *ud, const void *pkt, size_t len)
{
	emg_oscquery_publish(ud, pkt, len);
}

/* VALUE: the last message the publisher sent to a path, as JSON; kept over a reload that leaves the node as it was. */
START_TEST(test_values)
{
	struct emg_muscles *m = map3(), *m2;
	struct emg_oscquery_params qp = { .http = { "127.0.0.1", 0 }, .osc = { "127.0.0.1", 9000 } };
	struct emg_osc_params p = { .max_subscribers = 4, .default_lease_s = 10, .max_lease_s = 60,
				    .rate_limit = 1000, .rate_burst = 1000 };
	struct emg_oscquery *q;
	struct emg_osc *o;
	union {
		struct emg_out r;
		unsigned char b[sizeof(struct emg_out) + 3 * sizeof(struct emg_out_muscle)];
	} u;
	struct emg_osc_status st = { "recording", 2000, 3, 7 };
	char *body;

	ck_assert_int_eq(emg_oscquery_new_offline(&q, &qp, m), 0);
	ck_assert_int_eq(emg_osc_new(&o, &p, NULL), 0);
	ck_assert_int_eq(emg_osc_set_muscles(o, m), 0);
	emg_osc_set_tap(o, tap_to_oscquery, q);
	ck_assert_int_eq(answer(q, "GET", "/emg/glute_max_l/rms?VALUE", &body), 204); /* nothing sent yet */
	free(body);
	memset(&u, 0, sizeof(u));
	u.r.type = EMG_OUT_METRICS;
	u.r.nmuscles = 3;
	u.r.tick = 41;
	u.r.m[0].rms = 12.5f;
	u.r.m[0].level = 0.25f;
	u.r.m[0].active = 1;
	u.r.m[1].rms = 3.0f;
	u.r.m[1].level = -1;
	u.r.m[2].level = -1;
	emg_osc_publish_metrics(o, &u.r);
	emg_osc_publish_status(o, &st);
	ck_assert_int_eq(answer(q, "GET", "/emg/glute_max_l/rms?VALUE", &body), 200);
	ck_assert_str_eq(body, "{\"VALUE\":[12.5]}");
	free(body);
	ck_assert_int_eq(answer(q, "GET", "/emg/levels?VALUE", &body), 200);
	ck_assert_str_eq(body, "{\"VALUE\":[0.25,-1,-1]}");
	free(body);
	ck_assert_int_eq(answer(q, "GET", "/emg/frame?VALUE", &body), 200);
	ck_assert_str_eq(body, "{\"VALUE\":[41,0]}");
	free(body);
	ck_assert_int_eq(answer(q, "GET", "/emgd/status?VALUE", &body), 200);
	ck_assert_str_eq(body, "{\"VALUE\":[\"recording\",2000,3,7]}");
	free(body);
	ck_assert_int_eq(answer(q, "GET", "/emg/order?VALUE", &body), 204); /* never sent */
	free(body);
	ck_assert_int_eq(answer(q, "GET", "/emg?VALUE", &body), 204);        /* a container */
	free(body);
	/* the tree: VALUE inside each node that has one, still valid JSON */
	ck_assert_int_eq(answer(q, "GET", "/", &body), 200);
	ck_assert_msg(json_valid(body), "%.300s", body);
	ck_assert_ptr_nonnull(strstr(body, "\"FULL_PATH\":\"/emg/glute_max_l/rms\""));
	ck_assert_ptr_nonnull(strstr(body, ",\"VALUE\":[12.5]}"));
	ck_assert_ptr_nonnull(strstr(body, ",\"VALUE\":[\"recording\",2000,3,7]}"));
	free(body);
	ck_assert_int_eq(answer(q, "GET", "/emg/glute_max_l", &body), 200);
	ck_assert_msg(json_valid(body), "%s", body);
	ck_assert_ptr_nonnull(strstr(body, "\"VALUE\":[1]}")); /* active */
	ck_assert_ptr_null(strstr(body, "[3]"));                  /* glute_max_r's rms is not here */
	free(body);
	/* a reload that adds a muscle: unchanged nodes keep their value, /emg/levels (now ffff) not */
	m2 = map3();
	ck_assert_int_eq(emg_muscles_add(m2, "hip_flex_l", 5, EMG_SIDE_LEFT, ""), 0);
	ck_assert_int_eq(emg_oscquery_set_muscles(q, m2), 0);
	ck_assert_int_eq(answer(q, "GET", "/emg/glute_max_l/rms?VALUE", &body), 200);
	ck_assert_str_eq(body, "{\"VALUE\":[12.5]}");
	free(body);
	ck_assert_int_eq(answer(q, "GET", "/emg/levels?VALUE", &body), 204);
	free(body);
	emg_osc_free(o);
	emg_oscquery_free(q);
	emg_muscles_free(m);
	emg_muscles_free(m2);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("oscquery");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_table_consistent);
	tcase_add_test(tc, test_namespace_json);
	tcase_add_test(tc, test_host_info);
	tcase_add_test(tc, test_published_match_table);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_http);
	tcase_add_test(tc, test_answer_decoding);
	tcase_add_test(tc, test_http_allow);
	tcase_add_test(tc, test_www);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(suite());
}
