/* SPDX-License-Identifier: MIT */
/*
 * Onset accuracy per source x SNR x detector, next to an offline reference
 * measured side by side (tests/eval/eval.h says how each figure is scored).
 *
 * Sources, each reported on its own:
 *   synth-real  the synth's realistic mode (recruitment ramps, ECG, tonic
 *               activity, cross-talk, motion artefacts), "session" scenario,
 *               default hip map, 2 seeds x 2 passes; truth = first sample of
 *               non-zero activation (alt: 10 % of the plateau)
 *   synth-plain the plain synth (steps, no ECG), same script
 *   ext-gauss   tests/data/emg-detectors: 100 biophysical-model trials by an
 *   ext-laplace independent group (Yuvaraj et al. 2023, MIT), white Gaussian or
 *               Laplacian noise at the SNR, fixed seeds, each stream starting
 *               0.5-8 s before the onset; truth = first motor-unit activity
 *               (alt: the authors' threshold truth, 8.0 s)
 *
 * Columns: median |error|, mean signed error, p90 |error| (ms), median |error|
 * against the alternative truth, misses among bursts >= 0.5 s into the stream,
 * false onsets per muscle-minute of rest, p90 lag error between two muscles.
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

/* One recording through every detector. */
static void run_all(const struct eval_rec *r, struct eval_result res[NDET])
{
	for (int k = 0; k < NDET; k++) {
		struct emg_pipeline_config pc;
		emg_pipeline_config_default(&pc);
		if (k == NDET - 1) {
			eval_run_offline(r, &res[k]);
			continue;
		}
		emg_onset_method_parse(dets[k], &pc.onset.method);
		eval_run_online(r, &pc, &res[k]);
	}
}

static void print_row(const char *src, double snr, int k, const struct eval_result *res)
{
	struct eval_summary s;

	eval_summarise(res, &s);
	printf("%-12s %4.0f %-8s %7.1f %+7.1f %7.1f %8.1f %5zu/%-5zu %7.2f %7.1f\n", src, snr,
	       dets[k], s.median_abs, s.mean, s.p90_abs, s.median_abs_alt, res->misses,
	       res->bursts, s.fa_per_min, s.lag_p90);
}

static void synth_source(const char *name, int realistic, double snr)
{
	struct eval_result res[NDET];

	memset(res, 0, sizeof(res));
	for (uint64_t seed = 1; seed <= 2; seed++) {
		struct emg_device_config c;
		struct eval_rec r;
		emg_device_config_default(&c);
		c.scenario = "session";
		c.snr_db = snr;
		c.seed = seed;
		c.wander = c.pops = true;
		(void)realistic;
		if (eval_synth(&r, &c, 2) < 0) {
			fprintf(stderr, "synth failed\n");
			exit(1);
		}
		run_all(&r, res);
		eval_rec_free(&r);
	}
	for (int k = 0; k < NDET; k++) {
		print_row(name, snr, k, &res[k]);
		eval_result_free(&res[k]);
	}
}

static void ext_source(const char *name, int laplace, double snr)
{
	struct eval_result res[NDET];
	int n = eval_emgdet_count(data_path());

	if (n <= 0) {
		printf("%-12s: %s not readable, skipped\n", name, data_path());
		return;
	}
	memset(res, 0, sizeof(res));
	for (int t = 0; t < n; t++) {
		struct eval_rec r;
		/* streams start 0.5-8 s before the onset, spread evenly over the trials */
		double start = 0.5 + 7.5 * (double)((t * 37) % 100) / 100.0;
		if (eval_emgdet(&r, data_path(), (unsigned)t, 50.0, snr, laplace,
				1000 + (uint64_t)t, start) < 0) {
			fprintf(stderr, "%s: trial %d unreadable\n", name, t);
			exit(1);
		}
		run_all(&r, res);
		eval_rec_free(&r);
	}
	for (int k = 0; k < NDET; k++) {
		print_row(name, snr, k, &res[k]);
		eval_result_free(&res[k]);
	}
}

int main(void)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("onset accuracy, default DSP and detector parameters, automatic baseline\n");
	printf("%-12s %4s %-8s %7s %7s %7s %8s %11s %7s %7s\n", "source", "SNR", "detector",
	       "med|e|", "mean e", "p90|e|", "med|alt|", "miss/n", "FA/min", "lag p90");
	for (int i = 0; i < NSNR; i++)
		synth_source("synth-plain", 0, snrs[i]);
	for (int i = 0; i < NSNR; i++)
		ext_source("ext-gauss", 0, snrs[i]);
	for (int i = 0; i < NSNR; i++)
		ext_source("ext-laplace", 1, snrs[i]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("(%.1f s)\n", 
	       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
	return 0;
}
