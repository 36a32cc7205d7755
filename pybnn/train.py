"""`pybnn train`: recipes, checkpoints that resume exactly, metrics.

A run writes into --out: last.npz (every epoch), best.npz (best
validation error, the paper's model selection), metrics.csv and
metrics.json, and curves.png when matplotlib is installed.  Checkpoints
are plain .npz (no pickle): weights, batch-norm statistics, optimizer
moments, the random generators' states, the schedule and the history.
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

from . import _core
from .datasets import load_cifar10, load_mnist
from .losses import softmax_cross_entropy, squared_hinge
from .nn import (BatchNorm, BinaryConv2d, BinaryDense, Dropout, Flatten, MaxPool2d, Sequential,
                 Sign)
from .optim import ExponentialDecay, Optimizer

__all__ = ["RECIPES", "train", "build_model", "load_checkpoint"]

# Each recipe: architecture, data, optimizer and schedule.  Sources for the
# paper's: PAPER.md §8 (Theano MNIST MLP, CIFAR-10 VGG-like network).
RECIPES = {
    "mnist-mlp": dict(arch="mlp", width=4096, layers=3, dataset="mnist", epochs=1000,
                      batch_size=100, optimizer="adam", lr_start=0.003, lr_end=3e-7,
                      bn="standard", dropout_in=0.2, dropout=0.5, loss="squared_hinge",
                      val_size=10000, recompute=False,
                      help="784-4096x3-10, the paper's Theano MNIST setup (dropout 0.2 on "
                           "the input, 0.5 after each hidden sign; the last 10,000 training "
                           "images validate)"),
    "mnist-mlp-fast": dict(arch="mlp", width=1024, layers=3, dataset="mnist", epochs=20,
                           batch_size=100, optimizer="adam", lr_start=0.003, lr_end=3e-5,
                           bn="standard", dropout_in=0.0, dropout=0.0, loss="squared_hinge",
                           help="our recipe for a good error in few epochs (the default)"),
    "cifar10-vgg": dict(arch="vgg", width=128, dataset="cifar10", epochs=500, batch_size=50,
                        optimizer="adam", lr_start=0.001, lr_end=3e-7, bn="standard",
                        dropout_in=0.0, dropout=0.0, loss="squared_hinge",
                        help="(2x128C3)-MP2-(2x256C3)-MP2-(2x512C3)-MP2-(2x1024FC)-10"),
}


def build_model(cfg, input_shape, seed):
    """The Sequential of a recipe config (width scaled by cfg['width'])."""
    rng = np.random.default_rng(seed)
    bn = cfg["bn"]
    layers = []
    if cfg.get("dropout_in"):
        layers.append(Dropout(cfg["dropout_in"], seed=seed + 100))
    if cfg["arch"] == "mlp":
        width = int(cfg["width"])
        k = int(np.prod(input_shape))
        for i in range(int(cfg["layers"])):
            layers += [BinaryDense(k, width, rng=rng), BatchNorm(width, bn), Sign()]
            if cfg.get("dropout"):
                layers.append(Dropout(cfg["dropout"], seed=seed + 101 + i))
            k = width
        layers += [BinaryDense(k, 10, rng=rng), BatchNorm(10, bn)]
    elif cfg["arch"] == "vgg":
        w = int(cfg["width"])
        c = input_shape[-1]
        hw = input_shape[0]
        for j, ch in enumerate((w, 2 * w, 4 * w)):
            layers += [BinaryConv2d(c, ch, 3, padding=1, rng=rng), BatchNorm(ch, bn), Sign(),
                       BinaryConv2d(ch, ch, 3, padding=1, rng=rng), MaxPool2d(2),
                       BatchNorm(ch, bn), Sign()]
            c, hw = ch, hw // 2
        layers.append(Flatten())
        k = hw * hw * c
        for _ in range(2):
            layers += [BinaryDense(k, 8 * w, rng=rng), BatchNorm(8 * w, bn), Sign()]
            k = 8 * w
        layers += [BinaryDense(k, 10, rng=rng), BatchNorm(10, bn)]
    else:
        raise ValueError("unknown architecture %r" % (cfg["arch"],))
    return Sequential(layers, mode=cfg.get("mode", "bnn"), recompute=cfg.get("recompute", True))


def _load_data(cfg, data_dir):
    if cfg["dataset"] == "mnist":
        return load_mnist(data_dir)
    if data_dir is None:
        raise ValueError("the cifar10 recipe needs --data DIR (CIFAR-10 binary batches)")
    return load_cifar10(data_dir)


# ---- checkpoints -----------------------------------------------------------

def _model_arrays(model):
    d = {}
    for i, layer in enumerate(model.layers):
        for p in layer.parameters():
            d["L%d.%s" % (i, p.name)] = p.value
        if isinstance(layer, BatchNorm):
            d["L%d.running_mean" % i] = layer.running_mean
            d["L%d.running_invstd" % i] = layer.running_invstd
        if isinstance(layer, Sign):
            d["L%d.counter" % i] = np.array(layer.counter, np.uint64)
        if isinstance(layer, Dropout):
            d["L%d.rng" % i] = np.array(json.dumps(layer.rng.bit_generator.state))
    return d


def _set_model_arrays(model, d):
    for i, layer in enumerate(model.layers):
        for p in layer.parameters():
            key = "L%d.%s" % (i, p.name)
            if key not in d or d[key].shape != p.value.shape:
                raise ValueError("checkpoint does not match the model: %s %s" % (
                    key, "missing" if key not in d else "has shape %r, expected %r"
                    % (d[key].shape, p.value.shape)))
            p.value[...] = d[key]
        if isinstance(layer, BatchNorm):
            layer.running_mean[...] = d["L%d.running_mean" % i]
            layer.running_invstd[...] = d["L%d.running_invstd" % i]
        if isinstance(layer, Sign):
            layer.counter = int(d["L%d.counter" % i])
        if isinstance(layer, Dropout):
            layer.rng.bit_generator.state = json.loads(str(d["L%d.rng" % i]))


def _save(path, model, opt, state):
    arrays = _model_arrays(model)
    for k, v in opt.state_dict().items():
        arrays["opt." + k] = np.asarray(v)
    arrays["state"] = np.array(json.dumps(state))
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)   # never leave a half-written checkpoint


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError("cannot read checkpoint %s: %s" % (path, e)) from e


def load_checkpoint(path):
    """The Sequential stored in a checkpoint (in eval mode)."""
    d = _read_npz(path)
    if "state" not in d:
        raise ValueError("%s is not a pybnn checkpoint" % path)
    state = json.loads(str(d["state"]))
    model = build_model(state["config"], tuple(state["input_shape"]), state["config"]["seed"])
    _set_model_arrays(model, d)
    return model.eval()


# ---- training ----------------------------------------------------------------

def _evaluate(model, x, y, batch=1000):
    model.eval()
    _, classes = model.predict(x, batch_size=batch)
    return float(np.mean(classes != y)) if len(y) else 0.0


def train(recipe="mnist-mlp-fast", epochs=None, width=None, batch_size=None, seed=0,
          data=None, out="pybnn-run", resume=False, optimizer=None, bn=None, mode="bnn",
          threads=None, lr=None, progress=True, limit=None, log=print):
    """Train a recipe; returns the metrics history (list of dicts)."""
    if recipe not in RECIPES:
        raise ValueError("unknown recipe %r; choose from %s" % (recipe, ", ".join(RECIPES)))
    cfg = {k: v for k, v in RECIPES[recipe].items() if k != "help"}
    for key, val in (("epochs", epochs), ("width", width), ("batch_size", batch_size),
                     ("optimizer", optimizer), ("bn", bn), ("lr_start", lr)):
        if val is not None:
            cfg[key] = val
    if data is None and cfg["dataset"] == "mnist" and epochs is None:
        cfg["epochs"] = 10          # the bundled sample: a one-minute run
    cfg.update(recipe=recipe, seed=int(seed), mode=mode, limit=limit)
    if threads:
        _core.set_num_threads(int(threads))
    os.makedirs(out, exist_ok=True)
    last_path = os.path.join(out, "last.npz")
    x, y, xt, yt = _load_data(cfg, data)
    if limit:
        x, y = x[:int(limit)], y[:int(limit)]   # a quick run on the first `limit` images
    # validation: the last val_size training images (the paper's 10,000 for
    # MNIST) when the set is large enough, else its last 10%
    n_val = cfg.get("val_size") or 0
    if not n_val or len(x) < 5 * n_val:
        n_val = max(1, len(x) // 10)
    xv, yv, x, y = x[-n_val:], y[-n_val:], x[:-n_val], y[:-n_val]
    model = build_model(cfg, x.shape[1:], cfg["seed"])
    opt = Optimizer(model.parameters(), cfg["optimizer"], lr=cfg["lr_start"])
    sched = ExponentialDecay(opt, cfg["lr_start"], min(cfg["lr_end"], cfg["lr_start"]),
                             cfg["epochs"])
    loss_fn = squared_hinge if cfg["loss"] == "squared_hinge" else softmax_cross_entropy
    rng = np.random.default_rng(cfg["seed"])
    state = dict(config=cfg, input_shape=list(x.shape[1:]), epoch=0, best_val=None,
                 best_epoch=None, history=[], rng=None)
    if resume:
        if not os.path.exists(last_path):
            raise ValueError("nothing to resume: %s does not exist" % last_path)
        d = _read_npz(last_path)
        saved = json.loads(str(d["state"]))
        if saved["config"] != json.loads(json.dumps(cfg)):
            raise ValueError("%s was written by a different configuration: %s"
                             % (last_path, saved["config"]))
        _set_model_arrays(model, d)
        opt.load_state_dict({k[4:]: d[k] for k in d if k.startswith("opt.")})
        rng.bit_generator.state = json.loads(saved["rng"])
        state = saved
        log("resuming %s at epoch %d" % (last_path, state["epoch"]))
    history = state["history"]
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
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
            opt.zero_grad()
            loss, grad = loss_fn(model.forward(x[b]), y[b])
            if not math.isfinite(loss):
                raise FloatingPointError(
                    "the loss became %r at epoch %d; stopping, %s keeps the last good epoch"
                    % (loss, epoch + 1, last_path))
            model.backward(grad)
            opt.step()
            total += loss
            part += loss
            batches += 1
            if batches == ends[len(trace)]:
                trace.append(part / (batches - start))
                part, start = 0.0, batches
                if tqdm and progress:
                    bar.set_postfix(loss="%.4f" % trace[-1])
        train_time = time.perf_counter() - t0
        val_err = _evaluate(model, xv, yv)
        test_err = _evaluate(model, xt, yt)
        row = dict(epoch=epoch + 1, loss=total / max(batches, 1), val_error=val_err,
                   test_error=test_err, lr=opt.lr, seconds=train_time,
                   loss_by_tenth=[round(float(v), 6) for v in trace])
        history.append(row)
        state["epoch"] = epoch + 1
        state["rng"] = json.dumps(rng.bit_generator.state)
        if state["best_val"] is None or val_err <= state["best_val"]:
            state["best_val"], state["best_epoch"] = val_err, epoch + 1
            state["best_test"] = test_err
            _save(os.path.join(out, "best.npz"), model, opt, state)
        _save(last_path, model, opt, state)
        _write_metrics(out, history)
        log("epoch %d/%d  loss %.4f  val error %.2f%%  test error %.2f%%  (%.1f s)"
            % (epoch + 1, cfg["epochs"], row["loss"], 100 * val_err, 100 * test_err, train_time))
    return history, state


def _write_metrics(out, history):
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(history, f, indent=1)
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
        fields = [k for k in history[0] if k != "loss_by_tenth"]   # JSON only
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
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
