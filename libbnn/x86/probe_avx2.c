/*
 * probe_avx2.c -- the AVX2 peak probe: the GEMM kernel's inner step (XOR,
 * nibble-lookup popcount, byte add) on 10 independent register
 * accumulators, with no memory traffic.  Each step of each accumulator is
 * 256 binary multiply-accumulates.
 */
#include "x86/avx2_internal.h"

#if BNN_X86

BNN_TARGET_AVX2 uint64_t bnn_probe_avx2(int64_t iters, uint64_t *sink)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                                         2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                         1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i mask = _mm256_set1_epi8(0x0f);
    __m256i acc[10], x = _mm256_set1_epi64x((long long)0x9e3779b97f4a7c15ULL);
    const __m256i step = _mm256_set1_epi64x(0x3c6ef372fe94f82bLL);
    uint64_t out[4], s = 0;
    int64_t it;
    int i;
    for (i = 0; i < 10; i++) acc[i] = _mm256_set1_epi8((char)i);
    for (it = 0; it < iters; it++) {
        x = _mm256_add_epi64(x, step);
        for (i = 0; i < 10; i++)
            acc[i] = _mm256_add_epi8(acc[i],
                popcnt8(_mm256_xor_si256(acc[i], x), lut, mask));
    }
    for (i = 1; i < 10; i++) acc[0] = _mm256_xor_si256(acc[0], acc[i]);
    _mm256_storeu_si256((__m256i *)out, acc[0]);
    for (i = 0; i < 4; i++) s += out[i];
    *sink = s;
    return (uint64_t)iters * 10u * 256u;
}

#endif /* BNN_X86 */
