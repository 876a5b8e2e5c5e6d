/* SPDX-License-Identifier: MIT */
/*
 * emg_filter: the sEMG band-pass and mains notch as cascaded biquads.
 *
 * Butterworth high-pass and low-pass are designed by the bilinear transform
 * with pre-warping, split into second-order sections; notches sit on the
 * mains frequency and its harmonics below the low-pass corner.  Every stage
 * runs across all channels of a frame before the next stage (structure of
 * arrays), transposed direct form II in float32, so the inner loop is a
 * straight vectorisable loop over channels.
 */
#ifndef EMG_FILTER_H
#define EMG_FILTER_H

#include <stddef.h>

struct emg_filter;

struct emg_filter_spec {
	double highpass_hz;      /* corner, 0 = no high-pass (default 20) */
	unsigned highpass_order; /* even, 2..8 (default 2) */
	double lowpass_hz;       /* corner, 0 = none; clamped to 0.45*fs (default 450) */
	unsigned lowpass_order;  /* even, 2..8 (default 4) */
	double mains_hz;         /* 50, 60 (any 40..70), 0 = no notch, or EMG_FILTER_MAINS_AUTO (default) */
	double notch_q;          /* notch quality factor (default 30) */
	int notch_gate;          /* the lowest notches forget a strong contraction once it ends
				  * (default 1; filter.c, "Gated notches"); 0: plain notches */
};

/*
 * mains_hz = EMG_FILTER_MAINS_AUTO: notch the 50 Hz family for the first
 * second of input while measuring the hum there, then switch to the 60 Hz
 * family if the hum is on 60 Hz (50 stays when neither hums clearly).
 */
#define EMG_FILTER_MAINS_AUTO (-1.0)

/* Lowest and highest sample rates the design is validated for. */
#define EMG_FILTER_MIN_RATE 250.0
#define EMG_FILTER_MAX_RATE 16000.0

/* Parse [dsp] mains ("auto", "50", "60" or "off") into *hz; -EINVAL for anything else. */
int emg_filter_mains_parse(const char *s, double *hz);

/* Fill a spec with the SENIAM/ISEK defaults (20-450 Hz, mains notch found automatically, Q 30). */
void emg_filter_spec_default(struct emg_filter_spec *s);

/* Design the chain for sample rate fs and nch channels; -EINVAL on an impossible spec. */
int emg_filter_new(struct emg_filter **out, const struct emg_filter_spec *s, double fs,
		   unsigned nch);

/* Free a filter. */
void emg_filter_free(struct emg_filter *f);

/* Filter nframes interleaved frames of nch floats in place. */
void emg_filter_run(struct emg_filter *f, float *frames, unsigned nframes);

/* Zero the delay lines; the next frame is taken as the offset again, as at the start. */
void emg_filter_reset(struct emg_filter *f);

/*
 * Frames were lost before the next one (a sequence jump: the amplifier may
 * have been replugged, with new electrode offsets): whatever the input jumps
 * by across the gap is taken as a change of offset, not filtered as a step.
 */
void emg_filter_gap(struct emg_filter *f);

/* Magnitude of the designed chain at hz, in dB, evaluated from the float coefficients. */
double emg_filter_response_db(const struct emg_filter *f, double hz);

/* Low-pass corner actually used after clamping (0 if none). */
double emg_filter_lowpass_hz(const struct emg_filter *f);

/* Number of biquad sections in the chain. */
unsigned emg_filter_sections(const struct emg_filter *f);

/* Number of notch sections (mains fundamental plus harmonics). */
unsigned emg_filter_notches(const struct emg_filter *f);

/* Mains frequency notched: 50, 60 (or as set), 0 for none, EMG_FILTER_MAINS_AUTO while still measuring. */
double emg_filter_mains_hz(const struct emg_filter *f);

/* Coefficients of section i as run (a0 = 1): b[0..2], a[0..2]; -EINVAL if i is out of range. */
int emg_filter_section(const struct emg_filter *f, unsigned i, float b[3], float a[3]);

/* Largest pole radius over all sections (< 1 means stable). */
double emg_filter_max_pole_radius(const struct emg_filter *f);

/* Human/EDF "prefilter" text such as "HP:20Hz LP:450Hz N:50Hz". Returns snprintf's result. */
int emg_filter_describe(const struct emg_filter *f, char *buf, size_t len);

#endif
