"""`pybnn.load(path)`: run a .bnn model file on the C runtime of libbnn --
the code a C program links -- from Python."""
from __future__ import annotations

import os

import numpy as np

from .. import _core
from .._core import BnnFormatError
from .writer import PARAMS

__all__ = ["load", "DeployedModel", "BnnFormatError"]


class DeployedModel:
    """A .bnn model on the C runtime (bnn_model_run).  `predict(x)` takes
    uint8 images [N, H, W, C] (or [N, H*W*C], or [N, H, W] when C is 1)
    and returns (scores float32 [N, classes], classes int64 [N]), as
    Sequential.predict does in eval()."""

    def __init__(self, data, source="<bytes>"):
        self._model = _core.Model(data, source)
        self.source = source
        info = self._model.info
        self.input_shape = tuple(int(v) for v in info["input_shape"])
        self.classes = int(info["classes"])
        self.info = dict(info)

    def __repr__(self):
        return "DeployedModel(%s: input %s, %d classes, %d layers, %d bytes)" % (
            self.source, "x".join(map(str, self.input_shape)), self.classes,
            self.info["layers"], self.info["file_bytes"])

    def layers(self):
        """The loaded records (bnn_model_get_layer): type, flags, params (the
        file's words) and named (the same by name: k, m, c, o, kh, ...), in/out
        shape of one image, file offset, record bytes."""
        out = self._model.layers()
        for rec in out:
            rec["named"] = dict(zip(PARAMS[rec["type"]], rec["params"]))
        return out

    def workspace_size(self, batch, threads=0):
        """Bytes of scratch memory a C caller provides for this batch size."""
        return self._model.workspace_size(int(batch), int(threads))

    def predict(self, x, batch_size=1024):
        x = np.asarray(x)
        if x.dtype != np.uint8:
            raise TypeError("inputs must be uint8 images, got %s" % x.dtype)
        h, w, c = self.input_shape
        n = x.shape[0] if x.ndim else 0
        ok = (x.ndim == 4 and x.shape[1:] == (h, w, c)) or \
             (x.ndim == 2 and x.shape[1] == h * w * c) or \
             (x.ndim == 3 and c == 1 and x.shape[1:] == (h, w))
        if not ok:
            raise ValueError("%s expects uint8 images [N, %d, %d, %d] (or [N, %d]), got shape %r"
                             % (self.source, h, w, c, h * w * c, tuple(x.shape)))
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        x = np.ascontiguousarray(x.reshape(n, h * w * c))
        scores = np.empty((n, self.classes), np.float32)
        classes = np.empty(n, np.int32)
        for i in range(0, n, batch_size):
            j = min(n, i + batch_size)
            self._model.run(x[i:j], scores[i:j], classes[i:j])
        return scores, classes.astype(np.int64)


def read_source(path_or_bytes):
    """(bytes, name to report) of a model file's path or of its bytes."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    try:
        path = os.fspath(path_or_bytes)
    except TypeError:
        raise TypeError("path must be a file path or the file's bytes, got %r"
                        % (path_or_bytes,)) from None
    try:
        with open(path, "rb") as f:
            return f.read(), path
    except OSError as e:
        raise OSError(e.errno, "cannot read model file %s: %s" % (path, e.strerror)) from e


def load(path_or_bytes):
    """Load a .bnn model (a path, or the file's bytes) into the C runtime.
    A malformed, truncated or corrupt file raises BnnFormatError (a
    ValueError) naming it, the byte offset and the reason (its .report is
    bnn_model_check's)."""
    return DeployedModel(*read_source(path_or_bytes))
