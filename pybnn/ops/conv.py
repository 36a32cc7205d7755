"""Binary convolution, max-pooling and the 8-bit first layer (NHWC).

Activations are PackedTensors of logical shape [N, H, W, C] (packed along
C), filters [O, KH, KW, C].  Outputs follow the same layout: int32 or
float32 [N, OH, OW, O], or a PackedTensor [N, OH, OW, O] for the
threshold epilogue, which is what the next binary layer reads.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import _core
from .._args import integer, show
from .packed import PackedTensor, _check_out, _vector, _words

__all__ = ["bconv2d", "bconv2d_affine", "bconv2d_threshold", "maxpool2d",
           "gemm_u8", "conv2d_u8", "conv2d_output_shape", "conv2d_correction"]

_INT32, _FLOAT, _BITS = 0, 1, 2


def _ints(v, name, n):
    """v (an int, or a tuple or list of n ints) as n ints, or TypeError
    naming it.  The values' domain is libbnn's to check."""
    try:
        if isinstance(v, (tuple, list)):
            return tuple(operator.index(x) for x in v)
        return (operator.index(v),) * n
    except TypeError:
        raise TypeError("%s must be an int or a tuple of %d ints, got %s"
                        % (name, n, show(v))) from None


def _pair(v, name):
    """int or (h, w) -> (h, w)."""
    if isinstance(v, (tuple, list)) and len(v) != 2:
        raise ValueError("%s must be an int or a pair, got %s" % (name, show(v)))
    return _ints(v, name, 2)


_pad_pair = _pair


def _padding(v):
    """int, (h, w) or (top, bottom, left, right) -> 4-tuple."""
    if isinstance(v, (tuple, list)):
        if len(v) == 4:
            return _ints(v, "padding", 4)
        if len(v) != 2:
            raise ValueError("padding must be an int, (h, w) or (top, bottom, left, right), "
                             "got %s" % show(v))
        h, w = _ints(v, "padding", 2)
        return h, h, w, w
    return _ints(v, "padding", 4)


def check_geometry(kernel, stride=1, padding=0, dilation=1, pad_value=0, what="conv2d"):
    """Refuse (naming the argument) what bconv2d would refuse for any input:
    what a layer checks when it is built.  Returns the normalised
    ((kh, kw), stride, padding 4-tuple, dilation)."""
    kh, kw = _pair(kernel, "kernel")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    padding = _padding(padding)
    # an empty batch of the smallest input the kernel fits without padding
    h = (max(kh, 1) - 1) * max(dilation[0], 1) + 1
    w = (max(kw, 1) - 1) * max(dilation[1], 1) + 1
    _core.conv2d_output_shape(0, h, w, 1, 1, kh, kw, stride, dilation, padding, pad_value,
                              what=what, names=_KERNEL_NAMES)
    return (kh, kw), stride, padding, dilation


# conv2d_output_shape and the layers take the kernel as an argument
_KERNEL_NAMES = {"kh": "kernel", "kw": "kernel"}


def conv2d_output_shape(h, w, kernel, stride=1, padding=0, dilation=1):
    """(OH, OW) of a convolution over an H x W input."""
    kh, kw = _pair(kernel, "kernel")
    h, w = integer(h, "h"), integer(w, "w")
    return _core.conv2d_output_shape(1, h, w, 1, 1, kh, kw, _pair(stride, "stride"),
                                     _pair(dilation, "dilation"), _padding(padding),
                                     what="conv2d_output_shape",
                                     names=dict(_KERNEL_NAMES, h="h", w="w"))


def _packed4(v, name, layout):
    if not isinstance(v, PackedTensor):
        raise TypeError("%s must be a PackedTensor %s (use pybnn.pack), got %s"
                        % (name, layout, show(v)))
    if v.ndim != 4:
        raise ValueError("%s must be 4-D %s, got shape %r" % (name, layout, v.shape))
    return v


def _conv_args(x, w):
    _packed4(x, "x", "[N, H, W, C]")
    _packed4(w, "w", "[O, KH, KW, C]")
    if x.shape[3] != w.shape[3]:
        raise ValueError("w must have the %d channels of x, got %d" % (x.shape[3], w.shape[3]))
    return x.shape[3]


def conv2d_correction(w):
    """The zero-padding correction of filters w [O, KH, KW, C] (an int32
    array [KH*KW, O]): compute it once per layer and pass it as
    `correction=` so that bconv2d* calls skip recomputing it."""
    _packed4(w, "w", "[O, KH, KW, C]")
    return _core.conv2d_correction(w.words, w.shape[3], (1, 1), (1, 1), (0, 0, 0, 0))


def _bconv(x, w, kind, out, stride, padding, dilation, pad_value, correction=None, **epi):
    c = _conv_args(x, w)
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    stride, dilation, padding = _pair(stride, "stride"), _pair(dilation, "dilation"), _padding(padding)
    pad_value = integer(pad_value, "pad_value")
    oh, ow = _core.conv2d_output_shape(n, h, wd, c, o, kh, kw, stride, dilation, padding,
                                       pad_value, what="bconv2d")
    if kind == _BITS:
        out = _check_out(out, (n, oh, ow, _words(o)), np.uint64, (x, w))
    else:
        out = _check_out(out, (n, oh, ow, o), np.int32 if kind == _INT32 else np.float32, (x, w))
    if correction is not None:
        correction = np.asarray(correction)
        if correction.dtype != np.int32:
            raise TypeError("correction must be the int32 array of conv2d_correction(w), got %s"
                            % show(correction))
        correction = np.ascontiguousarray(correction)
    _core.conv2d(x.words, w.words, c, out, kind, stride, dilation, padding, pad_value,
                 correction=correction, **epi)
    return out, o


def bconv2d(x, w, stride=1, padding=0, dilation=1, pad_value=0, out=None, correction=None):
    """int32 convolution of packed +-1 data: x [N, H, W, C], w [O, KH, KW, C]
    -> [N, OH, OW, O].  padding: int, (h, w) or (top, bottom, left, right);
    pad_value: 0 = zero padding (as float training sees it, exact), 1 = +1.
    correction: conv2d_correction(w), to skip recomputing it per call."""
    return _bconv(x, w, _INT32, out, stride, padding, dilation, pad_value, correction)[0]


def bconv2d_affine(x, w, scale=None, offset=None, stride=1, padding=0, dilation=1,
                   pad_value=0, out=None, correction=None):
    """float32 `scale[o] * conv + offset[o]` (one fused multiply-add)."""
    _conv_args(x, w)
    o = w.shape[0]
    return _bconv(x, w, _FLOAT, out, stride, padding, dilation, pad_value, correction,
                  scale=_vector(scale, o, np.float32, "scale"),
                  offset=_vector(offset, o, np.float32, "offset"))[0]


def _thresh_args(thresh, flip, m):
    if thresh is None:
        raise ValueError("thresh must be an [%d] integer array, got None" % m)
    t = _vector(thresh, m, np.int32, "thresh")
    f = None if flip is None else _vector(np.asarray(flip) != 0, m, np.uint8, "flip")
    return t, f


def bconv2d_threshold(x, w, thresh, flip=None, stride=1, padding=0, dilation=1,
                      pad_value=0, out=None, correction=None):
    """Packed sign bits of `flip ? conv > thresh : conv < thresh` per filter:
    a PackedTensor [N, OH, OW, O] for the next binary layer."""
    _conv_args(x, w)
    o = w.shape[0]
    t, f = _thresh_args(thresh, flip, o)
    res, o = _bconv(x, w, _BITS, out, stride, padding, dilation, pad_value, correction,
                    thresh=t, flip=f)
    return PackedTensor(res, res.shape[:3] + (o,))


def maxpool2d(x, kernel, stride=None, padding=0, flip=None):
    """Max-pool NHWC data.  A PackedTensor [N, H, W, C] pools its +-1 values:
    the max (AND of bits) for channels whose flip is 0, the min (OR) where
    flip is 1 -- with the flip of fold_threshold this equals pooling the
    pre-activations before batch norm and sign.  An int32 array pools by
    max.  stride defaults to the kernel; padded positions are ignored."""
    kernel = _pair(kernel, "kernel")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _padding(padding)
    if isinstance(x, PackedTensor):
        if x.ndim != 4:
            raise ValueError("x must be 4-D [N, H, W, C], got shape %r" % (x.shape,))
        n, h, w, c = x.shape
        oh, ow = _core.pool2d_output_shape(n, h, w, c, kernel, stride, padding)
        out = np.empty((n, oh, ow, _words(c)), dtype=np.uint64)
        f = None if flip is None else _vector(np.asarray(flip) != 0, c, np.uint8, "flip")
        _core.maxpool2d_bits(x.words, c, out, kernel, stride, padding, f)
        return PackedTensor(out, (n, oh, ow, c))
    if not isinstance(x, np.ndarray) or x.dtype != np.int32:
        raise TypeError("x must be a PackedTensor or an int32 array, got %s" % show(x))
    if flip is not None:
        raise ValueError("flip must be None for int32 x (it applies to packed bits), got %s"
                         % show(flip))
    if x.ndim != 4:
        raise ValueError("x must be 4-D [N, H, W, C], got shape %r" % (x.shape,))
    x = np.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh, ow = _core.pool2d_output_shape(n, h, w, c, kernel, stride, padding)
    out = np.empty((n, oh, ow, c), dtype=np.int32)
    return _core.maxpool2d_i32(x, out, kernel, stride, padding)


def _u8_epilogue(m, scale, offset, thresh, flip):
    if thresh is not None:
        if scale is not None or offset is not None:
            raise ValueError("thresh must be None with scale/offset (a float output), got %s"
                             % show(thresh))
        t, f = _thresh_args(thresh, flip, m)
        return _BITS, {"thresh": t, "flip": f}
    if flip is not None:
        raise ValueError("flip must be None without thresh, got %s" % show(flip))
    if scale is not None or offset is not None:
        return _FLOAT, {"scale": _vector(scale, m, np.float32, "scale"),
                        "offset": _vector(offset, m, np.float32, "offset")}
    return _INT32, {}


def _u8_input(x, ndim):
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise TypeError("x must be a uint8 array, got %s" % show(x))
    if x.ndim != ndim:
        raise ValueError("x must be %d-D, got shape %r" % (ndim, x.shape))
    return np.ascontiguousarray(x)


def _u8_out(kind, out, lead, m, operands):
    if kind == _BITS:
        return _check_out(out, lead + (_words(m),), np.uint64, operands)
    return _check_out(out, lead + (m,), np.int32 if kind == _INT32 else np.float32, operands)


def gemm_u8(x, w, *, scale=None, offset=None, thresh=None, flip=None, method="auto",
            out=None):
    """8-bit dense first layer: x uint8 [N, K], w PackedTensor [M, K].

    Computes exactly s = sum_k (x - 128) * w (128 times the float layer on
    inputs scaled x/128 - 1).  Returns int32 s [N, M]; float32 scale*s+offset
    if scale/offset are given; a PackedTensor of threshold bits if thresh
    is.  method: "auto", "bitplane" (the paper's 8 binary planes),
    "direct" (byte multiply-adds) or "masked" (sum x - 2 * the x whose
    weight is -1: the microcontroller method); every method gives the same
    integers."""
    x = _u8_input(x, 2)
    if not isinstance(w, PackedTensor) or w.ndim != 2:
        raise TypeError("w must be a 2-D PackedTensor [M, K], got %s" % show(w))
    n, k = x.shape
    m = w.shape[0]
    if w.shape[1] != k:
        raise ValueError("w must have the K = %d columns of x, got %d" % (k, w.shape[1]))
    kind, epi = _u8_epilogue(m, scale, offset, thresh, flip)
    res = _u8_out(kind, out, (n,), m, (w,))
    _core.gemm_u8(x, w.words, k, res, kind, method, **epi)
    return PackedTensor(res, (n, m)) if kind == _BITS else res


def conv2d_u8(x, w, stride=1, padding=0, dilation=1, pad_byte=128, *, scale=None,
              offset=None, thresh=None, flip=None, method="auto", out=None):
    """8-bit convolution first layer: x uint8 NHWC [N, H, W, C], w a
    PackedTensor [O, KH, KW, C]; s = sum over taps of (x - 128) * w, padded
    pixels taking pad_byte (128, the default, contributes 0).  Output and
    epilogue options as gemm_u8, with [N, OH, OW, O] shapes."""
    x = _u8_input(x, 4)
    _packed4(w, "w", "[O, KH, KW, C]")
    n, h, wd, c = x.shape
    o, kh, kw, wc = w.shape
    if wc != c:
        raise ValueError("w must have the %d channels of x, got %d" % (c, wc))
    stride, dilation, padding = _pair(stride, "stride"), _pair(dilation, "dilation"), _padding(padding)
    pad_byte = integer(pad_byte, "pad_byte")
    oh, ow = _core.conv2d_output_shape(n, h, wd, c, o, kh, kw, stride, dilation, padding,
                                       0, pad_byte, True, what="conv2d_u8")
    kind, epi = _u8_epilogue(o, scale, offset, thresh, flip)
    res = _u8_out(kind, out, (n, oh, ow), o, (w,))
    _core.conv2d_u8(x, w.words, res, kind, stride, dilation, padding, pad_byte, method, **epi)
    return PackedTensor(res, (n, oh, ow, o)) if kind == _BITS else res
