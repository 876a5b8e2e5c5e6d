/* SPDX-License-Identifier: MIT */
/*
 * emg_env_run()'s loop over EMG_VL channels at a time; included by
 * envelope.c once per ISA level with EMG_VL and EMG_K() defined (simd.h).
 * Per channel the arithmetic is the scalar tail's exactly (no contraction:
 * a channel gives the same bits whatever its neighbours).
 */

typedef float EMG_K(vfu) __attribute__((vector_size(EMG_VL * 4), aligned(4)));
typedef double EMG_K(vdu) __attribute__((vector_size(EMG_VL * 8), aligned(8)));
typedef float EMG_K(vf) __attribute__((vector_size(EMG_VL * 4)));
typedef double EMG_K(vd) __attribute__((vector_size(EMG_VL * 8)));

static void EMG_K(run)(struct emg_env *e, const float *in, float *out, unsigned nframes)
{
	const unsigned nch = e->nch, nv = nch - nch % EMG_VL;
	double *sum = e->sum;
	double *pass = e->pass;

	for (unsigned f = 0; f < nframes; f++) {
		float *r = e->ring + (size_t)e->pos * nch;
		const float *x = in + (size_t)f * nch;
		float *y = out ? out + (size_t)f * nch : NULL;
		unsigned c;

		if (e->filled < e->window) {
			e->filled++;
			e->inv_n = 1.0 / e->filled;
		}
		const double inv_n = e->inv_n;

		for (c = 0; c < nv; c += EMG_VL) {
			const EMG_K(vf) xv = *(const EMG_K(vfu) *)(x + c), sq = xv * xv;
			const EMG_K(vd) sqd = __builtin_convertvector(sq, EMG_K(vd));
			EMG_K(vd) s = *(EMG_K(vdu) *)(sum + c) +
				      (sqd - __builtin_convertvector(*(EMG_K(vfu) *)(r + c), EMG_K(vd)));

			*(EMG_K(vfu) *)(r + c) = sq;
			*(EMG_K(vdu) *)(sum + c) = s;
			*(EMG_K(vdu) *)(pass + c) += sqd;
			if (y) {
				EMG_K(vd) m;
				EMG_K(vf) v;
				for (int j = 0; j < EMG_VL; j++)
					m[j] = s[j] > 0.0 ? s[j] : 0.0;
				m *= inv_n;
				for (int j = 0; j < EMG_VL; j++)
					m[j] = __builtin_sqrt(m[j]);
				v = __builtin_convertvector(m, EMG_K(vf));
				*(EMG_K(vfu) *)(y + c) = v;
			}
		}
		for (; c < nch; c++) {
			float sq = x[c] * x[c];
			double s = sum[c] + ((double)sq - (double)r[c]);
			r[c] = sq;
			sum[c] = s;
			pass[c] += sq;
			if (y) {
				s = s > 0.0 ? s : 0.0;
				y[c] = (float)sqrt(s * inv_n);
			}
		}

		if (++e->pos == e->window) {
			/* The pass now covers exactly the ring: resynchronise. */
			e->pos = 0;
			for (c = 0; c < nch; c++) {
				sum[c] = pass[c];
				pass[c] = 0.0;
			}
		}
	}
}
