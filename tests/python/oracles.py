"""Reference implementations the pybnn tests compare against.

Every oracle is plain numpy (or plain Python loops, used on small inputs to
check the vectorised version) and never calls pybnn, so it stays obviously
correct and independent of the kernels it checks:

- packing: bit = x < 0, LSB first, eight little-endian bytes per uint64
  word, pad bits 0 (``pack_words``, ``bits_to_words``, ``pack_words_loop``);
- the +-1 integer GEMM (``gemm_pm1``, and ``dot_words`` straight from the
  words) and the 8-bit first layer (``gemm_u8``);
- the direct NHWC convolution with strides, dilations, asymmetric padding
  and a padding value (``conv2d``, ``conv2d_loops``);
- max pooling with padding ignored (``maxpool``, ``pool_pm1``);
- the epilogues: ``affine_f32`` (float32 fmaf(s, scale, offset), rounded
  once) and ``threshold_neg`` (flip ? s > t : s < t), plus the double
  "affine then sign" predicate ``affine_neg`` that folded thresholds must
  reproduce.

The tests import this module as ``oracles`` (pyproject.toml puts
tests/python on pytest's pythonpath).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np


# ---------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------
def pair(v):
    """int or (h, w) -> (h, w)."""
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pad4(p):
    """int, (h, w) or (top, bottom, left, right) -> (top, bottom, left, right)."""
    if isinstance(p, (tuple, list)):
        if len(p) == 4:
            return tuple(int(v) for v in p)
        return int(p[0]), int(p[0]), int(p[1]), int(p[1])
    return int(p), int(p), int(p), int(p)


def out_size(n_in, pa, pb, k, dil=1, st=1):
    """Output size along one axis (convolution; pooling is dil = 1)."""
    return (n_in + pa + pb - dil * (k - 1) - 1) // st + 1


def words_per_row(k):
    return (k + 63) // 64


# ---------------------------------------------------------------------------
# Packing and signs
# ---------------------------------------------------------------------------
def bits_to_words(neg):
    """Pack a bool [..., M] (True = bit 1 = -1) into uint64 words [..., ceil(M/64)],
    LSB first, eight little-endian bytes per word, pad bits 0."""
    neg = np.asarray(neg, dtype=bool)
    m = neg.shape[-1]
    mw = words_per_row(m)
    rows = int(np.prod(neg.shape[:-1], dtype=np.int64))
    bits = np.zeros((rows, mw * 64), dtype=bool)
    bits[:, :m] = neg.reshape(rows, m)
    by = np.packbits(bits, axis=-1, bitorder="little")        # [rows, mw*8]
    words = np.ascontiguousarray(by).view("<u8").astype(np.uint64)
    return words.reshape(neg.shape[:-1] + (mw,))


def pack_words(x):
    """uint64 words [..., ceil(K/64)] of x per the bit contract: bit = x < 0
    (an ordered compare: +0, -0 and NaN give 0)."""
    return bits_to_words(np.asarray(x) < 0)


def pack_words_loop(x):
    """pack_words written as explicit loops (small inputs: checks the
    vectorised oracle itself)."""
    x = np.asarray(x)
    k = x.shape[-1]
    kw = words_per_row(k)
    flat = x.reshape(-1, k) if x.size else np.zeros((int(np.prod(x.shape[:-1])), k))
    out = np.zeros((flat.shape[0], kw), dtype=np.uint64)
    for r in range(flat.shape[0]):
        for j in range(k):
            if flat[r, j] < 0:
                out[r, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    return out.reshape(x.shape[:-1] + (kw,))


def signs(x):
    """+-1 int64 values of data (x < 0 -> -1, else +1)."""
    return np.where(np.asarray(x) < 0, -1, 1).astype(np.int64)


def pm1(x):
    """The +-1 float32 tensor that packing x stands for."""
    return np.where(np.asarray(x) < 0, np.float32(-1), np.float32(1)).astype(np.float32)


def popcount64(x):
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    by = np.ascontiguousarray(x).view(np.uint8).reshape(x.shape + (8,))
    return np.unpackbits(by, axis=-1).sum(axis=-1, dtype=np.int64)


def f32_bits(x):
    """The uint32 bit patterns of float32 values (for bit-exact compares)."""
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


# ---------------------------------------------------------------------------
# GEMMs
# ---------------------------------------------------------------------------
def gemm_pm1(a, w):
    """Integer matmul of +-1 arrays: a [..., K] @ w [M, K].T (int64)."""
    return np.matmul(np.asarray(a).astype(np.int64), np.asarray(w).astype(np.int64).T)


def dot_words(aw, ww, k):
    """dot = K - 2 * popcount(a XOR w) straight from the words (zero pads)."""
    out = np.empty((aw.shape[0], ww.shape[0]), dtype=np.int64)
    for i0 in range(0, aw.shape[0], 8):
        x = aw[i0:i0 + 8, None, :] ^ ww[None, :, :]
        out[i0:i0 + 8] = k - 2 * popcount64(x).sum(axis=-1)
    return out


def gemm_u8(x, w):
    """int64 sum_k (x - 128) * w for bytes x [N, K] and +-1 w [M, K]."""
    return (np.asarray(x).astype(np.int64) - 128) @ np.asarray(w).astype(np.int64).T


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------
def _conv_geometry(x, w, stride, padding, dilation):
    """(stride, dilation, padding (t, b, l, r), output (oh, ow)) of an NHWC
    convolution of x with filters w [O, KH, KW, C]."""
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    pt, pb, pl, pr = pad4(padding)
    _, h, wd, _ = x.shape
    _, kh, kw, _ = w.shape
    return ((sh, sw), (dh, dw), (pt, pb, pl, pr),
            (out_size(h, pt, pb, kh, dh, sh), out_size(wd, pl, pr, kw, dw, sw)))


def conv2d(x, w, stride=1, padding=0, dilation=1, pad_value=0, centre=0):
    """Direct convolution of x [N, H, W, C] with w [O, KH, KW, C], computed
    in float64 (exact for these integers) and returned as int64:
    pad x with pad_value, subtract centre from every value (padded ones
    too), then sum over the taps of strided patches @ tap.T.

    The binary convolution is centre 0 on +-1 data with pad_value 0 or 1;
    the 8-bit one is bytes with centre 128 and pad_value = pad_byte."""
    (sh, sw), (dh, dw), (pt, pb, pl, pr), (oh, ow) = _conv_geometry(x, w, stride, padding,
                                                                    dilation)
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    xp = np.pad(np.asarray(x).astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)),
                constant_values=float(pad_value)) - float(centre)
    # float64 is exact here: every partial sum is an integer below 2^53
    assert np.abs(xp).max(initial=0) * kh * kw * c < 2 ** 53
    out = np.zeros((n, oh, ow, o), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            patch = xp[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]
            out += patch @ np.asarray(w)[:, ky, kx, :].astype(np.float64).T
    return out.astype(np.int64)


def conv2d_loops(x, w, stride=1, padding=0, dilation=1, pad_value=0, centre=0):
    """conv2d with explicit Python loops over every output and tap."""
    (sh, sw), (dh, dw), (pt, pb, pl, pr), (oh, ow) = _conv_geometry(x, w, stride, padding,
                                                                    dilation)
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    out = np.zeros((n, oh, ow, o), dtype=np.int64)
    for b in range(n):
        for y in range(oh):
            for xx in range(ow):
                for f in range(o):
                    acc = 0
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = y * sh - pt + ky * dh
                            ix = xx * sw - pl + kx * dw
                            for ch in range(c):
                                if 0 <= iy < h and 0 <= ix < wd:
                                    v = int(x[b, iy, ix, ch])
                                else:
                                    v = int(pad_value)
                                acc += (v - int(centre)) * int(w[f, ky, kx, ch])
                    out[b, y, xx, f] = acc
    return out


def conv2d_u8(x, w, stride=1, padding=0, dilation=1, pad_byte=128):
    """The 8-bit first-layer convolution: sum (x - 128) * w over the taps,
    a padded tap taking the byte pad_byte (conv2d with centre 128)."""
    return conv2d(x, w, stride, padding, dilation, pad_value=pad_byte, centre=128)


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------
def pool_windows(x, kernel, stride, padding, fill):
    """Yield (oy, ox, window [N, kh, kw, C]) of x padded with `fill`."""
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    pt, pb, pl, pr = pad4(padding)
    n, h, w, c = x.shape
    oh = out_size(h, pt, pb, kh, 1, sh)
    ow = out_size(w, pl, pr, kw, 1, sw)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    for oy in range(oh):
        for ox in range(ow):
            yield oy, ox, xp[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw, :]


def maxpool(x, kernel, stride, padding):
    """Max-pool with -inf padding (padded positions never win), in float64."""
    x = np.asarray(x, dtype=np.float64)
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    pt, pb, pl, pr = pad4(padding)
    n, h, w, c = x.shape
    out = np.empty((n, out_size(h, pt, pb, kh, 1, sh), out_size(w, pl, pr, kw, 1, sw), c))
    for oy, ox, win in pool_windows(x, kernel, stride, padding, -np.inf):
        out[:, oy, ox, :] = win.max(axis=(1, 2))
    assert np.all(np.isfinite(out))
    return out


def pool_pm1(v, kernel, stride, padding, flip):
    """Pool +-1 values: max where flip is 0, min where flip is 1; padding
    ignored.  Returns +-1 float32."""
    v = np.asarray(v, dtype=np.float64)
    flip = np.zeros(v.shape[-1], bool) if flip is None else np.asarray(flip, bool)
    mx = maxpool(v, kernel, stride, padding)
    mn = -maxpool(-v, kernel, stride, padding)
    return np.where(flip, mn, mx).astype(np.float32)


# ---------------------------------------------------------------------------
# Epilogues
# ---------------------------------------------------------------------------
def exact_fma_f32(dot, scale, offset):
    """fmaf(dot, scale, offset) with exact rational arithmetic and
    round-to-nearest-even to float32 (no double rounding)."""
    d = np.float32(dot)
    s = np.float32(scale)
    o = np.float32(offset)
    q = Fraction(float(d)) * Fraction(float(s)) + Fraction(float(o))
    if q == 0:
        prod_neg_zero = (d == 0 or s == 0) and (np.signbit(d) != np.signbit(s))
        neg = prod_neg_zero and np.signbit(o) and o == 0
        return np.float32(-0.0) if neg else np.float32(0.0)
    approx = np.float32(float(q))
    best = None
    for c in (np.nextafter(approx, np.float32(-np.inf)), approx,
              np.nextafter(approx, np.float32(np.inf))):
        c = np.float32(c)
        if not np.isfinite(c):
            continue
        dist = abs(Fraction(float(c)) - q)
        odd = int(np.array(c, dtype=np.float32).view(np.uint32)) & 1
        key = (dist, odd)
        if best is None or key < best[0]:
            best = (key, c)
    return best[1]


def affine_f32(dot, scale, offset):
    """float32 fmaf((float)dot, scale, offset) per last-axis channel; a None
    scale is 1, a None offset 0.

    float64 dot*scale is exact (|dot| < 2^24, float32 scale); where the
    float64 sum is exact too (TwoSum error zero) the one rounding to float32
    is the fma's.  Entries whose float64 sum rounded are recomputed with
    exact rationals (exact_fma_f32)."""
    d = np.asarray(dot, dtype=np.float64)
    assert np.all(np.abs(d) < 2 ** 24)
    m = d.shape[-1]
    s = np.ones(m) if scale is None else np.asarray(scale, np.float32).astype(np.float64)
    o = np.zeros(m) if offset is None else np.asarray(offset, np.float32).astype(np.float64)
    p = d * s
    total = p + o
    bp = total - p
    err = (p - (total - bp)) + (o - bp)
    res = total.astype(np.float32)
    for idx in np.argwhere(err != 0):
        idx = tuple(idx)
        res[idx] = exact_fma_f32(d[idx], s[idx[-1]], o[idx[-1]])
    return res


def threshold_neg(dot, thresh, flip=None):
    """The BITS epilogue per last-axis channel (True = bit 1 = -1):
    flip ? dot > thresh : dot < thresh; a None flip is all False."""
    dot = np.asarray(dot)
    t = np.asarray(thresh, np.int64)
    if flip is None:
        return dot < t
    return np.where(np.asarray(flip, bool), dot > t, dot < t)


def affine_neg(scale, offset, s):
    """scale * s + offset < 0 per last-axis channel, in float64 (a separate
    multiply and add: numpy never fuses them)."""
    sc = np.asarray(scale, np.float64)
    of = np.asarray(offset, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return sc * np.asarray(s).astype(np.float64) + of < 0


def bn_scale_offset(gamma, beta, mean, var, eps):
    """The fold_batchnorm definition, in float64: scale = gamma /
    sqrt(var + eps), offset = beta - mean * scale."""
    g, b, mu, v = (np.asarray(x, np.float64) for x in (gamma, beta, mean, var))
    scale = g / np.sqrt(v + float(eps))
    return scale, b - mu * scale


def fnv1a64(data, skip=(24, 32)):
    """FNV-1a 64 of `data` (offset basis 0xcbf29ce484222325, prime
    0x100000001b3), the bytes in [skip[0], skip[1]) read as zero: the
    checksum of a .bnn file, whose field sits at bytes 24..31."""
    h = 0xcbf29ce484222325
    a, b = skip
    for i, byte in enumerate(bytes(data)):
        h = ((h ^ (0 if a <= i < b else byte)) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def gemm_f32_pm1(a, s_pm1, c0=None):
    """C = (c0 +) A . S in float32 with S +-1 [J, K]: one float32 accumulator
    per element adding the exact products a[i, j] * s[j, k] for j in order
    (what bnn_gemm_f32_pm1 defines), vectorised over i and k."""
    a = np.asarray(a, dtype=np.float32)
    s = np.asarray(s_pm1, dtype=np.float32)
    acc = np.zeros((a.shape[0], s.shape[1]), np.float32) if c0 is None else \
        np.array(c0, dtype=np.float32)
    for j in range(a.shape[1]):
        acc = acc + a[:, j:j + 1] * s[j]          # float32 ops: one rounding each
    return acc


# ---- the 8-bit backward's rounding and the convolution's backward products --

_M64 = (1 << 64) - 1


def mix64(seed, e):
    """The counter-based generator of libbnn (splitmix64's finaliser over
    seed and index), in Python integers."""
    z = (seed ^ ((e * 0x9E3779B97F4A7C15) & _M64)) & _M64
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def quantize_i8(a, seed, counter, by_column=False):
    """bnn_quantize_i8: scale = max|row (column)| / 127, q = clip(floor(a *
    (1/scale) + u), -127, 127), u = 16 bits of element e = counter + i*k + j
    (bits 16*(e % 4) of mix64(seed, e // 4)) / 65536; NaN -> 0.  Returns
    (q, scale), q transposed when by_column."""
    a = np.asarray(a, dtype=np.float32)
    rows, k = a.shape
    axis = 0 if by_column else 1
    amax = np.zeros(a.shape[1 - axis], np.float32)
    absa = np.abs(a)
    for idx in range(amax.size):
        line = absa[:, idx] if by_column else absa[idx]
        m = np.float32(0)
        for v in line:
            if v > m:                          # NaN never wins
                m = v
        amax[idx] = m
    scale = (amax / np.float32(127)).astype(np.float32)
    inv = np.array([np.float32(1) / s if s > 0 else np.float32(0) for s in scale], np.float32)
    u = np.empty((rows, k), np.float32)
    for i in range(rows):
        for j in range(k):
            e = (counter + i * k + j) & _M64
            u[i, j] = np.float32((mix64(seed, e >> 2) >> (16 * (e & 3))) & 0xFFFF) \
                * np.float32(1 / 65536)
    y = a * (inv[None, :] if by_column else inv[:, None]) + u
    with np.errstate(invalid="ignore"):
        q = np.where(np.isnan(y), 0, np.clip(np.floor(y), -127, 127)).astype(np.int8)
    return (q.T.copy() if by_column else q), scale


def conv_taps(x_shape, kernel, stride, padding, dilation):
    """For each tap t = r*kw + s and output position m (n, y, x row-major):
    the flat input pixel index it reads, or -1 in the padding."""
    n, h, w = x_shape[:3]
    kh, kw = kernel
    (sh, sw), (dh, dw) = stride, dilation
    pt, pb, pl, pr = padding
    oh = out_size(h, pt, pb, kh, dh, sh)
    ow = out_size(w, pl, pr, kw, dw, sw)
    idx = np.full((kh * kw, n * oh * ow), -1, np.int64)
    nn, yy, xx = np.meshgrid(np.arange(n), np.arange(oh), np.arange(ow), indexing="ij")
    nn, yy, xx = nn.ravel(), yy.ravel(), xx.ravel()
    for r in range(kh):
        for s in range(kw):
            ih, iw = yy * sh - pt + r * dh, xx * sw - pl + s * dw
            ok = (ih >= 0) & (ih < h) & (iw >= 0) & (iw < w)
            idx[r * kw + s, ok] = ((nn * h + ih) * w + iw)[ok]
    return idx, (oh, ow)


def conv_grad_weights(x_pm1, grad, kernel, stride, padding, dilation, pad_value, gw0=None,
                      qt=None, scale=None):
    """bnn_conv2d_grad_weights: gw [o, kh*kw*c].  Float (grad [m, o]): one
    float32 accumulator per element adding grad[m, o] * X(m, t, c) for m
    ascending (X = 0 at zero padding, +1 at one padding), from 0 or gw0.
    8-bit (qt [o, m], scale [o]): the exact integer sums, then
    scale[o] * float32(sum), added to gw0 when given."""
    x = np.asarray(x_pm1, np.float32)
    c = x.shape[3]
    idx, _ = conv_taps(x.shape, kernel, stride, padding, dilation)
    flat = np.concatenate([x.reshape(-1, c), np.full((1, c), float(pad_value), np.float32)])
    X = flat[idx]                                    # [taps, m, c]
    taps, m = idx.shape
    if qt is None:
        o = grad.shape[1]
        acc = np.zeros((o, taps, c), np.float32) if gw0 is None else \
            np.array(gw0, np.float32).reshape(o, taps, c)
        g = np.asarray(grad, np.float32)
        for i in range(m):
            acc = acc + g[i][:, None, None] * X[:, i][None]
        return acc.reshape(o, -1)
    o = qt.shape[0]
    s = np.einsum("om,tmc->otc", qt.astype(np.int64), X.astype(np.int64))
    v = np.asarray(scale, np.float32)[:, None, None] * s.astype(np.float32)
    if gw0 is not None:
        v = np.array(gw0, np.float32).reshape(o, taps, c) + v
    return v.reshape(o, -1)


def conv_grad_input(w_pm1, grad, x_shape, stride, padding, dilation, q=None, scale=None):
    """bnn_conv2d_grad_input: gx [n, h, w, c].  Tap by tap, the output m
    that tap t reads each pixel from adds, float path: grad[m, o] *
    W[o, t, c] for o ascending into one float32 accumulator from 0;
    8-bit path (q [m, o], scale [m]): scale[m] * float32(exact sum_o
    q[m, o] * W[o, t, c])."""
    wf = np.asarray(w_pm1, np.float32)
    o, kh, kw, c = wf.shape
    idx, _ = conv_taps(x_shape, (kh, kw), stride, padding, dilation)
    npix = int(np.prod(x_shape[:3]))
    gx = np.zeros((npix + 1, c), np.float32)         # row npix: the padding sink
    for t in range(kh * kw):
        rows = np.where(idx[t] >= 0, idx[t], npix)
        if q is None:
            acc = gx[rows]
            for j in range(o):
                acc = acc + np.asarray(grad, np.float32)[:, j:j + 1] * wf[j].reshape(-1, c)[t]
        else:
            s = q.astype(np.int64) @ wf.reshape(o, -1, c)[:, t].astype(np.int64)
            acc = gx[rows] + np.asarray(scale, np.float32)[:, None] * s.astype(np.float32)
        gx[rows] = acc                               # distinct pixels per tap
    return gx[:npix].reshape(tuple(x_shape[:3]) + (c,))


def maxpool_train(x, kernel, stride, padding):
    """bnn_maxpool2d_f32_train: (out float32, tap uint8): per window the
    first in-bounds tap (t = row * kw + column) starts, a later one
    replaces it only when strictly greater."""
    x = np.asarray(x, np.float32)
    kh, kw = pair(kernel)
    n, h, w, c = x.shape
    pt = pad4(padding)[0]
    pl = pad4(padding)[2]
    sh, sw = pair(stride)
    outs = []
    for oy, ox, win in pool_windows(x, kernel, stride, padding, np.nan):
        best = np.full((n, c), np.nan, np.float32)
        tap = np.zeros((n, c), np.uint8)
        started = np.zeros((n, c), bool)
        for r in range(kh):
            for s in range(kw):
                iy, ix = oy * sh - pt + r, ox * sw - pl + s
                if not (0 <= iy < h and 0 <= ix < w):
                    continue
                v = win[:, r, s, :]
                take = ~started | (v > best)
                best = np.where(take, v, best)
                tap = np.where(take, r * kw + s, tap).astype(np.uint8)
                started[:] = True
        outs.append((oy, ox, best, tap))
    oh = max(o[0] for o in outs) + 1
    ow = max(o[1] for o in outs) + 1
    out = np.empty((n, oh, ow, c), np.float32)
    taps = np.empty((n, oh, ow, c), np.uint8)
    for oy, ox, best, tap in outs:
        out[:, oy, ox], taps[:, oy, ox] = best, tap
    return out, taps


def maxpool_backward(grad, taps, x_shape, kernel, stride, padding):
    """bnn_maxpool2d_f32_backward: gx = 0, then grad added at each output's
    tap, outputs in row-major order."""
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    pt, _, pl, _ = pad4(padding)
    n, h, w, c = x_shape
    gx = np.zeros(x_shape, np.float32)
    _, oh, ow, _ = grad.shape
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    t = int(taps[b, oy, ox, ch])
                    iy, ix = oy * sh - pt + t // kw, ox * sw - pl + t % kw
                    if t < kh * kw and 0 <= iy < h and 0 <= ix < w:
                        gx[b, iy, ix, ch] = gx[b, iy, ix, ch] + grad[b, oy, ox, ch]
    return gx
