"""Max-pooling of float NHWC activations."""
from __future__ import annotations

import numpy as np

from .. import _core
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
        # what libbnn refuses for any input, named (an empty batch of the
        # smallest input the window fits)
        _core.pool2d_output_shape(0, max(self.kernel[0], 1), max(self.kernel[1], 1), 1,
                                  self.kernel, self.stride, (0, 0, 0, 0), what="MaxPool2d")
        self._arg = None

    def output_shape(self, in_shape):
        if len(in_shape) != 4:
            raise self._err("expects input [N, H, W, C], got shape %r" % (tuple(in_shape),))
        n, h, w, c = in_shape
        kh, kw = self.kernel
        if h < kh or w < kw:
            raise self._err("window %r larger than input %r" % (self.kernel, (h, w)))
        return (n, (h - kh) // self.stride[0] + 1, (w - kw) // self.stride[1] + 1, c)

    def _views(self, x):
        """The window taps of x as strided views (no copies), tap t = r*kw + s."""
        n, oh, ow, c = self.output_shape(x.shape)
        kh, kw = self.kernel
        sh, sw = self.stride
        return [x[:, r:r + sh * (oh - 1) + 1:sh, s:s + sw * (ow - 1) + 1:sw, :]
                for r in range(kh) for s in range(kw)]

    def forward(self, x, training):
        x = np.ascontiguousarray(as_float(x), dtype=np.float32)
        oshape = self.output_shape(x.shape)
        if not training:
            views = self._views(x)
            out = views[0].copy()
            for v in views[1:]:              # pairwise: no stacked copy of the taps
                np.maximum(out, v, out=out)
            return out
        if self.kernel[0] * self.kernel[1] > 255:
            raise self._err("windows of more than 255 taps cannot be trained")
        # the first maximum of each window and its tap (bnn_maxpool2d_f32_train)
        out = np.empty(oshape, np.float32)
        arg = np.empty(oshape, np.uint8)
        _core.maxpool2d_f32_train(x, out, arg, self.kernel, self.stride, (0, 0, 0, 0))
        self._shape, self._oshape = x.shape, oshape
        self._arg = _pack_taps(arg) if self.kernel[0] * self.kernel[1] <= 4 else arg
        return out

    def kept_bytes(self):
        return 0 if self._arg is None else int(self._arg.nbytes)

    def backward(self, grad, input_grad=True):
        if self._arg is None:
            raise self._err("backward without a training forward")
        arg = self._arg
        if arg.shape != self._oshape:
            arg = _unpack_taps(arg, self._oshape)
        gx = np.empty(self._shape, dtype=np.float32)
        _core.maxpool2d_f32_backward(np.ascontiguousarray(grad, dtype=np.float32), arg, gx,
                                     self.kernel, self.stride, (0, 0, 0, 0))
        self._arg = None
        return gx


def _pack_taps(arg):
    """Tap indices < 4, four to a byte (2 bits each, element i at bits
    2*(i % 4) of byte i // 4)."""
    flat = arg.reshape(-1)
    pad = (-flat.size) % 4
    if pad:
        flat = np.concatenate([flat, np.zeros(pad, np.uint8)])
    q = flat.reshape(-1, 4)
    return (q[:, 0] | (q[:, 1] << 2) | (q[:, 2] << 4) | (q[:, 3] << 6)).astype(np.uint8)


def _unpack_taps(packed, shape):
    q = np.stack([(packed >> s) & 3 for s in (0, 2, 4, 6)], axis=1).reshape(-1)
    return q[:int(np.prod(shape))].reshape(shape)
