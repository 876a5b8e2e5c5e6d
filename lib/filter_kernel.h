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
 * core.  The arithmetic per channel is exactly section_step()'s in filter.c
 * (transposed direct form II), so any column width gives the same result.
 */

typedef float EMG_K(vf) __attribute__((vector_size(EMG_VL * 4)));
typedef float EMG_K(vfu) __attribute__((vector_size(EMG_VL * 4), aligned(4)));

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

/* Channels c .. c + 2 EMG_VL - 1 over n frames. */
static void EMG_K(column2)(const struct emg_filter *f, float *x, size_t xs, unsigned n, size_t c)
{
	const size_t zs = f->stride;

	for (unsigned fb = 0; fb < n; fb += FRAMES_PER_PASS) {
		unsigned nf = n - fb < FRAMES_PER_PASS ? n - fb : FRAMES_PER_PASS;
		float *xb = x + fb * xs;

		for (unsigned s = 0; s < f->nsec; s += 4) {
			float *z = f->z + 2 * s * zs + c;
			const float *o = s == 0 ? f->off + c : NULL;

			switch (f->nsec - s) {
			case 1:
				EMG_K(pass2)(f->sec + s, 1, xb, xs, nf, z, zs, o);
				break;
			case 2:
				EMG_K(pass2)(f->sec + s, 2, xb, xs, nf, z, zs, o);
				break;
			case 3:
				EMG_K(pass2)(f->sec + s, 3, xb, xs, nf, z, zs, o);
				break;
			default:
				EMG_K(pass2)(f->sec + s, 4, xb, xs, nf, z, zs, o);
				break;
			}
		}
	}
}

/* Every section over n frames of the column starting at channel c; frames xs floats apart. */
static void EMG_K(column)(const struct emg_filter *f, float *x, size_t xs, unsigned n, size_t c)
{
	const size_t zs = f->stride;

	for (unsigned fb = 0; fb < n; fb += FRAMES_PER_PASS) {
		unsigned nf = n - fb < FRAMES_PER_PASS ? n - fb : FRAMES_PER_PASS;
		float *xb = x + fb * xs;

		for (unsigned s = 0; s < f->nsec; s += 4) {
			float *z = f->z + 2 * s * zs + c;
			const float *o = s == 0 ? f->off + c : NULL;

			switch (f->nsec - s) {
			case 1:
				EMG_K(pass)(f->sec + s, 1, xb, xs, nf, z, zs, o);
				break;
			case 2:
				EMG_K(pass)(f->sec + s, 2, xb, xs, nf, z, zs, o);
				break;
			case 3:
				EMG_K(pass)(f->sec + s, 3, xb, xs, nf, z, zs, o);
				break;
			default:
				EMG_K(pass)(f->sec + s, 4, xb, xs, nf, z, zs, o);
				break;
			}
		}
	}
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
