"""bench/reviewer_runs.py, the script behind docs/RESULTS.md: the set of
runs it lists (each a `pybnn train` command), which of them it continues,
and --report-only, which writes the reports of the runs as they stand and
trains nothing."""
import json
import os
import shutil
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "reviewer_runs.py")


def _script(*args, cwd, keep=None):
    # run from a folder without the source tree, so `python -m pybnn` in the
    # script finds the installed package; the runs are kept in cwd/kept (or
    # keep), never in the repository's docs/results/runs
    keep = keep or os.path.join(str(cwd), "kept")
    return subprocess.run([sys.executable, os.path.abspath(SCRIPT), *args, "--keep", keep],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture()
def data_dirs(tmp_path):
    mnist, cifar = tmp_path / "mnist", tmp_path / "cifar"
    mnist.mkdir()
    cifar.mkdir()
    return str(mnist), str(cifar)


def test_list_names_every_run_and_its_schedule(tmp_path, data_dirs):
    mnist, cifar = data_dirs
    r = _script("--runs", str(tmp_path / "runs"), "--mnist", mnist, "--cifar", cifar, "--list",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 15
    for seed in (0, 1):
        for variant, opts in (("bnn", ""), ("stochastic", " --stochastic"),
                              ("shift", " --bn shift --optimizer shift_adamax --lr 0.015625"),
                              ("bc", " --mode bc"), ("fp", " --mode fp")):
            want = ("pybnn train --recipe mnist-mlp --epochs 20 --seed %d%s --data %s --out %s"
                    % (seed, opts, mnist, os.path.join(str(tmp_path / "runs"),
                                                       "mnist-mlp-%s-s%d" % (variant, seed))))
            assert sum(line.startswith(want + " ") for line in lines) == 1, want
    cifar_lines = {line.split("--out ")[1].split()[0]: line for line in lines
                   if "cifar10-vgg" in line}
    runs = str(tmp_path / "runs")
    assert sorted(cifar_lines) == [os.path.join(runs, "cifar10-vgg-" + v)
                                   for v in ("bc", "bnn", "bnn-e20", "bnn-lr3e-7", "fp")]
    assert all("--augment" in line for line in cifar_lines.values())
    for variant, epochs, opts in (("bnn", 8, ""), ("fp", 8, " --mode fp"),
                                  ("bc", 8, " --mode bc"), ("bnn-e20", 20, "")):
        line = cifar_lines[os.path.join(runs, "cifar10-vgg-" + variant)]
        assert line.startswith("pybnn train --recipe cifar10-vgg --epochs %d --augment --seed 0 "
                               "--lr-end 1e-05%s --data " % (epochs, opts)), line
    assert "--lr-end" not in cifar_lines[os.path.join(runs, "cifar10-vgg-bnn-lr3e-7")]
    assert "--epochs 20 " in cifar_lines[os.path.join(runs, "cifar10-vgg-bnn-lr3e-7")]
    r = _script("--runs", str(tmp_path / "runs"), "--cifar", cifar, "--cifar-epochs", "7",
                "--list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    commands = [line for line in r.stdout.splitlines() if line.startswith("pybnn train")]
    # --cifar-epochs sets the BNN's and its baselines'; the 20-epoch runs keep theirs
    assert sorted(line.split("--epochs ")[1].split()[0] for line in commands) \
        == ["20", "20", "7", "7", "7"]
    # the MNIST runs are left out, by name, without their folder
    assert r.stdout.count("left out (no --mnist folder)") == 10


def _started(out, epochs):
    """A run of the set's mnist-mlp configuration (seed 0), stopped before
    its first epoch: its metrics.json is written, nothing is trained."""
    from pybnn.train import train

    def stop(msg):
        if msg.startswith("memory plan"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(recipe="mnist-mlp", epochs=epochs, seed=0, threads=1, progress=False,
              out=str(out), log=stop)


def test_report_only_reports_started_runs_and_trains_nothing(tmp_path, data_dirs,
                                                             restore_num_threads):
    from pybnn.train import train
    mnist, cifar = data_dirs
    runs = tmp_path / "runs"
    _started(runs / "mnist-mlp-bnn-s0", 2)
    r = _script("--runs", str(runs), "--mnist", mnist, "--cifar", cifar, "--mnist-epochs", "2",
                "--report-only", "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(runs)) == ["mnist-mlp-bnn-s0"]       # nothing trained
    table = (tmp_path / "report" / "mnist" / "results.md").read_text()
    assert "| mnist-mlp-bnn-s0 | mnist-mlp |" in table and "| 0/2 |" in table
    assert not (tmp_path / "report" / "cifar10").exists()          # no CIFAR run started
    assert not (tmp_path / "kept").exists()                        # nothing finished to keep
    r = _script("--runs", str(runs), "--only", "mnist-mlp-bnn-s9", "--list", cwd=tmp_path)
    assert r.returncode == 2 and "no run named mnist-mlp-bnn-s9" in r.stderr

    # a folder of another configuration under a run's name (here a narrower
    # network) is neither reported nor continued: the script names it
    other = runs / "mnist-mlp-stochastic-s0"
    train(recipe="mnist-mlp", epochs=2, width=32, limit=600, stochastic=True, threads=1,
          progress=False, out=str(other), log=lambda *a: None)
    r = _script("--runs", str(runs), "--mnist", mnist, "--mnist-epochs", "2", "--only",
                "mnist-mlp-stochastic-s0", "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert r.returncode == 1
    assert "%s holds a run of another configuration" % other in r.stdout
    table = (tmp_path / "again" / "mnist" / "results.md").read_text()
    assert "| mnist-mlp-bnn-s0 |" in table and "mnist-mlp-stochastic-s0 |" not in table


def test_finished_runs_are_kept_and_reported_from_there(tmp_path, data_dirs,
                                                        restore_num_threads):
    """A finished run is copied to KEEP (metrics.json and the infer.json of
    `pybnn report --infer`, not the checkpoints); once RUNS is gone the kept
    run is reported from KEEP, listed as kept, and not trained again; a
    started copy in RUNS does not hide it."""
    from pybnn.train import train
    mnist, cifar = data_dirs
    runs, keep = tmp_path / "runs", tmp_path / "kept"
    # the set's run at --mnist-epochs 1, on the bundled sample
    train(recipe="mnist-mlp", epochs=1, seed=0, threads=1, progress=False,
          out=str(runs / "mnist-mlp-bnn-s0"), log=lambda *a: None)
    r = _script("--runs", str(runs), "--mnist", mnist, "--mnist-epochs", "1", "--report-only",
                "--infer", "--out", str(tmp_path / "report"), cwd=tmp_path, keep=str(keep))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(keep)) == ["mnist-mlp-bnn-s0"]
    kept = keep / "mnist-mlp-bnn-s0"
    assert sorted(os.listdir(kept)) == ["infer.json", "metrics.json"]
    assert (kept / "metrics.json").read_bytes() == \
        (runs / "mnist-mlp-bnn-s0" / "metrics.json").read_bytes()
    infer = json.loads((kept / "infer.json").read_text())
    assert infer["per_s_1"] > 0 and infer["file_bytes"] > 0 and infer["cpu"]
    assert infer["best_epoch"] == 1
    first = (tmp_path / "report" / "mnist" / "results.md").read_text()

    def row(table):
        return [line for line in table.splitlines() if line.startswith("| mnist-mlp-bnn-s0 |")]

    shutil.rmtree(runs)
    _started(runs / "mnist-mlp-bnn-s0", 1)          # a new start does not hide the kept run
    r = _script("--runs", str(runs), "--mnist", mnist, "--mnist-epochs", "1", "--report-only",
                "--infer", "--out", str(tmp_path / "again"), cwd=tmp_path, keep=str(keep))
    assert r.returncode == 0, r.stderr
    again = (tmp_path / "again" / "mnist" / "results.md").read_text()
    assert len(row(first)) == 1 and row(first) == row(again)
    # the images/s cells are the recorded figures, not dashes
    assert "%.0f |" % infer["per_s_1"] in row(again)[0]

    r = _script("--runs", str(runs), "--mnist", mnist, "--mnist-epochs", "1", "--list",
                cwd=tmp_path, keep=str(keep))
    assert r.returncode == 0, r.stderr
    kept_lines = [line for line in r.stdout.splitlines() if "kept in" in line]
    assert len(kept_lines) == 1 and "--out %s" % (runs / "mnist-mlp-bnn-s0") in kept_lines[0]
    # training it is skipped (the empty --mnist folder would make it fail)
    r = _script("--runs", str(runs), "--mnist", mnist, "--mnist-epochs", "1", "--only",
                "mnist-mlp-bnn-s0", "--out", str(tmp_path / "third"), cwd=tmp_path,
                keep=str(keep))
    assert r.returncode == 0, r.stderr
    assert "mnist-mlp-bnn-s0: finished, kept in" in r.stdout
    assert not (runs / "mnist-mlp-bnn-s0" / "last.npz").exists()


def test_options_match_by_value_not_spelling():
    """A recorded configuration's option written another way (the float
    1e-05 that train_command prints for the set's 1e-5) is the same run; a
    different value or word is not."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("reviewer_runs", SCRIPT)
    rr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rr)
    opts = rr._option_map
    assert opts(["--lr-end", "1e-5", "--epochs", "8", "--augment"]) == \
        opts(["--augment", "--lr-end", "1e-05", "--epochs", "8.0"])
    assert opts(["--lr-end", "1e-5"]) != opts(["--lr-end", "2e-5"])
    assert opts(["--mode", "fp"]) != opts(["--mode", "bc"])
    assert opts(["--mode", "fp"]) == {"--mode": "fp"}
    assert opts(["--stochastic"]) == {"--stochastic": True}
