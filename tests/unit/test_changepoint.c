/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_cp (the change-point fit behind the onset refinement). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "changepoint.h"
#include "testutil.h"

static struct test_rng rng = TEST_RNG_SEEDED(1); /* the tests' noise */

#define M_MAX 1200

static double u[M_MAX], scratch[EMG_CP_SCRATCH(M_MAX)];

/* u[0..m): b, then from k a linear rise over r entries (0: a step) to b + a, plus noise of SD sd. */
static void make_rise(unsigned m, unsigned k, unsigned r, double b, double a, double sd, uint64_t seed)
{
	rng = test_rng_seeded(seed);
	for (unsigned j = 0; j < m; j++) {
		double h = j < k ? 0.0 : fmin(1.0, (double)(j - k + 1) / (r + 1));
		u[j] = b + a * h + (sd > 0 ? sd * test_rng_gauss(&rng) : 0.0);
	}
}

/* The best step by brute force: for every k, b and A by least squares on the two segments. */
static long step_exhaustive(unsigned m)
{
	double best = -1;
	long kb = -1;

	for (unsigned k = 1; k < m; k++) {
		double s0 = 0, s1 = 0, sse = 0;

		for (unsigned j = 0; j < k; j++)
			s0 += u[j];
		for (unsigned j = k; j < m; j++)
			s1 += u[j];
		s0 /= k;
		s1 /= m - k;
		if (s1 <= s0)
			continue; /* a fall, not a rise */
		for (unsigned j = 0; j < m; j++) {
			double d = u[j] - (j < k ? s0 : s1);
			sse += d * d;
		}
		if (best < 0 || sse < best) {
			best = sse;
			kb = (long)k;
		}
	}
	return kb;
}

START_TEST(test_clean_step_is_exact)
{
	static const unsigned ks[] = { 1, 37, 120, 299, 598 };
	unsigned ramp = 99;

	for (unsigned i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		/* with a rest level above zero: the fit's b is free */
		make_rise(600, ks[i], 0, 0.3, 1.0, 0, 1);
		ck_assert_int_eq(emg_cp_fit(u, 600, scratch, 4.0, &ramp), ks[i]);
		ck_assert_uint_eq(ramp, 0);
	}
}
END_TEST

/* A ramp is extrapolated to where it left its rest level, not to where it became visible. */
START_TEST(test_clean_ramp_extrapolated)
{
	static const unsigned rs[] = { 12, 40, 90, 200, EMG_CP_RAMP_MAX };
	unsigned ramp = 0;

	for (unsigned i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		make_rise(900, 250, rs[i], 0.0, 1.0, 0, 1);
		ck_assert_int_eq(emg_cp_fit(u, 900, scratch, 4.0, &ramp), 250);
		ck_assert_uint_eq(ramp, rs[i]);
	}
	/* off the grid (70: between 60 and 90) the nearest ramp fits its middle:
	 * the start lands within the grid's spacing (today 5 entries late, ramp 60) */
	make_rise(900, 250, 70, 0.0, 1.0, 0, 1);
	long k = emg_cp_fit(u, 900, scratch, 4.0, &ramp);
	ck_assert_msg(labs(k - 250) <= 10 && ramp >= 60 && ramp <= 90, "k %ld ramp %u", k, ramp);
}
END_TEST

/* With noise, the coarse-to-fine search finds the same step as trying every k. */
START_TEST(test_step_matches_exhaustive)
{
	unsigned ramp = 0;

	for (uint64_t seed = 1; seed <= 40; seed++) {
		const unsigned m = 200 + (unsigned)(seed * 37 % 900), k = m / 5 + (unsigned)(seed * 53 % (m / 2));

		make_rise(m, k, 0, 1.0, 1.5, 0.4, seed);
		/* an enormous margin: no ramp can win, the step's own best comes back */
		long got = emg_cp_fit(u, m, scratch, 1e12, &ramp);
		ck_assert_msg(got == step_exhaustive(m), "seed %u m %u: %ld, exhaustive %ld",
			      (unsigned)seed, m, got, step_exhaustive(m));
		ck_assert_uint_eq(ramp, 0);
	}
}
END_TEST

/* The margin keeps noise in front of a step from leaning the fit into an early ramp. */
START_TEST(test_noisy_step_stays_a_step)
{
	unsigned ramps = 0, ramp = 0, far = 0;

	for (uint64_t seed = 1; seed <= 50; seed++) {
		make_rise(400, 200, 0, 1.0, 1.0, 0.3, seed);
		long k = emg_cp_fit(u, 400, scratch, 4.0, &ramp);
		ramps += ramp > 0;
		far += labs(k - 200) > 3;
	}
	/* ~2 sigma: a few in 50 at most */
	ck_assert_msg(ramps <= 4, "%u of 50 noisy steps fitted as ramps", ramps);
	ck_assert_msg(far <= 2, "%u of 50 steps placed more than 3 entries off", far);
	/* without the margin noise makes many of them ramps that start early */
	ramps = 0;
	for (uint64_t seed = 1; seed <= 50; seed++) {
		make_rise(400, 200, 0, 1.0, 1.0, 0.3, seed);
		emg_cp_fit(u, 400, scratch, 0.0, &ramp);
		ramps += ramp > 0;
	}
	ck_assert_msg(ramps >= 10, "only %u of 50 without a margin: the test has no power", ramps);
}
END_TEST

/* A slow rise in noise is still a ramp, placed near its true start. */
START_TEST(test_noisy_ramp)
{
	unsigned ramp = 0, found = 0;
	double err = 0;

	for (uint64_t seed = 1; seed <= 20; seed++) {
		make_rise(800, 300, 135, 0.5, 2.0, 0.15, seed);
		long k = emg_cp_fit(u, 800, scratch, 4.0, &ramp);
		found += ramp >= 60;
		err += (double)(k - 300);
	}
	ck_assert_msg(found >= 18, "%u of 20 slow rises fitted as ramps", found);
	ck_assert_msg(fabs(err / 20) <= 6.0, "mean start error %.1f entries", err / 20);
}
END_TEST

START_TEST(test_no_rise)
{
	unsigned ramp = 7;

	/* a fall is no rise */
	make_rise(300, 100, 0, 2.0, -1.0, 0, 1);
	ck_assert_int_eq(emg_cp_fit(u, 300, scratch, 4.0, &ramp), -1);
	ck_assert_uint_eq(ramp, 0);
	/* nor is a flat line, nor a series too short to hold a change */
	make_rise(300, 100, 0, 2.0, 0.0, 0, 1);
	ck_assert_int_eq(emg_cp_fit(u, 300, scratch, 4.0, &ramp), -1);
	ck_assert_int_eq(emg_cp_fit(u, 1, scratch, 4.0, &ramp), -1);
	ck_assert_int_eq(emg_cp_fit(u, 0, scratch, 4.0, &ramp), -1);
}
END_TEST

static Suite *cp_suite(void)
{
	Suite *s = suite_create("changepoint");
	TCase *tc = tcase_create("fit");

	tcase_add_test(tc, test_clean_step_is_exact);
	tcase_add_test(tc, test_clean_ramp_extrapolated);
	tcase_add_test(tc, test_step_matches_exhaustive);
	tcase_add_test(tc, test_noisy_step_stays_a_step);
	tcase_add_test(tc, test_noisy_ramp);
	tcase_add_test(tc, test_no_rise);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(cp_suite());
}
