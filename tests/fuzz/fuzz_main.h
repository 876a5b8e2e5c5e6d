/* SPDX-License-Identifier: MIT */
/*
 * A main() for the fuzz targets when they are not built with libFuzzer
 * (meson -Dfuzz=true builds them with clang -fsanitize=fuzzer and
 * -DFUZZING_WITH_LIBFUZZER): run each file given on the command line once
 * (a directory stands for the files in it: the seed corpus and the crash
 * regressions in tests/fuzz/corpus/<target>/), then a bounded number of
 * random inputs (FUZZ_ITERATIONS, default 3000): a smoke test that fits in a
 * unit-test budget and runs under the ASan/UBSan build.
 */
#ifndef EMG_FUZZ_MAIN_H
#define EMG_FUZZ_MAIN_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZING_WITH_LIBFUZZER
static uint8_t fuzz_buf[1 << 16];

/* Run one file, or every regular file in a directory; returns files run or -1. */
static long fuzz_run_path(const char *path)
{
	struct stat st;
	long n = 0;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		char sub[4096];

		if (!d) {
			perror(path);
			return -1;
		}
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			long k = fuzz_run_path(sub);
			if (k < 0) {
				closedir(d);
				return -1;
			}
			n += k;
		}
		closedir(d);
		return n;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t len = fread(fuzz_buf, 1, sizeof(fuzz_buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(fuzz_buf, len);
	return 1;
}

int main(int argc, char **argv)
{
	uint8_t *buf = fuzz_buf;
	uint64_t x = 0x853c49e6748fea9bull;
	const char *env = getenv("FUZZ_ITERATIONS");
	long iters = env ? atol(env) : 3000, files = 0;

	for (int i = 1; i < argc; i++) {
		long k = fuzz_run_path(argv[i]);
		if (k < 0)
			return 1;
		files += k;
	}
	if (argc > 1)
		printf("%ld corpus inputs, no failure\n", files);
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
