/* SPDX-License-Identifier: MIT */
/*
 * emg_calib: per-muscle rest baseline and maximal voluntary contraction.
 *
 * %MVC is the display envelope divided by the largest display envelope seen
 * over all MVC trials of that muscle; values above 1.0 are real (a hip
 * thrust can reach about twice an isometric MVC, Contreras 2015) and are
 * never clipped.  The table is keyed by muscle name when saved, so a
 * reordered or extended muscle map keeps the calibrations that still apply.
 */
#ifndef EMG_CALIB_H
#define EMG_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "muscles.h"
#include "onset.h"

struct emg_calib;

struct emg_calib_entry {
	int has_rest;
	struct emg_baseline rest; /* onset baseline from the rest trial */
	float rest_rms;           /* display envelope at rest, uV */
	int64_t rest_time;        /* unix seconds of the rest trial, 0 = never */
	float mvc_rms;            /* max display envelope over MVC trials, uV; 0 = none */
	int64_t mvc_time;         /* unix seconds of the last MVC trial that raised it */
	unsigned mvc_trials;      /* MVC trials so far */
};

/* Create an empty table for the muscles of map (names are copied). */
int emg_calib_new(struct emg_calib **out, const struct emg_muscles *map);

/* Deep copy. */
int emg_calib_dup(const struct emg_calib *c, struct emg_calib **out);

/* Free a table. */
void emg_calib_free(struct emg_calib *c);

/* Number of muscles in the table. */
unsigned emg_calib_count(const struct emg_calib *c);

/* Entry of muscle i (NULL if out of range). */
const struct emg_calib_entry *emg_calib_get(const struct emg_calib *c, unsigned i);

/* Record a rest trial for muscle i. */
void emg_calib_set_rest(struct emg_calib *c, unsigned i, const struct emg_baseline *b,
			float rest_rms, int64_t when);

/* Record one MVC trial's peak for muscle i: the maximum over trials is kept. */
void emg_calib_add_mvc(struct emg_calib *c, unsigned i, float peak_rms, int64_t when);

/* Forget the MVC of muscle i (a clinician redoing the trials). */
void emg_calib_clear_mvc(struct emg_calib *c, unsigned i);

/* Fraction of MVC for an envelope value, or a negative value if muscle i has no MVC. */
float emg_calib_level(const struct emg_calib *c, unsigned i, float rms);

/* Write the table to path atomically (temp file + rename); negative errno. */
int emg_calib_save(const struct emg_calib *c, const char *path);

/* Largest calibration file accepted (256 muscles need about 80 kB). */
#define EMG_CALIB_MAX_BYTES (1 << 20)

/* Merge entries from path for muscles present in the table; -ENOENT if no file, -EBADMSG with *line set on a bad line. */
int emg_calib_load(struct emg_calib *c, const char *path, unsigned *line);

/* emg_calib_load(); on an open failure (missing, a FIFO, a device, too large) err says why. */
int emg_calib_load_msg(struct emg_calib *c, const char *path, unsigned *line, char *err,
		       size_t errlen);

/* Copy entries of muscles with the same name from src into dst (used on reload). */
void emg_calib_merge(struct emg_calib *dst, const struct emg_calib *src);

#endif
