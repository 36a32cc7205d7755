# Mirror of include/bnn.h, line for line, for Cython.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t, int8_t

cdef extern from "bnn.h" nogil:
    int BNN_VERSION_MAJOR
    int BNN_VERSION_MINOR
    int BNN_VERSION_PATCH
    int BNN_VERSION_NUMBER
    int BNN_LAYOUT_VERSION
    int BNN_WORD_BITS

    int bnn_version_number()
    const char *bnn_version_string()

    ctypedef enum bnn_status:
        BNN_OK
        BNN_ERR_NULL
        BNN_ERR_SHAPE
        BNN_ERR_OVERFLOW
        BNN_ERR_INVALID
        BNN_ERR_UNSUPPORTED
        BNN_ERR_NOMEM
        BNN_ERR_STRIDE
        BNN_ERR_FORMAT
        BNN_ERR_IO
        BNN_ERR_DEVICE

    const char *bnn_status_string(bnn_status s)

    ctypedef struct bnn_param_report:
        bnn_status status
        int32_t reserved
        int64_t found
        char field[24]
        char message[128]

    ctypedef enum bnn_isa:
        BNN_ISA_REF
        BNN_ISA_AVX2
        BNN_ISA_AVX512
        BNN_ISA_AVX512_VNNI
        BNN_ISA_NEON
        BNN_ISA_NEON_DOT

    const char *bnn_isa_name()
    bnn_isa bnn_isa_current()
    int bnn_isa_supported(bnn_isa isa)
    bnn_status bnn_set_isa(bnn_isa isa)
    bnn_status bnn_isa_from_name(const char *name, bnn_isa *out)
    bnn_status bnn_set_num_threads(int n)
    int bnn_get_num_threads()

    int64_t bnn_words(int64_t k)
    bnn_status bnn_packed_size(int64_t rows, int64_t k, size_t *nbytes)

    bnn_status bnn_pack_f32(int64_t rows, int64_t k, const float *src,
                            int64_t src_stride, uint64_t *dst,
                            int64_t dst_stride_words)
    bnn_status bnn_pack_i8(int64_t rows, int64_t k, const int8_t *src,
                           int64_t src_stride, uint64_t *dst,
                           int64_t dst_stride_words)
    bnn_status bnn_unpack_f32(int64_t rows, int64_t k, const uint64_t *src,
                              int64_t src_stride_words, float *dst,
                              int64_t dst_stride)

    ctypedef enum bnn_epilogue_kind:
        BNN_EPI_INT32
        BNN_EPI_FLOAT
        BNN_EPI_BITS

    ctypedef struct bnn_epilogue:
        int32_t kind
        int32_t reserved
        const float *scale
        const float *offset
        const int32_t *thresh
        const uint8_t *flip
        void *pad_[3]

    bnn_status bnn_gemm(int64_t n, int64_t m, int64_t k,
                        const uint64_t *a, int64_t lda_words,
                        const uint64_t *w, int64_t ldw_words,
                        const bnn_epilogue *epi, void *c, int64_t ldc)

    bnn_status bnn_fold_threshold(int64_t channels, int64_t k,
                                  const double *scale, const double *offset,
                                  int32_t *thresh, uint8_t *flip)

    ctypedef struct bnn_conv2d_params:
        int64_t n, h, w, c
        int64_t o, kh, kw
        int32_t stride_h, stride_w
        int32_t dilation_h, dilation_w
        int32_t pad_top, pad_bottom, pad_left, pad_right
        int32_t pad_value
        int32_t pad_byte
        int32_t reserved[4]

    bnn_status bnn_conv2d_output_shape(const bnn_conv2d_params *p, int64_t *oh, int64_t *ow)
    bnn_status bnn_conv2d_check(const bnn_conv2d_params *p, bnn_param_report *report)
    bnn_status bnn_conv2d_workspace_size(const bnn_conv2d_params *p, int threads, size_t *nbytes)
    bnn_status bnn_conv2d(const bnn_conv2d_params *p, const uint64_t *x, const uint64_t *w,
                          const bnn_epilogue *epi, void *out, void *workspace,
                          size_t workspace_bytes)

    bnn_status bnn_conv2d_correction(const bnn_conv2d_params *p, const uint64_t *w,
                                     int32_t *corr)
    bnn_status bnn_conv2d_ex(const bnn_conv2d_params *p, const uint64_t *x,
                             const uint64_t *w, const int32_t *corr,
                             const bnn_epilogue *epi, void *out, void *workspace,
                             size_t workspace_bytes)

    ctypedef enum bnn_u8_method:
        BNN_U8_AUTO
        BNN_U8_BITPLANE
        BNN_U8_DIRECT
        BNN_U8_MASKED

    bnn_status bnn_gemm_u8_workspace_size(int64_t m, int64_t k, int threads, size_t *nbytes)
    bnn_status bnn_gemm_u8(int64_t n, int64_t m, int64_t k, const uint8_t *x, int64_t ldx,
                           const uint64_t *w, int64_t ldw_words, const bnn_epilogue *epi,
                           void *c, int64_t ldc, bnn_u8_method method,
                           void *workspace, size_t workspace_bytes)
    bnn_status bnn_conv2d_u8_workspace_size(const bnn_conv2d_params *p, int threads,
                                            size_t *nbytes)
    bnn_status bnn_conv2d_u8(const bnn_conv2d_params *p, const uint8_t *x, const uint64_t *w,
                             const bnn_epilogue *epi, void *out, bnn_u8_method method,
                             void *workspace, size_t workspace_bytes)

    ctypedef struct bnn_pool2d_params:
        int64_t n, h, w, c
        int32_t kh, kw, stride_h, stride_w
        int32_t pad_top, pad_bottom, pad_left, pad_right
        int32_t reserved[4]

    bnn_status bnn_pool2d_output_shape(const bnn_pool2d_params *p, int64_t *oh, int64_t *ow)
    bnn_status bnn_pool2d_check(const bnn_pool2d_params *p, bnn_param_report *report)
    bnn_status bnn_maxpool2d_bits(const bnn_pool2d_params *p, const uint64_t *x,
                                  const uint8_t *flip, uint64_t *out)
    bnn_status bnn_maxpool2d_f32_train(const bnn_pool2d_params *p, const float *x,
                                       float *out, uint8_t *tap) nogil
    bnn_status bnn_maxpool2d_f32_backward(const bnn_pool2d_params *p, const float *grad,
                                          const uint8_t *tap, float *gx) nogil
    bnn_status bnn_maxpool2d_i32(const bnn_pool2d_params *p, const int32_t *x, int32_t *out)

    double bnn_ap2(double z)

    ctypedef enum bnn_bn_kind:
        BNN_BN_STANDARD
        BNN_BN_SHIFT

    bnn_status bnn_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                    const float *gamma, const float *beta, float eps,
                                    float momentum, float *running_mean,
                                    float *running_invstd, float *y, float *save_mean,
                                    float *save_scale)
    bnn_status bnn_bn_forward_eval(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                   const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_invstd,
                                   float *y)
    bnn_status bnn_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                               const float *gamma, const float *save_mean,
                               const float *save_scale, const float *dy, float *dx,
                               float *dgamma, float *dbeta)

    ctypedef enum bnn_opt_kind:
        BNN_OPT_ADAM
        BNN_OPT_ADAMAX
        BNN_OPT_SHIFT_ADAMAX

    ctypedef struct bnn_opt_params:
        int32_t kind
        int32_t reserved
        int64_t t
        double lr, beta1, beta2, eps
        double lr_scale
        double clip

    bnn_status bnn_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                            const float *grad, float *m, float *v)
    bnn_status bnn_opt_step_pack(const bnn_opt_params *p, int64_t rows, int64_t k,
                                 float *param, const float *grad, float *m, float *v,
                                 uint64_t *signs, int64_t signs_stride_words)
    bnn_status bnn_ste_backward(int64_t n, const float *x, const float *grad, float *out)
    bnn_status bnn_ste_mask_pack(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                                 uint64_t *mask, int64_t mask_stride_words)
    bnn_status bnn_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a,
                                int64_t lda_i, int64_t lda_j, const uint64_t *s,
                                int64_t lds, float *c, int64_t ldc, int accumulate)
    bnn_status bnn_quantize_i8(int64_t rows, int64_t k, const float *a, int64_t lda,
                               int by_column, uint64_t seed, uint64_t counter, int8_t *q,
                               int64_t ldq, float *scale) nogil
    bnn_status bnn_conv2d_grad_workspace_size(const bnn_conv2d_params *p, int threads,
                                              size_t *bytes) nogil
    bnn_status bnn_conv2d_grad_weights_f32(const bnn_conv2d_params *p, const uint64_t *x,
                                           const float *grad, float *gw, int accumulate,
                                           void *workspace, size_t workspace_bytes) nogil
    bnn_status bnn_conv2d_grad_weights_i8(const bnn_conv2d_params *p, const uint64_t *x,
                                          const int8_t *qt, const float *scale, float *gw,
                                          int accumulate, void *workspace,
                                          size_t workspace_bytes) nogil
    bnn_status bnn_conv2d_grad_input_f32(const bnn_conv2d_params *p, const uint64_t *w,
                                         const float *grad, float *gx, void *workspace,
                                         size_t workspace_bytes) nogil
    bnn_status bnn_conv2d_grad_input_i8(const bnn_conv2d_params *p, const uint64_t *w,
                                        const int8_t *q, const float *scale, float *gx,
                                        void *workspace, size_t workspace_bytes) nogil
    bnn_status bnn_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q, int64_t ldq,
                               const uint64_t *s, int64_t lds, int32_t *c, int64_t ldc)
    bnn_status bnn_transpose_bits(int64_t rows, int64_t cols, const uint64_t *src,
                                  int64_t src_stride_words, uint64_t *dst,
                                  int64_t dst_stride_words)
    bnn_status bnn_ste_backward_packed(int64_t rows, int64_t k, const uint64_t *mask,
                                       int64_t mask_stride_words, const float *grad,
                                       int64_t grad_stride, float *out, int64_t out_stride)
    bnn_status bnn_pack_stochastic_f32(int64_t rows, int64_t k, const float *src,
                                       int64_t src_stride, uint64_t seed, uint64_t counter,
                                       uint64_t *dst, int64_t dst_stride_words)

    bnn_status bnn_peak_probe(bnn_isa isa, int64_t iters,
                              uint64_t *bit_macs, uint64_t *sink)

    ctypedef struct bnn_model:
        pass
    ctypedef struct bnn_model_info:
        int64_t in_h, in_w, in_c
        int64_t classes
        int64_t layers
        int64_t binary_weights
        int64_t file_bytes
        int32_t format_version, layout_version
        int32_t zero_copy

    enum:
        BNN_MODEL_FORMAT_VERSION
        BNN_MODEL_HEADER_BYTES
        BNN_MODEL_RECORD_HEADER_BYTES
        BNN_MODEL_ALIGN
        BNN_MODEL_MAX_RECORDS
        BNN_MODEL_MAX_PARAMS
    enum bnn_model_record_type:
        BNN_RECORD_DENSE
        BNN_RECORD_CONV
        BNN_RECORD_MAXPOOL
        BNN_RECORD_FLATTEN
    enum bnn_model_record_flag:
        BNN_RECORD_INPUT_U8
        BNN_RECORD_SCORES
        BNN_RECORD_PAD_ONE

    ctypedef struct bnn_model_report:
        bnn_status status
        int64_t offset
        int64_t record
        char field[32]
        int64_t expected
        int64_t found
        char message[256]
    bnn_status bnn_model_check(const void *data, size_t bytes, bnn_model_report *report)
    uint64_t bnn_model_checksum(const void *data, size_t bytes)

    ctypedef struct bnn_model_record_layout:
        int64_t record_bytes
        int32_t n_arrays
        int32_t reserved
        int64_t array_offset[3]
        int64_t array_bytes[3]
    bnn_status bnn_model_record_layout_of(int32_t type, int32_t flags, const uint32_t *params,
                                          bnn_model_record_layout *out)
    bnn_status bnn_model_write_header(void *out, uint64_t file_bytes, uint32_t records,
                                      uint32_t in_h, uint32_t in_w, uint32_t in_c,
                                      uint32_t classes)
    bnn_status bnn_model_write_record_header(void *out, int32_t type, int32_t flags,
                                             const uint32_t *params)
    bnn_status bnn_model_seal(void *data, size_t bytes)

    bnn_status bnn_model_open_memory(const void *data, size_t bytes, bnn_model **model)
    bnn_status bnn_model_open_file(const char *path, bnn_model **model)
    bnn_status bnn_model_arena_size(const void *data, size_t bytes, size_t *arena_bytes)
    bnn_status bnn_model_init(void *arena, size_t arena_bytes, const void *data, size_t bytes,
                              bnn_model **model)
    void bnn_model_free(bnn_model *model)
    bnn_status bnn_model_get_info(const bnn_model *model, bnn_model_info *info)
    ctypedef struct bnn_model_layer_info:
        int32_t type, flags
        uint32_t params[BNN_MODEL_MAX_PARAMS]
        int64_t in_h, in_w, in_c
        int64_t out_h, out_w, out_c
        int64_t file_offset, record_bytes
    bnn_status bnn_model_get_layer(const bnn_model *model, int64_t index,
                                   bnn_model_layer_info *out)
    bnn_status bnn_model_workspace_size(const bnn_model *model, int64_t batch, int threads,
                                        size_t *bytes)
    bnn_status bnn_model_run(const bnn_model *model, int64_t n, const uint8_t *x,
                             float *scores, int32_t *classes, void *workspace,
                             size_t workspace_bytes)


# Mirror of include/bnn_cuda.h (device pointers; stubs without CUDA).
cdef extern from "bnn_cuda.h" nogil:
    bnn_status bnn_cuda_available(int *devices, char *why, size_t why_len)
    const char *bnn_cuda_last_error()
    bnn_status bnn_cuda_malloc(void **ptr, size_t nbytes)
    bnn_status bnn_cuda_free(void *ptr)
    bnn_status bnn_cuda_copy_to_device(void *dst, const void *src, size_t nbytes)
    bnn_status bnn_cuda_copy_to_host(void *dst, const void *src, size_t nbytes)
    bnn_status bnn_cuda_synchronize(void *stream)
    bnn_status bnn_cuda_pack_f32(int64_t rows, int64_t k, const float *src,
                                 int64_t src_stride, uint64_t *dst, int64_t dst_stride_words,
                                 void *stream)
    ctypedef enum bnn_cuda_gemm_kernel:
        BNN_CUDA_GEMM_AUTO
        BNN_CUDA_GEMM_SIMT
        BNN_CUDA_GEMM_TENSOR
    bnn_status bnn_cuda_gemm(int64_t n, int64_t m, int64_t k, const uint64_t *a,
                             int64_t lda_words, const uint64_t *w, int64_t ldw_words,
                             const bnn_epilogue *epi, void *c, int64_t ldc, int kernel,
                             void *stream)
    bnn_status bnn_cuda_sgemm(int64_t n, int64_t m, int64_t k, const float *a, int64_t lda,
                              const float *w, int64_t ldw, float *c, int64_t ldc, void *stream)
    bnn_status bnn_cuda_conv2d(const bnn_conv2d_params *p, const uint64_t *x, const uint64_t *w,
                               const bnn_epilogue *epi, void *out, void *stream)
    bnn_status bnn_cuda_maxpool2d_bits(const bnn_pool2d_params *p, const uint64_t *x,
                                       const uint8_t *flip, uint64_t *out, void *stream)
    bnn_status bnn_cuda_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a,
                                     int64_t lda_i, int64_t lda_j, const uint64_t *s, int64_t lds,
                                     float *c, int64_t ldc, int accumulate, void *stream)
    bnn_status bnn_cuda_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q,
                                    int64_t ldq, const uint64_t *s, int64_t lds, int32_t *c,
                                    int64_t ldc, void *stream)
    bnn_status bnn_cuda_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                                 const float *grad, float *m, float *v, void *stream)
    bnn_status bnn_cuda_opt_step_pack(const bnn_opt_params *p, int64_t rows, int64_t k,
                                      float *param, const float *grad, float *m, float *v,
                                      uint64_t *signs, int64_t signs_stride_words, void *stream)
    bnn_status bnn_cuda_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                         const float *gamma, const float *beta, float eps,
                                         float momentum, float *running_mean,
                                         float *running_invstd, float *y, float *save_mean,
                                         float *save_scale, void *stream)
    bnn_status bnn_cuda_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                    const float *gamma, const float *save_mean,
                                    const float *save_scale, const float *dy, float *dx,
                                    float *dgamma, float *dbeta, void *stream)
    bnn_status bnn_cuda_sign_forward(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                                     uint64_t *signs, int64_t signs_stride_words, uint64_t *mask,
                                     int64_t mask_stride_words, void *stream)
    bnn_status bnn_cuda_ste_mask_pack(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                                      uint64_t *mask, int64_t mask_stride_words, void *stream)
    bnn_status bnn_cuda_ste_backward_packed(int64_t rows, int64_t k, const uint64_t *mask,
                                            int64_t mask_stride_words, const float *grad,
                                            int64_t grad_stride, float *out, int64_t out_stride,
                                            void *stream)
    bnn_status bnn_cuda_squared_hinge_grad(int64_t n, int64_t classes, const float *scores,
                                           const int32_t *labels, float *grad, void *stream)
    ctypedef struct bnn_cuda_model:
        pass
    bnn_status bnn_cuda_model_create(const bnn_model *model, bnn_cuda_model **out)
    bnn_status bnn_cuda_model_workspace_size(const bnn_cuda_model *dm, int64_t batch,
                                             size_t *nbytes)
    bnn_status bnn_cuda_model_run(const bnn_cuda_model *dm, int64_t n, const uint8_t *x,
                                  float *scores, int32_t *classes, void *workspace,
                                  size_t workspace_bytes, void *stream)
    void bnn_cuda_model_free(bnn_cuda_model *dm)
