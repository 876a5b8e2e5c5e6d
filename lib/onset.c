/* SPDX-License-Identifier: MIT */
/*
 * Onset/offset detection: one detector per lane, O(1) per sample.
 *
 * Fast path, per method (conditioning computed CHUNK frames at a time):
 *   hodges  c[n] = moving RMS of x over W = window_ms (an emg_env with one
 *           channel per lane); "on" while c > mean + k SD of c at rest.
 *   tkeo    psi[n] = x[n-1]^2 - x[n] x[n-2];  c[n] = sqrt(moving mean of
 *           |psi| over W), computed as the moving RMS of sqrt|psi| through
 *           the same drift-free emg_env: the square root keeps c in uV with
 *           a rest distribution like the RMS envelope's, so mean + k SD
 *           means the same for both.  "on" as for hodges.
 *   bonato  no envelope: a pair (x[n-1], x[n]), n odd, exceeds when
 *           (x[n-1]^2 + x[n]^2) / var > zeta = -2 ln(pfa) (chi-square with
 *           2 dof: P(> zeta) = exp(-zeta/2) = pfa); "on" while >= r0 of the
 *           last m pairs exceed.
 * Once a burst is confirmed, hodges/tkeo stay on until c < mean + (k-1) SD
 * (hysteresis).
 *
 * Slow path, all methods: a contraction at ~0 dB SNR never holds a 25 ms
 * envelope above mean + 3 SD for 30 ms, yet over 150 ms it is plain.  Each
 * lane also watches P[n], the mean of x^2 over W2 = 6 W, against
 * mid * (1 + (k+1) s2), s2 being the relative SD of P at rest.  s2 is
 * measured, never assumed - coloured noise such as the residue of baseline
 * wander makes P wander far more than white noise would: it is the larger
 * of the spread of the clean auto blocks' log power (from their lower
 * quantiles, so blocks holding undetected weak activity do not inflate it,
 * scaled from the block length to W2, smoothed across blocks) and a floor
 * from the spread of W-sample powers within blocks scaled as if
 * independent.  A rest calibration measures the same from its own blocks.
 * A burst the fast path cannot hold steadily (mean power < 4x rest) or that
 * the slow path confirmed lasts while either path sees it; after any burst
 * the slow path re-arms only once P has dropped below its off level.
 *
 * Burst logic, common to both paths and all methods:
 *   - onset confirmed when the on-decisions have held for
 *     max(hold_ms, min_burst_ms) samples (the slow path: P above its off
 *     level once past its on level) and the raw power has kept rising for
 *     min_burst_ms since the back-dated onset - a 15 ms blip holds a 25 ms
 *     envelope above threshold for 40 ms, so the run alone cannot reject it;
 *   - onset back-dated to the first sample of the run (bonato: of the
 *     earliest exceeding pair in the window), and further by the
 *     conditioning's delay, below;
 *   - offset confirmed when the off-decisions have held offset_ms (on-blips
 *     shorter than a confirmation inside the off-run are ignored), its
 *     sample the end of the power (below);
 *   - burst SNR = 20 log10(RMS of x over the burst / baseline RMS of x).
 *
 * Back-dating.  Two one-sided CUSUMs run on the raw power z = x^2 / var:
 * g = min(cap, max(0, g + z - drift)), "strong" (drift 2, cap W + hold) and
 * "weak" (drift 1.3, cap 25).  The envelope's lag depends on the rise: a
 * step shows within a sample or two, a rise slower than the window about
 * W/2 late (its group delay).  The strong CUSUM's climb from 5 % of its
 * ceiling to the ceiling, tau samples, says which, and the fast path
 * back-dates by D = min(group delay, 2 tau): group delay W/2 for hodges,
 * W/2 + 1 for tkeo (psi is centred on x[n-1]), 2m samples (its window) for
 * bonato.  The slow path back-dates by the moving mean's crossing delay for
 * the run's power rho, W2 e / (rho - 1) with e the threshold excess (at
 * most W2/2), averaged with where the weak CUSUM left 0.  Offsets are where
 * the uncapped CUSUM sum since the onset peaked (the power's change point),
 * within W (slow: W2) before the off-run.  The strong CUSUM's rise also
 * rejects blips (the min_burst test above) and, when the power jumps
 * >= 6-fold, disarms the slow path: that is the fast path's business.
 *
 * Baselines: a rest calibration (rest_begin/rest_end, or set_baseline)
 * gives a lane a REST baseline that is kept until replaced.  Otherwise the
 * AUTO baseline is re-chosen at the end of every auto_block_ms block from
 * the quietest (smallest mean of c; bonato: smallest raw variance) of the
 * last auto_blocks blocks that did not overlap a burst, pooled with the
 * clean blocks within 15 % (variance: 30 %) of it.  A lane has no baseline,
 * and detects nothing, until its first block completes (W2 + one block
 * after the start).  A baseline installed with set_baseline carries no
 * slow-path spread: the one learnt from the auto blocks is used (it is a
 * property of the noise spectrum, not of its level).
 *
 * Everything is allocated in emg_onset_new(); the run path neither
 * allocates nor locks nor logs, and reports through the callback.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "onset.h"

#define CHUNK 128       /* frames conditioned per pass */

#define SLOW_MULT 6     /* slow window W2 = SLOW_MULT * W */
#define SLOW_K_EXTRA 1.0 /* slow path threshold: k + SLOW_K_EXTRA relative SDs */
#define GA_DRIFT 2.0    /* CUSUM drifts, in units of the rest power: strong ... */
#define GB_DRIFT 1.3    /* ... and weak power rises */
#define GB_CAP 25.0     /* ceiling of the weak CUSUM */
#define WEAK_RHO 4.0    /* bursts under this power (in rest powers) are weak */
#define STEP_FRAC 0.05  /* the strong CUSUM's climb is timed from this fraction of its ceiling */
#define S2_ALPHA 0.0625 /* smoothing of the slow path's spread estimate, per block */
#define MID_ALPHA 0.125 /* ... and of its centre */

#define SLOW_MIN_BLOCKS 8 /* clean blocks before the slow path trusts its spread */

enum lane_state { ST_IDLE = 0, ST_PENDING, ST_ACTIVE };

/* Block or rest statistics: shifted sums of the conditioned signal c (the
 * shift, the first c value, keeps the variance free of cancellation over
 * long rests), sums of the raw signal x, of the W-sample sub-block powers,
 * and (rest only) of the powers of the blocks it spanned. */
struct acc {
	double n;
	double shift;
	double s1, s2;  /* sum (c - shift), sum (c - shift)^2 */
	double x1, x2;  /* sum x, sum x^2 */
	double np, p1, p2; /* rest only: block powers: count, sum, sum of squares */
	double sn, sp1, sp2; /* W-sample sub-block powers: count, sum, sum of squares */
	double rv, nrv;    /* rest only: sum and count of the blocks' sub-block relative variance */
};

/*
 * One-sided CUSUM g = min(cap, max(0, g + x^2/var - drift)).  The ceiling
 * lets g fall back to 0 soon after a burst, so the next onset finds a fresh
 * zero; the peaks are taken on the uncapped sums (since g was last 0, and
 * since the burst was confirmed), whose argmax is the change point where the
 * power fell back below `drift` - noise touching the ceiling again is not
 * mistaken for more activity.
 */
struct cusum {
	double g;
	uint64_t zero;       /* sample after g was last 0 */
	uint64_t started;    /* sample after g first passed STEP_FRAC of the ceiling since (0: not yet) */
	uint64_t capped;     /* sample after g first hit the ceiling since then (0: not yet) */
	double s;            /* uncapped sum since then ... */
	double peak;         /* ... its max ... */
	uint64_t peak_at;    /* ... and the sample after it */
	double b;            /* uncapped sum since the burst was confirmed ... */
	double bpeak;        /* ... its max ... */
	uint64_t bpeak_at;   /* ... and the sample after it */
};

struct block {
	uint64_t start;  /* first sample */
	double key;      /* selection key: mean of c, or raw variance for bonato */
	struct emg_baseline b;
	double logp;     /* log of the block's raw power */
	double relvar;   /* relative variance of its W-sample sub-block powers */
	int valid;
};

struct lane {
	/* baseline and derived thresholds */
	enum emg_baseline_src src;
	struct emg_baseline base;
	float th_on, th_off;  /* hodges/tkeo, on c */
	float th_pair;        /* bonato, on x[n-1]^2 + x[n]^2 */
	float inv_var;        /* 1 / baseline variance of x */
	float p_on, p_off;    /* slow path, on P (0: slow path off) */
	double s2_rest;       /* relative SD of the block power at rest: rest calibration ... */
	double s2_auto;       /* ... or the automatic blocks (0: unknown) */
	double rv_rest;       /* relative variance of W-sample powers at rest: the same */
	double rv_auto;
	double p_mid_auto;    /* typical power of the clean automatic blocks */

	/* burst state machine */
	enum lane_state st;
	uint64_t run_start;   /* fast path: first sample of the current on-run */
	unsigned run_len;
	double run_x2;
	uint64_t run2_start;  /* slow path: the same */
	unsigned run2_len;
	double run2_x2;
	int armed2;           /* the slow path may start a run */
	int weak;             /* the current burst came from the slow path or is faint (< WEAK_RHO) */
	uint64_t onset;       /* back-dated onset of the current/last burst */
	uint64_t last_offset; /* offset of the last burst (onsets never precede it) */
	unsigned off_len;     /* samples since the current off-run began (0: none) */
	unsigned on_len;      /* consecutive on-samples inside that off-run */
	uint64_t off_first;   /* first sample of the off-run as the method sees it */
	double burst_x2;      /* sum x^2 over the burst so far, off-run excluded */
	double burst_n;
	double off_x2;        /* sum x^2 over the current off-run */
	float snr_db;

	/* CUSUMs on x^2 / var */
	struct cusum ga, gb;

	/* TKEO history */
	float x1, x2;

	/* bonato */
	float xprev;
	uint64_t mask;        /* bit i: pair i pairs ago exceeded zeta */
	unsigned nover;       /* bits set in mask */
	uint64_t last_over;   /* first sample after the most recent exceeding pair */

	/* statistics */
	double sub_q;         /* sum x^2 over the current W-sample sub-block */
	struct acc blk;       /* current auto block */
	int blk_dirty;        /* current block overlaps a burst */
	struct acc rest;
	struct block *blocks; /* ring of auto_blocks completed blocks */
	unsigned bhead;       /* next slot to write */
	unsigned bcount;
};

struct emg_onset {
	struct emg_onset_params p;
	double fs;
	unsigned nlanes;
	unsigned W;           /* conditioning window, samples */
	unsigned W2;          /* slow window */
	unsigned lookback;    /* the conditioning's group delay: how far back a change may hide */
	unsigned lookback2;   /* the same for the slow path */
	unsigned confirm_n;   /* on-run length that confirms an onset */
	unsigned offset_n;    /* off-run length that confirms an offset */
	unsigned min_burst_n; /* shortest burst, samples */
	unsigned slow_extent; /* how long the weak CUSUM must rise to confirm on the slow path */
	unsigned block_n;     /* auto block length */
	unsigned warmup;      /* samples before statistics are accumulated */
	unsigned r0;          /* bonato */
	uint64_t m_mask;      /* bonato window mask (m low bits) */
	double zeta;
	double ga_cap;        /* ceiling of the strong CUSUM */
	uint64_t seen;        /* samples fed so far */
	uint64_t blk_start;   /* first sample of the current block */
	unsigned blk_pos;     /* samples in the current block */
	unsigned sub_pos;     /* samples in the current sub-block */
	int resting;
	struct emg_env *env;  /* conditioning (hodges, tkeo) */
	struct emg_env *env2; /* slow path: RMS of x over W2 */
	float *cbuf;          /* CHUNK x nlanes conditioned samples */
	float *pbuf;          /* CHUNK x nlanes slow RMS */
	struct lane *lanes;
	struct block *blockmem;
	double *scratch;      /* auto_blocks values for quantiles */
};

void emg_onset_params_default(struct emg_onset_params *p)
{
	memset(p, 0, sizeof(*p));
	p->method = EMG_ONSET_HODGES;
	p->window_ms = 25;
	p->k = 3;
	p->hold_ms = 25;
	p->offset_ms = 50;
	p->min_burst_ms = 30;
	p->bonato_pfa = 0.05;
	p->bonato_m = 5;
	p->bonato_r0 = 1;
	p->auto_block_ms = 250;
	p->auto_blocks = 40;
}

static const char *const method_names[] = {
	[EMG_ONSET_HODGES] = "hodges",
	[EMG_ONSET_TKEO] = "tkeo",
	[EMG_ONSET_BONATO] = "bonato",
};

int emg_onset_method_parse(const char *s, enum emg_onset_method *out)
{
	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
		if (!strcasecmp(s, method_names[i])) {
			if (out)
				*out = (enum emg_onset_method)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *emg_onset_method_name(enum emg_onset_method m)
{
	if ((unsigned)m < sizeof(method_names) / sizeof(method_names[0]))
		return method_names[m];
	return "unknown";
}

static unsigned ms_to_samples(double ms, double fs)
{
	double n = floor(ms * fs / 1000.0 + 0.5);

	return n < 0 ? 0 : (unsigned)n;
}

static inline uint64_t back(uint64_t n, unsigned d)
{
	return n > d ? n - d : 0;
}

/* ---- statistics ------------------------------------------------------ */

static void acc_reset(struct acc *a)
{
	memset(a, 0, sizeof(*a));
}

static inline void acc_add(struct acc *a, float c, float x)
{
	double d;

	if (a->n == 0)
		a->shift = c;
	d = (double)c - a->shift;
	a->n += 1.0;
	a->s1 += d;
	a->s2 += d * d;
	a->x1 += x;
	a->x2 += (double)x * x;
}

static inline void acc_add_subblock(struct acc *a, double p)
{
	a->sn += 1.0;
	a->sp1 += p;
	a->sp2 += p * p;
}

/* Relative variance of the W-sample sub-block powers; 0 if too few. */
static double acc_sub_relvar(const struct acc *a)
{
	double m, v;

	if (a->sn < 4)
		return 0.0;
	m = a->sp1 / a->sn;
	v = (a->sp2 / a->sn - m * m) * a->sn / (a->sn - 1);
	return m > 0 && v > 0 ? v / (m * m) : 0.0;
}

static inline void acc_add_block_power(struct acc *a, double p)
{
	a->np += 1.0;
	a->p1 += p;
	a->p2 += p * p;
}

/* Relative SD of the block powers; 0 if too few blocks. */
static double acc_block_rsd(const struct acc *a)
{
	double m, v;

	if (a->np < 4)
		return 0.0;
	m = a->p1 / a->np;
	v = (a->p2 / a->np - m * m) * a->np / (a->np - 1);
	return m > 0 && v > 0 ? sqrt(v) / m : 0.0;
}

/* The q-quantile of v[0..n-1] (n > 0), linearly interpolated; sorts v. */
static double quantile(double *v, unsigned n, double q)
{
	for (unsigned i = 1; i < n; i++) { /* insertion sort: n <= auto_blocks, once per block */
		double x = v[i];
		unsigned j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	double pos = q * (double)(n - 1);
	unsigned i = (unsigned)pos;
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

/* Baseline from accumulated statistics; 0 if it is usable. */
static int acc_baseline(const struct acc *a, int method, struct emg_baseline *b)
{
	double m, v, xm, xv;

	if (a->n < 2)
		return -ENODATA;
	m = a->s1 / a->n;
	v = a->s2 / a->n - m * m;
	xm = a->x1 / a->n;
	xv = a->x2 / a->n - xm * xm;
	b->method = method;
	b->mean = a->shift + m;
	b->sd = sqrt(v > 0 ? v : 0);
	b->var = xv > 0 ? xv : 0;
	b->rms = sqrt(a->x2 / a->n);
	if (!(b->rms > 0))
		return -ENODATA; /* flat line: disconnected, not rest */
	return 0;
}

/* Slow-path thresholds from the baseline variance and the measured spread. */
static void lane_slow_thresholds(struct emg_onset *o, struct lane *l)
{
	int rest = l->src == EMG_BASELINE_REST && (l->s2_rest > 0 || l->rv_rest > 0);
	/* between blocks, scaled from the block length to W2 ... */
	double sb = (rest ? l->s2_rest : l->s2_auto) * sqrt((double)o->block_n / (double)o->W2);
	/* ... and within blocks, from W-sample powers, as if independent: a floor
	 * that the noisy between-block estimate cannot undercut */
	double sw = sqrt((rest ? l->rv_rest : l->rv_auto) * (double)o->W / (double)o->W2);
	double s2 = sb > sw ? sb : sw;
	double k2 = o->p.k + SLOW_K_EXTRA;
	double mid = l->base.var;

	if (!(s2 > 0) || l->src == EMG_BASELINE_NONE || (!rest && l->s2_auto <= 0)) {
		l->p_on = l->p_off = 0.0f;
		return;
	}
	/* the blocks' typical power: the quietest pool sits below it */
	if (!rest && l->src == EMG_BASELINE_AUTO && l->p_mid_auto > mid)
		mid = l->p_mid_auto;
	l->p_on = (float)(mid * (1.0 + k2 * s2));
	l->p_off = (float)(mid * (1.0 + (k2 - 1.0) * s2));
}

static void lane_install(struct emg_onset *o, struct lane *l, const struct emg_baseline *b,
			 enum emg_baseline_src src)
{
	double sd = b->sd;

	/* A zero SD (quantised or synthetic input) would turn every sample on. */
	if (sd < 1e-3 * fabs(b->mean))
		sd = 1e-3 * fabs(b->mean);
	l->base = *b;
	l->src = src;
	l->th_on = (float)(b->mean + o->p.k * sd);
	l->th_off = (float)(b->mean + (o->p.k > 1 ? o->p.k - 1 : 0) * sd);
	l->th_pair = (float)(o->zeta * b->var);
	l->inv_var = b->var > 0 ? (float)(1.0 / b->var) : 0.0f;
	lane_slow_thresholds(o, l);
}

/*
 * Re-choose the AUTO baseline from the ring of blocks, and learn the slow
 * path's spread (even when a rest baseline is installed).
 */
static void lane_select_auto(struct emg_onset *o, struct lane *l)
{
	const struct block *best = NULL;
	unsigned nv = 0;

	for (unsigned i = 0; i < l->bcount; i++) {
		const struct block *bk = &l->blocks[i];
		if (!bk->valid)
			continue;
		o->scratch[nv++] = bk->logp;
		if (!best || bk->key < best->key)
			best = bk;
	}
	if (!best)
		return;

	/*
	 * Spread and centre of the clean blocks' log power from their lower
	 * quantiles (normal model: q10 and q35 sit 1.2816 and 0.3853 SD below
	 * the centre): blocks holding undetected weak activity are the loud
	 * ones, so up to ~half of them can be contaminated without inflating
	 * the estimate - which would hide exactly that activity.
	 */
	if (nv >= SLOW_MIN_BLOCKS) {
		double q10 = quantile(o->scratch, nv, 0.10), q35 = quantile(o->scratch, nv, 0.35);
		double s2 = (q35 - q10) / (1.2816 - 0.3853);
		double mid = exp(q35 + 0.3853 * s2);
		double rv = 0, nr = 0;
		if (l->s2_auto > 0) {
			/* a property of the noise spectrum: smooth out the estimator's noise */
			s2 = l->s2_auto + (s2 - l->s2_auto) * S2_ALPHA;
			mid = l->p_mid_auto + (mid - l->p_mid_auto) * MID_ALPHA;
		}
		l->s2_auto = s2;
		l->p_mid_auto = mid;
		/* within-block spread: scale-free, so active blocks hardly bias it */
		for (unsigned i = 0; i < l->bcount; i++) {
			if (l->blocks[i].valid && l->blocks[i].relvar > 0) {
				rv += l->blocks[i].relvar;
				nr += 1;
			}
		}
		l->rv_auto = nr > 0 ? rv / nr : 0.0;
	}
	if (l->src == EMG_BASELINE_REST) {
		lane_slow_thresholds(o, l);
		return;
	}

	/*
	 * The quietest block alone holds ~10 independent envelope windows: its
	 * SD is uncertain by ~20 % and the minimum of 40 block means is biased
	 * low.  Pool it with the clean blocks statistically indistinguishable
	 * from it - within two SDs of the block power (one of an amplitude),
	 * and at least 30 % (15 %): coloured noise, such as the residue of
	 * baseline wander, varies far more from block to block than white.
	 */
	double sp = 2.0 * l->s2_auto > 0.30 ? 2.0 * l->s2_auto : 0.30;
	double lim = best->key * (1.0 + (o->p.method == EMG_ONSET_BONATO ? sp : sp / 2));
	double n = 0, m = 0, m2 = 0, v = 0, r2 = 0;
	for (unsigned i = 0; i < l->bcount; i++) {
		const struct block *bk = &l->blocks[i];
		if (!bk->valid || bk->key > lim)
			continue;
		n += 1;
		m += bk->b.mean;
		m2 += bk->b.sd * bk->b.sd + bk->b.mean * bk->b.mean;
		v += bk->b.var;
		r2 += bk->b.rms * bk->b.rms;
	}
	struct emg_baseline b = best->b;
	b.mean = m / n;
	m2 = m2 / n - b.mean * b.mean;
	b.sd = sqrt(m2 > 0 ? m2 : 0);
	b.var = v / n;
	b.rms = sqrt(r2 / n);
	lane_install(o, l, &b, EMG_BASELINE_AUTO);
}

static void lane_block_end(struct emg_onset *o, struct lane *l, uint64_t start)
{
	struct block *bk = &l->blocks[l->bhead];

	bk->start = start;
	bk->valid = acc_baseline(&l->blk, o->p.method, &bk->b) == 0 && !l->blk_dirty;
	bk->key = o->p.method == EMG_ONSET_BONATO ? bk->b.var : bk->b.mean;
	bk->logp = bk->valid ? log(bk->b.var) : 0.0;
	bk->relvar = acc_sub_relvar(&l->blk);
	if (o->resting && bk->b.var > 0) {
		acc_add_block_power(&l->rest, bk->b.var);
		if (bk->relvar > 0) {
			l->rest.rv += bk->relvar;
			l->rest.nrv += 1;
		}
	}
	l->bhead = (l->bhead + 1) % o->p.auto_blocks;
	if (l->bcount < o->p.auto_blocks)
		l->bcount++;
	acc_reset(&l->blk);
	l->blk_dirty = 0;
	lane_select_auto(o, l);
}

/* A burst confirmed now began at `from`: blocks overlapping it are not rest. */
static void lane_invalidate_since(struct emg_onset *o, struct lane *l, uint64_t from)
{
	int changed = 0;

	l->blk_dirty = 1;
	for (unsigned i = 0; i < l->bcount; i++) {
		unsigned idx = (l->bhead + o->p.auto_blocks - 1 - i) % o->p.auto_blocks;
		struct block *bk = &l->blocks[idx];
		if (bk->start + o->block_n <= from)
			break;
		if (bk->valid) {
			bk->valid = 0;
			changed = 1;
		}
	}
	if (changed)
		lane_select_auto(o, l);
}

/* ---- creation -------------------------------------------------------- */

int emg_onset_new(struct emg_onset **out, const struct emg_onset_params *p, double fs,
		  unsigned nlanes)
{
	struct emg_onset_params def;
	struct emg_onset *o;
	int r;

	if (!out)
		return -EINVAL;
	if (!p) {
		emg_onset_params_default(&def);
		p = &def;
	}
	if (!(fs > 0) || nlanes == 0 || (unsigned)p->method > EMG_ONSET_BONATO ||
	    !(p->window_ms > 0) || !(p->k >= 0) || !(p->hold_ms >= 0) || !(p->offset_ms >= 0) ||
	    !(p->min_burst_ms >= 0) || !(p->auto_block_ms > 0) || p->auto_blocks == 0 ||
	    p->auto_blocks > 4096 || p->window_ms * fs > 1e8)
		return -EINVAL;
	if (p->method == EMG_ONSET_BONATO &&
	    (!(p->bonato_pfa > 0 && p->bonato_pfa < 1) || p->bonato_m == 0 || p->bonato_m > 64 ||
	     p->bonato_r0 == 0 || p->bonato_r0 > p->bonato_m))
		return -EINVAL;

	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->p = *p;
	o->fs = fs;
	o->nlanes = nlanes;
	o->W = ms_to_samples(p->window_ms, fs);
	if (o->W < 1)
		o->W = 1;
	o->W2 = SLOW_MULT * o->W;
	o->lookback2 = o->W2 / 2;
	o->confirm_n = ms_to_samples(p->hold_ms > p->min_burst_ms ? p->hold_ms : p->min_burst_ms, fs);
	if (o->confirm_n < 1)
		o->confirm_n = 1;
	o->min_burst_n = ms_to_samples(p->min_burst_ms, fs);
	o->slow_extent = o->W2 / 4 > o->min_burst_n ? o->W2 / 4 : o->min_burst_n;
	o->offset_n = ms_to_samples(p->offset_ms, fs);
	if (o->offset_n < 1)
		o->offset_n = 1;
	o->ga_cap = (double)o->W + o->confirm_n;
	o->block_n = ms_to_samples(p->auto_block_ms, fs);
	if (o->block_n < 8)
		o->block_n = 8;
	switch (p->method) {
	case EMG_ONSET_HODGES:
		o->lookback = o->W / 2;
		o->warmup = o->W;
		break;
	case EMG_ONSET_TKEO:
		o->lookback = o->W / 2 + 1;
		o->warmup = o->W + 2;
		break;
	case EMG_ONSET_BONATO:
		o->lookback = 2 * p->bonato_m;
		o->warmup = 2;
		o->zeta = -2.0 * log(p->bonato_pfa);
		o->m_mask = p->bonato_m == 64 ? ~(uint64_t)0 : (((uint64_t)1 << p->bonato_m) - 1);
		o->r0 = p->bonato_r0;
		break;
	}
	if (o->warmup < o->W2)
		o->warmup = o->W2; /* the slow RMS must have filled too */

	o->lanes = calloc(nlanes, sizeof(*o->lanes));
	o->blockmem = calloc((size_t)nlanes * p->auto_blocks, sizeof(*o->blockmem));
	o->cbuf = calloc((size_t)CHUNK * nlanes, sizeof(float));
	o->pbuf = calloc((size_t)CHUNK * nlanes, sizeof(float));
	o->scratch = calloc(p->auto_blocks, sizeof(double));
	if (!o->lanes || !o->blockmem || !o->cbuf || !o->pbuf || !o->scratch) {
		emg_onset_free(o);
		return -ENOMEM;
	}
	if ((p->method != EMG_ONSET_BONATO && (r = emg_env_new(&o->env, nlanes, o->W)) < 0) ||
	    (r = emg_env_new(&o->env2, nlanes, o->W2)) < 0) {
		emg_onset_free(o);
		return r;
	}
	for (unsigned i = 0; i < nlanes; i++) {
		o->lanes[i].blocks = o->blockmem + (size_t)i * p->auto_blocks;
		o->lanes[i].armed2 = 1;
	}
	*out = o;
	return 0;
}

void emg_onset_free(struct emg_onset *o)
{
	if (!o)
		return;
	emg_env_free(o->env);
	emg_env_free(o->env2);
	free(o->cbuf);
	free(o->pbuf);
	free(o->scratch);
	free(o->blockmem);
	free(o->lanes);
	free(o);
}

/* ---- the per-sample detector ----------------------------------------- */

static float burst_snr(const struct lane *l, double x2, double n)
{
	if (!(n > 0) || !(l->base.rms > 0) || !(x2 > 0))
		return 0.0f;
	return (float)(20.0 * log10(sqrt(x2 / n) / l->base.rms));
}

static void emit(struct emg_onset *o, unsigned lane, enum emg_onset_kind kind, uint64_t sample,
		 emg_onset_fn fn, void *ud)
{
	struct lane *l = &o->lanes[lane];
	struct emg_onset_event ev = {
		.lane = lane,
		.kind = kind,
		.sample = sample,
		.onset_sample = l->onset,
		.duration_s = kind == EMG_ONSET_OFF ? (double)(sample - l->onset) / o->fs : 0.0,
		.snr_db = l->snr_db,
	};

	if (fn)
		fn(ud, &ev);
}

/* Written with selects rather than branches: g hits 0 about every other
 * sample at rest, which no branch predictor likes. */
static inline void cusum_step(struct cusum *c, double z, double drift, double cap, uint64_t n)
{
	const uint64_t n1 = n + 1;
	double d = z - drift;
	double g = c->g + d;
	const int zero = g <= 0;
	double s = zero ? 0.0 : c->s + d;
	const int top = g >= cap;

	g = zero ? 0.0 : top ? cap : g;
	c->zero = zero ? n1 : c->zero;
	c->started = zero ? 0 : c->started ? c->started : g >= STEP_FRAC * cap ? n1 : 0;
	c->capped = zero ? 0 : c->capped ? c->capped : top ? n1 : 0;
	const int up = zero || s >= c->peak;
	c->peak = up ? s : c->peak;
	c->peak_at = up ? n1 : c->peak_at;
	c->g = g;
	c->s = s;
}

static inline void cusum_burst_begin(struct cusum *c, uint64_t n)
{
	c->b = 0;
	c->bpeak = 0;
	c->bpeak_at = n + 1;
}

static inline void cusum_burst_track(struct cusum *c, double z, double drift, uint64_t n)
{
	c->b += z - drift;
	const int up = c->b >= c->bpeak;
	c->bpeak = up ? c->b : c->bpeak;
	c->bpeak_at = up ? n + 1 : c->bpeak_at;
}

/*
 * Fast path: back-dated onset of the current on-run, or UINT64_MAX while
 * the raw power has not kept rising for min_burst since.  The envelope lags
 * by its group delay (lookback) for a rise slower than the window and ~0 for
 * a step; the strong CUSUM's climb to its ceiling, tau samples, tells which:
 * D = min(lookback, 2 tau).
 */
static inline uint64_t fast_onset(const struct emg_onset *o, const struct lane *l)
{
	uint64_t tau = l->ga.capped ? l->ga.capped - l->ga.started : UINT64_MAX;
	unsigned d = tau < o->lookback / 2 ? (unsigned)(2 * tau) : o->lookback;
	uint64_t at = back(l->run_start, d);

	return l->ga.peak_at >= at + o->min_burst_n ? at : UINT64_MAX;
}

/*
 * Slow path, once the weak CUSUM has kept rising for slow_extent (a blip
 * does not): a step from 1 to rho (in rest powers; rho = the run's mean
 * power) lifts P over its threshold 1 + e after W2 e / (rho - 1) samples, at
 * most the group delay W2/2 for a rise barely above threshold.  That
 * estimate is averaged with where the weak CUSUM last left 0 (within W2).
 */
static inline uint64_t slow_onset(const struct emg_onset *o, const struct lane *l)
{
	double e = (double)l->p_on * l->inv_var - 1.0;
	double rho = l->run2_x2 / (double)l->run2_len * l->inv_var;
	double d = (double)o->lookback2;
	uint64_t lo = back(l->run2_start, o->W2), z = l->gb.zero;

	if (!(l->gb.g > 0) || l->gb.peak_at < l->gb.zero + o->slow_extent)
		return UINT64_MAX;
	if (rho - 1.0 > e * (double)o->W2 / d)
		d = (double)o->W2 * e / (rho - 1.0);
	z = z < lo ? lo : z > l->run2_start ? l->run2_start : z;
	return (back(l->run2_start, (unsigned)d) + z) / 2;
}

/*
 * One sample n of one lane.  `on` is the method's decision (against th_on
 * unless active, th_off while active), `slow_on` the slow path's (p_on /
 * p_off likewise), `slow_low` whether P is below p_off; `on_first` is the
 * first sample an on-run starting here is attributed to, `off_first` the
 * same for an off-run.
 */
static inline void lane_step(struct emg_onset *o, unsigned lane, struct lane *l, uint64_t n,
			     float x, int on, int slow_on, int slow_low, uint64_t on_first,
			     uint64_t off_first, emg_onset_fn fn, void *ud)
{
	double x2 = (double)x * x;

	cusum_step(&l->ga, x2 * l->inv_var, GA_DRIFT, o->ga_cap, n);
	cusum_step(&l->gb, x2 * l->inv_var, GB_DRIFT, GB_CAP, n);
	if (slow_low)
		l->armed2 = 1;
	/* Power jumped >= 6-fold (the strong CUSUM rose to its ceiling in under
	 * cap/4 samples): the fast path's business - a burst it confirms, or a
	 * blip it rejects, which must not linger on in the slow window. */
	if (l->ga.g >= o->ga_cap && n + 1 - l->ga.zero <= o->ga_cap / 4)
		l->armed2 = 0;

	if (l->st != ST_ACTIVE) {
		uint64_t at = UINT64_MAX;
		double run_x2 = 0, run_n = 0;
		int weak = 0;

		if (on) {
			if (!l->run_len) {
				l->run_start = on_first;
				l->run_x2 = 0;
			}
			l->run_len++;
			l->run_x2 += x2;
		} else {
			l->run_len = 0;
		}
		if (slow_on && l->armed2) {
			if (!l->run2_len) {
				l->run2_start = n;
				l->run2_x2 = 0;
			}
			l->run2_len++;
			l->run2_x2 += x2;
		} else {
			l->run2_len = 0;
		}
		l->st = l->run_len || l->run2_len ? ST_PENDING : ST_IDLE;

		if (l->run_len >= o->confirm_n) {
			at = fast_onset(o, l);
			run_x2 = l->run_x2;
			run_n = l->run_len;
		}
		if (at == UINT64_MAX && l->run2_len >= o->confirm_n) {
			at = slow_onset(o, l);
			run_x2 = l->run2_x2;
			run_n = l->run2_len;
			weak = 1;
		}
		if (at == UINT64_MAX)
			return;
		l->st = ST_ACTIVE;
		l->weak = weak;
		l->onset = at > l->last_offset ? at : l->last_offset;
		l->burst_x2 = run_x2;
		l->burst_n = run_n;
		l->off_len = 0;
		cusum_burst_begin(&l->ga, n);
		cusum_burst_begin(&l->gb, n);
		l->snr_db = burst_snr(l, l->burst_x2, l->burst_n);
		lane_invalidate_since(o, l, l->onset);
		emit(o, lane, EMG_ONSET_ON, l->onset, fn, ud);
		return;
	}

	/* active */
	l->blk_dirty = 1;
	cusum_burst_track(&l->ga, x2 * l->inv_var, GA_DRIFT, n);
	cusum_burst_track(&l->gb, x2 * l->inv_var, GB_DRIFT, n);
	/* A weak burst - confirmed by the slow path, or too faint for the fast
	 * path to hold it steadily - lasts as long as either path sees it. */
	if (!l->weak && l->burst_x2 < WEAK_RHO * l->burst_n * l->base.var)
		l->weak = 1;
	if (l->weak) {
		on = on || slow_on;
		off_first = n;
	}
	if (!l->off_len) {
		if (on) {
			l->burst_x2 += x2;
			l->burst_n += 1;
			return;
		}
		l->off_first = off_first;
		l->off_x2 = 0;
		l->on_len = 0;
	}
	/* inside an off-run: on-blips shorter than a confirmation are noise */
	l->off_len++;
	l->off_x2 += x2;
	if (on) {
		if (++l->on_len >= o->confirm_n) {
			/* the dip was part of the burst */
			l->burst_x2 += l->off_x2;
			l->burst_n += l->off_len;
			l->off_len = 0;
		}
		return;
	}
	l->on_len = 0;
	if (l->off_len < o->offset_n)
		return;

	/* where the power last peaked, within the window before the off-run */
	uint64_t lo = back(l->off_first, l->weak ? o->W2 : o->W);
	uint64_t pk = l->weak ? l->gb.bpeak_at : l->ga.bpeak_at;
	uint64_t off = pk < lo ? lo : pk > l->off_first ? l->off_first : pk;
	if (off <= l->onset)
		off = l->onset + 1;
	l->st = ST_IDLE;
	l->run_len = l->run2_len = 0;
	l->armed2 = 0; /* the slow RMS still remembers the burst */
	l->snr_db = burst_snr(l, l->burst_x2, l->burst_n);
	l->last_offset = off;
	emit(o, lane, EMG_ONSET_OFF, off, fn, ud);
}

/* Sub-block and block bookkeeping after a frame that counted for statistics. */
static void frame_stats_done(struct emg_onset *o, uint64_t n)
{
	if (++o->sub_pos == o->W) {
		for (unsigned i = 0; i < o->nlanes; i++) {
			struct lane *l = &o->lanes[i];
			acc_add_subblock(&l->blk, l->sub_q / o->W);
			l->sub_q = 0;
		}
		o->sub_pos = 0;
	}
	if (++o->blk_pos == o->block_n) {
		for (unsigned i = 0; i < o->nlanes; i++)
			lane_block_end(o, &o->lanes[i], o->blk_start);
		o->blk_pos = 0;
		o->blk_start = n + 1;
	}
}

static void run_chunk(struct emg_onset *o, const float *x, unsigned nf, uint64_t first,
		      emg_onset_fn fn, void *ud)
{
	const unsigned nl = o->nlanes;
	const enum emg_onset_method method = o->p.method;
	float *c = o->cbuf, *pr = o->pbuf;

	/* conditioning */
	if (method == EMG_ONSET_TKEO) {
		for (unsigned i = 0; i < nl; i++) {
			struct lane *l = &o->lanes[i];
			float x1 = l->x1, x2 = l->x2;
			for (unsigned f = 0; f < nf; f++) {
				float x0 = x[(size_t)f * nl + i];
				float psi = x1 * x1 - x0 * x2;
				c[(size_t)f * nl + i] = sqrtf(fabsf(psi));
				x2 = x1;
				x1 = x0;
			}
			l->x1 = x1;
			l->x2 = x2;
		}
		emg_env_run(o->env, c, c, nf);
	} else if (method == EMG_ONSET_HODGES) {
		emg_env_run(o->env, x, c, nf);
	} else {
		memset(c, 0, sizeof(float) * nf * nl);
	}
	emg_env_run(o->env2, x, pr, nf);

	for (unsigned f = 0; f < nf; f++) {
		const uint64_t n = first + f;
		const int stats = o->seen + f >= o->warmup;
		const int pair_end = (n & 1) != 0; /* bonato pairs: (even, odd) sample indices */

		if (!stats)
			o->blk_start = n + 1;
		for (unsigned i = 0; i < nl; i++) {
			struct lane *l = &o->lanes[i];
			const float xv = x[(size_t)f * nl + i], cv = c[(size_t)f * nl + i];
			const float pv = pr[(size_t)f * nl + i] * pr[(size_t)f * nl + i];
			uint64_t on_first = n, off_first = n;
			int on;

			if (stats) {
				acc_add(&l->blk, cv, xv);
				if (o->resting)
					acc_add(&l->rest, cv, xv);
				l->sub_q += (double)xv * xv;
			}
			if (l->src == EMG_BASELINE_NONE) {
				l->xprev = xv;
				continue;
			}
			if (method == EMG_ONSET_BONATO) {
				if (pair_end) {
					int over = l->xprev * l->xprev + xv * xv > l->th_pair;
					l->nover += (unsigned)over - (unsigned)(l->mask >> (o->p.bonato_m - 1) & 1);
					l->mask = ((l->mask << 1) | (uint64_t)over) & o->m_mask;
					if (over)
						l->last_over = n + 1;
				}
				l->xprev = xv;
				/* the window's decision holds for both samples of its last pair */
				on = l->nover >= o->r0;
				if (on && l->st != ST_ACTIVE && !l->run_len) {
					/* first sample of the earliest exceeding pair in the window */
					unsigned age = 63u - (unsigned)__builtin_clzll(l->mask);
					uint64_t newest = (n & 1) ? n : n - 1;
					on_first = back(newest - 2 * (uint64_t)age, 1);
				}
				off_first = l->last_over < n ? l->last_over : n;
			} else {
				on = cv > (l->st == ST_ACTIVE ? l->th_off : l->th_on);
			}
			/* the slow path keeps a pending run (and a burst) while P > p_off */
			int slow_on = l->p_on > 0 &&
				      pv > (l->st == ST_ACTIVE || l->run2_len ? l->p_off : l->p_on);
			int slow_low = l->p_on > 0 && pv < l->p_off;
			lane_step(o, i, l, n, xv, on, slow_on, slow_low, on_first, off_first, fn, ud);
		}
		if (stats)
			frame_stats_done(o, n);
	}
}

void emg_onset_run(struct emg_onset *o, const float *x, unsigned nframes, uint64_t first_sample,
		   emg_onset_fn fn, void *ud)
{
	while (nframes) {
		unsigned nf = nframes < CHUNK ? nframes : CHUNK;
		run_chunk(o, x, nf, first_sample, fn, ud);
		o->seen += nf;
		first_sample += nf;
		x += (size_t)nf * o->nlanes;
		nframes -= nf;
	}
}

/* ---- queries and calibration ----------------------------------------- */

int emg_onset_active(const struct emg_onset *o, unsigned lane)
{
	return lane < o->nlanes && o->lanes[lane].st == ST_ACTIVE;
}

float emg_onset_snr_db(const struct emg_onset *o, unsigned lane)
{
	const struct lane *l;

	if (lane >= o->nlanes)
		return 0.0f;
	l = &o->lanes[lane];
	if (l->st == ST_ACTIVE)
		return burst_snr(l, l->burst_x2, l->burst_n);
	return l->snr_db;
}

enum emg_baseline_src emg_onset_baseline_src(const struct emg_onset *o, unsigned lane)
{
	return lane < o->nlanes ? o->lanes[lane].src : EMG_BASELINE_NONE;
}

void emg_onset_rest_begin(struct emg_onset *o)
{
	for (unsigned i = 0; i < o->nlanes; i++)
		acc_reset(&o->lanes[i].rest);
	o->resting = 1;
}

int emg_onset_rest_end(struct emg_onset *o, struct emg_baseline *out)
{
	struct emg_baseline b;

	if (!o->resting)
		return -ENODATA;
	o->resting = 0;
	/* at least one auto block's worth (and a few envelope windows) of rest */
	for (unsigned i = 0; i < o->nlanes; i++) {
		const struct acc *a = &o->lanes[i].rest;
		if (a->n < o->block_n || a->n < 4.0 * o->W || acc_baseline(a, o->p.method, &b) < 0)
			return -ENODATA;
	}
	for (unsigned i = 0; i < o->nlanes; i++) {
		struct lane *l = &o->lanes[i];
		acc_baseline(&l->rest, o->p.method, &b);
		l->s2_rest = acc_block_rsd(&l->rest);
		l->rv_rest = l->rest.nrv > 0 ? l->rest.rv / l->rest.nrv : 0.0;
		lane_install(o, l, &b, EMG_BASELINE_REST);
		if (out)
			out[i] = b;
	}
	return 0;
}

int emg_onset_set_baseline(struct emg_onset *o, unsigned lane, const struct emg_baseline *b)
{
	if (lane >= o->nlanes || !b || b->method != (int)o->p.method || !isfinite(b->mean) ||
	    !isfinite(b->sd) || b->sd < 0 || !isfinite(b->var) || !(b->var > 0) ||
	    !isfinite(b->rms) || b->rms < 0)
		return -EINVAL; /* var > 0: a flat-line "rest" is a disconnected electrode */
	o->lanes[lane].s2_rest = 0; /* spread unknown: learnt by the auto blocks */
	o->lanes[lane].rv_rest = 0;
	lane_install(o, &o->lanes[lane], b, EMG_BASELINE_REST);
	return 0;
}

int emg_onset_get_baseline(const struct emg_onset *o, unsigned lane, struct emg_baseline *b)
{
	if (lane >= o->nlanes)
		return -EINVAL;
	if (o->lanes[lane].src == EMG_BASELINE_NONE)
		return -ENODATA;
	if (b)
		*b = o->lanes[lane].base;
	return 0;
}

unsigned emg_onset_latency_samples(const struct emg_onset *o)
{
	return o->confirm_n;
}
