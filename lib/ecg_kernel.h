/* SPDX-License-Identifier: MIT */
/*
 * emg_ecg_run()'s per-frame passes over EMG_VL lanes at a time; included by
 * ecg.c once per ISA level with EMG_VL and EMG_K() defined (see simd.h).
 * Pass 1 updates every lane's detector state and votes for a heartbeat;
 * the scalar detector (detect() in ecg.c) decides; pass 2, only inside a
 * beat, subtracts and updates the template row of that beat sample.  At
 * a trigger, pre_frame() works through the frames before it (pre_beat()).
 */

typedef float EMG_K(vf) __attribute__((vector_size(EMG_VL * 4)));
typedef float EMG_K(vfu) __attribute__((vector_size(EMG_VL * 4), aligned(4)));
typedef int32_t EMG_K(vi) __attribute__((vector_size(EMG_VL * 4)));

#define VF EMG_K(vf)
#define VI EMG_K(vi)
#define AI static inline __attribute__((always_inline))
#define LDA(p) (*(const VF *)(p))
#define STA(p, v) (*(VF *)(p) = (v))
#define LDU(p) ((VF)(*(const EMG_K(vfu) *)(p)))
#define STU(p, v) (*(EMG_K(vfu) *)(p) = (v))

AI VF EMG_K(sel)(VI m, VF a, VF b)
{
	return (VF)(((VI)a & m) | ((VI)b & ~m));
}

/* Pass 1 on lanes c .. c + EMG_VL - 1 (x points at lane c of the frame). */
AI void EMG_K(vote)(struct emg_ecg *e, const float *x, size_t c, VF *num, VF *den, VF *mx, VF *mw,
		    VF *na, VF up, VF upb, VF dn, int copy)
{
	const VF z = { 0 };
	const VF xv = LDU(x);
	VF ev = LDA(e->en + c), nv = LDA(e->med + c), iv = LDA(e->imed + c);
	VF bz = LDA(e->busy + c), r;

	ev += e->a_fast * (xv * xv - ev);
	/* Median of e by a multiplicative quantile step: a QRS or a burst moves
	 * it by the same small factor per sample as any other sample above it.
	 * Its reciprocal follows by the reciprocal factors: no division per sample. */
	if (copy) {
		nv = EMG_K(sel)(ev < z + FLOOR_E, z + FLOOR_E, ev);
		iv = 1.0f / nv;
	} else {
		/* While the lane is busy (contracting) the median may only creep up
		 * (NOISE_BUSY_DIV times slower): a contraction must not raise the
		 * noise the lane's QRS is measured against, or the lane would leave
		 * the vote for seconds after it - and its QRS-over-noise ratio,
		 * learnt then, would make its weight and the threshold wrong. */
		const VI quiet = bz < z + BUSY_MAX;
		const VF u = EMG_K(sel)(quiet, up, upb);
		VI gt = ev > nv;
		nv *= EMG_K(sel)(gt, u, dn);
		iv *= EMG_K(sel)(gt, EMG_K(sel)(quiet, z + 1.0f / up[0], z + 1.0f / upb[0]),
				 z + 1.0f / dn[0]);
		gt = nv < z + FLOOR_E;
		nv = EMG_K(sel)(gt, z + FLOOR_E, nv);
		iv = EMG_K(sel)(gt, z + 1.0f / FLOOR_E, iv);
	}
	/* vote = e / (med * Q_INIT) until learnt, e / (QRS peak energy) after */
	r = ev * (iv * LDA(e->dm + c) + LDA(e->dp + c));
	r = EMG_K(sel)(r > LDA(e->cap + c), LDA(e->cap + c), r);
	bz += e->a_busy * (EMG_K(sel)(ev > BUSY_RATIO * nv, z + 1.0f, z) - bz);
	{
		const VF ok = EMG_K(sel)(bz < z + BUSY_MAX, LDA(e->w + c), z);
		const VF v = ok * r;
		const VI gt = v > *mx;
		*num += v;
		*den += ok;
		*mw = EMG_K(sel)(gt, ok, *mw);
		*mx = EMG_K(sel)(gt, v, *mx);
		*na += EMG_K(sel)((r >= z + e->thr_guard) & (ok > z), z + 1.0f, z);
	}
	STA(e->en + c, ev);
	STA(e->med + c, nv);
	STA(e->imed + c, iv);
	STA(e->busy + c, bz);
}

/* The sum of v's lanes, pairwise: independent adds, not one serial chain of EMG_VL. */
AI float EMG_K(hsum)(VF v)
{
	for (int w = EMG_VL / 2; w > 0; w /= 2)
		for (int j = 0; j < w; j++)
			v[j] += v[j + w];
	return v[0];
}

/* Innovation d of lanes c.. against template values tv, clipped at the beat's limit plus half the template. */
AI VF EMG_K(innov)(const struct emg_ecg *e, size_t c, VF d, VF tv)
{
	const VF z = { 0 };
	const VF at = EMG_K(sel)(tv < z, -tv, tv);
	const VF lim = LDA(e->lim + c) + 0.5f * at;

	return EMG_K(sel)(d > lim, lim, EMG_K(sel)(d < -lim, -lim, d));
}

/*
 * Pass 2: subtract template row t from lanes c.., fitted to this beat ("Per-beat
 * fit" in ecg.c; tp, tn: the rows before and after, h: 1 / their distance), and
 * learn it (bounded innovation).
 */
AI void EMG_K(sub)(struct emg_ecg *e, float *x, size_t c, float *t, const float *tp,
		   const float *tn, float h, int track)
{
	const VF z = { 0 };
	const VF xv = LDU(x);
	VF tv = LDA(t + c);
	const VF dv = (LDA(tn + c) - LDA(tp + c)) * h;
	const VF d = xv - tv;
	const VF dc = EMG_K(innov)(e, c, d, tv);
	const VI quiet = LDA(e->busy + c) < z + BUSY_MAX;
	const VF g = EMG_K(sel)(quiet, LDA(e->ga + c), z);
	const VF fit = LDA(e->fa + c) * tv + LDA(e->fb + c) * dv, dg = xv - fit;

	STA(e->ein + c, LDA(e->ein + c) + xv * xv);
	STA(e->eout + c, LDA(e->eout + c) + dg * dg);
	STU(x, xv - e->rh.apply * LDA(e->app + c) * fit);
	{
		/* the fit for the next sample: the 2 x 2 normal equations */
		const VF xq = EMG_K(sel)(quiet, xv, z), tq = EMG_K(sel)(quiet, tv, z);
		const VF dq = EMG_K(sel)(quiet, dv, z);
		const VF sxt = LDA(e->fxt + c) + xq * tv, sxd = LDA(e->fxd + c) + xq * dv;
		const VF stt = LDA(e->ftt + c) + tq * tv, sdd = LDA(e->fdd + c) + dq * dv;
		const VF std = LDA(e->ftd + c) + tq * dv;
		const VF det = stt * sdd - std * std, idet = 1.0f / det;
		/* the ridge keeps det > 0; float rounding on a flat template row
		 * must not turn it into inf or NaN: then the plain template */
		const VI ok = det > z + FLOOR_E;
		VF a = EMG_K(sel)(ok, (sxt * sdd - sxd * std) * idet, z + 1.0f);
		VF b = EMG_K(sel)(ok, (sxd * stt - sxt * std) * idet, z);

		a = EMG_K(sel)(a < z + FIT_A_MIN, z + FIT_A_MIN, EMG_K(sel)(a > z + FIT_A_MAX, z + FIT_A_MAX, a));
		const VF bmax = e->fit_shift * a;
		b = EMG_K(sel)(b > bmax, bmax, EMG_K(sel)(b < -bmax, -bmax, b));
		STA(e->fxt + c, sxt);
		STA(e->fxd + c, sxd);
		STA(e->ftt + c, stt);
		STA(e->fdd + c, sdd);
		STA(e->ftd + c, std);
		STA(e->fa + c, a);
		STA(e->fb + c, b);
	}
	tv += g * dc;
	STA(t + c, tv);
	if (track) {
		/* the detector's own energy (before the high-pass with both stages):
		 * the vote is measured on its scale */
		const VF p = LDA(e->pk + c), en = LDA(e->en + c);
		STA(e->pk + c, EMG_K(sel)(en > p, en, p));
	}
}

/*
 * pre_beat()'s work on one frame before a trigger (x: the stage's output
 * there, tp: its pre-trigger template row): the beat's pre-trigger energies
 * before and after, the corrected frame into out, and the template learnt
 * with sub()'s gain and clip.
 */
static void EMG_K(pre_frame)(struct emg_ecg *e, const float *x, float *tp, float *out)
{
	const size_t nl = e->nl, nv = nl - nl % EMG_VL;
	size_t c;

	for (c = 0; c < nv; c += EMG_VL) {
		const VF xv = LDU(x + c), tv = LDA(tp + c), d = xv - tv;
		const VF dc = EMG_K(innov)(e, c, d, tv);

		STA(e->pin + c, LDA(e->pin + c) + xv * xv);
		STA(e->pout + c, LDA(e->pout + c) + d * d);
		STU(out + c, xv - e->rh.apply * LDA(e->papp + c) * tv);
		STA(tp + c, tv + LDA(e->ga + c) * dc);
	}
	for (; c < nl; c++) {
		const float xv = x[c], tv = tp[c], d = xv - tv;
		const float lim = e->lim[c] + 0.5f * fabsf(tv);
		const float dc = d > lim ? lim : d < -lim ? -lim : d;

		e->pin[c] += xv * xv;
		e->pout[c] += d * d;
		out[c] = xv - e->rh.apply * e->papp[c] * tv;
		tp[c] += e->ga[c] * dc;
	}
}

/* n frames in place; the detector votes on det (the same frames, or the same before the high-pass). */
static void EMG_K(run)(struct emg_ecg *e, float *frames, const float *det, unsigned n)
{
	const size_t nl = e->nl, nv = nl - nl % EMG_VL;
	float *const row = e->row;

	e->cur = frames; /* pre_beat() reads the output frames before a trigger here */
	e->t_cur = e->t;

	for (unsigned f = 0; f < n; f++) {
		float *x = frames + (size_t)f * nl;
		const float *dx = det + (size_t)f * nl;
		const int copy = e->t < e->copy_n;
		const float eta = e->t < e->fast_n ? e->eta_fast : e->eta;
		const VF z = { 0 }, up = z + (1.0f + eta), dn = z + (1.0f - eta);
		const VF upb = z + (1.0f + eta / NOISE_BUSY_DIV);
		VF num = z, den = z, mx = z, mw = z, na = z;
		float sn = 0, sd = 0, m = 0, wm = 0;
		int agree = 0;
		size_t c;

		for (c = 0; c < nv; c += EMG_VL)
			EMG_K(vote)(e, dx + c, c, &num, &den, &mx, &mw, &na, up, upb, dn, copy);
		if (c < nl) {
			memcpy(row, dx + c, (nl - c) * sizeof(float));
			EMG_K(vote)(e, row, c, &num, &den, &mx, &mw, &na, up, upb, dn, copy);
		}
		sn = EMG_K(hsum)(num);
		sd = EMG_K(hsum)(den);
		/* Only when the vote is over the threshold (rarely): once learnt, the
		 * other lanes that carry the ECG must agree with the strongest one
		 * (leave-one-out, same vote scale); before, at least two lanes must
		 * be over the noise guard - a contraction starts on one - and
		 * DIL_NA when the vote is under thr_guard, only over the floor
		 * lowered on many lanes (ecg.c, DIL_LANES): there a beat is carried
		 * by a few strong lanes, and two or three muscles starting to
		 * contract no longer trigger (on 64 lanes without a heart they
		 * doubled the triggers, and the stage's cost). */
		if (sd > 0 && sn >= e->thr * sd && e->learnt) {
			for (int j = 0; j < EMG_VL; j++)
				if (mx[j] > m) {
					m = mx[j];
					wm = mw[j];
				}
			agree = sd - wm < LOO_MIN_W || sn - m >= e->thr * (sd - wm);
		} else if (sd > 0 && sn >= e->thr * sd) {
			/* each half only what it needs: on 64 lanes without a heart the
			 * vote is over the lowered floor in a quarter of the frames */
			agree = e->non == 1 || EMG_K(hsum)(na) >= (sn >= e->thr_guard * sd ? 2.0f : DIL_NA);
		}
		detect(e, sd > 0 ? sn / sd : 0.0f, agree);
		if (e->k < e->K) {
			float *t = e->tmpl + (size_t)e->k * e->stride;
			/* the template's slope: central, one-sided at its ends */
			const float *tp = e->k > 0 ? t - e->stride : t;
			const float *tn = e->k + 1 < e->K ? t + e->stride : t;
			const float h = tp != t && tn != t ? 0.5f : 1.0f;
			const int track = e->k < e->kpk;

			for (c = 0; c < nv; c += EMG_VL)
				EMG_K(sub)(e, x + c, c, t, tp, tn, h, track);
			if (c < nl) {
				memcpy(row, x + c, (nl - c) * sizeof(float));
				EMG_K(sub)(e, row, c, t, tp, tn, h, track);
				memcpy(x + c, row, (nl - c) * sizeof(float));
			}
			if (++e->k == e->kchk) {
				if (e->beats > 1 && beat_was_burst(e))
					beat_undo(e);
				else
					beat_learned(e);
			} else if (e->k == e->K) {
				beat_done(e);
			}
		}
		e->t++;
	}
	hist_store(e, frames, n);
}

#undef VF
#undef VI
#undef AI
#undef LDA
#undef STA
#undef LDU
#undef STU
