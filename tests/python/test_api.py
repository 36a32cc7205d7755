"""Module-level API of pybnn: ISA dispatch, threads, versions, status
strings, and concurrent use from several Python threads."""
from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import threading

import numpy as np
import pytest

import pybnn
from pybnn import _core

from conftest import ISAS


# ---------------------------------------------------------------------------
# ISA dispatch
# ---------------------------------------------------------------------------
def test_isa_is_a_known_name():
    assert pybnn.isa() in ISAS
    assert pybnn.isa() in pybnn.available_isas()


def test_available_isas():
    avail = pybnn.available_isas()
    assert isinstance(avail, list)
    assert avail[0] == "ref"
    assert set(avail) <= set(ISAS)
    assert avail == [n for n in ISAS if n in avail]  # slowest first
    for name in ISAS:
        assert isinstance(pybnn.isa_supported(name), bool)
        assert pybnn.isa_supported(name) == (name in avail)
    assert pybnn.isa_supported("ref") is True


def test_set_isa_each_supported(each_isa):
    assert pybnn.isa() == each_isa
    x = np.array([[-1.0, 2.0, -3.0]], np.float32)
    assert pybnn.pack(x).words.tolist() == [[0b101]]


def test_set_isa_roundtrip(restore_isa):
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        assert pybnn.isa() == name
    pybnn.set_isa(restore_isa)
    assert pybnn.isa() == restore_isa


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------
def test_num_threads_default_and_set(restore_num_threads):
    assert isinstance(pybnn.get_num_threads(), int)
    assert pybnn.get_num_threads() >= 1
    for n in (1, 2, 3, 7, 256):
        pybnn.set_num_threads(n)
        assert pybnn.get_num_threads() == n


# ---------------------------------------------------------------------------
# Versions and constants
# ---------------------------------------------------------------------------
def test_version_strings_agree():
    assert pybnn.__version__ == _core.version_string()
    major, minor, patch = (int(p) for p in pybnn.__version__.split("."))
    assert _core.version_number() == major * 10000 + minor * 100 + patch
    assert _core.HEADER_VERSION_NUMBER == _core.version_number()


def test_distribution_version_matches():
    try:
        dist = importlib.metadata.version("pybnn")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        pytest.skip("pybnn is not installed as a distribution")
    assert dist == pybnn.__version__


def test_constants():
    assert pybnn.LAYOUT_VERSION == 1
    assert _core.LAYOUT_VERSION == pybnn.LAYOUT_VERSION
    assert _core.WORD_BITS == 64


def test_words():
    for k, w in [(0, 0), (1, 1), (63, 1), (64, 1), (65, 2), (128, 2), (129, 3), (4097, 65)]:
        assert _core.words(k) == w
    with pytest.raises(ValueError):
        _core.words(-1)


def test_public_names():
    for name in pybnn.__all__:
        assert hasattr(pybnn, name), name
    for name in ("pack", "bgemm", "bgemm_affine", "bgemm_threshold", "fold_threshold",
                 "fold_batchnorm", "PackedTensor", "BnnError", "BnnValueError"):
        assert name in pybnn.__all__


# ---------------------------------------------------------------------------
# Status strings
# ---------------------------------------------------------------------------
STATUS_STRINGS = {
    0: "ok",
    -1: "a required pointer is NULL",
    -2: "invalid or mismatched dimensions",
    -3: "a size computation overflows",
    -4: "an argument value is out of its domain",
    -5: "not supported by this build or CPU",
    -6: "out of memory",
    -7: "a row stride is smaller than the row",
    -8: "malformed, truncated or corrupt model file",
    -9: "the file cannot be opened or read",
    -10: "a GPU call failed (no driver or device, a bad device pointer or a failed launch)",
}


def test_status_strings():
    seen = set()
    for code, text in STATUS_STRINGS.items():
        s = _core.status_string(code)
        assert isinstance(s, str) and s
        assert s == text
        seen.add(s)
    assert len(seen) == len(STATUS_STRINGS)


@pytest.mark.parametrize("code", [1, -11, 100, -1000, 2 ** 31 - 1, -(2 ** 31)])
def test_unknown_status_string(code):
    assert _core.status_string(code) == "unknown status"


# ---------------------------------------------------------------------------
# Peak probe (benchmark support)
# ---------------------------------------------------------------------------
def test_peak_probe():
    for name in ISAS:
        if pybnn.isa_supported(name):
            assert _core.peak_probe(name, 100) > 0
            assert _core.peak_probe(name, 0) == 0
        else:
            with pytest.raises(pybnn.BnnError):
                _core.peak_probe(name, 100)


# ---------------------------------------------------------------------------
# PackedTensor basics
# ---------------------------------------------------------------------------
def test_packed_tensor_properties():
    p = pybnn.pack(np.ones((2, 3, 70), np.float32))
    assert p.shape == (2, 3, 70) and p.ndim == 3 and len(p) == 2
    assert p.nbytes == 2 * 3 * 2 * 8
    assert repr(p) == "PackedTensor(shape=(2, 3, 70), nbytes=96)"


# ---------------------------------------------------------------------------
# Several Python threads at once (the kernels release the GIL)
# ---------------------------------------------------------------------------
def _workload(seed):
    rng = np.random.default_rng(seed)
    n, m, k = 48, 300, 2000 + 7 * seed
    a = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0).astype(np.float32)
    w = np.where(rng.random((m, k)) < 0.5, -1, 1).astype(np.int8)
    scale = rng.uniform(0.5, 2, m).astype(np.float32)
    offset = rng.uniform(-4, 4, m).astype(np.float32)
    thresh = rng.integers(-40, 41, m).astype(np.int32)
    flip = rng.random(m) < 0.5
    return a, w, scale, offset, thresh, flip


def _run(work):
    a, w, scale, offset, thresh, flip = work
    ap, wp = pybnn.pack(a), pybnn.pack(w)
    return (ap.words.copy(), pybnn.bgemm(ap, wp), pybnn.bgemm_affine(ap, wp, scale, offset),
            pybnn.bgemm_threshold(ap, wp, thresh, flip).words.copy())


@pytest.mark.parametrize("lib_threads", [1, 2])
def test_concurrent_python_threads(restore_num_threads, lib_threads):
    pybnn.set_num_threads(lib_threads)   # set before any thread runs kernels
    works = [_workload(seed) for seed in range(4)]
    expected = [_run(wk) for wk in works]
    # sanity: the single-threaded results are right
    a, w = works[0][0], works[0][1]
    np.testing.assert_array_equal(expected[0][1], a.astype(np.int64) @ w.astype(np.int64).T)

    rounds = 5
    results = [[None] * rounds for _ in works]
    errors = []
    barrier = threading.Barrier(len(works))

    def worker(i):
        try:
            barrier.wait()
            for r in range(rounds):
                results[i][r] = _run(works[i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(works))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "worker threads hung"
    assert not errors, errors
    for i, exp in enumerate(expected):
        for r in range(rounds):
            got = results[i][r]
            for g, e in zip(got, exp):
                np.testing.assert_array_equal(g, e)
            np.testing.assert_array_equal(got[2].view(np.uint32), exp[2].view(np.uint32))


def test_concurrent_shared_operands(restore_num_threads):
    """Several threads reading the same packed operands, each writing its
    own output."""
    work = _workload(9)
    ap, wp = pybnn.pack(work[0]), pybnn.pack(work[1])
    expected = pybnn.bgemm(ap, wp)
    outs = [np.empty_like(expected) for _ in range(4)]
    errors = []

    def worker(i):
        try:
            for _ in range(5):
                outs[i][...] = 0
                assert pybnn.bgemm(ap, wp, out=outs[i]) is outs[i]
                np.testing.assert_array_equal(outs[i], expected)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


# ---------------------------------------------------------------------------
# Command-line interface
# ---------------------------------------------------------------------------
def _run_cli(*args):
    exe = shutil.which("pybnn")
    assert exe is not None, "the pybnn console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


def test_cli_info():
    r = _run_cli("info")
    assert r.returncode == 0, r.stderr
    assert "pybnn %s" % pybnn.__version__ in r.stdout
    assert "kernels: %s" % pybnn.isa() in r.stdout
    assert "BLAS" in r.stdout


def test_cli_bench_gemm_small(tmp_path):
    out = tmp_path / "bench.json"
    r = _run_cli("bench", "gemm", "--shapes", "5x70x130,1x64x64", "--threads", "1,2",
                 "--rounds", "1", "--probe-seconds", "0.05", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "peak probe" in r.stdout and "x float" in r.stdout
    res = json.loads(out.read_text())
    assert res["isa"] == pybnn.isa()
    assert [tuple(row["shape"]) for row in res["rows"]] == [(5, 70, 130)] * 2 + [(1, 64, 64)] * 2
    assert all(row["bnn_median"] > 0 and row["float_median"] > 0 for row in res["rows"])
    assert res["probe"]["single"] > 0


@pytest.mark.parametrize("args", [["bench", "gemm", "--shapes", "3x4"],
                                  ["bench", "gemm", "--threads", "0"],
                                  ["bench", "gemm", "--rounds", "-1"],
                                  ["bench", "conv2"], ["nosuchcommand"]])
def test_cli_bad_arguments(args):
    r = _run_cli(*args)
    assert r.returncode == 2
    assert "error" in r.stderr


def test_every_pybnn_name_in_the_docs_resolves():
    """Each `pybnn.a.b` and `from pybnn.x import y, z` in README.md and
    docs/*.md names something that exists (moved code keeps its path or
    the docs move with it)."""
    import importlib
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[2]
    texts = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    names = set()
    for path in texts:
        text = path.read_text()
        names |= set(re.findall(r"\bpybnn(?:\.[A-Za-z_]\w*)+", text))
        for mod, items in re.findall(r"from (pybnn[\w.]*) import ([\w, ]+)", text):
            names |= {mod + "." + item.strip() for item in items.split(",") if item.strip()}
    assert len(names) > 20
    for name in sorted(names):
        parts = name.split(".")
        obj, i = None, len(parts)
        while i > 0:                      # the longest importable module prefix
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                i -= 1
        for attr in parts[i:]:
            assert hasattr(obj, attr), "%s (in the docs) does not exist" % name
            obj = getattr(obj, attr)
