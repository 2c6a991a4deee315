"""Figures of the auto rate-tuning chapter, drawn in the book's style from lib results.

Every function takes results computed by :mod:`lib.invariance`, :mod:`lib.autorate.theory`
or :mod:`lib.autorate.experiments` and returns a matplotlib Figure; nothing is computed
here beyond means over seeds and reference lines. The two ``draw_*`` functions are the
``draw`` halves of the chapter's interactive figures.
"""

from collections.abc import Mapping

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from lib import checks, models, plotting

P = plotting.PALETTE
FLOOR = 1e-18  # exact zeros (gaps, differences) are drawn on the bottom edge
EPS64 = np.finfo(np.float64).eps
NORM_STYLES = {"bn_smooth": (P[0], r"smoothed BN, $\varepsilon\Vert w_k\Vert^2$"),
               "bn": (P[3], r"standard BN, $\varepsilon = 10^{-5}$")}


def _power(x) -> str:
    """A power of ten as a label: 100 -> $10^{2}$."""
    return fr"$10^{{{np.log10(x):.0f}}}$"


def _colours(n: int):
    """``n`` colours along viridis, one per learning rate (ordered, as the rates are)."""
    return plt.cm.viridis(np.linspace(0, 0.92, n))


def _curves(name: str, value, shape, match: str = "") -> np.ndarray:
    """Recorded values (NaN after a divergence allowed) of the given shape (None: free),
    the sizes set by the arguments named in ``match``."""
    arr = checks.array(name, value, ndim=len(shape), finite=False)
    if any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("·" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}{' to match ' + match if match else ''},"
                         f" got {arr.shape}")
    return arr


def _record(name: str, value, keys) -> Mapping:
    """A dict of results holding at least ``keys``."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of result arrays, got {type(value).__name__}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"{name} lacks {missing}")
    return value


def invariance_gaps(gaps) -> Figure:
    """Loss gap and gradient gap against the scale c, for each network of ``gaps``.

    ``gaps``: a dict norm -> :func:`lib.invariance.scale_invariance` result, its norms
    among "bn_smooth" and "bn".
    """
    gaps = _record("gaps", gaps, [])
    if not gaps or set(gaps) - set(NORM_STYLES):
        raise ValueError(f"gaps must map some of {list(NORM_STYLES)} to results, got "
                         f"{list(gaps)}")
    curves = {norm: _gap_curves(f"gaps[{norm!r}]", gaps[norm]) for norm in NORM_STYLES
              if norm in gaps}
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2))
    for norm, (scales, *pair) in curves.items():
        colour, label = NORM_STYLES[norm]
        for ax, gap in zip(axes, pair):
            ax.loglog(scales, np.maximum(gap, FLOOR), "o-", ms=4, color=colour, label=label)
    axes[0].set(ylabel=r"$|F(cw) - F(w)|\ /\ F(w)$")
    axes[1].set(ylabel=r"$\Vert c\nabla F(cw) - \nabla F(w)\Vert\ /\ \Vert\nabla F(w)\Vert$")
    for ax in axes:
        ax.set(xlabel="scale $c$ of the weights", ylim=(FLOOR / 3, 10))
        ax.axhline(EPS64, color="grey", ls=":", lw=1)
    # x in axes fractions (near the left edge whatever the scales), y at the round-off line
    axes[1].text(0.07, 1e-14, "float64 round-off", color="grey", fontsize=10,
                 transform=axes[1].get_yaxis_transform())
    axes[0].legend(loc="center left", fontsize=10)
    fig.tight_layout()
    return fig


def _gap_curves(name: str, r) -> tuple:
    """(scales, loss gaps, gradient gaps) of one scale_invariance result."""
    r = _record(name, r, ("scale", "loss_gap", "grad_gap"))
    scales = checks.positive_array(f"{name}['scale']", r["scale"], ndim=1)
    return (scales, *(_curves(f"{name}[{k!r}]", r[k], (len(scales),), f"{name}['scale']")
                      for k in ("loss_gap", "grad_gap")))


def norm_growth(eta_w, step, norm_sq) -> Figure:
    """‖w_t‖² (left) and η_w/‖w_t‖² (right) of one run for every η_w.

    ``eta_w`` (E,) rates > 0, ``step`` (T,) steps >= 0, ``norm_sq`` (E, T) ‖w_t‖² of each.
    """
    eta_w = checks.positive_array("eta_w", eta_w, ndim=1)
    step = _curves("step", step, (None,))
    norm_sq = _curves("norm_sq", norm_sq, (len(eta_w), len(step)), "eta_w and step")
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2))
    for eta, c, wsq in zip(eta_w, _colours(len(eta_w)), norm_sq):
        axes[0].semilogy(step, wsq, color=c, label=_power(eta))
        axes[1].loglog(step + 1, models.effective_eta(eta, wsq), color=c)
    axes[0].set(xlabel="step $t$", ylabel=r"$\Vert w_t\Vert^2$", title="norm (seed 0)")
    axes[1].set(xlabel="step $t + 1$", ylabel=r"$\eta_w / \Vert w_t\Vert^2$",
                title="effective learning rate")
    axes[0].legend(title=r"$\eta_w$", ncol=2, fontsize=9.5)
    fig.tight_layout()
    return fig


def sphere_vs_gd(twin) -> Figure:
    """Losses of GD and of the sphere iteration (left) and their parameter gaps (right).

    ``twin``: the result of :func:`lib.autorate.theory.sphere_vs_gd`.
    """
    twin = _record("twin", twin, ("loss_gd", "loss_sphere", "path_gap", "step_gap"))
    loss_gd = _curves("twin['loss_gd']", twin["loss_gd"], (None,))
    t = np.arange(len(loss_gd))
    loss_sphere, path_gap = (_curves(f"twin[{k!r}]", twin[k], (len(t),), "twin['loss_gd']")
                             for k in ("loss_sphere", "path_gap"))
    step_gap = _curves("twin['step_gap']", twin["step_gap"], (len(t) - 1,), "twin['loss_gd']")
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2))
    axes[0].plot(t, loss_gd, label="GD on $w$")
    axes[0].plot(t, loss_sphere, "o", ms=4, mfc="none", label="iteration on the sphere")
    axes[0].set(xlabel="step $t$", ylabel="training loss")
    axes[1].semilogy(t, np.maximum(path_gap, FLOOR), label="whole trajectories")
    axes[1].semilogy(t[1:], np.maximum(step_gap, FLOOR), label="one step from GD's $w_{t-1}$")
    axes[1].axhline(EPS64, color="grey", ls=":", lw=1)
    axes[1].set(xlabel="step $t$", ylabel="largest parameter difference", ylim=(FLOOR, 1e-6))
    for ax in axes:
        ax.legend(fontsize=10)
    fig.tight_layout()
    return fig


def _mask(name: str, value, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != bool or arr.shape != (n,):
        raise TypeError(f"{name} must be {n} booleans (one per rate), got "
                        f"{type(value).__name__} of dtype {arr.dtype} and shape {arr.shape}")
    return arr


def gd_rates(eta_w, step, best, loss_bn, loss_plain, blew_up) -> Figure:
    """Full-batch GD over a sweep of η_w: min_{t<T} ‖∇L‖² for every η_w (top), the
    largest and the last loss with and without BN (bottom), blow-ups without BN shaded.

    ``eta_w`` (E,) rates > 0; ``step`` (T,) 0..steps; ``best`` (E, T) running minima of
    the intrinsic squared gradient (mean over seeds); ``loss_bn``, ``loss_plain`` (E, S, T)
    losses over seeds (NaN after a divergence); ``blew_up`` (E,) booleans for the runs
    without BN (see :func:`lib.autorate.theory.blew_up`).
    """
    eta_w = checks.positive_array("eta_w", eta_w, ndim=1)
    step = _curves("step", step, (None,))
    n, T = len(eta_w), step + 1
    best = _curves("best", best, (n, len(step)), "eta_w and step")
    losses = {k: _curves(k, v, (n, None, len(step)), "eta_w and step")
              for k, v in (("loss_bn", loss_bn), ("loss_plain", loss_plain))}
    blew_up = _mask("blew_up", blew_up, n)
    fig = plt.figure(figsize=(10.5, 8.4))
    grid = fig.add_gridspec(2, 2)
    _best_gradients(fig.add_subplot(grid[0, :]), eta_w, T, best)
    left, right = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    for (key, loss), label, marker, colour in zip(losses.items(), ("with BN", "without BN"),
                                                   "os", (P[0], P[3])):
        style = dict(marker=marker, color=colour, label=label)
        left.loglog(eta_w, np.nanmax(loss, -1).mean(1), **style)
        right.loglog(eta_w, loss[..., -1].mean(1), **style)
    right.axhline(np.log(10), color="grey", ls=":", lw=1.5)
    right.text(eta_w[0], np.log(10) * 1.2, "chance, ln 10", color="grey", fontsize=10)
    for ax in (left, right):
        if blew_up.any():
            ax.axvspan(eta_w[blew_up][0] / 2, eta_w[-1] * 2, color=P[3], alpha=0.08)
        ax.set(xlabel=r"learning rate $\eta_w$")
    left.set(ylabel="largest training loss", title="shaded: blow-up without BN")
    right.set(ylabel=f"loss after {int(step[-1])} steps", title="where training ends")
    left.legend()
    fig.tight_layout()
    return fig


def _best_gradients(ax, eta_w, T, best):
    """min_{t<T} ‖∇L(V_t; g_t)‖² against T for every η_w, with a 1/T guide."""
    for eta, c, b in zip(eta_w, _colours(len(eta_w)), best):
        ax.loglog(T, b, color=c, label=_power(eta))
    ax.loglog(T, best[len(eta_w) // 2, 9] * 10 / T, "k--", lw=1.5, label=r"$\propto 1/T$")
    ax.set(xlabel="$T$", ylabel=r"$\min_{t<T}\Vert\nabla L(V_t; g_t)\Vert^2$",
           title=r"with BN: every $\eta_w$ (mean over seeds)")
    ax.legend(title=r"$\eta_w$", ncol=2, fontsize=9.5, loc="lower left")


def sgd_convergence(eta_w, alpha, T, effective_eta, best, n_seeds) -> Figure:
    """SGD with Theorem 4.2's schedules: effective rates (left) and min_{t<T} E‖∇L‖²
    (right) against T, for every (η_w, α), with t^(−1/2) guides.

    ``eta_w`` (E,) rates > 0, ``alpha`` (A,) exponents, ``T`` (N,) horizons >= 1,
    ``effective_eta`` and ``best`` (E, A, N) means over ``n_seeds`` seeds (an integer >= 1).
    """
    eta_w = checks.positive_array("eta_w", eta_w, ndim=1)
    alpha = _curves("alpha", alpha, (None,))
    T = checks.positive_array("T", T, ndim=1)
    shape = (len(eta_w), len(alpha), len(T))
    effective_eta, best = (_curves(k, v, shape, "eta_w, alpha and T")
                    for k, v in (("effective_eta", effective_eta), ("best", best)))
    n_seeds = checks.integer("n_seeds", n_seeds)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.3))
    for i, (eta, c) in enumerate(zip(eta_w, P)):
        for j, (a, ls) in enumerate(zip(alpha, ("-", "--"))):
            axes[0].loglog(T[1:], effective_eta[i, j, 1:], ls, color=c)
            axes[1].loglog(T, best[i, j], ls, color=c,
                           label=fr"$\eta_w = ${_power(eta)}, $\alpha = {a:g}$")
    ref = slice(np.searchsorted(T, 30), None)
    guide = np.sqrt(T[-1] / T[ref])
    axes[0].loglog(T[ref], effective_eta[:, 0, -1].mean() * guide, "k:", lw=1.5,
                   label=r"$\propto t^{-1/2}$")
    axes[1].loglog(T[ref], 2 * best[:, :, -1].max() * guide, "k:", lw=1.5,
                   label=r"$\propto T^{-1/2}$")
    axes[0].set(xlabel="step $t + 1$", ylabel=r"$\eta_{w,t} / \Vert w_t\Vert^2$",
                title="effective learning rate")
    axes[1].set(xlabel="$T$", ylabel=r"$\min_{t<T}\ \mathbb{E}\,\Vert\nabla L(V_t; g_t)\Vert^2$",
                title=f"gradient of $L$ (mean over {n_seeds} seeds)")
    axes[0].legend(loc="upper right")
    axes[1].legend(fontsize=8.5, loc="lower left")
    fig.tight_layout()
    return fig


def weight_decay(weight_decays, step, norm_sq, levels, eta_w=1.0) -> Figure:
    """‖w_t‖² (left) and η_w/‖w_t‖² (right), means over seeds, for every weight decay λ,
    with the predicted equilibrium of the effective rate dashed.

    ``weight_decays`` (L,) decays λ >= 0; ``step`` (T,); ``norm_sq`` (L, S, T) ‖w_t‖² over seeds;
    ``levels`` (L,) the equilibrium η_w/‖w‖² of each λ (NaN: none drawn, as for λ = 0);
    ``eta_w`` > 0 the rate of the runs.
    """
    weight_decays = _curves("weight_decays", weight_decays, (None,))
    if np.any(~np.isfinite(weight_decays) | (weight_decays < 0)):
        raise ValueError(f"weight_decays must be finite numbers >= 0, got {weight_decays}")
    step = _curves("step", step, (None,))
    norm_sq = _curves("norm_sq", norm_sq, (len(weight_decays), None, len(step)),
                      "weight_decays and step")
    levels = _curves("levels", levels, (len(weight_decays),), "weight_decays")
    eta_w = checks.positive("eta_w", eta_w)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2))
    for decay, c, wsq, level in zip(weight_decays, P, norm_sq, levels):
        axes[0].semilogy(step, wsq.mean(0), color=c, label=fr"$\lambda = {decay:g}$")
        axes[1].semilogy(step, models.effective_eta(eta_w, wsq).mean(0), color=c)
        if np.isfinite(level):
            axes[1].axhline(level, color=c, ls="--", lw=1.2)
    axes[0].set(xlabel="step $t$", ylabel=r"$\Vert w_t\Vert^2$", title="norm (mean over seeds)")
    axes[1].set(xlabel="step $t$", ylabel=r"$\eta_w / \Vert w_t\Vert^2$",
                title="effective learning rate")
    axes[0].legend()
    fig.tight_layout()
    return fig


def draw_rates(fig, steps):
    """``draw`` for the (η_w, η_g) sliders: the loss with and without BN (left) and the
    effective rate with BN (right) over ``steps`` steps, from
    :func:`lib.autorate.experiments.rate_curves` (one member).

    fig: a matplotlib Figure; steps: an integer >= 1."""
    checks.instance("fig", fig, Figure)
    steps = checks.integer("steps", steps)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.set(yscale="log", xlim=(0, steps), ylim=(1e-3, 1e9), xlabel="step $t$",
            ylabel="training loss")
    bn_line, = ax1.plot([], [], label="with BN")
    plain_line, = ax1.plot([], [], "--", color=P[3], label="without BN")
    ax1.legend(loc="upper right")
    ax2.set(yscale="log", xlim=(0, steps), ylim=(1e-7, 1e3), xlabel="step $t$",
            ylabel=r"$\eta_w / \Vert w_t\Vert^2$ (with BN)")
    eff_line, = ax2.plot([], [], color=P[2])

    def update(r):
        bn_line.set_data(r["step"], r["loss_bn"])
        plain_line.set_data(r["step"], r["loss_plain"])
        eff_line.set_data(r["step"], r["effective_eta"])
        plotting.mark_divergence(ax1, r["loss_plain"], label="without BN")
    return update


def draw_scale(fig, steps):
    """``draw`` for the (g₀, λ) sliders: ‖w_t‖² (left) and the loss (right) of the two runs
    of :func:`lib.autorate.experiments.scale_pair` (one member) that theory says agree.

    fig: a matplotlib Figure; steps: an integer >= 1."""
    checks.instance("fig", fig, Figure)
    steps = checks.integer("steps", steps)
    axes = fig.subplots(1, 2)
    labels = (r"$\Vert w_t\Vert^2$", "training loss (mini-batch)")
    lines = []
    for ax, label, ylim in zip(axes, labels, ((1e-2, 1e6), (1e-2, 1e1))):
        ax.set(yscale="log", xlim=(0, steps), ylim=ylim, xlabel="step $t$", ylabel=label)
        solid = ax.plot([], [], label=r"start $g_0 w_0$; $\eta_w$, $\lambda$")[0]
        dashed = ax.plot([], [], "--", color=P[1],
                         label=r"start $w_0$; $\eta_w/g_0^2$, $\lambda g_0^2$")[0]
        lines.append((solid, dashed))
    axes[1].legend(loc="lower left", fontsize=10)

    def update(r):
        for (a, b), key in zip(lines, ("norm_sq", "loss")):
            a.set_data(r["step"], r[key][0])
            b.set_data(r["step"], r[key][1])
    return update


def growth_bound(eta_w, step, sides, budget) -> Figure:
    """The summed Lemma 2.4 bound and Lemma A.2's bounded norm over a sweep of η_w.

    Left: Σ_{t<T}‖∇_v L‖² (solid) and its bound ‖w_T‖²(‖w_T‖² − ‖w_0‖²)/η_w² (dashed)
    against T; middle: both at the last T against η_w; right: ‖w_T‖², ‖w_1‖², the growth
    after step 1 and its loss budget 2η_w(L_1 − L_T) against η_w. Means over seeds.

    ``eta_w`` (E,) rates > 0; ``step`` (T,) 0..steps; ``sides``: the result of
    :func:`lib.autorate.theory.summed_growth_bound` on records (E, S, T); ``budget``: that of
    :func:`lib.autorate.theory.norm_budget` on the same runs, arrays (E, S).
    """
    eta_w = checks.positive_array("eta_w", eta_w, ndim=1)
    step = _curves("step", step, (None,))
    sides = _record("sides", sides, ("grad_v_sum", "bound"))
    lhs, rhs = (_curves(f"sides[{k!r}]", sides[k], (len(eta_w), None, len(step)),
                        "eta_w and step").mean(1) for k in ("grad_v_sum", "bound"))
    keys = ("last", "first", "later_growth", "loss_budget")
    budget = _record("budget", budget, keys)
    parts = {k: _curves(f"budget[{k!r}]", budget[k], (len(eta_w), None), "eta_w").mean(1)
             for k in keys}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for eta, c, a, b in zip(eta_w, _colours(len(eta_w)), lhs, rhs):
        axes[0].loglog(step[1:], a[1:], color=c, label=_power(eta))
        axes[0].loglog(step[1:], b[1:], "--", color=c)
    axes[0].set(xlabel="$T$", ylabel="sum over $t < T$ (solid) and bound (dashed)",
                title=r"$\Sigma_{t<T}\,\Vert\nabla_v L\Vert^2 \leq$ bound")
    axes[0].legend(title=r"$\eta_w$", ncol=2, fontsize=8.5, loc="center right")
    axes[1].loglog(eta_w, lhs[:, -1], "o-", color=P[0], label=r"$\Sigma_{t<T}\,\Vert\nabla_v L\Vert^2$")
    axes[1].loglog(eta_w, rhs[:, -1], "s--", mfc="none", color=P[3],
                   label=r"$\Vert w_T\Vert^2(\Vert w_T\Vert^2 - \Vert w_0\Vert^2)/\eta_w^2$")
    axes[1].set(xlabel=r"$\eta_w$", title=f"at $T = {int(step[-1])}$")
    axes[1].legend(fontsize=9)
    styles = (("o-", P[0], r"$\Vert w_T\Vert^2$"), (":", "grey", r"$\Vert w_1\Vert^2$"),
              ("^-", P[2], r"$\Vert w_T\Vert^2 - \Vert w_1\Vert^2$"),
              ("v--", P[1], r"$2\eta_w(L_1 - L_T)$"))
    for key, (fmt, colour, label) in zip(keys, styles):
        axes[2].loglog(eta_w, np.maximum(parts[key], FLOOR), fmt, color=colour, label=label)
    axes[2].set(xlabel=r"$\eta_w$", title="the norm and its loss budget")
    axes[2].legend(fontsize=9)
    fig.tight_layout()
    return fig
