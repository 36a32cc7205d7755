/*
 * quant_avx2.c -- stochastic rounding to int8 with AVX2: the generator
 * (splitmix64's finaliser) on four 64-bit lanes, its 64-bit products by
 * constants from three vpmuludq each, each word giving the 16-bit
 * uniforms of four elements; then a*inv + u (two roundings, as the
 * reference), floor, clamp and NaN -> 0 on eight floats at a time.
 * Bitwise the reference.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>
#include <math.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL
#define MIX_C1 0xbf58476d1ce4e5b9ULL
#define MIX_C2 0x94d049bb133111ebULL

/* the low 64 bits of x * c in each lane */
BNN_TARGET_AVX2 static inline __m256i mullo64(__m256i x, uint64_t c)
{
    const __m256i clo = _mm256_set1_epi64x((long long)(c & 0xffffffffu));
    const __m256i chi = _mm256_set1_epi64x((long long)(c >> 32));
    const __m256i lo = _mm256_mul_epu32(x, clo);
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(x, 32), clo),
                                           _mm256_mul_epu32(x, chi));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

/* bnn_mix64(seed, w) for the four lanes, given w * GOLDEN in each */
BNN_TARGET_AVX2 static inline __m256i mix4(__m256i seed, __m256i wg)
{
    __m256i z = _mm256_add_epi64(_mm256_xor_si256(seed, wg), _mm256_set1_epi64x((long long)GOLDEN));
    z = mullo64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), MIX_C1);
    z = mullo64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), MIX_C2);
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

/* eight floats -> eight int32 q: clamp(floor(a*inv + u)), NaN -> 0 */
BNN_TARGET_AVX2 static inline __m256i round8(__m256 a, __m256 inv, __m128i u16)
{
    const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(u16)),
                                   _mm256_set1_ps(1.0f / 65536.0f));
    const __m256 y = _mm256_add_ps(_mm256_mul_ps(a, inv), u);
    const __m256 nan = _mm256_cmp_ps(y, y, _CMP_UNORD_Q);
    __m256 f = _mm256_floor_ps(y);
    f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    f = _mm256_andnot_ps(nan, f);
    return _mm256_cvttps_epi32(f);
}

BNN_TARGET_AVX2 float bnn_absmax_f32_avx2(int64_t k, const float *a)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 acc = _mm256_setzero_ps();
    float lanes[8], amax;
    int64_t j = 0;
    int l;
    for (; j + 8 <= k; j += 8)     /* max_ps returns its second operand on NaN */
        acc = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(a + j), absmask), acc);
    _mm256_storeu_ps(lanes, acc);
    amax = 0.0f;
    for (l = 0; l < 8; l++) amax = lanes[l] > amax ? lanes[l] : amax;
    for (; j < k; j++) {
        const float v = fabsf(a[j]);
        amax = v > amax ? v : amax;
    }
    return amax;
}

BNN_TARGET_AVX2 void bnn_round_i8_avx2(int64_t k, const float *a, const float *inv,
                                       int64_t inv_step, uint64_t seed, uint64_t e0, int8_t *q,
                                       int64_t q_step)
{
    int64_t j = 0;
    /* up to the first element whose index is a multiple of 4, one at a time */
    while (j < k && ((e0 + (uint64_t)j) & 3) != 0) {
        bnn_round_i8_ref(1, a + j, inv + j * inv_step, 0, seed, e0 + (uint64_t)j, q + j * q_step, 1);
        j++;
    }
    if (j + 16 <= k) {
        const __m256i vseed = _mm256_set1_epi64x((long long)seed);
        const uint64_t w0 = (e0 + (uint64_t)j) >> 2;       /* generator word of element j */
        __m256i wg = _mm256_setr_epi64x((long long)(w0 * GOLDEN), (long long)((w0 + 1) * GOLDEN),
                                        (long long)((w0 + 2) * GOLDEN),
                                        (long long)((w0 + 3) * GOLDEN));
        const __m256i step = _mm256_set1_epi64x((long long)(4 * GOLDEN));
        const __m256 inv1 = _mm256_set1_ps(inv[0]);
        /* (the element index must not wrap within a block: the tail takes it) */
        for (; j + 16 <= k && e0 + (uint64_t)j <= UINT64_MAX - 15; j += 16) {
            const __m256i bits = mix4(vseed, wg);        /* 16 uniforms, in element order */
            __m256 i0 = inv1, i1 = inv1;
            __m256i q0, q1, p16;
            __m128i p8;
            if (inv_step != 0) {
                i0 = _mm256_loadu_ps(inv + j * inv_step);
                i1 = _mm256_loadu_ps(inv + (j + 8) * inv_step);
            }
            q0 = round8(_mm256_loadu_ps(a + j), i0, _mm256_castsi256_si128(bits));
            q1 = round8(_mm256_loadu_ps(a + j + 8), i1, _mm256_extracti128_si256(bits, 1));
            /* 16 int32 in [-127, 127] -> 16 bytes in order */
            p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
            p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
            if (q_step == 1) {
                _mm_storeu_si128((__m128i *)(q + j), p8);
            } else {
                int8_t tmp[16];
                int l;
                _mm_storeu_si128((__m128i *)tmp, p8);
                for (l = 0; l < 16; l++) q[(j + l) * q_step] = tmp[l];
            }
            wg = _mm256_add_epi64(wg, step);
        }
    }
    if (j < k)
        bnn_round_i8_ref(k - j, a + j, inv + j * inv_step, inv_step, seed, e0 + (uint64_t)j,
                         q + j * q_step, q_step);
}
#endif
