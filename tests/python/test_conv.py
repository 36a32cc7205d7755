"""bconv2d, bconv2d_affine and bconv2d_threshold against numpy oracles, on
every ISA and thread count.

The oracle (oracles.conv2d) is a float convolution of +-1 data written
plainly in numpy:
the +-1 input is padded with the pad value (0 for zero padding, +1 for
pad_value=1) and every kernel tap adds `patch @ w_tap.T` over a strided
slice -- no library convolution.  A fully explicit loop version checks that
oracle on small cases.  Inputs are float32 arrays (with +0, -0 and NaN,
which pack as +1) packed by pybnn.pack (tested in test_pack.py).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pybnn
from oracles import (affine_f32, affine_neg, bits_to_words, conv2d, conv2d_loops, f32_bits,
                     pad4, signs, threshold_neg)

CS = [1, 3, 63, 64, 65, 130]
OS = [1, 5, 70]


# ---------------------------------------------------------------------------
# Helpers and oracles
# ---------------------------------------------------------------------------
def random_data(rng, shape):
    """float32 data whose signs are the +-1 values: random reals with +0,
    -0 and NaN mixed in (those pack as +1)."""
    x = rng.uniform(-2, 2, size=shape).astype(np.float32)
    special = rng.random(shape)
    x[special < 0.04] = 0.0
    x[(special >= 0.04) & (special < 0.08)] = -0.0
    x[(special >= 0.08) & (special < 0.10)] = np.nan
    # a few constant pixels / filter taps (extreme dots)
    if x.ndim == 4 and x.shape[0] * x.shape[1] * x.shape[2] > 2:
        flat = x.reshape(-1, x.shape[-1])
        rows = rng.random(flat.shape[0]) < 0.1
        flat[rows] = -1.0
    return x


def random_affine(rng, m):
    """float32 scale / offset: magnitudes 2^-6..2^6, random signs, with +-0."""
    def draw():
        v = (np.exp2(rng.uniform(-6, 6, size=m)) * rng.choice([-1.0, 1.0], size=m)).astype(np.float32)
        r = rng.random(m)
        v[r < 0.08] = 0.0
        v[(r >= 0.08) & (r < 0.16)] = -0.0
        return v
    return draw(), draw()


def make_case(rng, n, h, w, c, o, kh, kw):
    xf = random_data(rng, (n, h, w, c))
    wf = random_data(rng, (o, kh, kw, c))
    return xf, wf, pybnn.pack(xf), pybnn.pack(wf)


def check_all_epilogues(rng, xp, wp, expected, kdot, **geo):
    """INT32, FLOAT and BITS outputs of one geometry against `expected`."""
    n, oh, ow, o = expected.shape
    got = pybnn.bconv2d(xp, wp, **geo)
    assert got.dtype == np.int32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)

    scale, offset = random_affine(rng, o)
    aff = pybnn.bconv2d_affine(xp, wp, scale, offset, **geo)
    assert aff.dtype == np.float32 and aff.shape == expected.shape
    np.testing.assert_array_equal(f32_bits(aff), f32_bits(affine_f32(expected, scale, offset)))
    aff0 = pybnn.bconv2d_affine(xp, wp, **geo)
    np.testing.assert_array_equal(f32_bits(aff0), f32_bits(expected.astype(np.float32)))

    thresh = rng.integers(-kdot - 2, kdot + 3, size=o).astype(np.int32)
    flip = rng.random(o) < 0.5
    bits = pybnn.bconv2d_threshold(xp, wp, thresh, flip, **geo)
    assert isinstance(bits, pybnn.PackedTensor) and bits.shape == expected.shape
    want = threshold_neg(expected, thresh, flip)
    np.testing.assert_array_equal(bits.words, bits_to_words(want))
    bits0 = pybnn.bconv2d_threshold(xp, wp, thresh, **geo)
    np.testing.assert_array_equal(bits0.words, bits_to_words(threshold_neg(expected, thresh)))
    return got


# ---------------------------------------------------------------------------
# Oracle self-checks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("pad_value", [0, 1])
def test_oracle_matches_explicit_loops(pad_value):
    rng = np.random.default_rng(pad_value)
    xs = signs(random_data(rng, (2, 5, 4, 3)))
    ws = signs(random_data(rng, (3, 3, 2, 3)))
    for stride, padding, dilation in [(1, 0, 1), ((2, 1), (1, 2, 0, 3), (1, 2)),
                                      (3, 4, 2), (1, (2, 1), 1)]:
        np.testing.assert_array_equal(
            conv2d(xs, ws, stride, padding, dilation, pad_value),
            conv2d_loops(xs, ws, stride, padding, dilation, pad_value))


def test_oracle_zero_padding_is_zero():
    xs = np.ones((1, 1, 1, 2), np.int64)
    ws = np.ones((1, 1, 1, 2), np.int64)
    out = conv2d(xs, ws, padding=2)
    assert out.shape == (1, 5, 5, 1)
    assert out[0, 2, 2, 0] == 2 and out.sum() == 2
    assert np.all(conv2d(xs, ws, padding=2, pad_value=1) == 2)


# ---------------------------------------------------------------------------
# Property test over random geometries (every ISA)
# ---------------------------------------------------------------------------
@st.composite
def geometries(draw):
    n = draw(st.integers(1, 3), label="n")
    c = draw(st.sampled_from(CS), label="c")
    o = draw(st.sampled_from(OS + [64]), label="o")
    kh = draw(st.integers(1, 5), label="kh")
    kw = draw(st.integers(1, 5), label="kw")
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    form = draw(st.sampled_from(["int", "pair", "quad"]), label="padding form")
    if form == "int":
        padding = draw(st.integers(0, 4))
    elif form == "pair":
        padding = (draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    else:
        padding = tuple(draw(st.integers(0, 5)) for _ in range(4))
    pt, pb, pl, pr = pad4(padding)
    h = draw(st.sampled_from([1, 3, 5, 7, 9, 11, 2, 6]), label="h")
    w = draw(st.sampled_from([1, 3, 5, 7, 9, 11, 4, 8]), label="w")
    h = max(h, dh * (kh - 1) + 1 - pt - pb, 1)
    w = max(w, dw * (kw - 1) + 1 - pl - pr, 1)
    stride = (sh, sw) if sh != sw or draw(st.booleans()) else sh
    dilation = (dh, dw) if dh != dw or draw(st.booleans()) else dh
    pad_value = draw(st.sampled_from([0, 1]), label="pad_value")
    return dict(n=n, h=h, w=w, c=c, o=o, kh=kh, kw=kw, stride=stride, padding=padding,
                dilation=dilation, pad_value=pad_value)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=geometries(), seed=st.integers(0, 2 ** 32 - 1))
def test_bconv2d_random_geometries(each_isa, g, seed):
    rng = np.random.default_rng(seed)
    xf, wf, xp, wp = make_case(rng, g["n"], g["h"], g["w"], g["c"], g["o"], g["kh"], g["kw"])
    geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"],
               pad_value=g["pad_value"])
    expected = conv2d(signs(xf), signs(wf), **geo)
    check_all_epilogues(rng, xp, wp, expected, g["kh"] * g["kw"] * g["c"], **geo)


# ---------------------------------------------------------------------------
# Fixed geometries (every ISA)
# ---------------------------------------------------------------------------
FIXED = [
    # n, h, w, c, o, (kh, kw), stride, padding, dilation
    (1, 3, 3, 3, 5, (3, 3), 1, 4, 1),                     # pad 4 > reach of 3x3
    (2, 5, 7, 65, 70, (3, 3), 2, (4, 4, 4, 4), 1),
    (1, 7, 9, 64, 70, (1, 3), (1, 2), (0, 0, 1, 1), (1, 2)),
    (2, 9, 5, 130, 5, (5, 2), (3, 1), (2, 1, 0, 3), (2, 1)),
    (3, 11, 13, 63, 1, (5, 5), 3, (4, 0, 0, 4), 2),
    (1, 5, 3, 1, 70, (2, 5), 1, (0, 1, 2, 2), 1),
    (2, 5, 3, 130, 70, (1, 1), 1, 0, 1),
    (1, 3, 2, 65, 5, (5, 4), 1, 1, 1),                     # kernel == padded input
    (1, 1, 1, 1, 1, (1, 1), 1, 0, 1),
    (1, 7, 7, 3, 5, (1, 1), 3, 1, 1),                      # stride > kernel
    (1, 6, 6, 130, 130, (4, 4), 2, (1, 2, 2, 1), 1),
    (1, 4, 4, 1024, 5, (3, 3), 1, 1, 1),                   # 144 words per dot
    (1, 3, 3, 65, 1030, (3, 3), 1, 1, 1),                  # > 1024 filters
]


@pytest.mark.parametrize("pad_value", [0, 1])
@pytest.mark.parametrize("case", FIXED, ids=lambda c: "n%d_%dx%dx%d_o%d_k%dx%d" % (
    c[0], c[1], c[2], c[3], c[4], c[5][0], c[5][1]))
def test_bconv2d_fixed(each_isa, case, pad_value):
    n, h, w, c, o, k, stride, padding, dilation = case
    rng = np.random.default_rng(hash((case, pad_value)) % 2 ** 32)
    xf, wf, xp, wp = make_case(rng, n, h, w, c, o, k[0], k[1])
    geo = dict(stride=stride, padding=padding, dilation=dilation, pad_value=pad_value)
    expected = conv2d(signs(xf), signs(wf), **geo)
    check_all_epilogues(rng, xp, wp, expected, k[0] * k[1] * c, **geo)


@pytest.mark.parametrize("pad_value", [0, 1])
def test_outputs_seeing_only_padding(each_isa, pad_value):
    """pad 4 around a 3x3 input with a 3x3 kernel: the border ring of the
    9x9 output sees only padding: 0 with zero padding, the sum of each
    filter's signs with +1 padding."""
    rng = np.random.default_rng(11)
    xf, wf, xp, wp = make_case(rng, 2, 3, 3, 65, 70, 3, 3)
    out = pybnn.bconv2d(xp, wp, padding=4, pad_value=pad_value)
    assert out.shape == (2, 9, 9, 70)
    ring = np.ones((9, 9), bool)
    ring[2:7, 2:7] = False          # outputs 2..6 touch the input
    want = 0 if pad_value == 0 else signs(wf).sum(axis=(1, 2, 3))
    for b in range(2):
        np.testing.assert_array_equal(out[b][ring], np.broadcast_to(want, (ring.sum(), 70)))
    np.testing.assert_array_equal(out, conv2d(signs(xf), signs(wf), padding=4,
                                                   pad_value=pad_value))


def test_1x1_conv_is_bgemm(each_isa):
    rng = np.random.default_rng(3)
    xf, wf, xp, wp = make_case(rng, 2, 5, 7, 130, 70, 1, 1)
    conv = pybnn.bconv2d(xp, wp)
    g = pybnn.bgemm(pybnn.pack(xf.reshape(-1, 130)), pybnn.pack(wf.reshape(70, 130)))
    np.testing.assert_array_equal(conv.reshape(-1, 70), g)


def test_zero_batch(each_isa):
    rng = np.random.default_rng(4)
    xp = pybnn.pack(np.zeros((0, 5, 7, 65), np.float32))
    wp = pybnn.pack(random_data(rng, (70, 3, 3, 65)))
    for pv in (0, 1):
        out = pybnn.bconv2d(xp, wp, padding=1, stride=(1, 2), pad_value=pv)
        assert out.shape == (0, 5, 4, 70) and out.dtype == np.int32
        assert pybnn.bconv2d_affine(xp, wp, padding=1, stride=(1, 2), pad_value=pv).shape == (0, 5, 4, 70)
        th = pybnn.bconv2d_threshold(xp, wp, np.zeros(70, np.int32), padding=1, stride=(1, 2),
                                     pad_value=pv)
        assert th.shape == (0, 5, 4, 70)


# ---------------------------------------------------------------------------
# Folded batch norm: threshold epilogue == sign(BN(conv)) in float64
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["positive", "negative", "mixed"])
@pytest.mark.parametrize("pad_value", [0, 1])
def test_threshold_equals_sign_of_batchnorm(each_isa, mode, pad_value):
    rng = np.random.default_rng({"positive": 1, "negative": 2, "mixed": 3}[mode] + 10 * pad_value)
    n, h, w, c, o, kh, kw = 2, 9, 7, 65, 70, 3, 3
    xf, wf, xp, wp = make_case(rng, n, h, w, c, o, kh, kw)
    geo = dict(stride=(1, 2), padding=(2, 1, 0, 1), pad_value=pad_value)
    s = conv2d(signs(xf), signs(wf), **geo)
    k = kh * kw * c
    gamma = rng.uniform(0.05, 2.0, o)
    if mode == "negative":
        gamma = -gamma
    elif mode == "mixed":
        gamma = gamma * rng.choice([-1.0, 1.0], o)
        gamma[rng.random(o) < 0.1] = 0.0
    var = rng.uniform(0.0, 10.0, o)
    mean = rng.uniform(-k / 2, k / 2, o)
    beta = rng.uniform(-0.5, 0.5, o)
    eps = 1e-5
    # fold_batchnorm: sign(gamma * (s - mean) / sqrt(var + eps) + beta)
    t, f = pybnn.fold_batchnorm(gamma, beta, mean, var, eps, k)
    scale = gamma / np.sqrt(var + eps)
    offset = beta - mean * scale
    want = affine_neg(scale, offset, s)
    np.testing.assert_array_equal(pybnn.bconv2d_threshold(xp, wp, t, f, **geo).words,
                                  bits_to_words(want))
    # fold_threshold with boundaries placed exactly on occurring values
    pick = s.reshape(-1, o)[rng.integers(0, s.size // o, o), np.arange(o)]
    offset2 = np.where(rng.random(o) < 0.5, -(scale * pick), offset)
    t2, f2 = pybnn.fold_threshold(scale, offset2, k)
    assert np.array_equal(f2, scale < 0)
    want2 = affine_neg(scale, offset2, s)
    bits = pybnn.bconv2d_threshold(xp, wp, t2, f2, **geo)
    np.testing.assert_array_equal(bits.words, bits_to_words(want2))
    np.testing.assert_array_equal(bits.unpack(), np.where(want2, -1.0, 1.0).astype(np.float32))


# ---------------------------------------------------------------------------
# Every ISA gives the same bytes; thread counts give the same bytes
# ---------------------------------------------------------------------------
def _all_outputs(xp, wp, scale, offset, thresh, flip, **geo):
    return (pybnn.bconv2d(xp, wp, **geo),
            f32_bits(pybnn.bconv2d_affine(xp, wp, scale, offset, **geo)),
            pybnn.bconv2d_threshold(xp, wp, thresh, flip, **geo).words)


@pytest.mark.parametrize("pad_value", [0, 1])
def test_isas_identical(restore_isa, pad_value):
    rng = np.random.default_rng(20 + pad_value)
    xf, wf, xp, wp = make_case(rng, 3, 11, 9, 130, 70, 3, 5)
    geo = dict(stride=(2, 1), padding=(1, 3, 2, 0), dilation=(1, 2), pad_value=pad_value)
    scale, offset = random_affine(rng, 70)
    thresh = rng.integers(-100, 100, 70).astype(np.int32)
    flip = rng.random(70) < 0.5
    results = {}
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        results[name] = _all_outputs(xp, wp, scale, offset, thresh, flip, **geo)
    for name, res in results.items():
        for a, b in zip(res, results["ref"]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(results["ref"][0], conv2d(signs(xf), signs(wf), **geo))


@pytest.mark.parametrize("pad_value", [0, 1])
def test_thread_counts_identical(restore_num_threads, restore_isa, pad_value):
    """N=2, 16x16, C=128, O=128, 3x3: 512 output pixels x 128 filters x 18
    words > 2^20, large enough to run on several threads."""
    rng = np.random.default_rng(30 + pad_value)
    xf, wf, xp, wp = make_case(rng, 2, 16, 16, 128, 128, 3, 3)
    geo = dict(padding=1, pad_value=pad_value)
    expected = conv2d(signs(xf), signs(wf), **geo)
    scale, offset = random_affine(rng, 128)
    thresh = rng.integers(-200, 200, 128).astype(np.int32)
    flip = rng.random(128) < 0.5
    exp_aff = f32_bits(affine_f32(expected, scale, offset))
    exp_bits = bits_to_words(threshold_neg(expected, thresh, flip))
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        for threads in (1, 2, 3):
            pybnn.set_num_threads(threads)
            dot, aff, bits = _all_outputs(xp, wp, scale, offset, thresh, flip, **geo)
            msg = "%s threads=%d" % (name, threads)
            np.testing.assert_array_equal(dot, expected, err_msg=msg)
            np.testing.assert_array_equal(aff, exp_aff, err_msg=msg)
            np.testing.assert_array_equal(bits, exp_bits, err_msg=msg)


# ---------------------------------------------------------------------------
# out=
# ---------------------------------------------------------------------------
def test_out_is_used(each_isa):
    rng = np.random.default_rng(40)
    xf, wf, xp, wp = make_case(rng, 2, 5, 5, 65, 70, 3, 3)
    expected = conv2d(signs(xf), signs(wf), padding=1)
    out = np.full((2, 5, 5, 70), 12345, np.int32)
    assert pybnn.bconv2d(xp, wp, padding=1, out=out) is out
    np.testing.assert_array_equal(out, expected)
    outf = np.full((2, 5, 5, 70), np.nan, np.float32)
    assert pybnn.bconv2d_affine(xp, wp, padding=1, out=outf) is outf
    np.testing.assert_array_equal(outf, expected.astype(np.float32))
    outb = np.full((2, 5, 5, 2), 0xFFFFFFFFFFFFFFFF, np.uint64)  # stale pad bits
    t = np.zeros(70, np.int32)
    res = pybnn.bconv2d_threshold(xp, wp, t, padding=1, out=outb)
    assert res.words is outb or np.shares_memory(res.words, outb)
    np.testing.assert_array_equal(outb, bits_to_words(expected < 0))


# ---------------------------------------------------------------------------
# Errors: a clear exception, and a given out= is left untouched
# ---------------------------------------------------------------------------
def _base(rng=None):
    rng = rng or np.random.default_rng(50)
    return make_case(rng, 2, 5, 5, 65, 3, 3, 3)


BAD_GEOMETRY = [
    dict(stride=0), dict(stride=-1), dict(stride=(1, 0)), dict(dilation=0),
    dict(dilation=(0, 1)), dict(dilation=-2), dict(padding=-1), dict(padding=(0, -1)),
    dict(padding=(0, 0, 0, -1)), dict(pad_value=2), dict(pad_value=-1),
    dict(padding=0, dilation=3),             # reach 7 > 5
    dict(padding=(0, 0, 0, 0), stride=1, dilation=(1, 4)),
]


@pytest.mark.parametrize("bad", BAD_GEOMETRY, ids=lambda d: ",".join("%s=%s" % kv for kv in d.items()))
def test_bad_geometry_raises_and_writes_nothing(bad):
    xf, wf, xp, wp = _base()
    geo = dict(stride=1, padding=1, dilation=1, pad_value=0)
    geo.update(bad)
    out = np.full((2, 5, 5, 3), 777, np.int32)
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, wp, out=out, **geo)
    assert np.all(out == 777)
    outf = np.full((2, 5, 5, 3), 7.0, np.float32)
    with pytest.raises(ValueError):
        pybnn.bconv2d_affine(xp, wp, out=outf, **geo)
    assert np.all(outf == 7.0)
    outb = np.full((2, 5, 5, 1), 0xA5A5, np.uint64)
    with pytest.raises(ValueError):
        pybnn.bconv2d_threshold(xp, wp, np.zeros(3, np.int32), out=outb, **geo)
    assert np.all(outb == 0xA5A5)


def test_kernel_larger_than_padded_input():
    rng = np.random.default_rng(51)
    xp = pybnn.pack(random_data(rng, (1, 3, 4, 8)))
    wp = pybnn.pack(random_data(rng, (2, 5, 3, 8)))
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, wp)               # 5 > 3
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, wp, padding=(0, 1))  # 5 > 3 + 0 (pads the width only)
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, wp, padding=(1, 0, 5, 5))  # 5 > 3 + 1
    assert pybnn.bconv2d(xp, wp, padding=(1, 1, 0, 0)).shape == (1, 1, 2, 2)


def test_channel_mismatch():
    rng = np.random.default_rng(52)
    xp = pybnn.pack(random_data(rng, (1, 5, 5, 64)))
    for wc in (63, 65, 1):   # 63 has the same number of words as 64
        wp = pybnn.pack(random_data(rng, (2, 3, 3, wc)))
        out = np.full((1, 3, 3, 2), 5, np.int32)
        with pytest.raises(ValueError):
            pybnn.bconv2d(xp, wp, out=out)
        assert np.all(out == 5)
        with pytest.raises(ValueError):
            pybnn.bconv2d_affine(xp, wp)
        with pytest.raises(ValueError):
            pybnn.bconv2d_threshold(xp, wp, np.zeros(2, np.int32))


def test_bad_operands():
    xf, wf, xp, wp = _base()
    with pytest.raises(TypeError):
        pybnn.bconv2d(xf, wp)
    with pytest.raises(TypeError):
        pybnn.bconv2d(xp, wf)
    with pytest.raises(ValueError):
        pybnn.bconv2d(pybnn.pack(xf.reshape(50, 65)), wp)        # not 4-D
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, pybnn.pack(wf.reshape(3, 9, 65)))
    with pytest.raises((ValueError, TypeError)):
        pybnn.bconv2d(xp, wp, padding=(1, 1, 1))                 # 3 values
    with pytest.raises(ValueError):
        pybnn.bconv2d_threshold(xp, wp, np.zeros(4, np.int32))   # wrong length
    with pytest.raises(ValueError):
        pybnn.bconv2d_affine(xp, wp, scale=np.ones(2, np.float32))
    # out of the wrong shape / dtype
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, wp, padding=1, out=np.zeros((2, 5, 5, 4), np.int32))
    with pytest.raises(TypeError):
        pybnn.bconv2d(xp, wp, padding=1, out=np.zeros((2, 5, 5, 3), np.int64))


# ---------------------------------------------------------------------------
# correction= (pybnn.conv2d_correction): the same bytes, validated
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("pad_value", [0, 1])
def test_precomputed_correction(each_isa, pad_value):
    rng = np.random.default_rng(60 + pad_value)
    xf, wf, xp, wp = make_case(rng, 2, 7, 5, 65, 70, 3, 2)
    corr = pybnn.conv2d_correction(wp)
    # the dot of an all-(+1) pixel with each tap's weights: [KH*KW, O]
    ws = signs(wf)
    np.testing.assert_array_equal(np.asarray(corr),
                                  ws.sum(axis=3).reshape(70, 6).T)
    geo = dict(stride=(2, 1), padding=(3, 1, 0, 2), dilation=(1, 2), pad_value=pad_value)
    scale, offset = random_affine(rng, 70)
    thresh = rng.integers(-50, 50, 70).astype(np.int32)
    flip = rng.random(70) < 0.5
    np.testing.assert_array_equal(pybnn.bconv2d(xp, wp, correction=corr, **geo),
                                  conv2d(signs(xf), ws, **geo))
    np.testing.assert_array_equal(
        f32_bits(pybnn.bconv2d_affine(xp, wp, scale, offset, correction=corr, **geo)),
        f32_bits(pybnn.bconv2d_affine(xp, wp, scale, offset, **geo)))
    assert (pybnn.bconv2d_threshold(xp, wp, thresh, flip, correction=corr, **geo)
            == pybnn.bconv2d_threshold(xp, wp, thresh, flip, **geo))


def test_bad_correction():
    rng = np.random.default_rng(61)
    xf, wf, xp, wp = make_case(rng, 1, 5, 5, 3, 4, 3, 3)
    corr = np.asarray(pybnn.conv2d_correction(wp))
    out = np.full((1, 5, 5, 4), 9, np.int32)
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, wp, padding=1, correction=corr[:4], out=out)       # too short
    with pytest.raises(ValueError):
        pybnn.bconv2d(xp, wp, padding=1, correction=corr.T.copy(), out=out)  # [O, KH*KW]
    with pytest.raises(TypeError):
        pybnn.bconv2d(xp, wp, padding=1, correction=corr.astype(np.int64), out=out)
    assert np.all(out == 9)
