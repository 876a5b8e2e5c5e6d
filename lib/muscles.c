/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muscles.h"

struct emg_muscles {
	unsigned n;
	struct emg_muscle m[EMG_MUSCLES_MAX];
};

/* SENIAM placements; the hip flexor channel sits over rectus femoris, the only
 * hip flexor reachable with surface electrodes without crosstalk from
 * sartorius/TFL dominating. */
static const struct {
	const char *name;
	enum emg_side side;
	const char *site;
} default_map[] = {
	{ "glute_max_l", EMG_SIDE_LEFT, "gluteus maximus: 50% on the line sacral vertebrae - greater trochanter" },
	{ "glute_max_r", EMG_SIDE_RIGHT, "gluteus maximus: 50% on the line sacral vertebrae - greater trochanter" },
	{ "glute_med_l", EMG_SIDE_LEFT, "gluteus medius: 50% on the line iliac crest - greater trochanter" },
	{ "glute_med_r", EMG_SIDE_RIGHT, "gluteus medius: 50% on the line iliac crest - greater trochanter" },
	{ "hip_flex_l", EMG_SIDE_LEFT, "rectus femoris: 50% on the line anterior spina iliaca superior - patella" },
	{ "hip_flex_r", EMG_SIDE_RIGHT, "rectus femoris: 50% on the line anterior spina iliaca superior - patella" },
};

int emg_muscles_new(struct emg_muscles **out)
{
	struct emg_muscles *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	*out = m;
	return 0;
}

int emg_muscles_new_default(struct emg_muscles **out)
{
	struct emg_muscles *m;
	int r = emg_muscles_new(&m);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < sizeof(default_map) / sizeof(default_map[0]); i++) {
		r = emg_muscles_add(m, default_map[i].name, i, default_map[i].side,
				    default_map[i].site);
		if (r < 0) {
			emg_muscles_free(m);
			return r;
		}
	}
	*out = m;
	return 0;
}

int emg_muscles_dup(const struct emg_muscles *m, struct emg_muscles **out)
{
	struct emg_muscles *c = malloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	memcpy(c, m, sizeof(*c));
	*out = c;
	return 0;
}

void emg_muscles_free(struct emg_muscles *m)
{
	free(m);
}

int emg_muscle_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= EMG_MUSCLE_NAME_MAX)
		return 0;
	if (name[0] < 'a' || name[0] > 'z')
		return 0;
	for (size_t i = 1; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

int emg_muscles_add(struct emg_muscles *m, const char *name, unsigned channel, enum emg_side side,
		    const char *site)
{
	struct emg_muscle *e;

	if (!emg_muscle_name_valid(name) || channel >= 256)
		return -EINVAL;
	/* Full first: with EMG_MUSCLES_MAX = 256 every channel is taken by then. */
	if (m->n == EMG_MUSCLES_MAX)
		return -ENOSPC;
	for (unsigned i = 0; i < m->n; i++)
		if (!strcmp(m->m[i].name, name) || m->m[i].channel == channel)
			return -EEXIST;
	e = &m->m[m->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	snprintf(e->site, sizeof(e->site), "%s", site ? site : "");
	e->channel = channel;
	e->side = side;
	return 0;
}

void emg_muscles_clear(struct emg_muscles *m)
{
	m->n = 0;
}

unsigned emg_muscles_count(const struct emg_muscles *m)
{
	return m->n;
}

const struct emg_muscle *emg_muscles_get(const struct emg_muscles *m, unsigned i)
{
	return i < m->n ? &m->m[i] : NULL;
}

int emg_muscles_find(const struct emg_muscles *m, const char *name)
{
	for (unsigned i = 0; i < m->n; i++)
		if (!strcmp(m->m[i].name, name))
			return (int)i;
	return -ENOENT;
}

unsigned emg_muscles_channels_needed(const struct emg_muscles *m)
{
	unsigned need = 0;

	for (unsigned i = 0; i < m->n; i++)
		if (m->m[i].channel + 1 > need)
			need = m->m[i].channel + 1;
	return need;
}

int emg_side_parse(const char *s, enum emg_side *out)
{
	if (!strcmp(s, "left") || !strcmp(s, "l"))
		*out = EMG_SIDE_LEFT;
	else if (!strcmp(s, "right") || !strcmp(s, "r"))
		*out = EMG_SIDE_RIGHT;
	else if (!strcmp(s, "none") || !strcmp(s, "-"))
		*out = EMG_SIDE_NONE;
	else
		return -EINVAL;
	return 0;
}

const char *emg_side_name(enum emg_side s)
{
	switch (s) {
	case EMG_SIDE_LEFT:
		return "left";
	case EMG_SIDE_RIGHT:
		return "right";
	default:
		return "none";
	}
}

const char *emg_muscle_role(const char *name)
{
	static const char *const roles[] = {
		"glute_max", "glute_med", "hip_flex", "hamstring", "erector",
	};

	for (unsigned i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		size_t n = strlen(roles[i]);
		if (!strncmp(name, roles[i], n) && (name[n] == '\0' || name[n] == '_' ||
						    name[n] == 's'))
			return roles[i];
	}
	return "other";
}

int emg_muscles_equal(const struct emg_muscles *a, const struct emg_muscles *b)
{
	if (a->n != b->n)
		return 0;
	for (unsigned i = 0; i < a->n; i++)
		if (strcmp(a->m[i].name, b->m[i].name) || a->m[i].channel != b->m[i].channel)
			return 0;
	return 1;
}
