"""The backward products of a binary convolution on the bits
(bnn_conv2d_grad_* through _core) and the int8 rounding they use
(bnn_quantize_i8): bitwise the shared oracles on every kernel set and
thread count, over ragged geometries (channels around the 32/64-bit
words, filters around the 252-row integer chunk, outputs around the
1008-position weight tile, strides, dilation, asymmetric padding, both
pad values); and the conv layer's backward on them."""
import numpy as np
import pytest

from oracles import conv_grad_input, conv_grad_weights, pm1, quantize_i8

import pybnn
from pybnn import _core
from pybnn.nn import BinaryConv2d
from pybnn.nn.conv import _col2im, _im2col


def _same(x, y):
    np.testing.assert_array_equal(np.asarray(x, np.float32).view(np.uint32),
                                  np.asarray(y, np.float32).view(np.uint32))


@pytest.mark.parametrize("rows,k", [(1, 1), (3, 7), (5, 64), (2, 1030), (17, 33), (3, 50)])
@pytest.mark.parametrize("by_column", [False, True])
def test_quantize_i8_matches_the_oracle(each_isa, restore_num_threads, rows, k, by_column):
    rng = np.random.default_rng(rows * 100 + k)
    a = (rng.standard_normal((rows, k)) * rng.choice([1e-3, 1.0, 40.0], (rows, 1))).astype(np.float32)
    a[0, 0] = 0.0
    if rows > 2:
        a[2] = 0.0                                     # a zero row
    if k > 3:
        a[:, 3] = 0.0                                  # a zero column
    a[-1, -1] = np.nan
    for seed, counter in ((0, 0), (7, 3), (2 ** 63 + 5, 2 ** 64 - 2)):
        want_q, want_s = quantize_i8(a, seed, counter, by_column)
        for threads in (1, 3):
            pybnn.set_num_threads(threads)
            q, s = _core.quantize_i8(a, seed, counter, by_column)
            np.testing.assert_array_equal(q, want_q)
            _same(s, want_s)


def test_quantize_i8_is_unbiased_and_bounded():
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((3, 500)) * np.array([[1e-3], [5.0], [0.0]])).astype(np.float32)
    a[0, 7] = -1e-2                                       # the largest |a| of row 0
    q, scale = _core.quantize_i8(a, 0, 0)
    assert q.dtype == np.int8 and scale.dtype == np.float32
    assert q[0, 7] <= -126 and scale[2] == 0 and not q[2].any()
    err = q * scale[:, None].astype(np.float64) - a
    assert np.all(np.abs(err) <= scale[:, None] * (1 + 1e-5))   # one step at most
    draws = np.mean([_core.quantize_i8(a, 1, 1500 * s)[0].astype(np.float64)
                     for s in range(400)], axis=0) * scale[:, None]
    # the mean of 400 draws: within 4 standard errors (<= scale/2/sqrt(400)) of a
    assert np.all(np.abs(draws - a) <= 4 * scale[:, None] * 0.5 / 20 + 1e-12)
    qt, st = _core.quantize_i8(np.ascontiguousarray(a.T), 0, 0, by_column=True)
    assert qt.shape == (3, 500) and st.shape == (3,)


# (n, h, w, c, o, kernel, stride, padding, dilation)
GEOMS = [
    (2, 5, 6, 70, 13, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    (1, 7, 5, 33, 9, (3, 2), (2, 1), (0, 2, 1, 0), (1, 1)),
    (2, 6, 7, 130, 5, (2, 3), (1, 2), (2, 1, 0, 1), (2, 1)),
    (3, 4, 4, 20, 260, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    (2, 24, 24, 64, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),   # 1152 outputs: two tiles
    (1, 3, 3, 8, 4, (3, 3), (1, 1), (3, 3, 3, 3), (1, 1)),      # outputs that see only padding
]


def _case(geom, seed):
    n, h, w, c, o, kernel, stride, padding, dilation = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    W = rng.standard_normal((o,) + kernel + (c,)).astype(np.float32)
    xp, wp = pybnn.pack(x), pybnn.pack(W)
    oh, ow = pybnn.conv2d_output_shape(h, w, kernel, stride, padding, dilation)
    g = rng.standard_normal((n * oh * ow, o)).astype(np.float32)
    g[::5] = 0.0
    return xp, wp, g


@pytest.mark.parametrize("geom", GEOMS, ids=lambda g: "x".join(map(str, g[:5])))
@pytest.mark.parametrize("pad_value", [0, 1])
def test_conv_grads_match_the_oracles(each_isa, restore_num_threads, geom, pad_value):
    n, h, w, c, o, kernel, stride, padding, dilation = geom
    xp, wp, g = _case(geom, sum(geom[:5]) + pad_value)
    x_pm1, w_pm1 = xp.unpack(), wp.unpack()
    qt, sct = quantize_i8(g, 5, 11, by_column=True)
    q, sc = quantize_i8(g, 5, 11)
    gw0 = np.random.default_rng(1).standard_normal((o, kernel[0] * kernel[1] * c)).astype(np.float32)
    want = {
        "w": conv_grad_weights(x_pm1, g, kernel, stride, padding, dilation, pad_value),
        "w_acc": conv_grad_weights(x_pm1, g, kernel, stride, padding, dilation, pad_value, gw0),
        "w8": conv_grad_weights(x_pm1, None, kernel, stride, padding, dilation, pad_value,
                                qt=qt, scale=sct),
        "w8_acc": conv_grad_weights(x_pm1, None, kernel, stride, padding, dilation, pad_value,
                                    gw0, qt=qt, scale=sct),
        "x": conv_grad_input(w_pm1, g, x_pm1.shape, stride, padding, dilation),
        "x8": conv_grad_input(w_pm1, None, x_pm1.shape, stride, padding, dilation, q=q, scale=sc),
    }
    geo = (stride, dilation, padding, pad_value)
    for threads in (1, 3):
        pybnn.set_num_threads(threads)
        ws = _core.conv2d_grad_workspace(n, h, w, c, o, *kernel, *geo)
        got = {}
        for key, grad, scale, acc in (("w", g, None, False), ("w_acc", g, None, True),
                                      ("w8", qt, sct, False), ("w8_acc", qt, sct, True)):
            out = gw0.copy() if acc else np.full_like(gw0, np.nan)
            _core.conv2d_grad_weights(xp.words, c, *kernel, grad, out, *geo, ws, scale=scale,
                                      accumulate=acc)
            got[key] = out
        for key, grad, scale in (("x", g, None), ("x8", q, sc)):
            out = np.full(x_pm1.shape, np.nan, np.float32)
            _core.conv2d_grad_input(wp.words, c, grad, out, *geo, ws, scale=scale)
            got[key] = out
        for key in want:
            _same(got[key], want[key])


def test_conv_grads_agree_with_float_im2col():
    """The oracles themselves against the float im2col/col2im products
    (float64 sums): the definitions are the convolution's gradients."""
    geom = GEOMS[1]
    n, h, w, c, o, kernel, stride, padding, dilation = geom
    for pad_value in (0, 1):
        xp, wp, g = _case(geom, 3)
        x_pm1 = xp.unpack()
        cols4 = _im2col(x_pm1, *kernel, stride, padding, dilation, pad_value)
        cols = cols4.reshape(g.shape[0], -1).astype(np.float64)
        np.testing.assert_allclose(
            conv_grad_weights(x_pm1, g, kernel, stride, padding, dilation, pad_value),
            g.T.astype(np.float64) @ cols, rtol=1e-5, atol=1e-4)
        gcols = g.astype(np.float64) @ wp.unpack().reshape(o, -1).astype(np.float64)
        want = _col2im(gcols.reshape(cols4.shape).astype(np.float32), x_pm1.shape, *kernel,
                       stride, padding, dilation)
        np.testing.assert_allclose(conv_grad_input(wp.unpack(), g, x_pm1.shape, stride, padding,
                                                   dilation), want, rtol=1e-5, atol=1e-4)


def test_conv_grad_errors():
    xp, wp, g = _case(GEOMS[0], 0)
    n, h, w, c, o, kernel, stride, padding, dilation = GEOMS[0]
    geo = (stride, dilation, padding, 0)
    ws = _core.conv2d_grad_workspace(n, h, w, c, o, *kernel, *geo)
    gw = np.empty((o, 9 * c), np.float32)
    with pytest.raises(ValueError, match="workspace|argument|invalid"):
        _core.conv2d_grad_weights(xp.words, c, *kernel, g, gw, *geo, ws[:1])
    with pytest.raises(ValueError, match="grad must be"):
        _core.conv2d_grad_weights(xp.words, c, *kernel, g[1:], gw, *geo, ws)
    with pytest.raises(ValueError, match="gw must be"):
        _core.conv2d_grad_weights(xp.words, c, *kernel, g, np.empty((o, 9 * c - 1), np.float32),
                                  *geo, ws)
    with pytest.raises(ValueError, match="q must be"):
        _core.conv2d_grad_input(wp.words, c, g.astype(np.int8)[1:],
                                np.empty((n, h, w, c), np.float32), *geo, ws,
                                scale=np.ones(g.shape[0], np.float32))


@pytest.mark.parametrize("backward", ["float", "int8"])
def test_binary_conv_layer_backward_on_bits(backward):
    """The layer's backward with a packed input is the oracles' products
    (the weight gradient accumulates across calls), its int8 rounding
    position is state, and the float one is close to the float im2col
    gradients."""
    rng = np.random.default_rng(8)
    x = pybnn.pack(rng.standard_normal((2, 6, 5, 70)).astype(np.float32))
    layer = BinaryConv2d(70, 11, 3, padding=1, rng=np.random.default_rng(2), backward=backward,
                         seed=9)
    y = layer.forward(x, True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    layer.W.zero_grad()
    gx = layer.backward(g)
    g2 = g.reshape(-1, 11)
    geom = ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0)
    if backward == "float":
        want_w = conv_grad_weights(x.unpack(), g2, *geom)
        want_x = conv_grad_input(pm1(layer.W.value), g2, x.shape, *geom[1:4])
    else:
        qt, sct = quantize_i8(g2, 9, 0, by_column=True)
        q, sc = quantize_i8(g2, 9, g2.size)
        want_w = conv_grad_weights(x.unpack(), None, *geom, qt=qt, scale=sct)
        want_x = conv_grad_input(pm1(layer.W.value), None, x.shape, *geom[1:4], q=q, scale=sc)
    _same(layer.W.grad.reshape(11, -1), want_w)
    _same(gx, want_x)
    ref = BinaryConv2d(70, 11, 3, padding=1, rng=np.random.default_rng(2))
    ref.forward(x.unpack(), True)                        # float input: the im2col path
    ref.W.zero_grad()
    gx_ref = ref.backward(g)
    tol = 1e-4 if backward == "float" else 0.05 * np.abs(gx_ref).max()
    np.testing.assert_allclose(gx, gx_ref, atol=tol, rtol=1e-4 if backward == "float" else 0)
    layer.forward(x, True)
    layer.backward(g)                                    # accumulates
    if backward == "float":
        _same(layer.W.grad.reshape(11, -1), conv_grad_weights(x.unpack(), g2, *geom, want_w))
    else:
        state = layer.state_dict()
        assert int(state["qstate"][1]) == 4 * g2.size
        twin = BinaryConv2d(70, 11, 3, padding=1, rng=np.random.default_rng(2),
                            backward="int8", seed=9)
        twin.load_state_dict(state)
        layer.forward(x, True)
        twin.forward(x, True)
        _same(layer.backward(g), twin.backward(g))
    with pytest.raises(ValueError, match="backward must be"):
        BinaryConv2d(3, 3, 3, backward="int4")


def test_first_layer_on_pixels_is_the_float_product():
    """A binary conv on raw uint8 pixels runs on the 8-bit kernel (no patch
    matrix); its floats are those of the float product of x/128 - 1, which
    is exact: bitwise the same."""
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (3, 9, 7, 3), dtype=np.uint8)
    x[0, :3, :3] = 128                                   # all-zero windows too
    layer = BinaryConv2d(3, 10, 3, padding=1, rng=np.random.default_rng(1))
    y = layer.forward(x, True)
    cols = _im2col(pybnn.nn.base.scale_input(x), 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 0)
    want = cols @ pm1(layer.W.value).reshape(10, -1).T.astype(np.float32)
    np.testing.assert_array_equal(y, want)               # values (zeros of either sign)
    assert layer.kept_bytes() == x.nbytes                # it keeps the pixels
    layer.backward(np.ones_like(y), input_grad=False)


def test_auto_backward_resolves_per_kernel_set():
    """backward="auto" is int8 on the x86 SIMD kernel sets and float on the
    reference kernels, decided when the layer is built; a wrong name is an
    error that lists the choices."""
    from pybnn.nn.dense import resolve_backward
    want = "float" if pybnn.isa() == "ref" else "int8"
    assert resolve_backward("auto") == want
    assert resolve_backward("float") == "float" and resolve_backward("int8") == "int8"
    from pybnn.nn import BinaryDense
    assert BinaryConv2d(3, 4, 3, backward="auto").backward_kind == want
    assert BinaryDense(5, 4, backward="auto").backward_kind == want
    with pytest.raises(ValueError, match="float, int8, auto"):
        BinaryDense(5, 4, backward="bf16")
