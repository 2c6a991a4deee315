"""The infrastructure modules (device, scale, cache, data, synthetic, progress, chapter,
plotting) refuse bad input by name; the specific bad inputs of issue 12 behave as stated."""

import pickle
import tempfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from matplotlib.figure import Figure

from contracts import INF, NAN, Case, parametrize
from lib import cache, chapter, data, device, plotting, progress, scale, synthetic

TMP = Path(tempfile.gettempdir()) / "normbook-contracts-infra"

# Where None is a valid value (device=None: pick one; n=None: all), it is not a bad one.
DEVICE_BAD = st.sampled_from(["bogus", "gpu", 3, [], "cpu:x"]
                             + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"]))
N_BAD = st.one_of(st.integers(max_value=0), st.sampled_from([2.5, 3.0, NAN, "3", True]))
SCALE_NAME_BAD = st.sampled_from(["", "huge", "gpu2", 3, ("cpu",), b"cpu"])
STRING_BAD = st.sampled_from([3, None, b"x", 1.5])
CACHE_NAME_BAD = st.sampled_from(["", "a/b", "../x", "é", 3, None])
UNKEYABLE = st.sampled_from([object(), {"x": object()}, [len], {"f": print}])
NOT_A_FUNCTION = st.sampled_from([len, 3, "f", object()])
PATH_BAD = st.sampled_from([None, 3, 1.5, []])
VALUES_BAD = st.sampled_from([None, "x", [], [[1.0, 2.0]], [True, False], [1 + 1j],
                              np.zeros((2, 2))])


@pytest.fixture(autouse=True)
def sandbox(tmp_path, monkeypatch):
    """No real data, no network, and a cache of our own: a check that is missing shows
    as a DatasetNotFoundError or a computed result, never as a download."""
    def offline(url, timeout=None):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.delenv("NORMBOOK_DATA", raising=False)
    monkeypatch.delenv("NORMBOOK_DEVICE", raising=False)
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "repo_data")
    monkeypatch.setattr(data, "SYSTEM_FMNIST", tmp_path / "system")
    monkeypatch.setattr(data, "_CACHE", {})
    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path / "cache"))


def twice(cfg):
    return 2 * cfg["x"]


def loader_args():
    return dict(split="test", n=5, device="cpu", dtype=torch.float32, seed=0, download=False)


LOADER_KINDS = {"split": st.sampled_from(["val", "", "TEST", None, 3]), "n": N_BAD,
                "device": DEVICE_BAD, "dtype": "dtype", "seed": "seed", "download": "bool"}
SCALE_FIELDS = dict(name="t", n_train=2, n_test=2, epochs=1, steps=1, width=2, grid=2, seeds=1,
                    slider_grid=2, description="tiny")

CASES = [
    # device
    Case(device.pick_device, lambda: dict(verbose=False), {"verbose": "bool"}),
    Case(device.resolve_device, lambda: dict(device="cpu", name="device"),
         {"device": DEVICE_BAD, "name": st.sampled_from([3, None, b"d"])}),
    Case(device.describe, lambda: dict(device="cpu"), {"device": "device"}),
    Case(device.use_pinned_memory, lambda: dict(device="cpu"), {"device": "device"}),
    Case(device.autocast, lambda: dict(device="cpu", enabled=True),
         {"device": "device", "enabled": "bool"}),
    Case(device.seed_everything, lambda: dict(seed=0), {"seed": "seed"}),
    # scale
    Case(scale.Scale, lambda: dict(SCALE_FIELDS),
         {"name": STRING_BAD, "description": STRING_BAD,
          **{f: "size" for f in SCALE_FIELDS if f not in ("name", "description")}}, examples=6),
    Case(scale.current, lambda: dict(name="cpu"), {"name": SCALE_NAME_BAD}),
    # cache
    Case(cache.function_hash, lambda: dict(fn=twice, depth=0),
         {"fn": st.sampled_from([len, 3, "f", None, object()]), "depth": "count"}),
    Case(cache.key, lambda: dict(config={"x": 1}, fn=twice),
         {"config": UNKEYABLE, "fn": NOT_A_FUNCTION}),
    Case(cache.path_for, lambda: dict(name="t", config={"x": 1}, fn=twice),
         {"name": CACHE_NAME_BAD, "config": UNKEYABLE, "fn": NOT_A_FUNCTION}),
    Case(cache.load, lambda: dict(path=TMP / "none.pkl"), {"path": PATH_BAD}),
    Case(cache.store, lambda: dict(path=TMP / "x.pkl", result={"a": 1}),
         {"path": st.sampled_from([None, 3, "/etc/hostname/x.pkl", "/proc/none/x.pkl"]),
          "result": st.sampled_from([lambda: 1, (i for i in range(3))])}),
    Case(cache.memoize, lambda: dict(name="t", config={"x": 1}, fn=twice),
         {"name": CACHE_NAME_BAD, "config": UNKEYABLE, "fn": st.sampled_from([len, 3, None, "f"])}),
    # data
    Case(data.Dataset, lambda: dict(X=torch.zeros(4, 2), y=torch.tensor([0, 1, 0, 1]), name="t",
                                    classes=("a", "b")),
         {"X": st.sampled_from([None, "X", [[0.0]], np.zeros((4, 2)), torch.zeros(4, 2).long(),
                                torch.full((4, 2), NAN), torch.full((4, 2), INF), torch.zeros(0, 2),
                                torch.zeros(1, 4, 2), torch.zeros(())]),
          "y": "labels", "name": STRING_BAD,
          "classes": st.sampled_from([(), [], "ab", None, (1, 2), 3])}),
    Case(data.read_idx, lambda: dict(path=TMP / "none.idx"),
         {"path": st.sampled_from([None, 3, "/nonexistent/x-idx1-ubyte", "/tmp"])}),
    Case(data.fashion_mnist, loader_args, LOADER_KINDS, examples=8),
    Case(data.cifar10, loader_args, LOADER_KINDS, examples=8),
    Case(data.load, lambda: dict(name="fashion_mnist", split="test", download=False),
         {"name": st.sampled_from(["mnist", "", "CIFAR10", None, 3])}),
    # synthetic
    Case(synthetic.LeastSquares, lambda: dict(H=torch.eye(3, dtype=torch.float64),
                                              u=torch.ones(3, dtype=torch.float64)),
         {"H": "tensor", "u": "tensor"}),
    Case(synthetic.gaussian_classification,
         lambda: dict(n=4, d=2, n_classes=2, seed=0, device="cpu", dtype=torch.float32,
                      label_noise=0.0),
         {"n": "size", "d": "size", "n_classes": st.one_of(N_BAD, st.just(1)), "seed": "seed",
          "device": DEVICE_BAD, "dtype": "dtype", "label_noise": "fraction"}, examples=8),
    Case(synthetic.log_spectrum, lambda: dict(d=3, kappa=10.0),
         {"d": "size", "kappa": st.sampled_from([0.5, 0.0, -1, NAN, INF, None, "2", True])}),
    Case(synthetic.least_squares,
         lambda: dict(spectrum=[1.0, 2.0], seed=0, dtype=torch.float64, device="cpu"),
         {"spectrum": "positive_array", "seed": "seed", "dtype": "dtype", "device": DEVICE_BAD},
         examples=8),
    # progress, chapter, plotting
    Case(progress.bar, lambda: dict(total=3, desc="t", disable=True, leave=False),
         {"total": "count", "desc": STRING_BAD, "disable": "bool", "leave": "bool"}),
    Case(chapter.Setup, lambda: dict(device=torch.device("cpu"), scale=scale.SCALES["cpu"]),
         {"device": "device", "scale": st.sampled_from([None, "cpu", 3, {}])}),
    Case(chapter.setup, lambda: dict(name="cpu", verbose=False),
         {"name": SCALE_NAME_BAD, "verbose": "bool"}),
    Case(plotting.first_nonfinite, lambda: dict(values=[1.0, NAN]), {"values": VALUES_BAD}),
    Case(plotting.mark_divergence,
         lambda: dict(ax=Figure().subplots(), values=[1.0, INF], what="step", label=""),
         {"ax": st.sampled_from([None, 3, "ax", Figure()]), "values": VALUES_BAD,
          "what": STRING_BAD, "label": STRING_BAD}, examples=6),
]

EXEMPT = {
    device.release_host_memory: "takes no arguments (returns freed heap pages to the system)",
    scale.default_name: "takes no arguments (reads whether CUDA is present)",
    cache.cache_dir: "takes no arguments; NORMBOOK_CACHE is checked by memoize before computing",
    cache.lib_source_hash: "takes no arguments (hashes the files of lib/)",
    data.DatasetNotFoundError: "an exception class, raised by the loaders with a message",
    progress.quiet: "takes no arguments (reads NORMBOOK_BUILD and NORMBOOK_QUIET)",
    plotting.use_style: "takes no arguments (applies the book's matplotlib style)",
}

test_bad_input_is_refused_by_name = parametrize(CASES)


# ------------------------------------------------- NORMBOOK_DEVICE and NORMBOOK_SCALE
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("call", [device.pick_device, lambda: data.fashion_mnist("test"),
                                  lambda: synthetic.gaussian_classification(4, 2),
                                  lambda: chapter.setup("cpu", verbose=False)],
                         ids=["pick_device", "loader", "synthetic", "chapter.setup"])
def test_normbook_device_cuda_without_cuda_is_refused_at_once(monkeypatch, call):
    monkeypatch.setenv("NORMBOOK_DEVICE", "cuda")
    threads = torch.get_num_threads()
    with pytest.raises(ValueError, match=r"^NORMBOOK_DEVICE is 'cuda' but CUDA is not available"
                                         r".*available here: .*cpu"):
        call()
    assert torch.get_num_threads() == threads  # chapter.setup failed before changing it


@pytest.mark.parametrize("value", ["bogus", "gpu", "cpu:x"])
def test_normbook_device_unknown_names_the_variable_and_what_exists(monkeypatch, value):
    monkeypatch.setenv("NORMBOOK_DEVICE", value)
    with pytest.raises(ValueError) as err:
        device.pick_device()
    msg = str(err.value)
    assert msg.startswith("NORMBOOK_DEVICE") and "available here: " in msg and "cpu" in msg
    assert "xla" not in msg  # not torch's list of every backend it was compiled to know


def test_normbook_device_cpu_is_honoured(monkeypatch):
    monkeypatch.setenv("NORMBOOK_DEVICE", " cpu ")
    assert device.pick_device() == torch.device("cpu")


@pytest.mark.parametrize("value", ["huge", "GPU2", "1"])
def test_normbook_scale_unknown_names_the_variable_and_the_scales(monkeypatch, value):
    monkeypatch.setenv("NORMBOOK_SCALE", value)
    with pytest.raises(ValueError, match=f"^NORMBOOK_SCALE must be one of 'cpu', 'gpu', 'paper'; "
                                         f"got '{value.lower()}'"):
        scale.current()
    with pytest.raises(ValueError, match="^NORMBOOK_SCALE must be"):
        chapter.setup(verbose=False)


# ------------------------------------------------- seeds
def fake_fmnist_test(folder: Path, n=12):
    """A tiny Fashion-MNIST test split (IDX, uncompressed), written independently of lib.data."""
    folder.mkdir(parents=True, exist_ok=True)
    X = (np.arange(n * 28 * 28) % 251).astype(np.uint8).reshape(n, 28, 28)
    y = (np.arange(n) % 10).astype(np.uint8)
    (folder / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + np.array(
        [n, 28, 28], ">u4").tobytes() + X.tobytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + np.array(
        [n], ">u4").tobytes() + y.tobytes())


SEEDED = {
    "seed_everything": lambda s: device.seed_everything(s).initial_seed(),
    "fashion_mnist": lambda s: data.fashion_mnist("test", n=4, seed=s, download=False).X,
    "gaussian_classification": lambda s: synthetic.gaussian_classification(5, 2, seed=s).X,
    "least_squares": lambda s: synthetic.least_squares([1.0, 2.0], seed=s).H,
}


@pytest.fixture
def fmnist():
    fake_fmnist_test(data.DATA_DIR / "fashion-mnist")


@pytest.mark.parametrize("func", SEEDED.values(), ids=SEEDED.keys())
def test_numpy_integer_seeds_work_like_python_ints(fmnist, func):
    for np_seed in (np.int64(3), np.uint32(3), np.int8(3)):
        out, ref = func(np_seed), func(3)
        assert out == ref if isinstance(ref, int) else torch.equal(out, ref)


@pytest.mark.parametrize("func", SEEDED.values(), ids=SEEDED.keys())
@pytest.mark.parametrize("bad,error", [(1.0, TypeError), (2.5, TypeError), ("3", TypeError),
                                       (True, TypeError), (None, TypeError), (-1, ValueError),
                                       (2**63, ValueError), (np.int64(-1), ValueError)])
def test_float_string_and_negative_seeds_are_refused(fmnist, func, bad, error):
    with pytest.raises(error, match=r"^seed must be an integer in \[0, 9223372036854775807\]"):
        func(bad)


# ------------------------------------------------- dtypes
@pytest.mark.parametrize("call", [
    lambda dt: data.fashion_mnist("test", dtype=dt, download=False),
    lambda dt: data.cifar10("test", dtype=dt, download=False),
    lambda dt: synthetic.gaussian_classification(4, 2, dtype=dt),
    lambda dt: synthetic.least_squares([1.0, 2.0], dtype=dt),
], ids=["fashion_mnist", "cifar10", "gaussian_classification", "least_squares"])
@pytest.mark.parametrize("dt", [torch.int64, torch.uint8, torch.bool, torch.complex64])
def test_non_floating_dtypes_are_refused_not_zeroed(fmnist, call, dt):
    with pytest.raises(ValueError, match=f"^dtype must be a floating torch dtype.*got {dt}"):
        call(dt)


# ------------------------------------------------- the results cache
def test_cache_under_a_regular_file_fails_before_computing(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("NORMBOOK_CACHE", str(blocker / "cache"))
    ran = []
    with pytest.raises(ValueError, match="^NORMBOOK_CACHE '.*a-file/cache' is not a folder"):
        cache.memoize("t", {"x": 1}, lambda cfg: ran.append(1))
    assert ran == []  # refused in milliseconds, nothing computed and lost


class Gone:
    """A class a stored result refers to; deleting it makes the entry foreign."""


@pytest.mark.parametrize("content", [b"garbage", b"", pickle.dumps([1.0, 2.0])[:-2],
                                     b"cno_such_module\nThing\n.", "gone"],
                         ids=["garbage", "empty", "truncated", "foreign-module", "foreign-class"])
def test_corrupt_or_foreign_cache_entry_is_recomputed_and_overwritten(monkeypatch, content):
    path = cache.path_for("t", {"x": 1.5}, twice)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Gone()) if content == "gone" else content)
    monkeypatch.delattr(__import__(__name__), "Gone")
    with pytest.warns(UserWarning, match=f"cache entry .*{path.name} is unreadable.*recomputed"):
        assert cache.memoize("t", {"x": 1.5}, twice) == 3.0
    assert pickle.loads(path.read_bytes()) == 3.0


# ------------------------------------------------- a missing data set says how to get it
LOADERS = {
    "fashion_mnist": (lambda split, dl: data.fashion_mnist(split, download=dl),
                      ["fashion-mnist", "apt-get install dataset-fashion-mnist"]),
    "cifar10": (lambda split, dl: data.cifar10(split, download=dl),
                ["cifar-10-python.tar.gz", "no Debian package"]),
    "load-fashion_mnist": (lambda split, dl: data.load("fashion_mnist", split=split, download=dl),
                           ["fashion-mnist", "apt-get install dataset-fashion-mnist"]),
    "load-cifar10": (lambda split, dl: data.load("cifar10", split=split, download=dl),
                     ["cifar-10-python.tar.gz", "no Debian package"]),
}


@pytest.mark.parametrize("loader", LOADERS, ids=LOADERS)
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("download", [True, False], ids=["online-but-offline", "no-download"])
@pytest.mark.parametrize("where", ["nothing", "partial", "env-elsewhere"])
def test_a_missing_data_set_says_how_to_get_it(tmp_path, monkeypatch, loader, split, download,
                                               where):
    call, words = LOADERS[loader]
    if where == "partial":  # half a copy: the images of Fashion-MNIST, 4 of 5 CIFAR batches
        for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
            (data.DATA_DIR / "fashion-mnist").mkdir(parents=True, exist_ok=True)
            (data.DATA_DIR / "fashion-mnist" / name).write_bytes(b"")
        (data.DATA_DIR / "cifar-10-batches-py").mkdir(parents=True)
        for i in range(1, 5):
            (data.DATA_DIR / "cifar-10-batches-py" / f"data_batch_{i}").write_bytes(b"")
    if where == "env-elsewhere":
        monkeypatch.setenv("NORMBOOK_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(data.DatasetNotFoundError) as err:
        call(split, download)
    msg = str(err.value)
    assert "not found (searched" in msg and "Ways to get it: (1)" in msg
    assert "download=True" in msg and str(data.DATA_DIR) in msg
    assert all(w in msg for w in words), msg
    assert ("URLError" in msg) if download else ("download=False" in msg)
    if where == "env-elsewhere":
        assert str(tmp_path / "nowhere") in msg
