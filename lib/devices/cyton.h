/* SPDX-License-Identifier: MIT */
/*
 * emg_cyton: OpenBCI Cyton (8 channels, 250 Hz) and Cyton + Daisy
 * (16 channels, 125 Hz) through the FTDI FT231X USB dongle (0403:6015),
 * driven with libusb directly (the ftdi_sio driver is detached).
 *
 * Set-up on every (re)connect: FTDI reset and purge, 115200 8N1, no flow
 * control, DTR/RTS on, latency timer 1 ms (vendor requests 0, 3, 4, 2, 1, 9,
 * wIndex 0 as ftdi_sio sends them); then the board's text commands:
 * 's' (stop), 'v' (soft reset; the reply tells whether a Daisy answers),
 * 'c' or 'C' (8 or 16 channel mode), 'd' (defaults), one 'x...X' per channel
 * (powered up at the configured gain, normal input, in the bias, SRB2 and
 * SRB1 off: every channel records its own N-P electrode pair, the bipolar
 * montage sEMG uses; channels not delivered are powered down), 'b' (start).
 * Bulk-in transfers of one 64-byte USB packet, 8 in flight; the 1 ms
 * latency timer bounds the delay.
 *
 * 250 Hz (125 Hz with the Daisy) cannot capture the sEMG band (20-450 Hz,
 * most power up to ~250 Hz): levels and onsets come out approximate and
 * everything above 125 Hz (62.5 Hz) is lost.  Open says so in the log.
 */
#ifndef EMG_CYTON_H
#define EMG_CYTON_H

#include "../device.h"

#define EMG_CYTON_VID 0x0403
#define EMG_CYTON_PID 0x6015

extern const struct emg_device_ops emg_cyton_ops;

#endif
