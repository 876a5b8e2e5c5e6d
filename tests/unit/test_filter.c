/* SPDX-License-Identifier: MIT */
/*
 * Tests of the band-pass + notch chain: the designed response against the
 * analytic bilinear Butterworth, the float32 run path against the designed
 * response, notch depth, stability at every supported rate, channel
 * independence of the structure-of-arrays loop, and spec validation.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "simd.h"
#include "testutil.h"

static struct test_rng rng = TEST_RNG_SEEDED(1); /* the tests' noise */

static const double rates[] = { 250, 500, 1000, 1024, 2000, 2048, 4000, 8000, 10000, 16000 };
#define NRATES (sizeof(rates) / sizeof(rates[0]))

static struct emg_filter *make(double fs, double hp, unsigned hpo, double lp, unsigned lpo,
			       double mains, unsigned nch)
{
	struct emg_filter_spec s;
	struct emg_filter *f = NULL;

	emg_filter_spec_default(&s);
	s.highpass_hz = hp;
	s.highpass_order = hpo;
	s.lowpass_hz = lp;
	s.lowpass_order = lpo;
	s.mains_hz = mains;
	ck_assert_int_eq(emg_filter_new(&f, &s, fs, nch), 0);
	ck_assert_ptr_nonnull(f);
	return f;
}

/* Bilinear Butterworth magnitude squared; hp or lp 0 means that half is absent. */
static double analytic_db(double fs, double hz, double hp, unsigned hpo, double lp, unsigned lpo)
{
	double t = tan(M_PI * hz / fs), g2 = 1.0;

	if (hp > 0)
		g2 /= 1.0 + pow(tan(M_PI * hp / fs) / t, 2.0 * hpo);
	if (lp > 0)
		g2 /= 1.0 + pow(t / tan(M_PI * lp / fs), 2.0 * lpo);
	return 10.0 * log10(g2);
}

/* Run a single-channel sine of amplitude 1 through f in odd-sized chunks, into out. */
static void run_sine(struct emg_filter *f, double fs, double hz, float *out, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		out[i] = (float)sin(2.0 * M_PI * hz * i / fs);
	for (unsigned i = 0; i < n;) {
		unsigned chunk = n - i < 37 ? n - i : 37;

		emg_filter_run(f, out + i, chunk);
		i += chunk;
	}
}

/* Amplitude of the hz component of x[0..n) by quadrature demodulation (n whole periods). */
static double lockin_amp(const float *x, unsigned n, double fs, double hz, unsigned start)
{
	double re = 0, im = 0;

	for (unsigned i = 0; i < n; i++) {
		double ph = 2.0 * M_PI * hz * (start + i) / fs;

		re += x[i] * cos(ph);
		im += x[i] * sin(ph);
	}
	return 2.0 * sqrt(re * re + im * im) / n;
}

/* Check reports every passing assertion to its parent: per-sample checks count, then assert once. */
static size_t count_nonfinite(const float *x, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += !isfinite(x[i]);
	return bad;
}

static double rms(const float *x, unsigned n, size_t step)
{
	double acc = 0;

	for (unsigned i = 0; i < n; i++)
		acc += (double)x[i * step] * x[i * step];
	return sqrt(acc / n);
}

/* Notch attenuation relative to the same chain without notches, at hz. */
static double notch_db(const struct emg_filter *f, const struct emg_filter *ref, double hz)
{
	return emg_filter_response_db(f, hz) - emg_filter_response_db(ref, hz);
}

/* Bisect for the -3 dB point of the notch between inside (deep) and outside (shallow). */
static double notch_edge(const struct emg_filter *f, const struct emg_filter *ref, double inside,
			 double outside)
{
	for (int i = 0; i < 60; i++) {
		double mid = 0.5 * (inside + outside);

		if (notch_db(f, ref, mid) < 10.0 * log10(0.5))
			inside = mid;
		else
			outside = mid;
	}
	return 0.5 * (inside + outside);
}

/*
 * mains = auto: noise on 8 channels, an electrode offset, and a hum of 50 Hz,
 * 60 Hz or none.  After the first second the filter keeps the family the hum
 * is on (50 without hum), notches it as a fixed 50 or 60 Hz chain would, and
 * gives the same output whatever the block sizes it was fed in.
 */
START_TEST(test_mains_auto)
{
	static const double hum_hz[] = { 0, 50, 60 };
	const double fs = 2000, hz = hum_hz[_i];
	const unsigned nch = 8, n = 3 * 2000;
	float *x = malloc(sizeof(float) * n * nch), *y = malloc(sizeof(float) * n * nch);
	struct emg_filter *f = make(fs, 20, 2, 450, 4, EMG_FILTER_MAINS_AUTO, nch);
	struct emg_filter *g = make(fs, 20, 2, 450, 4, EMG_FILTER_MAINS_AUTO, nch);
	char buf[64];

	rng = test_rng_seeded(77 + _i);
	for (unsigned i = 0; i < n; i++)
		for (unsigned c = 0; c < nch; c++)
			x[i * nch + c] = (float)(5.0 * test_rng_sym(&rng) + 3000.0 * c +
						 (hz > 0 ? 100.0 * sin(2.0 * M_PI * hz * i / fs + c) : 0.0));
	memcpy(y, x, sizeof(float) * n * nch);
	ck_assert(emg_filter_mains_hz(f) == EMG_FILTER_MAINS_AUTO);
	emg_filter_run(f, x, n); /* one call across the decision ... */
	for (unsigned i = 0; i < n; i += 77) /* ... and blocks that straddle it */
		emg_filter_run(g, y + (size_t)i * nch, n - i < 77 ? n - i : 77);
	ck_assert_int_eq(memcmp(x, y, sizeof(float) * n * nch), 0);

	const double want = hz == 60 ? 60 : 50;
	ck_assert_double_eq(emg_filter_mains_hz(f), want);
	ck_assert_uint_eq(emg_filter_notches(f), want == 60 ? 7 : 8);
	ck_assert_uint_eq(emg_filter_sections(f), want == 60 ? 10 : 11);
	emg_filter_describe(f, buf, sizeof(buf));
	ck_assert_str_eq(buf, want == 60 ? "HP:20Hz LP:450Hz N:60Hz" : "HP:20Hz LP:450Hz N:50Hz");
	/* the last second: the hum notched to under the noise (a 100 uV hum, 5 uV-ish noise) */
	for (unsigned c = 0; hz > 0 && c < nch; c++) {
		float *col = malloc(sizeof(float) * 2000);
		for (unsigned i = 0; i < 2000; i++)
			col[i] = x[(size_t)(n - 2000 + i) * nch + c];
		ck_assert_msg(lockin_amp(col, 2000, fs, hz, n - 2000) < 1.0, "channel %u: %g uV of hum left", c,
			      lockin_amp(col, 2000, fs, hz, n - 2000));
		free(col);
	}
	emg_filter_free(f);
	emg_filter_free(g);
	free(x);
	free(y);
}
END_TEST

START_TEST(test_defaults_and_describe)
{
	struct emg_filter_spec s;
	struct emg_filter *f;
	char buf[64];

	emg_filter_spec_default(&s);
	ck_assert(s.highpass_hz == 20.0 && s.highpass_order == 2);
	ck_assert(s.lowpass_hz == 450.0 && s.lowpass_order == 4);
	ck_assert(s.mains_hz == EMG_FILTER_MAINS_AUTO && s.notch_q == 30.0);

	ck_assert_int_eq(emg_filter_new(&f, &s, 2000, 8), 0);
	/* while it measures the hum: the 50 Hz family runs */
	ck_assert_uint_eq(emg_filter_notches(f), 8);
	ck_assert_str_eq((emg_filter_describe(f, buf, sizeof(buf)), buf), "HP:20Hz LP:450Hz N:auto");
	ck_assert(emg_filter_mains_hz(f) == EMG_FILTER_MAINS_AUTO);
	emg_filter_free(f);

	s.mains_hz = 50;
	ck_assert_int_eq(emg_filter_new(&f, &s, 2000, 8), 0);
	/* 1 high-pass + 2 low-pass sections, notches at 50..400 (450 is not strictly below) */
	ck_assert_uint_eq(emg_filter_notches(f), 8);
	ck_assert_uint_eq(emg_filter_sections(f), 11);
	ck_assert(emg_filter_lowpass_hz(f) == 450.0);
	ck_assert_int_eq(emg_filter_describe(f, buf, sizeof(buf)), 23);
	ck_assert_str_eq(buf, "HP:20Hz LP:450Hz N:50Hz");
	/* truncation reports the full length like snprintf */
	ck_assert_int_eq(emg_filter_describe(f, buf, 5), 23);
	ck_assert_str_eq(buf, "HP:2");
	emg_filter_free(f);

	f = make(2000, 20, 2, 450, 4, 60, 1);
	ck_assert_uint_eq(emg_filter_notches(f), 7); /* 60..420 */
	emg_filter_describe(f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "HP:20Hz LP:450Hz N:60Hz");
	emg_filter_free(f);

	f = make(2000, 0, 2, 0, 4, 0, 1);
	ck_assert_uint_eq(emg_filter_sections(f), 0);
	ck_assert(emg_filter_lowpass_hz(f) == 0.0);
	emg_filter_describe(f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "HP:off LP:off N:off");
	ck_assert_double_eq_tol(emg_filter_response_db(f, 123.0), 0.0, 1e-12);
	ck_assert_double_eq(emg_filter_max_pole_radius(f), 0.0);
	emg_filter_free(f);

	/* no low-pass: harmonics up to Nyquist (50..950 at 2 kHz) */
	f = make(2000, 10, 4, 0, 4, 50, 1);
	ck_assert_uint_eq(emg_filter_notches(f), 19);
	ck_assert_uint_eq(emg_filter_sections(f), 21);
	emg_filter_describe(f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "HP:10Hz LP:off N:50Hz");
	emg_filter_free(f);

	/* mains above the low-pass corner: nothing to notch */
	f = make(2000, 10, 2, 45, 4, 50, 1);
	ck_assert_uint_eq(emg_filter_notches(f), 0);
	emg_filter_describe(f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "HP:10Hz LP:45Hz N:off");
	emg_filter_free(f);
}
END_TEST

/* The designed chain (float coefficients) against the analytic bilinear Butterworth. */
START_TEST(test_butterworth_vs_analytic)
{
	static const unsigned orders[][2] = { { 2, 4 }, { 2, 2 }, { 4, 4 }, { 6, 6 }, { 8, 8 },
					      { 8, 2 } };
	const double fs = 2000, hp = 20, lp = 450;
	double worst_pass = 0, worst_stop = 0;

	for (unsigned o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
		struct emg_filter *f = make(fs, hp, orders[o][0], lp, orders[o][1], 0, 1);

		ck_assert_uint_eq(emg_filter_sections(f), (orders[o][0] + orders[o][1]) / 2);
		for (double hz = 0.5; hz < 1000.0; hz += 0.5) {
			double want = analytic_db(fs, hz, hp, orders[o][0], lp, orders[o][1]);
			double got = emg_filter_response_db(f, hz);
			double err = fabs(got - want);

			/* absolute in the band and skirts, relative in the deep stop band */
			if (want > -60.0)
				worst_pass = fmax(worst_pass, err);
			else
				worst_stop = fmax(worst_stop, err / fabs(want));
		}
		emg_filter_free(f);
	}
	ck_assert_double_lt(worst_pass, 0.01);
	ck_assert_double_lt(worst_stop, 0.01);
	printf("butterworth: max |dev| %.2e dB above -60 dB, %.2e relative below\n", worst_pass,
	       worst_stop);
}
END_TEST

START_TEST(test_corners_3db)
{
	const double fs = 2000, m3 = 10.0 * log10(0.5);
	struct emg_filter *f;

	/* each half alone: exactly -3.01 dB at its corner */
	for (unsigned n = 2; n <= 8; n += 2) {
		f = make(fs, 20, n, 0, 2, 0, 1);
		ck_assert_double_eq_tol(emg_filter_response_db(f, 20), m3, 0.001);
		emg_filter_free(f);
		f = make(fs, 0, 2, 450, n, 0, 1);
		ck_assert_double_eq_tol(emg_filter_response_db(f, 450), m3, 0.001);
		emg_filter_free(f);
	}
	/* the default band-pass, notch off */
	f = make(fs, 20, 2, 450, 4, 0, 1);
	ck_assert_double_eq_tol(emg_filter_response_db(f, 20), m3, 0.1);
	ck_assert_double_eq_tol(emg_filter_response_db(f, 450), m3, 0.1);
	printf("corners: %.4f dB at 20 Hz, %.4f dB at 450 Hz\n", emg_filter_response_db(f, 20),
	       emg_filter_response_db(f, 450));
	emg_filter_free(f);
}
END_TEST

/* _i selects 50 or 60 Hz mains. */
START_TEST(test_notch_depth_response)
{
	const double fs = 2000, mains = _i ? 60 : 50;
	struct emg_filter *f = make(fs, 20, 2, 450, 4, mains, 1);
	struct emg_filter *ref = make(fs, 20, 2, 450, 4, 0, 1);
	double shallowest = -INFINITY;

	ck_assert_uint_eq(emg_filter_notches(f), _i ? 7 : 8);
	for (unsigned h = 1; h <= emg_filter_notches(f); h++) {
		double depth = notch_db(f, ref, h * mains);

		ck_assert_msg(depth <= -40.0, "%g Hz: %g dB", h * mains, depth);
		shallowest = fmax(shallowest, depth);
	}
	/* no notch on the first harmonic not below the corner (450 or 480 Hz), only skirts */
	ck_assert_double_gt(notch_db(f, ref, 450 + 30 * _i), -0.5);
	printf("notch %g Hz (design): shallowest depth %.1f dB\n", mains, shallowest);
	emg_filter_free(f);
	emg_filter_free(ref);
}
END_TEST

/*
 * Every notch is f0/Q wide at -3 dB at every rate, including harmonics near
 * Nyquist (the plain cookbook notch would be up to 4x narrower there).  A lone
 * notch is exact; the skirts of the neighbouring harmonics widen the upper ones
 * by up to ~4%, hence the 5% tolerance.
 */
START_TEST(test_notch_bandwidth)
{
	double worst = 0;

	for (unsigned r = 0; r < NRATES; r++) {
		for (unsigned m = 0; m < 2; m++) {
			const double mains = m ? 60 : 50, fs = rates[r];
			struct emg_filter *f = make(fs, 20, 2, 450, 4, mains, 1);
			struct emg_filter *ref = make(fs, 20, 2, 450, 4, 0, 1);

			for (unsigned h = 1; h <= emg_filter_notches(f); h++) {
				double f0 = h * mains, bw = f0 / 30.0;
				double lo = notch_edge(f, ref, f0, f0 - 0.4 * mains);
				double hi = notch_edge(f, ref, f0, f0 + 0.4 * mains);
				double err = fabs((hi - lo) / bw - 1.0);

				ck_assert_msg(err < 0.05, "fs %g: %g Hz notch %g Hz wide, want %g",
					      fs, f0, hi - lo, bw);
				worst = fmax(worst, err);
			}
			emg_filter_free(f);
			emg_filter_free(ref);
		}
	}
	printf("notch -3 dB width: max deviation from f0/Q %.2f%%\n", 100.0 * worst);
}
END_TEST

/* _i selects 50 or 60 Hz mains: long sines through the float32 path. */
START_TEST(test_notch_depth_sine)
{
	const double fs = 2000, mains = _i ? 60 : 50;
	const unsigned n = 12 * 2000, win = 2000; /* 12 s; measure the last 1 s (whole periods) */
	float *buf = malloc(n * sizeof(float));
	double shallowest = -INFINITY;
	struct emg_filter *f = make(fs, 20, 2, 450, 4, mains, 1);

	ck_assert_ptr_nonnull(buf);
	for (unsigned h = 1; h <= emg_filter_notches(f); h++) {
		double out, depth;

		emg_filter_reset(f);
		run_sine(f, fs, h * mains, buf, n);
		out = rms(buf + n - win, win, 1) * sqrt(2.0);
		depth = 20.0 * log10(out);
		ck_assert_msg(depth <= -40.0, "%g Hz: %g dB", h * mains, depth);
		shallowest = fmax(shallowest, depth);
	}
	printf("notch %g Hz (float32 run): shallowest depth %.1f dB\n", mains, shallowest);
	emg_filter_free(f);
	free(buf);
}
END_TEST

/* Passband sines between the harmonics come out at the designed gain. */
START_TEST(test_passband_sine)
{
	static const double tones[] = { 30, 80, 130, 230, 310 };
	const double fs = 2000;
	const unsigned n = 8 * 2000, win = 2000;
	float *buf = malloc(n * sizeof(float));
	double worst = 0;

	ck_assert_ptr_nonnull(buf);
	for (unsigned m = 0; m < 2; m++) {
		struct emg_filter *f = make(fs, 20, 2, 450, 4, m ? 60 : 50, 1);

		for (unsigned t = 0; t < sizeof(tones) / sizeof(tones[0]); t++) {
			double got, want;

			emg_filter_reset(f);
			run_sine(f, fs, tones[t], buf, n);
			got = 20.0 * log10(lockin_amp(buf + n - win, win, fs, tones[t], n - win));
			want = emg_filter_response_db(f, tones[t]);
			ck_assert_msg(fabs(got - want) < 0.5, "%g Hz: %g dB, design %g dB", tones[t],
				      got, want);
			worst = fmax(worst, fabs(got - want));
		}
		emg_filter_free(f);
	}
	ck_assert(worst < 0.01);
	printf("passband sines: max |measured - design| %.2e dB\n", worst);
	free(buf);
}
END_TEST

/* _i indexes rates[]; both mains settings (and none) at each rate. */
START_TEST(test_stability_rate)
{
	const double fs = rates[_i];
	const unsigned nch = 3;

	for (unsigned m = 0; m < 3; m++) {
		const double mains = m == 0 ? 50 : m == 1 ? 60 : 0;
		struct emg_filter *f = make(fs, 20, 2, 450, 4, mains, nch);
		const unsigned n = (unsigned)(3 * fs), third = n / 3;
		float *buf = calloc((size_t)n * nch, sizeof(float));
		double e_first = 0, e_last = 0, r = emg_filter_max_pole_radius(f);

		ck_assert_ptr_nonnull(buf);
		ck_assert_msg(r < 1.0, "fs %g mains %g: pole radius %.9f", fs, mains, r);
		ck_assert(emg_filter_lowpass_hz(f) == fmin(450.0, 0.45 * fs));

		/* impulse response: the last second carries a vanishing share of the energy */
		buf[0] = 1.0f;
		emg_filter_run(f, buf, n);
		for (unsigned i = 0; i < third; i++) {
			e_first += (double)buf[i * nch] * buf[i * nch];
			e_last += (double)buf[(n - third + i) * nch] * buf[(n - third + i) * nch];
		}
		ck_assert_msg(e_first > 0 && e_last < 1e-6 * e_first,
			      "fs %g mains %g: impulse energy %g then %g", fs, mains, e_first, e_last);
		ck_assert_uint_eq(count_nonfinite(buf, (size_t)n * nch), 0);

		/* 10 s of loud white noise: finite, and bounded by the band-pass */
		rng = test_rng_seeded((uint64_t)fs + m);
		emg_filter_reset(f);
		for (unsigned rep = 0; rep < 10 * fs / n + 1; rep++) {
			for (size_t i = 0; i < (size_t)n * nch; i++)
				buf[i] = (float)(5000.0 * test_rng_sym(&rng));
			emg_filter_run(f, buf, n);
			ck_assert_msg(count_nonfinite(buf, (size_t)n * nch) == 0,
				      "fs %g: non-finite output", fs);
			for (unsigned c = 0; c < nch; c++)
				ck_assert(rms(buf + c, n, nch) < 5000.0);
		}
		emg_filter_free(f);
		free(buf);
	}
}
END_TEST

START_TEST(test_clamp_250)
{
	struct emg_filter *f = make(250, 20, 2, 450, 4, 50, 2);
	char buf[64];

	ck_assert_double_eq_tol(emg_filter_lowpass_hz(f), 112.5, 1e-12);
	ck_assert_uint_eq(emg_filter_notches(f), 2); /* 50 and 100 Hz */
	emg_filter_describe(f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "HP:20Hz LP:112.5Hz N:50Hz");
	emg_filter_free(f);

	/* the low-pass really is designed at 112.5 Hz: -3.01 dB there, after the high-pass part */
	f = make(250, 20, 2, 450, 4, 0, 2);
	ck_assert_double_eq_tol(emg_filter_response_db(f, 112.5) - analytic_db(250, 112.5, 20, 2, 0, 4),
				10.0 * log10(0.5), 0.01);
	emg_filter_free(f);

	f = make(250, 20, 2, 450, 4, 60, 2);
	ck_assert_uint_eq(emg_filter_notches(f), 1); /* 120 Hz is above 112.5 */
	emg_filter_free(f);

	/* an explicit low-pass below the clamp is kept */
	f = make(250, 20, 2, 100, 4, 50, 2);
	ck_assert_double_eq_tol(emg_filter_lowpass_hz(f), 100.0, 1e-12);
	ck_assert_uint_eq(emg_filter_notches(f), 1); /* 100 is not strictly below 100 */
	emg_filter_free(f);
}
END_TEST

/* _i indexes the channel counts: all channels in one call == each channel alone. */
START_TEST(test_multichannel)
{
	static const unsigned counts[] = { 8, 6, 257, 1, 9 };
	const unsigned nch = counts[_i], n = 3000;
	const double fs = 2000;
	float *all = malloc((size_t)n * nch * sizeof(float));
	float *one = malloc(n * sizeof(float));
	float *ref = malloc((size_t)n * nch * sizeof(float));
	struct emg_filter *fa = make(fs, 20, 2, 450, 4, 50, nch);
	struct emg_filter *f1 = make(fs, 20, 2, 450, 4, 50, 1);
	unsigned inexact = 0, worst_c = 0, worst_i = 0;
	double worst = 0;

	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(one);
	ck_assert_ptr_nonnull(ref);
	/* every channel different: its own noise level, tone and DC offset */
	rng = test_rng_seeded(nch);
	for (unsigned i = 0; i < n; i++)
		for (unsigned c = 0; c < nch; c++)
			all[(size_t)i * nch + c] =
				(float)((c + 1) * 10.0 * test_rng_sym(&rng) +
					100.0 * sin(2.0 * M_PI * (13.0 + 7.0 * c) * i / fs) +
					(c % 5) * 300.0);
	/* each channel alone first, from a copy, split at odd places */
	for (unsigned c = 0; c < nch; c++) {
		emg_filter_reset(f1);
		for (unsigned i = 0; i < n; i++)
			one[i] = all[(size_t)i * nch + c];
		emg_filter_run(f1, one, 1000);
		emg_filter_run(f1, one + 1000, 1);
		emg_filter_run(f1, one + 1001, n - 1001);
		for (unsigned i = 0; i < n; i++)
			ref[(size_t)i * nch + c] = one[i];
	}
	emg_filter_run(fa, all, 1000);
	emg_filter_run(fa, all + 1000 * nch, 1);
	emg_filter_run(fa, all + 1001 * nch, n - 1001);
	ck_assert_uint_eq(count_nonfinite(ref, (size_t)n * nch), 0);
	ck_assert_uint_eq(count_nonfinite(all, (size_t)n * nch), 0);
	for (unsigned c = 0; c < nch; c++) {
		double peak = 0;

		for (unsigned i = 0; i < n; i++)
			peak = fmax(peak, fabs(ref[(size_t)i * nch + c]));
		ck_assert(peak > 1.0);
		for (unsigned i = 0; i < n; i++) {
			float a = all[(size_t)i * nch + c], b = ref[(size_t)i * nch + c];

			inexact += a != b;
			if (fabs(a - b) / peak > worst) {
				worst = fabs(a - b) / peak;
				worst_c = c;
				worst_i = i;
			}
		}
	}
	ck_assert_msg(worst <= 1e-6, "nch %u ch %u frame %u: off by %g of the peak", nch, worst_c,
		      worst_i, worst);
	printf("multichannel %u: %u of %u samples not bit-exact\n", nch, inexact, n * nch);
	emg_filter_free(fa);
	emg_filter_free(f1);
	free(all);
	free(one);
	free(ref);
}
END_TEST

START_TEST(test_reset)
{
	const unsigned n = 4000;
	float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
	struct emg_filter *f = make(2000, 20, 2, 450, 4, 50, 1);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	rng = test_rng_seeded(7);
	for (unsigned i = 0; i < n; i++)
		a[i] = b[i] = (float)(1000.0 * test_rng_sym(&rng));
	emg_filter_run(f, a, n);
	emg_filter_reset(f);
	emg_filter_run(f, b, n);
	ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
	emg_filter_run(f, b, 0); /* no-op */
	emg_filter_free(f);
	emg_filter_free(NULL);
	free(a);
	free(b);
}
END_TEST

/*
 * A DC-coupled amplifier (ADS1299) starts with electrode offsets of up to
 * hundreds of mV.  The output must equal that of the same signal without
 * them from the first sample on, to the inputs' own float rounding (0.016 uV
 * at 300 mV).  Filtered as they came, a 300 mV offset rang for 1-2 s from
 * the start and then left rounding noise of 0.08 uV at 250 Hz, 2.5 uV at 2 kHz
 * and 52 uV at 16 kHz in the float states (filter.c, note_offset()).
 */
START_TEST(test_electrode_offset)
{
	const double fs = rates[_i];
	const unsigned nch = 8, n = (unsigned)(2 * fs);
	float *a = malloc(sizeof(float) * n * nch), *b = malloc(sizeof(float) * n * nch);
	struct emg_filter_spec spec;
	struct emg_filter *fa, *fb;
	double worst = 0, noise = 0;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	emg_filter_spec_default(&spec);
	ck_assert_int_eq(emg_filter_new(&fa, &spec, fs, nch), 0);
	ck_assert_int_eq(emg_filter_new(&fb, &spec, fs, nch), 0);
	rng = test_rng_seeded(11);
	for (unsigned i = 0; i < n; i++)
		for (unsigned c = 0; c < nch; c++) {
			const double offset = (c % 2 ? -1.0 : 1.0) * 300000.0 * (c + 1) / nch; /* uV */
			const double v = 10.0 * (test_rng_sym(&rng) - 0.5); /* ~3 uV RMS */
			a[i * nch + c] = (float)v;
			b[i * nch + c] = (float)(v + offset);
		}
	/* in uneven blocks: priming happens at the first frame whatever the split */
	emg_filter_run(fa, a, n);
	emg_filter_run(fb, b, 7);
	emg_filter_run(fb, b + 7 * nch, n - 7);
	for (unsigned i = 0; i < n * nch; i++) {
		worst = fmax(worst, fabs((double)a[i] - b[i]));
		noise += (double)a[i] * a[i];
	}
	noise = sqrt(noise / (n * nch));
	printf("electrode offsets up to 300 mV at %g Hz: output differs by %.3f uV at most "
	       "(the signal %.2f uV RMS)\n", fs, worst, noise);
	ck_assert_msg(worst < 0.05, "offset leaks %.3f uV into a %.2f uV signal", worst, noise);
	emg_filter_free(fa);
	emg_filter_free(fb);
	free(a);
	free(b);
}
END_TEST

/*
 * Frames lost, then the amplifier back with another offset, after a drift:
 * 100 mV drifting 1 mV/s for 1 s, a gap, -150 mV.  With emg_filter_gap()
 * the jump across the gap is taken as an offset change, whatever the drift
 * left in the states: the 0.5 s after it stays within 25 uV, the noise's own
 * peaks and the drift stopping (~10 uV per mV/s).  Filtered as a step, 250 mV
 * rang at tens of mV.
 */
START_TEST(test_offset_gap)
{
	const double fs = 2000;
	const unsigned nch = 4, n = 2000;
	float *a = malloc(sizeof(float) * n * nch), *b = malloc(sizeof(float) * n * nch);
	struct emg_filter_spec spec;
	struct emg_filter *f;
	double worst = 0;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	emg_filter_spec_default(&spec);
	ck_assert_int_eq(emg_filter_new(&f, &spec, fs, nch), 0);
	rng = test_rng_seeded(5);
	for (unsigned i = 0; i < n; i++)
		for (unsigned c = 0; c < nch; c++) {
			a[i * nch + c] = (float)(100000.0 + 1000.0 * i / fs + 10.0 * (test_rng_sym(&rng) - 0.5));
			b[i * nch + c] = (float)(-150000.0 + 10.0 * (test_rng_sym(&rng) - 0.5));
		}
	emg_filter_run(f, a, n);
	emg_filter_gap(f);
	emg_filter_run(f, b, n);
	for (unsigned i = 0; i < n / 2 * nch; i++) {
		const double v = fabs(b[i]);

		/* not fmax(): aarch64 GCC 12's vectoriser crashes on that reduction here */
		if (v > worst)
			worst = v;
	}
	printf("a 250 mV offset change across a gap: output within %.2f uV\n", worst);
	ck_assert_msg(worst < 25.0, "the gap rings: %.1f uV", worst);
	emg_filter_free(f);
	free(a);
	free(b);
}
END_TEST

/* After a burst, silence must reach exact zero and never linger in subnormals. */
START_TEST(test_denormal_flush)
{
	const double fs = 16000;
	const unsigned n = 30 * 16000;
	float *buf = calloc(n, sizeof(float));
	struct emg_filter *f = make(fs, 20, 2, 450, 4, 50, 1);
	unsigned subnormal = 0, last_nonzero = 0;

	ck_assert_ptr_nonnull(buf);
	for (unsigned i = 0; i < 1600; i++)
		buf[i] = (float)(1000.0 * sin(2.0 * M_PI * 50.3 * i / fs));
	emg_filter_run(f, buf, n);
	for (unsigned i = 0; i < n; i++) {
		subnormal += fpclassify(buf[i]) == FP_SUBNORMAL;
		if (buf[i] != 0.0f)
			last_nonzero = i;
	}
	/* a fast pole may dip into subnormals, but only until the next periodic flush */
	ck_assert_uint_le(subnormal, 256);
	ck_assert_msg(last_nonzero < n - fs, "still ringing at %u", last_nonzero);
	printf("denormal: %u subnormal outputs, exactly 0 after %.1f s of silence\n", subnormal,
	       last_nonzero / fs);
	emg_filter_free(f);
	free(buf);
}
END_TEST

START_TEST(test_invalid_spec)
{
	struct emg_filter_spec s, d;
	struct emg_filter *f = (struct emg_filter *)&s; /* must stay untouched on error */

	emg_filter_spec_default(&d);
#define BAD(field, value)                                                                       \
	do {                                                                                     \
		s = d;                                                                           \
		s.field = value;                                                                 \
		ck_assert_int_eq(emg_filter_new(&f, &s, 2000, 4), -EINVAL);                      \
	} while (0)
	BAD(highpass_order, 0);
	BAD(highpass_order, 1);
	BAD(highpass_order, 3);
	BAD(highpass_order, 10);
	BAD(lowpass_order, 0);
	BAD(lowpass_order, 5);
	BAD(lowpass_order, 9);
	BAD(highpass_hz, -1);
	BAD(highpass_hz, NAN);
	BAD(highpass_hz, 450);  /* not below the low-pass */
	BAD(highpass_hz, 500);
	BAD(lowpass_hz, -5);
	BAD(lowpass_hz, NAN);
	BAD(lowpass_hz, INFINITY);
	BAD(lowpass_hz, 15);    /* below the high-pass */
	BAD(mains_hz, 30);
	BAD(mains_hz, 100);
	BAD(mains_hz, -50);
	BAD(mains_hz, NAN);
	BAD(notch_q, 0);
	BAD(notch_q, 0.99);
	BAD(notch_q, 1001);
	BAD(notch_q, -30);
	BAD(notch_q, NAN);
	BAD(notch_q, INFINITY);
#undef BAD
	ck_assert_ptr_eq(f, (struct emg_filter *)&s);

	ck_assert_int_eq(emg_filter_new(&f, &d, 249.9, 4), -EINVAL);
	ck_assert_int_eq(emg_filter_new(&f, &d, 16001, 4), -EINVAL);
	ck_assert_int_eq(emg_filter_new(&f, &d, NAN, 4), -EINVAL);
	ck_assert_int_eq(emg_filter_new(&f, &d, 2000, 0), -EINVAL);
	ck_assert_int_eq(emg_filter_new(NULL, &d, 2000, 4), -EINVAL);
	ck_assert_int_eq(emg_filter_new(&f, NULL, 2000, 4), -EINVAL);

	/* the high-pass must sit below the low-pass after clamping: 0.45*250 = 112.5 */
	s = d;
	s.highpass_hz = 120;
	ck_assert_int_eq(emg_filter_new(&f, &s, 250, 4), -EINVAL);
	/* ...and below Nyquist when there is no low-pass */
	s.lowpass_hz = 0;
	s.highpass_hz = 125;
	ck_assert_int_eq(emg_filter_new(&f, &s, 250, 4), -EINVAL);

	/* a high-pass corner too low for float32 coefficients (below fs/5000) */
	s = d;
	s.highpass_hz = 3.1;
	ck_assert_int_eq(emg_filter_new(&f, &s, 16000, 4), -EINVAL);
	s.highpass_hz = 1e-5;
	ck_assert_int_eq(emg_filter_new(&f, &s, 2000, 4), -EINVAL);

	/* edges that are valid */
	s = d;
	s.mains_hz = 0;
	ck_assert_int_eq(emg_filter_new(&f, &s, 250, 1), 0);
	emg_filter_free(f);
	s.mains_hz = 60;
	s.highpass_order = 8;
	s.lowpass_order = 8;
	ck_assert_int_eq(emg_filter_new(&f, &s, 16000, 1), 0);
	emg_filter_free(f);
	s.mains_hz = 40;
	ck_assert_int_eq(emg_filter_new(&f, &s, 250, 1), 0);
	emg_filter_free(f);
	s.mains_hz = 70;
	ck_assert_int_eq(emg_filter_new(&f, &s, 16000, 1), 0);
	emg_filter_free(f);
	s.notch_q = 1;
	ck_assert_int_eq(emg_filter_new(&f, &s, 250, 1), 0);
	ck_assert_double_lt(emg_filter_max_pole_radius(f), 1.0);
	emg_filter_free(f);
	/* the lowest high-pass at the top rate, order 8: stable and still on its corner */
	s.notch_q = 1000;
	s.highpass_hz = 3.2;
	ck_assert_int_eq(emg_filter_new(&f, &s, 16000, 1), 0);
	ck_assert_double_lt(emg_filter_max_pole_radius(f), 1.0);
	ck_assert_double_eq_tol(emg_filter_response_db(f, 3.2), 10.0 * log10(0.5), 0.1);
	printf("hp 3.2 Hz order 8 at 16 kHz: %.3f dB at the corner\n", emg_filter_response_db(f, 3.2));
	emg_filter_free(f);
}
END_TEST

/* tests/meson.build runs the DSP tests again as <name>-simd0 with EMG_SIMD=0: that
 * run must really pick the baseline kernels, whatever the CPU offers. */
/* The gate tests' channel: 2 uV of noise, a 10 uV hum at 50 Hz, and from
 * frame b0 to b1 a contraction 40 dB over the noise that stops at once. */
static void gate_signal(float *x, unsigned n, double fs, unsigned b0, unsigned b1)
{
	for (unsigned i = 0; i < n; i++)
		x[i] = (float)(2.0 * test_rng_gauss(&rng) + 10.0 * sin(2.0 * M_PI * 50.0 * i / fs + 0.3) +
			       (i >= b0 && i < b1 ? 200.0 * test_rng_gauss(&rng) : 0.0));
}

/*
 * Gated notches (filter.c): a contraction at 40 dB over the noise that stops
 * at once, on a channel with a 10 uV hum.  A plain Q 30 notch rings on after
 * it at ~-24 dB of the contraction, far above the noise, for ~0.5 s (2.6 uV
 * 100-500 ms after it here, against 1.2 before; 29 of 45 contractions
 * 0.25-0.6 s apart merged in bench_onset's rests); held through it, the rest
 * after it is the rest before it, the hum stays notched throughout, and
 * block sizes do not change a sample.
 */
START_TEST(test_gate_no_ring)
{
	const double fs = 2000;
	const unsigned n = 7 * 2000, b0 = 3 * 2000, b1 = 5 * 2000;
	float *x = malloc(n * sizeof(float));
	struct emg_filter *f = make(fs, 20, 2, 450, 4, 50, 1);

	rng = test_rng_seeded(5);
	gate_signal(x, n, fs, b0, b1);
	float *y = malloc(n * sizeof(float));
	struct emg_filter *g = make(fs, 20, 2, 450, 4, 50, 1);
	memcpy(y, x, n * sizeof(float));
	for (unsigned i = 0; i < n; i += 64) /* as the daemon feeds it */
		emg_filter_run(f, x + i, n - i < 64 ? n - i : 64);
	for (unsigned i = 0; i < n; i += 37) /* holds begin and end at fixed frames whatever the blocks */
		emg_filter_run(g, y + i, n - i < 37 ? n - i : 37);
	ck_assert_int_eq(memcmp(x, y, n * sizeof(float)), 0);
	emg_filter_free(g);
	free(y);
	const double before = rms(x + b0 - 1800, 1600, 1);
	const double after = rms(x + b1 + 200, 800, 1); /* 100-500 ms after the end */
	const double hum = lockin_amp(x + b1 + 200, 800, fs, 50.0, b1 + 200);
	printf("gate: rest RMS %.2f uV before a 40 dB contraction, %.2f uV 100-500 ms after it, "
	       "50 Hz left %.2f uV of 10\n", before, after, hum);
	ck_assert_msg(after < 1.25 * before, "after %g uV, before %g uV", after, before);
	ck_assert_msg(hum < 1.0, "%g uV of hum after the contraction", hum);
	emg_filter_free(f);
	free(x);
}
END_TEST

/*
 * At 250 Hz (the Cyton) the notches stay plain: the band is 20-112 Hz, the 50
 * and 100 Hz notches hold much of it, and putting their states back after a
 * contraction made steps the detector took for onsets (filter.c,
 * GATE_MIN_FS).  The same contraction through the default chain and through
 * one with notch_gate = 0 gives the same bits.
 */
START_TEST(test_gate_not_at_250)
{
	const double fs = 250;
	const unsigned n = 7 * 250, b0 = 3 * 250, b1 = 5 * 250;
	float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	struct emg_filter_spec s;
	struct emg_filter *f, *g;

	emg_filter_spec_default(&s);
	ck_assert_int_eq(emg_filter_new(&f, &s, fs, 1), 0);
	s.notch_gate = 0;
	ck_assert_int_eq(emg_filter_new(&g, &s, fs, 1), 0);
	rng = test_rng_seeded(6);
	gate_signal(x, n, fs, b0, b1);
	memcpy(y, x, n * sizeof(float));
	emg_filter_run(f, x, n);
	emg_filter_run(g, y, n);
	ck_assert_int_eq(memcmp(x, y, n * sizeof(float)), 0);
	emg_filter_free(f);
	emg_filter_free(g);
	free(x);
	free(y);
}
END_TEST

/*
 * The gate must never hold on to a hum that is gone, nor refuse one that
 * comes: (0) a 30 uV hum that stops is gone from the output within 1.5 s,
 * as from a plain notch's; (1, 2) one of 30 or 1000 uV that appears after 5 s
 * of noise alone is notched to under 1 uV within 3 s and stays so, though it
 * stands far above the rest level the gate knows: its episode of outliers
 * ends as it is learnt, with the input still high, and is not forgotten
 * (with that rule missing, a 1000 uV hum came back at 200-550 uV for 12 s).
 */
START_TEST(test_gate_hum_comes_and_goes)
{
	const double fs = 2000;
	const unsigned n = 25 * 2000, at = 5 * 2000;
	float *x = malloc(n * sizeof(float));
	struct emg_filter *f = make(fs, 20, 2, 450, 4, 50, 1);

	const double amp = _i == 2 ? 1000.0 : 30.0;

	rng = test_rng_seeded(11 + _i);
	for (unsigned i = 0; i < n; i++)
		x[i] = (float)(2.0 * test_rng_gauss(&rng) +
			       ((i < at) == (_i == 0) ? amp * sin(2.0 * M_PI * 50.0 * i / fs) : 0.0));
	for (unsigned i = 0; i < n; i += 64)
		emg_filter_run(f, x + i, n - i < 64 ? n - i : 64);
	if (_i == 0) {
		const double left = lockin_amp(x + at + 3000, 2000, fs, 50.0, at + 3000);
		printf("gate: a hum that stops, 1.5-2.5 s later %.3f uV left of 30\n", left);
		ck_assert_msg(left < 0.5, "%g uV of hum 1.5 s after it stopped", left);
	} else {
		unsigned when = 0;
		for (unsigned t = at; t + 2000 <= n; t += 1000)
			if (lockin_amp(x + t, 2000, fs, 50.0, t) >= 1.0)
				when = t + 2000;
		printf("gate: a %.0f uV hum that comes, under 1 uV from %.1f s after it came\n", amp,
		       (double)(when - at) / fs);
		ck_assert_msg(when - at <= 3 * 2000, "hum at 1 uV or more until %.1f s after it came",
			      (double)(when - at) / fs);
	}
	emg_filter_free(f);
	free(x);
}
END_TEST

START_TEST(test_simd_cap)
{
	const char *cap = getenv("EMG_SIMD");

	if (cap && !strcmp(cap, "0"))
		ck_assert_int_eq(emg_simd_level(), 0);
	else
		ck_assert_int_ge(emg_simd_level(), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("filter");
	TCase *tc = tcase_create("filter");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_defaults_and_describe);
	tcase_add_loop_test(tc, test_mains_auto, 0, 3);
	tcase_add_test(tc, test_butterworth_vs_analytic);
	tcase_add_test(tc, test_corners_3db);
	tcase_add_loop_test(tc, test_notch_depth_response, 0, 2);
	tcase_add_test(tc, test_notch_bandwidth);
	tcase_add_loop_test(tc, test_notch_depth_sine, 0, 2);
	tcase_add_test(tc, test_passband_sine);
	tcase_add_loop_test(tc, test_stability_rate, 0, NRATES);
	tcase_add_test(tc, test_clamp_250);
	tcase_add_loop_test(tc, test_multichannel, 0, 5);
	tcase_add_test(tc, test_reset);
	tcase_add_loop_test(tc, test_electrode_offset, 0, NRATES);
	tcase_add_test(tc, test_offset_gap);
	tcase_add_test(tc, test_denormal_flush);
	tcase_add_test(tc, test_invalid_spec);
	tcase_add_test(tc, test_gate_no_ring);
	tcase_add_test(tc, test_gate_not_at_250);
	tcase_add_loop_test(tc, test_gate_hum_comes_and_goes, 0, 3);
	tcase_add_test(tc, test_simd_cap);
	suite_add_tcase(s, tc);
	return test_run(s);
}
