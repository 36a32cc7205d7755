"""Training layers with hand-written forward and backward passes.

Layers are plain Python classes over numpy and the libbnn kernels
(pybnn._core).  Activations are NHWC (or [N, features]); in BNN mode the
output of a `Sign` is a PackedTensor, which binary layers multiply with
the XNOR-popcount kernels, in training as in evaluation.

Modes (Sequential(..., mode=)):
  "bnn" -- binary weights and binary activations (the paper's BNN);
  "bc"  -- BinaryConnect: binary weights, float activations (Sign acts as
           HardTanh);
  "fp"  -- full precision: float weights, float activations (the same
           architecture as a float baseline).
Inputs are uint8 images scaled as x/128 - 1, which is exact in float32
(and differs from the paper's 2x/255 - 1, which is not).
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._tensor import PackedTensor, bgemm, pack

__all__ = ["Parameter", "Layer", "BinaryDense", "BinaryConv2d", "BatchNorm", "MaxPool2d",
           "Sign", "HardTanh", "Dropout", "Flatten", "Sequential", "MODES", "scale_input"]

MODES = ("bnn", "bc", "fp")


def scale_input(x_uint8):
    """uint8 pixels -> float32 in [-1, 1): x/128 - 1 (exact in float32)."""
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8:
        raise TypeError("inputs must be uint8 pixels, got %s" % x.dtype)
    return x.astype(np.float32) * np.float32(1 / 128) - np.float32(1)


class Parameter:
    """A trainable array with its gradient and optimizer settings.

    binary: the latent real weights of a binary layer -- their updates are
    scaled by `lr_scale` (Glorot, as in the paper) and clipped to [-1, 1]."""

    def __init__(self, name, value, binary=False, lr_scale=1.0):
        self.name = name
        self.value = np.ascontiguousarray(value, dtype=np.float32)
        self._grad = np.zeros_like(self.value)
        self._grad_stale = False     # True: _grad holds old values that count as zero
        self.binary = binary
        self.lr_scale = float(lr_scale)

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

    def __repr__(self):
        return "Parameter(%s, shape=%r%s)" % (self.name, self.value.shape,
                                              ", binary" if self.binary else "")


class Layer:
    """Base class: forward(x, training) -> y, backward(grad) -> grad of x."""

    name = None
    mode = "bnn"

    def forward(self, x, training):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad, input_grad=True):  # pragma: no cover - abstract
        raise NotImplementedError

    def parameters(self):
        return []

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


def _kept_bytes(x):
    if x is None:
        return 0
    if isinstance(x, PackedTensor):
        return x.nbytes
    if isinstance(x, MaskedPacked):
        return x.bits.nbytes + x.keep.nbytes
    return int(np.asarray(x).nbytes)


def _as_float(x):
    if hasattr(x, "unpack"):
        return x.unpack()
    if isinstance(x, np.ndarray) and x.dtype == np.uint8:   # raw pixels: x/128 - 1
        return scale_input(x)
    return x


class BinaryDense(Layer):
    """y = x . sign(W)^T (no bias: the batch norm after it has one).

    binary=False keeps float weights (e.g. a float last layer); in "fp"
    mode every layer does.  With packed (+-1) inputs and binary weights the
    product runs on the XNOR kernels; the packed input is all backward
    keeps of it."""

    def __init__(self, in_features, out_features, binary=True, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        self.in_features, self.out_features = int(in_features), int(out_features)
        limit = math.sqrt(6.0 / (self.in_features + self.out_features))
        self.binary = binary
        # Glorot learning-rate scale of the paper's code: 1/sqrt(1.5/(fan_in+fan_out))
        lr_scale = 1.0 / math.sqrt(1.5 / (self.in_features + self.out_features))
        self.glorot_scale = lr_scale
        self.W = Parameter("W", rng.uniform(-limit, limit, (self.out_features, self.in_features)),
                           binary=binary, lr_scale=lr_scale if binary else 1.0)
        self._x = self._wp = self._wbuf = None

    def parameters(self):
        return [self.W]

    def _binary_weights(self):
        return self.binary and self.mode != "fp"

    def weights_pm1(self):
        """The weights the layer multiplies with (float32): sign(W) through
        the vectorised pack/unpack kernels, or W itself for float weights."""
        W = self.W.value
        return pack(W).unpack() if self._binary_weights() else W

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
        return _kept_bytes(self._x)

    def kept_step_bytes(self):
        return 0 if self._wp is None else int(self._wp.words.nbytes)

    def _compute(self, x):
        # sign(W) packed once per training step: forward, the batch norm's
        # recompute and backward all use the same bits
        wp = self._wp if self._wp is not None else pack(self.W.value) \
            if self._binary_weights() else None
        if isinstance(x, PackedTensor) and wp is not None:
            y = bgemm(x, wp).astype(np.float32)
        elif isinstance(x, MaskedPacked) and wp is not None:
            both = bgemm(x.bits, wp) + bgemm(x.flipped(), wp)   # = 2 * sum over kept
            y = (both // 2).astype(np.float32) * x.scale
        else:
            y = _as_float(x) @ (wp.unpack() if wp is not None else self.W.value).T
        return y, wp

    def backward(self, grad, input_grad=True):
        if self._x is None:
            raise self._err("backward without a training forward")
        xf = _as_float(self._x)
        self.W.accumulate_matmul(grad.T, xf)
        gx = None
        if input_grad:
            if self._wp is not None:
                # +-1 floats in a buffer kept across steps: a fresh 64 MB
                # array per step would cost more in page faults than the
                # unpacking itself
                if self._wbuf is None or self._wbuf.shape != self._wp.shape:
                    self._wbuf = np.empty(self._wp.shape, np.float32)
                wf = self._wp.unpack(out=self._wbuf)
            else:
                wf = self.weights_pm1()
            gx = grad @ wf
        self._x = self._wp = None
        return gx


class BatchNorm(Layer):
    """Batch norm over the last axis (features or NHWC channels), standard
    or shift-based (kind="shift": powers of two, as in the paper), on the
    libbnn kernels.  momentum weighs the new batch in the running stats."""

    def __init__(self, features, kind="standard", eps=1e-4, momentum=0.1):
        if kind not in _core.BN_KINDS:
            raise ValueError("BatchNorm kind must be 'standard' or 'shift', got %r" % (kind,))
        self.features = int(features)
        self.kind = kind
        self.eps, self.momentum = float(eps), float(momentum)
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
        y = np.empty_like(x2)
        if training:
            mean = np.empty(self.features, np.float32)
            scale = np.empty(self.features, np.float32)
            _core.bn_forward_train(self.kind, x2, self.gamma.value, self.beta.value, self.eps,
                                   self.momentum, self.running_mean, self.running_invstd, y,
                                   mean, scale)
            self._saved = (None if self.recompute else x2, mean, scale)
        else:
            _core.bn_forward_eval(self.kind, x2, self.gamma.value, self.beta.value,
                                  self.running_mean, self.running_invstd, y)
            self._saved = None
        return y.reshape(x.shape)

    def backward(self, grad, input_grad=True):
        if self._saved is None:
            raise self._err("backward without a training forward")
        x2, mean, scale = self._saved
        if x2 is None:
            x2 = np.ascontiguousarray(np.asarray(self.recompute(), dtype=np.float32)
                                      .reshape(-1, self.features))
        g2 = np.ascontiguousarray(grad.reshape(-1, self.features), dtype=np.float32)
        dx = np.empty_like(g2)
        dg = np.empty(self.features, np.float32)
        db = np.empty(self.features, np.float32)
        _core.bn_backward(self.kind, x2, self.gamma.value, mean, scale, g2, dx, dg, db)
        self.gamma.grad += dg
        self.beta.grad += db
        self._saved = None
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


class Sign(Layer):
    """Binarization with the straight-through estimator (gradient passes
    where |x| <= 1).  In "bnn" mode the output is a PackedTensor (sign(0) =
    +1; stochastic=True draws +1 with probability hardsigmoid(x) during
    training, from a seeded counter-based generator) and backward keeps
    only the packed |x| <= 1 mask.  In "bc"/"fp" modes it is a HardTanh."""

    def __init__(self, stochastic=False, seed=0):
        self.stochastic = stochastic
        self.seed = int(seed)
        self.counter = 0
        self._mask = None
        self._shape = None

    def forward(self, x, training):
        if self.mode != "bnn":
            return HardTanh.forward(self, x, training)
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
            _core.pack_stochastic(rows, self.seed, self.counter, words.reshape(rows.shape[0], -1))
            self.counter += rows.size
            return PackedTensor(words, x.shape)
        return pack(x)

    def kept_bytes(self):
        if self.mode != "bnn":
            return HardTanh.kept_bytes(self)
        return 0 if self._mask is None else int(self._mask.nbytes)

    def backward(self, grad, input_grad=True):
        if self.mode != "bnn":
            return HardTanh.backward(self, grad)
        if self._mask is None:
            raise self._err("backward without a training forward")
        g = np.asarray(grad, dtype=np.float32).reshape(self._mask.shape[0], -1)
        # the gate as 0/1 floats through the vectorised unpacking (-1 where
        # the bit, |x| <= 1, is set): out = grad * (1 - f) / 2
        f = PackedTensor(self._mask, g.shape).unpack()
        f *= np.float32(-0.5)
        f += np.float32(0.5)
        f *= g
        self._mask = None
        return f.reshape(self._shape)


class HardTanh(Layer):
    """clip(x, -1, 1); gradient 1 where |x| <= 1 (inclusive)."""

    def forward(self, x, training):
        x = np.asarray(x, dtype=np.float32)
        self._x = x if training else None
        return np.clip(x, -1, 1)

    def kept_bytes(self):
        return 0 if getattr(self, "_x", None) is None else int(self._x.nbytes)

    def backward(self, grad, input_grad=True):
        if getattr(self, "_x", None) is None:
            raise self._err("backward without a training forward")
        out = np.where(np.abs(self._x) <= 1, grad, np.float32(0)).astype(np.float32)
        self._x = None
        return out


class Dropout(Layer):
    """Inverted dropout (keep probability 1 - p, kept values scaled by
    1/(1 - p)) with a seeded generator.  After a Sign in "bnn" mode it
    keeps the activations packed: the next binary layer computes the
    masked product exactly on the XNOR kernels, through
        sum_kept a*w = (dot(a, w) + dot(a', w)) / 2,
    where a' flips the dropped elements of a (their terms cancel).  The
    mask is kept for backward as packed bits (1 = dropped)."""

    def __init__(self, p=0.5, seed=0):
        if not 0 <= p < 1:
            raise ValueError("Dropout p must be in [0, 1), got %r" % (p,))
        self.p = float(p)
        self.rng = np.random.default_rng(seed)
        self._mask = None

    def _scale(self):
        return np.float32(1.0 / (1.0 - self.p))

    def forward(self, x, training):
        if not training or self.p == 0:
            self._mask = None
            return x
        if isinstance(x, np.ndarray) and x.dtype == np.uint8:
            x = scale_input(x)            # dropout on the input pixels
        dropped = self.rng.random(x.shape, dtype=np.float32) < self.p
        # int8 -1 where dropped: packs to bit 1 (no float temporaries)
        mask = pack(np.negative(dropped.view(np.int8)))
        self._mask = mask
        if isinstance(x, PackedTensor):
            return MaskedPacked(x, mask, self._scale())
        return np.multiply(x, _keep_factor(mask, self._scale()), dtype=np.float32)

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
        out = np.multiply(grad, _keep_factor(self._mask, self._scale()), dtype=np.float32)
        self._mask = None
        return out


def _keep_factor(mask, scale):
    """float32 scale where the packed mask bit is 0 (kept), 0 where it is 1."""
    f = mask.unpack()                     # +1 kept, -1 dropped
    f += np.float32(1)
    f *= np.float32(scale / 2)            # exact: (1 + 1) * scale/2 == scale
    return f


class MaskedPacked:
    """Packed +-1 activations with a packed keep mask (bit 0 = kept) and a
    scale: the value is scale * a where kept, 0 where dropped."""

    def __init__(self, bits, keep, scale):
        self.bits, self.keep, self.scale = bits, keep, scale
        self.shape = bits.shape

    def flipped(self):
        """a' : a with its dropped elements negated (bits XOR dropped)."""
        return PackedTensor(self.bits.words ^ self.keep.words, self.bits.shape)

    def unpack(self):
        out = self.bits.unpack()
        out *= _keep_factor(self.keep, self.scale)
        return out


def _plan_record(kind, name, input_u8=False, scores=False, pad_one=False, **fields):
    """One record of Sequential._fold_plan()."""
    rec = dict(type=kind, name=name, input_u8=bool(input_u8), scores=bool(scores),
               pad_one=bool(pad_one))
    rec.update((k, v if isinstance(v, np.ndarray) else int(v)) for k, v in fields.items())
    return rec


class Sequential:
    """A chain of layers with hand-written backward passes.

    mode: "bnn", "bc" or "fp" (see the module docstring); the first layer
    takes uint8 inputs scaled x/128 - 1.  In "bnn" mode, eval() switches
    predict() to the folded integer path that deployment runs: the 8-bit
    first layer and the binary layers with batch norm + sign folded into
    integer thresholds (bnn_fold_threshold), and the last layer's batch
    norm as a float scale/offset -- so evaluation gives exactly what the C
    runtime gives.  Supported pattern for the folded path (dense networks):
        BinaryDense, BatchNorm, Sign, [Dropout], ..., BinaryDense, BatchNorm
    """

    def __init__(self, layers, mode="bnn", recompute=True):
        if mode not in MODES:
            raise ValueError("mode must be one of %s, got %r" % (", ".join(MODES), mode))
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        self.mode = mode
        for i, layer in enumerate(self.layers):
            layer.mode = mode
            if layer.name is None:
                layer.name = "layer %d (%s)" % (i, type(layer).__name__)
            if isinstance(layer, (BinaryDense, BinaryConv2d)):
                # latent binary weights are clipped and Glorot-scaled; the
                # weights of a float layer (or of "fp" mode) are not
                binary = layer.binary and mode != "fp"
                layer.W.binary = binary
                layer.W.lr_scale = layer.glorot_scale if binary else 1.0
        self.training = True
        self._folded = None
        self.recompute = bool(recompute)
        self._wire_recompute()

    def _wire_recompute(self):
        """A BatchNorm after a binary layer (optionally through a MaxPool2d)
        recomputes its input in backward from the layer's kept input instead
        of storing it: one more XNOR product, far less memory.  With
        recompute=False batch norm stores its float input (4 bytes per
        element) and saves that product: faster where memory is no concern
        (an MLP at batch 100 keeps 1.6 MB per 4096-wide layer)."""
        for i, layer in enumerate(self.layers):
            if isinstance(layer, BatchNorm) and not self.recompute:
                layer.recompute = None
                continue
            if not isinstance(layer, BatchNorm) or i == 0:
                continue
            prev = self.layers[i - 1]
            pool = None
            if isinstance(prev, MaxPool2d) and i >= 2:
                pool, prev = prev, self.layers[i - 2]
            if isinstance(prev, (BinaryDense, BinaryConv2d)) and self.mode == "bnn":
                if pool is None:
                    layer.recompute = prev.recompute_output
                else:
                    layer.recompute = (lambda p=prev, q=pool: q.forward(p.recompute_output(), False))
            else:
                layer.recompute = None

    def kept_bytes(self):
        """Bytes kept for backward by the last training forward."""
        return sum(layer.kept_bytes() for layer in self.layers)

    def summary(self, input_shape, print_fn=print):
        """Per layer: output shape, parameters, binary and float MACs per
        sample, weight storage (deployed: 1 bit per binary weight, float32
        for the rest) against float32, and the bytes per sample a training
        step keeps for backward (measured on a copy with a batch of 2).
        input_shape excludes the batch, e.g. (784,) or (32, 32, 3).
        Returns the totals as a dict."""
        import copy
        probe = copy.deepcopy(self)
        probe.train()
        x = np.zeros((2,) + tuple(input_shape), dtype=np.uint8)
        shape = (2,) + tuple(input_shape)
        if isinstance(self._first_compute(), BinaryDense) and len(shape) > 2:
            shape = (2, int(np.prod(shape[1:])))
        h = x.reshape(shape)
        rows, tot = [], dict(params=0, binary_macs=0, float_macs=0, bits=0, float_bits=0, kept=0)
        for layer in probe.layers:
            out = layer.forward(h, True)
            oshape = tuple(out.shape)
            nparam = sum(p.value.size for p in layer.parameters())
            bmacs = fmacs = 0
            bits = 0
            if isinstance(layer, (BinaryDense, BinaryConv2d)):
                per_out = layer.in_features if isinstance(layer, BinaryDense) else \
                    layer.kh * layer.kw * layer.in_channels
                macs = per_out * int(np.prod(oshape[1:]))
                binary_in = isinstance(h, (PackedTensor, MaskedPacked))
                if layer is probe.layers[0] and self.mode == "bnn":
                    binary_in = False  # the 8-bit first layer: integer MACs, counted as float
                if layer._binary_weights() and binary_in:
                    bmacs = macs
                else:
                    fmacs = macs
                bits = layer.W.value.size * (1 if layer._binary_weights() else 32)
            else:
                bits = 32 * nparam
            kept = layer.kept_bytes() / 2
            tot["kept_step"] = tot.get("kept_step", 0) + layer.kept_step_bytes()
            rows.append((layer.name, oshape[1:], nparam, bmacs, fmacs, bits, kept))
            tot["params"] += nparam
            tot["binary_macs"] += bmacs
            tot["float_macs"] += fmacs
            tot["bits"] += bits
            tot["float_bits"] += 32 * nparam
            tot["kept"] += kept
            h = out
        print_fn("%-28s %-16s %10s %12s %12s %12s %12s" % (
            "layer", "output", "params", "binary MACs", "float MACs", "weight bits", "kept B/sample"))
        for r in rows:
            print_fn("%-28s %-16s %10d %12d %12d %12d %12.0f" % (r[0], r[1], r[2], r[3], r[4], r[5], r[6]))
        print_fn("total: %d parameters, %d binary + %d float MACs per sample; weights %.1f KiB "
                 "deployed vs %.1f KiB float32; training keeps %.1f KiB per sample for backward "
                 "(+ %.1f KiB of packed weights per step)"
                 % (tot["params"], tot["binary_macs"], tot["float_macs"], tot["bits"] / 8192,
                    tot["float_bits"] / 8192, tot["kept"] / 1024, tot.get("kept_step", 0) / 1024))
        tot["kept_bytes_per_sample"] = tot.pop("kept")
        tot["kept_bytes_per_step"] = tot.pop("kept_step", 0)
        return tot

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self):
        self.training = True
        self._folded = None
        return self

    def eval(self):
        self.training = False
        self._folded = None
        return self

    def check_input(self, in_shape):
        """Shape of the output for an input [N, ...]; errors name the layer
        whose input does not fit."""
        shape = tuple(in_shape)
        if isinstance(self._first_compute(), BinaryDense) and len(shape) > 2:
            shape = (shape[0], int(np.prod(shape[1:])))
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def forward(self, x, training=None):
        """Float scores of uint8 inputs, through the layers (training path)."""
        training = self.training if training is None else training
        h = np.asarray(x)
        if h.dtype != np.uint8:
            raise TypeError("inputs must be uint8 pixels, got %s" % h.dtype)
        if isinstance(self._first_compute(), BinaryDense) and h.ndim > 2:
            h = h.reshape(h.shape[0], -1)   # images into a dense first layer
        if isinstance(self.layers[0], (BinaryDense, BinaryConv2d)):
            # The first layer keeps the uint8 pixels (1 byte each) for
            # backward and scales them as x/128 - 1 when it needs floats.
            pass
        else:
            h = scale_input(h)
        for layer in self.layers:
            h = layer.forward(h, training)
        return np.asarray(h, dtype=np.float32)

    def _first_compute(self):
        """The first layer that is not a Dropout (what the inputs meet)."""
        return next((l for l in self.layers if not isinstance(l, Dropout)), self.layers[0])

    def backward(self, grad, input_grad=True):
        """Backpropagate d(loss)/d(scores) through every layer, accumulating
        parameter gradients (the inputs' own gradient is not computed: the
        first layer with parameters skips it, layers before it only drop
        what they kept)."""
        first = next((i for i, l in enumerate(self.layers) if l.parameters()), 0)
        for layer in reversed(self.layers[first + 1:]):
            grad = layer.backward(grad)
        self.layers[first].backward(grad, input_grad=False)
        for layer in self.layers[:first]:
            layer.release()

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    # ---- evaluation on the deployment path -------------------------------

    def _fold_plan(self):
        """The folded integer network ("bnn" mode) as a list of plain
        records, the numbers that both predict() (through _fold) and the
        .bnn export (pybnn.export) use.  Blocks:
            BinaryDense | BinaryConv2d, [MaxPool2d], BatchNorm, Sign, [Dropout]
        with Flatten between them, ending in BinaryDense, BatchNorm.

        Each record is a dict with "type" ("dense", "conv", "maxpool",
        "flatten"), "name" (the layer it comes from), the flags
        "input_u8" (reads the uint8 image), "scores" (the last layer:
        float scale/offset) and "pad_one" (conv padding is +1), and:
          dense:   k, m; weights uint64 [m, words(k)]
          conv:    c, o, kh, kw, stride_h, stride_w, dilation_h,
                   dilation_w, pad_top, pad_bottom, pad_left, pad_right;
                   weights uint64 [o, kh, kw, words(c)]
          maxpool: kh, kw, stride_h, stride_w (pools the bits of the
                   record before it, with that record's flip)
          flatten: nothing more
        and, for dense and conv, either thresh int32 [m] and flip uint8 [m]
        or (with "scores") scale and offset float32 [m].  Weights are the
        words of pack(W): bit = weight < 0, pad bits zero."""
        from ._tensor import fold_threshold
        layers = [l for l in self.layers if not isinstance(l, Dropout)]
        plan, i, first = [], 0, True
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, Flatten):
                plan.append(_plan_record("flatten", layer.name))
                i += 1
                continue
            if not isinstance(layer, (BinaryDense, BinaryConv2d)):
                raise ValueError("folded evaluation: %s is not where a dense or conv layer "
                                 "was expected" % layer.name)
            if not layer.binary:
                raise ValueError("folded evaluation needs binary weights in %s" % layer.name)
            j = i + 1
            pool = None
            if j < len(layers) and isinstance(layers[j], MaxPool2d):
                pool = layers[j]
                j += 1
            bn = layers[j] if j < len(layers) else None
            if not isinstance(bn, BatchNorm):
                raise ValueError("folded evaluation needs a BatchNorm after %s" % layer.name)
            last = j + 1 >= len(layers)
            if not last and not isinstance(layers[j + 1], Sign):
                raise ValueError("folded evaluation needs a Sign after %s" % bn.name)
            words = pack(layer.W.value).words
            sc, off = bn.affine()
            conv = isinstance(layer, BinaryConv2d)
            k = layer.kh * layer.kw * layer.in_channels if conv else layer.in_features
            if first:
                sc = sc / 128.0      # training sees s/128, s = sum (x - 128) w exactly
                k *= 128
                if conv and layer.pad_value != 0:
                    raise ValueError("the first (8-bit) layer must use zero padding: %s"
                                     % layer.name)
            if last:
                if conv or pool is not None:
                    err = ValueError("the last block must be BinaryDense, BatchNorm")
                    err.layer = layer.name      # for the export's message
                    raise err
                plan.append(_plan_record(
                    "dense", layer.name, input_u8=first, scores=True,
                    k=layer.in_features, m=layer.out_features, weights=words,
                    scale=sc.astype(np.float32), offset=off.astype(np.float32)))
                i = j + 1
                break
            t, f = fold_threshold(sc, off, k)
            t = np.ascontiguousarray(t, dtype=np.int32)
            f = np.ascontiguousarray(f, dtype=np.uint8)
            if conv:
                pt, pb, pl, pr = layer.padding
                plan.append(_plan_record(
                    "conv", layer.name, input_u8=first, pad_one=layer.pad_value == 1,
                    c=layer.in_channels, o=layer.out_channels, kh=layer.kh, kw=layer.kw,
                    stride_h=layer.stride[0], stride_w=layer.stride[1],
                    dilation_h=layer.dilation[0], dilation_w=layer.dilation[1],
                    pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr,
                    weights=words, thresh=t, flip=f))
            else:
                plan.append(_plan_record(
                    "dense", layer.name, input_u8=first, k=layer.in_features,
                    m=layer.out_features, weights=words, thresh=t, flip=f))
            if pool is not None:
                plan.append(_plan_record("maxpool", pool.name, kh=pool.kernel[0],
                                         kw=pool.kernel[1], stride_h=pool.stride[0],
                                         stride_w=pool.stride[1]))
            first = False
            i = j + 2
        if i < len(layers):
            raise ValueError("folded evaluation: layers after the last BatchNorm (%s)"
                             % layers[i].name)
        return plan

    def _fold(self):
        """Compile the folded integer network ("bnn" mode) of _fold_plan()
        into a list of functions from the previous output to the next."""
        from ._conv import bconv2d_threshold, conv2d_correction, conv2d_u8, gemm_u8, maxpool2d
        from ._tensor import bgemm_affine, bgemm_threshold
        ops, prev = [], None
        for rec in self._fold_plan():
            kind = rec["type"]
            if kind == "flatten":
                ops.append(lambda h: pack(h.unpack().reshape(h.shape[0], -1)))
            elif kind == "maxpool":
                ops.append(lambda h, p=(rec["kh"], rec["kw"]), s=(rec["stride_h"], rec["stride_w"]),
                           f=prev["flip"]: maxpool2d(h, p, s, flip=f))
            elif kind == "dense":
                wp = PackedTensor(rec["weights"], (rec["m"], rec["k"]))
                if rec["scores"]:
                    a, b = rec["scale"], rec["offset"]
                    if rec["input_u8"]:
                        ops.append(lambda h, wp=wp, a=a, b=b: gemm_u8(h, wp, scale=a, offset=b))
                    else:
                        ops.append(lambda h, wp=wp, a=a, b=b: bgemm_affine(h, wp, a, b))
                else:
                    t, f = rec["thresh"], rec["flip"]
                    if rec["input_u8"]:
                        ops.append(lambda h, wp=wp, t=t, f=f: gemm_u8(
                            np.ascontiguousarray(h.reshape(h.shape[0], -1)), wp, thresh=t, flip=f))
                    else:
                        ops.append(lambda h, wp=wp, t=t, f=f: bgemm_threshold(h, wp, t, f))
            else:   # conv
                wp = PackedTensor(rec["weights"], (rec["o"], rec["kh"], rec["kw"], rec["c"]))
                t, f = rec["thresh"], rec["flip"]
                geo = dict(stride=(rec["stride_h"], rec["stride_w"]),
                           padding=(rec["pad_top"], rec["pad_bottom"], rec["pad_left"],
                                    rec["pad_right"]),
                           dilation=(rec["dilation_h"], rec["dilation_w"]))
                if rec["input_u8"]:
                    ops.append(lambda h, wp=wp, t=t, f=f, g=geo: conv2d_u8(h, wp, pad_byte=128,
                                                                           thresh=t, flip=f, **g))
                else:
                    corr = conv2d_correction(wp)
                    ops.append(lambda h, wp=wp, t=t, f=f, g=geo, pv=int(rec["pad_one"]), c=corr:
                               bconv2d_threshold(h, wp, t, f, pad_value=pv, correction=c, **g))
            prev = rec
        self._folded = ops
        return ops

    def export(self, path, input_shape=None, format="bnn", name=None):
        """Write the folded network for the C runtime: a .bnn file
        (docs/model-format.md) or, with format="c", a C array in
        <stem>.h/<stem>.c.  input_shape is the uint8 input (H, W, C), e.g.
        (28, 28, 1); see pybnn.export.export.  Returns the paths written."""
        from .export import export
        return export(self, path, input_shape=input_shape, format=format, name=name)

    def predict(self, x_uint8, batch_size=1024):
        """(scores float32 [N, classes], classes int64 [N]) of uint8 inputs.
        In eval() of a "bnn" model this runs the folded integer path."""
        x = np.asarray(x_uint8)
        if x.dtype != np.uint8:
            raise TypeError("predict takes uint8 inputs, got %s" % x.dtype)
        if not self.training and self.mode == "bnn" and self._folded is None:
            try:
                self._fold()
            except ValueError as e:
                if any(isinstance(l, (BinaryDense, BinaryConv2d)) and not l.binary
                       for l in self.layers):
                    # float first/last layers: evaluate through the layers in
                    # float (what a runtime with float layers computes)
                    import warnings
                    warnings.warn("predict: %s; evaluating through the float layers" % e,
                                  RuntimeWarning, stacklevel=2)
                    self._folded = False
                else:
                    raise
        if self.training or self.mode != "bnn" or self._folded is False:
            scores = np.concatenate([self.forward(x[i:i + batch_size], training=False)
                                     for i in range(0, len(x), batch_size)]) if len(x) else \
                np.zeros((0,) + self.check_input((0, int(np.prod(x.shape[1:]))))[1:], np.float32)
            return scores, np.argmax(scores, axis=1).astype(np.int64)
        if isinstance(self._first_compute(), BinaryDense) and x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        out_shape = self.check_input(x.shape)    # errors name the layer
        if len(x) == 0:
            return np.zeros(out_shape, np.float32), np.zeros(0, np.int64)
        ops = self._folded
        h = np.ascontiguousarray(x)
        for op in ops:
            h = op(h)
        return h, np.argmax(h, axis=1).astype(np.int64)


# ---- convolutional layers (NHWC) ---------------------------------------------

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
    same."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0, dilation=1,
                 pad_value=0, binary=True, rng=None):
        from ._conv import _pad_pair, _padding
        rng = rng if rng is not None else np.random.default_rng()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kh, self.kw = _pad_pair(kernel, "kernel")
        self.stride = _pad_pair(stride, "stride")
        self.dilation = _pad_pair(dilation, "dilation")
        self.padding = _padding(padding)
        if pad_value not in (0, 1):
            raise ValueError("pad_value must be 0 or 1, got %r" % (pad_value,))
        self.pad_value = pad_value
        self.binary = binary
        fan_in = self.kh * self.kw * self.in_channels
        fan_out = self.kh * self.kw * self.out_channels
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        lr_scale = 1.0 / math.sqrt(1.5 / (fan_in + fan_out))
        self.glorot_scale = lr_scale
        self.W = Parameter("W", rng.uniform(-limit, limit, (self.out_channels, self.kh, self.kw,
                                                            self.in_channels)),
                           binary=binary, lr_scale=lr_scale if binary else 1.0)
        self._x = None

    def parameters(self):
        return [self.W]

    def _binary_weights(self):
        return self.binary and self.mode != "fp"

    def weights_pm1(self):
        W = self.W.value
        return pack(W).unpack() if self._binary_weights() else W

    def output_shape(self, in_shape):
        from ._conv import conv2d_output_shape
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
        return _kept_bytes(self._x)

    def _compute(self, x):
        from ._conv import bconv2d
        if isinstance(x, PackedTensor) and self._binary_weights():
            y = bconv2d(x, pack(self.W.value), self.stride, self.padding, self.dilation,
                        self.pad_value).astype(np.float32)
        else:
            cols = _im2col(_as_float(x), self.kh, self.kw, self.stride, self.padding,
                           self.dilation, self.pad_value)
            y = cols @ self.weights_pm1().reshape(self.out_channels, -1).T
        return y

    def backward(self, grad, input_grad=True):
        if self._x is None:
            raise self._err("backward without a training forward")
        xf = _as_float(self._x)
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


class MaxPool2d(Layer):
    """Max-pooling of float NHWC data (before batch norm, as the paper
    orders it); backward routes each gradient to the first maximum of its
    window.  Deployment pools the thresholded bits instead (equal by the
    fold's monotonicity)."""

    def __init__(self, kernel, stride=None):
        from ._conv import _pad_pair
        self.kernel = _pad_pair(kernel, "kernel")
        self.stride = self.kernel if stride is None else _pad_pair(stride, "stride")
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
        x = np.asarray(_as_float(x), dtype=np.float32)
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


class Flatten(Layer):
    """[N, H, W, C] -> [N, H*W*C] in NHWC element order.  Packed inputs stay
    packed, compacted to K = H*W*C bits per row (padding only at the end)."""

    def output_shape(self, in_shape):
        return (in_shape[0], int(np.prod(in_shape[1:])))

    def forward(self, x, training):
        self._shape = tuple(x.shape)
        if isinstance(x, PackedTensor):
            return pack(x.unpack().reshape(x.shape[0], -1))
        if isinstance(x, MaskedPacked):        # dropout before the flatten
            return MaskedPacked(self.forward(x.bits, training), self.forward(x.keep, training),
                                x.scale)
        return np.asarray(x).reshape(x.shape[0], -1)

    def backward(self, grad, input_grad=True):
        return grad.reshape(self._shape)
