#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int threshold = LOG_NOTICE;
static atomic_int with_prefix;

void emg_log_setup(int level, int prefix)
{
	atomic_store(&threshold, level);
	atomic_store(&with_prefix, prefix != 0);
}

int emg_log_level(void)
{
	return atomic_load(&threshold);
}

static void vlog(int level, const char *fmt, va_list ap)
{
	if (level > atomic_load(&threshold))
		return;
	/* Held over the whole line, so lines from two threads never interleave. */
	flockfile(stderr);
	if (atomic_load(&with_prefix))
		fprintf(stderr, "<%d>", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void emg_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int emg_log_errno(int level, int err, const char *fmt, ...)
{
	char text[EMG_LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	emg_log(level, "%s: %s", text, strerror(err < 0 ? -err : err));
	return err;
}

void emg_log_to(emg_log_fn *fn, void *ud, int level, const char *fmt, ...)
{
	char line[EMG_LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (fn)
		fn(ud, level, line);
	else
		emg_log(level, "%s", line);
}
