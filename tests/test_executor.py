"""The sweep engine on standard executors: a process pool, Dask, submitit.

Every run here is compared with the same sweep in this process. Runs are float64 and short;
where the compared runs may take other code paths (another process, other thread counts
and so other summation orders), they are compared to round-off: each step sums at most
N = 32 terms per entry (≤ N·ε relative, ×10 for cancellation in gradient sums), and over
STEPS steps of small effective step sizes those gaps add up, as in tests/test_sweep.py.
Cache entries must match exactly: their names are keys computed in this process alone.
"""

import functools
import time

import numpy as np
import pytest

from lib import cache, checks, executors, sweep
from lib.train import TrainConfig
from lib.wn import experiments, networks

STEPS, N = 12, 32
TOL = 10 * (STEPS + 1) * N * np.finfo(np.float64).eps
MAKE = functools.partial(networks.make_module, n_in=4, width=N, normalized=True)
CONFIG = TrainConfig(steps=STEPS, loss="sse")
GRID = sweep.Grid(alpha=[0.5, 2.0], eta=[0.05, 0.2], seed=[0, 1, 2])


@pytest.fixture(autouse=True)
def fixed_lib_hash(monkeypatch):
    """Keys hash lib/'s source; other work on lib/ during a test must not change them."""
    monkeypatch.setattr(cache, "lib_source_hash", lambda: "lib")


@pytest.fixture(scope="module")
def data():
    return experiments.unit_sphere_data(16, 4, seed=0)


@pytest.fixture(scope="module")
def pool():
    """Two spawned worker processes, one thread each (``local:2``), shared by the tests."""
    with executors.from_url("local:2") as ex:
        yield ex


@pytest.fixture(scope="module")
def reference(data):
    """The sweep run in this process: chunks of 4 models (3 chunks for 12 points)."""
    return sweep.train_grid(MAKE, data, CONFIG, GRID, chunk=4, bar=False)


def cache_in(monkeypatch, path):
    monkeypatch.setenv("NORMBOOK_CACHE", str(path))
    return path


def entries(path):
    return sorted(p.name for p in path.glob("*.pkl"))


def same_numbers(a: sweep.SweepResult, b: sweep.SweepResult):
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)
    assert a.metrics.keys() == b.metrics.keys()
    for name in a.metrics:
        np.testing.assert_allclose(a.metrics[name], b.metrics[name], rtol=TOL, atol=TOL,
                                   err_msg=name)


class Refusing:
    """An executor that fails the test if anything is submitted (every chunk is cached)."""

    def submit(self, fn, *args):
        raise AssertionError(f"chunk submitted: {fn.__name__}")


def check_executor_run(executor, data, reference, tmp_path, monkeypatch, chunk=4):
    """Same numbers and the same cache entries as in this process; then a cache hit."""
    here = cache_in(monkeypatch, tmp_path / "here")
    sweep.train_grid(MAKE, data, CONFIG, GRID, chunk=chunk, bar=False, cache="ex")
    there = cache_in(monkeypatch, tmp_path / "there")
    res = sweep.train_grid(MAKE, data, CONFIG, GRID, chunk=chunk, bar=False, cache="ex",
                           executor=executor)
    same_numbers(res, reference)
    assert len(entries(there)) == -(-GRID.size // chunk) and entries(there) == entries(here)
    again = sweep.train_grid(MAKE, data, CONFIG, GRID, chunk=chunk, bar=False, cache="ex",
                             executor=Refusing())
    same_numbers(again, res)


def test_process_pool_gives_the_in_process_numbers_and_cache(pool, data, reference,
                                                             tmp_path, monkeypatch):
    check_executor_run(pool, data, reference, tmp_path, monkeypatch)


def test_dask_local_cluster_gives_the_in_process_numbers_and_cache(data, reference,
                                                                   tmp_path, monkeypatch):
    """A scheduler and one worker process on loopback, reached as dask://127.0.0.1:PORT."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        url = cluster.scheduler_address.replace("tcp://", "dask://")
        with executors.from_url(url) as client:
            check_executor_run(client, data, reference, tmp_path, monkeypatch)


def test_submitit_local_executor_gives_the_in_process_numbers_and_cache(data, reference,
                                                                        tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    ex = submitit.AutoExecutor(folder=tmp_path / "logs", cluster="local")
    ex.update_parameters(timeout_min=5)
    check_executor_run(ex, data, reference, tmp_path, monkeypatch, chunk=6)  # 2 processes


def test_sweeps_inside_using_go_to_its_executor_and_count_chunks(pool, data, reference,
                                                                tmp_path, monkeypatch):
    class Counting:
        def __init__(self):
            self.calls = []

        def submit(self, fn, *args):
            self.calls.append(len(args[2]))   # models in the chunk
            return pool.submit(fn, *args)

    class Bar:
        total, n = None, 0

        def update(self, k):
            self.n += k

        def refresh(self):
            pass

    ex, bar = Counting(), Bar()
    cache_in(monkeypatch, tmp_path)
    with executors.using(ex, bar=bar):
        res = sweep.train_grid(MAKE, data, CONFIG, GRID, chunk=5, bar=False, cache="u")
        sweep.train_grid(MAKE, data, CONFIG, GRID, chunk=5, bar=False, cache="u")  # cached
    same_numbers(res, reference)
    assert ex.calls == [5, 5, 2]
    assert (bar.total, bar.n) == (6, 6)
    assert executors.active() == (None, None)


def slow_identity(x):
    """``x``, later for smaller ``x``: chunks finish in the reverse of their order."""
    time.sleep(0.3 / (1 + x))
    return x


def test_chunks_come_back_in_grid_order(pool):
    values = list(range(6))
    out = sweep.map_grid(slow_identity, sweep.Grid(x=values), chunk=1, bar=False,
                         executor=pool)
    assert out.tolist() == values


def test_a_failing_task_names_its_chunk(pool, tmp_path, monkeypatch):
    cache_in(monkeypatch, tmp_path)
    fn = functools.partial(checks.positive, "value")
    grid = sweep.Grid(value=[1.0, 2.0, -1.0, 3.0])
    with pytest.raises(executors.ChunkFailed, match=r"chunk 3 of 4 of sweep fails "
                       r"\(1 points from \{'value': -1.0\}\) failed: ValueError: value") as err:
        sweep.map_grid(fn, grid, chunk=1, bar=False, cache="fails", executor=pool)
    assert isinstance(err.value.__cause__, ValueError)
    assert len(entries(tmp_path)) == 2   # the chunks before it were kept


def test_an_unpicklable_function_is_named(pool):
    with pytest.raises(executors.ChunkFailed, match="picklable"):
        sweep.map_grid(lambda x: x, sweep.Grid(x=[1, 2]), bar=False, executor=pool)


@pytest.mark.parametrize("bad", [object(), "local:2", None.__class__, 3])
def test_an_executor_without_submit_is_refused_by_name(bad, data):
    with pytest.raises(TypeError, match="^executor must have a submit"):
        sweep.train_grid(MAKE, data, CONFIG, GRID, executor=bad)
    with pytest.raises(TypeError, match="^executor must have a submit"):
        sweep.map_grid(slow_identity, sweep.Grid(x=[1]), executor=bad)
    with pytest.raises(TypeError, match="^executor must have a submit"):
        with executors.using(bad):
            pass


@pytest.mark.parametrize("url", ["local:0", "local:x", "locale", "dask://", "dask://h",
                                 "dask://host:0", "dask://host:70000", "dask://a b:1",
                                 "slurm:3", "tcp://host:1", " "])
def test_malformed_executor_urls_are_refused_by_name(url):
    with pytest.raises(ValueError, match="^(executor url|url)"):
        executors.from_url(url)


def test_slurm_options_are_checked(monkeypatch):
    monkeypatch.setenv("NORMBOOK_SLURM_TIME", "ten")
    with pytest.raises(ValueError, match="NORMBOOK_SLURM_TIME"):
        executors.from_url("slurm")
    with pytest.raises(ValueError, match="slurm options"):
        executors.from_url("slurm", {"queue": "x"})


def test_no_executor_url_means_this_process():
    assert executors.from_url(None) is None and executors.from_url("") is None

