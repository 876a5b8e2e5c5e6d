/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "devices/replay.h"
#include "devices/cyton.h"
#include "devices/hackeeg.h"
#include "devices/synth.h"

static const struct emg_device_ops *const drivers[] = {
	&emg_synth_ops,
	&emg_cyton_ops,
	&emg_hackeeg_ops,
	&emg_replay_ops,
};

static const char *const driver_names[] = {
	"synth",
	"cyton",
	"hackeeg",
	"replay",
	NULL,
};

void emg_device_config_default(struct emg_device_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->driver = "synth";
	cfg->rate = 2000;
	cfg->realtime = true;
	cfg->seed = 1;
	cfg->snr_db = 30;
	cfg->mains_hz = 50;
	cfg->mains_uv = 20;
	cfg->wander = true;
	cfg->pops = true;
	cfg->scenario = "session";
	cfg->realism = EMG_SYNTH_PLAIN;
	cfg->ecg_uv = 100;
	cfg->ramps = true;
	cfg->crosstalk = true;
	cfg->tonic = true;
	cfg->motion = true;
}

const struct emg_device_ops *emg_device_find(const char *name)
{
	for (unsigned i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

const char *const *emg_device_names(void)
{
	return driver_names;
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
