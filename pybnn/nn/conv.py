"""2-D convolution (NHWC): binary weights on the XNOR kernels, or float."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._args import integer
from ..ops import PackedTensor, bconv2d_affine, conv2d_output_shape, conv2d_u8
from ..ops.conv import check_geometry
from .base import Layer, Parameter, Rounder, as_float, glorot, kept_nbytes, layer_rng
from .dense import resolve_backward

__all__ = ["BinaryConv2d"]

_SHARED_WS = np.empty(0, np.uint64)   # see BinaryConv2d._workspace
# The float path (uint8 pixels into the first layer's weight gradient, float
# activations of the BinaryConnect and float baselines) builds the patch
# matrix of a few images at a time, about this many bytes of it: bounded by
# one image, not by the batch.
_TILE_BYTES = 8 << 20


def _im2col(x, kh, kw, stride, padding, dilation, pad_value):
    """x float [N, H, W, C] -> cols [N, OH, OW, KH*KW*C] (taps outer, C inner,
    the order of the packed filters), padded with pad_value."""
    n, h, w, c = x.shape
    pt, pb, pl, pr = padding
    sh, sw = stride
    dh, dw = dilation
    xp = np.full((n, h + pt + pb, w + pl + pr, c), np.float32(pad_value), dtype=np.float32)
    xp[:, pt:pt + h, pl:pl + w, :] = x
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, kh * kw * c), dtype=np.float32)
    for r in range(kh):
        for s in range(kw):
            t = r * kw + s
            cols[..., t * c:(t + 1) * c] = xp[:, r * dh:r * dh + sh * (oh - 1) + 1:sh,
                                              s * dw:s * dw + sw * (ow - 1) + 1:sw, :]
    return cols


def _col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """Adjoint of _im2col (sums overlapping taps, drops padding)."""
    n, h, w, c = x_shape
    pt, pb, pl, pr = padding
    sh, sw = stride
    dh, dw = dilation
    oh, ow = cols.shape[1], cols.shape[2]
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=np.float32)
    for r in range(kh):
        for s in range(kw):
            t = r * kw + s
            xp[:, r * dh:r * dh + sh * (oh - 1) + 1:sh,
               s * dw:s * dw + sw * (ow - 1) + 1:sw, :] += cols[..., t * c:(t + 1) * c]
    return xp[:, pt:pt + h, pl:pl + w, :]


class BinaryConv2d(Layer):
    """2-D convolution, NHWC, filters [O, KH, KW, C] (no bias).  With packed
    inputs and binary weights it runs on bconv2d (XNOR kernels, exact zero
    padding); otherwise in float through im2col + matmul.  pad_value is
    the padding in the +-1 domain, 0 (zeros) or 1 (+1); deployment uses the
    same.  binary=False keeps float weights.

    With packed inputs and binary weights, backward runs on the bits too
    (libbnn's bnn_conv2d_grad_*: no im2col): the weight gradient from the
    packed input the forward kept, the input gradient from the packed
    filters.  backward="float": exact products, one ordered float32 sum
    per element; "int8": the gradient rounded stochastically to int8 (per
    output channel for the weight gradient, per output position for the
    input gradient; Rounder seeded with `seed`), exact integer products,
    rescaled: unbiased (docs/training.md has the measured speed and
    accuracy); "auto": resolve_backward() picks one for this machine when
    the layer is built."""

    family = "conv"

    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0, dilation=1,
                 pad_value=0, binary=True, rng=None, backward="float", seed=0):
        rng = layer_rng(rng)
        self.in_channels = integer(in_channels, "in_channels", 1)
        self.out_channels = integer(out_channels, "out_channels", 1)
        pad_value = integer(pad_value, "pad_value")
        (self.kh, self.kw), self.stride, self.padding, self.dilation = check_geometry(
            kernel, stride, padding, dilation, pad_value, what="BinaryConv2d")
        self.pad_value = pad_value
        seed = integer(seed, "seed")
        self.binary = bool(binary)
        limit, lr_scale = glorot(self.kh * self.kw * self.in_channels,
                                 self.kh * self.kw * self.out_channels)
        self.W = Parameter("W", rng.uniform(-limit, limit, (self.out_channels, self.kh, self.kw,
                                                            self.in_channels)),
                           binary=self.binary, lr_scale=lr_scale if self.binary else 1.0)
        backward = resolve_backward(backward)
        self.backward_kind = backward
        self.rounder = Rounder(seed) if backward == "int8" else None
        self._x = self._wp = None
        self._ws, self._ws_key = None, None

    def parameters(self):
        return [self.W]

    def weights_pm1(self):
        W = self.W.value
        return self.W.signs().unpack() if self.binary else W

    def fan_in(self):
        return self.kh * self.kw * self.in_channels

    def output_shape(self, in_shape):
        if len(in_shape) != 4 or in_shape[-1] != self.in_channels:
            raise self._err("expects input [N, H, W, %d], got shape %r" % (self.in_channels, tuple(in_shape)))
        oh, ow = conv2d_output_shape(in_shape[1], in_shape[2], (self.kh, self.kw), self.stride,
                                     self.padding, self.dilation)
        return (in_shape[0], oh, ow, self.out_channels)

    def forward(self, x, training):
        self.output_shape(tuple(x.shape))
        self._wp = None
        y = self._compute(x)
        self._x = x if training else None
        if not training:
            self._wp = None
        return y

    def recompute_output(self):
        return self._compute(self._x)

    def kept_bytes(self):
        return kept_nbytes(self._x)

    def kept_step_bytes(self):
        return 0 if self._wp is None else int(self._wp.words.nbytes)

    def _compute(self, x):
        if isinstance(x, PackedTensor) and self.binary:
            # sign(W) packed once per step: forward, recompute and backward
            if self._wp is None:
                self._wp = self.W.signs()
            # float32 straight from the kernel (dot * 1 + 0: exact)
            y = bconv2d_affine(x, self._wp, stride=self.stride, padding=self.padding,
                               dilation=self.dilation, pad_value=self.pad_value)
        elif (self.binary and self.pad_value == 0 and isinstance(x, np.ndarray)
              and x.dtype == np.uint8 and self.fan_in() < 2 ** 17):
            # raw pixels and +-1 weights: the 8-bit kernel's exact integer
            # sum s of (x - 128) * w, times 1/128, is the sum of (x/128 - 1) *
            # w -- the floats any float product gives, since every partial
            # sum is a multiple of 2^-7 of magnitude at most fan_in < 2^17
            # (exact in float32) -- with no patch matrix
            if self._wp is None:
                self._wp = self.W.signs()
            y = conv2d_u8(x, self._wp, self.stride, self.padding, self.dilation, pad_byte=128,
                          scale=np.full(self.out_channels, 1 / 128, np.float32))
        else:
            wt = self.weights_pm1().reshape(self.out_channels, -1).T
            y = np.empty(self.output_shape(tuple(x.shape)), np.float32)
            rows = y.reshape(-1, self.out_channels)     # a view: y is new and contiguous
            per = rows.shape[0] // max(1, y.shape[0])    # output pixels per image
            for a, b in self._image_tiles(x.shape):
                # one 2-D product per tile, written in place: a 4-D patch
                # matrix times wt is a stack of one-row-of-pixels products,
                # about half the speed
                np.matmul(self._cols(x[a:b]).reshape(-1, wt.shape[0]), wt,
                          out=rows[a * per:b * per])
        return y

    def _image_tiles(self, shape):
        """[a, b) ranges of images whose float patch matrix is about
        _TILE_BYTES (at least one image)."""
        n = shape[0]
        oh, ow = self.output_shape(tuple(shape))[1:3]
        per_image = oh * ow * self.kh * self.kw * self.in_channels * 4
        step = max(1, _TILE_BYTES // max(1, per_image))
        return [(a, min(n, a + step)) for a in range(0, n, step)]

    def _cols(self, x):
        return _im2col(as_float(x), self.kh, self.kw, self.stride, self.padding, self.dilation,
                       self.pad_value)

    def _workspace(self, n, h, w):
        """The backward products' scratch: one buffer for every layer of the
        process (layers run one at a time), grown to the largest need."""
        key = (n, h, w)
        if self._ws_key != key:
            self._ws = _core.conv2d_grad_workspace(n, h, w, self.in_channels,
                                                   self.out_channels, self.kh, self.kw,
                                                   self.stride, self.dilation, self.padding,
                                                   self.pad_value, size_only=True)
            self._ws_key = key
        global _SHARED_WS
        if _SHARED_WS.size < self._ws:
            _SHARED_WS = np.empty(self._ws, np.uint64)
        return _SHARED_WS[:self._ws]

    def _backward_bits(self, grad, input_grad):
        """Both products on the bits (bnn_conv2d_grad_*)."""
        x, wp = self._x, self._wp
        n, h, w = x.shape[:3]
        g2 = np.ascontiguousarray(grad, dtype=np.float32).reshape(-1, self.out_channels)
        ws = self._workspace(n, h, w)
        geom = (self.stride, self.dilation, self.padding, self.pad_value, ws)
        c, kh, kw = self.in_channels, self.kh, self.kw
        # rows per image (a global batch split over ranks quantizes this
        # rank's rows as one process does: pybnn.nn.base.Rounder)
        per = int(np.prod(grad.shape[1:-1]))
        if self.rounder is not None:
            qt, sct = self.rounder(g2, by_column=True, shard=self.shard, per=per)
            self.W.accumulate_into(lambda buf, acc: _core.conv2d_grad_weights(
                x.words, c, kh, kw, qt, buf.reshape(self.out_channels, -1), *geom,
                scale=sct, accumulate=acc))
        else:
            self.W.accumulate_into(lambda buf, acc: _core.conv2d_grad_weights(
                x.words, c, kh, kw, g2, buf.reshape(self.out_channels, -1), *geom,
                accumulate=acc))
        if not input_grad:
            return None
        gx = np.empty((n, h, w, c), np.float32)
        if self.rounder is not None:
            q, sc = self.rounder(g2, shard=self.shard, per=per)
            _core.conv2d_grad_input(wp.words, c, q, gx, *geom, scale=sc)
        else:
            _core.conv2d_grad_input(wp.words, c, g2, gx, *geom)
        return gx

    def backward(self, grad, input_grad=True):
        if self._x is None:
            raise self._err("backward without a training forward")
        if isinstance(self._x, PackedTensor) and self._wp is not None:
            gx = self._backward_bits(grad, input_grad)
            self._x = self._wp = None
            return gx
        # the float path, a few images at a time: the weight gradient adds
        # the tiles' products in order; the input gradient of each image is
        # its own
        x, o = self._x, self.out_channels
        grad = np.asarray(grad, dtype=np.float32)
        wm = self.weights_pm1().reshape(o, -1) if input_grad else None
        gx = np.empty(x.shape, np.float32) if input_grad else None
        for a, b in self._image_tiles(x.shape):
            cols = self._cols(x[a:b])
            g2 = grad[a:b].reshape(-1, o)
            self.W.accumulate_matmul(g2.T, cols.reshape(g2.shape[0], -1))
            if input_grad:
                gx[a:b] = _col2im((g2 @ wm).reshape(cols.shape), cols.shape[:1] + x.shape[1:],
                                  self.kh, self.kw, self.stride, self.padding, self.dilation)
        self._x = self._wp = None
        return gx
