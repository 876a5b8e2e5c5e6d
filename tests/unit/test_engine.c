/* SPDX-License-Identifier: MIT */
/*
 * Tests of the engine's hand-overs, on a test device whose thread delivers a
 * known number of frames in real time (blocks of 10, paced on
 * CLOCK_MONOTONIC) once the test opens its gate:
 *
 *   - pipeline swaps back to back while frames stream: every metrics tick
 *     follows the previous one (tick + 1, sample + fs/publish_rate), no
 *     frame lost, no output dropped, every swap acknowledged by swapped();
 *   - swaps while recording: the recorder holds every frame delivered;
 *   - device restart: stop with a recording attached returns it, a new
 *     engine continues it, and the file holds both devices' frames;
 *   - a swap notice without room in the outputs ring: the DSP thread waits
 *     in poll() (no spinning: process CPU time stays low), and the notice
 *     arrives, ahead of the new pipeline's outputs, once the ring drains;
 *   - stop with a swap and a detach still in flight delivers both;
 *   - a detach while the DSP thread lags still records every frame captured
 *     before it (a quick start/stop under load is not an empty file);
 *   - a device that delivers as fast as the engine's room() allows, as a
 *     replay at realtime = no does, while recording: the file holds every
 *     frame (room() waits for the recorder too).
 *
 * In the `threads` suite: tests/run runs it under ThreadSanitizer.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>

#include <edflib.h>

#include "device.h"
#include "engine.h"
#include "muscles.h"
#include "pipeline.h"
#include "record.h"
#include "testutil.h"

#define FS 2000.0
#define NCH 8
#define BLOCK 10

/* ---- the test device ---- */

struct tdev {
	struct emg_device base;
	struct emg_device_callbacks cb;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t allowed;  /* frames the gate lets through so far (under lock) */
	int stopping;      /* under lock */
	int running;
	int fast;          /* no pacing: as fast as cb.room() allows (a replay at realtime = no) */
	uint64_t seq;      /* next frame (device thread) */
	_Atomic uint64_t sent;
};

static void tdev_info(struct emg_device *d, struct emg_device_info *info)
{
	(void)d;
	snprintf(info->driver, sizeof(info->driver), "test");
	snprintf(info->model, sizeof(info->model), "engine test device");
	info->rate = FS;
	info->channels = NCH;
	info->phys_min_uv = -10000;
	info->phys_max_uv = 10000;
}

/* Waits at the gate, then delivers up to `allowed` frames paced at FS. */
static void *tdev_main(void *arg)
{
	struct tdev *t = arg;
	float frames[BLOCK * NCH];
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		pthread_mutex_lock(&t->lock);
		while (!t->stopping && t->seq >= t->allowed)
			pthread_cond_wait(&t->cond, &t->lock);
		if (t->stopping) {
			pthread_mutex_unlock(&t->lock);
			return NULL;
		}
		pthread_mutex_unlock(&t->lock);
		/* as lib/devices/paced.c does at realtime = no: poll for room */
		while (t->fast && t->cb.room(t->cb.ud) < BLOCK)
			poll(NULL, 0, 1);
		for (unsigned i = 0; i < BLOCK * NCH; i++)
			frames[i] = (float)(((t->seq * NCH + i) * 2654435761u) % 2001) / 100.0f - 10.0f;
		t->cb.data(t->cb.ud, frames, BLOCK, t->seq, 0, emg_now_ns());
		t->seq += BLOCK;
		atomic_fetch_add(&t->sent, BLOCK);
		if (t->fast)
			continue;
		next.tv_nsec += (long)(BLOCK * 1e9 / FS);
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		/* Behind (a loaded or sanitized run): catch up without bursts of lateness. */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec + 1)
			next = now;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}

static int tdev_start(struct emg_device *d, const struct emg_device_callbacks *cb)
{
	struct tdev *t = (struct tdev *)d;
	int r;

	t->cb = *cb;
	r = pthread_create(&t->thread, NULL, tdev_main, t);
	if (r)
		return -r;
	t->running = 1;
	return 0;
}

static void tdev_stop(struct emg_device *d)
{
	struct tdev *t = (struct tdev *)d;

	if (!t->running)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = 1;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	t->running = 0;
}

/* The engine closes the device; the test keeps the struct to read `sent`. */
static int tdev_closed;

static void tdev_close(struct emg_device *d)
{
	(void)d;
	tdev_closed++;
}

static const struct emg_device_ops tdev_ops = {
	.name = "test",
	.info = tdev_info,
	.start = tdev_start,
	.stop = tdev_stop,
	.close = tdev_close,
};

static void tdev_init(struct tdev *t)
{
	memset(t, 0, sizeof(*t));
	t->base.ops = &tdev_ops;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
}

static void tdev_destroy(struct tdev *t)
{
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}

/* Let n more frames through. */
static void tdev_allow(struct tdev *t, uint64_t n)
{
	pthread_mutex_lock(&t->lock);
	t->allowed += n;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* ---- the sink: checks the output stream as it arrives ---- */

struct sink {
	struct emg_engine *e;
	uint64_t step;         /* samples per tick of the current pipeline */
	uint64_t next_step;    /* ... of the pipeline being swapped in */
	uint64_t ticks;        /* metrics outputs seen */
	uint64_t last_tick, last_sample;
	uint64_t bad_tick, bad_sample, bad_dropped; /* violations */
	unsigned swapped;
	struct emg_recorder *detached;
	unsigned ndetached;
};

static void sink_out(void *ud, const struct emg_out *o)
{
	struct sink *s = ud;

	if (o->type != EMG_OUT_METRICS)
		return;
	if (s->ticks) {
		s->bad_tick += o->tick != s->last_tick + 1;
		s->bad_sample += o->sample != s->last_sample + s->step;
	}
	s->bad_dropped += o->dropped != 0;
	s->last_tick = o->tick;
	s->last_sample = o->sample;
	s->ticks++;
}

static void sink_swapped(void *ud)
{
	struct sink *s = ud;

	s->swapped++;
	s->step = s->next_step;
}

static void sink_detached(void *ud, struct emg_recorder *r)
{
	struct sink *s = ud;

	s->detached = r;
	s->ndetached++;
}

static struct emg_muscles *muscles;
static char tmpdir[64];

static void setup(void)
{
	ck_assert_int_eq(emg_muscles_new_default(&muscles), 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/emg-engine-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];

	emg_muscles_free(muscles);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd)) {
	}
}

static struct emg_pipeline *new_pipe(double rms_ms, double publish)
{
	struct emg_pipeline_config pc;
	struct emg_device_info info = { 0 };
	struct emg_pipeline *p;

	emg_pipeline_config_default(&pc);
	pc.rms_window_ms = rms_ms;
	pc.publish_rate = publish;
	tdev_info(NULL, &info);
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &info, muscles, NULL), 0);
	return p;
}

/* An engine on t delivering to s; stall_ms: its DSP thread sleeps that long at its first wake-up. */
static struct emg_engine *start_stalled(struct tdev *t, struct sink *s, double publish,
					uint64_t stall_ms)
{
	struct emg_engine_params p = {
		.dev = &t->base,
		.pipe = new_pipe(125, publish),
		.sink = { .ud = s, .out = sink_out, .swapped = sink_swapped, .detached = sink_detached },
		.stall_ms = stall_ms,
	};
	struct emg_engine *e;

	s->step = s->next_step = (uint64_t)(FS / publish);
	ck_assert_int_eq(emg_engine_start(&e, &p), 0);
	s->e = e;
	return e;
}

static struct emg_engine *start(struct tdev *t, struct sink *s, double publish)
{
	return start_stalled(t, s, publish, 0);
}

/* Deliver outputs until the tick closing at sample `last` arrived (20 s at most). */
static void dispatch_until(struct emg_engine *e, struct sink *s, uint64_t last)
{
	uint64_t deadline = emg_now_ns() + 20000000000ull;

	while (!(s->ticks && s->last_sample >= last) && emg_now_ns() < deadline)
		ck_assert_int_ge(emg_engine_dispatch(e, 200), 0);
	ck_assert_msg(s->ticks && s->last_sample == last, "last tick at %llu, expected %llu",
		      (unsigned long long)s->last_sample, (unsigned long long)last);
}

static struct emg_recorder *open_rec(const char *name)
{
	struct emg_record_params rp = { 0 };
	struct emg_device_info info = { 0 };
	struct emg_recorder *r;
	char path[128];

	tdev_info(NULL, &info);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	rp.path = path;
	rp.dev = &info;
	rp.muscles = muscles;
	ck_assert_int_eq(emg_recorder_open(&r, &rp), 0);
	return r;
}

/* Swap as often as the engine takes it while `frames` frames stream; returns the swaps made. */
static unsigned swap_while_streaming(struct tdev *t, struct sink *s, uint64_t frames)
{
	unsigned swaps = 0;
	uint64_t last = frames - 1;
	uint64_t deadline = emg_now_ns() + 20000000000ull;

	tdev_allow(t, frames);
	while (!(s->ticks && s->last_sample >= last) && emg_now_ns() < deadline) {
		struct emg_pipeline *np = new_pipe(swaps % 2 ? 125 : 100, 50);
		int r;

		while ((r = emg_engine_swap(s->e, np)) == -EBUSY)
			ck_assert_int_ge(emg_engine_dispatch(s->e, 100), 0);
		ck_assert_int_eq(r, 0);
		swaps++;
		ck_assert_int_ge(emg_engine_dispatch(s->e, 5), 0);
	}
	dispatch_until(s->e, s, last);
	/* The last swap's notice may still be on its way. */
	while (emg_engine_swapping(s->e) && emg_now_ns() < deadline)
		ck_assert_int_ge(emg_engine_dispatch(s->e, 100), 0);
	return swaps;
}

static void assert_clean_stream(struct sink *s, struct emg_engine *e)
{
	ck_assert_uint_eq(s->bad_tick, 0);
	ck_assert_uint_eq(s->bad_sample, 0);
	ck_assert_uint_eq(s->bad_dropped, 0);
	ck_assert_uint_eq(emg_engine_lost(e), 0);
	ck_assert_uint_eq(emg_engine_outs_dropped(e), 0);
}

START_TEST(test_swap_under_load)
{
	struct tdev t;
	struct sink s = { 0 };
	struct emg_engine *e;
	unsigned swaps;

	tdev_init(&t);
	e = start(&t, &s, 50);
	swaps = swap_while_streaming(&t, &s, (uint64_t)(3 * FS));
	ck_assert_uint_ge(swaps, 20);
	ck_assert_uint_eq(s.swapped, swaps);
	ck_assert_uint_eq(s.ticks, 3 * 50);
	ck_assert_uint_eq(s.last_tick, 3 * 50 - 1);
	assert_clean_stream(&s, e);
	ck_assert_uint_eq(emg_engine_frames(e), 3 * FS);
	ck_assert_ptr_null(emg_engine_stop(e));
	ck_assert_int_eq(tdev_closed, 1);
	tdev_destroy(&t);
}
END_TEST

/* Data records (100 ms, 200 frames) in a closed recording. */
static long long records_in(const char *name)
{
	struct edf_hdr_struct h;
	char path[128];
	long long n;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ck_assert_int_eq(edfopen_file_readonly(path, &h, EDFLIB_DO_NOT_READ_ANNOTATIONS), 0);
	n = h.datarecords_in_file;
	edfclose_file(h.handle);
	return n;
}

/* Detach r from e, wait until the DSP thread let go, stop e; r wrote every frame, and is closed. */
static void detach_and_close(struct emg_engine *e, struct sink *s, struct emg_recorder *r)
{
	struct emg_recorder_stats st;
	uint64_t deadline = emg_now_ns() + 20000000000ull;

	ck_assert_int_eq(emg_engine_detach(e), 0);
	ck_assert_int_eq(emg_engine_detach(e), -ENOENT);
	while (!s->ndetached && emg_now_ns() < deadline)
		ck_assert_int_ge(emg_engine_dispatch(e, 100), 0);
	ck_assert_ptr_eq(s->detached, r);
	assert_clean_stream(s, e);
	ck_assert_ptr_null(emg_engine_stop(e));
	/* The DSP thread let go: closing now races with nothing. */
	emg_recorder_stats(r, &st);
	ck_assert_msg(st.frames_dropped == 0, "%llu frames not written",
		      (unsigned long long)st.frames_dropped);
	ck_assert_int_eq(emg_recorder_close(r), 0);
}

START_TEST(test_swap_while_recording)
{
	struct tdev t;
	struct sink s = { 0 };
	struct emg_engine *e;
	struct emg_recorder *r = open_rec("swap.bdf");
	unsigned swaps;

	tdev_init(&t);
	e = start(&t, &s, 50);
	/* Attached before the first frame: the file must hold every one. */
	ck_assert_int_eq(emg_engine_attach(e, r), 0);
	ck_assert_int_eq(emg_engine_attach(e, r), -EBUSY);
	swaps = swap_while_streaming(&t, &s, (uint64_t)(2 * FS));
	ck_assert_uint_ge(swaps, 10);
	ck_assert_uint_eq(s.swapped, swaps);
	detach_and_close(e, &s, r);
	ck_assert_int_eq(records_in("swap.bdf"), 2 * 10); /* 4000 frames, not one lost or padded */
	tdev_destroy(&t);
}
END_TEST

START_TEST(test_device_restart)
{
	struct tdev t1, t2;
	struct sink s1 = { 0 }, s2 = { 0 };
	struct emg_engine *e;
	struct emg_recorder *r = open_rec("restart.bdf"), *back;
	struct emg_recorder_stats st;
	uint64_t deadline = emg_now_ns() + 20000000000ull;

	tdev_init(&t1);
	tdev_init(&t2);
	e = start(&t1, &s1, 50);
	ck_assert_int_eq(emg_engine_attach(e, r), 0);
	tdev_allow(&t1, (uint64_t)FS);
	dispatch_until(e, &s1, (uint64_t)FS - 1);
	assert_clean_stream(&s1, e);
	/* Stop with the recording attached: nobody writes to it any more, it comes back. */
	back = emg_engine_stop(e);
	ck_assert_ptr_eq(back, r);
	ck_assert_uint_eq(s1.ndetached, 0);

	e = start(&t2, &s2, 25);
	ck_assert_int_eq(emg_engine_attach(e, r), 0);
	tdev_allow(&t2, (uint64_t)FS);
	dispatch_until(e, &s2, (uint64_t)FS - 1);
	ck_assert_uint_eq(s2.ticks, 25);
	assert_clean_stream(&s2, e);
	ck_assert_int_eq(emg_engine_detach(e), 0);
	while (!s2.ndetached && emg_now_ns() < deadline)
		ck_assert_int_ge(emg_engine_dispatch(e, 100), 0);
	ck_assert_ptr_eq(s2.detached, r);
	ck_assert_ptr_null(emg_engine_stop(e));
	emg_recorder_stats(r, &st);
	ck_assert_uint_eq(st.frames_dropped, 0);
	ck_assert_int_eq(emg_recorder_close(r), 0);
	/* Both devices' frames: 2 x 2000, each a whole number of records. */
	ck_assert_int_ge(records_in("restart.bdf"), 2 * 10);
	tdev_destroy(&t1);
	tdev_destroy(&t2);
}
END_TEST

/*
 * A replay at realtime = no, recorded: the device delivers as fast as the
 * engine's room() allows.  Room in the frame ring alone let it outrun the
 * recorder (a 550 s replay kept 61 s); room() now waits for the recorder
 * too, and the file holds every frame: 30 s of 8 channels, 300 records.
 */
START_TEST(test_fast_device_records_every_frame)
{
	struct tdev t;
	struct sink s = { 0 };
	struct emg_engine *e;
	struct emg_recorder *r = open_rec("fast.bdf");
	const uint64_t frames = (uint64_t)(30 * FS);

	tdev_init(&t);
	t.fast = 1;
	e = start(&t, &s, 50);
	ck_assert_int_eq(emg_engine_attach(e, r), 0);
	tdev_allow(&t, frames);
	dispatch_until(e, &s, frames - 1);
	detach_and_close(e, &s, r);
	ck_assert_int_eq(records_in("fast.bdf"), (long long)(frames / (FS / 10)));
	tdev_destroy(&t);
}
END_TEST

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(test_notice_waits_without_spinning)
{
	struct tdev t;
	struct sink s = { 0 };
	struct emg_engine *e;
	uint64_t deadline = emg_now_ns() + 20000000000ull;
	struct timespec pause = { 0, 300000000L };
	double cpu0, wall0, cpu, wall;

	tdev_init(&t);
	/* One output per sample, nobody draining: 2000 outputs fill the ring. */
	e = start(&t, &s, FS);
	tdev_allow(&t, (uint64_t)FS);
	while (emg_engine_outs_dropped(e) == 0 && emg_now_ns() < deadline)
		nanosleep(&(struct timespec){ 0, 1000000L }, NULL); /* no signal for "the ring is full" */
	ck_assert_uint_gt(emg_engine_outs_dropped(e), 0);
	s.next_step = 40; /* the new pipeline publishes at 50 Hz */
	ck_assert_int_eq(emg_engine_swap(e, new_pipe(125, 50)), 0);
	{
		/* refused while one swap is pending: the caller keeps (and frees) it */
		struct emg_pipeline *extra = new_pipe(125, 50);
		ck_assert_int_eq(emg_engine_swap(e, extra), -EBUSY);
		emg_pipeline_free(extra);
	}

	/* The notice has no room: the DSP thread must sleep, not spin. */
	cpu0 = cpu_s();
	wall0 = emg_now_ns() / 1e9;
	nanosleep(&pause, NULL);
	cpu = cpu_s() - cpu0;
	wall = emg_now_ns() / 1e9 - wall0;
	ck_assert_msg(cpu < 0.15 * wall, "%.3f s CPU in %.3f s while the notice waited", cpu, wall);

	/* Draining makes room; the DSP thread posts the notice, then the new pipeline's ticks. */
	tdev_allow(&t, (uint64_t)FS);
	while (!s.swapped && emg_now_ns() < deadline)
		ck_assert_int_ge(emg_engine_dispatch(e, 100), 0);
	ck_assert_uint_eq(s.swapped, 1);
	ck_assert(!emg_engine_swapping(e));
	s.bad_tick = s.bad_sample = 0;
	s.ticks = 0; /* from here on: the new pipeline's spacing */
	/* Where the new grid starts depends on when the swap came: up to its last whole tick. */
	while (!(s.ticks && s.last_sample + 40 > 2 * (uint64_t)FS - 1) && emg_now_ns() < deadline)
		ck_assert_int_ge(emg_engine_dispatch(e, 200), 0);
	ck_assert_uint_gt(s.last_sample + 40, 2 * (uint64_t)FS - 1);
	ck_assert_uint_gt(s.ticks, 10);
	ck_assert_uint_eq(s.bad_tick, 0);
	ck_assert_uint_eq(s.bad_sample, 0);
	ck_assert_uint_eq(emg_engine_lost(e), 0);
	emg_engine_stop(e);
	tdev_destroy(&t);
}
END_TEST

START_TEST(test_stop_delivers_what_is_in_flight)
{
	struct tdev t;
	struct sink s = { 0 };
	struct emg_engine *e;
	struct emg_recorder *r = open_rec("inflight.bdf");

	tdev_init(&t);
	e = start(&t, &s, 50);
	ck_assert_int_eq(emg_engine_attach(e, r), 0);
	tdev_allow(&t, (uint64_t)FS / 2);
	dispatch_until(e, &s, (uint64_t)FS / 2 - 1);
	ck_assert_int_eq(emg_engine_swap(e, new_pipe(100, 50)), 0);
	ck_assert_int_eq(emg_engine_detach(e), 0);
	/* No dispatch: stop itself must deliver both (and free the old pipeline). */
	ck_assert_ptr_null(emg_engine_stop(e));
	ck_assert_uint_eq(s.swapped, 1);
	ck_assert_uint_eq(s.ndetached, 1);
	ck_assert_ptr_eq(s.detached, r);
	ck_assert_int_eq(emg_recorder_close(r), 0);
	tdev_destroy(&t);
}
END_TEST

START_TEST(test_detach_records_up_to_the_stop)
{
	struct tdev t;
	struct sink s = { 0 };
	struct emg_engine *e;
	struct emg_recorder *r = open_rec("lag.bdf");
	struct emg_recorder_stats st;
	uint64_t deadline = emg_now_ns() + 20000000000ull;

	tdev_init(&t);
	/* the DSP thread sleeps 1.5 s at its first wake-up: the attach */
	e = start_stalled(&t, &s, 50, 1500);
	ck_assert_int_eq(emg_engine_attach(e, r), 0);
	/* 500 frames (0.25 s) reach the ring while the DSP thread sleeps ... */
	tdev_allow(&t, (uint64_t)FS / 4);
	while (atomic_load(&t.sent) < (uint64_t)FS / 4 && emg_now_ns() < deadline)
		nanosleep(&(struct timespec){ 0, 1000000L }, NULL); /* the test device has no signal for it */
	ck_assert_uint_eq(atomic_load(&t.sent), (uint64_t)FS / 4);
	/* ... and the stop comes before it wakes: they were captured before it. */
	ck_assert_int_eq(emg_engine_detach(e), 0);
	tdev_allow(&t, (uint64_t)FS / 4); /* frames after the stop: not recorded */
	while (!s.ndetached && emg_now_ns() < deadline)
		ck_assert_int_ge(emg_engine_dispatch(e, 100), 0);
	ck_assert_ptr_eq(s.detached, r);
	ck_assert_ptr_null(emg_engine_stop(e));
	emg_recorder_stats(r, &st);
	ck_assert_uint_eq(st.frames_dropped, 0);
	ck_assert_int_eq(emg_recorder_close(r), 0);
	/* 500 frames: two whole records of 200 and the last, zero-padded one. */
	ck_assert_int_eq(records_in("lag.bdf"), 3);
	tdev_destroy(&t);
}
END_TEST

START_TEST(test_refusals)
{
	struct tdev t;
	struct sink s = { 0 };
	struct emg_engine *e;
	struct emg_muscles *more;
	struct emg_pipeline_config pc;
	struct emg_device_info info = { 0 };
	struct emg_pipeline *p;

	tdev_init(&t);
	e = start(&t, &s, 50);
	ck_assert_uint_eq(emg_engine_max_muscles(e), emg_muscles_count(muscles));
	ck_assert_int_eq(emg_engine_detach(e), -ENOENT);
	/* A pipeline with more muscles than the output slots hold needs a restart. */
	ck_assert_int_eq(emg_muscles_dup(muscles, &more), 0);
	ck_assert_int_eq(emg_muscles_add(more, "extra", 7, EMG_SIDE_NONE, NULL), 0);
	emg_pipeline_config_default(&pc);
	tdev_info(NULL, &info);
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &info, more, NULL), 0);
	ck_assert_int_eq(emg_engine_swap(e, p), -E2BIG);
	emg_pipeline_free(p);
	emg_muscles_free(more);
	ck_assert_int_eq(emg_engine_calibrate_rest(e, 1), 0);
	emg_engine_stop(e);
	tdev_destroy(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("engine");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_swap_under_load);
	tcase_add_test(tc, test_swap_while_recording);
	tcase_add_test(tc, test_device_restart);
	tcase_add_test(tc, test_notice_waits_without_spinning);
	tcase_add_test(tc, test_stop_delivers_what_is_in_flight);
	tcase_add_test(tc, test_detach_records_up_to_the_stop);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_fast_device_records_every_frame);
	suite_add_tcase(s, tc);
	return test_run(s);
}
