/*
 * u8_neondot.c -- the 8-bit first-layer micro-kernel with the Armv8.2
 * dot product instructions (FEAT_DotProd, AT_HWCAP's ASIMDDP; the
 * dot_u8_strip contract in bnn_kernels.h).
 *
 * UDOT multiplies unsigned bytes and adds each group of 4 products into a
 * 32-bit lane; SDOT is signed x signed.  The pixels are unsigned (0..255,
 * not an int8) and the weights signed, so neither takes both as they are
 * (the unsigned x signed USDOT needs the later I8MM extension).  UDOT on
 * 0/1 masks does: from the weights' sign-bit copy, b = 1 for a -1 weight
 * and 0 for +1 (and for a padded tap, where x = 0), w = 1 - 2b, so
 *     sum_q x_q w_q = X - 2 * sum_q x_q b_q,   X = sum_q x_q,
 * and sum x*b is UDOT of the pixels with bytes b in {0, 1}: exact, every
 * partial sum below 255 * kp < 2^31.  Each word of bits (16 outputs x 4
 * taps) expands into 4 vectors of 0/1 bytes (a table lookup, a bit test
 * and an AND with 1), shared by every row; a row's 4 taps x[4q..4q+3] are
 * broadcast to the 32-bit lanes, so lane l of vector v meets output
 * 4v + l's 4 taps and one UDOT does 16 multiply-adds.  A tile is R <= 4
 * rows by 16 outputs (16 accumulators).
 *
 * The functions carry the target attribute of Armv8.2-A with the dot
 * product (GCC's arm_neon.h declares vdotq_u32 for that architecture;
 * clang names the feature alone); FEAT_DotProd exists only from Armv8.2,
 * so a CPU with ASIMDDP runs them.
 */
#include "bnn_kernels.h"

#if BNN_ARM64
#include "arm/neon_internal.h"

#if defined(__clang__)
#  define BNN_TARGET_DOTPROD __attribute__((target("dotprod")))
#else
#  define BNN_TARGET_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

/* acc + UDOT(a, b).  Clang's arm_neon.h (before 16) declares vdotq_u32
 * only when the whole file is built for the dot product, so clang gets
 * the instruction itself; GCC's header follows the target attribute. */
static inline __attribute__((always_inline)) BNN_TARGET_DOTPROD uint32x4_t
udot(uint32x4_t acc, uint8x16_t a, uint8x16_t b)
{
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
    __asm__("udot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
#else
    return vdotq_u32(acc, a, b);
#endif
}

/* R rows against 16 outputs whose bit word of group q is wz[4q]. */
static inline __attribute__((always_inline)) BNN_TARGET_DOTPROD void
dot_tile(const int R, const uint8_t *x, int64_t ldx, int64_t quads, const uint64_t *wz,
         const int32_t *bias, const uint32_t *xsum, int32_t *out, int64_t ldo, int64_t nj)
{
    const uint8x16_t one = vdupq_n_u8(1);
    uint32x4_t acc[4][4];
    int64_t q;
    int r, v;
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++) acc[r][v] = vdupq_n_u32(0);
    for (q = 0; q < quads; q++) {
        uint8x16_t m[4];
        bnn_neon_bits_to_bytes(wz[4 * q], m);
        for (v = 0; v < 4; v++) m[v] = vandq_u8(m[v], one);
        for (r = 0; r < R; r++) {
            const uint8x16_t xb = bnn_neon_dup4(x + r * ldx + 4 * q);
            for (v = 0; v < 4; v++) acc[r][v] = udot(acc[r][v], xb, m[v]);
        }
    }
    for (r = 0; r < R; r++) bnn_neon_u8_store(acc[r], bias, xsum[r], out + r * ldo, nj);
}

BNN_TARGET_DOTPROD void bnn_dot_u8_strip_neondot(int64_t mr, int64_t j0, int64_t ncols,
                                                 int64_t kp, const uint8_t *x, int64_t ldx,
                                                 const int8_t *wt, int64_t opad,
                                                 const int32_t *bias, int32_t *out,
                                                 int64_t ldo)
{
    BNN_NEON_U8_STRIP(dot_tile);
}

#else
typedef int bnn_u8_neondot_is_empty; /* ISO C wants a declaration in every file */
#endif
