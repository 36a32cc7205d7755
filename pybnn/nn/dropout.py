"""Inverted dropout, packed where its input is packed."""
from __future__ import annotations

import json

import numpy as np

from .._args import integer, real
from ..ops import PackedTensor, pack
from .base import Layer, MaskedPacked, keep_factor, scale_input

__all__ = ["Dropout"]


class Dropout(Layer):
    """Inverted dropout (keep probability 1 - p, kept values scaled by
    1/(1 - p)) with a seeded generator.  After a binary Sign it keeps the
    activations packed: the next binary layer computes the masked product
    exactly on the XNOR kernels, through
        sum_kept a*w = (dot(a, w) + dot(a', w)) / 2,
    where a' flips the dropped elements of a (their terms cancel).  The
    mask is kept for backward as packed bits (1 = dropped)."""

    family = "dropout"

    def __init__(self, p=0.5, seed=0):
        self.p = real(p, "p", minimum=0.0, below=1.0)
        self.rng = np.random.default_rng(integer(seed, "seed"))
        self._mask = None

    def state_dict(self):
        # the generator's position, so a resumed run draws the same masks
        return dict(rng=np.array(json.dumps(self.rng.bit_generator.state)))

    def load_state_dict(self, state):
        if "rng" not in state:
            raise self._err("state has no 'rng'")
        self.rng.bit_generator.state = json.loads(str(state["rng"]))

    def _scale(self):
        return np.float32(1.0 / (1.0 - self.p))

    def forward(self, x, training):
        if not training or self.p == 0:
            self._mask = None
            return x
        if isinstance(x, np.ndarray) and x.dtype == np.uint8:
            x = scale_input(x)            # dropout on the input pixels
        # a global batch split over ranks: the mask of the global batch
        # (what one process draws), this rank's rows of it
        sh = self.shard
        shape = tuple(x.shape) if sh is None else (sh.n,) + tuple(x.shape[1:])
        dropped = self.rng.random(shape, dtype=np.float32) < self.p
        if sh is not None:
            dropped = sh.own(dropped)
        # int8 -1 where dropped: packs to bit 1 (no float temporaries)
        mask = pack(np.negative(dropped.view(np.int8)))
        self._mask = mask
        if isinstance(x, PackedTensor):
            return MaskedPacked(x, mask, self._scale())
        return np.multiply(x, keep_factor(mask, self._scale()), dtype=np.float32)

    @property
    def last_keep(self):
        """bool array of the elements the last training forward kept (None
        after backward or outside training)."""
        return None if self._mask is None else self._mask.unpack() > 0

    def kept_bytes(self):
        return 0 if self._mask is None else int(self._mask.words.nbytes)

    def release(self):
        self._mask = None

    def backward(self, grad, input_grad=True):
        if self._mask is None:
            return grad
        out = np.multiply(grad, keep_factor(self._mask, self._scale()), dtype=np.float32)
        self._mask = None
        return out
