"""Bop (binary weights without latent values): the step against a loop
oracle of its definition, the optimizer's state and checkpoint, and that
it trains."""
import numpy as np
import pytest

from pybnn.nn import BatchNorm, BinaryDense, Sequential, Sign
from pybnn.optim import Optimizer, bop_step
from pybnn.losses import squared_hinge


def test_bop_step_matches_its_definition():
    rng = np.random.default_rng(0)
    w = rng.choice([-1.0, 1.0], 1000).astype(np.float32)
    m = (rng.standard_normal(1000) * 1e-3).astype(np.float32)
    g = rng.standard_normal(1000).astype(np.float32)
    m[:5] = 0.0
    g[:5] = 0.0                                       # |m| stays 0: never flips
    w0 = w.copy()
    want_w, want_m = w.copy(), m.copy()
    gamma, tau = 1e-2, 5e-4
    for i in range(1000):
        mi = np.float32(np.float32(want_m[i] * np.float32(1 - gamma)) + np.float32(gamma) * g[i])
        want_m[i] = mi
        if abs(mi) > tau and (mi > 0) == (want_w[i] > 0):
            want_w[i] = -want_w[i]
    bop_step(w, g, m, gamma, tau)
    np.testing.assert_array_equal(m, want_m)
    np.testing.assert_array_equal(w, want_w)
    assert 0 < np.sum(w != w0) < 995 and np.all(w[:5] == w0[:5])   # some flip, some not


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential([BinaryDense(20, 32, rng=rng), BatchNorm(32), Sign(),
                       BinaryDense(32, 4, rng=rng), BatchNorm(4)])


def test_bop_optimizer_state():
    model = _model()
    opt = Optimizer(model.parameters(), "bop", lr=0.01, gamma=1e-3, threshold=1e-6)
    for p, v in zip(opt.params, opt.v):
        if p.binary:
            assert set(np.unique(p.value)) <= {-1.0, 1.0} and v.size == 0
        else:
            assert v.size == p.value.size
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (64, 20), dtype=np.uint8)
    y = rng.integers(0, 4, 64)
    for _ in range(3):
        opt.zero_grad()
        _, grad = squared_hinge(model.forward(x), y)
        model.backward(grad)
        opt.step()
    state = opt.state_dict()
    twin_model = _model()
    twin_model.load_state_dict(model.state_dict())
    twin = Optimizer(twin_model.parameters(), "bop")
    twin.load_state_dict(state)
    assert (twin.gamma, twin.threshold, twin.t) == (1e-3, 1e-6, 3)
    for a, b in zip(opt.m, twin.m):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="gamma"):
        Optimizer(model.parameters(), "bop", gamma=0.0)
    with pytest.raises(ValueError, match="checkpoint optimizer is"):
        Optimizer(model.parameters(), "adam").load_state_dict(state)


def test_bop_trains():
    """A separable toy problem: Bop's flips bring the training error down."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (400, 20), dtype=np.uint8)
    y = (x[:, :10].astype(int).sum(1) > x[:, 10:].astype(int).sum(1)).astype(int)
    model = _model(4)
    opt = Optimizer(model.parameters(), "bop", lr=0.01, gamma=1e-2, threshold=1e-5)

    def err():
        model.train()
        return np.mean(np.argmax(model.forward(x, False), 1) != y)

    first = err()
    for _ in range(30):
        for i in range(0, 400, 50):
            opt.zero_grad()
            _, grad = squared_hinge(model.forward(x[i:i + 50]), y[i:i + 50])
            model.backward(grad)
            opt.step()
    assert err() < min(first, 0.25)
