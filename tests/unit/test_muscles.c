/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_muscles: the channel map and the muscle names that become OSC paths. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muscles.h"
#include "testutil.h"

START_TEST(test_default_map)
{
	static const char *const names[] = { "glute_max_l", "glute_max_r", "glute_med_l",
					     "glute_med_r", "hip_flex_l",  "hip_flex_r" };
	struct emg_muscles *m;

	ck_assert_int_eq(emg_muscles_new_default(&m), 0);
	ck_assert_uint_eq(emg_muscles_count(m), 6);
	for (unsigned i = 0; i < 6; i++) {
		const struct emg_muscle *e = emg_muscles_get(m, i);
		ck_assert_ptr_nonnull(e);
		ck_assert_str_eq(e->name, names[i]);
		ck_assert_uint_eq(e->channel, i);
		ck_assert_int_eq(e->side, (i & 1) ? EMG_SIDE_RIGHT : EMG_SIDE_LEFT);
		ck_assert_int_eq(emg_muscles_find(m, names[i]), (int)i);
	}
	ck_assert_ptr_nonnull(strstr(emg_muscles_get(m, 0)->site, "gluteus maximus"));
	ck_assert_ptr_nonnull(strstr(emg_muscles_get(m, 3)->site, "gluteus medius"));
	ck_assert_ptr_nonnull(strstr(emg_muscles_get(m, 4)->site, "rectus femoris"));
	ck_assert_ptr_null(emg_muscles_get(m, 6));
	ck_assert_uint_eq(emg_muscles_channels_needed(m), 6);
	emg_muscles_free(m);
}
END_TEST

START_TEST(test_name_valid)
{
	char name[64];

	ck_assert(emg_muscle_name_valid("a"));
	ck_assert(emg_muscle_name_valid("glute_max_l"));
	ck_assert(emg_muscle_name_valid("m1_2"));
	ck_assert(emg_muscle_name_valid("x_"));
	/* 31 characters fit (32 with the NUL), 32 do not */
	memset(name, 'a', 31);
	name[31] = '\0';
	ck_assert(emg_muscle_name_valid(name));
	name[31] = 'b';
	name[32] = '\0';
	ck_assert(!emg_muscle_name_valid(name));
	ck_assert(!emg_muscle_name_valid(""));
	ck_assert(!emg_muscle_name_valid("Glute_max_l"));
	ck_assert(!emg_muscle_name_valid("gluteMax"));
	ck_assert(!emg_muscle_name_valid("1glute"));
	ck_assert(!emg_muscle_name_valid("_glute"));
	ck_assert(!emg_muscle_name_valid("glute/max"));
	ck_assert(!emg_muscle_name_valid("/glute"));
	ck_assert(!emg_muscle_name_valid("glute max"));
	ck_assert(!emg_muscle_name_valid("glute-max"));
	ck_assert(!emg_muscle_name_valid("glute.max"));
	ck_assert(!emg_muscle_name_valid("glute*"));
	ck_assert(!emg_muscle_name_valid("glute?"));
	ck_assert(!emg_muscle_name_valid("gl\xc3\xbcte"));
}
END_TEST

START_TEST(test_add_errors)
{
	struct emg_muscles *m;
	char name[64];

	ck_assert_int_eq(emg_muscles_new(&m), 0);
	ck_assert_uint_eq(emg_muscles_count(m), 0);
	ck_assert_uint_eq(emg_muscles_channels_needed(m), 0);
	ck_assert_ptr_null(emg_muscles_get(m, 0));
	ck_assert_int_eq(emg_muscles_find(m, "glute_max_l"), -ENOENT);

	ck_assert_int_eq(emg_muscles_add(m, "Bad", 0, EMG_SIDE_NONE, NULL), -EINVAL);
	ck_assert_int_eq(emg_muscles_add(m, "a/b", 0, EMG_SIDE_NONE, NULL), -EINVAL);
	memset(name, 'q', 32);
	name[32] = '\0';
	ck_assert_int_eq(emg_muscles_add(m, name, 0, EMG_SIDE_NONE, NULL), -EINVAL);
	ck_assert_int_eq(emg_muscles_add(m, "ok", 256, EMG_SIDE_NONE, NULL), -EINVAL);
	ck_assert_uint_eq(emg_muscles_count(m), 0);

	name[31] = '\0';
	ck_assert_int_eq(emg_muscles_add(m, name, 255, EMG_SIDE_NONE, NULL), 0);
	ck_assert_str_eq(emg_muscles_get(m, 0)->name, name);
	ck_assert_str_eq(emg_muscles_get(m, 0)->site, ""); /* NULL site -> "" */
	ck_assert_uint_eq(emg_muscles_channels_needed(m), 256);

	ck_assert_int_eq(emg_muscles_add(m, "erector_l", 3, EMG_SIDE_LEFT, "L3 paraspinal"), 0);
	ck_assert_str_eq(emg_muscles_get(m, 1)->site, "L3 paraspinal");
	/* duplicate name on a free channel, and a free name on a used channel */
	ck_assert_int_eq(emg_muscles_add(m, "erector_l", 4, EMG_SIDE_LEFT, NULL), -EEXIST);
	ck_assert_int_eq(emg_muscles_add(m, "erector_r", 3, EMG_SIDE_RIGHT, NULL), -EEXIST);
	ck_assert_uint_eq(emg_muscles_count(m), 2);
	ck_assert_int_eq(emg_muscles_find(m, "erector_l"), 1);
	ck_assert_int_eq(emg_muscles_find(m, "erector"), -ENOENT);

	emg_muscles_clear(m);
	ck_assert_uint_eq(emg_muscles_count(m), 0);
	ck_assert_int_eq(emg_muscles_find(m, "erector_l"), -ENOENT);
	ck_assert_int_eq(emg_muscles_add(m, "erector_l", 3, EMG_SIDE_LEFT, NULL), 0);
	emg_muscles_free(m);
}
END_TEST

START_TEST(test_full_map)
{
	struct emg_muscles *m;
	char name[16];

	ck_assert_int_eq(emg_muscles_new(&m), 0);
	/* every STEP-th of the 256 channels (every other one while the cap was 64) */
	const unsigned step = 256 / EMG_MUSCLES_MAX > 1 ? 2 : 1;

	for (unsigned i = 0; i < EMG_MUSCLES_MAX; i++) {
		snprintf(name, sizeof(name), "m%u", i);
		ck_assert_int_eq(emg_muscles_add(m, name, step * i, EMG_SIDE_NONE, NULL), 0);
	}
	ck_assert_uint_eq(emg_muscles_count(m), EMG_MUSCLES_MAX);
	ck_assert_int_eq(emg_muscles_add(m, "one_more", 255, EMG_SIDE_NONE, NULL), -ENOSPC);
	ck_assert_uint_eq(emg_muscles_count(m), EMG_MUSCLES_MAX);
	ck_assert_uint_eq(emg_muscles_channels_needed(m), step * (EMG_MUSCLES_MAX - 1) + 1);
	ck_assert_int_eq(emg_muscles_find(m, "m63"), 63);
	ck_assert_ptr_null(emg_muscles_get(m, EMG_MUSCLES_MAX));
	emg_muscles_free(m);
}
END_TEST

START_TEST(test_channels_needed_sparse)
{
	struct emg_muscles *m;

	ck_assert_int_eq(emg_muscles_new(&m), 0);
	ck_assert_int_eq(emg_muscles_add(m, "a", 4, EMG_SIDE_NONE, NULL), 0);
	ck_assert_uint_eq(emg_muscles_channels_needed(m), 5);
	ck_assert_int_eq(emg_muscles_add(m, "b", 0, EMG_SIDE_NONE, NULL), 0);
	ck_assert_uint_eq(emg_muscles_channels_needed(m), 5);
	ck_assert_int_eq(emg_muscles_add(m, "c", 7, EMG_SIDE_NONE, NULL), 0);
	ck_assert_uint_eq(emg_muscles_channels_needed(m), 8);
	emg_muscles_free(m);
}
END_TEST

START_TEST(test_side)
{
	enum emg_side s = (enum emg_side)99;

	ck_assert_int_eq(emg_side_parse("left", &s), 0);
	ck_assert_int_eq(s, EMG_SIDE_LEFT);
	ck_assert_int_eq(emg_side_parse("r", &s), 0);
	ck_assert_int_eq(s, EMG_SIDE_RIGHT);
	ck_assert_int_eq(emg_side_parse("l", &s), 0);
	ck_assert_int_eq(s, EMG_SIDE_LEFT);
	ck_assert_int_eq(emg_side_parse("right", &s), 0);
	ck_assert_int_eq(s, EMG_SIDE_RIGHT);
	ck_assert_int_eq(emg_side_parse("-", &s), 0);
	ck_assert_int_eq(s, EMG_SIDE_NONE);
	ck_assert_int_eq(emg_side_parse("none", &s), 0);
	ck_assert_int_eq(s, EMG_SIDE_NONE);
	s = EMG_SIDE_LEFT;
	ck_assert_int_eq(emg_side_parse("Left", &s), -EINVAL);
	ck_assert_int_eq(emg_side_parse("", &s), -EINVAL);
	ck_assert_int_eq(emg_side_parse("both", &s), -EINVAL);
	ck_assert_int_eq(s, EMG_SIDE_LEFT); /* untouched on error */
	ck_assert_str_eq(emg_side_name(EMG_SIDE_LEFT), "left");
	ck_assert_str_eq(emg_side_name(EMG_SIDE_RIGHT), "right");
	ck_assert_str_eq(emg_side_name(EMG_SIDE_NONE), "none");
	ck_assert_str_eq(emg_side_name((enum emg_side)42), "none");
}
END_TEST

START_TEST(test_role)
{
	ck_assert_str_eq(emg_muscle_role("glute_max_l"), "glute_max");
	ck_assert_str_eq(emg_muscle_role("glute_max"), "glute_max");
	ck_assert_str_eq(emg_muscle_role("glute_med_r"), "glute_med");
	ck_assert_str_eq(emg_muscle_role("hip_flex_l"), "hip_flex");
	ck_assert_str_eq(emg_muscle_role("hamstring_r"), "hamstring");
	ck_assert_str_eq(emg_muscle_role("hamstrings_l"), "hamstring");
	ck_assert_str_eq(emg_muscle_role("erector_l"), "erector");
	ck_assert_str_eq(emg_muscle_role("erectors"), "erector");
	/* a prefix is not enough: the role word must end there */
	ck_assert_str_eq(emg_muscle_role("glute_maximus"), "other");
	ck_assert_str_eq(emg_muscle_role("glute_mediator"), "other");
	ck_assert_str_eq(emg_muscle_role("glute"), "other");
	ck_assert_str_eq(emg_muscle_role("vastus_lat_l"), "other");
	ck_assert_str_eq(emg_muscle_role("hip"), "other");
	ck_assert_str_eq(emg_muscle_role(""), "other");
}
END_TEST

START_TEST(test_equal_and_dup)
{
	struct emg_muscles *a, *b, *c;

	ck_assert_int_eq(emg_muscles_new_default(&a), 0);
	ck_assert_int_eq(emg_muscles_new_default(&b), 0);
	ck_assert(emg_muscles_equal(a, b));
	ck_assert_int_eq(emg_muscles_dup(a, &c), 0);
	ck_assert(emg_muscles_equal(a, c));
	ck_assert_ptr_ne(a, c);
	/* the copy is deep: changing it leaves the original alone */
	emg_muscles_clear(c);
	ck_assert_uint_eq(emg_muscles_count(a), 6);
	ck_assert(!emg_muscles_equal(a, c));
	ck_assert(!emg_muscles_equal(c, a));
	ck_assert_int_eq(emg_muscles_add(c, "glute_max_l", 0, EMG_SIDE_LEFT, NULL), 0);
	ck_assert(!emg_muscles_equal(a, c)); /* shorter */

	/* same names, one channel moved */
	emg_muscles_clear(b);
	emg_muscles_clear(c);
	ck_assert_int_eq(emg_muscles_add(b, "x", 0, EMG_SIDE_NONE, "site one"), 0);
	ck_assert_int_eq(emg_muscles_add(b, "y", 1, EMG_SIDE_NONE, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(c, "x", 0, EMG_SIDE_LEFT, "other site"), 0);
	ck_assert_int_eq(emg_muscles_add(c, "y", 2, EMG_SIDE_NONE, NULL), 0);
	ck_assert(!emg_muscles_equal(b, c));
	/* sides and sites do not matter, names and channels in order do */
	emg_muscles_clear(c);
	ck_assert_int_eq(emg_muscles_add(c, "x", 0, EMG_SIDE_LEFT, "other site"), 0);
	ck_assert_int_eq(emg_muscles_add(c, "y", 1, EMG_SIDE_RIGHT, NULL), 0);
	ck_assert(emg_muscles_equal(b, c));
	emg_muscles_clear(c);
	ck_assert_int_eq(emg_muscles_add(c, "y", 1, EMG_SIDE_NONE, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(c, "x", 0, EMG_SIDE_NONE, NULL), 0);
	ck_assert(!emg_muscles_equal(b, c));
	/* renamed */
	emg_muscles_clear(c);
	ck_assert_int_eq(emg_muscles_add(c, "x", 0, EMG_SIDE_NONE, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(c, "z", 1, EMG_SIDE_NONE, NULL), 0);
	ck_assert(!emg_muscles_equal(b, c));

	emg_muscles_free(a);
	emg_muscles_free(b);
	emg_muscles_free(c);
	emg_muscles_free(NULL);
}
END_TEST

static Suite *muscles_suite(void)
{
	Suite *s = suite_create("muscles");
	TCase *tc = tcase_create("map");

	tcase_add_test(tc, test_default_map);
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_add_errors);
	tcase_add_test(tc, test_full_map);
	tcase_add_test(tc, test_channels_needed_sparse);
	tcase_add_test(tc, test_side);
	tcase_add_test(tc, test_role);
	tcase_add_test(tc, test_equal_and_dup);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(muscles_suite());
}
