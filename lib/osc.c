/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lo/lo_lowlevel.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics.h"
#include "muscles.h"
#include "osc.h"
#include "pipeline.h"

#define BUCKETS 1024       /* per-host token buckets, hashed by address */
#define BUCKET_PROBE 8     /* slots searched for a host's own bucket before sharing one */
#define BUCKET_IDLE_NS (60ull * 1000000000ull)
#define PATH_MAX_LEN 64    /* "/emg/<name>/offset" */

struct bucket {
	unsigned char key[16]; /* IPv4 in the first 4 bytes, or IPv6 */
	int family;
	double tokens;
	uint64_t last_ns;
};

struct sub {
	struct sockaddr_storage sa;
	socklen_t len;
	uint64_t expires_ns;
};

struct target {
	struct sockaddr_storage sa;
	socklen_t len;
};

struct paths {
	char rms[PATH_MAX_LEN], level[PATH_MAX_LEN], active[PATH_MAX_LEN];
	char onset[PATH_MAX_LEN], offset[PATH_MAX_LEN], lag[PATH_MAX_LEN];
};

struct obuf {
	unsigned char b[EMG_OSC_MAX_PACKET];
	size_t n;
	int overflow;
};

struct emg_osc {
	struct emg_osc_params p;
	struct emg_cidr allow[EMG_NET_MAX_ALLOW];
	struct emg_osc_handlers h;
	int fd;
	emg_osc_send_fn send;
	void *send_ud;
	emg_osc_tap_fn tap; /* a copy of every stream packet (OSCQuery WebSocket clients) */
	void *tap_ud;
	emg_osc_send_fn rsend; /* while emg_osc_handle_via() runs: where replies go */
	void *rsend_ud;

	struct sub *subs;
	unsigned nsubs, subcap;
	struct target targets[EMG_NET_MAX_TARGETS];
	unsigned ntargets;
	struct bucket buckets[BUCKETS];

	unsigned nmuscles;
	char names[EMG_MUSCLES_MAX][EMG_MUSCLE_NAME_MAX];
	struct paths paths[EMG_MUSCLES_MAX];

	struct emg_osc_stats st;
	struct obuf pkt, msg; /* scratch: bundle being filled, message being encoded */
	unsigned dgram_msgs;  /* messages seen in the datagram being handled */
	int dgram_limited;    /* its source ran out of rate-limit tokens mid-bundle */
};

/* ---- the address space (shared with OSCQuery through emg_osc_address) ---- */

#define SENT EMG_OSC_SENT
#define RECV EMG_OSC_RECEIVED

static const struct emg_osc_addr addrs[EMG_OSC_ADDR_COUNT] = {
	[EMG_OSC_ADDR_RMS] = { "/emg/{muscle}/rms", "f", SENT, "voltage.uV", "0:",
		    "Display RMS envelope in uV (sliding window, [dsp] rms_window_ms), every publish tick" },
	[EMG_OSC_ADDR_LEVEL] = { "/emg/{muscle}/level", "f", SENT, "ratio.mvc", "0:",
		      "Fraction of the muscle's MVC (1.0 = MVC, may exceed 1.0), every tick once the muscle has an MVC calibration" },
	[EMG_OSC_ADDR_ACTIVE] = { "/emg/{muscle}/active", "i", SENT, "", "0:1",
		       "1 while an onset-detected burst is in progress, every tick" },
	[EMG_OSC_ADDR_ONSET] = { "/emg/{muscle}/onset", "fi", SENT, "time.second|time.samples", "0:|0:2147483647",
		      "Sent once a burst has lasted [dsp] report_ms: age in s (send time - true onset time), onset sample index mod 2^31" },
	[EMG_OSC_ADDR_OFFSET] = { "/emg/{muscle}/offset", "ff", SENT, "time.second|time.second", "0:|0:",
		       "Sent at once on an offset: age in s, burst duration in s" },
	[EMG_OSC_ADDR_LAG] = { "/emg/{muscle}/lag", "f", SENT, "time.ms", "0:",
		    "When a burst group closes: this muscle's onset lag behind the group's first muscle, ms (0 = fired first); only muscles that fired" },
	[EMG_OSC_ADDR_LEVELS] = { "/emg/levels", "f*", SENT, "ratio.mvc", "-1:",
		       "Every tick, one value per muscle in config order: fraction of MVC, -1 without an MVC" },
	[EMG_OSC_ADDR_FRAME] = { "/emg/frame", "ii", SENT, "|time.samples", "0:2147483647|0:2147483647",
		      "Every tick, last in its bundle: tick sequence number, samples dropped so far" },
	[EMG_OSC_ADDR_ORDER] = { "/emg/order", "isf*", SENT, "||time.ms", "1:||-1:",
		      "Firing order of a closed burst group (onsets within [analytics] order_window_ms): group number, the muscle that fired first, then per muscle in config order its onset lag in ms (-1 = did not fire)" },
	[EMG_OSC_ADDR_PAIR] = { "/emg/pair", "ssf", SENT, "||time.ms", "",
		     "For each [analytics] pairs entry a:b whose muscles both fired in a closed group: a, b, onset(a) - onset(b) in ms (positive: a fired after b)" },
	[EMG_OSC_ADDR_REP] = { "/emg/rep", "siffffffis", SENT,
		    "||||time.second|time.second|time.ms|||",
		    "|1:|0:|0:|0:|0:|0:|-200:200|0:1|=pct_mvc,uV",
		    "A finished repetition (bursts less than [analytics] min_rest_ms apart count as one): muscle, repetition number, peak, mean, time to peak s, duration s, onset lag ms, left/right symmetry index % of the peak, 1 if that index compares with the other side, unit of peak and mean (pct_mvc = percent of MVC, uV = RMS when not calibrated)" },
	[EMG_OSC_ADDR_STATUS] = { "/emgd/status", "siii", SENT | RECV, "|time.hz||",
		       "=streaming,waiting-device,device-failed,calibrating,recording|0:|0:|0:",
		       "Sent at 1 Hz, and in reply to /emgd/status sent without arguments: state, sample rate, channels, overruns" },
	[EMG_OSC_ADDR_CALIBRATED] = { "/emgd/calibrated", "ssfi", SENT, "||voltage.uV|", "=rest,mvc||0:|0:1",
			   "A calibration finished: kind, muscle, uV (rest RMS or MVC peak), 1 if it succeeded" },
	[EMG_OSC_ADDR_SUBSCRIBED] = { "/emgd/subscribed", "i", SENT, "time.second", "1:",
			   "Reply to /emgd/subscribe: the lease granted in s" },
	[EMG_OSC_ADDR_UNSUBSCRIBED] = { "/emgd/unsubscribed", "", SENT, "", "", "Reply to /emgd/unsubscribe" },
	[EMG_OSC_ADDR_PONG] = { "/emgd/pong", "", SENT, "", "", "Reply to /emgd/ping" },
	[EMG_OSC_ADDR_OK] = { "/emgd/ok", "s", SENT, "", "", "A control request succeeded: its address" },
	[EMG_OSC_ADDR_ERROR] = { "/emgd/error", "ss", SENT, "", "",
		      "A control request failed: its address, a message" },
	[EMG_OSC_ADDR_STATS] = { "/emgd/stats", "iiiiiiiiii", SENT | RECV, "", "0:|0:|0:|0:|0:|0:|0:|0:|0:|0:",
		      "Send without arguments; reply: packets received, handled, malformed, unknown, denied, rate-limited, rejected, subscribers, WebSocket (OSCQuery LISTEN) clients, frames dropped for slow WebSocket clients" },
	[EMG_OSC_ADDR_LATENCY] = { "/emgd/latency", "iffffiffff", SENT | RECV,
			"|time.ms|time.ms|time.ms|time.ms||time.ms|time.ms|time.ms|time.ms",
			"0:|0:|0:|0:|0:|0:|0:|0:|0:|0:",
			"Send without arguments; reply: sample arrival to sendto latency, events count p50 p99 p99.9 max, metric bundles count p50 p99 p99.9 max" },
	[EMG_OSC_ADDR_SUBSCRIBE] = { "/emgd/subscribe", "i", RECV, "time.second", "1:",
			  "Subscribe the sender's address to everything above for a lease in s (optional; default [osc] lease); resend to renew" },
	[EMG_OSC_ADDR_UNSUBSCRIBE] = { "/emgd/unsubscribe", "", RECV, "", "", "End the sender's subscription" },
	[EMG_OSC_ADDR_PING] = { "/emgd/ping", "", RECV, "", "", "Answered with /emgd/pong" },
	[EMG_OSC_ADDR_CAL_REST] = { "/emgd/calibrate/rest", "f", RECV, "time.second", "0.5:120",
			 "Rest calibration of every muscle for s seconds (optional, default 5): the onset baseline" },
	[EMG_OSC_ADDR_CAL_MVC] = { "/emgd/calibrate/mvc", "sf", RECV, "|time.second", "|0.5:60",
			"MVC trial of a muscle for s seconds (optional, default 5): the %MVC reference (max over trials)" },
	[EMG_OSC_ADDR_MARKER] = { "/emgd/marker", "s", RECV, "", "",
		       "A text marker: logged and annotated in the running recording" },
	[EMG_OSC_ADDR_REC_START] = { "/emgd/record/start", "s", RECV, "", "",
			  "Start recording (optional file name, confined to the recordings directory)" },
	[EMG_OSC_ADDR_REC_STOP] = { "/emgd/record/stop", "", RECV, "", "", "Stop recording" },
	[EMG_OSC_ADDR_ANA_RESET] = { "/emgd/analytics/reset", "", RECV, "", "",
			  "Restart every repetition count from zero (a new set)" },
};

#undef SENT
#undef RECV

const struct emg_osc_addr *emg_osc_address(unsigned i)
{
	return i < EMG_OSC_ADDR_COUNT ? &addrs[i] : NULL;
}

const char *emg_osc_path(enum emg_osc_addr_id id)
{
	return (unsigned)id < EMG_OSC_ADDR_COUNT ? addrs[id].path : NULL;
}

int emg_osc_address_find(const char *path, const char **muscle, size_t *mlen)
{
	size_t plen = strlen(path);

	for (unsigned i = 0; i < EMG_OSC_ADDR_COUNT; i++) {
		const char *p = addrs[i].path, *m = strstr(p, "{muscle}");
		if (!m) {
			if (!strcmp(path, p))
				return (int)i;
			continue;
		}
		/* "/emg/{muscle}/rms": prefix, a name without '/', suffix. */
		size_t pre = (size_t)(m - p), suf = strlen(m + 8);
		if (plen <= pre + suf || strncmp(path, p, pre) || strcmp(path + plen - suf, m + 8))
			continue;
		if (memchr(path + pre, '/', plen - pre - suf))
			continue;
		if (muscle)
			*muscle = path + pre;
		if (mlen)
			*mlen = plen - pre - suf;
		return (int)i;
	}
	return -1;
}

int emg_osc_types_expand(const char *tmpl, unsigned nmuscles, char *buf, size_t len)
{
	size_t n = 0;

	for (const char *t = tmpl; *t; t++) {
		unsigned rep = t[1] == '*' ? nmuscles : 1;
		if (*t == '*')
			continue;
		for (unsigned k = 0; k < rep; k++) {
			if (n + 1 >= len)
				return -ENOSPC;
			buf[n++] = *t;
		}
	}
	if (n >= len)
		return -ENOSPC;
	buf[n] = '\0';
	return 0;
}

/* "/emg/{muscle}/rms" with a muscle name. */
static void muscle_path(char *dst, size_t len, enum emg_osc_addr_id id, const char *name)
{
	const char *p = addrs[id].path, *m = strstr(p, "{muscle}");

	if (!m)
		snprintf(dst, len, "%s", p);
	else
		snprintf(dst, len, "%.*s%s%s", (int)(m - p), p, name, m + 8);
}

/* ---- encoding: OSC 1.0, big-endian, 4-byte aligned, i f s only ---- */

static void put_bytes(struct obuf *o, const void *p, size_t n)
{
	if (o->overflow || o->n + n > sizeof(o->b)) {
		o->overflow = 1;
		return;
	}
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void put_u32(struct obuf *o, uint32_t v)
{
	uint32_t be = htonl(v);

	put_bytes(o, &be, 4);
}

static void put_str(struct obuf *o, const char *s)
{
	static const char zeros[4];
	size_t len = strlen(s);

	put_bytes(o, s, len);
	put_bytes(o, zeros, 4 - (len & 3)); /* at least one NUL, padded to 4 */
}

static void put_float(struct obuf *o, float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	put_u32(o, u);
}

/* Encode a message; types is the tag string without the comma, args follow as int, double, const char *. */
static void vmsg(struct obuf *o, const char *path, const char *types, va_list ap)
{
	char tags[EMG_MUSCLES_MAX + 8];

	o->n = 0;
	o->overflow = 0;
	put_str(o, path);
	snprintf(tags, sizeof(tags), ",%s", types);
	put_str(o, tags);
	for (const char *t = types; *t; t++) {
		switch (*t) {
		case 'i':
			put_u32(o, (uint32_t)va_arg(ap, int));
			break;
		case 'f':
			put_float(o, (float)va_arg(ap, double));
			break;
		case 's':
			put_str(o, va_arg(ap, const char *));
			break;
		}
	}
}

static void msg(struct obuf *o, const char *path, const char *types, ...)
{
	va_list ap;

	va_start(ap, types);
	vmsg(o, path, types, ap);
	va_end(ap);
}

/* ---- sending ---- */

static int sock_send(void *ud, const void *buf, size_t len, const struct sockaddr *to,
		     socklen_t tolen)
{
	struct emg_osc *o = ud;
	ssize_t n;

	if (o->fd < 0)
		return -ENOTCONN;
	n = sendto(o->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen);
	return n < 0 ? -errno : (int)n;
}

static void send_to(struct emg_osc *o, const struct obuf *b, const struct sockaddr *sa,
		    socklen_t len)
{
	if (b->overflow || b->n == 0)
		return;
	if (o->send(o->send_ud, b->b, b->n, sa, len) < 0) {
		o->st.send_errors++;
		return;
	}
	o->st.sent++;
	o->st.bytes_out += b->n;
}

static void send_all(struct emg_osc *o, const struct obuf *b)
{
	if (o->tap && !b->overflow && b->n)
		o->tap(o->tap_ud, b->b, b->n);
	for (unsigned i = 0; i < o->nsubs; i++)
		send_to(o, b, (struct sockaddr *)&o->subs[i].sa, o->subs[i].len);
	for (unsigned i = 0; i < o->ntargets; i++)
		send_to(o, b, (struct sockaddr *)&o->targets[i].sa, o->targets[i].len);
}

static void bundle_begin(struct obuf *b)
{
	b->n = 0;
	b->overflow = 0;
	put_str(b, "#bundle");
	put_u32(b, 0);
	put_u32(b, 1); /* timetag "immediately": time travels in the arguments */
}

/* Append o->msg to the bundle being built, sending the bundle first if the message would not fit. */
static void bundle_add(struct emg_osc *o)
{
	if (o->pkt.n + 4 + o->msg.n > EMG_OSC_MAX_PACKET) {
		send_all(o, &o->pkt);
		bundle_begin(&o->pkt);
	}
	put_u32(&o->pkt, (uint32_t)o->msg.n);
	put_bytes(&o->pkt, o->msg.b, o->msg.n);
}

/* ---- lifecycle ---- */

int emg_osc_new(struct emg_osc **out, const struct emg_osc_params *p,
		const struct emg_osc_handlers *h)
{
	struct emg_osc *o = calloc(1, sizeof(*o));

	if (!o)
		return -ENOMEM;
	o->fd = -1;
	o->send = sock_send;
	o->send_ud = o;
	if (h)
		o->h = *h;
	emg_osc_set_params(o, p);
	if (!o->subs) {
		free(o);
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

void emg_osc_free(struct emg_osc *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	free(o->subs);
	free(o);
}

static unsigned host_subscriptions(const struct emg_osc *o, const struct sockaddr *sa,
				   unsigned upto);

/* A lower per-host limit on reload drops each host's excess, newest first, like the cap. */
static void drop_over_host_limit(struct emg_osc *o)
{
	if (!o->p.max_per_host)
		return;
	for (unsigned i = o->nsubs; i-- > 0;)
		if (host_subscriptions(o, (const struct sockaddr *)&o->subs[i].sa, i) >= o->p.max_per_host) {
			memmove(&o->subs[i], &o->subs[i + 1], (o->nsubs - i - 1) * sizeof(o->subs[0]));
			o->nsubs--;
		}
}

void emg_osc_set_params(struct emg_osc *o, const struct emg_osc_params *p)
{
	unsigned cap = p->max_subscribers ? p->max_subscribers : 1;

	if (cap != o->subcap) {
		struct sub *n = realloc(o->subs, cap * sizeof(*n));
		if (!n)
			return; /* keep the old table and limits */
		o->subs = n;
		o->subcap = cap;
		if (o->nsubs > cap)
			o->nsubs = cap;
	}
	o->p = *p;
	drop_over_host_limit(o);
	o->p.nallow = p->nallow > EMG_NET_MAX_ALLOW ? EMG_NET_MAX_ALLOW : p->nallow;
	if (o->p.nallow)
		memcpy(o->allow, p->allow, o->p.nallow * sizeof(o->allow[0]));
	o->p.allow = o->allow;
}

int emg_osc_set_muscles(struct emg_osc *o, const struct emg_muscles *m)
{
	unsigned n = emg_muscles_count(m);

	for (unsigned i = 0; i < n; i++) {
		const char *name = emg_muscles_get(m, i)->name;
		struct paths *pp = &o->paths[i];
		snprintf(o->names[i], sizeof(o->names[i]), "%s", name);
		muscle_path(pp->rms, sizeof(pp->rms), EMG_OSC_ADDR_RMS, name);
		muscle_path(pp->level, sizeof(pp->level), EMG_OSC_ADDR_LEVEL, name);
		muscle_path(pp->active, sizeof(pp->active), EMG_OSC_ADDR_ACTIVE, name);
		muscle_path(pp->onset, sizeof(pp->onset), EMG_OSC_ADDR_ONSET, name);
		muscle_path(pp->offset, sizeof(pp->offset), EMG_OSC_ADDR_OFFSET, name);
		muscle_path(pp->lag, sizeof(pp->lag), EMG_OSC_ADDR_LAG, name);
	}
	o->nmuscles = n;
	return 0;
}

static int bind_port(struct emg_osc *o, const struct emg_hostport *listen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, bufsz = 1 << 20;

	memset(&ss, 0, sizeof(ss));
	if (strchr(listen->host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(listen->port);
		if (inet_pton(AF_INET6, listen->host, &a->sin6_addr) != 1)
			return -EINVAL;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(listen->port);
		if (inet_pton(AF_INET, listen->host, &a->sin_addr) != 1)
			return -EINVAL;
		len = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* No SO_REUSEADDR: on UDP it lets a second emgd bind the same address and
	 * port, both "work" and only one gets the packets.  EADDRINUSE instead. */
	/* Room for bursts to 64 subscribers without EAGAIN. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = -errno;
		struct sockaddr_storage old;
		socklen_t olen = sizeof(old);

		/* A reload moving our own socket to another address on the same port
		 * (127.0.0.1:9000 -> 0.0.0.0:9000) collides with it: let go of it and
		 * retry; if that fails too, bind the old address again (o->fd changes). */
		if (e != -EADDRINUSE || o->fd < 0 ||
		    getsockname(o->fd, (struct sockaddr *)&old, &olen) < 0 ||
		    (old.ss_family == AF_INET ? ((struct sockaddr_in *)&old)->sin_port
					      : ((struct sockaddr_in6 *)&old)->sin6_port) != htons(listen->port)) {
			close(fd);
			return e;
		}
		close(o->fd);
		o->fd = -1;
		if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
			int back;

			e = -errno;
			close(fd);
			back = socket(old.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (back >= 0) {
				setsockopt(back, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
				if (bind(back, (struct sockaddr *)&old, olen) == 0)
					o->fd = back;
				else
					close(back);
			}
			return e;
		}
	}
	if (o->fd >= 0)
		close(o->fd);
	o->fd = fd;
	return fd;
}

int emg_osc_bind(struct emg_osc *o, const struct emg_hostport *listen)
{
	struct emg_hostport hp = *listen;
	unsigned cur = emg_osc_port(o);
	int r = -EADDRINUSE;

	if (listen->port)
		return bind_port(o, listen);
	/* auto: the port we hold first (a reload to another address keeps it), then the
	 * first free slot; a port another socket holds is EADDRINUSE (no SO_REUSEADDR),
	 * so instances starting together each end up on their own. */
	if (cur) {
		hp.port = (unsigned short)cur;
		if ((r = bind_port(o, &hp)) != -EADDRINUSE)
			return r;
	}
	for (unsigned n = 0; emg_port_auto(EMG_PORT_AUTO_OSC, n); n++) {
		hp.port = (unsigned short)emg_port_auto(EMG_PORT_AUTO_OSC, n);
		if (hp.port != cur && (r = bind_port(o, &hp)) != -EADDRINUSE)
			return r;
	}
	return r;
}

unsigned emg_osc_port(const struct emg_osc *o)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (o->fd < 0 || getsockname(o->fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

int emg_osc_fd(const struct emg_osc *o)
{
	return o->fd;
}

void emg_osc_set_tap(struct emg_osc *o, emg_osc_tap_fn fn, void *ud)
{
	o->tap = fn;
	o->tap_ud = ud;
}

void emg_osc_set_sender(struct emg_osc *o, emg_osc_send_fn fn, void *ud)
{
	o->send = fn ? fn : sock_send;
	o->send_ud = fn ? ud : o;
}

static int sockaddr_from_hostport(const struct emg_hostport *hp, struct sockaddr_storage *ss,
				  socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(hp->host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(hp->port);
		*len = sizeof(*a);
		return inet_pton(AF_INET6, hp->host, &a->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons(hp->port);
	*len = sizeof(*a);
	return inet_pton(AF_INET, hp->host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

int emg_osc_set_targets(struct emg_osc *o, const struct emg_hostport *t, unsigned n)
{
	struct target tmp[EMG_NET_MAX_TARGETS];

	if (n > EMG_NET_MAX_TARGETS)
		return -E2BIG;
	for (unsigned i = 0; i < n; i++)
		if (sockaddr_from_hostport(&t[i], &tmp[i].sa, &tmp[i].len) < 0)
			return -EINVAL;
	memcpy(o->targets, tmp, n * sizeof(tmp[0]));
	o->ntargets = n;
	return 0;
}

unsigned emg_osc_subscribers(const struct emg_osc *o)
{
	return o->nsubs;
}

void emg_osc_stats(const struct emg_osc *o, struct emg_osc_stats *st)
{
	*st = o->st;
}

/* ---- source checks ---- */

static int addr_equal(const struct sockaddr *a, socklen_t alen, const struct sockaddr_storage *b,
		      socklen_t blen)
{
	return alen == blen && !memcmp(a, b, alen);
}

/* The host part of a source address, IPv4-mapped IPv6 folded to IPv4. */
static int source_host(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (!memcmp(a, v4mapped, 12)) {
		memcpy(key, a + 12, 4);
		return AF_INET;
	}
	memcpy(key, a, 16);
	return AF_INET6;
}

static int is_loopback(const struct sockaddr *sa)
{
	unsigned char key[16];
	static const unsigned char v6lo[16] = { [15] = 1 };

	if (source_host(sa, key) == AF_INET)
		return key[0] == 127;
	return !memcmp(key, v6lo, 16);
}

static int allowed(const struct emg_osc *o, const struct sockaddr *sa)
{
	if (is_loopback(sa))
		return 1;
	for (unsigned i = 0; i < o->p.nallow; i++)
		if (emg_cidr_match(&o->allow[i], sa))
			return 1;
	return 0;
}

/* Add what a bucket earned since *last (never past the burst, never for a clock going back). */
static void refill(double *tokens, uint64_t *last, uint64_t now, double rate, double burst)
{
	double dt = (double)(now - *last) * 1e-9;

	if (now < *last)
		dt = 0;
	*tokens = fmin(burst, *tokens + dt * rate);
	*last = now;
}

static int take_token(double *tokens, uint64_t *last, uint64_t now, double rate, double burst)
{
	refill(tokens, last, now, rate, burst);
	if (*tokens < 1.0)
		return 0;
	*tokens -= 1.0;
	return 1;
}

static int find_sub(const struct emg_osc *o, const struct sockaddr *sa, socklen_t len)
{
	for (unsigned i = 0; i < o->nsubs; i++)
		if (addr_equal(sa, len, &o->subs[i].sa, o->subs[i].len))
			return (int)i;
	return -1;
}

/* The budget of a source's host, refilled to now: one per address, whatever the port. */
static struct bucket *host_bucket(struct emg_osc *o, const struct sockaddr *sa, uint64_t now)
{
	unsigned char key[16];
	int fam = source_host(sa, key);
	uint32_t h = 2166136261u;
	struct bucket *b, *free_slot = NULL;
	/* A bucket idle this long has refilled to the burst anyway: forgetting it mints nothing. */
	double full_s = o->p.rate_limit > 0 ? o->p.rate_burst / o->p.rate_limit : 0;
	uint64_t idle_ns = full_s * 1e9 > (double)BUCKET_IDLE_NS ? (uint64_t)(full_s * 1e9) + 1
								 : BUCKET_IDLE_NS;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	for (unsigned k = 0; k < BUCKET_PROBE; k++) {
		b = &o->buckets[(h + k) % BUCKETS];
		if (b->family == fam && !memcmp(b->key, key, 16))
			goto found;
		if (!free_slot && (!b->family || now - b->last_ns >= idle_ns))
			free_slot = b;
	}
	if (free_slot) {
		b = free_slot;
		b->family = fam;
		memcpy(b->key, key, 16);
		b->tokens = o->p.rate_burst;
		b->last_ns = now;
	} else {
		/* Every probed slot is busy: share the first (stricter, never looser). */
		b = &o->buckets[h % BUCKETS];
	}
found:
	refill(&b->tokens, &b->last_ns, now, o->p.rate_limit, o->p.rate_burst);
	return b;
}

/* One budget per source host, shared by all its ports and subscriptions: a
 * subscription used to get its own bucket seeded from the host's, so every
 * subscribed port multiplied the limit (issue 16 #5). */
static int rate_ok(struct emg_osc *o, const struct sockaddr *sa, uint64_t now)
{
	struct bucket *b = host_bucket(o, sa, now);

	return take_token(&b->tokens, &b->last_ns, now, o->p.rate_limit, o->p.rate_burst);
}

/* The host a subscription counts against: its address, all of loopback as one. */
static int sub_host(const struct sockaddr *sa, unsigned char key[16])
{
	if (is_loopback(sa)) {
		memset(key, 0, 16);
		return AF_UNSPEC;
	}
	return source_host(sa, key);
}

/* Subscriptions among the first `upto` held by sa's host. */
static unsigned host_subscriptions(const struct emg_osc *o, const struct sockaddr *sa,
				   unsigned upto)
{
	unsigned char key[16], k2[16];
	int fam = sub_host(sa, key);
	unsigned n = 0;

	for (unsigned i = 0; i < upto && i < o->nsubs; i++)
		if (sub_host((const struct sockaddr *)&o->subs[i].sa, k2) == fam && !memcmp(key, k2, 16))
			n++;
	return n;
}

/* ---- control ---- */

struct req {
	struct emg_osc *o;
	const struct sockaddr *from;
	socklen_t fromlen;
	const char *path;
	lo_message m;
	uint64_t now;
};

/* Answer the sender with address-table row id; arguments as the row's type tags say. */
static void reply(struct req *q, int id, ...)
{
	va_list ap;

	va_start(ap, id);
	vmsg(&q->o->msg, addrs[id].path, addrs[id].types, ap);
	va_end(ap);
	if (!q->o->rsend) {
		send_to(q->o, &q->o->msg, q->from, q->fromlen);
	} else if (!q->o->msg.overflow &&
		   q->o->rsend(q->o->rsend_ud, q->o->msg.b, q->o->msg.n, q->from, q->fromlen) >= 0) {
		q->o->st.sent++;
		q->o->st.bytes_out += q->o->msg.n;
	} else {
		q->o->st.send_errors++;
	}
}

static void reply_error(struct req *q, const char *message)
{
	reply(q, EMG_OSC_ADDR_ERROR, q->path, message);
}

/* liblo's argv points at 4-byte aligned wire data, but lo_arg is an 8-byte
 * aligned union: read members through memcpy, never through the pointer. */
#define ARG_READ(dst, argp) memcpy(&(dst), (const void *)(argp), sizeof(dst))

/* Numeric argument i as a double, accepting the integer and float types clients use (Pd sends f). */
static int arg_num(struct req *q, int i, double *out)
{
	lo_arg **argv = lo_message_get_argv(q->m);
	const char *types = lo_message_get_types(q->m);
	int32_t i32;
	int64_t i64;
	float f;

	if (i >= lo_message_get_argc(q->m))
		return -ENOENT;
	switch (types[i]) {
	case LO_INT32:
		ARG_READ(i32, argv[i]);
		*out = i32;
		return 0;
	case LO_FLOAT:
		ARG_READ(f, argv[i]);
		*out = f;
		return isfinite(*out) ? 0 : -EINVAL;
	case LO_DOUBLE:
		ARG_READ(*out, argv[i]);
		return isfinite(*out) ? 0 : -EINVAL;
	case LO_INT64:
		ARG_READ(i64, argv[i]);
		*out = (double)i64;
		return 0;
	default:
		return -EINVAL;
	}
}

static int arg_str(struct req *q, int i, const char **out)
{
	lo_arg **argv = lo_message_get_argv(q->m);
	const char *types = lo_message_get_types(q->m);

	if (i >= lo_message_get_argc(q->m))
		return -ENOENT;
	if (types[i] != LO_STRING && types[i] != LO_SYMBOL)
		return -EINVAL;
	*out = (const char *)argv[i]; /* strings need no alignment */
	return 0;
}

static void do_subscribe(struct req *q)
{
	struct emg_osc *o = q->o;
	double lease = o->p.default_lease_s;
	int r = arg_num(q, 0, &lease), s;

	if (o->rsend) {
		/* its stream would go to a TCP port as UDP: the WebSocket has LISTEN for that */
		reply_error(q, "not over WebSocket: LISTEN to the paths instead (OSCQuery)");
		return;
	}
	if (r == -EINVAL || lease < 1) {
		reply_error(q, "lease must be a number of seconds >= 1");
		return;
	}
	if (lease > o->p.max_lease_s)
		lease = o->p.max_lease_s;
	s = find_sub(o, q->from, q->fromlen);
	if (s < 0) {
		if (o->nsubs >= o->subcap) {
			o->st.rejected++;
			reply_error(q, "subscriber limit reached");
			return;
		}
		/* One host must not hold every slot for a whole lease (issue 16 #6). */
		if (o->p.max_per_host && host_subscriptions(o, q->from, o->nsubs) >= o->p.max_per_host) {
			char err[96];
			o->st.rejected++;
			snprintf(err, sizeof(err),
				 "subscriber limit per host reached (max_subscribers_per_host = %u)",
				 o->p.max_per_host);
			reply_error(q, err);
			return;
		}
		s = (int)o->nsubs++;
		memset(&o->subs[s], 0, sizeof(o->subs[s]));
		memcpy(&o->subs[s].sa, q->from, q->fromlen);
		o->subs[s].len = q->fromlen;
	}
	o->subs[s].expires_ns = q->now + (uint64_t)(lease * 1e9);
	reply(q, EMG_OSC_ADDR_SUBSCRIBED, (int)lease);
}

static void remove_sub(struct emg_osc *o, unsigned i)
{
	o->subs[i] = o->subs[--o->nsubs];
}

static void do_unsubscribe(struct req *q)
{
	int s = find_sub(q->o, q->from, q->fromlen);

	if (s >= 0)
		remove_sub(q->o, (unsigned)s);
	reply(q, EMG_OSC_ADDR_UNSUBSCRIBED);
}

static void fill_status(struct emg_osc *o, struct emg_osc_status *st)
{
	memset(st, 0, sizeof(*st));
	st->state = "streaming";
	if (o->h.status)
		o->h.status(o->h.ud, st);
}

static void do_status(struct req *q)
{
	struct emg_osc_status st;

	fill_status(q->o, &st);
	reply(q, EMG_OSC_ADDR_STATUS, st.state, st.rate, st.channels, st.overruns);
}

static void do_ping(struct req *q)
{
	reply(q, EMG_OSC_ADDR_PONG);
}

static int clamp_i32(uint64_t v)
{
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

/* Counters as i arguments (wrapping is not an issue below 2^31 packets). */
static void do_stats(struct req *q)
{
	const struct emg_osc_stats *st = &q->o->st;

	unsigned web = 0;
	uint64_t web_dropped = 0;

	if (q->o->h.web_stats)
		q->o->h.web_stats(q->o->h.ud, &web, &web_dropped);
	reply(q, EMG_OSC_ADDR_STATS, clamp_i32(st->received), clamp_i32(st->handled),
	      clamp_i32(st->malformed), clamp_i32(st->unknown), clamp_i32(st->denied),
	      clamp_i32(st->rate_limited), clamp_i32(st->rejected), (int)q->o->nsubs, (int)web,
	      clamp_i32(web_dropped));
}

/* Run a handler and answer /emgd/ok or /emgd/error. */
static void answer(struct req *q, int r, const char *err)
{
	if (r < 0)
		reply_error(q, err[0] ? err : strerror(-r));
	else
		reply(q, EMG_OSC_ADDR_OK, q->path);
}

static void do_cal_rest(struct req *q)
{
	double secs = 5;
	char err[256] = "";
	int r = arg_num(q, 0, &secs);

	if (r == -EINVAL || !q->o->h.calibrate_rest) {
		reply_error(q, "usage: /emgd/calibrate/rest [f seconds]");
		return;
	}
	answer(q, q->o->h.calibrate_rest(q->o->h.ud, secs, err, sizeof(err)), err);
}

static void do_cal_mvc(struct req *q)
{
	const char *muscle;
	double secs = 5;
	char err[256] = "";

	if (arg_str(q, 0, &muscle) < 0 || arg_num(q, 1, &secs) == -EINVAL ||
	    !q->o->h.calibrate_mvc) {
		reply_error(q, "usage: /emgd/calibrate/mvc s muscle [f seconds]");
		return;
	}
	answer(q, q->o->h.calibrate_mvc(q->o->h.ud, muscle, secs, err, sizeof(err)), err);
}

static void do_marker(struct req *q)
{
	const char *text;
	char err[256] = "";

	if (arg_str(q, 0, &text) < 0 || !q->o->h.marker) {
		reply_error(q, "usage: /emgd/marker s text");
		return;
	}
	answer(q, q->o->h.marker(q->o->h.ud, text, err, sizeof(err)), err);
}

static void do_rec_start(struct req *q)
{
	const char *name = "";
	char err[256] = "";

	if (arg_str(q, 0, &name) == -EINVAL) {
		reply_error(q, "usage: /emgd/record/start [s name]");
		return;
	}
	if (!q->o->h.record_start) {
		reply_error(q, "recording is not available in this build");
		return;
	}
	answer(q, q->o->h.record_start(q->o->h.ud, name, err, sizeof(err)), err);
}

static void do_rec_stop(struct req *q)
{
	char err[256] = "";

	if (!q->o->h.record_stop) {
		reply_error(q, "recording is not available in this build");
		return;
	}
	answer(q, q->o->h.record_stop(q->o->h.ud, err, sizeof(err)), err);
}

static void do_latency(struct req *q)
{
	struct emg_osc_latency l;

	memset(&l, 0, sizeof(l));
	if (q->o->h.latency)
		q->o->h.latency(q->o->h.ud, &l);
	reply(q, EMG_OSC_ADDR_LATENCY, l.events, (double)l.event_ms[0],
	      (double)l.event_ms[1], (double)l.event_ms[2], (double)l.event_ms[3], l.metrics,
	      (double)l.metric_ms[0], (double)l.metric_ms[1], (double)l.metric_ms[2],
	      (double)l.metric_ms[3]);
}

static void do_ana_reset(struct req *q)
{
	char err[256] = "";

	if (!q->o->h.analytics_reset) {
		reply_error(q, "analytics are not available");
		return;
	}
	answer(q, q->o->h.analytics_reset(q->o->h.ud, err, sizeof(err)), err);
}

/* Control: the handler of each address-table row emgd receives (paths live in addrs[]). */
static void (*const methods[EMG_OSC_ADDR_COUNT])(struct req *q) = {
	[EMG_OSC_ADDR_LATENCY] = do_latency,
	[EMG_OSC_ADDR_SUBSCRIBE] = do_subscribe,
	[EMG_OSC_ADDR_UNSUBSCRIBE] = do_unsubscribe,
	[EMG_OSC_ADDR_STATUS] = do_status,
	[EMG_OSC_ADDR_PING] = do_ping,
	[EMG_OSC_ADDR_STATS] = do_stats,
	[EMG_OSC_ADDR_CAL_REST] = do_cal_rest,
	[EMG_OSC_ADDR_CAL_MVC] = do_cal_mvc,
	[EMG_OSC_ADDR_MARKER] = do_marker,
	[EMG_OSC_ADDR_REC_START] = do_rec_start,
	[EMG_OSC_ADDR_REC_STOP] = do_rec_stop,
	[EMG_OSC_ADDR_ANA_RESET] = do_ana_reset,
};

static void handle_message(struct emg_osc *o, const void *buf, size_t len,
			   const struct sockaddr *from, socklen_t fromlen, uint64_t now)
{
	struct req q = { .o = o, .from = from, .fromlen = fromlen, .now = now };
	int result = 0;

	/* The datagram paid one token for its first message; every further message
	 * of a bundle pays its own, so a bundle cannot multiply replies past the
	 * per-source rate limit (found by tests/fuzz/fuzz_osc.c). */
	if (o->dgram_msgs++ && !rate_ok(o, from, now)) {
		o->st.rate_limited++;
		o->dgram_limited = 1;
		return;
	}
	/* liblo wants a mutable pointer but only reads; it validates every length and string. */
	q.m = lo_message_deserialise((void *)buf, len, &result);
	if (!q.m) {
		o->st.malformed++;
		return;
	}
	q.path = lo_get_path((void *)buf, (ssize_t)len);
	if (!q.path) {
		o->st.malformed++;
		lo_message_free(q.m);
		return;
	}
	for (size_t i = 0; i < EMG_OSC_ADDR_COUNT; i++)
		if (methods[i] && !strcmp(q.path, addrs[i].path)) {
			o->st.handled++;
			methods[i](&q);
			lo_message_free(q.m);
			return;
		}
	o->st.unknown++;
	reply_error(&q, "unknown address");
	lo_message_free(q.m);
}

/* Bundles from clients (TouchOSC, SuperCollider) are unpacked, to a bounded depth. */
static void handle_packet(struct emg_osc *o, const unsigned char *buf, size_t len,
			  const struct sockaddr *from, socklen_t fromlen, uint64_t now, int depth)
{
	if (len >= 16 && !memcmp(buf, "#bundle", 8)) {
		size_t off = 16;
		if (depth >= 4) {
			o->st.malformed++;
			return;
		}
		while (off < len) {
			uint32_t n;
			if (len - off < 4) {
				o->st.malformed++;
				return;
			}
			memcpy(&n, buf + off, 4);
			n = ntohl(n);
			off += 4;
			if (n == 0 || n > len - off || (n & 3)) {
				o->st.malformed++;
				return;
			}
			handle_packet(o, buf + off, n, from, fromlen, now, depth + 1);
			if (o->dgram_limited)
				return;
			off += n;
		}
		return;
	}
	handle_message(o, buf, len, from, fromlen, now);
}

void emg_osc_handle(struct emg_osc *o, const void *buf, size_t len, const struct sockaddr *from,
		    socklen_t fromlen, uint64_t now_ns)
{
	o->st.received++;
	o->st.bytes_in += len;
	if (!from || (from->sa_family != AF_INET && from->sa_family != AF_INET6) ||
	    fromlen > sizeof(struct sockaddr_storage)) {
		o->st.malformed++;
		return;
	}
	if (!allowed(o, from)) {
		o->st.denied++;
		return;
	}
	if (!rate_ok(o, from, now_ns)) {
		o->st.rate_limited++;
		return;
	}
	if (len < 8 || (len & 3)) {
		o->st.malformed++;
		return;
	}
	o->dgram_msgs = 0;
	o->dgram_limited = 0;
	handle_packet(o, buf, len, from, fromlen, now_ns, 0);
}

void emg_osc_handle_via(struct emg_osc *o, const void *buf, size_t len, const struct sockaddr *from,
			socklen_t fromlen, uint64_t now_ns, emg_osc_send_fn reply_fn, void *reply_ud)
{
	o->rsend = reply_fn;
	o->rsend_ud = reply_ud;
	emg_osc_handle(o, buf, len, from, fromlen, now_ns);
	o->rsend = NULL;
	o->rsend_ud = NULL;
}

int emg_osc_is_query(const char *path)
{
	static const enum emg_osc_addr_id queries[] = { EMG_OSC_ADDR_PING, EMG_OSC_ADDR_STATUS,
							EMG_OSC_ADDR_STATS, EMG_OSC_ADDR_LATENCY };

	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
		if (!strcmp(path, addrs[queries[i]].path))
			return 1;
	return 0;
}

void emg_osc_recv(struct emg_osc *o, uint64_t now_ns)
{
	/* 64 KiB: a datagram larger than any valid request is read whole, counted and dropped. */
	static unsigned char buf[65536];
	struct sockaddr_storage from;

	for (int budget = 0; budget < 256; budget++) {
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(o->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			return;
		if ((size_t)n > sizeof(buf)) {
			o->st.received++;
			o->st.malformed++;
			continue;
		}
		emg_osc_handle(o, buf, (size_t)n, (struct sockaddr *)&from, fromlen, now_ns);
	}
}

void emg_osc_expire(struct emg_osc *o, uint64_t now_ns)
{
	for (unsigned i = 0; i < o->nsubs;)
		if (o->subs[i].expires_ns <= now_ns)
			remove_sub(o, i);
		else
			i++;
}

/* ---- publishing (paths and type tags from addrs[]) ---- */

/* Start o->msg as path with the row's tags expanded for n muscles; arguments are put by the caller. */
static void msg_begin(struct emg_osc *o, const char *path, enum emg_osc_addr_id id, unsigned n)
{
	char tags[EMG_MUSCLES_MAX + 16];

	tags[0] = ',';
	if (emg_osc_types_expand(addrs[id].types, n, tags + 1, sizeof(tags) - 1) < 0) {
		o->msg.overflow = 1;
		return;
	}
	o->msg.n = 0;
	o->msg.overflow = 0;
	put_str(&o->msg, path);
	put_str(&o->msg, tags);
}

void emg_osc_publish_metrics(struct emg_osc *o, const struct emg_out *rec)
{
	unsigned n = rec->nmuscles < o->nmuscles ? rec->nmuscles : o->nmuscles;

	if (o->nsubs == 0 && o->ntargets == 0 && !o->tap)
		return;
	bundle_begin(&o->pkt);
	for (unsigned i = 0; i < n; i++) {
		const struct emg_out_muscle *m = &rec->m[i];
		msg(&o->msg, o->paths[i].rms, addrs[EMG_OSC_ADDR_RMS].types, (double)m->rms);
		bundle_add(o);
		if (m->level >= 0) {
			msg(&o->msg, o->paths[i].level, addrs[EMG_OSC_ADDR_LEVEL].types, (double)m->level);
			bundle_add(o);
		}
		msg(&o->msg, o->paths[i].active, addrs[EMG_OSC_ADDR_ACTIVE].types, (int)m->active);
		bundle_add(o);
	}
	/* /emg/levels f...: one value per muscle, -1 where no MVC exists yet. */
	msg_begin(o, addrs[EMG_OSC_ADDR_LEVELS].path, EMG_OSC_ADDR_LEVELS, n);
	for (unsigned i = 0; i < n; i++)
		put_float(&o->msg, rec->m[i].level >= 0 ? rec->m[i].level : -1.0f);
	bundle_add(o);
	msg(&o->msg, addrs[EMG_OSC_ADDR_FRAME].path, addrs[EMG_OSC_ADDR_FRAME].types, (int)(rec->tick & 0x7fffffff),
	    (int)(rec->dropped > 0x7fffffff ? 0x7fffffff : rec->dropped));
	bundle_add(o);
	send_all(o, &o->pkt);
}

void emg_osc_publish_event(struct emg_osc *o, const struct emg_out *rec, uint64_t now_ns)
{
	double age = now_ns > rec->t_ns ? (double)(now_ns - rec->t_ns) * 1e-9 : 0.0;
	int sample = (int)(rec->sample & 0x7fffffff);

	if (rec->muscle >= o->nmuscles)
		return;
	if (rec->type == EMG_OUT_ONSET)
		msg(&o->msg, o->paths[rec->muscle].onset, addrs[EMG_OSC_ADDR_ONSET].types, age, sample);
	else
		msg(&o->msg, o->paths[rec->muscle].offset, addrs[EMG_OSC_ADDR_OFFSET].types, age,
		    (double)rec->duration_s);
	send_all(o, &o->msg);
}

void emg_osc_publish_status(struct emg_osc *o, const struct emg_osc_status *st)
{
	msg(&o->msg, addrs[EMG_OSC_ADDR_STATUS].path, addrs[EMG_OSC_ADDR_STATUS].types, st->state, st->rate,
	    st->channels, st->overruns);
	send_all(o, &o->msg);
}

void emg_osc_publish_calibrated(struct emg_osc *o, const char *kind, const char *muscle,
				float value, int ok)
{
	msg(&o->msg, addrs[EMG_OSC_ADDR_CALIBRATED].path, addrs[EMG_OSC_ADDR_CALIBRATED].types, kind, muscle,
	    (double)value, ok);
	send_all(o, &o->msg);
}

void emg_osc_publish_error(struct emg_osc *o, const char *addr, const char *message)
{
	msg(&o->msg, addrs[EMG_OSC_ADDR_ERROR].path, addrs[EMG_OSC_ADDR_ERROR].types, addr, message);
	send_all(o, &o->msg);
}

void emg_osc_publish_order(struct emg_osc *o, const struct emg_analytics_order *ord)
{
	unsigned n = ord->nmuscles < o->nmuscles ? ord->nmuscles : o->nmuscles;

	if ((o->nsubs == 0 && o->ntargets == 0 && !o->tap) || ord->first >= n)
		return;
	bundle_begin(&o->pkt);
	/* /emg/order i group s first f lag...: fixed tags for Pd's [unpack] and OSCQuery. */
	msg_begin(o, addrs[EMG_OSC_ADDR_ORDER].path, EMG_OSC_ADDR_ORDER, n);
	put_u32(&o->msg, ord->group & 0x7fffffff);
	put_str(&o->msg, o->names[ord->first]);
	for (unsigned i = 0; i < n; i++)
		put_float(&o->msg, ord->lag_ms[i]);
	bundle_add(o);
	for (unsigned i = 0; i < n; i++)
		if (ord->lag_ms[i] >= 0) {
			msg(&o->msg, o->paths[i].lag, addrs[EMG_OSC_ADDR_LAG].types, (double)ord->lag_ms[i]);
			bundle_add(o);
		}
	for (unsigned k = 0; k < ord->npairs; k++) {
		if (ord->pair[k].a >= n || ord->pair[k].b >= n)
			continue;
		msg(&o->msg, addrs[EMG_OSC_ADDR_PAIR].path, addrs[EMG_OSC_ADDR_PAIR].types, o->names[ord->pair[k].a],
		    o->names[ord->pair[k].b], (double)ord->pair[k].lag_ms);
		bundle_add(o);
	}
	send_all(o, &o->pkt);
}

void emg_osc_publish_rep(struct emg_osc *o, const struct emg_analytics_rep *r)
{
	if (r->muscle >= o->nmuscles)
		return;
	msg(&o->msg, addrs[EMG_OSC_ADDR_REP].path, addrs[EMG_OSC_ADDR_REP].types, o->names[r->muscle],
	    (int)(r->rep & 0x7fffffff), (double)r->peak, (double)r->mean,
	    (double)r->time_to_peak_s, (double)r->duration_s, (double)r->lag_ms,
	    (double)r->symmetry_pct, r->paired, r->calibrated ? "pct_mvc" : "uV");
	send_all(o, &o->msg);
}
