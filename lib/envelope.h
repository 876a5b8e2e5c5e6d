/* SPDX-License-Identifier: MIT */
/*
 * emg_env: sliding-window RMS over many channels, O(1) per sample.
 *
 * A running sum of squares is updated per sample (add the newest, subtract
 * the one leaving the window).  To stop floating-point error from drifting
 * over days, a second accumulator sums the squares of the current pass
 * through the window; when the write position wraps it holds the exact sum
 * of the whole window and replaces the running sum.  No burst of work, no
 * drift: the error is bounded by one window's worth of rounding.
 */
#ifndef EMG_ENVELOPE_H
#define EMG_ENVELOPE_H

#include <stdint.h>

struct emg_env;

/* Create an RMS envelope of `window` samples over nch channels. */
int emg_env_new(struct emg_env **out, unsigned nch, unsigned window);

/* Free an envelope. */
void emg_env_free(struct emg_env *e);

/* Forget all history (window refills from zero). */
void emg_env_reset(struct emg_env *e);

/* Window length in samples. */
unsigned emg_env_window(const struct emg_env *e);

/* Feed nframes interleaved frames of nch samples; write RMS per channel-sample to out (may alias in, may be NULL). */
void emg_env_run(struct emg_env *e, const float *in, float *out, unsigned nframes);

/* Current RMS of channel ch. */
float emg_env_value(const struct emg_env *e, unsigned ch);

/* Replace the sample of channel ch fed `age` frames ago (0: the newest) by x, O(1); 0, -ERANGE once it left the window, -EINVAL for a bad ch. */
int emg_env_patch(struct emg_env *e, unsigned ch, unsigned age, float x);

/* The same for the channels of one frame with mask[ch] set (x: nch samples); 0, or -ERANGE once it left the window. */
int emg_env_patch_frame(struct emg_env *e, unsigned age, const float *x, const uint8_t *mask);

#endif
