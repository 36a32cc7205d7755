"""Deployment: the folded network (fold), the .bnn bytes and C arrays
(writer), the C runtime that runs them (runtime) -- the same runtime that
Sequential.eval() predicts with."""
from .fold import FoldError, fold_plan
from .runtime import BnnFormatError, DeployedModel, load
from .writer import export, model_bytes, write_bytes

__all__ = ["FoldError", "fold_plan", "BnnFormatError", "DeployedModel", "load", "export",
           "model_bytes", "write_bytes"]
