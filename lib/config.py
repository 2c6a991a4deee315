"""What one training run is asked to do: :class:`TrainConfig` and its per-group values.

A field such as the learning rate η holds one value for every parameter group, or a
mapping group -> value (``w``: scale-invariant weights, ``g``: the rest; see
:mod:`lib.models`). η and λ are one number, or one per step (a schedule, e.g. from
:mod:`lib.explr.schedules`). The training loop (:mod:`lib.train`) reads a config through
:func:`check_config`, :func:`per_group` and :func:`per_step`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lib import checks

LOSSES = ("cross_entropy", "mse", "sse")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (vary with ``dataclasses.replace``)."""

    steps: int = 100                      # optimiser steps
    batch_size: int | None = None         # None: full-batch GD; else SGD, reshuffled each epoch
    eta: float | Sequence | Mapping = 0.1  # η > 0, or the rates η_t of steps t = 0, 1, ...
                                          # (at least `steps`); or per group {"w": η_w, "g": η_g}
    momentum: float = 0.0                 # γ in [0, 1)
    weight_decay: float | Sequence | Mapping = 0.0  # λ ≥ 0, or λ_t of every step (at
                                          # least `steps`); or per group
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
        put("eta", _each_group("eta", self.eta, lambda n, v: _per_step(n, v, self.steps)))
        put("weight_decay", _each_group("weight_decay", self.weight_decay,
                                        lambda n, v: _per_step(n, v, self.steps, nonneg=True)))
        put("momentum", checks.fraction("momentum", self.momentum))
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


def _per_step(name: str, value, steps: int, nonneg: bool = False):
    """One number (a Python float) or at least ``steps`` numbers (an array), each finite
    and > 0 (>= 0 with ``nonneg``)."""
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return (checks.nonnegative if nonneg else checks.positive)(name, value)
    values = checks.array(name, value, ndim=1) if nonneg else \
        checks.positive_array(name, value, ndim=1)
    if nonneg and np.any(values < 0):
        raise ValueError(f"{name} must hold numbers >= 0, got min {values.min():g}")
    if len(values) < steps:
        raise ValueError(f"{name} has {len(values)} {'values' if nonneg else 'rates'}, need "
                         f"one per step ({steps})")
    return values


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
    for field_ in ("eta", "weight_decay"):
        per_group(getattr(config, field_), names, f"{name}.{field_}")
    if config.batch_size is not None and config.batch_size > n:
        raise ValueError(f"{name}.batch_size must be None (full batch) or at most the {n} "
                         f"examples, got {config.batch_size}")
    return config


def per_step(value, steps: int, name: str = "eta", nonneg: bool = False) -> np.ndarray:
    """(steps,) values for t = 0..steps−1 (η_t, or λ_t with ``nonneg``) from one number or
    a per-step sequence.

    One number is used at every step; a sequence needs at least ``steps`` numbers (the
    first ``steps`` are used). Each is finite and > 0 (>= 0 with ``nonneg``).
    """
    steps, nonneg = checks.integer("steps", steps), checks.boolean("nonneg", nonneg)
    checked = _per_step(checks.string("name", name), value, steps, nonneg)
    return np.full(steps, checked) if np.ndim(checked) == 0 else checked[:steps]
