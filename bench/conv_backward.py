#!/usr/bin/env python3
"""The backward products of the binary convolutions of cifar10-vgg (batch
50, 3x3, zero padding 1) on the bits -- float and int8, and the int8
rounding they need -- against the float im2col/col2im path they replaced,
interleaved round by round; prints the median ms of each.

Run alone on the machine:  python bench/conv_backward.py [--threads 2] [--rounds 5]
"""
import argparse
import statistics
import time

import pybnn  # noqa: F401  (first: it sets OpenBLAS's thread timeout)
import numpy as np

from pybnn import _core
from pybnn.nn.conv import _col2im, _im2col
from pybnn.ops import pack

LAYERS = [(32, 128, 128), (16, 128, 256), (16, 256, 256), (8, 256, 512), (8, 512, 512)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    _core.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    n, pad, geo = args.batch, (1, 1, 1, 1), ((1, 1), (1, 1), (1, 1, 1, 1), 0)
    print("isa %s, %d threads, batch %d; median ms of %d rounds"
          % (_core.isa(), args.threads, n, args.rounds))
    print("%-16s %9s %9s %9s %9s %9s %9s %9s" % ("HxW CinxCout", "im2col", "f32 gW", "f32 gX",
                                                  "i8 gW", "i8 gX", "round col", "round row"))
    with threadpool_limits(limits=args.threads):
        for h, c, o in LAYERS:
            x = pack(rng.standard_normal((n, h, h, c)).astype(np.float32))
            wp = pack(rng.standard_normal((o, 3, 3, c)).astype(np.float32))
            xf, wf = x.unpack(), wp.unpack().reshape(o, -1)
            g = rng.standard_normal((n * h * h, o)).astype(np.float32)
            ws = _core.conv2d_grad_workspace(n, h, h, c, o, 3, 3, *geo)
            gw = np.empty((o, 9 * c), np.float32)
            gx = np.empty((n, h, h, c), np.float32)
            qt, sct = _core.quantize_i8(g, 1, 0, by_column=True)
            q, sc = _core.quantize_i8(g, 1, 0)

            def im2col():
                cols = _im2col(xf, 3, 3, (1, 1), pad, (1, 1), 0).reshape(n * h * h, -1)
                gw[...] = g.T @ cols
                _col2im((g @ wf).reshape(n, h, h, -1), xf.shape, 3, 3, (1, 1), pad, (1, 1))

            cases = [
                im2col,
                lambda: _core.conv2d_grad_weights(x.words, c, 3, 3, g, gw, *geo, ws),
                lambda: _core.conv2d_grad_input(wp.words, c, g, gx, *geo, ws),
                lambda: _core.conv2d_grad_weights(x.words, c, 3, 3, qt, gw, *geo, ws, scale=sct),
                lambda: _core.conv2d_grad_input(wp.words, c, q, gx, *geo, ws, scale=sc),
                lambda: _core.quantize_i8(g, 1, 0, by_column=True),
                lambda: _core.quantize_i8(g, 1, 0),
            ]
            times = [[] for _ in cases]
            for _ in range(args.rounds):
                for f, t in zip(cases, times):
                    t0 = time.perf_counter()
                    f()
                    t.append(1e3 * (time.perf_counter() - t0))
            print("%-16s " % ("%dx%d %dx%d" % (h, h, c, o))
                  + " ".join("%9.1f" % statistics.median(t) for t in times))


if __name__ == "__main__":
    main()
