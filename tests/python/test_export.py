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
from pybnn.deploy.writer import fnv1a64, read_bnn
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


ARRAYS = ("weights", "thresh", "flip", "scale", "offset")


def _check_against_plan(data, model, shape):
    f = read_bnn(data)
    plan = fold_plan(model.layers)
    assert f.header["size"] == len(data)
    assert f.header["input_shape"] == tuple(shape)
    assert f.header["records"] == len(plan) == len(f.records)
    assert f.header["classes"] == plan[-1]["m"]
    assert f.header["format_version"] == 1
    assert f.header["layout_version"] == pybnn.LAYOUT_VERSION
    for rec, want in zip(f.records, plan):
        assert rec["record_size"] % 64 == 0 and rec["file_offset"] % 64 == 0
        for key, value in want.items():
            if key == "name":
                continue
            if key in ARRAYS:
                assert rec[key].dtype == value.dtype, (want["name"], key)
                np.testing.assert_array_equal(rec[key], value, err_msg=want["name"] + " " + key)
            else:
                assert rec[key] == value, (want["name"], key)
        assert set(k for k in rec if k in ARRAYS) == set(k for k in want if k in ARRAYS)
    return f


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
    f = _check_against_plan(data, model, (28, 28, 1))
    assert [(r["type"], r["k"], r["m"]) for r in f.records] == \
        [("dense", 784, 512), ("dense", 512, 512), ("dense", 512, 10)]
    assert f.records[0]["input_u8"] and f.records[2]["scores"]
    # no input shape: the flat input (1, 1, 784)
    flat = model_bytes(model)
    assert read_bnn(flat).header["input_shape"] == (1, 1, 784)
    diff = [i for i in range(len(data)) if flat[i] != data[i]]
    assert len(flat) == len(data) and set(diff) <= set(range(24, 32)) | set(range(36, 48))
    # Sequential.export writes the same bytes
    path = tmp_path / "mlp.bnn"
    assert model.export(str(path), input_shape=(28, 28, 1)) == [str(path)]
    assert path.read_bytes() == data
    with pytest.raises(ValueError, match=r"layer 1 \(BinaryDense\).*k=784.*has 785"):
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


def test_checksum_is_fnv1a_over_the_file_with_a_zero_field():
    model, shape, _ = _conv_net(train_steps=0)
    data = model_bytes(model, shape)
    h = 0xcbf29ce484222325
    for i, b in enumerate(data):
        h = ((h ^ (0 if 24 <= i < 32 else b)) * 0x100000001b3) % (1 << 64)
    assert struct.unpack_from("<Q", data, 24)[0] == h == fnv1a64(data)
    assert fnv1a64(b"") == 0xcbf29ce484222325
    assert fnv1a64(b"a", skip=(0, 0)) == 0xaf63dc4c8601ec8c   # the published FNV-1a 64 of "a"


# ---------------------------------------------------------------------------
# golden file
# ---------------------------------------------------------------------------
def _first_difference(a, b):
    """Where two .bnn byte strings first differ, said in terms of records."""
    n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    where = "header" if n < 64 else "after the header"
    try:
        for i, r in enumerate(read_bnn(b).records):
            if r["file_offset"] <= n < r["file_offset"] + r["record_size"]:
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
    f = read_bnn(DATA / "golden.bnn")
    assert f.header["input_shape"] == (9, 7, 3) and f.header["classes"] == 10
    assert [r["type"] for r in f.records] == ["conv", "maxpool", "conv", "flatten", "dense",
                                              "dense"]
    assert f.records[0]["input_u8"] and f.records[-1]["scores"]
    assert f.records[0]["c"] % 64 and f.records[2]["c"] > 64 and f.records[2]["o"] % 64
    assert f.records[0]["flip"].any()                     # OR-pooled channels
    assert len(f.header) and f.header["size"] < 32 * 1024


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
# the reader's rejections
# ---------------------------------------------------------------------------
def _reseal(buf):
    """bytes with the checksum recomputed (to test the checks after it)."""
    buf = bytearray(buf)
    struct.pack_into("<Q", buf, 24, fnv1a64(buf))
    return bytes(buf)


def _patched(data, offset, fmt, value, reseal=True):
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return _reseal(buf) if reseal else bytes(buf)


@pytest.fixture(scope="module")
def valid():
    """The golden bytes and their parsed records."""
    data = (DATA / "golden.bnn").read_bytes()
    return data, read_bnn(data).records


def _rejects(data, match):
    with pytest.raises(ValueError, match=match):
        read_bnn(data)


@pytest.mark.parametrize("cut", [0, 1, 8, 63, 64, 65, 127, 128, 1000, -64, -1])
def test_truncated(valid, cut):
    data = valid[0]
    n = cut if cut >= 0 else len(data) + cut
    _rejects(data[:n], "shorter than the 64-byte header|truncated")


def test_extended(valid):
    _rejects(valid[0] + bytes(64), "extra bytes")
    # extended with a matching size field and checksum: the records end early
    data = _patched(valid[0] + bytes(64), 16, "<Q", len(valid[0]) + 64)
    _rejects(data, "records end at byte %d but the file has %d" % (len(valid[0]),
                                                                    len(valid[0]) + 64))


@pytest.mark.parametrize("where", [0, 9, 20, 24, 31, 40, 60, 64, 70, 200, 5000, -1])
def test_flipped_byte_fails_the_checksum(valid, where):
    data = bytearray(valid[0])
    pos = where if where >= 0 else len(data) + where
    data[pos] ^= 0x10
    match = "wrong magic" if pos < 8 else "format version" if pos < 12 else \
        "says \\d+ bytes" if 16 <= pos < 24 else "checksum mismatch"
    _rejects(bytes(data), match)


def test_wrong_magic(valid):
    _rejects(_reseal(b"BNNMODEX" + valid[0][8:]), "wrong magic")
    _rejects(_reseal(b"bnnmodel" + valid[0][8:]), "wrong magic")


@pytest.mark.parametrize("offset,value,match", [
    (8, 0, "format version 0"), (8, 2, "format version 2"),
    (12, 0, "layout version 0"), (12, 2, "layout version 2")])
def test_wrong_versions(valid, offset, value, match):
    _rejects(_patched(valid[0], offset, "<I", value), match)


@pytest.mark.parametrize("delta", [64, -64, 1, -1, 8])
def test_record_size_off(valid, delta):
    data, records = valid
    for rec in records:
        off = rec["file_offset"]
        bad = _patched(data, off + 8, "<Q", rec["record_size"] + delta)
        _rejects(bad, r"record %d \(%s\) at offset %d: record size %d, but its parameters need "
                 "exactly %d" % (records.index(rec), rec["type"], off, rec["record_size"] + delta,
                                 rec["record_size"]))


def test_chain_that_does_not_connect(valid):
    data, recs = valid
    conv2, flat, dense, last = recs[2], recs[3], recs[4], recs[5]
    # conv2 reads c=71 (the same words per pixel, so the record size holds)
    _rejects(_patched(data, conv2["file_offset"] + 16, "<I", 71),
             r"record 2 \(conv\): reads c=71 channels but its input has 70")
    # a different image height: the dense layer after flatten no longer fits
    _rejects(_patched(data, 36, "<I", 7), r"record 4 \(dense\): reads k=390 features but the "
             r"previous record gives 260")
    # classes in the header against the last layer
    _rejects(_patched(data, 48, "<I", 11), "m=10 outputs but the header says 11 classes")
    # the max-pool made a flatten: the second conv then reads a flat input
    _rejects(_reseal(_flatten_pool(data, recs[1]["file_offset"])),
             r"record 2 \(conv\): a conv layer reads an NHWC input")
    # the flatten made a 1x1 max-pool: the dense then reads an NHWC input
    buf = bytearray(data)
    struct.pack_into("<I", buf, flat["file_offset"], 3)
    struct.pack_into("<4I", buf, flat["file_offset"] + 16, 1, 1, 1, 1)
    _rejects(_reseal(buf), r"record 4 \(dense\): a dense layer reads a flat input, but the "
             r"previous record gives \[3, 2, 65\]")
    # first record without INPUT_U8, INPUT_U8 elsewhere, SCORES elsewhere
    _rejects(_patched(data, 4 + 64, "<I", 0), r"record 0 \(conv\): the first record must")
    _rejects(_patched(data, conv2["file_offset"] + 4, "<I", 1),
             r"record 2 \(conv\): only the first record may read the uint8 image")
    _rejects(_patched(data, conv2["file_offset"] + 4, "<I", 2), "conv layer cannot carry SCORES")
    _rejects(_patched(data, recs[0]["file_offset"] + 4, "<I", 5), "8-bit first layer cannot "
             r"pad with \+1")
    _rejects(_patched(data, dense["file_offset"] + 4, "<I", 4), "PAD_ONE is only for conv")
    # the last record without SCORES reads its scale/offset as thresh/flip
    # (the same size for m=10): the float bytes land in flip's padding; a
    # missing record (count - 1) leaves bytes after the records
    _rejects(_patched(data, last["file_offset"] + 4, "<I", 0), "padding after flip is not zero")
    _rejects(_patched(data, 32, "<I", 5), "records end at byte")
    _rejects(_patched(data, 32, "<I", 7), "ends inside the record header")
    # a kernel larger than its padded input
    _rejects(_patched(data, conv2["file_offset"] + 16 + 4 * 6, "<I", 5),
             r"record 2 \(conv\): the kernel does not fit")


def _assemble(records, hwc=(1, 1, 8), classes=2, count=None):
    """A .bnn file from (type, flags, params, arrays) tuples, written here
    independently of pybnn.export: arrays are bytes, each padded to 64."""
    body = b""
    for kind, flags, params, arrays in records:
        arr = b"".join(a + bytes(-len(a) % 64) for a in arrays)
        body += struct.pack("<IIQ12I", kind, flags, 64 + len(arr),
                            *(list(params) + [0] * (12 - len(params)))) + arr
    n = 64 + len(body)
    head = struct.pack("<8sIIQQIIIII", b"BNNMODEL", 1, pybnn.LAYOUT_VERSION, n, 0,
                       len(records) if count is None else count, *hwc, classes)
    return _reseal(head + bytes(12) + body)


def _dense(k, m, flags, scores=False):
    w = bytes(8 * m * ((k + 63) // 64))
    tail = [bytes(4 * m), bytes(4 * m)] if scores else [bytes(4 * m), bytes(m)]
    return (1, flags, (k, m), [w] + tail)


def test_hand_assembled_files():
    ok = _assemble([_dense(8, 3, 1), _dense(3, 2, 2, scores=True)])
    f = read_bnn(ok)
    assert [r["type"] for r in f.records] == ["dense", "dense"]
    # a single dense layer reading the image and giving the scores
    assert read_bnn(_assemble([_dense(8, 2, 3, scores=True)])).records[0]["scores"]
    # a max-pool after a dense layer, a flatten after a dense layer
    _rejects(_assemble([_dense(8, 3, 1), (3, 0, (1, 1, 1, 1), []),
                        _dense(3, 2, 2, scores=True)]),
             r"record 1 \(maxpool\): a max-pool must follow a conv")
    _rejects(_assemble([_dense(8, 3, 1), (4, 0, (), []), _dense(3, 2, 2, scores=True)]),
             r"record 1 \(flatten\): a flatten reads the NHWC output")
    # dense k against the image, SCORES in the middle, no SCORES at the end
    _rejects(_assemble([_dense(9, 3, 1), _dense(3, 2, 2, scores=True)]),
             r"record 0 \(dense\): reads k=9 features but the input image 1x1x8 has 8")
    _rejects(_assemble([_dense(8, 3, 3, scores=True), _dense(3, 2, 2, scores=True)]),
             r"record 0 \(dense\): only the last record may carry SCORES")
    _rejects(_assemble([_dense(8, 3, 1), _dense(3, 2, 0)]),
             r"record 1 \(dense\): the last record must be a dense layer with SCORES")
    # a conv after a dense layer
    conv = (2, 0, (3, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
            [bytes(8 * 2), bytes(4 * 2), bytes(2)])
    _rejects(_assemble([_dense(8, 3, 1), conv, _dense(3, 2, 2, scores=True)]),
             r"record 1 \(conv\): a conv layer reads an NHWC input")


def _flatten_pool(data, off):
    buf = bytearray(data)
    struct.pack_into("<I", buf, off, 4)                    # type flatten
    struct.pack_into("<4I", buf, off + 16, 0, 0, 0, 0)     # no parameters
    return bytes(buf)


def test_other_malformed_fields(valid):
    data, recs = valid
    conv1, pool, dense = recs[0], recs[1], recs[4]
    _rejects(_patched(data, 32, "<I", 0), "0 layer records")
    _rejects(_patched(data, 32, "<I", 4097), "4097 layer records")
    _rejects(_patched(data, 44, "<I", 0), "input channels is 0")
    _rejects(_patched(data, 56, "<I", 1), "reserved header bytes")
    _rejects(_patched(data, conv1["file_offset"], "<I", 9), "unknown record type 9")
    _rejects(_patched(data, conv1["file_offset"] + 4, "<I", 1 | 8), "unknown flag bits 0x8")
    _rejects(_patched(data, pool["file_offset"] + 4, "<I", 4), "takes no flags")
    _rejects(_patched(data, pool["file_offset"] + 16 + 4 * 4, "<I", 1),
             "unused parameter 4 is 1")
    _rejects(_patched(data, pool["file_offset"] + 16, "<I", 0), "parameter kh = 0")
    _rejects(_patched(data, conv1["file_offset"] + 16 + 4 * 4, "<I", 1 << 31),
             "parameter stride_h = 2147483648")
    # flip values other than 0/1
    flip_at = conv1["file_offset"] + conv1["record_size"] - 128   # u8 flip[70], 128 bytes
    _rejects(_patched(data, flip_at, "<B", 2), "flip values must be 0 or 1")
    # non-zero bytes between arrays, pad bits of the weights
    _rejects(_patched(data, flip_at + 70, "<B", 1), "padding after flip is not zero")
    _rejects(_patched(data, conv1["file_offset"] + 64 + 7, "<B", 0x80),
             "weight pad bits past element 3")
    _rejects(_patched(data, dense["file_offset"] + 64 + 6 * 8 + 7, "<B", 0x80),
             "weight pad bits past element 390")
    # the golden itself passes every check
    read_bnn(data)


def test_reader_takes_paths_and_buffers(tmp_path, valid):
    data = valid[0]
    p = tmp_path / "g.bnn"
    p.write_bytes(data)
    a = read_bnn(p)
    b = read_bnn(str(p))
    c = read_bnn(memoryview(data))
    d = read_bnn(bytearray(data))
    assert a.header == b.header == c.header == d.header
    header, records = a
    assert header is a.header and records is a.records
    p.write_bytes(data[:100])
    with pytest.raises(ValueError, match=" is not a valid .bnn file: the header says"):
        read_bnn(p)
    with pytest.raises(ValueError, match="the data is not a valid .bnn file"):
        read_bnn(data[:100])
    with pytest.raises(OSError):
        read_bnn(tmp_path / "missing.bnn")


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
         r"layer 0 \(BinaryDense\): the last record must be a dense layer with SCORES"),
        ([BinaryConv2d(2, 4, 3, rng=rng), BatchNorm(4)],
         r"last block must be BinaryDense, BatchNorm \(layer 0 \(BinaryConv2d\)\)"),
        ([BinaryConv2d(2, 4, 3, padding=1, pad_value=1, rng=rng), BatchNorm(4), Sign(),
          Flatten(), BinaryDense(4 * 25, 3, rng=rng), BatchNorm(3)],
         r"must use zero padding: layer 0 \(BinaryConv2d\)"),
        ([BinaryDense(20, 16, rng=rng), BatchNorm(16), Sign(), Flatten(),
          BinaryDense(16, 4, rng=rng), BatchNorm(4)],
         r"layer 3 \(Flatten\): a flatten reads the NHWC output"),
        ([BinaryConv2d(2, 4, 3, rng=rng), BatchNorm(4), Sign(), BinaryDense(4, 3, rng=rng),
          BatchNorm(3)], r"layer 3 \(BinaryDense\): a dense layer reads a flat input"),
    ]
    for layers, match in cases:
        with pytest.raises(ValueError, match="cannot export this model: .*" + match):
            model_bytes(Sequential(layers).eval(), (5, 5, 2) if isinstance(
                layers[0], BinaryConv2d) else None)


def test_input_shape_errors():
    model, shape, _ = _conv_net(train_steps=0)
    with pytest.raises(ValueError, match=r"input_shape=\(H, W, C\)"):
        model_bytes(model)
    with pytest.raises(ValueError, match=r"layer 0 \(BinaryConv2d\): reads c=3 channels"):
        model_bytes(model, (8, 7, 4))
    with pytest.raises(ValueError, match=r"layer 4 \(MaxPool2d\): window 2x2 larger than its "
                       r"1x1 input"):
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
    assert read_bnn(out).header["input_shape"] == (28, 28, 1)

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
