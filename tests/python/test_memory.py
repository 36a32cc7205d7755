"""Training memory as a contract: the bytes each layer keeps for backward
per sample follow from the shapes (bits for everything a binary network
keeps), and the memory plan is consistent with them."""
import numpy as np
import pytest

from pybnn.nn import Sequential
from pybnn.recipes import RECIPES, build_model


def _words(c):
    return -(-c // 64)


def _kept_formula(layer, in_shape, out_shape, batch, first):
    """Bytes per sample a layer keeps for backward, from the shapes alone."""
    kind = type(layer).__name__
    if kind in ("BinaryConv2d", "BinaryDense"):
        if first:
            return int(np.prod(in_shape[1:]))                  # the uint8 pixels
        lead = in_shape[1:-1]
        return int(np.prod(lead)) * _words(in_shape[-1]) * 8   # packed input bits
    if kind == "Activation":
        lead = in_shape[1:-1]
        return int(np.prod(lead)) * _words(in_shape[-1]) * 8   # |x| <= 1 mask bits
    if kind == "MaxPool2d":
        return -(-int(np.prod(out_shape)) // 4) / batch        # 2 bits per output
    if kind in ("BatchNorm", "Flatten"):
        return 0                                               # recomputed / nothing
    raise AssertionError("no formula for %s" % kind)


@pytest.mark.parametrize("recipe,shape", [("cifar10-vgg", (32, 32, 3)),
                                          ("mnist-mlp-fast", (28, 28, 1))])
def test_layers_keep_bits_by_the_formula(recipe, shape):
    cfg = dict(RECIPES[recipe], width=16 if recipe == "cifar10-vgg" else 70)
    model = build_model(cfg, shape, 0)
    batch = 3
    h = np.zeros((batch,) + shape, np.uint8)
    if recipe != "cifar10-vgg":
        h = h.reshape(batch, -1)
    for i, layer in enumerate(model.layers):
        in_shape = tuple(h.shape)
        h = layer.forward(h, True)
        want = _kept_formula(layer, in_shape, tuple(h.shape), batch, i == 0)
        assert layer.kept_bytes() / batch == pytest.approx(want), (i, layer)
    total = model.kept_bytes()
    model.backward(np.ones(h.shape, np.float32))
    assert model.kept_bytes() == 0 and total > 0


def test_memory_plan():
    cfg = dict(RECIPES["cifar10-vgg"], width=8)
    model = build_model(cfg, (32, 32, 3), 0)
    before = [p.value.copy() for p in model.parameters()]
    plan = model.memory_plan(50, (32, 32, 3), available=2 ** 30)
    nparam = sum(p.value.size for p in model.parameters())
    assert plan["parameters"] == plan["gradients"] == 4 * nparam
    assert plan["optimizer_state"] == 8 * nparam
    assert 0 < plan["kept_per_sample"] <= plan["step_per_sample"]
    fixed = (plan["parameters"] + plan["gradients"] + plan["optimizer_state"]
             + plan["step_fixed"])
    assert plan["predicted"] == int(fixed + 50 * plan["step_per_sample"])
    assert plan["largest_batch"] == int((2 ** 30 - fixed) // plan["step_per_sample"])
    # the probe runs on a copy: the model itself is untouched
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.value, b)
    assert model.kept_bytes() == 0
    assert isinstance(model, Sequential)


def test_layers_used_alone_leave_their_arguments_alone():
    """Writing over a temporary is Sequential's to allow, for one call: a
    layer called directly (or after a Sequential pass) keeps the caller's
    arrays intact, while a Sequential pass does write over its own."""
    from pybnn.nn import BatchNorm, BinaryConv2d, Sign
    rng = np.random.default_rng(2)
    model = Sequential([BinaryConv2d(3, 8, 3, padding=1, rng=rng), BatchNorm(8), Sign(),
                        BinaryConv2d(8, 4, 3, padding=1, rng=rng), BatchNorm(4)])
    x = rng.integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    scores = model.forward(x, True)
    model.backward(np.ones_like(scores))
    bn, sign = model.layers[1], model.layers[2]
    bn.recompute = lambda: np.zeros((2, 5, 5, 8), np.float32)   # nothing kept either way
    h = rng.standard_normal((2, 5, 5, 8)).astype(np.float32)
    h0 = h.copy()
    out = sign.forward(bn.forward(h, True), True)
    np.testing.assert_array_equal(h, h0)                  # the input is untouched
    g = rng.standard_normal((2, 5, 5, 8)).astype(np.float32)
    g0 = g.copy()
    bn.backward(sign.backward(g))
    np.testing.assert_array_equal(g, g0)                  # the gradient is untouched
    assert out.shape == (2, 5, 5, 8)
