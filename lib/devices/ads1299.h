/* SPDX-License-Identifier: MIT */
/*
 * TI ADS1299 helpers shared by the OpenBCI Cyton and HackEEG drivers:
 * 24-bit sample conversion and the PGA gain settings.
 *
 * Scale: the converter spans +-VREF/gain with VREF = 4.5 V over 24 bits.
 * Like OpenBCI (docs "Cyton Data Format", BrainFlow) we use
 *   uV per count = 4.5 V / gain / (2^23 - 1) * 1e6,
 * i.e. 0.02235 uV per count at gain 24.
 */
#ifndef EMG_ADS1299_H
#define EMG_ADS1299_H

#include <stdbool.h>
#include <stdint.h>

#define EMG_ADS1299_VREF 4.5
#define EMG_ADS1299_DEFAULT_GAIN 24u

/* Microvolts per count at a PGA gain. */
static inline double emg_ads1299_uv_per_count(unsigned gain)
{
	return EMG_ADS1299_VREF / (double)gain / 8388607.0 * 1e6;
}

/* Signed value of a 24-bit big-endian two's-complement number. */
static inline int32_t emg_s24be(const uint8_t *p)
{
	uint32_t u = ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];

	return (int32_t)(u ^ 0x800000u) - 0x800000;
}

/* Index 0..6 of a valid PGA gain (1, 2, 4, 6, 8, 12, 24), -1 if invalid.
 * The index is the OpenBCI 'x' command gain digit and GAINn[2:0] >> 4 of CHnSET. */
static inline int emg_ads1299_gain_index(unsigned gain)
{
	static const unsigned gains[7] = { 1, 2, 4, 6, 8, 12, 24 };

	for (int i = 0; i < 7; i++)
		if (gains[i] == gain)
			return i;
	return -1;
}

/* The [device] gain option of every ADS1299 driver (their option tables share it). */
#define EMG_ADS1299_GAIN_OPTION                                                             \
	{ "gain", EMG_OPT_UINT, offsetof(struct emg_device_config, gain), 1, 24,              \
	  emg_ads1299_gain_names, "24", "1, 2, 4, 6, 8, 12 or 24 (ADS1299 amplifiers)",         \
	  "ADS1299 programmable gain; 24 gives +-187 mV at 0.02 uV resolution" }

/* The gains as written in a config file, NULL-terminated (defined in usb.c). */
extern const char *const emg_ads1299_gain_names[];

#endif
