/* SPDX-License-Identifier: MIT */
/*
 * emg_paced: the acquisition thread of the drivers that make their own
 * samples (synth, replay).
 *
 * The thread delivers the samples due every millisecond (or one sample per
 * tick below 1 kHz), sleeping to absolute deadlines (clock_nanosleep,
 * TIMER_ABSTIME).  If it wakes more than 100 ms late (machine suspended,
 * debugger, starved), it re-anchors its schedule at "now" instead of
 * bursting out the backlog: the sample clock simply pauses, first_seq stays
 * contiguous and nothing is reported lost.  realtime = false delivers as fast
 * as the consumer takes the frames (the callbacks' room()): a replay is read
 * whole, however slow the machine.
 */
#ifndef EMG_PACED_H
#define EMG_PACED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "../device.h"

struct emg_paced_dev;

/* Deliver n frames through d->cb (the acquisition thread); 0 goes on, a
 * negative value ends the thread (the driver reported why). */
typedef int (*emg_paced_fn)(struct emg_paced_dev *d, unsigned n);

/* A paced driver's device struct begins with this; open() fills the first block. */
struct emg_paced_dev {
	struct emg_device dev;          /* first: the generic handle */
	double rate;                    /* frames per second */
	bool realtime;                  /* pace in real time */
	const char *running_why;        /* the STREAMING state's text: "synth running" */
	emg_paced_fn produce;
	struct emg_device_callbacks cb; /* set by emg_paced_start() */
	/* private */
	pthread_t thread;
	bool running;
	atomic_bool stop;
};

/* The realtime option of every paced driver (their option tables share it). */
#define EMG_PACED_REALTIME_OPTION                                                          \
	{ "realtime", EMG_OPT_BOOL, offsetof(struct emg_device_config, realtime), 0, 0, NULL, \
	  "yes", "yes or no", "pace in real time (no: as fast as the processing takes them, none dropped)" }

/* True once emg_paced_stop() was called: a produce() that waits should return. */
bool emg_paced_stopping(struct emg_paced_dev *d);

/* emg_device_ops.start of a paced driver: start the thread ("emgd-acq"). */
int emg_paced_start(struct emg_device *dev, const struct emg_device_callbacks *cb);

/* emg_device_ops.stop of a paced driver: stop and join the thread (idempotent). */
void emg_paced_stop(struct emg_device *dev);

#endif
