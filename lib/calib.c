/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib.h"
#include "safeio.h"

struct emg_calib {
	unsigned n;
	char names[EMG_MUSCLES_MAX][EMG_MUSCLE_NAME_MAX];
	struct emg_calib_entry e[EMG_MUSCLES_MAX];
};

int emg_calib_new(struct emg_calib **out, const struct emg_muscles *map)
{
	struct emg_calib *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->n = emg_muscles_count(map);
	for (unsigned i = 0; i < c->n; i++)
		snprintf(c->names[i], sizeof(c->names[i]), "%s", emg_muscles_get(map, i)->name);
	*out = c;
	return 0;
}

int emg_calib_dup(const struct emg_calib *c, struct emg_calib **out)
{
	struct emg_calib *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	memcpy(d, c, sizeof(*d));
	*out = d;
	return 0;
}

void emg_calib_free(struct emg_calib *c)
{
	free(c);
}

unsigned emg_calib_count(const struct emg_calib *c)
{
	return c->n;
}

const struct emg_calib_entry *emg_calib_get(const struct emg_calib *c, unsigned i)
{
	return i < c->n ? &c->e[i] : NULL;
}

void emg_calib_set_rest(struct emg_calib *c, unsigned i, const struct emg_baseline *b,
			float rest_rms, int64_t when)
{
	if (i >= c->n)
		return;
	c->e[i].has_rest = 1;
	c->e[i].rest = *b;
	c->e[i].rest_rms = rest_rms;
	c->e[i].rest_time = when;
}

void emg_calib_add_mvc(struct emg_calib *c, unsigned i, float peak_rms, int64_t when)
{
	if (i >= c->n || !(peak_rms > 0))
		return;
	c->e[i].mvc_trials++;
	if (peak_rms > c->e[i].mvc_rms) {
		c->e[i].mvc_rms = peak_rms;
		c->e[i].mvc_time = when;
	}
}

void emg_calib_clear_mvc(struct emg_calib *c, unsigned i)
{
	if (i >= c->n)
		return;
	c->e[i].mvc_rms = 0;
	c->e[i].mvc_time = 0;
	c->e[i].mvc_trials = 0;
}

float emg_calib_level(const struct emg_calib *c, unsigned i, float rms)
{
	if (i >= c->n || !(c->e[i].mvc_rms > 0))
		return -1.0f;
	/* Not clipped at 1.0: dynamic exercises legitimately exceed an isometric MVC. */
	return rms / c->e[i].mvc_rms;
}

/* Make a rename in path's directory durable. */
static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, r = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int emg_calib_save(const struct emg_calib *c, const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* The state directory may be writable by others than emgd (started by hand
	 * as root, a shared /tmp): whatever sits at the temp name - a stale file
	 * from a crash or a planted symlink - is removed, never followed, and the
	 * file is created afresh with O_EXCL|O_NOFOLLOW, which refuses a link
	 * planted in between (EEXIST) instead of writing through it. */
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	fd = emg_safeio_open(tmp, EMG_SAFEIO_CREATE, 0644, EMG_SAFEIO_NO_LIMIT, NULL, NULL, 0);
	if (fd < 0)
		return fd;
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		unlink(tmp);
		return r;
	}
	fprintf(f, "# emgd calibration, written by emgd; one section per muscle\n");
	fprintf(f, "version = 1\n");
	for (unsigned i = 0; i < c->n; i++) {
		const struct emg_calib_entry *e = &c->e[i];

		if (!e->has_rest && !(e->mvc_rms > 0))
			continue;
		fprintf(f, "\n[%s]\n", c->names[i]);
		if (e->has_rest) {
			fprintf(f, "rest_method = %s\n", emg_onset_method_name(e->rest.method));
			/* %.17g round-trips a double, %.9g a float. */
			fprintf(f, "rest_mean = %.17g\nrest_sd = %.17g\nrest_var = %.17g\n",
				e->rest.mean, e->rest.sd, e->rest.var);
			fprintf(f, "rest_raw_rms = %.17g\nrest_rms = %.9g\nrest_time = %lld\n",
				e->rest.rms, (double)e->rest_rms, (long long)e->rest_time);
		}
		if (e->mvc_rms > 0)
			fprintf(f, "mvc_rms = %.9g\nmvc_time = %lld\nmvc_trials = %u\n",
				(double)e->mvc_rms, (long long)e->mvc_time, e->mvc_trials);
	}
	if (fflush(f) != 0 || fsync(fd) != 0)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	else
		r = fsync_dir_of(path); /* the rename itself survives a power cut */
	return r;
}

struct load_ctx {
	struct emg_calib *c;
	struct emg_calib_entry tmp[EMG_MUSCLES_MAX];
	int seen[EMG_MUSCLES_MAX];
};

static int parse_double(const char *v, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	/* A corrupted file must not smuggle NaN, infinities or values that do not fit their field. */
	return (errno || end == v || *end || !isfinite(*out)) ? -1 : 0;
}

static int load_handler(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	struct emg_calib_entry *e;
	double d;
	int i;

	if (!*section)
		return !strcmp(name, "version") && !strcmp(value, "1");
	for (i = 0; i < (int)ctx->c->n; i++)
		if (!strcmp(ctx->c->names[i], section))
			break;
	if (i == (int)ctx->c->n)
		return 1; /* a muscle no longer in the map: keep going, ignore it */
	e = &ctx->tmp[i];
	ctx->seen[i] = 1;
	if (!strcmp(name, "rest_method")) {
		enum emg_onset_method m;
		if (emg_onset_method_parse(value, &m) < 0)
			return 0;
		e->rest.method = (int)m;
		e->has_rest = 1;
		return 1;
	}
	if (parse_double(value, &d) < 0)
		return 0;
	if (strcmp(name, "rest_mean") && (d < 0 || d > 9.2e18))
		return 0; /* only the mean may be negative; int64/unsigned casts stay defined */
	if (!strcmp(name, "mvc_trials") && d > UINT_MAX)
		return 0;
	if (!strcmp(name, "rest_mean"))
		e->rest.mean = d;
	else if (!strcmp(name, "rest_sd"))
		e->rest.sd = d;
	else if (!strcmp(name, "rest_var"))
		e->rest.var = d;
	else if (!strcmp(name, "rest_raw_rms"))
		e->rest.rms = d;
	else if (!strcmp(name, "rest_rms"))
		e->rest_rms = (float)d;
	else if (!strcmp(name, "rest_time"))
		e->rest_time = (int64_t)d;
	else if (!strcmp(name, "mvc_rms"))
		e->mvc_rms = (float)d;
	else if (!strcmp(name, "mvc_time"))
		e->mvc_time = (int64_t)d;
	else if (!strcmp(name, "mvc_trials"))
		e->mvc_trials = (unsigned)d;
	else
		return 0;
	return 1;
}

int emg_calib_load(struct emg_calib *c, const char *path, unsigned *line)
{
	return emg_calib_load_msg(c, path, line, NULL, 0);
}

int emg_calib_load_msg(struct emg_calib *c, const char *path, unsigned *line, char *err,
		       size_t errlen)
{
	struct load_ctx *ctx;
	FILE *f;
	int fd, r;

	/* A FIFO or /dev/zero at this path must not hang start-up or a reload. */
	fd = emg_safeio_open(path, EMG_SAFEIO_READ, 0, EMG_CALIB_MAX_BYTES, "calibration", err,
			     errlen);
	if (fd < 0)
		return fd;
	f = fdopen(fd, "re");
	if (!f) {
		r = -errno;
		close(fd);
		return r;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		fclose(f);
		return -ENOMEM;
	}
	ctx->c = c;
	r = ini_parse_file(f, load_handler, ctx);
	fclose(f);
	if (r != 0) {
		if (line)
			*line = r > 0 ? (unsigned)r : 0;
		free(ctx);
		return -EBADMSG;
	}
	/* Only a fully parsed file replaces anything.  Fields that emg_calib_save()
	 * would not write (rest values without a rest_method, MVC details without
	 * an mvc_rms) are dropped, so what loads is exactly what saves and loads
	 * again (tests/fuzz/fuzz_calib.c). */
	for (unsigned i = 0; i < c->n; i++) {
		struct emg_calib_entry *e = &ctx->tmp[i];

		if (!ctx->seen[i])
			continue;
		if (!e->has_rest) {
			memset(&e->rest, 0, sizeof(e->rest));
			e->rest_rms = 0;
			e->rest_time = 0;
		}
		if (!(e->mvc_rms > 0)) {
			e->mvc_rms = 0;
			e->mvc_time = 0;
			e->mvc_trials = 0;
		}
		c->e[i] = *e;
	}
	free(ctx);
	return 0;
}

void emg_calib_merge(struct emg_calib *dst, const struct emg_calib *src)
{
	for (unsigned i = 0; i < dst->n; i++)
		for (unsigned j = 0; j < src->n; j++)
			if (!strcmp(dst->names[i], src->names[j]))
				dst->e[i] = src->e[j];
}
