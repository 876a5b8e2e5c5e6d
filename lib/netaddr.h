/* SPDX-License-Identifier: MIT */
/*
 * emg_cidr, emg_hostport: numeric network addresses as the config writes them
 * ([osc] allow, listen, target; [oscquery] http) and the allow-list match the
 * OSC and OSCQuery servers run on every source address.  No name resolution:
 * a daemon must not block on DNS at start or reload.
 */
#ifndef EMG_NETADDR_H
#define EMG_NETADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

/* Most allow-list networks and static OSC targets one config may list. */
#define EMG_NET_MAX_ALLOW 32
#define EMG_NET_MAX_TARGETS 16

/* An IPv4/IPv6 network for the control allow-list. */
struct emg_cidr {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network address, big-endian */
	unsigned prefix;        /* prefix length in bits */
};

/* A host:port pair as written in the file, resolved numerically. */
struct emg_hostport {
	char host[64];
	unsigned short port; /* 0 = auto: [osc] listen / [oscquery] http = HOST:auto */
};

/* "auto" ports: the first free one of EMG_PORT_AUTO_SLOTS, stepping by 2 from 9000 (OSC,
 * UDP) and 9001 (OSCQuery HTTP, TCP), so that instances started alike get pairs
 * 9000/9001, 9002/9003, ... and a fixed emgd on the defaults is stepped over. */
#define EMG_PORT_AUTO_OSC 9000
#define EMG_PORT_AUTO_HTTP 9001
#define EMG_PORT_AUTO_SLOTS 64

/* Parse "a.b.c.d/n", "x::y/n" or a bare address; -EINVAL otherwise. */
int emg_cidr_parse(const char *s, struct emg_cidr *out);

/* 1 if the socket address sa lies inside the network c. */
int emg_cidr_match(const struct emg_cidr *c, const struct sockaddr *sa);

/* Parse "host:port" or "[v6]:port" (numeric host); -EINVAL otherwise. */
int emg_hostport_parse(const char *s, struct emg_hostport *out);

/* Like emg_hostport_parse(), also taking HOST:auto and plain auto (127.0.0.1:auto) as port 0. */
int emg_hostport_parse_auto(const char *s, struct emg_hostport *out);

/* The n-th auto port from base (base + 2n), or 0 past the last slot. */
unsigned emg_port_auto(unsigned base, unsigned n);

#endif
