/* SPDX-License-Identifier: MIT */
/*
 * mockamp: an emulated amplifier for end-to-end tests with the real emgd.
 *
 *   umockdev-wrapper mockamp cyton|hackeeg DATADIR
 *
 * Sets up a umockdev testbed with the device (mockusb.c), streams 120 s of
 * samples in real time once the driver starts the board, prints
 *   UMOCKDEV_DIR=/tmp/umockdev.XXXXXX
 *   READY
 * and then obeys one command per line on stdin, answering "OK" (or data):
 *   unplug | replug | served | streaming | log | quit
 * Run emgd with LD_PRELOAD=libumockdev-preload.so.0 and that UMOCKDEV_DIR:
 * its libusb then sees the emulated device, served from this process.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockusb.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static int32_t noise(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (int32_t)(rng % 2001) - 1000; /* +-22 uV at gain 24 */
}

static void put24(uint8_t *p, int32_t v)
{
	uint32_t u = (uint32_t)v & 0xFFFFFF;

	p[0] = (uint8_t)(u >> 16);
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)u;
}

static uint8_t *make_stream(enum mockusb_kind kind, double seconds, size_t *len, double *rate)
{
	if (kind == MOCKUSB_CYTON) {
		size_t n = (size_t)(250 * seconds);
		uint8_t *s = malloc(n * 33), *p = s;

		for (size_t i = 0; i < n; i++, p += 33) {
			p[0] = 0xA0;
			p[1] = (uint8_t)i;
			for (unsigned c = 0; c < 8; c++)
				put24(p + 2 + 3 * c, noise());
			memset(p + 26, 0, 6);
			p[32] = 0xC0;
		}
		*len = n * 33;
		*rate = 250.0 * 33;
		return s;
	}
	size_t n = (size_t)(2000 * seconds);
	uint8_t *s = malloc(n * 44), *p = s;
	static const uint8_t hdr[] = { 0x82, 0xa1, 0x43, 0xcc, 0xc8, 0xa1, 0x44, 0xc4, 35 };

	for (size_t i = 0; i < n; i++, p += 44) {
		memcpy(p, hdr, 9);
		for (int k = 0; k < 4; k++) {
			p[9 + k] = (uint8_t)((i * 500) >> (8 * k));
			p[13 + k] = (uint8_t)(i >> (8 * k));
		}
		p[17] = 0xC0, p[18] = 0, p[19] = 0;
		for (unsigned c = 0; c < 8; c++)
			put24(p + 20 + 3 * c, noise());
	}
	*len = n * 44;
	*rate = 2000.0 * 44;
	return s;
}

int main(int argc, char **argv)
{
	char path[4096], line[256];
	enum mockusb_kind kind;
	size_t len;
	double rate;

	if (argc != 3 || (strcmp(argv[1], "cyton") && strcmp(argv[1], "hackeeg"))) {
		fprintf(stderr, "usage: umockdev-wrapper mockamp cyton|hackeeg DATADIR\n");
		return 2;
	}
	kind = strcmp(argv[1], "cyton") ? MOCKUSB_HACKEEG : MOCKUSB_CYTON;
	snprintf(path, sizeof(path), "%s/%s.umockdev", argv[2], argv[1]);
	struct mockusb *m = mockusb_new(kind, path);
	uint8_t *s = make_stream(kind, 120, &len, &rate);
	mockusb_set_stream(m, s, len, rate);
	printf("UMOCKDEV_DIR=%s\nREADY\n", mockusb_root(m));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = 0;
		if (!strcmp(line, "unplug")) {
			mockusb_unplug(m);
			printf("OK\n");
		} else if (!strcmp(line, "replug")) {
			mockusb_set_stream(m, s, len, rate);
			mockusb_replug(m);
			printf("OK\n");
		} else if (!strcmp(line, "served")) {
			printf("%zu\n", mockusb_served(m));
		} else if (!strcmp(line, "streaming")) {
			printf("%d\n", mockusb_streaming(m));
		} else if (!strcmp(line, "log")) {
			static char buf[1 << 20];
			mockusb_log(m, buf, sizeof(buf));
			fputs(buf, stdout);
			printf("END\n");
		} else if (!strcmp(line, "quit")) {
			break;
		} else {
			printf("ERR unknown command\n");
		}
		fflush(stdout);
	}
	mockusb_free(m);
	free(s);
	return 0;
}
