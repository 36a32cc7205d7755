"""pybnn: Binarized Neural Networks on the libbnn XNOR-popcount kernels."""
import os as _os
import sys as _sys

if "numpy" not in _sys.modules:
    # OpenBLAS's idle worker threads spin for about 0.1 s after each call
    # by default, taking the CPUs that libbnn's own threads (optimizer,
    # XNOR kernels) need right after a float matmul in training.  Idle
    # workers sleep at once with this setting; a value the user has set
    # wins, and it can only act if numpy is not loaded yet.
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import _core
from ._core import (BnnError, BnnValueError, isa, isa_supported, available_isas,
                    set_isa, set_num_threads, get_num_threads, LAYOUT_VERSION)
from .ops import (PackedTensor, pack, bgemm, bgemm_affine, bgemm_threshold, fold_threshold,
                  fold_batchnorm, bconv2d, bconv2d_affine, bconv2d_threshold, maxpool2d, gemm_u8,
                  conv2d_u8, conv2d_output_shape, conv2d_correction)

__version__ = "0.1.0"


def load(path):
    """Load a .bnn model file into the C runtime: a DeployedModel whose
    predict(x_uint8) returns (scores, classes) like Sequential.predict."""
    from .deploy import load as _load
    return _load(path)


def load_checkpoint(path):
    """The Sequential stored in a `pybnn train` checkpoint, in eval mode."""
    from .checkpoint import load_checkpoint as _load
    return _load(path)

if _core.version_number() != _core.HEADER_VERSION_NUMBER:  # pragma: no cover
    raise ImportError("pybnn was built against libbnn %d but runs %d"
                      % (_core.HEADER_VERSION_NUMBER, _core.version_number()))
if _core.version_string() != __version__:  # pragma: no cover
    raise ImportError("pybnn %s does not match its libbnn %s"
                      % (__version__, _core.version_string()))

__all__ = ["BnnError", "BnnValueError", "PackedTensor", "pack", "bgemm", "bgemm_affine",
           "bgemm_threshold", "fold_threshold", "fold_batchnorm", "isa", "isa_supported",
           "available_isas", "set_isa", "set_num_threads", "get_num_threads",
           "LAYOUT_VERSION", "__version__", "load", "load_checkpoint", "bconv2d", "bconv2d_affine", "bconv2d_threshold",
           "maxpool2d", "gemm_u8", "conv2d_u8", "conv2d_output_shape",
           "conv2d_correction"]
