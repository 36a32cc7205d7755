# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Low-level bindings of libbnn (include/bnn.h).

Arguments are validated here (dtype, shape, row contiguity) before C is
entered; C runs without the GIL; a failed status becomes an exception.
The friendly API (PackedTensor, pack, bgemm, ...) lives in pybnn/_tensor.py.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t, int8_t
from libc.string cimport memset
from pybnn._bnn cimport *

import numpy as np

HEADER_VERSION_NUMBER = BNN_VERSION_NUMBER
LAYOUT_VERSION = BNN_LAYOUT_VERSION
WORD_BITS = BNN_WORD_BITS


class BnnError(RuntimeError):
    """An error reported by libbnn; `status` holds the bnn_status code."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class BnnValueError(BnnError, ValueError):
    """libbnn rejected an argument (bad shape, stride, pointer or value)."""


_VALUE_STATUSES = (BNN_ERR_NULL, BNN_ERR_SHAPE, BNN_ERR_OVERFLOW,
                   BNN_ERR_INVALID, BNN_ERR_STRIDE)


cdef int check(bnn_status st, what) except -1:
    if st == BNN_OK:
        return 0
    msg = "%s: %s (status %d)" % (what, bnn_status_string(st).decode(), <int>st)
    if st in _VALUE_STATUSES:
        raise BnnValueError(msg, int(st))
    raise BnnError(msg, int(st))


def status_string(int status):
    return bnn_status_string(<bnn_status>status).decode()


def version_number():
    return bnn_version_number()


def version_string():
    return bnn_version_string().decode()


_ISA_NAMES = ("ref", "avx2", "avx512")


cdef bnn_isa _isa_from_name(name) except *:
    cdef bnn_isa out
    if not isinstance(name, str):
        raise TypeError("ISA name must be a str, got %r" % (type(name).__name__,))
    b = name.encode()
    if bnn_isa_from_name(b, &out) != BNN_OK:
        raise ValueError("unknown ISA %r; expected one of %s" % (name, ", ".join(_ISA_NAMES)))
    return out


def isa():
    """Name of the kernels in use: 'ref', 'avx2' or 'avx512'."""
    return bnn_isa_name().decode()


def isa_supported(name):
    """True if the kernels `name` can run on this CPU and build."""
    return bool(bnn_isa_supported(_isa_from_name(name)))


def available_isas():
    """The ISA names that can run here, slowest first."""
    return [n for n in _ISA_NAMES if isa_supported(n)]


def set_isa(name):
    """Force the kernels of `name` for the whole process.  Not to be called
    while kernels run on other threads."""
    check(bnn_set_isa(_isa_from_name(name)), "set_isa(%r)" % (name,))


def set_num_threads(n):
    """Threads used by large kernels (1..256); results do not depend on it."""
    import operator
    n = operator.index(n)
    if not 1 <= n <= 256:
        raise BnnValueError("set_num_threads(%d): the thread count must be in 1..256" % n,
                            int(BNN_ERR_INVALID))
    check(bnn_set_num_threads(<int>n), "set_num_threads(%d)" % n)


def get_num_threads():
    return bnn_get_num_threads()


def words(int64_t k):
    """Words in one packed row of k elements."""
    if k < 0:
        raise ValueError("k must be >= 0, got %d" % k)
    return bnn_words(k)


cdef int64_t _row_stride(arr, int itemsize, name) except -1:
    if arr.ndim != 2:
        raise ValueError("%s must be 2-D, got %d-D" % (name, arr.ndim))
    if arr.size == 0:  # nothing is read or written; numpy strides are arbitrary
        return max(arr.shape[1], 1)
    if arr.shape[0] > 1 or arr.shape[1] > 1:
        if arr.shape[1] > 1 and arr.strides[1] != itemsize:
            raise ValueError("%s rows must be contiguous" % name)
        if arr.shape[0] > 1 and (arr.strides[0] <= 0 or arr.strides[0] % itemsize):
            raise ValueError("%s has an unsupported row stride" % name)
    if arr.shape[0] > 1:
        return arr.strides[0] // itemsize
    return max(arr.shape[1], 1)


def pack_rows_f32(src, dst):
    """Pack float32 rows [R, K] into uint64 words dst [R, >= words(K)]."""
    cdef const float[:, :] s = src
    cdef uint64_t[:, :] d = dst
    cdef int64_t rows = s.shape[0], k = s.shape[1]
    cdef int64_t ss = _row_stride(src, 4, "src"), ds = _row_stride(dst, 8, "dst")
    cdef bnn_status st
    if d.shape[0] != rows or d.shape[1] < bnn_words(k):
        raise ValueError("dst has shape %r, need (%d, >=%d)" % (dst.shape, rows, bnn_words(k)))
    if rows == 0 or k == 0:
        return
    with nogil:
        st = bnn_pack_f32(rows, k, &s[0, 0], ss, &d[0, 0], ds)
    check(st, "pack")


def pack_rows_i8(src, dst):
    """Pack int8 rows [R, K] into uint64 words dst [R, >= words(K)]."""
    cdef const int8_t[:, :] s = src
    cdef uint64_t[:, :] d = dst
    cdef int64_t rows = s.shape[0], k = s.shape[1]
    cdef int64_t ss = _row_stride(src, 1, "src"), ds = _row_stride(dst, 8, "dst")
    cdef bnn_status st
    if d.shape[0] != rows or d.shape[1] < bnn_words(k):
        raise ValueError("dst has shape %r, need (%d, >=%d)" % (dst.shape, rows, bnn_words(k)))
    if rows == 0 or k == 0:
        return
    with nogil:
        st = bnn_pack_i8(rows, k, &s[0, 0], ss, &d[0, 0], ds)
    check(st, "pack")


def unpack_rows_f32(src, int64_t k, dst):
    """Unpack words [R, >= words(k)] into float32 +-1 rows dst [R, k]."""
    cdef const uint64_t[:, :] s = src
    cdef float[:, :] d = dst
    cdef int64_t rows = s.shape[0]
    cdef int64_t ss = _row_stride(src, 8, "src"), ds = _row_stride(dst, 4, "dst")
    cdef bnn_status st
    if d.shape[0] != rows or d.shape[1] != k or s.shape[1] < bnn_words(k):
        raise ValueError("shape mismatch in unpack")
    if rows == 0 or k == 0:
        return
    with nogil:
        st = bnn_unpack_f32(rows, k, &s[0, 0], ss, &d[0, 0], ds)
    check(st, "unpack")


def gemm(a, w, int64_t k, out, int kind=BNN_EPI_INT32, scale=None, offset=None,
         thresh=None, flip=None):
    """C = epilogue(dot(a rows, w rows)) over k packed elements.

    a: uint64 [N, >= words(k)], w: uint64 [M, >= words(k)]; out: int32 or
    float32 [N, M] (kind INT32 / FLOAT) or uint64 [N, >= words(M)] (BITS);
    scale, offset: float32 [M] or None; thresh: int32 [M]; flip: uint8 [M]
    or None.  Shapes and dtypes are checked by the caller (pybnn.bgemm*)."""
    cdef const uint64_t[:, :] av = a
    cdef const uint64_t[:, :] wv = w
    cdef int64_t n = av.shape[0], m = wv.shape[0]
    cdef int64_t lda = _row_stride(a, 8, "a"), ldw = _row_stride(w, 8, "w"), ldc
    cdef const float[::1] sv
    cdef const float[::1] ov
    cdef const int32_t[::1] tv
    cdef const uint8_t[::1] fv
    cdef bnn_epilogue epi
    cdef void *cp
    cdef int32_t[:, :] ci
    cdef float[:, :] cf
    cdef uint64_t[:, :] cb
    cdef bnn_status st
    memset(&epi, 0, sizeof(epi))
    epi.kind = kind
    if kind == BNN_EPI_INT32:
        ci = out
        ldc = _row_stride(out, 4, "out")
        cp = &ci[0, 0] if n > 0 and m > 0 else NULL
    elif kind == BNN_EPI_FLOAT:
        cf = out
        ldc = _row_stride(out, 4, "out")
        cp = &cf[0, 0] if n > 0 and m > 0 else NULL
        if scale is not None:
            sv = scale
            if sv.shape[0] != m:
                raise ValueError("scale must have %d entries, got %d" % (m, sv.shape[0]))
            if m > 0:
                epi.scale = &sv[0]
        if offset is not None:
            ov = offset
            if ov.shape[0] != m:
                raise ValueError("offset must have %d entries, got %d" % (m, ov.shape[0]))
            if m > 0:
                epi.offset = &ov[0]
    elif kind == BNN_EPI_BITS:
        cb = out
        ldc = _row_stride(out, 8, "out")
        cp = &cb[0, 0] if n > 0 and m > 0 else NULL
        tv = thresh
        if tv.shape[0] != m:
            raise ValueError("thresh must have %d entries, got %d" % (m, tv.shape[0]))
        if m > 0:
            epi.thresh = &tv[0]
        if flip is not None:
            fv = flip
            if fv.shape[0] != m:
                raise ValueError("flip must have %d entries, got %d" % (m, fv.shape[0]))
            if m > 0:
                epi.flip = &fv[0]
    else:
        raise ValueError("unknown epilogue kind %d" % kind)
    if n == 0 or m == 0:
        return out
    with nogil:
        st = bnn_gemm(n, m, k,
                      &av[0, 0] if av.shape[1] > 0 else NULL, lda,
                      &wv[0, 0] if wv.shape[1] > 0 else NULL, ldw,
                      &epi, cp, ldc)
    check(st, "bgemm")
    return out


def fold_threshold(scale, offset, int64_t k):
    """Fold sign(scale*s + offset) (float64) into (thresh int32, flip uint8)."""
    cdef const double[::1] sv = scale
    cdef const double[::1] ov = offset
    cdef int64_t c = sv.shape[0]
    if ov.shape[0] != c:
        raise ValueError("scale and offset lengths differ: %d vs %d" % (c, ov.shape[0]))
    thresh = np.empty(c, dtype=np.int32)
    flip = np.empty(c, dtype=np.uint8)
    cdef int32_t[::1] tv = thresh
    cdef uint8_t[::1] fv = flip
    cdef bnn_status st
    if c == 0:
        if k < 0:
            raise ValueError("k must be >= 0")
        return thresh, flip
    with nogil:
        st = bnn_fold_threshold(c, k, &sv[0], &ov[0], &tv[0], &fv[0])
    check(st, "fold_threshold")
    return thresh, flip


def peak_probe(name, int64_t iters):
    """Run the ISA's register-only peak loop; returns binary MACs done."""
    cdef uint64_t macs = 0, sink = 0
    cdef bnn_isa i = _isa_from_name(name)
    cdef bnn_status st
    with nogil:
        st = bnn_peak_probe(i, iters, &macs, &sink)
    check(st, "peak_probe(%r)" % (name,))
    return int(macs)
