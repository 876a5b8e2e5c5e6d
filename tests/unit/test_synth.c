/* SPDX-License-Identifier: MIT */
/*
 * Tests of the synthetic sEMG amplifier: determinism, spectrum, levels and
 * SNR, ground truth against the generated signal, artefacts, the device
 * thread, and a cost measurement - of the plain model (cfg_quiet) - and the
 * realistic mode: plain kept bit for bit, exact truth with ramps, ramp
 * lengths and profiles, ECG, tonic activity, cross-talk, motion artefacts
 * and motor-unit fluctuation (cfg_real).
 *
 * Measurements use a test-side 20-450 Hz band-limit (2nd-order Butterworth
 * high-pass + 4th-order Butterworth low-pass, RBJ biquads), the same band the
 * synth's SNR and noise_uv are defined in.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "muscles.h"
#include "devices/synth.h"
#include "slow.h"
#include "testutil.h"

#define FS 2000.0

/* ------------------------------------------------------------ helpers */

static struct emg_device_config cfg_quiet(const char *scenario, uint64_t seed, double snr_db)
{
	struct emg_device_config cfg;

	emg_device_config_default(&cfg);
	cfg.scenario = scenario;
	cfg.seed = seed;
	cfg.snr_db = snr_db;
	cfg.mains_hz = 0;
	cfg.wander = false;
	cfg.pops = false;
	cfg.realtime = false;
	cfg.realism = EMG_SYNTH_PLAIN; /* these tests measure the plain model */
	return cfg;
}

/* Realistic mode, no noise or plain artefacts, every realistic feature off: switch on what is tested. */
static struct emg_device_config cfg_real(const char *scenario, uint64_t seed)
{
	struct emg_device_config cfg = cfg_quiet(scenario, seed, INFINITY);

	cfg.realism = EMG_SYNTH_REALISTIC;
	cfg.ramps = cfg.tonic = cfg.crosstalk = cfg.motion = false;
	cfg.ecg_uv = 0;
	return cfg;
}

static struct emg_synth *mk(const struct emg_device_config *cfg)
{
	struct emg_synth *s = NULL;

	ck_assert_int_eq(emg_synth_new(&s, cfg), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

static float *gen(struct emg_synth *s, size_t n)
{
	float *x = malloc(n * emg_synth_channels(s) * sizeof(float));

	ck_assert_ptr_nonnull(x);
	emg_synth_generate(s, x, (unsigned)n);
	return x;
}

struct bq {
	double b0, b1, b2, a1, a2, z1, z2;
};

static void bq_design(struct bq *f, bool hp, double fc, double q, double fs)
{
	double w = 2 * M_PI * fc / fs, cw = cos(w), al = sin(w) / (2 * q), a0 = 1 + al;

	memset(f, 0, sizeof(*f));
	if (hp) {
		f->b0 = (1 + cw) / 2 / a0;
		f->b1 = -(1 + cw) / a0;
	} else {
		f->b0 = (1 - cw) / 2 / a0;
		f->b1 = (1 - cw) / a0;
	}
	f->b2 = f->b0;
	f->a1 = -2 * cw / a0;
	f->a2 = (1 - al) / a0;
}

static double bq_run(struct bq *f, double x)
{
	double y = f->b0 * x + f->z1;

	f->z1 = f->b1 * x - f->a1 * y + f->z2;
	f->z2 = f->b2 * x - f->a2 * y;
	return y;
}

/* Channel c of x (n frames of C) band-limited to 20-450 Hz into a new array. */
static double *bandlimit(const float *x, size_t n, unsigned C, unsigned c, double fs)
{
	struct bq f[3];
	double *y = malloc(n * sizeof(double));

	ck_assert_ptr_nonnull(y);
	bq_design(&f[0], true, 20, M_SQRT1_2, fs);
	bq_design(&f[1], false, 450, 0.54119610, fs);
	bq_design(&f[2], false, 450, 1.30656296, fs);
	for (size_t i = 0; i < n; i++) {
		double v = x[i * C + c];

		for (int k = 0; k < 3; k++)
			v = bq_run(&f[k], v);
		y[i] = v;
	}
	return y;
}

static double ms_range(const double *y, size_t a, size_t b)
{
	double e = 0;

	for (size_t i = a; i < b; i++)
		e += y[i] * y[i];
	return e / (double)(b - a);
}

/* Amplitude of the sinusoid at f in channel c over [a, a+n) (single DFT bin). */
static double tone_amp(const float *x, unsigned C, unsigned c, size_t a, size_t n, double f,
		       double fs)
{
	double re = 0, im = 0;

	for (size_t i = 0; i < n; i++) {
		double ph = 2 * M_PI * f * (double)i / fs;

		re += x[(a + i) * C + c] * cos(ph);
		im -= x[(a + i) * C + c] * sin(ph);
	}
	return 2 * sqrt(re * re + im * im) / (double)n;
}

static size_t truth_all(struct emg_synth *s, uint64_t from, uint64_t to, struct emg_truth **out)
{
	size_t n = emg_synth_truth(s, from, to, NULL, 0);

	*out = calloc(n ? n : 1, sizeof(**out));
	ck_assert_ptr_nonnull(*out);
	ck_assert_uint_eq(emg_synth_truth(s, from, to, *out, n), n);
	return n;
}

/* Plateau of a truth burst, with margins clear of the ramps (rise <= 40 ms, fall >= 50 ms). */
static void plateau(const struct emg_truth *t, size_t *a, size_t *b)
{
	*a = (size_t)t->onset + (size_t)(0.1 * FS);
	*b = (size_t)t->offset - (size_t)(0.2 * FS);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_create)
{
	struct emg_device_config cfg = cfg_quiet(NULL, 1, 30);
	struct emg_synth *s = mk(&cfg);
	struct emg_muscles *m;

	ck_assert_uint_eq(emg_synth_channels(s), 6);
	ck_assert(emg_synth_rate(s) == 2000.0);
	ck_assert_uint_eq(emg_synth_position(s), 0);
	/* session: 5 s rest + bridge 23 s + hip thrust 25.5 s + abduction 21 s + prone 27 s */
	ck_assert_uint_eq(emg_synth_script_length(s), (uint64_t)(101.5 * FS));
	emg_synth_free(s);

	cfg.rate = 10000;
	cfg.channels = 16;
	s = mk(&cfg);
	ck_assert_uint_eq(emg_synth_channels(s), 16);
	ck_assert(emg_synth_rate(s) == 10000.0);
	double noise, mvc;
	emg_synth_levels(s, 0, &noise, &mvc);
	ck_assert(mvc == 250.0);
	emg_synth_levels(s, 15, &noise, &mvc); /* unmapped: noise only */
	ck_assert(mvc == 0.0 && noise > 0);
	emg_synth_free(s);

	ck_assert_int_eq(emg_muscles_new(&m), 0);
	ck_assert_int_eq(emg_muscles_add(m, "hamstring_l", 9, EMG_SIDE_LEFT, NULL), 0);
	cfg = cfg_quiet("rest", 1, 30);
	cfg.muscles = m;
	s = mk(&cfg);
	ck_assert_uint_eq(emg_synth_channels(s), 10);
	ck_assert_uint_eq(emg_synth_script_length(s), (uint64_t)(30 * FS));
	emg_synth_free(s);
	emg_muscles_clear(m);
	s = mk(&cfg);
	ck_assert_uint_eq(emg_synth_channels(s), 1);
	emg_synth_free(s);
	emg_muscles_free(m);

	cfg = cfg_quiet("squat", 1, 30);
	ck_assert_int_eq(emg_synth_new(&s, &cfg), -EINVAL);
	cfg = cfg_quiet(NULL, 1, 30);
	cfg.rate = -1;
	ck_assert_int_eq(emg_synth_new(&s, &cfg), -EINVAL);
	cfg = cfg_quiet(NULL, 1, NAN);
	ck_assert_int_eq(emg_synth_new(&s, &cfg), -EINVAL);
	cfg = cfg_quiet(NULL, 1, 30);
	cfg.channels = EMG_DEVICE_MAX_CHANNELS + 1;
	ck_assert_int_eq(emg_synth_new(&s, &cfg), -EINVAL);
}
END_TEST

START_TEST(test_determinism)
{
	struct emg_device_config cfg;
	const size_t n = 70000; /* crosses RESYNC points and the 30 s period of "rest" */
	static const unsigned splits[] = { 1, 7, 100, 255, 256, 257, 4095, 4097, 33 };

	emg_device_config_default(&cfg);
	cfg.realtime = false;
	cfg.pops = true;
	for (int sc = 0; sc < 2; sc++) {
		cfg.scenario = sc ? "rest" : "session";
		struct emg_synth *a = mk(&cfg), *b = mk(&cfg);
		unsigned C = emg_synth_channels(a);
		float *x = gen(a, n);
		float *y = malloc(n * C * sizeof(float));
		size_t at = 0, i = 0;

		while (at < n) {
			size_t k = splits[i++ % (sizeof(splits) / sizeof(splits[0]))];
			if (k > n - at)
				k = n - at;
			emg_synth_generate(b, y + at * C, (unsigned)k);
			at += k;
		}
		ck_assert_uint_eq(emg_synth_position(b), n);
		ck_assert_int_eq(memcmp(x, y, n * C * sizeof(float)), 0);
		/* 1000 at once == 10 x 100 */
		emg_synth_generate(a, x, 1000);
		for (int j = 0; j < 10; j++)
			emg_synth_generate(b, y + j * 100 * C, 100);
		ck_assert_int_eq(memcmp(x, y, 1000 * C * sizeof(float)), 0);
		free(x);
		free(y);
		emg_synth_free(a);
		emg_synth_free(b);
	}
}
END_TEST

START_TEST(test_seeds_differ)
{
	struct emg_device_config cfg;
	struct emg_truth *ta, *tb;

	emg_device_config_default(&cfg);
	cfg.realtime = false;
	struct emg_synth *a = mk(&cfg);
	cfg.seed = 2;
	struct emg_synth *b = mk(&cfg);
	unsigned C = emg_synth_channels(a);
	float *x = gen(a, 4000), *y = gen(b, 4000);
	size_t same = 0;

	for (size_t i = 0; i < 4000 * C; i++)
		same += x[i] == y[i];
	ck_assert_uint_lt(same, 40);
	/* Same script shape, different per-rep jitter. */
	size_t na = truth_all(a, 0, emg_synth_script_length(a), &ta);
	size_t nb = truth_all(b, 0, emg_synth_script_length(b), &tb);
	ck_assert_uint_eq(na, nb);
	size_t diff = 0;
	for (size_t i = 0; i < na; i++)
		diff += ta[i].onset != tb[i].onset;
	ck_assert_uint_gt(diff, na / 2);
	free(ta);
	free(tb);
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);
}
END_TEST

/* Rest, no artefacts: the signal is the white instrumentation noise. */
START_TEST(test_white_noise)
{
	struct emg_device_config cfg = cfg_quiet("rest", 3, 20);
	struct emg_synth *s = mk(&cfg);
	const size_t n = 200000;
	unsigned C = emg_synth_channels(s);
	float *x = gen(s, n);

	for (unsigned c = 0; c < C; c++) {
		double noise, mvc, m1 = 0, m2 = 0, m4 = 0;

		emg_synth_levels(s, c, &noise, &mvc);
		/* sigma = noise_uv / sqrt(430 / 1000) at 2 kHz */
		double sigma = noise / sqrt(430.0 / 1000.0);
		for (size_t i = 0; i < n; i++)
			m1 += x[i * C + c];
		m1 /= n;
		for (size_t i = 0; i < n; i++) {
			double d = x[i * C + c] - m1;
			m2 += d * d;
			m4 += d * d * d * d;
		}
		m2 /= n;
		m4 /= n;
		ck_assert_double_lt(fabs(m1), 0.02 * sigma);
		ck_assert_double_lt(fabs(sqrt(m2) / sigma - 1), 0.01);
		ck_assert_double_lt(fabs(m4 / (m2 * m2) - 3), 0.1);
	}
	free(x);
	emg_synth_free(s);
}
END_TEST

/* In-band RMS at rest and on plateaus matches emg_synth_levels. */
START_TEST(test_levels)
{
	struct emg_device_config cfg = cfg_quiet("bridge", 4, 20);
	struct emg_synth *s = mk(&cfg);
	size_t n = emg_synth_script_length(s);
	unsigned C = emg_synth_channels(s);
	float *x = gen(s, n);
	struct emg_truth *t;
	size_t nt = truth_all(s, 0, n, &t), checked = 0;

	for (unsigned c = 0; c < C; c++) {
		double noise, mvc;
		double *y = bandlimit(x, n, C, c, FS);

		emg_synth_levels(s, c, &noise, &mvc);
		double rest = sqrt(ms_range(y, (size_t)(0.5 * FS), (size_t)(2.8 * FS)));
		ck_assert_double_lt(fabs(rest / noise - 1), 0.2);
		for (size_t i = 0; i < nt; i++) {
			size_t a, b;

			if (t[i].channel != c)
				continue;
			plateau(&t[i], &a, &b);
			double want = hypot(t[i].peak_mvc * mvc, noise);
			double got = sqrt(ms_range(y, a, b));
			ck_assert_double_lt(fabs(got / want - 1), 0.2);
			checked++;
		}
		free(y);
	}
	ck_assert_uint_ge(checked, 20);
	free(t);
	free(x);
	emg_synth_free(s);
}
END_TEST

/* PSD of plateau segments: peak 50-200 Hz, little above 500 Hz. */
START_TEST(test_spectrum)
{
	struct emg_device_config cfg = cfg_quiet("hip_thrust", 5, INFINITY);
	struct emg_synth *s = mk(&cfg);
	size_t n = emg_synth_script_length(s);
	unsigned C = emg_synth_channels(s);
	float *x = gen(s, n);
	struct emg_truth *t;
	size_t nt = truth_all(s, 0, n, &t);
	enum { W = 256, NB = W / 2 + 1 };
	double psd[NB] = { 0 }, win[W];
	int segs = 0;

	for (int i = 0; i < W; i++)
		win[i] = 0.5 - 0.5 * cos(2 * M_PI * i / W);
	for (size_t i = 0; i < nt; i++) {
		size_t a, b;

		if (t[i].channel != 0) /* glute_max_l */
			continue;
		plateau(&t[i], &a, &b);
		for (size_t p = a; p + W <= b; p += W / 2, segs++)
			for (int k = 0; k < NB; k++) {
				double re = 0, im = 0;
				for (int j = 0; j < W; j++) {
					double v = x[(p + j) * C] * win[j];
					re += v * cos(2 * M_PI * k * j / W);
					im -= v * sin(2 * M_PI * k * j / W);
				}
				psd[k] += re * re + im * im;
			}
	}
	ck_assert_int_gt(segs, 50);
	/* smooth over 5 bins (~39 Hz) and find the peak */
	double best = 0, total = 0, above = 0, band = 0;
	int kbest = 0;
	for (int k = 2; k < NB - 2; k++) {
		double v = psd[k - 2] + psd[k - 1] + psd[k] + psd[k + 1] + psd[k + 2];
		if (v > best)
			best = v, kbest = k;
	}
	for (int k = 0; k < NB; k++) {
		double f = k * FS / W;
		total += psd[k];
		if (f > 500)
			above += psd[k];
		if (f >= 20 && f <= 250)
			band += psd[k];
	}
	double fpeak = kbest * FS / W;
	fprintf(stderr, "synth spectrum: peak %.0f Hz, %.1f %% in 20-250 Hz, %.2f %% above 500 Hz\n",
		fpeak, 100 * band / total, 100 * above / total);
	ck_assert_double_ge(fpeak, 50);
	ck_assert_double_le(fpeak, 200);
	ck_assert_double_lt(above / total, 0.02);
	ck_assert_double_gt(band / total, 0.75);
	free(t);
	free(x);
	emg_synth_free(s);
}
END_TEST

/*
 * SNR: on the band-limited signal, signal power = plateau power - rest power,
 * scaled from the burst's peak_mvc to the 50 % MVC reference, over the
 * in-band rest power.  This measures exactly the documented definition.
 */
START_TEST(test_snr)
{
	static const double snrs[] = { 10, 20, 40 };

	for (int si = 0; si < 3; si++) {
		struct emg_device_config cfg = cfg_quiet("bridge", 6, snrs[si]);
		struct emg_synth *s = mk(&cfg);
		size_t n = emg_synth_script_length(s);
		unsigned C = emg_synth_channels(s);
		float *x = gen(s, n);
		struct emg_truth *t;
		size_t nt = truth_all(s, 0, n, &t);

		for (unsigned c = 0; c < 2; c++) { /* glute max l, r */
			double *y = bandlimit(x, n, C, c, FS);
			double rest = ms_range(y, (size_t)(0.5 * FS), (size_t)(2.8 * FS));
			double sig = 0;
			int k = 0;

			for (size_t i = 0; i < nt; i++) {
				size_t a, b;

				if (t[i].channel != c)
					continue;
				plateau(&t[i], &a, &b);
				sig += (ms_range(y, a, b) - rest) * pow(0.5 / t[i].peak_mvc, 2);
				k++;
			}
			ck_assert_int_eq(k, 5);
			double meas = 10 * log10(sig / k / rest);
			fprintf(stderr, "synth snr: configured %.0f dB, measured %.2f dB (ch %u)\n",
				snrs[si], meas, c);
			ck_assert_double_lt(fabs(meas - snrs[si]), 1.5);
			free(y);
		}
		free(t);
		free(x);
		emg_synth_free(s);
	}
}
END_TEST

/*
 * Truth against the signal: with snr_db = INFINITY and no artefacts the
 * signal is exactly 0 outside bursts, so the first sample of the rise is the
 * first non-zero sample and the offset the first zero one.
 */
START_TEST(test_truth_exact)
{
	struct emg_device_config cfg = cfg_quiet("session", 7, INFINITY);
	struct emg_synth *s = mk(&cfg);
	uint64_t L = emg_synth_script_length(s);
	size_t n = (size_t)L + 40000; /* into the second pass */
	unsigned C = emg_synth_channels(s);
	float *x = gen(s, n);
	struct emg_truth *t;
	size_t nt = truth_all(s, 0, n - 10000, &t);
	size_t per[6] = { 0 };
	size_t one = emg_synth_truth(s, 0, L, NULL, 0);

	/* default map, session: bridge 20 + hip thrust 20 + abduction 18 + prone 12 */
	ck_assert_uint_eq(one, 70);
	ck_assert_uint_gt(nt, one);
	for (size_t i = 0; i < nt; i++) {
		const struct emg_truth *b = &t[i];
		unsigned c = b->channel;

		ck_assert_uint_lt(c, C);
		per[c]++;
		ck_assert(b->onset > 0 && b->offset < n);
		ck_assert_uint_gt(b->offset, b->onset);
		ck_assert(b->peak_mvc >= 0.1f && b->peak_mvc <= 2.0f);
		ck_assert_uint_ge(b->rep, 1);
		ck_assert_ptr_nonnull(b->exercise);
		ck_assert(x[(b->onset - 1) * C + c] == 0.0f);
		ck_assert(x[b->onset * C + c] != 0.0f);
		ck_assert(x[(b->offset - 1) * C + c] != 0.0f);
		ck_assert(x[b->offset * C + c] == 0.0f);
		/* rise 20-40 ms, fall 50-100 ms: the 10 ms RMS 60 ms in is near the plateau */
		double e = 0;
		for (uint64_t j = b->onset + 100; j < b->onset + 120; j++)
			e += (double)x[j * C + c] * x[j * C + c];
		ck_assert_double_gt(sqrt(e / 20), 0.2 * b->peak_mvc * 150);
		if (i > 0)
			ck_assert_uint_ge(b->onset, t[i - 1].onset);
		/* no overlap on a channel */
		for (size_t j = i + 1; j < nt; j++)
			if (t[j].channel == c) {
				ck_assert_uint_le(b->offset, t[j].onset);
				break;
			}
	}
	/* hip flexors: in the truth only for abduction (15 % MVC) */
	for (size_t i = 0; i < nt; i++)
		if (t[i].channel >= 4)
			ck_assert_str_eq(t[i].exercise, "abduction");
	/* periodic */
	struct emg_truth *t2;
	size_t n2 = truth_all(s, L, 2 * L, &t2);
	ck_assert_uint_eq(n2, one);
	for (size_t i = 0; i < n2; i++) {
		ck_assert_uint_eq(t2[i].onset, t[i].onset + L);
		ck_assert_uint_eq(t2[i].channel, t[i].channel);
	}
	ck_assert_uint_eq(emg_synth_truth(s, 0, 1000 * L, NULL, 0), 1000 * one);
	ck_assert_uint_eq(emg_synth_truth(s, 5, 5, NULL, 0), 0);
	struct emg_truth few[3];
	ck_assert_uint_eq(emg_synth_truth(s, 0, 3 * L, few, 3), 3 * one);
	ck_assert_uint_eq(few[0].onset, t[0].onset);
	free(t2);
	free(t);
	free(x);
	emg_synth_free(s);
}
END_TEST

/* Prone hip extension: hamstring before glute max on every rep; hip flexor silent. */
START_TEST(test_firing_order)
{
	struct emg_muscles *m;
	struct emg_truth *t;

	ck_assert_int_eq(emg_muscles_new(&m), 0);
	ck_assert_int_eq(emg_muscles_add(m, "hamstring_l", 0, EMG_SIDE_LEFT, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(m, "glute_max_l", 1, EMG_SIDE_LEFT, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(m, "hamstring_r", 2, EMG_SIDE_RIGHT, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(m, "glute_max_r", 3, EMG_SIDE_RIGHT, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(m, "hip_flex_l", 4, EMG_SIDE_LEFT, NULL), 0);
	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct emg_device_config cfg = cfg_quiet("prone_hip_ext", seed, INFINITY);
		cfg.muscles = m;
		struct emg_synth *s = mk(&cfg);
		size_t n = emg_synth_script_length(s);
		unsigned C = emg_synth_channels(s);
		float *x = gen(s, n);
		size_t nt = truth_all(s, 0, n, &t), pairs = 0;

		ck_assert_uint_eq(C, 5);
		for (size_t i = 0; i < nt; i++) {
			ck_assert_uint_ne(t[i].channel, 4);
			if (t[i].channel != 0 && t[i].channel != 2)
				continue;
			for (size_t j = 0; j < nt; j++)
				if (t[j].channel == t[i].channel + 1 && t[j].rep == t[i].rep) {
					double d = ((double)t[j].onset - (double)t[i].onset) / FS;
					ck_assert_double_ge(d, 0.0295);
					ck_assert_double_le(d, 0.0805);
					/* and in the signal */
					ck_assert(x[t[i].onset * C + t[i].channel] != 0.0f);
					ck_assert(x[(t[j].onset - 1) * C + t[j].channel] == 0.0f);
					pairs++;
				}
		}
		ck_assert_uint_eq(pairs, 6); /* 6 reps, alternating sides */
		for (size_t i = 0; i < n; i++)
			ck_assert(x[i * C + 4] == 0.0f);
		free(t);
		free(x);
		emg_synth_free(s);
	}
	emg_muscles_free(m);
}
END_TEST

/* Hip thrust: glute max can exceed 1.0 MVC, in the truth and in the signal. */
START_TEST(test_hip_thrust_over_mvc)
{
	int over = 0;

	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct emg_device_config cfg = cfg_quiet("hip_thrust", seed, INFINITY);
		struct emg_synth *s = mk(&cfg);
		size_t n = emg_synth_script_length(s);
		unsigned C = emg_synth_channels(s);
		float *x = gen(s, n);
		struct emg_truth *t;
		size_t nt = truth_all(s, 0, n, &t);

		for (size_t i = 0; i < nt; i++) {
			if (t[i].channel != 0)
				continue;
			ck_assert(t[i].peak_mvc >= 0.69f && t[i].peak_mvc <= 1.21f);
			if (t[i].peak_mvc > 1.05f) {
				size_t a, b;
				double *y = bandlimit(x, n, C, 0, FS);
				plateau(&t[i], &a, &b);
				ck_assert_double_gt(sqrt(ms_range(y, a, b)) / 250.0, 1.0);
				free(y);
				over++;
			}
		}
		free(t);
		free(x);
		emg_synth_free(s);
	}
	ck_assert_int_gt(over, 0);
}
END_TEST

/* Bilateral bridge: the right side is weaker and later (symmetry index). */
START_TEST(test_bilateral)
{
	struct emg_device_config cfg = cfg_quiet("bridge", 9, INFINITY);
	struct emg_synth *s = mk(&cfg);
	struct emg_truth *t;
	size_t nt = truth_all(s, 0, emg_synth_script_length(s), &t);
	double l = 0, r = 0, dl = 0;

	for (size_t i = 0; i < nt; i++)
		for (size_t j = 0; j < nt; j++)
			if (t[i].channel == 0 && t[j].channel == 1 && t[i].rep == t[j].rep) {
				l += t[i].peak_mvc;
				r += t[j].peak_mvc;
				dl += ((double)t[j].onset - (double)t[i].onset) / FS;
			}
	ck_assert_double_lt(r, l);
	ck_assert_double_gt(dl / 5, 0.005);
	free(t);
	emg_synth_free(s);
}
END_TEST

START_TEST(test_mains)
{
	static const double hz[] = { 50, 60 };

	for (int i = 0; i < 2; i++) {
		struct emg_device_config cfg = cfg_quiet("rest", 10, 30);
		cfg.mains_hz = hz[i];
		cfg.mains_uv = 20;
		struct emg_synth *s = mk(&cfg);
		unsigned C = emg_synth_channels(s);
		float *x = gen(s, 4000);

		for (unsigned c = 0; c < C; c++) {
			double a1 = tone_amp(x, C, c, 2000, 2000, hz[i], FS);
			double a3 = tone_amp(x, C, c, 2000, 2000, 3 * hz[i], FS);
			double a5 = tone_amp(x, C, c, 2000, 2000, 5 * hz[i], FS);
			double off = tone_amp(x, C, c, 2000, 2000, hz[i] + 7, FS);
			ck_assert_double_lt(fabs(a1 - 20), 2);
			ck_assert_double_lt(fabs(a3 - 6), 1.5);
			ck_assert_double_lt(fabs(a5 - 3), 1.5);
			ck_assert_double_lt(off, 1.5);
		}
		free(x);
		emg_synth_free(s);
	}
	struct emg_device_config cfg = cfg_quiet("rest", 10, 30);
	struct emg_synth *s = mk(&cfg);
	unsigned C = emg_synth_channels(s);
	float *x = gen(s, 4000);
	for (unsigned c = 0; c < C; c++) {
		ck_assert_double_lt(tone_amp(x, C, c, 2000, 2000, 50, FS), 1.5);
		ck_assert_double_lt(tone_amp(x, C, c, 2000, 2000, 150, FS), 1.5);
	}
	free(x);
	emg_synth_free(s);
}
END_TEST

/* Pops: the difference pops-on minus pops-off is exactly the pop train. */
START_TEST(test_pops)
{
	struct emg_device_config cfg = cfg_quiet("bridge", 11, 30);
	struct emg_synth *a = mk(&cfg);
	cfg.pops = true;
	struct emg_synth *b = mk(&cfg);
	size_t L = emg_synth_script_length(a), n = 5 * L; /* ~115 s */
	unsigned C = emg_synth_channels(a);
	float *x = gen(a, n), *y = gen(b, n);
	struct emg_truth *ta, *tb;
	size_t pops = 0;

	for (unsigned c = 0; c < C; c++) {
		double prev = 0;
		size_t last = 0;
		bool have = false;

		for (size_t i = 0; i < n; i++) {
			double d = (double)y[i * C + c] - x[i * C + c];
			double step = d - prev;

			if (fabs(step) > 150) {
				/* a step of 200-1000 uV */
				ck_assert_double_lt(fabs(step), 1001);
				ck_assert_double_gt(fabs(step), 199);
				/* decays exponentially (tau <= 67 ms): < 2 % after 300 ms, unless
				 * another pop came in between */
				if (i + 600 < n) {
					bool clean = true;
					for (size_t j = i + 1; j <= i + 600; j++) {
						double dj = (double)y[j * C + c] - x[j * C + c];
						double dp = (double)y[(j - 1) * C + c] - x[(j - 1) * C + c];
						if (fabs(dj - dp) > 150)
							clean = false;
					}
					double later = (double)y[(i + 600) * C + c] - x[(i + 600) * C + c];
					double soon = (double)y[(i + 20) * C + c] - x[(i + 20) * C + c];
					if (clean) {
						ck_assert_double_lt(fabs(later), 0.02 * fabs(step) + 1);
						ck_assert_double_gt(fabs(soon), 0.5 * fabs(step));
					}
				}
				ck_assert(!have || i > last);
				have = true;
				last = i;
				pops++;
			} else {
				/* between pops the difference only decays */
				ck_assert_double_le(fabs(d), fabs(prev) + 0.01);
			}
			prev = d;
		}
	}
	fprintf(stderr, "synth pops: %zu in %.0f s x %u channels\n", pops, n / FS, C);
	ck_assert_uint_ge(pops, 5);
	size_t na = truth_all(a, 0, n, &ta), nb = truth_all(b, 0, n, &tb);
	ck_assert_uint_eq(na, nb);
	ck_assert_int_eq(memcmp(ta, tb, na * sizeof(*ta)), 0);
	free(ta);
	free(tb);
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);
}
END_TEST

/* Wander: slow, ~100 uV RMS, no energy in the sEMG band. */
START_TEST(test_wander)
{
	struct emg_device_config cfg = cfg_quiet("rest", 12, 30);
	struct emg_synth *a = mk(&cfg);
	cfg.wander = true;
	struct emg_synth *b = mk(&cfg);
	size_t n = 60000;
	unsigned C = emg_synth_channels(a);
	float *x = gen(a, n), *y = gen(b, n);

	for (unsigned c = 0; c < C; c++) {
		double e = 0, de = 0, prev = 0;

		for (size_t i = 0; i < n; i++) {
			double d = (double)y[i * C + c] - x[i * C + c];
			e += d * d;
			if (i)
				de += (d - prev) * (d - prev);
			prev = d;
		}
		double rms = sqrt(e / n), drms = sqrt(de / (n - 1));
		ck_assert_double_gt(rms, 30);
		ck_assert_double_lt(rms, 300);
		/* a 0.5 Hz sinusoid of 100 uV changes by 0.16 uV per sample at 2 kHz */
		ck_assert_double_lt(drms, 2.0);
	}
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);
}
END_TEST

/* ---------------------------------------------------------- device ops */

struct counter {
	atomic_ulong frames;
	atomic_ulong calls;
	atomic_int states;
	atomic_int gaps;
	uint64_t next_seq; /* only touched by the device thread */
	_Atomic uint64_t t_last;   /* arrival time of the latest block */
	unsigned stall_at;         /* if non-zero: the callback blocks 150 ms on this call */
	/* (arrival, cumulative frames) of the first blocks, written by the device thread */
	size_t nlog;
	uint64_t log_t[2048];
	uint64_t log_n[2048];
};

static void on_data(void *ud, const float *frames, unsigned nframes, uint64_t first_seq,
		    uint32_t lost, uint64_t t_ns)
{
	struct counter *k = ud;

	(void)frames;
	atomic_store(&k->t_last, t_ns);
	if (k->stall_at && atomic_load(&k->calls) == k->stall_at) {
		struct timespec ts = { 0, 150000000L };
		nanosleep(&ts, NULL);
	}
	if (k->nlog < 2048) {
		k->log_t[k->nlog] = t_ns;
		k->log_n[k->nlog] = atomic_load(&k->frames) + nframes;
		k->nlog++;
	}
	if (first_seq != k->next_seq || lost || nframes == 0)
		atomic_fetch_add(&k->gaps, 1);
	k->next_seq = first_seq + nframes;
	atomic_fetch_add(&k->calls, 1);
	atomic_fetch_add(&k->frames, nframes);
}

static void on_state(void *ud, enum emg_device_state st, const char *why)
{
	struct counter *k = ud;

	if (st == EMG_DEVICE_STREAMING && why)
		atomic_fetch_add(&k->states, 1);
}

static void nap_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

static void run_device(bool realtime, double rate, unsigned long target, double *rate_out,
		       struct counter *k)
{
	struct emg_device_config cfg;
	struct emg_device *d;
	struct emg_device_info info;
	struct emg_device_callbacks cb = { .data = on_data, .state = on_state, .ud = k };

	emg_device_config_default(&cfg);
	cfg.realtime = realtime;
	cfg.rate = rate;
	cfg.seed = 42;
	ck_assert_int_eq(emg_synth_ops.open(&d, &cfg), 0);
	ck_assert_ptr_eq(d->ops, &emg_synth_ops);
	emg_synth_ops.info(d, &info);
	ck_assert_str_eq(info.driver, "synth");
	ck_assert_str_eq(info.model, "emgd synthetic sEMG");
	ck_assert_str_eq(info.serial, "SYNTH-42");
	ck_assert(info.rate == rate);
	ck_assert_uint_eq(info.channels, 6);
	ck_assert(info.phys_min_uv < -1000 && info.phys_max_uv > 1000);

	uint64_t t0 = emg_now_ns();
	ck_assert_int_eq(emg_synth_ops.start(d, &cb), 0);
	ck_assert_int_eq(emg_synth_ops.start(d, &cb), -EBUSY);
	uint64_t deadline = t0 + 5000000000ull;
	while (atomic_load(&k->frames) < target && emg_now_ns() < deadline)
		nap_ms(1);
	emg_synth_ops.stop(d); /* joins: the counters are final */
	unsigned long after = atomic_load(&k->frames);
	ck_assert_uint_ge(after, target);
	/* Delivered rate.  A block is sent at or after its deadline, never
	 * before, and a preempted thread (or a late thread start) only delays
	 * blocks; so take the least-delayed block of the first and of the last
	 * quarter (judged against the nominal schedule) and the rate between. */
	size_t q = k->nlog / 4, a = 0, b = k->nlog - 1;
	double tick = 1e9 / rate;
	ck_assert_uint_ge(q, 10);
	for (size_t i = 0; i < q; i++) {
		if ((double)k->log_t[i] - k->log_n[i] * tick <
		    (double)k->log_t[a] - k->log_n[a] * tick)
			a = i;
		size_t j = k->nlog - 1 - i;
		if ((double)k->log_t[j] - k->log_n[j] * tick <
		    (double)k->log_t[b] - k->log_n[b] * tick)
			b = j;
	}
	*rate_out = (double)(k->log_n[b] - k->log_n[a]) /
		    ((double)(k->log_t[b] - k->log_t[a]) * 1e-9);
	nap_ms(5);
	ck_assert_uint_eq(atomic_load(&k->frames), after); /* nothing after stop */
	emg_synth_ops.stop(d);                              /* idempotent */
	ck_assert_int_eq(atomic_load(&k->gaps), 0);
	ck_assert_int_eq(atomic_load(&k->states), 1);
	ck_assert_uint_eq(k->next_seq, after);
	/* restart continues the sequence */
	ck_assert_int_eq(emg_synth_ops.start(d, &cb), 0);
	while (atomic_load(&k->frames) < after + 10 && emg_now_ns() < deadline + 2000000000ull)
		nap_ms(1);
	emg_synth_ops.stop(d);
	ck_assert_int_eq(atomic_load(&k->gaps), 0);
	emg_synth_ops.close(d);
}

START_TEST(test_device_realtime)
{
	static const double rates[] = { 2000, 2500, 500 };

	/* ~200 ms of data natively; longer on a slow run (1 s under qemu), where the
	 * process can be off the CPU for longer than a 50 ms quarter of the window */
	const double secs = 0.2 * fmin(slow_factor(), 5.0);

	for (int i = 0; i < 3; i++) {
		static struct counter k;
		double r;

		memset(&k, 0, sizeof(k));
		run_device(true, rates[i], (unsigned long)(secs * rates[i]), &r, &k);
		fprintf(stderr, "synth device: nominal %.0f Hz, delivered %.1f Hz, %lu calls\n",
			rates[i], r, atomic_load(&k.calls));
		ck_assert_double_lt(fabs(r / rates[i] - 1), 0.1 * slow_factor());
		if (rates[i] >= 1000) /* ~1 ms blocks */
			ck_assert_uint_le(atomic_load(&k.calls),
					  (unsigned long)((secs + 0.1) * 1000) + 50);
	}
}
END_TEST

/* A stall of more than 100 ms is not caught up by a burst: the schedule is re-anchored. */
START_TEST(test_device_resync)
{
	static struct counter k;
	struct emg_device_config cfg;
	struct emg_device *d;
	struct emg_device_callbacks cb = { .data = on_data, .ud = &k };

	memset(&k, 0, sizeof(k));
	k.stall_at = 20;
	emg_device_config_default(&cfg);
	ck_assert_int_eq(emg_synth_ops.open(&d, &cfg), 0);
	ck_assert_int_eq(emg_synth_ops.start(d, &cb), 0);
	uint64_t deadline = emg_now_ns() + 5000000000ull;
	while (atomic_load(&k.frames) < 400 && emg_now_ns() < deadline)
		nap_ms(1);
	emg_synth_ops.stop(d);
	emg_synth_ops.close(d);
	ck_assert_int_eq(atomic_load(&k.gaps), 0);
	ck_assert_uint_gt(k.nlog, 40);
	/* call 20 stalls, so call 21 arrives >= 150 ms after it; within the next
	 * 20 ms no more than ~20 ms of data (+ one tick) may follow */
	ck_assert_uint_ge(k.log_t[21] - k.log_t[20], 150000000ull);
	uint64_t base = k.log_n[21], t = k.log_t[21], later = base;
	for (size_t i = 22; i < k.nlog && k.log_t[i] <= t + 20000000ull; i++)
		later = k.log_n[i];
	fprintf(stderr, "synth device: %llu frames in the 20 ms after a 150 ms stall\n",
		(unsigned long long)(later - base));
	ck_assert_uint_le(later - base, 2000 * 0.020 + 10);
}
END_TEST

START_TEST(test_device_fast)
{
	static struct counter k;
	double r;

	memset(&k, 0, sizeof(k));
	run_device(false, 2000, 200000, &r, &k);
	fprintf(stderr, "synth device: as fast as possible %.0f frames/s\n", r);
	ck_assert_double_gt(r, 10 * 2000);
}
END_TEST

/* Cost of generation, ns per channel-sample, everything on. */
static double cost_ns(unsigned channels, double rate, double seconds)
{
	struct emg_device_config cfg;
	struct emg_synth *s;
	struct timespec a, b;
	unsigned block = (unsigned)(rate / 1000);

	emg_device_config_default(&cfg);
	cfg.channels = channels;
	cfg.rate = rate;
	s = mk(&cfg);
	float *buf = malloc((size_t)block * channels * sizeof(float));
	size_t total = (size_t)(rate * seconds);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t done = 0; done < total; done += block)
		emg_synth_generate(s, buf, block);
	clock_gettime(CLOCK_MONOTONIC, &b);
	free(buf);
	emg_synth_free(s);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	return ns / ((double)total * channels);
}

START_TEST(test_cost)
{
	double small = cost_ns(6, 2000, 10);
	double big = cost_ns(256, 10000, 0.5);
	double core_small = small * 6 * 2000 * 1e-9, core_big = big * 256 * 10000 * 1e-9;

	fprintf(stderr, "synth cost: 6 ch @ 2 kHz %.1f ns/ch-sample (%.3f %% of a core); "
		"256 ch @ 10 kHz %.1f ns/ch-sample (%.1f %% of a core)\n",
		small, 100 * core_small, big, 100 * core_big);
	ck_assert_double_lt(core_small, 0.05);
}
END_TEST

/* ------------------------------------------------------ realistic mode */

/* FNV-1a over the output rounded to 1/64 uV (robust to a last-ulp libm difference) and
 * over the truth; the expected values were recorded from the generator before the
 * realistic mode existed (commit 5022c93). */
static void plain_hash(const struct emg_device_config *cfg, uint64_t *hx, uint64_t *ht, size_t *nt)
{
	struct emg_synth *s = mk(cfg);
	unsigned C = emg_synth_channels(s);
	float *x = malloc(sizeof(float) * C * 997);
	struct emg_truth t[256];

	ck_assert_ptr_nonnull(x);
	*hx = 0xcbf29ce484222325ull;
	for (size_t done = 0; done < 120000; done += 997) {
		unsigned k = 120000 - done < 997 ? (unsigned)(120000 - done) : 997;

		emg_synth_generate(s, x, k);
		for (size_t i = 0; i < (size_t)k * C; i++) {
			*hx ^= (uint64_t)(int64_t)llround((double)x[i] * 64.0);
			*hx *= 0x100000001b3ull;
		}
	}
	*nt = emg_synth_truth(s, 0, emg_synth_script_length(s), t, 256);
	*ht = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < *nt && i < 256; i++) {
		uint64_t v[3] = { t[i].channel, t[i].onset, t[i].offset };

		for (int j = 0; j < 3; j++) {
			*ht ^= v[j];
			*ht *= 0x100000001b3ull;
		}
	}
	free(x);
	emg_synth_free(s);
}

/* realism = plain is the generator as it was; realistic with every feature off equals it. */
START_TEST(test_plain_unchanged)
{
	struct emg_device_config cfg;
	uint64_t hx, ht;
	size_t nt;

	emg_device_config_default(&cfg);
	ck_assert_int_eq(cfg.realism, EMG_SYNTH_PLAIN); /* the default, until ECG rejection meets its targets */
	cfg.seed = 1234;
	cfg.realtime = false;
	cfg.realism = EMG_SYNTH_PLAIN;
	plain_hash(&cfg, &hx, &ht, &nt);
	ck_assert_uint_eq(nt, 70);
	ck_assert_uint_eq(ht, 0x965a73823f203fd1ull);
	ck_assert_uint_eq(hx, 0xf447849008386052ull);
	/* the realistic keys do nothing in plain mode */
	cfg.ecg_uv = 300;
	cfg.ramps = cfg.tonic = cfg.crosstalk = cfg.motion = true;
	plain_hash(&cfg, &hx, &ht, &nt);
	ck_assert_uint_eq(hx, 0xf447849008386052ull);
	ck_assert_uint_eq(ht, 0x965a73823f203fd1ull);

	/* realistic, every feature off: the plain signal sample for sample (artefacts on) */
	struct emg_device_config p, r;
	const size_t n = 50000;

	emg_device_config_default(&p);
	p.realtime = false;
	p.scenario = "bridge";
	p.realism = EMG_SYNTH_PLAIN;
	r = p;
	r.realism = EMG_SYNTH_REALISTIC;
	r.ramps = r.tonic = r.crosstalk = r.motion = false;
	r.ecg_uv = 0;
	struct emg_synth *a = mk(&p), *b = mk(&r);
	unsigned C = emg_synth_channels(a);
	float *x = gen(a, n), *y = gen(b, n);

	ck_assert_int_eq(memcmp(x, y, n * C * sizeof(float)), 0);
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);

	struct emg_synth *bad = NULL;
	r.realism = (enum emg_synth_realism)7;
	ck_assert_int_eq(emg_synth_new(&bad, &r), -EINVAL);
	r.realism = EMG_SYNTH_REALISTIC;
	r.ecg_uv = -1;
	ck_assert_int_eq(emg_synth_new(&bad, &r), -EINVAL);
	r.ecg_uv = NAN;
	ck_assert_int_eq(emg_synth_new(&bad, &r), -EINVAL);
}
END_TEST

/*
 * Realistic truth is exact: with ramps (and MU spikes) on and nothing else,
 * the signal is non-zero exactly where the activation is, the activation is 0
 * before the onset and > 0 on it, > 0 on the last sample before the offset
 * and 0 on it; onset_cross/offset_cross are the 10 % crossings.
 */
START_TEST(test_real_truth_exact)
{
	for (uint64_t seed = 1; seed <= 3; seed++) {
		struct emg_device_config cfg = cfg_real("session", seed);

		cfg.ramps = true;
		struct emg_synth *s = mk(&cfg);
		uint64_t L = emg_synth_script_length(s);
		size_t n = (size_t)L + 20000;
		unsigned C = emg_synth_channels(s);
		float *x = gen(s, n);
		struct emg_truth *t;
		size_t nt = truth_all(s, 0, n - 10000, &t);

		ck_assert_uint_ge(nt, 70);
		for (size_t i = 0; i < nt; i++) {
			const struct emg_truth *b = &t[i];
			unsigned c = b->channel;
			/* 10 % of the plateau; peak_mvc is the plateau rounded to float */
			double thr = 0.1 * (double)b->peak_mvc, lo = thr * (1 - 1e-6), hi = thr * (1 + 1e-6);

			ck_assert(emg_synth_activation(s, c, b->onset - 1) == 0.0);
			ck_assert(emg_synth_activation(s, c, b->onset) > 0.0);
			ck_assert(emg_synth_activation(s, c, b->offset - 1) > 0.0);
			ck_assert(emg_synth_activation(s, c, b->offset) == 0.0);
			ck_assert(x[(b->onset - 1) * C + c] == 0.0f);
			ck_assert(x[b->onset * C + c] != 0.0f);
			ck_assert(x[(b->offset - 1) * C + c] != 0.0f);
			ck_assert(x[b->offset * C + c] == 0.0f);
			/* the 10 % crossings */
			ck_assert_uint_gt(b->onset_cross, b->onset);
			ck_assert_uint_le(b->onset_cross, b->onset + b->rise);
			ck_assert(emg_synth_activation(s, c, b->onset_cross - 1) < hi);
			ck_assert(emg_synth_activation(s, c, b->onset_cross) >= lo);
			ck_assert_uint_lt(b->offset_cross, b->offset);
			ck_assert_uint_ge(b->offset_cross, b->offset - b->fall);
			ck_assert(emg_synth_activation(s, c, b->offset_cross - 1) >= lo);
			ck_assert(emg_synth_activation(s, c, b->offset_cross) < hi);
			/* plateau where the truth says, rise monotonic */
			ck_assert(fabs(emg_synth_activation(s, c, b->onset + b->rise) - b->peak_mvc) <
				  1e-6);
			ck_assert(emg_synth_activation(s, c, b->onset + b->rise - 1) < b->peak_mvc);
			for (uint64_t j = b->onset + 1; j < b->onset + b->rise; j++)
				ck_assert(emg_synth_activation(s, c, j) >=
					  emg_synth_activation(s, c, j - 1));
		}
		/* everywhere: signal != 0 exactly where activation > 0 (no spike leaks out) */
		for (unsigned c = 0; c < C; c++)
			for (size_t j = 0; j < n; j++)
				if ((x[j * C + c] != 0.0f) != (emg_synth_activation(s, c, j) > 0)) {
					fprintf(stderr, "seed %" PRIu64 " ch %u sample %zu: x %g act %g\n",
						seed, c, j, x[j * C + c], emg_synth_activation(s, c, j));
					ck_abort();
				}

		/* the truth does not depend on tonic, ECG, cross-talk, motion or noise */
		struct emg_device_config all;
		emg_device_config_default(&all);
		all.realism = EMG_SYNTH_REALISTIC;
		all.realtime = false;
		all.scenario = "session";
		all.seed = seed;
		struct emg_synth *s2 = mk(&all);
		struct emg_truth *t2;
		size_t nt2 = truth_all(s2, 0, n - 10000, &t2);

		ck_assert_uint_eq(nt2, nt);
		ck_assert_int_eq(memcmp(t, t2, nt * sizeof(*t)), 0);
		/* ramps change the ramps, not the onsets */
		cfg.ramps = false;
		struct emg_synth *s3 = mk(&cfg);
		struct emg_truth *t3;
		size_t nt3 = truth_all(s3, 0, n - 10000, &t3);

		ck_assert_uint_eq(nt3, nt);
		for (size_t i = 0; i < nt; i++) {
			ck_assert_uint_eq(t3[i].onset, t[i].onset);
			ck_assert_uint_eq(t3[i].channel, t[i].channel);
		}
		free(t3);
		free(t2);
		free(t);
		free(x);
		emg_synth_free(s3);
		emg_synth_free(s2);
		emg_synth_free(s);
	}
}
END_TEST

/* Ramps: rises of 20-300 ms, decays of 50-300 ms, varied, linear and sigmoid profiles. */
START_TEST(test_real_ramps)
{
	size_t shapes[4] = { 0 }, fshapes[4] = { 0 }, total = 0, short_rise = 0, long_rise = 0;
	double sum = 0, sum2 = 0;

	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct emg_device_config cfg = cfg_real("session", seed);

		cfg.ramps = true;
		cfg.rate = seed == 4 ? 10000 : 2000;
		struct emg_synth *s = mk(&cfg);
		double fs = emg_synth_rate(s);
		struct emg_truth *t;
		size_t nt = truth_all(s, 0, emg_synth_script_length(s), &t);

		for (size_t i = 0; i < nt; i++) {
			double rise = t[i].rise / fs, fall = t[i].fall / fs;

			ck_assert_double_ge(rise, 0.020 - 0.5 / fs);
			ck_assert_double_le(rise, 0.300 + 0.5 / fs);
			ck_assert_double_ge(fall, 0.050 - 0.5 / fs);
			ck_assert_double_le(fall, 0.300 + 0.5 / fs);
			ck_assert_int_ne(t[i].rise_shape, EMG_SHAPE_QUADRATIC);
			ck_assert_int_ne(t[i].fall_shape, EMG_SHAPE_SMOOTHSTEP);
			shapes[t[i].rise_shape]++;
			fshapes[t[i].fall_shape]++;
			short_rise += rise < 0.080;
			long_rise += rise > 0.220;
			sum += rise;
			sum2 += rise * rise;
			total++;
			/* 10 % crossing: 10 % of the way up a linear ramp, later on a sigmoid */
			double cross = (double)(t[i].onset_cross - t[i].onset) / (t[i].rise + 1);
			if (t[i].rise_shape == EMG_SHAPE_LINEAR)
				ck_assert(fabs(cross - 0.1) <= 1.0 / (t[i].rise + 1) + 1e-9);
			else
				ck_assert(cross > 0.15 && cross < 0.3);
		}
		free(t);
		emg_synth_free(s);
	}
	double sd = sqrt(sum2 / total - (sum / total) * (sum / total));

	fprintf(stderr, "ramps: %zu bursts, rise linear %zu smoothstep %zu cosine %zu, mean %.0f ms "
		"SD %.0f ms; fall linear %zu cosine %zu quadratic %zu\n",
		total, shapes[EMG_SHAPE_LINEAR], shapes[EMG_SHAPE_SMOOTHSTEP],
		shapes[EMG_SHAPE_COSINE], 1e3 * sum / total, 1e3 * sd, fshapes[EMG_SHAPE_LINEAR],
		fshapes[EMG_SHAPE_COSINE], fshapes[EMG_SHAPE_QUADRATIC]);
	/* both kinds of profile, in sizeable shares, and durations spread over the range */
	ck_assert_uint_gt(shapes[EMG_SHAPE_LINEAR], total / 5);
	ck_assert_uint_gt(shapes[EMG_SHAPE_SMOOTHSTEP] + shapes[EMG_SHAPE_COSINE], total / 3);
	ck_assert_uint_gt(shapes[EMG_SHAPE_SMOOTHSTEP], total / 10);
	ck_assert_uint_gt(shapes[EMG_SHAPE_COSINE], total / 10);
	for (int k = 0; k < 4; k++)
		if (k != EMG_SHAPE_SMOOTHSTEP)
			ck_assert_uint_gt(fshapes[k], total / 10);
	ck_assert_uint_gt(short_rise, total / 10);
	ck_assert_uint_gt(long_rise, total / 10);
	ck_assert_double_gt(sd, 0.060);

	/* plain: the short half-cosine ramps */
	struct emg_device_config cfg = cfg_quiet("session", 1, INFINITY);
	struct emg_synth *s = mk(&cfg);
	struct emg_truth *t;
	size_t nt = truth_all(s, 0, emg_synth_script_length(s), &t);

	for (size_t i = 0; i < nt; i++) {
		ck_assert_int_eq(t[i].rise_shape, EMG_SHAPE_COSINE);
		ck_assert_int_eq(t[i].fall_shape, EMG_SHAPE_COSINE);
		ck_assert(t[i].rise >= 0.020 * FS && t[i].rise <= 0.040 * FS);
		ck_assert(t[i].fall >= 0.050 * FS && t[i].fall <= 0.100 * FS);
		ck_assert_uint_gt(t[i].onset_cross, t[i].onset);
		ck_assert(emg_synth_activation(s, t[i].channel, t[i].onset_cross) >=
			  0.1 * t[i].peak_mvc);
	}
	free(t);
	emg_synth_free(s);
}
END_TEST

/* Local maxima of |x| on channel c above thr, at least gap samples apart. */
static size_t peaks(const float *x, size_t n, unsigned C, unsigned c, double thr, size_t gap,
		    uint64_t *out, size_t max)
{
	size_t k = 0;

	for (size_t i = 1; i + 1 < n; i++) {
		double v = fabs(x[i * C + c]);

		if (v < thr || v < fabs(x[(i - 1) * C + c]) || v < fabs(x[(i + 1) * C + c]))
			continue;
		if (k && i - out[k - 1] < gap) {
			if (v > fabs(x[out[k - 1] * C + c]))
				out[k - 1] = i;
			continue;
		}
		if (k < max)
			out[k++] = i;
	}
	return k;
}

/* ECG: one heart, 50-110 bpm with beat-to-beat variability, amplitude as configured,
 * left/upper channels stronger, per-channel shapes, present at rest and in bursts. */
START_TEST(test_real_ecg)
{
	const size_t n = (size_t)(60 * FS);
	static const double uv[] = { 100, 200, 25 };
	uint64_t beats[200], pk[200];

	for (int u = 0; u < 3; u++) {
		struct emg_device_config cfg = cfg_real("rest", 20 + u);

		cfg.ecg_uv = uv[u];
		struct emg_synth *s = mk(&cfg);
		unsigned C = emg_synth_channels(s);
		float *x = gen(s, n);
		double amp[6];

		ck_assert_uint_eq(C, 6);
		size_t nb = emg_synth_heartbeats(s, 0, n, beats, 200);
		ck_assert_uint_le(nb, 200);
		double bpm = 60.0 * (double)(nb - 1) / ((beats[nb - 1] - beats[0]) / FS);
		ck_assert_double_ge(bpm, 55);
		ck_assert_double_le(bpm, 100);
		/* beat-to-beat: every RR within 50-110 bpm, successive differences 1-8 % */
		double dsum = 0;
		for (size_t i = 1; i < nb; i++) {
			double rr = (beats[i] - beats[i - 1]) / FS;

			ck_assert_double_ge(rr, 60.0 / 110 - 1 / FS);
			ck_assert_double_le(rr, 60.0 / 50 + 1 / FS);
			if (i > 1)
				dsum += fabs(rr - (beats[i - 1] - beats[i - 2]) / FS) / rr;
		}
		double hrv = dsum / (double)(nb - 2);
		fprintf(stderr, "ecg seed %d: %.1f bpm, mean |dRR|/RR %.1f %%\n", 20 + u, bpm, 100 * hrv);
		ck_assert_double_ge(hrv, 0.01);
		ck_assert_double_le(hrv, 0.08);

		for (unsigned c = 0; c < C; c++) {
			double m = 0;

			for (size_t i = 0; i < n; i++)
				m = fmax(m, fabs(x[i * C + c]));
			amp[c] = m;
			/* the measured peak is the configured one */
			ck_assert_double_lt(fabs(m / emg_synth_ecg_amplitude(s, c) - 1), 0.01);
			/* the same beats on every channel: peaks of |x| at the R peaks */
			size_t np = peaks(x, n, C, c, 0.6 * m, (size_t)(0.3 * FS), pk, 200);
			ck_assert_uint_eq(np, nb - (beats[0] == 0));
			for (size_t i = 0; i < np; i++) {
				size_t j = nb - np + i;
				ck_assert_uint_le(pk[i] > beats[j] ? pk[i] - beats[j] : beats[j] - pk[i], 3);
			}
		}
		/* default map: glute_max_l/r, glute_med_l/r, hip_flex_l/r on channels 0-5 */
		ck_assert_double_lt(fabs(amp[4] / uv[u] - 1), 0.01); /* hip_flex_l: strongest */
		for (unsigned c = 0; c < 6; c += 2)
			ck_assert_double_gt(amp[c], amp[c + 1]);   /* left over right */
		ck_assert_double_gt(amp[4], amp[2]);               /* hip flexor over glutes */
		ck_assert_double_gt(amp[2], amp[0]);
		ck_assert_double_gt(amp[5], amp[3]);
		ck_assert_double_gt(amp[3], amp[1]);
		for (unsigned c = 0; c < 6; c++)
			ck_assert_double_ge(amp[c], 0.3 * uv[u]);

		/* shapes differ between channels: normalised waveforms around one beat */
		size_t b0 = beats[nb / 2];
		double maxdiff = 0;
		for (unsigned c = 1; c < C; c++)
			for (size_t i = b0 - (size_t)(0.3 * FS); i < b0 + (size_t)(0.5 * FS); i++)
				maxdiff = fmax(maxdiff, fabs(fabs(x[i * C + c]) / amp[c] -
							     fabs(x[i * C]) / amp[0]));
		ck_assert_double_gt(maxdiff, 0.05);
		free(x);
		emg_synth_free(s);
	}

	/* rate across seeds; none without ECG */
	for (uint64_t seed = 1; seed <= 12; seed++) {
		struct emg_device_config cfg = cfg_real("rest", seed);

		cfg.ecg_uv = 100;
		struct emg_synth *s = mk(&cfg);
		size_t nb = emg_synth_heartbeats(s, 0, n, beats, 200);

		ck_assert_double_ge(nb, 50 - 1);
		ck_assert_double_le(nb, 110 + 1);
		emg_synth_free(s);
		cfg.ecg_uv = 0;
		s = mk(&cfg);
		ck_assert_uint_eq(emg_synth_heartbeats(s, 0, n, beats, 200), 0);
		ck_assert(emg_synth_ecg_amplitude(s, 0) == 0);
		emg_synth_free(s);
	}

	/* during bursts too: everything on, ECG on minus ECG off is the ECG alone */
	struct emg_device_config on, off;
	emg_device_config_default(&on);
	on.realism = EMG_SYNTH_REALISTIC;
	on.realtime = false;
	on.scenario = "bridge";
	off = on;
	off.ecg_uv = 0;
	struct emg_synth *a = mk(&on), *b = mk(&off);
	const size_t nn = (size_t)(12 * FS);
	float *x = gen(a, nn), *y = gen(b, nn);
	struct emg_truth *t;
	size_t nt = truth_all(a, 0, nn, &t);
	size_t in_burst = 0;

	ck_assert_uint_gt(nt, 0);
	size_t nb = emg_synth_heartbeats(a, 0, nn, beats, 200);
	for (size_t k = 0; k < nb; k++)
		for (size_t i = 0; i < nt; i++) {
			unsigned c = t[i].channel;
			if (beats[k] < t[i].onset || beats[k] >= t[i].offset)
				continue;
			double d = x[beats[k] * 6 + c] - y[beats[k] * 6 + c];
			ck_assert_double_lt(fabs(fabs(d) / emg_synth_ecg_amplitude(a, c) - 1), 0.02);
			in_burst++;
		}
	ck_assert_uint_gt(in_burst, 3);
	free(t);
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);
}
END_TEST

/* Tonic activity: low-level EMG at rest on some muscles, never in the truth. */
START_TEST(test_real_tonic)
{
	struct emg_device_config cfg = cfg_real("rest", 31);

	cfg.tonic = true;
	struct emg_synth *s = mk(&cfg);
	const size_t n = (size_t)(20 * FS);
	unsigned C = emg_synth_channels(s);
	float *x = gen(s, n);

	ck_assert_uint_eq(emg_synth_truth(s, 0, n, NULL, 0), 0);
	for (unsigned c = 0; c < C; c++) {
		double e = 0, mvc;

		for (size_t i = 0; i < n; i++)
			e += (double)x[i * C + c] * x[i * C + c];
		emg_synth_levels(s, c, NULL, &mvc);
		double frac = sqrt(e / n) / mvc;
		if (c < 2) /* glute max: silent at rest */
			ck_assert(e == 0);
		else /* glute med, hip flexors: 1-2 % MVC */
			ck_assert(frac > 0.008 && frac < 0.022);
		ck_assert(emg_synth_activation(s, c, n / 2) == 0);
	}
	free(x);
	emg_synth_free(s);
}
END_TEST

/* Cross-talk: a neighbour's EMG leaks in at 10-20 %, low-passed and slightly late;
 * the receiving channel's truth is unchanged. */
START_TEST(test_real_crosstalk)
{
	struct emg_device_config cfg = cfg_real("session", 41);

	cfg.ramps = true;
	struct emg_synth *a = mk(&cfg);
	cfg.crosstalk = true;
	struct emg_synth *b = mk(&cfg);
	const size_t n = (size_t)emg_synth_script_length(a);
	unsigned C = emg_synth_channels(a);
	float *x = gen(a, n), *y = gen(b, n);
	double *d = malloc(n * sizeof(double)), *src = malloc(n * sizeof(double));

	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(src);
	/* hip_flex_l (4) hears only glute_med_l (2); hip_flex_r (5) only glute_med_r (3) */
	for (unsigned r = 4; r < 6; r++) {
		unsigned sc = r - 2;
		double ed = 0, es = 0;

		for (size_t i = 0; i < n; i++) {
			d[i] = (double)y[i * C + r] - x[i * C + r];
			src[i] = x[i * C + sc];
			ed += d[i] * d[i];
			es += src[i] * src[i];
		}
		double ratio = sqrt(ed / es);
		/* the lag of the best match: a few samples (low-pass group delay ~2 ms) */
		int best = -1;
		double bestc = -1;
		for (int lag = 0; lag <= 20; lag++) {
			double cc = 0;
			for (size_t i = (size_t)lag; i < n; i++)
				cc += d[i] * src[i - (size_t)lag];
			if (cc > bestc)
				bestc = cc, best = lag;
		}
		fprintf(stderr, "cross-talk ch %u <- ch %u: %.1f %% of its EMG RMS, lag %d samples\n", r,
			sc, 100 * ratio, best);
		ck_assert_double_ge(ratio, 0.10);
		ck_assert_double_le(ratio, 0.20);
		ck_assert_int_ge(best, 1);
		ck_assert_int_le(best, 8);
	}
	/* glute med hears its two neighbours; glute max its one mapped neighbour (glute med) */
	for (unsigned c = 0; c < 4; c++) {
		double e = 0;
		for (size_t i = 0; i < n; i++)
			e += fabs((double)y[i * C + c] - x[i * C + c]);
		ck_assert_double_gt(e, 0);
	}
	/* the truth is the same list */
	struct emg_truth *ta, *tb;
	size_t na = truth_all(a, 0, n, &ta), nb = truth_all(b, 0, n, &tb);
	ck_assert_uint_eq(na, nb);
	ck_assert_int_eq(memcmp(ta, tb, na * sizeof(*ta)), 0);
	free(ta);
	free(tb);
	free(d);
	free(src);
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);
}
END_TEST

/* Motion artefacts: as each repetition's movement starts, 30-100 ms after its
 * first onset (the electromechanical delay), tens to hundreds of uV, mostly
 * below 20 Hz with some in-band content; not in the truth. */
START_TEST(test_real_motion)
{
	struct emg_device_config cfg = cfg_real("bridge", 51);
	struct emg_synth *a = mk(&cfg);
	cfg.motion = true;
	struct emg_synth *b = mk(&cfg);
	const size_t n = (size_t)emg_synth_script_length(a);
	unsigned C = emg_synth_channels(a);
	float *x = gen(a, n), *y = gen(b, n);
	float *d = malloc(n * C * sizeof(float));
	struct emg_truth *t;
	size_t nt = truth_all(b, 0, n, &t);

	ck_assert_ptr_nonnull(d);
	for (size_t i = 0; i < n * C; i++)
		d[i] = y[i] - x[i];
	ck_assert_uint_eq(nt, emg_synth_truth(a, 0, n, NULL, 0));
	/* per rep (5 reps): first non-zero sample after the rep's first onset; peak size */
	unsigned reps = 0;
	double lo_peak = 1e9, hi_peak = 0;
	for (size_t i = 0; i < nt; i++) {
		if (i > 0 && t[i - 1].rep == t[i].rep)
			continue; /* the truth is sorted by onset: t[i] is the rep's first onset */
		size_t first = SIZE_MAX;
		double peak = 0;
		size_t from = t[i].onset - (size_t)(0.3 * FS);

		for (size_t j = from; j < t[i].onset + (size_t)(1.5 * FS); j++)
			for (unsigned c = 0; c < C; c++) {
				if (d[j * C + c] != 0 && first == SIZE_MAX)
					first = j;
				peak = fmax(peak, fabs(d[j * C + c]));
			}
		double lead_ms = ((double)t[i].onset - (double)first) / FS * 1e3;
		/* 30-100 ms after the rep's start, the first onset +-5 ms of it */
		ck_assert_double_ge(lead_ms, -106);
		ck_assert_double_le(lead_ms, -24);
		lo_peak = fmin(lo_peak, peak);
		hi_peak = fmax(hi_peak, peak);
		reps++;
	}
	ck_assert_uint_eq(reps, 5);
	ck_assert_double_ge(lo_peak, 12);
	ck_assert_double_le(hi_peak, 300);
	/* and nothing between reps: zero 1.7 s after every rep's first onset (a start
	 * 0.1 s after it + 12 tau <= 1.44 s), up to the next */
	for (size_t i = 0; i < nt; i++) {
		size_t j = t[i].onset + (size_t)(1.7 * FS);
		for (unsigned c = 0; c < C; c++)
			ck_assert(d[j * C + c] == 0);
	}
	/* spectrum: most energy below 20 Hz, some in the 20-450 Hz band on every rep */
	double in_band = 0, total = 0, bpeak[5] = { 0 };
	for (unsigned c = 0; c < C; c++) {
		double *bl = bandlimit(d, n, C, c, FS);
		for (size_t i = 0; i < n; i++) {
			in_band += bl[i] * bl[i];
			total += (double)d[i * C + c] * d[i * C + c];
		}
		for (size_t i = 0, r = 0; i < nt; i++) {
			if (i > 0 && t[i - 1].rep == t[i].rep)
				continue;
			for (size_t j = t[i].onset - (size_t)(0.1 * FS); j < t[i].onset + FS; j++)
				bpeak[r] = fmax(bpeak[r], fabs(bl[j]));
			r++;
		}
		free(bl);
	}
	fprintf(stderr, "motion: peaks %.0f-%.0f uV, %.2f %% of the energy in 20-450 Hz, band-passed "
		"peaks %.1f %.1f %.1f %.1f %.1f uV\n", lo_peak, hi_peak, 100 * in_band / total,
		bpeak[0], bpeak[1], bpeak[2], bpeak[3], bpeak[4]);
	ck_assert_double_gt(in_band / total, 0.001);
	ck_assert_double_lt(in_band / total, 0.2);
	for (int r = 0; r < 5; r++) {
		ck_assert_double_gt(bpeak[r], 2);
		ck_assert_double_lt(bpeak[r], 80);
	}
	free(t);
	free(d);
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);
}
END_TEST

/* CV and kurtosis of channel c's plateau signal in 100 ms windows, over all plateaus. */
static void plateau_stats(struct emg_synth *s, const float *x, size_t n, unsigned c, double *cv,
			  double *kurt)
{
	unsigned C = emg_synth_channels(s);
	struct emg_truth *t;
	size_t nt = truth_all(s, 0, n, &t);
	double s1 = 0, s2 = 0, m2 = 0, m4 = 0;
	size_t nw = 0, ns = 0;
	const size_t w = (size_t)(0.1 * FS);

	for (size_t i = 0; i < nt; i++) {
		if (t[i].channel != c)
			continue;
		size_t a = t[i].onset + t[i].rise + (size_t)(0.05 * FS);
		size_t b = t[i].offset - t[i].fall - (size_t)(0.05 * FS);
		double norm = t[i].peak_mvc;
		for (size_t j = a; j + w <= b; j += w) {
			double e = 0;
			for (size_t k = j; k < j + w; k++) {
				double v = x[k * C + c] / norm;
				e += v * v;
				m2 += v * v;
				m4 += v * v * v * v;
				ns++;
			}
			double r = sqrt(e / w);
			s1 += r;
			s2 += r * r;
			nw++;
		}
	}
	double mean = s1 / nw;
	*cv = sqrt(s2 / nw - mean * mean) / mean;
	*kurt = (m4 / ns) / ((m2 / ns) * (m2 / ns));
	free(t);
}

/* Motor-unit-like non-stationarity: plateau amplitude fluctuates and has spikes. */
START_TEST(test_real_fluctuation)
{
	struct emg_device_config cfg = cfg_real("hip_thrust", 61);
	struct emg_synth *a = mk(&cfg);
	cfg.ramps = true;
	struct emg_synth *b = mk(&cfg);
	const size_t n = (size_t)emg_synth_script_length(a);
	float *x = gen(a, n), *y = gen(b, n);
	double cv_a, cv_b, k_a, k_b;

	plateau_stats(a, x, n, 0, &cv_a, &k_a);
	plateau_stats(b, y, n, 0, &cv_b, &k_b);
	fprintf(stderr, "plateau 100 ms RMS CV: plain ramps %.3f, MU fluctuation %.3f; kurtosis "
		"%.2f vs %.2f\n", cv_a, cv_b, k_a, k_b);
	ck_assert_double_gt(cv_b, 1.3 * cv_a);
	ck_assert_double_gt(cv_b, 0.08);
	ck_assert_double_lt(cv_b, 0.30);
	ck_assert_double_gt(k_b, k_a + 0.2);
	free(x);
	free(y);
	emg_synth_free(a);
	emg_synth_free(b);
}
END_TEST

static Suite *synth_suite(void)
{
	Suite *s = suite_create("synth");
	TCase *tc = tcase_create("signal");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_create);
	tcase_add_test(tc, test_determinism);
	tcase_add_test(tc, test_seeds_differ);
	tcase_add_test(tc, test_white_noise);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_spectrum);
	tcase_add_test(tc, test_snr);
	tcase_add_test(tc, test_truth_exact);
	tcase_add_test(tc, test_firing_order);
	tcase_add_test(tc, test_hip_thrust_over_mvc);
	tcase_add_test(tc, test_bilateral);
	tcase_add_test(tc, test_mains);
	tcase_add_test(tc, test_pops);
	tcase_add_test(tc, test_wander);
	tcase_add_test(tc, test_cost);
	tcase_add_test(tc, test_plain_unchanged);
	tcase_add_test(tc, test_real_truth_exact);
	tcase_add_test(tc, test_real_ramps);
	tcase_add_test(tc, test_real_ecg);
	tcase_add_test(tc, test_real_tonic);
	tcase_add_test(tc, test_real_crosstalk);
	tcase_add_test(tc, test_real_motion);
	tcase_add_test(tc, test_real_fluctuation);
	suite_add_tcase(s, tc);

	tc = tcase_create("device");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_device_realtime);
	tcase_add_test(tc, test_device_resync);
	tcase_add_test(tc, test_device_fast);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(synth_suite());
}
