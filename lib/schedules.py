"""Learning-rate schedules as per-step arrays, and their exponential equivalents.

Every function returns a float64 array ``lrs`` of length ``steps``: ``lrs[t]`` is the
learning rate η_t of the step that maps θ_t to θ_{t+1}, in PyTorch's SGD convention
(see :mod:`lib.train`). Pass one to the training loop as
``TrainConfig(lr=1.0, schedule=lrs)``.

The exponential equivalents follow Li & Arora (2020): for a scale-invariant loss,
"constant η + weight decay λ + momentum γ" trains the same network functions as
"η̃_t = η α^{−2t−1}, no weight decay, momentum γ" (Theorems 2.1 and 2.9); step decay
becomes a tapered exponential schedule (TEXP, Theorem 2.12). :func:`texp_plus` is the
exact version for any schedule (TEXP++, Theorem 2.13).
"""

import math

import numpy as np


def _check(eta=None, weight_decay=None, momentum=None, steps=None):
    if eta is not None and not (np.all(np.isfinite(eta)) and np.all(np.asarray(eta) > 0)):
        raise ValueError(f"learning rate η must be finite and > 0, got {eta!r}")
    if weight_decay is not None and not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight decay λ must be finite and >= 0, got {weight_decay!r}")
    if momentum is not None and not (0 <= momentum < 1):
        raise ValueError(f"momentum γ must be in [0, 1), got {momentum!r}")
    if steps is not None and not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def exp_lr_alpha(eta: float, weight_decay: float, momentum: float = 0.0) -> float:
    """α of Theorem 2.9: the larger root of x² − (1 + γ − λη)x + γ = 0.

    Args:
        eta: constant learning rate η > 0.
        weight_decay: λ ≥ 0.
        momentum: γ in [0, 1).
    Real roots exist only when λη ≤ (1 − √γ)²; then α is in [√γ, 1]. For γ = 0 it is
    1 − λη (Theorem 2.1).
    """
    _check(eta, weight_decay, momentum)
    b = 1 + momentum - weight_decay * eta
    disc = b * b - 4 * momentum
    if weight_decay * eta > (1 - math.sqrt(momentum)) ** 2 or disc < 0:
        raise ValueError(
            f"no real α: need λη <= (1 − √γ)² = {(1 - math.sqrt(momentum)) ** 2:.4g}, "
            f"got λη = {weight_decay * eta:.4g} (η={eta}, λ={weight_decay}, γ={momentum})")
    return (b + math.sqrt(max(disc, 0.0))) / 2


def exp_lr(eta: float, weight_decay: float, momentum: float, steps: int) -> np.ndarray:
    """(steps,) η̃_t = η α^{−2t−1}: the exponential equivalent of constant η with WD λ."""
    _check(steps=steps)
    alpha = exp_lr_alpha(eta, weight_decay, momentum)
    log_last = math.log(eta) - (2.0 * steps - 1) * math.log(alpha)
    if log_last > 700:  # float64 overflows near e^709
        raise ValueError(f"η̃ would exceed float64's range within {steps} steps "
                         f"(α = {alpha:.4g}); use fewer steps or a smaller λη")
    return eta * alpha ** (-2.0 * np.arange(steps) - 1)


def growth_per_epoch(eta: float, weight_decay: float, momentum: float,
                     steps_per_epoch: int) -> float:
    """Factor α^{−2·steps_per_epoch} by which :func:`exp_lr` grows over one epoch."""
    _check(steps=steps_per_epoch)
    return exp_lr_alpha(eta, weight_decay, momentum) ** (-2.0 * steps_per_epoch)


def equilibrium_ratio(eta: float, weight_decay: float, momentum: float = 0.0) -> float:
    """2ηλ/(1 + γ): mean ‖θ_{t+1} − θ_t‖² over mean ‖θ_t‖² once the norm has settled."""
    _check(eta, weight_decay, momentum)
    return 2 * eta * weight_decay / (1 + momentum)


def step_decay(eta: float, steps: int, milestones=(), factor: float = 0.1) -> np.ndarray:
    """(steps,) η · factor^k, where k counts the milestones (step indices) passed."""
    _check(eta, steps=steps)
    milestones = sorted(int(m) for m in milestones)
    if any(not 0 < m < steps for m in milestones) or len(set(milestones)) != len(milestones):
        raise ValueError(f"milestones must be distinct steps in (0, {steps}), got {milestones}")
    if not 0 < factor <= 1:
        raise ValueError(f"factor must be in (0, 1], got {factor!r}")
    k = np.searchsorted(np.array(milestones, dtype=int), np.arange(steps), side="right")
    return eta * factor ** k.astype(float)


def cosine(eta: float, steps: int, steps_per_epoch: int) -> np.ndarray:
    """(steps,) η (1 + cos(π e/E))/2, constant within epoch e of E = ⌈steps/steps_per_epoch⌉."""
    _check(eta, steps=steps)
    _check(steps=steps_per_epoch)
    epochs = math.ceil(steps / steps_per_epoch)
    e = np.arange(steps) // steps_per_epoch
    return eta * (1 + np.cos(np.pi * e / epochs)) / 2


def _phases(lrs):
    lrs = np.asarray(lrs, dtype=float)
    if lrs.ndim != 1 or lrs.size == 0:
        raise ValueError(f"lrs must be a non-empty 1-D array of learning rates, got shape {lrs.shape}")
    _check(lrs)
    return lrs


def _tapered(lrs, weight_decay, momentum, entry_factor: bool) -> np.ndarray:
    lrs = _phases(lrs)
    alphas = np.array([exp_lr_alpha(float(e), weight_decay, momentum) for e in lrs])
    out = np.empty_like(lrs)
    out[0] = lrs[0] / alphas[0]
    for t in range(1, lrs.size):
        if lrs[t] == lrs[t - 1]:
            out[t] = out[t - 1] / alphas[t - 1] ** 2
        else:  # entering a new phase: new growth rate, and the drop of η itself (TEXP)
            drop = lrs[t] / lrs[t - 1] if entry_factor else 1.0
            out[t] = out[t - 1] * drop / (alphas[t] * alphas[t - 1])
    return out


def texp(lrs, weight_decay: float, momentum: float) -> np.ndarray:
    """TEXP (Theorem 2.12): the tapered exponential equivalent of a piecewise-constant
    schedule ``lrs`` (e.g. :func:`step_decay`) with weight decay λ and momentum γ.

    Within a phase of rate η_I the rate grows by α_I^{−2} per step; on entering phase I
    it is multiplied by (η_I/η_{I−1}) / (α_I α_{I−1}). Exact up to a one-time momentum
    correction at each phase boundary (second order in λη); see :func:`texp_plus`.
    """
    _check(weight_decay=weight_decay, momentum=momentum)
    return _tapered(lrs, weight_decay, momentum, entry_factor=True)


def texp_minus(lrs, weight_decay: float, momentum: float) -> np.ndarray:
    """TEXP−− (Li & Arora, section 4.1): TEXP without the drop η_I/η_{I−1} at phase entry."""
    _check(weight_decay=weight_decay, momentum=momentum)
    return _tapered(lrs, weight_decay, momentum, entry_factor=False)


def exp_cosine(eta: float, weight_decay: float, momentum: float, steps: int,
               steps_per_epoch: int) -> np.ndarray:
    """TEXP of :func:`cosine` (section 4.2): every epoch is a phase."""
    return texp(cosine(eta, steps, steps_per_epoch), weight_decay, momentum)


def texp_plus(lrs, weight_decay: float, momentum: float, alpha0: float = 1.0):
    """TEXP++ (Theorem 2.13): the exact no-WD equivalent of any schedule ``lrs`` with WD λ.

    With a_0 = ``alpha0`` and a_{t+1} = 1 − η_t λ + γ (η_t/η_{t−1})(1 − 1/a_t), the scales
    ρ_t = 1/(a_1 ⋯ a_t) give θ̃_t = ρ_t θ_t and η̃_t = η_t ρ_t ρ_{t+1}.
    Returns ``(lrs_tilde, rho)`` with shapes (steps,) and (steps + 1,).
    With ``alpha0 = 1`` both processes start with zero momentum.
    """
    _check(weight_decay=weight_decay, momentum=momentum)
    lrs = _phases(lrs)
    if not 0 < alpha0 <= 1:
        raise ValueError(f"alpha0 must be in (0, 1], got {alpha0!r}")
    a = np.empty(lrs.size + 1)
    a[0] = alpha0
    prev = lrs[0]  # η_{−1} = η_0: with zero initial momentum its value does not matter
    for t, eta in enumerate(lrs):
        a[t + 1] = 1 - eta * weight_decay + momentum * (eta / prev) * (1 - 1 / a[t])
        if a[t + 1] <= 0:
            raise ValueError(f"TEXP++ scale a_{t + 1} = {a[t + 1]:.3g} <= 0: λη too large")
        prev = eta
    rho = np.concatenate([[1.0], np.cumprod(1 / a[1:])])
    return lrs * rho[:-1] * rho[1:], rho
