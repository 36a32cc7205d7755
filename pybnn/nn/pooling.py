"""Max-pooling of float NHWC activations."""
from __future__ import annotations

import numpy as np

from ..ops.conv import _pair
from .base import Layer, as_float

__all__ = ["MaxPool2d"]


class MaxPool2d(Layer):
    """Max-pooling of float NHWC data (before batch norm, as the paper
    orders it); backward routes each gradient to the first maximum of its
    window.  Deployment pools the thresholded bits instead (equal by the
    fold's monotonicity)."""

    family = "pool"

    def __init__(self, kernel, stride=None):
        self.kernel = _pair(kernel, "kernel")
        self.stride = self.kernel if stride is None else _pair(stride, "stride")
        self._arg = None

    def output_shape(self, in_shape):
        if len(in_shape) != 4:
            raise self._err("expects input [N, H, W, C], got shape %r" % (tuple(in_shape),))
        n, h, w, c = in_shape
        kh, kw = self.kernel
        if h < kh or w < kw:
            raise self._err("window %r larger than input %r" % (self.kernel, (h, w)))
        return (n, (h - kh) // self.stride[0] + 1, (w - kw) // self.stride[1] + 1, c)

    def _taps(self, x):
        n, oh, ow, c = self.output_shape(x.shape)
        kh, kw = self.kernel
        sh, sw = self.stride
        return np.stack([x[:, r:r + sh * (oh - 1) + 1:sh, s:s + sw * (ow - 1) + 1:sw, :]
                         for r in range(kh) for s in range(kw)])

    def forward(self, x, training):
        x = np.asarray(as_float(x), dtype=np.float32)
        taps = self._taps(x)
        if not training:
            return taps.max(axis=0)
        arg = np.argmax(taps, axis=0)
        # the winning tap of each window, in one byte (windows up to 255 taps)
        self._arg = arg.astype(np.uint8) if taps.shape[0] <= 255 else arg
        self._shape = x.shape
        return np.take_along_axis(taps, arg[None], axis=0)[0]

    def kept_bytes(self):
        return 0 if self._arg is None else int(self._arg.nbytes)

    def backward(self, grad, input_grad=True):
        if self._arg is None:
            raise self._err("backward without a training forward")
        n, h, w, c = self._shape
        kh, kw = self.kernel
        sh, sw = self.stride
        oh, ow = grad.shape[1], grad.shape[2]
        gx = np.zeros(self._shape, dtype=np.float32)
        for t in range(kh * kw):
            r, s = divmod(t, kw)
            sel = self._arg == t
            gx[:, r:r + sh * (oh - 1) + 1:sh, s:s + sw * (ow - 1) + 1:sw, :] += np.where(sel, grad, 0)
        self._arg = None
        return gx


