/* SPDX-License-Identifier: MIT */
/*
 * eval: onset accuracy against known truth, shared by the accuracy unit test
 * (tests/unit/test_accuracy.c, which asserts the targets) and the benchmark
 * (tests/bench/bench_onset.c, which prints the full table).
 *
 * A recording (struct eval_rec) is raw multichannel sEMG in uV with its true
 * bursts.  It runs through the daemon's own DSP chain (emg_pipeline: band-pass,
 * notch, ECG rejection, onset detection) exactly as the daemon would receive it,
 * or through an offline reference (zero-phase band-pass over the whole
 * recording, notched only where its spectrum shows hum, centred 25 ms RMS, Hodges mean + 3 SD held 25 ms, bursts merged
 * across gaps < 50 ms and >= 30 ms long, the threshold from a rest window the
 * analyst marks - the first 0.5 s) as offline analysis tools do.
 *
 * Scoring: each detected onset is matched one to one to a true onset of the
 * same channel within +-150 ms, closest pairs first.  A true onset that starts
 * less than EVAL_ELIGIBLE_S into the stream is not counted as a miss when
 * missed (nothing can see a burst before a baseline exists).  Unmatched
 * detections that fall in rest - no true burst active on any channel from
 * 0.25 s before its onset to 0.5 s after its offset - are false alarms,
 * counted per muscle-minute of such rest; unmatched detections elsewhere
 * (cross-talk, tonic changes during exercise) are counted apart.  Lag error:
 * for two true bursts of one group (same repetition, different muscles) both
 * detected, (detected lag) - (true lag).
 */
#ifndef EMG_EVAL_H
#define EMG_EVAL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "device.h"
#include "muscles.h"
#include "pipeline.h"

#define EVAL_MATCH_MS 150.0
#define EVAL_ELIGIBLE_S 0.5

struct eval_truth {
	unsigned ch;
	uint64_t onset;   /* primary truth: first sample of activity */
	uint64_t alt;     /* the threshold-crossing alternative */
	uint64_t offset;  /* first sample after the burst (UINT64_MAX: runs to the end) */
	unsigned group;   /* bursts of one repetition share a group (0: none) */
	double snr_db;    /* the burst's own SNR: its plateau's EMG RMS over the noise RMS (NAN: unknown) */
};

struct eval_rec {
	double fs;
	unsigned nch;
	uint64_t n;           /* frames */
	float *x;             /* n x nch interleaved, uV */
	struct eval_truth *t;
	size_t nt;
	struct emg_muscles *map;
	uint64_t *beats;      /* the synth's R-peak samples (NULL: no ECG in it) */
	size_t nbeats;
};

/* How well an ECG stage found the heartbeats of a recording. */
struct eval_beats {
	size_t truth;        /* R peaks at least 1 s into the stream */
	size_t found;        /* ... with a trigger EVAL_BEAT_PRE_MS before to EVAL_BEAT_POST_MS after */
	size_t extra;        /* triggers matched to no R peak */
	size_t late;         /* R peaks after the first 20 s (after warm-up, during the session) */
	size_t late_found;
	double lag_sum, lag_sum2; /* trigger - R peak of the found ones, ms: sum and sum of squares */
};

#define EVAL_BEAT_PRE_MS 60.0
#define EVAL_BEAT_POST_MS 40.0

/* Accumulated figures of one detector on one source. */
struct eval_result {
	size_t bursts;       /* eligible true bursts */
	size_t misses;       /* eligible and not detected */
	size_t fa_rest;      /* unmatched detections in rest */
	size_t fa_other;     /* unmatched detections during activity */
	double rest_min;     /* muscle-minutes of rest */
	size_t nerr, caperr;
	double *err;         /* signed errors vs the primary truth, ms */
	size_t nalt, capalt;
	double *err_alt;     /* the same vs the alternative truth */
	size_t nlag, caplag;
	double *lag;         /* lag errors, ms */
	size_t noff, capoff;
	double *err_off;     /* signed offset errors of the matched bursts vs the true offset, ms */
};

/* Summary of a result. */
struct eval_summary {
	double median_abs, mean, p90_abs, median_abs_alt, mean_alt, lag_p90, miss_pct, fa_per_min;
	size_t matched;
	double median_abs_off, mean_off, p90_abs_off; /* offsets of the matched bursts */
	size_t offsets;
};

/* Free what a recording owns. */
void eval_rec_free(struct eval_rec *r);

/*
 * The synth driver with cfg (its muscles decide the channels; NULL: the default
 * hip map), `passes` passes of its script; truth from emg_synth_truth().
 */
int eval_synth(struct eval_rec *r, const struct emg_device_config *cfg, unsigned passes);

/*
 * The accuracy scenario: the synth in `realism` mode playing "session" on the
 * default hip map with hum, wander and pops at snr_db from seed, 2 passes.
 */
int eval_synth_session(struct eval_rec *r, enum emg_synth_realism realism, double snr_db,
		       uint64_t seed);

/* Trials in an emgdet.bin file (tests/data/emg-detectors), or -errno. */
int eval_emgdet_count(const char *path);

/* nch lanes of white Gaussian or Laplacian noise (RMS 10 uV), `seconds` long, no bursts:
 * every detection is a false onset (a long rest measures rates the external trials' 34 s cannot). */
int eval_noise(struct eval_rec *r, double fs, unsigned nch, double seconds, int laplace,
	       uint64_t seed);

/*
 * Play the external trials (eval_emgdet() and all that uses it) at `factor`
 * (1-8) times their 1 kHz rate, band-limited interpolation; the noise then
 * spreads over `factor` times the band, so its RMS is scaled by
 * sqrt(factor): the SNR within the original 0-500 Hz stays what is asked
 * and the rows compare across rates.  1 (the default) plays them as stored.
 * Returns 0, or -EINVAL for a factor out of range.
 */
int eval_emgdet_upsample(unsigned factor);

/*
 * Trial `trial` of emgdet.bin (or emgdet-train.bin, whose contractions start
 * at 3, 7 or 8 s and end with a true offset), scaled to `burst_uv` RMS over the contraction,
 * plus white noise (laplace: Laplacian, else Gaussian) at snr_db (burst RMS
 * over noise RMS) from seed; the stream starts `start_s` seconds before the
 * authors' onset (0: at the file's start).  Primary truth: the first
 * motor-unit activity; alternative: the authors' threshold truth (8.0 s in
 * emgdet.bin).
 */
int eval_emgdet(struct eval_rec *r, const char *path, unsigned trial, double burst_uv,
		double snr_db, int laplace, uint64_t seed, double start_s);

/* Most trials one chained stream takes, and how many eval_emgdet_chain_all's take. */
#define EVAL_CHAIN_MAX 8
#define EVAL_CHAIN_N 5

/*
 * How a chained stream lays out its contractions (eval_emgdet_chain()): rest
 * before the first and between the others drawn from [lo, hi] s, each
 * contraction cut to [dur_lo, dur_hi] s after its first activity (abruptly,
 * as set 2's own ends are; dur_hi 0: to its own end).
 */
struct eval_chain {
	double first_lo, first_hi;
	double rest_lo, rest_hi;
	double dur_lo, dur_hi;
};

/* A session of repetitions: 1.5-2.5 s before the first, 0.6-2.0 s between, whole contractions. */
#define EVAL_CHAIN_SESSION ((struct eval_chain){ 1.5, 2.5, 0.6, 2.0, 0, 0 })

/*
 * `count` contractions in one stream, as a session of repetitions records
 * them: the next `count` trials from *trial (advanced past them) of emgdet-train.bin that end
 * inside the file (true offsets), each from its own rest before its onset,
 * laid out as sh says, and 1 s of rest after the last; each scaled to burst_uv
 * RMS over its contraction, then white noise at snr_db over the whole stream
 * from seed.  Truths as eval_emgdet's, one per contraction.
 */
int eval_emgdet_chain(struct eval_rec *r, const char *path, unsigned *trial, unsigned count,
		      const struct eval_chain *sh, double burst_uv, double snr_db, int laplace,
		      uint64_t seed);

/* Every EVAL_CHAIN_N-contraction stream of path (emgdet-train.bin) at snr, laid out as sh,
 * through the pipeline with cfg (NULL: the offline reference); added to res. */
int eval_emgdet_chain_shape(const char *path, double snr, int laplace, const struct eval_chain *sh,
			    const struct emg_pipeline_config *cfg, struct eval_result *res);

/* eval_emgdet_chain_shape() with a session's layout (EVAL_CHAIN_SESSION). */
int eval_emgdet_chain_all(const char *path, double snr, int laplace,
			  const struct emg_pipeline_config *cfg, struct eval_result *res);

/* r through a fresh emg_pipeline with cfg, `chunk` frames at a time, its records to fn; negative errno. */
int eval_run_pipeline(const struct eval_rec *r, const struct emg_pipeline_config *cfg,
		      unsigned chunk, emg_out_fn fn, void *ud);

/* Run r through a fresh emg_pipeline with cfg (NULL: defaults); add to res. */
int eval_run_online(const struct eval_rec *r, const struct emg_pipeline_config *cfg,
		    struct eval_result *res);

/*
 * eval_run_online() once, scored per bin of the bursts' own SNR: res[b] gets
 * those with edge[b] <= snr_db < edge[b + 1] (onset and offset errors and
 * misses; its false-onset counts are left as they were).
 */
int eval_run_online_by_snr(const struct eval_rec *r, const struct emg_pipeline_config *cfg,
			   const double *edge, unsigned nbins, struct eval_result *res);

/*
 * r's band-passed lanes (default filter) through an ECG stage in `mode`
 * alone; its triggers matched one to one to r's R peaks (in addition to b).
 */
int eval_ecg_beats(const struct eval_rec *r, enum emg_ecg_mode mode, struct eval_beats *b);

/* Run r through the offline reference; add to res. */
int eval_run_offline(const struct eval_rec *r, struct eval_result *res);

/*
 * Recording idx of an emggo.bin file (tests/data/emggo: real sEMG with
 * heartbeats, uV) with its activity windows as truth (onset and alt: the
 * window's marked start, offset: its end; none in a recording kept for its
 * heartbeats) and its R peaks marked at rest as beats; its name into
 * name[16] if not NULL.
 */
int eval_real(struct eval_rec *r, const char *path, unsigned idx, char name[16]);

/* A detection this long before a window's marked start still finds it (a precursor). */
#define EVAL_WIN_PRE_S 0.5

/* How a detector did on activity windows (a marking, not an onset truth). */
struct eval_windows {
	size_t bursts, found; /* windows, and those with a detection from EVAL_WIN_PRE_S before to their end */
	size_t fa;            /* detections more than EVAL_WIN_PRE_S from every window, after EVAL_ELIGIBLE_S */
	double rest_min;      /* channel-minutes of that rest */
	size_t nagree, capagree;
	double *agree;        /* per found window: nearest detection - marked start, ms */
};

/* Run r through the pipeline with cfg (NULL: defaults) or, with offline set, the offline reference; score its windows into res. */
int eval_run_windows(const struct eval_rec *r, const struct emg_pipeline_config *cfg, int offline,
		     struct eval_windows *res);

/* Lead of the cold streams into a window: 0.5 s, then 0.75, ... 1.5 s, window after window. */
#define EVAL_COLD_LEAD_S 0.5
#define EVAL_COLD_LEADS 5

/*
 * r cut into short streams that each start cold, as a trial recorded on
 * its own would: every seg_s of rest between its windows (from EVAL_WIN_PRE_S
 * after one to EVAL_WIN_PRE_S before the next), and every window that starts
 * a lead of 0.5-1.5 s after rest (up to seg_s or the next window).  Each runs
 * through a fresh pipeline with cfg and is scored like eval_run_windows into
 * res: its windows found, and false onsets in its rest.
 */
int eval_run_cold(const struct eval_rec *r, const struct emg_pipeline_config *cfg, double seg_s,
		  struct eval_windows *res);

/* Free what a window result owns and zero it. */
void eval_windows_free(struct eval_windows *res);

/* The header of a window table, and one row: windows found, false onsets per minute of rest, and the
 * median |d|, mean d and p90 |d| of d = nearest detection - marked start (ms). */
void eval_print_windows_header(FILE *f);
void eval_print_windows_row(FILE *f, const char *rec, const char *det, const struct eval_windows *res);

/* RMS at rest of each channel of r (into rms[nch]) after the band-pass and an ECG stage in `mode`: from skip_s on,
 * more than EVAL_WIN_PRE_S from r's marked bursts (a recording at rest: all of it); negative errno. */
int eval_stage_rms(const struct eval_rec *r, enum emg_ecg_mode mode, double skip_s, double *rms);

/* RMS of each muscle's published display envelope (rms[channel], the root of the mean envelope^2 over the
 * metric ticks from skip_s on) through emg_pipeline with [dsp] ecg = mode, fed `chunk` frames at a time; negative errno. */
int eval_env_rms(const struct eval_rec *r, enum emg_ecg_mode mode, double skip_s, unsigned chunk, double *rms);

/* Summarise res. */
void eval_summarise(const struct eval_result *res, struct eval_summary *s);

/* Free what a result owns and zero it. */
void eval_result_free(struct eval_result *res);

/*
 * Every trial of emgdet.bin with noise at snr_db (seed 1000 + trial), each
 * stream starting 0.5-8 s before the onset (spread evenly), through the
 * pipeline with cfg - or, with cfg NULL, the offline reference; adds to res.
 */
int eval_emgdet_all(const char *path, double snr, int laplace,
		    const struct emg_pipeline_config *cfg, struct eval_result *res);

/* A source of external streams (eval_emgdet_all, eval_emgdet_chain_all): path's trials with
 * noise at snr through the pipeline with cfg, or the offline reference with cfg NULL; adds to res. */
typedef int (*eval_source_fn)(const char *path, double snr, int laplace,
			      const struct emg_pipeline_config *cfg, struct eval_result *res);

/* What eval_emgdet_art_all() adds to each trial, from its first sample (zero: nothing). */
struct eval_artefacts {
	double hum_hz, hum_rel; /* mains hum at hum_hz, hum_rel times the contraction's RMS, a phase per trial */
	double offset_uv;       /* electrode offsets of up to this, a sign and size per trial (DC-coupled amplifiers) */
};

/* eval_emgdet_all() with the artefacts a added to every trial. */
int eval_emgdet_art_all(const char *path, double snr, int laplace, const struct eval_artefacts *a,
			const struct emg_pipeline_config *cfg, struct eval_result *res);

/* The column header of an accuracy table. */
void eval_print_header(FILE *f);

/* One row: source, SNR, detector and the summary of res. */
void eval_print_row(FILE *f, const char *src, double snr, const char *det,
		    const struct eval_result *res);

/* The column header of an offset table. */
void eval_print_offset_header(FILE *f);

/* One offset row: median |error|, mean error, p90 |error| (ms) and how many offsets were scored. */
void eval_print_offset_row(FILE *f, const char *src, double snr, const char *det,
			   const struct eval_result *res);

/* Deterministic Gaussian and Laplacian noise (xorshift + Box-Muller), no global state. */
struct eval_rng {
	uint64_t s;
	int have;
	double spare;
};
void eval_rng_seed(struct eval_rng *g, uint64_t seed);
double eval_rng_gauss(struct eval_rng *g);
double eval_rng_laplace(struct eval_rng *g);

#endif
