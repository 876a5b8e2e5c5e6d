/* SPDX-License-Identifier: MIT */
/*
 * mockusb: an emulated OpenBCI Cyton dongle or HackEEG for tests, built on
 * umockdev.
 *
 * The device description (sysfs attributes and USB descriptors) comes from
 * tests/usb/{cyton,hackeeg}.umockdev.  Its device node gets an in-process
 * UMockdevIoctlBase handler that emulates usbdevfs the way the kernel does
 * for libusb: GET_CAPABILITIES, (DISCONNECT_)CLAIM/RELEASEINTERFACE,
 * SUBMITURB/REAPURBNDELAY/DISCARDURB with any number of URBs in flight
 * (control, bulk in, bulk out), and ENODEV plus URBs completed with
 * -ESHUTDOWN after an unplug.  Behind it sits a small model of the device:
 * the FTDI FT231X (vendor requests, two status bytes per 64-byte bulk-in
 * packet, a status-only packet when the 1 ms latency timer expires) with
 * the Cyton firmware's text commands, or the Due's CDC-ACM port with the
 * hackeeg_driver firmware's text / JSON Lines command set.  When the
 * firmware is told to stream ('b', or "rdatac"), it serves the bytes given
 * to mockusb_set_stream(), optionally paced to a byte rate.
 *
 * Everything the driver sent is recorded for the test to check.
 *
 * Must run under umockdev-wrapper (LD_PRELOAD=libumockdev-preload.so).
 * The handler runs on the testbed's worker thread; all functions here may
 * be called from any other thread.
 *
 * A note on polling: the emulated device node is a regular file, which
 * poll() always reports ready, so libusb's event loop asks for completed
 * URBs continuously.  To keep that from spinning, a REAPURBNDELAY that finds
 * nothing waits up to 2 ms for something to complete before it answers
 * EAGAIN (on real hardware poll() blocks instead).
 */
#ifndef MOCKUSB_H
#define MOCKUSB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mockusb_kind { MOCKUSB_CYTON, MOCKUSB_HACKEEG };

struct mockusb;

/* A testbed with one device, described by the .umockdev file at path. */
struct mockusb *mockusb_new(enum mockusb_kind kind, const char *umockdev_path);

/* Unplug (if needed) and free the testbed. */
void mockusb_free(struct mockusb *m);

/* Cyton: whether a Daisy module answers (default false). */
void mockusb_set_daisy(struct mockusb *m, bool daisy);

/* Board switched off / not answering (Cyton: the dongle is there but the
 * board is silent; HackEEG: firmware ignores commands). */
void mockusb_set_silent(struct mockusb *m, bool silent);

/* Bytes the firmware sends once streaming starts (copied); replaces any
 * earlier stream.  bytes_per_s = 0 serves as fast as the driver reads. */
void mockusb_set_stream(struct mockusb *m, const uint8_t *bytes, size_t len, double bytes_per_s);

/* Bytes of the stream served so far. */
size_t mockusb_served(struct mockusb *m);

/* Replies become readable ms after the command (default 0), like firmware
 * that takes a moment to act. */
void mockusb_set_reply_delay(struct mockusb *m, unsigned ms);

/* Bytes the device has queued that the driver has not read yet. */
size_t mockusb_unread(struct mockusb *m);

/* Whether the firmware is streaming. */
bool mockusb_streaming(struct mockusb *m);

/* Pull the plug: the device disappears from sysfs (uevent "remove"), every
 * ioctl fails with ENODEV, URBs in flight complete with -ESHUTDOWN. */
void mockusb_unplug(struct mockusb *m);

/* Plug it back in as a fresh device (next device number, firmware rebooted). */
void mockusb_replug(struct mockusb *m);

/* The device node currently in use, e.g. "/dev/bus/usb/001/005". */
const char *mockusb_devnode(struct mockusb *m);

/* What the driver did, as text, one event per line (copied into buf):
 *   "ctrl RT REQ VALUE INDEX LEN" for control requests (hex),
 *   "claim N", "release N", "detach N" for interface operations,
 *   "out TEXT" for each bulk-out write (non-printable bytes as \xNN). */
size_t mockusb_log(struct mockusb *m, char *buf, size_t size);

/* Clear the log. */
void mockusb_clear_log(struct mockusb *m);

/* HackEEG: value written to ADS1299 register reg (-1 if never written). */
int mockusb_hackeeg_reg(struct mockusb *m, unsigned reg);

/* The testbed's root directory ($UMOCKDEV_DIR). */
const char *mockusb_root(struct mockusb *m);

#endif
