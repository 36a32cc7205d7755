# Mirror of include/bnn.h, line for line, for Cython.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t, int8_t

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

    const char *bnn_status_string(bnn_status s)

    ctypedef enum bnn_isa:
        BNN_ISA_REF
        BNN_ISA_AVX2
        BNN_ISA_AVX512

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

    bnn_status bnn_peak_probe(bnn_isa isa, int64_t iters,
                              uint64_t *bit_macs, uint64_t *sink)
