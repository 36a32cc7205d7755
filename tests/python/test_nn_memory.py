"""Training memory: what summary() reports a step keeps for backward equals
what tracemalloc measures, and BNN mode keeps far less than full precision
(packed sign bits and STE masks, uint8 inputs, batch-norm inputs recomputed
from the packed bits)."""
import tracemalloc

import numpy as np
import pytest

from pybnn.losses import squared_hinge
from pybnn.nn import BatchNorm, BinaryDense, HardTanh, Sequential, Sign


def _mlp(mode, width=512):
    rng = np.random.default_rng(0)
    binary = mode != "fp"

    def act():
        return Sign() if mode == "bnn" else HardTanh()
    return Sequential([BinaryDense(784, width, binary=binary, rng=rng), BatchNorm(width), act(),
                       BinaryDense(width, width, binary=binary, rng=rng), BatchNorm(width), act(),
                       BinaryDense(width, 10, binary=binary, rng=rng), BatchNorm(10)])


def _measured_kept_per_sample(model, per_step, n=256):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        x = np.random.default_rng(1).integers(0, 256, (n, 784), dtype=np.uint8)
        scores = model.forward(x)
        held = tracemalloc.get_traced_memory()[0] - base - scores.nbytes - per_step
        loss, g = squared_hinge(scores, np.zeros(n, np.int64))
        model.backward(g)
    finally:
        tracemalloc.stop()
    return held / n


@pytest.mark.parametrize("mode", ["bnn", "fp"])
def test_summary_training_memory_matches_tracemalloc(mode):
    model = _mlp(mode)
    totals = model.summary((784,), print_fn=lambda *a: None)
    measured = _measured_kept_per_sample(model, totals["kept_bytes_per_step"])
    if mode == "bnn":   # the packed weights: one bit per binary weight
        assert totals["kept_bytes_per_step"] == 512 * 832 // 8 + 512 * 512 // 8 + 10 * 512 // 8
    else:
        assert totals["kept_bytes_per_step"] == 0
    expected = totals["kept_bytes_per_sample"]
    assert measured == pytest.approx(expected, rel=0.05, abs=64)


def test_bnn_keeps_much_less_than_full_precision():
    bnn = _mlp("bnn").summary((784,), print_fn=lambda *a: None)["kept_bytes_per_sample"]
    fp = _mlp("fp").summary((784,), print_fn=lambda *a: None)["kept_bytes_per_sample"]
    assert bnn * 10 < fp


def test_recomputed_batchnorm_gives_the_same_gradients():
    x = np.random.default_rng(2).integers(0, 256, (64, 784), dtype=np.uint8)
    y = np.random.default_rng(3).integers(0, 10, 64)
    grads = []
    for recompute in (True, False):
        model = _mlp("bnn", width=128)
        if not recompute:
            for layer in model.layers:
                if isinstance(layer, BatchNorm):
                    layer.recompute = None
        loss, g = squared_hinge(model.forward(x), y)
        model.backward(g)
        grads.append([p.grad.copy() for p in model.parameters()])
    for a, b in zip(*grads):
        assert np.array_equal(a, b)


def test_summary_counts():
    totals = _mlp("bnn", width=256).summary((784,), print_fn=lambda *a: None)
    assert totals["params"] == 784 * 256 + 256 * 256 + 256 * 10 + 2 * (256 + 256 + 10)
    assert totals["binary_macs"] == 256 * 256 + 256 * 10
    assert totals["float_macs"] == 784 * 256   # the 8-bit first layer
    assert totals["bits"] < totals["float_bits"] / 8


def test_bench_memory_measures_the_asked_width():
    """`pybnn bench train --memory --width W` runs the network at width W:
    each child's memory plan is the plan of that network, and the peaks
    come from the children (the figures are not judged)."""
    from pybnn.bench import bench_memory
    from pybnn.bench.train import _config
    from pybnn.train import build_run
    res = bench_memory("mnist-mlp", batches=(4, 8), threads=1, torch=False, steps=1,
                       width=64, out=lambda *a: None)
    assert res["width"] == 64
    for run in res["runs"]:
        model, opt, _ = build_run(dict(_config("mnist-mlp", 64, run["batch"], "auto"), seed=0),
                                  (28, 28, 1))
        plan = model.memory_plan(run["batch"], (28, 28, 1), opt)
        assert run["plan"]["kept_per_sample"] == plan["kept_per_sample"]
        for key in ("parameters", "optimizer_state"):
            assert run["plan"][key] == plan[key]
        assert run["peak_kb"] > 0
