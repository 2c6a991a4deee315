"""BNGD from many random draws at once: Theorem 3.3 (2) and appendix B of Cai, Li & Shen.

Theorem 3.3 (2) says that with ε_a = 1 BNGD converges to a global minimiser from almost
every start (a₀, w₀); :func:`random_starts` runs a thousand starts per ε in one batched
call and :func:`saddle_escape` starts next to the saddle set {a = 0, wᵀg = 0}, the only
other stationary points. Appendix B runs *modified* BNGD (the gain set to its optimum
wₖᵀg/σ_k every step) from random draws of u and w₀ and reports geometric means over the
draws; :func:`modified_draws` does so, with GD beside it, for every ε and draw at once.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from lib import checks
from lib.bngd import dynamics, theory
from lib.bngd.experiments import Problem


@dataclass(frozen=True)
class StartsResult:
    """BNGD (ε_a = 1) from n random starts for each of m step sizes ε."""

    eps: np.ndarray     # (m,) step sizes ε
    first: np.ndarray   # (m, n) first step with J/c ≤ tol, −1 if never within the run
    loss: np.ndarray    # (m, n) final J/c
    a: np.ndarray       # (m, n) final gain a_T, in units of √c
    q: np.ndarray       # (m, n) final wᵀg/σ, in units of √c
    steps: int          # steps run
    tol: float          # the tolerance of ``first``

    def converged_by(self) -> np.ndarray:
        """(steps+1, m): share of the starts with J/c ≤ tol by step k."""
        k = np.arange(self.steps + 1)[:, None, None]
        hit = (self.first[None] >= 0) & (self.first[None] <= k)
        return hit.mean(-1)

    def near_saddle(self, radius: float = 1e-3) -> np.ndarray:
        """(m,): share of the starts that end with |a| and |wᵀg/σ| below radius·√c."""
        radius = checks.positive("radius", radius)
        return ((np.abs(self.a) < radius) & (np.abs(self.q) < radius)).mean(-1)


def random_starts(problem: Problem, eps, n: int = 1000, steps: int = 1000, seed: int = 0,
                  tol: float = 1e-10) -> StartsResult:
    """BNGD with ε_a = 1 from n starts a₀ ~ N(0, 1), w₀ ~ N(0, I/d) for every ε at once.

    problem: a Problem (its w0 is not used); eps: 1-D numbers > 0; n, steps: integers
    >= 1; seed: an integer in [0, 2**63); tol > 0 (in units of c).
    """
    checks.instance("problem", problem, Problem)
    eps = checks.positive_array("eps", eps, ndim=1)
    n, steps = checks.integer("n", n), checks.integer("steps", steps)
    seed, tol = checks.seed("seed", seed), checks.positive("tol", tol)
    dev, d = problem.h.device, problem.h.shape[0]
    gen = torch.Generator().manual_seed(seed)
    a0 = torch.randn(n, generator=gen, dtype=torch.float64).to(dev)
    w0 = (torch.randn(n, d, generator=gen, dtype=torch.float64) / math.sqrt(d)).to(dev)
    e = torch.as_tensor(eps, dtype=torch.float64, device=dev)[:, None]
    run = dynamics.bngd(problem.h, problem.u, a0, w0, e, 1.0, steps)
    c = problem.c
    loss = run.loss / c
    g = problem.h * problem.u
    q = (run.w @ g) / (run.w * (problem.h * run.w)).sum(-1).sqrt()
    return StartsResult(eps=eps, first=theory.steps_to_tolerance(loss, tol).cpu().numpy(),
                        loss=loss[-1].cpu().numpy(), a=(run.a / math.sqrt(c)).cpu().numpy(),
                        q=(q / math.sqrt(c)).cpu().numpy(), steps=steps, tol=tol)


def saddle_start(problem: Problem) -> torch.Tensor:
    """A w₀ with w₀ᵀg = 0 exactly in floating point: g_j e_i − g_i e_j for the two largest
    |g_i|, scaled by a power of 2 to a norm in [1, 2). With a₀ = 0, BNGD stays there."""
    checks.instance("problem", problem, Problem)
    g = (problem.h * problem.u).cpu()
    if g.shape[0] < 2:
        raise ValueError("problem must have d >= 2 (a w ⟂ g needs a second direction)")
    i, j = (int(x) for x in g.abs().argsort(descending=True)[:2])
    w = torch.zeros_like(g)
    w[i], w[j] = g[j], -g[i]
    return (w * 2.0 ** -math.floor(math.log2(float(w.norm())))).to(problem.h.device)


def saddle_escape(problem: Problem, etas, eps: float = 1.0, steps: int = 300) -> np.ndarray:
    """J/c (steps+1, len(etas)) of BNGD (a₀ = 0, ε_a = 1) from w₀ = saddle_start + η g/‖g‖.

    η = 0 is the saddle set itself (measure zero); any η > 0 lies off it.
    etas: 1-D numbers >= 0; eps > 0; steps an integer >= 1.
    """
    checks.instance("problem", problem, Problem)
    etas = checks.array("etas", etas, ndim=1)
    if np.any(etas < 0):
        raise ValueError(f"etas must hold numbers >= 0, got min {etas.min():g}")
    eps, steps = checks.positive("eps", eps), checks.integer("steps", steps)
    g = problem.h * problem.u
    eta = torch.as_tensor(etas, dtype=torch.float64, device=g.device)[:, None]
    w0 = saddle_start(problem) + eta * g / g.norm()
    run = dynamics.bngd(problem.h, problem.u, 0.0, w0, eps, 1.0, steps)
    return (run.loss / problem.c).cpu().numpy()


def sphere(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """(n, d) float64 points uniform on the unit sphere of R^d (n, d integers >= 1; gen a
    torch.Generator)."""
    n, d = checks.integer("n", n), checks.integer("d", d)
    checks.instance("gen", gen, torch.Generator)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def gmean(x, axis=-1) -> np.ndarray:
    """Geometric mean exp(E ln x) over ``axis`` (x > 0; inf stays inf, 0 gives 0)."""
    x = checks.array("x", x, finite=False)
    if np.any(x < 0) or np.any(np.isnan(x)):
        raise ValueError("x must hold numbers >= 0 (a geometric mean)")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(np.log(x).mean(axis))


@dataclass(frozen=True)
class DrawsResult:
    """Modified BNGD and GD after ``steps`` steps, per step size ε and draw of (u, w₀)."""

    h: np.ndarray          # (d,) eigenvalues of H
    eps: np.ndarray        # (m,) step sizes ε
    steps: int             # iterations of both
    eff_bn: np.ndarray     # (m, n) final effective step ε̂ of modified BNGD
    loss_bn: np.ndarray    # (m, n) ‖e_T‖²_H, e = u − (wᵀg/σ²)w (twice the loss)
    err_bn: np.ndarray     # (m, n) ‖e_T‖
    loss_gd: np.ndarray    # (m, n) ‖w_T − u‖²_H of GD (inf/NaN where it diverged)
    err_gd: np.ndarray     # (m, n) ‖w_T − u‖
    kappa_star: np.ndarray  # (n,) κ* of each draw's H* (section 3.3; NaN if d = 1)
    u: np.ndarray          # (n, d) the draws of u
    w0: np.ndarray         # (n, d) the draws of w₀

    @property
    def eps_opt(self) -> float:
        return 2 / (float(self.h.max()) + float(self.h.min()))


def modified_draws(h, eps, draws: int = 300, steps: int = 5000, seed: int = 0) -> DrawsResult:
    """Appendix B's experiment: u and w₀ uniform on the unit sphere, ``draws`` times;
    modified BNGD and GD for every ε and draw in one batched call each.

    h: (d,) eigenvalues > 0 of H = diag(h) (a floating tensor); eps: 1-D numbers > 0;
    draws, steps: integers >= 1; seed: an integer in [0, 2**63).
    """
    h = checks.tensor("h", h, ndim=1).to(torch.float64)
    if not torch.all(h > 0):
        raise ValueError(f"h must hold eigenvalues > 0, got min {float(h.min()):g}")
    eps = checks.positive_array("eps", eps, ndim=1)
    draws, steps = checks.integer("draws", draws), checks.integer("steps", steps)
    gen = torch.Generator().manual_seed(checks.seed("seed", seed))
    d = h.shape[0]
    u, w0 = (sphere(draws, d, gen).to(h.device) for _ in range(2))
    e = torch.as_tensor(eps, dtype=torch.float64, device=h.device)[:, None]
    bn = dynamics.mbngd(h, u, w0, e, steps, history=False)   # the final state is all we use
    gd = dynamics.gd(h, u, w0, e, steps, history=False)
    s = (bn.w * h * u).sum(-1) / _h_norm_sq(bn.w, h)            # (m, n)
    res = u - s.unsqueeze(-1) * bn.w                          # (m, n, d)
    err = gd.w - u
    def np_(x):   # diverged GD runs overflow to inf or NaN: inf for both
        return torch.where(torch.isnan(x), math.inf, x).cpu().numpy()
    kstar = [theory.pseudo_condition(h, x) if d > 1 else math.nan for x in u]
    return DrawsResult(h=np_(h), eps=eps, steps=steps, eff_bn=np_(bn.eff_step[-1]),
                       loss_bn=np_(_h_norm_sq(res, h)), err_bn=np_(res.norm(dim=-1)),
                       loss_gd=np_(_h_norm_sq(err, h)), err_gd=np_(err.norm(dim=-1)),
                       kappa_star=np.array(kstar), u=np_(u), w0=np_(w0))


def gd_losses(result: DrawsResult, eps) -> np.ndarray:
    """(len(eps), n) ‖w_T − u‖²_H of GD on the draws of ``result`` after its steps, for
    other step sizes than its own (e.g. a fine grid below 2/λ_max); inf where GD diverged.

    result: a DrawsResult; eps: 1-D numbers > 0.
    """
    checks.instance("result", result, DrawsResult)
    eps = checks.positive_array("eps", eps, ndim=1)
    h, u, w0 = (torch.from_numpy(x) for x in (result.h, result.u, result.w0))
    run = dynamics.gd(h, u, w0, torch.from_numpy(eps)[:, None], result.steps, history=False)
    loss = _h_norm_sq(run.w - u, h)              # as modified_draws computes loss_gd
    return torch.where(torch.isnan(loss), math.inf, loss).numpy()


def _h_norm_sq(err, h):
    """‖err‖²_H = Σᵢ hᵢ errᵢ² over the last axis, for H = diag(h)."""
    return (err * h * err).sum(-1)
