"""Dataset readers: MNIST / Fashion-MNIST (IDX, optionally gzipped) and
CIFAR-10 (binary batches), validated, plus the MNIST sample shipped with
the package as the offline default.

Every reader returns uint8 images in NHWC order ([N, 28, 28, 1] or
[N, 32, 32, 3]) and int64 labels, and raises DatasetError naming the file
for anything malformed: wrong magic number, declared sizes that disagree
with the data, truncated or corrupt gzip streams, missing files.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

__all__ = ["DatasetError", "read_idx", "load_mnist", "load_cifar10", "sample_dir",
           "MNIST_FILES"]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DatasetError(ValueError):
    """A dataset file is missing, truncated or malformed (the message names it)."""


def sample_dir():
    """The folder of the MNIST sample shipped inside the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mnist-sample")


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError("cannot read %s: %s" % (path, e.strerror or e)) from e
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise DatasetError("%s: truncated or corrupt gzip data (%s)" % (path, e)) from e
    return raw


def read_idx(path, expect_ndim=None):
    """Read an IDX file (raw or .gz) into a numpy array, validated."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError("%s: not an IDX file (bad magic number %r)" % (path, data[:4]))
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise DatasetError("%s: unknown IDX element type 0x%02x" % (path, code))
    if ndim < 1 or (expect_ndim is not None and ndim != expect_ndim):
        raise DatasetError("%s: IDX file has %d dimensions, expected %s"
                           % (path, ndim, expect_ndim if expect_ndim is not None else ">= 1"))
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError("%s: truncated IDX header" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    dt = np.dtype(_IDX_TYPES[code])
    want = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    got = len(data) - header
    if got != want:
        raise DatasetError("%s: header declares %s (%d bytes of data) but the file holds %d"
                           % (path, "x".join(map(str, dims)), want, got))
    return np.frombuffer(data, dtype=dt, offset=header).reshape(dims)


def _find(directory, name):
    for cand in (name + ".gz", name, name.replace("-idx", ".idx") + ".gz",
                 name.replace("-idx", ".idx")):
        p = os.path.join(directory, cand)
        if os.path.exists(p):
            return p
    return None


def load_mnist(directory=None):
    """MNIST or Fashion-MNIST from `directory` (the four IDX files, .gz or
    not), or the bundled sample when None.  Returns
    (x_train [N, 28, 28, 1] uint8, y_train int64, x_test, y_test)."""
    directory = sample_dir() if directory is None else os.fspath(directory)
    if not os.path.isdir(directory):
        raise DatasetError("dataset directory %s does not exist" % directory)
    paths = {k: _find(directory, v) for k, v in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] + "[.gz]" for k, p in paths.items() if p is None]
    if missing:
        raise DatasetError("%s is missing %s" % (directory, ", ".join(missing)))
    out = []
    for split in ("train", "test"):
        x = read_idx(paths[split + "_images"], 3)
        y = read_idx(paths[split + "_labels"], 1)
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise DatasetError("%s: expected uint8 images and labels" % directory)
        if len(x) != len(y):
            raise DatasetError("%s: %d %s images but %d labels (%s)"
                               % (directory, len(x), split, len(y), paths[split + "_labels"]))
        if len(y) and y.max() > 9:
            raise DatasetError("%s: label %d out of range 0..9" % (paths[split + "_labels"], y.max()))
        out += [x[..., None].copy(), y.astype(np.int64)]
    return tuple(out)


_CIFAR_RECORD = 1 + 3 * 32 * 32


def _read_cifar_batch(path):
    data = _read_bytes(path)
    if len(data) == 0 or len(data) % _CIFAR_RECORD:
        raise DatasetError("%s: %d bytes is not a whole number of %d-byte CIFAR-10 records"
                           % (path, len(data), _CIFAR_RECORD))
    rec = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DatasetError("%s: label %d out of range 0..9" % (path, labels.max()))
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW -> HWC
    return np.ascontiguousarray(images), labels


def load_cifar10(directory):
    """CIFAR-10 binary batches from `directory` (data_batch_1..5.bin, any of
    which may be absent in a subset, and test_batch.bin).  Returns
    (x_train [N, 32, 32, 3] uint8, y_train int64, x_test, y_test)."""
    directory = os.fspath(directory)
    if os.path.isdir(os.path.join(directory, "cifar-10-batches-bin")):
        directory = os.path.join(directory, "cifar-10-batches-bin")
    if not os.path.isdir(directory):
        raise DatasetError("dataset directory %s does not exist" % directory)
    train = [os.path.join(directory, "data_batch_%d.bin" % i) for i in range(1, 6)]
    train = [p for p in train if os.path.exists(p)]
    test = os.path.join(directory, "test_batch.bin")
    if not train or not os.path.exists(test):
        raise DatasetError("%s needs data_batch_1.bin (.. data_batch_5.bin) and test_batch.bin"
                           % directory)
    parts = [_read_cifar_batch(p) for p in train]
    xt, yt = _read_cifar_batch(test)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), xt, yt)
