/* SPDX-License-Identifier: MIT */
/*
 * Onset accuracy of the default detector (hodges, automatic baseline,
 * default DSP) through the daemon's own pipeline, per data source; scoring in
 * tests/eval/eval.h, the full table (every detector, every SNR, the offline
 * reference) in tests/bench/bench_onset.c.
 *
 * Limits.  Where a source meets the issue-12 targets, the limit is the
 * target: median |error| <= 10 ms at >= 20 dB and <= 25 ms at 10 dB, misses
 * <= 2 % of bursts starting >= 0.5 s into the stream, <= 1 false onset per
 * muscle-minute of rest, p90 lag error between two muscles <= 15 ms at 20 dB.
 * Where it does not yet (README "Signal validity" lists which and by how
 * much), the limit is today's figure with a small margin, so a regression
 * still fails the test; those limits carry "(regression)" in the message.
 *
 * EMG_ACCURACY_VERBOSE=1 prints the table rows.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval.h"
#include "testutil.h"

#define EXT EVAL_DATA_DIR "/emg-detectors/emgdet.bin"
#define EXT2 EVAL_DATA_DIR "/emg-detectors/emgdet-train.bin"
#define REAL EVAL_DATA_DIR "/emggo/emggo.bin"

struct limits {
	double median, mean, miss_pct, fa_min, lag_p90;
};

static void check(const char *src, double snr, const struct eval_result *res,
		  const struct limits *lim, const char *why)
{
	struct eval_summary s;

	eval_summarise(res, &s);
	eval_print_row(stdout, src, snr, "hodges", res);
	fflush(stdout);
	ck_assert_msg(s.matched > 0, "%s %.0f dB: nothing detected", src, snr);
	ck_assert_msg(s.median_abs <= lim->median, "%s %.0f dB: median |error| %.1f ms > %.1f%s",
		      src, snr, s.median_abs, lim->median, why);
	ck_assert_msg(fabs(s.mean) <= lim->mean, "%s %.0f dB: mean error %+.1f ms, limit +-%.1f%s",
		      src, snr, s.mean, lim->mean, why);
	ck_assert_msg(s.miss_pct <= lim->miss_pct, "%s %.0f dB: %.1f %% missed > %.1f %%%s", src,
		      snr, s.miss_pct, lim->miss_pct, why);
	if (!isnan(s.fa_per_min))
		ck_assert_msg(s.fa_per_min <= lim->fa_min,
			      "%s %.0f dB: %.2f false onsets per muscle-minute > %.2f%s", src, snr,
			      s.fa_per_min, lim->fa_min, why);
	if (!isnan(s.lag_p90))
		ck_assert_msg(s.lag_p90 <= lim->lag_p90, "%s %.0f dB: lag p90 %.1f ms > %.1f%s",
			      src, snr, s.lag_p90, lim->lag_p90, why);
}

static void run_synth(enum emg_synth_realism realism, double snr, struct eval_result *res)
{
	for (uint64_t seed = 1; seed <= 2; seed++) {
		struct eval_rec r;
		ck_assert_int_eq(eval_synth_session(&r, realism, snr, seed), 0);
		ck_assert_int_eq(eval_run_online(&r, NULL, res), 0);
		eval_rec_free(&r);
	}
}

/* External set 2 five to a stream, laid out as sh, through the default pipeline into res. */
static void run_chain(const struct eval_chain *sh, double snr, struct eval_result *res)
{
	struct emg_pipeline_config pc;

	emg_pipeline_config_default(&pc);
	ck_assert_int_eq(eval_emgdet_chain_shape(EXT2, snr, 0, sh, &pc, res), 0);
}

/*
 * External data: an independent group's biophysical model, Gaussian and
 * Laplacian noise; the 100 test trials and, apart, the 50 training trials
 * (contractions at 3-8 s with true offsets), which nothing here was tuned on;
 * and those again five to a stream, 0.6-2 s apart, as repetitions come.
 */
START_TEST(test_external)
{
	static const double snr[] = { 10, 20 };
	static const char *const noise[3][2] = { { "ext-gauss", "ext-laplace" },
						  { "ext2-gauss", "ext2-laplace" },
						  { "ext2x5-gauss", "ext2x5-lapl" } };
	static const char *const path[3] = { EXT, EXT2, EXT2 };
	static const eval_source_fn all[3] = { eval_emgdet_all, eval_emgdet_all,
					       eval_emgdet_chain_all };

	eval_print_header(stdout);
	for (int set = 0; set < 3; set++)
		for (int lap = 0; lap < 2; lap++) {
			for (unsigned i = 0; i < 2; i++) {
				struct emg_pipeline_config pc;
				struct eval_result res = { 0 };
				emg_pipeline_config_default(&pc);
				ck_assert_int_eq(all[set](path[set], snr[i], lap, &pc, &res), 0);
				/* targets, except (a regression limit): the mean is +3..+6 ms
				 * late of the first motor-unit activity at 20 dB, +9..+13 ms at
				 * 10 dB.  Laplacian noise gives 0.22-0.35 false onsets per minute
				 * (1.74 before weak bursts were judged by when they end).
				 * Misses: 2 %, or one trial where a set has fewer than 50. */
				const struct limits l = {
					.median = snr[i] >= 20 ? 10 : 25,
					.mean = snr[i] >= 20 ? 7 : 13.5,
					.miss_pct = res.bursts ? fmax(2.0, 100.0 / (double)res.bursts) : 2,
					.fa_min = 1,
					.lag_p90 = snr[i] >= 20 ? 15 : 25,
				};
				check(noise[set][lap], snr[i], &res, &l, " (targets; mean: regression)");
				if (set >= 1) {
					/* offsets: 12.5-16 ms median, -4..+10 ms mean today
					 * (+59 ms, p90 165 ms at 20 dB, before abrupt ends
					 * were fitted as steps; five to a stream at 10 dB,
					 * -154 ms: contractions broke in two while beats
					 * found in them were taken for a heart) */
					struct eval_summary sum;
					eval_summarise(&res, &sum);
					printf("%s %2.0f dB offsets: median |e| %.1f ms, mean %+.1f ms (%zu)\n",
					       noise[set][lap], snr[i], sum.median_abs_off, sum.mean_off,
					       sum.offsets);
					ck_assert_msg(sum.offsets > 40 && sum.median_abs_off <= 25 &&
							      fabs(sum.mean_off) <= 25,
						      "%s %.0f dB: offsets median |e| %.1f ms, mean %+.1f ms "
						      "(limits 25, 25; regression)", noise[set][lap], snr[i],
						      sum.median_abs_off, sum.mean_off);
				}
				eval_result_free(&res);
			}
		}
}
END_TEST

/*
 * Contractions 0.25-0.6 s apart (external set 2, five to a stream), default
 * settings.  On a lane with no heart the ECG stage locks on a contraction's
 * peaks; the lane, taken for a cardiac one, chose a baseline over a cardiac
 * cycle that held a contraction's first blocks next to the short rest, went
 * blind and lost the stream's later contractions: 4 of 45 missed at 10 dB
 * (9 with `mains = off`); limit 2 (4.4 %).  At 40 dB a plain 50 Hz
 * notch rang after each abrupt end above a rest threshold for ~0.5 s: 29 of
 * 45 merged with the contraction before, whose offset then came at the end
 * of the next one.  The notches forget a strong contraction once it ends now
 * (filter.c, "Gated notches"): none of 45 merge at 40 dB, and the offsets
 * there are held to +18.7 ms mean, p90 38.6 today (limits 30 and 60; with
 * the 0.6-2 s rests of a session +163 ms mean, p90 97, before).
 */
START_TEST(test_contractions_close)
{
	static const double snr[] = { 10, 20, 40 };
	const struct eval_chain close = { 1.5, 2.5, 0.25, 0.6, 0, 0 };

	eval_print_header(stdout);
	for (unsigned i = 0; i < 3; i++) {
		struct eval_result res = { 0 };
		run_chain(&close, snr[i], &res);
		const struct limits l = {
			.median = snr[i] >= 20 ? 10 : 25,
			/* 40 dB: -6.9 ms, the first motor units show before the truth's 1 % line */
			.mean = snr[i] >= 40 ? 8 : snr[i] >= 20 ? 7 : 13.5,
			.miss_pct = 100.0 * 2 / 45 + 1e-9,
			.fa_min = 1,
			.lag_p90 = snr[i] >= 20 ? 15 : 25,
		};
		check("ext2x5 0.25-0.6 s", snr[i], &res, &l, " (targets; mean and misses: regression)");
		if (snr[i] >= 40) {
			struct eval_summary sum;
			eval_summarise(&res, &sum);
			printf("ext2x5 0.25-0.6 s %2.0f dB offsets: median |e| %.1f ms, mean %+.1f ms, "
			       "p90 %.1f ms (%zu)\n", snr[i], sum.median_abs_off, sum.mean_off,
			       sum.p90_abs_off, sum.offsets);
			ck_assert_msg(sum.offsets >= 43 && fabs(sum.mean_off) <= 30 && sum.p90_abs_off <= 60,
				      "40 dB offsets: mean %+.1f ms, p90 %.1f ms of %zu (limits 30, 60; "
				      "regression)", sum.mean_off, sum.p90_abs_off, sum.offsets);
		}
		eval_result_free(&res);
	}
}
END_TEST

/*
 * Short contractions early in a stream, as a trial of a few repetitions
 * recorded on its own holds them: external set 2 five to a stream, the
 * first 0.4-1.1 s after the start, 0.6-2 s apart, each cut to 0.2-0.5 s.
 * The whole stream is the start-up, where a burst had to last 500 ms: 37 of
 * 42 of the 0.2-0.35 s ones and 33 of 42 of the 0.35-0.5 s ones were missed
 * at 10 dB.  A burst whose power lies over 70 Hz, a muscle's, is reported
 * after report_ms there too (onset.c, burst_lasted()): 0 and 1 of 42.  The
 * onset limits are those of test_contractions_close.
 */
START_TEST(test_short_early)
{
	static const double snr[] = { 10, 20, 40 };
	const struct eval_chain shorts = { 0.4, 1.1, 0.6, 2.0, 0.2, 0.5 };

	eval_print_header(stdout);
	for (unsigned i = 0; i < 3; i++) {
		struct eval_result res = { 0 };
		run_chain(&shorts, snr[i], &res);
		const struct limits l = {
			.median = snr[i] >= 20 ? 10 : 25,
			.mean = snr[i] >= 40 ? 11 : snr[i] >= 20 ? 8 : 15,
			.miss_pct = 2.5, /* 1 of 42: the target's 2 % rounds to it */
			.fa_min = 1,
			.lag_p90 = snr[i] >= 20 ? 15 : 25,
		};
		check("ext2x5 0.2-0.5 s early", snr[i], &res, &l, " (targets; mean: regression)");
		eval_result_free(&res);
	}
}
END_TEST

/* The plain synth: the limits the accuracy test always had, plus lag. */
START_TEST(test_synth_plain)
{
	static const double snr[] = { 10, 20, 40 };

	eval_print_header(stdout);
	for (unsigned i = 0; i < 3; i++) {
		struct eval_result res = { 0 };
		run_synth(EMG_SYNTH_PLAIN, snr[i], &res);
		const struct limits l = {
			.median = snr[i] >= 20 ? 10 : 25,
			.mean = snr[i] >= 20 ? 6 : 26,
			.miss_pct = 2,
			.fa_min = 1, /* 40 dB: 0.24 (2.13 before the gate dropped faded pops and judged weak bursts by their end) */
			.lag_p90 = snr[i] >= 20 ? 20 : 80,
		};
		check("synth-plain", snr[i], &res, &l, " (regression)");
		/* offsets: limits are today's figures with a margin (40 dB: 15.0 /
		 * +20.7 ms; before the offset fit searched its whole history, the
		 * notch's ring made them 213 / +239 ms) */
		struct eval_summary sum;
		const double off_lim = snr[i] >= 40 ? 35 : snr[i] >= 20 ? 25 : 60;
		eval_summarise(&res, &sum);
		printf("synth-plain %2.0f dB offsets: median |e| %.1f ms, mean %+.1f ms (%zu)\n", snr[i],
		       sum.median_abs_off, sum.mean_off, sum.offsets);
		ck_assert_msg(sum.median_abs_off <= off_lim && fabs(sum.mean_off) <= off_lim,
			      "synth-plain %.0f dB: offsets median |e| %.1f ms, mean %+.1f ms "
			      "(limit %.0f; regression)", snr[i], sum.median_abs_off, sum.mean_off, off_lim);
		eval_result_free(&res);
	}
}
END_TEST

/*
 * The realistic synth at 20 dB (ECG 100 uV, ramps, tonic, cross-talk, motion):
 * regression limits only - today's figures with the default `ecg = subtract`
 * (median 19.0 ms, mean +9.9, 3/280 missed, 0.13 false onsets per
 * muscle-minute, lag p90 53.6; 18.5, +7.8, 3/280, 0.20, 56.3 before the
 * baseline of lanes with a heart spanned whole cardiac cycles; with
 * `ecg = off` 19.0, +7.2, 7/280, 0.20, 55.6) with a margin, and the misses
 * target itself, 2 % (6/280 before a burst begun on a QRS trigger stopped
 * being held by the slow window); at 40 dB, where cross-talk and heartbeats
 * reach over a rest threshold near the noise, the false-onset and misses
 * targets themselves (today 13.0, -3.2, 1/280, 0.07, 44.3; 12.0, -6.8, 3/280,
 * 0.26, 40.5 before the cardiac-cycle baseline; 8/280 missed before the
 * beat hold judged a slow-path run by where it began and a contraction
 * inside a dropped pop's ring was reported, 1.06 false onsets and
 * lag 45.6 before bursts on several muscles stopped counting as heartbeats).
 * README "Signal validity" says why the timing targets are out of reach on it.
 */
START_TEST(test_synth_realistic)
{
	struct eval_result res = { 0 };
	const struct limits l = { .median = 24, .mean = 12, .miss_pct = 2, .fa_min = 1, .lag_p90 = 65 };
	const struct limits l40 = { .median = 16, .mean = 12, .miss_pct = 2, .fa_min = 1, .lag_p90 = 50 };
	struct eval_result r40 = { 0 };

	eval_print_header(stdout);
	run_synth(EMG_SYNTH_REALISTIC, 40, &r40);
	check("synth-real", 40, &r40, &l40, " (target: false onsets, misses; the rest regression)");
	eval_result_free(&r40);
	run_synth(EMG_SYNTH_REALISTIC, 20, &res);
	check("synth-real", 20, &res, &l, " (target: misses; the rest regression)");
	/* offsets: 29.0 ms median, -28.7 mean, p90 90 ms today: early of the
	 * first sample of zero activation, which the realistic synth's
	 * fast-then-slow decays reach below the noise (before the offset fit
	 * took steps and slow-confirmed strong bursts: 31.5, -9.6, p90 104) */
	struct eval_summary sum;
	eval_summarise(&res, &sum);
	printf("synth-real 20 dB offsets: median |e| %.1f ms, mean %+.1f ms (%zu)\n",
	       sum.median_abs_off, sum.mean_off, sum.offsets);
	ck_assert_msg(sum.median_abs_off <= 40 && fabs(sum.mean_off) <= 40,
		      "synth-real 20 dB: offsets median |e| %.1f ms, mean %+.1f ms (limits 40, 40; regression)",
		      sum.median_abs_off, sum.mean_off);
	eval_result_free(&res);
}
END_TEST

/*
 * The realistic synth at 10 dB by each burst's own SNR (eval_run_online_by_snr):
 * a stream's SNR is that of a 50 % MVC plateau, and 126 of its 280 bursts
 * stand less than 5 dB over the noise; 29 of today's 30 misses are among
 * them.  The bins must add up to the whole stream's score, and the misses
 * target holds on the bursts at 5 dB or more (today 1 of 154; README
 * "Targets and what is uncertain").
 */
START_TEST(test_synth_realistic_levels)
{
	static const double edge[] = { -INFINITY, 5, INFINITY };
	struct eval_result all = { 0 }, bin[2] = { { 0 } };

	for (uint64_t seed = 1; seed <= 2; seed++) {
		struct eval_rec r;
		ck_assert_int_eq(eval_synth_session(&r, EMG_SYNTH_REALISTIC, 10, seed), 0);
		ck_assert_int_eq(eval_run_online(&r, NULL, &all), 0);
		ck_assert_int_eq(eval_run_online_by_snr(&r, NULL, edge, 2, bin), 0);
		eval_rec_free(&r);
	}
	printf("synth-real 10 dB: bursts < 5 dB over the noise %zu of %zu missed, >= 5 dB %zu of %zu "
	       "(all %zu of %zu)\n", bin[0].misses, bin[0].bursts, bin[1].misses, bin[1].bursts,
	       all.misses, all.bursts);
	ck_assert_uint_eq(bin[0].bursts + bin[1].bursts, all.bursts);
	ck_assert_uint_eq(bin[0].misses + bin[1].misses, all.misses);
	ck_assert_uint_eq(bin[0].nerr + bin[1].nerr, all.nerr);
	ck_assert_msg(bin[0].bursts > 0 && bin[1].bursts > 0, "a bin is empty");
	ck_assert_msg(bin[1].misses * 50 <= bin[1].bursts,
		      "synth-real 10 dB, bursts >= 5 dB over the noise: %zu of %zu missed (target 2 %%)",
		      bin[1].misses, bin[1].bursts);
	eval_result_free(&all);
	eval_result_free(&bin[0]);
	eval_result_free(&bin[1]);
}
END_TEST

/*
 * Heartbeats: the realistic synth at rest with a 200 uV ECG, default
 * settings (`ecg = subtract`): <= 1 false onset per muscle-minute (the
 * target), and each muscle's RMS at rest against its RMS without the ECG (the
 * same seed, ecg_uv = 0): without the stage 1.57-4.25, with it 1.03-1.09 on
 * five muscles and 1.32 on hip_flex_l, whose QRS is the strongest and whose
 * first milliseconds, before the QRS is detected, stay (target 1.2: five of
 * six; regression limit 1.4 on the sixth).
 */
START_TEST(test_heartbeats_at_rest)
{
	struct emg_device_config c;
	struct eval_rec r;
	struct eval_result res = { 0 };

	emg_device_config_default(&c);
	c.realism = EMG_SYNTH_REALISTIC;
	c.scenario = "rest";
	c.ecg_uv = 200;
	ck_assert_int_eq(eval_synth(&r, &c, 1), 0);
	ck_assert_int_eq(eval_run_online(&r, NULL, &res), 0);
	const double per_min =
		(double)(res.fa_rest + res.fa_other) / ((double)r.n / r.fs / 60.0 * r.nch);
	printf("heartbeats at rest (200 uV, %.0f s x %u muscles): %zu false onsets, %.2f per "
	       "muscle-minute\n", (double)r.n / r.fs, r.nch, res.fa_rest + res.fa_other, per_min);
	ck_assert_msg(per_min <= 1.0, "%.2f false onsets per muscle-minute from heartbeats > 1",
		      per_min);

	/*
	 * RMS at rest with the ECG over the ECG-free RMS, from 10 s on: of the
	 * published envelope (what users see, and %MVC), within 20 % on every
	 * muscle - the part of each beat before its trigger, which stays in the
	 * signal, is taken out of the envelope after the fact; and of the stage's
	 * output signal, which keeps that part (the strongest QRS, hip_flex_l,
	 * ~1.32).  Chunks of 1000 and 77 frames: the same envelope either way.
	 */
	struct eval_rec clean;
	double with[EMG_DEVICE_MAX_CHANNELS], without[EMG_DEVICE_MAX_CHANNELS];
	double ewith[EMG_DEVICE_MAX_CHANNELS], ewith2[EMG_DEVICE_MAX_CHANNELS];
	double ewithout[EMG_DEVICE_MAX_CHANNELS];
	unsigned within = 0;
	c.ecg_uv = 0;
	ck_assert_int_eq(eval_synth(&clean, &c, 1), 0);
	ck_assert_int_eq(eval_stage_rms(&clean, EMG_ECG_OFF, 10, without), 0);
	ck_assert_int_eq(eval_stage_rms(&r, EMG_ECG_SUBTRACT, 10, with), 0);
	ck_assert_int_eq(eval_env_rms(&clean, EMG_ECG_OFF, 10, 1000, ewithout), 0);
	ck_assert_int_eq(eval_env_rms(&r, EMG_ECG_SUBTRACT, 10, 1000, ewith), 0);
	ck_assert_int_eq(eval_env_rms(&r, EMG_ECG_SUBTRACT, 10, 77, ewith2), 0);
	for (unsigned i = 0; i < emg_muscles_count(r.map); i++) {
		const struct emg_muscle *m = emg_muscles_get(r.map, i);
		const double ratio = with[m->channel] / without[m->channel];
		const double eratio = ewith[m->channel] / ewithout[m->channel];
		printf("  %-12s RMS at rest with the ECG / without: envelope %.2f, signal %.2f\n",
		       m->name, eratio, ratio);
		ck_assert_msg(eratio <= 1.2 && eratio >= 0.9,
			      "%s: published RMS at rest %.2f x the ECG-free RMS", m->name, eratio);
		ck_assert_msg(ewith2[m->channel] == ewith[m->channel],
			      "%s: envelope RMS %.9g in chunks of 77, %.9g in chunks of 1000", m->name,
			      ewith2[m->channel], ewith[m->channel]);
		ck_assert_msg(ratio <= 1.4 && ratio >= 0.9, "%s: RMS at rest %.2f x the ECG-free RMS", m->name, ratio);
		within += ratio <= 1.2;
	}
	ck_assert_uint_ge(within, emg_muscles_count(r.map) - 1);
	eval_rec_free(&clean);
	eval_result_free(&res);
	eval_rec_free(&r);
}
END_TEST

/*
 * A strong heart: the realistic synth at rest with 2 mV R peaks on the
 * channel nearest the heart (trunk and left hip channels can carry that), 4
 * seeds.  The ECG stage found 4 of 140 beats: 120 ms after each trigger the
 * beat, 15-20x over the rest in the filters' ring, still voted over the
 * threshold and was taken back as a burst.  Nothing was subtracted, no beat
 * was told to the detector, and once the start-up gate was over every
 * heartbeat fired on most muscles: 84 false onsets in 12 muscle-minutes.
 * A QRS's energy has fallen 100-1000x by then, a contraction's has not (ecg.c,
 * BURST_FALL).  Target as at 200 uV: <= 1 per muscle-minute; 90 % of the
 * beats found.
 */
START_TEST(test_strong_heart_at_rest)
{
	size_t fa = 0, found = 0, truth = 0;
	double mm = 0;

	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct emg_device_config c;
		struct eval_rec r;
		struct eval_result res = { 0 };
		struct eval_beats b = { 0 };

		emg_device_config_default(&c);
		c.realism = EMG_SYNTH_REALISTIC;
		c.scenario = "rest";
		c.ecg_uv = 2000;
		c.seed = seed;
		ck_assert_int_eq(eval_synth(&r, &c, 1), 0);
		ck_assert_int_eq(eval_ecg_beats(&r, EMG_ECG_SUBTRACT, &b), 0);
		ck_assert_int_eq(eval_run_online(&r, NULL, &res), 0);
		fa += res.fa_rest + res.fa_other;
		found += b.found;
		truth += b.truth;
		mm += (double)r.n / r.fs / 60.0 * r.nch;
		eval_result_free(&res);
		eval_rec_free(&r);
	}
	printf("strong heart at rest (2 mV, 4 seeds): %zu/%zu beats found, %zu false onsets in "
	       "%.1f muscle-minutes (%.2f per minute)\n", found, truth, fa, mm, (double)fa / mm);
	ck_assert_msg(found * 10 >= truth * 9, "%zu of %zu beats found", found, truth);
	ck_assert_msg((double)fa / mm <= 1.0, "%.2f false onsets per muscle-minute > 1",
		      (double)fa / mm);
}
END_TEST

/*
 * A DC-coupled amplifier (the ADS1299 boards) records electrode offsets of
 * tens to hundreds of mV: external set 1 at 20 dB with offsets of -300..+300
 * mV, one per trial, finds the same onsets as without.  Before the band-pass
 * took each channel's first sample off (filter.c, note_offset()), the
 * offset's start-up ring blinded the first 1-2 s: with 100 mV, 8 misses of
 * 99 instead of 1 (contractions 0.5-1.1 s into the stream).
 */
START_TEST(test_electrode_offsets)
{
	const struct eval_artefacts dc = { .offset_uv = 300000 };
	struct eval_result res = { 0 }, res0 = { 0 };
	struct emg_pipeline_config pc;
	struct eval_summary s, s0;

	emg_pipeline_config_default(&pc);
	ck_assert_int_eq(eval_emgdet_art_all(EXT, 20, 0, &dc, &pc, &res), 0);
	ck_assert_int_eq(eval_emgdet_all(EXT, 20, 0, &pc, &res0), 0);
	eval_summarise(&res, &s);
	eval_summarise(&res0, &s0);
	printf("electrode offsets up to 300 mV: %zu of %zu missed, median |e| %.1f ms, mean %+.1f ms "
	       "(without: %zu, %.1f ms, %+.1f ms)\n", res.misses, res.bursts, s.median_abs, s.mean,
	       res0.misses, s0.median_abs, s0.mean);
	ck_assert_uint_eq(res.misses, res0.misses);
	ck_assert_msg(fabs(s.median_abs - s0.median_abs) <= 0.5 && fabs(s.mean - s0.mean) <= 0.5,
		      "offsets move the onsets: median |e| %.1f / %.1f ms, mean %+.1f / %+.1f ms",
		      s.median_abs, s0.median_abs, s.mean, s0.mean);
	eval_result_free(&res);
	eval_result_free(&res0);
}
END_TEST

/*
 * The sample rate: external set 1 played at 2 kHz (band-limited upsampling,
 * the noise's level in the original band kept: eval_emgdet_upsample()) gives
 * the onsets it gives at its own 1 kHz - the same signals, so a window, hold
 * or constant counted in samples instead of ms would show here.  Today the
 * medians and means agree within 0.8 ms at 20 dB (Gaussian noise) and 10 dB
 * (Laplacian); limits 2 and 3 ms, and no more misses.
 */
START_TEST(test_external_rates)
{
	static const struct { double snr; int laplace; } cases[] = { { 20, 0 }, { 10, 1 } };
	struct emg_pipeline_config pc;

	emg_pipeline_config_default(&pc);
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct eval_result res[2] = { { 0 }, { 0 } };
		struct eval_summary s[2];

		for (unsigned k = 0; k < 2; k++) {
			ck_assert_int_eq(eval_emgdet_upsample(k + 1), 0);
			ck_assert_int_eq(eval_emgdet_all(EXT, cases[c].snr, cases[c].laplace, &pc, &res[k]), 0);
			eval_summarise(&res[k], &s[k]);
		}
		ck_assert_int_eq(eval_emgdet_upsample(1), 0);
		printf("external set 1 at %.0f dB (%s): 1 / 2 kHz median |e| %.1f / %.1f ms, mean %+.1f / "
		       "%+.1f ms, missed %zu / %zu\n", cases[c].snr, cases[c].laplace ? "Laplacian" : "Gaussian",
		       s[0].median_abs, s[1].median_abs, s[0].mean, s[1].mean, res[0].misses, res[1].misses);
		ck_assert_msg(fabs(s[1].median_abs - s[0].median_abs) <= 2.0 && fabs(s[1].mean - s[0].mean) <= 3.0 &&
				      res[1].misses <= res[0].misses && s[1].fa_per_min <= 1.0,
			      "%.0f dB: the onsets depend on the rate: median |e| %.1f / %.1f ms, mean %+.1f / "
			      "%+.1f ms, missed %zu / %zu, %.2f false onsets per minute at 2 kHz",
			      cases[c].snr, s[0].median_abs, s[1].median_abs, s[0].mean, s[1].mean,
			      res[0].misses, res[1].misses, s[1].fa_per_min);
		eval_result_free(&res[0]);
		eval_result_free(&res[1]);
	}
	ck_assert_int_eq(eval_emgdet_upsample(9), -EINVAL);
	ck_assert_int_eq(eval_emgdet_upsample(0), -EINVAL);
}
END_TEST

/*
 * A recording on 60 Hz mains under the default settings: external set 1 at
 * 20 dB with a 60 Hz hum at 10x the contraction's RMS.  With a fixed 50 Hz
 * notch 89 of 99 onsets were missed; `mains = auto` finds the hum in the
 * first second and misses only trials whose stream starts < 2 s before the
 * contraction, while the 60 Hz notches settle (18 today).
 */
START_TEST(test_mains_60_default)
{
	struct eval_result res = { 0 };
	struct emg_pipeline_config pc;
	struct eval_summary s;

	emg_pipeline_config_default(&pc);
	const struct eval_artefacts hum = { .hum_hz = 60, .hum_rel = 10 };
	ck_assert_int_eq(eval_emgdet_art_all(EXT, 20, 0, &hum, &pc, &res), 0);
	eval_summarise(&res, &s);
	printf("60 Hz hum x10, default mains: %zu of %zu missed, median |e| %.1f ms\n", res.misses,
	       res.bursts, s.median_abs);
	ck_assert_msg(res.misses * 4 <= res.bursts, "%zu of %zu missed with a 60 Hz hum (limit 25 %%)",
		      res.misses, res.bursts);
	ck_assert_msg(s.median_abs <= 10, "median |e| %.1f ms with a 60 Hz hum (limit 10)", s.median_abs);
	eval_result_free(&res);
}
END_TEST

/*
 * A real recording with the heart in it (tests/data/emggo: tibialis anterior
 * at 250 Hz, 56 ballistic contractions, its QRS and P waves 10-20 dB over the
 * rest EMG), default settings, per detector.  Every contraction is found
 * (hodges and tkeo 56/56 today, limit 55; bonato 54) and false onsets in rest
 * stay within the target of 1 per minute (hodges and tkeo 0.43 today;
 * bonato, whose pair test sees each QRS sample on its own, 2.4: limit 4).
 * At 250 Hz the notches are not gated (filter.c, GATE_MIN_FS): gated, hodges
 * made 0.72 false onsets per minute here and bonato found 52.
 * Before the automatic baseline spanned whole cardiac cycles on lanes where
 * the heart shows, hodges found 46/56 and made 52 false onsets per minute,
 * one for two of every three heartbeats; before the report gate dropped
 * bursts begun on a P wave (a beat's trigger came while it held them), 1.15
 * (tkeo 1.44, bonato 21.1).  The ECG stage, which both rely on, finds >= 450
 * of the 551 R peaks marked at rest (479 today; regression limit).
 */
START_TEST(test_real_heartbeats)
{
	static const struct {
		const char *det;
		size_t found;
		double fa;
	} lim[] = { { "hodges", 55, 1.0 }, { "tkeo", 55, 1.0 }, { "bonato", 53, 4.0 } };
	struct eval_rec r;
	char name[16];

	ck_assert_int_eq(eval_real(&r, REAL, 0, name), 0);
	eval_print_windows_header(stdout);
	for (unsigned k = 0; k < sizeof(lim) / sizeof(lim[0]); k++) {
		struct emg_pipeline_config pc;
		struct eval_windows w = { 0 };

		emg_pipeline_config_default(&pc);
		ck_assert_int_eq(emg_onset_method_parse(lim[k].det, &pc.onset.method), 0);
		ck_assert_int_eq(eval_run_windows(&r, &pc, 0, &w), 0);
		eval_print_windows_row(stdout, name, lim[k].det, &w);
		fflush(stdout);
		ck_assert_uint_eq(w.bursts, 56);
		ck_assert_msg(w.found >= lim[k].found, "%s %s: %zu of %zu contractions found (limit %zu)", name,
			      lim[k].det, w.found, w.bursts, lim[k].found);
		ck_assert_msg((double)w.fa / w.rest_min <= lim[k].fa,
			      "%s %s: %.2f false onsets per minute of rest (limit %.0f)", name, lim[k].det,
			      (double)w.fa / w.rest_min, lim[k].fa);
		eval_windows_free(&w);
	}
	struct eval_beats b = { 0 };
	ck_assert_int_eq(eval_ecg_beats(&r, EMG_ECG_SUBTRACT, &b), 0);
	printf("%s: the ECG stage found %zu of %zu R peaks at rest\n", name, b.found, b.truth);
	ck_assert_msg(b.found >= 450, "%s: %zu of %zu R peaks found (limit 450; regression)", name,
		      b.found, b.truth);
	eval_rec_free(&r);
}
END_TEST

/*
 * What subtracting takes out of real recordings at rest (from 10 s, 0.5 s
 * away from the marked windows; ecg8 has none, so all of it, its rhythmic
 * bursts included): the band-passed RMS with `ecg = subtract` against `off`.
 * Subtraction must never add energy.  With one template per lane it did on
 * ecg8 (73.3 against 71.8 uV: its beats vary 10-15 % in amplitude and the
 * trigger moves with them), and took tibialis from 25.3 to 22.1 uV; fitting
 * each beat's amplitude and alignment (ecg.c, "Per-beat fit"): 66.9 and 20.8.
 */
START_TEST(test_real_rest_rms)
{
	for (unsigned idx = 0; idx < 2; idx++) {
		double off[EMG_DEVICE_MAX_CHANNELS], sub[EMG_DEVICE_MAX_CHANNELS], so = 0, ss = 0;
		struct eval_rec r;
		char name[16];

		ck_assert_int_eq(eval_real(&r, REAL, idx, name), 0);
		ck_assert_int_eq(eval_stage_rms(&r, EMG_ECG_OFF, 10, off), 0);
		ck_assert_int_eq(eval_stage_rms(&r, EMG_ECG_SUBTRACT, 10, sub), 0);
		for (unsigned c = 0; c < r.nch; c++) {
			so += off[c] * off[c];
			ss += sub[c] * sub[c];
		}
		printf("%s at rest: RMS %.2f uV with ecg = off, %.2f with subtract (%u channels)\n", name,
		       sqrt(so / r.nch), sqrt(ss / r.nch), r.nch);
		ck_assert_msg(ss < so, "%s: subtracting adds energy at rest", name);
		if (idx == 0)
			ck_assert_msg(sqrt(ss / so) <= 0.85, "%s: subtract leaves %.3f of the rest RMS "
				      "(limit 0.85; regression)", name, sqrt(ss / so));
		eval_rec_free(&r);
	}
}
END_TEST

/*
 * The same recording cut into streams that each start cold, as a trial
 * recorded on its own would (eval_run_cold: 5.7 s of rest at a time, and
 * every contraction entered 0.5-1.5 s after the stream starts), default
 * settings.  Until the ECG stage has locked onto the heart (up to 7 s) the
 * baseline is the quiet between beats; before the start-up report gate,
 * nearly every beat of the first seconds was an onset: 18 per minute of rest
 * (15 since the report gate drops bursts begun on a P wave once the stage has
 * locked; printed below as `startup_s = 0`).  Limits: <= 1 per minute (0.14 today)
 * and every contraction found but two (54 of 56 today).  The second miss came
 * with the band-pass primed at the first sample (filter.c, prime()): the stream
 * entering the contraction at 435.7 s starts 386 uV off zero, whose start-up
 * transient used to inflate the first baseline; now that baseline is the quiet
 * of the first 0.4 s and the 15-35 uV just after it (2-4x that quiet, 0.8 s
 * before the marked start) opens the burst, too early to match the marking.
 */
START_TEST(test_real_cold_start)
{
	struct emg_pipeline_config pc;
	struct eval_windows w = { 0 }, w0 = { 0 };
	struct eval_rec r;
	char name[16];

	ck_assert_int_eq(eval_real(&r, REAL, 0, name), 0);
	emg_pipeline_config_default(&pc);
	ck_assert_int_eq(eval_run_cold(&r, &pc, 5.7, &w), 0);
	pc.onset.startup_s = 0;
	ck_assert_int_eq(eval_run_cold(&r, &pc, 5.7, &w0), 0);
	eval_print_windows_header(stdout);
	eval_print_windows_row(stdout, name, "hodges, cold", &w);
	eval_print_windows_row(stdout, name, "startup_s = 0", &w0);
	fflush(stdout);
	ck_assert_uint_eq(w.bursts, r.nt);
	ck_assert_msg(w.found + 2 >= w.bursts, "%s, cold: %zu of %zu contractions found (limit: all but two)",
		      name, w.found, w.bursts);
	ck_assert_msg((double)w.fa / w.rest_min <= 1.0,
		      "%s, cold: %.2f false onsets per minute of rest (limit 1)", name, (double)w.fa / w.rest_min);
	eval_windows_free(&w);
	eval_windows_free(&w0);
	eval_rec_free(&r);
}
END_TEST

struct recs {
	size_t n;
	struct emg_out o[4096];
};

static void keep_event(void *ud, const struct emg_out *o)
{
	struct recs *c = ud;

	if ((o->type == EMG_OUT_ONSET || o->type == EMG_OUT_OFFSET) && c->n < 4096)
		c->o[c->n++] = *o;
}

/* The onset and offset records of r through the pipeline with cfg, `chunk` frames at a time. */
static void feed(const struct eval_rec *r, const struct emg_pipeline_config *cfg, unsigned chunk,
		 struct recs *c)
{
	c->n = 0;
	ck_assert_int_eq(eval_run_pipeline(r, cfg, chunk, keep_event, c), 0);
}

/*
 * The same events in any block split, on the real recording, per `ecg` mode.
 * At 250 Hz an onset is due for the report gate within one of the detector's
 * chunks of its confirmation, which the gate used to look at only at that
 * chunk's end (`off`: 2 of 998 records differed between 1- and 100-frame
 * blocks); and the pipeline told the detector of the last beat once per block,
 * so a trigger the ECG stage took back within a block was told with small
 * blocks only (`subtract`: 26 of 146 records differed).
 */
START_TEST(test_real_block_split)
{
	static const enum emg_ecg_mode modes[] = { EMG_ECG_OFF, EMG_ECG_SUBTRACT, EMG_ECG_BOTH };
	static const unsigned chunks[] = { 100, 7, 333 };
	static struct recs a, b;
	struct emg_pipeline_config pc;
	struct eval_rec r;

	ck_assert_int_eq(eval_real(&r, REAL, 0, NULL), 0);
	emg_pipeline_config_default(&pc);
	pc.ecg.mode = modes[_i];
	feed(&r, &pc, 1, &a);
	ck_assert_uint_gt(a.n, 100);
	for (unsigned k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		feed(&r, &pc, chunks[k], &b);
		ck_assert_msg(b.n == a.n, "ecg %s, %u-frame blocks: %zu records, %zu in 1-frame blocks",
			      emg_ecg_mode_name(modes[_i]), chunks[k], b.n, a.n);
		for (size_t i = 0; i < a.n; i++) {
			ck_assert_uint_eq(b.o[i].type, a.o[i].type);
			ck_assert_uint_eq(b.o[i].sample, a.o[i].sample);
		}
	}
	eval_rec_free(&r);
}
END_TEST

static Suite *accuracy_suite(void)
{
	Suite *s = suite_create("accuracy");
	TCase *tc = tcase_create("sources");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_external);
	tcase_add_test(tc, test_contractions_close);
	tcase_add_test(tc, test_short_early);
	tcase_add_test(tc, test_mains_60_default);
	tcase_add_test(tc, test_electrode_offsets);
	tcase_add_test(tc, test_external_rates);
	tcase_add_test(tc, test_synth_plain);
	tcase_add_test(tc, test_synth_realistic);
	tcase_add_test(tc, test_synth_realistic_levels);
	tcase_add_test(tc, test_heartbeats_at_rest);
	tcase_add_test(tc, test_strong_heart_at_rest);
	tcase_add_test(tc, test_real_heartbeats);
	tcase_add_test(tc, test_real_cold_start);
	tcase_add_test(tc, test_real_rest_rms);
	tcase_add_loop_test(tc, test_real_block_split, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(accuracy_suite());
}
