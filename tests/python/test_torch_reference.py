"""pybnn/bench/torch_reference.py: the recipes' networks in PyTorch compute
what pybnn computes (one training step from the same weights and batch)."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pybnn.recipes import RECIPES, build_model  # noqa: E402

from pybnn.bench import torch_reference as tr  # noqa: E402

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


def test_bench_train_reports_both_and_the_breakdown(tmp_path):
    """`pybnn bench train` at a small width: medians of both, the ratio, the
    epoch estimates and a breakdown with every weight layer's forward and
    backward, the loss and the optimizer (the figures themselves are not
    judged: timings never are in tests)."""
    import json

    from pybnn import cli
    from pybnn.bench import bench_train
    lines = []
    res = bench_train("mnist-mlp", steps=2, rounds=1, threads=1, width=64, out=lines.append)
    assert res["pybnn_ms"] > 0 and res["torch_ms"] > 0 and res["speedup"] > 0
    assert res["steps_per_epoch"] == 500                  # 50,000 images, batch 100
    names = {(b["phase"], b["name"]) for b in res["breakdown_ms"]}
    for i in (1, 5, 9, 13):
        assert ("forward", "layer %d (BinaryDense)" % i) in names
        assert ("backward", "layer %d (BinaryDense)" % i) in names
    assert ("optimizer", "optimizer step") in names and ("loss", "loss") in names
    assert any("PyTorch" in line for line in lines)
    out = tmp_path / "train.json"
    assert cli.main(["bench", "train", "--recipe", "cifar10-vgg", "--width", "4", "--steps", "1",
                     "--rounds", "1", "--threads", "1", "--no-torch", "--batch-size", "4",
                     "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["recipe"] == "cifar10-vgg" and "torch_ms" not in res
    assert res["steps_per_epoch"] == 45000 // 4           # 10% of 50,000 validate
    assert cli.main(["bench", "train", "--threads", "1,2"]) == 1


@pytest.mark.parametrize("mode,activation,binary", [("bnn", "Sign", True),
                                                     ("bc", "HardTanh", True),
                                                     ("fp", "HardTanh", False)])
def test_bench_train_runs_the_asked_mode(mode, activation, binary):
    """`pybnn bench train --mode M` times the network of `pybnn train --mode
    M` in pybnn and in PyTorch (whose optimizer has no weights to clip in
    full precision)."""
    from pybnn.bench import bench_train
    from pybnn.bench.train import _config, _PybnnStep
    res = bench_train("mnist-mlp", steps=1, rounds=1, threads=1, width=32, mode=mode,
                      out=lambda *a: None)
    assert res["mode"] == mode and res["pybnn_ms"] > 0 and res["torch_ms"] > 0
    names = {(b["phase"], b["name"]) for b in res["breakdown_ms"]}
    assert ("forward", "layer 3 (%s)" % activation) in names
    step = _PybnnStep(_config("mnist-mlp", 32, None, "auto", mode), (28, 28, 1), 0)
    assert any(p.binary for p in step.model.parameters()) == binary
    with pytest.raises(ValueError, match="mode must be one of"):
        _config("mnist-mlp", mode="ternary")
