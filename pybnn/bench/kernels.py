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

from .. import _core
from ..ops import bgemm, pack

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


# ---------------------------------------------------------------------------
# pybnn bench conv
# ---------------------------------------------------------------------------

# The binary layers of the paper's CIFAR-10 network (C_in, C_out, H=W), 3x3, pad 1.
CIFAR_LAYERS = [(128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8), (512, 512, 8)]


def _im2col_conv(x_nhwc, w_ohwc, pad):
    """Plain numpy 3x3-style conv: pad, gather patches, one matmul."""
    n, h, w, c = x_nhwc.shape
    o, kh, kw, _ = w_ohwc.shape
    xp = np.pad(x_nhwc, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x_nhwc.dtype)
    for r in range(kh):
        for s in range(kw):
            cols[:, :, :, r, s, :] = xp[:, r:r + oh, s:s + ow, :]
    return cols.reshape(n * oh * ow, -1) @ w_ohwc.reshape(o, -1).T


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def bench_conv(rounds=5, quick=False, out=print):
    """Binary conv layers against single-thread float32 torch conv2d (and
    numpy im2col + matmul), interleaved in one process, one thread."""
    from threadpoolctl import threadpool_limits

    from ..ops import bconv2d, conv2d_correction, conv2d_u8
    torch = _torch()
    old_threads = _core.get_num_threads()
    _core.set_num_threads(1)
    active = _core.isa()
    out("pybnn %s, kernels: %s; 1 thread everywhere" % (_core.version_string(), active))
    if torch is None:
        out("torch is not installed (pip install 'pybnn[bench]'): numpy im2col is the only baseline")
    else:
        torch.set_num_threads(1)
        out("torch %s (float32, NCHW, 1 thread); numpy %s BLAS: %s"
            % (torch.__version__, np.__version__, blas_name()))
    probe = _probe_rate(active, 0.3)
    out("peak probe (%s): %.1f G binary MAC/s" % (active, probe / 1e9))
    rng = np.random.default_rng(0)
    cases = []
    batches = (1,) if quick else (1, 50)
    for nb in batches:
        for (ci, co, hw) in CIFAR_LAYERS:
            cases.append(("cifar %d->%d @%d" % (ci, co, hw), nb, ci, co, hw))
    cases.append(("3x3 256->256 @28", 1, 256, 256, 28))
    hdr = "%-22s %5s %10s %10s %10s %10s %8s %8s %7s %9s" % (
        "layer", "batch", "torch ms", "im2col ms", "bnn ms", "bnn+1 ms", "x torch",
        "GOPS", "% peak", "zero-pad")
    out(hdr)
    out("-" * len(hdr))
    rows = []
    try:
        for (name, nb, ci, co, hw) in cases:
            xf = _pm1(rng, (nb, hw, hw, ci))
            wf = _pm1(rng, (co, 3, 3, ci))
            px, pw = pack(xf), pack(wf)
            res = np.empty((nb, hw, hw, co), dtype=np.int32)
            fns, names = [], []
            if torch is not None:
                tx = torch.from_numpy(np.ascontiguousarray(xf.transpose(0, 3, 1, 2)))
                tw = torch.from_numpy(np.ascontiguousarray(wf.transpose(0, 3, 1, 2)))
                ref = torch.nn.functional.conv2d(tx, tw, padding=1).numpy().transpose(0, 2, 3, 1)
                bconv2d(px, pw, padding=1, out=res)
                if not np.array_equal(res, ref.astype(np.int32)):
                    raise AssertionError("bconv2d disagrees with torch on %s" % name)

                def f_torch(tx=tx, tw=tw):
                    with torch.no_grad():
                        torch.nn.functional.conv2d(tx, tw, padding=1)
                fns.append(f_torch)
                names.append("torch")
            do_numpy = nb == 1 or not quick

            def f_np(xf=xf, wf=wf):
                with threadpool_limits(1):
                    _im2col_conv(xf, wf, 1)
            if do_numpy:
                fns.append(f_np)
                names.append("numpy")
            corr = conv2d_correction(pw)  # once per layer, as a deployed model does
            fns.append(lambda: bconv2d(px, pw, padding=1, pad_value=0, out=res, correction=corr))
            names.append("bnn0")
            fns.append(lambda: bconv2d(px, pw, padding=1, pad_value=1, out=res))
            names.append("bnn1")
            times = dict(zip(names, (statistics.median(t) for t in
                                     interleave(fns, rounds if nb == 1 else max(3, rounds // 2)))))
            macs = float(nb) * hw * hw * co * ci * 9
            base = times.get("torch", times.get("numpy"))
            row = {"layer": name, "batch": nb, "torch": times.get("torch"),
                   "numpy": times.get("numpy"), "bnn": times["bnn0"], "bnn_pad1": times["bnn1"],
                   "ratio": base / times["bnn0"], "gops": 2 * macs / times["bnn0"] / 1e9,
                   "peak_fraction": macs / times["bnn0"] / probe,
                   "zero_pad_cost": times["bnn0"] / times["bnn1"] - 1}
            rows.append(row)
            fmt = lambda v: "%10.3f" % (v * 1e3) if v is not None else "%10s" % "-"
            out("%-22s %5d %s %s %s %s %7.1fx %8.0f %6.0f%% %+8.1f%%" % (
                name, nb, fmt(row["torch"]), fmt(row["numpy"]), fmt(row["bnn"]),
                fmt(row["bnn_pad1"]), row["ratio"], row["gops"], 100 * row["peak_fraction"],
                100 * row["zero_pad_cost"]))
        # the 8-bit first layer: 3 -> 128 at 32x32
        out("")
        out("first layer 3->128 @32, 3x3 pad 1 (uint8 input, +-1 weights):")
        for nb in batches:
            xu = rng.integers(0, 256, (nb, 32, 32, 3), dtype=np.uint8)
            wf = _pm1(rng, (128, 3, 3, 3))
            pw = pack(wf)
            fns, names = [], []
            if torch is not None:
                tx = torch.from_numpy(np.ascontiguousarray(
                    (xu.astype(np.float32) / 128 - 1).transpose(0, 3, 1, 2)))
                tw = torch.from_numpy(np.ascontiguousarray(wf.transpose(0, 3, 1, 2)))

                def f_torch(tx=tx, tw=tw):
                    with torch.no_grad():
                        torch.nn.functional.conv2d(tx, tw, padding=1)
                fns.append(f_torch)
                names.append("torch float")
                ref = torch.nn.functional.conv2d(tx, tw, padding=1).numpy().transpose(0, 2, 3, 1)
                got = conv2d_u8(xu, pw, padding=1)
                if not np.array_equal(got.astype(np.float64) / 128, ref.astype(np.float64)):
                    raise AssertionError("conv2d_u8 disagrees with float conv of x/128 - 1")
            for meth in ("bitplane", "direct"):
                fns.append(lambda meth=meth: conv2d_u8(xu, pw, padding=1, method=meth))
                names.append(meth)
            meds = [statistics.median(t) for t in interleave(fns, rounds)]
            base = meds[0]
            out("  batch %-3d " % nb + ", ".join("%s %.3f ms (x%.1f)" % (nm, md * 1e3, base / md)
                                               for nm, md in zip(names, meds)))
            rows.append({"layer": "first 3->128 @32", "batch": nb,
                         "times": dict(zip(names, meds))})
    finally:
        _core.set_num_threads(old_threads)
    return {"isa": active, "probe": probe, "rows": rows}


# ---- inference: the C model runtime against float networks -----------------

def _mlp_for_infer(width=4096, layers=3, seed=0):
    """An eval-mode 784-width x layers-10 BNN with non-trivial batch norm
    statistics (speed does not depend on training)."""
    from ..nn import BatchNorm
    from ..recipes import RECIPES, build_model
    cfg = dict(RECIPES["mnist-mlp"], width=width, layers=layers)
    model = build_model(cfg, (28, 28, 1), seed)
    rng = np.random.default_rng(seed + 1)
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            f = layer.features
            layer.gamma.value[...] = rng.uniform(0.5, 1.5, f)
            layer.beta.value[...] = rng.normal(0, 0.2, f)
            layer.running_mean[...] = rng.normal(0, 5, f)
            layer.running_invstd[...] = 1 / rng.uniform(10, 40, f)
    return model.eval()


def _float_mlp(model):
    """The same network in float32: (+-1 weights, BN scale, offset) per
    dense layer, and a numpy forward pass on uint8 images."""
    from ..nn import BatchNorm, BinaryDense
    dense = [l for l in model.layers if isinstance(l, BinaryDense)]
    bns = [l for l in model.layers if isinstance(l, BatchNorm)]
    params = []
    for d, b in zip(dense, bns):
        sc, off = b.affine()
        params.append((np.where(d.W.value < 0, -1.0, 1.0).astype(np.float32).T.copy(),
                       sc.astype(np.float32), off.astype(np.float32)))

    def forward(x_u8):
        h = x_u8.reshape(len(x_u8), -1).astype(np.float32) * np.float32(1 / 128) - 1
        for i, (w, sc, off) in enumerate(params):
            h = h @ w * sc + off
            if i + 1 < len(params):
                h = np.where(h < 0, np.float32(-1), np.float32(1))
        return h
    return params, forward


def bench_infer(rounds=7, width=4096, model_path=None, out=print):
    """`pybnn bench infer`: batch 1 and 100 through the C runtime, numpy
    float32 and torch float32 (when installed), one thread, interleaved."""
    from threadpoolctl import threadpool_limits
    from ..deploy import model_bytes
    from ..deploy import load
    if model_path:
        with open(model_path, "rb") as f:
            data = f.read()
        model = None
    else:
        model = _mlp_for_infer(width=width)
        data = model_bytes(model, (28, 28, 1))
    rt = load(data)
    h, w, c = rt.input_shape
    torch = _torch()
    results = dict(isa=_core.isa(), blas=blas_name(), rows=[])
    out("inference, 1 thread, kernels %s, %s; model %s" % (_core.isa(), blas_name(), rt))
    prev = _core.get_num_threads()
    _core.set_num_threads(1)
    try:
        with threadpool_limits(1):
            tthreads = None
            if torch is not None:
                tthreads = torch.get_num_threads()
                torch.set_num_threads(1)
            rng = np.random.default_rng(3)
            fwd = params = None
            if model is not None:
                params, fwd = _float_mlp(model)
            for batch in (1, 100):
                x = rng.integers(0, 256, (batch, h, w, c), dtype=np.uint8)
                xf = np.ascontiguousarray(x.reshape(batch, -1))
                scores = np.empty((batch, rt.classes), np.float32)
                classes = np.empty(batch, np.int32)
                fns, names = [lambda: rt._model.run(xf, scores, classes)], ["libbnn runtime"]
                if fwd is not None:
                    fns.append(lambda: fwd(x))
                    names.append("numpy float32")
                    if torch is not None:
                        tw = [(torch.from_numpy(p[0]), torch.from_numpy(p[1]), torch.from_numpy(p[2]))
                              for p in params]

                        def tfwd(x=x, tw=tw):
                            with torch.no_grad():
                                hh = torch.from_numpy(x.reshape(len(x), -1)).float() / 128 - 1
                                for i, (wt, sc, off) in enumerate(tw):
                                    hh = torch.addcmul(off, hh @ wt, sc)
                                    if i + 1 < len(tw):
                                        hh = torch.where(hh < 0, -1.0, 1.0)
                                return hh
                        fns.append(tfwd)
                        names.append("torch float32")
                times = interleave(fns, rounds)
                med = [statistics.median(t) for t in times]
                row = dict(batch=batch, **{n: m for n, m in zip(names, med)})
                results["rows"].append(row)
                line = "batch %3d: " % batch + ", ".join(
                    "%s %.3f ms" % (n, 1e3 * m) for n, m in zip(names, med))
                if len(med) > 1:
                    line += " | runtime vs " + ", ".join(
                        "%s %.1fx" % (n.split()[0], m / med[0]) for n, m in zip(names[1:], med[1:]))
                out(line)
            if torch is not None and tthreads:
                torch.set_num_threads(tthreads)
    finally:
        _core.set_num_threads(prev)
    # file size against float32 weights and against what it must hold: one
    # bit per binary weight, 5 bytes per threshold (int32 + flip), 8 per
    # score (scale + offset)
    records = rt.layers()
    content = 64 + 64 * len(records)
    nweights = 0
    for r in records:
        if r["type"] in ("dense", "conv"):
            p = r["named"]
            n_out = p["m"] if r["type"] == "dense" else p["o"]
            k = p["k"] if r["type"] == "dense" else p["kh"] * p["kw"] * p["c"]
            nweights += n_out * k
            content += n_out * k / 8 + n_out * (8 if "scores" in r["flags"] else 5)
    fb = rt.info["file_bytes"]
    out("file: %d bytes = %.3f x (one bit per binary weight + thresholds + float scores: "
        "%.0f bytes); float32 weights: %d bytes (%.1fx larger)"
        % (fb, fb / content, content, 4 * nweights, 4 * nweights / fb))
    results.update(file_bytes=fb, content_bytes=content, float32_bytes=4 * nweights)
    return results
