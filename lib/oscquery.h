/* SPDX-License-Identifier: MIT */
/*
 * emg_oscquery: zero-configuration discovery (the Vidvox OSCQuery proposal).
 *
 * An HTTP server (libmicrohttpd, its own internal polling thread) serves the
 * JSON namespace of every address emgd sends or serves - generated from the
 * OSC address table (emg_osc_address), so it cannot drift from what the
 * publisher sends - with FULL_PATH, CONTENTS, TYPE, ACCESS, DESCRIPTION,
 * RANGE and UNIT, single attributes (GET /emg/levels?TYPE) and ?HOST_INFO.
 * ACCESS 1 marks what emgd sends (subscribe to receive it), 2 what it
 * accepts, 3 both.  With mDNS on, Avahi (its threaded poll) advertises the
 * HTTP server as _oscjson._tcp and the OSC port as _osc._udp.
 *
 * Threads: the document is built on the caller's thread (the daemon's main
 * loop) and swapped under a mutex that only that thread and the HTTP thread
 * take; nothing here touches the acquisition or DSP threads.  Both libraries
 * are optional at build time: without libmicrohttpd emg_oscquery_new() says
 * -EOPNOTSUPP; without Avahi, mdns logs one line and HTTP serves alone.
 */
#ifndef EMG_OSCQUERY_H
#define EMG_OSCQUERY_H

#include <stddef.h>

#include "config.h"
#include "muscles.h"

struct emg_oscquery;

struct emg_oscquery_params {
	struct emg_hostport http;       /* HTTP listen address (port 0: any free port) */
	int mdns;                       /* advertise with Avahi */
	const char *name;               /* HOST_INFO NAME and service name; NULL or "" = "emgd on <hostname>" */
	struct emg_hostport osc;        /* the OSC (UDP) address, for HOST_INFO and _osc._udp */
	void (*log)(void *ud, int prio, const char *msg); /* syslog priorities; any thread */
	void *log_ud;
	const struct emg_cidr *allow;   /* [osc] allow: who else may connect (loopback always may) */
	unsigned nallow;
};

/*
 * HTTP limits (README "Threat model"): at most EMG_OSCQUERY_MAX_CONN
 * connections, EMG_OSCQUERY_MAX_PER_IP per address, and every request must be
 * received and answered within EMG_OSCQUERY_DEADLINE_MS of its connection (or
 * of the previous answer on a kept-alive one) however the bytes trickle in.
 */
#define EMG_OSCQUERY_MAX_CONN 64
#define EMG_OSCQUERY_MAX_PER_IP 8
#define EMG_OSCQUERY_DEADLINE_MS 5000

/* One HTTP answer: status, Content-Type (NULL: none) and a malloc'd body. */
struct emg_oscquery_reply {
	unsigned status;
	const char *type;
	char *body;
	size_t len;
};

/* 1 if built with libmicrohttpd (HTTP) / Avahi (mDNS). */
int emg_oscquery_http_available(void);
int emg_oscquery_mdns_available(void);

/* The namespace (root node with CONTENTS) for a muscle map as JSON text; free() *out. */
int emg_oscquery_json(const struct emg_muscles *m, char **out, size_t *len);

/* The ?HOST_INFO object as JSON text; free() *out. */
int emg_oscquery_host_info(const struct emg_oscquery_params *p, char **out, size_t *len);

/* Start serving the namespace of m (and advertising, if p->mdns). */
int emg_oscquery_new(struct emg_oscquery **out, const struct emg_oscquery_params *p,
		     const struct emg_muscles *m);

/* The namespace of m without a server or advertisement (tests, fuzzing). */
int emg_oscquery_new_offline(struct emg_oscquery **out, const struct emg_oscquery_params *p,
			     const struct emg_muscles *m);

/* Answer one request: method, raw request target ("/path?ATTR", not yet decoded), body size; free r->body. */
int emg_oscquery_answer(struct emg_oscquery *q, const char *method, const char *target,
			size_t upload_size, struct emg_oscquery_reply *r);

/* Replace the networks other than loopback that may connect (reload). */
void emg_oscquery_set_allow(struct emg_oscquery *q, const struct emg_cidr *allow, unsigned n);

/* Serve the namespace of another muscle map from now on (reload). */
int emg_oscquery_set_muscles(struct emg_oscquery *q, const struct emg_muscles *m);

/* The TCP port the HTTP server listens on. */
unsigned emg_oscquery_port(const struct emg_oscquery *q);

/* Stop the HTTP server and the advertisement; free. */
void emg_oscquery_free(struct emg_oscquery *q);

#endif
