"""pybnn.cuda: importable and honest without a GPU (available() False with
the reason, clear errors, argument checks on the host side, pycuda
GPUArray interop by its attributes); on a GPU, the kernels equal the CPU
functions bit for bit (those tests skip, saying why, without one)."""
import numpy as np
import pytest

import pybnn
from pybnn import _core, cuda

HAVE_GPU = cuda.available()
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no usable CUDA device: %s" % cuda.why())


class FakeGPUArray:
    """What pybnn.cuda reads of a pycuda GPUArray: gpudata (an int-like
    device pointer), shape, dtype and flags."""

    class _Flags:
        def __init__(self, c):
            self.c_contiguous = c

    def __init__(self, shape, dtype, ptr=0x1000, contiguous=True):
        self.gpudata = ptr
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.flags = self._Flags(contiguous)


def test_import_and_availability_say_why():
    ok, n, reason = _core.cuda_available()
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    assert cuda.available() is ok and cuda.why() == reason
    if not ok:
        assert n == 0


@pytest.mark.skipif(HAVE_GPU, reason="a device is usable here")
def test_without_a_device_calls_raise_the_reason():
    with pytest.raises(cuda.BnnDeviceError, match="no usable CUDA device"):
        cuda.to_device(np.zeros(3, np.float32))
    with pytest.raises(cuda.BnnDeviceError, match="no usable CUDA device"):
        cuda.empty((2, 2), np.float32)
    # the library entry points refuse too: unsupported build or no driver
    with pytest.raises(pybnn.BnnError):
        _core.cuda_malloc(64)
    with pytest.raises(pybnn.BnnError):
        _core.cuda_synchronize()


def test_arrays_are_checked_before_any_device_call():
    a = FakeGPUArray((4, 2), np.uint64)
    w = FakeGPUArray((3, 2), np.uint64)
    with pytest.raises(TypeError, match="host memory.*to_device"):
        cuda.bgemm(np.zeros((4, 2), np.uint64), w, 100)
    with pytest.raises(TypeError, match="DeviceArray or a pycuda GPUArray"):
        cuda.bgemm([1, 2], w, 100)
    with pytest.raises(TypeError, match="a must be uint64"):
        cuda.bgemm(FakeGPUArray((4, 2), np.int64), w, 100)
    with pytest.raises(ValueError, match="words\\(k\\) = 3"):
        cuda.bgemm(a, w, 130)
    with pytest.raises(ValueError, match="k must be >= 0"):
        cuda.bgemm(a, w, -1)
    with pytest.raises(ValueError, match="epilogue must be one of"):
        cuda.bgemm(a, w, 100, epilogue="relu")
    with pytest.raises(ValueError, match="kernel must be one of"):
        cuda.bgemm(a, w, 100, kernel="fast")
    with pytest.raises(ValueError, match="the bits epilogue needs thresh"):
        cuda.bgemm(a, w, 100, epilogue="bits")
    with pytest.raises(ValueError, match="scale applies to the float epilogue"):
        cuda.bgemm(a, w, 100, scale=FakeGPUArray((3,), np.float32))
    with pytest.raises(ValueError, match="thresh must have shape \\(3,\\)"):
        cuda.bgemm(a, w, 100, epilogue="bits", thresh=FakeGPUArray((4,), np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        cuda.pack(FakeGPUArray((4, 100), np.float32, contiguous=False))
    with pytest.raises(ValueError, match="out must have shape \\(4, 3\\)"):
        cuda.bgemm(a, w, 100, out=FakeGPUArray((4, 4), np.int32))


@pytest.mark.skipif(HAVE_GPU, reason="a device is usable here")
def test_gpuarray_pointers_reach_libbnn():
    """A GPUArray-like object's pointer and strides are what the entry point
    receives: with valid shapes the call gets to libbnn, which refuses (no
    CUDA in this build, or no driver) instead of Python guessing."""
    a = FakeGPUArray((4, 2), np.uint64)
    w = FakeGPUArray((3, 2), np.uint64)
    out = FakeGPUArray((4, 3), np.int32)
    with pytest.raises(pybnn.BnnError) as e:
        cuda.bgemm(a, w, 100, out=out)
    assert e.value.status in (_core.ERR_UNSUPPORTED, _core.ERR_DEVICE)
    x = FakeGPUArray((4, 100), np.float32)
    with pytest.raises(pybnn.BnnError):
        cuda.pack(x, out=FakeGPUArray((4, 2), np.uint64))


@needs_gpu
def test_roundtrip_and_pack_equal_the_cpu():
    rng = np.random.default_rng(0)
    for k in (1, 63, 64, 65, 1000):
        x = rng.standard_normal((37, k)).astype(np.float32)
        x[0, 0] = -0.0
        d = cuda.to_device(x)
        assert np.array_equal(cuda.to_host(d), x)
        got = cuda.to_host(cuda.pack(d))
        assert np.array_equal(got, pybnn.pack(x).words)


@needs_gpu
@pytest.mark.parametrize("kernel", ["simt", "tensor", "auto"])
def test_bgemm_equals_the_cpu(kernel):
    rng = np.random.default_rng(1)
    for n, m, k in ((1, 1, 1), (65, 63, 65), (70, 130, 513)):
        a = pybnn.pack(rng.standard_normal((n, k)).astype(np.float32))
        w = pybnn.pack(rng.standard_normal((m, k)).astype(np.float32))
        da, dw = cuda.to_device(a.words), cuda.to_device(w.words)
        assert np.array_equal(cuda.to_host(cuda.bgemm(da, dw, k, kernel=kernel)), pybnn.bgemm(a, w))
        scale = rng.standard_normal(m).astype(np.float32)
        offset = rng.standard_normal(m).astype(np.float32)
        got = cuda.bgemm(da, dw, k, "float", scale=cuda.to_device(scale),
                         offset=cuda.to_device(offset), kernel=kernel)
        want = pybnn.bgemm_affine(a, w, scale, offset)
        assert np.array_equal(cuda.to_host(got).view(np.uint32), want.view(np.uint32))
        thresh = rng.integers(-k, k + 1, m).astype(np.int32)
        flip = rng.integers(0, 2, m).astype(np.uint8)
        got = cuda.bgemm(da, dw, k, "bits", thresh=cuda.to_device(thresh),
                         flip=cuda.to_device(flip), kernel=kernel)
        assert np.array_equal(cuda.to_host(got), pybnn.bgemm_threshold(a, w, thresh, flip).words)


def test_conv_and_pool_arguments_are_checked_on_the_host():
    x = FakeGPUArray((2, 8, 8, 2), np.uint64)
    w = FakeGPUArray((5, 3, 3, 2), np.uint64)
    with pytest.raises(ValueError, match="words\\(c\\) = 1"):
        cuda.bconv2d(x, w, 64)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        cuda.bconv2d(FakeGPUArray((8, 8, 2), np.uint64), w, 100)
    with pytest.raises(pybnn.BnnValueError):          # the CPU's geometry check
        cuda.bconv2d(x, w, 100, stride=0)
    with pytest.raises(ValueError, match="out must have shape \\(2, 6, 6, 5\\)"):
        cuda.bconv2d(x, w, 100, out=FakeGPUArray((2, 8, 8, 5), np.int32))
    with pytest.raises(ValueError, match="flip must have shape \\(100,\\)"):
        cuda.maxpool2d(x, 100, 2, flip=FakeGPUArray((99,), np.uint8))
    with pytest.raises(ValueError, match="out must have shape \\(2, 4, 4, 2\\)"):
        cuda.maxpool2d(x, 100, 2, out=FakeGPUArray((2, 8, 8, 2), np.uint64))


@needs_gpu
@pytest.mark.parametrize("pad_value", [0, 1])
def test_conv_and_pool_equal_the_cpu(pad_value):
    rng = np.random.default_rng(2)
    x = pybnn.pack(rng.standard_normal((2, 9, 7, 130)).astype(np.float32))
    w = pybnn.pack(rng.standard_normal((70, 3, 3, 130)).astype(np.float32))
    dx, dw = cuda.to_device(x.words), cuda.to_device(w.words)
    for stride, padding, dilation in ((1, 1, 1), (2, (0, 2, 1, 0), 1), (1, 2, 2)):
        want = pybnn.bconv2d(x, w, stride=stride, padding=padding, dilation=dilation,
                             pad_value=pad_value)
        got = cuda.bconv2d(dx, dw, 130, stride=stride, padding=padding, dilation=dilation,
                           pad_value=pad_value)
        assert np.array_equal(cuda.to_host(got), want)
    flip = rng.integers(0, 2, 130).astype(np.uint8)
    want = pybnn.maxpool2d(x, 2, flip=flip)
    got = cuda.maxpool2d(dx, 130, 2, flip=cuda.to_device(flip))
    assert np.array_equal(cuda.to_host(got), want.words)


def test_training_products_check_their_arguments():
    s = FakeGPUArray((10, 2), np.uint64)
    with pytest.raises(ValueError, match="words\\(k\\) = 1"):
        cuda.gemm_pm1(FakeGPUArray((4, 10), np.float32), s, 64)
    with pytest.raises(ValueError, match="a has 9 columns along J, s has 10 rows"):
        cuda.gemm_pm1(FakeGPUArray((4, 9), np.float32), s, 100)
    with pytest.raises(TypeError, match="float32 or int8"):
        cuda.gemm_pm1(FakeGPUArray((4, 10), np.float64), s, 100)
    with pytest.raises(ValueError, match="accumulate needs out"):
        cuda.gemm_pm1(FakeGPUArray((4, 10), np.float32), s, 100, accumulate=True)
    with pytest.raises(ValueError, match="no accumulate"):
        cuda.gemm_pm1(FakeGPUArray((4, 10), np.int8), s, 100, transpose_a=True)


@needs_gpu
def test_training_products_equal_the_cpu():
    rng = np.random.default_rng(3)
    I, J, K = 37, 300, 130
    s = pybnn.pack(rng.standard_normal((J, K)).astype(np.float32))
    ds = cuda.to_device(s.words)
    a = rng.standard_normal((I, J)).astype(np.float32)
    want = np.zeros((I, K), np.float32)
    _core.gemm_f32_pm1(a, s.words, K, want)
    assert np.array_equal(cuda.to_host(cuda.gemm_pm1(cuda.to_device(a), ds, K)), want)
    at = np.ascontiguousarray(a.T)                       # [J, I]: the weight gradient's form
    want_t = np.zeros((I, K), np.float32)
    _core.gemm_f32_pm1(at, s.words, K, want_t, transpose_a=True)
    assert np.array_equal(cuda.to_host(cuda.gemm_pm1(cuda.to_device(at), ds, K,
                                                     transpose_a=True)), want_t)
    q = rng.integers(-127, 128, (I, J)).astype(np.int8)
    want_q = np.zeros((I, K), np.int32)
    _core.gemm_i8_pm1(q, s.words, K, want_q)
    assert np.array_equal(cuda.to_host(cuda.gemm_pm1(cuda.to_device(q), ds, K)), want_q)


@pytest.mark.skipif(HAVE_GPU, reason="a device is usable here")
def test_model_without_a_device_says_why(tmp_path):
    from pybnn.deploy import model_bytes
    from pybnn.nn import BatchNorm, BinaryDense, Sequential, Sign
    net = Sequential([BinaryDense(16, 8, rng=np.random.default_rng(0)), BatchNorm(8), Sign(),
                      BinaryDense(8, 3, rng=np.random.default_rng(1)), BatchNorm(3)])
    data = model_bytes(net.eval(), (4, 4, 1))
    with pytest.raises(cuda.BnnDeviceError, match="no usable CUDA device"):
        cuda.Model(data)


@needs_gpu
def test_model_runs_like_the_cpu_runtime():
    from pybnn.deploy import load, model_bytes
    from pybnn.nn import BatchNorm, BinaryConv2d, BinaryDense, Flatten, MaxPool2d, Sequential, Sign
    rng = np.random.default_rng(4)
    net = Sequential([BinaryConv2d(3, 70, 3, padding=1, binary=True, rng=rng), MaxPool2d(2),
                      BatchNorm(70), Sign(), BinaryConv2d(70, 20, 3, padding=1, rng=rng),
                      BatchNorm(20), Sign(), Flatten(), BinaryDense(4 * 4 * 20, 10, rng=rng),
                      BatchNorm(10)])
    net.train()
    net.forward(rng.integers(0, 256, (8, 8, 8, 3)).astype(np.uint8))   # batch statistics
    data = model_bytes(net.eval(), (8, 8, 3))
    x = rng.integers(0, 256, (33, 8, 8, 3)).astype(np.uint8)
    want_s, want_c = load(data).predict(x)
    got_s, got_c = cuda.Model(data).predict(x)
    assert np.array_equal(got_s.view(np.uint32), want_s.view(np.uint32))
    assert np.array_equal(got_c, want_c)


# --- the training step's elementwise and per-feature kernels ---------------

CUDA_BUILD = "built without CUDA" not in cuda.why()


def test_training_step_kernels_check_their_arguments_on_the_host():
    f = lambda *shape: FakeGPUArray(shape, np.float32)      # noqa: E731
    u = lambda *shape: FakeGPUArray(shape, np.uint64)       # noqa: E731
    with pytest.raises(ValueError, match="grad must have shape \\(4, 100\\)"):
        cuda.opt_step("adam", f(4, 100), f(4, 99), f(4, 100), f(4, 100), 1, 1e-3)
    with pytest.raises(TypeError, match="param must be float32"):
        cuda.opt_step("adam", FakeGPUArray((4,), np.float64), f(4), f(4), f(4), 1, 1e-3)
    with pytest.raises(ValueError, match="pack needs param of 2 dimensions"):
        cuda.opt_step("adam", f(4), f(4), f(4), f(4), 1, 1e-3, pack=True)
    with pytest.raises(ValueError, match="signs must have shape \\(4, 2\\)"):
        cuda.opt_step("adam", f(4, 100), f(4, 100), f(4, 100), f(4, 100), 1, 1e-3, pack=True,
                      signs=u(4, 1))
    with pytest.raises(ValueError, match="signs needs pack=True"):
        cuda.opt_step("adam", f(4), f(4), f(4), f(4), 1, 1e-3, signs=u(4, 1))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        cuda.opt_step("sgd", f(4), f(4), f(4), f(4), 1, 1e-3)
    with pytest.raises(ValueError, match="beta must have shape \\(7,\\)"):
        cuda.batchnorm_forward(f(3, 7), f(7), f(6))
    with pytest.raises(ValueError, match="running_invstd must have shape \\(7,\\)"):
        cuda.batchnorm_forward(f(3, 7), f(7), f(7), running_invstd=f(3))
    with pytest.raises(ValueError, match="bn kind must be one of"):
        cuda.batchnorm_forward(f(3, 7), f(7), f(7), kind="group", y=f(3, 7), save_mean=f(7),
                               save_scale=f(7))
    with pytest.raises(ValueError, match="dy must have shape \\(3, 7\\)"):
        cuda.batchnorm_backward(f(3, 7), f(7), f(7), f(7), f(7, 3))
    with pytest.raises(ValueError, match="mask must have shape \\(3, 2\\)"):
        cuda.sign_forward(f(3, 65), signs=u(3, 2), mask=u(3, 1))
    with pytest.raises(ValueError, match="mask must have shape \\(3, 1\\)"):
        cuda.ste_backward(u(3, 2), f(3, 64))
    with pytest.raises(TypeError, match="labels must be int32"):
        cuda.squared_hinge_grad(f(5, 10), FakeGPUArray((5,), np.int64))
    with pytest.raises(ValueError, match="out must have shape \\(5, 10\\)"):
        cuda.squared_hinge_grad(f(5, 10), FakeGPUArray((5,), np.int32), out=f(10, 5))


@pytest.mark.skipif(HAVE_GPU, reason="a device is usable here")
def test_training_step_kernels_reach_libbnn():
    """With every array given, each call gets to its libbnn entry point,
    which refuses without a device (or a CUDA build) -- and, in a CUDA build,
    with the CPU twin's status for arguments the CPU would refuse."""
    f = lambda *shape: FakeGPUArray(shape, np.float32)      # noqa: E731
    u = lambda *shape: FakeGPUArray(shape, np.uint64)       # noqa: E731
    calls = [
        lambda: cuda.opt_step("adam", f(4), f(4), f(4), f(4), 1, 1e-3),
        lambda: cuda.opt_step("shift_adamax", f(4, 100), f(4, 100), f(4, 100), f(4, 100), 1,
                              1e-3, pack=True, signs=u(4, 2)),
        lambda: cuda.batchnorm_forward(f(3, 7), f(7), f(7), running_mean=f(7), y=f(3, 7),
                                       save_mean=f(7), save_scale=f(7)),
        lambda: cuda.batchnorm_backward(f(3, 7), f(7), f(7), f(7), f(3, 7), kind="shift",
                                        dx=f(3, 7), dgamma=f(7), dbeta=f(7)),
        lambda: cuda.sign_forward(f(3, 65), signs=u(3, 2), mask=u(3, 2)),
        lambda: cuda.ste_backward(u(3, 2), f(3, 65), out=f(3, 65)),
        lambda: cuda.squared_hinge_grad(f(5, 10), FakeGPUArray((5,), np.int32), out=f(5, 10)),
    ]
    for call in calls:
        with pytest.raises(pybnn.BnnError) as e:
            call()
        assert e.value.status in (_core.ERR_UNSUPPORTED, _core.ERR_DEVICE)
    if CUDA_BUILD:      # the CPU's argument checks come first
        with pytest.raises(pybnn.BnnValueError, match="status"):
            cuda.opt_step("adam", f(4), f(4), f(4), f(4), 0, 1e-3)       # t < 1
        with pytest.raises(pybnn.BnnValueError, match="status"):
            cuda.batchnorm_forward(f(3, 7), f(7), f(7), eps=0.0, y=f(3, 7), save_mean=f(7),
                                   save_scale=f(7))
        with pytest.raises(pybnn.BnnValueError, match="status"):
            cuda.batchnorm_forward(f(0, 7), f(7), f(7), y=f(0, 7), save_mean=f(7),
                                   save_scale=f(7))                     # n < 1


@needs_gpu
@pytest.mark.parametrize("kind", ["adam", "adamax", "shift_adamax"])
def test_opt_step_equals_the_cpu(kind):
    rng = np.random.default_rng(5)
    rows, k = 37, 300
    p, g = rng.standard_normal((2, rows, k)).astype(np.float32)
    m = (rng.standard_normal((rows, k)) * 1e-3).astype(np.float32)
    v = (rng.random((rows, k)) * 1e-4).astype(np.float32)
    dp, dg, dm, dv = (cuda.to_device(a) for a in (p, g, m, v))
    hp = dict(t=3, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, lr_scale=1.5, clip=1.0)
    signs = np.zeros((rows, _core.words(k)), np.uint64)
    _core.opt_step_pack(kind, p, g, m, v, signs, **hp)
    dsigns = cuda.opt_step(kind, dp, dg, dm, dv, pack=True, **hp)
    for got, want in ((dp, p), (dm, m), (dv, v)):
        assert np.array_equal(cuda.to_host(got).view(np.uint32), want.view(np.uint32))
    assert np.array_equal(cuda.to_host(dsigns), signs)


@needs_gpu
@pytest.mark.parametrize("kind", ["standard", "shift"])
def test_batchnorm_equals_the_cpu(kind):
    rng = np.random.default_rng(6)
    n, c = 33, 130
    x = (rng.standard_normal((n, c)) * 3 + 1).astype(np.float32)
    gamma, beta = rng.standard_normal((2, c)).astype(np.float32)
    rm, ri = np.zeros(c, np.float32), np.ones(c, np.float32)
    y, sm, ss = np.empty_like(x), np.empty(c, np.float32), np.empty(c, np.float32)
    drm, dri = cuda.to_device(rm), cuda.to_device(ri)
    _core.bn_forward_train(kind, x, gamma, beta, 1e-4, 0.1, rm, ri, y, sm, ss)
    dx_ = cuda.to_device(x)
    dy_, dsm, dss = cuda.batchnorm_forward(dx_, cuda.to_device(gamma), cuda.to_device(beta),
                                           1e-4, 0.1, drm, dri, kind=kind)
    for got, want in ((dy_, y), (dsm, sm), (dss, ss), (drm, rm), (dri, ri)):
        assert np.array_equal(cuda.to_host(got).view(np.uint32), want.view(np.uint32))
    dy = rng.standard_normal((n, c)).astype(np.float32)
    dx, dgm, dbt = np.empty_like(x), np.empty(c, np.float32), np.empty(c, np.float32)
    _core.bn_backward(kind, x, gamma, sm, ss, dy, dx, dgm, dbt)
    got = cuda.batchnorm_backward(dx_, cuda.to_device(gamma), dsm, dss, cuda.to_device(dy),
                                  kind=kind)
    for g_, want in zip(got, (dx, dgm, dbt)):
        assert np.array_equal(cuda.to_host(g_).view(np.uint32), want.view(np.uint32))


@needs_gpu
def test_sign_ste_and_hinge_equal_the_cpu():
    from pybnn.losses import squared_hinge
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((37, 130)) * 1.5).astype(np.float32)
    x[0, :4] = (1.0, -1.0, np.nextafter(np.float32(1), np.float32(2)), -0.0)
    signs, mask = cuda.sign_forward(cuda.to_device(x))
    want_mask = np.zeros((37, 3), np.uint64)
    _core.ste_mask_pack(x, want_mask)
    assert np.array_equal(cuda.to_host(signs), pybnn.pack(x).words)
    assert np.array_equal(cuda.to_host(mask), want_mask)
    g = rng.standard_normal((37, 130)).astype(np.float32)
    got = cuda.to_host(cuda.ste_backward(mask, cuda.to_device(g)))
    assert np.array_equal(got, np.where(np.abs(x) <= 1, g, np.float32(0)))
    scores = (rng.standard_normal((50, 10)) * 2).astype(np.float32)
    labels = rng.integers(0, 10, 50)
    _, want = squared_hinge(scores, labels)
    got = cuda.squared_hinge_grad(cuda.to_device(scores), cuda.to_device(labels.astype(np.int32)))
    assert np.array_equal(cuda.to_host(got).view(np.uint32), want.view(np.uint32))


def test_mlp_layer_step_checks_its_arguments_on_the_host():
    """pybnn bench cuda's training step: sizes and buffers are checked
    before any device call, and with every buffer given the step's first
    kernel reaches libbnn (which refuses without a device)."""
    from pybnn.bench.cuda import MlpLayerStep
    for bad in ((0, 64, 64), (4, -1, 64), (4, 64, True), (4, 64, 2.5)):
        with pytest.raises(ValueError, match="must be a positive integer"):
            MlpLayerStep.shapes(*bad)
    shapes = MlpLayerStep.shapes(5, 130, 65)
    assert shapes["x"] == ((5, 3), np.uint64) and shapes["w_bits"] == ((65, 3), np.uint64)
    assert shapes["gw"] == ((65, 130), np.float32) and shapes["gx"] == ((5, 130), np.float32)
    fakes = {name: FakeGPUArray(shape, dtype) for name, (shape, dtype) in shapes.items()}
    with pytest.raises(ValueError, match="buffers lacks gamma"):
        MlpLayerStep(5, 130, 65, {n: a for n, a in fakes.items() if n != "gamma"})
    wrong = dict(fakes, mask=FakeGPUArray((5, 1), np.uint64))
    with pytest.raises(ValueError, match="mask must have shape \\(5, 2\\)"):
        MlpLayerStep(5, 130, 65, wrong)
    wrong = dict(fakes, w=FakeGPUArray((65, 130), np.float64))
    with pytest.raises(TypeError, match="w must be float32"):
        MlpLayerStep(5, 130, 65, wrong)
    layer = MlpLayerStep(5, 130, 65, fakes)
    if not HAVE_GPU:
        with pytest.raises(pybnn.BnnError) as e:
            layer.step(1)
        assert e.value.status in (_core.ERR_UNSUPPORTED, _core.ERR_DEVICE)
        from pybnn.bench.cuda import bench_cuda
        lines = []
        assert bench_cuda(size=64, rounds=1, out=lines.append)["available"] is False
        assert "no usable CUDA device" in lines[0]


@needs_gpu
def test_mlp_layer_step_runs_and_keeps_the_weight_bits_current():
    from pybnn.bench.cuda import MlpLayerStep
    layer = MlpLayerStep.allocate(7, 130, 65, np.random.default_rng(8))
    for t in (1, 2):
        layer.step(t)
    w = cuda.to_host(layer.b["w"])
    assert np.all(np.isfinite(w)) and np.all(np.abs(w) <= 1)
    assert np.array_equal(cuda.to_host(layer.b["w_bits"]), pybnn.pack(w).words)
    assert np.all(np.isfinite(cuda.to_host(layer.b["gx"])))
