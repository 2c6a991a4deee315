"""The book's one training loop: full-batch GD or mini-batch SGD, per-group rates.

The update follows PyTorch's SGD exactly (Li & Arora 2020 write it the same way):
    v_t = γ v_{t−1} + ∇L(θ_{t−1}) + λ θ_{t−1},    θ_t = θ_{t−1} − η_t v_t,
with η_t = η · schedule(t), and η, λ and the schedule chosen per parameter group
(``w``: scale-invariant weights, ``g``: the rest; see :mod:`lib.models`).

:func:`fit` trains a :class:`lib.stack.Stack` of K models at once (vmap over the
stack, each model with its own hyperparameters, seed and mini-batches); :func:`train`
is the one-model case. The sweep engine (:mod:`lib.sweep`) calls :func:`fit` too.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import vmap

from lib import progress
from lib import stack as _stack

LOSSES = ("cross_entropy", "mse", "sse")
SHARED = ("steps", "batch_size", "loss", "log_every")  # must agree across a stack
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
    loss: str = "cross_entropy"           # "cross_entropy", "mse" (mean of ½‖f − y‖², one-hot
                                          # y for classes) or "sse" (the sum, not the mean)
    log_every: int = 1                    # steps between records in the history
    seed: int = 0                         # order of mini-batches


@dataclass
class History:
    """What happened during one run; every array is indexed like ``step``."""

    step: np.ndarray                 # (T,) step index t of each record
    loss: np.ndarray                 # (T,) training loss at θ_t (of the batch, for SGD)
    accuracy: np.ndarray             # (T,) training accuracy (NaN for regression)
    lr: dict                         # group -> (T,) learning rate η_t
    grad_norm_sq: dict               # group -> (T,) ‖∇_group L(θ_t)‖² (without weight decay)
    weight_norm_sq: dict             # group -> (T, n_tensors) ‖θ_t‖² of each tensor
    diverged_at: int | None = None   # first step with a non-finite loss, if any
    extra: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def effective_lr(self, group: str = "w") -> np.ndarray:
        """η_t/‖w_t‖² per tensor, (T, n_tensors): the step size of the direction w/‖w‖."""
        return self.lr[group][:, None] / self.weight_norm_sq[group]


def per_group(value, names, what):
    """``{group: value}``, accepting one value for all groups or a mapping per group."""
    if isinstance(value, Mapping):
        if set(value) != set(names):
            raise ValueError(f"{what} per group needs exactly the groups {sorted(names)}, "
                             f"got {sorted(value)}")
        return dict(value)
    return {name: value for name in names}


def _check_number(value, what, positive):
    ok = isinstance(value, (int, float, np.number)) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ValueError(f"{what} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def check_config(config: TrainConfig, names, n_examples: int) -> None:
    """Raise ValueError with a clear message for any invalid field of ``config``."""
    if not isinstance(config.steps, int) or config.steps < 1:
        raise ValueError(f"steps must be a positive integer, got {config.steps!r}")
    if config.batch_size is not None and not (isinstance(config.batch_size, int)
                                              and 1 <= config.batch_size <= n_examples):
        raise ValueError(f"batch_size must be None (full batch) or in [1, {n_examples}], "
                         f"got {config.batch_size!r}")
    for name, lr in per_group(config.lr, names, "lr").items():
        _check_number(lr, f"learning rate of group {name!r}", positive=True)
    for name, wd in per_group(config.weight_decay, names, "weight_decay").items():
        _check_number(wd, f"weight decay of group {name!r}", positive=False)
    if not 0 <= config.momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {config.momentum!r}")
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {config.loss!r}")
    if not isinstance(config.log_every, int) or config.log_every < 1:
        raise ValueError(f"log_every must be a positive integer, got {config.log_every!r}")
    for name, s in per_group(config.schedule, names, "schedule").items():
        if s is not None and not callable(s) and len(s) < config.steps:
            raise ValueError(f"schedule of group {name!r} has {len(s)} entries, need {config.steps}")


def schedule_factors(schedule, steps: int) -> np.ndarray:
    """(steps,) factors on η for t = 0..steps−1 from a callable, a sequence or None."""
    if schedule is None:
        return np.ones(steps)
    if callable(schedule):
        return np.array([float(schedule(t)) for t in range(steps)])
    return np.asarray(schedule, dtype=float)[:steps]


def loss_and_accuracy(out: torch.Tensor, y: torch.Tensor, kind: str):
    """Loss and accuracy as 0-d tensors (accuracy NaN for regression); vmap-friendly."""
    classes = not torch.is_floating_point(y)
    if kind == "cross_entropy":
        loss = F.cross_entropy(out, y)
    else:
        target = (torch.zeros_like(out).scatter(-1, y[..., None], 1.0) if classes
                  else y.reshape(out.shape))
        per_example = 0.5 * (out - target).pow(2).sum(-1)
        loss = per_example.mean() if kind == "mse" else per_example.sum()
    acc = ((out.argmax(-1) == y).to(out.dtype).mean() if classes
           else torch.full((), math.nan, dtype=out.dtype, device=out.device))
    return loss, acc


def sgd_update(p, grad, buf, lr, weight_decay, momentum):
    """PyTorch's SGD step on a stacked tensor (K, ...) with per-model (K,) η, λ, γ.

    Returns the new parameter and momentum buffer.
    """
    shape = (-1,) + (1,) * (p.ndim - 1)
    buf = momentum.view(shape) * buf + grad + weight_decay.view(shape) * p
    return p - lr.view(shape) * buf, buf


def _unpack(data):
    X, y = (data.X, data.y) if hasattr(data, "X") else data
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}")
    return X, y


def _batch_indices(configs, n: int, device):
    """Endless stream of (K, B) index tensors, one shuffled epoch per model; None = full batch."""
    bs = configs[0].batch_size
    gens = [torch.Generator().manual_seed(c.seed) for c in configs]
    while True:
        if bs is None:
            yield None
            continue
        perms = [torch.randperm(n, generator=g) for g in gens]
        for i in range(0, n - bs + 1, bs):
            yield torch.stack([p[i:i + bs] for p in perms]).to(device)


class _Hyper:
    """Per-model hyperparameters of a stack as tensors: η (K,) per group and step, λ, γ."""

    def __init__(self, configs, names, dtype, device):
        as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=float), dtype=dtype, device=device)  # noqa: E731
        steps = configs[0].steps
        lrs = [per_group(c.lr, names, "lr") for c in configs]
        scheds = [per_group(c.schedule, names, "schedule") for c in configs]
        # eta[g]: (steps, K) learning rate of every model at every step
        self.eta = {g: as_t([l[g] * schedule_factors(s[g], steps) for l, s in zip(lrs, scheds)]).T
                    for g in names}
        self.wd = {g: as_t([per_group(c.weight_decay, names, "wd")[g] for c in configs]) for g in names}
        self.momentum = as_t([c.momentum for c in configs])

    def lr_at(self, g, t):
        return self.eta[g][min(t, self.eta[g].shape[0] - 1)]


def fit(stack: _stack.Stack, data, configs, bar: bool = True, observe=None,
        init_momentum=None) -> list:
    """Train every model of ``stack`` with its own config; returns one History per model.

    All configs must share ``steps``, ``batch_size``, ``loss`` and ``log_every``;
    ``lr``, ``weight_decay``, ``momentum``, ``schedule`` and ``seed`` may differ.
    A model whose loss becomes non-finite is marked diverged (the others go on).
    ``observe(params, t) -> {name: tensor (K, ...)}`` is called at every recorded step
    with the stacked parameters θ_t (name -> (K, ...)); its values land in
    ``History.extra[name]`` (one row per record), e.g. kernel eigenvalues during training.
    ``init_momentum(params) -> {name: tensor (K, ...)}`` sets the momentum buffers v_0 of
    those parameters (zero otherwise), e.g. the initial state Theorem 2.9 of Li & Arora
    (2020) prescribes for the exponential learning-rate schedule.
    """
    X, y = _unpack(data)
    configs, names = list(configs), sorted(stack.groups)
    if len(configs) != stack.size:
        raise ValueError(f"need one config per model: {stack.size} models, {len(configs)} configs")
    for c in configs:
        check_config(c, names, X.shape[0])
        if any(getattr(c, f) != getattr(configs[0], f) for f in SHARED):
            raise ValueError(f"configs trained together must share {SHARED}")
    first = configs[0]
    dtype = next(iter(stack.params.values())).dtype
    hyper = _Hyper(configs, names, dtype, X.device)

    def loss_fn(params, buffers, xb, yb):
        return loss_and_accuracy(stack(params, buffers, xb), yb, first.loss)

    grad_fn = batched_grad(loss_fn, stack.size)
    params, buffers = stack.params, stack.buffers
    bufs = {n: torch.zeros_like(p) for n, p in params.items()}
    if init_momentum is not None:
        for n, v in init_momentum(params).items():
            if n not in bufs or v.shape != bufs[n].shape:
                raise ValueError(f"init_momentum: {n!r} must be a parameter name with shape "
                                 f"{tuple(bufs[n].shape) if n in bufs else '(K, ...)'}")
            bufs[n] = v.to(bufs[n]).clone()
    rec = _Recorder(stack.groups, stack.size)
    batches = _batch_indices(configs, X.shape[0], X.device)
    show = bar and first.steps >= PROGRESS_MIN_STEPS
    with progress.bar(first.steps, "training", disable=not show) as pbar:
        for t in range(first.steps + 1):
            idx = next(batches)
            xb, yb = ((X, y) if idx is None else (X[idx], y[idx]))
            if idx is None:  # every model sees the full batch: expand without copying
                xb, yb = xb.expand(stack.size, *xb.shape), yb.expand(stack.size, *yb.shape)
            grads, (loss, acc) = grad_fn(params, buffers, xb, yb)
            rec.check(t, loss)
            if t % first.log_every == 0 or t == first.steps:
                rec.record(t, loss, acc, {g: hyper.lr_at(g, t) for g in names}, params, grads,
                           observe(params, t) if observe else {})
            if t == first.steps or rec.all_diverged():
                break
            for g in names:
                lr, wd = hyper.lr_at(g, t), hyper.wd[g]
                for n in stack.groups[g]:
                    params[n], bufs[n] = sgd_update(params[n], grads[n], bufs[n], lr, wd, hyper.momentum)
            pbar.update(1)
    stack.params, stack.buffers = params, buffers
    return rec.histories()


def batched_grad(loss_fn, k: int):
    """Per-model gradients and (loss, accuracy) over a stack of ``k`` models.

    The models are independent, so the gradient of the summed loss with respect to the
    stacked parameters is every model's own gradient: vmap runs the forward pass, and
    one ordinary backward pass (cheaper than torch.func.grad under vmap) does the rest.
    One model skips vmap: a vmapped convolution runs as a slower grouped convolution.
    """
    forward = vmap(loss_fn, randomness="different") if k > 1 else None

    def grads_and_loss(params, buffers, xb, yb):
        leaves = {n: v.detach().requires_grad_() for n, v in params.items()}
        with torch.enable_grad():
            if forward is not None:
                loss, acc = forward(leaves, buffers, xb, yb)
            else:  # buffers[n][0] is a view: BatchNorm's statistics update reaches the stack
                loss, acc = loss_fn({n: v[0] for n, v in leaves.items()},
                                    {n: v[0] for n, v in buffers.items()}, xb[0], yb[0])
                loss, acc = loss[None], acc[None]
            grads = torch.autograd.grad(loss.sum(), list(leaves.values()), allow_unused=True,
                                        materialize_grads=True)
        return dict(zip(leaves, grads)), (loss.detach(), acc.detach())
    return grads_and_loss


def train(model: torch.nn.Module, data, config: TrainConfig, bar: bool = True,
          observe=None, init_momentum=None) -> History:
    """Train ``model`` on ``data`` (a ``lib.data.Dataset`` or an ``(X, y)`` pair) in place.

    Returns the :class:`History`. A non-finite loss stops the run and is recorded in
    ``history.diverged_at``; it is not an error.
    """
    X, _ = _unpack(data)
    s = _stack.from_models([model], device=X.device)
    (history,) = fit(s, data, [config], bar=bar, observe=observe, init_momentum=init_momentum)
    _stack.write_back(s, [model])
    return history


class _Recorder:
    """Collects batched (K-model) records on the device; one transfer at the end."""

    def __init__(self, groups, k):
        self.groups, self.rows = groups, []
        self.diverged_at = np.full(k, -1)

    def check(self, t, loss):
        bad = ~torch.isfinite(loss.detach()).cpu().numpy()
        self.diverged_at[bad & (self.diverged_at < 0)] = t

    def all_diverged(self):
        return bool(np.all(self.diverged_at >= 0))

    def record(self, t, loss, acc, lrs, params, grads, observed):
        sq = lambda ts, names: torch.stack([ts[n].detach().flatten(1).pow(2).sum(1) for n in names], 1)  # noqa: E731
        self.rows.append((t, loss.detach(), acc.detach(), lrs,
                          {g: sq(grads, ns).sum(1) for g, ns in self.groups.items()},
                          {g: sq(params, ns) for g, ns in self.groups.items()},
                          {k: torch.as_tensor(v).detach() for k, v in observed.items()}))

    def histories(self):
        np_ = lambda ts: torch.stack(ts).cpu().numpy().astype(float)  # noqa: E731  (T, K, ...)
        step = np.array([r[0] for r in self.rows])
        loss, acc = np_([r[1] for r in self.rows]), np_([r[2] for r in self.rows])
        lr = {g: np_([r[3][g] for r in self.rows]) for g in self.groups}
        gsq = {g: np_([r[4][g] for r in self.rows]) for g in self.groups}
        wsq = {g: np_([r[5][g] for r in self.rows]) for g in self.groups}
        extra = {k: np_([r[6][k] for r in self.rows]) for k in self.rows[0][6]} if self.rows else {}
        out = []
        for k, d in enumerate(self.diverged_at):
            keep = step < d if d >= 0 else slice(None)
            out.append(History(step=step[keep], loss=loss[keep, k], accuracy=acc[keep, k],
                               lr={g: v[keep, k] for g, v in lr.items()},
                               grad_norm_sq={g: v[keep, k] for g, v in gsq.items()},
                               weight_norm_sq={g: v[keep, k] for g, v in wsq.items()},
                               diverged_at=int(d) if d >= 0 else None,
                               extra={n: v[keep, k] for n, v in extra.items()}))
        return out
