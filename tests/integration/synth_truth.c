/* SPDX-License-Identifier: MIT */
/*
 * synth_truth CONFIG: print the synth's ground truth for an emgd config file,
 * one scripted burst per line, for the integration tests:
 *
 *   muscle exercise rep onset_sample offset_sample peak_mvc mvc_uv
 *
 * The daemon's synth starts at sample 0 and repeats the script every
 * script_length samples; the first line is "length <samples> rate <Hz>".
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "devices/synth.h"

int main(int argc, char **argv)
{
	struct emg_config cfg;
	struct emg_device_config dc;
	struct emg_synth *s;
	struct emg_truth *t;
	char err[1024];
	size_t n;
	uint64_t len;

	if (argc != 2) {
		fprintf(stderr, "usage: synth_truth CONFIG\n");
		return 2;
	}
	if (emg_config_init(&cfg) < 0 || emg_config_load(&cfg, argv[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	emg_config_device(&cfg, &dc);
	dc.realtime = false;
	if (emg_synth_new(&s, &dc) < 0) {
		fprintf(stderr, "synth_truth: cannot build the synth\n");
		return 1;
	}
	len = emg_synth_script_length(s);
	n = emg_synth_truth(s, 0, len, NULL, 0);
	t = calloc(n ? n : 1, sizeof(*t));
	if (!t)
		return 1;
	emg_synth_truth(s, 0, len, t, n);
	printf("length %llu rate %g\n", (unsigned long long)len, emg_synth_rate(s));
	for (size_t i = 0; i < n; i++) {
		const char *name = "?";
		double noise, mvc;
		for (unsigned k = 0; k < emg_muscles_count(cfg.muscles); k++)
			if (emg_muscles_get(cfg.muscles, k)->channel == t[i].channel)
				name = emg_muscles_get(cfg.muscles, k)->name;
		emg_synth_levels(s, t[i].channel, &noise, &mvc);
		printf("%s %s %u %llu %llu %.4f %.1f\n", name, t[i].exercise, t[i].rep,
		       (unsigned long long)t[i].onset, (unsigned long long)t[i].offset,
		       (double)t[i].peak_mvc, mvc);
	}
	free(t);
	emg_synth_free(s);
	emg_config_release(&cfg);
	return 0;
}
