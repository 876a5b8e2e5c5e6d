/* SPDX-License-Identifier: MIT */
/*
 * emg_recorder: crash-safe EDF+/BDF+ recording on its own thread.
 *
 * The DSP thread hands raw device frames to emg_recorder_write(), which
 * copies them into an SPSC ring and returns at once (no allocation, lock,
 * log or system call).  The main thread adds annotations through a second
 * SPSC ring.  The recorder thread turns frames into data records with
 * EDFlib, computes the optional filtered and envelope channels, writes the
 * annotations into the records' annotation signals itself, keeps the
 * header's record count current and flushes every record, so that a
 * kill -9 leaves a file that is readable at once or after
 * emg_record_repair() (see the top of record.c).  A full or failing disk
 * stops the recording cleanly; the DSP side only sees it in the stats.
 *
 * File layout written: one signal per device channel (label = muscle name,
 * or "ch<N>" for unmapped channels; unit "uV"; the amplifier's physical
 * range), then optionally "<muscle>_f" (band-pass + notch) and
 * "<muscle>_rms" (RMS envelope) per mapped muscle, then the "EDF/BDF
 * Annotations" signals.  Short data records (100 ms by default).
 */
#ifndef EMG_RECORD_H
#define EMG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "device.h"
#include "filter.h"
#include "muscles.h"

struct emg_recorder;

/* Longest annotation text in bytes (longer texts are cut at a UTF-8 boundary). */
#define EMG_RECORD_TEXT_MAX 80

/* The recording's file was deleted while open (st_nlink == 0, e.g. its directory removed):
 * everything written is gone.  The recorder's error then is -EMG_RECORD_EDELETED. */
#define EMG_RECORD_EDELETED EIDRM

/* emg_recorder_annotate() sample meaning "at the newest frame the recorder has seen". */
#define EMG_RECORD_NOW UINT64_MAX

struct emg_record_params {
	const char *path;            /* file to create; never overwritten (-EEXIST) */
	bool edf;                    /* false = BDF+ 24-bit (default), true = EDF+ 16-bit */
	const struct emg_device_info *dev;      /* rate, channels, range, model, serial */
	const struct emg_muscles *muscles;      /* labels; may be NULL (all "ch<N>") */
	const struct emg_filter_spec *filter;   /* the DSP's band-pass/notch; NULL = defaults */
	double rms_window_ms;        /* envelope window (0 = 125 ms) */
	bool filtered;               /* add "<muscle>_f" channels */
	bool envelopes;              /* add "<muscle>_rms" channels */
	const char *equipment;       /* header equipment; NULL = "<driver>-<serial>" */
	const char *recording_info;  /* header additional info; NULL = model, serial, filter */
	double record_ms;            /* data record duration target (0 = 100 ms) */
	double buffer_s;             /* frame ring length (0 = 2 s, capped at 16 MiB) */
	bool sync;                   /* also fdatasync() about once a second (power loss) */
};

enum emg_record_state {
	EMG_RECORD_RUNNING = 0, /* accepting frames */
	EMG_RECORD_FAILED,      /* stopped by a write error; the file was closed cleanly */
	EMG_RECORD_CLOSED,      /* emg_recorder_close() ran */
};

struct emg_recorder_stats {
	uint64_t frames_written;  /* device frames now in the file */
	uint64_t frames_filled;   /* zero frames inserted for gaps and end padding */
	uint64_t frames_dropped;  /* frames handed to write() that will never be in the file
				   * (all of them once the file is deleted) */
	uint64_t records;         /* data records in the file */
	uint64_t bytes;           /* file size */
	uint64_t annotations;     /* annotations written */
	uint64_t annotations_dropped; /* annotations lost (queue full, no room) */
	double seconds;           /* recorded duration */
	int error;                /* 0 or the first -errno (e.g. -ENOSPC, -EFBIG) */
	enum emg_record_state state;
};

/* Create the file (O_EXCL), write nothing yet, and start the recorder thread. */
int emg_recorder_open(struct emg_recorder **out, const struct emg_record_params *p);

/* DSP thread: queue nframes interleaved frames (dev->channels floats, uV); returns frames accepted. */
uint32_t emg_recorder_write(struct emg_recorder *r, const float *frames, unsigned nframes,
			    uint64_t first_seq);

/* Main thread: annotate at device sample `sample` (or EMG_RECORD_NOW); duration_s < 0 = none. */
int emg_recorder_annotate(struct emg_recorder *r, uint64_t sample, double duration_s,
			  const char *text);

/* Any thread: a snapshot of the counters. */
void emg_recorder_stats(const struct emg_recorder *r, struct emg_recorder_stats *st);

/* Frames emg_recorder_write() takes now without dropping one, from any thread (UINT32_MAX once it takes none); its ring's size in *slots if not NULL. */
uint32_t emg_recorder_room(const struct emg_recorder *r, uint32_t *slots);

/* Stop, write what is buffered (last record zero-padded), finalise, join, free; 0 or the error
 * (-EMG_RECORD_EDELETED: the file had been deleted, nothing of it is left). */
int emg_recorder_close(struct emg_recorder *r);

/* The path being recorded. */
const char *emg_recorder_path(const struct emg_recorder *r);

/* Make a file left by a crash readable: 0 already fine, 1 repaired, -errno; msg says what was done. */
int emg_record_repair(const char *path, char *msg, size_t len);

/* Called by emg_record_repair_dir() for every file it repaired or could not repair. */
typedef void (*emg_record_repair_fn)(void *ud, const char *path, int result, const char *msg);

/* Repair every *.edf / *.bdf in dir that is not being recorded; returns files repaired or -errno. */
int emg_record_repair_dir(const char *dir, emg_record_repair_fn fn, void *ud);

/* Build "<dir>/<name>.bdf" or "<dir>/emgd-<serial>-YYYYmmdd-HHMMSS.bdf" (.edf if edf); -EINVAL bad name
 * (allowed: 1..100 of A-Z a-z 0-9 - _ ., not starting with - or ., no ..), -EXDEV the other format's
 * extension, -EEXIST taken. */
int emg_record_name(char *out, size_t len, const char *dir, const char *name_or_null,
		    const char *serial, bool edf, time_t now);

/* EDFlib keeps global tables: hold this around edfopen_* and edfclose_file. */
void emg_record_edflib_lock(void);

/* Release the EDFlib lock. */
void emg_record_edflib_unlock(void);

#endif
