"""What one training run is asked to do: :class:`TrainConfig` and its per-group values.

A field such as the learning rate η holds one value for every parameter group, or a
mapping group -> value (``w``: scale-invariant weights, ``g``: the rest; see
:mod:`lib.models`). The training loop (:mod:`lib.train`) reads a config through
:func:`check_config`, :func:`per_group` and :func:`schedule_factors`.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lib import checks

LOSSES = ("cross_entropy", "mse", "sse")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (vary with ``dataclasses.replace``)."""

    steps: int = 100                      # optimiser steps
    batch_size: int | None = None         # None: full-batch GD; else SGD, reshuffled each epoch
    lr: float | Mapping = 0.1             # η, or per group {"w": η_w, "g": η_g}
    momentum: float = 0.0                 # γ in [0, 1)
    weight_decay: float | Mapping = 0.0   # λ ≥ 0, or per group
    schedule: Callable | Sequence | Mapping | None = None  # factor on η at step t (or per group)
    loss: str = "cross_entropy"           # "cross_entropy", "mse" (mean of ½‖f − y‖², one-hot
                                          # y for classes) or "sse" (the sum, not the mean)
    log_every: int = 1                    # steps between records in the history
    seed: int = 0                         # order of mini-batches

    def __post_init__(self):
        """Every field is checked (numbers made Python ints/floats) when made or replaced."""
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        put("steps", checks.integer("steps", self.steps))
        if self.batch_size is not None:
            put("batch_size", checks.integer("batch_size", self.batch_size))
        put("lr", _each_group("lr", self.lr, checks.positive))
        put("weight_decay", _each_group("weight_decay", self.weight_decay, checks.nonnegative))
        put("momentum", checks.fraction("momentum", self.momentum))
        _each_group("schedule", self.schedule, lambda n, s: _check_schedule(n, s, self.steps))
        checks.choice("loss", self.loss, LOSSES)
        put("log_every", checks.integer("log_every", self.log_every))
        put("seed", checks.seed("seed", self.seed))


def _each_group(name: str, value, check):
    """``check`` applied to one value, or to each value of a per-group mapping."""
    if not isinstance(value, Mapping):
        return check(name, value)
    if not value:
        raise ValueError(f"{name} per group must name the groups, e.g. {{'w': ..., 'g': ...}}; got {{}}")
    for group in value:
        checks.string(f"{name} group names", group)
    return {g: check(f"{name}[{g!r}]", v) for g, v in value.items()}


def _check_schedule(name: str, schedule, steps: int):
    """None, a callable (checked by :func:`schedule_factors` when training starts), or
    at least ``steps`` factors, each finite and > 0."""
    if schedule is not None and not callable(schedule):
        _factors(name, schedule, steps)
    return schedule


def _factors(name: str, schedule, steps: int) -> np.ndarray:
    factors = checks.positive_array(name, schedule, ndim=1)
    if len(factors) < steps:
        raise ValueError(f"{name} has {len(factors)} factors, need one per step ({steps})")
    return factors


def per_group(value, names, what):
    """``{group: value}``, accepting one value for all groups or a mapping per group.

    ``names``: the groups (strings); ``what``: the argument's name for messages.
    """
    what, names = checks.string("what", what), _group_list(names)
    if isinstance(value, Mapping):
        if set(value) != set(names):
            raise ValueError(f"{what} per group needs exactly the groups {sorted(names)}, "
                             f"got {sorted(map(str, value))}")
        return dict(value)
    return {name: value for name in names}


def _group_list(names) -> list:
    if isinstance(names, (str, bytes)) or not isinstance(names, (Sequence, set, frozenset, dict)):
        raise TypeError(f"names must be a list of group names, got {type(names).__name__}")
    return [checks.string("names", n) for n in names]


def check_config(config: TrainConfig, names, n_examples: int, name: str = "config") -> TrainConfig:
    """``config`` if it fits a model with groups ``names`` and data of ``n_examples`` rows.

    Its fields were checked when it was made; here: per-group values name exactly the
    model's groups, and a mini-batch is no larger than the data.
    """
    config, names = checks.instance(name, config, TrainConfig), _group_list(names)
    n = checks.integer("n_examples", n_examples)
    for field_ in ("lr", "weight_decay", "schedule"):
        per_group(getattr(config, field_), names, f"{name}.{field_}")
    if config.batch_size is not None and config.batch_size > n:
        raise ValueError(f"{name}.batch_size must be None (full batch) or at most the {n} "
                         f"examples, got {config.batch_size}")
    return config


def schedule_factors(schedule, steps: int, name: str = "schedule") -> np.ndarray:
    """(steps,) factors on η for t = 0..steps−1 from a callable, a sequence or None.

    Every factor must be finite and > 0 (a callable is asked about every step here,
    before training starts).
    """
    steps = checks.integer("steps", steps)
    if schedule is None:
        return np.ones(steps)
    if callable(schedule):
        return np.array([checks.positive(f"{name}({t})", schedule(t)) for t in range(steps)])
    return _factors(name, schedule, steps)[:steps]
