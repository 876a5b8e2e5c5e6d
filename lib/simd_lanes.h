/* SPDX-License-Identifier: MIT */
/*
 * Lane helpers the SIMD kernels share (onset_kernel.h, filter_kernel.h),
 * written against their EMG_K(vf) / EMG_K(vi) typedefs (float and int32
 * vectors of EMG_VL lanes) and included after them, once per ISA level
 * (simd_kernels.h).  The including .c file includes <immintrin.h> on x86.
 */

/* Lane-wise m ? a : b, m a comparison's mask (0 or -1 per lane). */
static inline __attribute__((always_inline)) EMG_K(vf) EMG_K(sel)(EMG_K(vi) m, EMG_K(vf) a, EMG_K(vf) b)
{
	return (EMG_K(vf))(((EMG_K(vi))a & m) | ((EMG_K(vi))b & ~m));
}

/* Lane-wise |a| (the sign bit cleared). */
static inline __attribute__((always_inline)) EMG_K(vf) EMG_K(vabs)(EMG_K(vf) a)
{
	return (EMG_K(vf))((EMG_K(vi))a & ((EMG_K(vi)){ 0 } + 0x7fffffff));
}

/* Whether any lane of the mask m is set: one test instruction where the ISA has it. */
static inline __attribute__((always_inline)) int EMG_K(any)(EMG_K(vi) m)
{
#if defined(__AVX512F__) && EMG_VL == 16
	return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
#elif defined(__AVX__) && EMG_VL == 8
	return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#elif defined(__SSE4_1__) && EMG_VL == 4
	return !_mm_testz_si128((__m128i)m, (__m128i)m);
#else
	int32_t r = 0;

	for (int j = 0; j < EMG_VL; j++)
		r |= m[j];
	return r != 0;
#endif
}
