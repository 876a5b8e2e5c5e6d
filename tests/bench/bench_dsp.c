/* SPDX-License-Identifier: MIT */
/*
 * bench_dsp: the DSP chain in ns per channel-sample, against liquid-dsp.
 *
 * Input: the synth's "session" scenario (sEMG bursts, 50 Hz hum, wander,
 * pops) with one muscle per channel, 8, 64 and 256 channels at 2 kHz.  The
 * data is processed the way the daemon's dsp thread sees it, in blocks of
 * 256 frames.  Each stage runs `reps` times over the same data from a fresh
 * state; a run is timed as a whole with the thread's CPU clock
 * (CLOCK_THREAD_CPUTIME_ID: time other processes take from the core is not
 * counted; on an idle machine it equals the wall clock).  The filter works
 * in place, so each block is first copied into a cache-resident buffer; a
 * run of the copies alone is timed the same way and subtracted.  The table
 * shows the best run and, in brackets, the median.
 *
 *   filter   emg_filter_run: the full band-pass + notch chain (11 biquads)
 *   liquid   liquid-dsp iirfilt_rrrf made with iirfilt_rrrf_create_sos()
 *            from the same float coefficients, one object per channel, each
 *            channel's samples contiguous (liquid's natural layout; the
 *            de-interleaving is not timed)
 *   env      emg_env_run: the 125 ms display RMS, as the pipeline runs it
 *   onset    emg_onset_run: hodges (the default), 25 ms envelope
 *   ecg      emg_ecg_run: ECG rejection as configured by default (or -e),
 *            on the band-passed data, block copies subtracted like the filter's
 *   chain    emg_pipeline_process: channel gather, band-pass + notch,
 *            display RMS, onset detection, %MVC and the metric records at
 *            50 Hz - everything the dsp thread does per block
 *
 * The outputs of emg_filter (with plain notches: the default's gate makes
 * them forget strong contractions, filter.c) and liquid are compared sample
 * by sample from the second second on (max abs difference, uV, and relative
 * to the largest output).
 *
 * Usage: bench_dsp [-r reps] [-s seconds] [-f rate] [-c channels]... [-L] [-e ecg-mode] [-R] [-S scenario]
 * (-L: leave liquid-dsp out, e.g. to profile emgd alone; -e: the ecg and chain
 * columns with [dsp] ecg = off | highpass | subtract | both instead of the default;
 * -R: the realistic synth, with heartbeats - the plain one has none, so its ecg
 * column is the stage's cost between beats; -S: another synth scenario, e.g.
 * -R -S rest, where the stage is locked on the heart and subtracts every beat)
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "ecg.h"
#include "devices/synth.h"
#include "envelope.h"
#include "filter.h"
#include "muscles.h"
#include "onset.h"
#include "pipeline.h"

#ifdef HAVE_LIQUID
#include <liquid/liquid.h>
#endif

#define BLOCK 256
#define MAXREPS 64

struct data {
	unsigned nch;
	size_t nf;
	double fs;
	float *raw;   /* nf x nch, interleaved */
	float *filt;  /* emg_filter output of the last run */
	struct emg_muscles *map;
};

struct stat {
	double v[MAXREPS]; /* ns per channel-sample */
	unsigned n;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double best(struct stat *s)
{
	double m = s->v[0];

	for (unsigned i = 1; i < s->n; i++)
		m = fmin(m, s->v[i]);
	return m;
}

static double median(struct stat *s)
{
	double t[MAXREPS];

	memcpy(t, s->v, s->n * sizeof(double));
	qsort(t, s->n, sizeof(double), cmp_dbl);
	return s->n % 2 ? t[s->n / 2] : 0.5 * (t[s->n / 2 - 1] + t[s->n / 2]);
}

static void *xmalloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) / 64 * 64);

	if (!p) {
		fprintf(stderr, "bench_dsp: out of memory\n");
		exit(2);
	}
	memset(p, 0, (n + 63) / 64 * 64);
	return p;
}

/* One muscle per channel, cycling through the synth's roles and both sides. */
static struct emg_muscles *make_map(unsigned nch)
{
	static const char *const roles[] = { "glute_max", "glute_med", "hip_flex", "hamstring",
					     "erector" };
	struct emg_muscles *m;
	char name[EMG_MUSCLE_NAME_MAX];

	if (emg_muscles_new(&m) < 0)
		exit(2);
	for (unsigned c = 0; c < nch; c++) {
		unsigned r = (c / 2) % 5, side = c % 2;
		snprintf(name, sizeof(name), "%s_%c_%03u", roles[r], side ? 'r' : 'l', c);
		if (emg_muscles_add(m, name, c, side ? EMG_SIDE_RIGHT : EMG_SIDE_LEFT, NULL) < 0) {
			fprintf(stderr, "bench_dsp: cannot map %u muscles (EMG_MUSCLES_MAX %d)\n", nch,
				EMG_MUSCLES_MAX);
			exit(2);
		}
	}
	return m;
}

/* -R: the realistic synth (heartbeats, ramps, cross-talk) instead of the plain one; -S: the scenario. */
static int realistic;
static const char *scenario = "session";

static void make_data(struct data *d, unsigned nch, double fs, double seconds)
{
	struct emg_device_config cfg;
	struct emg_synth *s;

	d->nch = nch;
	d->fs = fs;
	d->nf = (size_t)(seconds * fs) / BLOCK * BLOCK;
	d->map = make_map(nch);
	emg_device_config_default(&cfg);
	cfg.realtime = false;
	cfg.rate = fs;
	cfg.channels = nch;
	cfg.scenario = scenario;
	cfg.muscles = d->map;
	if (realistic)
		cfg.realism = EMG_SYNTH_REALISTIC;
	if (emg_synth_new(&s, &cfg) < 0) {
		fprintf(stderr, "bench_dsp: synth failed\n");
		exit(2);
	}
	d->raw = xmalloc(d->nf * nch * sizeof(float));
	d->filt = xmalloc(d->nf * nch * sizeof(float));
	for (size_t off = 0; off < d->nf; off += BLOCK)
		emg_synth_generate(s, d->raw + off * nch, BLOCK);
	emg_synth_free(s);
}

static void free_data(struct data *d)
{
	free(d->raw);
	free(d->filt);
	emg_muscles_free(d->map);
}

static double per_cs(const struct data *d, double ns)
{
	return ns / ((double)d->nf * d->nch);
}

/* ---- stages ---- */

/* The block copies alone (subtracted from the filter's time). */
static double run_copies(struct data *d, float *work)
{
	const size_t bs = (size_t)BLOCK * d->nch;
	volatile float sink = 0;
	double t0 = now_ns();

	for (size_t off = 0; off < d->nf; off += BLOCK) {
		memcpy(work, d->raw + off * d->nch, bs * sizeof(float));
		sink = work[off % bs];
	}
	(void)sink;
	return now_ns() - t0;
}

/* The default filter over the data, timed; `out` (or NULL) gets its output.
 * plain: the notches without their gate (linear, as liquid-dsp's). */
static double run_filter(struct data *d, float *work, float *out, int plain, double copy_ns)
{
	struct emg_filter_spec spec;
	struct emg_filter *f;
	const size_t bs = (size_t)BLOCK * d->nch;
	double t0;

	emg_filter_spec_default(&spec);
	spec.notch_gate = !plain;
	if (emg_filter_new(&f, &spec, d->fs, d->nch) < 0)
		exit(2);
	t0 = now_ns();
	for (size_t off = 0; off < d->nf; off += BLOCK) {
		memcpy(work, d->raw + off * d->nch, bs * sizeof(float));
		emg_filter_run(f, work, BLOCK);
		if (out)
			memcpy(out + off * d->nch, work, bs * sizeof(float));
	}
	double ns = now_ns() - t0 - copy_ns;
	emg_filter_free(f);
	return out ? 0 : per_cs(d, ns);
}

static double run_env(struct data *d, float *out)
{
	struct emg_env *e;
	double t0;

	if (emg_env_new(&e, d->nch, (unsigned)lround(0.125 * d->fs)) < 0)
		exit(2);
	t0 = now_ns();
	for (size_t off = 0; off < d->nf; off += BLOCK)
		emg_env_run(e, d->filt + off * d->nch, out, BLOCK);
	double ns = now_ns() - t0;
	emg_env_free(e);
	return per_cs(d, ns);
}

/* -e: the ECG mode of the ecg and chain columns (-1: the default). */
static int ecg_mode = -1;

static double run_ecg(struct data *d, float *work, double copy_ns)
{
	struct emg_ecg_params p;
	struct emg_ecg *e;
	const size_t bs = (size_t)BLOCK * d->nch;
	double t0;

	emg_ecg_params_default(&p);
	if (ecg_mode >= 0)
		p.mode = (enum emg_ecg_mode)ecg_mode;
	if (emg_ecg_new(&e, &p, d->fs, d->nch) < 0)
		exit(2);
	t0 = now_ns();
	for (size_t off = 0; off < d->nf; off += BLOCK) {
		memcpy(work, d->filt + off * d->nch, bs * sizeof(float));
		emg_ecg_run(e, work, BLOCK);
	}
	double ns = now_ns() - t0 - copy_ns;
	emg_ecg_free(e);
	return per_cs(d, ns);
}

static void count_event(void *ud, const struct emg_onset_event *ev)
{
	(*(unsigned long *)ud)++;
}

static double run_onset(struct data *d, enum emg_onset_method m, unsigned long *events)
{
	struct emg_onset_params p;
	struct emg_onset *o;
	double t0;

	emg_onset_params_default(&p);
	p.method = m;
	if (emg_onset_new(&o, &p, d->fs, d->nch) < 0)
		exit(2);
	*events = 0;
	t0 = now_ns();
	for (size_t off = 0; off < d->nf; off += BLOCK)
		emg_onset_run(o, d->filt + off * d->nch, BLOCK, off, count_event, events);
	double ns = now_ns() - t0;
	emg_onset_free(o);
	return per_cs(d, ns);
}

static void count_rec(void *ud, const struct emg_out *rec)
{
	unsigned long *n = ud;

	n[rec->type == EMG_OUT_METRICS ? 0 : 1]++;
}

static double run_chain(struct data *d, unsigned long recs[2])
{
	struct emg_pipeline_config pc;
	struct emg_device_info info = { .rate = d->fs, .channels = d->nch };
	struct emg_pipeline *p;
	double t0;

	emg_pipeline_config_default(&pc);
	if (ecg_mode >= 0)
		pc.ecg.mode = (enum emg_ecg_mode)ecg_mode;
	if (emg_pipeline_new(&p, &pc, &info, d->map, NULL) < 0)
		exit(2);
	recs[0] = recs[1] = 0;
	t0 = now_ns();
	for (size_t off = 0; off < d->nf; off += BLOCK)
		emg_pipeline_process(p, d->raw + off * d->nch, BLOCK, off, 0, count_rec, recs);
	double ns = now_ns() - t0;
	emg_pipeline_free(p);
	return per_cs(d, ns);
}

#ifdef HAVE_LIQUID
/* liquid-dsp on the same sections; out is channel-major like in. */
static double run_liquid(struct data *d, const float *in, float *out, float *hot_in, float *hot_out)
{
	struct emg_filter_spec spec;
	struct emg_filter *f;
	unsigned nsec;
	double ns = 0;

	emg_filter_spec_default(&spec);
	if (emg_filter_new(&f, &spec, d->fs, d->nch) < 0)
		exit(2);
	nsec = emg_filter_sections(f);
	float *B = xmalloc(3 * nsec * sizeof(float)), *A = xmalloc(3 * nsec * sizeof(float));
	for (unsigned s = 0; s < nsec; s++)
		emg_filter_section(f, s, B + 3 * s, A + 3 * s);
	emg_filter_free(f);
	iirfilt_rrrf *q = xmalloc(d->nch * sizeof(*q));
	for (unsigned c = 0; c < d->nch; c++)
		q[c] = iirfilt_rrrf_create_sos(B, A, nsec);
	for (int pass = 0; pass < 2; pass++) { /* 0: the copies alone, 1: with the filters */
		double t0 = now_ns();
		for (size_t off = 0; off < d->nf; off += BLOCK) {
			for (unsigned c = 0; c < d->nch; c++)
				memcpy(hot_in + (size_t)c * BLOCK, in + (size_t)c * d->nf + off,
				       BLOCK * sizeof(float));
			for (unsigned c = 0; pass && c < d->nch; c++)
				iirfilt_rrrf_execute_block(q[c], hot_in + (size_t)c * BLOCK, BLOCK,
							   hot_out + (size_t)c * BLOCK);
			for (unsigned c = 0; c < d->nch; c++)
				memcpy(out + (size_t)c * d->nf + off, hot_out + (size_t)c * BLOCK,
				       BLOCK * sizeof(float));
		}
		ns = pass ? ns + (now_ns() - t0) : -(now_ns() - t0);
	}
	for (unsigned c = 0; c < d->nch; c++)
		iirfilt_rrrf_destroy(q[c]);
	free(q);
	free(A);
	free(B);
	return per_cs(d, ns);
}
#endif

static void usage(void)
{
	fprintf(stderr, "usage: bench_dsp [-r reps] [-s seconds] [-f rate] [-c channels]... [-L] [-e ecg-mode] [-R] [-S scenario]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned chans[8] = { 8, 64, 256 }, nchans = 3, reps = 5, given = 0;
	int use_liquid = 1;
	double seconds = 16, fs = 2000;
	int opt;

	while ((opt = getopt(argc, argv, "r:s:f:c:Le:RS:")) != -1) {
		switch (opt) {
		case 'S':
			scenario = optarg;
			break;
		case 'R':
			realistic = 1;
			break;
		case 'e': {
			enum emg_ecg_mode m;
			if (emg_ecg_mode_parse(optarg, &m) < 0)
				usage();
			ecg_mode = (int)m;
			break;
		}
		case 'L':
			use_liquid = 0;
			break;
		case 'r':
			reps = (unsigned)atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'f':
			fs = atof(optarg);
			break;
		case 'c':
			if (given == 8)
				usage();
			chans[given++] = (unsigned)atoi(optarg);
			nchans = given;
			break;
		default:
			usage();
		}
	}
	if (reps < 1 || reps > MAXREPS || !(seconds > 1) || !(fs >= 250))
		usage();

	printf("DSP chain, ns per channel-sample (thread CPU time): %s synth \"%s\" at %g Hz, %g s per "
	       "run, blocks of %d frames, best of %u runs [median]\n", realistic ? "realistic" : "plain",
	       scenario, fs, seconds, BLOCK, reps);
	if (ecg_mode >= 0)
		printf("ecg and chain columns with [dsp] ecg = %s\n", emg_ecg_mode_name((enum emg_ecg_mode)ecg_mode));
#ifndef HAVE_LIQUID
	printf("note: liquid-dsp (libliquid-dev) not found at build time: comparator skipped\n");
	(void)use_liquid;
#endif
	printf("%5s | %-13s | %-13s | %6s | %-13s | %-13s | %-13s | %-13s | %s\n", "ch", "filter",
	       "liquid", "ratio", "ecg", "display RMS", "onset", "chain", "records (metrics/events)");
	double worst_chain = 0, worst_ratio = INFINITY;
	for (unsigned k = 0; k < nchans; k++) {
		struct data d;
		struct stat sf = { 0 }, sl = { 0 }, se = { 0 }, so = { 0 }, sc = { 0 }, sg = { 0 };
		unsigned long ev = 0, recs[2] = { 0, 0 };
		double maxdiff = 0, peak = 0;

		make_data(&d, chans[k], fs, seconds);
		float *work = xmalloc((size_t)BLOCK * d.nch * sizeof(float));
		float *work2 = xmalloc((size_t)BLOCK * d.nch * sizeof(float));
		for (unsigned r = 0; r < reps; r++) {
			double copy = run_copies(&d, work);
			sf.v[sf.n++] = run_filter(&d, work, NULL, 0, copy);
		}
		run_filter(&d, work, d.filt, 0, 0); /* the output, for the later stages */
#ifdef HAVE_LIQUID
		if (use_liquid) {
		float *cin = xmalloc(d.nf * d.nch * sizeof(float));
		float *cout = xmalloc(d.nf * d.nch * sizeof(float));
		/* compared with the same chain, linear: the gate makes the notches
		 * forget strong contractions, which liquid's do not (filter.c) */
		float *lin = xmalloc(d.nf * d.nch * sizeof(float));
		run_filter(&d, work, lin, 1, 0);
		for (size_t i = 0; i < d.nf; i++)
			for (unsigned c = 0; c < d.nch; c++)
				cin[(size_t)c * d.nf + i] = d.raw[i * d.nch + c];
		for (unsigned r = 0; r < reps; r++)
			sl.v[sl.n++] = run_liquid(&d, cin, cout, work, work2);
		/* from the second second: emg_filter takes each channel's first
		 * sample off as an electrode offset (filter.c, note_offset()) and
		 * liquid does not - their outputs differ by the step's ring */
		for (size_t i = (size_t)d.fs; i < d.nf; i++)
			for (unsigned c = 0; c < d.nch; c++) {
				double a = lin[i * d.nch + c], b = cout[(size_t)c * d.nf + i];
				maxdiff = fmax(maxdiff, fabs(a - b));
				peak = fmax(peak, fabs(b));
			}
		free(cin);
		free(cout);
		free(lin);
		}
#endif
		for (unsigned r = 0; r < reps; r++)
			sg.v[sg.n++] = run_ecg(&d, work, run_copies(&d, work));
		for (unsigned r = 0; r < reps; r++)
			se.v[se.n++] = run_env(&d, NULL);
		for (unsigned r = 0; r < reps; r++)
			so.v[so.n++] = run_onset(&d, EMG_ONSET_HODGES, &ev);
		for (unsigned r = 0; r < reps; r++)
			sc.v[sc.n++] = run_chain(&d, recs);

		char lq[32] = "skipped", ratio[16] = "-";
		if (sl.n) {
			snprintf(lq, sizeof(lq), "%5.2f [%5.2f]", best(&sl), median(&sl));
			snprintf(ratio, sizeof(ratio), "%5.1fx", best(&sl) / best(&sf));
			worst_ratio = fmin(worst_ratio, best(&sl) / best(&sf));
		}
		printf("%5u | %5.2f [%5.2f] | %-13s | %6s | %5.2f [%5.2f] | %5.2f [%5.2f] | %5.2f [%5.2f] | %5.2f [%5.2f] | %lu/%lu\n",
		       d.nch, best(&sf), median(&sf), lq, ratio, best(&sg), median(&sg), best(&se), median(&se), best(&so),
		       median(&so), best(&sc), median(&sc), recs[0], recs[1]);
		if (sl.n)
			printf("      emg_filter vs liquid: max |difference| %.3g uV (largest output %.3g uV, "
			       "relative %.2g); onset events %lu\n", maxdiff, peak, maxdiff / peak, ev);
		worst_chain = fmax(worst_chain, best(&sc));
		free(work);
		free(work2);
		free_data(&d);
	}
	printf("target: whole chain <= 2 ns per channel-sample: %s (worst %.2f ns)\n",
	       worst_chain <= 2.0 ? "met" : "NOT met", worst_chain);
	if (isfinite(worst_ratio))
		printf("target: filter >= 6x liquid-dsp: %s (worst %.1fx)\n",
		       worst_ratio >= 6.0 ? "met" : "NOT met", worst_ratio);
	return 0;
}
