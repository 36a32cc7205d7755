"""The 8-bit first layer: gemm_u8 and conv2d_u8 against the plain integer
formula s = sum (x - 128) * w_pm1 (conv: padded taps x = pad_byte), for
both methods ("bitplane", "direct") and "auto", on every ISA, with every
epilogue.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pybnn
from oracles import (affine_f32, affine_neg, bits_to_words, conv2d_loops, conv2d_u8, f32_bits,
                     gemm_u8, pad4, threshold_neg)

METHODS = ["bitplane", "direct", "masked", "auto"]
KS = [1, 27, 63, 64, 65, 784]


# ---------------------------------------------------------------------------
# Helpers and oracles
# ---------------------------------------------------------------------------
def random_bytes(rng, shape):
    """uint8 data with 0, 127, 128, 255 and constant rows mixed in."""
    x = rng.integers(0, 256, size=shape, dtype=np.int64)
    r = rng.random(shape)
    for lo, v in ((0.0, 0), (0.04, 255), (0.08, 128), (0.11, 127)):
        x[(r >= lo) & (r < lo + 0.03)] = v
    x = x.astype(np.uint8)
    flat = x.reshape(-1, shape[-1])
    rows = rng.random(flat.shape[0])
    flat[rows < 0.05] = 0
    flat[(rows >= 0.05) & (rows < 0.1)] = 255
    return x


def random_pm1(rng, shape):
    w = np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)
    flat = w.reshape(-1, shape[-1])
    rows = rng.random(flat.shape[0])
    flat[rows < 0.05] = -1
    flat[(rows >= 0.05) & (rows < 0.1)] = 1
    return w


def random_affine(rng, m):
    def draw():
        v = (np.exp2(rng.uniform(-10, 4, size=m)) * rng.choice([-1.0, 1.0], size=m)).astype(np.float32)
        r = rng.random(m)
        v[r < 0.08] = 0.0
        v[(r >= 0.08) & (r < 0.16)] = -0.0
        return v
    s, o = draw(), draw()
    o = (o * 64).astype(np.float32)
    return s, o


def check_epilogues(rng, fn, expected, k):
    """fn(**epilogue kwargs) for INT32, FLOAT (with and without scale /
    offset), BITS (with and without flip) and folded thresholds."""
    o = expected.shape[-1]
    got = fn()
    assert got.dtype == np.int32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)

    scale, offset = random_affine(rng, o)
    aff = fn(scale=scale, offset=offset)
    assert aff.dtype == np.float32 and aff.shape == expected.shape
    np.testing.assert_array_equal(f32_bits(aff), f32_bits(affine_f32(expected, scale, offset)))
    np.testing.assert_array_equal(f32_bits(fn(scale=scale)),
                                  f32_bits(affine_f32(expected, scale, None)))
    np.testing.assert_array_equal(f32_bits(fn(offset=offset)),
                                  f32_bits(affine_f32(expected, None, offset)))

    lim = 128 * k
    thresh = np.where(rng.random(o) < 0.5, rng.integers(-300, 301, o),
                      rng.integers(-lim - 2, lim + 3, o)).astype(np.int32)
    flip = rng.random(o) < 0.5
    bits = fn(thresh=thresh, flip=flip)
    assert isinstance(bits, pybnn.PackedTensor) and bits.shape == expected.shape
    np.testing.assert_array_equal(bits.words,
                                  bits_to_words(threshold_neg(expected, thresh, flip)))
    np.testing.assert_array_equal(fn(thresh=thresh).words, bits_to_words(threshold_neg(expected, thresh)))

    # folded batch norm over s in [-128 k, 128 k]: sign(scale*s + offset) in float64
    gamma = rng.uniform(0.05, 2.0, o) * rng.choice([-1.0, 1.0], o)
    gamma[rng.random(o) < 0.1] = 0.0
    sc = gamma / np.sqrt(rng.uniform(0, 1000, o) + 1e-5)
    of = rng.uniform(-0.5, 0.5, o) - rng.uniform(-32 * k, 32 * k, o) * sc
    pick = expected.reshape(-1, o)[rng.integers(0, expected.size // o, o), np.arange(o)]
    of = np.where(rng.random(o) < 0.5, -(sc * pick), of)
    t2, f2 = pybnn.fold_threshold(sc, of, lim)
    want = affine_neg(sc, of, expected)
    np.testing.assert_array_equal(fn(thresh=t2, flip=f2).words, bits_to_words(want))


# ---------------------------------------------------------------------------
# Oracle self-checks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("pad_byte", [128, 0, 255])
def test_oracle_matches_loops(pad_byte):
    rng = np.random.default_rng(pad_byte)
    x = random_bytes(rng, (2, 4, 5, 3))
    w = random_pm1(rng, (2, 3, 2, 3))
    for stride, padding, dilation in [(1, 0, 1), ((2, 1), (1, 2, 0, 3), (1, 2)), (3, 4, 2)]:
        np.testing.assert_array_equal(conv2d_u8(x, w, stride, padding, dilation, pad_byte),
                                      conv2d_loops(x, w, stride, padding, dilation, pad_byte,
                                                   centre=128))


def test_oracle_known_values():
    x = np.array([[0, 255, 128]], np.uint8)
    w = np.array([[1, 1, 1], [-1, 1, -1]], np.int8)
    np.testing.assert_array_equal(gemm_u8(x, w), [[-128 + 127 + 0, 128 + 127 + 0]])


# ---------------------------------------------------------------------------
# gemm_u8
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("nm", [(1, 1), (3, 5), (7, 70), (2, 130)], ids=lambda v: "%dx%d" % v)
def test_gemm_u8(each_isa, method, k, nm):
    n, m = nm
    rng = np.random.default_rng(k * 100 + n * 10 + m)
    x = random_bytes(rng, (n, k))
    w = random_pm1(rng, (m, k))
    wp = pybnn.pack(w)
    expected = gemm_u8(x, w)
    check_epilogues(rng, lambda **e: pybnn.gemm_u8(x, wp, method=method, **e), expected, k)


@pytest.mark.parametrize("method", METHODS)
def test_gemm_u8_extremes(each_isa, method):
    """All-0 / all-255 bytes against all-(+1) / all-(-1) weights: the
    largest |s|, K = 784 and 4097."""
    for k in (784, 4097):
        x = np.array([[0] * k, [255] * k, [128] * k, [127] * k], np.uint8)
        w = np.array([[1] * k, [-1] * k], np.int8)
        got = pybnn.gemm_u8(x, pybnn.pack(w), method=method)
        np.testing.assert_array_equal(got, gemm_u8(x, w))
        assert got[0, 0] == -128 * k and got[0, 1] == 128 * k


def test_gemm_u8_methods_and_isas_identical(restore_isa):
    rng = np.random.default_rng(9)
    x = random_bytes(rng, (33, 1000))
    w = random_pm1(rng, (300, 1000))
    wp = pybnn.pack(w)
    scale, offset = random_affine(rng, 300)
    expected = gemm_u8(x, w)
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        for method in METHODS:
            msg = "%s %s" % (name, method)
            np.testing.assert_array_equal(pybnn.gemm_u8(x, wp, method=method), expected, err_msg=msg)
            np.testing.assert_array_equal(
                f32_bits(pybnn.gemm_u8(x, wp, scale=scale, offset=offset, method=method)),
                f32_bits(affine_f32(expected, scale, offset)), err_msg=msg)


def test_gemm_u8_strided_input(each_isa):
    """A non-contiguous uint8 view (every other column) gives the same."""
    rng = np.random.default_rng(10)
    big = random_bytes(rng, (5, 130))
    x = big[:, ::2]
    w = random_pm1(rng, (7, 65))
    for method in METHODS:
        np.testing.assert_array_equal(pybnn.gemm_u8(x, pybnn.pack(w), method=method),
                                      gemm_u8(np.ascontiguousarray(x), w))


def test_gemm_u8_out(each_isa):
    rng = np.random.default_rng(11)
    x = random_bytes(rng, (4, 65))
    w = random_pm1(rng, (70, 65))
    out = np.full((4, 70), 99, np.int32)
    assert pybnn.gemm_u8(x, pybnn.pack(w), out=out) is out
    np.testing.assert_array_equal(out, gemm_u8(x, w))


# ---------------------------------------------------------------------------
# conv2d_u8
# ---------------------------------------------------------------------------
@st.composite
def u8_geometries(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    form = draw(st.sampled_from(["int", "pair", "quad"]))
    if form == "int":
        padding = draw(st.integers(0, 4))
    elif form == "pair":
        padding = (draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    else:
        padding = tuple(draw(st.integers(0, 5)) for _ in range(4))
    pt, pb, pl, pr = pad4(padding)
    h = max(draw(st.sampled_from([1, 3, 5, 7, 9, 13, 4])), dh * (kh - 1) + 1 - pt - pb, 1)
    w = max(draw(st.sampled_from([1, 3, 5, 7, 9, 11, 6])), dw * (kw - 1) + 1 - pl - pr, 1)
    return dict(n=draw(st.integers(1, 3)), h=h, w=w, c=draw(st.sampled_from([1, 3, 4])),
                o=draw(st.sampled_from([1, 5, 70])), kh=kh, kw=kw,
                stride=(sh, sw) if sh != sw or draw(st.booleans()) else sh,
                dilation=(dh, dw) if dh != dw or draw(st.booleans()) else dh,
                padding=padding,
                pad_byte=draw(st.one_of(st.sampled_from([128, 0, 255]), st.integers(0, 255))),
                method=draw(st.sampled_from(METHODS)))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=u8_geometries(), seed=st.integers(0, 2 ** 32 - 1))
def test_conv2d_u8_random(each_isa, g, seed):
    rng = np.random.default_rng(seed)
    x = random_bytes(rng, (g["n"], g["h"], g["w"], g["c"]))
    w = random_pm1(rng, (g["o"], g["kh"], g["kw"], g["c"]))
    wp = pybnn.pack(w)
    geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"],
               pad_byte=g["pad_byte"])
    expected = conv2d_u8(x, w, **geo)
    check_epilogues(rng, lambda **e: pybnn.conv2d_u8(x, wp, method=g["method"], **geo, **e),
                    expected, g["kh"] * g["kw"] * g["c"])


U8_FIXED = [
    # n, h, w, c, o, (kh, kw), stride, padding, dilation
    (1, 3, 3, 3, 5, (3, 3), 1, 4, 1),              # outputs that see only padding
    (2, 9, 7, 3, 70, (1, 3), (1, 2), (0, 0, 1, 1), (1, 2)),
    (1, 9, 5, 4, 5, (5, 2), (3, 1), (2, 1, 0, 3), (2, 1)),
    (3, 11, 13, 1, 1, (5, 5), 3, (4, 0, 0, 4), 2),
    (1, 7, 7, 65, 70, (3, 3), 2, 1, 1),            # C past one word
    (2, 5, 5, 3, 64, (1, 1), 1, 0, 1),
    (1, 32, 32, 3, 16, (3, 3), 1, 1, 1),           # CIFAR-like first layer
]


@pytest.mark.parametrize("pad_byte", [128, 0, 255])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", U8_FIXED, ids=lambda c: "n%d_%dx%dx%d_o%d_k%dx%d" % (
    c[0], c[1], c[2], c[3], c[4], c[5][0], c[5][1]))
def test_conv2d_u8_fixed(each_isa, case, method, pad_byte):
    n, h, w, c, o, k, stride, padding, dilation = case
    rng = np.random.default_rng(hash((case, method, pad_byte)) % 2 ** 32)
    x = random_bytes(rng, (n, h, w, c))
    wt = random_pm1(rng, (o, k[0], k[1], c))
    wp = pybnn.pack(wt)
    geo = dict(stride=stride, padding=padding, dilation=dilation, pad_byte=pad_byte)
    expected = conv2d_u8(x, wt, **geo)
    check_epilogues(rng, lambda **e: pybnn.conv2d_u8(x, wp, method=method, **geo, **e),
                    expected, k[0] * k[1] * c)


@pytest.mark.parametrize("method", METHODS)
def test_conv2d_u8_padding_only_outputs(each_isa, method):
    rng = np.random.default_rng(12)
    x = random_bytes(rng, (1, 3, 3, 3))
    w = random_pm1(rng, (5, 3, 3, 3))
    wp = pybnn.pack(w)
    for pad_byte in (128, 0, 255, 77):
        out = pybnn.conv2d_u8(x, wp, padding=4, pad_byte=pad_byte, method=method)
        assert out.shape == (1, 9, 9, 5)
        want = (pad_byte - 128) * w.astype(np.int64).sum(axis=(1, 2, 3))
        np.testing.assert_array_equal(out[0, 0, 0], want)
        np.testing.assert_array_equal(out[0, 8, 8], want)
        if pad_byte == 128:
            assert np.all(out[0, 0] == 0)


def test_conv2d_u8_1x1_is_gemm_u8(each_isa):
    rng = np.random.default_rng(13)
    x = random_bytes(rng, (2, 5, 7, 3))
    w = random_pm1(rng, (70, 1, 1, 3))
    for method in METHODS:
        conv = pybnn.conv2d_u8(x, pybnn.pack(w), method=method)
        g = pybnn.gemm_u8(x.reshape(-1, 3), pybnn.pack(w.reshape(70, 3)), method=method)
        np.testing.assert_array_equal(conv.reshape(-1, 70), g)


def test_u8_thread_counts_identical(restore_num_threads, restore_isa):
    rng = np.random.default_rng(14)
    x = random_bytes(rng, (512, 784))
    w = random_pm1(rng, (128, 784))
    xc = random_bytes(rng, (2, 40, 40, 4))
    wc = random_pm1(rng, (96, 5, 5, 4))
    exp_g = gemm_u8(x, w)
    exp_c = conv2d_u8(xc, wc, padding=2, pad_byte=0)
    wp, wcp = pybnn.pack(w), pybnn.pack(wc)
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        for method in METHODS:
            for threads in (1, 2, 3):
                pybnn.set_num_threads(threads)
                msg = "%s %s threads=%d" % (name, method, threads)
                np.testing.assert_array_equal(pybnn.gemm_u8(x, wp, method=method), exp_g, err_msg=msg)
                np.testing.assert_array_equal(
                    pybnn.conv2d_u8(xc, wcp, padding=2, pad_byte=0, method=method), exp_c, err_msg=msg)


def test_conv2d_u8_zero_batch(each_isa):
    rng = np.random.default_rng(15)
    w = pybnn.pack(random_pm1(rng, (5, 3, 3, 3)))
    out = pybnn.conv2d_u8(np.zeros((0, 7, 7, 3), np.uint8), w, padding=1)
    assert out.shape == (0, 7, 7, 5)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
def test_u8_errors():
    rng = np.random.default_rng(16)
    x = random_bytes(rng, (2, 5, 5, 3))
    wp = pybnn.pack(random_pm1(rng, (4, 3, 3, 3)))
    out = np.full((2, 5, 5, 4), 31, np.int32)
    for bad in (256, -1, 1000):
        with pytest.raises(ValueError):
            pybnn.conv2d_u8(x, wp, padding=1, pad_byte=bad, out=out)
        assert np.all(out == 31)
    for kw in (dict(stride=0), dict(dilation=0), dict(padding=-1), dict(padding=(0, 0, -1, 0))):
        with pytest.raises(ValueError):
            pybnn.conv2d_u8(x, wp, out=out, **dict(dict(padding=1), **kw))
        assert np.all(out == 31)
    with pytest.raises(ValueError):
        pybnn.conv2d_u8(x, wp, padding=1, method="fast", out=out)
    assert np.all(out == 31)
    with pytest.raises(ValueError):      # kernel 3 > 5 with dilation 3 (reach 7)
        pybnn.conv2d_u8(x, wp, dilation=3)
    with pytest.raises(ValueError):      # channel mismatch
        pybnn.conv2d_u8(x[..., :2], wp)
    with pytest.raises(TypeError):       # not uint8
        pybnn.conv2d_u8(x.astype(np.float32), wp)
    with pytest.raises(TypeError):
        pybnn.conv2d_u8(x.astype(np.int8), wp)

    xg = random_bytes(rng, (3, 65))
    wg = pybnn.pack(random_pm1(rng, (5, 65)))
    outg = np.full((3, 5), 31, np.int32)
    with pytest.raises(ValueError):
        pybnn.gemm_u8(xg, wg, method="planes", out=outg)
    assert np.all(outg == 31)
    with pytest.raises(ValueError):      # K mismatch
        pybnn.gemm_u8(xg[:, :64], wg, out=outg)
    assert np.all(outg == 31)
    with pytest.raises(TypeError):
        pybnn.gemm_u8(xg.astype(np.int32), wg)
    with pytest.raises(ValueError):
        pybnn.gemm_u8(xg, wg, thresh=np.zeros(4, np.int32))     # wrong length
    with pytest.raises(ValueError):
        pybnn.gemm_u8(xg, wg, scale=np.ones(6, np.float32))


# ---------------------------------------------------------------------------
# Random dense shapes around the vector widths; layouts of x; out=
# ---------------------------------------------------------------------------
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 9), m=st.sampled_from([1, 2, 15, 16, 17, 31, 32, 33, 64, 65]),
       k=st.one_of(st.integers(1, 300), st.sampled_from([31, 32, 33, 63, 64, 65, 96, 97])),
       method=st.sampled_from(METHODS), seed=st.integers(0, 2 ** 32 - 1))
def test_gemm_u8_random_shapes(each_isa, n, m, k, method, seed):
    rng = np.random.default_rng(seed)
    x = random_bytes(rng, (n, k))
    w = random_pm1(rng, (m, k))
    check_epilogues(rng, lambda **e: pybnn.gemm_u8(x, pybnn.pack(w), method=method, **e),
                    gemm_u8(x, w), k)


def test_u8_input_layouts(each_isa):
    """Row-strided, Fortran-ordered and sliced uint8 inputs give the same
    result as their contiguous copies."""
    rng = np.random.default_rng(17)
    base = random_bytes(rng, (10, 70))
    w = random_pm1(rng, (9, 70))
    wp = pybnn.pack(w)
    for x in (base[::2], np.asfortranarray(base), base[1:8]):
        for method in METHODS:
            np.testing.assert_array_equal(pybnn.gemm_u8(x, wp, method=method),
                                          gemm_u8(np.ascontiguousarray(x), w))
    big = random_bytes(rng, (2, 9, 14, 6))
    wc = random_pm1(rng, (5, 3, 3, 3))
    for xc in (big[:, :, ::2, :3], big[:, ::2, :7, 3:], np.asfortranarray(big[..., :3])):
        for method in METHODS:
            np.testing.assert_array_equal(
                pybnn.conv2d_u8(xc, pybnn.pack(wc), padding=1, pad_byte=0, method=method),
                conv2d_u8(np.ascontiguousarray(xc), wc, padding=1, pad_byte=0))


def test_conv2d_u8_out(each_isa):
    rng = np.random.default_rng(18)
    x = random_bytes(rng, (2, 5, 5, 3))
    w = random_pm1(rng, (70, 3, 3, 3))
    wp = pybnn.pack(w)
    s = conv2d_u8(x, w, padding=1)
    out = np.full((2, 5, 5, 70), 5, np.int32)
    assert pybnn.conv2d_u8(x, wp, padding=1, out=out) is out
    np.testing.assert_array_equal(out, s)
    outf = np.full((2, 5, 5, 70), np.nan, np.float32)
    assert pybnn.conv2d_u8(x, wp, padding=1, scale=np.full(70, 0.5, np.float32), out=outf) is outf
    np.testing.assert_array_equal(outf, (s * 0.5).astype(np.float32))
    outb = np.full((2, 5, 5, 2), 0xFFFFFFFFFFFFFFFF, np.uint64)
    t = np.zeros(70, np.int32)
    res = pybnn.conv2d_u8(x, wp, padding=1, thresh=t, out=outb)
    assert isinstance(res, pybnn.PackedTensor)
    np.testing.assert_array_equal(outb, bits_to_words(s < 0))
    with pytest.raises(ValueError):
        pybnn.conv2d_u8(x, wp, padding=1, out=np.zeros((2, 5, 5, 71), np.int32))


def test_gemm_u8_k_zero(each_isa):
    """K = 0 is valid as for bgemm: every sum is 0."""
    x = np.zeros((3, 0), np.uint8)
    wp = pybnn.pack(np.zeros((5, 0), np.int8))
    for method in METHODS:
        out = pybnn.gemm_u8(x, wp, method=method)
        assert out.shape == (3, 5) and out.dtype == np.int32
        assert np.all(out == 0)
        off = np.array([1.5, -0.0, 0.0, -2.0, 3.0], np.float32)
        np.testing.assert_array_equal(f32_bits(pybnn.gemm_u8(x, wp, offset=off, method=method)),
                                      f32_bits(np.broadcast_to(off + np.float32(0.0), (3, 5))))
