"""Weight-normalised two-layer ReLU networks and their kernels (Dukler, Gu & Montúfar 2020).

The network, with unit-norm inputs x (d,) and m hidden units,

    f(x) = (1/√m) Σ_k c_k ReLU(g_k v_kᵀx / ‖v_k‖),     c_k ∈ {±1} fixed,

is trained on the sum of squares L = ½ Σ_i (f(x_i) − y_i)². Its tangent kernel splits
into a direction part and a length part, Λ = V/α² + G (:func:`gram_matrices`), whose
infinite-width limits have closed forms (:func:`limit_kernels`). :func:`train` runs the
book's one training loop (:func:`lib.train.train`) on the network as an ``nn.Module``
and records λ(Λ(t)), ReLU sign changes and the distance from initialisation.
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lib import checks
from lib import stack as _stack
from lib import train as _train

# A run whose loss exceeds BLOW_UP × L(0) has diverged. Stable GD never raises the sum of
# squares that far: past the edge (η > 2/λ_max) it grows by a factor (1 − ηλ_max)² per
# step, so 10⁸ is reached within steps, while a recovering run (the catapult of WN's
# lengths, the plain net's narrow window past its edge) stays within a few times L(0).
BLOW_UP = 1e8


@dataclass(frozen=True)
class WNParams:
    """Parameters of a weight-normalised two-layer ReLU network.

    Floating tensors of matching shapes, one dtype; they may be non-finite (the
    parameters a diverged run ends with), which the functions that use them refuse.
    """

    v: torch.Tensor   # (m, d) directions (only v_k/‖v_k‖ matters)
    g: torch.Tensor   # (m,) lengths g_k
    c: torch.Tensor   # (m,) output signs ±1, never trained

    def __post_init__(self):
        v = checks.tensor("v", self.v, ndim=2, finite=False)
        for name in ("g", "c"):
            t = checks.tensor(name, getattr(self, name), shape=(v.shape[0],), finite=False)
            if t.dtype != v.dtype or t.device != v.device:
                raise TypeError(f"{name} must have v's dtype and device ({v.dtype}, {v.device}), "
                                f"got {t.dtype} on {t.device}")

    @property
    def width(self) -> int:
        return self.v.shape[0]

    def weights(self) -> torch.Tensor:
        """(m, d) the un-normalised weights w_k = g_k v_k/‖v_k‖ of the same function."""
        return self.v * (self.g / self.v.norm(dim=1))[:, None]


# --- checks of arguments shared by lib.wn.networks, lib.wn.theory and lib.wn.experiments ----------
UNIT_TOL = 1e-6  # |‖x_i‖ − 1| allowed: rows normalised in float32 (error ~√d·6e-8) pass


def check_inputs(X, like: torch.Tensor | None = None, unit: bool = False, name: str = "X"):
    """``X`` as a finite, non-empty floating (n, d) tensor; with ``like`` (a weight tensor
    (..., d)), d columns and ``like``'s dtype and device; with ``unit``, unit-norm rows."""
    X = checks.tensor(name, X, ndim=2)
    if like is not None and X.shape[1] != like.shape[-1]:
        raise ValueError(f"{name} has {X.shape[1]} columns but the network expects "
                         f"d = {like.shape[-1]}")
    if like is not None and (X.dtype != like.dtype or X.device != like.device):
        raise TypeError(f"{name} must have the network's dtype and device ({like.dtype}, "
                        f"{like.device}), got {X.dtype} on {X.device}")
    if unit and float((X.norm(dim=1) - 1).abs().max()) > UNIT_TOL:
        raise ValueError(f"the rows of {name} must have unit norm (normalise them first)")
    return X


def check_params(params, name: str = "params") -> "WNParams":
    """``params`` if it is a :class:`WNParams` with finite tensors (TypeError/ValueError)."""
    if not isinstance(params, WNParams):
        raise TypeError(f"{name} must be WNParams (from init_wn), got {type(params).__name__}")
    for field in ("v", "g", "c"):
        checks.tensor(f"{name}.{field}", getattr(params, field))
    return params


def check_kernel(name: str, K) -> torch.Tensor:
    """A finite, square, floating tensor (n, n), symmetric up to round-off.

    Tolerance √ε·max|K|: an entry of a Gram matrix with inner length p carries round-off
    at most p·ε·max|K| (Cauchy–Schwarz bounds each product by the diagonal), so K_ij and
    K_ji, summed in different orders, agree to that for every p ≤ 1/√ε (6.7e7 in float64;
    the book's longest sum is the Monte Carlo one, ≤ 10⁷ terms), while a matrix that is
    not symmetric differs at order max|K| (eigvalsh would silently read one triangle).
    """
    K = checks.tensor(name, K, ndim=2)
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be square (n, n), got {tuple(K.shape)}")
    tol = math.sqrt(torch.finfo(K.dtype).eps) * float(K.abs().max())
    gap = float((K - K.T).abs().max())
    if gap > tol:
        raise ValueError(f"{name} must be symmetric: max |K − Kᵀ| = {gap:.3g} exceeds "
                         f"round-off {tol:.3g}")
    return K


def init_wn(n_in, width, alpha, seed=0, dtype=torch.float64, device="cpu") -> WNParams:
    """Initialisation (2.4): v_k ~ N(0, α²I), g_k = ‖v_k‖/α, c_k = ±1 with equal odds.

    The same seed gives the same standard normal draw z for every α (v = αz), so the
    initial function f(x) = (1/√m) Σ c_k ReLU(z_kᵀx) does not depend on α.
    """
    n_in, width = checks.integer("n_in", n_in), checks.integer("width", width)
    alpha, dtype = checks.positive("alpha", alpha), checks.float_dtype("dtype", dtype)
    device = checks.device("device", device)
    gen = torch.Generator().manual_seed(checks.seed("seed", seed))
    z = torch.randn(width, n_in, generator=gen, dtype=torch.float64)
    c = torch.randint(0, 2, (width,), generator=gen).to(torch.float64) * 2 - 1
    v = alpha * z
    g = v.norm(dim=1) / alpha
    return WNParams(*(t.to(device, dtype) for t in (v, g, c)))


def _forward(v, g, c, X):
    """f(X) (n,) from tensors; shared by :func:`forward` and the modules (vmap-friendly)."""
    pre = (X @ v.T) * (g / v.norm(dim=1))          # (n, m): g_k v_kᵀx_i/‖v_k‖
    return torch.relu(pre) @ c / math.sqrt(v.shape[0])


def forward(params: WNParams, X: torch.Tensor) -> torch.Tensor:
    """f(x_i) for every row of X (n, d); returns (n,). Refuses non-finite parameters."""
    check_inputs(X, check_params(params).v)
    return _forward(params.v, params.g, params.c, X)


# --- kernels -----------------------------------------------------------------------------
def _projections(v, g, X):
    """⟨x_i, v̂_k⟩ and the activation pattern 𝟙{g_k v_kᵀx_i ≥ 0} (0/1), each (..., n, m).

    v (..., m, d) and g (..., m) may carry a leading batch of models. The pattern is
    𝟙{v_kᵀx_i ≥ 0} while g_k > 0, as at initialisation; a g_k that training pushes
    below zero makes unit k fire on the other side.
    """
    proj = X @ v.transpose(-1, -2) / v.norm(dim=-1)[..., None, :]
    return proj, (proj * g[..., None, :] >= 0).to(X.dtype)


def _grams(v, g, X, alpha=1.0):
    """(V, G), each (..., n, n), for parameters with an optional leading batch."""
    m = v.shape[-2]
    proj, act = _projections(v, g, X)
    s = ((alpha * g / v.norm(dim=-1)) ** 2)[..., None, :]       # (..., 1, m)
    ap = act * proj                                              # (..., n, m)
    G = ap @ ap.transpose(-1, -2) / m
    # ⟨x_i^⊥, x_j^⊥⟩ = x_iᵀx_j − ⟨x_i, v̂⟩⟨x_j, v̂⟩
    V = ((X @ X.T) * ((act * s) @ act.transpose(-1, -2)) - (ap * s) @ ap.transpose(-1, -2)) / m
    return V, G


def gram_matrices(params: WNParams, X: torch.Tensor, alpha: float):
    """(V, G), each (n, n): the v-orthogonal and v-aligned Gram matrices; Λ = V/α² + G.

    V_ij = (1/m) Σ_k (α g_k/‖v_k‖)² ⟨x_i^⊥, x_j^⊥⟩ 𝟙_ik 𝟙_jk with x^⊥ = x − ⟨x, v̂_k⟩v̂_k,
    G_ij = (1/m) Σ_k ⟨x_i, v̂_k⟩⟨x_j, v̂_k⟩ 𝟙_ik 𝟙_jk,  𝟙_ik = 𝟙{g_k v_kᵀx_i ≥ 0}.
    """
    check_inputs(X, check_params(params).v)
    return _grams(params.v, params.g, X, checks.positive("alpha", alpha))


def evolution_kernel(params: WNParams, X: torch.Tensor) -> torch.Tensor:
    """Λ = V/α² + G (n, n), which needs no α: V/α² carries (g_k/‖v_k‖)²."""
    check_inputs(X, check_params(params).v)
    V, G = _grams(params.v, params.g, X)
    return V + G


def limit_kernels(X: torch.Tensor):
    """(H∞, V∞, G∞), each (n, n), in closed form for unit-norm rows of X (n, d).

    With θ_ij the angle between x_i and x_j:
    H∞ = cos θ (π − θ)/(2π),  G∞ = (sin θ + (π − θ) cos θ)/(2π d),  V∞ = H∞ − G∞.
    """
    check_inputs(X, unit=True)
    cos = (X @ X.T).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    H = cos * (math.pi - theta) / (2 * math.pi)
    G = (torch.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi * X.shape[1])
    return H, H - G, G


# --- training through the book's loop ----------------------------------------------------
class WNNet(nn.Module):
    """The WN network as a module: v (group "w", each row scale-invariant) and g (group "g")."""

    def __init__(self, params: WNParams):
        super().__init__()
        check_params(params)
        self.v = nn.Parameter(params.v.detach().clone())
        self.g = nn.Parameter(params.g.detach().clone())
        self.register_buffer("c", params.c.detach().clone())

    def forward(self, X):                          # (n, d) -> (n, 1)
        return _forward(self.v, self.g, self.c, X)[:, None]

    def groups(self) -> dict:
        return {"w": [self.v], "g": [self.g]}

    def params(self) -> WNParams:
        return WNParams(self.v.detach().clone(), self.g.detach().clone(), self.c.clone())


class PlainNet(nn.Module):
    """The un-normalised network (1/√m) Σ c_k ReLU(w_kᵀx) from the same initial function."""

    def __init__(self, params: WNParams):
        super().__init__()
        check_params(params)
        self.w = nn.Parameter(params.weights().detach().clone())
        self.register_buffer("c", params.c.detach().clone())

    def forward(self, X):                          # (n, d) -> (n, 1)
        return (torch.relu(X @ self.w.T) @ self.c / math.sqrt(self.w.shape[0]))[:, None]

    def groups(self) -> dict:
        return {"w": [], "g": [self.w]}

    def params(self) -> WNParams:
        """As WN parameters with v = w and g = ‖w‖ (the same function, Λ = its NTK)."""
        w = self.w.detach().clone()
        return WNParams(w, w.norm(dim=1), self.c.clone())


def make_module(seed=0, alpha=1.0, n_in=10, width=100, normalized=True, dtype=torch.float64):
    """A :class:`WNNet` (or :class:`PlainNet`) at initialisation (2.4), for ``lib.sweep``."""
    normalized = checks.boolean("normalized", normalized)
    p = init_wn(n_in, width, alpha, seed=seed, dtype=dtype)
    return WNNet(p) if normalized else PlainNet(p)


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
    _, act0 = _projections(v0, g0, X)

    def observe(stacked, t):
        v, g = as_params(stacked)
        if t % every and t != last:
            nan = torch.full(v.shape[:1], math.nan, dtype=X.dtype, device=X.device)
            return {"spectrum": nan[:, None].expand(-1, X.shape[0]), "sign_changes": nan,
                    "dist_v": nan, "dist_g": nan}
        V, G = _grams(v, g, X)
        K = V + G
        ok = torch.isfinite(K).flatten(1).all(1)                   # (K,) skip diverged models
        spectrum = torch.full(K.shape[:2], math.nan, dtype=X.dtype, device=X.device)
        if ok.any():
            spectrum[ok] = torch.linalg.eigvalsh(K[ok])
        _, act = _projections(v, g, X)
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
                               accuracy=h.accuracy[keep], lr=part(h.lr),
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
    config = _train.TrainConfig(steps=steps, lr=eta, loss="sse", log_every=log_every)
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
    configs = [_train.TrainConfig(steps=steps, lr=e, loss="sse", log_every=log_every)
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
