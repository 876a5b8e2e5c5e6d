/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "osc.h"
#include "oscquery.h"
#include "ws.h"

#ifdef EMG_HAVE_MICROHTTPD
#include <microhttpd.h>
#endif
#ifdef EMG_HAVE_AVAHI
#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/thread-watch.h>
#endif

/* ---- a growing JSON text ---- */

struct jbuf {
	char *b;
	size_t n, cap;
	int err;
};

static void jput(struct jbuf *j, const char *s, size_t n)
{
	if (j->err)
		return;
	if (j->n + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 4096;
		char *nb;
		while (cap < j->n + n + 1)
			cap *= 2;
		nb = realloc(j->b, cap);
		if (!nb) {
			j->err = -ENOMEM;
			return;
		}
		j->b = nb;
		j->cap = cap;
	}
	memcpy(j->b + j->n, s, n);
	j->n += n;
	j->b[j->n] = '\0';
}

static void js(struct jbuf *j, const char *s)
{
	jput(j, s, strlen(s));
}

static void jprintf(struct jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jprintf(struct jbuf *j, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		j->err = -ENOSPC;
		return;
	}
	jput(j, buf, (size_t)n);
}

/* A JSON string: quotes, backslashes and control characters escaped; n bytes of s. */
static void jstrn(struct jbuf *j, const char *s, size_t n)
{
	js(j, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			jput(j, e, 2);
		} else if (c < 0x20) {
			jprintf(j, "\\u%04x", c);
		} else {
			jput(j, (const char *)&c, 1);
		}
	}
	js(j, "\"");
}

static void jstr(struct jbuf *j, const char *s)
{
	jstrn(j, s, strlen(s));
}

/* ---- the address tree ---- */

enum attr { AT_FULL_PATH, AT_CONTENTS, AT_TYPE, AT_ACCESS, AT_DESCRIPTION, AT_RANGE, AT_UNIT, NATTR };

static const char *const attr_names[NATTR] = { "FULL_PATH", "CONTENTS", "TYPE", "ACCESS",
					       "DESCRIPTION", "RANGE", "UNIT" };

struct tnode {
	char name[EMG_MUSCLE_NAME_MAX + 32];
	char full[128];
	const struct emg_osc_addr *a; /* the address of a method, NULL for a pure container */
	char desc[160];               /* containers */
	struct tnode **kids;
	size_t nkids, cap;
	/* spans in the document: the node's object and each attribute's value */
	size_t start, end;
	size_t av[NATTR][2];
	unsigned char has[NATTR];
};

static void tree_free(struct tnode *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nkids; i++)
		tree_free(t->kids[i]);
	free(t->kids);
	free(t);
}

static struct tnode *child(struct tnode *t, const char *name, size_t len)
{
	struct tnode *k;

	for (size_t i = 0; i < t->nkids; i++)
		if (strlen(t->kids[i]->name) == len && !memcmp(t->kids[i]->name, name, len))
			return t->kids[i];
	size_t plen = strcmp(t->full, "/") ? strlen(t->full) : 0;

	if (len >= sizeof(k->name) || plen + 1 + len >= sizeof(k->full))
		return NULL;
	if (t->nkids == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		struct tnode **nk = realloc(t->kids, cap * sizeof(*nk));
		if (!nk)
			return NULL;
		t->kids = nk;
		t->cap = cap;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	memcpy(k->name, name, len);
	memcpy(k->full, t->full, plen);
	k->full[plen] = '/';
	memcpy(k->full + plen + 1, name, len);
	k->full[plen + 1 + len] = '\0';
	t->kids[t->nkids++] = k;
	return k;
}

/* Insert path (concrete, no placeholder) as a method described by a. */
static int tree_add(struct tnode *root, const char *path, const struct emg_osc_addr *a)
{
	struct tnode *t = root;
	const char *p = path;

	while (*p == '/') {
		const char *e = strchr(p + 1, '/');
		size_t len = e ? (size_t)(e - p - 1) : strlen(p + 1);
		t = child(t, p + 1, len);
		if (!t)
			return -ENOMEM;
		p += 1 + len;
	}
	t->a = a;
	return 0;
}

static void describe_containers(struct tnode *t)
{
	static const struct {
		const char *path, *desc;
	} known[] = {
		{ "/emg", "Streamed to subscribers: metrics every tick, onset/offset events, firing order, repetitions" },
		{ "/emgd", "Daemon control, its replies and status" },
		{ "/emgd/calibrate", "Calibrations: rest baseline (onset detection) and MVC (%MVC reference)" },
		{ "/emgd/record", "Recording to EDF+/BDF+ in the recordings directory" },
		{ "/emgd/analytics", "Firing order and repetition analytics" },
	};

	if (!t->a && !t->desc[0]) {
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(t->full, known[i].path))
				snprintf(t->desc, sizeof(t->desc), "%s", known[i].desc);
		if (!t->desc[0])
			snprintf(t->desc, sizeof(t->desc), "Addresses under %.100s", t->full);
	}
	for (size_t i = 0; i < t->nkids; i++)
		describe_containers(t->kids[i]);
}

static struct tnode *tree_build(const struct emg_muscles *m)
{
	struct tnode *root = calloc(1, sizeof(*root));
	unsigned nm = m ? emg_muscles_count(m) : 0;
	char path[128];

	if (!root)
		return NULL;
	snprintf(root->full, sizeof(root->full), "/");
	snprintf(root->desc, sizeof(root->desc), "emgd: surface EMG metrics and control over OSC");
	for (unsigned i = 0;; i++) {
		const struct emg_osc_addr *a = emg_osc_address(i);
		const char *ph;
		if (!a)
			break;
		ph = strstr(a->path, "{muscle}");
		if (!ph) {
			if (tree_add(root, a->path, a) < 0)
				goto fail;
			continue;
		}
		for (unsigned k = 0; k < nm; k++) {
			snprintf(path, sizeof(path), "%.*s%s%s", (int)(ph - a->path), a->path,
				 emg_muscles_get(m, k)->name, ph + 8);
			if (tree_add(root, path, a) < 0)
				goto fail;
		}
	}
	/* Containers: say what they hold. */
	describe_containers(root);
	for (size_t i = 0; i < root->nkids; i++) {
		struct tnode *t = root->kids[i];
		if (strcmp(t->name, "emg"))
			continue;
		for (unsigned k = 0; k < nm; k++) {
			const struct emg_muscle *mu = emg_muscles_get(m, k);
			struct tnode *c = child(t, mu->name, strlen(mu->name));
			if (c && !c->a)
				snprintf(c->desc, sizeof(c->desc), "Muscle %s: amplifier channel %u, %s side%s%.96s",
					 mu->name, mu->channel + 1, emg_side_name(mu->side),
					 mu->site[0] ? ", " : "", mu->site);
		}
	}
	return root;
fail:
	tree_free(root);
	return NULL;
}

/* Item k of a '|'-separated list, or "" past its end. */
static void list_item(const char *list, unsigned k, const char **s, size_t *n)
{
	const char *p = list ? list : "";

	for (unsigned i = 0; i < k; i++) {
		p = strchr(p, '|');
		if (!p) {
			*s = "";
			*n = 0;
			return;
		}
		p++;
	}
	*s = p;
	*n = strcspn(p, "|");
}

static void range_item(struct jbuf *j, char tag, const char *s, size_t n)
{
	if (n == 0) {
		js(j, "null");
		return;
	}
	if (s[0] == '=') {
		/* "=a,b,c": the only values */
		const char *p = s + 1, *end = s + n;
		js(j, "{\"VALS\":[");
		while (p < end) {
			const char *c = memchr(p, ',', (size_t)(end - p));
			size_t len = c ? (size_t)(c - p) : (size_t)(end - p);
			if (tag == 's')
				jstrn(j, p, len);
			else
				jput(j, p, len);
			p += len + 1;
			if (p < end)
				js(j, ",");
		}
		js(j, "]}");
		return;
	}
	/* "min:max", either side may be empty */
	const char *colon = memchr(s, ':', n);
	size_t lo = colon ? (size_t)(colon - s) : n, hi = colon ? n - lo - 1 : 0;
	js(j, "{");
	if (lo) {
		js(j, "\"MIN\":");
		jput(j, s, lo);
	}
	if (hi) {
		js(j, lo ? ",\"MAX\":" : "\"MAX\":");
		jput(j, colon + 1, hi);
	}
	js(j, "}");
}

/* RANGE or UNIT: one item per expanded type tag; a '*'-repeated tag repeats its item. */
static void per_tag(struct jbuf *j, const struct emg_osc_addr *a, unsigned nm, int unit)
{
	unsigned k = 0;
	int first = 1;

	js(j, "[");
	for (const char *t = a->types; *t; t++) {
		const char *s;
		size_t n;
		unsigned rep;
		if (*t == '*')
			continue;
		rep = t[1] == '*' ? nm : 1;
		list_item(unit ? a->units : a->range, k++, &s, &n);
		for (unsigned r = 0; r < rep; r++) {
			if (!first)
				js(j, ",");
			first = 0;
			if (!unit)
				range_item(j, *t, s, n);
			else if (n)
				jstrn(j, s, n);
			else
				js(j, "null");
		}
	}
	js(j, "]");
}

/* Any non-empty item in a '|'-separated list (units or range)? */
static int any_item(const char *list)
{
	for (const char *p = list; p && *p; p++)
		if (*p != '|')
			return 1;
	return 0;
}

static void begin_attr(struct jbuf *j, struct tnode *t, enum attr at, int *first)
{
	if (!*first)
		js(j, ",");
	*first = 0;
	jstr(j, attr_names[at]);
	js(j, ":");
	t->has[at] = 1;
	t->av[at][0] = j->n;
}

static void end_attr(struct jbuf *j, struct tnode *t, enum attr at)
{
	t->av[at][1] = j->n;
}

static void emit(struct jbuf *j, struct tnode *t, unsigned nm)
{
	int first = 1;
	char types[EMG_MUSCLES_MAX + 16];

	t->start = j->n;
	js(j, "{");
	begin_attr(j, t, AT_FULL_PATH, &first);
	jstr(j, t->full);
	end_attr(j, t, AT_FULL_PATH);
	begin_attr(j, t, AT_DESCRIPTION, &first);
	jstr(j, t->a ? t->a->desc : t->desc);
	end_attr(j, t, AT_DESCRIPTION);
	begin_attr(j, t, AT_ACCESS, &first);
	jprintf(j, "%u", t->a ? t->a->access : 0u);
	end_attr(j, t, AT_ACCESS);
	if (t->a && t->a->types[0] &&
	    emg_osc_types_expand(t->a->types, nm, types, sizeof(types)) == 0) {
		begin_attr(j, t, AT_TYPE, &first);
		jstr(j, types);
		end_attr(j, t, AT_TYPE);
		/* No RANGE at all when no argument has one: "RANGE":[null] (a file name,
		 * a marker text) reads as a broken range to clients and people alike. */
		if (any_item(t->a->range)) {
			begin_attr(j, t, AT_RANGE, &first);
			per_tag(j, t->a, nm, 0);
			end_attr(j, t, AT_RANGE);
		}
		if (any_item(t->a->units)) {
			begin_attr(j, t, AT_UNIT, &first);
			per_tag(j, t->a, nm, 1);
			end_attr(j, t, AT_UNIT);
		}
	}
	if (t->nkids) {
		begin_attr(j, t, AT_CONTENTS, &first);
		js(j, "{");
		for (size_t i = 0; i < t->nkids; i++) {
			if (i)
				js(j, ",");
			jstr(j, t->kids[i]->name);
			js(j, ":");
			emit(j, t->kids[i], nm);
		}
		js(j, "}");
		end_attr(j, t, AT_CONTENTS);
	}
	js(j, "}");
	t->end = j->n;
}

/* ---- the served document: one JSON text, every node a span of it ---- */

struct dnode {
	char full[128];
	size_t start, end;
	size_t av[NATTR][2];
	unsigned char has[NATTR];
};

/* A node's current value (OSCQuery VALUE): the type tags and arguments of the last message
 * sent to its path, as sent (",f\0\0" + 4 bytes...); len 0 while none was. */
#define VALUE_MAX 512

struct dval {
	uint16_t len;
	unsigned char b[VALUE_MAX];
};

struct doc {
	char *json;
	size_t len;
	struct dnode *nodes;
	size_t nnodes, cap;
	char *host;
	size_t hostlen;
	/* values: written by the main thread (publish) under the lock, read by the HTTP thread */
	struct dval *val;  /* one per node */
	uint32_t *slot;    /* path hash -> node index + 1 (0: empty), open addressing */
	size_t nslot;      /* a power of two, at least twice nnodes */
};

static void doc_free(struct doc *d)
{
	if (!d)
		return;
	free(d->json);
	free(d->nodes);
	free(d->host);
	free(d->val);
	free(d->slot);
	free(d);
}

static uint32_t path_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* The index of the node at path, or -1: every published message looks its path up here. */
static long doc_find(const struct doc *d, const char *path)
{
	for (size_t k = path_hash(path) & (d->nslot - 1);; k = (k + 1) & (d->nslot - 1)) {
		uint32_t v = d->slot[k];
		if (!v)
			return -1;
		if (!strcmp(d->nodes[v - 1].full, path))
			return (long)v - 1;
	}
}

static int doc_index(struct doc *d)
{
	d->nslot = 16;
	while (d->nslot < 2 * d->nnodes)
		d->nslot *= 2;
	d->slot = calloc(d->nslot, sizeof(*d->slot));
	d->val = calloc(d->nnodes ? d->nnodes : 1, sizeof(*d->val));
	if (!d->slot || !d->val)
		return -ENOMEM;
	for (size_t i = 0; i < d->nnodes; i++) {
		size_t k = path_hash(d->nodes[i].full) & (d->nslot - 1);
		while (d->slot[k])
			k = (k + 1) & (d->nslot - 1);
		d->slot[k] = (uint32_t)i + 1;
	}
	return 0;
}

static int flatten(struct doc *d, const struct tnode *t)
{
	struct dnode *n;

	if (d->nnodes == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 256;
		struct dnode *nn = realloc(d->nodes, cap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		d->nodes = nn;
		d->cap = cap;
	}
	n = &d->nodes[d->nnodes++];
	snprintf(n->full, sizeof(n->full), "%s", t->full);
	n->start = t->start;
	n->end = t->end;
	memcpy(n->av, t->av, sizeof(n->av));
	memcpy(n->has, t->has, sizeof(n->has));
	for (size_t i = 0; i < t->nkids; i++)
		if (flatten(d, t->kids[i]) < 0)
			return -ENOMEM;
	return 0;
}

static int build_doc(const struct emg_muscles *m, struct doc **out)
{
	struct jbuf j = { 0 };
	struct tnode *root = tree_build(m);
	struct doc *d;

	if (!root)
		return -ENOMEM;
	emit(&j, root, m ? emg_muscles_count(m) : 0);
	if (j.err) {
		free(j.b);
		tree_free(root);
		return j.err;
	}
	d = calloc(1, sizeof(*d));
	if (!d || flatten(d, root) < 0 || doc_index(d) < 0) {
		doc_free(d);
		free(j.b);
		tree_free(root);
		return -ENOMEM;
	}
	d->json = j.b;
	d->len = j.n;
	tree_free(root);
	*out = d;
	return 0;
}

int emg_oscquery_json(const struct emg_muscles *m, char **out, size_t *len)
{
	struct doc *d;
	int r = build_doc(m, &d);

	if (r < 0)
		return r;
	*out = d->json;
	*len = d->len;
	d->json = NULL;
	doc_free(d);
	return 0;
}

static void default_name(char *buf, size_t len, const char *name)
{
	char host[64] = "localhost";

	if (name && *name) {
		snprintf(buf, len, "%s", name);
		return;
	}
	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, len, "emgd on %s", host);
}

static int wildcard(const char *host)
{
	return !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
}

int emg_oscquery_host_info(const struct emg_oscquery_params *p, char **out, size_t *len)
{
	struct jbuf j = { 0 };
	char name[128];

	default_name(name, sizeof(name), p->name);
	js(&j, "{\"NAME\":");
	jstr(&j, name);
	if (!wildcard(p->osc.host)) {
		js(&j, ",\"OSC_IP\":");
		jstr(&j, p->osc.host);
	}
	jprintf(&j, ",\"OSC_PORT\":%u,\"OSC_TRANSPORT\":\"UDP\"", p->osc.port);
	js(&j, ",\"EXTENSIONS\":{\"ACCESS\":true,\"VALUE\":true,\"RANGE\":true,\"DESCRIPTION\":true,"
	       "\"TAGS\":false,\"EXTENDED_TYPE\":false,\"UNIT\":true,\"CRITICAL\":false,"
	       "\"CLIPMODE\":false,\"LISTEN\":");
	/* LISTEN: a WebSocket on the HTTP port streams what a client asks for */
	js(&j, emg_oscquery_http_available() ? "true" : "false");
	/* PATH_CHANGED: WebSocket clients are told what a reload changed in the namespace */
	js(&j, ",\"PATH_CHANGED\":");
	js(&j, emg_oscquery_http_available() ? "true" : "false");
	js(&j, "}}");
	if (j.err) {
		free(j.b);
		return j.err;
	}
	*out = j.b;
	*len = j.n;
	return 0;
}

/* ---- the server ---- */

struct hconn;
struct wsc;

struct emg_oscquery {
	struct emg_oscquery_params p;
	char name[128];
	pthread_mutex_t lock; /* guards doc: main thread (swap) and HTTP thread (read) only */
	struct doc *doc;
	unsigned port;
	struct emg_cidr allow[EMG_CONFIG_MAX_ALLOW]; /* under lock: main thread sets, HTTP thread reads */
	unsigned nallow;
	char www[PATH_MAX]; /* under lock: the /ui/ directory, "" for none */
#ifdef EMG_HAVE_MICROHTTPD
	struct MHD_Daemon *mhd;
	pthread_t thread;
	int running, stop;
	struct hconn *conns;     /* HTTP thread only */
	unsigned long cut, evicted, denied; /* HTTP thread only: deadline cuts, evictions, refused sources */
#endif
	/* WebSocket clients (header comment: the hand-over) */
	pthread_mutex_t wslock; /* guards ws, each client's LISTEN set and queue, wst */
	struct wsc *ws;         /* added and removed by the HTTP thread */
	unsigned nws;           /* clients; atomic, so publish skips the lock when there are none */
	int wake_fd;            /* eventfd: the main thread queued frames for an empty queue */
	struct emg_oscquery_ws_stats wst;
	/* control over the WebSocket (header comment), under wslock */
	int control;                              /* [web] control */
	char token[EMG_OSCQUERY_TOKEN_MAX + 1];   /* [web] token, "" = none */
	struct wcmd *cmdq;                        /* EMG_OSCQUERY_WS_COMMANDS packets, oldest at cmd_head */
	unsigned cmd_head, cmd_count;
	unsigned next_id;                         /* HTTP thread: the next client's id */
	int ctl_fd;                               /* eventfd: packets wait in cmdq (main thread polls it) */
#ifdef EMG_HAVE_AVAHI
	AvahiThreadedPoll *poll;
	AvahiClient *client;
	AvahiEntryGroup *group;
	char *svc_name; /* avahi_malloc'd; changes on a name collision */
	int said_waiting;
#endif
};

/* Log through the owner's callback (emg_oscquery_params.log). */
#define qlog(q, ...) emg_log_to((q)->p.log, (q)->p.log_ud, __VA_ARGS__)

int emg_oscquery_http_available(void)
{
#ifdef EMG_HAVE_MICROHTTPD
	return 1;
#else
	return 0;
#endif
}

int emg_oscquery_mdns_available(void)
{
#ifdef EMG_HAVE_AVAHI
	return 1;
#else
	return 0;
#endif
}

unsigned emg_oscquery_port(const struct emg_oscquery *q)
{
	return q->port;
}

/* The node's own text: its object without the CONTENTS value (its children's text). */
static int node_same(const struct doc *a, const struct dnode *x, const struct doc *b,
		     const struct dnode *y)
{
	size_t xc0 = x->has[AT_CONTENTS] ? x->av[AT_CONTENTS][0] : x->end;
	size_t xc1 = x->has[AT_CONTENTS] ? x->av[AT_CONTENTS][1] : x->end;
	size_t yc0 = y->has[AT_CONTENTS] ? y->av[AT_CONTENTS][0] : y->end;
	size_t yc1 = y->has[AT_CONTENTS] ? y->av[AT_CONTENTS][1] : y->end;

	return xc0 - x->start == yc0 - y->start && x->end - xc1 == y->end - yc1 &&
	       !memcmp(a->json + x->start, b->json + y->start, xc0 - x->start) &&
	       !memcmp(a->json + xc1, b->json + yc1, x->end - xc1);
}

/* The parent of a path ("/emg/a" -> "/emg", "/emg" -> "/") into buf. */
static void parent_of(const char *path, char *buf, size_t n)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash && slash != path ? (size_t)(slash - path) : 1;

	snprintf(buf, n, "%.*s", (int)len, path);
}

#define MAX_NOTES 32 /* more changes than this are told as one PATH_CHANGED of "/" */

struct notes {
	char json[MAX_NOTES + 1][200];
	unsigned n;
};

static void note(struct notes *nt, const char *cmd, const char *path)
{
	if (nt->n <= MAX_NOTES)
		snprintf(nt->json[nt->n++], sizeof(nt->json[0]), "{\"COMMAND\":\"%s\",\"DATA\":\"%s\"}",
			 cmd, path); /* paths are [A-Za-z0-9_/]: nothing to escape */
}

/*
 * What a reload changed, as the OSCQuery PATH_* notifications: a node that is
 * new (its parent is not) is PATH_ADDED, one that is gone (its parent is not)
 * PATH_REMOVED, one whose own attributes changed (TYPE of /emg/levels when the
 * muscle count changes, a muscle's channel in its DESCRIPTION) PATH_CHANGED.
 * Unchanged nodes keep their current value.  Main thread: the only writer.
 */
static void doc_diff(const struct doc *old, struct doc *nw, struct notes *nt)
{
	char par[128];

	for (size_t i = 0; i < nw->nnodes; i++) {
		long o = doc_find(old, nw->nodes[i].full);
		if (o < 0) {
			parent_of(nw->nodes[i].full, par, sizeof(par));
			if (i && doc_find(old, par) >= 0)
				note(nt, "PATH_ADDED", nw->nodes[i].full);
		} else if (!node_same(old, &old->nodes[o], nw, &nw->nodes[i])) {
			note(nt, "PATH_CHANGED", nw->nodes[i].full);
		} else {
			nw->val[i] = old->val[o];
		}
	}
	for (size_t i = 1; i < old->nnodes; i++)
		if (doc_find(nw, old->nodes[i].full) < 0) {
			parent_of(old->nodes[i].full, par, sizeof(par));
			if (doc_find(nw, par) >= 0)
				note(nt, "PATH_REMOVED", old->nodes[i].full);
		}
	if (nt->n > MAX_NOTES) {
		nt->n = 0;
		note(nt, "PATH_CHANGED", "/");
	}
}

static void ws_broadcast_text(struct emg_oscquery *q, const struct notes *nt);
static int reply_copy(struct emg_oscquery_reply *r, unsigned status, const char *type,
		      const char *body, size_t len);

#define JSON_TYPE "application/json"

static int install_doc(struct emg_oscquery *q, const struct emg_muscles *m)
{
	struct doc *d, *old;
	struct notes *nt = NULL;
	int r = build_doc(m, &d);

	if (r < 0)
		return r;
	r = emg_oscquery_host_info(&q->p, &d->host, &d->hostlen);
	if (r < 0) {
		doc_free(d);
		return r;
	}
	if (q->doc) {
		nt = calloc(1, sizeof(*nt));
		if (nt)
			doc_diff(q->doc, d, nt); /* reads the old values: the main thread writes them */
	}
	pthread_mutex_lock(&q->lock);
	old = q->doc;
	q->doc = d;
	pthread_mutex_unlock(&q->lock);
	doc_free(old);
	if (nt && nt->n)
		ws_broadcast_text(q, nt);
	free(nt);
	return 0;
}

/* Keep the value of every message in pkt (a message or a bundle of them) for VALUE; main thread. */
static void keep_values(struct emg_oscquery *q, const unsigned char *pkt, size_t len)
{
	size_t i = 0, end = len;
	int bundle = len >= 16 && !memcmp(pkt, "#bundle", 8);

	if (bundle)
		i = 16;
	pthread_mutex_lock(&q->lock);
	while (i < end) {
		size_t n = end - i, off = i;
		if (bundle) {
			if (end - i < 4)
				break;
			n = (size_t)pkt[i] << 24 | (size_t)pkt[i + 1] << 16 | (size_t)pkt[i + 2] << 8 | pkt[i + 3];
			if (n > end - i - 4)
				break;
			off = i + 4;
		}
		const unsigned char *m = pkt + off;
		const unsigned char *nul = n >= 4 && m[0] == '/' ? memchr(m, '\0', n) : NULL;
		if (nul) {
			size_t a = ((size_t)(nul - m) + 4) & ~(size_t)3; /* the padded address */
			long k = doc_find(q->doc, (const char *)m);
			if (k >= 0 && a < n && m[a] == ',' && n - a <= VALUE_MAX) {
				q->doc->val[k].len = (uint16_t)(n - a);
				memcpy(q->doc->val[k].b, m + a, n - a);
			}
		}
		if (!bundle)
			break;
		i = off + n;
	}
	pthread_mutex_unlock(&q->lock);
}

/* A kept value as a JSON array ([0.25], ["streaming",2000,6,0]); null for a malformed one. */
static void jvalue(struct jbuf *j, const struct dval *v)
{
	const unsigned char *b = v->b, *tags = b, *e = b + v->len;
	const unsigned char *nul = memchr(b, '\0', v->len);
	const unsigned char *p;

	if (!nul) {
		js(j, "null");
		return;
	}
	p = b + (((size_t)(nul - b) + 4) & ~(size_t)3);
	js(j, "[");
	for (const unsigned char *t = tags + 1; t < nul; t++) {
		if (t > tags + 1)
			js(j, ",");
		if ((*t == 'i' || *t == 'f') && e - p >= 4) {
			uint32_t u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
			if (*t == 'i') {
				jprintf(j, "%d", (int32_t)u);
			} else {
				float f;
				memcpy(&f, &u, 4);
				if (isfinite(f))
					jprintf(j, "%.9g", (double)f);
				else
					js(j, "null");
			}
			p += 4;
		} else if (*t == 's' && p < e && memchr(p, '\0', (size_t)(e - p))) {
			size_t n = strlen((const char *)p);
			jstrn(j, (const char *)p, n);
			p += (n + 4) & ~(size_t)3;
		} else {
			js(j, "null");
			p = e;
		}
	}
	js(j, "]");
}

static int cmp_size(const void *a, const void *b)
{
	const size_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Node i's JSON with a VALUE attribute in each node of its subtree that has one; under the lock. */
static int node_with_values(const struct doc *d, size_t i, struct emg_oscquery_reply *r)
{
	const struct dnode *n = &d->nodes[i];
	size_t k, nv = 0, at;
	size_t (*ins)[2];
	struct jbuf j = { 0 };

	/* the subtree is the nodes after i that start inside its span (pre-order) */
	for (k = i; k < d->nnodes && d->nodes[k].start < n->end; k++)
		nv += d->val[k].len != 0;
	if (!nv)
		return reply_copy(r, 200, JSON_TYPE, d->json + n->start, n->end - n->start);
	ins = malloc(nv * sizeof(*ins));
	if (!ins)
		return -ENOMEM;
	nv = 0;
	for (k = i; k < d->nnodes && d->nodes[k].start < n->end; k++)
		if (d->val[k].len) {
			ins[nv][0] = d->nodes[k].end - 1; /* before the node's closing brace */
			ins[nv++][1] = k;
		}
	qsort(ins, nv, sizeof(*ins), cmp_size);
	at = n->start;
	for (k = 0; k < nv; k++) {
		jput(&j, d->json + at, ins[k][0] - at);
		js(&j, ",\"VALUE\":");
		jvalue(&j, &d->val[ins[k][1]]);
		at = ins[k][0];
	}
	jput(&j, d->json + at, n->end - at);
	free(ins);
	if (j.err) {
		free(j.b);
		return j.err;
	}
	r->status = 200;
	r->type = JSON_TYPE;
	r->body = j.b;
	r->len = j.n;
	return 0;
}

int emg_oscquery_set_muscles(struct emg_oscquery *q, const struct emg_muscles *m)
{
	return install_doc(q, m);
}

/* ---- answering a request (no sockets: the fuzz target is this) ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode s[0..n) into out (size cap).  A NUL or other control byte,
 * encoded or not, or a broken escape is -EINVAL (400): libmicrohttpd's own
 * decoding turned /emg%00/x into the C string "/emg" (issue 16 #7).  Longer
 * than cap is -ENAMETOOLONG (no OSC address is).
 */
static int url_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
		if (k + 1 >= cap)
			return -ENAMETOOLONG;
		out[k++] = (char)c;
	}
	out[k] = '\0';
	return (int)k;
}

static int reply_copy(struct emg_oscquery_reply *r, unsigned status, const char *type,
		      const char *body, size_t len)
{
	r->status = status;
	r->type = type;
	r->len = len;
	r->body = malloc(len + 1);
	if (!r->body)
		return -ENOMEM;
	memcpy(r->body, body, len);
	r->body[len] = '\0';
	return 0;
}

static int reply_text(struct emg_oscquery_reply *r, unsigned status, const char *msg)
{
	return reply_copy(r, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* ---- the browser view: static files under q->www (no sockets either) ---- */

/* The types the view is made of; a file of any other type is not served. */
static const struct {
	const char *ext, *type;
} www_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".json", "application/json" },
	{ ".txt", "text/plain; charset=utf-8" },
};

static const char *www_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(www_types) / sizeof(www_types[0]); i++)
		if (!strcmp(dot, www_types[i].ext))
			return www_types[i].type;
	return NULL;
}

/*
 * rel ("" or "a/b.js", decoded) is a name the view may have: segments of
 * [A-Za-z0-9_.-] that do not start with a dot (so no "..", ".", hidden
 * files), no empty segment.  Checked on the text before any file system call.
 */
static int www_name_ok(const char *rel)
{
	int seg_start = 1;

	for (const char *p = rel; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '/') {
			if (seg_start)
				return 0; /* "//" */
			seg_start = 1;
			continue;
		}
		if (seg_start && c == '.')
			return 0;
		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return 0;
		seg_start = 0;
	}
	return 1;
}

/*
 * Open rel under the directory root one segment at a time with O_NOFOLLOW, so
 * that no symbolic link (however placed) leads out of it; a regular file up
 * to EMG_OSCQUERY_WWW_MAX_FILE, read whole.  Negative errno otherwise.
 */
static int www_read(const char *root, const char *rel, char **out, size_t *len)
{
	char seg[128];
	struct stat st;
	int dfd, fd, r = 0;
	size_t n = 0;
	char *b;

	dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (;;) {
		size_t sl = strcspn(rel, "/");
		int last = rel[sl] == '\0';
		if (sl >= sizeof(seg)) {
			close(dfd);
			return -ENAMETOOLONG;
		}
		memcpy(seg, rel, sl);
		seg[sl] = '\0';
		fd = openat(dfd, seg, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
					      (last ? 0 : O_DIRECTORY));
		r = fd < 0 ? -errno : 0;
		close(dfd);
		if (r < 0)
			return r;
		if (last)
			break;
		dfd = fd;
		rel += sl + 1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > EMG_OSCQUERY_WWW_MAX_FILE) {
		close(fd);
		return -ENOENT;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, b + n, (size_t)st.st_size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break; /* shrank while read: serve what there is */
		n += (size_t)k;
	}
	close(fd);
	b[n] = '\0';
	*out = b;
	*len = n;
	return 0;
}

/* GET /ui or /ui/<rel>: a file of the view, or 404. */
static int www_answer(struct emg_oscquery *q, const char *rel, struct emg_oscquery_reply *r)
{
	char root[PATH_MAX], name[160];
	const char *type;

	pthread_mutex_lock(&q->lock);
	snprintf(root, sizeof(root), "%s", q->www);
	pthread_mutex_unlock(&q->lock);
	/* "/ui" and "/ui/" are the page; its links are absolute (/ui/...), so both work */
	snprintf(name, sizeof(name), "%s%s", rel, !*rel || rel[strlen(rel) - 1] == '/' ? "index.html" : "");
	if (!root[0] || !www_name_ok(name) || !(type = www_type(name)))
		return reply_text(r, 404, "no such file\n");
	int e = www_read(root, name, &r->body, &r->len);
	if (e == -ENOMEM)
		return e;
	if (e < 0) {
		r->body = NULL;
		r->len = 0;
		return reply_text(r, 404, "no such file\n");
	}
	r->status = 200;
	r->type = type;
	return 0;
}

int emg_oscquery_set_www(struct emg_oscquery *q, const char *dir)
{
	if (dir && strlen(dir) >= sizeof(q->www))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&q->lock);
	snprintf(q->www, sizeof(q->www), "%s", dir ? dir : "");
	pthread_mutex_unlock(&q->lock);
	return 0;
}

int emg_oscquery_answer(struct emg_oscquery *q, const char *method, const char *target,
			size_t upload_size, struct emg_oscquery_reply *r)
{
	char path[128], key[32];
	const char *qm, *kend;
	size_t n;
	int pn, ret;
	long idx;
	const struct dnode *node = NULL;

	memset(r, 0, sizeof(*r));
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply_text(r, 405, "only GET\n");
	if (upload_size)
		return reply_text(r, 400, "no body expected\n");
	if (target[0] != '/')
		return reply_text(r, 400, "the request target must be a path\n");
	/* path, then the first query argument: the attribute asked for */
	qm = strchr(target, '?');
	n = qm ? (size_t)(qm - target) : strlen(target);
	pn = url_decode(target, n, path, sizeof(path));
	if (pn == -EINVAL)
		return reply_text(r, 400, "bad URL encoding\n");
	if (pn < 0)
		return reply_text(r, 404, "no such OSC address\n");
	while (pn > 1 && path[pn - 1] == '/')
		path[--pn] = '\0';
	key[0] = '\0';
	if (qm) {
		kend = qm + 1 + strcspn(qm + 1, "&=");
		int kn = url_decode(qm + 1, (size_t)(kend - qm - 1), key, sizeof(key));
		if (kn == -EINVAL)
			return reply_text(r, 400, "bad URL encoding\n");
		if (kn < 0)
			return reply_text(r, 400, "unsupported attribute\n");
	}
	/* the browser view: /ui is no OSC address, so it cannot hide one */
	if (!strncmp(path, "/ui", 3) && (path[3] == '\0' || path[3] == '/') && strcmp(key, "HOST_INFO"))
		return www_answer(q, path[3] ? path + 4 : "", r);

	pthread_mutex_lock(&q->lock);
	if (!strcmp(key, "HOST_INFO")) {
		/* the path does not matter for HOST_INFO */
		ret = reply_copy(r, 200, JSON_TYPE, q->doc->host, q->doc->hostlen);
		goto out;
	}
	idx = doc_find(q->doc, path);
	if (idx < 0) {
		ret = reply_text(r, 404, "no such OSC address\n");
		goto out;
	}
	node = &q->doc->nodes[idx];
	if (!qm || !key[0]) {
		ret = node_with_values(q->doc, (size_t)idx, r);
		goto out;
	}
	for (int at = 0; at < NATTR; at++) {
		if (strcmp(key, attr_names[at]))
			continue;
		if (!node->has[at]) {
			ret = reply_copy(r, 204, NULL, "", 0);
			goto out;
		}
		/* {"ATTR": value}: the value is a span of the document */
		size_t vlen = node->av[at][1] - node->av[at][0];
		size_t blen = strlen(attr_names[at]) + vlen + 8;
		r->body = malloc(blen);
		if (!r->body) {
			ret = -ENOMEM;
			goto out;
		}
		int bn = snprintf(r->body, blen, "{\"%s\":%.*s}", attr_names[at], (int)vlen,
				  q->doc->json + node->av[at][0]);
		r->status = 200;
		r->type = JSON_TYPE;
		r->len = (size_t)bn;
		ret = 0;
		goto out;
	}
	if (!strcmp(key, "VALUE") && !q->doc->val[idx].len) {
		ret = reply_copy(r, 204, NULL, "", 0); /* nothing sent to this path yet */
	} else if (!strcmp(key, "VALUE")) {
		struct jbuf j = { 0 };
		js(&j, "{\"VALUE\":");
		jvalue(&j, &q->doc->val[idx]);
		js(&j, "}");
		if (j.err) {
			free(j.b);
			ret = j.err;
			goto out;
		}
		r->status = 200;
		r->type = JSON_TYPE;
		r->body = j.b;
		r->len = j.n;
		ret = 0;
	} else
		ret = reply_text(r, 400, "unsupported attribute\n");
out:
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* ---- WebSocket commands (JSON) ---- */

static const char *jws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A JSON string at p into out (NULL: skip); returns past it, or NULL (-EINVAL / *err = -ENOSPC). */
static const char *jstring(const char *p, const char *e, char *out, size_t cap, int *err)
{
	size_t n = 0;

	if (p >= e || *p != '"')
		return NULL;
	for (p++; p < e && *p != '"'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (++p >= e)
				return NULL;
			switch (*p) {
			case '"': case '\\': case '/': c = (unsigned char)*p; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': {
				unsigned v = 0;
				if (e - p < 5)
					return NULL;
				for (int i = 1; i <= 4; i++) {
					int h = hexval(p[i]);
					if (h < 0)
						return NULL;
					v = v << 4 | (unsigned)h;
				}
				/* OSC paths are ASCII: anything else escaped is no path */
				if (v == 0 || v >= 0x80)
					return NULL;
				c = (unsigned char)v;
				p += 4;
				break;
			}
			default:
				return NULL;
			}
		}
		if (out) {
			if (n + 1 >= cap) {
				*err = -ENOSPC;
				return NULL;
			}
			out[n++] = (char)c;
		}
	}
	if (p >= e)
		return NULL;
	if (out)
		out[n] = '\0';
	return p + 1;
}

/* A scalar JSON value other than a string (number, true, false, null): skip it. */
static const char *jscalar(const char *p, const char *e)
{
	const char *s = p;

	while (p < e && (isalnum((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.'))
		p++;
	return p > s ? p : NULL;
}

int emg_oscquery_command(const char *json, size_t len, char *cmd, size_t cmdlen, char *data,
			 size_t datalen)
{
	const char *p = json, *e = json + len;
	char key[32];
	int err = 0, have_cmd = 0;

	if (!cmdlen || !datalen)
		return -ENOSPC;
	cmd[0] = data[0] = '\0';
	p = jws(p, e);
	if (p >= e || *p++ != '{')
		return -EINVAL;
	p = jws(p, e);
	if (p < e && *p == '}')
		return -EINVAL;
	for (;;) {
		char *dst = NULL;
		size_t cap = 0;

		p = jws(p, e);
		key[0] = '\0';
		p = jstring(p, e, key, sizeof(key), &err);
		if (!p)
			return -EINVAL; /* not a string, or a key longer than any the protocol has */
		p = jws(p, e);
		if (p >= e || *p++ != ':')
			return -EINVAL;
		p = jws(p, e);
		if (!strcmp(key, "COMMAND")) {
			if (have_cmd)
				return -EINVAL;
			have_cmd = 1;
			dst = cmd;
			cap = cmdlen;
		} else if (!strcmp(key, "DATA")) {
			dst = data;
			cap = datalen;
		}
		if (p < e && *p == '"') {
			p = jstring(p, e, dst, cap, &err);
			if (!p)
				return err ? err : -EINVAL;
		} else {
			if (dst == cmd)
				return -EINVAL; /* COMMAND is a string */
			p = jscalar(p, e); /* DATA of other commands may be a number; objects are refused */
			if (!p)
				return -EINVAL;
			if (dst)
				dst[0] = '\0';
		}
		p = jws(p, e);
		if (p < e && *p == ',') {
			p++;
			continue;
		}
		if (p < e && *p == '}')
			break;
		return -EINVAL;
	}
	p = jws(p + 1, e);
	if (p != e || !have_cmd)
		return -EINVAL;
	return 0;
}

/* ---- the OSC stream, cut per client ---- */

/* The OSC address of a message (NUL-terminated within len), or NULL. */
static const char *osc_address(const unsigned char *m, size_t len)
{
	if (len < 4 || m[0] != '/' || !memchr(m, '\0', len))
		return NULL;
	return (const char *)m;
}

/* 1 if path is in the set. */
static int listening(char (*set)[128], unsigned n, const char *path)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(set[i], path))
			return 1;
	return 0;
}

/*
 * The part of pkt a client listening to set receives, into out (cap bytes): a
 * message as is, a bundle with only the elements it listens to (same timetag,
 * same bytes); 0 when nothing is for it.  Nested bundles are not sent by emgd.
 */
__attribute__((unused)) static size_t osc_cut(const unsigned char *pkt, size_t len, char (*set)[128], unsigned n,
		      unsigned char *out, size_t cap)
{
	static const char tag[8] = "#bundle";
	size_t o, i;

	if (len <= cap && osc_address(pkt, len))
		return listening(set, n, (const char *)pkt) ? (memcpy(out, pkt, len), len) : 0;
	if (len < 16 || len > cap || memcmp(pkt, tag, 8))
		return 0;
	memcpy(out, pkt, 16);
	o = 16;
	for (i = 16; i + 4 <= len;) {
		uint32_t el = (uint32_t)pkt[i] << 24 | (uint32_t)pkt[i + 1] << 16 |
			      (uint32_t)pkt[i + 2] << 8 | pkt[i + 3];
		const char *a;
		if (el > len - i - 4)
			break;
		a = osc_address(pkt + i + 4, el);
		if (a && listening(set, n, a)) {
			memcpy(out + o, pkt + i, 4 + el);
			o += 4 + el;
		}
		i += 4 + el;
	}
	return o > 16 ? o : 0;
}

int emg_oscquery_set_control(struct emg_oscquery *q, int control, const char *token)
{
	if (token && strlen(token) > EMG_OSCQUERY_TOKEN_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&q->wslock);
	q->control = control;
	snprintf(q->token, sizeof(q->token), "%s", token ? token : "");
	pthread_mutex_unlock(&q->wslock);
	return 0;
}

int emg_oscquery_control_fd(const struct emg_oscquery *q)
{
	return q ? q->ctl_fd : -1;
}

/* An OSC message "/emgd/<what> ,s[s] a [b]" into out (at least 512 bytes); its size. */
__attribute__((unused)) static size_t osc_reply(unsigned char *out, const char *path, const char *a, const char *b)
{
	size_t n = 0;
	const char *parts[4] = { path, b ? ",ss" : ",s", a, b };

	for (int i = 0; i < 4 && parts[i]; i++) {
		size_t l = strnlen(parts[i], 120);
		memcpy(out + n, parts[i], l);
		n += l;
		do
			out[n++] = '\0';
		while (n & 3);
	}
	return n;
}

void emg_oscquery_set_allow(struct emg_oscquery *q, const struct emg_cidr *allow, unsigned n)
{
	if (n > EMG_CONFIG_MAX_ALLOW)
		n = EMG_CONFIG_MAX_ALLOW;
	pthread_mutex_lock(&q->lock);
	if (n)
		memcpy(q->allow, allow, n * sizeof(q->allow[0]));
	q->nallow = n;
	pthread_mutex_unlock(&q->lock);
}

#ifdef EMG_HAVE_MICROHTTPD

/*
 * The server runs libmicrohttpd in external-polling mode on emgd's own HTTP
 * thread, so that the request deadline can be enforced between MHD_run_wait()
 * calls on the same thread that owns the connections: MHD's own timeout is an
 * idle timeout that every trickled byte resets (slowloris, issue 16 #7).
 */
#define HTTP_TICK_MS 100

/* One TCP connection (MHD's socket context), on the HTTP thread only. */
struct hconn {
	struct hconn *prev, *next;
	int fd;
	uint64_t deadline_ns; /* the current request must be answered by then */
	int cut;              /* shut down: missed its deadline, or evicted */
	int busy;             /* its request is being answered */
	int ws;               /* upgraded to a WebSocket: streams, no request deadline */
	int same_origin;      /* its upgrade had no Origin, or the page's own (not another site's) */
};

/* Shut a connection down: MHD sees the socket fail and closes it on this thread. */
static void cut_conn(struct hconn *h)
{
	if (h->fd >= 0)
		shutdown(h->fd, SHUT_RDWR);
	h->cut = 1;
}

/*
 * Over EMG_OSCQUERY_MAX_CONN live connections, the one that has waited longest
 * for its request makes room for the newcomer.  Refusing the newcomer instead
 * lets connections that never finish a request hold every slot, and the ones
 * queued in the kernel's backlog each get a fresh deadline when accepted, so
 * 500 idle connections kept a real client out for minutes.
 */
static void evict_oldest(struct emg_oscquery *q, const struct hconn *keep)
{
	struct hconn *old = NULL;
	unsigned live = 0;

	for (struct hconn *h = q->conns; h; h = h->next) {
		if (h->cut || h->ws)
			continue; /* WebSocket clients have their own cap, EMG_OSCQUERY_WS_MAX */
		live++;
		if (h != keep && !h->busy && (!old || h->deadline_ns < old->deadline_ns))
			old = h;
	}
	if (live > EMG_OSCQUERY_MAX_CONN && old) {
		cut_conn(old);
		q->evicted++;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int is_loopback_sa(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr)[0] == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return 0;
}

/* The same rule as OSC control: loopback, or a network in [osc] allow; others get 0 bytes. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct emg_oscquery *q = cls;
	int ok = 0;

	if (!addr || addrlen < sizeof(sa_family_t))
		return MHD_NO;
	if (is_loopback_sa(addr))
		return MHD_YES;
	pthread_mutex_lock(&q->lock);
	for (unsigned i = 0; i < q->nallow && !ok; i++)
		ok = emg_cidr_match(&q->allow[i], addr);
	pthread_mutex_unlock(&q->lock);
	if (!ok)
		q->denied++;
	return ok ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct emg_oscquery *q = cls;
	struct hconn *h = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		h = calloc(1, sizeof(*h));
		if (!h)
			return; /* no deadline for this one; MHD's idle timeout still applies */
		h->fd = ci ? ci->connect_fd : -1;
		h->deadline_ns = mono_ns() + EMG_OSCQUERY_DEADLINE_MS * 1000000ull;
		h->next = q->conns;
		if (q->conns)
			q->conns->prev = h;
		q->conns = h;
		*socket_context = h;
		evict_oldest(q, h);
		return;
	}
	/* CLOSED: MHD calls this before it closes the socket, on this thread */
	if (!h)
		return;
	if (h->prev)
		h->prev->next = h->next;
	else
		q->conns = h->next;
	if (h->next)
		h->next->prev = h->prev;
	free(h);
	*socket_context = NULL;
}

/* The raw request target, before libmicrohttpd decodes it; becomes *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	size_t n = strnlen(uri, 1024);
	char *raw = malloc(n + 1);

	(void)cls;
	(void)c;
	if (raw) {
		memcpy(raw, uri, n);
		raw[n] = '\0'; /* a longer target is cut: still no OSC address, 404 */
	}
	return raw;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct hconn *h = ci ? ci->socket_context : NULL;

	(void)cls;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
	/* a kept-alive connection gets a new deadline for its next request */
	if (h) {
		h->deadline_ns = mono_ns() + EMG_OSCQUERY_DEADLINE_MS * 1000000ull;
		h->busy = 0;
	}
}

static enum MHD_Result queue(struct MHD_Connection *c, const struct emg_oscquery_reply *rp)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(rp->len, rp->body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	if (rp->type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rp->type);
	/* Browser-based OSC clients (osc.js) read the namespace from another origin. */
	MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (rp->type && !strncmp(rp->type, "text/html", 9)) {
		/* The view loads its own files only (no CDN) and talks to this server alone. */
		MHD_add_response_header(r, "Content-Security-Policy",
					"default-src 'self'; connect-src 'self'; img-src 'self' data:; "
					"frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
	}
	ret = MHD_queue_response(c, rp->status, r);
	MHD_destroy_response(r);
	return ret;
}


/* ---- WebSocket streaming (HTTP thread, except publish) ---- */

#define WS_SLOT (EMG_WS_MAX_HEADER + EMG_OSC_MAX_PACKET)

/* One upgraded connection: a subscriber with its own LISTEN set. */
struct wsc {
	struct wsc *next;
	/* HTTP thread only */
	int fd;
	struct MHD_UpgradeResponseHandle *urh;
	struct emg_ws_reader *rd;
	unsigned char out[WS_SLOT]; /* the frame being written */
	size_t outn, outoff;
	/* under wslock */
	int closing; /* a close frame is queued: nothing more is, and the socket closes after it */
	char listen[EMG_OSCQUERY_WS_LISTEN][128];
	unsigned nlisten;
	unsigned char (*slot)[WS_SLOT]; /* EMG_OSCQUERY_WS_QUEUE whole frames, oldest at head */
	uint16_t len[EMG_OSCQUERY_WS_QUEUE];
	unsigned head, count;
	/* set at the upgrade */
	unsigned id;                    /* control replies find their client by this */
	struct sockaddr_storage peer;   /* the source emg_osc_handle_via() judges */
	socklen_t peerlen;
	int local, same_origin;         /* loopback peer; no Origin or the page's own */
	int authed;                     /* under wslock: presented the [web] token */
};

/* A control packet waiting for the main thread. */
struct wcmd {
	unsigned id;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	size_t len;
	unsigned char b[EMG_OSCQUERY_WS_MAX_MESSAGE];
};

/* Queue one frame for c, dropping the oldest if full; under wslock.  1 if the queue was empty. */
static int ws_push(struct emg_oscquery *q, struct wsc *c, enum emg_ws_opcode op,
		   const unsigned char *payload, size_t len)
{
	unsigned char *s;
	size_t h;
	int was_empty = c->count == 0;

	if (len > EMG_OSC_MAX_PACKET)
		return 0;
	if (c->count == EMG_OSCQUERY_WS_QUEUE) {
		c->head = (c->head + 1) % EMG_OSCQUERY_WS_QUEUE;
		c->count--;
		q->wst.dropped++;
	}
	s = c->slot[(c->head + c->count) % EMG_OSCQUERY_WS_QUEUE];
	h = emg_ws_header(s, op, len);
	memcpy(s + h, payload, len);
	c->len[(c->head + c->count) % EMG_OSCQUERY_WS_QUEUE] = (uint16_t)(h + len);
	c->count++;
	return was_empty;
}

static void wake(struct emg_oscquery *q)
{
	uint64_t one = 1;

	if (q->wake_fd >= 0 && write(q->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the HTTP thread will wake */
	}
}

/* Text frames (the PATH_* notifications) to every client; main thread. */
static void ws_broadcast_text(struct emg_oscquery *q, const struct notes *nt)
{
	int need_wake = 0;

	pthread_mutex_lock(&q->wslock);
	for (struct wsc *c = q->ws; c; c = c->next)
		for (unsigned i = 0; i < nt->n && !c->closing; i++) {
			need_wake |= ws_push(q, c, EMG_WS_TEXT, (const unsigned char *)nt->json[i],
					     strlen(nt->json[i]));
			q->wst.changes++;
		}
	pthread_mutex_unlock(&q->wslock);
	if (need_wake)
		wake(q);
}

void emg_oscquery_publish(struct emg_oscquery *q, const void *pkt, size_t len)
{
	unsigned char cut[EMG_OSC_MAX_PACKET];
	int need_wake = 0;

	if (!q)
		return;
	keep_values(q, pkt, len);
	if (!__atomic_load_n(&q->nws, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&q->wslock);
	for (struct wsc *c = q->ws; c; c = c->next) {
		size_t n;
		if (c->closing || !c->nlisten)
			continue;
		n = osc_cut(pkt, len, c->listen, c->nlisten, cut, sizeof(cut));
		if (n)
			need_wake |= ws_push(q, c, EMG_WS_BINARY, cut, n);
	}
	pthread_mutex_unlock(&q->wslock);
	if (need_wake)
		wake(q);
}

void emg_oscquery_ws_stats(struct emg_oscquery *q, struct emg_oscquery_ws_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!q)
		return;
	pthread_mutex_lock(&q->wslock);
	*st = q->wst;
	st->clients = q->nws;
	pthread_mutex_unlock(&q->wslock);
}

/* Queue a close frame (code 0: none) and stop queueing anything else. */
static void ws_begin_close(struct emg_oscquery *q, struct wsc *c, unsigned code)
{
	unsigned char f[4];
	size_t n = emg_ws_close_frame(f, code);

	pthread_mutex_lock(&q->wslock);
	if (!c->closing) {
		/* the close frame goes after what is queued: push its payload as a CLOSE frame */
		ws_push(q, c, EMG_WS_CLOSE, f + 2, n - 2);
		c->closing = 1;
	}
	pthread_mutex_unlock(&q->wslock);
}

/* Is path one the namespace has?  (LISTEN to anything else is ignored.) */
static int known_path(struct emg_oscquery *q, const char *path)
{
	int ok = 0;

	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < q->doc->nnodes && !ok; i++)
		ok = !strcmp(q->doc->nodes[i].full, path);
	pthread_mutex_unlock(&q->lock);
	return ok;
}

/* Why c may not send control messages now, or NULL if it may; under wslock. */
static const char *control_refusal(const struct emg_oscquery *q, const struct wsc *c)
{
	if (!q->control)
		return "read-only: [web] control = no";
	if (!c->same_origin)
		return "read-only: the page comes from another site (Origin)";
	if (!c->local && q->token[0] && !c->authed)
		return "read-only: control from another host needs the [web] token";
	return NULL;
}

/* Queue a reply frame holding an OSC message for c; under wslock. */
static void ws_osc_reply(struct emg_oscquery *q, struct wsc *c, const char *path, const char *a,
			 const char *b)
{
	unsigned char m[512];

	if (!c->closing)
		ws_push(q, c, EMG_WS_BINARY, m, osc_reply(m, path, a, b));
}

/* 1 if a equals the configured token b, in time that does not depend on where they differ. */
static int token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < lb; i++)
		d |= (unsigned char)((i < la ? a[i] : 0) ^ b[i]);
	return d == 0;
}

/* {"COMMAND":"AUTH","DATA":token}: /emgd/ok AUTH, or /emgd/error and the connection closes. */
static int ws_auth(struct emg_oscquery *q, struct wsc *c, const char *token)
{
	int ok;

	pthread_mutex_lock(&q->wslock);
	ok = !q->token[0] || token_equal(token, q->token);
	if (q->token[0] && ok)
		c->authed = 1;
	if (ok) {
		ws_osc_reply(q, c, "/emgd/ok", "AUTH", NULL);
	} else {
		q->wst.denied++;
		ws_osc_reply(q, c, "/emgd/error", "AUTH", "wrong token");
	}
	pthread_mutex_unlock(&q->wslock);
	if (ok)
		return 0;
	/* one guess per connection: guessing costs a TCP and HTTP handshake each */
	qlog(q, LOG_NOTICE, "oscquery: websocket client presented a wrong [web] token; closed");
	ws_begin_close(q, c, EMG_WS_CLOSE_POLICY);
	return -EPROTO;
}

/*
 * A binary frame: an OSC packet for the main thread (header comment).  Only
 * the permission is judged here; what the packet says is judged by
 * emg_osc_handle_via(), like any UDP datagram.
 */
static void ws_control(struct emg_oscquery *q, struct wsc *c, const unsigned char *p, size_t len)
{
	const char *addr = osc_address(p, len), *why;
	int queued = 0;

	pthread_mutex_lock(&q->wslock);
	why = control_refusal(q, c);
	if (why && addr && emg_osc_is_query(addr))
		why = NULL; /* reading status, stats or latency changes nothing */
	if (!why && q->cmd_count == EMG_OSCQUERY_WS_COMMANDS)
		why = "busy: too many commands waiting, try again";
	if (why) {
		q->wst.denied++;
		ws_osc_reply(q, c, "/emgd/error", addr ? addr : "", why);
	} else {
		struct wcmd *w = &q->cmdq[(q->cmd_head + q->cmd_count++) % EMG_OSCQUERY_WS_COMMANDS];
		w->id = c->id;
		w->peer = c->peer;
		w->peerlen = c->peerlen;
		w->len = len; /* at most EMG_OSCQUERY_WS_MAX_MESSAGE: the reader's limit */
		memcpy(w->b, p, len);
		q->wst.commands++;
		queued = 1;
	}
	pthread_mutex_unlock(&q->wslock);
	if (queued) {
		uint64_t one = 1;
		if (write(q->ctl_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: already signalled */
		}
	}
}

struct wreply {
	struct emg_oscquery *q;
	unsigned id;
	int pushed;
};

/* emg_osc's reply sender for a WebSocket client: a binary frame to client id (gone: dropped). */
static int ws_reply(void *ud, const void *buf, size_t len, const struct sockaddr *to, socklen_t tolen)
{
	struct wreply *w = ud;
	int found = 0;

	(void)to;
	(void)tolen;
	pthread_mutex_lock(&w->q->wslock);
	for (struct wsc *c = w->q->ws; c; c = c->next)
		if (c->id == w->id) {
			if (!c->closing)
				ws_push(w->q, c, EMG_WS_BINARY, buf, len);
			found = !c->closing;
			break;
		}
	pthread_mutex_unlock(&w->q->wslock);
	w->pushed |= found;
	return found ? (int)len : -ENOTCONN;
}

void emg_oscquery_control_run(struct emg_oscquery *q, struct emg_osc *o, uint64_t now_ns)
{
	struct wcmd *w;
	uint64_t v;
	int pushed = 0;

	if (!q || q->ctl_fd < 0)
		return;
	if (read(q->ctl_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled; the queue is looked at anyway */
	}
	w = malloc(sizeof(*w));
	if (!w)
		return;
	/* at most one queue's worth per call: the main loop has other work */
	for (unsigned k = 0; k < EMG_OSCQUERY_WS_COMMANDS; k++) {
		struct wreply r = { q, 0, 0 };
		pthread_mutex_lock(&q->wslock);
		if (!q->cmd_count) {
			pthread_mutex_unlock(&q->wslock);
			break;
		}
		memcpy(w, &q->cmdq[q->cmd_head], sizeof(*w));
		q->cmd_head = (q->cmd_head + 1) % EMG_OSCQUERY_WS_COMMANDS;
		q->cmd_count--;
		pthread_mutex_unlock(&q->wslock);
		r.id = w->id;
		emg_osc_handle_via(o, w->b, w->len, (const struct sockaddr *)&w->peer, w->peerlen,
				   now_ns, ws_reply, &r);
		pushed |= r.pushed;
	}
	free(w);
	pthread_mutex_lock(&q->wslock);
	if (q->cmd_count) {
		uint64_t one = 1;
		if (write(q->ctl_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: already signalled */
		}
	}
	pthread_mutex_unlock(&q->wslock);
	if (pushed)
		wake(q);
}

struct ws_ctx {
	struct emg_oscquery *q;
	struct wsc *c;
};

static int on_ws_message(void *ud, enum emg_ws_opcode op, const unsigned char *p, size_t len)
{
	struct ws_ctx *x = ud;
	struct emg_oscquery *q = x->q;
	struct wsc *c = x->c;
	char cmd[32], path[EMG_OSCQUERY_TOKEN_MAX + 1];
	int r;

	switch (op) {
	case EMG_WS_PING:
		pthread_mutex_lock(&q->wslock);
		if (!c->closing)
			ws_push(q, c, EMG_WS_PONG, p, len);
		pthread_mutex_unlock(&q->wslock);
		return 0;
	case EMG_WS_CLOSE:
		ws_begin_close(q, c, EMG_WS_CLOSE_NORMAL);
		return 0;
	case EMG_WS_TEXT:
		break;
	case EMG_WS_BINARY:
		ws_control(q, c, p, len);
		return 0;
	default:
		return 0; /* pongs */
	}
	r = emg_oscquery_command((const char *)p, len, cmd, sizeof(cmd), path, sizeof(path));
	if (r == -EINVAL) {
		qlog(q, LOG_INFO, "oscquery: websocket client sent a message that is no command; closed");
		pthread_mutex_lock(&q->wslock);
		q->wst.closed++;
		pthread_mutex_unlock(&q->wslock);
		ws_begin_close(q, c, EMG_WS_CLOSE_POLICY);
		return -EPROTO;
	}
	if (r < 0 && !strcmp(cmd, "AUTH"))
		path[0] = '\0'; /* longer than any token: wrong */
	else if (r < 0)
		return 0; /* a path longer than any emgd has: nothing to listen to */
	if (!strcmp(cmd, "AUTH"))
		return ws_auth(q, c, path);
	if (strlen(path) >= sizeof(c->listen[0]))
		return 0;
	if (strcmp(cmd, "LISTEN") && strcmp(cmd, "IGNORE"))
		return 0; /* commands of extensions emgd does not offer are ignored (OSCQuery) */
	if (!strcmp(cmd, "LISTEN") && !known_path(q, path))
		return 0;
	pthread_mutex_lock(&q->wslock);
	for (unsigned i = 0; i < c->nlisten; i++)
		if (!strcmp(c->listen[i], path)) {
			if (cmd[0] == 'I')
				memmove(c->listen[i], c->listen[i + 1],
					(c->nlisten - i - 1) * sizeof(c->listen[0]));
			c->nlisten -= cmd[0] == 'I';
			cmd[0] = '\0'; /* done */
			break;
		}
	if (cmd[0] == 'L' && c->nlisten < EMG_OSCQUERY_WS_LISTEN)
		snprintf(c->listen[c->nlisten++], sizeof(c->listen[0]), "%s", path);
	pthread_mutex_unlock(&q->wslock);
	return 0;
}

static void ws_free(struct emg_oscquery *q, struct wsc *c)
{
	pthread_mutex_lock(&q->wslock);
	for (struct wsc **pp = &q->ws; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	__atomic_store_n(&q->nws, q->nws - 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->wslock);
	MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE); /* MHD closes the socket */
	emg_ws_reader_free(c->rd);
	free(c->slot);
	free(c);
}

/* Read what the client sent; 0, or <0 when it must go now. */
static int ws_read(struct emg_oscquery *q, struct wsc *c, const void *extra, size_t extra_len)
{
	unsigned char buf[4096];
	struct ws_ctx x = { q, c };

	if (extra_len) {
		if (emg_ws_feed(c->rd, extra, extra_len, on_ws_message, &x) == -EPROTO &&
		    emg_ws_close_code(c->rd))
			ws_begin_close(q, c, emg_ws_close_code(c->rd));
		return 0;
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
		if (emg_ws_closed(c->rd) || emg_ws_close_code(c->rd))
			continue; /* closing: what comes after is not read */
		if (emg_ws_feed(c->rd, buf, (size_t)n, on_ws_message, &x) == -EPROTO &&
		    emg_ws_close_code(c->rd)) {
			pthread_mutex_lock(&q->wslock);
			q->wst.closed++;
			pthread_mutex_unlock(&q->wslock);
			ws_begin_close(q, c, emg_ws_close_code(c->rd));
		}
	}
}

/* Write queued frames until the socket is full; <0 when the client must go (gone, or closed). */
static int ws_write(struct emg_oscquery *q, struct wsc *c)
{
	for (;;) {
		if (c->outoff == c->outn) {
			int closing;
			pthread_mutex_lock(&q->wslock);
			closing = c->closing;
			if (c->count) {
				c->outn = c->len[c->head];
				memcpy(c->out, c->slot[c->head], c->outn);
				c->head = (c->head + 1) % EMG_OSCQUERY_WS_QUEUE;
				c->count--;
				c->outoff = 0;
			}
			pthread_mutex_unlock(&q->wslock);
			if (c->outoff == c->outn)
				return closing ? -ECONNRESET : 0;
		}
		ssize_t n = send(c->fd, c->out + c->outoff, c->outn - c->outoff,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
		c->outoff += (size_t)n;
	}
}

/* libmicrohttpd hands over the socket after the 101 went out (HTTP thread). */
static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
		       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct emg_oscquery *q = cls;
	struct wsc *c = calloc(1, sizeof(*c));
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	(void)con_cls;
	if (ci && ci->socket_context)
		((struct hconn *)ci->socket_context)->ws = 1; /* no request deadline from now on */
	if (c) {
		const union MHD_ConnectionInfo *ai =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const struct sockaddr *sa = ai ? ai->client_addr : NULL;
		c->peerlen = !sa ? 0 : sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							      : sizeof(struct sockaddr_in);
		if (sa)
			memcpy(&c->peer, sa, c->peerlen);
		c->local = sa && is_loopback_sa(sa);
		c->same_origin = ci && ci->socket_context && ((struct hconn *)ci->socket_context)->same_origin;
		c->id = ++q->next_id;
	}
	if (c)
		c->slot = malloc(EMG_OSCQUERY_WS_QUEUE * sizeof(*c->slot));
	if (!c || !c->slot || emg_ws_reader_new(&c->rd, EMG_OSCQUERY_WS_MAX_MESSAGE) < 0) {
		if (c)
			free(c->slot);
		free(c);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	c->fd = sock;
	c->urh = urh;
	/* A modest kernel buffer: a client that stops reading fills it in seconds, and from
	 * then on the bounded queue sheds (counted) instead of the kernel holding megabytes. */
	{
		int sb = 32768;
		setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	}
	pthread_mutex_lock(&q->wslock);
	c->next = q->ws;
	q->ws = c;
	q->wst.accepted++;
	__atomic_store_n(&q->nws, q->nws + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->wslock);
	if (ws_read(q, c, extra_in, extra_in_size) < 0 || ws_write(q, c) < 0)
		ws_free(q, c);
}

/* 1 if the comma-separated header value v holds token t (case-insensitive). */
static int has_token(const char *v, const char *t)
{
	size_t tl = strlen(t);

	while (v && *v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		size_t n = strcspn(v, ",");
		size_t m = n;
		while (m && (v[m - 1] == ' ' || v[m - 1] == '\t'))
			m--;
		if (m == tl && !strncasecmp(v, t, tl))
			return 1;
		v += n;
	}
	return 0;
}

/*
 * No Origin (not a browser: Node, Python, OSCQuery tools), or the page's own
 * (http://<Host>): a browser sends the Origin of the page that opened the
 * socket, and a WebSocket has no same-origin rule, so any web page the
 * clinician visits could otherwise open ws://127.0.0.1:<port>/ and send control.
 */
static int same_origin(struct MHD_Connection *c)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");

	if (!origin)
		return 1;
	if (!host)
		return 0;
	if (!strncmp(origin, "http://", 7))
		origin += 7;
	else if (!strncmp(origin, "https://", 8))
		origin += 8;
	else
		return 0;
	return !strcasecmp(origin, host);
}

/* An HTTP request with Upgrade: websocket; answer 101 and hand over, or say why not. */
static enum MHD_Result ws_upgrade(struct emg_oscquery *q, struct MHD_Connection *c,
				  const char *method)
{
	const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection");
	const char *ver = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	struct emg_oscquery_reply rp = { 0 };
	struct MHD_Response *r;
	enum MHD_Result ret;
	char accept[29];
	unsigned n;

	if (strcmp(method, "GET") || !has_token(conn, "upgrade") || emg_ws_accept_key(key, accept) < 0)
		reply_text(&rp, 400, "a WebSocket upgrade needs GET, Connection: Upgrade and a Sec-WebSocket-Key\n");
	else if (!ver || strcmp(ver, "13"))
		reply_text(&rp, 426, "WebSocket version 13 only\n");
	if (!rp.status) {
		pthread_mutex_lock(&q->wslock);
		n = q->nws;
		if (n >= EMG_OSCQUERY_WS_MAX)
			q->wst.refused++;
		pthread_mutex_unlock(&q->wslock);
		if (n >= EMG_OSCQUERY_WS_MAX)
			reply_text(&rp, 503, "too many WebSocket clients\n");
	} else {
		pthread_mutex_lock(&q->wslock);
		q->wst.refused++;
		pthread_mutex_unlock(&q->wslock);
	}
	if (!rp.status) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (ci && ci->socket_context)
			((struct hconn *)ci->socket_context)->same_origin = same_origin(c);
	}
	if (rp.status) {
		r = MHD_create_response_from_buffer(rp.len, rp.body, MHD_RESPMEM_MUST_COPY);
		free(rp.body);
		if (!r)
			return MHD_NO;
		if (rp.status == 426)
			MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
		ret = MHD_queue_response(c, rp.status, r);
		MHD_destroy_response(r);
		return ret;
	}
	r = MHD_create_response_for_upgrade(on_upgrade, q);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
	ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	return ret;
}

/* Runs on the HTTP thread. */
static enum MHD_Result on_http(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct emg_oscquery *q = cls;
	struct emg_oscquery_reply rp;
	const union MHD_ConnectionInfo *ci;
	enum MHD_Result ret;

	(void)url; /* decoded by MHD, NUL and all: the raw target from on_uri is used */
	(void)version;
	(void)upload;
	if (!*con_cls)
		return MHD_NO; /* out of memory copying the target */
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context)
		((struct hconn *)ci->socket_context)->busy = 1; /* complete: not evicted while answered */
	{
		const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade");
		if (up && !strcasecmp(up, "websocket"))
			return ws_upgrade(q, c, method);
	}
	if (emg_oscquery_answer(q, method, *con_cls, *upload_size, &rp) < 0) {
		free(rp.body);
		return MHD_NO;
	}
	ret = queue(c, &rp);
	free(rp.body);
	return ret;
}

/* Cut connections whose request missed its deadline: MHD sees the socket fail and closes it. */
static void reap(struct emg_oscquery *q)
{
	uint64_t now = mono_ns();

	for (struct hconn *h = q->conns; h; h = h->next)
		if (!h->cut && !h->ws && now >= h->deadline_ns) {
			cut_conn(h);
			q->cut++;
		}
}

/*
 * One poll over MHD's epoll fd, the wake eventfd and every WebSocket socket
 * (write interest only while frames wait), then MHD's turn, then the
 * WebSocket clients': all sockets are served by this thread alone.
 */
static void *http_thread(void *arg)
{
	struct emg_oscquery *q = arg;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(q->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd pf[2 + EMG_OSCQUERY_WS_MAX];
	struct wsc *cl[EMG_OSCQUERY_WS_MAX];

	while (!__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
		MHD_UNSIGNED_LONG_LONG to;
		int timeout = HTTP_TICK_MS;
		unsigned n = 0;

		pf[0] = (struct pollfd){ .fd = di ? di->epoll_fd : -1, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = q->wake_fd, .events = POLLIN };
		pthread_mutex_lock(&q->wslock);
		for (struct wsc *c = q->ws; c && n < EMG_OSCQUERY_WS_MAX; c = c->next) {
			cl[n] = c;
			pf[2 + n] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
			if (c->count || c->outoff < c->outn || c->closing)
				pf[2 + n].events |= POLLOUT;
			n++;
		}
		pthread_mutex_unlock(&q->wslock);
		if (MHD_get_timeout(q->mhd, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)timeout)
			timeout = (int)to;
		if (poll(pf, 2 + n, timeout) < 0 && errno != EINTR)
			break;
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			if (read(q->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another read took it */
			}
		}
		MHD_run(q->mhd);
		for (unsigned i = 0; i < n; i++) {
			int r = 0;
			if (pf[2 + i].revents & (POLLIN | POLLHUP | POLLERR))
				r = ws_read(q, cl[i], NULL, 0);
			if (r == 0)
				r = ws_write(q, cl[i]);
			if (r < 0)
				ws_free(q, cl[i]);
		}
		reap(q);
	}
	return NULL;
}

static int start_http(struct emg_oscquery *q)
{
	struct sockaddr_storage ss;
	/* epoll: MHD_USE_POLL needs MHD's internal thread; select would cap fds at FD_SETSIZE */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_UPGRADE;
	const union MHD_DaemonInfo *info;
	int r;

	memset(&ss, 0, sizeof(ss));
	if (strchr(q->p.http.host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(q->p.http.port);
		if (inet_pton(AF_INET6, q->p.http.host, &a->sin6_addr) != 1)
			return -EINVAL;
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(q->p.http.port);
		if (inet_pton(AF_INET, q->p.http.host, &a->sin_addr) != 1)
			return -EINVAL;
	}
	q->mhd = MHD_start_daemon(flags, q->p.http.port, on_accept, q, on_http, q,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  /* room over the soft limit for the evicted while they close */
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * EMG_OSCQUERY_MAX_CONN),
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)EMG_OSCQUERY_MAX_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)(EMG_OSCQUERY_DEADLINE_MS / 1000 + 1),
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, q,
				  MHD_OPTION_URI_LOG_CALLBACK, on_uri, q,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, q,
				  MHD_OPTION_END);
	if (!q->mhd)
		return errno ? -errno : -EADDRINUSE;
	q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->cmdq = calloc(EMG_OSCQUERY_WS_COMMANDS, sizeof(*q->cmdq));
	if (q->wake_fd < 0 || q->ctl_fd < 0 || !q->cmdq) {
		r = errno ? -errno : -ENOMEM;
		MHD_stop_daemon(q->mhd);
		q->mhd = NULL;
		return r;
	}
	info = MHD_get_daemon_info(q->mhd, MHD_DAEMON_INFO_BIND_PORT);
	q->port = info && info->port ? info->port : q->p.http.port;
	r = pthread_create(&q->thread, NULL, http_thread, q);
	if (r) {
		MHD_stop_daemon(q->mhd);
		q->mhd = NULL;
		return -r;
	}
	q->running = 1;
	return 0;
}

static void stop_http(struct emg_oscquery *q)
{
	if (q->running) {
		__atomic_store_n(&q->stop, 1, __ATOMIC_RELEASE);
		pthread_join(q->thread, NULL); /* within one HTTP_TICK_MS */
		q->running = 0;
		if (q->cut || q->evicted || q->denied)
			qlog(q, LOG_INFO, "oscquery: %lu connections cut at the %u ms request deadline, %lu evicted for newer ones, %lu refused (not in [osc] allow)",
			     q->cut, EMG_OSCQUERY_DEADLINE_MS, q->evicted, q->denied);
	}
	while (q->ws) {
		unsigned char f[4];
		size_t n = emg_ws_close_frame(f, EMG_WS_CLOSE_GOING_AWAY);
		if (send(q->ws->fd, f, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* best effort: the client sees the socket close either way */
		}
		ws_free(q, q->ws);
	}
	if (q->mhd)
		MHD_stop_daemon(q->mhd); /* closes what is left: CLOSED frees each hconn */
	q->mhd = NULL;
}

#else

void emg_oscquery_publish(struct emg_oscquery *q, const void *pkt, size_t len)
{
	if (q)
		keep_values(q, pkt, len);
}

static void ws_broadcast_text(struct emg_oscquery *q, const struct notes *nt)
{
	(void)q;
	(void)nt;
}

void emg_oscquery_ws_stats(struct emg_oscquery *q, struct emg_oscquery_ws_stats *st)
{
	(void)q;
	memset(st, 0, sizeof(*st));
}

void emg_oscquery_control_run(struct emg_oscquery *q, struct emg_osc *o, uint64_t now_ns)
{
	(void)q;
	(void)o;
	(void)now_ns;
}

#endif /* EMG_HAVE_MICROHTTPD */

#ifdef EMG_HAVE_AVAHI

/* Avahi callbacks run on its threaded poll (or inside avahi_client_new on the caller's). */
static void create_services(struct emg_oscquery *q, AvahiClient *c);

static void rename_service(struct emg_oscquery *q)
{
	char *n = avahi_alternative_service_name(q->svc_name);

	qlog(q, LOG_NOTICE, "mdns: the name '%s' is taken on the network, using '%s'", q->svc_name, n);
	avahi_free(q->svc_name);
	q->svc_name = n;
}

static void on_group(AvahiEntryGroup *g, AvahiEntryGroupState state, void *ud)
{
	struct emg_oscquery *q = ud;

	switch (state) {
	case AVAHI_ENTRY_GROUP_ESTABLISHED:
		qlog(q, LOG_NOTICE, "mdns: advertising '%s': _oscjson._tcp port %u, _osc._udp port %u",
		     q->svc_name, q->port, q->p.osc.port);
		break;
	case AVAHI_ENTRY_GROUP_COLLISION:
		rename_service(q);
		create_services(q, avahi_entry_group_get_client(g));
		break;
	case AVAHI_ENTRY_GROUP_FAILURE:
		qlog(q, LOG_WARNING, "mdns: advertising failed: %s",
		     avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
		break;
	default:
		break;
	}
}

static void create_services(struct emg_oscquery *q, AvahiClient *c)
{
	int r;

	if (!q->group && !(q->group = avahi_entry_group_new(c, on_group, q))) {
		qlog(q, LOG_WARNING, "mdns: %s", avahi_strerror(avahi_client_errno(c)));
		return;
	}
	for (;;) {
		avahi_entry_group_reset(q->group);
		r = avahi_entry_group_add_service(q->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0,
						  q->svc_name, "_oscjson._tcp", NULL, NULL,
						  (uint16_t)q->port, "txtvers=1", NULL);
		if (r == 0)
			r = avahi_entry_group_add_service(q->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
							  0, q->svc_name, "_osc._udp", NULL, NULL,
							  (uint16_t)q->p.osc.port, "txtvers=1", NULL);
		if (r == AVAHI_ERR_COLLISION) {
			rename_service(q);
			continue;
		}
		if (r == 0)
			r = avahi_entry_group_commit(q->group);
		if (r < 0)
			qlog(q, LOG_WARNING, "mdns: cannot advertise: %s", avahi_strerror(r));
		return;
	}
}

static void on_client(AvahiClient *c, AvahiClientState state, void *ud)
{
	struct emg_oscquery *q = ud;

	switch (state) {
	case AVAHI_CLIENT_S_RUNNING:
		create_services(q, c);
		break;
	case AVAHI_CLIENT_S_COLLISION:
	case AVAHI_CLIENT_S_REGISTERING:
		/* the host name changed or collided: withdraw until running again */
		if (q->group)
			avahi_entry_group_reset(q->group);
		break;
	case AVAHI_CLIENT_CONNECTING:
		if (!q->said_waiting)
			qlog(q, LOG_NOTICE, "mdns: avahi-daemon is not running; emgd will advertise once it starts (OSCQuery HTTP serves meanwhile)");
		q->said_waiting = 1;
		break;
	case AVAHI_CLIENT_FAILURE:
		qlog(q, LOG_WARNING, "mdns: %s; not advertising (OSCQuery HTTP still serves)",
		     avahi_strerror(avahi_client_errno(c)));
		break;
	}
}

static int start_mdns(struct emg_oscquery *q)
{
	int err = 0;

	q->svc_name = avahi_strdup(q->name);
	q->poll = avahi_threaded_poll_new();
	if (!q->svc_name || !q->poll)
		return -ENOMEM;
	/* NO_FAIL: an avahi-daemon (or D-Bus) that is not up yet is waited for, not an error. */
	q->client = avahi_client_new(avahi_threaded_poll_get(q->poll), AVAHI_CLIENT_NO_FAIL,
				     on_client, q, &err);
	if (!q->client) {
		qlog(q, LOG_WARNING, "mdns: %s; not advertising (OSCQuery HTTP still serves)",
		     avahi_strerror(err));
		return 0;
	}
	if (avahi_threaded_poll_start(q->poll) < 0) {
		qlog(q, LOG_WARNING, "mdns: cannot start the Avahi thread; not advertising");
		avahi_client_free(q->client);
		q->client = NULL;
		q->group = NULL;
	}
	return 0;
}

static void stop_mdns(struct emg_oscquery *q)
{
	if (q->poll)
		avahi_threaded_poll_stop(q->poll);
	if (q->client)
		avahi_client_free(q->client); /* frees the entry group too */
	if (q->poll)
		avahi_threaded_poll_free(q->poll);
	avahi_free(q->svc_name);
	q->client = NULL;
	q->group = NULL;
	q->poll = NULL;
	q->svc_name = NULL;
}

#endif /* EMG_HAVE_AVAHI */

/* The document, the name and the allow list; no server yet. */
static int create(struct emg_oscquery **out, const struct emg_oscquery_params *p,
		  const struct emg_muscles *m)
{
	struct emg_oscquery *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return -ENOMEM;
	q->p = *p;
	default_name(q->name, sizeof(q->name), p->name);
	q->p.name = q->name;
	q->p.allow = NULL; /* copied below; the caller's array may go away on reload */
	q->p.www = NULL;   /* likewise: q->www */
	q->p.token = NULL; /* likewise: q->token */
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->wslock, NULL);
	q->wake_fd = -1;
	q->ctl_fd = -1;
	q->port = p->http.port;
	emg_oscquery_set_allow(q, p->allow, p->allow ? p->nallow : 0);
	r = emg_oscquery_set_www(q, p->www);
	if (r == 0)
		r = emg_oscquery_set_control(q, p->control, p->token);
	if (r == 0)
		r = install_doc(q, m); /* before the server: a request may come at once */
	if (r < 0) {
		emg_oscquery_free(q);
		return r;
	}
	*out = q;
	return 0;
}

int emg_oscquery_new_offline(struct emg_oscquery **out, const struct emg_oscquery_params *p,
			     const struct emg_muscles *m)
{
	return create(out, p, m);
}

int emg_oscquery_new(struct emg_oscquery **out, const struct emg_oscquery_params *p,
		     const struct emg_muscles *m)
{
#ifndef EMG_HAVE_MICROHTTPD
	(void)out;
	(void)p;
	(void)m;
	return -EOPNOTSUPP;
#else
	struct emg_oscquery *q;
	int r = create(&q, p, m);

	if (r < 0)
		return r;
	r = start_http(q);
#ifdef EMG_HAVE_AVAHI
	if (r == 0 && p->mdns)
		r = start_mdns(q);
#else
	if (r == 0 && p->mdns)
		qlog(q, LOG_WARNING, "mdns: this emgd was built without Avahi; not advertising (OSCQuery HTTP serves)");
#endif
	if (r < 0) {
		emg_oscquery_free(q);
		return r;
	}
	*out = q;
	return 0;
#endif
}

void emg_oscquery_free(struct emg_oscquery *q)
{
	if (!q)
		return;
#ifdef EMG_HAVE_AVAHI
	stop_mdns(q);
#endif
#ifdef EMG_HAVE_MICROHTTPD
	stop_http(q);
#endif
	doc_free(q->doc);
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	if (q->ctl_fd >= 0)
		close(q->ctl_fd);
	free(q->cmdq);
	pthread_mutex_destroy(&q->wslock);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
