"""Figures of the exponential learning-rate chapter, drawn in the book style from lib results.

Every function takes results of :mod:`lib.explr.experiments` or :mod:`lib.explr.toy` and
returns a pyplot Figure (so a notebook shows it); nothing is computed here beyond
distances, means and reference lines. The ``draw_*`` functions are the ``draw`` halves of
the chapter's interactive figures (:class:`lib.widgets.InteractiveFigure`).
"""

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from lib import checks, plotting
from lib.explr.comparisons import check_runs
from lib.explr.experiments import unit_distance

P = plotting.PALETTE
FLOOR = 1e-17   # distances of directions are drawn no lower than this (below round-off)


def _nonempty(name: str, value, mapping: bool = True):
    """``value`` if it is a non-empty dict (or list/tuple when not ``mapping``)."""
    kind = Mapping if mapping else (list, tuple)
    if not isinstance(value, kind) or not value:
        raise (ValueError if isinstance(value, kind) else TypeError)(
            f"{name} must be a non-empty {'dict' if mapping else 'list'} of results, "
            f"got {value!r:.60}")
    return value


def _records(name: str, value, keys, mapping: bool = True):
    """A non-empty dict (or list) of result dicts, each holding ``keys``."""
    _nonempty(name, value, mapping)
    for k, r in (value.items() if mapping else enumerate(value)):
        if not isinstance(r, Mapping) or not set(keys) <= set(r):
            raise TypeError(f"{name}[{k!r}] must be a result dict with keys {sorted(keys)}, "
                            f"got {r!r:.60}")
    return value


def draw_schedule(fig, epochs: int = 10, steps_per_epoch: int = 391, ylim=(1e-3, 1e12)):
    """``draw`` for the exponential-schedule slider (:func:`~lib.explr.experiments.exp_lr_curve`).

    fig: a matplotlib Figure; epochs, steps_per_epoch: integers >= 1; ylim: 0 < lo < hi.
    """
    checks.instance("fig", fig, Figure)
    epochs, ylim = checks.integer("epochs", epochs), checks.interval("ylim", ylim)
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    ax = fig.subplots()
    ax.set(yscale="log", xlim=(0, epochs), ylim=ylim,
           xlabel=f"epoch ({steps_per_epoch} steps each)", ylabel=r"learning rate $\tilde\eta_t$")
    line, = ax.plot([], [], label=r"$\eta\,\alpha^{-2t-1}$")
    ax.legend(loc="upper left")
    note = ax.text(0.97, 0.05, "", transform=ax.transAxes, ha="right")

    def update(result):
        line.set_data(result["epoch"], result["etas"])
        note.set_text(f"growth per epoch: ×{result['growth']:.4g}")
    return update


def _equivalence_runs(runs, control):
    """runs: (momentum, dtype) -> equivalence result; control: None or a γ run in both dtypes."""
    _records("runs", runs, ("step", "theta_a", "theta_b", "alpha"))
    for key in runs:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], torch.dtype)):
            raise TypeError(f"runs keys must be (momentum, dtype) pairs, got {key!r}")
    if control is not None:
        control = checks.fraction("control", control)
        if {(control, torch.float32), (control, torch.float64)} - set(runs):
            raise ValueError(f"control: runs needs ({control}, torch.float32) and "
                             f"({control}, torch.float64) to compare run A in both")
    return control


def equivalence(runs, control=0.9) -> Figure:
    """Left: distance of the directions of runs A and B; right: ‖θ^B_t‖/‖θ^A_t‖ against α^{−t}.

    ``runs``: (momentum, dtype) -> a result of :func:`lib.explr.experiments.equivalence`
    (float32 runs dashed; the right panel shows the float64 ones). ``control``: None or a
    momentum whose run A is drawn float32 against float64 (the round-off of one run).
    """
    control = _equivalence_runs(runs, control)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for (g, dt), r in runs.items():
        ax.plot(r["step"], np.maximum(unit_distance(r["theta_a"], r["theta_b"]), FLOOR),
                ls="-" if dt == torch.float64 else "--", label=f"A vs B, γ = {g}, {str(dt)[6:]}")
    if control is not None:
        a32, a64 = runs[control, torch.float32], runs[control, torch.float64]
        ax.plot(a64["step"], np.maximum(unit_distance(a32["theta_a"], a64["theta_a"]), FLOOR),
                color="0.5", lw=1, label=f"A in float32 vs A in float64, γ = {control}")
    ax.set(yscale="log", ylim=(FLOOR, 1), xlabel="step $t$",
           ylabel=r"$\Vert \theta^A_t/\Vert\theta^A_t\Vert - "
                  r"\theta^B_t/\Vert\theta^B_t\Vert \Vert$")
    ax.legend(fontsize=8.5)
    for (g, dt), r in runs.items():
        if dt == torch.float64:
            norm_a, norm_b = (np.linalg.norm(r[k], axis=1) for k in ("theta_a", "theta_b"))
            ax2.plot(r["step"], norm_b / norm_a, label=f"measured, γ = {g}")
            ax2.plot(r["step"], r["alpha"] ** -r["step"], "k:", lw=1.5)
    ax2.plot([], [], "k:", label=r"$\alpha^{-t}$")
    ax2.set(yscale="log", xlabel="step $t$", ylabel=r"$\Vert\theta^B_t\Vert / \Vert\theta^A_t\Vert$")
    ax2.legend()
    fig.tight_layout()
    return fig


def draw_distance(fig, steps: int = 200):
    """``draw`` for the equivalence slider (:func:`~lib.explr.experiments.equivalence_distance`).

    fig: a matplotlib Figure; steps: the runs' length, an integer >= 1.
    """
    checks.instance("fig", fig, Figure)
    steps = checks.integer("steps", steps)
    ax = fig.subplots()
    ax.set(yscale="log", xlim=(0, steps), ylim=(FLOOR, 1e-3), xlabel="step $t$",
           ylabel="distance of directions, A vs B")
    line, = ax.plot([], [], label="float64")
    ax.legend(loc="upper left")

    def update(result):
        line.set_data(result["step"], np.maximum(result["distance"], FLOOR))
    return update


def learning_rates(runs, steps_per_epoch: int) -> Figure:
    """The per-step learning rates of named schedules against the epoch, on a log axis.

    ``runs``: name -> (etas, weight decay[, init]), as :func:`lib.explr.experiments.schedule_runs`
    takes; ``steps_per_epoch``: an integer >= 1.
    """
    etas = {name: run[0] for name, run in check_runs(runs).items()}
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    fig, ax = plt.subplots(figsize=(8.5, 4))
    for name, rates in etas.items():
        ax.plot(np.arange(len(rates)) / steps_per_epoch, rates, label=name)
    ax.set(yscale="log", xlabel="epoch", ylabel=r"learning rate $\eta_t$",
           xlim=(0, max(map(len, etas.values())) / steps_per_epoch))
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9)  # beside the axes
    fig.tight_layout()
    return fig


def schedule_runs(results, steps_per_epoch: int, epochs: int, milestones=(),
                  layer: int = 3) -> Figure:
    """Test accuracy and ‖w‖ of one weight tensor against the epoch, mean over seeds with a
    min–max band (records without a test accuracy are skipped).

    ``results`` from :func:`lib.explr.experiments.schedule_runs`; steps_per_epoch, epochs:
    integers >= 1; milestones: epochs of the decays (dotted lines); layer: index of the
    tensor (3: the first convolution of the second residual block of a PreResNet).
    """
    keys = ("step", "test_accuracy", "weight_norm_sq")
    for name, rs in _nonempty("results", results).items():
        _records(f"results[{name!r}]", rs, keys, mapping=False)
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    epochs = checks.integer("epochs", epochs)
    milestones = checks.array("milestones", milestones, nonempty=False).reshape(-1)
    n_tensors = min(np.shape(r["weight_norm_sq"])[-1] for rs in results.values() for r in rs)
    layer = checks.integer("layer", layer, lo=0, hi=n_tensors - 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rs in results.items():
        epoch = np.asarray(rs[0]["step"], dtype=float) / steps_per_epoch
        _band(ax, epoch, [r["test_accuracy"] for r in rs], name)
        _band(ax2, epoch, [np.sqrt(r["weight_norm_sq"][:, layer]) for r in rs], name)
    for a in (ax, ax2):
        for m in milestones:
            a.axvline(m, color="0.6", lw=1, ls=":")
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0.5, 1), xlim=(0, epochs))
    ax2.set(xlabel="epoch", ylabel=r"$\Vert w\Vert$ of one convolution", yscale="log",
            xlim=(0, epochs))
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def equilibrium(points, window: int = 50) -> Figure:
    """‖θ_t − θ_{t−1}‖²/‖θ_{t−1}‖² (a running mean of ``window`` steps) against 2ηλ/(1+γ).

    ``points`` from :func:`lib.explr.experiments.equilibrium`; ``window``: an integer >= 1,
    at most the number of steps.
    """
    _records("points", points, ("eta", "weight_decay", "momentum", "predicted", "step_sq",
                                "norm_sq"), mapping=False)
    shortest = min(len(r["step_sq"]) for r in points) - 1
    window = checks.integer("window", window, hi=max(shortest, 1))
    fig, ax = plt.subplots()
    for k, r in enumerate(points):
        ratio = r["step_sq"][1:] / r["norm_sq"][:-1]  # ‖θ_t − θ_{t−1}‖² / ‖θ_{t−1}‖²
        smooth = np.convolve(ratio, np.ones(window) / window, mode="valid")
        colour = P[k % len(P)]
        ax.plot(np.arange(len(smooth)) + window, smooth, color=colour,
                label=f"η={r['eta']}, λ={r['weight_decay']}, γ={r['momentum']}")
        ax.axhline(r["predicted"], color=colour, ls="--", lw=1.2)
    ax.plot([], [], "k--", lw=1.2, label=r"$2\eta\lambda/(1+\gamma)$")
    ax.set(yscale="log", xlabel="step $t$",
           ylabel=rf"$\Vert\Delta\theta\Vert^2/\Vert\theta\Vert^2$ (mean of {window} steps)")
    ax.legend(fontsize=9)
    return fig


def toy_runs(runs) -> Figure:
    """Error and ‖w_t‖ of named toy runs (:func:`lib.explr.toy.toy_gd` results) per step."""
    _records("runs", runs, ("error", "norm"))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in runs.items():
        ax.plot(r["error"], label=name, lw=1.5)
        ax2.plot(r["norm"], label=name, lw=1.5)
    ax.set(xlabel="step $t$", ylabel=r"error $\arccos(w_1/\Vert w\Vert)/\pi$", ylim=(0, 0.5))
    ax2.set(xlabel="step $t$", ylabel=r"$\Vert w_t\Vert$", yscale="log")
    ax.legend()
    fig.tight_layout()
    return fig


def draw_toy(fig, steps: int = 1000):
    """``draw`` for the toy slider (:func:`lib.explr.toy.toy_trajectory`): error and ‖w_t‖.

    fig: a matplotlib Figure; steps: the runs' length, an integer >= 1.
    """
    checks.instance("fig", fig, Figure)
    steps = checks.integer("steps", steps)
    ax, ax2 = fig.subplots(1, 2)
    ax.set(xlim=(0, steps), ylim=(0, 0.5), xlabel="step $t$", ylabel="error")
    ax2.set(xlim=(0, steps), ylim=(1e-3, 1e2), yscale="log", xlabel="step $t$",
            ylabel=r"$\Vert w_t\Vert$")
    error, = ax.plot([], [], label="BN + WD")
    norm, = ax2.plot([], [], label="BN + WD")
    ax.legend(loc="upper right")

    def update(result):
        error.set_data(result["step"], result["error"])
        norm.set_data(result["step"], result["norm"])
    return update


def _band(ax, x, rows, label, **kw):
    """Mean of ``rows`` (seeds × T) over seeds, and a band from their min to max; NaN
    entries (steps without a record) are skipped."""
    rows = np.asarray(rows, dtype=float)
    keep = np.all(np.isfinite(rows), axis=0)
    line, = ax.plot(x[keep], rows[:, keep].mean(0), label=label, **kw)
    if len(rows) > 1:
        ax.fill_between(x[keep], rows[:, keep].min(0), rows[:, keep].max(0),
                        color=line.get_color(), alpha=0.2, lw=0)


def schedule_pairs(results, panels, steps_per_epoch: int, milestones=()) -> Figure:
    """The paper's comparisons side by side: per panel, test accuracy (top) and the total
    weight norm ‖θ_t‖ (bottom) of some named schedules, mean over seeds with a min–max band.

    ``results`` from :func:`lib.explr.comparisons.schedule_runs`; ``panels``: title ->
    list of schedule names in ``results``; ``steps_per_epoch``: an integer >= 1;
    ``milestones``: epochs of the decays (dotted lines).
    """
    keys = ("step", "test_accuracy", "weight_norm_sq")
    for name, rs in _nonempty("results", results).items():
        _records(f"results[{name!r}]", rs, keys, mapping=False)
    for title, names in _nonempty("panels", panels).items():
        if not isinstance(names, (list, tuple)) or not names or set(names) - set(results):
            raise ValueError(f"panels[{title!r}] must list schedules of results, got {names!r:.60}")
    spe = checks.integer("steps_per_epoch", steps_per_epoch)
    milestones = checks.array("milestones", milestones, nonempty=False).reshape(-1)
    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 6.5), squeeze=False,
                             sharex=True)
    for col, (title, names) in enumerate(panels.items()):
        top, bottom = axes[0, col], axes[1, col]
        for name in names:
            rs = results[name]
            epoch = np.asarray(rs[0]["step"], dtype=float) / spe
            _band(top, epoch, [r["test_accuracy"] for r in rs], name)
            norm = [np.sqrt(np.sum(r["weight_norm_sq"], axis=1)) for r in rs]
            _band(bottom, epoch, norm, name)
        for a in (top, bottom):
            for m in milestones:
                a.axvline(m, color="0.6", lw=1, ls=":")
        top.set(title=title, ylabel="test accuracy" if col == 0 else None)
        bottom.set(xlabel="epoch", yscale="log", ylabel=r"$\Vert\theta_t\Vert$" if col == 0 else None)
        top.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def monotone(results, slack) -> Figure:
    """Left: the relative change of the total squared norm per step, (R_{t+1} − R_t)/R_t,
    of each named run (mean over seeds; symmetric log axis). Right: the smallest slack
    over seeds of the runs without weight decay against Theorem C.1's bound
    (:func:`lib.explr.norms.monotone_slack`).

    ``results`` from :func:`lib.explr.comparisons.schedule_runs`, recorded at every step;
    ``slack``: name -> list over seeds of slack arrays (T,), for the runs without WD.
    """
    for name, rs in _nonempty("results", results).items():
        _records(f"results[{name!r}]", rs, ("step", "weight_norm_sq"), mapping=False)
    for name, rows in _nonempty("slack", slack).items():
        if name not in results or not isinstance(rows, (list, tuple)) or not rows:
            raise ValueError(f"slack[{name!r}] must be a list of arrays for a run in results")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rs in results.items():
        R = np.array([np.sum(r["weight_norm_sq"], axis=1) for r in rs])
        rel = np.nanmean(np.diff(R, axis=1) / R[:, :-1], axis=0)
        ax.plot(rs[0]["step"][:-1], rel, label=name, ls="-" if name in slack else "--", lw=1.2)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set(xlabel="step $t$",
           ylabel=r"$(\Vert\theta_{t+1}\Vert^2 - \Vert\theta_t\Vert^2)/\Vert\theta_t\Vert^2$")
    ax.legend(fontsize=7.5, ncol=2)
    for name, rows in slack.items():
        ax2.plot(np.min(np.asarray(rows, dtype=float), axis=0), label=name, lw=1.2)
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_yscale("symlog", linthresh=1e-4)
    ax2.set(xlabel="step $t$", ylabel="slack above Theorem C.1's bound")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig
