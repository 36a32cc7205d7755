"""The `pybnn` command: `pybnn train`, `pybnn report RUN_DIR...`,
`pybnn export CHECKPOINT -o FILE`, `pybnn download NAME`,
`pybnn bench gemm|conv|infer|train|cuda [--quick]`, `pybnn info [FILE]`."""
from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args):
    if args.file is not None:
        from .deploy.inspect import describe
        lines = describe(args.file)       # a bad file: BnnFormatError naming offset and reason
        print("%s:" % args.file)
        for line in lines:
            print(line)
        return 0
    import numpy as np

    import pybnn
    from . import _core
    from .bench import blas_name
    print("pybnn %s (libbnn %s, layout %d)" % (pybnn.__version__, _core.version_string(),
                                              _core.LAYOUT_VERSION))
    print("kernels: %s (available: %s)" % (_core.isa(), ", ".join(_core.available_isas())))
    print("threads: %d (CPUs usable: %d)" % (_core.get_num_threads(), _cpu_count()))
    print("numpy %s, BLAS: %s" % (np.__version__, blas_name()))
    return 0


def _cmd_export(args):
    from . import checkpoint
    from .deploy import model_bytes, write_bytes
    if args.name is not None and args.format != "c":
        raise ValueError("--name applies to --format c only")
    model, state = checkpoint.load(args.checkpoint)
    shape = tuple(int(d) for d in state["input_shape"])
    data = model_bytes(model, shape)
    paths = write_bytes(data, args.output, args.format, args.name)
    size = len(data)
    float_bytes = 4 * sum(p.value.size for p in model.parameters())
    what = "a model of " if args.format == "c" else ""
    print("wrote %s: %s%d bytes (%.1f KiB); the same parameters as float32 take %d bytes "
          "(%.1f KiB, %.1fx more)" % (" and ".join(paths), what, size, size / 1024, float_bytes,
                                      float_bytes / 1024, float_bytes / size))
    return 0


def _cpu_count():
    import os
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _cmd_bench(args):
    from . import bench
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        print("pybnn bench needs threadpoolctl: pip install 'pybnn[bench]'", file=sys.stderr)
        return 2
    if args.what == "cuda":
        from .bench.cuda import bench_cuda
        res = bench_cuda(size=2048 if args.quick else 8192, rounds=args.rounds or 5)
    elif args.what == "infer":
        res = bench.bench_infer(rounds=args.rounds or (5 if args.quick else 9),
                                width=1024 if args.quick else 4096, model_path=args.model)
    elif args.what == "conv":
        res = bench.bench_conv(rounds=args.rounds or (3 if args.quick else 5), quick=args.quick)
    elif args.what == "gemm":
        res = bench.main_gemm(quick=args.quick, threads=args.threads, rounds=args.rounds,
                              isa=args.isa, shapes=args.shapes,
                              probe_seconds=args.probe_seconds)
    else:   # train
        threads = args.threads or (2,)
        if len(threads) != 1:
            raise ValueError("bench train takes one thread count, got %s"
                             % ",".join(map(str, threads)))
        if args.isa:
            from . import _core
            _core.set_isa(args.isa)
        if args.ranks:
            res = bench.bench_ranks(recipe=args.recipe, ranks=args.ranks,
                                    steps=args.steps or (3 if args.quick else 10),
                                    rounds=args.rounds or (2 if args.quick else 5),
                                    width=args.width, batch_size=args.batch_size,
                                    backward=args.backward, threads=threads[0])
        elif args.memory:
            res = bench.bench_memory(recipe=args.recipe, threads=threads[0],
                                     torch=not args.no_torch, backward=args.backward,
                                     width=args.width, steps=args.steps or 2, mode=args.mode,
                                     batches=tuple(int(b) for b in args.memory.split(",")))
        else:
            res = bench.bench_train(recipe=args.recipe,
                                    steps=args.steps or (3 if args.quick else 10),
                                    rounds=args.rounds or (2 if args.quick else 5),
                                    threads=threads[0], width=args.width,
                                    batch_size=args.batch_size, torch=not args.no_torch,
                                    backward=args.backward, mode=args.mode)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=list)
        print("results written to %s" % args.json)
    return 0


def _cmd_train(args):
    from . import train as T
    from .distributed import communicator
    import time
    t0 = time.perf_counter()
    # --distributed, or a start by an MPI launcher with more than one rank:
    # data-parallel over MPI; otherwise one process (mpi4py is not imported)
    comm = communicator(True if args.distributed else None, timeout=args.timeout)
    try:
        history, state = T.train(args.recipe, comm=comm, epochs=args.epochs, width=args.width,
                                 batch_size=args.batch_size, seed=args.seed, data=args.data,
                                 out=args.out, resume=args.resume, optimizer=args.optimizer,
                                 bn=args.bn, mode=args.mode, threads=args.threads, lr=args.lr,
                                 backward=args.backward, stochastic=args.stochastic,
                                 augment=args.augment, lr_end=args.lr_end,
                                 progress=not args.no_progress, limit=args.limit)
    except KeyboardInterrupt:
        print("interrupted: %s/last.npz holds the last finished epoch; continue with --resume"
              % args.out, file=sys.stderr)
        return 130
    except FloatingPointError as e:
        print("pybnn train: %s" % e, file=sys.stderr)
        return 3
    except Exception as e:
        if comm.distributed:        # the other ranks must not wait for this one
            _end_job(e, comm)
        raise
    if history and comm.rank == 0:
        last = history[-1]
        print("done in %.1f s: best validation error %.2f%% at epoch %d (test error %.2f%% "
              "there); last epoch test error %.2f%%, %.1f s per epoch; model in %s/best.npz"
              % (time.perf_counter() - t0, 100 * state["best_val"], state["best_epoch"],
                 100 * state["best_test"], 100 * last["test_error"],
                 sum(h["seconds"] for h in history) / len(history), args.out))
    return 0


def _cmd_report(args):
    from .report import report
    report(args.runs, args.out, title=args.title, infer=args.infer)
    return 0


def _cmd_download(args):
    import shlex

    from . import data as D
    directory = args.dir if args.dir else D.default_data_dir(args.name)
    directory = D.download(args.name, directory, base_url=args.mirror,
                           progress=not args.no_progress, retries=args.retries,
                           force=args.force)
    shown = shlex.quote(directory)
    print("%s: verified files in %s" % (args.name, directory))
    if args.name == "cifar10":
        print("train with: pybnn train --recipe cifar10-vgg --data %s" % shown)
    else:
        print("train with: pybnn train --data %s" % shown)
    return 0


def _nonnegative_int(s):
    try:
        v = int(s)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError("expected an integer >= 0, got %r" % s)
    return v


def _threads(s):
    try:
        vals = tuple(int(v) for v in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected a comma-separated list of thread counts")
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError("thread counts must be >= 1")
    return vals


def _shapes(s):
    out = []
    for part in s.split(","):
        try:
            dims = tuple(int(v) for v in part.lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) != 3 or any(d < 1 for d in dims):
            raise argparse.ArgumentTypeError("shapes are NxMxK with positive sizes, "
                                             "comma-separated; got %r" % part)
        out.append(dims)
    return out


def _positive_int(s):
    try:
        v = int(s)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % s)
    return v


def _positive_float(s):
    try:
        v = float(s)
    except ValueError:
        v = 0.0
    if not v > 0:
        raise argparse.ArgumentTypeError("expected a positive number, got %r" % s)
    return v


def build_parser():
    from . import _core
    from .nn.dense import BACKWARDS
    p = argparse.ArgumentParser(prog="pybnn", description="Binarized neural networks on "
                                "XNOR-popcount kernels.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("info", help="version, kernels, threads and BLAS; or the layers of "
                        "a .bnn model file")
    pi.add_argument("file", nargs="?", default=None, metavar="FILE",
                    help="a .bnn file to check and describe")
    pi.set_defaults(func=_cmd_info)
    from .recipes import MODES, RECIPES
    pt = sub.add_parser("train", help="train a BNN (default: a small MLP on the bundled "
                        "MNIST sample)")
    pt.add_argument("--recipe", choices=sorted(RECIPES), default="mnist-mlp-fast",
                    help="; ".join("%s: %s" % (k, v["help"]) for k, v in sorted(RECIPES.items())))
    pt.add_argument("--epochs", type=_positive_int, default=None,
                    help="epochs (default: 10 on the bundled sample, else the recipe's)")
    pt.add_argument("--width", type=_positive_int, default=None, help="hidden width / base channels")
    pt.add_argument("--batch-size", type=_positive_int, default=None)
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--data", default=None, help="dataset directory (default: bundled MNIST sample)")
    pt.add_argument("--out", default="pybnn-run", help="output directory (default pybnn-run)")
    pt.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    pt.add_argument("--optimizer", choices=["adam", "adamax", "shift_adamax", "bop"], default=None,
                    help="the recipe's by default; bop: Bop for the binary weights (no latent "
                         "weights, one moving average each) and Adam for the rest")
    pt.add_argument("--bn", choices=["standard", "shift"], default=None)
    pt.add_argument("--backward", choices=list(BACKWARDS), default=None,
                    help="the binary layers' backward products: exact float products, a "
                         "stochastically rounded int8 gradient times the bits, or auto (int8 "
                         "on the x86 SIMD kernels, float on the reference ones; the default "
                         "for a new run, while --resume keeps the checkpoint's)")
    pt.add_argument("--mode", choices=list(MODES), default="bnn",
                    help="bnn: binary weights and activations (default); bc: BinaryConnect, "
                         "binary weights and float activations; fp: full precision")
    pt.add_argument("--stochastic", action="store_true",
                    help="stochastic binary activations in training: +1 with probability "
                         "hardsigmoid(x), seeded per layer (--mode bnn; weights stay "
                         "deterministic)")
    pt.add_argument("--augment", action="store_true",
                    help="random crops (4-pixel zero padding) and horizontal flips of each "
                         "training batch, seeded by --seed (CIFAR-10)")
    pt.add_argument("--lr", type=_positive_float, default=None,
                    help="initial learning rate (default: the recipe's)")
    pt.add_argument("--lr-end", type=_positive_float, default=None,
                    help="the learning rate the exponential decay reaches after --epochs "
                         "(default: the recipe's, which the paper's schedules reach after "
                         "their 500 or 1000 epochs: a shorter run decays that much faster)")
    pt.add_argument("--threads", type=_positive_int, default=None,
                    help="threads of libbnn's kernels and of numpy's BLAS (default: as "
                         "they are)")
    pt.add_argument("--limit", type=_positive_int, default=None,
                    help="train on the first N training images only")
    pt.add_argument("--no-progress", action="store_true", help="no progress bars")
    from .distributed import DEFAULT_TIMEOUT
    pt.add_argument("--distributed", action="store_true",
                    help="data-parallel training over MPI (mpi4py, the `mpi` extra): run as "
                         "`mpirun -n R pybnn train ...`; each rank trains on its shard of "
                         "every global batch of --batch-size, rank 0 writes the outputs.  "
                         "Implied when an MPI launcher starts more than one rank")
    pt.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT,
                    help="distributed: seconds a rank waits for the others in one collective "
                         "before it stops with an error (default %g)" % DEFAULT_TIMEOUT)
    pt.set_defaults(func=_cmd_train)
    pr = sub.add_parser("report", help="a Markdown table and plots of finished (or "
                        "partial) `pybnn train` runs")
    pr.add_argument("runs", nargs="+", metavar="RUN_DIR",
                    help="`pybnn train --out` folders, each with its metrics.json")
    pr.add_argument("--out", default="pybnn-report", metavar="DIR",
                    help="where results.md, loss.png and val_error.png go (default "
                         "pybnn-report)")
    pr.add_argument("--title", default=None, help="the heading of results.md and the plots")
    pr.add_argument("--infer", action="store_true",
                    help="also time each exportable best.npz in the C runtime (as `pybnn "
                         "bench infer --model`, short): images/s and file size columns")
    pr.set_defaults(func=_cmd_report)
    pe = sub.add_parser("export", help="write a trained checkpoint as a .bnn model file (or a "
                        "C array) for the C runtime")
    pe.add_argument("checkpoint", metavar="CHECKPOINT", help="a `pybnn train` checkpoint "
                    "(e.g. pybnn-run/best.npz)")
    pe.add_argument("-o", "--output", required=True, metavar="FILE",
                    help="the .bnn file; with --format c, FILE's stem names FILE.h and FILE.c")
    pe.add_argument("--format", choices=["bnn", "c"], default="bnn",
                    help="bnn: the model file (default); c: a 64-byte-aligned C array")
    pe.add_argument("--name", default=None, help="the C array's name (--format c; default: "
                    "the file's stem)")
    pe.set_defaults(func=_cmd_export)
    from .data import DOWNLOADS
    pd = sub.add_parser("download", help="download a dataset, verified by SHA-256 "
                        "(interrupted downloads resume)")
    pd.add_argument("name", choices=sorted(DOWNLOADS), help="which dataset")
    pd.add_argument("--dir", default=None,
                    help="target folder (default: $PYBNN_DATA/NAME, or ~/.cache/pybnn/NAME)")
    pd.add_argument("--mirror", default=None, metavar="URL",
                    help="base URL to fetch the files from (default: $PYBNN_DATA_MIRROR, "
                    "else the built-in mirrors)")
    pd.add_argument("--force", action="store_true",
                    help="replace files already there that fail verification")
    pd.add_argument("--retries", type=_nonnegative_int, default=3,
                    help="further attempts after a failed transfer (default 3)")
    pd.add_argument("--no-progress", action="store_true", help="no progress bars")
    pd.set_defaults(func=_cmd_download)
    pb = sub.add_parser("bench", help="benchmarks against float baselines")
    pb.add_argument("what", choices=["gemm", "conv", "infer", "train", "cuda"],
                    help="which benchmark (infer: the .bnn runtime on the 784-4096x3-10 MLP "
                         "against float32 numpy and torch; train: a training step of a "
                         "recipe against the same network in PyTorch; cuda: the GPU XNOR "
                         "GEMM kernels against the float kernel at 8192^3, 2048^3 with "
                         "--quick, in a BNN_CUDA=1 build with a device)")
    pb.add_argument("--recipe", choices=sorted(RECIPES), default="mnist-mlp",
                    help="train: the recipe (default mnist-mlp)")
    pb.add_argument("--steps", type=_positive_int, default=None,
                    help="train: steps per round (default 10, 3 with --quick)")
    pb.add_argument("--width", type=_positive_int, default=None,
                    help="train: hidden width / base channels (default: the recipe's)")
    pb.add_argument("--batch-size", type=_positive_int, default=None,
                    help="train: batch size (default: the recipe's)")
    pb.add_argument("--no-torch", action="store_true",
                    help="train: pybnn only (no PyTorch reference)")
    pb.add_argument("--backward", choices=list(BACKWARDS), default="auto",
                    help="train: the backward products of the binary layers (see pybnn train)")
    pb.add_argument("--mode", choices=list(MODES), default="bnn",
                    help="train: binary (bnn), BinaryConnect (bc) or full-precision (fp) "
                         "network, as pybnn train --mode; PyTorch runs the same mode")
    pb.add_argument("--memory", nargs="?", const="25,100", metavar="B1,B2",
                    help="train: peak RSS per training sample instead of time: each batch "
                         "size (default 25,100) in its own process, pybnn and PyTorch, and "
                         "the memory plan's prediction against the measured peak")
    pb.add_argument("--ranks", type=_threads, default=None, metavar="R1,R2",
                    help="train: data-parallel steps over MPI instead, each rank count as "
                         "`mpiexec -n R` with one thread per rank, against one process with "
                         "--threads threads (default 2): ms per step, allreduce share, bytes "
                         "(needs the mpi extra)")
    pb.add_argument("--model", default=None, metavar="FILE.bnn",
                    help="infer: time this model file instead (runtime only)")
    pb.add_argument("--quick", action="store_true", help="a short subset (about 15 s)")
    pb.add_argument("--threads", type=_threads, default=None,
                    help="comma-separated thread counts (default 1,2; train: one, default 2)")
    pb.add_argument("--rounds", type=_positive_int, default=None,
                    help="interleaved rounds per case (default 5, 3 with --quick)")
    pb.add_argument("--shapes", type=_shapes, default=None, metavar="NxMxK[,...]",
                    help="products to time instead of the default list")
    pb.add_argument("--probe-seconds", type=_positive_float, default=None,
                    help="seconds for each peak-probe run (default 1, 0.3 with --quick)")
    pb.add_argument("--isa", choices=list(_core.ISA_NAMES), default=None,
                    help="force the kernels (default: the best this CPU has)")
    pb.add_argument("--json", metavar="FILE", default=None, help="also write results as JSON")
    pb.set_defaults(func=_cmd_bench)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a clear message rather than a traceback
        from ._core import BnnError
        if isinstance(e, (BnnError, ValueError, OSError)):
            print("pybnn: error: %s" % e, file=sys.stderr)
            return 1
        raise


def _end_job(error, comm, grace=2.0):
    """A rank of a distributed run that fails (or lost the others): say so,
    give the other ranks a moment to say it too, then end the whole MPI job
    (MPI_Abort: a normal exit would wait in MPI_Finalize for ranks that
    are gone or still waiting in a collective for this one)."""
    import time
    import traceback
    from ._core import BnnError
    from .distributed import DistributedError
    if isinstance(error, DistributedError):
        print("pybnn: error: %s" % error, file=sys.stderr)
    elif isinstance(error, (BnnError, ValueError, OSError)):
        print("pybnn: error: rank %d of %d: %s" % (comm.rank, comm.size, error), file=sys.stderr)
    else:
        traceback.print_exc()
        print("pybnn: error: rank %d of %d failed: %r" % (comm.rank, comm.size, error),
              file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    time.sleep(grace)
    comm.abort(1)


if __name__ == "__main__":
    sys.exit(main())
