"""The .bnn model file (docs/model-format.md): the writer against the folded
plan, the strict reader's rejections, the golden file, the C-array
format and the `pybnn export` / `pybnn info FILE` commands."""
import importlib.util
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import pybnn
from pybnn import cli
from pybnn.deploy import export, fold_plan, model_bytes
from oracles import fnv1a64

from pybnn import _core
from pybnn.deploy import BnnFormatError
from pybnn.deploy.inspect import check, describe
from pybnn.deploy.writer import ARRAYS, PARAMS
from pybnn.losses import squared_hinge
from pybnn.nn import (BatchNorm, BinaryConv2d, BinaryDense, Dropout, Flatten, MaxPool2d,
                      HardTanh, Sequential, Sign)
from pybnn.optim import Optimizer
from pybnn.recipes import RECIPES, build_model

DATA = Path(__file__).resolve().parent.parent / "data"


def _make_golden_module():
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden():
    """(model, input_shape, make_golden module) rebuilt from the script."""
    mg = _make_golden_module()
    model, shape = mg.build()
    return model, shape, mg


def _conv_net(seed=1, train_steps=2):
    """A conv net with every record type, lightly trained."""
    rng = np.random.default_rng(seed)
    model = Sequential([
        BinaryConv2d(3, 66, (3, 2), padding=(1, 1, 0, 1), rng=rng), BatchNorm(66), Sign(),
        BinaryConv2d(66, 20, 3, stride=2, padding=1, pad_value=1, rng=rng), MaxPool2d(2),
        BatchNorm(20), Sign(),
        Flatten(), BinaryDense(2 * 2 * 20, 70, rng=rng), BatchNorm(70, "shift"), Sign(),
        Dropout(0.2, seed=3), BinaryDense(70, 5, rng=rng), BatchNorm(5)])
    x = rng.integers(0, 256, (24, 8, 7, 3), dtype=np.uint8)
    y = rng.integers(0, 5, 24)
    opt = Optimizer(model.parameters(), "adam", lr=0.01)
    for _ in range(train_steps):
        opt.zero_grad()
        model.backward(squared_hinge(model.forward(x), y)[1])
        opt.step()
    return model.eval(), (8, 7, 3), x


def _mlp(width=512, layers=2, seed=0):
    cfg = {k: v for k, v in RECIPES["mnist-mlp"].items() if k != "help"}
    cfg.update(width=width, layers=layers)
    return build_model(cfg, (28, 28, 1), seed).eval()


def _parse(data):
    """(header dict, records) of a valid file: the header fields read here
    from their documented offsets, the records from the C loader
    (bnn_model_get_layer) with their arrays cut out where
    bnn_model_record_layout_of puts them."""
    magic, ver, layout, size, checksum, count, H, W, C, classes = struct.unpack_from(
        "<8sIIQQIIIII", data)
    assert magic == b"BNNMODEL" and not any(data[52:64])
    header = dict(format_version=ver, layout_version=layout, size=size, checksum=checksum,
                  records=count, input_shape=(H, W, C), classes=classes)
    records = []
    for rec in pybnn.load(data).layers():
        kind, off = rec["type"], rec["file_offset"]
        flags = sum(_core.RECORD_FLAGS[f] for f in rec["flags"])
        r = dict(type=kind, file_offset=off, record_size=rec["record_bytes"],
                 **{f: f in rec["flags"] for f in _core.RECORD_FLAGS},
                 **dict(zip(PARAMS[kind], rec["params"])))
        size_, layout_ = _core.model_record_layout(kind, flags, rec["params"])
        assert size_ == rec["record_bytes"]
        for (name, dt), (aoff, nbytes) in zip(ARRAYS.get((kind, r["scores"]), ()), layout_):
            r[name] = np.frombuffer(data, dt, nbytes // np.dtype(dt).itemsize, off + aoff) \
                .astype(np.dtype(dt).newbyteorder("="))
        records.append(r)
    return header, records


def _check_against_plan(data, model, shape):
    header, records = _parse(data)
    plan = fold_plan(model.layers)
    assert header["size"] == len(data)
    assert header["input_shape"] == tuple(shape)
    assert header["records"] == len(plan) == len(records)
    assert header["classes"] == plan[-1]["m"]
    assert header["format_version"] == _core.MODEL_FORMAT_VERSION == 1
    assert header["layout_version"] == pybnn.LAYOUT_VERSION
    for rec, want in zip(records, plan):
        assert rec["record_size"] % 64 == 0 and rec["file_offset"] % 64 == 0
        for key, value in want.items():
            if key == "name":
                continue
            if isinstance(value, np.ndarray):
                assert rec[key].dtype == value.dtype, (want["name"], key)
                np.testing.assert_array_equal(rec[key], value.reshape(-1),
                                              err_msg=want["name"] + " " + key)
            else:
                assert rec[key] == value, (want["name"], key)
    return header, records


# ---------------------------------------------------------------------------
# plan and writer
# ---------------------------------------------------------------------------
def test_fold_plan_records():
    model, shape, _ = _conv_net()
    plan = fold_plan(model.layers)
    assert [r["type"] for r in plan] == ["conv", "conv", "maxpool", "flatten", "dense", "dense"]
    first, second, pool, _, hidden, last = plan
    assert first["input_u8"] and not first["pad_one"] and not first["scores"]
    assert second["pad_one"] and not second["input_u8"]
    assert (first["pad_top"], first["pad_bottom"], first["pad_left"], first["pad_right"]) == \
        (1, 1, 0, 1)
    assert (first["kh"], first["kw"]) == (3, 2) and second["stride_h"] == 2
    assert first["weights"].dtype == np.uint64 and first["weights"].shape == (66, 3, 2, 1)
    assert second["weights"].shape == (20, 3, 3, 2)
    assert (pool["kh"], pool["kw"], pool["stride_h"], pool["stride_w"]) == (2, 2, 2, 2)
    assert hidden["weights"].shape == (70, 2) and hidden["thresh"].dtype == np.int32
    assert hidden["flip"].dtype == np.uint8 and set(np.unique(hidden["flip"])) <= {0, 1}
    assert last["scores"] and last["scale"].dtype == np.float32 and last["m"] == 5
    assert "thresh" not in last
    # the words are pack(W)'s
    np.testing.assert_array_equal(first["weights"], pybnn.pack(model.layers[0].W.value).words)
    # the same numbers drive predict(): thresholds from fold_threshold with
    # the first layer's scale / 128 and k * 128
    sc, off = model.layers[1].affine()
    t, f = pybnn.fold_threshold(sc / 128, off, 128 * 3 * 2 * 3)
    np.testing.assert_array_equal(first["thresh"], t)
    np.testing.assert_array_equal(first["flip"], f.astype(np.uint8))


def test_conv_round_trip_reproduces_the_plan():
    model, shape, x = _conv_net()
    data = model_bytes(model, shape)
    assert len(data) % 64 == 0
    assert data[:8] == b"BNNMODEL"
    _check_against_plan(data, model, shape)
    # the file's scores are the ones predict() gives (same plan)
    scores, _ = model.predict(x)
    assert scores.shape == (24, 5)


def test_mlp_784_512x2_10_exports_and_parses(tmp_path):
    model = _mlp()
    assert any(isinstance(layer, Dropout) for layer in model.layers)   # mnist-mlp style
    data = model_bytes(model, (28, 28, 1))
    _, records = _check_against_plan(data, model, (28, 28, 1))
    assert [(r["type"], r["k"], r["m"]) for r in records] == \
        [("dense", 784, 512), ("dense", 512, 512), ("dense", 512, 10)]
    assert records[0]["input_u8"] and records[2]["scores"]
    # no input shape: the flat input (1, 1, 784)
    flat = model_bytes(model)
    assert pybnn.load(flat).input_shape == (1, 1, 784)
    diff = [i for i in range(len(data)) if flat[i] != data[i]]
    assert len(flat) == len(data) and set(diff) <= set(range(24, 32)) | set(range(36, 48))
    # Sequential.export writes the same bytes
    path = tmp_path / "mlp.bnn"
    assert model.export(str(path), input_shape=(28, 28, 1)) == [str(path)]
    assert path.read_bytes() == data
    with pytest.raises(ValueError, match=r"cannot export this model: layer 1 \(BinaryDense\): "
                                         r"record 0 \(dense\) at byte \d+: .*784.*785"):
        model_bytes(model, (1, 1, 785))


def test_export_is_deterministic_and_atomic(tmp_path):
    model, shape, _ = _conv_net()
    a = model_bytes(model, shape)
    assert model_bytes(model, shape) == a
    model2, _, _ = _conv_net()                     # rebuilt from the same seeds
    assert model_bytes(model2, shape) == a
    path = tmp_path / "m.bnn"
    export(model, path, input_shape=shape)
    first = path.read_bytes()
    export(model, str(path), input_shape=shape)    # replaces the file
    assert path.read_bytes() == first == a
    assert sorted(os.listdir(tmp_path)) == ["m.bnn"]  # no temporary left behind
    if os.name == "posix":                         # the mode open() would give, not 0600
        mask = os.umask(0)
        os.umask(mask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_record_bindings_take_integers_only():
    assert _core.model_record_layout("dense", 0, [64, 2])[0] == 64 + 64 + 64 + 64
    for bad in ([64.9, 2], [64, True + 0.5], ["64", 2]):
        with pytest.raises(TypeError):
            _core.model_record_layout("dense", 0, bad)
    with pytest.raises(ValueError, match="u32"):
        _core.model_record_header("dense", 0, [1 << 32, 2])
    with pytest.raises(ValueError, match="unknown record type"):
        _core.model_record_layout("pool", 0, [2, 2, 2, 2])
    with pytest.raises(ValueError, match="shorter than a header"):
        _core.model_seal(bytearray(63))


def test_checksum_is_fnv1a_over_the_file_with_a_zero_field():
    model, shape, _ = _conv_net(train_steps=0)
    data = model_bytes(model, shape)
    assert struct.unpack_from("<Q", data, 24)[0] == fnv1a64(data) == _core.model_checksum(data)
    assert _core.model_checksum(b"") == fnv1a64(b"") == 0xcbf29ce484222325
    # the published FNV-1a 64 of "a" (one byte: no checksum field to skip)
    assert _core.model_checksum(b"a") == fnv1a64(b"a") == 0xaf63dc4c8601ec8c
    buf = bytearray(data)
    buf[24:32] = bytes(8)
    _core.model_seal(buf)
    assert bytes(buf) == data


# ---------------------------------------------------------------------------
# golden file
# ---------------------------------------------------------------------------
def _first_difference(a, b):
    """Where two .bnn byte strings first differ, said in terms of records."""
    n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    where = "header" if n < 64 else "after the header"
    try:
        for i, r in enumerate(pybnn.load(b).layers()):
            if r["file_offset"] <= n < r["file_offset"] + r["record_bytes"]:
                where = "record %d (%s), byte %d of it" % (i, r["type"], n - r["file_offset"])
    except ValueError:
        pass
    return "lengths %d vs %d, first difference at byte %d: %s" % (len(a), len(b), n, where)


def test_golden_file_is_reproduced_byte_for_byte(golden):
    model, shape, _ = golden
    want = (DATA / "golden.bnn").read_bytes()
    got = model_bytes(model, shape)
    assert got == want, ("the exported golden model differs from tests/data/golden.bnn (%s); "
                         "if the format changed on purpose, bump the format version in "
                         "docs/model-format.md and rerun tests/data/make_golden.py"
                         % _first_difference(want, got))


def test_golden_file_parses_and_covers_every_record_type():
    header, records = _parse((DATA / "golden.bnn").read_bytes())
    assert header["input_shape"] == (9, 7, 3) and header["classes"] == 10
    assert [r["type"] for r in records] == ["conv", "maxpool", "conv", "flatten", "dense",
                                            "dense"]
    assert records[0]["input_u8"] and records[-1]["scores"]
    assert records[0]["c"] % 64 and records[2]["c"] > 64 and records[2]["o"] % 64
    assert records[0]["flip"].any()                     # OR-pooled channels
    assert header["size"] < 32 * 1024


def test_golden_expected_scores(golden):
    model, _, mg = golden
    exp = np.load(DATA / "golden_expected.npz")
    np.testing.assert_array_equal(exp["x"], mg.expected_input())
    assert exp["x"].dtype == np.uint8 and exp["x"].shape == (16, 9, 7, 3)
    scores, classes = model.predict(exp["x"])
    assert exp["scores"].dtype == np.float32
    np.testing.assert_array_equal(scores, exp["scores"])
    np.testing.assert_array_equal(classes, exp["classes"])
    assert len(np.unique(exp["classes"])) > 1


def test_make_golden_main_writes_both_files(tmp_path, golden):
    mg = golden[2]
    assert mg.main(str(tmp_path)) == 0
    assert (tmp_path / "golden.bnn").read_bytes() == (DATA / "golden.bnn").read_bytes()
    with np.load(tmp_path / "golden_expected.npz") as z:
        np.testing.assert_array_equal(z["scores"], np.load(DATA / "golden_expected.npz")["scores"])


# ---------------------------------------------------------------------------
# hostile files: one parser (bnn_model_check), so `pybnn info` and
# `pybnn.load` accept and refuse exactly the same bytes, and every refusal
# names the byte offset and the reason
# ---------------------------------------------------------------------------
def _reseal(buf):
    """bytes with the checksum recomputed (to reach the checks after it)."""
    buf = bytearray(buf)
    _core.model_seal(buf)         # the checksum test holds it to the FNV-1a oracle
    return bytes(buf)


def _patched(data, offset, fmt, value, reseal=True):
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return _reseal(buf) if reseal else bytes(buf)


@pytest.fixture(scope="module")
def valid():
    """The golden bytes and their records."""
    data = (DATA / "golden.bnn").read_bytes()
    return data, _parse(data)[1]


@pytest.fixture(scope="module")
def small_mlp():
    rng = np.random.default_rng(3)
    model = Sequential([BinaryDense(20, 70, rng=rng), BatchNorm(70), Sign(),
                        BinaryDense(70, 4, rng=rng), BatchNorm(4)]).eval()
    return model_bytes(model, (4, 5, 1))


def _agree(data):
    """The checker's report, after asserting that pybnn.load and `pybnn
    info`'s describe() both accept the bytes or both refuse them with the
    checker's report, its message and the offset in their error."""
    rep = check(data)
    errors = []
    for read in (pybnn.load, describe):
        try:
            read(data)
            errors.append(None)
        except BnnFormatError as e:
            errors.append(e)
    if rep["status"] == 0:
        assert errors == [None, None], errors
        return rep
    for e in errors:
        assert e is not None, ("accepted a file the checker refuses", rep)
        assert e.report == rep
        msg = str(e)
        assert "is not a valid .bnn file: " + rep["message"] in msg
        if rep["offset"] >= 0:
            assert "at byte %d:" % rep["offset"] in msg, msg
    return rep


def _rejects(data, field, record=-1, offset=None, status=_core.ERR_FORMAT):
    rep = _agree(data)
    assert (rep["status"], rep["field"], rep["record"]) == (status, field, record), rep
    if offset is not None:
        assert rep["offset"] == offset, rep
    return rep


def test_truncated_at_every_offset(valid, small_mlp):
    for data in (valid[0], small_mlp):
        for n in range(len(data)):
            rep = _agree(data[:n])
            assert rep["field"] == "size" and rep["status"] != 0, (n, rep)
        assert _agree(data)["status"] == 0


HEADER_FIELDS = [(8, "<I", "format_version"), (12, "<I", "layout_version"), (16, "<Q", "size"),
                 (24, "<Q", "checksum"), (32, "<I", "records"), (36, "<I", "input_h"),
                 (40, "<I", "input_w"), (44, "<I", "input_c"), (48, "<I", "classes")]
HUGE = {"<I": (0, 2, 65536, (1 << 24) + 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1),
        "<Q": (0, 63, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)}


@pytest.mark.parametrize("offset,fmt,field", HEADER_FIELDS, ids=[f[2] for f in HEADER_FIELDS])
def test_header_fields_set_to_huge_values(valid, small_mlp, offset, fmt, field):
    for data in (valid[0], small_mlp):
        for value in HUGE[fmt]:
            if value == struct.unpack_from(fmt, data, offset)[0]:
                continue
            for reseal in (False, True) if field != "checksum" else (False,):
                rep = _agree(_patched(data, offset, fmt, value, reseal))
                assert rep["status"] != 0, (field, value, reseal)
                if reseal and field != "checksum":
                    # where the checks before it pass, the field itself is named
                    assert rep["offset"] in (offset, -1) or rep["record"] >= 0, rep


def test_record_fields_set_to_huge_values(valid):
    data, records = valid
    for i, rec in enumerate(records):
        off = rec["file_offset"]
        for pos in range(off, off + 64, 4):
            for value in HUGE["<I"]:
                if value == struct.unpack_from("<I", data, pos)[0]:
                    continue
                rep = _agree(_patched(data, pos, "<I", value))
                if rep["status"] != 0:
                    assert rep["record"] >= i or rep["record"] == -1, (i, pos, rep)


def test_random_bit_flips(valid, small_mlp):
    rng = np.random.default_rng(2026)
    refused = 0
    for data in (valid[0], small_mlp):
        for _ in range(200):
            buf = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                bit = int(rng.integers(0, 8 * len(buf)))
                buf[bit // 8] ^= 1 << (bit % 8)
            for candidate in (bytes(buf), _reseal(buf)):
                refused += _agree(candidate)["status"] != 0
    assert refused > 300          # unsealed flips always fail the checksum


def test_geometry_beyond_the_runtime_limits_is_refused_by_both(valid):
    """Readers once disagreed here: a max-pool stride (or a conv kernel)
    above the runtime's 2^16 passed a separate Python reader that only
    asked for 31 bits, while the C loader refused it."""
    data, records = valid
    pool = records[1]
    for value in (65537, 1 << 24, (1 << 31) - 1):
        _rejects(_patched(data, pool["file_offset"] + 16 + 12, "<I", value), "stride_w", 1,
                 pool["file_offset"] + 16 + 12)
    conv = records[2]
    _rejects(_patched(data, conv["file_offset"] + 16 + 8, "<I", 65537), "kh", 2,
             conv["file_offset"] + 16 + 8)


def test_named_rejections(valid):
    data, recs = valid
    n = len(data)
    conv1, pool, conv2, flat, dense, last = recs
    _rejects(data + bytes(64), "size", offset=16)
    _rejects(_patched(data + bytes(64), 16, "<Q", n + 64), "records")
    _rejects(_reseal(b"BNNMODEX" + data[8:]), "magic", offset=0)
    _rejects(_patched(data, 8, "<I", 2), "format_version", offset=8, status=_core.ERR_UNSUPPORTED)
    _rejects(_patched(data, 12, "<I", 9), "layout_version", offset=12,
             status=_core.ERR_UNSUPPORTED)
    _rejects(_patched(data, 40, "<I", 5, reseal=False), "checksum", offset=24)
    _rejects(_patched(data, 56, "<I", 1), "reserved", offset=56)
    _rejects(_patched(data, 32, "<I", 0), "records", offset=32)
    _rejects(_patched(data, conv1["file_offset"], "<I", 9), "type", 0, conv1["file_offset"])
    _rejects(_patched(data, conv1["file_offset"] + 4, "<I", 1 | 8), "flags", 0,
             conv1["file_offset"] + 4)
    for delta in (64, -64, 1, 8):
        _rejects(_patched(data, dense["file_offset"] + 8, "<Q", dense["record_size"] + delta),
                 "record_size", 4, dense["file_offset"] + 8)
    _rejects(_patched(data, conv2["file_offset"] + 16, "<I", 71), "c", 2,
             conv2["file_offset"] + 16)
    _rejects(_patched(data, 48, "<I", 11), "m", 5)
    flip_at = conv1["file_offset"] + conv1["record_size"] - 128      # u8 flip[70]
    _rejects(_patched(data, flip_at, "<B", 2), "flip", 0, flip_at)
    _rejects(_patched(data, dense["file_offset"] + 64 + 6 * 8 + 7, "<B", 0x80),
             "weights pad bits", 4)


def test_cli_info_and_load_name_the_offset(tmp_path, capsys, valid):
    data, recs = valid
    bad = tmp_path / "bad.bnn"
    bad.write_bytes(_patched(data, recs[1]["file_offset"] + 16 + 12, "<I", 1 << 24))
    with pytest.raises(BnnFormatError) as info:
        pybnn.load(str(bad))
    msg = str(info.value)
    assert msg.startswith(str(bad)) and "at byte %d" % (recs[1]["file_offset"] + 28) in msg
    assert cli.main(["info", str(bad)]) == 1
    assert msg in capsys.readouterr().err
    with pytest.raises(OSError, match="cannot read model file"):
        pybnn.load(tmp_path / "missing.bnn")
    assert cli.main(["info", str(tmp_path / "missing.bnn")]) == 1
    assert "cannot read model file" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# models the format cannot hold
# ---------------------------------------------------------------------------
def _tiny(mode="bnn", binary=True):
    rng = np.random.default_rng(0)
    last_binary = mode != "fp"
    binary = binary and last_binary
    return Sequential([BinaryDense(20, 16, binary=binary, rng=rng), BatchNorm(16),
                       Sign() if mode == "bnn" else HardTanh(),
                       BinaryDense(16, 4, binary=last_binary, rng=rng), BatchNorm(4)]).eval()


@pytest.mark.parametrize("mode", ["bc", "fp"])
def test_non_bnn_modes_are_rejected(tmp_path, mode):
    with pytest.raises(ValueError, match="cannot export a '%s'-mode model" % mode):
        model_bytes(_tiny(mode))
    with pytest.raises(ValueError, match="'%s'-mode" % mode):
        _tiny(mode).export(str(tmp_path / "x.bnn"))
    assert not os.listdir(tmp_path)


def test_float_layers_and_bad_orders_are_rejected():
    with pytest.raises(ValueError, match=r"binary weights in layer 0 \(BinaryDense\)"):
        model_bytes(_tiny(binary=False))
    rng = np.random.default_rng(0)
    cases = [
        ([BinaryDense(20, 16, rng=rng), Sign(), BatchNorm(16), BinaryDense(16, 4, rng=rng),
          BatchNorm(4)], r"BatchNorm after layer 0 \(BinaryDense\)"),
        ([BinaryDense(20, 16, rng=rng), BatchNorm(16), BinaryDense(16, 4, rng=rng),
          BatchNorm(4)], r"Sign after layer 1 \(BatchNorm\)"),
        ([BatchNorm(20), BinaryDense(20, 4, rng=rng), BatchNorm(4)],
         r"layer 0 \(BatchNorm\) is not where a dense or conv layer"),
        ([BinaryDense(20, 4, rng=rng), BatchNorm(4), Sign()],
         r"layer 0 \(BinaryDense\): record 0 \(dense\) at byte 68: the last record must give "
         r"the scores"),
        ([BinaryConv2d(2, 4, 3, rng=rng), BatchNorm(4)],
         r"last block must be BinaryDense, BatchNorm \(layer 0 \(BinaryConv2d\)\)"),
        ([BinaryConv2d(2, 4, 3, padding=1, pad_value=1, rng=rng), BatchNorm(4), Sign(),
          Flatten(), BinaryDense(4 * 25, 3, rng=rng), BatchNorm(3)],
         r"must use zero padding: layer 0 \(BinaryConv2d\)"),
        ([BinaryDense(20, 16, rng=rng), BatchNorm(16), Sign(), Flatten(),
          BinaryDense(16, 4, rng=rng), BatchNorm(4)],
         r"layer 3 \(Flatten\): record 1 \(flatten\) at byte \d+: a flatten reads an NHWC input"),
        ([BinaryConv2d(2, 4, 3, rng=rng), BatchNorm(4), Sign(), BinaryDense(4, 3, rng=rng),
          BatchNorm(3)], r"layer 3 \(BinaryDense\): record 1 \(dense\) at byte \d+: a dense layer reads a "
         r"flat input"),
    ]
    for layers, match in cases:
        with pytest.raises(ValueError, match="cannot export this model: .*" + match):
            model_bytes(Sequential(layers).eval(), (5, 5, 2) if isinstance(
                layers[0], BinaryConv2d) else None)


def test_input_shape_errors():
    model, shape, _ = _conv_net(train_steps=0)
    with pytest.raises(ValueError, match=r"input_shape=\(H, W, C\)"):
        model_bytes(model)
    with pytest.raises(ValueError, match=r"layer 0 \(BinaryConv2d\): record 0 \(conv\) at byte 80: c = 3, "
                       r"but its input has 4 channels"):
        model_bytes(model, (8, 7, 4))
    with pytest.raises(ValueError, match=r"layer 4 \(MaxPool2d\): record 2 \(max-pool\) at byte "
                       r"\d+: a 2-row window on a 1-row input"):
        model_bytes(model, (1, 1, 3))
    for bad in [(8, 7), (0, 7, 3), "abc", (8, 7, 3, 1)]:
        with pytest.raises(ValueError, match="input_shape"):
            model_bytes(model, bad)
    with pytest.raises(TypeError, match="Sequential"):
        model_bytes([BinaryDense(2, 2)])
    with pytest.raises(ValueError, match="format"):
        export(model, "x.onnx", shape, format="onnx")
    with pytest.raises(ValueError, match="C format only"):
        export(model, "x.bnn", shape, name="foo")


# ---------------------------------------------------------------------------
# the C array
# ---------------------------------------------------------------------------
def _c_compiler():
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _parse_c_array(text, name):
    body = text.split("%s[" % name, 1)[1].split("= {", 1)[1].split("};", 1)[0]
    body = body.split("#endif", 1)[-1]
    return bytes(int(tok, 16) for tok in body.replace(",", " ").split())


def test_c_format_matches_the_file(tmp_path, golden):
    model, shape, _ = golden
    paths = export(model, tmp_path / "golden-net.c", input_shape=shape, format="c")
    assert paths == [str(tmp_path / "golden-net.h"), str(tmp_path / "golden-net.c")]
    h = (tmp_path / "golden-net.h").read_text()
    c = (tmp_path / "golden-net.c").read_text()
    data = (DATA / "golden.bnn").read_bytes()
    assert "extern const unsigned char golden_net[%d];" % len(data) in h
    assert "extern const unsigned long golden_net_size;" in h
    assert "bnn_model_arena_size(golden_net, golden_net_size, &bytes)" in h
    assert "bnn_model_init(arena, arena_bytes, golden_net, golden_net_size, &model)" in h
    assert "__attribute__((aligned(64)))" in c and "_Alignas(64)" in c
    assert "golden_net_size = %dUL;" % len(data) in c
    assert _parse_c_array(c, "golden_net") == data
    assert sorted(os.listdir(tmp_path)) == ["golden-net.c", "golden-net.h"]


def test_c_names(tmp_path):
    model = _tiny()
    assert export(model, tmp_path / "m", format="c", name="my_model") == \
        [str(tmp_path / "m.h"), str(tmp_path / "m.c")]
    assert "my_model[" in (tmp_path / "m.c").read_text()
    export(model, tmp_path / "3d.bnn", format="c")
    assert "bnn_3d[" in (tmp_path / "3d.c").read_text()
    for bad in ("1abc", "a-b", "", "a b"):
        with pytest.raises(ValueError, match="identifier"):
            export(model, tmp_path / "m.c", format="c", name=bad)


def test_c_format_compiles_and_holds_the_bytes(tmp_path, golden):
    cc = _c_compiler()
    if cc is None:
        pytest.skip("no C compiler found")
    model, shape, _ = golden
    export(model, tmp_path / "golden_model.c", input_shape=shape, format="c")
    r = subprocess.run([cc, "-c", "-std=c99", "-Wall", "-Werror", "-o",
                        str(tmp_path / "golden_model.o"), str(tmp_path / "golden_model.c")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # a program that checks the alignment and writes the array out
    (tmp_path / "dump.c").write_text(
        '#include <stdint.h>\n#include <stdio.h>\n#include "golden_model.h"\n'
        "int main(int argc, char **argv)\n{\n"
        "    FILE *f;\n"
        "    if (argc != 2 || ((uintptr_t)golden_model & 63) != 0) return 2;\n"
        "    if (sizeof golden_model != golden_model_size) return 3;\n"
        '    f = fopen(argv[1], "wb");\n'
        "    if (f == NULL) return 4;\n"
        "    if (fwrite(golden_model, 1, golden_model_size, f) != golden_model_size) return 5;\n"
        "    return fclose(f) == 0 ? 0 : 6;\n}\n")
    exe = tmp_path / "dump"
    r = subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-o", str(exe),
                        str(tmp_path / "dump.c"), str(tmp_path / "golden_model.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "dumped.bnn"
    r = subprocess.run([str(exe), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert out.read_bytes() == (DATA / "golden.bnn").read_bytes()


def test_c_header_compiles_as_cxx(tmp_path):
    cxx = next((c for c in (os.environ.get("CXX"), "c++", "g++", "clang++")
                if c and shutil.which(c)), None)
    if cxx is None:
        pytest.skip("no C++ compiler found")
    export(_tiny(), tmp_path / "tiny.c", format="c")
    (tmp_path / "use.cpp").write_text('#include "tiny.h"\n'
                                      "unsigned long f() { return tiny_size + tiny[0]; }\n")
    r = subprocess.run([cxx, "-c", "-Wall", "-Werror", "-o", str(tmp_path / "use.o"),
                        str(tmp_path / "use.cpp")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------
# pybnn export / pybnn info FILE
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from pybnn.train import train
    out = tmp_path_factory.mktemp("run")
    train("mnist-mlp-fast", epochs=1, width=32, limit=300, out=str(out), progress=False,
          log=lambda *a: None)
    return out / "best.npz"


def test_cli_export(tmp_path, checkpoint, capsys):
    out = tmp_path / "mnist.bnn"
    assert cli.main(["export", str(checkpoint), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    model = pybnn.load_checkpoint(str(checkpoint))
    data = model_bytes(model, (28, 28, 1))
    assert out.read_bytes() == data
    assert "%d bytes" % len(data) in text
    float_bytes = 4 * sum(p.value.size for p in model.parameters())
    assert "float32 take %d bytes" % float_bytes in text
    assert pybnn.load(out).input_shape == (28, 28, 1)

    assert cli.main(["export", str(checkpoint), "-o", str(tmp_path / "c" / "net.c"),
                     "--format", "c", "--name", "mnist_net"]) == 1   # no such folder
    assert "error" in capsys.readouterr().err
    os.mkdir(tmp_path / "c")
    assert cli.main(["export", str(checkpoint), "-o", str(tmp_path / "c" / "net.c"),
                     "--format", "c", "--name", "mnist_net"]) == 0
    assert _parse_c_array((tmp_path / "c" / "net.c").read_text(), "mnist_net") == data
    assert "net.h and" in capsys.readouterr().out

    assert cli.main(["export", str(checkpoint), "-o", str(out), "--name", "x"]) == 1
    assert "--format c" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a checkpoint")
    assert cli.main(["export", str(junk), "-o", str(out)]) == 1
    assert "checkpoint" in capsys.readouterr().err
    for name, write in (("array.npy", lambda p: np.save(p, np.zeros(3))),
                        ("cut.npz", lambda p: p.write_bytes(checkpoint.read_bytes()[:999])),
                        ("other.npz", lambda p: np.savez(p, a=np.zeros(2)))):
        bad = tmp_path / name
        write(bad)
        assert cli.main(["export", str(bad), "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("pybnn: error: ") and str(bad) in err, err


def test_cli_info_file(tmp_path, capsys):
    assert cli.main(["info", str(DATA / "golden.bnn")]) == 0
    text = capsys.readouterr().out
    assert "input: uint8 9x7x3" in text and "10 classes" in text and "6 records" in text
    lines = [l for l in text.splitlines() if l.startswith("   ")]
    assert [l.split()[1] for l in lines] == ["conv", "maxpool", "conv", "flatten", "dense",
                                            "dense"]
    assert "INPUT_U8" in lines[0] and "SCORES" in lines[-1] and "-> 3x2x65" in lines[2]
    bad = tmp_path / "bad.bnn"
    bad.write_bytes((DATA / "golden.bnn").read_bytes()[:-1])
    assert cli.main(["info", str(bad)]) == 1
    assert "not a valid .bnn file" in capsys.readouterr().err
    assert cli.main(["info"]) == 0                       # the library report is unchanged
    assert "kernels:" in capsys.readouterr().out
