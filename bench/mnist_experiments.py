#!/usr/bin/env python3
"""The results table of README: full MNIST (and one CIFAR-10 epoch).

    python bench/mnist_experiments.py --data ../shared/data/mnist [--cifar DIR] [--only NAME]

Each configuration trains into runs/NAME with `pybnn train` semantics
(resumable: run the script again to continue), then the table is written to
bench/results.md from the runs' metrics.  Run it alone on the machine: the
seconds per epoch are part of the result.
"""
import argparse
import json
import os
import sys

from pybnn.train import train

CONFIGS = [
    # name, recipe, overrides, what
    ("mlp1024-bnn-adam", "mnist-mlp-fast", dict(epochs=20, width=1024, optimizer="adam", bn="standard"),
     "BNN, Adam + BN"),
    ("mlp1024-bnn-shift", "mnist-mlp-fast", dict(epochs=20, width=1024, optimizer="shift_adamax", bn="shift"),
     "BNN, shift-AdaMax + shift-BN"),
    ("mlp1024-bc", "mnist-mlp-fast", dict(epochs=20, width=1024, mode="bc"), "BinaryConnect"),
    ("mlp1024-fp", "mnist-mlp-fast", dict(epochs=20, width=1024, mode="fp"), "full precision"),
    ("mlp4096-paper", "mnist-mlp", dict(epochs=20, threads=2), "mnist-mlp (3x4096), 20 epochs"),
]


def table(root):
    rows = ["| run | configuration | epochs | best val error | test error at best val | "
            "last test error | s/epoch |", "|---|---|---|---|---|---|---|"]
    for name, recipe, over, what in CONFIGS + [("cifar10-vgg-5000", "cifar10-vgg", {}, "cifar10-vgg, 5,000 images, 1 epoch")]:
        path = os.path.join(root, name, "metrics.json")
        if not os.path.exists(path):
            continue
        h = json.load(open(path))
        best = min(h, key=lambda r: (r["val_error"], r["epoch"]))
        rows.append("| %s | %s | %d | %.2f%% | %.2f%% | %.2f%% | %.1f |" % (
            name, what, len(h), 100 * best["val_error"], 100 * best["test_error"],
            100 * h[-1]["test_error"], sum(r["seconds"] for r in h) / len(h)))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with the four MNIST IDX files")
    ap.add_argument("--cifar", default=None, help="CIFAR-10 binary batches (optional)")
    ap.add_argument("--runs", default="runs", help="output folder for the runs")
    ap.add_argument("--only", default=None, help="run only this configuration")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name, recipe, over, what in CONFIGS:
        if args.only and name != args.only:
            continue
        out = os.path.join(args.runs, name)
        resume = os.path.exists(os.path.join(out, "last.npz"))
        print("== %s (%s)%s" % (name, what, " resuming" if resume else ""), flush=True)
        train(recipe, data=args.data, out=out, resume=resume, seed=args.seed, progress=False, **over)
    if args.cifar and (not args.only or args.only == "cifar10-vgg-5000"):
        out = os.path.join(args.runs, "cifar10-vgg-5000")
        train("cifar10-vgg", data=args.cifar, out=out, epochs=1, limit=5000, seed=args.seed,
              resume=os.path.exists(os.path.join(out, "last.npz")), progress=False)
    text = table(args.runs)
    # runs/ may hold only some configurations (--only): rows of the others
    # already in results.md are kept
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md")
    if os.path.exists(path):
        have = {line.split("|")[1].strip() for line in text.splitlines()[2:]}
        old = [line for line in open(path).read().splitlines()
               if line.startswith("| ") and not line.startswith("| run ")
               and line.split("|")[1].strip() not in have]
        order = [c[0] for c in CONFIGS] + ["cifar10-vgg-5000"]
        rows = sorted(text.splitlines()[2:] + old,
                      key=lambda l: order.index(l.split("|")[1].strip())
                      if l.split("|")[1].strip() in order else len(order))
        text = "\n".join(text.splitlines()[:2] + rows)
    with open(path, "w") as f:
        f.write("Commands: python bench/mnist_experiments.py --data DIR [--cifar DIR], seed %d.\n\n"
                % args.seed + text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
