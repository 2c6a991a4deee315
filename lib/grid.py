"""A grid of named axes of values, enumerated point by point in C (row-major) order.

The sweep engine (:mod:`lib.sweep`) trains or computes at every point of a
:class:`Grid` and returns arrays whose leading axes are the grid's::

    grid = Grid(eta=[0.01, 0.1, 1.0], seed=[0, 1])  # shape (3, 2), 6 points
    grid.points()[1]                                 # {"eta": 0.01, "seed": 1}
"""

import itertools

import numpy as np
import torch

from lib import checks


class Grid:
    """Named axes of hyperparameter values; points are enumerated in C (row-major) order.

    Each axis: a non-empty 1-D list of distinct values (numbers finite, no complex).
    """

    def __init__(self, **axes):
        if not axes:
            raise ValueError("a grid needs at least one axis, e.g. Grid(eta=[0.1, 1.0])")
        self.axes = {name: _axis(name, values) for name, values in axes.items()}

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
        unknown = set(coords) - set(self.axes)
        if unknown:
            raise ValueError(f"unknown axes {sorted(unknown)}; the grid has {list(self.axes)}")
        idx = []
        for name, values in self.axes.items():
            if name not in coords:
                idx.append(slice(None))
                continue
            if values.dtype.kind in "fc":
                checks.number(name, coords[name])
                hits = np.flatnonzero(np.isclose(values, coords[name], rtol=1e-12, atol=0))
            else:
                hits = np.flatnonzero(values == coords[name])
            if hits.size != 1:
                raise ValueError(f"{name}={coords[name]!r} is not on the grid {values.tolist()}")
            idx.append(int(hits[0]))
        return tuple(idx)

    def __repr__(self):
        return f"Grid({', '.join(f'{k}={len(v)} values' for k, v in self.axes.items())})"


def _axis(name: str, values) -> np.ndarray:
    """One axis of a grid: a non-empty 1-D array of distinct, finite values."""
    if values is None or isinstance(values, (str, bytes, dict)):
        raise TypeError(f"{name} must be a list of values, got {type(values).__name__}")
    try:
        arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    except ValueError as err:  # ragged lists
        raise ValueError(f"{name} must be a non-empty 1-D list of values: {err}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D list of values, got shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must hold real numbers, got {arr.dtype}")
    numbers = arr.astype(float) if arr.dtype.kind == "f" else \
        [v for v in arr.tolist() if isinstance(v, float)]
    if not np.all(np.isfinite(numbers)):
        raise ValueError(f"{name} must hold finite values, got {arr.tolist()}")
    if arr.dtype.kind in "biufUS" and np.unique(arr).size != arr.size:
        raise ValueError(f"{name} holds a value twice: {arr.tolist()}")
    return arr
