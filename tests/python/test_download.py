"""pybnn.data.download against a local HTTP server: verification,
resumed transfers, servers that ignore Range, corrupt files, files already
present, refused connections, and safe unpacking of the CIFAR-10 archive."""
import gzip
import hashlib
import http.server
import io
import os
import re
import socket
import struct
import tarfile
import threading

import numpy as np
import pytest

from pybnn import cli
from pybnn.data import datasets as D
from pybnn.data import DatasetError, MNIST_FILES, load_cifar10, load_mnist

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files` ({name: bytes}) with Range support, and
    misbehaves on request: `corrupt` (names served with a flipped byte),
    `drop_after` ({name: n}: the first answer for that name stops after n
    bytes and closes the connection), `ignore_range` (always answer 200)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        name = self.path.lstrip("/")
        rng = self.headers.get("Range")
        srv.requests.append((name, rng))
        if name not in srv.files:
            self.send_error(404)
            return
        data = srv.files[name]
        if name in srv.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m and not srv.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = srv.drop_after.pop(name, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.requests, srv.corrupt, srv.drop_after = {}, [], set(), {}
    srv.ignore_range = False
    srv.url = "http://127.0.0.1:%d/" % srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join()


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    monkeypatch.setattr(D, "_RETRY_DELAY", 0.0)
    monkeypatch.delenv("PYBNN_DATA_MIRROR", raising=False)


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _blob(n=200_000, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _serve(server, name, data):
    server.files[name] = data
    return {name: (_sha(data), len(data))}


def _get(server, tmp_path, checksums, **kw):
    kw.setdefault("retries", 0)
    return D.download("mnist", tmp_path, base_url=server.url, progress=False,
                      checksums=checksums, **kw)


def test_good_download_lands_verified(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    assert _get(server, tmp_path, sums) == os.fspath(tmp_path)
    assert (tmp_path / "blob.bin").read_bytes() == data
    assert not (tmp_path / "blob.bin.part").exists()
    assert server.requests == [("blob.bin", None)]


def test_interrupted_transfer_is_kept_and_resumed_with_range(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    server.drop_after["blob.bin"] = 70_000
    with pytest.raises(DatasetError) as e:
        _get(server, tmp_path, sums)
    assert server.url + "blob.bin" in str(e.value)
    assert not (tmp_path / "blob.bin").exists()
    part = tmp_path / "blob.bin.part"
    assert part.read_bytes() == data[:70_000]
    _get(server, tmp_path, sums)
    assert server.requests[-1] == ("blob.bin", "bytes=70000-")
    assert (tmp_path / "blob.bin").read_bytes() == data
    assert not part.exists()


def test_retry_within_one_call_resumes(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    server.drop_after["blob.bin"] = 12_345
    _get(server, tmp_path, sums, retries=2)
    assert server.requests == [("blob.bin", None), ("blob.bin", "bytes=12345-")]
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    server.ignore_range = True
    (tmp_path / "blob.bin.part").write_bytes(data[:50_000])
    _get(server, tmp_path, sums)
    assert server.requests == [("blob.bin", "bytes=50000-")]   # asked, got a 200
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_complete_part_without_known_size_gets_416_and_verifies(server, tmp_path):
    data = _blob()
    server.files["blob.bin"] = data
    (tmp_path / "blob.bin.part").write_bytes(data)
    _get(server, tmp_path, {"blob.bin": _sha(data)})          # hash only, no size
    assert server.requests == [("blob.bin", "bytes=%d-" % len(data))]
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_full_size_part_is_verified_without_network(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    (tmp_path / "blob.bin.part").write_bytes(data)
    _get(server, tmp_path, sums)
    assert server.requests == []
    assert (tmp_path / "blob.bin").read_bytes() == data


@pytest.mark.parametrize("retries", [0, 2])
def test_corrupt_file_raises_and_leaves_no_final_file(server, tmp_path, retries):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    server.corrupt.add("blob.bin")
    with pytest.raises(DatasetError) as e:
        _get(server, tmp_path, sums, retries=retries)
    msg = str(e.value)
    bad = _sha(bytes([data[0] ^ 0xFF]) + data[1:])
    assert "blob.bin" in msg and server.url + "blob.bin" in msg
    assert _sha(data) in msg and bad in msg
    assert len(server.requests) == retries + 1
    assert os.listdir(tmp_path) == []                     # neither final file nor .part


def test_corrupt_resumed_part_is_fetched_again_from_scratch(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    (tmp_path / "blob.bin.part").write_bytes(b"\0" * 1000)  # a stale, wrong prefix
    _get(server, tmp_path, sums, retries=1)
    assert server.requests == [("blob.bin", "bytes=1000-"), ("blob.bin", None)]
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_existing_good_file_is_not_downloaded_again(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    (tmp_path / "blob.bin").write_bytes(data)
    _get(server, tmp_path, sums)
    assert server.requests == []


def test_existing_bad_file_raises_unless_force(server, tmp_path):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    mine = b"the user's own file"
    (tmp_path / "blob.bin").write_bytes(mine)
    with pytest.raises(DatasetError, match="force") as e:
        _get(server, tmp_path, sums)
    assert "blob.bin" in str(e.value) and _sha(mine) in str(e.value)
    assert (tmp_path / "blob.bin").read_bytes() == mine
    assert server.requests == []
    _get(server, tmp_path, sums, force=True)
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_refused_connection_names_the_url(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                           # nothing listens there now
    url = "http://127.0.0.1:%d/" % port
    with pytest.raises(DatasetError) as e:
        D.download("mnist", tmp_path, base_url=url, progress=False, retries=1,
                   checksums={"blob.bin": "0" * 64})
    assert url + "blob.bin" in str(e.value)
    assert not (tmp_path / "blob.bin").exists()


def test_missing_file_on_server_names_the_url(server, tmp_path):
    with pytest.raises(DatasetError, match="404") as e:
        _get(server, tmp_path, {"absent.bin": "0" * 64}, retries=3)
    assert server.url + "absent.bin" in str(e.value)
    assert len(server.requests) == 1                   # a 404 is not retried


def test_mirror_from_environment(server, tmp_path, monkeypatch):
    data = _blob()
    sums = _serve(server, "blob.bin", data)
    monkeypatch.setenv("PYBNN_DATA_MIRROR", server.url)
    D.download("fashion-mnist", tmp_path, progress=False, retries=0, checksums=sums)
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_unknown_dataset_and_bad_checksum_argument(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset"):
        D.download("imagenet", tmp_path)
    with pytest.raises(DatasetError, match="SHA-256"):
        D.download("mnist", tmp_path, checksums={"a.bin": "abc"})


def _idx(arr):
    arr = np.asarray(arr, np.uint8)
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) \
        + arr.tobytes()


def test_tiny_mnist_downloads_and_loads(server, tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"train_images": rng.integers(0, 256, (20, 28, 28)),
              "train_labels": rng.integers(0, 10, 20),
              "test_images": rng.integers(0, 256, (10, 28, 28)),
              "test_labels": rng.integers(0, 10, 10)}
    sums = {}
    for key, arr in arrays.items():
        sums.update(_serve(server, MNIST_FILES[key] + ".gz", gzip.compress(_idx(arr))))
    assert set(sums) == set(D.DOWNLOADS["mnist"]["files"])
    server.drop_after[MNIST_FILES["train_images"] + ".gz"] = 3000
    d = _get(server, tmp_path / "mnist", sums, retries=1)
    x, y, xt, yt = load_mnist(d)
    assert np.array_equal(x[..., 0], arrays["train_images"])
    assert np.array_equal(y, arrays["train_labels"])
    assert np.array_equal(xt[..., 0], arrays["test_images"])
    assert np.array_equal(yt, arrays["test_labels"])


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, bytes):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:                                       # ("symlink", target)
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
    return buf.getvalue()


def _cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    rec = rng.integers(0, 256, (n, 1 + 3 * 32 * 32), dtype=np.uint8)
    rec[:, 0] = rng.integers(0, 10, n)
    return rec.tobytes()


def test_tiny_cifar10_downloads_unpacks_and_loads(server, tmp_path):
    archive = _tar([("cifar-10-batches-bin/data_batch_1.bin", _cifar_records(4, 0)),
                    ("cifar-10-batches-bin/test_batch.bin", _cifar_records(3, 1))])
    sums = _serve(server, "cifar-10-binary.tar.gz", archive)
    d = D.download("cifar10", tmp_path, base_url=server.url, progress=False, retries=0,
                   checksums=sums)
    x, y, xt, yt = load_cifar10(d)
    assert x.shape == (4, 32, 32, 3) and xt.shape == (3, 32, 32, 3)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []   # no scratch left
    D.download("cifar10", tmp_path, base_url=server.url, progress=False, checksums=sums)
    assert len(server.requests) == 1


@pytest.mark.parametrize("member", ["../escaped.bin", "/pybnn-absolute.bin",
                                    "cifar-10-batches-bin/../../escaped.bin"])
def test_archive_with_unsafe_path_is_refused(server, tmp_path, member):
    archive = _tar([("cifar-10-batches-bin/test_batch.bin", _cifar_records(1, 0)),
                    (member, b"x")])
    sums = _serve(server, "cifar-10-binary.tar.gz", archive)
    target = tmp_path / "data"
    with pytest.raises(DatasetError, match="refusing") as e:
        D.download("cifar10", target, base_url=server.url, progress=False, checksums=sums)
    assert member in str(e.value)
    assert not (tmp_path / "escaped.bin").exists()
    assert not (target / "cifar-10-batches-bin").exists()


def test_archive_with_symlink_is_refused(server, tmp_path):
    archive = _tar([("cifar-10-batches-bin/test_batch.bin", ("symlink", "/etc/passwd"))])
    sums = _serve(server, "cifar-10-binary.tar.gz", archive)
    with pytest.raises(DatasetError, match="refusing"):
        D.download("cifar10", tmp_path, base_url=server.url, progress=False, checksums=sums)
    assert not (tmp_path / "cifar-10-batches-bin").exists()


def test_cli_download(server, tmp_path, monkeypatch, capsys):
    data = _blob(1000)
    sums = _serve(server, "blob.bin", data)
    monkeypatch.setitem(D.DOWNLOADS, "mnist", dict(D.DOWNLOADS["mnist"], files=sums))
    monkeypatch.setenv("PYBNN_DATA", str(tmp_path))
    assert cli.main(["download", "mnist", "--mirror", server.url, "--no-progress"]) == 0
    out = capsys.readouterr().out
    d = os.path.join(str(tmp_path), "mnist")
    assert d in out and "pybnn train --data" in out
    assert open(os.path.join(d, "blob.bin"), "rb").read() == data
    server.corrupt.add("blob.bin")
    assert cli.main(["download", "mnist", "--dir", str(tmp_path / "other"), "--mirror",
                     server.url, "--no-progress", "--retries", "0"]) == 1
    assert "blob.bin" in capsys.readouterr().err


def test_table_entries_are_well_formed():
    for name, spec in D.DOWNLOADS.items():
        assert spec["mirrors"] and spec["files"]
        for fname, (sha, size) in spec["files"].items():
            assert re.match("^[0-9a-f]{64}$", sha) and size > 0, (name, fname)


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="full MNIST not present")
def test_builtin_mnist_checksums_match_the_original_files(server, tmp_path):
    for fname in D.DOWNLOADS["mnist"]["files"]:
        with open(os.path.join(SHARED_MNIST, fname), "rb") as f:
            server.files[fname] = f.read()
    d = D.download("mnist", tmp_path, base_url=server.url, progress=False, retries=0)
    x, y, xt, yt = load_mnist(d)
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
