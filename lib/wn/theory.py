"""Independent computations that check the weight-normalisation kernels of :mod:`lib.wn.networks`.

Parameter Jacobians by reverse-mode autograd (Proposition 1), the un-normalised NTK,
Monte Carlo estimates of the limit kernels, the natural-gradient form of the WN
kernel, and the concentration of finite-width Gram matrices around their limits.
"""

import math

import numpy as np
import torch

from lib import checks
from lib.wn import networks


def plain_ntk(w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """H_ij = (1/m) Σ_k x_iᵀx_j 𝟙{w_kᵀx_i ≥ 0}𝟙{w_kᵀx_j ≥ 0}: NTK of the un-normalised net.

    w (m, d) finite weights; X (n, d) finite inputs of w's dtype.
    """
    networks.check_inputs(X, checks.tensor("w", w, ndim=2))
    act = (X @ w.T >= 0).to(X.dtype)
    return (X @ X.T) * (act @ act.T) / w.shape[0]


def monte_carlo_kernels(X: torch.Tensor, samples: int, seed: int = 0, chunk: int = 20_000):
    """(H, V, G) estimated as averages over ``samples`` directions v ~ N(0, I_d).

    This is the finite-width Gram matrix of a network at α = 1 with m = ``samples``,
    accumulated in chunks to bound memory. Standard errors shrink like samples^(−1/2).
    Chunk i draws with seed·100003 + i, so ``seed`` ≤ (2⁶³ − 1)/200006.
    """
    X = networks.check_inputs(X)
    samples, chunk = checks.integer("samples", samples), checks.integer("chunk", chunk)
    seed = checks.integer("seed", seed, lo=0, hi=checks.SEED_MAX // 200_006)
    V = torch.zeros(X.shape[0], X.shape[0], dtype=X.dtype, device=X.device)
    G = torch.zeros_like(V)
    for i, start in enumerate(range(0, samples, chunk)):
        p = networks.init_wn(X.shape[1], min(chunk, samples - start), 1.0, seed=seed * 100_003 + i,
                             dtype=X.dtype, device=X.device)
        Vc, Gc = networks.gram_matrices(p, X, 1.0)
        V, G = V + Vc * p.width, G + Gc * p.width
    return (V + G) / samples, V / samples, G / samples


def least_eigenvalue(K: torch.Tensor) -> float:
    """λ_min of a symmetric matrix K (n, n), finite (float)."""
    K = networks.check_kernel("K", K)
    return float(torch.linalg.eigvalsh(K)[0])


def largest_eigenvalue(K: torch.Tensor) -> float:
    """λ_max of a symmetric matrix K (n, n), finite (float)."""
    K = networks.check_kernel("K", K)
    return float(torch.linalg.eigvalsh(K)[-1])


def jacobians(params: networks.WNParams, X: torch.Tensor):
    """(J_v (n, m, d), J_g (n, m)): ∂f(x_i)/∂v_k and ∂f(x_i)/∂g_k by reverse-mode autograd."""
    networks.check_inputs(X, networks.check_params(params).v)
    fn = lambda v, g: networks.forward(networks.WNParams(v, g, params.c), X)  # noqa: E731
    return torch.func.jacrev(fn, argnums=(0, 1))(params.v, params.g)


def plain_jacobian(w: torch.Tensor, c: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """J_w (n, m, d) of the un-normalised network (1/√m) Σ c_k ReLU(w_kᵀx), by autograd.

    w (m, d), c (m,) and X (n, d): finite, of one dtype.
    """
    w = checks.tensor("w", w, ndim=2)
    checks.tensor("c", c, shape=(w.shape[0],), dtype=w.dtype)
    networks.check_inputs(X, w)
    fn = lambda w_: torch.relu(X @ w_.T) @ c / math.sqrt(w_.shape[0])  # noqa: E731
    return torch.func.jacrev(fn)(w)


def gram(J: torch.Tensor) -> torch.Tensor:
    """J Jᵀ (n, n) for a finite Jacobian J (n, ...) with the example index first."""
    J = checks.tensor("J", J, ndim=range(2, 8))
    J = J.reshape(J.shape[0], -1)
    return J @ J.T


def initial_outputs(X, alphas, width, seed=0) -> dict:
    """f_0(X) of the WN network for every α, and of the un-normalised net with w = v/α.

    X (n, d) finite; ``alphas`` a non-empty list of numbers > 0 (the keys of the result).
    """
    X, alphas = networks.check_inputs(X), _alphas(alphas)
    width, seed = checks.integer("width", width), checks.seed("seed", seed)
    init = lambda a: networks.init_wn(X.shape[1], width, a, seed, X.dtype, X.device)  # noqa: E731
    out = {a: networks.forward(init(a), X) for a in alphas}
    p = init(alphas[0])
    out["plain"] = torch.relu(X @ (p.v / alphas[0]).T) @ p.c / math.sqrt(width)
    return out


def decomposition_errors(X, alphas, width, seed=0) -> list:
    """Proposition 1 by autograd: max-abs errors of J_vJ_vᵀ − V/α², J_gJ_gᵀ − G, Λ − H.

    One row per α; H is the un-normalised NTK (autograd) at w = g v/‖v‖, which Λ
    matches at initialisation only when α = 1. Arguments as for :func:`initial_outputs`.
    """
    X, alphas = networks.check_inputs(X), _alphas(alphas)
    width, seed = checks.integer("width", width), checks.seed("seed", seed)
    rows = []
    for a in alphas:
        p = networks.init_wn(X.shape[1], width, a, seed, X.dtype, X.device)
        Jv, Jg = jacobians(p, X)
        V, G = networks.gram_matrices(p, X, a)
        H = gram(plain_jacobian(p.weights(), p.c, X))
        err = lambda A, B: float((A - B).abs().max())  # noqa: E731
        rows.append({"alpha": a, "JvJv - V/a^2": err(gram(Jv), V / a**2),
                     "JgJg - G": err(gram(Jg), G), "Lambda - H": err(V / a**2 + G, H)})
    return rows


def natural_gradient_kernel(params: networks.WNParams, X) -> torch.Tensor:
    """J_w S J_wᵀ (n, n): the plain NTK with metric S_k = v̂v̂ᵀ + (g_k/‖v_k‖)²(I − v̂v̂ᵀ)."""
    networks.check_inputs(X, networks.check_params(params).v)
    Jw = plain_jacobian(params.weights(), params.c, X)        # (n, m, d)
    u = params.v / params.v.norm(dim=1, keepdim=True)            # (m, d) v̂_k
    s = (params.g / params.v.norm(dim=1)) ** 2                   # (m,)
    along = torch.einsum("imd,md->im", Jw, u)                    # ⟨J_ik, v̂_k⟩
    SJ = s[None, :, None] * Jw + (1 - s)[None, :, None] * along[..., None] * u[None]
    return torch.einsum("imd,jmd->ij", Jw, SJ)


def radial_cosines(params: networks.WNParams, X, y) -> torch.Tensor:
    """(m,) cos of the angle between v_k and ∇_{v_k}L (0: the gradient is orthogonal).

    X (n, d) and y (n,) finite, of the network's dtype.
    """
    networks.check_inputs(X, networks.check_params(params).v)
    checks.same_length(X=X, y=checks.tensor("y", y, ndim=1, dtype=X.dtype))
    v = params.v.detach().clone().requires_grad_()
    loss = 0.5 * (networks.forward(networks.WNParams(v, params.g, params.c), X) - y).pow(2).sum()
    (grad,) = torch.autograd.grad(loss, v)
    return (v * grad).sum(1).detach() / (v.norm(dim=1) * grad.norm(dim=1)).detach()


def concentration(X, widths, seeds) -> dict:
    """Spectral-norm distance of V(0), G(0) at α = 1 from V∞, G∞, and their λ_min.

    Returns arrays (len(widths), seeds): "err_V", "err_G", "lam_V", "lam_G".
    X (n, d) unit-norm rows; ``widths`` a non-empty list of integers ≥ 1; ``seeds`` ≥ 1.
    """
    widths, seeds = _widths(widths), checks.integer("seeds", seeds)
    _, V_inf, G_inf = networks.limit_kernels(X)
    out = {k: np.zeros((len(widths), seeds)) for k in ("err_V", "err_G", "lam_V", "lam_G")}
    for i, m in enumerate(widths):
        for s in range(seeds):
            p = networks.init_wn(X.shape[1], m, 1.0, s, X.dtype, X.device)
            V, G = networks.gram_matrices(p, X, 1.0)
            out["err_V"][i, s] = float(torch.linalg.matrix_norm(V - V_inf, 2))
            out["err_G"][i, s] = float(torch.linalg.matrix_norm(G - G_inf, 2))
            out["lam_V"][i, s], out["lam_G"][i, s] = least_eigenvalue(V), least_eigenvalue(G)
    return out


def _alphas(alphas) -> list:
    """A non-empty list of numbers > 0, kept as given (they key the results)."""
    if isinstance(alphas, (str, bytes)) or not hasattr(alphas, "__iter__"):
        raise TypeError(f"alphas must be a list of numbers > 0, got {type(alphas).__name__}")
    alphas = list(alphas)
    if not alphas:
        raise ValueError("alphas must not be empty")
    for a in alphas:
        checks.positive("alphas", a)
    return alphas


def _widths(widths) -> list:
    """A non-empty list of integers ≥ 1 (NumPy integers become int)."""
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise TypeError(f"widths must be a list of integers >= 1, got {type(widths).__name__}")
    widths = [checks.integer("widths", m) for m in widths]
    if not widths:
        raise ValueError("widths must not be empty")
    return widths
