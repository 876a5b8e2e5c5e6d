/* SPDX-License-Identifier: MIT */
/*
 * emg_synth: a synthetic sEMG amplifier with known ground truth.
 *
 * Each channel is Gaussian noise shaped to a surface-EMG power spectrum
 * (peak near 80-120 Hz, most power 20-250 Hz), amplitude-modulated by a
 * per-muscle script of contractions; on top come instrumentation noise set
 * by the SNR, mains hum with harmonics, baseline wander and occasional
 * electrode pops.  Two modes (cfg->realism):
 *
 * - plain: the original generator (short half-cosine ramps, steady plateaus),
 *   kept bit for bit;
 * - realistic (emg_device_config_default): what real recordings look like -
 *   20-300 ms linear or sigmoid recruitment ramps, 50-300 ms decays,
 *   motor-unit-like amplitude fluctuation and spikes inside bursts, ECG,
 *   tonic activity, cross-talk between neighbouring muscles and motion
 *   artefacts at movement start; each can be switched off.
 *
 * Everything is deterministic from the seed, and the true onset and offset
 * of every scripted burst can be queried, which makes the synth the ground
 * truth for onset accuracy.  Truth, in both modes:
 *
 * - activation a[n]: the burst's drive, a fraction of MVC, exactly 0 outside
 *   [onset, offset).  Tonic activity, cross-talk, ECG and artefacts are not
 *   activation and never appear in the truth list.
 * - onset: the first sample with a[n] > 0 (a[onset - 1] == 0);
 *   offset: the first sample after the burst with a[n] == 0 again.
 * - onset_cross / offset_cross: the threshold-crossing alternative - the
 *   first sample with a[n] >= 10 % of the burst's plateau, and the first
 *   sample after the plateau with a[n] < 10 % of it.  Detectors that compare
 *   an envelope against a threshold aim at these; on a 300 ms ramp they lie
 *   up to 30 ms (linear) after the onset.
 */
#ifndef EMG_SYNTH_H
#define EMG_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "../device.h"

struct emg_synth;

/* Force profile of a ramp (fraction f of the way through it, 0 < f <= 1). */
enum emg_synth_shape {
	EMG_SHAPE_COSINE = 0, /* raised cosine (sigmoid); plain mode's only shape */
	EMG_SHAPE_LINEAR,     /* straight line */
	EMG_SHAPE_SMOOTHSTEP, /* 3f^2 - 2f^3 (sigmoid), rises only */
	EMG_SHAPE_QUADRATIC,  /* (1 - f)^2: fast then slow, an exponential-like tail; decays only */
};

/* One scripted burst of one channel, in samples (see the truth definitions above). */
struct emg_truth {
	unsigned channel;
	uint64_t onset;   /* first sample of non-zero activation */
	uint64_t offset;  /* first sample after the burst where activation is 0 again */
	float peak_mvc;   /* plateau amplitude as a fraction of MVC */
	unsigned rep;     /* repetition number within the exercise, from 1 */
	const char *exercise;
	uint64_t onset_cross;  /* first sample with activation >= 10 % of peak_mvc */
	uint64_t offset_cross; /* first sample after the plateau with activation < 10 % of peak_mvc */
	uint32_t rise;    /* rising samples: activation rises on [onset, onset + rise), plateau from there */
	uint32_t fall;    /* falling samples: activation falls on [offset - fall, offset) */
	enum emg_synth_shape rise_shape, fall_shape;
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

/* Activation (fraction of MVC, the truth's a[n]) of channel ch at absolute sample n; for tests. */
double emg_synth_activation(const struct emg_synth *s, unsigned ch, uint64_t n);

/* Peak |ECG| of one heartbeat on channel ch, uV (0: no ECG there or plain mode). */
double emg_synth_ecg_amplitude(const struct emg_synth *s, unsigned ch);

/* R-peak sample indices in [from, to) (one heart for all channels); writes up to max,
 * returns the total count.  Replays the heart from sample 0: for tests, not the sample path. */
size_t emg_synth_heartbeats(const struct emg_synth *s, uint64_t from, uint64_t to, uint64_t *out,
			    size_t max);

/* The device-interface ops of the synth driver (real-time paced thread). */
extern const struct emg_device_ops emg_synth_ops;

#endif
