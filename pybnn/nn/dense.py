"""Fully connected layers: binary (sign of latent weights) or float."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._args import integer
from ..ops import PackedTensor, bgemm
from .base import (Layer, MaskedPacked, Parameter, Rounder, as_float, glorot, kept_nbytes,
                   layer_rng)

__all__ = ["BinaryDense", "pm1_input_grad", "BACKWARDS", "resolve_backward"]

# The arithmetic of the backward products of binary layers; "auto" picks
# one of them for this machine (resolve_backward).
BACKWARDS = ("float", "int8", "auto")


def resolve_backward(kind):
    """"float" or "int8" for a backward setting: "auto" is "int8" where
    libbnn runs x86 SIMD kernels (its 8-bit products measured faster than
    the float ones there, docs/training.md) and "float" on the portable
    reference kernels."""
    if kind not in BACKWARDS:
        raise ValueError("backward must be one of %s, got %r" % (", ".join(BACKWARDS), kind))
    if kind == "auto":
        return "float" if _core.isa() == "ref" else "int8"
    return kind


def pm1_input_grad():
    """Whether a binary layer's input gradient g . sign(W) runs on libbnn's
    float x (+-1) product from the packed weights (exact products, one float
    sum per element in order) instead of BLAS on a float copy of sign(W).
    Measured on an AVX2 host it is as fast as OpenBLAS there (and keeps no
    64 MB float copy per 4096 x 4096 layer); other kernel sets keep BLAS
    until a kernel of theirs is measured faster."""
    return _core.isa() == "avx2"


class BinaryDense(Layer):
    """y = x . sign(W)^T (no bias: the batch norm after it has one).

    binary=False keeps float weights (a float first or last layer, or a
    float baseline).  With packed (+-1) inputs and binary weights the
    product runs on the XNOR kernels; the packed input is all backward
    keeps of it.

    backward: how the input gradient g . sign(W) of binary weights is
    computed -- "float": exact products summed in float32 (libbnn's ordered
    sum from the packed weights, or BLAS); "int8": each row of g rounded
    stochastically to int8 (scale max|row|/127, a counter-based generator
    seeded with `seed`: Rounder), times the packed weights in exact
    integers (bnn_gemm_i8_pm1), rescaled: unbiased (docs/training.md has
    the measured speed and accuracy); "auto": resolve_backward() picks one
    for this machine when the layer is built."""

    family = "dense"

    def __init__(self, in_features, out_features, binary=True, rng=None, backward="float",
                 seed=0):
        rng = layer_rng(rng)
        self.in_features = integer(in_features, "in_features", 1)
        self.out_features = integer(out_features, "out_features", 1)
        seed = integer(seed, "seed")
        limit, lr_scale = glorot(self.in_features, self.out_features)
        self.binary = bool(binary)
        self.W = Parameter("W", rng.uniform(-limit, limit, (self.out_features, self.in_features)),
                           binary=self.binary, lr_scale=lr_scale if self.binary else 1.0)
        backward = resolve_backward(backward)
        self.backward_kind = backward
        self.rounder = Rounder(seed) if backward == "int8" else None
        self._x = self._wp = self._wbuf = None

    def parameters(self):
        return [self.W]

    def weights_pm1(self):
        """The weights the layer multiplies with (float32): sign(W) through
        the vectorised pack/unpack kernels, or W itself for float weights."""
        W = self.W.value
        return self.W.signs().unpack() if self.binary else W

    def fan_in(self):
        return self.in_features

    def output_shape(self, in_shape):
        if in_shape[-1] != self.in_features:
            raise self._err("expects %d input features, got shape %r" % (self.in_features, in_shape))
        return in_shape[:-1] + (self.out_features,)

    def forward(self, x, training):
        feats = x.shape[-1]
        if len(x.shape) != 2 or feats != self.in_features:
            raise self._err("expects input [N, %d], got shape %r" % (self.in_features, tuple(x.shape)))
        self._wp = None
        y, wp = self._compute(x)
        self._x = x if training else None
        self._wp = wp if training else None
        return y

    def recompute_output(self):
        """The last training forward's output, recomputed from the kept
        (packed) input -- so a following batch norm need not store it."""
        return self._compute(self._x)[0]

    def kept_bytes(self):
        return kept_nbytes(self._x)

    def kept_step_bytes(self):
        return 0 if self._wp is None else int(self._wp.words.nbytes)

    def _compute(self, x):
        # sign(W) packed once per training step: forward, the batch norm's
        # recompute and backward all use the same bits
        wp = self._wp if self._wp is not None else self.W.signs() if self.binary else None
        if isinstance(x, PackedTensor) and wp is not None:
            y = bgemm(x, wp).astype(np.float32)
        elif isinstance(x, MaskedPacked) and wp is not None:
            both = bgemm(x.bits, wp) + bgemm(x.flipped(), wp)   # = 2 * sum over kept
            y = (both // 2).astype(np.float32) * x.scale
        else:
            y = as_float(x) @ (wp.unpack() if wp is not None else self.W.value).T
        return y, wp

    def backward(self, grad, input_grad=True):
        if self._x is None:
            raise self._err("backward without a training forward")
        xf = as_float(self._x)
        self.W.accumulate_matmul(grad.T, xf)
        gx = None
        if input_grad:
            if self._wp is not None and self.rounder is not None:
                # int8 rows of g times the packed weights, exact, rescaled
                q, scale = self.rounder(grad, shard=self.shard)
                s = np.empty((q.shape[0], self.in_features), np.int32)
                _core.gemm_i8_pm1(q, self._wp.words, self.in_features, s)
                gx = s.astype(np.float32)
                gx *= scale[:, None]
            elif self._wp is not None and pm1_input_grad():
                # g . sign(W) straight from the packed bits (bnn_gemm_f32_pm1):
                # no float copy of the weights
                g = np.ascontiguousarray(grad, dtype=np.float32)
                gx = np.empty((g.shape[0], self.in_features), np.float32)
                _core.gemm_f32_pm1(g, self._wp.words, self.in_features, gx)
            elif self._wp is not None:
                # +-1 floats in a buffer kept across steps: a fresh 64 MB
                # array per step would cost more in page faults than the
                # unpacking itself
                if self._wbuf is None or self._wbuf.shape != self._wp.shape:
                    self._wbuf = np.empty(self._wp.shape, np.float32)
                wf = self._wp.unpack(out=self._wbuf)
                gx = grad @ wf
            else:
                gx = grad @ self.weights_pm1()
        self._x = self._wp = None
        return gx
