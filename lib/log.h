/* Logging: named levels, one stderr logger for the process and one formatter for
 * the callbacks through which library modules (drivers, OSCQuery) log. */
#ifndef EMG_LOG_H
#define EMG_LOG_H

/* The levels are syslog's (LOG_ERR 3, LOG_WARNING 4, LOG_NOTICE 5, LOG_INFO 6,
 * LOG_DEBUG 7): journald reads them from a "<N>" prefix on stderr. */
#include <syslog.h>

/* Longest line formatted, bytes; longer ones are cut. */
#define EMG_LOG_LINE_MAX 512

/* How a library module logs: a callback its owner passes in; any thread. */
typedef void emg_log_fn(void *ud, int level, const char *msg);

/* Set up the stderr logger: drop lines above level; prefix each line with
 * "<level>" when prefix is set (journald, a pipe). Call before threads start. */
void emg_log_setup(int level, int prefix);

/* The stderr logger's current threshold (a syslog level). */
int emg_log_level(void);

/* Log one line on stderr if level passes the threshold. Any thread (stdio locks
 * per call); never from the sample path. */
void emg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log "<text>: <strerror(-err)>" and return err (a negative errno), so an error
 * path reads `return emg_log_errno(LOG_ERR, r, "...", ...);`. */
int emg_log_errno(int level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Format one line and hand it to fn(ud, level, line); fn NULL = emg_log(). */
void emg_log_to(emg_log_fn *fn, void *ud, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
