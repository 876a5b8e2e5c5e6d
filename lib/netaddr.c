/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int emg_cidr_parse(const char *s, struct emg_cidr *out)
{
	char buf[64], *slash, *end;
	long prefix;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		prefix = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		prefix = 128;
	} else {
		return -EINVAL;
	}
	if (slash) {
		long max = prefix;
		prefix = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || prefix < 0 || prefix > max)
			return -EINVAL;
	}
	out->prefix = (unsigned)prefix;
	return 0;
}

static int prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole))
		return 0;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		return (a[whole] & mask) == (b[whole] & mask);
	}
	return 1;
}

int emg_cidr_match(const struct emg_cidr *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		if (c->family == AF_INET)
			return prefix_match(c->addr, (const unsigned char *)&in->sin_addr, c->prefix);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *a = (const unsigned char *)&in6->sin6_addr;
		static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (c->family == AF_INET6)
			return prefix_match(c->addr, a, c->prefix);
		/* An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d. */
		return !memcmp(a, v4mapped, 12) && prefix_match(c->addr, a + 12, c->prefix);
	}
	return 0;
}

int emg_hostport_parse(const char *s, struct emg_hostport *out)
{
	char host[64];
	const char *colon;
	unsigned char tmp[16];
	char *end;
	long port;
	size_t n;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		colon = close + 1;
		if (inet_pton(AF_INET6, host, tmp) != 1)
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
		if (inet_pton(AF_INET, host, tmp) != 1)
			return -EINVAL;
	}
	port = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end || port < 1 || port > 65535)
		return -EINVAL;
	snprintf(out->host, sizeof(out->host), "%s", host);
	out->port = (unsigned short)port;
	return 0;
}

int emg_hostport_parse_auto(const char *s, struct emg_hostport *out)
{
	char buf[80];
	size_t n;
	int r;

	if (!strcmp(s, "auto"))
		s = "127.0.0.1:auto";
	n = strlen(s);
	if (n < 5 || strcmp(s + n - 5, ":auto"))
		return emg_hostport_parse(s, out);
	/* the host part is checked by the same parser, with a stand-in port */
	if (n - 4 + 1 > sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%.*s1", (int)(n - 4), s);
	r = emg_hostport_parse(buf, out);
	if (r == 0)
		out->port = 0;
	return r;
}

unsigned emg_port_auto(unsigned base, unsigned n)
{
	return n < EMG_PORT_AUTO_SLOTS ? base + 2 * n : 0;
}
