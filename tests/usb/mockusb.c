/* SPDX-License-Identifier: MIT */
/* mockusb: see mockusb.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <umockdev.h>

#include "mockusb.h"

#define FIRST_DEVNUM 5
#define FTDI_MAXPACKET 64
#define PARK_MS 2

struct murb {
	UMockdevIoctlData *data;     /* struct usbdevfs_urb, resolved (own reference) */
	UMockdevIoctlData *buf;      /* its buffer (own reference) */
	UMockdevIoctlClient *client; /* identity only */
	gboolean ready;
	/* Completed by an unplug: next_reapable() fills in -ESHUTDOWN.  Not
	 * mockusb_unplug() itself: the struct usbdevfs_urb (data) is touched only
	 * on umockdev's worker thread, since umockdev reads it there outside our
	 * lock (answering SUBMITURB, it copies it back to the client). */
	gboolean shutdown;
};

struct mockusb {
	enum mockusb_kind kind;
	UMockdevTestbed *tb;
	UMockdevIoctlBase *handler;
	char *desc;                  /* the .umockdev text, device number FIRST_DEVNUM */
	char syspath[256];
	char devnode[64];
	unsigned devnum;
	char *root;

	/* Guards everything below; taken by the handler on umockdev's worker thread
	 * and by the mockusb_*() calls on the test's threads.  A pthread mutex, not
	 * a GMutex: GLib on Linux implements GMutex with inline atomics and futex(),
	 * which ThreadSanitizer cannot see, so every access it guards would be
	 * reported as a race. */
	pthread_mutex_t lock;
	GQueue urbs;                 /* submitted, not yet reaped, in submit order */
	UMockdevIoctlClient *client; /* the client (open fd) the URBs belong to */
	gboolean unplugged;
	GString *log;

	/* firmware model */
	gboolean daisy, silent, streaming;
	GByteArray *fifo;            /* replies not yet read by the host */
	gint64 fifo_ready_at;        /* monotonic us when the replies can be read */
	gint64 reply_delay_us;       /* the firmware's time to answer a command */
	uint8_t *stream;
	size_t stream_len, stream_pos;
	double rate;
	gint64 stream_t0;            /* g_get_monotonic_time() when streaming started */
	char cmd[512];
	size_t cmdlen;
	int mode;                    /* hackeeg: 0 text, 1 JSON Lines, 2 MessagePack */
	int regs[256];
};

/* ----------------------------------------------------------- utilities */

static void lock(struct mockusb *m)
{
	if (pthread_mutex_lock(&m->lock))
		g_error("mockusb: pthread_mutex_lock failed");
}

static void unlock(struct mockusb *m)
{
	pthread_mutex_unlock(&m->lock);
}

static void logf_locked(struct mockusb *m, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void logf_locked(struct mockusb *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_string_append_vprintf(m->log, fmt, ap);
	va_end(ap);
	g_string_append_c(m->log, '\n');
}

static void reply(struct mockusb *m, const char *s)
{
	g_byte_array_append(m->fifo, (const guint8 *)s, (guint)strlen(s));
	m->fifo_ready_at = g_get_monotonic_time() + m->reply_delay_us;
}

static void murb_free(struct murb *u)
{
	g_object_unref(u->data);
	g_object_unref(u->buf);
	g_free(u);
}

static struct usbdevfs_urb *K(struct murb *u)
{
	return (struct usbdevfs_urb *)u->data->data;
}

/* ---------------------------------------------------------- firmware */

static void firmware_boot(struct mockusb *m)
{
	m->streaming = FALSE;
	m->cmdlen = 0;
	m->mode = 0;
	g_byte_array_set_size(m->fifo, 0);
	for (int i = 0; i < 256; i++)
		m->regs[i] = -1;
	if (m->kind == MOCKUSB_HACKEEG)
		reply(m, "Ready\r\n");
}

static void start_stream(struct mockusb *m)
{
	m->streaming = TRUE;
	m->stream_t0 = g_get_monotonic_time();
	m->stream_pos = 0;
}

static void cyton_byte(struct mockusb *m, uint8_t c)
{
	if (m->cmdlen) {
		/* inside x...X */
		m->cmd[m->cmdlen++] = (char)c;
		if (m->cmdlen == 9) {
			char msg[64];

			m->cmdlen = 0;
			if (m->cmd[8] == 'X') {
				snprintf(msg, sizeof(msg), "Success: Channel set for %c$$$", m->cmd[1]);
				reply(m, msg);
			} else {
				reply(m, "Failure: too few chars$$$");
			}
		}
		return;
	}
	if (m->silent) {
		if (c == 'v' || c == 'd' || c == 'c' || c == 'C')
			reply(m, "Failure: Communications timeout - Device failed to poll Host$$$");
		return;
	}
	switch (c) {
	case 's':
		m->streaming = FALSE;
		break;
	case 'v':
		m->streaming = FALSE;
		reply(m, "OpenBCI V3 8-16 channel\nOn Board ADS1299 Device ID: 0x3E\n");
		if (m->daisy)
			reply(m, "On Daisy ADS1299 Device ID: 0x3E\n");
		reply(m, "LIS3DH Device ID: 0x33\nFirmware: v3.1.2\n$$$");
		break;
	case 'c':
		reply(m, m->daisy ? "daisy removed$$$" : "no daisy to remove$$$");
		break;
	case 'C':
		reply(m, m->daisy ? "16$$$" : "no daisy to attach!$$$");
		break;
	case 'd':
		reply(m, "updating channel settings to default$$$");
		break;
	case 'x':
		m->cmd[0] = 'x';
		m->cmdlen = 1;
		break;
	case 'b':
		start_stream(m);
		break;
	default:
		break;
	}
}

static void hackeeg_line(struct mockusb *m, char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = 0;
	if (m->silent || !n)
		return;
	if (m->mode == 0) {
		if (!strcmp(line, "jsonlines")) {
			m->mode = 1;
			reply(m, "200 Ok\r\n");
		} else {
			reply(m, "406 Error: Unrecognized command.\r\n\r\n");
		}
		return;
	}
	const char *ok = "{\"STATUS_CODE\":200,\"STATUS_TEXT\":\"Ok\"}\r\n";
	const char *cmd = strstr(line, "\"COMMAND\":\"");
	if (line[0] != '{' || !cmd) {
		reply(m, "{\"STATUS_CODE\":400,\"STATUS_TEXT\":\"Bad Request\"}\r\n");
		return;
	}
	cmd += 11;
	char name[32];
	size_t k = 0;
	while (cmd[k] && cmd[k] != '"' && k < sizeof(name) - 1) {
		name[k] = cmd[k];
		k++;
	}
	name[k] = 0;
	if (!strcmp(name, "wreg")) {
		const char *p = strstr(line, "\"PARAMETERS\":[");
		unsigned r, v;
		if (!p || sscanf(p + 14, "%u,%u", &r, &v) != 2 || r > 255 || v > 255) {
			reply(m, "{\"STATUS_CODE\":500,\"STATUS_TEXT\":\"Error\"}\r\n");
			return;
		}
		m->regs[r] = (int)v;
	} else if (!strcmp(name, "sdatac")) {
		m->streaming = FALSE;
	} else if (!strcmp(name, "jsonlines")) {
		m->mode = 1;
	} else if (!strcmp(name, "messagepack")) {
		m->mode = 2;
	} else if (!strcmp(name, "rdatac")) {
		reply(m, ok);
		start_stream(m);
		return;
	} else if (strcmp(name, "stop") && strcmp(name, "start") && strcmp(name, "nop") &&
		   strcmp(name, "boardledon") && strcmp(name, "boardledoff")) {
		reply(m, "{\"STATUS_CODE\":406,\"STATUS_TEXT\":\"Unrecognized command\"}\r\n");
		return;
	}
	reply(m, ok);
}

static void bulk_out(struct mockusb *m, const uint8_t *p, size_t n)
{
	GString *s = g_string_new("out ");

	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			g_string_append_c(s, (char)p[i]);
		else
			g_string_append_printf(s, "\\x%02x", p[i]);
	}
	logf_locked(m, "%s", s->str);
	g_string_free(s, TRUE);
	for (size_t i = 0; i < n; i++) {
		if (m->kind == MOCKUSB_CYTON) {
			cyton_byte(m, p[i]);
		} else if (p[i] == '\n') {
			m->cmd[m->cmdlen] = 0;
			hackeeg_line(m, m->cmd);
			m->cmdlen = 0;
		} else if (m->cmdlen < sizeof(m->cmd) - 1) {
			m->cmd[m->cmdlen++] = (char)p[i];
		}
	}
}

/* Bytes the device could send now; copies up to max into out (advancing). */
static size_t take_bytes(struct mockusb *m, uint8_t *out, size_t max)
{
	size_t n = 0;

	if (m->fifo->len && g_get_monotonic_time() < m->fifo_ready_at)
		return 0; /* the firmware is still working on the command */
	if (m->fifo->len) {
		n = m->fifo->len < max ? m->fifo->len : max;
		memcpy(out, m->fifo->data, n);
		g_byte_array_remove_range(m->fifo, 0, (guint)n);
		return n;
	}
	if (!m->streaming || m->stream_pos >= m->stream_len)
		return 0;
	size_t avail = m->stream_len - m->stream_pos;
	if (m->rate > 0) {
		double t = (double)(g_get_monotonic_time() - m->stream_t0) / 1e6;
		double allowed = m->rate * t - (double)m->stream_pos;
		avail = allowed <= 0 ? 0 : (size_t)allowed < avail ? (size_t)allowed : avail;
	}
	n = avail < max ? avail : max;
	memcpy(out, m->stream + m->stream_pos, n);
	m->stream_pos += n;
	return n;
}

static gboolean has_bytes(struct mockusb *m)
{
	uint8_t dummy;
	size_t pos = m->stream_pos;
	guint flen = m->fifo->len;

	if (flen)
		return g_get_monotonic_time() >= m->fifo_ready_at;
	if (take_bytes(m, &dummy, 1)) {
		m->stream_pos = pos; /* only peeking */
		return TRUE;
	}
	return FALSE;
}

/* Complete a bulk-in URB with what the device has; FTDI: status bytes per packet.
 * status_only: FTDI latency timer expiry with nothing to send. */
static void fill_in(struct mockusb *m, struct murb *u, gboolean status_only)
{
	struct usbdevfs_urb *k = K(u);
	uint8_t *b = u->buf->data;
	size_t len = (size_t)k->buffer_length, done = 0;

	if (m->kind == MOCKUSB_CYTON) {
		while (done + 2 <= len) {
			size_t room = len - done - 2 < FTDI_MAXPACKET - 2 ? len - done - 2
									  : FTDI_MAXPACKET - 2;
			b[done] = 0x01;     /* modem status: fixed bit */
			b[done + 1] = 0x60; /* line status: THRE, TEMT */
			size_t got = status_only ? 0 : take_bytes(m, b + done + 2, room);
			done += 2 + got;
			if (got < FTDI_MAXPACKET - 2)
				break; /* a short packet ends the transfer */
		}
	} else {
		done = take_bytes(m, b, len);
	}
	k->actual_length = (int)done;
	k->status = 0;
	u->ready = TRUE;
}

/* ------------------------------------------------------- usbdevfs model */

static void string_descriptor(uint8_t *out, const char *s, int *len)
{
	size_t n = strlen(s);

	out[0] = (uint8_t)(2 + 2 * n);
	out[1] = 3;
	for (size_t i = 0; i < n; i++) {
		out[2 + 2 * i] = (uint8_t)s[i];
		out[3 + 2 * i] = 0;
	}
	*len = (int)(2 + 2 * n);
}

static void control(struct mockusb *m, struct murb *u)
{
	struct usbdevfs_urb *k = K(u);
	uint8_t *b = u->buf->data;
	uint8_t rt = b[0], req = b[1];
	unsigned value = b[2] | b[3] << 8, index = b[4] | b[5] << 8, wlen = b[6] | b[7] << 8;
	int len = 0;

	logf_locked(m, "ctrl %02x %02x %04x %04x %u", rt, req, value, index, wlen);
	k->status = 0;
	if (rt == 0x80 && req == 6 && value >> 8 == 3) {
		uint8_t d[256];
		const char *strs[] = { NULL,
				       m->kind == MOCKUSB_CYTON ? "FTDI" : "Arduino LLC",
				       m->kind == MOCKUSB_CYTON ? "FT231X USB UART" : "Arduino Due",
				       "DM00CYTN" };
		unsigned i = value & 0xff;

		if (i == 0) {
			d[0] = 4, d[1] = 3, d[2] = 0x09, d[3] = 0x04;
			len = 4;
		} else if (i < 4 && (m->kind == MOCKUSB_CYTON || i < 3)) {
			string_descriptor(d, strs[i], &len);
		} else {
			k->status = -EPIPE;
		}
		if (len > (int)wlen)
			len = (int)wlen;
		memcpy(b + 8, d, (size_t)len);
	} else if (rt == 0x21 && req == 0x20 && wlen == 7) {
		unsigned baud = b[8] | b[9] << 8 | b[10] << 16 | (unsigned)b[11] << 24;
		logf_locked(m, "line coding %u %u %u %u", baud, b[12], b[13], b[14]);
	}
	k->actual_length = len;
	u->ready = TRUE;
}

/* The first URB of this client that can be handed back, removed from the queue. */
static struct murb *next_reapable(struct mockusb *m, UMockdevIoctlClient *client,
				  gboolean latency_expired)
{
	struct murb *first_in = NULL;

	for (GList *l = m->urbs.head; l; l = l->next) {
		struct murb *u = l->data;

		if (u->client != client)
			continue;
		if (u->ready) {
			if (u->shutdown) {
				K(u)->status = -ESHUTDOWN;
				K(u)->actual_length = 0;
			}
			g_queue_delete_link(&m->urbs, l);
			return u;
		}
		if (!first_in && (K(u)->endpoint & 0x80))
			first_in = u;
	}
	if (first_in && !m->unplugged &&
	    (has_bytes(m) || (latency_expired && m->kind == MOCKUSB_CYTON))) {
		fill_in(m, first_in, !has_bytes(m));
		g_queue_remove(&m->urbs, first_in);
		return first_in;
	}
	return NULL;
}

static void complete_reap(UMockdevIoctlClient *client, struct murb *u)
{
	UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
	UMockdevIoctlData *ptr = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), NULL);

	umockdev_ioctl_data_set_ptr(ptr, 0, u->data);
	umockdev_ioctl_client_complete(client, 0, 0);
	g_object_unref(ptr);
	murb_free(u);
}

struct park {
	struct mockusb *m;
	UMockdevIoctlClient *client;
};

static gboolean park_expired(gpointer data)
{
	struct park *p = data;
	struct mockusb *m = p->m;

	lock(m);
	struct murb *u = next_reapable(m, p->client, TRUE);
	int err = m->unplugged ? ENODEV : EAGAIN;
	unlock(m);
	if (u)
		complete_reap(p->client, u);
	else
		umockdev_ioctl_client_complete(p->client, -1, err);
	g_object_unref(p->client);
	g_free(p);
	return G_SOURCE_REMOVE;
}

static void drop_other_clients(struct mockusb *m, UMockdevIoctlClient *client)
{
	if (m->client == client)
		return;
	for (GList *l = m->urbs.head; l;) {
		GList *next = l->next;
		struct murb *u = l->data;

		if (u->client != client) {
			g_queue_delete_link(&m->urbs, l);
			murb_free(u);
		}
		l = next;
	}
	m->client = client;
}

static gboolean handle_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client,
			     gpointer ud)
{
	struct mockusb *m = ud;
	gulong request = umockdev_ioctl_client_get_request(client);
	UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);

	lock(m);
	if (m->unplugged && request != USBDEVFS_REAPURB && request != USBDEVFS_REAPURBNDELAY) {
		unlock(m);
		umockdev_ioctl_client_complete(client, -1, ENODEV);
		return TRUE;
	}
	switch (request) {
	case USBDEVFS_GET_CAPABILITIES: {
		UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), NULL);
		*(guint32 *)d->data = USBDEVFS_CAP_BULK_CONTINUATION | USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
				      USBDEVFS_CAP_REAP_AFTER_DISCONNECT | USBDEVFS_CAP_ZERO_PACKET;
		g_object_unref(d);
		unlock(m);
		umockdev_ioctl_client_complete(client, 0, 0);
		return TRUE;
	}
	case USBDEVFS_DISCONNECT_CLAIM: {
		UMockdevIoctlData *d = umockdev_ioctl_data_resolve(
			arg, 0, sizeof(struct usbdevfs_disconnect_claim), NULL);
		logf_locked(m, "detach %u", ((struct usbdevfs_disconnect_claim *)d->data)->interface);
		logf_locked(m, "claim %u", ((struct usbdevfs_disconnect_claim *)d->data)->interface);
		g_object_unref(d);
		unlock(m);
		umockdev_ioctl_client_complete(client, 0, 0);
		return TRUE;
	}
	case USBDEVFS_CLAIMINTERFACE:
	case USBDEVFS_RELEASEINTERFACE: {
		UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(unsigned), NULL);
		logf_locked(m, "%s %u", request == USBDEVFS_CLAIMINTERFACE ? "claim" : "release",
			    *(unsigned *)d->data);
		g_object_unref(d);
		unlock(m);
		umockdev_ioctl_client_complete(client, 0, 0);
		return TRUE;
	}
	case USBDEVFS_GETDRIVER:
	case USBDEVFS_IOCTL:
		/* no kernel driver bound (any more) */
		unlock(m);
		umockdev_ioctl_client_complete(client, -1, ENODATA);
		return TRUE;
	case USBDEVFS_CLEAR_HALT:
	case USBDEVFS_RESETEP:
		unlock(m);
		umockdev_ioctl_client_complete(client, 0, 0);
		return TRUE;
	case USBDEVFS_SUBMITURB: {
		struct murb *u = g_new0(struct murb, 1);

		drop_other_clients(m, client);
		u->data = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), NULL);
		if (u->data)
			u->buf = umockdev_ioctl_data_resolve(
				u->data, G_STRUCT_OFFSET(struct usbdevfs_urb, buffer),
				(gsize)K(u)->buffer_length, NULL);
		if (!u->buf) {
			/* cannot read the client's memory: it is gone (killed mid-ioctl) */
			g_clear_object(&u->data);
			g_free(u);
			unlock(m);
			umockdev_ioctl_client_complete(client, -1, EFAULT);
			return TRUE;
		}
		u->client = client; /* u keeps the references resolve() returned */
		if (K(u)->type == USBDEVFS_URB_TYPE_CONTROL) {
			control(m, u);
		} else if (!(K(u)->endpoint & 0x80)) {
			bulk_out(m, u->buf->data, (size_t)K(u)->buffer_length);
			K(u)->actual_length = K(u)->buffer_length;
			K(u)->status = 0;
			u->ready = TRUE;
		}
		g_queue_push_tail(&m->urbs, u);
		unlock(m);
		umockdev_ioctl_client_complete(client, 0, 0);
		return TRUE;
	}
	case USBDEVFS_DISCARDURB: {
		gulong addr = *(gulong *)arg->data;
		gboolean found = FALSE;

		for (GList *l = m->urbs.head; l; l = l->next) {
			struct murb *u = l->data;
			if (u->data->client_addr == addr && !u->ready) {
				K(u)->status = -ENOENT;
				K(u)->actual_length = 0;
				u->ready = TRUE;
				found = TRUE;
				break;
			}
		}
		unlock(m);
		umockdev_ioctl_client_complete(client, found ? 0 : -1, found ? 0 : EINVAL);
		return TRUE;
	}
	case USBDEVFS_REAPURB:
	case USBDEVFS_REAPURBNDELAY: {
		struct murb *u = next_reapable(m, client, FALSE);
		unlock(m);
		if (u) {
			complete_reap(client, u);
		} else {
			/* wait a little for something to complete (see mockusb.h) */
			struct park *p = g_new0(struct park, 1);
			GSource *src = g_timeout_source_new(PARK_MS);

			p->m = m;
			p->client = g_object_ref(client);
			g_source_set_callback(src, park_expired, p, NULL);
			g_source_attach(src, g_main_context_get_thread_default());
			g_source_unref(src);
		}
		return TRUE;
	}
	default:
		unlock(m);
		umockdev_ioctl_client_complete(client, -1, ENOTTY);
		return TRUE;
	}
}

/* --------------------------------------------------------------- testbed */

static char *description(struct mockusb *m)
{
	char from[3][32], to[3][32];
	char *s = g_strdup(m->desc);

	snprintf(from[0], 32, "usb/001/%03u", FIRST_DEVNUM);
	snprintf(to[0], 32, "usb/001/%03u", m->devnum);
	snprintf(from[1], 32, "DEVNUM=%03u", FIRST_DEVNUM);
	snprintf(to[1], 32, "DEVNUM=%03u", m->devnum);
	snprintf(from[2], 32, "devnum=%u\\n", FIRST_DEVNUM);
	snprintf(to[2], 32, "devnum=%u\\n", m->devnum);
	for (int i = 0; i < 3; i++) {
		char **parts = g_strsplit(s, from[i], -1);
		g_free(s);
		s = g_strjoinv(to[i], parts);
		g_strfreev(parts);
	}
	return s;
}

static void plug(struct mockusb *m)
{
	GError *err = NULL;
	char *desc = description(m);

	snprintf(m->devnode, sizeof(m->devnode), "/dev/bus/usb/001/%03u", m->devnum);
	/* attach first, so that the device can be opened as soon as "add" is seen */
	if (!umockdev_testbed_attach_ioctl(m->tb, m->devnode, m->handler, &err))
		g_error("attach_ioctl %s: %s", m->devnode, err->message);
	if (!umockdev_testbed_add_from_string(m->tb, desc, &err))
		g_error("cannot add the device: %s", err->message);
	g_free(desc);
}

struct mockusb *mockusb_new(enum mockusb_kind kind, const char *path)
{
	struct mockusb *m = g_new0(struct mockusb, 1);
	GError *err = NULL;
	gsize len;

	m->kind = kind;
	if (!g_file_get_contents(path, &m->desc, &len, &err))
		g_error("%s: %s", path, err->message);
	const char *p = strstr(m->desc, "P: ");
	char devpath[240];
	if (!p || sscanf(p + 3, "%239s", devpath) != 1)
		g_error("%s: no P: line", path);
	snprintf(m->syspath, sizeof(m->syspath), "/sys%s", devpath);
	pthread_mutex_init(&m->lock, NULL);
	g_queue_init(&m->urbs);
	m->log = g_string_new(NULL);
	m->fifo = g_byte_array_new();
	m->devnum = FIRST_DEVNUM;
	m->tb = umockdev_testbed_new();
	if (!umockdev_in_mock_environment())
		g_error("run this under umockdev-wrapper (LD_PRELOAD=libumockdev-preload.so)");
	m->root = umockdev_testbed_get_root_dir(m->tb);
	m->handler = umockdev_ioctl_base_new();
	g_signal_connect(m->handler, "handle-ioctl", G_CALLBACK(handle_ioctl), m);
	firmware_boot(m);
	plug(m);
	return m;
}

void mockusb_free(struct mockusb *m)
{
	if (!m)
		return;
	g_clear_object(&m->tb);
	g_clear_object(&m->handler);
	while (!g_queue_is_empty(&m->urbs))
		murb_free(g_queue_pop_head(&m->urbs));
	g_string_free(m->log, TRUE);
	g_byte_array_free(m->fifo, TRUE);
	g_free(m->stream);
	g_free(m->desc);
	g_free(m->root);
	pthread_mutex_destroy(&m->lock);
	g_free(m);
}

void mockusb_set_daisy(struct mockusb *m, bool daisy)
{
	lock(m);
	m->daisy = daisy;
	unlock(m);
}

void mockusb_set_silent(struct mockusb *m, bool silent)
{
	lock(m);
	m->silent = silent;
	unlock(m);
}

void mockusb_set_stream(struct mockusb *m, const uint8_t *bytes, size_t len, double bytes_per_s)
{
	lock(m);
	g_free(m->stream);
	m->stream = g_memdup2(bytes, len);
	m->stream_len = len;
	m->stream_pos = 0;
	m->rate = bytes_per_s;
	m->stream_t0 = g_get_monotonic_time();
	unlock(m);
}

size_t mockusb_served(struct mockusb *m)
{
	lock(m);
	size_t n = m->stream_pos;
	unlock(m);
	return n;
}

void mockusb_set_reply_delay(struct mockusb *m, unsigned ms)
{
	lock(m);
	m->reply_delay_us = (gint64)ms * 1000;
	unlock(m);
}

size_t mockusb_unread(struct mockusb *m)
{
	lock(m);
	size_t n = m->fifo->len;
	unlock(m);
	return n;
}

bool mockusb_streaming(struct mockusb *m)
{
	lock(m);
	bool s = m->streaming;
	unlock(m);
	return s;
}

void mockusb_unplug(struct mockusb *m)
{
	lock(m);
	if (m->unplugged) {
		unlock(m);
		return;
	}
	m->unplugged = TRUE;
	m->streaming = FALSE;
	for (GList *l = m->urbs.head; l; l = l->next) {
		struct murb *u = l->data;
		if (!u->ready)
			u->ready = u->shutdown = TRUE;
	}
	logf_locked(m, "unplugged");
	unlock(m);
	/* umockdev < 0.18 removes without telling anyone: send the uevent ourselves
	 * (newer ones send a second "remove", which libusb ignores) */
	umockdev_testbed_uevent(m->tb, m->syspath, "remove");
	umockdev_testbed_remove_device(m->tb, m->syspath);
}

void mockusb_replug(struct mockusb *m)
{
	lock(m);
	m->unplugged = FALSE;
	m->devnum++;
	firmware_boot(m);
	logf_locked(m, "replugged");
	unlock(m);
	plug(m);
}

const char *mockusb_devnode(struct mockusb *m)
{
	return m->devnode;
}

size_t mockusb_log(struct mockusb *m, char *buf, size_t size)
{
	lock(m);
	size_t n = m->log->len;
	if (size) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(buf, m->log->str, c);
		buf[c] = 0;
	}
	unlock(m);
	return n;
}

void mockusb_clear_log(struct mockusb *m)
{
	lock(m);
	g_string_truncate(m->log, 0);
	unlock(m);
}

int mockusb_hackeeg_reg(struct mockusb *m, unsigned reg)
{
	lock(m);
	int v = reg < 256 ? m->regs[reg] : -1;
	unlock(m);
	return v;
}

const char *mockusb_root(struct mockusb *m)
{
	return m->root;
}
