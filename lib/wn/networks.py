"""Weight-normalised two-layer ReLU networks and their kernels (Dukler, Gu & Montúfar 2020).

The network, with unit-norm inputs x (d,) and m hidden units,

    f(x) = (1/√m) Σ_k c_k ReLU(g_k v_kᵀx / ‖v_k‖),     c_k ∈ {±1} fixed,

is trained on the sum of squares L = ½ Σ_i (f(x_i) − y_i)². Its tangent kernel splits
into a direction part and a length part, Λ = V/α² + G (:func:`gram_matrices`), whose
infinite-width limits have closed forms (:func:`limit_kernels`). :class:`WNNet` and
:class:`PlainNet` are the network with and without weight normalisation as ``nn.Module``s,
which :mod:`lib.wn.training` trains with the book's one training loop.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from lib import checks


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


# --- checks of arguments shared by the modules of lib.wn ------------------------------------
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


def kernel_and_pattern(v: torch.Tensor, g: torch.Tensor, X: torch.Tensor):
    """(Λ (..., n, n), activation pattern (..., n, m)) of raw parameters, batched.

    v (m, d) or (K, m, d) and g (m,) or (K, m) may be non-finite (a diverged run: its Λ is
    then non-finite); X (n, d) finite, of v's dtype and device. Λ = V + G as in
    :func:`evolution_kernel`, the pattern 𝟙{g_k v_kᵀx_i ≥ 0} (0/1) as in :func:`gram_matrices`.
    """
    v = checks.tensor("v", v, ndim=(2, 3), finite=False)
    checks.tensor("g", g, shape=tuple(v.shape[:-1]), finite=False, dtype=v.dtype)
    check_inputs(X, v)
    V, G = _grams(v, g, X)
    return V + G, _projections(v, g, X)[1]


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


# --- the network as nn.Modules, for the book's training loop -------------------------------
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
