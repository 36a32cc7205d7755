"""The activation: sign with the straight-through estimator (binary
outputs), its stochastic variant, or hard tanh (float outputs, for
BinaryConnect and float baselines) -- one class, the variant chosen when
it is built."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._args import integer
from ..ops import PackedTensor, pack
from .base import Layer

__all__ = ["Activation", "Sign", "HardTanh"]


class Activation(Layer):
    """binary=True: sign(x) as a PackedTensor (sign(0) = +1); backward
    passes the gradient where |x| <= 1 (straight-through estimator) and
    keeps only that mask, one bit per element.  stochastic=True draws +1
    with probability hardsigmoid(x) in training, from a counter-based
    generator seeded with `seed` (evaluation is deterministic).

    binary=False: hard tanh, clip(x, -1, 1) as float32, gradient 1 where
    |x| <= 1 (inclusive)."""

    family = "activation"

    def __init__(self, binary=True, stochastic=False, seed=0):
        if stochastic and not binary:
            raise ValueError("stochastic must be False for a float activation (binary=False): "
                             "a stochastic activation is a sign, got %r" % (stochastic,))
        self.binary = bool(binary)
        self.stochastic = bool(stochastic)
        self.seed = integer(seed, "seed")
        self.counter = 0
        self._mask = self._shape = self._x = None

    @property
    def label(self):
        return "Sign" if self.binary else "HardTanh"

    def __repr__(self):
        if not self.binary:
            return "HardTanh()"
        return "Sign(stochastic=True, seed=%d)" % self.seed if self.stochastic else "Sign()"

    def state_dict(self):
        # the position of the stochastic generator (0 and unused when deterministic)
        return dict(counter=np.array(self.counter, np.uint64))

    def _set_state(self, key, value):
        self.counter = int(value)

    def forward(self, x, training):
        if not self.binary:
            x = np.asarray(x, dtype=np.float32)
            self._x = x if training else None
            return np.clip(x, -1, 1)
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows = x.reshape(-1, x.shape[-1])
        if training:
            mask = np.empty((rows.shape[0], (x.shape[-1] + 63) // 64), np.uint64)
            _core.ste_mask_pack(rows, mask)
            self._mask, self._shape = mask, x.shape
        else:
            self._mask = None
        if training and self.stochastic:
            words = np.empty(x.shape[:-1] + ((x.shape[-1] + 63) // 64,), np.uint64)
            # a global batch split over ranks: the generator is read at the
            # global element index, as one process reads it
            first, total = ((0, rows.shape[0]) if self.shard is None
                            else self.shard.rows(int(np.prod(x.shape[1:-1]))))
            _core.pack_stochastic(rows, self.seed, self.counter + first * rows.shape[1],
                                  words.reshape(rows.shape[0], words.shape[-1]))
            self.counter += total * rows.shape[1]
            return PackedTensor(words, x.shape)
        return pack(x)

    def kept_bytes(self):
        kept = self._mask if self.binary else self._x
        return 0 if kept is None else int(kept.nbytes)

    def backward(self, grad, input_grad=True):
        if not self.binary:
            if self._x is None:
                raise self._err("backward without a training forward")
            out = np.where(np.abs(self._x) <= 1, grad, np.float32(0)).astype(np.float32)
            self._x = None
            return out
        if self._mask is None:
            raise self._err("backward without a training forward")
        g = np.asarray(grad, dtype=np.float32).reshape(self._mask.shape[0], self._shape[-1])
        # the gate (bit set where |x| <= 1) as 0/1 bytes; out = grad * gate,
        # written over grad when it is this backward pass's temporary
        gate = np.unpackbits(self._mask.view(np.uint8), axis=1, count=g.shape[1],
                             bitorder="little")
        out = g if self.overwrite_grad and np.shares_memory(g, grad) else None
        out = np.multiply(g, gate, out=out, dtype=np.float32)
        self._mask = None
        return out.reshape(self._shape)


def Sign(stochastic=False, seed=0):  # noqa: N802 - a layer builder
    """The binary activation: Activation(binary=True, stochastic, seed)."""
    return Activation(binary=True, stochastic=stochastic, seed=seed)


def HardTanh():  # noqa: N802 - a layer builder
    """The float activation of BinaryConnect and float baselines:
    Activation(binary=False)."""
    return Activation(binary=False)
