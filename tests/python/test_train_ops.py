"""Training arithmetic of pybnn._core against plain numpy (float64) formulas
written out here from include/bnn.h ("Training arithmetic").

- ap2: the header's frexp definition (np.frexp, mantissa compared with
  0.70710678118654752) at and around sqrt(2)*2^n, powers of two, signs,
  zeros, subnormals, large values, NaN/inf unchanged; sign*2^round(log2|z|)
  away from ties.
- bn_forward_train / bn_forward_eval / bn_backward, "standard" and "shift":
  numpy formulas (sums sequential in float64, as the C code), rtol 1e-5
  relative to the float32 outputs plus 1e-7 of the magnitude of cancelling
  terms; saved AP2 scales exactly; in place; n = 1; constant columns;
  gamma < 0, 0, > 0.  The standard backward is checked by numerical
  differentiation (reference in float64, and the library's float32 forward).
- opt_step: adam / adamax / shift_adamax over t = 1..5 (Torch defaults and
  the paper's constants), lr_scale, clip, zero gradients, quantised v; bad
  parameters raise ValueError and modify nothing.
- ste_mask_pack (and the Sign layer's gate through it), pack_stochastic.
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pybnn
from pybnn import _core as core

INV_SQRT2 = 0.70710678118654752
BNN_ERR_INVALID = -4
BNN_ERR_SHAPE = -2
RTOL = 1e-5
F32 = np.float32


# ---------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------
def ap2_ref(z):
    """AP2 per bnn.h, with np.frexp: |z| = m 2^e, m in [0.5, 1);
    2^e if m >= 0.70710678118654752 else 2^(e-1); sign kept; 0 -> 0;
    NaN/inf unchanged.  float64 in, float64 out."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        m, e = np.frexp(np.abs(z))
        e = np.where(m >= INV_SQRT2, e, e - 1)
        out = np.copysign(np.ldexp(1.0, e), z)
    out = np.where(z == 0, 0.0, out)
    out = np.where(np.isfinite(z), out, z)
    return out


def bits_u64(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.uint64)


def assert_same_ap2(got, want, z):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    zero = want == 0
    assert np.all(got[zero] == 0), (z[zero], got[zero])
    nz = ~zero
    ok = bits_u64(got[nz]) == bits_u64(want[nz])
    if not ok.all():
        i = np.flatnonzero(~ok)[0]
        raise AssertionError("ap2(%r) = %r, want %r" % (
            float(np.asarray(z)[nz][i]), float(got[nz][i]), float(want[nz][i])))


def seqsum(a, axis=0):
    """Sequential float64 sum along axis (the fixed order of the C code)."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape[axis] == 0:
        return np.zeros(np.delete(a.shape, axis))
    return np.cumsum(a, axis=axis).take(-1, axis=axis)


def assert_close(got, want, scale=0.0, what=""):
    """|got - want| <= RTOL*|want| + 1e-7*scale, elementwise."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), want.shape)
    tol = RTOL * np.abs(want) + 1e-7 * scale + 1e-30
    bad = ~(np.abs(got - want) <= tol)
    if bad.any():
        idx = np.argwhere(bad)[0]
        t = tuple(idx)
        raise AssertionError("%s: %d mismatches, first at %s: got %.9g want %.17g (tol %.3g)"
                             % (what, int(bad.sum()), t, got[t], want[t], tol[t]))


def bn_train_ref(kind, x, gamma, beta, eps, mom, rm, ri):
    """Training forward from the header, float64.  Returns y, mean, invstd
    (s before AP2), save_scale, new running mean/invstd, |terms| of y."""
    x = x.astype(np.float64)
    n = x.shape[0]
    g = gamma.astype(np.float64)
    b = beta.astype(np.float64)
    eps = float(F32(eps))
    mom = float(F32(mom))
    mean = seqsum(x) / n
    C = x - mean
    if kind == "standard":
        var = seqsum(C * C) / n
        inv = 1.0 / np.sqrt(var + eps)
        t = g * C * inv
        scale = inv
    else:
        var = seqsum(ap2_ref(C) * C) / n
        inv = 1.0 / np.sqrt(var + eps)
        t = C * ap2_ref(inv) * ap2_ref(g)
        scale = ap2_ref(inv)
    y = t + b
    rm_new = None if rm is None else (1 - mom) * rm.astype(np.float64) + mom * mean
    ri_new = None if ri is None else (1 - mom) * ri.astype(np.float64) + mom * inv
    return y, mean, inv, scale, rm_new, ri_new, np.abs(t) + np.abs(b)


def bn_eval_ref(kind, x, gamma, beta, rm, ri):
    x = x.astype(np.float64)
    C = x - rm.astype(np.float64)
    if kind == "standard":
        t = gamma.astype(np.float64) * C * ri.astype(np.float64)
    else:
        t = C * ap2_ref(ri) * ap2_ref(gamma)
    return t + beta.astype(np.float64), np.abs(t) + np.abs(beta.astype(np.float64))


def bn_backward_ref(kind, x, gamma, smean, sscale, dy):
    """Backward from the header, float64, from the (float32) saved stats.
    Returns dx, dgamma, dbeta and the magnitudes of the cancelling terms."""
    x = x.astype(np.float64)
    dy = dy.astype(np.float64)
    n = x.shape[0]
    sc = sscale.astype(np.float64)
    C = x - smean.astype(np.float64)
    mdy = seqsum(dy) / n
    if kind == "standard":
        g = gamma.astype(np.float64)
        xh = C * sc
        k = seqsum(dy * xh) / n
        term = xh * k
        dx = g * sc * (dy - mdy - term)
        dg = seqsum(dy * xh)
        dg_s = seqsum(np.abs(dy * xh))
    else:
        g = ap2_ref(gamma)
        Ct = ap2_ref(C)
        k = sc * sc * seqsum(Ct * dy) / n
        term = Ct * k
        dx = g * sc * (dy - mdy - term)
        dg = seqsum(ap2_ref(C * sc) * dy)
        dg_s = seqsum(np.abs(ap2_ref(C * sc) * dy))
    dx_s = np.abs(g * sc) * (np.abs(dy) + np.abs(mdy) + np.abs(term))
    return dx, dg, seqsum(dy), dx_s, dg_s, seqsum(np.abs(dy))


def words_to_bits(words, k):
    words = np.ascontiguousarray(words, dtype=np.uint64)
    rows = words.shape[0]
    b = np.unpackbits(words.view(np.uint8).reshape(rows, -1), axis=1, bitorder="little")
    return b[:, :k].astype(bool), b[:, k:]


def pack_bits(bits):
    bits = np.asarray(bits, dtype=bool)
    rows, k = bits.shape
    kw = (k + 63) // 64
    full = np.zeros((rows, kw * 64), dtype=bool)
    full[:, :k] = bits
    by = np.packbits(full, axis=1, bitorder="little")
    return np.ascontiguousarray(by).view("<u8").astype(np.uint64).reshape(rows, kw)


def kwords(k):
    return (k + 63) // 64


# ---------------------------------------------------------------------------
# AP2
# ---------------------------------------------------------------------------
def test_ap2_oracle_constant():
    assert np.float64(INV_SQRT2).view(np.uint64) == 0x3FE6A09E667F3BCD
    assert math.sqrt(2.0) == 2 * INV_SQRT2


@pytest.mark.parametrize("n", range(-30, 31))
def test_ap2_around_sqrt2_times_pow2(n):
    z0 = math.ldexp(math.sqrt(2.0), n)     # the double nearest sqrt(2)*2^n
    ups = [z0, np.nextafter(z0, np.inf), np.nextafter(np.nextafter(z0, np.inf), np.inf)]
    downs = [np.nextafter(z0, 0.0), np.nextafter(np.nextafter(z0, 0.0), 0.0)]
    # the double nearest sqrt(2) lies above sqrt(2): it rounds up
    for z in ups:
        assert core.ap2(z) == math.ldexp(1.0, n + 1)
        assert core.ap2(-z) == -math.ldexp(1.0, n + 1)
    for z in downs:
        assert core.ap2(z) == math.ldexp(1.0, n)
        assert core.ap2(-z) == -math.ldexp(1.0, n)
    zs = np.array(ups + downs + [-u for u in ups] + [-d for d in downs])
    assert_same_ap2(core.ap2(zs), ap2_ref(zs), zs)
    # float32 neighbours (batch norm feeds float32)
    f0 = F32(z0)
    fz = np.array([f0, np.nextafter(f0, F32(np.inf)), np.nextafter(f0, F32(0))], dtype=F32)
    assert_same_ap2(core.ap2(fz), ap2_ref(fz.astype(np.float64)), fz)


def test_ap2_powers_of_two_and_subnormals():
    e = np.arange(-1074, 1024)
    p = np.ldexp(1.0, e)
    assert_same_ap2(core.ap2(p), p, p)
    assert_same_ap2(core.ap2(-p), -p, -p)
    # neighbours of powers of two and the sqrt(2) boundary over the whole range
    zs = np.concatenate([np.nextafter(p, np.inf), np.nextafter(p[1:], 0.0),
                         np.ldexp(math.sqrt(2.0), e), np.nextafter(np.ldexp(math.sqrt(2.0), e), 0)])
    zs = zs[zs != 0]
    zs = np.concatenate([zs, -zs])
    assert_same_ap2(core.ap2(zs), ap2_ref(zs), zs)
    tiny = np.arange(1, 64, dtype=np.uint64).view(np.float64)   # k * 2^-1074
    assert_same_ap2(core.ap2(tiny), ap2_ref(tiny), tiny)
    assert core.ap2(tiny[2]) == tiny[3]     # 3*2^-1074: m = 0.75 -> 4*2^-1074
    assert core.ap2(tiny[4]) == tiny[3]     # 5*2^-1074: m = 0.625 -> 4*2^-1074
    sub32 = np.arange(1, 40, dtype=np.uint32).view(F32)
    assert_same_ap2(core.ap2(sub32), ap2_ref(sub32.astype(np.float64)), sub32)


def test_ap2_specials():
    assert core.ap2(0.0) == 0.0
    assert core.ap2(-0.0) == 0.0
    z = np.array([0.0, -0.0])
    assert np.all(core.ap2(z) == 0)
    assert core.ap2(np.inf) == np.inf
    assert core.ap2(-np.inf) == -np.inf
    nans = np.array([0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001,
                     0x7FF8DEAD0000BEEF, 0xFFFFFFFFFFFFFFFF], dtype=np.uint64).view(np.float64)
    got = core.ap2(nans)
    np.testing.assert_array_equal(got.view(np.uint64), nans.view(np.uint64))
    for q in nans:
        assert np.float64(core.ap2(float(q))).view(np.uint64) == np.float64(q).view(np.uint64)
    big = np.array([1e300, -1e300, float(np.finfo(F32).max), np.finfo(np.float64).max,
                    math.ldexp(1.4, 1023), math.ldexp(1.5, 1023)])
    assert_same_ap2(core.ap2(big), ap2_ref(big), big)
    assert core.ap2(1e300) == math.ldexp(1.0, 997)
    assert core.ap2(float(np.finfo(F32).max)) == math.ldexp(1.0, 128)
    assert core.ap2(math.ldexp(1.4, 1023)) == math.ldexp(1.0, 1023)


def test_ap2_shapes_and_types():
    x = np.array([[0.3, -3.0], [5.0, 0.75]], dtype=F32)
    out = core.ap2(x)
    assert out.shape == (2, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out, [[0.25, -4.0], [4.0, 1.0]])
    np.testing.assert_array_equal(core.ap2([0.3, 6.0]), [0.25, 8.0])
    assert core.ap2(np.float32(0.75)) == 1.0
    assert core.ap2(np.zeros(0)).shape == (0,)
    # non-contiguous input
    a = np.arange(1, 21, dtype=np.float64)[::3]
    np.testing.assert_array_equal(core.ap2(a), ap2_ref(a))


def test_ap2_random_bit_patterns():
    rng = np.random.default_rng(1)
    z = rng.integers(0, 2**64, size=200_000, dtype=np.uint64).view(np.float64)
    assert_same_ap2(core.ap2(z), ap2_ref(z), z)
    f = rng.integers(0, 2**32, size=50_000, dtype=np.uint32).view(F32)
    with np.errstate(invalid="ignore"):    # float32 signalling NaNs -> float64
        f64 = f.astype(np.float64)
        got = core.ap2(f)
    assert_same_ap2(got, ap2_ref(f64), f)


@settings(deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_ap2_hypothesis_scalar(z):
    got = core.ap2(z)
    want = float(ap2_ref(z))
    if want == 0:
        assert got == 0
    else:
        assert np.float64(got).view(np.uint64) == np.float64(want).view(np.uint64)


def test_ap2_is_sign_pow2_round_log2_away_from_ties():
    rng = np.random.default_rng(2)
    z = np.exp2(rng.uniform(-80, 80, size=100_000)) * rng.choice([-1.0, 1.0], size=100_000)
    l2 = np.log2(np.abs(z))
    keep = np.abs((l2 - np.floor(l2)) - 0.5) > 1e-9
    z, l2 = z[keep], l2[keep]
    want = np.sign(z) * np.exp2(np.floor(l2 + 0.5))
    np.testing.assert_array_equal(core.ap2(z), want)


# ---------------------------------------------------------------------------
# Batch norm
# ---------------------------------------------------------------------------
def bn_data(rng, n, c):
    """Columns of several kinds (spread, constant, small ints, large offset
    with a small spread); gamma cycles negative, zero, positive, random."""
    x = np.empty((n, c), dtype=F32)
    for j in range(c):
        pat = rng.integers(0, 5)
        if pat == 0:
            x[:, j] = F32(rng.uniform(-2, 2))
        elif pat == 1:
            x[:, j] = rng.integers(-3, 4, size=n)
        elif pat == 2:
            x[:, j] = 1000 + 0.01 * (rng.random(n) - 0.5)
        else:
            x[:, j] = rng.uniform(-3, 3) + np.exp2(rng.uniform(-5, 3)) * rng.uniform(-1, 1, n)
    gamma = np.array([(-1.75, 0.0, 0.6, rng.uniform(-2, 2))[j % 4] for j in range(c)], dtype=F32)
    beta = rng.uniform(-1, 1, c).astype(F32)
    dy = rng.uniform(-1, 1, (n, c)).astype(F32)
    rm = rng.uniform(-1, 1, c).astype(F32)
    ri = rng.uniform(0.1, 3.1, c).astype(F32)
    return x, gamma, beta, dy, rm, ri


def run_bn_case(kind, n, c, eps, mom, with_running, seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta, dy, rm0, ri0 = bn_data(rng, n, c)
    rm, ri = rm0.copy(), ri0.copy()
    y = np.full((n, c), np.nan, dtype=F32)
    sm = np.empty(c, F32)
    ss = np.empty(c, F32)
    core.bn_forward_train(kind, x, gamma, beta, eps, mom, rm if with_running else None,
                          ri if with_running else None, y, sm, ss)
    yr, mean, inv, scale, rmr, rir, ys = bn_train_ref(kind, x, gamma, beta, eps, mom, rm0, ri0)
    assert_close(y, yr, ys, "y")
    assert_close(sm, mean, 0, "save_mean")
    if kind == "shift":
        np.testing.assert_array_equal(ss, scale.astype(F32))           # AP2(s) exactly
        m, _ = np.frexp(ss)
        assert np.all(m == 0.5)
    else:
        assert_close(ss, scale, 0, "save_scale")
    if with_running:
        assert_close(rm, rmr, np.abs(rm0) + np.abs(mean), "running_mean")
        assert_close(ri, rir, 0, "running_invstd")
    else:
        np.testing.assert_array_equal(rm, rm0)
        np.testing.assert_array_equal(ri, ri0)
    # n = 1 / constant columns: x - mean == 0 exactly, so y == beta
    const = np.all(x == x[:1], axis=0)
    np.testing.assert_array_equal(y[:, const], np.broadcast_to(beta[const], (n, int(const.sum()))))

    # in place y is x
    xi = x.copy()
    sm2, ss2 = np.empty(c, F32), np.empty(c, F32)
    rm2, ri2 = rm0.copy(), ri0.copy()
    core.bn_forward_train(kind, xi, gamma, beta, eps, mom, rm2 if with_running else None,
                          ri2 if with_running else None, xi, sm2, ss2)
    np.testing.assert_array_equal(xi.view(np.uint32), y.view(np.uint32))
    np.testing.assert_array_equal(sm2, sm)
    np.testing.assert_array_equal(ss2, ss)
    np.testing.assert_array_equal(rm2, rm)
    np.testing.assert_array_equal(ri2, ri)

    # backward from the saved statistics
    dx = np.full((n, c), np.nan, dtype=F32)
    dg = np.empty(c, F32)
    db = np.empty(c, F32)
    core.bn_backward(kind, x, gamma, sm, ss, dy, dx, dg, db)
    dxr, dgr, dbr, dxs, dgs, dbs = bn_backward_ref(kind, x, gamma, sm, ss, dy)
    assert_close(dx, dxr, dxs, "dx")
    assert_close(dg, dgr, dgs, "dgamma")
    assert_close(db, dbr, dbs, "dbeta")
    assert np.all(dx[:, gamma == 0] == 0)
    if n == 1:
        assert np.all(dx == 0)
    # in place dx is dy
    io = dy.copy()
    dg2, db2 = np.empty(c, F32), np.empty(c, F32)
    core.bn_backward(kind, x, gamma, sm, ss, io, io, dg2, db2)
    np.testing.assert_array_equal(io.view(np.uint32), dx.view(np.uint32))
    np.testing.assert_array_equal(dg2, dg)
    np.testing.assert_array_equal(db2, db)

    # eval forward
    ye = np.full((n, c), np.nan, dtype=F32)
    core.bn_forward_eval(kind, x, gamma, beta, rm0, ri0, ye)
    yer, yes = bn_eval_ref(kind, x, gamma, beta, rm0, ri0)
    assert_close(ye, yer, yes, "eval y")
    xi = x.copy()
    core.bn_forward_eval(kind, xi, gamma, beta, rm0, ri0, xi)
    np.testing.assert_array_equal(xi.view(np.uint32), ye.view(np.uint32))


@pytest.mark.parametrize("kind", ["standard", "shift"])
def test_bn_eval_threads_and_chunks(kind, restore_num_threads):
    """The eval forward on a batch large enough to split its features over
    threads, with more features than one chunk (BNN_BN_CHUNK, 256) and a
    ragged last one: the same bits for 1, 2 and 3 threads and in place,
    and the header's map within rounding."""
    rng = np.random.default_rng(7)
    n, c = 601, 300
    x = (rng.standard_normal((n, c)) * 3).astype(F32)
    gamma = rng.uniform(-2, 2, c).astype(F32)
    beta = rng.standard_normal(c).astype(F32)
    rm = rng.standard_normal(c).astype(F32)
    ri = rng.uniform(0.1, 4, c).astype(F32)
    outs = []
    for t in (1, 2, 3):
        core.set_num_threads(t)
        y = np.full((n, c), np.nan, dtype=F32)
        core.bn_forward_eval(kind, x, gamma, beta, rm, ri, y)
        xi = x.copy()
        core.bn_forward_eval(kind, xi, gamma, beta, rm, ri, xi)
        np.testing.assert_array_equal(xi.view(np.uint32), y.view(np.uint32))
        outs.append(y)
    for y in outs[1:]:
        np.testing.assert_array_equal(y.view(np.uint32), outs[0].view(np.uint32))
    want, scale = bn_eval_ref(kind, x, gamma, beta, rm, ri)
    assert_close(outs[0], want, scale, "eval y")


@pytest.mark.parametrize("kind", ["standard", "shift"])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 257])
@pytest.mark.parametrize("c", [1, 4, 9])
def test_bn_fixed_shapes(kind, n, c):
    for i, (eps, mom, running) in enumerate([(1e-5, 0.0, True), (1e-3, 0.1, True),
                                             (1e-5, 1.0, False)]):
        run_bn_case(kind, n, c, eps, mom, running, seed=n * 1000 + c * 10 + i)


@settings(deadline=None)
@given(kind=st.sampled_from(["standard", "shift"]), n=st.integers(1, 40),
       c=st.integers(1, 6), eps=st.sampled_from([1e-5, 1e-4, 0.1, 2.0]),
       mom=st.sampled_from([0.0, 0.1, 0.5, 1.0]), running=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_bn_hypothesis(kind, n, c, eps, mom, running, seed):
    run_bn_case(kind, n, c, eps, mom, running, seed)


def test_bn_shift_worked_example():
    # x {1,2,3,6}: mean 3, C {-2,-1,0,3}, AP2(C) {-2,-1,0,4}, var 17/4,
    # s = 1/sqrt(4.25+eps) ~ 0.485 -> 0.5; AP2(gamma=3) = 4: y = 2C + 0.25
    x = np.array([[1], [2], [3], [6]], dtype=F32)
    g, b = np.array([3], F32), np.array([0.25], F32)
    rm, ri = np.array([1], F32), np.array([2], F32)
    y = np.empty_like(x)
    sm, ss = np.empty(1, F32), np.empty(1, F32)
    core.bn_forward_train("shift", x, g, b, 1e-5, 0.5, rm, ri, y, sm, ss)
    assert sm[0] == 3 and ss[0] == 0.5
    np.testing.assert_array_equal(y[:, 0], [-3.75, -1.75, 0.25, 6.25])
    assert_close(rm, [2.0])
    assert_close(ri, [1.0 + 0.5 / math.sqrt(4.25 + float(F32(1e-5)))])
    dy = np.array([[1], [0], [0], [0]], dtype=F32)
    dx, dg, db = np.empty_like(x), np.empty(1, F32), np.empty(1, F32)
    core.bn_backward("shift", x, g, sm, ss, dy, dx, dg, db)
    # dx = 4 * 0.5 * (dy - 1/4 - Ct * 0.25 * (-2/4)); dgamma = AP2(-1) = -1
    np.testing.assert_array_equal(dx[:, 0], 2 * (dy[:, 0] - 0.25 + np.array([-2, -1, 0, 4]) / 8))
    assert dg[0] == -1 and db[0] == 1


# ---- gradient check of the standard backward ------------------------------
def ref_loss(x, gamma, beta, eps, R):
    n = x.shape[0]
    mean = x.sum(0) / n
    var = ((x - mean) ** 2).sum(0) / n
    y = gamma * (x - mean) / np.sqrt(var + eps) + beta
    return float((y * R).sum())


def ref_grads(x, gamma, eps, R):
    """Reference backward of L = sum(y R) in float64 (dy = R)."""
    n = x.shape[0]
    mean = x.sum(0) / n
    inv = 1 / np.sqrt(((x - mean) ** 2).sum(0) / n + eps)
    xh = (x - mean) * inv
    dx = gamma * inv * (R - R.mean(0) - xh * (R * xh).mean(0))
    return dx, (R * xh).sum(0), R.sum(0)


@pytest.mark.parametrize("trial", range(6))
def test_bn_standard_gradient_check(trial):
    rng = np.random.default_rng(100 + trial)
    n, c = int(rng.integers(2, 16)), int(rng.integers(1, 5))
    eps = 0.01 if trial % 2 == 0 else 1e-5
    eps32 = float(F32(eps))
    # well spread columns: stratified in [-1, 3]
    x = (-1 + 4 * (np.arange(n)[:, None] + 0.1 + 0.8 * rng.random((n, c))) / n).astype(F32)
    gamma = (rng.uniform(0.5, 1.5, c) * np.where(np.arange(c) % 2, -1, 1)).astype(F32)
    beta = rng.uniform(-0.5, 0.5, c).astype(F32)
    R = rng.uniform(-1, 1, (n, c)).astype(F32)
    x64, g64, b64, R64 = (a.astype(np.float64) for a in (x, gamma, beta, R))

    # (1) the float64 reference backward vs central differences
    dx_ref, dg_ref, db_ref = ref_grads(x64, g64, eps32, R64)
    h = 1e-6
    num = np.empty_like(x64)
    for idx in np.ndindex(x64.shape):
        xp, xm = x64.copy(), x64.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (ref_loss(xp, g64, b64, eps32, R64) - ref_loss(xm, g64, b64, eps32, R64)) / (2 * h)
    np.testing.assert_allclose(dx_ref, num, rtol=1e-6, atol=1e-6)
    for j in range(c):
        e = np.zeros(c)
        e[j] = h
        ng = (ref_loss(x64, g64 + e, b64, eps32, R64) - ref_loss(x64, g64 - e, b64, eps32, R64)) / (2 * h)
        nb = (ref_loss(x64, g64, b64 + e, eps32, R64) - ref_loss(x64, g64, b64 - e, eps32, R64)) / (2 * h)
        assert abs(ng - dg_ref[j]) <= 1e-6 * (1 + abs(dg_ref[j]))
        assert abs(nb - db_ref[j]) <= 1e-6 * (1 + abs(db_ref[j]))

    # (2) the library backward vs the reference
    y = np.empty_like(x)
    sm, ss = np.empty(c, F32), np.empty(c, F32)
    core.bn_forward_train("standard", x, gamma, beta, eps, 0.0, None, None, y, sm, ss)
    dx, dg, db = np.empty_like(x), np.empty(c, F32), np.empty(c, F32)
    core.bn_backward("standard", x, gamma, sm, ss, R, dx, dg, db)
    np.testing.assert_allclose(dx, dx_ref, rtol=RTOL, atol=1e-5 * np.abs(dx_ref).max())
    np.testing.assert_allclose(dg, dg_ref, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(db, db_ref, rtol=RTOL, atol=1e-6)

    # (3) the library backward vs differences of the library's float32 forward
    def lib_loss(xx, gg, bb):
        yy = np.empty_like(xx)
        a, b = np.empty(c, F32), np.empty(c, F32)
        core.bn_forward_train("standard", xx, gg, bb, eps, 0.0, None, None, yy, a, b)
        return float((yy.astype(np.float64) * R64).sum())

    hf = 2.0 ** -7
    gnorm = float(np.abs(dx).max()) + 1.0
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] = F32(x64[idx] + hf)
        xm[idx] = F32(x64[idx] - hf)
        d = (lib_loss(xp, gamma, beta) - lib_loss(xm, gamma, beta)) / (float(xp[idx]) - float(xm[idx]))
        assert abs(d - dx[idx]) <= 2e-3 * gnorm, (idx, d, dx[idx])
    for j in range(c):
        e = np.zeros(c, F32)
        e[j] = hf
        d = (lib_loss(x, gamma + e, beta) - lib_loss(x, gamma - e, beta)) / (2 * hf)
        assert abs(d - dg[j]) <= 1e-3 * (1 + abs(dg[j]))
        d = (lib_loss(x, gamma, beta + e) - lib_loss(x, gamma, beta - e)) / (2 * hf)
        assert abs(d - db[j]) <= 1e-3 * (1 + abs(db[j]))


# ---- batch norm argument errors -------------------------------------------
def test_bn_errors():
    x = np.arange(6, dtype=F32).reshape(3, 2)
    g, b = np.ones(2, F32), np.zeros(2, F32)
    rm, ri = np.zeros(2, F32), np.ones(2, F32)
    y = np.full((3, 2), 7.0, F32)
    sm, ss = np.full(2, 7.0, F32), np.full(2, 7.0, F32)
    for kind in ("standard", "shift"):
        for eps in (0.0, -1e-5, float("nan"), float("inf"), 1e-50):   # 1e-50 -> 0.0f
            with pytest.raises(ValueError) as ei:
                core.bn_forward_train(kind, x, g, b, eps, 0.1, rm, ri, y, sm, ss)
            assert ei.value.status == BNN_ERR_INVALID
        for mom in (-0.1, 1.1, float("nan")):
            with pytest.raises(ValueError) as ei:
                core.bn_forward_train(kind, x, g, b, 1e-5, mom, rm, ri, y, sm, ss)
            assert ei.value.status == BNN_ERR_INVALID
        with pytest.raises(ValueError) as ei:                           # n = 0
            core.bn_forward_train(kind, np.zeros((0, 2), F32), g, b, 1e-5, 0.1, rm, ri,
                                  np.zeros((0, 2), F32), sm, ss)
        assert ei.value.status == BNN_ERR_SHAPE
        with pytest.raises(ValueError):
            core.bn_forward_train(kind, x, g[:1], b, 1e-5, 0.1, rm, ri, y, sm, ss)
        with pytest.raises(ValueError):
            core.bn_forward_train(kind, x, g, b, 1e-5, 0.1, rm, ri, y[:2], sm, ss)
        with pytest.raises(ValueError):
            core.bn_forward_eval(kind, x, g, b, rm[:1], ri, y)
        with pytest.raises(ValueError):
            core.bn_backward(kind, x, g, sm, ss, x, y, sm[:1], ss)
    for bad in ("batch", 0, None):
        with pytest.raises(ValueError):
            core.bn_forward_train(bad, x, g, b, 1e-5, 0.1, rm, ri, y, sm, ss)
        with pytest.raises(ValueError):
            core.bn_forward_eval(bad, x, g, b, rm, ri, y)
        with pytest.raises(ValueError):
            core.bn_backward(bad, x, g, sm, ss, x, y, sm, ss)
    # nothing written
    assert np.all(y == 7) and np.all(sm == 7) and np.all(ss == 7)
    assert np.all(rm == 0) and np.all(ri == 1)
    # c == 0 and eval with n == 0 are valid no-ops
    core.bn_forward_train("standard", np.zeros((3, 0), F32), np.zeros(0, F32), np.zeros(0, F32),
                          1e-5, 0.1, None, None, np.zeros((3, 0), F32), np.zeros(0, F32),
                          np.zeros(0, F32))
    core.bn_forward_eval("shift", np.zeros((0, 2), F32), g, b, rm, ri, np.zeros((0, 2), F32))


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------
def opt_ref(kind, p, g, m, v, t, lr, b1, b2, eps, lr_scale=1.0, clip=0.0):
    """One step from the header; float64 arithmetic, float32 state."""
    p, g, m, v = (np.asarray(a, np.float64) for a in (p, g, m, v))
    m = b1 * m + (1 - b1) * g
    if kind == "adam":
        v = b2 * v + (1 - b2) * g * g
        w = p - lr_scale * lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    elif kind == "adamax":
        v = np.maximum(b2 * v, np.abs(g))
        w = p - lr_scale * lr / (1 - b1 ** t) * m / (v + eps)
    else:
        v = ap2_ref(np.maximum(b2 * v, np.abs(g))) + eps
        with np.errstate(invalid="ignore", divide="ignore"):
            upd = np.where(v > 0, m / v, 0.0)
        w = p - lr_scale * float(ap2_ref(lr / (1 - b1 ** t))) * upd
    if clip > 0:
        w = np.clip(w, -clip, clip)
    return w.astype(F32), m.astype(F32), v.astype(F32)


TORCH = {"adam": (0.003, 0.9, 0.999, 1e-8), "adamax": (0.002, 0.9, 0.999, 1e-8),
         "shift_adamax": (2.0 ** -6, 0.9, 0.999, 2.0 ** -27)}
PAPER = {"adam": (2.0 ** -10, 0.875, 1 - 2.0 ** -10, 1e-8),
         "adamax": (2.0 ** -10, 0.875, 1 - 2.0 ** -10, 1e-8),
         "shift_adamax": (2.0 ** -10, 0.875, 1 - 2.0 ** -10, 2.0 ** -27)}


def opt_case(kind, consts, lr_scale, clip, gradmode, seed, n=257, T=5):
    lr, b1, b2, eps = consts
    rng = np.random.default_rng(seed)
    p = rng.uniform(-1, 1, n).astype(F32)
    edge = np.arange(n) % 17 == 0
    sign = np.where(np.arange(n) % 34 == 0, -1, 1).astype(F32)
    p[edge] = 0.999 * sign[edge]
    p0 = p.copy()
    m, v = np.zeros(n, F32), np.zeros(n, F32)
    rp, rmm, rv = p.copy(), m.copy(), v.copy()
    clipped = 0
    for t in range(1, T + 1):
        if gradmode == "random":
            g = (rng.uniform(-1, 1, n) * np.exp2(rng.uniform(-8, 4, n))).astype(F32)
        elif gradmode == "zero":
            g = np.zeros(n, F32)
        else:  # push the edge entries outwards, hard
            g = rng.uniform(-1, 1, n).astype(F32)
            g[edge] = -5 * sign[edge]
        pm, pv, prev_p = m.copy(), v.copy(), p.copy()
        core.opt_step(kind, p, g, m, v, t, lr, b1, b2, eps, lr_scale=lr_scale, clip=clip)
        rp, rmm, rv = opt_ref(kind, rp, g, rmm, rv, t, lr, b1, b2, eps, lr_scale, clip)
        step = lr * lr_scale * 20
        assert_close(p, rp, step, "param t=%d" % t)
        assert_close(m, rmm, np.abs(b1 * pm.astype(np.float64)) + np.abs((1 - b1) * g), "m")
        assert_close(v, rv, 0, "v t=%d" % t)
        # exactly one rounding from the library's own previous state
        np.testing.assert_array_equal(m, (b1 * pm.astype(np.float64) + (1 - b1) * g.astype(np.float64)).astype(F32))
        mx = np.maximum(b2 * pv.astype(np.float64), np.abs(g.astype(np.float64)))
        if kind == "adamax":
            np.testing.assert_array_equal(v, mx.astype(F32))
        elif kind == "shift_adamax":
            # the state itself is quantised: v = AP2(max(b2 v, |g|)) + eps
            np.testing.assert_array_equal(v, (ap2_ref(mx) + eps).astype(F32))
            if eps == 0:
                mm, _ = np.frexp(v)
                assert np.all((mm == 0.5) | (v == 0))
        if clip > 0:
            assert np.all(np.abs(p) <= clip)
            # where the unclipped step (from the library's previous state)
            # leaves [-clip, clip], the result is exactly +-clip
            wu, _, _ = opt_ref(kind, prev_p, g, pm, pv, t, lr, b1, b2, eps, lr_scale, 0.0)
            out = np.abs(wu.astype(np.float64)) > clip * (1 + 1e-6)
            np.testing.assert_array_equal(p[out], (clip * np.sign(wu[out])).astype(F32))
            clipped += int(out[edge].sum())
        if gradmode == "zero":
            assert np.all(m == 0)
            if kind != "shift_adamax":
                assert np.all(v == 0)
    if gradmode == "zero":
        want = np.clip(p0, -clip, clip) if clip > 0 else p0
        np.testing.assert_array_equal(p, want)
    if gradmode == "push" and clip == 0:
        assert np.all(np.abs(p[edge]) > F32(0.999))
    if gradmode == "push" and 0 < clip < 1:
        assert clipped > 0
    if gradmode == "push" and clip > 0:
        np.testing.assert_array_equal(p[edge], (clip * sign[edge]).astype(F32))


@pytest.mark.parametrize("kind", ["adam", "adamax", "shift_adamax"])
@pytest.mark.parametrize("consts", ["torch", "paper"])
@pytest.mark.parametrize("lr_scale,clip", [(1.0, 0.0), (0.37, 1.0), (3.0, 1.0), (6.5, 0.0)])
@pytest.mark.parametrize("gradmode", ["random", "zero", "push"])
def test_opt_steps(kind, consts, lr_scale, clip, gradmode):
    c = (TORCH if consts == "torch" else PAPER)[kind]
    opt_case(kind, c, lr_scale, clip, gradmode, seed=zlib.crc32(repr((kind, consts, lr_scale, gradmode)).encode()))


@pytest.mark.parametrize("gradmode", ["random", "zero", "push"])
def test_shift_adamax_eps0_v_is_power_of_two(gradmode):
    opt_case("shift_adamax", (2.0 ** -10, 0.875, 1 - 2.0 ** -10, 0.0), 1.0, 0.0, gradmode, 7)


def test_opt_big_lr_clip():
    for kind in ("adam", "adamax", "shift_adamax"):
        opt_case(kind, (0.1, 0.9, 0.999, 1e-8), 2.0, 1.0, "push", 11)
        opt_case(kind, (0.1, 0.9, 0.999, 1e-8), 2.0, 0.5, "random", 12)
        opt_case(kind, (0.1, 0.9, 0.999, 1e-8), 2.0, 0.0, "push", 13)


@settings(deadline=None)
@given(kind=st.sampled_from(["adam", "adamax", "shift_adamax"]),
       lr=st.sampled_from([2.0 ** -10, 2.0 ** -6, 0.003, 0.1]),
       b1=st.sampled_from([0.0, 0.5, 0.875, 0.9]),
       b2=st.sampled_from([0.0, 0.9, 0.999, 1 - 2.0 ** -10]),
       eps=st.sampled_from([1e-8, 2.0 ** -27, 1e-3]),
       lr_scale=st.floats(0.01, 10), clip=st.sampled_from([0.0, 0.5, 1.0]),
       seed=st.integers(0, 2**32 - 1), n=st.integers(1, 70))
def test_opt_hypothesis(kind, lr, b1, b2, eps, lr_scale, clip, seed, n):
    opt_case(kind, (lr, b1, b2, eps), lr_scale, clip, "random", seed, n=n, T=3)


def test_shift_adamax_worked_example():
    # g = 0.3: m = 0.125 g; v = AP2(0.3) + 2^-27 = 0.25 + 2^-27;
    # step = AP2(2^-10 / 0.125) = 2^-7
    p, g = np.array([0.5], F32), np.array([0.3], F32)
    m, v = np.zeros(1, F32), np.zeros(1, F32)
    core.opt_step("shift_adamax", p, g, m, v, 1, 2.0 ** -10, 0.875, 1 - 2.0 ** -10, 2.0 ** -27)
    mm, vv = 0.125 * float(g[0]), 0.25 + 2.0 ** -27
    assert m[0] == F32(mm) and v[0] == F32(vv)
    assert p[0] == F32(0.5 - 2.0 ** -7 * mm / vv)


BAD_OPT = [
    dict(t=0), dict(t=-1), dict(beta1=1.0), dict(beta1=-0.1), dict(beta1=float("nan")),
    dict(beta2=1.0), dict(beta2=2.0), dict(eps=-1e-8), dict(eps=float("nan")),
    dict(eps=float("inf")), dict(lr=-0.1), dict(lr=float("inf")), dict(lr=float("nan")),
    dict(lr_scale=0.0), dict(lr_scale=-1.0), dict(lr_scale=float("nan")), dict(clip=-1.0),
    dict(clip=float("nan")),
]


@pytest.mark.parametrize("kind", ["adam", "adamax", "shift_adamax"])
@pytest.mark.parametrize("bad", BAD_OPT, ids=lambda d: ",".join("%s=%s" % kv for kv in d.items()))
def test_opt_bad_params(kind, bad):
    args = dict(t=1, lr=0.003, beta1=0.9, beta2=0.999, eps=1e-8, lr_scale=1.0, clip=0.0)
    args.update(bad)
    p = np.linspace(-1, 1, 5).astype(F32)
    g, m, v = np.ones(5, F32), np.full(5, 0.5, F32), np.full(5, 0.75, F32)
    keep = [a.copy() for a in (p, g, m, v)]
    with pytest.raises(ValueError) as ei:
        core.opt_step(kind, p, g, m, v, args["t"], args["lr"], args["beta1"], args["beta2"],
                      args["eps"], lr_scale=args["lr_scale"], clip=args["clip"])
    assert ei.value.status == BNN_ERR_INVALID
    for a, b in zip((p, g, m, v), keep):
        np.testing.assert_array_equal(a, b)


def test_opt_bad_kind_and_shapes():
    p = np.zeros(4, F32)
    g, m, v = np.ones(4, F32), np.zeros(4, F32), np.zeros(4, F32)
    for kind in ("sgd", "ADAM", None, 1):
        with pytest.raises(ValueError):
            core.opt_step(kind, p, g, m, v, 1, 0.1, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError):
        core.opt_step("adam", p, g[:3], m, v, 1, 0.1, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError):           # None is a missing buffer, never a crash
        core.opt_step("adam", p, None, m, v, 1, 0.1, 0.9, 0.999, 1e-8)
    assert np.all(p == 0) and np.all(m == 0) and np.all(v == 0)
    core.opt_step("adam", np.zeros(0, F32), np.zeros(0, F32), np.zeros(0, F32),
                  np.zeros(0, F32), 1, 0.1, 0.9, 0.999, 1e-8)


# ---------------------------------------------------------------------------
# Straight-through estimator
# ---------------------------------------------------------------------------
ONE_UP = np.nextafter(F32(1), F32(2))
ONE_DN = np.nextafter(F32(1), F32(0))
STE_SPECIALS = np.array(
    [1.0, -1.0, ONE_UP, -ONE_UP, ONE_DN, -ONE_DN, 0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf,
     1e-45, 0.5, -0.5, 2.0, -3.0, np.finfo(F32).max], dtype=F32)
STE_PASS = np.array([1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0], dtype=bool)


def ste_ref(x, grad):
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(x.astype(np.float64)) <= 1, grad, F32(0)).astype(F32)


def _sign_backward(x, g):
    """The gradient the binary Sign layer passes back for input x."""
    from pybnn.nn import Sign
    sign = Sign()
    sign.forward(x, True)
    return sign.backward(g)


def test_ste_specials():
    x = STE_SPECIALS
    with np.errstate(invalid="ignore"):
        assert np.array_equal(np.abs(x) <= 1, STE_PASS)
    g = (np.arange(len(x)) + 0.5).astype(F32)
    mask = np.full((1, 1), 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    core.ste_mask_pack(x[None, :], mask)
    bits, pad = words_to_bits(mask, len(x))
    np.testing.assert_array_equal(bits[0], STE_PASS)
    assert not pad.any()
    out = _sign_backward(x[None, :], g[None, :])
    np.testing.assert_array_equal(out[0].view(np.uint32),
                                  np.where(STE_PASS, g, F32(0)).view(np.uint32))


def ste_values(rng, shape):
    x = rng.uniform(-1.6, 1.6, shape).astype(F32)
    u = rng.random(shape)
    choices = np.array([1, -1, ONE_UP, -ONE_UP, ONE_DN, np.nan, 0.0, -0.0], dtype=F32)
    pick = u < 0.25
    x[pick] = rng.choice(choices, size=int(pick.sum()))
    return x


@pytest.mark.parametrize("k", [1, 63, 64, 65, 130])
@pytest.mark.parametrize("rows", [1, 5])
def test_ste_packed_roundtrip(k, rows):
    rng = np.random.default_rng(k * 10 + rows)
    x = ste_values(rng, (rows, k))
    g = (rng.uniform(-1, 1, (rows, k)) + 0.001).astype(F32)
    mask = np.full((rows, kwords(k)), 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    core.ste_mask_pack(x, mask)
    bits, pad = words_to_bits(mask, k)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(bits, np.abs(x) <= 1)
    assert not pad.any(), "pad bits set"
    np.testing.assert_array_equal(mask, pack_bits(np.abs(np.nan_to_num(x, nan=2.0)) <= 1))
    # the layer gates through the mask: grad where |x| <= 1, zero elsewhere
    np.testing.assert_array_equal(_sign_backward(x, g), ste_ref(x, g))


@settings(deadline=None)
@given(x=hnp.arrays(F32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=140),
                    elements=st.one_of(st.floats(width=32),
                                       st.sampled_from([1.0, -1.0, float(ONE_UP), float(-ONE_UP),
                                                        float(ONE_DN)]))))
def test_ste_hypothesis(x):
    rows, k = x.shape
    rng = np.random.default_rng(rows * 1000 + k)
    g = rng.uniform(-1, 1, x.shape).astype(F32)
    mask = np.full((rows, kwords(k)), 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    core.ste_mask_pack(x, mask)
    bits, pad = words_to_bits(mask, k)
    assert not pad.any()
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(bits, np.abs(x) <= 1)
    np.testing.assert_array_equal(_sign_backward(x, g), ste_ref(x, g))


def test_ste_errors():
    x = np.zeros((2, 70), F32)
    with pytest.raises(ValueError):
        core.ste_mask_pack(x, np.zeros((2, 1), np.uint64))
    with pytest.raises(ValueError):
        core.ste_mask_pack(x, np.zeros((1, 2), np.uint64))


# ---------------------------------------------------------------------------
# Stochastic binarization
# ---------------------------------------------------------------------------
def stoch(x, seed, counter):
    x = np.ascontiguousarray(x, dtype=F32)
    rows, k = x.shape
    dst = np.full((rows, kwords(k)), 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    core.pack_stochastic(x, seed, counter, dst)
    _, pad = words_to_bits(dst, k)
    assert not pad.any(), "pad bits set"
    return dst


def test_stochastic_deterministic_every_isa(restore_isa, restore_num_threads):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1.2, 1.2, (7, 130)).astype(F32)
    ref = stoch(x, 42, 1000)
    for name in pybnn.available_isas():
        pybnn.set_isa(name)
        for th in (1, 3):
            pybnn.set_num_threads(th)
            np.testing.assert_array_equal(stoch(x, 42, 1000), ref, err_msg="isa %s" % name)


def test_stochastic_seeds_and_counters_differ():
    x = np.zeros((1, 1000), F32)
    a, b, c = stoch(x, 1, 0), stoch(x, 2, 0), stoch(x, 1, 1)
    assert (a != b).sum() >= 15
    assert (a != c).sum() >= 15
    ba, bb, bc = (words_to_bits(w, 1000)[0][0] for w in (a, b, c))
    agree = int((ba == bb).sum())
    assert abs(agree - 500) <= 5 * math.sqrt(250)
    # counter 1 element i is index i + 1 = counter 0 element i + 1
    np.testing.assert_array_equal(bc[:-1], ba[1:])


@pytest.mark.parametrize("k", [1, 63, 64, 65, 130])
@pytest.mark.parametrize("counter", [0, 123456789, 2**64 - 5])
def test_stochastic_counter_advance_is_concatenation(k, counter):
    rng = np.random.default_rng(k)
    x = rng.uniform(-1.2, 1.2, (7, k)).astype(F32)
    whole = stoch(x, 77, counter)
    top = stoch(x[:3], 77, counter)
    bottom = stoch(x[3:], 77, (counter + 3 * k) % 2**64)
    np.testing.assert_array_equal(np.vstack([top, bottom]), whole)
    for r in range(7):
        np.testing.assert_array_equal(stoch(x[r:r + 1], 77, (counter + r * k) % 2**64), whole[r:r + 1])


@settings(deadline=None)
@given(rows1=st.integers(1, 4), rows2=st.integers(1, 4), k=st.integers(1, 200),
       seed=st.integers(0, 2**64 - 1), counter=st.integers(0, 2**64 - 1))
def test_stochastic_concatenation_hypothesis(rows1, rows2, k, seed, counter):
    rng = np.random.default_rng(k)
    x = rng.uniform(-1.5, 1.5, (rows1 + rows2, k)).astype(F32)
    whole = stoch(x, seed, counter)
    again = stoch(x, seed, counter)
    np.testing.assert_array_equal(whole, again)
    parts = np.vstack([stoch(x[:rows1], seed, counter),
                       stoch(x[rows1:], seed, (counter + rows1 * k) % 2**64)])
    np.testing.assert_array_equal(parts, whole)


@pytest.mark.parametrize("value,bit", [
    (-1.0, 1), (float(np.nextafter(F32(-1), F32(-2))), 1), (-2.0, 1), (-np.inf, 1),
    (float(-np.finfo(F32).max), 1),
    (1.0, 0), (float(ONE_UP), 0), (2.0, 0), (np.inf, 0), (float(np.finfo(F32).max), 0),
    (np.nan, 0), (-np.nan, 0),
])
def test_stochastic_saturation_and_nan(value, bit):
    k = 4096
    x = np.full((2, k), value, dtype=F32)
    for seed in (0, 1, 0xDEADBEEF):
        bits, _ = words_to_bits(stoch(x, seed, 99), k)
        assert np.all(bits == bool(bit))


@pytest.mark.parametrize("x", [-0.5, 0.0, 0.5, -0.9, 0.75])
def test_stochastic_frequency(x):
    rows, k = 50, 4001
    n = rows * k
    bits, _ = words_to_bits(stoch(np.full((rows, k), x, F32), 0xFEED, 0), k)
    p = (x + 1) / 2
    plus = 1 - bits.mean()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(plus - p) <= 5 * sigma, (plus, p, sigma)


def test_stochastic_frequency_per_element_mixed_row():
    # a row of different probabilities, many counters: each column's
    # frequency of +1 is close to (x+1)/2
    k, reps = 33, 6000
    xs = np.linspace(-1.0, 1.0, k).astype(F32)
    x = np.tile(xs, (reps, 1))
    bits, _ = words_to_bits(stoch(x, 3, 12345), k)
    p = (xs.astype(np.float64) + 1) / 2
    plus = 1 - bits.mean(axis=0)
    sigma = np.sqrt(p * (1 - p) / reps)
    assert np.all(np.abs(plus - p) <= 5 * sigma + 1e-12), (plus, p)


def test_stochastic_errors():
    with pytest.raises(ValueError):
        core.pack_stochastic(np.zeros((2, 65), F32), 0, 0, np.zeros((2, 1), np.uint64))
    with pytest.raises(ValueError):
        core.pack_stochastic(np.zeros((2, 65), F32), 0, 0, np.zeros((1, 2), np.uint64))
    with pytest.raises(OverflowError):
        core.pack_stochastic(np.zeros((1, 4), F32), -1, 0, np.zeros((1, 1), np.uint64))
    core.pack_stochastic(np.zeros((0, 4), F32), 0, 0, np.zeros((0, 1), np.uint64))
