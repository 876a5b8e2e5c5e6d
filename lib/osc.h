/* SPDX-License-Identifier: MIT */
/*
 * emg_osc: the OSC face of emgd - publishing, subscriptions and control.
 *
 * Main thread only (liblo is not thread-safe and neither is this).  The
 * module owns one UDP socket: control packets are received on it and every
 * reply and stream leaves from it, so clients see one address.  Owning the
 * socket (instead of a lo_server) lets the allow-list and the per-source
 * rate limit run on the source address *before* any parsing, and makes
 * emg_osc_handle() - the exact function the daemon runs per datagram - the
 * fuzz target.  Incoming packets are validated and decoded by liblo's
 * lo_message_deserialise(); outgoing ones are encoded into a fixed buffer
 * (only i, f and s arguments), so publishing never allocates.
 *
 * /emgd/stats answers the counters below as
 *   i received, i handled, i malformed, i unknown, i denied, i rate_limited, i rejected, i subscribers,
 *   i web clients, i web frames dropped (OSCQuery WebSocket streaming, via the web_stats handler)
 *
 * /emgd/latency answers sample-arrival -> sendto latency in ms as
 *   i events, f p50, f p99, f p99.9, f max, i metric bundles, f p50, f p99, f p99.9, f max
 *
 * Security model: replies and streams go only to the address a request came
 * from; non-loopback sources must match the allow list; every source host
 * (address, whatever the port) has one token bucket that all its ports and
 * subscriptions share; one host holds at most max_per_host subscriptions; malformed, denied and rate-limited packets are counted and
 * dropped without a reply, so an unknown host gets no more bytes back than
 * it sent.
 */
#ifndef EMG_OSC_H
#define EMG_OSC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netaddr.h"

/* Only pointers to these cross this interface; osc.c includes their headers. */
struct emg_analytics_order;
struct emg_analytics_rep;
struct emg_muscles;
struct emg_out;

#define EMG_OSC_MAX_PACKET 1472 /* Ethernet MTU minus IPv4 + UDP headers */

struct emg_osc;

struct emg_osc_params {
	unsigned max_subscribers;
	unsigned max_per_host; /* subscribers per source host (loopback is one host); 0 = no limit */
	unsigned default_lease_s;
	unsigned max_lease_s;
	double rate_limit;  /* packets per second per source host, shared by all its ports */
	unsigned rate_burst;
	const struct emg_cidr *allow;
	unsigned nallow;
};

struct emg_osc_status {
	const char *state; /* waiting-device, device-failed, calibrating, recording, streaming */
	int rate;
	int channels;
	int overruns;
};

/* Latency report for /emgd/latency: count and p50/p99/p99.9/max in ms, for events and metrics. */
struct emg_osc_latency {
	int events;
	float event_ms[4];
	int metrics;
	float metric_ms[4];
};

/* What the daemon does for control messages; each returns 0 or negative errno and may fill err. */
struct emg_osc_handlers {
	void *ud;
	int (*calibrate_rest)(void *ud, double seconds, char *err, size_t errlen);
	int (*calibrate_mvc)(void *ud, const char *muscle, double seconds, char *err, size_t errlen);
	int (*marker)(void *ud, const char *text, char *err, size_t errlen);
	int (*record_start)(void *ud, const char *name, char *err, size_t errlen);
	int (*record_stop)(void *ud, char *err, size_t errlen);
	void (*status)(void *ud, struct emg_osc_status *st);
	void (*latency)(void *ud, struct emg_osc_latency *lat);
	int (*analytics_reset)(void *ud, char *err, size_t errlen);
	void (*web_stats)(void *ud, unsigned *clients, uint64_t *dropped); /* NULL: 0, 0 */
};

/*
 * emgd's OSC address space, one row per address it sends or serves: the
 * publisher and the control dispatcher take paths and type tags from this
 * table, and OSCQuery (lib/oscquery.c) publishes it, so the two cannot drift.
 */
enum emg_osc_access { EMG_OSC_SENT = 1, EMG_OSC_RECEIVED = 2 };

struct emg_osc_addr {
	const char *path;  /* "{muscle}" stands for each muscle name */
	const char *types; /* OSC type tags; '*' repeats the tag before it once per muscle */
	unsigned access;   /* EMG_OSC_SENT | EMG_OSC_RECEIVED */
	const char *units; /* one per tag, '|'-separated, "" = none (OSCQuery UNIT) */
	const char *range; /* one per tag, '|'-separated: "min:max" (either may be empty), "=a,b,c" or "" */
	const char *desc;
};

/* The rows of the address table, by name: code says EMG_OSC_ADDR_STATUS, never "/emgd/status". */
enum emg_osc_addr_id {
	/* stream, per muscle */
	EMG_OSC_ADDR_RMS, EMG_OSC_ADDR_LEVEL, EMG_OSC_ADDR_ACTIVE, EMG_OSC_ADDR_ONSET,
	EMG_OSC_ADDR_OFFSET, EMG_OSC_ADDR_LAG,
	/* stream */
	EMG_OSC_ADDR_LEVELS, EMG_OSC_ADDR_FRAME, EMG_OSC_ADDR_ORDER, EMG_OSC_ADDR_PAIR,
	EMG_OSC_ADDR_REP, EMG_OSC_ADDR_STATUS, EMG_OSC_ADDR_CALIBRATED,
	/* replies */
	EMG_OSC_ADDR_SUBSCRIBED, EMG_OSC_ADDR_UNSUBSCRIBED, EMG_OSC_ADDR_PONG, EMG_OSC_ADDR_OK,
	EMG_OSC_ADDR_ERROR, EMG_OSC_ADDR_STATS, EMG_OSC_ADDR_LATENCY,
	/* control */
	EMG_OSC_ADDR_SUBSCRIBE, EMG_OSC_ADDR_UNSUBSCRIBE, EMG_OSC_ADDR_PING, EMG_OSC_ADDR_CAL_REST,
	EMG_OSC_ADDR_CAL_MVC, EMG_OSC_ADDR_MARKER, EMG_OSC_ADDR_REC_START, EMG_OSC_ADDR_REC_STOP,
	EMG_OSC_ADDR_ANA_RESET,
	EMG_OSC_ADDR_COUNT
};

/* The i-th row of the address table, NULL past the end. */
const struct emg_osc_addr *emg_osc_address(unsigned i);

/* The path of row id ("{muscle}" not expanded), NULL for an unknown id. */
const char *emg_osc_path(enum emg_osc_addr_id id);

/* The row a concrete path belongs to, or -1; for "/emg/<muscle>/<leaf>" rows the
 * name's start and length go to *muscle and *mlen (either may be NULL). */
int emg_osc_address_find(const char *path, const char **muscle, size_t *mlen);

/* Expand a type template ('*' = once per muscle) for nmuscles into buf; -ENOSPC if too long. */
int emg_osc_types_expand(const char *tmpl, unsigned nmuscles, char *buf, size_t len);

struct emg_osc_stats {
	uint64_t received;     /* datagrams read */
	uint64_t handled;      /* control messages acted on */
	uint64_t malformed;    /* not valid OSC, or wrong argument types */
	uint64_t unknown;      /* valid OSC to an address emgd does not serve */
	uint64_t denied;       /* non-loopback source outside the allow list */
	uint64_t rate_limited; /* over the per-source budget */
	uint64_t rejected;     /* subscriber cap or per-host subscriber limit reached */
	uint64_t sent;         /* datagrams sent */
	uint64_t send_errors;  /* datagrams the kernel refused (buffer full, unreachable) */
	uint64_t bytes_in;
	uint64_t bytes_out;
};

/* Send hook, for tests and fuzzing: returns bytes sent or negative errno. */
typedef int (*emg_osc_send_fn)(void *ud, const void *buf, size_t len, const struct sockaddr *to,
			       socklen_t tolen);

/* Create the OSC endpoint (no socket yet). */
int emg_osc_new(struct emg_osc **out, const struct emg_osc_params *p,
		const struct emg_osc_handlers *h);

/* Free it, closing its socket. */
void emg_osc_free(struct emg_osc *o);

/* Replace limits and allow list (reload); subscribers are kept, the excess over a lower cap is dropped newest-first. */
void emg_osc_set_params(struct emg_osc *o, const struct emg_osc_params *p);

/* Publish for this muscle map from now on (paths are precomputed here). */
int emg_osc_set_muscles(struct emg_osc *o, const struct emg_muscles *m);

/* Open a non-blocking UDP socket on listen (port 0: the first free auto port, see
 * EMG_PORT_AUTO_OSC; the one held now first); returns the fd (owned by o) or negative errno
 * (-EADDRINUSE when another socket, e.g. another emgd, holds it: no SO_REUSEADDR).  On
 * failure the previous socket stays, but emg_osc_fd() may have changed (same-port rebind). */
int emg_osc_bind(struct emg_osc *o, const struct emg_hostport *listen);

/* The port the socket is bound to (what listen = auto chose), or 0 without one. */
unsigned emg_osc_port(const struct emg_osc *o);

/* The socket, or -1. */
int emg_osc_fd(const struct emg_osc *o);

/* A copy of every stream packet (not replies), as sent: OSCQuery's WebSocket clients; main thread. */
typedef void (*emg_osc_tap_fn)(void *ud, const void *pkt, size_t len);

/* Also hand every stream packet to fn (NULL: stop); publishing then runs without UDP subscribers too. */
void emg_osc_set_tap(struct emg_osc *o, emg_osc_tap_fn fn, void *ud);

/* Route output through fn instead of the socket (tests, fuzzing). */
void emg_osc_set_sender(struct emg_osc *o, emg_osc_send_fn fn, void *ud);

/* Replace the static targets (from config). */
int emg_osc_set_targets(struct emg_osc *o, const struct emg_hostport *t, unsigned n);

/* Read and handle every datagram waiting on the socket. */
void emg_osc_recv(struct emg_osc *o, uint64_t now_ns);

/* Handle one datagram from `from` - the daemon's per-packet path and the fuzz entry point. */
void emg_osc_handle(struct emg_osc *o, const void *buf, size_t len, const struct sockaddr *from,
		    socklen_t fromlen, uint64_t now_ns);

/*
 * Handle one control packet that came over another transport (the OSCQuery
 * WebSocket, lib/oscquery.c): the same allow list, per-host rate limit,
 * validation and handlers as emg_osc_handle(), but the requester's replies
 * (/emgd/ok, /emgd/error, /emgd/pong...) go to reply_fn instead of a UDP
 * sendto to `from`; /emgd/subscribe is refused (such a client LISTENs).
 */
void emg_osc_handle_via(struct emg_osc *o, const void *buf, size_t len, const struct sockaddr *from,
			socklen_t fromlen, uint64_t now_ns, emg_osc_send_fn reply_fn, void *reply_ud);

/* 1 if path is a request that only reads (ping, status, stats, latency): allowed to read-only web viewers. */
int emg_osc_is_query(const char *path);

/* Drop subscribers whose lease ran out. */
void emg_osc_expire(struct emg_osc *o, uint64_t now_ns);

/* Current subscriber count. */
unsigned emg_osc_subscribers(const struct emg_osc *o);

/* Counters. */
void emg_osc_stats(const struct emg_osc *o, struct emg_osc_stats *st);

/* Publish one tick's metrics as bundles (split at EMG_OSC_MAX_PACKET). */
void emg_osc_publish_metrics(struct emg_osc *o, const struct emg_out *rec);

/* Publish an onset or offset event at once; now_ns gives its age. */
void emg_osc_publish_event(struct emg_osc *o, const struct emg_out *rec, uint64_t now_ns);

/* Publish /emgd/status to every subscriber and target. */
void emg_osc_publish_status(struct emg_osc *o, const struct emg_osc_status *st);

/* Tell every subscriber that an asynchronous request failed: /emgd/error s addr s message. */
void emg_osc_publish_error(struct emg_osc *o, const char *addr, const char *message);

/* Publish a finished calibration: /emgd/calibrated s kind s muscle f value i ok. */
void emg_osc_publish_calibrated(struct emg_osc *o, const char *kind, const char *muscle,
				float value, int ok);

/* Publish a closed burst group: /emg/order, /emg/<muscle>/lag per muscle that fired, /emg/pair. */
void emg_osc_publish_order(struct emg_osc *o, const struct emg_analytics_order *ord);

/* Publish a finished repetition: /emg/rep. */
void emg_osc_publish_rep(struct emg_osc *o, const struct emg_analytics_rep *rep);

#endif
