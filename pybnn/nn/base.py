"""What every layer shares: Parameter, the Layer protocol, the input
scaling, and the masked packed activations that dropout hands to a binary
layer."""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._args import integer, real, show
from ..ops import PackedTensor, pack

__all__ = ["Parameter", "Layer", "MaskedPacked", "Rounder", "scale_input"]


def scale_input(x_uint8):
    """uint8 pixels -> float32 in [-1, 1): x/128 - 1 (exact in float32)."""
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8:
        raise TypeError("x_uint8 must be uint8 pixels, got %s" % x.dtype)
    return x.astype(np.float32) * np.float32(1 / 128) - np.float32(1)


class Rounder:
    """Stochastic rounding to int8 for the 8-bit backward products
    (bnn_quantize_i8): one scale per row, or per column with q returned
    transposed.  Its generator is counter-based: (seed, counter), the
    counter advancing by the number of elements rounded, so a layer's
    position in it is one integer of its state."""

    def __init__(self, seed):
        self.seed = integer(seed, "seed") % 2 ** 64
        self.counter = 0

    def __call__(self, a, by_column=False, shard=None, per=1):
        """(q, scale) of a [rows, k].  With `shard` (a split global batch,
        pybnn.distributed; `per` rows per sample) `a` holds this rank's rows
        of the global batch's matrix and the result is those rows of the
        one-process result: the generator is read at the global element
        index, and a per-column scale is the global batch's (the column
        maxima, maximised over the ranks, enter as one extra row, which
        bnn_quantize_i8 takes into its maximum; its row of q is dropped)."""
        a = np.ascontiguousarray(a, dtype=np.float32)
        if shard is None:
            q, scale = _core.quantize_i8(a, self.seed, self.counter, by_column)
            self.counter = (self.counter + a.size) % 2 ** 64
            return q, scale
        rows, k = a.shape
        first, total = shard.rows(per)
        counter = (self.counter + first * k) % 2 ** 64
        if by_column:
            amax = np.ascontiguousarray(np.fmax.reduce(np.abs(a), axis=0) if rows
                                        else np.zeros(k), dtype=np.float32)
            shard.max(amax)
            q, scale = _core.quantize_i8(np.vstack([a, amax[None]]), self.seed, counter, True)
            q = np.ascontiguousarray(q[:, :rows])
        else:
            q, scale = _core.quantize_i8(a, self.seed, counter, False)
        self.counter = (self.counter + total * k) % 2 ** 64
        return q, scale


class Parameter:
    """A trainable array with its gradient and optimizer settings.

    binary: the latent real weights of a binary layer -- their updates are
    scaled by `lr_scale` (Glorot, as in the paper) and clipped to [-1, 1].

    The optimizer's step on binary weights also leaves their packed signs
    (bnn_opt_step_pack), which the next forward multiplies with instead of
    packing the weights again.  While it holds them, `value` is read-only,
    so the bits cannot go stale: writing it in place then raises numpy's
    "assignment destination is read-only"; call drop_signs() first (the
    library's own writers -- load_state_dict, state_dict, a new optimizer
    -- do).  Assigning `value` a new array drops them too."""

    def __init__(self, name, value, binary=False, lr_scale=1.0):
        if not isinstance(name, str):
            raise TypeError("name must be a str, got %s" % show(name))
        self.name = name
        self._signs = None
        try:
            self.value = value
        except (TypeError, ValueError):
            raise TypeError("value must be an array of real numbers, got %s"
                            % show(value)) from None
        self._grad = np.zeros_like(self.value)
        self._grad_stale = False     # True: _grad holds old values that count as zero
        self.binary = binary
        self.lr_scale = real(lr_scale, "lr_scale", above=0.0)

    @property
    def value(self):
        """The parameter's float32 array (C-contiguous)."""
        return self._value

    @value.setter
    def value(self, value):
        self.drop_signs()
        self._value = np.ascontiguousarray(value, dtype=np.float32)

    def signs(self):
        """sign(value) packed along the last axis (PackedTensor): the bits
        the optimizer's step left, or a fresh pack."""
        return self._signs if self._signs is not None else pack(self._value)

    def set_signs(self, words):
        """Keep `words` (the packed signs of value, as bnn_opt_step_pack
        wrote them) for signs(); value turns read-only until drop_signs()."""
        self._signs = PackedTensor(words, self._value.shape)
        self._value.flags.writeable = False

    def drop_signs(self):
        """Forget the kept signs and make value writable again."""
        if self._signs is not None:
            self._signs = None
            self._value.flags.writeable = True

    @property
    def grad(self):
        """The accumulated gradient (same shape as value)."""
        if self._grad_stale:
            self._grad[...] = 0
            self._grad_stale = False
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad[...] = value
        self._grad_stale = False

    def zero_grad(self):
        """Mark the gradient zero; the memory is cleared only if it is
        read before the next accumulate_matmul() overwrites it."""
        self._grad_stale = True

    def accumulate_matmul(self, a, b):
        """grad += a @ b, written by the matmul itself when the gradient is
        zero (no clearing pass, no temporary: the large weight gradients of
        training are produced this way)."""
        if self._grad_stale:
            np.matmul(a, b, out=self._grad.reshape(a.shape[0], b.shape[1]))
            self._grad_stale = False
        else:
            self.grad += (a @ b).reshape(self._grad.shape)

    def accumulate_into(self, write):
        """write(buf, accumulate): a kernel that adds its gradient into buf
        (accumulate True) or overwrites it (False, when the gradient is
        zero: no clearing pass)."""
        write(self._grad, not self._grad_stale)
        self._grad_stale = False

    def __repr__(self):
        return "Parameter(%s, shape=%r%s)" % (self.name, self.value.shape,
                                              ", binary" if self.binary else "")


class Layer:
    """Base class: forward(x, training) -> y, backward(grad) -> grad of x.

    `family` names what a layer is to the code around it (Sequential, the
    deployment fold): "dense", "conv", "norm", "activation", "pool",
    "dropout" or "flatten".  A layer's own state (parameters, running
    statistics, generator states) is its state_dict(); a model's
    checkpoint is the composition of its layers' dicts."""

    family = None
    name = None

    def forward(self, x, training):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad, input_grad=True):  # pragma: no cover - abstract
        raise NotImplementedError

    def parameters(self):
        return []

    def partial_parameters(self):
        """The parameters whose gradient, in data-parallel training, is this
        rank's partial sum over its samples (summed over the ranks before
        the optimizer's step): all of them, except in layers whose backward
        runs on the whole global batch."""
        return self.parameters()

    def state_dict(self):
        """The arrays that define this layer (the live arrays, not copies),
        by name: parameters first, then any other state (an 8-bit
        backward's generator, "qstate": its seed and counter)."""
        for p in self.parameters():    # live arrays: writable
            p.drop_signs()
        state = {p.name: p.value for p in self.parameters()}
        rounder = getattr(self, "rounder", None)
        if rounder is not None:
            state["qstate"] = np.array([rounder.seed, rounder.counter], dtype=np.uint64)
        return state

    def load_state_dict(self, state):
        """Copy the arrays of state_dict() back in; a missing key or a shape
        that differs raises ValueError naming it."""
        for key, cur in self.state_dict().items():
            if key not in state:
                raise self._err("state has no %r" % key)
            val = np.asarray(state[key])
            if val.shape != np.shape(cur):
                raise self._err("state %r has shape %r, expected %r"
                                % (key, val.shape, np.shape(cur)))
            self._set_state(key, val)

    def _set_state(self, key, value):
        """Store one array of load_state_dict(); layers with non-array state
        override this for those keys."""
        if key == "qstate":
            self.rounder.seed, self.rounder.counter = (int(v) for v in value)
        else:
            self.state_dict()[key][...] = value

    # Set by Sequential.backward for the layers whose incoming gradient is a
    # temporary of the backward pass: they may write their own gradient
    # into it (no second activation-sized buffer).
    overwrite_grad = False
    # Set by Sequential.forward for the layers whose input is a temporary of
    # the forward pass that nothing else keeps.
    overwrite_input = False
    # Set by Sequential during training forward and backward of a global
    # batch split over ranks: this rank's pybnn.distributed.Shard.  None:
    # the batch is all there is (one process).
    shard = None

    def kept_bytes(self):
        """Bytes this layer keeps for backward after a training forward."""
        return 0

    def kept_step_bytes(self):
        """Bytes kept for backward that do not grow with the batch (the
        packed weights a binary layer reuses)."""
        return 0

    def release(self):
        """Drop what a training forward kept, without a backward pass."""

    def output_shape(self, in_shape):
        return in_shape

    def _err(self, msg):
        return ValueError("%s: %s" % (self.name or type(self).__name__, msg))


class MaskedPacked:
    """Packed +-1 activations with a packed keep mask (bit 0 = kept) and a
    scale: the value is scale * a where kept, 0 where dropped (what a
    Dropout after a binary Sign hands to the next binary layer)."""

    def __init__(self, bits, keep, scale):
        self.bits, self.keep, self.scale = bits, keep, scale
        self.shape = bits.shape

    def flipped(self):
        """a' : a with its dropped elements negated (bits XOR dropped)."""
        return PackedTensor(self.bits.words ^ self.keep.words, self.bits.shape)

    def unpack(self):
        out = self.bits.unpack()
        out *= keep_factor(self.keep, self.scale)
        return out


def keep_factor(mask, scale):
    """float32 scale where the packed mask bit is 0 (kept), 0 where it is 1."""
    f = mask.unpack()                     # +1 kept, -1 dropped
    f += np.float32(1)
    f *= np.float32(scale / 2)            # exact: (1 + 1) * scale/2 == scale
    return f


def kept_nbytes(x):
    """Bytes of an activation a layer keeps (packed, masked or an array)."""
    if x is None:
        return 0
    if isinstance(x, PackedTensor):
        return x.nbytes
    if isinstance(x, MaskedPacked):
        return x.bits.nbytes + x.keep.nbytes
    return int(np.asarray(x).nbytes)


def as_float(x):
    """The float32 values of an activation: unpacked bits, scaled pixels,
    or the array itself."""
    if hasattr(x, "unpack"):
        return x.unpack()
    if isinstance(x, np.ndarray) and x.dtype == np.uint8:   # raw pixels: x/128 - 1
        return scale_input(x)
    return x


def layer_rng(rng):
    """The generator a layer draws its initial weights from: rng, or a fresh
    one for None."""
    if rng is None:
        return np.random.default_rng()
    if not hasattr(rng, "uniform"):
        raise TypeError("rng must be a numpy.random.Generator or None, got %s" % show(rng))
    return rng


def glorot(fan_in, fan_out):
    """(init limit, learning-rate scale) of a binary layer: uniform
    +-sqrt(6/(fan_in+fan_out)) and the paper's code's 1/sqrt(1.5/(fan_in+fan_out))."""
    return math.sqrt(6.0 / (fan_in + fan_out)), 1.0 / math.sqrt(1.5 / (fan_in + fan_out))
