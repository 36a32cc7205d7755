"""The binary products as functions on numpy arrays and PackedTensors:
packing, dense XNOR GEMM with its epilogues, binary convolution, max-pooling
of bits, the 8-bit first layer and the batch-norm fold (libbnn's kernels
through pybnn._core)."""
from .conv import (bconv2d, bconv2d_affine, bconv2d_threshold, conv2d_correction,
                   conv2d_output_shape, conv2d_u8, gemm_u8, maxpool2d)
from .packed import (PackedTensor, bgemm, bgemm_affine, bgemm_threshold, fold_batchnorm,
                     fold_threshold, pack)

__all__ = ["PackedTensor", "pack", "bgemm", "bgemm_affine", "bgemm_threshold",
           "fold_threshold", "fold_batchnorm", "bconv2d", "bconv2d_affine",
           "bconv2d_threshold", "maxpool2d", "gemm_u8", "conv2d_u8", "conv2d_output_shape",
           "conv2d_correction"]
