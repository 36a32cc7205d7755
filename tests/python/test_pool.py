"""maxpool2d on packed bits and on int32 arrays against plain numpy
oracles, and the property that makes pooling packed bits correct: pooling
the thresholded bits (AND where flip is 0, OR where flip is 1) equals
max-pooling the integer pre-activations before batch norm and sign.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pybnn
from oracles import affine_neg, bits_to_words, conv2d, maxpool, pad4, pool_pm1


# ---------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------
def biased_pm1(rng, shape):
    """+-1 with a per-pixel bias so that both AND and OR see 0s and 1s."""
    p = rng.choice([0.1, 0.5, 0.9], size=shape[:-1] + (1,))
    return np.where(rng.random(shape) < p, -1.0, 1.0).astype(np.float32)


def test_oracle_maxpool_explicit():
    x = np.arange(1 * 3 * 3 * 1).reshape(1, 3, 3, 1)
    out = maxpool(x, 2, 2, (0, 1, 0, 1))
    np.testing.assert_array_equal(out[0, :, :, 0], [[4, 5], [7, 8]])
    out = maxpool(-x, 3, 2, 1)
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, -1], [-3, -4]])


# ---------------------------------------------------------------------------
# Packed bits
# ---------------------------------------------------------------------------
@st.composite
def pool_geometries(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    form = draw(st.sampled_from(["int", "pair", "quad"]))
    if form == "int":
        padding = draw(st.integers(0, min(kh, kw) - 1))
    elif form == "pair":
        padding = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
    else:
        padding = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1)),
                   draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1)))
    pt, pb, pl, pr = pad4(padding)
    h = max(draw(st.sampled_from([1, 3, 5, 7, 9, 11, 4, 8])), kh - pt - pb)
    w = max(draw(st.sampled_from([1, 3, 5, 7, 9, 11, 2, 6])), kw - pl - pr)
    kernel = (kh, kw) if kh != kw or draw(st.booleans()) else kh
    stride = draw(st.sampled_from([None, (sh, sw), sh]))
    return dict(n=draw(st.integers(1, 3)), h=h, w=w,
                c=draw(st.sampled_from([1, 3, 63, 64, 65, 130])),
                kernel=kernel, stride=stride, padding=padding)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=pool_geometries(), seed=st.integers(0, 2 ** 32 - 1),
       flip_mode=st.sampled_from(["none", "zeros", "ones", "mixed"]))
def test_maxpool_bits_random(each_isa, g, seed, flip_mode):
    rng = np.random.default_rng(seed)
    v = biased_pm1(rng, (g["n"], g["h"], g["w"], g["c"]))
    flip = {"none": None, "zeros": np.zeros(g["c"], bool), "ones": np.ones(g["c"], bool),
            "mixed": rng.random(g["c"]) < 0.5}[flip_mode]
    stride = g["kernel"] if g["stride"] is None else g["stride"]
    got = pybnn.maxpool2d(pybnn.pack(v), g["kernel"], g["stride"], g["padding"], flip)
    want = pool_pm1(v, g["kernel"], stride, g["padding"], flip)
    assert isinstance(got, pybnn.PackedTensor) and got.shape == want.shape
    np.testing.assert_array_equal(got.words, bits_to_words(want < 0))  # pad bits 0 too
    np.testing.assert_array_equal(got.unpack(), want)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=pool_geometries(), seed=st.integers(0, 2 ** 32 - 1), ties=st.booleans())
def test_maxpool_i32_random(each_isa, g, seed, ties):
    rng = np.random.default_rng(seed)
    shape = (g["n"], g["h"], g["w"], g["c"])
    if ties:
        x = rng.integers(-3, 4, size=shape).astype(np.int32)
    else:
        x = rng.integers(-2 ** 31, 2 ** 31, size=shape, dtype=np.int64).astype(np.int32)
        r = rng.random(shape)
        x[r < 0.05] = np.iinfo(np.int32).min
        x[(r >= 0.05) & (r < 0.1)] = np.iinfo(np.int32).max
    stride = g["kernel"] if g["stride"] is None else g["stride"]
    got = pybnn.maxpool2d(x, g["kernel"], g["stride"], g["padding"])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, maxpool(x, g["kernel"], stride, g["padding"]))


def test_maxpool_bits_all_padding_sides(each_isa):
    """3x3 stride 2 pad 1 on odd sizes: corner windows see 4 inputs."""
    rng = np.random.default_rng(5)
    v = biased_pm1(rng, (2, 7, 9, 130))
    flip = rng.random(130) < 0.5
    got = pybnn.maxpool2d(pybnn.pack(v), 3, 2, 1, flip)
    assert got.shape == (2, 4, 5, 130)
    np.testing.assert_array_equal(got.unpack(), pool_pm1(v, 3, 2, 1, flip))


def test_maxpool_isas_identical(restore_isa):
    rng = np.random.default_rng(6)
    v = biased_pm1(rng, (3, 9, 11, 130))
    flip = rng.random(130) < 0.5
    x = rng.integers(-1000, 1000, size=(3, 9, 11, 70)).astype(np.int32)
    res = {}
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        res[name] = (pybnn.maxpool2d(pybnn.pack(v), (3, 2), (2, 1), (1, 0, 0, 1), flip).words,
                     pybnn.maxpool2d(x, (3, 2), (2, 1), (1, 0, 0, 1)))
    for name, (b, i) in res.items():
        np.testing.assert_array_equal(b, res["ref"][0], err_msg=name)
        np.testing.assert_array_equal(i, res["ref"][1], err_msg=name)


# ---------------------------------------------------------------------------
# Pool after threshold == pool before batch norm
# ---------------------------------------------------------------------------
POOLS = [(2, 2, 0), (3, 2, 1), ((3, 2), (1, 2), (2, 0, 0, 1)), ((2, 3), None, (1, 0, 1, 2))]


@pytest.mark.parametrize("mode", ["positive", "negative", "mixed"])
@pytest.mark.parametrize("pool", POOLS, ids=["2x2s2", "3x3s2p1", "3x2_asym", "2x3_default_stride"])
@pytest.mark.parametrize("pad_value", [0, 1])
def test_pool_after_threshold_equals_pool_before_bn(each_isa, mode, pool, pad_value):
    rng = np.random.default_rng(hash((mode, str(pool), pad_value)) % 2 ** 32)
    n, h, w, c, o = 2, 9, 11, 65, 70          # conv output 9x11 (odd) with pad 1
    xs = biased_pm1(rng, (n, h, w, c))
    ws = np.where(rng.random((o, 3, 3, c)) < 0.5, -1.0, 1.0).astype(np.float32)
    xp, wp = pybnn.pack(xs), pybnn.pack(ws)
    s = pybnn.bconv2d(xp, wp, padding=1, pad_value=pad_value)
    np.testing.assert_array_equal(s, conv2d(xs, ws, padding=1, pad_value=pad_value))
    k = 9 * c
    gamma = rng.uniform(0.05, 2.0, o)
    if mode == "negative":
        gamma = -gamma
    elif mode == "mixed":
        gamma = gamma * rng.choice([-1.0, 1.0], o)
        gamma[:3] = 0.0
    var = rng.uniform(0.1, 10.0, o)
    mean = rng.uniform(-k / 3, k / 3, o)
    beta = rng.uniform(-0.5, 0.5, o)
    scale = gamma / np.sqrt(var + 1e-5)
    offset = beta - mean * scale
    # half the boundaries exactly on an occurring pre-activation
    pick = s.reshape(-1, o)[rng.integers(0, s.size // o, o), np.arange(o)]
    offset = np.where(rng.random(o) < 0.5, -(scale * pick), offset)
    thresh, flip = pybnn.fold_threshold(scale, offset, k)

    kernel, stride, padding = pool
    st_ = kernel if stride is None else stride
    # oracle: pool the integers in float64, then BN and sign
    m = maxpool(s, kernel, st_, padding)
    want = affine_neg(scale, offset, m)

    bits = pybnn.bconv2d_threshold(xp, wp, thresh, flip, padding=1, pad_value=pad_value)
    pooled = pybnn.maxpool2d(bits, kernel, stride, padding, flip)
    assert pooled.shape == want.shape
    np.testing.assert_array_equal(pooled.words, bits_to_words(want))
    # and the int32 path: maxpool2d(s) then the same threshold
    pi = pybnn.maxpool2d(s, kernel, stride, padding)
    np.testing.assert_array_equal(pi, m.astype(np.int32))
    np.testing.assert_array_equal(np.where(flip, pi > thresh, pi < thresh), want)


# ---------------------------------------------------------------------------
# Zero batch and errors
# ---------------------------------------------------------------------------
def test_zero_batch(each_isa):
    xp = pybnn.pack(np.zeros((0, 7, 7, 65), np.float32))
    assert pybnn.maxpool2d(xp, 3, 2, 1).shape == (0, 4, 4, 65)
    assert pybnn.maxpool2d(np.zeros((0, 7, 7, 5), np.int32), 2).shape == (0, 3, 3, 5)


BAD = [
    dict(kernel=2, padding=2),                 # padding == window
    dict(kernel=2, padding=(0, 0, 0, 3)),      # one side >= window
    dict(kernel=(3, 1), padding=(0, 1)),       # width padding 1 >= kw 1
    dict(kernel=6, padding=0),                 # window larger than the input
    dict(kernel=0),
    dict(kernel=(2, -1)),
    dict(kernel=2, stride=0),
    dict(kernel=2, stride=(1, -1)),
    dict(kernel=2, padding=-1),
]


@pytest.mark.parametrize("bad", BAD, ids=lambda d: ",".join("%s=%s" % kv for kv in d.items()))
def test_bad_pool_arguments(bad):
    rng = np.random.default_rng(7)
    v = biased_pm1(rng, (1, 5, 5, 70))
    args = dict(stride=None, padding=0)
    args.update(bad)
    kernel = args.pop("kernel")
    with pytest.raises(ValueError):
        pybnn.maxpool2d(pybnn.pack(v), kernel, **args)
    with pytest.raises(ValueError):
        pybnn.maxpool2d(v.astype(np.int32), kernel, **args)


def test_bad_pool_inputs():
    rng = np.random.default_rng(8)
    v = biased_pm1(rng, (1, 4, 4, 3))
    with pytest.raises(TypeError):
        pybnn.maxpool2d(v, 2)                            # float32 array
    with pytest.raises(TypeError):
        pybnn.maxpool2d(v.astype(np.int64), 2)
    with pytest.raises(ValueError):
        pybnn.maxpool2d(v.astype(np.int32), 2, flip=np.zeros(3, bool))  # flip: bits only
    with pytest.raises(ValueError):
        pybnn.maxpool2d(pybnn.pack(v[0]), 2)             # 3-D
    with pytest.raises(ValueError):
        pybnn.maxpool2d(pybnn.pack(v), 2, flip=np.zeros(4, bool))  # wrong length
