"""Float max-pooling for training (bnn_maxpool2d_f32_train/_backward
through _core and MaxPool2d): bitwise the oracles, ties and NaN
included, overlapping windows, padding; the layer keeps 2 bits per output."""
import numpy as np
import pytest

from oracles import maxpool_backward, maxpool_train

from pybnn import _core
from pybnn.nn import MaxPool2d


def _same(x, y):
    np.testing.assert_array_equal(np.asarray(x).view(np.uint32), np.asarray(y).view(np.uint32))


@pytest.mark.parametrize("kernel,stride,padding", [((2, 2), (2, 2), (0, 0, 0, 0)),
                                                   ((3, 3), (1, 1), (1, 1, 1, 1)),
                                                   ((3, 2), (2, 1), (0, 2, 1, 0)),
                                                   ((1, 1), (1, 1), (0, 0, 0, 0))])
@pytest.mark.parametrize("c", [1, 7, 300])
def test_maxpool_train_matches_the_oracle(kernel, stride, padding, c):
    rng = np.random.default_rng(c)
    x = rng.integers(-3, 4, (2, 6, 5, c)).astype(np.float32)   # many ties
    x[0, 0, 0, 0] = -0.0
    x[0, 0, 1, 0] = 0.0
    x[1, 2, 2, :] = np.nan
    want, taps = maxpool_train(x, kernel, stride, padding)
    out = np.empty(want.shape, np.float32)
    tap = np.empty(want.shape, np.uint8)
    _core.maxpool2d_f32_train(x, out, tap, kernel, stride, padding)
    _same(out, want)
    np.testing.assert_array_equal(tap, taps)
    g = rng.standard_normal(want.shape).astype(np.float32)
    gx = np.full(x.shape, np.nan, np.float32)
    _core.maxpool2d_f32_backward(g, tap, gx, kernel, stride, padding)
    _same(gx, maxpool_backward(g, tap, x.shape, kernel, stride, padding))
    with pytest.raises(ValueError, match="must be"):
        _core.maxpool2d_f32_train(x, out[:1], tap, kernel, stride, padding)


def test_maxpool_layer_keeps_two_bits_per_output():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 8, 5)).astype(np.float32)
    layer = MaxPool2d(2)
    y = layer.forward(x, True)
    assert layer.kept_bytes() == -(-y.size // 4)
    want, taps = maxpool_train(x, 2, 2, 0)
    _same(y, want)
    g = rng.standard_normal(y.shape).astype(np.float32)
    _same(layer.backward(g), maxpool_backward(g, taps, x.shape, 2, 2, 0))
    with pytest.raises(ValueError, match="backward without"):
        layer.backward(g)
