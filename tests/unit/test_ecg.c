/* SPDX-License-Identifier: MIT */
/*
 * Tests of the ECG rejection stage on a signal built here, independent of the
 * synth: band-limited Gaussian rest EMG (5 uV RMS after the band-pass), a
 * QRS-T waveform of 200 uV R at 60..100 bpm with heart-rate variability and
 * respiratory amplitude modulation, different gains (and a polarity flip)
 * per lane, and EMG bursts on some lanes.  Every check runs the band-pass the
 * pipeline runs first, then the stage, and compares with the same chain on
 * the ECG-free signal.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecg.h"
#include "envelope.h"
#include "filter.h"
#include "testutil.h"

static struct test_rng rng = TEST_RNG_SEEDED(1); /* the tests' noise */

/* ---- allocation counter (not under ASan, whose runtime owns malloc) ---- */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);
static volatile int armed;
static volatile unsigned long allocs;

void *malloc(size_t n)
{
	allocs += armed;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	allocs += armed;
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	allocs += armed;
	return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	allocs += armed;
	return __libc_memalign(align, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
	allocs += armed;
	*p = __libc_memalign(align, n);
	return *p ? 0 : ENOMEM;
}

void free(void *p)
{
	allocs += armed && p;
	__libc_free(p);
}
#endif

/* One heartbeat, R peak at t = 0 (s), amplitude 1 at R: P, Q, R, S, T as Gaussians. */
static double qrst(double t)
{
	static const double mu[5] = { -0.16, -0.025, 0.0, 0.028, 0.26 };
	static const double sg[5] = { 0.025, 0.008, 0.010, 0.009, 0.045 };
	static const double a[5] = { 0.12, -0.12, 1.0, -0.3, 0.3 };
	double v = 0;

	for (int i = 0; i < 5; i++)
		v += a[i] * exp(-0.5 * pow((t - mu[i]) / sg[i], 2));
	return v;
}

#define NL_MAX 8

/* The test signal: separate components so any mix can be filtered and compared. */
struct sig {
	double fs;
	unsigned nl;
	size_t n;
	float *emg;   /* rest EMG + bursts, band-passed */
	float *ecg;   /* ECG, band-passed */
	uint8_t *burst; /* n x nl: 1 inside a burst */
	unsigned nbeats;
	double beat[512]; /* R times, s */
};

static const double lane_gain[NL_MAX] = { 1.0, -0.8, 0.55, 0.35, 0.2, 0.1, 0.7, -0.4 };

/* Band-pass every lane of x (n x nl) with the pipeline's default filter. */
static void bandpass(float *x, size_t n, unsigned nl, double fs)
{
	struct emg_filter_spec s;
	struct emg_filter *f;

	emg_filter_spec_default(&s);
	ck_assert_int_eq(emg_filter_new(&f, &s, fs, nl), 0);
	emg_filter_run(f, x, (unsigned)n);
	emg_filter_free(f);
}

/*
 * seconds of signal; ecg_uv R amplitude (0 = none); burst_mask: lanes that
 * contract (80 uV RMS, 1.5 s every 5 s from 6 s on, lane-staggered; with
 * TOGETHER, all of them at once, 1.2 s every 3.3 s).
 */
#define TOGETHER 0x80000000u

static void make_sig_gains(struct sig *s, double fs, unsigned nl, double seconds, double ecg_uv,
			   unsigned burst_mask, uint64_t seed, const double *gain)
{
	size_t n = (size_t)(seconds * fs);
	double next_r = 0.5, rr_phase = 0, rest_gain;

	s->fs = fs;
	s->nl = nl;
	s->n = n;
	s->emg = calloc(n * nl, sizeof(float));
	s->ecg = calloc(n * nl, sizeof(float));
	s->burst = calloc(n * nl, 1);
	s->nbeats = 0;
	ck_assert(s->emg && s->ecg && s->burst);
	rng = test_rng_seeded(seed);
	/* White noise through the band-pass has RMS sqrt(430/(fs/2)) of its own: scale to 5 uV. */
	rest_gain = 5.0 / sqrt(2.0 * 430.0 / fs);
	for (size_t i = 0; i < n; i++) {
		double t = (double)i / fs;
		for (unsigned l = 0; l < nl; l++) {
			double on = 0;
			if (l >= 31) { /* no bit in the mask: at rest */
			} else if ((burst_mask & TOGETHER) && (burst_mask >> l & 1)) {
				/* one exercise on several muscles: 1.2 s every 3.3 s, off the heart's rhythm */
				on = t >= 6.0 && fmod(t - 6.0, 3.3) < 1.2;
			} else if (burst_mask >> l & 1) {
				double tb = fmod(t - 6.0 - 0.7 * l, 5.0);
				on = t >= 6.0 + 0.7 * l && tb < 1.5;
			}
			s->burst[i * nl + l] = (uint8_t)on;
			s->emg[i * nl + l] = (float)(test_rng_gauss(&rng) * (rest_gain + on * 16.0 * rest_gain));
		}
	}
	bandpass(s->emg, n, nl, fs);
	if (ecg_uv > 0) {
		/* R times: 75 bpm with a 10 s "respiratory" sinus arrhythmia and beat-to-beat jitter,
		 * clamped to 60..100 bpm; amplitude modulated +-10 % by breathing. */
		double *beat = s->beat;
		unsigned nb = 0;
		while (next_r < seconds + 1 && nb < 512) {
			double rr;
			beat[nb++] = next_r;
			rr_phase += 2 * M_PI / 12.0;
			rr = 0.8 * (1.0 + 0.08 * sin(rr_phase) + 0.03 * test_rng_gauss(&rng));
			rr = fmin(1.0, fmax(0.6, rr));
			next_r += rr;
		}
		s->nbeats = nb;
		for (size_t i = 0; i < n; i++) {
			double t = (double)i / fs, v = 0;
			for (unsigned b = 0; b < nb; b++)
				if (fabs(t - beat[b]) < 0.5)
					v += qrst(t - beat[b]) * (1.0 + 0.1 * sin(2 * M_PI * beat[b] / 4.0));
			for (unsigned l = 0; l < nl; l++)
				s->ecg[i * nl + l] = (float)(ecg_uv * gain[l] * v);
		}
		bandpass(s->ecg, n, nl, fs);
	}
}

/* make_sig_gains() with the lane gains above (nl <= NL_MAX when ecg_uv > 0). */
static void make_sig(struct sig *s, double fs, unsigned nl, double seconds, double ecg_uv,
		     unsigned burst_mask, uint64_t seed)
{
	make_sig_gains(s, fs, nl, seconds, ecg_uv, burst_mask, seed, lane_gain);
}

static void free_sig(struct sig *s)
{
	free(s->emg);
	free(s->ecg);
	free(s->burst);
}

/* The end of a test: its stage, its three runs (no rejection, reference, subtract) and its signal. */
static void free_runs(struct emg_ecg *e, float *raw, float *ref, float *sub, struct sig *s)
{
	emg_ecg_free(e);
	free(raw);
	free(ref);
	free(sub);
	free_sig(s);
}

/* emg + ecg_scale * ecg through the stage (mode), in blocks of `block` frames; out n x nl. */
static float *run_stage(const struct sig *s, double ecg_scale, enum emg_ecg_mode mode,
			unsigned block, struct emg_ecg **keep)
{
	struct emg_ecg_params p;
	struct emg_ecg *e = NULL;
	float *x = malloc(s->n * s->nl * sizeof(float));

	ck_assert_ptr_nonnull(x);
	for (size_t i = 0; i < s->n * s->nl; i++)
		x[i] = s->emg[i] + (float)ecg_scale * s->ecg[i];
	if (mode == EMG_ECG_OFF)
		return x;
	emg_ecg_params_default(&p);
	p.mode = mode;
	ck_assert_int_eq(emg_ecg_new(&e, &p, s->fs, s->nl), 0);
	for (size_t off = 0; off < s->n; off += block) {
		unsigned m = s->n - off < block ? (unsigned)(s->n - off) : block;
		emg_ecg_run(e, x + off * s->nl, m);
	}
	if (keep)
		*keep = e;
	else
		emg_ecg_free(e);
	return x;
}

/* A test's three runs of s in blocks of 128: no rejection, the ECG-free reference and `subtract` (its stage into *e). */
static void three_runs(const struct sig *s, float **raw, float **ref, float **sub, struct emg_ecg **e)
{
	*raw = run_stage(s, 1, EMG_ECG_OFF, 128, NULL);
	*ref = run_stage(s, 0, EMG_ECG_SUBTRACT, 128, NULL);
	*sub = run_stage(s, 1, EMG_ECG_SUBTRACT, 128, e);
}

/* RMS of lane l over [t0, t1) s, only samples whose burst flag equals want (-1: all). */
static double rms(const struct sig *s, const float *x, unsigned l, double t0, double t1, int want)
{
	double acc = 0;
	size_t cnt = 0;

	for (size_t i = (size_t)(t0 * s->fs); i < (size_t)(t1 * s->fs) && i < s->n; i++) {
		if (want >= 0 && s->burst[i * s->nl + l] != want)
			continue;
		acc += (double)x[i * s->nl + l] * x[i * s->nl + l];
		cnt++;
	}
	return cnt ? sqrt(acc / (double)cnt) : 0;
}

static const double rates[] = { 1000, 2000 };

/* (1) At rest, 200 uV ECG: RMS after rejection within 20 % of the ECG-free RMS, every lane. */
START_TEST(rest_rms_restored)
{
	const double fs = rates[_i];
	const unsigned nl = 6;
	struct sig s;
	struct emg_ecg *e;
	float *raw, *ref, *sub;

	make_sig(&s, fs, nl, 40, 200, 0, 11);
	three_runs(&s, &raw, &ref, &sub, &e);
	float *hp = run_stage(&s, 1, EMG_ECG_HIGHPASS, 128, NULL);
	float *hpref = run_stage(&s, 0, EMG_ECG_HIGHPASS, 128, NULL);
	float *both = run_stage(&s, 1, EMG_ECG_BOTH, 128, NULL);
	float *bothref = run_stage(&s, 0, EMG_ECG_BOTH, 128, NULL);

	printf("ecg rest %g Hz: %llu beats detected of %u, %.1f bpm\n", fs,
	       (unsigned long long)emg_ecg_beats(e), s.nbeats, emg_ecg_heart_rate(e));
	if (getenv("ECG_DEBUG")) { /* residual energy around R, 10 ms bins, lane 0 */
		double bins[60] = { 0 };
		for (unsigned b = 10; b < s.nbeats - 2; b++)
			for (int k = -100; k < 500; k++) {
				size_t i = (size_t)llround((s.beat[b] + k * 1e-3) * fs);
				double d = sub[i * nl] - ref[i * nl];
				bins[(k + 100) / 10] += d * d;
			}
		for (int k = 0; k < 60; k++)
			printf("%+4d ms %8.0f\n", k * 10 - 100, bins[k]);
	}
	for (unsigned l = 0; l < nl; l++) {
		double r0 = rms(&s, ref, l, 8, 40, -1);
		double rr = rms(&s, raw, l, 8, 40, -1) / r0, rs = rms(&s, sub, l, 8, 40, -1) / r0;
		double rh = rms(&s, hp, l, 8, 40, -1) / rms(&s, hpref, l, 8, 40, -1);
		double rb = rms(&s, both, l, 8, 40, -1) / rms(&s, bothref, l, 8, 40, -1);
		printf("  lane %u (ECG gain %+.2f, weight %.2f): RMS / ECG-free RMS: no rejection %.2f, "
		       "highpass %.2f, subtract %.2f, both %.2f (ECG-free %.2f uV)\n",
		       l, lane_gain[l], emg_ecg_lane_weight(e, l), rr, rh, rs, rb, r0);
		ck_assert_msg(rs < 1.2 && rs > 0.9, "lane %u: subtract leaves RMS ratio %.3f", l, rs);
		ck_assert_msg(rb < 1.2 && rb > 0.9, "lane %u: both leaves RMS ratio %.3f", l, rb);
	}
	/* Every beat after the start-up second found, and no extra ones. */
	ck_assert_uint_ge(emg_ecg_beats(e), s.nbeats - 3);
	ck_assert_uint_le(emg_ecg_beats(e), s.nbeats);
	emg_ecg_free(e);
	free(raw);
	free(ref);
	free(sub);
	free(hp);
	free(hpref);
	free(both);
	free(bothref);
	free_sig(&s);
}
END_TEST

/*
 * (1b) A strong heart: R peaks of 2 mV over 5 uV of rest (a trunk or left
 * hip channel).  120 ms after each trigger the band-passed beat still stood
 * 15-20x over the rest in the filters' ring, so its lanes still voted over
 * the threshold and every trigger was taken back as a burst (beat_was_burst):
 * 1 beat of 33 found, nothing subtracted, and the onset detector fired on
 * every beat once its start-up gate was over.  A QRS's energy has fallen
 * 100-1000x by then, a contraction's has not: the stage must find the beats
 * and subtract them as at 200 uV.
 */
START_TEST(strong_heart)
{
	const double fs = rates[_i];
	const unsigned nl = 6;
	struct sig s;
	struct emg_ecg *e;
	float *raw, *ref, *sub;

	make_sig(&s, fs, nl, 30, 2000, 0, 12);
	three_runs(&s, &raw, &ref, &sub, &e);

	printf("ecg strong heart %g Hz: %llu beats detected of %u\n", fs,
	       (unsigned long long)emg_ecg_beats(e), s.nbeats);
	ck_assert_uint_ge(emg_ecg_beats(e), s.nbeats - 3);
	ck_assert_uint_le(emg_ecg_beats(e), s.nbeats);
	ck_assert(emg_ecg_locked(e));
	/* The beats vary +-10 % with breathing, and the trigger moves with them
	 * by ~0.8 ms: against one template, up to 200 uV of a 2 mV beat stayed,
	 * 29-31 % of the excess RMS.  Each beat's amplitude and alignment are now
	 * fitted ("Per-beat fit", ecg.c): 16-19 %, most of it the 40 ms before
	 * each trigger, which a causal stage cannot take out of the signal
	 * (the envelope has it patched). */
	for (unsigned l = 0; l < nl; l++) {
		double r0 = rms(&s, ref, l, 8, 30, -1);
		double rr = rms(&s, raw, l, 8, 30, -1) / r0, rs = rms(&s, sub, l, 8, 30, -1) / r0;
		printf("  lane %u (R %4.0f uV): RMS / ECG-free RMS: no rejection %.2f, subtract %.2f\n",
		       l, 2000 * fabs(lane_gain[l]), rr, rs);
		ck_assert_msg(rs - 1 < 0.25 * (rr - 1), "lane %u: subtract leaves RMS ratio %.3f of %.3f",
			      l, rs, rr);
	}
	free_runs(e, raw, ref, sub, &s);
}
END_TEST

/*
 * (1c) Many lanes, few of them with a clear QRS: a 64-channel amplifier over
 * the trunk and hips.  4 lanes with a strong QRS, 36 where its R is 6-24 uV
 * in 5 uV of noise, 24 without ECG; and once, halfway between the first two
 * beats after the start-up second, a short artefact on two neighbouring
 * lanes (an electrode tapped) - as many lanes over the noise guard as a
 * heartbeat before anything is learnt, so it triggers.  Its two half
 * intervals made the mean RR half the real one, confirmed by the second; every
 * later beat then counted as "two RR, one beat missed", which never corrects
 * the mean RR nor forms the lock.  And until a lane has learnt, the 60 lanes
 * without much ECG diluted the beats' vote to about the threshold: at 2 kHz
 * one beat in five was missed.  Nothing was subtracted (RMS 1.7-2.8 x on the
 * strongest lane).  The stage must run at the real heart rate, find >= 90 %
 * of the beats and subtract: the strong lanes' RMS at rest (from 20 s on)
 * within 20 % of the ECG-free RMS, and no other lane made worse.
 */
START_TEST(many_lanes_lock)
{
	const double fs = rates[_i];
	const unsigned nl = 64, strong = 4, weak = 40, block = 32, art[2] = { 20, 21 };
	double gain[64];
	struct emg_ecg_params p;
	struct emg_ecg *e;
	struct sig s;
	uint64_t trig[256], beats = 0, age;
	size_t nt = 0, found = 0, truth = 0;
	double t_art = 0, true_rr;

	for (unsigned l = 0; l < nl; l++) /* strong, then weak (0.03..0.12, a third inverted), then none */
		gain[l] = l < strong ? lane_gain[l]
			: l < weak ? (l % 3 ? 1 : -1) * (0.03 + 0.09 * (l % 5) / 4.0) : 0;
	make_sig_gains(&s, fs, nl, 40, 200, 0, 41, gain);
	for (unsigned b = 0; b + 1 < s.nbeats; b++)
		if (s.beat[b] >= 1.05) {
			t_art = 0.5 * (s.beat[b] + s.beat[b + 1]);
			break;
		}
	{ /* the artefact: a 2 ms biphasic pulse of 400 uV, through the band-pass */
		float *a = calloc(s.n * nl, sizeof(float));
		ck_assert_ptr_nonnull(a);
		for (int k = -20; k <= 20; k++) {
			const double dt = k / fs;
			const size_t i = (size_t)llround(t_art * fs) + (size_t)k;
			for (unsigned j = 0; j < 2; j++)
				a[i * nl + art[j]] = (float)(400.0 * dt / 0.002 * exp(-0.5 * dt * dt / (0.002 * 0.002)));
		}
		bandpass(a, s.n, nl, fs);
		for (size_t i = 0; i < s.n * nl; i++)
			s.emg[i] += a[i];
		free(a);
	}
	float *raw = run_stage(&s, 1, EMG_ECG_OFF, block, NULL);
	float *ref = run_stage(&s, 0, EMG_ECG_SUBTRACT, block, NULL);
	float *sub = run_stage(&s, 1, EMG_ECG_OFF, block, NULL); /* the stage runs on it below */

	emg_ecg_params_default(&p);
	ck_assert_int_eq(emg_ecg_new(&e, &p, s.fs, s.nl), 0);
	for (size_t off = 0; off < s.n; off += block) {
		unsigned m = s.n - off < block ? (unsigned)(s.n - off) : block;
		emg_ecg_run(e, sub + off * nl, m);
		/* a trigger taken back (a burst) 120 ms later leaves the list too */
		if (emg_ecg_beats(e) < beats && nt > 0)
			nt--;
		else if (emg_ecg_beats(e) > beats && emg_ecg_last_beat(e, &age) && nt < 256) {
			trig[nt++] = off + m - age;
			if (getenv("ECG_DEBUG"))
				printf("trigger %.3f s, %.1f bpm, locked %d\n", (double)trig[nt - 1] / fs,
				       emg_ecg_heart_rate(e), emg_ecg_locked(e));
		}
		beats = emg_ecg_beats(e);
	}
	/* beats from 2 s on, each matched to a trigger 60 ms before to 40 ms after its R */
	for (unsigned b = 0; b < s.nbeats && s.beat[b] < 39.9; b++) {
		const double r = s.beat[b] * fs;
		if (s.beat[b] < 2.0)
			continue;
		truth++;
		for (size_t k = 0; k < nt; k++)
			if ((double)trig[k] >= r - 0.060 * fs && (double)trig[k] <= r + 0.040 * fs) {
				found++;
				if (getenv("ECG_DEBUG"))
					printf("beat %.3f trigger - R %+.1f ms\n", s.beat[b], ((double)trig[k] - r) * 1e3 / fs);
				break;
			}
	}
	true_rr = (s.beat[s.nbeats - 1] - s.beat[0]) / (s.nbeats - 1);
	printf("ecg 64 lanes %g Hz: artefact at %.3f s, %zu/%zu beats found, %zu triggers, "
	       "%.1f bpm (true %.1f)\n", fs, t_art, found, truth, nt, emg_ecg_heart_rate(e),
	       60.0 / true_rr);
	for (unsigned l = 0; l < nl; l++) {
		const double r0 = rms(&s, ref, l, 20, 40, -1);
		const double rr = rms(&s, raw, l, 20, 40, -1) / r0, rs = rms(&s, sub, l, 20, 40, -1) / r0;
		if (l < strong || l % 8 == 0 || getenv("ECG_DEBUG"))
			printf("  lane %2u (ECG gain %+.3f, weight %.3f): RMS / ECG-free RMS: "
			       "no rejection %.2f, subtract %.2f\n", l, gain[l],
			       emg_ecg_lane_weight(e, l), rr, rs);
		if (l < strong)
			ck_assert_msg(rs < 1.2 && rs > 0.9, "strong lane %u: subtract leaves RMS ratio %.3f", l, rs);
		else
			ck_assert_msg(rs < 1.05 * rr, "lane %u: RMS ratio %.3f -> %.3f", l, rr, rs);
	}
	ck_assert_msg(fabs(emg_ecg_heart_rate(e) * true_rr / 60.0 - 1.0) < 0.1,
		      "heart rate %.1f bpm, true %.1f", emg_ecg_heart_rate(e), 60.0 / true_rr);
	ck_assert_msg(found >= 0.9 * (double)truth, "%zu of %zu beats found", found, truth);
	ck_assert_msg(nt <= found + 3, "%zu triggers for %zu beats", nt, found);
	free_runs(e, raw, ref, sub, &s);
}
END_TEST

/* The pre-trigger fixes of a run (emg_ecg_pre_fix), in order, with absolute trigger samples. */
struct fixes {
	unsigned nl, pre;
	size_t n, cap;
	uint64_t *at;  /* trigger sample */
	float *x;      /* pre x nl each */
	uint8_t *lane; /* nl each */
};

static void fixes_add(struct fixes *f, const struct emg_ecg *e, uint64_t off)
{
	struct emg_ecg_fix fx;

	for (unsigned i = 0; emg_ecg_pre_fix(e, i, &fx) == 0; i++) {
		ck_assert_uint_eq(fx.pre, f->pre);
		if (f->n == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 64;
			f->at = realloc(f->at, f->cap * sizeof(*f->at));
			f->x = realloc(f->x, f->cap * f->pre * f->nl * sizeof(float));
			f->lane = realloc(f->lane, f->cap * f->nl);
			ck_assert(f->at && f->x && f->lane);
		}
		f->at[f->n] = off + fx.frame;
		memcpy(f->x + f->n * f->pre * f->nl, fx.x, f->pre * f->nl * sizeof(float));
		memcpy(f->lane + f->n * f->nl, fx.lane, f->nl);
		f->n++;
	}
	ck_assert_int_eq(emg_ecg_pre_fix(e, EMG_ECG_FIX_MAX, &fx), -ENOENT);
}

static void fixes_free(struct fixes *f)
{
	free(f->at);
	free(f->x);
	free(f->lane);
}

/*
 * emg + ecg_scale * ecg through the stage in blocks, and a 125 ms RMS envelope
 * of its output the way lib/pipeline.c runs it: with fix, each trigger's
 * pre-trigger frames patched before the envelope takes the trigger's own.
 * Returns each lane's mean envelope^2 from t0 s on (env2[nl]); fixes into f.
 */
static void stage_env(const struct sig *s, double ecg_scale, unsigned block, int fix, double t0,
		      double *env2, struct fixes *f)
{
	struct emg_ecg_params p;
	struct emg_ecg *e;
	struct emg_env *v;
	const size_t from = (size_t)(t0 * s->fs);
	float *x = malloc(s->n * s->nl * sizeof(float));
	float y[NL_MAX];

	ck_assert_ptr_nonnull(x);
	for (size_t i = 0; i < s->n * s->nl; i++)
		x[i] = s->emg[i] + (float)ecg_scale * s->ecg[i];
	emg_ecg_params_default(&p);
	ck_assert_int_eq(emg_ecg_new(&e, &p, s->fs, s->nl), 0);
	ck_assert_int_eq(emg_env_new(&v, s->nl, (unsigned)lround(0.125 * s->fs)), 0);
	memset(f, 0, sizeof(*f));
	f->nl = s->nl;
	f->pre = emg_ecg_pre_samples(e);
	for (unsigned l = 0; l < s->nl; l++)
		env2[l] = 0;
	for (size_t off = 0; off < s->n; off += block) {
		const unsigned m = s->n - off < block ? (unsigned)(s->n - off) : block;
		const size_t first = f->n;

		emg_ecg_run(e, x + off * s->nl, m);
		fixes_add(f, e, off);
		for (unsigned j = 0; j < m; j++) {
			for (size_t k = first; fix && k < f->n; k++)
				for (unsigned i = 0; f->at[k] == off + j && i < f->pre; i++)
					emg_env_patch_frame(v, f->pre - 1 - i,
							    f->x + (k * f->pre + i) * s->nl,
							    f->lane + k * s->nl);
			emg_env_run(v, x + (off + j) * s->nl, y, 1);
			for (unsigned l = 0; off + j >= from && l < s->nl; l++)
				env2[l] += (double)y[l] * y[l] / (double)(s->n - from);
		}
	}
	emg_env_free(v);
	emg_ecg_free(e);
	free(x);
}

/*
 * (1c) The part of each beat before its trigger (the Q wave and the bottom of
 * the upstroke) stays in the signal; the pre-trigger template takes it out of
 * what the RMS envelope holds.  At rest with a 200 uV ECG: on the lanes where
 * the stage subtracts, the ECG left in the corrected pre-trigger frames is a
 * fraction of what was there; the envelope's RMS on the strongest lane moves
 * to within 10 % of the ECG-free one, and on no lane does the patch make it
 * worse.  The fixes do not depend on the block size.
 */
START_TEST(pre_template_rest)
{
	const double fs = rates[_i];
	const unsigned nl = 6;
	struct sig s;
	struct fixes f, g;
	double ref[NL_MAX], raw[NL_MAX], fixed[NL_MAX], dummy[NL_MAX];

	make_sig(&s, fs, nl, 40, 200, 0, 17);
	stage_env(&s, 0, 128, 1, 8, ref, &f);
	ck_assert_uint_eq(f.n, 0); /* no heart, no fix */
	fixes_free(&f);
	stage_env(&s, 1, 128, 0, 8, raw, &f);
	fixes_free(&f);
	stage_env(&s, 1, 128, 1, 8, fixed, &f);
	stage_env(&s, 1, 37, 1, 8, dummy, &g);
	ck_assert_uint_eq(f.pre, (unsigned)lround(0.040 * fs));
	ck_assert_uint_ge(f.n, s.nbeats - 10); /* on the rhythm from the 4th beat or so */
	ck_assert_uint_eq(g.n, f.n);
	ck_assert_mem_eq(g.at, f.at, f.n * sizeof(*f.at));
	ck_assert_mem_eq(g.x, f.x, f.n * f.pre * nl * sizeof(float));
	ck_assert_mem_eq(g.lane, f.lane, f.n * nl);
	for (unsigned l = 0; l < nl; l++) {
		double before = 0, after = 0;
		size_t used = 0;

		/* ECG energy left in the pre-trigger frames, once learnt (after 8 s) */
		for (size_t k = 0; k < f.n; k++) {
			if (f.at[k] < 8 * fs || !f.lane[k * nl + l])
				continue;
			used++;
			for (unsigned i = 0; i < f.pre; i++) {
				const size_t t = f.at[k] - f.pre + i;
				const double e0 = s.ecg[t * nl + l];
				const double e1 = f.x[(k * f.pre + i) * nl + l] - s.emg[t * nl + l];
				before += e0 * e0;
				after += e1 * e1;
			}
		}
		printf("ecg pre %g Hz lane %u (gain %+.2f): %zu beats fixed, pre-trigger ECG energy "
		       "left %.2f; envelope RMS / ECG-free: %.3f unpatched, %.3f patched\n",
		       fs, l, lane_gain[l], used, used ? after / before : 1.0, sqrt(raw[l] / ref[l]),
		       sqrt(fixed[l] / ref[l]));
		if (fabs(lane_gain[l]) >= 0.35) {
			ck_assert_uint_gt(used, 20);
			ck_assert_msg(after < 0.25 * before, "lane %u: %.2f of the pre-trigger ECG left",
				      l, after / before);
		}
		ck_assert_msg(fixed[l] <= raw[l] * 1.0001, "lane %u: patched %.4f > unpatched %.4f", l,
			      sqrt(fixed[l] / ref[l]), sqrt(raw[l] / ref[l]));
	}
	ck_assert_msg(sqrt(fixed[0] / ref[0]) < 1.1, "strongest lane: envelope RMS %.3f x ECG-free",
		      sqrt(fixed[0] / ref[0]));
	ck_assert_msg(fixed[0] < 0.95 * raw[0], "strongest lane: the patch took out only %.1f %%",
		      100.0 * (1.0 - fixed[0] / raw[0]));
	fixes_free(&f);
	fixes_free(&g);
	free_sig(&s);
}
END_TEST

/*
 * (1b) A lane whose ECG changes under the learnt template: at 30 s its QRS
 * flips polarity (an electrode moved, the patient turned over).  Its template
 * re-learns slowly, by a clipped step per beat, and meanwhile subtracting it
 * doubles each QRS instead of removing it.  The stage must notice within a few
 * beats and stop subtracting there, and still clean the other lanes.
 */
START_TEST(changed_lane_left_alone)
{
	const double fs = 2000, flip = 30;
	const unsigned nl = 6, bad = 2;
	struct sig s;
	struct emg_ecg *e;
	float *raw, *ref, *sub;

	make_sig(&s, fs, nl, 60, 200, 0, 23);
	for (size_t i = (size_t)(flip * fs); i < s.n; i++)
		s.ecg[i * nl + bad] = -s.ecg[i * nl + bad];
	three_runs(&s, &raw, &ref, &sub, &e);

	double rr[NL_MAX], rs[NL_MAX];
	for (unsigned l = 0; l < nl; l++) {
		double r0 = rms(&s, ref, l, flip + 5, 60, -1);
		rr[l] = rms(&s, raw, l, flip + 5, 60, -1) / r0;
		rs[l] = rms(&s, sub, l, flip + 5, 60, -1) / r0;
		printf("  lane %u, %s: RMS / ECG-free RMS: no rejection %.2f, subtract %.2f\n", l,
		       l == bad ? "flipped at 30 s" : "unchanged", rr[l], rs[l]);
	}
	fflush(stdout);
	for (unsigned l = 0; l < nl; l++) {
		if (l == bad)
			ck_assert_msg(rs[l] <= rr[l] * 1.02, "lane %u: subtracting raised RMS %.2f -> %.2f", l, rr[l], rs[l]);
		else
			ck_assert_msg(rs[l] < 1.2, "lane %u: subtract leaves RMS ratio %.3f", l, rs[l]);
	}
	free_runs(e, raw, ref, sub, &s);
}
END_TEST

/* (2) Bursts on some lanes (one of them the strongest ECG lane): burst RMS kept within 5 %,
 * the quiet lanes still cleaned. */
START_TEST(bursts_kept)
{
	const double fs = rates[_i];
	const unsigned nl = 6, mask = 0x9; /* lanes 0 and 3 contract */
	struct sig s;
	struct emg_ecg *e;

	make_sig(&s, fs, nl, 40, 200, mask, 12);
	float *ref = run_stage(&s, 0, EMG_ECG_OFF, 128, NULL);
	float *sub = run_stage(&s, 1, EMG_ECG_SUBTRACT, 128, &e);
	float *clean = run_stage(&s, 0, EMG_ECG_SUBTRACT, 100, NULL);
	float *both = run_stage(&s, 1, EMG_ECG_BOTH, 128, NULL);

	printf("ecg bursts %g Hz: %llu beats detected of %u\n", fs,
	       (unsigned long long)emg_ecg_beats(e), s.nbeats);
	if (getenv("ECG_DEBUG")) { /* residual energy of lane 1 around R, by lane 0's state */
		for (int st = 0; st < 2; st++) {
			double bins[30] = { 0 };
			unsigned nb = 0;
			for (unsigned b = 10; b < s.nbeats - 2; b++) {
				size_t i0 = (size_t)llround(s.beat[b] * fs);
				if (s.burst[i0 * nl] != st)
					continue;
				nb++;
				for (int k = -100; k < 500; k++) {
					size_t i = (size_t)llround((s.beat[b] + k * 1e-3) * fs);
					double d = sub[i * nl + 1] - ref[i * nl + 1];
					bins[(k + 100) / 20] += d * d;
				}
			}
			printf("lane 0 %s (%u beats):", st ? "bursting" : "quiet", nb);
			for (int k = 0; k < 30; k++)
				printf(" %.0f", bins[k] / (nb ? nb : 1));
			printf("\n");
		}
	}
	for (unsigned l = 0; l < nl; l++) {
		if (mask >> l & 1) {
			double b0 = rms(&s, ref, l, 8, 40, 1);
			double bs = rms(&s, sub, l, 8, 40, 1) / b0, bc = rms(&s, clean, l, 8, 40, 1) / b0;
			double bb = rms(&s, both, l, 8, 40, 1) / b0;
			double qs = rms(&s, sub, l, 8, 40, 0) / rms(&s, ref, l, 8, 40, 0);
			printf("  lane %u burst RMS / ECG-free: subtract %.3f (no ECG at all %.3f), both %.3f; "
			       "between bursts %.2f\n", l, bs, bc, bb, qs);
			ck_assert_msg(bs > 0.95 && bs < 1.05, "lane %u burst ratio %.3f", l, bs);
			ck_assert_msg(bc > 0.95 && bc < 1.05, "lane %u burst ratio (no ECG) %.3f", l, bc);
			ck_assert_msg(bb > 0.95, "lane %u burst ratio (both) %.3f", l, bb);
		} else {
			double q = rms(&s, sub, l, 8, 40, -1) / rms(&s, ref, l, 8, 40, -1);
			printf("  lane %u at rest RMS / ECG-free: subtract %.2f\n", l, q);
			ck_assert_msg(q < 1.2, "quiet lane %u ratio %.3f", l, q);
		}
	}
	emg_ecg_free(e);
	free(ref);
	free(sub);
	free(clean);
	free(both);
	free_sig(&s);
}
END_TEST

/*
 * (2b) Several muscles start contracting at once, at any phase of the heart
 * cycle (a bilateral bridge).  The vote sees a burst on several lanes, as on
 * a QRS, and triggers; 120 ms later a QRS is over and the contraction is not,
 * so the trigger is taken back.  Counted as beats, these triggers cost the
 * real beat after them (refractory period) and the templates' alignment: the
 * strongest quiet lane kept 1.60 / 2.24 (1 / 2 kHz) times its ECG-free RMS
 * during the exercise, 1.27 / 1.72 with the take-back (3.10 without the stage).
 */
START_TEST(bursts_together_not_beats)
{
	const double fs = rates[_i];
	const unsigned nl = 6, mask = TOGETHER | 0x16; /* lanes 1, 2 and 4 */
	const unsigned block = 64;
	struct emg_ecg_params p;
	struct emg_ecg *e;
	struct sig s;
	size_t blocks = 0, locked = 0;

	make_sig(&s, fs, nl, 40, 200, mask, 31);
	float *ref = run_stage(&s, 0, EMG_ECG_OFF, 128, NULL);
	float *raw = run_stage(&s, 1, EMG_ECG_OFF, 128, NULL);
	float *sub = run_stage(&s, 1, EMG_ECG_OFF, 128, NULL); /* the stage runs on it below */

	emg_ecg_params_default(&p);
	ck_assert_int_eq(emg_ecg_new(&e, &p, s.fs, s.nl), 0);
	for (size_t off = 0; off < s.n; off += block) {
		unsigned m = s.n - off < block ? (unsigned)(s.n - off) : block;
		emg_ecg_run(e, sub + off * s.nl, m);
		if (off >= (size_t)(6.0 * fs)) { /* from the first repetition on */
			blocks++;
			locked += emg_ecg_locked(e) != 0;
		}
	}
	printf("ecg bursts together %g Hz: locked on the heart %.0f %% of the exercise\n", fs,
	       100.0 * (double)locked / (double)blocks);
	for (unsigned l = 0; l < nl; l++) {
		if (mask >> l & 1)
			continue;
		double q = rms(&s, sub, l, 6, 40, -1) / rms(&s, ref, l, 6, 40, -1);
		double q0 = rms(&s, raw, l, 6, 40, -1) / rms(&s, ref, l, 6, 40, -1);
		printf("  lane %u at rest during the exercise, RMS / ECG-free: no rejection %.2f, subtract %.2f\n",
		       l, q0, q);
		fflush(stdout);
		/* the strongest lane keeps what the repetitions hide of its beats */
		ck_assert_msg(q < (l == 0 ? 0.6 * q0 : 1.2), "quiet lane %u ratio %.3f", l, q);
	}
	ck_assert_msg(locked >= 0.85 * (double)blocks, "locked %zu of %zu blocks", locked, blocks);
	emg_ecg_free(e);
	free(ref);
	free(raw);
	free(sub);
	free_sig(&s);
}
END_TEST

/* Noise alone (and noise with bursts) never looks like a heartbeat, on 1, 6 or 64 lanes
 * (64: the guard on the mean is lower there until a lane has learnt, DIL_LANES). */
START_TEST(no_beats_without_ecg)
{
	static const unsigned lanes[] = { 1, 6, 64 };
	const double fs = rates[_i];
	struct sig s;
	struct emg_ecg *e;

	for (unsigned k = 0; k < 3; k++) {
		const unsigned nl = lanes[k];
		make_sig(&s, fs, nl, 60, 0, 0, 13 + nl);
		free(run_stage(&s, 0, EMG_ECG_SUBTRACT, 128, &e));
		ck_assert_uint_eq(emg_ecg_beats(e), 0);
		emg_ecg_free(e);
		free_sig(&s);
	}
}
END_TEST

/* Block size does not change a single bit; skipped lanes are untouched. */
START_TEST(blocks_and_skip)
{
	struct sig s;
	struct emg_ecg_params p;
	struct emg_ecg *e;

	make_sig(&s, 2000, 7, 12, 200, 0x2, 14);
	float *a = run_stage(&s, 1, EMG_ECG_BOTH, 128, NULL);
	float *b = run_stage(&s, 1, EMG_ECG_BOTH, 37, NULL);
	ck_assert(memcmp(a, b, s.n * s.nl * sizeof(float)) == 0);
	free(b);

	emg_ecg_params_default(&p);
	p.mode = EMG_ECG_BOTH;
	p.skip[2] = p.skip[5] = 1;
	ck_assert_int_eq(emg_ecg_new(&e, &p, 2000, 7), 0);
	for (size_t i = 0; i < s.n * s.nl; i++)
		a[i] = s.emg[i] + s.ecg[i];
	emg_ecg_run(e, a, (unsigned)s.n);
	for (size_t i = 0; i < s.n; i++) {
		ck_assert(a[i * 7 + 2] == s.emg[i * 7 + 2] + s.ecg[i * 7 + 2]);
		ck_assert(a[i * 7 + 5] == s.emg[i * 7 + 5] + s.ecg[i * 7 + 5]);
	}
	ck_assert_float_eq(emg_ecg_lane_weight(e, 2), 0);
	ck_assert_uint_gt(emg_ecg_beats(e), 8);
	emg_ecg_free(e);
	free(a);
	free_sig(&s);
}
END_TEST

/* The extra high-pass is the 30 Hz 4th-order Butterworth. */
START_TEST(highpass_response)
{
	struct emg_ecg_params p;
	struct emg_ecg *e;
	const double fs = 2000;
	float x[4000];

	emg_ecg_params_default(&p);
	p.mode = EMG_ECG_HIGHPASS;
	for (int k = 0; k < 3; k++) {
		const double hz[3] = { 10, 30, 150 }, want[3] = { -38.2, -3.0, -0.0 };
		double acc = 0;
		ck_assert_int_eq(emg_ecg_new(&e, &p, fs, 1), 0);
		for (int i = 0; i < 4000; i++)
			x[i] = (float)sin(2 * M_PI * hz[k] * i / fs);
		emg_ecg_run(e, x, 4000);
		for (int i = 2000; i < 4000; i++)
			acc += (double)x[i] * x[i];
		ck_assert_double_eq_tol(10 * log10(acc / 1000.0), want[k], 0.3);
		emg_ecg_free(e);
	}
}
END_TEST

/* (4) Nothing allocates after creation. */
START_TEST(no_alloc)
{
#ifdef COUNT_ALLOCS
	struct sig s;
	struct emg_ecg_params p;
	struct emg_ecg *e;

	make_sig(&s, 2000, 5, 15, 200, 0x1, 15);
	emg_ecg_params_default(&p);
	p.mode = EMG_ECG_BOTH;
	p.skip[4] = 1; /* the gathering high-pass path too */
	ck_assert_int_eq(emg_ecg_new(&e, &p, 2000, 5), 0);
	float *x = malloc(s.n * s.nl * sizeof(float));
	for (size_t i = 0; i < s.n * s.nl; i++)
		x[i] = s.emg[i] + s.ecg[i];
	allocs = 0;
	armed = 1;
	for (size_t off = 0; off < s.n; off += 128)
		emg_ecg_run(e, x + off * s.nl, s.n - off < 128 ? (unsigned)(s.n - off) : 128);
	armed = 0;
	ck_assert_uint_eq(allocs, 0);
	ck_assert_uint_gt(emg_ecg_beats(e), 10);
	emg_ecg_free(e);
	free(x);
	free_sig(&s);
#endif
}
END_TEST

START_TEST(params)
{
	struct emg_ecg_params p;
	struct emg_ecg *e;
	enum emg_ecg_mode m;
	char buf[64];

	emg_ecg_params_default(&p);
	ck_assert_int_eq(p.mode, EMG_ECG_SUBTRACT); /* on by default: the default muscles are all in the heart's field */
	ck_assert_int_eq(emg_ecg_mode_parse("both", &m), 0);
	ck_assert_int_eq(m, EMG_ECG_BOTH);
	ck_assert_int_eq(emg_ecg_mode_parse("on", &m), -EINVAL);
	ck_assert_str_eq(emg_ecg_mode_name(EMG_ECG_HIGHPASS), "highpass");
	ck_assert_int_eq(emg_ecg_new(&e, &p, 100, 4), -EINVAL);
	ck_assert_int_eq(emg_ecg_new(&e, &p, 2000, 0), -EINVAL);
	p.mode = EMG_ECG_BOTH;
	p.highpass_hz = 2000;
	ck_assert_int_eq(emg_ecg_new(&e, &p, 2000, 4), -EINVAL);
	p.highpass_hz = 30;
	ck_assert_int_eq(emg_ecg_new(&e, &p, 2000, 4), 0);
	emg_ecg_describe(e, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ECG:HP30Hz+sub");
	ck_assert_uint_eq(emg_ecg_latency_samples(e), 0);
	ck_assert_uint_eq(emg_ecg_pre_samples(e), 80); /* 40 ms */
	{
		struct emg_ecg_fix fx;
		ck_assert_int_eq(emg_ecg_pre_fix(e, 0, &fx), -ENOENT); /* nothing run yet */
	}
	emg_ecg_free(e);
	p.mode = EMG_ECG_HIGHPASS;
	ck_assert_int_eq(emg_ecg_new(&e, &p, 2000, 4), 0);
	ck_assert_uint_eq(emg_ecg_pre_samples(e), 0);
	emg_ecg_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ecg");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, rest_rms_restored, 0, 2);
	tcase_add_loop_test(tc, strong_heart, 0, 2);
	tcase_add_loop_test(tc, many_lanes_lock, 0, 2);
	tcase_add_loop_test(tc, pre_template_rest, 0, 2);
	tcase_add_loop_test(tc, bursts_kept, 0, 2);
	tcase_add_loop_test(tc, bursts_together_not_beats, 0, 2);
	tcase_add_test(tc, changed_lane_left_alone);
	tcase_add_loop_test(tc, no_beats_without_ecg, 0, 2);
	tcase_add_test(tc, blocks_and_skip);
	tcase_add_test(tc, highpass_response);
	tcase_add_test(tc, no_alloc);
	tcase_add_test(tc, params);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(suite());
}
