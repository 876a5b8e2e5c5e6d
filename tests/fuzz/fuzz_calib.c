/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: emg_calib_load() (calibration.ini in the state directory) on a
 * file built from the input, over the default six-muscle map.  Besides memory
 * and UB errors: whatever loads, saves (emg_calib_save) and reloads into a
 * fresh table identically, field by field; a refused file changes nothing.
 * Found while writing it: rest values without a rest_method, or MVC trials
 * without an mvc_rms, loaded but were not saved (load now drops them).
 */
#include <errno.h>
#include <unistd.h>

#include "calib.h"
#include "fuzz_main.h"
#include "muscles.h"

static int entry_eq(const struct emg_calib_entry *a, const struct emg_calib_entry *b)
{
	return a->has_rest == b->has_rest && a->rest.method == b->rest.method &&
	       a->rest.mean == b->rest.mean && a->rest.sd == b->rest.sd &&
	       a->rest.var == b->rest.var && a->rest.rms == b->rest.rms &&
	       a->rest_rms == b->rest_rms && a->rest_time == b->rest_time &&
	       a->mvc_rms == b->mvc_rms && a->mvc_time == b->mvc_time &&
	       a->mvc_trials == b->mvc_trials;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char in[128], out[128];
	static struct emg_muscles *m;
	struct emg_calib *c = NULL, *c2 = NULL, *empty = NULL;
	unsigned line = 0;
	int r;

	if (!m) {
		const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(in, sizeof(in), "%s/emgd-fuzz-calib-in-%d.ini", dir, (int)getpid());
		snprintf(out, sizeof(out), "%s/emgd-fuzz-calib-out-%d.ini", dir, (int)getpid());
		if (emg_muscles_new_default(&m) < 0)
			abort();
	}
	FILE *f = fopen(in, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	if (emg_calib_new(&c, m) < 0 || emg_calib_new(&c2, m) < 0 || emg_calib_new(&empty, m) < 0)
		abort();
	r = emg_calib_load(c, in, &line);
	if (r < 0) {
		if (r != -EBADMSG)
			abort(); /* the file is there and small: only a bad line refuses it */
		for (unsigned i = 0; i < emg_calib_count(c); i++)
			if (!entry_eq(emg_calib_get(c, i), emg_calib_get(empty, i)))
				abort(); /* refused, yet something loaded */
	} else {
		if (emg_calib_save(c, out) < 0)
			abort();
		if (emg_calib_load(c2, out, &line) < 0)
			abort(); /* emgd cannot read back what it wrote */
		for (unsigned i = 0; i < emg_calib_count(c); i++)
			if (!entry_eq(emg_calib_get(c, i), emg_calib_get(c2, i)))
				abort(); /* saved and reloaded differently */
		unlink(out);
	}
	unlink(in);
	emg_calib_free(c);
	emg_calib_free(c2);
	emg_calib_free(empty);
	return 0;
}
