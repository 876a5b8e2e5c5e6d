/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "simd.h"

#if EMG_SIMD_X86
#include <immintrin.h>
#endif

#define CACHELINE 64
/* Floats per cache line: state arrays are padded to this so each starts on its own line. */
#define LINE_FLOATS (CACHELINE / sizeof(float))
/*
 * Chunk of the flush loop.  GCC at -O2 (its "very cheap" vectoriser) only
 * vectorises loops whose trip count is a known multiple of the vector width.
 * The biquads themselves are written with vector extensions (filter_kernel.h).
 */
#define LANES 8
_Static_assert(LINE_FLOATS % LANES == 0, "padded state arrays must hold whole LANES chunks");
/* Frames between two flushes of tiny delay-line values (see FLUSH_BELOW). */
#define FLUSH_EVERY 256u
/*
 * Delay-line values smaller than this are flushed to zero every FLUSH_EVERY frames.
 * A slowly decaying pole (a 50 Hz notch at 16 kHz has radius 0.9997) driven
 * by silence walks its state into the subnormal range and, because rounding
 * a subnormal times 0.9997 can give the same subnormal back, may stay there
 * forever, and subnormal arithmetic is 10-100x slower on x86.  Setting FTZ/DAZ
 * is the caller's thread state and differs between x86 and ARM, so the filter
 * cleans up after itself instead.  1e-30 is over 20 decades below any real
 * sample (µV or V) and 8 decades above FLT_MIN (1.2e-38).  A slow pole needs
 * far more than FLUSH_EVERY frames to fall those 8 decades, so it is flushed
 * before it goes subnormal; a fast pole may go subnormal, but only until the
 * next flush, so the slow path is bounded to FLUSH_EVERY frames per decay.
 */
#define FLUSH_BELOW 1e-30f

/*
 * Lowest high-pass corner, as a fraction of fs, that float32 direct-form
 * coefficients still place accurately.  The poles sit near z = 1 and the
 * low-frequency response hangs on 1 + a1 + a2 = |1 - p|^2, which shrinks as
 * (f/fs)^2 while a1 ~ -2 is only resolved to 1.2e-7.  An order-8 corner at
 * fs/5000 (3.2 Hz at 16 kHz, 0.4 Hz at 2 kHz) is within 0.02 dB, at fs/8000
 * 0.5 dB off, at fs/16000 5 dB off, and lower still the poles round onto the
 * unit circle.
 */
#define HP_MIN_RATIO 5000.0

/* mains = auto: the hum's two lines, then the bins between them that they
 * are judged against (1 Hz apart: orthogonal over the 1 s measured) */
static const double detect_hz[] = { 50.0, 60.0, 52.0, 53.0, 54.0, 56.0, 57.0, 58.0 };
#define NDETECT (sizeof(detect_hz) / sizeof(detect_hz[0]))

/* Normalised biquad (a0 = 1), the coefficients the run loop actually uses. */
struct biquad {
	float b0, b1, b2, a1, a2;
};

struct emg_filter {
	unsigned nch;
	unsigned nsec;       /* all sections: high-pass, notches, low-pass in that order */
	unsigned nnotch;
	size_t stride;       /* floats from one state array to the next (nch padded to a line) */
	double fs;
	double hp_hz;        /* 0 = none */
	double lp_hz;        /* after clamping; 0 = none */
	double mains_hz;     /* 0 = none, EMG_FILTER_MAINS_AUTO until measured */
	struct biquad *sec;
	/* mains = auto: the 50 Hz family runs (sections nhp .. nhp + n50) while
	 * the hum is measured over the first detect_n input frames (Goertzel on
	 * the first difference, which takes out any electrode offset, at
	 * detect_hz); the 60 Hz family waits in alt[n60] */
	unsigned nhp, n50, n60;
	unsigned ngate;      /* gated notches: the lowest GATE_NOTCHES, or 0 (notch_gate = 0) */
	struct biquad *alt;
	uint64_t detect_n, detect_left;
	double *gz;          /* [NDETECT][2][nch] Goertzel states s1, s2 */
	float *xprev;        /* [nch] the last input sample */
	float *z;            /* section s: z1 at z + 2*s*stride, z2 at z + (2*s+1)*stride */
	float *tail;         /* FLUSH_EVERY x 16 scratch for the last partial column of channels */
	float *off;          /* [stride] each channel's offset, taken off all (note_offset()) */
	float *last;         /* [nch] the last input frame (0 before the first) */
	/* gated notches: each channel's 1 / lim (0: no level yet), and the gated
	 * notches' output power summed over the current gate block */
	float *ilim, *acc;   /* [stride] */
	float *dens;         /* [2][stride] each channel's recent share of outliers, and of input beyond lim */
	int32_t *cnt;        /* [stride] frames into its episode of outliers (0: none) */
	float *snap;         /* [2 GATE_NOTCHES][stride] the gated notches' states as it began, turned on since */
	float dens_a;        /* the share's smoothing per frame (GATE_DENS_S) */
	unsigned hold_n;     /* frames an episode must last to be forgotten (GATE_HOLD_S) */
	unsigned hold_max;   /* ... and may last (GATE_MAX_S) */
	float *mins;         /* [nch][GATE_SUBS + 1]: minima of past sub-windows, then the current one's */
	unsigned gpos, glen; /* frames into the gate block, and its length */
	unsigned gblk, gsub; /* blocks into the current sub-window, and its slot in mins */
	uint64_t pos;        /* frames run through the chain since the start or a reset */
	int gap;             /* the next frame follows a gap, or is the first (note_offset()) */
	void (*block)(struct emg_filter *f, float *frames, unsigned n);
};

typedef void (*block_fn)(struct emg_filter *f, float *frames, unsigned n);
static block_fn pick_block(unsigned nch);

/*
 * Gated notches.  A notch is x - bp(x), bp the band-pass of its own band: a
 * resonator that learns the hum.  But it learns whatever else lies in that
 * band, and a Q 30 resonator forgets with a 0.19 s time constant: after a
 * contraction that stops at once it rings on at ~-24 dB of the contraction.
 * At 40 dB SNR that ring stayed above a rest threshold for ~0.5 s: it merged
 * contractions 0.25-0.6 s apart (29 of 45 lost) and put offsets +34 ms late
 * on average, p90 73 ms (bench_onset, second external set).
 *
 * So the lowest notches forget a strong contraction once it is over.  As an
 * episode of outliers begins their states are kept aside (snap); when it
 * ends, if it lasted GATE_HOLD_S to GATE_MAX_S, the states go back to that
 * snapshot turned on to now as a band-pass fed its own output would turn it
 * - poles on the unit circle: without loss, a free-running copy of the hum
 * it had learnt (gate_turn()).  What the contraction put into them is gone,
 * the hum estimate is not, and nothing rings on.  During the contraction,
 * and all the time, the notch is the plain linear notch: the same gain on a
 * contraction whatever its size (levels and %MVC stay comparable), the same
 * shape for every heartbeat (a QRS is shorter than GATE_HOLD_S).  Outliers
 * are samples where both the input and the input less what the notches
 * expect (the hum) lie beyond lim; an episode begins when their share over
 * GATE_DENS_S passes GATE_DENS_ON and ends when it and the share of input
 * beyond lim have fallen under GATE_DENS_OFF - a contraction's input falls
 * back as it ends, while a hum that appears keeps it high as it is learnt,
 * and runs out at GATE_MAX_S without being forgotten.  lim is GATE_K times
 * the RMS of the notches' output at rest, per channel: the quietest
 * GATE_BLOCK_S block of the last 10-11 s (the minimum of GATE_SUBS
 * sub-windows' minima and the current one's); a contraction shorter than
 * that does not raise it, a quieter rest lowers it at once.  With white
 * noise lim is ~15 times its RMS: only contractions ~25 dB and more above
 * rest are forgotten - the ones whose ring would show.
 *
 * What remains: the ring between a contraction's end and the episode's
 * (~20 ms), so at 40 dB offsets still come ~+17 ms late (+34 before; with
 * GATE_DENS_OFF 0.05 the end came ~10 ms later, +19 ms, and more beats and
 * bursts of a real 8-channel recording were forgotten: the ECG stage took
 * 5 % instead of 7 % out of its rest; at 0.25 a contraction's end was seen
 * too early, 7 of 45 merged again).  Tried and not kept: holding the notches
 * during the contraction instead (their output p, no ring at all: offsets
 * -2 ms) - a held contraction then kept its EMG's 50-200 Hz lines, +3-10 %
 * RMS against one too weak to be held, and its envelope peaks up to +14 %;
 * and gating each sample by its size, which changed every heartbeat's shape
 * with its amplitude (the ECG stage took 0-4 % instead of 7 % out of ecg8
 * at rest) and gated the tails of Laplacian noise (misses at 0 dB 33 -> 45
 * of 99).
 */
#define GATE_BLOCK_S 0.05
#define GATE_SUB_BLOCKS 25 /* 1.25 s */
#define GATE_SUBS 8        /* x 1.25 s: the 10 s the level is the minimum of */
#define GATE_K 20.0
#define GATE_DENS_S 0.01
#define GATE_EVERY 4 /* frames per look for outliers: their share needs no finer step */
#define GATE_DENS_ON 0.2f
#define GATE_DENS_OFF 0.15f
#define GATE_HOLD_S 0.1
#define GATE_MAX_S 8.0
/* Only the lowest harmonics' notches are gated: a notch rings for Q / (pi f0),
 * 0.19 s at 50 Hz but under 40 ms from 250 Hz up, and the gate costs (all
 * eight cost ~0.15 ns per channel-sample more than four in bench_dsp, for
 * the same onsets, offsets and merges on the external data). */
#define GATE_NOTCHES 4u
/* Nor at 250 Hz (the Cyton): the band is 20-112 Hz there, the 50 and 100 Hz
 * notches hold much of it, and putting their states back made a step the
 * detector took for onsets - false onsets on the real tibialis recording
 * 0.29 -> 0.72 per minute of rest, plain synth at 40 dB 0.12 -> 0.55 per
 * muscle-minute.  Gated from GATE_MIN_FS up (500 Hz amplifiers and faster). */
#define GATE_MIN_FS 400.0 /* Hz */
_Static_assert(GATE_NOTCHES <= 4, "the gated notches run as one group (filter_kernel.h)");
#define GATE_MIN_LVL 1e-2 /* uV^2: (0.1 uV)^2, under any amplifier's noise */

/*
 * (a1, a2) turned n frames on by the lossless recursion of a notch's
 * band-pass fed its own output, a1' = c2 a1 + a2, a2' = -a1 (filter_kernel.h,
 * scaled states), in closed form: with
 * c2 = 2 cos t, a1 after n frames is a1 U(n) + a2 U(n - 1), U(n) =
 * sin((n + 1) t) / sin t (Chebyshev polynomials of the second kind).
 */
static void gate_turn(float *a1, float *a2, float c2, int32_t n)
{
	const double t = acos(fmax(-1.0, fmin(1.0, 0.5 * c2))), st = sin(t);
	const double u0 = sin((n + 1) * t) / st, u1 = sin(n * t) / st, u2 = sin((n - 1) * t) / st;
	const double x = *a1, y = *a2;

	*a1 = (float)(x * u0 + y * u1);
	*a2 = (float)(-(x * u1 + y * u2));
}

static void gate_reset(struct emg_filter *f)
{
	for (size_t ch = 0; ch < f->stride; ch++) {
		f->ilim[ch] = 0.0f;
		f->acc[ch] = 0.0f;
		f->dens[ch] = f->dens[f->stride + ch] = 0.0f;
		f->cnt[ch] = 0;
	}
	for (size_t i = 0; i < (size_t)f->nch * (GATE_SUBS + 1); i++)
		f->mins[i] = INFINITY;
	memset(f->snap, 0, 2 * GATE_NOTCHES * f->stride * sizeof(float));
	f->gblk = f->gsub = 0;
	f->gpos = 0;
}

/* A gate block ended: each channel's rest level and 1 / lim from its power. */
static void gate_update(struct emg_filter *f)
{
	const int roll = ++f->gblk == GATE_SUB_BLOCKS;

	for (unsigned ch = 0; ch < f->nch; ch++) {
		float *m = f->mins + (size_t)ch * (GATE_SUBS + 1), *cur = m + GATE_SUBS;
		const float p = f->acc[ch] / (float)f->glen;
		float l = INFINITY;

		f->acc[ch] = 0.0f;
		if (p > 0.0f && p < *cur) /* a channel of zeros tells nothing */
			*cur = p;
		for (unsigned i = 0; i <= GATE_SUBS; i++)
			l = m[i] < l ? m[i] : l;
		if (roll) {
			m[f->gsub] = *cur;
			*cur = INFINITY;
		}
		if (l < INFINITY) {
			l = l < GATE_MIN_LVL ? (float)GATE_MIN_LVL : l;
			f->ilim[ch] = (float)(1.0 / (GATE_K * sqrt(l)));
		}
	}
	if (roll) {
		f->gblk = 0;
		f->gsub = (f->gsub + 1) % GATE_SUBS;
	}
	f->gpos = 0;
}

void emg_filter_spec_default(struct emg_filter_spec *s)
{
	s->highpass_hz = 20.0;
	s->highpass_order = 2;
	s->lowpass_hz = 450.0;
	s->lowpass_order = 4;
	s->mains_hz = EMG_FILTER_MAINS_AUTO;
	s->notch_q = 30.0;
	s->notch_gate = 1;
}

int emg_filter_mains_parse(const char *s, double *hz)
{
	if (!strcmp(s, "auto"))
		*hz = EMG_FILTER_MAINS_AUTO;
	else if (!strcmp(s, "50"))
		*hz = 50.0;
	else if (!strcmp(s, "60"))
		*hz = 60.0;
	else if (!strcmp(s, "off"))
		*hz = 0.0;
	else
		return -EINVAL;
	return 0;
}

static int order_ok(unsigned n)
{
	return n >= 2 && n <= 8 && n % 2 == 0;
}

/*
 * Q of pole pair k of an order-n Butterworth: the analogue poles sit at angles
 * pi*(2k+1)/(2n) from the negative real axis, and Q = 1/(2 cos angle).
 */
static double butter_q(unsigned n, unsigned k)
{
	return 1.0 / (2.0 * cos(M_PI * (2.0 * k + 1.0) / (2.0 * n)));
}

static void store(struct biquad *bq, double b0, double b1, double b2, double a0, double a1,
		  double a2)
{
	bq->b0 = (float)(b0 / a0);
	bq->b1 = (float)(b1 / a0);
	bq->b2 = (float)(b2 / a0);
	bq->a1 = (float)(a1 / a0);
	bq->a2 = (float)(a2 / a0);
}

/*
 * RBJ cookbook sections.  With the cookbook's tan-free w0 = 2 pi f/fs these
 * are exactly the bilinear transform of the analogue prototype pre-warped to
 * f, so a cascade with Butterworth Qs is the bilinear Butterworth.
 */
static void design_lowpass(struct biquad *bq, double f, double fs, double q)
{
	double w = 2.0 * M_PI * f / fs, c = cos(w), alpha = sin(w) / (2.0 * q);

	store(bq, (1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0, 1.0 + alpha, -2.0 * c, 1.0 - alpha);
	/* Make b1 = 2 b0 = 2 b2 exact in float so the zeros stay exactly at Nyquist. */
	bq->b1 = 2.0f * bq->b0;
	bq->b2 = bq->b0;
}

static void design_highpass(struct biquad *bq, double f, double fs, double q)
{
	double w = 2.0 * M_PI * f / fs, c = cos(w), alpha = sin(w) / (2.0 * q);

	store(bq, (1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0, 1.0 + alpha, -2.0 * c, 1.0 - alpha);
	/* Exact double zero at DC in float too: an electrode offset is removed completely. */
	bq->b1 = -2.0f * bq->b0;
	bq->b2 = bq->b0;
}

/*
 * The cookbook notch with alpha = tan(w0/(2Q)) instead of sin(w0)/(2Q): its
 * -3 dB width is then exactly f0/Q Hz at any rate (the cookbook's Q is an
 * analogue-domain Q, and bilinear warping narrows the digital notch by
 * sin(w0)/w0, e.g. a 100 Hz notch at 250 Hz to a quarter of f0/Q).  The two
 * agree for f0 << fs.
 */
static void design_notch(struct biquad *bq, double f, double fs, double q)
{
	double w = 2.0 * M_PI * f / fs, c = cos(w), alpha = tan(w / (2.0 * q));

	store(bq, 1.0, -2.0 * c, 1.0, 1.0 + alpha, -2.0 * c, 1.0 - alpha);
	/* b0 = b2 keeps the zeros on the unit circle whatever the rounding of b1. */
	bq->b2 = bq->b0;
}

/* Notch sections for mains at hz: its harmonics strictly below `top` (the
 * low-pass corner, which removes the rest) and Nyquist. */
static unsigned harmonics(double hz, double top, double fs)
{
	unsigned n = 0;

	while ((n + 1) * hz < top && (n + 1) * hz < 0.5 * fs)
		n++;
	return n;
}

/*
 * Mains may be 0 (off), EMG_FILTER_MAINS_AUTO, or anywhere in 40..70 Hz
 * rather than only 50 or 60, so
 * an off-nominal grid or a generator can be matched.  notch_q is held to
 * 1..1000: below 1 a notch is wider than its own frequency (and near Nyquist
 * alpha = tan(w0/2Q) would leave the unit circle), above 1000 it is narrower
 * than mains drift and its poles crowd the float resolution at 1.  notch_q
 * and both orders are checked even when their stage is off, so a bad value is
 * caught before someone switches the stage on.
 */
static int spec_valid(const struct emg_filter_spec *s, double fs, unsigned nch, double *lp)
{
	if (!(fs >= EMG_FILTER_MIN_RATE && fs <= EMG_FILTER_MAX_RATE) || nch < 1)
		return 0;
	if (!order_ok(s->highpass_order) || !order_ok(s->lowpass_order))
		return 0;
	if (!(s->notch_q >= 1.0 && s->notch_q <= 1000.0))
		return 0;
	if (!(s->mains_hz == 0.0 || s->mains_hz == EMG_FILTER_MAINS_AUTO ||
	      (s->mains_hz >= 40.0 && s->mains_hz <= 70.0)))
		return 0;
	if (!(s->lowpass_hz >= 0.0 && isfinite(s->lowpass_hz)))
		return 0;
	if (!(s->highpass_hz >= 0.0 && s->highpass_hz < 0.5 * fs))
		return 0;
	if (s->highpass_hz > 0.0 && s->highpass_hz < fs / HP_MIN_RATIO)
		return 0;
	*lp = s->lowpass_hz > 0.45 * fs ? 0.45 * fs : s->lowpass_hz;
	if (*lp > 0.0 && s->highpass_hz >= *lp)
		return 0;
	return 1;
}

int emg_filter_new(struct emg_filter **out, const struct emg_filter_spec *s, double fs,
		   unsigned nch)
{
	struct emg_filter *f;
	double lp, top;
	unsigned nhp, nlp, nnotch, i;
	size_t stride, bytes;
	struct biquad *bq;

	if (!out || !s || !spec_valid(s, fs, nch, &lp))
		return -EINVAL;

	nhp = s->highpass_hz > 0.0 ? s->highpass_order / 2 : 0;
	nlp = lp > 0.0 ? s->lowpass_order / 2 : 0;
	/* Harmonics strictly below the low-pass corner (which already removes the rest) and Nyquist. */
	top = lp > 0.0 ? lp : 0.5 * fs;
	const int autom = s->mains_hz == EMG_FILTER_MAINS_AUTO;
	const unsigned n50 = autom ? harmonics(50.0, top, fs) : 0;
	const unsigned n60 = autom ? harmonics(60.0, top, fs) : 0;

	/* auto: room for the larger family, the 50 Hz one (lower, so at least as many harmonics) */
	nnotch = autom ? n50 : s->mains_hz > 0.0 ? harmonics(s->mains_hz, top, fs) : 0;

	stride = ((size_t)nch + LINE_FLOATS - 1) / LINE_FLOATS * LINE_FLOATS;
	if (stride > SIZE_MAX / sizeof(float) / 2 / (nhp + nlp + nnotch + 1))
		return -ENOMEM;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->nch = nch;
	f->nsec = nhp + nnotch + nlp;
	f->nnotch = nnotch;
	f->stride = stride;
	f->fs = fs;
	f->hp_hz = s->highpass_hz;
	f->lp_hz = lp;
	f->mains_hz = s->mains_hz;
	f->nhp = nhp;
	f->n50 = n50;
	f->n60 = n60;
	if (autom) {
		f->detect_n = f->detect_left = (uint64_t)fs; /* one second */
		f->gz = calloc(2 * NDETECT * (size_t)nch, sizeof(*f->gz));
		f->xprev = calloc(nch, sizeof(*f->xprev));
		f->alt = calloc(n60 ? n60 : 1, sizeof(*f->alt));
		if (!f->gz || !f->xprev || !f->alt) {
			emg_filter_free(f);
			return -ENOMEM;
		}
	}

	f->sec = calloc(f->nsec ? f->nsec : 1, sizeof(*f->sec));
	bytes = (f->nsec ? f->nsec : 1) * 2 * stride * sizeof(float);
	f->z = aligned_alloc(CACHELINE, bytes);
	f->tail = aligned_alloc(CACHELINE, FLUSH_EVERY * LINE_FLOATS * sizeof(float));
	f->block = pick_block(nch);
	f->off = calloc(stride, sizeof(*f->off)); /* padded: the kernels read whole columns */
	f->last = calloc(nch, sizeof(*f->last));
	f->ilim = aligned_alloc(CACHELINE, stride * sizeof(float));
	f->acc = aligned_alloc(CACHELINE, stride * sizeof(float));
	f->dens = aligned_alloc(CACHELINE, 2 * stride * sizeof(float));
	f->cnt = aligned_alloc(CACHELINE, stride * sizeof(int32_t));
	f->snap = aligned_alloc(CACHELINE, 2 * GATE_NOTCHES * stride * sizeof(float));
	f->hold_n = (unsigned)lround(GATE_HOLD_S * fs);
	f->hold_max = (unsigned)lround(GATE_MAX_S * fs);
	f->dens_a = (float)(1.0 - exp(-(double)GATE_EVERY / (GATE_DENS_S * fs)));
	f->mins = malloc((size_t)nch * (GATE_SUBS + 1) * sizeof(*f->mins));
	f->glen = (unsigned)lround(GATE_BLOCK_S * fs);
	f->ngate = s->notch_gate && fs >= GATE_MIN_FS ? GATE_NOTCHES : 0;
	f->gap = 1;
	if (!f->sec || !f->z || !f->tail || !f->off || !f->last || !f->ilim || !f->acc || !f->dens ||
	    !f->cnt || !f->snap || !f->mins) {
		emg_filter_free(f);
		return -ENOMEM;
	}
	memset(f->z, 0, bytes);
	gate_reset(f);

	/*
	 * High-pass first so a large electrode offset never reaches the
	 * high-Q notches; low-pass last so it also smooths the notches'
	 * round-off noise above the band.
	 */
	bq = f->sec;
	for (i = 0; i < nhp; i++)
		design_highpass(bq++, s->highpass_hz, fs, butter_q(s->highpass_order, i));
	if (autom) {
		for (i = 0; i < n50; i++)
			design_notch(bq++, (i + 1) * 50.0, fs, s->notch_q);
		for (i = 0; i < n60; i++)
			design_notch(&f->alt[i], (i + 1) * 60.0, fs, s->notch_q);
	} else {
		for (i = 0; i < nnotch; i++)
			design_notch(bq++, (i + 1) * s->mains_hz, fs, s->notch_q);
	}
	for (i = 0; i < nlp; i++)
		design_lowpass(bq++, lp, fs, butter_q(s->lowpass_order, i));

	/* Belt and braces behind HP_MIN_RATIO and the notch_q limits: never hand out an unstable chain. */
	if (emg_filter_max_pole_radius(f) >= 1.0) {
		emg_filter_free(f);
		return -EINVAL;
	}
	*out = f;
	return 0;
}

void emg_filter_free(struct emg_filter *f)
{
	if (!f)
		return;
	free(f->z);
	free(f->tail);
	free(f->sec);
	free(f->gz);
	free(f->xprev);
	free(f->off);
	free(f->last);
	free(f->alt);
	free(f->ilim);
	free(f->acc);
	free(f->dens);
	free(f->cnt);
	free(f->snap);
	free(f->mins);
	free(f);
}

/* See FLUSH_BELOW.  n is a multiple of LANES (the padded stride); branch-free, so it vectorises. */
static void flush_tiny(float *restrict z, size_t n)
{
	for (size_t c = 0; c < n; c += LANES)
		for (size_t j = 0; j < LANES; j++)
			z[c + j] = fabsf(z[c + j]) < FLUSH_BELOW ? 0.0f : z[c + j];
}

/*
 * The run loop, once per ISA level (simd.h).  Per channel and section it is
 * transposed direct form II:
 *
 *	y  = b0 x + z1
 *	z1 = b1 x - a1 y + z2
 *	z2 = b2 x - a2 y
 *
 * in float32; the kernels differ only in how many channels one instruction
 * takes and, on x86-64-v3/v4, in fusing multiply-adds (ISO C mode leaves
 * contraction off; it is switched on for those two).
 */
#define FRAMES_PER_PASS 32u
#define EMG_KERNEL "filter_kernel.h"
#define EMG_KERNEL_CONTRACT
#include "simd_kernels.h"

static block_fn pick_block(unsigned nch)
{
#if EMG_SIMD_X86
	switch (emg_simd_level()) {
	case 4:
		return nch >= 16 ? block_v4 : block_v4_8;
	case 3:
		return block_v3;
	}
#endif
	(void)nch;
	return block_base;
}

/*
 * mains = auto, over the first second of input: the Goertzel power of the
 * first difference at 50 and 60 Hz and at six bins between them, summed over
 * channels.  The 60 Hz family replaces the 50 Hz one when 60 Hz stands
 * HUM_RATIO over the mean of those bins and over 50 Hz; otherwise the chain
 * stays as it ran, the 50 Hz default, sample for sample.  The 60 Hz notches
 * start from rest and settle (time constant Q / (pi f), 0.16 s at Q 30); the
 * low-pass sections move down, states and all.  A real hum stands 30 dB and
 * more over its neighbours in a raw recording; a line of noise alone beats
 * six bins' mean by 10 dB about once in 360 streams (it did, on one external
 * trial with Laplacian noise), by 20 dB about once in 3e7.
 */
#define HUM_RATIO 100.0 /* 20 dB */

static void detect_feed(struct emg_filter *f, const float *frames, unsigned n)
{
	const unsigned nch = f->nch;

	if (f->detect_left == f->detect_n) /* the first frame: no difference yet (an offset is no step) */
		memcpy(f->xprev, frames, sizeof(float) * nch);
	for (unsigned k = 0; k < NDETECT; k++) {
		const double c = 2.0 * cos(2.0 * M_PI * detect_hz[k] / f->fs);
		double *s1 = f->gz + (size_t)(2 * k) * nch, *s2 = s1 + nch;

		for (unsigned j = 0; j < n; j++) {
			const float *x = frames + (size_t)j * nch;
			const float *xp = j ? x - nch : f->xprev;

			for (unsigned ch = 0; ch < nch; ch++) {
				const double s = ((double)x[ch] - xp[ch]) + c * s1[ch] - s2[ch];

				s2[ch] = s1[ch];
				s1[ch] = s;
			}
		}
	}
	memcpy(f->xprev, frames + (size_t)(n - 1) * nch, sizeof(float) * nch);
}

static void detect_decide(struct emg_filter *f)
{
	double p[NDETECT] = { 0 }, ref = 0;
	const unsigned nch = f->nch;

	for (unsigned k = 0; k < NDETECT; k++) {
		const double w = 2.0 * M_PI * detect_hz[k] / f->fs, c = 2.0 * cos(w);
		const double *s1 = f->gz + (size_t)(2 * k) * nch, *s2 = s1 + nch;
		const double diff = 4.0 * sin(0.5 * w) * sin(0.5 * w); /* |1 - e^-jw|^2 */

		for (unsigned ch = 0; ch < nch; ch++)
			p[k] += (s1[ch] * s1[ch] + s2[ch] * s2[ch] - c * s1[ch] * s2[ch]) / diff;
	}
	for (unsigned k = 2; k < NDETECT; k++)
		ref += p[k] / (NDETECT - 2);
	f->mains_hz = 50.0;
	if (!(p[1] > HUM_RATIO * ref && p[1] > p[0]) || !f->n50)
		return;
	/* [nhp, nhp + n50) the 50 Hz family, then the low-pass: the 60 Hz one (n60 <= n50) in its place */
	const unsigned lp = f->nhp + f->n50, nlp = f->nsec - lp;

	memmove(f->sec + f->nhp + f->n60, f->sec + lp, nlp * sizeof(*f->sec));
	memmove(f->z + 2 * (size_t)(f->nhp + f->n60) * f->stride, f->z + 2 * (size_t)lp * f->stride,
		2 * (size_t)nlp * f->stride * sizeof(float));
	memcpy(f->sec + f->nhp, f->alt, f->n60 * sizeof(*f->sec));
	memset(f->z + 2 * (size_t)f->nhp * f->stride, 0, 2 * (size_t)f->n60 * f->stride * sizeof(float));
	f->nsec -= f->n50 - f->n60;
	f->nnotch = f->n60;
	f->mains_hz = 60.0;
	gate_reset(f); /* an episode's snapshot is of the 50 Hz notches */
}

static void run_chain(struct emg_filter *f, float *frames, unsigned nframes)
{
	const int gated = f->nnotch && f->ngate;

	while (nframes > 0) {
		unsigned n = nframes < FLUSH_EVERY ? nframes : FLUSH_EVERY;

		/* gate blocks end at fixed frames, whatever the caller's blocks */
		if (gated && n > f->glen - f->gpos)
			n = f->glen - f->gpos;
		f->block(f, frames, n);
		flush_tiny(f->z, 2 * (size_t)f->nsec * f->stride);
		f->pos += n;
		if (gated && (f->gpos += n) == f->glen)
			gate_update(f);
		frames += (size_t)n * f->nch;
		nframes -= n;
	}
}

/*
 * An ADS1299 amplifier is DC-coupled: electrode offsets of tens to hundreds
 * of mV come with the first sample.  Filtered as they are, they did harm
 * twice.  From rest, the step rang through the high-pass into the Q 30
 * notches (time constant 0.19 s) for 1-2 s and spoiled the first baselines:
 * with a 100 mV offset 8 of the external set's 99 contractions were missed
 * (those starting 0.5-1.1 s in), 1 without.  And float states that hold
 * hundreds of mV round off far above the EMG: with 300 mV, 2.5 uV of noise
 * at 2 kHz, 52 uV at 16 kHz (the high-pass poles sit near z = 1).  A chain
 * with a high-pass passes no DC, so each channel's first sample is
 * subtracted from all that follow, before the sections: the same output as
 * if the offset had always been there (the filter is linear), from the first
 * sample, and the states hold only what the offset drifts since.
 */
/* The stream starts (offset and last frame 0: the offset becomes the first
 * frame) or resumes after a gap (emg_filter_gap()): the input's jump from the
 * last frame is added to the offset. */
static void note_offset(struct emg_filter *f, const float *frames)
{
	for (unsigned ch = 0; ch < f->nch; ch++)
		f->off[ch] += frames[ch] - f->last[ch];
	f->gap = 0;
}

void emg_filter_gap(struct emg_filter *f)
{
	f->gap = 1;
	gate_reset(f); /* what resumes may sit at another level */
}

void emg_filter_run(struct emg_filter *f, float *frames, unsigned nframes)
{
	if (f->nhp && nframes) {
		if (f->gap)
			note_offset(f, frames); /* the sections take it off (filter_kernel.h) */
		memcpy(f->last, frames + (size_t)(nframes - 1) * f->nch, sizeof(float) * f->nch);
	}
	if (f->detect_left && nframes) {
		/* up to the end of the first second with the chain that measured it,
		 * whatever the block sizes: the same output for any split */
		const unsigned n = f->detect_left < nframes ? (unsigned)f->detect_left : nframes;

		detect_feed(f, frames, n);
		run_chain(f, frames, n);
		f->detect_left -= n;
		if (!f->detect_left)
			detect_decide(f);
		frames += (size_t)n * f->nch;
		nframes -= n;
	}
	run_chain(f, frames, nframes);
}

void emg_filter_reset(struct emg_filter *f)
{
	memset(f->z, 0, (f->nsec ? f->nsec : 1) * 2 * f->stride * sizeof(float));
	memset(f->off, 0, f->stride * sizeof(float));
	memset(f->last, 0, f->nch * sizeof(float));
	f->gap = 1;
	f->pos = 0;
	gate_reset(f);
}

double emg_filter_response_db(const struct emg_filter *f, double hz)
{
	double w = 2.0 * M_PI * hz / f->fs;
	/* z^-1 and z^-2 on the unit circle */
	double c1 = cos(w), s1 = -sin(w), c2 = cos(2.0 * w), s2 = -sin(2.0 * w);
	double mag2 = 1.0;

	for (unsigned i = 0; i < f->nsec; i++) {
		const struct biquad *bq = &f->sec[i];
		double nr = bq->b0 + bq->b1 * c1 + bq->b2 * c2;
		double ni = bq->b1 * s1 + bq->b2 * s2;
		double dr = 1.0 + bq->a1 * c1 + bq->a2 * c2;
		double di = bq->a1 * s1 + bq->a2 * s2;

		mag2 *= (nr * nr + ni * ni) / (dr * dr + di * di);
	}
	return 10.0 * log10(mag2);
}

double emg_filter_lowpass_hz(const struct emg_filter *f)
{
	return f->lp_hz;
}

unsigned emg_filter_sections(const struct emg_filter *f)
{
	return f->nsec;
}

unsigned emg_filter_notches(const struct emg_filter *f)
{
	return f->nnotch;
}

double emg_filter_mains_hz(const struct emg_filter *f)
{
	return f->nnotch || f->mains_hz == EMG_FILTER_MAINS_AUTO ? f->mains_hz : 0.0;
}

int emg_filter_section(const struct emg_filter *f, unsigned i, float b[3], float a[3])
{
	if (i >= f->nsec)
		return -EINVAL;
	b[0] = f->sec[i].b0;
	b[1] = f->sec[i].b1;
	b[2] = f->sec[i].b2;
	a[0] = 1.0f;
	a[1] = f->sec[i].a1;
	a[2] = f->sec[i].a2;
	return 0;
}

double emg_filter_max_pole_radius(const struct emg_filter *f)
{
	double rmax = 0.0;

	for (unsigned i = 0; i < f->nsec; i++) {
		/* roots of z^2 + a1 z + a2 */
		double a1 = f->sec[i].a1, a2 = f->sec[i].a2;
		double d = a1 * a1 - 4.0 * a2, r;

		if (d < 0.0) {
			r = sqrt(a2); /* complex pair: |p|^2 = a2 */
		} else {
			double sq = sqrt(d);

			r = fmax(fabs(-a1 + sq), fabs(-a1 - sq)) / 2.0;
		}
		rmax = fmax(rmax, r);
	}
	return rmax;
}

int emg_filter_describe(const struct emg_filter *f, char *buf, size_t len)
{
	char hp[32], lp[32], n[32];

	if (f->hp_hz > 0.0)
		snprintf(hp, sizeof(hp), "%gHz", f->hp_hz);
	else
		snprintf(hp, sizeof(hp), "off");
	if (f->lp_hz > 0.0)
		snprintf(lp, sizeof(lp), "%gHz", f->lp_hz);
	else
		snprintf(lp, sizeof(lp), "off");
	/* "off" also when the mains frequency lies above the low-pass corner: no notch runs. */
	if (f->mains_hz == EMG_FILTER_MAINS_AUTO)
		snprintf(n, sizeof(n), "auto");
	else if (f->nnotch > 0)
		snprintf(n, sizeof(n), "%gHz", f->mains_hz);
	else
		snprintf(n, sizeof(n), "off");
	return snprintf(buf, len, "HP:%s LP:%s N:%s", hp, lp, n);
}
