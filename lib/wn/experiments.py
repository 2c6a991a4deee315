"""Experiments of the weight-normalisation chapter: kernel predictions, checks and sweeps.

The network and its kernels are in :mod:`lib.wn.networks`, its training in
:mod:`lib.wn.training` (independent checks in :mod:`lib.wn.theory`); this module holds the chapter's sizes and data, what the
linearised (kernel) dynamics predict, and the training sweeps over the initialisation
scale α, the step η and the width m (through :mod:`lib.sweep`), including the slider's.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from lib import scale as _scale
from lib import checks, controls, sweep
from lib.wn import networks, theory, training
from lib import train as _train


@dataclass(frozen=True)
class Sizes:
    """Sizes of the chapter's experiments, derived from the book's scale."""

    n: int               # training points, unit-norm inputs
    d: int               # input dimension
    width: int           # hidden units m of the networks in the α and η sweeps
    widths: tuple        # m of the over-parameterisation sweep (log-spaced)
    kernel_widths: tuple  # m at which finite-width Gram matrices are compared with the limit
    mc_samples: int      # Monte Carlo directions behind the limit-kernel check
    steps: int           # full-batch GD steps per training run
    seeds: int           # initialisations behind every training claim
    etas: tuple          # step sizes η of the α × η sweep (log-spaced)
    alphas: tuple        # initialisation scales α (log-spaced, 0.1 … 100)

    def __post_init__(self):
        for name in ("n", "d", "width", "mc_samples", "steps", "seeds"):
            checks.integer(name, getattr(self, name), lo=2 if name == "d" else 1)
        for name in ("widths", "kernel_widths", "etas", "alphas"):
            _numbers(name, getattr(self, name), integer=name.endswith("widths"))


def _numbers(name, values, integer=False, empty=False) -> list:
    """A list (non-empty unless ``empty``) of integers ≥ 1 (``integer``) or numbers > 0."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    values = [checks.integer(name, v) if integer else checks.positive(name, v) for v in values]
    if not values and not empty:
        raise ValueError(f"{name} must not be empty")
    return values


def sizes(scale: _scale.Scale | None = None) -> Sizes:
    """The chapter's sizes at ``scale`` (a :class:`lib.scale.Scale`; default: the current)."""
    if scale is not None and not isinstance(scale, _scale.Scale):
        raise TypeError(f"scale must be a lib.scale.Scale or None, got {type(scale).__name__}")
    s = scale or _scale.current()
    log_ints = lambda lo, hi, k: tuple(int(round(v)) for v in np.geomspace(lo, hi, k))  # noqa: E731
    return Sizes(n=20, d=10, width=3 * s.width, widths=log_ints(20, 10 * s.width, 5),
                 kernel_widths=log_ints(10, 100 * s.width, 7),
                 mc_samples=s.cut(2_000 * s.width, 2_000),
                 steps=s.steps, seeds=s.seeds,
                 etas=tuple(np.geomspace(0.01, 10, s.grid - 2).tolist()),
                 alphas=tuple(np.geomspace(0.1, 100, 7).tolist()))


def float64_device(device) -> torch.device:
    """``device`` if it is CUDA, else the CPU: the chapter computes in float64, which Apple's
    MPS lacks, and its small matrices gain nothing from a GPU otherwise. ``device`` names a
    device of this machine (MPS, replaced anyway, need not be present)."""
    try:
        kind = torch.device(device).type if isinstance(device, (str, torch.device)) else None
    except (RuntimeError, ValueError):
        kind = None
    device = torch.device("cpu") if kind == "mps" else checks.device("device", device)
    return device if device.type == "cuda" else torch.device("cpu")


def unit_sphere_data(n, d, seed=0, dtype=torch.float64, device="cpu"):
    """Seeded regression data: inputs uniform on the unit sphere, targets uniform in [−1, 1].

    Returns (X (n, d), y (n,)) of a floating ``dtype``; n ≥ 1, d ≥ 2, an integer seed.
    Distinct random points are non-parallel with probability 1.
    """
    n, d = checks.integer("n", n), checks.integer("d", d, lo=2)
    dtype, device = checks.float_dtype("dtype", dtype), checks.device("device", device)
    gen = torch.Generator().manual_seed(checks.seed("seed", seed))
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    X = X / X.norm(dim=1, keepdim=True)
    y = 2 * torch.rand(n, generator=gen, dtype=torch.float64) - 1
    return X.to(device, dtype), y.to(device, dtype)


# --- what the kernel predicts ----------------------------------------------------------
def linear_loss(K: torch.Tensor, r0: torch.Tensor, eta: float, steps: int) -> np.ndarray:
    """(steps+1,) losses ½‖(I − ηK)^t r0‖² of GD on the linearised network (K fixed).

    K (n, n) symmetric (:func:`lib.wn.networks.check_kernel`), r0 (n,) finite, η > 0, steps ≥ 0.
    """
    K = networks.check_kernel("K", K)
    r0 = checks.tensor("r0", r0, shape=(K.shape[0],), dtype=K.dtype)
    eta, steps = checks.positive("eta", eta), checks.integer("steps", steps, lo=0)
    lam, Q = torch.linalg.eigh(K)
    coef = (Q.T @ r0).cpu().numpy()                              # r0 in K's eigenbasis
    with np.errstate(over="ignore"):
        factor = (1 - eta * lam.cpu().numpy())[None, :] ** np.arange(steps + 1)[:, None]
        return 0.5 * ((factor * coef) ** 2).sum(1)


def predicted_ratio(K: torch.Tensor, eta: float) -> float:
    """Late-time loss ratio per step of the linearised network: max_i (1 − ηλ_i(K))².

    K (n, n) symmetric, η > 0."""
    K, eta = networks.check_kernel("K", K), checks.positive("eta", eta)
    return float(torch.max((1 - eta * torch.linalg.eigvalsh(K)) ** 2))


def measured_ratio(loss, floor: float = 1e-20) -> float:
    """Loss ratio per step over the second half of the run above ``floor`` (round-off).

    (L(t2)/L(t1))^(1/(t2 − t1)) with t2 the last step where L > floor and t1 = t2/2.
    ``loss`` is 1-D (inf/NaN allowed: they are not above the floor); ``floor`` > 0.
    """
    loss = checks.array("loss", loss, ndim=1, finite=False)
    t1, t2 = _window(loss, checks.positive("floor", floor))
    return float((loss[t2] / loss[t1]) ** (1.0 / (t2 - t1)))


def _window(loss: np.ndarray, floor: float = 1e-20) -> tuple:
    """(t1, t2) of :func:`measured_ratio`: t2 the last index with a finite loss > floor."""
    above = np.flatnonzero(np.isfinite(loss) & (loss > floor))
    if above.size < 3 or above[-1] < 2:
        raise ValueError("loss must be a curve with at least three steps above the floor")
    t2 = int(above[-1])
    return t2 // 2, t2


def rate_from_ratio(ratio: float, eta: float) -> float:
    """The λ with (1 − ηλ)² = ratio: the kernel eigenvalue a measured ratio implies.

    ratio ≥ 0 and η > 0, finite."""
    ratio, eta = checks.nonnegative("ratio", ratio), checks.positive("eta", eta)
    return (1.0 - math.sqrt(ratio)) / eta


def effective_alpha(weight_norm_sq_v, weight_norm_sq_g) -> np.ndarray:
    """α_eff = ‖v‖_F/‖g‖ from the training loop's norm records (equals α at t = 0).

    Both arguments are ``(..., 1)`` arrays of squared norms > 0 (one tensor per group),
    of one shape; inf (an overflowed norm) is allowed.
    """
    v = checks.positive_array("weight_norm_sq_v", weight_norm_sq_v, finite=False)
    g = checks.positive_array("weight_norm_sq_g", weight_norm_sq_g, finite=False)
    if v.shape != g.shape or v.ndim < 1 or v.shape[-1] != 1:
        raise ValueError(f"weight_norm_sq_v and weight_norm_sq_g must both have shape (..., 1), "
                         f"got {v.shape} and {g.shape}")
    return np.sqrt(v[..., 0] / g[..., 0])


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x: 1-D arrays > 0 of one length ≥ 2."""
    x, y = checks.positive_array("x", x, ndim=1), checks.positive_array("y", y, ndim=1)
    if checks.same_length(x=x, y=y) < 2 or np.ptp(x) == 0:
        raise ValueError("x must hold at least two distinct values to fit a slope")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


# --- training sweeps -----------------------------------------------------------------------
def limit_evolution_kernel(X, alpha: float) -> torch.Tensor:
    """Λ∞ = V∞/α² + G∞ (n, n): the infinite-width kernel at initialisation scale α > 0
    (X (n, d) with unit-norm rows)."""
    alpha = checks.positive("alpha", alpha)
    _, V, G = networks.limit_kernels(X)
    return V / alpha**2 + G


def limit_least_eigenvalue(X, alphas) -> np.ndarray:
    """λ_min(Λ∞_α) for every α (a non-empty list of numbers > 0): the predicted rate."""
    alphas = _numbers("alphas", alphas)
    networks.check_inputs(X, unit=True)
    return np.array([float(torch.linalg.eigvalsh(limit_evolution_kernel(X, a))[0])
                     for a in alphas])


def limit_edges(X, alphas) -> np.ndarray:
    """2/λ_max(Λ∞_α) for every α (a non-empty list of numbers > 0): the largest stable step
    of the linearised dynamics at infinite width. It rises with α (V∞/α² shrinks) towards
    2/λ_max(G∞), the edge of the lengths alone."""
    alphas = _numbers("alphas", alphas)
    networks.check_inputs(X, unit=True)
    return np.array([2.0 / float(torch.linalg.eigvalsh(limit_evolution_kernel(X, a))[-1])
                     for a in alphas])


def tuned_step(X, alpha: float) -> float:
    """η_α = 1/λ_max(Λ∞_α): half the largest stable step of the linearised dynamics."""
    return 1.0 / float(torch.linalg.eigvalsh(limit_evolution_kernel(X, alpha))[-1])


def _initial_spectra(X, alphas, width, seeds, normalized=True):
    """(len(alphas), seeds, n) eigenvalues of Λ(0) (of the plain NTK if not normalized)."""
    out = []
    for a in alphas:
        ps = [networks.init_wn(X.shape[1], width, a, s, X.dtype, X.device) for s in range(seeds)]
        K = [networks.evolution_kernel(p, X) if normalized else theory.plain_ntk(p.weights(), X)
             for p in ps]
        out.append(torch.stack([torch.linalg.eigvalsh(k) for k in K]).cpu().numpy())
    return np.stack(out)


@dataclass
class RegimeSweep:
    """GD over α × η × seed (WN) and η × seed (un-normalised), from :func:`regime_sweep`."""

    alphas: np.ndarray          # (A,) initialisation scales
    etas: np.ndarray            # (E,) step sizes
    step: np.ndarray            # (T,) recorded steps
    loss: np.ndarray            # (A, E, S, T) WN loss
    alpha_eff: np.ndarray       # (A, E, S, T) ‖v‖_F/‖g‖ during training
    plain_loss: np.ndarray      # (E, S, T) un-normalised loss
    spectrum: np.ndarray        # (A, S, n) eigenvalues of Λ(0)
    plain_spectrum: np.ndarray  # (S, n) eigenvalues of the un-normalised NTK at t = 0

    def edge(self) -> np.ndarray:
        """(A,) 2/λ_max(Λ(0)), mean over seeds: the largest stable step of the linearisation."""
        return (2 / self.spectrum[..., -1]).mean(-1)

    def rates(self, plain: bool = False, margin: float = 0.9, decay: float = 3.0) -> np.ndarray:
        """Measured λ̂ = (1 − √ρ)/η, (A, E, S) or (E, S) for ``plain``; NaN where unusable.

        A run is used when its linearisation is dominated by the slowest mode,
        η(λ_min + λ_max) ≤ 2·margin, and that mode has decayed: ηλ_min T ≥ ``decay``.
        """
        loss = self.plain_loss[None] if plain else self.loss          # (A, E, S, T)
        spec = self.plain_spectrum[None] if plain else self.spectrum   # (A, S, n)
        lo, hi = spec[:, None, :, 0], spec[:, None, :, -1]             # (A, 1, S)
        eta = self.etas[None, :, None]
        usable = (eta * (lo + hi) <= 2 * margin) & (eta * lo * self.step[-1] >= decay)
        out = np.full(loss.shape[:3], np.nan)
        for idx in zip(*np.nonzero(usable)):
            out[idx] = rate_from_ratio(measured_ratio(loss[idx]), self.etas[idx[1]])
        return out[0] if plain else out

    def best_rates(self, plain: bool = False) -> tuple:
        """(rate, η) at each α's best grid step: the largest median over seeds of the
        measured e-folds of the residual per step, −½ log ρ, over the η grid (runs that
        diverge count as not converging). Arrays (A,), or one number each if ``plain``."""
        loss = self.plain_loss[None] if plain else self.loss            # (A, E, S, T)
        rate = np.full(loss.shape[:3], -np.inf)
        for idx in np.ndindex(*loss.shape[:3]):
            try:
                rate[idx] = -0.5 * math.log(measured_ratio(loss[idx]))
            except ValueError:                     # blew up within three steps
                pass
        med = np.median(rate, -1)                                       # (A, E)
        k = np.argmax(med, -1)
        best, eta = med[np.arange(len(k)), k], self.etas[k]
        return (float(best[0]), float(eta[0])) if plain else (best, eta)


def window_kernels(X, y, rs: RegimeSweep, width: int, every: int = 10) -> np.ndarray:
    """(A, E, S) λ_min(Λ(t)) averaged over the window [t2/2, t2] on which ``rs.rates()``
    measures each usable run (NaN elsewhere, and where no record falls in the window):
    what the rate should match if Λ drifts.

    Trains the usable runs of ``rs`` again (the WN network of :func:`regime_sweep`: seed s,
    scale α, ``width`` units) in one stacked run that records Λ(t) every ``every`` steps.
    X (n, d) unit-norm rows and y (n,) the sweep's data; data or a ``width`` that do not
    reproduce the sweep's Λ(0) are refused (ValueError).
    """
    rs = checks.instance("rs", rs, RegimeSweep, made_by="regime_sweep")
    X = networks.check_inputs(X, unit=True)
    checks.same_length(X=X, y=checks.tensor("y", y, ndim=1, dtype=X.dtype))
    width, every = checks.integer("width", width), checks.integer("every", every)
    runs = [tuple(i) for i in np.argwhere(np.isfinite(rs.rates()))]
    out = np.full(rs.loss.shape[:3], np.nan)
    if not runs:
        return out
    ps = [networks.init_wn(X.shape[1], width, rs.alphas[a], int(s), X.dtype, X.device)
          for a, _, s in runs]
    hs = training.train_batch(ps, X, y, [rs.etas[e] for _, e, _ in runs], int(rs.step[-1]),
                              observe_every=every)
    for (a, e, s), h in zip(runs, hs):
        spec0 = rs.spectrum[a, s]                 # the same start? (round-off: m·ε·λ_max)
        if np.abs(h.spectrum[0] - spec0).max() > 1e-8 * spec0[-1]:
            raise ValueError(f"X and width ({width}) do not reproduce the sweep's Λ(0) "
                             f"(α = {rs.alphas[a]:g}, seed {s})")
        t1, t2 = _window(rs.loss[a, e, s])
        lam = h.lam_min[(h.observed >= t1) & (h.observed <= t2)]
        out[a, e, s] = lam.mean() if lam.size else np.nan
    return out


def _check_data(X, y, sz, cache):
    if not isinstance(sz, Sizes):
        raise TypeError(f"sz must be Sizes (from sizes()), got {type(sz).__name__}")
    X = networks.check_inputs(X, unit=True)
    if X.shape[1] != sz.d:
        raise ValueError(f"X has {X.shape[1]} columns but sz.d = {sz.d}")
    checks.same_length(X=X, y=checks.tensor("y", y, ndim=1, dtype=X.dtype))
    if cache is not None:
        checks.string("cache", cache)


def _make(width, d, normalized):
    return functools.partial(networks.make_module, n_in=d, width=width, normalized=normalized)


def regime_sweep(X, y, sz: Sizes, cache: str | None = None) -> RegimeSweep:
    """Train WN networks over α × η × seed and the un-normalised one over η × seed.

    X (n, sz.d) unit-norm rows, y (n,) finite; ``cache`` None or a name.
    """
    _check_data(X, y, sz, cache)
    config = _train.TrainConfig(steps=sz.steps, loss="sse")
    grid = sweep.Grid(alpha=list(sz.alphas), eta=list(sz.etas), seed=list(range(sz.seeds)))
    res = sweep.train_grid(_make(sz.width, sz.d, True), (X, y), config, grid, cache=cache)
    plain = sweep.train_grid(_make(sz.width, sz.d, False), (X, y), config,
                             sweep.Grid(eta=list(sz.etas), seed=list(range(sz.seeds))),
                             cache=cache and f"{cache}-plain")
    return RegimeSweep(np.array(sz.alphas), np.array(sz.etas), res.step, res.metrics["loss"],
                       effective_alpha(res.metrics["weight_norm_sq_w"],
                                       res.metrics["weight_norm_sq_g"]),
                       plain.metrics["loss"],
                       _initial_spectra(X, sz.alphas, sz.width, sz.seeds),
                       _initial_spectra(X, [1.0], sz.width, sz.seeds, normalized=False)[0])


def _width_runs(width, X, y, alpha, eta, steps, seeds, device):
    """``seeds`` runs at one width (trained together), as plain arrays (S, ...) for the cache."""
    X, y = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    ps = [networks.init_wn(X.shape[1], width, alpha, s, X.dtype, X.device) for s in range(seeds)]
    hs = training.train_batch(ps, X, y, [eta] * seeds, steps, observe_every=OBSERVE_EVERY)
    linear = [linear_loss(networks.evolution_kernel(p, X), networks.forward(p, X) - y, eta, steps) for p in ps]
    get = lambda k: np.stack([getattr(h, k) for h in hs])  # noqa: E731
    return {"loss": get("loss"), "linear": np.stack(linear), "observed": hs[0].observed,
            **{k: get(k) for k in ("lam_min", "sign_changes", "dist_v", "dist_g")}}


OBSERVE_EVERY = 5  # steps between kernel records in the width sweep (λ_min(Λ(t)) costs an eigh)


@dataclass
class WidthSweep:
    """WN training at one α and η for several widths m; arrays (W, S, T)."""

    widths: np.ndarray        # (W,)
    eta: float                # the step size used for every width
    loss: np.ndarray          # L(t)
    linear: np.ndarray        # L(t) of the linearised network with Λ(0)
    observed: np.ndarray      # (T',) steps at which lam_min, sign_changes, dist_* were recorded
    lam_min: np.ndarray       # λ_min(Λ(t))
    sign_changes: np.ndarray  # fraction of ReLU patterns 𝟙{g_k v_kᵀx_i ≥ 0} changed since t = 0
    dist_v: np.ndarray        # ‖v(t) − v(0)‖_F/‖v(0)‖_F
    dist_g: np.ndarray        # ‖g(t) − g(0)‖/‖g(0)‖


def width_sweep(X, y, sz: Sizes, alpha: float = 1.0, cache: str | None = None) -> WidthSweep:
    """Train at every width of ``sz.widths`` (``sz.seeds`` seeds) with η = 1/λ_max(Λ∞_α).

    Arguments as for :func:`regime_sweep`; α > 0.
    """
    _check_data(X, y, sz, cache)
    eta = tuned_step(X, alpha)
    fn = functools.partial(_width_runs, X=X.cpu().numpy(), y=y.cpu().numpy(), alpha=alpha,
                           eta=eta, steps=sz.steps, seeds=sz.seeds, device=str(X.device))
    runs = sweep.map_grid(fn, sweep.Grid(width=list(sz.widths)), cache=cache, chunk=1, bar=False)
    get = lambda k: np.stack([r[k] for r in runs])  # noqa: E731
    return WidthSweep(np.array(sz.widths), eta, get("loss"), get("linear"), runs[0]["observed"],
                      *(get(k) for k in ("lam_min", "sign_changes", "dist_v", "dist_g")))


# --- the slider figure: WN and un-normalised training side by side -----------------------
def _summary(eta, h_wn, h_plain, steps) -> dict:
    """The slider's record: a diverged run's loss is inf from divergence on, its Λ(T) NaN."""
    def loss(h):
        return np.concatenate([h.loss, np.full(steps + 1 - len(h.loss), np.inf)])

    def last(h):
        return h.spectrum[-1] if h.diverged_at is None else np.full_like(h.spectrum[0], np.nan)
    return {"eta": float(eta), "wn": loss(h_wn), "plain": loss(h_plain),
            "wn_spec0": h_wn.spectrum[0], "wn_specT": last(h_wn),
            "plain_spec0": h_plain.spectrum[0], "plain_specT": last(h_plain)}


class Comparison:
    """``compare(alpha, eta, width)`` for the slider figure: GD on the WN net (scale α)
    and on the un-normalised net from the same initial function, both with step η.

    A call at a point of the site grid (α in ``alphas``, η in ``etas`` and the width in
    ``widths``; None: any width) trains that whole (α × η) grid for its width in two
    stacked runs of the training loop (WN, then un-normalised), which is several times
    cheaper than one run per point, and keeps the results in memory. Any other point (a
    live move between grid values) trains only its own pair; the un-normalised run
    depends on (η, width) alone, so a move of α reuses it. Each result holds η, the loss
    curves ("wn", "plain") and the spectra of Λ at the first and last step ("wn_spec0",
    "wn_specT", "plain_spec0", ...). Training reports its steps to a live figure's
    progress bar (:func:`lib.controls.report`).
    """

    def __init__(self, X, y, steps, alphas, etas, seed=0, widths=None):
        self.X = networks.check_inputs(X)
        self.y = checks.tensor("y", y, ndim=1, dtype=self.X.dtype)
        checks.same_length(X=self.X, y=self.y)
        self.steps, self.seed = checks.integer("steps", steps), checks.seed("seed", seed)
        self.alphas = [float(a) for a in _numbers("alphas", alphas, empty=True)]
        self.etas = [float(e) for e in _numbers("etas", etas, empty=True)]
        if widths is not None and (isinstance(widths, (str, bytes, dict)) or
                                   not hasattr(widths, "__iter__")):
            raise TypeError(f"widths must be None or a list of integer widths, got {widths!r}")
        self.widths = None if widths is None else \
            [checks.integer("widths", w) for w in widths]
        self._done, self._plain = {}, {}   # width -> grid results; (η, width) -> plain run

    def _index(self, values, x):
        hits = [i for i, v in enumerate(values) if math.isclose(v, x, rel_tol=1e-9)]
        return hits[0] if hits else None

    def _train(self, width, alphas, etas):
        """WN runs for every (α, η) pair given, and the plain run for every η not yet run."""
        train = functools.partial(training.train_batch, X=self.X, y=self.y, steps=self.steps,
                                  observe_every=self.steps)
        init = lambda a: networks.init_wn(self.X.shape[1], width, a, self.seed,  # noqa: E731
                                          self.X.dtype, self.X.device)
        pairs = [(a, e) for a in alphas for e in etas]
        todo = [e for e in etas if (e, width) not in self._plain]
        share = len(pairs) / (len(pairs) + len(todo))   # of the bar: steps of both stacks
        with controls.part(0, share):
            hs = train([init(a) for a, _ in pairs], etas=[e for _, e in pairs])
        if todo:
            with controls.part(share, 1):
                plain = train([init(1.0)] * len(todo), etas=todo, normalized=False)
            if len(self._plain) > 256:   # a long lecture's moves: keep memory bounded
                self._plain.clear()
            self._plain.update({(e, width): h for e, h in zip(todo, plain)})
        return {(a, e): _summary(e, h, self._plain[(e, width)], self.steps)
                for (a, e), h in zip(pairs, hs)}

    def __call__(self, alpha, eta, width) -> dict:
        width = checks.integer("width", width)
        alpha, eta = checks.positive("alpha", alpha), checks.positive("eta", eta)
        i, j = self._index(self.alphas, alpha), self._index(self.etas, eta)
        on_grid = self.widths is None or width in self.widths
        if i is None or j is None or not on_grid:
            return self._train(width, [float(alpha)], [float(eta)])[(float(alpha), float(eta))]
        if width not in self._done:
            self._done[width] = self._train(width, self.alphas, self.etas)
        return self._done[width][(self.alphas[i], self.etas[j])]


# --- the fair comparison: every α at its own best step (Proposition 2) ------------------
def limit_condition(X, alphas) -> np.ndarray:
    """κ(Λ∞_α) = λ_max/λ_min of Λ∞_α = V∞/α² + G∞ for every α (a non-empty list of
    numbers > 0); X (n, d) unit-norm rows. κ is computed as that of V∞ + α²G∞ (the same
    matrix times α²), which stays well scaled for small α."""
    alphas = _numbers("alphas", alphas)
    _, V, G = networks.limit_kernels(networks.check_inputs(X, unit=True))
    return _condition(V, G, alphas)


def _condition(V, G, alphas) -> np.ndarray:
    lam = [torch.linalg.eigvalsh(V + a**2 * G) for a in alphas]
    return np.array([float(e[-1] / e[0]) for e in lam])


def best_rate(kappa) -> np.ndarray:
    """log((κ+1)/(κ−1)): e-folds of the residual per step of GD on a fixed kernel of
    condition number κ at its best step η = 2/(λ_min + λ_max), where no eigen-component
    shrinks by less than (κ−1)/(κ+1). About 2/κ for large κ. ``kappa`` numbers > 1."""
    kappa = checks.array("kappa", kappa)
    if not np.all(kappa > 1):
        raise ValueError("kappa must be condition numbers > 1")
    return np.log((kappa + 1) / (kappa - 1))


def best_scale(X, lo: float = 1e-2, hi: float = 1e2, points: int = 201) -> tuple:
    """(α*, κ(Λ∞_α*)): the scale in [lo, hi] with the best-conditioned limit kernel.

    The least κ on ``points`` log-spaced scales, refined by golden-section search on log α
    between its neighbours (κ is smooth and has one minimum there). 0 < lo < hi, points ≥ 3.
    """
    lo, hi = checks.positive("lo", lo), checks.positive("hi", hi)
    if hi <= lo:
        raise ValueError(f"hi must be above lo, got lo = {lo}, hi = {hi}")
    grid = np.geomspace(lo, hi, checks.integer("points", points, lo=3))
    _, V, G = networks.limit_kernels(networks.check_inputs(X, unit=True))
    i = int(np.argmin(_condition(V, G, grid)))
    a, b = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    kappa = lambda t: float(_condition(V, G, [math.exp(t)])[0])  # noqa: E731
    r = (math.sqrt(5) - 1) / 2
    for _ in range(60):                      # the bracket shrinks by 0.618⁶⁰: below round-off
        c, d = b - r * (b - a), a + r * (b - a)
        a, b = (a, d) if kappa(c) < kappa(d) else (c, b)
    return math.exp((a + b) / 2), kappa((a + b) / 2)


@dataclass
class TunedRuns:
    """GD with every network at its own best step η = 2/(λ_min + λ_max) of its Λ(0)."""

    alphas: np.ndarray        # (A,) initialisation scales of the WN networks
    eta: np.ndarray           # (A, S) the step of each run
    kappa0: np.ndarray        # (A, S) κ(Λ(0)) of each run
    loss: np.ndarray          # (A, S, T+1) L(t)
    plain_eta: np.ndarray     # (S,) the un-normalised network's steps, from its H(0)
    plain_kappa0: np.ndarray  # (S,) κ(H(0))
    plain_loss: np.ndarray    # (S, T+1)

    def rates(self, plain: bool = False) -> np.ndarray:
        """Measured e-folds of the residual per step, −½ log ρ (ρ: :func:`measured_ratio`),
        (A, S), or (S,) for the un-normalised network if ``plain``."""
        loss = self.plain_loss if plain else self.loss
        flat = [-0.5 * math.log(measured_ratio(L)) for L in loss.reshape(-1, loss.shape[-1])]
        return np.array(flat).reshape(loss.shape[:-1])


def _best_steps(ps, X, normalized=True):
    """(η, κ) of each network: η = 2/(λ_min + λ_max) and κ = λ_max/λ_min of its Λ(0)."""
    K = [networks.evolution_kernel(p, X) if normalized else theory.plain_ntk(p.weights(), X)
         for p in ps]
    lam = [torch.linalg.eigvalsh(k) for k in K]
    return (np.array([float(2 / (e[0] + e[-1])) for e in lam]),
            np.array([float(e[-1] / e[0]) for e in lam]))


def _tuned(width, X, y, alphas, steps, seeds, device):
    """The runs of :func:`tuned_runs` at one width, as plain arrays for the cache."""
    X, y = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    init = lambda a, s: networks.init_wn(X.shape[1], width, a, s, X.dtype, X.device)  # noqa: E731
    ps = [init(a, s) for a in alphas for s in range(seeds)]
    plain = [init(1.0, s) for s in range(seeds)]
    eta, kappa = _best_steps(ps, X)
    p_eta, p_kappa = _best_steps(plain, X, normalized=False)
    hs = training.train_batch(ps, X, y, list(eta), steps, observe_every=steps)
    hp = training.train_batch(plain, X, y, list(p_eta), steps, normalized=False,
                              observe_every=steps)
    full = lambda h: np.concatenate([h.loss, np.full(steps + 1 - len(h.loss), np.inf)])  # noqa: E731
    shape = (len(alphas), seeds)
    return {"eta": eta.reshape(shape), "kappa0": kappa.reshape(shape),
            "loss": np.stack([full(h) for h in hs]).reshape(*shape, -1), "plain_eta": p_eta,
            "plain_kappa0": p_kappa, "plain_loss": np.stack([full(h) for h in hp])}


def tuned_runs(X, y, sz: Sizes, alphas, cache: str | None = None) -> TunedRuns:
    """Train the WN network at every α (``sz.seeds`` seeds, ``sz.width`` units, ``sz.steps``
    steps) and the un-normalised one from the same initial functions, each at its own
    best step 2/(λ_min + λ_max) of its kernel at t = 0: the fair comparison of scales.

    X (n, sz.d) unit-norm rows, y (n,) finite; ``alphas`` a non-empty list of numbers > 0;
    ``cache`` None or a name.
    """
    _check_data(X, y, sz, cache)
    alphas = [float(a) for a in _numbers("alphas", alphas)]
    fn = functools.partial(_tuned, X=X.cpu().numpy(), y=y.cpu().numpy(), alphas=alphas,
                           steps=sz.steps, seeds=sz.seeds, device=str(X.device))
    (r,) = sweep.map_grid(fn, sweep.Grid(width=[sz.width]), cache=cache, chunk=1, bar=False)
    return TunedRuns(np.array(alphas), r["eta"], r["kappa0"], r["loss"], r["plain_eta"],
                     r["plain_kappa0"], r["plain_loss"])
