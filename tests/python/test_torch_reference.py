"""bench/torch_reference.py: the recipes' networks in PyTorch compute what
pybnn computes (one training step from the same weights and batch)."""
from __future__ import annotations

import importlib.util
import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pybnn.recipes import RECIPES, build_model  # noqa: E402

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                     "bench", "torch_reference.py")


def _load():
    spec = importlib.util.spec_from_file_location("torch_reference", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tr = _load()

CASES = {
    "mlp": (dict(RECIPES["mnist-mlp"], width=64, layers=2), (784,), 32),
    "vgg": (dict(RECIPES["cifar10-vgg"], width=8), (32, 32, 3), 4),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 3])
def test_first_step_matches_pybnn(name, seed):
    cfg, shape, batch = CASES[name]
    r = tr.compare_first_step(cfg, shape, batch, seed)
    # forward in training mode: +-1 products are exact in both; the float
    # first layer, batch norm and the loss differ only in summation order
    # and precision (pybnn sums in double)
    assert r["scores_max_abs"] <= 1e-3 * r["scores_scale"], r
    assert r["loss_abs"] <= 1e-5 * r["loss_pybnn"], r
    assert r["grads_max_rel"] <= 1e-5, r
    # the update rule alone (Adam's step size, Glorot lr scale, clip), fed
    # the same gradients
    assert r["params_same_grads_max_abs"] <= 1e-6, r
    assert r["clipped"] > 0, r          # the clip to [-1, 1] was exercised
    assert r["running_max_abs"] <= 1e-6, r
    # Each side's own step: loosened from 1e-6 to 1e-3.  Adam's first step
    # moves a weight by s * 0.1 g / (0.0316 |g| + eps), s = lr * lr_scale *
    # sqrt(1 - b2)/(1 - b1); where |g| is near eps = 1e-8 (gradients that
    # cancel to roundoff, e.g. for inputs constant over the batch) the
    # update's slope is s * 0.1 / eps ~ 1e5, so the float32 roundoff of such
    # gradients (~1e-10 between the two summation orders) shows up as
    # ~1e-5..1e-4 in the weights (seen: up to 1.2e-4 over 12 seeds), while
    # an update is ~2e-2..7e-2: a wrong step size or scale would be far
    # above 1e-3.
    assert r["params_max_abs"] <= 1e-3, r
    assert r["update_max"] > 1e-2, r


def test_initial_weights_equal_pybnns():
    cfg, shape, _ = CASES["vgg"]
    pb = build_model(cfg, shape, 5)
    ts = tr.build(cfg, shape, seed=5)
    w_pb = [l.W.value for l in pb.layers if l.family in ("dense", "conv")]
    w_t = ts.latent_weights()
    assert len(w_pb) == len(w_t)
    for a, b in zip(w_pb, w_t):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_step_trains_with_dropout():
    # the full mnist-mlp recipe (input and hidden dropout), narrow
    cfg = dict(RECIPES["mnist-mlp"], width=64, layers=2)
    ts = tr.build(cfg, (784,), seed=1)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (32, 784), dtype=np.uint8)
    y = rng.integers(0, 10, 32)
    losses = [ts.step(x, y) for _ in range(5)]
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses)
    for w in ts.latent_weights():
        assert np.abs(w).max() <= 1.0
    assert ts.forward(x, training=False).shape == (32, 10)
