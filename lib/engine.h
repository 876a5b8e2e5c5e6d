/* SPDX-License-Identifier: MIT */
/*
 * emg_engine: the acquisition engine - a device, its DSP thread and the rings
 * between them and the caller's (main) thread.
 *
 *   device thread --frames ring--> DSP thread --outputs ring--> main thread
 *        (driver)                  (pipeline,     (emg_engine_dispatch ->
 *                                   recorder)      sink callbacks)
 *   main thread --commands ring--> DSP thread (calibrate, swap, attach/detach)
 *
 * All rings are SPSC and wake their consumer through an eventfd on the empty
 * -> non-empty transition.  The device thread only copies frames into the
 * frames ring (no malloc, lock, log or block).  The DSP thread blocks in
 * poll() until frames or commands arrive; it never waits for the main thread:
 * a notice it cannot post yet (outputs ring full) stays pending and is posted
 * when the main thread makes room and wakes it.
 *
 * Pipeline swap (a reload): the caller builds a new pipeline and hands it
 * over with emg_engine_swap(); between two blocks the DSP thread continues
 * the old pipeline's tick numbering and dropped count in the new one
 * (emg_pipeline_handover) and switches, so no sample is lost.  The sink's
 * swapped() marks the exact point in the output stream; the old pipeline is
 * freed there.  Recorder attach/detach works the same way: after the sink's
 * detached() the DSP thread never touches that recorder again.
 *
 * Every function except the callbacks runs on the one thread that started
 * the engine; the sink's callbacks run on it too, from emg_engine_dispatch()
 * and emg_engine_stop().
 */
#ifndef EMG_ENGINE_H
#define EMG_ENGINE_H

#include <stdint.h>

#include "device.h"
#include "pipeline.h"
#include "record.h"

struct emg_engine;

/* Where the engine delivers, on the caller's thread. */
struct emg_engine_sink {
	void *ud;
	/* One pipeline output, in the order the DSP thread produced them. */
	void (*out)(void *ud, const struct emg_out *o);
	/* Outputs after this one come from the pipeline of the last emg_engine_swap(). */
	void (*swapped)(void *ud);
	/* The DSP thread let go of r (emg_engine_detach): the caller closes it. */
	void (*detached)(void *ud, struct emg_recorder *r);
};

struct emg_engine_params {
	struct emg_device *dev;     /* opened, not started: the engine starts, stops and closes it */
	struct emg_pipeline *pipe;  /* the first pipeline: the engine frees it */
	struct emg_engine_sink sink;
	int rt_priority;            /* SCHED_FIFO priority of the DSP thread; 0 = none */
	uint64_t stall_ms;          /* fault injection: the DSP thread sleeps once for this long ... */
	uint64_t stall_after_ns;    /* ... this long after it started (0 ms: never) */
	struct emg_recorder *rec;   /* attached from the first frame (NULL: none); the caller's, also on failure */
};

/* Make the rings, start the DSP thread, then the device; on failure dev and pipe are freed too. */
int emg_engine_start(struct emg_engine **out, const struct emg_engine_params *p);

/* Stop the device and the DSP thread, deliver what is left, free all; returns the still-attached recorder or NULL. */
struct emg_recorder *emg_engine_stop(struct emg_engine *e);

/* 0 when the DSP thread got params.rt_priority (or none was asked), else the negative errno. */
int emg_engine_rt_error(const struct emg_engine *e);

/* The running device. */
const struct emg_device_info *emg_engine_device(const struct emg_engine *e);

/* Readable when outputs wait: call emg_engine_dispatch(). */
int emg_engine_fd(const struct emg_engine *e);

/* Wait up to timeout_ms (0: not at all) for outputs, then deliver all waiting to the sink; count or -errno. */
int emg_engine_dispatch(struct emg_engine *e, int timeout_ms);

/* Readable (eventfd: read it to clear) when the device changed state. */
int emg_engine_state_fd(const struct emg_engine *e);

/* The device's state and why (a static string, may be NULL). */
enum emg_device_state emg_engine_state(const struct emg_engine *e, const char **why);

/* Frames the device delivered so far. */
uint64_t emg_engine_frames(const struct emg_engine *e);

/* Frames lost so far: reported missing by the device plus frames-ring overruns. */
uint64_t emg_engine_lost(const struct emg_engine *e);

/* Outputs dropped because the caller drained too slowly (outputs ring full). */
uint64_t emg_engine_outs_dropped(const struct emg_engine *e);

/* Most muscles a pipeline may have here (output slots are sized at start). */
unsigned emg_engine_max_muscles(const struct emg_engine *e);

/* Hand over pipe (same device) to the DSP thread; -EBUSY while the last swap is in flight, -E2BIG, -EAGAIN. */
int emg_engine_swap(struct emg_engine *e, struct emg_pipeline *pipe);

/* 1 while a swap waits for the DSP thread (its swapped() not yet delivered). */
int emg_engine_swapping(const struct emg_engine *e);

/* Start a rest calibration of all muscles; -EAGAIN when the command queue is full. */
int emg_engine_calibrate_rest(struct emg_engine *e, double seconds);

/* Start an MVC trial of muscle i; -EAGAIN when the command queue is full. */
int emg_engine_calibrate_mvc(struct emg_engine *e, unsigned muscle, double seconds);

/* Have the DSP thread write raw frames to r from the next block; -EBUSY if one is attached or detaching. */
int emg_engine_attach(struct emg_engine *e, struct emg_recorder *r);

/* Have the DSP thread record the frames captured until now, then let go (sink detached() follows); -ENOENT, -EAGAIN. */
int emg_engine_detach(struct emg_engine *e);

#endif
