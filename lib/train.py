"""The book's one training loop: full-batch GD or mini-batch SGD, per-group rates.

The update follows PyTorch's SGD exactly (Li & Arora 2020 write it the same way):
    v_{t+1} = γ v_t + ∇L(θ_t) + λ_t θ_t,    θ_{t+1} = θ_t − η_t v_{t+1},
with η_t and λ_t one number or a per-step schedule, chosen per parameter group
(``w``: scale-invariant weights, ``g``: the rest; see :mod:`lib.models`).

:func:`fit` trains a :class:`lib.stack.Stack` of K models at once (vmap over the
stack, each model with its own hyperparameters, seed and mini-batches); :func:`train`
is the one-model case. The sweep engine (:mod:`lib.sweep`) calls :func:`fit` too.
What a run is asked to do lives in :mod:`lib.config`, what it records in
:mod:`lib.history`, the checks of its data in :mod:`lib.datachecks`; their public names
are importable from here as well (``from lib.train import TrainConfig, History``).
"""

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
# The first vmapped cross-entropy runs torch's Python decomposition of nll_loss, which
# imports this module and sympy with it: 0.8-1.2 s, measured. Imported with the library,
# while a chapter sets up, so that the first move of a live slider does not pay it.
import torch.fx.experimental.symbolic_shapes  # noqa: F401
from torch.func import vmap

from lib import checks, progress
from lib import device as _device
from lib import models as _models
from lib import stack as _stack
# TrainConfig, History, unpack, ... are re-exported: callers import them from lib.train
from lib.config import LOSSES, TrainConfig, check_config, per_group, per_step
from lib.datachecks import probe_model, unpack
from lib.history import History, Recorder

SHARED = ("steps", "batch_size", "loss", "log_every")  # must agree across a stack
PROGRESS_MIN_STEPS = 200  # shorter runs finish in a blink: no bar


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


def sgd_update(p, grad, buf, eta, weight_decay, momentum):
    """PyTorch's SGD step on a stacked tensor (K, ...) with per-model (K,) η, λ, γ.

    ``p``, ``grad``, ``buf``: finite tensors of one shape (K, ...); ``eta`` > 0,
    ``weight_decay`` >= 0 and ``momentum`` in [0, 1): (K,) tensors. Returns the new
    parameter and momentum buffer.
    """
    p = checks.tensor("p", p)
    if p.ndim == 0:
        raise ValueError("p must have a leading model axis (K, ...), got a 0-d tensor")
    for name, t in (("grad", grad), ("buf", buf)):
        if checks.tensor(name, t).shape != p.shape:
            raise ValueError(f"{name} must have the shape of p {tuple(p.shape)}, got {tuple(t.shape)}")
    for name, t, check in (("eta", eta, checks.positive), ("weight_decay", weight_decay,
                           checks.nonnegative), ("momentum", momentum, checks.fraction)):
        for k, v in enumerate(checks.tensor(name, t, shape=(p.shape[0],)).tolist()):
            check(f"{name}[{k}]", v)
    return _sgd_update(p, grad, buf, eta, weight_decay, momentum)


def _sgd_update(p, grad, buf, eta, weight_decay, momentum):
    shape = (-1,) + (1,) * (p.ndim - 1)
    buf = momentum.view(shape) * buf + grad + weight_decay.view(shape) * p
    return p - eta.view(shape) * buf, buf


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
        etas = [per_group(c.eta, names, "eta") for c in configs]
        decays = [per_group(c.weight_decay, names, "weight_decay") for c in configs]
        # eta[g], weight_decay[g]: (steps, K) η and λ of every model at every step
        self.eta = {g: as_t([per_step(e[g], steps) for e in etas]).T for g in names}
        self.weight_decay = {g: as_t([per_step(d[g], steps, "weight_decay", nonneg=True)
                                      for d in decays]).T for g in names}
        self.momentum = as_t([c.momentum for c in configs])
        self.names = names

    def etas_at(self, t):
        return {g: self.eta_at(g, t) for g in self.names}

    def eta_at(self, g, t):
        return self.eta[g][min(t, self.eta[g].shape[0] - 1)]

    def weight_decay_at(self, g, t):
        return self.weight_decay[g][t]


def fit(stack: _stack.Stack, data, configs, bar: bool = True, observe=None,
        init_momentum=None) -> list:
    """Train every model of ``stack`` with its own config; returns one History per model.

    All configs must share ``steps``, ``batch_size``, ``loss`` and ``log_every``;
    ``eta``, ``weight_decay``, ``momentum`` and ``seed`` may differ.
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
    _check_targets(probe_model(stack, X, y), y, configs[0].loss)
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


def _check_targets(out: torch.Tensor, y: torch.Tensor, loss: str, name: str = "data") -> None:
    """The labels or targets fit the loss on the outputs ``out`` of :func:`probe_model`."""
    try:
        loss_and_accuracy(out, y[:min(len(y), 2)], loss)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}.y does not fit the model's outputs: {err}") from None


def _run(stack, X, y, configs, bar, observe, init_momentum) -> list:
    """The training loop of :func:`fit`, on checked arguments."""
    first, names = configs[0], sorted(stack.groups)
    hyper = _Hyper(configs, names, next(iter(stack.params.values())).dtype, X.device)
    grad_fn = batched_grad(_loss_fn(stack, first.loss), stack.size)
    params, buffers = stack.params, stack.buffers
    bufs = _initial_momentum(params, init_momentum)
    rec, k = Recorder(stack.groups, stack.size), stack.size
    batches = _batch_indices(configs, X.shape[0], X.device)
    show = bar and first.steps >= PROGRESS_MIN_STEPS
    on_cpu = X.device.type == "cpu"
    with progress.bar(first.steps, "training", disable=not show) as pbar:
        for t in range(first.steps + 1):
            grads, (loss, acc) = grad_fn(params, buffers, *_batch(X, y, next(batches), k))
            rec.check(t, loss)
            if t % first.log_every == 0 or t == first.steps:
                rec.record(t, loss, acc, hyper.etas_at(t), params, grads,
                           observe(params, t) if observe else {})
            if t == first.steps or rec.all_diverged():
                break
            _sgd_step(stack.groups, params, bufs, grads, hyper, t)
            if on_cpu and t % _device.TRIM_EVERY == _device.TRIM_EVERY - 1:
                _device.release_host_memory()   # freed temporaries leave the heap
            pbar.update(1)
    stack.params, stack.buffers = params, buffers
    return rec.histories()


def _loss_fn(stack, kind: str):
    """``loss_fn(params, buffers, xb, yb) -> (loss, accuracy)`` of one model of ``stack``."""
    def loss_fn(params, buffers, xb, yb):
        return _loss_and_accuracy(stack(params, buffers, xb), yb, kind)
    return loss_fn


def _batch(X, y, idx, k: int):
    """This step's inputs and labels (K, B, ...): rows ``idx`` (K, B), or all rows if None."""
    if idx is None:  # every model sees the full batch: expand without copying
        return X.expand(k, *X.shape), y.expand(k, *y.shape)
    return X[idx], y[idx]


def _sgd_step(groups, params, bufs, grads, hyper, t: int) -> None:
    """θ_t -> θ_{t+1} and v_t -> v_{t+1} of every stacked parameter, in place in the dicts."""
    for g in hyper.names:
        eta, decay = hyper.eta_at(g, t), hyper.weight_decay_at(g, t)
        for n in groups[g]:
            params[n], bufs[n] = _sgd_update(params[n], grads[n], bufs[n], eta, decay, hyper.momentum)


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
