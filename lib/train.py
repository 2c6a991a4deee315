"""The book's one training loop: full-batch GD or mini-batch SGD, per-group rates.

The update follows PyTorch's SGD exactly (Li & Arora 2020 write it the same way):
    v_t = γ v_{t−1} + ∇L(θ_{t−1}) + λ θ_{t−1},    θ_t = θ_{t−1} − η_t v_t,
with η_t = η · schedule(t), and η, λ and the schedule chosen per parameter group
(``w``: scale-invariant weights, ``g``: the rest; see :mod:`lib.models`).
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lib import models, progress

LOSSES = ("cross_entropy", "mse")
PROGRESS_MIN_STEPS = 200  # shorter runs finish in a blink: no bar


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (vary with ``dataclasses.replace``)."""

    steps: int = 100                      # optimiser steps
    batch_size: int | None = None         # None: full-batch GD; else SGD, reshuffled each epoch
    lr: float | Mapping = 0.1             # η, or per group {"w": η_w, "g": η_g}
    momentum: float = 0.0                 # γ in [0, 1)
    weight_decay: float | Mapping = 0.0   # λ ≥ 0, or per group
    schedule: Callable | Sequence | Mapping | None = None  # factor on η at step t (or per group)
    loss: str = "cross_entropy"           # "cross_entropy" or "mse" (½‖f − y‖², one-hot y)
    log_every: int = 1                    # steps between records in the history
    seed: int = 0                         # order of mini-batches


@dataclass
class History:
    """What happened during a run; every array is indexed like ``step``."""

    step: np.ndarray                 # (T,) step index t of each record
    loss: np.ndarray                 # (T,) training loss at θ_t (of the batch, for SGD)
    accuracy: np.ndarray             # (T,) training accuracy (NaN for regression)
    lr: dict                         # group -> (T,) learning rate η_t
    grad_norm_sq: dict               # group -> (T,) ‖∇_group L‖² (without weight decay)
    weight_norm_sq: dict             # group -> (T, n_tensors) ‖θ‖² of each tensor
    diverged_at: int | None = None   # first step with a non-finite loss, if any
    extra: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def effective_lr(self, group: str = "w") -> np.ndarray:
        """η_t/‖w_t‖² per tensor, (T, n_tensors): the step size of the direction w/‖w‖."""
        return self.lr[group][:, None] / self.weight_norm_sq[group]


def _per_group(value, names, what):
    if isinstance(value, Mapping):
        unknown = set(value) - set(names)
        if unknown or set(names) - set(value):
            raise ValueError(f"{what} per group needs exactly the groups {sorted(names)}, "
                             f"got {sorted(value)}")
        return dict(value)
    return {name: value for name in names}


def _check(config: TrainConfig, names, n_examples: int):
    if not isinstance(config.steps, int) or config.steps < 1:
        raise ValueError(f"steps must be a positive integer, got {config.steps!r}")
    if config.batch_size is not None and not 1 <= config.batch_size <= n_examples:
        raise ValueError(f"batch_size must be None (full batch) or in [1, {n_examples}], "
                         f"got {config.batch_size!r}")
    for name, lr in _per_group(config.lr, names, "lr").items():
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate of group {name!r} must be a finite number > 0, got {lr!r}")
    for name, wd in _per_group(config.weight_decay, names, "weight_decay").items():
        if not (isinstance(wd, (int, float)) and math.isfinite(wd) and wd >= 0):
            raise ValueError(f"weight decay of group {name!r} must be >= 0, got {wd!r}")
    if not 0 <= config.momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {config.momentum!r}")
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {config.loss!r}")
    if not isinstance(config.log_every, int) or config.log_every < 1:
        raise ValueError(f"log_every must be a positive integer, got {config.log_every!r}")


def _factor(schedule, t: int) -> float:
    if schedule is None:
        return 1.0
    return float(schedule(t) if callable(schedule) else schedule[t])


def _check_schedules(schedules: dict, steps: int):
    for name, s in schedules.items():
        if s is not None and not callable(s) and len(s) < steps:
            raise ValueError(f"schedule of group {name!r} has {len(s)} entries, need {steps}")


def loss_and_accuracy(out: torch.Tensor, y: torch.Tensor, kind: str):
    """Loss (a scalar tensor) and accuracy (float; NaN for regression targets)."""
    classes = not torch.is_floating_point(y)
    if kind == "cross_entropy":
        loss = F.cross_entropy(out, y)
    else:
        target = F.one_hot(y, out.shape[-1]).to(out.dtype) if classes else y.reshape(out.shape)
        loss = 0.5 * (out - target).pow(2).sum(-1).mean()
    acc = (out.argmax(-1) == y).float().mean().item() if classes else math.nan
    return loss, acc


def sgd_step(params, bufs, lr: float, weight_decay: float, momentum: float):
    """One in-place PyTorch-style SGD step on ``params`` (gradients in ``.grad``)."""
    with torch.no_grad():
        for p, buf in zip(params, bufs):
            grad = p.grad if p.grad is not None else torch.zeros_like(p)  # unused parameter
            d = grad if weight_decay == 0 else grad + weight_decay * p
            buf.mul_(momentum).add_(d)
            p.sub_(lr * buf)


def _batches(n: int, batch_size: int | None, generator: torch.Generator):
    """Endless stream of index tensors: everything, or shuffled mini-batches."""
    while True:
        if batch_size is None:
            yield None
            continue
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i:i + batch_size]


def _unpack(data):
    X, y = (data.X, data.y) if hasattr(data, "X") else data
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}")
    return X, y


def train(model: torch.nn.Module, data, config: TrainConfig, bar: bool = True) -> History:
    """Train ``model`` on ``data`` (a ``lib.data.Dataset`` or an ``(X, y)`` pair) in place.

    Returns the :class:`History`. A non-finite loss stops the run and is recorded in
    ``history.diverged_at``; it is not an error.
    """
    X, y = _unpack(data)
    group_params = {k: v for k, v in models.groups(model).items() if v}
    names = sorted(group_params)
    _check(config, names, X.shape[0])
    lrs = _per_group(config.lr, names, "lr")
    wds = _per_group(config.weight_decay, names, "weight_decay")
    schedules = _per_group(config.schedule, names, "schedule")
    _check_schedules(schedules, config.steps)
    model.to(X.device).train()
    bufs = {k: [torch.zeros_like(p) for p in ps] for k, ps in group_params.items()}
    batches = _batches(X.shape[0], config.batch_size, torch.Generator().manual_seed(config.seed))
    rec = _Recorder(names)
    show = bar and config.steps >= PROGRESS_MIN_STEPS
    with progress.bar(config.steps, "training", disable=not show) as pbar:
        for t in range(config.steps + 1):
            idx = next(batches)
            xb, yb = (X, y) if idx is None else (X[idx], y[idx])
            model.zero_grad(set_to_none=False)
            loss, acc = loss_and_accuracy(model(xb), yb, config.loss)
            if not torch.isfinite(loss):
                rec.diverged_at = t
                break
            last = t == config.steps
            if not last:
                loss.backward()
            step_lrs = {k: lrs[k] * _factor(schedules[k], min(t, config.steps - 1)) for k in names}
            if t % config.log_every == 0 or last:
                rec.record(t, loss.item(), acc, step_lrs, group_params, with_grads=not last)
            if last:
                break
            for k in names:
                sgd_step(group_params[k], bufs[k], step_lrs[k], wds[k], config.momentum)
            pbar.update(1)
    return rec.history()


class _Recorder:
    """Collects one row per logged step and turns the rows into a :class:`History`."""

    def __init__(self, names):
        self.names, self.rows, self.diverged_at = names, [], None

    def record(self, t, loss, acc, lrs, group_params, with_grads=True):
        grad_sq = {k: (sum(p.grad.pow(2).sum().item() for p in ps if p.grad is not None) if with_grads else math.nan)
                   for k, ps in group_params.items()}
        norms = {k: [p.detach().pow(2).sum().item() for p in ps] for k, ps in group_params.items()}
        self.rows.append((t, loss, acc, dict(lrs), grad_sq, norms))

    def history(self) -> History:
        col = lambda i: [r[i] for r in self.rows]  # noqa: E731
        by_group = lambda i, k: np.array([r[i][k] for r in self.rows], dtype=float)  # noqa: E731
        return History(
            step=np.array(col(0), dtype=int), loss=np.array(col(1), dtype=float),
            accuracy=np.array(col(2), dtype=float),
            lr={k: by_group(3, k) for k in self.names},
            grad_norm_sq={k: by_group(4, k) for k in self.names},
            weight_norm_sq={k: by_group(5, k).reshape(len(self.rows), -1) for k in self.names},
            diverged_at=self.diverged_at)
