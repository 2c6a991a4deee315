"""Learning-rate schedules as per-step arrays, and their exponential equivalents.

Every function returns a float64 array ``etas`` of length ``steps``: ``etas[t]`` is the
learning rate η_t of the step that maps θ_t to θ_{t+1}, in PyTorch's SGD convention
(see :mod:`lib.train`). Pass one to the training loop as
``TrainConfig(eta=etas)``.

The exponential equivalents follow Li & Arora (2020): for a scale-invariant loss,
"constant η + weight decay λ + momentum γ" trains the same network functions as
"η̃_t = η α^{−2t−1}, no weight decay, momentum γ" (Theorems 2.1 and 2.9); step decay
becomes a tapered exponential schedule (TEXP, Theorem 2.12). :func:`texp_plus` is the
exact version for any schedule (TEXP++, Theorem 2.13); :func:`texp_correction` is what
TEXP leaves out at each phase entry (second order in λη).

Arguments are checked by name (:mod:`lib.checks`): η > 0 finite, λ ≥ 0, γ in [0, 1),
integer step counts ≥ 1. A schedule that would exceed float64 within the requested
steps is refused with a ValueError naming the arguments responsible (decided on the
logarithms before any rate is computed), never returned as inf.
"""

import math

import numpy as np

from lib import checks

LOG_MAX = math.log(np.finfo(np.float64).max)  # ≈ 709.78: e^LOG_MAX is float64's largest


_SKIP = object()  # an argument the function does not take (None is a bad value, not this)


def _hyper(eta=_SKIP, weight_decay=_SKIP, momentum=_SKIP):
    """η > 0, λ ≥ 0 and γ in [0, 1), each checked by name when given."""
    return (None if eta is _SKIP else checks.positive("eta", eta),
            None if weight_decay is _SKIP else checks.nonnegative("weight_decay", weight_decay),
            None if momentum is _SKIP else checks.fraction("momentum", momentum))


def _etas(etas) -> np.ndarray:
    """A schedule: a non-empty 1-D array of finite rates > 0."""
    return checks.positive_array("etas", etas, ndim=1)


_TOO_LONG = ("weight_decay and etas", "use a shorter schedule or a smaller λη")


def _refuse_overflow(log_rates, names: str, advice: str) -> None:
    """ValueError naming ``names`` if some e^{log_rates[t]} exceeds float64 (decided in logs)."""
    over = np.flatnonzero(np.asarray(log_rates) > LOG_MAX)
    if over.size:
        raise ValueError(f"{names}: the rate exceeds float64 at step {over[0]} "
                         f"(log of the rate {float(np.max(log_rates)):.6f} > {LOG_MAX:.6f}); {advice}")


def _finite(rates: np.ndarray, names: str, advice: str) -> np.ndarray:
    """``rates``, or the same ValueError if rounding at the very edge still overflowed."""
    if not np.all(np.isfinite(rates)):
        _refuse_overflow(np.where(np.isfinite(rates), 0.0, np.inf), names, advice)
    return rates


def _refuse_zero(rates, names: str) -> np.ndarray:
    """ValueError naming ``names`` if a rate underflows to 0 (e.g. factor**k below 1e-308)."""
    zero = np.flatnonzero(rates <= 0)
    if zero.size:
        raise ValueError(f"{names}: the rate underflows to 0 at step {zero[0]}")
    return rates


def exp_lr_alpha(eta: float, weight_decay: float, momentum: float = 0.0) -> float:
    """α of Theorem 2.9: the larger root of x² − (1 + γ − λη)x + γ = 0.

    Args:
        eta: constant learning rate η > 0.
        weight_decay: λ ≥ 0.
        momentum: γ in [0, 1).
    Real roots exist only when λη ≤ (1 − √γ)²; then α is in [√γ, 1]. For γ = 0 it is
    1 − λη (Theorem 2.1), which must be > 0.
    """
    eta, weight_decay, momentum = _hyper(eta, weight_decay, momentum)
    bound = (1 - math.sqrt(momentum)) ** 2
    if weight_decay * eta > bound or (momentum == 0 and weight_decay * eta >= 1):
        raise ValueError(
            f"weight_decay and eta: no real α > 0: need λη <= (1 − √γ)² = {bound:.4g} "
            f"(and < 1 when γ = 0), got λη = {weight_decay * eta:.4g} "
            f"(η={eta}, λ={weight_decay}, γ={momentum})")
    b = 1 + momentum - weight_decay * eta
    disc = b * b - 4 * momentum
    return (b + math.sqrt(max(disc, 0.0))) / 2


def exp_lr(eta: float, weight_decay: float, momentum: float, steps: int) -> np.ndarray:
    """(steps,) η̃_t = η α^{−2t−1}: the exponential equivalent of constant η with WD λ.

    Raises ValueError (naming weight_decay and steps) if η̃_t would exceed float64.
    """
    steps = checks.integer("steps", steps)
    alpha = exp_lr_alpha(eta, weight_decay, momentum)
    eta = float(eta)
    log_rate = math.log(eta) - (2.0 * np.arange(steps) + 1) * math.log(alpha)
    names, advice = "weight_decay and steps", f"α = {alpha:.6g}; use fewer steps or a smaller λη"
    _refuse_overflow(log_rate, names, advice)
    with np.errstate(over="ignore"):
        etas = eta * alpha ** (-2.0 * np.arange(steps) - 1)
    edge = ~np.isfinite(etas)  # α^{−2t−1} alone overflowed, η α^{−2t−1} (η < 1) does not
    etas[edge] = np.exp(log_rate[edge])
    return _finite(etas, names, advice)


def growth_per_epoch(eta: float, weight_decay: float, momentum: float,
                     steps_per_epoch: int) -> float:
    """Factor α^{−2·steps_per_epoch} by which :func:`exp_lr` grows over one epoch."""
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    alpha = exp_lr_alpha(eta, weight_decay, momentum)
    log_growth = -2.0 * steps_per_epoch * math.log(alpha)
    if log_growth > LOG_MAX:
        raise ValueError(f"weight_decay and steps_per_epoch: the growth per epoch "
                         f"e^{log_growth:.4g} exceeds float64 (α = {alpha:.6g})")
    return alpha ** (-2.0 * steps_per_epoch)


def equilibrium_ratio(eta: float, weight_decay: float, momentum: float = 0.0) -> float:
    """2ηλ/(1 + γ): mean ‖θ_{t+1} − θ_t‖² over mean ‖θ_t‖² once the norm has settled."""
    eta, weight_decay, momentum = _hyper(eta, weight_decay, momentum)
    ratio = 2 * eta * weight_decay / (1 + momentum)
    if not math.isfinite(ratio):
        raise ValueError(f"eta and weight_decay: 2ηλ/(1+γ) exceeds float64 (η={eta}, λ={weight_decay})")
    return ratio


def _milestones(milestones, steps: int) -> np.ndarray:
    """Strictly increasing integer steps in (0, steps)."""
    if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
        raise TypeError(f"milestones must be a sequence of integer steps, got "
                        f"{type(milestones).__name__} {milestones!r}")
    ms = [checks.integer("milestones", m, lo=1, hi=steps - 1) for m in milestones]
    if any(b <= a for a, b in zip(ms, ms[1:])):
        raise ValueError(f"milestones must be strictly increasing steps in (0, {steps}), got {ms}")
    return np.array(ms, dtype=int)


def step_decay(eta: float, steps: int, milestones=(), factor: float = 0.1) -> np.ndarray:
    """(steps,) η · factor^k, where k counts the milestones (step indices) passed.

    ``milestones``: strictly increasing integers in (0, steps); ``factor`` in (0, 1].
    """
    eta, _, _ = _hyper(eta)
    steps = checks.integer("steps", steps)
    ms = _milestones(milestones, steps)
    factor = checks.number("factor", factor, lo=0, hi=1, lo_open=True)
    k = np.searchsorted(ms, np.arange(steps), side="right")
    return _refuse_zero(eta * factor ** k.astype(float), "eta and factor")


def cosine(eta: float, steps: int, steps_per_epoch: int) -> np.ndarray:
    """(steps,) η (1 + cos(π e/E))/2, constant within epoch e of E = ⌈steps/steps_per_epoch⌉."""
    eta, _, _ = _hyper(eta)
    steps = checks.integer("steps", steps)
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    epochs = math.ceil(steps / steps_per_epoch)
    e = np.arange(steps) // steps_per_epoch
    return _refuse_zero(eta * (1 + np.cos(np.pi * e / epochs)) / 2, "eta and steps")


def _alphas(etas, weight_decay, momentum) -> np.ndarray:
    """α of every rate in ``etas`` (same arithmetic as :func:`exp_lr_alpha`), or a
    ValueError naming weight_decay and etas."""
    bound = (1 - math.sqrt(momentum)) ** 2
    worst = weight_decay * float(etas.max())
    if worst > bound or (momentum == 0 and worst >= 1):
        raise ValueError(f"weight_decay and etas: no real α > 0 for the largest rate: need "
                         f"λη <= (1 − √γ)² = {bound:.4g} (and < 1 when γ = 0), got "
                         f"λ·max(etas) = {worst:.4g}")
    b = 1 + momentum - weight_decay * etas
    return (b + np.sqrt(np.maximum(b * b - 4 * momentum, 0.0))) / 2


def _tapered(etas, weight_decay, momentum, entry_factor: bool, too_long=_TOO_LONG) -> np.ndarray:
    """The TEXP recursion; its logs are summed first so an overflow is refused, not returned."""
    alphas = _alphas(etas, weight_decay, momentum)
    new = np.concatenate([[False], etas[1:] != etas[:-1]])  # entering a new phase at t
    log_a = np.log(alphas)
    log_drop = np.log(etas) - np.log(np.concatenate([etas[:1], etas[:-1]])) if entry_factor else 0.0
    steps = np.where(new, log_drop - log_a - np.roll(log_a, 1), -2 * np.roll(log_a, 1))
    steps[0] = math.log(etas[0]) - log_a[0]
    _refuse_overflow(np.cumsum(steps), *too_long)
    out = np.empty_like(etas)
    out[0] = etas[0] / alphas[0]
    for t in range(1, etas.size):
        if etas[t] == etas[t - 1]:
            out[t] = out[t - 1] / alphas[t - 1] ** 2
        else:  # entering a new phase: new growth rate, and the drop of η itself (TEXP)
            drop = etas[t] / etas[t - 1] if entry_factor else 1.0
            out[t] = out[t - 1] * drop / (alphas[t] * alphas[t - 1])
    return _finite(out, *too_long)


def texp(etas, weight_decay: float, momentum: float) -> np.ndarray:
    """TEXP (Theorem 2.12): the tapered exponential equivalent of a piecewise-constant
    schedule ``etas`` (e.g. :func:`step_decay`) with weight decay λ and momentum γ.

    Within a phase of rate η_I the rate grows by α_I^{−2} per step; on entering phase I
    it is multiplied by (η_I/η_{I−1}) / (α_I α_{I−1}). Exact up to a one-time correction
    at each phase entry, second order in λη (:func:`texp_correction`); :func:`texp_plus`
    is exact.
    ``etas``: a 1-D array of finite rates > 0. Raises ValueError (naming weight_decay and
    etas) if the result would exceed float64.
    """
    _, weight_decay, momentum = _hyper(_SKIP, weight_decay, momentum)
    return _tapered(_etas(etas), weight_decay, momentum, entry_factor=True)


def texp_minus(etas, weight_decay: float, momentum: float) -> np.ndarray:
    """TEXP−− (Li & Arora, section 4.1): TEXP without the drop η_I/η_{I−1} at phase entry."""
    _, weight_decay, momentum = _hyper(_SKIP, weight_decay, momentum)
    return _tapered(_etas(etas), weight_decay, momentum, entry_factor=False)


def exp_cosine(eta: float, weight_decay: float, momentum: float, steps: int,
               steps_per_epoch: int) -> np.ndarray:
    """TEXP of :func:`cosine` (section 4.2): every epoch is a phase.

    Raises ValueError (naming weight_decay and steps) if the result would exceed float64.
    """
    exp_lr_alpha(eta, weight_decay, momentum)  # η is the largest rate: refused by name here
    etas = cosine(eta, steps, steps_per_epoch)
    return _tapered(etas, float(weight_decay), float(momentum), entry_factor=True,
                    too_long=("weight_decay and steps", "use fewer steps or a smaller λη"))


def _decays(weight_decay, steps: int) -> np.ndarray:
    """(steps,) λ_t: one λ >= 0 for every step, or a 1-D array of ``steps`` finite values
    (of either sign: :func:`texp_correction` can take a step's decay below 0)."""
    if isinstance(weight_decay, (list, tuple, np.ndarray)):
        lam = checks.array("weight_decay", weight_decay, ndim=1)
        if lam.size != steps:
            raise ValueError(f"weight_decay per step must hold {steps} values (one per rate "
                             f"of etas), got {lam.size}")
        return lam
    return np.full(steps, checks.nonnegative("weight_decay", weight_decay))


def texp_plus(etas, weight_decay, momentum: float, alpha0: float = 1.0):
    """TEXP++ (Theorem 2.13): the exact no-WD equivalent of any schedule ``etas`` with WD λ.

    With a_0 = ``alpha0`` and a_{t+1} = 1 − η_t λ_t + γ (η_t/η_{t−1})(1 − 1/a_t), the scales
    ρ_t = 1/(a_1 ⋯ a_t) give θ̃_t = ρ_t θ_t and η̃_t = η_t ρ_t ρ_{t+1}.
    ``weight_decay``: one λ >= 0, or an array of one finite λ_t per step (the paper's
    Theorem B.6 lets λ vary). Returns ``(etas_tilde, rho)``, shapes (steps,) and (steps + 1,).
    With ``alpha0 = 1`` both processes start with zero momentum; with the α of the first
    rate (:func:`exp_lr_alpha`) run B starts with Theorem 2.9's buffer ṽ_0. ``alpha0`` in
    (0, 1]; raises ValueError (naming weight_decay and etas) if a_t <= 0 or η̃ would
    exceed float64.
    """
    _, _, momentum = _hyper(_SKIP, _SKIP, momentum)
    etas = _etas(etas)
    decays = _decays(weight_decay, etas.size)
    alpha0 = checks.number("alpha0", alpha0, lo=0, hi=1, lo_open=True)
    a = np.empty(etas.size + 1)
    a[0] = alpha0
    prev = etas[0]  # η_{−1} = η_0: with zero initial momentum its value does not matter
    for t, (eta, lam) in enumerate(zip(etas, decays)):
        a[t + 1] = 1 - eta * lam + momentum * (eta / prev) * (1 - 1 / a[t])
        if not a[t + 1] > 0:
            raise ValueError(f"weight_decay and etas: TEXP++ scale a_{t + 1} = {a[t + 1]:.3g} "
                             f"<= 0 (λη_t = {eta * lam:.3g} too large)")
        prev = eta
    log_rho = np.concatenate([[0.0], -np.cumsum(np.log(a[1:]))])
    _refuse_overflow(np.maximum(log_rho[1:], np.log(etas) + log_rho[:-1] + log_rho[1:]), *_TOO_LONG)
    rho = np.concatenate([[1.0], np.cumprod(1 / a[1:])])
    return _finite(etas * rho[:-1] * rho[1:], *_TOO_LONG), _finite(rho, *_TOO_LONG)


def texp_correction(etas, weight_decay: float, momentum: float) -> np.ndarray:
    """(steps,) e_t: what TEXP leaves out on entering a phase at step t (0 elsewhere).

    TEXP (Theorem 2.12) takes the TEXP++ scale a_{t+1} at a phase entry to be the new
    phase's α_I; the recursion of :func:`texp_plus`, at α_{I−1} before the entry, gives
    1 − η_t λ + γ (η_t/η_{t−1})(1 − 1/α_{I−1}) instead. ``e_t`` is that value minus α_I.
    Its first order in λη cancels: e_t = −γλ²η_t(η_{t−1} − η_t)/(1 − γ)³ · (1 + q + …),
    q = (1 + γ)(1 + η_t/η_{t−1}) λη_{t−1}/(1 − γ)². TEXP is exactly TEXP++ whose weight
    decay at the first step of each phase is λ + e_t/η_t, started at α_0:
    ``texp(etas, λ, γ) == texp_plus(etas, λ + e/etas, γ, exp_lr_alpha(etas[0], λ, γ))[0]``.
    Arguments as :func:`texp`.
    """
    _, weight_decay, momentum = _hyper(_SKIP, weight_decay, momentum)
    etas = _etas(etas)
    alphas = _alphas(etas, weight_decay, momentum)
    prev, a_prev = np.roll(etas, 1), np.roll(alphas, 1)
    entry = etas != prev
    entry[0] = False
    exact = 1 - etas * weight_decay + momentum * (etas / prev) * (1 - 1 / a_prev)
    return np.where(entry, exact - alphas, 0.0)
