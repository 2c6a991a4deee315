"""Quantities of the BNGD analysis on least squares (Cai, Li & Shen 2019), for checks.

The residual e = u − (wᵀg/σ²) w and the effective step ε̂ of BNGD (paper eq. 11–12), the
matrix H* = H − Huuᵀ H/(uᵀHu) and its pseudo-condition number κ* (section 3.3), and
the number of steps a loss curve needs to reach a tolerance, and what the spectrum of H
says about plain GD (stability limit, optimal step, rate). The dynamics themselves are in
:mod:`lib.bngd.dynamics`.
"""

from dataclasses import dataclass

import torch

from lib import checks
from lib.bngd.dynamics import BNGDResult, as_operator


@dataclass(frozen=True)
class GDConstants:
    """What the spectrum of H says about plain GD on J₀."""

    lam_min: float   # smallest eigenvalue λ_min
    lam_max: float   # largest eigenvalue λ_max
    kappa: float     # condition number κ = λ_max/λ_min
    eps_max: float   # stability limit 2/λ_max: GD converges iff 0 < ε < eps_max
    eps_opt: float   # optimal step 2/(λ_max + λ_min)
    rate: float      # ‖u − w_k‖ contracts by (κ−1)/(κ+1) per step at eps_opt


def _problem(H, u, dtype):
    """(matvec, d, u as a (d,) tensor of dtype on H's device) after checking H and u."""
    matvec, d = as_operator(H, dtype)
    u = checks.tensor("u", u, shape=(d,))
    return matvec, d, u.to(dtype=dtype, device=H.device)


def _state(name, w, d, matvec, dtype, device):
    """w (*batch, d): a finite floating tensor with wᵀHw > 0 in every row."""
    w = checks.tensor(name, w)
    if w.shape[-1:] != (d,):
        raise ValueError(f"{name} must have last dimension d = {d} (the size of H), got "
                         f"shape {tuple(w.shape)}")
    w = w.to(dtype=dtype, device=device)
    if not torch.all((w * matvec(w)).sum(-1) > 0):
        raise ValueError(f"{name} must have {name}ᵀH{name} > 0 in every row (σ would be 0)")
    return w


def effective_step(H, u, a, w, eps, dtype=torch.float64) -> torch.Tensor:
    """ε̂ = ε a wᵀg/σ³ for states a (*batch,) and w (*batch, d): the step size with which
    BNGD moves its residual, u − s w_{k+1} = (I − ε̂_k H) e_k (paper eq. 11–12).

    a (finite) and eps (> 0): numbers or arrays that broadcast with w's batch shape.
    """
    matvec, d, u = _problem(H, u, dtype)
    w = _state("w", w, d, matvec, dtype, u.device)
    a = torch.as_tensor(checks.array("a", a), dtype=dtype, device=u.device)
    eps = torch.as_tensor(checks.positive_array("eps", eps), dtype=dtype, device=u.device)
    try:
        torch.broadcast_shapes(a.shape, eps.shape, w.shape[:-1])
    except RuntimeError:
        raise ValueError(f"a {tuple(a.shape)}, eps {tuple(eps.shape)} and the batch shape of w "
                         f"{tuple(w.shape[:-1])} must broadcast together") from None
    p, s2 = (w * matvec(u)).sum(-1), (w * matvec(w)).sum(-1)
    return eps * a * p / s2 ** 1.5


def residual(H, u, w, dtype=torch.float64) -> torch.Tensor:
    """e = u − (wᵀg/σ²) w: what separates the best multiple of w from u (zero iff w ∥ u).

    w (*batch, d): a finite floating tensor with wᵀHw > 0.
    """
    matvec, d, u = _problem(H, u, dtype)
    w = _state("w", w, d, matvec, dtype, u.device)
    s = (w * matvec(u)).sum(-1) / (w * matvec(w)).sum(-1)
    return u - s.unsqueeze(-1) * w


def residual_recursion_gap(H, u, result: BNGDResult, dtype=torch.float64) -> float:
    """max_k ‖u − s_k w_{k+1} − (I − ε̂_k H) e_k‖ / ‖u‖ over a run made with trajectory=True,
    s_k = wₖᵀg/σ_k², e_k = u − s_k w_k: round-off if the recursion (eq. 12) holds.

    result: the BNGDResult of that run on (H, u) (u nonzero)."""
    if not isinstance(result, BNGDResult):
        raise TypeError(f"result must be a BNGDResult (from lib.bngd.dynamics.bngd), got {type(result).__name__}")
    if result.w_path is None:
        raise ValueError("result has no path: call bngd(..., trajectory=True) for the recursion")
    matvec, d, u = _problem(H, u, dtype)
    if result.w_path.shape[-1] != d:
        raise ValueError(f"result is a run in dimension {result.w_path.shape[-1]}, H and u in {d}")
    if not u.norm() > 0:
        raise ValueError("u must be nonzero (the gap is relative to ‖u‖)")
    w = result.w_path.to(dtype=dtype, device=u.device)
    s = (w * matvec(u)).sum(-1) / (w * matvec(w)).sum(-1)
    e = u - s.unsqueeze(-1) * w
    lhs = u - s[:-1].unsqueeze(-1) * w[1:]
    rhs = e[:-1] - result.eff_step.to(dtype=dtype, device=u.device).unsqueeze(-1) * matvec(e[:-1])
    return float((lhs - rhs).norm(dim=-1).max() / u.norm())


def pseudo_hessian(H, u, dtype=torch.float64) -> torch.Tensor:
    """H* = H − H u uᵀ H/(uᵀ H u), (d, d) (paper eq. 14): at a minimiser (a*, w*) the
    Hessian of J is diag(1, ‖u‖² H*/‖w*‖²) (the paper writes it for ‖u‖ = 1). Positive
    semi-definite with H* u = 0.

    H: (d,) or (d, d) PSD tensor; u: (d,) with uᵀHu > 0."""
    _, _, u = _problem(H, u, dtype)
    Hm = torch.diag(H.to(dtype)) if H.ndim == 1 else H.to(dtype)
    g = Hm @ u
    c = u @ g
    if not c > 0:
        raise ValueError("u must be nonzero with uᵀHu > 0")
    out = Hm - torch.outer(g, g) / c
    return (out + out.T) / 2


def pseudo_condition(H, u) -> float:
    """κ* = λ*_max/λ*_min over the nonzero eigenvalues of H* (its one zero is dropped).

    H: (d,) or (d, d) with d >= 2, positive definite; u: (d,) nonzero."""
    lam = torch.linalg.eigvalsh(pseudo_hessian(H, u))
    if lam.shape[0] < 2:
        raise ValueError("H must be at least 2×2: H* of a 1×1 H is zero (κ* undefined)")
    if not lam[1] > 0:
        raise ValueError("H must be positive definite: H* has more than one zero eigenvalue")
    return float(lam[-1] / lam[1])


def steps_to_tolerance(loss, tol: float) -> torch.Tensor:
    """First k with loss_k ≤ tol (over the first axis); −1 where it never happens.

    Args: loss (T, *batch), T >= 1: a tensor or array of real numbers (NaN/inf allowed:
    a diverged run never reaches tol); tol > 0 (absolute). Returns (*batch,) int64.
    """
    tol = checks.positive("tol", tol)
    if isinstance(loss, torch.Tensor):
        loss = checks.tensor("loss", loss, finite=False)
    else:
        loss = torch.from_numpy(checks.array("loss", loss, finite=False))
    if loss.ndim < 1:
        raise ValueError("loss must have a first (step) axis, got a 0-d value")
    hit = loss <= tol                      # NaN compares False: never reached
    first = hit.to(torch.int64).argmax(0)
    return torch.where(hit.any(0), first, torch.full_like(first, -1))


def _eigenvalues(H, dtype=torch.float64):
    as_operator(H, dtype)  # validates
    H = H.to(dtype)
    return H.sort().values if H.ndim == 1 else torch.linalg.eigvalsh(H)


def gd_constants(H) -> GDConstants:
    """Stability limit, optimal step and rate of plain GD on J₀ for the spectrum of H.

    H: (d,) eigenvalues or (d, d) symmetric matrix, positive definite (λ_min > 0).
    """
    lam = _eigenvalues(H)
    lo, hi = float(lam[0]), float(lam[-1])
    if not lo > 0:
        raise ValueError(f"H must be positive definite for GD's constants (κ = λ_max/λ_min), "
                         f"got smallest eigenvalue {lo:g}")
    return GDConstants(lam_min=lo, lam_max=hi, kappa=hi / lo, eps_max=2 / hi,
                       eps_opt=2 / (hi + lo), rate=(hi - lo) / (hi + lo))
