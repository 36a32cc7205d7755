"""Training-time augmentation of image batches: the standard CIFAR-10 one,
a random crop of the image padded by `pad` pixels on every side and a
random horizontal flip, both drawn per image from a numpy Generator (the
training run's own, so a resumed run draws the same crops)."""
from __future__ import annotations

import numpy as np

__all__ = ["random_crop_flip"]


def random_crop_flip(x, rng, pad=4, flip=True, fill=0):
    """A new batch the shape and dtype of `x` ([N, H, W, C] images, NHWC as
    the dataset readers return them): image i is the H x W window at offset
    (dy_i, dx_i), each uniform in 0..2*pad, of x[i] padded by `pad` pixels
    of value `fill` on every side (fill=0: black pixels, the usual zero
    padding of uint8 images), mirrored left-right with probability 1/2
    when `flip`.  The draws come from `rng` in a fixed order: dy for the
    batch, then dx, then the flips.  Flat inputs ([N, features]) have no
    rows or columns to shift: ValueError."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError("random_crop_flip takes [N, H, W, C] images, got shape %r"
                         % (x.shape,))
    if int(pad) != pad or pad < 0:
        raise ValueError("pad must be an integer >= 0, got %r" % (pad,))
    pad = int(pad)
    n, h, w, _ = x.shape
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    mirror = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=fill)
    rows = dy[:, None] + np.arange(h)                  # [N, H] rows of the padded image
    cols = dx[:, None] + np.arange(w)                  # [N, W]
    cols = np.where(mirror[:, None], cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
