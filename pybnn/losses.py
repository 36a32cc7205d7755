"""Losses: (value, gradient with respect to the scores)."""
from __future__ import annotations

import numpy as np

from ._args import show

__all__ = ["squared_hinge", "softmax_cross_entropy"]


def _labels(labels, n, classes):
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError("labels must be integers, got %s" % show(labels))
    if y.shape != (n,):
        raise ValueError("labels must have shape (%d,), got %r" % (n, y.shape))
    if n and (y.min() < 0 or y.max() >= classes):
        raise ValueError("labels must be in [0, %d), got values in [%d, %d]"
                         % (classes, y.min(), y.max()))
    return y


def _scores(scores):
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("scores must be real numbers, got %s" % show(scores)) from None
    if s.ndim != 2:
        raise ValueError("scores must be 2-D [N, classes], got shape %r" % (s.shape,))
    return s


def squared_hinge(scores, labels):
    """The paper's loss: mean over batch x classes of max(0, 1 - t*y)^2 with
    targets t = +1 for the label and -1 elsewhere."""
    s = _scores(scores)
    n, c = s.shape
    y = _labels(labels, n, c)
    t = -np.ones_like(s)
    t[np.arange(n), y] = 1.0
    m = np.maximum(0.0, 1.0 - t * s)
    loss = float(np.mean(m * m)) if s.size else 0.0
    grad = (-2.0 * t * m / max(s.size, 1)).astype(np.float32)
    return loss, grad


def softmax_cross_entropy(scores, labels):
    """Mean softmax cross-entropy."""
    s = _scores(scores)
    n, c = s.shape
    y = _labels(labels, n, c)
    z = s - s.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(n), y].mean()) if n else 0.0
    p = np.exp(logp)
    p[np.arange(n), y] -= 1.0
    return loss, (p / max(n, 1)).astype(np.float32)
