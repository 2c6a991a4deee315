import numpy as np
import pytest

from lib import cache


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path))
    return tmp_path


def square(cfg):
    square.calls += 1
    return {"y": np.asarray(cfg["x"]) ** 2}


square.calls = 0


def test_memoize_computes_once_then_reads(tmp_cache):
    square.calls = 0
    a = cache.memoize("sq", {"x": [1.0, 2.0]}, square)
    b = cache.memoize("sq", {"x": [1.0, 2.0]}, square)
    assert square.calls == 1 and np.array_equal(a["y"], b["y"])
    assert len(list(tmp_cache.glob("sq-*.pkl"))) == 1


def test_key_changes_with_config_and_code():
    base = cache.key({"eta": 0.1}, square)
    assert cache.key({"eta": 0.1}, square) == base
    assert cache.key({"eta": 0.1000000001}, square) != base  # floats keyed exactly
    assert cache.key({"eta": 0.1}, lambda c: c) != base


def test_key_changes_when_lib_changes(tmp_path, monkeypatch):
    fake_lib = tmp_path / "lib"
    fake_lib.mkdir()
    (fake_lib / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(cache, "LIB", fake_lib)
    before = cache.key({"a": 1})
    (fake_lib / "m.py").write_text("x = 2\n")
    assert cache.key({"a": 1}) != before


# Corrupt and foreign entries, and a cache folder under a file: test_contracts_infra.py.


def test_result_that_cannot_be_stored_is_returned_with_a_warning(tmp_cache):
    with pytest.warns(UserWarning, match="computed but not cached.*result cannot be pickled"):
        out = cache.memoize("fn", {"x": 1.0}, lambda cfg: (lambda: cfg))
    assert out() == {"x": 1.0}
    assert not list(tmp_cache.iterdir())  # no half-written entry left behind


def test_a_failed_store_after_computing_warns_and_returns(tmp_cache, monkeypatch):
    def full_disk(path, result):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "store", full_disk)
    with pytest.warns(UserWarning, match="not cached.*No space"):
        assert cache.memoize("sq", {"x": 4.0}, square)["y"] == 16.0


def test_cached_results_are_read_from_a_read_only_folder(tmp_cache):
    cache.memoize("sq", {"x": 5.0}, square)
    tmp_cache.chmod(0o500)
    try:
        square.calls = 0
        assert cache.memoize("sq", {"x": 5.0}, square)["y"] == 25.0 and square.calls == 0
    finally:
        tmp_cache.chmod(0o700)


@pytest.mark.parametrize("name", ["", "a/b", "../x"])
def test_bad_names_rejected(name):
    with pytest.raises(ValueError, match="cache name"):
        cache.path_for(name, {}, None)


def test_unkeyable_config_rejected():
    with pytest.raises(TypeError, match="^config: cannot build a cache key from object"):
        cache.key({"x": object()})
    with pytest.raises(TypeError, match="^fn must be a Python function"):
        cache.key({}, len)


SIZE = 3


def uses_global(cfg):
    return cfg * SIZE


def test_key_follows_the_globals_a_function_reads(monkeypatch):
    before = cache.key({"a": 1}, uses_global)
    monkeypatch.setattr(__import__(__name__), "SIZE", 4)
    assert cache.key({"a": 1}, uses_global) != before


def test_key_follows_closures_and_tensors():
    import torch

    def make(scale, data):
        return lambda cfg: cfg * scale + data.sum()

    k1 = cache.key({}, make(2.0, torch.ones(3)))
    assert cache.key({}, make(2.0, torch.ones(3))) == k1
    assert cache.key({}, make(3.0, torch.ones(3))) != k1
    assert cache.key({}, make(2.0, torch.zeros(3))) != k1


def test_key_of_a_function_that_closes_over_a_network():
    import torch

    net = torch.nn.Linear(2, 1)
    fn = lambda cfg: net(cfg)  # noqa: E731
    k1 = cache.key({}, fn)
    with torch.no_grad():
        net.weight.add_(1.0)
    assert cache.key({}, fn) != k1  # the network's state is part of the key
    with pytest.raises(TypeError, match="^config: cannot build a cache key"):
        cache.key({"f": len})  # a builtin has no source to hash
