/* SPDX-License-Identifier: MIT */
/*
 * emg_synth: a realistic synthetic sEMG amplifier with ground truth.
 *
 * Signal model, per channel c and sample n (all in uV):
 *
 *   x[n] = a[n] * m[n] * g_c * shaped[n]      surface EMG of the mapped muscle
 *        + sigma_c * w[n]                     instrumentation noise (white)
 *        + hum[n] + wander[n] + pop[n]        artefacts, each can be switched off
 *
 * - shaped[n]: white Gaussian noise (ziggurat on xoshiro256**) through the
 *   Shwedyk/De Luca sEMG spectrum H(s) = s / ((s + wl)(s + wh)^2) with
 *   fl = 100 Hz, fh = 150 Hz (three first-order sections, bilinear transform
 *   with pre-warping).  At 2 kHz: PSD peak ~92 Hz, median ~125 Hz, 98 % of the
 *   power in 20-450 Hz, 88 % in 20-250 Hz, 0.6 % above 500 Hz.
 * - g_c: scales the shaped noise to the muscle's EMG RMS at 100 % MVC
 *   (broadband; 98 % of it lies in 20-450 Hz): glute_max 250, glute_med 200,
 *   hip_flex 150, hamstring 200, erector 150 uV.
 * - a[n]: the script's envelope, a fraction of MVC (0 at rest, up to 2):
 *   half-cosine rise of 20-40 ms, plateau, half-cosine fall of 50-100 ms.
 *   truth onset = first sample of the rise (already > 0), truth offset = first
 *   sample after the fall (== 0 again).
 * - m[n] = 1 + 0.04 cos(2 pi f1 n) + 0.03 cos(2 pi f2 n): slow plateau
 *   fluctuation (f1 in 0.7-1.5 Hz, f2 in 2-4 Hz, random phases per channel).
 *
 * SNR definition (cfg->snr_db): the reference signal S is the EMG RMS on the
 * plateau of a 50 % MVC burst, S = 0.5 * mvc_uv of the channel's muscle; the
 * noise N is the instrumentation noise RMS inside the 20-450 Hz band (upper
 * edge clamped to 0.45 fs like the DSP chain).  snr_db = 20 log10(S / N); the
 * white noise sigma is N / sqrt(band / (fs/2)).  Channels without EMG use a
 * 200 uV reference so that their noise looks like a muscle's.  snr_db =
 * +INFINITY turns the instrumentation noise off (a test knob: then the signal
 * is exactly 0 outside bursts when the artefacts are off).
 *
 * Artefacts:
 * - hum: peak amplitude cfg->mains_uv at cfg->mains_hz on every channel, 3rd
 *   harmonic 0.3x, 5th 0.15x (harmonics at or above fs/2 left out), random
 *   phase per channel and harmonic;
 * - wander: three sinusoids 0.1-0.5 Hz of 40-100 uV with random phases plus
 *   an Ornstein-Uhlenbeck random walk (tau 3 s, SD 40 uV): ~100 uV RMS, peaks
 *   of a few hundred uV;
 * - pops: Poisson, mean one every 30 s per channel: a step of 200-1000 uV
 *   (random sign) decaying exponentially with tau 17-67 ms (gone to 5 % after
 *   50-200 ms).  Pops are artefacts: never listed in the truth.
 * Every channel has independent random streams for EMG, noise, wander and
 * pops, so switching one artefact off leaves the other components identical.
 *
 * The slow components (plateau fluctuation, wander) are evaluated every ~8 ms
 * ("knots", a power-of-two number of samples) and linearly interpolated.
 *
 * Determinism: all state advances one sample at a time; oscillators are
 * re-derived exactly from the absolute sample index every 4096 samples and
 * blocks are split internally at those points, so the output depends only on
 * the config and the sample index, not on how generate() calls are split.
 *
 * Scripts (cfg->scenario) are built up front into per-channel burst tables
 * that repeat every emg_synth_script_length() samples (see the exercise
 * tables below): each exercise has a >= 2.85 s rest lead-in, then its reps.
 * The muscle role comes from the name prefix (emg_muscle_role), the side from
 * the map; side "none" follows the left-side script.  Muscles mapped to a
 * channel >= cfg->channels are ignored.  Config values are taken as given
 * (a zeroed config means snr_db = 0 dB; emg_device_config_default gives 30).
 *
 * Cost (x86-64, -O2): ~12-16 ns per channel-sample with every artefact on.
 *
 * Everything above is cfg->realism = plain, and stays so bit for bit.  The
 * realistic mode adds, each switchable (cfg->ramps, tonic, crosstalk,
 * motion, ecg_uv > 0), each drawing from its own random streams so that
 * switching one off leaves the others identical, and with all of them off
 * realistic output equals plain output sample for sample:
 *
 * - ramps: each burst rises over 20-300 ms (uniform, per burst from the
 *   seed) with a linear (40 %), smoothstep (30 %) or raised-cosine (30 %)
 *   force profile, and decays over 50-300 ms, linear, raised-cosine or
 *   quadratic (fast, then an exponential-like tail), a third each.  Every
 *   profile is exactly 0 before the onset and > 0 from it: a[onset] =
 *   amp * p(1 / (rise + 1)).  EMG amplitude follows force (RMS = a * MVC
 *   RMS), times a motor-unit-like random gain 1 + g, g band-limited to
 *   2-10 Hz (difference of two unity-gain one-pole low-passes at 10 and 2 Hz
 *   driven by the same white noise, evaluated at knots), SD 8-12 % per
 *   channel (excursions of +-15-25 %), clamped to [0.5, 1.5]; plus MU-like
 *   spikes: Poisson candidates at 8/s, fired while a >= 0.05 and the spike
 *   ends inside the burst, a biphasic MUAP (Gaussian derivative, sigma
 *   1.5 ms) of peak 2-4 x the EMG RMS at that activation.
 * - tonic: a constant 2-3 % MVC drive on erector spinae, 1-2 % on hip
 *   flexors and glute med (glute max, hamstrings: none) added to a[n] in the
 *   EMG, so it carries the same fluctuation; not activation, not in the truth.
 * - crosstalk: a muscle's EMG leaks into its neighbours of the same side,
 *   through two first-order low-passes at 150 Hz (volume conduction; ~2 ms
 *   group delay), scaled so the leaked RMS is k x the neighbour's EMG RMS:
 *   glute_med <-> hip_flex (TFL) k = 12-18 %, glute_max <-> glute_med 10-14 %,
 *   glute_max <-> hamstring 8.5-11.5 %.  Leaked EMG is never a burst of the
 *   receiving channel in the truth list.
 * - ecg (cfg->ecg_uv > 0): one heart for all channels.  R peaks at 60-90 bpm
 *   (mean, from the seed), RR_k = RR (1 + 0.025 sin(respiration) + 0.03 z_k),
 *   z_k standard normal clipped to +-2.5, RR clamped to 50-110 bpm: 3-5 %
 *   beat-to-beat variability.  Beat = sum of Gaussians (McSharry-like):
 *   P -200 ms (sigma 25 ms), Q -28 ms (8), R 0 (8.5), S +30 ms (9), T at
 *   0.27 sqrt(RR/s) s (45): QRS ~90 ms, sharp R, broad T.  Per channel
 *   weights (P 0.06-0.15, Q 0.05-0.2, S 0.1-0.45, T 0.15-0.4 of R) and
 *   polarity (a quarter of the channels inverted) vary; the peak |ECG| of a
 *   beat on channel c is ecg_uv * ecg_gain(c) / max over mapped channels of
 *   ecg_gain: ecg_uv is the amplitude on the strongest channel.  ecg_gain,
 *   closer to the heart (upper, left) is stronger:
 *
 *       role       left  right  none
 *       erector    1.00  0.70   0.85
 *       hip_flex   0.80  0.50   0.65
 *       glute_med  0.55  0.35   0.45
 *       glute_max  0.40  0.25   0.32
 *       hamstring  0.20  0.12   0.16
 *       other      0.60  0.40   0.50   (a mapped muscle of unknown role)
 *
 *   Channels no muscle is mapped to get neither ECG nor motion artefacts.
 * - motion: at the start of every movement, 30-100 ms after the rep's first
 *   activation (the electromechanical delay: a limb moves only once its
 *   prime mover has fired, Cavanagh & Komi 1979), every mapped channel gets
 *   A (t/tau) e^(1 - t/tau) with A = 40-250 uV per rep x 0.3-1.0 per channel,
 *   random sign, tau 40-120 ms, plus an in-band 20-35 Hz damped oscillation
 *   (10-25 % of A, decay 30-60 ms); it lasts 12 tau.  Not in the truth.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paced.h"
#include "synth.h"
#include "../muscles.h"

#define CHUNK 256          /* frames per internal block (scratch size) */
#define RESYNC 4096u       /* oscillators re-derived exactly at multiples of this index */
#define PHYS_MAX_UV 10000.0 /* amplifier range: output clipped to +-10 mV */
#define TRUTH_MIN_MVC 0.10 /* bursts below this plateau are generated but not listed */
#define SHAPE_FL 100.0
#define SHAPE_FH 150.0
#define OTHER_REF_UV 200.0

/* ---------------------------------------------------------------- random */

struct rng {
	uint64_t s[4];
};

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0 (Blackman & Vigna). */
static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	const uint64_t result = rotl64(s[1] * 5, 7) * 9;
	const uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A hash of a few small integers and the seed. */
static uint64_t hash(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t x = seed;
	uint64_t h = splitmix64(&x);

	x = h ^ (a * 0xD1B54A32D192ED03ull);
	h = splitmix64(&x);
	x = h ^ (b * 0xABC98388FB8FAC03ull);
	h = splitmix64(&x);
	x = h ^ (c * 0x8CB92BA72F3D8DD7ull);
	return splitmix64(&x);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

/* Uniform in (0, 1). */
static inline double rng_uni(struct rng *r)
{
	return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Uniform in [-1, 1) from a hash. */
static double hjit(uint64_t h)
{
	return (double)(h >> 11) * 0x1.0p-52 - 1.0;
}

/* Ziggurat tables (Marsaglia & Tsang 2000, 128 layers). */
struct zig {
	uint32_t kn[128];
	double wn[128], fn[128];
};

#define ZIG_R 3.442619855899

static void zig_init(struct zig *z)
{
	const double m1 = 2147483648.0;
	double dn = ZIG_R, tn = dn, vn = 9.91256303526217e-3;
	double q = vn / exp(-0.5 * dn * dn);

	z->kn[0] = (uint32_t)((dn / q) * m1);
	z->kn[1] = 0;
	z->wn[0] = q / m1;
	z->wn[127] = dn / m1;
	z->fn[0] = 1.0;
	z->fn[127] = exp(-0.5 * dn * dn);
	for (int i = 126; i >= 1; i--) {
		dn = sqrt(-2.0 * log(vn / dn + exp(-0.5 * dn * dn)));
		z->kn[i + 1] = (uint32_t)((dn / tn) * m1);
		tn = dn;
		z->fn[i] = exp(-0.5 * dn * dn);
		z->wn[i] = dn / m1;
	}
}

static double zig_slow(const struct zig *z, struct rng *r, int32_t hz, unsigned iz)
{
	for (;;) {
		double x = hz * z->wn[iz];

		if (iz == 0) {
			double xx, y;

			do {
				xx = -log(rng_uni(r)) / ZIG_R;
				y = -log(rng_uni(r));
			} while (y + y < xx * xx);
			return hz > 0 ? ZIG_R + xx : -ZIG_R - xx;
		}
		if (z->fn[iz] + rng_uni(r) * (z->fn[iz - 1] - z->fn[iz]) < exp(-0.5 * x * x))
			return x;
		uint64_t u = rng_next(r);
		hz = (int32_t)(uint32_t)(u >> 32);
		iz = (unsigned)(u & 127);
		if ((uint32_t)(hz < 0 ? -(int64_t)hz : hz) < z->kn[iz])
			return hz * z->wn[iz];
	}
}

/* Standard normal deviate. */
static inline double zig_normal(const struct zig *z, struct rng *r)
{
	uint64_t u = rng_next(r);
	int32_t hz = (int32_t)(uint32_t)(u >> 32);
	unsigned iz = (unsigned)(u & 127);

	if ((uint32_t)(hz < 0 ? -(int64_t)hz : hz) < z->kn[iz])
		return hz * z->wn[iz];
	return zig_slow(z, r, hz, iz);
}

/* ----------------------------------------------------------- oscillators */

/* cos/sin phasor advanced by complex rotation, re-derived at RESYNC points. */
struct osc {
	double re, im;  /* cos, sin of the phase at the current sample */
	double c, s;    /* rotation per step */
	double cyc;     /* cycles per sample */
	double ph;      /* phase at sample 0, cycles */
};

/* An oscillator advanced by `step` samples per osc_step(). */
static void osc_init(struct osc *o, double cycles_per_sample, double phase_cycles, unsigned step)
{
	o->cyc = cycles_per_sample;
	o->ph = phase_cycles;
	o->c = cos(2 * M_PI * cycles_per_sample * step);
	o->s = sin(2 * M_PI * cycles_per_sample * step);
	o->re = cos(2 * M_PI * phase_cycles);
	o->im = sin(2 * M_PI * phase_cycles);
}

/*
 * osc_init() at a random phase and a frequency uniform in [lo, lo + span) Hz.  The two
 * draws are separate statements: as two arguments of one call they are unsequenced in C,
 * and x86-64 GCC drew the phase first, aarch64 GCC the frequency, so one seed gave
 * another signal on a Raspberry Pi.  x86-64's order is kept (test_synth.c's hashes).
 */
static void osc_draw(struct osc *o, struct rng *r, double lo, double span, double fs,
		     unsigned step)
{
	double ph = rng_uni(r);
	double f = (lo + span * rng_uni(r)) / fs;

	osc_init(o, f, ph, step);
}

static void osc_resync(struct osc *o, uint64_t n)
{
	double p = fmod(o->cyc * (double)n + o->ph, 1.0);

	o->re = cos(2 * M_PI * p);
	o->im = sin(2 * M_PI * p);
}

static inline void osc_step(struct osc *o)
{
	double re = o->re * o->c - o->im * o->s;

	o->im = o->re * o->s + o->im * o->c;
	o->re = re;
}

/* --------------------------------------------------------------- scripts */

enum role { R_GMAX, R_GMED, R_HFLEX, R_HAM, R_ERECT, R_NROLES, R_OTHER = -1 };

static const char *const role_names[R_NROLES] = {
	"glute_max", "glute_med", "hip_flex", "hamstring", "erector",
};
/* EMG RMS at 100 % MVC per role, uV. */
static const double role_mvc_uv[R_NROLES] = { 250, 200, 150, 200, 150 };

struct act {
	double amp;      /* plateau, fraction of MVC (0 = silent) */
	double var;      /* +- per-rep variation, fraction of MVC */
	double delay_ms; /* onset after the rep's start */
};

struct exercise {
	const char *name;
	double lead_s, hold_s, rest_s; /* rest lead-in, contraction, rest after each rep */
	unsigned reps;
	bool alternate;         /* unilateral: reps alternate left, right, left ... */
	bool firing_order;      /* prone hip extension: glute max follows hamstring by 30-80 ms */
	double right_delay_ms;  /* bilateral: the right side comes later ... */
	double right_gain;      /* ... and weaker */
	struct act active[R_NROLES]; /* both sides (bilateral) or the working side */
	struct act contra[R_NROLES]; /* unilateral: the other side */
};

/* Onset of glute max after hamstring per rep in the prone hip extension, ms. */
static const double prone_gmax_delay_ms[] = { 35, 60, 80, 45, 70, 55 };

static const struct exercise ex_rest_short = { .name = "rest", .lead_s = 5.0 };
static const struct exercise ex_rest_long = { .name = "rest", .lead_s = 30.0 };

/* Supine bridge: glute max 40-60 % MVC, hamstring 30 %, glute med 20 %, hip flexor ~5 %. */
static const struct exercise ex_bridge = {
	.name = "bridge", .lead_s = 3.0, .hold_s = 2.0, .rest_s = 2.0, .reps = 5,
	.right_delay_ms = 15, .right_gain = 0.85,
	.active = {
		[R_GMAX] = { 0.50, 0.10, 0 },
		[R_GMED] = { 0.20, 0.02, 40 },
		[R_HFLEX] = { 0.05, 0.01, 60 },
		[R_HAM] = { 0.30, 0.03, 20 },
		[R_ERECT] = { 0.25, 0.03, 30 },
	},
};

/* Barbell hip thrust: glute max 70-120 % MVC (Contreras 2015), glute med 30 %. */
static const struct exercise ex_hip_thrust = {
	.name = "hip_thrust", .lead_s = 3.0, .hold_s = 2.0, .rest_s = 2.5, .reps = 5,
	.right_delay_ms = 10, .right_gain = 0.90,
	.active = {
		[R_GMAX] = { 0.95, 0.25, 0 },
		[R_GMED] = { 0.30, 0.03, 40 },
		[R_HFLEX] = { 0.05, 0.01, 80 },
		[R_HAM] = { 0.35, 0.04, 30 },
		[R_ERECT] = { 0.40, 0.04, 20 },
	},
};

/* Side-lying hip abduction: glute med 40-60 % MVC, glute max 20 %, hip flexor (TFL) 15 %. */
static const struct exercise ex_abduction = {
	.name = "abduction", .lead_s = 3.0, .hold_s = 1.5, .rest_s = 1.5, .reps = 6,
	.alternate = true,
	.active = {
		[R_GMAX] = { 0.20, 0.02, 40 },
		[R_GMED] = { 0.50, 0.10, 0 },
		[R_HFLEX] = { 0.15, 0.02, 25 },
		[R_HAM] = { 0.05, 0.01, 60 },
		[R_ERECT] = { 0.12, 0.01, 60 },
	},
	.contra = {
		[R_GMED] = { 0.08, 0.01, 50 },
		[R_ERECT] = { 0.08, 0.01, 80 },
	},
};

/* Prone hip extension (Janda's firing-order test): hamstring, then glute max
 * 30-80 ms later, then erector spinae (contralateral first); hip flexors silent. */
static const struct exercise ex_prone = {
	.name = "prone_hip_ext", .lead_s = 3.0, .hold_s = 2.0, .rest_s = 2.0, .reps = 6,
	.alternate = true, .firing_order = true,
	.active = {
		[R_GMAX] = { 0.35, 0.05, 0 /* prone_gmax_delay_ms */ },
		[R_GMED] = { 0.15, 0.02, 100 },
		[R_HAM] = { 0.45, 0.05, 0 },
		[R_ERECT] = { 0.30, 0.03, 120 },
	},
	.contra = {
		[R_ERECT] = { 0.30, 0.03, 90 },
	},
};

struct scenario {
	const char *name;
	const struct exercise *ex[6];
};

static const struct scenario scenarios[] = {
	{ "session", { &ex_rest_short, &ex_bridge, &ex_hip_thrust, &ex_abduction, &ex_prone } },
	{ "rest", { &ex_rest_long } },
	{ "bridge", { &ex_bridge } },
	{ "hip_thrust", { &ex_hip_thrust } },
	{ "abduction", { &ex_abduction } },
	{ "prone_hip_ext", { &ex_prone } },
};

/* One burst of one channel within the script period, in samples. */
struct burst {
	uint64_t onset, plateau, fall, offset; /* rise [onset, plateau), fall [fall, offset) */
	double amp;
	double rise_w, fall_w;                 /* pi / (rise + 1), pi / (fall + 1) */
	double rise_inv, fall_inv;             /* 1 / (rise + 1), 1 / (fall + 1) */
	enum emg_synth_shape rshape, fshape;   /* plain: cosine */
	unsigned rep;
	const char *exercise;
};

/* A motion artefact of one channel: a bump plus a damped in-band oscillation. */
struct motion {
	uint64_t start, len;  /* period position, samples */
	double amp, kscale;   /* bump: amp * kscale * k * d1^k, kscale = e / (tau fs) */
	double d1;
	double rc, rs;        /* oscillation: rotation times decay per sample */
	double re0, im0;      /* initial phasor (the imaginary part is added) */
};

/* The heart: R peaks shared by every channel (realistic ECG). */
struct heart {
	struct rng r;
	int64_t beat[3];      /* R-peak sample indices, increasing */
	double tpos[3];       /* T-wave centre after each R, s */
	uint64_t k;           /* beats drawn */
	double rr, resp;      /* mean RR, s; respiration cycles per beat */
};

/* ---------------------------------------------------------------- state */

struct chan {
	struct rng emg, noise, wander, pop;
	double hp_x, hp_y, lp1_x, lp1_y, lp2_x, lp2_y; /* shaping filter state */
	double gain;      /* shaped unit noise -> uV at 100 % MVC (0: no muscle) */
	double sigma;     /* white instrumentation noise SD, uV */
	double mvc_uv, noise_uv;
	double hum[3][2]; /* per harmonic: coefficient on cos, on sin */
	struct osc mod[2];
	double mod_amp[2];
	struct osc wav[3];
	double wav_amp[3];
	double ou, ou_leak, ou_k;
	double mod_v, mod_dv, wav_v, wav_dv; /* interpolated between knots: value, slope */
	uint64_t next_pop;
	double pop_v, pop_d;
	const struct burst *b; /* this channel's bursts + a sentinel */
	size_t cur;
	size_t nb;             /* bursts before the sentinel */
	/* realistic mode */
	struct rng mu, spk;    /* MU gain and spike streams */
	double mu1, mu2, mu_next, mu_amp; /* band-limited gain: two one-poles, next knot's gain, SD */
	uint64_t next_spike;
	unsigned sp_i;         /* index into the MUAP template, sp_len = idle */
	double sp_amp;
	double tonic;          /* fraction of MVC */
	double ecg_w[5], ecg_amp; /* P Q R S T weights, uV; peak |ECG| of a beat */
	unsigned nx;           /* cross-talk sources */
	unsigned xsrc[2];
	double xk[2], xs[2][4]; /* leak factor; per source two low-passes' input, output */
	const struct motion *m; /* this channel's motion artefacts + a sentinel */
	size_t mcur;
	uint64_t m_left;       /* samples left of the current artefact */
	double m_k, m_r, m_re, m_im;
};

struct emg_synth {
	unsigned channels;
	double rate;
	uint64_t seed;
	bool mains, wander, pops;
	uint64_t pos, ppos, length;
	struct zig zig;
	double hp_b0, hp_a1, lp_b0, lp_a1;
	struct osc mains_osc;
	unsigned knot; /* slow components are computed every `knot` samples, interpolated */
	struct chan *ch;
	struct burst *bursts;  /* per channel, each run ends with a sentinel */
	struct emg_truth *truth;
	size_t ntruth;
	double scratch[CHUNK][6];
	/* realistic mode */
	bool real, ramps, tonic, crosstalk, motion, ecg;
	double mu_a1, mu_a2, mu_c1, mu_c2, mu_norm; /* MU gain one-poles at the knot rate */
	double *sp_tmpl;       /* MUAP template, unit peak */
	unsigned sp_len;
	double x_b0, x_a1;     /* cross-talk low-pass (first order, used twice) */
	double *xbuf;          /* [channels][CHUNK]: EMG of cross-talk sources for the chunk */
	struct motion *mot;    /* [channels][nmot + 1] */
	size_t nmot;
	struct heart heart, heart0; /* now, and as created (for emg_synth_heartbeats) */
	double ecg_s[CHUNK][5];
};

/* ECG components P Q R S T: centre after R (s; T's is per beat), width (s), relative amplitude. */
static const double ecg_mu[5] = { -0.200, -0.028, 0.0, 0.030, 0.0 /* per beat */ };
static const double ecg_sig[5] = { 0.025, 0.008, 0.0085, 0.009, 0.045 };
#define ECG_PRE_S 0.35  /* the beat's waveform spans [R - PRE, R + POST] */
#define ECG_POST_S 0.60
#define MU_SPIKE_SIGMA_S 0.0015
#define MU_SPIKE_RATE 8.0
#define XTALK_FC 150.0

/* ------------------------------------------------------------ script build */

static enum role role_of(const char *name)
{
	const char *r = emg_muscle_role(name);

	for (int i = 0; i < R_NROLES; i++)
		if (!strcmp(r, role_names[i]))
			return (enum role)i;
	return R_OTHER;
}

static uint64_t to_samples(double t, double fs)
{
	double v = floor(t * fs + 0.5);

	return v < 0 ? 0 : (uint64_t)v;
}

/*
 * Bursts of a muscle (role, side) on channel ch; writes to out when non-NULL.
 * Returns the count; *length gets the period in samples.  Rep timing jitter
 * depends only on the seed, exercise and rep (the same for every muscle), the
 * per-muscle jitter on the role and side as well, so adding a muscle to the
 * map never changes another channel's bursts.
 */
static size_t build_bursts(const struct scenario *sc, uint64_t seed, double fs, enum role role,
			   enum emg_side side, bool ramps, struct burst *out, uint64_t *length)
{
	size_t n = 0;
	double t = 0;
	bool right = side == EMG_SIDE_RIGHT;

	for (unsigned e = 0; e < 6 && sc->ex[e]; e++) {
		const struct exercise *ex = sc->ex[e];
		uint64_t eseed = hash(seed, 0x5C21F7 + e, 0, 0);

		for (unsigned k = 0; k < ex->reps && role != R_OTHER; k++) {
			double start = t + ex->lead_s + k * (ex->hold_s + ex->rest_s) +
				       0.15 * hjit(hash(eseed, k, 1, 0));
			double hold = ex->hold_s * (1 + 0.10 * hjit(hash(eseed, k, 2, 0)));
			const struct act *a;
			double amp, delay_ms, gain = 1;

			if (ex->alternate) {
				bool rep_right = k % 2 == 1;
				a = rep_right == right ? &ex->active[role] : &ex->contra[role];
			} else {
				a = &ex->active[role];
				if (right) {
					gain = ex->right_gain;
				}
			}
			if (a->amp <= 0)
				continue;
			uint64_t mh = hash(eseed, k, 3 + (uint64_t)role, (uint64_t)side);
			amp = gain * (a->amp + a->var * hjit(hash(mh, 1, 0, 0)));
			if (amp > 2.0)
				amp = 2.0;
			delay_ms = a->delay_ms + 5.0 * hjit(hash(mh, 2, 0, 0));
			if (!ex->alternate && right)
				delay_ms += ex->right_delay_ms;
			if (ex->firing_order && role == R_HAM) {
				delay_ms = 0;
			} else if (ex->firing_order && role == R_GMAX && a == &ex->active[role]) {
				size_t nt = sizeof(prone_gmax_delay_ms) / sizeof(prone_gmax_delay_ms[0]);
				delay_ms = prone_gmax_delay_ms[k % nt] + 4.0 * hjit(hash(mh, 3, 0, 0));
				delay_ms = fmin(80.0, fmax(30.0, delay_ms));
			}
			double rise_s = 0.030 + 0.010 * hjit(hash(mh, 4, 0, 0));
			double fall_s = 0.075 + 0.025 * hjit(hash(mh, 5, 0, 0));
			enum emg_synth_shape rshape = EMG_SHAPE_COSINE, fshape = EMG_SHAPE_COSINE;

			if (ramps) { /* new hash keys: the plain draws above stay as they were */
				uint64_t rs = hash(mh, 7, 0, 0) >> 11, fsh = hash(mh, 9, 0, 0) >> 11;

				rise_s = 0.020 + 0.280 * (0.5 + 0.5 * hjit(hash(mh, 6, 0, 0)));
				fall_s = 0.050 + 0.250 * (0.5 + 0.5 * hjit(hash(mh, 8, 0, 0)));
				rshape = rs % 10 < 4 ? EMG_SHAPE_LINEAR :
					 rs % 10 < 7 ? EMG_SHAPE_SMOOTHSTEP : EMG_SHAPE_COSINE;
				fshape = fsh % 3 == 0 ? EMG_SHAPE_LINEAR :
					 fsh % 3 == 1 ? EMG_SHAPE_QUADRATIC : EMG_SHAPE_COSINE;
			}
			uint64_t onset = to_samples(start + delay_ms * 1e-3, fs);
			uint64_t rise = to_samples(rise_s, fs), fall = to_samples(fall_s, fs);
			uint64_t len = to_samples(hold, fs);

			if (rise < 1)
				rise = 1;
			if (fall < 1)
				fall = 1;
			if (len < rise + 1)
				len = rise + 1;
			if (out) {
				struct burst *b = &out[n];

				b->onset = onset;
				b->plateau = onset + rise;
				b->fall = onset + len;
				b->offset = onset + len + fall;
				b->amp = amp;
				b->rise_w = M_PI / (double)(rise + 1);
				b->fall_w = M_PI / (double)(fall + 1);
				b->rise_inv = 1.0 / (double)(rise + 1);
				b->fall_inv = 1.0 / (double)(fall + 1);
				b->rshape = rshape;
				b->fshape = fshape;
				b->rep = k + 1;
				b->exercise = ex->name;
			}
			n++;
		}
		t += ex->lead_s + ex->reps * (ex->hold_s + ex->rest_s);
	}
	*length = to_samples(t, fs);
	return n;
}

static int truth_cmp(const void *pa, const void *pb)
{
	const struct emg_truth *a = pa, *b = pb;

	if (a->onset != b->onset)
		return a->onset < b->onset ? -1 : 1;
	return a->channel < b->channel ? -1 : a->channel > b->channel;
}

/*
 * Activation of burst b at period position p, onset <= p < offset: the one
 * formula the generator and the truth share.  k counts from 1 at the first
 * sample of a ramp, so every profile is already > 0 at the onset and still
 * > 0 on the last sample before the offset.  The cosine branches are plain
 * mode's envelope, expression for expression.
 */
static inline double burst_act(const struct burst *b, uint64_t p)
{
	if (p < b->plateau) {
		double k = (double)(p - b->onset + 1), f = k * b->rise_inv;

		switch (b->rshape) {
		case EMG_SHAPE_LINEAR:
			return b->amp * f;
		case EMG_SHAPE_SMOOTHSTEP:
			return b->amp * f * f * (3.0 - 2.0 * f);
		default:
			return b->amp * 0.5 * (1.0 - cos(k * b->rise_w));
		}
	}
	if (p < b->fall)
		return b->amp;
	double k = (double)(p - b->fall + 1), g = 1.0 - k * b->fall_inv;

	switch (b->fshape) {
	case EMG_SHAPE_LINEAR:
		return b->amp * g;
	case EMG_SHAPE_QUADRATIC:
		return b->amp * g * g;
	default:
		return b->amp * 0.5 * (1.0 + cos(k * b->fall_w));
	}
}

/* First sample with activation >= 10 % of the plateau (the rise is monotonic). */
static uint64_t onset_cross(const struct burst *b)
{
	uint64_t lo = b->onset, hi = b->plateau; /* act(hi) = amp */
	double thr = 0.1 * b->amp;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (burst_act(b, mid) >= thr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* First sample after the plateau with activation < 10 % of it (act(offset) = 0). */
static uint64_t offset_cross(const struct burst *b)
{
	uint64_t lo = b->fall, hi = b->offset;
	double thr = 0.1 * b->amp;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (burst_act(b, mid) < thr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Start (s) and a hash of every repetition of the script (the reps' start formula of
 * build_bursts); returns the count, writes when the arrays are non-NULL. */
static size_t script_reps(const struct scenario *sc, uint64_t seed, double *t_out, uint64_t *h_out)
{
	size_t n = 0;
	double t = 0;

	for (unsigned e = 0; e < 6 && sc->ex[e]; e++) {
		const struct exercise *ex = sc->ex[e];
		uint64_t eseed = hash(seed, 0x5C21F7 + e, 0, 0);

		for (unsigned k = 0; k < ex->reps; k++, n++) {
			if (!t_out)
				continue;
			t_out[n] = t + ex->lead_s + k * (ex->hold_s + ex->rest_s) +
				   0.15 * hjit(hash(eseed, k, 1, 0));
			h_out[n] = hash(eseed, k, 40, 0);
		}
		t += ex->lead_s + ex->reps * (ex->hold_s + ex->rest_s);
	}
	return n;
}

/* Append the next beat: RR varies with respiration and beat to beat, within 50-110 bpm. */
static void heart_draw(struct heart *h, const struct zig *z, double fs, int64_t *beat, double *tpos)
{
	double zz = zig_normal(z, &h->r);

	zz = fmax(-2.5, fmin(2.5, zz));
	double rr = h->rr * (1.0 + 0.025 * sin(2 * M_PI * h->resp * (double)h->k) + 0.03 * zz);

	rr = fmax(60.0 / 110.0, fmin(60.0 / 50.0, rr));
	h->k++;
	*beat += (int64_t)floor(rr * fs + 0.5);
	*tpos = 0.27 * sqrt(rr);
}

/* Drop the oldest beat, draw one more. */
static void heart_shift(struct heart *h, const struct zig *z, double fs)
{
	h->beat[0] = h->beat[1], h->tpos[0] = h->tpos[1];
	h->beat[1] = h->beat[2], h->tpos[1] = h->tpos[2];
	h->beat[2] = h->beat[1];
	heart_draw(h, z, fs, &h->beat[2], &h->tpos[2]);
}

static void heart_init(struct heart *h, const struct zig *z, uint64_t seed, double fs)
{
	struct rng p;

	rng_seed(&h->r, hash(seed, 0xEC6, 1, 0));
	rng_seed(&p, hash(seed, 0xEC6, 2, 0));
	h->rr = 60.0 / (60.0 + 30.0 * rng_uni(&p));      /* 60-90 bpm */
	h->resp = (0.2 + 0.1 * rng_uni(&p)) * h->rr;      /* 12-18 breaths a minute */
	h->k = 0;
	h->beat[0] = -(int64_t)floor(rng_uni(&p) * h->rr * fs); /* first R within one RR */
	h->tpos[0] = 0.27 * sqrt(h->rr);
	h->beat[1] = h->beat[0];
	heart_draw(h, z, fs, &h->beat[1], &h->tpos[1]);
	h->beat[2] = h->beat[1];
	heart_draw(h, z, fs, &h->beat[2], &h->tpos[2]);
}

/* The five ECG components at time dt (s) after an R peak whose T is centred at tpos. */
static inline void ecg_components(double dt, double tpos, double e[5])
{
	for (int k = 0; k < 5; k++) {
		double zz = (dt - (k == 4 ? tpos : ecg_mu[k])) / ecg_sig[k];

		if (zz > -6.0 && zz < 6.0)
			e[k] += exp(-0.5 * zz * zz);
	}
}

/* ECG gain by role (glute_max, glute_med, hip_flex, hamstring, erector, other) and side
 * (none, left, right): closer to the heart, upper and left, is stronger. */
static const double ecg_gain[R_NROLES + 1][3] = {
	{ 0.32, 0.40, 0.25 }, { 0.45, 0.55, 0.35 }, { 0.65, 0.80, 0.50 },
	{ 0.16, 0.20, 0.12 }, { 0.85, 1.00, 0.70 }, { 0.50, 0.60, 0.40 },
};

/* Tonic drive (fraction of MVC): lower bound and spread per role. */
static const double tonic_lo[R_NROLES] = { 0, 0.01, 0.01, 0, 0.02 };
static const double tonic_span[R_NROLES] = { 0, 0.01, 0.01, 0, 0.01 };

/* Cross-talk between neighbours of the same side: nominal leak and its +- spread. */
static const struct { enum role a, b; double k, var; } xtalk[] = {
	{ R_GMED, R_HFLEX, 0.15, 0.03 },
	{ R_GMAX, R_GMED, 0.12, 0.02 },
	{ R_GMAX, R_HAM, 0.10, 0.015 },
};

/* ---------------------------------------------------------------- create */

static void first_order(double fc, double fs, bool highpass, double *b0, double *a1)
{
	double w = tan(M_PI * fmin(fc, 0.45 * fs) / fs);

	*b0 = highpass ? 1.0 / (1.0 + w) : w / (1.0 + w);
	*a1 = (w - 1.0) / (1.0 + w);
}

/* RMS of the shaping filter's output for unit-variance white input. */
static double shape_rms(const struct emg_synth *s)
{
	double hx = 0, hy = 0, l1x = 0, l1y = 0, l2x = 0, l2y = 0, e = 0;
	size_t nmax = (size_t)(s->rate * 20) + 10000;

	for (size_t i = 0; i < nmax; i++) {
		double x = i == 0 ? 1.0 : 0.0;
		double y = s->hp_b0 * (x - hx) - s->hp_a1 * hy;
		hx = x, hy = y;
		double y2 = s->lp_b0 * (y + l1x) - s->lp_a1 * l1y;
		l1x = y, l1y = y2;
		double y3 = s->lp_b0 * (y2 + l2x) - s->lp_a1 * l2y;
		l2x = y2, l2y = y3;
		e += y3 * y3;
		if (i > 1000 && fabs(y3) + fabs(y2) + fabs(y) < 1e-14)
			break;
	}
	return sqrt(e);
}

/*
 * Realistic-mode parameters.  Every channel draws them from its own stream
 * (key 6) in a fixed order whatever is switched on, and the MU gain, spikes,
 * heart and motion have streams or hashes of their own, so switching one
 * feature off never changes another.
 */
/* Motor-unit gain filters and the MUAP spike template. */
static int mu_init(struct emg_synth *s)
{
	const double fs = s->rate, kfs = fs / s->knot;

	/* MU gain: 1 + amp * (lp10(w) - lp2(w)) / sd at the knot rate, unity DC gain each */
	s->mu_a1 = exp(-2 * M_PI * fmin(10.0, 0.4 * kfs) / kfs);
	s->mu_a2 = exp(-2 * M_PI * fmin(2.0, 0.1 * kfs) / kfs);
	s->mu_c1 = 1 - s->mu_a1, s->mu_c2 = 1 - s->mu_a2;
	double v = s->mu_c1 * s->mu_c1 / (1 - s->mu_a1 * s->mu_a1) +
		   s->mu_c2 * s->mu_c2 / (1 - s->mu_a2 * s->mu_a2) -
		   2 * s->mu_c1 * s->mu_c2 / (1 - s->mu_a1 * s->mu_a2);
	s->mu_norm = v > 0 ? 1.0 / sqrt(v) : 0;

	/* MUAP: first derivative of a Gaussian, unit peak at -+sigma, +-4 sigma long */
	double sg = MU_SPIKE_SIGMA_S * fs;
	unsigned half = (unsigned)ceil(4 * sg);

	s->sp_len = 2 * half + 1;
	s->sp_tmpl = calloc(s->sp_len, sizeof(*s->sp_tmpl));
	if (!s->sp_tmpl)
		return -ENOMEM;
	for (unsigned i = 0; i < s->sp_len; i++) {
		double t = ((double)i - half) / sg;

		s->sp_tmpl[i] = -t * exp(0.5 * (1 - t * t));
	}

	return 0;
}

/* Cross-talk: its low-pass, and links from each receiver to a same-side neighbour. */
static int xtalk_init(struct emg_synth *s, const enum role *roles, const enum emg_side *sides,
		      const bool *mapped, double unit_rms)
{
	const double fs = s->rate;

	/* cross-talk low-pass, and the leak's RMS through it per unit of EMG RMS */
	first_order(fmin(XTALK_FC, 0.4 * fs), fs, false, &s->x_b0, &s->x_a1);
	double xe = 0;
	{
		double hx = 0, hy = 0, l1x = 0, l1y = 0, l2x = 0, l2y = 0;
		double ax = 0, ay = 0, bx = 0, by = 0;
		size_t nmax = (size_t)(fs * 20) + 10000;

		for (size_t i = 0; i < nmax; i++) {
			double x = i == 0 ? 1.0 : 0.0;
			double y = s->hp_b0 * (x - hx) - s->hp_a1 * hy;
			hx = x, hy = y;
			double y2 = s->lp_b0 * (y + l1x) - s->lp_a1 * l1y;
			l1x = y, l1y = y2;
			double y3 = s->lp_b0 * (y2 + l2x) - s->lp_a1 * l2y;
			l2x = y2, l2y = y3;
			double z1 = s->x_b0 * (y3 + ax) - s->x_a1 * ay;
			ax = y3, ay = z1;
			double z2 = s->x_b0 * (z1 + bx) - s->x_a1 * by;
			bx = z1, by = z2;
			xe += z2 * z2;
			if (i > 1000 && fabs(z2) + fabs(z1) + fabs(y3) + fabs(y) < 1e-14)
				break;
		}
	}
	double xr = unit_rms > 0 ? sqrt(xe) / unit_rms : 1.0; /* leak RMS per unit EMG RMS */

	/* cross-talk links: each receiver takes from the first channel of a neighbour role, same side */
	for (unsigned c = 0; c < s->channels && s->crosstalk; c++) {
		struct chan *ch = &s->ch[c];

		for (size_t i = 0; i < sizeof(xtalk) / sizeof(xtalk[0]) && ch->nx < 2; i++) {
			enum role other;

			if (roles[c] == xtalk[i].a)
				other = xtalk[i].b;
			else if (roles[c] == xtalk[i].b)
				other = xtalk[i].a;
			else
				continue;
			for (unsigned d = 0; d < s->channels; d++) {
				if (d == c || !mapped[d] || roles[d] != other || sides[d] != sides[c])
					continue;
				double k = xtalk[i].k + xtalk[i].var *
					hjit(hash(s->seed, 0x7A1C, (uint64_t)roles[c] * 8 + other, sides[c]));

				ch->xsrc[ch->nx] = d;
				ch->xk[ch->nx] = k / xr;
				ch->nx++;
				break;
			}
		}
	}
	if (s->crosstalk) {
		s->xbuf = calloc((size_t)s->channels * CHUNK, sizeof(*s->xbuf));
		if (!s->xbuf)
			return -ENOMEM;
	}
	return 0;
}

/* Channel ch's ECG weights: shape w, polarity pol, scaled so its beat peaks at ecg_amp. */
static void chan_ecg(struct emg_synth *s, struct chan *ch, const double w[5], double pol)
{
	const double fs = s->rate;
	double peak = 0;

	for (int64_t i = -(int64_t)(ECG_PRE_S * fs); i <= (int64_t)(ECG_POST_S * fs); i++) {
		double e[5] = { 0 }, x = 0;

		ecg_components((double)i / fs, 0.27 * sqrt(s->heart.rr), e);
		for (int k = 0; k < 5; k++)
			x += w[k] * e[k];
		peak = fmax(peak, fabs(x));
	}
	for (int k = 0; k < 5; k++)
		ch->ecg_w[k] = peak > 0 ? pol * w[k] * ch->ecg_amp / peak : 0;
}

/* Channel c's motion artefacts, one per repetition (rt: start times, rh: hashes). */
static void chan_motion(struct emg_synth *s, unsigned c, bool mapped, const double *rt,
			const uint64_t *rh, size_t nrep)
{
	const double fs = s->rate;
	struct chan *ch = &s->ch[c];

	ch->m = &s->mot[(size_t)c * (nrep + 1)];
	for (size_t i = 0; i < nrep; i++) {
		struct motion *m = &s->mot[(size_t)c * (nrep + 1) + i];
		uint64_t eh = rh[i], chh = hash(eh, c, 1, 0);
		double base = 40 + 210 * (0.5 + 0.5 * hjit(hash(eh, 1, 0, 0)));
		double tau = 0.040 + 0.080 * (0.5 + 0.5 * hjit(hash(eh, 2, 0, 0)));
		double t0 = rt[i] + 0.030 + 0.070 * (0.5 + 0.5 * hjit(hash(eh, 3, 0, 0)));
		double f = 20 + 15 * (0.5 + 0.5 * hjit(hash(eh, 4, 0, 0)));
		double tau2 = 0.030 + 0.030 * (0.5 + 0.5 * hjit(hash(chh, 2, 0, 0)));
		double a = base * (0.3 + 0.7 * (0.5 + 0.5 * hjit(hash(chh, 1, 0, 0))));
		double ph = M_PI * hjit(hash(chh, 3, 0, 0));
		double d2 = exp(-1.0 / (tau2 * fs));

		if (hash(chh, 4, 0, 0) >> 63)
			a = -a;
		if (!mapped)
			a = 0;
		m->start = to_samples(t0, fs);
		m->len = to_samples(12 * tau, fs);
		m->amp = a;
		m->kscale = M_E / (tau * fs);
		m->d1 = exp(-1.0 / (tau * fs));
		m->rc = d2 * cos(2 * M_PI * fmin(f, 0.45 * fs) / fs);
		m->rs = d2 * sin(2 * M_PI * fmin(f, 0.45 * fs) / fs);
		double b = (0.10 + 0.15 * (0.5 + 0.5 * hjit(hash(chh, 5, 0, 0)))) * a;
		m->re0 = b * cos(ph);
		m->im0 = b * sin(ph);
	}
	s->mot[(size_t)c * (nrep + 1) + nrep].start = UINT64_MAX;
}

static int realistic_init(struct emg_synth *s, const struct emg_device_config *cfg,
			  const struct scenario *sc, const enum role *roles,
			  const enum emg_side *sides, const bool *mapped, double unit_rms)
{
	const double fs = s->rate;
	int err = mu_init(s);

	if (err < 0 || (err = xtalk_init(s, roles, sides, mapped, unit_rms)) < 0)
		return err;
	heart_init(&s->heart, &s->zig, s->seed, fs);
	s->heart0 = s->heart;

	/* ECG gains relative to the strongest mapped channel */
	double gmax = 0;

	for (unsigned c = 0; c < s->channels; c++)
		if (mapped[c])
			gmax = fmax(gmax, ecg_gain[roles[c] == R_OTHER ? R_NROLES : roles[c]][sides[c]]);

	/* motion: one artefact per repetition of the script */
	size_t nrep = script_reps(sc, s->seed, NULL, NULL);
	double *rt = calloc(nrep + 1, sizeof(*rt));
	uint64_t *rh = calloc(nrep + 1, sizeof(*rh));

	s->nmot = nrep;
	s->mot = calloc((size_t)s->channels * (nrep + 1), sizeof(*s->mot));
	if (!rt || !rh || !s->mot) {
		free(rt);
		free(rh);
		return -ENOMEM;
	}
	script_reps(sc, s->seed, rt, rh);

	for (unsigned c = 0; c < s->channels; c++) {
		struct chan *ch = &s->ch[c];
		enum role ro = roles[c];
		struct rng q;

		rng_seed(&q, hash(s->seed, c, 6, 0));
		rng_seed(&ch->mu, hash(s->seed, c, 7, 0));
		rng_seed(&ch->spk, hash(s->seed, c, 8, 0));
		/* MU gain */
		ch->mu_amp = 0.08 + 0.04 * rng_uni(&q);
		ch->mu1 = ch->mu2 = 0;
		ch->mu_next = 1.0;
		ch->sp_i = s->sp_len;
		ch->next_spike = 1 + (uint64_t)(-log(rng_uni(&ch->spk)) * fs / MU_SPIKE_RATE);
		/* tonic */
		double tu = rng_uni(&q);
		ch->tonic = s->tonic && ro != R_OTHER ? tonic_lo[ro] + tonic_span[ro] * tu : 0;
		/* ECG shape, polarity and amplitude */
		/* One draw per statement: an initializer list's expressions are unsequenced
		 * in C (GCC happens to go left to right; that order is kept). */
		double w[5] = { 0, 0, 1.0, 0, 0 };
		w[0] = 0.06 + 0.09 * rng_uni(&q);
		w[1] = -(0.05 + 0.15 * rng_uni(&q));
		w[3] = -(0.10 + 0.35 * rng_uni(&q));
		w[4] = 0.15 + 0.25 * rng_uni(&q);
		double pol = rng_uni(&q) < 0.25 ? -1.0 : 1.0;
		double g = mapped[c] && gmax > 0 ?
				   ecg_gain[ro == R_OTHER ? R_NROLES : ro][sides[c]] / gmax : 0;

		ch->ecg_amp = s->ecg ? cfg->ecg_uv * g : 0;
		chan_ecg(s, ch, w, pol);
		chan_motion(s, c, mapped[c], rt, rh, nrep);
	}
	free(rt);
	free(rh);
	return 0;
}

/* 1 if cfg describes a synth emg_synth_new() can build (sc: its scenario, NULL: unknown). */
static int synth_config_valid(const struct emg_device_config *cfg, const struct scenario *sc,
			      double fs)
{
	return sc && isfinite(fs) && fs >= 1.0 && fs <= 1e6 && cfg->rate >= 0 &&
	       !isnan(cfg->snr_db) && cfg->snr_db != -INFINITY && isfinite(cfg->mains_hz) &&
	       cfg->mains_hz >= 0 && isfinite(cfg->mains_uv) && cfg->mains_uv >= 0 &&
	       cfg->channels <= EMG_DEVICE_MAX_CHANNELS &&
	       (cfg->realism == EMG_SYNTH_PLAIN || cfg->realism == EMG_SYNTH_REALISTIC) &&
	       isfinite(cfg->ecg_uv) && cfg->ecg_uv >= 0;
}

/* Role, side and whether mapped, of every channel (one muscle per channel in a map). */
static void map_roles(const struct emg_synth *s, const struct emg_muscles *map, enum role *roles,
		      enum emg_side *sides, bool *mapped)
{
	for (unsigned c = 0; c < s->channels; c++) {
		roles[c] = R_OTHER;
		sides[c] = EMG_SIDE_NONE;
		mapped[c] = false;
	}
	for (unsigned i = 0; i < emg_muscles_count(map); i++) {
		const struct emg_muscle *m = emg_muscles_get(map, i);

		if (m && m->channel < s->channels) {
			roles[m->channel] = role_of(m->name);
			sides[m->channel] = m->side;
			mapped[m->channel] = true;
		}
	}
}

/* Every channel's scripted bursts and the sorted truth list. */
static int bursts_init(struct emg_synth *s, const struct scenario *sc, const enum role *roles,
		       const enum emg_side *sides)
{
	const double fs = s->rate;

	/* Bursts: count, then fill; each channel's run ends with a sentinel. */
	size_t total = 0, ntruth = 0;

	for (unsigned c = 0; c < s->channels; c++)
		total += build_bursts(sc, s->seed, fs, roles[c], sides[c], s->ramps, NULL,
				      &s->length) + 1;
	s->bursts = calloc(total, sizeof(*s->bursts));
	if (!s->bursts)
		return -ENOMEM;
	size_t at = 0;
	size_t *first = calloc(s->channels + 1, sizeof(*first));

	if (!first)
		return -ENOMEM;
	for (unsigned c = 0; c < s->channels; c++) {
		size_t n = build_bursts(sc, s->seed, fs, roles[c], sides[c], s->ramps,
					s->bursts + at, &s->length);

		first[c] = at;
		for (size_t i = 0; i < n; i++)
			if (s->bursts[at + i].amp >= TRUTH_MIN_MVC)
				ntruth++;
		s->bursts[at + n].onset = UINT64_MAX;
		s->bursts[at + n].offset = UINT64_MAX;
		at += n + 1;
	}
	first[s->channels] = at;
	s->truth = calloc(ntruth ? ntruth : 1, sizeof(*s->truth));
	if (!s->truth) {
		free(first);
		return -ENOMEM;
	}
	for (unsigned c = 0; c < s->channels; c++) {
		for (size_t i = first[c]; i + 1 < first[c + 1]; i++) {
			const struct burst *b = &s->bursts[i];

			if (b->amp < TRUTH_MIN_MVC)
				continue;
			s->truth[s->ntruth++] = (struct emg_truth){
				.channel = c, .onset = b->onset, .offset = b->offset,
				.peak_mvc = (float)b->amp, .rep = b->rep, .exercise = b->exercise,
				.onset_cross = onset_cross(b), .offset_cross = offset_cross(b),
				.rise = (uint32_t)(b->plateau - b->onset),
				.fall = (uint32_t)(b->offset - b->fall),
				.rise_shape = b->rshape, .fall_shape = b->fshape,
			};
		}
		s->ch[c].b = &s->bursts[first[c]];
		s->ch[c].nb = first[c + 1] - first[c] - 1;
	}
	free(first);
	qsort(s->truth, s->ntruth, sizeof(*s->truth), truth_cmp);

	return 0;
}

/* Channel c's levels, random streams, hum and artefact oscillators. */
static void chan_init(struct emg_synth *s, const struct emg_device_config *cfg, unsigned c,
		      enum role role, double unit_rms, double band)
{
	const double fs = s->rate;
	struct chan *ch = &s->ch[c];
	double ref = role == R_OTHER ? OTHER_REF_UV : role_mvc_uv[role];
	struct rng p;

	rng_seed(&ch->emg, hash(s->seed, c, 1, 0));
	rng_seed(&ch->noise, hash(s->seed, c, 2, 0));
	rng_seed(&ch->wander, hash(s->seed, c, 3, 0));
	rng_seed(&ch->pop, hash(s->seed, c, 4, 0));
	rng_seed(&p, hash(s->seed, c, 5, 0));

	ch->mvc_uv = role == R_OTHER ? 0 : ref;
	ch->gain = ch->mvc_uv / unit_rms;
	ch->noise_uv = 0.5 * ref * pow(10.0, -cfg->snr_db / 20.0);
	if (!isfinite(ch->noise_uv))
		ch->noise_uv = 0;
	ch->sigma = ch->noise_uv / sqrt(band);

	static const double hk[3] = { 1, 3, 5 }, hg[3] = { 1.0, 0.3, 0.15 };
	for (int k = 0; k < 3; k++) {
		double ph = 2 * M_PI * rng_uni(&p);
		double a = hk[k] * cfg->mains_hz < fs / 2 ? cfg->mains_uv * hg[k] : 0;

		ch->hum[k][0] = a * sin(ph);
		ch->hum[k][1] = a * cos(ph);
	}
	osc_draw(&ch->mod[0], &p, 0.7, 0.8, fs, s->knot);
	osc_draw(&ch->mod[1], &p, 2.0, 2.0, fs, s->knot);
	ch->mod_amp[0] = 0.04;
	ch->mod_amp[1] = 0.03;
	for (int k = 0; k < 3; k++) {
		osc_draw(&ch->wav[k], &p, 0.1, 0.4, fs, s->knot);
		ch->wav_amp[k] = 40 + 60 * rng_uni(&p);
	}
	ch->ou_leak = exp(-(double)s->knot / (3.0 * fs));
	/* uniform [-1,1) has variance 1/3: stationary SD 40 uV */
	ch->ou_k = 40.0 * sqrt(3.0 * (1.0 - ch->ou_leak * ch->ou_leak));
	ch->ou = 40.0 * (2 * rng_uni(&p) - 1);
	ch->next_pop = 1 + (uint64_t)(-log(rng_uni(&ch->pop)) * 30.0 * fs);
}

int emg_synth_new(struct emg_synth **out, const struct emg_device_config *cfg)
{
	const char *scen = cfg->scenario && *cfg->scenario ? cfg->scenario : "session";
	const struct scenario *sc = NULL;
	struct emg_muscles *defmap = NULL;
	const struct emg_muscles *map = cfg->muscles;
	struct emg_synth *s;
	double fs = cfg->rate > 0 ? cfg->rate : 2000.0;
	int r;

	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(scenarios[i].name, scen))
			sc = &scenarios[i];
	if (!synth_config_valid(cfg, sc, fs))
		return -EINVAL;
	if (!map) {
		r = emg_muscles_new_default(&defmap);
		if (r < 0)
			return r;
		map = defmap;
	}

	s = calloc(1, sizeof(*s));
	if (!s) {
		emg_muscles_free(defmap);
		return -ENOMEM;
	}
	s->channels = cfg->channels ? cfg->channels : emg_muscles_channels_needed(map);
	if (s->channels == 0)
		s->channels = 1;
	if (s->channels > EMG_DEVICE_MAX_CHANNELS) {
		r = -EINVAL;
		goto fail;
	}
	s->rate = fs;
	s->seed = cfg->seed;
	s->mains = cfg->mains_hz > 0 && cfg->mains_uv > 0 && cfg->mains_hz < fs / 2;
	s->wander = cfg->wander;
	s->pops = cfg->pops;
	s->real = cfg->realism == EMG_SYNTH_REALISTIC;
	s->ramps = s->real && cfg->ramps;
	s->tonic = s->real && cfg->tonic;
	s->crosstalk = s->real && cfg->crosstalk;
	s->motion = s->real && cfg->motion;
	s->ecg = s->real && cfg->ecg_uv > 0;
	zig_init(&s->zig);
	/* knots ~8 ms apart, a power of two so that RESYNC points are knots */
	s->knot = 1;
	while (s->knot < 4096 && s->knot * 2 <= fs / 125.0)
		s->knot *= 2;
	first_order(SHAPE_FL, fs, true, &s->hp_b0, &s->hp_a1);
	first_order(fmin(SHAPE_FH, 0.4 * fs), fs, false, &s->lp_b0, &s->lp_a1);
	double unit_rms = shape_rms(s);

	s->ch = calloc(s->channels, sizeof(*s->ch));
	if (!s->ch) {
		r = -ENOMEM;
		goto fail;
	}

	/* Role and side of every channel (one muscle per channel in a map). */
	enum role roles[EMG_DEVICE_MAX_CHANNELS];
	enum emg_side sides[EMG_DEVICE_MAX_CHANNELS];
	bool mapped[EMG_DEVICE_MAX_CHANNELS];

	map_roles(s, map, roles, sides, mapped);

	r = bursts_init(s, sc, roles, sides);
	if (r < 0)
		goto fail;

	/* Levels, random streams and artefact parameters per channel. */
	double lo = 20.0, hi = fmin(450.0, 0.45 * fs);
	double band = hi > lo ? (hi - lo) / (fs / 2) : 1.0;

	for (unsigned c = 0; c < s->channels; c++)
		chan_init(s, cfg, c, roles[c], unit_rms, band);
	osc_init(&s->mains_osc, cfg->mains_hz / fs, 0, 1);
	if (s->real) {
		r = realistic_init(s, cfg, sc, roles, sides, mapped, unit_rms);
		if (r < 0)
			goto fail;
	}

	emg_muscles_free(defmap);
	*out = s;
	return 0;
fail:
	emg_muscles_free(defmap);
	emg_synth_free(s);
	return r;
}

void emg_synth_free(struct emg_synth *s)
{
	if (!s)
		return;
	free(s->ch);
	free(s->bursts);
	free(s->truth);
	free(s->sp_tmpl);
	free(s->xbuf);
	free(s->mot);
	free(s);
}

/* ------------------------------------------------------------- generate */

/* Envelope (fraction of MVC) at period position p; p advances by one per call,
 * *cur is the current or next burst of the channel (runs end with a sentinel). */
static inline double envelope(const struct burst **cur, uint64_t p)
{
	const struct burst *b = *cur;

	if (p < b->onset)
		return 0;
	if (p >= b->offset) {
		*cur = ++b;
		if (p < b->onset)
			return 0;
	}
	if (p < b->plateau)
		return b->amp * 0.5 * (1.0 - cos((double)(p - b->onset + 1) * b->rise_w));
	if (p < b->fall)
		return b->amp;
	return b->amp * 0.5 * (1.0 + cos((double)(p - b->fall + 1) * b->fall_w));
}

static inline double mod_at(const struct chan *ch)
{
	return 1.0 + ch->mod_amp[0] * ch->mod[0].re + ch->mod_amp[1] * ch->mod[1].re;
}

static inline double wav_at(const struct chan *ch)
{
	return ch->wav_amp[0] * ch->wav[0].im + ch->wav_amp[1] * ch->wav[1].im +
	       ch->wav_amp[2] * ch->wav[2].im + ch->ou;
}

/*
 * At a knot: the slow components (plateau fluctuation, wander) are evaluated
 * here and one knot ahead, and linearly interpolated in between; this keeps
 * their cost per sample at two additions.
 */
static void knot_step(struct chan *ch, struct rng *r_wander, bool wander, double inv_knot,
		      double *mv, double *mdv, double *wv, double *wdv)
{
	double now = mod_at(ch);

	osc_step(&ch->mod[0]);
	osc_step(&ch->mod[1]);
	*mv = now;
	*mdv = (mod_at(ch) - now) * inv_knot;
	if (wander) {
		now = wav_at(ch);
		for (int k = 0; k < 3; k++)
			osc_step(&ch->wav[k]);
		ch->ou = ch->ou * ch->ou_leak + ch->ou_k * (2.0 * rng_uni(r_wander) - 1.0);
		*wv = now;
		*wdv = (wav_at(ch) - now) * inv_knot;
	}
}

/* The mains hum's fundamental, 3rd and 5th harmonic phasors of the chunk into s->scratch. */
static void mains_chunk(struct emg_synth *s, unsigned len, uint64_t pos, bool resync)
{
	struct osc *o = &s->mains_osc;

	if (!s->mains)
		return;
	if (resync)
		osc_resync(o, pos);
	for (unsigned f = 0; f < len; f++) {
		double c1 = o->re, s1 = o->im;
		double c2 = c1 * c1 - s1 * s1, s2 = 2 * c1 * s1;
		double c3 = c2 * c1 - s2 * s1, s3 = c2 * s1 + s2 * c1;
		double c5 = c3 * c2 - s3 * s2, s5 = c3 * s2 + s3 * c2;

		s->scratch[f][0] = c1, s->scratch[f][1] = s1;
		s->scratch[f][2] = c3, s->scratch[f][3] = s3;
		s->scratch[f][4] = c5, s->scratch[f][5] = s5;
		osc_step(o);
	}
}

/* Put a channel's slow oscillators where they are at sample pos (after a seek or wrap). */
static void chan_resync(struct chan *ch, uint64_t pos)
{
	osc_resync(&ch->mod[0], pos);
	osc_resync(&ch->mod[1], pos);
	for (int k = 0; k < 3; k++)
		osc_resync(&ch->wav[k], pos);
}

/*
 * One sample of white noise shaped to the sEMG spectrum (first-order
 * high-pass, two first-order low-passes).  The filter state lives in the
 * caller's locals: inlined, they stay in registers across the float stores.
 */
static inline double shaped(struct emg_synth *s, struct rng *r, double hb0, double ha1,
			    double lb0, double la1, double *hx, double *hy, double *l1x,
			    double *l1y, double *l2x, double *l2y)
{
	double e = zig_normal(&s->zig, r);
	double y = hb0 * (e - *hx) - ha1 * *hy;
	*hx = e, *hy = y;
	double y2 = lb0 * (y + *l1x) - la1 * *l1y;
	*l1x = y, *l1y = y2;
	double y3 = lb0 * (y2 + *l2x) - la1 * *l2y;
	*l2x = y2, *l2y = y3;
	return y3;
}

/* Electrode pops of channel ch at sample n: a step that decays; returns its value now. */
static inline double pop_step(const struct emg_synth *s, struct chan *ch, uint64_t n,
			      uint64_t *next_pop, double *pop_v, double *pop_d)
{
	double v = 0;

	if (n == *next_pop) {
		double amp = 200.0 + 800.0 * rng_uni(&ch->pop);
		double tau = 0.050 / 3 + (0.150 / 3) * rng_uni(&ch->pop);

		if (rng_next(&ch->pop) & 1)
			amp = -amp;
		*pop_v += amp;
		*pop_d = exp(-1.0 / (tau * s->rate));
		*next_pop += 1 + (uint64_t)(-log(rng_uni(&ch->pop)) * 30.0 * s->rate);
	}
	if (*pop_v != 0) {
		v = *pop_v;
		*pop_v *= *pop_d;
		if (fabs(*pop_v) < 1e-6)
			*pop_v = 0;
	}
	return v;
}

/* Clip to the amplifier's range. */
static inline float clip_uv(double v)
{
	if (v > PHYS_MAX_UV)
		v = PHYS_MAX_UV;
	else if (v < -PHYS_MAX_UV)
		v = -PHYS_MAX_UV;
	return (float)v;
}

static void run_chunk(struct emg_synth *s, float *frames, unsigned len, uint64_t pos,
		      uint64_t pp, bool resync)
{
	const unsigned C = s->channels;
	const double hb0 = s->hp_b0, ha1 = s->hp_a1, lb0 = s->lp_b0, la1 = s->lp_a1;

	mains_chunk(s, len, pos, resync);

	const bool mains = s->mains, wander = s->wander, pops = s->pops;
	const uint64_t kmask = s->knot - 1;
	const double inv_knot = 1.0 / s->knot;
	const double (*hum)[6] = (const double (*)[6])s->scratch;

	for (unsigned c = 0; c < C; c++) {
		struct chan *ch = &s->ch[c];
		/* Everything the loop touches lives in locals: the compiler cannot keep
		 * struct fields in registers across the float stores (-fno-strict-aliasing). */
		double hx = ch->hp_x, hy = ch->hp_y, l1x = ch->lp1_x, l1y = ch->lp1_y;
		double l2x = ch->lp2_x, l2y = ch->lp2_y;
		const double gain = ch->gain, sigma = ch->sigma;
		struct rng r_emg = ch->emg, r_noise = ch->noise, r_wander = ch->wander;
		double mv = ch->mod_v, mdv = ch->mod_dv, wv = ch->wav_v, wdv = ch->wav_dv;
		const double h00 = ch->hum[0][0], h01 = ch->hum[0][1], h10 = ch->hum[1][0];
		const double h11 = ch->hum[1][1], h20 = ch->hum[2][0], h21 = ch->hum[2][1];
		double pop_v = ch->pop_v, pop_d = ch->pop_d;
		uint64_t next_pop = ch->next_pop;
		const struct burst *bp = &ch->b[ch->cur];
		float *out = frames + c;

		if (resync)
			chan_resync(ch, pos);
		for (unsigned f = 0; f < len; f++, out += C) {
			double y3 = shaped(s, &r_emg, hb0, ha1, lb0, la1, &hx, &hy, &l1x, &l1y, &l2x,
					   &l2y);

			if (((pos + f) & kmask) == 0)
				knot_step(ch, &r_wander, wander, inv_knot, &mv, &mdv, &wv, &wdv);
			double a = envelope(&bp, pp + f);
			double v = a * mv * gain * y3 + sigma * zig_normal(&s->zig, &r_noise);
			mv += mdv;

			if (mains) {
				const double *h = hum[f];

				v += h00 * h[0] + h01 * h[1] + h10 * h[2] + h11 * h[3] + h20 * h[4] +
				     h21 * h[5];
			}
			if (wander) {
				v += wv;
				wv += wdv;
			}
			if (pops)
				v += pop_step(s, ch, pos + f, &next_pop, &pop_v, &pop_d);
			*out = clip_uv(v);
		}
		ch->hp_x = hx, ch->hp_y = hy, ch->lp1_x = l1x, ch->lp1_y = l1y;
		ch->lp2_x = l2x, ch->lp2_y = l2y;
		ch->emg = r_emg, ch->noise = r_noise, ch->wander = r_wander;
		ch->mod_v = mv, ch->mod_dv = mdv, ch->wav_v = wv, ch->wav_dv = wdv;
		ch->cur = (size_t)(bp - ch->b);
		ch->pop_v = pop_v, ch->pop_d = pop_d, ch->next_pop = next_pop;
	}
}

/* Realistic envelope: as envelope(), with the burst's own profiles. */
static inline double envelope_real(const struct burst **cur, uint64_t p)
{
	const struct burst *b = *cur;

	if (p < b->onset)
		return 0;
	if (p >= b->offset) {
		*cur = ++b;
		if (p < b->onset)
			return 0;
	}
	return burst_act(b, p);
}

/* Next knot's MU gain: band-limited (2-10 Hz) noise around 1. */
static inline double mu_advance(const struct emg_synth *s, struct chan *ch, struct rng *r)
{
	double w = (2.0 * rng_uni(r) - 1.0) * 1.7320508075688772; /* unit variance */

	ch->mu1 = s->mu_a1 * ch->mu1 + s->mu_c1 * w;
	ch->mu2 = s->mu_a2 * ch->mu2 + s->mu_c2 * w;
	return fmax(0.5, fmin(1.5, 1.0 + ch->mu_amp * (ch->mu1 - ch->mu2) * s->mu_norm));
}

/* The shared part of the ECG for the chunk: P, Q, R, S, T per frame. */
static void ecg_chunk(struct emg_synth *s, unsigned len, uint64_t pos)
{
	struct heart *h = &s->heart;
	const double fs = s->rate, inv = 1.0 / fs;
	const int64_t post = (int64_t)ceil(ECG_POST_S * fs), pre = (int64_t)ceil(ECG_PRE_S * fs);

	for (unsigned f = 0; f < len; f++) {
		int64_t n = (int64_t)(pos + f);
		double *e = s->ecg_s[f];

		while (n >= h->beat[1] + post)
			heart_shift(h, &s->zig, fs);
		e[0] = e[1] = e[2] = e[3] = e[4] = 0;
		for (int j = 0; j < 3; j++) {
			int64_t d = n - h->beat[j];

			if (d >= -pre && d <= post)
				ecg_components((double)d * inv, h->tpos[j], e);
		}
	}
}

/*
 * Realistic mode: the plain model, expression for expression where a feature
 * is off, plus ramps, MU gain and spikes, tonic, ECG and motion per channel;
 * then, when cross-talk is on, a second pass adds the low-passed EMG of each
 * receiver's neighbours (kept in xbuf by the first pass).
 */
/*
 * A motor-unit spike is due: start one of random size and sign if the burst
 * is on (a: its activation) and the spike ends before its offset (fits),
 * and draw the next spike time.
 */
static inline void spike_start(struct emg_synth *s, struct chan *ch, double a, bool fits,
			       double scale, uint64_t *next_spike, unsigned *sp_i, double *sp_amp)
{
	double k = 2.0 + 2.0 * rng_uni(&ch->spk);
	bool neg = rng_next(&ch->spk) & 1;

	if (a >= 0.05 && fits) {
		*sp_i = 0;
		*sp_amp = (neg ? -k : k) * a * scale;
	}
	*next_spike += 1 + (uint64_t)(-log(rng_uni(&ch->spk)) * s->rate / MU_SPIKE_RATE);
}

/*
 * One sample of the motion artefacts at script sample `at`: the next one
 * (*mt) starts there, the current one (*mcur) plays out a critically damped
 * pulse plus a decaying ring (m_k, m_r: pulse; m_re, m_im: ring) for m_left
 * more samples.
 */
static inline double motion_step(const struct motion **mt, const struct motion **mcur,
				 uint64_t at, uint64_t *m_left, double *m_k, double *m_r,
				 double *m_re, double *m_im)
{
	const struct motion *m;
	double v, re;

	if (at == (*mt)->start) {
		*mcur = (*mt)++;
		*m_left = (*mcur)->len;
		*m_k = 0, *m_r = 1, *m_re = (*mcur)->re0, *m_im = (*mcur)->im0;
	}
	if (!*m_left)
		return 0.0;
	m = *mcur;
	re = *m_re * m->rc - *m_im * m->rs;
	v = m->amp * m->kscale * *m_k * *m_r + *m_im;
	*m_im = *m_re * m->rs + *m_im * m->rc;
	*m_re = re;
	*m_k += 1.0;
	*m_r *= m->d1;
	(*m_left)--;
	return v;
}

/* Add each receiving channel's low-passed cross-talk (s->xbuf) to frames, then clip. */
static void xtalk_pass(struct emg_synth *s, float *frames, unsigned len)
{
	const unsigned C = s->channels;
	const double xb0 = s->x_b0, xa1 = s->x_a1;

	for (unsigned c = 0; c < C; c++) {
		struct chan *ch = &s->ch[c];
		float *out = frames + c;

		if (!ch->nx)
			continue;
		for (unsigned f = 0; f < len; f++, out += C) {
			double v = *out;

			for (unsigned i = 0; i < ch->nx; i++) {
				double x = s->xbuf[(size_t)ch->xsrc[i] * CHUNK + f];
				double *st = ch->xs[i];
				double z1 = xb0 * (x + st[0]) - xa1 * st[1];
				double z2 = xb0 * (z1 + st[2]) - xa1 * st[3];

				st[0] = x, st[1] = z1, st[2] = z1, st[3] = z2;
				v += ch->xk[i] * z2;
			}
			*out = clip_uv(v);
		}
	}
}

static void run_chunk_real(struct emg_synth *s, float *frames, unsigned len, uint64_t pos,
			   uint64_t pp, bool resync)
{
	const unsigned C = s->channels;
	const double hb0 = s->hp_b0, ha1 = s->hp_a1, lb0 = s->lp_b0, la1 = s->lp_a1;

	mains_chunk(s, len, pos, resync);
	if (s->ecg)
		ecg_chunk(s, len, pos);

	const bool mains = s->mains, wander = s->wander, pops = s->pops, ramps = s->ramps;
	const bool ecg = s->ecg, motion = s->motion, xt = s->crosstalk;
	const uint64_t kmask = s->knot - 1;
	const double inv_knot = 1.0 / s->knot, knot = s->knot;
	const double (*hum)[6] = (const double (*)[6])s->scratch;
	const double (*ecs)[5] = (const double (*)[5])s->ecg_s;
	const double *sp = s->sp_tmpl;
	const unsigned sp_len = s->sp_len;

	for (unsigned c = 0; c < C; c++) {
		struct chan *ch = &s->ch[c];
		double hx = ch->hp_x, hy = ch->hp_y, l1x = ch->lp1_x, l1y = ch->lp1_y;
		double l2x = ch->lp2_x, l2y = ch->lp2_y;
		const double gain = ch->gain, sigma = ch->sigma, tonic = ch->tonic;
		const double spk_scale = ch->mvc_uv;
		struct rng r_emg = ch->emg, r_noise = ch->noise, r_wander = ch->wander;
		struct rng r_mu = ch->mu;
		double mv = ch->mod_v, mdv = ch->mod_dv, wv = ch->wav_v, wdv = ch->wav_dv;
		const double h00 = ch->hum[0][0], h01 = ch->hum[0][1], h10 = ch->hum[1][0];
		const double h11 = ch->hum[1][1], h20 = ch->hum[2][0], h21 = ch->hum[2][1];
		const double e0 = ch->ecg_w[0], e1 = ch->ecg_w[1], e2 = ch->ecg_w[2];
		const double e3 = ch->ecg_w[3], e4 = ch->ecg_w[4];
		double pop_v = ch->pop_v, pop_d = ch->pop_d;
		uint64_t next_pop = ch->next_pop, next_spike = ch->next_spike, m_left = ch->m_left;
		unsigned sp_i = ch->sp_i;
		double sp_amp = ch->sp_amp;
		double m_k = ch->m_k, m_r = ch->m_r, m_re = ch->m_re, m_im = ch->m_im;
		const struct motion *mt = &ch->m[ch->mcur], *mcur = ch->mcur ? mt - 1 : mt;
		const struct burst *bp = &ch->b[ch->cur];
		double *xb = xt ? s->xbuf + (size_t)c * CHUNK : NULL;
		float *out = frames + c;

		if (resync)
			chan_resync(ch, pos);
		for (unsigned f = 0; f < len; f++, out += C) {
			double y3 = shaped(s, &r_emg, hb0, ha1, lb0, la1, &hx, &hy, &l1x, &l1y, &l2x,
					   &l2y);

			if (((pos + f) & kmask) == 0) {
				knot_step(ch, &r_wander, wander, inv_knot, &mv, &mdv, &wv, &wdv);
				if (ramps) { /* plain fluctuation times the MU gain, both interpolated */
					double g0 = ch->mu_next, m1 = mv + mdv * knot;

					ch->mu_next = mu_advance(s, ch, &r_mu);
					mv *= g0;
					mdv = (m1 * ch->mu_next - mv) * inv_knot;
				}
			}
			double a = envelope_real(&bp, pp + f);
			double emg = (tonic != 0 ? a + tonic : a) * mv * gain * y3;
			mv += mdv;

			if (ramps) {
				if (pos + f == next_spike)
					spike_start(s, ch, a, pp + f + sp_len <= bp->offset, spk_scale,
						    &next_spike, &sp_i, &sp_amp);
				if (sp_i < sp_len)
					emg += sp_amp * sp[sp_i++];
			}
			if (xb)
				xb[f] = emg;
			double v = emg + sigma * zig_normal(&s->zig, &r_noise);

			if (mains) {
				const double *h = hum[f];

				v += h00 * h[0] + h01 * h[1] + h10 * h[2] + h11 * h[3] + h20 * h[4] +
				     h21 * h[5];
			}
			if (wander) {
				v += wv;
				wv += wdv;
			}
			if (pops)
				v += pop_step(s, ch, pos + f, &next_pop, &pop_v, &pop_d);
			if (ecg) {
				const double *h = ecs[f];

				v += e0 * h[0] + e1 * h[1] + e2 * h[2] + e3 * h[3] + e4 * h[4];
			}
			if (motion)
				v += motion_step(&mt, &mcur, pp + f, &m_left, &m_k, &m_r, &m_re, &m_im);
			if (ch->nx) {
				*out = (float)v; /* unclipped: the cross-talk pass adds, then clips */
				continue;
			}
			*out = clip_uv(v);
		}
		ch->hp_x = hx, ch->hp_y = hy, ch->lp1_x = l1x, ch->lp1_y = l1y;
		ch->lp2_x = l2x, ch->lp2_y = l2y;
		ch->emg = r_emg, ch->noise = r_noise, ch->wander = r_wander, ch->mu = r_mu;
		ch->mod_v = mv, ch->mod_dv = mdv, ch->wav_v = wv, ch->wav_dv = wdv;
		ch->cur = (size_t)(bp - ch->b);
		ch->pop_v = pop_v, ch->pop_d = pop_d, ch->next_pop = next_pop;
		ch->next_spike = next_spike, ch->sp_i = sp_i, ch->sp_amp = sp_amp;
		ch->mcur = (size_t)(mt - ch->m), ch->m_left = m_left;
		ch->m_k = m_k, ch->m_r = m_r, ch->m_re = m_re, ch->m_im = m_im;
	}
	if (xt)
		xtalk_pass(s, frames, len);
}

void emg_synth_generate(struct emg_synth *s, float *frames, unsigned nframes)
{
	while (nframes) {
		uint64_t pos = s->pos, pp = s->ppos;
		uint64_t len = nframes;

		if (len > CHUNK)
			len = CHUNK;
		if (len > RESYNC - pos % RESYNC)
			len = RESYNC - pos % RESYNC;
		if (len > s->length - pp)
			len = s->length - pp;
		if (pp == 0)
			for (unsigned c = 0; c < s->channels; c++)
				s->ch[c].cur = 0, s->ch[c].mcur = 0;
		if (s->real)
			run_chunk_real(s, frames, (unsigned)len, pos, pp, pos % RESYNC == 0);
		else
			run_chunk(s, frames, (unsigned)len, pos, pp, pos % RESYNC == 0);
		frames += len * s->channels;
		nframes -= (unsigned)len;
		s->pos += len;
		s->ppos += len;
		if (s->ppos == s->length)
			s->ppos = 0;
	}
}

uint64_t emg_synth_position(const struct emg_synth *s)
{
	return s->pos;
}

unsigned emg_synth_channels(const struct emg_synth *s)
{
	return s->channels;
}

double emg_synth_rate(const struct emg_synth *s)
{
	return s->rate;
}

uint64_t emg_synth_script_length(const struct emg_synth *s)
{
	return s->length;
}

/* Index of the first truth entry with onset >= p. */
static size_t truth_lower(const struct emg_synth *s, uint64_t p)
{
	size_t lo = 0, hi = s->ntruth;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->truth[mid].onset < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t emg_synth_truth(const struct emg_synth *s, uint64_t from, uint64_t to,
		       struct emg_truth *out, size_t max)
{
	const uint64_t L = s->length;
	size_t total = 0, written = 0;

	if (to <= from || s->ntruth == 0)
		return 0;
	uint64_t k0 = from / L, k1 = (to - 1) / L;

	for (uint64_t k = k0; k <= k1; k++) {
		uint64_t base = k * L;
		uint64_t lo = k == k0 ? from - base : 0;
		uint64_t hi = k == k1 ? to - base : L;
		size_t i0, i1;

		if (k > k0 && k < k1 && written >= max) {
			/* whole periods that cannot be written: count them at once */
			total += (size_t)(k1 - k) * s->ntruth;
			k = k1 - 1;
			continue;
		}
		i0 = truth_lower(s, lo);
		i1 = truth_lower(s, hi);
		total += i1 - i0;
		for (size_t i = i0; i < i1 && written < max; i++) {
			out[written] = s->truth[i];
			out[written].onset += base;
			out[written].offset += base;
			out[written].onset_cross += base;
			out[written].offset_cross += base;
			written++;
		}
	}
	return total;
}

void emg_synth_levels(const struct emg_synth *s, unsigned ch, double *noise_uv, double *mvc_uv)
{
	double n = 0, m = 0;

	if (ch < s->channels) {
		n = s->ch[ch].noise_uv;
		m = s->ch[ch].mvc_uv;
	}
	if (noise_uv)
		*noise_uv = n;
	if (mvc_uv)
		*mvc_uv = m;
}

double emg_synth_activation(const struct emg_synth *s, unsigned ch, uint64_t n)
{
	if (ch >= s->channels || s->length == 0)
		return 0;
	const struct chan *c = &s->ch[ch];
	uint64_t p = n % s->length;
	size_t lo = 0, hi = c->nb;

	while (lo < hi) { /* first burst with onset > p */
		size_t mid = lo + (hi - lo) / 2;

		if (c->b[mid].onset <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || p >= c->b[lo - 1].offset)
		return 0;
	return burst_act(&c->b[lo - 1], p);
}

double emg_synth_ecg_amplitude(const struct emg_synth *s, unsigned ch)
{
	return ch < s->channels ? s->ch[ch].ecg_amp : 0;
}

size_t emg_synth_heartbeats(const struct emg_synth *s, uint64_t from, uint64_t to, uint64_t *out,
			    size_t max)
{
	struct heart h = s->heart0;
	size_t total = 0;

	if (!s->ecg)
		return 0;
	/* beats 0 and 1 as created, then every shift brings one new beat[2] */
	for (unsigned i = 0;; i++) {
		int64_t b = i < 2 ? h.beat[i] : h.beat[2];

		if (b >= 0 && (uint64_t)b >= to)
			break;
		if (b >= 0 && (uint64_t)b >= from) {
			if (out && total < max)
				out[total] = (uint64_t)b;
			total++;
		}
		if (i >= 2)
			heart_shift(&h, &s->zig, s->rate);
	}
	return total;
}

/* ---------------------------------------------------------- device ops */

/* The device thread is emg_paced's (paced.h): frames due every ~1 ms tick,
 * sleeping to absolute deadlines; a synth loses nothing. */
struct synth_dev {
	struct emg_paced_dev p;  /* first: the paced device (and the generic handle) */
	struct emg_synth *s;
	uint64_t seed;
	uint64_t hang_at;        /* fault injection: sample index where delivery stops, 0 = never */
	float *buf;
};

static int synth_produce(struct emg_paced_dev *p, unsigned n)
{
	struct synth_dev *d = (struct synth_dev *)p;
	uint64_t seq = emg_synth_position(d->s);

	if (d->hang_at && seq >= d->hang_at) {
		/* A hung amplifier: no data, no state change, only stop() ends it.
		 * Check the flag every 10 ms; this is a test aid, not the sample path. */
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 10000000 };
		nanosleep(&ts, NULL);
		return 0;
	}
	if (n) {
		emg_synth_generate(d->s, d->buf, n);
		p->cb.data(p->cb.ud, d->buf, n, seq, 0, emg_now_ns());
	}
	return 0;
}

static int synth_open(struct emg_device **out, const struct emg_device_config *cfg)
{
	struct synth_dev *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->p.dev.ops = &emg_synth_ops;
	d->p.realtime = cfg->realtime;
	d->p.running_why = "synth running";
	d->p.produce = synth_produce;
	d->seed = cfg->seed;
	atomic_init(&d->p.stop, false);
	r = emg_synth_new(&d->s, cfg);
	if (r < 0) {
		free(d);
		return r;
	}
	double rate = emg_synth_rate(d->s);
	d->p.rate = rate;
	if (cfg->hang_after_s > 0)
		d->hang_at = (uint64_t)ceil(cfg->hang_after_s * rate);
	size_t maxn = rate >= 1000.0 ? (size_t)ceil(rate / 1000.0) + 1 : 1;

	d->buf = calloc(maxn * emg_synth_channels(d->s), sizeof(float));
	if (!d->buf) {
		emg_synth_free(d->s);
		free(d);
		return -ENOMEM;
	}
	*out = &d->p.dev;
	return 0;
}

static void synth_info(struct emg_device *dev, struct emg_device_info *info)
{
	struct synth_dev *d = (struct synth_dev *)dev;

	memset(info, 0, sizeof(*info));
	snprintf(info->driver, sizeof(info->driver), "synth");
	snprintf(info->model, sizeof(info->model), "emgd synthetic sEMG");
	snprintf(info->serial, sizeof(info->serial), "SYNTH-%" PRIu64, d->seed);
	info->rate = emg_synth_rate(d->s);
	info->channels = emg_synth_channels(d->s);
	info->phys_min_uv = -PHYS_MAX_UV;
	info->phys_max_uv = PHYS_MAX_UV;
}

static void synth_close(struct emg_device *dev)
{
	struct synth_dev *d = (struct synth_dev *)dev;

	if (!d)
		return;
	emg_paced_stop(dev);
	emg_synth_free(d->s);
	free(d->buf);
	free(d);
}

#define OPT(f) offsetof(struct emg_device_config, f)

static const char *const scenario_names[] = { "session", "rest", "bridge", "hip_thrust",
					      "abduction", "prone_hip_ext", NULL };
/* In enum emg_synth_realism order. */
static const char *const realism_names[] = { "plain", "realistic", NULL };

static const struct emg_device_option synth_options[] = {
	EMG_PACED_REALTIME_OPTION,
	{ "seed", EMG_OPT_U64, OPT(seed), 0, 0, NULL, "1", "an unsigned 64-bit integer",
	  "random seed; the same seed gives the same signal, sample for sample" },
	{ "snr_db", EMG_OPT_DOUBLE, OPT(snr_db), 0, 80, NULL, "30", "0..80 dB",
	  "a 50 % MVC contraction's RMS over the noise RMS in the 20-450 Hz band" },
	{ "mains_uv", EMG_OPT_DOUBLE, OPT(mains_uv), 0, 5000, NULL, "20", "0..5000 uV",
	  "peak mains hum at the [dsp] mains frequency" },
	{ "wander", EMG_OPT_BOOL, OPT(wander), 0, 0, NULL, "yes", "yes or no", "baseline wander" },
	{ "pops", EMG_OPT_BOOL, OPT(pops), 0, 0, NULL, "yes", "yes or no", "electrode pops" },
	{ "hang_after_s", EMG_OPT_DOUBLE, OPT(hang_after_s), 0, 1e6, NULL, "0",
	  "0 (never) or seconds: synth stops delivering, to test the watchdog",
	  "fault injection: stop delivering after this many seconds" },
	{ "scenario", EMG_OPT_CHOICE, OPT(scenario), 0, 0, scenario_names, "session",
	  "session, rest, bridge, hip_thrust, abduction or prone_hip_ext",
	  "the scripted exercise, repeated for ever" },
	{ "realism", EMG_OPT_ENUM, OPT(realism), 0, 0, realism_names, "plain", "realistic or plain",
	  "plain: the original generator; realistic: ramps, ECG, tonic, cross-talk, motion" },
	{ "ecg_uv", EMG_OPT_DOUBLE, OPT(ecg_uv), 0, 1000, NULL, "100", "0 (off) .. 1000 uV",
	  "realistic: ECG R peak on the channel nearest the heart" },
	{ "ramps", EMG_OPT_BOOL, OPT(ramps), 0, 0, NULL, "yes", "yes or no",
	  "realistic: 20-300 ms recruitment ramps and motor-unit-like fluctuation" },
	{ "crosstalk", EMG_OPT_BOOL, OPT(crosstalk), 0, 0, NULL, "yes", "yes or no",
	  "realistic: a muscle's EMG leaks into its same-side neighbours" },
	{ "tonic", EMG_OPT_BOOL, OPT(tonic), 0, 0, NULL, "yes", "yes or no",
	  "realistic: 1-3 % MVC tonic activity on postural muscles" },
	{ "motion", EMG_OPT_BOOL, OPT(motion), 0, 0, NULL, "yes", "yes or no",
	  "realistic: motion artefacts as each repetition's movement starts" },
	{ .name = NULL },
};

const struct emg_device_ops emg_synth_ops = {
	.name = "synth",
	.help = "synthetic sEMG with scripted hip exercises, artefacts and ground truth",
	.options = synth_options,
	.open = synth_open,
	.info = synth_info,
	.start = emg_paced_start,
	.stop = emg_paced_stop,
	.close = synth_close,
};
