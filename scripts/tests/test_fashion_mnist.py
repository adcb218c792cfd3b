"""Fashion-MNIST loading (IDX, gzip) and the trace generator on it; small fake IDX files keep
these fast, one test reads the installed package's files when they are there."""

import gzip
import json
import os
import struct
import sys

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not importable by this interpreter; run the tests with "
                    "/usr/bin/python3 -m pytest scripts/tests (Debian's python3-torch)")
torch.set_num_threads(1)

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
import gen_trace  # noqa: E402
from swpu import trace_data, trace_format  # noqa: E402


def idx_bytes(array, type_byte=0x08):
    head = bytes([0, 0, type_byte, array.ndim]) + struct.pack(">%dI" % array.ndim, *array.shape)
    return head + array.astype(">u1" if type_byte == 0x08 else ">i4").tobytes()


def write_fake(directory, n_train=96, n_test=40, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, arr in zip(trace_data.FASHION_MNIST_FILES[split], (images, labels)):
            data = idx_bytes(arr)
            if compress:
                with gzip.open(os.path.join(directory, stem + ".gz"), "wb") as f:
                    f.write(data)
            else:
                with open(os.path.join(directory, stem), "wb") as f:
                    f.write(data)
    return directory


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    data = idx_bytes(a)
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    b = trace_data.read_idx(str(path))
    assert b.shape == (2, 3, 5) and (b == a).all()
    i32 = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    (tmp_path / "i.idx").write_bytes(idx_bytes(i32, 0x0C))
    assert (trace_data.read_idx(str(tmp_path / "i.idx")) == i32).all()


@pytest.mark.parametrize("data, reason", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX element type"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05", "IDX header says 3"),
])
def test_read_idx_rejects_bad_files(tmp_path, data, reason):
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(trace_data.DataError) as e:
        trace_data.read_idx(str(path))
    assert str(path) in str(e.value) and reason in str(e.value)


def test_missing_and_mismatched_files(tmp_path):
    with pytest.raises(trace_data.DataError, match="no such directory"):
        trace_data.load_fashion_mnist(str(tmp_path / "nothing"))
    d = write_fake(str(tmp_path / "fm"))
    os.remove(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(trace_data.DataError, match="t10k-labels-idx1-ubyte.gz: no such file"):
        trace_data.load_fashion_mnist(d)
    d2 = write_fake(str(tmp_path / "fm2"))
    with gzip.open(os.path.join(d2, "train-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(trace_data.DataError, match="expected 96 labels"):
        trace_data.load_fashion_mnist(d2)


@pytest.mark.parametrize("compress", [True, False])
def test_load_data_fake_fashion_mnist(tmp_path, compress):
    d = write_fake(str(tmp_path / "fm"), compress=compress)
    name, xtr, ytr, xte, yte, mean, std = trace_data.load_data(
        d, 0, 0.2, None, None, "fashion-mnist")
    assert name == "fashion-mnist"
    assert tuple(xtr.shape) == (96, 3, 28, 28) and tuple(xte.shape) == (40, 3, 28, 28)
    assert (xtr[:, 0] == xtr[:, 2]).all()  # grey in three channels
    assert 0.0 <= float(xtr.min()) and float(xtr.max()) <= 1.0
    assert len(mean) == 3 and abs(mean[0] - float(xtr.mean())) < 1e-6
    assert ytr.dtype == torch.int64 and set(ytr.tolist()) == set(range(10))


def test_installed_fashion_mnist():
    if not os.path.isdir(trace_data.FASHION_MNIST_DIR):
        pytest.skip("dataset-fashion-mnist is not installed (scripts/install_deps.sh)")
    xtr, ytr, xte, yte = trace_data.load_fashion_mnist(trace_data.FASHION_MNIST_DIR)
    assert tuple(xtr.shape) == (60000, 1, 28, 28) and tuple(xte.shape) == (10000, 1, 28, 28)
    assert np.bincount(ytr.numpy()).tolist() == [6000] * 10
    assert np.bincount(yte.numpy()).tolist() == [1000] * 10


def test_gen_trace_on_fashion_mnist_writes_a_3x28x28_network(tmp_path):
    d = write_fake(str(tmp_path / "fm"))
    out = tmp_path / "trace"
    args = ["--dataset", "fashion-mnist", "--dataset-dir", d, "--width", "0.125",
            "--iterations", "3", "--batch-size", "8", "--trace-batch", "2",
            "--update-interval", "1", "--prune-start", "0", "--prune-end", "0.5",
            "--sparsity", "0.6", "--threads", "1", "--out", str(out)]
    assert gen_trace.main(args) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["network"]["input"] == [3, 28, 28]
    assert m["source"]["dataset"] == "fashion-mnist"
    assert m["layers"][0]["in_channels"] == 3 and m["layers"][0]["in_hw"] == [28, 28]
    assert trace_format.check_trace(str(out)) == []
