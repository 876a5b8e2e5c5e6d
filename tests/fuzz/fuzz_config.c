/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the config parser, emg_config_parse() - what emgd -c,
 * --check-config and every SIGHUP reload run on the file's bytes.
 *
 * Besides memory and UB errors it checks the parser's contract: an error is
 * one non-empty line naming the file and leaves the configuration untouched;
 * a success yields a configuration inside the documented ranges (at least
 * one muscle, lease <= max_lease, publish rate <= sample rate, ...), and
 * parsing the same text again over the result gives the same answer.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_main.h"

static void check_valid(const struct emg_config *c)
{
	if (emg_muscles_count(c->muscles) < 1 || emg_muscles_count(c->muscles) > EMG_MUSCLES_MAX)
		abort();
	if (c->default_lease_s < 1 || c->default_lease_s > c->max_lease_s)
		abort();
	if (c->max_subscribers < 1 || c->max_subscribers > 1024)
		abort();
	if (!(c->rate == 0 || (c->rate >= 250 && c->rate <= 16000)))
		abort();
	if (c->rate > 0 && c->pipe.publish_rate > c->rate)
		abort();
	if (!(c->rate_limit >= 1) || c->rate_burst < 1)
		abort();
	if (c->ntargets > EMG_CONFIG_MAX_TARGETS || c->nallow > EMG_CONFIG_MAX_ALLOW)
		abort();
	/* port 0 is "auto" in [osc] listen and [oscquery] http (the first free one is bound);
	 * a static target always has a real port */
	if (!memchr(c->listen.host, 0, sizeof(c->listen.host)))
		abort();
	for (unsigned i = 0; i < c->ntargets; i++)
		if (c->targets[i].port == 0)
			abort();
	if (c->state_dir[0] != '/' || c->recordings_dir[0] != '/')
		abort();
	if (c->channels && emg_muscles_channels_needed(c->muscles) > c->channels)
		abort();
	if (!isfinite(c->pipe.filter.highpass_hz) || !isfinite(c->pipe.filter.lowpass_hz))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct emg_config cfg, before;
	char err[1024], err2[1024];
	int r, r2;

	if (emg_config_init(&cfg) < 0)
		return 0;
	if (emg_config_copy(&before, &cfg) < 0) {
		emg_config_release(&cfg);
		return 0;
	}
	err[0] = 0;
	r = emg_config_parse(&cfg, "fuzz.conf", (const char *)data, size, err, sizeof(err));
	if (r < 0) {
		/* one line, naming the file; the running configuration untouched */
		if (!err[0] || strchr(err, '\n') || strncmp(err, "fuzz.conf", 9))
			abort();
		if (cfg.muscles != before.muscles && !emg_muscles_equal(cfg.muscles, before.muscles))
			abort();
		if (cfg.listen.port != before.listen.port || cfg.rate != before.rate ||
		    cfg.max_subscribers != before.max_subscribers || cfg.path[0])
			abort();
	} else {
		check_valid(&cfg);
		if (strcmp(cfg.path, "fuzz.conf"))
			abort();
		/* a reload of the same text over the result is accepted again */
		r2 = emg_config_parse(&cfg, "fuzz.conf", (const char *)data, size, err2,
				      sizeof(err2));
		if (r2 != 0)
			abort();
		check_valid(&cfg);
	}
	emg_config_release(&cfg);
	emg_config_release(&before);
	return 0;
}
