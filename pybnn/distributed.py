"""Data-parallel training over MPI (mpi4py, the `mpi` extra).

Every rank holds the whole model and trains on its shard of every global
batch: the global batch of B samples (the run's own permutation, drawn
from its seed and epoch exactly as one process draws it) is cut into
`size` contiguous slices (shard_bounds: sizes differ by at most one), and
rank r runs the training step on slice r.  What crosses ranks:

- the weight gradients, each rank's partial sum over its samples,
  summed by Allreduce in place on the float32 buffers the backward
  kernels write, started layer by layer as backward reaches them
  (Reducer);
- the batch norms' inputs and output gradients (the rows of every rank,
  gathered): each rank runs libbnn's batch norm on the global batch, so
  statistics, normalised values and the parameters' gradients are those
  one process computes, bit for bit;
- the scores of the last layer: the loss and its gradient are computed
  on the global batch (one process's floats), each rank keeping its rows;
- the int8 backward's per-column scales (a maximum over ranks, so every
  rank rounds with the global batch's scale) -- the stochastic rounding,
  the stochastic signs and the dropout masks draw at the global sample
  index, so each rank draws exactly the bits one process draws for its
  samples;
- evaluation error counts (integers).

Only the weight gradients' sum over the batch is split: one process adds
the B products in BLAS's (or libbnn's) order, R ranks add their partials
and then the R partial sums.  docs/distributed.md states the bound this
gives and what is exact.

The single-process implementation of the same hooks is LocalComm: its
shard is the whole batch and every hook is the identity, so `pybnn train`
without MPI runs the code it always ran (mpi4py is imported only when a
run is distributed).  Every collective is non-blocking and waited with a
deadline (`timeout`), so a rank that dies or stops never leaves the
others waiting: they raise DistributedError naming the collective.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ._args import integer, real, show

__all__ = ["LocalComm", "MPIComm", "Shard", "DistributedError", "communicator",
           "launched_ranks", "mpiexec_path", "shard_bounds", "DEFAULT_TIMEOUT"]

# Seconds a rank waits for the others in one collective before it decides
# that one of them is gone.  It must cover the longest time one rank may
# run alone between two collectives: rank 0 writing a checkpoint.
DEFAULT_TIMEOUT = 300.0


class DistributedError(RuntimeError):
    """A collective failed or timed out: another rank is gone."""


def shard_bounds(n, size, rank):
    """[lo, hi) of rank `rank`'s contiguous slice of n items cut into
    `size` slices whose sizes differ by at most one (the larger ones last)."""
    n, size = integer(n, "n", 0), integer(size, "size", 1)
    rank = integer(rank, "rank", 0)
    if rank >= size:
        raise ValueError("rank must be < size (%d), got %d" % (size, rank))
    return n * rank // size, n * (rank + 1) // size


def launched_ranks():
    """The number of ranks the MPI launcher started this process among
    (MPICH's and Open MPI's environment), or None outside a launcher."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        v = os.environ.get(var)
        if v and v.isdigit():
            return int(v)
    return None


def mpiexec_path():
    """The MPI launcher beside this Python (where the mpich wheel installs
    it), else the first on PATH; None when there is none."""
    import shutil
    import sys
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.access(here, os.X_OK) else shutil.which("mpiexec")


def communicator(distributed=None, timeout=DEFAULT_TIMEOUT):
    """The communicator of a training run: MPIComm when `distributed`, or
    (None) when the process was started by an MPI launcher with more than
    one rank; LocalComm otherwise."""
    timeout = real(timeout, "timeout", above=0.0)
    if distributed is None:
        distributed = (launched_ranks() or 1) > 1
    if not distributed:
        return LocalComm()
    return MPIComm(timeout=timeout)


class CommStats:
    """Seconds spent in (and bytes sent by) the collectives of each kind."""

    def __init__(self):
        self.seconds = {}
        self.bytes = {}

    def add(self, kind, seconds, nbytes):
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
        self.bytes[kind] = self.bytes.get(kind, 0) + int(nbytes)

    def clear(self):
        self.seconds.clear()
        self.bytes.clear()


class Shard:
    """This rank's part of a global batch of `n` samples: [lo, hi), and the
    hooks the layers call.  `per` (rows per sample, e.g. H*W positions of
    an NHWC activation) converts samples to rows."""

    def __init__(self, comm, n):
        self.comm = comm
        self.n = integer(n, "n", 0)
        self.bounds = [shard_bounds(self.n, comm.size, r) for r in range(comm.size)]
        self.lo, self.hi = self.bounds[comm.rank]
        self.split = comm.size > 1

    def rows(self, per=1):
        """(this rank's first row, the global batch's rows)."""
        return self.lo * per, self.n * per

    def own(self, a, per=1):
        """This rank's rows of a global-batch array (the array itself for
        an unsplit batch)."""
        return a[self.lo * per:self.hi * per] if self.split else a

    def gather(self, a, per=1):
        """The global batch's rows, every rank's in rank order, from this
        rank's rows `a` (an unsplit batch: `a` itself)."""
        return self.comm.gather_rows(a, [(lo * per, hi * per) for lo, hi in self.bounds]) \
            if self.split else a

    def max(self, a):
        """Elementwise maximum of `a` over the ranks, in place."""
        if self.split:
            self.comm.allreduce(a, "max")
        return a


class _NoReducer:
    def finish(self):
        pass


class LocalComm:
    """One process: rank 0 of 1; every hook is the identity."""

    rank = 0
    size = 1
    distributed = False

    def __init__(self):
        self.stats = CommStats()

    def shard(self, n):
        return Shard(self, n)

    def reducer(self, model):
        return _NoReducer()

    def sum(self, values):
        return np.asarray(values)

    def gather_rows(self, a, bounds):  # pragma: no cover - Shard does not call it unsplit
        return a

    def allreduce(self, a, op="sum"):  # pragma: no cover - likewise
        return a

    def barrier(self):
        pass

    def abort(self, code=1):  # pragma: no cover - only the distributed run aborts
        os._exit(code)

    def describe(self):
        return "1 process"


_DTYPES = {"float32": "FLOAT", "float64": "DOUBLE", "int64": "INT64_T", "int32": "INT32_T"}


class MPIComm:
    """MPI_COMM_WORLD through mpi4py.  Collectives are non-blocking and
    waited for with a deadline of `timeout` seconds (DistributedError when
    it passes or MPI reports a failure)."""

    distributed = True

    def __init__(self, timeout=DEFAULT_TIMEOUT):
        self.timeout = real(timeout, "timeout", above=0.0)
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ValueError("distributed training needs mpi4py and an MPI library: "
                             "pip install 'pybnn[mpi]' (%s)" % e) from None
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.stats = CommStats()

    def describe(self):
        return "%d MPI ranks (%s)" % (self.size, self.MPI.Get_library_version().split("\n")[0]
                                      .strip())

    def _type(self, a):
        name = _DTYPES.get(a.dtype.name)
        if name is None:
            raise TypeError("collectives take %s arrays, got %s"
                            % (", ".join(_DTYPES), show(a)))
        return getattr(self.MPI, name)

    def wait(self, reqs, what):
        """Wait for requests `reqs`, polling, until `timeout` seconds pass."""
        t0 = time.monotonic()
        delay = 2e-5
        while True:
            try:
                if self.MPI.Request.Testall(reqs):
                    return
            except self.MPI.Exception as e:
                raise DistributedError(
                    "rank %d of %d: %s failed: %s (another rank has stopped: killed or "
                    "crashed)" % (self.rank, self.size, what, e.Get_error_string())) from None
            if time.monotonic() - t0 > self.timeout:
                raise DistributedError(
                    "rank %d of %d: no answer from the other ranks within %g s in %s: a rank "
                    "has stopped (killed, crashed or hung)"
                    % (self.rank, self.size, self.timeout, what))
            time.sleep(delay)
            delay = min(2 * delay, 1e-3)

    def _timed(self, kind, reqs, what, nbytes):
        t0 = time.perf_counter()
        self.wait(reqs, what)
        self.stats.add(kind, time.perf_counter() - t0, nbytes)

    def shard(self, n):
        return Shard(self, n)

    def reducer(self, model):
        return Reducer(self, model) if self.size > 1 else _NoReducer()

    def allreduce(self, a, op="sum", what=None):
        """a (contiguous) summed or maximised over the ranks, in place."""
        if not a.flags.c_contiguous:
            raise ValueError("allreduce needs a C-contiguous array, got %s" % show(a))
        mop = {"sum": self.MPI.SUM, "max": self.MPI.MAX}[op]
        req = self.comm.Iallreduce(self.MPI.IN_PLACE, [a, self._type(a)], op=mop)
        self._timed("allreduce", [req], what or "an allreduce (%s)" % op, a.nbytes)
        return a

    def sum(self, values):
        """The sum over ranks of an int64 or float64 array (a copy)."""
        a = np.array(values)
        a = a.astype(np.int64 if a.dtype.kind in "iub" else np.float64)
        return self.allreduce(np.ascontiguousarray(a), "sum", "a sum of metrics")

    def gather_rows(self, a, bounds):
        """Concatenate every rank's rows (rank r holds rows bounds[r]) of
        arrays whose other axes agree: an Allgatherv."""
        a = np.ascontiguousarray(a)
        inner = int(np.prod(a.shape[1:]))
        counts = [(hi - lo) * inner for lo, hi in bounds]
        displs = [lo * inner for lo, _ in bounds]
        if a.shape[0] * inner != counts[self.rank]:
            raise ValueError("rank %d holds %d rows, its shard has %d"
                             % (self.rank, a.shape[0], bounds[self.rank][1] - bounds[self.rank][0]))
        out = np.empty((bounds[-1][1],) + a.shape[1:], a.dtype)
        t = self._type(a)
        req = self.comm.Iallgatherv([a, t], [out, (counts, displs), t])
        self._timed("gather", [req], "a gather of activations", a.nbytes)
        return out

    def barrier(self):
        self._timed("barrier", [self.comm.Ibarrier()], "a barrier", 0)

    def abort(self, code=1):
        """End every rank of the job (MPI_Abort does not return)."""
        try:
            self.comm.Abort(code)
        finally:
            os._exit(code)


class Reducer:
    """The weight gradients' Allreduce, in buckets that follow backward:
    Sequential calls start(layer) as soon as a layer's backward has written
    its gradients, which sends them (in place) while the layers below run
    backward; finish() waits for the last before the optimizer step.  MPI
    moves a non-blocking collective on when the process is inside MPI, so
    each start() also tests the requests already sent."""

    def __init__(self, comm, model):
        self.comm, self.model = comm, model
        self.reqs, self.nbytes = [], 0
        self.seconds = 0.0
        model.grad_ready = self.start

    def start(self, layer):
        MPI = self.comm.MPI
        t0 = time.perf_counter()
        for p in layer.partial_parameters():
            g = p.grad                     # fresh (a stale gradient reads as zeros)
            self.reqs.append(self.comm.comm.Iallreduce(MPI.IN_PLACE, [g, MPI.FLOAT],
                                                       op=MPI.SUM))
            self.nbytes += g.nbytes
        try:
            MPI.Request.Testall(self.reqs)
        except MPI.Exception:
            pass                          # reported by finish()'s wait
        self.seconds += time.perf_counter() - t0

    def finish(self):
        self.model.grad_ready = None
        t0 = time.perf_counter()
        self.comm.wait(self.reqs, "the gradient allreduce")
        self.comm.stats.add("allreduce", self.seconds + time.perf_counter() - t0, self.nbytes)
