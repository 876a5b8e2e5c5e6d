/* SPDX-License-Identifier: MIT */
/*
 * Tests of the EDF+/BDF+ recorder: synth -> recorder -> file -> EDFlib's
 * reader (samples within the format's quantisation, labels, units, rate,
 * duration, annotations), record geometry for awkward rates, the optional
 * filtered and envelope channels, the name helper, never overwriting, ring
 * overflow without blocking (gaps zero-filled, time kept), kill -9 in the
 * middle of a recording followed by emg_record_repair(), a full disk
 * (RLIMIT_FSIZE, and a small tmpfs when mount works), repair of hand-made
 * damage, and concurrent writer/annotator/stats threads (for TSan).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <edflib.h>

#include "device.h"
#include "filter.h"
#include "muscles.h"
#include "record.h"
#include "devices/replay.h"
#include "devices/synth.h"
#include "slow.h"
#include "testutil.h"

#define FS 2000.0
#define NCH 8 /* 6 mapped muscles + 2 unmapped channels */

static char tmpdir[64];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/emg-rec-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd)) {
	}
}

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static struct emg_muscles *muscles(void)
{
	struct emg_muscles *m = NULL;

	ck_assert_int_eq(emg_muscles_new_default(&m), 0);
	return m;
}

/* n frames of synth sEMG (NCH channels at rate), malloc'd. */
static float *synth_frames(const struct emg_muscles *m, double rate, size_t n)
{
	struct emg_device_config cfg;
	struct emg_synth *s = NULL;
	float *x = malloc(n * NCH * sizeof(float));

	emg_device_config_default(&cfg);
	cfg.rate = rate;
	cfg.channels = NCH;
	cfg.muscles = m;
	cfg.scenario = "bridge";
	cfg.realtime = false;
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(emg_synth_new(&s, &cfg), 0);
	emg_synth_generate(s, x, (unsigned)n);
	emg_synth_free(s);
	return x;
}

static struct emg_device_info dev_info(double rate)
{
	struct emg_device_info d;

	memset(&d, 0, sizeof(d));
	snprintf(d.driver, sizeof(d.driver), "synth");
	snprintf(d.model, sizeof(d.model), "emgd synthetic sEMG");
	snprintf(d.serial, sizeof(d.serial), "SYNTH-1");
	d.rate = rate;
	d.channels = NCH;
	d.phys_min_uv = -10000;
	d.phys_max_uv = 10000;
	return d;
}

static struct emg_record_params params(const char *path, bool edf,
				       const struct emg_device_info *dev,
				       const struct emg_muscles *m)
{
	struct emg_record_params p;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.edf = edf;
	p.dev = dev;
	p.muscles = m;
	return p;
}

/* Feed frames in device-sized blocks (2 frames = 1 ms at 2 kHz), annotating
 * at the given samples once they have been written. */
struct ann {
	uint64_t sample;
	double dur;
	const char *text;
};

static void feed(struct emg_recorder *r, const float *x, size_t n, size_t block,
		 const struct ann *a, size_t na)
{
	size_t next = 0;

	for (size_t i = 0; i < n; i += block) {
		unsigned k = (unsigned)(n - i < block ? n - i : block);

		while (next < na && a[next].sample <= i) {
			ck_assert_int_eq(emg_recorder_annotate(r, a[next].sample, a[next].dur,
							       a[next].text), 0);
			next++;
		}
		/* the recorder ring holds 2 s: give the thread time when it is half full */
		uint32_t got = emg_recorder_write(r, x + i * NCH, k, i);
		ck_assert_uint_eq(got, k);
		if (i % 1000 == 0) {
			struct emg_recorder_stats st;
			for (;;) {
				emg_recorder_stats(r, &st);
				if (st.frames_written + 2000 >= i)
					break;
				usleep(1000);
			}
		}
	}
	for (; next < na; next++)
		ck_assert_int_eq(emg_recorder_annotate(r, a[next].sample, a[next].dur, a[next].text),
				 0);
}

struct edf_file {
	struct edf_hdr_struct h;
	int open;
};

static void edf_open(struct edf_file *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	int r = edfopen_file_readonly(path, &f->h, EDFLIB_READ_ALL_ANNOTATIONS);
	ck_assert_msg(r == 0, "EDFlib cannot open %s: error %d", path, f->h.filetype);
	f->open = 1;
}

static void edf_close(struct edf_file *f)
{
	if (f->open)
		edfclose_file(f->h.handle);
	f->open = 0;
}

/* Read signal sig fully (physical). */
static double *edf_signal(struct edf_file *f, int sig, size_t *n)
{
	long long len = f->h.signalparam[sig].smp_in_file;
	double *b = malloc((size_t)len * sizeof(double) + 8);

	ck_assert_ptr_nonnull(b);
	edfrewind(f->h.handle, sig);
	ck_assert_int_eq(edfread_physical_samples(f->h.handle, sig, (int)len, b), (int)len);
	*n = (size_t)len;
	return b;
}

static int find_annotation(struct edf_file *f, const char *text, double *onset, double *dur)
{
	for (long long i = 0; i < f->h.annotations_in_file; i++) {
		struct edf_annotation_struct a;
		ck_assert_int_eq(edf_get_annotation(f->h.handle, (int)i, &a), 0);
		if (strstr(a.annotation, text)) {
			if (onset)
				*onset = (double)a.onset / EDFLIB_TIME_DIMENSION;
			if (dur)
				*dur = a.duration_l >= 0 ? (double)a.duration_l / EDFLIB_TIME_DIMENSION
							 : -1;
			return 1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ round trip */

static void roundtrip(bool edf)
{
	struct emg_muscles *m = muscles();
	const size_t n = 10000; /* 5 s */
	float *x = synth_frames(m, FS, n);
	struct emg_device_info dev = dev_info(FS);
	char path[128];
	struct emg_recorder *r = NULL;
	struct emg_record_params p;
	const struct ann a[] = {
		{ 0, -1, "start marker" },
		{ 1000, 0.25, "glute_max_l onset" },
		{ 5001, 1.5, "calibration rest 1.5 s" },
		{ 9999, -1, "last sample" },
	};

	path_in(path, sizeof(path), edf ? "rt.edf" : "rt.bdf");
	p = params(path, edf, &dev, m);
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	ck_assert_str_eq(emg_recorder_path(r), path);
	double t0 = mono();
	feed(r, x, n, 2, a, sizeof(a) / sizeof(a[0]));
	ck_assert_int_eq(emg_recorder_close(r), 0);
	double dt = mono() - t0;
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	printf("%s: 5 s x %d ch recorded in %.1f ms (%.0fx real time), %lld bytes\n",
	       edf ? "EDF+" : "BDF+", NCH, dt * 1e3, 5.0 / dt, (long long)sb.st_size);

	/* repair has nothing to do on a cleanly closed file */
	char msg[160];
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 0);

	struct edf_file f;
	edf_open(&f, path);
	ck_assert_int_eq(f.h.filetype, edf ? EDFLIB_FILETYPE_EDFPLUS : EDFLIB_FILETYPE_BDFPLUS);
	ck_assert_int_eq(f.h.edfsignals, NCH);
	ck_assert_int_eq(f.h.file_duration, 5 * EDFLIB_TIME_DIMENSION);
	ck_assert_str_eq(f.h.equipment, "synth");
	ck_assert_ptr_nonnull(strstr(f.h.recording_additional, "serial=SYNTH-1"));
	const char *labels[NCH] = { "glute_max_l", "glute_max_r", "glute_med_l", "glute_med_r",
				    "hip_flex_l", "hip_flex_r", "ch6", "ch7" };
	double q = 20000.0 / (edf ? 65535.0 : 16777215.0);
	double maxerr = 0;
	for (int s = 0; s < NCH; s++) {
		const struct edf_param_struct *sp = &f.h.signalparam[s];
		char lab[17];
		snprintf(lab, sizeof(lab), "%s", sp->label);
		for (int i = (int)strlen(lab); i > 0 && lab[i - 1] == ' '; i--)
			lab[i - 1] = 0;
		ck_assert_str_eq(lab, labels[s]);
		ck_assert_str_eq(sp->physdimension, "uV      ");
		ck_assert_double_eq(sp->phys_max, 10000);
		ck_assert_double_eq(sp->phys_min, -10000);
		ck_assert_int_eq(sp->dig_max, edf ? 32767 : 8388607);
		double rate = sp->smp_in_datarecord * (double)EDFLIB_TIME_DIMENSION /
			      (double)f.h.datarecord_duration;
		ck_assert_double_eq_tol(rate, FS, 1e-9);
		size_t len;
		double *y = edf_signal(&f, s, &len);
		ck_assert_uint_eq(len, n);
		for (size_t i = 0; i < n; i++) {
			double e = fabs(y[i] - x[i * NCH + s]);
			if (e > maxerr)
				maxerr = e;
		}
		free(y);
	}
	printf("%s: max |error| %.3g uV, half a step %.3g uV\n", edf ? "EDF+" : "BDF+", maxerr,
	       q / 2);
	ck_assert_double_le(maxerr, q / 2 * 1.001 + 1e-4);

	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		double on, du;
		ck_assert_msg(find_annotation(&f, a[i].text, &on, &du), "missing '%s'", a[i].text);
		ck_assert_double_eq_tol(on, (double)a[i].sample / FS, 1e-4);
		if (a[i].dur >= 0)
			ck_assert_double_eq_tol(du, a[i].dur, 1e-4);
		else
			ck_assert_double_lt(du, 0);
	}
	ck_assert_int_eq(f.h.annotations_in_file, 4);
	edf_close(&f);

	/* the replay helper reads the same numbers */
	float *y = NULL;
	size_t ny;
	unsigned ch;
	double rate;
	ck_assert_int_eq(emg_replay_read_all(path, &y, &ny, &ch, &rate), 0);
	ck_assert_uint_eq(ny, n);
	ck_assert_uint_eq(ch, NCH);
	ck_assert_double_eq_tol(rate, FS, 1e-9);
	for (size_t i = 0; i < n * NCH; i++)
		ck_assert_double_le(fabs((double)y[i] - x[i]), q / 2 * 1.001 + 1e-3);
	free(y);
	free(x);
	emg_muscles_free(m);
}

START_TEST(test_roundtrip_bdf)
{
	roundtrip(false);
}
END_TEST

START_TEST(test_roundtrip_edf)
{
	roundtrip(true);
}
END_TEST

/* The header's 80-character recording field (EDF+ "Startdate ... equipment <info>")
 * keeps the whole filter description, abbreviated when a long serial or driver name
 * leaves too little room, and the serial= token that replay reads back. */
static void header_info(const char *driver, const char *serial, char *field, size_t n)
{
	struct emg_muscles *m = muscles();
	struct emg_device_info dev = dev_info(FS);
	struct emg_recorder *r = NULL;
	struct emg_record_params p;
	char path[128], raw[81];
	FILE *f;

	snprintf(dev.driver, sizeof(dev.driver), "%s", driver);
	snprintf(dev.serial, sizeof(dev.serial), "%s", serial);
	path_in(path, sizeof(path), "hdr.bdf");
	p = params(path, false, &dev, m);
	float *x = synth_frames(m, FS, 2000);
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	feed(r, x, 2000, 2, NULL, 0);
	ck_assert_int_eq(emg_recorder_close(r), 0);
	free(x);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 88, SEEK_SET), 0);
	ck_assert_uint_eq(fread(raw, 1, 80, f), 80);
	fclose(f);
	raw[80] = 0;
	for (int i = 79; i >= 0 && raw[i] == ' '; i--)
		raw[i] = 0;
	snprintf(field, n, "%s", raw);
	printf("recording field (%zu chars): '%s'\n", strlen(raw), raw);
	unlink(path);
	emg_muscles_free(m);
}

START_TEST(test_header_filter_text)
{
	char field[96], want[64];

	/* room for everything: the filter as emg_filter_describe() words it */
	header_info("synth", "SYNTH-1", field, sizeof(field));
	ck_assert_ptr_nonnull(strstr(field, " synth serial=SYNTH-1 "));
	ck_assert_ptr_nonnull(strstr(field, "HP:20Hz LP:450Hz N:auto"));

	/* a longer serial: the filter abbreviated, nothing cut (this one was
	 * "... hackeeg serial=DQ0081-CYTONBOA" with EDFlib's 66-character field) */
	header_info("hackeeg", "DQ0081-CYTONBOARD", field, sizeof(field));
	ck_assert_ptr_nonnull(strstr(field, " hackeeg serial=DQ0081-CYTONBOARD HP:20 LP:450 N:auto"));
	ck_assert_uint_eq(strlen(field), 78);

	/* a serial that leaves no room at all: the filter still complete, the serial cut */
	header_info("hackeeg", "0123456789012345678901234567890123456789012345678901234567890",
		    field, sizeof(field));
	ck_assert_ptr_nonnull(strstr(field, "serial=0123456789"));
	snprintf(want, sizeof(want), "%s", field + strlen(field) - strlen("HP:20 LP:450 N:auto"));
	ck_assert_str_eq(want, "HP:20 LP:450 N:auto");
}
END_TEST

/* A repetition or burst that began before the first recorded sample is not
 * written as if it began at 0.000 s: it is marked, and keeps only its duration
 * inside the file; events inside the file are untouched. */
START_TEST(test_annotation_before_start)
{
	struct emg_muscles *m = muscles();
	struct emg_device_info dev = dev_info(FS);
	struct emg_recorder *r = NULL;
	struct emg_record_params p;
	const uint64_t first = 5000; /* device sample of the file's first frame */
	const size_t n = 4000;       /* 2 s */
	float *x = synth_frames(m, FS, n);
	char path[128];
	double on, dur;

	path_in(path, sizeof(path), "early.bdf");
	p = params(path, false, &dev, m);
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	/* queued before the first frame, as the daemon's rep reports can be */
	ck_assert_int_eq(emg_recorder_annotate(r, first - 2000, 2.5, "glute_max_l rep 1 peak 40.0 pct_mvc"), 0);
	ck_assert_int_eq(emg_recorder_annotate(r, first - 200, -1, "glute_max_r onset"), 0);
	ck_assert_int_eq(emg_recorder_annotate(r, first - 4000, 0.5, "glute_med_l rep 1 peak 9.0 pct_mvc"), 0);
	ck_assert_int_eq(emg_recorder_annotate(r, first + 2000, 0.5, "glute_med_r rep 1 peak 30.0 pct_mvc"), 0);
	for (size_t i = 0; i < n; i += 2)
		ck_assert_uint_eq(emg_recorder_write(r, x + i * NCH, 2, first + i), 2);
	ck_assert_int_eq(emg_recorder_close(r), 0);

	struct edf_file f;
	edf_open(&f, path);
	/* 1 s early, 2.5 s long: at 0 with the 1.5 s inside the file */
	ck_assert(find_annotation(&f, "[began 1.000 s before the recording] glute_max_l rep 1 peak 40.0", &on, &dur));
	ck_assert_double_eq_tol(on, 0.0, 1e-9);
	ck_assert_double_eq_tol(dur, 1.5, 1e-4);
	ck_assert(find_annotation(&f, "[began 0.100 s before the recording] glute_max_r onset", &on, &dur));
	ck_assert_double_eq_tol(on, 0.0, 1e-9);
	ck_assert_double_eq_tol(dur, -1, 1e-9);
	/* over before the file began: duration 0, still marked */
	ck_assert(find_annotation(&f, "[began 2.000 s before the recording] glute_med_l rep 1", &on, &dur));
	ck_assert_double_eq_tol(dur, 0.0, 1e-9);
	/* inside the file: at its time, text as given */
	ck_assert(find_annotation(&f, "glute_med_r rep 1 peak 30.0 pct_mvc", &on, &dur));
	ck_assert_double_eq_tol(on, 1.0, 1e-4);
	ck_assert_double_eq_tol(dur, 0.5, 1e-4);
	ck_assert(!find_annotation(&f, "[began 0.000", NULL, NULL));
	edf_close(&f);
	free(x);
	emg_muscles_free(m);
}
END_TEST

/* Clipping to the amplifier range, NaN, and the end padding. */
START_TEST(test_clip_and_padding)
{
	struct emg_muscles *m = muscles();
	struct emg_device_info dev = dev_info(FS);
	const size_t n = 1234;
	float *x = calloc(n * NCH, sizeof(float));
	char path[128];
	struct emg_recorder *r = NULL;

	for (size_t i = 0; i < n; i++) {
		x[i * NCH + 0] = 20000.0f;
		x[i * NCH + 1] = -30000.0f;
		x[i * NCH + 2] = NAN;
		x[i * NCH + 3] = (float)i;
	}
	path_in(path, sizeof(path), "pad.bdf");
	struct emg_record_params p = params(path, false, &dev, m);
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	ck_assert_uint_eq(emg_recorder_write(r, x, (unsigned)n, 100), n);
	ck_assert_int_eq(emg_recorder_close(r) , 0);

	struct edf_file f;
	edf_open(&f, path);
	ck_assert_int_eq(f.h.datarecords_in_file, 7); /* 1234 frames -> 7 records of 200 */
	size_t len;
	double *y0 = edf_signal(&f, 0, &len), *y1 = edf_signal(&f, 1, &len),
	       *y3 = edf_signal(&f, 3, &len);
	ck_assert_uint_eq(len, 1400);
	ck_assert_double_eq_tol(y0[5], 10000, 0.01);
	ck_assert_double_eq_tol(y1[5], -10000, 0.01);
	ck_assert_double_eq_tol(y3[1233], 1233, 0.01);
	ck_assert_double_eq_tol(y3[1234], 0, 0.01);
	ck_assert_double_eq_tol(y3[1399], 0, 0.01);
	double on, du;
	ck_assert(find_annotation(&f, "end of data", &on, &du));
	ck_assert_double_eq_tol(on, 1234 / FS, 1e-4);
	ck_assert_double_eq_tol(du, 166 / FS, 1e-4);
	free(y0);
	free(y1);
	free(y3);
	edf_close(&f);
	free(x);
	emg_muscles_free(m);
}
END_TEST

/* Rates whose 100 ms is not a whole number of samples. */
START_TEST(test_record_geometry)
{
	const struct {
		double rate, rec_s;
		int spr;
	} cases[] = { { 2000, 0.1, 200 }, { 250, 0.1, 25 }, { 125, 0.104, 13 },
		      { 2048, 0.125, 256 }, { 1000.5, 2.0, 2001 }, { 16000, 0.1, 1600 } };

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct emg_device_info dev = dev_info(cases[c].rate);
		char path[128], name[32];
		struct emg_recorder *r = NULL;
		size_t n = (size_t)(cases[c].rate * 3);
		float *x = calloc(n * NCH, sizeof(float));

		for (size_t i = 0; i < n * NCH; i++)
			x[i] = (float)(i % 977) - 488.0f;
		snprintf(name, sizeof(name), "geo%zu.edf", c);
		path_in(path, sizeof(path), name);
		struct emg_record_params p = params(path, true, &dev, NULL);
		p.buffer_s = 4;
		ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
		ck_assert_uint_eq(emg_recorder_write(r, x, (unsigned)n, 0), n);
		ck_assert_int_eq(emg_recorder_close(r), 0);
		struct edf_file f;
		edf_open(&f, path);
		ck_assert_int_eq(f.h.datarecord_duration,
				 llround(cases[c].rec_s * EDFLIB_TIME_DIMENSION));
		ck_assert_int_eq(f.h.signalparam[0].smp_in_datarecord, cases[c].spr);
		ck_assert_str_eq(f.h.signalparam[0].label, "ch0             ");
		size_t len;
		double *y = edf_signal(&f, 7, &len);
		ck_assert_uint_ge(len, n);
		for (size_t i = 0; i < n; i++)
			ck_assert_double_le(fabs(y[i] - x[i * NCH + 7]), 0.16);
		free(y);
		edf_close(&f);
		free(x);
	}
}
END_TEST

/* Filtered and envelope channels computed on the recorder thread. */
START_TEST(test_filtered_and_envelopes)
{
	struct emg_muscles *m = muscles();
	const size_t n = 8000;
	float *x = synth_frames(m, FS, n);
	struct emg_device_info dev = dev_info(FS);
	struct emg_filter_spec fs;
	char path[128];
	struct emg_recorder *r = NULL;

	emg_filter_spec_default(&fs);
	path_in(path, sizeof(path), "extra.bdf");
	struct emg_record_params p = params(path, false, &dev, m);
	p.filter = &fs;
	p.filtered = true;
	p.envelopes = true;
	p.rms_window_ms = 125;
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	feed(r, x, n, 2, NULL, 0);
	ck_assert_int_eq(emg_recorder_close(r), 0);

	struct edf_file f;
	edf_open(&f, path);
	ck_assert_int_eq(f.h.edfsignals, NCH + 12);
	ck_assert_str_eq(f.h.signalparam[NCH].label, "glute_max_l_f   ");
	ck_assert_str_eq(f.h.signalparam[NCH + 6].label, "glute_max_l_rms ");
	ck_assert_ptr_nonnull(strstr(f.h.signalparam[NCH].prefilter, "HP:20Hz LP:450Hz N:auto"));
	ck_assert_ptr_nonnull(strstr(f.h.signalparam[0].prefilter, "none"));
	ck_assert_double_eq(f.h.signalparam[NCH + 6].phys_min, 0);

	/* reference: the same filter over the same raw frames */
	struct emg_filter *flt = NULL;
	ck_assert_int_eq(emg_filter_new(&flt, &fs, FS, 6), 0);
	float *mus = malloc(n * 6 * sizeof(float));
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 6; k++)
			mus[i * 6 + k] = x[i * NCH + k];
	emg_filter_run(flt, mus, (unsigned)n);
	size_t len;
	double *yf = edf_signal(&f, NCH + 0, &len), *ye = edf_signal(&f, NCH + 6, &len);
	double maxerr = 0;
	for (size_t i = 0; i < n; i++) {
		double e = fabs(yf[i] - mus[i * 6]);
		if (e > maxerr)
			maxerr = e;
		ck_assert_double_ge(ye[i], -0.001);
	}
	ck_assert_double_le(maxerr, 0.01);
	/* the RMS channel at the end equals the RMS of the last 125 ms of filtered data */
	double w = 0;
	for (size_t i = n - 250; i < n; i++)
		w += (double)mus[i * 6] * mus[i * 6];
	ck_assert_double_eq_tol(ye[n - 1], sqrt(w / 250), 0.05 * sqrt(w / 250) + 0.01);
	free(yf);
	free(ye);
	free(mus);
	emg_filter_free(flt);
	edf_close(&f);

	/* replay plays the raw channels only */
	float *y = NULL;
	size_t ny;
	unsigned ch;
	double rate;
	ck_assert_int_eq(emg_replay_read_all(path, &y, &ny, &ch, &rate), 0);
	ck_assert_uint_eq(ch, NCH);
	free(y);
	free(x);
	emg_muscles_free(m);
}
END_TEST


/* Device-reported losses are zero-filled so file time stays device time;
 * a jump of the sample index beyond 60 s is annotated, not filled. */
START_TEST(test_gaps_and_discontinuity)
{
	struct emg_device_info dev = dev_info(FS);
	char path[128];
	struct emg_recorder *r = NULL;
	float x[NCH * 1000];

	for (size_t i = 0; i < NCH * 1000; i++)
		x[i] = 100.0f + (float)(i / NCH);
	path_in(path, sizeof(path), "gaps.bdf");
	struct emg_record_params p = params(path, false, &dev, NULL);
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	ck_assert_int_eq(emg_recorder_annotate(r, 5000 + 1500 + 10, -1, "after the gap"), 0);
	ck_assert_uint_eq(emg_recorder_write(r, x, 1000, 5000), 1000);  /* file 0..999 */
	ck_assert_uint_eq(emg_recorder_write(r, x, 1000, 6500), 1000);  /* gap 500: 1500.. */
	/* annotated before the recorder has seen the jump: placed after it */
	ck_assert_int_eq(emg_recorder_annotate(r, 90000000 + 100, -1, "after the jump"), 0);
	ck_assert_uint_eq(emg_recorder_write(r, x, 1000, 90000000), 1000); /* jump: 2500.. */
	ck_assert_uint_eq(emg_recorder_write(r, x, 1000, 90001000), 1000); /* 3500.. */
	ck_assert_int_eq(emg_recorder_close(r), 0);

	struct edf_file f;
	edf_open(&f, path);
	size_t len;
	double *y = edf_signal(&f, 3, &len);
	ck_assert_uint_eq(len, 4600);
	ck_assert_double_eq_tol(y[999], 1099, 0.01);
	ck_assert_double_eq_tol(y[1000], 0, 0.01);
	ck_assert_double_eq_tol(y[1499], 0, 0.01);
	ck_assert_double_eq_tol(y[1500], 100, 0.01);
	ck_assert_double_eq_tol(y[2500], 100, 0.01);
	ck_assert_double_eq_tol(y[4499], 1099, 0.01);
	double on, du;
	ck_assert(find_annotation(&f, "gap: 500 frames", &on, &du));
	ck_assert_double_eq_tol(on, 1000 / FS, 1e-4);
	ck_assert_double_eq_tol(du, 500 / FS, 1e-4);
	ck_assert(find_annotation(&f, "after the gap", &on, NULL));
	ck_assert_double_eq_tol(on, 1510 / FS, 1e-4);
	ck_assert(find_annotation(&f, "discontinuity", &on, NULL));
	ck_assert_double_eq_tol(on, 2500 / FS, 1e-4);
	ck_assert(find_annotation(&f, "after the jump", &on, NULL));
	ck_assert_double_eq_tol(on, 2600 / FS, 1e-4);
	free(y);
	edf_close(&f);
}
END_TEST

/* ------------------------------------------------------------ names */

START_TEST(test_names)
{
	char out[256], path[256];
	time_t t = 1700000000; /* 2023-11-14 22:13:20 UTC */
	struct tm tm;
	char stamp[32];

	localtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);

	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, "session1", "X", false, t), 0);
	snprintf(path, sizeof(path), "%s/session1.bdf", tmpdir);
	ck_assert_str_eq(out, path);
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, "session1.edf", "X", true, t), 0);
	snprintf(path, sizeof(path), "%s/session1.edf", tmpdir);
	ck_assert_str_eq(out, path);
	/* issue 16 #13: one rule, the error text's: these were accepted (or "x.edf" became x.bdf) */
	const char *outside[] = { "bridge ü 3", "with space", "star*", "what?", "-rf", "x\xff\xfe",
				  "semi;colon" };
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
		ck_assert_msg(emg_record_name(out, sizeof(out), tmpdir, outside[i], "X", false, t) ==
				      -EINVAL,
			      "accepted '%s'", outside[i]);
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, "x.edf", "X", false, t), -EXDEV);
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, "x.bdf", "X", true, t), -EXDEV);
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, "Set_2.v-1.bdf", "X", false, t), 0);

	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, NULL, "AB 12/3", false, t), 0);
	snprintf(path, sizeof(path), "%s/emgd-AB_12_3-%s.bdf", tmpdir, stamp);
	ck_assert_str_eq(out, path);
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, NULL, "", true, t), 0);
	snprintf(path, sizeof(path), "%s/emgd-unknown-%s.edf", tmpdir, stamp);
	ck_assert_str_eq(out, path);

	const char *bad[] = { "", "a/b", "/etc/passwd", "..", "a..b", "../x", ".hidden", "a\nb",
			      "tab\there", "del\x7f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(emg_record_name(out, sizeof(out), tmpdir, bad[i], "X", false, t) ==
				      -EINVAL,
			      "accepted '%s'", bad[i]);
	char longname[102];
	memset(longname, 'a', 101);
	longname[101] = 0;
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, longname, "X", false, t),
			 -EINVAL);
	longname[100] = 0;
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, longname, "X", false, t), 0);
	ck_assert_int_eq(emg_record_name(out, 20, tmpdir, "session1", "X", false, t),
			 -ENAMETOOLONG);

	/* existing files: -EEXIST for a given name, a -2 suffix for automatic names */
	snprintf(path, sizeof(path), "%s/taken.bdf", tmpdir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, "taken", "X", false, t),
			 -EEXIST);
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, "taken.edf", "X", true, t), 0);
	ck_assert_int_eq(emg_record_name(out, sizeof(out), tmpdir, NULL, "S", false, t), 0);
	close(open(out, O_CREAT | O_WRONLY, 0600));
	ck_assert_int_eq(emg_record_name(path, sizeof(path), tmpdir, NULL, "S", false, t), 0);
	ck_assert_str_ne(out, path);
	ck_assert_ptr_nonnull(strstr(path, "-2.bdf"));
}
END_TEST

START_TEST(test_no_overwrite)
{
	struct emg_device_info dev = dev_info(FS);
	char path[128];
	struct emg_recorder *r = NULL;
	struct stat sb;

	path_in(path, sizeof(path), "precious.bdf");
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_eq(write(fd, "keep", 4), 4);
	close(fd);
	struct emg_record_params p = params(path, false, &dev, NULL);
	ck_assert_int_eq(emg_recorder_open(&r, &p), -EEXIST);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 4);

	/* bad parameters */
	dev.rate = 0;
	path_in(path, sizeof(path), "bad.bdf");
	p = params(path, false, &dev, NULL);
	ck_assert_int_eq(emg_recorder_open(&r, &p), -EINVAL);
	dev = dev_info(FS);
	dev.phys_max_uv = dev.phys_min_uv;
	ck_assert_int_eq(emg_recorder_open(&r, &p), -EINVAL);
	ck_assert_int_ne(stat(path, &sb), 0);

	/* closing without any frame leaves no file behind */
	dev = dev_info(FS);
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	ck_assert_int_eq(emg_recorder_close(r), -ENODATA);
	ck_assert_int_ne(stat(path, &sb), 0);
}
END_TEST

/* ---------------------------------------------------- ring overflow */

START_TEST(test_overflow_counts_drops)
{
	struct emg_muscles *m = muscles();
	const size_t n = 40000;
	float *x = synth_frames(m, FS, n);
	struct emg_device_info dev = dev_info(FS);
	char path[128];
	struct emg_recorder *r = NULL;
	struct emg_recorder_stats st;

	path_in(path, sizeof(path), "overflow.bdf");
	struct emg_record_params p = params(path, false, &dev, m);
	p.buffer_s = 0.001; /* 16 slots */
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	/* one huge burst, then a few blocks: the writer never waits for the thread */
	double t0 = mono();
	uint32_t acc = emg_recorder_write(r, x, 30000, 0);
	double dt = mono() - t0;
	ck_assert_uint_lt(acc, 30000);
	ck_assert_double_lt(dt, 0.05 * slow_factor());
	uint64_t acc_total = acc;
	size_t last = 0;
	for (size_t i = 30000; i < n; i += 2) {
		uint32_t k = emg_recorder_write(r, x + i * NCH, 2, i);
		acc_total += k;
		if (k)
			last = i + k - 1;
		if (i % 64 == 0)
			usleep(100);
	}
	emg_recorder_stats(r, &st);
	ck_assert_uint_eq(st.frames_dropped, n - acc_total);
	ck_assert_int_eq(emg_recorder_close(r), 0);
	printf("overflow: burst of 30000 frames: %u accepted in %.2f ms; total dropped %llu\n",
	       acc, dt * 1e3, (unsigned long long)(n - acc_total));

	/* every accepted frame is in the file at its own time; the rest is zero-filled */
	struct edf_file f;
	edf_open(&f, path);
	size_t len;
	double *y = edf_signal(&f, 0, &len);
	ck_assert_uint_ge(len, last + 1);
	size_t same = 0, zero = 0;
	for (size_t i = 0; i < n && i < len; i++) {
		if (fabs(y[i] - x[i * NCH]) < 0.001)
			same++;
		else if (fabs(y[i]) < 0.001) /* 0 within a step */
			zero++;
		else
			ck_abort_msg("sample %zu is %g, neither %g nor 0", i, y[i], x[i * NCH]);
	}
	ck_assert_uint_ge(same, acc_total);
	/* A frame accepted after dropped ones leaves a hole, which must be annotated.
	 * (On a starved machine the thread may not drain before close: then nothing
	 * after the burst was accepted and there is no hole.) */
	if (last >= 30000)
		ck_assert(find_annotation(&f, "gap:", NULL, NULL));
	free(y);
	edf_close(&f);
	free(x);
	emg_muscles_free(m);
}
END_TEST

/* ---------------------------------------------------------- kill -9 */

struct shared {
	_Atomic uint64_t handed;  /* frames given to emg_recorder_write() */
	_Atomic uint64_t records; /* data records the recorder has in the file */
};

/* Child: record paced synth data, annotate, then SIGKILL itself (or get killed). */
static void child_record(const char *path, struct shared *sh, double seconds, bool paced)
{
	struct emg_muscles *m = muscles();
	struct emg_device_info dev = dev_info(FS);
	const size_t n = (size_t)(FS * 10);
	float *x = synth_frames(m, FS, n);
	struct emg_recorder *r = NULL;
	struct emg_record_params p = params(path, false, &dev, m);

	if (emg_recorder_open(&r, &p))
		_exit(3);
	double t0 = mono();
	uint64_t i = 0;
	for (;;) {
		double t = mono() - t0;
		if (paced && t >= seconds)
			break;
		if (i == 400)
			emg_recorder_annotate(r, 400, -1, "marker A");
		if (i == 1000)
			emg_recorder_annotate(r, 1000, 0.5, "marker B");
		emg_recorder_write(r, x + (i % n) * NCH, 2, i);
		i += 2;
		atomic_store(&sh->handed, i);
		struct emg_recorder_stats st;
		emg_recorder_stats(r, &st);
		atomic_store(&sh->records, st.records);
		if (paced) {
			double due = t0 + (double)i / FS;
			while (mono() < due)
				usleep(200);
		} else if (i % 200 == 0) {
			usleep(2000);
		}
	}
	kill(getpid(), SIGKILL);
	_exit(4);
}

START_TEST(test_kill9_then_repair)
{
	char path[128], msg[200];
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status;

	ck_assert_ptr_ne(sh, MAP_FAILED);
	path_in(path, sizeof(path), "killed.bdf");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child_record(path, sh, 1.5, true);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	uint64_t handed = atomic_load(&sh->handed);

	int rr = emg_record_repair(path, msg, sizeof(msg));
	printf("kill -9 after %.2f s: repair -> %d (%s)\n", handed / FS, rr, msg);
	ck_assert_int_ge(rr, 0);
	struct edf_file f;
	edf_open(&f, path);
	double secs = (double)f.h.file_duration / EDFLIB_TIME_DIMENSION;
	printf("kill -9: %.3f s handed to the recorder, %.3f s in the file\n", handed / FS, secs);
	ck_assert_double_ge(secs, handed / FS - 1.0);
	ck_assert_double_le(secs, handed / FS + 1e-9);
	double on, du;
	ck_assert(find_annotation(&f, "marker A", &on, &du));
	ck_assert_double_eq_tol(on, 0.2, 1e-4);
	ck_assert(find_annotation(&f, "marker B", &on, &du));
	ck_assert_double_eq_tol(on, 0.5, 1e-4);
	ck_assert_double_eq_tol(du, 0.5, 1e-4);
	/* the data are the synth's */
	struct emg_muscles *m = muscles();
	float *x = synth_frames(m, FS, 2000);
	size_t len;
	double *y = edf_signal(&f, 2, &len);
	for (size_t i = 0; i < 2000 && i < len; i++)
		ck_assert_double_le(fabs(y[i] - x[i * NCH + 2]), 0.001);
	free(y);
	free(x);
	emg_muscles_free(m);
	edf_close(&f);
	munmap(sh, sizeof(*sh));
}
END_TEST

/* Kill at arbitrary moments while the recorder writes flat out: repair always
 * yields a file EDFlib reads. */
START_TEST(test_kill9_anytime)
{
	const int delays_ms[] = { 137, 251, 333 };

	for (size_t k = 0; k < sizeof(delays_ms) / sizeof(delays_ms[0]); k++) {
		char path[128], name[32], msg[200];
		struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		int status;

		snprintf(name, sizeof(name), "any%zu.bdf", k);
		path_in(path, sizeof(path), name);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			child_record(path, sh, 1e9, false);
		/* The delays count from the first data record in the file, not from the
		 * open: killed before it, "nothing to recover" is the right answer, and
		 * under qemu-user the first record was not always there 137 ms after it. */
		while (atomic_load(&sh->records) == 0)
			usleep(1000);
		usleep((useconds_t)delays_ms[k] * 1000);
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		int rr = emg_record_repair(path, msg, sizeof(msg));
		printf("kill -9 at %d ms: repair -> %d (%s)\n", delays_ms[k], rr, msg);
		ck_assert_int_ge(rr, 0);
		struct edf_file f;
		edf_open(&f, path);
		ck_assert_int_ge(f.h.datarecords_in_file, 1);
		edf_close(&f);
		ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 0);
		munmap(sh, sizeof(*sh));
	}
}
END_TEST

/* --------------------------------------------------------- disk full */

/* Child: record until the disk refuses; exit code = first failed check. */
static int child_disk_full(const char *path, double seconds)
{
	struct emg_muscles *m = muscles();
	struct emg_device_info dev = dev_info(FS);
	const size_t n = (size_t)(FS * seconds);
	float *x = synth_frames(m, FS, n);
	struct emg_recorder *r = NULL;
	struct emg_record_params p = params(path, false, &dev, m);
	struct emg_recorder_stats st;
	double worst = 0;

	if (emg_recorder_open(&r, &p))
		return 10;
	emg_recorder_annotate(r, 10, -1, "before the disk filled");
	for (size_t i = 0; i < n; i += 2) {
		double t0 = mono();
		emg_recorder_write(r, x + i * NCH, 2, i);
		double dt = mono() - t0;
		if (dt > worst)
			worst = dt;
		if (i % 2000 == 0)
			usleep(20000); /* let the recorder thread catch up */
	}
	for (int w = 0; w < 200; w++) { /* let the thread process what is queued */
		emg_recorder_stats(r, &st);
		if (st.frames_written + st.frames_dropped == n)
			break;
		usleep(10000);
	}
	printf("disk full (%s): state %d error %d (%s), %llu records, %llu frames written, %llu "
	       "dropped, slowest write() %.1f us\n",
	       path, st.state, st.error, strerror(-st.error), (unsigned long long)st.records,
	       (unsigned long long)st.frames_written, (unsigned long long)st.frames_dropped,
	       worst * 1e6);
	if (st.state != EMG_RECORD_FAILED)
		return 11;
	if (st.error != -ENOSPC && st.error != -EFBIG)
		return 12;
	if (st.frames_dropped == 0 || st.frames_written + st.frames_dropped != n)
		return 13;
	if (worst > 0.05)
		return 14;
	if (emg_recorder_write(r, x, 2, n) != 0)
		return 15;
	if (emg_recorder_annotate(r, n, -1, "too late") != -EPIPE)
		return 16;
	int e = emg_recorder_close(r);
	if (e != st.error)
		return 17;
	free(x);
	emg_muscles_free(m);
	return 0;
}

static void check_full_file(const char *path)
{
	char msg[200];
	struct edf_file f;

	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 0);
	edf_open(&f, path);
	ck_assert_int_ge(f.h.datarecords_in_file, 1);
	ck_assert(find_annotation(&f, "before the disk filled", NULL, NULL));
	ck_assert(find_annotation(&f, "recording stopped:", NULL, NULL));
	edf_close(&f);
}

START_TEST(test_disk_full_rlimit)
{
	char path[128];
	int status;

	path_in(path, sizeof(path), "full.bdf");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { 100000, 100000 };
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(2);
		int rc = child_disk_full(path, 5);
		fflush(stdout);
		_exit(rc);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
	check_full_file(path);
}
END_TEST

START_TEST(test_disk_full_tmpfs)
{
	char dir[128], path[160];
	int status;

	path_in(dir, sizeof(dir), "tmpfs");
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=200k") < 0) {
		printf("disk full (tmpfs): skipped, mount failed: %s\n", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/full.bdf", dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc = child_disk_full(path, 10);
		fflush(stdout);
		_exit(rc);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	/* check a copy, so that a failed check cannot leave the tmpfs mounted */
	char copy[160], cmd[400];
	path_in(copy, sizeof(copy), "full-copy.bdf");
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
	int cp = system(cmd);
	umount2(dir, MNT_DETACH);
	ck_assert_msg(ok, "child failed: %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	ck_assert_int_eq(cp, 0);
	check_full_file(copy);
}
END_TEST

/* ------------------------------------------------------------ repair */

static void make_file(const char *path, size_t frames)
{
	struct emg_muscles *m = muscles();
	float *x = synth_frames(m, FS, frames);
	struct emg_device_info dev = dev_info(FS);
	struct emg_recorder *r = NULL;
	struct emg_record_params p = params(path, false, &dev, m);

	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	ck_assert_int_eq(emg_recorder_annotate(r, 300, -1, "kept"), 0);
	ck_assert_uint_eq(emg_recorder_write(r, x, (unsigned)frames, 0), frames);
	ck_assert_int_eq(emg_recorder_close(r), 0);
	free(x);
	emg_muscles_free(m);
}

static void expect_records(const char *path, long long n)
{
	struct edf_file f;

	edf_open(&f, path);
	ck_assert_int_eq(f.h.datarecords_in_file, n);
	ck_assert(find_annotation(&f, "kept", NULL, NULL));
	edf_close(&f);
}

START_TEST(test_repair_cases)
{
	char path[128], msg[200];
	struct stat sb;
	int fd;

	path_in(path, sizeof(path), "rep.bdf");
	make_file(path, 2000); /* 10 records */
	ck_assert_int_eq(stat(path, &sb), 0);
	off_t size = sb.st_size;
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 0);
	ck_assert_ptr_nonnull(strstr(msg, "ok"));

	/* count "-1", as EDFlib leaves it */
	fd = open(path, O_RDWR);
	ck_assert_int_eq(pwrite(fd, "-1      ", 8, 236), 8);
	close(fd);
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 1);
	expect_records(path, 10);

	/* a partial record at the end */
	fd = open(path, O_WRONLY | O_APPEND);
	char junk[1000];
	memset(junk, 0x55, sizeof(junk));
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 1);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, size);
	expect_records(path, 10);

	/* records that never reached the disk (zeros after a power cut), count includes them */
	size_t recsize = (size_t)(size - 256 * (NCH + 3)) / 10;
	fd = open(path, O_RDWR);
	ck_assert_int_eq(ftruncate(fd, size + 3 * (off_t)recsize), 0);
	ck_assert_int_eq(pwrite(fd, "13      ", 8, 236), 8);
	close(fd);
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 1);
	expect_records(path, 10);

	/* a stale count smaller than the file */
	fd = open(path, O_RDWR);
	ck_assert_int_eq(pwrite(fd, "7       ", 8, 236), 8);
	close(fd);
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 1);
	expect_records(path, 10);

	/* not EDF, missing, too short */
	char other[128];
	path_in(other, sizeof(other), "notedf.bdf");
	fd = open(other, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	ck_assert_int_eq(emg_record_repair(other, msg, sizeof(msg)), -EINVAL);
	path_in(other, sizeof(other), "missing.bdf");
	ck_assert_int_eq(emg_record_repair(other, msg, sizeof(msg)), -ENOENT);

	/* the directory sweep */
	fd = open(path, O_RDWR);
	ck_assert_int_eq(pwrite(fd, "-1      ", 8, 236), 8);
	close(fd);
	ck_assert_int_eq(emg_record_repair_dir(tmpdir, NULL, NULL), 1);
	expect_records(path, 10);
}
END_TEST

/* Patch one header field (padded with spaces), run repair, restore the original bytes. */
static int repair_with_field(const char *path, off_t at, size_t width, const char *value,
			     char *msg, size_t len)
{
	char orig[80], f[80];
	struct stat before, after;
	int fd = open(path, O_RDWR), r;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, orig, width, at), (ssize_t)width);
	memset(f, ' ', width);
	memcpy(f, value, strlen(value));
	ck_assert_int_eq(pwrite(fd, f, width, at), (ssize_t)width);
	ck_assert_int_eq(fstat(fd, &before), 0);
	r = emg_record_repair(path, msg, len);
	/* a refused header is left exactly as it was */
	ck_assert_int_eq(fstat(fd, &after), 0);
	if (r < 0) {
		char now[80];
		ck_assert_int_eq(after.st_size, before.st_size);
		ck_assert_int_eq(pread(fd, now, width, at), (ssize_t)width);
		ck_assert(!memcmp(now, f, width));
	}
	ck_assert_int_eq(pwrite(fd, orig, width, at), (ssize_t)width);
	close(fd);
	return r;
}

/*
 * Issue 16 #9: header numbers are range-checked before any cast.  A negative
 * header size or a record count of 1e30 / nan was cast to size_t / long long
 * (undefined behaviour; UBSan in tests/fuzz/fuzz_repair.c) and "1e30" even
 * made repair rewrite the count of a good file.
 */
START_TEST(test_repair_hostile_numbers)
{
	char path[128], msg[200];
	struct {
		off_t at;
		size_t width;
		const char *value;
	} bad[] = {
		{ 184, 8, "-256" }, { 184, 8, "1e30" }, { 184, 8, "nan" }, { 184, 8, "2560.5" },
		{ 252, 4, "-1" }, { 252, 4, "1e9" },
		{ 236, 8, "1e30" }, { 236, 8, "nan" }, { 236, 8, "-5" }, { 236, 8, "2.5" },
		{ 244, 8, "inf" }, { 244, 8, "-0.1" },
	};
	struct stat sb;

	path_in(path, sizeof(path), "hostile.bdf");
	make_file(path, 2000); /* 10 records */
	ck_assert_int_eq(stat(path, &sb), 0);
	/* the header size says how many signals there are */
	unsigned nsig;
	{
		char f[5] = { 0 };
		int fd = open(path, O_RDONLY);
		ck_assert_int_eq(pread(fd, f, 4, 252), 4);
		close(fd);
		nsig = (unsigned)atoi(f);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = repair_with_field(path, bad[i].at, bad[i].width, bad[i].value, msg, sizeof(msg));
		ck_assert_msg(r == -EINVAL, "field at %lld = '%s': repair -> %d (%s)",
			      (long long)bad[i].at, bad[i].value, r, msg);
	}
	/* per-signal fields of the first signal: samples per record, digital minimum */
	const off_t o_spr = 256 + (off_t)nsig * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80);
	const off_t o_dmin = 256 + (off_t)nsig * (16 + 80 + 8 + 8 + 8);
	const char *bad_spr[] = { "-3", "1e300", "nan", "0" }, *bad_dmin[] = { "1e300", "-9e18" };
	for (size_t i = 0; i < sizeof(bad_spr) / sizeof(bad_spr[0]); i++)
		ck_assert_int_eq(repair_with_field(path, o_spr, 8, bad_spr[i], msg, sizeof(msg)), -EINVAL);
	for (size_t i = 0; i < sizeof(bad_dmin) / sizeof(bad_dmin[0]); i++)
		ck_assert_int_eq(repair_with_field(path, o_dmin, 8, bad_dmin[i], msg, sizeof(msg)), -EINVAL);
	/* untouched: still a good file */
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), 0);
	expect_records(path, 10);
}
END_TEST

/* A file being recorded is locked against repair. */
START_TEST(test_repair_refuses_live_file)
{
	struct emg_device_info dev = dev_info(FS);
	char path[128], msg[200];
	struct emg_recorder *r = NULL;
	float x[NCH * 400] = { 0 };

	path_in(path, sizeof(path), "live.bdf");
	struct emg_record_params p = params(path, false, &dev, NULL);
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	emg_recorder_write(r, x, 400, 0);
	/* both 100 ms records in the file (the recorder thread writes them) */
	for (struct emg_recorder_stats st = { 0 }; st.records < 2; usleep(1000))
		emg_recorder_stats(r, &st);
	ck_assert_int_eq(emg_record_repair(path, msg, sizeof(msg)), -EBUSY);
	ck_assert_int_eq(emg_record_repair_dir(tmpdir, NULL, NULL), 0);
	/* and the live file is already readable (count kept current); EDFlib will not
	 * open a file this process writes, so read a copy */
	char copy[160], cmd[400];
	path_in(copy, sizeof(copy), "live-copy.bdf");
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
	ck_assert_int_eq(system(cmd), 0);
	struct edf_file f;
	edf_open(&f, copy);
	ck_assert_int_eq(f.h.datarecords_in_file, 2);
	edf_close(&f);
	ck_assert_int_eq(emg_recorder_close(r), 0);
}
END_TEST

/* ------------------------------------------------- threads (TSan) */

struct feeder {
	struct emg_recorder *r;
	const float *x;
	size_t n;
	atomic_bool done;
};

static void *feeder_thread(void *arg)
{
	struct feeder *fd = arg;

	for (size_t i = 0; i < fd->n; i += 4) {
		emg_recorder_write(fd->r, fd->x + i * NCH, 4, i);
		if (i % 20 == 0)
			usleep(1000);
	}
	atomic_store(&fd->done, true);
	return NULL;
}

START_TEST(test_threads)
{
	struct emg_muscles *m = muscles();
	const size_t n = 12000;
	float *x = synth_frames(m, FS, n);
	struct emg_device_info dev = dev_info(FS);
	char path[128];
	struct emg_recorder *r = NULL;
	struct emg_recorder_stats st;
	pthread_t t;
	int anns = 0;

	path_in(path, sizeof(path), "threads.bdf");
	struct emg_record_params p = params(path, false, &dev, m);
	p.filtered = true;
	p.envelopes = true;
	p.sync = true;
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	struct feeder fd = { .r = r, .x = x, .n = n };
	atomic_init(&fd.done, false);
	ck_assert_int_eq(pthread_create(&t, NULL, feeder_thread, &fd), 0);
	while (!atomic_load(&fd.done)) {
		char text[32];
		snprintf(text, sizeof(text), "note %d", anns);
		if (emg_recorder_annotate(r, EMG_RECORD_NOW, -1, text) == 0)
			anns++;
		emg_recorder_stats(r, &st);
		usleep(2000);
	}
	pthread_join(t, NULL);
	emg_recorder_stats(r, &st);
	ck_assert_int_eq(emg_recorder_close(r), 0);
	struct edf_file f;
	edf_open(&f, path);
	int found = 0;
	for (long long i = 0; i < f.h.annotations_in_file; i++) {
		struct edf_annotation_struct a;
		edf_get_annotation(f.h.handle, (int)i, &a);
		found += !strncmp(a.annotation, "note ", 5);
	}
	ck_assert_int_eq(found, anns);
	edf_close(&f);
	free(x);
	emg_muscles_free(m);
}
END_TEST

/* Throughput of the recorder thread (info, not a pass/fail bound beyond sanity). */
START_TEST(test_throughput)
{
	struct emg_device_info dev = dev_info(10000);
	const unsigned ch = NCH;
	const size_t n = 100000; /* 10 s at 10 kHz */
	float *x = malloc(n * ch * sizeof(float));
	char path[128];
	struct emg_recorder *r = NULL;

	for (size_t i = 0; i < n * ch; i++)
		x[i] = (float)((i * 7919) % 2001) - 1000.0f;
	path_in(path, sizeof(path), "speed.bdf");
	struct emg_record_params p = params(path, false, &dev, NULL);
	p.buffer_s = 16;
	ck_assert_int_eq(emg_recorder_open(&r, &p), 0);
	double t0 = mono();
	for (size_t i = 0; i < n; i += 10)
		ck_assert_uint_eq(emg_recorder_write(r, x + i * ch, 10, i), 10);
	double tw = mono() - t0;
	ck_assert_int_eq(emg_recorder_close(r), 0);
	double tt = mono() - t0;
	printf("throughput: %zu frames x %u ch: write() %.1f ns/frame, file done in %.1f ms "
	       "(%.1f M samples/s)\n",
	       n, ch, tw / n * 1e9, tt * 1e3, n * ch / tt / 1e6);
	free(x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("record");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip_bdf);
	tcase_add_test(tc, test_roundtrip_edf);
	tcase_add_test(tc, test_header_filter_text);
	tcase_add_test(tc, test_annotation_before_start);
	tcase_add_test(tc, test_clip_and_padding);
	tcase_add_test(tc, test_record_geometry);
	tcase_add_test(tc, test_filtered_and_envelopes);
	tcase_add_test(tc, test_gaps_and_discontinuity);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_no_overwrite);
	tcase_add_test(tc, test_overflow_counts_drops);
	tcase_add_test(tc, test_kill9_then_repair);
	tcase_add_test(tc, test_kill9_anytime);
	tcase_add_test(tc, test_disk_full_rlimit);
	tcase_add_test(tc, test_disk_full_tmpfs);
	tcase_add_test(tc, test_repair_cases);
	tcase_add_test(tc, test_repair_hostile_numbers);
	tcase_add_test(tc, test_repair_refuses_live_file);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_throughput);
	suite_add_tcase(s, tc);
	return test_run(s);
}
