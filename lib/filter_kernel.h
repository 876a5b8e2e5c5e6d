/* SPDX-License-Identifier: MIT */
/*
 * The biquad cascade for EMG_VL channels at a time; included by filter.c
 * once per ISA level with EMG_VL and EMG_K() defined (see simd.h).
 *
 * Work order: a column of EMG_VL channels at a time; within it, runs of
 * FRAMES_PER_PASS frames; within those, the sections four at a time with
 * their delay lines held in registers while the frames stream through.  The
 * frames of a column stay in L1 between the passes, each section's state is
 * loaded and stored once per run of frames instead of once per frame, and
 * the four sections of one frame overlap the next frame in the out-of-order
 * core.  The arithmetic per channel is exactly the run loop's in filter.c
 * (transposed direct form II), so any column width gives the same result.
 * The lowest notches run as gated band-passes (npass), a group of their own.
 */

typedef float EMG_K(vf) __attribute__((vector_size(EMG_VL * 4)));
typedef float EMG_K(vfu) __attribute__((vector_size(EMG_VL * 4), aligned(4)));
typedef int32_t EMG_K(vi) __attribute__((vector_size(EMG_VL * 4)));

/* G (1..4, a constant after inlining) sections over nf frames of one column;
 * off (or NULL): the column's offsets, taken off each frame first (note_offset()). */
static inline __attribute__((always_inline)) void
EMG_K(pass)(const struct biquad *bq, const unsigned G, float *x, size_t xs, unsigned nf, float *z,
	    size_t zs, const float *off)
{
	EMG_K(vf) z1[4], z2[4];
	const EMG_K(vf) o = off ? *(const EMG_K(vfu) *)off : (EMG_K(vf)){ 0 };

#pragma GCC unroll 4
	for (unsigned g = 0; g < G; g++) {
		z1[g] = *(EMG_K(vf) *)(z + 2 * g * zs);
		z2[g] = *(EMG_K(vf) *)(z + (2 * g + 1) * zs);
	}
	for (unsigned f = 0; f < nf; f++) {
		EMG_K(vf) v = *(EMG_K(vfu) *)(x + f * xs) - o;

	#pragma GCC unroll 4
	for (unsigned g = 0; g < G; g++) {
			EMG_K(vf) y = bq[g].b0 * v + z1[g];

			z1[g] = bq[g].b1 * v - bq[g].a1 * y + z2[g];
			z2[g] = bq[g].b2 * v - bq[g].a2 * y;
			v = y;
		}
		*(EMG_K(vfu) *)(x + f * xs) = v;
	}
#pragma GCC unroll 4
	for (unsigned g = 0; g < G; g++) {
		*(EMG_K(vf) *)(z + 2 * g * zs) = z1[g];
		*(EMG_K(vf) *)(z + (2 * g + 1) * zs) = z2[g];
	}
}

/* The same for two columns at once (channels c and c + EMG_VL): twice the independent
 * work per frame, which hides the latency of each section's recurrence. */
static inline __attribute__((always_inline)) void
EMG_K(pass2)(const struct biquad *bq, const unsigned G, float *x, size_t xs, unsigned nf, float *z,
	     size_t zs, const float *off)
{
	EMG_K(vf) z1[4], z2[4], w1[4], w2[4];
	const EMG_K(vf) o = off ? *(const EMG_K(vfu) *)off : (EMG_K(vf)){ 0 };
	const EMG_K(vf) p = off ? *(const EMG_K(vfu) *)(off + EMG_VL) : (EMG_K(vf)){ 0 };

#pragma GCC unroll 4
	for (unsigned g = 0; g < G; g++) {
		z1[g] = *(EMG_K(vf) *)(z + 2 * g * zs);
		z2[g] = *(EMG_K(vf) *)(z + (2 * g + 1) * zs);
		w1[g] = *(EMG_K(vf) *)(z + 2 * g * zs + EMG_VL);
		w2[g] = *(EMG_K(vf) *)(z + (2 * g + 1) * zs + EMG_VL);
	}
	for (unsigned f = 0; f < nf; f++) {
		EMG_K(vf) v = *(EMG_K(vfu) *)(x + f * xs) - o;
		EMG_K(vf) u = *(EMG_K(vfu) *)(x + f * xs + EMG_VL) - p;

#pragma GCC unroll 4
		for (unsigned g = 0; g < G; g++) {
			EMG_K(vf) y = bq[g].b0 * v + z1[g];
			EMG_K(vf) t = bq[g].b0 * u + w1[g];

			z1[g] = bq[g].b1 * v - bq[g].a1 * y + z2[g];
			w1[g] = bq[g].b1 * u - bq[g].a1 * t + w2[g];
			z2[g] = bq[g].b2 * v - bq[g].a2 * y;
			w2[g] = bq[g].b2 * u - bq[g].a2 * t;
			v = y;
			u = t;
		}
		*(EMG_K(vfu) *)(x + f * xs) = v;
		*(EMG_K(vfu) *)(x + f * xs + EMG_VL) = u;
	}
#pragma GCC unroll 4
	for (unsigned g = 0; g < G; g++) {
		*(EMG_K(vf) *)(z + 2 * g * zs) = z1[g];
		*(EMG_K(vf) *)(z + (2 * g + 1) * zs) = z2[g];
		*(EMG_K(vf) *)(z + 2 * g * zs + EMG_VL) = w1[g];
		*(EMG_K(vf) *)(z + (2 * g + 1) * zs + EMG_VL) = w2[g];
	}
}

#include "simd_lanes.h"

/*
 * G (1..4) gated notches over nf frames of `cols` (1 or 2) columns from
 * channel c, `at` the stream's frame index of the first ("Gated notches",
 * filter.c).  Each is v - y, y the output of the band-pass the notch takes
 * out (its poles, b = k [1 0 -1], k = 1 - b0 of the notch): the notch,
 * written in states scaled so that the first is what the band-pass expects
 * to put out (s = z / (1 - k) of the transposed direct form), p:
 *
 *	y = p + k (v - p),	s1 = s2 + 2 cos(w0) y,	s2 = p - 2 y
 *
 * Fed its own output (v = p) the band-pass's poles sit on the unit circle
 * at w0: it would run on without loss, a free-running copy of the hum it
 * learnt - which is what the snapshot does, taken as an episode of outliers
 * begins (samples where both v and v - sum(p) lie beyond lim, over a share
 * of the recent ones; looked for every GATE_EVERY frames) and turned on to
 * the episode's end (gate_turn()).  An episode that lasted GATE_HOLD_S to
 * GATE_MAX_S (a contraction; a QRS is shorter) leaves the states where the
 * snapshot is: what it put into them is forgotten, and does not ring on.
 * ilim = 1 / lim (0: no gate yet).
 */
static inline __attribute__((always_inline)) void
EMG_K(npass)(const struct emg_filter *f, const struct biquad *bq, const unsigned G,
	     const unsigned cols, float *x, size_t xs, unsigned nf, float *z, size_t zs, size_t c,
	     uint64_t at)
{
	const EMG_K(vf) one = (EMG_K(vf)){ 0 } + 1.0f, zero = { 0 };
	const EMG_K(vi) izero = { 0 }, hold = izero + (int32_t)f->hold_n;
	const EMG_K(vi) cap = izero + (int32_t)f->hold_max;
	float *const snap = f->snap + c;
	EMG_K(vf) s1[2][4], s2[2][4], il[2], d[2], dv[2];
	EMG_K(vi) cnt[2];
	float k[4], c2[4];

	for (unsigned g = 0; g < G; g++) {
		k[g] = 1.0f - bq[g].b0;       /* alpha / (1 + alpha) */
		c2[g] = -bq[g].a1 / bq[g].b0; /* 2 cos(w0) */
	}
	for (unsigned q = 0; q < cols; q++) {
		il[q] = *(const EMG_K(vf) *)(f->ilim + c + q * EMG_VL);
		d[q] = *(const EMG_K(vf) *)(f->dens + c + q * EMG_VL);
		dv[q] = *(const EMG_K(vf) *)(f->dens + f->stride + c + q * EMG_VL);
		cnt[q] = *(const EMG_K(vi) *)(f->cnt + c + q * EMG_VL);
		for (unsigned g = 0; g < G; g++) {
			s1[q][g] = *(EMG_K(vf) *)(z + 2 * g * zs + q * EMG_VL);
			s2[q][g] = *(EMG_K(vf) *)(z + (2 * g + 1) * zs + q * EMG_VL);
		}
	}
	for (unsigned fr = 0; fr < nf; fr++) {
#pragma GCC unroll 2
		for (unsigned q = 0; q < cols; q++) {
			EMG_K(vf) v = *(EMG_K(vfu) *)(x + fr * xs + q * EMG_VL);

			if (!((at + fr) % GATE_EVERY)) {
				/* an outlier: 1, else 0; their share, smoothed over GATE_DENS_S */
				EMG_K(vf) e = v;
#pragma GCC unroll 4
				for (unsigned g = 0; g < G; g++)
					e -= s1[q][g];
				const EMG_K(vf) av = EMG_K(vabs)(v), ae = EMG_K(vabs)(e);
				const EMG_K(vf) out = EMG_K(sel)(ae < av, ae, av) * il[q];
				d[q] += f->dens_a * (EMG_K(sel)(out > one, one, zero) - d[q]);
				/* ... and of samples beyond lim at the input alone (a hum too) */
				dv[q] += f->dens_a * (EMG_K(sel)(av * il[q] > one, one, zero) - dv[q]);
				/* episodes, cnt frames since one began (0: none; counted past
				 * cap), end once both shares are low: a contraction's input
				 * falls back as it ends, a new hum's does not while it is
				 * learnt - that one runs out at GATE_MAX_S, not forgotten */
				const EMG_K(vi) ends = (cnt[q] != izero) & (d[q] < GATE_DENS_OFF) &
						       ((dv[q] < GATE_DENS_OFF) | (cnt[q] > cap));
				const EMG_K(vi) start = (cnt[q] == izero) & (d[q] > GATE_DENS_ON);
				/* forgotten: one of GATE_HOLD_S to GATE_MAX_S */
				const EMG_K(vi) forget = ends & (cnt[q] >= hold) & (cnt[q] <= cap);

				if (EMG_K(any)(forget)) /* a contraction ended (rare) */
					for (unsigned g = 0; g < G; g++) {
						EMG_K(vf) a1 = *(EMG_K(vf) *)(snap + 2 * g * zs + q * EMG_VL);
						EMG_K(vf) a2 = *(EMG_K(vf) *)(snap + (2 * g + 1) * zs + q * EMG_VL);

						for (int j = 0; j < EMG_VL; j++)
							if (forget[j]) {
								float u = a1[j], w = a2[j];

								gate_turn(&u, &w, c2[g], cnt[q][j]);
								a1[j] = u;
								a2[j] = w;
							}
						s1[q][g] = EMG_K(sel)(forget, a1, s1[q][g]);
						s2[q][g] = EMG_K(sel)(forget, a2, s2[q][g]);
					}
				if (EMG_K(any)(start)) /* the snapshot, as an episode begins */
					for (unsigned g = 0; g < G; g++) {
						EMG_K(vf) *p1 = (EMG_K(vf) *)(snap + 2 * g * zs + q * EMG_VL);
						EMG_K(vf) *p2 = (EMG_K(vf) *)(snap + (2 * g + 1) * zs + q * EMG_VL);

						*p1 = EMG_K(sel)(start, s1[q][g], *p1);
						*p2 = EMG_K(sel)(start, s2[q][g], *p2);
					}
				cnt[q] = (cnt[q] + (((cnt[q] != izero) | start) & (cnt[q] <= cap) &
						    GATE_EVERY)) & ~ends;
			}
#pragma GCC unroll 4
			for (unsigned g = 0; g < G; g++) {
				const EMG_K(vf) p = s1[q][g];
				const EMG_K(vf) y = p + k[g] * (v - p);

				s1[q][g] = s2[q][g] + c2[g] * y;
				s2[q][g] = p - 2.0f * y;
				v = v - y;
			}
			*(EMG_K(vfu) *)(x + fr * xs + q * EMG_VL) = v;
		}
	}
	for (unsigned q = 0; q < cols; q++) {
		*(EMG_K(vf) *)(f->dens + c + q * EMG_VL) = d[q];
		*(EMG_K(vf) *)(f->dens + f->stride + c + q * EMG_VL) = dv[q];
		*(EMG_K(vi) *)(f->cnt + c + q * EMG_VL) = cnt[q];
		for (unsigned g = 0; g < G; g++) {
			*(EMG_K(vf) *)(z + 2 * g * zs + q * EMG_VL) = s1[q][g];
			*(EMG_K(vf) *)(z + (2 * g + 1) * zs + q * EMG_VL) = s2[q][g];
		}
	}
}

/* Sections [s0, s1) over nf frames of `cols` columns from channel c: plain
 * biquads, or with `gated` the notches (npass; `at` the stream's frame index
 * of the first). */
static inline __attribute__((always_inline)) void
EMG_K(sections)(const struct emg_filter *f, unsigned s0, unsigned s1, const int gated,
		const unsigned cols, float *xb, size_t xs, unsigned nf, size_t c, uint64_t at)
{
	const size_t zs = f->stride;

	for (unsigned s = s0; s < s1; s += 4) {
		float *z = f->z + 2 * s * zs + c;
		const float *o = s == 0 ? f->off + c : NULL;
		const unsigned G = s1 - s < 4 ? s1 - s : 4;

#define EMG_SEC(G)                                                                            \
	do {                                                                                  \
		if (gated)                                                                    \
			EMG_K(npass)(f, f->sec + s, G, cols, xb, xs, nf, z, zs, c, at);       \
		else if (cols == 2)                                                           \
			EMG_K(pass2)(f->sec + s, G, xb, xs, nf, z, zs, o);                    \
		else                                                                          \
			EMG_K(pass)(f->sec + s, G, xb, xs, nf, z, zs, o);                     \
	} while (0)
		switch (G) {
		case 1:
			EMG_SEC(1);
			break;
		case 2:
			EMG_SEC(2);
			break;
		case 3:
			EMG_SEC(3);
			break;
		default:
			EMG_SEC(4);
			break;
		}
#undef EMG_SEC
	}
}

/*
 * Every section over n frames of `cols` columns from channel c, frames xs
 * floats apart: the high-pass, the gated notches (the lowest GATE_NOTCHES),
 * then the other notches and the low-pass; the gated notches' output power
 * is summed into f->acc for the gate's level (gate_update(), filter.c).
 */
static inline __attribute__((always_inline)) void
EMG_K(columns)(const struct emg_filter *f, const unsigned cols, float *x, size_t xs, unsigned n,
	       size_t c)
{
	const unsigned n0 = f->nhp, ng = f->nnotch < f->ngate ? f->nnotch : f->ngate;
	const unsigned n1 = n0 + ng;

	/* passes end where the stream's frame index is a multiple of
	 * FRAMES_PER_PASS, whatever the caller's blocks: the same passes, the
	 * same output */
	for (unsigned fb = 0, nf; fb < n; fb += nf) {
		const uint64_t at = f->pos + fb;
		float *xb = x + fb * xs;

		nf = FRAMES_PER_PASS - (unsigned)(at % FRAMES_PER_PASS);
		nf = nf < n - fb ? nf : n - fb;
		EMG_K(sections)(f, 0, n0, 0, cols, xb, xs, nf, c, at);
		if (n1 > n0) {
			EMG_K(sections)(f, n0, n1, 1, cols, xb, xs, nf, c, at);
			for (unsigned q = 0; q < cols; q++) {
				EMG_K(vf) a = *(EMG_K(vf) *)(f->acc + c + q * EMG_VL);

				for (unsigned j = 0; j < nf; j++) {
					const EMG_K(vf) v = *(EMG_K(vfu) *)(xb + j * xs + q * EMG_VL);
					a += v * v;
				}
				*(EMG_K(vf) *)(f->acc + c + q * EMG_VL) = a;
			}
		}
		EMG_K(sections)(f, n1, f->nsec, 0, cols, xb, xs, nf, c, at);
	}
}

/* Channels c .. c + 2 EMG_VL - 1 over n frames. */
static void EMG_K(column2)(const struct emg_filter *f, float *x, size_t xs, unsigned n, size_t c)
{
	EMG_K(columns)(f, 2, x, xs, n, c);
}

/* Every section over n frames of the column starting at channel c; frames xs floats apart. */
static void EMG_K(column)(const struct emg_filter *f, float *x, size_t xs, unsigned n, size_t c)
{
	EMG_K(columns)(f, 1, x, xs, n, c);
}

/* nframes (<= FLUSH_EVERY) interleaved frames: whole columns in place, the
 * last partial column through the zero-padded scratch f->tail. */
static void EMG_K(block)(struct emg_filter *f, float *frames, unsigned n)
{
	const size_t nch = f->nch;
	size_t c;

	for (c = 0; c + 2 * EMG_VL <= nch; c += 2 * EMG_VL)
		EMG_K(column2)(f, frames + c, nch, n, c);
	for (; c + EMG_VL <= nch; c += EMG_VL)
		EMG_K(column)(f, frames + c, nch, n, c);
	if (c < nch) {
		const size_t w = nch - c;

		for (unsigned k = 0; k < n; k++) {
			memcpy(f->tail + (size_t)k * EMG_VL, frames + k * nch + c, w * sizeof(float));
			memset(f->tail + (size_t)k * EMG_VL + w, 0, (EMG_VL - w) * sizeof(float));
		}
		EMG_K(column)(f, f->tail, EMG_VL, n, c);
		for (unsigned k = 0; k < n; k++)
			memcpy(frames + k * nch + c, f->tail + (size_t)k * EMG_VL, w * sizeof(float));
	}
}
