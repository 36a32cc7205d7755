/*
 * cuda.cu -- the entry points of bnn_cuda.h: argument checks shared with
 * the CPU functions, launches of the kernels of kernels.cuh, and the CUDA
 * runtime's errors turned into BNN_ERR_DEVICE.
 */
#include "bnn_cuda.h"

extern "C" {
#include "core/bnn_engine.h"    /* bnn_epilogue_check */
}
#include "kernels.cuh"
#include "runner.cuh"

#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

using namespace bnn_cuda;

/* The runtime's message of the last failure on this thread. */
static thread_local char g_last_error[256];

static bnn_status device_error(cudaError_t e, const char *what)
{
    snprintf(g_last_error, sizeof g_last_error, "%s: %s (%s)", what, cudaGetErrorString(e),
             cudaGetErrorName(e));
    return BNN_ERR_DEVICE;
}

extern "C" const char *bnn_cuda_last_error(void)
{
    return g_last_error;
}

extern "C" bnn_status bnn_cuda_available(int *devices, char *why, size_t why_len)
{
    int n = 0;
    cudaError_t e;
    if (devices == NULL) return BNN_ERR_NULL;
    *devices = 0;
    e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        if (why && why_len)
            snprintf(why, why_len, "%s", e != cudaSuccess ? cudaGetErrorString(e)
                                                          : "no CUDA device");
        (void)cudaGetLastError();     /* clear the sticky error of a failed start */
        return BNN_ERR_DEVICE;
    }
    if (why && why_len) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
            snprintf(why, why_len, "%d device(s); device 0: %s, sm_%d%d", n, p.name, p.major,
                     p.minor);
        else
            snprintf(why, why_len, "%d device(s)", n);
    }
    *devices = n;
    return BNN_OK;
}

extern "C" bnn_status bnn_cuda_malloc(void **ptr, size_t bytes)
{
    cudaError_t e;
    if (ptr == NULL) return BNN_ERR_NULL;
    *ptr = NULL;
    if (bytes == 0) return BNN_OK;
    e = cudaMalloc(ptr, bytes);
    if (e != cudaSuccess) {
        *ptr = NULL;
        return device_error(e, "bnn_cuda_malloc");
    }
    return BNN_OK;
}

extern "C" bnn_status bnn_cuda_free(void *ptr)
{
    cudaError_t e;
    if (ptr == NULL) return BNN_OK;
    e = cudaFree(ptr);
    return e == cudaSuccess ? BNN_OK : device_error(e, "bnn_cuda_free");
}

static bnn_status copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                       const char *fn)
{
    cudaError_t e;
    if (bytes == 0) return BNN_OK;
    if (dst == NULL || src == NULL) return BNN_ERR_NULL;
    e = cudaMemcpy(dst, src, bytes, kind);
    return e == cudaSuccess ? BNN_OK : device_error(e, fn);
}

extern "C" bnn_status bnn_cuda_copy_to_device(void *dst, const void *src, size_t bytes)
{
    return copy(dst, src, bytes, cudaMemcpyHostToDevice, "bnn_cuda_copy_to_device");
}

extern "C" bnn_status bnn_cuda_copy_to_host(void *dst, const void *src, size_t bytes)
{
    return copy(dst, src, bytes, cudaMemcpyDeviceToHost, "bnn_cuda_copy_to_host");
}

extern "C" bnn_status bnn_cuda_synchronize(void *stream)
{
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)stream);
    return e == cudaSuccess ? BNN_OK : device_error(e, "bnn_cuda_synchronize");
}

/* BNN_OK when the device can reach p (device, managed or registered host
 * memory; NULL passes: the argument checks decide about NULL). */
static bnn_status device_pointer(const void *p, const char *fn, const char *name)
{
    cudaPointerAttributes at;
    cudaError_t e;
    if (p == NULL) return BNN_OK;
    e = cudaPointerGetAttributes(&at, p);
    if (e != cudaSuccess) return device_error(e, fn);
    if (at.type == cudaMemoryTypeUnregistered || at.devicePointer == NULL) {
        snprintf(g_last_error, sizeof g_last_error,
                 "%s: %s = %p is not memory the device can reach (cudaMalloc it, or "
                 "register it)", fn, name, p);
        return BNN_ERR_DEVICE;
    }
    return BNN_OK;
}

/* The launch's status: a refused launch (bad configuration, no device) is
 * reported now; a fault inside the kernel surfaces at the next
 * synchronizing call, as for any CUDA kernel. */
static bnn_status launched(const char *what)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? BNN_OK : device_error(e, what);
}

/* The kernels of one thread per item: item i < total runs F(g, i). */
template <class A, void (*F)(const A &, int64_t)>
__global__ void k_items(A g, int64_t total)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) F(g, i);
}

/* Launches k_items<A, F> over `total` items, 256 threads per block. */
template <class A, void (*F)(const A &, int64_t)>
static bnn_status launch_items(const A &g, int64_t total, cudaStream_t stream, const char *fn)
{
    const int64_t blocks = (total + 255) / 256;
    if (total == 0) return BNN_OK;
    if (blocks > INT32_MAX) return BNN_ERR_OVERFLOW;
    k_items<A, F><<<(unsigned)blocks, 256, 0, stream>>>(g, total);
    return launched(fn);
}

/* ------------------------------------------------------------------ */
/* Packing                                                             */
/* ------------------------------------------------------------------ */

extern "C" bnn_status bnn_cuda_pack_f32(int64_t rows, int64_t k, const float *src,
                                        int64_t src_stride, uint64_t *dst,
                                        int64_t dst_stride_words, void *stream)
{
    PackArgs p;
    bnn_status st = bnn_pack_check(rows, k, src, src_stride, sizeof(float), dst,
                                   dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    if ((st = device_pointer(src, "bnn_cuda_pack_f32", "src")) != BNN_OK
        || (st = device_pointer(dst, "bnn_cuda_pack_f32", "dst")) != BNN_OK)
        return st;
    p.rows = rows; p.k = k; p.kw = bnn_words(k);
    p.src = src; p.lds = src_stride; p.dst = dst; p.ldd = dst_stride_words;
    return launch_items<PackArgs, pack_one>(p, rows * p.kw, (cudaStream_t)stream,
                                            "bnn_cuda_pack_f32");
}

/* ------------------------------------------------------------------ */
/* GEMM                                                                */
/* ------------------------------------------------------------------ */

__global__ void __launch_bounds__(GEMM_THREADS) k_gemm_simt(GemmArgs g, int64_t by0)
{
    __shared__ GemmSmem s;
    GemmRegs r;
    gemm_simt_block(DeviceExec(), g, (int64_t)blockIdx.x, by0 + blockIdx.y, s, &r);
}

__global__ void __launch_bounds__(TC_THREADS) k_gemm_tc(GemmArgs g, int64_t by0)
{
    __shared__ TcSmem s;
    TcRegs r;
    gemm_tc_block(DeviceExec(), g, (int64_t)blockIdx.x, by0 + blockIdx.y, s, &r);
}

/* The current device's compute capability major version (0 on failure). */
static int device_major(void)
{
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess
        || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
        return 0;
    return major;
}

/* The grid of a 64 x 64 tiled kernel over rows x cols, in slices of at most
 * 65535 block rows (gridDim.y's limit). */
template <class F>
static bnn_status launch_tiles(int64_t rows, int64_t cols, const char *fn, F launch)
{
    const int64_t bxs = (cols + GEMM_BN - 1) / GEMM_BN, bys = (rows + GEMM_BM - 1) / GEMM_BM;
    bnn_status st;
    if (bxs > INT32_MAX) return BNN_ERR_OVERFLOW;
    for (int64_t by0 = 0; by0 < bys; by0 += 65535) {
        launch(dim3((unsigned)bxs, (unsigned)(bys - by0 < 65535 ? bys - by0 : 65535)), by0);
        if ((st = launched(fn)) != BNN_OK) return st;
    }
    return BNN_OK;
}

static bnn_status launch_gemm(const GemmArgs &g, int tensor, cudaStream_t stream)
{
    return launch_tiles(g.n, g.m, "bnn_cuda_gemm", [&](dim3 grid, int64_t by0) {
        if (tensor) k_gemm_tc<<<grid, TC_THREADS, 0, stream>>>(g, by0);
        else k_gemm_simt<<<grid, GEMM_THREADS, 0, stream>>>(g, by0);
    });
}

extern "C" bnn_status bnn_cuda_gemm(int64_t n, int64_t m, int64_t k, const uint64_t *a,
                                    int64_t lda_words, const uint64_t *w, int64_t ldw_words,
                                    const bnn_epilogue *epi, void *c, int64_t ldc, int kernel,
                                    void *stream)
{
    GemmArgs g;
    bnn_status st;
    if (kernel < BNN_CUDA_GEMM_AUTO || kernel > BNN_CUDA_GEMM_TENSOR) return BNN_ERR_INVALID;
    st = bnn_gemm_check(n, m, k, a, lda_words, w, ldw_words, &epi, c, ldc);
    if (st != BNN_OK || n == 0 || m == 0) return st;
    {
        static const char *fn = "bnn_cuda_gemm";
        const int fl = epi->kind == BNN_EPI_FLOAT, bits = epi->kind == BNN_EPI_BITS;
        const void *ptrs[] = {a, w, c, fl ? epi->scale : NULL, fl ? epi->offset : NULL,
                              bits ? epi->thresh : NULL, bits ? epi->flip : NULL};
        static const char *names[] = {"a", "w", "c", "epi->scale", "epi->offset",
                                      "epi->thresh", "epi->flip"};
        for (int i = 0; i < 7; i++)      /* those the epilogue reads */
            if ((st = device_pointer(ptrs[i], fn, names[i])) != BNN_OK) return st;
    }
    if (kernel != BNN_CUDA_GEMM_SIMT) {       /* mma .b1 with AND: sm_80 and later */
        const int tensor = device_major() >= 8;
        if (kernel == BNN_CUDA_GEMM_TENSOR && !tensor) {
            snprintf(g_last_error, sizeof g_last_error,
                     "bnn_cuda_gemm: the tensor-core kernel needs compute capability 8.0 or later");
            return BNN_ERR_UNSUPPORTED;
        }
        kernel = tensor ? BNN_CUDA_GEMM_TENSOR : BNN_CUDA_GEMM_SIMT;
    }
    g.n = n; g.m = m; g.k = k; g.kw = bnn_words(k);
    g.a = a; g.lda = lda_words; g.w = w; g.ldw = ldw_words;
    g.epi = epi->kind;
    g.scale = epi->scale; g.offset = epi->offset; g.thresh = epi->thresh; g.flip = epi->flip;
    g.c = c; g.ldc = ldc;
    return launch_gemm(g, kernel == BNN_CUDA_GEMM_TENSOR, (cudaStream_t)stream);
}

/* ------------------------------------------------------------------ */
/* Convolution and pooling                                             */
/* ------------------------------------------------------------------ */

__global__ void __launch_bounds__(GEMM_THREADS) k_conv_simt(ConvArgs g, int64_t by0)
{
    __shared__ ConvSmem s;
    ConvRegs r;
    conv_simt_block(DeviceExec(), g, (int64_t)blockIdx.x, by0 + blockIdx.y, s, &r);
}

/* The epilogue's device arrays, each checked (those the kind reads). */
static bnn_status epilogue_pointers(const bnn_epilogue *epi, const char *fn)
{
    const int fl = epi->kind == BNN_EPI_FLOAT, bits = epi->kind == BNN_EPI_BITS;
    const void *ptrs[] = {fl ? epi->scale : NULL, fl ? epi->offset : NULL,
                          bits ? epi->thresh : NULL, bits ? epi->flip : NULL};
    static const char *names[] = {"epi->scale", "epi->offset", "epi->thresh", "epi->flip"};
    bnn_status st;
    for (int i = 0; i < 4; i++)
        if ((st = device_pointer(ptrs[i], fn, names[i])) != BNN_OK) return st;
    return BNN_OK;
}

static bnn_status launch_conv(const ConvArgs &g, cudaStream_t stream)
{
    return launch_tiles(g.out.n, g.o, "bnn_cuda_conv2d", [&](dim3 grid, int64_t by0) {
        k_conv_simt<<<grid, GEMM_THREADS, 0, stream>>>(g, by0);
    });
}

extern "C" bnn_status bnn_cuda_conv2d(const bnn_conv2d_params *p, const uint64_t *x,
                                      const uint64_t *w, const bnn_epilogue *epi, void *out,
                                      void *stream)
{
    static const char *fn = "bnn_cuda_conv2d";
    int64_t oh, ow, rows, row_out;
    size_t elem;
    ConvArgs g;
    bnn_status st = bnn_conv2d_output_shape(p, &oh, &ow);
    if (st != BNN_OK) return st;
    if ((st = bnn_epilogue_check(&epi, p->o, &elem, &row_out)) != BNN_OK) return st;
    if (!bnn_mul_ok(p->n, oh, &rows) || !bnn_mul_ok(rows, ow, &rows)) return BNN_ERR_OVERFLOW;
    if (rows == 0 || p->o == 0) return BNN_OK;
    if (x == NULL || w == NULL || out == NULL) return BNN_ERR_NULL;
    if (!bnn_extent_ok(rows, row_out, row_out, elem)) return BNN_ERR_OVERFLOW;
    if ((st = device_pointer(x, fn, "x")) != BNN_OK || (st = device_pointer(w, fn, "w")) != BNN_OK
        || (st = device_pointer(out, fn, "out")) != BNN_OK
        || (st = epilogue_pointers(epi, fn)) != BNN_OK)
        return st;
    g.n = p->n; g.h = p->h; g.w = p->w; g.c = p->c; g.cw = bnn_words(p->c); g.o = p->o;
    g.kh = p->kh; g.kw = p->kw; g.oh = oh; g.ow = ow;
    g.sh = p->stride_h; g.sw = p->stride_w; g.dh = p->dilation_h; g.dw = p->dilation_w;
    g.pt = p->pad_top; g.pl = p->pad_left; g.pad_value = p->pad_value;
    g.x = x; g.wt = w;
    g.out.n = rows; g.out.m = p->o; g.out.k = p->kh * p->kw * p->c; g.out.kw = 0;
    g.out.a = NULL; g.out.lda = 0; g.out.w = NULL; g.out.ldw = 0;
    g.out.epi = epi->kind;
    g.out.scale = epi->scale; g.out.offset = epi->offset;
    g.out.thresh = epi->thresh; g.out.flip = epi->flip;
    g.out.c = out; g.out.ldc = row_out;
    return launch_conv(g, (cudaStream_t)stream);
}

static bnn_status launch_pool(const PoolArgs &g, int64_t total, cudaStream_t stream)
{
    return launch_items<PoolArgs, pool_word>(g, total, stream, "bnn_cuda_maxpool2d_bits");
}

extern "C" bnn_status bnn_cuda_maxpool2d_bits(const bnn_pool2d_params *p, const uint64_t *x,
                                              const uint8_t *flip, uint64_t *out, void *stream)
{
    static const char *fn = "bnn_cuda_maxpool2d_bits";
    int64_t oh, ow, total;
    PoolArgs g;
    bnn_status st = bnn_pool2d_output_shape(p, &oh, &ow);
    if (st != BNN_OK) return st;
    if (!bnn_mul_ok(p->n, oh, &total) || !bnn_mul_ok(total, ow, &total)
        || !bnn_mul_ok(total, bnn_words(p->c), &total))
        return BNN_ERR_OVERFLOW;
    if (total == 0) return BNN_OK;
    if (x == NULL || out == NULL) return BNN_ERR_NULL;
    if ((st = device_pointer(x, fn, "x")) != BNN_OK
        || (st = device_pointer(flip, fn, "flip")) != BNN_OK
        || (st = device_pointer(out, fn, "out")) != BNN_OK)
        return st;
    g.n = p->n; g.h = p->h; g.w = p->w; g.cw = bnn_words(p->c); g.oh = oh; g.ow = ow;
    g.kh = p->kh; g.kw = p->kw; g.sh = p->stride_h; g.sw = p->stride_w;
    g.pt = p->pad_top; g.pl = p->pad_left; g.x = x; g.flip = flip; g.c = p->c; g.out = out;
    return launch_pool(g, total, (cudaStream_t)stream);
}

/* ------------------------------------------------------------------ */
/* The training products                                               */
/* ------------------------------------------------------------------ */

__global__ void __launch_bounds__(PM1_THREADS) k_pm1(Pm1Args g, int64_t by0)
{
    __shared__ Pm1Smem s;
    Pm1Regs r;
    pm1_block(DeviceExec(), g, (int64_t)blockIdx.x, by0 + blockIdx.y, s, &r);
}

static bnn_status launch_pm1(const Pm1Args &g, void *stream, const char *fn)
{
    const int64_t bxs = (g.K + 63) / 64, bys = (g.I + PM1_ROWS - 1) / PM1_ROWS;
    bnn_status st;
    if (bxs > INT32_MAX) return BNN_ERR_OVERFLOW;
    for (int64_t by0 = 0; by0 < bys; by0 += 65535) {
        dim3 grid((unsigned)bxs, (unsigned)(bys - by0 < 65535 ? bys - by0 : 65535));
        k_pm1<<<grid, PM1_THREADS, 0, (cudaStream_t)stream>>>(g, by0);
        if ((st = launched(fn)) != BNN_OK) return st;
    }
    return BNN_OK;
}

extern "C" bnn_status bnn_cuda_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a,
                                            int64_t lda_i, int64_t lda_j, const uint64_t *s,
                                            int64_t lds, float *c, int64_t ldc, int accumulate,
                                            void *stream)
{
    static const char *fn = "bnn_cuda_gemm_f32_pm1";
    Pm1Args g;
    bnn_status st = bnn_gemm_f32_pm1_check(I, K, J, a, lda_i, lda_j, s, lds, c, ldc);
    if (st != BNN_OK || I == 0 || K == 0) return st;
    if ((st = device_pointer(c, fn, "c")) != BNN_OK) return st;
    if (J > 0 && ((st = device_pointer(a, fn, "a")) != BNN_OK
                  || (st = device_pointer(s, fn, "s")) != BNN_OK))
        return st;
    memset(&g, 0, sizeof g);
    g.I = I; g.K = K; g.J = J; g.a = a; g.lda_i = lda_i; g.lda_j = lda_j; g.s = s; g.lds = lds;
    g.c = c; g.ldc = ldc; g.accumulate = accumulate != 0; g.f32 = 1;
    return launch_pm1(g, stream, fn);
}

extern "C" bnn_status bnn_cuda_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q,
                                           int64_t ldq, const uint64_t *s, int64_t lds,
                                           int32_t *c, int64_t ldc, void *stream)
{
    static const char *fn = "bnn_cuda_gemm_i8_pm1";
    Pm1Args g;
    bnn_status st = bnn_gemm_i8_pm1_check(I, K, J, q, ldq, s, lds, c, ldc);
    if (st != BNN_OK || I == 0 || K == 0) return st;
    if ((st = device_pointer(c, fn, "c")) != BNN_OK) return st;
    if (J > 0 && ((st = device_pointer(q, fn, "q")) != BNN_OK
                  || (st = device_pointer(s, fn, "s")) != BNN_OK))
        return st;
    memset(&g, 0, sizeof g);
    g.I = I; g.K = K; g.J = J; g.q = q; g.lda_i = ldq; g.lda_j = 1; g.s = s; g.lds = lds;
    g.ci = c; g.ldc = ldc; g.f32 = 0;
    return launch_pm1(g, stream, fn);
}

/* ------------------------------------------------------------------ */
/* Stochastic rounding to int8                                         */
/* ------------------------------------------------------------------ */


extern "C" bnn_status bnn_cuda_quantize_i8(int64_t rows, int64_t k, const float *a, int64_t lda,
                                           int by_column, uint64_t seed, uint64_t counter,
                                           int8_t *q, int64_t ldq, float *scale, void *stream)
{
    static const char *fn = "bnn_cuda_quantize_i8";
    QuantArgs g;
    const int64_t ns = by_column ? k : rows;
    bnn_status st = bnn_quantize_i8_check(rows, k, a, lda, by_column, q, ldq, scale);
    if (st != BNN_OK) return st;
    if ((st = device_pointer(scale, fn, "scale")) != BNN_OK) return st;
    if (rows == 0 || k == 0) {                       /* every scale 0 */
        cudaError_t e = ns > 0 ? cudaMemsetAsync(scale, 0, (size_t)ns * sizeof(float),
                                                 (cudaStream_t)stream) : cudaSuccess;
        return e == cudaSuccess ? BNN_OK : device_error(e, fn);
    }
    if ((st = device_pointer(a, fn, "a")) != BNN_OK || (st = device_pointer(q, fn, "q")) != BNN_OK)
        return st;
    g.rows = rows; g.k = k; g.lda = lda; g.ldq = ldq; g.a = a; g.by_column = by_column != 0;
    g.seed = seed; g.counter = counter; g.q = q; g.scale = scale;
    if ((st = launch_items<QuantArgs, quant_scale_one>(g, ns, (cudaStream_t)stream, fn)) != BNN_OK)
        return st;
    return launch_items<QuantArgs, quant_round_one>(g, rows * k, (cudaStream_t)stream, fn);
}

/* ------------------------------------------------------------------ */
/* The convolution's backward products                                 */
/* ------------------------------------------------------------------ */

/* Checks (those of the CPU functions: geometry, NULL, the 2^24 limits of
 * the int8 sums), fills g and launches one thread per output. */
static bnn_status conv_grad(const bnn_conv2d_params *p, int weights, const uint64_t *bits,
                            const float *grad, const int8_t *q, const float *scale, float *out,
                            int accumulate, void *stream, const char *fn)
{
    ConvGradArgs g;
    int64_t oh, ow, M, total;
    bnn_status st = bnn_conv2d_output_shape(p, &oh, &ow);
    if (st != BNN_OK) return st;
    if (!bnn_mul_ok(p->n, oh, &M) || !bnn_mul_ok(M, ow, &M)) return BNN_ERR_OVERFLOW;
    if (grad == NULL && (weights ? M : p->o) >= ((int64_t)1 << 24)) return BNN_ERR_SHAPE;
    if (weights) {
        if (!bnn_mul_ok(p->o, p->kh * p->kw, &total) || !bnn_mul_ok(total, p->c, &total))
            return BNN_ERR_OVERFLOW;
    } else if (!bnn_mul_ok(p->n, p->h * p->w, &total) || !bnn_mul_ok(total, p->c, &total)) {
        return BNN_ERR_OVERFLOW;
    }
    if (total == 0) return BNN_OK;
    if (bits == NULL || out == NULL || (grad == NULL && (q == NULL || scale == NULL)))
        return BNN_ERR_NULL;
    if ((st = device_pointer(bits, fn, weights ? "x" : "w")) != BNN_OK
        || (st = device_pointer(grad, fn, "grad")) != BNN_OK
        || (st = device_pointer(q, fn, weights ? "qt" : "q")) != BNN_OK
        || (st = device_pointer(scale, fn, "scale")) != BNN_OK
        || (st = device_pointer(out, fn, weights ? "gw" : "gx")) != BNN_OK)
        return st;
    memset(&g, 0, sizeof g);
    g.n = p->n; g.h = p->h; g.w = p->w; g.c = p->c; g.cw = bnn_words(p->c); g.o = p->o;
    g.kh = p->kh; g.kw = p->kw; g.oh = oh; g.ow = ow;
    g.sh = p->stride_h; g.sw = p->stride_w; g.dh = p->dilation_h; g.dw = p->dilation_w;
    g.pt = p->pad_top; g.pl = p->pad_left; g.pad_value = p->pad_value;
    if (weights) g.x = bits; else g.wt = bits;
    g.grad = grad; g.q = q; g.scale = scale; g.out = out; g.accumulate = accumulate != 0;
    return weights ? launch_items<ConvGradArgs, conv_grad_weights_one>(g, total, (cudaStream_t)stream, fn)
                   : launch_items<ConvGradArgs, conv_grad_input_one>(g, total, (cudaStream_t)stream, fn);
}

extern "C" bnn_status bnn_cuda_conv2d_grad_weights_f32(const bnn_conv2d_params *p,
                                                       const uint64_t *x, const float *grad,
                                                       float *gw, int accumulate, void *stream)
{
    if (p && grad == NULL) {
        int64_t oh, ow;
        bnn_status st = bnn_conv2d_output_shape(p, &oh, &ow);
        if (st != BNN_OK) return st;
        if (p->n * oh * ow > 0 && p->o > 0) return BNN_ERR_NULL;
    }
    return conv_grad(p, 1, x, grad, NULL, NULL, gw, accumulate, stream,
                     "bnn_cuda_conv2d_grad_weights_f32");
}

extern "C" bnn_status bnn_cuda_conv2d_grad_weights_i8(const bnn_conv2d_params *p,
                                                      const uint64_t *x, const int8_t *qt,
                                                      const float *scale, float *gw,
                                                      int accumulate, void *stream)
{
    return conv_grad(p, 1, x, NULL, qt, scale, gw, accumulate, stream,
                     "bnn_cuda_conv2d_grad_weights_i8");
}

extern "C" bnn_status bnn_cuda_conv2d_grad_input_f32(const bnn_conv2d_params *p,
                                                     const uint64_t *w, const float *grad,
                                                     float *gx, void *stream)
{
    if (p && grad == NULL) {
        int64_t oh, ow;
        bnn_status st = bnn_conv2d_output_shape(p, &oh, &ow);
        if (st != BNN_OK) return st;
        if (p->n * p->h * p->w > 0) return BNN_ERR_NULL;
    }
    return conv_grad(p, 0, w, grad, NULL, NULL, gx, 0, stream, "bnn_cuda_conv2d_grad_input_f32");
}

extern "C" bnn_status bnn_cuda_conv2d_grad_input_i8(const bnn_conv2d_params *p,
                                                    const uint64_t *w, const int8_t *q,
                                                    const float *scale, float *gx, void *stream)
{
    return conv_grad(p, 0, w, NULL, q, scale, gx, 0, stream, "bnn_cuda_conv2d_grad_input_i8");
}

/* ------------------------------------------------------------------ */
/* The elementwise and per-feature parts of a training step             */
/* ------------------------------------------------------------------ */

__global__ void __launch_bounds__(OPT_THREADS) k_opt_pack(OptArgs g)
{
    __shared__ OptSmem s;
    opt_pack_block(DeviceExec(), g, (int64_t)blockIdx.x, s);
}

static bnn_status opt_launch(const bnn_opt_params *p, int pack, int64_t rows, int64_t k,
                             float *param, const float *grad, float *m, float *v,
                             uint64_t *signs, int64_t signs_stride_words, void *stream,
                             const char *fn)
{
    OptArgs g;
    double step = 0.0;
    bnn_status st = bnn_opt_check(p, pack, rows, k, param, grad, m, v, signs,
                                  signs_stride_words, &step);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    if ((st = device_pointer(param, fn, "param")) != BNN_OK
        || (st = device_pointer(grad, fn, "grad")) != BNN_OK
        || (st = device_pointer(m, fn, "m")) != BNN_OK
        || (st = device_pointer(v, fn, "v")) != BNN_OK
        || (pack && (st = device_pointer(signs, fn, "signs")) != BNN_OK))
        return st;
    memset(&g, 0, sizeof g);
    g.kind = p->kind; g.clip_on = p->clip > 0.0; g.clip = (float)p->clip;
    g.b1 = p->beta1; g.b2 = p->beta2; g.eps = p->eps; g.step = step;
    g.rows = rows; g.k = k; g.kw = bnn_words(k);
    g.param = param; g.grad = grad; g.m = m; g.v = v;
    g.signs = pack ? signs : NULL; g.lds = signs_stride_words;
    if (!pack) return launch_items<OptArgs, opt_elem_one>(g, rows, (cudaStream_t)stream, fn);
    if (rows > INT32_MAX / opt_blocks_per_row(g)) return BNN_ERR_OVERFLOW;
    k_opt_pack<<<(unsigned)(rows * opt_blocks_per_row(g)), OPT_THREADS, 0,
                 (cudaStream_t)stream>>>(g);
    return launched(fn);
}

extern "C" bnn_status bnn_cuda_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                                        const float *grad, float *m, float *v, void *stream)
{
    return opt_launch(p, 0, n, 1, param, grad, m, v, NULL, 0, stream, "bnn_cuda_opt_step");
}

extern "C" bnn_status bnn_cuda_opt_step_pack(const bnn_opt_params *p, int64_t rows, int64_t k,
                                             float *param, const float *grad, float *m,
                                             float *v, uint64_t *signs,
                                             int64_t signs_stride_words, void *stream)
{
    return opt_launch(p, 1, rows, k, param, grad, m, v, signs, signs_stride_words, stream,
                      "bnn_cuda_opt_step_pack");
}

extern "C" bnn_status bnn_cuda_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c,
                                                const float *x, const float *gamma,
                                                const float *beta, float eps, float momentum,
                                                float *running_mean, float *running_invstd,
                                                float *y, float *save_mean, float *save_scale,
                                                void *stream)
{
    static const char *fn = "bnn_cuda_bn_forward_train";
    BnArgs b;
    bnn_status st = bnn_bn_forward_train_check(kind, n, c, x, gamma, beta, eps, momentum, y,
                                               save_mean, save_scale);
    if (st != BNN_OK || c == 0) return st;
    if ((st = device_pointer(x, fn, "x")) != BNN_OK
        || (st = device_pointer(gamma, fn, "gamma")) != BNN_OK
        || (st = device_pointer(beta, fn, "beta")) != BNN_OK
        || (st = device_pointer(running_mean, fn, "running_mean")) != BNN_OK
        || (st = device_pointer(running_invstd, fn, "running_invstd")) != BNN_OK
        || (st = device_pointer(y, fn, "y")) != BNN_OK
        || (st = device_pointer(save_mean, fn, "save_mean")) != BNN_OK
        || (st = device_pointer(save_scale, fn, "save_scale")) != BNN_OK)
        return st;
    memset(&b, 0, sizeof b);
    b.n = n; b.c = c; b.shift = kind == BNN_BN_SHIFT; b.x = x; b.gamma = gamma; b.beta = beta;
    b.eps = eps; b.momentum = momentum; b.running_mean = running_mean;
    b.running_invstd = running_invstd; b.y = y; b.mean = save_mean; b.scale = save_scale;
    return launch_items<BnArgs, bn_forward_feature>(b, c, (cudaStream_t)stream, fn);
}

extern "C" bnn_status bnn_cuda_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c,
                                           const float *x, const float *gamma,
                                           const float *save_mean, const float *save_scale,
                                           const float *dy, float *dx, float *dgamma,
                                           float *dbeta, void *stream)
{
    static const char *fn = "bnn_cuda_bn_backward";
    BnArgs b;
    bnn_status st = bnn_bn_backward_check(kind, n, c, x, gamma, save_mean, save_scale, dy, dx,
                                          dgamma, dbeta);
    if (st != BNN_OK || c == 0) return st;
    if ((st = device_pointer(x, fn, "x")) != BNN_OK
        || (st = device_pointer(gamma, fn, "gamma")) != BNN_OK
        || (st = device_pointer(save_mean, fn, "save_mean")) != BNN_OK
        || (st = device_pointer(save_scale, fn, "save_scale")) != BNN_OK
        || (st = device_pointer(dy, fn, "dy")) != BNN_OK
        || (st = device_pointer(dx, fn, "dx")) != BNN_OK
        || (st = device_pointer(dgamma, fn, "dgamma")) != BNN_OK
        || (st = device_pointer(dbeta, fn, "dbeta")) != BNN_OK)
        return st;
    memset(&b, 0, sizeof b);
    b.n = n; b.c = c; b.shift = kind == BNN_BN_SHIFT; b.x = x; b.gamma = gamma; b.dy = dy;
    b.mean = (float *)save_mean; b.scale = (float *)save_scale;     /* read only */
    b.dx = dx; b.dgamma = dgamma; b.dbeta = dbeta;
    return launch_items<BnArgs, bn_backward_feature>(b, c, (cudaStream_t)stream, fn);
}

static bnn_status sign_launch(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                              uint64_t *signs, int64_t signs_stride_words, uint64_t *mask,
                              int64_t mask_stride_words, void *stream, const char *fn)
{
    SignArgs g;
    bnn_status st;
    if ((st = device_pointer(x, fn, "x")) != BNN_OK
        || (st = device_pointer(signs, fn, "signs")) != BNN_OK
        || (st = device_pointer(mask, fn, "mask")) != BNN_OK)
        return st;
    g.rows = rows; g.k = k; g.kw = bnn_words(k); g.x = x; g.ldx = x_stride;
    g.signs = signs; g.lds = signs_stride_words; g.mask = mask; g.ldm = mask_stride_words;
    return launch_items<SignArgs, sign_word_one>(g, rows * g.kw, (cudaStream_t)stream, fn);
}

extern "C" bnn_status bnn_cuda_ste_mask_pack(int64_t rows, int64_t k, const float *x,
                                             int64_t x_stride, uint64_t *mask,
                                             int64_t mask_stride_words, void *stream)
{
    bnn_status st = bnn_pack_check(rows, k, x, x_stride, sizeof(float), mask,
                                   mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    return sign_launch(rows, k, x, x_stride, NULL, 0, mask, mask_stride_words, stream,
                       "bnn_cuda_ste_mask_pack");
}

extern "C" bnn_status bnn_cuda_sign_forward(int64_t rows, int64_t k, const float *x,
                                            int64_t x_stride, uint64_t *signs,
                                            int64_t signs_stride_words, uint64_t *mask,
                                            int64_t mask_stride_words, void *stream)
{
    bnn_status st = bnn_pack_check(rows, k, x, x_stride, sizeof(float), signs,
                                   signs_stride_words);
    if (st == BNN_OK)
        st = bnn_pack_check(rows, k, x, x_stride, sizeof(float), mask, mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    return sign_launch(rows, k, x, x_stride, signs, signs_stride_words, mask, mask_stride_words,
                       stream, "bnn_cuda_sign_forward");
}

extern "C" bnn_status bnn_cuda_ste_backward_packed(int64_t rows, int64_t k,
                                                   const uint64_t *mask,
                                                   int64_t mask_stride_words, const float *grad,
                                                   int64_t grad_stride, float *out,
                                                   int64_t out_stride, void *stream)
{
    static const char *fn = "bnn_cuda_ste_backward_packed";
    SteArgs g;
    bnn_status st = bnn_ste_backward_packed_check(rows, k, mask, mask_stride_words, grad,
                                                  grad_stride, out, out_stride);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    if ((st = device_pointer(mask, fn, "mask")) != BNN_OK
        || (st = device_pointer(grad, fn, "grad")) != BNN_OK
        || (st = device_pointer(out, fn, "out")) != BNN_OK)
        return st;
    g.rows = rows; g.k = k; g.mask = mask; g.ldm = mask_stride_words; g.grad = grad;
    g.ldg = grad_stride; g.out = out; g.ldo = out_stride;
    return launch_items<SteArgs, ste_backward_one>(g, rows * k, (cudaStream_t)stream, fn);
}

extern "C" bnn_status bnn_cuda_squared_hinge_grad(int64_t n, int64_t classes,
                                                  const float *scores, const int32_t *labels,
                                                  float *grad, void *stream)
{
    static const char *fn = "bnn_cuda_squared_hinge_grad";
    HingeArgs g;
    int64_t total;
    bnn_status st;
    if (n < 0 || classes < 0) return BNN_ERR_SHAPE;
    if (n == 0 || classes == 0) return BNN_OK;
    if (scores == NULL || labels == NULL || grad == NULL) return BNN_ERR_NULL;
    if (!bnn_mul_ok(n, classes, &total) || !bnn_extent_ok(n, classes, classes, sizeof(float)))
        return BNN_ERR_OVERFLOW;
    if ((st = device_pointer(scores, fn, "scores")) != BNN_OK
        || (st = device_pointer(labels, fn, "labels")) != BNN_OK
        || (st = device_pointer(grad, fn, "grad")) != BNN_OK)
        return st;
    g.n = n; g.classes = classes; g.scores = scores; g.labels = labels; g.grad = grad;
    g.size = (double)total;
    return launch_items<HingeArgs, hinge_grad_one>(g, total, (cudaStream_t)stream, fn);
}

/* ------------------------------------------------------------------ */
/* The model runner                                                    */
/* ------------------------------------------------------------------ */

/* run_model's launcher on the GPU (the tests' runs the same layers on the
 * emulator). */
struct DeviceLauncher {
    cudaStream_t stream;
    int tensor;
    bnn_status gemm(const GemmArgs &g) { return launch_gemm(g, tensor, stream); }
    bnn_status conv(const ConvArgs &g) { return launch_conv(g, stream); }
    bnn_status pool(const PoolArgs &g, int64_t total) { return launch_pool(g, total, stream); }
    bnn_status u8(const U8Args &g, int64_t total)
    {
        return launch_items<U8Args, u8_word>(g, total, stream, "bnn_cuda_model_run");
    }
    bnn_status flatten(const FlatArgs &g, int64_t total)
    {
        return launch_items<FlatArgs, flatten_word>(g, total, stream, "bnn_cuda_model_run");
    }
    bnn_status argmax(const ArgmaxArgs &g, int64_t n)
    {
        return launch_items<ArgmaxArgs, argmax_row>(g, n, stream, "bnn_cuda_model_run");
    }
};

struct bnn_cuda_model {
    const bnn_model *model;
    LayerArrays *arr;           /* host table of device pointers */
    void **owned;               /* every device allocation, to free */
    int64_t n_owned;
};

extern "C" void bnn_cuda_model_free(bnn_cuda_model *dm)
{
    if (dm == NULL) return;
    for (int64_t i = 0; i < dm->n_owned; i++) cudaFree(dm->owned[i]);
    free(dm->owned);
    free(dm->arr);
    free(dm);
}

/* A device copy of `bytes` at src (NULL for none), recorded in dm. */
static bnn_status upload(bnn_cuda_model *dm, const void *src, size_t bytes, const void **dst)
{
    void *d = NULL;
    cudaError_t e;
    *dst = NULL;
    if (src == NULL || bytes == 0) return BNN_OK;
    if ((e = cudaMalloc(&d, bytes)) != cudaSuccess) return device_error(e, "bnn_cuda_model_create");
    dm->owned[dm->n_owned++] = d;
    if ((e = cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice)) != cudaSuccess)
        return device_error(e, "bnn_cuda_model_create");
    *dst = d;
    return BNN_OK;
}

extern "C" bnn_status bnn_cuda_model_create(const bnn_model *model, bnn_cuda_model **out)
{
    bnn_cuda_model *dm;
    bnn_status st = BNN_OK;
    if (out == NULL) return BNN_ERR_NULL;
    *out = NULL;
    if (model == NULL) return BNN_ERR_NULL;
    if (model->magic != BNN_MODEL_OBJ_MAGIC) return BNN_ERR_INVALID;
    dm = (bnn_cuda_model *)calloc(1, sizeof *dm);
    if (dm == NULL) return BNN_ERR_NOMEM;
    dm->model = model;
    dm->arr = (LayerArrays *)calloc((size_t)model->n_layers + 1, sizeof *dm->arr);
    dm->owned = (void **)calloc((size_t)model->n_layers * 5 + 1, sizeof *dm->owned);
    if (dm->arr == NULL || dm->owned == NULL) {
        bnn_cuda_model_free(dm);
        return BNN_ERR_NOMEM;
    }
    for (int64_t i = 0; i < model->n_layers && st == BNN_OK; i++) {
        const bnn_layer_rt *L = &model->layers[i];
        LayerArrays *A = &dm->arr[i];
        const void *p;
        /* outputs (m), and the filter rows: dense m rows, conv o rows of ldw words */
        const int64_t m = L->type == BNN_RECORD_CONV ? L->cp.o
                        : L->type == BNN_RECORD_MAXPOOL ? L->pp.c : L->m;
        const int64_t wrows = L->type == BNN_RECORD_CONV ? L->cp.o : L->m;
        if (L->type == BNN_RECORD_DENSE || L->type == BNN_RECORD_CONV) {
            if ((st = upload(dm, L->w, (size_t)(wrows * L->ldw) * 8, &p)) != BNN_OK) break;
            A->w = (const uint64_t *)p;
            if ((st = upload(dm, L->thresh, (size_t)m * 4, &p)) != BNN_OK) break;
            A->thresh = (const int32_t *)p;
            if ((st = upload(dm, L->scale, (size_t)m * 4, &p)) != BNN_OK) break;
            A->scale = (const float *)p;
            if ((st = upload(dm, L->offset, (size_t)m * 4, &p)) != BNN_OK) break;
            A->offset = (const float *)p;
        }
        if (L->type != BNN_RECORD_FLATTEN) {
            if ((st = upload(dm, L->flip, (size_t)m, &p)) != BNN_OK) break;
            A->flip = (const uint8_t *)p;
        }
    }
    if (st != BNN_OK) {
        bnn_cuda_model_free(dm);
        return st;
    }
    *out = dm;
    return BNN_OK;
}

/* Two activation buffers and the scores, each 256-byte aligned. */
static bnn_status model_plan(const bnn_cuda_model *dm, int64_t n, int64_t *act_bytes,
                             int64_t *score_bytes)
{
    int64_t a, s;
    if (!bnn_mul_ok(dm->model->act_words, 8 * n, &a)
        || !bnn_mul_ok(dm->model->info.classes, 4 * n, &s))
        return BNN_ERR_OVERFLOW;
    *act_bytes = (a + 255) & ~(int64_t)255;
    *score_bytes = (s + 255) & ~(int64_t)255;
    if (*act_bytes > INT64_MAX / 4 || *score_bytes > INT64_MAX / 4) return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

extern "C" bnn_status bnn_cuda_model_workspace_size(const bnn_cuda_model *dm, int64_t batch,
                                                    size_t *bytes)
{
    int64_t a, s;
    bnn_status st;
    if (dm == NULL || bytes == NULL) return BNN_ERR_NULL;
    if (batch < 0) return BNN_ERR_SHAPE;
    if ((st = model_plan(dm, batch, &a, &s)) != BNN_OK) return st;
    *bytes = (size_t)(2 * a + s + 256);
    return BNN_OK;
}

extern "C" bnn_status bnn_cuda_model_run(const bnn_cuda_model *dm, int64_t n, const uint8_t *x,
                                         float *scores, int32_t *classes, void *workspace,
                                         size_t workspace_bytes, void *stream)
{
    static const char *fn = "bnn_cuda_model_run";
    int64_t a = 0, sb = 0;
    size_t need;
    bnn_status st;
    uint8_t *base;
    if (dm == NULL) return BNN_ERR_NULL;
    if (n < 0) return BNN_ERR_SHAPE;
    if (n == 0) return BNN_OK;
    if (x == NULL || workspace == NULL) return BNN_ERR_NULL;
    if ((st = bnn_cuda_model_workspace_size(dm, n, &need)) != BNN_OK) return st;
    if (workspace_bytes < need) return BNN_ERR_INVALID;
    if ((st = device_pointer(x, fn, "x")) != BNN_OK
        || (st = device_pointer(scores, fn, "scores")) != BNN_OK
        || (st = device_pointer(classes, fn, "classes")) != BNN_OK
        || (st = device_pointer(workspace, fn, "workspace")) != BNN_OK)
        return st;
    if ((st = model_plan(dm, n, &a, &sb)) != BNN_OK) return st;
    base = (uint8_t *)workspace + ((256 - ((uintptr_t)workspace & 255)) & 255);
    DeviceLauncher l = {(cudaStream_t)stream, device_major() >= 8};
    float *sc = scores ? scores : (float *)(base + 2 * a);
    return run_model(l, dm->model, dm->arr, n, x, (uint64_t *)base, (uint64_t *)(base + a), sc,
                     classes);
}

/* ------------------------------------------------------------------ */
/* The float GEMM of the comparison                                    */
/* ------------------------------------------------------------------ */

__global__ void __launch_bounds__(SG_THREADS) k_sgemm(SgemmArgs g, int64_t by0)
{
    __shared__ SgemmSmem s;
    SgemmRegs r;
    sgemm_block(DeviceExec(), g, (int64_t)blockIdx.x, by0 + blockIdx.y, s, &r);
}

extern "C" bnn_status bnn_cuda_sgemm(int64_t n, int64_t m, int64_t k, const float *a,
                                     int64_t lda, const float *w, int64_t ldw, float *c,
                                     int64_t ldc, void *stream)
{
    SgemmArgs g;
    int64_t bxs, bys, by0;
    bnn_status st;
    if (n < 0 || m < 0 || k < 0) return BNN_ERR_SHAPE;
    if (n == 0 || m == 0) return BNN_OK;
    if (c == NULL || (k > 0 && (a == NULL || w == NULL))) return BNN_ERR_NULL;
    if (lda < k || ldw < k || ldc < m) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(n, lda, k, sizeof(float)) || !bnn_extent_ok(m, ldw, k, sizeof(float))
        || !bnn_extent_ok(n, ldc, m, sizeof(float)))
        return BNN_ERR_OVERFLOW;
    if ((st = device_pointer(a, "bnn_cuda_sgemm", "a")) != BNN_OK
        || (st = device_pointer(w, "bnn_cuda_sgemm", "w")) != BNN_OK
        || (st = device_pointer(c, "bnn_cuda_sgemm", "c")) != BNN_OK)
        return st;
    g.n = n; g.m = m; g.k = k; g.a = a; g.lda = lda; g.w = w; g.ldw = ldw; g.c = c; g.ldc = ldc;
    bxs = (m + SG_TILE - 1) / SG_TILE;
    bys = (n + SG_TILE - 1) / SG_TILE;
    if (bxs > INT32_MAX) return BNN_ERR_OVERFLOW;
    for (by0 = 0; by0 < bys; by0 += 65535) {
        dim3 grid((unsigned)bxs, (unsigned)(bys - by0 < 65535 ? bys - by0 : 65535));
        k_sgemm<<<grid, SG_THREADS, 0, (cudaStream_t)stream>>>(g, by0);
        if ((st = launched("bnn_cuda_sgemm")) != BNN_OK) return st;
    }
    return BNN_OK;
}
