"""`pybnn bench cuda`: libbnn's GPU kernels against the float kernel of
the comparison (and cuBLAS where a build has it): the XNOR GEMM of both
kernels at n = m = k (8192 by default, the paper's size), with packing.

Each figure is the median wall time of `rounds` launches, each followed by
a synchronize (so launch overhead counts, as in a real step), after one
warm-up launch.  Needs a CUDA build (BNN_CUDA=1 pip install .) and a
device; otherwise it says why and returns.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from .. import cuda


def _time(fn, rounds):
    fn()
    cuda.synchronize()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_cuda(size=8192, rounds=5, out=print):
    """Times the XNOR GEMM (simt and tensor kernels) and the float GEMM at
    size^3 on device 0; returns the figures (ms, TOPS) or, without a
    device, a dict with the reason."""
    if not cuda.available():
        out("pybnn bench cuda: no usable CUDA device: %s" % cuda.why())
        return {"available": False, "why": cuda.why()}
    n = m = k = int(size)
    rng = np.random.default_rng(0)
    a = cuda.to_device(rng.standard_normal((n, k)).astype(np.float32))
    w = cuda.to_device(rng.standard_normal((m, k)).astype(np.float32))
    res = {"available": True, "device": cuda.why(), "size": n, "rounds": rounds}
    out("%s; %d x %d x %d, median of %d launches" % (cuda.why(), n, m, k, rounds))
    res["pack_ms"] = 1e3 * _time(lambda: cuda.pack(a), rounds)
    ab, wb = cuda.pack(a), cuda.pack(w)
    c_i32 = cuda.empty((n, m), np.int32)
    c_f32 = cuda.empty((n, m), np.float32)
    ops = 2.0 * n * m * k
    rows = []
    for name, fn in (("xnor gemm, CUDA cores (simt)",
                      lambda: cuda.bgemm(ab, wb, k, kernel="simt", out=c_i32)),
                     ("xnor gemm, tensor cores (mma .b1)",
                      lambda: cuda.bgemm(ab, wb, k, kernel="tensor", out=c_i32)),
                     ("float gemm, tiled CUDA-core kernel",
                      lambda: cuda.sgemm(a, w, out=c_f32))):
        try:
            sec = _time(fn, rounds)
        except cuda.BnnDeviceError as e:
            out("  %-36s failed: %s" % (name, e))
            continue
        except Exception as e:   # the tensor kernel on a device without it
            out("  %-36s not run: %s" % (name, e))
            continue
        rows.append((name, sec))
        res[name] = {"ms": 1e3 * sec, "tops": ops / sec / 1e12}
    base = dict(rows).get("float gemm, tiled CUDA-core kernel")
    for name, sec in rows:
        ratio = " %6.1fx the float kernel" % (base / sec) if base else ""
        out("  %-36s %9.2f ms  %8.1f TOPS%s" % (name, 1e3 * sec, ops / sec / 1e12, ratio))
    out("  packing %d x %d floats: %.2f ms" % (n, k, res["pack_ms"]))
    out("  cuBLAS: not in this build (the comparison is built only where CMake finds cuBLAS)")
    return res
