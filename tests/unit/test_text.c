/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_text_clean: client text made safe for a log line or an annotation. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "testutil.h"

START_TEST(test_controls)
{
	char out[64];

	ck_assert_uint_eq(emg_text_clean(out, sizeof(out), "a\n<2>evil\r\x1b[31mred\x7f"), 19);
	ck_assert_str_eq(out, "a <2>evil  [31mred ");
	/* C1 CSI (U+009B, encoded c2 9b) acts like ESC [ on some terminals */
	emg_text_clean(out, sizeof(out), "x\xc2\x9b" "2Jy");
	ck_assert_str_eq(out, "x 2Jy");
}
END_TEST

START_TEST(test_utf8)
{
	char out[64];

	/* valid UTF-8 is kept: e-acute, a CJK character, an emoji */
	emg_text_clean(out, sizeof(out), "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
	ck_assert_str_eq(out, "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
	/* invalid: stray continuation, overlong '/', surrogate, truncated sequence, 0xff */
	emg_text_clean(out, sizeof(out), "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe4\xb8" "e\xff");
	ck_assert_str_eq(out, "a?b??c???d??e?");
}
END_TEST

START_TEST(test_cut)
{
	char out[8];
	size_t used;

	/* 6 bytes fit: the 3-byte character at 5..7 does not, it is not split */
	used = emg_text_clean(out, sizeof(out), "abcde\xe4\xb8\xad");
	ck_assert_uint_eq(used, 5);
	ck_assert_str_eq(out, "abcde");
	used = emg_text_clean(out, sizeof(out), "abcdefg");
	ck_assert_uint_eq(used, 7);
	ck_assert_str_eq(out, "abcdefg");
	used = emg_text_clean(out, sizeof(out), "abcdefgh");
	ck_assert_uint_eq(used, 7); /* src[used] != 0: cut */
	ck_assert_uint_eq(emg_text_clean(out, 1, "abc"), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_bounded)
{
	size_t n = 60 * 1024;
	char *big = malloc(n + 1), out[201];

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', n);
	big[n] = 0;
	ck_assert_uint_eq(emg_text_clean(out, sizeof(out), big), 200);
	ck_assert_uint_eq(strlen(out), 200);
	free(big);
}
END_TEST

/* emg_text_valid: exactly the text emg_text_clean() would keep unchanged. */
START_TEST(test_valid)
{
	static const char *const good[] = { "", "plinth 2", "Liege \xc3\xa4 \xe2\x80\x93 \xf0\x9f\x92\xaa", "~" };
	static const char *const bad[] = { "a\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
					   "a\tb", "a\x1b[2J", "a\x7f", "a\xc2\x9b", "\n" };
	char buf[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(emg_text_valid(good[i]), "'%s' refused", good[i]);
		emg_text_clean(buf, sizeof(buf), good[i]);
		ck_assert_str_eq(buf, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(!emg_text_valid(bad[i]), "bad[%zu] accepted", i);
		emg_text_clean(buf, sizeof(buf), bad[i]);
		ck_assert_str_ne(buf, bad[i]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("text");
	TCase *tc = tcase_create("clean");

	tcase_add_test(tc, test_controls);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_cut);
	tcase_add_test(tc, test_bounded);
	tcase_add_test(tc, test_valid);
	suite_add_tcase(s, tc);
	return test_run(s);
}
