/* SPDX-License-Identifier: MIT */
/*
 * The onset detector's per-sample passes over EMG_VL lanes at a time;
 * included by onset.c once per ISA level with EMG_VL and EMG_K() defined
 * (see simd.h).  Lanes are independent, so each group of EMG_VL lanes runs
 * through the whole chunk with its state in registers; the scalar state
 * machine (lane_scalar) is called for exactly the lanes and samples that
 * need it, with the registers written back around the call.
 */

typedef float EMG_K(vf) __attribute__((vector_size(EMG_VL * 4)));
typedef int32_t EMG_K(vi) __attribute__((vector_size(EMG_VL * 4)));
typedef double EMG_K(vd) __attribute__((vector_size(EMG_VL * 8)));
typedef double EMG_K(vdu) __attribute__((vector_size(EMG_VL * 8), aligned(8)));

#define VF EMG_K(vf)
#define VI EMG_K(vi)
#define VD EMG_K(vd)
#define AI static inline __attribute__((always_inline))

#define LDF(p) (*(const VF *)(p))
#define LDI(p) (*(const VI *)(p))
#define LDD(p) ((VD)(*(const EMG_K(vdu) *)(p)))
#define STF(p, v) (*(VF *)(p) = (v))
#define STI(p, v) (*(VI *)(p) = (v))
#define STD(p, v) (*(EMG_K(vdu) *)(p) = (v))

#include "simd_lanes.h"

AI VI EMG_K(seli)(VI m, VI a, VI b)
{
	return (a & m) | (b & ~m);
}

AI VF EMG_K(sqrt)(VF v)
{
	VF r;

	for (int j = 0; j < EMG_VL; j++)
		r[j] = __builtin_sqrtf(v[j]);
	return r;
}

/* The main pass over one chunk (nf frames, first sample `first`) for one method. */
AI void EMG_K(main_m)(struct emg_onset *o, unsigned nf, uint64_t first, const int method)
{
	struct hot *h = &o->h;
	const unsigned nlp = o->nlp, ng = (o->nlanes + EMG_VL - 1) / EMG_VL;
	const VF zf = { 0 };
	const VI zi = { 0 };
	const VF capa = zf + o->ga_cap, capb = zf + GB_CAP, fcapa = zf + STEP_FRAC * o->ga_cap;
	const VI cap4 = zi + o->cap4;
	const VI confirm = zi + (int32_t)o->confirm_n, offset = zi + (int32_t)o->offset_n;
	const VI vidle = zi + M_IDLE;
	const int32_t n1base = idx_rel(o, first + 1);
	/* The arrays, in locals: with -fno-strict-aliasing every float store could
	 * change a pointer inside *h, and they would be reloaded after each. */
	float *const xb = h->xb, *const ring = h->ring, *const cring = h->cring, *const cb = h->cb;
	float *const hab = h->ab, *const habpk = h->abpk, *const hbb = h->bb, *const hbbpk = h->bbpk;
	float *const hbx2 = h->bx2, *const hbn = h->bn, *const hwkthr = h->wkthr, *const hwmin = h->wmin;
	int32_t *const habpka = h->abpka, *const hbbpka = h->bbpka, *const hweak = h->weak;
	int32_t *const hrl = h->rl, *const hrs = h->rs, *const hr2l = h->r2l, *const hr2s = h->r2s;
	int32_t *const hol = h->ol, *const honl = h->onl, *const hof = h->of;
	float *const hrx2 = h->rx2, *const hr2x2 = h->r2x2, *const hox2 = h->ox2;
	const float *const hpon = h->pon, *const hpoff = h->poff;
	float *const hpth = h->pth;
	const int32_t *const hon = h->on;
	const struct frame *const frames = o->fr;

	for (unsigned g = 0; g < ng; g++) {
		const unsigned g0 = g * EMG_VL;
		VF th, pth, plow, ivar, ag, as, apk, bg, bs, bpk, t1 = zf, t2 = zf;
		VI mode, act, armed2, az, ast, acp, apka, bz, bpka, pend, gdue;
		VF csum = LDF(h->csum + g0), ccmp = LDF(h->ccmp + g0), cpass = LDF(h->cpass + g0);
		VF psum = LDF(h->psum + g0), pcmp = LDF(h->pcmp + g0), ppass = LDF(h->ppass + g0);

#define RELOAD()                                                                                 \
	do {                                                                                     \
		th = LDF(h->th + g0), pth = LDF(h->pth + g0), plow = LDF(h->plow + g0);          \
		ivar = LDF(h->ivar + g0);                                                        \
		ag = LDF(h->ag + g0), as = LDF(h->as + g0), apk = LDF(h->apk + g0);              \
		bg = LDF(h->bg + g0), bs = LDF(h->bs + g0), bpk = LDF(h->bpk + g0);              \
		mode = LDI(h->mode + g0), act = LDI(h->act + g0), armed2 = LDI(h->armed2 + g0);  \
		az = LDI(h->az + g0), ast = LDI(h->ast + g0), acp = LDI(h->acp + g0);            \
		apka = LDI(h->apka + g0), bz = LDI(h->bz + g0), bpka = LDI(h->bpka + g0);        \
		pend = (mode == vidle) & ((LDI(hrl + g0) | LDI(hr2l + g0)) != zi);                \
		gdue = LDI(h->gd + g0);                                                          \
	} while (0)
#define SPILL()                                                                                  \
	do {                                                                                     \
		STF(h->ag + g0, ag), STF(h->as + g0, as), STF(h->apk + g0, apk);                 \
		STF(h->bg + g0, bg), STF(h->bs + g0, bs), STF(h->bpk + g0, bpk);                 \
		STI(h->armed2 + g0, armed2);                                                     \
		STI(h->az + g0, az), STI(h->ast + g0, ast), STI(h->acp + g0, acp);               \
		STI(h->apka + g0, apka), STI(h->bz + g0, bz), STI(h->bpka + g0, bpka);           \
	} while (0)

		RELOAD();
		if (method == EMG_ONSET_TKEO) {
			t1 = LDF(h->t1 + g0);
			t2 = LDF(h->t2 + g0);
		}
		for (unsigned f = 0; f < nf; f++) {
			const struct frame *fr = &frames[f];
			const VI n1 = zi + (n1base + (int32_t)f), n0 = n1 - 1;
			const float *xrow = xb + (size_t)f * nlp;
			float *prow = ring + (size_t)fr->prow * nlp + g0;
			const VF x = LDF(xrow + g0), x2 = x * x, oldp = LDF(prow);
			VF c = zf, P, oldc, cin;

			/* conditioning: c = RMS over W of x (hodges) or of sqrt|psi| (tkeo) */
			if (method != EMG_ONSET_BONATO) {
				if (method == EMG_ONSET_TKEO) {
					float *crow = cring + (size_t)fr->crow * nlp + g0;
					VF psi = t1 * t1 - x * t2;
					cin = EMG_K(vabs)(psi);
					t2 = t1;
					t1 = x;
					oldc = LDF(crow);
					STF(crow, cin);
				} else {
					cin = x2;
					oldc = LDF(ring + (size_t)fr->crow * nlp + g0);
				}
				const VF y = (cin - oldc) - ccmp, t = csum + y;
				ccmp = (t - csum) - y;
				csum = t;
				cpass += cin;
				const VF m = csum * fr->inv_c;
				c = EMG_K(sqrt)(EMG_K(sel)(m > zf, m, zf));
				if (fr->flags & FR_CSYNC) {
					csum = cpass;
					ccmp = cpass = zf;
				}
				STF(cb + (size_t)f * nlp + g0, c);
			}
			/* slow path: P = mean of x^2 over W2 */
			STF(prow, x2);
			{
				const VF y = (x2 - oldp) - pcmp, t = psum + y;
				pcmp = (t - psum) - y;
				psum = t;
			}
			ppass += x2;
			P = psum * fr->inv_p;
			if (fr->flags & FR_PSYNC) {
				psum = ppass;
				pcmp = ppass = zf;
			}

			/* CUSUMs on z = x^2 / var: g = min(cap, max(0, g + z - drift)) */
			const VF z = x2 * ivar;
			{
				const VF d = z - GA_DRIFT, g1 = ag + d;
				const VI zero = g1 <= zf, top = g1 >= capa;
				as = EMG_K(sel)(zero, zf, as + d);
				ag = EMG_K(sel)(zero, zf, EMG_K(sel)(top, capa, g1));
				az = EMG_K(seli)(zero, n1, az);
				ast = EMG_K(seli)(zero, zi, EMG_K(seli)(ast != zi, ast, (ag >= fcapa) & n1));
				acp = EMG_K(seli)(zero, zi, EMG_K(seli)(acp != zi, acp, top & n1));
				const VI up = zero | (as >= apk);
				apk = EMG_K(sel)(up, as, apk);
				apka = EMG_K(seli)(up, n1, apka);
			}
			{
				const VF d = z - GB_DRIFT, g1 = bg + d;
				const VI zero = g1 <= zf, top = g1 >= capb;
				bs = EMG_K(sel)(zero, zf, bs + d);
				bg = EMG_K(sel)(zero, zf, EMG_K(sel)(top, capb, g1));
				bz = EMG_K(seli)(zero, n1, bz);
				const VI up = zero | (bs >= bpk);
				bpk = EMG_K(sel)(up, bs, bpk);
				bpka = EMG_K(seli)(up, n1, bpka);
			}
			/* The slow path re-arms once P is low; a jump of the power (the
			 * strong CUSUM at its ceiling within cap/4) is the fast path's. */
			armed2 |= P < plow;
			armed2 &= ~((ag >= capa) & ((n1 - az) <= cap4));

			/* decisions */
			VI onm, slow_on = P > pth;
			if (method == EMG_ONSET_BONATO) {
				bonato_frame(o, g0, EMG_VL, xrow, first + f);
				onm = LDI(hon + g0);
			} else {
				onm = c > th;
			}
			/* the report gate's look at a lane falls due at this sample's end */
			VI need = (n1 == gdue) & (gdue != zi);
			const VI idle = mode == vidle, s2go = slow_on & armed2;
			if (EMG_K(any)(idle & (onm | s2go | pend))) {
				/* on-runs of both paths towards a confirmation */
				VI rl = LDI(hrl + g0), rs = LDI(hrs + g0), r2l = LDI(hr2l + g0), r2s = LDI(hr2s + g0);
				VF rx2 = LDF(hrx2 + g0), r2x2 = LDF(hr2x2 + g0);
				const VI on1 = idle & onm, on2 = idle & s2go;
				const VI st1 = on1 & (rl == zi), st2 = on2 & (r2l == zi);

				rx2 = EMG_K(sel)(on1, EMG_K(sel)(st1, zf, rx2) + x2, rx2);
				rs = EMG_K(seli)(st1, n0, rs);
				rl = EMG_K(seli)(idle, on1 & (rl + 1), rl);
				r2x2 = EMG_K(sel)(on2, EMG_K(sel)(st2, zf, r2x2) + x2, r2x2);
				r2s = EMG_K(seli)(st2, n0, r2s);
				r2l = EMG_K(seli)(idle, on2 & (r2l + 1), r2l);
				pend = idle & ((rl | r2l) != zi);
				/* a slow run pending holds at p_off */
				pth = EMG_K(sel)(idle, EMG_K(sel)(r2l != zi, LDF(hpoff + g0), LDF(hpon + g0)), pth);
				STF(hpth + g0, pth);
				need |= idle & ((rl >= confirm) | (r2l >= confirm));
				if (method == EMG_ONSET_BONATO)
					need |= st1; /* its run starts at the earliest pair in the window */
				STI(hrl + g0, rl), STI(hrs + g0, rs), STI(hr2l + g0, r2l), STI(hr2s + g0, r2s);
				STF(hrx2 + g0, rx2), STF(hr2x2 + g0, r2x2);
			}
			if (EMG_K(any)(act)) {
				/* inside a burst: the uncapped sums since it began, `weak`,
				 * the burst's power while it stays on, off-runs towards an offset */
				VF ab = LDF(hab + g0), abpk = LDF(habpk + g0);
				VF bb = LDF(hbb + g0), bbpk = LDF(hbbpk + g0);
				VI abpka = LDI(habpka + g0), bbpka = LDI(hbbpka + g0);
				VF bx2 = LDF(hbx2 + g0), bn = LDF(hbn + g0), ox2 = LDF(hox2 + g0);
				VI weak = LDI(hweak + g0), ol = LDI(hol + g0), onl = LDI(honl + g0);
				VI of = LDI(hof + g0), up;

				ab = EMG_K(sel)(act, ab + (z - GA_DRIFT), ab);
				up = act & (ab >= abpk);
				abpk = EMG_K(sel)(up, ab, abpk);
				abpka = EMG_K(seli)(up, n1, abpka);
				bb = EMG_K(sel)(act, bb + (z - GB_DRIFT), bb);
				up = act & (bb >= bbpk);
				bbpk = EMG_K(sel)(up, bb, bbpk);
				bbpka = EMG_K(seli)(up, n1, bbpka);
				/* a burst that began on a QRS the ECG stage triggered on
				 * (wmin: W2) is not held by its slow window until that
				 * window no longer reaches the QRS */
				weak |= act & (bx2 < LDF(hwkthr + g0) * bn) & (bn >= LDF(hwmin + g0));
				const VI on_eff = onm | (weak & slow_on);
				const VI start = act & (ol == zi) & ~on_eff;
				const VI inrun = act & ((ol != zi) | start);
				const VI onrun = act & ~inrun;
				of = EMG_K(seli)(start, n0, of);
				ox2 = EMG_K(sel)(start, zf, ox2);
				onl = EMG_K(seli)(start, zi, onl);
				ol = EMG_K(seli)(inrun, ol + 1, ol);
				ox2 = EMG_K(sel)(inrun, ox2 + x2, ox2);
				onl = EMG_K(seli)(inrun, on_eff & (onl + 1), onl);
				/* on again for a confirmation: the dip was part of the burst */
				const VI merge = inrun & on_eff & (onl >= confirm);
				bx2 = EMG_K(sel)(merge, bx2 + ox2, EMG_K(sel)(onrun, bx2 + x2, bx2));
				bn = EMG_K(sel)(merge, bn + __builtin_convertvector(ol, VF),
						EMG_K(sel)(onrun, bn + 1.0f, bn));
				ol = EMG_K(seli)(merge, zi, ol);
				need |= inrun & ~on_eff & (ol >= offset);
				if (method == EMG_ONSET_BONATO)
					need |= start & ~weak; /* its off-run starts at the last exceeding pair */
				STF(hab + g0, ab), STF(habpk + g0, abpk), STI(habpka + g0, abpka);
				STF(hbb + g0, bb), STF(hbbpk + g0, bbpk), STI(hbbpka + g0, bbpka);
				STF(hbx2 + g0, bx2), STF(hbn + g0, bn), STI(hweak + g0, weak);
				STI(hol + g0, ol), STI(honl + g0, onl), STI(hof + g0, of), STF(hox2 + g0, ox2);
			}
			if (EMG_K(any)(need)) {
				SPILL();
				for (unsigned j = 0; j < EMG_VL; j++)
					if (need[j])
						lane_step(o, g0 + j, f, first + f, onm[j] != 0,
							    slow_on[j] != 0);
				RELOAD();
			}
		}
		SPILL();
		STF(h->csum + g0, csum), STF(h->ccmp + g0, ccmp), STF(h->cpass + g0, cpass);
		STF(h->psum + g0, psum), STF(h->pcmp + g0, pcmp), STF(h->ppass + g0, ppass);
		if (method == EMG_ONSET_TKEO) {
			STF(h->t1 + g0, t1);
			STF(h->t2 + g0, t2);
		}
#undef RELOAD
#undef SPILL
	}
}

static void EMG_K(main)(struct emg_onset *o, unsigned nf, uint64_t first)
{
	switch (o->p.method) {
	case EMG_ONSET_TKEO:
		EMG_K(main_m)(o, nf, first, EMG_ONSET_TKEO);
		break;
	case EMG_ONSET_BONATO:
		EMG_K(main_m)(o, nf, first, EMG_ONSET_BONATO);
		break;
	default:
		EMG_K(main_m)(o, nf, first, EMG_ONSET_HODGES);
		break;
	}
}

/* Add the chunk's nf frames of x^2 and of (x - previous x)^2 to the power histories (ref_ring, ref_dring). */
static void EMG_K(ref_feed)(struct emg_onset *o, unsigned nf)
{
	const unsigned nlp = o->nlp, d = o->ref_d, mask = o->ref_cap - 1;
	unsigned pos = o->ref_pos;
	uint64_t sub = o->ref_sub;

	/* a group of lanes at a time through the chunk, its sums in registers */
	for (unsigned g0 = 0; g0 < nlp; g0 += EMG_VL) {
		VF acc = LDF(o->ref_acc + g0), dacc = LDF(o->ref_dacc + g0), prev = LDF(o->ref_xprev + g0);
		pos = o->ref_pos;
		sub = o->ref_sub;
		for (unsigned f = 0; f < nf; f++) {
			const VF v = LDF(o->h.xb + (size_t)f * nlp + g0), dv = v - prev;
			acc += v * v;
			dacc += dv * dv;
			prev = v;
			if (++pos < d)
				continue;
			/* the entry's last frame: complete it into the rings */
			const size_t row = (size_t)(sub & mask) * nlp + g0;
			STF(o->ref_ring + row, acc);
			STF(o->ref_dring + row, dacc);
			acc = dacc = (VF){ 0 };
			pos = 0;
			sub++;
		}
		STF(o->ref_acc + g0, acc);
		STF(o->ref_dacc + g0, dacc);
		STF(o->ref_xprev + g0, prev);
	}
	o->ref_pos = pos;
	o->ref_sub = sub;
}

/*
 * ref_window()'s amplitude estimates u[j] = ref_amp1(raw, m, j, var) for
 * j < m, whole vectors of entries away from the window's ends at a time:
 * the same operations in the same order, so the same doubles.
 */
static void EMG_K(ref_amp)(const double *raw, double *u, unsigned m, double var)
{
	typedef int64_t EMG_K(vl) __attribute__((vector_size(EMG_VL * 8)));
	const VD zd = { 0 };
	unsigned j = 0;

	for (; j < m && j < REF_SMOOTH; j++)
		u[j] = ref_amp1(raw, m, j, var);
	for (; j + EMG_VL + REF_SMOOTH <= m; j += EMG_VL) {
		VD p = LDD(raw + j - REF_SMOOTH), r;

		for (unsigned t = 1; t <= 2 * REF_SMOOTH; t++)
			p += LDD(raw + j - REF_SMOOTH + t);
		p = p / (double)(2 * REF_SMOOTH + 1) - var;
		for (int l = 0; l < EMG_VL; l++)
			r[l] = __builtin_sqrt(p[l]);
		const EMG_K(vl) pos = p > zd;
		STD(u + j, (VD)((EMG_K(vl))r & pos));
	}
	for (; j < m; j++)
		u[j] = ref_amp1(raw, m, j, var);
}

/*
 * The block (and rest) statistics of the chunk: per lane, shifted sums of c,
 * sums of x and x^2, and the powers of the W-sample sub-blocks.
 */
static void EMG_K(stats)(struct emg_onset *o, unsigned nf)
{
	struct hot *h = &o->h;
	const unsigned nlp = o->nlp, ng = (o->nlanes + EMG_VL - 1) / EMG_VL;
	const int cond = o->p.method != EMG_ONSET_BONATO; /* bonato: c = 0 */
	const float inv_w = 1.0f / (float)o->W;
	const VF zf = { 0 };
	const float *const xb = h->xb, *const cb = h->cb;
	int rest = 0;

	for (unsigned f = 0; f < nf; f++)
		rest |= o->fr[f].flags & FR_REST;
	for (unsigned g = 0; g < ng; g++) {
		const unsigned g0 = g * EMG_VL;
		VF sh = LDF(h->sh + g0), s1 = LDF(h->s1 + g0), s2 = LDF(h->s2 + g0);
		VF x1 = LDF(h->x1 + g0), xx = LDF(h->xx + g0), sq = LDF(h->sq + g0);
		VF sp1 = LDF(h->sp1 + g0), sp2 = LDF(h->sp2 + g0);

		for (unsigned f = 0; f < nf; f++) {
			const uint32_t fl = o->fr[f].flags;
			if (!(fl & FR_STATS))
				continue;
			const VF x = LDF(xb + (size_t)f * nlp + g0), x2 = x * x;
			const VF c = cond ? LDF(cb + (size_t)f * nlp + g0) : zf;
			if (fl & FR_BLK_FIRST)
				sh = c;
			const VF d = c - sh;
			s1 += d;
			s2 += d * d;
			x1 += x;
			xx += x2;
			sq += x2;
			if (fl & FR_SUB_END) {
				const VF p = sq * inv_w;
				sp1 += p;
				sp2 += p * p;
				sq = zf;
			}
		}
		STF(h->sh + g0, sh), STF(h->s1 + g0, s1), STF(h->s2 + g0, s2);
		STF(h->x1 + g0, x1), STF(h->xx + g0, xx), STF(h->sq + g0, sq);
		STF(h->sp1 + g0, sp1), STF(h->sp2 + g0, sp2);
		if (!rest)
			continue;
		/* a rest calibration runs: its sums in double, it may last minutes */
		VF rsh = LDF(h->rsh + g0);
		VD rs1 = LDD(h->rs1 + g0), rs2 = LDD(h->rs2 + g0);
		VD rx1 = LDD(h->rx1 + g0), rxx = LDD(h->rxx + g0);
		for (unsigned f = 0; f < nf; f++) {
			const uint32_t fl = o->fr[f].flags;
			if (!(fl & FR_REST))
				continue;
			const VF x = LDF(xb + (size_t)f * nlp + g0);
			const VF c = cond ? LDF(cb + (size_t)f * nlp + g0) : zf;
			if (fl & FR_REST_FIRST)
				rsh = c;
			const VD d = __builtin_convertvector(c, VD) - __builtin_convertvector(rsh, VD);
			const VD xd = __builtin_convertvector(x, VD);
			rs1 += d;
			rs2 += d * d;
			rx1 += xd;
			rxx += xd * xd;
		}
		STF(h->rsh + g0, rsh);
		STD(h->rs1 + g0, rs1), STD(h->rs2 + g0, rs2);
		STD(h->rx1 + g0, rx1), STD(h->rxx + g0, rxx);
	}
}

#undef VF
#undef VI
#undef VD
#undef AI
#undef LDF
#undef LDI
#undef LDD
#undef STF
#undef STI
#undef STD
