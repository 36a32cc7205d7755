"""`pybnn report RUN_DIR...`: the results of `pybnn train` runs as one
Markdown table (DIR/results.md) and, with matplotlib, the training loss
and validation error per epoch of every run (DIR/loss.png,
DIR/val_error.png).

Everything comes from each run's metrics.json (pybnn.train._write_metrics):
its configuration, history, best epoch, model size and training memory.
Runs whose configuration and data differ only in the seed get a "mean
over seeds" row.  With infer=True each run's best.npz that exports to a
.bnn file is timed in the C runtime as `pybnn bench infer --model` does.
"""
from __future__ import annotations

import inspect
import json
import os
import statistics
import tempfile

__all__ = ["report", "read_metrics", "summarize", "train_command", "pyplot"]

# Settings with their own column (not listed among the options).
_OWN_COLUMNS = ("recipe", "seed", "epochs", "backward")
# The `pybnn train` option of a configuration key, where the names differ.
_FLAGS = {"lr_start": "--lr", "batch_size": "--batch-size"}


def pyplot():
    """matplotlib.pyplot on the Agg backend (files, no display), or None
    when matplotlib is not installed (the `plot` extra)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_metrics(run_dir):
    """The metrics.json of a `pybnn train --out` folder as a dict; ValueError
    naming the folder when there is none or it cannot be read."""
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isdir(run_dir):
        raise ValueError("run folder %s does not exist" % run_dir)
    if not os.path.exists(path):
        raise ValueError("run folder %s has no metrics.json (not a `pybnn train --out` "
                         "folder, or a run that has not started)" % run_dir)
    try:
        with open(path) as f:
            metrics = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError("cannot read %s: %s" % (path, e)) from e
    if isinstance(metrics, list):
        raise ValueError("%s lists epochs only, as pybnn train wrote it before it recorded "
                         "the configuration; `pybnn train --resume` with the run's options "
                         "rewrites it" % path)
    missing = [k for k in ("config", "history", "best_epoch") if k not in metrics]
    if not isinstance(metrics, dict) or missing:
        raise ValueError("%s is not the metrics of a pybnn train run (no %s)"
                         % (path, ", ".join(missing) or "dict"))
    return metrics


def _train_defaults():
    """The defaults of train()'s own settings (those no recipe holds)."""
    from .train import train
    return {k: p.default for k, p in inspect.signature(train).parameters.items()}


def _options(cfg):
    """The `pybnn train` settings of cfg that differ from its recipe's and
    train()'s defaults, as command-line options."""
    from .recipes import RECIPES
    recipe = RECIPES.get(cfg.get("recipe"), {})
    defaults = _train_defaults()
    out = []
    for key in sorted(cfg):
        if key in _OWN_COLUMNS:
            continue
        default = recipe[key] if key in recipe else defaults.get(key, None)
        if cfg[key] == default:
            continue
        flag = _FLAGS.get(key, "--" + key.replace("_", "-"))
        out.append(flag if cfg[key] is True else "%s %s" % (flag, cfg[key]))
    return " ".join(out)


def train_command(cfg):
    """The `pybnn train` command of a configuration (without --data and
    --out, which it does not record)."""
    return " ".join(["pybnn train --recipe %s --epochs %d --seed %d --backward %s"
                     % (cfg["recipe"], cfg["epochs"], cfg["seed"], cfg.get("backward", "float"))]
                    + ([_options(cfg)] if _options(cfg) else []))


def summarize(name, metrics):
    """One run's row of the table as a dict of numbers (errors as
    fractions; None where the run has no finished epoch)."""
    cfg, hist = metrics["config"], metrics["history"]
    best = next((r for r in hist if r["epoch"] == metrics["best_epoch"]), None)
    return dict(run=name, recipe=cfg["recipe"], options=_options(cfg),
                backward=cfg.get("backward"), seed=cfg["seed"], epochs=len(hist),
                planned=cfg["epochs"], data=metrics.get("data"),
                best_val=best and best["val_error"], best_epoch=best and best["epoch"],
                test_at_best=best and best["test_error"],
                last_test=hist[-1]["test_error"] if hist else None,
                seconds=statistics.median(r["seconds"] for r in hist) if hist else None,
                model_bytes=metrics.get("model_bytes"),
                model_bytes_of=metrics.get("model_bytes_of"),
                train_bytes_per_sample=metrics.get("train_bytes_per_sample"))


def _seed_groups(runs):
    """Lists of indices into runs [(name, metrics)] whose configuration and
    data differ only in the seed, in the order of their first member."""
    groups = {}
    for i, (_, m) in enumerate(runs):
        cfg = {k: v for k, v in m["config"].items() if k != "seed"}
        key = json.dumps([cfg, m.get("data")], sort_keys=True)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _mean_row(rows):
    """The "mean over seeds" row of a group's rows."""
    def mean(key):
        vals = [r[key] for r in rows]
        return None if any(v is None for v in vals) else statistics.fmean(vals)
    first = rows[0]
    epochs = sorted({r["epochs"] for r in rows})
    return dict(first, run="mean over seeds", seed=", ".join(str(r["seed"]) for r in rows),
                epochs=epochs[0] if len(epochs) == 1 else epochs, best_epoch=None,
                best_val=mean("best_val"), test_at_best=mean("test_at_best"),
                last_test=mean("last_test"), seconds=mean("seconds"),
                train_bytes_per_sample=mean("train_bytes_per_sample"), infer=None, mean=True)


# Interleaved timing rounds of --infer (pybnn bench infer's default: 9).
INFER_ROUNDS = 3


# Where --infer records a run's figures, so that a run kept without its
# checkpoints (bench/reviewer_runs.py --keep) still has them.
INFER_RECORD = "infer.json"


def _cpu_name():
    """The CPU's model name (/proc/cpuinfo), or the platform's word for it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def _infer(run_dir, best_epoch, rounds=INFER_ROUNDS):
    """images/s at batch 1 and 100 and the file size of the run's best.npz
    in the C runtime (pybnn.bench.bench_infer, the code of `pybnn bench
    infer --model`), measured now and recorded in RUN/infer.json with the
    CPU, the kernels and best_epoch (the epoch best.npz holds); without
    best.npz, the figures infer.json recorded for best_epoch; None when
    there is neither (or only a record of another epoch's model) or the
    model does not export."""
    from . import checkpoint
    from .bench import bench_infer
    from .deploy import FoldError, model_bytes
    path = os.path.join(run_dir, "best.npz")
    record = os.path.join(run_dir, INFER_RECORD)
    if not os.path.exists(path):
        if not os.path.exists(record):
            return None
        try:
            with open(record) as f:
                kept = json.load(f)
            if not isinstance(kept, dict):
                raise ValueError("not a JSON object")
            if kept.get("best_epoch") != best_epoch:
                return None
            return {k: kept[k] for k in ("file_bytes", "per_s_1", "per_s_100")}
        except (OSError, ValueError, KeyError) as e:
            raise ValueError("cannot read %s: %s" % (record, e)) from e
    model, state = checkpoint.load(path)
    try:
        data = model_bytes(model, tuple(state["input_shape"]))
    except FoldError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        file = os.path.join(tmp, "best.bnn")
        with open(file, "wb") as f:
            f.write(data)
        res = bench_infer(rounds=rounds, model_path=file, out=lambda *a: None)
    rates = {r["batch"]: r["batch"] / r["libbnn runtime"] for r in res["rows"]}
    out = dict(file_bytes=res["file_bytes"], per_s_1=rates.get(1), per_s_100=rates.get(100))
    with open(record, "w") as f:
        json.dump(dict(out, best_epoch=best_epoch, rounds=rounds, threads=1,
                       kernels=res["isa"], cpu=_cpu_name()), f, indent=1)
    return out


# ---- the Markdown table ----------------------------------------------------------

def _pct(v, digits):
    return "—" if v is None else "%.*f%%" % (digits, 100 * v)


def _bytes(b):
    if b is None:
        return "—"
    if b < 2 ** 20:
        return "%.1f KiB" % (b / 2 ** 10)
    return "%.2f MiB" % (b / 2 ** 20)


def _cells(r, infer):
    digits = 3 if r.get("mean") else 2          # a mean of two %.2f figures has three
    epochs = r["epochs"]
    done = ("%d–%d" % (epochs[0], epochs[-1]) if isinstance(epochs, list) else str(epochs))
    best = _pct(r["best_val"], digits)
    if r["best_epoch"] is not None:
        best += " (%d)" % r["best_epoch"]
    data = r["data"] or {}
    cells = [r["run"], r["recipe"], r["options"], r["backward"] or "—", str(r["seed"]),
             "%s/%d" % (done, r["planned"]),
             "/".join(str(data[k]) for k in ("train", "validation", "test")) if data else "—",
             best, _pct(r["test_at_best"], digits), _pct(r["last_test"], digits),
             "—" if r["seconds"] is None else "%.2f" % r["seconds"],
             "—" if r["model_bytes"] is None else "%s %s" % (_bytes(r["model_bytes"]),
                                                            r["model_bytes_of"]),
             _bytes(r["train_bytes_per_sample"])]
    if infer:
        i = r.get("infer")
        cells += (["—"] * 3 if i is None else
                  ["%.0f" % i["per_s_1"], "%.0f" % i["per_s_100"], _bytes(i["file_bytes"])])
    return [c.replace("|", "\\|") for c in cells]


HEADER = ["run", "recipe", "options", "backward", "seed", "epochs", "images train/val/test",
          "best val error (epoch)", "test error at best val", "last test error", "s/epoch",
          "model size", "training memory / sample"]
INFER_HEADER = ["images/s, batch 1", "images/s, batch 100", ".bnn file"]

NOTES = """\
- options: the `pybnn train` settings that differ from the recipe's and train's
  defaults; epochs: done/planned.
- best val error: the lowest validation error (the latest epoch among equals,
  the one best.npz holds); test error at best val: the test error of that epoch.
- s/epoch: the median of the epochs' training seconds (evaluation not counted),
  on the machine and threads the run had.
- model size: the .bnn file `pybnn export` writes (bnn), or 4 bytes per
  parameter (float32) for the modes the format does not hold (bc, fp).
- training memory / sample: the slope of the memory plan
  (`Sequential.memory_plan`) in the batch size: what one more sample adds to a
  training step's peak.
- mean over seeds: the mean of the runs just above it, whose configuration and
  data differ only in the seed."""


def _table(rows, infer):
    header = HEADER + (INFER_HEADER if infer else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(r, infer)) + " |" for r in rows]
    return "\n".join(lines)


def _plot(plt, runs, key, ylabel, scale, title, path):
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, m in runs:
        h = m["history"]
        ax.plot([r["epoch"] for r in h], [scale * r[key] for r in h], marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(run_dirs, out, title=None, infer=False, log=print):
    """Write out/results.md (and out/loss.png, out/val_error.png with
    matplotlib) for the `pybnn train` folders run_dirs; returns
    dict(rows=the table's rows as dicts, in order, path=results.md,
    plots=the PNG paths written)."""
    if not run_dirs:
        raise ValueError("report needs at least one run folder")
    runs = [(os.path.basename(os.path.normpath(d)), read_metrics(d)) for d in run_dirs]
    os.makedirs(out, exist_ok=True)
    singles = [summarize(name, m) for name, m in runs]
    if infer:
        for r, d, (_, m) in zip(singles, run_dirs, runs):
            r["infer"] = _infer(d, m["best_epoch"])
    rows = []
    for group in _seed_groups(runs):
        rows += [singles[i] for i in group]
        if len({singles[i]["seed"] for i in group}) > 1:
            rows.append(_mean_row([singles[i] for i in group]))
    plots = []
    plt = pyplot()
    if plt is None:
        log("plots skipped: matplotlib is not installed (pip install 'pybnn[plot]')")
    else:
        for key, ylabel, scale, file in (("loss", "training loss", 1, "loss.png"),
                                         ("val_error", "validation error (%)", 100,
                                          "val_error.png")):
            path = os.path.join(out, file)
            _plot(plt, runs, key, ylabel, scale, title, path)
            plots.append((ylabel, path))
    text = ["# %s" % (title or "Training runs"), "",
            "Made by `pybnn report` from the metrics.json of each run.", "",
            _table(rows, infer), "", NOTES]
    if infer:
        text += ["- images/s, .bnn file: best.npz exported and run by the C runtime, one "
                 "thread, as `pybnn bench infer --model` (median of %d rounds); recorded in "
                 "the run's %s with the CPU, and taken from there for a run kept without "
                 "best.npz." % (INFER_ROUNDS, INFER_RECORD)]
    text += ["", "Commands (each with `--data DIR` of the images counted above, and `--out "
             "RUN`):", ""]
    text += ["- %s: `%s`" % (name, train_command(m["config"])) for name, m in runs]
    text += [""] + ["![%s per epoch](%s)" % (label, os.path.basename(p)) for label, p in plots]
    path = os.path.join(out, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(text).rstrip() + "\n")
    plots = [p for _, p in plots]
    log("wrote %s%s" % (path, "".join(" and " + p for p in plots)))
    return dict(rows=rows, path=path, plots=plots)
