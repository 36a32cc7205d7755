"""`pybnn bench cuda`: libbnn's GPU kernels against the float kernel of
the comparison (and cuBLAS where a build has it): the XNOR GEMM of both
kernels at n = m = k (8192 by default, the paper's size), with packing;
the binary convolutions of cifar10-vgg; MNIST MLP inference through the
model runner; and one training step of a hidden MLP layer (binary dense,
batch norm, sign) composed of the device kernels (MlpLayerStep), which
the Python layers do not call yet.

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
    res["train_step"] = _bench_train_step(rounds, out)
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


class MlpLayerStep:
    """One training step of a hidden layer of the paper's MLP -- binary
    dense (k -> m, weights held as floats and as their sign bits), batch
    norm, sign -- on the device, composed of libbnn's kernels:

    forward:  z = bgemm(x bits, W bits) (float epilogue), y = batch norm
              of z with batch statistics (running statistics updated), sign of y ->
              the next layer's input bits and the straight-through mask;
    backward: from the gradient g at the sign's output: STE mask, batch
              norm backward, the input gradient g . W+-1 and the weight
              gradient g^T . x+-1 (gemm_pm1, float);
    update:   Adam on W with the new sign bits packed in the same pass
              (opt_step pack=True), Adam on gamma and beta.

    Every buffer is a device array the caller gives (``buffers``, shapes in
    ``shapes()``), so the step allocates nothing; each kernel equals its
    CPU twin.  ``allocate`` makes them on the device."""

    def __init__(self, batch, k, m, buffers):
        self.batch, self.k, self.m = self.check_sizes(batch, k, m)
        missing = sorted(set(self.shapes(batch, k, m)) - set(buffers))
        if missing:
            raise ValueError("MlpLayerStep: buffers lacks %s" % ", ".join(missing))
        for name, (shape, dtype) in self.shapes(batch, k, m).items():
            cuda._same(buffers[name], name, shape, dtype)
        self.b = dict(buffers)

    @staticmethod
    def check_sizes(batch, k, m):
        out = []
        for name, v in (("batch", batch), ("k", k), ("m", m)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError("MlpLayerStep: %s must be a positive integer, got %r"
                                 % (name, v))
            out.append(int(v))
        return tuple(out)

    @classmethod
    def shapes(cls, batch, k, m):
        """{name: (shape, dtype)} of every device buffer of the step."""
        batch, k, m = cls.check_sizes(batch, k, m)
        f, u = np.float32, np.uint64
        kw, mw = cuda._core.words(k), cuda._core.words(m)
        return {"x": ((batch, kw), u), "w": ((m, k), f), "w_bits": ((m, kw), u),
                "w_m": ((m, k), f), "w_v": ((m, k), f), "gw": ((m, k), f),
                "gamma": ((m,), f), "beta": ((m,), f), "g_m": ((m,), f), "g_v": ((m,), f),
                "b_m": ((m,), f), "b_v": ((m,), f), "running_mean": ((m,), f),
                "running_invstd": ((m,), f), "mean": ((m,), f), "scale": ((m,), f),
                "dgamma": ((m,), f), "dbeta": ((m,), f), "z": ((batch, m), f),
                "y": ((batch, m), f), "signs": ((batch, mw), u), "mask": ((batch, mw), u),
                "g": ((batch, m), f), "gx": ((batch, k), f)}

    @classmethod
    def allocate(cls, batch, k, m, rng=None):
        """The step with its buffers on the device: random +-1 input bits,
        uniform weights and their sign bits, a random incoming gradient,
        gamma 1, beta 0, zero moments, running invstd 1."""
        rng = np.random.default_rng(0) if rng is None else rng
        bufs = {}
        for name, (shape, dtype) in cls.shapes(batch, k, m).items():
            if name in ("x", "w_bits"):
                host = rng.integers(0, 2 ** 63, shape, dtype=np.uint64)
            elif name == "w":
                host = rng.uniform(-1, 1, shape).astype(np.float32)
            elif name in ("gamma", "running_invstd"):
                host = np.ones(shape, dtype)
            elif name == "g":
                host = rng.standard_normal(shape).astype(np.float32)
            else:
                host = np.zeros(shape, dtype)
            bufs[name] = cuda.to_device(host)
        if k % 64:     # pad bits 0, as the bit contract wants
            x = rng.standard_normal((batch, k)).astype(np.float32)
            bufs["x"] = cuda.pack(cuda.to_device(x))
        cuda.pack(bufs["w"], out=bufs["w_bits"])
        return cls(batch, k, m, bufs)

    def step(self, t, lr=1e-3, stream=0):
        """Forward, backward and update for step t (1-based); the incoming
        gradient is the buffer "g" (overwritten by the STE's output)."""
        b, k = self.b, self.k
        cuda.bgemm(b["x"], b["w_bits"], k, "float", out=b["z"], stream=stream)
        cuda.batchnorm_forward(b["z"], b["gamma"], b["beta"], 1e-4, 0.1, b["running_mean"],
                               b["running_invstd"], y=b["y"], save_mean=b["mean"],
                               save_scale=b["scale"], stream=stream)
        cuda.sign_forward(b["y"], signs=b["signs"], mask=b["mask"], stream=stream)
        cuda.ste_backward(b["mask"], b["g"], out=b["g"], stream=stream)
        cuda.batchnorm_backward(b["z"], b["gamma"], b["mean"], b["scale"], b["g"], dx=b["g"],
                                dgamma=b["dgamma"], dbeta=b["dbeta"], stream=stream)
        cuda.gemm_pm1(b["g"], b["w_bits"], k, out=b["gx"], stream=stream)
        cuda.gemm_pm1(b["g"], b["x"], k, transpose_a=True, out=b["gw"], stream=stream)
        cuda.opt_step("adam", b["w"], b["gw"], b["w_m"], b["w_v"], t, lr, clip=1.0, pack=True,
                      signs=b["w_bits"], stream=stream)
        cuda.opt_step("adam", b["gamma"], b["dgamma"], b["g_m"], b["g_v"], t, lr, stream=stream)
        cuda.opt_step("adam", b["beta"], b["dbeta"], b["b_m"], b["b_v"], t, lr, stream=stream)


def _bench_train_step(rounds, out, batch=100, k=4096, m=4096):
    """One training step of a 4096 -> 4096 hidden layer of the MNIST MLP,
    batch 100 (the paper's), every part on the device."""
    layer = MlpLayerStep.allocate(batch, k, m)
    counter = [0]

    def run():
        counter[0] += 1
        layer.step(counter[0])
    sec = _time(run, rounds)
    out("  MLP hidden layer %d->%d training step (bgemm, batch norm, sign, STE, products, "
        "Adam + pack), batch %d: %.3f ms" % (k, m, batch, 1e3 * sec))
    return {"batch": batch, "k": k, "m": m, "ms": 1e3 * sec}
