/* SPDX-License-Identifier: MIT */
/*
 * Control (main thread): the OSC control handlers (/emgd/calibrate/...,
 * marker, record, analytics reset), what the engine's outputs feed (OSC
 * publishing, calibration results, firing-order and repetition analytics,
 * recording annotations), status, and the OSC and OSCQuery sockets.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "instance.h"
#include "text.h"

const char *control_state_name(struct daemon *d)
{
	int st = d->eng ? (int)emg_engine_state(d->eng, NULL) : EMG_DEVICE_STREAMING;

	if (st == EMG_DEVICE_WAITING)
		return "waiting-device";
	if (st == EMG_DEVICE_FAILED)
		return "device-failed";
	if (d->calibrating)
		return "calibrating";
	if (d->rec)
		return "recording";
	return "streaming";
}

uint64_t control_overruns(struct daemon *d)
{
	return d->eng ? emg_engine_lost(d->eng) : 0;
}

static void osc_status_cb(void *ud, struct emg_osc_status *st)
{
	struct daemon *d = ud;
	uint64_t ov = control_overruns(d);

	st->state = control_state_name(d);
	st->rate = (int)d->info.rate;
	st->channels = (int)d->info.channels;
	if (d->rec) {
		/* Frames the recorder could not write are losses the user must hear about. */
		struct emg_recorder_stats rs;
		emg_recorder_stats(d->rec, &rs);
		ov += rs.frames_dropped;
	}
	ov += d->rec_frames_lost;
	st->overruns = ov > INT32_MAX ? INT32_MAX : (int)ov;
}

/* ---- control handlers (main thread) ---- */
static int h_cal_rest(void *ud, double seconds, char *err, size_t len)
{
	struct daemon *d = ud;

	if (d->calibrating) {
		snprintf(err, len, "a calibration is already running");
		return -EBUSY;
	}
	if (!(seconds >= 0.5 && seconds <= 120)) {
		snprintf(err, len, "seconds must be 0.5..120");
		return -EINVAL;
	}
	if (!d->eng || emg_engine_calibrate_rest(d->eng, seconds) < 0) {
		snprintf(err, len, "dsp thread busy, try again");
		return -EAGAIN;
	}
	d->calibrating = 1;
	d->calib_deadline_ns = emg_now_ns() + (uint64_t)((seconds + 3.0) * 1e9);
	emg_log(LOG_NOTICE, "calibration: rest for %.1f s, all muscles relaxed", seconds);
	return 0;
}

static int h_cal_mvc(void *ud, const char *muscle, double seconds, char *err, size_t len)
{
	struct daemon *d = ud;
	int i = emg_muscles_find(d->cfg.muscles, muscle);

	if (i < 0) {
		snprintf(err, len, "unknown muscle '%s'", muscle);
		return -ENOENT;
	}
	if (d->calibrating) {
		snprintf(err, len, "a calibration is already running");
		return -EBUSY;
	}
	if (!(seconds >= 0.5 && seconds <= 60)) {
		snprintf(err, len, "seconds must be 0.5..60");
		return -EINVAL;
	}
	if (!d->eng || emg_engine_calibrate_mvc(d->eng, (unsigned)i, seconds) < 0) {
		snprintf(err, len, "dsp thread busy, try again");
		return -EAGAIN;
	}
	d->calibrating = 1;
	d->calib_deadline_ns = emg_now_ns() + (uint64_t)((seconds + 3.0) * 1e9);
	emg_log(LOG_NOTICE, "calibration: MVC of %s for %.1f s", muscle, seconds);
	return 0;
}

static void lat_fill(const struct emg_lat *h, int *count, float ms[4])
{
	static const double q[3] = { 0.5, 0.99, 0.999 };

	*count = h->count > INT32_MAX ? INT32_MAX : (int)h->count;
	for (int i = 0; i < 3; i++)
		ms[i] = (float)(emg_lat_quantile(h, q[i]) / 1e6);
	ms[3] = (float)(h->max / 1e6);
}

static void h_latency(void *ud, struct emg_osc_latency *l)
{
	struct daemon *d = ud;

	lat_fill(&d->lat_event, &l->events, l->event_ms);
	lat_fill(&d->lat_metric, &l->metrics, l->metric_ms);
}

static int h_marker(void *ud, const char *text, char *err, size_t len)
{
	struct daemon *d = ud;
	char clean[LOG_TEXT_MAX + 1];
	size_t used;

	/* Client words in the log: no newline to forge a "<2>" journal entry, no
	 * terminal escapes, one bounded line (the recorder cleans its copy alike). */
	used = emg_text_clean(clean, sizeof(clean), text);
	emg_log(LOG_NOTICE, "marker: %s%s", clean, text[used] ? " [cut]" : "");
	annotate(d, EMG_RECORD_NOW, -1, "%s", text);
	return 0;
}

static int h_rec_start(void *ud, const char *name, char *err, size_t len)
{
	return record_start(ud, name, err, len);
}

static int h_rec_stop(void *ud, char *err, size_t len)
{
	return record_stop(ud, err, len);
}

/* ---- the engine's outputs ---- */
void control_save_calib(struct daemon *d)
{
	int r;

	if (!d->calib_path[0])
		return;
	r = emg_calib_save(d->calib, d->calib_path);
	if (r < 0)
		emg_log(LOG_WARNING, "calibration: cannot save %s: %s (kept in memory only)",
		       d->calib_path, strerror(-r));
}

/* Once per lane: that it has no onset baseline yet (it detects nothing), then its first one. */
static void log_baselines(struct daemon *d, const struct emg_out *o)
{
	for (unsigned i = 0; i < o->nmuscles && i < EMG_MUSCLES_MAX; i++) {
		const struct emg_muscle *m = emg_muscles_get(d->cfg.muscles, i);
		unsigned src = o->m[i].baseline;

		if (src == EMG_BASELINE_NONE && d->baseline_said[i] == 0) {
			emg_log(LOG_INFO, "onset: %s has no baseline yet: no onsets until its first quiet block",
			       m ? m->name : "?");
			d->baseline_said[i] = 1;
		} else if (src != EMG_BASELINE_NONE && d->baseline_said[i] < 2) {
			emg_log(LOG_INFO, "onset: %s has its first baseline (%s), detecting onsets",
			       m ? m->name : "?", src == EMG_BASELINE_REST ? "rest calibration" : "automatic");
			d->baseline_said[i] = 2;
		}
	}
}

static void on_calib_out(struct daemon *d, const struct emg_out *o)
{
	const struct emg_muscle *m = emg_muscles_get(d->cfg.muscles, o->muscle);
	const char *name = m ? m->name : "?";
	int64_t now = (int64_t)time(NULL);

	if (o->calib_kind == EMG_CALIB_REST) {
		if (o->calib_err == 0) {
			emg_calib_set_rest(d->calib, o->muscle, &o->baseline, o->rest_rms, now);
			emg_log(LOG_INFO, "calibration: rest %s: %.2f uV RMS", name, o->rest_rms);
			annotate(d, EMG_RECORD_NOW, -1, "calibration rest %s %.2f uV", name, o->rest_rms);
		} else if (o->calib_err == -EBUSY) {
			char msg[192];

			snprintf(msg, sizeof(msg), "rest %s refused: the muscle was active during the trial; relax it and repeat (previous baseline kept)",
				 name);
			emg_log(LOG_WARNING, "calibration: %s", msg);
			emg_osc_publish_error(d->osc, "/emgd/calibrate/rest", msg); /* the view says why */
		} else {
			emg_log(LOG_WARNING, "calibration: rest %s failed: %s", name,
			       strerror(-o->calib_err));
		}
		emg_osc_publish_calibrated(d->osc, "rest", name, o->rest_rms, o->calib_err == 0);
		if (o->muscle + 1u < emg_muscles_count(d->cfg.muscles))
			return; /* one record per muscle; the last one ends the calibration */
	} else {
		if (o->calib_err == 0) {
			emg_calib_add_mvc(d->calib, o->muscle, o->mvc_rms, now);
			emg_log(LOG_INFO, "calibration: MVC %s: peak %.1f uV RMS (MVC now %.1f uV)", name,
			       o->mvc_rms, emg_calib_get(d->calib, o->muscle)->mvc_rms);
			annotate(d, EMG_RECORD_NOW, -1, "calibration mvc %s %.1f uV", name, o->mvc_rms);
		} else if (o->calib_err == -ERANGE) {
			char msg[192];

			snprintf(msg, sizeof(msg), "mvc %s refused: peak %.1f uV is not clearly above rest (%.1f uV; needs %.0fx): contract the muscle and repeat (previous MVC kept)",
				 name, o->mvc_rms, o->rest_rms, (double)EMG_PIPELINE_MVC_MIN_RATIO);
			emg_log(LOG_WARNING, "calibration: %s", msg);
			emg_osc_publish_error(d->osc, "/emgd/calibrate/mvc", msg);
		} else {
			emg_log(LOG_WARNING, "calibration: MVC %s failed: no signal", name);
		}
		emg_osc_publish_calibrated(d->osc, "mvc", name, o->mvc_rms, o->calib_err == 0);
	}
	d->calibrating = 0;
	control_save_calib(d);
}

/* ---- analytics: firing order and repetitions from the outputs ---- */
static void on_order(void *ud, const struct emg_analytics_order *o)
{
	struct daemon *d = ud;

	emg_osc_publish_order(d->osc, o);
}

static void on_rep(void *ud, const struct emg_analytics_rep *r)
{
	struct daemon *d = ud;
	const struct emg_muscle *m = emg_muscles_get(d->cfg.muscles, r->muscle);

	emg_osc_publish_rep(d->osc, r);
	annotate(d, r->onset_sample, r->duration_s, "%s rep %u peak %.1f %s lag %.0f ms",
		 m ? m->name : "?", r->rep, r->peak, r->calibrated ? "%MVC" : "uV", r->lag_ms);
}

static void analytics_feed(struct daemon *d, const struct emg_out *o)
{
	const struct emg_analytics_sink sink = { d, on_order, on_rep };

	if (d->ana)
		emg_analytics_feed(d->ana, o, &sink);
}

static int h_ana_reset(void *ud, char *err, size_t len)
{
	struct daemon *d = ud;

	if (!d->ana) {
		snprintf(err, len, "not streaming");
		return -EAGAIN;
	}
	emg_analytics_reset(d->ana);
	emg_log(LOG_NOTICE, "analytics: repetition counts reset");
	annotate(d, EMG_RECORD_NOW, -1, "repetition counts reset");
	return 0;
}

static void on_out(void *ud, const struct emg_out *o)
{
	struct daemon *d = ud;

	switch (o->type) {
	case EMG_OUT_METRICS:
		emg_osc_publish_metrics(d->osc, o);
		emg_lat_add(&d->lat_metric, emg_now_ns() - o->arrival_ns);
		log_baselines(d, o);
		d->ticks++;
		mark_ready(d);
		analytics_feed(d, o);
		break;
	case EMG_OUT_ONSET:
	case EMG_OUT_OFFSET:
		emg_osc_publish_event(d->osc, o, emg_now_ns());
		emg_lat_add(&d->lat_event, emg_now_ns() - o->arrival_ns);
		if (d->rec) {
			const struct emg_muscle *m = emg_muscles_get(d->cfg.muscles, o->muscle);
			if (o->type == EMG_OUT_ONSET)
				annotate(d, o->sample, -1, "%s onset", m ? m->name : "?");
			else
				annotate(d, o->sample, -1, "%s offset %.3f s", m ? m->name : "?",
					 o->duration_s);
		}
		analytics_feed(d, o);
		break;
	case EMG_OUT_CALIB:
		on_calib_out(d, o);
		break;
	}
}

/* The outputs after this come from the reload's pipeline: switch the muscle map here. */
static void on_swapped(void *ud)
{
	struct daemon *d = ud;

	if (d->pending_muscles) {
		emg_osc_set_muscles(d->osc, d->pending_muscles);
		if (d->oq)
			emg_oscquery_set_muscles(d->oq, d->pending_muscles);
		emg_muscles_free(d->pending_muscles);
		d->pending_muscles = NULL;
	}
	if (d->ana_pending) {
		/* The new map's outputs start here: so do its counts. */
		emg_analytics_free(d->ana);
		d->ana = d->ana_pending;
		d->ana_pending = NULL;
	}
	/* The old pipeline was just freed.  Its small blocks (filter and
	 * detector state below the mmap threshold) leave holes in the heap that
	 * stay resident; the next pipeline fills some and not others, so
	 * RssAnon crept up over many reloads (issue 16 #12).  Hand the free
	 * pages back now, on the control thread, once per reload. */
	malloc_trim(0);
}

static void on_detached(void *ud, struct emg_recorder *r)
{
	record_detached(ud, r);
}

struct emg_engine_sink control_sink(struct daemon *d)
{
	struct emg_engine_sink s = { .ud = d, .out = on_out, .swapped = on_swapped, .detached = on_detached };

	return s;
}

int control_on_outs(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct daemon *d = ud;

	emg_engine_dispatch(d->eng, 0);
	return 0;
}

int control_on_dev_state(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct daemon *d = ud;
	uint64_t v;
	const char *why = NULL;
	int st = (int)emg_engine_state(d->eng, &why);

	if (read(fd, &v, sizeof(v)) < 0) {
		/* spurious wake-up */
	}
	if (st == d->logged_state)
		return 0;
	d->logged_state = st;
	if (st == EMG_DEVICE_WAITING) {
		emg_log(LOG_WARNING, "device: %s; waiting for it (subscribers stay connected)",
		       why);
		annotate(d, EMG_RECORD_NOW, -1, "device lost: %s", why);
		mark_ready(d); /* serving OSC and waiting is a ready state for systemd */
	} else if (st == EMG_DEVICE_FAILED) {
		emg_log(LOG_ERR, "device: failed: %s", why);
	} else {
		emg_log(LOG_NOTICE, "device: streaming (%s)", why);
		annotate(d, EMG_RECORD_NOW, -1, "device found");
	}
	notify_status(d);
	return 0;
}

static int on_osc(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct daemon *d = ud;

	emg_osc_recv(d->osc, emg_now_ns());
	return 0;
}

void control_rearm(sd_event_source *s, uint64_t usec)
{
	sd_event_source_set_time_relative(s, usec);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int control_on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct daemon *d = ud;
	struct emg_osc_status st;

	emg_osc_expire(d->osc, emg_now_ns());
	if (d->calibrating && emg_now_ns() > d->calib_deadline_ns) {
		/* A result was lost (outputs ring full) or samples stopped:
		 * never leave calibration locked. */
		emg_log(LOG_WARNING, "calibration: no result in time; cancelled, please repeat it");
		d->calibrating = 0;
	}
	{
		uint64_t ov = control_overruns(d);
		if (ov != d->last_overruns) {
			emg_log(LOG_WARNING, "acquisition: %llu frames lost so far",
			       (unsigned long long)ov);
			annotate(d, EMG_RECORD_NOW, -1, "overrun: %llu frames lost",
				 (unsigned long long)(ov - d->last_overruns));
			d->last_overruns = ov;
		}
	}
	{
		/* Metric ticks or events the main loop could not take in time. */
		uint64_t rd = d->eng ? emg_engine_outs_dropped(d->eng) : 0;
		if (rd > d->last_outs_dropped) {
			emg_log(LOG_WARNING, "main loop: %llu outputs (ticks/events) dropped so far; it is too slow for publish_rate",
			       (unsigned long long)rd);
			d->last_outs_dropped = rd;
		}
	}
	record_check(d);
	osc_status_cb(d, &st);
	emg_osc_publish_status(d->osc, &st);
	notify_status(d);
	control_rearm(s, 1000000);
	return 0;
}

int control_bind_osc(struct daemon *d)
{
	int fd = emg_osc_bind(d->osc, &d->cfg.listen);

	if (fd < 0) {
		if (fd == -EADDRINUSE && !d->cfg.listen.port)
			emg_log(LOG_ERR, "osc: cannot listen on %s:auto: every port of %u..%u is taken",
			       d->cfg.listen.host, emg_port_auto(EMG_PORT_AUTO_OSC, 0),
			       emg_port_auto(EMG_PORT_AUTO_OSC, EMG_PORT_AUTO_SLOTS - 1));
		else if (fd == -EADDRINUSE)
			emg_log(LOG_ERR, "osc: cannot listen on %s:%u: the port is taken (another emgd? give each instance its own [osc] listen port, e.g. in emgd@<instance>.conf)",
			       d->cfg.listen.host, d->cfg.listen.port);
		else
			emg_log(LOG_ERR, "osc: cannot listen on %s:%u: %s", d->cfg.listen.host,
			       d->cfg.listen.port, strerror(-fd));
		if (d->osc_src && sd_event_source_get_io_fd(d->osc_src) != emg_osc_fd(d->osc)) {
			/* emg_osc_bind() let go of the previous socket to retry on its
			 * port and had to bind the previous address anew: watch that one */
			d->osc_src = sd_event_source_disable_unref(d->osc_src);
			if (emg_osc_fd(d->osc) >= 0)
				sd_event_add_io(d->ev, &d->osc_src, emg_osc_fd(d->osc), EPOLLIN, on_osc, d);
			else
				emg_log(LOG_ERR, "osc: lost the previous address too; control is unreachable until the next reload");
		}
		return fd;
	}
	d->osc_src = sd_event_source_disable_unref(d->osc_src);
	return sd_event_add_io(d->ev, &d->osc_src, fd, EPOLLIN, on_osc, d);
}

/* ---- OSCQuery (its own HTTP and Avahi threads; main thread calls only) ---- */
static void oq_log(void *ud, int prio, const char *msg)
{
	emg_log(prio, "%s", msg);
}

/* The OSC publisher's copy of every stream packet, for OSCQuery's WebSocket (LISTEN) clients. */
static void web_tap(void *ud, const void *pkt, size_t len)
{
	struct daemon *d = ud;

	emg_oscquery_publish(d->oq, pkt, len);
}

/* /emgd/stats: WebSocket clients now and frames dropped for slow ones. */
static void h_web_stats(void *ud, unsigned *clients, uint64_t *dropped)
{
	struct daemon *d = ud;
	struct emg_oscquery_ws_stats st;

	emg_oscquery_ws_stats(d->oq, &st);
	*clients = st.clients;
	*dropped = st.dropped;
}

/* Control packets from the browser view's WebSocket: through the same path as UDP control. */
static int on_web_control(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct daemon *d = ud;

	(void)s;
	(void)fd;
	(void)revents;
	emg_oscquery_control_run(d->oq, d->osc, emg_now_ns());
	return 0;
}

/* Start, stop or restart the OSCQuery server as [oscquery] says; failures are logged, not fatal. */
void control_oscquery_apply(struct daemon *d, int restart)
{
	struct emg_oscquery_params p;
	char oq_name[128];
	int r;

	if (d->oq && (restart || !d->cfg.oscquery)) {
		d->oq_ctl_src = sd_event_source_disable_unref(d->oq_ctl_src);
		emg_osc_set_tap(d->osc, NULL, NULL);
		emg_oscquery_free(d->oq);
		d->oq = NULL;
		emg_log(LOG_INFO, "oscquery: stopped");
	}
	if (d->oq) { /* same server: it describes the current muscle map and allow list */
		emg_oscquery_set_muscles(d->oq, d->cfg.muscles);
		emg_oscquery_set_allow(d->oq, d->cfg.allow, d->cfg.nallow);
		emg_oscquery_set_www(d->oq, d->cfg.oscquery_www);
		emg_oscquery_set_control(d->oq, d->cfg.web_control, d->cfg.web_token);
	}
	if (!d->cfg.oscquery || d->oq)
		return;
	memset(&p, 0, sizeof(p));
	p.http = d->cfg.oscquery_http;
	p.mdns = d->cfg.mdns;
	p.name = d->cfg.oscquery_name;
	if (!p.name[0] && d->instance) {
		/* Instances on one host need distinct mDNS names: "emgd 1-3 on plinth1". */
		char host[HOST_NAME_MAX + 1] = "";

		gethostname(host, sizeof(host) - 1);
		snprintf(oq_name, sizeof(oq_name), "emgd %s on %s", d->instance, host);
		p.name = oq_name;
	}
	p.osc = d->cfg.listen;
	p.osc.port = (unsigned short)emg_osc_port(d->osc); /* what listen = auto chose */
	p.allow = d->cfg.allow; /* HTTP serves whom OSC control serves */
	p.nallow = d->cfg.nallow;
	p.www = d->cfg.oscquery_www;
	p.control = d->cfg.web_control;
	p.token = d->cfg.web_token;
	p.log = oq_log;
	p.log_ud = d;
	if (p.http.port)
		r = emg_oscquery_new(&d->oq, &p, d->cfg.muscles);
	else /* http = auto: the first free of 9001, 9003, ... (EMG_PORT_AUTO_HTTP) */
		for (unsigned n = 0; (p.http.port = (unsigned short)emg_port_auto(EMG_PORT_AUTO_HTTP, n)); n++)
			if ((r = emg_oscquery_new(&d->oq, &p, d->cfg.muscles)) != -EADDRINUSE)
				break;
	if (r == -EOPNOTSUPP)
		emg_log(LOG_ERR, "oscquery: this emgd was built without libmicrohttpd; [oscquery] is ignored");
	else if (r < 0 && !d->cfg.oscquery_http.port)
		emg_log(LOG_ERR, "oscquery: cannot serve on %s:auto: %s; OSC goes on without it",
		       p.http.host, strerror(-r));
	else if (r < 0)
		emg_log(LOG_ERR, "oscquery: cannot serve on %s:%u: %s; OSC goes on without it",
		       p.http.host, p.http.port, strerror(-r));
	else
		emg_log(LOG_NOTICE, "oscquery: namespace on http://%s%s%s:%u/", strchr(p.http.host, ':') ? "[" : "",
		       p.http.host, strchr(p.http.host, ':') ? "]" : "", emg_oscquery_port(d->oq));
	if (r == 0 && p.www[0]) {
		char index[PATH_MAX + 16];

		/* say so now rather than leave a clinician with a 404 on the tablet */
		snprintf(index, sizeof(index), "%s/index.html", p.www);
		if (access(index, R_OK) < 0)
			emg_log(LOG_WARNING, "oscquery: browser view: %s: %s; /ui/ answers 404 ([oscquery] www)",
			       index, strerror(errno));
		else
			emg_log(LOG_NOTICE, "oscquery: browser view on http://%s%s%s:%u/ui/", strchr(p.http.host, ':') ? "[" : "",
			       p.http.host, strchr(p.http.host, ':') ? "]" : "", emg_oscquery_port(d->oq));
	}
	if (r == 0 && sd_event_add_io(d->ev, &d->oq_ctl_src, emg_oscquery_control_fd(d->oq), EPOLLIN,
				      on_web_control, d) < 0)
		emg_log(LOG_WARNING, "oscquery: cannot watch for control from the browser view; it stays read-only");
	/* without a server, publishing skips its work when no UDP subscriber listens */
	emg_osc_set_tap(d->osc, d->oq ? web_tap : NULL, d);
	if (r == 0 && p.mdns && !strcmp(d->cfg.listen.host, "127.0.0.1"))
		emg_log(LOG_WARNING, "oscquery: mdns = yes but OSC listens on 127.0.0.1 only: other hosts will find emgd but cannot reach it ([osc] listen, allow)");
}


void control_handlers(struct daemon *d, struct emg_osc_handlers *oh)
{
	memset(oh, 0, sizeof(*oh));
	oh->ud = d;
	oh->calibrate_rest = h_cal_rest;
	oh->calibrate_mvc = h_cal_mvc;
	oh->marker = h_marker;
	oh->status = osc_status_cb;
	oh->latency = h_latency;
	oh->record_start = h_rec_start;
	oh->record_stop = h_rec_stop;
	oh->analytics_reset = h_ana_reset;
	oh->web_stats = h_web_stats;
}

/* Say where we listen (for emgctl --instance and listen = auto): in systemd's
 * RuntimeDirectory=, else beside calibration.ini; a failure costs only that. */
void control_write_ports(struct daemon *d)
{
	const char *env = getenv("RUNTIME_DIRECTORY");
	char dir[PATH_MAX];
	struct emg_hostport osc = d->cfg.listen, http;
	int r;

	if (env && *env)
		snprintf(dir, sizeof(dir), "%s", env);
	else if (d->calib_path[0])
		snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(d->calib_path, '/') - d->calib_path), d->calib_path);
	else
		return;
	osc.port = (unsigned short)emg_osc_port(d->osc);
	if (d->oq) {
		http = d->cfg.oscquery_http;
		http.port = (unsigned short)emg_oscquery_port(d->oq);
	}
	r = emg_instance_write_ports(dir, &osc, d->oq ? &http : NULL);
	if (r < 0)
		emg_log(LOG_WARNING, "instance: cannot write %s/%s: %s (emgctl --instance will not find this emgd)",
		       dir, EMG_INSTANCE_PORTS, strerror(-r));
	else
		if (snprintf(d->ports_path, sizeof(d->ports_path), "%s/%s", dir, EMG_INSTANCE_PORTS) >= (int)sizeof(d->ports_path))
			d->ports_path[0] = '\0';
}
