"""Weight-normalised two-layer ReLU networks and their kernels (Dukler, Gu & Montúfar 2020).

The network, with unit-norm inputs x (d,) and m hidden units,

    f(x) = (1/√m) Σ_k c_k ReLU(g_k v_kᵀx / ‖v_k‖),     c_k ∈ {±1} fixed,

is trained on the sum of squares L = ½ Σ_i (f(x_i) − y_i)². Its tangent kernel splits
into a direction part and a length part, Λ = V/α² + G (:func:`gram_matrices`), whose
infinite-width limits have closed forms (:func:`limit_kernels`). :func:`train` runs the
book's one training loop (:func:`lib.train.train`) on the network as an ``nn.Module``
and records λ(Λ(t)), ReLU sign changes and the distance from initialisation.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lib import stack as _stack
from lib import train as _train


@dataclass(frozen=True)
class WNParams:
    """Parameters of a weight-normalised two-layer ReLU network."""

    v: torch.Tensor   # (m, d) directions (only v_k/‖v_k‖ matters)
    g: torch.Tensor   # (m,) lengths g_k
    c: torch.Tensor   # (m,) output signs ±1, never trained

    @property
    def width(self) -> int:
        return self.v.shape[0]

    def weights(self) -> torch.Tensor:
        """(m, d) the un-normalised weights w_k = g_k v_k/‖v_k‖ of the same function."""
        return self.v * (self.g / self.v.norm(dim=1))[:, None]


def _check_int(name, value, lo=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _check_positive(name, value):
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_inputs(X, d=None, unit=False):
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or not X.is_floating_point():
        raise ValueError(f"X must be a floating (n, d) tensor, got {getattr(X, 'shape', X)!r}")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"X has {X.shape[1]} columns but the network expects d = {d}")
    if unit and float((X.norm(dim=1) - 1).abs().max()) > 1e-6:
        raise ValueError("the rows of X must have unit norm (normalise them first)")


def init_wn(n_in, width, alpha, seed=0, dtype=torch.float64, device="cpu") -> WNParams:
    """Initialisation (2.4): v_k ~ N(0, α²I), g_k = ‖v_k‖/α, c_k = ±1 with equal odds.

    The same seed gives the same standard normal draw z for every α (v = αz), so the
    initial function f(x) = (1/√m) Σ c_k ReLU(z_kᵀx) does not depend on α.
    """
    n_in, width = _check_int("n_in", n_in), _check_int("width", width)
    alpha = _check_positive("alpha", alpha)
    gen = torch.Generator().manual_seed(_check_int("seed", seed, lo=0))
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
    """f(x_i) for every row of X (n, d); returns (n,)."""
    _check_inputs(X, params.v.shape[1])
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
    _check_inputs(X, params.v.shape[1])
    return _grams(params.v, params.g, X, _check_positive("alpha", alpha))


def evolution_kernel(params: WNParams, X: torch.Tensor) -> torch.Tensor:
    """Λ = V/α² + G (n, n), which needs no α: V/α² carries (g_k/‖v_k‖)²."""
    _check_inputs(X, params.v.shape[1])
    V, G = _grams(params.v, params.g, X)
    return V + G


def limit_kernels(X: torch.Tensor):
    """(H∞, V∞, G∞), each (n, n), in closed form for unit-norm rows of X (n, d).

    With θ_ij the angle between x_i and x_j:
    H∞ = cos θ (π − θ)/(2π),  G∞ = (sin θ + (π − θ) cos θ)/(2π d),  V∞ = H∞ − G∞.
    """
    _check_inputs(X, unit=True)
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
    diverged_at: int | None     # first step with a non-finite loss, if any
    history: _train.History     # the training loop's own record (norms, gradients)
    params: WNParams            # parameters after training

    @property
    def lam_min(self) -> np.ndarray:
        return self.spectrum[:, 0]

    @property
    def lam_max(self) -> np.ndarray:
        return self.spectrum[:, -1]


def _observer(start: WNParams, X, as_params, every: int = 1, last: int = 0):
    """``observe`` for lib.train.fit over K models (stacked tensors, leading axis K):
    spectrum of Λ(t), fraction of changed ReLU patterns, relative distance from ``start``.

    ``start`` holds the K initial parameters stacked (v (K, m, d), g (K, m)). Only
    steps t with t % every == 0 or t == last are computed; the others are NaN.
    """
    _, act0 = _projections(start.v, start.g, X)

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
                "dist_v": (v - start.v).flatten(1).norm(dim=1) / start.v.flatten(1).norm(dim=1),
                "dist_g": (g - start.g).norm(dim=1) / start.g.norm(dim=1)}
    return observe


def _modules(params_list, normalized):
    return [WNNet(p) if normalized else PlainNet(p) for p in params_list]


def _as_stacked(normalized):
    """Map the loop's stacked parameter dict to (v, g); the plain net has v = w, g = ‖w‖."""
    if normalized:
        return lambda p: (p["v"].detach(), p["g"].detach())
    return lambda p: (p["w"].detach(), p["w"].detach().norm(dim=-1))


def _history(h: _train.History, params: WNParams, every: int, last: int) -> WNHistory:
    keep = (h.step % every == 0) | (h.step == last)
    return WNHistory(step=h.step, loss=h.loss, observed=h.step[keep],
                     spectrum=h.extra["spectrum"][keep],
                     sign_changes=h.extra["sign_changes"][keep], dist_v=h.extra["dist_v"][keep],
                     dist_g=h.extra["dist_g"][keep], diverged_at=h.diverged_at, history=h,
                     params=params)


def _check_run(params, X, y, eta, steps, log_every, observe_every):
    _check_inputs(X, params.v.shape[1])
    if not isinstance(y, torch.Tensor) or y.shape != (X.shape[0],):
        raise ValueError(f"y must be a tensor of shape ({X.shape[0]},), "
                         f"got {getattr(y, 'shape', y)!r}")
    _check_positive("eta", eta)
    _check_int("steps", steps), _check_int("log_every", log_every)
    if _check_int("observe_every", observe_every) % log_every:
        raise ValueError(f"observe_every ({observe_every}) must be a multiple of "
                         f"log_every ({log_every})")


def _start(modules):  # the initial parameters, stacked like the loop's (K, ...)
    ps = [m.params() for m in modules]
    return WNParams(torch.stack([p.v for p in ps]), torch.stack([p.g for p in ps]),
                    torch.stack([p.c for p in ps]))


def train(params: WNParams, X, y, eta, steps, normalized=True, log_every=1,
          observe_every=1) -> WNHistory:
    """Full-batch GD of size η on L = ½ Σ (f(x_i) − y_i)², through :func:`lib.train.train`.

    Args:
        params: the initialisation (:func:`init_wn`); it is not modified.
        X: (n, d) inputs; y: (n,) targets.  eta: step size η (both groups).
        steps: GD steps.  normalized: train (v, g); False trains w_k = g_k v_k/‖v_k‖ directly.
        log_every: steps between records of the loss.
        observe_every: steps between records of Λ(t), sign changes and distances
            (a multiple of log_every; the last step is always recorded).
    Returns a :class:`WNHistory` (λ(Λ(t)), sign changes and distances at every record).
    """
    _check_run(params, X, y, eta, steps, log_every, observe_every)
    (model,) = _modules([params], normalized)
    config = _train.TrainConfig(steps=steps, lr=float(eta), loss="sse", log_every=log_every)
    observe = _observer(_start([model]), X, _as_stacked(normalized), observe_every, steps)
    h = _train.train(model, (X, y), config, bar=False, observe=observe)
    return _history(h, model.params(), observe_every, steps)


def train_batch(params_list, X, y, etas, steps, normalized=True, log_every=1,
                observe_every=1) -> list:
    """:func:`train` for K networks of one width at once (:func:`lib.train.fit` on a stack).

    ``params_list`` and ``etas`` have one entry per network; returns one WNHistory each.
    """
    params_list, etas = list(params_list), list(etas)
    if not params_list or len(params_list) != len(etas):
        raise ValueError(f"need one η per network, got {len(params_list)} networks, {len(etas)} η")
    for p, eta in zip(params_list, etas):
        _check_run(p, X, y, eta, steps, log_every, observe_every)
    models = _modules(params_list, normalized)
    stack = _stack.from_models(models, device=X.device)
    configs = [_train.TrainConfig(steps=steps, lr=float(e), loss="sse", log_every=log_every)
               for e in etas]
    observe = _observer(_start(models), X, _as_stacked(normalized), observe_every, steps)
    hs = _train.fit(stack, (X, y), configs, bar=False, observe=observe)
    _stack.write_back(stack, models)
    return [_history(h, m.params(), observe_every, steps) for h, m in zip(hs, models)]
