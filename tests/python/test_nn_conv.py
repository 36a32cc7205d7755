"""Convolutional training layers: gradients against numerical derivatives
(full-precision mode), the packed path against the float path, and the
folded evaluation of a small conv network against its float evaluation."""
import numpy as np
import pytest

import pybnn
from pybnn.losses import squared_hinge
from pybnn.nn import BatchNorm, BinaryConv2d, BinaryDense, Flatten, MaxPool2d, Sequential, Sign
from pybnn.nn.conv import _col2im, _im2col
from pybnn.optim import Optimizer


def _directional_check(f, x, grad, rng, eps=1e-3, rtol=2e-2):
    """d/dt f(x + t*v) at 0 by central differences (float64) against <grad, v>."""
    v = rng.standard_normal(x.shape)
    num = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    ana = float(np.sum(grad.astype(np.float64) * v))
    assert abs(num - ana) <= rtol * max(1.0, abs(ana)), (num, ana)


@pytest.mark.parametrize("stride,padding,dilation,pad_value", [
    (1, 1, 1, 0), (2, 1, 1, 0), (1, (0, 2, 1, 0), 1, 1), (2, 2, 2, 0), (3, 0, 1, 1)])
def test_conv_gradients_fp(stride, padding, dilation, pad_value):
    rng = np.random.default_rng(0)
    layer = BinaryConv2d(3, 5, (3, 2), stride, padding, dilation, pad_value, binary=False, rng=rng)
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    y = layer.forward(x, True)
    R = rng.standard_normal(y.shape)

    def loss_x(xx):
        return float(np.sum(layer.forward(xx.astype(np.float32), False).astype(np.float64) * R))

    gx = layer.backward(R.astype(np.float32))
    _directional_check(loss_x, x.astype(np.float64), gx, rng)
    W0 = layer.W.value.copy()

    def loss_w(ww):
        layer.W.value[...] = ww
        out = float(np.sum(layer.forward(x, False).astype(np.float64) * R))
        layer.W.value[...] = W0
        return out

    _directional_check(loss_w, W0.astype(np.float64), layer.W.grad, rng)


def test_im2col_col2im_adjoint():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    args = (3, 2, (2, 1), (1, 2, 0, 1), (1, 2))
    cols = _im2col(x, *args, 0)
    c = rng.standard_normal(cols.shape).astype(np.float32)
    lhs = float(np.sum(cols.astype(np.float64) * c))
    rhs = float(np.sum(x.astype(np.float64) * _col2im(c, x.shape, *args)))
    assert lhs == pytest.approx(rhs, rel=1e-5)


def test_maxpool_gradient_and_routing():
    rng = np.random.default_rng(2)
    pool = MaxPool2d(2)
    x = rng.permutation(2 * 6 * 4 * 3).reshape(2, 6, 4, 3).astype(np.float32)  # distinct
    y = pool.forward(x, True)
    ref = x.reshape(2, 3, 2, 2, 2, 3).max(axis=(2, 4))
    assert np.array_equal(y, ref)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = pool.backward(g)
    assert gx.sum() == pytest.approx(g.sum(), rel=1e-5)
    assert np.count_nonzero(gx) == g.size  # one winner per window
    _directional_check(lambda xx: float(np.sum(pool.forward(xx.astype(np.float32), False) * g)),
                       x.astype(np.float64), gx, rng, eps=1e-2)


@pytest.mark.parametrize("pad_value", [0, 1])
def test_packed_conv_equals_float_conv(pad_value):
    rng = np.random.default_rng(3)
    layer = BinaryConv2d(65, 7, 3, stride=1, padding=1, pad_value=pad_value, rng=rng)
    x = rng.standard_normal((2, 5, 4, 65)).astype(np.float32)
    xs = np.where(x < 0, np.float32(-1), np.float32(1))
    packed = layer.forward(pybnn.pack(x), False)
    floatp = layer.forward(xs, False)
    assert np.array_equal(packed, floatp)


def test_flatten_packed_compacts_rows():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 3, 70)).astype(np.float32)
    out = Flatten().forward(pybnn.pack(x), False)
    assert out.shape == (3, 2 * 3 * 70)
    assert np.array_equal(out.unpack(), np.where(x < 0, -1, 1).reshape(3, -1))


def test_conv_net_folded_eval_matches_float_eval():
    rng = np.random.default_rng(5)
    model = Sequential([
        BinaryConv2d(3, 8, 3, padding=1, rng=rng), BatchNorm(8), Sign(),
        BinaryConv2d(8, 70, 3, padding=1, rng=rng), MaxPool2d(2), BatchNorm(70), Sign(),
        Flatten(), BinaryDense(4 * 4 * 70, 32, rng=rng), BatchNorm(32), Sign(),
        BinaryDense(32, 10, rng=rng), BatchNorm(10)])
    x = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 40)
    opt = Optimizer(model.parameters(), "adam", lr=0.003)
    for _ in range(3):
        opt.zero_grad()
        loss, g = squared_hinge(model.forward(x), y)
        model.backward(g)
        opt.step()
    model.eval()
    scores, classes = model.predict(x)
    ref = model.forward(x, training=False)
    np.testing.assert_allclose(scores, ref, rtol=1e-5, atol=1e-5)
    assert np.array_equal(classes, np.argmax(scores, axis=1))


def test_conv_shape_errors_name_the_layer():
    layer = BinaryConv2d(3, 4, 3)
    layer.name = "layer 7 (BinaryConv2d)"
    with pytest.raises(ValueError, match="layer 7"):
        layer.forward(np.zeros((1, 5, 5, 4), np.float32), False)
    with pytest.raises(ValueError):
        BinaryConv2d(3, 4, 3, pad_value=2)


def test_float_first_layer_trains_and_predicts_through_float_layers():
    rng = np.random.default_rng(6)
    model = Sequential([BinaryDense(20, 16, binary=False, rng=rng), BatchNorm(16), Sign(),
                        BinaryDense(16, 3, rng=rng), BatchNorm(3)])
    x = rng.integers(0, 256, (8, 20), dtype=np.uint8)
    loss, g = squared_hinge(model.forward(x), rng.integers(0, 3, 8))
    model.backward(g)
    assert not model.layers[0].W.binary and model.layers[3].W.binary
    model.eval()
    with pytest.warns(RuntimeWarning, match="float layers"):
        scores, classes = model.predict(x)
    np.testing.assert_array_equal(scores, model.forward(x, training=False))
    # the fold is not retried (nor warned about) until the next eval()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(model.predict(x)[0], scores)
    with pytest.warns(RuntimeWarning, match="float layers"):
        model.eval().predict(x)


def test_dropout_before_flatten_trains_in_bnn_mode():
    """Sign -> Dropout -> Flatten -> BinaryDense: the masked packed
    activations are flattened with their mask and equal the float path."""
    import pybnn.nn as nn
    rng = np.random.default_rng(12)
    # exactly +-1 inputs: the "bc" HardTanh passes them unchanged
    x = np.where(rng.standard_normal((3, 2, 3, 70)) < 0, -1.0, 1.0).astype(np.float32)
    outs = []
    for mode in ("bnn", "bc"):
        act = nn.Sign() if mode == "bnn" else nn.HardTanh()
        net = nn.Sequential([act, nn.Dropout(0.5, seed=3), nn.Flatten(),
                             nn.BinaryDense(2 * 3 * 70, 4, rng=np.random.default_rng(1))])
        h = x
        for layer in net.layers:
            h = layer.forward(h, True)
        g = np.ones_like(h)
        for layer in reversed(net.layers[1:]):
            g = layer.backward(g)
        outs.append((h, g, net.layers[3].W.grad.copy()))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_array_equal(outs[0][2], outs[1][2])


@pytest.mark.parametrize("first", [True, False])
def test_float_path_works_image_tile_by_tile(monkeypatch, first):
    """The float path (uint8 pixels, float activations) builds the patch
    matrix of a few images at a time: with one image per tile, forward and
    the input gradient are the whole batch's, the weight gradient the same
    sum in another order, and the largest array it allocates is bounded by
    a tile, not the batch."""
    import tracemalloc

    import pybnn.nn.conv as conv_mod
    rng = np.random.default_rng(12)
    n = 9
    if first:
        x = rng.integers(0, 256, (n, 10, 11, 3), dtype=np.uint8)
    else:
        x = rng.uniform(-1, 1, (n, 10, 11, 3)).astype(np.float32)
    g = rng.standard_normal((n, 10, 11, 5)).astype(np.float32)
    runs = []
    for tile_bytes in (1 << 30, 1):
        monkeypatch.setattr(conv_mod, "_TILE_BYTES", tile_bytes)
        layer = BinaryConv2d(3, 5, 3, padding=1, rng=np.random.default_rng(2))
        y = layer.forward(x, True)
        gx = layer.backward(g, input_grad=True)
        runs.append((y, gx, layer.W.grad.copy()))
    (y1, gx1, gw1), (y2, gx2, gw2) = runs
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(gx1, gx2)
    np.testing.assert_allclose(gw1, gw2, rtol=1e-5, atol=1e-5)
    # one image per tile: no allocation near the batch's patch matrix
    layer = BinaryConv2d(3, 5, 3, padding=1, rng=np.random.default_rng(2))
    layer.forward(x, True)
    whole = n * 10 * 11 * 27 * 4
    tracemalloc.start()
    try:
        layer.backward(g, input_grad=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < whole / 2, (peak, whole)
