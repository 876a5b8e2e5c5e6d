/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/synth.h"
#include "ecg.h"
#include "eval.h"
#include "filter.h"

#define CHUNK 1000

/* ---- noise ----------------------------------------------------------- */

void eval_rng_seed(struct eval_rng *g, uint64_t seed)
{
	g->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
	if (!g->s)
		g->s = 1;
	g->have = 0;
}

static double rng_u01(struct eval_rng *g)
{
	g->s ^= g->s << 13;
	g->s ^= g->s >> 7;
	g->s ^= g->s << 17;
	return ((double)(g->s >> 11) + 0.5) / 9007199254740992.0;
}

double eval_rng_gauss(struct eval_rng *g)
{
	double u, v;

	if (g->have) {
		g->have = 0;
		return g->spare;
	}
	u = rng_u01(g);
	v = rng_u01(g);
	g->spare = sqrt(-2 * log(u)) * sin(2 * M_PI * v);
	g->have = 1;
	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

double eval_rng_laplace(struct eval_rng *g)
{
	double u = rng_u01(g) - 0.5;

	/* unit variance: Laplace(b) has variance 2 b^2 */
	return -(u < 0 ? -1 : 1) * log(1 - 2 * fabs(u)) / M_SQRT2;
}

/* ---- recordings ------------------------------------------------------ */

void eval_rec_free(struct eval_rec *r)
{
	free(r->x);
	free(r->t);
	free(r->beats);
	emg_muscles_free(r->map);
	memset(r, 0, sizeof(*r));
}

int eval_synth(struct eval_rec *r, const struct emg_device_config *cfg, unsigned passes)
{
	struct emg_device_config c = *cfg;
	struct emg_synth *s;
	struct emg_truth *tt;
	const char *ex[32] = { 0 };
	uint64_t len;
	int err;

	memset(r, 0, sizeof(*r));
	if (c.muscles)
		err = emg_muscles_dup(c.muscles, &r->map);
	else
		err = emg_muscles_new_default(&r->map);
	if (err < 0)
		return err;
	c.muscles = r->map;
	c.realtime = false;
	if ((err = emg_synth_new(&s, &c)) < 0) {
		eval_rec_free(r);
		return err;
	}
	r->fs = emg_synth_rate(s);
	r->nch = emg_synth_channels(s);
	len = emg_synth_script_length(s);
	r->n = len * passes;
	r->x = malloc(sizeof(float) * r->n * r->nch);
	r->nt = emg_synth_truth(s, 0, r->n, NULL, 0);
	tt = malloc(sizeof(*tt) * (r->nt + 1));
	r->t = calloc(r->nt + 1, sizeof(*r->t));
	if (!r->x || !tt || !r->t) {
		free(tt);
		emg_synth_free(s);
		eval_rec_free(r);
		return -ENOMEM;
	}
	for (uint64_t done = 0; done < r->n; done += CHUNK) {
		unsigned k = r->n - done < CHUNK ? (unsigned)(r->n - done) : CHUNK;
		emg_synth_generate(s, r->x + done * r->nch, k);
	}
	emg_synth_truth(s, 0, r->n, tt, r->nt);
	for (size_t i = 0; i < r->nt; i++) {
		double noise_uv, mvc_uv;
		unsigned e = 0;
		while (e < 31 && ex[e] && ex[e] != tt[i].exercise)
			e++;
		ex[e] = tt[i].exercise;
		/* the EMG's RMS follows the activation: a stream's SNR is that of a
		 * 50 % MVC plateau, a 15 % MVC burst's ~10 dB below it */
		emg_synth_levels(s, tt[i].channel, &noise_uv, &mvc_uv);
		r->t[i] = (struct eval_truth){
			.ch = tt[i].channel,
			.onset = tt[i].onset,
			.alt = tt[i].onset_cross,
			.offset = tt[i].offset,
			.group = 1 + (unsigned)(tt[i].onset / len) * 100000 + e * 1000 + tt[i].rep,
			.snr_db = 20.0 * log10(tt[i].peak_mvc * mvc_uv / noise_uv),
		};
	}
	free(tt);
	r->nbeats = emg_synth_heartbeats(s, 0, r->n, NULL, 0);
	if (r->nbeats && (r->beats = malloc(sizeof(*r->beats) * r->nbeats)))
		emg_synth_heartbeats(s, 0, r->n, r->beats, r->nbeats);
	else
		r->nbeats = 0;
	emg_synth_free(s);
	return 0;
}

int eval_synth_session(struct eval_rec *r, enum emg_synth_realism realism, double snr_db,
		       uint64_t seed)
{
	struct emg_device_config c;

	emg_device_config_default(&c);
	c.realism = realism;
	c.scenario = "session";
	c.snr_db = snr_db;
	c.seed = seed;
	c.wander = c.pops = true;
	return eval_synth(r, &c, 2);
}

struct emgdet_hdr {
	char magic[8];
	uint32_t ntrials, nsamples, rate, onset_thr;
};

/* Open an emgdet file; *v2 (if not NULL): per-trial onsets and ends (emgdet-train.bin), else one onset for all. */
static int emgdet_open(const char *path, FILE **f, struct emgdet_hdr *h, int *v2)
{
	*f = fopen(path, "rb");
	if (!*f)
		return -errno;
	if (fread(h, sizeof(*h), 1, *f) != 1 ||
	    (memcmp(h->magic, "EMGDET1", 8) && memcmp(h->magic, "EMGDET2", 8)) || !h->nsamples ||
	    h->nsamples > 1000000 || !h->rate) {
		fclose(*f);
		return -EINVAL;
	}
	if (v2)
		*v2 = h->magic[6] == '2';
	return 0;
}

int eval_emgdet_count(const char *path)
{
	struct emgdet_hdr h;
	FILE *f;
	int err = emgdet_open(path, &f, &h, NULL);

	if (err < 0)
		return err;
	fclose(f);
	return (int)h.ntrials;
}

/* One recording's header in emggo.bin (tests/data/emggo/convert.py). */
struct real_hdr {
	char name[16];
	float rate;
	uint32_t nch, nsamples, nwin, nbeats;
};

int eval_real(struct eval_rec *r, const char *path, unsigned idx, char name[16])
{
	char magic[8];
	uint32_t nrec;
	struct real_hdr h;
	float *scale = NULL;
	uint32_t *win = NULL;
	int16_t *q = NULL;
	FILE *f = fopen(path, "rb");
	int err = -EINVAL;

	memset(r, 0, sizeof(*r));
	if (!f)
		return -errno;
	if (fread(magic, 8, 1, f) != 1 || memcmp(magic, "EMGREAL2", 8) || fread(&nrec, 4, 1, f) != 1 ||
	    idx >= nrec)
		goto out;
	for (unsigned k = 0; k <= idx; k++) {
		if (fread(&h, sizeof(h), 1, f) != 1 || !h.nch || h.nch > 64 || !h.nsamples ||
		    h.nsamples > 10000000 || h.nwin > 100000 || h.nbeats > 100000 || !(h.rate > 0))
			goto out;
		if (k < idx && fseek(f, (long)(4 * h.nch + 8 * h.nwin + 4 * h.nbeats +
					       2 * (size_t)h.nch * h.nsamples), SEEK_CUR))
			goto out;
	}
	err = -ENOMEM;
	scale = malloc(sizeof(float) * h.nch);
	win = malloc(sizeof(uint32_t) * 2 * (h.nwin + 1));
	q = malloc(sizeof(int16_t) * h.nch * (size_t)h.nsamples);
	r->x = malloc(sizeof(float) * h.nch * (size_t)h.nsamples);
	r->t = calloc((size_t)h.nwin * h.nch + 1, sizeof(*r->t));
	r->beats = calloc((size_t)h.nbeats + 1, sizeof(*r->beats));
	if (!scale || !win || !q || !r->x || !r->t || !r->beats || emg_muscles_new(&r->map) < 0)
		goto out;
	err = -EINVAL;
	if (fread(scale, 4, h.nch, f) != h.nch || fread(win, 8, h.nwin, f) != h.nwin)
		goto out;
	for (uint32_t b = 0; b < h.nbeats; b++) {
		uint32_t v;
		if (fread(&v, 4, 1, f) != 1 || v >= h.nsamples)
			goto out;
		r->beats[r->nbeats++] = v;
	}
	if (fread(q, 2 * (size_t)h.nch, h.nsamples, f) != h.nsamples)
		goto out;
	r->fs = h.rate;
	r->nch = h.nch;
	r->n = h.nsamples;
	for (size_t i = 0; i < (size_t)h.nch * h.nsamples; i++)
		r->x[i] = q[i] * scale[i % h.nch];
	for (unsigned c = 0; c < h.nch; c++) {
		char m[24];
		snprintf(m, sizeof(m), "ch%u", c);
		if (emg_muscles_add(r->map, m, c, EMG_SIDE_NONE, "") < 0)
			goto out;
	}
	for (uint32_t w = 0; w < h.nwin; w++) {
		if (win[2 * w] >= win[2 * w + 1] || win[2 * w + 1] > h.nsamples)
			goto out;
		for (unsigned c = 0; c < h.nch; c++)
			r->t[r->nt++] = (struct eval_truth){ .ch = c, .onset = win[2 * w], .alt = win[2 * w],
							     .offset = win[2 * w + 1], .snr_db = NAN };
	}
	if (name)
		memcpy(name, h.name, 16), name[15] = 0;
	err = 0;
out:
	if (err < 0)
		eval_rec_free(r);
	free(scale);
	free(win);
	free(q);
	fclose(f);
	return err;
}

/* One trial of an emgdet file: its clean samples and truths (end: UINT32_MAX when it has none). */
struct emgdet_trial {
	uint32_t n, rate;
	uint32_t first, thr, end;
	int16_t *q;
};

static unsigned emgdet_up = 1; /* eval_emgdet_upsample() */

int eval_emgdet_upsample(unsigned factor)
{
	if (factor < 1 || factor > 8)
		return -EINVAL;
	emgdet_up = factor;
	return 0;
}

#define UP_ZEROS 16 /* zero crossings of the interpolating sinc on each side */

/*
 * t at emgdet_up times its rate: each new sample a Blackman-windowed sinc
 * over the UP_ZEROS stored samples on each side (the stored ones pass
 * through exactly), indices scaled.  Negative errno.
 */
static int emgdet_upsample(struct emgdet_trial *t)
{
	const unsigned up = emgdet_up;
	const uint32_t n = t->n * up;
	int16_t *q = malloc(sizeof(*q) * n);

	if (!q)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const long c = (long)(i / up);
		const double frac = (double)(i % up) / up;
		double acc = 0;

		if (!frac) {
			q[i] = t->q[c];
			continue;
		}
		for (long k = c - UP_ZEROS + 1; k <= c + UP_ZEROS; k++) {
			if (k < 0 || k >= (long)t->n)
				continue;
			const double d = (double)(c - k) + frac, x = d / UP_ZEROS;
			const double w = 0.42 + 0.5 * cos(M_PI * x) + 0.08 * cos(2.0 * M_PI * x);

			acc += t->q[k] * sin(M_PI * d) / (M_PI * d) * w;
		}
		q[i] = (int16_t)lrint(acc > 32767 ? 32767 : acc < -32768 ? -32768 : acc);
	}
	free(t->q);
	t->q = q;
	t->n = n;
	t->rate *= up;
	t->first *= up;
	t->thr *= up;
	if (t->end != UINT32_MAX)
		t->end *= up;
	return 0;
}

/* Read trial `trial` of path into t (t->q is the caller's to free); negative errno. */
static int emgdet_read(const char *path, unsigned trial, struct emgdet_trial *t)
{
	struct emgdet_hdr h;
	float scale;
	FILE *f;
	int v2 = 0, err = emgdet_open(path, &f, &h, &v2);
	const size_t head = v2 ? 16 : 8;

	memset(t, 0, sizeof(*t));
	if (err < 0)
		return err;
	err = -EINVAL;
	t->end = UINT32_MAX;
	t->thr = h.onset_thr;
	if (trial >= h.ntrials)
		goto out;
	err = -ENOMEM;
	if (!(t->q = malloc(sizeof(*t->q) * h.nsamples)))
		goto out;
	err = -EINVAL;
	/* only the shape matters (the caller sets the level): the trial's scale is read past */
	if (fseek(f, (long)(sizeof(h) + (size_t)trial * (head + 2 * (size_t)h.nsamples)), SEEK_SET) ||
	    fread(&t->first, 4, 1, f) != 1 ||
	    (v2 && (fread(&t->thr, 4, 1, f) != 1 || fread(&t->end, 4, 1, f) != 1)) ||
	    fread(&scale, 4, 1, f) != 1 || fread(t->q, 2, h.nsamples, f) != h.nsamples ||
	    t->first >= h.nsamples || t->thr >= h.nsamples || t->first > t->thr ||
	    (t->end != UINT32_MAX && (t->end <= t->thr || t->end > h.nsamples)))
		goto out;
	t->n = h.nsamples;
	t->rate = h.rate;
	err = emgdet_up > 1 ? emgdet_upsample(t) : 0;
out:
	if (err < 0) {
		free(t->q);
		t->q = NULL;
	}
	fclose(f);
	return err;
}

/* Gain that brings t's contraction (authors' onset to its end) to burst_uv RMS. */
static double emgdet_gain(const struct emgdet_trial *t, double burst_uv)
{
	const uint32_t stop = t->end == UINT32_MAX ? t->n : t->end;
	double ss = 0;

	for (uint32_t i = t->thr; i < stop; i++)
		ss += (double)t->q[i] * t->q[i];
	return burst_uv / sqrt(ss / (double)(stop - t->thr));
}

/* A one-channel recording of n frames with room for nt truths, on a map of one muscle. */
static int emgdet_rec(struct eval_rec *r, double fs, uint64_t n, size_t nt)
{
	memset(r, 0, sizeof(*r));
	r->fs = fs;
	r->nch = 1;
	r->n = n;
	r->x = malloc(sizeof(float) * n);
	r->t = calloc(nt, sizeof(*r->t));
	if (!r->x || !r->t || emg_muscles_new(&r->map) < 0 ||
	    emg_muscles_add(r->map, "trial", 0, EMG_SIDE_NONE, "") < 0) {
		eval_rec_free(r);
		return -ENOMEM;
	}
	return 0;
}

/* The noise SD for snr_db under a burst of burst_uv RMS: sqrt(emgdet_up) more when upsampled, the same in the original band. */
static double emgdet_noise_sd(double burst_uv, double snr_db)
{
	return burst_uv * pow(10.0, -snr_db / 20.0) * sqrt((double)emgdet_up);
}

/* r's samples: clean[] plus white noise of SD sd (Laplacian or Gaussian) from seed, rounded once. */
static void add_noise(struct eval_rec *r, const double *clean, double sd, int laplace, uint64_t seed)
{
	struct eval_rng g;

	eval_rng_seed(&g, seed);
	for (uint64_t i = 0; i < r->n * r->nch; i++)
		r->x[i] = (float)(clean[i] + sd * (laplace ? eval_rng_laplace(&g) : eval_rng_gauss(&g)));
}

int eval_emgdet(struct eval_rec *r, const char *path, unsigned trial, double burst_uv,
		double snr_db, int laplace, uint64_t seed, double start_s)
{
	struct emgdet_trial t;
	uint64_t s0 = 0;
	int err = emgdet_read(path, trial, &t);

	memset(r, 0, sizeof(*r));
	if (err < 0)
		return err;
	if (start_s > 0) {
		double a = (double)t.thr - start_s * t.rate;
		s0 = a > 0 ? (uint64_t)a : 0;
	}
	/* the contraction's RMS sets the scale: burst_uv, and the noise from the SNR */
	const double gain = emgdet_gain(&t, burst_uv);
	double *clean = malloc(sizeof(double) * (t.n - s0));
	if (!clean)
		err = -ENOMEM;
	else if ((err = emgdet_rec(r, t.rate, t.n - s0, 1)) == 0) {
		for (uint64_t i = 0; i < r->n; i++)
			clean[i] = t.q[s0 + i] * gain;
		add_noise(r, clean, emgdet_noise_sd(burst_uv, snr_db), laplace, seed);
		r->t[0] = (struct eval_truth){ .ch = 0, .onset = t.first - s0, .alt = t.thr - s0,
					       .offset = t.end == UINT32_MAX ? UINT64_MAX : t.end - s0,
					       .snr_db = snr_db };
		r->nt = 1;
	}
	free(clean);
	free(t.q);
	return err;
}

/* A draw in [lo, hi] for contraction j of the stream from seed (salt: which draw). */
static double chain_draw(uint64_t seed, unsigned j, unsigned salt, double lo, double hi)
{
	const double u = (double)((seed * (7 + 6 * salt) + j * (37 + 16 * salt)) % 100) / 99.0;

	return lo + (hi - lo) * u;
}

int eval_emgdet_chain(struct eval_rec *r, const char *path, unsigned *trial, unsigned count,
		      const struct eval_chain *sh, double burst_uv, double snr_db, int laplace,
		      uint64_t seed)
{
	struct emgdet_trial t[EVAL_CHAIN_MAX];
	uint64_t from[EVAL_CHAIN_MAX], stop[EVAL_CHAIN_MAX], n = 0;
	double *clean = NULL;
	unsigned k = 0, got = 0;
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (!count || count > EVAL_CHAIN_MAX)
		return -EINVAL;
	/* the next `count` trials that end inside the file, each from its rest before */
	for (; got < count; (*trial)++) {
		if ((err = emgdet_read(path, *trial, &t[got])) < 0)
			goto out;
		k = got + 1;
		if (t[got].end == UINT32_MAX || (got && t[got].rate != t[0].rate)) {
			free(t[got].q);
			k = got;
			continue;
		}
		const double pre = got ? chain_draw(seed, got, 0, sh->rest_lo, sh->rest_hi) :
					 chain_draw(seed, got, 0, sh->first_lo, sh->first_hi);
		const double a = (double)t[got].first - pre * t[got].rate;
		from[got] = a > 0 ? (uint64_t)a : 0;
		/* cut short (the clean signal stops there, as set 2's own ends do) */
		stop[got] = t[got].end;
		if (sh->dur_hi > 0) {
			const double d = chain_draw(seed, got, 1, sh->dur_lo, sh->dur_hi) * t[got].rate;
			if (t[got].first + d < stop[got])
				stop[got] = t[got].first + (uint64_t)d;
		}
		n += stop[got] - from[got];
		got++;
	}
	/* and 1 s after the last, as far as its trial goes */
	const uint64_t tail = t[got - 1].n - stop[got - 1] < t[got - 1].rate ?
				      t[got - 1].n - stop[got - 1] : t[got - 1].rate;
	if (!(clean = malloc(sizeof(double) * (n + tail))))
		err = -ENOMEM;
	if (err < 0 || (err = emgdet_rec(r, t[0].rate, n + tail, count)) < 0)
		goto out;
	uint64_t at = 0;
	for (unsigned j = 0; j < got; j++) {
		const double gain = emgdet_gain(&t[j], burst_uv);
		const uint64_t len = stop[j] - from[j] + (j + 1 < got ? 0 : tail);
		for (uint64_t i = 0; i < len; i++) /* a cut contraction is silent after its cut */
			clean[at + i] = from[j] + i < stop[j] || stop[j] == t[j].end ?
						t[j].q[from[j] + i] * gain : 0.0;
		r->t[r->nt++] = (struct eval_truth){ .ch = 0, .onset = at + t[j].first - from[j],
						     .alt = at + t[j].thr - from[j],
						     .offset = at + stop[j] - from[j],
						     .snr_db = snr_db };
		at += len;
	}
	add_noise(r, clean, emgdet_noise_sd(burst_uv, snr_db), laplace, seed);
out:
	for (unsigned j = 0; j < k; j++)
		free(t[j].q);
	free(clean);
	return err;
}

/* r through the pipeline with cfg, or the offline reference with cfg NULL, into res; then free r. */
static int run_free(struct eval_rec *r, const struct emg_pipeline_config *cfg, struct eval_result *res)
{
	int err = cfg ? eval_run_online(r, cfg, res) : eval_run_offline(r, res);

	eval_rec_free(r);
	return err;
}

int eval_emgdet_chain_all(const char *path, double snr, int laplace,
			  const struct emg_pipeline_config *cfg, struct eval_result *res)
{
	const struct eval_chain sh = EVAL_CHAIN_SESSION;

	return eval_emgdet_chain_shape(path, snr, laplace, &sh, cfg, res);
}

int eval_emgdet_chain_shape(const char *path, double snr, int laplace, const struct eval_chain *sh,
			    const struct emg_pipeline_config *cfg, struct eval_result *res)
{
	unsigned trial = 0;
	int err;

	for (uint64_t k = 0;; k++) {
		struct eval_rec r;
		if ((err = eval_emgdet_chain(&r, path, &trial, EVAL_CHAIN_N, sh, 50.0, snr, laplace,
					     2000 + k)) < 0)
			return k ? 0 : err; /* no more trials with an end: done */
		if ((err = run_free(&r, cfg, res)) < 0)
			return err;
	}
}

int eval_noise(struct eval_rec *r, double fs, unsigned nch, double seconds, int laplace,
	       uint64_t seed)
{
	struct eval_rng g;

	memset(r, 0, sizeof(*r));
	r->fs = fs;
	r->nch = nch;
	r->n = (uint64_t)(seconds * fs);
	r->x = malloc(sizeof(float) * r->n * nch);
	r->t = calloc(1, sizeof(*r->t));
	if (!r->x || !r->t || emg_muscles_new(&r->map) < 0)
		goto fail;
	for (unsigned c = 0; c < nch; c++) {
		char name[16];
		snprintf(name, sizeof(name), "noise%u", c);
		if (emg_muscles_add(r->map, name, c, EMG_SIDE_NONE, "") < 0)
			goto fail;
	}
	eval_rng_seed(&g, seed);
	for (uint64_t i = 0; i < r->n * nch; i++)
		r->x[i] = (float)(10.0 * (laplace ? eval_rng_laplace(&g) : eval_rng_gauss(&g)));
	return 0;
fail:
	eval_rec_free(r);
	return -ENOMEM;
}

/* ---- scoring --------------------------------------------------------- */

struct det {
	unsigned ch;
	uint64_t at;
	uint64_t end; /* the burst's offset (UINT64_MAX: none reported) */
};

struct dets {
	size_t n, cap;
	struct det *d;
	double fs;
};

static int dets_add(struct dets *d, unsigned ch, uint64_t at)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct det *n = realloc(d->d, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		d->d = n;
		d->cap = cap;
	}
	d->d[d->n++] = (struct det){ ch, at, UINT64_MAX };
	return 0;
}

/* The offset `end` of the burst on ch that began at `at` (the latest such detection). */
static void dets_end(struct dets *d, unsigned ch, uint64_t at, uint64_t end)
{
	for (size_t j = d->n; j-- > 0;) {
		if (d->d[j].ch != ch)
			continue;
		if (d->d[j].at + 1 >= at && d->d[j].at <= at + 1)
			d->d[j].end = end;
		return; /* only the lane's latest burst can end */
	}
}

static int push(double **v, size_t *n, size_t *cap, double x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		double *nv = realloc(*v, c * sizeof(double));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

struct pair {
	double err;
	size_t t, d;
};

static int cmp_pair(const void *a, const void *b)
{
	double x = fabs(((const struct pair *)a)->err), y = fabs(((const struct pair *)b)->err);

	return x < y ? -1 : x > y;
}

/* Mark in busy[0..r->n) the samples from pre before each of r's bursts to post after its end. */
static void mark_activity(const struct eval_rec *r, uint8_t *busy, uint64_t pre, uint64_t post)
{
	for (size_t i = 0; i < r->nt; i++) {
		const struct eval_truth *t = &r->t[i];
		const uint64_t a = t->onset > pre ? t->onset - pre : 0;
		const uint64_t b = t->offset == UINT64_MAX || t->offset + post > r->n ? r->n : t->offset + post;

		memset(busy + a, 1, b > a ? b - a : 0);
	}
}

static int score(const struct eval_rec *r, const struct dets *d, struct eval_result *res)
{
	const double ms = 1000.0 / r->fs;
	size_t np = 0, cap = r->nt * 4 + 16;
	struct pair *p = malloc(sizeof(*p) * cap);
	long *tm = malloc(sizeof(long) * (r->nt + 1));
	char *dm = calloc(d->n + 1, 1);
	uint8_t *busy = calloc(r->n + 1, 1);
	const uint64_t pre = (uint64_t)(0.25 * r->fs), post = (uint64_t)(0.5 * r->fs);
	const uint64_t eligible = (uint64_t)(EVAL_ELIGIBLE_S * r->fs);
	uint64_t nrest = 0;
	int err = -ENOMEM;

	if (!p || !tm || !dm || !busy)
		goto out;
	mark_activity(r, busy, pre, post);
	for (size_t i = 0; i < r->nt; i++) {
		const struct eval_truth *t = &r->t[i];
		tm[i] = -1;
		for (size_t j = 0; j < d->n; j++) {
			double e = ((double)d->d[j].at - (double)t->onset) * ms;
			if (d->d[j].ch != t->ch || fabs(e) > EVAL_MATCH_MS)
				continue;
			if (np == cap) {
				struct pair *n = realloc(p, sizeof(*p) * cap * 2);
				if (!n)
					goto out;
				p = n;
				cap *= 2;
			}
			p[np++] = (struct pair){ e, i, j };
		}
	}
	qsort(p, np, sizeof(*p), cmp_pair);
	for (size_t k = 0; k < np; k++) {
		if (tm[p[k].t] >= 0 || dm[p[k].d])
			continue;
		tm[p[k].t] = (long)p[k].d;
		dm[p[k].d] = 1;
	}
	for (size_t i = 0; i < r->nt; i++) {
		const struct eval_truth *t = &r->t[i];
		if (tm[i] < 0) {
			if (t->onset >= eligible) {
				if (getenv("EVAL_PAIRS"))
					fprintf(stderr, "MISS ch %u onset %.3f\n", t->ch, t->onset / r->fs);
				res->bursts++;
				res->misses++;
			}
			continue;
		}
		if (t->onset >= eligible)
			res->bursts++;
		uint64_t at = d->d[tm[i]].at, end = d->d[tm[i]].end;
		if (getenv("EVAL_PAIRS"))
			fprintf(stderr, "PAIR ch %u onset %.3f alt %.1f err %.1f group %u\n", t->ch, t->onset / r->fs, ((double)t->alt - (double)t->onset) * ms, ((double)at - (double)t->onset) * ms, t->group);
		if (push(&res->err, &res->nerr, &res->caperr, ((double)at - (double)t->onset) * ms) <
		    0)
			goto out;
		if (end != UINT64_MAX && t->offset != UINT64_MAX &&
		    push(&res->err_off, &res->noff, &res->capoff,
			 ((double)end - (double)t->offset) * ms) < 0)
			goto out;
		if (push(&res->err_alt, &res->nalt, &res->capalt,
			 ((double)at - (double)t->alt) * ms) < 0)
			goto out;
		/* lag errors against the earlier bursts of the same group */
		for (size_t j = 0; j < i && t->group; j++) {
			const struct eval_truth *u = &r->t[j];
			if (u->group != t->group || u->ch == t->ch || tm[j] < 0)
				continue;
			double dl = ((double)at - (double)d->d[tm[j]].at) -
				    ((double)t->onset - (double)u->onset);
			if (push(&res->lag, &res->nlag, &res->caplag, dl * ms) < 0)
				goto out;
		}
	}
	for (uint64_t i = eligible; i < r->n; i++)
		nrest += !busy[i];
	res->rest_min += (double)nrest * r->nch / r->fs / 60.0;
	for (size_t j = 0; j < d->n; j++) {
		if (dm[j])
			continue;
		if (d->d[j].at >= eligible && d->d[j].at < r->n && !busy[d->d[j].at]) {
			res->fa_rest++;
			if (getenv("EVAL_PAIRS"))
				fprintf(stderr, "FA ch %u at %.3f end %.3f\n", d->d[j].ch, d->d[j].at / r->fs, d->d[j].end == UINT64_MAX ? -1.0 : d->d[j].end / r->fs);
		}
		else
			res->fa_other++;
	}
	err = 0;
out:
	free(p);
	free(tm);
	free(dm);
	free(busy);
	return err;
}

/* ---- the online path: the daemon's pipeline ----------------------------- */

static void on_rec(void *ud, const struct emg_out *rec)
{
	struct dets *d = ud;

	if (rec->type == EMG_OUT_ONSET)
		dets_add(d, rec->muscle, rec->sample);
	if (rec->type == EMG_OUT_OFFSET)
		dets_end(d, rec->muscle, rec->sample - (uint64_t)llround(rec->duration_s * d->fs),
			 rec->sample);
}

int eval_run_pipeline(const struct eval_rec *r, const struct emg_pipeline_config *cfg,
		      unsigned chunk, emg_out_fn fn, void *ud)
{
	struct emg_device_info info = { .rate = r->fs, .channels = r->nch,
					.phys_min_uv = -1e5, .phys_max_uv = 1e5 };
	struct emg_pipeline *p;
	int err;

	snprintf(info.driver, sizeof(info.driver), "eval");
	if ((err = emg_pipeline_new(&p, cfg, &info, r->map, NULL)) < 0)
		return err;
	for (uint64_t done = 0; done < r->n; done += chunk) {
		unsigned k = r->n - done < chunk ? (unsigned)(r->n - done) : chunk;
		emg_pipeline_process(p, r->x + done * r->nch, k, done, 0, fn, ud);
	}
	emg_pipeline_free(p);
	return 0;
}

/* The detections of r through the pipeline with cfg (NULL: defaults), into d. */
static int online_dets(const struct eval_rec *r, const struct emg_pipeline_config *cfg,
		       struct dets *d)
{
	struct emg_pipeline_config def;

	if (!cfg) {
		emg_pipeline_config_default(&def);
		cfg = &def;
	}
	return eval_run_pipeline(r, cfg, CHUNK, on_rec, d);
}

int eval_run_online(const struct eval_rec *r, const struct emg_pipeline_config *cfg,
		    struct eval_result *res)
{
	struct dets d = { .fs = r->fs };
	int err = online_dets(r, cfg, &d);

	if (err == 0)
		err = score(r, &d, res);
	free(d.d);
	return err;
}

int eval_run_online_by_snr(const struct eval_rec *r, const struct emg_pipeline_config *cfg,
			   const double *edge, unsigned nbins, struct eval_result *res)
{
	struct dets d = { .fs = r->fs };
	struct eval_rec sub = *r;
	int err = -ENOMEM;

	if (!(sub.t = malloc(sizeof(*sub.t) * (r->nt + 1))))
		return err;
	if ((err = online_dets(r, cfg, &d)) < 0)
		goto out;
	for (unsigned b = 0; b < nbins && err == 0; b++) {
		sub.nt = 0;
		for (size_t i = 0; i < r->nt; i++)
			if (r->t[i].snr_db >= edge[b] && r->t[i].snr_db < edge[b + 1])
				sub.t[sub.nt++] = r->t[i];
		/* the other bins' bursts are rest to this score: its false onsets mean nothing */
		const size_t fa_rest = res[b].fa_rest, fa_other = res[b].fa_other;
		const double rest_min = res[b].rest_min;
		err = score(&sub, &d, &res[b]);
		res[b].fa_rest = fa_rest;
		res[b].fa_other = fa_other;
		res[b].rest_min = rest_min;
	}
out:
	free(sub.t);
	free(d.d);
	return err;
}

int eval_ecg_beats(const struct eval_rec *r, enum emg_ecg_mode mode, struct eval_beats *b)
{
	struct emg_filter_spec fs;
	struct emg_ecg_params ep;
	struct emg_filter *f = NULL;
	struct emg_ecg *e = NULL;
	float *buf = malloc(sizeof(float) * CHUNK * r->nch);
	uint64_t *trig = NULL, beats = 0;
	size_t nt = 0, cap = 0;
	const uint64_t pre = (uint64_t)(EVAL_BEAT_PRE_MS * 1e-3 * r->fs);
	const uint64_t post = (uint64_t)(EVAL_BEAT_POST_MS * 1e-3 * r->fs);
	const uint64_t first = (uint64_t)r->fs, late = (uint64_t)(20 * r->fs);
	int err = -ENOMEM;

	emg_filter_spec_default(&fs);
	emg_ecg_params_default(&ep);
	ep.mode = mode;
	if (!buf || (err = emg_filter_new(&f, &fs, r->fs, r->nch)) < 0 ||
	    (err = emg_ecg_new(&e, &ep, r->fs, r->nch)) < 0)
		goto out;
	for (uint64_t done = 0; done < r->n; done += CHUNK) {
		unsigned k = r->n - done < CHUNK ? (unsigned)(r->n - done) : CHUNK;
		uint64_t age;

		memcpy(buf, r->x + done * r->nch, sizeof(float) * k * r->nch);
		emg_filter_run(f, buf, k);
		/* a frame at a time: the stage takes a trigger back (a burst on
		 * several lanes) 120 ms after it, and so does this list */
		for (unsigned j = 0; j < k; j++) {
			emg_ecg_run(e, buf + (size_t)j * r->nch, 1);
			if (emg_ecg_beats(e) < beats && nt > 0)
				nt--;
			else if (emg_ecg_beats(e) > beats && emg_ecg_last_beat(e, &age)) {
				if (nt == cap) {
					uint64_t *t = realloc(trig, sizeof(*t) * (cap = cap ? 2 * cap : 256));
					if (!t) {
						err = -ENOMEM;
						goto out;
					}
					trig = t;
				}
				trig[nt++] = done + j + 1 - age;
			}
			beats = emg_ecg_beats(e);
		}
	}
	/* Both lists are sorted and beats are ~0.6 s apart: a greedy one-to-one match. */
	{
		size_t j = 0, matched = 0;

		for (size_t i = 0; i < r->nbeats; i++) {
			uint64_t rp = r->beats[i];
			int hit = 0;

			while (j < nt && trig[j] + pre < rp)
				j++;
			if (j < nt && trig[j] <= rp + post) {
				hit = 1;
				matched++;
				if (rp >= first) {
					const double d = ((double)trig[j] - (double)rp) * 1000.0 / r->fs;
					b->lag_sum += d;
					b->lag_sum2 += d * d;
				}
				j++;
			}
			if (rp < first)
				continue;
			b->truth++;
			b->found += (size_t)hit;
			if (rp >= late) {
				b->late++;
				b->late_found += (size_t)hit;
			}
		}
		b->extra += nt - matched;
	}
	err = 0;
out:
	emg_ecg_free(e);
	emg_filter_free(f);
	free(buf);
	free(trig);
	return err;
}

/* ---- the offline reference -------------------------------------------- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Power of channel c at hz over the whole recording (Goertzel), per sample. */
static double tone_power(const struct eval_rec *r, unsigned c, double hz)
{
	const double w = 2 * cos(2 * M_PI * hz / r->fs);
	double s1 = 0, s2 = 0;

	for (uint64_t i = 0; i < r->n; i++) {
		double s0 = r->x[i * r->nch + c] + w * s1 - s2;
		s2 = s1;
		s1 = s0;
	}
	return (s1 * s1 + s2 * s2 - w * s1 * s2) / ((double)r->n * (double)r->n);
}

/*
 * Whether the recording has mains hum, as an analyst would judge it from the
 * spectrum: power at the mains frequency 10 dB over its neighbours' on any
 * channel.  Offline tools notch only then: a zero-phase Q 30 notch rings
 * ~0.2 s both ways, ahead of every onset, which at high SNR sets the
 * threshold's false crossings (it did: 96/99 external trials missed at 40 dB).
 */
static bool has_hum(const struct eval_rec *r, double mains_hz)
{
	static const double side[] = { -7, -4, 4, 7 };

	if (!(mains_hz > 0) || mains_hz + 7 >= r->fs / 2)
		return false;
	for (unsigned c = 0; c < r->nch; c++) {
		double ref = 0;
		for (unsigned k = 0; k < 4; k++)
			ref += tone_power(r, c, mains_hz + side[k]) / 4;
		if (tone_power(r, c, mains_hz) > 10 * ref)
			return true;
	}
	return false;
}

/* Zero-phase band-pass (and notch, where the recording has hum) + centred RMS
 * + whole-recording Hodges threshold. */
/* The offline reference's detections of r, into d. */
static int offline_dets(const struct eval_rec *r, struct dets *d)
{
	struct emg_filter_spec spec;
	struct emg_filter *f;
	const unsigned nch = r->nch;
	const uint64_t n = r->n;
	const unsigned W = (unsigned)lround(0.025 * r->fs), hold = W, gap = (unsigned)lround(0.05 * r->fs);
	const unsigned minb = (unsigned)lround(0.03 * r->fs);
	const uint64_t eligible = (uint64_t)(EVAL_ELIGIBLE_S * r->fs);
	float *x = malloc(sizeof(float) * n * nch);
	double *env = malloc(sizeof(double) * n);
	int err = -ENOMEM;

	if (!x || !env)
		goto out;
	memcpy(x, r->x, sizeof(float) * n * nch);
	emg_filter_spec_default(&spec);
	spec.mains_hz = has_hum(r, 50) ? 50 : 0;
	spec.notch_gate = 0; /* offline tools notch linearly, forward and back */
	if ((err = emg_filter_new(&f, &spec, r->fs, nch)) < 0)
		goto out;
	emg_filter_run(f, x, (unsigned)n); /* forward ... */
	for (uint64_t i = 0; i < n / 2; i++)
		for (unsigned c = 0; c < nch; c++) {
			float t = x[i * nch + c];
			x[i * nch + c] = x[(n - 1 - i) * nch + c];
			x[(n - 1 - i) * nch + c] = t;
		}
	emg_filter_reset(f);
	emg_filter_run(f, x, (unsigned)n); /* ... and backward: zero phase */
	emg_filter_free(f);
	for (unsigned c = 0; c < nch; c++) {
		double s = 0, m = 0, v = 0, th, cnt = 0;
		/* centred moving RMS, time order restored by indexing from the end */
		for (uint64_t i = 0; i < n; i++) {
			double a = x[(n - 1 - i) * nch + c];
			s += a * a;
			if (i >= W) {
				double o = x[(n - 1 - (i - W)) * nch + c];
				s -= o * o;
			}
			uint64_t ctr = i >= W / 2 ? i - W / 2 : 0;
			env[ctr] = sqrt((s > 0 ? s : 0) / (i + 1 < W ? i + 1 : W));
		}
		for (uint64_t i = n - W / 2; i < n; i++)
			env[i] = env[n - W / 2 - 1];
		/* the threshold from a rest window the analyst marks: the stream's first 0.5 s */
		for (uint64_t i = W; i < eligible && i < n; i++) {
			m += env[i];
			v += env[i] * env[i];
			cnt += 1;
		}
		if (cnt < 2)
			continue;
		m /= cnt;
		v = v / cnt - m * m;
		th = m + 3 * sqrt(v > 0 ? v : 0);
		/* runs over threshold held `hold`, merged across gaps < 50 ms, >= 30 ms */
		uint64_t run = 0, start = 0, last_end = 0, bstart = UINT64_MAX;
		for (uint64_t i = 0; i <= n; i++) {
			int on = i < n && env[i] > th;
			if (on) {
				if (!run)
					start = i;
				run++;
				continue;
			}
			if (run >= hold) {
				if (bstart != UINT64_MAX && start - last_end < gap) {
					last_end = i; /* continue the burst */
				} else {
					if (bstart != UINT64_MAX && last_end - bstart >= minb &&
					    dets_add(d, c, bstart) == 0)
						dets_end(d, c, bstart, last_end);
					bstart = start;
					last_end = i;
				}
			}
			run = 0;
		}
		if (bstart != UINT64_MAX && last_end - bstart >= minb && last_end < n &&
		    dets_add(d, c, bstart) == 0)
			dets_end(d, c, bstart, last_end);
		else if (bstart != UINT64_MAX && last_end - bstart >= minb)
			dets_add(d, c, bstart); /* runs to the end: no offset */
	}
	err = 0;
out:
	free(x);
	free(env);
	return err;
}

int eval_run_offline(const struct eval_rec *r, struct eval_result *res)
{
	struct dets d = { .fs = r->fs };
	int err = offline_dets(r, &d);

	if (err == 0)
		err = score(r, &d, res);
	free(d.d);
	return err;
}

/*
 * Score detections d against r's activity windows (eval_real()): a window is
 * found by a detection from EVAL_WIN_PRE_S before its marked start to its end;
 * detections farther than that from every window are false onsets in rest.
 */
static int score_windows(const struct eval_rec *r, const struct dets *d, struct eval_windows *res)
{
	const uint64_t pre = (uint64_t)(EVAL_WIN_PRE_S * r->fs);
	const uint64_t eligible = (uint64_t)(EVAL_ELIGIBLE_S * r->fs);
	uint8_t *busy = calloc(r->n + 1, 1);
	uint64_t nrest = 0;

	if (!busy)
		return -ENOMEM;
	mark_activity(r, busy, pre, pre);
	for (size_t i = 0; i < r->nt; i++) {
		const struct eval_truth *t = &r->t[i];
		double best = INFINITY;

		for (size_t j = 0; j < d->n; j++) {
			const double e = ((double)d->d[j].at - (double)t->onset) * 1000.0 / r->fs;
			if (d->d[j].ch == t->ch && d->d[j].at + pre >= t->onset && d->d[j].at < t->offset &&
			    fabs(e) < fabs(best))
				best = e;
		}
		res->bursts++;
		if (best == INFINITY)
			continue;
		res->found++;
		if (push(&res->agree, &res->nagree, &res->capagree, best) < 0) {
			free(busy);
			return -ENOMEM;
		}
	}
	for (size_t j = 0; j < d->n; j++)
		res->fa += d->d[j].at >= eligible && d->d[j].at < r->n && !busy[d->d[j].at];
	for (uint64_t i = eligible; i < r->n; i++)
		nrest += !busy[i];
	res->rest_min += (double)nrest * r->nch / r->fs / 60.0;
	free(busy);
	return 0;
}

int eval_run_windows(const struct eval_rec *r, const struct emg_pipeline_config *cfg, int offline,
		     struct eval_windows *res)
{
	struct dets d = { .fs = r->fs };
	int err = offline ? offline_dets(r, &d) : online_dets(r, cfg, &d);

	if (err == 0)
		err = score_windows(r, &d, res);
	free(d.d);
	return err;
}

/* Frames [a, b) of r as a stream of its own, with truth t (NULL: none), into res. */
static int cold_run(const struct eval_rec *r, const struct emg_pipeline_config *cfg, uint64_t a,
		    uint64_t b, const struct eval_truth *t, struct eval_windows *res)
{
	struct eval_rec q = *r;
	struct eval_truth tq;

	q.x = r->x + (size_t)a * r->nch;
	q.n = b - a;
	q.t = NULL;
	q.nt = 0;
	q.beats = NULL;
	q.nbeats = 0;
	if (t) {
		tq = *t;
		tq.onset -= a;
		tq.alt -= a;
		tq.offset = tq.offset < b ? tq.offset - a : q.n;
		q.t = &tq;
		q.nt = 1;
	}
	return eval_run_windows(&q, cfg, 0, res);
}

int eval_run_cold(const struct eval_rec *r, const struct emg_pipeline_config *cfg, double seg_s,
		  struct eval_windows *res)
{
	const uint64_t pre = (uint64_t)(EVAL_WIN_PRE_S * r->fs), len = (uint64_t)(seg_s * r->fs);
	int err = 0;

	for (size_t i = 0; i < r->nt && err == 0; i++) {
		const uint64_t rest0 = i ? r->t[i - 1].offset + pre : 0;
		const uint64_t next = i + 1 < r->nt ? r->t[i + 1].onset - pre : r->n;
		const uint64_t lead = (uint64_t)((EVAL_COLD_LEAD_S + 0.25 * (double)(i % EVAL_COLD_LEADS)) * r->fs);
		const uint64_t on = r->t[i].onset;

		/* rest before window i, in whole segments */
		for (uint64_t a = rest0; err == 0 && a + len + pre <= on; a += len)
			err = cold_run(r, cfg, a, a + len, NULL, res);
		/* window i, entered from rest */
		if (err == 0 && on >= rest0 + lead && next > on)
			err = cold_run(r, cfg, on - lead, on - lead + len < next ? on - lead + len : next,
				       &r->t[i], res);
	}
	return err;
}

void eval_windows_free(struct eval_windows *res)
{
	free(res->agree);
	memset(res, 0, sizeof(*res));
}

/* ---- summaries --------------------------------------------------------- */

static double quantile(const double *sorted, size_t n, double q)
{
	double pos;
	size_t i;

	if (n == 0)
		return NAN;
	pos = q * (double)(n - 1);
	i = (size_t)pos;
	if (i + 1 >= n)
		return sorted[n - 1];
	return sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]);
}

/* Median and p90 of |v|, and the mean of v. */
static void stats(const double *v, size_t n, double *med, double *p90, double *mean)
{
	double *a = malloc(sizeof(double) * (n + 1)), s = 0;

	for (size_t i = 0; i < n; i++) {
		a[i] = fabs(v[i]);
		s += v[i];
	}
	qsort(a, n, sizeof(double), cmp_dbl);
	*med = quantile(a, n, 0.5);
	if (p90)
		*p90 = quantile(a, n, 0.9);
	if (mean)
		*mean = n ? s / (double)n : NAN;
	free(a);
}

void eval_summarise(const struct eval_result *res, struct eval_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->matched = res->nerr;
	stats(res->err, res->nerr, &s->median_abs, &s->p90_abs, &s->mean);
	stats(res->err_alt, res->nalt, &s->median_abs_alt, NULL, &s->mean_alt);
	stats(res->err_off, res->noff, &s->median_abs_off, &s->p90_abs_off, &s->mean_off);
	s->offsets = res->noff;
	if (res->nlag) {
		stats(res->lag, res->nlag, &(double){ 0 }, &s->lag_p90, NULL);
	} else if (res->nerr >= 2) {
		/* single-muscle recordings: lag between consecutive trials as two muscles */
		double *l = malloc(sizeof(double) * res->nerr);
		size_t k = 0;
		for (size_t i = 0; l && i + 1 < res->nerr; i += 2)
			l[k++] = res->err[i + 1] - res->err[i];
		if (l)
			stats(l, k, &(double){ 0 }, &s->lag_p90, NULL);
		free(l);
	} else {
		s->lag_p90 = NAN;
	}
	s->miss_pct = res->bursts ? 100.0 * (double)res->misses / (double)res->bursts : NAN;
	s->fa_per_min = res->rest_min > 0 ? (double)res->fa_rest / res->rest_min : NAN;
}

void eval_result_free(struct eval_result *res)
{
	free(res->err);
	free(res->err_alt);
	free(res->lag);
	free(res->err_off);
	memset(res, 0, sizeof(*res));
}

/* ---- tables ------------------------------------------------------------- */

void eval_print_header(FILE *f)
{
	fprintf(f, "%-12s %4s %-8s %7s %7s %7s %8s %11s %7s %7s\n", "source", "SNR", "detector",
		"med|e|", "mean e", "p90|e|", "med|alt|", "miss/n", "FA/min", "lag p90");
}

void eval_print_row(FILE *f, const char *src, double snr, const char *det,
		    const struct eval_result *res)
{
	struct eval_summary s;

	eval_summarise(res, &s);
	fprintf(f, "%-12s %4.0f %-8s %7.1f %+7.1f %7.1f %8.1f %5zu/%-5zu %7.2f %7.1f\n", src, snr,
		det, s.median_abs, s.mean, s.p90_abs, s.median_abs_alt, res->misses, res->bursts,
		s.fa_per_min, s.lag_p90);
}

void eval_print_windows_header(FILE *f)
{
	fprintf(f, "%-12s %-24s %9s %7s %7s %7s %7s\n", "recording", "detector", "found/n", "FA/min",
		"med|d|", "mean d", "p90|d|");
}

void eval_print_windows_row(FILE *f, const char *rec, const char *det, const struct eval_windows *res)
{
	double med = NAN, p90 = NAN, mean = NAN;

	stats(res->agree, res->nagree, &med, &p90, &mean);
	fprintf(f, "%-12s %-24s %4zu/%-4zu %7.2f %7.1f %+7.1f %7.1f\n", rec, det, res->found, res->bursts,
		res->rest_min > 0 ? (double)res->fa / res->rest_min : NAN, med, mean, p90);
}

void eval_print_offset_header(FILE *f)
{
	fprintf(f, "%-12s %4s %-8s %9s %9s %9s %9s\n", "source", "SNR", "detector", "med|e|",
		"mean e", "p90|e|", "offsets");
}

void eval_print_offset_row(FILE *f, const char *src, double snr, const char *det,
			   const struct eval_result *res)
{
	struct eval_summary s;

	eval_summarise(res, &s);
	fprintf(f, "%-12s %4.0f %-8s %9.1f %+9.1f %9.1f %9zu\n", src, snr, det, s.median_abs_off,
		s.mean_off, s.p90_abs_off, s.offsets);
}

int eval_emgdet_all(const char *path, double snr, int laplace,
		    const struct emg_pipeline_config *cfg, struct eval_result *res)
{
	const struct eval_artefacts none = { 0 };

	return eval_emgdet_art_all(path, snr, laplace, &none, cfg, res);
}

int eval_emgdet_art_all(const char *path, double snr, int laplace, const struct eval_artefacts *a,
			const struct emg_pipeline_config *cfg, struct eval_result *res)
{
	const double burst_uv = 50.0; /* the contraction's RMS, which the hum is relative to */
	int n = eval_emgdet_count(path), err;

	if (n <= 0)
		return n < 0 ? n : -ENODATA;
	for (int t = 0; t < n; t++) {
		struct eval_rec r;
		/* streams start 0.5-8 s before the onset, spread evenly over the trials */
		double start = 0.5 + 7.5 * (double)((t * 37) % 100) / 100.0;
		if ((err = eval_emgdet(&r, path, (unsigned)t, burst_uv, snr, laplace,
				       1000 + (uint64_t)t, start)) < 0)
			return err;
		/* offsets from -1 to +1 times offset_uv over the trials, not in trial order */
		const double offset = a->offset_uv * (2.0 * (double)((t * 61) % 100) / 99.0 - 1.0);
		for (uint64_t i = 0; (offset != 0 || a->hum_hz > 0) && i < r.n; i++)
			r.x[i] += (float)(offset + (a->hum_hz > 0 ? burst_uv * a->hum_rel * M_SQRT2 *
					  sin(2.0 * M_PI * a->hum_hz * (double)i / r.fs + t) : 0.0));
		if ((err = run_free(&r, cfg, res)) < 0)
			return err;
	}
	return 0;
}

int eval_stage_rms(const struct eval_rec *r, enum emg_ecg_mode mode, double skip_s, double *rms)
{
	struct emg_filter_spec fs;
	struct emg_ecg_params ep;
	struct emg_filter *f = NULL;
	struct emg_ecg *e = NULL;
	float *buf = malloc(sizeof(float) * 128 * r->nch);
	uint8_t *busy = calloc(r->n + 1, 1);
	const uint64_t skip = (uint64_t)(skip_s * r->fs), pad = (uint64_t)(EVAL_WIN_PRE_S * r->fs);
	uint64_t n = 0;
	int err = -ENOMEM;

	emg_filter_spec_default(&fs);
	emg_ecg_params_default(&ep);
	ep.mode = mode;
	if (!buf || !busy || skip >= r->n || (err = emg_filter_new(&f, &fs, r->fs, r->nch)) < 0 ||
	    (mode != EMG_ECG_OFF && (err = emg_ecg_new(&e, &ep, r->fs, r->nch)) < 0))
		goto out;
	mark_activity(r, busy, pad, pad);
	for (unsigned c = 0; c < r->nch; c++)
		rms[c] = 0;
	for (uint64_t done = 0; done < r->n; done += 128) {
		unsigned k = r->n - done < 128 ? (unsigned)(r->n - done) : 128;
		memcpy(buf, r->x + done * r->nch, sizeof(float) * k * r->nch);
		emg_filter_run(f, buf, k);
		if (e)
			emg_ecg_run(e, buf, k);
		for (unsigned j = 0; j < k; j++) {
			if (done + j < skip || busy[done + j])
				continue;
			for (unsigned c = 0; c < r->nch; c++)
				rms[c] += (double)buf[j * r->nch + c] * buf[j * r->nch + c];
			n++;
		}
	}
	for (unsigned c = 0; c < r->nch; c++)
		rms[c] = n ? sqrt(rms[c] / (double)n) : 0;
	err = 0;
out:
	emg_ecg_free(e);
	emg_filter_free(f);
	free(buf);
	free(busy);
	return err;
}

/* Sums of the published envelope^2 per muscle, from `from` on. */
struct env_acc {
	uint64_t from;
	unsigned nm;
	double sum[EMG_MUSCLES_MAX];
	uint64_t n;
};

static void on_env(void *ud, const struct emg_out *rec)
{
	struct env_acc *a = ud;

	if (rec->type != EMG_OUT_METRICS || rec->sample < a->from)
		return;
	for (unsigned i = 0; i < a->nm; i++)
		a->sum[i] += (double)rec->m[i].rms * rec->m[i].rms;
	a->n++;
}

int eval_env_rms(const struct eval_rec *r, enum emg_ecg_mode mode, double skip_s, unsigned chunk, double *rms)
{
	struct emg_pipeline_config cfg;
	struct env_acc a = { .from = (uint64_t)(skip_s * r->fs), .nm = emg_muscles_count(r->map) };
	int err;

	if (chunk == 0 || a.from >= r->n)
		return -EINVAL;
	emg_pipeline_config_default(&cfg);
	cfg.ecg.mode = mode;
	if ((err = eval_run_pipeline(r, &cfg, chunk, on_env, &a)) < 0)
		return err;
	if (a.n == 0)
		return -ENODATA;
	for (unsigned c = 0; c < r->nch; c++)
		rms[c] = 0;
	for (unsigned i = 0; i < a.nm; i++)
		rms[emg_muscles_get(r->map, i)->channel] = sqrt(a.sum[i] / (double)a.n);
	return 0;
}
