/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ring.h"

#define CACHELINE 64

/*
 * Producer and consumer state live on separate cache lines so the two
 * threads only share a line when one of them has to refresh its cached copy
 * of the other's index, i.e. about once per lap when the ring is half full,
 * rather than on every slot.
 */
struct emg_ring {
	alignas(CACHELINE) _Atomic uint32_t w; /* next slot to write; stored by the producer */
	uint32_t r_cache;                      /* producer's last view of r */
	_Atomic uint64_t overruns;             /* written by the producer only */

	alignas(CACHELINE) _Atomic uint32_t r; /* next slot to read; stored by the consumer */
	uint32_t w_cache;                      /* consumer's last view of w */

	alignas(CACHELINE) uint32_t size;      /* read-only after creation */
	uint32_t mask;
	size_t slot_size;
	size_t stride;                         /* slot_size padded (see slot_stride()) */
	int efd;
	unsigned char *buf;
};

static inline unsigned char *slot_at(const struct emg_ring *r, uint32_t idx)
{
	return r->buf + (size_t)(idx & r->mask) * r->stride;
}

/*
 * Slots of 48 bytes or more start on their own cache line: the producer
 * writing slot k + 1 then never shares a line with the consumer reading
 * slot k (a 56-byte frame would otherwise straddle two lines half the time,
 * each one fought over by both threads).  Smaller slots are packed 16-byte
 * aligned.
 */
static size_t slot_stride(size_t slot_size)
{
	size_t a = slot_size >= 48 ? CACHELINE : 16;

	return (slot_size + a - 1) / a * a;
}

int emg_ring_new_at(struct emg_ring **out, uint32_t slots, size_t slot_size, unsigned flags,
		    uint32_t start)
{
	struct emg_ring *r;
	size_t bytes;

	if (slots < 2 || (slots & (slots - 1)) || slots > (1u << 30) || slot_size == 0)
		return -EINVAL;
	if (slot_size > SIZE_MAX / 2 / slots)
		return -EOVERFLOW;
	r = aligned_alloc(CACHELINE, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	bytes = (slots * slot_stride(slot_size) + CACHELINE - 1) / CACHELINE * CACHELINE;
	r->buf = aligned_alloc(CACHELINE, bytes);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	/* Touch every page now: first-touch page faults would otherwise land on
	 * the acquisition thread the first time round the ring. */
	memset(r->buf, 0, bytes);
	r->size = slots;
	r->mask = slots - 1;
	r->slot_size = slot_size;
	r->stride = slot_stride(slot_size);
	r->efd = -1;
	if (flags & EMG_RING_EVENTFD) {
		r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (r->efd < 0) {
			int e = -errno;
			free(r->buf);
			free(r);
			return e;
		}
	}
	atomic_init(&r->w, start);
	atomic_init(&r->r, start);
	r->r_cache = start;
	r->w_cache = start;
	atomic_init(&r->overruns, 0);
	*out = r;
	return 0;
}

int emg_ring_new(struct emg_ring **out, uint32_t slots, size_t slot_size, unsigned flags)
{
	return emg_ring_new_at(out, slots, slot_size, flags, 0);
}

void emg_ring_free(struct emg_ring *r)
{
	if (!r)
		return;
	if (r->efd >= 0)
		close(r->efd);
	free(r->buf);
	free(r);
}

size_t emg_ring_slot_size(const struct emg_ring *r)
{
	return r->slot_size;
}

uint32_t emg_ring_capacity(const struct emg_ring *r)
{
	return r->size;
}

/* Free slots as the producer sees them, refreshing its view of r only when
 * the cached one says there is not enough room. */
static inline uint32_t producer_space(struct emg_ring *r, uint32_t w, uint32_t want)
{
	uint32_t space = r->size - (w - r->r_cache);

	if (space < want) {
		r->r_cache = atomic_load_explicit(&r->r, memory_order_acquire);
		space = r->size - (w - r->r_cache);
	}
	return space;
}

/*
 * Publish slots up to new_w and wake the consumer if the ring was empty.
 *
 * With an eventfd this is a store-then-load on each side (Dekker): the
 * producer stores w and loads r, the consumer updates r and loads w before
 * it sleeps.  Making those four operations seq_cst guarantees that at least
 * one side sees the other's update, so a wake-up is never lost; with only
 * acquire/release both could read stale values.  seq_cst operations rather
 * than fences because ThreadSanitizer models the former.  Only paid when an
 * eventfd is in use, and only on the producer's publish and the consumer's
 * empty check.
 */
static inline void producer_publish(struct emg_ring *r, uint32_t old_w, uint32_t new_w)
{
	if (r->efd < 0) {
		atomic_store_explicit(&r->w, new_w, memory_order_release);
	} else {
		atomic_store_explicit(&r->w, new_w, memory_order_seq_cst);
		if (atomic_load_explicit(&r->r, memory_order_seq_cst) == old_w) {
			uint64_t one = 1;
			/* EAGAIN means the counter is already non-zero: the consumer will wake. */
			ssize_t n = write(r->efd, &one, sizeof(one));
			(void)n;
		}
	}
}

int emg_ring_push(struct emg_ring *r, const void *slot)
{
	uint32_t w = atomic_load_explicit(&r->w, memory_order_relaxed);

	if (producer_space(r, w, 1) == 0) {
		atomic_fetch_add_explicit(&r->overruns, 1, memory_order_relaxed);
		return -ENOBUFS;
	}
	memcpy(slot_at(r, w), slot, r->slot_size);
	producer_publish(r, w, w + 1);
	return 0;
}

uint32_t emg_ring_push_n(struct emg_ring *r, const void *slots, uint32_t n)
{
	uint32_t w = atomic_load_explicit(&r->w, memory_order_relaxed);
	uint32_t fit = producer_space(r, w, n);
	const unsigned char *src = slots;

	if (fit > n)
		fit = n;
	if (fit < n)
		atomic_fetch_add_explicit(&r->overruns, n - fit, memory_order_relaxed);
	if (fit == 0)
		return 0;
	if (r->stride == r->slot_size) {
		/* At most two copies: up to the end of the buffer, then from its start. */
		uint32_t first = r->size - (w & r->mask);
		if (first > fit)
			first = fit;
		memcpy(slot_at(r, w), src, (size_t)first * r->slot_size);
		if (fit > first)
			memcpy(r->buf, src + (size_t)first * r->slot_size,
			       (size_t)(fit - first) * r->slot_size);
	} else {
		for (uint32_t i = 0; i < fit; i++)
			memcpy(slot_at(r, w + i), src + (size_t)i * r->slot_size, r->slot_size);
	}
	producer_publish(r, w, w + fit);
	return fit;
}

void *emg_ring_reserve(struct emg_ring *r)
{
	uint32_t w = atomic_load_explicit(&r->w, memory_order_relaxed);

	if (producer_space(r, w, 1) == 0) {
		atomic_fetch_add_explicit(&r->overruns, 1, memory_order_relaxed);
		return NULL;
	}
	return slot_at(r, w);
}

void emg_ring_commit(struct emg_ring *r)
{
	uint32_t w = atomic_load_explicit(&r->w, memory_order_relaxed);

	producer_publish(r, w, w + 1);
}

/* Readable slots as the consumer sees them; see producer_publish() for the fence. */
static inline uint32_t consumer_avail(struct emg_ring *r, uint32_t rd)
{
	if (r->w_cache != rd)
		return r->w_cache - rd;
	r->w_cache = atomic_load_explicit(&r->w, memory_order_acquire);
	if (r->w_cache == rd && r->efd >= 0) {
		/* About to report "empty" (and maybe sleep): the RMW puts our r
		 * in the seq_cst order before the reload of w. */
		atomic_fetch_add_explicit(&r->r, 0, memory_order_seq_cst);
		r->w_cache = atomic_load_explicit(&r->w, memory_order_seq_cst);
	}
	return r->w_cache - rd;
}

int emg_ring_pop(struct emg_ring *r, void *slot)
{
	uint32_t rd = atomic_load_explicit(&r->r, memory_order_relaxed);

	if (consumer_avail(r, rd) == 0)
		return -EAGAIN;
	memcpy(slot, slot_at(r, rd), r->slot_size);
	atomic_store_explicit(&r->r, rd + 1, memory_order_release);
	return 0;
}

const void *emg_ring_peek(struct emg_ring *r)
{
	uint32_t rd = atomic_load_explicit(&r->r, memory_order_relaxed);

	if (consumer_avail(r, rd) == 0)
		return NULL;
	return slot_at(r, rd);
}

void emg_ring_release(struct emg_ring *r)
{
	uint32_t rd = atomic_load_explicit(&r->r, memory_order_relaxed);

	atomic_store_explicit(&r->r, rd + 1, memory_order_release);
}

uint32_t emg_ring_count(const struct emg_ring *r)
{
	return atomic_load_explicit(&r->w, memory_order_acquire) -
	       atomic_load_explicit(&r->r, memory_order_acquire);
}

uint64_t emg_ring_overruns(const struct emg_ring *r)
{
	return atomic_load_explicit(&r->overruns, memory_order_relaxed);
}

int emg_ring_fd(const struct emg_ring *r)
{
	return r->efd;
}

void emg_ring_ack(struct emg_ring *r)
{
	uint64_t v;

	if (r->efd >= 0) {
		ssize_t n = read(r->efd, &v, sizeof(v));
		(void)n;
	}
}
