"""The `pybnn` command: `pybnn bench gemm|conv [--quick]`, `pybnn info`."""
from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args):
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


def _cpu_count():
    import os
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _cmd_bench(args):
    from . import bench
    if args.what == "conv":
        res = bench.bench_conv(rounds=args.rounds or (3 if args.quick else 5), quick=args.quick)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1, default=list)
            print("results written to %s" % args.json)
        return 0
    if args.what == "gemm":
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            print("pybnn bench needs threadpoolctl: pip install 'pybnn[bench]'", file=sys.stderr)
            return 2
        res = bench.main_gemm(quick=args.quick, threads=args.threads, rounds=args.rounds,
                              isa=args.isa, shapes=args.shapes,
                              probe_seconds=args.probe_seconds)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1, default=list)
            print("results written to %s" % args.json)
        return 0
    print("unknown benchmark %r" % args.what, file=sys.stderr)
    return 2


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
    p = argparse.ArgumentParser(prog="pybnn", description="Binarized neural networks on "
                                "XNOR-popcount kernels.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("info", help="version, kernels, threads and BLAS")
    pi.set_defaults(func=_cmd_info)
    pb = sub.add_parser("bench", help="benchmarks against float baselines")
    pb.add_argument("what", choices=["gemm", "conv"], help="which benchmark")
    pb.add_argument("--quick", action="store_true", help="a short subset (about 15 s)")
    pb.add_argument("--threads", type=_threads, default=None,
                    help="comma-separated thread counts (default 1,2)")
    pb.add_argument("--rounds", type=_positive_int, default=None,
                    help="interleaved rounds per case (default 5, 3 with --quick)")
    pb.add_argument("--shapes", type=_shapes, default=None, metavar="NxMxK[,...]",
                    help="products to time instead of the default list")
    pb.add_argument("--probe-seconds", type=_positive_float, default=None,
                    help="seconds for each peak-probe run (default 1, 0.3 with --quick)")
    pb.add_argument("--isa", choices=["ref", "avx2", "avx512"], default=None,
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


if __name__ == "__main__":
    sys.exit(main())
