#!/usr/bin/env python3
"""The runs that answer the paper's reviewers (issue 13), each one
`pybnn train` command, and the tables and curves `pybnn report` makes of
them:

- MNIST, `mnist-mlp` (784-4096x3-10, the paper's Theano recipe),
  --mnist-epochs epochs (default 20; the learning rate decays over them),
  seeds 0 and 1: BNN with the deterministic sign, BNN with the stochastic
  sign, BNN with shift-based batch norm and shift-based AdaMax,
  BinaryConnect, full precision.
- CIFAR-10, `cifar10-vgg` (the paper's VGG-like network), with
  augmentation, the learning rate decaying from 1e-3 to CIFAR_LR_END over
  the run: BNN, full precision, BinaryConnect, --cifar-epochs epochs each
  (default 8); and two 20-epoch BNN runs, one with the same decay and one
  with the recipe's own final rate (the paper's after 500 epochs).

    python bench/reviewer_runs.py --runs RUNS [--mnist DIR] [--cifar DIR]
        [--cifar-epochs N] [--mnist-epochs N] [--only NAME[,NAME...]]
        [--threads T] [--keep KEEP] [--out DIR] [--infer]
        [--list | --report-only]

Each run trains into RUNS/NAME (keep RUNS outside the repository).  Run
the script again to continue: a run with RUNS/NAME/last.npz resumes
(--resume), a finished one is skipped, so an interrupted set picks up
where it stopped.  A run is the set's when its recorded configuration
gives its command (`pybnn report`'s); a RUNS/NAME of another
configuration is refused, named, for the user to move away.

A finished run is kept: its metrics.json, and the infer.json that
`pybnn report --infer` records, are copied to KEEP/NAME (default
docs/results/runs, committed with the tables), a few KiB without the
checkpoints.  A kept run is finished: it is not trained again, and the
reports take it from KEEP where RUNS does not hold it finished, so the set
can be spread over machines and sessions that do not share RUNS.

Runs whose dataset folder is not given are left out.  --list prints the
commands instead of running them; --report-only trains nothing and
writes the reports of the runs as they stand (and keeps the finished
ones).  At the end, `pybnn
report` writes OUT/mnist/ and OUT/cifar10/ (default OUT: RUNS/report)
from every run of the set that has started or is kept.  The seconds per
epoch are part of the result: run it alone on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

# (variant, pybnn train options, what it answers)
MNIST_VARIANTS = [
    ("bnn", [], "BNN, deterministic sign"),
    ("stochastic", ["--stochastic"], "BNN, stochastic sign (weights deterministic)"),
    # shift-AdaMax at its own rate, 2^-6 (the authors' Torch code): at Adam's
    # 0.003 its steps are smaller than Adam's and it trains slower
    # (docs/training.md, "The shift-based variants")
    ("shift", ["--bn", "shift", "--optimizer", "shift_adamax", "--lr", "0.015625"],
     "BNN, shift-based batch norm and AdaMax (lr 2^-6)"),
    ("bc", ["--mode", "bc"], "BinaryConnect: binary weights, float activations"),
    ("fp", ["--mode", "fp"], "full precision, the same network and schedule"),
]
# CIFAR-10's learning rate falls from the recipe's 1e-3 to CIFAR_LR_END over
# the run.  The recipe's own end, 3e-7, is where the paper's decay arrives
# after 500 epochs; spread over 20 it divides the rate by 1.5 each epoch, and
# the BNN run with it (cifar10-vgg-bnn-lr3e-7, kept as a row) was below 1e-4
# from epoch 7 on, its training loss flat from epoch 12 on.
CIFAR_LR_END = 1e-5
_CIFAR_DECAY = ["--lr-end", repr(CIFAR_LR_END)]
# The BNN and its two baselines run --cifar-epochs epochs (default
# CIFAR_EPOCHS): the float baselines' step is about 3x the BNN's, about 20
# minutes an epoch with evaluation at two threads on a 2-vCPU AVX2 host
# (cifar10-vgg-fp: 980 s of training, about 4 of evaluation), so 8 epochs
# are one such run in about 2 h 45 min.  Two more BNN runs have
# their own 20 epochs (None: --cifar-epochs).
CIFAR_EPOCHS = 8
CIFAR_VARIANTS = [
    ("bnn", _CIFAR_DECAY, None, "BNN"),
    ("fp", _CIFAR_DECAY + ["--mode", "fp"], None, "full precision"),
    ("bc", _CIFAR_DECAY + ["--mode", "bc"], None, "BinaryConnect"),
    ("bnn-e20", _CIFAR_DECAY, 20, "BNN, 20 epochs"),
    ("bnn-lr3e-7", [], 20, "BNN, 20 epochs, with the recipe's final rate, 3e-7"),
]
MNIST_EPOCHS = 20
SEEDS = (0, 1)
# Where finished runs are kept (--keep's default): docs/results/runs.
KEEP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                                    "results", "runs"))
# What a kept run holds: the files `pybnn report` reads when there is no checkpoint.
KEPT_FILES = ("metrics.json", "infer.json")


def runs(cifar_epochs=CIFAR_EPOCHS, mnist_epochs=MNIST_EPOCHS):
    """The set: dicts of name, dataset, the `pybnn train` options (without
    --data and --out) and what the run answers."""
    cifar = [dict(name="cifar10-vgg-%s" % variant, dataset="cifar10",
                  args=["--recipe", "cifar10-vgg", "--epochs", str(epochs or cifar_epochs),
                        "--augment", "--seed", "0"] + opts, what=what)
             for variant, opts, epochs, what in CIFAR_VARIANTS]
    out = cifar[:1]                 # the BNN first, then MNIST, then the other CIFAR runs
    for seed in SEEDS:
        for variant, opts, what in MNIST_VARIANTS:
            out.append(dict(name="mnist-mlp-%s-s%d" % (variant, seed), dataset="mnist",
                            args=["--recipe", "mnist-mlp", "--epochs", str(mnist_epochs),
                                  "--seed", str(seed)] + opts, what=what))
    return out + cifar[1:]


def _option_map(tokens):
    """{flag: value, or True for a switch} of `pybnn train` options; a
    number is its value, not its spelling (1e-5 is 1e-05, 8 is 8.0)."""
    out, i = {}, 0
    while i < len(tokens):
        if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            out[tokens[i]] = _number_or_word(tokens[i + 1])
            i += 2
        else:
            out[tokens[i]] = True
            i += 1
    return out


def _number_or_word(s):
    try:
        return float(s)
    except ValueError:
        return s


def _state(run_dir, r):
    """What run_dir holds of the set's run r: None (no metrics.json),
    "other" (a run whose configuration is not r's, or unreadable metrics),
    "started" or "finished"."""
    from pybnn.report import train_command
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            m = json.load(f)
        recorded = _option_map(train_command(m["config"]).split()[2:])
        done = len(m["history"])
    except (OSError, ValueError, KeyError, TypeError):
        return "other"
    recorded.pop("--backward", None)      # recorded as resolved; the set leaves it at auto
    if recorded != _option_map(r["args"]):
        return "other"
    return "finished" if done >= _epochs(r["args"]) else "started"


def _epochs(args):
    return int(args[args.index("--epochs") + 1])


def _keep(run_dir, keep_dir):
    """Make keep_dir hold run_dir's KEPT_FILES: copied where run_dir has
    them, removed where it does not (an infer.json of an earlier model)."""
    os.makedirs(keep_dir, exist_ok=True)
    for name in KEPT_FILES:
        src, dst = os.path.join(run_dir, name), os.path.join(keep_dir, name)
        if os.path.exists(src):
            shutil.copyfile(src, dst)
        elif os.path.exists(dst):
            os.remove(dst)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, metavar="RUNS",
                    help="folder of the run folders (outside the repository)")
    ap.add_argument("--mnist", default=None, metavar="DIR", help="the four MNIST IDX files")
    ap.add_argument("--cifar", default=None, metavar="DIR", help="CIFAR-10 binary batches")
    ap.add_argument("--cifar-epochs", type=int, default=CIFAR_EPOCHS, metavar="N",
                    help="epochs of the CIFAR-10 BNN and its baselines (default %d; the "
                         "-e20 and -lr3e-7 runs have 20); the learning rate decays over "
                         "them, so a run continues only with the N it began with"
                         % CIFAR_EPOCHS)
    ap.add_argument("--mnist-epochs", type=int, default=MNIST_EPOCHS, metavar="N",
                    help="epochs of each MNIST run (default %d)" % MNIST_EPOCHS)
    ap.add_argument("--only", default=None, metavar="NAME[,NAME...]",
                    help="train only these runs (the report still covers every started run)")
    ap.add_argument("--threads", type=int, default=None, help="pybnn train --threads")
    ap.add_argument("--keep", default=KEEP, metavar="KEEP",
                    help="where finished runs are kept, without their checkpoints "
                         "(default docs/results/runs)")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="where the reports go (default RUNS/report)")
    ap.add_argument("--infer", action="store_true",
                    help="pybnn report --infer: time each exportable model in the C runtime")
    ap.add_argument("--list", action="store_true", help="print the commands and stop")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: write the reports of the runs as they stand")
    args = ap.parse_args(argv)
    for option, n in (("--cifar-epochs", args.cifar_epochs),
                      ("--mnist-epochs", args.mnist_epochs)):
        if n < 1:
            ap.error("%s must be >= 1, got %d" % (option, n))
    data = {"mnist": ("--mnist", args.mnist), "cifar10": ("--cifar", args.cifar)}
    todo = runs(args.cifar_epochs, args.mnist_epochs)
    names = [r["name"] for r in todo]
    only = args.only.split(",") if args.only else names
    unknown = [n for n in only if n not in names]
    if unknown:
        ap.error("--only: no run named %s; the runs are %s" % (", ".join(unknown),
                                                                ", ".join(names)))
    failed = []
    for r in todo:
        if r["name"] not in only or args.report_only:
            continue
        out = os.path.join(args.runs, r["name"])
        option, folder = data[r["dataset"]]
        if folder is None:
            print("== %s: left out (no %s folder)" % (r["name"], option))
            continue
        cmd = ["pybnn", "train", *r["args"], "--data", folder, "--out", out, "--no-progress"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        kept = os.path.join(args.keep, r["name"])
        here_state, kept_state = _state(out, r), _state(kept, r)
        if here_state == "other":
            say = "%s holds a run of another configuration: move it away" % out
            print("%s  # %s; %s" % (shlex.join(cmd), r["what"], say) if args.list
                  else "== %s: %s" % (r["name"], say))
            failed.append(r["name"])
            continue
        if kept_state == "finished" and here_state != "finished":
            print("%s  # %s; kept in %s" % (shlex.join(cmd), r["what"], kept) if args.list
                  else "== %s: finished, kept in %s" % (r["name"], kept))
            continue
        finished = here_state == "finished"
        resume = not finished and os.path.exists(os.path.join(out, "last.npz"))
        if args.list:
            print("%s  # %s%s" % (shlex.join(cmd), r["what"], "; finished" if finished else
                                  "; started (runs with --resume)" if resume else ""))
            continue
        if finished:
            print("== %s: finished" % r["name"])
            continue
        if resume:
            cmd.append("--resume")
        print("== %s (%s)\n%s" % (r["name"], r["what"], shlex.join(cmd)), flush=True)
        if subprocess.run([sys.executable, "-m", "pybnn", *cmd[1:]]).returncode != 0:
            failed.append(r["name"])
        elif _state(out, r) == "finished":
            _keep(out, kept)
    if args.list:
        return 0
    report_root = args.out or os.path.join(args.runs, "report")
    for dataset, title in (("mnist", "MNIST, mnist-mlp (784-4096x3-10), %d epochs"
                            % args.mnist_epochs),
                           ("cifar10", "CIFAR-10, cifar10-vgg, augmented, lr 1e-3 to %g"
                            % CIFAR_LR_END)):
        # each run from RUNS, or from KEEP where only KEEP has it finished
        started, finished = [], []
        for r in todo:
            if r["dataset"] != dataset:
                continue
            here = os.path.join(args.runs, r["name"])
            kept = os.path.join(args.keep, r["name"])
            here_state, kept_done = _state(here, r), _state(kept, r) == "finished"
            if here_state == "finished":
                finished.append((here, kept))
            if here_state == "finished" or (here_state == "started" and not kept_done):
                started.append(here)
            elif kept_done:
                started.append(kept)
        if not started:
            continue
        cmd = ["pybnn", "report", *started, "--out", os.path.join(report_root, dataset),
               "--title", title] + (["--infer"] if args.infer else [])
        print("== report\n%s" % shlex.join(cmd), flush=True)
        if subprocess.run([sys.executable, "-m", "pybnn", *cmd[1:]]).returncode != 0:
            failed.append("report " + dataset)
        # keep the finished runs with what the report recorded (infer.json)
        for here, kept in finished:
            _keep(here, kept)
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
