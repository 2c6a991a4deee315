"""Where a sweep's chunks run: in this process, or on a standard executor.

An executor is anything with ``submit(fn, *args)`` returning a future with ``result()``:
a ``concurrent.futures.ProcessPoolExecutor``, a Dask ``distributed.Client``, a submitit
executor (SLURM). The sweep engine (:mod:`lib.sweep`) sends one grid chunk per task and
stores each result in this process's cache under the key an in-process run would use, so
a later build reads it. Scheduling, queues and transport are the executor's own::

    with executors.using(ProcessPoolExecutor(2)):
        res = experiments.rate_sweep(...)   # its sweeps' chunks run in the pool

:func:`from_url` turns ``local[:N]``, ``dask://HOST:PORT`` or ``slurm`` into an executor
(Dask and submitit are imported only then, so ``lib`` works without them).
"""

import contextlib
import contextvars
import multiprocessing
import os
import re

from lib import cache, checks

SLURM_ENV = {"partition": "NORMBOOK_SLURM_PARTITION", "time": "NORMBOOK_SLURM_TIME",
             "gpus": "NORMBOOK_SLURM_GPUS", "cpus": "NORMBOOK_SLURM_CPUS",
             "folder": "NORMBOOK_SLURM_FOLDER"}
_ACTIVE = contextvars.ContextVar("lib_executor", default=(None, None))


class ChunkFailed(RuntimeError):
    """A chunk of a sweep failed on an executor; the task's own error is its ``__cause__``."""


def check(name: str, executor):
    """``executor`` if it has a callable ``submit``; a TypeError naming ``name`` otherwise."""
    checks.string("name", name)
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(f"{name} must have a submit(fn, *args) method returning a future (a "
                        f"concurrent.futures executor, a dask distributed.Client, a submitit "
                        f"executor), got {type(executor).__name__}")
    return executor


def using(executor, bar=None):
    """A context in which sweeps that are not given ``executor=`` send their chunks to
    ``executor`` (None: in this process). ``bar``: a :func:`lib.progress.bar` that counts
    chunks (its total grows as each sweep starts), or None."""
    if executor is not None:
        check("executor", executor)
    if bar is not None and not all(callable(getattr(bar, f, None)) for f in ("update", "refresh")):
        raise TypeError(f"bar must be a progress bar (lib.progress.bar), got {type(bar).__name__}")
    return _using(executor, bar)


@contextlib.contextmanager
def _using(executor, bar):
    token = _ACTIVE.set((executor, bar))
    try:
        yield executor
    finally:
        _ACTIVE.reset(token)


def active():
    """(executor, chunk bar) set by the innermost :func:`using` block, else (None, None)."""
    return _ACTIVE.get()


def run_chunks(task, args: list, keys: list, cache_name, executor=None, done=None) -> list:
    """``task(*args[j])`` for every chunk j, in order: read from the cache where stored,
    else computed here (``executor`` None) or one task per chunk on ``executor``.

    ``keys[j]``: chunk j's cache key (with ``task``'s code); ``cache_name``: None (no
    cache) or a name; ``done(j)``: called as chunk j is ready. A failing task raises
    :class:`ChunkFailed` naming the chunk and its first grid point; later tasks are cancelled.
    """
    _check_chunks(task, args, keys, cache_name, done)
    executor = active()[0] if executor is None else check("executor", executor)
    bar = active()[1]
    if bar is not None:
        bar.total = (bar.total or 0) + len(args)
        bar.refresh()

    def ready(j, result):
        if cache_name and computed[j]:
            cache.save(paths[j], result, cache_name)
        results[j] = result
        done and done(j)
        bar is not None and bar.update(1)

    paths = [cache.path_for(cache_name, k, task) if cache_name else None for k in keys]
    stored = [cache.load(p) if p else None for p in paths]
    computed, results = [s is None for s in stored], [None] * len(args)
    for j in (j for j, s in enumerate(stored) if s is not None):
        ready(j, stored[j])
    todo = [j for j, c in enumerate(computed) if c]
    if todo and cache_name:
        cache.writable_cache_dir()
    if executor is None:
        for j in todo:
            ready(j, task(*args[j]))
    else:
        _gather([(j, executor.submit(task, *args[j])) for j in todo], ready,
                lambda j, err: _failure(j, len(args), keys[j], cache_name, err))
    return results


def _check_chunks(task, args, keys, cache_name, done) -> None:
    checks.function("task", task)
    if not isinstance(args, list) or not isinstance(keys, list):
        raise TypeError(f"args and keys must be lists (one entry per chunk), got "
                        f"{type(args).__name__} and {type(keys).__name__}")
    if len(args) != len(keys):
        raise ValueError(f"args and keys must have one entry per chunk, got {len(args)} and "
                         f"{len(keys)}")
    if cache_name is not None and not checks.string("cache_name", cache_name):
        raise ValueError("cache_name must be None or a non-empty name, got ''")
    if done is not None:
        checks.function("done", done)


def _gather(futures: list, ready, failure) -> None:
    """``ready(j, result)`` for each (chunk j, future), in chunk order; on a failure the
    later futures are cancelled and :class:`ChunkFailed` says ``failure(j, err)``."""
    for n, (j, future) in enumerate(futures):
        try:
            result = future.result()
        except Exception as err:
            for _, later in futures[n + 1:]:
                getattr(later, "cancel", lambda: None)()
            raise ChunkFailed(failure(j, err)) from err
        ready(j, result)


def _failure(j: int, n: int, key, cache_name, err) -> str:
    points = key.get("points", []) if isinstance(key, dict) else []
    where = f" ({len(points)} points from {points[0]})" if points else ""
    hint = ("; the function shipped must be picklable: a module-level function, or a "
            "functools.partial of one" if "pickl" in str(err).lower() else "")
    return (f"chunk {j + 1} of {n} of sweep {cache_name or '(uncached)'}{where} failed: "
            f"{type(err).__name__}: {err}{hint}")


def from_url(url, slurm: dict | None = None):
    """The executor ``url`` names: None or "" (in this process, returns None), ``local`` or
    ``local:N`` (a spawn-started ProcessPoolExecutor of N workers, default the CPU count),
    ``dask://HOST:PORT`` (a ``distributed.Client`` of that scheduler) or ``slurm`` (a
    submitit ``AutoExecutor``; ``slurm`` options partition, time (minutes), gpus, cpus,
    folder, each else from ``$NORMBOOK_SLURM_<OPTION>``). A malformed ``url`` is a
    ValueError naming it.
    """
    if slurm is not None:
        if not isinstance(slurm, dict):
            raise TypeError(f"slurm must be a dict of options or None, got {type(slurm).__name__}")
        unknown = sorted(map(str, set(slurm) - set(SLURM_ENV)))
        if unknown:
            raise ValueError(f"slurm options must be among {sorted(SLURM_ENV)}, got {unknown}")
    if url is None or url == "":
        return None
    url = checks.string("url", url).strip()
    local = re.fullmatch(r"local(?::(\d+))?", url)
    dask = re.fullmatch(r"dask://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})", url)
    if local:
        workers = int(local[1] or os.cpu_count() or 1)
        workers = checks.integer("executor url (local:N workers)", workers)
        return _process_pool(workers)
    if dask and 0 < int(dask[2]) < 65536:
        from distributed import Client  # optional dependency: pip install "dask[distributed]"
        return Client(f"tcp://{dask[1]}:{dask[2]}")
    if url == "slurm":
        return _slurm(slurm or {})
    raise ValueError(f"executor url must be local, local:N (N >= 1 workers), dask://HOST:PORT "
                     f"(port 1-65535) or slurm; got {url!r}")


def _process_pool(workers: int):
    """Spawned workers (forking a process that holds torch's threads can hang), each with
    an equal share of the cores."""
    from concurrent.futures import ProcessPoolExecutor

    import torch
    threads = max(1, (os.cpu_count() or 1) // workers)
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=torch.set_num_threads, initargs=(threads,))


def _slurm(options: dict):
    opts = {k: options.get(k) or os.environ.get(env) for k, env in SLURM_ENV.items()}
    params = {}
    for field, flag in (("time", "timeout_min"), ("gpus", "gpus_per_node"),
                        ("cpus", "cpus_per_task")):
        if opts[field] is not None:
            text = str(opts[field])
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"slurm {field} ({SLURM_ENV[field]}) must be an integer >= 1, "
                                 f"got {text!r}")
            params[flag] = int(text)
    if opts["partition"]:
        params["slurm_partition"] = str(opts["partition"])
    import submitit  # optional dependency: pip install submitit
    executor = submitit.AutoExecutor(folder=opts["folder"] or "slurm-logs/%j")
    executor.update_parameters(**params)
    return executor
