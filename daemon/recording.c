/* SPDX-License-Identifier: MIT */
/*
 * Recording control (main thread): start, stop, the once-a-second check,
 * record = auto, and the hand-over across a device restart.  The engine's
 * DSP thread writes the frames (emg_engine_attach); a finished recording is
 * closed on the closer thread, because close() may wait on a stalled disk.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "text.h"

void annotate(struct daemon *d, uint64_t sample, double duration_s, const char *fmt, ...)
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
	else if (e == -ENODATA)
		emg_log(LOG_WARNING, "recording: %s stopped before its first data record: nothing recorded, "
		       "no file left", path);
	else if (e < 0)
		emg_log(LOG_ERR, "recording: %s closed after an error: %s", path, strerror(-e));
	else
		emg_log(LOG_NOTICE, "recording: %s closed (%.1f s, %llu frames dropped)", path,
		       st.seconds, (unsigned long long)st.frames_dropped);
	return NULL;
}

void record_join_closer(struct daemon *d)
{
	if (d->closer_running) {
		pthread_join(d->closer, NULL);
		d->closer_running = 0;
	}
}

static void close_async(struct daemon *d, struct emg_recorder *r)
{
	record_join_closer(d);
	if (pthread_create(&d->closer, NULL, closer_main, r) == 0)
		d->closer_running = 1;
	else
		closer_main(r);
}

/* A recording named `name` (NULL: automatic) for d->info, not yet attached, in *out; or -errno and why in err. */
static int record_open(struct daemon *d, const char *name, struct emg_recorder **out, char *err,
		       size_t len)
{
	struct emg_record_params rp = { 0 };
	char path[PATH_MAX];
	int r;

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
	r = emg_recorder_open(out, &rp);
	if (r < 0)
		snprintf(err, len, "cannot record to %s: %s", path, strerror(-r));
	return r;
}

/* rec, attached to the engine, is the recording now. */
void record_begin(struct daemon *d, struct emg_recorder *rec)
{
	d->rec = rec;
	d->rec_info = d->info;
	d->rec_seen_overruns = 0;
	d->rec_lost[0] = '\0';
	emg_log(LOG_NOTICE, "recording: %s (%s)", emg_recorder_path(rec),
		d->cfg.record_edf ? "EDF+" : "BDF+");
}

int record_start(struct daemon *d, const char *name, char *err, size_t len)
{
	struct emg_recorder *rec;
	int r;

	if (d->rec || d->rec_closing) {
		snprintf(err, len, "already recording to %s",
			 emg_recorder_path(d->rec ? d->rec : d->rec_closing));
		return -EBUSY;
	}
	if ((r = record_open(d, name, &rec, err, len)) < 0)
		return r;
	if (!d->eng || emg_engine_attach(d->eng, rec) < 0) {
		emg_recorder_close(rec);
		snprintf(err, len, "dsp thread busy, try again");
		return -EAGAIN;
	}
	record_begin(d, rec);
	return 0;
}

/* record = auto wants a recording now: none running, closing or parked for a restart. */
static int auto_wanted(const struct daemon *d)
{
	return d->cfg.record == EMG_RECORD_AUTO && !d->rec && !d->rec_closing && !d->rec_parked;
}

struct emg_recorder *record_auto_open(struct daemon *d)
{
	struct emg_recorder *rec;
	char err[256];

	if (!auto_wanted(d))
		return NULL;
	if (record_open(d, NULL, &rec, err, sizeof(err)) < 0) {
		emg_log(LOG_ERR, "recording: record = auto, but %s", err);
		return NULL;
	}
	return rec;
}

int record_stop(struct daemon *d, char *err, size_t len)
{
	struct emg_recorder_stats st;

	if (!d->rec) {
		/* a recording that stopped on its own (deleted file, full disk) says so once */
		snprintf(err, len, "not recording%s%s", d->rec_lost[0] ? ": " : "", d->rec_lost);
		d->rec_lost[0] = '\0';
		return -ENOENT;
	}
	if (emg_engine_detach(d->eng) < 0) {
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

void record_check(struct daemon *d)
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

/* Recordings go to [daemon] recordings_dir, or under systemd's StateDirectory= by default. */
void record_setup_dir(struct daemon *d)
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

void record_auto(struct daemon *d)
{
	char err[256];

	if (auto_wanted(d) && record_start(d, NULL, err, sizeof(err)) < 0)
		emg_log(LOG_ERR, "recording: record = auto, but %s", err);
}

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
void record_resume(struct daemon *d)
{
	struct emg_recorder *r = d->rec_parked;
	char err[256];

	if (!r)
		return;
	d->rec_parked = NULL;
	if (same_signals(&d->rec_info, &d->info) && d->eng && emg_engine_attach(d->eng, r) == 0) {
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

void record_detached(struct daemon *d, struct emg_recorder *r)
{
	if (r == d->rec_closing)
		d->rec_closing = NULL;
	close_async(d, r);
}

/*
 * keep: a reload restarts the device; the running recording is parked (no
 * thread writes to it) and record_resume() hands it to the new engine, so a
 * lab session is not cut by changing a [device] key.
 */
void record_engine_stopped(struct daemon *d, int keep)
{
	/* The engine is gone: recordings can be closed right here. */
	record_join_closer(d);
	if (d->rec_closing)
		closer_main(d->rec_closing);
	if (d->rec && keep && !d->stopping) {
		d->rec_parked = d->rec;
	} else if (d->rec) {
		annotate(d, EMG_RECORD_NOW, -1, "recording stopped: emgd %s",
			 d->stopping ? "stopped" : "restarted the device");
		closer_main(d->rec);
	}
	if (d->rec_parked && (!keep || d->stopping)) {
		/* A restart that never got its device back: close what was parked. */
		emg_recorder_annotate(d->rec_parked, EMG_RECORD_NOW, -1, "recording stopped: emgd stopped");
		closer_main(d->rec_parked);
		d->rec_parked = NULL;
	}
	d->rec = d->rec_closing = NULL;
}
