/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: emg_record_repair() (emgctl repair, and the recordings sweep at
 * start-up) on a file built from the input.  Besides memory and UB errors:
 *   - repair never grows the file;
 *   - a refused file (negative result) is left byte for byte as it was;
 *   - repair is idempotent: after 0 or 1, a second repair answers 0 ("ok")
 *     and changes nothing.
 * Found while writing it (issue 16 #9): a negative header size and a record
 * count of 1e30 were cast to size_t / long long before being range-checked.
 */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz_main.h"
#include "record.h"

static uint8_t after1[1 << 16], after2[1 << 16];

/* Read the whole (small) file into buf; its size, or -1. */
static ssize_t slurp(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap);
	close(fd);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[128];
	char msg[256];
	ssize_t n1, n2;
	int r1, r2;

	if (size > sizeof(after1) - 1)
		return 0;
	if (!path[0]) /* tmpfs when there is one: the file is rewritten for every input */
		snprintf(path, sizeof(path), "%s/emgd-fuzz-repair-%d.bdf",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);

	r1 = emg_record_repair(path, msg, sizeof(msg));
	n1 = slurp(path, after1, sizeof(after1));
	if (n1 < 0 || (size_t)n1 > size || r1 > 1)
		abort(); /* grew, vanished, or an undocumented result */
	if (r1 < 0 && ((size_t)n1 != size || memcmp(after1, data, size)))
		abort(); /* refused, yet changed */
	if (r1 >= 0) {
		r2 = emg_record_repair(path, msg, sizeof(msg));
		n2 = slurp(path, after2, sizeof(after2));
		if (r2 != 0 || n2 != n1 || memcmp(after1, after2, (size_t)n1))
			abort(); /* not idempotent */
	}
	unlink(path);
	return 0;
}
