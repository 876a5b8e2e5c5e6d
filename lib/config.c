/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "emgd-config.h"
#include "text.h"

/*
 * Every key is one row: where it lives, how to parse it and what is
 * allowed.  The "allowed" text is what an error message quotes, so the
 * table is the single source of truth for both parsing and diagnostics.
 */
enum ktype { K_DOUBLE, K_UINT, K_BOOL, K_STR, K_CUSTOM, K_DEVOPT };
/* How a reload compares a key's field between two configs. */
enum kcmp { C_MEM, C_STR, C_HOSTPORT, C_TARGETS, C_ALLOW };

struct kdef;
typedef int (*kparse_fn)(struct emg_config *cfg, const char *v);

struct kdef {
	const char *section;
	const char *name;
	enum ktype type;
	size_t off;      /* the field in struct emg_config (K_CUSTOM: the one it sets) */
	size_t size;     /* its size: the K_STR buffer, the bytes C_MEM compares */
	double min, max; /* K_DOUBLE / K_UINT range */
	kparse_fn parse; /* K_CUSTOM */
	enum kcmp cmp;
	unsigned flags;  /* enum emg_config_effect, plus SYNTH_READS */
	const char *allowed; /* NULL: the registry's driver names */
	const struct emg_device_option *opt; /* K_DEVOPT: a driver's option */
};

/* The synth reads this key too (it hums at [dsp] mains): with the synth
 * running, a change restarts the device. */
#define SYNTH_READS (1u << 16)

#define OFF(f) offsetof(struct emg_config, f)
#define FIELD(f) OFF(f), sizeof(((struct emg_config *)0)->f)
#define DBL(sec, key, f, lo, hi, fl, txt) { sec, key, K_DOUBLE, FIELD(f), lo, hi, NULL, C_MEM, fl, txt, NULL }
#define UINT(sec, key, f, lo, hi, fl, txt) { sec, key, K_UINT, FIELD(f), lo, hi, NULL, C_MEM, fl, txt, NULL }
#define BOOL(sec, key, f, fl) { sec, key, K_BOOL, FIELD(f), 0, 0, NULL, C_MEM, fl, "yes or no", NULL }
#define STR(sec, key, f, fl, txt) { sec, key, K_STR, FIELD(f), 0, 0, NULL, C_STR, fl, txt, NULL }
#define CUSTOM(sec, key, f, fn, cmp, fl, txt) { sec, key, K_CUSTOM, FIELD(f), 0, 0, fn, cmp, fl, txt, NULL }

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_number(const char *v, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	return (errno || end == v || *end || !isfinite(*out)) ? -EINVAL : 0;
}

static int p_driver(struct emg_config *c, const char *v)
{
	if (!emg_device_find(v))
		return -EINVAL;
	snprintf(c->driver, sizeof(c->driver), "%s", v);
	return 0;
}

/* 0 (the driver's own) or 250..16000 Hz, checked here so the error quotes the value as written. */
static int p_rate(struct emg_config *c, const char *v)
{
	double d;

	if (parse_number(v, &d) < 0 || (d != 0 && (d < 250 || d > EMG_DEVICE_RATE_MAX)))
		return -EINVAL;
	c->rate = d;
	return 0;
}

static int p_mains(struct emg_config *c, const char *v)
{
	return emg_filter_mains_parse(v, &c->pipe.filter.mains_hz);
}

static int p_order(unsigned *dst, const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (end == v || *end || n < 2 || n > 8 || (n & 1))
		return -EINVAL;
	*dst = (unsigned)n;
	return 0;
}

static int p_hp_order(struct emg_config *c, const char *v)
{
	return p_order(&c->pipe.filter.highpass_order, v);
}

static int p_lp_order(struct emg_config *c, const char *v)
{
	return p_order(&c->pipe.filter.lowpass_order, v);
}

static int p_detector(struct emg_config *c, const char *v)
{
	return emg_onset_method_parse(v, &c->pipe.onset.method);
}

static int p_ecg(struct emg_config *c, const char *v)
{
	return emg_ecg_mode_parse(v, &c->pipe.ecg.mode);
}

static int p_ecg_order(struct emg_config *c, const char *v)
{
	return p_order(&c->pipe.ecg.highpass_order, v);
}

static int p_listen(struct emg_config *c, const char *v)
{
	return emg_hostport_parse_auto(v, &c->listen);
}

static int p_target(struct emg_config *c, const char *v)
{
	if (c->ntargets == EMG_CONFIG_MAX_TARGETS)
		return -ENOSPC;
	if (emg_hostport_parse(v, &c->targets[c->ntargets]) < 0)
		return -EINVAL;
	c->ntargets++;
	return 0;
}

static int p_allow(struct emg_config *c, const char *v)
{
	/* Several networks on one line, separated by spaces or commas. */
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", v);
	for (char *tok = strtok_r(buf, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		if (c->nallow == EMG_CONFIG_MAX_ALLOW)
			return -ENOSPC;
		if (emg_cidr_parse(tok, &c->allow[c->nallow]) < 0)
			return -EINVAL;
		c->nallow++;
	}
	return 0;
}

static int p_record(struct emg_config *c, const char *v)
{
	if (!strcmp(v, "off"))
		c->record = EMG_RECORD_OFF;
	else if (!strcmp(v, "auto"))
		c->record = EMG_RECORD_AUTO;
	else
		return -EINVAL;
	return 0;
}

static int p_record_format(struct emg_config *c, const char *v)
{
	if (!strcmp(v, "bdf"))
		c->record_edf = false;
	else if (!strcmp(v, "edf"))
		c->record_edf = true;
	else
		return -EINVAL;
	return 0;
}

static int p_dir(char *dst, size_t len, const char *v)
{
	if (v[0] != '/' || strlen(v) >= len)
		return -EINVAL;
	snprintf(dst, len, "%s", v);
	return 0;
}

static int p_oscquery_http(struct emg_config *c, const char *v)
{
	return emg_hostport_parse_auto(v, &c->oscquery_http);
}

/* The name goes into OSCQuery's JSON and the mDNS record: invalid UTF-8 made the
 * JSON invalid, and a control character has no place in a service name. */
static int p_oscquery_name(struct emg_config *c, const char *v)
{
	if (strlen(v) >= sizeof(c->oscquery_name) || !emg_text_valid(v))
		return -EINVAL;
	snprintf(c->oscquery_name, sizeof(c->oscquery_name), "%s", v);
	return 0;
}

/* Empty turns the browser view off; otherwise a directory, absolute like the others. */
static int p_oscquery_www(struct emg_config *c, const char *v)
{
	if (!v[0]) {
		c->oscquery_www[0] = '\0';
		return 0;
	}
	return p_dir(c->oscquery_www, sizeof(c->oscquery_www), v);
}

/* A shared secret typed into a tablet's address bar (#token=...): URL-safe, long enough not to guess. */
static int p_web_token(struct emg_config *c, const char *v)
{
	size_t n = strlen(v);

	if (n && (n < 16 || n >= sizeof(c->web_token)))
		return -EINVAL;
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-._~", *p))
			return -EINVAL;
	snprintf(c->web_token, sizeof(c->web_token), "%s", v);
	return 0;
}

static int p_state_dir(struct emg_config *c, const char *v)
{
	return p_dir(c->state_dir, sizeof(c->state_dir), v);
}

static int p_rec_dir(struct emg_config *c, const char *v)
{
	return p_dir(c->recordings_dir, sizeof(c->recordings_dir), v);
}

#define P EMG_CFG_PIPELINE

static const struct kdef keys[] = {
	/* [device]: the keys of every driver; the drivers' own options follow (table_build) */
	CUSTOM("device", "driver", driver, p_driver, C_STR, EMG_CFG_DEVICE, NULL),
	CUSTOM("device", "rate", rate, p_rate, C_MEM, EMG_CFG_DEVICE, "0 (driver default) or 250..16000 Hz"),
	UINT("device", "channels", channels, 0, EMG_DEVICE_MAX_CHANNELS, EMG_CFG_DEVICE, "0 (enough for [muscles]) .. 256"),
	STR("device", "serial", serial, EMG_CFG_DEVICE, "a serial number, up to 63 characters"),

	DBL("dsp", "highpass", pipe.filter.highpass_hz, 0, 200, P, "0 (off) .. 200 Hz"),
	CUSTOM("dsp", "highpass_order", pipe.filter.highpass_order, p_hp_order, C_MEM, P, "2, 4, 6 or 8"),
	DBL("dsp", "lowpass", pipe.filter.lowpass_hz, 0, 8000, P, "0 (off) .. 8000 Hz (clamped to 0.45 x rate)"),
	CUSTOM("dsp", "lowpass_order", pipe.filter.lowpass_order, p_lp_order, C_MEM, P, "2, 4, 6 or 8"),
	CUSTOM("dsp", "mains", pipe.filter.mains_hz, p_mains, C_MEM, P | SYNTH_READS, "auto, 50, 60 or off"),
	DBL("dsp", "notch_q", pipe.filter.notch_q, 1, 200, P, "1..200"),
	DBL("dsp", "rms_window_ms", pipe.rms_window_ms, 5, 2000, P, "5..2000 ms"),
	DBL("dsp", "onset_window_ms", pipe.onset.window_ms, 2, 500, P, "2..500 ms"),
	CUSTOM("dsp", "detector", pipe.onset.method, p_detector, C_MEM, P, "hodges, tkeo or bonato"),
	DBL("dsp", "threshold_k", pipe.onset.k, 0.5, 50, P, "0.5..50 (standard deviations)"),
	DBL("dsp", "hold_ms", pipe.onset.hold_ms, 1, 1000, P, "1..1000 ms"),
	DBL("dsp", "offset_ms", pipe.onset.offset_ms, 1, 5000, P, "1..5000 ms"),
	DBL("dsp", "min_burst_ms", pipe.onset.min_burst_ms, 1, 5000, P, "1..5000 ms"),
	DBL("dsp", "report_ms", pipe.onset.report_ms, 0, 5000, P, "0..5000 ms (0: report at once)"),
	DBL("dsp", "startup_s", pipe.onset.startup_s, 0, 600, P, "0..600 s (0: no start-up gate)"),
	DBL("dsp", "startup_report_ms", pipe.onset.startup_report_ms, 0, 5000, P, "0..5000 ms"),
	DBL("dsp", "startup_emg_hz", pipe.onset.startup_emg_hz, 0, 1000, P, "0..1000 Hz (0: length alone)"),
	DBL("dsp", "bonato_pfa", pipe.onset.bonato_pfa, 1e-9, 0.5, P, "1e-9..0.5"),
	CUSTOM("dsp", "ecg", pipe.ecg.mode, p_ecg, C_MEM, P, "off, highpass, subtract or both"),
	DBL("dsp", "ecg_highpass_hz", pipe.ecg.highpass_hz, 5, 200, P, "5..200 Hz"),
	CUSTOM("dsp", "ecg_highpass_order", pipe.ecg.highpass_order, p_ecg_order, C_MEM, P, "2, 4, 6 or 8"),
	STR("dsp", "ecg_muscles", ecg_muscles, P, "all, or the [muscles] names that get ECG rejection, separated by spaces"),

	/* OSCQuery advertises the OSC port: a new listen address restarts it too */
	CUSTOM("osc", "listen", listen, p_listen, C_HOSTPORT, EMG_CFG_OSC_SOCKET | EMG_CFG_OSCQUERY, "host:port with a numeric IPv4 or [IPv6] address, host:auto or auto"),
	DBL("osc", "publish_rate", pipe.publish_rate, 1, 1000, P, "1..1000 Hz"),
	CUSTOM("osc", "target", targets, p_target, C_TARGETS, EMG_CFG_OSC, "host:port (numeric), up to 16 target lines"),
	UINT("osc", "max_subscribers", max_subscribers, 1, 1024, EMG_CFG_OSC, "1..1024"),
	UINT("osc", "max_subscribers_per_host", max_subscribers_per_host, 1, 1024, EMG_CFG_OSC, "1..1024 (loopback counts as one host)"),
	UINT("osc", "lease", default_lease_s, 1, 300, EMG_CFG_OSC, "1..300 s"),
	UINT("osc", "max_lease", max_lease_s, 1, 3600, EMG_CFG_OSC, "1..3600 s"),
	DBL("osc", "rate_limit", rate_limit, 1, 100000, EMG_CFG_OSC, "1..100000 packets/s per source host"),
	UINT("osc", "rate_burst", rate_burst, 1, 100000, EMG_CFG_OSC, "1..100000 packets"),
	/* the HTTP server serves whom OSC control serves */
	CUSTOM("osc", "allow", allow, p_allow, C_ALLOW, EMG_CFG_OSC | EMG_CFG_OSCQUERY_LIVE, "IPv4/IPv6 networks in CIDR form, e.g. 192.168.1.0/24 fd00::/8 (at most 32)"),

	CUSTOM("daemon", "state_dir", state_dir, p_state_dir, C_STR, EMG_CFG_RESTART, "an absolute path"),
	CUSTOM("daemon", "recordings_dir", recordings_dir, p_rec_dir, C_STR, EMG_CFG_RECORDING, "an absolute path"),
	CUSTOM("daemon", "record", record, p_record, C_MEM, EMG_CFG_RECORDING, "off or auto"),
	CUSTOM("daemon", "record_format", record_edf, p_record_format, C_MEM, EMG_CFG_RECORDING, "bdf (24-bit BDF+) or edf (16-bit EDF+)"),
	BOOL("daemon", "record_filtered", record_filtered, EMG_CFG_RECORDING),
	BOOL("daemon", "record_envelopes", record_envelopes, EMG_CFG_RECORDING),
	BOOL("daemon", "mlock", mlock, EMG_CFG_RESTART),
	UINT("daemon", "rt_priority", rt_priority, 0, 99, EMG_CFG_RESTART, "0 (off) .. 99"),

	DBL("analytics", "order_window_ms", analytics.order_window_ms, 10, 2000, EMG_CFG_ANALYTICS, "10..2000 ms"),
	DBL("analytics", "min_rest_ms", analytics.min_rest_ms, 0, 10000, EMG_CFG_ANALYTICS, "0..10000 ms"),
	STR("analytics", "pairs", analytics_pairs, EMG_CFG_ANALYTICS, "auto, none, or muscle:muscle pairs of [muscles] separated by spaces (at most 32)"),

	BOOL("oscquery", "enabled", oscquery, EMG_CFG_OSCQUERY),
	CUSTOM("oscquery", "http", oscquery_http, p_oscquery_http, C_HOSTPORT, EMG_CFG_OSCQUERY, "host:port with a numeric IPv4 or [IPv6] address, host:auto or auto"),
	BOOL("oscquery", "mdns", mdns, EMG_CFG_OSCQUERY),
	CUSTOM("oscquery", "name", oscquery_name, p_oscquery_name, C_STR, EMG_CFG_OSCQUERY, "a service name in UTF-8 without control characters, up to 63 bytes (empty: emgd on <hostname>)"),
	CUSTOM("oscquery", "www", oscquery_www, p_oscquery_www, C_STR, EMG_CFG_OSCQUERY_LIVE, "an absolute path to the browser view's files, or empty (no view)"),

	/* set on the running OSCQuery server */
	BOOL("web", "control", web_control, EMG_CFG_OSCQUERY_LIVE),
	CUSTOM("web", "token", web_token, p_web_token, C_STR, EMG_CFG_OSCQUERY_LIVE, "empty (none), or 16 to 128 characters from A-Z a-z 0-9 - . _ ~"),
};

#undef P

#define NSTATIC (sizeof(keys) / sizeof(keys[0]))
/* keys[] plus every driver option: room for the registry to grow */
#define MAX_KEYS 160

static struct kdef table[MAX_KEYS];
static size_t ntable;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* The config table: keys[], with the registry's driver options after the
 * common [device] keys (one row per option name: gain serves cyton and
 * hackeeg).  Built once; read-only afterwards. */
static void table_build(void)
{
	size_t n = 0;

	for (size_t i = 0; i < NSTATIC; i++) {
		table[n++] = keys[i];
		if (strcmp(keys[i].section, "device") ||
		    (i + 1 < NSTATIC && !strcmp(keys[i + 1].section, "device")))
			continue;
		for (const struct emg_device_ops *const *d = emg_device_drivers(); *d; d++)
			for (const struct emg_device_option *o = (*d)->options; o && o->name; o++) {
				if (emg_device_option_find(o->name, NULL) != o)
					continue; /* declared by an earlier driver */
				if (n + (NSTATIC - i) >= MAX_KEYS)
					abort(); /* MAX_KEYS too small: a build-time bug */
				table[n++] = (struct kdef){ "device", o->name, K_DEVOPT, 0, 0, 0, 0, NULL,
							    C_MEM, EMG_CFG_DEVICE, o->allowed, o };
			}
	}
	ntable = n;
}

static void table_ready(void)
{
	pthread_once(&table_once, table_build);
}

int emg_config_init(struct emg_config *cfg)
{
	int r;

	table_ready();
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->driver, sizeof(cfg->driver), "synth");
	cfg->rate = 0; /* each driver's own: synth/hackeeg 2000 Hz, cyton 250 (125 with Daisy) */
	/* the drivers' options: their tables' defaults (lib/device.c) */
	emg_device_config_default(&cfg->dev);
	emg_pipeline_config_default(&cfg->pipe);
	snprintf(cfg->ecg_muscles, sizeof(cfg->ecg_muscles), "all");
	snprintf(cfg->listen.host, sizeof(cfg->listen.host), "127.0.0.1");
	cfg->listen.port = 9000;
	cfg->max_subscribers = 64;
	cfg->max_subscribers_per_host = 16;
	cfg->default_lease_s = 10;
	cfg->max_lease_s = 300;
	cfg->rate_limit = 50;
	cfg->rate_burst = 100;
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/emgd");
	snprintf(cfg->recordings_dir, sizeof(cfg->recordings_dir), "/var/lib/emgd/recordings");
	cfg->record = EMG_RECORD_OFF;
	cfg->mlock = true;
	emg_analytics_params_default(&cfg->analytics);
	snprintf(cfg->analytics_pairs, sizeof(cfg->analytics_pairs), "auto");
	cfg->oscquery = false;
	snprintf(cfg->oscquery_http.host, sizeof(cfg->oscquery_http.host), "127.0.0.1");
	cfg->oscquery_http.port = 9001;
	cfg->mdns = false;
	snprintf(cfg->oscquery_www, sizeof(cfg->oscquery_www), "%s", EMGD_WWWDIR);
	/* the OSCQuery server listens on loopback by default: who reaches it may
	 * control, as over UDP; other hosts need [osc] allow, and the token if set */
	cfg->web_control = true;
	cfg->web_token[0] = '\0';
	r = emg_muscles_new_default(&cfg->muscles);
	if (r == 0) /* the default map's pairs: glute_max_l:hip_flex_l, glute_max_r:hip_flex_r */
		r = emg_analytics_pairs_parse(cfg->analytics_pairs, cfg->muscles, cfg->analytics.pairs,
					      &cfg->analytics.npairs, NULL, 0);
	return r;
}

void emg_config_release(struct emg_config *cfg)
{
	emg_muscles_free(cfg->muscles);
	cfg->muscles = NULL;
}

int emg_config_copy(struct emg_config *dst, const struct emg_config *src)
{
	*dst = *src;
	dst->muscles = NULL;
	return src->muscles ? emg_muscles_dup(src->muscles, &dst->muscles) : 0;
}

struct parse_ctx {
	struct emg_config *cfg;
	char *err;
	size_t errlen;
	const char *name;
	int in_muscles;
	int muscles_seen;
	/* line reader state (see read_line) */
	const char *text;
	size_t left;
	unsigned lineno;    /* lines handed to inih so far */
	unsigned fail_line; /* line of the first handler error, 0 = none */
	int validate_line;  /* validate() failed on a known line (fail_line) */
	unsigned long_line; /* line that did not fit inih's buffer, 0 = none */
	int max_line;
	int stop;
	/* Where each key of keys[] was set in this text and its value as written:
	 * duplicates name both lines, and cross-key errors after the whole file was
	 * read still name a line and quote the value as the user wrote it. */
	unsigned key_line[MAX_KEYS];
	char key_text[MAX_KEYS][48];
	unsigned muscles_line; /* first [muscles] entry, 0 = none in this text */
};

/* Index of [section] name in table[], -1 if unknown. */
static int key_index(const char *section, const char *name)
{
	for (size_t i = 0; i < ntable; i++)
		if (!strcmp(table[i].section, section) && !strcmp(table[i].name, name))
			return (int)i;
	return -1;
}

/* Keys that are lists: each line adds an entry instead of setting the value. */
static int key_repeats(const struct kdef *k)
{
	return !strcmp(k->section, "osc") && (!strcmp(k->name, "target") || !strcmp(k->name, "allow"));
}

static int vfail(struct parse_ctx *ctx, const char *fmt, va_list ap)
{
	if (!ctx->fail_line) { /* the first error is the one reported */
		vsnprintf(ctx->err, ctx->errlen, fmt, ap);
		ctx->fail_line = ctx->lineno ? ctx->lineno : 1;
	}
	ctx->stop = 1;
	return 0; /* tells inih to stop and report the line */
}

/* Format the key-specific part of an error; the caller prefixes file:line. */
static int fail(struct parse_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(ctx, fmt, ap);
	va_end(ap);
	return r;
}

/* A validate() error reported at line (0: none known, the message names the file only). */
static int fail_at(struct parse_ctx *ctx, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (line && !ctx->fail_line) {
		ctx->lineno = line;
		ctx->validate_line = 1;
	}
	va_start(ap, fmt);
	r = vfail(ctx, fmt, ap);
	va_end(ap);
	return r;
}

/* Key i's value as written in this text, else v (it came from the config parsed over). */
static const char *key_value(const struct parse_ctx *ctx, int i, double v, char *buf, size_t n)
{
	if (i >= 0 && ctx->key_line[i])
		return ctx->key_text[i];
	snprintf(buf, n, "%g", v);
	return buf;
}

/*
 * Two keys that contradict each other (a must be a_rule b, e.g. "below"): the
 * error names the one set in this text, at its line, quoting both values as
 * written and the other's line when it is in this text too.
 */
static int fail_cross(struct parse_ctx *ctx, const char *sa, const char *a, double av,
		      const char *a_rule, const char *sb, const char *b, double bv, const char *b_rule)
{
	int ia = key_index(sa, a), ib = key_index(sb, b);
	char ta[32], tb[32], other[32] = "";
	const char *va = key_value(ctx, ia, av, ta, sizeof(ta));
	const char *vb = key_value(ctx, ib, bv, tb, sizeof(tb));

	if (ia >= 0 && ctx->key_line[ia]) {
		if (ib >= 0 && ctx->key_line[ib])
			snprintf(other, sizeof(other), " on line %u", ctx->key_line[ib]);
		return fail_at(ctx, ctx->key_line[ia], "[%s] %s = %s: bad value (allowed: %s [%s] %s = %s%s)",
			       sa, a, va, a_rule, sb, b, vb, other);
	}
	return fail_at(ctx, ib >= 0 ? ctx->key_line[ib] : 0,
		       "[%s] %s = %s: bad value (allowed: %s [%s] %s = %s)", sb, b, vb, b_rule, sa, a, va);
}

/* The sections, as error messages list them (the same as section_known's). */
#define SECTIONS "device, dsp, osc, daemon, muscles, analytics, oscquery, web"

static int section_known(const char *name, size_t len)
{
	static const char *const sections[] = { "device", "dsp", "osc", "daemon", "muscles",
						"analytics", "oscquery", "web" };

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strlen(sections[i]) == len && !strncmp(sections[i], name, len))
			return 1;
	return 0;
}

/*
 * inih reader over the in-memory text, one line per call.  The system inih
 * keeps parsing after an error (INI_STOP_ON_FIRST_ERROR 0), which would pair
 * the first error's line with a later line's message, and it splits lines
 * longer than its buffer into several "lines"; so stop reading at the first
 * handler error and refuse over-long lines instead.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	const char *nl;
	size_t n;

	if (ctx->stop || ctx->left == 0 || num < 2)
		return NULL;
	ctx->max_line = num - 2; /* room for the newline and the NUL */
	nl = memchr(ctx->text, '\n', ctx->left);
	n = nl ? (size_t)(nl - ctx->text) + 1 : ctx->left;
	ctx->lineno++;
	if (n > (size_t)num - 1) {
		ctx->long_line = ctx->lineno;
		return NULL;
	}
	memcpy(str, ctx->text, n);
	str[n] = '\0';
	ctx->text += n;
	ctx->left -= n;
	/* inih only reports sections that contain keys; an unknown one is a typo
	 * even when empty, and its header line is where the typo is. */
	{
		const char *q = str + strspn(str, " \t"), *close = strchr(q, ']');
		if (*q == '[' && close && !section_known(q + 1, (size_t)(close - q - 1))) {
			fail(ctx, "[%.*s]: unknown section (allowed: " SECTIONS ")",
			     (int)(close - q - 1), q + 1);
			return NULL;
		}
		/* inih ignores whatever follows the ']': "[device] rate = 4000" would
		 * silently drop the key, so only a comment may follow. */
		if (*q == '[' && close) {
			const char *t = close + 1 + strspn(close + 1, " \t\r\n");
			if (*t && *t != '#' && *t != ';') {
				size_t tn = strcspn(t, "\r\n");
				fail(ctx, "[%.*s] %.*s: text after the section header (allowed: only a comment after ']', starting with '#' or ';')",
				     (int)(close - q - 1), q + 1, (int)(tn > 80 ? 80 : tn), t);
				return NULL;
			}
		}
	}
	return str;
}

/* What an error says is allowed for k; the driver list comes from the registry. */
static const char *allowed_text(const struct kdef *k, char *buf, size_t len)
{
	if (k->allowed)
		return k->allowed;
	emg_device_names_text(buf, len);
	return buf;
}

static int apply_key(struct emg_config *cfg, const struct kdef *k, const char *v)
{
	char *base = (char *)cfg;
	double d;
	bool b;

	switch (k->type) {
	case K_DOUBLE:
		if (parse_number(v, &d) < 0 || d < k->min || d > k->max)
			return -EINVAL;
		*(double *)(base + k->off) = d;
		return 0;
	case K_UINT:
		if (parse_number(v, &d) < 0 || d != floor(d) || d < k->min || d > k->max)
			return -EINVAL;
		if (k->off == OFF(rt_priority))
			*(int *)(base + k->off) = (int)d;
		else
			*(unsigned *)(base + k->off) = (unsigned)d;
		return 0;
	case K_BOOL:
		if (parse_bool(v, &b) < 0)
			return -EINVAL;
		*(bool *)(base + k->off) = b;
		return 0;
	case K_STR:
		if (strlen(v) >= k->size)
			return -EINVAL;
		snprintf(base + k->off, k->size, "%s", v);
		return 0;
	case K_CUSTOM:
		return k->parse(cfg, v);
	case K_DEVOPT:
		return emg_device_option_set(&cfg->dev, k->opt, v);
	}
	return -EINVAL;
}

/* "glute_max_l = 1" or "glute_max_l = 1, free text electrode site"; channels are 1-based as printed on amplifiers. */
static int parse_muscle(struct parse_ctx *ctx, const char *name, const char *v)
{
	const char *comma = strchr(v, ',');
	char chbuf[16];
	size_t n = comma ? (size_t)(comma - v) : strlen(v);
	enum emg_side side = EMG_SIDE_NONE;
	size_t len = strlen(name);
	double ch;
	int r;

	if (!emg_muscle_name_valid(name))
		return fail(ctx, "[muscles] %s: bad muscle name (allowed: lower_snake a-z 0-9 _, starting with a letter, at most %d characters)",
			    name, EMG_MUSCLE_NAME_MAX - 1);
	if (n >= sizeof(chbuf))
		n = sizeof(chbuf) - 1;
	memcpy(chbuf, v, n);
	chbuf[n] = '\0';
	while (n && chbuf[n - 1] == ' ')
		chbuf[--n] = '\0';
	if (parse_number(chbuf, &ch) < 0 || ch != floor(ch) || ch < 1 || ch > EMG_DEVICE_MAX_CHANNELS)
		return fail(ctx, "[muscles] %s = %s: bad channel '%s' (allowed: 1..%d, as printed on the amplifier, then optionally ', electrode site')",
			    name, v, chbuf, EMG_DEVICE_MAX_CHANNELS);
	if (len > 2 && name[len - 2] == '_' && name[len - 1] == 'l')
		side = EMG_SIDE_LEFT;
	else if (len > 2 && name[len - 2] == '_' && name[len - 1] == 'r')
		side = EMG_SIDE_RIGHT;
	if (comma)
		while (*++comma == ' ')
			;
	if (!ctx->muscles_seen) {
		/* The first [muscles] entry replaces the built-in map entirely. */
		emg_muscles_clear(ctx->cfg->muscles);
		ctx->muscles_seen = 1;
	}
	r = emg_muscles_add(ctx->cfg->muscles, name, (unsigned)ch - 1, side, comma ? comma : "");
	if (r == -EEXIST)
		return fail(ctx, "[muscles] %s = %s: muscle name or channel already used (allowed: each muscle once, each channel once)",
			    name, v);
	if (r == -ENOSPC)
		return fail(ctx, "[muscles] %s: too many muscles (allowed: at most %d)", name, EMG_MUSCLES_MAX);
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	int known_section = 0;

	if (!section[0])
		return fail(ctx, "%s = %s: key outside any section (allowed: keys after a [section] header: " SECTIONS ")",
			    name, value);
	if (!strcmp(section, "muscles")) {
		if (!ctx->muscles_line)
			ctx->muscles_line = ctx->lineno;
		return parse_muscle(ctx, name, value);
	}
	for (size_t i = 0; i < ntable; i++) {
		const struct kdef *k = &table[i];
		if (strcmp(k->section, section))
			continue;
		known_section = 1;
		if (strcmp(k->name, name))
			continue;
		/* The last of two lines used to win silently: a pasted block or a
		 * forgotten earlier line would change a setting nobody looked at. */
		if (ctx->key_line[i] && !key_repeats(k))
			return fail(ctx, "[%s] %s = %s: already set on line %u (allowed: each key once; only [osc] target and allow, and [muscles] lines, repeat)",
				    section, name, value, ctx->key_line[i]);
		if (apply_key(ctx->cfg, k, value) < 0) {
			/* the error goes to the journal: no control bytes, no invalid UTF-8 */
			char shown[256], names[256];
			emg_text_clean(shown, sizeof(shown), value);
			return fail(ctx, "[%s] %s = %s: bad value (allowed: %s)", section, name, shown,
				    allowed_text(k, names, sizeof(names)));
		}
		ctx->key_line[i] = ctx->lineno;
		if (strlen(value) < sizeof(ctx->key_text[i]))
			snprintf(ctx->key_text[i], sizeof(ctx->key_text[i]), "%s", value);
		else
			snprintf(ctx->key_text[i], sizeof(ctx->key_text[i]), "%.*s...",
				 (int)sizeof(ctx->key_text[i]) - 4, value);
		return 1;
	}
	if (!known_section)
		return fail(ctx, "[%s]: unknown section (allowed: " SECTIONS ")",
			    section);
	{
		/* List the section's keys so the typo is obvious. */
		char list[512] = "";
		size_t used = 0;
		for (size_t i = 0; i < ntable; i++)
			if (!strcmp(table[i].section, section) && used < sizeof(list))
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 used ? ", " : "", table[i].name);
		return fail(ctx, "[%s] %s: unknown key (allowed: %s)", section, name, list);
	}
}


/* Line of [section] name in this text, else fallback (0: not in this text). */
static unsigned line_of(const struct parse_ctx *ctx, const char *section, const char *name,
			unsigned fallback)
{
	int i = key_index(section, name);

	return i >= 0 && ctx->key_line[i] ? ctx->key_line[i] : fallback;
}

/*
 * Cross-key checks that no single row can express.  They run after the whole
 * text was read, yet each still names the line of a key set in this text (the
 * other key's line too, when both are) and quotes the values as written.
 */
static int validate(struct parse_ctx *ctx)
{
	const struct emg_config *c = ctx->cfg;
	double lp = c->pipe.filter.lowpass_hz;

	if (c->pipe.filter.highpass_hz > 0 && lp > 0 && c->pipe.filter.highpass_hz >= lp)
		return fail_cross(ctx, "dsp", "highpass", c->pipe.filter.highpass_hz, "below",
				  "dsp", "lowpass", lp, "0 (off) or above");
	if ((c->pipe.ecg.mode & EMG_ECG_HIGHPASS) && lp > 0 && c->pipe.ecg.highpass_hz >= lp)
		return fail_cross(ctx, "dsp", "ecg_highpass_hz", c->pipe.ecg.highpass_hz, "below",
				  "dsp", "lowpass", lp, "0 (off) or above");
	{
		/* ecg_muscles names muscles, which may be listed after [dsp]: resolve it last. */
		struct emg_config *w = ctx->cfg;
		char buf[sizeof(w->ecg_muscles)], *save = NULL;
		unsigned n = emg_muscles_count(w->muscles);

		memset(w->pipe.ecg.skip, 0, sizeof(w->pipe.ecg.skip));
		if (strcmp(w->ecg_muscles, "all")) {
			for (unsigned i = 0; i < n && i < EMG_ECG_MAX_LANES; i++)
				w->pipe.ecg.skip[i] = 1;
			snprintf(buf, sizeof(buf), "%s", w->ecg_muscles);
			for (char *t = strtok_r(buf, " ,\t", &save); t; t = strtok_r(NULL, " ,\t", &save)) {
				int i = emg_muscles_find(w->muscles, t);
				if (i < 0)
					return fail_at(ctx, line_of(ctx, "dsp", "ecg_muscles", ctx->muscles_line),
						       "[dsp] ecg_muscles = %s: '%s' is not in [muscles] (allowed: all, or [muscles] names separated by spaces)",
						       w->ecg_muscles, t);
				if (i < EMG_ECG_MAX_LANES)
					w->pipe.ecg.skip[i] = 0;
			}
		}
	}
	if (c->default_lease_s > c->max_lease_s)
		return fail_cross(ctx, "osc", "lease", c->default_lease_s, "at most",
				  "osc", "max_lease", c->max_lease_s, "at least");
	if (c->rate > 0 && c->pipe.publish_rate > c->rate)
		return fail_cross(ctx, "osc", "publish_rate", c->pipe.publish_rate, "at most",
				  "device", "rate", c->rate, "0 (driver default) or at least");
	if (c->channels && emg_muscles_channels_needed(c->muscles) > c->channels) {
		char t[32];
		return fail_at(ctx, line_of(ctx, "device", "channels", ctx->muscles_line),
			       "[device] channels = %s: bad value: [muscles] uses channel %u (allowed: 0 (enough for [muscles]) or at least %u)",
			       key_value(ctx, key_index("device", "channels"), c->channels, t, sizeof(t)),
			       emg_muscles_channels_needed(c->muscles),
			       emg_muscles_channels_needed(c->muscles));
	}
	if (emg_muscles_count(c->muscles) == 0)
		return fail_at(ctx, ctx->muscles_line,
			       "[muscles]: no muscles (allowed: at least one 'name = channel' line)");
	{
		/* The driver refuses what cannot work before anything opens (a FIFO as
		 * the replay file would hang the daemon): --check-config and a reload
		 * say so, and a running daemon keeps its configuration. */
		const struct emg_device_ops *ops = emg_device_find(c->driver);
		const struct emg_device_option *o = NULL;
		char why[PATH_MAX + 128];

		if (ops && ops->check && ops->check(&c->dev, why, sizeof(why)) < 0) {
			/* the error names the driver's first path option, else [device] driver */
			for (const struct emg_device_option *p = ops->options; p && p->name && !o; p++)
				if (p->type == EMG_OPT_PATH)
					o = p;
			return fail_at(ctx, line_of(ctx, "device", o ? o->name : "driver",
						    line_of(ctx, "device", "driver", 0)),
				       "[device] %s = %s: %s (allowed: a regular EDF, BDF or CSV file)",
				       o ? o->name : "driver", o ? (const char *)&c->dev + o->off : c->driver, why);
		}
	}
	{
		/* Pairs name muscles, which may be listed after [analytics]: resolve them last. */
		char why[160];
		struct emg_config *w = ctx->cfg;
		if (emg_analytics_pairs_parse(w->analytics_pairs, w->muscles, w->analytics.pairs,
					      &w->analytics.npairs, why, sizeof(why)) < 0)
			return fail_at(ctx, line_of(ctx, "analytics", "pairs", ctx->muscles_line),
				       "[analytics] pairs = %s: bad value: %s (allowed: auto, none, or muscle:muscle pairs of [muscles] separated by spaces, at most %d)",
				       w->analytics_pairs, why, EMG_ANALYTICS_MAX_PAIRS);
	}
	return 1;
}

int emg_config_parse(struct emg_config *cfg, const char *name, const char *text, size_t len,
		     char *err, size_t errlen)
{
	struct emg_config tmp;
	struct parse_ctx ctx = { .err = err, .errlen = errlen, .name = name };
	char msg[768] = "";
	int line, r;

	table_ready();
	if (len > EMG_CONFIG_MAX_BYTES) {
		snprintf(err, errlen, "%s: file too large (%zu bytes; allowed: at most %d)", name, len,
			 EMG_CONFIG_MAX_BYTES);
		return -EFBIG;
	}
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "%s: binary data (a NUL byte) in a text config file", name);
		return -EINVAL;
	}
	r = emg_config_copy(&tmp, cfg);
	if (r < 0) {
		snprintf(err, errlen, "%s: out of memory", name);
		return r;
	}
	tmp.ntargets = 0; /* repeatable keys start empty rather than append to the defaults */
	tmp.nallow = 0;
	ctx.cfg = &tmp;
	ctx.err = msg;
	ctx.errlen = sizeof(msg);
	ctx.text = text;
	ctx.left = len;
	line = ini_parse_stream(read_line, &ctx, handler, &ctx);
	if (line == 0 && ctx.fail_line) /* stopped by read_line() at an unknown section */
		line = (int)ctx.fail_line;
	if (line == 0 && ctx.long_line) {
		snprintf(err, errlen, "%s:%u: line too long (allowed: at most %d characters)", name,
			 ctx.long_line, ctx.max_line);
		emg_config_release(&tmp);
		return -EINVAL;
	}
	if (line == 0 && !validate(&ctx))
		line = ctx.validate_line ? (int)ctx.fail_line : -1;
	if (line != 0) {
		if (line > 0 && ctx.fail_line == (unsigned)line)
			snprintf(err, errlen, "%s:%d: %s", name, line, msg);
		else if (line > 0)
			snprintf(err, errlen, "%s:%d: syntax error (allowed: '[section]', 'key = value', '# comment' or a blank line)",
				 name, line);
		else
			snprintf(err, errlen, "%s: %s", name, msg);
		emg_config_release(&tmp);
		return -EINVAL;
	}
	snprintf(tmp.path, sizeof(tmp.path), "%s", name);
	emg_config_release(cfg);
	*cfg = tmp;
	return 0;
}

int emg_config_load(struct emg_config *cfg, const char *path, char *err, size_t errlen)
{
	struct stat st;
	FILE *f;
	char *buf;
	size_t n;
	int r;

	/* O_NONBLOCK: a FIFO (or a device) where the config should be must not
	 * hang start-up or a SIGHUP reload in open(); it is refused below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || !(f = fdopen(fd, "r"))) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_size > EMG_CONFIG_MAX_BYTES) {
		fclose(f);
		snprintf(err, errlen, "%s: file too large (%lld bytes; allowed: at most %d)", path,
			 (long long)st.st_size, EMG_CONFIG_MAX_BYTES);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		r = -errno;
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		free(buf);
		fclose(f);
		return r ? r : -EIO;
	}
	fclose(f);
	r = emg_config_parse(cfg, path, buf, n, err, errlen);
	free(buf);
	return r;
}

void emg_config_device(const struct emg_config *cfg, struct emg_device_config *dev)
{
	*dev = cfg->dev;
	dev->driver = cfg->driver;
	dev->rate = cfg->rate;
	dev->channels = cfg->channels;
	dev->serial = cfg->serial;
	dev->mains_hz = cfg->pipe.filter.mains_hz > 0 ? cfg->pipe.filter.mains_hz : 50;
	dev->muscles = cfg->muscles;
	dev->log = NULL;
	dev->log_ud = NULL;
}

static int hostport_equal(const struct emg_hostport *a, const struct emg_hostport *b)
{
	return a->port == b->port && !strcmp(a->host, b->host);
}

static int key_equal(const struct kdef *k, const struct emg_config *a, const struct emg_config *b)
{
	const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;

	if (k->type == K_DEVOPT)
		return emg_device_option_equal(k->opt, &a->dev, &b->dev);
	switch (k->cmp) {
	case C_MEM:
		return !memcmp(fa, fb, k->size);
	case C_STR:
		return !strcmp(fa, fb);
	case C_HOSTPORT:
		return hostport_equal((const void *)fa, (const void *)fb);
	case C_TARGETS:
		if (a->ntargets != b->ntargets)
			return 0;
		for (unsigned i = 0; i < a->ntargets; i++)
			if (!hostport_equal(&a->targets[i], &b->targets[i]))
				return 0;
		return 1;
	case C_ALLOW:
		if (a->nallow != b->nallow)
			return 0;
		for (unsigned i = 0; i < a->nallow; i++)
			if (a->allow[i].family != b->allow[i].family ||
			    a->allow[i].prefix != b->allow[i].prefix ||
			    memcmp(a->allow[i].addr, b->allow[i].addr, sizeof(a->allow[i].addr)))
				return 0;
		return 1;
	}
	return 0;
}

/* Append "[section] name" to the changed-keys list, "..." once it is full. */
static void note_changed(char *buf, size_t len, size_t *used, const char *section, const char *name)
{
	char item[96];
	size_t n;

	if (!buf || !len || *used >= len)
		return;
	n = (size_t)snprintf(item, sizeof(item), "%s[%s]%s%s", *used ? ", " : "", section,
			     name ? " " : "", name ? name : "");
	if (*used + n + 4 < len) {
		memcpy(buf + *used, item, n + 1);
		*used += n;
	} else {
		snprintf(buf + *used, len - *used, "%s", *used + 4 < len ? "..." : "");
		*used = len;
	}
}

unsigned emg_config_diff(const struct emg_config *a, const struct emg_config *b, char *changed,
			 size_t changedlen)
{
	int synth = !strcmp(a->driver, "synth");
	unsigned effects = 0;
	size_t used = 0;

	table_ready();
	if (changed && changedlen)
		changed[0] = '\0';
	for (size_t i = 0; i < ntable; i++) {
		const struct kdef *k = &table[i];
		unsigned fl = k->flags & ~SYNTH_READS;

		if (key_equal(k, a, b))
			continue;
		if ((k->flags & SYNTH_READS) && synth)
			fl |= EMG_CFG_DEVICE;
		effects |= fl;
		note_changed(changed, changedlen, &used, k->section, k->name);
	}
	/* [muscles] lines are not table keys: a new map is a new pipeline, new
	 * analytics and OSCQuery namespace; more channels than the device opened,
	 * or any change for the synth (it plays each muscle's part), restart it. */
	if (!emg_muscles_equal(a->muscles, b->muscles)) {
		effects |= EMG_CFG_PIPELINE | EMG_CFG_ANALYTICS | EMG_CFG_OSCQUERY_LIVE;
		if (synth ||
		    emg_muscles_channels_needed(a->muscles) != emg_muscles_channels_needed(b->muscles))
			effects |= EMG_CFG_DEVICE;
		note_changed(changed, changedlen, &used, "muscles", NULL);
	}
	return effects;
}

int emg_config_device_changed(const struct emg_config *a, const struct emg_config *b)
{
	return !!(emg_config_diff(a, b, NULL, 0) & EMG_CFG_DEVICE);
}

int emg_config_key_at(size_t i, struct emg_config_key *out)
{
	const struct emg_device_ops *owner = NULL;
	static char names[128];

	table_ready();
	if (i >= ntable)
		return -ENOENT;
	if (!names[0]) /* the same text every time: a race writes the same bytes */
		emg_device_names_text(names, sizeof(names));
	out->section = table[i].section;
	out->name = table[i].name;
	out->allowed = table[i].allowed ? table[i].allowed : names;
	out->effects = table[i].flags & ~SYNTH_READS;
	if (table[i].type == K_DEVOPT)
		emg_device_option_find(table[i].name, &owner);
	out->driver = owner ? owner->name : NULL;
	return 0;
}

void emg_config_effects_text(unsigned mask, char *buf, size_t len)
{
	static const char *const names[] = { "device", "pipeline", "osc-socket", "osc", "oscquery",
					     "oscquery-live", "recording", "analytics", "restart" };
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]) && used < len; i++)
		if (mask & (1u << i))
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", names[i]);
}
