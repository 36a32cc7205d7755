"""The program test_distributed.py starts on every rank with mpiexec.

    python mpi_worker.py steps RESULT.json
        Trains small networks (MLP and CNN; int8 and float backward;
        standard and shift batch norm; dropout and stochastic signs) step by
        step over the ranks and, on every rank, in one process on the same
        global batches, and writes (rank 0) what test_distributed.py checks:
        after every step the state of every rank hashes alike; from equal
        states, one step gives the one-process loss, batch-norm statistics,
        parameters other than the weights and generator positions bit for
        bit, and weight gradients within the bound of docs/distributed.md.

    python mpi_worker.py cli [pybnn arguments]
        pybnn.cli.main(arguments).  BNN_TEST_FAULT=RANK:STEP:SIGNAL makes
        that rank send itself SIGNAL (a number) as it begins optimizer step
        STEP (counted from 1 in this process): a rank killed or stopped
        mid-epoch.
"""
import hashlib
import json
import os
import signal
import sys

import numpy as np


def _fault():
    spec = os.environ.get("BNN_TEST_FAULT")
    if not spec:
        return
    rank, at, sig = (int(v) for v in spec.split(":"))
    if int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))) != rank:
        return
    from pybnn.optim import Optimizer
    original, count = Optimizer.step, [0]

    def faulty_step(self):
        count[0] += 1
        if count[0] == at:
            os.kill(os.getpid(), sig)
        return original(self)

    Optimizer.step = faulty_step


def cli(argv):
    _fault()
    from pybnn.cli import main
    return main(argv)


# ---- steps -------------------------------------------------------------------

CONFIGS = {
    "mlp-int8": dict(arch="mlp", width=48, layers=2, dataset="mnist", bn="standard",
                     dropout_in=0.2, dropout=0.5, backward="int8", stochastic=True, shape=(28, 28, 1)),
    "mlp-float": dict(arch="mlp", width=48, layers=2, dataset="mnist", bn="shift",
                      dropout_in=0.0, dropout=0.5, backward="float", stochastic=False,
                      shape=(28, 28, 1)),
    "cnn-int8": dict(arch="vgg", width=4, dataset="cifar10", bn="shift", dropout_in=0.0,
                     dropout=0.0, backward="int8", stochastic=True, shape=(8, 8, 3)),
    "cnn-float": dict(arch="vgg", width=4, dataset="cifar10", bn="standard", dropout_in=0.0,
                      dropout=0.0, backward="float", stochastic=False, shape=(8, 8, 3)),
}
# global batches: uneven shards on 3 ranks, and one of 2 samples (a rank
# with none)
BATCHES = (10, 11, 2, 10)
U = 2.0 ** -24
X_MAX = 2.0        # the largest |input| of a weight layer here (dropout's 1/(1-p))


def _digest(model, opt):
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    for k, v in sorted(opt.state_dict().items()):
        h.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return h.hexdigest()


def _record_grads(opt):
    """Make opt.step() first copy the gradients into opt.seen."""
    original = opt.step

    def step():
        opt.seen = [p.grad.copy() for p in opt.params]
        return original()

    opt.step = step


def _record_sums(model):
    """Each weight layer's backward first records, per output unit, the
    number of rows m, sum |g| and max |g| of its incoming gradient."""
    for layer in model.layers:
        if layer.family not in ("dense", "conv"):
            continue

        def backward(grad, input_grad=True, layer=layer, original=layer.backward):
            g = np.abs(np.asarray(grad, np.float64)).reshape(-1, np.shape(grad)[-1])
            layer.sums = (g.shape[0], g.sum(axis=0), g.max(axis=0) if len(g) else 0 * g[0])
            return original(grad, input_grad)

        layer.backward = backward


def _bound(layer, ranks):
    """Per output unit, the bound on |G_ranks - G_one| of docs/distributed.md:
    2 gamma_n x_max (sum |g| + m max|g| / 127), n = m + ranks terms."""
    m, s, mx = layer.sums
    n = m + ranks
    gamma = n * U / (1 - n * U)
    return 2 * gamma * X_MAX * (s + m * mx / 127)


def steps(result_path):
    from pybnn.distributed import LocalComm, MPIComm
    from pybnn.losses import squared_hinge
    from pybnn.optim import Optimizer
    from pybnn.recipes import build_model
    from pybnn.train import train_step
    comm = MPIComm(timeout=120)
    one = LocalComm()
    out = {}
    for name, cfg in CONFIGS.items():
        cfg = dict(cfg, mode="bnn")
        shape = cfg.pop("shape")
        rng = np.random.default_rng(7)
        n = sum(BATCHES)
        x = rng.integers(0, 256, (n,) + shape, dtype=np.uint8)
        y = rng.integers(0, 10, n)
        ref = build_model(cfg, shape, 3)
        dist = build_model(cfg, shape, 3)
        ref_opt = Optimizer(ref.parameters(), "adam", lr=0.003)
        dist_opt = Optimizer(dist.parameters(), "adam", lr=0.003)
        _record_grads(ref_opt)
        _record_grads(dist_opt)
        _record_sums(ref)
        weights = {id(p) for layer in ref.layers if layer.family in ("dense", "conv")
                   for p in layer.parameters()}
        report = dict(steps=0, ranks_identical=True, same_loss=True, same_state=True,
                      max_ratio=0.0, unequal_state=[])
        start = 0
        for b in BATCHES:
            xb, yb = x[start:start + b], y[start:start + b]
            start += b
            # from equal states: the one-process step and the distributed one
            dist.load_state_dict(ref.state_dict())
            dist_opt.load_state_dict(ref_opt.state_dict())
            l_one = train_step(ref, ref_opt, squared_hinge, xb, yb, one)
            l_dist = train_step(dist, dist_opt, squared_hinge, xb, yb, comm)
            report["steps"] += 1
            digests = comm.comm.allgather(_digest(dist, dist_opt))
            report["ranks_identical"] &= len(set(digests)) == 1
            report["same_loss"] &= l_one == l_dist
            for p, g_one, g_dist in zip(ref_opt.params, ref_opt.seen, dist_opt.seen):
                if id(p) not in weights:
                    if not np.array_equal(g_one, g_dist):
                        report["same_state"] = False
                        report["unequal_state"].append("grad of %s" % p.name)
                    continue
                layer = next(l for l in ref.layers if p in l.parameters())
                bound = _bound(layer, comm.size).reshape((-1,) + (1,) * (g_one.ndim - 1))
                diff = np.abs(g_one.astype(np.float64) - g_dist)
                ratio = float(np.max(diff / np.maximum(bound, 1e-300)))
                report["max_ratio"] = max(report["max_ratio"], ratio)
            ref_state, dist_state = ref.state_dict(), dist.state_dict()
            for i, layer in enumerate(ref.layers):
                wkeys = {q.name for q in layer.parameters() if id(q) in weights}
                for k in layer.state_dict():
                    if k in wkeys:
                        continue
                    key = "L%d.%s" % (i, k)
                    if not np.array_equal(ref_state[key], dist_state[key]):
                        report["same_state"] = False
                        report["unequal_state"].append(key)
        # the free trajectory of BATCHES steps from the same start (no
        # re-synchronisation): how far the weights drift apart
        ref = build_model(cfg, shape, 3)
        dist = build_model(cfg, shape, 3)
        ref_opt = Optimizer(ref.parameters(), "adam", lr=0.003)
        dist_opt = Optimizer(dist.parameters(), "adam", lr=0.003)
        start = 0
        for b in BATCHES:
            train_step(ref, ref_opt, squared_hinge, x[start:start + b], y[start:start + b], one)
            train_step(dist, dist_opt, squared_hinge, x[start:start + b], y[start:start + b], comm)
            start += b
            report["ranks_identical"] &= len(set(comm.comm.allgather(
                _digest(dist, dist_opt)))) == 1
        report["drift"] = max(float(np.max(np.abs(a - dist.state_dict()[k])))
                              for k, a in ref.state_dict().items()
                              if np.asarray(a).dtype == np.float32)
        out[name] = report
    if comm.rank == 0:
        out["ranks"] = comm.size
        with open(result_path, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    what = sys.argv[1]
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if what == "steps":
        sys.exit(steps(sys.argv[2]))
    sys.exit(cli(sys.argv[2:]))
