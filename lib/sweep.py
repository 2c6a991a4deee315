"""The book's one sweep engine: many configurations, results as arrays over a grid.

    grid = sweep.Grid(lr=np.logspace(-3, 1, 9), seed=[0, 1, 2])
    res = sweep.train_grid(make_model, data, TrainConfig(steps=200), grid, cache="ch4-lr")
    res.metrics["loss"]            # (9, 3, T): loss of every run at every recorded step
    res.sel(seed=0)["loss"]        # (9, T)

Training sweeps run the models of a chunk together (vmap over stacked parameters, see
:func:`lib.train.fit`) or one after another, whichever is faster for the model and
device (:func:`choose_mode`; force with ``mode=``). Non-training computations (closed
forms, least-squares dynamics, slider grids) go through :func:`map_grid`. With
``cache=`` every finished chunk is stored in ``data/cache`` (:mod:`lib.cache`), so an
interrupted sweep resumes where it stopped and a rebuild with unchanged code recomputes
nothing.
"""

import dataclasses
import hashlib
import itertools

import numpy as np
import torch

from lib import cache as _cache
from lib import progress, stack, train

TRAIN_AXES = ("lr", "lr_w", "lr_g", "weight_decay", "weight_decay_w", "weight_decay_g",
              "momentum", "seed")
MODES = ("auto", "batched", "loop")


class Grid:
    """Named axes of hyperparameter values; points are enumerated in C (row-major) order."""

    def __init__(self, **axes):
        if not axes:
            raise ValueError("a grid needs at least one axis, e.g. Grid(lr=[0.1, 1.0])")
        self.axes = {}
        for name, values in axes.items():
            values = np.asarray(values)
            if values.ndim != 1 or values.size == 0:
                raise ValueError(f"axis {name!r} must be a non-empty 1-D list of values, "
                                 f"got shape {values.shape}")
            self.axes[name] = values

    @property
    def names(self) -> tuple:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple:
        return tuple(v.size for v in self.axes.values())

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def points(self) -> list:
        """Every grid point as a dict {axis: value} (Python scalars), in C order."""
        return [dict(zip(self.names, (v.item() for v in combo)))
                for combo in itertools.product(*self.axes.values())]

    def index(self, **coords) -> tuple:
        """Index tuple of the axis values given (exact match); ``slice(None)`` elsewhere."""
        idx = []
        for name, values in self.axes.items():
            if name not in coords:
                idx.append(slice(None))
                continue
            if values.dtype.kind in "fc":
                hits = np.flatnonzero(np.isclose(values, coords[name], rtol=1e-12, atol=0))
            else:
                hits = np.flatnonzero(values == coords[name])
            if hits.size != 1:
                raise ValueError(f"{name}={coords[name]!r} is not on the grid {values.tolist()}")
            idx.append(int(hits[0]))
        unknown = set(coords) - set(self.axes)
        if unknown:
            raise ValueError(f"unknown axes {sorted(unknown)}; the grid has {list(self.axes)}")
        return tuple(idx)

    def __repr__(self):
        return f"Grid({', '.join(f'{k}={len(v)} values' for k, v in self.axes.items())})"


@dataclasses.dataclass
class SweepResult:
    """Histories of a training sweep as arrays with the grid's axes first."""

    grid: Grid
    step: np.ndarray         # (T,) recorded steps
    metrics: dict            # name -> (*grid.shape, T[, n]) arrays; NaN after divergence
    diverged_at: np.ndarray  # (*grid.shape,) first non-finite step, -1 if none

    def sel(self, **coords) -> dict:
        """Metrics (and ``diverged_at``) at the given axis values, other axes kept."""
        idx = self.grid.index(**coords)
        out = {k: v[idx] for k, v in self.metrics.items()}
        out["diverged_at"] = self.diverged_at[idx]
        return out


def choose_mode(model: torch.nn.Module, device) -> str:
    """``loop`` for convolutional models on the CPU, else ``batched``.

    Under vmap a convolution over K models becomes one grouped convolution, which on
    the CPU was measured several times slower than K ordinary ones (bench/bench_sweep.py);
    dense layers batch into larger matrix products, which pays everywhere.
    """
    convs = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
    return "loop" if convs and torch.device(device).type == "cpu" else "batched"


def config_for(point: dict, base: train.TrainConfig) -> train.TrainConfig:
    """``base`` with the training axes of ``point`` applied (``lr_w`` sets group w's η...)."""
    changes = {}
    for field in ("lr", "weight_decay"):
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
    kw = {k: v for k, v in point.items() if k not in TRAIN_AXES}
    kw["seed"] = int(point.get("seed", 0))
    return kw


def data_fingerprint(data) -> str:
    """Short hash of a data set's tensors (part of every cache key)."""
    X, y = train._unpack(data)
    digest = hashlib.sha256()
    for t in (X, y):
        digest.update(str((t.shape, t.dtype)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _run_chunk(make_model, data, configs, kwargs, batched, observe=None):
    X, _ = train._unpack(data)
    models = [make_model(**kw) for kw in kwargs]
    if batched:
        return train.fit(stack.from_models(models, device=X.device), data, configs, bar=False,
                         observe=observe)
    return [train.fit(stack.from_models([m], device=X.device), data, [c], bar=False,
                      observe=observe)[0]
            for m, c in zip(models, configs)]


def _chunks(n: int, size: int):
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def train_grid(make_model, data, config: train.TrainConfig, grid: Grid, mode: str = "auto",
               chunk: int = 64, cache: str | None = None, bar: bool = True,
               observe=None) -> SweepResult:
    """Train one model per grid point and collect the histories as arrays.

    Args:
        make_model: ``make_model(seed=..., **other_axes) -> nn.Module``; models of one
            sweep must share their architecture.
        data: a ``lib.data.Dataset`` or ``(X, y)`` on the device to train on.
        config: the base :class:`lib.train.TrainConfig`; axes named like its fields
            (``lr``, ``lr_w``, ``lr_g``, ``weight_decay[_w|_g]``, ``momentum``, ``seed``)
            override it per point.
        mode: "auto" (see :func:`choose_mode`), "batched" or "loop".
        chunk: models trained together in batched mode (and per cache entry).
        cache: a name to store finished chunks under in ``data/cache`` (resumable).
        observe: passed to :func:`lib.train.fit` (stacked parameters of one chunk,
            K models); its quantities become metrics named as it names them.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    points = grid.points()
    configs = [config_for(p, config) for p in points]
    kwargs = [model_kwargs(p) for p in points]
    X, _ = train._unpack(data)
    if mode == "auto":
        mode = choose_mode(make_model(**kwargs[0]), X.device)
    batched = mode == "batched"
    fingerprint = data_fingerprint(data) if cache else None
    histories = []
    with progress.bar(len(points), f"sweep ({mode})", disable=not bar) as pbar:
        for part in _chunks(len(points), chunk if batched else 1):
            run = lambda _key: _run_chunk(make_model, data, [configs[i] for i in part],  # noqa: E731
                                          [kwargs[i] for i in part], batched, observe)
            if cache:
                key = {"points": [points[i] for i in part], "config": config,
                       "data": fingerprint, "make_model": make_model, "observe": observe}
                histories += _cache.memoize(cache, key, run)
            else:
                histories += run(None)
            pbar.update(len(part))
    return collect(grid, histories)


def collect(grid: Grid, histories: list) -> SweepResult:
    """Stack per-run histories (in grid order) into arrays padded with NaN after divergence."""
    longest = max(histories, key=lambda h: len(h.step))
    T = len(longest.step)

    def pad(a):
        a = np.asarray(a, dtype=float)
        out = np.full((T,) + a.shape[1:], np.nan)
        out[:len(a)] = a
        return out

    rows = {"loss": [pad(h.loss) for h in histories],
            "accuracy": [pad(h.accuracy) for h in histories]}
    for name in ("lr", "grad_norm_sq", "weight_norm_sq"):
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
             bar: bool = True) -> np.ndarray:
    """``fn(**point)`` at every grid point; returns an object array of shape ``grid.shape``.

    For computations that are not training runs (closed forms, least-squares dynamics,
    figures behind sliders). With ``cache=`` finished chunks are stored and reused.
    """
    points = grid.points()
    results = []
    with progress.bar(len(points), "grid", disable=not bar) as pbar:
        for part in _chunks(len(points), chunk):
            run = lambda _key: [fn(**points[i]) for i in part]  # noqa: E731
            if cache:
                results += _cache.memoize(cache, {"points": [points[i] for i in part], "fn": fn}, run)
            else:
                results += run(None)
            pbar.update(len(part))
    out = np.empty(len(results), dtype=object)
    out[:] = results
    return out.reshape(grid.shape)
