"""`pybnn train`: the default run on the bundled sample, exact resume after
SIGINT, checkpoints and their errors."""
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
    hist = json.loads((out / "metrics.json").read_text())
    assert len(hist) == 10 and hist[-1]["loss"] < hist[0]["loss"]
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
    ha = json.loads((full / "metrics.json").read_text())
    hb = json.loads((part / "metrics.json").read_text())
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
        assert "backward" not in json.loads(str(z["state"]))["config"]
