"""Real datasets for the book: Fashion-MNIST and CIFAR-10 (synthetic ones: lib.synthetic).

Real data is decoded once into uint8 arrays (cached per file) and handed out as
float tensors in [0, 1]; there is no PIL and no per-batch work.
"""
from __future__ import annotations

import gzip
import http.client
import io
import math
import os
import pickle
import shutil
import struct
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lib import checks
from lib.device import resolve_device, use_pinned_memory

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "data"  # repository data folder; downloads land here
SYSTEM_FMNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian dataset-fashion-mnist
FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TIMEOUT = 15.0  # seconds per download request before giving up
SPLITS = ("train", "test")
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")
_CIFAR_DIR, _CIFAR_TAR = "cifar-10-batches-py", "cifar-10-python.tar.gz"
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Decoded uint8 (images, labels), keyed by (path, mtime, size) of the source files.
_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


class DatasetNotFoundError(FileNotFoundError):
    """No local copy of a dataset was found and it could not be downloaded."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and integer labels, held as tensors on one device.

    X is a finite floating tensor with at least one example; y holds one label in
    0..len(classes)-1 per example; classes is a non-empty sequence of names.
    """

    X: torch.Tensor  # (N, ...) float inputs; images are (N, C, H, W) in [0, 1]
    y: torch.Tensor  # (N,) int64 labels in 0..len(classes)-1
    name: str  # e.g. "fashion_mnist/train"
    classes: tuple[str, ...]  # class names, indexed by label

    def __post_init__(self):
        checks.string("name", self.name)
        object.__setattr__(self, "classes", _class_names(self.classes))
        X = checks.tensor("X", self.X)
        if X.ndim == 0:
            raise ValueError("X must have shape (N, ...), got a 0-d tensor")
        y = checks.tensor("y", self.y, ndim=1, floating=False)
        checks.same_length(X=X, y=y)
        checks.labels("y", y, len(self.classes))
        if self.y.device != X.device:
            raise ValueError(f"X and y must be on one device, got {X.device} and {self.y.device}")

    def __len__(self) -> int:
        return self.y.shape[0]


def _class_names(classes) -> tuple[str, ...]:
    """``classes`` as a non-empty tuple of strings."""
    if not isinstance(classes, (tuple, list)) or not all(isinstance(c, str) for c in classes):
        raise TypeError(f"classes must be a tuple of class names, got {classes!r:.60}")
    if not classes:
        raise ValueError("classes must name at least one class, got none")
    return tuple(classes)


def _loader_args(split, n, device, dtype, seed, download) -> dict:
    """The checked arguments of a loader (``n``'s upper end is checked once N is known)."""
    return dict(split=checks.choice("split", split, SPLITS),
                n=None if n is None else checks.integer("n", n),
                device=resolve_device(device), dtype=checks.float_dtype("dtype", dtype),
                seed=checks.seed("seed", seed), download=checks.boolean("download", download))


def read_idx(path) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped or not, into a numpy array.

    Args:
        path: file path; gzip is detected from the content, not the name.
    Returns: array with the file's dims and dtype, in native byte order.
    Raises: ValueError naming the file when it is missing or its header or length is wrong.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path, got {type(path).__name__} {path!r:.60}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (magic must start with two zero "
                         f"bytes, got {raw[:4].hex() or 'an empty file'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02x} "
                         f"(expected one of {[hex(c) for c in _IDX_DTYPES]})")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated or has 0 dimensions (ndim={ndim})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = math.prod(dims)
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(f"{path}: expected {count * dtype.itemsize} data bytes for shape "
                         f"{dims} ({dtype}), found {len(raw) - header} (truncated or corrupt)")
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # copy: writable, native order


def _search_dirs(sub: str = "") -> list[Path]:
    """Folders searched, in priority order: $NORMBOOK_DATA then data/, each with sub/."""
    env = os.environ.get("NORMBOOK_DATA")
    if not sub:
        return ([Path(env)] if env else []) + [DATA_DIR]
    return ([Path(env), Path(env) / sub] if env else []) + [DATA_DIR / sub, DATA_DIR]


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


OFFLINE_VAR = "NORMBOOK_OFFLINE"  # "1": never download (smoke runs, offline builds)


def _try_download(pairs: list[tuple[str, Path]]) -> tuple[list[Path] | None, str]:
    """Fetch each (url, dest) atomically; return (paths, "") or (None, why it failed)."""
    if os.environ.get(OFFLINE_VAR) == "1":
        return None, f"{OFFLINE_VAR}=1, so no download was attempted"
    try:
        for url, dest in pairs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            with urllib.request.urlopen(url, timeout=TIMEOUT) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
            tmp.replace(dest)  # a half-written file never looks like a real one
    except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, full disk
        return None, f"download of {url} failed: {type(e).__name__}: {e}"
    return [dest for _, dest in pairs], ""


def _not_found(what: str, dirs: list[Path], reason: str, ways: list[str]):
    searched = ", ".join(str(d) for d in dirs)
    steps = "; ".join(f"({i}) {w}" for i, w in enumerate(ways, 1))
    return DatasetNotFoundError(f"{what} not found (searched {searched}; {reason}). "
                                f"Ways to get it: {steps}.")


def _fmnist_files(split: str, download: bool) -> list[Path]:
    prefix = "train" if split == "train" else "t10k"
    stems = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    dirs = _search_dirs("fashion-mnist") + [SYSTEM_FMNIST]
    for d in dirs:
        found = [_find_file(d, s) for s in stems]
        if all(found):
            return found
    reason = "download=False, so no download was attempted"
    if download:
        dest = DATA_DIR / "fashion-mnist"
        paths, reason = _try_download([(FMNIST_URL + s + ".gz", dest / (s + ".gz")) for s in stems])
        if paths:
            return paths
    raise _not_found(f"Fashion-MNIST {split} files {stems} (.gz optional)", dirs, reason, [
        f"put the IDX files in {DATA_DIR / 'fashion-mnist'}/ (or in $NORMBOOK_DATA)",
        "apt-get install dataset-fashion-mnist (installs to /usr/share/datasets/fashion-mnist)",
        f"run once online with download=True so they are fetched from {FMNIST_URL}"]) from None


def _file_key(*paths: Path) -> tuple:
    return tuple((str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)


def _decode_fmnist(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    X, y = read_idx(images), read_idx(labels)
    if X.dtype != np.uint8 or X.ndim != 3 or X.shape[1:] != (28, 28):
        raise ValueError(f"{images}: expected uint8 images (N, 28, 28), got {X.dtype} {X.shape}")
    if y.dtype != np.uint8 or y.shape != (len(X),) or (y.size and y.max() > 9):
        raise ValueError(f"{labels}: expected {len(X)} uint8 labels in 0..9, "
                         f"got {y.dtype} {y.shape}")
    return X[:, None], y


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickler that can only build numpy arrays, so a tampered file cannot run code."""

    def find_class(self, module, name):
        numpy_ok = module.split(".")[0] == "numpy" and name in {
            "_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}
        if numpy_ok or (module, name) == ("_codecs", "encode"):  # py3 protocol-2 bytes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _decode_cifar_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _NumpyUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
    except Exception as e:  # unpickling garbage can raise almost anything
        raise ValueError(f"{where}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{where}: expected uint8 data (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),) or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise ValueError(f"{where}: expected {len(data)} labels in 0..9, got shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.uint8)  # rows are channel-major


def _cifar_raw(source: Path, names: list[str]) -> list[bytes]:
    """Bytes of the named batch files, from an extracted folder or the tarball."""
    if source.is_dir():
        return [(source / n).read_bytes() for n in names]
    try:
        with tarfile.open(source, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            missing = [n for n in names if n not in members]
            if missing:
                raise ValueError(f"{source}: tarball lacks {missing}")
            return [tar.extractfile(members[n]).read() for n in names]
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{source}: cannot read CIFAR-10 tarball ({e})") from None


def _cifar_source(names: list[str], download: bool) -> Path:
    dirs = _search_dirs()
    for d in dirs:
        if all((d / _CIFAR_DIR / n).is_file() for n in names):
            return d / _CIFAR_DIR
        if (d / _CIFAR_TAR).is_file():
            return d / _CIFAR_TAR
    reason = "download=False, so no download was attempted"
    if download:
        paths, reason = _try_download([(CIFAR_URL, DATA_DIR / _CIFAR_TAR)])
        if paths:
            return paths[0]
    raise _not_found(f"CIFAR-10 ({_CIFAR_TAR} or {_CIFAR_DIR}/)", dirs, reason, [
        f"put {_CIFAR_TAR} (or the extracted {_CIFAR_DIR}/) in {DATA_DIR}/ (or in $NORMBOOK_DATA)",
        f"run once online with download=True so it is fetched from {CIFAR_URL} "
        "(CIFAR-10 has no Debian package)"]) from None


def _to_dataset(X: np.ndarray, y: np.ndarray, n, seed: int, device, dtype, name, classes):
    """Seeded subset of uint8 arrays -> Dataset of floats in [0, 1] on device."""
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    if n is not None:
        checks.integer("n", n, hi=len(y))
        idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
        X, y = X[idx], y[idx]
    # Move as uint8 (4x less traffic), then convert; .to() copies, so the cache stays intact.
    if use_pinned_memory(device):  # page-locked host memory: faster, asynchronous copies
        X, y = X.pin_memory(), y.pin_memory()
    X = X.to(device, non_blocking=True).to(dtype).div_(255)
    return Dataset(X=X, y=y.to(device).to(torch.int64), name=name, classes=classes)


def fashion_mnist(split="train", n=None, device=None, dtype=torch.float32, seed=0,
                  download=True) -> Dataset:
    """Fashion-MNIST as tensors: X (N, 1, 28, 28) in [0, 1], y (N,) int64.

    Args:
        split: "train" (60000 examples) or "test" (10000).
        n: None (all) or a random subset of n examples (1 <= n <= N), deterministic in seed.
        device: an available torch device or string; None means lib.device.pick_device().
        dtype: floating dtype of X.
        seed: integer in [0, 2**63); seeds the subset choice.
        download: fetch from the official URL if no local copy is found.
    Raises: DatasetNotFoundError, saying how to get the files, when there is no copy.
    """
    a = _loader_args(split, n, device, dtype, seed, download)
    files = _fmnist_files(a["split"], a["download"])
    key = ("fashion_mnist",) + _file_key(*files)
    if key not in _CACHE:
        _CACHE[key] = _decode_fmnist(*files)
    return _to_dataset(*_CACHE[key], a["n"], a["seed"], a["device"], a["dtype"],
                       f"fashion_mnist/{split}", FMNIST_CLASSES)


def cifar10(split="train", n=None, device=None, dtype=torch.float32, seed=0,
            download=True) -> Dataset:
    """CIFAR-10 as tensors: X (N, 3, 32, 32) in [0, 1], y (N,) int64.

    Args: as for fashion_mnist; train has 50000 examples, test 10000.
    """
    a = _loader_args(split, n, device, dtype, seed, download)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    source = _cifar_source(names, a["download"])
    key = ("cifar10", split) + _file_key(source)
    if key not in _CACHE:
        parts = [_decode_cifar_batch(raw, f"{source}:{name}")
                 for raw, name in zip(_cifar_raw(source, names), names)]
        _CACHE[key] = tuple(np.concatenate(a) for a in zip(*parts))
    return _to_dataset(*_CACHE[key], a["n"], a["seed"], a["device"], a["dtype"],
                       f"cifar10/{split}", CIFAR_CLASSES)


_LOADERS = {"fashion_mnist": fashion_mnist, "cifar10": cifar10}


def load(name: str, **kw) -> Dataset:
    """Load a real dataset by name ("fashion_mnist" or "cifar10"); kw go to its loader."""
    return _LOADERS[checks.choice("name", name, _LOADERS)](**kw)
