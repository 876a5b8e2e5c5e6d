/* SPDX-License-Identifier: MIT */
/*
 * Shared body of the replay fuzz targets: write the input to a file with the
 * given suffix (the replay driver picks the reader by suffix and EDFlib reads
 * from a path) and read it whole with emg_replay_read_all(), exactly as the
 * replay device would play it.  Checks besides memory and UB errors: a file
 * is either refused with a negative errno or gives 1..256 channels, a rate
 * in EMG_REPLAY_RATE_MIN..EMG_DEVICE_RATE_MAX (100..16000 Hz), and finite samples.
 */
#ifndef EMG_FUZZ_REPLAY_H
#define EMG_FUZZ_REPLAY_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "devices/replay.h"

static int fuzz_replay(const uint8_t *data, size_t size, const char *suffix)
{
	static char dir[16];
	char path[128];
	float *frames = NULL;
	size_t nframes = 0;
	unsigned ch = 0;
	double rate = 0;
	int r;

	if (!dir[0]) /* tmpfs when there is one: the file is rewritten for every input */
		snprintf(dir, sizeof(dir), "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	snprintf(path, sizeof(path), "%s/emgd-fuzz-%d%s", dir, (int)getpid(), suffix);
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	r = emg_replay_read_all(path, &frames, &nframes, &ch, &rate);
	unlink(path);
	if (r < 0) {
		if (frames)
			abort();
		return 0;
	}
	if (r > 0 || ch < 1 || ch > EMG_DEVICE_MAX_CHANNELS || !(rate >= EMG_REPLAY_RATE_MIN) ||
	    rate > EMG_DEVICE_RATE_MAX ||
	    (nframes && !frames))
		abort();
	for (size_t i = 0; i < nframes * ch; i++)
		if (!isfinite(frames[i]))
			abort();
	free(frames);
	return 0;
}

#endif
