/* SPDX-License-Identifier: MIT */
/*
 * emg_muscles: which amplifier channel records which muscle.
 *
 * Muscle names are lower_snake OSC path components and config keys
 * (glute_max_l, glute_med_r, hip_flex_l ...): they are the stable public
 * names clients subscribe to, so they are validated strictly.
 */
#ifndef EMG_MUSCLES_H
#define EMG_MUSCLES_H

#include <stddef.h>

#define EMG_MUSCLE_NAME_MAX 32  /* including the NUL */
#define EMG_MUSCLE_SITE_MAX 96
#define EMG_MUSCLES_MAX 256

enum emg_side { EMG_SIDE_NONE = 0, EMG_SIDE_LEFT, EMG_SIDE_RIGHT };

struct emg_muscle {
	char name[EMG_MUSCLE_NAME_MAX];
	unsigned channel;            /* 0-based amplifier channel */
	enum emg_side side;
	char site[EMG_MUSCLE_SITE_MAX]; /* electrode placement, SENIAM wording */
};

struct emg_muscles;

/* Create an empty map. */
int emg_muscles_new(struct emg_muscles **out);

/* Create the default 6-muscle hip map (glute max, glute med, hip flexor; left and right). */
int emg_muscles_new_default(struct emg_muscles **out);

/* Deep copy. */
int emg_muscles_dup(const struct emg_muscles *m, struct emg_muscles **out);

/* Free a map. */
void emg_muscles_free(struct emg_muscles *m);

/* Add a muscle; -EINVAL bad name, -EEXIST name or channel taken, -ENOSPC map full. */
int emg_muscles_add(struct emg_muscles *m, const char *name, unsigned channel, enum emg_side side,
		    const char *site);

/* Remove every muscle. */
void emg_muscles_clear(struct emg_muscles *m);

/* Number of muscles. */
unsigned emg_muscles_count(const struct emg_muscles *m);

/* The i-th muscle in config order, or NULL. */
const struct emg_muscle *emg_muscles_get(const struct emg_muscles *m, unsigned i);

/* Index of the muscle called name, or -ENOENT. */
int emg_muscles_find(const struct emg_muscles *m, const char *name);

/* Highest channel used plus one (0 when empty). */
unsigned emg_muscles_channels_needed(const struct emg_muscles *m);

/* 1 if name is a valid muscle name: [a-z][a-z0-9_]*, shorter than EMG_MUSCLE_NAME_MAX. */
int emg_muscle_name_valid(const char *name);

/* Parse "left"/"l", "right"/"r", "none"/"-"; -EINVAL otherwise. */
int emg_side_parse(const char *s, enum emg_side *out);

/* "left", "right" or "none". */
const char *emg_side_name(enum emg_side s);

/* Role of a muscle from its name prefix: "glute_max", "glute_med", "hip_flex", "hamstring", ... or "other". */
const char *emg_muscle_role(const char *name);

/* 1 if both maps list the same names on the same channels. */
int emg_muscles_equal(const struct emg_muscles *a, const struct emg_muscles *b);

#endif
