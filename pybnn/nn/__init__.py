"""Training layers with hand-written forward and backward passes, one
module per layer family, and Sequential.

Layers are plain Python classes over numpy and the libbnn kernels
(pybnn._core).  Activations are NHWC (or [N, features]); the output of a
binary Sign is a PackedTensor, which binary layers multiply with the
XNOR-popcount kernels, in training as in evaluation.  A layer's kind is
chosen when it is built: BinaryDense/BinaryConv2d(binary=True) have
binary weights (binary=False: float), Sign() binary activations and
HardTanh() float ones -- so a network is a BNN (Sign), BinaryConnect
(binary weights, HardTanh) or a float baseline by the layers it is made
of.  Inputs are uint8 images scaled as x/128 - 1, which is exact in
float32 (and differs from the paper's 2x/255 - 1, which is not).
"""
from .activation import Activation, HardTanh, Sign
from .base import Layer, Parameter, scale_input
from .conv import BinaryConv2d
from .dense import BinaryDense
from .dropout import Dropout
from .flatten import Flatten
from .norm import BatchNorm
from .pooling import MaxPool2d
from .sequential import MODES, Sequential

__all__ = ["Parameter", "Layer", "BinaryDense", "BinaryConv2d", "BatchNorm", "MaxPool2d",
           "Activation", "Sign", "HardTanh", "Dropout", "Flatten", "Sequential", "MODES",
           "scale_input"]
