/* SPDX-License-Identifier: MIT */
/*
 * bench_ring: frames between two threads through emg_ring, JACK's
 * jack_ringbuffer and Concurrency Kit's ck_ring (SPSC), measured in the
 * same run.
 *
 * A frame is what the daemon's acquisition thread pushes: a 24-byte header
 * (sequence number, arrival time, lost count) and one float per channel;
 * 8, 64 and 256 channels.  Every ring holds 1024 frames (JACK: the next
 * power of two in bytes).  The producer builds each frame in a local buffer
 * and copies it in (emg_ring_push, jack_ringbuffer_write, ck_ring's typed
 * enqueue, which copies the struct into the ring); when the ring is full it
 * spins until there is room, so the consumer always keeps up and nothing
 * is dropped.  The consumer copies each frame out, checks that the
 * sequence numbers arrive in order, and sums every 64-bit word: that sum
 * must equal the one computed from what was sent (zero loss, no torn or
 * reordered frame).  No wake-ups: emg_ring without its eventfd, as the
 * others have none (the daemon's eventfd costs one write(2) per
 * empty -> non-empty transition; the last row shows that case too, on a
 * 16th of the data).
 *
 * Usage: bench_ring [-r reps] [-m megabytes per run] [-c channels]...
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

#ifdef HAVE_JACK
#include <jack/ringbuffer.h>
#endif
#ifdef HAVE_CK
#include <ck_ring.h>
#endif

#define SLOTS 1024
#define MAXCH 256
#define MAXREPS 32

struct hdr {
	uint64_t seq;
	uint64_t t_ns;
	uint32_t lost;
	uint32_t pad;
};

/* ck_ring's typed interface copies whole structs: one type per frame size. */
#define FRAME_TYPE(n)                                                                            \
	struct frame##n {                                                                        \
		struct hdr h;                                                                    \
		float x[n];                                                                      \
	}
FRAME_TYPE(8);
FRAME_TYPE(64);
FRAME_TYPE(256);
#ifdef HAVE_CK
CK_RING_PROTOTYPE(f8, frame8)
CK_RING_PROTOTYPE(f64, frame64)
CK_RING_PROTOTYPE(f256, frame256)
#endif

enum kind { K_EMG, K_JACK, K_CK, K_EMG_EFD, NKINDS };
static const char *const kind_name[NKINDS] = { "emg_ring", "jack_ringbuffer", "ck_ring spsc",
					       "emg_ring+eventfd" };

struct run {
	enum kind kind;
	unsigned nch;
	size_t fsize;
	uint64_t nframes;
	struct emg_ring *er;
#ifdef HAVE_JACK
	jack_ringbuffer_t *jr;
#endif
#ifdef HAVE_CK
	ck_ring_t cr;
	void *cbuf;
#endif
	_Atomic int go;
	uint64_t sum_sent, sum_recv;
	uint64_t bad_order;
	double t0, t1;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	(void)sched_setaffinity(0, sizeof(s), &s); /* best effort */
}

static inline uint64_t words_sum(const void *p, size_t n)
{
	const uint64_t *w = p;
	uint64_t s = 0;

	for (size_t i = 0; i < n / 8; i++)
		s += w[i];
	return s;
}

static int ck_push(struct run *r, const void *f)
{
#ifdef HAVE_CK
	switch (r->nch) {
	case 8:
		return ck_ring_enqueue_spsc_f8(&r->cr, r->cbuf, (struct frame8 *)f);
	case 64:
		return ck_ring_enqueue_spsc_f64(&r->cr, r->cbuf, (struct frame64 *)f);
	default:
		return ck_ring_enqueue_spsc_f256(&r->cr, r->cbuf, (struct frame256 *)f);
	}
#else
	(void)r, (void)f;
	return 0;
#endif
}

static int ck_pop(struct run *r, void *f)
{
#ifdef HAVE_CK
	switch (r->nch) {
	case 8:
		return ck_ring_dequeue_spsc_f8(&r->cr, r->cbuf, f);
	case 64:
		return ck_ring_dequeue_spsc_f64(&r->cr, r->cbuf, f);
	default:
		return ck_ring_dequeue_spsc_f256(&r->cr, r->cbuf, f);
	}
#else
	(void)r, (void)f;
	return 0;
#endif
}

static void *producer(void *arg)
{
	struct run *r = arg;
	_Alignas(64) unsigned char buf[sizeof(struct hdr) + MAXCH * sizeof(float)];
	struct hdr *h = (struct hdr *)buf;
	float *x = (float *)(h + 1);
	uint64_t sum = 0;

	pin(0);
	for (unsigned c = 0; c < r->nch; c++)
		x[c] = (float)c * 0.25f;
	memset(h, 0, sizeof(*h));
	while (!atomic_load(&r->go))
		relax();
	for (uint64_t i = 0; i < r->nframes; i++) {
		h->seq = i;
		h->t_ns = i * 2654435761u;
		x[0] = (float)(i & 0xffff);
		sum += words_sum(buf, r->fsize);
		switch (r->kind) {
		case K_EMG:
		case K_EMG_EFD:
			while (emg_ring_push(r->er, buf) < 0)
				relax();
			break;
#ifdef HAVE_JACK
		case K_JACK:
			while (jack_ringbuffer_write_space(r->jr) < r->fsize)
				relax();
			jack_ringbuffer_write(r->jr, (const char *)buf, r->fsize);
			break;
#endif
		case K_CK:
			while (!ck_push(r, buf))
				relax();
			break;
		default:
			break;
		}
	}
	r->sum_sent = sum;
	return NULL;
}

static void *consumer(void *arg)
{
	struct run *r = arg;
	_Alignas(64) unsigned char buf[sizeof(struct hdr) + MAXCH * sizeof(float)];
	const struct hdr *h = (const struct hdr *)buf;
	uint64_t sum = 0, bad = 0;

	pin(1);
	while (!atomic_load(&r->go))
		relax();
	r->t0 = now_s();
	for (uint64_t i = 0; i < r->nframes; i++) {
		switch (r->kind) {
		case K_EMG:
			while (emg_ring_pop(r->er, buf) < 0)
				relax();
			break;
		case K_EMG_EFD:
			while (emg_ring_pop(r->er, buf) < 0)
				relax();
			emg_ring_ack(r->er);
			break;
#ifdef HAVE_JACK
		case K_JACK:
			while (jack_ringbuffer_read_space(r->jr) < r->fsize)
				relax();
			jack_ringbuffer_read(r->jr, (char *)buf, r->fsize);
			break;
#endif
		case K_CK:
			while (!ck_pop(r, buf))
				relax();
			break;
		default:
			break;
		}
		bad += h->seq != i;
		sum += words_sum(buf, r->fsize);
	}
	r->t1 = now_s();
	r->sum_recv = sum;
	r->bad_order = bad;
	return NULL;
}

/* One run; returns frames per second, or 0 on a checksum or order failure. */
static double run_once(enum kind k, unsigned nch, uint64_t nframes, int *ok)
{
	struct run r = { .kind = k, .nch = nch, .nframes = nframes };
	pthread_t p, c;

	*ok = 0;
	r.fsize = sizeof(struct hdr) + nch * sizeof(float);
	atomic_init(&r.go, 0);
	switch (k) {
	case K_EMG:
	case K_EMG_EFD:
		if (emg_ring_new(&r.er, SLOTS, r.fsize, k == K_EMG_EFD ? EMG_RING_EVENTFD : 0) < 0)
			exit(2);
		break;
#ifdef HAVE_JACK
	case K_JACK: {
		size_t bytes = 1;
		while (bytes < SLOTS * r.fsize + 1)
			bytes *= 2;
		r.jr = jack_ringbuffer_create(bytes);
		if (!r.jr)
			exit(2);
		break;
	}
#endif
#ifdef HAVE_CK
	case K_CK:
		r.cbuf = aligned_alloc(64, SLOTS * r.fsize);
		if (!r.cbuf)
			exit(2);
		memset(r.cbuf, 0, SLOTS * r.fsize);
		ck_ring_init(&r.cr, SLOTS);
		break;
#endif
	default:
		return 0;
	}
	pthread_create(&c, NULL, consumer, &r);
	pthread_create(&p, NULL, producer, &r);
	atomic_store(&r.go, 1);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	*ok = r.sum_recv == r.sum_sent && r.bad_order == 0;
	switch (k) {
	case K_EMG:
	case K_EMG_EFD:
		emg_ring_free(r.er);
		break;
#ifdef HAVE_JACK
	case K_JACK:
		jack_ringbuffer_free(r.jr);
		break;
#endif
#ifdef HAVE_CK
	case K_CK:
		free(r.cbuf);
		break;
#endif
	default:
		break;
	}
	return (double)nframes / (r.t1 - r.t0);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned chans[3] = { 8, 64, 256 }, nchans = 3, given = 0, reps = 5;
	double mb = 1024;
	int avail[NKINDS] = { 1, 0, 0, 1 }, opt, all_ok = 1;
	double worst_jack = 1e9, worst_ck = 1e9;

#ifdef HAVE_JACK
	avail[K_JACK] = 1;
#endif
#ifdef HAVE_CK
	avail[K_CK] = 1;
#endif
	while ((opt = getopt(argc, argv, "r:m:c:")) != -1) {
		switch (opt) {
		case 'r':
			reps = (unsigned)atoi(optarg);
			break;
		case 'm':
			mb = atof(optarg);
			break;
		case 'c': {
			unsigned n = (unsigned)atoi(optarg);
			if (given == 3 || (n != 8 && n != 64 && n != 256)) {
				fprintf(stderr, "bench_ring: channels are 8, 64 or 256\n");
				return 2;
			}
			chans[given++] = n;
			nchans = given;
			break;
		}
		default:
			fprintf(stderr, "usage: bench_ring [-r reps] [-m megabytes per run] [-c 8|64|256]...\n");
			return 2;
		}
	}
	if (reps < 1 || reps > MAXREPS || !(mb > 0))
		return 2;

	printf("Ring: frames (24-byte header + 4 bytes per channel) from one thread to another, %u-frame "
	       "rings, %.0f MB per run, best of %u runs [median]; consumer checks order and checksum\n",
	       SLOTS, mb, reps);
	if (!avail[K_JACK])
		printf("note: JACK (libjack-jackd2-dev) not found at build time: comparator skipped\n");
	if (!avail[K_CK])
		printf("note: Concurrency Kit (libck-dev) not found at build time: comparator skipped\n");
	printf("%4s %6s | %-18s | %13s | %11s | %6s\n", "ch", "bytes", "ring", "Mframes/s",
	       "GB/s", "loss");
	for (unsigned ci = 0; ci < nchans; ci++) {
		const unsigned nch = chans[ci];
		const size_t fsize = sizeof(struct hdr) + nch * sizeof(float);
		const uint64_t nframes = (uint64_t)(mb * 1048576.0 / (double)fsize);
		double best[NKINDS] = { 0 };

		for (int k = 0; k < NKINDS; k++) {
			double v[MAXREPS];
			int ok = 1;

			if (!avail[k])
				continue;
			for (unsigned r = 0; r < reps; r++) {
				int o = 0;
				/* a write(2) per frame or so: a 16th of the data is plenty */
				v[r] = run_once((enum kind)k, nch, k == K_EMG_EFD ? nframes / 16 : nframes, &o);
				ok = ok && o;
			}
			qsort(v, reps, sizeof(double), cmp_dbl);
			best[k] = v[reps - 1];
			all_ok = all_ok && ok;
			printf("%4u %6zu | %-18s | %6.2f [%5.2f] | %5.2f [%4.2f] | %6s\n", nch, fsize,
			       kind_name[k], best[k] / 1e6, v[reps / 2] / 1e6, best[k] * fsize / 1e9,
			       v[reps / 2] * fsize / 1e9, ok ? "0" : "FAIL");
		}
		if (avail[K_JACK]) {
			printf("%4u %6s   emg_ring / jack_ringbuffer = %.2fx\n", nch, "", best[K_EMG] / best[K_JACK]);
			worst_jack = best[K_EMG] / best[K_JACK] < worst_jack ? best[K_EMG] / best[K_JACK] : worst_jack;
		}
		if (avail[K_CK]) {
			printf("%4u %6s   emg_ring / ck_ring        = %.2fx\n", nch, "", best[K_EMG] / best[K_CK]);
			worst_ck = best[K_EMG] / best[K_CK] < worst_ck ? best[K_EMG] / best[K_CK] : worst_ck;
		}
	}
	if (avail[K_JACK] && avail[K_CK])
		printf("target: emg_ring >= jack_ringbuffer and >= ck_ring: %s (worst %.2fx JACK, %.2fx ck)\n",
		       worst_jack >= 1.0 && worst_ck >= 1.0 ? "met" : "NOT met", worst_jack, worst_ck);
	printf("zero loss (order and checksum of every frame): %s\n", all_ok ? "yes" : "NO");
	return all_ok ? 0 : 1;
}
