"""Dataset readers: MNIST / Fashion-MNIST (IDX, optionally gzipped) and
CIFAR-10 (binary batches), validated, plus the MNIST sample shipped with
the package as the offline default, and `download()`, which fetches the
full datasets with SHA-256 verification and resumable transfers.

Every reader returns uint8 images in NHWC order ([N, 28, 28, 1] or
[N, 32, 32, 3]) and int64 labels, and raises DatasetError naming the file
for anything malformed: wrong magic number, declared sizes that disagree
with the data, truncated or corrupt gzip streams, missing files.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import shutil
import struct
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib

import numpy as np

__all__ = ["DatasetError", "read_idx", "load_mnist", "load_cifar10", "sample_dir",
           "MNIST_FILES", "DOWNLOADS", "download", "default_data_dir"]

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
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist-sample")


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


# ---------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------
# For each dataset: the files with their SHA-256 and size in bytes, the
# mirrors tried in order (each file is fetched as mirror + file name), and
# the archive to unpack after verification, if any.
#   MNIST: the original LeCun files (their MD5s equal the published ones).
#   Fashion-MNIST: the four files as published by Zalando Research.
#   CIFAR-10: the binary version from the dataset's home page.
DOWNLOADS = {
    "mnist": {
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"),
        "files": {
            "train-images-idx3-ubyte.gz":
                ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            "train-labels-idx1-ubyte.gz":
                ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            "t10k-images-idx3-ubyte.gz":
                ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            "t10k-labels-idx1-ubyte.gz":
                ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        },
        "extract": None,
    },
    "fashion-mnist": {
        "mirrors": ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        "files": {
            "train-images-idx3-ubyte.gz":
                ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            "train-labels-idx1-ubyte.gz":
                ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            "t10k-images-idx3-ubyte.gz":
                ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            "t10k-labels-idx1-ubyte.gz":
                ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
        },
        "extract": None,
    },
    "cifar10": {
        "mirrors": ("https://www.cs.toronto.edu/~kriz/",),
        "files": {
            "cifar-10-binary.tar.gz":
                ("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171),
        },
        "extract": "cifar-10-binary.tar.gz",
    },
}

_CHUNK = 1 << 16
_RETRY_DELAY = 1.0      # seconds; the n-th retry waits n times this
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class _Transient(Exception):
    """A transfer failed in a way worth retrying (network trouble)."""


class _Fatal(Exception):
    """The server refused the file (e.g. HTTP 404): retrying will not help."""


def default_data_dir(name):
    """Where `pybnn download NAME` puts a dataset: $PYBNN_DATA/NAME, or
    ~/.cache/pybnn/NAME when PYBNN_DATA is not set."""
    root = os.environ.get("PYBNN_DATA") or os.path.join(os.path.expanduser("~"), ".cache",
                                                        "pybnn")
    return os.path.join(root, name)


def _file_digest(path):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def _matches(digest, nbytes, sha, size):
    return digest == sha and (size is None or nbytes == size)


def _describe(sha, size):
    return "sha256 %s (%s bytes)" % (sha, "?" if size is None else size)


def _reason(e):
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        e = e.reason
    return "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__


def _range_start(content_range):
    m = re.match(r"\s*bytes\s+(\d+)-", content_range or "")
    return int(m.group(1)) if m else None


def _fetch(url, part, size, timeout, progress, desc):
    """One transfer attempt into `part`, continuing from the bytes it already
    holds.  Returns when the server has sent all it announced, or when there
    is nothing left to fetch; raises _Transient / _Fatal otherwise."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if size is not None and have >= size:
        return                          # full size already: verification decides
    from .. import _core
    req = urllib.request.Request(url, headers={"User-Agent": "pybnn/%s" % _core.version_string(),
                                               "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", "bytes=%d-" % have)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and have:
            return                      # nothing past what we hold: verify it
        if e.code in (408, 429) or e.code >= 500:
            raise _Transient("HTTP %d %s" % (e.code, e.reason)) from e
        raise _Fatal("HTTP %d %s" % (e.code, e.reason)) from e
    except (OSError, http.client.HTTPException) as e:
        raise _Transient(_reason(e)) from e
    with resp:
        if resp.status == 206 and have:
            if _range_start(resp.headers.get("Content-Range")) != have:
                # Not the piece that was asked for: start over next attempt.
                open(part, "wb").close()
                raise _Transient("the server sent a different byte range than requested")
            mode = "ab"
        elif resp.status == 200:
            mode, have = "wb", 0        # Range ignored (or none sent): from zero
        else:
            raise _Fatal("unexpected HTTP status %d" % resp.status)
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        total = size if size is not None else (have + length if length is not None else None)
        from tqdm import tqdm
        got = 0
        try:
            f = open(part, mode)
        except OSError as e:
            raise DatasetError("cannot write %s: %s" % (part, e.strerror or e)) from e
        with f, tqdm(total=total, initial=have, desc=desc, unit="B", unit_scale=True,
                     unit_divisor=1024, leave=False, disable=not progress) as bar:
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _Transient("transfer interrupted after %d bytes (%s)"
                                     % (have + got, _reason(e))) from e
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as e:
                    raise DatasetError("cannot write %s: %s" % (part, e.strerror or e)) from e
                got += len(chunk)
                bar.update(len(chunk))
                if size is not None and have + got > size:
                    break               # longer than the file can be: verification fails
        if length is not None and got < length and (size is None or have + got < size):
            raise _Transient("connection closed after %d of %d bytes" % (got, length))


def _download_file(url, final, sha, size, retries, timeout, progress):
    """Fetch `url` into `final` + ".part" (resuming it), verify it and only
    then give it its final name.  Raises DatasetError naming the URL."""
    part = final + ".part"
    desc = os.path.basename(final)
    attempt = 0
    while True:
        try:
            _fetch(url, part, size, timeout, progress, desc)
        except _Transient as e:
            if attempt < retries:
                attempt += 1
                time.sleep(_RETRY_DELAY * attempt)
                continue
            held = os.path.getsize(part) if os.path.exists(part) else 0
            raise DatasetError(
                "could not download %s: %s (%d attempt%s)%s"
                % (url, e, attempt + 1, "s" if attempt else "",
                   "; the %d bytes received are kept in %s and the next run resumes from "
                   "there" % (held, part) if held else "")) from e
        except _Fatal as e:
            raise DatasetError("could not download %s: %s" % (url, e)) from e
        if not os.path.exists(part):    # an empty answer to a fresh request
            open(part, "wb").close()
        digest, nbytes = _file_digest(part)
        if _matches(digest, nbytes, sha, size):
            os.replace(part, final)
            return
        os.remove(part)
        if attempt >= retries:
            raise DatasetError(
                "%s: the download from %s is corrupt: expected %s, got %s; the bad "
                "download was deleted" % (final, url, _describe(sha, size),
                                          _describe(digest, nbytes)))
        attempt += 1                    # again from scratch


def _checked_member_names(archive, members):
    for m in members:
        name = m.name
        parts = name.replace("\\", "/").split("/")
        if (name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts
                or re.match(r"^[A-Za-z]:", name)):
            raise DatasetError("%s: refusing to extract %r (absolute path or '..')"
                               % (archive, name))
        if not (m.isfile() or m.isdir()):
            raise DatasetError("%s: refusing to extract %r (links and special files are not "
                               "expected in this archive)" % (archive, name))


def _extract(archive, directory, force):
    """Unpack a verified tar archive into `directory`.  Members are checked
    first (no absolute paths, no '..', regular files and folders only), the
    archive is unpacked into a scratch folder inside `directory`, and each
    file is then moved to its final place, so no partly written file ever
    carries a final name.  Skipped when every file is already there with
    the right size (unless `force`)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            _checked_member_names(archive, members)
            files = [m for m in members if m.isfile()]
            if not force and all(
                    os.path.isfile(os.path.join(directory, m.name))
                    and os.path.getsize(os.path.join(directory, m.name)) == m.size
                    for m in files):
                return
            scratch = tempfile.mkdtemp(prefix=".extract-", dir=directory)
            try:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(scratch, members=members, filter="data")
                else:  # pragma: no cover - Pythons without extraction filters
                    tar.extractall(scratch, members=members)
                for m in files:
                    dst = os.path.join(directory, m.name)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    os.replace(os.path.join(scratch, m.name), dst)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise DatasetError("%s: cannot extract: %s" % (archive, e)) from e
    except OSError as e:
        raise DatasetError("%s: cannot extract into %s: %s"
                           % (archive, directory, e.strerror or e)) from e


def _file_table(name, checksums):
    if checksums is None:
        return dict(DOWNLOADS[name]["files"])
    table = {}
    for fname, entry in dict(checksums).items():
        sha, size = (entry, None) if isinstance(entry, str) else tuple(entry)
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise DatasetError("checksum for %s is not a SHA-256 hex digest: %r" % (fname, sha))
        if os.path.basename(fname) != fname or fname in ("", ".", ".."):
            raise DatasetError("file name %r must not contain a folder" % fname)
        table[fname] = (sha.lower(), None if size is None else int(size))
    return table


def download(name, directory, *, base_url=None, progress=True, retries=3, timeout=30,
             force=False, checksums=None):
    """Download dataset `name` ("mnist", "fashion-mnist" or "cifar10") into
    `directory` and return the directory (ready for load_mnist /
    load_cifar10).

    Every file goes to `<file>.part` first; an interrupted transfer leaves
    the .part behind and the next call continues it with an HTTP Range
    request.  The file gets its final name only after its size and SHA-256
    match the table (DOWNLOADS); a mismatch deletes the .part and, once
    `retries` fresh attempts are used up, raises DatasetError with the file,
    the URL and both hashes.  Network errors are retried `retries` times,
    then raise DatasetError with the URL.  Files already present are
    verified and kept (no network); a present file that does not verify
    raises unless `force=True`, which replaces it.  The CIFAR-10 archive is
    unpacked after verification.

    base_url: a mirror to use instead of the defaults (files are fetched as
    base_url + "/" + file name); the environment variable PYBNN_DATA_MIRROR
    does the same.  checksums: {file name: sha256 or (sha256, size)} to
    fetch and verify instead of the built-in table."""
    if name not in DOWNLOADS:
        raise DatasetError("unknown dataset %r; choose from %s"
                           % (name, ", ".join(sorted(DOWNLOADS))))
    spec = DOWNLOADS[name]
    table = _file_table(name, checksums)
    base = base_url or os.environ.get("PYBNN_DATA_MIRROR")
    mirrors = [base] if base else list(spec["mirrors"])
    retries = max(0, int(retries))
    directory = os.fspath(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise DatasetError("cannot create %s: %s" % (directory, e.strerror or e)) from e
    for fname, (sha, size) in table.items():
        final = os.path.join(directory, fname)
        if os.path.exists(final):
            try:
                digest, nbytes = _file_digest(final)
            except OSError as e:
                raise DatasetError("cannot read %s: %s" % (final, e.strerror or e)) from e
            if _matches(digest, nbytes, sha, size):
                continue
            if not force:
                raise DatasetError(
                    "%s exists but is not the expected file: expected %s, found %s; move it "
                    "away or pass force=True (pybnn download --force) to replace it"
                    % (final, _describe(sha, size), _describe(digest, nbytes)))
            os.remove(final)
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + fname
            try:
                _download_file(url, final, sha, size, retries, timeout, progress)
                break
            except DatasetError as e:
                errors.append(str(e))
        else:
            raise DatasetError(errors[0] if len(errors) == 1 else
                               "%s: every mirror failed: %s" % (fname, "; ".join(errors)))
    archive = spec["extract"]
    if archive and archive in table:
        _extract(os.path.join(directory, archive), directory, force)
    return directory
