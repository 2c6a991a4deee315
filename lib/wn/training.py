"""Training the weight-normalised network by full-batch GD, with its kernel recorded.

:func:`train` (one network) and :func:`train_batch` (K networks of one width at once) run
the book's one training loop (:func:`lib.train.train`, :func:`lib.train.fit`) on the
modules of :mod:`lib.wn.networks`, record λ(Λ(t)), ReLU sign changes and the distance
from initialisation, and cut a run where it diverges (:func:`blow_up_step`).
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from lib import checks, controls
from lib import stack as _stack
from lib import train as _train
from lib.wn.networks import (PlainNet, WNNet, WNParams, check_inputs, check_params,
                             kernel_and_pattern)

# A run whose loss exceeds BLOW_UP × L(0) has diverged. Stable GD never raises the sum of
# squares that far: past the edge (η > 2/λ_max) it grows by a factor (1 − ηλ_max)² per
# step, so 10⁸ is reached within steps, while a recovering run (the catapult of WN's
# lengths, the plain net's narrow window past its edge) stays within a few times L(0).
BLOW_UP = 1e8


@dataclass
class WNHistory:
    """One training run; arrays indexed like ``step`` (cut at divergence)."""

    step: np.ndarray            # (T,) recorded steps t
    loss: np.ndarray            # (T,) L(t) = ½ Σ_i (f_t(x_i) − y_i)²
    observed: np.ndarray        # (T',) steps at which the quantities below were recorded
    spectrum: np.ndarray        # (T', n) eigenvalues of Λ(t), ascending
    sign_changes: np.ndarray    # (T',) fraction of (i, k) whose 𝟙{g_k v_kᵀx_i ≥ 0} changed
    dist_v: np.ndarray          # (T',) ‖v(t) − v(0)‖_F/‖v(0)‖_F (w when un-normalised)
    dist_g: np.ndarray          # (T',) ‖g(t) − g(0)‖/‖g(0)‖ (g_k = ‖w_k‖ when un-normalised)
    diverged_at: int | None     # first step whose loss is non-finite or > BLOW_UP × L(0), or
                                # whose parameters' squared norm overflows; None if stable
    history: _train.History     # the training loop's own record (cut at divergence too)
    params: WNParams            # parameters after the last step (meaningless once diverged)

    @property
    def lam_min(self) -> np.ndarray:
        return self.spectrum[:, 0]

    @property
    def lam_max(self) -> np.ndarray:
        return self.spectrum[:, -1]


def _observer(start: WNParams, X, as_params, every: int = 1, last: int = 0):
    """``observe`` for lib.train.fit over K models (stacked tensors, leading axis K):
    spectrum of Λ(t), fraction of changed ReLU patterns, relative distance from ``start``.

    ``start`` holds the K initial parameters stacked, (v (K, m, d), g (K, m)). Only
    steps t with t % every == 0 or t == last are computed; the others are NaN.
    """
    v0, g0 = start
    _, act0 = kernel_and_pattern(v0, g0, X)

    def observe(stacked, t):
        controls.report(t, max(last, 1))   # a live figure's progress bar follows the steps
        v, g = as_params(stacked)
        if t % every and t != last:
            nan = torch.full(v.shape[:1], math.nan, dtype=X.dtype, device=X.device)
            return {"spectrum": nan[:, None].expand(-1, X.shape[0]), "sign_changes": nan,
                    "dist_v": nan, "dist_g": nan}
        K, act = kernel_and_pattern(v, g, X)
        ok = torch.isfinite(K).flatten(1).all(1)                   # (K,) skip diverged models
        spectrum = torch.full(K.shape[:2], math.nan, dtype=X.dtype, device=X.device)
        if ok.any():
            spectrum[ok] = torch.linalg.eigvalsh(K[ok])
        return {"spectrum": spectrum, "sign_changes": (act != act0).to(X.dtype).mean((1, 2)),
                "dist_v": (v - v0).flatten(1).norm(dim=1) / v0.flatten(1).norm(dim=1),
                "dist_g": (g - g0).norm(dim=1) / g0.norm(dim=1)}
    return observe


def _modules(params_list, normalized):
    return [WNNet(p) if normalized else PlainNet(p) for p in params_list]


def _as_stacked(normalized):
    """Map the loop's stacked parameter dict to (v, g); the plain net has v = w, g = ‖w‖."""
    if normalized:
        return lambda p: (p["v"].detach(), p["g"].detach())
    return lambda p: (p["w"].detach(), p["w"].detach().norm(dim=-1))


def blow_up_step(h: _train.History) -> int | None:
    """The first recorded step at which a run has diverged, or None.

    Diverged: the loss is non-finite or above :data:`BLOW_UP` × L(0), or a parameter's
    squared norm overflows (‖θ‖ > 1e154: dead ReLUs can bring the loss back down from
    there, as at η = 1e100, but nothing that follows is training).
    """
    if not isinstance(h, _train.History):
        raise TypeError(f"h must be a lib.train.History, got {type(h).__name__}")
    if h.loss.size == 0:
        return h.diverged_at
    bad = ~np.isfinite(h.loss) | (h.loss > BLOW_UP * h.loss[0])
    for sq in h.weight_norm_sq.values():
        bad |= ~np.isfinite(sq).all(axis=1)
    steps = [int(t) for t in h.step[bad][:1]] + [h.diverged_at] * (h.diverged_at is not None)
    return min(steps) if steps else None


def _cut(h: _train.History, at: int | None) -> _train.History:
    """``h`` without the records from step ``at`` on, marked diverged there."""
    if at is None:
        return h
    keep = h.step < at
    part = lambda d: {k: v[keep] for k, v in d.items()}  # noqa: E731
    return dataclasses.replace(h, step=h.step[keep], loss=h.loss[keep],
                               accuracy=h.accuracy[keep], eta=part(h.eta),
                               grad_norm_sq=part(h.grad_norm_sq),
                               weight_norm_sq=part(h.weight_norm_sq), extra=part(h.extra),
                               diverged_at=at)


def _history(h: _train.History, params: WNParams, every: int, last: int) -> WNHistory:
    h = _cut(h, blow_up_step(h))
    keep = (h.step % every == 0) | (h.step == last)
    return WNHistory(step=h.step, loss=h.loss, observed=h.step[keep],
                     spectrum=h.extra["spectrum"][keep],
                     sign_changes=h.extra["sign_changes"][keep], dist_v=h.extra["dist_v"][keep],
                     dist_g=h.extra["dist_g"][keep], diverged_at=h.diverged_at, history=h,
                     params=params)


def _check_run(params, X, y, eta, steps, log_every, observe_every, normalized):
    """The arguments of :func:`train`, checked (X, y non-empty, finite, of one length)."""
    X = check_inputs(X, check_params(params).v)
    y = checks.tensor("y", y, ndim=1)
    checks.same_length(X=X, y=y)
    if y.dtype != X.dtype or y.device != X.device:
        raise TypeError(f"y must have X's dtype and device ({X.dtype}, {X.device}), "
                        f"got {y.dtype} on {y.device}")
    eta, steps = checks.positive("eta", eta), checks.integer("steps", steps)
    log_every = checks.integer("log_every", log_every)
    if checks.integer("observe_every", observe_every) % log_every:
        raise ValueError(f"observe_every ({observe_every}) must be a multiple of "
                         f"log_every ({log_every})")
    checks.boolean("normalized", normalized)
    return eta, steps, log_every


def _start(modules):  # the initial parameters, stacked like the loop's: v (K, m, d), g (K, m)
    ps = [m.params() for m in modules]
    return torch.stack([p.v for p in ps]), torch.stack([p.g for p in ps])


def train(params: WNParams, X, y, eta, steps, normalized=True, log_every=1,
          observe_every=1) -> WNHistory:
    """Full-batch GD of size η on L = ½ Σ (f(x_i) − y_i)², through :func:`lib.train.train`.

    Args:
        params: the initialisation (:func:`init_wn`), finite; it is not modified.
        X: (n, d) finite inputs; y: (n,) finite targets, X's dtype.  eta: step size η > 0.
        steps: GD steps (int ≥ 1).  normalized: train (v, g); False trains w_k = g_k v_k/‖v_k‖.
        log_every: steps between records of the loss.
        observe_every: steps between records of Λ(t), sign changes and distances
            (a multiple of log_every; the last step is always recorded).
    Returns a :class:`WNHistory` (λ(Λ(t)), sign changes and distances at every record),
    cut at divergence (:func:`blow_up_step`), which it records in ``diverged_at``.
    """
    eta, steps, log_every = _check_run(params, X, y, eta, steps, log_every, observe_every,
                                       normalized)
    (model,) = _modules([params], normalized)
    config = _train.TrainConfig(steps=steps, eta=eta, loss="sse", log_every=log_every)
    observe = _observer(_start([model]), X, _as_stacked(normalized), observe_every, steps)
    h = _train.train(model, (X, y), config, bar=False, observe=observe)
    return _history(h, model.params(), observe_every, steps)


def train_batch(params_list, X, y, etas, steps, normalized=True, log_every=1,
                observe_every=1) -> list:
    """:func:`train` for K networks of one width at once (:func:`lib.train.fit` on a stack).

    ``params_list`` and ``etas`` are non-empty sequences with one entry per network (one
    width); returns one WNHistory each.
    """
    params_list, etas = _sequence("params_list", params_list), _sequence("etas", etas)
    etas = [checks.positive("etas", e) for e in etas]
    if len(params_list) != len(etas):
        raise ValueError(f"etas must hold one η per network: {len(params_list)} networks in "
                         f"params_list, {len(etas)} in etas")
    widths = {check_params(p, "params_list[i]").v.shape for p in params_list}
    if len(widths) > 1:
        raise ValueError(f"params_list must hold networks of one shape, got {sorted(widths)}")
    for p, eta in zip(params_list, etas):
        _check_run(p, X, y, eta, steps, log_every, observe_every, normalized)
    models = _modules(params_list, normalized)
    stack = _stack.from_models(models, device=X.device)
    configs = [_train.TrainConfig(steps=steps, eta=e, loss="sse", log_every=log_every)
               for e in etas]
    observe = _observer(_start(models), X, _as_stacked(normalized), observe_every, steps)
    hs = _train.fit(stack, (X, y), configs, bar=False, observe=observe)
    _stack.write_back(stack, models)
    return [_history(h, m.params(), observe_every, steps) for h, m in zip(hs, models)]


def _sequence(name, value) -> list:
    if isinstance(value, (str, bytes, torch.Tensor, np.ndarray, WNParams)) or \
            not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list (one entry per network), got "
                        f"{type(value).__name__}")
    value = list(value)
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value
