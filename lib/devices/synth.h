/* SPDX-License-Identifier: MIT */
/*
 * emg_synth: a realistic synthetic sEMG amplifier with known ground truth.
 *
 * Each channel is Gaussian noise shaped to a surface-EMG power spectrum
 * (peak near 80-120 Hz, most power 20-250 Hz), amplitude-modulated by a
 * per-muscle script of contractions; on top come instrumentation noise set
 * by the SNR, mains hum with harmonics, baseline wander and occasional
 * electrode pops.  Everything is deterministic from the seed, and the true
 * onset and offset of every scripted burst can be queried, which makes the
 * synth the ground truth for onset accuracy.
 */
#ifndef EMG_SYNTH_H
#define EMG_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "../device.h"

struct emg_synth;

/* One scripted burst of one channel, in samples. */
struct emg_truth {
	unsigned channel;
	uint64_t onset;   /* first sample of the rise */
	uint64_t offset;  /* first sample after the fall */
	float peak_mvc;   /* plateau amplitude as a fraction of MVC */
	unsigned rep;     /* repetition number within the exercise, from 1 */
	const char *exercise;
};

/* Create a generator (no thread); cfg->muscles decides which script each channel follows. */
int emg_synth_new(struct emg_synth **out, const struct emg_device_config *cfg);

/* Free a generator. */
void emg_synth_free(struct emg_synth *s);

/* Generate the next nframes interleaved frames of emg_synth_channels() floats, in uV. */
void emg_synth_generate(struct emg_synth *s, float *frames, unsigned nframes);

/* Sample index of the next frame emg_synth_generate() will produce. */
uint64_t emg_synth_position(const struct emg_synth *s);

/* Channels per frame. */
unsigned emg_synth_channels(const struct emg_synth *s);

/* Sample rate. */
double emg_synth_rate(const struct emg_synth *s);

/* Length of one pass of the scenario in samples (the script then repeats). */
uint64_t emg_synth_script_length(const struct emg_synth *s);

/* True bursts whose onset lies in [from, to); writes up to max, returns the total count. */
size_t emg_synth_truth(const struct emg_synth *s, uint64_t from, uint64_t to,
		       struct emg_truth *out, size_t max);

/* Noise RMS (uV) in the sEMG band of channel ch, and the EMG RMS at 100 % MVC. */
void emg_synth_levels(const struct emg_synth *s, unsigned ch, double *noise_uv, double *mvc_uv);

/* The device-interface ops of the synth driver (real-time paced thread). */
extern const struct emg_device_ops emg_synth_ops;

#endif
