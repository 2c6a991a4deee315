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
from lib.bngd.dynamics import BNGDResult, as_operator, bngd


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


@dataclass(frozen=True)
class LocalRates:
    """Step-by-step terms of inequalities (13) and (15) of the paper along one BNGD run.

    Every field but norm_e is (steps,) or (steps, *batch): index k describes the step
    from k to k+1.
    """

    norm_e: torch.Tensor    # (steps+1, *batch) ‖e_k‖_H
    measured: torch.Tensor  # ‖e_{k+1}‖_H/‖e_k‖_H
    middle: torch.Tensor    # ‖u − s_k w_{k+1}‖_H/‖e_k‖_H, the middle term of (13)
    rho: torch.Tensor       # ρ(I − ε̂_k H) = max_i |1 − ε̂_k λ_i|, the bound of (13)
    rho_star: torch.Tensor  # ρ*(I − ε̂_k H*), the same over the nonzero eigenvalues of H*
    delta: torch.Tensor     # δ_k = λ_max ε |a_k| ‖e_k‖_H/σ_k² (Lemma A.22)
    bound: torch.Tensor     # min{(ρ* + δ_k)/(1 − δ_k), ρ} where δ_k < 1, else ρ: (15)


def local_rates(H, u, result: BNGDResult, eps, dtype=torch.float64) -> LocalRates:
    """The contraction of the residual e_k = u − s_k w_k, measured and bounded, per step.

    Proposition 3.4 (through Lemma A.22) bounds ‖e_{k+1}‖_H/‖e_k‖_H by
    (ρ*(I − ε̂_k H*) + δ_k)/(1 − δ_k) once δ_k < 1, and inequality (13) by ρ(I − ε̂_k H).
    H: (d,) eigenvalues or (d, d) matrix, positive definite; u: (d,) nonzero;
    result: a BNGDResult of that problem made with trajectory=True; eps: the run's ε
    (a number or an array broadcasting with its batch shape), > 0.
    """
    if not isinstance(result, BNGDResult):
        raise TypeError(f"result must be a BNGDResult (from lib.bngd.dynamics), got "
                        f"{type(result).__name__}")
    if result.w_path is None or result.a_path is None:
        raise ValueError("result has no path: call bngd(..., trajectory=True)")
    matvec, d, u = _problem(H, u, dtype)
    if result.w_path.shape[-1] != d:
        raise ValueError(f"result is a run in dimension {result.w_path.shape[-1]}, H and u in {d}")
    eps = torch.as_tensor(checks.positive_array("eps", eps), dtype=dtype, device=u.device)
    try:
        torch.broadcast_shapes(eps.shape, result.eff_step.shape[1:])
    except RuntimeError:
        raise ValueError(f"eps (shape {tuple(eps.shape)}) must broadcast with the run's batch "
                         f"shape {tuple(result.eff_step.shape[1:])}") from None
    lam = gd_constants(H)
    star = torch.linalg.eigvalsh(pseudo_hessian(H, u))
    lo_s, hi_s = float(star[1]), float(star[-1])
    w = result.w_path.to(dtype=dtype, device=u.device)
    s2 = (w * matvec(w)).sum(-1)
    e = u - ((w * matvec(u)).sum(-1) / s2).unsqueeze(-1) * w
    norm_e = (e * matvec(e)).sum(-1).sqrt()                          # ‖e_k‖_H
    mid = u - ((w[:-1] * matvec(u)).sum(-1) / s2[:-1]).unsqueeze(-1) * w[1:]
    eff = result.eff_step.to(dtype=dtype, device=u.device)
    rho = torch.maximum((1 - eff * lam.lam_min).abs(), (1 - eff * lam.lam_max).abs())
    rho_s = torch.maximum((1 - eff * lo_s).abs(), (1 - eff * hi_s).abs())
    a = result.a_path[:-1].to(dtype=dtype, device=u.device)
    delta = lam.lam_max * eps * a.abs() * norm_e[:-1] / s2[:-1]
    with torch.no_grad():
        local = torch.where(delta < 1, (rho_s + delta) / (1 - delta).clamp_min(1e-300), rho)
    return LocalRates(norm_e=norm_e, measured=norm_e[1:] / norm_e[:-1],
                      middle=(mid * matvec(mid)).sum(-1).sqrt() / norm_e[:-1],
                      rho=rho, rho_star=rho_s, delta=delta, bound=torch.minimum(local, rho))


def equivalent_configuration(H, u, a0, w0, Q, mu: float, r: float) -> tuple:
    """Proposition 3.2 (1): the configuration (μQᵀHQ, (r/√μ)Qᵀu, r a₀, rQᵀw₀) with the same
    ε and ε_a runs as (H, u, a₀, w₀) does, with a'_k = r a_k, w'_k = rQᵀw_k and
    J'_k = r² J_k (our derivation; the transformation of u as printed in our copy of the
    preprint is garbled).

    H: (d,) or (d, d) PSD; u, w0: (d,) finite; a0: a finite number; Q: (d, d) orthogonal;
    mu, r: numbers > 0. Returns (H', u', a0', w0') with H' a (d, d) matrix.
    """
    matvec, d, u = _problem(H, u, torch.float64)
    w0 = _state("w0", checks.tensor("w0", w0, shape=(d,)), d, matvec, torch.float64, u.device)
    a0 = checks.number("a0", a0)
    Q = checks.tensor("Q", Q, shape=(d, d)).to(torch.float64)
    if float((Q.T @ Q - torch.eye(d, dtype=torch.float64)).abs().max()) > 1e-10:
        raise ValueError("Q must be orthogonal (QᵀQ = I up to round-off)")
    mu, r = checks.positive("mu", mu), checks.positive("r", r)
    Hm = torch.diag(H.to(torch.float64)) if H.ndim == 1 else H.to(torch.float64)
    H2 = mu * Q.T @ Hm @ Q
    return (H2 + H2.T) / 2, r / mu ** 0.5 * Q.T @ u, r * a0, r * Q.T @ w0


@dataclass(frozen=True)
class RotationCheck:
    """Proposition 3.2 (1) along runs: (H, u, a₀, w₀) against its rotated and rescaled
    configuration, and against the garbled form u' = r√μ Qᵀu. Losses in units of c;
    fields (steps+1, *batch) unless stated."""

    loss: torch.Tensor     # J_k/c of the original run
    moved: torch.Tensor    # J'_k/(r²c) of the moved run: equal to ``loss`` up to round-off
    garbled: torch.Tensor  # the same with u' = r√μ Qᵀu (the garbled form): not equal
    bound: torch.Tensor    # round-off bound on |J'_k/r² − J_k|/c: 2(d+1) ε_mach T_k/c
    level: torch.Tensor    # ε_mach T_k/(2c), T_k = c + 2|a_k q_k| + a_k², q_k = wₖᵀg/σ_k
    w_gap: torch.Tensor    # (*batch) ‖w'_T − rQᵀw_T‖/‖r w_T‖ at the last step

    @property
    def gap(self) -> torch.Tensor:
        """|J'_k/r² − J_k|/c per step."""
        return (self.moved - self.loss).abs()

    @property
    def garbled_gap(self) -> torch.Tensor:
        """|J'_k/r² − J_k|/c per step for the garbled u'."""
        return (self.garbled - self.loss).abs()


def rotation_check(H, u, a0, w0, eps, eps_a, steps: int, Q, mu: float, r: float) -> RotationCheck:
    """Run BNGD on (H, u, a₀, w₀), on :func:`equivalent_configuration` and on the garbled
    u' = r√μ Qᵀu (all float64) and compare the losses J'_k/r² with J_k step by step.

    The bound: each loss is evaluated as ½(c − 2aq + a²) from inner products of length d
    (nested ones for the moved run's dense H'), each with relative error up to about
    d·ε_mach/2 (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1), so two
    evaluations differ by at most about 2(d+1) ε_mach T_k with T_k = c + 2|a_k q_k| + a_k²,
    the size of the terms that cancel. Round-off carried along the iterations is not in
    it: a gap below the bound at every step says that the iterations did not amplify it.
    Arguments as for :func:`equivalent_configuration` and :func:`lib.bngd.dynamics.bngd`
    (eps, eps_a > 0 broadcasting together; steps an integer >= 0).
    """
    H2, u2, a2, w2 = equivalent_configuration(H, u, a0, w0, Q, mu, r)
    matvec, d, u = _problem(H, u, torch.float64)
    base = bngd(H, u, a0, w0, eps, eps_a, steps, trajectory=True)
    moved = bngd(H2, u2, a2, w2, eps, eps_a, steps)
    garbled = bngd(H2, r * mu ** 0.5 * Q.to(u).T @ u, a2, w2, eps, eps_a, steps)
    g = matvec(u)
    c = float(u @ g)
    w = base.w_path
    q = (w @ g) / (w * matvec(w)).sum(-1).sqrt()
    terms = (c + 2 * (base.a_path * q).abs() + base.a_path ** 2) / c
    unit = torch.finfo(torch.float64).eps
    rw = r * base.w @ Q.to(u)
    return RotationCheck(loss=base.loss / c, moved=moved.loss / (r**2 * c),
                         garbled=garbled.loss / (r**2 * c), bound=2 * (d + 1) * unit * terms,
                         level=unit * terms / 2,
                         w_gap=(moved.w - rw).norm(dim=-1) / rw.norm(dim=-1))
