/* SPDX-License-Identifier: MIT */
/*
 * emg_hackeeg: the HackEEG shield (TI ADS1299, 8 channels, 250 Hz-16 kHz)
 * on an Arduino Due, through the Due's native USB port (CDC-ACM 2341:003e),
 * running starcat-io/hackeeg-driver-arduino, driven with libusb directly
 * (cdc_acm is detached from both CDC interfaces).
 *
 * Set-up on every (re)connect: CDC SET_LINE_CODING 115200 8N1 (never 1200:
 * opening the Due's port at 1200 Bd erases its flash) and
 * SET_CONTROL_LINE_STATE DTR|RTS (the Due only sends with DTR set); then
 * stop any stream left running ({"COMMAND":"sdatac"}, "stop"), switch a
 * board in text mode to JSON Lines ("jsonlines"), drain, and configure with
 * JSON Lines commands, each answered {"STATUS_CODE":200,...}:
 *   sdatac; wreg CONFIG1 = 0x90 | data rate; wreg CHnSET = gain, normal
 *   electrode input (channels not delivered: powered down and shorted);
 *   wreg MISC1 = 0 (no SRB1: each channel records its own N-P pair);
 *   boardledon; messagepack; start (sample number back to 0); rdatac.
 * Samples then arrive as MessagePack maps (see hackeeg_decode.h).  Bulk-in
 * transfers hold <= 2 ms of samples (at least one max-size packet), 8 in
 * flight (16 from 8 kHz: the Due sends each sample as three short packets,
 * and every short packet completes a transfer).  On stop: sdatac, stop,
 * boardledoff.
 *
 * The Due's native port reports no USB serial number (ArduinoCore-sam
 * passes 0 as iSerialNumber), so select a board by bus-port path
 * ("1-1.4", see /sys/bus/usb/devices) when several are plugged in.
 */
#ifndef EMG_HACKEEG_H
#define EMG_HACKEEG_H

#include "../device.h"

#define EMG_HACKEEG_VID 0x2341
#define EMG_HACKEEG_PID 0x003e

extern const struct emg_device_ops emg_hackeeg_ops;

#endif
