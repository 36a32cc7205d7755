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

#ifdef __CUDACC__
#  define BNN_HD __host__ __device__ __forceinline__
#else
#  define BNN_HD inline
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

/* The epilogue, INT32 and FLOAT: thread t writes its outputs; BITS: it
 * leaves their sign bits in shared memory for gemm_store_words. */
BNN_HD void gemm_store(const GemmArgs &g, int64_t bx, int64_t by, int t, const GemmRegs &r,
                       GemmSmem &s)
{
    const int ty = t / 16, tx = t % 16;
    for (int i = 0; i < GEMM_TM; i++) {
        const int64_t row = by * GEMM_BM + ty + 16 * i;
        for (int j = 0; j < GEMM_TN; j++) {
            const int64_t col = bx * GEMM_BN + tx + 16 * j;
            const int32_t dot = gemm_dot(g, r.acc[i][j]);
            if (g.epi == EPI_BITS) {
                s.bits[ty + 16 * i][tx + 16 * j] =
                    (uint8_t)(row < g.n && col < g.m ? gemm_sign_bit(g, dot, col) : 0);
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
    }
}

/* BITS, after a barrier: thread t < GEMM_BM gathers row t's 64 bits into
 * the output word bx of its row (pad bits past m are 0). */
BNN_HD void gemm_store_words(const GemmArgs &g, int64_t bx, int64_t by, int t,
                             const GemmSmem &s)
{
    const int64_t row = by * GEMM_BM + t;
    if (t >= GEMM_BM || row >= g.n) return;
    uint64_t word = 0;
    for (int j = 0; j < GEMM_BN; j++) word |= (uint64_t)s.bits[t][j] << j;
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
        x.each([&](int t) { gemm_store_words(g, bx, by, t, s); });
    }
}

} /* namespace bnn_cuda */

#endif /* BNN_CUDA_KERNELS_CUH */
