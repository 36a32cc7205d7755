"""Errors: exception types, status codes, and that a failed call changes
nothing."""
from __future__ import annotations

import numpy as np
import pytest

import pybnn
from pybnn import _core

from conftest import ISAS

# bnn_status values (include/bnn.h; values are ABI)
BNN_ERR_SHAPE = -2
BNN_ERR_OVERFLOW = -3
BNN_ERR_INVALID = -4
BNN_ERR_UNSUPPORTED = -5


def _packed(rows, k, seed=0):
    rng = np.random.default_rng(seed)
    return pybnn.pack(np.where(rng.random((rows, k)) < 0.5, -1, 1).astype(np.int8))


# ---------------------------------------------------------------------------
# Exception classes
# ---------------------------------------------------------------------------
def test_exception_hierarchy():
    assert issubclass(pybnn.BnnError, RuntimeError)
    assert issubclass(pybnn.BnnValueError, pybnn.BnnError)
    assert issubclass(pybnn.BnnValueError, ValueError)
    e = pybnn.BnnValueError("msg", -4)
    assert e.status == -4 and str(e) == "msg"
    assert pybnn.BnnError("x").status is None


# ---------------------------------------------------------------------------
# set_isa / isa_supported
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "REF", "avx", "sse2", "avx-512", "NEON", "ref "])
def test_set_isa_unknown_name(restore_isa, name):
    before = pybnn.isa()
    with pytest.raises(ValueError):
        pybnn.set_isa(name)
    with pytest.raises(ValueError):
        pybnn.isa_supported(name)
    assert pybnn.isa() == before


@pytest.mark.parametrize("name", [None, 0, 1, b"ref", ["ref"]])
def test_set_isa_not_a_string(restore_isa, name):
    with pytest.raises(TypeError):
        pybnn.set_isa(name)
    with pytest.raises(TypeError):
        pybnn.isa_supported(name)


@pytest.mark.parametrize("name", ISAS)
def test_set_isa_unsupported(restore_isa, name):
    if pybnn.isa_supported(name):
        pytest.skip("%s is supported here" % name)
    before = pybnn.isa()
    with pytest.raises(pybnn.BnnError) as info:
        pybnn.set_isa(name)
    assert info.value.status == BNN_ERR_UNSUPPORTED
    assert not isinstance(info.value, ValueError)
    assert _core.status_string(BNN_ERR_UNSUPPORTED) in str(info.value)
    assert pybnn.isa() == before   # nothing changed


# ---------------------------------------------------------------------------
# set_num_threads
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, -1, 257, 10 ** 6])
def test_set_num_threads_out_of_range(restore_num_threads, n):
    pybnn.set_num_threads(2)
    with pytest.raises(ValueError) as info:
        pybnn.set_num_threads(n)
    assert isinstance(info.value, pybnn.BnnValueError)
    assert info.value.status == BNN_ERR_INVALID
    assert pybnn.get_num_threads() == 2   # unchanged


@pytest.mark.parametrize("n", ["2", 2.5, None])
def test_set_num_threads_wrong_type(restore_num_threads, n):
    with pytest.raises(TypeError):
        pybnn.set_num_threads(n)


def test_set_num_threads_overflowing_int(restore_num_threads):
    with pytest.raises((ValueError, OverflowError)):
        pybnn.set_num_threads(2 ** 40)


# ---------------------------------------------------------------------------
# fold_threshold status codes
# ---------------------------------------------------------------------------
def test_fold_threshold_status_codes():
    with pytest.raises(pybnn.BnnValueError) as info:
        pybnn.fold_threshold([np.nan], [0.0], 5)
    assert info.value.status == BNN_ERR_INVALID
    with pytest.raises(pybnn.BnnValueError) as info:
        pybnn.fold_threshold([1.0], [0.0], 2 ** 31)
    assert info.value.status == BNN_ERR_OVERFLOW


# ---------------------------------------------------------------------------
# bgemm_threshold arguments
# ---------------------------------------------------------------------------
def test_threshold_requires_thresh():
    a, w = _packed(2, 10), _packed(3, 10, 1)
    with pytest.raises(ValueError):
        pybnn.bgemm_threshold(a, w, None)


@pytest.mark.parametrize("thresh,flip", [
    (np.zeros(2, np.int32), None),
    (np.zeros(4, np.int32), None),
    (np.zeros((3, 1), np.int32), None),
    (np.zeros(3, np.int32), np.zeros(2, bool)),
    (np.zeros(3, np.int32), np.zeros(4, bool)),
])
def test_threshold_wrong_lengths(thresh, flip):
    a, w = _packed(2, 10), _packed(3, 10, 1)
    with pytest.raises(ValueError):
        pybnn.bgemm_threshold(a, w, thresh, flip)


def test_threshold_complex_thresh():
    a, w = _packed(2, 10), _packed(3, 10, 1)
    with pytest.raises(TypeError):
        pybnn.bgemm_threshold(a, w, np.zeros(3, np.complex128))


def _semantics_or_error(thresh, expected_neg):
    """thresh values that int32 cannot hold exactly must either be rejected
    or honoured (dot < thresh), never silently truncated or wrapped."""
    a = pybnn.pack(np.ones((1, 10), np.float32))
    w = pybnn.pack(np.ones((len(thresh), 10), np.float32))   # every dot is 10
    try:
        res = pybnn.bgemm_threshold(a, w, thresh)
    except (TypeError, ValueError, OverflowError):
        return
    np.testing.assert_array_equal(res.unpack()[0], np.where(expected_neg, -1, 1))


def test_threshold_out_of_int32_range_not_wrapped():
    # 2**32 + 5 wraps to 5 in int32: "10 < 5" would wrongly give +1
    _semantics_or_error(np.array([2 ** 32 + 5, -(2 ** 32) + 20]), [True, False])


def test_threshold_fraction_not_truncated():
    # "10 < 10.5" is True; truncation to 10 gives "10 < 10" False
    _semantics_or_error(np.array([10.5, 9.5]), [True, False])


# ---------------------------------------------------------------------------
# Failed calls write nothing
# ---------------------------------------------------------------------------
def test_failed_bgemm_leaves_out_untouched():
    a, w = _packed(2, 64), _packed(3, 65, 1)
    out = np.full((2, 3), 7, np.int32)
    with pytest.raises(ValueError):
        pybnn.bgemm(a, w, out=out)
    assert (out == 7).all()


# ---------------------------------------------------------------------------
# Low-level binding checks
# ---------------------------------------------------------------------------
def test_core_gemm_unknown_kind():
    a, w = _packed(2, 10), _packed(3, 10, 1)
    with pytest.raises(ValueError):
        _core.gemm(a.words, w.words, 10, np.zeros((2, 3), np.int32), 3)


def test_core_gemm_requires_2d():
    a, w = _packed(2, 10), _packed(3, 10, 1)
    with pytest.raises(ValueError):
        _core.gemm(a.words.ravel(), w.words, 10, np.zeros((2, 3), np.int32))


def test_core_peak_probe_bad_name():
    with pytest.raises(ValueError):
        _core.peak_probe("nope", 10)
