# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Low-level bindings of libbnn (include/bnn.h).

Arguments are validated here (dtype, shape, row contiguity) before C is
entered; C runs without the GIL; a failed status becomes an exception.
The friendly API (PackedTensor, pack, bgemm, ...) lives in pybnn/ops/.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t, int8_t
from libc.string cimport memset
from pybnn._bnn cimport *

import operator
import threading

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


ERR_OVERFLOW = BNN_ERR_OVERFLOW            # a size computation overflows
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


ISA_NAMES = ("ref", "avx2", "avx512", "avx512vnni", "neon", "neondot")   # every kernel table


cdef bnn_isa _isa_from_name(name) except *:
    cdef bnn_isa out
    if not isinstance(name, str):
        raise TypeError("name must be an ISA name (str), got %r" % (name,))
    b = name.encode()
    if bnn_isa_from_name(b, &out) != BNN_OK:
        raise ValueError("name must be one of %s, got %r" % (", ".join(ISA_NAMES), name))
    return out


def isa():
    """Name of the kernels in use: 'ref', 'avx2', 'avx512', 'avx512vnni' (AVX-512
    with the VNNI first-layer kernel), 'neon' or 'neondot' (NEON with the UDOT
    first-layer kernel)."""
    return bnn_isa_name().decode()


def isa_supported(name):
    """True if the kernels `name` can run on this CPU and build."""
    return bool(bnn_isa_supported(_isa_from_name(name)))


def available_isas():
    """The ISA names that can run here, slowest first."""
    return [n for n in ISA_NAMES if isa_supported(n)]


def set_isa(name):
    """Force the kernels of `name` for the whole process.  Not to be called
    while kernels run on other threads."""
    check(bnn_set_isa(_isa_from_name(name)), "set_isa(%r)" % (name,))


def set_num_threads(n):
    """Threads used by large kernels (1..256); results do not depend on it."""
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError("n must be an int, got %r" % (n,)) from None
    if not 1 <= n <= 256:
        raise BnnValueError("set_num_threads: n must be in 1..256, got %d" % n,
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


cdef tuple _pack_dims(src, dst, int itemsize):
    """(rows, k, src stride, dst stride) of a packing call, validated."""
    rows, k = src.shape[0], src.shape[1]
    ss, ds = _row_stride(src, itemsize, "src"), _row_stride(dst, 8, "dst")
    if dst.shape[0] != rows or dst.shape[1] < bnn_words(k):
        raise ValueError("dst has shape %r, need (%d, >=%d)" % (dst.shape, rows, bnn_words(k)))
    return rows, k, ss, ds


def pack_rows_f32(src, dst):
    """Pack float32 rows [R, K] into uint64 words dst [R, >= words(K)]."""
    cdef const float[:, :] s = src
    cdef uint64_t[:, :] d = dst
    cdef int64_t rows, k, ss, ds
    cdef bnn_status st
    rows, k, ss, ds = _pack_dims(src, dst, 4)
    if rows == 0 or k == 0:
        return
    with nogil:
        st = bnn_pack_f32(rows, k, &s[0, 0], ss, &d[0, 0], ds)
    check(st, "pack")


def pack_rows_i8(src, dst):
    """Pack int8 rows [R, K] into uint64 words dst [R, >= words(K)]."""
    cdef const int8_t[:, :] s = src
    cdef uint64_t[:, :] d = dst
    cdef int64_t rows, k, ss, ds
    cdef bnn_status st
    rows, k, ss, ds = _pack_dims(src, dst, 1)
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


def gemm_f32_pm1(a, s, int64_t k, out, bint transpose_a=False, bint accumulate=False):
    """out[I, k] (+)= A . S, S the +-1 matrix of the packed rows s [J, >= words(k)]:
    A = a [I, J] (float32 rows), or with transpose_a, a [J, I] read as its
    transpose.  One float accumulator per element adds the exact products
    in j order (from 0, or from out with accumulate): the same floats on
    every ISA and thread count (bnn_gemm_f32_pm1)."""
    cdef const float[:, ::1] av = a
    cdef const uint64_t[:, :] sv = s
    cdef float[:, :] ov = out
    cdef int64_t I, J, lda_i, lda_j
    cdef int64_t lds, ldc
    cdef bnn_status st
    if transpose_a:
        J, I = av.shape[0], av.shape[1]
        lda_i, lda_j = 1, I
    else:
        I, J = av.shape[0], av.shape[1]
        lda_i, lda_j = J, 1
    if sv.shape[0] != J or sv.shape[1] < bnn_words(k):
        raise ValueError("gemm_f32_pm1: s must be [%d, >= %d] words, got %r"
                         % (J, bnn_words(k), (sv.shape[0], sv.shape[1])))
    if ov.shape[0] != I or ov.shape[1] != k:
        raise ValueError("gemm_f32_pm1: out must be [%d, %d], got %r"
                         % (I, k, (ov.shape[0], ov.shape[1])))
    if I == 0 or k == 0:
        return
    if np.may_share_memory(out, a) or np.may_share_memory(out, s):
        raise ValueError("gemm_f32_pm1: out must not overlap a or s")
    lds = _row_stride(s, 8, "s") if J > 0 else bnn_words(k)
    ldc = _row_stride(out, 4, "out")
    if J == 0:
        with nogil:
            st = bnn_gemm_f32_pm1(I, k, 0, NULL, 1, 1, NULL, lds, &ov[0, 0], ldc, accumulate)
    else:
        with nogil:
            st = bnn_gemm_f32_pm1(I, k, J, &av[0, 0], lda_i, lda_j, &sv[0, 0], lds,
                                  &ov[0, 0], ldc, accumulate)
    check(st, "gemm_f32_pm1")


def gemm_i8_pm1(q, s, int64_t k, out):
    """out[I, k] = Q . S in exact int32: q int8 [I, J] (C-contiguous), S the
    +-1 matrix of the packed rows s [J, >= words(k)] (bnn_gemm_i8_pm1)."""
    cdef const int8_t[:, ::1] qv = q
    cdef const uint64_t[:, :] sv = s
    cdef int32_t[:, :] ov = out
    cdef int64_t I = qv.shape[0], J = qv.shape[1], lds, ldc
    cdef bnn_status st
    if sv.shape[0] != J or sv.shape[1] < bnn_words(k):
        raise ValueError("gemm_i8_pm1: s must be [%d, >= %d] words, got %r"
                         % (J, bnn_words(k), (sv.shape[0], sv.shape[1])))
    if ov.shape[0] != I or ov.shape[1] != k:
        raise ValueError("gemm_i8_pm1: out must be [%d, %d], got %r"
                         % (I, k, (ov.shape[0], ov.shape[1])))
    if I == 0 or k == 0:
        return
    if np.may_share_memory(out, q) or np.may_share_memory(out, s):
        raise ValueError("gemm_i8_pm1: out must not overlap q or s")
    ldc = _row_stride(out, 4, "out")
    if J == 0:
        with nogil:
            st = bnn_gemm_i8_pm1(I, k, 0, NULL, 1, NULL, bnn_words(k), &ov[0, 0], ldc)
    else:
        lds = _row_stride(s, 8, "s")
        with nogil:
            st = bnn_gemm_i8_pm1(I, k, J, &qv[0, 0], J, &sv[0, 0], lds, &ov[0, 0], ldc)
    check(st, "gemm_i8_pm1")


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


# ---------------------------------------------------------------------------
# Convolution, the 8-bit first layer and pooling
# ---------------------------------------------------------------------------

cdef class _Epi:
    """Holds an epilogue and the arrays its pointers refer to."""
    cdef bnn_epilogue e
    cdef object keep

    def __cinit__(self):
        memset(&self.e, 0, sizeof(self.e))
        self.keep = []


cdef _Epi _make_epi(int kind, int64_t m, scale, offset, thresh, flip):
    cdef _Epi ep = _Epi()
    cdef const float[::1] sv
    cdef const int32_t[::1] tv
    cdef const uint8_t[::1] fv
    ep.e.kind = kind
    if kind == BNN_EPI_FLOAT:
        if scale is not None:
            sv = scale
            if sv.shape[0] != m:
                raise ValueError("scale must have %d entries, got %d" % (m, sv.shape[0]))
            if m > 0:
                ep.e.scale = &sv[0]
            ep.keep.append(scale)
        if offset is not None:
            sv = offset
            if sv.shape[0] != m:
                raise ValueError("offset must have %d entries, got %d" % (m, sv.shape[0]))
            if m > 0:
                ep.e.offset = &sv[0]
            ep.keep.append(offset)
    elif kind == BNN_EPI_BITS:
        tv = thresh
        if tv.shape[0] != m:
            raise ValueError("thresh must have %d entries, got %d" % (m, tv.shape[0]))
        if m > 0:
            ep.e.thresh = &tv[0]
        ep.keep.append(thresh)
        if flip is not None:
            fv = flip
            if fv.shape[0] != m:
                raise ValueError("flip must have %d entries, got %d" % (m, fv.shape[0]))
            if m > 0:
                ep.e.flip = &fv[0]
            ep.keep.append(flip)
    elif kind != BNN_EPI_INT32:
        raise ValueError("unknown epilogue kind %d" % kind)
    return ep


cdef void *_out_ptr(out, int kind) except? NULL:
    cdef int32_t[::1] oi
    cdef float[::1] of
    cdef uint64_t[::1] ob
    flat = out.reshape(-1)
    if flat.size == 0:
        return NULL
    if kind == BNN_EPI_INT32:
        oi = flat
        return &oi[0]
    if kind == BNN_EPI_FLOAT:
        of = flat
        return &of[0]
    ob = flat
    return &ob[0]


# What pybnn calls the fields of a geometry: the arguments of its public
# functions (pybnn.ops, pybnn.nn).  A caller's `names` overrides some, e.g.
# conv2d_output_shape(h, w, kernel, ...) names the kernel "kernel" where
# bconv2d takes it from the filters w.
_CONV_NAMES = {"stride_h": "stride", "stride_w": "stride", "dilation_h": "dilation",
               "dilation_w": "dilation", "pad_top": "padding", "pad_bottom": "padding",
               "pad_left": "padding", "pad_right": "padding", "pad_value": "pad_value",
               "pad_byte": "pad_byte", "n": "x", "h": "x", "w": "x", "c": "x", "o": "w",
               "kh": "w", "kw": "w"}
_POOL_NAMES = {"stride_h": "stride", "stride_w": "stride", "pad_top": "padding",
               "pad_bottom": "padding", "pad_left": "padding", "pad_right": "padding",
               "n": "x", "h": "x", "w": "x", "c": "x", "kh": "kernel", "kw": "kernel"}


cdef int32_t _i32(v, name) except? -1:
    """An int32 field of a parameter struct, from the argument `name`."""
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError("%s must be an int or a tuple of ints, got %r" % (name, v)) from None
    if not -2 ** 31 <= v < 2 ** 31:
        raise ValueError("%s must fit in int32, got %d" % (name, v))
    return v


cdef _param_error(bnn_param_report *r, names, what):
    """The exception of a refused geometry: libbnn's sentence about the C
    field, with the argument's name in the field's place."""
    field = r.field.decode()
    msg = r.message.decode()
    if field:
        msg = names.get(field, field) + msg[len(field):]
    if r.status in _VALUE_STATUSES:
        return BnnValueError("%s: %s" % (what, msg), int(r.status))
    return BnnError("%s: %s" % (what, msg), int(r.status))


cdef bnn_conv2d_params _conv_params(n, h, w, c, o, kh, kw, stride, dilation, padding,
                                    pad_value, pad_byte, what="conv2d", names=None) except *:
    """The geometry, refused here (naming the argument) if libbnn would."""
    cdef bnn_conv2d_params p
    cdef bnn_param_report r
    nm = dict(_CONV_NAMES, **names) if names else _CONV_NAMES
    memset(&p, 0, sizeof(p))
    p.n = n; p.h = h; p.w = w; p.c = c; p.o = o; p.kh = kh; p.kw = kw
    p.stride_h, p.stride_w = (_i32(v, nm["stride_h"]) for v in stride)
    p.dilation_h, p.dilation_w = (_i32(v, nm["dilation_h"]) for v in dilation)
    p.pad_top, p.pad_bottom, p.pad_left, p.pad_right = (_i32(v, nm["pad_top"]) for v in padding)
    p.pad_value = _i32(pad_value, nm["pad_value"])
    p.pad_byte = _i32(pad_byte, nm["pad_byte"])
    if bnn_conv2d_check(&p, NULL) != BNN_OK:
        bnn_conv2d_check(&p, &r)
        raise _param_error(&r, nm, what)
    return p


def conv2d_output_shape(n, h, w, c, o, kh, kw, stride, dilation, padding, pad_value=0,
                        pad_byte=128, u8=False, what="conv2d", names=None):
    """(oh, ow) of a convolution; raises on an invalid geometry, naming the
    argument (`names`: pybnn names of C fields, over the defaults)."""
    cdef bnn_conv2d_params p = _conv_params(n, h, w, c, o, kh, kw, stride, dilation,
                                            padding, 0 if u8 else pad_value, pad_byte,
                                            what, names)
    cdef int64_t oh = 0, ow = 0
    check(bnn_conv2d_output_shape(&p, &oh, &ow), what)
    return int(oh), int(ow)


def conv2d_correction(w, int64_t c, stride, dilation, padding):
    """The zero-padding correction [KH*KW, O] int32 of filters w."""
    cdef const uint64_t[:, :, :, ::1] wv = w
    cdef bnn_conv2d_params p = _conv_params(1, wv.shape[1], wv.shape[2], c, wv.shape[0],
                                            wv.shape[1], wv.shape[2], (1, 1), (1, 1),
                                            (0, 0, 0, 0), 0, 128)
    corr = np.empty((wv.shape[1] * wv.shape[2], wv.shape[0]), dtype=np.int32)
    cdef int32_t[:, ::1] cv = corr
    if corr.size:
        check(bnn_conv2d_correction(&p, &wv[0, 0, 0, 0], &cv[0, 0]), "conv2d_correction")
    return corr


def conv2d(x, w, int64_t c, out, int kind, stride, dilation, padding, int pad_value,
           scale=None, offset=None, thresh=None, flip=None, correction=None):
    """Binary conv: x uint64 [N,H,W,words(c)], w uint64 [O,KH,KW,words(c)],
    both C-contiguous; out C-contiguous [N,OH,OW,O] (int32/float32) or
    [N,OH,OW,words(O)] uint64."""
    cdef const uint64_t[:, :, :, ::1] xv = x
    cdef const uint64_t[:, :, :, ::1] wv = w
    cdef bnn_conv2d_params p = _conv_params(xv.shape[0], xv.shape[1], xv.shape[2], c,
                                            wv.shape[0], wv.shape[1], wv.shape[2],
                                            stride, dilation, padding, pad_value, 128)
    cdef _Epi ep = _make_epi(kind, wv.shape[0], scale, offset, thresh, flip)
    cdef size_t ws_bytes = 0
    cdef bnn_status st
    cdef void *op
    cdef uint64_t[::1] wsv
    cdef const int32_t[:, ::1] corrv
    cdef const int32_t *cp = NULL
    if correction is not None and pad_value == 0:
        corrv = correction
        if corrv.shape[0] != wv.shape[1] * wv.shape[2] or corrv.shape[1] != wv.shape[0]:
            raise ValueError("correction must have shape (%d, %d)"
                             % (wv.shape[1] * wv.shape[2], wv.shape[0]))
        if corrv.size:
            cp = &corrv[0, 0]
        p.pad_value = 1  # the workspace then needs no correction table
        check(bnn_conv2d_workspace_size(&p, 0, &ws_bytes), "bconv2d")
        p.pad_value = 0
    else:
        check(bnn_conv2d_workspace_size(&p, 0, &ws_bytes), "bconv2d")
    ws = np.empty(max(ws_bytes // 8, 1), dtype=np.uint64)
    wsv = ws
    op = _out_ptr(out, kind)
    cdef const uint64_t *xp = &xv[0, 0, 0, 0] if xv.size else NULL
    cdef const uint64_t *wp = &wv[0, 0, 0, 0] if wv.size else NULL
    with nogil:
        st = bnn_conv2d_ex(&p, xp, wp, cp, &ep.e, op, &wsv[0], ws_bytes)
    check(st, "bconv2d")
    return out



def quantize_i8(a, uint64_t seed, uint64_t counter, bint by_column=False):
    """(q int8, scale float32): a float32 [rows, k] (C-contiguous) rounded
    stochastically to int8 with one scale per row, or per column with q
    returned transposed [k, rows] (bnn_quantize_i8)."""
    cdef const float[:, ::1] av = a
    cdef int64_t rows = av.shape[0], k = av.shape[1]
    q = np.empty((k, rows) if by_column else (rows, k), dtype=np.int8)
    scale = np.empty(k if by_column else rows, dtype=np.float32)
    cdef int8_t[:, ::1] qv = q
    cdef float[::1] sv = scale
    cdef bnn_status st
    if rows == 0 or k == 0:
        scale[:] = 0
        return q, scale
    with nogil:
        st = bnn_quantize_i8(rows, k, &av[0, 0], k, by_column, seed, counter, &qv[0, 0],
                             rows if by_column else k, &sv[0])
    check(st, "quantize_i8")
    return q, scale


def conv2d_grad_workspace(n, h, w, int64_t c, o, kh, kw, stride, dilation, padding,
                          int pad_value, bint size_only=False):
    """A workspace (uint64 array) for the conv2d_grad_* calls of a geometry
    (size_only: its size in uint64 words)."""
    cdef bnn_conv2d_params p = _conv_params(n, h, w, c, o, kh, kw, stride, dilation, padding,
                                            pad_value, 128)
    cdef size_t nb = 0
    check(bnn_conv2d_grad_workspace_size(&p, 0, &nb), "conv2d_grad")
    if size_only:
        return max(nb // 8, 1)
    return np.empty(max(nb // 8, 1), dtype=np.uint64)


def conv2d_grad_weights(x, int64_t c, kh, kw, grad, gw, stride, dilation, padding,
                        int pad_value, ws, scale=None, bint accumulate=False):
    """gw float32 [O, KH*KW*c] (+)= the weight gradient from the packed
    input x uint64 [N, H, W, words(c)]: grad float32 [N*OH*OW, O]
    (exact float path) or, with scale float32 [O], int8 qt [O, N*OH*OW]
    (the 8-bit path).  All C-contiguous."""
    cdef const uint64_t[:, :, :, ::1] xv = x
    cdef float[:, ::1] gwv = gw
    cdef uint64_t[::1] wsv = ws
    cdef const float[:, ::1] gv
    cdef const int8_t[:, ::1] qv
    cdef const float[::1] scv
    cdef int64_t o = gwv.shape[0], m
    cdef bnn_conv2d_params p = _conv_params(xv.shape[0], xv.shape[1], xv.shape[2], c, o, kh,
                                            kw, stride, dilation, padding, pad_value, 128)
    cdef int64_t oh = 0, ow = 0
    cdef bnn_status st
    check(bnn_conv2d_output_shape(&p, &oh, &ow), "conv2d_grad_weights")
    m = xv.shape[0] * oh * ow
    if gwv.shape[1] != kh * kw * c:
        raise ValueError("conv2d_grad_weights: gw must be [%d, %d], got %r"
                         % (o, kh * kw * c, gw.shape))
    if m == 0 or o == 0:
        if not accumulate:
            gw[...] = 0
        return gw
    if scale is None:
        gv = grad
        if gv.shape[0] != m or gv.shape[1] != o:
            raise ValueError("conv2d_grad_weights: grad must be [%d, %d], got %r"
                             % (m, o, grad.shape))
        with nogil:
            st = bnn_conv2d_grad_weights_f32(&p, &xv[0, 0, 0, 0], &gv[0, 0], &gwv[0, 0],
                                             accumulate, &wsv[0], wsv.shape[0] * 8)
    else:
        qv = grad
        scv = scale
        if qv.shape[0] != o or qv.shape[1] != m or scv.shape[0] != o:
            raise ValueError("conv2d_grad_weights: q must be [%d, %d] and scale [%d]"
                             % (o, m, o))
        with nogil:
            st = bnn_conv2d_grad_weights_i8(&p, &xv[0, 0, 0, 0], &qv[0, 0], &scv[0],
                                            &gwv[0, 0], accumulate, &wsv[0], wsv.shape[0] * 8)
    check(st, "conv2d_grad_weights")
    return gw


def conv2d_grad_input(w, int64_t c, grad, gx, stride, dilation, padding, int pad_value, ws,
                      scale=None):
    """gx float32 [N, H, W, c] = the input gradient from the packed filters
    w uint64 [O, KH, KW, words(c)]: grad float32 [N*OH*OW, O] (exact float
    path) or, with scale float32 [N*OH*OW], int8 q [N*OH*OW, O]."""
    cdef const uint64_t[:, :, :, ::1] wv = w
    cdef float[:, :, :, ::1] gxv = gx
    cdef uint64_t[::1] wsv = ws
    cdef const float[:, ::1] gv
    cdef const int8_t[:, ::1] qv
    cdef const float[::1] scv
    cdef int64_t o = wv.shape[0], m
    cdef bnn_conv2d_params p = _conv_params(gxv.shape[0], gxv.shape[1], gxv.shape[2], c, o,
                                            wv.shape[1], wv.shape[2], stride, dilation,
                                            padding, pad_value, 128)
    cdef int64_t oh = 0, ow = 0
    cdef bnn_status st
    check(bnn_conv2d_output_shape(&p, &oh, &ow), "conv2d_grad_input")
    m = gxv.shape[0] * oh * ow
    if gxv.shape[3] != c:
        raise ValueError("conv2d_grad_input: gx must have %d channels, got %r" % (c, gx.shape))
    if gx.size == 0:
        return gx
    if m == 0 or o == 0:
        gx[...] = 0
        return gx
    if scale is None:
        gv = grad
        if gv.shape[0] != m or gv.shape[1] != o:
            raise ValueError("conv2d_grad_input: grad must be [%d, %d], got %r"
                             % (m, o, grad.shape))
        with nogil:
            st = bnn_conv2d_grad_input_f32(&p, &wv[0, 0, 0, 0], &gv[0, 0], &gxv[0, 0, 0, 0],
                                           &wsv[0], wsv.shape[0] * 8)
    else:
        qv = grad
        scv = scale
        if qv.shape[0] != m or qv.shape[1] != o or scv.shape[0] != m:
            raise ValueError("conv2d_grad_input: q must be [%d, %d] and scale [%d]"
                             % (m, o, m))
        with nogil:
            st = bnn_conv2d_grad_input_i8(&p, &wv[0, 0, 0, 0], &qv[0, 0], &scv[0],
                                          &gxv[0, 0, 0, 0], &wsv[0], wsv.shape[0] * 8)
    check(st, "conv2d_grad_input")
    return gx

_METHODS = {"auto": BNN_U8_AUTO, "bitplane": BNN_U8_BITPLANE, "direct": BNN_U8_DIRECT,
            "masked": BNN_U8_MASKED}


cdef bnn_u8_method _method(name) except *:
    try:
        return _METHODS[name]
    except (KeyError, TypeError):
        raise ValueError("method must be one of %s, got %r" % (", ".join(_METHODS), name))


def gemm_u8(x, w, int64_t k, out, int kind, method, scale=None, offset=None,
            thresh=None, flip=None):
    """8-bit dense first layer: x uint8 [N, K] rows, w uint64 [M, words(K)]."""
    cdef const uint8_t[:, :] xv = x
    cdef const uint64_t[:, :] wv = w
    cdef int64_t n = xv.shape[0], m = wv.shape[0]
    cdef int64_t ldx = _row_stride(x, 1, "x"), ldw = _row_stride(w, 8, "w")
    cdef _Epi ep = _make_epi(kind, m, scale, offset, thresh, flip)
    cdef bnn_u8_method meth = _method(method)
    cdef size_t ws_bytes = 0
    cdef bnn_status st
    cdef void *op
    cdef uint64_t[::1] wsv
    cdef int64_t ldc = out.shape[out.ndim - 1] if out.ndim else 1
    check(bnn_gemm_u8_workspace_size(m, k, 0, &ws_bytes), "gemm_u8")
    ws = np.empty(max(ws_bytes // 8, 1), dtype=np.uint64)
    wsv = ws
    op = _out_ptr(out, kind)
    if n == 0 or m == 0:
        return out
    with nogil:
        st = bnn_gemm_u8(n, m, k, &xv[0, 0], ldx, &wv[0, 0], ldw, &ep.e, op, ldc, meth,
                         &wsv[0], ws_bytes)
    check(st, "gemm_u8")
    return out


def conv2d_u8(x, w, out, int kind, stride, dilation, padding, int pad_byte, method,
              scale=None, offset=None, thresh=None, flip=None):
    """8-bit conv first layer: x uint8 [N,H,W,C] C-contiguous, w uint64
    [O,KH,KW,words(C)]."""
    cdef const uint8_t[:, :, :, ::1] xv = x
    cdef const uint64_t[:, :, :, ::1] wv = w
    cdef bnn_conv2d_params p = _conv_params(xv.shape[0], xv.shape[1], xv.shape[2],
                                            xv.shape[3], wv.shape[0], wv.shape[1],
                                            wv.shape[2], stride, dilation, padding, 0,
                                            pad_byte)
    cdef _Epi ep = _make_epi(kind, wv.shape[0], scale, offset, thresh, flip)
    cdef bnn_u8_method meth = _method(method)
    cdef size_t ws_bytes = 0
    cdef bnn_status st
    cdef void *op
    cdef uint64_t[::1] wsv
    check(bnn_conv2d_u8_workspace_size(&p, 0, &ws_bytes), "conv2d_u8")
    ws = np.empty(max(ws_bytes // 8, 1), dtype=np.uint64)
    wsv = ws
    op = _out_ptr(out, kind)
    cdef const uint8_t *xp = &xv[0, 0, 0, 0] if xv.size else NULL
    cdef const uint64_t *wp = &wv[0, 0, 0, 0] if wv.size else NULL
    with nogil:
        st = bnn_conv2d_u8(&p, xp, wp, &ep.e, op, meth, &wsv[0], ws_bytes)
    check(st, "conv2d_u8")
    return out


cdef bnn_pool2d_params _pool_params(n, h, w, c, kernel, stride, padding, what="maxpool2d",
                                    names=None) except *:
    """The geometry, refused here (naming the argument) if libbnn would."""
    cdef bnn_pool2d_params p
    cdef bnn_param_report r
    nm = dict(_POOL_NAMES, **names) if names else _POOL_NAMES
    memset(&p, 0, sizeof(p))
    p.n = n; p.h = h; p.w = w; p.c = c
    p.kh, p.kw = (_i32(v, nm["kh"]) for v in kernel)
    p.stride_h, p.stride_w = (_i32(v, nm["stride_h"]) for v in stride)
    p.pad_top, p.pad_bottom, p.pad_left, p.pad_right = (_i32(v, nm["pad_top"]) for v in padding)
    if bnn_pool2d_check(&p, NULL) != BNN_OK:
        bnn_pool2d_check(&p, &r)
        raise _param_error(&r, nm, what)
    return p


def pool2d_output_shape(n, h, w, c, kernel, stride, padding, what="maxpool2d", names=None):
    """(oh, ow) of a pooling; raises on an invalid geometry, naming the
    argument (`names`: pybnn names of C fields, over the defaults)."""
    cdef bnn_pool2d_params p = _pool_params(n, h, w, c, kernel, stride, padding, what, names)
    cdef int64_t oh = 0, ow = 0
    check(bnn_pool2d_output_shape(&p, &oh, &ow), what)
    return int(oh), int(ow)


def maxpool2d_bits(x, int64_t c, out, kernel, stride, padding, flip=None):
    cdef const uint64_t[:, :, :, ::1] xv = x
    cdef uint64_t[:, :, :, ::1] ov = out
    cdef bnn_pool2d_params p = _pool_params(xv.shape[0], xv.shape[1], xv.shape[2], c,
                                            kernel, stride, padding)
    cdef const uint8_t[::1] fv
    cdef const uint8_t *fp = NULL
    cdef bnn_status st
    if flip is not None:
        fv = flip
        if fv.shape[0] != c:
            raise ValueError("flip must have %d entries, got %d" % (c, fv.shape[0]))
        fp = &fv[0]
    if xv.size == 0 or ov.size == 0:
        check(bnn_pool2d_output_shape(&p, NULL, NULL), "maxpool2d")
        return out
    with nogil:
        st = bnn_maxpool2d_bits(&p, &xv[0, 0, 0, 0], fp, &ov[0, 0, 0, 0])
    check(st, "maxpool2d")
    return out


def maxpool2d_i32(x, out, kernel, stride, padding):
    cdef const int32_t[:, :, :, ::1] xv = x
    cdef int32_t[:, :, :, ::1] ov = out
    cdef bnn_pool2d_params p = _pool_params(xv.shape[0], xv.shape[1], xv.shape[2],
                                            xv.shape[3], kernel, stride, padding)
    cdef bnn_status st
    if xv.size == 0 or ov.size == 0:
        check(bnn_pool2d_output_shape(&p, NULL, NULL), "maxpool2d")
        return out
    with nogil:
        st = bnn_maxpool2d_i32(&p, &xv[0, 0, 0, 0], &ov[0, 0, 0, 0])
    check(st, "maxpool2d")
    return out


cdef bnn_pool2d_params _pool_train_params(shape, kernel, stride, padding, a, b,
                                          what) except *:
    """The geometry of an NHWC input `shape`, with a and b checked to have
    the output's shape."""
    cdef bnn_pool2d_params p = _pool_params(shape[0], shape[1], shape[2], shape[3], kernel,
                                            stride, padding)
    cdef int64_t oh = 0, ow = 0
    check(bnn_pool2d_output_shape(&p, &oh, &ow), "maxpool2d")
    want = (shape[0], oh, ow, shape[3])
    if a.shape != want or b.shape != want:
        raise ValueError("maxpool2d: %s must be [%d, %d, %d, %d]" % ((what,) + want))
    return p


def maxpool2d_f32_train(x, out, tap, kernel, stride, padding):
    """out float32 [N, OH, OW, C] = max-pool of x float32 [N, H, W, C], tap
    uint8 the window index of each (first) maximum (bnn_maxpool2d_f32_train)."""
    cdef const float[:, :, :, ::1] xv = x
    cdef float[:, :, :, ::1] ov = out
    cdef uint8_t[:, :, :, ::1] tv = tap
    cdef bnn_pool2d_params p = _pool_train_params(x.shape, kernel, stride, padding, out, tap,
                                                  "out and tap")
    cdef bnn_status st
    if xv.size == 0 or ov.size == 0:
        return out
    with nogil:
        st = bnn_maxpool2d_f32_train(&p, &xv[0, 0, 0, 0], &ov[0, 0, 0, 0], &tv[0, 0, 0, 0])
    check(st, "maxpool2d")
    return out


def maxpool2d_f32_backward(grad, tap, gx, kernel, stride, padding):
    """gx float32 [N, H, W, C] = each grad routed to its tap's input
    (bnn_maxpool2d_f32_backward)."""
    cdef const float[:, :, :, ::1] gv = grad
    cdef const uint8_t[:, :, :, ::1] tv = tap
    cdef float[:, :, :, ::1] xv = gx
    cdef bnn_pool2d_params p = _pool_train_params(gx.shape, kernel, stride, padding, grad, tap,
                                                  "grad and tap")
    cdef bnn_status st
    if xv.size == 0:
        return gx
    if gv.size == 0:
        gx[...] = 0
        return gx
    with nogil:
        st = bnn_maxpool2d_f32_backward(&p, &gv[0, 0, 0, 0], &tv[0, 0, 0, 0], &xv[0, 0, 0, 0])
    check(st, "maxpool2d")
    return gx


# ---------------------------------------------------------------------------
# Training arithmetic
# ---------------------------------------------------------------------------

BN_KINDS = {"standard": BNN_BN_STANDARD, "shift": BNN_BN_SHIFT}
OPT_KINDS = {"adam": BNN_OPT_ADAM, "adamax": BNN_OPT_ADAMAX, "shift_adamax": BNN_OPT_SHIFT_ADAMAX}


cdef int _kind(table, name, what) except -1:
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ValueError("%s must be one of %s, got %r" % (what, ", ".join(table), name))


def ap2(x):
    """AP2 of a scalar (float) or, elementwise, of an array (float64 out)."""
    if np.ndim(x) == 0:
        return bnn_ap2(float(x))
    a = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(a)
    cdef const double[::1] av = a.reshape(-1)
    cdef double[::1] ov = out.reshape(-1)
    cdef Py_ssize_t i
    with nogil:
        for i in range(av.shape[0]):
            ov[i] = bnn_ap2(av[i])
    return out


def bn_forward_train(kind, const float[:, ::1] x, const float[::1] gamma, const float[::1] beta,
                     float eps, float momentum, float[::1] running_mean,
                     float[::1] running_invstd, float[:, ::1] y, float[::1] save_mean,
                     float[::1] save_scale):
    """Batch norm training forward over x [n, c]; see bnn.h."""
    cdef int k = _kind(BN_KINDS, kind, "bn kind")
    cdef int64_t n = x.shape[0], c = x.shape[1]
    cdef bnn_status st
    for arr, name in ((gamma, "gamma"), (beta, "beta"), (save_mean, "save_mean"),
                      (save_scale, "save_scale")):
        if arr.shape[0] != c:
            raise ValueError("%s must have %d entries" % (name, c))
    if running_mean is not None and running_mean.shape[0] != c:
        raise ValueError("running_mean must have %d entries" % c)
    if running_invstd is not None and running_invstd.shape[0] != c:
        raise ValueError("running_invstd must have %d entries" % c)
    if y.shape[0] != n or y.shape[1] != c:
        raise ValueError("y must have shape (%d, %d)" % (n, c))
    if n == 0 or c == 0:
        check(bnn_bn_forward_train(<bnn_bn_kind>k, n, c, NULL, NULL, NULL, eps, momentum,
                                   NULL, NULL, NULL, NULL, NULL), "batchnorm")
        return
    cdef float *rm = &running_mean[0] if running_mean is not None else NULL
    cdef float *ri = &running_invstd[0] if running_invstd is not None else NULL
    with nogil:
        st = bnn_bn_forward_train(<bnn_bn_kind>k, n, c, &x[0, 0], &gamma[0], &beta[0], eps,
                                  momentum, rm, ri, &y[0, 0], &save_mean[0], &save_scale[0])
    check(st, "batchnorm")


def bn_forward_eval(kind, const float[:, ::1] x, const float[::1] gamma, const float[::1] beta,
                    const float[::1] running_mean, const float[::1] running_invstd,
                    float[:, ::1] y):
    cdef int k = _kind(BN_KINDS, kind, "bn kind")
    cdef int64_t n = x.shape[0], c = x.shape[1]
    cdef bnn_status st
    for arr, name in ((gamma, "gamma"), (beta, "beta"), (running_mean, "running_mean"),
                      (running_invstd, "running_invstd")):
        if arr.shape[0] != c:
            raise ValueError("%s must have %d entries" % (name, c))
    if y.shape[0] != n or y.shape[1] != c:
        raise ValueError("y must have shape (%d, %d)" % (n, c))
    if n == 0 or c == 0:
        return
    with nogil:
        st = bnn_bn_forward_eval(<bnn_bn_kind>k, n, c, &x[0, 0], &gamma[0], &beta[0],
                                 &running_mean[0], &running_invstd[0], &y[0, 0])
    check(st, "batchnorm")


def bn_backward(kind, const float[:, ::1] x, const float[::1] gamma,
                const float[::1] save_mean, const float[::1] save_scale,
                const float[:, ::1] dy, float[:, ::1] dx, float[::1] dgamma, float[::1] dbeta):
    cdef int k = _kind(BN_KINDS, kind, "bn kind")
    cdef int64_t n = x.shape[0], c = x.shape[1]
    cdef bnn_status st
    for arr, name in ((gamma, "gamma"), (save_mean, "save_mean"), (save_scale, "save_scale"),
                      (dgamma, "dgamma"), (dbeta, "dbeta")):
        if arr.shape[0] != c:
            raise ValueError("%s must have %d entries" % (name, c))
    if dy.shape[0] != n or dy.shape[1] != c or dx.shape[0] != n or dx.shape[1] != c:
        raise ValueError("dy and dx must have shape (%d, %d)" % (n, c))
    if n == 0 or c == 0:
        check(bnn_bn_backward(<bnn_bn_kind>k, n, c, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                              NULL), "batchnorm backward")
        return
    with nogil:
        st = bnn_bn_backward(<bnn_bn_kind>k, n, c, &x[0, 0], &gamma[0], &save_mean[0],
                             &save_scale[0], &dy[0, 0], &dx[0, 0], &dgamma[0], &dbeta[0])
    check(st, "batchnorm backward")


cdef bnn_opt_params _opt_params(kind, int64_t t, double lr, double beta1, double beta2,
                                double eps, double lr_scale, double clip) except *:
    cdef bnn_opt_params p
    memset(&p, 0, sizeof(p))
    p.kind = _kind(OPT_KINDS, kind, "optimizer")
    p.t = t; p.lr = lr; p.beta1 = beta1; p.beta2 = beta2; p.eps = eps
    p.lr_scale = lr_scale; p.clip = clip
    return p


def opt_step(kind, float[::1] param, const float[::1] grad, float[::1] m, float[::1] v,
             int64_t t, double lr, double beta1, double beta2, double eps,
             double lr_scale=1.0, double clip=0.0):
    """One optimizer step in place on float32 param/m/v; see bnn.h."""
    cdef bnn_opt_params p = _opt_params(kind, t, lr, beta1, beta2, eps, lr_scale, clip)
    cdef int64_t n = param.shape[0]
    cdef bnn_status st
    if grad.shape[0] != n or m.shape[0] != n or v.shape[0] != n:
        raise ValueError("param, grad, m and v must have the same length")
    if n == 0:
        check(bnn_opt_step(&p, 0, NULL, NULL, NULL, NULL), "optimizer")
        return
    with nogil:
        st = bnn_opt_step(&p, n, &param[0], &grad[0], &m[0], &v[0])
    check(st, "optimizer")


def opt_step_pack(kind, float[:, ::1] param, const float[:, ::1] grad, float[:, ::1] m,
                  float[:, ::1] v, uint64_t[:, ::1] signs, int64_t t, double lr, double beta1,
                  double beta2, double eps, double lr_scale=1.0, double clip=0.0):
    """opt_step on [rows, k] arrays that also writes the packed signs of the
    new values into signs [rows, words(k)] (bnn_opt_step_pack)."""
    cdef bnn_opt_params p = _opt_params(kind, t, lr, beta1, beta2, eps, lr_scale, clip)
    cdef int64_t rows = param.shape[0], k = param.shape[1]
    cdef bnn_status st
    if (grad.shape[0] != rows or grad.shape[1] != k or m.shape[0] != rows or m.shape[1] != k
            or v.shape[0] != rows or v.shape[1] != k):
        raise ValueError("param, grad, m and v must have the same shape")
    if signs.shape[0] != rows or signs.shape[1] != bnn_words(k):
        raise ValueError("signs must have shape (%d, %d), got (%d, %d)"
                         % (rows, bnn_words(k), signs.shape[0], signs.shape[1]))
    if rows == 0 or k == 0:
        return
    with nogil:
        st = bnn_opt_step_pack(&p, rows, k, &param[0, 0], &grad[0, 0], &m[0, 0], &v[0, 0],
                               &signs[0, 0], signs.shape[1])
    check(st, "optimizer")


def ste_mask_pack(const float[:, ::1] x, uint64_t[:, ::1] mask):
    cdef int64_t rows = x.shape[0], k = x.shape[1]
    cdef bnn_status st
    if mask.shape[0] != rows or mask.shape[1] != bnn_words(k):
        raise ValueError("mask must have shape (%d, %d)" % (rows, bnn_words(k)))
    if rows == 0 or k == 0:
        return
    with nogil:
        st = bnn_ste_mask_pack(rows, k, &x[0, 0], k, &mask[0, 0], mask.shape[1])
    check(st, "ste_mask_pack")


def pack_stochastic(const float[:, ::1] x, uint64_t seed, uint64_t counter,
                    uint64_t[:, ::1] dst):
    cdef int64_t rows = x.shape[0], k = x.shape[1]
    cdef bnn_status st
    if dst.shape[0] != rows or dst.shape[1] != bnn_words(k):
        raise ValueError("dst must have shape (%d, %d)" % (rows, bnn_words(k)))
    if rows == 0 or k == 0:
        return
    with nogil:
        st = bnn_pack_stochastic_f32(rows, k, &x[0, 0], k, seed, counter, &dst[0, 0],
                                     dst.shape[1])
    check(st, "pack_stochastic")


# ---- model runtime (.bnn files) ---------------------------------------------

ERR_FORMAT = BNN_ERR_FORMAT                # a model file is malformed
ERR_UNSUPPORTED = BNN_ERR_UNSUPPORTED      # ... or of a format/layout this build does not know
_FORMAT_STATUSES = (BNN_ERR_FORMAT, BNN_ERR_UNSUPPORTED)

# The .bnn format's constants and codes: bnn.h is their one definition.
MODEL_FORMAT_VERSION = BNN_MODEL_FORMAT_VERSION
MODEL_HEADER_BYTES = BNN_MODEL_HEADER_BYTES
MODEL_RECORD_HEADER_BYTES = BNN_MODEL_RECORD_HEADER_BYTES
RECORD_TYPES = {"dense": BNN_RECORD_DENSE, "conv": BNN_RECORD_CONV,
                "maxpool": BNN_RECORD_MAXPOOL, "flatten": BNN_RECORD_FLATTEN}
RECORD_FLAGS = {"input_u8": BNN_RECORD_INPUT_U8, "scores": BNN_RECORD_SCORES,
                "pad_one": BNN_RECORD_PAD_ONE}


class BnnFormatError(BnnError, ValueError):
    """A .bnn file is malformed, truncated, corrupt or of an unknown version.
    `report` is bnn_model_check's account of it (a dict: status, offset,
    record, field, expected, found, message), or None."""

    def __init__(self, message, status=None, report=None):
        super().__init__(message, status)
        self.report = report


cdef _aligned_copy(data):
    """(uint64 array holding data's bytes, its uint8 view, length): 8-byte
    aligned storage, so the runtime reads the weights in place."""
    raw = bytes(data)
    buf = np.zeros(max(1, (len(raw) + 7) // 8), np.uint64)   # never empty: a valid pointer
    buf.view(np.uint8)[:len(raw)] = np.frombuffer(raw, np.uint8)
    return buf, buf.view(np.uint8), len(raw)


def model_check(data):
    """bnn_model_check on the bytes of a .bnn file: the strict pass every
    loader runs.  Returns the report as a dict: status (0 = valid), offset
    (byte of the offending field, -1 if none), record (-1 for the header),
    field, expected, found and message (one sentence)."""
    cdef bnn_model_report rep
    cdef const unsigned char[::1] view
    cdef const unsigned char *p
    cdef size_t nb
    buf, u8, n = _aligned_copy(data)
    view = u8
    nb = n
    p = &view[0]
    with nogil:
        bnn_model_check(p, nb, &rep)
    return dict(status=int(rep.status), offset=int(rep.offset), record=int(rep.record),
                field=rep.field.decode("utf-8", "replace"), expected=int(rep.expected),
                found=int(rep.found), message=rep.message.decode("utf-8", "replace"))


def model_checksum(data):
    """The FNV-1a 64 checksum a .bnn header holds (bytes 24..31 read as zero)."""
    cdef const unsigned char[::1] view
    buf, u8, n = _aligned_copy(data)
    view = u8
    return int(bnn_model_checksum(&view[0], <size_t>n))


cdef _record_params(kind, params, uint32_t *prm):
    cdef int i
    if kind not in RECORD_TYPES:
        raise ValueError("unknown record type %r" % (kind,))
    params = list(params)
    if len(params) > BNN_MODEL_MAX_PARAMS:
        raise ValueError("at most %d parameters, got %d" % (BNN_MODEL_MAX_PARAMS, len(params)))
    for i in range(BNN_MODEL_MAX_PARAMS):
        v = operator.index(params[i]) if i < len(params) else 0
        if not 0 <= v <= 0xFFFFFFFF:
            raise ValueError("parameter %d of a %s record is %r, not a u32" % (i, kind, v))
        prm[i] = v


def model_record_layout(str kind, int flags, params):
    """(record bytes, [(offset, bytes) of each array]) of a record of type
    `kind` ("dense", "conv", "maxpool", "flatten"), a flags bit set and its
    parameters (integers, at most 12; the rest are zero)."""
    cdef uint32_t prm[BNN_MODEL_MAX_PARAMS]
    cdef bnn_model_record_layout lay
    cdef int i
    _record_params(kind, params, prm)
    check(bnn_model_record_layout_of(RECORD_TYPES[kind], flags, prm, &lay),
          "record layout of %s %r" % (kind, list(params)))
    return int(lay.record_bytes), [(int(lay.array_offset[i]), int(lay.array_bytes[i]))
                                   for i in range(lay.n_arrays)]


def model_record_header(str kind, int flags, params):
    """The MODEL_RECORD_HEADER_BYTES bytes of a record header
    (bnn_model_write_record_header)."""
    cdef uint32_t prm[BNN_MODEL_MAX_PARAMS]
    cdef unsigned char[::1] out = bytearray(BNN_MODEL_RECORD_HEADER_BYTES)
    _record_params(kind, params, prm)
    check(bnn_model_write_record_header(&out[0], RECORD_TYPES[kind], flags, prm),
          "record header of %s %r" % (kind, list(params)))
    return bytes(out)


def model_header(uint64_t file_bytes, uint32_t records, uint32_t in_h, uint32_t in_w,
                 uint32_t in_c, uint32_t classes):
    """The MODEL_HEADER_BYTES bytes of a file header, checksum 0
    (bnn_model_write_header; model_seal sets the checksum)."""
    cdef unsigned char[::1] out = bytearray(BNN_MODEL_HEADER_BYTES)
    check(bnn_model_write_header(&out[0], file_bytes, records, in_h, in_w, in_c, classes),
          "model header")
    return bytes(out)


def model_seal(bytearray data):
    """Store the checksum of the complete file `data` in its header, in place."""
    cdef unsigned char[::1] view
    if len(data) < BNN_MODEL_HEADER_BYTES:
        raise BnnValueError("model_seal: %d bytes, shorter than a header" % len(data),
                            int(BNN_ERR_SHAPE))
    view = data
    check(bnn_model_seal(&view[0], view.shape[0]), "model_seal")


cdef class Model:
    """A .bnn model loaded by the C runtime (bnn_model_open_memory): the
    file's bytes are kept by this object and read in place."""

    cdef bnn_model *_m
    cdef object _data          # the bytes the model points into
    cdef object _local         # per-thread workspace (uint8 array), grown on demand
    cdef readonly object info

    def __cinit__(self):
        self._m = NULL

    def __init__(self, data, source="<bytes>"):
        cdef const unsigned char[::1] view
        cdef bnn_status st
        cdef bnn_model_info inf
        cdef bnn_model *m = NULL
        cdef size_t nb
        buf, u8, n = _aligned_copy(data)
        if self._m != NULL:          # __init__ called again: drop the old model
            bnn_model_free(self._m)
            self._m = NULL
        view = u8
        nb = n
        with nogil:
            st = bnn_model_open_memory(&view[0], nb, &m)
        if st != BNN_OK:
            if st in _FORMAT_STATUSES:
                # the loader and the checker run the same pass: ask the
                # checker where and why
                rep = model_check(buf.view(np.uint8)[:n])
                raise BnnFormatError("%s is not a valid .bnn file: %s" % (source, rep["message"]),
                                     int(st), rep)
            check(st, source)
        self._m = m
        self._data = buf
        self._local = threading.local()
        check(bnn_model_get_info(m, &inf), "bnn_model_get_info")
        self.info = dict(input_shape=(inf.in_h, inf.in_w, inf.in_c), classes=inf.classes,
                         layers=inf.layers, binary_weights=inf.binary_weights,
                         file_bytes=inf.file_bytes, format_version=inf.format_version,
                         layout_version=inf.layout_version, zero_copy=bool(inf.zero_copy))

    def __dealloc__(self):
        bnn_model_free(self._m)
        self._m = NULL

    def layers(self):
        """Each record of the loaded file as a dict: type ("dense", "conv",
        "maxpool", "flatten"), flags (a set of names), params (the file's
        parameter words), input and output shape of one image, file offset
        and record bytes (bnn_model_get_layer)."""
        cdef bnn_model_layer_info li
        cdef int64_t i
        names = {v: k for k, v in RECORD_TYPES.items()}
        out = []
        for i in range(self.info["layers"]):
            check(bnn_model_get_layer(self._m, i, &li), "bnn_model_get_layer")
            out.append(dict(type=names[li.type],
                            flags={k for k, v in RECORD_FLAGS.items() if li.flags & v},
                            params=[int(li.params[j]) for j in range(BNN_MODEL_MAX_PARAMS)],
                            in_shape=(li.in_h, li.in_w, li.in_c),
                            out_shape=(li.out_h, li.out_w, li.out_c),
                            file_offset=li.file_offset, record_bytes=li.record_bytes))
        return out

    def workspace_size(self, int64_t batch, int threads=0):
        cdef size_t b
        check(bnn_model_workspace_size(self._m, batch, threads, &b), "bnn_model_workspace_size")
        return b

    def run(self, x, float[:, ::1] scores, int32_t[::1] classes):
        """Scores [n, classes] and classes [n] of n uint8 images x
        (C-contiguous, n * H * W * C bytes).  Thread-safe: each calling
        thread has its own workspace."""
        cdef const uint8_t[::1] xv
        cdef int64_t n = scores.shape[0]
        cdef size_t need
        cdef bnn_status st
        cdef unsigned char[::1] wv
        cdef size_t wn
        h, w, c = self.info["input_shape"]
        if scores.shape[1] != self.info["classes"] or classes.shape[0] != n:
            raise BnnValueError("Model.run: scores must be [n, %d] and classes [n]"
                                % self.info["classes"])
        if n == 0:
            return
        xv = x.reshape(-1)
        if xv.shape[0] != n * h * w * c:
            raise BnnValueError("Model.run: x holds %d bytes, %d images need %d"
                                % (xv.shape[0], n, n * h * w * c))
        check(bnn_model_workspace_size(self._m, n, 0, &need), "bnn_model_workspace_size")
        ws = getattr(self._local, "ws", None)
        if ws is None or ws.size < need:
            ws = np.zeros(need, np.uint8)
            self._local.ws = ws
        wv = ws
        wn = wv.shape[0]
        with nogil:
            st = bnn_model_run(self._m, n, &xv[0], &scores[0, 0], &classes[0], &wv[0], wn)
        check(st, "bnn_model_run")


# ---------------------------------------------------------------------------
# CUDA (bnn_cuda.h).  Device pointers, streams and sizes are Python ints;
# pybnn.cuda wraps these in arrays.  Without CUDA in the build every call
# raises BnnError with BNN_ERR_UNSUPPORTED.
# ---------------------------------------------------------------------------

class BnnDeviceError(BnnError, RuntimeError):
    """A GPU call failed: no driver or device, memory the device cannot
    reach, a failed launch or a kernel fault (the CUDA runtime's message)."""


ERR_DEVICE = BNN_ERR_DEVICE


cdef int cuda_check(bnn_status st, what) except -1:
    if st == BNN_ERR_DEVICE:
        detail = bnn_cuda_last_error().decode(errors="replace")
        raise BnnDeviceError("%s: %s" % (what, detail or bnn_status_string(st).decode()),
                             int(st))
    return check(st, what)


def cuda_available():
    """(usable, devices, reason): whether libbnn can run on a CUDA device,
    how many there are, and a one-line reason or description."""
    cdef int n = 0
    cdef char why[256]
    why[0] = 0
    st = bnn_cuda_available(&n, why, sizeof(why))
    return st == BNN_OK, int(n), why.decode(errors="replace")


def cuda_malloc(size_t nbytes):
    cdef void *p = NULL
    cuda_check(bnn_cuda_malloc(&p, nbytes), "cuda_malloc(%d bytes)" % nbytes)
    return <size_t>p


def cuda_free(size_t ptr):
    cuda_check(bnn_cuda_free(<void *>ptr), "cuda_free")


def cuda_copy_to_device(size_t dst, const unsigned char[::1] src):
    cuda_check(bnn_cuda_copy_to_device(<void *>dst, &src[0] if src.shape[0] else NULL,
                                       <size_t>src.shape[0]), "cuda_copy_to_device")


def cuda_copy_to_host(unsigned char[::1] dst, size_t src):
    cuda_check(bnn_cuda_copy_to_host(&dst[0] if dst.shape[0] else NULL, <const void *>src,
                                     <size_t>dst.shape[0]), "cuda_copy_to_host")


def cuda_synchronize(size_t stream=0):
    cuda_check(bnn_cuda_synchronize(<void *>stream), "cuda_synchronize")


def cuda_pack_f32(int64_t rows, int64_t k, size_t src, int64_t src_stride, size_t dst,
                  int64_t dst_stride_words, size_t stream=0):
    cuda_check(bnn_cuda_pack_f32(rows, k, <const float *>src, src_stride, <uint64_t *>dst,
                                 dst_stride_words, <void *>stream), "cuda_pack_f32")


cdef bnn_epilogue _device_epilogue(int kind, size_t scale, size_t offset, size_t thresh,
                                  size_t flip):
    """An epilogue whose arrays are device pointers (0: absent)."""
    cdef bnn_epilogue e
    memset(&e, 0, sizeof(e))
    e.kind = kind
    e.scale = <const float *>scale
    e.offset = <const float *>offset
    e.thresh = <const int32_t *>thresh
    e.flip = <const uint8_t *>flip
    return e


CUDA_GEMM_KERNELS = {"auto": BNN_CUDA_GEMM_AUTO, "simt": BNN_CUDA_GEMM_SIMT,
                     "tensor": BNN_CUDA_GEMM_TENSOR}


def cuda_gemm(int64_t n, int64_t m, int64_t k, size_t a, int64_t lda, size_t w, int64_t ldw,
              int kind, size_t scale, size_t offset, size_t thresh, size_t flip, size_t c,
              int64_t ldc, int kernel=BNN_CUDA_GEMM_AUTO, size_t stream=0):
    """bnn_cuda_gemm; kind: 0 INT32, 1 FLOAT, 2 BITS; the epilogue arrays
    are device pointers (0: absent)."""
    cdef bnn_epilogue e = _device_epilogue(kind, scale, offset, thresh, flip)
    cuda_check(bnn_cuda_gemm(n, m, k, <const uint64_t *>a, lda, <const uint64_t *>w, ldw, &e,
                             <void *>c, ldc, kernel, <void *>stream), "cuda_gemm")


def cuda_sgemm(int64_t n, int64_t m, int64_t k, size_t a, int64_t lda, size_t w, int64_t ldw,
               size_t c, int64_t ldc, size_t stream=0):
    """bnn_cuda_sgemm: the float comparison kernel, c = a . w^T."""
    cuda_check(bnn_cuda_sgemm(n, m, k, <const float *>a, lda, <const float *>w, ldw,
                              <float *>c, ldc, <void *>stream), "cuda_sgemm")


def cuda_conv2d(n, h, w, int64_t c, o, kh, kw, stride, dilation, padding, int pad_value,
                size_t x, size_t wt, int kind, size_t scale, size_t offset, size_t thresh,
                size_t flip, size_t out, size_t stream=0):
    """bnn_cuda_conv2d on device pointers (the epilogue arrays: 0 = absent)."""
    cdef bnn_conv2d_params p = _conv_params(n, h, w, c, o, kh, kw, stride, dilation, padding,
                                            pad_value, 128)
    cdef bnn_epilogue e = _device_epilogue(kind, scale, offset, thresh, flip)
    cuda_check(bnn_cuda_conv2d(&p, <const uint64_t *>x, <const uint64_t *>wt, &e, <void *>out,
                               <void *>stream), "cuda_conv2d")


def cuda_maxpool2d_bits(n, h, w, int64_t c, kernel, stride, padding, size_t x, size_t flip,
                        size_t out, size_t stream=0):
    cdef bnn_pool2d_params p = _pool_params(n, h, w, c, kernel, stride, padding)
    cuda_check(bnn_cuda_maxpool2d_bits(&p, <const uint64_t *>x, <const uint8_t *>flip,
                                       <uint64_t *>out, <void *>stream), "cuda_maxpool2d_bits")


def cuda_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, size_t a, int64_t lda_i, int64_t lda_j,
                      size_t s, int64_t lds, size_t c, int64_t ldc, bint accumulate=False,
                      size_t stream=0):
    cuda_check(bnn_cuda_gemm_f32_pm1(I, K, J, <const float *>a, lda_i, lda_j,
                                     <const uint64_t *>s, lds, <float *>c, ldc, accumulate,
                                     <void *>stream), "cuda_gemm_f32_pm1")


def cuda_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, size_t q, int64_t ldq, size_t s,
                     int64_t lds, size_t c, int64_t ldc, size_t stream=0):
    cuda_check(bnn_cuda_gemm_i8_pm1(I, K, J, <const int8_t *>q, ldq, <const uint64_t *>s, lds,
                                    <int32_t *>c, ldc, <void *>stream), "cuda_gemm_i8_pm1")


# The training step's elementwise and per-feature kernels (bnn_cuda.h).

def cuda_opt_step(kind, int64_t n, size_t param, size_t grad, size_t m, size_t v, int64_t t,
                  double lr, double beta1, double beta2, double eps, double lr_scale=1.0,
                  double clip=0.0, size_t stream=0):
    cdef bnn_opt_params p = _opt_params(kind, t, lr, beta1, beta2, eps, lr_scale, clip)
    cuda_check(bnn_cuda_opt_step(&p, n, <float *>param, <const float *>grad, <float *>m,
                                 <float *>v, <void *>stream), "cuda_opt_step")


def cuda_opt_step_pack(kind, int64_t rows, int64_t k, size_t param, size_t grad, size_t m,
                       size_t v, size_t signs, int64_t lds, int64_t t, double lr, double beta1,
                       double beta2, double eps, double lr_scale=1.0, double clip=0.0,
                       size_t stream=0):
    cdef bnn_opt_params p = _opt_params(kind, t, lr, beta1, beta2, eps, lr_scale, clip)
    cuda_check(bnn_cuda_opt_step_pack(&p, rows, k, <float *>param, <const float *>grad,
                                      <float *>m, <float *>v, <uint64_t *>signs, lds,
                                      <void *>stream), "cuda_opt_step_pack")


def cuda_bn_forward_train(kind, int64_t n, int64_t c, size_t x, size_t gamma, size_t beta,
                          float eps, float momentum, size_t running_mean, size_t running_invstd,
                          size_t y, size_t save_mean, size_t save_scale, size_t stream=0):
    cdef int k = _kind(BN_KINDS, kind, "bn kind")
    cuda_check(bnn_cuda_bn_forward_train(<bnn_bn_kind>k, n, c, <const float *>x,
                                         <const float *>gamma, <const float *>beta, eps,
                                         momentum, <float *>running_mean,
                                         <float *>running_invstd, <float *>y,
                                         <float *>save_mean, <float *>save_scale,
                                         <void *>stream), "cuda_bn_forward_train")


def cuda_bn_backward(kind, int64_t n, int64_t c, size_t x, size_t gamma, size_t save_mean,
                     size_t save_scale, size_t dy, size_t dx, size_t dgamma, size_t dbeta,
                     size_t stream=0):
    cdef int k = _kind(BN_KINDS, kind, "bn kind")
    cuda_check(bnn_cuda_bn_backward(<bnn_bn_kind>k, n, c, <const float *>x,
                                    <const float *>gamma, <const float *>save_mean,
                                    <const float *>save_scale, <const float *>dy, <float *>dx,
                                    <float *>dgamma, <float *>dbeta, <void *>stream),
               "cuda_bn_backward")


def cuda_sign_forward(int64_t rows, int64_t k, size_t x, int64_t ldx, size_t signs, int64_t lds,
                      size_t mask, int64_t ldm, size_t stream=0):
    """bnn_cuda_sign_forward, or bnn_cuda_ste_mask_pack when signs is 0."""
    if signs == 0:
        cuda_check(bnn_cuda_ste_mask_pack(rows, k, <const float *>x, ldx, <uint64_t *>mask, ldm,
                                          <void *>stream), "cuda_ste_mask_pack")
        return
    cuda_check(bnn_cuda_sign_forward(rows, k, <const float *>x, ldx, <uint64_t *>signs, lds,
                                     <uint64_t *>mask, ldm, <void *>stream), "cuda_sign_forward")


def cuda_ste_backward_packed(int64_t rows, int64_t k, size_t mask, int64_t ldm, size_t grad,
                             int64_t ldg, size_t out, int64_t ldo, size_t stream=0):
    cuda_check(bnn_cuda_ste_backward_packed(rows, k, <const uint64_t *>mask, ldm,
                                            <const float *>grad, ldg, <float *>out, ldo,
                                            <void *>stream), "cuda_ste_backward_packed")


def cuda_squared_hinge_grad(int64_t n, int64_t classes, size_t scores, size_t labels,
                            size_t grad, size_t stream=0):
    cuda_check(bnn_cuda_squared_hinge_grad(n, classes, <const float *>scores,
                                           <const int32_t *>labels, <float *>grad,
                                           <void *>stream), "cuda_squared_hinge_grad")


cdef class CudaModel:
    """A loaded Model's device copy (bnn_cuda_model_create); keeps the Model
    alive, since its layer table is read at each run."""

    cdef bnn_cuda_model *_dm
    cdef readonly object model

    def __cinit__(self):
        self._dm = NULL

    def __init__(self, Model model):
        cdef bnn_cuda_model *dm = NULL
        cuda_check(bnn_cuda_model_create(model._m, &dm), "bnn_cuda_model_create")
        self._dm = dm
        self.model = model

    def __dealloc__(self):
        bnn_cuda_model_free(self._dm)
        self._dm = NULL

    def workspace_size(self, int64_t batch):
        cdef size_t b = 0
        cuda_check(bnn_cuda_model_workspace_size(self._dm, batch, &b),
                   "bnn_cuda_model_workspace_size")
        return b

    def run(self, int64_t n, size_t x, size_t scores, size_t classes, size_t workspace,
            size_t workspace_bytes, size_t stream=0):
        cuda_check(bnn_cuda_model_run(self._dm, n, <const uint8_t *>x, <float *>scores,
                                      <int32_t *>classes, <void *>workspace, workspace_bytes,
                                      <void *>stream), "bnn_cuda_model_run")
