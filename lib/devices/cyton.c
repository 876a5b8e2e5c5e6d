/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ads1299.h"
#include "cyton.h"
#include "cyton_decode.h"
#include "usb.h"
#include "../muscles.h"

/* FTDI SIO vendor requests (Linux drivers/usb/serial/ftdi_sio.h). */
#define FTDI_OUT 0x40
#define FTDI_SIO_RESET 0
#define FTDI_SIO_MODEM_CTRL 1
#define FTDI_SIO_SET_FLOW_CTRL 2
#define FTDI_SIO_SET_BAUD_RATE 3
#define FTDI_SIO_SET_DATA 4
#define FTDI_SIO_SET_LATENCY_TIMER 9
#define FTDI_RESET_SIO 0
#define FTDI_PURGE_RX 1
#define FTDI_PURGE_TX 2
/* 115200 Bd on the FT-X: 48 MHz / 16 / 26 = 115385 Bd (+0.16 %), divisor 26
 * with no fractional part (ftdi_232bm_baud_base_to_divisor). */
#define FTDI_DIV_115200 0x001A
#define FTDI_8N1 0x0008
#define FTDI_DTR_RTS_ON 0x0303

#define NTRANSFERS 8
#define CTRL_TIMEOUT 1000
#define WRITE_TIMEOUT 500

struct cyton_dev {
	struct emg_usb_dev u;   /* first: the shared USB device part */
	struct emg_cyton_dec dec;
	bool daisy;
	unsigned channels;
	unsigned gain;
	double rate;
	uint8_t ep_in, ep_out;
	size_t maxpacket;
	char rx[2048];
	size_t rxlen;
};

/* ---- decoder input: on the event thread ---- */

static void on_data(void *drv, const uint8_t *buf, size_t len, uint64_t t_ns)
{
	struct cyton_dev *d = drv;

	d->u.t_ns = t_ns;
	emg_cyton_dec_feed_ftdi(&d->dec, buf, len, d->maxpacket);
}

/* ---- text replies during set-up ---- */

/* Read serial bytes (FTDI status bytes removed) into d->rx until `until`
 * appears or timeout_ms pass; returns true if it appeared.  until = NULL:
 * read until the line has been quiet for quiet_ms. */
static bool read_reply(struct cyton_dev *d, struct emg_usb *u, libusb_device_handle *h,
		       const char *until, unsigned timeout_ms, unsigned quiet_ms)
{
	uint8_t buf[512];
	uint64_t start = emg_now_ns(), last_data = start;

	d->rxlen = 0;
	d->rx[0] = 0;
	while (!emg_usb_stopping(u)) {
		uint64_t now = emg_now_ns();

		if (now - start > (uint64_t)timeout_ms * 1000000u)
			return false;
		if (!until && now - last_data > (uint64_t)quiet_ms * 1000000u)
			return true;
		int r = emg_usb_read(h, d->ep_in, buf, sizeof(buf), 50);
		if (r < 0)
			return false;
		for (size_t off = 0; off < (size_t)r; off += d->maxpacket) {
			size_t len = (size_t)r - off < d->maxpacket ? (size_t)r - off : d->maxpacket;
			if (len <= 2)
				continue;
			last_data = emg_now_ns();
			len -= 2;
			if (len > sizeof(d->rx) - 1 - d->rxlen) {
				/* keep the tail: the terminator is at the end */
				size_t keep = sizeof(d->rx) / 2;
				memmove(d->rx, d->rx + d->rxlen - keep, keep);
				d->rxlen = keep;
				if (len > sizeof(d->rx) - 1 - d->rxlen)
					len = sizeof(d->rx) - 1 - d->rxlen;
			}
			memcpy(d->rx + d->rxlen, buf + off + 2, len);
			d->rxlen += len;
			d->rx[d->rxlen] = 0;
		}
		/* the reply may contain NUL bytes: search the raw buffer */
		if (until && memmem(d->rx, d->rxlen, until, strlen(until)))
			return true;
	}
	return false;
}

static int send_text(struct cyton_dev *d, libusb_device_handle *h, const char *s)
{
	return emg_usb_write(h, d->ep_out, s, strlen(s), WRITE_TIMEOUT);
}

/* ---- set-up on every (re)connect ---- */

static int ftdi_setup(libusb_device_handle *h)
{
	static const uint16_t req[][2] = {
		{ FTDI_SIO_RESET, FTDI_RESET_SIO },
		{ FTDI_SIO_RESET, FTDI_PURGE_RX },
		{ FTDI_SIO_RESET, FTDI_PURGE_TX },
		{ FTDI_SIO_SET_BAUD_RATE, FTDI_DIV_115200 },
		{ FTDI_SIO_SET_DATA, FTDI_8N1 },
		{ FTDI_SIO_SET_FLOW_CTRL, 0 },
		{ FTDI_SIO_MODEM_CTRL, FTDI_DTR_RTS_ON },
		{ FTDI_SIO_SET_LATENCY_TIMER, 1 },
	};

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		int r = emg_usb_control(h, FTDI_OUT, (uint8_t)req[i][0], req[i][1], 0, NULL, 0,
					CTRL_TIMEOUT);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Channel command: x, channel, power down, gain, input type, bias, SRB2, SRB1, X.
 * A used channel: on, normal input, in the bias drive, SRB2 off (bipolar EMG).
 * An unused one as OpenBCI's own channel-off does: powered down, input shorted,
 * out of the bias drive, so a floating input neither adds noise to the bias
 * nor draws current. */
static void channel_cmd(char *out, unsigned ch, bool on, unsigned gain)
{
	static const char names[] = "12345678QWERTYUI";

	snprintf(out, 10, "x%c%c%c%sX", names[ch], on ? '0' : '1', '0' + emg_ads1299_gain_index(gain),
		 on ? "0100" : "1000");
}

static int cyton_setup(void *drv, struct emg_usb *u, libusb_device_handle *h,
		       struct emg_usb_stream *out, const char **why)
{
	struct cyton_dev *d = drv;
	int iface, r;

	iface = emg_usb_find_bulk(h, -1, &d->ep_in, &d->ep_out, &d->maxpacket);
	if (iface < 0) {
		*why = "no bulk endpoints on the FTDI dongle";
		return -ENODEV;
	}
	if ((r = emg_usb_claim(u, h, iface)) < 0) {
		*why = r == -EBUSY ? "the dongle is in use by another program" : "cannot claim the dongle";
		return r;
	}
	if ((r = ftdi_setup(h)) < 0) {
		*why = "FTDI set-up failed";
		return r;
	}
	/* Stop a stream left running by an earlier session, drop what it sent. */
	if ((r = send_text(d, h, "s")) < 0) {
		*why = "cannot write to the dongle";
		return r;
	}
	read_reply(d, u, h, NULL, 1500, 100);
	if ((r = send_text(d, h, "v")) < 0) {
		*why = "cannot write to the dongle";
		return r;
	}
	if (!read_reply(d, u, h, "$$$", 4000, 0)) {
		*why = "the Cyton board does not answer (switched off, out of range, or on another "
		       "radio channel than the dongle?)";
		return -ETIMEDOUT;
	}
	/* with the board off, the dongle itself answers "Failure: Communications timeout ... $$$" */
	if (memmem(d->rx, d->rxlen, "Failure", 7) || !memmem(d->rx, d->rxlen, "ADS1299", 7)) {
		*why = "the Cyton board does not answer (switched off, out of range, or on another "
		       "radio channel than the dongle?)";
		return -ETIMEDOUT;
	}
	bool has_daisy = memmem(d->rx, d->rxlen, "Daisy", 5) != NULL;
	if (d->daisy && !has_daisy) {
		*why = "16 channels need the Daisy module, and none answers";
		return -ENXIO;
	}
	if (has_daisy || d->daisy) {
		/* 'C': 16 channels at 125 Hz; 'c': drop the Daisy, 8 channels at 250 Hz */
		if ((r = send_text(d, h, d->daisy ? "C" : "c")) < 0)
			goto write_failed;
		read_reply(d, u, h, "$$$", 1000, 0);
	}
	if ((r = send_text(d, h, "d")) < 0)
		goto write_failed;
	read_reply(d, u, h, "$$$", 1000, 0);
	for (unsigned ch = 0; ch < (d->daisy ? 16u : 8u); ch++) {
		char cmd[10];

		channel_cmd(cmd, ch, ch < d->channels, d->gain);
		if ((r = send_text(d, h, cmd)) < 0)
			goto write_failed;
		read_reply(d, u, h, "$$$", 500, 0); /* firmware v3 confirms, v2 is silent */
	}
	emg_cyton_dec_reset(&d->dec, emg_cyton_dec_next_seq(&d->dec));
	if ((r = send_text(d, h, "b")) < 0)
		goto write_failed;
	out->ep_in = d->ep_in;
	out->transfer_len = d->maxpacket;
	out->ntransfers = NTRANSFERS;
	return 0;

write_failed:
	*why = "cannot write to the dongle";
	return r;
}

static void cyton_halt(void *drv, struct emg_usb *u, libusb_device_handle *h)
{
	struct cyton_dev *d = drv;

	send_text(d, h, "s");
}

static const struct emg_usb_driver cyton_usb = {
	.name = "cyton",
	.what = "OpenBCI Cyton dongle (FTDI FT231X)",
	.vid = EMG_CYTON_VID,
	.pid = EMG_CYTON_PID,
	.max_transfer = 512,
	.setup = cyton_setup,
	.data = on_data,
	.halt = cyton_halt,
};

/* ---- device ops ---- */

static int cyton_open(struct emg_device **out, const struct emg_device_config *cfg)
{
	unsigned gain, channels;
	struct cyton_dev *d;
	int r;

	r = emg_usb_dev_params(cfg, "cyton", 16, "the Cyton has 8 channels, 16 with the Daisy module",
			       &channels, &gain);
	if (r < 0)
		return r;
	bool daisy = channels > 8;
	double rate = daisy ? 125 : 250;
	if (cfg->rate && cfg->rate != rate) {
		emg_log_to(cfg->log, cfg->log_ud, LOG_ERR, "cyton: rate %g Hz: the Cyton streams at 250 Hz (125 Hz with the "
			       "Daisy for more than 8 channels) over its dongle; set rate = 0", cfg->rate);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->u.dev.ops = &emg_cyton_ops;
	d->daisy = daisy;
	d->channels = channels;
	d->gain = gain;
	d->rate = rate;
	d->maxpacket = 64;
	r = emg_cyton_dec_init(&d->dec, daisy, channels, gain, emg_usb_dev_emit, d);
	if (r < 0) {
		free(d);
		return r;
	}
	emg_log_to(cfg->log, cfg->log_ud, LOG_WARNING, "cyton: the Cyton samples at %g Hz%s: too slow for the full surface-EMG band "
		       "(20-450 Hz needs >= 1 kHz); nothing above %g Hz is seen, so levels and onsets are "
		       "approximate; use the HackEEG (up to 16 kHz) for full-band sEMG", rate,
		       daisy ? " with the Daisy" : "", rate / 2);
	r = emg_usb_new(&d->u.usb, &cyton_usb, d, cfg);
	if (r < 0) {
		free(d);
		return r;
	}
	*out = &d->u.dev;
	return 0;
}

static void cyton_info(struct emg_device *dev, struct emg_device_info *info)
{
	struct cyton_dev *d = (struct cyton_dev *)dev;

	snprintf(info->driver, sizeof(info->driver), "cyton");
	snprintf(info->model, sizeof(info->model), "%s", d->daisy ? "OpenBCI Cyton + Daisy"
								   : "OpenBCI Cyton");
	emg_usb_ident(d->u.usb, info->serial, sizeof(info->serial), NULL, 0);
	info->rate = d->rate;
	info->channels = d->channels;
	info->phys_max_uv = EMG_ADS1299_VREF / d->gain * 1e6;
	info->phys_min_uv = -info->phys_max_uv;
}

static const struct emg_device_option cyton_options[] = {
	EMG_ADS1299_GAIN_OPTION,
	{ .name = NULL },
};

static const struct emg_usb_id cyton_ids[] = { { EMG_CYTON_VID, EMG_CYTON_PID }, { 0, 0 } };

const struct emg_device_ops emg_cyton_ops = {
	.name = "cyton",
	.help = "OpenBCI Cyton (8 ch, 250 Hz) or Cyton+Daisy (16 ch, 125 Hz) via its FTDI dongle",
	.options = cyton_options,
	.usb_ids = cyton_ids,
	.open = cyton_open,
	.info = cyton_info,
	.start = emg_usb_dev_start,
	.stop = emg_usb_dev_stop,
	.close = emg_usb_dev_close,
};
