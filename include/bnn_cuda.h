/*
 * bnn_cuda.h -- libbnn on NVIDIA GPUs: the bit contract of bnn.h (64-bit
 * little-endian words, bit 1 = -1, pad bits 0) on device memory.
 *
 * Every pointer argument is a device pointer (cudaMalloc), including the
 * epilogue's scale, offset, thresh and flip arrays; `stream` is a
 * cudaStream_t (NULL: the default stream).  Calls are asynchronous on
 * their stream like a kernel launch: synchronize before reading the
 * result on the host.  Each entry point checks its arguments exactly as its
 * CPU twin does and returns the same status for the same arguments
 * (nothing is launched then).  A pointer the device cannot reach (a
 * host pointer that is not registered or managed, a freed or foreign
 * address) and a launch the runtime refuses return BNN_ERR_DEVICE, with
 * the argument's name or the runtime's message in bnn_cuda_last_error().
 * A library built without CUDA (CMake BNN_CUDA=OFF, the default) returns
 * BNN_ERR_UNSUPPORTED from every entry point.
 *
 * Results are bit-exact with the CPU functions: integer dot products, the
 * same fmaf in the FLOAT epilogue, the same comparison in the BITS one,
 * and for the float kernels of training the same operations in the same
 * order (no contracted multiply-adds), so the same floats; NaN results
 * are NaN, though not necessarily with the CPU's payload.
 */
#ifndef BNN_CUDA_H
#define BNN_CUDA_H

#include "bnn.h"

#ifdef __cplusplus
extern "C" {
#endif

/** bnn_cuda_available() : BNN_OK and *devices >= 1 when a CUDA device can
 *  be used; otherwise BNN_ERR_UNSUPPORTED (this build has no CUDA) or
 *  BNN_ERR_DEVICE (no driver, no device, or the runtime failed to start),
 *  with *devices = 0.  `why` (may be NULL) receives a one-line reason,
 *  truncated to why_len bytes including the terminating 0. */
BNN_API bnn_status bnn_cuda_available(int *devices, char *why, size_t why_len);

/** bnn_cuda_last_error() : the CUDA runtime's message for the last
 *  BNN_ERR_DEVICE returned on this thread ("" if none). */
BNN_API const char *bnn_cuda_last_error(void);

/** Device buffers for programs (and pybnn) that have no CUDA allocator of
 *  their own: bnn_cuda_malloc() (*ptr = NULL for bytes == 0),
 *  bnn_cuda_free() (NULL is a no-op), and copies between host and device
 *  memory (synchronous).  BNN_ERR_DEVICE with the runtime's message when
 *  the runtime refuses. */
BNN_API bnn_status bnn_cuda_malloc(void **ptr, size_t bytes);
BNN_API bnn_status bnn_cuda_free(void *ptr);
BNN_API bnn_status bnn_cuda_copy_to_device(void *dst, const void *src, size_t bytes);
BNN_API bnn_status bnn_cuda_copy_to_host(void *dst, const void *src, size_t bytes);

/** bnn_cuda_synchronize() : waits for the work queued on `stream` (NULL:
 *  the default stream) and returns BNN_ERR_DEVICE if it failed (a kernel
 *  that faulted on memory its pointers did not own, for instance; such a
 *  fault leaves the process's CUDA context unusable, as for any kernel). */
BNN_API bnn_status bnn_cuda_synchronize(void *stream);

/** bnn_cuda_pack_f32() : bnn_pack_f32() on device memory (x < 0 -> bit 1;
 *  +0, -0 and NaN -> bit 0; pad bits 0).  Rows of channels in NHWC images
 *  are rows with k = channels. */
BNN_API bnn_status bnn_cuda_pack_f32(int64_t rows, int64_t k, const float *src,
                                     int64_t src_stride, uint64_t *dst,
                                     int64_t dst_stride_words, void *stream);

/* Which GEMM kernel bnn_cuda_gemm runs. */
typedef enum bnn_cuda_gemm_kernel {
    BNN_CUDA_GEMM_AUTO   = 0,  /* the tensor-core kernel where the device has it */
    BNN_CUDA_GEMM_SIMT   = 1,  /* CUDA cores: shared-memory tiles, __popcll      */
    BNN_CUDA_GEMM_TENSOR = 2   /* mma.sync m16n8k256 .b1 (sm_80 and later)       */
} bnn_cuda_gemm_kernel;

/** bnn_cuda_gemm() : bnn_gemm() on device memory, with the same arguments,
 *  epilogues and results, plus the kernel choice (a bnn_cuda_gemm_kernel;
 *  BNN_ERR_UNSUPPORTED for the tensor-core kernel on a device without it,
 *  BNN_ERR_INVALID for an unknown value) and the stream. */
BNN_API bnn_status bnn_cuda_gemm(int64_t n, int64_t m, int64_t k, const uint64_t *a,
                                 int64_t lda_words, const uint64_t *w, int64_t ldw_words,
                                 const bnn_epilogue *epi, void *c, int64_t ldc, int kernel,
                                 void *stream);

/** bnn_cuda_conv2d() : bnn_conv2d() on device memory: the same geometry
 *  (NHWC packed channels, both padding semantics, strides, dilation),
 *  epilogues and results, as an implicit GEMM (no workspace). */
BNN_API bnn_status bnn_cuda_conv2d(const bnn_conv2d_params *p, const uint64_t *x,
                                   const uint64_t *w, const bnn_epilogue *epi, void *out,
                                   void *stream);

/** bnn_cuda_maxpool2d_bits() : bnn_maxpool2d_bits() on device memory. */
BNN_API bnn_status bnn_cuda_maxpool2d_bits(const bnn_pool2d_params *p, const uint64_t *x,
                                           const uint8_t *flip, uint64_t *out, void *stream);

/** bnn_cuda_gemm_f32_pm1() / bnn_cuda_gemm_i8_pm1() : bnn_gemm_f32_pm1()
 *  and bnn_gemm_i8_pm1() on device memory -- the backward products of a
 *  binary layer on the packed +-1 operand, with the same arguments and the
 *  same results (the float one adds each output's exact products in the
 *  CPU's order, so the floats are equal). */
BNN_API bnn_status bnn_cuda_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a,
                                         int64_t lda_i, int64_t lda_j, const uint64_t *s,
                                         int64_t lds, float *c, int64_t ldc, int accumulate,
                                         void *stream);
BNN_API bnn_status bnn_cuda_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q,
                                        int64_t ldq, const uint64_t *s, int64_t lds, int32_t *c,
                                        int64_t ldc, void *stream);

/** bnn_cuda_quantize_i8() : bnn_quantize_i8() on device memory: the same
 *  scales, the same stochastically rounded q (the same counter-based
 *  bits), so the 8-bit backward runs on the device with the CPU's
 *  numbers. */
BNN_API bnn_status bnn_cuda_quantize_i8(int64_t rows, int64_t k, const float *a, int64_t lda,
                                        int by_column, uint64_t seed, uint64_t counter,
                                        int8_t *q, int64_t ldq, float *scale, void *stream);

/** The backward products of a binary convolution on device memory:
 *  bnn_conv2d_grad_weights_f32/_i8 and bnn_conv2d_grad_input_f32/_i8 with
 *  the same arguments (no workspace) and the same floats (each output
 *  summed in the CPU's order).  One thread per output: a first version,
 *  correct and bit-exact, not yet tuned. */
BNN_API bnn_status bnn_cuda_conv2d_grad_weights_f32(const bnn_conv2d_params *p,
                                                    const uint64_t *x, const float *grad,
                                                    float *gw, int accumulate, void *stream);
BNN_API bnn_status bnn_cuda_conv2d_grad_weights_i8(const bnn_conv2d_params *p,
                                                   const uint64_t *x, const int8_t *qt,
                                                   const float *scale, float *gw,
                                                   int accumulate, void *stream);
BNN_API bnn_status bnn_cuda_conv2d_grad_input_f32(const bnn_conv2d_params *p, const uint64_t *w,
                                                  const float *grad, float *gx, void *stream);
BNN_API bnn_status bnn_cuda_conv2d_grad_input_i8(const bnn_conv2d_params *p, const uint64_t *w,
                                                 const int8_t *q, const float *scale, float *gx,
                                                 void *stream);

/** The elementwise and per-feature parts of a training step on device
 *  memory, so that a whole step (with the products above) stays on the
 *  device.  Each has its CPU twin's arguments plus the stream, checks them
 *  as the twin does and writes the twin's floats and bits, bit for bit:
 *  the same double arithmetic in the same order per element (the CUDA
 *  build contracts no multiply-adds), per-feature sums adding rows 0, 1,
 *  ... in order.
 *
 *  bnn_cuda_opt_step() / bnn_cuda_opt_step_pack() : bnn_opt_step() and
 *    bnn_opt_step_pack() (Adam, AdaMax, shift-based AdaMax, the clip; the
 *    pack writes the signs of the new values as bnn_pack_f32 would, from
 *    the same pass).  One thread per element; the pack: a block per four
 *    sign words of a row, its 256 threads updating consecutive elements
 *    and the words gathered after a barrier. */
BNN_API bnn_status bnn_cuda_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                                     const float *grad, float *m, float *v, void *stream);
BNN_API bnn_status bnn_cuda_opt_step_pack(const bnn_opt_params *p, int64_t rows, int64_t k,
                                          float *param, const float *grad, float *m, float *v,
                                          uint64_t *signs, int64_t signs_stride_words,
                                          void *stream);

/** bnn_cuda_bn_forward_train() / bnn_cuda_bn_backward() :
 *  bnn_bn_forward_train() (batch statistics, the running statistics'
 *  update, y, the saved mean and scale) and bnn_bn_backward(), STANDARD and
 *  SHIFT, in place as the CPU allows (y may be x, dx may be dy).  One
 *  thread per feature summing its rows in the CPU's order: a first
 *  version, exact but not tuned (c threads; wide layers fill the device
 *  better than narrow ones). */
BNN_API bnn_status bnn_cuda_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c,
                                             const float *x, const float *gamma,
                                             const float *beta, float eps, float momentum,
                                             float *running_mean, float *running_invstd,
                                             float *y, float *save_mean, float *save_scale,
                                             void *stream);
BNN_API bnn_status bnn_cuda_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c,
                                        const float *x, const float *gamma,
                                        const float *save_mean, const float *save_scale,
                                        const float *dy, float *dx, float *dgamma,
                                        float *dbeta, void *stream);

/** The sign activation in training.
 *  bnn_cuda_sign_forward() : from the same floats, the signs (as
 *    bnn_pack_f32()) and the straight-through mask |x| <= 1 (as
 *    bnn_ste_mask_pack()), each with its own stride; the argument checks
 *    of bnn_pack_f32() on each output.
 *  bnn_cuda_ste_mask_pack() : bnn_ste_mask_pack().
 *  bnn_cuda_ste_backward_packed() : bnn_ste_backward_packed() (out may be
 *    grad). */
BNN_API bnn_status bnn_cuda_sign_forward(int64_t rows, int64_t k, const float *x,
                                         int64_t x_stride, uint64_t *signs,
                                         int64_t signs_stride_words, uint64_t *mask,
                                         int64_t mask_stride_words, void *stream);
BNN_API bnn_status bnn_cuda_ste_mask_pack(int64_t rows, int64_t k, const float *x,
                                          int64_t x_stride, uint64_t *mask,
                                          int64_t mask_stride_words, void *stream);
BNN_API bnn_status bnn_cuda_ste_backward_packed(int64_t rows, int64_t k, const uint64_t *mask,
                                                int64_t mask_stride_words, const float *grad,
                                                int64_t grad_stride, float *out,
                                                int64_t out_stride, void *stream);

/** bnn_cuda_squared_hinge_grad() : the gradient of the paper's loss
 *  (pybnn.losses.squared_hinge, which has no C twin) with respect to the
 *  scores [n][classes], labels int32 [n]: with t = +1 for the label's class
 *  and -1 elsewhere, grad = (float)(-2 * t * max(0, 1 - t * s) /
 *  (n * classes)) in double, as numpy's float64 gives it (NaN scores give
 *  NaN).  The labels are on the device, so they are not checked: a label
 *  outside [0, classes) makes its row NaN.  BNN_ERR_SHAPE (negative
 *  sizes), BNN_ERR_NULL, BNN_ERR_OVERFLOW. */
BNN_API bnn_status bnn_cuda_squared_hinge_grad(int64_t n, int64_t classes, const float *scores,
                                               const int32_t *labels, float *grad, void *stream);

/** A loaded model (bnn_model_open_*) on the device.
 *  bnn_cuda_model_create() : copies the model's weights, thresholds, flips
 *    and scales to device memory (the bnn_model must outlive the copy: its
 *    layer table is read at each run).  BNN_ERR_NULL, BNN_ERR_NOMEM,
 *    BNN_ERR_DEVICE.
 *  bnn_cuda_model_workspace_size() : device bytes a run of `batch` images
 *    needs (two activation buffers and the scores).
 *  bnn_cuda_model_run() : bnn_model_run() on the device: x uint8
 *    [n][in_h][in_w][in_c], scores float [n][classes] and classes int32 [n]
 *    (either may be NULL), workspace: all device pointers.  The same
 *    scores, bit for bit, and the same classes as the CPU.
 *  bnn_cuda_model_free() : releases the device copy (NULL is a no-op). */
typedef struct bnn_cuda_model bnn_cuda_model;
BNN_API bnn_status bnn_cuda_model_create(const bnn_model *model, bnn_cuda_model **out);
BNN_API bnn_status bnn_cuda_model_workspace_size(const bnn_cuda_model *dm, int64_t batch,
                                                 size_t *bytes);
BNN_API bnn_status bnn_cuda_model_run(const bnn_cuda_model *dm, int64_t n, const uint8_t *x,
                                      float *scores, int32_t *classes, void *workspace,
                                      size_t workspace_bytes, void *stream);
BNN_API void bnn_cuda_model_free(bnn_cuda_model *dm);

/** bnn_cuda_sgemm() : the float product of the comparison benchmarks,
 *  c[i][j] = sum over l < k of a[i][l] * w[j][l] (row strides lda, ldw,
 *  ldc in floats), a shared-memory tiled kernel on CUDA cores; each output
 *  adds its products in order, each product and sum rounded once (no fused
 *  multiply-add), as a plain float loop on the CPU does.  BNN_ERR_SHAPE,
 *  BNN_ERR_NULL, BNN_ERR_STRIDE, BNN_ERR_OVERFLOW as for the other calls. */
BNN_API bnn_status bnn_cuda_sgemm(int64_t n, int64_t m, int64_t k, const float *a, int64_t lda,
                                  const float *w, int64_t ldw, float *c, int64_t ldc,
                                  void *stream);

#ifdef __cplusplus
}
#endif

#endif /* BNN_CUDA_H */
