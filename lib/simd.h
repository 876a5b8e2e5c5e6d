/* SPDX-License-Identifier: MIT */
/*
 * simd: build a kernel for several x86-64 ISA levels, pick one at run time.
 *
 * A module includes its kernel file (written with GCC vector extensions for
 * EMG_VL lanes and naming everything through EMG_K()) once for the baseline
 * and, with GCC on x86-64, again inside "#pragma GCC target" regions for
 * x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512).  emg_simd_level() then
 * says which ones the CPU runs, once, when the module's object is created.
 * No -march flag is needed and the binary still runs on any x86-64.
 *
 * The levels differ in rounding only where FMA fuses a multiply and an add;
 * EMG_SIMD=0 (or 3) in the environment caps the level, to compare or to
 * reproduce results across machines.
 */
#ifndef EMG_SIMD_H
#define EMG_SIMD_H

#include <stdlib.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 11
#define EMG_SIMD_X86 1
#else
#define EMG_SIMD_X86 0
#endif

/* 0 baseline, 3 x86-64-v3, 4 x86-64-v4 (AVX-512 F/VL/DQ/BW). */
static inline int emg_simd_level(void)
{
	int level = 0;
	const char *cap = getenv("EMG_SIMD");

#if EMG_SIMD_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		level = 3;
	if (level == 3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
		level = 4;
#endif
	if (cap && *cap && atoi(cap) < level)
		level = atoi(cap) >= 4 ? 4 : atoi(cap) >= 3 ? 3 : 0;
	return level;
}

#endif
