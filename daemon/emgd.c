/* SPDX-License-Identifier: MIT */
/*
 * emgd: real-time surface-EMG acquisition daemon.
 *
 * Threads (ARCHITECTURE.md has the picture):
 *   device thread  - owned by the driver; decodes and pushes frames into `frames`
 *   dsp thread     - drains `frames`, runs the pipeline, pushes records into `recs`
 *   main thread    - one sd-event loop: OSC socket, records, signals, timers,
 *                    sd_notify; the only thread that calls liblo, logs or allocates
 *                    after start-up
 * Commands go main -> dsp through `cmds`; all three rings are SPSC and
 * wake their consumer with an eventfd on the empty -> non-empty transition.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "analytics.h"
#include "calib.h"
#include "config.h"
#include "device.h"
#include "emgd-config.h"
#include "instance.h"
#include "latency.h"
#include "log.h"
#include "osc.h"
#include "oscquery.h"
#include "pipeline.h"
#include "record.h"
#include "ring.h"
#include "text.h"

#define FRAME_SLOTS 8192   /* at most: ~4 s at 2 kHz, ~0.8 s at 10 kHz ... */
#define FRAME_RING_BYTES (4u << 20) /* ... and about this much (256 ch: 2048 slots, 0.2 s at 10 kHz) */
#define REC_SLOTS 1024     /* at most ... */
#define REC_RING_BYTES (1u << 20)   /* ... and about this much, but ... */
#define REC_SLOTS_MIN 256  /* ... at least this many (a burst of events at once) */
#define CMD_SLOTS 16
#define DSP_BLOCK 256      /* frames handed to the pipeline at once */
#define REC_SWAPPED 100    /* daemon-private record: the dsp thread switched pipelines */
#define REC_DETACHED 101   /* daemon-private record: the dsp thread let go of the recorder */

/* ---- logging: lib/log.h, stderr with <N> prefixes that journald turns into priorities ---- */

/* Longest client-supplied text (a marker) in one log line, bytes. */
#define LOG_TEXT_MAX 200

/* Drivers log through this: from open() on the main thread, and for plug events
 * from their own thread (never from the sample path). stdio locks per call. */
static void driver_log(void *ud, int prio, const char *msg)
{
	emg_log(prio, "device: %s", msg);
}

/* ---- shared state ---- */

struct frame_hdr {
	uint64_t seq;
	uint64_t t_ns;
	uint32_t lost;
	uint32_t pad;
};

enum cmd_type { CMD_STOP = 1, CMD_CAL_REST, CMD_CAL_MVC, CMD_SWAP, CMD_REC_ATTACH, CMD_REC_DETACH };

struct cmd {
	int type;
	unsigned muscle;
	double seconds;
	struct emg_pipeline *pipe;
	struct emg_recorder *rec;
};

struct daemon {
	struct emg_config cfg;
	const char *config_path; /* NULL: built-in defaults */
	const char *driver_override;
	const char *listen_override;
	const char *serial_override;
	const char *instance; /* --instance: emgd@<instance>.service */
	char dropin_path[PATH_MAX]; /* its emgd@<instance>.conf, read after the config file */
	char ports_path[PATH_MAX];  /* where we listen, for emgctl --instance (lib/instance.h) */

	sd_event *ev;
	sd_event_source *recs_src, *state_src, *osc_src, *tick_src, *wd_src;

	struct emg_device *dev;
	struct emg_device_info info;
	struct emg_ring *frames, *recs, *cmds;
	size_t frame_size;
	pthread_t dsp;
	int dsp_running;
	int state_efd;

	/* Written by the device thread, read by main. */
	_Atomic uint64_t frames_in;
	_Atomic uint64_t device_lost;
	_Atomic int dev_state;
	const char *_Atomic dev_why;

	/* DSP thread only (main hands pipelines over through `cmds`). */
	struct emg_pipeline *dsp_pipe;
	uint64_t fault_stall_ms, fault_stall_after_ns; /* EMGD_FAULT_DSP_STALL_MS, see fault_init() */
	struct emg_recorder *dsp_rec;
	float *block;
	uint64_t dsp_seen_overruns;
	_Atomic uint64_t recs_dropped; /* records the main loop was too slow to take (dsp writes) */

	/* Main thread. */
	struct emg_pipeline *pipe;              /* the pipeline last handed to the dsp thread */
	struct emg_pipeline *pipe_pending_free; /* the one it replaces, until REC_SWAPPED */
	struct emg_muscles *pending_muscles;
	struct emg_calib *calib;
	struct emg_osc *osc;
	struct emg_analytics *ana;         /* firing order and repetitions, from the records */
	struct emg_analytics *ana_pending; /* for the new muscle map, from REC_SWAPPED on */
	struct emg_oscquery *oq;           /* OSCQuery HTTP + mDNS, NULL when off */
	sd_event_source *oq_ctl_src;       /* control packets from its WebSocket clients */
	char calib_path[PATH_MAX];
	int calibrating;
	uint64_t calib_deadline_ns; /* give up waiting for results after this */
	struct emg_lat lat_event;   /* block arrival -> sendto of onset/offset events */
	struct emg_lat lat_metric;  /* block arrival -> sendto of the metric bundle */
	int ready;
	int stopping;
	int logged_state;
	uint64_t wd_usec;
	uint64_t wd_last_frames;
	uint64_t ticks;
	uint64_t last_overruns;
	uint64_t last_recs_dropped;
	struct emg_out *last_metrics;

	/* Recording (main thread). */
	struct emg_recorder *rec;          /* attached to the dsp thread */
	struct emg_recorder *rec_closing;  /* detach sent, waiting for REC_DETACHED */
	struct emg_recorder *rec_parked;   /* across a device restart: no dsp thread owns it */
	struct emg_device_info rec_info;   /* the device the running recording was opened for */
	pthread_t closer;                  /* closes a finished recording off the main loop */
	int closer_running;
	uint64_t rec_seen_overruns;
	char rec_lost[PATH_MAX + 96];      /* why the last recording stopped on its own, for record/stop */
	uint64_t recordings_lost;          /* recordings whose file was deleted while being written */
	uint64_t rec_frames_lost;          /* frames ended recordings could not keep (stay in the status count) */
	char rec_dir[PATH_MAX];
	uint8_t baseline_said[EMG_MUSCLES_MAX]; /* per lane: 1 = "no baseline yet" logged, 2 = its first baseline */
};

static struct daemon D;

/* ---- device thread ---- */

static void on_frames(void *ud, const float *frames, unsigned n, uint64_t first_seq, uint32_t lost,
		      uint64_t t_ns)
{
	struct daemon *d = ud;
	size_t bytes = d->info.channels * sizeof(float);

	for (unsigned i = 0; i < n; i++) {
		struct frame_hdr *h = emg_ring_reserve(d->frames);
		if (!h)
			continue; /* counted by the ring as an overrun */
		h->seq = first_seq + i;
		h->t_ns = t_ns;
		h->lost = i == 0 ? lost : 0;
		memcpy(h + 1, frames + (size_t)i * d->info.channels, bytes);
		emg_ring_commit(d->frames);
	}
	if (lost)
		atomic_fetch_add_explicit(&d->device_lost, lost, memory_order_relaxed);
	atomic_fetch_add_explicit(&d->frames_in, n, memory_order_relaxed);
}

static void on_state(void *ud, enum emg_device_state st, const char *why)
{
	struct daemon *d = ud;
	uint64_t one = 1;

	atomic_store(&d->dev_why, why);
	atomic_store(&d->dev_state, (int)st);
	if (write(d->state_efd, &one, sizeof(one)) < 0) {
		/* counter already non-zero: main will look anyway */
	}
}

/* ---- dsp thread ---- */

static void on_record(void *ud, const struct emg_out *rec)
{
	struct daemon *d = ud;
	/* Slots fit the largest record; copy only what this one has. */
	size_t n = sizeof(*rec) + (rec->type == EMG_OUT_METRICS ? rec->nmuscles * sizeof(rec->m[0]) : 0);
	void *slot = emg_ring_reserve(d->recs);

	if (!slot) {
		atomic_fetch_add_explicit(&d->recs_dropped, 1, memory_order_relaxed);
		return;
	}
	memcpy(slot, rec, n);
	emg_ring_commit(d->recs);
}

static void dsp_flush(struct daemon *d, unsigned n, uint64_t first_seq, uint64_t t_ns)
{
	if (!n)
		return;
	/* Raw frames to the recorder first: a copy into its ring, never blocks. */
	if (d->dsp_rec)
		emg_recorder_write(d->dsp_rec, d->block, n, first_seq);
	emg_pipeline_process(d->dsp_pipe, d->block, n, first_seq, t_ns, on_record, d);
}

static void dsp_drain_frames(struct daemon *d)
{
	const struct frame_hdr *h;
	unsigned n = 0;
	uint64_t first = 0, t_ns = 0;
	uint64_t ov = emg_ring_overruns(d->frames);

	/* Ring overruns (the dsp thread fell behind) count as dropped samples. */
	if (ov != d->dsp_seen_overruns) {
		emg_pipeline_add_dropped(d->dsp_pipe, ov - d->dsp_seen_overruns);
		d->dsp_seen_overruns = ov;
	}
	while ((h = emg_ring_peek(d->frames))) {
		/* A gap in sequence numbers ends the block so sample indices stay exact. */
		if (n && (h->seq != first + n || n == DSP_BLOCK)) {
			dsp_flush(d, n, first, t_ns);
			n = 0;
		}
		if (h->lost)
			emg_pipeline_add_dropped(d->dsp_pipe, h->lost);
		if (n == 0)
			first = h->seq;
		memcpy(d->block + (size_t)n * d->info.channels, h + 1,
		       d->info.channels * sizeof(float));
		t_ns = h->t_ns;
		n++;
		emg_ring_release(d->frames);
	}
	dsp_flush(d, n, first, t_ns);
}

/* A daemon-private record the main loop must see; waits for room rather than drop it. */
static void push_control_rec(struct daemon *d, int type)
{
	struct emg_out r = { .type = (uint16_t)type };
	void *slot;

	while (!(slot = emg_ring_reserve(d->recs)))
		sched_yield();
	memcpy(slot, &r, sizeof(r));
	emg_ring_commit(d->recs);
}

/* Returns 0 to keep running, 1 to stop. */
static int dsp_commands(struct daemon *d)
{
	struct cmd c;

	while (emg_ring_pop(d->cmds, &c) == 0) {
		switch (c.type) {
		case CMD_STOP:
			return 1;
		case CMD_CAL_REST:
			emg_pipeline_calibrate_rest(d->dsp_pipe, c.seconds);
			break;
		case CMD_CAL_MVC:
			emg_pipeline_calibrate_mvc(d->dsp_pipe, c.muscle, c.seconds);
			break;
		case CMD_SWAP:
			emg_pipeline_handover(c.pipe, d->dsp_pipe);
			d->dsp_pipe = c.pipe;
			/* Pushed before any record of the new pipeline: the main
			 * loop switches its muscle map exactly here. */
			push_control_rec(d, REC_SWAPPED);
			break;
		case CMD_REC_ATTACH:
			d->dsp_rec = c.rec;
			break;
		case CMD_REC_DETACH:
			d->dsp_rec = NULL;
			/* After this record the dsp thread never touches the recorder again. */
			push_control_rec(d, REC_DETACHED);
			break;
		}
	}
	return 0;
}

/*
 * Fault injection, a test aid (tests/integration/test_faults.py), off unless the
 * environment asks for it at start-up:
 *   EMGD_FAULT_DSP_STALL_MS=N[@S]  the dsp thread sleeps once, for N ms, S seconds
 *                                  (default 2) after it started: a stalled consumer.
 */
static void fault_init(struct daemon *d)
{
	const char *v = getenv("EMGD_FAULT_DSP_STALL_MS");
	double after = 2;

	if (!v || !*v)
		return;
	d->fault_stall_ms = strtoull(v, NULL, 10);
	if (strchr(v, '@'))
		after = strtod(strchr(v, '@') + 1, NULL);
	d->fault_stall_after_ns = (uint64_t)(after * 1e9);
	emg_log(LOG_WARNING, "fault injection: the dsp thread will stall for %llu ms after %g s",
	       (unsigned long long)d->fault_stall_ms, after);
}

static void fault_dsp_stall(struct daemon *d, uint64_t started_ns)
{
	struct timespec ts;

	if (!d->fault_stall_ms || emg_now_ns() - started_ns < d->fault_stall_after_ns)
		return;
	ts.tv_sec = (time_t)(d->fault_stall_ms / 1000);
	ts.tv_nsec = (long)(d->fault_stall_ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	d->fault_stall_ms = 0; /* once per process */
}

static void *dsp_main(void *arg)
{
	struct daemon *d = arg;
	struct pollfd pfd[2] = {
		{ .fd = emg_ring_fd(d->frames), .events = POLLIN },
		{ .fd = emg_ring_fd(d->cmds), .events = POLLIN },
	};
	uint64_t started_ns = emg_now_ns();

	for (;;) {
		/* Blocking here is the point: the dsp thread sleeps until the
		 * device thread's push wakes it. */
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		emg_ring_ack(d->cmds);
		if (dsp_commands(d))
			break;
		emg_ring_ack(d->frames);
		dsp_drain_frames(d);
		fault_dsp_stall(d, started_ns);
	}
	return NULL;
}

static int send_cmd(struct daemon *d, const struct cmd *c)
{
	return emg_ring_push(d->cmds, c);
}

/* ---- status ---- */

static const char *state_name(struct daemon *d)
{
	int st = atomic_load(&d->dev_state);

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

static uint64_t total_overruns(struct daemon *d)
{
	return emg_ring_overruns(d->frames) + atomic_load(&d->device_lost);
}

static void osc_status_cb(void *ud, struct emg_osc_status *st)
{
	struct daemon *d = ud;
	uint64_t ov = total_overruns(d);

	st->state = state_name(d);
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

static void notify_status(struct daemon *d)
{
	/* Not sd_notifyf(): its vasprintf() mallocs 100 bytes and shrinks them with
	 * realloc() every second; the split-off 32- and 80-byte pieces sat in
	 * fastbins that never coalesce, and the heap top crept up ~7 kB a minute
	 * (issue 16 #12).  A stack buffer allocates nothing. */
	char st[256];

	snprintf(st, sizeof(st), "STATUS=%s: %s %g Hz x %u ch, %u subscriber%s, %llu overruns",
		 state_name(d), d->info.driver, d->info.rate, d->info.channels,
		 emg_osc_subscribers(d->osc), emg_osc_subscribers(d->osc) == 1 ? "" : "s",
		 (unsigned long long)total_overruns(d));
	sd_notify(0, st);
}

/* ---- recording (main thread) ---- */

/* Annotate the running recording, if any; `sample` may be EMG_RECORD_NOW. */
static void annotate(struct daemon *d, uint64_t sample, double duration_s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void annotate(struct daemon *d, uint64_t sample, double duration_s, const char *fmt, ...)
{
	char text[EMG_RECORD_TEXT_MAX + 1];
	va_list ap;

	if (!d->rec)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	emg_recorder_annotate(d->rec, sample, duration_s, text);
}

static void *closer_main(void *arg)
{
	struct emg_recorder *r = arg;
	struct emg_recorder_stats st;
	char path[PATH_MAX];
	int e;

	/* close() may wait on a stalled disk: that is why it runs here, not in the main loop. */
	snprintf(path, sizeof(path), "%s", emg_recorder_path(r));
	emg_recorder_stats(r, &st);
	e = emg_recorder_close(r);
	if (e == -EMG_RECORD_EDELETED)
		emg_log(LOG_ERR, "recording: %s was deleted while being written (its directory removed?): "
		       "%.1f s of data are gone", path, st.seconds);
	else if (e < 0)
		emg_log(LOG_ERR, "recording: %s closed after an error: %s", path, strerror(-e));
	else
		emg_log(LOG_NOTICE, "recording: %s closed (%.1f s, %llu frames dropped)", path,
		       st.seconds, (unsigned long long)st.frames_dropped);
	return NULL;
}

static void join_closer(struct daemon *d)
{
	if (d->closer_running) {
		pthread_join(d->closer, NULL);
		d->closer_running = 0;
	}
}

static void close_async(struct daemon *d, struct emg_recorder *r)
{
	join_closer(d);
	if (pthread_create(&d->closer, NULL, closer_main, r) == 0)
		d->closer_running = 1;
	else
		closer_main(r);
}

static int send_cmd(struct daemon *d, const struct cmd *c);

static int record_start(struct daemon *d, const char *name, char *err, size_t len)
{
	struct emg_record_params rp = { 0 };
	struct cmd c = { .type = CMD_REC_ATTACH };
	char path[PATH_MAX];
	int r;

	if (d->rec || d->rec_closing) {
		snprintf(err, len, "already recording to %s",
			 emg_recorder_path(d->rec ? d->rec : d->rec_closing));
		return -EBUSY;
	}
	if (mkdir(d->rec_dir, 0750) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, len, "cannot create %s: %s", d->rec_dir, strerror(errno));
		return r;
	}
	r = emg_record_name(path, sizeof(path), d->rec_dir, name && *name ? name : NULL,
			    d->info.serial, d->cfg.record_edf, time(NULL));
	/* the name is the client's text: cleaned and cut on a character boundary (emg_text_clean) */
	char shown[64] = "";
	if (name && name[emg_text_clean(shown, sizeof(shown) - 3, name)])
		strcat(shown, "...");
	if (r == -EINVAL) {
		snprintf(err, len, "bad recording name '%s' (allowed: up to 100 ASCII letters, digits, '-', '_', '.', not starting with '-' or '.')",
			 shown);
		return r;
	}
	if (r == -EXDEV) {
		snprintf(err, len, "bad recording name '%s': record_format is %s, so the name may end in .%s or nothing",
			 shown, d->cfg.record_edf ? "edf" : "bdf", d->cfg.record_edf ? "edf" : "bdf");
		return r;
	}
	if (r == -EEXIST) {
		snprintf(err, len, "a recording named '%s' already exists", shown);
		return r;
	}
	if (r < 0) {
		snprintf(err, len, "%s", strerror(-r));
		return r;
	}
	rp.path = path;
	rp.edf = d->cfg.record_edf;
	rp.dev = &d->info;
	rp.muscles = d->cfg.muscles;
	rp.filter = &d->cfg.pipe.filter;
	rp.rms_window_ms = d->cfg.pipe.rms_window_ms;
	rp.filtered = d->cfg.record_filtered;
	rp.envelopes = d->cfg.record_envelopes;
	r = emg_recorder_open(&c.rec, &rp);
	if (r < 0) {
		snprintf(err, len, "cannot record to %s: %s", path, strerror(-r));
		return r;
	}
	if (send_cmd(d, &c) < 0) {
		emg_recorder_close(c.rec);
		snprintf(err, len, "dsp thread busy, try again");
		return -EAGAIN;
	}
	d->rec = c.rec;
	d->rec_info = d->info;
	d->rec_seen_overruns = 0;
	d->rec_lost[0] = '\0';
	emg_log(LOG_NOTICE, "recording: %s (%s)", path, d->cfg.record_edf ? "EDF+" : "BDF+");
	return 0;
}

static int record_stop(struct daemon *d, char *err, size_t len)
{
	struct cmd c = { .type = CMD_REC_DETACH };

	struct emg_recorder_stats st;

	if (!d->rec) {
		/* a recording that stopped on its own (deleted file, full disk) says so once */
		snprintf(err, len, "not recording%s%s", d->rec_lost[0] ? ": " : "", d->rec_lost);
		d->rec_lost[0] = '\0';
		return -ENOENT;
	}
	if (send_cmd(d, &c) < 0) {
		snprintf(err, len, "dsp thread busy, try again");
		return -EAGAIN;
	}
	annotate(d, EMG_RECORD_NOW, -1, "recording stopped");
	emg_recorder_stats(d->rec, &st);
	d->rec_frames_lost += st.frames_dropped;
	d->rec_closing = d->rec;
	d->rec = NULL;
	if (st.error == -EMG_RECORD_EDELETED) {
		/* stopped, but the client must not believe its data is safe */
		d->recordings_lost++;
		emg_log(LOG_ERR, "recording: %s was deleted while being written; %llu recording%s lost since start",
		       emg_recorder_path(d->rec_closing), (unsigned long long)d->recordings_lost,
		       d->recordings_lost == 1 ? "" : "s");
		snprintf(err, len, "%s was deleted while being written (its directory removed?): the recording is lost",
			 emg_recorder_path(d->rec_closing));
		d->rec_lost[0] = '\0';
		return -EMG_RECORD_EDELETED;
	}
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

/* Once a second: surface recorder losses and failures in the log and the file. */
static void record_check(struct daemon *d)
{
	struct emg_recorder_stats st;
	char err[128];

	if (!d->rec)
		return;
	emg_recorder_stats(d->rec, &st);
	if (st.frames_dropped != d->rec_seen_overruns) {
		emg_log(LOG_WARNING, "recording: %llu frames could not be written so far",
		       (unsigned long long)st.frames_dropped);
		d->rec_seen_overruns = st.frames_dropped;
	}
	if (st.state == EMG_RECORD_FAILED) {
		const char *why = st.error == -EMG_RECORD_EDELETED
					  ? "the file was deleted (its directory removed?); the recorded data is gone"
					  : strerror(-st.error);
		char lost[sizeof(d->rec_lost)];

		emg_log(LOG_ERR, "recording: %s stopped: %s; acquisition and OSC continue",
		       emg_recorder_path(d->rec), why);
		snprintf(lost, sizeof(lost), "%s stopped: %s", emg_recorder_path(d->rec), why);
		record_stop(d, err, sizeof(err));
		/* for the client's next /emgd/record/stop, which would otherwise get a bare "not recording" */
		memcpy(d->rec_lost, lost, sizeof(lost));
	}
}

static void repair_cb(void *ud, const char *path, int result, const char *msg)
{
	if (result < 0)
		emg_log(LOG_WARNING, "recording: %s: cannot repair: %s", path, msg);
	else
		emg_log(LOG_NOTICE, "recording: %s: repaired after an unclean stop: %s", path, msg);
}

/* ---- control handlers (main thread) ---- */

static int h_cal_rest(void *ud, double seconds, char *err, size_t len)
{
	struct daemon *d = ud;
	struct cmd c = { .type = CMD_CAL_REST, .seconds = seconds };

	if (d->calibrating) {
		snprintf(err, len, "a calibration is already running");
		return -EBUSY;
	}
	if (!(seconds >= 0.5 && seconds <= 120)) {
		snprintf(err, len, "seconds must be 0.5..120");
		return -EINVAL;
	}
	if (send_cmd(d, &c) < 0) {
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
	struct cmd c = { .type = CMD_CAL_MVC, .seconds = seconds };

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
	c.muscle = (unsigned)i;
	if (send_cmd(d, &c) < 0) {
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

/* ---- records from the dsp thread (main thread) ---- */

static void save_calib(struct daemon *d)
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
static void log_baselines(struct daemon *d, const struct emg_out *rec)
{
	for (unsigned i = 0; i < rec->nmuscles && i < EMG_MUSCLES_MAX; i++) {
		const struct emg_muscle *m = emg_muscles_get(d->cfg.muscles, i);
		unsigned src = rec->m[i].baseline;

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

static void handle_calib_rec(struct daemon *d, const struct emg_out *rec)
{
	const struct emg_muscle *m = emg_muscles_get(d->cfg.muscles, rec->muscle);
	const char *name = m ? m->name : "?";
	int64_t now = (int64_t)time(NULL);

	if (rec->calib_kind == EMG_CALIB_REST) {
		if (rec->calib_err == 0) {
			emg_calib_set_rest(d->calib, rec->muscle, &rec->baseline, rec->rest_rms, now);
			emg_log(LOG_INFO, "calibration: rest %s: %.2f uV RMS", name, rec->rest_rms);
			annotate(d, EMG_RECORD_NOW, -1, "calibration rest %s %.2f uV", name, rec->rest_rms);
		} else if (rec->calib_err == -EBUSY) {
			char msg[192];

			snprintf(msg, sizeof(msg), "rest %s refused: the muscle was active during the trial; relax it and repeat (previous baseline kept)",
				 name);
			emg_log(LOG_WARNING, "calibration: %s", msg);
			emg_osc_publish_error(d->osc, "/emgd/calibrate/rest", msg); /* the view says why */
		} else {
			emg_log(LOG_WARNING, "calibration: rest %s failed: %s", name,
			       strerror(-rec->calib_err));
		}
		emg_osc_publish_calibrated(d->osc, "rest", name, rec->rest_rms, rec->calib_err == 0);
		if (rec->muscle + 1u < emg_muscles_count(d->cfg.muscles))
			return; /* one record per muscle; the last one ends the calibration */
	} else {
		if (rec->calib_err == 0) {
			emg_calib_add_mvc(d->calib, rec->muscle, rec->mvc_rms, now);
			emg_log(LOG_INFO, "calibration: MVC %s: peak %.1f uV RMS (MVC now %.1f uV)", name,
			       rec->mvc_rms, emg_calib_get(d->calib, rec->muscle)->mvc_rms);
			annotate(d, EMG_RECORD_NOW, -1, "calibration mvc %s %.1f uV", name, rec->mvc_rms);
		} else if (rec->calib_err == -ERANGE) {
			char msg[192];

			snprintf(msg, sizeof(msg), "mvc %s refused: peak %.1f uV is not clearly above rest (%.1f uV; needs %.0fx): contract the muscle and repeat (previous MVC kept)",
				 name, rec->mvc_rms, rec->rest_rms, (double)EMG_PIPELINE_MVC_MIN_RATIO);
			emg_log(LOG_WARNING, "calibration: %s", msg);
			emg_osc_publish_error(d->osc, "/emgd/calibrate/mvc", msg);
		} else {
			emg_log(LOG_WARNING, "calibration: MVC %s failed: no signal", name);
		}
		emg_osc_publish_calibrated(d->osc, "mvc", name, rec->mvc_rms, rec->calib_err == 0);
	}
	d->calibrating = 0;
	save_calib(d);
}

static void mark_ready(struct daemon *d)
{
	if (d->ready)
		return;
	d->ready = 1;
	sd_notify(0, "READY=1");
	notify_status(d);
	emg_log(LOG_NOTICE, "%s %s: streaming %g Hz x %u channels, %u muscles, OSC on %s:%u",
	       d->info.driver, d->info.model, d->info.rate, d->info.channels,
	       emg_muscles_count(d->cfg.muscles), d->cfg.listen.host, emg_osc_port(d->osc));
}

/* ---- analytics (main thread): firing order and repetitions from the records ---- */

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

static void analytics_feed(struct daemon *d, const struct emg_out *rec)
{
	const struct emg_analytics_sink sink = { d, on_order, on_rep };

	if (d->ana)
		emg_analytics_feed(d->ana, rec, &sink);
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

static int on_recs(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct daemon *d = ud;
	const struct emg_out *rec;

	emg_ring_ack(d->recs);
	while ((rec = emg_ring_peek(d->recs))) {
		switch (rec->type) {
		case EMG_OUT_METRICS:
			emg_osc_publish_metrics(d->osc, rec);
			emg_lat_add(&d->lat_metric, emg_now_ns() - rec->arrival_ns);
			memcpy(d->last_metrics, rec, emg_ring_slot_size(d->recs));
			log_baselines(d, rec);
			d->ticks++;
			mark_ready(d);
			analytics_feed(d, rec);
			break;
		case EMG_OUT_ONSET:
		case EMG_OUT_OFFSET:
			emg_osc_publish_event(d->osc, rec, emg_now_ns());
			emg_lat_add(&d->lat_event, emg_now_ns() - rec->arrival_ns);
			if (d->rec) {
				const struct emg_muscle *m = emg_muscles_get(d->cfg.muscles, rec->muscle);
				if (rec->type == EMG_OUT_ONSET)
					annotate(d, rec->sample, -1, "%s onset", m ? m->name : "?");
				else
					annotate(d, rec->sample, -1, "%s offset %.3f s", m ? m->name : "?",
						 rec->duration_s);
			}
			analytics_feed(d, rec);
			break;
		case EMG_OUT_CALIB:
			handle_calib_rec(d, rec);
			break;
		case REC_DETACHED:
			if (d->rec_closing) {
				close_async(d, d->rec_closing);
				d->rec_closing = NULL;
			}
			break;
		case REC_SWAPPED:
			/* Old pipeline is no longer touched by the dsp thread. */
			emg_pipeline_free(d->pipe_pending_free);
			d->pipe_pending_free = NULL;
			if (d->pending_muscles) {
				emg_osc_set_muscles(d->osc, d->pending_muscles);
				if (d->oq)
					emg_oscquery_set_muscles(d->oq, d->pending_muscles);
				emg_muscles_free(d->pending_muscles);
				d->pending_muscles = NULL;
			}
			if (d->ana_pending) {
				/* The new map's records start here: so do its counts. */
				emg_analytics_free(d->ana);
				d->ana = d->ana_pending;
				d->ana_pending = NULL;
			}
			break;
		}
		emg_ring_release(d->recs);
	}
	return 0;
}

static int on_dev_state(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct daemon *d = ud;
	uint64_t v;
	int st = atomic_load(&d->dev_state);

	if (read(fd, &v, sizeof(v)) < 0) {
		/* spurious wake-up */
	}
	if (st == d->logged_state)
		return 0;
	d->logged_state = st;
	if (st == EMG_DEVICE_WAITING) {
		emg_log(LOG_WARNING, "device: %s; waiting for it (subscribers stay connected)",
		       atomic_load(&d->dev_why));
		annotate(d, EMG_RECORD_NOW, -1, "device lost: %s", atomic_load(&d->dev_why));
		mark_ready(d); /* serving OSC and waiting is a ready state for systemd */
	} else if (st == EMG_DEVICE_FAILED) {
		emg_log(LOG_ERR, "device: failed: %s", atomic_load(&d->dev_why));
	} else {
		emg_log(LOG_NOTICE, "device: streaming (%s)", atomic_load(&d->dev_why));
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

static void rearm(sd_event_source *s, uint64_t usec)
{
	sd_event_source_set_time_relative(s, usec);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct daemon *d = ud;
	struct emg_osc_status st;

	emg_osc_expire(d->osc, emg_now_ns());
	if (d->calibrating && emg_now_ns() > d->calib_deadline_ns) {
		/* A result record was lost (records ring full) or samples stopped:
		 * never leave calibration locked. */
		emg_log(LOG_WARNING, "calibration: no result in time; cancelled, please repeat it");
		d->calibrating = 0;
	}
	{
		uint64_t ov = total_overruns(d);
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
		uint64_t rd = atomic_load_explicit(&d->recs_dropped, memory_order_relaxed);
		if (rd != d->last_recs_dropped) {
			emg_log(LOG_WARNING, "main loop: %llu records (ticks/events) dropped so far; it is too slow for publish_rate",
			       (unsigned long long)rd);
			d->last_recs_dropped = rd;
		}
	}
	record_check(d);
	osc_status_cb(d, &st);
	emg_osc_publish_status(d->osc, &st);
	notify_status(d);
	rearm(s, 1000000);
	return 0;
}

/* Ping the watchdog only while samples arrive (a hung USB stack must trip it)
 * or while we are knowingly waiting for a device. */
static int on_watchdog(sd_event_source *s, uint64_t usec, void *ud)
{
	struct daemon *d = ud;
	uint64_t n = atomic_load_explicit(&d->frames_in, memory_order_relaxed);

	if (n != d->wd_last_frames || atomic_load(&d->dev_state) == EMG_DEVICE_WAITING)
		sd_notify(0, "WATCHDOG=1");
	else
		emg_log(LOG_WARNING, "watchdog: no samples for %.1f s, not pinging",
		       (double)d->wd_usec / 2e6);
	d->wd_last_frames = n;
	rearm(s, d->wd_usec / 2);
	return 0;
}

/* ---- set-up and tear-down ---- */

static void osc_params(const struct emg_config *c, struct emg_osc_params *p)
{
	p->max_subscribers = c->max_subscribers;
	p->max_per_host = c->max_subscribers_per_host;
	p->default_lease_s = c->default_lease_s;
	p->max_lease_s = c->max_lease_s;
	p->rate_limit = c->rate_limit;
	p->rate_burst = c->rate_burst;
	p->allow = c->allow;
	p->nallow = c->nallow;
}

/* --instance NAME (emgd@NAME.service): [device] serial NAME, emgd@NAME.conf beside the
 * config file on top, and (started by hand, without systemd's StateDirectory=) state and
 * recordings in <dir>@NAME unless the drop-in names them (lib/instance.h). */
static int load_instance_config(struct daemon *d, struct emg_config *cfg)
{
	char err[1024];
	int r;

	if (!d->dropin_path[0]) {
		r = emg_instance_dropin(d->dropin_path, sizeof(d->dropin_path), d->config_path, d->instance);
		if (r == -EINVAL)
			emg_log(LOG_ERR, "--instance %s: bad name (allowed: a serial number or USB port path, up to %zu characters, no '/', not starting with '.')",
			       d->instance, sizeof(cfg->serial) - 1);
		else if (r < 0)
			emg_log(LOG_ERR, "--instance %s: path of its config file too long", d->instance);
		if (r < 0)
			return r;
	}
	r = emg_instance_apply(cfg, d->instance, d->dropin_path, !getenv("STATE_DIRECTORY"), err, sizeof(err));
	if (r < 0)
		emg_log(LOG_ERR, "%s", err);
	else if (r > 0)
		emg_log(LOG_INFO, "config: instance %s: read %s on top", d->instance, d->dropin_path);
	return r < 0 ? r : 0;
}

static int load_config(struct daemon *d, struct emg_config *cfg)
{
	char err[1024];
	int r = emg_config_init(cfg);

	if (r < 0)
		return r;
	if (d->config_path) {
		r = emg_config_load(cfg, d->config_path, err, sizeof(err));
		if (r < 0) {
			emg_log(LOG_ERR, "%s", err);
			emg_config_release(cfg);
			return r;
		}
	}
	if (d->instance && (r = load_instance_config(d, cfg)) < 0) {
		emg_config_release(cfg);
		return r;
	}
	if (d->driver_override) {
		if (!emg_device_find(d->driver_override)) {
			char names[128] = "";
			size_t used = 0;
			for (const char *const *n = emg_device_names(); *n && used < sizeof(names); n++)
				used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
							 used ? ", " : "", *n);
			emg_log(LOG_ERR, "--device %s: unknown driver (allowed: %s)", d->driver_override, names);
			emg_config_release(cfg);
			return -EINVAL;
		}
		snprintf(cfg->driver, sizeof(cfg->driver), "%s", d->driver_override);
	}
	if (d->serial_override) {
		if (strlen(d->serial_override) >= sizeof(cfg->serial)) {
			emg_log(LOG_ERR, "--serial %s: too long (allowed: up to %zu characters)",
			       d->serial_override, sizeof(cfg->serial) - 1);
			emg_config_release(cfg);
			return -EINVAL;
		}
		snprintf(cfg->serial, sizeof(cfg->serial), "%s", d->serial_override);
	}
	if (d->listen_override && emg_hostport_parse(d->listen_override, &cfg->listen) < 0) {
		emg_log(LOG_ERR, "--listen %s: bad value (allowed: host:port with a numeric address)",
		       d->listen_override);
		emg_config_release(cfg);
		return -EINVAL;
	}
	return 0;
}

/* Recordings go to [daemon] recordings_dir, or under systemd's StateDirectory= by default. */
static void setup_recordings_dir(struct daemon *d)
{
	const char *env = getenv("STATE_DIRECTORY");
	int n;

	if (env && *env && !strcmp(d->cfg.recordings_dir, "/var/lib/emgd/recordings"))
		n = snprintf(d->rec_dir, sizeof(d->rec_dir), "%s/recordings", env);
	else
		n = snprintf(d->rec_dir, sizeof(d->rec_dir), "%s", d->cfg.recordings_dir);
	if (n >= (int)sizeof(d->rec_dir))
		d->rec_dir[0] = '\0';
	if (d->rec_dir[0] && access(d->rec_dir, F_OK) == 0)
		emg_record_repair_dir(d->rec_dir, repair_cb, d);
}

/* record = auto: record whenever streaming. */
static void record_auto(struct daemon *d)
{
	char err[256];

	if (d->cfg.record == EMG_RECORD_AUTO && !d->rec && !d->rec_closing &&
	    record_start(d, NULL, err, sizeof(err)) < 0)
		emg_log(LOG_ERR, "recording: record = auto, but %s", err);
}

static void setup_state_dir(struct daemon *d)
{
	const char *dir = d->cfg.state_dir;
	const char *env = getenv("STATE_DIRECTORY");
	char why[PATH_MAX + 128];
	unsigned line = 0;
	int r;

	/* systemd's StateDirectory= wins over the built-in default, not over an explicit setting. */
	if (env && *env && !strcmp(dir, "/var/lib/emgd"))
		dir = env;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		emg_log(LOG_WARNING, "state: cannot create %s: %s; calibrations will not persist", dir,
		       strerror(errno));
		d->calib_path[0] = '\0';
		return;
	}
	if (strlen(dir) + sizeof("/calibration.ini") > sizeof(d->calib_path)) {
		emg_log(LOG_WARNING, "state: %s: path too long; calibrations will not persist", dir);
		d->calib_path[0] = '\0';
		return;
	}
	strcpy(d->calib_path, dir);
	strcat(d->calib_path, "/calibration.ini");
	r = emg_calib_load_msg(d->calib, d->calib_path, &line, why, sizeof(why));
	if (r == 0)
		emg_log(LOG_NOTICE, "calibration: loaded %s", d->calib_path); /* which one, in the journal */
	else if (r == -EBADMSG)
		emg_log(LOG_WARNING, "calibration: %s:%u: unreadable line; starting uncalibrated",
		       d->calib_path, line);
	else if (r != -ENOENT)
		emg_log(LOG_WARNING, "%s; starting uncalibrated", why);
}

static int build_pipeline(struct daemon *d, const struct emg_config *cfg, struct emg_pipeline **out)
{
	struct emg_pipeline_config pc = cfg->pipe;
	char desc[128];
	int r;

	if (pc.publish_rate > d->info.rate)
		pc.publish_rate = d->info.rate;
	r = emg_pipeline_new(out, &pc, &d->info, cfg->muscles, d->calib);
	if (r < 0) {
		emg_log(LOG_ERR, "dsp: cannot build the pipeline for %g Hz x %u channels: %s",
		       d->info.rate, d->info.channels, strerror(-r));
		return r;
	}
	emg_pipeline_describe(*out, desc, sizeof(desc));
	emg_log(LOG_INFO, "dsp: %s, RMS %g ms, onset %s (k=%g, window %g ms), publish %g Hz", desc,
	       pc.rms_window_ms, emg_onset_method_name(pc.onset.method), pc.onset.k,
	       pc.onset.window_ms, pc.publish_rate);
	return 0;
}

static void set_rt(pthread_t t, int prio, const char *what)
{
	struct sched_param sp = { .sched_priority = prio };
	int r;

	if (prio <= 0)
		return;
	r = pthread_setschedparam(t, SCHED_FIFO, &sp);
	if (r)
		emg_log(LOG_INFO, "%s thread: no real-time priority (%s); running best-effort", what,
		       strerror(r));
}

/*
 * Ring sizes.  A record slot holds the configured muscles' entries (not
 * EMG_MUSCLES_MAX: 256 of them would make a 4 MB ring for 6 muscles); a
 * reload that adds muscles beyond that restarts the device.  Both rings are
 * capped in bytes so 256 channels at 10 kHz stay a few MB.
 */
static size_t rec_slot_size(const struct emg_muscles *m)
{
	return sizeof(struct emg_out) + emg_muscles_count(m) * sizeof(struct emg_out_muscle);
}

/* Largest power of two <= bytes / slot, within [lo, hi] (both powers of two). */
static uint32_t ring_slots(size_t slot, size_t bytes, uint32_t lo, uint32_t hi)
{
	uint32_t n = hi;

	while (n > lo && (size_t)n * slot > bytes)
		n /= 2;
	return n;
}

/* Open the device, make the rings, start dsp and device threads. */
static int start_engine(struct daemon *d)
{
	struct emg_device_config dc;
	struct emg_device_callbacks cb = { .data = on_frames, .state = on_state, .ud = d };
	int r;

	emg_config_device(&d->cfg, &dc);
	dc.log = driver_log;
	dc.log_ud = d;
	r = emg_device_open(&d->dev, &dc);
	if (r < 0) {
		/* the replay driver has logged why (and a CSV's line): "Invalid argument" would only mislead */
		if (!strcmp(d->cfg.driver, "replay") && d->cfg.dev.file[0])
			emg_log(LOG_ERR, "device replay: cannot play %s (reason above)", d->cfg.dev.file);
		else
			emg_log_errno(LOG_ERR, r, "device %s: cannot open", d->cfg.driver);
		return r;
	}
	emg_device_info(d->dev, &d->info);
	if (d->info.rate < 1000)
		emg_log(LOG_WARNING, "device: %g Hz cannot capture the full sEMG band (20-450 Hz needs >= 1 kHz); low-pass clamped to %g Hz",
		       d->info.rate, 0.45 * d->info.rate);
	r = build_pipeline(d, &d->cfg, &d->pipe);
	if (r < 0)
		return r;
	r = emg_analytics_new(&d->ana, &d->cfg.analytics, d->cfg.muscles, d->info.rate);
	if (r < 0)
		return emg_log_errno(LOG_ERR, r, "analytics");
	d->frame_size = sizeof(struct frame_hdr) + d->info.channels * sizeof(float);
	d->block = malloc((size_t)DSP_BLOCK * d->info.channels * sizeof(float));
	if (!d->block)
		return -ENOMEM;
	if ((r = emg_ring_new(&d->frames, ring_slots(d->frame_size, FRAME_RING_BYTES, 256, FRAME_SLOTS),
			      d->frame_size, EMG_RING_EVENTFD)) < 0 ||
	    (r = emg_ring_new(&d->recs,
			      ring_slots(rec_slot_size(d->cfg.muscles), REC_RING_BYTES, REC_SLOTS_MIN, REC_SLOTS),
			      rec_slot_size(d->cfg.muscles), EMG_RING_EVENTFD)) < 0 ||
	    (r = emg_ring_new(&d->cmds, CMD_SLOTS, sizeof(struct cmd), EMG_RING_EVENTFD)) < 0)
		return r;
	d->last_metrics = calloc(1, emg_ring_slot_size(d->recs));
	if (!d->last_metrics)
		return -ENOMEM;
	d->dsp_seen_overruns = 0;
	d->dsp_pipe = d->pipe;
	d->dsp_rec = NULL; /* a recording is attached by command only (record_start, record_resume) */
	r = pthread_create(&d->dsp, NULL, dsp_main, d);
	if (r)
		return -r;
	pthread_setname_np(d->dsp, "emgd-dsp"); /* top -H, and tests/integration/noalloc.c */
	d->dsp_running = 1;
	set_rt(d->dsp, d->cfg.rt_priority, "dsp");
	r = sd_event_add_io(d->ev, &d->recs_src, emg_ring_fd(d->recs), EPOLLIN, on_recs, d);
	if (r < 0)
		return r;
	atomic_store(&d->dev_state, EMG_DEVICE_STREAMING);
	r = emg_device_start(d->dev, &cb);
	if (r < 0)
		return emg_log_errno(LOG_ERR, r, "device %s: cannot start", d->info.driver);
	return 0;
}

/*
 * keep_rec: a reload restarts the device; the running recording is parked
 * (no thread writes to it) and record_resume() hands it to the new dsp
 * thread, so a lab session is not cut by changing a [device] key.
 */
static void stop_engine(struct daemon *d, int keep_rec)
{
	struct cmd stop = { .type = CMD_STOP };

	if (d->dev) {
		emg_device_stop(d->dev);
		emg_device_close(d->dev);
		d->dev = NULL;
	}
	if (d->dsp_running) {
		while (send_cmd(d, &stop) < 0)
			sched_yield();
		pthread_join(d->dsp, NULL);
		d->dsp_running = 0;
	}
	/* The dsp thread is gone, and with it the only user of dsp_rec: a new dsp
	 * thread must never inherit a recorder that is closed below (issue 16). */
	d->dsp_rec = NULL;
	if (d->recs_src) {
		/* Deliver what the dsp thread produced last (events, calibrations). */
		on_recs(d->recs_src, -1, 0, d);
		d->recs_src = sd_event_source_disable_unref(d->recs_src);
	}
	/* The dsp thread is gone: recordings can be closed right here. */
	join_closer(d);
	if (d->rec_closing)
		closer_main(d->rec_closing);
	if (d->rec && keep_rec && !d->stopping) {
		d->rec_parked = d->rec;
	} else if (d->rec) {
		annotate(d, EMG_RECORD_NOW, -1, "recording stopped: emgd %s", d->stopping ? "stopped" : "restarted the device");
		closer_main(d->rec);
	}
	if (d->rec_parked && (!keep_rec || d->stopping)) {
		/* A restart that never got its device back: close what was parked. */
		emg_recorder_annotate(d->rec_parked, EMG_RECORD_NOW, -1, "recording stopped: emgd stopped");
		closer_main(d->rec_parked);
		d->rec_parked = NULL;
	}
	d->rec = d->rec_closing = NULL;
	emg_pipeline_free(d->pipe);
	emg_pipeline_free(d->pipe_pending_free);
	d->pipe = d->pipe_pending_free = NULL;
	emg_ring_free(d->frames);
	emg_ring_free(d->recs);
	emg_ring_free(d->cmds);
	d->frames = d->recs = d->cmds = NULL;
	free(d->block);
	free(d->last_metrics);
	d->block = NULL;
	d->last_metrics = NULL;
	emg_analytics_free(d->ana);
	emg_analytics_free(d->ana_pending);
	d->ana = d->ana_pending = NULL;
}

static int bind_osc(struct daemon *d)
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
static void oscquery_apply(struct daemon *d, int restart)
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

/* ---- reload ---- */

/* The new device delivers the same signals as the one the recording was opened for. */
static int same_signals(const struct emg_device_info *a, const struct emg_device_info *b)
{
	return a->rate == b->rate && a->channels == b->channels && a->phys_min_uv == b->phys_min_uv &&
	       a->phys_max_uv == b->phys_max_uv && !strcmp(a->driver, b->driver) &&
	       !strcmp(a->serial, b->serial);
}

/*
 * After a device restart: a lab user expects the recording to go on.  Same
 * signals: the same file continues (the recorder annotates the sample-index
 * discontinuity); a different rate, channel count or amplifier cannot share
 * a header, so that file is closed with an annotation and the recording
 * continues in a new file, both logged.
 */
static void record_resume(struct daemon *d)
{
	struct emg_recorder *r = d->rec_parked;
	struct cmd c = { .type = CMD_REC_ATTACH, .rec = r };
	char err[256];

	if (!r)
		return;
	d->rec_parked = NULL;
	if (same_signals(&d->rec_info, &d->info) && send_cmd(d, &c) == 0) {
		d->rec = r;
		annotate(d, EMG_RECORD_NOW, -1, "device restarted by a reload");
		emg_log(LOG_NOTICE, "recording: %s continues after the device restart", emg_recorder_path(r));
		return;
	}
	emg_recorder_annotate(r, EMG_RECORD_NOW, -1, "recording stopped: device restarted");
	emg_log(LOG_WARNING, "recording: the device now delivers %g Hz x %u ch %s (was %g Hz x %u ch %s): %s is closed",
	       d->info.rate, d->info.channels, d->info.driver, d->rec_info.rate, d->rec_info.channels,
	       d->rec_info.driver, emg_recorder_path(r));
	close_async(d, r);
	if (record_start(d, NULL, err, sizeof(err)) < 0)
		emg_log(LOG_ERR, "recording: cannot continue in a new file: %s", err);
	else
		emg_log(LOG_NOTICE, "recording: continues in %s", emg_recorder_path(d->rec));
}

/* Say where we listen (for emgctl --instance and listen = auto): in systemd's
 * RuntimeDirectory=, else beside calibration.ini; a failure costs only that. */
static void write_ports(struct daemon *d)
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

static void reload(struct daemon *d)
{
	struct emg_config n;
	struct emg_calib *nc;
	struct emg_osc_params op;
	struct emg_hostport old_listen;
	int listen_changed, oq_changed, was_auto, r;
	unsigned effects;
	char msg[PATH_MAX + 80], changed[256], what[128];

	/* a stack buffer, not sd_notifyf(): see notify_status() */
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		 (unsigned long long)(emg_now_ns() / 1000), d->config_path ? d->config_path : "");
	sd_notify(0, msg);
	if (load_config(d, &n) < 0) {
		emg_log(LOG_ERR, "reload: refused; still running the previous configuration");
		goto done;
	}
	r = emg_calib_new(&nc, n.muscles);
	if (r < 0) {
		emg_config_release(&n);
		goto done;
	}
	emg_calib_merge(nc, d->calib);
	emg_calib_free(d->calib);
	d->calib = nc;
	/* what to redo follows from the config table's flags of the keys that changed */
	effects = emg_config_diff(&d->cfg, &n, changed, sizeof(changed));
	emg_config_effects_text(effects, what, sizeof(what));
	emg_log(LOG_INFO, "reload: changed: %s (%s)", changed[0] ? changed : "nothing", what[0] ? what : "no effect");
	if (effects & EMG_CFG_RESTART)
		emg_log(LOG_WARNING, "reload: some of %s take effect only when emgd restarts (emgd.conf(5))", changed);
	listen_changed = !!(effects & EMG_CFG_OSC_SOCKET);
	oq_changed = !!(effects & EMG_CFG_OSCQUERY);
	old_listen = d->cfg.listen;
	was_auto = d->cfg.record == EMG_RECORD_AUTO;

	if ((effects & EMG_CFG_DEVICE) || !d->recs ||
	    rec_slot_size(n.muscles) > emg_ring_slot_size(d->recs)) {
		/* A different amplifier or rate, or more muscles than a record slot
		 * holds: restarting the device is unavoidable. */
		emg_log(LOG_NOTICE, "reload: %s, restarting the device",
			(effects & EMG_CFG_DEVICE) ? "device settings changed" : "more muscles than before");
		stop_engine(d, 1);
		emg_config_release(&d->cfg);
		d->cfg = n;
		d->calibrating = 0;
		emg_osc_set_muscles(d->osc, d->cfg.muscles);
		if (start_engine(d) < 0) {
			emg_log(LOG_ERR, "reload: the new device failed to start; exiting for a restart");
			sd_event_exit(d->ev, EXIT_FAILURE);
			return;
		}
		record_resume(d);
	} else {
		/* Same device: build the new pipeline here and let the dsp thread
		 * switch to it between two blocks, so no sample is lost. */
		struct emg_pipeline *np;
		struct cmd c = { .type = CMD_SWAP };

		if (build_pipeline(d, &n, &np) < 0) {
			emg_log(LOG_ERR, "reload: refused; still running the previous configuration");
			emg_config_release(&n);
			goto done;
		}
		while (d->pipe_pending_free) {
			/* A previous swap (SIGHUP storm) is still in flight: wait for
			 * the dsp thread's REC_SWAPPED, which it sends within a block. */
			struct pollfd pfd = { .fd = emg_ring_fd(d->recs), .events = POLLIN };
			poll(&pfd, 1, 100);
			on_recs(d->recs_src, -1, 0, d);
		}
		c.pipe = np;
		emg_muscles_dup(n.muscles, &d->pending_muscles);
		if (emg_muscles_equal(n.muscles, d->cfg.muscles)) {
			/* Same muscles: new windows and pairs, the counts go on. */
			emg_analytics_set_params(d->ana, &n.analytics);
		} else if (emg_analytics_new(&d->ana_pending, &n.analytics, n.muscles, d->info.rate) < 0) {
			emg_log(LOG_WARNING, "reload: analytics keep the previous muscle map (out of memory)");
		}
		d->pipe_pending_free = d->pipe;
		d->pipe = np;
		while (send_cmd(d, &c) < 0)
			sched_yield();
		emg_config_release(&d->cfg);
		d->cfg = n;
		d->calibrating = 0;
	}
	osc_params(&d->cfg, &op);
	emg_osc_set_params(d->osc, &op);
	emg_osc_set_targets(d->osc, d->cfg.targets, d->cfg.ntargets);
	if (listen_changed && bind_osc(d) < 0) {
		/* The old socket still serves: keep saying where we really listen. */
		emg_log(LOG_WARNING, "reload: still listening on the previous address");
		d->cfg.listen = old_listen;
	}
	oscquery_apply(d, oq_changed);
	write_ports(d);
	save_calib(d);
	emg_log(LOG_NOTICE, "reload: applied %s", d->config_path ? d->config_path : "built-in defaults");
	annotate(d, EMG_RECORD_NOW, -1, "config reloaded");
	setup_recordings_dir(d);
	if (d->cfg.record == EMG_RECORD_OFF && d->rec && was_auto) {
		char err[64];
		record_stop(d, err, sizeof(err));
	}
	record_auto(d);
done:
	sd_notify(0, "READY=1");
	notify_status(d);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct daemon *d = ud;

	if (si->ssi_signo == SIGHUP) {
		reload(d);
		return 0;
	}
	emg_log(LOG_NOTICE, "%s: shutting down", strsignal((int)si->ssi_signo));
	d->stopping = 1;
	sd_notify(0, "STOPPING=1");
	sd_event_exit(d->ev, 0);
	return 0;
}

/*
 * Drop what a running emgd does not need, once it is set up.  Under systemd the
 * unit already gives it nothing (DynamicUser, CapabilityBoundingSet=,
 * NoNewPrivileges=); started by hand as root, it keeps only the capabilities
 * a reload may still use - binding a port below 1024, real-time priority and
 * locked memory for a restarted device - and drops every other one from its
 * effective, permitted, inheritable, ambient and bounding sets.  In every case
 * no_new_privs: nothing it could ever execute gains privileges.
 */
static void drop_privileges(void)
{
	static const int keep[] = { CAP_NET_BIND_SERVICE, CAP_SYS_NICE, CAP_IPC_LOCK };
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2], n[2];

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		emg_log(LOG_WARNING, "privileges: cannot set no_new_privs: %s", strerror(errno));
	memset(c, 0, sizeof(c));
	if (syscall(SYS_capget, &h, c) < 0 || !(c[0].permitted | c[1].permitted))
		return; /* nothing to drop */
	memset(n, 0, sizeof(n));
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		uint32_t bit = 1u << (keep[i] & 31);
		n[keep[i] >> 5].permitted |= c[keep[i] >> 5].permitted & bit;
		n[keep[i] >> 5].effective |= c[keep[i] >> 5].permitted & bit;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (n[cap >> 5].permitted & (1u << (cap & 31)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM)
			break;
	}
	if (syscall(SYS_capset, &h, n) < 0)
		emg_log(LOG_WARNING, "privileges: cannot drop capabilities: %s", strerror(errno));
	else
		emg_log(LOG_INFO, "privileges: all capabilities dropped but net_bind_service, sys_nice and ipc_lock");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: emgd [OPTIONS]\n"
		"Real-time surface-EMG acquisition daemon: filters, RMS envelopes, onsets and %%MVC over OSC.\n\n"
		"  -c, --config FILE      read FILE instead of the built-in defaults\n"
		"                         (packaged default: %s/emgd.conf)\n"
		"      --check-config     validate the configuration and exit (status 1 on error)\n"
		"  -d, --device DRIVER    override [device] driver (below)\n"
		"  -l, --listen HOST:PORT override [osc] listen\n"
		"  -s, --serial SERIAL    override [device] serial\n"
		"  -i, --instance NAME    one of many on a host (emgd@NAME.service): [device] serial\n"
		"                         NAME, and emgd@NAME.conf next to the config file, if it\n"
		"                         exists, read on top of it (its own [osc] listen port)\n"
		"  -f, --foreground       accepted for init scripts; emgd never forks\n"
		"  -v, --verbose          more log output (repeat for debug)\n"
		"  -q, --quiet            warnings and errors only\n"
		"  -V, --version          print the version\n"
		"  -h, --help             this help\n\n"
		"Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT stop.\n"
		"See emgd(8), emgd.conf(5), emgctl(1).\n\n"
		"Drivers ([device] driver; their keys in emgd.conf(5)):\n",
		EMGD_SYSCONFDIR);
	/* from the driver registry, so a new driver is listed without touching this */
	for (const struct emg_device_ops *const *drv = emg_device_drivers(); *drv; drv++)
		fprintf(f, "  %-9s%s\n", (*drv)->name, (*drv)->help);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "device", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "serial", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon *d = &D;
	struct emg_osc_handlers oh = {
		.ud = d,
		.calibrate_rest = h_cal_rest,
		.calibrate_mvc = h_cal_mvc,
		.marker = h_marker,
		.status = osc_status_cb,
		.latency = h_latency,
		.record_start = h_rec_start,
		.record_stop = h_rec_stop,
		.analytics_reset = h_ana_reset,
		.web_stats = h_web_stats,
	};
	struct emg_osc_params op;
	int check = 0, c, r, ret = EXIT_FAILURE;
	sigset_t ss;

	int log_level = LOG_NOTICE;

	while ((c = getopt_long(argc, argv, "c:d:l:s:i:fvqVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d->config_path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'd':
			d->driver_override = optarg;
			break;
		case 'l':
			d->listen_override = optarg;
			break;
		case 's':
			d->serial_override = optarg;
			break;
		case 'i':
			d->instance = optarg;
			break;
		case 'f':
			break;
		case 'v':
			log_level++;
			break;
		case 'q':
			log_level = LOG_WARNING;
			break;
		case 'V':
			printf("emgd %s\n", EMGD_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "emgd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* journald reads <N> prefixes; a terminal gets plain lines. */
	emg_log_setup(log_level, getenv("JOURNAL_STREAM") != NULL || !isatty(STDERR_FILENO));

	if (load_config(d, &d->cfg) < 0)
		return EXIT_FAILURE;
	if (check) {
		int dropin = d->instance && access(d->dropin_path, F_OK) == 0;

		char port[8] = "auto";

		if (d->cfg.listen.port)
			snprintf(port, sizeof(port), "%u", d->cfg.listen.port);
		printf("%s%s%s: ok (%s, %u muscles, OSC %s:%s%s%s)\n",
		       d->config_path ? d->config_path : "built-in defaults", dropin ? " + " : "",
		       dropin ? d->dropin_path : "", d->cfg.driver,
		       emg_muscles_count(d->cfg.muscles), d->cfg.listen.host, port,
		       d->cfg.serial[0] ? ", serial " : "", d->cfg.serial);
		emg_config_release(&d->cfg);
		return EXIT_SUCCESS;
	}

	/* Signals are handled by sd-event through a signalfd; block them before
	 * any thread starts so no thread takes them asynchronously. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Threads (dsp, the driver's, the recorder's) get 1 MB stacks instead of
	 * RLIMIT_STACK's usual 8 MB: with mlockall every stack page is resident. */
	{
		pthread_attr_t ta;
		if (pthread_attr_init(&ta) == 0) {
			if (pthread_attr_setstacksize(&ta, 1u << 20) == 0)
				pthread_setattr_default_np(&ta);
			pthread_attr_destroy(&ta);
		}
	}
	/* The latency histograms (20 KiB in .bss) are written where each new
	 * latency falls; untouched, their pages became resident one by one for
	 * hours (issue 16 #12).  Touch them now, so resident memory is flat. */
	emg_lat_reset(&d->lat_event);
	emg_lat_reset(&d->lat_metric);
	if (d->cfg.mlock && mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		emg_log(LOG_INFO, "memory: not locked (%s); page faults may add latency", strerror(errno));

	if ((r = sd_event_default(&d->ev)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGTERM, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGINT, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGHUP, on_signal, d)) < 0) {
		emg_log(LOG_ERR, "event loop: %s", strerror(-r));
		goto out;
	}
	d->state_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->state_efd < 0 ||
	    sd_event_add_io(d->ev, &d->state_src, d->state_efd, EPOLLIN, on_dev_state, d) < 0)
		goto out;
	d->logged_state = EMG_DEVICE_STREAMING;

	if ((r = emg_calib_new(&d->calib, d->cfg.muscles)) < 0)
		goto out;
	setup_state_dir(d);

	osc_params(&d->cfg, &op);
	if ((r = emg_osc_new(&d->osc, &op, &oh)) < 0)
		goto out;
	emg_osc_set_muscles(d->osc, d->cfg.muscles);
	emg_osc_set_targets(d->osc, d->cfg.targets, d->cfg.ntargets);
	if (bind_osc(d) < 0)
		goto out;

	setup_recordings_dir(d);
	fault_init(d);
	if (start_engine(d) < 0)
		goto out;
	record_auto(d);
	oscquery_apply(d, 0);
	write_ports(d);

	drop_privileges();

	if (sd_event_add_time_relative(d->ev, &d->tick_src, CLOCK_MONOTONIC, 1000000, 10000,
				       on_tick, d) < 0)
		goto out;
	if (sd_watchdog_enabled(0, &d->wd_usec) > 0 &&
	    sd_event_add_time_relative(d->ev, &d->wd_src, CLOCK_MONOTONIC, d->wd_usec / 2, 10000,
				       on_watchdog, d) < 0)
		goto out;

	r = sd_event_loop(d->ev);
	ret = r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out:
	stop_engine(d, 0);
	if (d->osc) {
		struct emg_osc_stats st;
		emg_osc_stats(d->osc, &st);
		emg_log(LOG_INFO, "osc: %llu packets in, %llu malformed, %llu denied, %llu rate-limited, %llu sent",
		       (unsigned long long)st.received, (unsigned long long)st.malformed,
		       (unsigned long long)st.denied, (unsigned long long)st.rate_limited,
		       (unsigned long long)st.sent);
	}
	join_closer(d);
	if (d->ports_path[0])
		unlink(d->ports_path); /* nobody listens there any more */
	sd_event_source_disable_unref(d->tick_src);
	sd_event_source_disable_unref(d->wd_src);
	sd_event_source_disable_unref(d->osc_src);
	sd_event_source_disable_unref(d->state_src);
	sd_event_source_disable_unref(d->oq_ctl_src);
	if (d->osc)
		emg_osc_set_tap(d->osc, NULL, NULL);
	emg_oscquery_free(d->oq);
	emg_osc_free(d->osc);
	emg_calib_free(d->calib);
	emg_muscles_free(d->pending_muscles);
	emg_config_release(&d->cfg);
	sd_event_unref(d->ev);
	if (d->state_efd > 0)
		close(d->state_efd);
	return ret;
}
