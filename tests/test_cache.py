import pickle

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
    base = cache.key({"lr": 0.1}, square)
    assert cache.key({"lr": 0.1}, square) == base
    assert cache.key({"lr": 0.1000000001}, square) != base  # floats keyed exactly
    assert cache.key({"lr": 0.1}, lambda c: c) != base


def test_key_changes_when_lib_changes(tmp_path, monkeypatch):
    fake_lib = tmp_path / "lib"
    fake_lib.mkdir()
    (fake_lib / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(cache, "LIB", fake_lib)
    before = cache.key({"a": 1})
    (fake_lib / "m.py").write_text("x = 2\n")
    assert cache.key({"a": 1}) != before


class Foreign:
    """A class that a stored pickle refers to; deleting it makes the pickle foreign."""


@pytest.mark.parametrize("content", [
    b"not a pickle", b"", pickle.dumps({"y": 1.0})[:-3],  # corrupt or truncated
    b"cno_such_module\nThing\n.",                         # refers to code that is gone
    b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x00\x86\x94\x00R.",  # REDUCE on a tuple
], ids=["garbage", "empty", "truncated", "foreign-module", "bad-opcode"])
def test_unreadable_entry_is_recomputed_with_a_warning(tmp_cache, content):
    square.calls = 0
    path = cache.path_for("sq", {"x": 3.0}, square)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.warns(UserWarning, match="unreadable.*recomputed"):
        assert cache.memoize("sq", {"x": 3.0}, square)["y"] == 9.0
    assert square.calls == 1
    assert cache.load(path)["y"] == 9.0  # the broken entry was overwritten


def test_entry_of_a_class_that_is_gone_is_recomputed(tmp_cache, monkeypatch):
    path = cache.path_for("sq", {"x": 2.0}, square)
    path.write_bytes(pickle.dumps(Foreign()))
    monkeypatch.delattr(__import__(__name__), "Foreign")
    square.calls = 0
    with pytest.warns(UserWarning, match="AttributeError"):
        assert cache.memoize("sq", {"x": 2.0}, square)["y"] == 4.0
    assert square.calls == 1


def test_cache_under_a_file_fails_before_computing(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("NORMBOOK_CACHE", str(blocker / "cache"))
    square.calls = 0
    with pytest.raises(ValueError, match="^NORMBOOK_CACHE .*a-file/cache.* not a folder"):
        cache.memoize("sq", {"x": 1.0}, square)
    assert square.calls == 0  # nothing was computed and lost


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
