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
	unsigned short port;
};

/* Parse "a.b.c.d/n", "x::y/n" or a bare address; -EINVAL otherwise. */
int emg_cidr_parse(const char *s, struct emg_cidr *out);

/* 1 if the socket address sa lies inside the network c. */
int emg_cidr_match(const struct emg_cidr *c, const struct sockaddr *sa);

/* Parse "host:port" or "[v6]:port" (numeric host); -EINVAL otherwise. */
int emg_hostport_parse(const char *s, struct emg_hostport *out);

#endif
