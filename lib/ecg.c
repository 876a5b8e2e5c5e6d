/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecg.h"
#include "filter.h"
#include "simd.h"

#define CACHELINE 64
#define LINE_FLOATS (CACHELINE / sizeof(float))

/* Frames the high-pass gathers at a time when only some lanes take it. */
#define HP_CHUNK 64u

/* Fast energy EMA: short enough to rise on the QRS upstroke, long enough
 * (about 6 degrees of freedom at 1 kHz) that noise alone rarely reaches thr. */
#define FAST_MS 3.0
/* A lane is busy (contracting) when more than BUSY_MAX of its samples over
 * the last ~BUSY_MS exceed BUSY_RATIO times its median energy.  A QRS keeps a
 * lane above that for 60..100 ms, i.e. at most ~40 % on this EMA. */
#define BUSY_MS 200.0
#define BUSY_RATIO 4.0f
#define BUSY_MAX 0.6f
/* A busy lane's median rises this many times slower (ecg_kernel.h, vote()). */
#define NOISE_BUSY_DIV 16.0f
/* Lowest energy a median may take: keeps e/med finite on a dead channel. */
#define FLOOR_E 1e-20f
/* Median tracker: x2 per second at most once settled, e^4 per second while starting. */
#define ETA_PER_S 0.69
#define ETA_FAST_PER_S 4.0
#define FAST_S 2.0
/* The first COPY_MS the median simply follows e (no history yet). */
#define COPY_MS 20.0
/* No detection during the band-pass start-up transient. */
#define WARM_S 1.0
/*
 * Each lane votes with its energy ratio e/med divided by its own learnt QRS
 * peak ratio q (Q_INIT until learnt): once learnt, every lane's vote has the
 * same shape, peaking near 1 on each beat, so the weighted mean - and the
 * sample where it crosses the threshold, to which the templates are aligned
 * - does not move when a contracting lane drops out of the vote.
 * Threshold: THR_FRAC of the running peak of the vote, and never below the
 * vote of the noisiest lane alone at a ratio of THR_MIN (noise alone stays
 * well below that ratio).
 */
#define THR_MIN 10.0f
#define THR_FRAC 0.08f
/*
 * Before any lane has learnt its QRS every lane votes with weight 1, and a
 * beat that shows on a few of many lanes is diluted by all the others: with 4
 * strong of 64 lanes (most of a trunk map sees little ECG) beats voted
 * ~0.11 for a guard of 0.1, half of them were missed and the rhythm the
 * lanes learn on did not form for 10 s.  Noise alone votes ~0.012 at any lane
 * count, its spread shrinking as 1/sqrt(lanes): so until the first lane has
 * learnt, the guard on the mean is lowered by sqrt(DIL_LANES / lanes) above
 * DIL_LANES lanes (0.035 at 64).  The per-lane guard of the two-lane rule
 * (a burst starts on one lane) stays, and a vote only over the lowered floor
 * needs DIL_NA lanes over it.
 */
#define DIL_LANES 8
/* Lanes over the per-lane guard a vote under thr_guard needs (ecg_kernel.h). */
#define DIL_NA 4.0f
/* ... but the guard never above GUARD_MAX: a beat votes ~1 on the learnt scale,
 * and a guard above that (lanes whose QRS is only a few times their noise)
 * would never let the detector fire again. */
#define GUARD_MAX 1.0f
/*
 * While on a rhythm, a crossing before EXP_LO x the mean RR after the last
 * beat (a burst, not the heart) must reach EARLY_MULT x the threshold.  There
 * is no lower threshold where the next beat is due: one was meant to find the
 * beats contractions hide, but the lanes' agreement is checked at the full
 * threshold, so it never acted.  Made to act (0.5x from 0.8 to 1.2 RR, and k
 * RR on), it found more beats in the realistic session at 20 dB (224 -> 290
 * of 480) with more triggers off the heart (147 -> 203), moved the triggers
 * at rest 3 ms earlier on the upstroke (the published RMS on hip_flex_l 1.08
 * -> 1.15) and left the onsets no better (lag p90 55.5 -> 60.4 ms at 20 dB,
 * false onsets 0.73 -> 0.53 per muscle-minute at 40 dB).
 */
#define EXP_LO 0.8
#define EARLY_MULT 1.5f
#define EXP_BEATS 4.5
/* An interval within MISS_DEV x sqrt(m) x the mean RR of m = 2..EXP_BEATS RR: beats were
 * missed (the m intervals' own variability adds up like a random walk). */
#define MISS_DEV 0.15
/* MISS_RUN such intervals without one of a single mean RR between them (off
 * the rhythm ones may come between): the mean RR is a fraction of the real
 * one, not beats hidden by bursts, and the last interval replaces it.  An
 * artefact halfway between two beats confirms half the real interval, after
 * which every real one looks like "two RR, one beat missed".  Counting the
 * off-rhythm intervals too replaced a right mean RR during the session at
 * 20 dB (bench_onset beats: 206 instead of 224 of 480 beats found). */
#define MISS_RUN 4
/* Templates and thresholds learn only from beats within LEARN_DEV of the rhythm. */
#define LEARN_DEV 0.12
#define Q_INIT 100.0f
/* Per-lane clip of the vote before learning, and after (twice its own QRS peak). */
#define CAP_INIT 10.0f
#define CAP_LEARNT 2.0f
/* Leave-one-out check only when the other voting lanes weigh at least this much. */
#define LOO_MIN_W 0.3f
/* QRS peak search window after the trigger. */
#define PEAK_MS 80.0
/* A trigger whose lanes still vote over the threshold this long after it was
 * a burst, not a QRS (beat_was_burst): a QRS, even a wide one (bundle branch
 * block, 120-160 ms), is over by then - the trigger comes on its upstroke -
 * while the lanes of a contraction vote for ~180 ms before they count as busy. */
#define CHECK_MS 120.0
/* ... and whose energy there is still over 1 / BURST_FALL of its peak in the
 * peak window.  A QRS has fallen 100-1000x by then, a contraction's energy
 * only by the few-fold its 3 ms EMA fluctuates (under 1/64: ~1e-3).  The vote
 * alone is not enough where the heart is strong: a 1.5-2 mV R peak over a few
 * uV of rest still votes over the threshold 120 ms on, in the filters' ring,
 * and every beat was taken back as a burst. */
#define BURST_FALL 64.0f
/* Refractory period: REFR_FRAC of the mean RR, within REFR_MIN..REFR_MAX. */
#define REFR_FRAC 0.6
#define REFR_MIN_S 0.25
#define REFR_MAX_S 0.45
/* Template learning: plain average over the first LEARN_N beats, then 1/LEARN_N. */
#define LEARN_N 8
#define LEARN_W 16
/* Innovation clip once learnt: CLIP_SD noise SDs (plus half the template, in sub()). */
#define CLIP_SD 3.0f
/* Subtraction only while locked on a rhythm: LOCK_N consecutive RR intervals
 * of LOCK_RR_MIN_S..LOCK_RR_MAX_S within LOCK_DEV of the running mean RR
 * (heart-rate variability is a few %, rarely 15 %); it stops at the first
 * interval off the rhythm and when no beat came for LOCK_LOST x the mean RR. */
#define LOCK_N 3
#define LOCK_RR_MIN_S 0.33
#define LOCK_RR_MAX_S 1.5
#define LOCK_DEV 0.25
#define LOCK_LOST 2.2
/* Per-lane check that subtracting helps: the energy of each clean beat's
 * window after subtraction over before, averaged with EFF_ALPHA; the template
 * is applied while that stays under EFF_OFF, and again once it is under
 * EFF_ON.  A template aligned on a trigger that jitters by a few ms against
 * the R peak doubles a sharp QRS instead of removing it: at 40 dB on the
 * realistic synth, glute max at rest showed 2-4x its QRS energy after it. */
#define EFF_INIT 0.5f
#define EFF_ALPHA 0.25f
#define EFF_OFF 1.0f
#define EFF_ON 0.9f
/*
 * Pre-trigger template: the PRE_MS before each trigger.  The trigger comes on
 * the QRS upstroke ~13 ms before R; the Q wave and the upstroke below it start
 * ~40 ms before R, so ~27 ms of every beat precede the trigger and stay in
 * the signal.  40 ms covers them with room for the trigger's jitter against R
 * (a few ms); much longer would only learn noise from the quiet before the Q.
 */
#define PRE_MS 40.0
/*
 * Per-beat fit.  One template subtracted as it is leaves, of every beat,
 * what differs from the mean beat: its amplitude, which follows breathing
 * and posture (R amplitude CV 10-28 % on emgGO's real recordings), and its
 * alignment - the trigger is a threshold crossing, and an amplitude that
 * changes moves it by a fraction of a ms, the sample grid by up to half a
 * sample (2 ms at 250 Hz).  On a 2 mV beat, 0.8 ms against the R and S
 * slopes leave more than 100 uV.  So each beat fits its lane's input as
 * x ~ a t + b t' over the beat so far (least squares; t the template, t' its
 * slope per sample, b / a minus the shift to first order), updated every
 * sample and applied to the next: causal, no delay.  The sums start at
 * FIT_PRIOR noise-only samples' worth of a = 1, b = 0 (a ridge in units of
 * the lane's noise power), so a lane whose QRS hardly stands over its noise
 * keeps the plain template; a is held within FIT_A_MIN..FIT_A_MAX (a beat
 * the trigger took on a P wave fits the QRS template badly: a goes towards 0
 * and little is subtracted where no QRS is; held at 0.5 instead, the real
 * tibialis recording made 4 false onsets in 7 minutes of rest, not 2) and the
 * shift within FIT_SHIFT_MS, and a lane contracting (busy) stops
 * updating the fit: its EMG is not the beat.
 */
#define FIT_PRIOR 25.0f
#define FIT_A_MIN 0.0f
#define FIT_A_MAX 2.0f
#define FIT_SHIFT_MS 2.0
/* Lanes with fewer learnt beats than this vote with weight 1. */
#define WEIGHT_MIN_BEATS 4
/* Weight = q^2 / (q^2 + WEIGHT_Q^2) for a template QRS peak of q times the lane's noise
 * energy: lanes whose ECG hardly shows (q ~ 1..10) would only add noise to the vote. */
#define WEIGHT_Q 50.0f

struct emg_ecg {
	enum emg_ecg_mode mode;
	double fs;
	double hp_hz;
	size_t nl;
	size_t stride;    /* lanes padded to a cache line */

	/* high-pass */
	struct emg_filter *hp;
	unsigned nhp;     /* lanes it runs on */
	uint16_t *hp_lane;/* their indices when not all lanes */
	float *hp_buf;    /* HP_CHUNK x nhp gathered samples */
	float *pre;       /* HP_CHUNK x nl: the frames before the high-pass, which the detector sees */

	/* subtraction: per-lane arrays, stride floats each */
	float *en;   /* fast energy */
	float *med;  /* running median of en */
	float *busy; /* EMA of en > BUSY_RATIO * med */
	float *w;    /* detection weight (0 for skipped and padding lanes) */
	float *cap;  /* clip of the vote */
	float *iq;   /* 1 / the lane's QRS peak ratio over noise (for the threshold guard) */
	float *imed; /* 1 / med */
	float *dm;   /* vote = en * (dm / med + dp): 1 / Q_INIT until learnt, then 0 */
	float *dp;   /* 0 until learnt, then 1 / the template's QRS peak energy */
	float *ga;   /* learning gain of the current beat (0 = not learning) */
	float *lim;  /* innovation clip of the current beat */
	float *pk;   /* largest fast energy in the peak window of the current beat */
	float *qe;   /* the lane's QRS peak energy, learnt from the beats on the rhythm */
	float *cnt;  /* beats learnt */
	float *on;   /* 1 if the lane takes part */
	float *row;  /* a padded frame for the last partial group */
	float *tmpl; /* K x stride template, aligned on the trigger */
	float *ein;  /* energy of the current beat's window before subtraction ... */
	float *eout; /* ... and after it (whether or not it is applied) */
	float *eff;  /* EMA of eout / ein over clean beats: does subtracting help? */
	float *app;  /* 1 where the template is subtracted, 0 where it would add energy */
	float *pin, *pout, *peff, *papp; /* the same for the pre-trigger template */
	/* the current beat's fit x ~ a t + b t' (t: the template, t' its slope; "Per-beat fit") */
	float *fxt, *fxd, *ftt, *fdd, *ftd; /* sums of x t, x t', t^2, t'^2, t t' */
	float *fa, *fb;                     /* a and b for the next sample */
	float fit_shift;                    /* FIT_SHIFT_MS in samples */
	float *hist; /* P x nl ring: the stage's output of frame s in row s % P, up to the current run call */
	const float *cur; /* the frames of the current run call (kernel), from sample t_cur on */
	uint64_t t_cur;
	float *tpre; /* P x stride pre-trigger template, row j for trigger - P + j */
	float *fixx; /* EMG_ECG_FIX_MAX x P x nl: the corrected pre-trigger frames of the last triggers */
	uint8_t *fixl; /* EMG_ECG_FIX_MAX x nl: where they apply */
	unsigned fixf[EMG_ECG_FIX_MAX]; /* their trigger frame in the current emg_ecg_run() call */
	unsigned nfix;  /* triggers listed in the current call (the last EMG_ECG_FIX_MAX kept) */
	/* every trigger of the current call as the stage stood right after it (emg_ecg_trigger_at) */
	struct { unsigned frame; int locked; double rr; } trig[EMG_ECG_TRIG_MAX];
	float *trig_qrs;       /* EMG_ECG_TRIG_MAX x nl: emg_ecg_lane_qrs() then */
	uint8_t *trig_learnt;  /* EMG_ECG_TRIG_MAX x nl: emg_ecg_lane_learnt() then */
	unsigned ntrig;        /* triggers in the current call (the last EMG_ECG_TRIG_MAX kept) */
	uint64_t t_run; /* e->t when the current emg_ecg_run() call began */
	unsigned P;
	float thr_guard;
	float dil;        /* the guard's factor on the mean until a lane has learnt (DIL_LANES) */
	float a_fast, a_busy, eta, eta_fast;
	unsigned K, kpk, kchk;
	unsigned k;  /* sample of the current beat, K = no beat */
	uint64_t t, copy_n, fast_n, warm_n;

	/* detector */
	float thr, spk, spk_cur, spk_decay;
	int above;
	int learnt;  /* some lane votes on its learnt scale: the leave-one-out check applies */
	unsigned non; /* lanes taking part */
	uint64_t beats;
	int learn;       /* the current beat is on the rhythm: templates and thresholds learn from it */
	/* The rhythm: what a trigger changes, and beat_undo() puts back as it
	 * was before the trigger (prev). */
	struct ecg_rhythm {
		uint64_t last;    /* the last beat's trigger sample */
		uint64_t refr;    /* refractory period, samples */
		double rr;        /* mean RR interval, samples; 0 = unknown */
		unsigned rr_odd;  /* consecutive intervals outside the accepted range */
		int rr_ok;        /* rr confirmed: an interval fell within LOCK_DEV of it since it was set */
		unsigned rr_miss; /* intervals taken as whole multiples of rr since the last single one */
		unsigned lock_n;  /* consecutive beats on a plausible, steady rhythm */
		float apply;      /* 1 while locked on a rhythm: templates are subtracted; 0: only learnt */
	} rh, prev;

	void (*run)(struct emg_ecg *e, float *frames, const float *det, unsigned n);
	void (*pre_frame)(struct emg_ecg *e, const float *x, float *tp, float *out);
};

void emg_ecg_params_default(struct emg_ecg_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = EMG_ECG_SUBTRACT;
	p->highpass_hz = 30.0;
	p->highpass_order = 4;
	p->window_ms = 400.0;
}

static const char *const mode_names[] = { "off", "highpass", "subtract", "both" };

int emg_ecg_mode_parse(const char *s, enum emg_ecg_mode *out)
{
	for (unsigned i = 0; i < 4; i++)
		if (!strcmp(s, mode_names[i])) {
			*out = (enum emg_ecg_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *emg_ecg_mode_name(enum emg_ecg_mode m)
{
	return (unsigned)m < 4 ? mode_names[m] : "?";
}

/* One beat's energy after subtraction over before, into the EMA *eff: the new `app` (1 = subtract). */
static float helps(float *eff, float app, float ratio)
{
	*eff += EFF_ALPHA * (ratio - *eff);
	if (app > 0 && *eff > EFF_OFF)
		return 0.0f;
	if (app == 0 && *eff < EFF_ON)
		return 1.0f;
	return app;
}

/*
 * The current beat's window is over (or cut short by the next beat): did
 * subtracting help?  Asked of each template apart: the one after the trigger
 * cleans the signal, the one before only the envelope, and where the QRS is
 * faint (a few times the noise) one may help while the other adds the noise it
 * learnt.
 */
static void beat_done(struct emg_ecg *e)
{
	for (size_t l = 0; l < e->nl; l++) {
		/* only beats that taught the template: the lane was quiet and on the rhythm */
		if (e->ga[l] > 0 && e->ein[l] > 0)
			e->app[l] = helps(&e->eff[l], e->app[l], e->eout[l] / e->ein[l]);
		if (e->ga[l] > 0 && e->pin[l] > 0)
			e->papp[l] = helps(&e->peff[l], e->papp[l], e->pout[l] / e->pin[l]);
		e->ein[l] = e->eout[l] = e->pin[l] = e->pout[l] = 0;
	}
}

/* The stage's output of sample s, one of the P before the current one. */
static const float *out_frame(const struct emg_ecg *e, uint64_t s)
{
	/* this run call's frames are already output; the ring holds earlier ones */
	if (s >= e->t_cur)
		return e->cur + (s - e->t_cur) * e->nl;
	return e->hist + (s % e->P) * e->nl;
}

/* The end of a run call over n frames up to sample t: its last P output frames into the ring. */
static void hist_store(struct emg_ecg *e, const float *frames, unsigned n)
{
	/* One or two contiguous copies per call, not one per frame: this is
	 * all the pre-trigger template costs between beats. */
	const unsigned m = n < e->P ? n : e->P;
	uint64_t s = e->t - m;
	const float *src = frames + (size_t)(n - m) * e->nl;

	for (unsigned left = m; left > 0;) {
		const unsigned row = (unsigned)(s % e->P), k = e->P - row < left ? e->P - row : left;

		memcpy(e->hist + (size_t)row * e->nl, src, (size_t)k * e->nl * sizeof(float));
		src += (size_t)k * e->nl;
		s += k;
		left -= k;
	}
}

/*
 * A new beat starts at sample t: its part before the trigger, the P frames
 * before it, with this beat's learning gains.  The pre-trigger template learns
 * as the other (same gain, same innovation clip; tested against the template
 * before this beat's update, like every subtracted sample), the beat's
 * before/after energies there go to its own check (`papp`, judged in
 * beat_done() once the trigger proved a beat), and on a rhythm the corrected
 * frames are listed for emg_ecg_pre_fix().  Those frames are the stage's
 * output, not its input: the same outside a beat's window, and inside one (a
 * heart rate over ~135 bpm, whose next Q falls in the 400 ms window) what is
 * left of the last beat.  Not inlined: it runs once per beat, and stays out
 * of the per-frame loop that detect() and trigger() are inlined into.
 */
static __attribute__((noinline)) void pre_beat(struct emg_ecg *e)
{
	const size_t nl = e->nl, st = e->stride;
	const unsigned P = e->P, slot = e->nfix % EMG_ECG_FIX_MAX;
	float *fx = e->fixx + (size_t)slot * P * nl;
	uint8_t *fl = e->fixl + (size_t)slot * nl;
	int fix = 0, learn = 0;

	for (size_t l = 0; l < nl; l++) {
		fl[l] = e->rh.apply > 0 && e->papp[l] > 0 && e->on[l] > 0;
		fix |= fl[l];
		learn |= e->ga[l] > 0;
	}
	/* A trigger off the rhythm (a burst) neither teaches nor is corrected:
	 * nothing to do (the energies count only for lanes that learn). */
	if (!fix && !learn)
		return;
	for (unsigned j = 0; j < P; j++)
		e->pre_frame(e, out_frame(e, e->t - P + j), e->tpre + (size_t)j * st, fx + (size_t)j * nl);
	if (fix) {
		e->fixf[slot] = (unsigned)(e->t - e->t_run);
		e->nfix++;
	}
}

/* A new beat starts at sample t: RR bookkeeping and this beat's learning gains. */
static void trigger(struct emg_ecg *e)
{
	double rr_now = 0, prev = 0;

	if (e->k < e->K)
		beat_done(e);
	e->prev = e->rh;
	e->learn = 0;
	if (e->beats) {
		double rr = rr_now = (double)(e->t - e->rh.last);
		double m;

		prev = e->rh.rr;
		m = prev > 0 ? floor(rr / prev + 0.5) : 0;

		/* Only against a confirmed mean RR: a first guess from a trigger off
		 * the heart (an artefact on a lane or two, likelier with 32-64 lanes)
		 * can be half the real interval, and then every real interval is
		 * "two RR with one beat missed" - the guess never corrects and the
		 * lock never forms (bench_dsp -R -S rest -c 64: RR 749 for 1494). */
		if (e->rh.rr_ok && m >= 2 && m <= EXP_BEATS &&
		    fabs(rr - m * prev) <= MISS_DEV * sqrt(m) * prev) {
			if (++e->rh.rr_miss < MISS_RUN) {
				/* On the rhythm, with m - 1 beats missed (hidden by contractions):
				 * the lock holds and this beat teaches, the mean RR stays. */
				e->learn = e->rh.lock_n > 0 && fabs(rr - m * prev) <= LEARN_DEV * prev;
				goto beat;
			}
			e->rh.rr_ok = 0; /* below, this interval replaces the mean RR */
			e->rh.rr_miss = 0;
		}
		if (e->rh.rr == 0) {
			if (rr >= 0.27 * e->fs && rr <= 2.0 * e->fs)
				e->rh.rr = rr;
		} else if (rr >= 0.6 * e->rh.rr && rr <= 1.6 * e->rh.rr) {
			e->rh.rr += (rr - e->rh.rr) / 8.0;
			e->rh.rr_odd = 0;
			e->rh.rr_miss = 0;
		} else if (!e->rh.rr_ok && rr >= 0.27 * e->fs && rr <= 2.0 * e->fs) {
			e->rh.rr = rr; /* an unconfirmed guess weighs no more than this interval */
			e->rh.rr_odd = 0;
		} else if (++e->rh.rr_odd >= 4 && rr >= 0.27 * e->fs && rr <= 2.0 * e->fs) {
			e->rh.rr = rr; /* the rhythm really changed (or the first guess was wrong) */
			e->rh.rr_odd = 0;
			e->rh.rr_ok = 0;
		}
		/* A heart beats on a rhythm: RR within 0.33..1.5 s and within
		 * LOCK_DEV of the running mean.  Bursts on several muscles at once
		 * also pass the vote, but not on such a rhythm. */
		if (prev > 0 && rr >= LOCK_RR_MIN_S * e->fs && rr <= LOCK_RR_MAX_S * e->fs &&
		    fabs(rr - prev) <= LOCK_DEV * prev) {
			e->rh.lock_n++;
			e->rh.rr_ok = 1;
		} else
			e->rh.lock_n = 0;
		if (e->rh.lock_n >= LOCK_N)
			e->rh.apply = 1.0f;
		else if (e->rh.lock_n == 0)
			e->rh.apply = 0.0f;
		if (e->rh.rr > 0) {
			double r = REFR_FRAC * e->rh.rr;
			r = fmax(REFR_MIN_S * e->fs, fmin(REFR_MAX_S * e->fs, r));
			e->rh.refr = (uint64_t)r;
		}
	}
	e->learn = e->rh.lock_n > 0 && fabs(rr_now - prev) <= LEARN_DEV * prev;
beat:
	e->rh.last = e->t;
	e->beats++;
	e->k = 0;
	/* Learning gains are fixed for the whole beat: a lane learns only if it
	 * was quiet when the beat began (sub() also stops it while busy), and
	 * only from a beat on the rhythm: a trigger on a burst several muscles
	 * start together would teach every lane a template of noise, whose
	 * small peak then puts the lane's vote on a wrong scale. */
	for (size_t l = 0; l < e->nl; l++) {
		e->pk[l] = 0;
		/* the beat's fit starts at a = 1, b = 0, with the weight of FIT_PRIOR noise-only samples */
		e->fxt[l] = e->ftt[l] = e->fdd[l] = FIT_PRIOR * fmaxf(e->med[l], FLOOR_E);
		e->fxd[l] = e->ftd[l] = e->fb[l] = 0;
		e->fa[l] = 1.0f;
		if (e->on[l] == 0 || e->busy[l] >= BUSY_MAX || !e->learn) {
			e->ga[l] = 0;
			continue;
		}
		if (e->cnt[l] < LEARN_N) {
			e->ga[l] = 1.0f / (e->cnt[l] + 1.0f);
			e->lim[l] = 1e30f;
		} else {
			e->ga[l] = 1.0f / LEARN_W;
			e->lim[l] = CLIP_SD * sqrtf(e->med[l]);
		}
		e->cnt[l] += 1.0f;
	}
	pre_beat(e);
}

/* On a rhythm: beats are expected (and, with apply, subtracted). */
static inline int on_rhythm(const struct emg_ecg *e)
{
	return e->rh.lock_n > 0 || e->rh.apply > 0;
}

/*
 * Note the trigger just taken, with the stage's state right after it, for
 * emg_ecg_trigger_at(): the pipeline tells the onset detector of each at its
 * own frame, so what the detector learns of the heart does not depend on how
 * the frames came in blocks (it used to ask once per block for the last beat:
 * a trigger taken back 120 ms later was told with small blocks, not with
 * large ones, and 26 of 146 records of a real recording differed).
 */
static void trig_note(struct emg_ecg *e)
{
	const unsigned slot = e->ntrig % EMG_ECG_TRIG_MAX;

	e->trig[slot].frame = (unsigned)(e->t - e->t_run);
	e->trig[slot].locked = on_rhythm(e);
	e->trig[slot].rr = e->rh.rr;
	for (size_t l = 0; l < e->nl; l++) {
		e->trig_qrs[(size_t)slot * e->nl + l] = emg_ecg_lane_qrs(e, (unsigned)l);
		e->trig_learnt[(size_t)slot * e->nl + l] = (uint8_t)emg_ecg_lane_learnt(e, (unsigned)l);
	}
	e->ntrig++;
}

/* The floor of the threshold on the vote: thr_guard, lowered on many lanes until one has learnt. */
static float vote_guard(const struct emg_ecg *e)
{
	return e->learnt ? e->thr_guard : e->thr_guard * e->dil;
}

/*
 * The scalar half of the detector, once per frame, on the vote s of pass 1;
 * agree is 0 when the lanes other than the strongest voter disagree (a
 * contraction starting on one lane, not a heartbeat seen on several).
 */
static void detect(struct emg_ecg *e, float s, int agree)
{
	float thr = e->thr;
	int above;

	/* on a rhythm, too early for the next beat: a burst unless it is strong */
	if (on_rhythm(e) && (double)(e->t - e->rh.last) < EXP_LO * e->rh.rr)
		thr *= EARLY_MULT;
	above = s >= thr && agree;

	if (above && !e->above && e->t >= e->warm_n && (!e->beats || e->t - e->rh.last >= e->rh.refr)) {
		trigger(e);
		trig_note(e);
		e->spk_cur = s;
	}
	e->above = above;
	if (e->rh.apply > 0 && (double)(e->t - e->rh.last) > LOCK_LOST * e->rh.rr)
		e->rh.apply = 0; /* the beats are gone (or hidden): subtract nothing blindly */
	if (e->rh.lock_n > 0 && (double)(e->t - e->rh.last) > EXP_BEATS * e->rh.rr)
		e->rh.lock_n = 0; /* too long: the next beat starts a rhythm afresh */
	if (e->k < e->kpk && s > e->spk_cur)
		e->spk_cur = s;
	/* A threshold learnt on a huge artefact would hide every real beat: after
	 * 2 s without one it decays (halves per second). */
	if (e->beats && e->t - e->rh.last > (uint64_t)(2.0 * e->fs) && e->spk > 0) {
		e->spk *= e->spk_decay;
		e->thr = fmaxf(vote_guard(e), THR_FRAC * e->spk);
	}
}

/* Lane l's vote at fast energy en (pass 1's formula, clip included). */
static float lane_vote(const struct emg_ecg *e, size_t l, float en)
{
	const float r = en * (e->imed[l] * e->dm[l] + e->dp[l]);

	return r > e->cap[l] ? e->cap[l] : r;
}

/*
 * CHECK_MS after a trigger: was it a burst on several lanes rather than a QRS?
 * The lanes that voted for it (their peak in the peak window over the
 * threshold; not those already busy contracting, whose vote is high anyway)
 * are looked at again: a QRS is over on them by now, a contraction is not.
 * A burst is when lanes holding at least half of their weight still vote over
 * the threshold.  Per lane, so that a real QRS followed within 120 ms by a
 * contraction on one of its lanes (a rep that starts just after a beat) is
 * still a beat: the other lanes have fallen back.
 */
static int beat_was_burst(const struct emg_ecg *e)
{
	float all = 0, still = 0;

	for (size_t l = 0; l < e->nl; l++) {
		if (!(e->w[l] > 0) || e->busy[l] >= BUSY_MAX || lane_vote(e, l, e->pk[l]) < e->thr)
			continue;
		all += e->w[l];
		if (lane_vote(e, l, e->en[l]) >= e->thr && e->en[l] * BURST_FALL >= e->pk[l])
			still += e->w[l];
	}
	return all > 0 && still >= 0.5f * all;
}

/*
 * Take the current trigger back (beat_was_burst): the rhythm, the lock and
 * the refractory period as before it, nothing learnt, nothing more
 * subtracted.  Counted as beats, the triggers at the start of every exercise
 * repetition broke the rhythm lock, and the beats during the exercise went
 * unsubtracted for the three beats the lock takes to form again.
 */
static void beat_undo(struct emg_ecg *e)
{
	for (size_t l = 0; l < e->nl; l++)
		if (e->ga[l] > 0) {
			e->cnt[l] -= 1.0f;
			e->ga[l] = 0;
		}
	e->rh = e->prev;
	e->learn = 0;
	e->beats--;
	e->k = e->K;
	/* The energies of a beat that was none must not weigh in the next
	 * beat's check.  What its 120 ms subtracted and its pre-trigger fix
	 * (emg_ecg_pre_fix) stay: neither the signal nor the RMS envelope
	 * patched with it can be taken back now, and both were corrected with
	 * a template learnt from real beats. */
	for (size_t l = 0; l < e->nl; l++)
		e->ein[l] = e->eout[l] = e->pin[l] = e->pout[l] = 0;
}

/* The peak window of a beat is over: threshold, weights and clips from what it taught. */
static void beat_learned(struct emg_ecg *e)
{
	float wmax = 0, wq = 0;
	int switched = 0;

	if (!e->learn)
		return; /* nothing learnt from a beat off the rhythm */
	for (size_t l = 0; l < e->nl; l++) {
		float q;

		if (e->on[l] == 0 || e->ga[l] == 0)
			continue;
		/* plain average over the first beats, then exponential, as the template */
		e->qe[l] += e->ga[l] * (e->pk[l] - e->qe[l]);
		if (e->cnt[l] < WEIGHT_MIN_BEATS)
			continue;
		q = fmaxf(e->qe[l] / fmaxf(e->med[l], FLOOR_E), 1.0f);
		switched |= e->cap[l] != CAP_LEARNT;
		/* Scaled by the QRS energy itself, not by noise: a median raised by
		 * a contraction must not delay this lane's vote. */
		e->dm[l] = 0;
		e->dp[l] = 1.0f / fmaxf(e->qe[l], FLOOR_E);
		e->iq[l] = 1.0f / q;
		e->w[l] = q * q / (q * q + WEIGHT_Q * WEIGHT_Q);
		e->cap[l] = CAP_LEARNT;
	}
	for (size_t l = 0; l < e->nl; l++) {
		wmax = fmaxf(wmax, e->w[l]);
		wq = fmaxf(wq, e->w[l] * e->iq[l]);
	}
	e->thr_guard = fminf(GUARD_MAX, wmax > 0 ? THR_MIN * wq / wmax : THR_MIN / Q_INIT);
	/* A lane that just switched to its learnt scale changes the vote's scale:
	 * the next beat sets the running peak afresh. */
	e->learnt |= switched;
	/* The running QRS peak learns only from beats on the rhythm (or the first
	 * after a reset): a trigger on a burst must not raise the threshold. */
	if (switched)
		e->spk = 0;
	else if (e->spk == 0)
		e->spk = e->spk_cur;
	else if (e->rh.lock_n > 0)
		e->spk += (e->spk_cur - e->spk) / 8.0f;
	e->thr = fmaxf(vote_guard(e), THR_FRAC * e->spk);
}

#define EMG_KERNEL "ecg_kernel.h"
#include "simd_kernels.h"

static void pick_run(struct emg_ecg *e)
{
	e->run = run_base;
	e->pre_frame = pre_frame_base;
#if EMG_SIMD_X86
	switch (emg_simd_level()) {
	case 4:
		e->run = e->nl >= 16 ? run_v4 : run_v4_8;
		e->pre_frame = e->nl >= 16 ? pre_frame_v4 : pre_frame_v4_8;
		break;
	case 3:
		e->run = run_v3;
		e->pre_frame = pre_frame_v3;
		break;
	}
#endif
}

static float *falloc(size_t n)
{
	float *p = aligned_alloc(CACHELINE, (n * sizeof(float) + CACHELINE - 1) / CACHELINE * CACHELINE);

	if (p)
		memset(p, 0, n * sizeof(float));
	return p;
}

int emg_ecg_new(struct emg_ecg **out, const struct emg_ecg_params *p, double fs, unsigned nlanes)
{
	struct emg_ecg *e;
	float **arrays[31];
	int r = -ENOMEM;

	if (!out || !p || nlanes < 1 || nlanes > EMG_ECG_MAX_LANES || (unsigned)p->mode > 3 ||
	    !(fs >= EMG_FILTER_MIN_RATE && fs <= EMG_FILTER_MAX_RATE) ||
	    !(p->window_ms >= 100 && p->window_ms <= 1000))
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->mode = p->mode;
	e->fs = fs;
	e->nl = nlanes;
	e->stride = ((size_t)nlanes + LINE_FLOATS - 1) / LINE_FLOATS * LINE_FLOATS;
	e->hp_hz = p->highpass_hz;

	if (p->mode & EMG_ECG_HIGHPASS) {
		struct emg_filter_spec s;

		/* The band-pass's own design and kernels: only a high-pass section chain. */
		emg_filter_spec_default(&s);
		s.highpass_hz = p->highpass_hz;
		s.highpass_order = p->highpass_order;
		s.lowpass_hz = 0;
		s.mains_hz = 0;
		for (unsigned l = 0; l < nlanes; l++)
			e->nhp += !p->skip[l];
		if (!(p->highpass_hz > 0)) {
			r = -EINVAL;
			goto fail;
		}
		if (e->nhp > 0 && (r = emg_filter_new(&e->hp, &s, fs, e->nhp)) < 0)
			goto fail;
		r = -ENOMEM;
		if (e->nhp > 0 && e->nhp < nlanes) {
			unsigned j = 0;

			e->hp_lane = calloc(e->nhp, sizeof(*e->hp_lane));
			e->hp_buf = falloc((size_t)HP_CHUNK * e->nhp);
			if (!e->hp_lane || !e->hp_buf)
				goto fail;
			for (unsigned l = 0; l < nlanes; l++)
				if (!p->skip[l])
					e->hp_lane[j++] = (uint16_t)l;
		}
	}

	e->K = (unsigned)lround(p->window_ms * 1e-3 * fs);
	e->kpk = (unsigned)lround(PEAK_MS * 1e-3 * fs);
	e->fit_shift = (float)(FIT_SHIFT_MS * 1e-3 * fs);
	e->kchk = (unsigned)lround(CHECK_MS * 1e-3 * fs);
	if (e->kchk >= e->K) /* a window shorter than the check: judged at its end */
		e->kchk = e->K - 1;
	if (e->kchk < e->kpk)
		e->kchk = e->kpk;
	e->k = e->K;
	arrays[0] = &e->en;
	arrays[1] = &e->med;
	arrays[2] = &e->busy;
	arrays[3] = &e->w;
	arrays[4] = &e->cap;
	arrays[5] = &e->ga;
	arrays[6] = &e->lim;
	arrays[7] = &e->pk;
	arrays[8] = &e->cnt;
	arrays[9] = &e->on;
	arrays[10] = &e->row;
	arrays[11] = &e->dm;
	arrays[12] = &e->dp;
	arrays[13] = &e->iq;
	arrays[14] = &e->imed;
	arrays[15] = &e->qe;
	arrays[16] = &e->ein;
	arrays[17] = &e->eout;
	arrays[18] = &e->eff;
	arrays[19] = &e->app;
	arrays[20] = &e->pin;
	arrays[21] = &e->pout;
	arrays[22] = &e->peff;
	arrays[23] = &e->papp;
	arrays[24] = &e->fxt;
	arrays[25] = &e->fxd;
	arrays[26] = &e->ftt;
	arrays[27] = &e->fdd;
	arrays[28] = &e->ftd;
	arrays[29] = &e->fa;
	arrays[30] = &e->fb;
	if (p->mode & EMG_ECG_SUBTRACT) {
		for (unsigned i = 0; i < 31; i++)
			if (!(*arrays[i] = falloc(e->stride)))
				goto fail;
		/* padding lanes too: a singular fit there would put NaN into the vote's row */
		for (size_t l = 0; l < e->stride; l++)
			e->ftt[l] = e->fdd[l] = e->fa[l] = 1.0f;
		if (e->hp && !(e->pre = falloc((size_t)HP_CHUNK * nlanes)))
			goto fail;
		if (!(e->tmpl = falloc((size_t)e->K * e->stride)))
			goto fail;
		e->P = (unsigned)lround(PRE_MS * 1e-3 * fs);
		if (!(e->hist = falloc((size_t)e->P * nlanes)) ||
		    !(e->tpre = falloc((size_t)e->P * e->stride)) ||
		    !(e->fixx = falloc((size_t)EMG_ECG_FIX_MAX * e->P * nlanes)) ||
		    !(e->fixl = calloc((size_t)EMG_ECG_FIX_MAX * nlanes, 1)) ||
		    !(e->trig_qrs = calloc((size_t)EMG_ECG_TRIG_MAX * nlanes, sizeof(float))) ||
		    !(e->trig_learnt = calloc((size_t)EMG_ECG_TRIG_MAX * nlanes, 1)))
			goto fail;
		/* Padding lanes too: their vote must be 0 / (FLOOR_E * Q_INIT), not 0 / 0. */
		for (size_t l = 0; l < e->stride; l++) {
			e->on[l] = l < nlanes && !p->skip[l] ? 1.0f : 0.0f;
			e->w[l] = e->on[l];
			e->cap[l] = CAP_INIT;
			e->dm[l] = 1.0f / Q_INIT;
			e->iq[l] = 1.0f / Q_INIT;
			e->eff[l] = e->peff[l] = EFF_INIT;
			e->app[l] = e->papp[l] = 1.0f;
			e->non += l < nlanes && !p->skip[l];
		}
	}
	e->a_fast = (float)(1.0 - exp(-1.0 / (FAST_MS * 1e-3 * fs)));
	e->a_busy = (float)(1.0 - exp(-1.0 / (BUSY_MS * 1e-3 * fs)));
	e->eta = (float)(ETA_PER_S / fs);
	e->eta_fast = (float)(ETA_FAST_PER_S / fs);
	e->copy_n = (uint64_t)(COPY_MS * 1e-3 * fs);
	e->fast_n = (uint64_t)(FAST_S * fs);
	e->warm_n = (uint64_t)(WARM_S * fs);
	e->thr_guard = THR_MIN / Q_INIT;
	e->dil = e->non > DIL_LANES ? sqrtf((float)DIL_LANES / (float)e->non) : 1.0f;
	e->thr = vote_guard(e);
	e->spk_decay = (float)pow(0.5, 1.0 / fs);
	e->rh.refr = (uint64_t)(REFR_MIN_S * fs);
	pick_run(e);
	*out = e;
	return 0;
fail:
	emg_ecg_free(e);
	return r;
}

void emg_ecg_free(struct emg_ecg *e)
{
	if (!e)
		return;
	emg_filter_free(e->hp);
	free(e->hp_lane);
	free(e->hp_buf);
	free(e->pre);
	free(e->en);
	free(e->med);
	free(e->busy);
	free(e->w);
	free(e->cap);
	free(e->iq);
	free(e->dm);
	free(e->imed);
	free(e->dp);
	free(e->ga);
	free(e->lim);
	free(e->pk);
	free(e->qe);
	free(e->cnt);
	free(e->on);
	free(e->row);
	free(e->tmpl);
	free(e->ein);
	free(e->eout);
	free(e->eff);
	free(e->app);
	free(e->pin);
	free(e->pout);
	free(e->peff);
	free(e->papp);
	free(e->fxt);
	free(e->fxd);
	free(e->ftt);
	free(e->fdd);
	free(e->ftd);
	free(e->fa);
	free(e->fb);
	free(e->hist);
	free(e->tpre);
	free(e->fixx);
	free(e->fixl);
	free(e->trig_qrs);
	free(e->trig_learnt);
	free(e);
}

static void highpass(struct emg_ecg *e, float *frames, unsigned n)
{
	const size_t nl = e->nl, nh = e->nhp;

	if (!e->hp_lane) { /* every lane: straight on the frames */
		emg_filter_run(e->hp, frames, n);
		return;
	}
	for (unsigned off = 0; off < n; off += HP_CHUNK) {
		unsigned m = n - off < HP_CHUNK ? n - off : HP_CHUNK;

		for (unsigned f = 0; f < m; f++)
			for (size_t j = 0; j < nh; j++)
				e->hp_buf[f * nh + j] = frames[(off + f) * nl + e->hp_lane[j]];
		emg_filter_run(e->hp, e->hp_buf, m);
		for (unsigned f = 0; f < m; f++)
			for (size_t j = 0; j < nh; j++)
				frames[(off + f) * nl + e->hp_lane[j]] = e->hp_buf[f * nh + j];
	}
}

void emg_ecg_run(struct emg_ecg *e, float *frames, unsigned nframes)
{
	e->nfix = 0;
	e->ntrig = 0;
	e->t_run = e->t;
	if (!(e->mode & EMG_ECG_SUBTRACT)) {
		if (e->hp)
			highpass(e, frames, nframes);
		return;
	}
	if (!e->hp) {
		e->run(e, frames, frames, nframes);
		return;
	}
	/* Both stages: the 30 Hz high-pass leaves a QRS only a few times the noise,
	 * too little to time it on, so the detector votes on the frames before the
	 * high-pass while the templates are learnt and subtracted after it. */
	for (unsigned off = 0; off < nframes; off += HP_CHUNK) {
		unsigned m = nframes - off < HP_CHUNK ? nframes - off : HP_CHUNK;
		float *x = frames + (size_t)off * e->nl;

		memcpy(e->pre, x, (size_t)m * e->nl * sizeof(float));
		highpass(e, x, m);
		e->run(e, x, e->pre, m);
	}
}

/* Slot of entry i (0 = oldest kept) of a ring of cap slots that took n entries; -ENOENT past the last. */
static int ring_slot(unsigned n, unsigned cap, unsigned i, unsigned *slot)
{
	const unsigned kept = n < cap ? n : cap;

	if (i >= kept)
		return -ENOENT;
	*slot = (n - kept + i) % cap;
	return 0;
}

int emg_ecg_pre_fix(const struct emg_ecg *e, unsigned i, struct emg_ecg_fix *out)
{
	unsigned slot;

	if (ring_slot(e->nfix, EMG_ECG_FIX_MAX, i, &slot) < 0)
		return -ENOENT;
	out->frame = e->fixf[slot];
	out->pre = e->P;
	out->lane = e->fixl + (size_t)slot * e->nl;
	out->x = e->fixx + (size_t)slot * e->P * e->nl;
	return 0;
}

int emg_ecg_trigger_at(const struct emg_ecg *e, unsigned i, struct emg_ecg_trigger *out)
{
	unsigned slot;

	if (ring_slot(e->ntrig, EMG_ECG_TRIG_MAX, i, &slot) < 0)
		return -ENOENT;
	out->frame = e->trig[slot].frame;
	out->locked = e->trig[slot].locked;
	out->rr = e->trig[slot].rr;
	out->qrs = e->trig_qrs + (size_t)slot * e->nl;
	out->learnt = e->trig_learnt + (size_t)slot * e->nl;
	return 0;
}

unsigned emg_ecg_pre_samples(const struct emg_ecg *e)
{
	return e->P;
}

unsigned emg_ecg_latency_samples(const struct emg_ecg *e)
{
	(void)e;
	return 0;
}

uint64_t emg_ecg_beats(const struct emg_ecg *e)
{
	return e->beats;
}

double emg_ecg_heart_rate(const struct emg_ecg *e)
{
	return e->rh.rr > 0 ? 60.0 * e->fs / e->rh.rr : 0.0;
}

int emg_ecg_locked(const struct emg_ecg *e)
{
	return on_rhythm(e);
}

int emg_ecg_last_beat(const struct emg_ecg *e, uint64_t *age)
{
	if (!e->beats)
		return 0;
	*age = e->t - e->rh.last;
	return 1;
}

float emg_ecg_lane_qrs(const struct emg_ecg *e, unsigned lane)
{
	return lane < e->nl && e->on && e->on[lane] > 0 ? 1.0f / e->iq[lane] : 0.0f;
}

int emg_ecg_lane_learnt(const struct emg_ecg *e, unsigned lane)
{
	return lane < e->nl && e->on && e->on[lane] > 0 && e->cap[lane] == CAP_LEARNT;
}

float emg_ecg_lane_weight(const struct emg_ecg *e, unsigned lane)
{
	return lane < e->nl && e->w ? e->w[lane] : 0.0f;
}

int emg_ecg_describe(const struct emg_ecg *e, char *buf, size_t len)
{
	if (e->mode == EMG_ECG_OFF)
		return snprintf(buf, len, "ECG:off");
	if (e->mode == EMG_ECG_HIGHPASS)
		return snprintf(buf, len, "ECG:HP%gHz", e->hp_hz);
	if (e->mode == EMG_ECG_SUBTRACT)
		return snprintf(buf, len, "ECG:sub");
	return snprintf(buf, len, "ECG:HP%gHz+sub", e->hp_hz);
}
