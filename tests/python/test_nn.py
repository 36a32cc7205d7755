"""Training layers of pybnn.nn / pybnn.losses / pybnn.optim.

- Gradients ("fp" mode): BinaryDense (input and W), BatchNorm "standard"
  (input, gamma, beta; training forward; [N, C] and NHWC), squared hinge
  and softmax cross-entropy, against central differences along random
  directions (float64 perturbations of float32 layers, L = sum(y * R)).
  "bc" mode: W gets the straight-through gradient R^T x, x gets R sign(W).
- Sign / HardTanh: "bnn" Sign gives pybnn.pack(x); the STE passes the
  gradient where |x| <= 1 (inclusive at +-1, blocked at nextafter(1, 2));
  "bc"/"fp" Sign is HardTanh; NHWC and ragged K; stochastic Sign.
- Dropout after a "bnn" Sign: the masked XNOR product equals
  (a * keep / (1 - p)) @ sign(W)^T exactly (one float32 rounding of the
  integer times the scale), equals the "bc" arithmetic on the same mask
  (exact for power-of-two scales), same gradients; any K / p (hypothesis);
  eval is the identity.  BatchNorm's recomputed input (from the packed
  bits) gives the same gradients as a stored input.
- Folded evaluation of a trained "bnn" MLP (synthetic data; MNIST too when
  ../shared/data/mnist exists; standard and shift batch norm): predict()
  equals a float64 model of the folded network bit for bit, on every ISA;
  against forward(training=False) the hidden signs may differ only where
  the float64 pre-sign value is within double rounding of 0 (none seen),
  and scores agree within 2^-22 of the batch-norm terms (observed max
  2^-23.1, ~1e-6 absolute); fold_threshold on
  BatchNorm.affine() matches float64 sign(scale*s + offset) for every s in
  [-K, K] (first and second layer, negative and zero gamma included);
  the first layer's float pre-activation * 128 == gemm_u8 exactly.
- Optimizers: adam / adamax / shift_adamax over several steps against the
  numpy formulas of bnn_opt_step (include/bnn.h), clipping and lr_scale of
  binary parameters only; ExponentialDecay, StepHalving.
- Determinism: bit-identical parameters after 5 steps for 1 and 2 libbnn
  threads (BLAS pinned to 1 thread), deterministic and stochastic Sign.
- Learning: a "bnn" MLP fits a separable synthetic problem.
- Errors name the layer; loss label checks; predict dtype; unknown mode.
- Regression tests for bugs found and fixed are at the end.
"""
from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pybnn
from pybnn import losses, nn, optim

F32 = np.float32
ONE = F32(1)
ABOVE_ONE = np.nextafter(ONE, F32(2))
BELOW_ONE = np.nextafter(ONE, F32(0))


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def sign_pm1(a):
    """+-1 float64 with the bit contract's sign(0) = +1 (x < 0 -> -1)."""
    return np.where(np.asarray(a) < 0, -1.0, 1.0)


def ap2_ref(z):
    """AP2 of include/bnn.h via frexp (mantissa vs 0.70710678118654752)."""
    z = np.asarray(z, dtype=np.float64)
    m, e = np.frexp(np.abs(z))
    e = np.where(m >= 0.70710678118654752, e, e - 1)
    return np.where(z == 0, 0.0, np.copysign(np.ldexp(1.0, e), z))


def check_directional(f, x0, grad, rng, eps, rtol, directions=4):
    """Central differences of the scalar f along random directions d
    against <grad, d>.  Tolerance: rtol * (|<grad, d>| + ||grad||), the
    second term being the typical size of <grad, d> for Gaussian d (so a
    direction that happens to be nearly orthogonal to grad does not make
    the check vacuous or flaky)."""
    x0 = np.asarray(x0, dtype=np.float64)
    g = np.asarray(grad, dtype=np.float64)
    assert g.shape == x0.shape
    gnorm = float(np.linalg.norm(g))
    assert gnorm > 0
    for _ in range(directions):
        d = rng.standard_normal(x0.shape)
        num = (f(x0 + eps * d) - f(x0 - eps * d)) / (2 * eps)
        ana = float(np.sum(g * d))
        tol = rtol * (abs(ana) + gnorm)
        assert abs(num - ana) <= tol, (num, ana, tol)


def snapshot(model):
    """Every piece of trainable/statistical state, as raw bytes."""
    out = []
    for layer in model.layers:
        for p in layer.parameters():
            out.append(p.value.tobytes())
        if isinstance(layer, nn.BatchNorm):
            out += [layer.running_mean.tobytes(), layer.running_invstd.tobytes()]
        if layer.family == "activation":
            out.append(layer.counter)
    return out


def train_steps(model, x, y, steps, batch, kind="adam", lr=0.01, loss=losses.squared_hinge):
    opt = optim.Optimizer(model.parameters(), kind, lr=lr)
    history = []
    for step in range(steps):
        i = (step * batch) % len(x)
        xb, yb = x[i:i + batch], y[i:i + batch]
        opt.zero_grad()
        value, g = loss(model.forward(xb, training=True), yb)
        model.backward(g)
        opt.step()
        history.append(value)
    return history


# ---------------------------------------------------------------------------
# 1. Gradients against central differences ("fp" mode)
# ---------------------------------------------------------------------------
def test_binary_dense_gradients_fp():
    rng = np.random.default_rng(11)
    layer = nn.BinaryDense(37, 13, binary=False, rng=np.random.default_rng(1))
    assert not layer.W.binary and layer.W.lr_scale == 1.0
    x = rng.standard_normal((9, 37)).astype(F32)
    R = rng.standard_normal((9, 13))
    W0 = layer.W.value.copy()

    layer.forward(x, True)
    gx = layer.backward(R.astype(F32))
    gW = layer.W.grad.copy()

    def loss_x(xx):
        return float(np.sum(layer.forward(xx.astype(F32), False).astype(np.float64) * R))

    def loss_w(ww):
        layer.W.value[...] = ww.astype(F32)
        try:
            return float(np.sum(layer.forward(x, False).astype(np.float64) * R))
        finally:
            layer.W.value[...] = W0

    # the layer is linear: only float32 rounding separates the two sides
    check_directional(loss_x, x, gx, rng, eps=1e-2, rtol=1e-4)
    check_directional(loss_w, W0, gW, rng, eps=1e-2, rtol=1e-4)
    # and the closed forms
    np.testing.assert_allclose(gx, R @ W0.astype(np.float64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gW, R.T @ x.astype(np.float64), rtol=1e-5, atol=1e-5)
    # gradients accumulate until zero_grad
    layer.forward(x, True)
    layer.backward(R.astype(F32))
    np.testing.assert_allclose(layer.W.grad, 2 * gW, rtol=1e-6, atol=1e-6)


def test_binary_dense_gradients_bc_straight_through():
    """Binary weights ("bc"): forward uses sign(W); x's gradient is R sign(W),
    W's (latent) gradient is the straight-through R^T x."""
    rng = np.random.default_rng(12)
    layer = nn.BinaryDense(70, 9, rng=np.random.default_rng(2))
    layer.W.value[0, :3] = [0.0, -0.0, 1e-30]          # sign(0) = +1
    x = rng.standard_normal((5, 70)).astype(F32)
    R = rng.standard_normal((5, 9)).astype(F32)
    Wpm1 = sign_pm1(layer.W.value)
    y = layer.forward(x, True)
    np.testing.assert_allclose(y, x.astype(np.float64) @ Wpm1.T, rtol=1e-5, atol=1e-5)
    gx = layer.backward(R)
    np.testing.assert_allclose(gx, R.astype(np.float64) @ Wpm1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.W.grad, R.T.astype(np.float64) @ x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(16, 6), (2, 3, 4, 5)], ids=["NC", "NHWC"])
def test_batchnorm_standard_gradients_fp(shape):
    rng = np.random.default_rng(13)
    c = shape[-1]
    bn = nn.BatchNorm(c, kind="standard")
    g0 = rng.uniform(0.5, 2.0, c).astype(F32)
    g0[0] = -g0[0]
    b0 = rng.standard_normal(c).astype(F32)
    bn.gamma.value[...] = g0
    bn.beta.value[...] = b0
    x = (rng.standard_normal(shape) * 3 + 1).astype(F32)
    R = rng.standard_normal(shape)

    y = bn.forward(x, True)
    # the training forward is batch norm with the batch statistics
    x2 = x.reshape(-1, c).astype(np.float64)
    mu, var = x2.mean(0), x2.var(0)
    ref = g0 * (x2 - mu) / np.sqrt(var + bn.eps) + b0
    np.testing.assert_allclose(y.reshape(-1, c), ref, rtol=1e-5, atol=1e-5)

    gx = bn.backward(R.astype(F32))
    assert gx.shape == x.shape
    gg, gb = bn.gamma.grad.copy(), bn.beta.grad.copy()

    def loss(xx=x, g=g0, b=b0):
        bn.gamma.value[...] = np.asarray(g, dtype=F32)
        bn.beta.value[...] = np.asarray(b, dtype=F32)
        try:
            out = bn.forward(np.asarray(xx, dtype=F32), True)
        finally:
            bn.gamma.value[...] = g0
            bn.beta.value[...] = b0
        return float(np.sum(out.astype(np.float64) * R))

    # float32 forward, eps 1e-2: observed error <= 2.7e-5 of the scale over
    # 30 seeds; 3e-4 still catches a gradient that is 0.3% off
    check_directional(lambda v: loss(xx=v), x, gx, rng, eps=1e-2, rtol=3e-4)
    check_directional(lambda v: loss(g=v), g0, gg, rng, eps=1e-2, rtol=3e-4)
    check_directional(lambda v: loss(b=v), b0, gb, rng, eps=1e-2, rtol=3e-4)
    # beta's gradient is sum(R) per channel
    np.testing.assert_allclose(gb, R.reshape(-1, c).sum(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", [losses.softmax_cross_entropy, losses.squared_hinge],
                         ids=["softmax_ce", "squared_hinge"])
def test_sequential_fp_gradients_end_to_end(loss):
    """Sequential.backward in "fp" mode: the gradient of the loss w.r.t. all
    parameters at once (uint8 input scaled in the first layer).  No HardTanh
    here: its kinks make whole-network differences noisy (its gradient is
    checked exactly below)."""
    rng = np.random.default_rng(16)
    r = np.random.default_rng(17)
    net = nn.Sequential([nn.BinaryDense(30, 20, binary=False, rng=r), nn.BatchNorm(20),
                         nn.BinaryDense(20, 5, binary=False, rng=r), nn.BatchNorm(5)])
    assert net.mode == "fp"
    x = rng.integers(0, 256, (32, 30), dtype=np.uint8)
    y = rng.integers(0, 5, 32)
    params = net.parameters()
    for bn in (net.layers[1], net.layers[3]):
        bn.gamma.value[...] = rng.uniform(0.5, 1.5, bn.features)
        bn.beta.value[...] = rng.standard_normal(bn.features) * 0.3
    shapes = [p.value.shape for p in params]
    sizes = [p.value.size for p in params]
    flat0 = np.concatenate([p.value.ravel() for p in params]).astype(np.float64)

    def set_flat(v):
        for p, chunk in zip(params, np.split(v, np.cumsum(sizes)[:-1])):
            p.value[...] = chunk.reshape(p.value.shape).astype(F32)

    net.zero_grad()
    assert net.backward(loss(net.forward(x, training=True), y)[1]) is None
    grad = np.concatenate([p.grad.ravel() for p in params])
    assert [p.grad.shape for p in params] == shapes

    def f(v):
        set_flat(v)
        try:
            return loss(net.forward(x, training=True), y)[0]
        finally:
            set_flat(flat0)

    # observed <= 6e-5 over 8 seeds at eps 1e-3
    check_directional(f, flat0, grad, rng, eps=1e-3, rtol=1e-3)


def test_squared_hinge_value_and_gradient():
    loss, g = losses.squared_hinge(np.array([[2.0, -0.5]]), np.array([0]))
    # targets (+1, -1): margins max(0, 1 - (2, 0.5)) = (0, 0.5) -> mean 0.125
    assert loss == pytest.approx(0.125)
    np.testing.assert_allclose(g, [[0.0, 2 * 0.5 / 2]])
    assert g.dtype == np.float32

    rng = np.random.default_rng(14)
    scores = rng.standard_normal((8, 5)) * 1.5
    labels = rng.integers(0, 5, 8)
    value, grad = losses.squared_hinge(scores, labels)
    assert grad.shape == scores.shape
    t = -np.ones_like(scores)
    t[np.arange(8), labels] = 1
    assert value == pytest.approx(np.mean(np.maximum(0, 1 - t * scores) ** 2), rel=1e-12)
    # piecewise quadratic: central differences are exact away from kinks
    check_directional(lambda s: losses.squared_hinge(s, labels)[0], scores, grad, rng,
                      eps=1e-6, rtol=1e-5)


def test_softmax_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(15)
    scores = rng.standard_normal((7, 4)) * 2
    labels = rng.integers(0, 4, 7)
    value, grad = losses.softmax_cross_entropy(scores, labels)
    logp = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    assert value == pytest.approx(-logp[np.arange(7), labels].mean(), rel=1e-12)
    assert grad.dtype == np.float32
    check_directional(lambda s: losses.softmax_cross_entropy(s, labels)[0], scores, grad, rng,
                      eps=1e-5, rtol=1e-5)
    # large scores stay finite (max subtraction)
    value, grad = losses.softmax_cross_entropy(np.array([[1000.0, 0.0], [0.0, 1000.0]]),
                                               np.array([0, 0]))
    assert value == pytest.approx(500.0)
    assert np.all(np.isfinite(grad))


# ---------------------------------------------------------------------------
# 2. HardTanh and the straight-through estimator
# ---------------------------------------------------------------------------
STE_X = np.array([[-ABOVE_ONE, -ONE, -BELOW_ONE, -0.5, -0.0, 0.0, 1e-30, 0.5, BELOW_ONE, ONE,
                   ABOVE_ONE, 3.0, -3.0, np.inf, -np.inf]], dtype=F32)
STE_PASS = np.abs(STE_X) <= 1


def test_sign_bnn_packs_and_ste():
    sign = nn.Sign()
    assert isinstance(sign, nn.Activation) and sign.binary
    y = sign.forward(STE_X, True)
    assert isinstance(y, pybnn.PackedTensor)
    assert y == pybnn.pack(STE_X)
    np.testing.assert_array_equal(y.unpack(), sign_pm1(STE_X))   # sign(+-0) = +1
    g = np.arange(1, STE_X.size + 1, dtype=F32).reshape(STE_X.shape)
    out = sign.backward(g)
    np.testing.assert_array_equal(out, np.where(STE_PASS, g, 0))
    # inclusive at exactly +-1, blocked just above
    col = {float(v): i for i, v in enumerate(STE_X[0])}
    assert out[0, col[1.0]] == g[0, col[1.0]] and out[0, col[-1.0]] == g[0, col[-1.0]]
    assert out[0, col[float(ABOVE_ONE)]] == 0 and out[0, col[-float(ABOVE_ONE)]] == 0
    # the mask is consumed
    with pytest.raises(ValueError, match="backward without a training forward"):
        sign.backward(g)


def test_sign_bnn_nhwc_ragged_k():
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((2, 3, 4, 70)) * 1.5).astype(F32)
    x.flat[::7] = 1.0
    x.flat[1::7] = -ABOVE_ONE
    sign = nn.Sign()
    y = sign.forward(x, True)
    assert y.shape == x.shape and y == pybnn.pack(x)
    g = rng.standard_normal(x.shape).astype(F32)
    np.testing.assert_array_equal(sign.backward(g), np.where(np.abs(x) <= 1, g, 0))
    # evaluation packs too, and keeps no mask
    assert nn.Sign().forward(x, False) == pybnn.pack(x)


def test_hardtanh_is_the_float_activation():
    """HardTanh() and Activation(binary=False) are one thing: clip(x, -1, 1)
    with the same straight-through gate as the binary sign."""
    for ht in (nn.HardTanh(), nn.Activation(binary=False)):
        assert isinstance(ht, nn.Activation) and not ht.binary
        y = ht.forward(STE_X, True)
        assert isinstance(y, np.ndarray) and y.dtype == np.float32
        np.testing.assert_array_equal(y, np.clip(STE_X, -1, 1))
        g = np.arange(1, STE_X.size + 1, dtype=F32).reshape(STE_X.shape)
        np.testing.assert_array_equal(ht.backward(g), np.where(STE_PASS, g, 0))
        assert list(ht.state_dict()) == ["counter"]
    with pytest.raises(ValueError, match="stochastic"):
        nn.Activation(binary=False, stochastic=True)
    # the model's mode follows from the layers it is built of
    r = np.random.default_rng(0)
    for act, binary, mode in ((nn.Sign, True, "bnn"), (nn.HardTanh, True, "bc"),
                              (nn.HardTanh, False, "fp")):
        m = nn.Sequential([nn.BinaryDense(4, 3, binary=binary, rng=r), nn.BatchNorm(3), act(),
                           nn.BinaryDense(3, 2, binary=binary, rng=r), nn.BatchNorm(2)])
        assert m.mode == mode


def test_stochastic_sign():
    rng = np.random.default_rng(22)
    x = rng.uniform(-1.5, 1.5, (400, 100)).astype(F32)
    s1, s2 = nn.Sign(stochastic=True, seed=5), nn.Sign(stochastic=True, seed=5)
    a, b = s1.forward(x, True), s2.forward(x, True)
    assert a == b and s1.counter == s2.counter == x.size
    c = s1.forward(x, True)                         # the counter moved on
    assert c != a and s1.counter == 2 * x.size
    # saturated inputs are deterministic, the rest follows hardsigmoid
    plus = a.unpack() > 0
    assert np.all(plus[x >= 1]) and not np.any(plus[x <= -1])
    mid = np.abs(x) < 0.9
    p = np.clip((x + 1) / 2, 0, 1)
    assert abs(plus[mid].mean() - p[mid].mean()) < 0.01
    # STE mask from the real input; eval is deterministic
    g = np.ones_like(x)
    np.testing.assert_array_equal(s1.backward(g), (np.abs(x) <= 1).astype(F32))
    assert s1.forward(x, False) == pybnn.pack(x)


# ---------------------------------------------------------------------------
# 3. Masked XNOR (Dropout after a "bnn" Sign)
# ---------------------------------------------------------------------------
def _dropout_net(mode, p, k, m):
    act = nn.Sign() if mode == "bnn" else nn.HardTanh()
    return nn.Sequential([act, nn.Dropout(p, seed=5),
                          nn.BinaryDense(k, m, rng=np.random.default_rng(1))])


@pytest.mark.parametrize("p", [0.5, 0.75, 0.25, 0.1, 0.3])
def test_masked_xnor_dropout(p):
    k, m, n = 130, 17, 37
    rng = np.random.default_rng(31)
    x = sign_pm1(rng.standard_normal((n, k))).astype(F32)   # exactly +-1: STE passes all
    bnn_net, bc_net = _dropout_net("bnn", p, k, m), _dropout_net("bc", p, k, m)

    h = bnn_net.layers[0].forward(x, True)
    assert h == pybnn.pack(x)
    hd = bnn_net.layers[1].forward(h, True)
    keep = bnn_net.layers[1].last_keep
    assert keep.shape == (n, k) and 0 < keep.mean() < 1
    y = bnn_net.layers[2].forward(hd, True)
    assert y.dtype == np.float32

    scale = F32(1 / (1 - p))
    sw = bnn_net.layers[2].weights_pm1().astype(np.float64)
    ints = (x * keep) @ sw.T                      # exact integers
    # one float32 rounding of integer * float32 scale (the float64 product
    # of the two float32 values is exact)
    np.testing.assert_array_equal(y, (ints * np.float64(scale)).astype(F32))
    np.testing.assert_array_equal(
        np.asarray(hd.unpack()), np.where(keep, x * scale, F32(0)))

    # the same mask in "bc" arithmetic (float dropout, float matmul)
    h_bc = bc_net.layers[1].forward(bc_net.layers[0].forward(x, True), True)
    np.testing.assert_array_equal(bc_net.layers[1].last_keep, keep)
    y_bc = bc_net.layers[2].forward(h_bc, True)
    if scale in (F32(2), F32(4)):                 # sums of powers of two: exact
        np.testing.assert_array_equal(y, y_bc)
    else:                                         # float32 summation in "bc"
        np.testing.assert_allclose(y, y_bc, rtol=0, atol=k * float(scale) * 2.0 ** -22)

    # backward: identical gradients in both modes (layer by layer:
    # Sequential.backward does not return the input gradient)
    g = rng.standard_normal(y.shape).astype(F32)
    gx, gx_bc = g, g
    for a, b in zip(reversed(bnn_net.layers), reversed(bc_net.layers)):
        gx, gx_bc = a.backward(gx), b.backward(gx_bc)
    np.testing.assert_array_equal(gx, gx_bc)
    np.testing.assert_array_equal(bnn_net.layers[2].W.grad, bc_net.layers[2].W.grad)
    # the sum over the outputs: libbnn's ordered float sum where the layer
    # uses it (pm1_input_grad), else BLAS's
    from oracles import gemm_f32_pm1
    from pybnn.nn.dense import pm1_input_grad
    gs = gemm_f32_pm1(g, sw) if pm1_input_grad() else g @ sw.astype(F32)
    np.testing.assert_allclose(gx, np.where(keep, gs * scale, 0), rtol=1e-6, atol=1e-6)


@settings(deadline=None)
@given(n=st.integers(1, 9), k=st.integers(1, 200), m=st.integers(1, 12),
       p=st.sampled_from([0.05, 0.2, 0.5, 0.6, 0.9]), seed=st.integers(0, 2 ** 32 - 1))
def test_masked_xnor_any_shape(n, k, m, p, seed):
    """The masked product is exact for ragged K (pad bits), any p and mask."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k)).astype(F32)
    net = nn.Sequential([nn.Sign(), nn.Dropout(p, seed=seed),
                         nn.BinaryDense(k, m, rng=rng)])
    h = net.layers[1].forward(net.layers[0].forward(x, True), True)
    keep = net.layers[1].last_keep
    y = net.layers[2].forward(h, True)
    ints = (sign_pm1(x) * keep) @ net.layers[2].weights_pm1().astype(np.float64).T
    np.testing.assert_array_equal(y, (ints * np.float64(F32(1 / (1 - p)))).astype(F32))


def test_masked_xnor_with_real_inputs_and_training_path():
    """Real-valued Sign inputs through a whole bnn Sign-Dropout-Dense chain
    inside Sequential.forward equal the float reference."""
    rng = np.random.default_rng(32)
    r = np.random.default_rng(3)
    net = nn.Sequential([nn.BinaryDense(50, 200, rng=r), nn.Sign(), nn.Dropout(0.3, seed=9),
                         nn.BinaryDense(200, 7, rng=r)])
    x = rng.integers(0, 256, (11, 50), dtype=np.uint8)
    y = net.forward(x, training=True)
    keep = net.layers[2].last_keep
    h = nn.scale_input(x).astype(np.float64) @ net.layers[0].weights_pm1().T.astype(np.float64)
    ints = (sign_pm1(h) * keep) @ net.layers[3].weights_pm1().T.astype(np.float64)
    np.testing.assert_array_equal(y, (ints * np.float64(F32(1 / 0.7))).astype(F32))


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_batchnorm_recomputed_input_gives_same_gradients(p):
    """In "bnn" mode a BatchNorm after a binary layer recomputes its input
    from the layer's kept (packed / uint8) input in backward instead of
    storing it: the gradients must equal those of a stored-input run."""
    rng = np.random.default_rng(34)
    x = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    y = rng.integers(0, 5, 40)

    def run(recompute):
        r = np.random.default_rng(8)
        net = nn.Sequential([nn.BinaryDense(50, 70, rng=r), nn.BatchNorm(70), nn.Sign(),
                             nn.Dropout(p, seed=2), nn.BinaryDense(70, 5, rng=r),
                             nn.BatchNorm(5)])
        if not recompute:
            for layer in net.layers:
                if isinstance(layer, nn.BatchNorm):
                    layer.recompute = None
        value, g = losses.squared_hinge(net.forward(x, training=True), y)
        net.backward(g)
        return [p_.grad.copy() for p_ in net.parameters()], net

    grads, net = run(True)
    assert all(isinstance(l, nn.BatchNorm) and l.recompute is not None
               for l in (net.layers[1], net.layers[5]))
    ref, _ = run(False)
    for a, b in zip(grads, ref):
        np.testing.assert_array_equal(a, b)
    assert all(np.any(a != 0) for a in grads)


def test_dropout_eval_is_identity():
    rng = np.random.default_rng(33)
    x = rng.standard_normal((6, 70)).astype(F32)
    d = nn.Dropout(0.5, seed=1)
    assert d.forward(x, False) is x
    packed = pybnn.pack(x)
    assert d.forward(packed, False) is packed
    g = rng.standard_normal(x.shape).astype(F32)
    assert d.backward(g) is g                      # after eval: pass-through
    assert nn.Dropout(0.0).forward(x, True) is x

    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    with_d = nn.Sequential([nn.BinaryDense(70, 30, rng=r1), nn.BatchNorm(30), nn.Sign(),
                            nn.Dropout(0.4, seed=3), nn.BinaryDense(30, 5, rng=r1),
                            nn.BatchNorm(5)])
    without = nn.Sequential([nn.BinaryDense(70, 30, rng=r2), nn.BatchNorm(30), nn.Sign(),
                             nn.BinaryDense(30, 5, rng=r2), nn.BatchNorm(5)])
    xu = rng.integers(0, 256, (9, 70), dtype=np.uint8)
    np.testing.assert_array_equal(with_d.forward(xu, training=False),
                                  without.forward(xu, training=False))
    with_d.eval()
    without.eval()
    np.testing.assert_array_equal(with_d.predict(xu)[0], without.predict(xu)[0])

    # training keeps ~1 - p of the elements, scaled by 1/(1 - p)
    d = nn.Dropout(0.25, seed=2)
    big = np.ones((200, 500), F32)
    out = d.forward(big, True)
    assert set(np.unique(out)) <= {0.0, F32(1 / 0.75)}
    assert abs((out != 0).mean() - 0.75) < 0.01


# ---------------------------------------------------------------------------
# 4. Folded evaluation
# ---------------------------------------------------------------------------
# ../shared/data/mnist from the repository root (PYBNN_MNIST_DIR overrides)
MNIST_DIR = Path(os.environ.get("PYBNN_MNIST_DIR", Path(__file__).resolve().parent
                                / ".." / ".." / ".." / "shared" / "data" / "mnist"))


def _idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def _data(source):
    if source == "mnist":
        files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz"]
        if not all((MNIST_DIR / f).exists() for f in files):
            pytest.skip("MNIST not found in %s" % MNIST_DIR)
        xtr = _idx(MNIST_DIR / files[0], 16).reshape(-1, 28, 28)[:2000]
        ytr = _idx(MNIST_DIR / files[1], 8)[:2000].astype(np.int64)
        xte = _idx(MNIST_DIR / files[2], 16).reshape(-1, 28, 28)[:5000]
        return xtr, ytr, xte
    rng = np.random.default_rng(41)
    proto = rng.integers(0, 256, (10, 784))
    ytr = rng.integers(0, 10, 2000)
    noise = rng.integers(-60, 61, (2000, 784))
    xtr = np.clip(proto[ytr] + noise, 0, 255).astype(np.uint8)
    xte = rng.integers(0, 256, (5000, 784), dtype=np.uint8)
    return xtr, ytr, xte


@pytest.fixture(scope="module", params=[("synthetic", "standard"), ("synthetic", "shift"),
                                        ("mnist", "standard")],
                ids=["synthetic-standard", "synthetic-shift", "mnist-standard"])
def trained_bnn(request):
    source, kind = request.param
    xtr, ytr, xte = _data(source)
    r = np.random.default_rng(0)
    model = nn.Sequential([
        nn.BinaryDense(784, 64, rng=r), nn.BatchNorm(64, kind), nn.Sign(),
        nn.BinaryDense(64, 64, rng=r), nn.BatchNorm(64, kind), nn.Sign(),
        nn.BinaryDense(64, 10, rng=r), nn.BatchNorm(10, kind)])
    train_steps(model, xtr, ytr, steps=20, batch=100)
    # exercise the fold's flip and constant cases in both hidden layers
    for bn in (model.layers[1], model.layers[4]):
        bn.gamma.value[0] = -abs(bn.gamma.value[0])
        bn.gamma.value[1] = 0.0
        bn.beta.value[1] = -0.25
        bn.gamma.value[2] = -3.0
    model.eval()
    return model, xte, kind


def _independent_affine(bn):
    """float64 (scale, offset) of a BatchNorm's eval map, from include/bnn.h."""
    g = bn.gamma.value.astype(np.float64)
    ri = bn.running_invstd.astype(np.float64)
    rm = bn.running_mean.astype(np.float64)
    b = bn.beta.value.astype(np.float64)
    scale = ap2_ref(ri) * ap2_ref(g) if bn.kind == "shift" else g * ri
    return scale, b - rm * scale


def _folded_reference(model, x):
    """float64 model of the folded network: integer pre-activations, exact
    float64 signs, and fmaf(s, float32 scale, float32 offset) at the end.
    Returns the float32 scores."""
    d1, bn1, _, d2, bn2, _, d3, bn3 = model.layers
    s = (x.reshape(len(x), -1).astype(np.float64) - 128) @ sign_pm1(d1.W.value).T
    sc, off = _independent_affine(bn1)
    z1 = (sc / 128) * s + off
    s = sign_pm1(z1) @ sign_pm1(d2.W.value).T
    sc, off = _independent_affine(bn2)
    z2 = sc * s + off
    s = sign_pm1(z2) @ sign_pm1(d3.W.value).T
    sc, off = _independent_affine(bn3)
    # s * float32(scale) is exact in float64 (|s| <= 64), so this is one
    # rounding of the exact value, as fmaf gives
    out = (s * sc.astype(F32).astype(np.float64) + off.astype(F32).astype(np.float64)).astype(F32)
    return out


def test_folded_predict_matches_float64_reference(trained_bnn, restore_isa):
    model, xte, _ = trained_bnn
    ref = _folded_reference(model, xte)
    for isa in pybnn.available_isas():          # the same on every ISA
        pybnn.set_isa(isa)
        scores, classes = model.predict(xte)
        assert scores.dtype == np.float32 and scores.shape == (len(xte), 10)
        assert classes.dtype == np.int64
        np.testing.assert_array_equal(scores, ref)
        np.testing.assert_array_equal(classes, np.argmax(ref, axis=1))
    pybnn.set_isa(restore_isa)
    # batch size does not matter
    np.testing.assert_array_equal(model.predict(xte[:300], batch_size=7)[0], scores[:300])


def test_folded_predict_vs_float_eval_path(trained_bnn):
    """predict() (folded integers) against forward(training=False) (float32
    batch norm).  The two round differently: bn_forward_eval evaluates
    (x - mean) * scale + beta in double and rounds once to float32, the
    fold uses scale * s + (beta - mean * scale) in double (hidden layers)
    and fmaf(s, float32 scale, float32 offset) (last layer).  So a hidden
    sign can only differ where the float64 pre-sign value is within double
    rounding of 0 (asserted: |z| <= 2^-40 of its terms; none seen), and
    where no hidden sign differs the scores agree within a few float32
    ulps of the terms |scale * s| + |offset| + |beta|: observed max
    2^-23.1 of them (~1e-6 absolute on scores up to ~8), asserted 2^-22."""
    model, xte, _ = trained_bnn
    scores, classes = model.predict(xte)
    ref_eval = model.forward(xte, training=False)

    # the float path layer by layer, keeping the pre-sign values
    h = nn.scale_input(xte).reshape(len(xte), -1)
    pre = []
    for layer in model.layers:
        if layer.family == "activation":
            pre.append(np.asarray(h))
        h = layer.forward(h, False)
    np.testing.assert_array_equal(np.asarray(h), ref_eval)

    d1, bn1, _, d2, bn2, _, d3, bn3 = model.layers
    s1 = (xte.reshape(len(xte), -1).astype(np.float64) - 128) @ sign_pm1(d1.W.value).T
    z_hidden = []
    sc, off = _independent_affine(bn1)
    z_hidden.append(((sc / 128) * s1 + off, np.abs(sc / 128 * s1) + np.abs(off)
                     + np.abs(bn1.beta.value)))
    s2 = sign_pm1(z_hidden[0][0]) @ sign_pm1(d2.W.value).T
    sc, off = _independent_affine(bn2)
    z_hidden.append((sc * s2 + off, np.abs(sc * s2) + np.abs(off) + np.abs(bn2.beta.value)))

    differs = np.zeros(len(xte), bool)
    for y32, (z, mag) in zip(pre, z_hidden):
        flip = (y32 < 0) != (z < 0)
        # only within float32 rounding of zero
        assert np.all(np.abs(z[flip]) <= 2.0 ** -40 * mag[flip])
        differs |= flip.any(axis=1)
    assert differs.mean() <= 0.01

    s3 = sign_pm1(z_hidden[1][0]) @ sign_pm1(d3.W.value).T
    sc, off = _independent_affine(bn3)
    mag = np.abs(sc * s3) + np.abs(off) + np.abs(bn3.beta.value)
    ok = ~differs
    err = np.abs(scores.astype(np.float64) - ref_eval)[ok]
    assert np.all(err <= 2.0 ** -22 * mag[ok] + 1e-30), err.max()
    assert (classes == np.argmax(ref_eval, axis=1)).mean() >= 0.99
    # float vs folded pre-sign values of agreeing hidden units are close too
    assert np.all(np.abs(pre[1].astype(np.float64) - z_hidden[1][0])
                  <= 2.0 ** -20 * z_hidden[1][1])


@pytest.mark.parametrize("layer_index", [1, 4], ids=["first", "second"])
def test_fold_threshold_on_batchnorm_affine(trained_bnn, layer_index):
    model, _, kind = trained_bnn
    bn = model.layers[layer_index]
    dense = model.layers[layer_index - 1]
    scale, offset = _independent_affine(bn)
    sc_aff, off_aff = bn.affine()
    np.testing.assert_array_equal(sc_aff, scale)
    np.testing.assert_array_equal(off_aff, offset)
    assert np.any(scale < 0) and np.any(scale == 0) and np.any(scale > 0)
    if layer_index == 1:                     # 8-bit first layer: s = 128 * float input
        scale = scale / 128
        k = 128 * dense.in_features
    else:
        k = dense.in_features
    thresh, flip = pybnn.fold_threshold(scale, offset, k)
    assert thresh.dtype == np.int32 and flip.dtype == bool and thresh.shape == (64,)
    np.testing.assert_array_equal(flip, scale < 0)
    s = np.arange(-k, k + 1, dtype=np.float64)[:, None]
    want = scale * s + offset < 0                        # bit 1 = -1
    si = s.astype(np.int64)
    got = np.where(flip, si > thresh, si < thresh)
    np.testing.assert_array_equal(got, want)


def test_first_layer_float_equals_gemm_u8(trained_bnn):
    model, xte, _ = trained_bnn
    dense = model.layers[0]
    x = xte[:500].reshape(500, -1)
    y = dense.forward(nn.scale_input(x), False)
    s = pybnn.gemm_u8(x, pybnn.pack(dense.W.value))
    assert s.dtype == np.int32
    np.testing.assert_array_equal(y * F32(128), s.astype(F32))
    np.testing.assert_array_equal(
        s, (x.astype(np.int64) - 128) @ sign_pm1(dense.W.value).astype(np.int64).T)
    # scale_input is exact: (x - 128) / 128
    np.testing.assert_array_equal(nn.scale_input(x).astype(np.float64),
                                  (x.astype(np.float64) - 128) / 128)


def test_predict_training_mode_and_other_modes_use_float_path():
    r = np.random.default_rng(5)
    x = np.random.default_rng(6).integers(0, 256, (20, 30), dtype=np.uint8)
    for mode in ("bnn", "bc", "fp"):
        binary = mode != "fp"
        m = nn.Sequential([nn.BinaryDense(30, 16, binary=binary, rng=r), nn.BatchNorm(16),
                           nn.Sign() if mode == "bnn" else nn.HardTanh(),
                           nn.BinaryDense(16, 3, binary=binary, rng=r), nn.BatchNorm(3)])
        assert m.mode == mode
        for model in (m.train(), m.eval()) if mode != "bnn" else (m.train(),):
            scores, classes = model.predict(x)
            np.testing.assert_array_equal(scores, model.forward(x, training=False))
            np.testing.assert_array_equal(classes, np.argmax(scores, axis=1))


# ---------------------------------------------------------------------------
# 5. Optimizers and schedules
# ---------------------------------------------------------------------------
def _opt_ref(kind, p, g, m, v, t, lr, b1, b2, eps, lr_scale, clip):
    """bnn_opt_step of include/bnn.h in float64, state stored as float32."""
    p, g, m, v = (np.asarray(a, dtype=np.float64) for a in (p, g, m, v))
    m = b1 * m + (1 - b1) * g
    if kind == "adam":
        v = b2 * v + (1 - b2) * g * g
        p = p - lr_scale * lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    elif kind == "adamax":
        v = np.maximum(b2 * v, np.abs(g))
        p = p - lr_scale * lr / (1 - b1 ** t) * m / (v + eps)
    else:
        v = ap2_ref(np.maximum(b2 * v, np.abs(g))) + eps
        p = p - lr_scale * ap2_ref(lr / (1 - b1 ** t)) * m / v
    if clip > 0:
        p = np.clip(p, -clip, clip)
    return p.astype(F32), m.astype(F32), v.astype(F32)


@pytest.mark.parametrize("kind", ["adam", "adamax", "shift_adamax"])
def test_optimizer_steps_match_formulas(kind):
    rng = np.random.default_rng(51)
    pb = nn.Parameter("W", rng.uniform(-1, 1, (5, 7)), binary=True, lr_scale=3.7)
    pf = nn.Parameter("b", rng.uniform(-1, 1, 7) * 3)
    pb.value[0, :2] = [0.999, -0.999]          # pushed past the clip below
    pf.value[:2] = [0.999, -0.999]
    opt = optim.Optimizer([pb, pf], kind, lr=0.05)
    assert opt.t == 0
    state = [[p.value.copy(), np.zeros(p.value.size, F32), np.zeros(p.value.size, F32)]
             for p in (pb, pf)]
    for t in range(1, 7):
        for p in (pb, pf):
            p.grad[...] = rng.standard_normal(p.value.shape).astype(F32) * 0.3
        pb.grad[0, :2] = [-5.0, 5.0]
        pf.grad[:2] = [-5.0, 5.0]
        opt.step()
        assert opt.t == t
        for i, (p, clip) in enumerate([(pb, 1.0), (pf, 0.0)]):
            P, M, V = _opt_ref(kind, state[i][0].reshape(-1), p.grad.reshape(-1), state[i][1],
                               state[i][2], t, opt.lr, opt.beta1, opt.beta2, opt.eps,
                               p.lr_scale, clip)
            state[i] = [P.reshape(p.value.shape), M, V]
            np.testing.assert_allclose(p.value, state[i][0], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(opt.m[i], M, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(opt.v[i], V, rtol=1e-6, atol=1e-9)
    # binary parameters are clipped to [-1, 1], float ones are not
    assert np.all(np.abs(pb.value) <= 1)
    assert pb.value[0, 0] == 1.0 and pb.value[0, 1] == -1.0
    assert pf.value[0] > 1.0 and pf.value[1] < -1.0
    opt.zero_grad()
    assert not pb.grad.any() and not pf.grad.any()


def test_optimizer_defaults_and_layer_settings():
    d = nn.BinaryDense(100, 50)
    assert d.W.binary and d.W.lr_scale == pytest.approx(1 / math.sqrt(1.5 / 150))
    f = nn.BinaryDense(100, 50, binary=False)
    assert not f.W.binary and f.W.lr_scale == 1.0
    bn = nn.BatchNorm(8)
    assert all(not p.binary and p.lr_scale == 1.0 for p in bn.parameters())
    assert optim.Optimizer([], "adam").lr == 0.003
    o = optim.Optimizer([], "shift_adamax", lr=2 ** -10, beta1=0.875, beta2=1 - 2 ** -10)
    assert (o.lr, o.beta1, o.beta2, o.eps) == (2 ** -10, 0.875, 1 - 2 ** -10, 2.0 ** -27)
    # lr_scale multiplies the step: one adam step moves by lr_scale * lr
    # (m / sqrt(v) = sign(g) at t = 1)
    p1 = nn.Parameter("a", np.zeros(4), binary=True, lr_scale=4.0)
    p2 = nn.Parameter("b", np.zeros(4))
    for p in (p1, p2):
        p.grad[...] = [1, -1, 2, -0.5]
    optim.Optimizer([p1, p2], "adam", lr=0.01).step()
    np.testing.assert_allclose(p2.value, [-0.01, 0.01, -0.01, 0.01], rtol=1e-5)
    np.testing.assert_allclose(p1.value, 4 * p2.value, rtol=1e-6)


def test_lr_schedules():
    opt = optim.Optimizer([], "adam")
    sched = optim.ExponentialDecay(opt, 1e-3, 1e-5, epochs=10)
    assert opt.lr == 1e-3
    assert sched.lr_at(0) == pytest.approx(1e-3)
    assert sched.lr_at(5) == pytest.approx(1e-4)
    assert sched.lr_at(10) == pytest.approx(1e-5)
    for e in range(10):
        sched.epoch_end(e)
        assert opt.lr == pytest.approx(1e-3 * 0.01 ** ((e + 1) / 10))
    assert opt.lr == pytest.approx(1e-5)

    opt = optim.Optimizer([], "adamax")
    sched = optim.StepHalving(opt, 0.1, every=3)
    assert opt.lr == 0.1
    assert [sched.lr_at(e) for e in range(7)] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    lrs = []
    for e in range(6):
        sched.epoch_end(e)
        lrs.append(opt.lr)
    assert lrs == [0.1, 0.1, 0.05, 0.05, 0.05, 0.025]


# ---------------------------------------------------------------------------
# 6. Determinism
# ---------------------------------------------------------------------------
def _det_model(stochastic):
    r = np.random.default_rng(61)
    # 512 x 512 x 8 words: above libbnn's threading threshold (2^20)
    return nn.Sequential([
        nn.BinaryDense(64, 512, rng=r), nn.BatchNorm(512), nn.Sign(stochastic, seed=7),
        nn.Dropout(0.2, seed=8),
        nn.BinaryDense(512, 512, rng=r), nn.BatchNorm(512), nn.Sign(stochastic, seed=9),
        nn.BinaryDense(512, 10, rng=r), nn.BatchNorm(10)])


@pytest.mark.parametrize("stochastic", [False, True], ids=["sign", "stochastic-sign"])
def test_training_is_deterministic_across_threads(stochastic, restore_num_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(62)
    x = rng.integers(0, 256, (512, 64), dtype=np.uint8)
    y = rng.integers(0, 10, 512)
    xe = rng.integers(0, 256, (600, 64), dtype=np.uint8)
    runs = []
    with threadpoolctl.threadpool_limits(1):
        for threads in (1, 2, 1):
            pybnn.set_num_threads(threads)
            model = _det_model(stochastic)
            before = snapshot(model)
            train_steps(model, x, y, steps=5, batch=512)
            after = snapshot(model)
            assert after != before
            model.eval()
            runs.append((after, model.predict(xe)[0].tobytes()))
    assert runs[0] == runs[1] == runs[2]
    if stochastic:
        det = _det_model(False)
        with threadpoolctl.threadpool_limits(1):
            train_steps(det, x, y, steps=5, batch=512)
        assert snapshot(det)[:2] != runs[0][0][:2]   # the noise did change training


# ---------------------------------------------------------------------------
# 7. Learning
# ---------------------------------------------------------------------------
def test_bnn_mlp_learns_separable_problem():
    rng = np.random.default_rng(71)
    k, classes, n = 96, 4, 1200
    proto = np.random.default_rng(72).choice([-1, 1], size=(classes, k))
    y = rng.integers(0, classes, n)
    s = np.where(rng.random((n, k)) < 0.15, -proto[y], proto[y])
    x = np.clip(128 + 60 * s + rng.integers(-40, 41, (n, k)), 0, 255).astype(np.uint8)

    r = np.random.default_rng(73)
    model = nn.Sequential([nn.BinaryDense(k, 128, rng=r), nn.BatchNorm(128), nn.Sign(),
                           nn.Dropout(0.1, seed=1), nn.BinaryDense(128, classes, rng=r),
                           nn.BatchNorm(classes)])
    start = losses.squared_hinge(model.forward(x, training=True), y)[0]
    opt = optim.Optimizer(model.parameters(), "adam", lr=0.01)
    epoch_losses = []
    for _ in range(3):
        perm = rng.permutation(n)
        total = 0.0
        for i in range(0, n, 60):
            b = perm[i:i + 60]
            opt.zero_grad()
            value, g = losses.squared_hinge(model.forward(x[b], training=True), y[b])
            model.backward(g)
            opt.step()
            total += value
        epoch_losses.append(total / (n / 60))
    end = losses.squared_hinge(model.forward(x, training=True), y)[0]
    assert end < 0.2 * start, (start, end)
    assert epoch_losses[-1] < 0.5 * epoch_losses[0], epoch_losses
    model.eval()
    assert (model.predict(x)[1] == y).mean() >= 0.9


# ---------------------------------------------------------------------------
# 8. Errors
# ---------------------------------------------------------------------------
def _misbuilt():
    return nn.Sequential([nn.BinaryDense(20, 16), nn.BatchNorm(16), nn.Sign(),
                          nn.BinaryDense(8, 4), nn.BatchNorm(4)])


def test_wrong_features_name_the_layer():
    m = _misbuilt()
    x = np.zeros((3, 20), np.uint8)
    with pytest.raises(ValueError, match=r"layer 3 \(BinaryDense\)"):
        m.forward(x)
    with pytest.raises(ValueError, match=r"layer 3 \(BinaryDense\)"):
        m.check_input((3, 20))
    with pytest.raises(ValueError, match=r"layer 3 \(BinaryDense\)"):
        m.predict(x)                       # training mode: float path
    with pytest.raises(ValueError, match=r"layer 0 \(BinaryDense\)"):
        m.forward(np.zeros((3, 21), np.uint8))
    bn = nn.Sequential([nn.BinaryDense(20, 16), nn.BatchNorm(15)])
    with pytest.raises(ValueError, match=r"layer 1 \(BatchNorm\)"):
        bn.forward(x)
    # a standalone layer names its class
    with pytest.raises(ValueError, match="BinaryDense"):
        nn.BinaryDense(5, 2).forward(np.zeros((2, 6), F32), True)


def test_loss_label_errors():
    s = np.zeros((3, 4))
    for loss in (losses.squared_hinge, losses.softmax_cross_entropy):
        with pytest.raises(ValueError, match=r"\[0, 4\)"):
            loss(s, np.array([0, 1, 4]))
        with pytest.raises(ValueError, match=r"\[0, 4\)"):
            loss(s, np.array([0, -1, 2]))
        with pytest.raises(ValueError, match="shape"):
            loss(s, np.array([0, 1]))
        for bad in (np.array([0.0, 1.0, 2.0]), np.array([True, False, True]),
                    np.array(["a", "b", "c"])):
            with pytest.raises(TypeError, match="integers"):
                loss(s, bad)
        loss(s, np.array([0, 1, 3], dtype=np.uint8))   # any integer dtype is fine


def test_input_dtype_and_mode_errors():
    m = nn.Sequential([nn.BinaryDense(20, 4), nn.BatchNorm(4)])
    for model in (m.train(), m.eval()):
        for dtype in (np.float32, np.int16, np.int8):
            with pytest.raises(TypeError, match="uint8"):
                model.predict(np.zeros((2, 20), dtype))
    with pytest.raises(TypeError, match="uint8"):
        m.forward(np.zeros((2, 20), np.float32))
    with pytest.raises(TypeError, match="layers must hold pybnn layers, got an object at index 1"):
        nn.Sequential([nn.Sign(), object()])
    with pytest.raises(ValueError):
        nn.Sequential([])
    with pytest.raises(ValueError, match="p must be < 1.0, got 1.0"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="kind"):
        nn.BatchNorm(3, kind="batch")
    with pytest.raises(ValueError, match="kind must be one of adam.*got 'sgd'"):
        optim.Optimizer([], "sgd")


def test_backward_without_forward_names_the_layer():
    m = nn.Sequential([nn.BinaryDense(20, 16), nn.BatchNorm(16), nn.Sign(),
                       nn.BinaryDense(16, 4), nn.BatchNorm(4), nn.HardTanh()])
    for i, layer in enumerate(m.layers):
        width = 16 if i < 3 else 4
        with pytest.raises(ValueError, match=r"layer %d \(%s\): backward without a training "
                                             r"forward" % (i, getattr(layer, "label", type(layer).__name__))):
            layer.backward(np.zeros((3, width), F32))
    with pytest.raises(ValueError, match=r"layer 5 \(HardTanh\)"):
        m.backward(np.zeros((3, 4), F32))
    # after one backward the saved state is consumed
    x = np.zeros((3, 20), np.uint8)
    m.forward(x, training=True)
    m.backward(np.ones((3, 4), F32))
    with pytest.raises(ValueError, match=r"layer 5 \(HardTanh\)"):
        m.backward(np.ones((3, 4), F32))
    # an evaluation forward saves nothing for backward
    m.forward(x, training=False)
    with pytest.raises(ValueError, match="backward without a training forward"):
        m.backward(np.ones((3, 4), F32))


# ---------------------------------------------------------------------------
# Regressions: bugs found and fixed
# ---------------------------------------------------------------------------
def test_regression_predict_empty_batch_in_eval():
    m = nn.Sequential([nn.BinaryDense(20, 8), nn.BatchNorm(8), nn.Sign(),
                       nn.BinaryDense(8, 3), nn.BatchNorm(3)])
    x = np.zeros((0, 20), np.uint8)
    scores, classes = m.train().predict(x)
    assert scores.shape == (0, 3)
    scores, classes = m.eval().predict(x)
    assert scores.shape == (0, 3) and classes.shape == (0,)


def test_regression_predict_single_block_images_in_eval():
    m = nn.Sequential([nn.BinaryDense(20, 3), nn.BatchNorm(3)])
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 5), dtype=np.uint8)
    want = m.train().predict(x)[0]
    np.testing.assert_allclose(m.eval().predict(x)[0], want, rtol=1e-6, atol=1e-6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_regression_squared_hinge_empty_batch():
    value, grad = losses.softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, np.int64))
    assert value == 0.0
    with np.errstate(all="raise"):
        value, grad = losses.squared_hinge(np.zeros((0, 4)), np.zeros(0, np.int64))
    assert value == 0.0 and grad.shape == (0, 4)


def test_regression_optimizer_state_dict():
    p = nn.Parameter("w", np.zeros(3))
    opt = optim.Optimizer([p], "adam")
    p.grad[...] = 1
    opt.step()
    state = opt.state_dict()
    opt2 = optim.Optimizer([nn.Parameter("w", np.zeros(3))], "adam")
    opt2.load_state_dict(state)
    assert opt2.t == 1
    np.testing.assert_array_equal(opt2.m[0], opt.m[0])


def test_regression_input_dropout_sees_unscaled_pixels():
    r = np.random.default_rng(0)
    m = nn.Sequential([nn.Dropout(1e-6, seed=1), nn.BinaryDense(6, 3, rng=r)])
    x = np.full((4, 6), 200, np.uint8)
    train_out = m.forward(x, training=True)          # p ~ 0: keeps (almost) everything
    eval_out = m.forward(x, training=False)
    np.testing.assert_allclose(train_out, eval_out, rtol=1e-5)


def test_regression_batchnorm_backward_after_eval_forward():
    bn = nn.BatchNorm(4)
    rng = np.random.default_rng(0)
    bn.forward(rng.standard_normal((8, 4)).astype(F32), True)
    bn.forward(rng.standard_normal((8, 4)).astype(F32), False)
    with pytest.raises(ValueError, match="backward without a training forward"):
        bn.backward(np.ones((8, 4), F32))


def test_parameter_gradient_is_zeroed_lazily_and_accumulates():
    from pybnn.nn import Parameter
    rng = np.random.default_rng(9)
    p = Parameter("W", rng.standard_normal((5, 6)))
    a, b = rng.standard_normal((5, 3)).astype(F32), rng.standard_normal((3, 6)).astype(F32)
    p.grad[...] = 3.0
    p.zero_grad()
    np.testing.assert_array_equal(p.grad, 0)          # reads as zero
    p.grad[...] = 3.0
    p.zero_grad()
    p.accumulate_matmul(a, b)                           # overwrites the stale values
    np.testing.assert_allclose(p.grad, a @ b, rtol=1e-6)
    p.accumulate_matmul(a, b)                           # then adds
    np.testing.assert_allclose(p.grad, 2 * (a @ b), rtol=1e-6)
    q = Parameter("W4", rng.standard_normal((5, 2, 3)))  # conv-shaped weights
    q.zero_grad()
    q.accumulate_matmul(a, b)
    np.testing.assert_allclose(q.grad, (a @ b).reshape(5, 2, 3), rtol=1e-6)


def _signs_net(seed):
    r = np.random.default_rng(seed)
    return nn.Sequential([
        nn.BinaryConv2d(3, 70, 3, padding=1, rng=r), nn.BatchNorm(70), nn.Sign(),
        nn.BinaryConv2d(70, 9, 3, rng=r), nn.BatchNorm(9), nn.Sign(), nn.Flatten(),
        nn.BinaryDense(4 * 4 * 9, 130, rng=r), nn.BatchNorm(130), nn.Sign(),
        nn.BinaryDense(130, 10, rng=r), nn.BatchNorm(10)])


@pytest.mark.parametrize("kind", ["adam", "adamax", "shift_adamax"])
def test_optimizer_step_leaves_the_packed_signs_of_the_new_weights(kind):
    """The fused step (bnn_opt_step_pack) leaves exactly pack(W) of the
    updated weights; training that uses them is bitwise the training that
    packs the weights in every forward (the kept bits dropped each step)."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (24, 6, 6, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 24)
    fused, plain = _signs_net(4), _signs_net(4)
    ofused = optim.Optimizer(fused.parameters(), kind, lr=0.05)
    oplain = optim.Optimizer(plain.parameters(), kind, lr=0.05)
    for step in range(4):
        xb, yb = x[step * 6:(step + 1) * 6], y[step * 6:(step + 1) * 6]
        for net, opt in ((fused, ofused), (plain, oplain)):
            opt.zero_grad()
            _, g = losses.squared_hinge(net.forward(xb, training=True), yb)
            net.backward(g)
            opt.step()
        for p in fused.parameters():
            if p.binary:
                kept = p.signs()
                np.testing.assert_array_equal(kept.words, pybnn.pack(p.value).words)
                assert kept.shape == p.value.shape
                assert not p.value.flags.writeable
        for p in plain.parameters():
            p.drop_signs()
    for a, b in zip(fused.parameters(), plain.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(fused.forward(x, training=False),
                                  plain.forward(x, training=False))


def test_kept_signs_cannot_go_stale():
    """While a parameter holds the optimizer's signs its value is read-only;
    drop_signs(), state_dict(), load_state_dict() and assigning a new array
    make it writable, and the next forward packs the new values."""
    r = np.random.default_rng(8)
    layer = nn.BinaryDense(70, 9, rng=r)
    opt = optim.Optimizer(layer.parameters(), "adam")
    x = pybnn.pack(r.standard_normal((4, 70)).astype(F32))
    layer.backward(np.ones_like(layer.forward(x, True)))
    opt.step()
    with pytest.raises(ValueError, match="read-only"):
        layer.W.value[0, 0] = 0.5
    layer.W.drop_signs()
    layer.W.value[...] *= -1
    np.testing.assert_array_equal(layer.W.signs().words, pybnn.pack(layer.W.value).words)
    opt.step()
    assert not layer.W.value.flags.writeable
    state = layer.state_dict()
    assert state["W"].flags.writeable
    opt.step()
    layer.load_state_dict({"W": -layer.W.value})
    np.testing.assert_array_equal(layer.W.signs().words, pybnn.pack(layer.W.value).words)
    opt.step()
    layer.W.value = np.ones((9, 70), F32)
    assert layer.W.value.flags.writeable
    y = layer.forward(x, False)
    np.testing.assert_array_equal(y, x.unpack() @ np.ones((70, 9), F32))


def test_training_reuses_packed_weights_but_sees_each_update():
    """The packed sign(W) of a step is reused by backward, never by the next
    step: after an update that flips signs, forward uses the new bits."""
    from pybnn.nn import BinaryDense
    rng = np.random.default_rng(10)
    layer = BinaryDense(70, 9, rng=rng)
    x = pybnn.pack(rng.standard_normal((4, 70)).astype(F32))
    y1 = layer.forward(x, True)
    layer.backward(np.ones_like(y1), input_grad=True)
    layer.W.value[...] *= -1
    y2 = layer.forward(x, True)
    np.testing.assert_array_equal(y2, -y1)
    gx = layer.backward(np.ones_like(y2), input_grad=True)
    np.testing.assert_array_equal(gx, np.ones((4, 9), F32) @ np.where(layer.W.value < 0, -1, 1).astype(F32))
