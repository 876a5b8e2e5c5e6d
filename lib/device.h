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

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
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

/* What the daemon's config says about the device.  The first block is common
 * to all drivers ([device] driver, rate, channels, serial); every other field
 * is a driver option, declared in that driver's option table (its name,
 * type, range, default and help) and set from the [device] key of that name. */
struct emg_device_config {
	const char *driver;   /* NULL = "synth" */
	double rate;          /* requested rate, 0 = driver default */
	unsigned channels;    /* requested channels, 0 = enough for the muscle map */
	const char *serial;   /* select a USB device by serial, NULL/"" = first */
	double mains_hz;      /* hum frequency, 0 = none ([dsp] mains; the synth hums at it) */
	const struct emg_muscles *muscles; /* map, so the synth knows which muscle each channel is */
	/* replay */
	char file[PATH_MAX];  /* file to play */
	/* synth, replay */
	bool realtime;        /* pace in real time (false = as fast as possible) */
	/* synth only */
	uint64_t seed;
	double snr_db;        /* contraction RMS over noise RMS (default 30) */
	double mains_uv;      /* hum amplitude, uV (default 20) */
	bool wander;          /* baseline wander */
	bool pops;            /* electrode-pop artefacts */
	const char *scenario; /* "session" (default), "rest", "bridge", "hip_thrust", "abduction", "prone_hip_ext" */
	enum emg_synth_realism realism; /* default plain (README "Amplifiers": its bursts have a reachable onset truth); the keys below only act in realistic */
	double ecg_uv;        /* ECG R-peak on the strongest channel, uV, 0 = none (default 100) */
	bool ramps;           /* 20-300 ms recruitment ramps, slow decays, MU-like fluctuation */
	bool crosstalk;       /* neighbouring muscles' EMG leaks in (not in the truth) */
	bool tonic;           /* 1-3 % MVC tonic activity on postural muscles (not in the truth) */
	bool motion;          /* motion artefacts around each movement's start */
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
/* Frames the consumer can take now without dropping any. */
typedef unsigned (*emg_device_room_fn)(void *ud);

struct emg_device_callbacks {
	emg_device_data_fn data;
	emg_device_state_fn state;
	void *ud;
	/* A driver that makes its own samples faster than real time (replay or
	 * synth with realtime = no) waits for room before it delivers, so that
	 * nothing is dropped; an amplifier cannot wait and never asks.  NULL:
	 * no one to ask. */
	emg_device_room_fn room;
};

/* How a driver option's value is written and stored. */
enum emg_option_type {
	EMG_OPT_BOOL,   /* bool: yes/no, true/false, on/off, 1/0 */
	EMG_OPT_UINT,   /* unsigned, a whole number in min..max (and one of choices, if any) */
	EMG_OPT_U64,    /* uint64_t, decimal or 0x hex */
	EMG_OPT_DOUBLE, /* double in min..max */
	EMG_OPT_CHOICE, /* const char *: points at the matching entry of choices */
	EMG_OPT_ENUM,   /* int: index of the matching entry of choices */
	EMG_OPT_PATH,   /* char[PATH_MAX] */
};

/* One [device] key a driver reads; tables end with a row whose name is NULL. */
struct emg_device_option {
	const char *name;             /* the [device] key */
	enum emg_option_type type;
	size_t off;                   /* field in struct emg_device_config */
	double min, max;              /* UINT, DOUBLE */
	const char *const *choices;   /* CHOICE, ENUM (required), UINT (optional); NULL-terminated */
	const char *def;              /* default, as written in a config file */
	const char *allowed;          /* what a config error says is allowed */
	const char *help;             /* one line for the man page and conf/emgd.conf */
};

/* A USB vendor:product a driver claims (the udev rule must match it); tables end with 0:0. */
struct emg_usb_id {
	uint16_t vid, pid;
};

struct emg_device_ops {
	const char *name;
	const char *help; /* one line for --help and the man page */
	const struct emg_device_option *options; /* its [device] keys, NULL = none */
	const struct emg_usb_id *usb_ids;        /* NULL = not a USB device */
	/* Refuse a config that cannot work before anything opens (a FIFO as the
	 * replay file); why is one line.  NULL = nothing to check. */
	int (*check)(const struct emg_device_config *cfg, char *why, size_t whylen);
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

/* Fill a config with defaults: synth, 2000 Hz, 50 Hz hum, every driver option's def. */
void emg_device_config_default(struct emg_device_config *cfg);

/* The driver registry: every compiled-in driver, NULL-terminated. */
const struct emg_device_ops *const *emg_device_drivers(void);

/* Look up a driver by name; NULL if unknown. */
const struct emg_device_ops *emg_device_find(const char *name);

/* Names of all compiled-in drivers, NULL-terminated. */
const char *const *emg_device_names(void);

/* "synth, cyton, hackeeg or replay": the registry's names for messages. */
void emg_device_names_text(char *buf, size_t len);

/* The first driver option called name in registry order (drivers may share
 * one, e.g. gain); *owner gets its driver if not NULL.  NULL if none. */
const struct emg_device_option *emg_device_option_find(const char *name,
						      const struct emg_device_ops **owner);

/* Parse value into cfg's field for o; -EINVAL (cfg untouched) if not allowed. */
int emg_device_option_set(struct emg_device_config *cfg, const struct emg_device_option *o,
			  const char *value);

/* 1 if a and b hold the same value for o. */
int emg_device_option_equal(const struct emg_device_option *o, const struct emg_device_config *a,
			    const struct emg_device_config *b);

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
