#!/usr/bin/env python3
"""A training step with shift-based batch norm and shift-based AdaMax
against the same step with standard batch norm and Adam (the paper's two
shift approximations against what they approximate), interleaved round by
round in one process on the same batch; prints the median ms per step of
each, their ratio and where each step goes (the training code's own
per-layer timers, as `pybnn bench train` prints them).

Run alone on the machine:
    python bench/shift_step.py [--recipe mnist-mlp-fast] [--threads 2] [--rounds 8]
                               [--backward auto|float|int8]
"""
import argparse
import statistics
import time

import pybnn  # noqa: F401  (first: it sets OpenBLAS's thread timeout)
import numpy as np

from pybnn import _core
from pybnn.bench.train import _INPUT, _PybnnStep, _config
from pybnn.nn.dense import resolve_backward
from pybnn.optim import Optimizer

VARIANTS = (("standard BN + Adam", "standard", "adam"),
            ("shift BN + shift-AdaMax", "shift", "shift_adamax"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="mnist-mlp-fast")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5, help="steps per round")
    ap.add_argument("--backward", default="auto", choices=["auto", "float", "int8"],
                    help="the binary layers' backward products (default auto, as pybnn train)")
    args = ap.parse_args()
    _core.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits
    steps = {}
    for name, bn, opt in VARIANTS:
        cfg = _config(args.recipe, backward=resolve_backward(args.backward))
        cfg.update(bn=bn, optimizer=opt)
        shape = _INPUT[cfg["dataset"]]
        step = _PybnnStep(cfg, shape, 0)
        step.opt = Optimizer(step.model.parameters(), opt, lr=cfg["lr_start"])
        steps[name] = step
    batch = cfg["batch_size"]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch,) + tuple(shape), dtype=np.uint8)
    y = rng.integers(0, 10, batch)
    times = {name: [] for name in steps}
    warm = 2
    with threadpool_limits(limits=args.threads):
        for r in range(args.rounds + warm):
            for name, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step.step(x, y, timed=r >= warm)
                times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
    print("%s: batch %d, %d threads, kernels %s, backward %s; %d steps x %d rounds, interleaved"
          % (args.recipe, batch, args.threads, _core.isa(), cfg.get("backward", "float"),
             args.steps, args.rounds))
    med = {name: statistics.median(t[warm:]) for name, t in times.items()}
    for name in steps:
        print("  %-26s median %8.2f ms/step" % (name, med[name]))
    base, shift = (med[v[0]] for v in VARIANTS)
    print("  shift / standard: %.3fx" % (shift / base))
    timed = args.rounds * args.steps
    for name, step in steps.items():
        phases = {}
        for (phase, layer), sec in step.times.seconds.items():
            kind = layer.rsplit("(", 1)[-1].rstrip(")") if phase in ("forward", "backward") else ""
            key = ("%s %s" % (phase, kind)).strip()
            phases[key] = phases.get(key, 0.0) + sec
        print("  %s, ms per step: %s" % (name, ", ".join(
            "%s %.2f" % (k, v / timed * 1e3) for k, v in sorted(phases.items()))))


if __name__ == "__main__":
    main()
