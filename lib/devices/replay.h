/* SPDX-License-Identifier: MIT */
/*
 * emg_replay: a device that plays a recording.
 *
 * Sources:
 * - EDF/EDF+/BDF/BDF+ (read with EDFlib): every ordinary signal sampled at
 *   the rate of the first one becomes a channel, in file order; signals
 *   whose transducer starts with "emgd:" (the recorder's filtered and
 *   envelope channels) and annotation signals are skipped, so an emgd
 *   recording replays its raw device channels.  Serial from "serial=" in
 *   the header's recording info (else the equipment field).
 * - CSV (*.csv): line 1 "# rate = 2000" (or "rate,2000"), line 2 the column
 *   names (muscle names), then one row of comma-separated uV per frame;
 *   empty lines and lines starting with '#' are skipped.
 *
 * The device thread paces itself like the synth (cfg->realtime: 1 ms
 * blocks on absolute CLOCK_MONOTONIC deadlines; otherwise as fast as
 * possible) and reads EDF data in 100 ms chunks into buffers allocated at
 * open; CSV files are parsed whole at open.  At the end of the file it
 * reports EMG_DEVICE_WAITING "end of replay file" and stops delivering.
 * cfg->rate and cfg->channels are ignored: the file decides, within
 * EMG_REPLAY_RATE_MIN..EMG_DEVICE_RATE_MAX Hz and 1..256 channels.  A refused
 * file is logged with the reason (and the line of a CSV).
 */
#ifndef EMG_REPLAY_H
#define EMG_REPLAY_H

#include <stddef.h>

#include "../device.h"

/* Lowest rate a replay file may have (the Cyton with Daisy records at 125 Hz), Hz; the
 * highest is EMG_DEVICE_RATE_MAX.  Checked before anything is sized from the rate. */
#define EMG_REPLAY_RATE_MIN 100.0

/* Largest CSV replay file (parsed whole into memory): 1 GiB. */
#define EMG_REPLAY_CSV_MAX_BYTES (1ull << 30)

/* Can path be played: a regular file (not a FIFO, device, directory), CSV within the cap, an EDF/BDF header with a rate in range; 0 or -errno, err says why. */
int emg_replay_check(const char *path, char *err, size_t errlen);

/* Read a whole EDF/BDF/CSV file as the replay device would play it; frames is malloc'd (free it). */
int emg_replay_read_all(const char *path, float **frames, size_t *nframes, unsigned *channels,
			double *rate);

/* Label of channel ch of an open replay device (EDF label or CSV column), or NULL. */
const char *emg_replay_label(struct emg_device *d, unsigned ch);

/* Frames in the file of an open replay device. */
size_t emg_replay_frames(struct emg_device *d);

/* The device-interface ops of the replay driver. */
extern const struct emg_device_ops emg_replay_ops;

#endif
