"""2-D convolution (NHWC): binary weights on the XNOR kernels, or float."""
from __future__ import annotations

import numpy as np

from ..ops import PackedTensor, bconv2d, conv2d_output_shape, pack
from ..ops.conv import _pair, _padding
from .base import Layer, Parameter, as_float, glorot, kept_nbytes

__all__ = ["BinaryConv2d"]


def _im2col(x, kh, kw, stride, padding, dilation, pad_value):
    """x float [N, H, W, C] -> cols [N, OH, OW, KH*KW*C] (taps outer, C inner,
    the order of the packed filters), padded with pad_value."""
    n, h, w, c = x.shape
    pt, pb, pl, pr = padding
    sh, sw = stride
    dh, dw = dilation
    xp = np.full((n, h + pt + pb, w + pl + pr, c), np.float32(pad_value), dtype=np.float32)
    xp[:, pt:pt + h, pl:pl + w, :] = x
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, kh * kw * c), dtype=np.float32)
    for r in range(kh):
        for s in range(kw):
            t = r * kw + s
            cols[..., t * c:(t + 1) * c] = xp[:, r * dh:r * dh + sh * (oh - 1) + 1:sh,
                                              s * dw:s * dw + sw * (ow - 1) + 1:sw, :]
    return cols


def _col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """Adjoint of _im2col (sums overlapping taps, drops padding)."""
    n, h, w, c = x_shape
    pt, pb, pl, pr = padding
    sh, sw = stride
    dh, dw = dilation
    oh, ow = cols.shape[1], cols.shape[2]
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=np.float32)
    for r in range(kh):
        for s in range(kw):
            t = r * kw + s
            xp[:, r * dh:r * dh + sh * (oh - 1) + 1:sh,
               s * dw:s * dw + sw * (ow - 1) + 1:sw, :] += cols[..., t * c:(t + 1) * c]
    return xp[:, pt:pt + h, pl:pl + w, :]


class BinaryConv2d(Layer):
    """2-D convolution, NHWC, filters [O, KH, KW, C] (no bias).  With packed
    inputs and binary weights it runs on bconv2d (XNOR kernels, exact zero
    padding); otherwise in float through im2col + matmul.  pad_value is
    the padding in the +-1 domain, 0 (zeros) or 1 (+1); deployment uses the
    same.  binary=False keeps float weights."""

    family = "conv"

    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0, dilation=1,
                 pad_value=0, binary=True, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kh, self.kw = _pair(kernel, "kernel")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.padding = _padding(padding)
        if pad_value not in (0, 1):
            raise ValueError("pad_value must be 0 or 1, got %r" % (pad_value,))
        self.pad_value = pad_value
        self.binary = bool(binary)
        limit, lr_scale = glorot(self.kh * self.kw * self.in_channels,
                                 self.kh * self.kw * self.out_channels)
        self.W = Parameter("W", rng.uniform(-limit, limit, (self.out_channels, self.kh, self.kw,
                                                            self.in_channels)),
                           binary=self.binary, lr_scale=lr_scale if self.binary else 1.0)
        self._x = None

    def parameters(self):
        return [self.W]

    def weights_pm1(self):
        W = self.W.value
        return pack(W).unpack() if self.binary else W

    def fan_in(self):
        return self.kh * self.kw * self.in_channels

    def output_shape(self, in_shape):
        if len(in_shape) != 4 or in_shape[-1] != self.in_channels:
            raise self._err("expects input [N, H, W, %d], got shape %r" % (self.in_channels, tuple(in_shape)))
        oh, ow = conv2d_output_shape(in_shape[1], in_shape[2], (self.kh, self.kw), self.stride,
                                     self.padding, self.dilation)
        return (in_shape[0], oh, ow, self.out_channels)

    def forward(self, x, training):
        self.output_shape(tuple(x.shape))
        y = self._compute(x)
        self._x = x if training else None
        return y

    def recompute_output(self):
        return self._compute(self._x)

    def kept_bytes(self):
        return kept_nbytes(self._x)

    def _compute(self, x):
        if isinstance(x, PackedTensor) and self.binary:
            y = bconv2d(x, pack(self.W.value), self.stride, self.padding, self.dilation,
                        self.pad_value).astype(np.float32)
        else:
            cols = _im2col(as_float(x), self.kh, self.kw, self.stride, self.padding,
                           self.dilation, self.pad_value)
            y = cols @ self.weights_pm1().reshape(self.out_channels, -1).T
        return y

    def backward(self, grad, input_grad=True):
        if self._x is None:
            raise self._err("backward without a training forward")
        xf = as_float(self._x)
        cols = _im2col(xf, self.kh, self.kw, self.stride, self.padding, self.dilation,
                       self.pad_value)
        g2 = grad.reshape(-1, self.out_channels)
        self.W.accumulate_matmul(g2.T, cols.reshape(g2.shape[0], -1))
        if not input_grad:
            self._x = None
            return None
        gcols = (g2 @ self.weights_pm1().reshape(self.out_channels, -1)).reshape(cols.shape)
        self._x = None
        return _col2im(gcols, xf.shape, self.kh, self.kw, self.stride, self.padding,
                       self.dilation)
