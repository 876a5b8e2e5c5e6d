/* SPDX-License-Identifier: MIT */
/*
 * emg_safeio: the one way emgd opens a file named by configuration or by a
 * client (replay file, calibration.ini, recordings).
 *
 * A configured path may name a FIFO, a device such as /dev/zero, a directory
 * or a symlink to one of them.  A plain open()/read() on those blocks the
 * main thread for good (signals arrive through signalfd on that same thread,
 * so not even SIGTERM gets through) or reads without end.  Every open here:
 *   - uses O_NONBLOCK|O_NOCTTY|O_CLOEXEC, so open() itself never waits for
 *     a FIFO writer or a device;
 *   - fstat()s the descriptor and accepts a regular file only (a symlink is
 *     judged by its target when reading, refused outright when writing:
 *     O_NOFOLLOW);
 *   - refuses a file larger than the caller's cap;
 *   - then clears O_NONBLOCK, so later reads behave normally.
 * Errors come with one line saying why ("replay file /x: is a FIFO, not a
 * regular file").
 */
#ifndef EMG_SAFEIO_H
#define EMG_SAFEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Flags for emg_safeio_open(). */
#define EMG_SAFEIO_READ 0x0u   /* O_RDONLY; a symlink to a regular file is fine */
#define EMG_SAFEIO_WRITE 0x1u  /* O_RDWR|O_NOFOLLOW: never write through a symlink */
#define EMG_SAFEIO_CREATE 0x2u /* with WRITE: O_CREAT|O_EXCL, a new file only (mode applies) */

/* No size limit for emg_safeio_open(). */
#define EMG_SAFEIO_NO_LIMIT UINT64_MAX

/* Open path as a regular file of at most max_bytes; fd or -errno, err says why ("<what> <path>: ..."). */
int emg_safeio_open(const char *path, unsigned flags, mode_t mode, uint64_t max_bytes,
		    const char *what, char *err, size_t errlen);

/* "a FIFO", "a directory", "a character device", ... for a st_mode; "a regular file" if it is one. */
const char *emg_safeio_kind(mode_t st_mode);

/* Write an fd's path as "/proc/self/fd/N" for libraries that only take names (EDFlib); 0 or -errno. */
int emg_safeio_fd_path(int fd, char *out, size_t len);

#endif
