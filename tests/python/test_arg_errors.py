"""Every public function names the argument it refuses and the value it
got (issue 17).

The walk covers the callables of pybnn.__all__, pybnn.ops.__all__,
pybnn.nn.__all__ (the layer constructors, Sequential, Parameter,
scale_input), pybnn.optim.__all__ (Optimizer and the schedules) and
pybnn.losses.__all__, plus PackedTensor.unpack.  For each argument one bad
value is given (the other arguments valid) and the error must read
"<argument> must ...", as libbnn's own reports do ("padding must be >= 0,
got -1"), and quote the value where it is a scalar.  test_walk_is_complete
fails when a public function or an argument has no case here, so a new
one cannot slip past; NO_BAD_VALUE lists the arguments that accept any
value (flags read as bools).
"""
from __future__ import annotations

import inspect
import io
import re
from pathlib import Path

import numpy as np
import pytest

import pybnn
import pybnn.losses
import pybnn.nn as nn
import pybnn.ops
import pybnn.optim
from pybnn import checkpoint
from pybnn._args import show
from pybnn.recipes import RECIPES, build_model

DATA = Path(__file__).resolve().parent.parent / "data"

# a valid checkpoint, written once per module (_valid_checkpoint)
_CHECKPOINT = {}


def _packed(*shape):
    return pybnn.pack(np.ones(shape, np.float32))


def _readonly(shape, dtype):
    a = np.empty(shape, dtype)
    a.flags.writeable = False
    return a


def _param():
    return nn.Parameter("W", np.zeros((2, 3)))


def _opt():
    return pybnn.optim.Optimizer([_param()])


# Shapes of the valid calls: dense a [3, 10] x w [4, 10]; convolution x
# [1, 5, 5, 3] (packed) with w [2, 3, 3, 3]; u8 first layers x uint8
# [3, 10] / [1, 5, 5, 3] with the same filters.
_A = lambda: _packed(3, 10)                                   # noqa: E731
_WD = lambda: _packed(4, 10)                                  # noqa: E731
_X = lambda: _packed(1, 5, 5, 3)                              # noqa: E731
_WC = lambda: _packed(2, 3, 3, 3)                             # noqa: E731
_XU8 = lambda: np.zeros((3, 10), np.uint8)                    # noqa: E731
_XU8C = lambda: np.zeros((1, 5, 5, 3), np.uint8)              # noqa: E731

_CONV_GEOMETRY = [("stride", 0), ("padding", -1), ("dilation", 0)]

# function -> (the valid arguments, built fresh per call; [(argument, bad value)])
CASES = {
    pybnn.pack: (lambda: dict(x=np.ones(3, np.float32)),
                 [("x", np.zeros(3, bool))]),
    pybnn.PackedTensor: (lambda: dict(words=np.zeros((2, 1), np.uint64), shape=(2, 10)),
                         [("words", np.zeros((2, 1), np.float32)), ("shape", (2, -1))]),
    pybnn.PackedTensor.unpack: (lambda: dict(self=_A()),
                                [("out", np.empty((3, 10), np.float64))]),
    pybnn.bgemm: (lambda: dict(a=_A(), w=_WD()),
                  [("a", np.ones((3, 10))), ("w", _packed(4, 12)),
                   ("out", np.empty((3, 4), np.float32))]),
    pybnn.bgemm_affine: (lambda: dict(a=_A(), w=_WD()),
                         [("a", "a"), ("w", _packed(4, 4, 10)), ("scale", np.ones(3)),
                          ("offset", np.array(["x"] * 4)),
                          ("out", _readonly((3, 4), np.float32))]),
    pybnn.bgemm_threshold: (lambda: dict(a=_A(), w=_WD(), thresh=np.zeros(4, np.int32)),
                            [("a", None), ("w", np.ones((4, 10))), ("thresh", None),
                             ("flip", np.zeros(3)), ("out", np.empty((3, 1), np.int64))]),
    pybnn.fold_threshold: (lambda: dict(scale=[1.0], offset=[0.0], k=5),
                           [("scale", [np.nan]), ("offset", [0.0, 1.0]), ("k", -1)]),
    pybnn.fold_batchnorm: (lambda: dict(gamma=[1.0], beta=[0.0], mean=[0.0], var=[1.0],
                                        eps=1e-5, k=5),
                           [("gamma", [np.nan]), ("beta", [0.0, 1.0]), ("mean", [np.inf]),
                            ("var", [-1.0]), ("eps", -1.0), ("k", "3")]),
    pybnn.isa_supported: (lambda: dict(name="ref"), [("name", 5)]),
    pybnn.set_isa: (lambda: dict(name="ref"), [("name", "avx")]),
    pybnn.set_num_threads: (lambda: dict(n=1), [("n", 0)]),
    pybnn.bconv2d: (lambda: dict(x=_X(), w=_WC()),
                    [("x", np.ones((1, 5, 5, 3))), ("w", _packed(2, 27))] + _CONV_GEOMETRY
                    + [("pad_value", 2), ("out", np.empty((1, 2, 2, 2), np.int32)),
                       ("correction", np.zeros((9, 2), np.float32))]),
    pybnn.bconv2d_affine: (lambda: dict(x=_X(), w=_WC()),
                           [("x", _packed(5, 5, 3)), ("w", _packed(2, 3, 3, 4)),
                            ("scale", np.ones(3)), ("offset", np.array(["x", "y"]))]
                           + _CONV_GEOMETRY
                           + [("pad_value", -1), ("out", np.empty((1, 3, 3, 2), np.int32)),
                              ("correction", np.zeros((9, 2), np.int64))]),
    pybnn.bconv2d_threshold: (lambda: dict(x=_X(), w=_WC(), thresh=np.zeros(2, np.int32)),
                              [("x", "x"), ("w", _packed(2, 9, 9, 3)), ("thresh", None),
                               ("flip", np.zeros(5))] + _CONV_GEOMETRY
                              + [("pad_value", 7), ("out", np.empty((1, 3, 3, 1), np.int32)),
                                 ("correction", [[1.5] * 2] * 9)]),
    pybnn.maxpool2d: (lambda: dict(x=_X(), kernel=2),
                      [("x", np.ones((1, 4, 4, 2), np.float32)), ("kernel", 0),
                       ("stride", 0), ("padding", -1), ("flip", np.zeros(5))]),
    pybnn.gemm_u8: (lambda: dict(x=_XU8(), w=_WD()),
                    [("x", np.ones((3, 10), np.float32)), ("w", _packed(4, 12)),
                     ("scale", np.ones(3)), ("offset", np.array(["x"] * 4)),
                     ("thresh", np.zeros(3, np.int32)), ("flip", np.zeros(4)),
                     ("method", "fast"), ("out", np.empty((3, 4), np.float32))]),
    pybnn.conv2d_u8: (lambda: dict(x=_XU8C(), w=_WC()),
                      [("x", np.zeros((5, 5, 3), np.uint8)), ("w", _packed(2, 3, 3, 5))]
                      + _CONV_GEOMETRY
                      + [("pad_byte", 300), ("scale", np.ones(5)), ("offset", [1.0j, 2.0j]),
                         ("thresh", [0.5, 0.5]), ("flip", [1, 0]), ("method", 3),
                         ("out", np.empty((1, 3, 3, 2), np.uint8))]),
    pybnn.conv2d_output_shape: (lambda: dict(h=5, w=5, kernel=3),
                                [("h", -1), ("w", "5"), ("kernel", 0)] + _CONV_GEOMETRY),
    pybnn.conv2d_correction: (lambda: dict(w=_WC()), [("w", np.ones((2, 3, 3, 3)))]),
    pybnn.load: (lambda: dict(path=str(DATA / "golden.bnn")), [("path", 123)]),
    pybnn.load_checkpoint: (lambda: dict(path=_CHECKPOINT["path"]),
                            [("path", "no/such/checkpoint.npz")]),

    nn.Parameter: (lambda: dict(name="W", value=np.zeros(3)),
                   [("name", 5), ("value", "abc"), ("lr_scale", 0)]),
    nn.BinaryDense: (lambda: dict(in_features=10, out_features=4),
                     [("in_features", 0), ("out_features", 2.5), ("rng", 5),
                      ("backward", "fast"), ("seed", "x")]),
    nn.BinaryConv2d: (lambda: dict(in_channels=3, out_channels=4, kernel=3),
                      [("in_channels", 0), ("out_channels", -1), ("kernel", 0)]
                      + _CONV_GEOMETRY
                      + [("pad_value", 2), ("rng", "r"), ("backward", "x"), ("seed", 1.5)]),
    nn.BatchNorm: (lambda: dict(features=4),
                   [("features", 0), ("kind", "x"), ("eps", 0), ("momentum", 2)]),
    nn.MaxPool2d: (lambda: dict(kernel=2), [("kernel", 0), ("stride", (1, 0))]),
    nn.Activation: (lambda: dict(binary=False),
                    [("stochastic", True), ("seed", "x")]),
    nn.Sign: (lambda: dict(), [("seed", "x")]),
    nn.Dropout: (lambda: dict(), [("p", 1), ("seed", "x")]),
    nn.Sequential: (lambda: dict(layers=[nn.Flatten()]), [("layers", [1])]),
    nn.scale_input: (lambda: dict(x_uint8=np.zeros(3, np.uint8)),
                     [("x_uint8", np.ones(3))]),

    pybnn.optim.Optimizer: (lambda: dict(params=[_param()]),
                            [("params", [1]), ("kind", "sgd"), ("lr", -1), ("beta1", 1),
                             ("beta2", -0.5), ("eps", np.nan), ("gamma", 0),
                             ("threshold", -1)]),
    pybnn.optim.ExponentialDecay: (lambda: dict(optimizer=_opt(), lr_start=0.1, lr_end=0.01,
                                                epochs=3),
                                   [("optimizer", None), ("lr_start", 0), ("lr_end", -1),
                                    ("epochs", 0)]),
    pybnn.optim.StepHalving: (lambda: dict(optimizer=_opt(), lr_start=0.1, every=2),
                              [("optimizer", 1.0), ("lr_start", "x"), ("every", 0)]),
    pybnn.losses.squared_hinge: (lambda: dict(scores=np.zeros((2, 3)), labels=[0, 1]),
                                 [("scores", np.ones(3)), ("labels", np.array([0.5, 1.0]))]),
    pybnn.losses.softmax_cross_entropy: (lambda: dict(scores=np.zeros((2, 3)), labels=[0, 1]),
                                         [("scores", [["a"]]), ("labels", [0, 3])]),
}

# Arguments for which every value is valid: flags read as bools.
NO_BAD_VALUE = {
    (nn.Parameter, "binary"), (nn.BinaryDense, "binary"), (nn.BinaryConv2d, "binary"),
    (nn.Activation, "binary"), (nn.Sign, "stochastic"), (nn.Sequential, "recompute"),
}


@pytest.fixture(scope="module", autouse=True)
def _valid_checkpoint(tmp_path_factory):
    """A small checkpoint of the default recipe, as `pybnn train` writes one."""
    cfg = dict(RECIPES["mnist-mlp-fast"], width=16, seed=0)
    model = build_model(cfg, (28, 28, 1), 0)
    path = str(tmp_path_factory.mktemp("ckpt") / "ok.npz")
    checkpoint.save(path, model, pybnn.optim.Optimizer(model.parameters()),
                    {"config": cfg, "input_shape": [28, 28, 1]})
    _CHECKPOINT["path"] = path


def _public():
    """Every public callable of the walked modules (exception classes aside)."""
    out = {}
    for mod in (pybnn, pybnn.ops, nn, pybnn.optim, pybnn.losses):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not callable(obj) or isinstance(obj, type) and issubclass(obj, BaseException):
                continue
            out[id(obj)] = obj
    out[id(pybnn.PackedTensor.unpack)] = pybnn.PackedTensor.unpack
    return list(out.values())


def _params(f):
    """The named arguments of f (a function or a class's constructor)."""
    sig = inspect.signature(f.__init__ if isinstance(f, type) else f)
    return {p.name for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {"self"}


def _label(f):
    return getattr(f, "__qualname__", getattr(f, "__name__", repr(f)))


def test_walk_is_complete():
    missing = []
    for f in _public():
        params = _params(f)
        if not params:
            continue                       # isa(), HardTanh(), Flatten(), ...
        if f not in CASES:
            missing.append("%s: no cases" % _label(f))
            continue
        covered = {arg for arg, _ in CASES[f][1]} | {a for g, a in NO_BAD_VALUE if g is f}
        if covered != params:
            missing.append("%s: arguments %s uncovered, %s unknown"
                           % (_label(f), sorted(params - covered), sorted(covered - params)))
    assert not missing, "\n".join(missing)


def _walk():
    for f, (good, bad) in CASES.items():
        for arg, value in bad:
            yield pytest.param(f, good, arg, value, id="%s-%s" % (_label(f), arg))


def _call(f, kwargs):
    if "self" in kwargs:                   # a method: bound to the valid object
        obj = kwargs.pop("self")
        return getattr(obj, f.__name__)(**kwargs)
    return f(**kwargs)


@pytest.mark.parametrize("f, good, arg, value", list(_walk()))
def test_error_names_the_argument(restore_isa, restore_num_threads, f, good, arg, value):
    _call(f, good())                       # the valid call works
    kwargs = good()
    kwargs[arg] = value
    with pytest.raises((TypeError, ValueError, OSError)) as info:
        _call(f, kwargs)
    msg = str(info.value)
    if arg == "path" and isinstance(value, str):
        # a file that cannot be read: the message names the file
        assert value in msg, msg
        return
    assert re.search(r"(?<![\w.])%s must\b" % re.escape(arg), msg), \
        "%s(%s=%s): %r does not say '%s must'" % (_label(f), arg, show(value), msg, arg)
    assert "got" in msg, msg
    if isinstance(value, str):
        assert repr(value) in msg, msg
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        assert any(s in msg for s in (repr(value), str(value), repr(float(value)))), msg


# ---------------------------------------------------------------------------
# The examples of the issue, word for word, and the checkpoint errors
# ---------------------------------------------------------------------------
def test_issue_examples():
    x, w = _X(), _WC()
    with pytest.raises(ValueError, match=r"^bconv2d: padding must be >= 0, got -1$"):
        pybnn.bconv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match=r"^bconv2d: stride must be >= 1, got 0$"):
        pybnn.bconv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"^maxpool2d: kernel must be >= 1, got 0$"):
        pybnn.maxpool2d(x, 0)
    # the status code is libbnn's (BNN_ERR_INVALID)
    with pytest.raises(pybnn.BnnValueError) as info:
        pybnn.bconv2d(x, w, padding=(0, 0, 0, -2))
    assert info.value.status == -4 and str(info.value).endswith("got -2")


def _npz_bytes():
    buf = io.BytesIO()
    np.savez(buf, state=np.array("{}"), w=np.zeros((4, 4), np.float32))
    return buf.getvalue()


def _damaged():
    data = _npz_bytes()
    central = data.find(b"PK\x01\x02")
    version = bytearray(data)
    version[central + 6] = 229             # "needs zip version 22.9"
    crc = bytearray(data)
    crc[data.find(b"PK\x03\x04") + 40] ^= 0xFF   # a byte of the first member
    return {"empty": b"", "text": b"not a zip file", "header": data[:4],
            "truncated": data[:len(data) // 2], "no-directory": data[:central],
            "last-byte": data[:-1], "zip-version": bytes(version), "member": bytes(crc),
            "npy": b"\x93NUMPY" + data[6:]}


@pytest.mark.parametrize("kind", sorted(_damaged()))
def test_load_checkpoint_damaged_file(tmp_path, kind):
    path = tmp_path / ("%s.npz" % kind)
    path.write_bytes(_damaged()[kind])
    with pytest.raises(ValueError) as info:
        pybnn.load_checkpoint(str(path))
    msg = str(info.value)
    assert str(path) in msg, msg
    assert "cannot read checkpoint" in msg or "is not a pybnn checkpoint" in msg, msg


def test_load_checkpoint_bad_state(tmp_path):
    path = tmp_path / "bad-state.npz"
    np.savez(path, state=np.array("{not json"))
    with pytest.raises(ValueError, match="is not a pybnn checkpoint") as info:
        pybnn.load_checkpoint(str(path))
    assert str(path) in str(info.value)
    np.savez(path, state=np.array('{"config": {"recipe": 5}, "input_shape": [28, 28, 1]}'))
    with pytest.raises(ValueError, match="cannot build") as info:
        pybnn.load_checkpoint(str(path))
    assert str(path) in str(info.value)
