/* SPDX-License-Identifier: MIT */
/* White-box tests of the SPSC ring: edges, wrap-around, and two real threads. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>

#include "ring.h"
#include "testutil.h"

struct frame {
	uint64_t seq;
	uint64_t check;
	float ch[6];
};

static void fill(struct frame *f, uint64_t seq)
{
	memset(f, 0, sizeof(*f));
	f->seq = seq;
	f->check = seq * 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < 6; i++)
		f->ch[i] = (float)(seq % 1000) + (float)i;
}

START_TEST(test_invalid)
{
	struct emg_ring *r;

	ck_assert_int_eq(emg_ring_new(&r, 0, 8, 0), -EINVAL);
	ck_assert_int_eq(emg_ring_new(&r, 3, 8, 0), -EINVAL);
	ck_assert_int_eq(emg_ring_new(&r, 1000, 8, 0), -EINVAL);
	ck_assert_int_eq(emg_ring_new(&r, 8, 0, 0), -EINVAL);
}
END_TEST

START_TEST(test_full_empty_edges)
{
	struct emg_ring *r;
	struct frame f, g;

	ck_assert_int_eq(emg_ring_new(&r, 4, sizeof(f), 0), 0);
	ck_assert_int_eq(emg_ring_pop(r, &g), -EAGAIN);
	ck_assert_ptr_null(emg_ring_peek(r));
	for (uint64_t i = 0; i < 4; i++) {
		fill(&f, i);
		ck_assert_int_eq(emg_ring_push(r, &f), 0);
	}
	ck_assert_uint_eq(emg_ring_count(r), 4);
	/* Full: the newest is dropped and counted, the ring content is untouched. */
	fill(&f, 99);
	ck_assert_int_eq(emg_ring_push(r, &f), -ENOBUFS);
	ck_assert_ptr_null(emg_ring_reserve(r));
	ck_assert_uint_eq(emg_ring_overruns(r), 2);
	for (uint64_t i = 0; i < 4; i++) {
		ck_assert_int_eq(emg_ring_pop(r, &g), 0);
		ck_assert_uint_eq(g.seq, i);
	}
	ck_assert_int_eq(emg_ring_pop(r, &g), -EAGAIN);
	ck_assert_uint_eq(emg_ring_count(r), 0);
	emg_ring_free(r);
}
END_TEST

/* Indices start 3 short of UINT32_MAX so they wrap through zero mid-test. */
START_TEST(test_wraparound)
{
	struct emg_ring *r;
	struct frame f, g;
	uint64_t next_in = 0, next_out = 0;

	ck_assert_int_eq(emg_ring_new_at(&r, 8, sizeof(f), 0, UINT32_MAX - 3), 0);
	for (int round = 0; round < 100; round++) {
		int npush = 1 + round % 8;
		for (int i = 0; i < npush; i++) {
			fill(&f, next_in);
			if (emg_ring_push(r, &f) == 0)
				next_in++;
		}
		ck_assert_uint_le(emg_ring_count(r), 8);
		int npop = 1 + (round * 7) % 8;
		for (int i = 0; i < npop; i++) {
			if (emg_ring_pop(r, &g) < 0)
				break;
			ck_assert_uint_eq(g.seq, next_out);
			ck_assert_uint_eq(g.check, next_out * 0x9E3779B97F4A7C15ull);
			next_out++;
		}
	}
	while (emg_ring_pop(r, &g) == 0)
		ck_assert_uint_eq(g.seq, next_out++);
	ck_assert_uint_eq(next_in, next_out);
	ck_assert_uint_gt(next_out, 100);
	emg_ring_free(r);
}
END_TEST

START_TEST(test_push_n_wrap_and_partial)
{
	struct emg_ring *r;
	struct frame in[16], g;

	ck_assert_int_eq(emg_ring_new_at(&r, 8, sizeof(g), 0, UINT32_MAX - 1), 0);
	for (int i = 0; i < 16; i++)
		fill(&in[i], (uint64_t)i);
	ck_assert_uint_eq(emg_ring_push_n(r, in, 5), 5);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(emg_ring_pop(r, &g), 0);
	/* 2 used, 6 free: 6 of 10 fit (copy splits across the buffer end), 4 dropped. */
	ck_assert_uint_eq(emg_ring_push_n(r, in + 5, 10), 6);
	ck_assert_uint_eq(emg_ring_overruns(r), 4);
	for (uint64_t i = 3; i < 11; i++) {
		ck_assert_int_eq(emg_ring_pop(r, &g), 0);
		ck_assert_uint_eq(g.seq, i);
	}
	ck_assert_int_eq(emg_ring_pop(r, &g), -EAGAIN);
	emg_ring_free(r);
}
END_TEST

START_TEST(test_reserve_commit_peek_release)
{
	struct emg_ring *r;
	struct frame *f;
	const struct frame *g;

	ck_assert_int_eq(emg_ring_new(&r, 2, sizeof(*f), 0), 0);
	f = emg_ring_reserve(r);
	ck_assert_ptr_nonnull(f);
	fill(f, 7);
	ck_assert_uint_eq(emg_ring_count(r), 0); /* not visible before commit */
	emg_ring_commit(r);
	g = emg_ring_peek(r);
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(g->seq, 7);
	emg_ring_release(r);
	ck_assert_ptr_null(emg_ring_peek(r));
	emg_ring_free(r);
}
END_TEST

START_TEST(test_eventfd_transition_only)
{
	struct emg_ring *r;
	struct frame f;
	uint64_t v = 0;

	ck_assert_int_eq(emg_ring_new(&r, 8, sizeof(f), EMG_RING_EVENTFD), 0);
	ck_assert_int_ge(emg_ring_fd(r), 0);
	fill(&f, 1);
	emg_ring_push(r, &f);
	emg_ring_push(r, &f);
	emg_ring_push(r, &f);
	/* Three pushes, one empty->non-empty transition, one signal. */
	ck_assert_int_eq(read(emg_ring_fd(r), &v, sizeof(v)), sizeof(v));
	ck_assert_uint_eq(v, 1);
	while (emg_ring_pop(r, &f) == 0)
		;
	emg_ring_push(r, &f);
	ck_assert_int_eq(read(emg_ring_fd(r), &v, sizeof(v)), sizeof(v));
	ck_assert_uint_eq(v, 1);
	emg_ring_free(r);
}
END_TEST

/* Two threads: the producer never blocks; in "lossless" mode it retries on a
 * full ring so every sequence number must arrive in order and the checksum
 * must match; in "lossy" mode it drops and received + overruns == sent. */
#define STRESS_N 2000000u

struct stress {
	struct emg_ring *r;
	int lossless;
	uint64_t sent_sum;
	uint64_t recv_sum;
	uint64_t received;
	uint64_t out_of_order;
	uint64_t overruns; /* before the end marker, whose retries also count */
};

static void *producer(void *arg)
{
	struct stress *s = arg;
	struct frame f;

	for (uint64_t i = 0; i < STRESS_N; i++) {
		fill(&f, i);
		if (s->lossless) {
			while (emg_ring_push(s->r, &f) < 0)
				sched_yield();
			s->sent_sum += f.check;
		} else if (emg_ring_push(s->r, &f) == 0) {
			s->sent_sum += f.check;
		}
	}
	s->overruns = emg_ring_overruns(s->r);
	fill(&f, UINT64_MAX); /* end marker */
	while (emg_ring_push(s->r, &f) < 0)
		sched_yield();
	return NULL;
}

static void *consumer(void *arg)
{
	struct stress *s = arg;
	struct pollfd pfd = { .fd = emg_ring_fd(s->r), .events = POLLIN };
	struct frame f;
	uint64_t last = 0;
	int first = 1;

	for (;;) {
		/* Sleep on the eventfd with no timeout: a lost wake-up hangs the
		 * test and the Check timeout fails it. */
		ck_assert_int_eq(poll(&pfd, 1, -1), 1);
		emg_ring_ack(s->r);
		while (emg_ring_pop(s->r, &f) == 0) {
			if (f.seq == UINT64_MAX)
				return NULL;
			if (f.check != f.seq * 0x9E3779B97F4A7C15ull || f.ch[5] != (float)(f.seq % 1000) + 5)
				s->out_of_order++;
			if (!first && f.seq <= last)
				s->out_of_order++;
			if (s->lossless && f.seq != (first ? 0 : last + 1))
				s->out_of_order++;
			first = 0;
			last = f.seq;
			s->recv_sum += f.check;
			s->received++;
		}
	}
}

static void run_stress(int lossless, uint32_t slots)
{
	struct stress s = { .lossless = lossless };
	pthread_t tp, tc;

	ck_assert_int_eq(emg_ring_new_at(&s.r, slots, sizeof(struct frame), EMG_RING_EVENTFD,
					 UINT32_MAX - 100), 0);
	ck_assert_int_eq(pthread_create(&tc, NULL, consumer, &s), 0);
	ck_assert_int_eq(pthread_create(&tp, NULL, producer, &s), 0);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	ck_assert_uint_eq(s.out_of_order, 0);
	ck_assert_uint_eq(s.recv_sum, s.sent_sum);
	if (lossless)
		ck_assert_uint_eq(s.received, STRESS_N);
	else
		ck_assert_uint_eq(s.received + s.overruns, STRESS_N);
	emg_ring_free(s.r);
}

START_TEST(test_stress_lossless)
{
	run_stress(1, 256);
}
END_TEST

START_TEST(test_stress_lossy)
{
	run_stress(0, 16);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("ring");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_invalid);
	tcase_add_test(tc, test_full_empty_edges);
	tcase_add_test(tc, test_wraparound);
	tcase_add_test(tc, test_push_n_wrap_and_partial);
	tcase_add_test(tc, test_reserve_commit_peek_release);
	tcase_add_test(tc, test_eventfd_transition_only);
	tcase_add_test(tc, test_stress_lossless);
	tcase_add_test(tc, test_stress_lossy);
	suite_add_tcase(s, tc);
	return test_run(s);
}
