"""Batch normalization, standard or shift-based, on the libbnn kernels."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._args import integer, real
from .base import Layer, Parameter

__all__ = ["BatchNorm"]


class BatchNorm(Layer):
    """Batch norm over the last axis (features or NHWC channels), standard
    or shift-based (kind="shift": powers of two, as in the paper), on the
    libbnn kernels.  momentum weighs the new batch in the running stats."""

    family = "norm"

    def __init__(self, features, kind="standard", eps=1e-4, momentum=0.1):
        if kind not in _core.BN_KINDS:
            raise ValueError("kind must be 'standard' or 'shift', got %r" % (kind,))
        self.features = integer(features, "features", 1)
        self.kind = kind
        # libbnn's domain (bnn_bn_forward_train), named here
        self.eps = real(eps, "eps", above=0.0)
        self.momentum = real(momentum, "momentum", minimum=0.0)
        if self.momentum > 1:
            raise ValueError("momentum must be <= 1, got %r" % self.momentum)
        self.gamma = Parameter("gamma", np.ones(self.features))
        self.beta = Parameter("beta", np.zeros(self.features))
        self.running_mean = np.zeros(self.features, dtype=np.float32)
        self.running_invstd = np.ones(self.features, dtype=np.float32)
        self._saved = None
        # Set by Sequential when the input can be recomputed (from packed
        # bits, with the XNOR kernels) in backward instead of being kept.
        self.recompute = None

    def parameters(self):
        return [self.gamma, self.beta]

    def state_dict(self):
        return dict(super().state_dict(), running_mean=self.running_mean,
                    running_invstd=self.running_invstd)

    def kept_bytes(self):
        return 0 if self._saved is None or self._saved[0] is None else int(self._saved[0].nbytes)

    def output_shape(self, in_shape):
        if in_shape[-1] != self.features:
            raise self._err("expects %d features, got shape %r" % (self.features, in_shape))
        return in_shape

    def forward(self, x, training):
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] != self.features:
            raise self._err("expects %d features, got shape %r" % (self.features, x.shape))
        x2 = np.ascontiguousarray(x.reshape(-1, self.features))
        if not training:
            y = np.empty_like(x2)
            _core.bn_forward_eval(self.kind, x2, self.gamma.value, self.beta.value,
                                  self.running_mean, self.running_invstd, y)
            self._saved = None
            return y.reshape(x.shape)
        # a global batch split over ranks: the kernel runs on every rank's
        # rows, gathered (the global batch's statistics, as one process)
        sh, per = self.shard, int(np.prod(x.shape[1:-1]))
        full = x2 if sh is None else sh.gather(x2, per)
        # y may be written over x when x is a temporary this layer does not
        # keep (recompute in backward) -- the kernel reads each element first
        inplace = (self.recompute is not None and (sh is not None or self.overwrite_input
                                                    and np.shares_memory(x2, x)))
        y = full if inplace else np.empty_like(full)
        mean = np.empty(self.features, np.float32)
        scale = np.empty(self.features, np.float32)
        _core.bn_forward_train(self.kind, full, self.gamma.value, self.beta.value, self.eps,
                               self.momentum, self.running_mean, self.running_invstd, y,
                               mean, scale)
        self._saved = (None if self.recompute else full, mean, scale)
        y = y if sh is None else sh.own(y, per)
        return y.reshape(x.shape)

    def partial_parameters(self):
        return []       # backward runs on the gathered global batch: already whole

    def backward(self, grad, input_grad=True):
        if self._saved is None:
            raise self._err("backward without a training forward")
        x2, mean, scale = self._saved
        sh, per = self.shard, int(np.prod(grad.shape[1:-1]))
        if x2 is None:
            x2 = np.ascontiguousarray(np.asarray(self.recompute(), dtype=np.float32)
                                      .reshape(-1, self.features))
            x2 = x2 if sh is None else sh.gather(x2, per)
        g2 = np.ascontiguousarray(grad.reshape(-1, self.features), dtype=np.float32)
        if sh is not None:
            g2 = sh.gather(g2, per)
        # dx may be written over dy (the kernel reads each element first)
        dx = (g2 if sh is not None or self.overwrite_grad and np.shares_memory(g2, grad)
              else np.empty_like(g2))
        dg = np.empty(self.features, np.float32)
        db = np.empty(self.features, np.float32)
        _core.bn_backward(self.kind, x2, self.gamma.value, mean, scale, g2, dx, dg, db)
        self.gamma.grad += dg
        self.beta.grad += db
        self._saved = None
        dx = dx if sh is None else sh.own(dx, per)
        return dx.reshape(grad.shape)

    def affine(self):
        """The evaluation map as float64 (scale, offset): y = scale*x + offset."""
        g = self.gamma.value.astype(np.float64)
        ri = self.running_invstd.astype(np.float64)
        if self.kind == "shift":
            sc = _core.ap2(ri) * _core.ap2(g)
        else:
            sc = g * ri
        return sc, self.beta.value.astype(np.float64) - self.running_mean.astype(np.float64) * sc
