/* SPDX-License-Identifier: MIT */
/*
 * Onset accuracy per source x SNR x detector, next to an offline reference
 * measured side by side (tests/eval/eval.h says how each figure is scored).
 *
 * Sources, each reported on its own:
 *   synth-real  the synth's realistic mode (recruitment ramps, ECG 100 uV,
 *               tonic activity, cross-talk, motion artefacts), "session"
 *               scenario, default hip map, 2 seeds x 2 passes; truth = first
 *               sample of non-zero activation (alt: 10 % of the plateau)
 *   synth-plain the plain synth (short half-cosine rises, no ECG), same script
 *   ext-gauss   tests/data/emg-detectors: 100 biophysical-model trials by an
 *   ext-laplace independent group (Yuvaraj et al. 2023, MIT), white Gaussian or
 *               Laplacian noise at the SNR, fixed seeds, each stream starting
 *               0.5-8 s before the onset; truth = first motor-unit activity
 *               (alt: the authors' threshold truth, 8.0 s)
 *   ext2-...    the same group's 50 training trials (emgdet-train.bin): onsets
 *               at 3, 7 or 8 s and offsets 5 s later, tuned on by nothing here
 *   s-real/off  the same with `[dsp] ecg = off` (the default is `subtract`:
 *               QRS template subtraction; EMG_EVAL_ECG=mode sets another
 *               mode for every row but these; EMG_EVAL_MAINS=auto|50|60|off
 *               the online rows' [dsp] mains)
 * and the heartbeat check: the realistic synth at rest with ECG at 200 uV,
 * per ECG mode; false onsets on 80 lane-minutes of pure noise; and the
 * default pipeline on both synths at 250 Hz - 4 kHz (`rates`); and the
 * external data with 50 or 60 Hz mains hum per `[dsp] mains` (`mains`);
 * contractions close together (`rests`); the realistic synth's errors by
 * the length of each burst's toe (`toes`) and by its own SNR (`levels`).
 *
 * Columns: median |error|, mean signed error, p90 |error| (ms), median |error|
 * against the alternative truth, misses among bursts >= 0.5 s into the stream,
 * false onsets per muscle-minute of rest, p90 lag error between two muscles.
 * Then the offsets of the matched synth bursts against their true offsets.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval.h"

#define NSNR 4
static const double snrs[NSNR] = { 0, 10, 20, 40 };
static const char *const dets[] = { "hodges", "tkeo", "bonato", "offline" };
#define NDET 4

static const char *data_path(void)
{
	const char *e = getenv("EMG_EVAL_DATA");

	return e && *e ? e : EVAL_DATA_DIR "/emg-detectors/emgdet.bin";
}

/* The second external set: the same group's 50 training trials, with offsets. */
static const char *data2_path(void)
{
	const char *e = getenv("EMG_EVAL_DATA2");

	return e && *e ? e : EVAL_DATA_DIR "/emg-detectors/emgdet-train.bin";
}

/* Real recordings with heartbeats in them (tests/data/emggo). */
static const char *real_path(void)
{
	const char *e = getenv("EMG_EVAL_REAL");

	return e && *e ? e : EVAL_DATA_DIR "/emggo/emggo.bin";
}

/* ECG stage of the online rows: the default, or `both` for the synth-real/ecg rows. */
static int ecg_mode = -1; /* an enum emg_ecg_mode, or -1: the default (or $EMG_EVAL_ECG) */

/* Pipeline config for detector k, NULL for the offline reference. */
static const struct emg_pipeline_config *det_cfg(int k, struct emg_pipeline_config *pc)
{
	if (k == NDET - 1)
		return NULL;
	emg_pipeline_config_default(pc);
	emg_onset_method_parse(dets[k], &pc->onset.method);
	if (getenv("EMG_EVAL_MAINS") && emg_filter_mains_parse(getenv("EMG_EVAL_MAINS"), &pc->filter.mains_hz) < 0) {
		fprintf(stderr, "EMG_EVAL_MAINS: auto, 50, 60 or off\n");
		exit(2);
	}
	if (ecg_mode >= 0)
		pc->ecg.mode = (enum emg_ecg_mode)ecg_mode;
	else if (getenv("EMG_EVAL_ECG") && emg_ecg_mode_parse(getenv("EMG_EVAL_ECG"), &pc->ecg.mode) < 0) {
		fprintf(stderr, "EMG_EVAL_ECG: off, highpass, subtract or both\n");
		exit(2);
	}
	return pc;
}

/* Offsets of the matched bursts, per source with offsets x SNR x detector, printed after the table. */
#define NOFF 24
static struct {
	const char *src;
	double snr;
	struct eval_result res[NDET];
} offs[NOFF];
static unsigned noffs;

/* Print the rows of one source x SNR; with `keep`, keep its offsets for the second table, else free it. */
static void print_rows(const char *name, double snr, struct eval_result *res, int keep)
{
	for (int k = 0; k < NDET; k++)
		eval_print_row(stdout, name, snr, dets[k], &res[k]);
	if (keep && noffs < NOFF && snr > 0) {
		offs[noffs].src = name;
		offs[noffs].snr = snr;
		memcpy(offs[noffs++].res, res, sizeof(offs[0].res));
	} else {
		for (int k = 0; k < NDET; k++)
			eval_result_free(&res[k]);
	}
}

static void synth_source(const char *name, enum emg_synth_realism realism, double snr)
{
	struct eval_result res[NDET];

	memset(res, 0, sizeof(res));
	for (uint64_t seed = 1; seed <= 2; seed++) {
		struct eval_rec r;
		if (eval_synth_session(&r, realism, snr, seed) < 0) {
			fprintf(stderr, "synth failed\n");
			exit(1);
		}
		for (int k = 0; k < NDET; k++) {
			struct emg_pipeline_config pc;
			const struct emg_pipeline_config *cfg = det_cfg(k, &pc);
			if (cfg)
				eval_run_online(&r, cfg, &res[k]);
			else
				eval_run_offline(&r, &res[k]);
		}
		eval_rec_free(&r);
	}
	print_rows(name, snr, res, 1);
}

/* The offsets of the sources that have them (the first external set's trials end inside their contraction). */
static void offsets(void)
{
	printf("offset accuracy of the bursts matched above, vs the true offset (first sample of "
	       "zero activation after the burst)\n");
	eval_print_offset_header(stdout);
	for (unsigned i = 0; i < noffs; i++)
		for (int k = 0; k < NDET; k++) {
			eval_print_offset_row(stdout, offs[i].src, offs[i].snr, dets[k], &offs[i].res[k]);
			eval_result_free(&offs[i].res[k]);
		}
}

/* An external set's rows: path's trials through `all` with Gaussian or Laplacian noise at snr; offsets kept with `keep`. */
static void ext_source(const char *name, const char *path, eval_source_fn all, int laplace,
		       double snr, int keep)
{
	struct eval_result res[NDET];

	memset(res, 0, sizeof(res));
	for (int k = 0; k < NDET; k++) {
		struct emg_pipeline_config pc;
		if (all(path, snr, laplace, det_cfg(k, &pc), &res[k]) < 0) {
			printf("%-12s: %s not readable, skipped\n", name, path);
			for (int j = 0; j <= k; j++)
				eval_result_free(&res[j]);
			return;
		}
	}
	print_rows(name, snr, res, keep);
}

/*
 * False onsets on long stretches of pure noise, 8 lanes x 10 min, Gaussian and
 * Laplacian: the external trials hold only 34 s of rest, where one event is
 * 1.7 per minute.  With the count, its exact Poisson 95 % interval (per
 * lane-minute; the lanes are independent).
 */
static void noise_rates(void)
{
	/* chi-square quantiles / 2 for k = 0..8 events: lower 2.5 %, upper 97.5 % */
	static const double lo[] = { 0, 0.0253, 0.242, 0.619, 1.09, 1.62, 2.20, 2.81, 3.45 };
	static const double hi[] = { 3.69, 5.57, 7.22, 8.77, 10.24, 11.67, 13.06, 14.42, 15.76 };

	printf("false onsets on pure noise, 8 lanes x 10 min, default settings\n");
	for (int lap = 0; lap <= 1; lap++) {
		struct eval_rec r;
		if (eval_noise(&r, 2000, 8, 600, lap, 4242 + (uint64_t)lap) < 0)
			exit(1);
		for (int k = 0; k < NDET - 1; k++) {
			struct emg_pipeline_config pc;
			struct eval_result res = { 0 };
			eval_run_online(&r, det_cfg(k, &pc), &res);
			size_t n = res.fa_rest + res.fa_other;
			double min = (double)r.n / r.fs / 60.0 * r.nch;
			if (n < sizeof(lo) / sizeof(lo[0]))
				printf("%-14s %-7s %3zu in %.0f lane-min: %.3f per minute (95 %%: %.3f-%.3f)\n",
				       lap ? "noise-laplace" : "noise-gauss", dets[k], n, min, n / min,
				       lo[n] / min, hi[n] / min);
			else
				printf("%-14s %-7s %3zu in %.0f lane-min: %.3f per minute (95 %%: +-%.3f)\n",
				       lap ? "noise-laplace" : "noise-gauss", dets[k], n, min, n / min,
				       1.96 * sqrt((double)n) / min);
			eval_result_free(&res);
		}
		eval_rec_free(&r);
	}
}

/* Heartbeats at rest: false onsets per muscle-minute with ECG at 200 uV, per ECG mode. */
/*
 * Heartbeats: the realistic synth at rest with a 200 uV ECG.  False onsets
 * per ECG mode and detector, and each muscle's RMS at rest over its RMS
 * without the ECG (the same seed with ecg_uv = 0: every other component is
 * identical), from 10 s on - after the stage has learnt its templates: of
 * the stage's output signal ("signal"), and of the display envelope the
 * daemon publishes ("envelope", from which the part of each beat before its
 * trigger is taken out after the fact; eval_env_rms).
 */
/* One line of heartbeat(): each muscle's RMS with the ECG over its RMS without. */
static void rms_ratios(enum emg_ecg_mode mode, const char *what, const struct emg_muscles *map,
		       const double *with, const double *without)
{
	printf("rest RMS with ECG 200 uV / without, ecg = %-8s %s", emg_ecg_mode_name(mode), what);
	for (unsigned i = 0; i < emg_muscles_count(map); i++) {
		const struct emg_muscle *m = emg_muscles_get(map, i);
		printf(" %s %.2f", m->name, with[m->channel] / without[m->channel]);
	}
	printf("\n");
}

static void heartbeat(void)
{
	static const enum emg_ecg_mode modes[] = { EMG_ECG_OFF, EMG_ECG_SUBTRACT, EMG_ECG_BOTH };
	struct emg_device_config c;
	struct eval_rec r, clean;
	double ref[EMG_DEVICE_MAX_CHANNELS], rms[EMG_DEVICE_MAX_CHANNELS];
	double eref[EMG_DEVICE_MAX_CHANNELS], erms[EMG_DEVICE_MAX_CHANNELS];

	emg_device_config_default(&c);
	c.realism = EMG_SYNTH_REALISTIC;
	c.scenario = "rest";
	c.ecg_uv = 0;
	if (eval_synth(&clean, &c, 1) < 0)
		exit(1);
	c.ecg_uv = 200;
	if (eval_synth(&r, &c, 1) < 0)
		exit(1);
	if (eval_stage_rms(&clean, EMG_ECG_OFF, 10, ref) < 0 ||
	    eval_env_rms(&clean, EMG_ECG_OFF, 10, 1000, eref) < 0)
		exit(1);
	for (unsigned e = 0; e < sizeof(modes) / sizeof(modes[0]); e++) {
		ecg_mode = (int)modes[e];
		for (int k = 0; k < NDET - 1; k++) {
			struct emg_pipeline_config pc;
			struct eval_result res = { 0 };
			eval_run_online(&r, det_cfg(k, &pc), &res);
			printf("heartbeats at rest, ECG 200 uV, ecg = %-8s %-7s %.0f s x %u muscles: "
			       "%3zu false onsets (%.2f per muscle-minute)\n",
			       emg_ecg_mode_name(modes[e]), dets[k], (double)r.n / r.fs, r.nch,
			       res.fa_rest + res.fa_other,
			       (double)(res.fa_rest + res.fa_other) / ((double)r.n / r.fs / 60.0 * r.nch));
			eval_result_free(&res);
		}
		if (eval_stage_rms(&r, modes[e], 10, rms) < 0 ||
		    eval_env_rms(&r, modes[e], 10, 1000, erms) < 0)
			exit(1);
		rms_ratios(modes[e], "signal  ", r.map, rms, ref);
		rms_ratios(modes[e], "envelope", r.map, erms, eref);
	}
	ecg_mode = -1;
	eval_rec_free(&r);
	eval_rec_free(&clean);
}

/* Mean and SD of trigger - R over the R peaks found (ms; 0 without). */
static void beat_lag(const struct eval_beats *b, double *mean, double *sd)
{
	const double n = (double)b->found;

	*mean = n > 0 ? b->lag_sum / n : 0;
	*sd = n > 1 ? sqrt(fmax(0, b->lag_sum2 / n - *mean * *mean)) : 0;
}

static void beats_row(const char *name, double snr, const struct eval_beats *b, double minutes)
{
	double mean, sd;

	beat_lag(b, &mean, &sd);

	printf("beats %-12s %3.0f dB: %4zu/%4zu R peaks found (after 20 s: %4zu/%4zu), "
	       "%3zu triggers off the heart (%.2f per minute)",
	       name, snr, b->found, b->truth, b->late_found, b->late, b->extra,
	       minutes > 0 ? (double)b->extra / minutes : 0.0);
	if (b->found)
		printf(", trigger - R %+.1f ms (SD %.1f)", mean, sd);
	printf("\n");
}

/*
 * The ECG stage's own QRS detector against the synth's R peaks (a trigger
 * EVAL_BEAT_PRE_MS before to EVAL_BEAT_POST_MS after one), and its triggers
 * on sources without a heart (plain synth, external data: all off the heart).
 */
static void beats(enum emg_ecg_mode mode)
{
	static const double bsnr[] = { 10, 20, 40 };
	struct emg_device_config c;
	struct eval_beats b;
	struct eval_rec r;
	double min;

	printf("ECG stage's QRS detector, ecg = %s\n", emg_ecg_mode_name(mode));
	for (unsigned i = 0; i < 3; i++) {
		memset(&b, 0, sizeof(b));
		min = 0;
		for (uint64_t seed = 1; seed <= 2; seed++) {
			if (eval_synth_session(&r, EMG_SYNTH_REALISTIC, bsnr[i], seed) < 0)
				exit(1);
			eval_ecg_beats(&r, mode, &b);
			min += (double)r.n / r.fs / 60.0;
			eval_rec_free(&r);
		}
		beats_row("synth-real", bsnr[i], &b, min);
	}
	emg_device_config_default(&c);
	c.realism = EMG_SYNTH_REALISTIC;
	c.scenario = "rest";
	c.ecg_uv = 200;
	if (eval_synth(&r, &c, 1) < 0)
		exit(1);
	memset(&b, 0, sizeof(b));
	eval_ecg_beats(&r, mode, &b);
	beats_row("rest-200uV", c.snr_db, &b, (double)r.n / r.fs / 60.0);
	eval_rec_free(&r);
	for (unsigned i = 0; i < 3; i++) {
		memset(&b, 0, sizeof(b));
		min = 0;
		for (uint64_t seed = 1; seed <= 2; seed++) {
			if (eval_synth_session(&r, EMG_SYNTH_PLAIN, bsnr[i], seed) < 0)
				exit(1);
			eval_ecg_beats(&r, mode, &b);
			min += (double)r.n / r.fs / 60.0;
			eval_rec_free(&r);
		}
		beats_row("synth-plain", bsnr[i], &b, min);
	}
	for (int lap = 0; lap <= 1; lap++)
		for (unsigned i = 0; i < 3; i++) {
			int n = eval_emgdet_count(data_path());
			memset(&b, 0, sizeof(b));
			min = 0;
			for (int t = 0; t < n; t++) {
				if (eval_emgdet(&r, data_path(), (unsigned)t, 50.0, bsnr[i], lap,
						1000 + (uint64_t)t, 0) < 0)
					break;
				eval_ecg_beats(&r, mode, &b);
				min += (double)r.n / r.fs / 60.0;
				eval_rec_free(&r);
			}
			beats_row(lap ? "ext-laplace" : "ext-gauss", bsnr[i], &b, min);
		}
}

/*
 * The default pipeline on the synth's session at the rates amplifiers run at
 * (Cyton 250 Hz, ADS1299 500 Hz, 1-4 kHz), plain and realistic, 20 and 40 dB
 * (in-band SNR, so the rows compare the detector, not the noise).
 */
static void rates(void)
{
	static const double fs[] = { 250, 500, 1000, 2000, 4000 };
	static const double rsnr[] = { 20, 40 };

	printf("onset accuracy per sample rate, default pipeline (hodges), synth session, 2 seeds x 2 passes\n");
	eval_print_header(stdout);
	for (int real = 0; real <= 1; real++)
		for (unsigned k = 0; k < sizeof(fs) / sizeof(fs[0]); k++)
			for (unsigned j = 0; j < 2; j++) {
				struct eval_result res = { 0 };
				char src[32];

				for (uint64_t seed = 1; seed <= 2; seed++) {
					struct emg_device_config c;
					struct eval_rec r;

					emg_device_config_default(&c);
					c.realism = real ? EMG_SYNTH_REALISTIC : EMG_SYNTH_PLAIN;
					c.scenario = "session";
					c.snr_db = rsnr[j];
					c.seed = seed;
					c.wander = c.pops = true;
					c.rate = fs[k];
					if (eval_synth(&r, &c, 2) < 0 || eval_run_online(&r, NULL, &res) < 0) {
						fprintf(stderr, "rates: synth at %.0f Hz failed\n", fs[k]);
						exit(1);
					}
					eval_rec_free(&r);
				}
				snprintf(src, sizeof(src), "%s@%.0f", real ? "s-real" : "s-plain", fs[k]);
				eval_print_row(stdout, src, rsnr[j], "hodges", &res);
				eval_result_free(&res);
			}
	/* the external data played at 1, 2 and 4 kHz, the noise's in-band level kept
	 * (eval_emgdet_upsample()): the same signals, only the rate differs */
	static const unsigned up[] = { 1, 2, 4 };
	struct emg_pipeline_config pc;

	emg_pipeline_config_default(&pc);
	printf("external set 1 per sample rate (band-limited upsampling, the noise's level in the "
	       "original 0-500 Hz kept), default pipeline (hodges)\n");
	eval_print_header(stdout);
	for (int laplace = 0; laplace <= 1; laplace++)
		for (unsigned k = 0; k < sizeof(up) / sizeof(up[0]); k++)
			for (int j = 1; j < NSNR; j++) {
				struct eval_result res = { 0 };
				char src[32];

				if (eval_emgdet_upsample(up[k]) < 0 ||
				    eval_emgdet_all(data_path(), snrs[j], laplace, &pc, &res) < 0) {
					fprintf(stderr, "rates: external data at %u kHz failed\n", up[k]);
					exit(1);
				}
				snprintf(src, sizeof(src), "%s@%u", laplace ? "ext1-l" : "ext1-g", 1000 * up[k]);
				eval_print_row(stdout, src, snrs[j], "hodges", &res);
				eval_result_free(&res);
			}
	eval_emgdet_upsample(1);
}

/*
 * Mains hum on the external data (set 1, Gaussian noise): 50 or 60 Hz at 1x
 * and 10x the contraction's RMS from the stream's first sample, with `[dsp]
 * mains` auto (the default), 50 and 60.  A 60 Hz recording notched at 50 Hz
 * is what a lab on 60 Hz mains gets with a 50 Hz default.
 */
static void mains(void)
{
	static const struct { double hz, rel, mains; const char *name; } rows[] = {
		{ 50, 10, EMG_FILTER_MAINS_AUTO, "h50x10/auto" }, { 50, 10, 50, "h50x10/50" },
		{ 60, 1, EMG_FILTER_MAINS_AUTO, "h60x1/auto" },   { 60, 10, EMG_FILTER_MAINS_AUTO, "h60x10/auto" },
		{ 60, 1, 50, "h60x1/50" },                         { 60, 10, 50, "h60x10/50" },
		{ 60, 1, 60, "h60x1/60" },                         { 60, 10, 60, "h60x10/60" },
	};

	printf("onset accuracy with mains hum, external set 1 (Gaussian), hodges; source = hum Hz x level / [dsp] mains\n");
	eval_print_header(stdout);
	for (unsigned k = 0; k < sizeof(rows) / sizeof(rows[0]); k++)
		for (unsigned j = 1; j < NSNR; j++) {
			struct emg_pipeline_config pc;
			struct eval_result res = { 0 };

			emg_pipeline_config_default(&pc);
			pc.filter.mains_hz = rows[k].mains;
			const struct eval_artefacts art = { .hum_hz = rows[k].hz, .hum_rel = rows[k].rel };
			if (eval_emgdet_art_all(data_path(), snrs[j], 0, &art, &pc, &res) < 0) {
				printf("%-12s: %s not readable, skipped\n", rows[k].name, data_path());
				return;
			}
			eval_print_row(stdout, rows[k].name, snrs[j], "hodges", &res);
			eval_result_free(&res);
		}
}

/* The label of the bin [lo, hi) in a binned table: "lo-hi", "< hi" or ">= lo" (open ends). */
static void bin_label(char *out, size_t n, double lo, double hi)
{
	if (isinf(lo))
		snprintf(out, n, "< %.0f", hi);
	else if (isinf(hi))
		snprintf(out, n, ">= %.0f", lo);
	else
		snprintf(out, n, "%.0f-%.0f", lo, hi);
}

/*
 * Where the realistic synth's onset errors come from: its matched bursts by
 * the length of their toe - from the first non-zero activation (the truth)
 * to 10 % of the plateau (the alternative truth) - default pipeline.  The
 * error against the first non-zero sample grows with the toe; the column
 * against the 10 % point shows how far into it the detector reaches.
 */
static void toes(void)
{
	static const double edge[] = { 0, 5, 10, 20, 40, INFINITY }; /* the longest toe: ~60 ms */
	const unsigned nb = sizeof(edge) / sizeof(edge[0]) - 1;

	printf("realistic synth onsets by toe (first non-zero activation to 10 %% of the plateau), "
	       "hodges, 2 seeds x 2 passes\n");
	printf("%4s %-10s %6s %7s %7s %7s %12s\n", "SNR", "toe ms", "bursts", "med|e|", "mean e",
	       "p90|e|", "mean e - toe");
	for (unsigned j = 1; j < NSNR; j++) {
		struct eval_result all = { 0 };

		for (uint64_t seed = 1; seed <= 2; seed++) {
			struct eval_rec r;

			if (eval_synth_session(&r, EMG_SYNTH_REALISTIC, snrs[j], seed) < 0 ||
			    eval_run_online(&r, NULL, &all) < 0) {
				fprintf(stderr, "toes: synth failed\n");
				exit(1);
			}
			eval_rec_free(&r);
		}
		for (unsigned b = 0; b < nb; b++) {
			/* a result of this bin's bursts alone: err and err_alt are pushed in pairs */
			struct eval_result bin = { .err = malloc(sizeof(double) * (all.nerr + 1)),
						   .err_alt = malloc(sizeof(double) * (all.nerr + 1)) };
			struct eval_summary sm;
			char range[16];

			if (!bin.err || !bin.err_alt) {
				fprintf(stderr, "toes: out of memory\n");
				exit(1);
			}
			for (size_t i = 0; i < all.nerr && i < all.nalt; i++) {
				const double toe = all.err[i] - all.err_alt[i];

				if (toe >= edge[b] && toe < edge[b + 1]) {
					bin.err[bin.nerr++] = all.err[i];
					bin.err_alt[bin.nalt++] = all.err_alt[i];
				}
			}
			eval_summarise(&bin, &sm);
			bin_label(range, sizeof(range), edge[b], edge[b + 1]);
			printf("%4.0f %-10s %6zu %7.1f %+7.1f %7.1f %+12.1f\n", snrs[j], range, bin.nerr,
			       sm.median_abs, sm.mean, sm.p90_abs, sm.mean_alt);
			eval_result_free(&bin);
		}
		eval_result_free(&all);
	}
}

/*
 * The realistic synth's onsets by each burst's own SNR: a stream's SNR is that
 * of a 50 % MVC plateau, and the session's bursts reach 10-100 % MVC, so at
 * "10 dB" 126 of the 280 stand less than 5 dB over the noise.  Misses and
 * errors are a matter of the burst's level as much as of the stream's.
 */
static void levels(void)
{
	static const double edge[] = { -INFINITY, 0, 5, 10, 15, 20, 30, INFINITY };
	enum { NB = sizeof(edge) / sizeof(edge[0]) - 1 };

	printf("realistic synth onsets by the burst's own SNR (its plateau over the noise), "
	       "hodges, 2 seeds x 2 passes\n");
	printf("%4s %-12s %6s %7s %7s %7s %7s\n", "SNR", "burst SNR dB", "bursts", "missed", "med|e|",
	       "mean e", "p90|e|");
	for (unsigned j = 0; j < NSNR; j++) {
		struct eval_result res[NB];

		memset(res, 0, sizeof(res));
		for (uint64_t seed = 1; seed <= 2; seed++) {
			struct eval_rec r;

			if (eval_synth_session(&r, EMG_SYNTH_REALISTIC, snrs[j], seed) < 0 ||
			    eval_run_online_by_snr(&r, NULL, edge, NB, res) < 0) {
				fprintf(stderr, "levels: synth failed\n");
				exit(1);
			}
			eval_rec_free(&r);
		}
		for (unsigned b = 0; b < NB; b++) {
			struct eval_summary sm;
			char range[16];

			if (res[b].bursts) {
				eval_summarise(&res[b], &sm);
				bin_label(range, sizeof(range), edge[b], edge[b + 1]);
				printf("%4.0f %-12s %6zu %7zu %7.1f %+7.1f %7.1f\n", snrs[j], range,
				       res[b].bursts, res[b].misses, sm.median_abs, sm.mean, sm.p90_abs);
			}
			eval_result_free(&res[b]);
		}
	}
}

/*
 * How close contractions may come: external set 2 five to a stream with rests
 * of 0.25-0.6 s and 0.6-2 s between them, hodges, `mains = auto` (the default)
 * and `off`.  The contractions end at once; the 50 Hz notch rings for ~0.5 s
 * after such an end, above a rest threshold near the noise at high SNR, and
 * two contractions whose rest it fills become one burst (the second missed).
 */
static void rests(void)
{
	static const double gaps[][2] = { { 0.25, 0.6 }, { 0.6, 2.0 } };

	printf("contractions in a row, external set 2 (Gaussian) five to a stream, hodges; "
	       "source = rests s / [dsp] mains\n");
	eval_print_header(stdout);
	for (unsigned g = 0; g < 2; g++)
		for (int off = 0; off <= 1; off++)
			for (unsigned j = 1; j < NSNR; j++) {
				struct emg_pipeline_config pc;
				struct eval_result res = { 0 };
				const struct eval_chain sh = { 1.5, 2.5, gaps[g][0], gaps[g][1], 0, 0 };
				char name[32];

				emg_pipeline_config_default(&pc);
				if (off)
					pc.filter.mains_hz = 0; /* no notch */
				snprintf(name, sizeof(name), "%.2g-%.2g/%s", gaps[g][0], gaps[g][1],
					 off ? "off" : "auto");
				if (eval_emgdet_chain_shape(data2_path(), snrs[j], 0, &sh, &pc, &res) < 0) {
					printf("%-12s: %s not readable, skipped\n", name, data2_path());
					return;
				}
				eval_print_row(stdout, name, snrs[j], "hodges", &res);
				eval_result_free(&res);
			}
}

/*
 * Short contractions early in a stream, as a trial of a few repetitions
 * records them: external set 2 five to a stream, the first 0.4-1.1 s after
 * the start, 0.6-2 s of rest between, each cut to a length (source = length
 * in s / settings).  The report gate holds back bursts shorter than
 * report_ms, and in the first startup_s ones shorter than startup_report_ms.
 */
static void shorts(void)
{
	static const double durs[][2] = { { 0.2, 0.35 }, { 0.35, 0.5 }, { 0.5, 1.0 }, { 0, 0 } };

	printf("short contractions early, external set 2 (Gaussian) five to a stream from 0.4-1.1 s, "
	       "hodges; source = length s / settings\n");
	eval_print_header(stdout);
	for (unsigned d = 0; d < sizeof(durs) / sizeof(durs[0]); d++)
		for (int set = 0; set < 2; set++)
			for (unsigned j = 1; j < NSNR; j++) {
				const struct eval_chain sh = { 0.4, 1.1, 0.6, 2.0, durs[d][0], durs[d][1] };
				struct emg_pipeline_config pc;
				struct eval_result res = { 0 };
				char name[32];

				emg_pipeline_config_default(&pc);
				if (set)
					pc.onset.startup_s = 0;
				if (durs[d][1] > 0)
					snprintf(name, sizeof(name), "%.2g-%.2g/%s", durs[d][0], durs[d][1],
						 set ? "start0" : "dflt");
				else
					snprintf(name, sizeof(name), "whole/%s", set ? "start0" : "dflt");
				if (eval_emgdet_chain_shape(data2_path(), snrs[j], 0, &sh, &pc, &res) < 0) {
					printf("%-12s: %s not readable, skipped\n", name, data2_path());
					return;
				}
				eval_print_row(stdout, name, snrs[j], "hodges", &res);
				eval_result_free(&res);
			}
}

static int want(int argc, char **argv, const char *what)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], what))
			return 1;
	return 0;
}

/*
 * Real recordings: windows found, false onsets in rest (heartbeats there) and
 * agreement with the marked starts, per detector with the default settings,
 * and hodges with each other `[dsp] ecg` mode: the cardiac-cycle baseline
 * needs the ECG stage's beats.
 */
/* Length of the cold streams' rest: a standing trial recorded on its own. */
#define COLD_S 5.7

/* One row of the real-recording table: r's windows through cfg (offline: the offline reference; cold: in streams started cold). */
static void real_row(const struct eval_rec *r, const char *name, const char *det,
		     const struct emg_pipeline_config *cfg, int offline, int cold)
{
	struct eval_windows w = { 0 };

	if ((cold ? eval_run_cold(r, cfg, COLD_S, &w) : eval_run_windows(r, cfg, offline, &w)) == 0)
		eval_print_windows_row(stdout, name, det, &w);
	eval_windows_free(&w);
}

/* Mean of v[0..n). */
static double mean_of(const double *v, unsigned n)
{
	double s = 0;

	for (unsigned i = 0; i < n; i++)
		s += v[i];
	return n ? s / n : 0;
}

static void real(void)
{
	static const enum emg_ecg_mode modes[] = { EMG_ECG_OFF, EMG_ECG_HIGHPASS, EMG_ECG_BOTH };
	struct eval_rec r;
	char name[16];

	printf("real recordings with heartbeats (tests/data/emggo), marked activity windows;\n"
	       "d = nearest detection - marked start: agreement with a marking, not an error;\n"
	       "cold: cut into streams that start cold, %.1f s of rest or a window 0.5-1.5 s in\n",
	       COLD_S);
	eval_print_windows_header(stdout);
	for (unsigned idx = 0; eval_real(&r, real_path(), idx, name) == 0; idx++) {
		for (int k = 0; r.nt && k < NDET; k++) { /* none in a recording kept for its heartbeats */
			struct emg_pipeline_config pc;
			real_row(&r, name, dets[k], det_cfg(k, &pc), k == NDET - 1, 0);
		}
		for (unsigned m = 0; r.nt && m < sizeof(modes) / sizeof(modes[0]); m++) {
			struct emg_pipeline_config pc;
			char det[32];
			det_cfg(0, &pc);
			pc.ecg.mode = modes[m];
			snprintf(det, sizeof(det), "hodges ecg=%s", emg_ecg_mode_name(modes[m]));
			real_row(&r, name, det, &pc, 0, 0);
		}
		/* short streams started cold: the start-up gate (onset.c, report_len()) */
		for (int k = 0; r.nt && k < NDET - 1; k++)
			for (int off = 0; off < 2; off++) {
				struct emg_pipeline_config pc;
				char det[32];
				det_cfg(k, &pc);
				if (off)
					pc.onset.startup_s = 0;
				snprintf(det, sizeof(det), "%s cold%s", dets[k], off ? " startup_s=0" : "");
				real_row(&r, name, det, &pc, 0, 1);
			}
		/* what subtracting takes out of the rest (all of ecg8, which has no windows) */
		{
			double off[EMG_DEVICE_MAX_CHANNELS], sub[EMG_DEVICE_MAX_CHANNELS];
			if (eval_stage_rms(&r, EMG_ECG_OFF, 10, off) == 0 &&
			    eval_stage_rms(&r, EMG_ECG_SUBTRACT, 10, sub) == 0)
				printf("rest RMS %-10s ecg = off %.2f uV, subtract %.2f uV (mean over %u channels, "
				       "from 10 s, 0.5 s away from the windows)\n", name, mean_of(off, r.nch),
				       mean_of(sub, r.nch), r.nch);
		}
		/* the ECG stage's QRS detector against the R peaks marked at rest */
		if (r.nbeats) {
			struct eval_beats b = { 0 };
			double mean, sd;
			eval_ecg_beats(&r, EMG_ECG_SUBTRACT, &b);
			beat_lag(&b, &mean, &sd);
			printf("beats %-10s %4zu/%4zu R peaks at rest found, %3zu triggers elsewhere "
			       "(contractions, or off the heart), trigger - R %+.1f ms (SD %.1f)\n",
			       name, b.found, b.truth, b.extra, mean, sd);
		}
		eval_rec_free(&r);
	}
}

/* bench_onset [table] [ext] [real] [beats] [heart] [noise] [rates] [mains] [rests] [toes]: the sections to run (default all; ext: the table's external rows). */
int main(int argc, char **argv)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (want(argc, argv, "beats")) {
		beats(EMG_ECG_SUBTRACT);
		beats(EMG_ECG_BOTH);
	}
	if (!want(argc, argv, "table") && !want(argc, argv, "ext"))
		goto heart;
	printf("onset accuracy, default DSP and detector parameters, automatic baseline\n");
	eval_print_header(stdout);
	if (!want(argc, argv, "table"))
		goto ext; /* `ext`: the external sources' rows only */
	for (int i = 0; i < NSNR; i++)
		synth_source("synth-real", EMG_SYNTH_REALISTIC, snrs[i]);
	ecg_mode = EMG_ECG_OFF;
	for (int i = 0; i < NSNR; i++)
		synth_source("s-real/off", EMG_SYNTH_REALISTIC, snrs[i]);
	ecg_mode = -1;
	for (int i = 0; i < NSNR; i++)
		synth_source("synth-plain", EMG_SYNTH_PLAIN, snrs[i]);
ext:
	for (int i = 0; i < NSNR; i++)
		ext_source("ext-gauss", data_path(), eval_emgdet_all, 0, snrs[i], 0);
	for (int i = 0; i < NSNR; i++)
		ext_source("ext-laplace", data_path(), eval_emgdet_all, 1, snrs[i], 0);
	for (int i = 0; i < NSNR; i++)
		ext_source("ext2-gauss", data2_path(), eval_emgdet_all, 0, snrs[i], 1);
	for (int i = 0; i < NSNR; i++)
		ext_source("ext2-laplace", data2_path(), eval_emgdet_all, 1, snrs[i], 1);
	/* set 2 again, five contractions to a stream with 0.6-2 s of rest between */
	for (int i = 0; i < NSNR; i++)
		ext_source("ext2x5-gauss", data2_path(), eval_emgdet_chain_all, 0, snrs[i], 1);
	for (int i = 0; i < NSNR; i++)
		ext_source("ext2x5-lapl", data2_path(), eval_emgdet_chain_all, 1, snrs[i], 1);
	offsets();
heart:
	if (want(argc, argv, "real"))
		real();
	if (want(argc, argv, "heart"))
		heartbeat();
	if (want(argc, argv, "noise"))
		noise_rates();
	if (want(argc, argv, "rates"))
		rates();
	if (want(argc, argv, "mains"))
		mains();
	if (want(argc, argv, "rests"))
		rests();
	if (want(argc, argv, "shorts"))
		shorts();
	if (want(argc, argv, "toes"))
		toes();
	if (want(argc, argv, "levels"))
		levels();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("(%.1f s)\n",
	       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
	return 0;
}
