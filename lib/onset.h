/* SPDX-License-Identifier: MIT */
/*
 * emg_onset: per-lane muscle onset/offset detection, O(1) per sample.
 *
 * A bank runs one detector per lane (one lane per muscle) on band-passed
 * sEMG.  Three methods share the same burst logic (hold, back-dating,
 * hysteresis offset, minimum burst) and differ in the conditioned signal
 * and threshold:
 *   hodges  - RMS envelope over `window_ms`; threshold mean + k*SD of the
 *             envelope at rest (Hodges & Bui 1996).
 *   tkeo    - the same on the Teager-Kaiser energy x[n-1]^2 - x[n]x[n-2]
 *             (Li, Zhou & Aruin 2007; Solnik et al. 2008).
 *   bonato  - double threshold: a sample pair is "on" when
 *             (x[n]^2 + x[n-1]^2) / sigma^2 exceeds zeta (chosen from a
 *             false-alarm probability); a window of m pairs is "on" when at
 *             least r0 pairs are on (Bonato, D'Alessio & Knaflitz 1998).
 *
 * Baselines come from a rest calibration (emg_onset_rest_begin/end) or,
 * until one exists, from an automatic quiet-period estimate: the quietest
 * of the recent 250 ms blocks.  Events are reported through a callback so
 * the bank neither allocates nor logs after creation.
 */
#ifndef EMG_ONSET_H
#define EMG_ONSET_H

#include <stdint.h>

struct emg_onset;

enum emg_onset_method {
	EMG_ONSET_HODGES = 0,
	EMG_ONSET_TKEO,
	EMG_ONSET_BONATO,
};

struct emg_onset_params {
	enum emg_onset_method method; /* default hodges */
	double window_ms;     /* conditioning envelope window (default 25) */
	double k;             /* threshold = mean + k*SD (default 3) */
	double hold_ms;       /* above threshold this long to confirm an onset (default 25) */
	double offset_ms;     /* below threshold this long to confirm an offset (default 50) */
	double min_burst_ms;  /* shorter bursts are discarded (default 30) */
	double report_ms;     /* a burst is reported once it has lasted this long (default 150; 0: at once) */
	double startup_s;     /* the stream's start-up: its first this many seconds (default 7) ... */
	double startup_report_ms; /* ... in which report_ms is this, if longer (default 500) ... */
	double startup_emg_hz; /* ... but for a burst whose added power lies over this (default 70; 0: none) */
	double bonato_pfa;    /* bonato false-alarm probability per pair (default 0.05) */
	unsigned bonato_m;    /* bonato window, pairs (default 5) */
	unsigned bonato_r0;   /* bonato pairs over threshold in the window (default 1) */
	double auto_block_ms; /* quiet-period estimator block (default 250) */
	unsigned auto_blocks; /* how many recent blocks the quietest is chosen from (default 40) */
};

/* Baseline of one lane: statistics of the conditioned signal at rest. */
struct emg_baseline {
	int method;   /* enum emg_onset_method the statistics belong to */
	double mean;  /* mean of the conditioned signal (hodges/tkeo) */
	double sd;    /* standard deviation of the conditioned signal */
	double var;   /* variance of the raw filtered signal (bonato's sigma^2) */
	double rms;   /* RMS of the raw filtered signal at rest, uV (for SNR) */
};

enum emg_onset_kind { EMG_ONSET_ON = 1, EMG_ONSET_OFF = 2 };

struct emg_onset_event {
	unsigned lane;
	enum emg_onset_kind kind;
	uint64_t sample;       /* onset: back-dated first sample; offset: first sample below */
	uint64_t onset_sample; /* the burst's onset (same as sample for ON) */
	double duration_s;     /* offset only: burst duration */
	float snr_db;          /* burst RMS over baseline RMS, dB */
};

typedef void (*emg_onset_fn)(void *ud, const struct emg_onset_event *ev);

/* Baseline source of a lane. */
enum emg_baseline_src { EMG_BASELINE_NONE = 0, EMG_BASELINE_AUTO, EMG_BASELINE_REST };

/* Fill params with the defaults above. */
void emg_onset_params_default(struct emg_onset_params *p);

/* Parse "hodges" | "tkeo" | "bonato"; -EINVAL otherwise. */
int emg_onset_method_parse(const char *s, enum emg_onset_method *out);

/* Name of a method. */
const char *emg_onset_method_name(enum emg_onset_method m);

/* Create a bank of nlanes detectors at sample rate fs. */
int emg_onset_new(struct emg_onset **out, const struct emg_onset_params *p, double fs,
		  unsigned nlanes);

/* Free a bank. */
void emg_onset_free(struct emg_onset *o);

/* Feed nframes frames of nlanes filtered samples (interleaved); first frame is sample first_sample. */
void emg_onset_run(struct emg_onset *o, const float *x, unsigned nframes, uint64_t first_sample,
		   emg_onset_fn fn, void *ud);

/* 1 while lane is inside a confirmed burst. */
int emg_onset_active(const struct emg_onset *o, unsigned lane);

/* Current SNR estimate of lane in dB (last burst, or running level over baseline). */
float emg_onset_snr_db(const struct emg_onset *o, unsigned lane);

/* Where the lane's baseline comes from. */
enum emg_baseline_src emg_onset_baseline_src(const struct emg_onset *o, unsigned lane);

/*
 * A heartbeat's QRS was detected at `sample` on the lanes with lanes[i] != 0
 * (NULL: all), the heart beating every `rr` samples (its mean RR interval; 0:
 * unknown): an onset inside its window (50 ms before to 120 ms after) is
 * confirmed only if the burst outlasts the window with energy of its own, and
 * the lanes' automatic baselines span whole cardiac cycles; an onset the
 * report gate still holds when the beat comes (a P wave) is reported only if
 * its burst outlasts the window in the same way.  A lane inside a reported
 * burst longer than a beat's (a contraction) ignores it: triggers there are
 * as likely the contraction's own peaks.
 * Called once per beat, before the frames up to `sample` are run.
 */
void emg_onset_beat(struct emg_onset *o, uint64_t sample, double rr, const uint8_t *lanes);

/*
 * The ECG stage triggered at `sample` on the lanes with lanes[i] != 0 (NULL:
 * all), on its rhythm or not: a burst that begins in that trigger's QRS
 * window is held by the slow path only once its slow window (6 x window_ms)
 * no longer reaches the QRS, so a QRS followed closely by a contraction is
 * not one burst starting at the QRS; and an onset the report gate still holds
 * is reported only if its burst outlasts the window with energy of its own
 * (the pipeline calls this on lanes that have learnt their QRS).  Called like
 * emg_onset_beat().
 */
void emg_onset_trigger(struct emg_onset *o, uint64_t sample, const uint8_t *lanes);

/* Bursts the report gate dropped as too short (heartbeats, blips) since creation. */
uint64_t emg_onset_dropped(const struct emg_onset *o);

/* Begin collecting rest statistics on every lane (detection keeps running). */
void emg_onset_rest_begin(struct emg_onset *o);

/* Finish the rest calibration; store per-lane baselines in out[nlanes]; -ENODATA if too short. */
int emg_onset_rest_end(struct emg_onset *o, struct emg_baseline *out);

/* Install a baseline (e.g. loaded from disk); -EINVAL if it belongs to another method. */
int emg_onset_set_baseline(struct emg_onset *o, unsigned lane, const struct emg_baseline *b);

/* Current baseline of a lane; -ENODATA if none yet. */
int emg_onset_get_baseline(const struct emg_onset *o, unsigned lane, struct emg_baseline *b);

/* Samples between a step onset and its event: the report gate's wait, or the confirmation. */
unsigned emg_onset_latency_samples(const struct emg_onset *o);

#endif
