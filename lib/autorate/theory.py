"""Auto rate-tuning by batch normalisation (Arora, Li & Lyu 2019): the theory's objects.

The chapter's networks, gradient descent on ``w`` beside its adaptive form on the sphere
(Theorem 2.5), the norm identities (Lemma 2.4, with and without weight decay),
gradient-norm summaries and the schedules of the convergence theorems. The training experiments built on these live in
:mod:`lib.autorate.experiments`; every training run goes through :mod:`lib.train`. The
scale-invariance check on a real network is shared: :mod:`lib.invariance`.

All scale-invariant weights (parameter group ``w``) are treated as ONE vector w: scaling
every normalised layer by the same c > 0 leaves the loss unchanged, so the paper's
results hold for w as a whole, with ‖w‖² the group's total squared norm, v = w/‖w‖ and
the effective learning rate η_w/‖w‖².
"""

import copy
from collections.abc import Mapping

import numpy as np
import torch

from lib import checks, invariance, models, stack, train


class PlainMLP(models.MLP):
    """The MLP without normalisation, its hidden layers in group ``w`` and the head in ``g``,
    so that η_w and η_g act on the same layers as in the normalised network.

    ``sizes``: at least two integer widths >= 1; ``activation``: one of ``models.ACTIVATIONS``.
    """

    def __init__(self, sizes, activation: str = "softplus"):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"sizes must be a list of integer widths, got {sizes!r}")
        sizes = [checks.integer("sizes", s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least two widths, got {sizes}")
        super().__init__(sizes, norm="none", activation=_name("activation", activation,
                                                              models.ACTIVATIONS))

    def groups(self) -> dict:
        return models.split_groups(self, list(self.hidden.parameters()))


def _name(name: str, value, options) -> str:
    """One of the names ``options`` (TypeError for a non-string, ValueError for others)."""
    return checks.choice(name, str(checks.string(name, value)), options)


def make_mlp(seed=0, width=100, depth=2, norm="bn_smooth", activation="softplus",
             init_scale=1.0, n_in=784, n_out=10) -> torch.nn.Module:
    """A seeded MLP n_in → width (× depth) → n_out, its group ``w`` scaled by ``init_scale``.

    Args:
        seed: initialisation seed, an integer in [0, 2**63) (the global RNG is left as it was).
        width, depth, n_in, n_out: integers >= 1.
        norm: "bn_smooth" (exactly scale-invariant BN), "bn" or "none" (:class:`PlainMLP`).
        activation: "softplus", "relu" or "tanh".
        init_scale: g₀ > 0, the factor on the initial scale-invariant weights.
    """
    seed = checks.seed("seed", seed)
    width, depth = checks.integer("width", width), checks.integer("depth", depth)
    n_in, n_out = checks.integer("n_in", n_in), checks.integer("n_out", n_out)
    norm = _name("norm", norm, models.NORMS)
    activation = _name("activation", activation, models.ACTIVATIONS)
    init_scale = checks.positive("init_scale", init_scale)
    sizes = (n_in,) + (width,) * depth + (n_out,)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = (PlainMLP(sizes, activation=activation) if norm == "none"
                 else models.MLP(sizes, norm=norm, activation=activation))
    with torch.no_grad():
        for p in model.groups()["w"]:
            p.mul_(init_scale)
    return model


def _sq(tensors) -> torch.Tensor:
    return sum(t.pow(2).sum() for t in tensors)


def _on_sphere(model, params):
    """(params with group w divided by its norm, ‖w‖²): the point (V; g) and G."""
    w = stack.group_names(model)["w"]  # unchecked: a GD iterate may be non-finite
    G = _sq([params[n] for n in w])
    return {n: p / G.sqrt() if n in w else p.detach().clone() for n, p in params.items()}, G


def _sphere_step(model, params, G, eta_w, eta_g, X, y, loss):
    """One step of Theorem 2.5 from (V; g) = ``params`` and G; returns (loss, params, G)."""
    names = stack.group_names(model)
    w, g = names["w"], names.get("g", [])
    value, grads = invariance.loss_and_grads(model, params, X, y, loss)
    stepped = {n: params[n] - eta_w / G * grads[n] for n in w}
    norm = _sq(stepped.values()).sqrt()
    new = {n: p / norm for n, p in stepped.items()}
    new.update({n: params[n] - eta_g * grads[n] for n in g})
    # eta_w * eta_w, not eta_w**2: a huge rate overflows to inf instead of raising
    return value, new, G + eta_w * eta_w / G * _sq([grads[n] for n in w])


def _max_gap(a: dict, b: dict) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a)


def sphere_vs_gd(model, data, eta_w, eta_g, steps, loss="cross_entropy") -> dict:
    """Plain GD on w (through :func:`lib.train.train`) beside Theorem 2.5's iteration.

    Returns arrays over t = 0..T: ``loss_gd``, ``loss_sphere``, ``norm_sq`` (‖w_t‖² of GD),
    ``G``, ``path_gap`` (largest difference between the sphere iterate (V_t; g_t) and
    GD's (w_t/‖w_t‖; g_t)) and, over t = 1..T, ``step_gap`` (the same after ONE sphere
    step from GD's own w_{t−1}: the per-step equivalence, free of accumulated round-off).
    If GD's loss becomes non-finite at step t, ``diverged_at`` is t and the arrays are NaN
    from there on (else ``diverged_at`` is −1). ``model`` is left unchanged.
    ``eta_w``, ``eta_g`` > 0; ``steps`` an integer >= 1; ``loss`` one of ``train.LOSSES``.
    """
    eta_w, eta_g = checks.positive("eta_w", eta_w), checks.positive("eta_g", eta_g)
    steps = checks.integer("steps", steps)
    X, y = invariance.check_model_data(model, data, loss)
    net = copy.deepcopy(model)
    config = train.TrainConfig(steps=1, eta={"w": eta_w, "g": eta_g}, loss=loss)
    params, G = _on_sphere(net, dict(net.named_parameters()))
    out = {k: [] for k in ("loss_gd", "loss_sphere", "norm_sq", "G", "path_gap", "step_gap")}
    diverged_at = -1
    for t in range(steps + 1):
        gd_point, gd_G = _on_sphere(net, dict(net.named_parameters()))
        out["norm_sq"].append(gd_G.item()), out["G"].append(G.item())
        out["path_gap"].append(_max_gap(gd_point, params))
        if t == steps:
            out["loss_sphere"].append(invariance.loss_and_grads(net, params, X, y, loss)[0].item())
            now = dict(net.named_parameters())
            out["loss_gd"].append(invariance.loss_and_grads(net, now, X, y, loss)[0].item())
            break
        value, params, G = _sphere_step(net, params, G, eta_w, eta_g, X, y, loss)
        _, one, _ = _sphere_step(net, gd_point, gd_G, eta_w, eta_g, X, y, loss)
        hist = train.train(net, (X, y), config, bar=False)
        out["loss_sphere"].append(value.item())
        if hist.diverged:  # a result, not an error: the rest of the record stays NaN
            diverged_at = t
            break
        out["loss_gd"].append(hist.loss[0])
        out["step_gap"].append(_max_gap(_on_sphere(net, dict(net.named_parameters()))[0], one))
    padded = {k: _pad(v, steps + (k != "step_gap")) for k, v in out.items()}
    return {**padded, "diverged_at": diverged_at}


def _pad(values: list, length: int) -> np.ndarray:
    return np.r_[np.asarray(values, dtype=float), np.full(length - len(values), np.nan)]


_RECORD = ("weight_norm_sq_w", "grad_norm_sq_w", "grad_norm_sq_g")


def _measured(name: str, values) -> np.ndarray:
    """Recorded squared norms: an array of numbers >= 0 (NaN, after a divergence, allowed)."""
    values = checks.array(name, values, finite=False, nonempty=False)
    if np.any(values < 0):
        raise ValueError(f"{name} must hold squared norms >= 0, got min {np.nanmin(values):g}")
    return values


def intrinsic_grad_sq(record) -> np.ndarray:
    """‖∇L(V_t; g_t)‖² = ‖w_t‖² ‖∇_w L‖² + ‖∇_g L‖² (Lemma 2.2: ∇_v L = ‖w‖ ∇_w L).

    ``record``: a :class:`lib.train.History` or the ``metrics`` of a sweep (arrays with
    ``weight_norm_sq_w`` (..., T, n_tensors), ``grad_norm_sq_w`` and ``grad_norm_sq_g`` (..., T)).
    NaN (a step after a divergence) stays NaN.
    """
    if isinstance(record, train.History):  # a missing group contributes nothing
        n = len(record.step)
        record = {"weight_norm_sq_w": record.weight_norm_sq.get("w", np.zeros((n, 0))),
                  "grad_norm_sq_w": record.grad_norm_sq.get("w", np.zeros(n)),
                  "grad_norm_sq_g": record.grad_norm_sq.get("g", np.zeros(n))}
    if not isinstance(record, Mapping):
        raise TypeError(f"record must be a lib.train.History or a sweep's metrics (a dict), "
                        f"got {type(record).__name__}")
    missing = [k for k in _RECORD if k not in record]
    if missing:
        raise ValueError(f"record lacks {missing}: it needs {list(_RECORD)}")
    wsq, gw, gg = (_measured(f"record[{k!r}]", record[k]) for k in _RECORD)
    if wsq.ndim < 2 or wsq.shape[:-1] != gw.shape or gw.shape != gg.shape:
        raise ValueError(f"record's shapes do not match: weight norms {wsq.shape} (need "
                         f"(..., T, n)), gradients {gw.shape} and {gg.shape}")
    return wsq.sum(-1) * gw + gg


def _axis(axis, name: str, values: np.ndarray) -> int:
    """``axis`` of ``values`` (an integer in [−ndim, ndim)), which must not be empty along it."""
    if values.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a single number")
    axis = checks.integer("axis", axis, lo=-values.ndim, hi=values.ndim - 1)
    if values.shape[axis] == 0:
        raise ValueError(f"{name} must have at least one value along axis {axis}, got shape "
                         f"{values.shape}")
    return axis


def running_min(values, axis=-1) -> np.ndarray:
    """min_{t<T} values_t for every T along ``axis`` (a NaN stays NaN from there on).

    ``values``: an array of numbers, not empty along ``axis`` (an integer).
    """
    values = checks.array("values", values, finite=False, nonempty=False)
    axis = _axis(axis, "values", values)
    return np.minimum.accumulate(values, axis=axis)


def _broadcast(**arrays) -> None:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        raise ValueError(f"{' and '.join(arrays)} must broadcast together, got {shapes}") from None


def _nonneg_array(name: str, values) -> np.ndarray:
    values = checks.array(name, values)
    if np.any(values < 0):
        raise ValueError(f"{name} must hold numbers >= 0, got min {values.min():g}")
    return values


def next_norm_sq(norm_sq, grad_sq, eta, weight_decay=0.0) -> np.ndarray:
    """‖w_{t+1}‖² predicted from step t: (1 − ηλ)²‖w_t‖² + η²‖∇_w L‖² (Lemma 2.4 with decay).

    Exact for a scale-invariant w, since ⟨w, ∇_w L⟩ = 0. Arguments broadcast: recorded
    ``norm_sq``, ``grad_sq`` >= 0 (NaN after a divergence stays NaN), ``eta`` > 0 and
    ``weight_decay`` >= 0 finite.
    """
    norm_sq, grad_sq = _measured("norm_sq", norm_sq), _measured("grad_sq", grad_sq)
    eta = checks.positive_array("eta", eta)
    weight_decay = _nonneg_array("weight_decay", weight_decay)
    _broadcast(norm_sq=norm_sq, grad_sq=grad_sq, eta=eta, weight_decay=weight_decay)
    with np.errstate(over="ignore"):  # an overflow is an honest inf
        return (1 - eta * weight_decay) ** 2 * norm_sq + eta**2 * grad_sq


def constant_gradient_norm_sq(G0, eta, grad_v_sq, steps) -> np.ndarray:
    """G_t, t = 0..steps, from G_{t+1} = G_t + η²‖∇_v L‖²/G_t with ‖∇_v L‖² held fixed.

    ``G0``, ``eta``, ``grad_v_sq``: finite numbers > 0; ``steps``: an integer >= 1.
    """
    G0, eta = checks.positive("G0", G0), np.float64(checks.positive("eta", eta))
    grad_v_sq, steps = checks.positive("grad_v_sq", grad_v_sq), checks.integer("steps", steps)
    G = [np.float64(G0)]
    with np.errstate(over="ignore"):  # an overflow is an honest inf
        for _ in range(steps):
            G.append(G[-1] + eta / G[-1] * eta * grad_v_sq)  # no inf/inf once G is inf
    return np.array(G)


def equilibrium_effective_eta(eta, weight_decay, grad_v_sq) -> np.ndarray:
    """η/‖w‖² at the fixed point of :func:`next_norm_sq` when ‖∇_v L‖² stays at ``grad_v_sq``:
    √(ηλ(2 − ηλ)/‖∇_v L‖²), about √(2ηλ)/‖∇_v L‖ (only the product ηλ enters).

    Arrays that broadcast, finite: ``eta`` > 0, ``weight_decay`` > 0 with eta·weight_decay < 1,
    ``grad_v_sq`` > 0.
    """
    eta, wd = checks.positive_array("eta", eta), checks.positive_array("weight_decay", weight_decay)
    gv = checks.positive_array("grad_v_sq", grad_v_sq)
    _broadcast(eta=eta, weight_decay=wd, grad_v_sq=gv)
    if np.any(eta * wd >= 1):
        raise ValueError(f"eta·weight_decay must be < 1 (else w shrinks through 0), got max "
                         f"{np.max(eta * wd):g}")
    return np.sqrt(eta * wd * (2 - eta * wd) / gv)


def blew_up(loss, factor=10.0, axis=-1) -> np.ndarray:
    """True where a run's loss became non-finite or rose above ``factor`` × its first value.

    ``loss``: recorded losses (NaN/inf are what it detects), not empty along ``axis``;
    ``factor``: a finite number > 0.
    """
    loss = checks.array("loss", loss, finite=False, nonempty=False)
    factor, axis = checks.positive("factor", factor), _axis(axis, "loss", loss)
    start = np.take(loss, [0], axis=axis)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isfinite(loss) | (loss > factor * start)
    return bad.any(axis=axis)


def sgd_schedules(alpha: float, steps: int) -> dict:
    """Theorem 4.2's factors: (t+1)^(−α) for group w and (t+1)^(−1/2) for group g.

    ``alpha`` in [0, 1/2] (the theorem's range; see its Remark 4.1), ``steps`` >= 1.
    """
    alpha, steps = checks.number("alpha", alpha), checks.integer("steps", steps)
    if not 0 <= alpha <= 0.5:
        raise ValueError(f"alpha must be in [0, 1/2] (Theorem 4.2; by its Remark 4.1 a rate "
                         f"decaying faster than t^(-1/2) cannot be tuned back), got {alpha!r}")
    t = np.arange(steps, dtype=float)
    return {"w": (t + 1) ** -alpha, "g": (t + 1) ** -0.5}


def eval_steps(steps: int, n_evals: int) -> np.ndarray:
    """About ``n_evals`` log-spaced steps in [0, steps], always including 0 and ``steps``
    (both integers >= 1)."""
    steps, n_evals = checks.integer("steps", steps), checks.integer("n_evals", n_evals)
    return np.unique(np.r_[0, np.round(np.geomspace(1, steps, n_evals)).astype(int)])


def _records(name: str, values) -> np.ndarray:
    """Recorded squared norms or losses over t = 0..T on the last axis (NaN allowed)."""
    values = checks.array(name, values, finite=False, nonempty=False)
    _axis(-1, name, values)
    return values


def _rate_per_run(eta, records: np.ndarray) -> np.ndarray:
    """η_w > 0 broadcast against one run's records (all axes but the last), shaped (..., 1)."""
    eta = checks.positive_array("eta", eta)
    _broadcast(eta=eta, runs=records[..., 0])
    return eta[..., None]


def summed_growth_bound(norm_sq, grad_sq, eta) -> dict:
    """Lemma 2.4 summed over t < T, at every horizon T on the last axis (T = 0..len − 1).

    The identity S_T = Σ_{t<T} ‖∇_w L_t‖² = (‖w_T‖² − ‖w_0‖²)/η² and, since the norm only
    grows, ‖w_0‖² S_T <= Σ_{t<T} ‖∇_v L_t‖² = Σ_{t<T} ‖w_t‖²‖∇_w L_t‖² <= ‖w_T‖² S_T (the
    proof of Theorem 3.1). Returns arrays shaped like ``norm_sq``: ``grad_v_sum`` (the
    middle term), ``grad_w_sum``, ``growth`` (S_T from the norms), ``bound`` (‖w_T‖² S_T)
    and ``lower`` (‖w_0‖² S_T).

    ``norm_sq``, ``grad_sq``: recorded ‖w_t‖², ‖∇_w L_t‖² >= 0 of the same shape (..., T+1)
    (NaN after a divergence stays NaN; the last gradient is not used); ``eta``: η_w > 0,
    broadcasting against one number per run (``norm_sq[..., 0]``).
    """
    norm_sq, grad_sq = _records("norm_sq", norm_sq), _records("grad_sq", grad_sq)
    for name, values in (("norm_sq", norm_sq), ("grad_sq", grad_sq)):
        _measured(name, values)
    if norm_sq.shape != grad_sq.shape:
        raise ValueError(f"norm_sq and grad_sq must have the same shape, got {norm_sq.shape} "
                         f"and {grad_sq.shape}")
    eta = _rate_per_run(eta, norm_sq)
    zero = np.zeros(norm_sq.shape[:-1] + (1,))
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are honest results
        cum = lambda x: np.concatenate([zero, np.cumsum(x[..., :-1], -1)], -1)  # noqa: E731
        growth = (norm_sq - norm_sq[..., :1]) / eta / eta
        return {"grad_v_sum": cum(norm_sq * grad_sq), "grad_w_sum": cum(grad_sq),
                "growth": growth, "bound": norm_sq * growth, "lower": norm_sq[..., :1] * growth}


def norm_budget(norm_sq, loss, eta, start=1) -> dict:
    """The norm's growth after step s = ``start`` set against the loss it cost (Lemma A.2).

    If every step after s lowered the loss by at least half its first-order amount
    η‖∇_w L‖² (the proof's regime of a small effective rate), the growth ‖w_T‖² − ‖w_s‖²
    = Σ η²‖∇_w L‖² would be at most 2η(L_s − L_T). Returns, per run (T the last record):
    ``first`` ‖w_s‖², ``last`` ‖w_T‖², ``later_growth`` ‖w_T‖² − ‖w_s‖², ``loss_budget``
    2η(L_s − L_T) and ``ratio`` later_growth / loss_budget.

    ``norm_sq``, ``loss``: recorded ‖w_t‖² >= 0 and losses of the same shape (..., T+1),
    NaN allowed; ``eta``: η_w > 0 broadcasting against ``norm_sq[..., 0]``; ``start``: an
    integer in [0, T − 1].
    """
    norm_sq, loss = _measured("norm_sq", _records("norm_sq", norm_sq)), _records("loss", loss)
    if norm_sq.shape != loss.shape:
        raise ValueError(f"norm_sq and loss must have the same shape, got {norm_sq.shape} "
                         f"and {loss.shape}")
    if norm_sq.shape[-1] < 2:
        raise ValueError(f"norm_sq must hold at least two records, got shape {norm_sq.shape}")
    eta = _rate_per_run(eta, norm_sq)[..., 0]
    s = checks.integer("start", start, lo=0, hi=norm_sq.shape[-1] - 2)
    first, last = norm_sq[..., s], norm_sq[..., -1]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        budget = 2 * eta * (loss[..., s] - loss[..., -1])
        return {"first": first, "last": last, "later_growth": last - first,
                "loss_budget": budget, "ratio": (last - first) / budget}
