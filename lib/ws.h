/* SPDX-License-Identifier: MIT */
/*
 * emg_ws: the server side of RFC 6455 WebSocket framing, nothing else.
 *
 * The OSCQuery server (lib/oscquery.c) upgrades an HTTP connection with
 * libmicrohttpd's MHD_create_response_for_upgrade() and owns the socket from
 * then on; this module turns the bytes a client sends into whole messages and
 * builds the frames emgd sends.  It does no I/O and keeps no socket, so the
 * unit tests and the fuzz target (tests/fuzz/fuzz_ws.c) drive exactly the code
 * the daemon runs.  Why not libwebsockets: see README "Discovery (OSCQuery)".
 *
 * Strict on purpose (a client that breaks a rule is closed with the RFC's
 * code rather than guessed at): client frames must be masked, RSV bits zero,
 * opcodes known, lengths minimally encoded, control frames unfragmented and at
 * most 125 bytes, fragments in order, a message at most max_message bytes
 * (1009 otherwise), text and close reasons valid UTF-8 (1007), close codes
 * ones a peer may send.  After a violation or a close the reader accepts
 * nothing more.  Not thread-safe: one reader per connection, one thread.
 */
#ifndef EMG_WS_H
#define EMG_WS_H

#include <stddef.h>
#include <stdint.h>

enum emg_ws_opcode {
	EMG_WS_CONT = 0x0,
	EMG_WS_TEXT = 0x1,
	EMG_WS_BINARY = 0x2,
	EMG_WS_CLOSE = 0x8,
	EMG_WS_PING = 0x9,
	EMG_WS_PONG = 0xA,
};

/* Close codes emgd sends (RFC 6455 7.4.1). */
enum emg_ws_close {
	EMG_WS_CLOSE_NORMAL = 1000,
	EMG_WS_CLOSE_GOING_AWAY = 1001,
	EMG_WS_CLOSE_PROTOCOL = 1002,
	EMG_WS_CLOSE_BAD_DATA = 1007,
	EMG_WS_CLOSE_POLICY = 1008,
	EMG_WS_CLOSE_TOO_BIG = 1009,
};

#define EMG_WS_MAX_HEADER 10  /* a server frame header: 2 + 8-byte length */
#define EMG_WS_MAX_CONTROL 125

struct emg_ws_reader;

/* A complete message (data reassembled, or one control frame); return <0 to stop feeding. */
typedef int (*emg_ws_message_fn)(void *ud, enum emg_ws_opcode op, const unsigned char *payload,
				 size_t len);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (base64 of 16 bytes, else -EINVAL); out gets 28 chars + NUL. */
int emg_ws_accept_key(const char *key, char out[29]);

/* A reader for one connection that accepts messages up to max_message bytes. */
int emg_ws_reader_new(struct emg_ws_reader **out, size_t max_message);

/* Free a reader (NULL is fine). */
void emg_ws_reader_free(struct emg_ws_reader *r);

/* Feed received bytes; fn gets each message in order.  0, fn's negative return, or -EPROTO (see emg_ws_close_code). */
int emg_ws_feed(struct emg_ws_reader *r, const void *buf, size_t len, emg_ws_message_fn fn, void *ud);

/* The close code to answer a violation with (0 while none happened). */
unsigned emg_ws_close_code(const struct emg_ws_reader *r);

/* 1 once a close frame was received (nothing more is read). */
int emg_ws_closed(const struct emg_ws_reader *r);

/* A server frame header (FIN, unmasked) for len payload bytes; returns its size (2, 4 or 10). */
size_t emg_ws_header(unsigned char hdr[EMG_WS_MAX_HEADER], enum emg_ws_opcode op, uint64_t len);

/* A whole close frame with code (0: no code); returns its size (at most 4). */
size_t emg_ws_close_frame(unsigned char out[4], unsigned code);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int emg_ws_utf8_valid(const unsigned char *s, size_t n);

#endif
