"""bgemm, bgemm_affine, bgemm_threshold, fold_threshold and fold_batchnorm
against numpy oracles, on every ISA and thread count.

Operands are random +-1 matrices built in numpy and packed with pybnn.pack
(checked against its own oracle in test_pack.py); the oracle of bgemm is
the integer matmul of those +-1 matrices.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pybnn
from oracles import (affine_f32, affine_neg, bits_to_words, bn_scale_offset, dot_words,
                     exact_fma_f32, f32_bits, gemm_pm1, threshold_neg, words_per_row)

KS = [1, 63, 64, 65, 127, 129, 1000, 4097]
NMS = [(1, 1), (3, 5), (7, 67), (5, 130), (2, 64)]
ISAS = ("ref", "avx2", "avx512")


# ---------------------------------------------------------------------------
# Helpers and oracles
# ---------------------------------------------------------------------------
def random_pm1(rng, shape):
    """A random int8 +-1 array."""
    return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)


def operands(rng, n, m, k, lead=None):
    """(a_pm1, w_pm1, a_packed, w_packed) with a [*lead, n, K] and w [M, K]."""
    a_shape = (tuple(lead) if lead else ()) + ((n,) if n is not None else ()) + (k,)
    a = random_pm1(rng, a_shape)
    w = random_pm1(rng, (m, k))
    return a, w, pybnn.pack(a), pybnn.pack(w)


def random_words(rng, rows, k):
    w = rng.integers(0, 2 ** 64, size=(rows, words_per_row(k)), dtype=np.uint64)
    if k % 64:
        w[:, -1] &= np.uint64((1 << (k % 64)) - 1)
    return w


def with_isa(name, fn):
    original = pybnn.isa()
    pybnn.set_isa(name)
    try:
        return fn()
    finally:
        pybnn.set_isa(original)


def random_affine_params(rng, m, zero_fraction=0.1):
    """float32 scale/offset with |value| in [2^-4, 2^4) and random signs,
    some zeros: small enough that the float64 oracle is exact."""
    def draw():
        mag = np.exp2(rng.uniform(-4, 4, size=m))
        v = (mag * rng.choice([-1.0, 1.0], size=m)).astype(np.float32)
        v[rng.random(m) < zero_fraction] = 0
        return v
    return draw(), draw()


# ---------------------------------------------------------------------------
# Oracle self-checks
# ---------------------------------------------------------------------------
def test_oracles_agree():
    rng = np.random.default_rng(0)
    for k in [1, 63, 64, 65, 200]:
        a, w, ap, wp = operands(rng, 5, 7, k)
        np.testing.assert_array_equal(gemm_pm1(a, w), dot_words(ap.words, wp.words, k))


def test_exact_fma_oracle():
    assert exact_fma_f32(3, 1 + 2 ** -23, -3) == np.float32(3 * 2 ** -23)
    assert exact_fma_f32(2, 0.5, 0.25) == np.float32(1.25)
    assert np.signbit(exact_fma_f32(0, -1.0, 0.0)) == np.False_
    assert np.signbit(exact_fma_f32(0, -1.0, -0.0)) == np.True_
    # a midpoint: float64-then-float32 would round to even (1.0), fma rounds up
    s = np.float32(172961 * 2.0 ** -24)
    assert exact_fma_f32(97, s, 2.0 ** -60) == np.float32(1 + 2 ** -23)
    assert np.float32(97 * np.float64(s) + 2.0 ** -60) == np.float32(1.0)


# ---------------------------------------------------------------------------
# bgemm
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("nm", NMS, ids=lambda nm: "%dx%d" % nm)
def test_bgemm_matches_numpy(each_isa, k, nm):
    n, m = nm
    rng = np.random.default_rng(k * 1000 + n * 10 + m)
    a, w, ap, wp = operands(rng, n, m, k)
    out = pybnn.bgemm(ap, wp)
    assert out.dtype == np.int32 and out.shape == (n, m)
    np.testing.assert_array_equal(out, gemm_pm1(a, w))


@pytest.mark.parametrize("k", [1, 65, 1000, 4097])
@pytest.mark.parametrize("m", [1025, 1100, 2049])
def test_bgemm_more_than_1024_columns(each_isa, k, m):
    rng = np.random.default_rng(k + m)
    a, w, ap, wp = operands(rng, 5, m, k)
    np.testing.assert_array_equal(pybnn.bgemm(ap, wp), gemm_pm1(a, w))


def test_bgemm_extreme_dots(each_isa):
    for k in [1, 64, 65, 4097]:
        x = np.ones((3, k), np.float32)
        x[1] = -1
        x[2, ::2] = -1
        p = pybnn.pack(x)
        np.testing.assert_array_equal(pybnn.bgemm(p, p), gemm_pm1(x, x))
        assert pybnn.bgemm(p, p)[0, 0] == k and pybnn.bgemm(p, p)[0, 1] == -k


@pytest.mark.parametrize("lead", [(2,), (2, 3), (1, 1, 4)])
@pytest.mark.parametrize("k", [63, 129])
def test_bgemm_leading_dims(each_isa, lead, k):
    rng = np.random.default_rng(len(lead) + k)
    a, w, ap, wp = operands(rng, None, 9, k, lead=lead)
    assert ap.shape == lead + (k,)
    out = pybnn.bgemm(ap, wp)
    assert out.shape == lead + (9,)
    np.testing.assert_array_equal(out, gemm_pm1(a, w))
    aff = pybnn.bgemm_affine(ap, wp)
    assert aff.shape == lead + (9,) and aff.dtype == np.float32
    np.testing.assert_array_equal(aff, gemm_pm1(a, w).astype(np.float32))
    t = np.zeros(9, np.int32)
    th = pybnn.bgemm_threshold(ap, wp, t)
    assert th.shape == lead + (9,)
    assert th.words.shape == lead + (1,)
    np.testing.assert_array_equal(th.unpack(), np.where(gemm_pm1(a, w) < 0, -1, 1))


def test_bgemm_1d_a(each_isa):
    rng = np.random.default_rng(1)
    a, w, ap, wp = operands(rng, None, 6, 100)
    out = pybnn.bgemm(ap, wp)
    assert out.shape == (6,)
    np.testing.assert_array_equal(out, gemm_pm1(a, w))


@pytest.mark.parametrize("n,m,k", [(9, 1100, 129), (13, 70, 4097), (64, 257, 1000)])
def test_results_identical_across_isas(n, m, k):
    rng = np.random.default_rng(n + m + k)
    a, w, ap, wp = operands(rng, n, m, k)
    scale, offset = random_affine_params(rng, m)
    thresh = rng.integers(-k, k + 1, size=m).astype(np.int32)
    flip = rng.random(m) < 0.5
    results = {}
    for name in pybnn.available_isas():
        results[name] = with_isa(name, lambda: (
            pybnn.bgemm(ap, wp),
            pybnn.bgemm_affine(ap, wp, scale, offset),
            pybnn.bgemm_threshold(ap, wp, thresh, flip)))
    ref = results["ref"]
    for name, (dot, aff, th) in results.items():
        np.testing.assert_array_equal(dot, ref[0], err_msg=name)
        np.testing.assert_array_equal(f32_bits(aff), f32_bits(ref[1]), err_msg=name)
        assert th == ref[2], name
    np.testing.assert_array_equal(ref[0], gemm_pm1(a, w))


# ---------------------------------------------------------------------------
# Threads: big enough to go parallel (more than 2^20 word pairs)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n,m,k", [(64, 2048, 4096),    # row split
                                   (67, 2048, 4096),    # uneven row tiles
                                   (1, 16384, 4096),    # column-block split
                                   (2, 9000, 4097)])    # column blocks + ragged edge
def test_thread_counts_give_identical_results(restore_num_threads, restore_isa, n, m, k):
    rng = np.random.default_rng(n * m + k)
    aw, ww = random_words(rng, n, k), random_words(rng, m, k)
    ap, wp = pybnn.PackedTensor(aw, (n, k)), pybnn.PackedTensor(ww, (m, k))
    expected = dot_words(aw, ww, k)
    assert n * m * words_per_row(k) >= 2 ** 20
    scale, offset = random_affine_params(rng, m)
    thresh = rng.integers(-64, 65, size=m).astype(np.int32)
    flip = rng.random(m) < 0.5
    exp_aff = affine_f32(expected, scale, offset)
    exp_bits = np.where(flip, expected > thresh, expected < thresh)
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        for threads in (1, 2, 3):
            pybnn.set_num_threads(threads)
            assert pybnn.get_num_threads() == threads
            np.testing.assert_array_equal(pybnn.bgemm(ap, wp), expected,
                                          err_msg="%s threads=%d" % (name, threads))
            np.testing.assert_array_equal(f32_bits(pybnn.bgemm_affine(ap, wp, scale, offset)),
                                          f32_bits(exp_aff))
            th = pybnn.bgemm_threshold(ap, wp, thresh, flip)
            np.testing.assert_array_equal(th.words, bits_to_words(exp_bits))


# ---------------------------------------------------------------------------
# out=
# ---------------------------------------------------------------------------
def test_out_is_reused(each_isa):
    rng = np.random.default_rng(2)
    a, w, ap, wp = operands(rng, 4, 70, 100)
    dot = gemm_pm1(a, w)
    out = np.full((4, 70), 12345, dtype=np.int32)
    r = pybnn.bgemm(ap, wp, out=out)
    assert r is out
    np.testing.assert_array_equal(out, dot)

    outf = np.full((4, 70), np.nan, dtype=np.float32)
    r = pybnn.bgemm_affine(ap, wp, out=outf)
    assert r is outf
    np.testing.assert_array_equal(outf, dot.astype(np.float32))

    outb = np.full((4, 2), 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)  # stale pad bits too
    t = np.zeros(70, np.int32)
    r = pybnn.bgemm_threshold(ap, wp, t, out=outb)
    assert isinstance(r, pybnn.PackedTensor)
    assert r.words is outb
    np.testing.assert_array_equal(outb, bits_to_words(dot < 0))
    assert not np.any(outb[:, -1] >> np.uint64(70 - 64))  # pad bits rewritten as 0


def test_threshold_out_overlapping_an_operand():
    """out= sharing memory with an operand must be rejected or give the same
    result as a separate buffer (numpy semantics), never silently corrupt.
    K = M = 4096 so that several column blocks re-read the rows of a."""
    rng = np.random.default_rng(15)
    n, k, m = 8, 4096, 4096
    aw, ww = random_words(rng, n, k), random_words(rng, m, k)
    wp = pybnn.PackedTensor(ww, (m, k))
    thresh = np.zeros(m, np.int32)
    expected = pybnn.bgemm_threshold(pybnn.PackedTensor(aw.copy(), (n, k)), wp, thresh)
    ap = pybnn.PackedTensor(aw.copy(), (n, k))
    try:
        res = pybnn.bgemm_threshold(ap, wp, thresh, out=ap.words)
    except ValueError:
        return
    assert res == expected


def test_out_is_reused_with_leading_dims():
    rng = np.random.default_rng(3)
    a, w, ap, wp = operands(rng, None, 5, 65, lead=(2, 3))
    out = np.empty((2, 3, 5), np.int32)
    assert pybnn.bgemm(ap, wp, out=out) is out
    np.testing.assert_array_equal(out, gemm_pm1(a, w))


def _bad_outs(shape, dtype, wrong_dtype):
    n, m = shape
    ro = np.zeros(shape, dtype)
    ro.flags.writeable = False
    return [
        ("dtype", np.zeros(shape, wrong_dtype), TypeError),
        ("shape", np.zeros((n, m + 1), dtype), ValueError),
        ("shape_t", np.zeros((m, n), dtype), ValueError),
        ("ndim", np.zeros((n * m,), dtype), ValueError),
        ("strided", np.zeros((n, 2 * m), dtype)[:, ::2], ValueError),
        ("fortran", np.asfortranarray(np.zeros(shape, dtype)), ValueError),
        ("read_only", ro, ValueError),
        ("list", np.zeros(shape, dtype).tolist(), TypeError),
    ]


@pytest.mark.parametrize("case", range(8))
def test_bad_out(case):
    rng = np.random.default_rng(4)
    a, w, ap, wp = operands(rng, 3, 5, 70)
    name, out, exc = _bad_outs((3, 5), np.int32, np.int64)[case]
    before = np.array(out, copy=True)
    with pytest.raises(exc):
        pybnn.bgemm(ap, wp, out=out)
    np.testing.assert_array_equal(np.asarray(out), before)  # nothing written
    name, out, exc = _bad_outs((3, 5), np.float32, np.float64)[case]
    with pytest.raises(exc):
        pybnn.bgemm_affine(ap, wp, out=out)
    name, out, exc = _bad_outs((3, 1), np.uint64, np.int64)[case]
    if name == "fortran":
        out = np.zeros((6, 1), np.uint64)[::2]  # (3, 1) but not contiguous
    with pytest.raises(exc):
        pybnn.bgemm_threshold(ap, wp, np.zeros(5, np.int32), out=out)


def test_bgemm_float_out_of_int_dtype_rejected():
    rng = np.random.default_rng(5)
    _, _, ap, wp = operands(rng, 2, 3, 10)
    with pytest.raises(TypeError):
        pybnn.bgemm(ap, wp, out=np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError):
        pybnn.bgemm_affine(ap, wp, out=np.zeros((2, 3), np.int32))


# ---------------------------------------------------------------------------
# Operand validation
# ---------------------------------------------------------------------------
def test_k_mismatch():
    rng = np.random.default_rng(6)
    ap = pybnn.pack(random_pm1(rng, (3, 64)))
    wp = pybnn.pack(random_pm1(rng, (4, 65)))
    for fn in (pybnn.bgemm, pybnn.bgemm_affine):
        with pytest.raises(ValueError):
            fn(ap, wp)
    with pytest.raises(ValueError):
        pybnn.bgemm_threshold(ap, wp, np.zeros(4, np.int32))
    # same number of words, different K
    wp2 = pybnn.pack(random_pm1(rng, (4, 63)))
    with pytest.raises(ValueError):
        pybnn.bgemm(ap, wp2)


@pytest.mark.parametrize("w_shape", [(65,), (2, 3, 65)])
def test_w_must_be_2d(w_shape):
    rng = np.random.default_rng(7)
    ap = pybnn.pack(random_pm1(rng, (3, 65)))
    wp = pybnn.pack(random_pm1(rng, w_shape))
    with pytest.raises(ValueError):
        pybnn.bgemm(ap, wp)


def test_non_packed_operands():
    rng = np.random.default_rng(8)
    a = random_pm1(rng, (3, 65)).astype(np.float32)
    ap = pybnn.pack(a)
    for bad in (a, ap.words, a.tolist(), None, 3):
        with pytest.raises(TypeError):
            pybnn.bgemm(bad, ap)
        with pytest.raises(TypeError):
            pybnn.bgemm(ap, bad)
        with pytest.raises(TypeError):
            pybnn.bgemm_affine(bad, ap)
        with pytest.raises(TypeError):
            pybnn.bgemm_threshold(ap, bad, np.zeros(3, np.int32))


# ---------------------------------------------------------------------------
# Zero sizes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n,m,k", [(0, 5, 10), (0, 5, 0), (4, 0, 10), (0, 0, 0), (4, 0, 0),
                                   (4, 5, 0), (1, 70, 0)])
def test_zero_sizes(each_isa, n, m, k):
    ap = pybnn.pack(np.ones((n, k), np.float32))
    wp = pybnn.pack(-np.ones((m, k), np.float32))
    out = pybnn.bgemm(ap, wp)
    assert out.shape == (n, m) and out.dtype == np.int32
    assert not out.any()  # with K == 0 every dot is 0
    scale = np.full(m, -2.0, np.float32)
    offset = np.arange(m, dtype=np.float32) - 1
    aff = pybnn.bgemm_affine(ap, wp, scale, offset)
    assert aff.shape == (n, m)
    np.testing.assert_array_equal(f32_bits(aff), f32_bits(np.broadcast_to(offset, (n, m))))
    thresh = np.arange(m, dtype=np.int32) - 2   # dot 0 < t only for t >= 1
    flip = np.zeros(m, bool)
    th = pybnn.bgemm_threshold(ap, wp, thresh, flip)
    assert th.shape == (n, m)
    assert th.words.shape == (n, words_per_row(m))
    np.testing.assert_array_equal(th.unpack(), np.broadcast_to(np.where(0 < thresh, -1, 1), (n, m)))


# ---------------------------------------------------------------------------
# bgemm_affine
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("which", ["both", "scale_only", "offset_only", "neither"])
def test_affine_matches_fma_oracle(each_isa, k, which):
    rng = np.random.default_rng(k)
    n, m = 5, 133
    a, w, ap, wp = operands(rng, n, m, k)
    scale, offset = random_affine_params(rng, m)
    scale = None if which in ("offset_only", "neither") else scale
    offset = None if which in ("scale_only", "neither") else offset
    out = pybnn.bgemm_affine(ap, wp, scale, offset)
    assert out.dtype == np.float32 and out.shape == (n, m)
    expected = affine_f32(gemm_pm1(a, w), scale, offset)
    np.testing.assert_array_equal(f32_bits(out), f32_bits(expected))


def test_affine_more_than_1024_columns(each_isa):
    rng = np.random.default_rng(9)
    a, w, ap, wp = operands(rng, 3, 1100, 129)
    scale, offset = random_affine_params(rng, 1100)
    out = pybnn.bgemm_affine(ap, wp, scale, offset)
    np.testing.assert_array_equal(f32_bits(out), f32_bits(affine_f32(gemm_pm1(a, w), scale, offset)))


def test_affine_accepts_lists_and_other_dtypes(each_isa):
    rng = np.random.default_rng(10)
    a, w, ap, wp = operands(rng, 2, 3, 33)
    out = pybnn.bgemm_affine(ap, wp, [0.5, -2, 3], np.array([1, 0, -1], np.int64))
    exp = affine_f32(gemm_pm1(a, w), np.float32([0.5, -2, 3]), np.float32([1, 0, -1]))
    np.testing.assert_array_equal(f32_bits(out), f32_bits(exp))


def _dot_matrix(dots, k):
    """Packed a [1, K] and w [len(dots), K] whose products are exactly `dots`."""
    a = np.ones((1, k), np.float32)
    w = np.ones((len(dots), k), np.float32)
    for j, d in enumerate(dots):
        assert (k - d) % 2 == 0 and abs(d) <= k
        w[j, : (k - d) // 2] = -1
    return pybnn.pack(a), pybnn.pack(w)


def test_affine_is_one_fused_rounding(each_isa):
    """Cases where mul-then-add in float32, or in float64 then float32, would
    differ from fmaf; the oracle is exact rational arithmetic."""
    s_mid = float(np.float32(172961 * 2.0 ** -24))  # 97 * s_mid = 1 + 2^-24, a float32 midpoint
    odd_cases = [  # (dot, scale, offset) with odd dots (K = 101)
        (3, 1 + 2 ** -23, -3.0),
        (-3, 1 + 2 ** -23, 3.0),
        (97, s_mid, 2.0 ** -60),
        (97, s_mid, -(2.0 ** -60)),
        (-97, s_mid, -(2.0 ** -60)),
        (-97, s_mid, 2.0 ** -60),
        (1, 1.0, 0.0),
        (99, 1 / 3, -33.0),
        (101, 3.0e38 / 101, 0.0),
        (-1, 1e-38, 0.0),
    ]
    even_cases = [  # even dots (K = 100)
        (0, -1.0, 0.0),      # -0 + +0 = +0
        (0, -1.0, -0.0),     # -0 + -0 = -0
        (0, 1.0, -0.0),      # +0 + -0 = +0
        (2, 0.5 + 2 ** -24, -1.0),
        (-100, 1 / 3, 33.0),
    ]
    for k, cases in ((101, odd_cases), (100, even_cases)):
        dots = [c[0] for c in cases]
        scale = np.array([c[1] for c in cases], np.float32)
        offset = np.array([c[2] for c in cases], np.float32)
        ap, wp = _dot_matrix(dots, k)
        np.testing.assert_array_equal(pybnn.bgemm(ap, wp)[0], dots)
        out = pybnn.bgemm_affine(ap, wp, scale, offset)[0]
        expected = np.array([exact_fma_f32(d, s, o) for d, s, o in zip(dots, scale, offset)],
                            np.float32)
        np.testing.assert_array_equal(f32_bits(out), f32_bits(expected), err_msg=str(k))
        if k == 101:
            assert out[2] == np.float32(1 + 2 ** -23) and out[3] == np.float32(1.0)
            assert out[0] == np.float32(3 * 2 ** -23)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=15)
@given(data=st.data())
def test_affine_property_exact(each_isa, data):
    k = data.draw(st.integers(1, 300), label="k")
    m = data.draw(st.integers(1, 70), label="m")
    big = float(np.float32(1e30))
    f32 = st.floats(width=32, allow_nan=False, allow_infinity=False,
                    min_value=-big, max_value=big)
    flips = data.draw(st.lists(st.integers(0, k), min_size=m, max_size=m), label="flips")
    dots = [k - 2 * j for j in flips]
    scale = np.array(data.draw(st.lists(f32, min_size=m, max_size=m), label="scale"), np.float32)
    offset = np.array(data.draw(st.lists(f32, min_size=m, max_size=m), label="offset"), np.float32)
    ap, wp = _dot_matrix(dots, k)
    out = pybnn.bgemm_affine(ap, wp, scale, offset)[0]
    expected = np.array([exact_fma_f32(d, s, o) for d, s, o in zip(dots, scale, offset)],
                        np.float32)
    np.testing.assert_array_equal(f32_bits(out), f32_bits(expected))


def test_affine_scale_offset_shape_errors():
    rng = np.random.default_rng(11)
    _, _, ap, wp = operands(rng, 2, 3, 10)
    with pytest.raises(ValueError):
        pybnn.bgemm_affine(ap, wp, np.ones(4, np.float32))
    with pytest.raises(ValueError):
        pybnn.bgemm_affine(ap, wp, None, np.ones((3, 1), np.float32))
    with pytest.raises(TypeError):
        pybnn.bgemm_affine(ap, wp, np.ones(3, np.complex64))


# ---------------------------------------------------------------------------
# bgemm_threshold
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("m", [1, 63, 64, 65, 130, 1100])
def test_threshold_matches_oracle(each_isa, k, m):
    rng = np.random.default_rng(k * 7 + m)
    n = 5
    a, w, ap, wp = operands(rng, n, m, k)
    dot = gemm_pm1(a, w)
    thresh = rng.integers(-k - 2, k + 3, size=m).astype(np.int32)
    # make some thresholds hit actual dot values exactly
    hit = rng.random(m) < 0.3
    thresh[hit] = dot[rng.integers(0, n), hit]
    flip = rng.random(m) < 0.5
    res = pybnn.bgemm_threshold(ap, wp, thresh, flip)
    neg = np.where(flip, dot > thresh, dot < thresh)
    assert isinstance(res, pybnn.PackedTensor)
    assert res.shape == (n, m)
    assert res.words.dtype == np.uint64 and res.words.shape == (n, words_per_row(m))
    np.testing.assert_array_equal(res.words, bits_to_words(neg))
    np.testing.assert_array_equal(res.unpack(), np.where(neg, -1, 1).astype(np.float32))
    if m % 64:
        assert not np.any(res.words[:, -1] >> np.uint64(m % 64))
    # the result is a valid operand of the next layer
    w2 = pybnn.pack(random_pm1(rng, (3, m)))
    np.testing.assert_array_equal(pybnn.bgemm(res, w2),
                                  gemm_pm1(np.where(neg, -1, 1), np.asarray(w2.unpack(), np.int64)))


def test_threshold_flip_none_and_nonbool_flip(each_isa):
    rng = np.random.default_rng(12)
    a, w, ap, wp = operands(rng, 4, 70, 65)
    dot = gemm_pm1(a, w)
    thresh = rng.integers(-10, 11, size=70).astype(np.int32)
    r0 = pybnn.bgemm_threshold(ap, wp, thresh)
    np.testing.assert_array_equal(r0.unpack(), np.where(dot < thresh, -1, 1))
    assert pybnn.bgemm_threshold(ap, wp, thresh, np.zeros(70, bool)) == r0
    flip = rng.integers(0, 3, size=70)              # 2 counts as 1
    r1 = pybnn.bgemm_threshold(ap, wp, thresh, flip)
    neg = np.where(flip != 0, dot > thresh, dot < thresh)
    np.testing.assert_array_equal(r1.unpack(), np.where(neg, -1, 1))
    r2 = pybnn.bgemm_threshold(ap, wp, thresh.tolist(), (flip != 0).tolist())
    assert r2 == r1


def test_threshold_extreme_int32_thresholds(each_isa):
    rng = np.random.default_rng(13)
    a, w, ap, wp = operands(rng, 3, 4, 100)
    i32 = np.iinfo(np.int32)
    thresh = np.array([i32.min, i32.max, i32.min, i32.max], np.int32)
    flip = np.array([0, 0, 1, 1], bool)
    r = pybnn.bgemm_threshold(ap, wp, thresh, flip).unpack()
    np.testing.assert_array_equal(r, np.broadcast_to(np.float32([1, -1, -1, 1]), (3, 4)))


# ---------------------------------------------------------------------------
# fold_threshold / fold_batchnorm
# ---------------------------------------------------------------------------
def folded_predicate(thresh, flip, s):
    """bit (True = -1) of every s for every channel: [C, len(s)]."""
    return threshold_neg(s[:, None], thresh, flip).T


def affine_predicate(scale, offset, s):
    """scale * s + offset < 0 in float64 for every channel: [C, len(s)]."""
    return affine_neg(scale, offset, s[:, None]).T


def check_fold(scale, offset, k):
    thresh, flip = pybnn.fold_threshold(scale, offset, k)
    c = np.asarray(scale).size
    assert thresh.dtype == np.int32 and thresh.shape == (c,)
    assert flip.dtype == np.bool_ and flip.shape == (c,)
    s = np.arange(-k, k + 1, dtype=np.int64)
    np.testing.assert_array_equal(folded_predicate(thresh, flip, s),
                                  affine_predicate(scale, offset, s))
    return thresh, flip


def test_fold_threshold_boundaries_exact_at_integers():
    k = 10
    # 2s - 6 < 0  <=>  s < 3
    t, f = check_fold([2.0], [-6.0], k)
    assert (t[0], f[0]) == (3, False)
    # -2s + 6 < 0  <=>  s > 3
    t, f = check_fold([-2.0], [6.0], k)
    assert (t[0], f[0]) == (3, True)
    # sign(0) = +1 at the boundary, the other way round
    check_fold([2.0, -2.0, 0.5, -0.5, 3.0, -3.0], [6.0, -6.0, 0.5, -0.5, 0.0, 0.0], k)


def test_fold_threshold_constant_channels():
    k = 7
    scale = [0.0, 0.0, 0.0, 0.0, -0.0, 1.0, 1.0, -1.0, -1.0]
    offset = [-1.0, 0.0, -0.0, 1.0, -5.0, 100.0, -100.0, 100.0, -100.0]
    t, f = check_fold(scale, offset, k)
    s = np.arange(-k, k + 1)
    pred = folded_predicate(t, f, s)
    assert pred[0].all() and not pred[1].any() and not pred[2].any() and not pred[3].any()
    assert pred[4].all()
    assert not pred[5].any() and pred[6].all() and not pred[7].any() and pred[8].all()


@pytest.mark.parametrize("k", [0, 1, 2, 63, 64, 65, 1000, 4097])
def test_fold_threshold_random(k):
    rng = np.random.default_rng(k)
    c = 200
    scale = rng.standard_normal(c) * np.exp2(rng.uniform(-20, 20, c))
    offset = rng.standard_normal(c) * np.exp2(rng.uniform(-20, 20, c))
    scale[:10] = 0.0
    offset[10:20] = 0.0
    # boundaries exactly at integers: offset = -scale * s0
    s0 = rng.integers(-k, k + 1, size=30)
    scale[20:50] = rng.choice([-1, 1], 30) * rng.integers(1, 9, 30) / rng.choice([1, 2, 4, 8], 30)
    offset[20:50] = -scale[20:50] * s0
    # tricky decimals: 0.1 * 3 - 0.3 != 0 in float64
    scale[50:60] = 0.1
    offset[50:60] = -0.1 * rng.integers(-k, k + 1, 10)
    offset[60:65] = [-0.3, -0.7, 0.3, 0.7, -1.1]
    scale[60:65] = 0.1
    check_fold(scale, offset, k)


@given(scale=st.floats(allow_nan=False, allow_infinity=False),
       offset=st.floats(allow_nan=False, allow_infinity=False),
       k=st.integers(0, 3000))
def test_fold_threshold_property(scale, offset, k):
    check_fold(np.array([scale]), np.array([offset]), k)


@given(s0=st.integers(-500, 500), num=st.integers(-64, 64), den=st.sampled_from([1, 2, 3, 5, 10]),
       k=st.integers(0, 500), nudge=st.sampled_from([0, -1, 1]))
def test_fold_threshold_property_near_integers(s0, num, den, k, nudge):
    scale = num / den
    offset = -scale * s0
    if nudge:
        offset = float(np.nextafter(offset, nudge * np.inf))
    check_fold(np.array([scale]), np.array([offset]), k)


def test_fold_threshold_large_k():
    k = 2 ** 31 - 2   # the largest k the C API accepts
    scale = np.array([1.0, -1.0, 0.0, 0.0, 1e-9, -3.0, 1.0, -1.0])
    offset = np.array([0.5, 0.5, -1.0, 1.0, -0.5, 7.0, -1e12, 1e12])
    thresh, flip = pybnn.fold_threshold(scale, offset, k)
    # check the predicate around each threshold and at both ends (monotone)
    for j in range(len(scale)):
        pts = np.array(sorted({-k, -k + 1, k - 1, k}
                              | {min(max(int(thresh[j]) + d, -k), k) for d in (-2, -1, 0, 1, 2)}),
                       dtype=np.int64)
        np.testing.assert_array_equal(folded_predicate(thresh[j:j + 1], flip[j:j + 1], pts),
                                      affine_predicate(scale[j:j + 1], offset[j:j + 1], pts))
    with pytest.raises(ValueError):
        pybnn.fold_threshold([1.0], [0.0], 2 ** 31 - 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fold_threshold_non_finite(bad):
    with pytest.raises(ValueError):
        pybnn.fold_threshold([1.0, bad], [0.0, 0.0], 10)
    with pytest.raises(ValueError):
        pybnn.fold_threshold([1.0, 2.0], [0.0, bad], 10)
    with pytest.raises(pybnn.BnnValueError):
        pybnn.fold_threshold([bad], [0.0], 10)


def test_fold_threshold_argument_errors():
    with pytest.raises(ValueError):
        pybnn.fold_threshold([1.0, 2.0], [0.0], 10)
    with pytest.raises(ValueError):
        pybnn.fold_threshold([1.0], [0.0], -1)
    t, f = pybnn.fold_threshold([], [], 10)
    assert t.shape == (0,) and f.shape == (0,)


@pytest.mark.parametrize("k", [0, 1, 64, 129, 1000])
def test_fold_batchnorm(k):
    rng = np.random.default_rng(k + 1)
    c = 100
    gamma = rng.standard_normal(c)
    gamma[:10] = 0.0
    gamma[10:20] = -np.abs(gamma[10:20])
    beta = rng.standard_normal(c) * 3
    mean = rng.standard_normal(c) * k / 4
    mean[20:30] = rng.integers(-k, k + 1, 10)   # boundaries at integers
    beta[20:30] = 0.0
    var = rng.random(c) * 5
    var[30:35] = 0.0
    eps = 1e-5
    thresh, flip = pybnn.fold_batchnorm(gamma, beta, mean, var, eps, k)
    scale, offset = bn_scale_offset(gamma, beta, mean, var, eps)
    s = np.arange(-k, k + 1)
    np.testing.assert_array_equal(folded_predicate(thresh, flip, s), affine_predicate(scale, offset, s))
    t2, f2 = pybnn.fold_threshold(scale, offset, k)
    np.testing.assert_array_equal(thresh, t2)
    np.testing.assert_array_equal(flip, f2)


def test_fold_batchnorm_signs():
    # gamma * (s - mean) / sqrt(var + eps) + beta with exactly representable values
    k = 6
    gamma = np.array([2.0, -2.0, 0.0, 0.0, 1.0])
    beta = np.array([0.0, 0.0, -1.0, 1.0, -1.0])
    mean = np.array([1.0, 1.0, 0.0, 0.0, -2.0])
    var = np.array([3.0, 3.0, 1.0, 1.0, 0.0])
    eps = 1.0
    t, f = pybnn.fold_batchnorm(gamma, beta, mean, var, eps, k)
    s = np.arange(-k, k + 1)
    math_neg = (gamma[:, None] * (s[None, :] - mean[:, None]) / np.sqrt(var + eps)[:, None]
                + beta[:, None]) < 0
    np.testing.assert_array_equal(folded_predicate(t, f, s), math_neg)
    assert f.tolist() == [False, True, False, False, False]


def test_fold_batchnorm_invalid():
    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(ValueError):  # var + eps == 0 -> infinite scale
            pybnn.fold_batchnorm([1.0], [0.0], [0.0], [0.0], 0.0, 10)
        with pytest.raises(ValueError):
            pybnn.fold_batchnorm([np.nan], [0.0], [0.0], [1.0], 1e-5, 10)
        with pytest.raises(ValueError):
            pybnn.fold_batchnorm([1.0], [np.inf], [0.0], [1.0], 1e-5, 10)


# ---------------------------------------------------------------------------
# End to end: folded thresholds == sign(scale * bgemm + offset)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 64, 65, 129, 1000, 4097])
def test_end_to_end_fold_then_threshold(each_isa, k):
    rng = np.random.default_rng(k + 2)
    n, m = 6, 150
    a, w, ap, wp = operands(rng, n, m, k)
    dot = gemm_pm1(a, w)
    scale = rng.standard_normal(m)
    scale[:10] = 0
    offset = rng.standard_normal(m) * np.sqrt(k)
    # put boundaries exactly on attained dot values
    offset[10:40] = -scale[10:40] * dot[rng.integers(0, n), 10:40]
    offset[40:45] = 0
    thresh, flip = pybnn.fold_threshold(scale, offset, k)
    res = pybnn.bgemm_threshold(ap, wp, thresh, flip)
    neg = scale[None, :] * dot.astype(np.float64) + offset[None, :] < 0
    np.testing.assert_array_equal(res.unpack(), np.where(neg, -1, 1).astype(np.float32))
    # and via batch norm
    gamma, beta = rng.standard_normal(m), rng.standard_normal(m)
    mean, var = rng.standard_normal(m) * np.sqrt(k), rng.random(m) + 0.1
    gamma[:5] = 0
    t2, f2 = pybnn.fold_batchnorm(gamma, beta, mean, var, 1e-3, k)
    sc, of = bn_scale_offset(gamma, beta, mean, var, 1e-3)
    res2 = pybnn.bgemm_threshold(ap, wp, t2, f2)
    neg2 = sc[None, :] * dot.astype(np.float64) + of[None, :] < 0
    np.testing.assert_array_equal(res2.unpack(), np.where(neg2, -1, 1).astype(np.float32))


# ---------------------------------------------------------------------------
# PackedTensor built from words with other memory layouts
# ---------------------------------------------------------------------------
WORD_LAYOUTS = {
    "column_step": lambda w: np.repeat(w, 2, axis=1)[:, ::2],
    "fortran": np.asfortranarray,
    "negative_rows": lambda w: w[::-1].copy()[::-1],
    "row_step": lambda w: np.repeat(w, 2, axis=0)[::2],
    "read_only": lambda w: _read_only(w),
}


def _read_only(w):
    w = w.copy()
    w.flags.writeable = False
    return w


@pytest.mark.parametrize("layout", sorted(WORD_LAYOUTS))
def test_packed_tensor_from_strided_words(each_isa, layout):
    """PackedTensor(words, shape) takes any uint64 array of the right shape;
    such a tensor must then either be rejected up front or work in every
    product exactly like its contiguous copy."""
    rng = np.random.default_rng(14)
    k, n, m = 130, 5, 7
    aw, ww = random_words(rng, n, k), random_words(rng, m, k)
    a_odd, w_odd = WORD_LAYOUTS[layout](aw), WORD_LAYOUTS[layout](ww)
    np.testing.assert_array_equal(a_odd, aw)
    try:
        ap, wp = pybnn.PackedTensor(a_odd, (n, k)), pybnn.PackedTensor(w_odd, (m, k))
    except (TypeError, ValueError):
        return  # rejected at construction: fine
    expected = dot_words(aw, ww, k)
    np.testing.assert_array_equal(ap.unpack(), pybnn.PackedTensor(aw, (n, k)).unpack())
    np.testing.assert_array_equal(pybnn.bgemm(ap, wp), expected)
    np.testing.assert_array_equal(pybnn.bgemm_affine(ap, wp), expected.astype(np.float32))
    th = pybnn.bgemm_threshold(ap, wp, np.zeros(m, np.int32))
    np.testing.assert_array_equal(th.words, bits_to_words(expected < 0))
