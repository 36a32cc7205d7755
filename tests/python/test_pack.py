"""pybnn.pack / PackedTensor against a plain numpy oracle of the bit contract.

Bit contract (include/bnn.h): element j of a row is bit j % 64 of word
j // 64 (least significant bit first); bit 1 means -1 and is set exactly
where x < 0 (so +0, -0 and NaN pack as +1); rows are padded with zero bits
to whole uint64 words.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pybnn
from oracles import pack_words, pack_words_loop, pm1, words_per_row

DTYPES = [np.float16, np.float32, np.float64, np.int8]
KS = [1, 3, 63, 64, 65, 127, 129, 1000, 4097]


# ---------------------------------------------------------------------------
# Helpers (the oracle is oracles.pack_words, checked below against its loop
# version oracles.pack_words_loop)
# ---------------------------------------------------------------------------
def make_values(rng, shape, dtype):
    """Random values with plenty of +0, -0, small and large magnitudes."""
    dtype = np.dtype(dtype)
    if dtype == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    x = rng.standard_normal(shape)
    u = rng.random(shape)
    x[u < 0.05] = 0.0
    x[(u >= 0.05) & (u < 0.10)] = -0.0
    return x.astype(dtype)


def check_packed(p, x):
    """p == pack(x) in every observable respect."""
    x = np.asarray(x)
    k = x.shape[-1]
    kw = words_per_row(k)
    assert isinstance(p, pybnn.PackedTensor)
    assert p.shape == x.shape
    assert p.ndim == x.ndim
    assert p.words.dtype == np.uint64
    assert p.words.shape == x.shape[:-1] + (kw,)
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    assert p.nbytes == rows * kw * 8
    np.testing.assert_array_equal(p.words, pack_words(x))
    u = p.unpack()
    assert u.dtype == np.float32 and u.shape == x.shape
    np.testing.assert_array_equal(u, pm1(x))


# ---------------------------------------------------------------------------
# The oracle itself
# ---------------------------------------------------------------------------
def test_oracle_agrees_with_loop_oracle():
    rng = np.random.default_rng(0)
    for shape in [(3, 1), (2, 63), (2, 64), (3, 65), (2, 2, 130), (5,), (0, 7), (4, 0)]:
        x = make_values(rng, shape, np.float32)
        np.testing.assert_array_equal(pack_words(x), pack_words_loop(x))


def test_literal_words():
    # element j -> bit j%64 of word j//64, bit 1 means -1
    p = pybnn.pack(np.array([-1.0, 1.0, -1.0], dtype=np.float32))
    assert p.words.tolist() == [0b101]
    x = np.ones(130, dtype=np.float32)
    x[[0, 63, 64, 129]] = -1
    p = pybnn.pack(x)
    assert p.words.tolist() == [1 | (1 << 63), 1, 1 << 1]
    x = -np.ones((2, 64), dtype=np.float32)
    assert pybnn.pack(x).words.tolist() == [[(1 << 64) - 1], [(1 << 64) - 1]]
    x = -np.ones((1, 65), dtype=np.int8)
    assert pybnn.pack(x).words.tolist() == [[(1 << 64) - 1, 1]]


# ---------------------------------------------------------------------------
# dtypes x widths x ranks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("lead", [(), (3,), (2, 3)], ids=["1d", "2d", "3d"])
def test_pack_matches_oracle(dtype, k, lead):
    rng = np.random.default_rng(k * 7 + len(lead))
    x = make_values(rng, lead + (k,), dtype)
    check_packed(pybnn.pack(x), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("k", [1, 63, 64, 65, 1000])
def test_all_negative_and_all_positive(dtype, k):
    neg = -np.ones((3, k), dtype=dtype)
    pos = np.ones((3, k), dtype=dtype)
    check_packed(pybnn.pack(neg), neg)
    check_packed(pybnn.pack(pos), pos)
    assert not pybnn.pack(pos).words.any()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("k", KS)
def test_pad_bits_are_zero(dtype, k):
    x = -np.ones((4, k), dtype=dtype)
    w = pybnn.pack(x).words
    if k % 64:
        pad = np.uint64(((1 << 64) - 1) ^ ((1 << (k % 64)) - 1))
        assert not np.any(w[:, -1] & pad)
    # every element bit is set
    assert int(sum(bin(int(v)).count("1") for v in w.ravel())) == 4 * k


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("k", [1, 65, 4097])
def test_round_trip(dtype, k):
    rng = np.random.default_rng(k)
    x = make_values(rng, (5, k), dtype)
    u = pybnn.pack(x).unpack()
    assert u.dtype == np.float32
    np.testing.assert_array_equal(u, np.where(x < 0, -1, 1).astype(np.float32))
    # packing the unpacked tensor again gives the same words
    np.testing.assert_array_equal(pybnn.pack(u).words, pybnn.pack(x).words)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("lead", [(), (1,), (7,), (2, 5)])
def test_sizes(k, lead):
    p = pybnn.pack(np.zeros(lead + (k,), dtype=np.float32))
    rows = int(np.prod(lead, dtype=np.int64))
    assert p.nbytes == rows * math.ceil(k / 64) * 8
    assert p.words.shape == lead + (math.ceil(k / 64),)
    assert p.words.dtype == np.uint64
    assert p.shape == lead + (k,)
    if lead:
        assert len(p) == lead[0]


def test_python_sequences_are_accepted():
    p = pybnn.pack([[-1.0, 2.0, 0.0], [0.5, -0.0, -3.0]])
    np.testing.assert_array_equal(p.unpack(), [[-1, 1, 1], [1, 1, -1]])


# ---------------------------------------------------------------------------
# Special values
# ---------------------------------------------------------------------------
NEG_NAN32 = np.array(0xFFC00000, dtype=np.uint32).view(np.float32)
NEG_NAN64 = np.array(0xFFF8000000000000, dtype=np.uint64).view(np.float64)

SPECIALS = [
    # (dtype, value, expected +-1)
    (np.float32, 0.0, 1), (np.float32, -0.0, 1), (np.float32, np.nan, 1),
    (np.float32, NEG_NAN32, 1), (np.float32, np.inf, 1), (np.float32, -np.inf, -1),
    (np.float32, -1e-45, -1),                     # smallest negative subnormal
    (np.float32, 1e-45, 1), (np.float32, -np.finfo(np.float32).max, -1),
    (np.float64, 0.0, 1), (np.float64, -0.0, 1), (np.float64, np.nan, 1),
    (np.float64, NEG_NAN64, 1), (np.float64, np.inf, 1), (np.float64, -np.inf, -1),
    (np.float64, -1e-300, -1),                    # float32(-1e-300) would be -0.0
    (np.float64, -5e-324, -1),                    # smallest negative subnormal
    (np.float64, 1e-300, 1),
    (np.float16, 0.0, 1), (np.float16, -0.0, 1), (np.float16, np.nan, 1),
    (np.float16, -np.inf, -1), (np.float16, np.inf, 1),
    (np.float16, -(2.0 ** -24), -1),              # smallest negative subnormal
    (np.int8, 0, 1), (np.int8, -1, -1), (np.int8, -128, -1), (np.int8, 127, 1),
]


def _special_id(case):
    dtype, value, _ = case
    v = np.array(value, dtype=dtype)
    if v.dtype.kind == "f" and np.isnan(v):
        return "%s-%snan" % (np.dtype(dtype).name, "-" if np.signbit(v) else "")
    return "%s-%r" % (np.dtype(dtype).name, v.item())


@pytest.mark.parametrize("case", SPECIALS, ids=[_special_id(c) for c in SPECIALS])
def test_special_values(each_isa, case):
    dtype, value, expected = case
    v = np.array(value, dtype=dtype)
    assert (v < 0) == (expected == -1)  # the case table agrees with the contract
    for k in (1, 7, 31, 64, 65, 200):
        x = np.full((3, k), v, dtype=dtype)
        u = pybnn.pack(x).unpack()
        assert np.all(u == expected), (each_isa, k)
    # the value at every position of a row of mixed values (vector body and tail)
    for k in (33, 129):
        for j in range(k):
            x = np.ones(k, dtype=dtype)
            x[j] = v
            p = pybnn.pack(x)
            expect = np.ones(k, np.float32)
            expect[j] = expected
            np.testing.assert_array_equal(p.unpack(), expect)
            np.testing.assert_array_equal(p.words, pack_words(x))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_mixed_special_values(each_isa, dtype):
    rng = np.random.default_rng(5)
    vals = [v for d, v, _ in SPECIALS if d == dtype]
    x = np.array(vals, dtype=dtype)[rng.integers(0, len(vals), size=(9, 300))]
    check_packed(pybnn.pack(x), x)


# ---------------------------------------------------------------------------
# Memory layouts
# ---------------------------------------------------------------------------
def _unaligned(x):
    """A copy of x whose data pointer is misaligned by one byte."""
    x = np.ascontiguousarray(x)
    buf = np.zeros(x.nbytes + 1, dtype=np.uint8)
    y = buf[1:].view(x.dtype).reshape(x.shape)
    y[...] = x
    if x.dtype.itemsize > 1:
        assert not y.flags.aligned
    return y


LAYOUTS = {
    "transposed": lambda m, r, k, d: m((k, r), d).T,
    "fortran": lambda m, r, k, d: np.asfortranarray(m((r, k), d)),
    "step_slices": lambda m, r, k, d: m((2 * r, 3 * k), d)[::2, ::3],
    "column_window": lambda m, r, k, d: m((r, k + 11), d)[:, 5:5 + k],
    "negative_rows": lambda m, r, k, d: m((r, k), d)[::-1],
    "negative_cols": lambda m, r, k, d: m((r, k), d)[:, ::-1],
    "negative_both": lambda m, r, k, d: m((r, k), d)[::-1, ::-1],
    "negative_step2": lambda m, r, k, d: m((2 * r, 2 * k), d)[::-2, ::-2],
    "broadcast_rows": lambda m, r, k, d: np.broadcast_to(m((k,), d), (r, k)),
    "overlapping_rows": lambda m, r, k, d: np.lib.stride_tricks.sliding_window_view(
        m((r + k - 1,), d), k),
    "3d_transposed": lambda m, r, k, d: m((k, 2, r), d).transpose(1, 2, 0),
    "3d_middle_step": lambda m, r, k, d: m((2, 3 * r, k), d)[:, ::3, :],
    "3d_negative": lambda m, r, k, d: m((2, r, k), d)[::-1, :, ::-1],
    "1d_step": lambda m, r, k, d: m((3 * k,), d)[::3],
    "1d_negative": lambda m, r, k, d: m((k,), d)[::-1],
    "unaligned": lambda m, r, k, d: _unaligned(m((r, k), d)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("k", [1, 65, 129])
def test_non_contiguous_inputs(layout, dtype, k):
    rng = np.random.default_rng(k)
    x = LAYOUTS[layout](lambda shape, d: make_values(rng, shape, d), 5, k, dtype)
    assert x.shape[-1] == k
    before = x.copy()
    check_packed(pybnn.pack(x), x)
    np.testing.assert_array_equal(x, before)  # input untouched


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ["contiguous", "negative_rows", "step_slices", "1d"])
def test_read_only_inputs(dtype, layout):
    rng = np.random.default_rng(1)
    base = make_values(rng, (6, 130), dtype)
    x = {"contiguous": base, "negative_rows": base[::-1], "step_slices": base[::2, ::3],
         "1d": base[0]}[layout]
    x = x.view()
    x.flags.writeable = False
    check_packed(pybnn.pack(x), x)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(70,), (3, 70), (2, 3, 129)])
def test_big_endian_input(dtype, shape):
    rng = np.random.default_rng(2)
    native = make_values(rng, shape, dtype)
    x = native.astype(np.dtype(dtype).newbyteorder(">"))
    assert not x.dtype.isnative
    p = pybnn.pack(x)
    check_packed(p, native)
    assert p == pybnn.pack(native)


def test_input_is_not_modified():
    rng = np.random.default_rng(3)
    for dtype in DTYPES:
        x = make_values(rng, (4, 100), dtype)
        before = x.copy()
        pybnn.pack(x)
        np.testing.assert_array_equal(x, before)


# ---------------------------------------------------------------------------
# Zero sizes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(0,), (0, 5), (0, 64), (5, 0), (0, 0), (2, 0, 5),
                                   (3, 4, 0), (0, 3, 65)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_zero_size(shape, dtype):
    x = np.zeros(shape, dtype=dtype)
    p = pybnn.pack(x)
    assert p.shape == shape
    assert p.words.shape == shape[:-1] + (words_per_row(shape[-1]),)
    assert p.words.dtype == np.uint64
    assert p.nbytes == 0
    u = p.unpack()
    assert u.shape == shape and u.dtype == np.float32


# ---------------------------------------------------------------------------
# Rejected inputs
# ---------------------------------------------------------------------------
BAD_DTYPES = [np.complex64, np.complex128, np.bool_, np.object_, np.str_, np.bytes_,
              np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
              "datetime64[s]", "timedelta64[s]"]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_bad_dtypes_raise_type_error(dtype):
    if np.dtype(dtype).kind in "USO":
        x = np.array([["1", "-1"], ["2", "3"]], dtype=dtype)
    else:
        x = np.zeros((2, 3), dtype=dtype)
    with pytest.raises(TypeError):
        pybnn.pack(x)


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize == 8,
                    reason="long double is float64 on this platform")
def test_long_double_raises_type_error():
    # pack() documents float16/32/64 and int8 only
    with pytest.raises(TypeError):
        pybnn.pack(np.zeros((2, 3), dtype=np.longdouble))


def test_zero_dim_input_raises():
    with pytest.raises(ValueError):
        pybnn.pack(np.float32(1.0))
    with pytest.raises(ValueError):
        pybnn.pack(np.array(-1.0))


# ---------------------------------------------------------------------------
# PackedTensor constructor
# ---------------------------------------------------------------------------
def test_packed_tensor_from_words_roundtrip():
    rng = np.random.default_rng(4)
    x = make_values(rng, (3, 4, 130), np.float32)
    p = pybnn.pack(x)
    q = pybnn.PackedTensor(p.words.copy(), x.shape)
    assert q == p
    assert q.shape == x.shape
    np.testing.assert_array_equal(q.unpack(), pm1(x))
    # words from a nested list are accepted when they are uint64
    r = pybnn.PackedTensor(np.array([[0b101]], dtype=np.uint64), [1, 3])
    assert r.shape == (1, 3)
    np.testing.assert_array_equal(r.unpack(), [[-1, 1, -1]])


def test_packed_tensor_full_words_accept_all_bits():
    w = np.full((2, 1), (1 << 64) - 1, dtype=np.uint64)
    p = pybnn.PackedTensor(w, (2, 64))
    np.testing.assert_array_equal(p.unpack(), -np.ones((2, 64), np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.uint32, np.float64, np.int8, np.uint8])
def test_packed_tensor_wrong_dtype(dtype):
    with pytest.raises(TypeError):
        pybnn.PackedTensor(np.zeros((2, 2), dtype=dtype), (2, 65))


@pytest.mark.parametrize("words_shape,shape", [
    ((2, 1), (2, 65)), ((2, 3), (2, 65)), ((3, 2), (2, 65)), ((2,), (2, 65)),
    ((2, 2), (130,)), ((2, 1, 1), (2, 64)), ((1,), (0,)), ((2, 1), (2, 0)),
])
def test_packed_tensor_wrong_shape(words_shape, shape):
    with pytest.raises(ValueError):
        pybnn.PackedTensor(np.zeros(words_shape, dtype=np.uint64), shape)


@pytest.mark.parametrize("shape", [(), (-1,), (2, -3)])
def test_packed_tensor_bad_shape(shape):
    with pytest.raises(ValueError):
        pybnn.PackedTensor(np.zeros((0,), dtype=np.uint64), shape)


@pytest.mark.parametrize("k,bit", [(1, 1), (5, 5), (5, 63), (63, 63), (65, 1), (65, 63),
                                   (127, 63)])
def test_packed_tensor_nonzero_pad_bits(k, bit):
    kw = words_per_row(k)
    w = np.zeros((3, kw), dtype=np.uint64)
    w[1, -1] = np.uint64(1) << np.uint64(bit)
    with pytest.raises(ValueError):
        pybnn.PackedTensor(w, (3, k))
    # pad bits of one row of a 3-D tensor
    w3 = np.zeros((2, 2, kw), dtype=np.uint64)
    w3[1, 0, -1] = np.uint64(1) << np.uint64(bit)
    with pytest.raises(ValueError):
        pybnn.PackedTensor(w3, (2, 2, k))


def test_packed_tensor_equality_and_repr():
    a = pybnn.pack(np.array([[-1.0, 2.0]], dtype=np.float32))
    b = pybnn.pack(np.array([[-3.0, 0.0]], dtype=np.float64))
    c = pybnn.pack(np.array([[1.0, 2.0]], dtype=np.float32))
    assert a == b
    assert a != c
    assert a != pybnn.pack(np.array([-1.0, 2.0], dtype=np.float32))  # other shape
    assert (a == "x") is False
    assert "PackedTensor" in repr(a)
    with pytest.raises(TypeError):
        hash(a)


# ---------------------------------------------------------------------------
# Every ISA packs identically
# ---------------------------------------------------------------------------
def _pack_with_isa(name, x):
    original = pybnn.isa()
    pybnn.set_isa(name)
    try:
        return pybnn.pack(x)
    finally:
        pybnn.set_isa(original)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_isa_identical_to_ref(each_isa, dtype):
    rng = np.random.default_rng(6)
    for k in KS + [2, 8, 15, 16, 17, 31, 32, 33, 255, 256, 257, 511, 513]:
        for lead in [(), (1,), (9,), (2, 3)]:
            x = make_values(rng, lead + (k,), dtype)
            p = pybnn.pack(x)
            assert pybnn.isa() == each_isa
            ref = _pack_with_isa("ref", x)
            assert p == ref, (each_isa, dtype, k, lead)
            np.testing.assert_array_equal(p.words, pack_words(x))
            np.testing.assert_array_equal(p.unpack(), pm1(x))


def test_unpack_every_isa_of_random_words(each_isa):
    rng = np.random.default_rng(7)
    for k in [1, 63, 64, 65, 200, 1000]:
        kw = words_per_row(k)
        w = rng.integers(0, 2 ** 64, size=(5, kw), dtype=np.uint64, endpoint=False)
        if k % 64:
            w[:, -1] &= np.uint64((1 << (k % 64)) - 1)
        p = pybnn.PackedTensor(w, (5, k))
        bits = np.unpackbits(w.astype("<u8").view(np.uint8), axis=-1,
                             bitorder="little")[:, :k].astype(bool)
        np.testing.assert_array_equal(p.unpack(), np.where(bits, -1, 1).astype(np.float32))


# ---------------------------------------------------------------------------
# Property test
# ---------------------------------------------------------------------------
@st.composite
def pack_inputs(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    lead = tuple(draw(st.lists(st.integers(0, 4), max_size=2)))
    k = draw(st.integers(0, 300))
    shape = lead + (k,)
    if dtype.kind == "i":
        elements = st.integers(-128, 127)
    else:
        elements = st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True)
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    view = draw(st.sampled_from(["as_is", "reverse_last", "reverse_first", "big_endian"]))
    if view == "reverse_last":
        x = x[..., ::-1]
    elif view == "reverse_first" and x.ndim > 1:
        x = x[::-1]
    elif view == "big_endian" and dtype.kind == "f":
        x = x.astype(dtype.newbyteorder(">"))
    return x


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=pack_inputs())
def test_pack_property(each_isa, x):
    p = pybnn.pack(x)
    native = x.astype(x.dtype.newbyteorder("="))
    assert p.shape == x.shape
    np.testing.assert_array_equal(p.words, pack_words(native))
    assert p.nbytes == int(np.prod(x.shape[:-1], dtype=np.int64)) * words_per_row(x.shape[-1]) * 8
    np.testing.assert_array_equal(p.unpack(), pm1(native))


@given(x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=70),
                    elements=st.floats(width=32)))
def test_round_trip_property(x):
    u = pybnn.pack(x).unpack()
    np.testing.assert_array_equal(u, np.where(x < 0, -1, 1).astype(np.float32))
    assert pybnn.pack(u) == pybnn.pack(x)


def test_unpack_into_a_given_buffer():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 130)).astype(np.float32)
    p = pybnn.pack(x)
    buf = np.full((7, 130), 7.0, np.float32)
    assert p.unpack(out=buf) is buf
    np.testing.assert_array_equal(buf, p.unpack())
    for bad in (np.empty((7, 129), np.float32), np.empty((7, 130), np.float64),
                np.empty((130, 7), np.float32).T, [[0.0] * 130] * 7):
        with pytest.raises(ValueError, match="out must be"):
            p.unpack(out=bad)
