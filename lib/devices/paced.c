/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "paced.h"

/* Later than this behind schedule: re-anchor instead of catching up. */
#define RESYNC_NS 100000000ull
/* realtime = no: how often a producer that found the consumer full looks again. */
#define ROOM_POLL_NS 1000000ull

bool emg_paced_stopping(struct emg_paced_dev *d)
{
	return atomic_load_explicit(&d->stop, memory_order_acquire);
}

static void sleep_until(uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000u),
		.tv_nsec = (long)(deadline % 1000000000u),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void *paced_thread(void *arg)
{
	struct emg_paced_dev *d = arg;
	const double tick_ns = d->rate >= 1000.0 ? 1e6 : 1e9 / d->rate;
	const double per_tick = d->rate >= 1000.0 ? d->rate / 1000.0 : 1.0;
	uint64_t k = 0, done = 0;
	uint64_t t0 = emg_now_ns();

	if (d->cb.state)
		d->cb.state(d->cb.ud, EMG_DEVICE_STREAMING, d->running_why);
	while (!emg_paced_stopping(d)) {
		uint64_t due = (uint64_t)floor((double)(k + 1) * per_tick + 1e-9);

		if (d->realtime) {
			uint64_t deadline = t0 + (uint64_t)((double)(k + 1) * tick_ns);
			uint64_t now = emg_now_ns();

			if (now > deadline + RESYNC_NS)
				t0 += now - deadline; /* re-anchor: no catch-up burst */
			else if (now < deadline)
				sleep_until(deadline);
		} else if (d->cb.room) {
			/* as fast as the consumer goes, not faster: a full ring
			 * drops frames, and a replay is there to be read whole */
			while (d->cb.room(d->cb.ud) < due - done && !emg_paced_stopping(d))
				sleep_until(emg_now_ns() + ROOM_POLL_NS);
		}
		if (d->produce(d, (unsigned)(due - done)) < 0)
			break;
		done = due;
		k++;
	}
	return NULL;
}

int emg_paced_start(struct emg_device *dev, const struct emg_device_callbacks *cb)
{
	struct emg_paced_dev *d = (struct emg_paced_dev *)dev;
	int r;

	if (!cb || !cb->data)
		return -EINVAL;
	if (d->running)
		return -EBUSY;
	d->cb = *cb;
	atomic_store(&d->stop, false);
	r = pthread_create(&d->thread, NULL, paced_thread, d);
	if (r)
		return -r;
	pthread_setname_np(d->thread, "emgd-acq");
	d->running = true;
	return 0;
}

void emg_paced_stop(struct emg_device *dev)
{
	struct emg_paced_dev *d = (struct emg_paced_dev *)dev;

	if (!d->running)
		return;
	atomic_store_explicit(&d->stop, true, memory_order_release);
	pthread_join(d->thread, NULL);
	d->running = false;
}
