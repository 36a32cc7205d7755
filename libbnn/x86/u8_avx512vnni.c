/*
 * u8_avx512vnni.c -- the direct 8-bit first-layer kernel with AVX-512
 * VNNI (dot_u8_strip contract in bnn_kernels.h).
 *
 * It reads the weights' sign-bit copy (one bit per weight, an eighth of
 * the int8 layout's bytes, so it stays in cache): per group of 4 taps,
 * each 64-bit word expands by VPMOVM2B to 64 bytes of 0 / -1, OR 1 makes
 * them +1 / -1 -- 16 outputs x 4 taps -- and VPDPBUSD adds the 4 byte
 * products of each output into its int32 lane: exact, 64 MACs per
 * instruction.  Four rows share each expanded weight vector (16
 * accumulators, 4 weight vectors in the 32 ZMM registers).
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>
#include <string.h>

#define BNN_TARGET_VNNI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2")))

/* R rows (1..4) against one block of 64 outputs. */
static inline __attribute__((always_inline)) BNN_TARGET_VNNI void
block(const int R, const uint8_t *x, int64_t ldx, int64_t quads, const uint64_t *wq,
      const int32_t *bias, int32_t *out, int64_t ldo, int64_t nj)
{
    const __m512i one = _mm512_set1_epi8(1);
    __m512i acc[4][4];
    int64_t q;
    int r, b;
    for (b = 0; b < 4; b++) {
        __m512i bv = _mm512_loadu_si512((const void *)(bias + 16 * b));
        for (r = 0; r < R; r++) acc[r][b] = bv;
    }
    for (q = 0; q < quads; q++) {
        const uint64_t *wp = wq + q * 4;
        __m512i w[4];
        for (b = 0; b < 4; b++)
            w[b] = _mm512_or_si512(_mm512_movm_epi8(_cvtu64_mask64(wp[b])), one);
        for (r = 0; r < R; r++) {
            uint32_t v;
            __m512i xb;
            memcpy(&v, x + r * ldx + 4 * q, 4);
            xb = _mm512_set1_epi32((int)v);
            for (b = 0; b < 4; b++) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], xb, w[b]);
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
    const uint64_t *bits = (const uint64_t *)(wt + opad * kp);
    int64_t jb, quads = kp / 4;
    for (jb = 0; jb < ncols; jb += 64) {
        const uint64_t *wq = bits + ((j0 + jb) / 64) * quads * 4;
        int64_t nj = BNN_MIN(64, ncols - jb);
        const int32_t *bi = bias + j0 + jb;
        int32_t *o = out + jb;
        switch (mr) {
        case 4: block(4, x, ldx, quads, wq, bi, o, ldo, nj); break;
        case 3: block(3, x, ldx, quads, wq, bi, o, ldo, nj); break;
        case 2: block(2, x, ldx, quads, wq, bi, o, ldo, nj); break;
        default: block(1, x, ldx, quads, wq, bi, o, ldo, nj); break;
        }
    }
}
#endif
