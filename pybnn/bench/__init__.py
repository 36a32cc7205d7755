"""Benchmarks behind `pybnn bench`: kernels (GEMM, convolution, the model
runtime against float networks) and training (a recipe's step against
PyTorch, with pybnn's per-layer breakdown)."""
from .kernels import (bench_conv, bench_gemm, bench_infer, blas_name,
                      interleave, main_gemm, peak_probe)
from .train import PhaseTimes, bench_memory, bench_ranks, bench_train

__all__ = ["bench_gemm", "bench_conv", "bench_infer", "bench_memory", "bench_ranks", "bench_train", "main_gemm", "peak_probe",
           "blas_name", "interleave", "PhaseTimes"]
