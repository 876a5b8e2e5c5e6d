/* SPDX-License-Identifier: MIT */
/* emg_safeio: open configured paths without hanging or being redirected (see safeio.h). */
#include "safeio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *emg_safeio_kind(mode_t m)
{
	if (S_ISREG(m))
		return "a regular file";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "not a regular file";
}

static void say(char *err, size_t errlen, const char *what, const char *path, const char *fmt,
		const char *arg)
{
	char why[160];

	if (!err || !errlen)
		return;
	snprintf(why, sizeof(why), fmt, arg);
	snprintf(err, errlen, "%s%s%s: %s", what ? what : "", what && *what ? " " : "", path, why);
}

int emg_safeio_open(const char *path, unsigned flags, mode_t mode, uint64_t max_bytes,
		    const char *what, char *err, size_t errlen)
{
	int of = O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	struct stat st;
	int fd, fl, e;

	if (!path || !*path) {
		say(err, errlen, what, "\"\"", "%s", "empty path");
		return -EINVAL;
	}
	if (flags & EMG_SAFEIO_CREATE)
		flags |= EMG_SAFEIO_WRITE;
	if (flags & EMG_SAFEIO_WRITE)
		of |= O_RDWR | O_NOFOLLOW;
	else
		of |= O_RDONLY;
	if (flags & EMG_SAFEIO_CREATE)
		of |= O_CREAT | O_EXCL;
	fd = open(path, of, mode);
	if (fd < 0) {
		e = errno;
		/* O_NOFOLLOW on a symlink gives ELOOP: name it. */
		if (e == ELOOP && (flags & EMG_SAFEIO_WRITE))
			say(err, errlen, what, path, "%s", "is a symbolic link (never written through)");
		else
			say(err, errlen, what, path, "%s", strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		say(err, errlen, what, path, "%s", strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		say(err, errlen, what, path, "is %s, not a regular file", emg_safeio_kind(st.st_mode));
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
		char n[64];

		close(fd);
		snprintf(n, sizeof(n), "%llu", (unsigned long long)max_bytes);
		say(err, errlen, what, path, "too large (allowed: at most %s bytes)", n);
		return -EFBIG;
	}
	/* Regular file: blocking reads are what the callers expect from here on. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		e = errno;
		close(fd);
		say(err, errlen, what, path, "%s", strerror(e));
		return -e;
	}
	if (err && errlen)
		err[0] = '\0';
	return fd;
}

int emg_safeio_fd_path(int fd, char *out, size_t len)
{
	struct stat a, b;
	int n = snprintf(out, len, "/proc/self/fd/%d", fd);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/* Without /proc the name would not be the same file: say so, callers fall back. */
	if (fstat(fd, &a) < 0 || stat(out, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -ENOENT;
	return 0;
}
