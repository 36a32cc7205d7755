"""Dataset readers: the bundled sample, and clear errors naming the file
for every kind of malformed input."""
import gzip
import os
import struct

import numpy as np
import pytest

from pybnn.data import DatasetError, MNIST_FILES, load_cifar10, load_mnist, read_idx, sample_dir

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist")


def _idx_bytes(arr, code=0x08):
    arr = np.asarray(arr, np.uint8)
    return bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def _write_mnist(d, n_train=5, n_test=3, gz=True, **override):
    rng = np.random.default_rng(0)
    files = {
        "train_images": _idx_bytes(rng.integers(0, 256, (n_train, 28, 28))),
        "train_labels": _idx_bytes(rng.integers(0, 10, n_train)),
        "test_images": _idx_bytes(rng.integers(0, 256, (n_test, 28, 28))),
        "test_labels": _idx_bytes(rng.integers(0, 10, n_test)),
    }
    files.update(override)
    for key, data in files.items():
        if data is None:
            continue
        name = MNIST_FILES[key] + (".gz" if gz else "")
        with open(os.path.join(d, name), "wb") as f:
            f.write(gzip.compress(data) if gz else data)


def test_bundled_sample():
    x, y, xt, yt = load_mnist()
    assert x.shape == (6000, 28, 28, 1) and xt.shape == (1000, 28, 28, 1)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    assert list(y[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]      # MNIST's first labels
    assert list(yt[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert set(np.unique(y)) == set(range(10))
    assert os.path.exists(os.path.join(sample_dir(), "README.md"))


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="full MNIST not present")
def test_sample_is_the_start_of_full_mnist():
    x, y, xt, yt = load_mnist()
    fx, fy, fxt, fyt = load_mnist(SHARED_MNIST)
    assert fx.shape == (60000, 28, 28, 1)
    assert np.array_equal(x, fx[:6000]) and np.array_equal(yt, fyt[:1000])


@pytest.mark.parametrize("gz", [True, False])
def test_roundtrip_synthetic(tmp_path, gz):
    _write_mnist(tmp_path, gz=gz)
    x, y, xt, yt = load_mnist(tmp_path)
    assert x.shape == (5, 28, 28, 1) and xt.shape == (3, 28, 28, 1)


def test_missing_files_are_listed(tmp_path):
    _write_mnist(tmp_path, test_labels=None)
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist(tmp_path / "nope")


def test_truncated_gzip_names_the_file(tmp_path):
    _write_mnist(tmp_path)
    p = tmp_path / (MNIST_FILES["train_images"] + ".gz")
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz.*gzip"):
        load_mnist(tmp_path)


def test_corrupt_gzip(tmp_path):
    _write_mnist(tmp_path)
    p = tmp_path / (MNIST_FILES["test_images"] + ".gz")
    data = bytearray(p.read_bytes())
    data[30:60] = b"\xff" * 30
    p.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="t10k-images"):
        load_mnist(tmp_path)


def test_wrong_magic_and_type(tmp_path):
    bad = b"\x01\x02\x08\x03" + b"\x00" * 100
    _write_mnist(tmp_path, train_images=bad)
    with pytest.raises(DatasetError, match="magic"):
        load_mnist(tmp_path)
    p = tmp_path / "x.idx"
    p.write_bytes(bytes([0, 0, 0x42, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DatasetError, match="element type"):
        read_idx(p)


def test_declared_size_mismatch(tmp_path):
    img = _idx_bytes(np.zeros((5, 28, 28)))
    _write_mnist(tmp_path, train_images=img[:-10])
    with pytest.raises(DatasetError, match="declares 5x28x28"):
        load_mnist(tmp_path)
    _write_mnist(tmp_path, train_images=img + b"\x00")
    with pytest.raises(DatasetError, match="holds"):
        load_mnist(tmp_path)


def test_count_and_label_checks(tmp_path):
    _write_mnist(tmp_path, train_labels=_idx_bytes(np.zeros(4)))
    with pytest.raises(DatasetError, match="5 train images but 4 labels"):
        load_mnist(tmp_path)
    _write_mnist(tmp_path, test_labels=_idx_bytes([1, 2, 12]))
    with pytest.raises(DatasetError, match="out of range"):
        load_mnist(tmp_path)
    _write_mnist(tmp_path, train_images=_idx_bytes(np.zeros((5, 28))))
    with pytest.raises(DatasetError, match="dimensions"):
        load_mnist(tmp_path)


def _cifar_bytes(n, rng):
    rec = rng.integers(0, 256, (n, 3073)).astype(np.uint8)
    rec[:, 0] = rng.integers(0, 10, n)
    return rec


def test_cifar_reader(tmp_path):
    rng = np.random.default_rng(1)
    tr, te = _cifar_bytes(4, rng), _cifar_bytes(2, rng)
    (tmp_path / "data_batch_1.bin").write_bytes(tr.tobytes())
    (tmp_path / "test_batch.bin").write_bytes(te.tobytes())
    x, y, xt, yt = load_cifar10(tmp_path)
    assert x.shape == (4, 32, 32, 3) and xt.shape == (2, 32, 32, 3)
    assert np.array_equal(y, tr[:, 0])
    # channel planes (R, G, B; row-major) become the last axis
    assert np.array_equal(x[1, 2, 3], tr[1, 1 + np.array([0, 1024, 2048]) + 2 * 32 + 3])


def test_cifar_errors(tmp_path):
    with pytest.raises(DatasetError, match="data_batch_1.bin"):
        load_cifar10(tmp_path)
    rng = np.random.default_rng(2)
    (tmp_path / "data_batch_1.bin").write_bytes(_cifar_bytes(2, rng).tobytes()[:-1])
    (tmp_path / "test_batch.bin").write_bytes(_cifar_bytes(2, rng).tobytes())
    with pytest.raises(DatasetError, match="data_batch_1.bin.*3073"):
        load_cifar10(tmp_path)
