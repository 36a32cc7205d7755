"""Optimizers (steps run in libbnn) and learning-rate schedules."""
from __future__ import annotations

import numpy as np

from . import _core
from ._args import integer, real, show

__all__ = ["Optimizer", "ExponentialDecay", "StepHalving"]

_DEFAULTS = {
    # kind: (lr, beta1, beta2, eps)
    "adam": (0.003, 0.9, 0.999, 1e-8),
    "adamax": (0.002, 0.9, 0.999, 1e-8),
    # the Torch code of the paper's authors; the paper's own constants are
    # Optimizer("shift_adamax", lr=2**-10, beta1=0.875, beta2=1 - 2**-10)
    "shift_adamax": (2.0 ** -6, 0.9, 0.999, 2.0 ** -27),
    # Bop for binary weights; the other parameters take Adam's defaults
    "bop": (0.003, 0.9, 0.999, 1e-8),
}
# Bop's defaults (Helwegen et al., 2019, "Latent Weights Do Not Exist",
# and Larq's): the adaptivity rate of the gradient's moving average and
# the flip threshold
BOP_GAMMA = 1e-4
BOP_THRESHOLD = 1e-8


class Optimizer:
    """Adam, AdaMax, shift-based AdaMax or Bop over Parameters.  Latent
    binary weights get their layer's Glorot learning-rate scale and are
    clipped to [-1, 1]; other parameters use the plain rate.  Moments are
    numpy arrays (state_dict() / load_state_dict() for checkpoints).

    kind="bop": binary weights have no latent value (Helwegen et al., 2019):
    they are set to their signs (+-1) here, and each step keeps one moving
    average of the gradient, m = (1 - gamma) * m + gamma * g, and flips a
    weight where |m| > threshold and m has the weight's sign -- one float
    of state per weight instead of two moments.  The other parameters (batch
    norm, float layers) take Adam with lr, beta1, beta2, eps."""

    def __init__(self, params, kind="adam", lr=None, beta1=None, beta2=None, eps=None,
                 gamma=BOP_GAMMA, threshold=BOP_THRESHOLD):
        if kind not in _DEFAULTS:
            raise ValueError("kind must be one of %s, got %r" % (", ".join(_DEFAULTS), kind))
        d = _DEFAULTS[kind]
        self.kind = kind
        # libbnn's domain (bnn_opt_step), named here rather than at the first step
        self.lr = d[0] if lr is None else real(lr, "lr", minimum=0.0)
        self.beta1 = d[1] if beta1 is None else real(beta1, "beta1", minimum=0.0, below=1.0)
        self.beta2 = d[2] if beta2 is None else real(beta2, "beta2", minimum=0.0, below=1.0)
        self.eps = d[3] if eps is None else real(eps, "eps", minimum=0.0)
        self.gamma = real(gamma, "gamma", above=0.0)
        if self.gamma > 1:
            raise ValueError("gamma must be <= 1, got %r" % self.gamma)
        self.threshold = real(threshold, "threshold", minimum=0.0)
        try:
            self.params = list(params)
        except TypeError:
            raise TypeError("params must be a list of Parameters, got %s" % show(params)) from None
        for i, p in enumerate(self.params):
            if not (hasattr(p, "value") and hasattr(p, "grad") and hasattr(p, "binary")):
                raise TypeError("params must hold Parameters, got %s at index %d" % (show(p), i))
        self._bop = [kind == "bop" and p.binary for p in self.params]
        for p, bop in zip(self.params, self._bop):
            if bop:                       # the weights are their signs
                p.drop_signs()
                p.value[...] = np.where(p.value < 0, np.float32(-1), np.float32(1))
        self.m = [np.zeros(p.value.size, np.float32) for p in self.params]
        self.v = [np.zeros(0 if bop else p.value.size, np.float32)
                  for p, bop in zip(self.params, self._bop)]
        self.t = 0

    def step(self):
        self.t += 1
        kind = "adam" if self.kind == "bop" else self.kind
        for p, m, v, bop in zip(self.params, self.m, self.v, self._bop):
            p.drop_signs()
            if bop:
                bop_step(p.value.reshape(-1), p.grad.reshape(-1), m, self.gamma, self.threshold)
                continue
            args = (self.t, self.lr, self.beta1, self.beta2, self.eps, p.lr_scale,
                    1.0 if p.binary else 0.0)
            if p.binary and p.value.size:
                # one pass: the step and the packed signs the next forward
                # multiplies with (no packing pass over the weights)
                k = p.value.shape[-1]
                rows = p.value.size // k
                words = np.empty((rows, _core.words(k)), np.uint64)
                _core.opt_step_pack(kind, p.value.reshape(rows, k), p.grad.reshape(rows, k),
                                    m.reshape(rows, k), v.reshape(rows, k), words, *args)
                p.set_signs(words.reshape(p.value.shape[:-1] + (words.shape[1],)))
            else:
                _core.opt_step(kind, p.value.reshape(-1), p.grad.reshape(-1), m, v, *args)

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()

    def state_dict(self):
        """Plain arrays and numbers (for .npz checkpoints)."""
        d = {"kind": self.kind, "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2,
             "eps": self.eps, "t": self.t}
        if self.kind == "bop":
            d.update(gamma=self.gamma, threshold=self.threshold)
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            d["m%d" % i] = m.copy()
            d["v%d" % i] = v.copy()
        return d

    def load_state_dict(self, d):
        if str(d["kind"]) != self.kind:
            raise ValueError("checkpoint optimizer is %r, this one is %r" % (str(d["kind"]), self.kind))
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            mi, vi = np.asarray(d["m%d" % i]), np.asarray(d["v%d" % i])
            if mi.shape != m.shape or vi.shape != v.shape:
                raise ValueError("optimizer state %d has shape %r, expected %r" % (i, mi.shape, m.shape))
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...] = d["m%d" % i]
            v[...] = d["v%d" % i]
        self.lr, self.beta1, self.beta2, self.eps = (float(d[k]) for k in ("lr", "beta1", "beta2", "eps"))
        if self.kind == "bop":
            self.gamma, self.threshold = float(d["gamma"]), float(d["threshold"])
        self.t = int(d["t"])


def bop_step(w, g, m, gamma, threshold):
    """One Bop step in place on +-1 weights w (float32): m = (1 - gamma) * m
    + gamma * g, then w = -w where |m| > threshold and sign(m) = sign(w)."""
    m *= np.float32(1 - gamma)
    m += np.float32(gamma) * g
    flip = (np.abs(m) > np.float32(threshold)) & ((m > 0) == (w > 0))
    np.negative(w, out=w, where=flip)


def _schedule_target(optimizer):
    if not hasattr(optimizer, "lr"):
        raise TypeError("optimizer must be an Optimizer, got %s" % show(optimizer))


class ExponentialDecay:
    """lr <- lr * decay once per epoch, decay = (lr_end/lr_start)^(1/epochs)."""

    def __init__(self, optimizer, lr_start, lr_end, epochs):
        _schedule_target(optimizer)
        self.opt = optimizer
        self.lr_start = real(lr_start, "lr_start", above=0.0)
        lr_end = real(lr_end, "lr_end", above=0.0)
        epochs = integer(epochs, "epochs", 1)
        self.decay = (lr_end / self.lr_start) ** (1.0 / epochs)
        self.opt.lr = self.lr_start

    def lr_at(self, epoch):
        return self.lr_start * self.decay ** epoch

    def epoch_end(self, epoch):
        self.opt.lr = self.lr_at(epoch + 1)


class StepHalving:
    """lr halved every `every` epochs (the Torch code's schedule)."""

    def __init__(self, optimizer, lr_start, every):
        _schedule_target(optimizer)
        self.opt = optimizer
        self.lr_start = real(lr_start, "lr_start", above=0.0)
        self.every = integer(every, "every", 1)
        self.opt.lr = self.lr_start

    def lr_at(self, epoch):
        return self.lr_start * 0.5 ** (epoch // self.every)

    def epoch_end(self, epoch):
        self.opt.lr = self.lr_at(epoch + 1)
