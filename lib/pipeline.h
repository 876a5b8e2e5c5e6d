/* SPDX-License-Identifier: MIT */
/*
 * emg_pipeline: the DSP thread's work per block of frames.
 *
 *   device frames --gather muscle channels--> band-pass + notch (emg_filter)
 *     --> ECG rejection (emg_ecg) --> display RMS (emg_env) --> onset/offset (emg_onset) --> %MVC (emg_calib)
 *     --> outputs (struct emg_out): per-tick metrics, onset/offset events, calibration results
 *
 * Everything is allocated in emg_pipeline_new(); emg_pipeline_process()
 * never allocates, locks, logs or blocks.  Outputs go to a callback, which
 * in the daemon pushes them into the ring the main loop drains.
 *
 * The pipeline keeps its own copy of the calibration table; finished
 * calibrations come out as EMG_OUT_CALIB outputs (one per muscle) so the
 * owner of the master table (the main thread) updates and saves it without
 * sharing memory with the DSP thread.
 */
#ifndef EMG_PIPELINE_H
#define EMG_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "calib.h"
#include "device.h"
#include "ecg.h"
#include "filter.h"
#include "muscles.h"
#include "onset.h"

struct emg_pipeline;

struct emg_pipeline_config {
	struct emg_filter_spec filter;
	struct emg_ecg_params ecg;     /* heartbeat rejection after the band-pass (default off for now) */
	struct emg_onset_params onset;
	double rms_window_ms;  /* display envelope (default 125) */
	double publish_rate;   /* metric outputs per second (default 50) */
};

enum emg_out_type {
	EMG_OUT_METRICS = 1, /* one per publish tick */
	EMG_OUT_ONSET,
	EMG_OUT_OFFSET,
	EMG_OUT_CALIB,       /* a calibration finished (ok or failed) */
};

enum emg_calib_kind { EMG_CALIB_REST = 1, EMG_CALIB_MVC };

struct emg_out_muscle {
	float rms;     /* display envelope, uV */
	float level;   /* fraction of MVC, negative when not calibrated */
	float snr_db;
	uint8_t active;
	uint8_t baseline; /* enum emg_baseline_src */
	uint8_t pad[2];
};

/* One pipeline output (not an EDF recording: that is emg_recorder); METRICS outputs carry nmuscles entries in m[]. */
struct emg_out {
	uint16_t type;      /* enum emg_out_type */
	uint16_t muscle;    /* ONSET/OFFSET/CALIB(mvc): muscle index */
	uint32_t nmuscles;  /* METRICS: entries in m[] */
	uint64_t tick;      /* METRICS: publish tick sequence number */
	uint64_t sample;    /* METRICS: last sample covered; ONSET: onset sample; OFFSET: offset sample */
	uint64_t t_ns;      /* CLOCK_MONOTONIC estimate of `sample` (arrival time back-dated) */
	uint64_t arrival_ns;/* CLOCK_MONOTONIC arrival of the block that produced the output */
	uint64_t dropped;   /* METRICS: frames lost so far (device losses + ring overruns) */
	float duration_s;   /* OFFSET: burst duration */
	float snr_db;       /* ONSET/OFFSET: burst SNR */
	int32_t calib_kind; /* CALIB: enum emg_calib_kind */
	int32_t calib_err;  /* CALIB: 0 or negative errno */
	struct emg_baseline baseline; /* CALIB rest: onset baseline of `muscle` */
	float rest_rms;     /* CALIB rest: display envelope at rest; mvc: the rest level it was checked against (0: none) */
	float mvc_rms;      /* CALIB mvc: peak display envelope of this trial */
	struct emg_out_muscle m[];
};

typedef void (*emg_out_fn)(void *ud, const struct emg_out *out);

/* Fill a config with the built-in DSP defaults (the [dsp] values conf/emgd.conf lists). */
void emg_pipeline_config_default(struct emg_pipeline_config *cfg);

/* Build a pipeline for a device and muscle map, starting from a copy of calib (may be NULL). */
int emg_pipeline_new(struct emg_pipeline **out, const struct emg_pipeline_config *cfg,
		     const struct emg_device_info *dev, const struct emg_muscles *map,
		     const struct emg_calib *calib);

/* Free a pipeline. */
void emg_pipeline_free(struct emg_pipeline *p);

/* Largest output size in bytes (ring slot size). */
size_t emg_pipeline_out_size(const struct emg_pipeline *p);

/* Process nframes interleaved device frames, first one being sample first_seq, arrived at t_ns. */
void emg_pipeline_process(struct emg_pipeline *p, const float *frames, unsigned nframes,
			  uint64_t first_seq, uint64_t t_ns, emg_out_fn fn, void *ud);

/* Add to the dropped-frames count reported in metrics (device losses, ring overruns). */
void emg_pipeline_add_dropped(struct emg_pipeline *p, uint64_t n);

/* Continue from a pipeline being replaced (reload): tick numbers and dropped count carry on. */
void emg_pipeline_handover(struct emg_pipeline *to, const struct emg_pipeline *from);

/* Start a rest calibration of all muscles lasting seconds; -EBUSY if one is running. */
int emg_pipeline_calibrate_rest(struct emg_pipeline *p, double seconds);

/* An MVC trial whose peak is under this many times the muscle's rest level is refused (-ERANGE). */
#define EMG_PIPELINE_MVC_MIN_RATIO 3.0f

/* Start an MVC trial of muscle i lasting seconds; -EBUSY if one is running. */
int emg_pipeline_calibrate_mvc(struct emg_pipeline *p, unsigned muscle, double seconds);

/* 1 while a calibration runs. */
int emg_pipeline_calibrating(const struct emg_pipeline *p);

/* Filter description for logs and EDF headers. */
int emg_pipeline_describe(const struct emg_pipeline *p, char *buf, size_t len);

/* The muscle map the pipeline was built with. */
const struct emg_muscles *emg_pipeline_muscles(const struct emg_pipeline *p);

#endif
