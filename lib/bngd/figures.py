"""Figures of the BNGD chapter, drawn in the book style from results of lib computations.

Every function takes results (from :mod:`lib.bngd.dynamics`, :mod:`lib.bngd.experiments` or
:mod:`lib.bngd.networks`) and returns a pyplot Figure (so a notebook shows it); the two
``draw_*`` functions are the ``draw`` halves of the chapter's interactive figures.
"""

import functools

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lib import checks, plotting
from lib.bngd.experiments import CLASS_LABELS, EpsSweep, Figure1Result
from lib.bngd.dynamics import BNGDResult
from lib.bngd.draws import DrawsResult, StartsResult, gmean
from lib.bngd.theory import GDConstants, LocalRates, RotationCheck

P = plotting.PALETTE
CLASS_COLOURS = (P[2], P[5], P[1], "#DDDDDD", "#000000")   # order of CLASS_LABELS
LOSS_FLOOR = 1e-16   # losses (in units of c) are drawn no lower than this: round-off level


def _np(x) -> np.ndarray:
    """A float NumPy array from a tensor (on any device) or an array-like."""
    return x.detach().cpu().double().numpy() if torch.is_tensor(x) else np.asarray(x, float)


def _floor(x, floor=LOSS_FLOOR):
    return np.maximum(_np(x), floor)


def _bounded(loss, top=1e3):
    """Losses (in units of c) with diverging values (non-finite or above ``top``) as NaN."""
    loss = _np(loss)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(loss) & (loss < top), loss, np.nan)


def _curves(name: str, value, n: int | None = None) -> np.ndarray:
    """Loss curves: a non-empty array (NaN/inf allowed: divergence), first axis n if given."""
    arr = checks.array(name, value, finite=False)
    if arr.ndim < 1 or (n is not None and arr.shape[0] != n):
        raise ValueError(f"{name} must have {n if n is not None else 'a'} step(s) on its first "
                         f"axis, got shape {arr.shape}")
    return arr


def _new(ncols=1, nrows=1, size=(6.4, 4.0), **kw):
    fig = plt.figure(figsize=size, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def _steps_per_decade(rho, low):
    """ln 10/(−ln ρ) for contractions ρ (no lower than ``low``: drawn at the frame's foot);
    NaN where ρ ≥ 1 (divergence)."""
    with np.errstate(all="ignore"):
        out = np.log(10) / -np.log(np.asarray(rho, float))
    return np.where(out > 0, np.maximum(out, low), np.nan)


def draw_gd_rates(fig, eps_range=(1e-5, 10.0), ylim=(0.3, 3e6)):
    """``draw`` for the κ slider: steps GD needs per decade of error against ε.

    A contraction ρ per step means ln 10/(−ln ρ) steps per tenfold smaller error;
    ρ ≥ 1 (shaded) means divergence. Line: from max_i |1 − ελ_i|; dots: measured.
    fig: a matplotlib Figure; eps_range, ylim: pairs 0 < lo < hi.
    """
    checks.instance("fig", fig, Figure)
    eps_range, ylim = checks.interval("eps_range", eps_range), checks.interval("ylim", ylim)
    ax = fig.subplots()
    ax.set(xscale="log", yscale="log", xlim=eps_range, ylim=ylim,
           xlabel=r"step size $\varepsilon$", ylabel="steps per decade of error")
    # plain-text legends: mathtext is parsed again for every precomputed frame (slow)
    theory, = ax.plot([], [], color=P[0], label="from max_i |1 − ε λ_i|")
    measured, = ax.plot([], [], "o", ms=4, color=P[1], label="measured on GD runs")
    best = ax.axvline(1, color=P[2], ls="--", label="ε_opt")
    # zorder 1.6: over the grid, so a move redraws from there and keeps the axes drawn
    diverges = ax.axvspan(1, eps_range[1], color=P[3], alpha=0.12, lw=0, zorder=1.6,
                          label="GD diverges")
    note = ax.text(0.97, 0.95, "", transform=ax.transAxes, va="top", ha="right", fontsize=11,
                   bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
    ax.legend(loc="lower left")
    steps = functools.partial(_steps_per_decade, low=ylim[0] * 1.5)

    def update(r):
        k = r["constants"]
        theory.set_data(r["eps"], steps(r["theory"]))
        measured.set_data(r["eps"][::4], steps(r["measured"][::4]))
        best.set_xdata([k.eps_opt] * 2)
        diverges.set_x(k.eps_max)
        diverges.set_width(eps_range[1] - k.eps_max)
        at_opt = r["measured"][np.argmin(np.abs(r["eps"] - k.eps_opt))]
        note.set_text(f"κ = {k.kappa:.3g}: at ε_opt, ρ = (κ−1)/(κ+1) = {k.rate:.4f}\n"
                      f"measured ρ = {at_opt:.4f}; 2/λ_max = {k.eps_max:.3g}")
    return update


def dynamics(run, eps, gd, c=None) -> Figure:
    """Loss, ‖w_k‖, a_k and ε̂_k of BNGD runs (a BNGDResult with trajectory), several ε;
    with ``c`` = uᵀHu the gain panel marks the optimal gain √c. eps: one value per run."""
    checks.instance("run", run, BNGDResult)
    if run.w_path is None or run.loss.ndim != 2:
        raise ValueError("run must come from lib.bngd.dynamics.bngd(..., trajectory=True) over a 1-D batch of ε")
    eps = checks.positive_array("eps", eps, ndim=1)
    if len(eps) != run.loss.shape[1]:
        raise ValueError(f"eps has {len(eps)} values but run has {run.loss.shape[1]} runs")
    checks.instance("gd", gd, GDConstants)
    c = None if c is None else checks.positive("c", c)
    fig, axes = _new(2, 2, size=(10.5, 7.4), sharex=True)
    (ax1, ax2), (ax3, ax4) = axes
    k = np.arange(run.loss.shape[0])
    norm, loss, eff, gain = _np(run.w_norm), _np(run.loss), _np(run.eff_step), _np(run.a_path)
    for j, e in enumerate(eps):
        kw = dict(color=P[j], label=f"ε = {e:g}")
        ax1.plot(k, _floor(loss[:, j]), **kw)
        ax2.plot(k, norm[:, j], **kw)
        ax3.plot(k, gain[:, j], **kw)
        ax4.plot(k[:-1], np.abs(eff[:, j]), **kw)
    opt = ax4.axhline(gd.eps_opt, color="0.3", ls="--", lw=1.2, label=r"GD's $\varepsilon_{\mathrm{opt}}$")
    ax1.set(yscale="log", ylabel=r"loss $J(a_k, w_k)$", title="loss")
    ax2.set(yscale="log", ylabel=r"$\|w_k\|$", title="weight norm (never decreases)")
    if c is not None:
        ax3.axhline(np.sqrt(c), color="0.3", ls="--", lw=1.2, label=r"$\sqrt{c}$")
        ax3.legend(loc="lower right")
    ax3.set(xlabel="step $k$", ylabel="$a_k$", title="gain")
    ax4.set(yscale="log", xlabel="step $k$", ylabel=r"$|\hat\varepsilon_k|$", title="effective step")
    ax1.set_xlim(0, k[-1])
    ax1.legend()
    ax4.legend(handles=[opt], loc="upper right")
    return fig


def scaling(k, base, scaled, rs, eps) -> Figure:
    """Loss curves of (a₀, w₀, ε) and of (a₀, r w₀, r²ε): they lie on top of each other.

    k (T,) steps; base (T, n); scaled: one (T, n) array per r in rs (> 0); eps: n values."""
    k = checks.array("k", k, ndim=1)
    base = _curves("base", base, len(k))
    if not isinstance(scaled, (list, tuple)):
        raise TypeError(f"scaled must be a list of loss arrays, got {type(scaled).__name__}")
    scaled = [_curves("scaled", x, len(k)) for x in scaled]
    rs = checks.positive_array("rs", rs, ndim=1)
    eps = checks.positive_array("eps", eps, ndim=1)
    if len(rs) != len(scaled) or base.ndim != 2 or len(eps) != base.shape[1]:
        raise ValueError(f"rs ({len(rs)}) must match scaled ({len(scaled)}) and eps ({len(eps)}) "
                         f"the columns of base {base.shape}")
    fig, axes = _new(size=(7.5, 4.2))
    ax = axes[0, 0]
    for j, e in enumerate(eps):
        ax.plot(k, _floor(base[:, j]), color=P[j], lw=4, alpha=0.35,
                label=f"ε = {e:g}, r = 1")
        for i, r in enumerate(rs):
            ax.plot(k, _floor(scaled[i][:, j]), color=P[j], lw=1.2, ls=("--", ":", "-.")[i % 3],
                    label=f"r = {r:g}, ε·r²" if j == 0 else None)
    ax.set(yscale="log", xlabel="step $k$", ylabel=r"loss $J(a_k, w_k)$",
           title=r"$(a_0, r w_0, \varepsilon_a, r^2\varepsilon)$ against $(a_0, w_0, \varepsilon_a, \varepsilon)$")
    ax.legend(ncol=2, fontsize=9)
    return fig


GAP_FLOOR = 1e-18   # gaps are drawn no lower than this: an exact 0 sits on the frame's foot


def rotation(check, eps) -> Figure:
    """Proposition 3.2 (1): J_k/c of the original runs and J'_k/(r²c) of the moved ones
    (left), and their gap per step against the round-off bound (right); dashed: the
    garbled u' = r√μ Qᵀu. check: a theory.RotationCheck over a 1-D batch of ε; eps: its ε."""
    checks.instance("check", check, RotationCheck)
    eps = checks.positive_array("eps", eps, ndim=1)
    if check.loss.ndim != 2 or check.loss.shape[1] != len(eps):
        raise ValueError(f"eps must have one value per run of check, got {len(eps)} for "
                         f"losses of shape {tuple(check.loss.shape)}")
    fig, axes = _new(2, size=(10.5, 4.3))
    ax1, ax2 = axes[0]
    k = np.arange(check.loss.shape[0])
    loss, moved, garbled = _np(check.loss), _np(check.moved), _np(check.garbled)
    gap, wrong = _np(check.gap), _np(check.garbled_gap)
    for j, e in enumerate(eps):
        ax1.plot(k, _floor(loss[:, j]), color=P[j], lw=4, alpha=0.35)
        ax1.plot(k, _floor(moved[:, j]), color=P[j], lw=1.2)
        ax1.plot(k, _floor(garbled[:, j]), color=P[j], lw=1.2, ls="--")
        ax2.plot(k, np.maximum(gap[:, j], GAP_FLOOR), color=P[j], lw=1.2)
        ax2.plot(k, np.maximum(wrong[:, j], GAP_FLOOR), color=P[j], lw=1.2, ls="--")
    ax2.plot(k, _np(check.bound).max(1), color="k", lw=1.5, ls="-.", zorder=5)
    ax2.plot(k, _np(check.level).max(1), color="k", lw=1.5, ls=":", zorder=5)
    ax1.set(yscale="log", xlim=(0, k[-1]), ylim=(LOSS_FLOOR / 3, 300), xlabel="step $k$",
            ylabel="loss / c", title="original and moved runs")
    ax2.set(yscale="log", xlim=(0, k[-1]), ylim=(GAP_FLOOR / 3, 300), xlabel="step $k$",
            ylabel=r"$|J'_k/r^2 - J_k|\,/\,c$", title="gap per step")
    line = functools.partial(Line2D, [], [], color="0.3")
    styles = [line(lw=4, alpha=0.35, label="$J_k$ (original)"),
              line(lw=1.2, label="$J'_k/r^2$ (moved)"),
              line(lw=1.2, ls="--", label=r"garbled $u' = r\sqrt{\mu}\,Q^\top u$")]
    colours = [line(color=P[j], lw=2, label=f"ε = {e:g}") for j, e in enumerate(eps)]
    ax1.legend(handles=colours + styles, fontsize=8, ncol=2, loc="lower left")
    ax2.legend(handles=[line(lw=1.2, label="correct $u'$"), styles[2],
                        line(color="k", lw=1.5, ls="-.", label="round-off bound"),
                        line(color="k", lw=1.5, ls=":",
                             label=r"$\varepsilon_{\mathrm{mach}} T_k / 2c$")],
               fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 0.31))
    return fig


def _gd_region(ax, eps_max, right):
    ax.axvspan(eps_max, right, color=P[3], alpha=0.07, lw=0)
    ax.axvline(eps_max, color=P[3], ls=":", lw=1.2)


# line styles of the ε-sweep panels: BNGD from a random w₀, BNGD from w₀ ∝ Hu, plain GD
_BN = dict(marker="o", ms=3, color=P[0], label=r"BNGD, random $w_0$")
_HU = dict(marker="s", ms=3, ls="--", color=P[1], label=r"BNGD, $w_0 \propto Hu$")
_GD = dict(marker="o", ms=6, mfc="none", ls="none", color="k", zorder=5, label="GD")


def eps_sweeps(sweep, sweep_hu, tol, show=(1e-3, 1.0, 1e3, 1e6)) -> Figure:
    """GD and BNGD against ε: final loss, final ε̂, steps to reach ``tol``, and the loss
    curves at the step sizes ``show``. Shaded: ε > 2/λ_max, where GD diverges.
    sweep, sweep_hu: EpsSweeps; tol > 0; show: step sizes > 0."""
    checks.instance("sweep", sweep, EpsSweep), checks.instance("sweep_hu", sweep_hu, EpsSweep)
    tol, show = checks.positive("tol", tol), checks.positive_array("show", show, ndim=1)
    fig, axes = _new(2, 2, size=(10.5, 8.0))
    (ax1, ax2), (ax3, ax4) = axes
    eps = sweep.eps
    for ax in (ax1, ax2, ax3):     # scales first: autoscaling a linear axis can overflow
        ax.set(xscale="log", yscale="log", xlabel=r"$\varepsilon$", xlim=(eps[0] / 2, eps[-1] * 2))
    _final_losses(ax1, sweep, sweep_hu)
    _final_steps(ax2, sweep, sweep_hu)
    _steps_to(ax3, sweep, sweep_hu, tol)
    for ax in (ax1, ax2, ax3):
        _gd_region(ax, sweep.gd.eps_max, eps[-1] * 2)
        ax.set_xlim(eps[0] / 2, eps[-1] * 2)
    _sweep_curves(ax4, sweep, sweep_hu, show)
    return fig


def _final_losses(ax, sweep, sweep_hu):
    """Loss after the last step against ε (GD's diverging runs left out)."""
    eps, T = sweep.eps, sweep.loss_bn.shape[0] - 1
    ax.plot(eps, _floor(sweep.loss_bn[-1]), **_BN)
    ax.plot(eps, _floor(sweep_hu.loss_bn[-1]), **_HU)
    ax.plot(eps, _floor(_bounded(sweep.loss_gd[-1])), **_GD)
    ax.set(ylabel="final loss / c", title=f"loss after {T} steps", ylim=(LOSS_FLOOR / 3, 30))
    ax.legend(fontsize=9, loc="center right")


def _final_steps(ax, sweep, sweep_hu):
    """Final effective step against ε, with GD's ε_opt and the ∝ ε, ∝ 1/ε asymptotes."""
    eps, eff = sweep.eps, np.abs(sweep.eff_step[-1])
    ax.plot(eps, eff, **_BN)
    ax.plot(eps, np.abs(sweep_hu.eff_step[-1]), **_HU)
    ax.axhline(sweep.gd.eps_opt, color="0.3", ls="--", lw=1.2, label=r"GD's $\varepsilon_{\mathrm{opt}}$")
    small, large = eff[0] / eps[0], eff[-1] * eps[-1]     # ε̂ ≈ small·ε and ≈ large/ε at the ends
    ax.plot(eps, small * eps, color="0.6", lw=1, label=r"$\propto\varepsilon$ and $\propto 1/\varepsilon$")
    ax.plot(eps, large / eps, color="0.6", lw=1)
    ax.set(ylabel=r"final effective step $\hat\varepsilon_T$", title="effective step",
           ylim=(1e-30, 1e2))
    ax.legend(fontsize=9, loc="lower left")


def _steps_to(ax, sweep, sweep_hu, tol):
    """Steps until loss/c ≤ tol against ε; a cross above the frame where a run never got there."""
    eps, T = sweep.eps, sweep.loss_bn.shape[0] - 1
    for steps, style, height in ((sweep.steps_to(tol)[1], _BN, 1.3),
                                 (sweep_hu.steps_to(tol)[1], _HU, 1.6),
                                 (sweep.steps_to(tol)[0], _GD, 2.0)):
        ax.plot(eps, np.where(steps >= 0, steps, np.nan).astype(float), **style)
        missed = steps < 0
        ax.plot(eps[missed], np.full(missed.sum(), height * T), "x", color=style["color"], ms=5)
    ax.axhline(T, color="0.5", lw=1)
    ax.set(ylim=(50, 3 * T), ylabel=f"steps until loss/c ≤ {tol:g}",
           title=f"steps to converge (× : more than {T})")
    ax.legend(fontsize=9, loc="lower right")


def _sweep_curves(ax, sweep, sweep_hu, show):
    """BNGD's loss curves at the grid's step sizes nearest to ``show`` (dashed: w₀ ∝ Hu)."""
    eps, T = sweep.eps, sweep.loss_bn.shape[0] - 1
    k = np.arange(1, T + 2)
    for i, e in enumerate(show):
        j = int(np.argmin(np.abs(np.log(eps / e))))
        ax.plot(k, _floor(sweep.loss_bn[:, j]), color=P[(0, 2, 4, 5)[i % 4]], label=f"ε = {eps[j]:.3g}")
        ax.plot(k, _floor(sweep_hu.loss_bn[:, j]), color=P[(0, 2, 4, 5)[i % 4]], ls="--", lw=1.2)
    ax.set(xscale="log", yscale="log", xlim=(1, T + 1), ylim=(LOSS_FLOOR / 3, 30),
           xlabel="step $k$ + 1", ylabel="loss / c", title=r"loss curves (dashed: $w_0 \propto Hu$)")
    ax.legend(fontsize=9, loc="lower left")


def acceleration(sweep, k, curves, rates) -> Figure:
    """Left: final loss against ε for GD and BNGD (an EpsSweep) with GD's best as a line.
    Right: loss curves ``{label: loss/c}`` and reference slopes ``{label: rate}`` (∝ rate^(2k)),
    k (T,) the steps of the curves, rates >= 0."""
    checks.instance("sweep", sweep, EpsSweep)
    k = checks.array("k", k, ndim=1)
    if not isinstance(curves, dict) or not curves:
        raise TypeError("curves must be a non-empty dict {label: loss array}")
    curves = {label: _curves("curves", v, len(k)) for label, v in curves.items()}
    if not isinstance(rates, dict):
        raise TypeError(f"rates must be a dict {{label: rate}}, got {type(rates).__name__}")
    rates = {label: checks.nonnegative("rates", v) for label, v in rates.items()}
    fig, axes = _new(2, size=(10.5, 4.3))
    ax1, ax2 = axes[0]
    eps, T = sweep.eps, sweep.loss_bn.shape[0] - 1
    ax1.set(xscale="log", yscale="log")
    ax2.set(yscale="log")
    gd_final = _bounded(sweep.loss_gd[-1])
    ax1.plot(eps, _floor(sweep.loss_bn[-1]), "o-", ms=3, color=P[0], label="BNGD")
    ax1.plot(eps, _floor(gd_final), "o", ms=6, mfc="none", color="k", label="GD")
    ax1.axhline(np.nanmin(gd_final), color="k", ls="--", lw=1.2, label="best GD")
    _gd_region(ax1, sweep.gd.eps_max, eps[-1] * 2)
    ax1.set(xscale="log", yscale="log", xlabel=r"$\varepsilon$", ylabel="final loss / c",
            title=f"after {T} steps", xlim=(eps[0] / 2, eps[-1] * 2), ylim=(LOSS_FLOOR / 3, 30))
    ax1.legend(fontsize=9, loc="lower left")
    for i, (label, loss) in enumerate(curves.items()):
        ax2.plot(k, _floor(loss), color=(P[3], "k", P[0], P[5], P[2])[i % 5], label=label)
    start = max(max(float(_np(v)[0]) for v in curves.values()), 1e-16)
    for i, (label, rate) in enumerate(rates.items()):
        ax2.plot(k, _floor(start * rate ** (2 * k)), color="0.45", ls=("--", ":")[i % 2], lw=1.2,
                 label=label)
    ax2.set(yscale="log", xlim=(0, k[-1]), ylim=(1e-16, 10 * start), xlabel="step $k$",
            ylabel="loss / c", title="loss curves")
    ax2.legend(fontsize=9, loc="lower left")
    return fig


def figure1(results) -> Figure:
    """The paper's figure 1: one column per κ, one row per a₀, cells coloured by class.

    results: a non-empty list of Figure1Results of one config."""
    if not isinstance(results, (list, tuple)) or not results:
        raise TypeError("results must be a non-empty list of Figure1Results")
    for r in results:
        checks.instance("results", r, Figure1Result)
    if any(r.config != results[0].config for r in results):
        raise ValueError("results must share one Figure1Config (one grid)")
    cfg = results[0].config
    n_a0, n_k = len(cfg.a0), len(results)
    fig, axes = _new(n_k, n_a0, size=(3.3 * n_k + 1.4, 2.1 * n_a0 + 1.3), sharex=True, sharey=True)
    cmap = ListedColormap(CLASS_COLOURS)
    x = np.log10(np.asarray(cfg.eps_a))
    y = np.log10(np.asarray(cfg.eps))
    half = lambda v: (v[1] - v[0]) / 2  # noqa: E731
    extent = (x[0] - half(x), x[-1] + half(x), y[0] - half(y), y[-1] + half(y))
    for j, res in enumerate(results):
        for i, a0 in enumerate(cfg.a0):
            ax = axes[i, j]
            ax.imshow(res.classes[i], origin="lower", cmap=cmap, vmin=-0.5, vmax=4.5,
                      extent=extent, aspect="auto", interpolation="nearest")
            ax.grid(False)
            if i == 0:
                ax.set_title(f"κ = {res.problem.kappa:g}")
            if j == 0:
                ax.set_ylabel(f"$a_0$ = {a0:g}\n" + r"$\log_{10}\varepsilon$")
            if i == n_a0 - 1:
                ax.set_xlabel(r"$\log_{10}\varepsilon_a$")
    handles = [Patch(color=c, label=lab) for c, lab in zip(CLASS_COLOURS, CLASS_LABELS)]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=10)
    return fig


def _check_panels(panels, etas):
    """The arguments of :func:`eta_sweeps`: one (eta, seeds) array per label, one row per η."""
    if not isinstance(panels, dict) or not panels:
        raise TypeError("panels must be a non-empty dict {title: {label: (eta, seeds) array}}")
    if not isinstance(etas, dict) or set(etas) != set(panels):
        raise TypeError("etas must be a dict with the titles of panels as keys")
    for title, curves in panels.items():
        n = len(checks.positive_array("etas", etas[title], ndim=1))
        if not isinstance(curves, dict) or not curves:
            raise TypeError("panels must map each title to a non-empty dict {label: array}")
        for v in curves.values():
            v = _curves("panels", v)
            if v.ndim != 2 or v.shape[0] != n:
                raise ValueError(f"panels must hold (eta, seeds) arrays with one row per value of "
                                 f"etas ({n}), got shape {v.shape}")


def eta_sweeps(panels, etas) -> Figure:
    """Loss after one epoch against the learning rate: ``{title: {label: (eta, seeds)}}``.

    Lines are means over seeds, bands the range; a cross at the top marks a learning rate
    at which some run diverged. ``etas``: {title: learning rates > 0}, one per row of values.
    """
    _check_panels(panels, etas)
    fig, axes = _new(len(panels), size=(5.25 * len(panels), 4.3))
    for ax, (title, curves) in zip(axes[0], panels.items()):
        finite_max = max(np.nanmax(np.where(np.isfinite(v), v, np.nan)) for v in curves.values())
        top = 1.5 * finite_max
        for i, (label, values) in enumerate(curves.items()):
            ok = np.all(np.isfinite(values), 1)
            mean = np.where(ok, values.mean(1), np.nan)
            lo, hi = np.where(ok, values.min(1), np.nan), np.where(ok, values.max(1), np.nan)
            ax.plot(etas[title], mean, "o-", ms=4, color=P[i], label=label)
            ax.fill_between(etas[title], lo, hi, color=P[i], alpha=0.2)
            ax.plot(np.asarray(etas[title])[~ok], np.full((~ok).sum(), top), "x", ms=8, mew=2, color=P[i])
        ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="loss after one epoch",
               title=title, ylim=(None, 1.3 * top))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize=10)
    return fig


def scaled_networks(etas, losses, rs) -> Figure:
    """Loss after one epoch against η_w (left) and against η_w/r² (right), one line per r.

    etas (n,) > 0; losses (len(rs), n, seeds), inf where a run diverged; rs > 0."""
    etas, rs = checks.positive_array("etas", etas, ndim=1), checks.positive_array("rs", rs, ndim=1)
    losses = checks.array("losses", losses, finite=False, ndim=3)
    if losses.shape[:2] != (len(rs), len(etas)):
        raise ValueError(f"losses must have shape (len(rs), len(etas), seeds) = ({len(rs)}, "
                         f"{len(etas)}, ·), got {losses.shape}")
    fig, axes = _new(2, size=(10.5, 4.3), sharey=True)
    for i, r in enumerate(rs):
        mean = np.where(np.all(np.isfinite(losses[i]), 1), losses[i].mean(1), np.nan)
        for ax, x in zip(axes[0], (np.asarray(etas), np.asarray(etas) / r**2)):
            ax.plot(x, mean, "o-", ms=4, color=P[i], label=f"weights × {r:.3g}")
    axes[0, 0].set(xscale="log", xlabel=r"learning rate $\eta_w$ of the weights",
                   ylabel="loss after one epoch", title="as run")
    axes[0, 1].set(xscale="log", xlabel=r"$\eta_w / r^2$", title="shifted by $r^2$")
    axes[0, 0].legend(fontsize=9)
    return fig


def draw_bngd_slider(fig, steps, ylim=(1e-14, 1e3), eff_ylim=(1e-8, 1e2)):
    """``draw`` for the four-slider figure: loss curves (left) and ε̂_k (right).

    fig: a matplotlib Figure; steps >= 1; ylim, eff_ylim: pairs 0 < lo < hi."""
    checks.instance("fig", fig, Figure)
    steps = checks.integer("steps", steps)
    ylim, eff_ylim = checks.interval("ylim", ylim), checks.interval("eff_ylim", eff_ylim)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.set(yscale="log", xlim=(0, steps), ylim=ylim, xlabel="step $k$", ylabel="loss / c")
    ax2.set(yscale="log", xlim=(0, steps), ylim=eff_ylim, xlabel="step $k$",
            ylabel=r"$|\hat\varepsilon_k|$")
    bn, = ax1.plot([], [], color=P[0], label="BNGD (ε, ε_a, a₀)")
    gd, = ax1.plot([], [], color=P[3], label="GD, same ε")
    gd_opt, = ax1.plot([], [], color="0.3", ls="--", lw=1.2, label="GD at ε_opt")
    eff, = ax2.plot([], [], color=P[0], label="BNGD's effective step")
    opt = ax2.axhline(1, color="0.3", ls="--", lw=1.2, label="GD's ε_opt")
    band = ax2.axhspan(0.8, 1.25, color=P[2], alpha=0.2, label="0.8 … 1.25 × ε_opt")
    limit = ax2.axhline(1, color=P[3], ls=":", lw=1.2, label="2/λ_max")
    ax1.legend(loc="upper right", fontsize=9)
    ax2.legend(loc="upper right", fontsize=9)

    def update(r):
        k = np.arange(steps + 1)
        bn.set_data(k, _floor(r["bngd"]))
        gd.set_data(k, _floor(r["gd"]))
        gd_opt.set_data(k, _floor(r["gd_opt"]))
        plotting.mark_divergence(ax1, r["gd"], label="GD")
        eff.set_data(k[:-1], np.abs(r["eff_step"]))
        c = r["constants"]
        opt.set_ydata([c.eps_opt] * 2)
        limit.set_ydata([c.eps_max] * 2)
        band.set_y(0.8 * c.eps_opt)
        band.set_height((1.25 - 0.8) * c.eps_opt)
    return update


def local_rates(rates) -> Figure:
    """Proposition 3.4 step by step along one run. Left: ‖e_k‖_H.
    Right: the measured ‖e_{k+1}‖_H/‖e_k‖_H against the bound ρ(I − ε̂_k H) of (13) and
    the bound of (15) built from ρ*(I − ε̂_k H*). rates: a 1-run theory.LocalRates."""
    checks.instance("rates", rates, LocalRates)
    if rates.measured.ndim != 1:
        raise ValueError("rates must describe one run: fields of shape (steps,)")
    norm_e = _np(rates.norm_e)
    fig, axes = _new(2, size=(10.5, 4.2))
    ax1, ax2 = axes[0]
    k = np.arange(len(norm_e))
    ax1.plot(k, norm_e, color=P[0])
    ax1.set(yscale="log", xlim=(0, k[-1]), xlabel="step $k$", ylabel=r"$\|e_k\|_H$",
            title="residual")
    kw = dict(lw=1.4)
    rho = _np(rates.rho)
    ax2.plot(k[:-1], rho, color="0.5", ls="--", label=r"(13): $\rho(I-\hat\varepsilon_k H)$", **kw)
    ax2.plot(k[:-1], _np(rates.bound), color=P[1], label="(15): with $H^*$ and $\\delta_k$", **kw)
    ax2.plot(k[:-1], _np(rates.rho_star), color=P[2], ls=":", lw=2.5,
             label=r"$\rho^*(I-\hat\varepsilon_k H^*)$")
    ax2.plot(k[:-1], _np(rates.measured), color=P[0], label="measured", **kw)
    ax2.axhline(1, color="k", lw=0.8)
    ax2.set(xlim=(0, k[-1]), ylim=(0.985, 1.02), xlabel="step $k$",
            ylabel=r"$\|e_{k+1}\|_H / \|e_k\|_H$",
            title=f"contraction per step ((13) ends at {rho[-1]:.2g}, off the scale)")
    ax2.legend(fontsize=9, loc="upper right")
    return fig


def random_starts(result, escape, etas) -> Figure:
    """Left: share of random starts converged by step k, one curve per ε (a
    draws.StartsResult). Right: J/c from starts at distance η from the saddle set
    (``escape`` (T+1, len(etas)) from draws.saddle_escape)."""
    checks.instance("result", result, StartsResult)
    etas = checks.array("etas", etas, ndim=1)
    escape = _curves("escape", escape)
    if escape.ndim != 2 or escape.shape[1] != len(etas):
        raise ValueError(f"escape must have one column per η ({len(etas)}), got {escape.shape}")
    fig, axes = _new(2, size=(10.5, 4.2))
    ax1, ax2 = axes[0]
    share = result.converged_by()
    k = np.arange(share.shape[0])
    for j, e in enumerate(result.eps):
        ax1.plot(k, share[:, j], color=P[j % len(P)], label=f"ε = {e:g}")
    ax1.set(xscale="symlog", xlim=(0, k[-1]), ylim=(-0.02, 1.02), xlabel="step $k$",
            ylabel=f"share with loss ≤ {result.tol:g} c",
            title=f"{result.first.shape[1]} random starts, $\\varepsilon_a = 1$")
    ax1.legend(fontsize=9, loc="upper left")
    k2 = np.arange(escape.shape[0])
    for j, eta in enumerate(etas):
        ax2.plot(k2, _floor(escape[:, j]), color=P[j % len(P)],
                 label="η = 0 (on the saddle set)" if eta == 0 else f"η = {eta:g}")
    ax2.axhline(0.5, color="0.5", ls="--", lw=1, label="saddle level c/2")
    ax2.set(yscale="log", xlim=(0, k2[-1]), ylim=(LOSS_FLOOR / 3, 3), xlabel="step $k$",
            ylabel="loss / c", title="starting next to the saddle set")
    ax2.legend(fontsize=9, loc="lower left")
    return fig


def _gm(ax, eps, x, **kw):
    with np.errstate(invalid="ignore"):
        y = gmean(x)
    ax.plot(eps, np.where(np.isfinite(y), np.maximum(y, LOSS_FLOOR), np.nan), **kw)


def modified_draws(result) -> Figure:
    """Appendix B's figure: geometric means over the draws of the final effective step,
    ‖e_T‖²_H and ‖e_T‖ of modified BNGD against ε, with GD (a draws.DrawsResult)."""
    checks.instance("result", result, DrawsResult)
    fig, axes = _new(3, size=(12, 4.0))
    ax1, ax2, ax3 = axes[0]
    eps, opt = result.eps, result.eps_opt
    _gm(ax1, eps, result.eff_bn, color=P[0], marker="o", ms=3, label="modified BNGD")
    ax1.plot(eps, eps, color="k", lw=1, label=r"GD ($\hat\varepsilon = \varepsilon$)")
    ax1.axhline(opt, color="0.3", ls="--", lw=1.2, label=r"$\varepsilon_{\mathrm{opt}}$")
    ax1.set(ylabel=r"$\hat\varepsilon_T$", title="effective step")
    for ax, bn, gd, name in ((ax2, result.loss_bn, result.loss_gd, r"$\|e_T\|_H^2$"),
                             (ax3, result.err_bn, result.err_gd, r"$\|e_T\|$")):
        _gm(ax, eps, bn, color=P[0], marker="o", ms=3, label="modified BNGD, G-mean")
        ax.plot(eps, np.maximum(bn.mean(-1), LOSS_FLOOR), color=P[0], ls=":", lw=1.2,
                label="modified BNGD, A-mean")
        _gm(ax, eps, gd, color="k", marker="o", ms=5, mfc="none", ls="none", label="GD, G-mean")
        ax.set(ylabel=name, title="loss" if ax is ax2 else "error")
        _gd_region(ax, 2 / float(result.h.max()), eps[-1] * 2)
    for ax in (ax1, ax2, ax3):
        ax.set(xscale="log", yscale="log", xlabel=r"$\varepsilon$", xlim=(eps[0] / 2, eps[-1] * 2))
        ax.legend(fontsize=8, loc="lower left" if ax is ax1 else "upper left")
    return fig


def draws_sweeps(by_d, by_kappa) -> Figure:
    """G-mean final ε̂/ε_opt against ε/ε_opt: ``by_d`` {d: DrawsResult} (left) and
    ``by_kappa`` {κ: DrawsResult} (right), the shaded band 0.8 < ε̂/ε_opt < 1/0.8."""
    fig, axes = _new(2, size=(10.5, 4.2), sharey=True)
    for ax, panel, name in zip(axes[0], (by_d, by_kappa), ("d", "κ")):
        if not isinstance(panel, dict) or not panel:
            raise TypeError(f"by_{'d' if name == 'd' else 'kappa'} must be a non-empty dict "
                            f"{{{name}: DrawsResult}}")
        for j, (key, res) in enumerate(panel.items()):
            checks.instance(f"by_{'d' if name == 'd' else 'kappa'}", res, DrawsResult)
            _gm(ax, res.eps / res.eps_opt, res.eff_bn / res.eps_opt, color=P[j % len(P)],
                marker="o", ms=3, label=f"{name} = {key:g}")
        ax.axhspan(0.8, 1 / 0.8, color=P[2], alpha=0.15, lw=0)
        ax.set(xscale="log", yscale="log", xlabel=r"$\varepsilon/\varepsilon_{\mathrm{opt}}$",
               ylim=(1e-3, 3), title=f"H = diag(linspace(1, κ, d)), varying {name}")
        ax.legend(fontsize=9, loc="lower left")
    axes[0][0].set_ylabel(r"G-mean $\hat\varepsilon_T/\varepsilon_{\mathrm{opt}}$")
    return fig
