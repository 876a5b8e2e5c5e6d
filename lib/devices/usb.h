/* SPDX-License-Identifier: MIT */
/*
 * emg_usb: what the USB amplifier drivers share.
 *
 * One emg_usb per open device: its own libusb context and one thread that
 * does all libusb work (event handling, opening, configuring, async bulk-in
 * transfers, hotplug).  The driver supplies hooks:
 *
 *   setup  open handle in, configured and streaming device out: claim the
 *          interfaces, set the device up with synchronous control/bulk I/O,
 *          start its stream, and say which bulk-in endpoint to read and in
 *          which transfer size;
 *   data   one completed bulk-in transfer, on the event thread: decode only
 *          (no allocation, lock, log or blocking);
 *   halt   best-effort "stop streaming" before the handle is closed;
 *   drain  read the device's last replies once the transfers are back.
 *
 * Device life cycle, reported through the device state callback:
 *   not present / not accessible / not answering  -> EMG_DEVICE_WAITING
 *   configured, transfers in flight               -> EMG_DEVICE_STREAMING
 *   unplugged (hotplug "left" or a transfer ends with NO_DEVICE)
 *                                                 -> EMG_DEVICE_WAITING
 *   streaming but no samples for 2 s               -> EMG_DEVICE_WAITING,
 *                                                     setup again every 2 s
 *   replugged (hotplug "arrived", or the retry timer when libusb has no
 *   hotplug support or EMGD_USB_NO_HOTPLUG=1 is set) -> setup again -> STREAMING
 * Nothing spins: the thread sleeps in libusb_handle_events_timeout_completed()
 * with a timeout of at most one second and is woken by libusb events, by
 * hotplug and by libusb_interrupt_event_handler() from emg_usb_stop().
 *
 * Device selection: VID:PID and, if the config's serial is set, a device
 * whose USB serial number equals it or whose bus-port path ("1-1.4", as in
 * /sys/bus/usb/devices) equals it.  The first match wins.
 */
#ifndef EMG_USB_H
#define EMG_USB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libusb.h>

#include "../device.h"

/* The HackEEG needs many reads queued (hackeeg.c); buffers are allocated for all. */
#define EMG_USB_MAX_TRANSFERS 64

struct emg_usb;

/* What setup() tells the transfer pool. */
struct emg_usb_stream {
	uint8_t ep_in;          /* bulk-in endpoint address (0x8N) */
	size_t transfer_len;    /* bytes per transfer, a multiple of maxpacket, <= max_transfer */
	unsigned ntransfers;    /* transfers kept in flight, 1..EMG_USB_MAX_TRANSFERS */
};

struct emg_usb_driver {
	const char *name;       /* driver name, prefixes log lines: "cyton" */
	const char *what;       /* "OpenBCI Cyton dongle (FTDI FT231X)" */
	uint16_t vid, pid;
	size_t max_transfer;    /* largest transfer_len setup() may ask for */
	/* Returns 0 when streaming; else a negative errno and a static *why for
	 * the state line (the device is closed and tried again later). */
	int (*setup)(void *drv, struct emg_usb *u, libusb_device_handle *h,
		     struct emg_usb_stream *out, const char **why);
	void (*data)(void *drv, const uint8_t *buf, size_t len, uint64_t t_ns);
	void (*halt)(void *drv, struct emg_usb *u, libusb_device_handle *h);
	/* After a deliberate stop, once every transfer is back: read what the
	 * device still sends (its replies to halt), so it is not left blocked
	 * writing to a host that stopped reading.  NULL = nothing to read. */
	void (*drain)(void *drv, struct emg_usb *u, libusb_device_handle *h);
};

/* Create the context, register hotplug and look for the device once
 * (logging what was found or what to do).  A missing device is not an
 * error: the thread waits for it. */
int emg_usb_new(struct emg_usb **out, const struct emg_usb_driver *drv, void *drv_ud,
		const struct emg_device_config *cfg);

/* Start the event thread; state changes go to cb->state. */
int emg_usb_start(struct emg_usb *u, const struct emg_device_callbacks *cb);

/* Halt the device, cancel transfers, close it and join the thread. */
void emg_usb_stop(struct emg_usb *u);

/* Stop if needed, deregister hotplug, free everything. */
void emg_usb_free(struct emg_usb *u);

/* Copy the serial number and bus-port path of the device last seen ("" if none yet). */
void emg_usb_ident(struct emg_usb *u, char *serial, size_t serial_size, char *port,
		   size_t port_size);

/* The driver decoded samples at t_ns (event thread).  Streaming without
 * samples for 2 s (a Cyton board switched off behind its dongle, a hung
 * HackEEG) reports EMG_DEVICE_WAITING and sets the device up again. */
void emg_usb_alive(struct emg_usb *u, uint64_t t_ns);

/* True once emg_usb_stop() was called: long setup() loops should give up. */
bool emg_usb_stopping(const struct emg_usb *u);

/* Log through the config's log function, prefixed with the driver name. */
void emg_usb_log(const struct emg_usb *u, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- synchronous helpers for setup() and halt() (event thread only) ---- */

/* Claim an interface, detaching a kernel driver (ftdi_sio, cdc_acm) first;
 * logs a clear line when another program holds it. */
int emg_usb_claim(struct emg_usb *u, libusb_device_handle *h, int iface);

/* A control transfer; returns bytes transferred or a negative errno. */
int emg_usb_control(libusb_device_handle *h, uint8_t type, uint8_t req, uint16_t value,
		    uint16_t index, void *data, uint16_t len, unsigned timeout_ms);

/* Write all of buf to a bulk-out endpoint; 0 or a negative errno. */
int emg_usb_write(libusb_device_handle *h, uint8_t ep, const void *buf, size_t len,
		  unsigned timeout_ms);

/* One bulk-in read; returns bytes read (0 on timeout) or a negative errno. */
int emg_usb_read(libusb_device_handle *h, uint8_t ep, void *buf, size_t cap,
		 unsigned timeout_ms);

/* Find the first bulk IN and OUT endpoints of an interface (any alt 0)
 * whose class matches (-1 = any); returns the interface number or -ENOENT. */
int emg_usb_find_bulk(libusb_device_handle *h, int iface_class, uint8_t *ep_in,
		      uint8_t *ep_out, size_t *maxpacket);

/* Number of the first interface of a class (alt 0), or -ENOENT. */
int emg_usb_find_iface(libusb_device_handle *h, int iface_class);

/* libusb error code to a negative errno. */
int emg_usb_errno(int libusb_err);

/* ---- the device side every USB amplifier driver shares ---- */

/* A USB driver's device struct begins with this; the device ops below run it. */
struct emg_usb_dev {
	struct emg_device dev;          /* first: the generic handle */
	struct emg_usb *usb;
	struct emg_device_callbacks cb;
	uint64_t t_ns;                  /* arrival of the transfer being decoded */
};

/* Channels and PGA gain to open with: cfg->channels, else what [muscles] needs,
 * else 8, at most max_channels (max_why says why, for the log); gain 0 = 24.
 * Logs the reason and returns -EINVAL when out of range. */
int emg_usb_dev_params(const struct emg_device_config *cfg, const char *name,
		       unsigned max_channels, const char *max_why, unsigned *channels,
		       unsigned *gain);

/* Decoder output (ud = the struct emg_usb_dev): frames to the data callback,
 * stamped with the transfer's arrival, and the device is alive.  Event thread. */
void emg_usb_dev_emit(void *ud, const float *frames, unsigned n, uint64_t seq, uint32_t lost);

/* emg_device_ops.start of a USB driver. */
int emg_usb_dev_start(struct emg_device *dev, const struct emg_device_callbacks *cb);

/* emg_device_ops.stop of a USB driver. */
void emg_usb_dev_stop(struct emg_device *dev);

/* emg_device_ops.close of a USB driver: frees the emg_usb and the struct. */
void emg_usb_dev_close(struct emg_device *dev);

#endif
