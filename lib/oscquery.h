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
 * Streaming (issue 14): a WebSocket upgrade on the same port (libmicrohttpd's
 * MHD_create_response_for_upgrade, framing in lib/ws.c) makes the client a
 * subscriber with its own LISTEN set: it sends {"COMMAND":"LISTEN","DATA":
 * "/emg/glute_max_l/rms"} (IGNORE to stop) and gets binary frames holding
 * the same OSC bytes as the UDP stream, a bundle cut down to the messages it
 * listens to.
 *
 * Control over the WebSocket (README "Browser view"): a binary frame from a
 * client is an OSC packet for emgd's control addresses, exactly as over UDP.
 * The HTTP thread only decides whether this client may control ([web]
 * control, the token, the Origin) and queues the bytes; the main thread runs
 * them through emg_osc_handle_via() - the same allow list, per-host rate
 * limit, validation and handlers as a UDP datagram from that host - and the
 * requester's replies come back to it as binary frames.  A client that may
 * not control can still send the queries (ping, status, stats, latency);
 * anything else is answered /emgd/error without reaching the main thread.
 * {"COMMAND":"AUTH","DATA":"<token>"} presents the shared token.
 *
 * The browser view (README "Browser view"): GET /ui/<file> serves static files
 * from one directory (params.www), through the same accept policy, limits and
 * deadline as the namespace; the namespace JSON stays at /, as OSCQuery
 * clients expect.  Only regular files of known types, no dot segments, no
 * symbolic links; everything else is 404.
 *
 * Threads: the document is built on the caller's thread (the daemon's main
 * loop) and swapped under a mutex that only that thread and the HTTP thread
 * take; nothing here touches the acquisition or DSP threads.  The stream is
 * handed over the same way, on a second mutex (wslock): liblo and emg_osc
 * belong to the main thread, so the main thread never gives the HTTP thread
 * anything but bytes.  emg_oscquery_publish() (main thread, from the OSC
 * publisher's tap, off the sample path) filters each packet per client and
 * copies it, already framed, into that client's bounded queue; when a queue
 * is full the oldest frame is dropped and counted, so a client that stops
 * reading costs the main loop one memcpy per tick and never a blocking call;
 * an eventfd wakes the HTTP thread, which alone reads and writes the
 * sockets.  The lock is held only for those copies (no I/O under it).  Both libraries
 * are optional at build time: without libmicrohttpd emg_oscquery_new() says
 * -EOPNOTSUPP; without Avahi, mdns logs one line and HTTP serves alone.
 */
#ifndef EMG_OSCQUERY_H
#define EMG_OSCQUERY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "muscles.h"

struct emg_oscquery;
struct emg_osc;

struct emg_oscquery_params {
	struct emg_hostport http;       /* HTTP listen address (port 0: any free port) */
	int mdns;                       /* advertise with Avahi */
	const char *name;               /* HOST_INFO NAME and service name; NULL or "" = "emgd on <hostname>" */
	struct emg_hostport osc;        /* the OSC (UDP) address, for HOST_INFO and _osc._udp */
	emg_log_fn *log;  /* lib/log.h levels; any thread; NULL = stderr */
	void *log_ud;
	const struct emg_cidr *allow;   /* [osc] allow: who else may connect (loopback always may) */
	unsigned nallow;
	const char *www;                /* directory served at /ui/ (copied); NULL or "": none */
	int control;                    /* [web] control: WebSocket clients may send control messages */
	const char *token;              /* [web] token (copied); non-loopback clients must present it; NULL or "": none */
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

/* The largest file served at /ui/: the view is a few small text files. */
#define EMG_OSCQUERY_WWW_MAX_FILE (1024 * 1024)

/*
 * WebSocket limits: at most EMG_OSCQUERY_WS_MAX streaming clients (each also
 * holds one of its address's EMG_OSCQUERY_MAX_PER_IP connections), each with
 * a queue of EMG_OSCQUERY_WS_QUEUE frames (about 1.3 s of 50 Hz ticks) and at
 * most EMG_OSCQUERY_WS_LISTEN paths; a client message (command) is at most
 * EMG_OSCQUERY_WS_MAX_MESSAGE bytes.
 */
#define EMG_OSCQUERY_WS_MAX 32
#define EMG_OSCQUERY_WS_QUEUE 64
#define EMG_OSCQUERY_WS_LISTEN 64
#define EMG_OSCQUERY_WS_MAX_MESSAGE 1024

/* Control packets waiting for the main thread, all clients together; more are answered "busy". */
#define EMG_OSCQUERY_WS_COMMANDS 32

/* The longest [web] token. */
#define EMG_OSCQUERY_TOKEN_MAX 128

/* WebSocket counters since start. */
struct emg_oscquery_ws_stats {
	unsigned clients;       /* connected now */
	unsigned long accepted; /* upgrades */
	unsigned long dropped;  /* frames dropped from full queues (slow clients) */
	unsigned long refused;  /* upgrades over EMG_OSCQUERY_WS_MAX, or malformed */
	unsigned long closed;   /* clients closed for breaking the protocol or a command */
	unsigned long commands; /* control packets handed to the main thread */
	unsigned long denied;   /* control packets refused: read-only client, queue full */
	unsigned long changes;  /* PATH_ADDED / PATH_REMOVED / PATH_CHANGED notifications queued */
};

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

/* Serve /ui/ from another directory from now on, NULL or "" for none (reload); -ENAMETOOLONG. */
int emg_oscquery_set_www(struct emg_oscquery *q, const char *dir);

/* Replace [web] control and token (reload; NULL token: none); -ENAMETOOLONG. */
int emg_oscquery_set_control(struct emg_oscquery *q, int control, const char *token);

/* An fd that is readable while control packets from WebSocket clients wait (-1: none); main thread polls it. */
int emg_oscquery_control_fd(const struct emg_oscquery *q);

/* Run the waiting control packets through o (emg_osc_handle_via), replies to their clients; main thread. */
void emg_oscquery_control_run(struct emg_oscquery *q, struct emg_osc *o, uint64_t now_ns);

/* Serve the namespace of another muscle map from now on (reload); WebSocket clients are told what changed. */
int emg_oscquery_set_muscles(struct emg_oscquery *q, const struct emg_muscles *m);

/* The TCP port the HTTP server listens on. */
unsigned emg_oscquery_port(const struct emg_oscquery *q);

/* Parse a client's JSON command {"COMMAND": s, "DATA": s}: 0, -EINVAL (not that shape) or -ENOSPC. */
int emg_oscquery_command(const char *json, size_t len, char *cmd, size_t cmdlen, char *data,
			 size_t datalen);

/* Stream one OSC packet (as sent over UDP) to the WebSocket clients listening to its addresses; main thread. */
void emg_oscquery_publish(struct emg_oscquery *q, const void *pkt, size_t len);

/* WebSocket counters. */
void emg_oscquery_ws_stats(struct emg_oscquery *q, struct emg_oscquery_ws_stats *st);

/* Stop the HTTP server and the advertisement; free. */
void emg_oscquery_free(struct emg_oscquery *q);

#endif
