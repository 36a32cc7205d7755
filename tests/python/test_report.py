"""`pybnn report`: the Markdown table of two tiny runs (two seeds) checked
against their metrics.json, the mean over seeds, options and model sizes,
the plots with and without matplotlib, --infer, and the errors."""
import json
import re
import shutil
import statistics
import subprocess
import sys

import numpy as np
import pytest

from pybnn.report import report

TINY = ("--width", "32", "--limit", "600", "--epochs", "2", "--threads", "1", "--no-progress")


def _pybnn():
    exe = shutil.which("pybnn")
    assert exe, "the pybnn console script is not installed"
    return exe


def _run(*args):
    return subprocess.run([_pybnn(), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny runs: seeds 0 and 1 of one configuration, and the float
    baseline of seed 0."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("s0", ("--seed", "0")), ("s1", ("--seed", "1")),
                        ("fp", ("--seed", "0", "--mode", "fp"))):
        r = _run("train", *TINY, *extra, "--out", str(root / name))
        assert r.returncode == 0, r.stderr
    return root


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _table(text):
    """The rows of the first Markdown table in text, as dicts by header."""
    lines = [l for l in text.splitlines() if l.startswith("| ")]
    split = lambda l: [c.strip() for c in l.strip()[1:-1].split(" | ")]   # noqa: E731
    header = split(lines[0])
    rows = [dict(zip(header, split(l))) for l in lines[1:]]
    assert all(len(r) == len(header) for r in rows)
    return rows


def _pct(cell):
    """(value as a fraction, its precision) of "12.34%" or "12.34% (5)"."""
    m = re.fullmatch(r"(\d+\.(\d+))% ?(?:\((\d+)\))?", cell)
    assert m, cell
    return float(m.group(1)) / 100, 10 ** -len(m.group(2)) / 100 / 2, m.group(3)


def _size(cell):
    """(bytes, precision) of "4.9 KiB" or "1.25 MiB" (a kind may follow)."""
    m = re.match(r"(\d+\.(\d+)) (KiB|MiB)", cell)
    assert m, cell
    unit = 1024 if m.group(3) == "KiB" else 1024 ** 2
    return float(m.group(1)) * unit, unit * 10 ** -len(m.group(2)) / 2


def _best(history):
    """The best validation epoch as train chooses it: the lowest error, the
    latest epoch among equals."""
    low = min(h["val_error"] for h in history)
    return [h for h in history if h["val_error"] == low][-1]


def test_table_matches_metrics(runs, tmp_path):
    out = tmp_path / "rep"
    r = _run("report", str(runs / "s0"), str(runs / "s1"), str(runs / "fp"), "--out", str(out),
             "--title", "tiny runs")
    assert r.returncode == 0, r.stderr
    text = (out / "results.md").read_text()
    assert text.startswith("# tiny runs\n")
    rows = _table(text)
    assert [row["run"] for row in rows] == ["s0", "s1", "mean over seeds", "fp"]
    by = {row["run"]: row for row in rows}
    for name in ("s0", "s1", "fp"):
        m, row = _metrics(runs / name), by[name]
        h, cfg = m["history"], m["config"]
        assert row["recipe"] == cfg["recipe"] == "mnist-mlp-fast"
        assert row["seed"] == str(cfg["seed"])
        assert row["backward"] == cfg["backward"]
        assert row["epochs"] == "%d/%d" % (len(h), cfg["epochs"]) == "2/2"
        assert row["images train/val/test"] == "540/60/1000"
        best = _best(h)
        assert m["best_epoch"] == best["epoch"]
        val, tol, epoch = _pct(row["best val error (epoch)"])
        assert abs(val - best["val_error"]) <= tol and int(epoch) == best["epoch"]
        val, tol, _ = _pct(row["test error at best val"])
        assert abs(val - best["test_error"]) <= tol
        val, tol, _ = _pct(row["last test error"])
        assert abs(val - h[-1]["test_error"]) <= tol
        assert abs(float(row["s/epoch"]) - statistics.median(e["seconds"] for e in h)) <= 0.005
        size, tol = _size(row["model size"])
        assert abs(size - m["model_bytes"]) <= tol
        assert row["model size"].endswith(m["model_bytes_of"])
        size, tol = _size(row["training memory / sample"])
        assert abs(size - m["train_bytes_per_sample"]) <= tol
    assert by["s0"]["options"] == by["s1"]["options"] == "--limit 600 --width 32"
    assert by["fp"]["options"] == "--limit 600 --mode fp --width 32"
    assert by["s0"]["model size"].endswith("bnn") and by["fp"]["model size"].endswith("float32")
    fp = _metrics(runs / "fp")
    assert fp["model_bytes"] == 4 * fp["parameters"]
    # the mean over the two seeds, to three decimals of a percent
    mean = by["mean over seeds"]
    assert mean["seed"] == "0, 1" and mean["epochs"] == "2/2"
    pairs = [(_metrics(runs / n)["history"], n) for n in ("s0", "s1")]
    for col, pick in (("best val error (epoch)", lambda h: _best(h)["val_error"]),
                      ("test error at best val", lambda h: _best(h)["test_error"]),
                      ("last test error", lambda h: h[-1]["test_error"])):
        val, tol, epoch = _pct(mean[col])
        assert epoch is None and tol == pytest.approx(5e-6)
        assert abs(val - np.mean([pick(h) for h, _ in pairs])) <= tol, col


def test_commands_remake_the_runs(runs, tmp_path):
    """The `pybnn train` command results.md gives for a run makes the same
    run again."""
    report([str(runs / "s1"), str(runs / "fp")], str(tmp_path / "rep"), log=lambda m: None)
    text = (tmp_path / "rep" / "results.md").read_text()
    for name in ("s1", "fp"):
        cmd = re.search(r"^- %s: `pybnn (train .*)`$" % name, text, re.M).group(1).split()
        r = _run(*cmd, "--threads", "1", "--no-progress", "--out", str(tmp_path / name))
        assert r.returncode == 0, r.stderr
        a, b = _metrics(runs / name), _metrics(tmp_path / name)
        assert a["config"] == b["config"]
        assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_plots_with_matplotlib(runs, tmp_path):
    pytest.importorskip("matplotlib")
    res = report([str(runs / "s0"), str(runs / "fp")], str(tmp_path), log=lambda m: None)
    for name in ("loss.png", "val_error.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(res["plots"]) == sorted(str(tmp_path / n) for n in ("loss.png", "val_error.png"))
    text = (tmp_path / "results.md").read_text()
    assert "](loss.png)" in text and "](val_error.png)" in text


def test_plots_skipped_without_matplotlib(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib fails
    said = []
    res = report([str(runs / "s0"), str(runs / "s1")], str(tmp_path), log=said.append)
    assert any("plots skipped" in s and "matplotlib" in s for s in said)
    assert res["plots"] == [] and not list(tmp_path.glob("*.png"))
    rows = _table((tmp_path / "results.md").read_text())
    assert [r["run"] for r in rows] == ["s0", "s1", "mean over seeds"]


def test_infer_columns(runs, tmp_path):
    """--infer times best.npz in the C runtime where it exports (the bnn
    run; not the float one): its file is the size metrics.json recorded."""
    r = _run("report", str(runs / "s0"), str(runs / "fp"), "--infer", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = {row["run"]: row for row in _table((tmp_path / "results.md").read_text())}
    assert set(rows) == {"s0", "fp"}                  # seeds 0 only: no mean row
    s0 = rows["s0"]
    assert float(s0["images/s, batch 1"]) > 0 and float(s0["images/s, batch 100"]) > 0
    size, tol = _size(s0[".bnn file"])
    assert abs(size - _metrics(runs / "s0")["model_bytes"]) <= tol
    assert [rows["fp"][c] for c in ("images/s, batch 1", "images/s, batch 100", ".bnn file")] \
        == ["—"] * 3
    # the figures are recorded beside the run, with the CPU, and a copy of the
    # run without its checkpoints is reported with them
    infer = json.loads((runs / "s0" / "infer.json").read_text())
    assert infer["per_s_1"] > 0 and infer["cpu"] and infer["kernels"] and infer["threads"] == 1
    assert not (runs / "fp" / "infer.json").exists()
    kept = tmp_path / "kept" / "s0"
    kept.mkdir(parents=True)
    for name in ("metrics.json", "infer.json"):
        shutil.copyfile(runs / "s0" / name, kept / name)
    r = _run("report", str(kept), "--infer", "--out", str(tmp_path / "again"))
    assert r.returncode == 0, r.stderr
    again = _table((tmp_path / "again" / "results.md").read_text())
    assert again == [s0]
    # a record of another epoch's model (best.npz changed since) is not used
    record = json.loads((kept / "infer.json").read_text())
    (kept / "infer.json").write_text(json.dumps(dict(record, best_epoch=record["best_epoch"] - 1)))
    r = _run("report", str(kept), "--infer", "--out", str(tmp_path / "stale"))
    assert r.returncode == 0, r.stderr
    stale = _table((tmp_path / "stale" / "results.md").read_text())[0]
    assert [stale[c] for c in ("images/s, batch 1", "images/s, batch 100", ".bnn file")] \
        == ["—"] * 3
    for bad in ("[]", json.dumps({"best_epoch": record["best_epoch"]}), "{not json"):
        (kept / "infer.json").write_text(bad)
        r = _run("report", str(kept), "--infer", "--out", str(tmp_path / "bad"))
        assert r.returncode == 1 and "infer.json" in r.stderr, bad


def test_errors(runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _run("report", str(runs / "s0"), str(empty), "--out", str(tmp_path / "rep"))
    assert r.returncode == 1 and str(empty) in r.stderr and "metrics.json" in r.stderr
    assert not (tmp_path / "rep").exists()            # nothing written
    r = _run("report", str(tmp_path / "missing"), "--out", str(tmp_path / "rep"))
    assert r.returncode == 1 and "missing" in r.stderr and "does not exist" in r.stderr
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.json").write_text(json.dumps(_metrics(runs / "s0")["history"]))
    r = _run("report", str(old), "--out", str(tmp_path / "rep"))
    assert r.returncode == 1 and "--resume" in r.stderr and str(old) in r.stderr
    (old / "metrics.json").write_text("{not json")
    r = _run("report", str(old), "--out", str(tmp_path / "rep"))
    assert r.returncode == 1 and "cannot read" in r.stderr
    r = _run("report")
    assert r.returncode == 2 and "RUN_DIR" in r.stderr


def test_partial_run_is_reported(tmp_path, restore_num_threads):
    """A run that has started but finished no epoch (its metrics.json is
    written at the start) has a row with its configuration and no numbers."""
    from pybnn.train import train
    run = tmp_path / "started"

    def stop(msg):
        if msg.startswith("memory plan"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(out=str(run), width=32, limit=600, epochs=2, threads=1, progress=False, log=stop)
    assert _metrics(run)["history"] == []
    report([str(run)], str(tmp_path / "rep"), log=lambda m: None)
    row = _table((tmp_path / "rep" / "results.md").read_text())[0]
    assert row["epochs"] == "0/2" and row["best val error (epoch)"] == "—"
    assert row["model size"].endswith("bnn")
