"""`pybnn train`: the default run on the bundled sample, exact resume after
SIGINT, checkpoints and their errors, the recorded configuration
(metrics.json and checkpoints), stochastic activations and augmentation
resuming exactly, and checkpoints older than a setting resuming."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pybnn
from pybnn.data import load_mnist


def _pybnn():
    exe = shutil.which("pybnn")
    assert exe, "the pybnn console script is not installed"
    return exe


def _run(*args, timeout=600):
    return subprocess.run([_pybnn(), *args], capture_output=True, text=True, timeout=timeout)


def test_default_run_reaches_90_percent(tmp_path):
    """The README's main job, as CI runs it: the default recipe on the
    bundled sample, fixed seed, BNN mode."""
    out = tmp_path / "run"
    r = _run("train", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "best validation error" in r.stdout
    for name in ("best.npz", "last.npz", "metrics.csv", "metrics.json"):
        assert (out / name).exists()
    model = pybnn.load_checkpoint(str(out / "best.npz"))
    _, _, xt, yt = load_mnist()
    _, classes = model.predict(xt)
    assert np.mean(classes == yt) >= 0.90
    metrics = json.loads((out / "metrics.json").read_text())
    hist = metrics["history"]
    assert len(hist) == 10 and hist[-1]["loss"] < hist[0]["loss"]
    with np.load(out / "last.npz") as z:
        state = json.loads(str(z["state"]))
    assert metrics["config"] == state["config"]
    assert metrics["best_epoch"] == state["best_epoch"]
    assert metrics["data"] == dict(train=5400, validation=600, test=1000)
    # every setting that shapes the run, named
    for key, want in dict(recipe="mnist-mlp-fast", mode="bnn", optimizer="adam", bn="standard",
                          stochastic=False, augment=False, lr_start=0.003, width=1024,
                          epochs=10, batch_size=100, seed=0, limit=None).items():
        assert metrics["config"][key] == want, key
    assert metrics["config"]["backward"] in ("float", "int8")
    # the .bnn file export writes; the memory plan's slope
    assert metrics["model_bytes_of"] == "bnn"
    assert metrics["model_bytes"] == len(pybnn.deploy.model_bytes(model, (28, 28, 1)))
    assert metrics["train_bytes_per_sample"] > 0
    # the loss within each epoch, by tenths of its 54 steps (6 or 5 each)
    for h in hist:
        parts = h["loss_by_tenth"]
        sizes = np.diff([0] + [-(-54 * (j + 1) // 10) for j in range(10)])
        assert len(parts) == 10
        assert np.isclose(np.dot(parts, sizes) / 54, h["loss"], rtol=1e-4)
    assert hist[0]["loss_by_tenth"][-1] < hist[0]["loss_by_tenth"][0]


def _arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "state"}


def test_resume_after_sigint_is_exact(tmp_path):
    args = ["train", "--epochs", "3", "--width", "96", "--no-progress", "--threads", "1"]
    full = tmp_path / "full"
    r = _run(*args, "--out", str(full))
    assert r.returncode == 0, r.stderr
    part = tmp_path / "part"
    p = subprocess.Popen([_pybnn(), *args, "--out", str(part)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (part / "last.npz").exists():          # wait for epoch 1 to finish
        assert p.poll() is None and time.time() < deadline, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    if p.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert p.returncode == 130 and "--resume" in err
    state = json.loads(str(np.load(part / "last.npz")["state"]))
    assert 1 <= state["epoch"] < 3
    r = _run(*args, "--out", str(part), "--resume")
    assert r.returncode == 0, r.stderr
    a, b = _arrays(full / "last.npz"), _arrays(part / "last.npz")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    ha = json.loads((full / "metrics.json").read_text())["history"]
    hb = json.loads((part / "metrics.json").read_text())["history"]
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]


def test_bad_inputs(tmp_path):
    r = _run("train", "--out", str(tmp_path / "r"), "--resume")
    assert r.returncode == 1 and "nothing to resume" in r.stderr
    r = _run("train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "missing"))
    assert r.returncode == 1 and "does not exist" in r.stderr
    # a checkpoint from another architecture
    a = tmp_path / "a"
    assert _run("train", "--epochs", "1", "--width", "32", "--out", str(a),
                "--no-progress").returncode == 0
    r = _run("train", "--epochs", "2", "--width", "48", "--out", str(a), "--resume")
    assert r.returncode == 1 and "different configuration" in r.stderr
    assert "width (saved 32, asked 48)" in r.stderr and "epochs (saved 1, asked 2)" in r.stderr
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        pybnn.load_checkpoint(str(bad))


def test_backward_auto_records_the_arithmetic_it_chose(tmp_path):
    """--backward auto trains with the backward this machine's kernels get
    (pybnn.nn.dense.resolve_backward) and the checkpoint names that one, so
    a resume or a load rebuilds the same arithmetic."""
    from pybnn.nn.dense import resolve_backward
    out = tmp_path / "auto"
    r = _run("train", "--epochs", "1", "--width", "32", "--limit", "600", "--backward", "auto",
             "--threads", "1", "--no-progress", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with np.load(out / "last.npz") as z:
        config = json.loads(str(z["state"]))["config"]
    want = resolve_backward("auto")
    assert config.get("backward", "float") == want
    model = pybnn.load_checkpoint(str(out / "last.npz"))
    kinds = {l.backward_kind for l in model.layers if hasattr(l, "backward_kind") and l.binary}
    assert kinds == {want}


def test_default_backward_is_auto_and_resume_keeps_the_checkpoints(tmp_path):
    """A new run without --backward trains with "auto"; --resume without it
    continues with the arithmetic the checkpoint was trained with (here an
    explicit float run), instead of failing on a changed configuration."""
    from pybnn.nn.dense import resolve_backward
    common = ("--width", "32", "--limit", "600", "--threads", "1", "--no-progress")
    new = tmp_path / "new"
    r = _run("train", "--epochs", "1", *common, "--out", str(new))
    assert r.returncode == 0, r.stderr
    with np.load(new / "last.npz") as z:
        assert json.loads(str(z["state"]))["config"].get("backward", "float") == \
            resolve_backward("auto")
    old = tmp_path / "float"
    r = _run("train", "--epochs", "1", *common, "--backward", "float", "--out", str(old))
    assert r.returncode == 0, r.stderr
    r = _run("train", "--epochs", "2", *common, "--resume", "--out", str(old))
    assert r.returncode != 0 and "different configuration" in r.stderr   # epochs changed
    # the same configuration resumes: the saved float arithmetic is kept
    r = _run("train", "--epochs", "1", *common, "--resume", "--out", str(old))
    assert r.returncode == 0, r.stderr
    with np.load(old / "last.npz") as z:
        assert json.loads(str(z["state"]))["config"]["backward"] == "float"


# ---- the recorded options: stochastic activations, augmentation -------------------

def _stop_after_first_epoch(msg):
    """A train() log that interrupts the run once epoch 1 is saved (as
    Ctrl-C there would)."""
    if msg.startswith("epoch 1/"):
        raise KeyboardInterrupt


def _state(path):
    with np.load(path) as z:
        return json.loads(str(z["state"]))


def _assert_same_run(a, b):
    """Two run folders hold the same checkpoints and history (not timings)."""
    for name in ("last.npz", "best.npz"):
        x, y = _arrays(a / name), _arrays(b / name)
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(x[k], y[k]), (name, k)
    untimed = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    ha = json.loads((a / "metrics.json").read_text())
    hb = json.loads((b / "metrics.json").read_text())
    assert untimed(ha["history"]) == untimed(hb["history"])
    assert ha["config"] == hb["config"] and ha["best_epoch"] == hb["best_epoch"]


def _interrupted_and_resumed(tmp_path, **kw):
    """(a run of kw trained straight through, the same run stopped after its
    first epoch and resumed) as folders."""
    from pybnn.train import train
    full, part = tmp_path / "full", tmp_path / "part"
    quiet = lambda msg: None                          # noqa: E731
    train(out=str(full), progress=False, log=quiet, **kw)
    with pytest.raises(KeyboardInterrupt):
        train(out=str(part), progress=False, log=_stop_after_first_epoch, **kw)
    assert _state(part / "last.npz")["epoch"] == 1
    train(out=str(part), progress=False, log=quiet, resume=True, **kw)
    return full, part


def test_threads_limit_numpys_blas_too(tmp_path, restore_num_threads):
    """train(threads=n) sets libbnn's threads and those of numpy's BLAS, which
    runs the float products (otherwise a one-thread run of a float baseline
    takes every CPU)."""
    from threadpoolctl import threadpool_info
    from pybnn.train import train

    def blas_threads():
        return {m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("threadpoolctl sees no BLAS under this numpy")
    for n in (1, 2):
        train(recipe="mnist-mlp-fast", epochs=1, width=32, limit=300, threads=n, mode="fp",
              progress=False, out=str(tmp_path / str(n)), log=lambda *a: None)
        assert pybnn.get_num_threads() == n and blas_threads() == {n}


def test_stochastic_is_recorded_and_resumes_exactly(tmp_path, restore_num_threads):
    """--stochastic: the signs are drawn (the run differs from the
    deterministic one), each binary activation from its own generator,
    whose position the checkpoint holds, so a resumed run is the same run."""
    kw = dict(recipe="mnist-mlp-fast", epochs=3, width=48, limit=600, threads=1,
              backward="float")
    full, part = _interrupted_and_resumed(tmp_path, stochastic=True, **kw)
    _assert_same_run(full, part)
    metrics = json.loads((full / "metrics.json").read_text())
    assert metrics["config"]["stochastic"] is True
    assert _state(full / "last.npz")["config"]["stochastic"] is True
    model = pybnn.load_checkpoint(str(full / "last.npz"))
    signs = [l for l in model.layers if l.family == "activation"]
    assert len(signs) == 3 and all(l.stochastic for l in signs)
    assert len({l.seed for l in signs}) == 3           # a generator per layer
    counters = [int(v) for k, v in _arrays(full / "last.npz").items() if k.endswith(".counter")]
    # 3 epochs of 540 images x 48 units, in each of the three layers
    assert counters == [3 * 540 * 48] * 3
    from pybnn.train import train
    det = tmp_path / "det"
    train(out=str(det), progress=False, log=lambda m: None, **kw)
    hd = json.loads((det / "metrics.json").read_text())["history"]
    assert [h["loss"] for h in hd] != [h["loss"] for h in metrics["history"]]


def test_stochastic_needs_binary_activations(tmp_path):
    from pybnn.train import train
    for mode in ("bc", "fp"):
        with pytest.raises(ValueError, match="stochastic.*mode %r" % mode):
            train(mode=mode, stochastic=True, out=str(tmp_path / mode))
        assert not (tmp_path / mode).exists()
    r = _run("train", "--mode", "bc", "--stochastic", "--out", str(tmp_path / "cli"))
    assert r.returncode == 1 and "stochastic" in r.stderr and "'bc'" in r.stderr


def _fake_cifar10(directory, n_train=200, n_test=50):
    """CIFAR-10 binary batches of random images (1 label byte + 3072 pixel
    bytes per record): a stand-in the readers and recipes accept."""
    rng = np.random.default_rng(5)
    directory.mkdir()
    for name, n in (("data_batch_1.bin", n_train), ("test_batch.bin", n_test)):
        rec = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
        rec[:, 0] = rng.integers(0, 10, n)
        (directory / name).write_bytes(rec.tobytes())
    return directory


def test_augment_is_recorded_and_resumes_exactly(tmp_path, restore_num_threads):
    data = _fake_cifar10(tmp_path / "cifar")
    kw = dict(recipe="cifar10-vgg", data=str(data), epochs=2, width=4, threads=1,
              backward="float")
    full, part = _interrupted_and_resumed(tmp_path, augment=True, **kw)
    _assert_same_run(full, part)
    metrics = json.loads((full / "metrics.json").read_text())
    assert metrics["config"]["augment"] is True and metrics["input_shape"] == [32, 32, 3]
    assert metrics["model_bytes_of"] == "bnn"
    from pybnn.train import train
    plain = tmp_path / "plain"
    train(out=str(plain), progress=False, log=lambda m: None, **kw)
    hp = json.loads((plain / "metrics.json").read_text())["history"]
    assert [h["loss"] for h in hp] != [h["loss"] for h in metrics["history"]]


def test_augment_refuses_digits(tmp_path):
    """MNIST's images would crop, but a mirrored digit is no digit: --augment
    is defined for CIFAR-10 only."""
    r = _run("train", "--augment", "--out", str(tmp_path / "m"))
    assert r.returncode == 1 and "augment" in r.stderr and "'mnist'" in r.stderr
    assert not (tmp_path / "m").exists()


def test_checkpoint_older_than_the_settings_resumes(tmp_path, restore_num_threads):
    """A checkpoint written before the configuration named backward,
    stochastic and augment (a float run) resumes with those at their
    defaults, as the run it was, and the result equals a run never
    stopped; asking for another setting is refused, naming it."""
    from pybnn.train import train
    kw = dict(recipe="mnist-mlp-fast", epochs=3, width=32, limit=600, threads=1)
    full, part = _interrupted_and_resumed(tmp_path, backward="float", **kw)
    old = tmp_path / "old"
    with pytest.raises(KeyboardInterrupt):
        train(out=str(old), progress=False, log=_stop_after_first_epoch, backward="float", **kw)
    # make it old: its configuration without the later settings, its
    # metrics.json a bare list of epochs
    for name in ("last.npz", "best.npz"):
        arrays = _arrays(old / name)
        state = _state(old / name)
        for key in ("backward", "stochastic", "augment"):
            del state["config"][key]
        np.savez(old / name, state=np.array(json.dumps(state)), **arrays)
    metrics = json.loads((old / "metrics.json").read_text())
    (old / "metrics.json").write_text(json.dumps(metrics["history"]))
    assert pybnn.load_checkpoint(str(old / "last.npz")).layers[0].backward_kind == "float"
    common = ("--epochs", "3", "--width", "32", "--limit", "600", "--threads", "1",
              "--no-progress", "--out", str(old), "--resume")
    r = _run("train", *common, "--stochastic")
    assert r.returncode == 1 and "stochastic (saved False, asked True)" in r.stderr
    r = _run("train", *common, "--backward", "int8")
    assert r.returncode == 1 and "backward (saved 'float', asked 'int8')" in r.stderr
    r = _run("train", *common)
    assert r.returncode == 0, r.stderr
    _assert_same_run(full, old)
    assert _state(old / "last.npz")["config"]["stochastic"] is False   # named from now on


def test_lr_end_sets_the_decay_and_is_recorded(tmp_path, restore_num_threads):
    """--lr-end: the exponential decay reaches it after --epochs (the
    first epoch at --lr, each next one times (lr_end/lr)^(1/epochs)); the
    configuration records it, and a final rate above the starting one is
    refused before anything is written."""
    out = tmp_path / "short"
    r = _run("train", "--epochs", "3", "--width", "32", "--limit", "600", "--threads", "1",
             "--lr", "0.004", "--lr-end", "0.0005", "--no-progress", "--out", str(out))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["lr_start"] == 0.004 and metrics["config"]["lr_end"] == 0.0005
    assert _state(out / "last.npz")["config"]["lr_end"] == 0.0005
    decay = (0.0005 / 0.004) ** (1 / 3)
    np.testing.assert_allclose([h["lr"] for h in metrics["history"]],
                               [0.004, 0.004 * decay, 0.004 * decay ** 2], rtol=1e-12)
    bad = tmp_path / "bad"
    r = _run("train", "--epochs", "1", "--lr", "0.001", "--lr-end", "0.01", "--out", str(bad))
    assert r.returncode == 1 and "at most the starting one" in r.stderr
    assert not bad.exists()
