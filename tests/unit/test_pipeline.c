/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for emg_pipeline: tick timing, block-split invariance, sequence jumps,
 * calibration records, onset timestamps and the channel map.  Signals come from the synth
 * (not paced) or are made by hand; a reference filter + envelope chain built from the same
 * modules checks the calibration numbers.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/synth.h"
#include "envelope.h"
#include "filter.h"
#include "pipeline.h"
#include "testutil.h"

#define FS 2000.0
#define SEC 1000000000ull

/* ---- record capture -------------------------------------------------- */

struct recs {
	size_t size; /* bytes per record slot */
	size_t n, cap;
	unsigned char *buf;
	uint64_t max_bytes; /* largest record seen, from nmuscles */
};

static void recs_init(struct recs *r, const struct emg_pipeline *p)
{
	memset(r, 0, sizeof(*r));
	r->size = emg_pipeline_out_size(p);
}

static void recs_free(struct recs *r)
{
	free(r->buf);
	r->buf = NULL;
	r->n = r->cap = 0;
}

static struct emg_out *rec_at(const struct recs *r, size_t i)
{
	return (struct emg_out *)(r->buf + i * r->size);
}

static void on_rec(void *ud, const struct emg_out *rec)
{
	struct recs *r = ud;
	size_t bytes = sizeof(*rec);

	if (rec->type == EMG_OUT_METRICS)
		bytes += rec->nmuscles * sizeof(struct emg_out_muscle);
	ck_assert_uint_le(bytes, r->size);
	if (bytes > r->max_bytes)
		r->max_bytes = bytes;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->buf = realloc(r->buf, r->cap * r->size);
		ck_assert_ptr_nonnull(r->buf);
	}
	memset(r->buf + r->n * r->size, 0, r->size);
	memcpy(r->buf + r->n * r->size, rec, bytes);
	r->n++;
}

static size_t count_type(const struct recs *r, int type)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += rec_at(r, i)->type == type;
	return n;
}

/* ---- signals --------------------------------------------------------- */

static struct test_rng rng = TEST_RNG_SEEDED(1); /* the tests' noise: one stream through the file */

/* n frames of ch channels from the synth (default session scenario, not paced). */
/* n frames of the synth's session on map; realism and snr_db as given (snr_db <= 0: its default). */
static float *synth_frames_as(const struct emg_muscles *map, unsigned ch, double fs, uint64_t n,
			      enum emg_synth_realism realism, double snr_db)
{
	struct emg_device_config dc;
	struct emg_synth *s;
	float *x;

	emg_device_config_default(&dc);
	dc.realism = realism;
	if (snr_db > 0)
		dc.snr_db = snr_db;
	dc.realtime = false;
	dc.rate = fs;
	dc.channels = ch;
	dc.muscles = map;
	ck_assert_int_eq(emg_synth_new(&s, &dc), 0);
	ck_assert_uint_eq(emg_synth_channels(s), ch);
	x = malloc(sizeof(float) * ch * n);
	ck_assert_ptr_nonnull(x);
	emg_synth_generate(s, x, (unsigned)n);
	emg_synth_free(s);
	return x;
}

static float *synth_frames(const struct emg_muscles *map, unsigned ch, double fs, uint64_t n)
{
	return synth_frames_as(map, ch, fs, n, EMG_SYNTH_PLAIN, 0);
}

static struct emg_device_info devinfo(double fs, unsigned ch)
{
	struct emg_device_info d;

	memset(&d, 0, sizeof(d));
	snprintf(d.driver, sizeof(d.driver), "synth");
	d.rate = fs;
	d.channels = ch;
	return d;
}

static struct emg_pipeline *make(const struct emg_pipeline_config *pc, double fs, unsigned ch,
				 const struct emg_muscles *map, const struct emg_calib *cal)
{
	struct emg_device_info d = devinfo(fs, ch);
	struct emg_pipeline *p;

	ck_assert_int_eq(emg_pipeline_new(&p, pc, &d, map, cal), 0);
	return p;
}

/* Arrival time of a block whose last frame is `last`: sample time plus a fixed 3 ms latency. */
static uint64_t arrival(uint64_t last, double fs)
{
	return 1000 * SEC + (uint64_t)((double)(last + 1) * 1e9 / fs) + 3000000ull;
}

/* Feed frames [from, to) of x (ch channels) in blocks cycling through sizes[]. */
static void feed(struct emg_pipeline *p, const float *x, unsigned ch, uint64_t from, uint64_t to,
		 const unsigned *sizes, unsigned nsizes, uint64_t seq0, struct recs *r, double fs)
{
	unsigned k = 0;

	for (uint64_t i = from; i < to;) {
		unsigned n = sizes[k++ % nsizes];
		if (n > to - i)
			n = (unsigned)(to - i);
		emg_pipeline_process(p, x + i * ch, n, seq0 + i, arrival(seq0 + i + n - 1, fs), on_rec,
				     r);
		i += n;
	}
}

/* ---- creation -------------------------------------------------------- */

START_TEST(test_new_invalid)
{
	struct emg_pipeline_config pc;
	struct emg_muscles *map, *empty;
	struct emg_device_info d = devinfo(FS, 6);
	struct emg_pipeline *p = NULL;

	emg_pipeline_config_default(&pc);
	ck_assert_double_eq(pc.publish_rate, 50);
	ck_assert_double_eq(pc.rms_window_ms, 125);
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	ck_assert_int_eq(emg_muscles_new(&empty), 0);

	pc.publish_rate = 2001; /* faster than the samples */
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, map, NULL), -EINVAL);
	pc.publish_rate = 0;
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, map, NULL), -EINVAL);
	pc.publish_rate = 2000; /* one tick per sample is the limit */
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, map, NULL), 0);
	emg_pipeline_free(p);
	pc.publish_rate = 50;
	pc.rms_window_ms = 0;
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, map, NULL), -EINVAL);
	pc.rms_window_ms = 125;
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, empty, NULL), -EINVAL);
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, NULL, map, NULL), -EINVAL);
	ck_assert_int_eq(emg_pipeline_new(&p, NULL, &d, map, NULL), -EINVAL);
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, NULL, NULL), -EINVAL);
	/* the map needs 6 channels */
	d.channels = 5;
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, map, NULL), -ERANGE);
	d.channels = 0;
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, map, NULL), -EINVAL);
	d.channels = 6;
	d.rate = 0;
	ck_assert_int_eq(emg_pipeline_new(&p, &pc, &d, map, NULL), -EINVAL);
	d.rate = FS;
	/* a filter the sample rate cannot carry is refused too */
	pc.filter.highpass_hz = 1500;
	pc.filter.lowpass_hz = 0;
	pc.filter.mains_hz = 0;
	ck_assert_int_lt(emg_pipeline_new(&p, &pc, &d, map, NULL), 0);
	emg_muscles_free(map);
	emg_muscles_free(empty);
}
END_TEST

START_TEST(test_record_size_and_accessors)
{
	struct emg_pipeline_config pc;
	struct emg_muscles *map;
	struct emg_pipeline *p;
	char desc[128];

	emg_pipeline_config_default(&pc);
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	p = make(&pc, FS, 8, map, NULL);
	ck_assert_uint_eq(emg_pipeline_out_size(p),
			  sizeof(struct emg_out) + 6 * sizeof(struct emg_out_muscle));
	ck_assert(emg_muscles_equal(emg_pipeline_muscles(p), map));
	ck_assert_ptr_ne(emg_pipeline_muscles(p), map); /* its own copy */
	ck_assert_int_gt(emg_pipeline_describe(p, desc, sizeof(desc)), 0);
	ck_assert_ptr_nonnull(strstr(desc, "50"));
	ck_assert_int_eq(emg_pipeline_calibrating(p), 0);
	emg_pipeline_free(p);
	emg_pipeline_free(NULL);
	emg_muscles_free(map);
}
END_TEST

/* ---- ticks ----------------------------------------------------------- */

/* Check that the metrics in r are ticks first..first+n-1 closing at the right samples. */
static void check_ticks(const struct recs *r, size_t expect, double fs, double rate,
			uint64_t seq0, unsigned nm)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct emg_out *rec = rec_at(r, i);
		if (rec->type != EMG_OUT_METRICS)
			continue;
		ck_assert_msg(rec->tick == k, "tick %llu where %zu was due",
			      (unsigned long long)rec->tick, k);
		ck_assert_uint_eq(rec->sample,
				  seq0 + (uint64_t)floor((double)(k + 1) * fs / rate) - 1);
		ck_assert_uint_eq(rec->nmuscles, nm);
		k++;
	}
	ck_assert_uint_eq(k, expect);
}

START_TEST(test_publish_rate_exact)
{
	static const struct {
		double fs, rate, secs;
		unsigned block;
	} cases[] = {
		{ 2000, 50, 10, 256 },  { 2000, 30, 10, 256 }, { 2000, 30, 10, 67 },
		{ 1000, 7, 10, 100 },   { 2000, 1000, 2, 128 }, { 250, 1, 20, 1 },
		{ 4096, 60, 5, 1000 },  { 2000, 2000, 1, 33 },
	};
	struct emg_muscles *map;
	struct emg_pipeline_config pc;

	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		double fs = cases[c].fs;
		uint64_t n = (uint64_t)(cases[c].secs * fs);
		float *x = calloc(n * 6, sizeof(float));
		struct emg_pipeline *p;
		struct recs r;
		size_t expect = (size_t)floor(cases[c].secs * cases[c].rate + 1e-9);

		emg_pipeline_config_default(&pc);
		pc.publish_rate = cases[c].rate;
		pc.filter.mains_hz = fs >= 500 ? 50 : 0;
		for (uint64_t i = 0; i < n * 6; i++)
			x[i] = (float)(10.0 * test_rng_gauss(&rng));
		p = make(&pc, fs, 6, map, NULL);
		recs_init(&r, p);
		/* the sequence does not start at 0: ticks count from the first sample seen */
		feed(p, x, 6, 0, n, &cases[c].block, 1, 123456, &r, fs);
		ck_assert_msg(count_type(&r, EMG_OUT_METRICS) == expect, "case %u: %zu ticks, expected %zu",
			      c, count_type(&r, EMG_OUT_METRICS), expect);
		/* the arrival back-dating: a tick on the block's last frame has t_ns == arrival */
		for (size_t i = 0; i < r.n; i++) {
			struct emg_out *rec = rec_at(&r, i);
			uint64_t last, back;
			if (rec->type != EMG_OUT_METRICS)
				continue;
			/* the block that produced it ended at the frame whose arrival it carries */
			last = (uint64_t)llround((double)(rec->arrival_ns - 1000 * SEC - 3000000ull) * fs / 1e9) - 1;
			ck_assert_uint_ge(last, rec->sample);
			back = (uint64_t)((double)(last - rec->sample) * 1e9 / fs);
			ck_assert_uint_eq(rec->t_ns, rec->arrival_ns - back);
		}
		check_ticks(&r, expect, fs, cases[c].rate, 123456, 6);
		recs_free(&r);
		emg_pipeline_free(p);
		free(x);
	}
	emg_muscles_free(map);
}
END_TEST

/*
 * The same samples in any block split give the same records, bit for bit: on
 * the plain synth, and on the realistic one (ECG, ramps, cross-talk, motion)
 * at 10 dB, where weak bursts go through the report gate's slow-path rules,
 * and at 40 dB, where the ECG stage subtracts and the gate drops faded bursts.
 */
START_TEST(test_block_split_invariance)
{
	static const enum emg_synth_realism realism[] = { EMG_SYNTH_PLAIN, EMG_SYNTH_REALISTIC,
							  EMG_SYNTH_REALISTIC };
	static const double snr[] = { 0, 10, 40 };
	static const unsigned big[] = { 256 }, odd[] = { 1, 7, 128, 1000 }, ones[] = { 1 },
			      mixed[] = { 129, 3, 500, 64, 2 };
	const uint64_t n = (uint64_t)(25 * FS);
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	float *x;
	struct recs ra, rb;
	const unsigned *splits[] = { odd, ones, mixed };
	const unsigned nsplit[] = { 4, 1, 5 };

	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	x = synth_frames_as(map, 6, FS, n, realism[_i], snr[_i]);
	emg_pipeline_config_default(&pc);
	{
		struct emg_pipeline *p = make(&pc, FS, 6, map, NULL);
		recs_init(&ra, p);
		feed(p, x, 6, 0, n, big, 1, 0, &ra, FS);
		emg_pipeline_free(p);
	}
	ck_assert_uint_eq(count_type(&ra, EMG_OUT_METRICS), 25 * 50);
	/* the session scenario has bursts in the first 25 s: events must be part of the test */
	ck_assert_uint_gt(count_type(&ra, EMG_OUT_ONSET), 3);
	ck_assert_uint_gt(count_type(&ra, EMG_OUT_OFFSET), 3);
	check_ticks(&ra, 25 * 50, FS, 50, 0, 6);
	for (unsigned s = 0; s < 3; s++) {
		struct emg_pipeline *p = make(&pc, FS, 6, map, NULL);
		size_t k = 0;

		recs_init(&rb, p);
		feed(p, x, 6, 0, n, splits[s], nsplit[s], 0, &rb, FS);
		ck_assert_uint_eq(rb.n, ra.n);
		for (size_t i = 0; i < ra.n; i++) {
			struct emg_out *a = rec_at(&ra, i), *b = rec_at(&rb, i);
			ck_assert_uint_eq(a->type, b->type);
			ck_assert_uint_eq(a->sample, b->sample);
			ck_assert_uint_eq(a->muscle, b->muscle);
			if (a->type == EMG_OUT_METRICS) {
				ck_assert_uint_eq(a->tick, k);
				ck_assert_uint_eq(b->tick, k);
				k++;
				ck_assert_msg(!memcmp(a->m, b->m, 6 * sizeof(a->m[0])),
					      "split %u: tick %llu differs", s,
					      (unsigned long long)a->tick);
			} else {
				ck_assert_float_eq(a->duration_s, b->duration_s);
				ck_assert_float_eq(a->snr_db, b->snr_db);
			}
		}
		recs_free(&rb);
		emg_pipeline_free(p);
	}
	recs_free(&ra);
	free(x);
	emg_muscles_free(map);
}
END_TEST

START_TEST(test_sequence_jump)
{
	const unsigned bs = 100;
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	float *x;
	const uint64_t n = (uint64_t)(4 * FS);
	uint64_t last_tick = 0, ticks = 0;

	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	x = synth_frames(map, 6, FS, n);
	emg_pipeline_config_default(&pc);
	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	/* 1 s, then 1000 frames lost, then 1 s, then the counter restarts from 0, then 1 s */
	feed(p, x, 6, 0, 2000, &bs, 1, 0, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_METRICS), 50);
	emg_pipeline_add_dropped(p, 1000);
	feed(p, x, 6, 2000, 4000, &bs, 1, 1000, &r, FS); /* sequence 3000..4999 */
	emg_pipeline_add_dropped(p, 7);
	feed(p, x, 6, 4000, 6000, &bs, 1, (uint64_t)0 - 4000, &r, FS); /* sequence 0..1999 */
	for (size_t i = 0; i < r.n; i++) {
		struct emg_out *rec = rec_at(&r, i);
		if (rec->type != EMG_OUT_METRICS)
			continue;
		ck_assert_msg(rec->tick == ticks, "tick %llu after %llu", (unsigned long long)rec->tick,
			      (unsigned long long)last_tick);
		last_tick = rec->tick;
		ticks++;
		/* dropped frames show from the first tick after the jump */
		if (ticks <= 50)
			ck_assert_uint_eq(rec->dropped, 0);
		else if (ticks <= 100)
			ck_assert_uint_eq(rec->dropped, 1000);
		else
			ck_assert_uint_eq(rec->dropped, 1007);
		/* still one tick per 40 received samples */
		if (ticks > 50 && ticks <= 100)
			ck_assert_uint_eq(rec->sample, 3000 + (ticks - 50) * 40 - 1);
		if (ticks > 100)
			ck_assert_uint_eq(rec->sample, (ticks - 100) * 40 - 1);
	}
	ck_assert_uint_eq(ticks, 150);
	recs_free(&r);
	emg_pipeline_free(p);
	free(x);
	emg_muscles_free(map);
}
END_TEST

/*
 * A replugged amplifier comes back with other electrode offsets (DC-coupled
 * ADS1299): 50 mV before a sequence jump, -80 mV after it, on every channel.
 * The band-pass takes the jump across the gap as a change of offset
 * (emg_filter_gap()): the display RMS in the second after it is that of the
 * same frames without offsets, within 5 %.  Filtered as a step, 130 mV rang
 * through the high-pass and notches for seconds.
 */
START_TEST(test_replug_offsets)
{
	const unsigned bs = 100;
	const uint64_t n = (uint64_t)(6 * FS), half = n / 2;
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct recs r[2];
	float *x[2];
	double worst = 0;

	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	for (int k = 0; k < 2; k++) {
		struct emg_pipeline *p = make(&pc, FS, 6, map, NULL);

		x[k] = synth_frames(map, 6, FS, n);
		for (uint64_t i = 0; k && i < n * 6; i++)
			x[k][i] += i < half * 6 ? 50000.0f : -80000.0f;
		recs_init(&r[k], p);
		feed(p, x[k], 6, 0, half, &bs, 1, 0, &r[k], FS);
		emg_pipeline_add_dropped(p, 5000);
		feed(p, x[k], 6, half, n, &bs, 1, 5000, &r[k], FS);
		emg_pipeline_free(p);
	}
	for (size_t i = 0; i < r[0].n && i < r[1].n; i++) {
		const struct emg_out *a = rec_at(&r[0], i), *b = rec_at(&r[1], i);

		if (a->type != EMG_OUT_METRICS || a->sample < half + 5000 || a->sample > half + 5000 + FS)
			continue;
		ck_assert_uint_eq(b->type, EMG_OUT_METRICS);
		for (unsigned m = 0; m < a->nmuscles; m++)
			worst = fmax(worst, fabs(b->m[m].rms / a->m[m].rms - 1));
	}
	printf("replugged with new offsets: display RMS within %.1f %% of the offset-free stream\n",
	       100 * worst);
	ck_assert_msg(worst < 0.05, "display RMS off by %.1f %% after the replug", 100 * worst);
	for (int k = 0; k < 2; k++) {
		recs_free(&r[k]);
		free(x[k]);
	}
	emg_muscles_free(map);
}
END_TEST

/* A reload swaps pipelines between two blocks (emg_pipeline_handover): ticks go on without
 * a gap whatever the new publish rate, also when the old pipeline had already taken more of
 * the pending tick than a whole new tick holds (publish_rate 50 -> 100 after 30 of a tick's
 * 40 samples: the stream used to stop for good). */
START_TEST(test_handover_publish_rate)
{
	static const struct {
		double from, to;
		unsigned split; /* samples the old pipeline takes after its last whole tick */
	} cases[] = {
		{ 50, 100, 30 }, { 50, 100, 10 }, { 50, 100, 0 }, { 50, 25, 30 },
		{ 50, 1000, 39 }, { 100, 50, 19 }, { 50, 50, 7 },
	};
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	const uint64_t n = (uint64_t)(2 * FS);
	float *x;

	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	x = synth_frames(map, 6, FS, n);
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct emg_pipeline *a, *b;
		struct recs r;
		uint64_t ticks = 0, cut = (uint64_t)(FS / cases[c].from) * 10 + cases[c].split, after;
		const unsigned bs = 1;

		emg_pipeline_config_default(&pc);
		pc.publish_rate = cases[c].from;
		a = make(&pc, FS, 6, map, NULL);
		pc.publish_rate = cases[c].to;
		b = make(&pc, FS, 6, map, NULL);
		recs_init(&r, a);
		feed(a, x, 6, 0, cut, &bs, 1, 5000, &r, FS);
		ck_assert_uint_eq(count_type(&r, EMG_OUT_METRICS), 10);
		emg_pipeline_handover(b, a);
		feed(b, x, 6, cut, n, &bs, 1, 5000, &r, FS);
		for (size_t i = 0; i < r.n; i++) {
			struct emg_out *rec = rec_at(&r, i);
			if (rec->type != EMG_OUT_METRICS)
				continue;
			ck_assert_msg(rec->tick == ticks, "case %u: tick %llu, expected %llu", c,
				      (unsigned long long)rec->tick, (unsigned long long)ticks);
			ticks++;
		}
		/* after the switch, the new rate: the rest of the samples in its ticks (one may be short) */
		after = (n - cut) * (uint64_t)cases[c].to / (uint64_t)FS;
		ck_assert_msg(ticks >= 10 + after && ticks <= 10 + after + 1,
			      "case %u: %llu ticks, expected %llu or one more", c, (unsigned long long)ticks,
			      (unsigned long long)(10 + after));
		recs_free(&r);
		emg_pipeline_free(a);
		emg_pipeline_free(b);
	}
	free(x);
	emg_muscles_free(map);
}
END_TEST

/* ---- calibration ----------------------------------------------------- */

/* Reference display envelope of x (nm lanes, already in muscle order) with the pipeline's chain. */
static float *reference_env(const struct emg_pipeline_config *pc, const float *x, unsigned nm,
			    uint64_t n, double fs)
{
	struct emg_filter *f;
	struct emg_env *e;
	float *y = malloc(sizeof(float) * nm * n), *env = malloc(sizeof(float) * nm * n);

	memcpy(y, x, sizeof(float) * nm * n);
	ck_assert_int_eq(emg_filter_new(&f, &pc->filter, fs, nm), 0);
	ck_assert_int_eq(emg_env_new(&e, nm, (unsigned)lround(pc->rms_window_ms * 1e-3 * fs)), 0);
	for (uint64_t i = 0; i < n; i += 128) {
		unsigned b = n - i < 128 ? (unsigned)(n - i) : 128;
		emg_filter_run(f, y + i * nm, b);
		emg_env_run(e, y + i * nm, env + i * nm, b);
	}
	emg_filter_free(f);
	emg_env_free(e);
	free(y);
	return env;
}

START_TEST(test_rest_calibration)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	const uint64_t n = (uint64_t)(4 * FS), start = 3000, len = 2000;
	float *x = malloc(sizeof(float) * 6 * n), *env;
	const unsigned one = 1, blk = 250;
	double sum[6] = { 0 };

	for (uint64_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 6; c++)
			x[i * 6 + c] = (float)((c + 1) * 5.0 * test_rng_gauss(&rng));
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	env = reference_env(&pc, x, 6, n, FS);
	for (uint64_t i = start; i < start + len; i++)
		for (unsigned c = 0; c < 6; c++)
			sum[c] += env[i * 6 + c];

	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	feed(p, x, 6, 0, start, &blk, 1, 0, &r, FS);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 0.4), -EINVAL);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 121), -EINVAL);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, NAN), -EINVAL);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 1.0), 0);
	ck_assert_int_eq(emg_pipeline_calibrating(p), 1);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 1.0), -EBUSY);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 0, 1.0), -EBUSY);
	/* nothing until the 2000th sample, then one record per muscle at once */
	feed(p, x, 6, start, start + len - 1, &blk, 1, 0, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_CALIB), 0);
	ck_assert_int_eq(emg_pipeline_calibrating(p), 1);
	feed(p, x, 6, start + len - 1, start + len, &one, 1, 0, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_CALIB), 6);
	ck_assert_int_eq(emg_pipeline_calibrating(p), 0);
	for (unsigned c = 0, k = 0; k < r.n; k++) {
		struct emg_out *rec = rec_at(&r, k);
		if (rec->type != EMG_OUT_CALIB)
			continue;
		ck_assert_int_eq(rec->calib_kind, EMG_CALIB_REST);
		ck_assert_int_eq(rec->calib_err, 0);
		ck_assert_uint_eq(rec->muscle, c);
		ck_assert_int_eq(rec->baseline.method, EMG_ONSET_HODGES);
		ck_assert_double_gt(rec->baseline.rms, 0);
		ck_assert_double_gt(rec->baseline.mean, 0);
		ck_assert_double_gt(rec->baseline.sd, 0);
		ck_assert_float_eq_tol(rec->rest_rms, (float)(sum[c] / len), 1e-3f * rec->rest_rms);
		/* lane c carries (c+1) x 5 uV noise: the baselines scale with it */
		ck_assert_double_eq_tol(rec->baseline.rms, rec->rest_rms, 0.1 * rec->rest_rms);
		ck_assert_uint_eq(rec->arrival_ns, arrival(start + len - 1, FS));
		c++;
	}
	/* from then on the metrics say the baseline comes from the rest trial */
	feed(p, x, 6, start + len, n, &blk, 1, 0, &r, FS);
	{
		struct emg_out *last = rec_at(&r, r.n - 1);
		ck_assert_uint_eq(last->type, EMG_OUT_METRICS);
		for (unsigned c = 0; c < 6; c++) {
			ck_assert_uint_eq(last->m[c].baseline, EMG_BASELINE_REST);
			ck_assert_float_lt(last->m[c].level, 0.0f); /* still no MVC */
		}
	}
	/* a new calibration is possible again */
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 5, 0.5), 0);
	recs_free(&r);
	emg_pipeline_free(p);
	free(env);
	free(x);
	emg_muscles_free(map);
}
END_TEST

START_TEST(test_rest_calibration_flat)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	float *x = calloc(6 * 4000, sizeof(float));
	const unsigned blk = 128;

	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 1.0), 0);
	feed(p, x, 6, 0, 4000, &blk, 1, 0, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_CALIB), 6);
	for (size_t k = 0; k < r.n; k++)
		if (rec_at(&r, k)->type == EMG_OUT_CALIB)
			ck_assert_int_eq(rec_at(&r, k)->calib_err, -ENODATA);
	/* a disconnected electrode is no MVC either */
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 1, 1.0), 0);
	r.n = 0;
	feed(p, x, 6, 0, 4000, &blk, 1, 4000, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_CALIB), 1);
	for (size_t k = 0; k < r.n; k++)
		if (rec_at(&r, k)->type == EMG_OUT_CALIB) {
			ck_assert_int_eq(rec_at(&r, k)->calib_kind, EMG_CALIB_MVC);
			ck_assert_int_eq(rec_at(&r, k)->calib_err, -ENODATA);
			ck_assert_uint_eq(rec_at(&r, k)->muscle, 1);
		}
	ck_assert_float_lt(rec_at(&r, r.n - 1)->m[1].level, 0.0f);
	recs_free(&r);
	emg_pipeline_free(p);
	free(x);
	emg_muscles_free(map);
}
END_TEST

/* A muscle that contracts during the "rest" trial must not get that trial as its baseline. */
START_TEST(test_rest_calibration_refuses_active)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	const uint64_t n = (uint64_t)(5 * FS), cal_at = (uint64_t)(3 * FS);
	float *x = malloc(sizeof(float) * 6 * n);
	const unsigned blk = 100;
	unsigned seen = 0;

	for (uint64_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 6; c++) {
			/* channel 2 bursts to 20x its noise for 700 ms inside the trial
			 * (in the stream's start-up, where a burst is reported, and so
			 * active, once it has lasted startup_report_ms) */
			double a = (c == 2 && i >= cal_at + 400 && i < cal_at + 1800) ? 20.0 : 1.0;
			x[i * 6 + c] = (float)(5.0 * a * test_rng_gauss(&rng));
		}
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	feed(p, x, 6, 0, cal_at, &blk, 1, 0, &r, FS); /* auto baseline from quiet noise */
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 1.0), 0);
	feed(p, x, 6, cal_at, n, &blk, 1, 0, &r, FS);
	for (size_t k = 0; k < r.n; k++) {
		struct emg_out *rec = rec_at(&r, k);
		if (rec->type != EMG_OUT_CALIB)
			continue;
		seen++;
		ck_assert_int_eq(rec->calib_err, rec->muscle == 2 ? -EBUSY : 0);
	}
	ck_assert_uint_eq(seen, 6);
	recs_free(&r);
	emg_pipeline_free(p);
	emg_muscles_free(map);
	free(x);
}
END_TEST

START_TEST(test_mvc_calibration)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	const uint64_t n = (uint64_t)(6 * FS), start = 2000, len = 3000;
	float *x = malloc(sizeof(float) * 6 * n), *env, peak = 0;
	const unsigned blk = 100, odd = 333;
	uint64_t prev_tick_sample = 0;
	int above_one = 0;

	/* muscle 2: a contraction that swells during the trial and doubles afterwards */
	for (uint64_t i = 0; i < n; i++) {
		double a = 1.0;
		if (i >= start && i < start + len)
			a = 1.0 + 20.0 * sin(M_PI * (double)(i - start) / (double)len);
		else if (i >= start + len + 1000)
			a = 42.0;
		for (unsigned c = 0; c < 6; c++)
			x[i * 6 + c] = (float)((c == 2 ? a : 1.0) * 10.0 * test_rng_gauss(&rng));
	}
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	env = reference_env(&pc, x, 6, n, FS);
	for (uint64_t i = start; i < start + len; i++)
		if (env[i * 6 + 2] > peak)
			peak = env[i * 6 + 2];

	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	feed(p, x, 6, 0, start, &blk, 1, 0, &r, FS);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 6, 1.0), -EINVAL);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 2, 0.2), -EINVAL);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 2, 61), -EINVAL);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 2, 1.5), 0);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 2, 1.5), -EBUSY);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 1.5), -EBUSY);
	/* blocks of 333 frames: the trial ends inside one, between two ticks */
	feed(p, x, 6, start, n, &odd, 1, 0, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_CALIB), 1);
	for (size_t k = 0; k < r.n; k++) {
		struct emg_out *rec = rec_at(&r, k);
		if (rec->type == EMG_OUT_METRICS)
			prev_tick_sample = rec->sample;
		if (rec->type == EMG_OUT_CALIB) {
			/* emitted at the trial's last sample: after tick 4959, before tick 4999 */
			ck_assert_uint_eq(prev_tick_sample, start + len - 41);
			ck_assert_uint_eq(rec_at(&r, k + 1)->type, EMG_OUT_METRICS);
			ck_assert_uint_eq(rec_at(&r, k + 1)->sample, start + len - 1);
			ck_assert_int_eq(rec->calib_kind, EMG_CALIB_MVC);
			ck_assert_int_eq(rec->calib_err, 0);
			ck_assert_uint_eq(rec->muscle, 2);
			ck_assert_float_eq_tol(rec->mvc_rms, peak, 1e-4f * peak);
			/* block 2000 + 333 * 9 = 4997 .. 5329 produced it */
			ck_assert_uint_eq(rec->arrival_ns, arrival(start + 10 * odd - 1, FS));
			continue;
		}
		if (rec->type != EMG_OUT_METRICS)
			continue;
		for (unsigned c = 0; c < 6; c++) {
			/* the trial's last sample, 4999, is also a tick: it already has the MVC */
			if (c != 2 || rec->sample < start + len - 1) {
				ck_assert_float_lt(rec->m[c].level, 0.0f);
				continue;
			}
			/* level = rms / MVC peak, not clipped */
			ck_assert_float_eq_tol(rec->m[c].level, rec->m[c].rms / peak,
					       1e-4f * rec->m[c].level + 1e-6f);
			if (rec->m[c].level > 1.5f)
				above_one = 1;
		}
	}
	ck_assert(above_one);
	recs_free(&r);
	emg_pipeline_free(p);
	free(env);
	free(x);
	emg_muscles_free(map);
}
END_TEST

/* An MVC trial with the muscle at rest is refused (-ERANGE), with the peak and the rest level. */
START_TEST(test_mvc_refuses_rest)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	const uint64_t n = (uint64_t)(5 * FS), cal = 2000, mvc1 = 4500, mvc2 = 6600;
	float *x = malloc(sizeof(float) * 6 * n);
	const unsigned blk = 100;
	unsigned seen = 0;

	/* 10 uV noise; muscle 3 contracts (15x) only during the second trial */
	for (uint64_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 6; c++) {
			double a = c == 3 && i >= mvc2 + 300 && i < mvc2 + 1200 ? 15.0 : 1.0;
			x[i * 6 + c] = (float)(a * 10.0 * test_rng_gauss(&rng));
		}
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	feed(p, x, 6, 0, cal, &blk, 1, 0, &r, FS);
	ck_assert_int_eq(emg_pipeline_calibrate_rest(p, 1.0), 0);
	feed(p, x, 6, cal, mvc1, &blk, 1, 0, &r, FS);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 3, 1.0), 0);
	feed(p, x, 6, mvc1, mvc2, &blk, 1, 0, &r, FS);
	ck_assert_int_eq(emg_pipeline_calibrate_mvc(p, 3, 1.0), 0);
	feed(p, x, 6, mvc2, n, &blk, 1, 0, &r, FS);
	for (size_t k = 0; k < r.n; k++) {
		struct emg_out *rec = rec_at(&r, k);
		if (rec->type != EMG_OUT_CALIB || rec->calib_kind != EMG_CALIB_MVC)
			continue;
		ck_assert_uint_eq(rec->muscle, 3);
		/* the rest level it was checked against: the rest trial's ~6 uV after the band-pass */
		ck_assert_float_gt(rec->rest_rms, 4.0f);
		ck_assert_float_lt(rec->rest_rms, 9.0f);
		if (seen++ == 0) {
			ck_assert_int_eq(rec->calib_err, -ERANGE);
			ck_assert_float_lt(rec->mvc_rms, EMG_PIPELINE_MVC_MIN_RATIO * rec->rest_rms);
		} else {
			ck_assert_int_eq(rec->calib_err, 0);
			ck_assert_float_gt(rec->mvc_rms, 10.0f * rec->rest_rms);
		}
	}
	ck_assert_uint_eq(seen, 2);
	/* the refused trial left no MVC behind: levels exist only after the second */
	ck_assert_float_gt(rec_at(&r, r.n - 1)->m[3].level, 0.0f);
	recs_free(&r);
	emg_pipeline_free(p);
	emg_muscles_free(map);
	free(x);
}
END_TEST

/* A calibration table passed in at creation applies from the first tick. */
START_TEST(test_calib_from_table)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct emg_calib *cal;
	struct emg_baseline b = { .method = EMG_ONSET_HODGES, .mean = 5, .sd = 1, .var = 30, .rms = 6 };
	struct emg_baseline wrong = b;
	struct recs r;
	float *x = malloc(sizeof(float) * 6 * 400);
	const unsigned blk = 400;
	struct emg_out *rec;

	for (unsigned i = 0; i < 6 * 400; i++)
		x[i] = (float)(5.0 * test_rng_gauss(&rng));
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	ck_assert_int_eq(emg_calib_new(&cal, map), 0);
	emg_calib_add_mvc(cal, 1, 2.0f, 1);
	emg_calib_set_rest(cal, 3, &b, 5.0f, 1);
	wrong.method = EMG_ONSET_BONATO; /* saved for another detector: ignored */
	emg_calib_set_rest(cal, 4, &wrong, 5.0f, 1);
	emg_pipeline_config_default(&pc);
	p = make(&pc, FS, 6, map, cal);
	emg_calib_free(cal); /* the pipeline keeps its own copy */
	recs_init(&r, p);
	feed(p, x, 6, 0, 400, &blk, 1, 0, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_METRICS), 10);
	rec = rec_at(&r, 0);
	ck_assert_float_eq_tol(rec->m[1].level, rec->m[1].rms / 2.0f, 1e-6f);
	ck_assert_float_lt(rec->m[0].level, 0.0f);
	ck_assert_uint_eq(rec->m[3].baseline, EMG_BASELINE_REST);
	ck_assert_uint_ne(rec->m[4].baseline, EMG_BASELINE_REST);
	ck_assert_uint_ne(rec->m[0].baseline, EMG_BASELINE_REST);
	recs_free(&r);
	emg_pipeline_free(p);
	free(x);
	emg_muscles_free(map);
}
END_TEST

/* ---- events ---------------------------------------------------------- */

START_TEST(test_onset_timestamps)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	const uint64_t n = (uint64_t)(8 * FS), on = 7000, off = 11000, seq0 = 1000000;
	float *x = malloc(sizeof(float) * 6 * n);
	static const unsigned sizes[] = { 96, 13, 200 };
	unsigned onsets = 0, offsets = 0;

	for (uint64_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 6; c++)
			x[i * 6 + c] = (float)((c == 1 && i >= on && i < off ? 15.0 : 1.0) * 3.0 * test_rng_gauss(&rng));
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	feed(p, x, 6, 0, n, sizes, 3, seq0, &r, FS);
	for (size_t k = 0; k < r.n; k++) {
		struct emg_out *rec = rec_at(&r, k);
		uint64_t last, back;
		if (rec->type != EMG_OUT_ONSET && rec->type != EMG_OUT_OFFSET)
			continue;
		ck_assert_uint_eq(rec->muscle, 1);
		/* arrival_ns is the arrival of the block that produced it: find its last frame */
		last = (uint64_t)llround((double)(rec->arrival_ns - 1000 * SEC - 3000000ull) * FS / 1e9) - 1;
		ck_assert_uint_eq(arrival(last, FS), rec->arrival_ns);
		ck_assert_uint_ge(last, rec->sample);
		back = (uint64_t)((double)(last - rec->sample) * 1e9 / FS);
		ck_assert_uint_eq(rec->t_ns, rec->arrival_ns - back);
		/* and t_ns is the sample's own time (+3 ms latency) to within a nanosecond */
		ck_assert_uint_le(llabs((long long)(rec->t_ns - arrival(rec->sample, FS))), 2);
		if (rec->type == EMG_OUT_ONSET) {
			onsets++;
			ck_assert_uint_ge(rec->sample, seq0 + on - 40); /* within 20 ms */
			ck_assert_uint_le(rec->sample, seq0 + on + 40);
			ck_assert_float_gt(rec->snr_db, 15.0f);
		} else {
			offsets++;
			/* late by the ringing of the Q 30 mains notches after a loud
			 * broadband burst (~170 ms here; the raw detector is exact) */
			ck_assert_uint_ge(rec->sample, seq0 + off - 40);
			ck_assert_uint_le(rec->sample, seq0 + off + 500);
			ck_assert_float_eq_tol(rec->duration_s,
					       (double)(rec->sample - seq0 - on) / FS, 0.03);
		}
	}
	ck_assert_uint_eq(onsets, 1);
	ck_assert_uint_eq(offsets, 1);
	recs_free(&r);
	emg_pipeline_free(p);
	free(x);
	emg_muscles_free(map);
}
END_TEST

/* ---- channel map ----------------------------------------------------- */

START_TEST(test_channel_mapping)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	const uint64_t n = (uint64_t)(2 * FS);
	float *x = malloc(sizeof(float) * 8 * n);
	const unsigned blk = 256;
	struct emg_out *last;

	/* channel c (0-based) carries a 125 Hz sine of (c + 1) x 10 uV peak (not a mains harmonic) */
	for (uint64_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 8; c++)
			x[i * 8 + c] = (float)((c + 1) * 10.0 * sin(2 * M_PI * 125.0 * (double)i / FS));
	ck_assert_int_eq(emg_muscles_new(&map), 0);
	/* "channel 5" on the amplifier is index 4; the map order is not the channel order */
	ck_assert_int_eq(emg_muscles_add(map, "glute_max_l", 4, EMG_SIDE_LEFT, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(map, "glute_max_r", 7, EMG_SIDE_RIGHT, NULL), 0);
	ck_assert_int_eq(emg_muscles_add(map, "hip_flex_l", 0, EMG_SIDE_LEFT, NULL), 0);
	emg_pipeline_config_default(&pc);
	p = make(&pc, FS, 8, map, NULL);
	ck_assert_uint_eq(emg_pipeline_out_size(p),
			  sizeof(struct emg_out) + 3 * sizeof(struct emg_out_muscle));
	recs_init(&r, p);
	feed(p, x, 8, 0, n, &blk, 1, 0, &r, FS);
	last = rec_at(&r, r.n - 1);
	ck_assert_uint_eq(last->type, EMG_OUT_METRICS);
	ck_assert_uint_eq(last->nmuscles, 3);
	ck_assert_uint_eq(r.max_bytes, emg_pipeline_out_size(p));
	/* RMS of a sine = peak / sqrt 2; the band-pass passes 125 Hz nearly unchanged */
	ck_assert_float_eq_tol(last->m[0].rms, 50.0 / M_SQRT2, 0.05 * 50.0 / M_SQRT2);
	ck_assert_float_eq_tol(last->m[1].rms, 80.0 / M_SQRT2, 0.05 * 80.0 / M_SQRT2);
	ck_assert_float_eq_tol(last->m[2].rms, 10.0 / M_SQRT2, 0.05 * 10.0 / M_SQRT2);
	recs_free(&r);
	emg_pipeline_free(p);
	free(x);
	emg_muscles_free(map);
}
END_TEST

/*
 * A 300 ms burst of white noise 26 dB over the rest, 2 s into the stream (its
 * start-up): its power lies far over 70 Hz, so it is reported with the
 * default ECG stage; behind the ECG high-pass (ecg = both), or with
 * startup_emg_hz = 0, the start-up gate goes by length alone and drops it.
 */
START_TEST(test_startup_emg_rule)
{
	struct emg_muscles *map;
	struct emg_pipeline_config pc;
	struct emg_pipeline *p;
	struct recs r;
	const uint64_t n = (uint64_t)(4 * FS), on = (uint64_t)(2 * FS), off = on + (uint64_t)(0.3 * FS);
	float *x = malloc(sizeof(float) * 6 * n);
	const unsigned blk = 64;

	for (uint64_t i = 0; i < n; i++)
		for (unsigned c = 0; c < 6; c++)
			x[i * 6 + c] = (float)(5.0 * (c == 1 && i >= on && i < off ? 20.0 : 1.0) *
					       test_rng_gauss(&rng));
	ck_assert_int_eq(emg_muscles_new_default(&map), 0);
	emg_pipeline_config_default(&pc);
	if (_i == 1)
		pc.ecg.mode = EMG_ECG_BOTH;
	if (_i == 2)
		pc.onset.startup_emg_hz = 0;
	p = make(&pc, FS, 6, map, NULL);
	recs_init(&r, p);
	feed(p, x, 6, 0, n, &blk, 1, 0, &r, FS);
	ck_assert_uint_eq(count_type(&r, EMG_OUT_ONSET), _i == 0 ? 1 : 0);
	for (size_t k = 0; k < r.n; k++) {
		const struct emg_out *rec = rec_at(&r, k);
		if (rec->type == EMG_OUT_ONSET) {
			ck_assert_uint_eq(rec->muscle, 1);
			ck_assert_uint_le(rec->sample > on ? rec->sample - on : on - rec->sample,
					  (uint64_t)(0.01 * FS));
		}
	}
	recs_free(&r);
	emg_pipeline_free(p);
	emg_muscles_free(map);
	free(x);
}
END_TEST

static Suite *pipeline_suite(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("api");

	tcase_add_test(tc, test_new_invalid);
	tcase_add_test(tc, test_record_size_and_accessors);
	tcase_add_test(tc, test_channel_mapping);
	suite_add_tcase(s, tc);

	tc = tcase_create("ticks");
	tcase_set_timeout(tc, 100);
	tcase_add_test(tc, test_publish_rate_exact);
	tcase_add_loop_test(tc, test_block_split_invariance, 0, 3);
	tcase_add_test(tc, test_sequence_jump);
	tcase_add_test(tc, test_replug_offsets);
	tcase_add_test(tc, test_handover_publish_rate);
	suite_add_tcase(s, tc);

	tc = tcase_create("calib");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rest_calibration);
	tcase_add_test(tc, test_rest_calibration_flat);
	tcase_add_test(tc, test_rest_calibration_refuses_active);
	tcase_add_test(tc, test_mvc_calibration);
	tcase_add_test(tc, test_mvc_refuses_rest);
	tcase_add_test(tc, test_calib_from_table);
	tcase_add_test(tc, test_onset_timestamps);
	tcase_add_loop_test(tc, test_startup_emg_rule, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(pipeline_suite());
}
