"""Packed +-1 tensors and the binary products on them.

Bit contract (include/bnn.h): element j of a row is bit j % 64 of word
j // 64, bit 1 means -1 and bit 0 means +1; x < 0 packs as 1, and +0, -0
and NaN pack as 0 (sign(0) = +1).  Rows are padded with zero bits to whole
64-bit words.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from .. import _core
from .._args import finite, integer, nonfinite, real, show

__all__ = ["PackedTensor", "pack", "bgemm", "bgemm_affine", "bgemm_threshold",
           "fold_threshold", "fold_batchnorm"]

_PACK_DTYPES = tuple(np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int8))


def _words(k: int) -> int:
    return (k + 63) // 64


class PackedTensor:
    """A +-1 tensor of logical `shape`, packed along its last axis.

    `words` is a uint64 array of shape `shape[:-1] + (ceil(K / 64),)`;
    `nbytes` is its size: one bit per element plus the padding of each row
    to 64 bits.  Build one with `pybnn.pack(x)`, or from existing words
    with `PackedTensor(words, shape)` (pad bits must be zero)."""

    __slots__ = ("_words", "_shape", "_rows2d")

    def __init__(self, words, shape):
        try:
            shape = tuple(operator.index(s) for s in shape)
        except TypeError:
            raise TypeError("shape must be a tuple of ints, got %s" % show(shape)) from None
        if len(shape) < 1 or any(s < 0 for s in shape):
            raise ValueError("shape must have at least one axis and no negative sizes, got %r" % (shape,))
        words = np.asarray(words)
        if words.dtype.newbyteorder("=") != np.uint64:
            raise TypeError("words must be uint64, got %s" % words.dtype)
        want = shape[:-1] + (_words(shape[-1]),)
        if words.shape != want:
            raise ValueError("words must have shape %r for a packed %r tensor, got %r"
                             % (want, shape, words.shape))
        # Kernels need each row's words contiguous, rows at a fixed stride.
        words = np.ascontiguousarray(words, dtype=np.uint64)
        k = shape[-1]
        if k % 64 and words.size:
            pad = np.uint64(((1 << 64) - 1) ^ ((1 << (k % 64)) - 1))
            if np.any(words[..., -1] & pad):
                raise ValueError("words must have zero pad bits past element %d of each row" % k)
        self._words = words
        self._shape = shape
        self._rows2d = words.reshape(math.prod(shape[:-1]), words.shape[-1])

    @property
    def shape(self):
        return self._shape

    @property
    def ndim(self):
        return len(self._shape)

    @property
    def words(self):
        return self._words

    @property
    def nbytes(self):
        return int(self._words.nbytes)

    def __len__(self):
        return self._shape[0]

    def __repr__(self):
        return "PackedTensor(shape=%r, nbytes=%d)" % (self._shape, self.nbytes)

    @property
    def rows(self):
        """Number of packed rows (the product of all but the last axis)."""
        return math.prod(self._shape[:-1])

    def _rows(self):
        """Words as a 2-D [rows, words] view."""
        return self._rows2d

    def unpack(self, out=None):
        """The tensor as float32 +1 / -1 values, into `out` when given (a
        C-contiguous float32 array of the tensor's shape, reused so large
        weights are not re-allocated -- and page-faulted -- every call)."""
        k = self._shape[-1]
        if out is None:
            out = np.empty(self._shape, dtype=np.float32)
        elif (not isinstance(out, np.ndarray) or out.dtype != np.float32
              or out.shape != self._shape or not out.flags.c_contiguous
              or not out.flags.writeable):
            raise ValueError("unpack: out must be a writeable C-contiguous float32 array of "
                             "shape %r, got %s" % (self._shape, show(out)))
        if out.size:
            _core.unpack_rows_f32(self._rows(), k, out.reshape(self.rows, k))
        return out

    def __eq__(self, other):
        if not isinstance(other, PackedTensor):
            return NotImplemented
        return self._shape == other._shape and np.array_equal(self._words, other._words)

    __hash__ = None


def pack(x) -> PackedTensor:
    """Pack a real array along its last axis: x < 0 -> -1, else +1.

    Accepts float16, float32, float64 and int8 arrays of any strides and
    byte order (copied when the last axis is not contiguous).  Other dtypes
    (bool, complex, other integers, long double, object, str) raise
    TypeError."""
    x = np.asarray(x)
    dt = x.dtype.newbyteorder("=")  # byte order is handled below
    if dt not in _PACK_DTYPES:
        raise TypeError("x must be a float16/32/64 or int8 array, got %s" % dt)
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d array")
    k = x.shape[-1]
    kw = _words(k)
    words = np.empty(x.shape[:-1] + (kw,), dtype=np.uint64)
    if words.size == 0:
        return PackedTensor(words, x.shape)
    if dt == np.float64:
        # float64 -> float32 could turn tiny negatives into -0.0 (+1), so pack
        # the exact comparison instead (NaN < 0 is False, -0.0 < 0 is False).
        src = np.negative((x < 0).view(np.int8))
        fn = _core.pack_rows_i8
    elif dt == np.float16:
        src = x.astype(np.float32)  # exact widening
        fn = _core.pack_rows_f32
    else:
        src = x if x.dtype.isnative else x.astype(dt)
        fn = _core.pack_rows_f32 if dt == np.float32 else _core.pack_rows_i8
    rows = math.prod(x.shape[:-1])
    src = src.reshape(rows, k)  # a view when the leading axes allow it
    rows_ok = rows == 1 or (src.strides[0] >= k * src.itemsize
                            and src.strides[0] % src.itemsize == 0)
    if not rows_ok or (k > 1 and src.strides[1] != src.itemsize):
        src = np.ascontiguousarray(src)
    fn(src, words.reshape(rows, kw))
    return PackedTensor(words, x.shape)


def _check_pair(a, w):
    for v, name in ((a, "a"), (w, "w")):
        if not isinstance(v, PackedTensor):
            raise TypeError("%s must be a PackedTensor (use pybnn.pack), got %s" % (name, show(v)))
    if w.ndim != 2:
        raise ValueError("w must be a 2-D packed tensor [M, K], got shape %r" % (w.shape,))
    if a.shape[-1] != w.shape[-1]:
        raise ValueError("w must have the K = %d elements per row of a, got %d"
                         % (a.shape[-1], w.shape[-1]))
    return a.shape[-1], a.shape[:-1], w.shape[0]


def _check_out(out, shape, dtype, operands=()):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy array, got %s" % show(out))
    if out.dtype != dtype:
        raise TypeError("out must be %s, got %s" % (np.dtype(dtype), out.dtype))
    if out.shape != tuple(shape):
        raise ValueError("out must have shape %r, got %r" % (tuple(shape), out.shape))
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous, got strides %r" % (out.strides,))
    for op in operands:
        if np.shares_memory(out, op.words):
            raise ValueError("out must not share memory with an operand")
    return out


def _vector(v, m, dtype, name):
    """A [m] contiguous vector of dtype: float32 (any real input, rounded)
    or int32 (integer input whose values fit, else an error)."""
    if v is None:
        return None
    arr = np.asarray(v)
    if np.dtype(dtype).kind == "i":
        if arr.dtype.kind not in "iub":
            raise TypeError("%s must hold integers, got %s" % (name, arr.dtype))
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise ValueError("%s must fit in %s, got values in [%d, %d]"
                             % (name, np.dtype(dtype), arr.min(), arr.max()))
    elif arr.dtype.kind not in "fiub":
        raise TypeError("%s must be real, got %s" % (name, arr.dtype))
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.shape != (m,):
        raise ValueError("%s must have shape (%d,), got %r" % (name, m, arr.shape))
    return arr


def bgemm(a: PackedTensor, w: PackedTensor, out=None):
    """int32 `a_pm1 @ w_pm1.T`: a [..., K] and w [M, K] packed -> [..., M]."""
    k, lead, m = _check_pair(a, w)
    out = _check_out(out, lead + (m,), np.int32, (a, w))
    _core.gemm(a._rows(), w._rows(), k, out.reshape(a.rows, m))
    return out


def bgemm_affine(a: PackedTensor, w: PackedTensor, scale=None, offset=None, out=None):
    """float32 `scale * (a_pm1 @ w_pm1.T) + offset` per output column, with
    one fused multiply-add (the same result on every ISA).  scale and offset
    are [M] (converted to float32) or None (1 and 0)."""
    k, lead, m = _check_pair(a, w)
    scale = _vector(scale, m, np.float32, "scale")
    offset = _vector(offset, m, np.float32, "offset")
    out = _check_out(out, lead + (m,), np.float32, (a, w))
    _core.gemm(a._rows(), w._rows(), k, out.reshape(a.rows, m), 1, scale, offset)
    return out


def bgemm_threshold(a: PackedTensor, w: PackedTensor, thresh, flip=None, out=None):
    """Packed sign bits of the next layer: bit (row, j) is -1 where
    `flip[j] ? dot > thresh[j] : dot < thresh[j]`.  Returns a PackedTensor
    [..., M]; thresholds usually come from fold_threshold/fold_batchnorm.
    `out`, if given, is a uint64 array [..., ceil(M/64)] to write into."""
    k, lead, m = _check_pair(a, w)
    if thresh is None:
        raise ValueError("thresh must be an [%d] integer array, got None" % m)
    thresh = _vector(thresh, m, np.int32, "thresh")
    if flip is not None:
        flip = _vector(np.asarray(flip) != 0, m, np.uint8, "flip")
    kw = _words(m)
    out = _check_out(out, lead + (kw,), np.uint64, (a, w))
    _core.gemm(a._rows(), w._rows(), k, out.reshape(a.rows, kw), 2, thresh=thresh, flip=flip)
    return PackedTensor(out, lead + (m,))


def fold_threshold(scale, offset, k: int):
    """Fold per-channel `sign(scale * s + offset)` into integer thresholds.

    For every integer s in [-k, k], `(flip ? s > thresh : s < thresh)` equals
    `scale * s + offset < 0` computed in float64 (bit 1 = -1).  Returns
    (thresh int32 [C], flip bool [C])."""
    s = _reals(scale, "scale").reshape(-1)
    o = _reals(offset, "offset").reshape(-1)
    if s.shape != o.shape:
        raise ValueError("offset must have the shape %r of scale, got %r" % (s.shape, o.shape))
    k = integer(k, "k", 0)
    try:
        t, f = _core.fold_threshold(np.ascontiguousarray(s), np.ascontiguousarray(o), k)
    except _core.BnnValueError as e:
        # libbnn refuses a non-finite scale or offset and k > INT32_MAX - 1
        # (bnn_fold_threshold); say which, with its status
        why = (nonfinite(s, "scale") or nonfinite(o, "offset")
               or "k must be < 2**31 - 1, got %d" % k)
        raise _core.BnnValueError("fold_threshold: " + why, e.status) from None
    return t, f.astype(bool)


def _reals(v, name):
    """v as a float64 array, or TypeError naming it."""
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("%s must be real numbers, got %s" % (name, show(v))) from None
    return a


def fold_batchnorm(gamma, beta, mean, var, eps, k: int):
    """Fold batch norm then sign over integer dots in [-k, k]: scale =
    gamma / sqrt(var + eps), offset = beta - mean * scale (float64)."""
    g, b, mu, v = (_reals(x, name) for x, name in ((gamma, "gamma"), (beta, "beta"),
                                                    (mean, "mean"), (var, "var")))
    for x, name in ((b, "beta"), (mu, "mean"), (v, "var")):
        if x.shape != g.shape:
            raise ValueError("%s must have the shape %r of gamma, got %r"
                             % (name, g.shape, x.shape))
    eps = real(eps, "eps", minimum=0.0)
    k = integer(k, "k", 0)
    for x, name in ((g, "gamma"), (b, "beta"), (mu, "mean"), (v, "var")):
        finite(x.reshape(-1), name)
    if (v < 0).any():
        raise ValueError("var must be >= 0, got %r" % float(v[v < 0].reshape(-1)[0]))
    if eps == 0 and (v == 0).any():
        raise ValueError("eps must be > 0 where var is 0, got 0.0")
    scale = g / np.sqrt(v + eps)
    return fold_threshold(scale, b - mu * scale, k)
