/* SPDX-License-Identifier: MIT */
/*
 * A main() for the fuzz targets when they are not built with libFuzzer
 * (clang -fsanitize=fuzzer defines FUZZING_WITH_LIBFUZZER via -D): run each
 * file given on the command line once, or, without arguments, a bounded
 * number of random inputs (a smoke test that fits in a unit-test budget).
 */
#ifndef EMG_FUZZ_MAIN_H
#define EMG_FUZZ_MAIN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZING_WITH_LIBFUZZER
int main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	uint64_t x = 0x853c49e6748fea9bull;
	const char *env = getenv("FUZZ_ITERATIONS");
	long iters = env ? atol(env) : 3000;

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			FILE *f = fopen(argv[i], "rb");
			if (!f) {
				perror(argv[i]);
				return 1;
			}
			size_t n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			LLVMFuzzerTestOneInput(buf, n);
		}
		return 0;
	}
	for (long it = 0; it < iters; it++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t n = (size_t)(x % 4096);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = (uint8_t)(x >> 24);
		}
		/* sprinkle packet headers and footers so that some packets decode */
		for (size_t i = 0; i + 1 < n; i += 1 + (size_t)(x >> 40) % 40) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			static const uint8_t magic[] = { 0xA0, 0xC0, 0xC6, 0x82, 0xa1, 0x43, 0xcc,
							 0xc8, 0x44, 0xc4, 35, 0xC0, '\n', '{' };
			buf[i] = magic[x % sizeof(magic)];
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%ld random inputs, no failure\n", iters);
	return 0;
}
#endif

#endif
