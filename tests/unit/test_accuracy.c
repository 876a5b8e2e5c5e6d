/* SPDX-License-Identifier: MIT */
/*
 * Onset accuracy against the synth's ground truth (DESIGN section 4).
 *
 * The synth plays the "session" scenario on the default 6-muscle hip map
 * with 50 Hz hum, baseline wander and electrode pops, at SNR 40, 20 and
 * 10 dB, two script passes for each of two seeds (280 true bursts per SNR).
 * The frames go through the default DSP band-pass + 50 Hz notch
 * (emg_filter), then through one emg_onset bank per method with default
 * parameters and the automatic baseline (the daemon's default: no rest
 * calibration; the synth starts each exercise after >= 3 s of rest).
 *
 * Each detected onset is matched to the nearest true onset of the same
 * channel within +-150 ms, one to one, closest pairs first; unmatched truths
 * are misses, unmatched detections false alarms.  The false alarms include
 * real activity the synth does not list (hip flexors at 5 % MVC during
 * bridges and thrusts, the contralateral glute med at 8 %), electrode pops
 * (one per 30 s per channel) and, at 40 dB where it dominates the noise, the
 * bursty in-band residue of the baseline wander.  They are reported, not
 * limited.
 *
 * Limits (DESIGN: "a test that fails past its limits"): hodges and bonato
 * median |error| <= 10 ms at 40 and 20 dB, <= 25 ms at 10 dB; misses <= 5 %
 * at every SNR.  tkeo: the same miss limit, error limits 15 / 35 ms.
 *
 * EMG_ACCURACY_VERBOSE=1 lists every match, miss and false alarm;
 * EMG_ACCURACY_SEED=n runs seeds n and n+1 instead of 1 and 2.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "devices/synth.h"
#include "filter.h"
#include "muscles.h"
#include "onset.h"

#define NMETHODS 3
#define NSEEDS 2
#define PASSES 2
#define MATCH_MS 150.0
#define CHUNK 1000
#define MAXDET 8192
#define MAXERR 4096

static const enum emg_onset_method methods[NMETHODS] = { EMG_ONSET_HODGES, EMG_ONSET_BONATO,
							 EMG_ONSET_TKEO };
static const double snrs[] = { 40, 20, 10 };
#define NSNR (sizeof(snrs) / sizeof(snrs[0]))

struct det {
	unsigned ch;
	uint64_t onset;
	int matched;
};

struct dets {
	size_t n;
	struct det d[MAXDET];
};

/* Accumulated over seeds for one method at one SNR. */
struct result {
	size_t bursts, misses, false_alarms, matched;
	double err[MAXERR]; /* signed errors of the matched onsets, ms */
};

static void on_event(void *ud, const struct emg_onset_event *ev)
{
	struct dets *d = ud;

	if (ev->kind != EMG_ONSET_ON || d->n >= MAXDET)
		return;
	d->d[d->n++] = (struct det){ .ch = ev->lane, .onset = ev->sample };
}

struct pair {
	double err; /* ms, detected - true */
	size_t t, d;
};

static int cmp_abs(const void *a, const void *b)
{
	double x = fabs(((const struct pair *)a)->err), y = fabs(((const struct pair *)b)->err);

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(const double *sorted, size_t n, double q)
{
	double pos;
	size_t i;

	if (n == 0)
		return NAN;
	pos = q * (double)(n - 1);
	i = (size_t)pos;
	if (i + 1 >= n)
		return sorted[n - 1];
	return sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]);
}

/* Match detections to truth, one to one, closest pairs first; add to r. */
static void score(const struct emg_truth *t, size_t nt, struct dets *d, double fs, int verbose,
		  const char *label, struct result *r)
{
	size_t np = 0, cap = nt * 8 + 16;
	struct pair *p = malloc(sizeof(*p) * cap);
	char *tm = calloc(nt + 1, 1);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(tm);
	r->bursts += nt;
	for (size_t i = 0; i < nt; i++) {
		for (size_t j = 0; j < d->n; j++) {
			double e = ((double)d->d[j].onset - (double)t[i].onset) * 1000.0 / fs;
			if (d->d[j].ch != t[i].channel || fabs(e) > MATCH_MS)
				continue;
			if (np == cap) {
				cap *= 2;
				p = realloc(p, sizeof(*p) * cap);
				ck_assert_ptr_nonnull(p);
			}
			p[np++] = (struct pair){ e, i, j };
		}
	}
	qsort(p, np, sizeof(*p), cmp_abs);
	for (size_t k = 0; k < np; k++) {
		const struct emg_truth *tr = &t[p[k].t];
		if (tm[p[k].t] || d->d[p[k].d].matched)
			continue;
		tm[p[k].t] = 1;
		d->d[p[k].d].matched = 1;
		ck_assert_uint_lt(r->matched, MAXERR);
		r->err[r->matched++] = p[k].err;
		if (verbose)
			printf("  %s ch%u %-13s rep %u mvc %.2f at %8.3f s: err %+7.1f ms\n", label,
			       tr->channel, tr->exercise, tr->rep, tr->peak_mvc,
			       (double)tr->onset / fs, p[k].err);
	}
	for (size_t i = 0; i < nt; i++) {
		if (tm[i])
			continue;
		r->misses++;
		if (verbose)
			printf("  %s ch%u %-13s rep %u mvc %.2f at %8.3f s: MISSED\n", label,
			       t[i].channel, t[i].exercise, t[i].rep, t[i].peak_mvc,
			       (double)t[i].onset / fs);
	}
	for (size_t j = 0; j < d->n; j++) {
		if (d->d[j].matched)
			continue;
		r->false_alarms++;
		if (verbose)
			printf("  %s ch%u false alarm at %.3f s\n", label, d->d[j].ch,
			       (double)d->d[j].onset / fs);
	}
	free(p);
	free(tm);
}

/* One SNR and seed: synth -> filter -> the three detectors over PASSES script passes. */
static void run_snr(double snr_db, uint64_t seed, struct result *res[NMETHODS], int verbose)
{
	struct emg_device_config cfg;
	struct emg_muscles *map;
	struct emg_synth *s;
	struct emg_filter *f;
	struct emg_filter_spec spec;
	struct emg_onset *o[NMETHODS];
	struct dets *d[NMETHODS];
	unsigned nch;
	double fs;
	uint64_t total, done = 0;
	float *buf;

	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_device_config_default(&cfg);
	cfg.realtime = false;
	cfg.scenario = "session";
	cfg.snr_db = snr_db;
	cfg.seed = seed;
	cfg.mains_hz = 50;
	cfg.wander = true;
	cfg.pops = true;
	cfg.muscles = map;
	ck_assert_int_eq(emg_synth_new(&s, &cfg), 0);
	nch = emg_synth_channels(s);
	fs = emg_synth_rate(s);
	total = PASSES * emg_synth_script_length(s);

	emg_filter_spec_default(&spec);
	spec.mains_hz = 50;
	ck_assert_int_eq(emg_filter_new(&f, &spec, fs, nch), 0);
	for (int m = 0; m < NMETHODS; m++) {
		struct emg_onset_params p;
		emg_onset_params_default(&p);
		p.method = methods[m];
		ck_assert_int_eq(emg_onset_new(&o[m], &p, fs, nch), 0);
		d[m] = calloc(1, sizeof(*d[m]));
		ck_assert_ptr_nonnull(d[m]);
	}
	buf = malloc(sizeof(float) * CHUNK * nch);
	ck_assert_ptr_nonnull(buf);

	while (done < total) {
		unsigned n = total - done < CHUNK ? (unsigned)(total - done) : CHUNK;
		emg_synth_generate(s, buf, n);
		emg_filter_run(f, buf, n);
		for (int m = 0; m < NMETHODS; m++)
			emg_onset_run(o[m], buf, n, done, on_event, d[m]);
		done += n;
	}

	size_t nt = emg_synth_truth(s, 0, total, NULL, 0);
	struct emg_truth *t = malloc(sizeof(*t) * (nt + 1));
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(emg_synth_truth(s, 0, total, t, nt), nt);
	ck_assert_uint_gt(nt, 50);
	for (int m = 0; m < NMETHODS; m++) {
		char label[48];
		snprintf(label, sizeof(label), "%s@%.0f/seed%llu", emg_onset_method_name(methods[m]),
			 snr_db, (unsigned long long)seed);
		score(t, nt, d[m], fs, verbose, label, res[m]);
		emg_onset_free(o[m]);
		free(d[m]);
	}
	free(t);
	free(buf);
	emg_filter_free(f);
	emg_synth_free(s);
	emg_muscles_free(map);
}

START_TEST(test_onset_accuracy)
{
	static struct result res[NSNR][NMETHODS];
	const char *v = getenv("EMG_ACCURACY_VERBOSE"), *sd = getenv("EMG_ACCURACY_SEED");
	int verbose = v && *v && *v != '0';
	uint64_t seed0 = sd && *sd ? strtoull(sd, NULL, 0) : 1;
	double median[NSNR][NMETHODS];
	struct timespec t0, t1;

	memset(res, 0, sizeof(res));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < NSNR; i++) {
		for (uint64_t k = 0; k < NSEEDS; k++) {
			struct result *r[NMETHODS];
			for (int m = 0; m < NMETHODS; m++)
				r[m] = &res[i][m];
			run_snr(snrs[i], seed0 + k, r, verbose);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	printf("onset accuracy: synth \"session\", seeds %llu-%llu x %d passes, mains/wander/pops "
	       "on, default filter and onset parameters, automatic baseline\n",
	       (unsigned long long)seed0, (unsigned long long)(seed0 + NSEEDS - 1), PASSES);
	printf("%-7s %4s  %9s %7s %7s %9s  %6s %6s %6s\n", "method", "SNR", "median|e|", "p90",
	       "max", "mean(e)", "bursts", "misses", "f.a.");
	for (int m = 0; m < NMETHODS; m++) {
		for (size_t i = 0; i < NSNR; i++) {
			struct result *r = &res[i][m];
			double abs_err[MAXERR], sum = 0;
			for (size_t k = 0; k < r->matched; k++) {
				abs_err[k] = fabs(r->err[k]);
				sum += r->err[k];
			}
			qsort(abs_err, r->matched, sizeof(double), cmp_dbl);
			median[i][m] = quantile(abs_err, r->matched, 0.5);
			printf("%-7s %4.0f  %6.1f ms %4.1f ms %4.0f ms %+6.1f ms  %6zu %6zu %6zu\n",
			       emg_onset_method_name(methods[m]), snrs[i], median[i][m],
			       quantile(abs_err, r->matched, 0.9),
			       r->matched ? abs_err[r->matched - 1] : NAN,
			       r->matched ? sum / (double)r->matched : NAN, r->bursts, r->misses,
			       r->false_alarms);
		}
	}
	printf("(%.1f s)\n",
	       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
	fflush(stdout);

	for (int m = 0; m < NMETHODS; m++) {
		int tkeo = methods[m] == EMG_ONSET_TKEO;
		for (size_t i = 0; i < NSNR; i++) {
			const struct result *r = &res[i][m];
			double lim = snrs[i] >= 20 ? (tkeo ? 15 : 10) : (tkeo ? 35 : 25);
			ck_assert_msg(median[i][m] <= lim,
				      "%s at %.0f dB: median |error| %.1f ms > %.0f ms",
				      emg_onset_method_name(methods[m]), snrs[i], median[i][m], lim);
			ck_assert_msg(r->misses * 20 <= r->bursts,
				      "%s at %.0f dB: %zu of %zu bursts missed (> 5 %%)",
				      emg_onset_method_name(methods[m]), snrs[i], r->misses,
				      r->bursts);
		}
	}
}
END_TEST

static Suite *accuracy_suite(void)
{
	Suite *s = suite_create("accuracy");
	TCase *tc = tcase_create("synth");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_onset_accuracy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(accuracy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
