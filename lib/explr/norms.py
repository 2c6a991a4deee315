"""The weight norm under SGD with momentum (Li & Arora, 2020, appendix C).

Scale invariance makes the gradient orthogonal to the weights, so the norm obeys exact
recursions: its equilibrium under weight decay (:func:`equilibrium`, :func:`norm_drift`)
and, without weight decay, Theorem C.1's near-monotone growth (:func:`monotone_bound`).
"""

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from lib import checks, stack, train
from lib.explr import networks, schedules


def _flat(params):  # name -> (K, ...) to (K, P)
    return torch.cat([p.detach().flatten(1) for p in params.values()], 1)


def _points(points) -> list:
    """A non-empty list of (η > 0, λ >= 0, γ in [0, 1)) triples."""
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence) or not points:
        raise (ValueError if isinstance(points, Sequence) and not points else TypeError)(
            f"points must be a non-empty list of (eta, weight_decay, momentum), got {points!r:.60}")
    out = []
    for i, p in enumerate(points):
        if not (isinstance(p, (tuple, list)) and len(p) == 3):
            raise TypeError(f"points[{i}] must be (eta, weight_decay, momentum), got {p!r:.60}")
        out.append((checks.positive(f"points[{i}] eta", p[0]),
                    checks.nonnegative(f"points[{i}] weight_decay", p[1]),
                    checks.fraction(f"points[{i}] momentum", p[2])))
    return out


def equilibrium(data, sizes, points, steps, batch_size, seed=0) -> list:
    """Measure mean‖θ_{t+1} − θ_t‖² / mean‖θ_t‖² over the second half of SGD runs.

    ``points``: list of (η, λ, γ). All are trained at once on ``ScaleInvariantMLP(sizes)``,
    in the floating dtype of ``data``.
    Returns one dict per point: measured ratio (NaN if the run diverged, with its
    diverged_at step), predicted 2ηλ/(1+γ), ``drift`` (:func:`norm_drift`: what the norm's
    drift over the window adds, exactly measured/predicted − 1), and the per-step series
    ``step_sq`` and ``norm_sq`` (T,).
    """
    X, y = networks.labelled_data("data", data)
    sizes, points = networks.layer_sizes("sizes", sizes, min_len=3), _points(points)
    steps, batch_size = checks.integer("steps", steps), (None if batch_size is None else checks.integer("batch_size", batch_size, hi=len(y)))
    seed = checks.integer("seed", seed, lo=0, hi=checks.SEED_MAX - len(points) + 1)
    models = [networks.ScaleInvariantMLP(sizes, seed + k).to(X.dtype) for k in range(len(points))]
    networks.check_input(models[0], X, "data", y)
    s = stack.from_models(models)
    base = train.TrainConfig(steps=steps, batch_size=batch_size, log_every=1, seed=seed)
    configs = [replace(base, eta=e, weight_decay=l, momentum=g) for e, l, g in points]
    prev = {}

    def observe(params, t):
        theta = _flat(params)
        step_sq = (theta - prev["theta"]).pow(2).sum(1) if prev else torch.full_like(theta[:, 0], math.nan)
        prev["theta"] = theta
        return {"step_sq": step_sq, "norm_sq": theta.pow(2).sum(1)}

    hists = train.fit(s, (X, y), configs, bar=False, observe=observe)
    out = []
    for (e, l, g), h in zip(points, hists):
        k = steps // 2  # step_sq[t] = ‖θ_t − θ_{t−1}‖², norm_sq[t] = ‖θ_t‖²
        measured = (math.nan if h.diverged else
                    np.mean(h.extra["step_sq"][k + 1:]) / np.mean(h.extra["norm_sq"][k:-1]))
        drift = math.nan if h.diverged or steps < 2 or l == 0 else \
            norm_drift(h.extra["step_sq"], h.extra["norm_sq"], k, e, l, g)
        out.append({"eta": e, "weight_decay": l, "momentum": g, "measured": float(measured),
                    "predicted": schedules.equilibrium_ratio(e, l, g), "drift": drift,
                    "diverged_at": h.diverged_at, "step_sq": h.extra["step_sq"],
                    "norm_sq": h.extra["norm_sq"]})
    return out


def norm_drift(step_sq, norm_sq, start: int, eta: float, weight_decay: float,
               momentum: float) -> float:
    """Measured over predicted equilibrium ratio, minus 1, from the norm's drift alone.

    With D_t = ‖θ_{t+1} − θ_t‖², R_t = ‖θ_t‖², constant η and ⟨θ_t, ∇L⟩ = 0, the momentum
    recursion gives exactly (appendix C of Li & Arora): over t = k..T−1,
    (1 + γ)ΣD_t − 2ηλΣR_t = (R_T − R_k) − γ(R_{T−1} − R_{k−1}) + γ(D_{T−1} − D_{k−1}).
    Returns the right side over 2ηλΣR_t. ``step_sq[t]`` = D_{t−1} and ``norm_sq[t]`` = R_t
    > 0 for t = 0..T (as :func:`equilibrium` records them); ``start`` = k in [1, T − 1];
    η > 0, λ > 0, γ in [0, 1).
    """
    R = checks.positive_array("norm_sq", norm_sq, ndim=1)
    D = checks.array("step_sq", step_sq, ndim=1, finite=False)[1:]  # D[t] = D_t, t = 0..T−1
    checks.same_length(step_sq=step_sq, norm_sq=R)
    T = len(R) - 1
    k = checks.integer("start", start, lo=1, hi=max(T - 1, 1))
    eta, momentum = checks.positive("eta", eta), checks.fraction("momentum", momentum)
    lam = checks.positive("weight_decay", weight_decay)
    if T < 2 or not np.all(np.isfinite(D)):
        raise ValueError(f"step_sq must hold finite steps after its first entry, over at least 2 "
                         f"steps, got {len(D)}")
    boundary = (R[T] - R[k]) - momentum * (R[T - 1] - R[k - 1]) + momentum * (D[T - 1] - D[k - 1])
    return float(boundary / (2 * eta * lam * np.sum(R[k:T])))


def monotone_bound(etas, momentum: float, start_dot: float) -> np.ndarray:
    """(T,) Theorem C.1's lower bound on R_{t+1} − R_t, R_t = ‖θ_t‖², without weight decay.

    With no weight decay and ⟨θ_t, ∇L⟩ = 0, Q_t = (R_{t+1} − R_t)/η_t obeys
    Q_t = γQ_{t−1} + D_t/η_t + γD_{t−1}/η_{t−1} (D_t = ‖θ_{t+1} − θ_t‖², appendix C of Li &
    Arora), and Q_0 = D_0/η_0 − 2γ⟨θ_0, v_0⟩; so R_{t+1} − R_t ≥ −2γ^{t+1} η_t ⟨θ_0, v_0⟩:
    from rest the norm never shrinks, and a start pointing inwards (Theorem 2.9's ṽ_0)
    makes it grow at every step. ``etas``: the rates η_t (T,), > 0; ``momentum``: γ in
    [0, 1); ``start_dot``: ⟨θ_0, v_0⟩, finite (0 from rest).
    """
    etas = checks.positive_array("etas", etas, ndim=1)
    gamma = checks.fraction("momentum", momentum)
    dot = checks.number("start_dot", start_dot)
    return -2.0 * gamma ** (np.arange(len(etas)) + 1.0) * etas * dot


def monotone_slack(norm_sq, etas, momentum: float, start_dot: float) -> np.ndarray:
    """(T,) (R_{t+1} − R_t − bound_t)/R_t: how far each step of a run clears
    :func:`monotone_bound` (>= 0 in exact arithmetic, for a run without weight decay).

    ``norm_sq``: R_t for t = 0..T (T + 1,), finite and > 0; ``etas``: the T rates used;
    ``momentum``, ``start_dot`` as in :func:`monotone_bound`.
    """
    R = checks.positive_array("norm_sq", norm_sq, ndim=1)
    etas = checks.positive_array("etas", etas, ndim=1)
    if len(R) != len(etas) + 1:
        raise ValueError(f"norm_sq must hold one more entry than etas (R_0..R_T), got "
                         f"{len(R)} and {len(etas)}")
    return (np.diff(R) - monotone_bound(etas, momentum, start_dot)) / R[:-1]
