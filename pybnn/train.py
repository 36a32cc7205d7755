"""`pybnn train`: recipes, checkpoints that resume exactly, metrics.

A run writes into --out: last.npz (every epoch), best.npz (best
validation error, the paper's model selection), metrics.csv and
metrics.json (the configuration, the model's size, the training memory
per sample and the history: see _write_metrics), and curves.png when
matplotlib is installed.  Checkpoints are plain .npz (no pickle):
weights, batch-norm statistics, optimizer moments, the random
generators' states, the configuration, the schedule and the history.
Ctrl-C stops after saving nothing new: last.npz already holds the last
finished epoch, and --resume continues bit-for-bit as if never stopped.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time

import numpy as np

from . import _core, checkpoint
from .data import random_crop_flip
from .distributed import LocalComm, shard_bounds
from .deploy import FoldError, model_bytes
from .losses import softmax_cross_entropy, squared_hinge
from .optim import ExponentialDecay, Optimizer
from .nn.dense import resolve_backward
from .nn.sequential import format_memory_plan
from .recipes import build_model, check_config, load_data, recipe_config

__all__ = ["train", "train_step"]

# ---- training ----------------------------------------------------------------

def _evaluate(model, x, y, comm, batch=1000):
    """The error rate on (x, y): each rank counts the errors of its slice,
    the counts are summed (integers: the same rate for any rank count)."""
    model.eval()
    lo, hi = shard_bounds(len(y), comm.size, comm.rank)
    _, classes = model.predict(x[lo:hi], batch_size=batch)
    errors = int(comm.sum([np.count_nonzero(classes != y[lo:hi])])[0])
    return errors / len(y) if len(y) else 0.0


def build_run(cfg, shape):
    """The model (seeded with cfg["seed"]), its optimizer at the starting
    learning rate and the loss function of a run configuration, for inputs
    of `shape`: what a step of `pybnn train` runs (and `pybnn bench train`
    times)."""
    model = build_model(cfg, shape, cfg["seed"])
    opt = Optimizer(model.parameters(), cfg["optimizer"], lr=cfg["lr_start"])
    loss_fn = squared_hinge if cfg["loss"] == "squared_hinge" else softmax_cross_entropy
    return model, opt, loss_fn


def train_step(model, opt, loss_fn, xb, yb, comm, check_loss=None):
    """One optimizer step on the global batch (xb, yb); returns its loss.
    With a distributed comm this rank runs its shard of the batch (the
    layers gather what is not per-sample, pybnn.distributed) and the weight
    gradients are summed over the ranks before the step; with LocalComm
    every hook is the identity.  check_loss(loss) runs before backward."""
    shard = comm.shard(len(yb))
    model.shard = shard
    try:
        reducer = comm.reducer(model)
        opt.zero_grad()
        # the loss of the global batch's scores (every rank computes the
        # same floats), the gradient of this rank's rows
        loss, grad = loss_fn(shard.gather(model.forward(shard.own(xb))), yb)
        if check_loss is not None:
            check_loss(loss)
        model.backward(shard.own(grad))
        reducer.finish()
    finally:
        model.shard = model.grad_ready = None
    opt.step()
    return loss


def train(recipe="mnist-mlp-fast", epochs=None, width=None, batch_size=None, seed=0,
          data=None, out="pybnn-run", resume=False, optimizer=None, bn=None, mode="bnn",
          threads=None, lr=None, progress=True, limit=None, log=print, backward=None,
          stochastic=False, augment=False, comm=None, lr_end=None):
    """Train a recipe; returns (the metrics history, a list of dicts; the
    run state).  Every setting that shapes the run is recorded in the
    checkpoints' configuration and in metrics.json.
    backward: the arithmetic of the binary layers' backward products,
    "float" (exact products), "int8" (a stochastically rounded gradient,
    exact integer products) or "auto" (resolve_backward: int8 on the x86
    SIMD kernels, float on the reference ones); the one used is recorded
    in the checkpoint's configuration.  None (the default): "auto" for a
    new run, the checkpoint's own for a resumed one.
    stochastic: the binary activations draw their signs in training, +1
    with probability hardsigmoid(x) (mode "bnn" only; the weights stay
    deterministic).
    lr, lr_end: the learning rate of the first epoch and the one the
    per-epoch exponential decay reaches after `epochs` (None: the
    recipe's; the paper's recipes spread their decay over 500 or 1000
    epochs, so a shorter run with their lr_end decays much faster).
    augment: each training batch is randomly cropped (4-pixel padding) and
    mirrored (pybnn.data.random_crop_flip), drawn from the run's generator
    (CIFAR-10 only).
    threads: the threads of libbnn's kernels and of numpy's BLAS, set for
    the rest of the process (None: leave both as they are).
    comm: a pybnn.distributed communicator for data-parallel training (an
    MPIComm: every rank calls train() alike and trains on its shard of each
    global batch of batch_size; rank 0 alone writes the checkpoints,
    metrics and log); None: one process (LocalComm)."""
    comm = LocalComm() if comm is None else comm
    root = comm.rank == 0
    if not root:                        # the other ranks are silent unless they fail
        log, progress = (lambda *a, **k: None), False
    cfg = recipe_config(recipe)
    for key, val in (("epochs", epochs), ("width", width), ("batch_size", batch_size),
                     ("optimizer", optimizer), ("bn", bn), ("lr_start", lr),
                     ("lr_end", lr_end)):
        if val is not None:
            cfg[key] = val
    if lr_end is not None and not 0 < lr_end <= cfg["lr_start"]:
        raise ValueError("the final learning rate (lr_end %r) must be above 0 and at most the "
                         "starting one (%r)" % (lr_end, cfg["lr_start"]))
    if data is None and cfg["dataset"] == "mnist" and epochs is None:
        cfg["epochs"] = 10          # the bundled sample: a one-minute run
    cfg.update(recipe=recipe, seed=int(seed), mode=mode, limit=limit,
               stochastic=bool(stochastic), augment=bool(augment))
    check_config(cfg)
    last_path = os.path.join(out, "last.npz")
    if backward is None:
        backward = _saved_backward(last_path) if resume else "auto"
    cfg["backward"] = resolve_backward(backward)
    if threads:
        _set_threads(int(threads))
    os.makedirs(out, exist_ok=True)
    x, y, xt, yt = load_data(cfg, data)
    if limit:
        x, y = x[:int(limit)], y[:int(limit)]   # a quick run on the first `limit` images
    # validation: the last val_size training images (the paper's 10,000 for
    # MNIST) when the set is large enough, else its last 10%
    n_val = cfg.get("val_size") or 0
    if not n_val or len(x) < 5 * n_val:
        n_val = max(1, len(x) // 10)
    xv, yv, x, y = x[-n_val:], y[-n_val:], x[:-n_val], y[:-n_val]
    model, opt, loss_fn = build_run(cfg, x.shape[1:])
    sched = ExponentialDecay(opt, cfg["lr_start"], min(cfg["lr_end"], cfg["lr_start"]),
                             cfg["epochs"])
    rng = np.random.default_rng(cfg["seed"])
    state = dict(config=cfg, input_shape=list(x.shape[1:]), epoch=0, best_val=None,
                 best_epoch=None, history=[], rng=None)
    if resume:
        if not os.path.exists(last_path):
            raise ValueError("nothing to resume: %s does not exist" % last_path)
        d = checkpoint.read(last_path)
        saved = checkpoint.run_state(d, last_path)
        # a checkpoint older than a setting was trained with its ADDED_SETTINGS value
        want, have = json.loads(json.dumps(cfg)), checkpoint.run_config(saved)
        if have != want:
            differ = ", ".join("%s (saved %r, asked %r)" % (k, have.get(k), want.get(k))
                               for k in sorted(set(have) | set(want))
                               if have.get(k) != want.get(k))
            raise ValueError("%s was written by a different configuration: %s; saved: %s"
                             % (last_path, differ, have))
        checkpoint.load_model_state(model, d, last_path)
        opt.load_state_dict({k[4:]: d[k] for k in d if k.startswith("opt.")})
        rng.bit_generator.state = json.loads(saved["rng"])
        state = saved
        state["config"] = want          # every setting named from now on
        log("resuming %s at epoch %d" % (last_path, state["epoch"]))
    history = state["history"]
    if root:
        plan = model.memory_plan(cfg["batch_size"], x.shape[1:], opt)
        run = _run_facts(model, x, xv, xt, plan, comm)
        _write_metrics(out, state, run)
        if state["epoch"] < cfg["epochs"]:
            log(format_memory_plan(plan))
            if comm.distributed:
                log("data-parallel over %s: global batch %d" % (comm.describe(),
                                                                cfg["batch_size"]))
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None

    def check_finite(loss):
        if not math.isfinite(loss):
            raise FloatingPointError(
                "the loss became %r at epoch %d; stopping, %s keeps the last good epoch"
                % (loss, state["epoch"] + 1, last_path))

    while state["epoch"] < cfg["epochs"]:
        epoch = state["epoch"]
        opt.lr = sched.lr_at(epoch)
        model.train()
        perm = rng.permutation(len(x))
        t0 = time.perf_counter()
        total, batches = 0.0, 0
        steps = range(0, len(x), cfg["batch_size"])
        # mean loss over each tenth of the epoch's steps (progress within an
        # epoch; fewer parts when an epoch has fewer than 10 steps)
        ends = sorted({-(-len(steps) * (j + 1) // 10) for j in range(10)})
        trace, part, start = [], 0.0, 0
        bar = tqdm(steps, desc="epoch %d/%d" % (epoch + 1, cfg["epochs"]), leave=False,
                   disable=not progress, file=sys.stderr) if tqdm else steps
        for i in bar:
            b = perm[i:i + cfg["batch_size"]]
            xb = random_crop_flip(x[b], rng) if cfg["augment"] else x[b]
            loss = train_step(model, opt, loss_fn, xb, y[b], comm, check_finite)
            total += loss
            part += loss
            batches += 1
            if batches == ends[len(trace)]:
                trace.append(part / (batches - start))
                part, start = 0.0, batches
                if tqdm and progress:
                    bar.set_postfix(loss="%.4f" % trace[-1])
        train_time = time.perf_counter() - t0
        val_err = _evaluate(model, xv, yv, comm)
        test_err = _evaluate(model, xt, yt, comm)
        row = dict(epoch=epoch + 1, loss=total / max(batches, 1), val_error=val_err,
                   test_error=test_err, lr=opt.lr, seconds=train_time,
                   loss_by_tenth=[round(float(v), 6) for v in trace])
        history.append(row)
        state["epoch"] = epoch + 1
        state["rng"] = json.dumps(rng.bit_generator.state)
        if state["best_val"] is None or val_err <= state["best_val"]:
            state["best_val"], state["best_epoch"] = val_err, epoch + 1
            state["best_test"] = test_err
            if root:
                checkpoint.save(os.path.join(out, "best.npz"), model, opt, state)
        if root:
            checkpoint.save(last_path, model, opt, state)
            _write_metrics(out, state, run)
        log("epoch %d/%d  loss %.4f  val error %.2f%%  test error %.2f%%  (%.1f s)"
            % (epoch + 1, cfg["epochs"], row["loss"], 100 * val_err, 100 * test_err, train_time))
    return history, state


def _set_threads(n):
    """n threads for the whole step, for the rest of the process: libbnn's
    kernels and the float products numpy hands to its BLAS (the float
    layers of the baselines, the first layer's weight gradient), which
    would otherwise take every CPU."""
    from threadpoolctl import threadpool_limits
    _core.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")


def _saved_backward(path):
    """The backward arithmetic a checkpoint was trained with ("float" when
    its configuration names none: runs before the setting existed), or
    "auto" when there is no checkpoint (the resume then fails clearly)."""
    if not os.path.exists(path):
        return "auto"
    saved = checkpoint.run_state(checkpoint.read(path), path)
    return checkpoint.run_config(saved)["backward"]


def _run_facts(model, x, xv, xt, plan, comm):
    """What metrics.json says of a run besides its configuration and
    history: the data, the model's size, the training memory, the machine."""
    shape = tuple(int(d) for d in x.shape[1:])
    params = sum(p.value.size for p in model.parameters())
    try:
        size, size_of = len(model_bytes(model, shape)), "bnn"
    except FoldError:                   # "bc", "fp": no .bnn file; float32 weights
        size, size_of = 4 * params, "float32"
    return dict(input_shape=list(shape),
                data=dict(train=len(x), validation=len(xv), test=len(xt)),
                parameters=int(params), model_bytes=int(size), model_bytes_of=size_of,
                # the memory plan's total grows by this much per sample of the batch
                train_bytes_per_sample=int(plan["step_per_sample"]),
                train_bytes_fixed=int(plan["predicted"] - plan["batch_size"]
                                      * plan["step_per_sample"]),
                threads=_core.get_num_threads(), kernels=_core.isa(),
                # data-parallel runs: the ranks (threads is each rank's)
                **(dict(ranks=comm.size) if comm.distributed else {}))


def _write_metrics(out, state, run):
    """metrics.json: {"config": the run's configuration, the facts of
    _run_facts, "best_epoch": the epoch best.npz holds, "history": one row
    per epoch}; metrics.csv: the history's rows (without loss_by_tenth);
    curves.png when matplotlib is installed."""
    history = state["history"]
    metrics = dict(config=state["config"], **run, best_epoch=state["best_epoch"],
                   history=history)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    if not history:
        return
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
        fields = [k for k in history[0] if k != "loss_by_tenth"]   # JSON only
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)
    from .report import pyplot
    plt = pyplot()
    if plt is None:
        return
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(ep, [h["loss"] for h in history])
    ax[0].set_xlabel("epoch"); ax[0].set_ylabel("training loss")
    ax[1].plot(ep, [100 * h["val_error"] for h in history], label="validation")
    ax[1].plot(ep, [100 * h["test_error"] for h in history], label="test")
    ax[1].set_xlabel("epoch"); ax[1].set_ylabel("error %"); ax[1].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=100)
    plt.close(fig)
