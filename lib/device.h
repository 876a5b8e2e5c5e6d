/* SPDX-License-Identifier: MIT */
/*
 * emg_device: the one small interface every amplifier driver implements.
 *
 * A driver owns its acquisition thread (the synth paces itself with
 * clock_nanosleep, USB drivers run a libusb event thread).  From that thread
 * it hands decoded frames, in microvolts, to the data callback.  The data
 * callback must not allocate, lock, log or block; it usually just pushes
 * into an emg_ring.  State changes (device lost / found) come through the
 * state callback on the same thread under the same rules.
 */
#ifndef EMG_DEVICE_H
#define EMG_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "muscles.h"

struct emg_device;

#define EMG_DEVICE_MAX_CHANNELS 256

/* Highest sample rate emgd runs at ([device] rate, a replay file's rate), Hz. */
#define EMG_DEVICE_RATE_MAX 16000.0

struct emg_device_info {
	char driver[16];      /* "synth", "replay", "cyton", "hackeeg" */
	char model[64];       /* human model name */
	char serial[64];      /* serial number or "" */
	double rate;          /* samples per second per channel */
	unsigned channels;    /* channels per frame */
	double phys_min_uv;   /* amplifier input range, uV (for EDF headers) */
	double phys_max_uv;
};

/* How the synth builds its signal ([device] realism). */
enum emg_synth_realism {
	EMG_SYNTH_PLAIN = 0,  /* the original generator, bit for bit (a zeroed config) */
	EMG_SYNTH_REALISTIC,  /* ramps, MU fluctuation, ECG, tonic, cross-talk, motion (opt-in for now) */
};

/* What the daemon's config says about the device. */
struct emg_device_config {
	const char *driver;   /* NULL = "synth" */
	double rate;          /* requested rate, 0 = driver default */
	unsigned channels;    /* requested channels, 0 = enough for the muscle map */
	const char *serial;   /* select a USB device by serial, NULL/"" = first */
	const char *file;     /* replay: file to play */
	bool realtime;        /* synth/replay: pace in real time (false = as fast as possible) */
	/* synth only */
	uint64_t seed;
	double snr_db;        /* contraction RMS over noise RMS (default 30) */
	double mains_hz;      /* hum frequency, 0 = none */
	double mains_uv;      /* hum amplitude, uV (default 20) */
	bool wander;          /* baseline wander */
	bool pops;            /* electrode-pop artefacts */
	const char *scenario; /* "session" (default), "rest", "bridge", "hip_thrust", "abduction", "prone_hip_ext" */
	enum emg_synth_realism realism; /* default plain (see README: realistic is opt-in until ECG rejection meets its targets); the keys below only act in realistic */
	double ecg_uv;        /* ECG R-peak on the strongest channel, uV, 0 = none (default 100) */
	bool ramps;           /* 20-300 ms recruitment ramps, slow decays, MU-like fluctuation */
	bool crosstalk;       /* neighbouring muscles' EMG leaks in (not in the truth) */
	bool tonic;           /* 1-3 % MVC tonic activity on postural muscles (not in the truth) */
	bool motion;          /* motion artefacts around each movement's start */
	const struct emg_muscles *muscles; /* map, so the synth knows which muscle each channel is */
	double hang_after_s;  /* synth fault injection: stop delivering after this long, 0 = never */
	/* cyton, hackeeg */
	unsigned gain;        /* ADS1299 PGA gain: 1, 2, 4, 6, 8, 12 or 24; 0 = 24 */
	/* Where drivers log (device found/missing, permission problems, plug events):
	 * called from open() and, outside the sample path, from the driver's thread.
	 * level: lib/log.h (LOG_ERR .. LOG_DEBUG).  NULL = stderr. */
	emg_log_fn *log;
	void *log_ud;
};

enum emg_device_state {
	EMG_DEVICE_STREAMING = 0,
	EMG_DEVICE_WAITING,   /* unplugged or not yet present: waiting for hotplug */
	EMG_DEVICE_FAILED,    /* unrecoverable; see the reason */
};

/* Frames from the device: nframes interleaved frames of `channels` floats in uV.
 * first_seq is the sample index of the first frame; lost counts frames the
 * device reported missing before it; t_ns is CLOCK_MONOTONIC at arrival. */
typedef void (*emg_device_data_fn)(void *ud, const float *frames, unsigned nframes,
				   uint64_t first_seq, uint32_t lost, uint64_t t_ns);
/* A state change; `why` is a static string. */
typedef void (*emg_device_state_fn)(void *ud, enum emg_device_state st, const char *why);

struct emg_device_callbacks {
	emg_device_data_fn data;
	emg_device_state_fn state;
	void *ud;
};

struct emg_device_ops {
	const char *name;
	const char *help; /* one line for --help and the man page */
	int (*open)(struct emg_device **out, const struct emg_device_config *cfg);
	void (*info)(struct emg_device *d, struct emg_device_info *info);
	int (*start)(struct emg_device *d, const struct emg_device_callbacks *cb);
	void (*stop)(struct emg_device *d);
	void (*close)(struct emg_device *d);
};

/* Every driver's struct begins with this. */
struct emg_device {
	const struct emg_device_ops *ops;
};

/* Fill a config with defaults (synth, 2000 Hz, seed 1, SNR 30 dB, 50 Hz hum, real time, realistic). */
void emg_device_config_default(struct emg_device_config *cfg);

/* Look up a driver by name; NULL if unknown. */
const struct emg_device_ops *emg_device_find(const char *name);

/* Names of all compiled-in drivers, NULL-terminated. */
const char *const *emg_device_names(void);

/* Open the driver cfg->driver. */
int emg_device_open(struct emg_device **out, const struct emg_device_config *cfg);

/* Describe an open device. */
void emg_device_info(struct emg_device *d, struct emg_device_info *info);

/* Start streaming on the driver's own thread. */
int emg_device_start(struct emg_device *d, const struct emg_device_callbacks *cb);

/* Stop streaming and join the driver's thread; no callback runs after it returns. */
void emg_device_stop(struct emg_device *d);

/* Close and free. */
void emg_device_close(struct emg_device *d);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t emg_now_ns(void);

#endif
