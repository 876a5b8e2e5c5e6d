/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <edflib.h>

#include "../record.h"
#include "../safeio.h"
#include "paced.h"
#include "replay.h"

#define LABEL_MAX 32
#define WHY_MAX 200          /* one reason, "line 4: column 2: 'x' is not a number" */

struct src {
	bool edf;
	double rate;
	unsigned ch;
	size_t nframes;
	double pmin, pmax;
	char serial[64];
	char (*labels)[LABEL_MAX];
	/* CSV: everything, interleaved */
	float *all;
	/* EDF: EDFlib handle and one chunk */
	int handle;
	int fd;              /* the checked file, open while EDFlib uses its /proc/self/fd name */
	int *sig;            /* EDFlib signal number of each channel */
	double *scale;       /* to uV from each channel's physical dimension */
	char notes[WHY_MAX]; /* what was done with units and rates, for the log ("" if nothing) */
	double *dbuf;        /* chunk of one signal */
	size_t chunk;        /* frames per chunk */
	char why[WHY_MAX];   /* why the file was refused, with the line for a CSV */
};

/* Refuse a rate outside what emgd can run at, before anything is sized from it:
 * a lying EDF header (a 1e-7 s record) implied 2e9 Hz and a 600 MB chunk. */
static int rate_ok(struct src *s, double rate, const char *where)
{
	if (rate >= EMG_REPLAY_RATE_MIN && rate <= EMG_DEVICE_RATE_MAX)
		return 0;
	snprintf(s->why, sizeof(s->why), "%srate %g Hz out of range (allowed: %g..%g Hz)", where,
		 rate, EMG_REPLAY_RATE_MIN, EMG_DEVICE_RATE_MAX);
	return -ERANGE;
}

/* Set the reason of a CSV refusal (first one wins); returns -EINVAL. */
static int csv_bad(struct src *s, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int csv_bad(struct src *s, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->why[0])
		return -EINVAL;
	n = snprintf(s->why, sizeof(s->why), "line %u: ", line);
	va_start(ap, fmt);
	vsnprintf(s->why + n, sizeof(s->why) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

struct replay_dev {
	struct emg_paced_dev p; /* first: the paced device (and the generic handle) */
	struct src s;
	char model[64];
	float *cbuf;         /* EDF: chunk x ch interleaved */
	size_t cfill, cpos;  /* frames in cbuf, next to deliver */
	size_t pos;          /* frames delivered */
};

/* ------------------------------------------------------------------ CSV */

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = 0;
	return s;
}

static int csv_rate(struct src *s, char *line, double *rate)
{
	char *p = trim(line), *end;
	static const char want[] = "expected the rate ('# rate = 2000' or 'rate,2000')";

	if (*p == '#')
		p = trim(p + 1);
	if (strncasecmp(p, "rate", 4))
		return csv_bad(s, 1, "%s", want);
	p = trim(p + 4);
	if (*p != '=' && *p != ',' && *p != ':')
		return csv_bad(s, 1, "%s", want);
	p = trim(p + 1);
	*rate = strtod(p, &end);
	if (end == p || !isfinite(*rate))
		return csv_bad(s, 1, "%s", want);
	while (*end == ' ' || *end == ',')
		end++;
	if (*end && strncasecmp(end, "hz", 2))
		return csv_bad(s, 1, "%s", want);
	return rate_ok(s, *rate, "line 1: ") ? -EINVAL : 0;
}

/* fd: from emg_safeio_open() (a regular file of bounded size); always closed. */
static int csv_load(int fd, struct src *s)
{
	FILE *f = fdopen(fd, "re");
	char *line = NULL;
	size_t cap = 0, nalloc = 0;
	ssize_t n;
	unsigned lineno = 2;
	int e = -EINVAL;

	if (!f) {
		e = -errno;
		close(fd);
		return e;
	}
	/* line 1: rate */
	if ((n = getline(&line, &cap, f)) < 0) {
		csv_bad(s, 1, "empty file");
		goto out;
	}
	if (csv_rate(s, line, &s->rate))
		goto out;
	/* line 2: names */
	if ((n = getline(&line, &cap, f)) < 0) {
		csv_bad(s, 2, "expected the column names (one per channel, comma-separated)");
		goto out;
	}
	{
		char *p = trim(line), *tok, *save = NULL;
		unsigned ch = 1;

		if (*p == '#')
			p = trim(p + 1);
		for (char *q = p; *q; q++)
			ch += *q == ',';
		if (!*p || ch > EMG_DEVICE_MAX_CHANNELS) {
			csv_bad(s, 2, !*p ? "expected the column names (one per channel, comma-separated)"
					  : "%u columns (allowed: at most %d)", ch, EMG_DEVICE_MAX_CHANNELS);
			goto out;
		}
		s->labels = calloc(ch, sizeof(*s->labels));
		if (!s->labels) {
			e = -ENOMEM;
			goto out;
		}
		s->ch = 0;
		for (tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			snprintf(s->labels[s->ch++], LABEL_MAX, "%s", trim(tok));
		if (s->ch != ch) {
			csv_bad(s, 2, "an empty column name");
			goto out;
		}
	}
	/* rows */
	double amax = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *p = trim(line);

		lineno++;
		if (!*p || *p == '#')
			continue;
		if (s->nframes == nalloc) {
			size_t na = nalloc ? nalloc * 2 : 4096;
			float *a = realloc(s->all, na * s->ch * sizeof(float));
			if (!a) {
				e = -ENOMEM;
				goto out;
			}
			s->all = a;
			nalloc = na;
		}
		float *row = s->all + s->nframes * s->ch;
		for (unsigned c = 0; c < s->ch; c++) {
			char *end;
			double v = strtod(p, &end);

			/* a sample must fit a float: 1e300 would become inf (found by tests/fuzz/fuzz_replay_csv.c) */
			if (end == p || !isfinite(v) || fabs(v) > FLT_MAX) {
				csv_bad(s, lineno, "column %u: %s", c + 1,
					end == p ? "not a number" : "beyond the range of a sample");
				goto out;
			}
			row[c] = (float)v;
			if (fabs(v) > amax)
				amax = fabs(v);
			p = trim(end);
			if (c + 1 < s->ch) {
				if (*p != ',') {
					csv_bad(s, lineno, "%u columns, expected %u", c + 1, s->ch);
					goto out;
				}
				p++;
			}
		}
		if (*p) {
			csv_bad(s, lineno, "more than %u columns", s->ch);
			goto out;
		}
		s->nframes++;
	}
	s->pmax = fmax(10000.0, ceil(amax));
	s->pmin = -s->pmax;
	e = 0;
out:
	free(line);
	fclose(f);
	return e;
}

/* ------------------------------------------------------------------ EDF */

static void find_serial(const struct edf_hdr_struct *h, char *out, size_t len)
{
	const char *fields[] = { h->recording_additional, h->recording, h->equipment };

	out[0] = 0;
	for (unsigned i = 0; i < 2; i++) {
		const char *p = strstr(fields[i], "serial=");
		if (p) {
			p += 7;
			size_t n = strcspn(p, " ");
			snprintf(out, len, "%.*s", (int)n, p);
			return;
		}
	}
	if (h->equipment[0] && strcmp(h->equipment, "X"))
		snprintf(out, len, "%.*s", (int)(len - 1), h->equipment);
}

/*
 * Factor from a signal's EDF physical dimension to uV: the pipeline's
 * thresholds and %MVC are relative, but the RMS levels it publishes and
 * records are in uV, and recordings from other systems are often in mV
 * (or V).  Case is ignored ("UV", "mv"); "u" and the micro sign (Latin-1
 * 0xB5, UTF-8 C2 B5) both mean micro.  0 when the dimension is no voltage
 * (force, angle, an empty field): such a signal is played unscaled.
 */
static double unit_to_uv(const char *dim)
{
	char u[16];
	size_t n = 0;

	for (const char *p = dim; *p && n + 1 < sizeof(u); p++)
		if (*p != ' ')
			u[n++] = *p;
	u[n] = 0;
	if (!strcasecmp(u, "V"))
		return 1e6;
	if (!strcasecmp(u, "mV"))
		return 1e3;
	if (!strcasecmp(u, "uV") || !strcasecmp(u, "\xb5V") || !strcasecmp(u, "\xc2\xb5V"))
		return 1.0;
	if (!strcasecmp(u, "nV"))
		return 1e-3;
	return 0;
}

/* fd: from emg_safeio_open(); EDFlib opens by name, so it is given /proc/self/fd/N
 * (the very file checked, not whatever the path names a moment later).  fd stays
 * open until src_free(): its number, and so that name, cannot be reused meanwhile. */
static int edf_load(int fd, const char *path, struct src *s)
{
	struct edf_hdr_struct *h = calloc(1, sizeof(*h));
	char fdpath[64];
	int e = 0, first = -1, r;

	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	if (emg_safeio_fd_path(fd, fdpath, sizeof(fdpath)) == 0)
		path = fdpath;
	s->handle = -1;
	s->fd = fd;
	emg_record_edflib_lock();
	r = edfopen_file_readonly(path, h, EDFLIB_DO_NOT_READ_ANNOTATIONS);
	if (r < 0) {
		snprintf(s->why, sizeof(s->why), "%s",
			 h->filetype == EDFLIB_FILE_CONTAINS_FORMAT_ERRORS
				 ? "not a valid EDF/BDF file (a header field is malformed, or the size does not match the header)"
			 : h->filetype == EDFLIB_FILE_IS_DISCONTINUOUS
				 ? "a discontinuous EDF+D/BDF+D file (not supported)"
			 : h->filetype == EDFLIB_FILE_READ_ERROR
				 ? "not a valid EDF/BDF file (the header cannot be read: too short?)"
								  : "not a valid EDF/BDF file");
		e = h->filetype == EDFLIB_NO_SUCH_FILE_OR_DIRECTORY ? -ENOENT
		    : h->filetype == EDFLIB_MALLOC_ERROR	     ? -ENOMEM
		    : h->filetype == EDFLIB_MAXFILES_REACHED	     ? -EMFILE
		    : h->filetype == EDFLIB_FILE_ALREADY_OPENED     ? -EBUSY
								     : -EINVAL;
		emg_record_edflib_unlock();
		free(h);
		return e;
	}
	emg_record_edflib_unlock();
	s->handle = h->handle;
	s->edf = true;
	s->sig = calloc((size_t)h->edfsignals + 1, sizeof(int));
	s->scale = calloc((size_t)h->edfsignals + 1, sizeof(double));
	s->labels = calloc((size_t)h->edfsignals + 1, sizeof(*s->labels));
	if (!s->sig || !s->scale || !s->labels) {
		e = -ENOMEM;
		goto out;
	}
	/* One rate plays: the fastest, which is the sEMG's - an exported file
	 * often puts a force, trigger or accelerometer signal (at 100-150 Hz)
	 * before the EMG ones, and the first signal's rate would play that. */
	int spr = 0;
	/* channels in V, mV or nV (scaled to uV), with no voltage unit (played
	 * as they are), and signals left out for a lower rate: for the log */
	unsigned scaled = 0, unitless = 0, slower = 0;

	for (int i = 0; i < h->edfsignals; i++)
		if (strncmp(h->signalparam[i].transducer, "emgd:", 5) &&
		    h->signalparam[i].smp_in_datarecord > spr)
			spr = h->signalparam[i].smp_in_datarecord;
	for (int i = 0; i < h->edfsignals && s->ch < EMG_DEVICE_MAX_CHANNELS; i++) {
		const struct edf_param_struct *p = &h->signalparam[i];
		if (!strncmp(p->transducer, "emgd:", 5))
			continue;
		if (p->smp_in_datarecord != spr) {
			slower++;
			continue;
		}
		const double k = unit_to_uv(p->physdimension), f = k > 0 ? k : 1.0;

		scaled += k > 0 && k != 1.0;
		unitless += k == 0;
		if (first < 0) {
			first = i;
			s->pmin = f * p->phys_min;
			s->pmax = f * p->phys_max;
		}
		s->pmin = fmin(s->pmin, f * fmin(p->phys_min, p->phys_max));
		s->pmax = fmax(s->pmax, f * fmax(p->phys_min, p->phys_max));
		s->scale[s->ch] = f;
		s->sig[s->ch] = i;
		snprintf(s->labels[s->ch], LABEL_MAX, "%s", p->label);
		trim(s->labels[s->ch]);
		s->ch++;
	}
	if (first < 0 || h->datarecord_duration <= 0) {
		snprintf(s->why, sizeof(s->why), "%s",
			 first < 0 ? "no signal to play (only annotations or emgd: channels)"
				   : "data record duration 0");
		e = -ENODATA;
		goto out;
	}
	s->rate = (double)h->signalparam[first].smp_in_datarecord * EDFLIB_TIME_DIMENSION /
		  (double)h->datarecord_duration;
	if (scaled || unitless || slower)
		snprintf(s->notes, sizeof(s->notes),
			 "%u of %u channels scaled to uV from V, mV or nV, %u with no voltage unit played as they are; "
			 "%u signals at lower rates than %g Hz left out",
			 scaled, s->ch, unitless, slower, s->rate);
	e = rate_ok(s, s->rate, "header: ");
	if (e)
		goto out;
	s->nframes = (size_t)h->signalparam[first].smp_in_file;
	s->chunk = (size_t)ceil(s->rate / 10.0);
	if (s->chunk < 16)
		s->chunk = 16;
	s->dbuf = calloc(s->chunk, sizeof(double));
	if (!s->dbuf) {
		e = -ENOMEM;
		goto out;
	}
	find_serial(h, s->serial, sizeof(s->serial));
out:
	free(h);
	return e;
}

static void src_free(struct src *s)
{
	if (s->edf && s->handle >= 0) {
		emg_record_edflib_lock();
		edfclose_file(s->handle);
		emg_record_edflib_unlock();
	}
	if (s->fd >= 0)
		close(s->fd);
	free(s->all);
	free(s->sig);
	free(s->scale);
	free(s->dbuf);
	free(s->labels);
	memset(s, 0, sizeof(*s));
	s->handle = s->fd = -1;
}

static bool is_csv(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && !strcasecmp(path + n - 4, ".csv");
}

/* Through emg_safeio: a FIFO, device or directory is refused before any read
 * could block; a CSV is parsed whole, so its size is capped. */
static int src_check(const char *path, char *err, size_t errlen)
{
	return emg_safeio_open(path, EMG_SAFEIO_READ, 0,
			       is_csv(path) ? EMG_REPLAY_CSV_MAX_BYTES : EMG_SAFEIO_NO_LIMIT,
			       "replay file", err, errlen);
}

static int src_open(const char *path, struct src *s, char *err, size_t errlen)
{
	int e, fd;

	memset(s, 0, sizeof(*s));
	s->handle = s->fd = -1;
	fd = src_check(path, err, errlen);
	if (fd < 0)
		return fd;
	if (is_csv(path))
		e = csv_load(fd, s);
	else
		e = edf_load(fd, path, s);
	if (e) {
		/* the reason (and a CSV's line) is what the user needs, not "Invalid argument" */
		if (err && errlen)
			snprintf(err, errlen, "replay file %s: %s", path,
				 s->why[0] ? s->why : strerror(-e));
		src_free(s);
	}
	return e;
}

int emg_replay_check(const char *path, char *err, size_t errlen)
{
	struct src s;
	int fd, e;

	if (is_csv(path)) { /* parsed whole when the device opens: only its kind and size here */
		fd = src_check(path, err, errlen);
		if (fd < 0)
			return fd;
		close(fd);
		return 0;
	}
	/* EDF/BDF: the header alone (rate, signals, size) is cheap to check now */
	e = src_open(path, &s, err, errlen);
	if (!e)
		src_free(&s);
	return e;
}

/* EDF: read up to s->chunk frames into buf (interleaved); returns frames read. */
static size_t edf_chunk(struct src *s, float *buf)
{
	size_t got = s->chunk;

	for (unsigned c = 0; c < s->ch; c++) {
		int n = edfread_physical_samples(s->handle, s->sig[c], (int)s->chunk, s->dbuf);
		if (n < 0)
			n = 0;
		if ((size_t)n < got)
			got = (size_t)n;
		for (int f = 0; f < n; f++)
			buf[(size_t)f * s->ch + c] = (float)(s->dbuf[f] * s->scale[c]);
	}
	return got;
}

int emg_replay_read_all(const char *path, float **frames, size_t *nframes, unsigned *channels,
			double *rate)
{
	struct src s;
	int e = src_open(path, &s, NULL, 0);

	if (e)
		return e;
	*channels = s.ch;
	*rate = s.rate;
	if (!s.edf) {
		*frames = s.all;
		*nframes = s.nframes;
		s.all = NULL;
		src_free(&s);
		return 0;
	}
	float *all = malloc((s.nframes + s.chunk) * s.ch * sizeof(float) + 1);
	size_t n = 0, k;

	if (!all) {
		src_free(&s);
		return -ENOMEM;
	}
	while (n < s.nframes && (k = edf_chunk(&s, all + n * s.ch)) > 0)
		n += k;
	src_free(&s);
	*frames = all;
	*nframes = n;
	return 0;
}

/* --------------------------------------------------------------- device */

/* Next run of up to `want` frames; NULL at the end of the file. */
static const float *next_frames(struct replay_dev *d, size_t want, size_t *got)
{
	struct src *s = &d->s;

	if (!s->edf) {
		if (d->pos >= s->nframes)
			return NULL;
		*got = s->nframes - d->pos < want ? s->nframes - d->pos : want;
		return s->all + d->pos * s->ch;
	}
	if (d->cpos == d->cfill) {
		d->cfill = d->pos < s->nframes ? edf_chunk(s, d->cbuf) : 0;
		d->cpos = 0;
		if (!d->cfill)
			return NULL;
	}
	*got = d->cfill - d->cpos < want ? d->cfill - d->cpos : want;
	return d->cbuf + d->cpos * s->ch;
}

static void consumed(struct replay_dev *d, size_t n)
{
	d->pos += n;
	if (d->s.edf)
		d->cpos += n;
}

/* The paced thread's frames: n from the file, then end of file stops it. */
static int replay_produce(struct emg_paced_dev *p, unsigned n)
{
	struct replay_dev *d = (struct replay_dev *)p;

	while (n) {
		size_t got = 0;
		const float *x = next_frames(d, n, &got);

		if (!x) {
			if (p->cb.state)
				p->cb.state(p->cb.ud, EMG_DEVICE_WAITING, "end of replay file");
			return -ENODATA;
		}
		p->cb.data(p->cb.ud, x, (unsigned)got, d->pos, 0, emg_now_ns());
		consumed(d, got);
		n -= (unsigned)got;
	}
	return 0;
}

static int replay_open(struct emg_device **out, const struct emg_device_config *cfg)
{
	struct replay_dev *d;
	const char *base;
	char err[PATH_MAX + 128];
	int e;

	if (!cfg->file[0])
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->p.dev.ops = &emg_replay_ops;
	d->p.realtime = cfg->realtime;
	d->p.running_why = "replay running";
	d->p.produce = replay_produce;
	atomic_init(&d->p.stop, false);
	e = src_open(cfg->file, &d->s, err, sizeof(err));
	if (e) {
		/* The reason (a FIFO, too large, not EDF) is what the user needs to hear. */
		emg_log_to(cfg->log, cfg->log_ud, LOG_ERR, "%s", err);
		free(d);
		return e;
	}
	if (d->s.edf) {
		d->cbuf = calloc(d->s.chunk * d->s.ch, sizeof(float));
		if (!d->cbuf) {
			src_free(&d->s);
			free(d);
			return -ENOMEM;
		}
	}
	if (d->s.notes[0])
		emg_log_to(cfg->log, cfg->log_ud, LOG_NOTICE, "replay %s: %s", cfg->file, d->s.notes);
	base = strrchr(cfg->file, '/');
	base = base ? base + 1 : cfg->file;
	snprintf(d->model, sizeof(d->model), "replay: %.55s", base);
	d->p.rate = d->s.rate;
	*out = &d->p.dev;
	return 0;
}

static void replay_info(struct emg_device *dev, struct emg_device_info *info)
{
	struct replay_dev *d = (struct replay_dev *)dev;

	memset(info, 0, sizeof(*info));
	snprintf(info->driver, sizeof(info->driver), "replay");
	snprintf(info->model, sizeof(info->model), "%s", d->model);
	snprintf(info->serial, sizeof(info->serial), "%s", d->s.serial);
	info->rate = d->s.rate;
	info->channels = d->s.ch;
	info->phys_min_uv = d->s.pmin;
	info->phys_max_uv = d->s.pmax;
}

static void replay_close(struct emg_device *dev)
{
	struct replay_dev *d = (struct replay_dev *)dev;

	if (!d)
		return;
	emg_paced_stop(dev);
	src_free(&d->s);
	free(d->cbuf);
	free(d);
}

const char *emg_replay_label(struct emg_device *dev, unsigned ch)
{
	struct replay_dev *d = (struct replay_dev *)dev;

	if (!dev || dev->ops != &emg_replay_ops || ch >= d->s.ch)
		return NULL;
	return d->s.labels[ch];
}

size_t emg_replay_frames(struct emg_device *dev)
{
	struct replay_dev *d = (struct replay_dev *)dev;

	if (!dev || dev->ops != &emg_replay_ops)
		return 0;
	return d->s.nframes;
}

static const struct emg_device_option replay_options[] = {
	{ "file", EMG_OPT_PATH, offsetof(struct emg_device_config, file), 0, 0, NULL, "",
	  "a file path", "the recording to play: .bdf, .edf or .csv" },
	EMG_PACED_REALTIME_OPTION,
	{ .name = NULL },
};

/* A FIFO, device or directory would hang the daemon when the device opens:
 * refused by --check-config and a reload, so a running daemon keeps going. */
static int replay_check(const struct emg_device_config *cfg, char *why, size_t whylen)
{
	return cfg->file[0] ? emg_replay_check(cfg->file, why, whylen) : 0;
}

const struct emg_device_ops emg_replay_ops = {
	.name = "replay",
	.help = "plays an EDF/BDF recording or a CSV file, in real time or as fast as it is processed",
	.options = replay_options,
	.check = replay_check,
	.open = replay_open,
	.info = replay_info,
	.start = emg_paced_start,
	.stop = emg_paced_stop,
	.close = replay_close,
};
