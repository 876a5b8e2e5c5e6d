/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

struct mstate {
	int partner; /* other side's muscle index, or -1 */
	int left;    /* name ends in _l */

	/* burst group membership */
	int in_group;
	uint64_t group_onset;

	/* repetition in progress */
	int rep_open, burst_open;
	uint64_t rep_onset, last_offset;
	uint32_t rep_group;
	int lag_known;
	float lag_ms;
	unsigned nticks, nlevel;
	double sum_rms, sum_level;
	float peak_rms, peak_level;
	uint64_t peak_rms_sample, peak_level_sample;

	/* finished repetitions */
	unsigned reps;
	int last_valid, last_calibrated;
	float last_peak;
};

struct emg_analytics {
	struct emg_analytics_params p;
	double fs;
	unsigned nm;
	uint64_t window, settle, rest; /* in samples */
	struct mstate m[EMG_MUSCLES_MAX];

	int group_open;
	uint32_t group_id; /* current (open) or last group */
	uint64_t gmin;     /* earliest onset sample in the open group */
	uint64_t gclose;   /* the open group closes at the first tick at or past this sample */
	uint64_t now;      /* the last tick's sample: the stream as far as it is known here */
	unsigned gfirst;
	unsigned gcount;
	uint16_t gmembers[EMG_MUSCLES_MAX];

	/* results are built here: no allocation, nothing big on the stack */
	struct emg_analytics_order order;
	struct emg_analytics_rep rep;
};

void emg_analytics_params_default(struct emg_analytics_params *p)
{
	memset(p, 0, sizeof(*p));
	p->order_window_ms = 300;
	p->settle_ms = 150;
	p->min_rest_ms = 500;
}

double emg_analytics_symmetry(double left, double right)
{
	/* Robinson, Herzog & Nigg 1987 (J Manipulative Physiol Ther 10:172-176):
	 * SI = (X_L - X_R) / (0.5 (X_L + X_R)) x 100 %; 0 = symmetric, positive =
	 * left larger, bounded by +-200 %. */
	double mean = 0.5 * (left + right);

	return mean > 0 ? (left - right) / mean * 100.0 : 0.0;
}

static uint64_t ms_to_samples(double ms, double fs)
{
	double v = floor(ms * 1e-3 * fs + 0.5);

	return v > 0 ? (uint64_t)v : 0;
}

static float samples_to_ms(double fs, uint64_t later, uint64_t earlier)
{
	double d = later >= earlier ? (double)(later - earlier) : -(double)(earlier - later);

	return (float)(d * 1e3 / fs);
}

int emg_analytics_set_params(struct emg_analytics *a, const struct emg_analytics_params *p)
{
	if (!(p->order_window_ms >= 0) || !(p->settle_ms >= 0) || !(p->min_rest_ms >= 0) ||
	    p->npairs > EMG_ANALYTICS_MAX_PAIRS)
		return -EINVAL;
	for (unsigned i = 0; i < p->npairs; i++)
		if (p->pairs[i].a >= a->nm || p->pairs[i].b >= a->nm || p->pairs[i].a == p->pairs[i].b)
			return -EINVAL;
	a->p = *p;
	a->window = ms_to_samples(p->order_window_ms, a->fs);
	a->settle = ms_to_samples(p->settle_ms, a->fs);
	a->rest = ms_to_samples(p->min_rest_ms, a->fs);
	return 0;
}

static int partner_of(const struct emg_muscles *m, const char *name, int *left)
{
	char other[EMG_MUSCLE_NAME_MAX];
	size_t len = strlen(name);

	*left = 0;
	if (len < 3 || name[len - 2] != '_' || (name[len - 1] != 'l' && name[len - 1] != 'r'))
		return -1;
	*left = name[len - 1] == 'l';
	memcpy(other, name, len + 1);
	other[len - 1] = *left ? 'r' : 'l';
	return emg_muscles_find(m, other) >= 0 ? emg_muscles_find(m, other) : -1;
}

int emg_analytics_new(struct emg_analytics **out, const struct emg_analytics_params *p,
		      const struct emg_muscles *m, double rate)
{
	struct emg_analytics *a;
	int r;

	if (!m || !(rate > 0) || emg_muscles_count(m) == 0)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fs = rate;
	a->nm = emg_muscles_count(m);
	for (unsigned i = 0; i < a->nm; i++)
		a->m[i].partner = partner_of(m, emg_muscles_get(m, i)->name, &a->m[i].left);
	r = emg_analytics_set_params(a, p);
	if (r < 0) {
		free(a);
		return r;
	}
	*out = a;
	return 0;
}

void emg_analytics_free(struct emg_analytics *a)
{
	free(a);
}

void emg_analytics_reset(struct emg_analytics *a)
{
	for (unsigned i = 0; i < a->nm; i++) {
		struct mstate *s = &a->m[i];
		int partner = s->partner, left = s->left;

		memset(s, 0, sizeof(*s));
		s->partner = partner;
		s->left = left;
	}
	a->group_open = 0;
	a->gcount = 0;
}

unsigned emg_analytics_reps(const struct emg_analytics *a, unsigned i)
{
	return i < a->nm ? a->m[i].reps : 0;
}

int emg_analytics_partner(const struct emg_analytics *a, unsigned i)
{
	return i < a->nm ? a->m[i].partner : -1;
}

/* ---- burst groups ---- */

static void close_group(struct emg_analytics *a, const struct emg_analytics_sink *sink)
{
	struct emg_analytics_order *o = &a->order;

	o->group = a->group_id;
	o->first = a->gfirst;
	o->onset_sample = a->gmin;
	o->nmuscles = a->nm;
	o->nfired = a->gcount;
	for (unsigned i = 0; i < a->nm; i++)
		o->lag_ms[i] = -1.0f;
	for (unsigned k = 0; k < a->gcount; k++) {
		unsigned i = a->gmembers[k];
		float lag = samples_to_ms(a->fs, a->m[i].group_onset, a->gmin);
		o->lag_ms[i] = lag > 0 ? lag : 0.0f;
	}
	o->npairs = 0;
	for (unsigned k = 0; k < a->p.npairs; k++) {
		const struct emg_analytics_pair *pr = &a->p.pairs[k];
		if (!a->m[pr->a].in_group || !a->m[pr->b].in_group)
			continue;
		o->pair[o->npairs].a = pr->a;
		o->pair[o->npairs].b = pr->b;
		o->pair[o->npairs].lag_ms =
			samples_to_ms(a->fs, a->m[pr->a].group_onset, a->m[pr->b].group_onset);
		o->npairs++;
	}
	/* Repetitions that started in this group learn their lag now. */
	for (unsigned i = 0; i < a->nm; i++) {
		struct mstate *s = &a->m[i];
		if (s->rep_open && !s->lag_known && s->rep_group == a->group_id) {
			float lag = samples_to_ms(a->fs, s->rep_onset, a->gmin);
			s->lag_ms = lag > 0 ? lag : 0.0f;
			s->lag_known = 1;
		}
	}
	for (unsigned k = 0; k < a->gcount; k++)
		a->m[a->gmembers[k]].in_group = 0;
	a->gcount = 0;
	a->group_open = 0;
	if (sink && sink->order)
		sink->order(sink->ud, o);
}

static void join_group(struct emg_analytics *a, unsigned i, uint64_t sample,
		       const struct emg_analytics_sink *sink)
{
	struct mstate *s = &a->m[i];

	if (a->group_open && (sample > a->gmin + a->window || sample + a->window < a->gmin))
		close_group(a, sink);
	if (!a->group_open) {
		a->group_open = 1;
		a->group_id++;
		a->gmin = sample;
		/* from where the stream was when its first onset came, not from
		 * that onset: onsets come once the detector's report gate has
		 * passed them, 200 ms or more after they began (550 ms in the
		 * stream's start-up, or at the end of a shorter burst there), and
		 * a group closed from its first onset's sample would close before
		 * its second onset came */
		a->gclose = (sample > a->now ? sample : a->now) + a->window + a->settle;
		a->gfirst = i;
		a->gcount = 0;
	}
	if (s->in_group)
		return; /* a muscle counts once per group, with its first onset */
	s->in_group = 1;
	s->group_onset = sample;
	a->gmembers[a->gcount++] = (uint16_t)i;
	if (sample < a->gmin) {
		/* Detected later but switched on earlier: it leads the order. */
		a->gmin = sample;
		a->gfirst = i;
	}
}

/* ---- repetitions ---- */

static void finish_rep(struct emg_analytics *a, unsigned i, const struct emg_analytics_sink *sink)
{
	struct mstate *s = &a->m[i];
	struct emg_analytics_rep *r = &a->rep;
	uint64_t peak_at;

	if (!s->lag_known) {
		/* Its group is still open (a window longer than the rest): lag so far. */
		float lag = samples_to_ms(a->fs, s->rep_onset, a->gmin);
		s->lag_ms = lag > 0 ? lag : 0.0f;
	}
	memset(r, 0, sizeof(*r));
	s->reps++;
	r->muscle = i;
	r->rep = s->reps;
	r->calibrated = s->nticks > 0 && s->nlevel == s->nticks;
	if (r->calibrated) {
		r->peak = s->peak_level * 100.0f;
		r->mean = (float)(s->sum_level / s->nticks * 100.0);
		peak_at = s->peak_level_sample;
	} else {
		r->peak = s->peak_rms;
		r->mean = s->nticks ? (float)(s->sum_rms / s->nticks) : 0.0f;
		peak_at = s->peak_rms_sample;
	}
	r->time_to_peak_s = s->nticks && peak_at > s->rep_onset ?
				    (float)((double)(peak_at - s->rep_onset) / a->fs) :
				    0.0f;
	r->duration_s = s->last_offset > s->rep_onset ?
				(float)((double)(s->last_offset - s->rep_onset) / a->fs) :
				0.0f;
	r->lag_ms = s->lag_ms;
	r->group = s->rep_group;
	r->onset_sample = s->rep_onset;
	if (s->partner >= 0 && s->nticks > 0) {
		const struct mstate *o = &a->m[s->partner];
		if (o->last_valid && o->last_calibrated == r->calibrated) {
			r->paired = 1;
			r->symmetry_pct = (float)(s->left ? emg_analytics_symmetry(r->peak, o->last_peak) :
							    emg_analytics_symmetry(o->last_peak, r->peak));
		}
	}
	if (s->nticks > 0) {
		s->last_valid = 1;
		s->last_calibrated = r->calibrated;
		s->last_peak = r->peak;
	}
	s->rep_open = 0;
	if (sink && sink->rep)
		sink->rep(sink->ud, r);
}

static void on_onset(struct emg_analytics *a, unsigned i, uint64_t sample,
		     const struct emg_analytics_sink *sink)
{
	struct mstate *s = &a->m[i];

	join_group(a, i, sample, sink);
	if (s->burst_open)
		return; /* two onsets without an offset: keep the first */
	if (s->rep_open && sample < s->last_offset + a->rest) {
		s->burst_open = 1; /* too little rest: the same repetition goes on */
		return;
	}
	if (s->rep_open)
		finish_rep(a, i, sink); /* rested long enough, but no tick said so yet */
	s->rep_open = 1;
	s->burst_open = 1;
	s->rep_onset = sample;
	s->last_offset = sample;
	s->rep_group = a->group_id;
	s->lag_known = 0;
	s->lag_ms = 0;
	s->nticks = s->nlevel = 0;
	s->sum_rms = s->sum_level = 0;
	s->peak_rms = s->peak_level = -1.0f;
	s->peak_rms_sample = s->peak_level_sample = sample;
}

static void on_offset(struct emg_analytics *a, unsigned i, uint64_t sample)
{
	struct mstate *s = &a->m[i];

	if (!s->burst_open)
		return; /* its onset came before this instance existed */
	s->burst_open = 0;
	s->last_offset = sample;
}

static void on_tick(struct emg_analytics *a, const struct emg_out *rec,
		    const struct emg_analytics_sink *sink)
{
	unsigned n = rec->nmuscles < a->nm ? rec->nmuscles : a->nm;
	uint64_t t = rec->sample;

	a->now = t;
	if (a->group_open && t >= a->gclose)
		close_group(a, sink);
	for (unsigned i = 0; i < n; i++) {
		struct mstate *s = &a->m[i];
		const struct emg_out_muscle *m = &rec->m[i];

		if (s->burst_open && m->active) {
			s->nticks++;
			s->sum_rms += m->rms;
			if (m->rms > s->peak_rms) {
				s->peak_rms = m->rms;
				s->peak_rms_sample = t;
			}
			if (m->level >= 0) {
				s->nlevel++;
				s->sum_level += m->level;
				if (m->level > s->peak_level) {
					s->peak_level = m->level;
					s->peak_level_sample = t;
				}
			}
		}
		if (s->rep_open && !s->burst_open && s->lag_known && t >= s->last_offset + a->rest)
			finish_rep(a, i, sink);
	}
}

void emg_analytics_feed(struct emg_analytics *a, const struct emg_out *rec,
			  const struct emg_analytics_sink *sink)
{
	switch (rec->type) {
	case EMG_OUT_METRICS:
		on_tick(a, rec, sink);
		break;
	case EMG_OUT_ONSET:
		if (rec->muscle < a->nm)
			on_onset(a, rec->muscle, rec->sample, sink);
		break;
	case EMG_OUT_OFFSET:
		if (rec->muscle < a->nm)
			on_offset(a, rec->muscle, rec->sample);
		break;
	default:
		break;
	}
}

/* ---- pairs ---- */

static int find_len(const struct emg_muscles *m, const char *s, size_t n)
{
	char name[EMG_MUSCLE_NAME_MAX];

	if (n == 0 || n >= sizeof(name))
		return -ENOENT;
	memcpy(name, s, n);
	name[n] = '\0';
	return emg_muscles_find(m, name);
}

static const char *const auto_roles[] = { "hamstring", "hip_flex", NULL };

int emg_analytics_pairs_parse(const char *text, const struct emg_muscles *m,
			      struct emg_analytics_pair *out, unsigned *n, char *err,
			      size_t errlen)
{
	const char *p = text;
	unsigned cnt = 0;

	*n = 0;
	if (err && errlen)
		err[0] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (!strcmp(p, "none") || !*p)
		return 0;
	if (!strcmp(p, "auto")) {
		/* Each glute max against the hamstring and hip flexor of its own side. */
		unsigned nm = emg_muscles_count(m);
		for (unsigned g = 0; g < nm; g++) {
			const struct emg_muscle *gm = emg_muscles_get(m, g);
			if (strcmp(emg_muscle_role(gm->name), "glute_max"))
				continue;
			for (const char *const *role = auto_roles; *role; role++)
				for (unsigned j = 0; j < nm; j++) {
					const struct emg_muscle *o = emg_muscles_get(m, j);
					if (o->side != gm->side || strcmp(emg_muscle_role(o->name), *role))
						continue;
					if (cnt == EMG_ANALYTICS_MAX_PAIRS)
						goto done;
					out[cnt].a = (uint16_t)g;
					out[cnt].b = (uint16_t)j;
					cnt++;
				}
		}
		goto done;
	}
	while (*p) {
		size_t len = strcspn(p, " ,\t");
		const char *colon = memchr(p, ':', len);
		int a, b;

		if (len == 0) {
			p++;
			continue;
		}
		if (!colon) {
			if (err)
				snprintf(err, errlen, "'%.*s' is not muscle:muscle", (int)len, p);
			return -EINVAL;
		}
		a = find_len(m, p, (size_t)(colon - p));
		b = find_len(m, colon + 1, len - (size_t)(colon - p) - 1);
		if (a < 0 || b < 0 || a == b) {
			if (err)
				snprintf(err, errlen, "'%.*s': %s", (int)len, p,
					 a == b && a >= 0 ? "a muscle paired with itself" :
							    "not two muscles of [muscles]");
			return -EINVAL;
		}
		if (cnt == EMG_ANALYTICS_MAX_PAIRS) {
			if (err)
				snprintf(err, errlen, "more than %d pairs", EMG_ANALYTICS_MAX_PAIRS);
			return -ENOSPC;
		}
		out[cnt].a = (uint16_t)a;
		out[cnt].b = (uint16_t)b;
		cnt++;
		p += len;
	}
done:
	*n = cnt;
	return 0;
}
