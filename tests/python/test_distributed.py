"""Data-parallel training (pybnn.distributed): the sharding and the
one-process communicator here; with mpi4py and an MPI launcher (the `mpi`
extra; .ci/run's MPI stage installs it), runs of `mpiexec -n 2` and
`-n 3` (oversubscribed on this machine, uneven shards) on loopback:

- every rank's state hashes alike after every step, and one step from
  equal states gives one process's loss, batch-norm statistics and
  gradients of everything but the weights bit for bit, and weight
  gradients within the bound of docs/distributed.md (mpi_worker.py steps);
- `pybnn train` over 2 ranks ends near one process's model and metrics;
- a rank killed mid-epoch ends the job (within a deadline, enforced
  here), and --resume, with the same rank count, gives the uninterrupted
  run's checkpoint bit for bit, or, with another, finishes the run;
- a rank that stops answering makes the other one stop with an error
  naming the collective, within --timeout.

Without mpi4py or mpiexec the MPI tests skip, saying why;
BNN_REQUIRE_MPI=1 (the CI stage) turns that skip into a failure.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybnn.distributed import (LocalComm, MPIComm, communicator, launched_ranks,
                               mpiexec_path, shard_bounds)

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "mpi_worker.py")
# A hung or killed rank must not hang a test: every launch has this deadline.
DEADLINE = 240


# ---- without MPI ---------------------------------------------------------------

@given(st.integers(0, 10_000), st.integers(1, 64))
def test_shard_bounds_cover_the_batch_in_order(n, size):
    bounds = [shard_bounds(n, size, r) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("args, message", [
    ((-1, 2, 0), "n must be >= 0, got -1"),
    ((4, 0, 0), "size must be >= 1, got 0"),
    ((4, 2, 2), "rank must be < size (2), got 2"),
    ((4, 2, -1), "rank must be >= 0, got -1"),
    ((4.5, 2, 0), "n must be an int, got 4.5"),
])
def test_shard_bounds_names_a_bad_argument(args, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        shard_bounds(*args)


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match=r"timeout must be > 0(\.0)?, got -1"):
        communicator(False, timeout=-1)
    with pytest.raises(ValueError, match=r"timeout must be > 0(\.0)?, got 0"):
        MPIComm(timeout=0)


def test_local_comm_is_the_identity():
    comm = LocalComm()
    assert (comm.rank, comm.size, comm.distributed) == (0, 1, False)
    shard = comm.shard(7)
    a = np.arange(14.0).reshape(7, 2)
    assert shard.own(a) is a and shard.gather(a) is a and shard.max(a) is a
    assert shard.rows(3) == (0, 21)
    assert comm.sum([3]).tolist() == [3]


def test_one_process_without_a_launcher(monkeypatch):
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(var, raising=False)
    assert launched_ranks() is None
    assert isinstance(communicator(), LocalComm)
    monkeypatch.setenv("PMI_SIZE", "1")
    assert isinstance(communicator(), LocalComm)


def test_distributed_without_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)      # import fails
    with pytest.raises(ValueError, match=r"pip install 'pybnn\[mpi\]'"):
        communicator(True)
    with pytest.raises(ValueError, match=r"pybnn\[mpi\]"):
        MPIComm()


# ---- with MPI ------------------------------------------------------------------

def _mpi_missing():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'pybnn[mpi]'; .ci/run's MPI stage does)"
    if mpiexec_path() is None:
        return "no mpiexec found beside %s or on PATH" % sys.executable
    return None


@pytest.fixture(scope="module")
def mpi():
    why = _mpi_missing()
    if why:
        if os.environ.get("BNN_REQUIRE_MPI") == "1":
            pytest.fail("BNN_REQUIRE_MPI=1 but " + why)
        pytest.skip(why)
    return mpiexec_path()


def _launch(mpiexec, ranks, *args, env=None, timeout=DEADLINE):
    """mpiexec -n ranks python mpi_worker.py args (one thread per rank);
    the deadline turns a hang into a failure."""
    full_env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **(env or {}))
    cmd = [mpiexec, "-n", str(ranks), sys.executable, WORKER, *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=full_env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail("mpiexec -n %d did not end within %d s (a rank left hanging): %s"
                    % (ranks, timeout, (e.stderr or b"")[-2000:]))


@pytest.mark.parametrize("ranks", [2, 3])
def test_steps_equal_one_process(mpi, ranks):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "steps.json")
        r = _launch(mpi, ranks, "steps", path)
        assert r.returncode == 0, r.stdout + r.stderr
        with open(path) as f:
            res = json.load(f)
    assert res.pop("ranks") == ranks
    for name, rep in res.items():
        assert rep["steps"] == 4, name
        assert rep["ranks_identical"], name        # every rank alike after every step
        assert rep["same_loss"], name              # the loss of the global batch, exact
        assert rep["same_state"], (name, rep["unequal_state"])
        assert rep["max_ratio"] <= 1.0, name        # weight gradients within the bound


TRAIN = ["train", "--epochs", "3", "--width", "32", "--limit", "600", "--no-progress",
         "--threads", "1", "--seed", "3"]


def _arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "state"}


def _history(path):
    with np.load(path) as z:
        state = json.loads(str(z["state"]))
    for row in state["history"]:
        row.pop("seconds")
    return state


@pytest.fixture(scope="module")
def runs(mpi):
    """One process and 2 ranks, uninterrupted, of the same run."""
    d = tempfile.mkdtemp()
    one = subprocess.run([sys.executable, WORKER, "cli", *TRAIN, "--out",
                          os.path.join(d, "one")], capture_output=True, text=True,
                         timeout=DEADLINE)
    assert one.returncode == 0, one.stderr
    two = _launch(mpi, 2, "cli", *TRAIN, "--out", os.path.join(d, "two"))
    assert two.returncode == 0, two.stdout + two.stderr
    yield dict(dir=d, one=os.path.join(d, "one"), two=os.path.join(d, "two"), stdout=two.stdout)
    shutil.rmtree(d, ignore_errors=True)


def test_train_over_two_ranks_matches_one_process(runs):
    # rank 0 alone prints: one line per epoch, one summary
    assert runs["stdout"].count("epoch 3/3") == 1
    assert runs["stdout"].count("done in") == 1
    with open(os.path.join(runs["two"], "metrics.json")) as f:
        assert json.load(f)["ranks"] == 2
    one, two = _arrays(os.path.join(runs["one"], "last.npz")), \
        _arrays(os.path.join(runs["two"], "last.npz"))
    assert one.keys() == two.keys()
    # the weights' float sums differ by rounding (the stated per-step
    # bound); over 18 steps the latent weights stay close and the binary
    # weights (their signs) agree almost everywhere
    for k in one:
        a, b = one[k], two[k]
        if a.dtype != np.float32:
            assert np.array_equal(a, b), k             # generator positions
        elif k.endswith(".W"):
            assert np.mean(np.abs(a - b) <= 1e-3) >= 0.999, k
            assert np.mean(np.signbit(a) == np.signbit(b)) >= 0.999, k
    h1, h2 = _history(os.path.join(runs["one"], "last.npz")), \
        _history(os.path.join(runs["two"], "last.npz"))
    assert h1["config"] == h2["config"]
    for r1, r2 in zip(h1["history"], h2["history"]):
        assert abs(r1["test_error"] - r2["test_error"]) <= 0.02
        assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-2)


def test_killed_rank_ends_the_job_and_resume_is_exact(mpi, runs):
    d = tempfile.mkdtemp(dir=runs["dir"])
    out = os.path.join(d, "run")
    # rank 1 is killed at step 9: epoch 2 of 6 steps each (540 images, batch 100)
    r = _launch(mpi, 2, "cli", *TRAIN, "--out", out,
                env=dict(BNN_TEST_FAULT="1:9:%d" % signal.SIGKILL))
    assert r.returncode != 0
    assert _history(os.path.join(out, "last.npz"))["epoch"] == 1
    other = os.path.join(d, "other")
    shutil.copytree(out, other)
    r = _launch(mpi, 2, "cli", *TRAIN, "--out", out, "--resume")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming" in r.stdout
    want, got = _arrays(os.path.join(runs["two"], "last.npz")), \
        _arrays(os.path.join(out, "last.npz"))
    assert want.keys() == got.keys()
    for k in want:
        assert np.array_equal(want[k], got[k]), k
    assert _history(os.path.join(out, "last.npz")) == _history(os.path.join(runs["two"],
                                                                             "last.npz"))
    # another rank count continues the same run: same configuration, the
    # generators where the checkpoint left them
    r = _launch(mpi, 3, "cli", *TRAIN, "--out", other, "--resume")
    assert r.returncode == 0, r.stdout + r.stderr
    state = _history(os.path.join(other, "last.npz"))
    assert state["epoch"] == 3 and state["history"][0] == _history(
        os.path.join(runs["two"], "last.npz"))["history"][0]


def test_killed_rank_of_three_ends_the_job(mpi):
    with tempfile.TemporaryDirectory() as d:
        r = _launch(mpi, 3, "cli", *TRAIN, "--out", os.path.join(d, "run"),
                    env=dict(BNN_TEST_FAULT="2:3:%d" % signal.SIGKILL))
    assert r.returncode != 0


def test_stopped_rank_times_out_with_a_clear_error(mpi):
    with tempfile.TemporaryDirectory() as d:
        r = _launch(mpi, 2, "cli", *TRAIN, "--out", os.path.join(d, "run"), "--timeout", "5",
                    env=dict(BNN_TEST_FAULT="1:3:%d" % signal.SIGSTOP))
    assert r.returncode != 0
    assert "rank 0 of 2: no answer from the other ranks within 5 s in" in r.stderr, r.stderr
