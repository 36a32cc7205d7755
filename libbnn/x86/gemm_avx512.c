/*
 * gemm_avx512.c -- AVX-512 VPOPCNTDQ XNOR-popcount micro-kernel.
 *
 * VPOPCNTQ counts the bits of each 64-bit lane, so one step over 8 words
 * of a row pair is XOR, VPOPCNTQ, VPADDQ into a 64-bit-lane accumulator.
 * Tiles are 4 rows of A by 4 rows of W: 16 accumulators, 4 A vectors and
 * one W vector live in the 32 ZMM registers, so each step loads 8 vectors
 * for 16 pair-steps.  The last kw % 8 words come from masked loads, which
 * neither fault on nor count the masked-out lanes.  Lanes are summed once
 * per tile at the end.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>

/* An R x C tile (R, C <= 4, compile-time after inlining). */
static inline __attribute__((always_inline)) BNN_TARGET_AVX512 void
tile(const int R, const int C, int64_t kw, const uint64_t *a, int64_t lda,
     const uint64_t *w, int64_t ldw, int32_t *pc, int64_t ldpc)
{
    __m512i acc[4][4];
    int64_t steps = kw / 8, s;
    __mmask8 tail = (__mmask8)((1u << (kw % 8)) - 1u);
    int r, c;
    for (r = 0; r < R; r++)
        for (c = 0; c < C; c++) acc[r][c] = _mm512_setzero_si512();
    /* One loop for full and tail steps: GCC then keeps the 16
     * accumulators in place (a separate tail block made it copy them). */
    for (s = 0; s < steps + (tail != 0); s++) {
        __mmask8 m = s < steps ? (__mmask8)0xff : tail;
        __m512i av[4];
        for (r = 0; r < R; r++)
            av[r] = _mm512_maskz_loadu_epi64(m, a + r * lda + s * 8);
        for (c = 0; c < C; c++) {
            __m512i wv = _mm512_maskz_loadu_epi64(m, w + c * ldw + s * 8);
            for (r = 0; r < R; r++)
                acc[r][c] = _mm512_add_epi64(
                    acc[r][c], _mm512_popcnt_epi64(_mm512_xor_si512(av[r], wv)));
        }
    }
    for (r = 0; r < R; r++)
        for (c = 0; c < C; c++)
            pc[r * ldpc + c] = (int32_t)_mm512_reduce_add_epi64(acc[r][c]);
}

BNN_TARGET_AVX512 void bnn_popc_strip_avx512(int64_t mr, int64_t ncols, int64_t kw,
                                             const uint64_t *a, int64_t lda,
                                             const uint64_t *w, int64_t ldw,
                                             int32_t *pc, int64_t ldpc)
{
    int64_t j;
    /* Dispatch on the row count once; columns in 4s, then one by one. */
#define STRIP(R)                                                          \
    do {                                                                  \
        for (j = 0; j + 4 <= ncols; j += 4)                               \
            tile(R, 4, kw, a, lda, w + j * ldw, ldw, pc + j, ldpc);       \
        for (; j < ncols; j++)                                            \
            tile(R, 1, kw, a, lda, w + j * ldw, ldw, pc + j, ldpc);       \
    } while (0)
    switch (mr) {
    case 4: STRIP(4); break;
    case 3: STRIP(3); break;
    case 2: STRIP(2); break;
    default: STRIP(1); break;
    }
#undef STRIP
}

BNN_TARGET_AVX512 void bnn_epi_f32_avx512(int64_t n, const int32_t *dot,
                                          const float *scale, const float *offset,
                                          float *out)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t j;
    for (j = 0; j < n; j += 16) {
        int64_t left = n - j;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff
                                 : (__mmask16)((1u << left) - 1u);
        /* masked lanes stay 0, so no spurious inexact flag from them */
        __m512 d = _mm512_maskz_cvtepi32_ps(m, _mm512_maskz_loadu_epi32(m, dot + j));
        __m512 s = scale ? _mm512_maskz_loadu_ps(m, scale + j) : one;
        __m512 o = offset ? _mm512_maskz_loadu_ps(m, offset + j)
                          : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(out + j, m, _mm512_fmadd_ps(d, s, o));
    }
}

#endif /* BNN_X86 */
