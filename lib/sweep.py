"""The book's one sweep engine: many configurations, results as arrays over a grid.

    grid = sweep.Grid(eta=np.logspace(-3, 1, 9), seed=[0, 1, 2])
    res = sweep.train_grid(make_model, data, TrainConfig(steps=200), grid, cache="ch4-eta")
    res.metrics["loss"]            # (9, 3, T): loss of every run at every recorded step
    res.sel(seed=0)["loss"]        # (9, T)

Training sweeps run the models of a chunk together (vmap over stacked parameters, see
:func:`lib.train.fit`) or one after another, whichever is faster for the model and
device (:func:`choose_mode`; force with ``mode=``). Non-training computations (closed
forms, least-squares dynamics, slider grids) go through :func:`map_grid`. With
``cache=`` every finished chunk is stored in ``data/cache`` (:mod:`lib.cache`), so an
interrupted sweep resumes where it stopped and a rebuild with unchanged code recomputes
nothing. With ``executor=`` (or inside :func:`lib.executors.using`) each chunk is one
task on a standard executor (a process pool, Dask, submitit/SLURM), its result cached
here under the same key.
The grid itself (named axes, points in C order) is :class:`lib.grid.Grid`.
"""

import dataclasses
import hashlib
import inspect

import numpy as np
import torch

from lib import checks, device, executors, models, progress, stack, train
from lib.grid import Grid  # re-exported: callers use sweep.Grid

# Axes that set training hyperparameters, with the check of each value
AXIS_CHECKS = {"eta": checks.positive, "eta_w": checks.positive, "eta_g": checks.positive,
               "weight_decay": checks.nonnegative, "weight_decay_w": checks.nonnegative,
               "weight_decay_g": checks.nonnegative, "momentum": checks.fraction,
               "seed": checks.seed}
TRAIN_AXES = tuple(AXIS_CHECKS)
MODES = ("auto", "batched", "loop")


@dataclasses.dataclass
class SweepResult:
    """Histories of a training sweep as arrays with the grid's axes first."""

    grid: Grid
    step: np.ndarray         # (T,) recorded steps
    metrics: dict            # name -> (*grid.shape, T[, n]) arrays; NaN after divergence
    diverged_at: np.ndarray  # (*grid.shape,) first non-finite step, -1 if none

    def __post_init__(self):
        shape = checks.instance("grid", self.grid, Grid).shape
        checks.array("step", self.step, ndim=1, nonempty=False)
        if not isinstance(self.metrics, dict):
            raise TypeError(f"metrics must be a dict of arrays, got {type(self.metrics).__name__}")
        for name, value in self.metrics.items():
            if np.shape(value)[:len(shape)] != shape:
                raise ValueError(f"metrics[{name!r}] must start with the grid's shape {shape}, "
                                 f"got {np.shape(value)}")
        if np.shape(self.diverged_at) != shape:
            raise ValueError(f"diverged_at must have the grid's shape {shape}, got "
                             f"{np.shape(self.diverged_at)}")

    def sel(self, **coords) -> dict:
        """Metrics (and ``diverged_at``) at the given axis values, other axes kept."""
        idx = self.grid.index(**coords)
        out = {k: v[idx] for k, v in self.metrics.items()}
        out["diverged_at"] = self.diverged_at[idx]
        return out


def _point(name: str, point) -> dict:
    """A grid point: a dict of axis values, its training values checked."""
    if not isinstance(point, dict):
        raise TypeError(f"{name} must be a dict axis -> value, got {type(point).__name__}")
    for axis in set(point) & set(AXIS_CHECKS):
        AXIS_CHECKS[axis](f"{name}[{axis!r}]", point[axis])
    return point


def _arguments(fn):
    """Names ``fn`` accepts as keywords; None when it takes **kwargs (or cannot be read)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _check_axes(grid: Grid, fn, fn_name: str, train_axes: bool) -> None:
    """Every axis of ``grid`` is a checked training axis or an argument ``fn`` takes."""
    accepted = _arguments(fn)
    for axis, values in grid.axes.items():
        if train_axes and axis in AXIS_CHECKS:
            for v in values.tolist():
                AXIS_CHECKS[axis](f"grid axis {axis!r}", v)
        elif accepted is not None and axis not in accepted:
            extra = f"a training axis {TRAIN_AXES} nor " if train_axes else ""
            raise ValueError(f"grid axis {axis!r} is neither {extra}an argument of {fn_name} "
                             f"({', '.join(sorted(accepted))})")
    if train_axes and accepted is not None and "seed" not in accepted:
        raise ValueError(f"{fn_name} must take a seed argument (every grid point passes one)")


def choose_mode(model: torch.nn.Module, device) -> str:
    """``loop`` for convolutional models on the CPU, else ``batched``.

    Under vmap a convolution over K models becomes one grouped convolution, which on
    the CPU was measured several times slower than K ordinary ones (bench/bench_sweep.py);
    dense layers batch into larger matrix products, which pays everywhere.
    ``device``: an available device.
    """
    models.module("model", model), checks.device("device", device)
    convs = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
    return "loop" if convs and torch.device(device).type == "cpu" else "batched"


def config_for(point: dict, base: train.TrainConfig) -> train.TrainConfig:
    """``base`` with the training axes of ``point`` applied (``eta_w`` sets group w's η...)."""
    point = _point("point", point)
    if not isinstance(base, train.TrainConfig):
        raise TypeError(f"base must be a lib.train.TrainConfig, got {type(base).__name__}")
    changes = {}
    for field in ("eta", "weight_decay"):
        value = getattr(base, field)
        per = {g: point[f"{field}_{g}"] for g in ("w", "g") if f"{field}_{g}" in point}
        if field in point:
            value = point[field]
        if per:
            value = {**train.per_group(value, ("g", "w"), field), **per}
        changes[field] = value
    for field in ("momentum", "seed"):
        if field in point:
            changes[field] = point[field]
    return dataclasses.replace(base, **changes)


def model_kwargs(point: dict) -> dict:
    """The axes of ``point`` that are not training hyperparameters go to ``make_model``."""
    kw = {k: v for k, v in _point("point", point).items() if k not in TRAIN_AXES}
    kw["seed"] = checks.seed("point['seed']", point.get("seed", 0))
    return kw


def data_fingerprint(data) -> str:
    """Short hash of a data set's tensors (part of every cache key); data as
    :func:`lib.train.unpack` accepts them."""
    X, y = train.unpack(data)
    digest = hashlib.sha256()
    for t in (X, y):
        digest.update(str((t.shape, t.dtype)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _run_chunk(make_model, data, configs, kwargs, batched, observe=None, init_momentum=None,
               on=None):
    """Histories of one chunk; ``on``: the device to train on, None for this process's
    :func:`lib.device.pick_device` (a worker's own GPU)."""
    data = tuple(t.to(device.pick_device() if on is None else on) for t in data)
    nets = [_built(make_model, kw) for kw in kwargs]
    fit = lambda models, cs: train.fit(stack.from_models(models, device=data[0].device),  # noqa: E731
                                       data, cs, bar=False, observe=observe,
                                       init_momentum=init_momentum)
    if batched:
        return fit(nets, configs)
    return [fit([m], [c])[0] for m, c in zip(nets, configs)]


def _built(make_model, kwargs: dict) -> torch.nn.Module:
    """``make_model(**kwargs)``, which must be a module."""
    call = f"make_model({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return models.module(call, make_model(**kwargs))


def _chunks(n: int, size: int):
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def train_grid(make_model, data, config: train.TrainConfig, grid: Grid, mode: str = "auto",
               chunk: int = 64, cache: str | None = None, bar: bool = True,
               observe=None, init_momentum=None, executor=None) -> SweepResult:
    """Train one model per grid point and collect the histories as arrays.

    Args:
        make_model: ``make_model(seed=..., **other_axes) -> nn.Module``; models of one
            sweep must share their architecture.
        data: a ``lib.data.Dataset`` or ``(X, y)`` on the device to train on.
        config: the base :class:`lib.train.TrainConfig`; axes named like its fields
            (``eta``, ``eta_w``, ``eta_g``, ``weight_decay[_w|_g]``, ``momentum``, ``seed``)
            override it per point.
        mode: "auto" (see :func:`choose_mode`), "batched" or "loop".
        chunk: models trained together in batched mode (and per cache entry).
        cache: a name to store finished chunks under in ``data/cache`` (resumable).
        observe: passed to :func:`lib.train.fit` (stacked parameters of one chunk,
            K models); its quantities become metrics named as it names them.
        init_momentum: passed to :func:`lib.train.fit`: the momentum buffers v_0 of one
            chunk's stacked parameters (e.g. Theorem 2.9's ṽ_0 of Li & Arora 2020).
        executor: None (in this process, or the executor of an enclosing
            :func:`lib.executors.using`) or anything with ``submit(fn, *args)``: one task
            per chunk, data shipped with each task (on the CPU; the worker trains on its
            own :func:`lib.device.pick_device`). ``make_model``, ``observe`` and
            ``init_momentum`` must then be picklable (module-level or partials of such).
    """
    make_model, data = checks.function("make_model", make_model), train.unpack(data)
    _check_sweep(grid, mode, chunk, cache, bar)
    if not isinstance(config, train.TrainConfig):
        raise TypeError(f"config must be a lib.train.TrainConfig, got {type(config).__name__}")
    for name, fn in (("observe", observe), ("init_momentum", init_momentum)):
        if fn is not None:
            checks.function(name, fn)
    _check_axes(grid, make_model, "make_model", train_axes=True)
    executor = executor if executor is None else executors.check("executor", executor)
    points = grid.points()
    configs = [config_for(p, config) for p in points]
    kwargs = [model_kwargs(p) for p in points]
    X = data[0]
    if mode == "auto":
        mode = choose_mode(_built(make_model, kwargs[0]), X.device)
    batched = mode == "batched"
    remote = executor is not None or executors.active()[0] is not None
    shipped, on = (tuple(t.cpu() for t in data), None) if remote else (data, X.device)
    parts = _chunks(len(points), chunk if batched else 1)
    args = [(make_model, shipped, [configs[i] for i in part], [kwargs[i] for i in part],
             batched, observe, init_momentum, on) for part in parts]
    same = {"config": config, "data": data_fingerprint(data) if cache else None,
            "make_model": make_model, "observe": observe, "init_momentum": init_momentum}
    keys = [{"points": [points[i] for i in part], **same} for part in parts]
    with progress.bar(len(points), f"sweep ({mode})", disable=not bar) as pbar:
        chunks = executors.run_chunks(_run_chunk, args, keys, cache, executor,
                                      done=lambda j: pbar.update(len(parts[j])))
    histories = [h for part in chunks for h in part]
    return collect(grid, histories)


def collect(grid: Grid, histories: list) -> SweepResult:
    """Stack per-run histories (in grid order) into arrays padded with NaN after divergence.

    ``histories``: one :class:`lib.train.History` per grid point.
    """
    checks.instance("grid", grid, Grid)
    if not isinstance(histories, (list, tuple)) or \
            not all(isinstance(h, train.History) for h in histories):
        raise TypeError("histories must be a list of lib.train.History")
    if len(histories) != grid.size:
        raise ValueError(f"histories must hold one History per grid point ({grid.size}), "
                         f"got {len(histories)}")
    longest = max(histories, key=lambda h: len(h.step))
    T = len(longest.step)

    def pad(a):
        a = np.asarray(a, dtype=float)
        out = np.full((T,) + a.shape[1:], np.nan)
        out[:len(a)] = a
        return out

    rows = {"loss": [pad(h.loss) for h in histories],
            "accuracy": [pad(h.accuracy) for h in histories]}
    for name in ("eta", "grad_norm_sq", "weight_norm_sq"):
        for g in getattr(histories[0], name):
            rows[f"{name}_{g}"] = [pad(getattr(h, name)[g]) for h in histories]
    for name in histories[0].extra:  # quantities recorded by an observe function
        if name in rows:
            raise ValueError(f"observed quantity {name!r} clashes with a built-in metric")
        rows[name] = [pad(h.extra[name]) for h in histories]
    metrics = {k: np.stack(v).reshape(grid.shape + v[0].shape) for k, v in rows.items()}
    diverged = np.array([-1 if h.diverged_at is None else h.diverged_at for h in histories])
    return SweepResult(grid, longest.step, metrics, diverged.reshape(grid.shape))


def map_grid(fn, grid: Grid, cache: str | None = None, chunk: int = 16,
             bar: bool = True, executor=None) -> np.ndarray:
    """``fn(**point)`` at every grid point; returns an object array of shape ``grid.shape``.

    For computations that are not training runs (closed forms, least-squares dynamics,
    figures behind sliders). With ``cache=`` finished chunks are stored and reused.
    Every axis of ``grid`` must be an argument of ``fn``. ``executor``: as for
    :func:`train_grid` (``fn`` must then be picklable).
    """
    fn = checks.function("fn", fn)
    _check_sweep(grid, "auto", chunk, cache, bar)
    _check_axes(grid, fn, "fn", train_axes=False)
    executor = executor if executor is None else executors.check("executor", executor)
    points = grid.points()
    parts = _chunks(len(points), chunk)
    args = [(fn, [points[i] for i in part]) for part in parts]
    keys = [{"points": [points[i] for i in part], "fn": fn} for part in parts]
    with progress.bar(len(points), "grid", disable=not bar) as pbar:
        chunks = executors.run_chunks(_map_chunk, args, keys, cache, executor,
                                      done=lambda j: pbar.update(len(parts[j])))
    results = [r for part in chunks for r in part]
    out = np.empty(len(results), dtype=object)
    out[:] = results
    return out.reshape(grid.shape)


def _map_chunk(fn, points: list) -> list:
    """``fn(**point)`` for the points of one chunk."""
    return [fn(**p) for p in points]


def _check_sweep(grid, mode, chunk, cache, bar) -> None:
    """The arguments :func:`train_grid` and :func:`map_grid` share."""
    checks.instance("grid", grid, Grid), checks.choice("mode", mode, MODES)
    checks.integer("chunk", chunk), checks.boolean("bar", bar)
    if cache is not None and not checks.string("cache", cache):
        raise ValueError("cache must be None or a non-empty name, got ''")
