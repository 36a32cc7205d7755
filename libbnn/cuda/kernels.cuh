/*
 * kernels.cuh -- the CUDA kernels of libbnn, written once for the device
 * and for a host emulator.
 *
 * A kernel's block is a template over an executor X and runs as phases
 * between barriers: x.each(f) runs the phase f(t) for thread t of the
 * block, x.sync() is the barrier, x.reg(r, t) is thread t's registers.
 * On the device (DeviceExec) each thread runs f(threadIdx.x), sync() is
 * __syncthreads() and every thread has its own registers; on the host
 * (HostExec, the C tests' emulator) each(f) steps every thread of the
 * block through the phase in turn, sync() has nothing left to wait for,
 * and the registers of all threads are an array.  The per-thread code is
 * plain __host__ __device__ C++, so what the tests step through on the
 * host is the code the GPU runs.
 *
 * The bit contract is bnn.h's: 64-bit words, bit j % 64 of word j / 64 is
 * element j, bit 1 = -1, pad bits 0; dot = k - 2 * popcount(a XOR w).
 */
#ifndef BNN_CUDA_KERNELS_CUH
#define BNN_CUDA_KERNELS_CUH

#include <math.h>
#include <stdint.h>

extern "C" {
#include "bnn_internal.h"     /* bnn_mix64: the counter-based generator */
}

#ifdef __CUDACC__
#  define BNN_HD __host__ __device__ __forceinline__
#else
#  define BNN_HD inline
#endif
#ifdef __CUDA_ARCH__
#  define BNN_UNROLL _Pragma("unroll")     /* registers indexed by the loop */
#else
#  define BNN_UNROLL
#endif

namespace bnn_cuda {

BNN_HD int popc64(uint64_t x)
{
#ifdef __CUDA_ARCH__
    return __popcll(x);
#else
    return __builtin_popcountll(x);
#endif
}

/* The tensor-core instruction of the tensor-core GEMM below (its
 * fragment layouts are described there), on the GPU and emulated. */
/* The mma of one lane's fragments (the warp's 32 lanes together). */
BNN_HD void mma_b1_and(const uint32_t a[4], const uint32_t b[2], int32_t c[4])
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)a; (void)b; (void)c;
#endif
}

/* What the instruction does with 32 lanes' fragments, from the documented
 * layouts above (the host emulator's mma): rebuild A (16 x 256 bits) and
 * B (256 x 8) from the lanes' registers, add popc(A row & B column) into
 * the lane that holds each C element. */
inline void emulate_mma_b1_and(const uint32_t a[32][4], const uint32_t b[32][2],
                               int32_t c[32][4])
{
    uint8_t A[16][256], B[256][8];
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, q = l & 3;
        for (int bit = 0; bit < 32; bit++) {
            A[g][32 * q + bit] = (uint8_t)((a[l][0] >> bit) & 1);
            A[g + 8][32 * q + bit] = (uint8_t)((a[l][1] >> bit) & 1);
            A[g][128 + 32 * q + bit] = (uint8_t)((a[l][2] >> bit) & 1);
            A[g + 8][128 + 32 * q + bit] = (uint8_t)((a[l][3] >> bit) & 1);
            B[32 * q + bit][g] = (uint8_t)((b[l][0] >> bit) & 1);
            B[128 + 32 * q + bit][g] = (uint8_t)((b[l][1] >> bit) & 1);
        }
    }
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, q = l & 3;
        for (int i = 0; i < 4; i++) {
            const int row = g + 8 * (i >> 1), col = 2 * q + (i & 1);
            int32_t sum = 0;
            for (int kk = 0; kk < 256; kk++) sum += A[row][kk] & B[kk][col];
            c[l][i] += sum;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Executors                                                           */
/* ------------------------------------------------------------------ */

/* The GPU: each thread runs its own part of a phase. */
struct DeviceExec {
    template <class F> BNN_HD void each(F f) const
    {
#ifdef __CUDA_ARCH__
        f((int)threadIdx.x);
#else
        (void)f;
#endif
    }
    BNN_HD void sync() const
    {
#ifdef __CUDA_ARCH__
        __syncthreads();
#endif
    }
    template <class R> BNN_HD R &reg(R *r, int) const { return r[0]; }
    /* the warp-collective mma of n-tile nt: each lane's own instruction */
    template <class R> BNN_HD void mma(R *r, int nt) const { mma_b1_and(r[0].a, r[0].b[nt], r[0].c[nt]); }
};

/* The host emulator: one block's threads, stepped in turn through each
 * phase (a phase ends at a barrier, so no thread can see another's
 * writes of the same phase on the GPU either). */
struct HostExec {
    int threads;
    template <class F> void each(F f) const
    {
        for (int t = 0; t < threads; t++) f(t);
    }
    void sync() const {}
    template <class R> R &reg(R *r, int t) const { return r[t]; }
    /* the warp-collective mma of n-tile nt: each warp's 32 lanes at once */
    template <class R> void mma(R *r, int nt) const
    {
        for (int w0 = 0; w0 < threads; w0 += 32) {
            uint32_t a[32][4], b[32][2];
            int32_t c[32][4];
            for (int l = 0; l < 32; l++)
                for (int i = 0; i < 4; i++) {
                    a[l][i] = r[w0 + l].a[i];
                    c[l][i] = r[w0 + l].c[nt][i];
                    if (i < 2) b[l][i] = r[w0 + l].b[nt][i];
                }
            emulate_mma_b1_and(a, b, c);
            for (int l = 0; l < 32; l++)
                for (int i = 0; i < 4; i++) r[w0 + l].c[nt][i] = c[l][i];
        }
    }
};

/* ------------------------------------------------------------------ */
/* Packing: one thread per output word                                 */
/* ------------------------------------------------------------------ */

struct PackArgs {
    int64_t rows, k, kw;
    const float *src;
    int64_t lds;
    uint64_t *dst;
    int64_t ldd;
};

/* Word `word` of row `row`: bit b set where element 64 * word + b < k is
 * negative (x < 0: -0 and NaN give 0). */
BNN_HD void pack_word(const PackArgs &p, int64_t row, int64_t word)
{
    const float *x = p.src + row * p.lds + word * 64;
    const int64_t nb = p.k - word * 64 < 64 ? p.k - word * 64 : 64;
    uint64_t bits = 0;
    for (int64_t b = 0; b < nb; b++) bits |= (uint64_t)(x[b] < 0.0f) << b;
    p.dst[row * p.ldd + word] = bits;
}

/* Word idx of the packed rows (one thread per word). */
BNN_HD void pack_one(const PackArgs &p, int64_t idx)
{
    pack_word(p, idx / p.kw, idx % p.kw);
}

/* ------------------------------------------------------------------ */
/* XNOR GEMM on CUDA cores                                             */
/* ------------------------------------------------------------------ */

/* A block computes a GEMM_BM x GEMM_BN tile of C with GEMM_THREADS
 * threads, each GEMM_TM x GEMM_TN outputs (rows ty + 16 i, columns
 * tx + 16 j of the tile), over K in slices of GEMM_BK words held in
 * shared memory.  GEMM_BN = 64: a tile's row of the BITS epilogue is one
 * output word. */
enum { GEMM_BM = 64, GEMM_BN = 64, GEMM_BK = 8, GEMM_THREADS = 256, GEMM_TM = 4, GEMM_TN = 4 };

/* The epilogue kinds of bnn.h's bnn_epilogue_kind. */
enum { EPI_INT32 = 0, EPI_FLOAT = 1, EPI_BITS = 2 };

struct GemmArgs {
    int64_t n, m, k, kw;
    const uint64_t *a;
    int64_t lda;
    const uint64_t *w;
    int64_t ldw;
    int epi;
    const float *scale, *offset;    /* FLOAT: NULL means 1 and 0 */
    const int32_t *thresh;          /* BITS                     */
    const uint8_t *flip;            /* BITS: NULL means 0       */
    void *c;
    int64_t ldc;
};

struct GemmSmem {
    uint64_t a[GEMM_BK][GEMM_BM + 1];    /* [word][row]: +1 spreads the banks */
    uint64_t w[GEMM_BK][GEMM_BN + 1];
    uint8_t bits[GEMM_BM][GEMM_BN];      /* BITS: each output's sign bit     */
};

struct GemmRegs {
    int32_t acc[GEMM_TM][GEMM_TN];       /* popcounts of a XOR w (<= k)      */
};

/* The output (the CPU epilogues' arithmetic) of one dot product. */
BNN_HD int32_t gemm_dot(const GemmArgs &g, int32_t popc)
{
    return (int32_t)(g.k - 2 * (int64_t)popc);
}

BNN_HD int gemm_sign_bit(const GemmArgs &g, int32_t dot, int64_t col)
{
    return (g.flip && g.flip[col]) ? dot > g.thresh[col] : dot < g.thresh[col];
}

/* One output of either GEMM kernel through the epilogue: INT32 and FLOAT
 * are written out, BITS leaves the sign bit in bits[r][j] (r, j: the
 * output's place in the block's tile) for gemm_store_words. */
BNN_HD void gemm_out(const GemmArgs &g, int64_t row, int64_t col, int32_t dot,
                     uint8_t (*bits)[GEMM_BN], int r, int j)
{
    if (g.epi == EPI_BITS) {
        bits[r][j] = (uint8_t)(row < g.n && col < g.m ? gemm_sign_bit(g, dot, col) : 0);
    } else if (row < g.n && col < g.m) {
        if (g.epi == EPI_INT32) {
            ((int32_t *)g.c)[row * g.ldc + col] = dot;
        } else {
            const float sc = g.scale ? g.scale[col] : 1.0f;
            const float of = g.offset ? g.offset[col] : 0.0f;
            ((float *)g.c)[row * g.ldc + col] = fmaf((float)dot, sc, of);
        }
    }
}

/* Phase 1 of a K slice: thread t copies its words of the slice starting
 * at word k0 into shared memory (zero beyond the matrix: 0 XOR 0 adds
 * nothing, and rows past n or m are never written out). */
BNN_HD void gemm_load(const GemmArgs &g, int64_t bx, int64_t by, int t, int64_t k0,
                      GemmSmem &s)
{
    for (int e = t; e < GEMM_BM * GEMM_BK; e += GEMM_THREADS) {
        const int r = e / GEMM_BK, kk = e % GEMM_BK;
        const int64_t row = by * GEMM_BM + r, word = k0 + kk;
        s.a[kk][r] = (row < g.n && word < g.kw) ? g.a[row * g.lda + word] : 0;
    }
    for (int e = t; e < GEMM_BN * GEMM_BK; e += GEMM_THREADS) {
        const int r = e / GEMM_BK, kk = e % GEMM_BK;
        const int64_t col = bx * GEMM_BN + r, word = k0 + kk;
        s.w[kk][r] = (col < g.m && word < g.kw) ? g.w[col * g.ldw + word] : 0;
    }
}

/* Phase 2: thread t adds the popcounts of its outputs over the slice. */
BNN_HD void gemm_compute(int t, const GemmSmem &s, GemmRegs &r)
{
    const int ty = t / 16, tx = t % 16;
    for (int kk = 0; kk < GEMM_BK; kk++) {
        uint64_t av[GEMM_TM], wv[GEMM_TN];
        for (int i = 0; i < GEMM_TM; i++) av[i] = s.a[kk][ty + 16 * i];
        for (int j = 0; j < GEMM_TN; j++) wv[j] = s.w[kk][tx + 16 * j];
        for (int i = 0; i < GEMM_TM; i++)
            for (int j = 0; j < GEMM_TN; j++) r.acc[i][j] += popc64(av[i] ^ wv[j]);
    }
}

/* The epilogue: thread t's outputs (gemm_out). */
BNN_HD void gemm_store(const GemmArgs &g, int64_t bx, int64_t by, int t, const GemmRegs &r,
                       GemmSmem &s)
{
    const int ty = t / 16, tx = t % 16;
    for (int i = 0; i < GEMM_TM; i++)
        for (int j = 0; j < GEMM_TN; j++)
            gemm_out(g, by * GEMM_BM + ty + 16 * i, bx * GEMM_BN + tx + 16 * j,
                     gemm_dot(g, r.acc[i][j]), s.bits, ty + 16 * i, tx + 16 * j);
}

/* BITS, after a barrier: thread t < GEMM_BM gathers row t's 64 bits into
 * the output word bx of its row (pad bits past m are 0). */
BNN_HD void gemm_store_words(const GemmArgs &g, int64_t bx, int64_t by, int t,
                             const uint8_t (*bits)[GEMM_BN])
{
    const int64_t row = by * GEMM_BM + t;
    if (t >= GEMM_BM || row >= g.n) return;
    uint64_t word = 0;
    for (int j = 0; j < GEMM_BN; j++) word |= (uint64_t)bits[t][j] << j;
    ((uint64_t *)g.c)[row * g.ldc + bx] = word;
}

/* One block (bx over columns of C, by over rows) of the CUDA-core GEMM. */
template <class X>
BNN_HD void gemm_simt_block(const X &x, const GemmArgs &g, int64_t bx, int64_t by,
                            GemmSmem &s, GemmRegs *regs)
{
    x.each([&](int t) {
        GemmRegs &r = x.reg(regs, t);
        for (int i = 0; i < GEMM_TM; i++)
            for (int j = 0; j < GEMM_TN; j++) r.acc[i][j] = 0;
    });
    for (int64_t k0 = 0; k0 < g.kw; k0 += GEMM_BK) {
        x.each([&](int t) { gemm_load(g, bx, by, t, k0, s); });
        x.sync();
        x.each([&](int t) { gemm_compute(t, s, x.reg(regs, t)); });
        x.sync();
    }
    x.each([&](int t) { gemm_store(g, bx, by, t, x.reg(regs, t), s); });
    if (g.epi == EPI_BITS) {
        x.sync();
        x.each([&](int t) { gemm_store_words(g, bx, by, t, s.bits); });
    }
}


/* ------------------------------------------------------------------ */
/* XNOR GEMM on tensor cores: mma.sync m16n8k256 .b1, AND + popc        */
/* ------------------------------------------------------------------ */

/* The instruction multiplies a 16 x 256 bit tile of A (rows of A) by a
 * 256 x 8 tile of B (rows of W, "col" layout) with AND and popcount into
 * 16 x 8 int32 sums.  The XOR popcount comes from the AND one:
 * popc(a ^ w) = popc(a) + popc(w) - 2 popc(a & w); the row popcounts are
 * counted as the tiles are loaded.
 *
 * Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k256"), for lane l
 * with g = l >> 2 and q = l % 4, bit b of each 32-bit register:
 *   a0: A[g][32q + b]      a1: A[g + 8][32q + b]
 *   a2: A[g][128 + 32q + b] a3: A[g + 8][128 + 32q + b]
 *   b0: B[32q + b][g]      b1: B[128 + 32q + b][g]
 *   c0: C[g][2q]  c1: C[g][2q + 1]  c2: C[g + 8][2q]  c3: C[g + 8][2q + 1]
 * On the packed rows of bnn.h a 256-bit step is four words, eight 32-bit
 * halves U[0..7] (U[2w] the low half of word w): a0 = U_A(g)[q],
 * a2 = U_A(g)[4 + q], b0 = U_W(g)[q], b1 = U_W(g)[4 + q].
 *
 * A block is 8 warps over a 64 x 64 tile of C: warp w takes rows
 * 16 (w % 4) .. + 16 and columns 32 (w / 4) .. + 32 (four 16 x 8 mma
 * tiles); K goes in slices of TC_BK words (two steps). */
enum { TC_BK = 8, TC_NT = 4, TC_THREADS = 256 };

struct TcSmem {
    uint32_t a[GEMM_BM][2 * TC_BK + 1];  /* 32-bit halves of the slice's words */
    uint32_t w[GEMM_BN][2 * TC_BK + 1];
    int32_t pa[GEMM_BM], pw[GEMM_BN];    /* row popcounts                       */
    uint8_t bits[GEMM_BM][GEMM_BN];
};

struct TcRegs {
    uint32_t a[4];
    uint32_t b[TC_NT][2];
    int32_t c[TC_NT][4];                 /* AND popcounts                       */
    int32_t pop;                         /* loaders: the popcount of their row  */
};

/* Load phase of a slice: threads 0..63 copy row t of A's slice, 64..127
 * row t - 64 of W's, as 32-bit halves (zeros past the matrix), counting
 * their bits. */
BNN_HD void tc_load(const GemmArgs &g, int64_t bx, int64_t by, int t, int64_t k0, TcSmem &s,
                    TcRegs &r)
{
    if (t >= GEMM_BM + GEMM_BN) return;
    const int isw = t >= GEMM_BM, row = isw ? t - GEMM_BM : t;
    const int64_t grow = (isw ? bx * GEMM_BN : by * GEMM_BM) + row;
    const int64_t rows = isw ? g.m : g.n, ld = isw ? g.ldw : g.lda;
    const uint64_t *src = isw ? g.w : g.a;
    uint32_t *dst = isw ? s.w[row] : s.a[row];
    for (int kk = 0; kk < TC_BK; kk++) {
        const uint64_t v = (grow < rows && k0 + kk < g.kw) ? src[grow * ld + k0 + kk] : 0;
        dst[2 * kk] = (uint32_t)v;
        dst[2 * kk + 1] = (uint32_t)(v >> 32);
        r.pop += popc64(v);
    }
}

/* Fragment phase: lane l of warp w takes its registers of step `step` of
 * the slice (halves 8 step .. 8 step + 7) from shared memory. */
BNN_HD void tc_fragments(int t, int step, const TcSmem &s, TcRegs &r)
{
    const int w = t / 32, l = t % 32, g = l >> 2, q = l & 3;
    const int r0 = 16 * (w % 4), c0 = 32 * (w / 4), h = 8 * step;
    r.a[0] = s.a[r0 + g][h + q];
    r.a[1] = s.a[r0 + g + 8][h + q];
    r.a[2] = s.a[r0 + g][h + 4 + q];
    r.a[3] = s.a[r0 + g + 8][h + 4 + q];
    BNN_UNROLL
    for (int nt = 0; nt < TC_NT; nt++) {
        r.b[nt][0] = s.w[c0 + 8 * nt + g][h + q];
        r.b[nt][1] = s.w[c0 + 8 * nt + g][h + 4 + q];
    }
}

/* Epilogue: the XOR popcount of each of the lane's C elements from its
 * AND popcount and the two row popcounts, then gemm_out. */
BNN_HD void tc_store(const GemmArgs &g, int64_t bx, int64_t by, int t, const TcRegs &r,
                     TcSmem &s)
{
    const int w = t / 32, l = t % 32, gq = l >> 2, q = l & 3;
    const int r0 = 16 * (w % 4), c0 = 32 * (w / 4);
    BNN_UNROLL
    for (int nt = 0; nt < TC_NT; nt++)
        BNN_UNROLL
        for (int i = 0; i < 4; i++) {
            const int rr = r0 + gq + 8 * (i >> 1), cc = c0 + 8 * nt + 2 * q + (i & 1);
            const int64_t x = (int64_t)s.pa[rr] + s.pw[cc] - 2 * (int64_t)r.c[nt][i];
            gemm_out(g, by * GEMM_BM + rr, bx * GEMM_BN + cc, (int32_t)(g.k - 2 * x), s.bits,
                     rr, cc);
        }
}

/* One block of the tensor-core GEMM.  x.mma(regs, nt): the warps' mma of
 * n-tile nt (each lane's own instruction on the GPU, emulate_mma_b1_and
 * per warp on the host). */
template <class X>
BNN_HD void gemm_tc_block(const X &x, const GemmArgs &g, int64_t bx, int64_t by, TcSmem &s,
                          TcRegs *regs)
{
    x.each([&](int t) {
        TcRegs &r = x.reg(regs, t);
        r.pop = 0;
        BNN_UNROLL
        for (int nt = 0; nt < TC_NT; nt++)
            BNN_UNROLL
            for (int i = 0; i < 4; i++) r.c[nt][i] = 0;
    });
    for (int64_t k0 = 0; k0 < g.kw; k0 += TC_BK) {
        x.each([&](int t) { tc_load(g, bx, by, t, k0, s, x.reg(regs, t)); });
        x.sync();
        BNN_UNROLL
        for (int step = 0; step < TC_BK / 4; step++) {
            x.each([&](int t) { tc_fragments(t, step, s, x.reg(regs, t)); });
            BNN_UNROLL
            for (int nt = 0; nt < TC_NT; nt++) x.mma(regs, nt);
        }
        x.sync();
    }
    x.each([&](int t) {
        const TcRegs &r = x.reg(regs, t);
        if (t < GEMM_BM) s.pa[t] = r.pop;
        else if (t < GEMM_BM + GEMM_BN) s.pw[t - GEMM_BM] = r.pop;
    });
    x.sync();
    x.each([&](int t) { tc_store(g, bx, by, t, x.reg(regs, t), s); });
    if (g.epi == EPI_BITS) {
        x.sync();
        x.each([&](int t) { gemm_store_words(g, bx, by, t, s.bits); });
    }
}

/* ------------------------------------------------------------------ */
/* Binary convolution: implicit GEMM over NHWC packed channels          */
/* ------------------------------------------------------------------ */

/* Rows of the product are output pixels (n * oh * ow), columns filters;
 * K runs over the taps, each tap over the channel words.  A block tiles
 * 64 pixels x 64 filters like the CUDA-core GEMM (4 x 4 outputs per
 * thread).  For each tap, the block's pixels either see an input pixel or
 * padding: with pad_value 1 padding is an all-+1 pixel (zero words, each
 * tap adding c - 2 popc(w): the correction of bnn.h); with pad_value 0 a
 * padded tap adds nothing, so it is masked out and the pixel counts only
 * its taps inside the input: dot = taps_in * c - 2 * sum popc(x XOR w). */
struct ConvArgs {
    int64_t n, h, w, c, cw, o, kh, kw, oh, ow;
    int32_t sh, sw, dh, dw, pt, pl;
    int32_t pad_value;
    const uint64_t *x;    /* [n][h][w][cw] */
    const uint64_t *wt;   /* [o][kh][kw][cw] */
    GemmArgs out;         /* the epilogue and output: rows n*oh*ow, columns o */
};

struct ConvSmem {
    uint64_t a[GEMM_BK][GEMM_BM + 1];
    uint64_t w[GEMM_BK][GEMM_BN + 1];
    uint8_t in[GEMM_BM];                 /* the tap counts for pixel r */
    uint8_t bits[GEMM_BM][GEMM_BN];
};

struct ConvRegs {
    int32_t acc[GEMM_TM][GEMM_TN];
    int32_t taps[GEMM_TM];               /* taps counted per output pixel */
};

/* Where pixel row `p` of the product looks for tap (ky, kx): the input
 * word offset, or -1 outside the input. */
BNN_HD int64_t conv_src(const ConvArgs &g, int64_t p, int64_t ky, int64_t kx)
{
    const int64_t b = p / (g.oh * g.ow), rest = p % (g.oh * g.ow);
    const int64_t iy = (rest / g.ow) * g.sh - g.pt + ky * g.dh;
    const int64_t ix = (rest % g.ow) * g.sw - g.pl + kx * g.dw;
    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return -1;
    return ((b * g.h + iy) * g.w + ix) * g.cw;
}

BNN_HD void conv_load(const ConvArgs &g, int64_t bx, int64_t by, int t, int64_t ky, int64_t kx,
                      int64_t w0, ConvSmem &s)
{
    const int64_t rows = g.n * g.oh * g.ow;
    for (int e = t; e < GEMM_BM * GEMM_BK; e += GEMM_THREADS) {
        const int r = e / GEMM_BK, kk = e % GEMM_BK;
        const int64_t p = by * GEMM_BM + r, word = w0 + kk;
        const int64_t src = p < rows ? conv_src(g, p, ky, kx) : -1;
        s.a[kk][r] = (src >= 0 && word < g.cw) ? g.x[src + word] : 0;
        if (kk == 0 && w0 == 0)         /* the pixel counts this tap? */
            s.in[r] = (uint8_t)(p < rows && (src >= 0 || g.pad_value == 1));
    }
    for (int e = t; e < GEMM_BN * GEMM_BK; e += GEMM_THREADS) {
        const int r = e / GEMM_BK, kk = e % GEMM_BK;
        const int64_t f = bx * GEMM_BN + r, word = w0 + kk;
        s.w[kk][r] = (f < g.o && word < g.cw)
                         ? g.wt[((f * g.kh + ky) * g.kw + kx) * g.cw + word] : 0;
    }
}

BNN_HD void conv_compute(int t, int64_t w0, const ConvSmem &s, ConvRegs &r)
{
    const int ty = t / 16, tx = t % 16;
    uint64_t mask[GEMM_TM];
    for (int i = 0; i < GEMM_TM; i++) {
        const int in = s.in[ty + 16 * i];
        mask[i] = 0 - (uint64_t)in;
        if (w0 == 0) r.taps[i] += in;
    }
    for (int kk = 0; kk < GEMM_BK; kk++) {
        uint64_t av[GEMM_TM], wv[GEMM_TN];
        for (int i = 0; i < GEMM_TM; i++) av[i] = s.a[kk][ty + 16 * i];
        for (int j = 0; j < GEMM_TN; j++) wv[j] = s.w[kk][tx + 16 * j];
        for (int i = 0; i < GEMM_TM; i++)
            for (int j = 0; j < GEMM_TN; j++) r.acc[i][j] += popc64((av[i] ^ wv[j]) & mask[i]);
    }
}

template <class X>
BNN_HD void conv_simt_block(const X &x, const ConvArgs &g, int64_t bx, int64_t by, ConvSmem &s,
                            ConvRegs *regs)
{
    x.each([&](int t) {
        ConvRegs &r = x.reg(regs, t);
        for (int i = 0; i < GEMM_TM; i++) {
            r.taps[i] = 0;
            for (int j = 0; j < GEMM_TN; j++) r.acc[i][j] = 0;
        }
    });
    for (int64_t ky = 0; ky < g.kh; ky++)
        for (int64_t kx = 0; kx < g.kw; kx++)
            for (int64_t w0 = 0; w0 < g.cw; w0 += GEMM_BK) {
                x.each([&](int t) { conv_load(g, bx, by, t, ky, kx, w0, s); });
                x.sync();
                x.each([&](int t) { conv_compute(t, w0, s, x.reg(regs, t)); });
                x.sync();
            }
    x.each([&](int t) {
        const ConvRegs &r = x.reg(regs, t);
        const int ty = t / 16, tx = t % 16;
        for (int i = 0; i < GEMM_TM; i++)
            for (int j = 0; j < GEMM_TN; j++) {
                const int64_t dot = (int64_t)r.taps[i] * g.c - 2 * (int64_t)r.acc[i][j];
                gemm_out(g.out, by * GEMM_BM + ty + 16 * i, bx * GEMM_BN + tx + 16 * j,
                         (int32_t)dot, s.bits, ty + 16 * i, tx + 16 * j);
            }
    });
    if (g.out.epi == EPI_BITS) {
        x.sync();
        x.each([&](int t) { gemm_store_words(g.out, bx, by, t, s.bits); });
    }
}

/* ------------------------------------------------------------------ */
/* Max pooling of packed sign bits: one thread per output word          */
/* ------------------------------------------------------------------ */

/* Per channel the AND of the window's bits (the max of +-1) where flip is
 * 0, the OR (the min) where it is 1; positions outside the input are
 * skipped; pad bits stay 0 (they are 0 in every input word). */
struct PoolArgs {
    int64_t n, h, w, cw, oh, ow;
    int32_t kh, kw, sh, sw, pt, pl;
    const uint64_t *x;
    const uint8_t *flip;   /* [c] or NULL */
    int64_t c;
    uint64_t *out;
};

BNN_HD void pool_word(const PoolArgs &g, int64_t idx)
{
    const int64_t word = idx % g.cw, pix = idx / g.cw;
    const int64_t b = pix / (g.oh * g.ow), rest = pix % (g.oh * g.ow);
    const int64_t oy = rest / g.ow, ox = rest % g.ow;
    uint64_t fm = 0, vand = ~(uint64_t)0, vor = 0;
    if (g.flip)
        for (int64_t j = 0; j < 64 && word * 64 + j < g.c; j++)
            fm |= (uint64_t)(g.flip[word * 64 + j] != 0) << j;
    for (int32_t ky = 0; ky < g.kh; ky++)
        for (int32_t kx = 0; kx < g.kw; kx++) {
            const int64_t iy = oy * g.sh - g.pt + ky, ix = ox * g.sw - g.pl + kx;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            const uint64_t v = g.x[((b * g.h + iy) * g.w + ix) * g.cw + word];
            vand &= v;
            vor |= v;
        }
    g.out[idx] = (vand & ~fm) | (vor & fm);
}

/* ------------------------------------------------------------------ */
/* The training products: float or int8 times a +-1 matrix held as bits */
/* ------------------------------------------------------------------ */

/* C[i][k] (+)= sum_{j < J} A(i, j) * S(j, k), S(j, k) = -1 where bit k of
 * row j of s is set: the input gradient g . W and the weight gradient
 * g^T . x of a binary layer (bnn_gemm_f32_pm1, bnn_gemm_i8_pm1).  A block
 * of 256 threads takes 4 rows of C by the 64 columns of one word of S,
 * one output per thread, J in slices of 32 through shared memory.  Float:
 * each output is one accumulator adding +-A(i, j) (exact) for j = 0, 1, ...
 * in order, as on the CPU, so the floats are the same; int8: exact int32. */
enum { PM1_ROWS = 4, PM1_JB = 32, PM1_THREADS = 256 };

struct Pm1Args {
    int64_t I, K, J;
    const float *a;        /* float: A(i, j) = a[i * lda_i + j * lda_j] */
    int64_t lda_i, lda_j;
    const int8_t *q;       /* int8: q[i * lda_i + j] (lda_j = 1)         */
    const uint64_t *s;
    int64_t lds;
    float *c;              /* float output                              */
    int32_t *ci;           /* int8 output                               */
    int64_t ldc;
    int accumulate;        /* float: start from C                       */
    int f32;               /* 1: the float product, 0: the int8 one     */
};

struct Pm1Smem {
    float a[PM1_ROWS][PM1_JB];
    int8_t q[PM1_ROWS][PM1_JB];
    uint64_t s[PM1_JB];
};

struct Pm1Regs {
    float acc;
    int32_t iacc;
};

BNN_HD void pm1_load(const Pm1Args &g, int64_t bx, int64_t by, int t, int64_t j0, Pm1Smem &s)
{
    if (t < PM1_ROWS * PM1_JB) {
        const int r = t / PM1_JB, jj = t % PM1_JB;
        const int64_t i = by * PM1_ROWS + r, j = j0 + jj;
        const int ok = i < g.I && j < g.J;
        if (g.f32) s.a[r][jj] = ok ? g.a[i * g.lda_i + j * g.lda_j] : 0.0f;
        else s.q[r][jj] = ok ? g.q[i * g.lda_i + j] : (int8_t)0;
    } else if (t < PM1_ROWS * PM1_JB + PM1_JB) {
        const int jj = t - PM1_ROWS * PM1_JB;
        s.s[jj] = j0 + jj < g.J ? g.s[(j0 + jj) * g.lds + bx] : 0;
    }
}

BNN_HD void pm1_compute(const Pm1Args &g, int t, int64_t j0, const Pm1Smem &s, Pm1Regs &r)
{
    const int row = t / 64, col = t % 64;
    const int64_t left = g.J - j0;
    const int nj = left < PM1_JB ? (int)left : PM1_JB;       /* no terms past J */
    for (int jj = 0; jj < nj; jj++) {
        const int neg = (int)((s.s[jj] >> col) & 1);
        if (g.f32) {
            const float v = s.a[row][jj];
            r.acc = r.acc + (neg ? -v : v);
        } else {
            const int32_t v = s.q[row][jj];
            r.iacc += neg ? -v : v;
        }
    }
}

template <class X>
BNN_HD void pm1_block(const X &x, const Pm1Args &g, int64_t bx, int64_t by, Pm1Smem &s,
                      Pm1Regs *regs)
{
    x.each([&](int t) {
        Pm1Regs &r = x.reg(regs, t);
        const int64_t i = by * PM1_ROWS + t / 64, k = bx * 64 + t % 64;
        r.acc = (g.f32 && g.accumulate && i < g.I && k < g.K) ? g.c[i * g.ldc + k] : 0.0f;
        r.iacc = 0;
    });
    for (int64_t j0 = 0; j0 < g.J; j0 += PM1_JB) {
        x.each([&](int t) { pm1_load(g, bx, by, t, j0, s); });
        x.sync();
        x.each([&](int t) { pm1_compute(g, t, j0, s, x.reg(regs, t)); });
        x.sync();
    }
    x.each([&](int t) {
        const int64_t i = by * PM1_ROWS + t / 64, k = bx * 64 + t % 64;
        if (i >= g.I || k >= g.K) return;
        if (g.f32) g.c[i * g.ldc + k] = x.reg(regs, t).acc;
        else g.ci[i * g.ldc + k] = x.reg(regs, t).iacc;
    });
}

/* ------------------------------------------------------------------ */
/* The backward products of a binary convolution, one output per thread */
/* ------------------------------------------------------------------ */

/* The arithmetic of bnn_conv2d_grad_* (bnn.h), output by output in the
 * CPU's order, so the floats are the CPU's:
 *  weights, float: gw[o][t][c] (+)= sum over m ascending of
 *    grad[m][o] * X(m, t, c), X the +-1 input value tap t of output m
 *    reads, 0.0 for a zero-padded tap, +1 for pad_value 1;
 *  weights, int8: s = sum_m qt[o][m] * X(m, t, c) exact, then
 *    gw = scale[o] * (float)s (added to gw with accumulate);
 *  input, float: gx[b][y][x][c] = taps ascending, the one output m that
 *    reads the element at tap t adds grad[m][o] * W(o, t, c), o ascending;
 *  input, int8: per tap, gx += scale[m] * (float)(sum_o q[m][o] W(o, t, c)).
 * m = (b * oh + oy) * ow + ox, t = ky * kw + kx. */
struct ConvGradArgs {
    int64_t n, h, w, c, cw, o, kh, kw, oh, ow;
    int32_t sh, sw, dh, dw, pt, pl, pad_value;
    const uint64_t *x;       /* weights: the forward's packed input      */
    const uint64_t *wt;      /* input: the packed filters [o][t][cw]      */
    const float *grad;       /* float: [m][o]                             */
    const int8_t *q;         /* int8: qt [o][m] (weights) or q [m][o]     */
    const float *scale;      /* int8: [o] (weights) or [m] (input)        */
    float *out;              /* gw [o][t][c] or gx [n][h][w][c]           */
    int accumulate;          /* weights                                   */
};

BNN_HD int conv_bit(const uint64_t *row, int64_t ch)
{
    return (int)((row[ch / 64] >> (ch % 64)) & 1);
}

/* X(m, t, c) as -1, +1 or 0 (a zero-padded tap). */
BNN_HD int conv_x(const ConvGradArgs &g, int64_t m, int64_t ky, int64_t kx, int64_t ch)
{
    const int64_t b = m / (g.oh * g.ow), rest = m % (g.oh * g.ow);
    const int64_t iy = (rest / g.ow) * g.sh - g.pt + ky * g.dh;
    const int64_t ix = (rest % g.ow) * g.sw - g.pl + kx * g.dw;
    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return g.pad_value == 1 ? 1 : 0;
    return conv_bit(g.x + ((b * g.h + iy) * g.w + ix) * g.cw, ch) ? -1 : 1;
}

BNN_HD void conv_grad_weights_one(const ConvGradArgs &g, int64_t idx)
{
    const int64_t taps = g.kh * g.kw, o = idx / (taps * g.c), t = (idx / g.c) % taps;
    const int64_t ch = idx % g.c, ky = t / g.kw, kx = t % g.kw, M = g.n * g.oh * g.ow;
    if (g.grad) {
        float acc = g.accumulate ? g.out[idx] : 0.0f;
        for (int64_t m = 0; m < M; m++) {
            const int xv = conv_x(g, m, ky, kx, ch);
            const float p = g.grad[m * g.o + o] * (xv > 0 ? 1.0f : xv < 0 ? -1.0f : 0.0f);
            acc = acc + p;
        }
        g.out[idx] = acc;
    } else {
        int64_t sum = 0;
        for (int64_t m = 0; m < M; m++) sum += (int64_t)g.q[o * M + m] * conv_x(g, m, ky, kx, ch);
        const float v = g.scale[o] * (float)sum;
        g.out[idx] = g.accumulate ? g.out[idx] + v : v;
    }
}

BNN_HD void conv_grad_input_one(const ConvGradArgs &g, int64_t idx)
{
    const int64_t ch = idx % g.c, pix = idx / g.c, b = pix / (g.h * g.w);
    const int64_t iy = (pix / g.w) % g.h, ix = pix % g.w;
    float acc = 0.0f;
    for (int64_t ky = 0; ky < g.kh; ky++)
        for (int64_t kx = 0; kx < g.kw; kx++) {
            const int64_t ny = iy + g.pt - ky * g.dh, nx = ix + g.pl - kx * g.dw;
            if (ny < 0 || nx < 0 || ny % g.sh || nx % g.sw) continue;
            const int64_t oy = ny / g.sh, ox = nx / g.sw;
            if (oy >= g.oh || ox >= g.ow) continue;
            const int64_t m = (b * g.oh + oy) * g.ow + ox, t = ky * g.kw + kx;
            if (g.grad) {
                for (int64_t o = 0; o < g.o; o++) {
                    const int neg = conv_bit(g.wt + (o * g.kh * g.kw + t) * g.cw, ch);
                    const float p = g.grad[m * g.o + o] * (neg ? -1.0f : 1.0f);
                    acc = acc + p;
                }
            } else {
                int64_t sum = 0;
                for (int64_t o = 0; o < g.o; o++) {
                    const int neg = conv_bit(g.wt + (o * g.kh * g.kw + t) * g.cw, ch);
                    sum += neg ? -(int64_t)g.q[m * g.o + o] : (int64_t)g.q[m * g.o + o];
                }
                const float v = g.scale[m] * (float)sum;
                acc = acc + v;
            }
        }
    g.out[idx] = acc;
}

/* ------------------------------------------------------------------ */
/* Stochastic rounding to int8 (bnn_quantize_i8)                        */
/* ------------------------------------------------------------------ */

/* scale = max |a| over the row (column) / 127 (NaN never wins), then each
 * element q = clamp(floor(a * inv + u), -127, 127) with inv = 1/scale (0
 * for a zero scale), u the 16 bits of element e = counter + r * k + j of
 * bnn_mix64 over 65536, the product and the sum each rounded once: the
 * CPU's numbers (bnn_quantize_i8, bnn_round_i8_ref).  by_column writes q
 * transposed, q[j * ldq + r]. */
struct QuantArgs {
    int64_t rows, k, lda, ldq;
    const float *a;
    int by_column;
    uint64_t seed, counter;
    int8_t *q;
    float *scale;
};

/* The scale of row (or column) idx. */
BNN_HD void quant_scale_one(const QuantArgs &g, int64_t idx)
{
    const int64_t n = g.by_column ? g.rows : g.k;
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float v = fabsf(g.by_column ? g.a[i * g.lda + idx] : g.a[idx * g.lda + i]);
        amax = v > amax ? v : amax;
    }
    g.scale[idx] = amax / 127.0f;
}

/* Element idx = r * k + j, after the scales. */
BNN_HD void quant_round_one(const QuantArgs &g, int64_t idx)
{
    const int64_t r = idx / g.k, j = idx % g.k;
    const float sc = g.scale[g.by_column ? j : r];
    const float inv = sc > 0.0f ? 1.0f / sc : 0.0f;
    const uint64_t e = g.counter + (uint64_t)idx;
    const uint32_t bits = (uint32_t)(bnn_mix64(g.seed, e >> 2) >> (16 * (e & 3))) & 0xffffu;
    const float u = (float)bits * (1.0f / 65536.0f);
    const float p = g.a[r * g.lda + j] * inv;
    const float y = p + u;
    int8_t v = 0;
    if (y == y) {
        const float f = floorf(y);
        v = (int8_t)(f < -127.0f ? -127 : (f > 127.0f ? 127 : (int)f));
    }
    g.q[g.by_column ? j * g.ldq + r : r * g.ldq + j] = v;
}

/* ------------------------------------------------------------------ */
/* The 8-bit first layer, flattening and the classes: one thread per   */
/* output word (or row)                                                 */
/* ------------------------------------------------------------------ */

/* s = sum over taps of (x - 128) * w, w = +-1 from the packed filters, a
 * padded tap taking x = pad_byte (bnn.h's 8-bit layer, exact in integers),
 * then the epilogue.  Dense: x [n][ldx] bytes, rows of k; conv: x
 * [n][h][w][c] bytes and the geometry; w [m][ldw words].  A thread takes
 * the (up to) 64 outputs of one output word of a row. */
struct U8Args {
    int64_t n, m, k;
    const uint8_t *x;
    int64_t ldx;
    const uint64_t *w;
    int64_t ldw;
    int conv;
    int64_t h, wd, c, cw, kh, kw, oh, ow;
    int32_t sh, sw, dh, dw, pt, pl, pad_byte;
    GemmArgs out;                       /* epilogue and output, rows n (x oh x ow) */
};

BNN_HD int32_t u8_dot(const U8Args &g, int64_t row, int64_t col)
{
    int64_t s = 0;
    if (!g.conv) {
        const uint8_t *x = g.x + row * g.ldx;
        const uint64_t *w = g.w + col * g.ldw;
        for (int64_t l = 0; l < g.k; l++)
            s += ((w[l / 64] >> (l % 64)) & 1) ? 128 - (int64_t)x[l] : (int64_t)x[l] - 128;
        return (int32_t)s;
    }
    const int64_t b = row / (g.oh * g.ow), rest = row % (g.oh * g.ow);
    for (int64_t ky = 0; ky < g.kh; ky++)
        for (int64_t kx = 0; kx < g.kw; kx++) {
            const int64_t iy = (rest / g.ow) * g.sh - g.pt + ky * g.dh;
            const int64_t ix = (rest % g.ow) * g.sw - g.pl + kx * g.dw;
            const int in = iy >= 0 && iy < g.h && ix >= 0 && ix < g.wd;
            const uint8_t *x = g.x + ((b * g.h + iy) * g.wd + ix) * g.c;
            const uint64_t *w = g.w + col * g.ldw + (ky * g.kw + kx) * g.cw;
            for (int64_t ch = 0; ch < g.c; ch++) {
                const int64_t v = (in ? (int64_t)x[ch] : (int64_t)g.pad_byte) - 128;
                s += ((w[ch / 64] >> (ch % 64)) & 1) ? -v : v;
            }
        }
    return (int32_t)s;
}

BNN_HD void u8_word(const U8Args &g, int64_t idx)
{
    const int64_t mw = (g.m + 63) / 64, row = idx / mw, word = idx % mw;
    uint64_t bits = 0;
    for (int64_t j = 0; j < 64 && word * 64 + j < g.m; j++) {
        const int64_t col = word * 64 + j;
        const int32_t dot = u8_dot(g, row, col);
        if (g.out.epi == EPI_BITS) {
            bits |= (uint64_t)gemm_sign_bit(g.out, dot, col) << j;
        } else if (g.out.epi == EPI_INT32) {
            ((int32_t *)g.out.c)[row * g.out.ldc + col] = dot;
        } else {
            const float sc = g.out.scale ? g.out.scale[col] : 1.0f;
            const float of = g.out.offset ? g.out.offset[col] : 0.0f;
            ((float *)g.out.c)[row * g.out.ldc + col] = fmaf((float)dot, sc, of);
        }
    }
    if (g.out.epi == EPI_BITS) ((uint64_t *)g.out.c)[row * g.out.ldc + word] = bits;
}

/* [n][hw][words(c)] sign bits -> [n][words(hw * c)] in NHWC element order
 * (bit p * c + ch), pad bits 0: output word idx of the flat rows. */
struct FlatArgs {
    int64_t n, hw, c, cw, fw;
    const uint64_t *src;
    uint64_t *dst;
};

BNN_HD void flatten_word(const FlatArgs &g, int64_t idx)
{
    const int64_t i = idx / g.fw, word = idx % g.fw, total = g.hw * g.c;
    uint64_t v = 0;
    for (int64_t b = 0; b < 64 && word * 64 + b < total; b++) {
        const int64_t e = word * 64 + b, p = e / g.c, ch = e % g.c;
        v |= ((g.src[(i * g.hw + p) * g.cw + ch / 64] >> (ch % 64)) & 1) << b;
    }
    g.dst[idx] = v;
}

/* The class of row `row` of scores [n][classes]: the first NaN, else the
 * first maximum (numpy's argmax, as bnn_model_run). */
struct ArgmaxArgs {
    const float *scores;
    int64_t classes;
    int32_t *out;
};

BNN_HD void argmax_row(const ArgmaxArgs &g, int64_t row)
{
    const int64_t classes = g.classes;
    int32_t *out = g.out;
    const float *s = g.scores + row * classes;
    int64_t cls = 0;
    for (int64_t j = 0; j < classes; j++) {
        if (s[j] != s[j]) {
            cls = j;
            break;
        }
        if (s[j] > s[cls]) cls = j;
    }
    out[row] = (int32_t)cls;
}

/* ------------------------------------------------------------------ */
/* The float GEMM of the comparison (the paper's style of kernel)       */
/* ------------------------------------------------------------------ */

/* C[i][j] = sum_k A[i][k] * W[j][k] in float, a 16 x 16 tile of C per
 * block of 256 threads, one output per thread, K through shared memory in
 * 16-wide slices; each output adds its products in order k = 0, 1, ...,
 * a multiply and an add each rounded (no fused multiply-add): the sum a
 * plain loop on the CPU gives. */
enum { SG_TILE = 16, SG_THREADS = 256 };

struct SgemmArgs {
    int64_t n, m, k;
    const float *a;
    int64_t lda;
    const float *w;
    int64_t ldw;
    float *c;
    int64_t ldc;
};

struct SgemmSmem {
    float a[SG_TILE][SG_TILE + 1];
    float w[SG_TILE][SG_TILE + 1];
};

struct SgemmRegs {
    float acc;
};

BNN_HD void sgemm_load(const SgemmArgs &g, int64_t bx, int64_t by, int t, int64_t k0,
                       SgemmSmem &s)
{
    const int ty = t / SG_TILE, tx = t % SG_TILE;
    const int64_t row = by * SG_TILE + ty, col = bx * SG_TILE + ty, kk = k0 + tx;
    s.a[ty][tx] = (row < g.n && kk < g.k) ? g.a[row * g.lda + kk] : 0.0f;
    s.w[ty][tx] = (col < g.m && kk < g.k) ? g.w[col * g.ldw + kk] : 0.0f;
}

BNN_HD void sgemm_compute(const SgemmArgs &g, int t, int64_t k0, const SgemmSmem &s,
                          SgemmRegs &r)
{
    const int ty = t / SG_TILE, tx = t % SG_TILE;
    const int64_t left = g.k - k0;
    const int nk = left < SG_TILE ? (int)left : SG_TILE;     /* no terms past k */
    for (int kk = 0; kk < nk; kk++) {
        const float p = s.a[ty][kk] * s.w[tx][kk];
        r.acc = r.acc + p;
    }
}

template <class X>
BNN_HD void sgemm_block(const X &x, const SgemmArgs &g, int64_t bx, int64_t by, SgemmSmem &s,
                        SgemmRegs *regs)
{
    x.each([&](int t) { x.reg(regs, t).acc = 0.0f; });
    for (int64_t k0 = 0; k0 < g.k; k0 += SG_TILE) {
        x.each([&](int t) { sgemm_load(g, bx, by, t, k0, s); });
        x.sync();
        x.each([&](int t) { sgemm_compute(g, t, k0, s, x.reg(regs, t)); });
        x.sync();
    }
    x.each([&](int t) {
        const int64_t row = by * SG_TILE + t / SG_TILE, col = bx * SG_TILE + t % SG_TILE;
        if (row < g.n && col < g.m) g.c[row * g.ldc + col] = x.reg(regs, t).acc;
    });
}

/* ------------------------------------------------------------------ */
/* The elementwise and per-feature parts of a training step             */
/* ------------------------------------------------------------------ */

/* AP2 (bnn.h's bnn_ap2, bnn_internal.h's bnn_ap2_inline) on the device:
 * the exponent of z plus one where the fraction is at least that of
 * 1/sqrt(2); a subnormal z is first scaled by 2^54 and its power of two
 * scaled back, both exact (the result is at least 2^-1074), as frexp's
 * formulation gives. */
BNN_HD double ap2(double z)
{
    uint64_t u, e;
    double s = 1.0;
    memcpy(&u, &z, sizeof u);
    e = (u >> 52) & 0x7FF;
    if (e == 0x7FF) return z;                             /* inf, NaN */
    if (e == 0) {
        if ((u << 1) == 0) return 0.0;                    /* +-0 -> +0 */
        z *= 18014398509481984.0;                         /* 2^54 */
        s = 1.0 / 18014398509481984.0;
        memcpy(&u, &z, sizeof u);
        e = (u >> 52) & 0x7FF;
    }
    e += (u & 0xFFFFFFFFFFFFFULL) >= BNN_AP2_SQRT2_FRACTION;
    u = (u & 0x8000000000000000ULL) | (e << 52);
    memcpy(&z, &u, sizeof z);
    return z * s;
}

/* The optimizer step of bnn_opt_step / bnn_opt_step_pack (bnn.h), element
 * by element with the CPU's operations in the CPU's order
 * (ref/opt_ref.c): double per element, products and sums rounded once
 * (the build has no contracted multiply-adds), stored as float, then the
 * clip of the float.  step is bnn_opt_check's. */
struct OptArgs {
    int32_t kind;            /* bnn_opt_kind */
    int32_t clip_on;         /* p->clip > 0 */
    float clip;              /* (float)p->clip */
    double b1, b2, eps, step;
    int64_t rows, k, kw;     /* bnn_opt_step: rows n, k 1 */
    float *param;
    const float *grad;
    float *m, *v;
    uint64_t *signs;         /* the pack's; NULL for bnn_opt_step */
    int64_t lds;
};

/* The CPU's maximum (BNN_OPT_MAX, bnn_internal.h; the device's own fmax
 * need not give max(-0, +0) = -0). */
BNN_HD double opt_max(double bv, double ag) { return BNN_OPT_MAX(bv, ag); }

/* Element i (param, m, v); returns the new parameter. */
BNN_HD float opt_update(const OptArgs &g, int64_t i)
{
    const double b1 = g.b1, b2 = g.b2, eps = g.eps, gr = g.grad[i];
    const double mi = b1 * g.m[i] + (1.0 - b1) * gr;
    double vi, den;
    if (g.kind == BNN_OPT_ADAM) {
        vi = b2 * g.v[i] + (1.0 - b2) * gr * gr;
        den = sqrt(vi) + eps;
    } else if (g.kind == BNN_OPT_ADAMAX) {
        vi = opt_max(b2 * g.v[i], fabs(gr));
        den = vi + eps;
    } else {                                              /* SHIFT_ADAMAX */
        vi = ap2(opt_max(b2 * g.v[i], fabs(gr))) + eps;
        den = vi;
    }
    const double w = g.param[i] - g.step * (den > 0.0 ? mi / den : 0.0);
    float p = (float)w;
    g.m[i] = (float)mi;
    g.v[i] = (float)vi;
    if (g.clip_on) p = p < -g.clip ? -g.clip : (p > g.clip ? g.clip : p);
    g.param[i] = p;
    return p;
}

/* bnn_opt_step: one thread per element. */
BNN_HD void opt_elem_one(const OptArgs &g, int64_t idx)
{
    opt_update(g, idx);
}

/* bnn_opt_step_pack: a block takes OPT_WORDS sign words of one row.
 * Phase 1: thread t updates element 64 * w0 + t of the row (consecutive
 * threads, consecutive floats) and keeps whether the new value is
 * negative; phase 2, after the barrier: thread t < OPT_WORDS gathers word
 * w0 + t's 64 bits (new value < 0 -> 1, as bnn_pack_f32; pad bits 0). */
#define OPT_THREADS 256
#define OPT_WORDS (OPT_THREADS / 64)

struct OptSmem {
    uint8_t neg[OPT_THREADS];
};

/* Blocks per row of the pack's grid. */
BNN_HD int64_t opt_blocks_per_row(const OptArgs &g)
{
    return (g.kw + OPT_WORDS - 1) / OPT_WORDS;
}

template <class X>
BNN_HD void opt_pack_block(const X &x, const OptArgs &g, int64_t blk, OptSmem &s)
{
    const int64_t per_row = opt_blocks_per_row(g);
    const int64_t row = blk / per_row, w0 = (blk % per_row) * OPT_WORDS;
    x.each([&](int t) {
        const int64_t j = w0 * 64 + t;
        s.neg[t] = (uint8_t)(j < g.k && opt_update(g, row * g.k + j) < 0.0f);
    });
    x.sync();
    x.each([&](int t) {
        if (t >= OPT_WORDS || w0 + t >= g.kw) return;
        uint64_t bits = 0;
        for (int b = 0; b < 64; b++) bits |= (uint64_t)s.neg[64 * t + b] << b;
        g.signs[row * g.lds + w0 + t] = bits;
    });
}

/* Batch norm over x [n][c], one thread per feature (channel) adding its
 * rows 0, 1, ... in order in double: each feature's sums are the CPU's
 * (batchnorm.c walks features in chunks but adds every feature's rows in
 * this order), and so are the per-feature doubles and every output.
 * STANDARD and SHIFT (AP2 by ap2 above).  A first version: c threads,
 * correct and bit-exact, not yet tuned. */
struct BnArgs {
    int64_t n, c;
    int shift;
    const float *x, *gamma, *beta, *dy;
    float eps, momentum;
    float *running_mean, *running_invstd;   /* forward; either may be NULL */
    float *y, *mean, *scale;                /* forward: out; backward: saved (in) */
    float *dx, *dgamma, *dbeta;
};

BNN_HD void bn_forward_feature(const BnArgs &b, int64_t f)
{
    const int64_t n = b.n, c = b.c;
    const double momentum = b.momentum;
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++) mean += b.x[i * c + f];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        const double d = b.x[i * c + f] - mean;
        var += b.shift ? ap2(d) * d : d * d;
    }
    const double inv = 1.0 / sqrt(var / (double)n + (double)b.eps);
    if (b.running_mean)
        b.running_mean[f] = (float)((1.0 - momentum) * b.running_mean[f] + momentum * mean);
    if (b.running_invstd)
        b.running_invstd[f] = (float)((1.0 - momentum) * b.running_invstd[f] + momentum * inv);
    const double sc = b.shift ? ap2(inv) : inv;
    const double gm = b.shift ? ap2(b.gamma[f]) : (double)b.gamma[f];
    b.mean[f] = (float)mean;
    b.scale[f] = (float)sc;
    for (int64_t i = 0; i < n; i++)
        b.y[i * c + f] = (float)(gm * ((b.x[i * c + f] - mean) * sc) + b.beta[f]);
}

/* A normal power of two, positive or negative (batchnorm.c's is_pow2). */
BNN_HD int bn_pow2(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0xFFFFFFFFFFFFFULL) == 0 && ((u >> 52) & 0x7FF) != 0
           && ((u >> 52) & 0x7FF) != 0x7FF;
}

/* Backward from the saved mean and scale.  SHIFT: dgamma is
 * sc * sum AP2(d) * dy where sc is a power of two (as the forward saves
 * it; batchnorm.c shows this equals sum AP2(d * sc) * dy exactly), else
 * the sum of AP2(d * sc) * dy, as the CPU's exact loop. */
BNN_HD void bn_backward_feature(const BnArgs &b, int64_t f)
{
    const int64_t n = b.n, c = b.c;
    const double mean = b.mean[f], sc = b.scale[f];
    const int pow2 = b.shift && bn_pow2(sc);
    double sg = 0.0, sgx = 0.0, sdg = 0.0, gj, k2;
    for (int64_t i = 0; i < n; i++) {
        const double d = b.x[i * c + f] - mean, gi = b.dy[i * c + f];
        sg += gi;
        if (!b.shift) {
            sgx += d * sc * gi;
        } else {
            sgx += ap2(d) * gi;
            if (!pow2) sdg += ap2(d * sc) * gi;
        }
    }
    if (b.shift) {
        if (pow2) sdg = sc * sgx;
        gj = ap2(b.gamma[f]);
        b.dgamma[f] = (float)sdg;
        k2 = sc * sc * (sgx / (double)n);
    } else {
        gj = b.gamma[f];
        b.dgamma[f] = (float)sgx;
        k2 = sc * (sgx / (double)n);
    }
    b.dbeta[f] = (float)sg;
    const double gsc = gj * sc;
    sg /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        const double d = b.x[i * c + f] - mean;
        b.dx[i * c + f] = (float)(gsc * (b.dy[i * c + f] - sg - (b.shift ? ap2(d) : d) * k2));
    }
}

/* The sign activation's forward for training: one thread per word of a
 * row, the signs (x < 0 -> 1, bnn_pack_f32) and the straight-through mask
 * (|x| <= 1 -> 1, bnn_ste_mask_pack) of the same 64 floats; either output
 * may be NULL. */
struct SignArgs {
    int64_t rows, k, kw;
    const float *x;
    int64_t ldx;
    uint64_t *signs;
    int64_t lds;
    uint64_t *mask;
    int64_t ldm;
};

BNN_HD void sign_word_one(const SignArgs &g, int64_t idx)
{
    const int64_t row = idx / g.kw, word = idx % g.kw;
    const float *x = g.x + row * g.ldx + word * 64;
    const int64_t nb = g.k - word * 64 < 64 ? g.k - word * 64 : 64;
    uint64_t bits = 0, mbits = 0;
    for (int64_t b = 0; b < nb; b++) {
        bits |= (uint64_t)(x[b] < 0.0f) << b;
        mbits |= (uint64_t)(fabsf(x[b]) <= 1.0f) << b;
    }
    if (g.signs) g.signs[row * g.lds + word] = bits;
    if (g.mask) g.mask[row * g.ldm + word] = mbits;
}

/* The sign's backward (bnn_ste_backward_packed): out = grad where the mask
 * bit is 1, else +0; one thread per element. */
struct SteArgs {
    int64_t rows, k;
    const uint64_t *mask;
    int64_t ldm;
    const float *grad;
    int64_t ldg;
    float *out;
    int64_t ldo;
};

BNN_HD void ste_backward_one(const SteArgs &g, int64_t idx)
{
    const int64_t r = idx / g.k, j = idx % g.k;
    const float v = g.grad[r * g.ldg + j];
    g.out[r * g.ldo + j] = ((g.mask[r * g.ldm + j / 64] >> (j % 64)) & 1) ? v : 0.0f;
}

/* The gradient of pybnn.losses.squared_hinge with respect to the scores
 * [n][classes], as numpy computes it in float64: t = +1 for the label's
 * class and -1 elsewhere, m = max(0, 1 - t * s) (NaN stays NaN),
 * grad = (float)(-2 * t * m / (n * classes)), left to right.  A label
 * outside [0, classes) gives its row NaN.  One thread per score. */
struct HingeArgs {
    int64_t n, classes;
    const float *scores;
    const int32_t *labels;
    float *grad;
    double size;                        /* n * classes */
};

BNN_HD void hinge_grad_one(const HingeArgs &g, int64_t idx)
{
    const int64_t r = idx / g.classes, j = idx % g.classes;
    const int32_t y = g.labels[r];
    if (y < 0 || y >= g.classes) {
        g.grad[idx] = (float)NAN;
        return;
    }
    const double t = j == y ? 1.0 : -1.0, s = g.scores[idx];
    const double d = 1.0 - t * s;
    const double m = d > 0.0 ? d : (d != d ? d : 0.0);
    g.grad[idx] = (float)(-2.0 * t * m / g.size);
}

} /* namespace bnn_cuda */

#endif /* BNN_CUDA_KERNELS_CUH */
