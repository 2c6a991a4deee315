"""Quantities of the BNGD analysis on least squares (Cai, Li & Shen 2019), for checks.

The residual e = u − (wᵀg/σ²) w and the effective step ε̂ of BNGD (paper eq. 11–12), the
matrix H* = H − Huuᵀ H/(uᵀHu) and its pseudo-condition number κ* (section 3.3), and
the number of steps a loss curve needs to reach a tolerance. The dynamics themselves
are in :mod:`lib.ols`.
"""

import torch

from lib.ols import BNGDResult, _device, _finite, _vector, as_operator


def effective_step(H, u, a, w, eps, dtype=torch.float64) -> torch.Tensor:
    """ε̂ = ε a wᵀg/σ³ for states a (*batch,) and w (*batch, d): the step size with which
    BNGD moves its residual, u − s w_{k+1} = (I − ε̂_k H) e_k (paper eq. 11–12)."""
    matvec, d = as_operator(H, dtype)
    u, w = _vector(u, d, "u", dtype, _device(H)), _vector(w, d, "w", dtype, _device(H))
    p, s2 = (w * matvec(u)).sum(-1), (w * matvec(w)).sum(-1)
    return torch.as_tensor(eps, dtype=dtype) * torch.as_tensor(a, dtype=dtype) * p / s2 ** 1.5


def residual(H, u, w, dtype=torch.float64) -> torch.Tensor:
    """e = u − (wᵀg/σ²) w: what separates the best multiple of w from u (zero iff w ∥ u)."""
    matvec, d = as_operator(H, dtype)
    u, w = _vector(u, d, "u", dtype, _device(H)), _vector(w, d, "w", dtype, _device(H))
    s = (w * matvec(u)).sum(-1) / (w * matvec(w)).sum(-1)
    return u - s.unsqueeze(-1) * w


def residual_recursion_gap(H, u, result: BNGDResult, dtype=torch.float64) -> float:
    """max_k ‖u − s_k w_{k+1} − (I − ε̂_k H) e_k‖ / ‖u‖ over a run made with trajectory=True,
    s_k = wₖᵀg/σ_k², e_k = u − s_k w_k: round-off if the recursion (eq. 12) holds."""
    if result.w_path is None:
        raise ValueError("the recursion needs the path: call bngd(..., trajectory=True)")
    matvec, d = as_operator(H, dtype)
    u = _vector(u, d, "u", dtype, _device(H))
    w = result.w_path.to(dtype)
    s = (w * matvec(u)).sum(-1) / (w * matvec(w)).sum(-1)
    e = u - s.unsqueeze(-1) * w
    lhs = u - s[:-1].unsqueeze(-1) * w[1:]
    rhs = e[:-1] - result.eff_step.to(dtype).unsqueeze(-1) * matvec(e[:-1])
    return float((lhs - rhs).norm(dim=-1).max() / u.norm())


def pseudo_hessian(H, u, dtype=torch.float64) -> torch.Tensor:
    """H* = H − H u uᵀ H/(uᵀ H u), (d, d): the Hessian of BNGD at its minimiser, up to
    the factor 1/‖w*‖² (paper eq. 14). Positive semi-definite with H* u = 0."""
    H = torch.as_tensor(H, dtype=dtype)
    Hm = torch.diag(H) if H.ndim == 1 else H
    _, d = as_operator(H, dtype)
    u = _finite(_vector(u, d, "u", dtype, Hm.device), "u", dtype, Hm.device)
    g = Hm @ u
    c = u @ g
    if not c > 0:
        raise ValueError("u must be nonzero")
    out = Hm - torch.outer(g, g) / c
    return (out + out.T) / 2


def pseudo_condition(H, u) -> float:
    """κ* = λ*_max/λ*_min over the nonzero eigenvalues of H* (its one zero is dropped)."""
    lam = torch.linalg.eigvalsh(pseudo_hessian(H, u))
    return float(lam[-1] / lam[1])


def steps_to_tolerance(loss, tol: float) -> torch.Tensor:
    """First k with loss_k ≤ tol (over the first axis); −1 where it never happens.

    Args: loss (T, *batch); tol > 0 (absolute). Returns (*batch,) int64.
    """
    loss = torch.as_tensor(loss)
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if loss.ndim < 1 or loss.shape[0] == 0:
        raise ValueError("loss must have a non-empty first (step) axis")
    hit = loss <= tol                      # NaN compares False: never reached
    first = hit.to(torch.int64).argmax(0)
    return torch.where(hit.any(0), first, torch.full_like(first, -1))
