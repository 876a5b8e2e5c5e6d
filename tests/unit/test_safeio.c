/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_safeio: configured paths that are FIFOs, devices,
 * directories or symlinks to them are refused at once with the reason. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "safeio.h"

#include "tmpdir.h"
#include "testutil.h"

static void setup(void)
{
	tmpdir_make("safeio");
	/* A blocking open() would hang the test: the alarm turns that into a failure. */
	alarm(20);
}

static void teardown(void)
{
	alarm(0);
	tmpdir_remove();
}

START_TEST(test_regular_file)
{
	char p[512], err[256], buf[16] = "";
	int fd;

	path_in(p, sizeof(p), "ok.csv");
	write_file(p, "rate = 1000\n");
	fd = emg_safeio_open(p, EMG_SAFEIO_READ, 0, 1024, "replay file", err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	ck_assert_str_eq(err, "");
	/* O_NONBLOCK is cleared and O_CLOEXEC set */
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(read(fd, buf, 4), 4);
	ck_assert_int_eq(memcmp(buf, "rate", 4), 0);
	close(fd);
}
END_TEST

START_TEST(test_fifo)
{
	char p[512], err[256];
	time_t t0 = time(NULL);

	path_in(p, sizeof(p), "fifo.bdf");
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	/* Nobody ever writes: a plain open(O_RDONLY) would block here forever. */
	ck_assert_int_eq(emg_safeio_open(p, EMG_SAFEIO_READ, 0, EMG_SAFEIO_NO_LIMIT, "replay file",
					 err, sizeof(err)),
			 -EINVAL);
	ck_assert_msg(strstr(err, "replay file ") == err && strstr(err, p) &&
			      strstr(err, ": is a FIFO, not a regular file"),
		      "message: %s", err);
	ck_assert_int_le(time(NULL) - t0, 2);
	/* and for writing: O_WRONLY would wait for a reader */
	ck_assert_int_eq(emg_safeio_open(p, EMG_SAFEIO_WRITE, 0, EMG_SAFEIO_NO_LIMIT, NULL, err,
					 sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "is a FIFO"));
}
END_TEST

START_TEST(test_dev_zero)
{
	char err[256];

	ck_assert_int_eq(emg_safeio_open("/dev/zero", EMG_SAFEIO_READ, 0, EMG_SAFEIO_NO_LIMIT,
					 "calibration", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "calibration /dev/zero: is a character device, not a regular file");
}
END_TEST

START_TEST(test_directory)
{
	char err[256];

	ck_assert_int_eq(emg_safeio_open(dir, EMG_SAFEIO_READ, 0, EMG_SAFEIO_NO_LIMIT, NULL, err,
					 sizeof(err)),
			 -EISDIR);
	ck_assert_ptr_nonnull(strstr(err, ": is a directory, not a regular file"));
}
END_TEST

START_TEST(test_symlinks)
{
	char fifo[512], link[512], reg[512], rlink[512], err[256];
	int fd;

	path_in(fifo, sizeof(fifo), "fifo");
	path_in(link, sizeof(link), "link-to-fifo");
	path_in(reg, sizeof(reg), "reg");
	path_in(rlink, sizeof(rlink), "link-to-reg");
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(symlink(fifo, link), 0);
	write_file(reg, "x\n");
	ck_assert_int_eq(symlink(reg, rlink), 0);
	/* reading: judged by the target */
	ck_assert_int_eq(emg_safeio_open(link, EMG_SAFEIO_READ, 0, EMG_SAFEIO_NO_LIMIT, NULL, err,
					 sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "is a FIFO"));
	fd = emg_safeio_open(rlink, EMG_SAFEIO_READ, 0, EMG_SAFEIO_NO_LIMIT, NULL, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* writing: never through a symlink, even to a regular file */
	ck_assert_int_eq(emg_safeio_open(rlink, EMG_SAFEIO_WRITE, 0, EMG_SAFEIO_NO_LIMIT, NULL, err,
					 sizeof(err)),
			 -ELOOP);
	ck_assert_ptr_nonnull(strstr(err, "is a symbolic link"));
	ck_assert_int_eq(emg_safeio_open(rlink, EMG_SAFEIO_CREATE, 0600, EMG_SAFEIO_NO_LIMIT, NULL,
					 err, sizeof(err)),
			 -EEXIST);
}
END_TEST

START_TEST(test_too_large)
{
	char p[512], err[256];
	int fd;

	path_in(p, sizeof(p), "big");
	write_file(p, "0123456789");
	ck_assert_int_eq(emg_safeio_open(p, EMG_SAFEIO_READ, 0, 9, "replay file", err, sizeof(err)),
			 -EFBIG);
	ck_assert_ptr_nonnull(strstr(err, "too large (allowed: at most 9 bytes)"));
	fd = emg_safeio_open(p, EMG_SAFEIO_READ, 0, 10, "replay file", err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	close(fd);
}
END_TEST

START_TEST(test_create)
{
	char p[512], err[256];
	struct stat st;
	int fd;

	path_in(p, sizeof(p), "new.bdf");
	fd = emg_safeio_open(p, EMG_SAFEIO_CREATE, 0640, EMG_SAFEIO_NO_LIMIT, NULL, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "abc", 3), 3);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	close(fd);
	/* never overwritten */
	ck_assert_int_eq(emg_safeio_open(p, EMG_SAFEIO_CREATE, 0640, EMG_SAFEIO_NO_LIMIT, NULL, err,
					 sizeof(err)),
			 -EEXIST);
}
END_TEST

START_TEST(test_fd_path)
{
	char p[512], proc[64], err[256];
	struct stat a, b;
	int fd;

	path_in(p, sizeof(p), "x");
	write_file(p, "x");
	fd = emg_safeio_open(p, EMG_SAFEIO_READ, 0, EMG_SAFEIO_NO_LIMIT, NULL, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	if (emg_safeio_fd_path(fd, proc, sizeof(proc)) == 0) {
		ck_assert_int_eq(stat(proc, &a), 0);
		ck_assert_int_eq(stat(p, &b), 0);
		ck_assert_int_eq(a.st_ino, b.st_ino);
	}
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("safeio");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_regular_file);
	tcase_add_test(tc, test_fifo);
	tcase_add_test(tc, test_dev_zero);
	tcase_add_test(tc, test_directory);
	tcase_add_test(tc, test_symlinks);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_create);
	tcase_add_test(tc, test_fd_path);
	suite_add_tcase(s, tc);
	return test_run(s);
}
