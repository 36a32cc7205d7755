"""The C model runtime (pybnn.load / bnn_model_run) against the trained
model in eval(): identical classes and scores, for an MLP trained briefly
on the bundled MNIST sample and for a small conv net (3-channel input,
channel counts not multiples of 64, zero padding, max-pooling)."""
import numpy as np
import pytest

import pybnn
from pybnn import data as datasets
from pybnn.losses import squared_hinge
from pybnn.nn import BatchNorm, BinaryConv2d, BinaryDense, Flatten, MaxPool2d, Sequential, Sign
from pybnn.optim import Optimizer
from pybnn.deploy import BnnFormatError
from pybnn.recipes import RECIPES, build_model


def _train(model, x, y, steps, batch, seed=0, lr=0.003):
    opt = Optimizer(model.parameters(), "adam", lr=lr)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, len(x), batch)
        opt.zero_grad()
        _, g = squared_hinge(model.forward(x[idx]), y[idx])
        model.backward(g)
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def mnist_mlp():
    x, y, xt, yt = datasets.load_mnist()          # the bundled sample
    cfg = dict(RECIPES["mnist-mlp"], width=512, layers=2)
    model = _train(build_model(cfg, x.shape[1:], 0), x, y, steps=60, batch=100)
    return model, xt, yt


def _assert_same(model, deployed, x):
    s_py, c_py = model.predict(x)
    s_c, c_c = deployed.predict(x)
    assert c_c.dtype == np.int64 and s_c.dtype == np.float32
    np.testing.assert_array_equal(c_c, c_py)
    np.testing.assert_allclose(s_c, s_py, rtol=1e-6, atol=1e-6)
    return s_c, c_c


def test_mlp_runtime_matches_eval_on_the_sample_test_set(mnist_mlp, tmp_path):
    model, xt, yt = mnist_mlp
    path = tmp_path / "mlp.bnn"
    model.export(str(path), input_shape=(28, 28, 1))
    deployed = pybnn.load(str(path))
    assert deployed.input_shape == (28, 28, 1) and deployed.classes == 10
    _, classes = _assert_same(model, deployed, xt)
    assert (classes == yt).mean() > 0.5          # it learned something: a real model
    # the same bytes from memory, and flat [N, 784] input, give the same
    again = pybnn.load(path.read_bytes())
    np.testing.assert_array_equal(again.predict(xt.reshape(len(xt), -1))[1], classes)


def test_runtime_threads_and_batches_agree(mnist_mlp):
    model, xt, _ = mnist_mlp
    deployed = pybnn.load(_bytes(model, (28, 28, 1)))
    before = pybnn.get_num_threads()
    try:
        pybnn.set_num_threads(1)
        s1, c1 = deployed.predict(xt[:300], batch_size=7)
        pybnn.set_num_threads(2)
        s2, c2 = deployed.predict(xt[:300], batch_size=300)
    finally:
        pybnn.set_num_threads(before)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(c1, c2)


def _bytes(model, shape):  # noqa: E302
    from pybnn.deploy import model_bytes
    return model_bytes(model, shape)


def test_conv_runtime_matches_eval():
    rng = np.random.default_rng(4)
    model = Sequential([
        BinaryConv2d(3, 70, 3, padding=1, rng=rng), MaxPool2d(2), BatchNorm(70), Sign(),
        BinaryConv2d(70, 65, 3, padding=1, rng=rng), BatchNorm(65), Sign(),
        BinaryConv2d(65, 66, 3, padding=(1, 2), rng=rng), MaxPool2d(2), BatchNorm(66), Sign(),
        Flatten(), BinaryDense(2 * 3 * 66, 40, rng=rng), BatchNorm(40), Sign(),
        BinaryDense(40, 10, rng=rng), BatchNorm(10)])
    x = rng.integers(0, 256, (400, 9, 9, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 400)
    _train(model, x, y, steps=8, batch=50, lr=0.01)
    deployed = pybnn.load(_bytes(model, (9, 9, 3)))
    assert deployed.info["layers"] == 8    # 3 conv, 2 pool, flatten, 2 dense
    _assert_same(model, deployed, rng.integers(0, 256, (300, 9, 9, 3), dtype=np.uint8))


def test_runtime_rejects_bad_files_and_inputs(mnist_mlp):
    model, xt, _ = mnist_mlp
    data = _bytes(model, (28, 28, 1))
    for bad in (b"", data[:63], data[:len(data) // 2], data[:-1], data + b"\0",
                b"NOTAMODL" + data[8:]):
        with pytest.raises(BnnFormatError):
            pybnn.load(bad)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x10
    with pytest.raises(BnnFormatError, match="corrupt"):
        pybnn.load(bytes(flipped))
    with pytest.raises(OSError, match="cannot read model file"):
        pybnn.load("/nonexistent/dir/model.bnn")
    deployed = pybnn.load(data)
    with pytest.raises(TypeError, match="uint8"):
        deployed.predict(xt.astype(np.float32))
    with pytest.raises(ValueError, match="expects uint8 images"):
        deployed.predict(xt[:, :27])
    s, c = deployed.predict(xt[:0])
    assert s.shape == (0, 10) and c.shape == (0,)


def test_golden_file_gives_its_committed_outputs():
    """tests/data/golden.bnn through the C runtime: exactly the scores and
    classes stored beside it (so a change of the format or of the
    runtime's arithmetic breaks this test)."""
    import pathlib
    data = pathlib.Path(__file__).resolve().parent.parent / "data"
    want = np.load(data / "golden_expected.npz")
    deployed = pybnn.load(str(data / "golden.bnn"))
    scores, classes = deployed.predict(want["x"])
    np.testing.assert_array_equal(scores, want["scores"])
    np.testing.assert_array_equal(classes, want["classes"])


def test_model_run_checks_buffers_and_threads_share_a_model(mnist_mlp):
    """The low-level run refuses buffers of the wrong size (it would write
    past them), and several Python threads can predict with one loaded
    model at once (each has its own workspace; the GIL is released)."""
    from concurrent.futures import ThreadPoolExecutor
    model, xt, _ = mnist_mlp
    deployed = pybnn.load(_bytes(model, (28, 28, 1)))
    x = np.ascontiguousarray(xt[:8].reshape(8, -1))
    with pytest.raises(ValueError, match="scores must be"):
        deployed._model.run(x, np.empty((8, 9), np.float32), np.empty(8, np.int32))
    with pytest.raises(ValueError, match="bytes"):
        deployed._model.run(x[:, :700].copy(), np.empty((8, 10), np.float32),
                            np.empty(8, np.int32))
    want = deployed.predict(xt)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: deployed.predict(xt, batch_size=b), [7, 100, 333, 1000]))
    for s, c in got:
        np.testing.assert_array_equal(s, want[0])
        np.testing.assert_array_equal(c, want[1])


def test_tiny_file_cannot_ask_for_huge_load_tables():
    """One output over 8M input bytes: a 1 MB file whose prepared 8-bit
    layer would take about 600 MB is refused (docs/model-format.md)."""
    from pybnn import _core
    rng = np.random.default_rng(5)
    model = Sequential([BinaryDense(1000 * 1000 * 8, 1, rng=rng), BatchNorm(1)]).eval()
    # the writer checks what it writes with the loaders' pass: it refuses too
    with pytest.raises(ValueError, match="tables prepared at load time would take 576000320"):
        _bytes(model, (1000, 1000, 8))
    # the same file put together by hand (zero weights, scale and offset)
    flags = _core.RECORD_FLAGS["input_u8"] | _core.RECORD_FLAGS["scores"]
    size, _ = _core.model_record_layout("dense", flags, [8 * 10 ** 6, 1])
    total = _core.MODEL_HEADER_BYTES + size
    data = bytearray(_core.model_header(total, 1, 1000, 1000, 8, 1)
                     + _core.model_record_header("dense", flags, [8 * 10 ** 6, 1])
                     + bytes(size - _core.MODEL_RECORD_HEADER_BYTES))
    _core.model_seal(data)
    assert len(data) < 2 << 20
    with pytest.raises(BnnFormatError, match="tables prepared at load time"):
        pybnn.load(bytes(data))


def test_bench_infer_runs_and_reports(tmp_path):
    """`pybnn bench infer` at a small width: one row per batch size with the
    runtime's time (and numpy's), and the file-size line."""
    from pybnn.bench import bench_infer
    lines = []
    res = bench_infer(rounds=1, width=64, out=lines.append)
    assert [r["batch"] for r in res["rows"]] == [1, 100]
    for r in res["rows"]:
        assert r["libbnn runtime"] > 0 and r["numpy float32"] > 0
    assert res["file_bytes"] >= res["content_bytes"] > 0
    assert any(l.startswith("file:") for l in lines)
    path = tmp_path / "m.bnn"
    from pybnn.bench.kernels import _mlp_for_infer
    _mlp_for_infer(width=64).export(str(path), input_shape=(28, 28, 1))
    res2 = bench_infer(rounds=1, model_path=str(path), out=lines.append)
    assert res2["file_bytes"] == path.stat().st_size and len(res2["rows"]) == 2


_KERNELS = ("gemm", "conv2d", "gemm_u8", "conv2d_u8", "maxpool2d_bits", "maxpool2d_i32",
            "bn_forward_eval", "pack_rows_f32", "pack_rows_i8", "unpack_rows_f32")


def test_eval_predict_is_the_runtime_by_construction(mnist_mlp, monkeypatch):
    """eval() prediction of a binary network is one call of the C runner on
    the exported bytes: with every Python-reachable kernel binding (XNOR
    GEMM, convolution, 8-bit layer, pooling, batch norm, packing) made to
    fail, predict() still answers, through DeployedModel.predict, and gives
    the scores of the file export writes (the bytes are built once, before
    the patches: folding packs the weights)."""
    from pybnn import _core
    from pybnn.deploy import runtime
    model, xt, _ = mnist_mlp
    model.eval()
    want = pybnn.load(_bytes(model, (28, 28, 1))).predict(xt)
    model.deployed()           # export's folding (packing, thresholds) happens here, once
    calls = []
    real = runtime.DeployedModel.predict

    def spy(self, x, batch_size=1024):
        calls.append(len(x))
        return real(self, x, batch_size)

    def forbidden(*args, **kwargs):
        raise AssertionError("a Python-side kernel call in eval() prediction")

    monkeypatch.setattr(runtime.DeployedModel, "predict", spy)
    for name in _KERNELS:
        monkeypatch.setattr(_core, name, forbidden)
    scores, classes = model.predict(xt, batch_size=333)
    assert calls == [len(xt)]
    np.testing.assert_array_equal(scores, want[0])
    np.testing.assert_array_equal(classes, want[1])
    # the folded-layer evaluator of earlier versions does not exist
    import pybnn.nn as nn
    for cls in (nn.Sequential, nn.BinaryDense, nn.BinaryConv2d, nn.BatchNorm):
        assert not any(hasattr(cls, a) for a in ("_fold", "_fold_plan", "_folded"))
    # and the training path is what the patches stop
    with pytest.raises(AssertionError, match="Python-side kernel"):
        model.forward(xt[:2], training=False)
