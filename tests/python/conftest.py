"""Shared configuration of the pybnn test suite.

Run from the repository root after installing the package:

    pip install . && pytest -q

pyproject.toml sets --import-mode=importlib, so the tests import the
*installed* pybnn (with its compiled _core extension), never the source
folder.
"""
from __future__ import annotations

import importlib.machinery
import os

import pytest
from hypothesis import HealthCheck, settings

# ---------------------------------------------------------------------------
# Hypothesis: no deadlines (first calls pay for ISA selection and page
# faults), few examples so the whole suite stays fast.  HYPOTHESIS_PROFILE=
# thorough runs many more examples; HYPOTHESIS_PROFILE=ci is reproducible.
# ---------------------------------------------------------------------------
settings.register_profile(
    "pybnn",
    deadline=None,
    max_examples=40,
    database=None,          # write no .hypothesis/ folder
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("pybnn"),
    max_examples=500,
)
settings.register_profile("ci", parent=settings.get_profile("pybnn"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pybnn"))

ISAS = ("ref", "avx2", "avx512", "avx512vnni", "neon", "neondot")   # every kernel table

_INSTALL_HINT = (
    "the pybnn being imported has no compiled _core extension.  Build and "
    "install the package first:\n\n    pip install .\n\nthen run pytest from "
    "the repository root (not `python -m pytest`, which puts the source "
    "folder, without the compiled extension, first on sys.path)."
)


def _compiled_core_problem():
    """None if `import pybnn` gives a package with a compiled _core, else a
    description of what is wrong."""
    try:
        import pybnn
    except ImportError as exc:
        return "cannot import pybnn (%s): %s" % (exc, _INSTALL_HINT)
    core = getattr(pybnn, "_core", None)
    origin = getattr(core, "__file__", None) or ""
    if core is None or not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return "pybnn from %s: %s" % (getattr(pybnn, "__file__", "?"), _INSTALL_HINT)
    return None


def pytest_collection(session):
    """Refuse to collect against a pybnn without its compiled extension."""
    problem = _compiled_core_problem()
    if problem is not None:
        raise pytest.UsageError(problem)


def pytest_report_header(config):
    problem = _compiled_core_problem()
    if problem is not None:
        return "pybnn: NOT USABLE (see error below)"
    import pybnn
    return "pybnn %s from %s; isa=%s, available=%s" % (
        pybnn.__version__, os.path.dirname(pybnn.__file__), pybnn.isa(),
        ",".join(pybnn.available_isas()))


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(params=ISAS)
def each_isa(request):
    """Run the test once per ISA with its kernels forced; skip ISAs this CPU
    or build cannot run; restore the ISA in use afterwards."""
    import pybnn
    name = request.param
    if not pybnn.isa_supported(name):
        pytest.skip("ISA %r is not supported on this CPU/build" % name)
    original = pybnn.isa()
    pybnn.set_isa(name)
    try:
        yield name
    finally:
        pybnn.set_isa(original)


@pytest.fixture
def restore_num_threads():
    """Let a test change pybnn.set_num_threads() (and numpy's BLAS threads,
    which `train(threads=...)` sets too); the previous values are put back
    afterwards.  Yields libbnn's previous value."""
    import pybnn
    from threadpoolctl import threadpool_limits
    original = pybnn.get_num_threads()
    blas = threadpool_limits(limits=None)       # records the limits as they are
    try:
        yield original
    finally:
        pybnn.set_num_threads(original)
        blas.restore_original_limits()


@pytest.fixture
def restore_isa():
    """Let a test change pybnn.set_isa(); the previous ISA is put back."""
    import pybnn
    original = pybnn.isa()
    try:
        yield original
    finally:
        pybnn.set_isa(original)
