/* SPDX-License-Identifier: MIT */
/*
 * EMG_K(any): whether any lane of an int32 mask vector EMG_K(vi) is set - one
 * test instruction where the ISA has it.  Included by the kernel headers
 * (onset_kernel.h, filter_kernel.h) after their EMG_K(vi) typedef, once per
 * ISA level (simd_kernels.h); the including .c file includes <immintrin.h>
 * on x86.
 */
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
