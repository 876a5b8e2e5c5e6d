/* SPDX-License-Identifier: MIT */
/*
 * emg_text: make client-supplied text (an /emgd/marker, a recording name in a
 * message) safe to put in a log line or an EDF+ annotation.
 *
 * A newline plus "<2>" would forge a separate critical journal entry, ESC or
 * CSI sequences reach terminals, and a 60 KB marker would be one 60 KB log
 * line.  emg_text_clean() is the one place that cleans such text: the
 * recorder (annotations) and the daemon (log) both use it.
 */
#ifndef EMG_TEXT_H
#define EMG_TEXT_H

#include <stddef.h>

/* Copy src into dst (size bytes with the NUL): control characters (C0 incl. newline
 * and ESC, DEL, C1) become spaces, invalid UTF-8 bytes '?', valid UTF-8 is kept and
 * the cut falls on a character boundary; returns the bytes of src consumed
 * (src[ret] != '\0' means it was cut). */
size_t emg_text_clean(char *dst, size_t size, const char *src);

/* 1 if s is valid UTF-8 without control characters (what emg_text_clean keeps as is), else 0. */
int emg_text_valid(const char *s);

#endif
