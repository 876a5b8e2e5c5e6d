/* SPDX-License-Identifier: MIT */
/*
 * emg_analytics: firing order and repetition summaries, computed on the main
 * thread from the outputs (struct emg_out) the DSP thread already produces (EMG_OUT_ONSET,
 * EMG_OUT_OFFSET, EMG_OUT_METRICS).  The real-time path is not touched.
 *
 * Burst groups (firing order).  An onset opens a group; every onset whose
 * sample lies within order_window_ms of the group's earliest onset joins it
 * (a muscle once, with its first onset).  Detection delays differ between
 * muscles, so the group is closed - and its order reported - only when a
 * metrics tick shows the stream has passed window + settle_ms beyond where
 * it stood when the group's first onset came (onsets come once the report
 * gate has passed them: 200 ms or more after they began, 550 ms in the
 * stream's start-up or at the end of a shorter burst there); an onset
 * outside the window closes it at once.  Lags are measured between onset
 * samples (back-dated onsets), not arrival times.
 *
 * Repetitions.  Per muscle, a repetition is one burst, or several bursts
 * separated by less than min_rest_ms (a contraction whose envelope dipped
 * under the threshold briefly is still one repetition).  A repetition is
 * reported once min_rest_ms has passed after its last offset (and its burst
 * group has closed): count, peak and mean of the display envelope over the
 * ticks where the muscle was active (%MVC when every such tick was
 * calibrated, otherwise RMS uV), time from onset to the peak tick, duration
 * from the first onset to the last offset, the onset lag in its group, and
 * the left/right symmetry index of the peak against the other side's last
 * repetition.
 *
 * Everything is allocated in emg_analytics_new(); emg_analytics_feed()
 * does not allocate, and costs O(1) per onset/offset and O(muscles + pairs)
 * per metrics tick (it already carries one entry per muscle).  Not
 * thread-safe: one thread (the daemon's main loop) owns an instance.
 */
#ifndef EMG_ANALYTICS_H
#define EMG_ANALYTICS_H

#include <stddef.h>
#include <stdint.h>

#include "muscles.h"
#include "pipeline.h"

#define EMG_ANALYTICS_MAX_PAIRS 32

struct emg_analytics;

/* A muscle pair whose onset lag is reported per group: lag = onset(a) - onset(b). */
struct emg_analytics_pair {
	uint16_t a, b; /* muscle indices */
};

struct emg_analytics_params {
	double order_window_ms; /* onsets within this of the group's first form one group (default 300) */
	double settle_ms;       /* wait this long after the window for late detections (default 150) */
	double min_rest_ms;     /* a burst sooner than this after the last offset continues the rep (default 500) */
	unsigned npairs;
	struct emg_analytics_pair pairs[EMG_ANALYTICS_MAX_PAIRS];
};

/* A closed burst group. */
struct emg_analytics_order {
	uint32_t group;        /* sequence number, from 1 */
	unsigned first;        /* muscle index that fired first */
	uint64_t onset_sample; /* onset sample of the first muscle */
	unsigned nmuscles;     /* entries in lag_ms: the map's muscle count */
	unsigned nfired;       /* muscles in the group */
	float lag_ms[EMG_MUSCLES_MAX]; /* per muscle in map order: onset - first onset; -1 = not in the group */
	unsigned npairs;       /* configured pairs with both muscles in the group */
	struct {
		uint16_t a, b;
		float lag_ms;  /* onset(a) - onset(b): positive when a fired after b */
	} pair[EMG_ANALYTICS_MAX_PAIRS];
};

/* A finished repetition of one muscle. */
struct emg_analytics_rep {
	unsigned muscle;
	unsigned rep;          /* count for this muscle since start or reset, from 1 */
	int calibrated;        /* 1: peak and mean in %MVC (100 = MVC); 0: RMS in uV */
	float peak, mean;      /* display envelope over the active ticks */
	float time_to_peak_s;  /* onset to the peak tick */
	float duration_s;      /* first onset to last offset */
	float lag_ms;          /* onset lag behind the first muscle of its burst group (0 = first) */
	uint32_t group;        /* that burst group */
	int paired;            /* 1 when symmetry_pct compares with the other side */
	float symmetry_pct;    /* (L - R) / ((L + R) / 2) x 100 of the peaks; 0 when not paired */
	uint64_t onset_sample;
};

/* Where results go (either callback may be NULL). */
struct emg_analytics_sink {
	void *ud;
	void (*order)(void *ud, const struct emg_analytics_order *o);
	void (*rep)(void *ud, const struct emg_analytics_rep *r);
};

/* Fill params with the defaults (window 300 ms, settle 150 ms, rest 500 ms, no pairs). */
void emg_analytics_params_default(struct emg_analytics_params *p);

/* Create an instance for a muscle map at a sample rate; pairs must index into the map. */
int emg_analytics_new(struct emg_analytics **out, const struct emg_analytics_params *p,
		      const struct emg_muscles *m, double rate);

/* Free it. */
void emg_analytics_free(struct emg_analytics *a);

/* Replace the parameters (reload with the same muscles): counts and open reps are kept. */
int emg_analytics_set_params(struct emg_analytics *a, const struct emg_analytics_params *p);

/* Forget open groups and repetitions and restart every count from zero. */
void emg_analytics_reset(struct emg_analytics *a);

/* Feed one output of the pipeline; results are reported through sink. */
void emg_analytics_feed(struct emg_analytics *a, const struct emg_out *rec,
			  const struct emg_analytics_sink *sink);

/* Repetitions of muscle i counted so far. */
unsigned emg_analytics_reps(const struct emg_analytics *a, unsigned i);

/* Index of the other side's muscle (name ending _l <-> _r), or -1. */
int emg_analytics_partner(const struct emg_analytics *a, unsigned i);

/*
 * Parse a pairs setting against a muscle map: "auto" (each glute_max muscle
 * against the hamstring and hip_flex muscles of its side), "none", or a list
 * "a:b c:d" (spaces or commas).  Returns 0, or -EINVAL with err naming the
 * bad token, -ENOSPC past EMG_ANALYTICS_MAX_PAIRS.
 */
int emg_analytics_pairs_parse(const char *text, const struct emg_muscles *m,
			      struct emg_analytics_pair *out, unsigned *n, char *err,
			      size_t errlen);

/* Symmetry index of a left and a right value in percent (0 when both are 0). */
double emg_analytics_symmetry(double left, double right);

#endif
