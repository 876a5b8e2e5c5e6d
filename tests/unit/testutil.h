/* SPDX-License-Identifier: MIT */
/*
 * What the unit tests share: running a Check suite, and deterministic noise
 * (xorshift64* and Box-Muller, not libc's rand: the same stream with every
 * libc, on every architecture).  Header-only: every unit test is one file
 * and includes it; a generator is plain data, so a test may keep several.
 */
#ifndef EMG_TESTUTIL_H
#define EMG_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Run suite s and free it; the exit status for main(): EXIT_SUCCESS when every test passed. */
static inline int test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A noise generator: plain data, a test keeps as many as it likes.  An all-zero
 * one never leaves 0: start it with TEST_RNG_SEEDED or test_rng_seeded(). */
struct test_rng {
	uint64_t s;
	int have;     /* test_rng_gauss(): the pair's second value is waiting in spare */
	double spare;
};

/* Initializer of a generator started from seed (0 too: of the 2^64 seeds only
 * -1/0x9E37... mod 2^64 gives the stuck state); a constant expression. */
#define TEST_RNG_SEEDED(seed) { .s = (uint64_t)(seed) * 0x9E3779B97F4A7C15ull + 1 }

/* A generator started from seed, as TEST_RNG_SEEDED. */
static inline struct test_rng test_rng_seeded(uint64_t seed)
{
	return (struct test_rng)TEST_RNG_SEEDED(seed);
}

/* The next 64 random bits. */
static inline uint64_t test_rng_u64(struct test_rng *g)
{
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in (0, 1): never 0, so log() of it is finite. */
static inline double test_rng_uniform(struct test_rng *g)
{
	return ((double)(test_rng_u64(g) >> 11) + 0.5) / 9007199254740992.0;
}

/* Uniform in (-1, 1). */
static inline double test_rng_sym(struct test_rng *g)
{
	return 2.0 * test_rng_uniform(g) - 1.0;
}

/* Standard normal (Box-Muller: each pair of uniforms gives two, the second kept for the next call). */
static inline double test_rng_gauss(struct test_rng *g)
{
	double r, a;

	if (g->have) {
		g->have = 0;
		return g->spare;
	}
	/* two statements: two draws in one expression are unsequenced, and the
	 * noise would differ between compilers */
	r = sqrt(-2.0 * log(test_rng_uniform(g)));
	a = 2.0 * M_PI * test_rng_uniform(g);
	g->spare = r * sin(a);
	g->have = 1;
	return r * cos(a);
}

#endif
