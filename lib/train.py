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

from lib import checks, progress
from lib import models as _models
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


@dataclass
class History:
    """What happened during one run; every array is indexed like ``step``."""

    step: np.ndarray                 # (T,) step index t of each record
    loss: np.ndarray                 # (T,) training loss at θ_t (of the batch, for SGD)
    accuracy: np.ndarray             # (T,) training accuracy (NaN for regression)
    lr: dict                         # group -> (T,) learning rate η_t
    grad_norm_sq: dict               # group -> (T,) ‖∇_group L(θ_t)‖² (without weight decay)
    weight_norm_sq: dict             # group -> (T, n_tensors) ‖θ_t‖² of each tensor
    diverged_at: int | None = None   # first step with a non-finite loss (or ‖θ‖², ‖∇L‖²), if any
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(checks.array("step", self.step, ndim=1, nonempty=False))
        for name in ("loss", "accuracy"):
            _per_record(name, getattr(self, name), n)
        for name in ("lr", "grad_norm_sq", "weight_norm_sq", "extra"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict of arrays, got {type(value).__name__}")
            for key, v in value.items():
                _per_record(f"{name}[{key!r}]", v, n)
        if self.diverged_at is not None:
            self.diverged_at = checks.integer("diverged_at", self.diverged_at, lo=0)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def effective_lr(self, group: str = "w") -> np.ndarray:
        """η_t/‖w_t‖² per tensor, (T, n_tensors): the step size of the direction w/‖w‖."""
        checks.choice("group", group, tuple(self.lr))
        return self.lr[group][:, None] / self.weight_norm_sq[group]


def _per_record(name: str, value, n: int) -> None:
    arr = checks.array(name, value, finite=False, nonempty=False)
    if arr.ndim == 0 or len(arr) != n:
        raise ValueError(f"{name} must have one row per recorded step ({n}), got shape {arr.shape}")


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


def loss_and_accuracy(out: torch.Tensor, y: torch.Tensor, kind: str):
    """Loss and accuracy as 0-d tensors (accuracy NaN for regression); vmap-friendly.

    ``out``: (B, C) floating outputs; ``y``: (B,) integer labels in 0..C−1, or floating
    targets with as many entries as ``out``; ``kind``: one of :data:`LOSSES`. Under vmap
    the labels' range cannot be looked at (:func:`fit` checks it where the data enter).
    """
    kind = checks.choice("kind", kind, LOSSES)
    out = checks.tensor("out", out, ndim=(1, 2), finite=False)  # NaN outputs: divergence
    y = checks.tensor("y", y, floating=None, finite=False)
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"y must hold integer labels or real targets, got {y.dtype}")
    if not torch.is_floating_point(y):
        if y.ndim != 1 or out.ndim != 2 or y.shape[0] != out.shape[0]:
            raise ValueError(f"y must be (B,) labels for (B, C) outputs, got y {tuple(y.shape)} "
                             f"and out {tuple(out.shape)}")
        if not torch._C._functorch.is_functorch_wrapped_tensor(y):  # values unknown under vmap
            checks.labels("y", y, out.shape[-1])
    elif y.numel() != out.numel() or kind == "cross_entropy" and y.shape != out.shape:
        raise ValueError(f"y (targets) must match out: got y {tuple(y.shape)} and out "
                         f"{tuple(out.shape)} for loss {kind!r}")
    return _loss_and_accuracy(out, y, kind)


def _loss_and_accuracy(out, y, kind):
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

    ``p``, ``grad``, ``buf``: finite tensors of one shape (K, ...); ``lr`` > 0,
    ``weight_decay`` >= 0 and ``momentum`` in [0, 1): (K,) tensors. Returns the new
    parameter and momentum buffer.
    """
    p = checks.tensor("p", p)
    if p.ndim == 0:
        raise ValueError("p must have a leading model axis (K, ...), got a 0-d tensor")
    for name, t in (("grad", grad), ("buf", buf)):
        if checks.tensor(name, t).shape != p.shape:
            raise ValueError(f"{name} must have the shape of p {tuple(p.shape)}, got {tuple(t.shape)}")
    for name, t, check in (("lr", lr, checks.positive), ("weight_decay", weight_decay,
                           checks.nonnegative), ("momentum", momentum, checks.fraction)):
        for k, v in enumerate(checks.tensor(name, t, shape=(p.shape[0],)).tolist()):
            check(f"{name}[{k}]", v)
    return _sgd_update(p, grad, buf, lr, weight_decay, momentum)


def _sgd_update(p, grad, buf, lr, weight_decay, momentum):
    shape = (-1,) + (1,) * (p.ndim - 1)
    buf = momentum.view(shape) * buf + grad + weight_decay.view(shape) * p
    return p - lr.view(shape) * buf, buf


def unpack(data, name: str = "data"):
    """``(X, y)`` of a ``lib.data.Dataset`` or an ``(X, y)`` pair, checked.

    X: finite floating (n, ...) with n >= 1; y: (n,) integer labels, or real targets
    (n, ...) of X's dtype; both on one device.
    """
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise TypeError(f"{name} must be a lib.data.Dataset or an (X, y) pair, got "
                        f"{type(data).__name__}")
    X = checks.tensor(f"{name}.X", X, ndim=(2, 3, 4, 5))
    y = checks.tensor(f"{name}.y", y, floating=None, ndim=(1, 2))
    checks.same_length(**{f"{name}.X": X, f"{name}.y": y})
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name}.y must hold integer labels or real targets, got {y.dtype}")
    if not torch.is_floating_point(y) and y.ndim != 1:
        raise ValueError(f"{name}.y must be (n,) labels, got shape {tuple(y.shape)}")
    if torch.is_floating_point(y) and y.dtype != X.dtype:
        raise TypeError(f"{name}.y is {y.dtype} but {name}.X is {X.dtype}: targets and inputs "
                        f"must share a dtype")
    if X.device != y.device:
        raise ValueError(f"{name}.X is on {X.device} but {name}.y on {y.device}")
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
        self.eta = {g: as_t([l[g] * schedule_factors(s[g], steps, _schedule_name(c, g))
                             for l, s, c in zip(lrs, scheds, configs)]).T for g in names}
        self.wd = {g: as_t([per_group(c.weight_decay, names, "wd")[g] for c in configs]) for g in names}
        self.momentum = as_t([c.momentum for c in configs])

    def lr_at(self, g, t):
        return self.eta[g][min(t, self.eta[g].shape[0] - 1)]


def _schedule_name(config, group):
    return f"schedule[{group!r}]" if isinstance(config.schedule, Mapping) else "schedule"


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
    Accepts: a :class:`lib.stack.Stack`; data as :func:`unpack` checks them, of the
    model's dtype and device, labels in range of its outputs; one TrainConfig per model.
    """
    if not isinstance(stack, _stack.Stack):
        raise TypeError(f"stack must be a lib.stack.Stack (from stack.from_models), got "
                        f"{type(stack).__name__}")
    X, y = unpack(data)
    configs = _check_configs(configs, stack, X.shape[0])
    checks.boolean("bar", bar), _optional_function("observe", observe)
    _optional_function("init_momentum", init_momentum)
    _check_fit(stack, X, y, configs[0].loss)
    return _run(stack, X, y, configs, bar, observe, init_momentum)


def _check_configs(configs, stack, n: int) -> list:
    if isinstance(configs, TrainConfig) or not isinstance(configs, (list, tuple)):
        raise TypeError(f"configs must be a list of TrainConfig, one per model, got "
                        f"{type(configs).__name__}")
    if len(configs) != stack.size:
        raise ValueError(f"configs must hold one config per model: {stack.size} models, "
                         f"{len(configs)} configs")
    names = sorted(stack.groups)
    for i, c in enumerate(configs):
        check_config(c, names, n, name=f"configs[{i}]")
        if any(getattr(c, f) != getattr(configs[0], f) for f in SHARED):
            raise ValueError(f"configs trained together must share {SHARED}; configs[{i}] differs")
    return list(configs)


def _optional_function(name: str, value):
    return None if value is None else checks.function(name, value)


def _check_fit(stack: _stack.Stack, X: torch.Tensor, y: torch.Tensor, loss: str,
              name: str = "data") -> None:
    """Raise a ValueError/TypeError naming ``name`` unless the stack's models can train on
    (X, y): same dtype and device, a forward pass on two examples runs, labels in range."""
    p = next(iter(stack.params.values()))
    if X.dtype != p.dtype:
        raise TypeError(f"{name}.X is {X.dtype} but the model's parameters are {p.dtype}: "
                        f"convert one (e.g. model.double() or X.float())")
    if X.device != p.device:
        raise ValueError(f"{name}.X is on {X.device} but the model on {p.device}")
    m = min(len(X), 2)
    params = {n: v[0].detach() for n, v in stack.params.items()}
    buffers = {n: b[0].clone() for n, b in stack.buffers.items()}  # the probe updates copies
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = stack(params, buffers, X[:m])
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        raise ValueError(f"{name}.X of shape {tuple(X.shape)} does not fit the model"
                         f"{_expects(stack.template)}: {err}") from None
    if not torch.is_floating_point(y) and out.ndim == 2:
        checks.labels(f"{name}.y", y, out.shape[-1])
    try:
        loss_and_accuracy(out, y[:m], loss)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}.y does not fit the model's outputs: {err}") from None


def _expects(template) -> str:
    first = next((mod for mod in template.modules()
                  if isinstance(mod, (torch.nn.Linear, torch.nn.modules.conv._ConvNd))), None)
    if isinstance(first, torch.nn.Linear):
        return f" (its first linear layer takes {first.in_features} features per example)"
    return f" (its first convolution takes {first.in_channels} channels)" if first else ""


def _run(stack, X, y, configs, bar, observe, init_momentum) -> list:
    """The training loop of :func:`fit`, on checked arguments."""
    first, names = configs[0], sorted(stack.groups)
    hyper = _Hyper(configs, names, next(iter(stack.params.values())).dtype, X.device)

    def loss_fn(params, buffers, xb, yb):
        return _loss_and_accuracy(stack(params, buffers, xb), yb, first.loss)

    grad_fn = batched_grad(loss_fn, stack.size)
    params, buffers = stack.params, stack.buffers
    bufs = _initial_momentum(params, init_momentum)
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
                    params[n], bufs[n] = _sgd_update(params[n], grads[n], bufs[n], lr, wd, hyper.momentum)
            pbar.update(1)
    stack.params, stack.buffers = params, buffers
    return rec.histories()


def _initial_momentum(params, init_momentum) -> dict:
    """Momentum buffers v_0: zero, or what ``init_momentum(params)`` sets."""
    bufs = {n: torch.zeros_like(p) for n, p in params.items()}
    given = {} if init_momentum is None else init_momentum(params)
    if not isinstance(given, Mapping):
        raise TypeError(f"init_momentum must return a dict name -> tensor, got {type(given).__name__}")
    for n, v in given.items():
        if n not in bufs or not isinstance(v, torch.Tensor) or v.shape != bufs[n].shape:
            raise ValueError(f"init_momentum: {n!r} must be a parameter name with a tensor of shape "
                             f"{tuple(bufs[n].shape) if n in bufs else '(K, ...)'}")
        bufs[n] = v.to(bufs[n]).clone()
    return bufs


def batched_grad(loss_fn, k: int):
    """Per-model gradients and (loss, accuracy) over a stack of ``k`` models.

    The models are independent, so the gradient of the summed loss with respect to the
    stacked parameters is every model's own gradient: vmap runs the forward pass, and
    one ordinary backward pass (cheaper than torch.func.grad under vmap) does the rest.
    One model skips vmap: a vmapped convolution runs as a slower grouped convolution.
    ``loss_fn(params, buffers, xb, yb) -> (loss, accuracy)`` of one model; ``k`` >= 1.
    """
    loss_fn, k = checks.function("loss_fn", loss_fn), checks.integer("k", k)
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
    ``history.diverged_at``; it is not an error. Accepts: an ``nn.Module`` with
    parameters, a :class:`TrainConfig`, and data as :func:`fit` checks them.
    """
    _models.module("model", model), checks.instance("config", config, TrainConfig)
    X, _ = unpack(data)
    s = _stack.from_models([model], device=X.device)
    check_config(config, sorted(s.groups), X.shape[0])  # errors name config, not configs[0]
    (history,) = fit(s, data, [config], bar=bar, observe=observe, init_momentum=init_momentum)
    _stack.write_back(s, [model])
    return history


class _Recorder:
    """Collects batched (K-model) records on the device; one transfer at the end.

    A model diverges at the first step whose loss is not finite, or whose recorded
    ‖θ‖² or ‖∇L‖² overflow (absurd parameters with a loss that happens to stay finite).
    """

    def __init__(self, groups, k):
        self.groups, self.rows = groups, []
        self.diverged_at = np.full(k, -1)

    def check(self, t, loss):
        self._mark(t, ~torch.isfinite(loss.detach()))

    def _mark(self, t, bad: torch.Tensor):
        bad = bad.cpu().numpy()
        self.diverged_at[bad & (self.diverged_at < 0)] = t

    def all_diverged(self):
        return bool(np.all(self.diverged_at >= 0))

    def record(self, t, loss, acc, lrs, params, grads, observed):
        sq = lambda ts, names: torch.stack([ts[n].detach().flatten(1).pow(2).sum(1) for n in names], 1)  # noqa: E731
        gsq = {g: sq(grads, ns).sum(1) for g, ns in self.groups.items()}    # (K,)
        wsq = {g: sq(params, ns) for g, ns in self.groups.items()}          # (K, n_tensors)
        norms = torch.cat([v.reshape(v.shape[0], -1) for v in (*gsq.values(), *wsq.values())], 1)
        self._mark(t, ~torch.isfinite(norms).all(1))
        self.rows.append((t, loss.detach(), acc.detach(), lrs, gsq, wsq,
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
