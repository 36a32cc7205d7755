/*
 * probe_avx512.c -- the AVX-512 peak probe: XOR + VPOPCNTQ + VPADDQ on 16
 * independent register accumulators (512 binary multiply-accumulates per
 * accumulator step), with no memory traffic.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>

BNN_TARGET_AVX512 uint64_t bnn_probe_avx512(int64_t iters, uint64_t *sink)
{
    __m512i acc[16], x = _mm512_set1_epi64((long long)0x9e3779b97f4a7c15ULL);
    const __m512i step = _mm512_set1_epi64(0x3c6ef372fe94f82bLL);
    uint64_t s = 0;
    int64_t it;
    int i;
    for (i = 0; i < 16; i++) acc[i] = _mm512_set1_epi64(i);
    for (it = 0; it < iters; it++) {
        x = _mm512_add_epi64(x, step);
        for (i = 0; i < 16; i++)
            acc[i] = _mm512_add_epi64(acc[i],
                _mm512_popcnt_epi64(_mm512_xor_si512(acc[i], x)));
    }
    for (i = 0; i < 16; i++) s += (uint64_t)_mm512_reduce_add_epi64(acc[i]);
    *sink = s;
    return (uint64_t)iters * 16u * 512u;
}

#endif /* BNN_X86 */
