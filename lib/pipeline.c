/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "pipeline.h"

/* Frames processed per inner pass: small enough that the work buffers stay
 * in L1/L2 for 64 muscles, large enough to amortise the per-pass overhead. */
#define BLOCK 128
/* A lane whose QRS peak energy is under this many times its noise energy is
 * not held back around heartbeats (the beat does not show on it). */
#define BEAT_QRS_MIN 2.0f

struct emg_pipeline {
	struct emg_pipeline_config cfg;
	double fs;
	unsigned dev_ch;   /* channels per device frame */
	unsigned nm;       /* muscles (= lanes) */
	unsigned chan[EMG_MUSCLES_MAX];
	int chan_run;      /* chan[i] == chan[0] + i for every muscle */
	struct emg_muscles *map;
	struct emg_calib *calib;
	struct emg_filter *filt;
	struct emg_ecg *ecg;  /* NULL when [dsp] ecg = off */
	struct emg_env *env;
	struct emg_onset *onset;
	uint8_t beat_lane[EMG_MUSCLES_MAX]; /* lanes a heartbeat reaches */
	float *work; /* BLOCK x nm filtered samples */
	float *envb; /* BLOCK x nm display envelope */

	uint64_t tick;        /* next tick number */
	uint64_t tick_sample; /* sample index that closes the next tick */
	uint64_t origin;      /* first sample of tick tick0 */
	uint64_t tick0;
	uint64_t next_seq;    /* first_seq the next block should have (sequence jumps) */
	int started;
	uint64_t dropped;

	/* Calibration in progress (DSP thread only). */
	int cal_kind;         /* 0 = none, else enum emg_calib_kind */
	unsigned cal_muscle;
	uint64_t cal_left;    /* samples still to collect */
	uint64_t cal_count;
	double cal_sum[EMG_MUSCLES_MAX]; /* rest: sum of display envelope */
	uint8_t cal_moved[EMG_MUSCLES_MAX]; /* rest: muscle was active during the trial */
	float cal_peak;       /* mvc: peak display envelope */

	/* Per-call context for the onset callback. */
	emg_out_fn fn;
	void *ud;
	uint64_t blk_last_seq;
	uint64_t blk_t_ns;

	size_t out_size;
	struct emg_out *out; /* preallocated output with nm muscle entries */
};

void emg_pipeline_config_default(struct emg_pipeline_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	emg_filter_spec_default(&cfg->filter);
	emg_ecg_params_default(&cfg->ecg);
	emg_onset_params_default(&cfg->onset);
	cfg->rms_window_ms = 125;
	cfg->publish_rate = 50;
}

static uint64_t tick_end(const struct emg_pipeline *p, uint64_t tick)
{
	/* Exact long-run publish rate even when fs/rate is not an integer. */
	return p->origin + (uint64_t)floor((double)(tick - p->tick0 + 1) * p->fs / p->cfg.publish_rate);
}

int emg_pipeline_new(struct emg_pipeline **out, const struct emg_pipeline_config *cfg,
		     const struct emg_device_info *dev, const struct emg_muscles *map,
		     const struct emg_calib *calib)
{
	struct emg_onset_params onset;
	struct emg_pipeline *p;
	unsigned win;
	int r;

	if (!cfg || !dev || !map || dev->rate <= 0 || dev->channels == 0 ||
	    emg_muscles_count(map) == 0 || cfg->publish_rate <= 0 ||
	    cfg->publish_rate > dev->rate || cfg->rms_window_ms <= 0)
		return -EINVAL;
	if (emg_muscles_channels_needed(map) > dev->channels)
		return -ERANGE;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->fs = dev->rate;
	p->dev_ch = dev->channels;
	p->nm = emg_muscles_count(map);
	p->chan_run = 1;
	for (unsigned i = 0; i < p->nm; i++) {
		p->chan[i] = emg_muscles_get(map, i)->channel;
		p->chan_run = p->chan_run && p->chan[i] == p->chan[0] + i;
	}
	/* An ECG high-pass lifts what it leaves of a heartbeat to where a muscle's
	 * power lies: there the start-up gate goes by length alone (onset.c,
	 * burst_lasted()). */
	onset = cfg->onset;
	if (cfg->ecg.mode & EMG_ECG_HIGHPASS)
		onset.startup_emg_hz = 0;
	win = (unsigned)lround(cfg->rms_window_ms * 1e-3 * p->fs);
	if (win < 1)
		win = 1;
	if ((r = emg_muscles_dup(map, &p->map)) < 0 ||
	    (r = calib ? emg_calib_dup(calib, &p->calib) : emg_calib_new(&p->calib, map)) < 0 ||
	    (r = emg_filter_new(&p->filt, &cfg->filter, p->fs, p->nm)) < 0 ||
	    (cfg->ecg.mode != EMG_ECG_OFF &&
	     (r = emg_ecg_new(&p->ecg, &cfg->ecg, p->fs, p->nm)) < 0) ||
	    (r = emg_env_new(&p->env, p->nm, win)) < 0 ||
	    (r = emg_onset_new(&p->onset, &onset, p->fs, p->nm)) < 0)
		goto fail;
	p->work = aligned_alloc(64, ((size_t)BLOCK * p->nm * sizeof(float) + 63) / 64 * 64);
	p->envb = aligned_alloc(64, ((size_t)BLOCK * p->nm * sizeof(float) + 63) / 64 * 64);
	p->out_size = sizeof(struct emg_out) + p->nm * sizeof(struct emg_out_muscle);
	p->out = calloc(1, p->out_size);
	if (!p->work || !p->envb || !p->out) {
		r = -ENOMEM;
		goto fail;
	}
	/* Rest baselines saved for this detector survive restarts and reloads. */
	for (unsigned i = 0; i < p->nm; i++) {
		const struct emg_calib_entry *e = emg_calib_get(p->calib, i);
		if (e && e->has_rest)
			emg_onset_set_baseline(p->onset, i, &e->rest);
	}
	*out = p;
	return 0;
fail:
	emg_pipeline_free(p);
	return r;
}

void emg_pipeline_free(struct emg_pipeline *p)
{
	if (!p)
		return;
	emg_onset_free(p->onset);
	emg_env_free(p->env);
	emg_ecg_free(p->ecg);
	emg_filter_free(p->filt);
	emg_calib_free(p->calib);
	emg_muscles_free(p->map);
	free(p->work);
	free(p->envb);
	free(p->out);
	free(p);
}

size_t emg_pipeline_out_size(const struct emg_pipeline *p)
{
	return p->out_size;
}

void emg_pipeline_add_dropped(struct emg_pipeline *p, uint64_t n)
{
	p->dropped += n;
}

/* Arrival-time estimate of a sample: the block's arrival minus the samples after it. */
static uint64_t sample_time(const struct emg_pipeline *p, uint64_t sample)
{
	double back = (double)(p->blk_last_seq - sample) * 1e9 / p->fs;

	if (sample > p->blk_last_seq)
		return p->blk_t_ns;
	return back >= (double)p->blk_t_ns ? 0 : p->blk_t_ns - (uint64_t)back;
}

static struct emg_out *out_begin(struct emg_pipeline *p, enum emg_out_type type)
{
	struct emg_out *o = p->out;

	memset(o, 0, sizeof(*o));
	o->type = (uint16_t)type;
	o->arrival_ns = p->blk_t_ns;
	o->dropped = p->dropped;
	return o;
}

static void on_onset(void *ud, const struct emg_onset_event *ev)
{
	struct emg_pipeline *p = ud;
	struct emg_out *o = out_begin(p, ev->kind == EMG_ONSET_ON ? EMG_OUT_ONSET : EMG_OUT_OFFSET);

	if (p->cal_kind == EMG_CALIB_REST)
		p->cal_moved[ev->lane] = 1; /* even a burst that ended between two checks */
	o->muscle = (uint16_t)ev->lane;
	o->sample = ev->sample;
	o->t_ns = sample_time(p, ev->sample);
	o->duration_s = (float)ev->duration_s;
	o->snr_db = ev->snr_db;
	p->fn(p->ud, o);
}

static void emit_metrics(struct emg_pipeline *p, const float *env, uint64_t sample)
{
	struct emg_out *o = out_begin(p, EMG_OUT_METRICS);

	o->nmuscles = p->nm;
	o->tick = p->tick;
	o->sample = sample;
	o->t_ns = sample_time(p, sample);
	for (unsigned i = 0; i < p->nm; i++) {
		struct emg_out_muscle *m = &o->m[i];
		m->rms = env[i];
		m->level = emg_calib_level(p->calib, i, env[i]);
		m->snr_db = emg_onset_snr_db(p->onset, i);
		m->active = (uint8_t)emg_onset_active(p->onset, i);
		m->baseline = (uint8_t)emg_onset_baseline_src(p->onset, i);
		memset(m->pad, 0, sizeof(m->pad));
	}
	p->fn(p->ud, o);
}

/* Rest level of a muscle for the MVC check: its rest calibration (display
 * envelope at rest) or, at least, its onset baseline's noise RMS; 0 if neither. */
static float mvc_rest_level(const struct emg_pipeline *p, unsigned m)
{
	const struct emg_calib_entry *e = emg_calib_get(p->calib, m);
	struct emg_baseline b;
	float lv = e && e->has_rest ? e->rest_rms : 0.0f;

	if (emg_onset_get_baseline(p->onset, m, &b) == 0 && b.rms > lv)
		lv = (float)b.rms;
	return lv;
}

static void calib_finish(struct emg_pipeline *p)
{
	/* Wall-clock time is recorded for the clinician; it is a vDSO call, not a syscall. */
	int64_t now = (int64_t)time(NULL);
	struct emg_out *o;

	if (p->cal_kind == EMG_CALIB_REST) {
		struct emg_baseline b[EMG_MUSCLES_MAX];
		int r = emg_onset_rest_end(p->onset, b);

		for (unsigned i = 0; i < p->nm; i++) {
			o = out_begin(p, EMG_OUT_CALIB);
			o->calib_kind = EMG_CALIB_REST;
			o->calib_err = r;
			o->muscle = (uint16_t)i;
			/* A muscle that fired during "rest" would poison its baseline
			 * (threshold far above real rest): refuse it, keep the old one. */
			if (r == 0 && p->cal_moved[i])
				o->calib_err = -EBUSY;
			else if (r == 0) {
				o->baseline = b[i];
				o->rest_rms = (float)(p->cal_sum[i] / (double)p->cal_count);
				emg_calib_set_rest(p->calib, i, &b[i], o->rest_rms, now);
			}
			p->fn(p->ud, o);
		}
	} else {
		o = out_begin(p, EMG_OUT_CALIB);
		o->calib_kind = EMG_CALIB_MVC;
		o->muscle = (uint16_t)p->cal_muscle;
		o->mvc_rms = p->cal_peak;
		o->rest_rms = mvc_rest_level(p, p->cal_muscle);
		o->calib_err = p->cal_peak > 0 ? 0 : -ENODATA;
		/* A "maximal" trial not clearly above rest (relaxed muscle, electrode
		 * off) would make every later level thousands of %MVC: refuse it. */
		if (o->calib_err == 0 && o->rest_rms > 0 &&
		    p->cal_peak < EMG_PIPELINE_MVC_MIN_RATIO * o->rest_rms)
			o->calib_err = -ERANGE;
		if (o->calib_err == 0)
			emg_calib_add_mvc(p->calib, p->cal_muscle, p->cal_peak, now);
		p->fn(p->ud, o);
	}
	p->cal_kind = 0;
}

static void calib_collect(struct emg_pipeline *p, const float *env, unsigned n)
{
	unsigned take = p->cal_left < n ? (unsigned)p->cal_left : n;

	if (p->cal_kind == EMG_CALIB_REST) {
		for (unsigned f = 0; f < take; f++)
			for (unsigned i = 0; i < p->nm; i++)
				p->cal_sum[i] += env[(size_t)f * p->nm + i];
		for (unsigned i = 0; i < p->nm; i++)
			if (emg_onset_active(p->onset, i))
				p->cal_moved[i] = 1;
	} else {
		for (unsigned f = 0; f < take; f++) {
			float v = env[(size_t)f * p->nm + p->cal_muscle];
			if (v > p->cal_peak)
				p->cal_peak = v;
		}
	}
	p->cal_count += take;
	p->cal_left -= take;
	if (p->cal_left == 0)
		calib_finish(p);
}

/*
 * The part of a heartbeat before its trigger (emg_ecg_pre_fix) out of the
 * display envelope, which still holds it: applied once the envelope has taken
 * the frames up to the trigger and before it takes the trigger's own, so every
 * value it outputs - ticks, %MVC, calibration - is the same however the
 * frames came in blocks.  Only the envelope: the signal (onsets, recording)
 * has gone on.  A trigger the stage takes back 120 ms later as a burst
 * (beat_undo in lib/ecg.c) keeps its patch, as the signal keeps what was
 * subtracted after it: both used a template learnt from real beats.
 */
static void env_fix(struct emg_pipeline *p, const struct emg_ecg_fix *f)
{
	for (unsigned j = 0; j < f->pre; j++)
		(void)emg_env_patch_frame(p->env, f->pre - 1 - j, f->x + (size_t)j * p->nm, f->lane);
}

/*
 * What subtraction leaves of a beat must not start an onset: tell the
 * detector of each trigger at its own sample, before it runs that sample,
 * with the ECG stage as it stood right after the trigger, so what it learns
 * does not depend on how the frames came in blocks.  On a rhythm, the beat
 * goes to the lanes it reaches (QRS energy at least BEAT_QRS_MIN times the
 * noise), with the mean RR: an onset inside its QRS window must outlast it,
 * and those lanes' baselines span whole cardiac cycles.  Off a rhythm,
 * triggers are as likely bursts, and holding a real onset's event for
 * nothing costs accuracy on ECG-free lanes.  Every trigger, on the rhythm or
 * not, also goes to the lanes that have learnt their QRS from beats (a heart
 * shows there): a burst begun on it is not held by the slow window that
 * still holds the QRS (emg_onset_trigger).  Without a heart no lane learns,
 * so triggers on noise or on bursts change nothing.  A trigger the stage
 * takes back 120 ms later (a burst on several lanes) has been told all the
 * same, whatever the block size: it may have held an onset's event for a
 * beat's length, which costs latency, not accuracy.
 */
static void tell_trigger(struct emg_pipeline *p, const struct emg_ecg_trigger *t, uint64_t sample)
{
	const unsigned nm = p->nm;

	for (unsigned i = 0; i < nm; i++)
		p->beat_lane[i] = t->qrs[i] >= BEAT_QRS_MIN;
	if (t->locked)
		emg_onset_beat(p->onset, sample, t->rr, p->beat_lane);
	for (unsigned i = 0; i < nm; i++)
		p->beat_lane[i] &= t->learnt[i];
	emg_onset_trigger(p->onset, sample, p->beat_lane);
}

static void process_block(struct emg_pipeline *p, const float *frames, unsigned n, uint64_t seq)
{
	const unsigned nm = p->nm;
	struct emg_ecg_fix fix[EMG_ECG_FIX_MAX];
	struct emg_ecg_trigger trig[EMG_ECG_TRIG_MAX];
	unsigned nfix = 0, fi = 0, ntrig = 0, ti = 0;

	/* Gather the mapped channels into muscle order (one copy when the
	 * muscles are consecutive channels, the usual map). */
	if (p->chan_run && p->dev_ch == nm) {
		memcpy(p->work, frames, (size_t)n * nm * sizeof(float));
	} else if (p->chan_run) {
		for (unsigned f = 0; f < n; f++)
			memcpy(p->work + (size_t)f * nm, frames + (size_t)f * p->dev_ch + p->chan[0],
			       nm * sizeof(float));
	} else {
		for (unsigned f = 0; f < n; f++) {
			const float *src = frames + (size_t)f * p->dev_ch;
			float *dst = p->work + (size_t)f * nm;
			for (unsigned i = 0; i < nm; i++)
				dst[i] = src[p->chan[i]];
		}
	}
	emg_filter_run(p->filt, p->work, n);
	/* Heartbeats out before anything measures the signal; causal, so onset
	 * sample indices need no correction (emg_ecg_latency_samples() is 0). */
	if (p->ecg) {
		emg_ecg_run(p->ecg, p->work, n);
		while (nfix < EMG_ECG_FIX_MAX && emg_ecg_pre_fix(p->ecg, nfix, &fix[nfix]) == 0)
			nfix++;
		while (ntrig < EMG_ECG_TRIG_MAX && emg_ecg_trigger_at(p->ecg, ntrig, &trig[ntrig]) == 0)
			ntrig++;
	}
	/* Onset detection, the display envelope and calibration run up to each
	 * tick's last sample (and stop exactly at a calibration's last sample
	 * and before each heartbeat's trigger, for env_fix() and tell_trigger()), so a tick
	 * reports the onset state (active, SNR, baseline) of its own sample
	 * and a rest baseline covers exactly the trial: results do not
	 * depend on how the frames were split into blocks.  The envelope's
	 * square root is taken per sample only while a calibration needs every
	 * value; otherwise once per tick (emg_env_value, the same number). */
	for (unsigned done = 0; done < n;) {
		unsigned end = n;
		for (; fi < nfix && fix[fi].frame <= done; fi++)
			env_fix(p, &fix[fi]);
		for (; ti < ntrig && trig[ti].frame <= done; ti++)
			tell_trigger(p, &trig[ti], seq + trig[ti].frame);
		if (fi < nfix)
			end = fix[fi].frame;
		if (ti < ntrig && trig[ti].frame < end)
			end = trig[ti].frame;
		if (p->tick_sample >= seq + done && p->tick_sample < seq + end)
			end = (unsigned)(p->tick_sample - seq) + 1;
		if (p->cal_kind && p->cal_left > 0 && p->cal_left < end - done)
			end = done + (unsigned)p->cal_left;
		emg_onset_run(p->onset, p->work + (size_t)done * nm, end - done, seq + done, on_onset,
			      p);
		if (p->cal_kind) {
			emg_env_run(p->env, p->work + (size_t)done * nm, p->envb + (size_t)done * nm,
				    end - done);
			calib_collect(p, p->envb + (size_t)done * nm, end - done);
		} else {
			emg_env_run(p->env, p->work + (size_t)done * nm, NULL, end - done);
		}
		if (p->tick_sample == seq + end - 1) {
			for (unsigned i = 0; i < nm; i++)
				p->envb[i] = emg_env_value(p->env, i);
			emit_metrics(p, p->envb, p->tick_sample);
			p->tick++;
			p->tick_sample = tick_end(p, p->tick) - 1;
		}
		done = end;
	}
}

void emg_pipeline_process(struct emg_pipeline *p, const float *frames, unsigned nframes,
			  uint64_t first_seq, uint64_t t_ns, emg_out_fn fn, void *ud)
{
	if (!p->started) {
		p->origin = first_seq;
		p->next_seq = first_seq;
		p->tick_sample = tick_end(p, 0) - 1;
		p->started = 1;
	}
	p->fn = fn;
	p->ud = ud;
	p->blk_last_seq = first_seq + nframes - 1;
	p->blk_t_ns = t_ns;
	/* A sequence jump (lost frames, or a restarted counter) moves the tick
	 * grid by the jump: tick numbers stay gap-free (a gap in /emg/frame means
	 * lost bundles, lost samples show in `dropped`) and every tick still
	 * covers its share of received samples.  Unsigned wrap-around makes a
	 * backward jump work the same way. */
	if (first_seq != p->next_seq) {
		uint64_t delta = first_seq - p->next_seq;
		p->origin += delta;
		p->tick_sample += delta;
		/* a replugged amplifier comes back with new electrode offsets */
		emg_filter_gap(p->filt);
	}
	p->next_seq = first_seq + nframes;
	for (unsigned off = 0; off < nframes; off += BLOCK) {
		unsigned n = nframes - off < BLOCK ? nframes - off : BLOCK;
		process_block(p, frames + (size_t)off * p->dev_ch, n, first_seq + off);
	}
}

void emg_pipeline_handover(struct emg_pipeline *to, const struct emg_pipeline *from)
{
	to->dropped = from->dropped;
	if (!from->started)
		return;
	/* The next tick of `to` starts right after the last tick `from` emitted. */
	to->started = 1;
	to->next_seq = from->next_seq;
	to->tick = to->tick0 = from->tick;
	to->origin = from->tick > from->tick0 ? tick_end(from, from->tick - 1) : from->origin;
	to->tick_sample = tick_end(to, to->tick) - 1;
	/* A shorter tick than `from`'s (publish_rate raised): `from` may already have taken
	 * more samples of the pending tick than a whole tick of `to` holds.  That tick then
	 * ends on the first sample `to` sees and the grid moves by as much; left behind the
	 * samples, tick_sample never matched again and the stream stopped for good. */
	if (to->tick_sample < to->next_seq) {
		to->origin += to->next_seq - to->tick_sample;
		to->tick_sample = to->next_seq;
	}
}

int emg_pipeline_calibrate_rest(struct emg_pipeline *p, double seconds)
{
	if (p->cal_kind)
		return -EBUSY;
	if (!(seconds >= 0.5 && seconds <= 120))
		return -EINVAL;
	memset(p->cal_sum, 0, sizeof(p->cal_sum));
	memset(p->cal_moved, 0, sizeof(p->cal_moved));
	p->cal_count = 0;
	p->cal_left = (uint64_t)llround(seconds * p->fs);
	emg_onset_rest_begin(p->onset);
	p->cal_kind = EMG_CALIB_REST;
	return 0;
}

int emg_pipeline_calibrate_mvc(struct emg_pipeline *p, unsigned muscle, double seconds)
{
	if (p->cal_kind)
		return -EBUSY;
	if (muscle >= p->nm || !(seconds >= 0.5 && seconds <= 60))
		return -EINVAL;
	p->cal_muscle = muscle;
	p->cal_peak = 0;
	p->cal_count = 0;
	p->cal_left = (uint64_t)llround(seconds * p->fs);
	p->cal_kind = EMG_CALIB_MVC;
	return 0;
}

int emg_pipeline_calibrating(const struct emg_pipeline *p)
{
	return p->cal_kind != 0;
}

int emg_pipeline_describe(const struct emg_pipeline *p, char *buf, size_t len)
{
	int n = emg_filter_describe(p->filt, buf, len);

	/* "HP:20Hz LP:450Hz N:50Hz ECG:sub": the ECG stage is part of what was done to the signal. */
	if (p->ecg && n >= 0 && (size_t)n < len) {
		char ecg[32];

		emg_ecg_describe(p->ecg, ecg, sizeof(ecg));
		n += snprintf(buf + n, len - (size_t)n, " %s", ecg);
	}
	return n;
}

const struct emg_muscles *emg_pipeline_muscles(const struct emg_pipeline *p)
{
	return p->map;
}
