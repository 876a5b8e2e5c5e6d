/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the OSC control path, emg_osc_handle() - exactly what the
 * daemon runs for every datagram it reads - over a session of packets from
 * loopback, allowed and denied sources, with time passing, leases expiring,
 * reloads and publishing in between.
 *
 * Input: byte 0 picks the set-up (subscriber cap, rate limit and burst,
 * allow list on or off); then a program of records, each starting with an
 * op byte (high nibble: the source address, low nibble: what to do):
 *   0..3   raw datagram: 2-byte length, then that many bytes
 *   4..8   a well-formed control message built from the next bytes
 *          (address from a list, arguments of any OSC type)
 *   9      a bundle of 1..64 such messages
 *   10     time passes: 1 byte x 10 ms
 *   11     emg_osc_expire
 *   12     publish one metrics tick, an onset event and /emgd/status
 *   13     reload: new cap / rate limit / allow list from the next byte
 *   14..15 a raw datagram cut at a random length (truncation)
 *
 * Invariants checked besides memory and UB errors:
 *   - no reflection: while handling a datagram from S, emgd sends only to S;
 *     a publish goes only to addresses that themselves subscribed;
 *   - a source outside loopback and the allow list gets nothing back
 *     (amplification 0) and is counted as denied;
 *   - the rate limit holds for every source host, bundles and subscribed
 *     ports included: replies to one host stay within burst + rate x elapsed
 *     (it was (1 + cap) x that until issue 16 #5: each subscribed port of a
 *     host got its own bucket);
 *   - never more subscribers than the cap; every packet <= 1472 bytes; every
 *     reply is a well-formed OSC message liblo decodes.
 */
#include <arpa/inet.h>
#include <lo/lo_lowlevel.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_main.h"
#include "muscles.h"
#include "osc.h"
#include "pipeline.h"

#define NSRC 16
#define NHOST 8
#define MS 1000000ull

struct src {
	const char *ip;
	unsigned port;
	int host; /* source host identity (IPv4-mapped folded to IPv4) */
	bool allowed_by_list; /* inside 192.168.1.0/24 */
	bool loopback;
	struct sockaddr_storage sa;
	socklen_t len;
};

#define SRC(a, p, h, l, lo) { .ip = a, .port = p, .host = h, .allowed_by_list = l, .loopback = lo }

static struct src S[NSRC] = {
	SRC("127.0.0.1", 5000, 0, false, true),
	SRC("127.0.0.1", 5001, 0, false, true),
	SRC("127.0.0.2", 5000, 1, false, true),
	SRC("::1", 5000, 2, false, true),
	SRC("::1", 5002, 2, false, true),
	SRC("192.168.1.10", 7000, 3, true, false),
	SRC("192.168.1.10", 7001, 3, true, false),
	SRC("::ffff:192.168.1.10", 7002, 3, true, false),
	SRC("192.168.1.11", 7000, 4, true, false),
	SRC("10.0.0.5", 7000, 5, false, false),
	SRC("10.0.0.5", 7001, 5, false, false),
	SRC("::ffff:10.0.0.5", 7003, 5, false, false),
	SRC("2001:db8::1", 7000, 6, false, false),
	SRC("::ffff:127.0.0.1", 5003, 0, false, true),
	SRC("192.168.2.1", 7000, 7, false, false),
	SRC("127.0.0.1", 5000, 0, false, true), /* duplicate of 0 on purpose */
};

/* ---- the world as the fuzzer sees it ---- */

static struct emg_osc_params P;
static struct emg_cidr allow_net;
static const struct src *cur;   /* datagram being handled, NULL while publishing */
static bool subscribed_ever[NSRC];
static double replies[NHOST];   /* sends to each host while handling its datagrams */
static uint64_t first_ns[NHOST];
static bool seen[NHOST];
static double max_rate, max_burst; /* loosest limits in force during this input */
static unsigned max_cap;

static bool is_allowed(const struct src *s)
{
	return s->loopback || (P.nallow && s->allowed_by_list);
}

static int same_addr(const struct src *s, const struct sockaddr *to, socklen_t len)
{
	return len == s->len && !memcmp(to, &s->sa, len);
}

static int fuzz_send(void *ud, const void *buf, size_t len, const struct sockaddr *to,
		     socklen_t tolen)
{
	if (len == 0 || len > EMG_OSC_MAX_PACKET)
		abort();
	if (cur) {
		/* A reply: to the sender only, and only if it may talk to us. */
		if (!same_addr(cur, to, tolen) || !is_allowed(cur))
			abort();
		replies[cur->host] += 1;
		int res = 0;
		lo_message m = lo_message_deserialise((void *)buf, len, &res);
		if (!m)
			abort();
		lo_message_free(m);
		const char *path = buf;
		if (!strcmp(path, "/emgd/subscribed"))
			subscribed_ever[cur - S] = true;
	} else {
		/* Publishing: only to an address that asked for it itself. */
		bool ok = false;
		for (int i = 0; i < NSRC; i++)
			if (subscribed_ever[i] && same_addr(&S[i], to, tolen))
				ok = true;
		if (!ok)
			abort();
	}
	return (int)len;
}

/* ---- input reading ---- */

struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned u8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static unsigned u16(struct rd *r)
{
	unsigned a = u8(r);

	return a << 8 | u8(r);
}

/* ---- building OSC ---- */

struct ob {
	uint8_t b[70000];
	size_t n;
};

static void put(struct ob *o, const void *p, size_t n)
{
	if (o->n + n > sizeof(o->b))
		return;
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void put_str(struct ob *o, const char *s, size_t len)
{
	static const char z[4];

	put(o, s, len);
	put(o, z, 4 - (len & 3));
}

static void put_u32(struct ob *o, uint32_t v)
{
	v = htonl(v);
	put(o, &v, 4);
}

static const char *const paths[] = {
	"/emgd/subscribe", "/emgd/unsubscribe", "/emgd/status", "/emgd/ping",
	"/emgd/stats", "/emgd/latency", "/emgd/calibrate/rest", "/emgd/calibrate/mvc",
	"/emgd/marker", "/emgd/record/start", "/emgd/record/stop", "/emgd/nope", "/",
	"/emgd/subscribe/", "/emgd", "/emg/glute_max_l/rms",
};

/* A well-formed message: address from the list, up to 4 arguments of any type. */
static void build_msg(struct ob *o, struct rd *r)
{
	static const char types[] = "ifsdhSbTFNIcmt";
	unsigned k = u8(r), nargs = u8(r) % 5;
	char tags[8] = ",";
	const char *path = paths[k % (sizeof(paths) / sizeof(paths[0]))];

	put_str(o, path, strlen(path));
	for (unsigned i = 0; i < nargs; i++)
		tags[1 + i] = types[u8(r) % (sizeof(types) - 1)];
	tags[1 + nargs] = 0;
	put_str(o, tags, strlen(tags));
	for (unsigned i = 0; i < nargs; i++) {
		uint32_t v = (uint32_t)u8(r) << 24 | (uint32_t)u8(r) << 16 | u8(r) << 8 | u8(r);
		switch (tags[1 + i]) {
		case 'i': case 'f': case 'c': case 'm': case 'r':
			put_u32(o, v);
			break;
		case 'd': case 'h': case 't':
			put_u32(o, v);
			put_u32(o, v ^ 0x5a5a5a5a);
			break;
		case 's': case 'S': {
			static const char *const strs[] = { "glute_max_l", "", "x", "../etc",
							    "hip_flex_r", "a/b", "set 1" };
			const char *s = strs[v % (sizeof(strs) / sizeof(strs[0]))];
			put_str(o, s, strlen(s));
			break;
		}
		case 'b':
			put_u32(o, v % 9);
			for (unsigned j = 0; j < (v % 9 + 3) / 4; j++)
				put_u32(o, 0);
			break;
		}
	}
}

static struct emg_out *rec;

static void setup_params(unsigned k)
{
	static const double rates[] = { 1, 5, 50, 1000 };
	static const unsigned bursts[] = { 1, 4, 16, 100 };

	memset(&P, 0, sizeof(P));
	P.max_subscribers = 1 + (k & 3);
	P.default_lease_s = 1 + ((k >> 6) & 1) * 9;
	P.max_lease_s = 10;
	P.rate_limit = rates[(k >> 2) & 3];
	P.rate_burst = bursts[(k >> 4) & 3];
	P.allow = &allow_net;
	P.nallow = (k >> 7) & 1;
	P.max_per_host = (k >> 5) & 1; /* 0 = no per-host limit, or 1 */
	if (P.rate_limit > max_rate)
		max_rate = P.rate_limit;
	if (P.rate_burst > max_burst)
		max_burst = P.rate_burst;
	if (P.max_subscribers > max_cap)
		max_cap = P.max_subscribers;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	static struct ob o, e;
	struct rd r = { data, size };
	struct emg_osc *osc;
	struct emg_muscles *m;
	uint64_t now = 1000 * MS;
	struct emg_osc_stats st;
	uint64_t denied_expected = 0, datagrams = 0;

	if (!init) {
		for (int i = 0; i < NSRC; i++) {
			struct src *s = &S[i];
			memset(&s->sa, 0, sizeof(s->sa));
			if (strchr(s->ip, ':')) {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s->sa;
				a->sin6_family = AF_INET6;
				a->sin6_port = htons((uint16_t)s->port);
				inet_pton(AF_INET6, s->ip, &a->sin6_addr);
				s->len = sizeof(*a);
			} else {
				struct sockaddr_in *a = (struct sockaddr_in *)&s->sa;
				a->sin_family = AF_INET;
				a->sin_port = htons((uint16_t)s->port);
				inet_pton(AF_INET, s->ip, &a->sin_addr);
				s->len = sizeof(*a);
			}
		}
		if (emg_cidr_parse("192.168.1.0/24", &allow_net) < 0)
			abort();
		rec = calloc(1, sizeof(*rec) + EMG_MUSCLES_MAX * sizeof(struct emg_out_muscle));
		init = true;
	}
	memset(subscribed_ever, 0, sizeof(subscribed_ever));
	memset(replies, 0, sizeof(replies));
	memset(seen, 0, sizeof(seen));
	max_rate = max_burst = 0;
	max_cap = 0;
	cur = NULL;

	setup_params(u8(&r));
	if (emg_osc_new(&osc, &P, NULL) < 0)
		return 0;
	emg_osc_set_sender(osc, fuzz_send, NULL);
	if (emg_muscles_new_default(&m) == 0) {
		emg_osc_set_muscles(osc, m);
		emg_muscles_free(m);
	}

	while (r.n) {
		unsigned op = u8(&r);
		const struct src *s = &S[op >> 4];
		size_t len = 0;
		const uint8_t *raw = NULL;

		o.n = 0;
		switch (op & 15) {
		case 0: case 1: case 2: case 3: case 14: case 15:
			len = u16(&r);
			if (len > r.n)
				len = r.n;
			raw = r.p;
			r.p += len, r.n -= len;
			if ((op & 15) >= 14 && len)
				len = u8(&r) % len; /* truncated */
			break;
		case 4: case 5: case 6: case 7: case 8:
			build_msg(&o, &r);
			break;
		case 9: {
			unsigned k = 1 + u8(&r) % 64;
			put_str(&o, "#bundle", 7);
			put_u32(&o, 0);
			put_u32(&o, 1);
			for (unsigned i = 0; i < k; i++) {
				e.n = 0;
				build_msg(&e, &r);
				put_u32(&o, (uint32_t)e.n);
				put(&o, e.b, e.n);
			}
			break;
		}
		case 10:
			now += (uint64_t)u8(&r) * 10 * MS;
			continue;
		case 11:
			emg_osc_expire(osc, now);
			continue;
		case 12: {
			rec->type = EMG_OUT_METRICS;
			rec->nmuscles = 6;
			rec->tick = now / MS;
			for (unsigned i = 0; i < 6; i++) {
				rec->m[i].rms = (float)(u8(&r) * 3.5);
				rec->m[i].level = (float)u8(&r) / 100.0f - 0.5f;
				rec->m[i].active = u8(&r) & 1;
			}
			emg_osc_publish_metrics(osc, rec);
			rec->type = EMG_OUT_ONSET;
			rec->muscle = u8(&r) % 8; /* out of range too */
			rec->t_ns = now - MS;
			emg_osc_publish_event(osc, rec, now);
			struct emg_osc_status status = { "streaming", 2000, 6, 0 };
			emg_osc_publish_status(osc, &status);
			continue;
		}
		case 13:
			setup_params(u8(&r));
			emg_osc_set_params(osc, &P);
			if (emg_osc_subscribers(osc) > P.max_subscribers)
				abort();
			continue;
		}
		if (!raw) {
			raw = o.b;
			len = o.n;
		}
		if (!seen[s->host]) {
			seen[s->host] = true;
			first_ns[s->host] = now;
		}
		emg_osc_stats(osc, &st);
		uint64_t sent0 = st.sent, bytes0 = st.bytes_out;
		cur = s;
		datagrams++;
		emg_osc_handle(osc, raw, len, (const struct sockaddr *)&s->sa, s->len, now);
		cur = NULL;
		emg_osc_stats(osc, &st);
		if (!is_allowed(s)) {
			/* amplification for an unknown source: zero bytes back */
			if (st.sent != sent0 || st.bytes_out != bytes0)
				abort();
			denied_expected++;
		}
		if (st.denied != denied_expected)
			abort();
		if (emg_osc_subscribers(osc) > P.max_subscribers)
			abort();
		/* the rate limit holds per host: one budget, whatever its ports and subscriptions */
		double secs = (double)(now - first_ns[s->host]) * 1e-9;
		if (replies[s->host] > max_burst + max_rate * secs + 1)
			abort();
	}
	emg_osc_stats(osc, &st);
	if (st.received != datagrams || st.bytes_out > st.sent * EMG_OSC_MAX_PACKET)
		abort();
	emg_osc_free(osc);
	return 0;
}
