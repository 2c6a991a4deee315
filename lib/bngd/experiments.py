"""BNGD against GD on least squares: the paper's problems, its figure 1, and sweeps over ε.

Cai, Li & Shen (2019) compare BNGD (:func:`lib.bngd.dynamics.bngd`) with plain GD at its best
step size on H = diag(logspace(0, log10 κ, d)). Their figure 1 colours every
configuration (a₀, ε, ε_a) by two questions: is the final effective step ε̂ within a
factor 0.8 of GD's optimal step, and is the final BNGD loss below GD's? This module
computes that grid in one batched call and the sweeps over ε that the chapter plots.
"""

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from lib import checks, synthetic
from lib.bngd import dynamics, theory

# Cell classes of figure 1, in the order of CLASS_LABELS.
CLASS_LABELS = ("ε̂ near ε_opt, loss below GD", "ε̂ near ε_opt, loss not below GD",
                "ε̂ far from ε_opt, loss below GD", "ε̂ far from ε_opt, loss not below GD",
                "non-finite")


@dataclass(frozen=True, eq=False)
class Problem:
    """A diagonal least-squares problem with a start, as in the paper's experiments."""

    h: torch.Tensor   # (d,) eigenvalues of H = diag(h), from 1 to κ, log-spaced
    u: torch.Tensor   # (d,) true weights, uniform on the unit sphere
    w0: torch.Tensor  # (d,) start of w (GD and BNGD alike)

    def __post_init__(self):
        h = checks.tensor("h", self.h, ndim=1)
        if not torch.all(h > 0):
            raise ValueError(f"h must hold eigenvalues > 0, got min {float(h.min()):g}")
        checks.tensor("u", self.u, shape=h.shape)
        checks.tensor("w0", self.w0, shape=h.shape)

    @property
    def kappa(self) -> float:
        return float(self.h.max() / self.h.min())

    @property
    def c(self) -> float:
        """c = uᵀHu = E[y²]: twice the loss of the zero prediction, the unit of loss."""
        return float(self.u @ (self.h * self.u))

    @property
    def gd(self) -> theory.GDConstants:
        return theory.gd_constants(self.h)


def paper_problem(kappa: float, d: int = 100, seed: int = 0, start: str = "Hu",
                  device=None) -> Problem:
    """H = diag(logspace(0, log10 κ, d)), u uniform on the unit sphere, and a start w₀.

    Args:
        kappa: condition number (a number >= 1).  d: dimension (an integer >= 1).
        seed: draws u (and w₀), an integer in [0, 2**63).  device: None (CPU) or a device.
        start: "Hu" for the paper's w₀ = Hu/‖Hu‖; "random" for w₀ uniform on the unit
            sphere, turned so that w₀ᵀg > 0.
    """
    kappa = checks.number("kappa", kappa, lo=1)
    d, seed = checks.integer("d", d), checks.seed("seed", seed)
    checks.choice("start", start, ("Hu", "random"))
    device = "cpu" if device is None else checks.device("device", device)
    h = synthetic.log_spectrum(d, kappa)
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(d, generator=gen, dtype=torch.float64)
    u = u / u.norm()
    if start == "Hu":
        w0 = h * u / (h * u).norm()
    else:
        w0 = torch.randn(d, generator=gen, dtype=torch.float64)
        w0 = w0 / w0.norm() * torch.sign(w0 @ (h * u))
    return Problem(*(x.to(device) for x in (h, u, w0)))


def first_step_margin(p: Problem) -> float:
    """‖g‖² − (w₀ᵀg/σ₀²) gᵀHw₀, the quantity in the condition of Proposition 3.5.

    The paper asks for ≥ 0, but part (2) of the proposition (ε̂_k ~ 1/ε for large ε) needs
    > 0. It is 0 exactly for the paper's start w₀ ∝ Hu = g: the first step is then
    orthogonal to g, and (with ε_a = 1) ε̂₁ ~ ε⁻² and ε̂_k ~ ε⁻³ for k ≥ 2.
    """
    checks.instance("p", p, Problem)
    g = p.h * p.u
    s0 = (p.w0 @ g) / (p.w0 @ (p.h * p.w0))
    return float(g @ g - s0 * (g @ (p.h * p.w0)))


@dataclass(frozen=True)
class Figure1Config:
    """The grid of the paper's figure 1 (every value as in the paper)."""

    a0: tuple = (10.0, 1.0, 1e-2, 1e-4, 1e-8)          # initial BN gains (panels)
    eps: tuple = tuple(np.logspace(-5, 16, 43))          # ε, weight step (rows)
    eps_a: tuple = tuple(1.99 * np.logspace(-10, 0, 41))  # ε_a, gain step (columns)
    steps: int = 2000                                   # iterations of GD and BNGD
    close: float = 0.8   # "near ε_opt": close·ε_opt < ε̂ < ε_opt/close
    floor: float = 1e-12  # losses below floor·c are round-off: they count as equal

    def __post_init__(self):
        for name, values in (("a0", self.a0), ("eps", self.eps), ("eps_a", self.eps_a)):
            (checks.array if name == "a0" else checks.positive_array)(name, values, ndim=1)
        checks.integer("steps", self.steps)
        checks.number("close", self.close, lo=0, hi=1, lo_open=True, hi_open=True)
        checks.nonnegative("floor", self.floor)

    @property
    def size(self) -> int:
        return len(self.a0) * len(self.eps) * len(self.eps_a)


@dataclass
class Figure1Result:
    """Final BNGD losses and effective steps over the grid, and GD at its best step."""

    problem: Problem
    config: Figure1Config
    loss: np.ndarray       # (a0, eps, eps_a) J(a, w) after `steps` iterations
    eff_step: np.ndarray   # (a0, eps, eps_a) final ε̂
    loss_gd: float         # J₀ after `steps` GD iterations at ε_opt
    seconds: float         # wall time of the one batched BNGD call
    classes: np.ndarray = field(init=False)  # (a0, eps, eps_a) index into CLASS_LABELS

    def __post_init__(self):
        checks.instance("problem", self.problem, Problem)
        checks.instance("config", self.config, Figure1Config)
        c, cfg = self.problem.c, self.config
        self.classes = classify(self.loss, self.eff_step, self.loss_gd,
                                self.problem.gd.eps_opt, cfg.floor * c, cfg.close)

    def fractions(self) -> dict:
        """Share of the grid in each class."""
        return {lab: float(np.mean(self.classes == i)) for i, lab in enumerate(CLASS_LABELS)}


def classify(loss_bn, eff_step, loss_gd, eps_opt, floor, close=0.8) -> np.ndarray:
    """Class index per cell: 2·(ε̂ not near ε_opt) + (loss not below GD); 4 if non-finite.

    Losses are compared after raising both to ``floor`` (absolute), so two losses at
    round-off level count as equal rather than as a coin toss. loss_bn, eff_step: arrays of
    one shape (NaN/inf: a diverged cell); loss_gd a number (not NaN); eps_opt > 0;
    floor >= 0; close in (0, 1).
    """
    loss_bn = checks.array("loss_bn", loss_bn, finite=False)
    eff_step = checks.array("eff_step", eff_step, finite=False)
    if loss_bn.shape != eff_step.shape:
        raise ValueError(f"loss_bn {loss_bn.shape} and eff_step {eff_step.shape} must have the "
                         f"same shape")
    loss_gd = checks.number("loss_gd", loss_gd, finite=False)
    eps_opt, floor = checks.positive("eps_opt", eps_opt), checks.nonnegative("floor", floor)
    close = checks.number("close", close, lo=0, hi=1, lo_open=True, hi_open=True)
    near = (eff_step > close * eps_opt) & (eff_step < eps_opt / close)
    below = np.maximum(loss_bn, floor) < max(float(loss_gd), floor)
    out = 2 * (~near) + (~below)
    out[~(np.isfinite(loss_bn) & np.isfinite(eff_step))] = 4
    return out.astype(np.int8)


def figure1(problem: Problem, config: Figure1Config = Figure1Config(),
            engine: str = "auto") -> Figure1Result:
    """The paper's figure-1 grid for one problem: one batched BNGD call over every cell.

    engine: as for :func:`lib.bngd.dynamics.bngd` ("auto", "compiled" or "torch").
    """
    checks.instance("problem", problem, Problem)
    checks.instance("config", config, Figure1Config)
    checks.choice("engine", engine, dynamics.ENGINES)
    dt = dict(dtype=torch.float64, device=problem.h.device)
    a0 = torch.tensor(config.a0, **dt)[:, None, None]
    eps = torch.tensor(config.eps, **dt)[:, None]
    eps_a = torch.tensor(config.eps_a, **dt)
    start = time.perf_counter()
    res = dynamics.bngd(problem.h, problem.u, a0, problem.w0, eps, eps_a, config.steps,
                        history=False, engine=engine)   # the full history was 280 MB
    seconds = time.perf_counter() - start
    gd = dynamics.gd(problem.h, problem.u, problem.w0, problem.gd.eps_opt, config.steps)
    return Figure1Result(problem, config, res.loss[-1].cpu().numpy(),
                         res.eff_step[-1].cpu().numpy(), float(gd.loss[-1]), seconds)


def nudged(problem: Problem, direction: float) -> Problem:
    """The same problem with every entry of w₀ moved by one ulp towards ``direction``
    (+inf or −inf): a start that float64 cannot tell from w₀ by more than round-off."""
    checks.instance("problem", problem, Problem)
    if direction not in (math.inf, -math.inf):
        raise ValueError(f"direction must be +inf or -inf, got {direction!r}")
    w0 = problem.w0.cpu().numpy()
    moved = torch.from_numpy(np.nextafter(w0, direction)).to(problem.w0.device)
    return Problem(problem.h, problem.u, moved)


def round_off_cells(result: Figure1Result, engine: str = "auto") -> np.ndarray:
    """Cells of figure 1 whose class round-off decides: (a0, eps, eps_a) bools, True where
    the class changes when w₀ moves by one ulp up or down (:func:`nudged`).

    There the dynamics amplify a difference of one rounding into another colour, so two
    correct float64 implementations (sums in another order) may colour them differently.
    result: a :class:`Figure1Result`; engine: as for :func:`figure1`.
    """
    checks.instance("result", result, Figure1Result)
    checks.choice("engine", engine, dynamics.ENGINES)
    out = np.zeros(result.classes.shape, dtype=bool)
    for direction in (math.inf, -math.inf):
        other = figure1(nudged(result.problem, direction), result.config, engine)
        out |= other.classes != result.classes
    return out


@dataclass
class EpsSweep:
    """GD and BNGD over a range of ε on one problem (losses in units of c)."""

    eps: np.ndarray       # (n,) step sizes ε
    loss_gd: np.ndarray   # (steps+1, n) J₀(w_k)/c
    loss_bn: np.ndarray   # (steps+1, n) J(a_k, w_k)/c
    eff_step: np.ndarray  # (steps, n) ε̂_k of BNGD
    gd: theory.GDConstants   # GD's limits for this problem

    def steps_to(self, tol: float) -> tuple[np.ndarray, np.ndarray]:
        """(GD, BNGD) first step with loss/c ≤ tol, −1 where not reached in the run."""
        return tuple(theory.steps_to_tolerance(torch.from_numpy(x), tol).numpy()
                     for x in (self.loss_gd, self.loss_bn))


def eps_sweep(problem: Problem, eps, steps: int, a0: float = 1.0, eps_a: float = 1.0) -> EpsSweep:
    """Run GD and BNGD for every ε in ``eps`` (one batched call each).

    eps: 1-D numbers > 0; steps: an integer >= 0; a0 finite; eps_a > 0.
    """
    checks.instance("problem", problem, Problem)
    eps = checks.positive_array("eps", eps, ndim=1)
    eps = torch.as_tensor(eps, dtype=torch.float64, device=problem.h.device)
    bn = dynamics.bngd(problem.h, problem.u, a0, problem.w0, eps, eps_a, steps)
    gd = dynamics.gd(problem.h, problem.u, problem.w0, eps, steps)
    c = problem.c
    return EpsSweep(eps.cpu().numpy(), (gd.loss / c).cpu().numpy(), (bn.loss / c).cpu().numpy(),
                    bn.eff_step.cpu().numpy(), problem.gd)


def best_rates(problem: Problem) -> dict:
    """Per-step contraction of the residual at the best step: GD (κ) and BNGD near its
    minimiser (κ* of H*), ((κ−1)/(κ+1) and (κ*−1)/(κ*+1))."""
    checks.instance("problem", problem, Problem)
    kappa = problem.kappa
    kstar = theory.pseudo_condition(problem.h, problem.u)
    return {"kappa": kappa, "kappa_star": kstar, "gd": (kappa - 1) / (kappa + 1),
            "bngd": (kstar - 1) / (kstar + 1)}


def gd_rates(kappa: float, steps: int = 200, n_eps: int = 121, eps_range=(1e-5, 10.0)) -> dict:
    """Per-step contraction of GD on H = diag(1, κ) against ε: measured and max_i |1 − ελ_i|.

    The ε grid is ``n_eps`` log-spaced values plus ε_opt and 2/λ_max. Measured from one
    batched GD run (u = 0) started from each eigenvector of H in turn, so that every
    direction's contraction is seen on its own: (J₀(w_K)/J₀(w_{K/2}))^(1/K) per start
    (the loss is quadratic in the error, which contracts K/2 times in between), K the last
    step whose loss is inside [1e-280, 1e280], then the largest over the starts.
    kappa >= 1; steps >= 2 (a rate needs K >= 2); n_eps >= 1; eps_range: 0 < lo < hi.
    """
    kappa = checks.number("kappa", kappa, lo=1)
    steps, n_eps = checks.integer("steps", steps, lo=2), checks.integer("n_eps", n_eps)
    eps_range = checks.interval("eps_range", eps_range)
    h = torch.tensor([1.0, float(kappa)], dtype=torch.float64)
    k = theory.gd_constants(h)
    eps = np.union1d(np.geomspace(*eps_range, n_eps), [k.eps_opt, k.eps_max])  # both exactly
    starts = torch.eye(2, dtype=torch.float64)[:, None, :]                        # (2, 1, 2)
    loss = dynamics.gd(h, torch.zeros(2), starts, torch.from_numpy(eps), steps).loss.numpy()
    inside = (loss > 1e-280) & (loss < 1e280)                                     # (T+1, 2, n)
    last = steps - np.argmax(inside[::-1], axis=0)                                 # K per run
    pick = lambda kk: np.take_along_axis(loss, kk[None], 0)[0]  # noqa: E731
    with np.errstate(all="ignore"):
        rate = (pick(last) / pick(last // 2)) ** (0.5 / (last - last // 2))
    rate[last < 2] = np.nan
    rate[np.all(loss[1:] == 0, axis=0)] = 0.0         # exact in one step (ε = 1/λ_i)
    measured = rate.max(0)                               # NaN if either run is NaN
    predicted = np.abs(1 - eps[:, None] * h.numpy()).max(1)
    return {"eps": eps, "measured": measured, "theory": predicted, "constants": k}


SLIDER_D = 10       # dimension of the slider figure's problem
SLIDER_STEPS = 200  # steps shown by the slider figure (the site payload grows with it)


def slider_run(eps: float, eps_a: float, a0: float, kappa: float, steps: int = SLIDER_STEPS,
               batch_eps: tuple = ()) -> dict:
    """BNGD at (ε, ε_a, a₀), GD at ε and GD at ε_opt on the paper's problem with d = 10.

    Losses are in units of c; ``eff_step`` is BNGD's ε̂_k; ``constants`` GD's limits.
    ``batch_eps``: step sizes to compute together with ε in one batched call (and keep in
    a small memory cache), so that a slider grid over ε costs one run per setting of the
    other sliders; the result for ε is the same either way (up to round-off).
    eps, eps_a > 0; a0 finite; kappa >= 1; steps >= 1; batch_eps: numbers > 0 (may be empty).
    """
    eps, eps_a = checks.positive("eps", eps), checks.positive("eps_a", eps_a)
    a0, kappa = checks.number("a0", a0), checks.number("kappa", kappa, lo=1)
    steps = checks.integer("steps", steps)
    checks.positive_array("batch_eps", batch_eps, ndim=1, nonempty=False)
    grid = tuple(float(e) for e in batch_eps) if float(eps) in batch_eps else (float(eps),)
    runs = _slider_batch(float(kappa), float(eps_a), float(a0), grid, steps)
    j = grid.index(float(eps))
    return {name: (v[..., j] if isinstance(v, np.ndarray) and v.ndim == 2 else v)
            for name, v in runs.items()}


@functools.lru_cache(maxsize=128)
def _slider_batch(kappa, eps_a, a0, eps, steps):
    p = paper_problem(kappa, d=SLIDER_D)
    c, k = p.c, p.gd
    e = torch.tensor(eps, dtype=torch.float64)
    bn = dynamics.bngd(p.h, p.u, a0, p.w0, e, eps_a, steps)
    gd = dynamics.gd(p.h, p.u, p.w0, torch.cat([e, torch.tensor([k.eps_opt], dtype=torch.float64)]), steps)
    loss_gd = (gd.loss / c).numpy()
    return {"bngd": (bn.loss / c).numpy(), "gd": loss_gd[:, :-1], "gd_opt": loss_gd[:, -1],
            "eff_step": bn.eff_step.numpy(), "constants": k}
