/* SPDX-License-Identifier: MIT */
/*
 * emg_cp: least-squares step or ramp change points (changepoint.h).
 */
#include "changepoint.h"

/* Ramp lengths tried, in entries (0: a step), their 1 / (R + 1), and a
 * whole ramp's sums of h and h^2 (fit_at()) - folded at compile time with
 * the operations fit_at() would do, in the same order: the same doubles,
 * for ~40 % fewer operations per candidate. */
#define INV1(R) (1.0 / ((R) + 1.0))
#define SH(R) ((double)(R) * ((double)(R) + 1) * 0.5 * INV1(R))
#define SHH(R) ((double)(R) * ((double)(R) + 1) * (2.0 * (R) + 1) * (1.0 / 6.0) * INV1(R) * INV1(R))
#define GRID(F) { F(0), F(1), F(2), F(3), F(5), F(8), F(12), F(18), F(27), F(40), F(60), F(90), \
		  F(135), F(200), F(EMG_CP_RAMP_MAX) }
#define ID(R) R
static const unsigned grid[] = GRID(ID);
#define NGRID (sizeof(grid) / sizeof(grid[0]))
static const double grid_inv[NGRID] = GRID(INV1);
static const double grid_sh[NGRID] = GRID(SH);
static const double grid_shh[NGRID] = GRID(SHH);
#undef ID
#undef GRID
#undef SHH
#undef SH
#undef INV1

/* The best fits so far: overall (any ramp) and of a step alone. */
struct fit_best {
	double best, best_step;
	long kbest, kstep;
	unsigned ramp;
};

/* Best fit of the ramp grid with its change at entry k: updates *fb. */
static inline void fit_at(const double *c0, const double *c1, unsigned m, double inv_m, unsigned k,
			  struct fit_best *fb)
{
	const double kd = k, md = m, c0m = c0[m], c0k = c0[k], c1k = c1[k];

	for (unsigned g = 0; g < NGRID; g++) {
		const double r = grid_inv[g];
		const int whole = k + grid[g] < m; /* else the ramp is cut by the window's end */
		const unsigned e = whole ? k + grid[g] : m;
		const double ed = e, q = ed - kd;
		/* sums over the window of u h, h and h^2 */
		const double uh = ((c1[e] - c1k) - (kd - 1.0) * (c0[e] - c0k)) * r + (c0m - c0[e]);
		const double sh = (whole ? grid_sh[g] : q * (q + 1) * 0.5 * r) + (md - ed);
		const double shh = (whole ? grid_shh[g] : q * (q + 1) * (2.0 * q + 1) * (1.0 / 6.0) * r * r) +
				   (md - ed);
		/* with a free rest level b: u = b + A h; the noise keeps the
		 * amplitude estimates at rest above zero, and a model pinned
		 * to zero would lean every step into a ramp that starts early */
		const double num = uh - c0m * sh * inv_m, den = shh - sh * sh * inv_m;
		/* score num^2 / den, compared by cross-multiplying: one division per
		 * improvement instead of one per candidate */
		if (num > 0 && den > 1e-12) {
			if (num * num > fb->best * den) {
				fb->best = num * num / den;
				fb->kbest = (long)k;
				fb->ramp = grid[g];
			}
			if (!grid[g] && num * num > fb->best_step * den) {
				fb->best_step = num * num / den;
				fb->kstep = (long)k;
			}
		}
		if (!whole)
			break; /* longer ramps see the same entries */
	}
}

/* fit_at() for k = k0, k0 + step, ... <= k1. */
static void fit_span(const double *c, unsigned m, unsigned k0, unsigned k1, unsigned step,
		     struct fit_best *fb)
{
	const double inv_m = 1.0 / m;

	for (unsigned k = k0; k <= k1; k += step)
		fit_at(c, c + m + 1, m, inv_m, k, fb);
}

long emg_cp_fit(const double *u, unsigned m, double *c, double margin, unsigned *ramp)
{
	double *c0 = c, *c1 = c + m + 1;
	double uu = 0;
	struct fit_best fb = { 0, 0, -1, -1, 0 };
	/* coarse to fine: every stride-th k, then every k around the best one -
	 * the score is smooth in k, and this keeps a burst's fit to ~100
	 * positions whatever the window (the fit runs on the DSP thread) */
	const unsigned stride = m > 64 ? m / 32 : 1;
	double s0 = 0, s1 = 0;

	*ramp = 0;
	if (m < 2)
		return -1;

	/* the running sums in registers: read back from c0 and c1, each step
	 * would wait for the store before it (the compiler must assume the
	 * scratch may alias u, which the header rules out) */
	c0[0] = c1[0] = 0;
	for (unsigned j = 0; j < m; j++) {
		s0 += u[j];
		s1 += u[j] * (double)j;
		c0[j + 1] = s0;
		c1[j + 1] = s1;
		uu += u[j] * u[j];
	}

	fit_span(c, m, 0, m - 1, stride, &fb);
	if (stride > 1 && fb.kbest >= 0) {
		unsigned lo = (unsigned)fb.kbest > stride ? (unsigned)fb.kbest - stride : 0;
		unsigned hi = (unsigned)fb.kbest + stride < m ? (unsigned)fb.kbest + stride : m - 1;
		/* the step's own best, too: the ramp-versus-step test compares the two */
		const long ks = fb.kstep;
		unsigned slo = ks > (long)stride ? (unsigned)ks - stride : 0;
		unsigned shi = ks >= 0 && (unsigned)ks + stride < m ? (unsigned)ks + stride : m - 1;

		fit_span(c, m, lo, hi, 1, &fb);
		if (ks >= 0) { /* around it, less what was searched just above */
			if (slo < lo)
				fit_span(c, m, slo, shi < lo ? shi : lo - 1, 1, &fb);
			if (shi > hi)
				fit_span(c, m, slo > hi ? slo : hi + 1, shi, 1, &fb);
		}
	}
	/*
	 * A ramp has one parameter more than a step: it must explain clearly
	 * more (`margin` residual variances: the onset detector's 4 is a
	 * likelihood-ratio test at ~2 sigma), or noise before a step leans the
	 * fit into a ramp that starts early.
	 */
	*ramp = fb.ramp;
	if (fb.kbest >= 0 && fb.ramp && m > 3) {
		double sse = uu - c0[m] * c0[m] / m - fb.best;
		if (fb.best - fb.best_step <= margin * (sse > 0 ? sse : 0) / (m - 3)) {
			*ramp = 0;
			return fb.kstep;
		}
	}
	return fb.kbest;
}
