/* SPDX-License-Identifier: MIT */
/*
 * Instantiate a kernel header once per ISA level (see simd.h).
 *
 *   #define EMG_KERNEL "filter_kernel.h"
 *   #define EMG_KERNEL_CONTRACT   (optional: fuse multiply-adds on v3/v4)
 *   #include "simd_kernels.h"
 *
 * The kernel header is written against EMG_VL (lanes per vector) and
 * EMG_K(name) (its function names); this file defines them for the
 * baseline (4 lanes), x86-64-v3 (8), x86-64-v4 (16) and x86-64-v4 with
 * 8 lanes, giving name_base, name_v3, name_v4 and name_v4_8.  One place
 * for the pragmas, so every module gets the same ISA variants.
 */
#ifndef EMG_KERNEL
#error "define EMG_KERNEL to the kernel header before including simd_kernels.h"
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#define EMG_VL 4
#define EMG_K(name) name##_base
#include EMG_KERNEL
#undef EMG_VL
#undef EMG_K
#if EMG_SIMD_X86
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#ifdef EMG_KERNEL_CONTRACT
#pragma GCC optimize("fp-contract=fast")
#endif
#define EMG_VL 8
#define EMG_K(name) name##_v3
#include EMG_KERNEL
#undef EMG_VL
#undef EMG_K
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
#ifdef EMG_KERNEL_CONTRACT
#pragma GCC optimize("fp-contract=fast")
#endif
#define EMG_VL 16
#define EMG_K(name) name##_v4
#include EMG_KERNEL
#undef EMG_VL
#undef EMG_K
#define EMG_VL 8
#define EMG_K(name) name##_v4_8
#include EMG_KERNEL
#undef EMG_VL
#undef EMG_K
#pragma GCC pop_options
#endif
#pragma GCC diagnostic pop
#undef EMG_KERNEL
#undef EMG_KERNEL_CONTRACT
