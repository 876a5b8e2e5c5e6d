/* SPDX-License-Identifier: MIT */
/*
 * oscsink: N real OSC subscribers on loopback, for the latency and scale
 * benchmarks (a Python subscriber cannot keep up with 64 x 100 bundles/s).
 *
 * Each subscriber is its own UDP socket: it sends /emgd/subscribe i lease
 * from its port, renews it, and parses every datagram it gets (bundles
 * split over several packets included).  Per subscriber it counts the
 * metric ticks (/emg/frame i tick, i dropped), the ticks missing between
 * the first and the last one it saw (lost bundles), and the onset and
 * offset events.  At the end it unsubscribes and prints one JSON line.
 *
 * Usage: oscsink HOST:PORT SUBSCRIBERS SECONDS   (SIGTERM/SIGINT end it early)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXSUB 256
#define LEASE 30

struct sub {
	int fd;
	int subscribed;
	int64_t first, last;  /* ticks, -1 before the first */
	uint64_t ticks, dup, backwards;
	uint64_t onsets, offsets, packets, bytes;
	int32_t dropped;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* Encode path with no argument or one int. */
static size_t encode(unsigned char *b, const char *path, int with_int, int32_t v)
{
	size_t n = strlen(path) + 1, off;

	memset(b, 0, 64);
	memcpy(b, path, n - 1);
	off = pad4(n);
	memcpy(b + off, with_int ? ",i" : ",", with_int ? 2 : 1);
	off += 4;
	if (with_int) {
		uint32_t be = htonl((uint32_t)v);
		memcpy(b + off, &be, 4);
		off += 4;
	}
	return off;
}

static int32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (int32_t)ntohl(v);
}

static void on_message(struct sub *s, const unsigned char *m, size_t len)
{
	size_t plen = strnlen((const char *)m, len);
	const char *path = (const char *)m;

	if (plen >= len)
		return;
	if (!strcmp(path, "/emg/frame")) {
		size_t off = pad4(plen + 1);
		if (off + 4 + 8 > len || memcmp(m + off, ",ii", 3))
			return;
		int64_t tick = rd32(m + off + 4);
		s->dropped = rd32(m + off + 8);
		if (s->first < 0)
			s->first = tick;
		if (tick == s->last)
			s->dup++;
		else if (s->last >= 0 && tick < s->last)
			s->backwards++;
		else
			s->ticks++;
		if (tick > s->last)
			s->last = tick;
	} else if (plen > 6 && !strcmp(path + plen - 6, "/onset")) {
		s->onsets++;
	} else if (plen > 7 && !strcmp(path + plen - 7, "/offset")) {
		s->offsets++;
	} else if (!strcmp(path, "/emgd/subscribed")) {
		s->subscribed = 1;
	}
}

static void on_packet(struct sub *s, const unsigned char *b, size_t len)
{
	s->packets++;
	s->bytes += len;
	if (len >= 16 && !memcmp(b, "#bundle", 8)) {
		size_t off = 16;
		while (off + 4 <= len) {
			size_t n = (size_t)rd32(b + off);
			off += 4;
			if (n > len - off)
				break;
			on_message(s, b + off, n);
			off += n;
		}
	} else {
		on_message(s, b, len);
	}
}

int main(int argc, char **argv)
{
	static struct sub subs[MAXSUB];
	static struct pollfd pfd[MAXSUB];
	struct sockaddr_in to = { .sin_family = AF_INET };
	unsigned char msg[64], buf[65536];
	unsigned nsub;
	double secs, t0, next_renew, next_retry;
	char host[64];
	int port;

	if (argc != 4 || sscanf(argv[1], "%63[^:]:%d", host, &port) != 2 ||
	    inet_pton(AF_INET, host, &to.sin_addr) != 1 || (nsub = (unsigned)atoi(argv[2])) < 1 ||
	    nsub > MAXSUB || !((secs = atof(argv[3])) > 0)) {
		fprintf(stderr, "usage: oscsink HOST:PORT SUBSCRIBERS SECONDS\n");
		return 2;
	}
	to.sin_port = htons((uint16_t)port);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (unsigned i = 0; i < nsub; i++) {
		struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int sz = 4 << 20;
		subs[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (subs[i].fd < 0 || bind(subs[i].fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
			perror("oscsink: socket");
			return 1;
		}
		setsockopt(subs[i].fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		subs[i].first = subs[i].last = -1;
		pfd[i] = (struct pollfd){ .fd = subs[i].fd, .events = POLLIN };
	}
	t0 = now_s();
	next_retry = t0;
	next_renew = t0 + LEASE / 3.0;
	for (;;) {
		double t = now_s();
		size_t n = encode(msg, "/emgd/subscribe", 1, LEASE);

		if (t - t0 >= secs || stop)
			break;
		if (t >= next_retry) { /* until answered (the control rate limit may drop some) */
			for (unsigned i = 0; i < nsub; i++)
				if (!subs[i].subscribed)
					sendto(subs[i].fd, msg, n, 0, (struct sockaddr *)&to, sizeof(to));
			next_retry = t + 0.2;
		}
		if (t >= next_renew) {
			for (unsigned i = 0; i < nsub; i++)
				sendto(subs[i].fd, msg, n, 0, (struct sockaddr *)&to, sizeof(to));
			next_renew = t + LEASE / 3.0;
		}
		if (poll(pfd, nsub, 50) <= 0)
			continue;
		for (unsigned i = 0; i < nsub; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			for (;;) {
				ssize_t got = recv(subs[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
				if (got < 0)
					break;
				on_packet(&subs[i], buf, (size_t)got);
			}
		}
	}
	{
		size_t len = encode(msg, "/emgd/unsubscribe", 0, 0);
		for (unsigned i = 0; i < nsub; i++)
			sendto(subs[i].fd, msg, len, 0, (struct sockaddr *)&to, sizeof(to));
	}
	uint64_t ticks = 0, lost = 0, minticks = UINT64_MAX, onsets = 0, offsets = 0, packets = 0;
	uint64_t dup = 0, back = 0, bytes = 0;
	unsigned subscribed = 0;
	for (unsigned i = 0; i < nsub; i++) {
		struct sub *s = &subs[i];
		uint64_t span = s->first >= 0 ? (uint64_t)(s->last - s->first + 1) : 0;
		subscribed += s->subscribed;
		ticks += s->ticks;
		lost += span - s->ticks;
		minticks = s->ticks < minticks ? s->ticks : minticks;
		onsets += s->onsets;
		offsets += s->offsets;
		packets += s->packets;
		bytes += s->bytes;
		dup += s->dup;
		back += s->backwards;
	}
	printf("{\"subscribers\": %u, \"subscribed\": %u, \"seconds\": %.2f, \"ticks\": %llu, "
	       "\"min_ticks\": %llu, \"lost_ticks\": %llu, \"duplicate_ticks\": %llu, "
	       "\"out_of_order\": %llu, \"onsets\": %llu, \"offsets\": %llu, \"packets\": %llu, "
	       "\"bytes\": %llu, \"dropped_samples\": %d}\n",
	       nsub, subscribed, now_s() - t0, (unsigned long long)ticks,
	       (unsigned long long)minticks, (unsigned long long)lost, (unsigned long long)dup,
	       (unsigned long long)back, (unsigned long long)onsets, (unsigned long long)offsets,
	       (unsigned long long)packets, (unsigned long long)bytes, subs[0].dropped);
	return 0;
}
