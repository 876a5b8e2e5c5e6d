/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_env (sliding RMS). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "testutil.h"

static struct test_rng rng = TEST_RNG_SEEDED(1); /* the tests' noise */

/* Exact RMS of hist[end-n .. end-1] in double. */
static double exact_rms(const float *hist, size_t end, unsigned n)
{
	double s = 0.0;

	for (size_t i = end - n; i < end; i++)
		s += (double)hist[i] * hist[i];
	return sqrt(s / n);
}

static double rel_err(double got, double want)
{
	double d = fabs(got - want);

	if (want == 0.0)
		return d;
	return d / fabs(want);
}

START_TEST(test_new_invalid)
{
	struct emg_env *e = NULL;

	ck_assert_int_eq(emg_env_new(&e, 0, 10), -EINVAL);
	ck_assert_int_eq(emg_env_new(&e, 4, 0), -EINVAL);
	ck_assert_int_eq(emg_env_new(NULL, 4, 10), -EINVAL);
	ck_assert_int_eq(emg_env_new(&e, 4, 10), 0);
	ck_assert_uint_eq(emg_env_window(e), 10);
	ck_assert_float_eq(emg_env_value(e, 0), 0.0f);
	ck_assert_float_eq(emg_env_value(e, 99), 0.0f);
	emg_env_free(e);
	emg_env_free(NULL);
}
END_TEST

/* Random input, random window and chunking: every output equals an exact recompute. */
START_TEST(test_matches_exact)
{
	const unsigned nch = 3, n = 20000;
	unsigned windows[] = { 1, 2, 7, 50, 250, 1999 };

	rng = test_rng_seeded(42);
	for (unsigned wi = 0; wi < sizeof(windows) / sizeof(windows[0]); wi++) {
		unsigned w = windows[wi];
		struct emg_env *e;
		float *in = malloc(sizeof(float) * n * nch);
		float *out = malloc(sizeof(float) * n * nch);
		float *hist = malloc(sizeof(float) * n);

		ck_assert_int_eq(emg_env_new(&e, nch, w), 0);
		for (unsigned i = 0; i < n * nch; i++)
			in[i] = (float)(test_rng_sym(&rng) * (1.0 + 100.0 * (i / nch % 3000 < 700)));
		for (unsigned done = 0; done < n;) {
			unsigned chunk = 1 + (unsigned)(test_rng_u64(&rng) % 613);
			if (chunk > n - done)
				chunk = n - done;
			emg_env_run(e, in + (size_t)done * nch, out + (size_t)done * nch, chunk);
			done += chunk;
		}
		for (unsigned c = 0; c < nch; c++) {
			for (unsigned i = 0; i < n; i++)
				hist[i] = in[(size_t)i * nch + c];
			for (unsigned i = 0; i < n; i++) {
				unsigned m = i + 1 < w ? i + 1 : w; /* first fill: RMS so far */
				double want = exact_rms(hist, i + 1, m);
				double got = out[(size_t)i * nch + c];
				ck_assert_msg(rel_err(got, want) < 1e-5 || fabs(got - want) < 1e-6,
					      "w=%u ch=%u i=%u got %.9g want %.9g", w, c, i, got,
					      want);
			}
			ck_assert_float_eq_tol(emg_env_value(e, c), out[(size_t)(n - 1) * nch + c],
					       1e-6f * out[(size_t)(n - 1) * nch + c]);
		}
		emg_env_free(e);
		free(in);
		free(out);
		free(hist);
	}
}
END_TEST

START_TEST(test_window_one)
{
	struct emg_env *e;
	float x[1000], y[1000];

	rng = test_rng_seeded(7);
	ck_assert_int_eq(emg_env_new(&e, 1, 1), 0);
	for (int i = 0; i < 1000; i++)
		x[i] = (float)(test_rng_sym(&rng) * 1e4);
	emg_env_run(e, x, y, 1000);
	for (int i = 0; i < 1000; i++)
		ck_assert_float_eq(y[i], fabsf(x[i])); /* exact: sqrt(x^2) */
	emg_env_free(e);
}
END_TEST

START_TEST(test_constant_exact)
{
	struct emg_env *e;
	float x[4000], y[4000];

	ck_assert_int_eq(emg_env_new(&e, 2, 125), 0);
	for (int i = 0; i < 4000; i++)
		x[i] = (i & 1) ? -3.0f : 0.5f;
	emg_env_run(e, x, y, 2000);
	for (int i = 0; i < 2000; i++) {
		/* first fill divides by the samples so far: constant from the first sample */
		ck_assert_float_eq(y[2 * i], 0.5f);
		ck_assert_float_eq(y[2 * i + 1], 3.0f);
	}
	/* zeros after a constant: exactly zero once the window has passed */
	memset(x, 0, sizeof(x));
	emg_env_run(e, x, y, 2000);
	ck_assert_float_eq_tol(y[2 * 123 + 1], sqrtf(9.0f / 125.0f), 1e-6f);
	for (int i = 124; i < 2000; i++) {
		ck_assert_float_eq(y[2 * i], 0.0f);
		ck_assert_float_eq(y[2 * i + 1], 0.0f);
	}
	emg_env_free(e);
}
END_TEST

START_TEST(test_first_fill_and_reset)
{
	struct emg_env *e;
	float x[4] = { 3.0f, 4.0f, 0.0f, 0.0f }, y[4];

	ck_assert_int_eq(emg_env_new(&e, 1, 4), 0);
	emg_env_run(e, x, y, 2);
	ck_assert_float_eq_tol(y[0], 3.0f, 1e-6f);
	ck_assert_float_eq_tol(y[1], sqrtf(12.5f), 1e-6f);
	emg_env_run(e, x + 2, y + 2, 2);
	ck_assert_float_eq_tol(y[3], 2.5f, 1e-6f); /* sqrt(25/4) once full */
	emg_env_reset(e);
	ck_assert_float_eq(emg_env_value(e, 0), 0.0f);
	emg_env_run(e, x + 1, NULL, 1);
	ck_assert_float_eq_tol(emg_env_value(e, 0), 4.0f, 1e-6f);
	emg_env_free(e);
}
END_TEST

/* out may alias in; out may be NULL. */
START_TEST(test_inplace_and_null)
{
	const unsigned nch = 4, n = 3000;
	struct emg_env *a, *b, *c;
	float *x = malloc(sizeof(float) * n * nch), *y = malloc(sizeof(float) * n * nch);
	float *z = malloc(sizeof(float) * n * nch);

	rng = test_rng_seeded(3);
	for (unsigned i = 0; i < n * nch; i++)
		x[i] = z[i] = (float)test_rng_sym(&rng);
	ck_assert_int_eq(emg_env_new(&a, nch, 33), 0);
	ck_assert_int_eq(emg_env_new(&b, nch, 33), 0);
	ck_assert_int_eq(emg_env_new(&c, nch, 33), 0);
	emg_env_run(a, x, y, n);
	emg_env_run(b, z, z, n);
	emg_env_run(c, x, NULL, n);
	ck_assert_mem_eq(y, z, sizeof(float) * n * nch);
	for (unsigned ch = 0; ch < nch; ch++)
		ck_assert_float_eq(emg_env_value(c, ch), y[(n - 1) * nch + ch]);
	emg_env_free(a);
	emg_env_free(b);
	emg_env_free(c);
	free(x);
	free(y);
	free(z);
}
END_TEST

/* A bank of nch channels gives bit-identical results to nch single-channel envelopes. */
START_TEST(test_multichannel_equals_single)
{
	const unsigned nch = 7, n = 10000, w = 50;
	struct emg_env *bank, *one[7];
	float *x = malloc(sizeof(float) * n * nch), *y = malloc(sizeof(float) * n * nch);
	float *xs = malloc(sizeof(float) * n), *ys = malloc(sizeof(float) * n);

	rng = test_rng_seeded(11);
	for (unsigned i = 0; i < n * nch; i++)
		x[i] = (float)(test_rng_sym(&rng) * (1 + i % nch) * 10.0);
	ck_assert_int_eq(emg_env_new(&bank, nch, w), 0);
	emg_env_run(bank, x, y, n);
	for (unsigned c = 0; c < nch; c++) {
		ck_assert_int_eq(emg_env_new(&one[c], 1, w), 0);
		for (unsigned i = 0; i < n; i++)
			xs[i] = x[i * nch + c];
		for (unsigned done = 0; done < n; done += 97)
			emg_env_run(one[c], xs + done, ys + done, done + 97 <= n ? 97 : n - done);
		for (unsigned i = 0; i < n; i++)
			ck_assert_msg(ys[i] == y[i * nch + c], "ch %u sample %u: %.9g vs %.9g", c, i,
				      ys[i], y[i * nch + c]);
		emg_env_free(one[c]);
	}
	emg_env_free(bank);
	free(x);
	free(y);
	free(xs);
	free(ys);
}
END_TEST

/* Exact sum of squares of hist[end-n .. end-1] in double. */
static double exact_sum(const float *hist, size_t end, unsigned n)
{
	double s = 0.0;

	for (size_t i = end - n; i < end; i++)
		s += (double)((float)(hist[i] * hist[i]));
	return s;
}

/*
 * Random input in random chunks, and after each chunk a few samples still in
 * the window replaced (emg_env_patch, and a whole frame with
 * emg_env_patch_frame): every value equals a recompute of the patched history,
 * through many wraps - entries of the current pass and of the previous one.
 * 19 channels: the vector groups and the scalar tail of every SIMD variant.
 */
START_TEST(test_patch_exact)
{
	const unsigned nch = 19, n = 6000, w = 50;
	struct emg_env *e;
	float *hist = malloc(sizeof(float) * n * nch), *x = malloc(sizeof(float) * 200 * nch);
	float row[19];
	uint8_t mask[19];
	unsigned done = 0, patched = 0;

	rng = test_rng_seeded(5);
	ck_assert_int_eq(emg_env_new(&e, nch, w), 0);
	while (done < n) {
		unsigned k = 1 + (unsigned)(test_rng_u64(&rng) % 200);
		if (k > n - done)
			k = n - done;
		for (unsigned i = 0; i < k * nch; i++)
			x[i] = (float)(test_rng_sym(&rng) * 100.0);
		emg_env_run(e, x, NULL, k);
		for (unsigned f = 0; f < k; f++)
			for (unsigned c = 0; c < nch; c++)
				hist[(size_t)(done + f) * nch + c] = x[f * nch + c];
		done += k;
		for (int j = 0; j < 4; j++) {
			const unsigned age = (unsigned)(test_rng_u64(&rng) % w), c = (unsigned)(test_rng_u64(&rng) % nch);
			const float v = (float)(test_rng_sym(&rng) * 300.0);
			if (age >= done) {
				ck_assert_int_eq(emg_env_patch(e, c, age, v), -ERANGE);
				continue;
			}
			ck_assert_int_eq(emg_env_patch(e, c, age, v), 0);
			hist[(size_t)(done - 1 - age) * nch + c] = v;
			patched++;
		}
		if (done > w) {
			const unsigned age = (unsigned)(test_rng_u64(&rng) % w);
			for (unsigned c = 0; c < nch; c++) {
				row[c] = (float)(test_rng_sym(&rng) * 50.0);
				mask[c] = (uint8_t)(test_rng_u64(&rng) & 1);
			}
			ck_assert_int_eq(emg_env_patch_frame(e, age, row, mask), 0);
			for (unsigned c = 0; c < nch; c++)
				if (mask[c])
					hist[(size_t)(done - 1 - age) * nch + c] = row[c];
		}
		for (unsigned c = 0; c < nch; c++) {
			const unsigned m = done < w ? done : w;
			double want = 0;
			for (unsigned i = done - m; i < done; i++)
				want += (double)((float)(hist[(size_t)i * nch + c] * hist[(size_t)i * nch + c]));
			want = sqrt(want / m);
			ck_assert_msg(rel_err(emg_env_value(e, c), want) < 1e-5,
				      "after %u frames ch %u: %.9g, recompute %.9g", done, c,
				      (double)emg_env_value(e, c), want);
		}
	}
	ck_assert_uint_gt(patched, 100);
	emg_env_free(e);
	free(hist);
	free(x);
}
END_TEST

/*
 * Window 10, 13 frames in (write position 3): age 1 is ring index 1, written
 * this pass; age 5 is index 7, written in the previous pass.  Both patched
 * sums equal a recompute, the pass that replaces the sum at the next wrap
 * too, and two wraps on the envelope is bit for bit the one fed the patched
 * samples in the first place: a patch leaves no rounding behind.
 */
START_TEST(test_patch_previous_pass)
{
	const unsigned w = 10, n = 40;
	struct emg_env *e, *ref;
	float x[40], y[40], yr[40];

	rng = test_rng_seeded(9);
	for (unsigned i = 0; i < n; i++)
		x[i] = (float)(test_rng_sym(&rng) * 10.0);
	ck_assert_int_eq(emg_env_new(&e, 1, w), 0);
	ck_assert_int_eq(emg_env_new(&ref, 1, w), 0);
	emg_env_run(e, x, NULL, 13);
	ck_assert_int_eq(emg_env_patch(e, 0, 1, 7.0f), 0);  /* frame 11, this pass */
	ck_assert_int_eq(emg_env_patch(e, 0, 5, -3.5f), 0); /* frame 7, previous pass */
	x[11] = 7.0f;
	x[7] = -3.5f;
	ck_assert_float_eq_tol(emg_env_value(e, 0), sqrtf((float)(exact_sum(x, 13, w) / w)), 1e-6f);
	emg_env_run(e, x + 13, NULL, 7); /* wraps: sum = pass */
	ck_assert_float_eq_tol(emg_env_value(e, 0), sqrtf((float)(exact_sum(x, 20, w) / w)), 1e-6f);
	emg_env_run(e, x + 20, y + 20, n - 20);
	emg_env_run(ref, x, yr, n);
	for (unsigned i = 30; i < n; i++)
		ck_assert_msg(y[i] == yr[i], "frame %u: %.9g vs %.9g", i, y[i], yr[i]);
	emg_env_free(e);
	emg_env_free(ref);
}
END_TEST

/* A sample that left the window (or never came) is not patched: -ERANGE, nothing changes. */
START_TEST(test_patch_out_of_window)
{
	struct emg_env *e;
	float x[30], v, h[15];
	uint8_t all[2] = { 1, 1 };

	for (unsigned i = 0; i < 30; i++)
		x[i] = 0.5f * (float)i; /* frame f, channel c: x[2f + c] */
	ck_assert_int_eq(emg_env_new(&e, 2, 8), 0);
	ck_assert_int_eq(emg_env_patch(e, 0, 0, 1.0f), -ERANGE); /* nothing fed yet */
	emg_env_run(e, x, NULL, 3);
	ck_assert_int_eq(emg_env_patch(e, 0, 3, 1.0f), -ERANGE); /* first fill: 3 frames so far */
	ck_assert_int_eq(emg_env_patch(e, 2, 0, 1.0f), -EINVAL);
	emg_env_run(e, x + 6, NULL, 12); /* frames 3..14 */
	v = emg_env_value(e, 1);
	ck_assert_int_eq(emg_env_patch(e, 1, 8, 1e6f), -ERANGE); /* frame 6: left the window */
	ck_assert_int_eq(emg_env_patch(e, 1, 1000, 1e6f), -ERANGE);
	ck_assert_int_eq(emg_env_patch_frame(e, 8, x, all), -ERANGE);
	ck_assert_float_eq(emg_env_value(e, 1), v);
	ck_assert_int_eq(emg_env_patch(e, 1, 7, x[15]), 0); /* frame 7, the oldest in: same value */
	ck_assert_float_eq(emg_env_value(e, 1), v);
	ck_assert_int_eq(emg_env_patch(e, 1, 7, 0.0f), 0);
	for (unsigned f = 0; f < 15; f++)
		h[f] = x[2 * f + 1];
	h[7] = 0.0f;
	ck_assert_float_eq_tol(emg_env_value(e, 1), sqrtf((float)(exact_sum(h, 15, 8) / 8)), 1e-6f);
	emg_env_free(e);
}
END_TEST

/*
 * 24 hours at 2 kHz (172.8 M samples) of noise whose amplitude jumps between
 * quiet (0.1 uV), anything in between and huge artefacts (100 mV): the
 * 140 dB range of a 24-bit amplifier.  After every chunk (random length, so
 * every write phase is checked) the running RMS is compared with an exact
 * recompute of the last window:
 *   - whenever the last two windows span < 60 dB (S2w <= 1e6 * Sw), within
 *     1e-4 relative - this covers the quiet long after a huge burst, where a
 *     sum that is never resynchronised is off by the accumulated rounding of
 *     every burst of the day (it fails here);
 *   - right after a huge burst, the sum of squares is within 1e-12 of the
 *     last two windows' energy: the error never outlives one window (plus
 *     the wait for the next wrap).
 */
START_TEST(test_drift_24h)
{
	const double fs = 2000.0;
	const uint64_t total = (uint64_t)(24 * 3600 * fs);
	const unsigned w = 250, maxchunk = 4096;
	struct emg_env *e;
	float *x = malloc(sizeof(float) * (maxchunk + 2 * w));
	float *y = malloc(sizeof(float) * (maxchunk + 2 * w));
	uint64_t done = 0, seg_left = 0, strict = 0, loose = 0, quiet_after_burst = 0;
	double amp = 0.1, worst = 0.0, prev_amp = 0.1;
	int after_burst = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rng = test_rng_seeded(2024);
	ck_assert_int_eq(emg_env_new(&e, 1, w), 0);
	while (done < total) {
		unsigned chunk = 2 * w + (unsigned)(test_rng_u64(&rng) % (maxchunk - 2 * w));
		/* never leave a tail shorter than two windows: the last window is checked too */
		if (total - done < (uint64_t)chunk + 2 * w)
			chunk = (unsigned)(total - done);
		for (unsigned i = 0; i < chunk; i++) {
			if (seg_left == 0) {
				uint64_t r = test_rng_u64(&rng) % 10;
				prev_amp = amp;
				/* 20 % huge bursts, 40 % quiet, 40 % anything in between */
				if (r < 2)
					amp = 1e5;
				else if (r < 6)
					amp = 0.1;
				else
					amp = pow(10.0, 6.0 * (test_rng_sym(&rng) + 1.0) / 2.0 - 1.0);
				after_burst = prev_amp >= 1e5 && amp == 0.1;
				seg_left = 50 + test_rng_u64(&rng) % (uint64_t)(20 * fs);
			}
			seg_left--;
			x[i] = (float)(amp * 1.7320508 * test_rng_sym(&rng));
		}
		emg_env_run(e, x, y, chunk);
		done += chunk;

		/* exact recompute of the last two windows, all inside this chunk */
		double sw = 0.0, s2w = 0.0;
		for (unsigned i = chunk - 2 * w; i < chunk; i++) {
			double sq = (double)x[i] * x[i];
			s2w += sq;
			if (i >= chunk - w)
				sw += sq;
		}
		double want = sqrt(sw / w), got = y[chunk - 1];
		if (s2w <= 1e6 * sw) {
			double err = rel_err(got, want);
			if (err > worst)
				worst = err;
			ck_assert_msg(err < 1e-4, "sample %llu: rms %.9g exact %.9g (rel %.3g)",
				      (unsigned long long)done, got, want, err);
			if (after_burst && amp == 0.1)
				quiet_after_burst++;
			strict++;
		} else {
			double got_sum = got * got * w;
			ck_assert_msg(fabs(got_sum - sw) <= 1e-6 * sw + 1e-12 * s2w,
				      "sample %llu: sum %.9g exact %.9g, 2w %.9g",
				      (unsigned long long)done, got_sum, sw, s2w);
			loose++;
		}
	}
	ck_assert_uint_eq(done, total);
	ck_assert_uint_gt(strict, 30000);
	ck_assert_uint_gt(quiet_after_burst, 1000);
	emg_env_free(e);
	free(x);
	free(y);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("drift 24h: %llu samples, %llu checks at 1e-4 (%llu in quiet after a 100 mV burst), "
	       "%llu right after bursts; worst rel %.3g; %.2f s\n",
	       (unsigned long long)done, (unsigned long long)strict,
	       (unsigned long long)quiet_after_burst, (unsigned long long)loose, worst,
	       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
}
END_TEST

static Suite *envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_new_invalid);
	tcase_add_test(tc, test_matches_exact);
	tcase_add_test(tc, test_window_one);
	tcase_add_test(tc, test_constant_exact);
	tcase_add_test(tc, test_first_fill_and_reset);
	tcase_add_test(tc, test_inplace_and_null);
	tcase_add_test(tc, test_multichannel_equals_single);
	tcase_add_test(tc, test_patch_exact);
	tcase_add_test(tc, test_patch_previous_pass);
	tcase_add_test(tc, test_patch_out_of_window);
	suite_add_tcase(s, tc);

	tc = tcase_create("drift");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_drift_24h);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(envelope_suite());
}
