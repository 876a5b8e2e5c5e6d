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
 * the slow path confirmed lasts while either path sees it - except, for its
 * first W2, one that began on a QRS the ECG stage triggered on
 * (emg_onset_trigger): P then holds the QRS's own energy, and held such a
 * burst until a contraction 150 ms later joined it.  After any burst the
 * slow path re-arms only once P has dropped below its off level.
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
 * clean blocks within 15 % (variance: 30 %) of it.  On a lane where the
 * heart shows (emg_onset_beat), rest is the whole cardiac cycle, not the
 * quiet between two beats: the baseline is the quietest run of consecutive
 * blocks spanning CYCLE_RR mean RR intervals if that is louder (see
 * lane_cycle_baseline()).  A lane has no baseline,
 * and detects nothing, until its first block completes (W2 + one block
 * after the start).  A baseline installed with set_baseline carries no
 * slow-path spread: the one learnt from the auto blocks is used (it is a
 * property of the noise spectrum, not of its level).
 *
 * Layout and speed.  The per-sample work runs over lanes in structure-of-
 * arrays form (onset_kernel.h, built per ISA level, see simd.h): one vector
 * instruction advances 4-16 lanes.  Per sample and lane it updates the two
 * moving windows (double running sums over one ring of squares shared by
 * both: c's window is the newest W of the W2 the slow path keeps), both
 * CUSUMs, the slow path's arming and, for lanes inside a burst, the burst
 * tracking; it decides `on` and `slow_on` and settles every lane whose
 * state machine has nothing to do: idle and staying idle, or active and
 * still on.  Only lanes where something happens - an on-run pending, an
 * off-run, a confirmation - take the scalar state machine (lane_scalar), at
 * exactly that sample.  The block statistics are summed by a second, plain
 * vector pass over the chunk (chunks end at block boundaries), and the slow
 * path (baseline selection, quantiles) runs once per block and lane.
 * Events are collected per chunk and delivered in sample, then lane, order.
 * Float throughout, except the rest-calibration sums (double: they may run
 * for minutes).  The windows' running sums are compensated (Kahan): after a
 * burst or an electrode pop leaves a window, what remains is exact to float
 * precision of the small values, not of the large ones that left; and every
 * window length they are replaced by the sum of the current pass anyway.
 *
 * Everything is allocated in emg_onset_new(); the run path neither
 * allocates nor locks nor logs, and reports through the callback.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "changepoint.h"
#include "onset.h"
#include "simd.h"

#if EMG_SIMD_X86
#include <immintrin.h>
#endif

#define CHUNK 128       /* frames per pass (chunks also end at block boundaries) */
#define PADL 16         /* lane arrays are padded to a multiple of this (the widest vector) */

#define SLOW_MULT 6     /* slow window W2 = SLOW_MULT * W */
#define SLOW_K_EXTRA 1.0 /* slow path threshold: k + SLOW_K_EXTRA relative SDs */
#define GA_DRIFT 2.0f   /* CUSUM drifts, in units of the rest power: strong ... */
#define GB_DRIFT 1.3f   /* ... and weak power rises */
#define GB_CAP 25.0f    /* ceiling of the weak CUSUM */
#define WEAK_RHO 4.0    /* bursts under this power (in rest powers) are weak */
#define STEP_FRAC 0.05f /* the strong CUSUM's climb is timed from this fraction of its ceiling */
#define S2_ALPHA 0.0625 /* smoothing of the slow path's spread estimate, per block */
#define MID_ALPHA 0.125 /* ... and of its centre */

#define SLOW_MIN_BLOCKS 8 /* clean blocks before the slow path trusts its spread */

#define BEAT_PRE_MS 50.0  /* a heartbeat's QRS window: from this long before its trigger ... */
#define BEAT_POST_MS 120.0 /* ... to this long after it */
#define CYCLE_RR 1.25     /* a cardiac lane's baseline spans this many RR intervals (HRV margin) ... */
#define CYCLE_RR_MAX_S 1.5 /* ... of at most this (40 bpm: slower is not a resting heart) ... */
#define CYCLE_BEAT_MS 400.0 /* ... and may hold bursts no longer than a beat's, P wave to T wave */

#define REF_SUB_MS 1.0   /* refinement: power history resolution */
#define REF_BACK_MS 800.0 /* ... and how far back a change point is searched (offsets: all of it) */
#define REF_SPAN_MS 100.0 /* ... at most this much before the first estimate */
#define REF_SMOOTH 2     /* ... sub-blocks each side averaged before the fit */
#define REF_LR_MARGIN 4.0 /* ... a ramp must beat a step by this many residual variances */

#define FREQ_REST_MS 150.0  /* burst_freq(): the rest it measures a burst against */
#define FADE_TAIL 0.1    /* report gate: a burst followed by at most this amplitude has faded ... */
#define FADE_RING 0.2    /* ... and so has one followed by at most this, dying away: */
#define FADE_DECAY 0.8   /* each third of what follows at most this of the third before */
#define RISE_MULT 2.0    /* report gate: a dropped burst rising to this many times what followed its fade is a new one */

enum lane_state { ST_IDLE = 0, ST_ACTIVE = 2 }; /* an on-run pending is IDLE with run_len > 0 */

/* Hot `mode`: which half of the state machine the vector pass runs. */
enum lane_mode {
	M_IDLE = 0,   /* counting on-runs (both paths) towards a confirmation */
	M_ON = 1,     /* inside a burst: tracking it, counting off-runs towards an offset */
	M_NONE = 3,   /* no baseline yet: nothing to detect */
};

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

struct block {
	uint64_t start;  /* first sample */
	double key;      /* selection key: mean of c, or raw variance for bonato */
	struct emg_baseline b;
	double logp;     /* log of the block's raw power */
	double relvar;   /* relative variance of its W-sample sub-block powers */
	int valid;       /* rest: its statistics are usable and no burst overlapped it */
	int usable;      /* its statistics are usable (not a flat line) */
	int contraction; /* a burst longer than a beat's (CYCLE_BEAT_MS) overlapped it */
};

/* Per-lane state the scalar paths use (the hot per-sample state is in struct hot). */
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

	/* burst state machine (its run and off-run counters are hot) */
	enum lane_state st;
	uint64_t onset;       /* back-dated onset of the current/last burst */
	uint64_t last_offset; /* offset of the last burst (onsets never precede it) */
	int cblock;           /* a contraction ended in the block in progress */
	float snr_db;

	/* heartbeats: the last two QRS triggers on this lane, + 1 (0: none),
	 * and the mean RR interval (samples) when each was told */
	uint64_t beat[2];
	double beat_rr[2];
	uint64_t trig;        /* the last QRS trigger on this lane, on the rhythm or not, + 1 (0: none) */

	/* report gate: a confirmed onset waits here until its burst has lasted report_n */
	int weak_on;          /* the burst was weak when it was confirmed */
	int weak_off;         /* ... or when it ended (the gate judges its offset by it) */
	struct emg_onset_event pend;
	int pending;
	int muted;            /* the gate dropped this burst as faded: its offset goes too */
	uint64_t mute_end;    /* ... where it faded: a rise after it is a burst of its own */

	/* bonato */
	float xprev;
	uint64_t mask;        /* bit i: pair i pairs ago exceeded zeta */
	unsigned nover;       /* bits set in mask */
	uint64_t last_over;   /* first sample after the most recent exceeding pair */

	/* statistics: block powers and relative variances of a rest calibration */
	struct acc rest;
	struct block *blocks; /* ring of auto_blocks completed blocks */
	double *sorted;       /* log powers of the valid blocks, ascending */
	unsigned nsorted;
	unsigned bhead;       /* next slot to write */
	unsigned bcount;
};

/*
 * Hot per-lane state, one array per field over the padded lanes.  Sample
 * indices are int32 relative to emg_onset.ibase and store n + 1 like the
 * scalar code's uint64 (0 in started/capped: not yet).
 */
#define HOT_F32(X)                                                                               \
	X(th)    /* c threshold in force: th_on, th_off while active */                          \
	X(pth)   /* P threshold for slow_on: p_on, p_off while active or a slow run pends; +inf: off */ \
	X(plow)  /* P below this re-arms the slow path: p_off, -inf: off */                      \
	X(ivar)  /* 1 / baseline variance (0 without) */                                          \
	X(wkthr) /* WEAK_RHO * baseline variance */                                               \
	X(wmin)  /* burst length before it may turn weak: 0, or W2 for a burst begun on a QRS */  \
	X(bx2) X(bn) /* burst sum of x^2 (off-runs excluded) and its length */                   \
	X(ag) X(as) X(apk) /* strong CUSUM: g, uncapped sum since zero, its peak */               \
	X(bg) X(bs) X(bpk) /* weak CUSUM */                                                        \
	X(ab) X(abpk) X(bb) X(bbpk) /* uncapped sums since the burst began and their peaks */   \
	X(rx2) X(r2x2) /* sum of x^2 over the current on-run, fast and slow path */             \
	X(ox2)   /* sum of x^2 over the current off-run */                                        \
	X(pon) X(poff) /* p_on, p_off (+inf: slow path off) */                                    \
	X(t1) X(t2) /* tkeo: x[n-1], x[n-2] */                                                    \
	X(sh) X(s1) X(s2) X(x1) X(xx) X(sq) X(sp1) X(sp2) /* block: shift, sums, sub-block */     \
	X(rsh)   /* rest: shift */                                                                \
	X(csum) X(ccmp) X(cpass) /* c's window: running sum, its Kahan compensation, this pass */ \
	X(psum) X(pcmp) X(ppass) /* the same for P */
#define HOT_I32(X)                                                                               \
	X(mode) X(act) X(armed2) X(weak) X(dirty)                                                 \
	X(az) X(ast) X(acp) X(apka) /* strong CUSUM: zero, started, capped, peak_at */            \
	X(bz) X(bpka)               /* weak CUSUM: zero, peak_at */                               \
	X(abpka) X(bbpka)           /* burst peaks */                                             \
	X(rl) X(rs) X(r2l) X(r2s)   /* on-runs: length and first sample, fast and slow path */    \
	X(ol) X(onl) X(of)          /* off-run: length, on-samples inside it, first sample */   \
	X(gd)                       /* report gate: n + 1 of the sample it looks at the lane after (0: none) */
#define HOT_F64(X) X(rs1) X(rs2) X(rx1) X(rxx) /* rest sums */

struct hot {
#define F(n) float *n;
	HOT_F32(F)
#undef F
#define I(n) int32_t *n;
	HOT_I32(I)
#undef I
#define D(n) double *n;
	HOT_F64(D)
#undef D
	float *ring;  /* W2 x nlp squares of x (hodges: c's window is its newest W rows) */
	float *cring; /* tkeo: W x nlp |psi| */
	float *xb;    /* CHUNK x nlp input, zero-padded lanes */
	float *cb;    /* CHUNK x nlp conditioned c, for the statistics pass */
	int32_t *on;  /* bonato: the current frame's decisions */
};

/* Per frame of a chunk: what the global counters say. */
enum {
	FR_STATS = 1,      /* counts for the block statistics */
	FR_BLK_FIRST = 2,  /* ... as the block's first sample (sets the shift) */
	FR_SUB_END = 4,    /* ends a W-sample sub-block */
	FR_BLK_END = 8,    /* ends a block (always the chunk's last frame) */
	FR_REST = 16,      /* counts for a rest calibration */
	FR_REST_FIRST = 32,
	FR_CSYNC = 64,     /* c's window wraps after this frame: running sum := pass */
	FR_PSYNC = 128,    /* the same for P */
};

struct frame {
	uint32_t flags;
	uint32_t prow;   /* ring row this frame's square goes to (holds the one leaving P) */
	uint32_t crow;   /* row leaving c's window (hodges: in ring; tkeo: in cring) */
	float inv_c, inv_p; /* 1 / samples in each window so far */
};

struct ev {
	unsigned frame;
	unsigned gate; /* 1: a report gate's decision after the frame, 0: one of the frame's events */
	struct emg_onset_event e;
};

struct emg_onset {
	struct emg_onset_params p;
	double fs;
	unsigned nlanes;
	unsigned nlp;         /* lanes padded to PADL */
	unsigned W;           /* conditioning window, samples */
	unsigned W2;          /* slow window */
	unsigned lookback;    /* the conditioning's group delay: how far back a change may hide */
	unsigned lookback2;   /* the same for the slow path */
	unsigned confirm_n;   /* on-run length that confirms an onset */
	unsigned offset_n;    /* off-run length that confirms an offset */
	unsigned min_burst_n; /* shortest burst, samples */
	unsigned report_n;    /* a burst is reported once it has lasted this long, samples ... */
	unsigned report_start_n; /* ... or this long if it began in the start-up */
	unsigned cycle_beat_n; /* CYCLE_BEAT_MS in samples: longer bursts are contractions, not beats */
	uint64_t startup_n;   /* the start-up: the stream's first startup_n samples ... */
	uint64_t startup_end; /* ... up to this sample index */
	unsigned beat_pre, beat_post; /* QRS window around a heartbeat trigger, samples */
	unsigned slow_extent; /* how long the weak CUSUM must rise to confirm on the slow path */
	unsigned block_n;     /* auto block length */
	unsigned warmup;      /* samples before statistics are accumulated */
	unsigned r0;          /* bonato */
	uint64_t m_mask;      /* bonato window mask (m low bits) */
	double zeta;
	float ga_cap;         /* ceiling of the strong CUSUM */
	int32_t cap4;         /* a climb to the ceiling within this many samples is a jump */
	uint64_t seen;        /* samples fed so far */
	uint64_t blk_start;   /* first sample of the current block */
	unsigned blk_pos;     /* samples in the current block */
	unsigned sub_pos;     /* samples in the current sub-block */
	unsigned blk_sn;      /* sub-blocks completed in the current block */
	unsigned cpos, ppos;  /* window positions (c: 0..W-1, P: ring row 0..W2-1) */
	int resting;
	uint64_t rest_n;      /* samples in the rest calibration so far */
	uint64_t ibase;       /* hot sample indices are relative to this */
	struct lane *lanes;
	struct block *blockmem;
	double *sortmem;
	double *cyc;          /* scratch: prefix sums over a lane's blocks (lane_cycle_baseline) */
	struct hot h;
	struct frame fr[CHUNK];
	/* change-point refinement: per-lane history of D-sample powers */
	unsigned ref_d;       /* samples per history entry */
	unsigned ref_len;     /* entries searched back (<= ref_cap) */
	unsigned ref_span;    /* entries searched before the first estimate */
	unsigned ref_cap;     /* ring entries per lane, a power of two */
	unsigned ref_pos;     /* samples in the entry being summed */
	uint64_t ref_off;     /* sample index minus samples fed, this call (entries count fed samples) */
	uint64_t ref_sub;     /* index of the entry being summed */
	float *ref_acc;       /* nlp: that entry's running sum of x^2 */
	float *ref_ring;      /* ref_cap x nlp: completed entries, entry e at row e % ref_cap */
	float *ref_dacc;      /* nlp: the entry's running sum of (x - previous x)^2 ... */
	float *ref_dring;     /* ... and its completed entries, as ref_ring */
	float *ref_xprev;     /* nlp: the last sample fed */
	double *ref_u;        /* scratch: amplitudes of one window */
	double *ref_c;        /* scratch: their prefix sums (2 per entry) */
	struct ev *evs;       /* what the current chunk reports, in the order it was decided */
	unsigned nev, evcap;
	uint64_t chunk_first; /* the current chunk's first sample */
	uint64_t dropped;     /* bursts the report gate dropped */
	void (*kernel)(struct emg_onset *o, unsigned nf, uint64_t first);
	void (*stats)(struct emg_onset *o, unsigned nf);
	void (*feed)(struct emg_onset *o, unsigned nf); /* adds a chunk to the power history */
	void (*amp)(const double *raw, double *u, unsigned m, double var); /* ref_window's amplitudes */
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
	p->report_ms = 150;
	p->startup_s = 7;
	p->startup_report_ms = 500;
	p->startup_emg_hz = 70;
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

/*
 * Each lane keeps the log powers of its valid blocks sorted (l->sorted):
 * one insertion or removal per block end or invalidation instead of a sort
 * per block end, which with 40 blocks and 256 lanes cost more than the
 * per-sample work.
 */
static unsigned sorted_find(const double *v, unsigned n, double x)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void sorted_insert(struct lane *l, double x)
{
	unsigned k = sorted_find(l->sorted, l->nsorted, x);

	memmove(l->sorted + k + 1, l->sorted + k, (l->nsorted - k) * sizeof(double));
	l->sorted[k] = x;
	l->nsorted++;
}

static void sorted_remove(struct lane *l, double x)
{
	unsigned k = sorted_find(l->sorted, l->nsorted, x);

	if (k < l->nsorted && l->sorted[k] == x) {
		memmove(l->sorted + k, l->sorted + k + 1, (l->nsorted - k - 1) * sizeof(double));
		l->nsorted--;
	}
}

/* The q-quantile of sorted v[0..n-1] (n > 0), linearly interpolated. */
static double quantile(const double *v, unsigned n, double q)
{
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

/* ---- hot state ------------------------------------------------------- */

#define IDX_SPAN (1 << 29) /* relative sample indices stay within +-IDX_SPAN */

static inline uint64_t idx_abs(const struct emg_onset *o, int32_t r)
{
	int64_t v = (int64_t)o->ibase + r;

	return v > 0 ? (uint64_t)v : 0;
}

static inline int32_t idx_rel(const struct emg_onset *o, uint64_t a)
{
	int64_t v = (int64_t)a - (int64_t)o->ibase;

	return (int32_t)(v < -IDX_SPAN ? -IDX_SPAN : v > IDX_SPAN ? IDX_SPAN : v);
}

/* Keep first + 1 .. first + CHUNK representable; indices long past are clamped. */
static void idx_rebase(struct emg_onset *o, uint64_t first)
{
	struct hot *h = &o->h;
	int32_t *const plain[] = { h->az, h->apka, h->bz, h->bpka, h->abpka, h->bbpka,
				   h->rs, h->r2s, h->of };
	int32_t *const flagged[] = { h->ast, h->acp, h->gd }; /* 0: not set */
	uint64_t nb;
	int64_t delta;

	if (first + 1 >= o->ibase && first + 1 + CHUNK - o->ibase < IDX_SPAN)
		return;
	nb = first + 1 > IDX_SPAN / 2 ? first + 1 - IDX_SPAN / 2 : 0;
	delta = (int64_t)nb - (int64_t)o->ibase;
	for (unsigned k = 0; k < sizeof(plain) / sizeof(plain[0]); k++)
		for (unsigned i = 0; i < o->nlp; i++) {
			int64_t v = plain[k][i] - delta;
			plain[k][i] = (int32_t)(v < -IDX_SPAN ? -IDX_SPAN : v > IDX_SPAN ? IDX_SPAN : v);
		}
	for (unsigned k = 0; k < sizeof(flagged) / sizeof(flagged[0]); k++)
		for (unsigned i = 0; i < o->nlp; i++) {
			int64_t v = flagged[k][i] - delta;
			if (!flagged[k][i])
				continue;
			v = v < -IDX_SPAN ? -IDX_SPAN : v > IDX_SPAN ? IDX_SPAN : v;
			flagged[k][i] = v ? (int32_t)v : -1;
		}
	o->ibase = nb;
}

/* CUSUMs as they were created: a lane's start while it had no baseline. */
static void hot_cusum_reset(struct emg_onset *o, unsigned i)
{
	struct hot *h = &o->h;
	int32_t zero = idx_rel(o, 0);

	h->ag[i] = h->as[i] = h->apk[i] = 0;
	h->bg[i] = h->bs[i] = h->bpk[i] = 0;
	h->az[i] = h->apka[i] = h->bz[i] = h->bpka[i] = zero;
	h->ast[i] = h->acp[i] = 0;
}

/* Mirror a lane's state machine and thresholds into the hot arrays. */
static void lane_sync(struct emg_onset *o, unsigned i)
{
	const struct lane *l = &o->lanes[i];
	struct hot *h = &o->h;
	const int active = l->st == ST_ACTIVE, slow = l->p_on > 0;

	h->th[i] = active ? l->th_off : l->th_on;
	h->pon[i] = slow ? l->p_on : INFINITY;
	h->poff[i] = slow ? l->p_off : INFINITY;
	h->pth[i] = active || h->r2l[i] ? h->poff[i] : h->pon[i];
	h->plow[i] = slow ? l->p_off : -INFINITY;
	h->ivar[i] = l->inv_var;
	h->wkthr[i] = (float)(WEAK_RHO * l->base.var);
	h->act[i] = active ? -1 : 0;
	h->mode[i] = l->src == EMG_BASELINE_NONE ? M_NONE : active ? M_ON : M_IDLE;
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
		lane_sync(o, (unsigned)(l - o->lanes));
		return;
	}
	/* the blocks' typical power: the quietest pool sits below it */
	if (!rest && l->src == EMG_BASELINE_AUTO && l->p_mid_auto > mid)
		mid = l->p_mid_auto;
	l->p_on = (float)(mid * (1.0 + k2 * s2));
	l->p_off = (float)(mid * (1.0 + (k2 - 1.0) * s2));
	lane_sync(o, (unsigned)(l - o->lanes));
}

static void lane_install(struct emg_onset *o, struct lane *l, const struct emg_baseline *b,
			 enum emg_baseline_src src)
{
	double sd = b->sd;

	/* A zero SD (quantised or synthetic input) would turn every sample on. */
	if (sd < 1e-3 * fabs(b->mean))
		sd = 1e-3 * fabs(b->mean);
	if (l->src == EMG_BASELINE_NONE)
		hot_cusum_reset(o, (unsigned)(l - o->lanes));
	l->base = *b;
	l->src = src;
	l->th_on = (float)(b->mean + o->p.k * sd);
	l->th_off = (float)(b->mean + (o->p.k > 1 ? o->p.k - 1 : 0) * sd);
	l->th_pair = (float)(o->zeta * b->var);
	l->inv_var = b->var > 0 ? (float)(1.0 / b->var) : 0.0f;
	lane_slow_thresholds(o, l); /* ends with lane_sync() */
}

/*
 * The baseline of a lane where the heart shows, into *b if it is louder than
 * *b (the quietest blocks' pool); 1 if it was.  A QRS every 0.4-1.5 s makes
 * rest cyclostationary: the quietest 250 ms block lies between two beats,
 * every beat rises above it and starts a burst, and the blocks those bursts
 * overlap drop out of the choice, so the heart never enters the baseline.
 * On a real tibialis anterior recording at 250 Hz whose P waves and QRS
 * stand out of the rest EMG (tests/data/emggo) that was 52 false onsets per
 * minute of rest, and 10 of its 56 contractions lost in bursts begun on a
 * beat.  The baseline is therefore taken over whole cycles: the
 * quietest run of consecutive blocks spanning CYCLE_RR mean RR intervals
 * (every run holds at least one beat whatever its phase), like a rest
 * calibration, which holds beats too.  A run may hold blocks that a beat's
 * burst made invalid, but at least one valid block and no block of a burst
 * longer than a beat's or of the burst still going on (a contraction is not
 * rest, not even next to it).  The lane counts as cardiac while a beat it was
 * told lies within the ring's span before the newest block's end (beats told
 * since, when a confirmation re-chooses mid-block, wait for the next block
 * end; beats told inside a contraction are not kept, emg_onset_beat()).
 * Only the ECG stage tells beats: without it (`ecg = off`) nothing changes.
 */
/* Index in l->blocks of the i-th newest complete block (0: the newest; i < l->bcount). */
static inline unsigned block_back(const struct emg_onset *o, const struct lane *l, unsigned i)
{
	return (l->bhead + o->p.auto_blocks - 1 - i) % o->p.auto_blocks;
}

/* A burst longer than a beat's, from `from` on, has ended: mark the blocks it overlapped
 * (and the one in progress) as a contraction's. */
static void lane_mark_contraction(struct emg_onset *o, struct lane *l, uint64_t from)
{
	for (unsigned i = 0; i < l->bcount; i++) {
		struct block *bk = &l->blocks[block_back(o, l, i)];
		if (bk->start + o->block_n <= from)
			break;
		bk->contraction = 1;
	}
	l->cblock = 1;
}

/* Prefix sums lane_cycle_baseline() keeps per block, in order: */
enum { CYC_MEAN, CYC_M2, CYC_VAR, CYC_R2, CYC_BAD, CYC_VALID, CYC_LONG, CYC_SUMS };

static int lane_cycle_baseline(const struct emg_onset *o, const struct lane *l, struct emg_baseline *b)
{
	const unsigned nb = o->p.auto_blocks, n = l->bcount;
	const uint64_t end = n ? l->blocks[block_back(o, l, 0)].start + o->block_n : 0;
	const uint64_t span = (uint64_t)o->block_n * nb;
	double rr = 0, best = INFINITY, *const c = o->cyc;
	struct emg_baseline w = *b;
	unsigned m, now = 0;

	for (int k = 1; k >= 0 && !(rr > 0); k--)
		if (l->beat[k] && l->beat[k] <= end && l->beat[k] + span > end)
			rr = l->beat_rr[k];
	if (!(rr > 0) || rr > CYCLE_RR_MAX_S * o->fs || n < 2)
		return 0;
	m = (unsigned)ceil(CYCLE_RR * rr / o->block_n);
	if (m < 2)
		return 0;
	if (m > n)
		m = n;
	/* prefix sums over the blocks, oldest first (c[k * CYC_SUMS + q]: blocks
	 * before k), so each run of m is O(1): O(blocks) per lane and block end
	 * instead of O(blocks x m), which on 64 lanes cost ~0.3 ns per sample */
	for (unsigned q = 0; q < CYC_SUMS; q++)
		c[q] = 0;
	/* the newest blocks the burst still going on has made invalid */
	while (l->st == ST_ACTIVE && now < n && !l->blocks[block_back(o, l, now)].valid)
		now++;
	for (unsigned j = 0; j < n; j++) {
		const struct block *bk = &l->blocks[block_back(o, l, n - 1 - j)];
		const double *p = c + (size_t)j * CYC_SUMS;
		double *x = c + (size_t)(j + 1) * CYC_SUMS;

		x[CYC_MEAN] = p[CYC_MEAN] + (bk->usable ? bk->b.mean : 0);
		x[CYC_M2] = p[CYC_M2] + (bk->usable ? bk->b.sd * bk->b.sd + bk->b.mean * bk->b.mean : 0);
		x[CYC_VAR] = p[CYC_VAR] + (bk->usable ? bk->b.var : 0);
		x[CYC_R2] = p[CYC_R2] + (bk->usable ? bk->b.rms * bk->b.rms : 0);
		x[CYC_BAD] = p[CYC_BAD] + !bk->usable;
		x[CYC_VALID] = p[CYC_VALID] + (bk->valid != 0);
		/* A window holding a contraction's first blocks (or its last) next
		 * to rest is no cardiac cycle, though its invalid blocks are few.
		 * With rests of 0.25-0.6 s between contractions every window of a
		 * cycle's length held some (only more invalid blocks in a row
		 * inside the window than a beat's burst can make counted - which
		 * a window shorter than that never holds), the baseline rose to the
		 * contractions' level and the lane went blind: 3 of 5 contractions
		 * lost in a stream at 10 dB (bench_onset rests).  So a window may
		 * hold no block of a burst longer than a beat's, nor of the burst
		 * still going on, which may be one. */
		x[CYC_LONG] = p[CYC_LONG] + (bk->contraction || j + now >= n);
	}
	for (unsigned s0 = 0; s0 + m <= n; s0++) {
		const double *a = c + (size_t)s0 * CYC_SUMS, *z = c + (size_t)(s0 + m) * CYC_SUMS;
		const double mean = (z[CYC_MEAN] - a[CYC_MEAN]) / m, var = (z[CYC_VAR] - a[CYC_VAR]) / m;
		/* the quietest by the method's key, as for single blocks */
		const double key = o->p.method == EMG_ONSET_BONATO ? var : mean;

		if (z[CYC_BAD] > a[CYC_BAD] || z[CYC_VALID] == a[CYC_VALID] || z[CYC_LONG] > a[CYC_LONG] ||
		    !(key < best))
			continue;
		best = key;
		w.mean = mean;
		w.sd = sqrt(fmax((z[CYC_M2] - a[CYC_M2]) / m - mean * mean, 0));
		w.var = var;
		w.rms = sqrt((z[CYC_R2] - a[CYC_R2]) / m);
	}
	/* bonato compares raw variances, the envelope methods the mean of c */
	if (best == INFINITY || (o->p.method == EMG_ONSET_BONATO ? w.var <= b->var : w.mean <= b->mean))
		return 0;
	*b = w;
	return 1;
}

/*
 * Re-choose the AUTO baseline from the ring of blocks, and learn the slow
 * path's spread (even when a rest baseline is installed).
 */
static void lane_select_auto(struct emg_onset *o, struct lane *l)
{
	const struct block *best = NULL;
	const unsigned nv = l->nsorted; /* valid blocks */
	double rv = 0, nr = 0;

	for (unsigned i = 0; i < l->bcount; i++) {
		const struct block *bk = &l->blocks[i];
		if (!bk->valid)
			continue;
		if (!best || bk->key < best->key)
			best = bk;
		if (bk->relvar > 0) {
			rv += bk->relvar;
			nr += 1;
		}
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
		double q10 = quantile(l->sorted, nv, 0.10), q35 = quantile(l->sorted, nv, 0.35);
		double s2 = (q35 - q10) / (1.2816 - 0.3853);
		double mid = exp(q35 + 0.3853 * s2);
		if (l->s2_auto > 0) {
			/* a property of the noise spectrum: smooth out the estimator's noise */
			s2 = l->s2_auto + (s2 - l->s2_auto) * S2_ALPHA;
			mid = l->p_mid_auto + (mid - l->p_mid_auto) * MID_ALPHA;
		}
		l->s2_auto = s2;
		l->p_mid_auto = mid;
		/* within-block spread: scale-free, so active blocks hardly bias it */
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
	lane_cycle_baseline(o, l, &b);
	lane_install(o, l, &b, EMG_BASELINE_AUTO);
}

/* Lane i's block [start, start + block_n) is complete: file it, re-choose the baseline. */
static void lane_block_end(struct emg_onset *o, unsigned i, uint64_t start, unsigned sn)
{
	struct lane *l = &o->lanes[i];
	struct hot *h = &o->h;
	struct block *bk = &l->blocks[l->bhead];
	const struct acc a = {
		.n = o->block_n, .shift = h->sh[i], .s1 = h->s1[i], .s2 = h->s2[i],
		.x1 = h->x1[i], .x2 = h->xx[i], .sn = sn, .sp1 = h->sp1[i], .sp2 = h->sp2[i],
	};

	if (l->bcount == o->p.auto_blocks && bk->valid)
		sorted_remove(l, bk->logp); /* the oldest block leaves the ring */
	bk->start = start;
	bk->usable = acc_baseline(&a, o->p.method, &bk->b) == 0;
	bk->valid = bk->usable && !h->dirty[i];
	bk->contraction = l->cblock;
	l->cblock = 0;
	bk->key = o->p.method == EMG_ONSET_BONATO ? bk->b.var : bk->b.mean;
	bk->logp = bk->valid ? log(bk->b.var) : 0.0;
	if (bk->valid)
		sorted_insert(l, bk->logp);
	bk->relvar = acc_sub_relvar(&a);
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
	h->s1[i] = h->s2[i] = h->x1[i] = h->xx[i] = h->sp1[i] = h->sp2[i] = 0; /* sq runs on */
	h->dirty[i] = 0;
	lane_select_auto(o, l);
}
/* A burst confirmed now began at `from`: blocks overlapping it are not rest. */
static void lane_invalidate_since(struct emg_onset *o, struct lane *l, uint64_t from)
{
	int changed = 0;

	o->h.dirty[l - o->lanes] = 1;
	for (unsigned i = 0; i < l->bcount; i++) {
		struct block *bk = &l->blocks[block_back(o, l, i)];
		if (bk->start + o->block_n <= from)
			break;
		if (bk->valid) {
			bk->valid = 0;
			sorted_remove(l, bk->logp);
			changed = 1;
		}
	}
	if (changed)
		lane_select_auto(o, l);
}

/* ---- creation -------------------------------------------------------- */

static void pick_kernels(struct emg_onset *o);

static void *zalloc(size_t n)
{
	void *p;

	n = (n + 63) / 64 * 64;
	p = aligned_alloc(64, n ? n : 64);
	if (p)
		memset(p, 0, n ? n : 64);
	return p;
}

/* 1 if p describes a bank emg_onset_new() can build at fs with nlanes. */
static int params_valid(const struct emg_onset_params *p, double fs, unsigned nlanes)
{
	if (!(fs > 0) || nlanes == 0 || (unsigned)p->method > EMG_ONSET_BONATO ||
	    !(p->window_ms > 0) || !(p->k >= 0) || !(p->hold_ms >= 0) || !(p->offset_ms >= 0) ||
	    !(p->min_burst_ms >= 0) || !(p->report_ms >= 0) || !(p->startup_s >= 0) ||
	    !(p->startup_report_ms >= 0) || !(p->startup_emg_hz >= 0) || p->startup_s > 86400 ||
	    !(p->auto_block_ms > 0) || p->auto_blocks == 0 || p->auto_blocks > 4096 ||
	    p->window_ms * fs > 1e8)
		return 0;
	return p->method != EMG_ONSET_BONATO ||
	       (p->bonato_pfa > 0 && p->bonato_pfa < 1 && p->bonato_m > 0 && p->bonato_m <= 64 &&
		p->bonato_r0 > 0 && p->bonato_r0 <= p->bonato_m);
}

/* Window, confirmation, gate and block lengths in samples, per method. */
static void derive_sizes(struct emg_onset *o)
{
	const struct emg_onset_params *p = &o->p;
	const double fs = o->fs;

	o->W = ms_to_samples(p->window_ms, fs);
	if (o->W < 1)
		o->W = 1;
	o->W2 = SLOW_MULT * o->W;
	o->lookback2 = o->W2 / 2;
	o->confirm_n = ms_to_samples(p->hold_ms > p->min_burst_ms ? p->hold_ms : p->min_burst_ms, fs);
	if (o->confirm_n < 1)
		o->confirm_n = 1;
	o->min_burst_n = ms_to_samples(p->min_burst_ms, fs);
	o->report_n = ms_to_samples(p->report_ms, fs);
	o->cycle_beat_n = ms_to_samples(CYCLE_BEAT_MS, fs);
	o->startup_n = (uint64_t)llround(p->startup_s * fs);
	o->report_start_n = ms_to_samples(p->startup_report_ms, fs);
	if (o->report_start_n < o->report_n)
		o->report_start_n = o->report_n;
	o->slow_extent = o->W2 / 4 > o->min_burst_n ? o->W2 / 4 : o->min_burst_n;
	o->offset_n = ms_to_samples(p->offset_ms, fs);
	if (o->offset_n < 1)
		o->offset_n = 1;
	o->ga_cap = (float)o->W + (float)o->confirm_n;
	o->cap4 = (int32_t)((o->W + o->confirm_n) / 4);
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
	o->beat_pre = ms_to_samples(BEAT_PRE_MS, fs);
	o->beat_post = ms_to_samples(BEAT_POST_MS, fs);
	o->ref_d = ms_to_samples(REF_SUB_MS, fs);
	if (o->ref_d < 1)
		o->ref_d = 1;
	o->ref_len = ms_to_samples(REF_BACK_MS, fs) / o->ref_d;
	o->ref_span = ms_to_samples(REF_SPAN_MS, fs) / o->ref_d;
	/* Room for the longest window and for what ref_feed() adds ahead of it:
	 * a whole chunk is fed before its frames are decided, so a fit at the
	 * chunk's first frame reaches up to CHUNK samples of entries behind the
	 * newest.  Sized for the window alone, the oldest few entries of a full
	 * window could already hold newer ones at 250 and 500 Hz (at 1-10 kHz
	 * the power-of-two rounding left room; the size there is unchanged). */
	for (o->ref_cap = 16; o->ref_cap < o->ref_len + CHUNK / o->ref_d + 2 * REF_SMOOTH + 2;
	     o->ref_cap *= 2)
		;
}

/* Every buffer of a bank whose sizes are derived; 0 if one could not be allocated. */
static int alloc_buffers(struct emg_onset *o)
{
	struct hot *h = &o->h;
	const unsigned nlanes = o->nlanes, nb = o->p.auto_blocks;
	const int tkeo = o->p.method == EMG_ONSET_TKEO;
	/* Consecutive events of a lane are at least min(confirm_n, offset_n) samples apart. */
	const unsigned gap = o->confirm_n < o->offset_n ? o->confirm_n : o->offset_n;

	/* twice the events: an offset may release its pending onset with it */
	o->evcap = nlanes * 2 * (2 + CHUNK / gap);
#define F(n) h->n = zalloc(o->nlp * sizeof(float));
	HOT_F32(F)
#undef F
#define I(n) h->n = zalloc(o->nlp * sizeof(int32_t));
	HOT_I32(I)
#undef I
#define D(n) h->n = zalloc(o->nlp * sizeof(double));
	HOT_F64(D)
#undef D
	h->ring = zalloc((size_t)o->W2 * o->nlp * sizeof(float));
	if (tkeo)
		h->cring = zalloc((size_t)o->W * o->nlp * sizeof(float));
	h->xb = zalloc((size_t)CHUNK * o->nlp * sizeof(float));
	h->cb = zalloc((size_t)CHUNK * o->nlp * sizeof(float));
	h->on = zalloc(o->nlp * sizeof(int32_t));
	o->ref_acc = zalloc(o->nlp * sizeof(float));
	o->ref_ring = zalloc((size_t)o->ref_cap * o->nlp * sizeof(float));
	o->ref_dacc = zalloc(o->nlp * sizeof(float));
	o->ref_dring = zalloc((size_t)o->ref_cap * o->nlp * sizeof(float));
	o->ref_xprev = zalloc(o->nlp * sizeof(float));
	o->ref_u = zalloc(o->ref_cap * sizeof(double));
	o->ref_c = zalloc(EMG_CP_SCRATCH(o->ref_cap) * sizeof(double));
	o->lanes = calloc(nlanes, sizeof(*o->lanes));
	o->blockmem = calloc((size_t)nlanes * nb, sizeof(*o->blockmem));
	o->sortmem = calloc((size_t)nlanes * nb, sizeof(double));
	o->cyc = calloc((size_t)CYC_SUMS * (nb + 1), sizeof(double));
	o->evs = calloc(o->evcap, sizeof(*o->evs));
	int ok = o->lanes && o->blockmem && o->sortmem && o->cyc && o->evs && h->ring && h->xb && h->cb &&
		 o->ref_acc && o->ref_ring && o->ref_dacc && o->ref_dring && o->ref_xprev && o->ref_u &&
		 o->ref_c && h->on && (!tkeo || h->cring);
#define CHK(n) ok = ok && h->n;
	HOT_F32(CHK) HOT_I32(CHK) HOT_F64(CHK)
#undef CHK
	return ok;
}

int emg_onset_new(struct emg_onset **out, const struct emg_onset_params *p, double fs,
		  unsigned nlanes)
{
	struct emg_onset_params def;
	struct emg_onset *o;

	if (!out)
		return -EINVAL;
	if (!p) {
		emg_onset_params_default(&def);
		p = &def;
	}
	if (!params_valid(p, fs, nlanes))
		return -EINVAL;
	o = zalloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->p = *p;
	o->fs = fs;
	o->nlanes = nlanes;
	o->nlp = (nlanes + PADL - 1) / PADL * PADL;
	derive_sizes(o);
	if ((size_t)o->W2 * o->nlp > ((size_t)1 << 31) / sizeof(float)) {
		free(o);
		return -EINVAL;
	}
	if (!alloc_buffers(o)) {
		emg_onset_free(o);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nlanes; i++) {
		o->lanes[i].blocks = o->blockmem + (size_t)i * p->auto_blocks;
		o->lanes[i].sorted = o->sortmem + (size_t)i * p->auto_blocks;
		o->h.armed2[i] = -1;
		lane_sync(o, i);
	}
	for (unsigned i = nlanes; i < o->nlp; i++)
		o->h.mode[i] = M_NONE; /* padding */
	pick_kernels(o);
	*out = o;
	return 0;
}

void emg_onset_free(struct emg_onset *o)
{
	struct hot *h;

	if (!o)
		return;
	h = &o->h;
#define FR(n) free(h->n);
	HOT_F32(FR) HOT_I32(FR) HOT_F64(FR)
#undef FR
	free(h->ring);
	free(h->cring);
	free(h->xb);
	free(h->cb);
	free(h->on);
	free(o->evs);
	free(o->ref_acc);
	free(o->ref_ring);
	free(o->ref_dacc);
	free(o->ref_dring);
	free(o->ref_xprev);
	free(o->ref_u);
	free(o->ref_c);
	free(o->sortmem);
	free(o->cyc);
	free(o->blockmem);
	free(o->lanes);
	free(o);
}

/* ---- the per-lane state machine --------------------------------------- */

static float burst_snr(const struct lane *l, double x2, double n)
{
	if (!(n > 0) || !(l->base.rms > 0) || !(x2 > 0))
		return 0.0f;
	return (float)(20.0 * log10(sqrt(x2 / n) / l->base.rms));
}

/* Queue event e for delivery after the chunk, found at frame f (gate: decided by the report gate after it). */
static void queue(struct emg_onset *o, unsigned f, unsigned gate, const struct emg_onset_event *e)
{
	if (o->nev == o->evcap)
		return; /* cannot happen: evcap bounds what one chunk reports */
	o->evs[o->nev++] = (struct ev){ .frame = f, .gate = gate, .e = *e };
}

static void gate_event(struct emg_onset *o, unsigned f, const struct emg_onset_event *e);

/* Lane i's detector found an event at frame f of the chunk: through the report gate. */
static void emit(struct emg_onset *o, unsigned i, unsigned f, enum emg_onset_kind kind,
		 uint64_t sample)
{
	const struct lane *l = &o->lanes[i];
	const struct emg_onset_event e = {
		.lane = i,
		.kind = kind,
		.sample = sample,
		.onset_sample = l->onset,
		.duration_s = kind == EMG_ONSET_OFF ? (double)(sample - l->onset) / o->fs : 0.0,
		.snr_db = l->snr_db,
	};

	gate_event(o, f, &e);
}

/*
 * Fast path: back-dated onset of the current on-run, or UINT64_MAX while
 * the raw power has not kept rising for min_burst since.  The envelope lags
 * by its group delay (lookback) for a rise slower than the window and ~0 for
 * a step; the strong CUSUM's climb to its ceiling, tau samples, tells which:
 * D = min(lookback, 2 tau).
 */
static inline uint64_t fast_onset(const struct emg_onset *o, unsigned i)
{
	const struct hot *h = &o->h;
	uint64_t tau = h->acp[i] ? (uint64_t)((int64_t)h->acp[i] - h->ast[i]) : UINT64_MAX;
	unsigned d = tau < o->lookback / 2 ? (unsigned)(2 * tau) : o->lookback;
	uint64_t at = back(idx_abs(o, h->rs[i]), d);

	return idx_abs(o, h->apka[i]) >= at + o->min_burst_n ? at : UINT64_MAX;
}

/*
 * Energy check of a fast-path run: its mean power, in rest powers, must
 * exceed 1 + (k + 1) relative SDs of the mean power of that many rest samples
 * (one more than the envelope threshold: the run is short, its power heavy-tailed).
 * Bonato's pair test (one pair in m over a 5 % level) and the TKEO's spiky
 * operator hold "on" through runs of plain noise; the k-sigma energy test is
 * what the Hodges threshold already implies, so all methods share it.  The
 * spread comes from the W-sample powers at rest (coloured noise: more than
 * the 2/W of white noise), scaled to the run's length.
 */
static int run_energetic(const struct emg_onset *o, const struct lane *l, double x2, double n)
{
	double rv = l->src == EMG_BASELINE_REST && l->rv_rest > 0 ? l->rv_rest : l->rv_auto;

	if (!(rv > 0))
		rv = 2.0 / o->W;
	if (!(n > 0) || !(l->inv_var > 0))
		return 1;
	return x2 / n * l->inv_var > 1.0 + (o->p.k + 1.0) * sqrt(rv * o->W / n);
}

/*
 * Slow path, once the weak CUSUM has kept rising for slow_extent (a blip
 * does not): a step from 1 to rho (in rest powers; rho = the run's mean
 * power) lifts P over its threshold 1 + e after W2 e / (rho - 1) samples, at
 * most the group delay W2/2 for a rise barely above threshold.  That
 * estimate is averaged with where the weak CUSUM last left 0 (within W2).
 */
static inline uint64_t slow_onset(const struct emg_onset *o, unsigned i)
{
	const struct lane *l = &o->lanes[i];
	const struct hot *h = &o->h;
	double e = (double)l->p_on * l->inv_var - 1.0;
	const uint64_t start = idx_abs(o, h->r2s[i]);
	double rho = (double)h->r2x2[i] / (double)h->r2l[i] * l->inv_var;
	double d = (double)o->lookback2;
	uint64_t lo = back(start, o->W2), z = idx_abs(o, h->bz[i]);

	if (!(h->bg[i] > 0) || idx_abs(o, h->bpka[i]) < z + o->slow_extent)
		return UINT64_MAX;
	if (rho - 1.0 > e * (double)o->W2 / d)
		d = (double)o->W2 * e / (rho - 1.0);
	z = z < lo ? lo : z > start ? start : z;
	return (back(start, (unsigned)d) + z) / 2;
}

/* ---- change-point refinement ------------------------------------------ */

/*
 * The detection decisions above lag a change by their windows, and more so
 * on a slow recruitment ramp, where the envelope crosses mean + k SD only
 * once the amplitude has grown well above the noise.  Once a burst is
 * confirmed its onset is therefore re-located in the power history: u[0..m)
 * are amplitude estimates sqrt(max(0, P - var)) of consecutive history
 * entries (P: mean x^2 of an entry, smoothed over +-REF_SMOOTH entries; var:
 * the baseline variance), oldest first, and emg_cp_fit() (changepoint.h)
 * finds where they leave their rest level: a step, or a linear amplitude
 * ramp - what motor-unit recruitment under a rising force looks like -
 * extrapolated back to where it left zero, below the noise, where no
 * threshold can see it.  So the estimate is not biased late by how slowly
 * the muscle switched on.  Offsets use the same fit on the time-reversed
 * history.  A step (a ramp within the smoothing) keeps the CUSUM-based
 * estimate, which is exact to a sample or two for steps, and so do bursts
 * only the slow path saw: at ~0 dB the history is too noisy to fit.
 */

/* History entry (fed-sample based) that holds sample n of the current call. */
static inline uint64_t ref_entry(const struct emg_onset *o, uint64_t n)
{
	return (n - o->ref_off) / o->ref_d;
}

/*
 * Lane i's amplitude estimates of history entries [e0, e1) into o->ref_u,
 * in time order (reverse: newest first).  Returns the count.
 */
static unsigned ref_window(struct emg_onset *o, unsigned i, uint64_t e0, uint64_t e1, int reverse)
{
	const double var = o->lanes[i].base.var * o->ref_d;
	const unsigned m = (unsigned)(e1 - e0), nlp = o->nlp;
	const uint64_t mask = o->ref_cap - 1;
	const float *const ring = o->ref_ring + i;
	/* the lane's entries gathered once (its column of the ring is strided
	 * by the lane count), into the prefix-sum scratch emg_cp_fit() fills later */
	double *const raw = o->ref_c, *const u = o->ref_u;

	for (unsigned j = 0; j < m; j++)
		raw[j] = ring[(size_t)((e0 + j) & mask) * nlp];
	o->amp(raw, u, m, var);
	if (reverse)
		for (unsigned j = 0; j < m / 2; j++) {
			const double t = u[j];
			u[j] = u[m - 1 - j];
			u[m - 1 - j] = t;
		}
	return m;
}

/*
 * The change-point fit of lane i's history entries [*e0, e1), at most the
 * newest ref_len of them (*e0 moves up to the first one used), in time order
 * or with `reverse` newest first (an end).  Returns the change's index in
 * o->ref_u (whose m amplitudes it leaves there) and its ramp length, or -1
 * with no baseline or fewer than min_m entries; a ramp must beat a step by
 * `margin` residual variances (emg_cp_fit()).
 */
static long ref_fit(struct emg_onset *o, unsigned i, uint64_t *e0, uint64_t e1, unsigned min_m,
		    int reverse, double margin, unsigned *m, unsigned *ramp)
{
	if (!(o->lanes[i].base.var > 0))
		return -1;
	if (e1 > o->ref_len && *e0 < e1 - o->ref_len)
		*e0 = e1 - o->ref_len;
	if (e1 < *e0 + min_m)
		return -1;
	*m = ref_window(o, i, *e0, e1, reverse);
	return emg_cp_fit(o->ref_u, *m, o->ref_c, margin, ramp);
}

/*
 * The change in lane i's history after sample `from` (0: none) up to sample
 * n, at most ref_len entries back and not before entry `floor_e`: the first
 * active entry (onset), or with `reverse` the first inactive one after the
 * activity (offset).  UINT64_MAX when the window is too short or the fit sees
 * no change, or only a step - which the first estimate already places.
 */
static uint64_t ref_change(struct emg_onset *o, unsigned i, uint64_t from, uint64_t n,
			   uint64_t floor_e, int reverse)
{
	uint64_t e0, e1;
	unsigned m = 0, ramp = 0;
	long k;

	if (n < o->ref_off)
		return UINT64_MAX;
	/* entries that end by sample n, whatever the chunking (ref_feed runs ahead) */
	e1 = ref_entry(o, n + 1);
	e0 = from > o->ref_off ? ref_entry(o, from) + 1 : 0;
	if (e0 < floor_e)
		e0 = floor_e;
	/*
	 * An onset's first estimate, the CUSUM's, is exact to a sample or two
	 * for a step: only a ramp moves it, and a ramp must beat a step clearly.
	 * An offset's is where the power last peaked before the off-run, which
	 * slow decays and the filters' ringing push late, and a burst that ends
	 * at once (a step) is where the estimate is worst: there the best fit,
	 * step or ramp, is the offset.  On the second external set, whose
	 * contractions stop at once, the offsets at 20 dB were +59 ms late on
	 * average (p90 165 ms) with the steps left out, +8 ms (44 ms) with them.
	 */
	k = ref_fit(o, i, &e0, e1, 4, reverse, reverse ? 0.0 : REF_LR_MARGIN, &m, &ramp);
	if (k <= 0 || (!reverse && ramp <= 2 * REF_SMOOTH))
		return UINT64_MAX;
	/* reversed, entry k is forward entry m - 1 - k, the last one still active */
	return reverse ? e0 + (m - (unsigned)k) : e0 + (uint64_t)k;
}

/* Refined onset of lane i confirmed at sample n, first estimate `at`, not before `lo`. */
static uint64_t refine_onset(struct emg_onset *o, unsigned i, uint64_t n, uint64_t at, uint64_t lo)
{
	/* the first estimate is late by a window or a ramp, not by more: a wider
	 * search lets rest noise at low SNR pull the fit far back */
	uint64_t ea = at >= o->ref_off ? ref_entry(o, at) : 0;
	uint64_t e = ref_change(o, i, lo, n, ea > o->ref_span ? ea - o->ref_span : 0, 0);
	uint64_t r = e == UINT64_MAX ? at : e * o->ref_d + o->ref_off;

	/* the windows and a ramp make the first estimate late, never early: a
	 * fit that lands later is the history's noise, not information */
	return r < at ? r : at;
}

/* Refined offset of lane i's burst that began at `onset`, confirmed at n; first estimate `off`. */
static uint64_t refine_offset(struct emg_onset *o, unsigned i, uint64_t n, uint64_t off,
			      uint64_t onset)
{
	/* The whole history, not a span before the first estimate (where the
	 * power last peaked before the off-run): at high SNR that estimate lies
	 * in the notch's ring - a Q 30 notch rings with a 0.2 s time constant at
	 * ~-24 dB of the burst, above a rest threshold for 0.5 s at 40 dB - and
	 * the burst's real end is that far back.  A span of 100 ms left offsets
	 * 213 ms late on the plain synth at 40 dB; all 800 ms: 15 ms. */
	uint64_t e = ref_change(o, i, onset, n, 0, 1);
	uint64_t r = e == UINT64_MAX ? off : e * o->ref_d + o->ref_off;

	return r > onset && r <= n ? r : off;
}

/*
 * Mean frequency (Hz) of the power lane i's burst [on, end) adds to the rest
 * before it (the history's entries from FREQ_REST_MS before `on`): from the
 * powers of x and of its first difference, whose gain 2 sin(pi f / fs)
 * weights each frequency (Hjorth's mobility, of the excess power).  NAN when
 * the history does not hold both or the burst adds no power.
 */
static double burst_freq(const struct emg_onset *o, unsigned i, uint64_t on, uint64_t end)
{
	const uint64_t mask = o->ref_cap - 1, rest_e = ms_to_samples(FREQ_REST_MS, o->fs) / o->ref_d;
	double px = 0, pd = 0, rx = 0, rd = 0;
	uint64_t e0, e1, r0;

	if (on < o->ref_off + o->ref_d * rest_e || end <= on)
		return NAN;
	e0 = ref_entry(o, on);
	e1 = ref_entry(o, end);
	r0 = e0 - rest_e;
	if (e1 > o->ref_sub || e1 <= e0 || o->ref_sub - r0 > o->ref_cap)
		return NAN;
	for (uint64_t e = r0; e < e1; e++) {
		const size_t k = (size_t)(e & mask) * o->nlp + i;
		if (e < e0) {
			rx += o->ref_ring[k];
			rd += o->ref_dring[k];
		} else {
			px += o->ref_ring[k];
			pd += o->ref_dring[k];
		}
	}
	px -= rx * (double)(e1 - e0) / (double)rest_e;
	pd -= rd * (double)(e1 - e0) / (double)rest_e;
	if (!(px > 0) || !(pd > 0))
		return NAN;
	const double g = sqrt(pd / px) / 2;
	return o->fs / M_PI * asin(g < 1 ? g : 1);
}

/* Whether sample `at` lies in [t - pre, t + beat_post) around trigger t1 = t + 1 (0: none). */
static inline int in_beat(const struct emg_onset *o, uint64_t at, uint64_t t1, unsigned pre)
{
	return t1 && at + pre + 1 >= t1 && at + 1 < t1 + o->beat_post;
}

/* Whether sample `at` lies in the QRS window [t - beat_pre, t + beat_post) of trigger t1. */
static inline int in_qrs(const struct emg_onset *o, uint64_t at, uint64_t t1)
{
	return in_beat(o, at, t1, o->beat_pre);
}

/* Lane i's active burst began in the QRS window of its last ECG trigger: no slow hold for W2. */
static void lane_trig_hold(struct emg_onset *o, unsigned i)
{
	o->h.wmin[i] = in_qrs(o, o->lanes[i].onset, o->lanes[i].trig) ? (float)o->W2 : 0.0f;
}

enum { BEAT_CLEAR, BEAT_WAIT, BEAT_FAIL };

/*
 * The verdict on a burst from `at` on lane i at sample n, against the
 * heartbeats told up to n (with `trig`, also the last trigger off the
 * rhythm on a lane that has learnt its QRS) whose window [trigger - pre,
 * trigger + beat_post) holds `at`: BEAT_CLEAR (none does, or the burst
 * passed), BEAT_WAIT (not yet past the window and a confirmation: until
 * *until) or BEAT_FAIL (the last confirm_n samples, all after the window,
 * fail the energy test).
 */
static int beat_verdict(struct emg_onset *o, unsigned i, uint64_t n, uint64_t at, unsigned pre,
			int trig, uint64_t *until)
{
	const struct lane *l = &o->lanes[i];
	const uint64_t cand[3] = { l->beat[0], l->beat[1], trig ? l->trig : 0 };

	for (unsigned b = 0; b < 3; b++) {
		const uint64_t t = cand[b] - 1;
		uint64_t e0, e1;
		double x2 = 0;

		if (!in_beat(o, at, cand[b], pre) || t > n)
			continue;
		*until = t + o->beat_post + o->confirm_n;
		if (n + 1 < *until)
			return BEAT_WAIT;
		/* history entries wholly inside the last confirm_n samples */
		*until = n + 1;
		if (n + 1 < o->ref_off + o->confirm_n)
			return BEAT_WAIT;
		e0 = ref_entry(o, n + 1 - o->confirm_n + o->ref_d - 1);
		e1 = ref_entry(o, n + 1);
		if (e1 <= e0)
			return BEAT_WAIT;
		for (uint64_t e = e0; e < e1; e++)
			x2 += o->ref_ring[(size_t)(e & (o->ref_cap - 1)) * o->nlp + i];
		return run_energetic(o, l, x2, (double)(e1 - e0) * o->ref_d) ? BEAT_CLEAR : BEAT_FAIL;
	}
	return BEAT_CLEAR;
}

/*
 * A run whose onset `at` lies in the QRS window of a heartbeat on lane i that
 * is not later than n, [trigger - beat_pre, trigger + beat_post), is what the
 * ECG stage could not remove (the QRS before its trigger, the template's
 * error): it confirms only once it has lasted a confirmation past the window
 * and the last confirm_n samples, all after the window, pass the energy
 * test on their own.  A real onset inside a beat keeps its sample (`at` is
 * not moved); only its event waits, by at most beat_post + confirm_n.  The
 * slow path passes its run's start, not its back-dated onset: that lies up to
 * W2 / 2 earlier, before the window of the QRS that began the run (on the
 * realistic synth at 40 dB, 3 of 8 missed bursts were such runs, confirmed
 * 50-51 ms before their trigger, which then lasted into a contraction).
 */
static int beat_hold(struct emg_onset *o, unsigned i, uint64_t n, uint64_t at)
{
	uint64_t until;

	return beat_verdict(o, i, n, at, o->beat_pre, 0, &until) != BEAT_CLEAR;
}

/*
 * Sample n (frame f of the chunk) of lane i, where its state machine has to
 * decide something.  The vector pass has already done this sample's
 * bookkeeping: both CUSUMs and the slow path's arming; for an idle lane the
 * on-run counters (run length, sum of x^2, first sample), for an active
 * one the burst tracking, `weak` and the off-run counters.  What is left:
 * bonato's back-dated run starts, confirmations (or not yet) and offsets.
 * `on` is the method's decision, `slow_on` the slow path's.
 */
static void lane_scalar(struct emg_onset *o, unsigned i, unsigned f, uint64_t n, int on,
			int slow_on)
{
	struct lane *l = &o->lanes[i];
	struct hot *h = &o->h;
	const int bonato = o->p.method == EMG_ONSET_BONATO;

	if (l->st != ST_ACTIVE) {
		uint64_t at = UINT64_MAX;
		double run_x2 = 0, run_n = 0;
		int weak = 0;

		if (bonato && on && h->rl[i] == 1) {
			/* the run began at the first sample of the earliest exceeding pair in the window */
			unsigned age = 63u - (unsigned)__builtin_clzll(l->mask);
			uint64_t newest = (n & 1) ? n : n - 1;
			h->rs[i] = idx_rel(o, back(newest - 2 * (uint64_t)age, 1));
		}
		if ((unsigned)h->rl[i] >= o->confirm_n) {
			at = fast_onset(o, i);
			run_x2 = h->rx2[i];
			run_n = h->rl[i];
			if (at != UINT64_MAX && !run_energetic(o, l, run_x2, run_n))
				at = UINT64_MAX; /* not yet: the run may still gather energy */
		}
		if (at == UINT64_MAX && (unsigned)h->r2l[i] >= o->confirm_n) {
			at = slow_onset(o, i);
			run_x2 = h->r2x2[i];
			run_n = h->r2l[i];
			weak = 1;
		}
		/* the slow path back-dates its run by up to W2 / 2, past the QRS
		 * window's start: a run the QRS began is judged by where it began */
		if (at == UINT64_MAX ||
		    beat_hold(o, i, n, weak && idx_abs(o, h->r2s[i]) > at ? idx_abs(o, h->r2s[i]) : at))
			return;
		l->st = ST_ACTIVE;
		h->weak[i] = weak ? -1 : 0;
		l->weak_on = weak;
		if (!weak)
			at = refine_onset(o, i, n, at, l->last_offset);
		l->onset = at > l->last_offset ? at : l->last_offset;
		h->bx2[i] = (float)run_x2;
		h->bn[i] = (float)run_n;
		h->ol[i] = 0;
		/* the uncapped sums from here on locate the burst's end */
		h->ab[i] = h->abpk[i] = h->bb[i] = h->bbpk[i] = 0;
		h->abpka[i] = h->bbpka[i] = idx_rel(o, n + 1);
		l->snr_db = burst_snr(l, run_x2, run_n);
		lane_trig_hold(o, i);
		lane_sync(o, i);
		lane_invalidate_since(o, l, l->onset);
		emit(o, i, f, EMG_ONSET_ON, l->onset);
		return;
	}

	/* active.  A weak burst - confirmed by the slow path, or too faint for
	 * the fast path to hold it steadily - lasts as long as either path sees it. */
	const int weak = h->weak[i] != 0;
	if (weak)
		on = on || slow_on;
	if (bonato && !weak && h->ol[i] == 1)
		h->of[i] = idx_rel(o, l->last_over < n ? l->last_over : n); /* the off-run just began */
	if (on || (unsigned)h->ol[i] < o->offset_n)
		return;

	/* offset: where the power last peaked, within the window before the off-run */
	const uint64_t first = idx_abs(o, h->of[i]);
	uint64_t lo = back(first, weak ? o->W2 : o->W);
	uint64_t pk = idx_abs(o, weak ? h->bbpka[i] : h->abpka[i]);
	uint64_t off = pk < lo ? lo : pk > first ? first : pk;
	/* A burst the slow path confirmed first (it began on a swell of the
	 * noise) may be strong all the same - not weak by the vector pass's own
	 * test of its power: its end is the fit's too. */
	if (!weak || !(h->bx2[i] < h->wkthr[i] * h->bn[i]))
		off = refine_offset(o, i, n, off, l->onset);
	if (off <= l->onset)
		off = l->onset + 1;
	l->st = ST_IDLE;
	h->rl[i] = h->r2l[i] = 0;
	h->armed2[i] = 0; /* the slow RMS still remembers the burst */
	l->snr_db = burst_snr(l, h->bx2[i], h->bn[i]);
	l->last_offset = off;
	if (off > l->onset + o->cycle_beat_n)
		lane_mark_contraction(o, l, l->onset);
	l->weak_off = weak || l->weak_on;
	lane_sync(o, i);
	emit(o, i, f, EMG_ONSET_OFF, off);
}

static void gate_check(struct emg_onset *o, unsigned i, unsigned f, uint64_t now);

/* Lane i's scalar work at sample n (frame f): its state machine, then the report gate if it is due. */
static void lane_step(struct emg_onset *o, unsigned i, unsigned f, uint64_t n, int on, int slow_on)
{
	lane_scalar(o, i, f, n, on, slow_on);
	if (o->h.gd[i] && idx_abs(o, o->h.gd[i]) == n + 1)
		gate_check(o, i, f, n + 1);
}

/* Bonato's pair decisions for lanes [g0, g0 + vl) at sample n into h->on. */
static void bonato_frame(struct emg_onset *o, unsigned g0, unsigned vl, const float *x, uint64_t n)
{
	const int pair_end = (n & 1) != 0; /* bonato pairs: (even, odd) sample indices */

	for (unsigned j = 0; j < vl; j++) {
		const unsigned i = g0 + j;
		struct lane *l;
		float xv;

		o->h.on[i] = 0;
		if (i >= o->nlanes)
			continue;
		l = &o->lanes[i];
		xv = x[i];
		if (l->src != EMG_BASELINE_NONE && pair_end) {
			int over = l->xprev * l->xprev + xv * xv > l->th_pair;
			l->nover += (unsigned)over - (unsigned)(l->mask >> (o->p.bonato_m - 1) & 1);
			l->mask = ((l->mask << 1) | (uint64_t)over) & o->m_mask;
			if (over)
				l->last_over = n + 1;
		}
		l->xprev = xv;
		/* the window's decision holds for both samples of its last pair */
		if (l->src != EMG_BASELINE_NONE && l->nover >= o->r0)
			o->h.on[i] = -1;
	}
}

/*
 * Amplitude estimate of history entry j of raw[0..m): sqrt(P - var), P the
 * mean of the entries within +-REF_SMOOTH, summed oldest first (the vector
 * kernel ref_amp() does the same operations in the same order).
 */
static inline double ref_amp1(const double *raw, unsigned m, unsigned j, double var)
{
	const unsigned a = j > REF_SMOOTH ? j - REF_SMOOTH : 0;
	const unsigned b = j + REF_SMOOTH < m ? j + REF_SMOOTH + 1 : m;
	double p = 0;

	for (unsigned t = a; t < b; t++)
		p += raw[t];
	p = p / (b - a) - var;
	return p > 0 ? sqrt(p) : 0.0;
}

/* ---- the vector passes, per ISA level (simd.h) ------------------------ */

#define EMG_KERNEL "onset_kernel.h"
#include "simd_kernels.h"

static void pick_kernels(struct emg_onset *o)
{
	o->kernel = main_base;
	o->stats = stats_base;
	o->feed = ref_feed_base;
	o->amp = ref_amp_base;
#if EMG_SIMD_X86
	switch (emg_simd_level()) {
	case 4:
		o->kernel = o->nlanes > 8 ? main_v4 : main_v4_8;
		o->stats = o->nlanes > 8 ? stats_v4 : stats_v4_8;
		o->feed = o->nlanes > 8 ? ref_feed_v4 : ref_feed_v4_8;
		o->amp = o->nlanes > 8 ? ref_amp_v4 : ref_amp_v4_8;
		break;
	case 3:
		o->kernel = main_v3;
		o->stats = stats_v3;
		o->feed = ref_feed_v3;
		o->amp = ref_amp_v3;
		break;
	}
#endif
}

/*
 * Plan the next chunk: at most CHUNK frames, ending at the first block end,
 * one struct frame each; advances the window positions and block counters.
 * Returns the frame count; *blk gets the block's first sample and *sn its
 * sub-block count when the chunk ends a block.
 */
static unsigned plan_chunk(struct emg_onset *o, unsigned nframes, uint64_t first, uint64_t *blk,
			   unsigned *sn)
{
	unsigned f;

	for (f = 0; f < nframes && f < CHUNK; f++) {
		struct frame *fr = &o->fr[f];
		const uint64_t k = o->seen + f; /* samples before this one */
		uint32_t fl = 0;

		fr->prow = o->ppos;
		if (o->p.method == EMG_ONSET_HODGES)
			fr->crow = o->ppos >= o->W ? o->ppos - o->W : o->ppos + o->W2 - o->W;
		else
			fr->crow = o->cpos;
		fr->inv_c = 1.0f / (float)(k + 1 < o->W ? k + 1 : o->W);
		fr->inv_p = 1.0f / (float)(k + 1 < o->W2 ? k + 1 : o->W2);
		if (++o->cpos == o->W) {
			o->cpos = 0;
			fl |= FR_CSYNC;
		}
		if (++o->ppos == o->W2) {
			o->ppos = 0;
			fl |= FR_PSYNC;
		}
		if (k < o->warmup) {
			o->blk_start = first + f + 1;
			fr->flags = fl;
			continue;
		}
		fl |= FR_STATS;
		if (o->blk_pos == 0)
			fl |= FR_BLK_FIRST;
		if (o->resting) {
			fl |= FR_REST;
			if (o->rest_n == 0)
				fl |= FR_REST_FIRST;
			o->rest_n++;
		}
		if (++o->sub_pos == o->W) {
			o->sub_pos = 0;
			o->blk_sn++;
			fl |= FR_SUB_END;
		}
		if (++o->blk_pos == o->block_n) {
			fl |= FR_BLK_END;
			*blk = o->blk_start;
			*sn = o->blk_sn;
			o->blk_pos = 0;
			o->blk_sn = 0;
			o->blk_start = first + f + 1;
			fr->flags = fl;
			return f + 1;
		}
		fr->flags = fl;
	}
	return f;
}

/*
 * The report gate.  A heartbeat's QRS, band-passed, is a 40..100 ms burst of
 * power as strong as a weak contraction, and a motion blip is shorter still;
 * a contraction in an exercise lasts far longer.  So an onset is reported
 * only once its burst has lasted report_n samples (150 ms by default; in the
 * stream's first seconds longer, see report_len()): when
 * its offset comes at least that late, or when the burst is still on and not
 * fading at report_n + offset_n after the onset (an off-run in progress then
 * is waited out: it may still place the offset before report_n).  A burst
 * that ends sooner is dropped with its offset, and so is one the detector
 * still holds but whose shape says it has faded (burst_faded()) - unless it
 * rises again into a burst of its own while the detector holds it
 * (burst_rose(): a contraction inside a pop's ring), which is then reported
 * from its rise.  Only the event waits: the onset keeps its back-dated
 * sample, and the detector's state machine, thresholds and baselines never
 * see the gate.  The gate decides at exact samples: on an event as the
 * detector finds it, and on a lane it waits for at the end of the due sample,
 * which the vector pass hands to the scalar path like any decision (hot gd).
 * Its decisions are queued with the events and delivered after the chunk in
 * sample order, so what is reported when does not depend on how the caller
 * splits the stream - nor on the baselines, which change at block ends, as
 * seen from a chunk's end.  (Gate checks used to run where chunks end, with
 * chunks ending at due samples; an onset confirmed within a chunk of its due
 * sample was then looked at only at the chunk's end: dropped in one block
 * split, reported in another.)
 *
 * Heartbeats the gate sees come: a burst whose heartbeat trigger comes
 * while the gate holds its onset began on that beat's P wave, which the ECG
 * stage's templates, aligned on the trigger, do not reach.  The triggers are
 * the beats told on the rhythm (emg_onset_beat) and, on a lane that has
 * learnt its QRS, the last trigger off it (emg_onset_trigger: where the
 * stage lost the rhythm, jumping between P waves and QRS, the beats go on).
 * Such a burst is the beat's, and dropped, if it ends before the beat's QRS
 * window and a confirmation are over; if the detector still holds it then,
 * it is reported once it is energetic on its own past that window
 * (beat_verdict: a contraction that began by a beat is reported with its
 * own onset, the beat's tail never).  On the real tibialis recording at
 * 250 Hz, whose P waves stand out of the rest EMG, that was 1.15 -> 0.43
 * false onsets per minute of rest with hodges, 1.44 -> 0.43 with tkeo, and
 * 21.1 -> 2.4 with bonato (its onsets sat 50-150 ms before the R peak,
 * before the detector's own QRS window); no other source's figures moved
 * but for fewer false onsets.  Such an event waits up to the beat's
 * trigger + beat_post + confirm_n, longer while weak.
 */

/*
 * How long a burst from sample `on` must last to be reported: report_n, or
 * report_start_n in the stream's start-up.  Until the ECG stage has locked
 * onto a heart and told its beats (emg_onset_beat), the automatic baseline
 * is the quiet between two beats, and every beat - P wave, QRS and T wave,
 * 120-490 ms of power on a real tibialis recording at 250 Hz - rises over it
 * into a burst longer than report_n.  The stage needs up to 7 s to lock: 1 s
 * of warm-up and three steady intervals of up to 1.5 s (40 bpm).  Streams
 * cut from the rest of that recording, each started cold like a 5.7 s
 * standing trial, made 18 false onsets per minute, one on nearly every beat
 * of the first 2-4 s; with the start-up gate at 500 ms, 0.14.  Contractions
 * in exercises last far longer (0.9-2.4 s in every source in tests/data), so
 * the cost is their event waiting 350 ms more in the first seconds; at 0 dB,
 * where a contraction breaks into short pieces, some of them are lost.
 */
static unsigned report_len(const struct emg_onset *o, uint64_t on)
{
	return on < o->startup_end ? o->report_start_n : o->report_n;
}

/*
 * Whether lane i's burst [on, end) has lasted long enough to be reported:
 * report_len(), or in the start-up report_n when the power it adds lies
 * where a muscle's does, over startup_emg_hz (70 Hz), not where a heartbeat's
 * does (burst_freq()).  Band-passed, a QRS-T complex keeps its power low: the
 * start-up bursts heartbeats made measured 22 Hz (median) on the realistic
 * synth with 200 uV of ECG, 32 Hz (95 % under 44 Hz) on the real tibialis,
 * 37-56 Hz on a real 2048 Hz recording (README "Short contractions in the
 * start-up"); surface EMG's lies over 90 Hz (the external model: 95 % of its
 * bursts; that recording's EMG bursts 106-118 Hz).
 * At 250 Hz, where EMG cannot show that high (the tibialis' contractions:
 * 38-55 Hz), the start-up's longer wait stays as it was.  Behind a 30 Hz
 * ECG high-pass a heartbeat's residue lies at 66-137 Hz (the same 2048 Hz
 * recording): the pipeline turns the rule off there.
 */
static int burst_lasted(const struct emg_onset *o, unsigned i, uint64_t on, uint64_t end)
{
	if (end >= on + report_len(o, on))
		return 1;
	return on < o->startup_end && end >= on + o->report_n && o->p.startup_emg_hz > 0 &&
	       burst_freq(o, i, on, end) >= o->p.startup_emg_hz;
}

/*
 * When onset `on` has lasted long enough to be reported: report_n, plus the
 * off-run that would end it.  A weak burst lives on the slow path, whose W2
 * window holds a 100 ms QRS "active" for W2 longer: its lasting counts from
 * past that window, and its event comes W2 later.  Its offset sample is
 * no measure of its length (see gate_event()): on the realistic synth at
 * 20 dB, heartbeats made 4.1 false onsets per muscle-minute of rest, 1.9
 * with the later due sample, 0.2 once an offset before it also drops them.
 */
static uint64_t gate_due(const struct emg_onset *o, const struct emg_onset_event *on, int weak)
{
	return on->sample + report_len(o, on->sample) + o->offset_n + (weak ? o->W2 : 0);
}

/* How far before a heartbeat's trigger lane i's pending onset counts as the beat's: as long as the gate holds it. */
static unsigned gate_beat_pre(const struct emg_onset *o, unsigned i)
{
	const struct lane *l = &o->lanes[i];

	return (unsigned)(gate_due(o, &l->pend, l->weak_on || o->h.weak[i]) - l->pend.sample);
}

/* The gate looks at lane i again once `due` samples have been seen (the end of sample due - 1). */
static void gate_at(struct emg_onset *o, unsigned i, uint64_t due)
{
	o->h.gd[i] = idx_rel(o, due);
}

/* Pass event e of frame f through the gate, at its sample. */
static void gate_event(struct emg_onset *o, unsigned f, const struct emg_onset_event *e)
{
	struct lane *l = &o->lanes[e->lane];
	const uint64_t at = o->chunk_first + f;

	if (!o->report_n) {
		queue(o, f, 0, e);
	} else if (e->kind == EMG_ONSET_ON) {
		/* weak as confirmed: a burst may turn weak later (gate_check) */
		const uint64_t due = gate_due(o, e, l->weak_on);

		if (at + 1 >= due) { /* confirmed late: it has lasted long enough */
			queue(o, f, 0, e);
			return;
		}
		l->pend = *e;
		l->pending = 1;
		gate_at(o, e->lane, due);
	} else if (l->muted) {
		l->muted = 0; /* the end of a burst the gate already dropped */
		o->h.gd[e->lane] = 0;
	} else if (l->pending) {
		l->pending = 0;
		o->h.gd[e->lane] = 0;
		/* A weak burst's offset sample is where its slow-window power last
		 * peaked, which for a burst shorter than that window is up to W2
		 * past its end: it is judged by when it ended, as gate_check
		 * would - before its due sample, so too short. */
		uint64_t until;

		if (!l->weak_off && burst_lasted(o, e->lane, l->pend.sample, e->sample) &&
		    beat_verdict(o, e->lane, at, l->pend.sample, gate_beat_pre(o, e->lane), 1, &until) == BEAT_CLEAR) {
			queue(o, f, 0, &l->pend);
			queue(o, f, 0, e);
		} else {
			o->dropped++;
		}
	} else {
		queue(o, f, 0, e);
	}
}

/*
 * Whether lane i's burst from sample `on` has in fact faded by sample n,
 * although the detector still holds it: the reversed change-point fit puts
 * its end before on + report_n, and what follows is at most FADE_TAIL of its
 * amplitude, or at most FADE_RING and dying away (each third of it at most
 * FADE_DECAY of the one before); *faded is then that end.  A band-passed electrode pop (a step of a few hundred uV) spends
 * its energy in ~40 ms, but its high-pass and notch ringing stay above a rest
 * threshold near the noise for 150-500 ms at 40 dB; so do strong twitches.
 * The detector cannot tell a ring from a weak contraction by level alone;
 * the shape of the whole burst can.
 */
static int burst_faded(struct emg_onset *o, unsigned i, uint64_t on, uint64_t n, uint64_t *faded)
{
	uint64_t e0, end;
	unsigned m = 0, ramp = 0;
	double tail = 0, body = 0;
	long k;

	if (on < o->ref_off)
		return 0;
	e0 = ref_entry(o, on);
	k = ref_fit(o, i, &e0, ref_entry(o, n + 1), 8, 1, REF_LR_MARGIN, &m, &ramp);
	if (k <= 0)
		return 0;
	end = (e0 + (m - (unsigned)k)) * o->ref_d + o->ref_off;
	if (burst_lasted(o, i, on, end))
		return 0;
	/* newest first: [0, k) is what followed the burst, in thirds th[0]
	 * (the newest) .. th[2]; [k, m) the burst */
	double th[3] = { 0, 0, 0 };

	for (unsigned j = 0; j < (unsigned)k; j++)
		th[j * 3 / (unsigned)k] += o->ref_u[j];
	for (unsigned j = (unsigned)k; j < m; j++)
		body += o->ref_u[j];
	*faded = end;
	tail = (th[0] + th[1] + th[2]) / k;
	body /= m - (unsigned)k;
	/*
	 * A ring dies away all along, a contraction's sustained part does not:
	 * at 250 Hz a pop's notch ring is 10-13 % of the pop (the band is
	 * 20-112 Hz, the notch's share of it larger), and each third of it
	 * smaller than the one before; a contraction that began on a pop
	 * follows the pop's decay, then stays level.
	 */
	return tail <= FADE_TAIL * body ||
	       (tail <= FADE_RING * body && k >= 3 && th[0] <= FADE_DECAY * th[1] &&
		th[1] <= FADE_DECAY * th[2]);
}

/*
 * Whether lane i's muted burst (the gate dropped it as faded at mute_end)
 * has since risen again into a burst of its own: a contraction that starts
 * while a pop still rings above the rest threshold continues the pop's burst
 * in the detector, which would otherwise swallow it whole.  The forward
 * change-point fit over what followed the fade must find a rise to at least
 * RISE_MULT times the level before it, which has lasted report_n by n.
 * Returns the rise's sample, or UINT64_MAX.
 */
static uint64_t burst_rose(struct emg_onset *o, unsigned i, uint64_t n)
{
	const struct lane *l = &o->lanes[i];
	uint64_t e0, t;
	unsigned m = 0, ramp = 0;
	double before = 0, after = 0;
	long k;

	if (l->mute_end < o->ref_off)
		return UINT64_MAX;
	e0 = ref_entry(o, l->mute_end);
	k = ref_fit(o, i, &e0, ref_entry(o, n + 1), 8, 0, REF_LR_MARGIN, &m, &ramp);
	if (k <= 0)
		return UINT64_MAX;
	t = (e0 + (uint64_t)k) * o->ref_d + o->ref_off;
	if (t + o->report_n > n + 1)
		return UINT64_MAX; /* not yet: too short to tell from a blip */
	for (unsigned j = 0; j < (unsigned)k; j++)
		before += o->ref_u[j];
	for (unsigned j = (unsigned)k; j < m; j++)
		after += o->ref_u[j];
	return after / (m - (unsigned)k) >= RISE_MULT * before / (unsigned)k ? t : UINT64_MAX;
}

/*
 * Lane i's muted burst at `now`: reported, from its rise, if it has risen
 * again into a burst of its own; else looked at again a confirmation later.
 */
static void gate_unmute(struct emg_onset *o, unsigned i, unsigned f, uint64_t now)
{
	struct lane *l = &o->lanes[i];
	const uint64_t t = o->h.weak[i] ? UINT64_MAX : burst_rose(o, i, now - 1);

	if (t == UINT64_MAX) {
		gate_at(o, i, now + o->confirm_n);
		return;
	}
	l->muted = 0;
	l->onset = t;
	const struct emg_onset_event e = {
		.lane = i, .kind = EMG_ONSET_ON, .sample = t, .onset_sample = t, .snr_db = l->snr_db,
	};
	queue(o, f, 1, &e);
}

/* The gate's look at lane i, due now (`now` samples seen: frame f has just been run). */
static void gate_check(struct emg_onset *o, unsigned i, unsigned f, uint64_t now)
{
	struct lane *l = &o->lanes[i];
	uint64_t until;

	o->h.gd[i] = 0;
	if (l->muted) {
		gate_unmute(o, i, f, now);
		return;
	}
	if (!l->pending)
		return;
	if (o->h.ol[i] > 0) {
		/* fading: look again when this off-run would end the burst - or
		 * at the next sample, when it is long enough but an on-blip that
		 * may still join it back to the burst holds the offset */
		const unsigned ol = (unsigned)o->h.ol[i];
		gate_at(o, i, now + (ol < o->offset_n ? o->offset_n - ol : 1));
		return;
	}
	if (o->h.weak[i] && now < gate_due(o, &l->pend, 1)) { /* turned weak while it waited */
		gate_at(o, i, gate_due(o, &l->pend, 1));
		return;
	}
	if (!o->h.weak[i] && burst_faded(o, i, l->pend.sample, now - 1, &l->mute_end)) {
		l->pending = 0;
		l->muted = 1;
		o->dropped++;
		gate_at(o, i, now + o->confirm_n);
		return;
	}
	switch (beat_verdict(o, i, now - 1, l->pend.sample, gate_beat_pre(o, i), 1, &until)) {
	case BEAT_WAIT:
		gate_at(o, i, until);
		return;
	case BEAT_FAIL: /* what the detector still holds is the beat's, so far */
		gate_at(o, i, now + o->confirm_n);
		return;
	}
	l->pending = 0;
	queue(o, f, 1, &l->pend);
}

/*
 * Deliver what the chunk reports in (sample, then the gate's decisions after
 * the sample's events, then lane) order: stable by frame and gate flag, and
 * the lanes come in order within each.
 */
static void deliver(struct emg_onset *o, emg_onset_fn fn, void *ud)
{
	for (unsigned i = 1; i < o->nev; i++) {
		struct ev e = o->evs[i];
		unsigned j = i;
		for (; j > 0 && (o->evs[j - 1].frame > e.frame ||
				 (o->evs[j - 1].frame == e.frame && o->evs[j - 1].gate > e.gate)); j--)
			o->evs[j] = o->evs[j - 1];
		o->evs[j] = e;
	}
	for (unsigned i = 0; i < o->nev && fn; i++)
		fn(ud, &o->evs[i].e);
	o->nev = 0;
}

void emg_onset_run(struct emg_onset *o, const float *x, unsigned nframes, uint64_t first_sample,
		   emg_onset_fn fn, void *ud)
{
	const unsigned nl = o->nlanes, nlp = o->nlp;

	while (nframes) {
		uint64_t blk = 0;
		unsigned sn = 0;
		unsigned nf = plan_chunk(o, nframes, first_sample, &blk, &sn);

		idx_rebase(o, first_sample);
		for (unsigned f = 0; f < nf; f++)
			memcpy(o->h.xb + (size_t)f * nlp, x + (size_t)f * nl, nl * sizeof(float));
		/* a block overlapping a burst is not rest */
		for (unsigned i = 0; i < nl; i++)
			o->h.dirty[i] |= o->h.act[i];
		o->ref_off = first_sample - o->seen;
		if (!o->seen)
			o->startup_end = first_sample + o->startup_n;
		o->chunk_first = first_sample;
		o->feed(o, nf);
		o->kernel(o, nf, first_sample);
		o->stats(o, nf);
		if (o->fr[nf - 1].flags & FR_BLK_END)
			for (unsigned i = 0; i < nl; i++)
				lane_block_end(o, i, blk, sn);
		deliver(o, fn, ud);
		o->seen += nf;
		first_sample += nf;
		x += (size_t)nf * nl;
		nframes -= nf;
	}
}

/* ---- queries and calibration ----------------------------------------- */

void emg_onset_trigger(struct emg_onset *o, uint64_t sample, const uint8_t *lanes)
{
	for (unsigned i = 0; i < o->nlanes; i++) {
		if (lanes && !lanes[i])
			continue;
		o->lanes[i].trig = sample + 1;
		/* a trigger taken back (a burst, not a beat) brings back the one before */
		if (o->lanes[i].st == ST_ACTIVE)
			lane_trig_hold(o, i);
	}
}

void emg_onset_beat(struct emg_onset *o, uint64_t sample, double rr, const uint8_t *lanes)
{
	for (unsigned i = 0; i < o->nlanes; i++) {
		struct lane *l = &o->lanes[i];

		if (lanes && !lanes[i])
			continue;
		/* Inside a contraction (a burst reported and longer than a beat's)
		 * a trigger tells nothing of a heart: on a lane without one, the
		 * ECG stage locks on the contraction's own peaks (a 5 s
		 * contraction at 10 dB: a "rhythm" of 0.45 s), and the lane
		 * taken as cardiac had its baseline raised 2-3 fold by runs of
		 * blocks reaching into the next contraction, which then broke in
		 * two (bench_onset, "ext2x5").  A heart shows in the rest too. */
		if (l->st == ST_ACTIVE && !l->pending && !l->muted &&
		    sample > l->onset + o->cycle_beat_n)
			continue;
		l->beat[0] = l->beat[1];
		l->beat_rr[0] = l->beat_rr[1];
		l->beat[1] = sample + 1;
		l->beat_rr[1] = rr > 0 && rr < 1e9 ? rr : 0;
	}
}

int emg_onset_active(const struct emg_onset *o, unsigned lane)
{
	return lane < o->nlanes && o->lanes[lane].st == ST_ACTIVE && !o->lanes[lane].pending &&
	       !o->lanes[lane].muted;
}

uint64_t emg_onset_dropped(const struct emg_onset *o)
{
	return o->dropped;
}

float emg_onset_snr_db(const struct emg_onset *o, unsigned lane)
{
	const struct lane *l;

	if (lane >= o->nlanes)
		return 0.0f;
	l = &o->lanes[lane];
	if (l->st == ST_ACTIVE)
		return burst_snr(l, o->h.bx2[lane], o->h.bn[lane]);
	return l->snr_db;
}

enum emg_baseline_src emg_onset_baseline_src(const struct emg_onset *o, unsigned lane)
{
	return lane < o->nlanes ? o->lanes[lane].src : EMG_BASELINE_NONE;
}

void emg_onset_rest_begin(struct emg_onset *o)
{
	for (unsigned i = 0; i < o->nlanes; i++) {
		acc_reset(&o->lanes[i].rest);
		o->h.rsh[i] = 0;
		o->h.rs1[i] = o->h.rs2[i] = o->h.rx1[i] = o->h.rxx[i] = 0;
	}
	o->rest_n = 0;
	o->resting = 1;
}

/* Lane i's rest statistics so far. */
static struct acc rest_acc(const struct emg_onset *o, unsigned i)
{
	struct acc a = o->lanes[i].rest;

	a.n = (double)o->rest_n;
	a.shift = o->h.rsh[i];
	a.s1 = o->h.rs1[i];
	a.s2 = o->h.rs2[i];
	a.x1 = o->h.rx1[i];
	a.x2 = o->h.rxx[i];
	return a;
}

int emg_onset_rest_end(struct emg_onset *o, struct emg_baseline *out)
{
	struct emg_baseline b;

	if (!o->resting)
		return -ENODATA;
	o->resting = 0;
	/* at least one auto block's worth (and a few envelope windows) of rest */
	for (unsigned i = 0; i < o->nlanes; i++) {
		const struct acc a = rest_acc(o, i);
		if (a.n < o->block_n || a.n < 4.0 * o->W || acc_baseline(&a, o->p.method, &b) < 0)
			return -ENODATA;
	}
	for (unsigned i = 0; i < o->nlanes; i++) {
		struct lane *l = &o->lanes[i];
		const struct acc a = rest_acc(o, i);
		acc_baseline(&a, o->p.method, &b);
		l->s2_rest = acc_block_rsd(&a);
		l->rv_rest = a.nrv > 0 ? a.rv / a.nrv : 0.0;
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
	unsigned gate = o->report_n ? o->report_n + o->offset_n : 0;

	return gate > o->confirm_n ? gate : o->confirm_n;
}
