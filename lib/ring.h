/* SPDX-License-Identifier: MIT */
/*
 * emg_ring: single-producer single-consumer ring of fixed-size slots.
 *
 * The producer (an acquisition or DSP thread) never blocks, never allocates
 * and never overwrites: when the ring is full the newest slot is dropped and
 * counted as an overrun.  The consumer may be woken through an eventfd that
 * the producer writes only on the empty -> non-empty transition, the same
 * hand-off PipeWire's logger uses between its RT threads and the main loop.
 *
 * Indices are free-running uint32_t; the slot count is a power of two so
 * "index & mask" wraps correctly across UINT32_MAX.
 */
#ifndef EMG_RING_H
#define EMG_RING_H

#include <stddef.h>
#include <stdint.h>

struct emg_ring;

/* Flags for emg_ring_new(). */
#define EMG_RING_EVENTFD 0x1u /* create an eventfd and signal it on empty -> non-empty */

/* Create a ring of `slots` (power of two) slots of `slot_size` bytes each. */
int emg_ring_new(struct emg_ring **out, uint32_t slots, size_t slot_size, unsigned flags);

/* Like emg_ring_new() but with both indices starting at `start` (tests wrap-around). */
int emg_ring_new_at(struct emg_ring **out, uint32_t slots, size_t slot_size, unsigned flags,
		    uint32_t start);

/* Free the ring and close its eventfd. */
void emg_ring_free(struct emg_ring *r);

/* Size of one slot in bytes. */
size_t emg_ring_slot_size(const struct emg_ring *r);

/* Number of slots. */
uint32_t emg_ring_capacity(const struct emg_ring *r);

/* Producer: copy one slot in; 0, or -ENOBUFS when full (the slot is dropped and counted). */
int emg_ring_push(struct emg_ring *r, const void *slot);

/* Producer: copy up to n contiguous slots in; returns how many fit, drops and counts the rest. */
uint32_t emg_ring_push_n(struct emg_ring *r, const void *slots, uint32_t n);

/* Producer: pointer to the next free slot, or NULL when full (counts an overrun). */
void *emg_ring_reserve(struct emg_ring *r);

/* Producer: publish the slot obtained from emg_ring_reserve(). */
void emg_ring_commit(struct emg_ring *r);

/* Consumer: copy the oldest slot out; 0, or -EAGAIN when empty. */
int emg_ring_pop(struct emg_ring *r, void *slot);

/* Consumer: pointer to the oldest slot, or NULL when empty; valid until emg_ring_release(). */
const void *emg_ring_peek(struct emg_ring *r);

/* Consumer: release the slot obtained from emg_ring_peek(). */
void emg_ring_release(struct emg_ring *r);

/* Slots currently readable (a snapshot; exact only from the consumer thread). */
uint32_t emg_ring_count(const struct emg_ring *r);

/* Slots dropped because the ring was full, since creation. */
uint64_t emg_ring_overruns(const struct emg_ring *r);

/* The wake-up eventfd, or -1 without EMG_RING_EVENTFD. */
int emg_ring_fd(const struct emg_ring *r);

/* Consumer: clear the eventfd before draining (call when woken). */
void emg_ring_ack(struct emg_ring *r);

#endif
