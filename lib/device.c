/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "devices/replay.h"
#include "devices/cyton.h"
#include "devices/hackeeg.h"
#include "devices/synth.h"

/*
 * The driver registry.  A driver is its own files plus one line here: its
 * ops carry the name, the --help line, its [device] option table and its USB
 * ids, from which the config parser, the config errors, emgd --help and the
 * tests that check the man page and the udev rule all derive.
 */
static const struct emg_device_ops *const drivers[] = {
	&emg_synth_ops,
	&emg_cyton_ops,
	&emg_hackeeg_ops,
	&emg_replay_ops,
	NULL,
};

#define NDRIVERS (sizeof(drivers) / sizeof(drivers[0]) - 1)

const struct emg_device_ops *const *emg_device_drivers(void)
{
	return drivers;
}

void emg_device_config_default(struct emg_device_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->driver = "synth";
	cfg->rate = 2000;
	cfg->mains_hz = 50;
	/* Each option's default is its table's text, parsed like a config line:
	 * one place for it.  A driver sharing an option declares the same default. */
	for (unsigned i = 0; i < NDRIVERS; i++)
		for (const struct emg_device_option *o = drivers[i]->options; o && o->name; o++)
			if (emg_device_option_set(cfg, o, o->def) < 0)
				abort(); /* a table's own default must parse: a build-time bug */
}

const struct emg_device_ops *emg_device_find(const char *name)
{
	for (unsigned i = 0; i < NDRIVERS; i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

const char *const *emg_device_names(void)
{
	static const char *names[NDRIVERS + 1];

	/* constant after the first call; a race writes the same pointers */
	for (unsigned i = 0; i < NDRIVERS; i++)
		names[i] = drivers[i]->name;
	return names;
}

void emg_device_names_text(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < NDRIVERS && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 i == 0 ? "" : i + 1 == NDRIVERS ? " or " : ", ",
					 drivers[i]->name);
}

const struct emg_device_option *emg_device_option_find(const char *name,
						      const struct emg_device_ops **owner)
{
	for (unsigned i = 0; i < NDRIVERS; i++)
		for (const struct emg_device_option *o = drivers[i]->options; o && o->name; o++)
			if (!strcmp(o->name, name)) {
				if (owner)
					*owner = drivers[i];
				return o;
			}
	return NULL;
}

static int choice_index(const struct emg_device_option *o, const char *v)
{
	for (int i = 0; o->choices && o->choices[i]; i++)
		if (!strcmp(o->choices[i], v))
			return i;
	return -1;
}

static int parse_double(const char *v, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	return (errno || end == v || *end || !isfinite(*out)) ? -EINVAL : 0;
}

int emg_device_option_set(struct emg_device_config *cfg, const struct emg_device_option *o,
			  const char *v)
{
	char *field = (char *)cfg + o->off;
	unsigned long long u;
	char *end;
	double d;
	int i;

	switch (o->type) {
	case EMG_OPT_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
			*(bool *)field = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
			*(bool *)field = false;
		else
			return -EINVAL;
		return 0;
	case EMG_OPT_UINT:
		if (parse_double(v, &d) < 0 || d != floor(d) || d < o->min || d > o->max ||
		    (o->choices && choice_index(o, v) < 0))
			return -EINVAL;
		*(unsigned *)field = (unsigned)d;
		return 0;
	case EMG_OPT_U64:
		errno = 0;
		u = strtoull(v, &end, 0);
		if (errno || end == v || *end || *v == '-' || *v == '+' || *v == ' ')
			return -EINVAL;
		*(uint64_t *)field = u;
		return 0;
	case EMG_OPT_DOUBLE:
		if (parse_double(v, &d) < 0 || d < o->min || d > o->max)
			return -EINVAL;
		*(double *)field = d;
		return 0;
	case EMG_OPT_CHOICE:
		if ((i = choice_index(o, v)) < 0)
			return -EINVAL;
		*(const char **)field = o->choices[i];
		return 0;
	case EMG_OPT_ENUM:
		if ((i = choice_index(o, v)) < 0)
			return -EINVAL;
		*(int *)field = i;
		return 0;
	case EMG_OPT_PATH:
		if (strlen(v) >= PATH_MAX)
			return -EINVAL;
		memcpy(field, v, strlen(v) + 1);
		return 0;
	}
	return -EINVAL;
}

int emg_device_option_equal(const struct emg_device_option *o, const struct emg_device_config *a,
			    const struct emg_device_config *b)
{
	const char *fa = (const char *)a + o->off, *fb = (const char *)b + o->off;

	switch (o->type) {
	case EMG_OPT_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case EMG_OPT_UINT:
		return *(const unsigned *)fa == *(const unsigned *)fb;
	case EMG_OPT_U64:
		return *(const uint64_t *)fa == *(const uint64_t *)fb;
	case EMG_OPT_DOUBLE:
		return *(const double *)fa == *(const double *)fb;
	case EMG_OPT_CHOICE: {
		const char *sa = *(const char *const *)fa, *sb = *(const char *const *)fb;
		return sa == sb || (sa && sb && !strcmp(sa, sb));
	}
	case EMG_OPT_ENUM:
		return *(const int *)fa == *(const int *)fb;
	case EMG_OPT_PATH:
		return !strcmp(fa, fb);
	}
	return 0;
}

int emg_device_open(struct emg_device **out, const struct emg_device_config *cfg)
{
	const struct emg_device_ops *ops = emg_device_find(cfg->driver ? cfg->driver : "synth");

	if (!ops)
		return -ENODEV;
	return ops->open(out, cfg);
}

void emg_device_info(struct emg_device *d, struct emg_device_info *info)
{
	memset(info, 0, sizeof(*info));
	d->ops->info(d, info);
}

int emg_device_start(struct emg_device *d, const struct emg_device_callbacks *cb)
{
	return d->ops->start(d, cb);
}

void emg_device_stop(struct emg_device *d)
{
	d->ops->stop(d);
}

void emg_device_close(struct emg_device *d)
{
	if (d)
		d->ops->close(d);
}

uint64_t emg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
