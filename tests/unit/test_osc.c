/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for emg_osc: control, subscriptions, source checks and publishing.
 *
 * Output is captured with emg_osc_set_sender() and decoded with liblo (messages) and a
 * hand-written bundle walker; input goes straight into emg_osc_handle() with fabricated
 * source addresses and a fake clock.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <lo/lo_lowlevel.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "muscles.h"
#include "osc.h"
#include "pipeline.h"
#include "testutil.h"

#define SEC 1000000000ull
#define MAXPKT 512

/* ---- capture --------------------------------------------------------- */

struct pkt {
	unsigned char b[2048];
	size_t n;
	struct sockaddr_storage to;
	socklen_t tolen;
};

static struct pkt *pkts;
static unsigned npkts;
static int send_result; /* 0: succeed, else returned as an error */

static int cap_send(void *ud, const void *buf, size_t len, const struct sockaddr *to,
		    socklen_t tolen)
{
	(void)ud;
	ck_assert_uint_le(len, sizeof(pkts[0].b));
	ck_assert_uint_lt(npkts, MAXPKT);
	if (send_result)
		return send_result;
	memcpy(pkts[npkts].b, buf, len);
	pkts[npkts].n = len;
	memcpy(&pkts[npkts].to, to, tolen);
	pkts[npkts].tolen = tolen;
	npkts++;
	return (int)len;
}

/* ---- handlers -------------------------------------------------------- */

struct calls {
	int rest, mvc, marker, rec_start, rec_stop;
	double seconds;
	char muscle[64], text[64];
	int fail; /* make handlers fail with this errno and a message */
};

static struct calls calls;

static int h_rest(void *ud, double seconds, char *err, size_t errlen)
{
	calls.rest++;
	calls.seconds = seconds;
	if (calls.fail) {
		snprintf(err, errlen, "already calibrating");
		return -calls.fail;
	}
	return 0;
}

static int h_mvc(void *ud, const char *muscle, double seconds, char *err, size_t errlen)
{
	calls.mvc++;
	calls.seconds = seconds;
	snprintf(calls.muscle, sizeof(calls.muscle), "%s", muscle);
	if (calls.fail) {
		snprintf(err, errlen, "no such muscle: %s", muscle);
		return -calls.fail;
	}
	return 0;
}

static int h_marker(void *ud, const char *text, char *err, size_t errlen)
{
	calls.marker++;
	snprintf(calls.text, sizeof(calls.text), "%s", text);
	return calls.fail ? -calls.fail : 0; /* no message: strerror is used */
}

static void h_status(void *ud, struct emg_osc_status *st)
{
	st->state = "calibrating";
	st->rate = 2000;
	st->channels = 8;
	st->overruns = 3;
}

static const struct emg_osc_handlers handlers = {
	.calibrate_rest = h_rest,
	.calibrate_mvc = h_mvc,
	.marker = h_marker,
	.status = h_status,
};

/* ---- fixtures -------------------------------------------------------- */

static struct emg_osc_params params(void)
{
	struct emg_osc_params p = {
		.max_subscribers = 64,
		.default_lease_s = 10,
		.max_lease_s = 300,
		.rate_limit = 1000,
		.rate_burst = 1000,
	};
	return p;
}

static struct emg_osc *make(const struct emg_osc_params *p)
{
	struct emg_osc *o;
	struct emg_muscles *m;

	ck_assert_int_eq(emg_osc_new(&o, p, &handlers), 0);
	emg_osc_set_sender(o, cap_send, NULL);
	ck_assert_int_eq(emg_muscles_new_default(&m), 0);
	ck_assert_int_eq(emg_osc_set_muscles(o, m), 0);
	emg_muscles_free(m);
	return o;
}

static void setup(void)
{
	pkts = calloc(MAXPKT, sizeof(*pkts));
	npkts = 0;
	send_result = 0;
	memset(&calls, 0, sizeof(calls));
}

static void teardown(void)
{
	free(pkts);
	pkts = NULL;
}

static struct sockaddr_storage v4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	return ss;
}

static socklen_t sslen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* ---- building input -------------------------------------------------- */

/* Serialise an OSC message; types: i int, f double->float, s string, d double, h int64. */
static size_t vbuild(unsigned char *out, size_t cap, const char *path, const char *types,
		     va_list ap)
{
	lo_message m = lo_message_new();
	size_t n;

	for (const char *t = types; *t; t++)
		switch (*t) {
		case 'i':
			lo_message_add_int32(m, va_arg(ap, int));
			break;
		case 'f':
			lo_message_add_float(m, (float)va_arg(ap, double));
			break;
		case 'd':
			lo_message_add_double(m, va_arg(ap, double));
			break;
		case 'h':
			lo_message_add_int64(m, va_arg(ap, int64_t));
			break;
		case 's':
			lo_message_add_string(m, va_arg(ap, const char *));
			break;
		default:
			ck_abort_msg("bad test type %c", *t);
		}
	n = lo_message_length(m, path);
	ck_assert_uint_le(n, cap);
	lo_message_serialise(m, path, out, &n);
	lo_message_free(m);
	return n;
}

static size_t build(unsigned char *out, size_t cap, const char *path, const char *types, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, types);
	n = vbuild(out, cap, path, types, ap);
	va_end(ap);
	return n;
}

/* Send one control message from `from` at time now. */
static void send_msg(struct emg_osc *o, const struct sockaddr_storage *from, uint64_t now,
		     const char *path, const char *types, ...)
{
	unsigned char buf[1024];
	va_list ap;
	size_t n;

	va_start(ap, types);
	n = vbuild(buf, sizeof(buf), path, types, ap);
	va_end(ap);
	emg_osc_handle(o, buf, n, (const struct sockaddr *)from, sslen(from), now);
}

/* Wrap elements into a bundle: elems[i] of lens[i] bytes. */
static size_t bundle(unsigned char *out, const unsigned char *const *elems, const size_t *lens,
		     unsigned n)
{
	size_t off = 16;
	uint32_t be;

	memcpy(out, "#bundle\0", 8);
	memset(out + 8, 0, 8);
	out[15] = 1;
	for (unsigned i = 0; i < n; i++) {
		be = htonl((uint32_t)lens[i]);
		memcpy(out + off, &be, 4);
		memcpy(out + off + 4, elems[i], lens[i]);
		off += 4 + lens[i];
	}
	return off;
}

/* ---- decoding output ------------------------------------------------- */

/* liblo's argument pointers are only 4-byte aligned: read them through memcpy. */
static int32_t arg_i(lo_message m, int k)
{
	int32_t v;

	memcpy(&v, lo_message_get_argv(m)[k], sizeof(v));
	return v;
}

static float arg_f(lo_message m, int k)
{
	float v;

	memcpy(&v, lo_message_get_argv(m)[k], sizeof(v));
	return v;
}

static const char *arg_s(lo_message m, int k)
{
	return (const char *)lo_message_get_argv(m)[k];
}

/* Decode a message, check its address and type tags; the caller frees it. */
static lo_message dec(const unsigned char *b, size_t n, const char *path, const char *types)
{
	int res = 0;
	lo_message m = lo_message_deserialise((void *)b, n, &res);
	const char *p;

	ck_assert_msg(m != NULL, "reply does not decode (liblo error %d)", res);
	p = lo_get_path((void *)b, (ssize_t)n);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, path);
	ck_assert_str_eq(lo_message_get_types(m), types);
	return m;
}

static lo_message dec_pkt(unsigned i, const char *path, const char *types)
{
	ck_assert_uint_lt(i, npkts);
	return dec(pkts[i].b, pkts[i].n, path, types);
}

/* Check that packet i went to `to`. */
static void ck_dest(unsigned i, const struct sockaddr_storage *to)
{
	ck_assert_uint_lt(i, npkts);
	ck_assert_uint_eq(pkts[i].tolen, sslen(to));
	ck_assert_msg(!memcmp(&pkts[i].to, to, sslen(to)), "packet %u sent to the wrong address", i);
}

static void ck_error_reply(unsigned i, const char *addr, const char *text)
{
	lo_message m = dec_pkt(i, "/emgd/error", "ss");

	ck_assert_str_eq(arg_s(m, 0), addr);
	ck_assert_msg(strstr(arg_s(m, 1), text) != NULL, "error '%s' lacks '%s'", arg_s(m, 1), text);
	lo_message_free(m);
}

/* Lease in the /emgd/subscribed reply of packet i. */
static int subscribed_lease(unsigned i)
{
	lo_message m = dec_pkt(i, "/emgd/subscribed", "i");
	int v = arg_i(m, 0);

	lo_message_free(m);
	return v;
}

struct walked {
	unsigned n;
	size_t off[256], len[256]; /* element offsets and sizes within the bundle */
};

/* Walk a bundle we produced: header, immediate timetag, 4-aligned elements that fill it exactly. */
static void walk(const struct pkt *p, struct walked *w)
{
	size_t off = 16;
	uint32_t sz;

	ck_assert_uint_ge(p->n, 16);
	ck_assert_int_eq(memcmp(p->b, "#bundle\0", 8), 0);
	ck_assert_int_eq(memcmp(p->b + 8, "\0\0\0\0\0\0\0\1", 8), 0);
	w->n = 0;
	while (off < p->n) {
		ck_assert_uint_ge(p->n - off, 4);
		memcpy(&sz, p->b + off, 4);
		sz = ntohl(sz);
		off += 4;
		ck_assert_uint_gt(sz, 0);
		ck_assert_uint_eq(sz % 4, 0);
		ck_assert_uint_le(sz, p->n - off);
		ck_assert_uint_lt(w->n, 256);
		w->off[w->n] = off;
		w->len[w->n] = sz;
		w->n++;
		off += sz;
	}
	ck_assert_uint_eq(off, p->n);
}

static struct emg_osc_stats stats(const struct emg_osc *o)
{
	struct emg_osc_stats st;

	emg_osc_stats(o, &st);
	return st;
}

static struct emg_out *metrics_rec(unsigned n)
{
	struct emg_out *r = calloc(1, sizeof(*r) + n * sizeof(struct emg_out_muscle));

	r->type = EMG_OUT_METRICS;
	r->nmuscles = n;
	return r;
}

/* ---- subscriptions --------------------------------------------------- */

START_TEST(test_subscribe_lease)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage a = v4("127.0.0.1", 5000), b = v6("::1", 5001);

	send_msg(o, &a, 0, "/emgd/subscribe", "");
	ck_assert_uint_eq(npkts, 1);
	ck_assert_int_eq(subscribed_lease(0), 10);
	ck_dest(0, &a);
	ck_assert_uint_eq(emg_osc_subscribers(o), 1);
	/* renewing is not a second subscription */
	send_msg(o, &a, 1 * SEC, "/emgd/subscribe", "i", 20);
	ck_assert_int_eq(subscribed_lease(1), 20);
	ck_assert_uint_eq(emg_osc_subscribers(o), 1);
	/* clamp to max_lease; a float lease as Pure Data sends it; int64 and double too */
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "i", 100000);
	ck_assert_int_eq(subscribed_lease(2), 300);
	ck_dest(2, &b);
	ck_assert_uint_eq(emg_osc_subscribers(o), 2);
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "f", 30.0);
	ck_assert_int_eq(subscribed_lease(3), 30);
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "h", (int64_t)45);
	ck_assert_int_eq(subscribed_lease(4), 45);
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "d", 1e12);
	ck_assert_int_eq(subscribed_lease(5), 300);
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "f", 40.0);
	ck_assert_int_eq(subscribed_lease(6), 40);
	/* bad leases: error, no change */
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "i", 0);
	ck_error_reply(7, "/emgd/subscribe", "lease");
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "i", -5);
	ck_error_reply(8, "/emgd/subscribe", "lease");
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "s", "ten");
	ck_error_reply(9, "/emgd/subscribe", "lease");
	send_msg(o, &b, 1 * SEC, "/emgd/subscribe", "f", (double)NAN);
	ck_error_reply(10, "/emgd/subscribe", "lease");
	ck_assert_uint_eq(npkts, 11);

	/* a: renewed at 1 s for 20 s -> 21 s; b: 40 s from 1 s -> 41 s */
	emg_osc_expire(o, 21 * SEC - 1);
	ck_assert_uint_eq(emg_osc_subscribers(o), 2);
	emg_osc_expire(o, 21 * SEC);
	ck_assert_uint_eq(emg_osc_subscribers(o), 1);
	emg_osc_expire(o, 41 * SEC - 1);
	ck_assert_uint_eq(emg_osc_subscribers(o), 1);
	emg_osc_expire(o, 41 * SEC);
	ck_assert_uint_eq(emg_osc_subscribers(o), 0);
	ck_assert_uint_eq(npkts, 11); /* expiry sends nothing */
	emg_osc_free(o);
}
END_TEST

START_TEST(test_unsubscribe)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage a = v4("127.0.0.1", 5000), a2 = v4("127.0.0.1", 5002),
				b = v4("127.0.0.2", 5000);
	struct emg_out *r = metrics_rec(6);

	send_msg(o, &a, 0, "/emgd/subscribe", "");
	send_msg(o, &a2, 0, "/emgd/subscribe", "");
	send_msg(o, &b, 0, "/emgd/subscribe", "");
	ck_assert_uint_eq(emg_osc_subscribers(o), 3);
	npkts = 0;
	send_msg(o, &a2, 0, "/emgd/unsubscribe", "");
	ck_assert_uint_eq(npkts, 1);
	lo_message_free(dec_pkt(0, "/emgd/unsubscribed", ""));
	ck_dest(0, &a2);
	ck_assert_uint_eq(emg_osc_subscribers(o), 2);
	/* unsubscribing when not subscribed is harmless */
	send_msg(o, &a2, 0, "/emgd/unsubscribe", "");
	ck_assert_uint_eq(emg_osc_subscribers(o), 2);
	/* the others still get the stream, a2 does not */
	npkts = 0;
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(npkts, 2);
	ck_dest(0, &a);
	ck_dest(1, &b);
	free(r);
	emg_osc_free(o);
}
END_TEST

START_TEST(test_subscriber_cap)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage s;
	struct emg_osc_stats st;

	p.max_subscribers = 3;
	o = make(&p);
	for (unsigned i = 0; i < 3; i++) {
		s = v4("127.0.0.1", 6000 + i);
		send_msg(o, &s, 0, "/emgd/subscribe", "");
	}
	ck_assert_uint_eq(emg_osc_subscribers(o), 3);
	s = v4("127.0.0.1", 7000);
	send_msg(o, &s, 0, "/emgd/subscribe", "");
	ck_assert_uint_eq(npkts, 4);
	ck_error_reply(3, "/emgd/subscribe", "subscriber limit reached");
	ck_dest(3, &s);
	ck_assert_uint_eq(emg_osc_subscribers(o), 3);
	st = stats(o);
	ck_assert_uint_eq(st.rejected, 1);
	/* a current subscriber can still renew */
	s = v4("127.0.0.1", 6001);
	send_msg(o, &s, 0, "/emgd/subscribe", "");
	ck_assert_int_eq(subscribed_lease(4), 10);
	/* after one leaves, the newcomer fits */
	send_msg(o, &s, 0, "/emgd/unsubscribe", "");
	s = v4("127.0.0.1", 7000);
	send_msg(o, &s, 0, "/emgd/subscribe", "");
	ck_assert_int_eq(subscribed_lease(6), 10);
	ck_assert_uint_eq(emg_osc_subscribers(o), 3);
	/* a lower cap on reload drops the excess */
	p.max_subscribers = 1;
	emg_osc_set_params(o, &p);
	ck_assert_uint_eq(emg_osc_subscribers(o), 1);
	s = v4("127.0.0.1", 7001);
	send_msg(o, &s, 0, "/emgd/subscribe", "");
	ck_error_reply(7, "/emgd/subscribe", "subscriber limit reached");
	ck_assert_uint_eq(stats(o).rejected, 2);
	emg_osc_free(o);
}
END_TEST

/* ---- rate limit ------------------------------------------------------ */

static unsigned pongs_since(unsigned first)
{
	unsigned n = 0;

	for (unsigned i = first; i < npkts; i++)
		if (!strcmp((const char *)pkts[i].b, "/emgd/pong"))
			n++;
	return n;
}

START_TEST(test_rate_limit_refill)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage a = v4("127.0.0.1", 5000);

	p.rate_limit = 2;
	p.rate_burst = 5;
	o = make(&p);
	for (unsigned i = 0; i < 8; i++)
		send_msg(o, &a, 100 * SEC, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(0), 5);
	ck_assert_uint_eq(stats(o).rate_limited, 3);
	ck_assert_uint_eq(stats(o).received, 8);
	/* 2 packets/s: after 0.4 s nothing, after 0.6 s one more */
	send_msg(o, &a, 100 * SEC + 400000000ull, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(0), 5);
	send_msg(o, &a, 100 * SEC + 600000000ull, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(0), 6);
	send_msg(o, &a, 100 * SEC + 600000000ull, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(0), 6);
	/* a long pause refills to the burst, not beyond */
	for (unsigned i = 0; i < 10; i++)
		send_msg(o, &a, 1000 * SEC, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(0), 11);
	/* a clock that goes backwards does not mint tokens */
	for (unsigned i = 0; i < 3; i++)
		send_msg(o, &a, 10 * SEC, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(0), 11);
	/* another host has its own budget */
	a = v4("127.0.0.2", 5000);
	send_msg(o, &a, 1000 * SEC, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(0), 12);
	emg_osc_free(o);
}
END_TEST

START_TEST(test_rate_limit_flood_same_host)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage sub = v4("127.0.0.1", 5000), s;
	unsigned base;

	p.rate_limit = 1;
	p.rate_burst = 5;
	o = make(&p);
	send_msg(o, &sub, 0, "/emgd/subscribe", "i", 60);
	ck_assert_int_eq(subscribed_lease(0), 60);
	/* 500 ports of the same host: one budget between them */
	for (unsigned i = 0; i < 500; i++) {
		s = v4("127.0.0.1", 10000 + i);
		send_msg(o, &s, SEC / 2, "/emgd/ping", "");
	}
	ck_assert_uint_eq(pongs_since(1), 4); /* 5 minus the subscribe */
	ck_assert_uint_eq(stats(o).rate_limited, 496);
	/* same flood over IPv4-mapped IPv6: the same host, the same (empty) bucket */
	s = v6("::ffff:127.0.0.1", 10000);
	base = npkts;
	send_msg(o, &s, SEC / 2, "/emgd/ping", "");
	ck_assert_uint_eq(pongs_since(base), 0);
	/* the subscriber shares its host's budget: its own host's flood limits it too */
	base = npkts;
	send_msg(o, &sub, SEC / 2, "/emgd/ping", "");
	ck_assert_uint_eq(npkts, base);
	/* a second later the host earned one token, whichever of its ports spends it */
	send_msg(o, &sub, SEC + SEC / 2, "/emgd/subscribe", "i", 60);
	send_msg(o, &sub, SEC + SEC / 2, "/emgd/ping", "");
	ck_assert_uint_eq(npkts, base + 1);
	ck_assert_int_eq(subscribed_lease(base), 60);
	emg_osc_free(o);
}
END_TEST

/* Regression (issue 16 #5): every subscribed port of a host got its own budget,
 * seeded from the host's without debiting it - 64 ports, 1008 of 1024 pings answered. */
START_TEST(test_rate_limit_subscribed_ports)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage s;
	unsigned answered;

	p.rate_limit = 50;
	p.rate_burst = 100;
	p.max_per_host = 0;
	o = make(&p);
	for (unsigned i = 0; i < 64; i++) {
		s = v4("127.0.0.1", 20000 + i);
		send_msg(o, &s, SEC, "/emgd/subscribe", "i", 300);
	}
	ck_assert_uint_eq(emg_osc_subscribers(o), 64);
	for (unsigned round = 0; round < 16; round++)
		for (unsigned i = 0; i < 64; i++) {
			s = v4("127.0.0.1", 20000 + i);
			send_msg(o, &s, SEC, "/emgd/ping", "");
		}
	answered = pongs_since(0);
	/* one burst for the host: 100 minus the 64 subscribes */
	ck_assert_uint_eq(answered, 36);
	/* sustained: 1 s later the host earned 50 tokens, not 64 x 50 */
	for (unsigned round = 0; round < 16; round++)
		for (unsigned i = 0; i < 64; i++) {
			s = v4("127.0.0.1", 20000 + i);
			send_msg(o, &s, 2 * SEC, "/emgd/ping", "");
		}
	ck_assert_uint_eq(pongs_since(0) - answered, 50);
	/* expiry and re-subscription hand nothing back */
	emg_osc_expire(o, 400 * SEC);
	ck_assert_uint_eq(emg_osc_subscribers(o), 0);
	emg_osc_free(o);
}
END_TEST

/* Regression (issue 16 #6): one host could hold every subscriber slot. */
START_TEST(test_subscriber_per_host)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage s;

	p.max_per_host = 4;
	o = make(&p);
	for (unsigned i = 0; i < 10; i++) {
		s = v4("127.0.0.1", 30000 + i);
		send_msg(o, &s, SEC, "/emgd/subscribe", "i", 300);
	}
	ck_assert_uint_eq(emg_osc_subscribers(o), 4);
	ck_assert_uint_eq(stats(o).rejected, 6);
	ck_error_reply(4, "/emgd/subscribe",
		       "subscriber limit per host reached (max_subscribers_per_host = 4)");
	s = v4("127.0.0.1", 30004);
	ck_dest(4, &s);
	/* all of loopback is one host: another 127/8 address or ::1 does not add slots */
	s = v4("127.0.0.2", 30000);
	send_msg(o, &s, SEC, "/emgd/subscribe", "");
	s = v6("::1", 30000);
	send_msg(o, &s, SEC, "/emgd/subscribe", "");
	ck_assert_uint_eq(emg_osc_subscribers(o), 4);
	/* renewing a held subscription is not a new one */
	s = v4("127.0.0.1", 30001);
	send_msg(o, &s, SEC, "/emgd/subscribe", "i", 60);
	ck_assert_int_eq(subscribed_lease(npkts - 1), 60);
	/* a lower limit on reload drops the excess */
	p.max_per_host = 2;
	emg_osc_set_params(o, &p);
	ck_assert_uint_eq(emg_osc_subscribers(o), 2);
	emg_osc_free(o);
}
END_TEST

/* Regression (tests/fuzz/fuzz_osc.c): a bundle pays one token per message. */
START_TEST(test_rate_limit_bundle)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage a = v4("127.0.0.1", 5000);
	static unsigned char ping[64], buf[65536];
	const unsigned char *e[1000];
	size_t l[1000], pn = build(ping, sizeof(ping), "/emgd/ping", "");

	p.rate_limit = 1;
	p.rate_burst = 10;
	o = make(&p);
	for (unsigned i = 0; i < 1000; i++)
		e[i] = ping, l[i] = pn;
	size_t n = bundle(buf, e, l, 1000);
	emg_osc_handle(o, buf, n, (const struct sockaddr *)&a, sslen(&a), SEC);
	ck_assert_uint_eq(pongs_since(0), 10);
	ck_assert_uint_eq(stats(o).rate_limited, 1);
	emg_osc_free(o);
}
END_TEST

/* Regression (tests/fuzz/fuzz_osc.c): unsubscribe + subscribe does not mint a fresh budget. */
START_TEST(test_rate_limit_resubscribe)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage a = v4("127.0.0.1", 5000);

	p.rate_limit = 1;
	p.rate_burst = 10;
	o = make(&p);
	for (unsigned cycle = 0; cycle < 20; cycle++) {
		send_msg(o, &a, SEC, "/emgd/subscribe", "i", 60);
		for (unsigned i = 0; i < 20; i++)
			send_msg(o, &a, SEC, "/emgd/ping", "");
		send_msg(o, &a, SEC, "/emgd/unsubscribe", "");
	}
	/* one burst in all, whatever the cycling */
	ck_assert_uint_le(npkts, 10);
	emg_osc_free(o);
}
END_TEST

/* ---- source checks --------------------------------------------------- */

START_TEST(test_allow_list)
{
	struct emg_cidr allow[2];
	struct emg_osc_params p = params();
	struct emg_osc *o;
	static const struct {
		const char *ip;
		int ok;
	} cases[] = {
		{ "127.0.0.1", 1 },        { "127.1.2.3", 1 },          { "::1", 1 },
		{ "::ffff:127.0.0.1", 1 }, { "10.1.2.3", 1 },           { "::ffff:10.1.2.3", 1 },
		{ "fd00::5", 1 },          { "192.168.1.5", 0 },        { "::ffff:192.168.1.5", 0 },
		{ "2001:db8::1", 0 },      { "11.0.0.1", 0 },           { "::", 0 },
		{ "0.0.0.0", 0 },          { "fe80::1", 0 },            { "::10.1.2.3", 0 },
	};
	unsigned denied = 0;

	ck_assert_int_eq(emg_cidr_parse("10.0.0.0/8", &allow[0]), 0);
	ck_assert_int_eq(emg_cidr_parse("fd00::/8", &allow[1]), 0);
	p.allow = allow;
	p.nallow = 2;
	o = make(&p);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage s =
			strchr(cases[i].ip, ':') ? v6(cases[i].ip, 4000) : v4(cases[i].ip, 4000);
		unsigned before = npkts;
		send_msg(o, &s, 0, "/emgd/subscribe", "");
		if (cases[i].ok) {
			ck_assert_msg(npkts == before + 1, "%s should be allowed", cases[i].ip);
			ck_assert_int_eq(subscribed_lease(before), 10);
			ck_dest(before, &s);
		} else {
			denied++;
			ck_assert_msg(npkts == before, "%s got a reply", cases[i].ip);
		}
		ck_assert_uint_eq(stats(o).denied, denied);
	}
	ck_assert_uint_eq(emg_osc_subscribers(o), 7);
	/* without an allow list only loopback is served */
	p.nallow = 0;
	emg_osc_set_params(o, &p);
	{
		struct sockaddr_storage s = v4("10.1.2.3", 4001);
		unsigned before = npkts;
		send_msg(o, &s, 0, "/emgd/ping", "");
		ck_assert_uint_eq(npkts, before);
		ck_assert_uint_eq(stats(o).denied, denied + 1);
	}
	emg_osc_free(o);
}
END_TEST

/* Nothing at all goes back to a denied source, whatever it sends: no reflection. */
START_TEST(test_denied_no_reply)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage s = v4("198.51.100.7", 53);
	unsigned char buf[256];
	size_t n;
	struct emg_osc_stats st;

	send_msg(o, &s, 0, "/emgd/subscribe", "");
	send_msg(o, &s, 0, "/emgd/status", "");
	send_msg(o, &s, 0, "/emgd/nonsense", "");
	n = build(buf, sizeof(buf), "/emgd/ping", "");
	emg_osc_handle(o, buf, n - 1, (struct sockaddr *)&s, sslen(&s), 0);
	emg_osc_handle(o, "garbage!", 8, (struct sockaddr *)&s, sslen(&s), 0);
	st = stats(o);
	ck_assert_uint_eq(npkts, 0);
	ck_assert_uint_eq(st.bytes_out, 0);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_uint_eq(st.denied, 5);
	ck_assert_uint_eq(st.received, 5);
	ck_assert_uint_gt(st.bytes_in, 0);
	ck_assert_uint_eq(st.handled, 0);
	ck_assert_uint_eq(emg_osc_subscribers(o), 0);
	emg_osc_free(o);
}
END_TEST

/* ---- malformed input ------------------------------------------------- */

static struct test_rng rng = TEST_RNG_SEEDED(88172645463325252ull);

static uint32_t rnd(void)
{
	return (uint32_t)(test_rng_u64(&rng) >> 32);
}

START_TEST(test_malformed)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage s = v4("127.0.0.1", 5000);
	const struct sockaddr *sa = (const struct sockaddr *)&s;
	socklen_t sl = sslen(&s);
	unsigned char msg[256], buf[2048], deep[1024];
	size_t n, mlen;
	unsigned expect = 0;
	struct emg_osc_stats st;

	mlen = build(msg, sizeof(msg), "/emgd/ping", "");
	/* zero length, NULL buffer, short, unaligned */
	emg_osc_handle(o, NULL, 0, sa, sl, 0), expect++;
	emg_osc_handle(o, msg, 0, sa, sl, 0), expect++;
	emg_osc_handle(o, msg, 4, sa, sl, 0), expect++;
	emg_osc_handle(o, msg, mlen - 1, sa, sl, 0), expect++;
	emg_osc_handle(o, msg, mlen - 4, sa, sl, 0), expect++; /* truncated: type tag gone */
	/* a type tag without the comma, and an unknown type */
	memcpy(buf, "/emgd/ping\0\0x\0\0\0", 16);
	emg_osc_handle(o, buf, 16, sa, sl, 0), expect++;
	memcpy(buf, "/emgd/ping\0\0,Q\0\0", 16);
	emg_osc_handle(o, buf, 16, sa, sl, 0), expect++;
	/* an int argument promised but missing */
	memcpy(buf, "/emgd/subscribe\0,i\0\0", 20);
	emg_osc_handle(o, buf, 20, sa, sl, 0), expect++;
	/* a string argument without its terminator */
	memcpy(buf, "/emgd/marker\0\0\0\0,s\0\0abcd", 24);
	emg_osc_handle(o, buf, 24, sa, sl, 0), expect++;
	/* path not terminated within the packet */
	memset(buf, 'a', 64);
	buf[0] = '/';
	emg_osc_handle(o, buf, 64, sa, sl, 0), expect++;
	/* bundle element sizes: zero, unaligned, past the end, a size field cut short */
	{
		static const uint32_t bad_sizes[] = { 0, 3, 17, 0x7ffffff0, 0xfffffffc };
		for (unsigned k = 0; k < 5; k++) {
			const unsigned char *e[1] = { msg };
			size_t l[1] = { mlen };
			uint32_t be = htonl(bad_sizes[k]);
			n = bundle(buf, e, l, 1);
			memcpy(buf + 16, &be, 4);
			emg_osc_handle(o, buf, n, sa, sl, 0), expect++;
		}
		{
			const unsigned char *e[1] = { msg };
			size_t l[1] = { mlen };
			n = bundle(buf, e, l, 1);
			memset(buf + n, 0, 4); /* a zero-size element at the end */
			emg_osc_handle(o, buf, n + 4, sa, sl, 0), expect++;
		}
	}
	st = stats(o);
	ck_assert_uint_eq(st.malformed, expect);
	/* the valid ping in front of the zero-size element was answered; nothing else was */
	ck_assert_uint_eq(st.handled, 1);
	ck_assert_uint_eq(npkts, 1);
	lo_message_free(dec_pkt(0, "/emgd/pong", ""));
	npkts = 0;

	/* nesting: 4 levels of bundles are unpacked, a 5th is refused */
	{
		size_t dn = mlen;
		memcpy(deep, msg, mlen);
		for (unsigned level = 1; level <= 5; level++) {
			const unsigned char *e[1] = { deep };
			size_t l[1] = { dn };
			unsigned char tmp[1024];
			dn = bundle(tmp, e, l, 1);
			memcpy(deep, tmp, dn);
			emg_osc_handle(o, deep, dn, sa, sl, 0);
			if (level <= 4) {
				ck_assert_msg(npkts == 1, "ping at depth %u not answered", level);
				npkts = 0;
			} else {
				ck_assert_uint_eq(npkts, 0);
				ck_assert_uint_eq(stats(o).malformed, expect + 1);
			}
		}
	}
	/* a bundle of two pings gets two pongs */
	{
		const unsigned char *e[2] = { msg, msg };
		size_t l[2] = { mlen, mlen };
		n = bundle(buf, e, l, 2);
		emg_osc_handle(o, buf, n, sa, sl, 0);
		ck_assert_uint_eq(npkts, 2);
		/* an empty bundle is valid and says nothing */
		n = bundle(buf, NULL, NULL, 0);
		emg_osc_handle(o, buf, n, sa, sl, 0);
		ck_assert_uint_eq(npkts, 2);
	}
	/* a source that is neither IPv4 nor IPv6 */
	{
		struct sockaddr un = { .sa_family = AF_UNIX };
		uint64_t m = stats(o).malformed;
		emg_osc_handle(o, msg, mlen, &un, sizeof(un), 0);
		emg_osc_handle(o, msg, mlen, NULL, 0, 0);
		ck_assert_uint_eq(stats(o).malformed, m + 2);
		ck_assert_uint_eq(npkts, 2);
	}
	emg_osc_free(o);
}
END_TEST

/* Random bytes and random corruptions of valid packets: counted, never a crash, never a reply
 * to something that is not valid OSC. */
START_TEST(test_fuzz)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage s = v4("127.0.0.1", 5000);
	unsigned char seed[4][256], buf[1500];
	size_t seedlen[4], n;
	struct emg_osc_stats st;
	const unsigned N = 20000;

	p.rate_limit = 1e5;
	p.rate_burst = 100000;
	o = make(&p);
	/* pure noise first: nothing in it is OSC */
	for (unsigned k = 0; k < N; k++) {
		n = rnd() % sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)rnd();
		if (k & 1)
			buf[0] = '/';
		if (k % 7 == 0 && n > 16) /* (16 bytes would be a valid empty bundle) */
			memcpy(buf, "#bundle\0", 8);
		emg_osc_handle(o, buf, n, (struct sockaddr *)&s, sslen(&s), 0);
	}
	st = stats(o);
	ck_assert_uint_eq(st.received, N);
	ck_assert_uint_eq(st.malformed + st.unknown + st.handled, N);
	ck_assert_uint_eq(st.unknown + st.handled, 0);
	ck_assert_uint_eq(npkts, 0);

	/* mutations of valid requests */
	seedlen[0] = build(seed[0], 256, "/emgd/subscribe", "i", 30);
	seedlen[1] = build(seed[1], 256, "/emgd/calibrate/mvc", "sf", "glute_max_l", 3.0);
	seedlen[2] = build(seed[2], 256, "/emgd/marker", "s", "a marker text");
	{
		const unsigned char *e[2] = { seed[0], seed[2] };
		size_t l[2] = { seedlen[0], seedlen[2] };
		seedlen[3] = bundle(seed[3], e, l, 2);
	}
	for (unsigned k = 0; k < N; k++) {
		unsigned which = rnd() % 4;
		n = seedlen[which];
		memcpy(buf, seed[which], n);
		for (unsigned f = 0, flips = 1 + rnd() % 4; f < flips; f++)
			buf[rnd() % n] = (unsigned char)rnd();
		if (rnd() % 4 == 0)
			n = rnd() % (n + 1); /* truncate */
		npkts = 0;
		emg_osc_handle(o, buf, n, (struct sockaddr *)&s, sslen(&s), 0);
		for (unsigned i = 0; i < npkts; i++) {
			int res;
			lo_message m = lo_message_deserialise(pkts[i].b, pkts[i].n, &res);
			ck_assert_msg(m != NULL, "a reply that is not OSC");
			lo_message_free(m);
			ck_assert_uint_le(pkts[i].n, EMG_OSC_MAX_PACKET);
		}
	}
	st = stats(o);
	ck_assert_uint_eq(st.received, 2 * N);
	ck_assert_uint_gt(st.malformed, N);
	emg_osc_expire(o, UINT64_MAX);
	ck_assert_uint_eq(emg_osc_subscribers(o), 0);
	emg_osc_free(o);
}
END_TEST

/* ---- control messages ------------------------------------------------ */

START_TEST(test_status_ping_stats)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage a = v6("::1", 7777);
	lo_message m;

	send_msg(o, &a, 0, "/emgd/status", "");
	m = dec_pkt(0, "/emgd/status", "siii");
	ck_assert_str_eq(arg_s(m, 0), "calibrating");
	ck_assert_int_eq(arg_i(m, 1), 2000);
	ck_assert_int_eq(arg_i(m, 2), 8);
	ck_assert_int_eq(arg_i(m, 3), 3);
	lo_message_free(m);
	ck_dest(0, &a);

	send_msg(o, &a, 0, "/emgd/ping", "");
	lo_message_free(dec_pkt(1, "/emgd/pong", ""));

	send_msg(o, &a, 0, "/emgd/nope", "i", 1);
	ck_error_reply(2, "/emgd/nope", "unknown address");
	ck_assert_uint_eq(stats(o).unknown, 1);
	send_msg(o, &a, 0, "/emgd/status/", "");
	ck_error_reply(3, "/emgd/status/", "unknown address");
	send_msg(o, &a, 0, "/EMGD/PING", "");
	ck_error_reply(4, "/EMGD/PING", "unknown address");

	emg_osc_handle(o, "xx", 2, (struct sockaddr *)&a, sslen(&a), 0); /* malformed */
	send_msg(o, &a, 0, "/emgd/subscribe", "");
	send_msg(o, &a, 0, "/emgd/stats", "");
	m = dec_pkt(6, "/emgd/stats", "iiiiiiiiii");
	ck_assert_int_eq(arg_i(m, 0), 8); /* received, this one included */
	ck_assert_int_eq(arg_i(m, 1), 4); /* handled: status, ping, subscribe, stats */
	ck_assert_int_eq(arg_i(m, 2), 1); /* malformed */
	ck_assert_int_eq(arg_i(m, 3), 3); /* unknown */
	ck_assert_int_eq(arg_i(m, 4), 0);
	ck_assert_int_eq(arg_i(m, 5), 0);
	ck_assert_int_eq(arg_i(m, 6), 0);
	ck_assert_int_eq(arg_i(m, 7), 1); /* subscribers */
	lo_message_free(m);
	ck_assert_uint_eq(npkts, 7);
	ck_assert_uint_eq(stats(o).sent, 7);
	emg_osc_free(o);
}
END_TEST

START_TEST(test_status_without_callback)
{
	struct emg_osc_params p = params();
	struct emg_osc *o;
	struct sockaddr_storage a = v4("127.0.0.1", 7777);
	lo_message m;

	ck_assert_int_eq(emg_osc_new(&o, &p, NULL), 0);
	emg_osc_set_sender(o, cap_send, NULL);
	send_msg(o, &a, 0, "/emgd/status", "");
	m = dec_pkt(0, "/emgd/status", "siii");
	ck_assert_str_eq(arg_s(m, 0), "streaming");
	lo_message_free(m);
	/* no handlers: calibration and recording answer with an error, not a crash */
	send_msg(o, &a, 0, "/emgd/calibrate/rest", "");
	ck_error_reply(1, "/emgd/calibrate/rest", "usage");
	send_msg(o, &a, 0, "/emgd/record/start", "s", "x");
	ck_error_reply(2, "/emgd/record/start", "not available");
	send_msg(o, &a, 0, "/emgd/record/stop", "");
	ck_error_reply(3, "/emgd/record/stop", "not available");
	emg_osc_free(o);
}
END_TEST

START_TEST(test_calibrate)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage a = v4("127.0.0.1", 7777);
	lo_message m;

	send_msg(o, &a, 0, "/emgd/calibrate/mvc", "");
	ck_error_reply(0, "/emgd/calibrate/mvc", "usage: /emgd/calibrate/mvc s muscle [f seconds]");
	send_msg(o, &a, 0, "/emgd/calibrate/mvc", "i", 3);
	ck_error_reply(1, "/emgd/calibrate/mvc", "usage: /emgd/calibrate/mvc s muscle");
	send_msg(o, &a, 0, "/emgd/calibrate/mvc", "ss", "glute_max_l", "long");
	ck_error_reply(2, "/emgd/calibrate/mvc", "usage: /emgd/calibrate/mvc s muscle");
	ck_assert_int_eq(calls.mvc, 0);

	send_msg(o, &a, 0, "/emgd/calibrate/mvc", "s", "glute_med_r");
	ck_assert_int_eq(calls.mvc, 1);
	ck_assert_str_eq(calls.muscle, "glute_med_r");
	ck_assert_double_eq(calls.seconds, 5);
	m = dec_pkt(3, "/emgd/ok", "s");
	ck_assert_str_eq(arg_s(m, 0), "/emgd/calibrate/mvc");
	lo_message_free(m);
	send_msg(o, &a, 0, "/emgd/calibrate/mvc", "sf", "hip_flex_l", 2.5);
	ck_assert_double_eq(calls.seconds, 2.5);
	ck_assert_str_eq(calls.muscle, "hip_flex_l");
	send_msg(o, &a, 0, "/emgd/calibrate/mvc", "si", "hip_flex_l", 4);
	ck_assert_double_eq(calls.seconds, 4);
	calls.fail = ENOENT;
	send_msg(o, &a, 0, "/emgd/calibrate/mvc", "s", "nobody");
	ck_error_reply(6, "/emgd/calibrate/mvc", "no such muscle: nobody");

	send_msg(o, &a, 0, "/emgd/calibrate/rest", "f", 3.0);
	ck_assert_int_eq(calls.rest, 1);
	ck_assert_double_eq(calls.seconds, 3);
	ck_error_reply(7, "/emgd/calibrate/rest", "already calibrating");
	calls.fail = 0;
	send_msg(o, &a, 0, "/emgd/calibrate/rest", "");
	ck_assert_double_eq(calls.seconds, 5);
	lo_message_free(dec_pkt(8, "/emgd/ok", "s"));
	send_msg(o, &a, 0, "/emgd/calibrate/rest", "s", "x");
	ck_error_reply(9, "/emgd/calibrate/rest", "usage: /emgd/calibrate/rest [f seconds]");
	ck_assert_int_eq(calls.rest, 2);

	send_msg(o, &a, 0, "/emgd/marker", "s", "squat 1");
	ck_assert_str_eq(calls.text, "squat 1");
	lo_message_free(dec_pkt(10, "/emgd/ok", "s"));
	send_msg(o, &a, 0, "/emgd/marker", "");
	ck_error_reply(11, "/emgd/marker", "usage: /emgd/marker s text");
	calls.fail = EIO;
	send_msg(o, &a, 0, "/emgd/marker", "s", "x");
	ck_error_reply(12, "/emgd/marker", strerror(EIO));
	ck_assert_uint_eq(npkts, 13);
	emg_osc_free(o);
}
END_TEST

/* ---- publishing ------------------------------------------------------ */

START_TEST(test_publish_metrics_6)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage a = v4("127.0.0.1", 5000);
	struct emg_out *r = metrics_rec(6);
	static const char *const names[] = { "glute_max_l", "glute_max_r", "glute_med_l",
					     "glute_med_r", "hip_flex_l",  "hip_flex_r" };
	struct walked w;
	unsigned k = 0;
	char path[64];
	lo_message m;

	/* nobody listens: nothing is sent */
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(npkts, 0);
	send_msg(o, &a, 0, "/emgd/subscribe", "");
	npkts = 0;
	for (unsigned i = 0; i < 6; i++) {
		r->m[i].rms = 10.5f * (float)(i + 1);
		r->m[i].level = (i % 2) ? -1.0f : 0.25f * (float)i; /* odd muscles: no MVC */
		r->m[i].active = (uint8_t)(i == 4);
	}
	r->m[4].level = 1.75f; /* above MVC is published as is */
	r->tick = 0x80000005ull; /* wraps into 31 bits */
	r->dropped = 42;
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(npkts, 1);
	ck_assert_uint_le(pkts[0].n, EMG_OSC_MAX_PACKET);
	ck_dest(0, &a);
	walk(&pkts[0], &w);
	ck_assert_uint_eq(w.n, 6 * 2 + 3 + 2); /* rms+active each, level for 0, 2, 4 */
	for (unsigned i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "/emg/%s/rms", names[i]);
		m = dec(pkts[0].b + w.off[k], w.len[k], path, "f");
		ck_assert_float_eq(arg_f(m, 0), 10.5f * (float)(i + 1));
		lo_message_free(m);
		k++;
		if (i % 2 == 0) {
			snprintf(path, sizeof(path), "/emg/%s/level", names[i]);
			m = dec(pkts[0].b + w.off[k], w.len[k], path, "f");
			ck_assert_float_eq(arg_f(m, 0), r->m[i].level);
			lo_message_free(m);
			k++;
		}
		snprintf(path, sizeof(path), "/emg/%s/active", names[i]);
		m = dec(pkts[0].b + w.off[k], w.len[k], path, "i");
		ck_assert_int_eq(arg_i(m, 0), i == 4);
		lo_message_free(m);
		k++;
	}
	m = dec(pkts[0].b + w.off[k], w.len[k], "/emg/levels", "ffffff");
	ck_assert_float_eq(arg_f(m, 0), 0.0f);
	ck_assert_float_eq(arg_f(m, 1), -1.0f);
	ck_assert_float_eq(arg_f(m, 2), 0.5f);
	ck_assert_float_eq(arg_f(m, 3), -1.0f);
	ck_assert_float_eq(arg_f(m, 4), 1.75f);
	ck_assert_float_eq(arg_f(m, 5), -1.0f);
	lo_message_free(m);
	k++;
	m = dec(pkts[0].b + w.off[k], w.len[k], "/emg/frame", "ii");
	ck_assert_int_eq(arg_i(m, 0), 5);
	ck_assert_int_eq(arg_i(m, 1), 42);
	lo_message_free(m);

	/* a record with fewer muscles than the map publishes only those */
	r->nmuscles = 2;
	npkts = 0;
	emg_osc_publish_metrics(o, r);
	walk(&pkts[0], &w);
	ck_assert_uint_eq(w.n, 2 + 1 + 2 + 2); /* rms x2, level of muscle 0, active x2 */
	m = dec(pkts[0].b + w.off[5], w.len[5], "/emg/levels", "ff");
	lo_message_free(m);
	/* a send error is counted, not fatal */
	send_result = -ENOBUFS;
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(stats(o).send_errors, 1);
	free(r);
	emg_osc_free(o);
}
END_TEST

START_TEST(test_publish_metrics_64_split)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage a = v4("127.0.0.1", 5000), b = v6("::1", 5001);
	struct emg_muscles *map;
	struct emg_out *r = metrics_rec(EMG_MUSCLES_MAX);
	char names[EMG_MUSCLES_MAX][EMG_MUSCLE_NAME_MAX], path[64];
	unsigned next = 0, bundles = 0, total = 0, frames = 0, levels = 0;
	struct walked w;

	ck_assert_int_eq(emg_muscles_new(&map), 0);
	for (unsigned i = 0; i < EMG_MUSCLES_MAX; i++) {
		/* 31 characters, the longest a name can be */
		snprintf(names[i], sizeof(names[i]), "muscle_with_a_long_nam_%03u_xyzw", i);
		ck_assert_uint_eq(strlen(names[i]), 31);
		ck_assert_int_eq(emg_muscles_add(map, names[i], i, EMG_SIDE_NONE, NULL), 0);
		r->m[i].rms = (float)i;
		r->m[i].level = (float)i / 10.0f;
		r->m[i].active = (uint8_t)(i & 1);
	}
	ck_assert_int_eq(emg_osc_set_muscles(o, map), 0);
	send_msg(o, &a, 0, "/emgd/subscribe", "");
	send_msg(o, &b, 0, "/emgd/subscribe", "");
	npkts = 0;
	r->tick = 77;
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_gt(npkts, 2 * 4); /* ~11 KiB: several bundles per subscriber */
	/* each bundle goes to every subscriber in turn: a, b, a, b ... */
	ck_assert_uint_eq(npkts % 2, 0);
	bundles = npkts / 2;
	for (unsigned i = 0; i < npkts; i++) {
		ck_assert_uint_le(pkts[i].n, EMG_OSC_MAX_PACKET);
		ck_dest(i, (i % 2) ? &b : &a);
		if (i % 2)
			ck_assert_int_eq(memcmp(pkts[i].b, pkts[i - 1].b, pkts[i].n), 0);
	}
	/* walk a's bundles: every message exactly once, in order */
	for (unsigned i = 0; i < npkts; i += 2) {
		walk(&pkts[i], &w);
		ck_assert_uint_gt(w.n, 0);
		/* a bundle is only cut when the next message would not fit */
		if (i + 2 < npkts) {
			struct walked nw;
			walk(&pkts[i + 2], &nw);
			ck_assert_uint_gt(pkts[i].n + 4 + nw.len[0], EMG_OSC_MAX_PACKET);
		}
		for (unsigned k = 0; k < w.n; k++, total++) {
			const unsigned char *mb = pkts[i].b + w.off[k];
			lo_message m;
			if (next < EMG_MUSCLES_MAX * 3) {
				unsigned mi = next / 3, kind = next % 3;
				snprintf(path, sizeof(path), "/emg/%s/%s", names[mi],
					 kind == 0 ? "rms" : kind == 1 ? "level" : "active");
				m = dec(mb, w.len[k], path, kind == 2 ? "i" : "f");
				if (kind == 0)
					ck_assert_float_eq(arg_f(m, 0), (float)mi);
				else if (kind == 1)
					ck_assert_float_eq(arg_f(m, 0), (float)mi / 10.0f);
				else
					ck_assert_int_eq(arg_i(m, 0), (int)(mi & 1));
			} else if (next == EMG_MUSCLES_MAX * 3) {
				char tags[EMG_MUSCLES_MAX + 1];
				memset(tags, 'f', EMG_MUSCLES_MAX);
				tags[EMG_MUSCLES_MAX] = '\0';
				m = dec(mb, w.len[k], "/emg/levels", tags);
				ck_assert_float_eq(arg_f(m, 63), 6.3f);
				levels++;
			} else {
				m = dec(mb, w.len[k], "/emg/frame", "ii");
				ck_assert_int_eq(arg_i(m, 0), 77);
				frames++;
			}
			next++;
			lo_message_free(m);
		}
	}
	ck_assert_uint_eq(total, EMG_MUSCLES_MAX * 3 + 2);
	ck_assert_uint_eq(levels, 1);
	ck_assert_uint_eq(frames, 1);
	ck_assert_uint_ge(bundles, 8);
	emg_muscles_free(map);
	free(r);
	emg_osc_free(o);
}
END_TEST

START_TEST(test_publish_events)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct sockaddr_storage a = v4("127.0.0.1", 5000);
	struct emg_out r;
	lo_message m;

	send_msg(o, &a, 0, "/emgd/subscribe", "");
	npkts = 0;
	memset(&r, 0, sizeof(r));
	r.type = EMG_OUT_ONSET;
	r.muscle = 3;
	r.sample = (1ull << 33) + 12345; /* mod 2^31 */
	r.t_ns = 50 * SEC;
	emg_osc_publish_event(o, &r, 50 * SEC + 37500000ull);
	ck_assert_uint_eq(npkts, 1);
	m = dec_pkt(0, "/emg/glute_med_r/onset", "fi");
	ck_assert_float_eq_tol(arg_f(m, 0), 0.0375f, 1e-6f);
	ck_assert_int_eq(arg_i(m, 1), 12345);
	lo_message_free(m);

	r.type = EMG_OUT_OFFSET;
	r.muscle = 0;
	r.duration_s = 1.25f;
	emg_osc_publish_event(o, &r, 52 * SEC);
	m = dec_pkt(1, "/emg/glute_max_l/offset", "ff");
	ck_assert_float_eq_tol(arg_f(m, 0), 2.0f, 1e-6f);
	ck_assert_float_eq(arg_f(m, 1), 1.25f);
	lo_message_free(m);

	/* an event from the future (clock skew) has age 0, not a huge number */
	r.type = EMG_OUT_ONSET;
	emg_osc_publish_event(o, &r, 49 * SEC);
	m = dec_pkt(2, "/emg/glute_max_l/onset", "fi");
	ck_assert_float_eq(arg_f(m, 0), 0.0f);
	lo_message_free(m);
	/* a muscle outside the map is dropped */
	r.muscle = 6;
	emg_osc_publish_event(o, &r, 52 * SEC);
	ck_assert_uint_eq(npkts, 3);

	emg_osc_publish_calibrated(o, "mvc", "hip_flex_r", 321.5f, 1);
	m = dec_pkt(3, "/emgd/calibrated", "ssfi");
	ck_assert_str_eq(arg_s(m, 0), "mvc");
	ck_assert_str_eq(arg_s(m, 1), "hip_flex_r");
	ck_assert_float_eq(arg_f(m, 2), 321.5f);
	ck_assert_int_eq(arg_i(m, 3), 1);
	lo_message_free(m);
	emg_osc_free(o);
}
END_TEST

START_TEST(test_static_targets)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct emg_hostport t[2], bad = { "not an address", 1 };
	struct sockaddr_storage t0 = v4("127.0.0.1", 7000), t1 = v6("::1", 7001),
				sub = v4("127.0.0.1", 5000);
	struct emg_out *r = metrics_rec(6), ev;
	struct emg_osc_status st = { "waiting-device", 500, 4, 9 };
	lo_message m;

	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:7000", &t[0]), 0);
	ck_assert_int_eq(emg_hostport_parse("[::1]:7001", &t[1]), 0);
	ck_assert_int_eq(emg_osc_set_targets(o, t, 2), 0);
	ck_assert_int_eq(emg_osc_set_targets(o, &bad, 1), -EINVAL);
	ck_assert_int_eq(emg_osc_set_targets(o, t, EMG_NET_MAX_TARGETS + 1), -E2BIG);

	/* no subscriber: the targets still get metrics, events and status */
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(npkts, 2);
	ck_dest(0, &t0);
	ck_dest(1, &t1);
	memset(&ev, 0, sizeof(ev));
	ev.type = EMG_OUT_ONSET;
	emg_osc_publish_event(o, &ev, 0);
	ck_assert_uint_eq(npkts, 4);
	lo_message_free(dec_pkt(2, "/emg/glute_max_l/onset", "fi"));
	ck_dest(3, &t1);
	emg_osc_publish_status(o, &st);
	m = dec_pkt(4, "/emgd/status", "siii");
	ck_assert_str_eq(arg_s(m, 0), "waiting-device");
	ck_assert_int_eq(arg_i(m, 3), 9);
	lo_message_free(m);
	ck_assert_uint_eq(npkts, 6);

	/* with a subscriber: subscriber first, then every target */
	send_msg(o, &sub, 0, "/emgd/subscribe", "");
	npkts = 0;
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(npkts, 3);
	ck_dest(0, &sub);
	ck_dest(1, &t0);
	ck_dest(2, &t1);
	/* targets are not subscribers: they never expire and do not count */
	ck_assert_uint_eq(emg_osc_subscribers(o), 1);
	emg_osc_expire(o, 1000 * SEC);
	npkts = 0;
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(npkts, 2);
	/* replacing the targets with none stops them */
	ck_assert_int_eq(emg_osc_set_targets(o, NULL, 0), 0);
	npkts = 0;
	emg_osc_publish_metrics(o, r);
	ck_assert_uint_eq(npkts, 0);
	free(r);
	emg_osc_free(o);
}
END_TEST

START_TEST(test_bind_and_recv)
{
	struct emg_osc_params p = params();
	struct emg_osc *o = make(&p);
	struct emg_hostport hp = { "127.0.0.1", 0 }, bad = { "nonsense", 1 };
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	unsigned char buf[64];
	size_t n;
	int fd, c;

	ck_assert_int_eq(emg_osc_fd(o), -1);
	ck_assert_int_eq(emg_osc_bind(o, &bad), -EINVAL);
	fd = emg_osc_bind(o, &hp);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(emg_osc_fd(o), fd);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
	c = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(c, 0);
	n = build(buf, sizeof(buf), "/emgd/ping", "");
	ck_assert_int_eq(sendto(c, buf, n, 0, (struct sockaddr *)&me, ml), (ssize_t)n);
	ck_assert_int_eq(sendto(c, buf, 3, 0, (struct sockaddr *)&me, ml), 3);
	emg_osc_recv(o, 0);
	ck_assert_uint_eq(stats(o).received, 2);
	ck_assert_uint_eq(stats(o).malformed, 1);
	ck_assert_uint_eq(npkts, 1);
	lo_message_free(dec_pkt(0, "/emgd/pong", ""));
	/* and through the real socket */
	emg_osc_set_sender(o, NULL, NULL);
	ck_assert_int_eq(sendto(c, buf, n, 0, (struct sockaddr *)&me, ml), (ssize_t)n);
	emg_osc_recv(o, 0);
	n = (size_t)recv(c, buf, sizeof(buf), 0);
	lo_message_free(dec(buf, n, "/emgd/pong", ""));
	close(c);
	emg_osc_free(o);
}
END_TEST

/* emgctl names paths by table row: every concrete path maps back to its own row. */
START_TEST(test_address_find)
{
	const char *name;
	size_t len;

	for (unsigned i = 0; i < EMG_OSC_ADDR_COUNT; i++) {
		const char *p = emg_osc_path((enum emg_osc_addr_id)i), *m = strstr(p, "{muscle}");
		char concrete[96];
		ck_assert_ptr_eq(p, emg_osc_address(i)->path);
		if (m)
			snprintf(concrete, sizeof(concrete), "%.*sglute_max_l%s", (int)(m - p), p, m + 8);
		else
			snprintf(concrete, sizeof(concrete), "%s", p);
		name = NULL;
		ck_assert_int_eq(emg_osc_address_find(concrete, &name, &len), (int)i);
		if (m) {
			ck_assert_uint_eq(len, strlen("glute_max_l"));
			ck_assert_int_eq(strncmp(name, "glute_max_l", len), 0);
		} else {
			ck_assert_ptr_null(name);
		}
	}
	ck_assert_int_eq(emg_osc_address_find("/emg/rms", NULL, NULL), -1);  /* no name */
	ck_assert_int_eq(emg_osc_address_find("/emg/a/b/rms", NULL, NULL), -1); /* name with '/' */
	ck_assert_int_eq(emg_osc_address_find("/emgd/status/", NULL, NULL), -1);
	ck_assert_int_eq(emg_osc_address_find("/emg/a/rmsx", NULL, NULL), -1);
	ck_assert_int_eq(emg_osc_address_find("/emgd", NULL, NULL), -1);
	ck_assert_int_eq(emg_osc_address_find("/emg/levels", NULL, NULL), EMG_OSC_ADDR_LEVELS);
	ck_assert_str_eq(emg_osc_path(EMG_OSC_ADDR_STATUS), "/emgd/status");
	ck_assert_ptr_null(emg_osc_path(EMG_OSC_ADDR_COUNT));
}
END_TEST

/* listen = auto (port 0): the first free of 9000, 9002, ...; a second socket on the same
 * host steps over the first (no SO_REUSEADDR), and rebinding keeps the port held now. */
START_TEST(test_bind_auto)
{
	struct emg_osc_params p = params();
	struct emg_osc *a = make(&p), *b = make(&p);
	struct emg_hostport hp = { "127.0.0.1", 0 }, any = { "0.0.0.0", 0 };
	unsigned pa, pb;

	ck_assert_uint_eq(emg_osc_port(a), 0);
	ck_assert_int_ge(emg_osc_bind(a, &hp), 0);
	ck_assert_int_ge(emg_osc_bind(b, &hp), 0);
	pa = emg_osc_port(a);
	pb = emg_osc_port(b);
	ck_assert_msg(pa >= EMG_PORT_AUTO_OSC && pa < EMG_PORT_AUTO_OSC + 2 * EMG_PORT_AUTO_SLOTS &&
		      (pa - EMG_PORT_AUTO_OSC) % 2 == 0, "auto port %u", pa);
	ck_assert_msg(pb > pa && (pb - EMG_PORT_AUTO_OSC) % 2 == 0, "second auto port %u after %u", pb, pa);
	/* a reload to another address: the same port, although a lower one may be free now */
	ck_assert_int_ge(emg_osc_bind(b, &any), 0);
	ck_assert_uint_eq(emg_osc_port(b), pb);
	ck_assert_uint_eq(emg_port_auto(EMG_PORT_AUTO_OSC, 0), 9000);
	ck_assert_uint_eq(emg_port_auto(EMG_PORT_AUTO_HTTP, 3), 9007);
	ck_assert_uint_eq(emg_port_auto(EMG_PORT_AUTO_OSC, EMG_PORT_AUTO_SLOTS), 0);
	emg_osc_free(a);
	emg_osc_free(b);
}
END_TEST

static Suite *osc_suite(void)
{
	Suite *s = suite_create("osc");
	TCase *tc = tcase_create("control");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_subscribe_lease);
	tcase_add_test(tc, test_unsubscribe);
	tcase_add_test(tc, test_subscriber_cap);
	tcase_add_test(tc, test_rate_limit_refill);
	tcase_add_test(tc, test_rate_limit_flood_same_host);
	tcase_add_test(tc, test_rate_limit_bundle);
	tcase_add_test(tc, test_rate_limit_resubscribe);
	tcase_add_test(tc, test_rate_limit_subscribed_ports);
	tcase_add_test(tc, test_subscriber_per_host);
	tcase_add_test(tc, test_allow_list);
	tcase_add_test(tc, test_denied_no_reply);
	tcase_add_test(tc, test_status_ping_stats);
	tcase_add_test(tc, test_status_without_callback);
	tcase_add_test(tc, test_calibrate);
	tcase_add_test(tc, test_bind_and_recv);
	tcase_add_test(tc, test_address_find);
	tcase_add_test(tc, test_bind_auto);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_fuzz);
	suite_add_tcase(s, tc);

	tc = tcase_create("publish");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_publish_metrics_6);
	tcase_add_test(tc, test_publish_metrics_64_split);
	tcase_add_test(tc, test_publish_events);
	tcase_add_test(tc, test_static_targets);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(osc_suite());
}
