/*
 * u8_avx512vnni.c -- the direct 8-bit first-layer kernel with AVX-512
 * VNNI (dot_u8_strip contract in bnn_kernels.h; the same weight layout as
 * the AVX2 kernel: per block of 64 outputs, per tap pair, 64 x 2 int8).
 *
 * The 32 weight bytes of 16 outputs x 2 taps are sign-extended to 16 x 2
 * int16 (one 32-bit lane per output), the row's byte pair is broadcast as
 * two int16, and VPDPWSSD adds both products into the output's int32
 * lane: exact, no int16 partial sums to widen.  Four rows share each
 * widened weight vector (16 accumulators, 4 weight vectors, 4 broadcasts
 * in the 32 ZMM registers).
 */
#include "../bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>
#include <string.h>

#define BNN_TARGET_VNNI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2")))

BNN_TARGET_VNNI static inline __m512i pair16(const uint8_t *x)
{
    /* bytes x0, x1 -> int16 lanes (x0, x1) repeated over the vector */
    uint32_t v = (uint32_t)x[0] | ((uint32_t)x[1] << 16);
    return _mm512_set1_epi32((int)v);
}

/* R rows (1..4) against one block of 64 outputs. */
static inline __attribute__((always_inline)) BNN_TARGET_VNNI void
block(const int R, const uint8_t *x, int64_t ldx, int64_t pairs, const int8_t *wb,
      const int32_t *bias, int32_t *out, int64_t ldo, int64_t nj)
{
    __m512i acc[4][4];
    int64_t p;
    int r, b;
    for (b = 0; b < 4; b++) {
        __m512i bv = _mm512_loadu_si512((const void *)(bias + 16 * b));
        for (r = 0; r < R; r++) acc[r][b] = bv;
    }
    for (p = 0; p < pairs; p++) {
        const int8_t *wp = wb + p * 128;
        __m512i w[4];
        for (b = 0; b < 4; b++)
            w[b] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(wp + 32 * b)));
        for (r = 0; r < R; r++) {
            __m512i xb = pair16(x + r * ldx + 2 * p);
            for (b = 0; b < 4; b++) acc[r][b] = _mm512_dpwssd_epi32(acc[r][b], xb, w[b]);
        }
    }
    for (r = 0; r < R; r++) {
        if (nj == 64) {
            for (b = 0; b < 4; b++)
                _mm512_storeu_si512((void *)(out + r * ldo + 16 * b), acc[r][b]);
        } else {
            int32_t tmp[64];
            for (b = 0; b < 4; b++) _mm512_storeu_si512((void *)(tmp + 16 * b), acc[r][b]);
            memcpy(out + r * ldo, tmp, (size_t)nj * sizeof(int32_t));
        }
    }
}

BNN_TARGET_VNNI void bnn_dot_u8_strip_avx512vnni(int64_t mr, int64_t j0, int64_t ncols,
                                                 int64_t kp, const uint8_t *x, int64_t ldx,
                                                 const int8_t *wt, int64_t opad,
                                                 const int32_t *bias, int32_t *out, int64_t ldo)
{
    int64_t jb, pairs = kp / 2;
    (void)opad;
    for (jb = 0; jb < ncols; jb += 64) {
        const int8_t *wb = wt + ((j0 + jb) / 64) * kp * 64;
        int64_t nj = BNN_MIN(64, ncols - jb);
        const int32_t *bi = bias + j0 + jb;
        int32_t *o = out + jb;
        switch (mr) {
        case 4: block(4, x, ldx, pairs, wb, bi, o, ldo, nj); break;
        case 3: block(3, x, ldx, pairs, wb, bi, o, ldo, nj); break;
        case 2: block(2, x, ldx, pairs, wb, bi, o, ldo, nj); break;
        default: block(1, x, ldx, pairs, wb, bi, o, ldo, nj); break;
        }
    }
}
#endif
