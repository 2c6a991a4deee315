"""Tests for lib.data: IDX/CIFAR parsing, search order, offline errors, synthetic problems."""
import gzip
import http.client
import io
import pickle
import struct
import tarfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from lib import data, synthetic

SYSTEM = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------- helpers
def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    """IDX encoding written independently of lib.data: magic, big-endian dims, data."""
    big = arr.astype(arr.dtype.newbyteorder(">"))
    dims = struct.pack(f">{arr.ndim}I", *arr.shape)
    return bytes([0, 0, code, arr.ndim]) + dims + big.tobytes()


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08, gz: bool = True) -> Path:
    raw = idx_bytes(arr, code)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_fmnist(folder: Path, split="test", n=20, label=None, gz=True):
    """Tiny Fashion-MNIST split; pixel [i, 0, 0] = i identifies example i."""
    prefix = "train" if split == "train" else "t10k"
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    X[:, 0, 0] = np.arange(n)
    y = (np.arange(n) % 10 if label is None else np.full(n, label)).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", X, gz=gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y, gz=gz)
    return X, y


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty search dirs, fresh cache, and a urlopen that fails instantly (records calls)."""
    calls = []

    def fail(url, timeout=None):
        calls.append((url, timeout))
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.delenv("NORMBOOK_DATA", raising=False)
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "repo_data")
    monkeypatch.setattr(data, "SYSTEM_FMNIST", tmp_path / "system")
    monkeypatch.setattr(data, "_CACHE", {})
    monkeypatch.setattr(data.urllib.request, "urlopen", fail)
    return calls


# ---------------------------------------------------------------- IDX parser
@pytest.mark.parametrize("code,dtype,shape", [
    (0x08, np.uint8, (5, 28, 28)), (0x09, np.int8, (7,)), (0x0B, np.int16, (3, 4)),
    (0x0C, np.int32, (2, 3, 2)), (0x0D, np.float32, (6, 2)), (0x0E, np.float64, (4,))])
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, code, dtype, shape, gz):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal(shape) * 100).astype(dtype)
    out = data.read_idx(write_idx(tmp_path / "a.idx", arr, code, gz))
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


@pytest.mark.parametrize("mangle,match", [
    (lambda b: b"\x01" + b[1:], "magic"),
    (lambda b: b[:2] + b"\x07" + b[3:], "dtype code"),
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\x00", "expected"),
    (lambda b: b[:6], "header"),
    (lambda b: b"", "empty"),
])
def test_read_idx_corrupt_raises(tmp_path, mangle, match):
    raw = idx_bytes(np.zeros((3, 4), np.uint8), 0x08)
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(mangle(raw))
    with pytest.raises(ValueError, match=match) as err:
        data.read_idx(path)
    assert "bad-images-idx3-ubyte" in str(err.value)


def test_read_idx_truncated_gzip(tmp_path):
    gz = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8).reshape(10, 100), 0x08))
    path = tmp_path / "cut.gz"
    path.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match="cut.gz.*gzip"):
        data.read_idx(path)


# ---------------------------------------------------------------- Fashion-MNIST
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loads_fake_files(offline, gz):
    X, y = fake_fmnist(data.DATA_DIR / "fashion-mnist", "test", gz=gz)
    ds = data.fashion_mnist("test")
    assert ds.X.shape == (20, 1, 28, 28) and ds.X.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and len(ds) == 20
    torch.testing.assert_close(ds.X, torch.tensor(X[:, None] / 255.0, dtype=torch.float32))
    assert ds.y.tolist() == y.tolist()
    assert ds.name == "fashion_mnist/test" and len(ds.classes) == 10
    assert data.load("fashion_mnist", split="test", dtype=torch.float64).X.dtype == torch.float64


def test_search_order(offline, tmp_path, monkeypatch):
    fake_fmnist(data.SYSTEM_FMNIST, label=3)
    assert set(data.fashion_mnist("test").y.tolist()) == {3}
    fake_fmnist(data.DATA_DIR, label=2)  # data/ itself (no fashion-mnist/ subdir)
    assert set(data.fashion_mnist("test").y.tolist()) == {2}
    fake_fmnist(tmp_path / "env" / "fashion-mnist", label=1)
    monkeypatch.setenv("NORMBOOK_DATA", str(tmp_path / "env"))
    assert set(data.fashion_mnist("test").y.tolist()) == {1}
    fake_fmnist(tmp_path / "env", label=0)  # the env dir itself beats its subdir
    assert set(data.fashion_mnist("test").y.tolist()) == {0}
    assert offline == []  # local copies found, so no download attempted


def test_decoded_arrays_are_cached(offline, monkeypatch):
    fake_fmnist(data.DATA_DIR / "fashion-mnist")
    reads = []
    real = data.read_idx
    monkeypatch.setattr(data, "read_idx", lambda p: reads.append(p) or real(p))
    first = data.fashion_mnist("test")
    first.X.zero_()  # callers own their tensors: must not corrupt the cache
    second = data.fashion_mnist("test", n=5)
    assert len(reads) == 2  # images + labels, read once
    assert second.X.sum() > 0


def test_subset_is_deterministic_in_seed(offline):
    fake_fmnist(data.DATA_DIR / "fashion-mnist", n=50)

    def ids(**kw):  # example ids are stored in pixel [0, 0]
        return (data.fashion_mnist("test", **kw).X[:, 0, 0, 0] * 255).round().long().tolist()

    assert ids(n=10, seed=1) == ids(n=10, seed=1)
    assert ids(n=10, seed=1) != ids(n=10, seed=2)
    assert len(set(ids(n=10, seed=3))) == 10
    assert sorted(ids(n=50, seed=4)) == list(range(50))
    for bad, error in ((0, ValueError), (-1, ValueError), (51, ValueError),
                       (2.5, TypeError), (True, TypeError), ("5", TypeError)):
        with pytest.raises(error, match="^n must be an integer"):
            data.fashion_mnist("test", n=bad)
    assert ids(n=np.int64(3), seed=np.int64(1)) == ids(n=3, seed=1)  # NumPy ints accepted


@pytest.mark.parametrize("error", [
    urllib.error.URLError("no route"), TimeoutError("timed out"),
    http.client.RemoteDisconnected("closed"), ConnectionRefusedError("refused")])
def test_offline_message_names_three_ways(offline, monkeypatch, error):
    def fail(url, timeout=None):
        offline.append((url, timeout))
        raise error

    monkeypatch.setattr(data.urllib.request, "urlopen", fail)
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.fashion_mnist("train")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert "data/fashion-mnist" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "download=True" in msg and type(error).__name__ in msg
    assert offline[0][0] == data.FMNIST_URL + "train-images-idx3-ubyte.gz"
    assert 0 < offline[0][1] <= 60  # a short timeout is always passed
    assert not list(data.DATA_DIR.rglob("*.part"))


def test_no_download_when_disabled(offline):
    with pytest.raises(data.DatasetNotFoundError, match="apt-get install") as err:
        data.fashion_mnist("test", download=False)
    assert offline == [] and "download=False" in str(err.value)


def test_download_writes_files_then_loads(offline, monkeypatch):
    X = np.full((4, 28, 28), 7, np.uint8)
    y = np.array([0, 1, 2, 9], np.uint8)
    served = {"t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(X, 0x08)),
              "t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(y, 0x08))}
    monkeypatch.setattr(data.urllib.request, "urlopen",
                        lambda url, timeout=None: io.BytesIO(served[url.rsplit("/", 1)[1]]))
    ds = data.fashion_mnist("test")
    assert ds.y.tolist() == [0, 1, 2, 9]
    assert (data.DATA_DIR / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_wrong_image_shape_is_reported(offline):
    folder = data.DATA_DIR / "fashion-mnist"
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((2, 27, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images.*\(N, 28, 28\)"):
        data.fashion_mnist("test")


# ---------------------------------------------------------------- CIFAR-10
def fake_cifar(root: Path, protocol=2, as_tar=True, per_batch=4):
    """Tiny CIFAR-10 in the official layout; returns {split: (X (N,3,32,32) uint8, y)}."""
    rng = np.random.default_rng(2)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {n: rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8) for n in names}
    labels = {n: [int(v) for v in rng.integers(0, 10, per_batch)] for n in names}
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for n in names:
        blob = {b"batch_label": b"x", b"data": batches[n], b"labels": labels[n]}
        (folder / n).write_bytes(pickle.dumps(blob, protocol=protocol))
    if as_tar:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
        for n in names:
            (folder / n).unlink()
        folder.rmdir()
    train = np.concatenate([batches[n] for n in names[:5]]), sum((labels[n] for n in names[:5]), [])
    return {"train": train, "test": (batches["test_batch"], labels["test_batch"])}


@pytest.mark.parametrize("protocol,as_tar",
                         [(2, True), (pickle.HIGHEST_PROTOCOL, True), (2, False)])
def test_cifar10_round_trip(offline, protocol, as_tar):
    truth = fake_cifar(data.DATA_DIR, protocol, as_tar)
    for split, n in (("train", 20), ("test", 4)):
        ds = data.load("cifar10", split=split)
        X, y = truth[split]
        assert ds.X.shape == (n, 3, 32, 32) and ds.y.tolist() == y
        expected = torch.tensor(X.reshape(n, 3, 32, 32) / 255.0, dtype=torch.float32)
        torch.testing.assert_close(ds.X, expected)
    assert data.cifar10("train", n=7, seed=1).X.shape == (7, 3, 32, 32)
    assert offline == []


def test_cifar10_env_dir_beats_repo(offline, tmp_path, monkeypatch):
    fake_cifar(data.DATA_DIR, per_batch=4)
    fake_cifar(tmp_path / "env", per_batch=2)
    monkeypatch.setenv("NORMBOOK_DATA", str(tmp_path / "env"))
    assert len(data.cifar10("test")) == 2


def test_cifar10_refuses_code_in_pickles(offline):
    folder = data.DATA_DIR / "cifar-10-batches-py"
    fake_cifar(data.DATA_DIR, as_tar=False)
    (folder / "test_batch").write_bytes(
        b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle that would run a shell command
    with pytest.raises(ValueError, match="test_batch.*refusing"):
        data.cifar10("test")


def test_cifar10_corrupt_tarball(offline):
    data.DATA_DIR.mkdir(parents=True)
    (data.DATA_DIR / "cifar-10-python.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz"):
        data.cifar10("test")


def test_cifar10_offline_message(offline):
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.cifar10("test")
    msg = str(err.value)
    assert "cifar-10-python.tar.gz" in msg and "download=True" in msg
    assert "no Debian package" in msg and "URLError" in msg
    assert offline[0][0] == data.CIFAR_URL


# ---------------------------------------------------------------- synthetic
def test_least_squares_has_exact_spectrum():
    lam = synthetic.log_spectrum(30, 1e3)
    prob = synthetic.least_squares(lam, seed=3)
    assert prob.H.dtype == torch.float64 and prob.u.shape == (30,)
    assert torch.equal(prob.H, prob.H.T)
    eig = torch.linalg.eigvalsh(prob.H)  # independent of how H was built
    # Building H and a backward-stable eigensolver each err by about d·eps·||H|| =
    # 30 · 2.2e-16 · 1e3 ≈ 7e-12 (in any summation order, with any thread count).
    assert torch.allclose(eig, torch.sort(lam).values, rtol=0, atol=1e-10)
    again = synthetic.least_squares(lam.tolist(), seed=3)
    assert torch.equal(again.H, prob.H) and torch.equal(again.u, prob.u)
    other = synthetic.least_squares(np.asarray(lam), seed=4)
    assert not torch.allclose(other.H, prob.H) and not torch.allclose(other.u, prob.u)
    assert synthetic.least_squares([2.0], dtype=torch.float32).H.dtype == torch.float32


@pytest.mark.parametrize("spectrum,error", [
    ([1.0, -1.0], ValueError), ([1.0, 0.0], ValueError), ([1.0, float("inf")], ValueError),
    ([float("nan")], ValueError), ([], ValueError), ([[1.0, 2.0]], ValueError),
    (3.0, ValueError), ("abc", TypeError), ([True, False], TypeError), (None, TypeError)])
def test_least_squares_rejects_bad_spectrum(spectrum, error):
    with pytest.raises(error, match="^spectrum must"):
        synthetic.least_squares(spectrum)


def test_log_spectrum():
    lam = synthetic.log_spectrum(5, 1e4)
    assert lam.dtype == torch.float64
    torch.testing.assert_close(lam, torch.tensor([1.0, 10.0, 100.0, 1e3, 1e4], dtype=torch.float64))
    assert synthetic.log_spectrum(1, 50).tolist() == [1.0]
    for d, kappa, error in ((0, 10, ValueError), (3, 0.5, ValueError),
                            (3, float("inf"), ValueError), (2.0, 10, TypeError)):
        with pytest.raises(error, match="^d must|^kappa must"):
            synthetic.log_spectrum(d, kappa)


def test_gaussian_classification():
    ds = synthetic.gaussian_classification(200, 5, n_classes=3, seed=7)
    assert ds.X.shape == (200, 5) and ds.X.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and set(ds.y.tolist()) == {0, 1, 2}
    assert torch.equal(synthetic.gaussian_classification(200, 5, 3, seed=7).y, ds.y)
    assert not torch.equal(synthetic.gaussian_classification(200, 5, 3, seed=8).y, ds.y)
    # Labels do not depend on dtype (X is drawn in float64 first).
    assert torch.equal(synthetic.gaussian_classification(200, 5, 3, 7, dtype=torch.float64).y, ds.y)


def test_gaussian_labels_are_linearly_separable():
    ds = synthetic.gaussian_classification(100, 3, n_classes=2, seed=0, dtype=torch.float64)
    # Least-squares fit of +-1 targets on 3 dims; a linear teacher makes a perfect
    # separator exist, and with n >> d the LS direction recovers it closely.
    w = torch.linalg.lstsq(ds.X, ds.y.double() * 2 - 1).solution
    assert ((ds.X @ w > 0).long() == ds.y).float().mean() > 0.9


def test_label_noise_replaces_a_fraction_of_the_labels():
    clean = synthetic.gaussian_classification(4000, 10, n_classes=10, seed=3)
    noisy = synthetic.gaussian_classification(4000, 10, n_classes=10, seed=3, label_noise=0.3)
    assert torch.equal(noisy.X, clean.X)
    changed = (noisy.y != clean.y).float().mean().item()
    assert abs(changed - 0.3 * 0.9) < 0.03   # a redrawn label keeps its class 1 time in 10
    assert set(noisy.y.tolist()) == set(range(10))


# ---------------------------------------------------------------- argument checks
@pytest.mark.parametrize("call,match", [
    (lambda: data.load("mnist"), "^name must be one of 'fashion_mnist', 'cifar10'"),
    (lambda: data.fashion_mnist("val"), "split"),
    (lambda: data.cifar10("validation"), "split"),
    (lambda: data.fashion_mnist("test", dtype=torch.int64), "dtype"),
    (lambda: data.fashion_mnist("test", seed=-1), "seed"),
    (lambda: synthetic.gaussian_classification(0, 3), "n must"),
    (lambda: synthetic.gaussian_classification(10, 0), "d must"),
    (lambda: synthetic.gaussian_classification(10, 3, n_classes=1), "n_classes"),
    (lambda: synthetic.gaussian_classification(10, 3, label_noise=1.0), "label_noise"),
    (lambda: data.Dataset(torch.zeros(3, 2), torch.zeros(4).long(), "x", ("a",)),
     "^X and y must have the same length"),
    (lambda: data.Dataset(torch.zeros(3, 2), torch.tensor([0, 1, 2]), "x", ("a", "b")),
     "^y must hold labels in 0..1"),
    (lambda: data.Dataset(torch.zeros(3, 2), torch.zeros(3).long(), "x", ()), "^classes must"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- real data
@pytest.mark.skipif(not SYSTEM.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split(tmp_path, monkeypatch):
    monkeypatch.delenv("NORMBOOK_DATA", raising=False)
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)  # force the system copy
    monkeypatch.setattr(data, "_CACHE", {})
    start = time.perf_counter()
    ds = data.fashion_mnist("test", download=False)
    assert time.perf_counter() - start < 3.0
    assert ds.X.shape == (10000, 1, 28, 28) and ds.y.shape == (10000,)
    assert ds.y.min() == 0 and ds.y.max() == 9
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0
