"""Build the golden model file tests/data/golden.bnn and its expected
outputs tests/data/golden_expected.npz.

    python tests/data/make_golden.py          # rewrites both files

The network is small but covers every record type and the awkward
cases of docs/model-format.md: a 3-channel 8-bit first convolution with
zero padding on a non-square image, a max-pool of its bits (some channels
with flip 1, one constant channel), a second convolution over 70
channels (two words per pixel) with a non-square kernel, stride,
dilation and asymmetric padding, 65 outputs (a partial last word), a
flatten, a hidden dense layer with thresholds and a last dense layer with
float scores:

    input uint8 9x7x3
    BinaryConv2d(3, 70, 3, padding=1) [8-bit, zero padding] -> 9x7x70
    MaxPool2d(2) -> 4x3x70, BatchNorm, Sign
    BinaryConv2d(70, 65, (2, 3), stride=(1, 2), dilation=(2, 1),
                 padding=(1, 0, 1, 1), pad_value=0) -> 3x2x65, BatchNorm, Sign
    Flatten -> 390
    BinaryDense(390, 12), BatchNorm, Sign
    BinaryDense(12, 10), BatchNorm

It is trained for a few Adam steps on random data (fixed seeds) so that
weights and batch-norm statistics are not their initial values.  Adam's
steps are normalized (about lr * sign of the gradient), so float rounding
differences of the gradient products between CPUs or BLAS builds do not
change the weights' signs or the folded numbers in practice; the forward
passes that set the batch-norm statistics are exact.

tests/python/test_export.py rebuilds the model with build() and checks
that it exports byte for byte to the committed golden.bnn and predicts the
committed scores, so a change of the format (or of the fold) shows up.
"""
from __future__ import annotations

import os
import sys

import numpy as np

INPUT_SHAPE = (9, 7, 3)
N_EXPECTED = 16
HERE = os.path.dirname(os.path.abspath(__file__))


def build():
    """The golden model (eval mode) and its input shape (H, W, C)."""
    from pybnn.losses import squared_hinge
    from pybnn.nn import (BatchNorm, BinaryConv2d, BinaryDense, Flatten, MaxPool2d, Sequential,
                          Sign)
    from pybnn.optim import Optimizer

    rng = np.random.default_rng(20240611)
    model = Sequential([
        BinaryConv2d(3, 70, 3, padding=1, rng=rng),
        MaxPool2d(2), BatchNorm(70), Sign(),
        BinaryConv2d(70, 65, (2, 3), stride=(1, 2), dilation=(2, 1), padding=(1, 0, 1, 1),
                     pad_value=0, rng=rng),
        BatchNorm(65), Sign(),
        Flatten(),
        BinaryDense(3 * 2 * 65, 12, rng=rng), BatchNorm(12), Sign(),
        BinaryDense(12, 10, rng=rng), BatchNorm(10)])
    # batch-norm scales of both signs (flip 1 channels, pooled by OR) and
    # non-zero offsets
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            n = layer.features
            sign = np.where(rng.random(n) < 0.3, -1.0, 1.0)
            layer.gamma.value[...] = sign * rng.uniform(0.25, 1.5, n)
            layer.beta.value[...] = rng.normal(0.0, 0.5, n)

    x = rng.integers(0, 256, (64,) + INPUT_SHAPE, dtype=np.uint8)
    y = rng.integers(0, 10, 64)
    opt = Optimizer(model.parameters(), "adam", lr=0.01)
    model.train()
    for step in range(8):
        b = slice((step % 2) * 32, (step % 2) * 32 + 32)
        opt.zero_grad()
        _, grad = squared_hinge(model.forward(x[b]), y[b])
        model.backward(grad)
        opt.step()
    # one constant channel (scale 0): its threshold is outside the dot range
    model.layers[2].gamma.value[5] = 0.0
    return model.eval(), INPUT_SHAPE


def expected_input():
    """The fixed uint8 batch whose scores golden_expected.npz holds."""
    return np.random.default_rng(7).integers(0, 256, (N_EXPECTED,) + INPUT_SHAPE,
                                             dtype=np.uint8)


def main(out_dir=HERE):
    import pybnn
    from pybnn.deploy import export
    model, shape = build()
    path = os.path.join(out_dir, "golden.bnn")
    export(model, path, input_shape=shape)
    x = expected_input()
    scores, classes = model.predict(x)
    np.savez(os.path.join(out_dir, "golden_expected.npz"), x=x,
             scores=scores.astype(np.float32), classes=classes.astype(np.int64))
    info = pybnn.load(path).info
    print("wrote %s (%d bytes, %d records) and golden_expected.npz (%d images)"
          % (path, info["file_bytes"], info["layers"], len(x)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
