"""[N, H, W, C] -> [N, H*W*C]."""
from __future__ import annotations

import numpy as np

from ..ops import PackedTensor, pack
from .base import Layer, MaskedPacked

__all__ = ["Flatten"]


class Flatten(Layer):
    """[N, H, W, C] -> [N, H*W*C] in NHWC element order.  Packed inputs stay
    packed, compacted to K = H*W*C bits per row (padding only at the end)."""

    family = "flatten"

    def output_shape(self, in_shape):
        return (in_shape[0], int(np.prod(in_shape[1:])))

    def forward(self, x, training):
        self._shape = tuple(x.shape)
        if isinstance(x, PackedTensor):
            return pack(x.unpack().reshape(self.output_shape(x.shape)))
        if isinstance(x, MaskedPacked):        # dropout before the flatten
            return MaskedPacked(self.forward(x.bits, training), self.forward(x.keep, training),
                                x.scale)
        return np.asarray(x).reshape(self.output_shape(x.shape))

    def backward(self, grad, input_grad=True):
        return grad.reshape(self._shape)
