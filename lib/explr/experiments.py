"""Experiments of the exponential learning-rate chapter (Li & Arora, 2020).

The equivalence runner (Theorems 2.1 and 2.9) on the scale-invariant networks of
:mod:`lib.explr.networks` and the computations behind the chapter's sliders. The schedule
comparisons on a PreResNet are in :mod:`lib.explr.comparisons`, the weight norm's
equilibrium and monotonicity in :mod:`lib.explr.norms`. Training goes through the book's
one loop, :func:`lib.train.fit`.
"""

import functools
from dataclasses import replace

import numpy as np
import torch

from lib import checks, controls, train
from lib.explr import networks, schedules


def exp_lr_momentum(eta: float, weight_decay: float, momentum: float):
    """``init_momentum`` for the exp-LR run of Theorem 2.9, started at rest like run A.

    The theorem asks for θ̃_{−1} = α θ_{−1}, with η̃_{−1} = ηα. In PyTorch's form the
    buffer is v_0 = (θ_{−1} − θ_0)/η_{−1}; run A starts with v_0 = 0, i.e. θ_{−1} = θ_0,
    so the exp-LR run needs ṽ_0 = (αθ_0 − θ_0)/(ηα) = −(1 − α)/(αη) · θ_0.
    Accepts what :func:`lib.explr.schedules.exp_lr_alpha` accepts.
    """
    alpha = schedules.exp_lr_alpha(eta, weight_decay, momentum)
    coef = -(1 - alpha) / (alpha * float(eta))
    return functools.partial(_scaled, coef)   # params -> coef·params (picklable for workers)


def _scaled(coef: float, params: dict) -> dict:
    return {n: coef * p for n, p in params.items()}


def _record_theta(offset: int, total: int, params, t: int) -> dict:
    """``observe`` of :func:`paired_runs`: all weights θ_t, flattened; it also tells a live
    figure's progress bar that ``offset + t`` of ``total`` steps are done."""
    controls.report(offset + t, total)
    return {"theta": _flat(params)}


def _flat(params):  # name -> (K, ...) to (K, P)
    return torch.cat([p.detach().flatten(1) for p in params.values()], 1)


def _directions(name: str, value) -> np.ndarray:
    """Finite vectors along the last axis, none of them zero."""
    arr = checks.array(name, value)
    if arr.ndim < 1 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must hold vectors along its last axis, got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError(f"{name} holds a zero vector: it has no direction")
    return arr / norms


def unit_distance(a, b) -> np.ndarray:
    """‖a/‖a‖ − b/‖b‖‖ along the last axis: how far apart two directions are.

    ``a``, ``b``: finite arrays of one shape (..., P), no zero vector.
    """
    a, b = _directions("a", a), _directions("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return np.linalg.norm(a - b, axis=-1)


def _batch_size(value, n: int):
    return None if value is None else checks.integer("batch_size", value, hi=n)


def _maybe(check, name, value):
    return None if value is None else check(name, value)


def paired_runs(data, etas_a, weight_decay_a, etas_b, weight_decay_b=0.0, momentum=0.9,
                init_b=None, make_model=None, batch_size=100, dtype=torch.float64,
                seed=0) -> dict:
    """Train two copies of one scale-invariant network with two schedules, same batches.

    ``data``: a Dataset or (X, y); ``etas_a``/``etas_b``: per-step learning rates > 0 (same
    length); ``init_b``: the ``init_momentum`` of run B; ``make_model(seed)``: default a
    ScaleInvariantMLP on (196, 32, 32, 10). Returns step (T,), theta_a and theta_b (T, P):
    all weights, flattened, at every step, and diverged_at_a/_b (None, or the first step
    with a non-finite loss: the histories stop there).
    """
    X, y = networks.labelled_data("data", data)
    etas_a = checks.positive_array("etas_a", etas_a, ndim=1)
    etas_b = checks.positive_array("etas_b", etas_b, ndim=1)
    checks.same_length(etas_a=etas_a, etas_b=etas_b)
    wds = (checks.nonnegative("weight_decay_a", weight_decay_a),
           checks.nonnegative("weight_decay_b", weight_decay_b))
    momentum, seed = checks.fraction("momentum", momentum), checks.seed("seed", seed)
    init_b = _maybe(checks.function, "init_b", init_b)
    make_model = _maybe(checks.function, "make_model", make_model)
    batch_size, dtype = _batch_size(batch_size, len(y)), checks.float_dtype("dtype", dtype)
    make_model = make_model or (lambda seed: networks.ScaleInvariantMLP((196, 32, 32, 10), seed))
    data = (X.to(dtype), y)
    base = train.TrainConfig(steps=len(etas_a), batch_size=batch_size, momentum=momentum,
                             seed=seed, log_every=1)  # same seed: same mini-batches
    runs = []
    for k, (etas, wd, init) in enumerate(((etas_a, wds[0], None), (etas_b, wds[1], init_b))):
        model = make_model(seed).to(dtype)
        networks.check_input(model, X, "data", y)
        observe = functools.partial(_record_theta, k * len(etas), 2 * len(etas))
        runs.append(train.train(model, data, replace(base, eta=etas, weight_decay=wd),
                                bar=False, observe=observe, init_momentum=init))
    return {"step": runs[0].step, "theta_a": runs[0].extra["theta"],
            "theta_b": runs[1].extra["theta"], "diverged_at_a": runs[0].diverged_at,
            "diverged_at_b": runs[1].diverged_at}


def equivalence(data, sizes=(196, 32, 32, 10), eta=0.1, weight_decay=5e-3, momentum=0.9,
                steps=300, batch_size=100, dtype=torch.float64, seed=0) -> dict:
    """Run A (constant η, WD λ, momentum γ) against B (exp_lr, no WD, Theorem 2.9 start).

    Arguments as in :func:`paired_runs` and :func:`lib.explr.schedules.exp_lr`; ``sizes`` of the
    ScaleInvariantMLP. Returns :func:`paired_runs`' dict plus ``alpha``; B's weights should
    be α^{−t} times A's.
    """
    sizes = networks.layer_sizes("sizes", sizes, min_len=3)
    etas_b = schedules.exp_lr(eta, weight_decay, momentum, steps)  # checks η, λ, γ, steps
    out = paired_runs(data, np.full(len(etas_b), float(eta)), weight_decay, etas_b, 0.0, momentum,
                      init_b=exp_lr_momentum(eta, weight_decay, momentum),
                      make_model=lambda seed: networks.ScaleInvariantMLP(sizes, seed),
                      batch_size=batch_size, dtype=dtype, seed=seed)
    return {**out, "alpha": schedules.exp_lr_alpha(eta, weight_decay, momentum)}


def exp_lr_curve(eta: float, weight_decay: float, momentum: float, epochs: int = 10,
                 steps_per_epoch: int = 391, every: int = 17) -> dict:
    """η̃_t of :func:`lib.explr.schedules.exp_lr` every ``every`` steps (a slider's curve).

    η, λ, γ as there; ``epochs``, ``steps_per_epoch``, ``every``: integers >= 1. Returns
    epoch and etas (⌈epochs·steps_per_epoch/every⌉,) and growth, the factor per epoch.
    """
    epochs, every = checks.integer("epochs", epochs), checks.integer("every", every)
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    etas = schedules.exp_lr(eta, weight_decay, momentum, epochs * steps_per_epoch)[::every]
    growth = schedules.growth_per_epoch(eta, weight_decay, momentum, steps_per_epoch)
    return {"epoch": np.arange(len(etas)) * every / steps_per_epoch, "etas": etas, "growth": growth}


def equivalence_distance(data, weight_decay: float, momentum: float, sizes=(196, 32, 32, 10),
                         eta: float = 0.1, steps: int = 300, batch_size: int = 100) -> dict:
    """Step and distance of directions (:func:`unit_distance`) of A and B in :func:`equivalence`.

    Arguments as there (in float64, seed 0). Returns step and distance, (steps + 1,).
    """
    r = equivalence(data, sizes=sizes, eta=eta, weight_decay=weight_decay,
                    momentum=momentum, steps=steps, batch_size=batch_size)
    return {"step": r["step"], "distance": unit_distance(r["theta_a"], r["theta_b"])}
