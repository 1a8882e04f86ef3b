/* The few hot loops that stream whole arrays get an AVX2 copy too, chosen at load time (GCC's
 * function multiversioning). Without FMA, so an element-wise loop computes the same products on
 * every path; a reduction may be summed in another order on each. */
#ifndef BF_SIMD_H
#define BF_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BF_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BF_SIMD_CLONES
#endif

#endif
