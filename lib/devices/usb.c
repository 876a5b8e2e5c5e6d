/* SPDX-License-Identifier: MIT */
/*
 * emg_usb: libusb context, event thread, device selection, hotplug and the
 * async bulk-in transfer pool shared by the USB amplifier drivers.
 *
 * Everything libusb is done on one thread (the "event thread"), so no
 * libusb object is touched concurrently: opening and configuring the
 * device (synchronous transfers, called outside of any libusb callback),
 * transfer completions, hotplug callbacks.  Other threads only set the
 * stop flag and call libusb_interrupt_event_handler().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ads1299.h"
#include "usb.h"
#include "../muscles.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define RETRY_NS (2 * SEC)        /* device present but not usable: try again */
#define POLL_NS (1 * SEC)         /* no hotplug support: look for the device */
#define IDLE_NS (1 * SEC)         /* longest sleep in the event loop */
#define CLOSE_WAIT_NS (2 * SEC)   /* longest wait for cancelled transfers */
#define MAX_ERRORS_IN_ROW 20      /* transfer errors before the device is reopened */
#define STALL_NS (2 * SEC)        /* streaming but no samples: reopen and set up again */

enum phase { P_IDLE, P_STREAMING, P_CLOSING };

struct emg_usb {
	const struct emg_usb_driver *drv;
	void *drv_ud;
	libusb_context *ctx;
	char selector[64];
	emg_log_fn *log_fn;
	void *log_ud;
	bool hotplug;
	libusb_hotplug_callback_handle hp;

	pthread_t thread;
	bool running;
	atomic_bool stop;
	struct emg_device_callbacks cb;

	pthread_mutex_t ident_lock;  /* serial and port: read by info() on other threads */
	char serial[64];
	char port[32];

	/* event thread only */
	enum phase phase;
	libusb_device_handle *h;
	uint32_t claimed;            /* interfaces claimed, bit per number */
	struct libusb_transfer *xfer[EMG_USB_MAX_TRANSFERS];
	uint8_t *buf[EMG_USB_MAX_TRANSFERS];
	struct emg_usb_stream stream;
	unsigned inflight;
	unsigned errors_in_row;
	uint64_t alive_ns;           /* last time the driver decoded samples */
	bool arrived;
	uint64_t next_try;
	uint64_t close_deadline;
	int reported;                /* last state reported, -1 = none */
	const char *reported_why;
	int logged_problem;          /* last problem logged (negative errno), 0 = none */
	const char *logged_why;
};

/* ---------------------------------------------------------------- helpers */

void emg_usb_log(const struct emg_usb *u, int prio, const char *fmt, ...)
{
	char msg[EMG_LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emg_log_to(u->log_fn, u->log_ud, prio, "%s: %s", u->drv->name, msg);
}

int emg_usb_errno(int e)
{
	switch (e) {
	case LIBUSB_SUCCESS: return 0;
	case LIBUSB_ERROR_IO: return -EIO;
	case LIBUSB_ERROR_INVALID_PARAM: return -EINVAL;
	case LIBUSB_ERROR_ACCESS: return -EACCES;
	case LIBUSB_ERROR_NO_DEVICE: return -ENODEV;
	case LIBUSB_ERROR_NOT_FOUND: return -ENOENT;
	case LIBUSB_ERROR_BUSY: return -EBUSY;
	case LIBUSB_ERROR_TIMEOUT: return -ETIMEDOUT;
	case LIBUSB_ERROR_OVERFLOW: return -EOVERFLOW;
	case LIBUSB_ERROR_PIPE: return -EPIPE;
	case LIBUSB_ERROR_INTERRUPTED: return -EINTR;
	case LIBUSB_ERROR_NO_MEM: return -ENOMEM;
	case LIBUSB_ERROR_NOT_SUPPORTED: return -ENOTSUP;
	default: return -EIO;
	}
}

int emg_usb_control(libusb_device_handle *h, uint8_t type, uint8_t req, uint16_t value,
		    uint16_t index, void *data, uint16_t len, unsigned timeout_ms)
{
	int r = libusb_control_transfer(h, type, req, value, index, data, len, timeout_ms);

	return r < 0 ? emg_usb_errno(r) : r;
}

int emg_usb_write(libusb_device_handle *h, uint8_t ep, const void *buf, size_t len,
		  unsigned timeout_ms)
{
	const uint8_t *p = buf;

	while (len) {
		int done = 0;
		int r = libusb_bulk_transfer(h, ep, (uint8_t *)p, (int)len, &done, timeout_ms);

		if (r < 0)
			return emg_usb_errno(r);
		if (done <= 0)
			return -EIO;
		p += done;
		len -= (size_t)done;
	}
	return 0;
}

int emg_usb_read(libusb_device_handle *h, uint8_t ep, void *buf, size_t cap,
		 unsigned timeout_ms)
{
	int done = 0;
	int r = libusb_bulk_transfer(h, ep, buf, (int)cap, &done, timeout_ms);

	if (r == LIBUSB_ERROR_TIMEOUT)
		return done;
	return r < 0 ? emg_usb_errno(r) : done;
}

int emg_usb_find_bulk(libusb_device_handle *h, int iface_class, uint8_t *ep_in,
		      uint8_t *ep_out, size_t *maxpacket)
{
	struct libusb_config_descriptor *cfg;
	int found = -ENOENT;

	if (libusb_get_active_config_descriptor(libusb_get_device(h), &cfg) < 0)
		return -EIO;
	for (int i = 0; i < cfg->bNumInterfaces && found < 0; i++) {
		const struct libusb_interface *itf = &cfg->interface[i];

		if (itf->num_altsetting < 1)
			continue;
		const struct libusb_interface_descriptor *alt = &itf->altsetting[0];
		uint8_t in = 0, out = 0;
		size_t mp = 0;

		if (iface_class >= 0 && alt->bInterfaceClass != iface_class)
			continue;
		for (int e = 0; e < alt->bNumEndpoints; e++) {
			const struct libusb_endpoint_descriptor *ep = &alt->endpoint[e];

			if ((ep->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_BULK)
				continue;
			if ((ep->bEndpointAddress & LIBUSB_ENDPOINT_IN) && !in) {
				in = ep->bEndpointAddress;
				mp = ep->wMaxPacketSize & 0x7FF;
			} else if (!(ep->bEndpointAddress & LIBUSB_ENDPOINT_IN) && !out) {
				out = ep->bEndpointAddress;
			}
		}
		if (in && out) {
			*ep_in = in;
			*ep_out = out;
			*maxpacket = mp ? mp : 64;
			found = alt->bInterfaceNumber;
		}
	}
	libusb_free_config_descriptor(cfg);
	return found;
}

int emg_usb_find_iface(libusb_device_handle *h, int iface_class)
{
	struct libusb_config_descriptor *cfg;
	int found = -ENOENT;

	if (libusb_get_active_config_descriptor(libusb_get_device(h), &cfg) < 0)
		return -EIO;
	for (int i = 0; i < cfg->bNumInterfaces && found < 0; i++)
		if (cfg->interface[i].num_altsetting > 0 &&
		    cfg->interface[i].altsetting[0].bInterfaceClass == iface_class)
			found = cfg->interface[i].altsetting[0].bInterfaceNumber;
	libusb_free_config_descriptor(cfg);
	return found;
}

int emg_usb_claim(struct emg_usb *u, libusb_device_handle *h, int iface)
{
	int r = libusb_claim_interface(h, iface);

	if (r == LIBUSB_SUCCESS) {
		if (iface < 32)
			u->claimed |= 1u << iface;
		return 0;
	}
	if (r == LIBUSB_ERROR_BUSY) {
		if (u->logged_problem != -EBUSY) {
			emg_usb_log(u, LOG_ERR, "%s at %s is in use by another program (another emgd, the "
				    "OpenBCI GUI, a serial terminal?); close it, emgd retries every %u s",
				    u->drv->what, u->port, (unsigned)(RETRY_NS / SEC));
			u->logged_problem = -EBUSY;
		}
	} else if (r != LIBUSB_ERROR_NO_DEVICE) {
		emg_usb_log(u, LOG_ERR, "cannot claim interface %d of %s: %s", iface, u->drv->what,
			    libusb_strerror(r));
	}
	return emg_usb_errno(r);
}

void emg_usb_ident(struct emg_usb *u, char *serial, size_t serial_size, char *port,
		   size_t port_size)
{
	pthread_mutex_lock(&u->ident_lock);
	if (serial)
		snprintf(serial, serial_size, "%s", u->serial);
	if (port)
		snprintf(port, port_size, "%s", u->port);
	pthread_mutex_unlock(&u->ident_lock);
}

void emg_usb_alive(struct emg_usb *u, uint64_t t_ns)
{
	u->alive_ns = t_ns;
}

bool emg_usb_stopping(const struct emg_usb *u)
{
	return atomic_load(&((struct emg_usb *)u)->stop);
}

static void report(struct emg_usb *u, enum emg_device_state st, const char *why)
{
	if (u->reported == (int)st && u->reported_why == why)
		return;
	u->reported = (int)st;
	u->reported_why = why;
	if (u->cb.state)
		u->cb.state(u->cb.ud, st, why);
}

/* Log a problem once until it changes or the device streams again. */
static bool first_time(struct emg_usb *u, int problem, const char *why)
{
	if (u->logged_problem == problem && u->logged_why == why)
		return false;
	u->logged_problem = problem;
	u->logged_why = why;
	return true;
}

/* ------------------------------------------------------- finding devices */

static void port_path(libusb_device *dev, char *out, size_t size)
{
	uint8_t ports[8];
	int n = libusb_get_port_numbers(dev, ports, sizeof(ports));
	size_t len = (size_t)snprintf(out, size, "%u", libusb_get_bus_number(dev));

	for (int i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%c%u", i ? '.' : '-', ports[i]);
	if (n <= 0 && len < size)
		snprintf(out + len, size - len, "-0");
}

/* Find and open the device; 0 and *out, or a negative errno and a static *why. */
static int find_device(struct emg_usb *u, libusb_device_handle **out, const char **why)
{
	libusb_device **list;
	ssize_t n = libusb_get_device_list(u->ctx, &list);
	int problem = -ENODEV;
	char denied[32] = "", denied_port[32] = "";

	*why = "amplifier not connected";
	if (n < 0) {
		*why = "cannot list USB devices";
		return emg_usb_errno((int)n);
	}
	for (ssize_t i = 0; i < n; i++) {
		libusb_device *dev = list[i];
		struct libusb_device_descriptor desc;
		libusb_device_handle *h;
		char port[32], serial[64] = "";
		int r;

		if (libusb_get_device_descriptor(dev, &desc) < 0 || desc.idVendor != u->drv->vid ||
		    desc.idProduct != u->drv->pid)
			continue;
		port_path(dev, port, sizeof(port));
		bool port_match = u->selector[0] && !strcmp(u->selector, port);

		r = libusb_open(dev, &h);
		if (r == LIBUSB_ERROR_ACCESS) {
			if (!u->selector[0] || port_match || !denied[0]) {
				snprintf(denied, sizeof(denied), "/dev/bus/usb/%03u/%03u",
					 libusb_get_bus_number(dev), libusb_get_device_address(dev));
				snprintf(denied_port, sizeof(denied_port), "%s", port);
			}
			problem = -EACCES;
			continue;
		}
		if (r < 0) {
			if (problem == -ENODEV)
				problem = emg_usb_errno(r);
			continue;
		}
		if (desc.iSerialNumber) {
			r = libusb_get_string_descriptor_ascii(h, desc.iSerialNumber,
							       (unsigned char *)serial, sizeof(serial));
			if (r < 0)
				serial[0] = 0;
		}
		if (u->selector[0] && !port_match && strcmp(u->selector, serial)) {
			libusb_close(h);
			continue;
		}
		pthread_mutex_lock(&u->ident_lock);
		snprintf(u->serial, sizeof(u->serial), "%s", serial);
		snprintf(u->port, sizeof(u->port), "%s", port);
		pthread_mutex_unlock(&u->ident_lock);
		libusb_free_device_list(list, 1);
		*out = h;
		return 0;
	}
	libusb_free_device_list(list, 1);

	const char *sel_pre = u->selector[0] ? " matching serial or port \"" : "";
	const char *sel_post = u->selector[0] ? "\"" : "";
	if (problem == -EACCES) {
		*why = "permission denied on the USB device";
		if (first_time(u, problem, *why))
			emg_usb_log(u, LOG_ERR,
				    "permission denied on %s (%s %04x:%04x at %s): install "
				    "70-emgd.rules in /etc/udev/rules.d, add the user to group emg "
				    "(the emgd service has it), then replug the device",
				    denied, u->drv->what, u->drv->vid, u->drv->pid, denied_port);
	} else if (problem == -ENODEV) {
		if (first_time(u, problem, *why))
			emg_usb_log(u, LOG_WARNING,
				    "no %s (%04x:%04x)%s%s%s connected; waiting for it to be "
				    "plugged in (lsusb -d %04x:%04x lists it)",
				    u->drv->what, u->drv->vid, u->drv->pid, sel_pre, u->selector,
				    sel_post, u->drv->vid, u->drv->pid);
	} else {
		*why = "cannot open the USB device";
		if (first_time(u, problem, *why))
			emg_usb_log(u, LOG_ERR, "cannot open %s (%04x:%04x): %s", u->drv->what,
				    u->drv->vid, u->drv->pid, strerror(-problem));
	}
	return problem;
}

/* ------------------------------------------------------------- transfers */

static void lost(struct emg_usb *u, const char *why);

static void xfer_cb(struct libusb_transfer *t)
{
	struct emg_usb *u = t->user_data;

	if (u->phase != P_STREAMING) {
		u->inflight--;
		return;
	}
	switch (t->status) {
	case LIBUSB_TRANSFER_COMPLETED:
		u->errors_in_row = 0;
		if (t->actual_length > 0)
			u->drv->data(u->drv_ud, t->buffer, (size_t)t->actual_length, emg_now_ns());
		break;
	case LIBUSB_TRANSFER_NO_DEVICE:
		u->inflight--;
		lost(u, "amplifier unplugged");
		return;
	case LIBUSB_TRANSFER_CANCELLED:
		u->inflight--;
		return;
	default: /* TIMED_OUT, STALL, OVERFLOW, ERROR */
		if (++u->errors_in_row > MAX_ERRORS_IN_ROW) {
			u->inflight--;
			lost(u, "USB transfer errors; reopening the device");
			return;
		}
		break;
	}
	int r = libusb_submit_transfer(t);
	if (r < 0) {
		u->inflight--;
		lost(u, r == LIBUSB_ERROR_NO_DEVICE ? "amplifier unplugged"
						    : "USB transfer errors; reopening the device");
	}
}

/* Stop streaming: cancel every transfer, close when all are back. */
static void cancel_all(struct emg_usb *u)
{
	u->phase = P_CLOSING;
	u->close_deadline = emg_now_ns() + CLOSE_WAIT_NS;
	for (unsigned i = 0; i < u->stream.ntransfers; i++)
		libusb_cancel_transfer(u->xfer[i]); /* fails harmlessly for finished ones */
}

/* The streaming device is gone or broken: say so, cancel, reopen later. */
static void lost(struct emg_usb *u, const char *why)
{
	if (u->phase != P_STREAMING)
		return;
	cancel_all(u);
	report(u, EMG_DEVICE_WAITING, why);
}

static void finish_close(struct emg_usb *u)
{
	if (u->inflight)
		emg_usb_log(u, LOG_WARNING, "%u transfers did not come back after cancelling; closing anyway",
			    u->inflight);
	for (int i = 0; i < 32; i++)
		if (u->claimed & (1u << i))
			libusb_release_interface(u->h, i); /* re-attaches the kernel driver */
	u->claimed = 0;
	libusb_close(u->h);
	u->h = NULL;
	u->inflight = 0;
	u->phase = P_IDLE;
	u->next_try = emg_now_ns() + 200 * MS;
}

static void connect_device(struct emg_usb *u)
{
	libusb_device_handle *h = NULL;
	const char *why = NULL;
	int r = find_device(u, &h, &why);

	if (r < 0) {
		report(u, EMG_DEVICE_WAITING, why);
		u->next_try = emg_now_ns() + (r == -ENODEV && u->hotplug ? 5 * SEC
					      : r == -ENODEV ? POLL_NS : RETRY_NS);
		return;
	}
	libusb_set_auto_detach_kernel_driver(h, 1);
	u->h = h;
	u->claimed = 0;
	struct emg_usb_stream s = { 0 };
	why = NULL;
	r = u->drv->setup(u->drv_ud, u, h, &s, &why);
	if (r == 0 && (s.ntransfers < 1 || s.ntransfers > EMG_USB_MAX_TRANSFERS ||
		       s.transfer_len < 1 || s.transfer_len > u->drv->max_transfer)) {
		why = "driver asked for an impossible transfer size";
		r = -EINVAL;
	}
	if (r < 0) {
		if (!why)
			why = "device setup failed";
		if (r != -ENODEV && first_time(u, r, why))
			emg_usb_log(u, LOG_WARNING, "%s at %s: %s (%s); trying again every %u s", u->drv->what,
				    u->port, why, strerror(-r), (unsigned)(RETRY_NS / SEC));
		for (int i = 0; i < 32; i++)
			if (u->claimed & (1u << i))
				libusb_release_interface(h, i);
		u->claimed = 0;
		libusb_close(h);
		u->h = NULL;
		report(u, EMG_DEVICE_WAITING, why);
		u->next_try = emg_now_ns() + (r == -ENODEV ? 200 * MS : RETRY_NS);
		return;
	}
	u->stream = s;
	u->phase = P_STREAMING;
	u->errors_in_row = 0;
	u->alive_ns = emg_now_ns();
	u->inflight = 0;
	for (unsigned i = 0; i < s.ntransfers; i++) {
		libusb_fill_bulk_transfer(u->xfer[i], h, s.ep_in, u->buf[i], (int)s.transfer_len,
					  xfer_cb, u, 0);
		r = libusb_submit_transfer(u->xfer[i]);
		if (r < 0) {
			lost(u, r == LIBUSB_ERROR_NO_DEVICE ? "amplifier unplugged"
							    : "cannot submit USB transfers");
			return;
		}
		u->inflight++;
	}
	u->logged_problem = 0;
	u->logged_why = NULL;
	emg_usb_log(u, LOG_NOTICE, "streaming from %s%s%s at USB %s (%u x %zu-byte transfers)",
		    u->drv->what, u->serial[0] ? " serial " : "", u->serial, u->port,
		    s.ntransfers, s.transfer_len);
	report(u, EMG_DEVICE_STREAMING, "amplifier connected");
}

/* --------------------------------------------------------------- hotplug */

static int hotplug_cb(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event ev,
		      void *ud)
{
	struct emg_usb *u = ud;

	emg_usb_log(u, LOG_DEBUG, "hotplug: %04x:%04x %s at bus %u address %u", u->drv->vid, u->drv->pid,
		    ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? "arrived" : "left",
		    libusb_get_bus_number(dev), libusb_get_device_address(dev));
	if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
		u->arrived = true;
	else if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT && u->h && libusb_get_device(u->h) == dev)
		lost(u, "amplifier unplugged");
	return 0;
}

/* ---------------------------------------------------------- event thread */

static void handle_events(struct emg_usb *u, uint64_t wait_ns)
{
	struct timeval tv = {
		.tv_sec = (time_t)(wait_ns / SEC),
		.tv_usec = (suseconds_t)(wait_ns % SEC / 1000),
	};
	int r = libusb_handle_events_timeout_completed(u->ctx, &tv, NULL);

	if (r < 0 && r != LIBUSB_ERROR_INTERRUPTED && r != LIBUSB_ERROR_TIMEOUT) {
		/* Should not happen; never turn it into a busy loop. */
		struct timespec ts = { 0, 10 * (long)MS };
		nanosleep(&ts, NULL);
	}
}

static void *usb_thread(void *arg)
{
	struct emg_usb *u = arg;

	u->phase = P_IDLE;
	u->next_try = 0;
	while (!atomic_load(&u->stop)) {
		uint64_t now = emg_now_ns();
		uint64_t wait = IDLE_NS;

		if (u->phase == P_IDLE && (u->arrived || now >= u->next_try)) {
			u->arrived = false;
			connect_device(u);
			continue;
		}
		if (u->phase == P_CLOSING && (u->inflight == 0 || now >= u->close_deadline)) {
			finish_close(u);
			continue;
		}
		if (u->phase == P_STREAMING && now - u->alive_ns > STALL_NS) {
			if (first_time(u, -ETIMEDOUT, "stall"))
				emg_usb_log(u, LOG_WARNING, "no samples from %s for %u s (board switched off, out "
					    "of range, or hung?); setting it up again",
					    u->drv->what, (unsigned)(STALL_NS / SEC));
			lost(u, "no samples from the amplifier");
			continue;
		}
		if (u->phase == P_IDLE && u->next_try - now < wait)
			wait = u->next_try - now;
		if (u->phase == P_CLOSING)
			wait = 50 * MS;
		handle_events(u, wait);
	}
	/* Shut down: stop the device, get every transfer back, close. */
	bool halted = u->phase == P_STREAMING;
	if (halted) {
		if (u->drv->halt)
			u->drv->halt(u->drv_ud, u, u->h);
		cancel_all(u); /* a deliberate stop: no state change reported */
	}
	while (u->phase == P_CLOSING && u->inflight && emg_now_ns() < u->close_deadline)
		handle_events(u, 50 * MS);
	if (u->phase == P_CLOSING && !u->inflight && halted && u->drv->drain)
		u->drv->drain(u->drv_ud, u, u->h);
	if (u->phase == P_CLOSING)
		finish_close(u);
	return NULL;
}

/* ------------------------------------------------------------------- api */

int emg_usb_new(struct emg_usb **out, const struct emg_usb_driver *drv, void *drv_ud,
		const struct emg_device_config *cfg)
{
	struct emg_usb *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	u->drv = drv;
	u->drv_ud = drv_ud;
	u->log_fn = cfg->log;
	u->log_ud = cfg->log_ud;
	u->reported = -1;
	atomic_init(&u->stop, false);
	pthread_mutex_init(&u->ident_lock, NULL);
	if (cfg->serial)
		snprintf(u->selector, sizeof(u->selector), "%s", cfg->serial);
	r = libusb_init(&u->ctx);
	if (r < 0) {
		emg_usb_log(u, LOG_ERR, "cannot initialise libusb: %s", libusb_strerror(r));
		pthread_mutex_destroy(&u->ident_lock);
		free(u);
		return emg_usb_errno(r);
	}
	for (unsigned i = 0; i < EMG_USB_MAX_TRANSFERS; i++) {
		u->xfer[i] = libusb_alloc_transfer(0);
		u->buf[i] = malloc(drv->max_transfer);
		if (!u->xfer[i] || !u->buf[i]) {
			emg_usb_free(u);
			return -ENOMEM;
		}
	}
	/* EMGD_USB_NO_HOTPLUG=1: poll instead (debugging; containers without udev events) */
	const char *nohp = getenv("EMGD_USB_NO_HOTPLUG");
	if (!(nohp && *nohp && strcmp(nohp, "0")) && libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
		r = libusb_hotplug_register_callback(
			u->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
			0, drv->vid, drv->pid, LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb, u, &u->hp);
		u->hotplug = r == LIBUSB_SUCCESS;
	}
	if (!u->hotplug)
		emg_usb_log(u, LOG_INFO, "no USB hotplug support; looking for the device every %u s",
			    (unsigned)(POLL_NS / SEC));

	/* Look once now, so that the log says at start-up what is there. */
	libusb_device_handle *h;
	const char *why;
	if (find_device(u, &h, &why) == 0) {
		emg_usb_log(u, LOG_INFO, "found %s%s%s at USB %s", drv->what, u->serial[0] ? " serial " : "",
			    u->serial, u->port);
		libusb_close(h);
	}
	*out = u;
	return 0;
}

int emg_usb_start(struct emg_usb *u, const struct emg_device_callbacks *cb)
{
	int r;

	if (u->running)
		return -EBUSY;
	u->cb = *cb;
	u->reported = -1;
	u->reported_why = NULL;
	atomic_store(&u->stop, false);
	r = pthread_create(&u->thread, NULL, usb_thread, u);
	if (r)
		return -r;
	pthread_setname_np(u->thread, "emgd-usb");
	u->running = true;
	return 0;
}

void emg_usb_stop(struct emg_usb *u)
{
	if (!u->running)
		return;
	atomic_store(&u->stop, true);
	libusb_interrupt_event_handler(u->ctx);
	pthread_join(u->thread, NULL);
	u->running = false;
}

void emg_usb_free(struct emg_usb *u)
{
	if (!u)
		return;
	emg_usb_stop(u);
	if (u->hotplug)
		libusb_hotplug_deregister_callback(u->ctx, u->hp);
	for (unsigned i = 0; i < EMG_USB_MAX_TRANSFERS; i++) {
		libusb_free_transfer(u->xfer[i]);
		free(u->buf[i]);
	}
	libusb_exit(u->ctx);
	pthread_mutex_destroy(&u->ident_lock);
	free(u);
}

/* ---- the device side every USB amplifier driver shares ---- */

const char *const emg_ads1299_gain_names[] = { "1", "2", "4", "6", "8", "12", "24", NULL };

int emg_usb_dev_params(const struct emg_device_config *cfg, const char *name,
		       unsigned max_channels, const char *max_why, unsigned *channels,
		       unsigned *gain)
{
	*gain = cfg->gain ? cfg->gain : EMG_ADS1299_DEFAULT_GAIN;
	*channels = cfg->channels;
	if (!*channels)
		*channels = cfg->muscles ? emg_muscles_channels_needed(cfg->muscles) : 8;
	if (!*channels)
		*channels = 8;
	if (*channels > max_channels) {
		emg_log_to(cfg->log, cfg->log_ud, LOG_ERR, "%s: %u channels: %s", name, *channels, max_why);
		return -EINVAL;
	}
	if (emg_ads1299_gain_index(*gain) < 0) {
		emg_log_to(cfg->log, cfg->log_ud, LOG_ERR, "%s: gain %u: the ADS1299 allows 1, 2, 4, 6, 8, 12 or 24",
			       name, *gain);
		return -EINVAL;
	}
	return 0;
}

void emg_usb_dev_emit(void *ud, const float *frames, unsigned n, uint64_t seq, uint32_t lost)
{
	struct emg_usb_dev *d = ud;

	d->cb.data(d->cb.ud, frames, n, seq, lost, d->t_ns);
	emg_usb_alive(d->usb, d->t_ns);
}

int emg_usb_dev_start(struct emg_device *dev, const struct emg_device_callbacks *cb)
{
	struct emg_usb_dev *d = (struct emg_usb_dev *)dev;

	if (!cb || !cb->data)
		return -EINVAL;
	d->cb = *cb;
	return emg_usb_start(d->usb, cb);
}

void emg_usb_dev_stop(struct emg_device *dev)
{
	emg_usb_stop(((struct emg_usb_dev *)dev)->usb);
}

void emg_usb_dev_close(struct emg_device *dev)
{
	struct emg_usb_dev *d = (struct emg_usb_dev *)dev;

	if (!d)
		return;
	emg_usb_free(d->usb);
	free(d);
}
