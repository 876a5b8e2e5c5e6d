/* SPDX-License-Identifier: MIT */
/*
 * emg_config: the daemon's settings, parsed from INI with inih.
 *
 * emg_config_init() is the built-in configuration (synth amplifier, the six
 * default hip muscles, OSC on loopback), so emgd runs with no file at all;
 * conf/emgd.conf documents the same values.  Parsing is strict: an unknown
 * section or key, or a value out of range, is an error that names the file,
 * line, section, key and value and says what is allowed - a typo in a
 * clinic's config must never silently fall back to a default.
 */
#ifndef EMG_CONFIG_H
#define EMG_CONFIG_H

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analytics.h"
#include "device.h"
#include "muscles.h"
#include "netaddr.h"
#include "pipeline.h"

#define EMG_CONFIG_MAX_TARGETS EMG_NET_MAX_TARGETS
#define EMG_CONFIG_MAX_ALLOW EMG_NET_MAX_ALLOW
#define EMG_CONFIG_MAX_BYTES (1 << 20)

enum emg_record_mode { EMG_RECORD_OFF = 0, EMG_RECORD_AUTO };

struct emg_config {
	char path[PATH_MAX]; /* file it was read from, "" for built-in */

	/* [device]: the keys every driver has, then the drivers' own options
	 * (dev.file, dev.seed, dev.gain, ...: their option tables, device.h) */
	char driver[16];
	double rate;
	unsigned channels;
	char serial[64];
	struct emg_device_config dev; /* driver options only: see emg_config_device() */

	/* [dsp] */
	struct emg_pipeline_config pipe;
	char ecg_muscles[512]; /* "all" or muscle names as written; resolved into pipe.ecg.skip */

	/* [osc] */
	struct emg_hostport listen;
	struct emg_hostport targets[EMG_CONFIG_MAX_TARGETS];
	unsigned ntargets;
	unsigned max_subscribers;
	unsigned max_subscribers_per_host; /* loopback counts as one host */
	unsigned default_lease_s;
	unsigned max_lease_s;
	double rate_limit;     /* control packets per second per source address */
	unsigned rate_burst;   /* bucket depth */
	struct emg_cidr allow[EMG_CONFIG_MAX_ALLOW];
	unsigned nallow;

	/* [daemon] */
	char state_dir[PATH_MAX];
	char recordings_dir[PATH_MAX];
	enum emg_record_mode record;
	bool record_edf;       /* record_format = edf (16-bit) instead of bdf (24-bit) */
	bool record_filtered;  /* add band-passed channels to recordings */
	bool record_envelopes; /* add RMS envelope channels to recordings */
	bool mlock;
	int rt_priority; /* SCHED_FIFO priority of acquisition/DSP threads, 0 = off */

	/* [muscles] */
	struct emg_muscles *muscles;

	/* [analytics]: pairs are resolved against [muscles] once the whole file is read */
	struct emg_analytics_params analytics;
	char analytics_pairs[512]; /* "auto", "none" or "a:b c:d ..." as written */

	/* [oscquery] */
	bool oscquery;                  /* serve the OSCQuery namespace over HTTP */
	struct emg_hostport oscquery_http;
	bool mdns;                      /* advertise _oscjson._tcp and _osc._udp with Avahi */
	char oscquery_name[64];         /* "" = "emgd on <hostname>" */
	char oscquery_www[PATH_MAX];    /* the browser view's files, served at /ui/; "" = none */

	/* [web]: the browser view's WebSocket (OSCQuery server) */
	bool web_control;               /* WebSocket clients may send control messages */
	char web_token[129];            /* "" = none; else required for control from non-loopback hosts */
};

/* Fill cfg with the built-in defaults (allocates the default muscle map). */
int emg_config_init(struct emg_config *cfg);

/* Release what a config owns. */
void emg_config_release(struct emg_config *cfg);

/* Deep copy src into an uninitialised dst. */
int emg_config_copy(struct emg_config *dst, const struct emg_config *src);

/* Parse path over the defaults into cfg; on error cfg is untouched and err holds one line. */
int emg_config_load(struct emg_config *cfg, const char *path, char *err, size_t errlen);

/* Parse an in-memory INI text (name is used in messages); same contract as emg_config_load. */
int emg_config_parse(struct emg_config *cfg, const char *name, const char *text, size_t len,
		     char *err, size_t errlen);

/* Fill a device config that points into cfg (valid while cfg lives). */
void emg_config_device(const struct emg_config *cfg, struct emg_device_config *dev);

/*
 * What a reload must do when a key changes: each key of the config table
 * carries these flags, and emg_config_diff() ORs the flags of the keys that
 * differ between two configs.
 */
enum emg_config_effect {
	EMG_CFG_DEVICE = 1 << 0,        /* restart the device (and the engine around it) */
	EMG_CFG_PIPELINE = 1 << 1,      /* new DSP pipeline, swapped in between two blocks */
	EMG_CFG_OSC_SOCKET = 1 << 2,    /* rebind the OSC socket */
	EMG_CFG_OSC = 1 << 3,           /* new subscriber, lease, rate-limit, allow or target settings */
	EMG_CFG_OSCQUERY = 1 << 4,      /* restart the OSCQuery HTTP server and its mDNS records */
	EMG_CFG_OSCQUERY_LIVE = 1 << 5, /* updated on the running OSCQuery server */
	EMG_CFG_RECORDING = 1 << 6,     /* recordings: used by the next one (record = auto: now) */
	EMG_CFG_ANALYTICS = 1 << 7,     /* analytics parameters, kept counts */
	EMG_CFG_RESTART = 1 << 8,       /* read at start-up only: takes effect when emgd restarts */
};

/* One key of the config table, for documentation and drift tests. */
struct emg_config_key {
	const char *section;
	const char *name;
	const char *allowed;  /* as config errors quote it */
	unsigned effects;     /* enum emg_config_effect */
	const char *driver;   /* a driver option: the first driver that declares it; else NULL */
};

/* Key i of the config table (the [muscles] lines are not keys); -ENOENT past the end. */
int emg_config_key_at(size_t i, struct emg_config_key *out);

/* Comma-separated names of the effects in mask ("device, pipeline"). */
void emg_config_effects_text(unsigned mask, char *buf, size_t len);

/* The effects of switching from a to b (OR of the differing keys' flags,
 * [muscles] included); changed, if not NULL, lists those keys as
 * "[device] snr_db, [osc] listen" (cut with "..." when it does not fit). */
unsigned emg_config_diff(const struct emg_config *a, const struct emg_config *b, char *changed,
			 size_t changedlen);

/* 1 if the two configs need a device restart to switch between them. */
int emg_config_device_changed(const struct emg_config *a, const struct emg_config *b);

#endif
