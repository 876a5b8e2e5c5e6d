/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_calib: rest baselines, %MVC and the on-disk table. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib.h"

#include "tmpdir.h"
#include "testutil.h"

static void setup(void)
{
	tmpdir_make("calib");
}

static void teardown(void)
{
	tmpdir_remove();
}

static struct emg_muscles *map_of(const char *const *names, unsigned n)
{
	struct emg_muscles *m;

	ck_assert_int_eq(emg_muscles_new(&m), 0);
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(emg_muscles_add(m, names[i], i, EMG_SIDE_NONE, NULL), 0);
	return m;
}

static struct emg_calib *default_calib(void)
{
	struct emg_muscles *m;
	struct emg_calib *c;

	ck_assert_int_eq(emg_muscles_new_default(&m), 0);
	ck_assert_int_eq(emg_calib_new(&c, m), 0);
	emg_muscles_free(m);
	return c;
}

/* Awkward values: they only survive a text round trip if printed with enough digits. */
static struct emg_baseline awkward_baseline(int method, double salt)
{
	struct emg_baseline b = {
		.method = method,
		.mean = 0.1 + salt,
		.sd = 1.0 / 3.0 + salt,
		.var = 2.718281828459045e-7 * (1 + salt),
		.rms = 12345.678901234567 + salt,
	};
	return b;
}

static int same_entry(const struct emg_calib_entry *a, const struct emg_calib_entry *b)
{
	return a->has_rest == b->has_rest && a->rest.method == b->rest.method &&
	       a->rest.mean == b->rest.mean && a->rest.sd == b->rest.sd &&
	       a->rest.var == b->rest.var && a->rest.rms == b->rest.rms &&
	       a->rest_rms == b->rest_rms && a->rest_time == b->rest_time &&
	       a->mvc_rms == b->mvc_rms && a->mvc_time == b->mvc_time &&
	       a->mvc_trials == b->mvc_trials;
}

START_TEST(test_new_empty)
{
	struct emg_calib *c = default_calib();

	ck_assert_uint_eq(emg_calib_count(c), 6);
	for (unsigned i = 0; i < 6; i++) {
		const struct emg_calib_entry *e = emg_calib_get(c, i);
		ck_assert_ptr_nonnull(e);
		ck_assert_int_eq(e->has_rest, 0);
		ck_assert_float_eq(e->mvc_rms, 0.0f);
		ck_assert_uint_eq(e->mvc_trials, 0);
		ck_assert_float_lt(emg_calib_level(c, i, 10.0f), 0.0f);
	}
	ck_assert_ptr_null(emg_calib_get(c, 6));
	ck_assert_float_lt(emg_calib_level(c, 6, 10.0f), 0.0f);
	emg_calib_free(c);
}
END_TEST

START_TEST(test_rest)
{
	struct emg_calib *c = default_calib();
	struct emg_baseline b = awkward_baseline(EMG_ONSET_TKEO, 0);
	const struct emg_calib_entry *e;

	emg_calib_set_rest(c, 2, &b, 3.5f, 1700000000);
	e = emg_calib_get(c, 2);
	ck_assert_int_eq(e->has_rest, 1);
	ck_assert_int_eq(e->rest.method, EMG_ONSET_TKEO);
	ck_assert_double_eq(e->rest.sd, b.sd);
	ck_assert_float_eq(e->rest_rms, 3.5f);
	ck_assert_int_eq(e->rest_time, 1700000000);
	/* rest alone gives no level */
	ck_assert_float_lt(emg_calib_level(c, 2, 10.0f), 0.0f);
	ck_assert_int_eq(emg_calib_get(c, 1)->has_rest, 0);
	/* out of range is ignored, not a crash */
	emg_calib_set_rest(c, 6, &b, 1.0f, 1);
	emg_calib_set_rest(c, 1000, &b, 1.0f, 1);
	emg_calib_free(c);
}
END_TEST

START_TEST(test_mvc_max_over_trials)
{
	struct emg_calib *c = default_calib();
	const struct emg_calib_entry *e = emg_calib_get(c, 0);

	emg_calib_add_mvc(c, 0, 100.0f, 10);
	ck_assert_float_eq(e->mvc_rms, 100.0f);
	ck_assert_int_eq(e->mvc_time, 10);
	ck_assert_uint_eq(e->mvc_trials, 1);
	emg_calib_add_mvc(c, 0, 80.0f, 20); /* weaker trial: kept max, time of the max */
	ck_assert_float_eq(e->mvc_rms, 100.0f);
	ck_assert_int_eq(e->mvc_time, 10);
	ck_assert_uint_eq(e->mvc_trials, 2);
	emg_calib_add_mvc(c, 0, 150.0f, 30);
	ck_assert_float_eq(e->mvc_rms, 150.0f);
	ck_assert_int_eq(e->mvc_time, 30);
	ck_assert_uint_eq(e->mvc_trials, 3);
	/* no signal is not a trial */
	emg_calib_add_mvc(c, 0, 0.0f, 40);
	emg_calib_add_mvc(c, 0, -5.0f, 40);
	emg_calib_add_mvc(c, 0, __builtin_nanf(""), 40);
	ck_assert_uint_eq(e->mvc_trials, 3);
	ck_assert_float_eq(e->mvc_rms, 150.0f);

	/* level = rms / mvc, not clipped above 1 */
	ck_assert_float_eq_tol(emg_calib_level(c, 0, 75.0f), 0.5f, 1e-6f);
	ck_assert_float_eq_tol(emg_calib_level(c, 0, 150.0f), 1.0f, 1e-6f);
	ck_assert_float_eq_tol(emg_calib_level(c, 0, 300.0f), 2.0f, 1e-6f);
	ck_assert_float_eq(emg_calib_level(c, 0, 0.0f), 0.0f);
	/* other muscles still uncalibrated */
	ck_assert_float_lt(emg_calib_level(c, 1, 75.0f), 0.0f);

	emg_calib_clear_mvc(c, 0);
	ck_assert_float_eq(e->mvc_rms, 0.0f);
	ck_assert_uint_eq(e->mvc_trials, 0);
	ck_assert_int_eq(e->mvc_time, 0);
	ck_assert_float_lt(emg_calib_level(c, 0, 75.0f), 0.0f);
	emg_calib_add_mvc(c, 0, 50.0f, 50); /* after a clear a lower MVC counts again */
	ck_assert_float_eq(e->mvc_rms, 50.0f);
	emg_calib_add_mvc(c, 99, 50.0f, 50);
	emg_calib_clear_mvc(c, 99);
	emg_calib_free(c);
}
END_TEST

START_TEST(test_save_load_roundtrip)
{
	struct emg_calib *c = default_calib(), *d = default_calib();
	char path[512];
	unsigned line = 77;

	path_in(path, sizeof(path), "calib.ini");
	for (unsigned i = 0; i < 6; i++) {
		struct emg_baseline b = awkward_baseline((int)(i % 3), i * 1e-3);
		if (i != 3)
			emg_calib_set_rest(c, i, &b, 1.0f / 3.0f + (float)i, 1700000000 + i);
		if (i != 4) {
			emg_calib_add_mvc(c, i, 123.456789f + (float)i, 1700001000 + i);
			emg_calib_add_mvc(c, i, 100.0f, 1700002000 + i);
		}
	}
	/* muscle 5 has nothing at all */
	emg_calib_clear_mvc(c, 5);
	emg_calib_free(d);
	ck_assert_int_eq(emg_calib_dup(c, &d), 0);
	{
		/* wipe d's entries so loading has something to do */
		struct emg_muscles *m;
		emg_calib_free(d);
		ck_assert_int_eq(emg_muscles_new_default(&m), 0);
		ck_assert_int_eq(emg_calib_new(&d, m), 0);
		emg_muscles_free(m);
	}
	ck_assert_int_eq(emg_calib_save(c, path), 0);
	ck_assert_int_eq(emg_calib_load(d, path, &line), 0);
	for (unsigned i = 0; i < 6; i++)
		ck_assert_msg(same_entry(emg_calib_get(c, i), emg_calib_get(d, i)),
			      "entry %u differs after a round trip", i);
	ck_assert_int_eq(emg_calib_get(d, 3)->has_rest, 0);
	ck_assert_float_eq(emg_calib_get(d, 4)->mvc_rms, 0.0f);
	ck_assert_uint_eq(emg_calib_get(d, 0)->mvc_trials, 2);
	ck_assert_float_eq(emg_calib_get(d, 2)->mvc_rms, 123.456789f + 2.0f);

	/* the temp file is gone after the rename */
	{
		char tmp[600];
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		ck_assert_int_eq(access(tmp, F_OK), -1);
		ck_assert_int_eq(errno, ENOENT);
	}
	/* saving again over an existing file works (rename replaces it) */
	emg_calib_add_mvc(c, 1, 1000.0f, 5);
	ck_assert_int_eq(emg_calib_save(c, path), 0);
	ck_assert_int_eq(emg_calib_load(d, path, NULL), 0);
	ck_assert_float_eq(emg_calib_get(d, 1)->mvc_rms, 1000.0f);
	emg_calib_free(c);
	emg_calib_free(d);
}
END_TEST

START_TEST(test_load_other_map)
{
	static const char *const saved[] = { "glute_max_l", "gone_muscle", "hip_flex_r" };
	static const char *const now[] = { "hip_flex_r", "new_muscle", "glute_max_l" };
	struct emg_muscles *ma = map_of(saved, 3), *mb = map_of(now, 3);
	struct emg_calib *a, *b;
	struct emg_baseline bl = awkward_baseline(EMG_ONSET_HODGES, 0);
	char path[512];

	path_in(path, sizeof(path), "c.ini");
	ck_assert_int_eq(emg_calib_new(&a, ma), 0);
	ck_assert_int_eq(emg_calib_new(&b, mb), 0);
	emg_calib_add_mvc(a, 0, 10.0f, 1); /* glute_max_l */
	emg_calib_add_mvc(a, 1, 20.0f, 2); /* gone_muscle */
	emg_calib_set_rest(a, 2, &bl, 2.0f, 3); /* hip_flex_r */
	ck_assert_int_eq(emg_calib_save(a, path), 0);

	/* new_muscle has its own MVC, not in the file: untouched by loading */
	emg_calib_add_mvc(b, 1, 55.0f, 9);
	/* glute_max_l in b has a rest the file does not have: the file's entry replaces it */
	emg_calib_set_rest(b, 2, &bl, 9.0f, 9);
	ck_assert_int_eq(emg_calib_load(b, path, NULL), 0);
	ck_assert_int_eq(emg_calib_get(b, 0)->has_rest, 1);
	ck_assert_float_eq(emg_calib_get(b, 0)->rest_rms, 2.0f);
	ck_assert_double_eq(emg_calib_get(b, 0)->rest.rms, bl.rms);
	ck_assert_float_eq(emg_calib_get(b, 0)->mvc_rms, 0.0f);
	ck_assert_float_eq(emg_calib_get(b, 1)->mvc_rms, 55.0f);
	ck_assert_int_eq(emg_calib_get(b, 1)->mvc_time, 9);
	ck_assert_float_eq(emg_calib_get(b, 2)->mvc_rms, 10.0f);
	ck_assert_int_eq(emg_calib_get(b, 2)->has_rest, 0);
	ck_assert_float_eq_tol(emg_calib_level(b, 2, 20.0f), 2.0f, 1e-6f);

	emg_calib_free(a);
	emg_calib_free(b);
	emg_muscles_free(ma);
	emg_muscles_free(mb);
}
END_TEST

START_TEST(test_load_errors)
{
	struct emg_calib *c = default_calib();
	struct emg_calib_entry before[6];
	char path[512];
	unsigned line = 0;
	static const struct {
		const char *text;
		unsigned line;
	} bad[] = {
		{ "version = 1\n[glute_max_l]\nmvc_rms = 12\nmvc_time = soon\n", 4 },
		{ "version = 2\n", 1 },
		{ "# comment\nversion = 1\n\n[glute_med_r]\nrest_method = magic\n", 5 },
		{ "version = 1\n[glute_med_r]\nunknown_key = 3\n", 3 },
		{ "version = 1\n[glute_med_r\nmvc_rms = 3\n", 2 },
		{ "version = 1\n[hip_flex_l]\njust garbage\n", 3 },
		{ "version = 1\n[hip_flex_l]\nmvc_rms = 5x\n", 3 },
		{ "version = 1\n[hip_flex_l]\nmvc_rms =\n", 3 },
		{ "version = 1\n[hip_flex_l]\nmvc_rms = nan\n", 3 },
		{ "version = 1\n[hip_flex_l]\nrest_mean = inf\n", 3 },
		{ "version = 1\n[hip_flex_l]\nmvc_trials = 1e300\n", 3 },
		{ "version = 1\n[hip_flex_l]\nrest_time = -1e300\n", 3 },
		{ "version = 1\n[hip_flex_l]\nmvc_trials = -2\n", 3 },
		{ "version = 1\n[hip_flex_l]\nmvc_rms = -2\n", 3 },
	};

	path_in(path, sizeof(path), "bad.ini");
	emg_calib_add_mvc(c, 0, 42.0f, 7);
	emg_calib_add_mvc(c, 3, 43.0f, 8);
	for (unsigned i = 0; i < 6; i++)
		before[i] = *emg_calib_get(c, i);
	for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		write_file(path, bad[k].text);
		line = 0;
		ck_assert_msg(emg_calib_load(c, path, &line) == -EBADMSG, "case %u not rejected", k);
		ck_assert_msg(line == bad[k].line, "case %u: line %u, expected %u", k, line,
			      bad[k].line);
		for (unsigned i = 0; i < 6; i++)
			ck_assert_msg(same_entry(&before[i], emg_calib_get(c, i)),
				      "case %u changed entry %u", k, i);
	}
	/* a good first section followed by a bad one changes nothing either */
	write_file(path, "version = 1\n[glute_max_l]\nmvc_rms = 99\n[glute_med_r]\nmvc_rms = x\n");
	ck_assert_int_eq(emg_calib_load(c, path, &line), -EBADMSG);
	ck_assert_uint_eq(line, 5);
	ck_assert_float_eq(emg_calib_get(c, 0)->mvc_rms, 42.0f);
	/* NULL line pointer is allowed */
	ck_assert_int_eq(emg_calib_load(c, path, NULL), -EBADMSG);

	path_in(path, sizeof(path), "missing.ini");
	ck_assert_int_eq(emg_calib_load(c, path, &line), -ENOENT);
	/* an empty file and a file for other muscles only are fine and change nothing */
	path_in(path, sizeof(path), "empty.ini");
	write_file(path, "");
	ck_assert_int_eq(emg_calib_load(c, path, &line), 0);
	write_file(path, "version = 1\n[someone_else]\nmvc_rms = 1\n");
	ck_assert_int_eq(emg_calib_load(c, path, &line), 0);
	for (unsigned i = 0; i < 6; i++)
		ck_assert(same_entry(&before[i], emg_calib_get(c, i)));
	emg_calib_free(c);
}
END_TEST

START_TEST(test_save_errors)
{
	struct emg_calib *c = default_calib();
	char path[512], file[512];
	DIR *d;
	struct dirent *e;
	int n = 0;

	emg_calib_add_mvc(c, 0, 1.0f, 1);
	/* a directory that does not exist, and a "directory" that is a file */
	path_in(path, sizeof(path), "nodir/calib.ini");
	ck_assert_int_eq(emg_calib_save(c, path), -ENOENT);
	path_in(file, sizeof(file), "plainfile");
	write_file(file, "x");
	path_in(path, sizeof(path), "plainfile/calib.ini");
	ck_assert_int_eq(emg_calib_save(c, path), -ENOTDIR);
	/* the target is a directory: rename fails, the temp file is cleaned up */
	path_in(path, sizeof(path), "isdir");
	ck_assert_int_eq(mkdir(path, 0755), 0);
	{
		char sub[600];
		snprintf(sub, sizeof(sub), "%s/keep", path);
		write_file(sub, "x"); /* non-empty, so rename(file, dir) must fail */
		ck_assert_int_lt(emg_calib_save(c, path), 0);
		unlink(sub);
	}
	rmdir(path);
	/* read-only file system: /proc is one that even root cannot write */
	ck_assert_int_lt(emg_calib_save(c, "/proc/emgd-test-calib.ini"), 0);
	/* a name too long for the temp file */
	{
		char longp[PATH_MAX + 10];
		memset(longp, 'a', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		ck_assert_int_eq(emg_calib_save(c, longp), -ENAMETOOLONG);
	}
	/* nothing but the plain file is left behind */
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			ck_assert_str_eq(e->d_name, "plainfile");
			n++;
		}
	closedir(d);
	ck_assert_int_eq(n, 1);
	emg_calib_free(c);
}
END_TEST

/* Issue 16 item 3: a symlink planted at calibration.ini.tmp used to make the save
 * truncate and overwrite its target (O_CREAT|O_TRUNC followed it, as root). */
START_TEST(test_save_symlink_tmp)
{
	struct emg_calib *c = default_calib();
	struct emg_calib *back = default_calib();
	char path[512], tmp[600], victim[512], buf[64] = "";
	struct stat st;
	FILE *f;

	path_in(path, sizeof(path), "calibration.ini");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	path_in(victim, sizeof(victim), "victim");
	write_file(victim, "precious\n");
	ck_assert_int_eq(symlink(victim, tmp), 0);
	emg_calib_add_mvc(c, 2, 77.0f, 5);
	ck_assert_int_eq(emg_calib_save(c, path), 0);
	/* the victim is untouched */
	f = fopen(victim, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_str_eq(buf, "precious\n");
	/* the calibration is a regular file of its own, the link is gone */
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(lstat(tmp, &st), -1);
	ck_assert_int_eq(emg_calib_load(back, path, NULL), 0);
	ck_assert_float_eq(emg_calib_get(back, 2)->mvc_rms, 77.0f);
	/* a stale temp file from a crash is replaced, not appended to */
	write_file(tmp, "garbage from a crash\n");
	ck_assert_int_eq(emg_calib_save(c, path), 0);
	ck_assert_int_eq(emg_calib_load(back, path, NULL), 0);
	emg_calib_free(c);
	emg_calib_free(back);
}
END_TEST

/* A calibration.ini that is a FIFO or a device is refused at once with the reason. */
START_TEST(test_load_not_regular)
{
	struct emg_calib *c = default_calib();
	char path[512], err[700];

	alarm(20); /* a blocking open() would hang here: fail instead */
	path_in(path, sizeof(path), "calibration.ini");
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(emg_calib_load_msg(c, path, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "calibration "));
	ck_assert_ptr_nonnull(strstr(err, ": is a FIFO, not a regular file"));
	ck_assert_int_eq(emg_calib_load_msg(c, "/dev/zero", NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "calibration /dev/zero: is a character device, not a regular file");
	alarm(0);
	emg_calib_free(c);
}
END_TEST

START_TEST(test_merge_and_dup)
{
	static const char *const old_names[] = { "a", "b", "c" };
	static const char *const new_names[] = { "c", "d", "a" };
	struct emg_muscles *mo = map_of(old_names, 3), *mn = map_of(new_names, 3);
	struct emg_calib *o, *n, *d;
	struct emg_baseline bl = awkward_baseline(EMG_ONSET_BONATO, 0.5);

	ck_assert_int_eq(emg_calib_new(&o, mo), 0);
	ck_assert_int_eq(emg_calib_new(&n, mn), 0);
	emg_calib_add_mvc(o, 0, 11.0f, 1);
	emg_calib_add_mvc(o, 1, 22.0f, 2);
	emg_calib_set_rest(o, 2, &bl, 3.0f, 3);
	emg_calib_add_mvc(n, 1, 44.0f, 4);

	ck_assert_int_eq(emg_calib_dup(o, &d), 0);
	ck_assert_uint_eq(emg_calib_count(d), 3);
	for (unsigned i = 0; i < 3; i++)
		ck_assert(same_entry(emg_calib_get(o, i), emg_calib_get(d, i)));
	emg_calib_add_mvc(d, 0, 99.0f, 9); /* deep copy */
	ck_assert_float_eq(emg_calib_get(o, 0)->mvc_rms, 11.0f);

	emg_calib_merge(n, o);
	ck_assert_uint_eq(emg_calib_count(n), 3);
	ck_assert(same_entry(emg_calib_get(n, 0), emg_calib_get(o, 2))); /* c */
	ck_assert_float_eq(emg_calib_get(n, 1)->mvc_rms, 44.0f);          /* d kept */
	ck_assert(same_entry(emg_calib_get(n, 2), emg_calib_get(o, 0))); /* a */
	ck_assert_float_eq_tol(emg_calib_level(n, 2, 22.0f), 2.0f, 1e-6f);

	emg_calib_free(o);
	emg_calib_free(n);
	emg_calib_free(d);
	emg_muscles_free(mo);
	emg_muscles_free(mn);
}
END_TEST

static Suite *calib_suite(void)
{
	Suite *s = suite_create("calib");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_new_empty);
	tcase_add_test(tc, test_rest);
	tcase_add_test(tc, test_mvc_max_over_trials);
	tcase_add_test(tc, test_merge_and_dup);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_save_load_roundtrip);
	tcase_add_test(tc, test_load_other_map);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_save_errors);
	tcase_add_test(tc, test_save_symlink_tmp);
	tcase_add_test(tc, test_load_not_regular);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(calib_suite());
}
