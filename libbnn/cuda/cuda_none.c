/*
 * cuda_none.c -- the entry points of bnn_cuda.h in a library built without
 * CUDA (CMake BNN_CUDA=OFF, the default; pip install without BNN_CUDA=1):
 * each says so with BNN_ERR_UNSUPPORTED, so a program can ask and fall
 * back to the CPU.  A CUDA build compiles cuda.cu instead.
 */
#include "bnn_cuda.h"

#include <stdio.h>

#ifndef BNN_WITH_CUDA

bnn_status bnn_cuda_available(int *devices, char *why, size_t why_len)
{
    if (devices) *devices = 0;
    if (why && why_len)
        snprintf(why, why_len, "this libbnn was built without CUDA (CMake -DBNN_CUDA=ON, "
                               "or BNN_CUDA=1 pip install)");
    return BNN_ERR_UNSUPPORTED;
}

const char *bnn_cuda_last_error(void)
{
    return "";
}

bnn_status bnn_cuda_malloc(void **ptr, size_t bytes)
{
    (void)bytes;
    if (ptr) *ptr = NULL;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_free(void *ptr)
{
    return ptr ? BNN_ERR_UNSUPPORTED : BNN_OK;
}

bnn_status bnn_cuda_copy_to_device(void *dst, const void *src, size_t bytes)
{
    (void)dst; (void)src; (void)bytes;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_copy_to_host(void *dst, const void *src, size_t bytes)
{
    (void)dst; (void)src; (void)bytes;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_synchronize(void *stream)
{
    (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_pack_f32(int64_t rows, int64_t k, const float *src, int64_t src_stride,
                             uint64_t *dst, int64_t dst_stride_words, void *stream)
{
    (void)rows; (void)k; (void)src; (void)src_stride; (void)dst; (void)dst_stride_words;
    (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_gemm(int64_t n, int64_t m, int64_t k, const uint64_t *a, int64_t lda_words,
                         const uint64_t *w, int64_t ldw_words, const bnn_epilogue *epi, void *c,
                         int64_t ldc, int kernel, void *stream)
{
    (void)n; (void)m; (void)k; (void)a; (void)lda_words; (void)w; (void)ldw_words; (void)epi;
    (void)c; (void)ldc; (void)kernel; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_sgemm(int64_t n, int64_t m, int64_t k, const float *a, int64_t lda,
                          const float *w, int64_t ldw, float *c, int64_t ldc, void *stream)
{
    (void)n; (void)m; (void)k; (void)a; (void)lda; (void)w; (void)ldw; (void)c; (void)ldc;
    (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_conv2d(const bnn_conv2d_params *p, const uint64_t *x, const uint64_t *w,
                           const bnn_epilogue *epi, void *out, void *stream)
{
    (void)p; (void)x; (void)w; (void)epi; (void)out; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_maxpool2d_bits(const bnn_pool2d_params *p, const uint64_t *x,
                                   const uint8_t *flip, uint64_t *out, void *stream)
{
    (void)p; (void)x; (void)flip; (void)out; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a, int64_t lda_i,
                                 int64_t lda_j, const uint64_t *s, int64_t lds, float *c,
                                 int64_t ldc, int accumulate, void *stream)
{
    (void)I; (void)K; (void)J; (void)a; (void)lda_i; (void)lda_j; (void)s; (void)lds; (void)c;
    (void)ldc; (void)accumulate; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q, int64_t ldq,
                                const uint64_t *s, int64_t lds, int32_t *c, int64_t ldc,
                                void *stream)
{
    (void)I; (void)K; (void)J; (void)q; (void)ldq; (void)s; (void)lds; (void)c; (void)ldc;
    (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_conv2d_grad_weights_f32(const bnn_conv2d_params *p, const uint64_t *x,
                                            const float *grad, float *gw, int accumulate,
                                            void *stream)
{
    (void)p; (void)x; (void)grad; (void)gw; (void)accumulate; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_conv2d_grad_weights_i8(const bnn_conv2d_params *p, const uint64_t *x,
                                           const int8_t *qt, const float *scale, float *gw,
                                           int accumulate, void *stream)
{
    (void)p; (void)x; (void)qt; (void)scale; (void)gw; (void)accumulate; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_conv2d_grad_input_f32(const bnn_conv2d_params *p, const uint64_t *w,
                                          const float *grad, float *gx, void *stream)
{
    (void)p; (void)w; (void)grad; (void)gx; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_conv2d_grad_input_i8(const bnn_conv2d_params *p, const uint64_t *w,
                                         const int8_t *q, const float *scale, float *gx,
                                         void *stream)
{
    (void)p; (void)w; (void)q; (void)scale; (void)gx; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_quantize_i8(int64_t rows, int64_t k, const float *a, int64_t lda,
                                int by_column, uint64_t seed, uint64_t counter, int8_t *q,
                                int64_t ldq, float *scale, void *stream)
{
    (void)rows; (void)k; (void)a; (void)lda; (void)by_column; (void)seed; (void)counter;
    (void)q; (void)ldq; (void)scale; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                             const float *grad, float *m, float *v, void *stream)
{
    (void)p; (void)n; (void)param; (void)grad; (void)m; (void)v; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_opt_step_pack(const bnn_opt_params *p, int64_t rows, int64_t k,
                                  float *param, const float *grad, float *m, float *v,
                                  uint64_t *signs, int64_t signs_stride_words, void *stream)
{
    (void)p; (void)rows; (void)k; (void)param; (void)grad; (void)m; (void)v; (void)signs;
    (void)signs_stride_words; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                     const float *gamma, const float *beta, float eps,
                                     float momentum, float *running_mean,
                                     float *running_invstd, float *y, float *save_mean,
                                     float *save_scale, void *stream)
{
    (void)kind; (void)n; (void)c; (void)x; (void)gamma; (void)beta; (void)eps; (void)momentum;
    (void)running_mean; (void)running_invstd; (void)y; (void)save_mean; (void)save_scale;
    (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                const float *gamma, const float *save_mean,
                                const float *save_scale, const float *dy, float *dx,
                                float *dgamma, float *dbeta, void *stream)
{
    (void)kind; (void)n; (void)c; (void)x; (void)gamma; (void)save_mean; (void)save_scale;
    (void)dy; (void)dx; (void)dgamma; (void)dbeta; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_sign_forward(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                                 uint64_t *signs, int64_t signs_stride_words, uint64_t *mask,
                                 int64_t mask_stride_words, void *stream)
{
    (void)rows; (void)k; (void)x; (void)x_stride; (void)signs; (void)signs_stride_words;
    (void)mask; (void)mask_stride_words; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_ste_mask_pack(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                                  uint64_t *mask, int64_t mask_stride_words, void *stream)
{
    (void)rows; (void)k; (void)x; (void)x_stride; (void)mask; (void)mask_stride_words;
    (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_ste_backward_packed(int64_t rows, int64_t k, const uint64_t *mask,
                                        int64_t mask_stride_words, const float *grad,
                                        int64_t grad_stride, float *out, int64_t out_stride,
                                        void *stream)
{
    (void)rows; (void)k; (void)mask; (void)mask_stride_words; (void)grad; (void)grad_stride;
    (void)out; (void)out_stride; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_squared_hinge_grad(int64_t n, int64_t classes, const float *scores,
                                       const int32_t *labels, float *grad, void *stream)
{
    (void)n; (void)classes; (void)scores; (void)labels; (void)grad; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_model_create(const bnn_model *model, bnn_cuda_model **out)
{
    (void)model;
    if (out) *out = NULL;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_model_workspace_size(const bnn_cuda_model *dm, int64_t batch, size_t *bytes)
{
    (void)dm; (void)batch; (void)bytes;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_cuda_model_run(const bnn_cuda_model *dm, int64_t n, const uint8_t *x,
                              float *scores, int32_t *classes, void *workspace,
                              size_t workspace_bytes, void *stream)
{
    (void)dm; (void)n; (void)x; (void)scores; (void)classes; (void)workspace;
    (void)workspace_bytes; (void)stream;
    return BNN_ERR_UNSUPPORTED;
}

void bnn_cuda_model_free(bnn_cuda_model *dm)
{
    (void)dm;
}

#else
typedef int bnn_cuda_none_is_empty; /* ISO C wants a declaration in every file */
#endif
