"""Figures of the weight-normalisation chapter, drawn in the book's style from lib results.

Every function takes results computed by :mod:`lib.wn.training`, :mod:`lib.wn.theory` or
:mod:`lib.wn.experiments` and returns a matplotlib figure; nothing is computed here
beyond means and reference lines.
"""

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lib import checks, plotting
from lib.wn import experiments, training

C = plotting.PALETTE
BLOW_UP = training.BLOW_UP  # a loss above BLOW_UP × L(0) is drawn as diverged (as training.train records)


def _loglog_guide(ax, x, y0, slope, label):
    """A dashed line y = y0 (x/x[0])^slope through the first point."""
    x = np.asarray(x, float)
    ax.plot(x, y0 * (x / x[0]) ** slope, "k--", lw=1.2, label=label)


def norm_growth(h, eta, zoom=20):
    """Loss of one WN run, and ‖v_t‖² next to ‖v_0‖² + η² Σ_{s<t} ‖∇_v L(s)‖² (Pythagoras)
    over the first ``zoom`` steps, where the norm moves. ``h`` from :func:`lib.wn.training.train`."""
    h = checks.instance("h", h, training.WNHistory, "lib.wn.training.train")
    eta, zoom = checks.positive("eta", eta), checks.integer("zoom", zoom)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    rec = h.history
    a.semilogy(h.step, h.loss, color=C[0])
    a.set(xlabel="step $t$", ylabel=r"loss $L(t)$", title="training loss")
    vsq = rec.weight_norm_sq["w"][:, 0]
    predicted = vsq[0] + eta**2 * np.concatenate([[0.0], np.cumsum(rec.grad_norm_sq["w"][:-1])])
    t = h.step[: zoom + 1]
    b.plot(t, vsq[: zoom + 1], color=C[0], label=r"$\|v_t\|_F^2$ measured")
    b.plot(t, predicted[: zoom + 1], "o", mfc="none", color=C[1], ms=6,
           label=r"$\|v_0\|_F^2 + \eta^2\sum_{s<t}\|\nabla_v L(s)\|^2$")
    b.set(xlabel="step $t$", ylabel=r"$\|v_t\|_F^2$", title=f"the norm of $v$ (first {zoom} steps)")
    b.legend(loc="lower right")
    fig.tight_layout()
    return fig


def kernel_heatmaps(H, V, G):
    """The three limit kernels (n, n) side by side, each with its own colour scale."""
    H, V, G = (checks.array(k, K, ndim=2) for k, K in zip("HVG", (H, V, G)))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
    for ax, K, name in zip(axes, (H, V, G), (r"$H^\infty = V^\infty + G^\infty$",
                                             r"$V^\infty$ (directions)", r"$G^\infty$ (lengths)")):
        im = ax.imshow(np.asarray(K), cmap="viridis")
        ax.set(title=name, xlabel="$j$", ylabel="$i$")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def concentration(widths, conc, lam_V_inf, lam_G_inf):
    """Distance of V(0), G(0) from their limits against m, and their least eigenvalues.

    ``conc`` from :func:`lib.wn.theory.concentration` at ``widths``; λ_min finite numbers.
    """
    widths = checks.positive_array("widths", widths, ndim=1)
    conc = checks.mapping_keys("conc", conc, ("err_V", "err_G", "lam_V", "lam_G"))
    for key, arr in conc.items():
        if checks.array(f"conc[{key!r}]", arr, ndim=2).shape[0] != len(widths):
            raise ValueError(f"conc[{key!r}] must have one row per width ({len(widths)}), "
                             f"got shape {np.shape(arr)}")
    lam_V_inf, lam_G_inf = checks.number("lam_V_inf", lam_V_inf), checks.number("lam_G_inf", lam_G_inf)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key, col, name in (("err_V", C[0], "V"), ("err_G", C[1], "G")):
        mean, sd = conc[key].mean(1), conc[key].std(1)
        a.errorbar(widths, mean, sd, color=col, marker="o", capsize=3,
                   label=rf"$\|{name}(0) - {name}^\infty\|_2$")
    _loglog_guide(a, widths, conc["err_V"].mean(1)[0], -0.5, r"slope $-1/2$")
    _loglog_guide(a, widths, conc["err_G"].mean(1)[0], -0.5, None)
    a.set(xscale="log", yscale="log", xlabel="width $m$", ylabel="spectral-norm error",
          title="finite width → limit")
    a.legend()
    for key, col, name, lim in (("lam_V", C[0], "V", lam_V_inf), ("lam_G", C[1], "G", lam_G_inf)):
        b.errorbar(widths, conc[key].mean(1), conc[key].std(1), color=col, marker="o",
                   capsize=3, label=rf"$\lambda_{{\min}}({name}(0))$")
        b.axhline(lim, color=col, ls="--", lw=1.2, label=rf"$\lambda_{{\min}}({name}^\infty)$")
    b.set(xscale="log", yscale="log", xlabel="width $m$", ylabel="least eigenvalue",
          title="least eigenvalues")
    b.legend(ncol=2, fontsize=10)
    fig.tight_layout()
    return fig


def regimes(rs, eta, limit_curve, lam_V_inf, lam_G_inf):
    """Left: loss at the grid step nearest ``eta`` for every α. Right: rates against α.

    ``rs`` from :func:`lib.wn.experiments.regime_sweep`; ``limit_curve`` is (α grid,
    λ_min(Λ∞_α)), two 1-D arrays of one length; the measured rates are ``rs.rates()``.
    """
    rs = checks.instance("rs", rs, experiments.RegimeSweep, "lib.wn.experiments.regime_sweep")
    eta = checks.positive("eta", eta)
    if not isinstance(limit_curve, (tuple, list)) or len(limit_curve) != 2:
        raise TypeError("limit_curve must be a pair (alpha grid, lambda_min), got "
                        f"{type(limit_curve).__name__}")
    grid = checks.positive_array("limit_curve[0]", limit_curve[0], ndim=1)
    curve = checks.array("limit_curve[1]", limit_curve[1], ndim=1)
    checks.same_length(**{"limit_curve[0]": grid, "limit_curve[1]": curve})
    lam_V_inf, lam_G_inf = checks.number("lam_V_inf", lam_V_inf), checks.number("lam_G_inf", lam_G_inf)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.4))
    _regime_losses(a, rs, int(np.argmin(np.abs(np.log(rs.etas / eta)))))
    _regime_rates(b, rs, grid, curve, lam_V_inf, lam_G_inf)
    fig.tight_layout()
    return fig


def _regime_losses(a, rs, k):
    """L(t)/L(0), median over seeds, for every α and the plain net at the step size rs.etas[k]."""
    for i, alpha in enumerate(rs.alphas):
        L = rs.loss[i, k]                                          # (S, T)
        a.semilogy(rs.step, np.median(L / L[:, :1], 0), color=C[i % 7], label=f"α = {alpha:.3g}")
    P = rs.plain_loss[k]
    a.semilogy(rs.step, np.median(P / P[:, :1], 0), "k--", lw=1.5, label="un-normalised")
    a.set(xlabel="step $t$", ylabel=r"$L(t)/L(0)$ (median of seeds)", ylim=(1e-20, 10),
          title=f"same step size η = {rs.etas[k]:.3g}")
    a.legend(fontsize=10, ncol=2)


def _regime_rates(b, rs, grid, curve, lam_V_inf, lam_G_inf):
    """The predicted rate λ_min(Λ∞_α) against α, its two asymptotes, and the measured rates."""
    b.plot(grid, curve, color=C[0], label=r"$\lambda_{\min}(\Lambda^\infty_\alpha)$")
    b.plot(rs.alphas, rs.spectrum[..., 0].mean(1), "o", color=C[0], mfc="none", ms=9,
           label=r"$\lambda_{\min}(\Lambda(0))$, width $m$")
    b.plot(grid, lam_V_inf / grid**2, ":", color=C[1], label=r"$\lambda_{\min}(V^\infty)/\alpha^2$")
    b.plot(grid, np.full_like(grid, lam_G_inf), ":", color=C[2],
           label=r"$\lambda_{\min}(G^\infty)$")
    measured = rs.rates()                                          # (A, E, S)
    for i, alpha in enumerate(rs.alphas):
        ok = np.isfinite(measured[i]).all(-1)
        b.errorbar(np.full(ok.sum(), alpha), measured[i, ok].mean(-1), measured[i, ok].std(-1),
                   fmt="s", ms=5, color=C[3], capsize=3, label="measured" if i == 0 else None)
    plain = rs.rates(plain=True)
    ok = np.isfinite(plain).all(-1)
    b.errorbar(np.ones(ok.sum()), plain[ok].mean(-1), plain[ok].std(-1), fmt="*", ms=12,
               color="k", label="un-normalised, measured")
    b.set(xscale="log", yscale="log", xlabel=r"initialisation scale $\alpha$",
          ylabel=r"rate $\lambda$ (per unit of $\eta$)", title="two regimes")
    b.legend(fontsize=10)


def edge(rs):
    """Left: log10 L(T)/L(0) over η × α (and the plain net), each α's edge 2/λ_max(Λ(0))
    marked. Right: the effective scale α_eff(T)/α against η. ``rs`` from ``regime_sweep``."""
    rs = checks.instance("rs", rs, experiments.RegimeSweep, "lib.wn.experiments.regime_sweep")
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 9), gridspec_kw={"height_ratios": [1.15, 1]})
    ratio = lambda L: np.median(L[..., -1] / L[..., 0], -1)  # noqa: E731  (median over seeds)
    final = np.vstack([ratio(rs.loss), ratio(rs.plain_loss)[None]])        # (A + 1, E)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.clip(np.log10(np.where(np.isfinite(final), final, np.inf)), -30, 30)
    x = np.log10(rs.etas)
    half = (x[1] - x[0]) / 2
    im = a.imshow(logs, cmap="viridis", aspect="auto", vmin=-30, vmax=30, origin="lower",
                  extent=(x[0] - half, x[-1] + half, -0.5, len(final) - 0.5))
    for (r, k), v in np.ndenumerate(logs):
        a.text(x[k], r, "blows up" if v >= 30 else str(int(round(v))), ha="center", va="center",
               fontsize=10, color="white" if v < 5 else "black")
    a.plot(np.log10(rs.edge()), np.arange(len(rs.alphas)), "D", color=C[3], ms=8,
           label=r"edge $2/\lambda_{\max}(\Lambda(0))$")
    a.plot(np.log10(2 / rs.plain_spectrum[:, -1].mean()), len(rs.alphas), "D", color=C[3], ms=8)
    a.set_yticks(range(len(final)), [f"α = {v:.3g}" for v in rs.alphas] + ["un-normalised"])
    a.set_xticks(x, [f"{v:.3g}" for v in rs.etas])
    a.set(xlabel="step size η",
          title=r"$\log_{10} L(T)/L(0)$ after $T$ = " + f"{rs.step[-1]} steps")
    a.grid(False)
    a.legend(loc="upper left", bbox_to_anchor=(-0.02, -0.12), frameon=False, fontsize=10)
    fig.colorbar(im, ax=a, shrink=0.9)
    grow = np.median(rs.alpha_eff[..., -1] / rs.alpha_eff[..., 0], -1)     # (A, E)
    for i, (alpha, e) in enumerate(zip(rs.alphas, rs.edge())):
        b.loglog(rs.etas, grow[i], "o-", color=C[i % 7], label=f"α = {alpha:.3g}")
        b.axvline(e, color=C[i % 7], lw=1, ls=":")
    b.set(xlabel="step size η", ylabel=r"$\alpha_{\mathrm{eff}}(T)/\alpha$",
          title=r"effective scale $\|v\|_F/\|g\|$ after training")
    b.legend(fontsize=10, ncol=2)
    fig.tight_layout()
    return fig


def widths(ws, show=(0, 2, -1)):
    """Loss against the kernel prediction, λ_min(Λ(t)) and the distance moved as m grows.

    ``ws`` from :func:`lib.wn.experiments.width_sweep`; ``show`` indices of its widths.
    """
    ws = checks.instance("ws", ws, experiments.WidthSweep, "lib.wn.experiments.width_sweep")
    n = len(ws.widths)
    if isinstance(show, (str, bytes)) or not hasattr(show, "__iter__"):
        raise TypeError(f"show must be a list of indices of ws.widths, got {type(show).__name__}")
    show = [checks.integer("show", i, lo=-n, hi=n - 1) for i in show]
    fig = plt.figure(figsize=(10, 8))
    grid = fig.add_gridspec(2, 2)
    a, c, b = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    steps = np.arange(ws.loss.shape[-1])
    for j, i in enumerate(show):
        a.semilogy(steps, ws.loss[i, 0], color=C[j], label=f"m = {ws.widths[i]}")
        a.semilogy(steps, ws.linear[i, 0], "--", color=C[j], lw=1.2)
    a.set(xlabel="step $t$", ylabel="loss", ylim=(1e-25, 1e2),
          title="training (solid), linearised (dashed)")
    a.legend(fontsize=10)
    ratio = ws.lam_min / ws.lam_min[..., :1]
    for i, m in enumerate(ws.widths):
        c.plot(ws.observed, ratio[i].mean(0), color=C[i % 7], label=f"m = {m}")
    c.set(xlabel="step $t$", ylabel=r"$\lambda_{\min}(\Lambda(t))/\lambda_{\min}(\Lambda(0))$",
          title="the kernel drifts less as m grows")
    c.legend(fontsize=10, ncol=2)
    _distances(b, ws)
    fig.tight_layout()
    return fig


def _distances(b, ws):
    """How far training moves against m: relative distances of v and g, changed ReLU patterns."""
    for key, col, name in (("dist_v", C[0], r"$\|v(T)-v(0)\|_F/\|v(0)\|_F$"),
                           ("dist_g", C[2], r"$\|g(T)-g(0)\|/\|g(0)\|$"),
                           ("sign_changes", C[3], "ReLU patterns changed")):
        end = getattr(ws, key)[..., -1]
        b.errorbar(ws.widths, end.mean(1), end.std(1), color=col, marker="o", capsize=3, label=name)
    _loglog_guide(b, ws.widths, ws.sign_changes[..., -1].mean(1)[0] * 2, -0.5, r"slope $-1/2$")
    b.set(xscale="log", yscale="log", xlabel="width $m$", ylabel="after $T$ steps",
          title="how far training moves (mean ± sd over seeds)")
    b.legend(fontsize=10)


def as_diverged(loss):
    """Loss curve with everything from the first value above BLOW_UP × L(0) set to inf.

    ``loss`` a non-empty 1-D array (inf/NaN allowed)."""
    loss = checks.array("loss", loss, ndim=1, finite=False).copy()
    bad = np.flatnonzero(~np.isfinite(loss) | (loss > BLOW_UP * loss[0]))
    if bad.size:
        loss[bad[0]:] = np.inf
    return loss


def _spectrum_lines(b, n):
    """The slider's right panel, empty: lines for the spectra of Λ(0), Λ(T), H(0) and 2/η."""
    b.set(yscale="log", xlim=(0.5, n + 0.5), ylim=(1e-4, 1e3), xlabel="index $i$ (ascending)",
          ylabel=r"eigenvalue $\lambda_i$", title=r"spectrum of $\Lambda$")
    # lines, not markers: the site swaps each artist's SVG, and marker defs do not survive
    s0, = b.plot([], [], "--", color=C[0], label=r"WN, $\Lambda(0)$")
    sT, = b.plot([], [], "-", color=C[0], label=r"WN, $\Lambda(T)$")
    p0, = b.plot([], [], ":", color="k", lw=2.5, label=r"un-normalised, $H(0)$")
    edge, = b.plot([], [], color=C[3], lw=1.5, label=r"$2/\eta$")
    b.legend(loc="lower right", fontsize=10)
    return s0, sT, p0, edge


def draw_comparison(fig, steps, n):
    """Slider figure: loss of WN and un-normalised GD, and the spectra of Λ against 2/η.

    ``fig`` a matplotlib Figure; ``steps`` and ``n`` (training points) integers ≥ 1.
    """
    fig = checks.instance("fig", fig, Figure, "matplotlib")
    steps, n = checks.integer("steps", steps), checks.integer("n", n)
    a, b = fig.subplots(1, 2)
    a.set(yscale="log", xlim=(0, steps), ylim=(1e-14, 1e4), xlabel="step $t$",
          ylabel=r"loss $L(t)$", title="training")
    wn_line, = a.plot([], [], color=C[0], label="weight-normalised")
    plain_line, = a.plot([], [], "--", color="k", label="un-normalised")
    a.legend(loc="lower left")
    note = a.text(0.97, 0.95, "", transform=a.transAxes, ha="right", va="top", color=C[3],
                  fontsize=11, fontweight="bold")
    s0, sT, p0, edge = _spectrum_lines(b, n)
    idx = np.arange(1, n + 1)

    def update(res):
        wn_loss, plain_loss = as_diverged(res["wn"]), as_diverged(res["plain"])
        wn_line.set_data(np.arange(len(wn_loss)), wn_loss)
        plain_line.set_data(np.arange(len(plain_loss)), plain_loss)
        blown = [name for name, L in (("WN", wn_loss), ("un-normalised", plain_loss))
                 if plotting.first_nonfinite(L) is not None]
        note.set_text("\n".join(f"{name}: blows up" for name in blown))
        s0.set_data(idx, res["wn_spec0"])
        sT.set_data(idx, res["wn_specT"])
        p0.set_data(idx, res["plain_spec0"])
        edge.set_data([0.5, n + 0.5], [2 / res["eta"]] * 2)
    return update


def fair_comparison(kappa_curve, limits, rs, tuned, best):
    """Left: κ(Λ∞_α) and κ(Λ(0)) against α. Right: the rate per step at each α's best step,
    predicted from κ and measured (tuned runs, and the regime sweep's best grid step).

    ``kappa_curve`` (α grid, κ(Λ∞_α)), two 1-D arrays of one length; ``limits`` the three
    numbers (κ(V∞), κ(G∞), κ(H∞)); ``rs`` from :func:`lib.wn.experiments.regime_sweep`,
    ``tuned`` from :func:`lib.wn.experiments.tuned_runs`; ``best`` the pair (α*, κ*).
    """
    grid, curve = _pair("kappa_curve", kappa_curve)
    limits = checks.positive_array("limits", limits, ndim=1)
    if len(limits) != 3:
        raise ValueError(f"limits must hold κ(V∞), κ(G∞), κ(H∞), got {len(limits)} numbers")
    rs = checks.instance("rs", rs, experiments.RegimeSweep, "lib.wn.experiments.regime_sweep")
    tuned = checks.instance("tuned", tuned, experiments.TunedRuns, "lib.wn.experiments.tuned_runs")
    best = checks.positive_array("best", best, ndim=1)
    if len(best) != 2:
        raise ValueError(f"best must be the pair (alpha, kappa), got {len(best)} numbers")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.4))
    _kappas(a, grid, curve, limits, rs, best)
    _tuned_rates(b, grid, curve, limits[2], rs, tuned)
    fig.tight_layout()
    return fig


def _pair(name, pair):
    """Two 1-D arrays of one length, the first > 0 (an α grid and a curve over it)."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be a pair (alpha grid, values), got {type(pair).__name__}")
    x = checks.positive_array(f"{name}[0]", pair[0], ndim=1)
    y = checks.positive_array(f"{name}[1]", pair[1], ndim=1)
    checks.same_length(**{f"{name}[0]": x, f"{name}[1]": y})
    return x, y


def _kappas(a, grid, curve, limits, rs, best):
    a.plot(grid, curve, color=C[0], label=r"$\kappa(\Lambda^\infty_\alpha)$")
    a.plot(rs.alphas, (rs.spectrum[..., -1] / rs.spectrum[..., 0]).mean(1), "o", mfc="none",
           ms=9, color=C[0], label=r"$\kappa(\Lambda(0))$, width $m$")
    for k, ls, col, name in zip(limits, (":", ":", "--"), (C[1], C[2], "k"),
                                (r"$\kappa(V^\infty)$", r"$\kappa(G^\infty)$",
                                 r"$\kappa(H^\infty)$, un-normalised")):
        a.axhline(k, ls=ls, color=col, lw=1.2, label=name)
    a.plot(*best, "*", color=C[3], ms=14, label=rf"best: $\alpha^\star$ = {best[0]:.2f}")
    a.set(xscale="log", yscale="log", xlabel=r"initialisation scale $\alpha$",
          ylabel=r"condition number $\lambda_{\max}/\lambda_{\min}$",
          title="conditioning of the kernel")
    a.legend(fontsize=10)


def _tuned_rates(b, grid, curve, kappa_H, rs, tuned):
    """e-folds of the residual per step at the best step, against α."""
    b.plot(grid, experiments.best_rate(curve), color=C[0],
           label=r"$\log\frac{\kappa+1}{\kappa-1}$, $\kappa = \kappa(\Lambda^\infty_\alpha)$")
    b.axhline(float(experiments.best_rate([kappa_H])[0]), color="k", ls="--", lw=1.2,
              label=r"the same for $H^\infty$")
    order = np.argsort(tuned.alphas)
    rates = tuned.rates()[order]
    b.errorbar(tuned.alphas[order], rates.mean(1), rates.std(1), fmt="s-", ms=5, color=C[3],
               capsize=3, label=r"measured at $\eta = 2/(\lambda_{\min} + \lambda_{\max})$")
    plain = tuned.rates(plain=True)
    b.errorbar([1.0], [plain.mean()], [plain.std()], fmt="*", ms=13, color="k",
               label="un-normalised, measured")
    grid_best, _ = rs.best_rates()
    b.plot(rs.alphas, grid_best, "^", color=C[4], ms=7, label=r"best $\eta$ of the sweep's grid")
    b.set(xscale="log", yscale="log", xlabel=r"initialisation scale $\alpha$",
          ylabel="e-folds of the residual per step", title="each α at its best step")
    b.legend(fontsize=9)
