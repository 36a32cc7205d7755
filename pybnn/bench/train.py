"""`pybnn bench train`: a training step of a recipe in pybnn against the
same network, loss, optimizer and batch size in PyTorch
(pybnn/bench/torch_reference.py), interleaved in one process with the same
thread count, plus where pybnn's step spends its time.

The step timed is `pybnn train`'s own (train.build_run, train.train_step).
The breakdown comes from the training code's own timers: Sequential times
each layer's forward and backward when `model.timings` is set, and the
loss and optimizer step are timed around their calls here.  Inputs are
random uint8 images (the time of a step does not depend on the pixels).
"""
from __future__ import annotations

import collections
import os
import statistics
import time

import numpy as np

from .. import _core
from ..distributed import LocalComm
from ..nn.dense import resolve_backward
from ..recipes import check_config, recipe_config
from ..train import build_run, train_step

__all__ = ["PhaseTimes", "bench_train", "bench_memory"]

# The folder holding this pybnn package: the working folder of the child
# processes, so that `python -c "import pybnn..."` imports this same package
# (from a source checkout's root, the current folder's pybnn/ would shadow
# the installed one, which has the compiled extension).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# training images per epoch of each recipe's dataset (after the validation
# split of pybnn train: the last 10,000 for mnist-mlp, else 10%)
_TRAIN_SET = {"mnist": 60000, "cifar10": 50000}
_INPUT = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


class PhaseTimes:
    """Seconds per (phase, name), summed over calls: what Sequential's
    timers and the step around them report."""

    def __init__(self):
        self.seconds = collections.OrderedDict()

    def add(self, phase, name, seconds):
        key = (phase, name)
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def clear(self):
        self.seconds.clear()


def _steps_per_epoch(cfg):
    n = _TRAIN_SET[cfg["dataset"]]
    val = cfg.get("val_size") or 0
    if not val or n < 5 * val:
        val = max(1, n // 10)
    return -(-(n - val) // cfg["batch_size"])


def _config(recipe, width=None, batch_size=None, backward="auto", mode="bnn"):
    cfg = recipe_config(recipe)
    if width is not None:
        cfg["width"] = int(width)
    if batch_size is not None:
        cfg["batch_size"] = int(batch_size)
    cfg.update(recipe=recipe, seed=0, mode=mode, backward=backward)
    check_config(cfg)
    return cfg


def _backward_words(mode, backward):
    """The binary layers' backward products in a heading (full precision
    has no binary layers)."""
    return "float products" if mode == "fp" else "%s backward" % backward


class _TimedOptimizer:
    """The optimizer as train_step calls it, its step timed into `times`."""

    def __init__(self, opt, times):
        self.opt, self.times = opt, times

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        t0 = time.perf_counter()
        self.opt.step()
        self.times.add("optimizer", "optimizer step", time.perf_counter() - t0)


class _PybnnStep:
    """pybnn train's own step (train.train_step on one process) of a
    configuration; timed=True also fills `times` per layer, loss and
    optimizer."""

    def __init__(self, cfg, shape, seed):
        self.model, self.opt, self.loss = build_run(dict(cfg, seed=seed), shape)
        self.times = PhaseTimes()
        self._comm = LocalComm()

    def _timed_loss(self, scores, y):
        t0 = time.perf_counter()
        out = self.loss(scores, y)
        self.times.add("loss", "loss", time.perf_counter() - t0)
        return out

    def step(self, x, y, timed=False):
        self.model.timings = self.times if timed else None
        try:
            if timed:
                return train_step(self.model, _TimedOptimizer(self.opt, self.times),
                                  self._timed_loss, x, y, self._comm)
            return train_step(self.model, self.opt, self.loss, x, y, self._comm)
        finally:
            self.model.timings = None


def _torch_reference():
    from . import torch_reference
    return torch_reference


def bench_train(recipe="mnist-mlp", steps=10, rounds=5, threads=2, width=None,
                batch_size=None, torch=True, seed=0, out=print, backward="auto", mode="bnn"):
    """Time `steps` training steps per round, `rounds` rounds, of pybnn and
    (torch=True) PyTorch in turn; returns a dict of the figures (per-step
    medians, ratio, epoch estimates, pybnn's breakdown)."""
    backward = resolve_backward(backward)
    from threadpoolctl import threadpool_limits
    cfg = _config(recipe, width, batch_size, backward, mode)
    shape = _INPUT[cfg["dataset"]]
    batch = cfg["batch_size"]
    rng = np.random.default_rng(seed)
    n = batch * steps
    x = rng.integers(0, 256, (n,) + shape, dtype=np.uint8)
    y = rng.integers(0, 10, n)
    prev_threads = _core.get_num_threads()
    results = dict(recipe=recipe, mode=mode, backward=backward, width=cfg["width"],
                   batch_size=batch,
                   threads=threads,
                   steps=steps, rounds=rounds, isa=_core.isa(),
                   steps_per_epoch=_steps_per_epoch(cfg))
    tref = tstep = None
    if torch:
        tref = _torch_reference()
        tstep = tref.build(cfg, shape, seed=seed, threads=threads, fast=True)
    try:
        _core.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            pstep = _PybnnStep(cfg, shape, seed)

            def run_pybnn(timed):
                t0 = time.perf_counter()
                for i in range(steps):
                    pstep.step(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch], timed)
                return (time.perf_counter() - t0) / steps

            def run_torch():
                t0 = time.perf_counter()
                for i in range(steps):
                    tstep.step(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
                return (time.perf_counter() - t0) / steps

            # one warm-up step each (allocations, thread start-up)
            pstep.step(x[:batch], y[:batch])
            if tstep is not None:
                tstep.step(x[:batch], y[:batch])
            times_p, times_t = [], []
            for _ in range(rounds):
                times_p.append(run_pybnn(False))
                if tstep is not None:
                    times_t.append(run_torch())
            # the breakdown: one more round with the layers' timers on
            # (their cost is a few perf_counter calls per layer)
            pstep.times.clear()
            timed = run_pybnn(True)
    finally:
        _core.set_num_threads(prev_threads)
    med_p = statistics.median(times_p)
    results.update(pybnn_ms=1e3 * med_p, pybnn_min_ms=1e3 * min(times_p),
                   pybnn_epoch_s=med_p * results["steps_per_epoch"],
                   pybnn_timed_ms=1e3 * timed)
    head = ("%s (%s): width %d, batch %d, %d threads, kernels %s, %s; %d steps x %d "
            "rounds, interleaved" % (recipe, mode, cfg["width"], batch, threads, _core.isa(),
                                     _backward_words(mode, backward), steps, rounds))
    out(head)
    out("  pybnn   median %8.1f ms/step (min %.1f)  epoch of %d steps: %.1f s"
        % (1e3 * med_p, 1e3 * min(times_p), results["steps_per_epoch"], results["pybnn_epoch_s"]))
    if times_t:
        med_t = statistics.median(times_t)
        results.update(torch_ms=1e3 * med_t, torch_min_ms=1e3 * min(times_t),
                       torch_epoch_s=med_t * results["steps_per_epoch"],
                       speedup=med_t / med_p, torch_version=tref.torch_version())
        out("  PyTorch median %8.1f ms/step (min %.1f)  epoch: %.1f s   (torch %s)"
            % (1e3 * med_t, 1e3 * min(times_t), results["torch_epoch_s"],
               results["torch_version"]))
        out("  pybnn is %.2fx PyTorch's speed (PyTorch time / pybnn time)" % results["speedup"])
    per_step = [(phase, name, 1e3 * s / steps) for (phase, name), s in pstep.times.seconds.items()]
    total = sum(ms for _, _, ms in per_step)
    by_phase = collections.OrderedDict()
    for phase, _, ms in per_step:
        by_phase[phase] = by_phase.get(phase, 0.0) + ms
    results["breakdown_ms"] = [dict(phase=p, name=nm, ms=ms) for p, nm, ms in per_step]
    results["phases_ms"] = dict(by_phase)
    out("  pybnn step breakdown (ms per step, from a timed round of %.1f ms/step):" % (1e3 * timed))
    for phase, name, ms in per_step:
        if ms >= 0.05:
            out("    %-9s %-28s %8.2f  %5.1f%%" % (phase, name, ms, 100 * ms / total))
    out("    " + ", ".join("%s %.1f" % kv for kv in by_phase.items())
        + "; other (Python between layers) %.1f" % max(0.0, 1e3 * timed - total))
    return results


# ---- memory: peak RSS per training sample ------------------------------------

def _rss_kb(field="VmRSS"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError("no %s in /proc/self/status" % field)


def _memory_child(framework, recipe, batch, threads, backward, steps, width=None, mode="bnn"):
    """Run in a fresh process: `steps` training steps at `batch`; prints one
    JSON line with the peak RSS (VmHWM) and, for pybnn, the memory plan's
    prediction made before the first step."""
    import json
    from threadpoolctl import threadpool_limits
    cfg = _config(recipe, width, batch, backward, mode)
    shape = _INPUT[cfg["dataset"]]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch,) + shape, dtype=np.uint8)
    y = rng.integers(0, 10, batch)
    base_kb = _rss_kb()
    res = dict(framework=framework, batch=batch)
    _core.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        if framework == "torch":
            step = _torch_reference().build(cfg, shape, seed=0, threads=threads, fast=True)
        else:
            step = _PybnnStep(cfg, shape, 0)
            plan = step.model.memory_plan(batch, shape, step.opt)
            res["predicted_kb"] = base_kb + plan["predicted"] / 1024
            res["plan"] = plan
        for _ in range(steps):
            step.step(x, y)
    res["peak_kb"] = _rss_kb("VmHWM")
    print("MEMORY " + json.dumps(res))


def bench_memory(recipe="cifar10-vgg", batches=(25, 100), threads=2, torch=True, steps=2,
                 backward="auto", width=None, mode="bnn", out=print):
    """Peak resident memory of `steps` training steps at each batch size,
    each in its own process, for pybnn and (torch=True) the PyTorch
    reference: the slope over the batch sizes is the memory per training
    sample.  Also checks pybnn's memory plan against the measured peaks."""
    backward = resolve_backward(backward)
    import json
    import subprocess
    import sys
    frameworks = ["pybnn"] + (["torch"] if torch else [])
    runs = {}
    for fw in frameworks:
        for b in batches:
            code = ("from pybnn.bench.train import _memory_child; "
                    "_memory_child(%r, %r, %d, %d, %r, %d, %r, %r)"
                    % (fw, recipe, b, threads, backward, steps, width, mode))
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  cwd=_PACKAGE_PARENT)
            line = [l for l in proc.stdout.splitlines() if l.startswith("MEMORY ")]
            if proc.returncode != 0 or not line:
                raise RuntimeError("the %s run at batch %d failed:\n%s"
                                   % (fw, b, proc.stderr[-2000:]))
            runs[(fw, b)] = json.loads(line[0][len("MEMORY "):])
    b0, b1 = batches[0], batches[-1]
    res = dict(recipe=recipe, mode=mode, width=width, batches=list(batches), threads=threads,
               backward=backward, isa=_core.isa(), runs=[runs[k] for k in sorted(runs)])
    out("%s (%s%s): peak RSS of %d training steps, each batch size in its own process, "
        "%d threads, kernels %s, %s"
        % (recipe, mode, "" if width is None else ", width %d" % width, steps, threads,
           _core.isa(), _backward_words(mode, backward)))
    for fw in frameworks:
        peaks = [runs[(fw, b)]["peak_kb"] / 1024 for b in batches]
        slope = (peaks[-1] - peaks[0]) / (b1 - b0)
        res[fw + "_mb_per_sample"] = slope
        out("  %-6s " % fw + "  ".join("batch %d: %.0f MB" % (b, p) for b, p in zip(batches, peaks))
            + "   per sample: %.2f MB" % slope)
    if torch:
        res["ratio"] = res["pybnn_mb_per_sample"] / res["torch_mb_per_sample"]
        out("  pybnn keeps %.2fx PyTorch's memory per sample (%.2f / %.2f MB)"
            % (res["ratio"], res["pybnn_mb_per_sample"], res["torch_mb_per_sample"]))
    for b in batches:
        r = runs[("pybnn", b)]
        out("  plan at batch %d: predicted peak %.0f MB, measured %.0f MB (%+.0f%%); "
            "kept for backward %.1f KB/sample, step %.2f MB/sample"
            % (b, r["predicted_kb"] / 1024, r["peak_kb"] / 1024,
               100 * (r["predicted_kb"] / r["peak_kb"] - 1), r["plan"]["kept_per_sample"] / 1024,
               r["plan"]["step_per_sample"] / 2 ** 20))
    return res


# ---- ranks: data-parallel steps over MPI against threads ---------------------

def _ranks_child(recipe, width, batch_size, backward, steps, rounds, threads, distributed):
    """Run in each rank (or one process): time `rounds` rounds of `steps`
    training steps of the global batch; rank 0 prints one JSON line with
    the per-step medians and the collectives' seconds and bytes per step."""
    import json
    from threadpoolctl import threadpool_limits
    from ..distributed import communicator
    from ..train import train_step
    comm = communicator(distributed)
    cfg = _config(recipe, width, batch_size, backward)
    shape = _INPUT[cfg["dataset"]]
    batch = cfg["batch_size"]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch * steps,) + shape, dtype=np.uint8)
    y = rng.integers(0, 10, batch * steps)
    _core.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        step = _PybnnStep(cfg, shape, 0)

        def run():
            comm.barrier()
            t0 = time.perf_counter()
            for i in range(steps):
                train_step(step.model, step.opt, step.loss, x[i * batch:(i + 1) * batch],
                           y[i * batch:(i + 1) * batch], comm)
            comm.barrier()
            return (time.perf_counter() - t0) / steps

        run()                                      # warm-up round
        comm.stats.clear()
        times = [run() for _ in range(rounds)]
    per_step = steps * rounds
    res = dict(ranks=comm.size, threads=threads, ms=1e3 * statistics.median(times),
               min_ms=1e3 * min(times),
               comm_ms={k: 1e3 * v / per_step for k, v in comm.stats.seconds.items()
                        if k != "barrier"},
               comm_bytes={k: v / per_step for k, v in comm.stats.bytes.items()
                           if k != "barrier"})
    if comm.rank == 0:
        print("RANKS " + json.dumps(res), flush=True)


def bench_ranks(recipe="mnist-mlp", ranks=(1, 2), steps=10, rounds=5, width=None,
                batch_size=None, backward="auto", threads=2, out=print):
    """Data-parallel steps over MPI: each count in `ranks` as `mpiexec -n R`
    with one thread per rank, and one process with `threads` threads, each
    in its own processes and on the same global batch; prints the median ms
    per step, the share of it spent waiting in the gradient allreduce and
    in the gathers (batch norm, scores), and the bytes each rank sends per
    step.  Returns the figures."""
    import json
    import subprocess
    import sys
    from ..distributed import mpiexec_path
    backward = resolve_backward(backward)
    cfg = _config(recipe, width, batch_size, backward)
    mpiexec = mpiexec_path()
    if mpiexec is None:
        raise ValueError("bench train --ranks needs an MPI launcher: pip install 'pybnn[mpi]'")
    runs = []
    cases = [(r, 1, True) for r in ranks] + [(1, threads, False)]
    for r, t, distributed in cases:
        code = ("from pybnn.bench.train import _ranks_child; _ranks_child(%r, %r, %r, %r, %d, "
                "%d, %d, %r)" % (recipe, width, batch_size, backward, steps, rounds, t,
                                 distributed))
        cmd = ([mpiexec, "-n", str(r)] if distributed else []) + [sys.executable, "-c", code]
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              cwd=_PACKAGE_PARENT)
        line = [l for l in proc.stdout.splitlines() if l.startswith("RANKS ")]
        if proc.returncode != 0 or not line:
            raise RuntimeError("the run with %d rank(s) x %d thread(s) failed:\n%s"
                               % (r, t, (proc.stdout + proc.stderr)[-2000:]))
        res = json.loads(line[0][len("RANKS "):])
        res["mpi"] = distributed
        runs.append(res)
    base = runs[0]["ms"]
    out("%s: width %d, global batch %d, kernels %s, %s backward; %d steps x %d rounds, "
        "each case in its own processes" % (recipe, cfg["width"], cfg["batch_size"],
                                            _core.isa(), backward, steps, rounds))
    out("  %-22s %10s %8s %16s %16s %14s" % ("case", "ms/step", "speedup", "allreduce",
                                             "gathers", "MB in/rank"))
    for res in runs:
        ms = res["ms"]
        ar, ga = res["comm_ms"].get("allreduce", 0.0), res["comm_ms"].get("gather", 0.0)
        sent = sum(res["comm_bytes"].values()) / 2 ** 20
        name = ("%d rank%s x 1 thread" % (res["ranks"], "s" if res["ranks"] > 1 else "")
                if res["mpi"] else "1 process x %d threads" % res["threads"])
        res["allreduce_share"], res["gather_share"] = ar / ms, ga / ms
        out("  %-22s %10.1f %7.2fx %8.1f ms %4.0f%% %8.1f ms %4.0f%% %14.2f"
            % (name, ms, base / ms, ar, 100 * ar / ms, ga, 100 * ga / ms, sent))
    out("  (allreduce: waiting for the weight gradients' sum after backward; gathers: the "
        "batch norms' rows and the scores, waiting included; MB in/rank: the buffers each "
        "rank hands to the collectives per step -- a ring allreduce sends 2(R-1)/R of its "
        "buffer, a gather (R-1)/R of the result: docs/distributed.md)")
    return dict(recipe=recipe, backward=backward, width=cfg["width"],
                batch_size=cfg["batch_size"], isa=_core.isa(), runs=runs)
