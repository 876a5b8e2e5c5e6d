/* SPDX-License-Identifier: MIT */
/*
 * emg_recorder: EDF+/BDF+ recording with EDFlib, crash-safe.
 *
 * What EDFlib (1.23) does, read from its source, and what we do about it:
 *
 * - It writes the header at the first sample write with the number of data
 *   records set to "-1", and the real count only in edfclose_file().  Its
 *   own reader (and EDFbrowser) refuse "-1", and also any file whose size
 *   is not exactly header + count * record size.
 *   -> After every data record the recorder pwrite()s the current count
 *      into bytes 236..243 of the header through its own descriptor, after
 *      checking with fstat() that the record really reached the file.
 * - It calls fflush() after each complete data record (blockwrite), so a
 *   record is in the kernel once the call returns; a kill -9 cannot lose it
 *   (power loss can: `sync = true` adds an fdatasync() about once a second).
 * - It keeps annotations in memory and writes them only at edfclose_file(),
 *   one per annotation signal per record, cut to 40 characters; a crash
 *   loses all of them.
 *   -> We never call edfwrite_annotation_*(): EDFlib writes the
 *      time-keeping TAL of every record, and the recorder appends its own
 *      TALs to the annotation signals of the record it has just written
 *      (pread + pwrite of those bytes, never beyond the end of the file),
 *      so annotations are on disk with their record.  An annotation waits
 *      until the record that contains its onset has been written.
 *
 * After a kill -9 the file is therefore readable as is, unless the kill
 * came while EDFlib was in the middle of writing a record (a partial record
 * at the end: EDFlib's reader then refuses the file) or between a record
 * and the count update.  emg_record_repair() (emgctl repair FILE) fixes
 * both: it computes the number of whole records from the file size, checks
 * every record's time-keeping TAL (records that never reached the disk
 * before a power cut read back as zeros and are cut off), truncates to the
 * last good record and rewrites the count.  It takes an exclusive flock()
 * first; the recorder holds one for the whole recording, so a file that is
 * still being written is never touched (-EBUSY).  emg_record_repair_dir()
 * does this for a whole recordings directory (run it at daemon start-up).
 * Loss after kill -9: at most the record being filled (100 ms by default)
 * plus what sat in the ring (~10 ms polling).
 *
 * Disk full / write error: the recorder stops writing, closes the file
 * (EDFlib finalises the header), truncates it to the last whole record,
 * writes the count, and puts "recording stopped: <error>" into the last
 * record's annotations.  From then on frames are counted as dropped; the
 * DSP side never blocks.  A disk that stalls only stalls this thread: the
 * ring fills, the DSP side counts overruns, and when the disk is back the
 * gap in the sample index is zero-filled (<= 60 s, annotated "gap ...")
 * so that time in the file stays device time.  Larger jumps of the sample
 * index are annotated as a discontinuity and not filled.
 *
 * Data records are short (100 ms by default) so that little is lost on a
 * crash and annotations can be written close to real time.  The record
 * duration is the target rounded up so that the record holds a whole
 * number of samples and is a whole number of 10 us (EDFlib's unit): 2000 Hz
 * -> 0.1 s x 200, 125 Hz -> 0.104 s x 13, 2048 Hz -> 0.125 s x 256.
 * On close the last partial record is zero-padded (annotated).  The start
 * time in the header is the wall clock (local time) of the first frame,
 * truncated to the second.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <edflib.h>

#include "envelope.h"
#include "filter.h"
#include "record.h"
#include "ring.h"
#include "safeio.h"
#include "text.h"

#define ANNOT_BYTES 114        /* EDFlib's bytes per annotation signal per record */
#define MAX_ANNOT_SIGNALS 64
#define DEFAULT_RECORD_MS 100.0
#define DEFAULT_BUFFER_S 2.0
#define RING_MAX_BYTES (16u << 20)
#define ANN_RING_SLOTS 256
#define PENDING_MAX 4096
#define GAP_FILL_MAX_S 60.0
#define IDLE_NS 5000000L       /* recorder thread poll period when idle */

/* ------------------------------------------------------------ EDFlib lock */

static pthread_mutex_t edflib_mutex = PTHREAD_MUTEX_INITIALIZER;

void emg_record_edflib_lock(void)
{
	pthread_mutex_lock(&edflib_mutex);
}

void emg_record_edflib_unlock(void)
{
	pthread_mutex_unlock(&edflib_mutex);
}

/* ------------------------------------------------------- header parsing */

struct edf_sig {
	char label[17];
	char transducer[81];
	double pmin, pmax;
	long dmin, dmax;
	unsigned spr;
	size_t off;       /* byte offset inside a data record */
	size_t bytes;     /* bytes per record */
	int annot;
};

struct edf_layout {
	int bdf;
	int plus;         /* EDF+/BDF+ */
	int discontinuous;
	unsigned ns;
	size_t hdrsize;
	size_t recsize;
	long long nrec;   /* as in the header (-1 allowed) */
	double rec_s;
	int first_annot;  /* index of the first annotation signal, -1 if none */
	struct edf_sig *sig;
};

static void field(char *dst, const unsigned char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = 0;
	while (n && dst[n - 1] == ' ')
		dst[--n] = 0;
}

/* A finite decimal number: a NaN or infinity here would poison every size computed from it. */
static int parse_num(const unsigned char *src, size_t n, double *out)
{
	char buf[32], *end;

	field(buf, src, n);
	if (!buf[0])
		return -EINVAL;
	errno = 0;
	*out = strtod(buf, &end);
	return *end || errno || !isfinite(*out) ? -EINVAL : 0;
}

/*
 * An integer field within [min, max], checked before any cast: a header
 * size of "-256" or a record count of "1e30" cast straight to size_t or
 * long long is undefined behaviour (found by tests/fuzz/fuzz_repair.c).
 */
static int parse_int(const unsigned char *src, size_t n, long long min, long long max,
		     long long *out)
{
	char buf[32], *end;
	long long v;

	field(buf, src, n);
	if (!buf[0])
		return -EINVAL;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (*end || errno || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

static int pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)k;
	}
	return 0;
}

static void layout_free(struct edf_layout *l)
{
	free(l->sig);
	l->sig = NULL;
}

/* Parse the fixed and per-signal header of an EDF(+)/BDF(+) file. */
static int layout_read(int fd, struct edf_layout *l)
{
	unsigned char h[256], *s = NULL;
	ssize_t n;

	memset(l, 0, sizeof(*l));
	l->first_annot = -1;
	n = pread_full(fd, h, sizeof(h), 0);
	if (n < 0)
		return (int)n;
	if (n < 256)
		return -ENODATA;
	if (!memcmp(h, "0       ", 8))
		l->bdf = 0;
	else if (h[0] == 0xff && !memcmp(h + 1, "BIOSEMI", 7))
		l->bdf = 1;
	else
		return -EINVAL;
	if (!memcmp(h + 192, l->bdf ? "BDF+" : "EDF+", 4)) {
		l->plus = 1;
		l->discontinuous = h[196] == 'D';
	}
	long long hs_field, ns_field;
	if (parse_int(h + 184, 8, 512, 256LL * 4097, &hs_field) ||
	    parse_int(h + 252, 4, 1, 4096, &ns_field))
		return -EINVAL;
	l->hdrsize = (size_t)hs_field;
	l->ns = (unsigned)ns_field;
	if (l->hdrsize != 256u * (l->ns + 1))
		return -EINVAL;
	/* -1: EDFlib's "still being written"; 99999999 is all 8 characters hold */
	if (parse_int(h + 236, 8, -1, 99999999, &l->nrec))
		return -EINVAL;
	if (parse_num(h + 244, 8, &l->rec_s) || !(l->rec_s >= 0) || l->rec_s > 1e6)
		return -EINVAL;

	size_t hs = (size_t)l->ns * 256;
	s = malloc(hs);
	l->sig = calloc(l->ns, sizeof(*l->sig));
	if (!s || !l->sig) {
		free(s);
		layout_free(l);
		return -ENOMEM;
	}
	n = pread_full(fd, s, hs, 256);
	if (n < (ssize_t)hs) {
		free(s);
		layout_free(l);
		return n < 0 ? (int)n : -ENODATA;
	}
	const unsigned ns = l->ns;
	const size_t o_tr = ns * 16, o_dim = o_tr + ns * 80, o_pmin = o_dim + ns * 8,
		     o_pmax = o_pmin + ns * 8, o_dmin = o_pmax + ns * 8, o_dmax = o_dmin + ns * 8,
		     o_pf = o_dmax + ns * 8, o_spr = o_pf + ns * 80;
	size_t off = 0;
	int r = 0;

	for (unsigned i = 0; i < ns && !r; i++) {
		struct edf_sig *g = &l->sig[i];
		long long d;

		field(g->label, s + i * 16, 16);
		field(g->transducer, s + o_tr + i * 80, 80);
		g->annot = l->plus && (!strcmp(g->label, "EDF Annotations") ||
				       !strcmp(g->label, "BDF Annotations"));
		if (parse_int(s + o_spr + i * 8, 8, 1, 100000000, &d)) {
			r = -EINVAL;
			break;
		}
		g->spr = (unsigned)d;
		if (!g->annot) {
			/* 24-bit BDF samples: digital limits fit in [-2^23, 2^23) */
			if (parse_num(s + o_pmin + i * 8, 8, &g->pmin) ||
			    parse_num(s + o_pmax + i * 8, 8, &g->pmax) ||
			    parse_int(s + o_dmin + i * 8, 8, -8388608, 8388607, &d)) {
				r = -EINVAL;
				break;
			}
			g->dmin = (long)d;
			if (parse_int(s + o_dmax + i * 8, 8, -8388608, 8388607, &d)) {
				r = -EINVAL;
				break;
			}
			g->dmax = (long)d;
		}
		if (g->annot && l->first_annot < 0)
			l->first_annot = (int)i;
		g->off = off;
		g->bytes = (size_t)g->spr * (l->bdf ? 3 : 2);
		off += g->bytes;
	}
	free(s);
	if (r) {
		layout_free(l);
		return r;
	}
	l->recsize = off;
	return 0;
}

/* ------------------------------------------------------------------ TALs */

static int fmt_time(char *p, size_t cap, long long u, int sign)
{
	long long sec = u / 10000, frac = u % 10000;
	int n;

	if (frac) {
		int digits = 4;
		while (frac % 10 == 0) {
			frac /= 10;
			digits--;
		}
		n = snprintf(p, cap, sign ? "+%lld.%0*lld" : "%lld.%0*lld", sec, digits, frac);
	} else {
		n = snprintf(p, cap, sign ? "+%lld" : "%lld", sec);
	}
	return n;
}

/* A TAL "+onset[\x15dur]\x14text\x14\0"; onset/dur in 100 us units (dur < 0: none).
 * Returns its length including the NUL, or -1 if it needs more than cap bytes. */
static int tal_format(char *buf, size_t cap, long long onset_u, long long dur_u, const char *text)
{
	char tmp[ANNOT_BYTES + 64];
	size_t p = 0, tl = strlen(text);

	p += (size_t)fmt_time(tmp, sizeof(tmp), onset_u < 0 ? 0 : onset_u, 1);
	if (dur_u >= 0) {
		tmp[p++] = 0x15;
		p += (size_t)fmt_time(tmp + p, sizeof(tmp) - p, dur_u, 0);
	}
	tmp[p++] = 0x14;
	if (p + tl + 2 > sizeof(tmp))
		return -1;
	memcpy(tmp + p, text, tl);
	p += tl;
	tmp[p++] = 0x14;
	tmp[p++] = 0;
	if (p > cap)
		return -1;
	memcpy(buf, tmp, p);
	return (int)p;
}

/* Bytes in use at the start of one annotation signal (whole TALs). */
static size_t tal_used(const unsigned char *a, size_t n)
{
	size_t used = 0;

	while (used < n && a[used]) {
		size_t q = used;
		while (q + 1 < n && !(a[q] == 0x14 && a[q + 1] == 0))
			q++;
		if (q + 1 >= n)
			return n; /* malformed: treat as full */
		used = q + 2;
	}
	return used;
}

/* Copy text into dst (EMG_RECORD_TEXT_MAX + 1): emg_text_clean(), the same
 * rule the daemon's log uses - control characters become spaces, the cut
 * falls on a UTF-8 character boundary. */
static void text_clean(char *dst, const char *src)
{
	emg_text_clean(dst, EMG_RECORD_TEXT_MAX + 1, src);
}

/* -------------------------------------------------------------- recorder */

struct ann_msg {
	uint64_t sample;
	double duration;
	char text[EMG_RECORD_TEXT_MAX + 1];
};

struct pend {
	uint64_t sample;   /* device sample, when !resolved */
	long long onset_u; /* file time, 100 us units, when resolved */
	long long dur_u;   /* < 0: none */
	int resolved;
	char text[EMG_RECORD_TEXT_MAX + 1];
};

struct emg_recorder {
	char *path;
	int fd;                /* ours: flock, size checks, count and TAL patches */
	int handle;            /* EDFlib, -1 once closed */
	bool edf;
	bool sync;
	unsigned ch, nmus, nsig, nann;
	bool filtered, envelopes;
	double rate;
	unsigned spr;
	double rec_s;
	double pmin, pmax, epmax;
	int dmin, dmax;
	unsigned *mus_ch;
	struct emg_filter *filt;
	struct emg_env *env;
	float *rec;            /* spr x ch, interleaved */
	float *mus;            /* spr x nmus, interleaved */
	float *envb;           /* spr x nmus */
	int *dig;              /* nsig x spr, signal-major */
	unsigned fill;
	unsigned fill_real;    /* device frames (not zero fill) in the record being filled */
	size_t hdrsize, recsize, ann_off;
	unsigned char *annbuf; /* nann x ANNOT_BYTES */
	/* The header's recording-field tail (after "Startdate ... equipment "): EDFlib
	 * cuts the field at 66 of its 80 characters, so header_recording_field()
	 * writes it itself, fitted to what is left of the 80. */
	char serial[64];
	char fdesc[81];        /* filter, as emg_filter_describe() says it, "" = none */
	char info[81];         /* recording_info as given, "" = serial= + filter */

	struct emg_ring *data;
	size_t slot_size;
	struct emg_ring *ann;

	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	atomic_bool accepting;

	/* stats, written by the recorder thread (dropped_w by the DSP thread,
	 * ann_dropped_m by the main thread) */
	_Atomic uint64_t frames_written, frames_filled, dropped_t, dropped_w, records, bytes,
		annotations, ann_dropped, ann_dropped_m;
	atomic_int error;
	atomic_int state;

	/* recorder thread only */
	bool have_first;
	uint64_t seq_base;     /* file frame index = seq - seq_base */
	bool rebased;          /* seq_base moved at a discontinuity: samples before it are not "early" */
	uint64_t next_seq;
	uint64_t pos;          /* frames in the file including the partial record */
	uint64_t gap_max;
	uint64_t last_sync_ns;
	struct pend *pq;
	unsigned pq_head, pq_len;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *muscle_at(const struct emg_muscles *m, unsigned ch)
{
	unsigned n = m ? emg_muscles_count(m) : 0;

	for (unsigned i = 0; i < n; i++) {
		const struct emg_muscle *mu = emg_muscles_get(m, i);
		if (mu->channel == ch)
			return mu->name;
	}
	return NULL;
}

/* Samples per record and record duration (10 us units) for a target duration. */
static int record_geometry(double rate, double target_s, unsigned *spr, long *units)
{
	unsigned n = (unsigned)ceil(rate * target_s - 1e-9);

	if (n < 1)
		n = 1;
	for (; (double)n <= rate * 60.0 + 1e-9 && n < 5000000u; n++) {
		double u = (double)n * 1e5 / rate;
		double ur = nearbyint(u);
		if (fabs(u - ur) <= 1e-9 * ur && ur >= 100 && ur <= 6000000) {
			*spr = n;
			*units = (long)ur;
			return 0;
		}
	}
	return -EINVAL;
}

static int edflib_err(int e)
{
	switch (e) {
	case EDFLIB_MALLOC_ERROR: return -ENOMEM;
	case EDFLIB_NO_SUCH_FILE_OR_DIRECTORY: return errno ? -errno : -ENOENT;
	case EDFLIB_MAXFILES_REACHED: return -EMFILE;
	case EDFLIB_FILE_ALREADY_OPENED: return -EBUSY;
	case EDFLIB_NUMBER_OF_SIGNALS_INVALID: return -EINVAL;
	default: return -EIO;
	}
}

static inline int quant(float x, double pmin, double scale, int dmin, int dmax)
{
	double d = ((double)x - pmin) * scale + (double)dmin;

	if (!(d >= (double)dmin)) /* also NaN */
		return dmin;
	if (d >= (double)dmax)
		return dmax;
	return (int)lrint(d);
}

static double rec_end_u(const struct emg_recorder *r, uint64_t k)
{
	return (double)(k + 1) * r->rec_s * 1e4;
}

/*
 * An event that began `early` seconds before the file's first sample (a
 * repetition or burst under way when recording started) cannot sit at its
 * true time: it goes at 0.000 s, says so in front of its text (the front
 * survives a cut), and keeps only the part of its duration inside the file.
 */
static void mark_early(struct emg_recorder *r, struct pend *p, double early)
{
	char buf[2 * EMG_RECORD_TEXT_MAX + 40];

	snprintf(buf, sizeof(buf), "[began %.3f s before the recording] %s", early, p->text);
	text_clean(p->text, buf);
	if (p->dur_u >= 0) {
		long long inside = p->dur_u - llround(early * 1e4);
		p->dur_u = inside > 0 ? inside : 0;
	}
}

/*
 * Turn a device sample index into file time.  This waits until the recorder
 * has seen that sample (so that a gap or discontinuity before it is already
 * accounted for), unless `force` (closing).  Annotations are placed in
 * order, so one for a sample that never comes waits until the close.
 */
static void pend_resolve(struct emg_recorder *r, struct pend *p, bool force)
{
	if (p->resolved || !r->have_first)
		return;
	if (p->sample == EMG_RECORD_NOW)
		p->sample = r->next_seq ? r->next_seq - 1 : 0;
	if (!force && p->sample >= r->next_seq)
		return;
	/* signed: after a discontinuity seq_base may lie above earlier samples */
	int64_t d = (int64_t)(p->sample - r->seq_base);
	p->onset_u = d > 0 ? llround((double)d * 1e4 / r->rate) : 0;
	p->resolved = 1;
	if (d < 0 && !r->rebased)
		mark_early(r, p, (double)-d / r->rate);
}

static void pend_push(struct emg_recorder *r, const struct pend *p)
{
	if (r->pq_len == PENDING_MAX) {
		atomic_fetch_add_explicit(&r->ann_dropped, 1, memory_order_relaxed);
		return;
	}
	r->pq[(r->pq_head + r->pq_len) % PENDING_MAX] = *p;
	r->pq_len++;
}

/* An annotation made by the recorder itself, at file frame `frame`. */
static void note(struct emg_recorder *r, uint64_t frame, double dur_s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void note(struct emg_recorder *r, uint64_t frame, double dur_s, const char *fmt, ...)
{
	struct pend p = { .resolved = 1 };
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	text_clean(p.text, buf);
	p.onset_u = llround((double)frame * 1e4 / r->rate);
	p.dur_u = dur_s >= 0 ? llround(dur_s * 1e4) : -1;
	pend_push(r, &p);
}

/*
 * Append pending annotations to the annotation signals of record k.  With
 * `all`, any pending annotation goes; otherwise only those whose onset lies
 * before the end of record k.  Stops at the first one that does not fit so
 * that the order is kept.  Returns 0 or -errno (I/O).
 */
static int place(struct emg_recorder *r, uint64_t k, bool all)
{
	const off_t at = (off_t)(r->hdrsize + k * r->recsize + r->ann_off);
	const size_t n = (size_t)r->nann * ANNOT_BYTES;
	size_t used[MAX_ANNOT_SIGNALS];
	bool dirty = false;
	ssize_t got;

	if (!r->pq_len)
		return 0;
	/* Anything eligible at all? Avoid the read if not. */
	if (!all) {
		struct pend *p = &r->pq[r->pq_head];
		pend_resolve(r, p, false);
		if (!p->resolved || (double)p->onset_u >= rec_end_u(r, k))
			return 0;
	}
	got = pread_full(r->fd, r->annbuf, n, at);
	if (got < 0)
		return (int)got;
	if ((size_t)got < n)
		return -EIO;
	for (unsigned s = 0; s < r->nann; s++)
		used[s] = tal_used(r->annbuf + s * ANNOT_BYTES, ANNOT_BYTES);
	if (used[0] == 0)
		return -EPROTO; /* no time-keeping TAL: not our record layout */
	while (r->pq_len) {
		struct pend *p = &r->pq[r->pq_head];
		char tal[ANNOT_BYTES];
		int len = -1;
		unsigned s;

		pend_resolve(r, p, all);
		if (!p->resolved || (!all && (double)p->onset_u >= rec_end_u(r, k)))
			break;
		for (s = 0; s < r->nann; s++) {
			/* keep one NUL after the last TAL of each signal */
			len = tal_format(tal, ANNOT_BYTES - used[s] - 1, p->onset_u, p->dur_u, p->text);
			if (len > 0)
				break;
		}
		if (len <= 0)
			break; /* full; any TAL fits the empty second signal of a later record */
		memcpy(r->annbuf + s * ANNOT_BYTES + used[s], tal, (size_t)len);
		used[s] += (size_t)len;
		dirty = true;
		atomic_fetch_add_explicit(&r->annotations, 1, memory_order_relaxed);
		r->pq_head = (r->pq_head + 1) % PENDING_MAX;
		r->pq_len--;
	}
	/* Empty: start over at slot 0.  Walking round the 4096 slots (448 KiB)
	 * touched a new page every ~36 annotations, so resident memory grew for
	 * hours before it wrapped (issue 16 #12); now only as many slots as are
	 * ever pending at once are touched. */
	if (r->pq_len == 0)
		r->pq_head = 0;
	if (!dirty)
		return 0;
	return pwrite_full(r->fd, r->annbuf, n, at);
}

static int write_count(int fd, long long nrec)
{
	char f[16];

	snprintf(f, sizeof(f), "%-8lld", nrec);
	return pwrite_full(fd, f, 8, 236);
}

/*
 * The tail of the recording field for room characters: serial= (replay reads it
 * back) and the whole filter description, abbreviated rather than cut:
 * "serial=S DSP HP:20Hz LP:450Hz N:50Hz", then without "DSP", then
 * "HP:20 LP:450 N:50Hz", and only then a shorter serial.
 */
static void recording_tail(const struct emg_recorder *r, char *out, size_t room)
{
	char shortf[81];
	size_t k = 0, slen;
	int n;

	if (r->info[0]) {
		snprintf(out, room + 1, "%s", r->info);
		return;
	}
	if (!r->fdesc[0]) {
		snprintf(out, room + 1, "serial=%s", r->serial);
		return;
	}
	n = snprintf(out, room + 1, "serial=%s DSP %s", r->serial, r->fdesc);
	if (n >= 0 && (size_t)n <= room)
		return;
	n = snprintf(out, room + 1, "serial=%s %s", r->serial, r->fdesc);
	if (n >= 0 && (size_t)n <= room)
		return;
	/* every "Hz" but the last: the unit still reads from the end */
	for (const char *p = r->fdesc; *p && k + 1 < sizeof(shortf); p++) {
		if (p[0] == 'H' && p[1] == 'z' && p[2] == ' ') {
			p++;
			continue;
		}
		shortf[k++] = *p;
	}
	shortf[k] = 0;
	slen = strlen("serial=") + 1 + k;
	if (slen > room) /* no room for the serial at all: the filter wins */
		snprintf(out, room + 1, "%s", shortf);
	else /* fits by construction: serial cut to what room leaves beside the filter */
		memcpy(out + sprintf(out, "serial=%.*s ", (int)(room - slen), r->serial), shortf, k + 1);
}

/* Rewrite bytes 88..167 (EDF+ "Startdate dd-MMM-yyyy admin technician equipment
 * ...") keeping EDFlib's first five subfields and using all 80 characters. */
static int header_recording_field(struct emg_recorder *r)
{
	char f[81], tail[81];
	size_t at = 0;
	int e;

	if (pread(r->fd, f, 80, 88) != 80)
		return -EIO;
	f[80] = 0;
	for (int sub = 0; sub < 5; sub++) {
		while (at < 80 && f[at] != ' ')
			at++;
		while (at < 80 && f[at] == ' ')
			at++;
	}
	if (at >= 80)
		return 0; /* no room left: leave EDFlib's field as it is */
	recording_tail(r, tail, 80 - at);
	memset(f + at, ' ', 80 - at);
	memcpy(f + at, tail, strlen(tail));
	e = pwrite_full(r->fd, f, 80, 88);
	return e;
}

/* Check the header EDFlib wrote against what we asked for. */
static int verify_layout(struct emg_recorder *r)
{
	struct edf_layout l;
	int e = layout_read(r->fd, &l);

	if (e)
		return e == -ENODATA ? -EIO : -EPROTO;
	e = -EPROTO;
	if (l.bdf != !r->edf || !l.plus || l.ns != r->nsig + r->nann ||
	    fabs(l.rec_s - r->rec_s) > 1e-9 * r->rec_s)
		goto out;
	for (unsigned i = 0; i < l.ns; i++) {
		const struct edf_sig *g = &l.sig[i];
		if (i < r->nsig) {
			double pmax = i >= r->ch + (r->filtered ? r->nmus : 0) ? r->epmax : r->pmax;
			double pmin = i >= r->ch + (r->filtered ? r->nmus : 0) ? 0 : r->pmin;
			if (g->annot || g->spr != r->spr || g->pmin != pmin || g->pmax != pmax ||
			    g->dmin != r->dmin || g->dmax != r->dmax)
				goto out;
		} else if (!g->annot || g->bytes != ANNOT_BYTES) {
			goto out;
		}
	}
	if (l.hdrsize != 256u * (l.ns + 1))
		goto out;
	r->hdrsize = l.hdrsize;
	r->recsize = l.recsize;
	r->ann_off = l.sig[r->nsig].off;
	e = 0;
out:
	layout_free(&l);
	return e;
}

static void set_error(struct emg_recorder *r, int e)
{
	int zero = 0;

	atomic_compare_exchange_strong(&r->error, &zero, e);
}

/*
 * A file whose last link is gone (its directory removed, or rm) still takes
 * writes, so nothing else would notice: the recording would be reported as
 * closed successfully while its data is already lost.  Checked with the
 * fstat() of every record and at close; every frame written counts as dropped.
 */
static bool deleted(struct emg_recorder *r, const struct stat *st)
{
	if (st->st_nlink != 0)
		return false;
	if (atomic_load_explicit(&r->error, memory_order_relaxed) != -EMG_RECORD_EDELETED) {
		atomic_fetch_add_explicit(&r->dropped_t,
					  atomic_load_explicit(&r->frames_written, memory_order_relaxed),
					  memory_order_relaxed);
		/* the first error wins elsewhere; this one says more than any other */
		atomic_store(&r->error, -EMG_RECORD_EDELETED);
	}
	return true;
}

static uint64_t file_records(const struct emg_recorder *r)
{
	return atomic_load_explicit(&r->records, memory_order_relaxed);
}

/* Close EDFlib, make the file exactly header + whole records with the right
 * count, put the remaining annotations into the last records. */
static int finalize(struct emg_recorder *r)
{
	uint64_t nrec = file_records(r);
	int e = 0;

	if (r->handle >= 0) {
		emg_record_edflib_lock();
		if (edfclose_file(r->handle) < 0)
			e = -EIO;
		emg_record_edflib_unlock();
		r->handle = -1;
	}
	if (nrec == 0)
		return e;
	/* edfclose_file() wrote the whole header again */
	int he = header_recording_field(r);
	if (he && !e)
		e = he;
	if (ftruncate(r->fd, (off_t)(r->hdrsize + nrec * r->recsize)) < 0 && !e)
		e = -errno;
	/* Whatever is still pending goes into the last records, newest first. */
	for (uint64_t k = nrec; k-- > 0 && r->pq_len;) {
		int pe = place(r, k, true);
		if (pe < 0) {
			if (!e)
				e = pe;
			break;
		}
		if (nrec - k > 64)
			break;
	}
	atomic_fetch_add_explicit(&r->ann_dropped, r->pq_len, memory_order_relaxed);
	r->pq_len = 0;
	int ce = write_count(r->fd, (long long)nrec);
	if (ce && !e)
		e = ce;
	if (fdatasync(r->fd) < 0 && !e && errno != EINVAL)
		e = -errno;
	struct stat st;
	if (!fstat(r->fd, &st)) {
		atomic_store_explicit(&r->bytes, (uint64_t)st.st_size, memory_order_relaxed);
		if (deleted(r, &st))
			e = -EMG_RECORD_EDELETED;
	}
	return e;
}

/* Stop on a write error; the file keeps every complete record. */
static void fail(struct emg_recorder *r, int e)
{
	char msg[64];

	set_error(r, e);
	atomic_store_explicit(&r->accepting, false, memory_order_release);
	atomic_store_explicit(&r->state, EMG_RECORD_FAILED, memory_order_release);
	/* the device frames of the record being filled will never be written */
	atomic_fetch_add_explicit(&r->dropped_t, r->fill_real, memory_order_relaxed);
	r->fill = 0;
	r->fill_real = 0;
	snprintf(msg, sizeof(msg), "%s", strerror(-e));
	note(r, file_records(r) * r->spr, -1, "recording stopped: %s", msg);
	finalize(r);
}

static void write_record(struct emg_recorder *r)
{
	const unsigned spr = r->spr, ch = r->ch, nm = r->nmus;
	const double scale = ((double)r->dmax - r->dmin) / (r->pmax - r->pmin);
	const double escale = ((double)r->dmax - r->dmin) / r->epmax;
	int *d = r->dig;
	uint64_t k = file_records(r);
	int e;

	for (unsigned s = 0; s < ch; s++, d += spr)
		for (unsigned f = 0; f < spr; f++)
			d[f] = quant(r->rec[(size_t)f * ch + s], r->pmin, scale, r->dmin, r->dmax);
	if (nm && (r->filtered || r->envelopes)) {
		for (unsigned f = 0; f < spr; f++)
			for (unsigned m = 0; m < nm; m++)
				r->mus[(size_t)f * nm + m] = r->rec[(size_t)f * ch + r->mus_ch[m]];
		emg_filter_run(r->filt, r->mus, spr);
		if (r->filtered)
			for (unsigned m = 0; m < nm; m++, d += spr)
				for (unsigned f = 0; f < spr; f++)
					d[f] = quant(r->mus[(size_t)f * nm + m], r->pmin, scale,
						     r->dmin, r->dmax);
		if (r->envelopes) {
			emg_env_run(r->env, r->mus, r->envb, spr);
			for (unsigned m = 0; m < nm; m++, d += spr)
				for (unsigned f = 0; f < spr; f++)
					d[f] = quant(r->envb[(size_t)f * nm + m], 0.0, escale,
						     r->dmin, r->dmax);
		}
	}

	errno = 0;
	int rc = edf_blockwrite_digital_samples(r->handle, r->dig);
	int saved = errno;
	if (k == 0 && rc == 0) {
		e = verify_layout(r);
		if (!e)
			e = header_recording_field(r);
		if (e) {
			fail(r, e);
			return;
		}
	}
	struct stat st;
	if (rc < 0 || fstat(r->fd, &st) < 0 ||
	    (uint64_t)st.st_size < r->hdrsize + (k + 1) * r->recsize) {
		if (!saved || saved == EINTR)
			saved = rc < 0 ? EIO : ENOSPC;
		/* EDFlib does not check fflush(): a short file means the disk refused */
		fail(r, -saved);
		return;
	}
	atomic_store_explicit(&r->records, k + 1, memory_order_relaxed);
	atomic_store_explicit(&r->bytes, (uint64_t)st.st_size, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->frames_written, r->fill_real, memory_order_relaxed);
	r->fill = 0;
	r->fill_real = 0;
	if (st.st_nlink == 0) {
		deleted(r, &st);
		fail(r, -EMG_RECORD_EDELETED);
		return;
	}
	e = place(r, k, false);
	if (!e)
		e = write_count(r->fd, (long long)(k + 1));
	if (e) {
		fail(r, e);
		return;
	}
	if (r->sync) {
		uint64_t t = now_ns();
		if (t - r->last_sync_ns >= 1000000000u) {
			fdatasync(r->fd);
			r->last_sync_ns = t;
		}
	}
}

static void append(struct emg_recorder *r, const float *x)
{
	float *dst = r->rec + (size_t)r->fill * r->ch;

	if (x) {
		memcpy(dst, x, r->ch * sizeof(float));
		r->fill_real++;
	} else
		memset(dst, 0, r->ch * sizeof(float));
	r->pos++;
	if (++r->fill == r->spr)
		write_record(r);
}

static void first_frame(struct emg_recorder *r, uint64_t seq)
{
	time_t t = time(NULL);
	struct tm tm;

	r->have_first = true;
	r->seq_base = seq;
	r->next_seq = seq;
	for (unsigned i = 0; i < r->pq_len; i++) {
		struct pend *p = &r->pq[(r->pq_head + i) % PENDING_MAX];
		if (!p->resolved && p->sample == EMG_RECORD_NOW)
			p->sample = seq;
	}
	localtime_r(&t, &tm);
	if (tm.tm_year + 1900 >= 1985 && tm.tm_year + 1900 <= 2084)
		edf_set_startdatetime(r->handle, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
				      tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void frame_in(struct emg_recorder *r, uint64_t seq, const float *x)
{
	if (atomic_load_explicit(&r->state, memory_order_relaxed) != EMG_RECORD_RUNNING) {
		atomic_fetch_add_explicit(&r->dropped_t, 1, memory_order_relaxed);
		return;
	}
	if (!r->have_first)
		first_frame(r, seq);
	if (seq != r->next_seq) {
		if (seq > r->next_seq && seq - r->next_seq <= r->gap_max) {
			uint64_t gap = seq - r->next_seq;
			note(r, r->pos, (double)gap / r->rate,
			     "gap: %llu frames lost, zero-filled", (unsigned long long)gap);
			atomic_fetch_add_explicit(&r->frames_filled, gap, memory_order_relaxed);
			for (uint64_t i = 0; i < gap; i++) {
				append(r, NULL);
				if (atomic_load_explicit(&r->state, memory_order_relaxed) !=
				    EMG_RECORD_RUNNING) {
					atomic_fetch_add_explicit(&r->dropped_t, 1,
								  memory_order_relaxed);
					return;
				}
			}
		} else {
			note(r, r->pos, -1, "discontinuity: sample %llu follows %llu",
			     (unsigned long long)seq,
			     (unsigned long long)(r->next_seq ? r->next_seq - 1 : 0));
			r->seq_base = seq - r->pos;
			r->rebased = true;
		}
	}
	r->next_seq = seq + 1;
	append(r, x);
}

static void drain_annotations(struct emg_recorder *r)
{
	const struct ann_msg *m;

	while (r->pq_len < PENDING_MAX && (m = emg_ring_peek(r->ann))) {
		struct pend p = { .sample = m->sample };

		p.dur_u = m->duration >= 0 ? llround(m->duration * 1e4) : -1;
		memcpy(p.text, m->text, sizeof(p.text));
		emg_ring_release(r->ann);
		if (atomic_load_explicit(&r->state, memory_order_relaxed) == EMG_RECORD_FAILED) {
			atomic_fetch_add_explicit(&r->ann_dropped, 1, memory_order_relaxed);
			continue;
		}
		pend_resolve(r, &p, false);
		pend_push(r, &p);
	}
}

static unsigned drain_frames(struct emg_recorder *r)
{
	const unsigned char *s;
	unsigned n = 0;

	while ((s = emg_ring_peek(r->data))) {
		uint64_t seq;

		memcpy(&seq, s, sizeof(seq));
		frame_in(r, seq, (const float *)(s + sizeof(uint64_t)));
		emg_ring_release(r->data);
		if (++n % 4096 == 0)
			drain_annotations(r);
	}
	return n;
}

static void finish(struct emg_recorder *r)
{
	drain_annotations(r);
	if (atomic_load_explicit(&r->state, memory_order_relaxed) != EMG_RECORD_RUNNING)
		return;
	if (r->fill) {
		unsigned pad = r->spr - r->fill;
		note(r, r->pos, (double)pad / r->rate, "end of data: %u zero frames of padding",
		     pad);
		atomic_fetch_add_explicit(&r->frames_filled, pad, memory_order_relaxed);
		while (r->fill && atomic_load_explicit(&r->state, memory_order_relaxed) ==
					  EMG_RECORD_RUNNING)
			append(r, NULL);
	}
	if (atomic_load_explicit(&r->state, memory_order_relaxed) != EMG_RECORD_RUNNING)
		return;
	uint64_t dropped = emg_ring_overruns(r->data) +
			   atomic_load_explicit(&r->dropped_w, memory_order_relaxed);
	if (dropped)
		note(r, r->pos, -1, "recorder dropped %llu frames", (unsigned long long)dropped);
	int e = finalize(r);
	if (e)
		set_error(r, e);
}

static void *recorder_thread(void *arg)
{
	struct emg_recorder *r = arg;

	for (;;) {
		bool stopping = atomic_load_explicit(&r->stop, memory_order_acquire);
		unsigned n;

		drain_annotations(r);
		n = drain_frames(r);
		if (stopping && !emg_ring_peek(r->data))
			break;
		if (!n) {
			struct timespec ts = { .tv_sec = 0, .tv_nsec = IDLE_NS };
			while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
				;
		}
	}
	finish(r);
	return NULL;
}

/* Round the physical range outwards to integers that EDF's 8-character fields hold exactly. */
static int phys_range(const struct emg_device_info *dev, double *pmin, double *pmax)
{
	double lo = floor(dev->phys_min_uv), hi = ceil(dev->phys_max_uv);

	if (!isfinite(lo) || !isfinite(hi) || hi - lo < 1)
		return -EINVAL;
	if (lo < -9999999)
		lo = -9999999;
	if (hi > 99999999)
		hi = 99999999;
	*pmin = lo;
	*pmax = hi;
	return 0;
}

static void copy_label(char *dst, size_t n, const char *name, const char *suffix)
{
	size_t sl = strlen(suffix), keep = 16 - sl;

	snprintf(dst, n, "%.*s%s", (int)keep, name, suffix);
}

static void sanitize_token(char *dst, size_t n, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < n; src++) {
		unsigned char c = (unsigned char)*src;
		dst[i++] = (c > 0x20 && c < 0x7f) ? (char)c : '_';
	}
	dst[i] = 0;
}

static void rec_free(struct emg_recorder *r)
{
	if (r->fd >= 0)
		close(r->fd);
	emg_ring_free(r->data);
	emg_ring_free(r->ann);
	emg_filter_free(r->filt);
	emg_env_free(r->env);
	free(r->mus_ch);
	free(r->rec);
	free(r->mus);
	free(r->envb);
	free(r->dig);
	free(r->annbuf);
	free(r->pq);
	free(r->path);
	free(r);
}

static int setup_signals(struct emg_recorder *r, const struct emg_record_params *p)
{
	const struct emg_device_info *dev = p->dev;
	const int h = r->handle;
	char label[17], pf[81], tr[81];
	unsigned s = 0;
	int bad = 0;

	if (r->nmus && (r->filtered || r->envelopes))
		emg_filter_describe(r->filt, pf, sizeof(pf));
	for (unsigned i = 0; i < r->nsig; i++) {
		bad |= edf_set_samplefrequency(h, (int)i, (int)r->spr);
		bad |= edf_set_digital_maximum(h, (int)i, r->dmax);
		bad |= edf_set_digital_minimum(h, (int)i, r->dmin);
		bad |= edf_set_physical_dimension(h, (int)i, "uV");
	}
	for (unsigned c = 0; c < r->ch; c++, s++) {
		const char *m = muscle_at(p->muscles, c);
		if (m)
			copy_label(label, sizeof(label), m, "");
		else
			snprintf(label, sizeof(label), "ch%u", c);
		bad |= edf_set_label(h, (int)s, label);
		bad |= edf_set_physical_maximum(h, (int)s, r->pmax);
		bad |= edf_set_physical_minimum(h, (int)s, r->pmin);
		bad |= edf_set_prefilter(h, (int)s, "none");
		bad |= edf_set_transducer(h, (int)s, "sEMG surface electrodes");
	}
	if (r->filtered)
		for (unsigned m = 0; m < r->nmus; m++, s++) {
			copy_label(label, sizeof(label), muscle_at(p->muscles, r->mus_ch[m]), "_f");
			bad |= edf_set_label(h, (int)s, label);
			bad |= edf_set_physical_maximum(h, (int)s, r->pmax);
			bad |= edf_set_physical_minimum(h, (int)s, r->pmin);
			bad |= edf_set_prefilter(h, (int)s, pf);
			bad |= edf_set_transducer(h, (int)s, "emgd: band-pass + notch");
		}
	if (r->envelopes)
		for (unsigned m = 0; m < r->nmus; m++, s++) {
			copy_label(label, sizeof(label), muscle_at(p->muscles, r->mus_ch[m]),
				   "_rms");
			bad |= edf_set_label(h, (int)s, label);
			bad |= edf_set_physical_maximum(h, (int)s, r->epmax);
			bad |= edf_set_physical_minimum(h, (int)s, 0.0);
			bad |= edf_set_prefilter(h, (int)s, pf);
			snprintf(tr, sizeof(tr), "emgd: RMS envelope %g ms",
				 p->rms_window_ms > 0 ? p->rms_window_ms : 125.0);
			bad |= edf_set_transducer(h, (int)s, tr);
		}

	char eq[64], info[81];
	if (p->equipment)
		snprintf(eq, sizeof(eq), "%s", p->equipment);
	else
		sanitize_token(eq, sizeof(eq), dev->driver[0] ? dev->driver : "emgd");
	sanitize_token(r->serial, sizeof(r->serial), dev->serial[0] ? dev->serial : "unknown");
	if (p->recording_info) {
		snprintf(r->info, sizeof(r->info), "%s", p->recording_info);
	} else {
		struct emg_filter *tmp = NULL;
		struct emg_filter_spec def;
		const struct emg_filter_spec *fs = p->filter;
		if (!fs) {
			emg_filter_spec_default(&def);
			fs = &def;
		}
		if (emg_filter_new(&tmp, fs, dev->rate, 1) == 0) {
			emg_filter_describe(tmp, r->fdesc, sizeof(r->fdesc));
			emg_filter_free(tmp);
		}
	}
	/* EDFlib cuts this; header_recording_field() writes the whole text later. */
	recording_tail(r, info, sizeof(info) - 1);
	bad |= edf_set_equipment(h, eq);
	bad |= edf_set_recording_additional(h, info);
	return bad ? -EINVAL : 0;
}

/* Which channels are muscles, how many signals the file has; the filter and envelope they need. */
static int rec_layout(struct emg_recorder *r, const struct emg_record_params *p)
{
	/* muscles present on this device, in map order */
	unsigned nm = p->muscles ? emg_muscles_count(p->muscles) : 0;
	int e;

	r->mus_ch = calloc(nm ? nm : 1, sizeof(unsigned));
	if (!r->mus_ch)
		return -ENOMEM;
	for (unsigned i = 0; i < nm; i++) {
		const struct emg_muscle *m = emg_muscles_get(p->muscles, i);
		if (m->channel < r->ch)
			r->mus_ch[r->nmus++] = m->channel;
	}
	r->filtered = p->filtered && r->nmus;
	r->envelopes = p->envelopes && r->nmus;
	r->nsig = r->ch + (r->filtered ? r->nmus : 0) + (r->envelopes ? r->nmus : 0);
	r->nann = (unsigned)ceil(10.0 * r->rec_s);
	if (r->nann < 2)
		r->nann = 2;
	if (r->nann > MAX_ANNOT_SIGNALS)
		r->nann = MAX_ANNOT_SIGNALS;
	if (r->nsig + r->nann > EDFLIB_MAXSIGNALS)
		return -E2BIG;
	if (r->filtered || r->envelopes) {
		struct emg_filter_spec def;
		const struct emg_filter_spec *fs = p->filter;
		if (!fs) {
			emg_filter_spec_default(&def);
			fs = &def;
		}
		e = emg_filter_new(&r->filt, fs, r->rate, r->nmus);
		if (e)
			return e;
		double ms = p->rms_window_ms > 0 ? p->rms_window_ms : 125.0;
		long win = lround(ms * 1e-3 * r->rate);
		e = emg_env_new(&r->env, r->nmus, (unsigned)(win < 1 ? 1 : win));
		if (e)
			return e;
	}
	return 0;
}

/* The record buffers and the two rings (frames, annotations). */
static int rec_buffers(struct emg_recorder *r, const struct emg_record_params *p)
{
	int e;

	r->rec = calloc((size_t)r->spr * r->ch, sizeof(float));
	r->mus = calloc((size_t)r->spr * (r->nmus ? r->nmus : 1), sizeof(float));
	r->envb = calloc((size_t)r->spr * (r->nmus ? r->nmus : 1), sizeof(float));
	r->dig = calloc((size_t)r->spr * r->nsig, sizeof(int));
	r->annbuf = calloc(r->nann, ANNOT_BYTES);
	r->pq = calloc(PENDING_MAX, sizeof(*r->pq));
	r->path = strdup(p->path);
	if (!r->rec || !r->mus || !r->envb || !r->dig || !r->annbuf || !r->pq || !r->path)
		return -ENOMEM;

	/* frame ring: [u64 seq][ch floats] per slot */
	r->slot_size = (sizeof(uint64_t) + r->ch * sizeof(float) + 7) & ~(size_t)7;
	double buf_s = p->buffer_s > 0 ? p->buffer_s : DEFAULT_BUFFER_S;
	uint64_t want = (uint64_t)ceil(buf_s * r->rate), slots = 16;
	while (slots < want && slots < (1u << 30))
		slots <<= 1;
	while (slots > 16 && slots * r->slot_size > RING_MAX_BYTES)
		slots >>= 1;
	e = emg_ring_new(&r->data, (uint32_t)slots, r->slot_size, 0);
	if (!e)
		e = emg_ring_new(&r->ann, ANN_RING_SLOTS, sizeof(struct ann_msg), 0);
	return e;
}

/* Undo rec_create_file(): close the EDFlib handle and remove the file. */
static void rec_discard_file(struct emg_recorder *r, const char *path)
{
	emg_record_edflib_lock();
	edfclose_file(r->handle);
	emg_record_edflib_unlock();
	r->handle = -1;
	unlink(path);
}

/* Create the file and its EDF+/BDF+ header; on failure nothing of it is left. */
static int rec_create_file(struct emg_recorder *r, const struct emg_record_params *p, long units)
{
	int e;

	/* Claim the name: never overwrite, never through a symlink (emg_safeio).
	 * EDFlib then re-opens it with fopen("wb") - by /proc/self/fd/N where
	 * possible, so it opens the very file claimed here. */
	r->fd = emg_safeio_open(p->path, EMG_SAFEIO_CREATE, 0640, EMG_SAFEIO_NO_LIMIT, NULL, NULL, 0);
	if (r->fd < 0)
		return r->fd;
	if (flock(r->fd, LOCK_EX | LOCK_NB) < 0) {
		e = -errno;
		goto fail_unlink;
	}
	char fdpath[64];
	const char *edfpath = emg_safeio_fd_path(r->fd, fdpath, sizeof(fdpath)) == 0 ? fdpath : p->path;
	emg_record_edflib_lock();
	errno = 0;
	r->handle = edfopen_file_writeonly(edfpath, p->edf ? EDFLIB_FILETYPE_EDFPLUS
							    : EDFLIB_FILETYPE_BDFPLUS,
					   (int)r->nsig);
	if (r->handle < 0) {
		e = edflib_err(r->handle);
		emg_record_edflib_unlock();
		goto fail_unlink;
	}
	emg_record_edflib_unlock();
	struct stat a, b;
	if (fstat(r->fd, &a) < 0 || stat(p->path, &b) < 0 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev) {
		e = -EBUSY; /* the name was replaced under us */
		goto fail_edf;
	}
	e = setup_signals(r, p);
	if (!e && units != 100000 && edf_set_datarecord_duration(r->handle, (int)units) < 0)
		e = -EINVAL;
	if (!e && edf_set_number_of_annotation_signals(r->handle, (int)r->nann) < 0)
		e = -EINVAL;
	if (e)
		goto fail_edf;
	return 0;

fail_edf:
	rec_discard_file(r, p->path);
	return e;
fail_unlink:
	unlink(p->path);
	return e;
}

int emg_recorder_open(struct emg_recorder **out, const struct emg_record_params *p)
{
	struct emg_recorder *r;
	long units;
	int e;

	if (!out || !p || !p->path || !p->dev)
		return -EINVAL;
	const struct emg_device_info *dev = p->dev;
	if (!(dev->rate > 0) || dev->rate > 1e6 || dev->channels < 1 ||
	    dev->channels > EMG_DEVICE_MAX_CHANNELS)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	r->handle = -1;
	r->edf = p->edf;
	r->sync = p->sync;
	r->ch = dev->channels;
	r->rate = dev->rate;
	r->dmax = p->edf ? 32767 : 8388607;
	r->dmin = p->edf ? -32768 : -8388608;
	r->gap_max = (uint64_t)(GAP_FILL_MAX_S * r->rate);
	atomic_init(&r->stop, false);
	atomic_init(&r->accepting, false);
	atomic_init(&r->error, 0);
	atomic_init(&r->state, EMG_RECORD_RUNNING);
	e = phys_range(dev, &r->pmin, &r->pmax);
	if (e)
		goto fail;
	r->epmax = fmax(fabs(r->pmin), fabs(r->pmax));
	e = record_geometry(r->rate, (p->record_ms > 0 ? p->record_ms : DEFAULT_RECORD_MS) * 1e-3,
			    &r->spr, &units);
	if (e)
		goto fail;
	r->rec_s = (double)units * 1e-5;
	if ((e = rec_layout(r, p)) || (e = rec_buffers(r, p)) || (e = rec_create_file(r, p, units)))
		goto fail;

	atomic_store(&r->accepting, true);
	r->last_sync_ns = now_ns();
	e = -pthread_create(&r->thread, NULL, recorder_thread, r);
	if (e) {
		rec_discard_file(r, p->path);
		goto fail;
	}
	r->thread_started = true;
	*out = r;
	return 0;

fail:
	rec_free(r);
	return e;
}

uint32_t emg_recorder_write(struct emg_recorder *r, const float *frames, unsigned nframes,
			    uint64_t first_seq)
{
	const size_t fb = r->ch * sizeof(float);
	uint32_t ok = 0;

	if (!atomic_load_explicit(&r->accepting, memory_order_acquire)) {
		atomic_fetch_add_explicit(&r->dropped_w, nframes, memory_order_relaxed);
		return 0;
	}
	for (unsigned i = 0; i < nframes; i++) {
		unsigned char *s = emg_ring_reserve(r->data); /* counts the overrun when full */
		uint64_t seq = first_seq + i;

		if (!s)
			continue;
		memcpy(s, &seq, sizeof(seq));
		memcpy(s + sizeof(uint64_t), frames + (size_t)i * r->ch, fb);
		emg_ring_commit(r->data);
		ok++;
	}
	return ok;
}

int emg_recorder_annotate(struct emg_recorder *r, uint64_t sample, double duration_s,
			  const char *text)
{
	struct ann_msg *m;

	if (!text)
		return -EINVAL;
	if (atomic_load_explicit(&r->state, memory_order_acquire) != EMG_RECORD_RUNNING)
		return -EPIPE;
	m = emg_ring_reserve(r->ann);
	if (!m) {
		atomic_fetch_add_explicit(&r->ann_dropped_m, 1, memory_order_relaxed);
		return -ENOBUFS;
	}
	m->sample = sample;
	m->duration = isfinite(duration_s) ? duration_s : -1;
	text_clean(m->text, text);
	emg_ring_commit(r->ann);
	return 0;
}

uint32_t emg_recorder_room(const struct emg_recorder *r, uint32_t *slots)
{
	const uint32_t cap = emg_ring_capacity(r->data);

	if (slots)
		*slots = cap;
	/* a recording that stopped (disk full, closing) drops frames anyway:
	 * nobody should wait for it */
	if (!atomic_load_explicit(&r->accepting, memory_order_acquire))
		return UINT32_MAX;
	return cap - emg_ring_count(r->data);
}

void emg_recorder_stats(const struct emg_recorder *r, struct emg_recorder_stats *st)
{
	struct emg_recorder *w = (struct emg_recorder *)r;

	memset(st, 0, sizeof(*st));
	st->frames_written = atomic_load_explicit(&w->frames_written, memory_order_relaxed);
	st->frames_filled = atomic_load_explicit(&w->frames_filled, memory_order_relaxed);
	st->frames_dropped = emg_ring_overruns(r->data) +
			     atomic_load_explicit(&w->dropped_w, memory_order_relaxed) +
			     atomic_load_explicit(&w->dropped_t, memory_order_relaxed);
	st->records = atomic_load_explicit(&w->records, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&w->bytes, memory_order_relaxed);
	st->annotations = atomic_load_explicit(&w->annotations, memory_order_relaxed);
	st->annotations_dropped = atomic_load_explicit(&w->ann_dropped, memory_order_relaxed) +
				  atomic_load_explicit(&w->ann_dropped_m, memory_order_relaxed);
	st->seconds = (double)st->records * r->rec_s;
	st->error = atomic_load_explicit(&w->error, memory_order_relaxed);
	st->state = atomic_load_explicit(&w->state, memory_order_acquire);
}

const char *emg_recorder_path(const struct emg_recorder *r)
{
	return r->path;
}

int emg_recorder_close(struct emg_recorder *r)
{
	int e;

	if (!r)
		return 0;
	atomic_store_explicit(&r->accepting, false, memory_order_release);
	atomic_store_explicit(&r->stop, true, memory_order_release);
	if (r->thread_started)
		pthread_join(r->thread, NULL);
	e = atomic_load(&r->error);
	if (file_records(r) == 0) {
		/* nothing readable was recorded: do not leave a header-only file */
		unlink(r->path);
		if (!e)
			e = -ENODATA;
	}
	atomic_store(&r->state, EMG_RECORD_CLOSED);
	rec_free(r);
	return e;
}

/* ---------------------------------------------------------------- repair */

/* Parse the time-keeping TAL at the start of an annotation signal. */
static int tk_time(const unsigned char *a, size_t n, double *t)
{
	char buf[40];
	size_t i = 0;

	if (n < 3 || (a[0] != '+' && a[0] != '-'))
		return -1;
	while (i < n && i < sizeof(buf) - 1 && a[i] != 0x14) {
		unsigned char c = a[i];
		if (!(c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9')))
			return -1;
		buf[i] = (char)c;
		i++;
	}
	if (i + 1 >= n || a[i] != 0x14 || a[i + 1] != 0x14)
		return -1;
	buf[i] = 0;
	*t = strtod(buf, NULL);
	return 0;
}

static int record_ok(int fd, const struct edf_layout *l, uint64_t k, double t0, double *t,
		     int *ok)
{
	unsigned char a[40];
	const struct edf_sig *g = &l->sig[l->first_annot];
	size_t n = g->bytes < sizeof(a) ? g->bytes : sizeof(a);
	ssize_t got = pread_full(fd, a, n, (off_t)(l->hdrsize + k * l->recsize + g->off));

	if (got < 0)
		return (int)got;
	*ok = (size_t)got == n && tk_time(a, n, t) == 0;
	if (*ok && !l->discontinuous && k > 0)
		*ok = fabs(*t - (t0 + (double)k * l->rec_s)) < 1e-6 + 1e-9 * (double)k;
	return 0;
}

int emg_record_repair(const char *path, char *msg, size_t len)
{
	struct edf_layout l;
	struct stat st;
	char dummy[8], why[PATH_MAX + 128];
	int fd, e;

	if (!msg) {
		msg = dummy;
		len = sizeof(dummy);
	}
	if (len)
		msg[0] = 0;
	/* A FIFO here would block the first read() for good: regular files only. */
	fd = emg_safeio_open(path, EMG_SAFEIO_WRITE, 0, EMG_SAFEIO_NO_LIMIT, NULL, why, sizeof(why));
	if (fd < 0) {
		e = fd;
		/* why is "<path>: <reason>"; the caller names the path already */
		snprintf(msg, len, "cannot open: %s", strstr(why, ": ") ? strstr(why, ": ") + 2 : why);
		return e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(msg, len, "%s", e == -EBUSY ? "being recorded (locked)" : strerror(-e));
		close(fd);
		return e;
	}
	if (fstat(fd, &st) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	e = layout_read(fd, &l);
	if (e) {
		snprintf(msg, len, "%s", e == -ENODATA ? "header incomplete" :
					 e == -EINVAL ? "not an EDF/BDF file" : strerror(-e));
		close(fd);
		return e;
	}
	if (l.recsize == 0) {
		snprintf(msg, len, "no signals");
		e = -EINVAL;
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	uint64_t whole = size > l.hdrsize ? (size - l.hdrsize) / l.recsize : 0;
	uint64_t good = whole;
	int consistent = l.nrec >= 1 && (uint64_t)l.nrec == whole &&
			 size == l.hdrsize + whole * l.recsize;

	if (l.first_annot >= 0 && whole) {
		double t0, t;
		int ok;

		e = record_ok(fd, &l, 0, 0, &t0, &ok);
		if (e)
			goto out_err;
		if (!ok) {
			good = 0;
			consistent = 0;
		} else if (consistent) {
			/* a consistent file: only check its last record */
			e = record_ok(fd, &l, whole - 1, t0, &t, &ok);
			if (e)
				goto out_err;
			consistent = ok;
		}
		if (good && !consistent) {
			for (uint64_t k = 1; k < whole; k++) {
				e = record_ok(fd, &l, k, t0, &t, &ok);
				if (e)
					goto out_err;
				if (!ok) {
					good = k;
					break;
				}
			}
		}
	}
	if (consistent) {
		snprintf(msg, len, "ok: %llu data records", (unsigned long long)whole);
		e = 0;
		goto out;
	}
	if (good == 0) {
		snprintf(msg, len, "no complete data record: nothing to recover");
		e = -ENODATA;
		goto out;
	}
	uint64_t keep = l.hdrsize + good * l.recsize;
	if (keep != size && ftruncate(fd, (off_t)keep) < 0)
		goto io;
	if ((e = write_count(fd, (long long)good)) < 0)
		goto out_err;
	if (fsync(fd) < 0)
		goto io;
	snprintf(msg, len, "repaired: %llu data records (header said %lld), %llu bytes cut",
		 (unsigned long long)good, l.nrec, (unsigned long long)(size - keep));
	e = 1;
	goto out;
io:
	e = -errno;
out_err:
	snprintf(msg, len, "I/O error: %s", strerror(-e));
out:
	layout_free(&l);
	close(fd);
	return e;
}

int emg_record_repair_dir(const char *dir, emg_record_repair_fn fn, void *ud)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int count = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char path[4096], msg[160];
		struct stat st;
		int r;

		if (n < 5 || (strcasecmp(de->d_name + n - 4, ".edf") &&
			      strcasecmp(de->d_name + n - 4, ".bdf")))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r = emg_record_repair(path, msg, sizeof(msg));
		if (r == 1)
			count++;
		if (r != 0 && r != -EBUSY && fn)
			fn(ud, path, r, msg);
	}
	closedir(d);
	return count;
}

/* ------------------------------------------------------------------ names */

int emg_record_name(char *out, size_t len, const char *dir, const char *name_or_null,
		    const char *serial, bool edf, time_t now)
{
	const char *ext = edf ? ".edf" : ".bdf";
	struct stat st;
	int n;

	if (!out || !len || !dir || !dir[0])
		return -EINVAL;
	if (name_or_null) {
		const char *s = name_or_null;
		size_t nl = strlen(s);

		/* One rule, the one the daemon's error text states: ASCII letters, digits,
		 * '-', '_', '.'; not starting with '-' (an option to shell tools) or '.'
		 * (hidden, "..").  No space, '*', '?', control or non-ASCII byte. */
		if (nl == 0 || nl > 100 || s[0] == '.' || s[0] == '-' || strstr(s, ".."))
			return -EINVAL;
		for (const unsigned char *c = (const unsigned char *)s; *c; c++)
			if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
			      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
				return -EINVAL;
		/* "x.bdf" with bdf, "x.edf" with edf: the extension is the format's; the
		 * other one is refused rather than silently changed (-EXDEV) */
		if (nl > 4 && (!strcasecmp(s + nl - 4, ".bdf") || !strcasecmp(s + nl - 4, ".edf"))) {
			if (strcasecmp(s + nl - 4, ext))
				return -EXDEV;
			nl -= 4;
		}
		n = snprintf(out, len, "%s/%.*s%s", dir, (int)nl, s, ext);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		if (lstat(out, &st) == 0 || errno != ENOENT)
			return -EEXIST;
		return 0;
	}

	char ser[33], stamp[32];
	struct tm tm;

	sanitize_token(ser, sizeof(ser), serial && serial[0] ? serial : "unknown");
	for (char *c = ser; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
			*c = '_';
	if (!localtime_r(&now, &tm))
		return -EINVAL;
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	for (int i = 1; i < 100; i++) {
		char suf[8] = "";
		if (i > 1)
			snprintf(suf, sizeof(suf), "-%d", i);
		n = snprintf(out, len, "%s/emgd-%s-%s%s%s", dir, ser, stamp, suf, ext);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		if (lstat(out, &st) < 0 && errno == ENOENT)
			return 0;
	}
	return -EEXIST;
}
