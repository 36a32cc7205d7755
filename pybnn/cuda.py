"""pybnn on NVIDIA GPUs: device arrays, packing, the XNOR GEMM,
convolution and pooling, the model runner, and the parts of a training
step (the backward products, the optimizer with the packing of the new
weights' signs, batch norm, the sign and its straight-through backward,
the squared hinge gradient) on libbnn's CUDA kernels (include/bnn_cuda.h),
with the CPU functions' bit contract and results.

Importing this module needs no GPU, no driver and no pycuda;
``available()`` says whether a device can be used and ``why()`` why not.
The GPU code is in a build made with ``BNN_CUDA=1 pip install .``.

Arrays: with pycuda installed (the ``cuda`` extra) ``to_device`` returns
pycuda ``GPUArray``s, and every function accepts them.  pycuda must use the
device's primary context -- the one the CUDA runtime in libbnn uses --
which ``context()`` makes current (``pycuda.autoinit`` makes a different
context, whose arrays libbnn cannot reach: such a call raises
BnnDeviceError naming the argument).  Without pycuda, arrays are
``DeviceArray``s: libbnn's own device buffers.

Calls are asynchronous like kernel launches; ``to_host`` and
``synchronize()`` wait for them.
"""
from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["available", "why", "context", "DeviceArray", "to_device", "to_host", "empty",
           "pack", "bgemm", "bconv2d", "maxpool2d", "gemm_pm1", "sgemm", "synchronize",
           "opt_step", "batchnorm_forward", "batchnorm_backward", "sign_forward",
           "ste_backward", "squared_hinge_grad",
           "Model",
           "BnnDeviceError"]

BnnDeviceError = _core.BnnDeviceError

_EPILOGUES = {"int32": 0, "float": 1, "bits": 2}


def available():
    """True when libbnn was built with CUDA and a device can be used."""
    return _core.cuda_available()[0]


def why():
    """One line: the devices found, or why none can be used."""
    ok, n, reason = _core.cuda_available()
    return reason


def _require():
    ok, n, reason = _core.cuda_available()
    if not ok:
        raise BnnDeviceError("no usable CUDA device: %s" % reason, int(_core.ERR_DEVICE))


def _pycuda():
    """pycuda's driver and gpuarray modules, or None without pycuda."""
    try:
        import pycuda.driver as drv
        import pycuda.gpuarray as gpuarray
    except ImportError:
        return None
    return drv, gpuarray


_CONTEXT = []


def context(device=0):
    """With pycuda: make device `device`'s primary context current (the
    context libbnn's CUDA runtime uses) and return it; None without
    pycuda."""
    mods = _pycuda()
    if mods is None:
        return None
    drv = mods[0]
    if not _CONTEXT:
        drv.init()
        ctx = drv.Device(device).retain_primary_context()
        ctx.push()
        _CONTEXT.append(ctx)
    return _CONTEXT[0]


class DeviceArray:
    """A C-contiguous array in device memory owned by libbnn (freed with
    the object)."""

    def __init__(self, shape, dtype):
        self.shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in self.shape):
            raise ValueError("DeviceArray: negative dimension in shape %r" % (self.shape,))
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.ptr = 0
        self.ptr = _core.cuda_malloc(self.nbytes)

    def __del__(self):
        if getattr(self, "ptr", 0):
            try:
                _core.cuda_free(self.ptr)
            except Exception:  # pragma: no cover - the context may be gone at exit
                pass
            self.ptr = 0

    def __repr__(self):
        return "DeviceArray(shape=%r, dtype=%s, ptr=0x%x)" % (self.shape, self.dtype, self.ptr)

    def get(self):
        """The contents as a numpy array (waits for queued work)."""
        out = np.empty(self.shape, self.dtype)
        _core.cuda_copy_to_host(out.reshape(-1).view(np.uint8), self.ptr)
        return out


def _device_info(x, name):
    """(pointer, shape, dtype) of a device array: a DeviceArray or a pycuda
    GPUArray (anything with .gpudata, .shape, .dtype), C-contiguous."""
    if isinstance(x, DeviceArray):
        return x.ptr, x.shape, x.dtype
    if hasattr(x, "gpudata") and hasattr(x, "shape") and hasattr(x, "dtype"):
        flags = getattr(x, "flags", None)
        if flags is not None and not flags.c_contiguous:
            raise ValueError("%s must be C-contiguous on the device" % name)
        return int(x.gpudata), tuple(x.shape), np.dtype(x.dtype)
    if isinstance(x, np.ndarray):
        raise TypeError("%s is a numpy array in host memory; move it with "
                        "pybnn.cuda.to_device() first" % name)
    raise TypeError("%s must be a pybnn.cuda.DeviceArray or a pycuda GPUArray, got %s"
                    % (name, type(x).__name__))


def empty(shape, dtype):
    """An uninitialised device array: a GPUArray with pycuda, else a
    DeviceArray."""
    _require()
    mods = _pycuda()
    if mods is not None:
        context()
        return mods[1].empty(tuple(shape), np.dtype(dtype))
    return DeviceArray(shape, dtype)


def to_device(x):
    """A device copy of the numpy array x (C order)."""
    x = np.ascontiguousarray(x)
    _require()
    mods = _pycuda()
    if mods is not None:
        context()
        return mods[1].to_gpu(x)
    d = DeviceArray(x.shape, x.dtype)
    _core.cuda_copy_to_device(d.ptr, x.reshape(-1).view(np.uint8))
    return d


def to_host(x):
    """The numpy copy of a device array (waits for queued work)."""
    _device_info(x, "x")
    return x.get()


def synchronize(stream=0):
    """Wait for the work queued on `stream` (0: the default stream);
    BnnDeviceError if a kernel failed."""
    _core.cuda_synchronize(int(stream))


def _need(x, name, dtype, ndim):
    ptr, shape, dt = _device_info(x, name)
    if dt != np.dtype(dtype):
        raise TypeError("%s must be %s, got %s" % (name, np.dtype(dtype), dt))
    if len(shape) != ndim:
        raise ValueError("%s must have %d dimensions, got shape %r" % (name, ndim, shape))
    return ptr, shape


def _same(x, name, shape, dtype=np.float32):
    ptr, xs = _need(x, name, dtype, len(shape))
    if xs != tuple(shape):
        raise ValueError("%s must have shape %r, got %r" % (name, tuple(shape), xs))
    return ptr


def _out(x, name, shape, dtype=np.float32):
    """An output argument: x checked (dtype, shape), or a new device array
    when x is None; returns (array, pointer)."""
    if x is None:
        x = empty(shape, dtype)
    return x, _same(x, name, shape, dtype)


def pack(x, out=None, stream=0):
    """Packed sign bits of the float32 rows of device array x [rows, k]:
    uint64 [rows, words(k)] on the device (x < 0 -> bit 1), as
    pybnn.pack on the CPU."""
    ptr, (rows, k) = _need(x, "x", np.float32, 2)
    kw = _core.words(k)
    out, optr = _out(out, "out", (rows, kw), np.uint64)
    _core.cuda_pack_f32(rows, k, ptr, k, optr, kw, int(stream))
    return out


def bgemm(a, w, k, epilogue="int32", scale=None, offset=None, thresh=None, flip=None,
          kernel="auto", out=None, stream=0):
    """The XNOR GEMM of packed rows on the device: a [n, words(k)] and
    w [m, words(k)] (uint64 device arrays) give dot = k - 2 popcount(a XOR w)
    through the epilogue, as pybnn's CPU bgemm:
    "int32" -> int32 [n, m]; "float" -> float32 [n, m] = fmaf(dot, scale, offset)
    (scale, offset: float32 [m] device arrays or None); "bits" -> uint64
    [n, words(m)], bit = flip ? dot > thresh : dot < thresh (thresh int32 [m],
    flip uint8 [m] or None).  kernel: "auto", "simt" or "tensor"."""
    if epilogue not in _EPILOGUES:
        raise ValueError("epilogue must be one of %s, got %r" % (", ".join(_EPILOGUES), epilogue))
    if kernel not in _core.CUDA_GEMM_KERNELS:
        raise ValueError("kernel must be one of %s, got %r"
                         % (", ".join(_core.CUDA_GEMM_KERNELS), kernel))
    aptr, (n, aw) = _need(a, "a", np.uint64, 2)
    wptr, (m, ww) = _need(w, "w", np.uint64, 2)
    k = int(k)
    if k < 0:
        raise ValueError("k must be >= 0, got %d" % k)
    if aw < _core.words(k) or ww < _core.words(k):
        raise ValueError("a and w need words(k) = %d words per row for k = %d, got %d and %d"
                         % (_core.words(k), k, aw, ww))
    kind = _EPILOGUES[epilogue]
    ptrs = _epilogue_arrays(kind, m, scale, offset, thresh, flip)
    out, cptr = _epilogue_out(kind, (n,), m, out)
    shape = (n, _core.words(m) if kind == 2 else m)
    _core.cuda_gemm(n, m, k, aptr, aw, wptr, ww, kind, ptrs["scale"], ptrs["offset"],
                    ptrs["thresh"], ptrs["flip"], cptr, shape[1],
                    _core.CUDA_GEMM_KERNELS[kernel], int(stream))
    return out


def _epilogue_arrays(kind, m, scale, offset, thresh, flip):
    """Device pointers of the epilogue arrays (0 where absent), checked."""
    ptrs = {}
    for name, arr, dtype, used in (("scale", scale, np.float32, kind == 1),
                                   ("offset", offset, np.float32, kind == 1),
                                   ("thresh", thresh, np.int32, kind == 2),
                                   ("flip", flip, np.uint8, kind == 2)):
        if arr is None:
            ptrs[name] = 0
            continue
        if not used:
            raise ValueError("%s applies to the %s epilogue only" % (
                name, "float" if name in ("scale", "offset") else "bits"))
        ptrs[name] = _same(arr, name, (m,), dtype)
    if kind == 2 and thresh is None:
        raise ValueError("the bits epilogue needs thresh")
    return ptrs


def _epilogue_out(kind, lead, m, out):
    """The output of an epilogue over m columns after the `lead` dimensions
    (int32, float32, or uint64 words for bits): `out` checked, or a new
    device array; returns (array, pointer)."""
    shape = tuple(lead) + (_core.words(m) if kind == 2 else m,)
    dtype = (np.int32, np.float32, np.uint64)[kind]
    return _out(out, "out", shape, dtype)


def bconv2d(x, w, c, stride=1, padding=0, dilation=1, pad_value=0, epilogue="int32",
            scale=None, offset=None, thresh=None, flip=None, out=None, stream=0):
    """Binary convolution on the device, as pybnn.bconv2d (and its affine
    and threshold forms) on the CPU: x uint64 [N, H, W, words(c)] and w
    uint64 [O, KH, KW, words(c)] packed channels -> int32 / float32
    [N, OH, OW, O] or uint64 [N, OH, OW, words(O)] (epilogue "bits")."""
    from .ops.conv import _padding, _pair
    if epilogue not in _EPILOGUES:
        raise ValueError("epilogue must be one of %s, got %r" % (", ".join(_EPILOGUES), epilogue))
    stride, dilation, padding = _pair(stride, "stride"), _pair(dilation, "dilation"), _padding(padding)
    xptr, (n, h, wd, xw) = _need(x, "x", np.uint64, 4)
    wptr, (o, kh, kw, ww) = _need(w, "w", np.uint64, 4)
    c = int(c)
    if xw != _core.words(c) or ww != _core.words(c):
        raise ValueError("x and w need words(c) = %d words per pixel for c = %d, got %d and %d"
                         % (_core.words(c), c, xw, ww))
    oh, ow = _core.conv2d_output_shape(n, h, wd, c, o, kh, kw, stride, dilation, padding,
                                       pad_value)
    kind = _EPILOGUES[epilogue]
    ptrs = _epilogue_arrays(kind, o, scale, offset, thresh, flip)
    out, optr = _epilogue_out(kind, (n, oh, ow), o, out)
    _core.cuda_conv2d(n, h, wd, c, o, kh, kw, stride, dilation, padding, int(pad_value), xptr,
                      wptr, kind, ptrs["scale"], ptrs["offset"], ptrs["thresh"], ptrs["flip"],
                      optr, int(stream))
    return out


def maxpool2d(x, c, kernel, stride=None, padding=0, flip=None, out=None, stream=0):
    """Max pooling of packed sign bits on the device, as pybnn.maxpool2d of a
    PackedTensor: x uint64 [N, H, W, words(c)] -> [N, OH, OW, words(c)];
    flip (uint8 [c] device array or None) pools those channels by min."""
    from .ops.conv import _padding, _pair
    kernel = _pair(kernel, "kernel")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _padding(padding)
    xptr, (n, h, wd, xw) = _need(x, "x", np.uint64, 4)
    c = int(c)
    if xw != _core.words(c):
        raise ValueError("x needs words(c) = %d words per pixel for c = %d, got %d"
                         % (_core.words(c), c, xw))
    fptr = 0
    if flip is not None:
        fptr = _same(flip, "flip", (c,), np.uint8)
    oh, ow = _core.pool2d_output_shape(n, h, wd, c, kernel, stride, padding)
    shape = (n, oh, ow, xw)
    out, optr = _out(out, "out", shape, np.uint64)
    _core.cuda_maxpool2d_bits(n, h, wd, c, kernel, stride, padding, xptr, fptr, optr, int(stream))
    return out


def gemm_pm1(a, s, k, transpose_a=False, accumulate=False, out=None, stream=0):
    """The backward products of a binary layer on the device, as
    _core.gemm_f32_pm1 / gemm_i8_pm1 on the CPU: C = A . S with S a +-1
    matrix of J rows of k columns held as bits (uint64 [J, words(k)]).
    a float32 [I, J] (or [J, I] with transpose_a: the weight gradient
    g^T . x) gives float32 C [I, k], each output the CPU's ordered sum
    (accumulate: added to out); a int8 [I, J] gives exact int32 C."""
    aptr, ashape, dt = _device_info(a, "a")
    sptr, (J, sw) = _need(s, "s", np.uint64, 2)
    k = int(k)
    if len(ashape) != 2:
        raise ValueError("a must have 2 dimensions, got shape %r" % (ashape,))
    if sw != _core.words(k):
        raise ValueError("s needs words(k) = %d words per row for k = %d, got %d"
                         % (_core.words(k), k, sw))
    if dt == np.float32:
        I, aj = (ashape[1], ashape[0]) if transpose_a else ashape
        lda_i, lda_j = (1, I) if transpose_a else (aj, 1)
        odt = np.float32
    elif dt == np.int8:
        if transpose_a or accumulate:
            raise ValueError("the int8 product takes q [I, J] rows and no accumulate")
        I, aj = ashape
        odt = np.int32
    else:
        raise TypeError("a must be float32 or int8, got %s" % dt)
    if aj != J:
        raise ValueError("a has %d columns along J, s has %d rows" % (aj, J))
    if out is None and accumulate:
        raise ValueError("accumulate needs out")
    out, optr = _out(out, "out", (I, k), odt)
    if dt == np.float32:
        _core.cuda_gemm_f32_pm1(I, k, J, aptr, lda_i, lda_j, sptr, sw, optr, k,
                                bool(accumulate), int(stream))
    else:
        _core.cuda_gemm_i8_pm1(I, k, J, aptr, J, sptr, sw, optr, k, int(stream))
    return out


def sgemm(a, w, out=None, stream=0):
    """The float product of the comparisons: a [n, k] . w [m, k]^T in
    float32 on the device, each output's products added in order without
    fused multiply-adds (a tiled CUDA-core kernel in the style of the
    paper's baseline, not a tuned BLAS)."""
    aptr, (n, k) = _need(a, "a", np.float32, 2)
    wptr, (m, kw) = _need(w, "w", np.float32, 2)
    if kw != k:
        raise ValueError("a and w must have the same number of columns, got %d and %d" % (k, kw))
    out, cptr = _out(out, "out", (n, m))
    _core.cuda_sgemm(n, m, k, aptr, k, wptr, k, cptr, m, int(stream))
    return out


# ---------------------------------------------------------------------------
# The elementwise and per-feature parts of a training step: with gemm_pm1
# (and bgemm for the forward) a whole step of a binary layer stays on the
# device.  Each equals its CPU twin in pybnn._core bit for bit.
# ---------------------------------------------------------------------------

def opt_step(kind, param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, lr_scale=1.0,
             clip=0.0, pack=False, signs=None, stream=0):
    """One optimizer step in place on float32 device arrays param, grad, m,
    v of one shape, as _core.opt_step ("adam", "adamax", "shift_adamax";
    t the 1-based step).  pack: param is [rows, k] binary weights, and the
    signs of the new values are written to signs (uint64 [rows, words(k)],
    allocated when None) in the same pass, as _core.opt_step_pack; returns
    signs (None without pack)."""
    pptr, shape, dt = _device_info(param, "param")
    if dt != np.float32:
        raise TypeError("param must be float32, got %s" % dt)
    gptr = _same(grad, "grad", shape)
    mptr = _same(m, "m", shape)
    vptr = _same(v, "v", shape)
    if not pack:
        if signs is not None:
            raise ValueError("signs needs pack=True")
        n = int(np.prod(shape, dtype=np.int64))
        _core.cuda_opt_step(kind, n, pptr, gptr, mptr, vptr, int(t), lr, beta1, beta2, eps,
                            lr_scale, clip, int(stream))
        return None
    if len(shape) != 2:
        raise ValueError("pack needs param of 2 dimensions [rows, k], got shape %r" % (shape,))
    rows, k = shape
    kw = _core.words(k)
    signs, sptr = _out(signs, "signs", (rows, kw), np.uint64)
    _core.cuda_opt_step_pack(kind, rows, k, pptr, gptr, mptr, vptr, sptr, kw, int(t), lr, beta1,
                             beta2, eps, lr_scale, clip, int(stream))
    return signs


def batchnorm_forward(x, gamma, beta, eps=1e-4, momentum=0.1, running_mean=None,
                      running_invstd=None, kind="standard", y=None, save_mean=None,
                      save_scale=None, stream=0):
    """Batch norm's training forward over float32 x [n, c] on the device,
    as _core.bn_forward_train ("standard" or "shift"): batch statistics,
    the running statistics updated in place where given, y (may be x).
    Returns (y, save_mean, save_scale) for the backward (each allocated
    when None)."""
    xptr, (n, c) = _need(x, "x", np.float32, 2)
    gptr = _same(gamma, "gamma", (c,))
    bptr = _same(beta, "beta", (c,))
    rm = 0 if running_mean is None else _same(running_mean, "running_mean", (c,))
    ri = 0 if running_invstd is None else _same(running_invstd, "running_invstd", (c,))
    y, yptr = _out(y, "y", (n, c))
    save_mean, mptr = _out(save_mean, "save_mean", (c,))
    save_scale, sptr = _out(save_scale, "save_scale", (c,))
    _core.cuda_bn_forward_train(kind, n, c, xptr, gptr, bptr, eps, momentum, rm, ri, yptr,
                                mptr, sptr, int(stream))
    return y, save_mean, save_scale


def batchnorm_backward(x, gamma, save_mean, save_scale, dy, kind="standard", dx=None,
                       dgamma=None, dbeta=None, stream=0):
    """Batch norm's backward on the device, as _core.bn_backward: returns
    (dx, dgamma, dbeta) (each allocated when None); dx may be dy."""
    xptr, (n, c) = _need(x, "x", np.float32, 2)
    gptr = _same(gamma, "gamma", (c,))
    mptr = _same(save_mean, "save_mean", (c,))
    sptr = _same(save_scale, "save_scale", (c,))
    dyptr = _same(dy, "dy", (n, c))
    dx, dxptr = _out(dx, "dx", (n, c))
    dgamma, dgptr = _out(dgamma, "dgamma", (c,))
    dbeta, dbptr = _out(dbeta, "dbeta", (c,))
    _core.cuda_bn_backward(kind, n, c, xptr, gptr, mptr, sptr, dyptr, dxptr, dgptr, dbptr,
                           int(stream))
    return dx, dgamma, dbeta


def sign_forward(x, signs=None, mask=None, stream=0):
    """The sign activation's training forward on float32 x [rows, k]: the
    packed signs (as pybnn.pack) and the straight-through mask |x| <= 1
    (as _core.ste_mask_pack), both uint64 [rows, words(k)], from one
    kernel.  Returns (signs, mask)."""
    xptr, (rows, k) = _need(x, "x", np.float32, 2)
    kw = _core.words(k)
    signs, sptr = _out(signs, "signs", (rows, kw), np.uint64)
    mask, mptr = _out(mask, "mask", (rows, kw), np.uint64)
    _core.cuda_sign_forward(rows, k, xptr, k, sptr, kw, mptr, kw, int(stream))
    return signs, mask


def ste_backward(mask, grad, out=None, stream=0):
    """The sign's backward on the device: out = grad where the mask bit is
    1, else 0 (grad float32 [rows, k], mask uint64 [rows, words(k)]; out
    may be grad), as bnn_ste_backward_packed."""
    gptr, (rows, k) = _need(grad, "grad", np.float32, 2)
    kw = _core.words(k)
    mptr = _same(mask, "mask", (rows, kw), np.uint64)
    out, optr = _out(out, "out", (rows, k))
    _core.cuda_ste_backward_packed(rows, k, mptr, kw, gptr, k, optr, k, int(stream))
    return out


def squared_hinge_grad(scores, labels, out=None, stream=0):
    """The gradient of pybnn.losses.squared_hinge with respect to float32
    scores [n, classes] on the device (labels: int32 [n] on the device),
    equal to the float32 gradient that function returns.  A label outside
    [0, classes) gives its row NaN (the labels are not read on the host)."""
    sptr, (n, classes) = _need(scores, "scores", np.float32, 2)
    lptr = _same(labels, "labels", (n,), np.int32)
    out, optr = _out(out, "out", (n, classes))
    _core.cuda_squared_hinge_grad(n, classes, sptr, lptr, optr, int(stream))
    return out


class Model:
    """An exported .bnn model run on the device (bnn_cuda_model_run): the
    CPU runtime's scores bit for bit and its classes.  `source`: a path,
    the file's bytes, or a pybnn DeployedModel."""

    def __init__(self, source):
        from .deploy.runtime import DeployedModel, load
        self.deployed = source if isinstance(source, DeployedModel) else load(source)
        _require()
        self._dm = _core.CudaModel(self.deployed._model)
        self.input_shape = self.deployed.input_shape
        self.classes = self.deployed.classes
        self._ws = None

    def __repr__(self):
        return "pybnn.cuda.Model(%r)" % (self.deployed,)

    def predict(self, x, stream=0):
        """(scores float32 [N, classes], classes int64 [N]) of uint8 images x
        [N, H, W, C] (a numpy array, copied to the device, or a uint8
        device array of that many bytes)."""
        h, w, c = self.input_shape
        if isinstance(x, np.ndarray):
            if x.dtype != np.uint8:
                raise TypeError("inputs must be uint8 images, got %s" % x.dtype)
            n = x.shape[0] if x.ndim else 0
            if x.size != n * h * w * c:
                raise ValueError("%s expects uint8 images [N, %d, %d, %d], got shape %r"
                                 % (self.deployed.source, h, w, c, tuple(x.shape)))
            if n == 0:
                return np.empty((0, self.classes), np.float32), np.empty(0, np.int64)
            x = to_device(np.ascontiguousarray(x).reshape(n, h * w * c))
        xptr, shape, dt = _device_info(x, "x")
        if dt != np.uint8:
            raise TypeError("x must be uint8, got %s" % dt)
        size = int(np.prod(shape, dtype=np.int64))
        if size % (h * w * c):
            raise ValueError("x holds %d bytes, not a whole number of %dx%dx%d images"
                             % (size, h, w, c))
        n = size // (h * w * c)
        need = self._dm.workspace_size(n)
        if self._ws is None or self._ws.nbytes < need:
            self._ws = empty((need,), np.uint8)
        scores = empty((n, self.classes), np.float32)
        classes = empty((n,), np.int32)
        self._dm.run(n, xptr, _device_info(scores, "scores")[0],
                     _device_info(classes, "classes")[0], _device_info(self._ws, "ws")[0],
                     need, int(stream))
        return to_host(scores), to_host(classes).astype(np.int64)
