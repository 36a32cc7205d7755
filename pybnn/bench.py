"""Benchmarks: `pybnn bench gemm`.

Every comparison interleaves baseline and candidate in one process (one
sample of each per round) and reports medians and minima, so a noisy
neighbour slows both alike.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

from . import _core
from ._tensor import bgemm, pack

FULL_SHAPES = [  # (N, M, K): C[N, M] = A[N, K] . W[M, K]^T
    (4096, 4096, 4096),
    (64, 4096, 4096),
    (100, 4096, 4096),
    (1, 4096, 4096),
    (8192, 8192, 8192),
]
QUICK_SHAPES = [(1, 4096, 4096), (64, 4096, 4096), (1024, 1024, 4096)]


def _best_isa():
    return _core.available_isas()[-1]


def _pin(cpu):
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
            return True
        except OSError:
            return False
    return False


def _probe_rate(isa, seconds):
    """Binary MACs per second of the ISA's register-only peak loop."""
    iters = 1 << 16
    while True:  # calibrate to about a tenth of the budget
        t = time.perf_counter()
        _core.peak_probe(isa, iters)
        dt = time.perf_counter() - t
        if dt > seconds / 10 or iters > 1 << 34:
            break
        iters *= 4
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 3:
        t = time.perf_counter()
        macs = _core.peak_probe(isa, iters)
        rates.append(macs / (time.perf_counter() - t))
    return statistics.median(rates)


def _probe_worker(args):
    isa, cpu, seconds, barrier = args
    _pin(cpu)
    barrier.wait()
    return _probe_rate(isa, seconds)


def peak_probe(isa=None, seconds=1.0):
    """Pinned single-process peak, and the aggregate of two processes
    running the same loop at once on two CPUs (how this host scales)."""
    isa = isa or _best_isa()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else list(range(os.cpu_count() or 1))
    ctx = mp.get_context("fork") if sys.platform != "win32" else mp.get_context()
    with ctx.Pool(1) as pool:
        single = pool.apply(_probe_worker_solo, ((isa, cpus[0], seconds),))
    pair = None
    if len(cpus) >= 2:
        with ctx.Manager() as man:
            barrier = man.Barrier(2)
            with ctx.Pool(2) as pool:
                rates = pool.map(_probe_worker, [(isa, cpus[0], seconds, barrier),
                                                 (isa, cpus[1], seconds, barrier)])
        pair = sum(rates)
    return {"isa": isa, "single": single, "pair": pair,
            "scaling": (pair / single) if pair else None}


def _probe_worker_solo(args):
    isa, cpu, seconds = args
    _pin(cpu)
    return _probe_rate(isa, seconds)


def _timer(fn, min_time=0.02):
    """A callable that runs fn enough times to last ~min_time; returns the
    seconds per call."""
    reps = 1
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    if dt < min_time:
        reps = max(1, int(min_time / max(dt, 1e-7)))

    def run():
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps
    return run


def interleave(fns, rounds, settle=None):
    """Run each callable once per round, in turn; returns lists of times.
    settle[i] seconds of sleep follow callable i (outside the timing)."""
    timers = [_timer(f) for f in fns]
    times = [[] for _ in fns]
    for _ in range(rounds):
        for i, run in enumerate(timers):
            times[i].append(run())
            if settle and settle[i]:
                time.sleep(settle[i])
    return times


# OpenBLAS worker threads spin for a while after a multi-threaded call and
# would steal the CPUs of whatever runs next; measured here, they let go
# after 0.1-0.3 s.  The benchmark waits this long after such a call.
BLAS_SETTLE_SECONDS = 0.5


def blas_name():
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            i = info[0]
            return "%s %s (%s)" % (i.get("internal_api"), i.get("version"),
                                   i.get("architecture"))
    except Exception:  # pragma: no cover
        pass
    return "unknown"


def _pm1(rng, shape):
    return np.where(rng.random(shape, dtype=np.float32) < 0.5, -1.0, 1.0).astype(np.float32)


def bench_gemm(shapes, threads=(1, 2), rounds=5, probe_seconds=1.0, isa=None,
               out=print, check=True):
    from threadpoolctl import threadpool_limits
    if isa:
        _core.set_isa(isa)
    active = _core.isa()
    out("pybnn %s, kernels: %s (available: %s)" % (_core.version_string(), active,
                                                   ", ".join(_core.available_isas())))
    out("numpy %s, BLAS: %s" % (np.__version__, blas_name()))
    if max(threads) > 1:
        out("(after each multi-threaded BLAS call the benchmark waits %.1f s for its spinning "
            "worker threads to park before timing pybnn)" % BLAS_SETTLE_SECONDS)
    if not _core.isa_supported("avx512"):
        out("note: this CPU has no AVX-512 VPOPCNTDQ; the probe and kernels use %s" % active)
    probe = peak_probe(active, probe_seconds)
    out("peak probe (%s, pinned): %.1f G binary MAC/s; two processes at once: %s"
        % (probe["isa"], probe["single"] / 1e9,
           "%.1f G (x%.2f)" % (probe["pair"] / 1e9, probe["scaling"]) if probe["pair"] else "n/a"))
    rng = np.random.default_rng(0)
    rows = []
    hdr = ("%-16s %3s %11s %11s %11s %11s %9s %8s %7s"
           % ("N x M x K", "thr", "float med", "float min", "bnn med", "bnn min",
              "bin GOPS", "x float", "% peak"))
    out(hdr)
    out("-" * len(hdr))
    old_threads = _core.get_num_threads()
    try:
        for (n, m, k) in shapes:
            a = _pm1(rng, (n, k))
            w = _pm1(rng, (m, k))
            pa, pw = pack(a), pack(w)
            res = np.empty((n, m), dtype=np.int32)
            fres = np.empty((n, m), dtype=np.float32)
            if check:
                bgemm(pa, pw, out=res)
                with threadpool_limits(1):
                    np.matmul(a, w.T, out=fres)
                if not np.array_equal(res, fres.astype(np.int32)):
                    raise AssertionError("bgemm disagrees with float matmul on %r" % ((n, m, k),))
            for t in threads:
                _core.set_num_threads(t)

                def f_float(t=t):
                    with threadpool_limits(t):
                        np.matmul(a, w.T, out=fres)

                def f_bnn():
                    bgemm(pa, pw, out=res)
                big = n * m * k >= 4096 ** 3
                tf, tb = interleave([f_float, f_bnn], max(3, rounds // 2) if big else rounds,
                                    settle=[BLAS_SETTLE_SECONDS if t > 1 else 0, 0])
                fm, bm = statistics.median(tf), statistics.median(tb)
                macs = float(n) * m * k
                # 1 thread: the pinned probe; more: what two processes reached
                peak = probe["single"] if t == 1 else (probe["pair"] or probe["single"])
                row = {"shape": (n, m, k), "threads": t, "float_median": fm,
                       "float_min": min(tf), "bnn_median": bm, "bnn_min": min(tb),
                       "gops": 2 * macs / bm / 1e9, "ratio": fm / bm,
                       "peak_fraction": macs / bm / peak}
                rows.append(row)
                out("%-16s %3d %9.3fms %9.3fms %9.3fms %9.3fms %9.1f %7.1fx %6.0f%%"
                    % ("%dx%dx%d" % (n, m, k), t, fm * 1e3, min(tf) * 1e3, bm * 1e3,
                       min(tb) * 1e3, row["gops"], row["ratio"], 100 * row["peak_fraction"]))
    finally:
        _core.set_num_threads(old_threads)
    return {"probe": probe, "rows": rows, "isa": active}


def bench_pack(rounds=5, out=print):
    """Packing throughput of the active kernels against the reference."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4096, 4096), dtype=np.float32)
    active = _core.isa()

    def with_isa(name):
        def f():
            _core.set_isa(name)
            pack(x)
        return f
    try:
        tr, ta = interleave([with_isa("ref"), with_isa(active)], rounds)
    finally:
        _core.set_isa(active)
    gb = x.nbytes / 1e9
    out("pack float32 4096x4096: ref %.1f GB/s, %s %.1f GB/s (x%.1f)"
        % (gb / statistics.median(tr), active, gb / statistics.median(ta),
           statistics.median(tr) / statistics.median(ta)))


def bench_isas(shape=(1024, 4096, 4096), rounds=5, out=print):
    """The same product on each available ISA, interleaved, one thread."""
    n, m, k = shape
    rng = np.random.default_rng(2)
    pa, pw = pack(_pm1(rng, (n, k))), pack(_pm1(rng, (m, k)))
    res = np.empty((n, m), dtype=np.int32)
    active = _core.isa()
    names = _core.available_isas()

    def with_isa(name):
        def f():
            _core.set_isa(name)
            bgemm(pa, pw, out=res)
        return f
    old = _core.get_num_threads()
    _core.set_num_threads(1)
    try:
        times = interleave([with_isa(nm) for nm in names], rounds)
    finally:
        _core.set_isa(active)
        _core.set_num_threads(old)
    meds = [statistics.median(t) for t in times]
    best = min(meds)
    out("per-ISA %dx%dx%d, 1 thread: " % shape + ", ".join(
        "%s %.2f ms (%.2fx best)" % (nm, md * 1e3, md / best) for nm, md in zip(names, meds)))


def bench_scaling(probe, shape=(1024, 4096, 4096), rounds=5, out=print):
    """bgemm on 1 and 2 threads, interleaved with nothing else in between,
    against the scaling two processes showed in the probe."""
    n, m, k = shape
    rng = np.random.default_rng(3)
    pa, pw = pack(_pm1(rng, (n, k))), pack(_pm1(rng, (m, k)))
    res = np.empty((n, m), dtype=np.int32)
    old = _core.get_num_threads()

    def on(t):
        def f():
            _core.set_num_threads(t)
            bgemm(pa, pw, out=res)
        return f
    try:
        t1, t2 = interleave([on(1), on(2)], rounds)
    finally:
        _core.set_num_threads(old)
    speedup = statistics.median(t1) / statistics.median(t2)
    line = "thread scaling %dx%dx%d: 1 thread %.2f ms, 2 threads %.2f ms, x%.2f" % (
        n, m, k, statistics.median(t1) * 1e3, statistics.median(t2) * 1e3, speedup)
    if probe.get("scaling"):
        line += " (two-process probe x%.2f: %.0f%% of it)" % (
            probe["scaling"], 100 * speedup / probe["scaling"])
    out(line)
    return speedup


def main_gemm(quick=False, threads=None, rounds=None, isa=None, shapes=None,
              probe_seconds=None, out=print):
    """`pybnn bench gemm`: the probe, the float comparison table, packing
    throughput and the per-ISA comparison (the last two only for the
    default shape lists)."""
    custom = shapes is not None
    shapes = shapes or (QUICK_SHAPES if quick else FULL_SHAPES)
    threads = threads or (1, 2)
    rounds = rounds or (3 if quick else 5)
    probe_seconds = probe_seconds or (0.3 if quick else 1.0)
    res = bench_gemm(shapes, threads=threads, rounds=rounds,
                     probe_seconds=probe_seconds, isa=isa, out=out)
    if not custom:
        if 2 in threads:
            res["thread_speedup"] = bench_scaling(res["probe"], rounds=rounds, out=out)
        bench_pack(rounds=rounds, out=out)
        bench_isas(rounds=rounds, out=out)
    return res
