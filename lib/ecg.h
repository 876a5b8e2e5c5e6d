/* SPDX-License-Identifier: MIT */
/*
 * emg_ecg: heartbeat (ECG) rejection for trunk and gluteal sEMG lanes.
 *
 * Runs on the band-passed, notched lanes, before the envelopes and the onset
 * detector, in place, one lane per muscle.  Two stages, each optional:
 *
 *  high-pass   an extra Butterworth high-pass per lane, 30 Hz 4th order by
 *              default (Drake & Callaghan 2006).  It is an emg_filter (the
 *              same biquad design and SIMD kernels as the band-pass), run on
 *              the selected lanes only.  Cheap, but it also removes the
 *              20..40 Hz part of the EMG itself and leaves the steepest QRS
 *              slopes, which reach well above 30 Hz.  With both stages the
 *              detector votes on the signal before this high-pass (which leaves
 *              too little QRS to time), the templates work after it.
 *
 *  subtract    real-time QRS-gated template subtraction.
 *   Detector:  per lane a fast energy e = EMA(x^2, 3 ms) and its running median
 *              (a multiplicative Robbins-Monro quantile step, so heartbeats
 *              barely move it; while the lane is busy it may rise only 16x
 *              slower, so a contraction does not raise the noise its QRS is
 *              measured against).  Each lane votes e / (its learnt QRS peak
 *              energy: the peak of e in the 80 ms after each trigger, averaged
 *              over the beats on the rhythm) - e / (100 x median) until it has
 *              learnt one - so every
 *              lane's vote has the same shape and the crossing the templates
 *              are aligned to does not move when a lane drops out.  The vote is
 *              the weighted mean over lanes that are not busy (more than 60 %
 *              of the last ~200 ms above 4x their median: a contraction, not a
 *              60..100 ms QRS); weights q^2 / (q^2 + 50^2) for a QRS peak of q
 *              times the noise, so lanes without ECG do not vote.  A beat is a
 *              crossing of max(8 % of the running QRS peak of the vote, a noise
 *              guard, itself at most 1; until a lane has learnt, sqrt(8 / lanes)
 *              of it on more than 8 lanes, where a beat on a few lanes is
 *              diluted by the others - a vote only over that needs 4 lanes
 *              over their own guard) outside a refractory period (0.6 RR,
 *              250..450 ms); on a rhythm 1.5x before 0.8 RR after the last
 *              beat (intervals of k RR count as k - 1 beats hidden by
 *              contractions: only against a mean RR an interval has
 *              confirmed, and 4 such without a single RR between them
 *              replace it); and
 *              only if the other lanes agree with the strongest voter
 *              (leave-one-out once learnt; at least two lanes before): an EMG
 *              burst starts on one lane, a heartbeat shows on several.
 *   Template:  per lane, the 400 ms after the trigger, aligned on the trigger
 *              (the QRS upstroke, a few ms before R).  Learnt only from beats
 *              within 12 % of the mean RR (or of a multiple of it): a trigger
 *              off the rhythm (a burst) teaches nothing.  Updated sample by sample
 *              while the beat plays out: a plain average over the first 8
 *              beats, then exponential (1/16) with the innovation clipped at
 *              3 noise SDs + 50 % of the template (bounded influence of an
 *              EMG burst), and only for lanes that were not busy at the
 *              trigger and are not busy now.  O(1) per lane-sample; the
 *              only look-back is the 40 ms pre-trigger ring, worked through
 *              once per beat (40 ms x lanes, a few us at 64 lanes).
 *   Causality: subtraction starts at the trigger sample itself and never
 *              delays the signal: emg_ecg_latency_samples() is 0, onset
 *              indices need no correction and the event latency is
 *              unchanged.  What is left in the signal is the part of the QRS
 *              before the trigger (the Q wave and the start of the upstroke,
 *              ~25 ms).  A second, pre-trigger template learns it (same
 *              rules, from a ring of the last 40 ms of output, its own
 *              "does it help" check) and each trigger lists those 40 ms
 *              corrected (emg_ecg_pre_fix): not for the signal, which has
 *              gone on, but for measures over a window that still holds
 *              them - the RMS envelope and %MVC.  The alternatives to a
 *              correction after the fact were rejected:
 *              a fixed output delay (<= 60 ms) subtracts the whole beat but
 *              delays every onset event by that much; a template predicted
 *              from the RR rhythm starts earlier, but beat-to-beat variability
 *              (20..50 ms) misaligns a QRS whose band-passed period is ~40 ms,
 *              and a misaligned subtraction adds energy instead of removing it.
 *
 * Everything is allocated in emg_ecg_new(); emg_ecg_run() never allocates,
 * locks, logs or blocks.  Lanes are stored structure-of-arrays, padded to a
 * cache line, and processed EMG_VL at a time (simd.h).
 */
#ifndef EMG_ECG_H
#define EMG_ECG_H

#include <stddef.h>
#include <stdint.h>

#define EMG_ECG_MAX_LANES 256

struct emg_ecg;

/* Stages as bits: highpass = 1, subtract = 2, both = 3. */
enum emg_ecg_mode {
	EMG_ECG_OFF = 0,
	EMG_ECG_HIGHPASS = 1,
	EMG_ECG_SUBTRACT = 2,
	EMG_ECG_BOTH = 3,
};

struct emg_ecg_params {
	enum emg_ecg_mode mode;       /* default off for now: subtract still fires on the plain synth (README "ECG rejection") */
	double highpass_hz;           /* extra high-pass corner (default 30) */
	unsigned highpass_order;      /* even, 2..8 (default 4) */
	double window_ms;             /* template length after the trigger (default 400) */
	uint8_t skip[EMG_ECG_MAX_LANES]; /* 1 = leave this lane alone (default all 0) */
};

/* Fill params with the defaults above. */
void emg_ecg_params_default(struct emg_ecg_params *p);

/* Parse "off" | "highpass" | "subtract" | "both"; -EINVAL otherwise. */
int emg_ecg_mode_parse(const char *s, enum emg_ecg_mode *out);

/* Name of a mode ("off", "highpass", "subtract", "both"). */
const char *emg_ecg_mode_name(enum emg_ecg_mode m);

/* Create the stage for nlanes lanes at fs; -EINVAL on bad params, -ENOMEM. */
int emg_ecg_new(struct emg_ecg **out, const struct emg_ecg_params *p, double fs, unsigned nlanes);

/* Free a stage (NULL is fine). */
void emg_ecg_free(struct emg_ecg *e);

/* Process nframes interleaved frames of nlanes floats in place. */
void emg_ecg_run(struct emg_ecg *e, float *frames, unsigned nframes);

/* Samples the output lags the input (0: subtraction is causal). */
unsigned emg_ecg_latency_samples(const struct emg_ecg *e);

/* Heartbeats detected so far (a trigger taken back as a burst, CHECK_MS later, no longer counts). */
uint64_t emg_ecg_beats(const struct emg_ecg *e);

/* Running heart rate in beats per minute, 0 before two beats. */
double emg_ecg_heart_rate(const struct emg_ecg *e);

/* 1 while the detector is on a heart rhythm (its triggers are heartbeats, not bursts). */
int emg_ecg_locked(const struct emg_ecg *e);

/*
 * 1 once a heartbeat was detected, with *age the samples from the last
 * trigger to the end of the frames processed so far; 0 before.  Reported
 * whether or not the stage is locked on a rhythm yet (it subtracts only
 * then): holding back onsets around a trigger costs only event latency.
 * A trigger found to be a burst 120 ms on is taken back: the beat before
 * it is the last one again.
 */
int emg_ecg_last_beat(const struct emg_ecg *e, uint64_t *age);

/* At most this many heartbeats of one emg_ecg_run() call keep their pre-trigger fix (the last ones). */
#define EMG_ECG_FIX_MAX 4

/*
 * The part of a heartbeat before its trigger, which the stage cannot take
 * out of the signal (it had passed when the trigger fired), corrected after
 * the fact for what measures the signal over a window that still holds it:
 * the RMS envelope (lib/pipeline.c patches it with emg_env_patch_frame).
 */
struct emg_ecg_fix {
	unsigned frame;      /* the trigger's frame in the last emg_ecg_run() call: the first one subtracted */
	unsigned pre;        /* frames corrected: frame - pre .. frame - 1 (below 0: earlier calls' frames) */
	const uint8_t *lane; /* [nlanes] 1 where the stage subtracts (on a rhythm, template helps), else 0 */
	const float *x;      /* [pre x nlanes] frame-major: those frames as the stage output them, minus the pre-trigger template */
};

/* Heartbeat i (0 = oldest) triggered in the last emg_ecg_run() call while subtracting; -ENOENT past the last. */
int emg_ecg_pre_fix(const struct emg_ecg *e, unsigned i, struct emg_ecg_fix *out);

/* At most this many triggers of one emg_ecg_run() call are kept for emg_ecg_trigger_at() (the last ones). */
#define EMG_ECG_TRIG_MAX 8

/* A QRS trigger and the stage as it stood right after it. */
struct emg_ecg_trigger {
	unsigned frame;        /* its frame in the last emg_ecg_run() call */
	int locked;            /* on a heart rhythm (emg_ecg_locked()) */
	double rr;             /* mean RR interval, samples (0: unknown) */
	const float *qrs;      /* [nlanes] emg_ecg_lane_qrs() */
	const uint8_t *learnt; /* [nlanes] emg_ecg_lane_learnt() */
};

/* Trigger i (0 = oldest) of the last emg_ecg_run() call, even one taken back since; -ENOENT past the last. */
int emg_ecg_trigger_at(const struct emg_ecg *e, unsigned i, struct emg_ecg_trigger *out);

/* Frames before each trigger that emg_ecg_pre_fix() corrects (0 without the subtract stage). */
unsigned emg_ecg_pre_samples(const struct emg_ecg *e);

/* QRS peak energy of a lane over its noise energy (100 until learnt, 0 for skipped lanes). */
float emg_ecg_lane_qrs(const struct emg_ecg *e, unsigned lane);

/* Whether a lane has learnt its QRS from beats on the rhythm (a heart shows on it). */
int emg_ecg_lane_learnt(const struct emg_ecg *e, unsigned lane);

/* Detection weight of a lane, 0..1 (how strongly it carries the ECG). */
float emg_ecg_lane_weight(const struct emg_ecg *e, unsigned lane);

/* Short text for logs and EDF headers, e.g. "ECG:HP30Hz+sub". Returns snprintf's result. */
int emg_ecg_describe(const struct emg_ecg *e, char *buf, size_t len);

#endif
