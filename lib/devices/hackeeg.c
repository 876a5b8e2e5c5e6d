/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ads1299.h"
#include "hackeeg.h"
#include "hackeeg_decode.h"
#include "usb.h"
#include "../muscles.h"

/* CDC class requests (USB CDC 1.2, PSTN subclass). */
#define CDC_OUT 0x21
#define CDC_SET_LINE_CODING 0x20
#define CDC_SET_CONTROL_LINE_STATE 0x22
#define CDC_DTR_RTS 0x0003

/* ADS1299 registers and bits (datasheet; hackeeg-client-python ads1299.py). */
#define REG_CONFIG1 0x01
#define REG_CHNSET 0x04           /* CHnSET = 0x04 + n, n = 1..8 */
#define REG_MISC1 0x15
#define CONFIG1_CONST 0x90
#define CHNSET_PD_SHORTED 0x81    /* powered down, input shorted */

#define MAX_TRANSFER 4096
#define CTRL_TIMEOUT 1000
#define WRITE_TIMEOUT 500
#define REPLY_TIMEOUT_MS 1500
/* How long after the first command a silent Due may still be booting. */
#define FIRMWARE_BOOT_MS 4000
/* Bytes per sample in MessagePack mode with one 8-channel ADS1299:
 * 9 header + 8 timestamp/sample number + 3 status + 24 channels. */
#define BYTES_PER_SAMPLE 44

struct hackeeg_dev {
	struct emg_usb_dev u;   /* first: the shared USB device part */
	struct emg_hackeeg_dec dec;
	unsigned channels;
	unsigned gain;
	double rate;
	uint8_t ep_in, ep_out;
	size_t maxpacket;
	char rx[4096];
	size_t rxlen;
};

static const struct {
	unsigned rate;
	uint8_t bits;   /* CONFIG1 DR[2:0] */
} rates[] = {
	{ 16000, 0 }, { 8000, 1 }, { 4000, 2 }, { 2000, 3 }, { 1000, 4 }, { 500, 5 }, { 250, 6 },
};

static int rate_bits(double rate)
{
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (rates[i].rate == rate)
			return rates[i].bits;
	return -1;
}

static void on_data(void *drv, const uint8_t *buf, size_t len, uint64_t t_ns)
{
	struct hackeeg_dev *d = drv;

	d->u.t_ns = t_ns;
	emg_hackeeg_dec_feed(&d->dec, buf, len);
}

/* ---- JSON Lines during set-up ---- */

static int send_line(struct hackeeg_dev *d, libusb_device_handle *h, const char *s)
{
	return emg_usb_write(h, d->ep_out, s, strlen(s), WRITE_TIMEOUT);
}

/* Read until a JSON reply line with "STATUS_CODE" is complete; returns the
 * status code, -ETIMEDOUT, or another negative errno.  Bytes after that
 * line stay in d->rx (from *rest on). */
static int read_status(struct hackeeg_dev *d, struct emg_usb *u, libusb_device_handle *h,
		       size_t *rest)
{
	uint64_t deadline = emg_now_ns() + (uint64_t)REPLY_TIMEOUT_MS * 1000000u;
	size_t scan = 0;

	while (!emg_usb_stopping(u) && emg_now_ns() < deadline) {
		/* look for complete lines */
		for (;;) {
			uint8_t *nl = memchr(d->rx + scan, '\n', d->rxlen - scan);
			if (!nl)
				break;
			size_t end = (size_t)(nl - (uint8_t *)d->rx) + 1;
			const char *key = memmem(d->rx + scan, end - scan, "\"STATUS_CODE\":", 14);
			if (key) {
				int code = atoi(key + 14);
				*rest = end;
				return code;
			}
			scan = end;
		}
		if (d->rxlen == sizeof(d->rx)) {
			/* no line end in a full buffer: keep the last bit */
			memmove(d->rx, d->rx + d->rxlen - 256, 256);
			d->rxlen = 256;
			scan = 0;
		}
		int r = emg_usb_read(h, d->ep_in, d->rx + d->rxlen,
				     sizeof(d->rx) - d->rxlen < d->maxpacket * 4
					     ? sizeof(d->rx) - d->rxlen
					     : d->maxpacket * 4, 100);
		if (r < 0)
			return r;
		d->rxlen += (size_t)r;
	}
	return -ETIMEDOUT;
}

/* Drop everything the board sends until it is quiet for quiet_ms; stop = NULL
 * reads on while emgd stops (the board's last replies), else stop gives up. */
static int drain(struct hackeeg_dev *d, const struct emg_usb *stop, libusb_device_handle *h,
		 unsigned quiet_ms, unsigned max_ms)
{
	uint64_t start = emg_now_ns(), last = start;

	while (!stop || !emg_usb_stopping(stop)) {
		uint64_t now = emg_now_ns();
		if (now - last > (uint64_t)quiet_ms * 1000000u)
			return 0;
		if (now - start > (uint64_t)max_ms * 1000000u)
			return -ETIMEDOUT;
		int r = emg_usb_read(h, d->ep_in, d->rx, sizeof(d->rx), 50);
		if (r < 0)
			return r;
		if (r > 0)
			last = emg_now_ns();
	}
	return -EINTR;
}

/* Send one command and wait for its status; 0 if 200. */
static int command(struct hackeeg_dev *d, struct emg_usb *u, libusb_device_handle *h,
		   const char *json)
{
	size_t rest = 0;
	int r;

	d->rxlen = 0;
	if ((r = send_line(d, h, json)) < 0)
		return r;
	r = read_status(d, u, h, &rest);
	if (r < 0)
		return r;
	memmove(d->rx, d->rx + rest, d->rxlen - rest);
	d->rxlen -= rest;
	return r == 200 ? 0 : -EPROTO;
}

static int wreg(struct hackeeg_dev *d, struct emg_usb *u, libusb_device_handle *h, unsigned reg,
		unsigned val)
{
	char cmd[80];

	snprintf(cmd, sizeof(cmd), "{\"COMMAND\":\"wreg\",\"PARAMETERS\":[%u,%u]}\n", reg, val);
	return command(d, u, h, cmd);
}

static int hackeeg_setup(void *drv, struct emg_usb *u, libusb_device_handle *h,
			 struct emg_usb_stream *out, const char **why)
{
	struct hackeeg_dev *d = drv;
	uint8_t ep_in, ep_out;
	size_t mp;
	int data_if, comm_if, r;

	data_if = emg_usb_find_bulk(h, LIBUSB_CLASS_DATA, &ep_in, &ep_out, &mp);
	if (data_if < 0) {
		*why = "no CDC data interface on the Arduino Due";
		return -ENODEV;
	}
	comm_if = emg_usb_find_iface(h, LIBUSB_CLASS_COMM);
	if (comm_if < 0)
		comm_if = data_if;
	d->ep_in = ep_in;
	d->ep_out = ep_out;
	d->maxpacket = mp;
	/* both: class requests go to the communication interface, and cdc_acm
	 * holds both until detached */
	if (comm_if != data_if && (r = emg_usb_claim(u, h, comm_if)) < 0)
		goto claim_failed;
	if ((r = emg_usb_claim(u, h, data_if)) < 0)
		goto claim_failed;

	uint8_t coding[7] = { 0x00, 0xC2, 0x01, 0x00, 0, 0, 8 }; /* 115200, 1 stop, no parity, 8 */
	r = emg_usb_control(h, CDC_OUT, CDC_SET_LINE_CODING, 0, (uint16_t)comm_if, coding,
			    sizeof(coding), CTRL_TIMEOUT);
	if (r >= 0)
		r = emg_usb_control(h, CDC_OUT, CDC_SET_CONTROL_LINE_STATE, CDC_DTR_RTS,
				    (uint16_t)comm_if, NULL, 0, CTRL_TIMEOUT);
	if (r < 0) {
		*why = "CDC set-up failed";
		return r;
	}
	/* The Due enumerates about 2.6 s before its firmware answers: right after a
	 * plug-in the first commands go unanswered.  Ask again until FIRMWARE_BOOT_MS
	 * have passed before concluding the firmware is missing. */
	uint64_t give_up = emg_now_ns() + (uint64_t)FIRMWARE_BOOT_MS * 1000000u;
	for (;;) {
		/* Whatever mode the board is in: stop a stream, get to JSON Lines. */
		if ((r = send_line(d, h, "{\"COMMAND\":\"sdatac\"}\n{\"COMMAND\":\"stop\"}\njsonlines\n")) < 0)
			goto write_failed;
		r = drain(d, u, h, 150, 3000);
		if (r < 0 && r != -ETIMEDOUT) {
			*why = "cannot read from the HackEEG";
			return r;
		}
		r = command(d, u, h, "{\"COMMAND\":\"sdatac\"}\n");
		if (r != -ETIMEDOUT || emg_usb_stopping(u) || emg_now_ns() >= give_up)
			break;
		emg_usb_log(u, LOG_INFO, "no answer yet (the Due's firmware starts about 2.6 s after "
			    "it enumerates); asking again");
	}
	if (r < 0) {
		*why = "the HackEEG does not answer JSON Lines commands (is hackeeg_driver "
		       "flashed on the Due?)";
		return r == -EPROTO ? -EPROTO : -ETIMEDOUT;
	}
	if ((r = wreg(d, u, h, REG_CONFIG1, CONFIG1_CONST | (unsigned)rate_bits(d->rate))) < 0)
		goto cmd_failed;
	unsigned gain_bits = (unsigned)emg_ads1299_gain_index(d->gain) << 4;
	for (unsigned ch = 1; ch <= 8; ch++)
		if ((r = wreg(d, u, h, REG_CHNSET + ch, ch <= d->channels ? gain_bits
									   : CHNSET_PD_SHORTED)) < 0)
			goto cmd_failed;
	if ((r = wreg(d, u, h, REG_MISC1, 0)) < 0 ||
	    (r = command(d, u, h, "{\"COMMAND\":\"boardledon\"}\n")) < 0 ||
	    (r = command(d, u, h, "{\"COMMAND\":\"messagepack\"}\n")) < 0 ||
	    (r = command(d, u, h, "{\"COMMAND\":\"start\"}\n")) < 0)
		goto cmd_failed;
	emg_hackeeg_dec_reset(&d->dec, emg_hackeeg_dec_next_seq(&d->dec));
	if ((r = command(d, u, h, "{\"COMMAND\":\"rdatac\"}\n")) < 0)
		goto cmd_failed;
	/* samples that came in the same USB packet as the reply */
	if (d->rxlen) {
		d->u.t_ns = emg_now_ns();
		emg_hackeeg_dec_feed(&d->dec, (const uint8_t *)d->rx, d->rxlen);
	}

	size_t len = (size_t)(d->rate * BYTES_PER_SAMPLE * 0.002) / mp * mp;
	if (len < mp)
		len = mp;
	if (len > MAX_TRANSFER)
		len = MAX_TRANSFER / mp * mp;
	out->ep_in = ep_in;
	out->transfer_len = len;
	/* The Due sends every sample as three short packets (one per SerialUSB.write),
	 * and a short packet ends a transfer.  With no read queued the Due's write
	 * blocks and conversions are skipped (the micros() check in the decoder
	 * reports them): 8 queued reads left the host 1.3 ms at 2 kHz and 0.17 ms
	 * at 16 kHz to resubmit.  64 reads hold 21 samples: 10.7 ms at 2 kHz,
	 * 1.3 ms at 16 kHz - more than an event-thread wake-up under load. */
	out->ntransfers = EMG_USB_MAX_TRANSFERS;
	return 0;

claim_failed:
	*why = r == -EBUSY ? "the Due is in use by another program" : "cannot claim the Due's CDC interfaces";
	return r;
write_failed:
	*why = "cannot write to the HackEEG";
	return r;
cmd_failed:
	*why = r == -EPROTO ? "the HackEEG refused a configuration command"
			    : "the HackEEG stopped answering during set-up";
	return r;
}

static void hackeeg_halt(void *drv, struct emg_usb *u, libusb_device_handle *h)
{
	struct hackeeg_dev *d = drv;

	send_line(d, h, "{\"COMMAND\":\"sdatac\"}\n{\"COMMAND\":\"stop\"}\n"
			"{\"COMMAND\":\"boardledoff\"}\n");
}

/* The Due's SerialUSB.write blocks until the host reads: unread replies to
 * halt's commands left it stuck with the LED on.  Read until it is quiet. */
static void hackeeg_drain(void *drv, struct emg_usb *u, libusb_device_handle *h)
{
	drain(drv, NULL, h, 100, 1000);
}

static const struct emg_usb_driver hackeeg_usb = {
	.name = "hackeeg",
	.what = "HackEEG (Arduino Due native USB port)",
	.vid = EMG_HACKEEG_VID,
	.pid = EMG_HACKEEG_PID,
	.max_transfer = MAX_TRANSFER,
	.setup = hackeeg_setup,
	.data = on_data,
	.halt = hackeeg_halt,
	.drain = hackeeg_drain,
};

/* ---- device ops ---- */

static int hackeeg_open(struct emg_device **out, const struct emg_device_config *cfg)
{
	double rate = cfg->rate ? cfg->rate : 2000;
	unsigned gain, channels;
	struct hackeeg_dev *d;
	int r;

	r = emg_usb_dev_params(cfg, "hackeeg", 8, "the HackEEG (hackeeg_driver v0.3.0) streams 8",
			       &channels, &gain);
	if (r < 0)
		return r;
	if (rate_bits(rate) < 0) {
		emg_log_to(cfg->log, cfg->log_ud, LOG_ERR, "hackeeg: rate %g Hz: the ADS1299 runs at 250, 500, 1000, 2000, "
			       "4000, 8000 or 16000 Hz", rate);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->u.dev.ops = &emg_hackeeg_ops;
	d->channels = channels;
	d->gain = gain;
	d->rate = rate;
	d->maxpacket = 64;
	r = emg_hackeeg_dec_init(&d->dec, channels, gain, emg_usb_dev_emit, d);
	if (r < 0) {
		free(d);
		return r;
	}
	emg_hackeeg_dec_set_rate(&d->dec, rate);
	if (rate < 1000)
		emg_log_to(cfg->log, cfg->log_ud, LOG_WARNING, "hackeeg: %g Hz is too slow for the full surface-EMG band "
			       "(20-450 Hz needs >= 1 kHz); 2000 Hz is the usual choice", rate);
	r = emg_usb_new(&d->u.usb, &hackeeg_usb, d, cfg);
	if (r < 0) {
		free(d);
		return r;
	}
	*out = &d->u.dev;
	return 0;
}

static void hackeeg_info(struct emg_device *dev, struct emg_device_info *info)
{
	struct hackeeg_dev *d = (struct hackeeg_dev *)dev;
	char port[32];

	snprintf(info->driver, sizeof(info->driver), "hackeeg");
	snprintf(info->model, sizeof(info->model), "HackEEG ADS1299 on Arduino Due");
	emg_usb_ident(d->u.usb, info->serial, sizeof(info->serial), port, sizeof(port));
	if (!info->serial[0] && port[0])
		snprintf(info->serial, sizeof(info->serial), "usb-%s", port);
	info->rate = d->rate;
	info->channels = d->channels;
	info->phys_max_uv = EMG_ADS1299_VREF / d->gain * 1e6;
	info->phys_min_uv = -info->phys_max_uv;
}

static const struct emg_device_option hackeeg_options[] = {
	EMG_ADS1299_GAIN_OPTION,
	{ .name = NULL },
};

static const struct emg_usb_id hackeeg_ids[] = { { EMG_HACKEEG_VID, EMG_HACKEEG_PID }, { 0, 0 } };

const struct emg_device_ops emg_hackeeg_ops = {
	.name = "hackeeg",
	.help = "HackEEG ADS1299 shield on an Arduino Due (8 ch, 250 Hz-16 kHz) via native USB",
	.options = hackeeg_options,
	.usb_ids = hackeeg_ids,
	.open = hackeeg_open,
	.info = hackeeg_info,
	.start = emg_usb_dev_start,
	.stop = emg_usb_dev_stop,
	.close = emg_usb_dev_close,
};
