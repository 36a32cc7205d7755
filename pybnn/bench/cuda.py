"""`pybnn bench cuda`: libbnn's GPU kernels against the float kernel of
the comparison (and cuBLAS where a build has it): the XNOR GEMM of both
kernels at n = m = k (8192 by default, the paper's size), with packing;
the binary convolutions of cifar10-vgg; MNIST MLP inference through the
model runner.  (A training step on the device is not measured: the layers
do not run their products on the device yet.)

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
    res["conv"] = _bench_vgg_convs(rounds, out)
    res["mlp_infer"] = _bench_mlp(rounds, out)
    return res


# The binary convolutions of cifar10-vgg (c_in, c_out, spatial size), batch 50.
_VGG_CONVS = ((128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8), (512, 512, 8))


def _bench_vgg_convs(rounds, out, batch=50):
    """The five binary 3x3 convolutions of cifar10-vgg on the device (the
    int32 epilogue), median ms each."""
    rng = np.random.default_rng(1)
    res = {}
    out("  cifar10-vgg binary convolutions, batch %d (3x3, zero padding):" % batch)
    for cin, cout, hw in _VGG_CONVS:
        x = cuda.to_device(rng.integers(0, 2 ** 63, (batch, hw, hw, cin // 64), dtype=np.uint64))
        w = cuda.to_device(rng.integers(0, 2 ** 63, (cout, 3, 3, cin // 64), dtype=np.uint64))
        o = cuda.empty((batch, hw, hw, cout), np.int32)
        sec = _time(lambda: cuda.bconv2d(x, w, cin, padding=1, out=o), rounds)
        ops = 2.0 * batch * hw * hw * cout * 9 * cin
        name = "%d->%d @%d" % (cin, cout, hw)
        res[name] = {"ms": 1e3 * sec, "tops": ops / sec / 1e12}
        out("    %-16s %8.3f ms  %8.1f TOPS" % (name, 1e3 * sec, ops / sec / 1e12))
    return res


def _bench_mlp(rounds, out, batch=10000):
    """MNIST MLP inference (784-4096x3-10, the 8-bit first layer) on the
    device through the model runner, from uint8 images already there."""
    from ..deploy import model_bytes
    from ..nn import BatchNorm, BinaryDense, Sequential, Sign
    rng = np.random.default_rng(2)
    layers, k = [], 784
    for _ in range(3):
        layers += [BinaryDense(k, 4096, rng=rng), BatchNorm(4096), Sign()]
        k = 4096
    layers += [BinaryDense(k, 10, rng=rng), BatchNorm(10)]
    model = cuda.Model(model_bytes(Sequential(layers).eval(), (28, 28, 1)))
    x = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    dx = cuda.to_device(x.reshape(batch, -1))
    sec = _time(lambda: model.predict(dx), rounds)
    out("  MNIST MLP 784-4096x3-10 inference, %d images on the device: %.2f ms (%.0f images/s)"
        % (batch, 1e3 * sec, batch / sec))
    return {"batch": batch, "ms": 1e3 * sec, "images_per_s": batch / sec}
