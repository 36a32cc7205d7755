"""The float x (+-1) product on packed bits (bnn_gemm_f32_pm1 through
_core.gemm_f32_pm1): bitwise the oracle's sequential float32 sums on every
kernel set and thread count, ragged shapes, both layouts of A, with and
without accumulation; and the binary dense layer's input gradient on it."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles import gemm_f32_pm1, pack_words, pm1

import pybnn
from pybnn import _core
from pybnn.nn import BinaryDense
from pybnn.nn.dense import pm1_input_grad


def _case(rng, i, k, j, transpose):
    a = rng.standard_normal((j, i) if transpose else (i, j)).astype(np.float32)
    a.flat[::7] = 0.0
    s = rng.standard_normal((j, k)).astype(np.float32)
    return a, s, pack_words(s)


def _same(x, y):
    np.testing.assert_array_equal(np.asarray(x).view(np.uint32), np.asarray(y).view(np.uint32))


@pytest.mark.parametrize("i", [1, 5, 6, 7, 13])
@pytest.mark.parametrize("k", [1, 16, 17, 63, 64, 65, 130])
@pytest.mark.parametrize("j", [0, 1, 129, 300])
def test_pm1_matches_the_oracle_bitwise(each_isa, restore_num_threads, i, k, j):
    rng = np.random.default_rng(i * 1000 + k * 10 + j)
    for transpose in (False, True):
        a, s, words = _case(rng, i, k, j, transpose)
        at = a.T if transpose else a
        want = gemm_f32_pm1(at, pm1(s)) if j else np.zeros((i, k), np.float32)
        c0 = rng.standard_normal((i, k)).astype(np.float32)
        want_acc = gemm_f32_pm1(at, pm1(s), c0) if j else c0
        for threads in (1, 3):
            pybnn.set_num_threads(threads)
            out = np.full((i, k), np.nan, np.float32)
            _core.gemm_f32_pm1(a, words, k, out, transpose_a=transpose)
            _same(out, want)
            out = c0.copy()
            _core.gemm_f32_pm1(a, words, k, out, transpose_a=transpose, accumulate=True)
            _same(out, want_acc)


@settings(deadline=None, max_examples=30)
@given(i=st.integers(1, 40), k=st.integers(1, 200), j=st.integers(1, 300),
       transpose=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_pm1_hypothesis(i, k, j, transpose, seed):
    a, s, words = _case(np.random.default_rng(seed), i, k, j, transpose)
    out = np.empty((i, k), np.float32)
    _core.gemm_f32_pm1(a, words, k, out, transpose_a=transpose)
    _same(out, gemm_f32_pm1(a.T if transpose else a, pm1(s)))


def test_pm1_large_runs_on_threads_and_strided_operands(restore_num_threads):
    """I*K*J above the threading threshold; s and out with row gaps."""
    rng = np.random.default_rng(9)
    a, s, words = _case(rng, 37, 1000, 70, False)
    wide = np.zeros((70, words.shape[1] + 3), np.uint64)
    wide[:, :words.shape[1]] = words
    out = np.full((37, 1010), 7.0, np.float32)
    want = gemm_f32_pm1(a, pm1(s))
    for threads in (1, 2, 3):
        pybnn.set_num_threads(threads)
        _core.gemm_f32_pm1(a, wide, 1000, out[:, :1000])
        _same(out[:, :1000], want)
        assert np.all(out[:, 1000:] == 7.0)


def test_pm1_errors():
    a = np.zeros((3, 4), np.float32)
    words = np.zeros((4, 1), np.uint64)
    with pytest.raises(ValueError, match="s must be"):
        _core.gemm_f32_pm1(a, words[:3], 10, np.zeros((3, 10), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        _core.gemm_f32_pm1(a, words, 10, np.zeros((3, 9), np.float32))
    with pytest.raises(ValueError, match="s must be"):
        _core.gemm_f32_pm1(a, words, 65, np.zeros((3, 65), np.float32))
    with pytest.raises(ValueError):
        _core.gemm_f32_pm1(a.astype(np.float64), words, 10, np.zeros((3, 10), np.float32))
    with pytest.raises(ValueError):
        _core.gemm_f32_pm1(np.asfortranarray(np.zeros((3, 4), np.float32)), words, 10,
                           np.zeros((3, 10), np.float32))
    buf = np.zeros(40, np.float32)
    with pytest.raises(ValueError, match="overlap"):      # out over the end of a
        _core.gemm_f32_pm1(buf[:12].reshape(3, 4), words, 10, buf[10:40].reshape(3, 10))


def test_binary_dense_input_gradient(each_isa):
    """On the kernels where pm1_input_grad() holds, g . sign(W) is the
    oracle's sum bit for bit; elsewhere BLAS on sign(W), close to it."""
    rng = np.random.default_rng(3)
    layer = BinaryDense(130, 70, rng=rng)
    x = pybnn.pack(rng.standard_normal((9, 130)).astype(np.float32))
    g = rng.standard_normal((9, 70)).astype(np.float32)
    layer.forward(x, True)
    gx = layer.backward(g)
    want = gemm_f32_pm1(g, pm1(layer.W.value))
    if pm1_input_grad():
        _same(gx, want)
        assert layer._wbuf is None                  # no float copy of the weights
    else:
        np.testing.assert_allclose(gx, want, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------------
# the int8 product and the layer's int8 input gradient
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("i", [1, 4, 5, 9])
@pytest.mark.parametrize("k", [1, 31, 32, 33, 65, 130])
@pytest.mark.parametrize("j", [0, 1, 2, 3, 252, 253, 300])
def test_i8_pm1_is_exact(each_isa, restore_num_threads, i, k, j):
    rng = np.random.default_rng(i * 1000 + k * 10 + j)
    q = rng.integers(-128, 128, (i, j)).astype(np.int8)
    s = rng.standard_normal((j, k)).astype(np.float32)
    want = q.astype(np.int64) @ pm1(s).astype(np.int64) if j else np.zeros((i, k), np.int64)
    for threads in (1, 3):
        pybnn.set_num_threads(threads)
        out = np.full((i, k), 7, np.int32)
        _core.gemm_i8_pm1(q, pack_words(s), k, out)
        np.testing.assert_array_equal(out, want)


def test_i8_pm1_errors():
    q = np.zeros((3, 4), np.int8)
    words = np.zeros((4, 1), np.uint64)
    with pytest.raises(ValueError, match="s must be"):
        _core.gemm_i8_pm1(q, words[:3], 10, np.zeros((3, 10), np.int32))
    with pytest.raises(ValueError, match="out must be"):
        _core.gemm_i8_pm1(q, words, 10, np.zeros((3, 9), np.int32))
    with pytest.raises(ValueError):
        _core.gemm_i8_pm1(q.astype(np.uint8), words, 10, np.zeros((3, 10), np.int32))
    with pytest.raises(ValueError):
        _core.gemm_i8_pm1(q, words, 10, np.zeros((3, 10), np.int64))


def test_binary_dense_int8_input_gradient():
    """backward="int8": the gradient is scale * (Q . sign(W)) exactly, close
    to the float gradient, reproducible from the seed, and the generator's
    position is part of the layer's state."""
    from oracles import quantize_i8
    rng = np.random.default_rng(3)
    x = pybnn.pack(rng.standard_normal((9, 130)).astype(np.float32))
    g = rng.standard_normal((9, 70)).astype(np.float32)
    layer = BinaryDense(130, 70, rng=np.random.default_rng(1), backward="int8", seed=5)
    layer.forward(x, True)
    gx = layer.backward(g)
    q, scale = quantize_i8(g, 5, 0)
    exact = q.astype(np.int64) @ pm1(layer.W.value).astype(np.int64)
    np.testing.assert_array_equal(gx, exact.astype(np.float32) * scale[:, None])
    want = g.astype(np.float64) @ pm1(layer.W.value).astype(np.float64)
    # each of the 70 terms is off by less than one step of its row
    assert np.all(np.abs(gx - want) <= 70 * scale[:, None] + 1e-4)
    state = layer.state_dict()
    assert int(state["qstate"][1]) == g.size
    twin = BinaryDense(130, 70, rng=np.random.default_rng(1), backward="int8", seed=99)
    twin.load_state_dict(state)
    layer.forward(x, True)
    twin.forward(x, True)
    np.testing.assert_array_equal(layer.backward(g), twin.backward(g))
    assert "qstate" not in BinaryDense(4, 3).state_dict()
    with pytest.raises(ValueError, match="backward must be"):
        BinaryDense(4, 3, backward="int4")
