#!/usr/bin/env python3
"""XNOR-popcount GEMM against numpy float32 matmul (same as `pybnn bench gemm`).

Run alone on the machine:  python bench/bench_gemm.py [--quick] [--json FILE]
"""
import sys

from pybnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "gemm"] + sys.argv[1:]))
