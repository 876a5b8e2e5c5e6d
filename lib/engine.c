/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "ring.h"

#define FRAME_SLOTS 8192   /* at most: ~4 s at 2 kHz, ~0.8 s at 10 kHz ... */
#define FRAME_RING_BYTES (4u << 20) /* ... and about this much (256 ch: 2048 slots, 0.2 s at 10 kHz) */
#define OUT_SLOTS 1024     /* at most ... */
#define OUT_RING_BYTES (1u << 20)   /* ... and about this much, but ... */
#define OUT_SLOTS_MIN 256  /* ... at least this many (a burst of events at once) */
#define CMD_SLOTS 16
#define DSP_BLOCK 256      /* frames handed to the pipeline at once */
#define CTL_MAX 4          /* notices the DSP thread may hold back (one swap, one detach in flight) */
/* A detach waits for a frame captured after it; a device that sends none this
 * long (stalled, unplugged, paused) does not hold the recording open. */
#define DETACH_WAIT_NS 250000000ull

struct frame_hdr {
	uint64_t seq;
	uint64_t t_ns;
	uint32_t lost;
	uint32_t pad;
};

enum cmd_type { CMD_CAL_REST = 1, CMD_CAL_MVC, CMD_SWAP, CMD_REC_ATTACH, CMD_REC_DETACH };

struct cmd {
	int type;
	unsigned muscle;
	double seconds;
	struct emg_pipeline *pipe;
	struct emg_recorder *rec;
	uint64_t t_ns; /* CMD_REC_DETACH: when the caller asked (CLOCK_MONOTONIC) */
};

/* What an outputs-ring slot carries: a pipeline output, or one of the engine's
 * own notices (kept out of the pipeline's emg_out_type space). */
enum slot_kind { SLOT_OUT = 1, SLOT_SWAPPED, SLOT_DETACHED };

/* Every outputs-ring slot begins with this; a SLOT_OUT's struct emg_out follows. */
struct slot_hdr {
	uint32_t kind;
	uint32_t pad;
};

struct emg_engine {
	struct emg_engine_sink sink;
	struct emg_device *dev;
	struct emg_device_info info;
	struct emg_ring *frames, *outs, *cmds;
	size_t frame_size;
	unsigned max_muscles;
	pthread_t dsp;
	int dsp_running;
	int rt_err;
	int state_efd; /* device thread -> caller: the state changed */
	int wake_efd;  /* caller -> DSP thread: stop, or room in the outputs ring */
	_Atomic int stop;
	_Atomic int want_room; /* the DSP thread holds notices back for lack of room */

	/* The recorder a paced driver's room() also waits for (realtime = no):
	 * set by the caller on attach; cleared on detach, after which the
	 * caller waits until no room() call still reads it (room_readers). */
	struct emg_recorder *_Atomic room_rec;
	_Atomic unsigned room_readers;

	/* Written by the device thread, read by the caller. */
	_Atomic uint64_t frames_in;
	_Atomic uint64_t device_lost;
	_Atomic int dev_state;
	const char *_Atomic dev_why;

	/* DSP thread only (while it runs). */
	struct emg_pipeline *dsp_pipe;
	struct emg_recorder *dsp_rec;
	bool dsp_detaching;      /* a detach came: record frames captured up to ... */
	uint64_t dsp_rec_until;  /* ... this time, then let go */
	float *block;
	uint64_t dsp_seen_overruns;
	uint8_t ctl[CTL_MAX]; /* notices not yet posted, oldest first */
	unsigned nctl;
	uint64_t stall_ms, stall_after_ns;
	_Atomic uint64_t outs_dropped; /* the DSP thread writes, the caller reads */

	/* Caller's thread. */
	struct emg_pipeline *pipe;     /* the pipeline last handed to the DSP thread */
	struct emg_pipeline *pipe_old; /* the one it replaces, until SLOT_SWAPPED */
	struct emg_recorder *rec;      /* attached */
	struct emg_recorder *rec_old;  /* detach sent, until SLOT_DETACHED */
};

/* ---- device thread ---- */

static void on_frames(void *ud, const float *frames, unsigned n, uint64_t first_seq, uint32_t lost,
		      uint64_t t_ns)
{
	struct emg_engine *e = ud;
	size_t bytes = e->info.channels * sizeof(float);

	for (unsigned i = 0; i < n; i++) {
		struct frame_hdr *h = emg_ring_reserve(e->frames);
		if (!h)
			continue; /* counted by the ring as an overrun */
		h->seq = first_seq + i;
		h->t_ns = t_ns;
		h->lost = i == 0 ? lost : 0;
		memcpy(h + 1, frames + (size_t)i * e->info.channels, bytes);
		emg_ring_commit(e->frames);
	}
	if (lost)
		atomic_fetch_add_explicit(&e->device_lost, lost, memory_order_relaxed);
	atomic_fetch_add_explicit(&e->frames_in, n, memory_order_relaxed);
}

/*
 * Frames a paced driver may deliver without loss: room in the frame ring
 * and, while recording, in the recorder's ring less what the DSP thread has
 * still to hand it (the frame ring's, and a block it may hold).  Only
 * drivers that make their own samples ask (replay, synth at realtime = no):
 * a replay as fast as it is processed outran the recorder - 18311 of a
 * 550 s recording's frames were not written.
 */
static unsigned on_room(void *ud)
{
	struct emg_engine *e = ud;
	const uint32_t queued = emg_ring_count(e->frames);
	uint32_t room = emg_ring_capacity(e->frames) - queued;

	atomic_fetch_add(&e->room_readers, 1);
	struct emg_recorder *r = atomic_load(&e->room_rec);
	if (r) {
		uint32_t slots;
		const uint32_t rr = emg_recorder_room(r, &slots);
		/* a block the DSP thread may hold; never all of a small ring,
		 * or an empty one would never be room enough */
		const uint32_t held = DSP_BLOCK < slots / 2 ? DSP_BLOCK : slots / 2;
		const uint32_t left = rr > queued + held ? rr - queued - held : 0;
		if (left < room)
			room = left;
	}
	atomic_fetch_sub(&e->room_readers, 1);
	return room;
}

static void on_state(void *ud, enum emg_device_state st, const char *why)
{
	struct emg_engine *e = ud;
	uint64_t one = 1;

	atomic_store(&e->dev_why, why);
	atomic_store(&e->dev_state, (int)st);
	if (write(e->state_efd, &one, sizeof(one)) < 0) {
		/* counter already non-zero: the caller will look anyway */
	}
}

/* ---- DSP thread ---- */

/* Post the held-back notices in order; 0 when none is left. */
static int post_notices(struct emg_engine *e)
{
	while (e->nctl) {
		struct slot_hdr *h = emg_ring_reserve(e->outs);

		if (!h) {
			/* Ask the caller for a wake-up once it made room, then look
			 * again: it may have drained just before the flag was set. */
			atomic_store(&e->want_room, 1);
			atomic_thread_fence(memory_order_seq_cst); /* pairs with drain_outs() */
			if (!(h = emg_ring_reserve(e->outs)))
				return -ENOBUFS;
		}
		memset(h, 0, sizeof(*h));
		h->kind = e->ctl[0];
		emg_ring_commit(e->outs);
		memmove(e->ctl, e->ctl + 1, --e->nctl);
	}
	atomic_store(&e->want_room, 0);
	return 0;
}

static void notice(struct emg_engine *e, enum slot_kind k)
{
	if (e->nctl < CTL_MAX) /* at most one swap and one detach are in flight */
		e->ctl[e->nctl++] = (uint8_t)k;
	post_notices(e);
}

static void on_out(void *ud, const struct emg_out *o)
{
	struct emg_engine *e = ud;
	/* Slots fit the largest output; copy only what this one has. */
	size_t n = sizeof(*o) + (o->type == EMG_OUT_METRICS ? o->nmuscles * sizeof(o->m[0]) : 0);
	struct slot_hdr *h;

	/* A notice held back must stay ahead of every later output (the caller
	 * switches its muscle map exactly at SLOT_SWAPPED): without room for it,
	 * this output is dropped like any output that finds the ring full. */
	if ((e->nctl && post_notices(e) < 0) || !(h = emg_ring_reserve(e->outs))) {
		atomic_fetch_add_explicit(&e->outs_dropped, 1, memory_order_relaxed);
		return;
	}
	h->kind = SLOT_OUT;
	memcpy(h + 1, o, n);
	emg_ring_commit(e->outs);
}

static void dsp_flush(struct emg_engine *e, unsigned n, uint64_t first_seq, uint64_t t_ns)
{
	if (!n)
		return;
	/* Raw frames to the recorder first: a copy into its ring, never blocks. */
	if (e->dsp_rec)
		emg_recorder_write(e->dsp_rec, e->block, n, first_seq);
	emg_pipeline_process(e->dsp_pipe, e->block, n, first_seq, t_ns, on_out, e);
}

/* The DSP thread lets go of the recorder: after the notice it never touches it again. */
static void dsp_detach_done(struct emg_engine *e)
{
	e->dsp_rec = NULL;
	e->dsp_detaching = false;
	notice(e, SLOT_DETACHED);
}

static void dsp_drain_frames(struct emg_engine *e)
{
	const struct frame_hdr *h;
	unsigned n = 0;
	uint64_t first = 0, t_ns = 0;
	uint64_t ov = emg_ring_overruns(e->frames);

	/* Ring overruns (the DSP thread fell behind) count as dropped samples. */
	if (ov != e->dsp_seen_overruns) {
		emg_pipeline_add_dropped(e->dsp_pipe, ov - e->dsp_seen_overruns);
		e->dsp_seen_overruns = ov;
	}
	while ((h = emg_ring_peek(e->frames))) {
		/* The first frame captured after the stop was asked for ends the recording. */
		if (e->dsp_detaching && h->t_ns > e->dsp_rec_until) {
			dsp_flush(e, n, first, t_ns);
			n = 0;
			dsp_detach_done(e);
		}
		/* A gap in sequence numbers ends the block so sample indices stay exact. */
		if (n && (h->seq != first + n || n == DSP_BLOCK)) {
			dsp_flush(e, n, first, t_ns);
			n = 0;
		}
		if (h->lost)
			emg_pipeline_add_dropped(e->dsp_pipe, h->lost);
		if (n == 0)
			first = h->seq;
		memcpy(e->block + (size_t)n * e->info.channels, h + 1, e->info.channels * sizeof(float));
		t_ns = h->t_ns;
		n++;
		emg_ring_release(e->frames);
	}
	dsp_flush(e, n, first, t_ns);
}

static void dsp_commands(struct emg_engine *e)
{
	struct cmd c;

	while (emg_ring_pop(e->cmds, &c) == 0) {
		switch (c.type) {
		case CMD_CAL_REST:
			emg_pipeline_calibrate_rest(e->dsp_pipe, c.seconds);
			break;
		case CMD_CAL_MVC:
			emg_pipeline_calibrate_mvc(e->dsp_pipe, c.muscle, c.seconds);
			break;
		case CMD_SWAP:
			emg_pipeline_handover(c.pipe, e->dsp_pipe);
			e->dsp_pipe = c.pipe;
			/* Ahead of any output of the new pipeline. */
			notice(e, SLOT_SWAPPED);
			break;
		case CMD_REC_ATTACH:
			e->dsp_rec = c.rec;
			break;
		case CMD_REC_DETACH:
			/* Not at once: frames captured before the stop may still be in
			 * the ring (this thread lags under load), and a stop means "up
			 * to now", not "up to where the DSP thread happens to be". */
			e->dsp_detaching = true;
			e->dsp_rec_until = c.t_ns;
			break;
		}
	}
}

static void fault_stall(struct emg_engine *e, uint64_t started_ns)
{
	struct timespec ts;

	if (!e->stall_ms || emg_now_ns() - started_ns < e->stall_after_ns)
		return;
	ts.tv_sec = (time_t)(e->stall_ms / 1000);
	ts.tv_nsec = (long)(e->stall_ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	e->stall_ms = 0; /* once per engine */
}

static void *dsp_main(void *arg)
{
	struct emg_engine *e = arg;
	struct pollfd pfd[3] = {
		{ .fd = emg_ring_fd(e->frames), .events = POLLIN },
		{ .fd = emg_ring_fd(e->cmds), .events = POLLIN },
		{ .fd = e->wake_efd, .events = POLLIN },
	};
	uint64_t started_ns = emg_now_ns(), v;

	for (;;) {
		/* Blocking here is the point: the DSP thread sleeps until the
		 * device thread's push, a command or the caller's wake-up. */
		if (poll(pfd, 3, e->dsp_detaching ? 50 : -1) < 0 && errno != EINTR)
			break;
		if (pfd[2].revents && read(e->wake_efd, &v, sizeof(v)) < 0) {
			/* already cleared */
		}
		emg_ring_ack(e->cmds);
		dsp_commands(e);
		if (atomic_load(&e->stop)) {
			dsp_commands(e); /* every command sent before the stop */
			break;
		}
		if (e->nctl)
			post_notices(e);
		emg_ring_ack(e->frames);
		dsp_drain_frames(e);
		if (e->dsp_detaching && emg_now_ns() > e->dsp_rec_until + DETACH_WAIT_NS)
			dsp_detach_done(e);
		fault_stall(e, started_ns);
	}
	return NULL;
}

/* ---- caller's thread ---- */

static void deliver(struct emg_engine *e, uint32_t kind, const struct emg_out *o)
{
	struct emg_recorder *r;

	switch (kind) {
	case SLOT_OUT:
		if (e->sink.out)
			e->sink.out(e->sink.ud, o);
		break;
	case SLOT_SWAPPED:
		/* The DSP thread no longer touches the old pipeline. */
		emg_pipeline_free(e->pipe_old);
		e->pipe_old = NULL;
		if (e->sink.swapped)
			e->sink.swapped(e->sink.ud);
		break;
	case SLOT_DETACHED:
		r = e->rec_old;
		e->rec_old = NULL;
		if (r && e->sink.detached)
			e->sink.detached(e->sink.ud, r);
		break;
	}
}

static int drain_outs(struct emg_engine *e)
{
	const struct slot_hdr *h;
	int n = 0;
	uint64_t one = 1;

	emg_ring_ack(e->outs);
	while ((h = emg_ring_peek(e->outs))) {
		deliver(e, h->kind, (const struct emg_out *)(h + 1));
		emg_ring_release(e->outs);
		n++;
	}
	/* Pairs with post_notices(): it sets want_room, then reserves again. */
	atomic_thread_fence(memory_order_seq_cst);
	if (n && atomic_load(&e->want_room) && write(e->wake_efd, &one, sizeof(one)) < 0) {
		/* counter already non-zero: the DSP thread wakes anyway */
	}
	return n;
}

int emg_engine_dispatch(struct emg_engine *e, int timeout_ms)
{
	if (timeout_ms) {
		struct pollfd pfd = { .fd = emg_ring_fd(e->outs), .events = POLLIN };

		if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
			return -errno;
	}
	return drain_outs(e);
}

/*
 * Ring sizes.  An output slot holds the first pipeline's muscles (not
 * EMG_MUSCLES_MAX: 256 of them would make a 4 MB ring for 6 muscles); a swap
 * to more muscles is refused and needs a restart.  Both rings are capped in
 * bytes so 256 channels at 10 kHz stay a few MB.
 */
static size_t out_slot_size(unsigned muscles)
{
	return sizeof(struct slot_hdr) + sizeof(struct emg_out) + muscles * sizeof(struct emg_out_muscle);
}

/* Largest power of two <= bytes / slot, within [lo, hi] (both powers of two). */
static uint32_t ring_slots(size_t slot, size_t bytes, uint32_t lo, uint32_t hi)
{
	uint32_t n = hi;

	while (n > lo && (size_t)n * slot > bytes)
		n /= 2;
	return n;
}

static int make_rings(struct emg_engine *e)
{
	size_t out_size = out_slot_size(e->max_muscles);
	int r;

	e->frame_size = sizeof(struct frame_hdr) + e->info.channels * sizeof(float);
	e->block = malloc((size_t)DSP_BLOCK * e->info.channels * sizeof(float));
	if (!e->block)
		return -ENOMEM;
	if ((r = emg_ring_new(&e->frames, ring_slots(e->frame_size, FRAME_RING_BYTES, 256, FRAME_SLOTS),
			      e->frame_size, EMG_RING_EVENTFD)) < 0 ||
	    (r = emg_ring_new(&e->outs, ring_slots(out_size, OUT_RING_BYTES, OUT_SLOTS_MIN, OUT_SLOTS),
			      out_size, EMG_RING_EVENTFD)) < 0 ||
	    (r = emg_ring_new(&e->cmds, CMD_SLOTS, sizeof(struct cmd), EMG_RING_EVENTFD)) < 0)
		return r;
	e->state_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->wake_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->state_efd < 0 || e->wake_efd < 0)
		return -errno;
	return 0;
}

static void free_all(struct emg_engine *e)
{
	emg_device_close(e->dev);
	emg_pipeline_free(e->pipe);
	emg_pipeline_free(e->pipe_old);
	emg_ring_free(e->frames);
	emg_ring_free(e->outs);
	emg_ring_free(e->cmds);
	free(e->block);
	if (e->state_efd >= 0)
		close(e->state_efd);
	if (e->wake_efd >= 0)
		close(e->wake_efd);
	free(e);
}

static void stop_dsp(struct emg_engine *e)
{
	uint64_t one = 1;

	if (!e->dsp_running)
		return;
	atomic_store(&e->stop, 1);
	if (write(e->wake_efd, &one, sizeof(one)) < 0) {
		/* counter already non-zero: the DSP thread wakes anyway */
	}
	pthread_join(e->dsp, NULL);
	e->dsp_running = 0;
}

int emg_engine_start(struct emg_engine **out, const struct emg_engine_params *p)
{
	struct emg_engine *e = calloc(1, sizeof(*e));
	struct emg_device_callbacks cb = { .data = on_frames, .state = on_state, .room = on_room };
	int r;

	*out = NULL;
	if (!e) {
		emg_device_close(p->dev);
		emg_pipeline_free(p->pipe);
		return -ENOMEM;
	}
	e->state_efd = e->wake_efd = -1;
	e->dev = p->dev;
	e->pipe = e->dsp_pipe = p->pipe;
	e->sink = p->sink;
	e->stall_ms = p->stall_ms;
	e->stall_after_ns = p->stall_after_ns;
	/* before the threads start: a replay at realtime = no outruns any
	 * attach that comes after its first frame */
	e->rec = e->dsp_rec = p->rec;
	atomic_store(&e->room_rec, p->rec);
	emg_device_info(e->dev, &e->info);
	e->max_muscles = emg_muscles_count(emg_pipeline_muscles(e->pipe));
	atomic_store(&e->dev_state, EMG_DEVICE_STREAMING);
	if ((r = make_rings(e)) < 0 || (r = -pthread_create(&e->dsp, NULL, dsp_main, e)) < 0) {
		free_all(e);
		return r;
	}
	e->dsp_running = 1;
	pthread_setname_np(e->dsp, "emgd-dsp"); /* top -H, and tests/integration/noalloc.c */
	if (p->rt_priority > 0) {
		struct sched_param sp = { .sched_priority = p->rt_priority };
		e->rt_err = -pthread_setschedparam(e->dsp, SCHED_FIFO, &sp);
	}
	cb.ud = e;
	if ((r = emg_device_start(e->dev, &cb)) < 0) {
		stop_dsp(e);
		free_all(e);
		return r;
	}
	*out = e;
	return 0;
}

struct emg_recorder *emg_engine_stop(struct emg_engine *e)
{
	struct emg_recorder *attached;

	if (!e)
		return NULL;
	emg_device_stop(e->dev);
	stop_dsp(e);
	/* The DSP thread is gone: deliver what it produced last (events,
	 * calibrations), then the notices it still held back, in order. */
	drain_outs(e);
	for (unsigned i = 0; i < e->nctl; i++)
		deliver(e, e->ctl[i], NULL);
	e->nctl = 0;
	/* A detach it never read (it left on a poll() error): it no longer
	 * writes either.  free_all() frees both pipelines of an unread swap. */
	if (e->rec_old)
		deliver(e, SLOT_DETACHED, NULL);
	attached = e->rec;
	free_all(e);
	return attached;
}

int emg_engine_rt_error(const struct emg_engine *e)
{
	return e->rt_err;
}

const struct emg_device_info *emg_engine_device(const struct emg_engine *e)
{
	return &e->info;
}

int emg_engine_fd(const struct emg_engine *e)
{
	return emg_ring_fd(e->outs);
}

int emg_engine_state_fd(const struct emg_engine *e)
{
	return e->state_efd;
}

enum emg_device_state emg_engine_state(const struct emg_engine *e, const char **why)
{
	if (why)
		*why = atomic_load(&((struct emg_engine *)e)->dev_why);
	return (enum emg_device_state)atomic_load(&((struct emg_engine *)e)->dev_state);
}

uint64_t emg_engine_frames(const struct emg_engine *e)
{
	return atomic_load_explicit(&((struct emg_engine *)e)->frames_in, memory_order_relaxed);
}

uint64_t emg_engine_lost(const struct emg_engine *e)
{
	return emg_ring_overruns(e->frames) +
	       atomic_load_explicit(&((struct emg_engine *)e)->device_lost, memory_order_relaxed);
}

uint64_t emg_engine_outs_dropped(const struct emg_engine *e)
{
	return atomic_load_explicit(&((struct emg_engine *)e)->outs_dropped, memory_order_relaxed);
}

unsigned emg_engine_max_muscles(const struct emg_engine *e)
{
	return e->max_muscles;
}

int emg_engine_swapping(const struct emg_engine *e)
{
	return e->pipe_old != NULL;
}

static int send_cmd(struct emg_engine *e, const struct cmd *c)
{
	return emg_ring_push(e->cmds, c) < 0 ? -EAGAIN : 0;
}

int emg_engine_swap(struct emg_engine *e, struct emg_pipeline *pipe)
{
	struct cmd c = { .type = CMD_SWAP, .pipe = pipe };

	if (e->pipe_old)
		return -EBUSY;
	if (emg_muscles_count(emg_pipeline_muscles(pipe)) > e->max_muscles)
		return -E2BIG;
	if (send_cmd(e, &c) < 0)
		return -EAGAIN;
	e->pipe_old = e->pipe;
	e->pipe = pipe;
	return 0;
}

int emg_engine_calibrate_rest(struct emg_engine *e, double seconds)
{
	struct cmd c = { .type = CMD_CAL_REST, .seconds = seconds };

	return send_cmd(e, &c);
}

int emg_engine_calibrate_mvc(struct emg_engine *e, unsigned muscle, double seconds)
{
	struct cmd c = { .type = CMD_CAL_MVC, .muscle = muscle, .seconds = seconds };

	return send_cmd(e, &c);
}

int emg_engine_attach(struct emg_engine *e, struct emg_recorder *r)
{
	struct cmd c = { .type = CMD_REC_ATTACH, .rec = r };

	if (e->rec || e->rec_old)
		return -EBUSY;
	if (send_cmd(e, &c) < 0)
		return -EAGAIN;
	e->rec = r;
	atomic_store(&e->room_rec, r);
	return 0;
}

int emg_engine_detach(struct emg_engine *e)
{
	struct cmd c = { .type = CMD_REC_DETACH, .t_ns = emg_now_ns() };

	if (!e->rec)
		return -ENOENT;
	if (send_cmd(e, &c) < 0)
		return -EAGAIN;
	e->rec_old = e->rec;
	e->rec = NULL;
	/* once no room() call still reads it, the caller may close it */
	atomic_store(&e->room_rec, NULL);
	while (atomic_load(&e->room_readers))
		sched_yield();
	return 0;
}
