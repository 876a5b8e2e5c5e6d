/* SPDX-License-Identifier: MIT */
/*
 * A scratch directory per test case for the unit tests that write files:
 * created in the fixture's setup, emptied (one level) and removed in its
 * teardown.  Header-only: each test program includes it once.
 */
#ifndef EMG_TEST_TMPDIR_H
#define EMG_TEST_TMPDIR_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

/* Create the scratch directory /tmp/emgd-test-<name>-XXXXXX. */
static void tmpdir_make(const char *name)
{
	snprintf(dir, sizeof(dir), "/tmp/emgd-test-%s-XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Remove the scratch directory and what the test left in it (files, empty directories). */
static void tmpdir_remove(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
				if (unlink(p) < 0)
					rmdir(p);
			}
		closedir(d);
	}
	rmdir(dir);
}

/* buf = the scratch directory's entry `name`. */
static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* Write text to path (created or truncated). */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

#endif
