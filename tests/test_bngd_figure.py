"""lib.bngd.experiments (the paper's problems, figure 1, sweeps over ε) and lib.bngd.figures."""

import dataclasses
import itertools
import time

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

from lib.bngd import dynamics, experiments, figures, theory  # noqa: E402

EPS64 = np.finfo(np.float64).eps   # unit round-off of the float64 runs


# --- problems --------------------------------------------------------------------------

def test_paper_problem_follows_the_recipe():
    p = experiments.paper_problem(1e3, d=100, seed=4)
    np.testing.assert_allclose(p.h.numpy(), np.logspace(0, 3, 100), rtol=1e-14)
    assert p.u.norm().item() == pytest.approx(1.0, abs=1e-14)
    g = p.h * p.u
    torch.testing.assert_close(p.w0, g / g.norm(), rtol=0, atol=1e-15)
    assert p.kappa == pytest.approx(1e3) and p.c == pytest.approx(float(p.u @ g))
    q = experiments.paper_problem(1e3, d=100, seed=4, start="random")
    torch.testing.assert_close(q.u, p.u, rtol=0, atol=0)   # same u, another start
    assert q.w0.norm().item() == pytest.approx(1.0) and (q.w0 @ g).item() > 0
    for kw, match in ((dict(start="zero"), "start"), (dict(seed=-1), "seed"), (dict(kappa=0.5), "kappa"),
                      (dict(d=0), "d must")):
        with pytest.raises(ValueError, match=match):
            experiments.paper_problem(**{"kappa": 10.0, **kw})


def test_first_step_margin_is_the_first_steps_progress_along_g(f64):
    """w₁ᵀg − w₀ᵀg = ε (a₀/σ₀) · margin: the margin of Proposition 3.5, from one BNGD step."""
    for start in ("Hu", "random"):
        p = experiments.paper_problem(100.0, d=20, seed=1, start=start)
        run = dynamics.bngd(p.h, p.u, 1.0, p.w0, 1e3, 1.0, 1, trajectory=True)
        g = p.h * p.u
        sigma0 = (p.w0 @ (p.h * p.w0)).sqrt()
        progress = (run.w_path[1] - run.w_path[0]) @ g / (1e3 / sigma0)
        margin = experiments.first_step_margin(p)
        assert progress.item() == pytest.approx(margin, rel=1e-9, abs=1e-10 * (g @ g).item())
        if start == "Hu":
            assert abs(margin) < 1e-12 * (g @ g).item()
        else:
            assert margin > 0.1 * (g @ g).item()


# --- figure 1 ----------------------------------------------------------------------------

def test_gd_at_eps_opt_reaches_round_off_for_kappa_100_but_not_1000():
    """Why the chapter draws figure 1 for κ ≥ 1000: below that, GD's loss after 2000 steps
    is itself round-off and "BNGD below GD" cannot be decided."""
    end = {k: dynamics.gd((p := experiments.paper_problem(k)).h, p.u, p.w0, p.gd.eps_opt, 2000).loss[-1] / p.c
           for k in (100.0, 1e3)}
    assert end[100.0] < 1e-28 and end[1e3] > 1e-8


def test_figure1_config_is_the_papers_grid():
    cfg = experiments.Figure1Config()
    assert cfg.size == 5 * 43 * 41 == 8815 and cfg.steps == 2000
    np.testing.assert_allclose(cfg.eps, np.logspace(-5, 16, 43), rtol=1e-14)
    np.testing.assert_allclose(cfg.eps_a, 1.99 * np.logspace(-10, 0, 41), rtol=1e-14)
    assert cfg.a0 == (10.0, 1.0, 1e-2, 1e-4, 1e-8)


def test_classify_cells():
    eps_opt, floor = 1.0, 1e-12
    eff = np.array([1.0, 1.0, 5.0, 5.0, 1.0, 1.0, 0.79, np.nan])
    loss = np.array([1e-3, 1.0, 1e-3, 1.0, 1e-20, np.inf, 1e-3, 1e-3])
    out = experiments.classify(loss, eff, loss_gd=0.1, eps_opt=eps_opt, floor=floor)
    assert out.tolist() == [0, 1, 2, 3, 0, 4, 2, 4]
    # both at round-off: equal, so "not below" (class 1 when ε̂ is near ε_opt)
    assert experiments.classify(np.array([1e-20]), np.array([1.0]), 1e-25, eps_opt, floor).tolist() == [1]
    with pytest.raises(ValueError, match="close"):
        experiments.classify(loss, eff, 0.1, eps_opt, floor, close=1.5)


def amplification(p, a0, eps, eps_a, steps, delta=2.0**-30):
    """How much a BNGD run magnifies a relative perturbation of its start: (largest relative
    change of ε̂_k, largest change of loss_k/c) per unit δ, w0 → w0·(1 + δ·t), t in [−1, 1].
    δ is far above round-off and far below the dynamics' scale (the response is linear)."""
    base = dynamics.bngd(p.h, p.u, a0, p.w0, eps, eps_a, steps)
    tilt = 1 + delta * torch.linspace(-1, 1, p.h.shape[0], dtype=torch.float64)
    bumped = dynamics.bngd(p.h, p.u, a0, p.w0 * tilt, eps, eps_a, steps)
    states = ((bumped.eff_step - base.eff_step).abs() / base.eff_step.abs()).max() / delta
    losses = (bumped.loss - base.loss).abs().max() / p.c / delta
    return max(1.0, float(states)), max(1.0, float(losses))


def round_off(p, a0, eps, eps_a, steps):
    """(rtol of ε̂, atol of loss/c) within which a batched and a single run of one
    configuration agree: the paths sum d-term inner products in another order (round-off
    d·eps per step), which the run magnifies by at most its amplification A over K steps;
    the loss J = ½(c − 2aq + a²) is formed by cancellation, with a few eps·c besides.
    (The reasoning of test_slider_run_batched_and_single_agree.)"""
    d = p.h.shape[0]
    amp_states, amp_loss = amplification(p, a0, eps, eps_a, steps)
    return steps * amp_states * d * EPS64, (4 + steps * amp_loss * d) * EPS64


def test_figure1_grid_equals_separate_runs():
    """Every cell of a small grid (d = 8) against its own dynamics.bngd run, and its class
    worked out here from the definitions, not by experiments.classify: ε̂ within a factor
    0.8 of ε_opt = 2/(λ_max + λ_min), and loss below GD's at ε_opt after the same steps
    (both raised to floor·c). The grid holds cells of three classes (near and below, far
    and below, far and not below), so a swapped question, a wrong ε_opt or a misplaced
    cell changes the answer."""
    p = experiments.paper_problem(300.0, d=8, seed=2)
    cfg = experiments.Figure1Config(a0=(1.0, 1e-3), eps=(7e-3, 1.0, 1e6), eps_a=(0.1, 1.0, 1.9),
                                    steps=150)
    start = time.perf_counter()
    res = experiments.figure1(p, cfg)
    wall = time.perf_counter() - start
    assert 0 < res.seconds <= wall          # the BNGD call's wall time, in seconds
    assert res.loss.shape == res.eff_step.shape == res.classes.shape == (2, 3, 3)
    eps_opt, c = 2 / float(p.h.max() + p.h.min()), p.c
    gd = dynamics.gd(p.h, p.u, p.w0, eps_opt, cfg.steps).loss[-1].item()
    assert res.loss_gd == pytest.approx(gd, rel=cfg.steps * 8 * EPS64)
    expected = np.empty((2, 3, 3), dtype=int)
    for (i, a0), (j, e), (k, ea) in itertools.product(*map(enumerate, (cfg.a0, cfg.eps, cfg.eps_a))):
        one = dynamics.bngd(p.h, p.u, a0, p.w0, e, ea, cfg.steps)
        loss, eff = one.loss[-1].item(), one.eff_step[-1].item()
        rtol, atol = round_off(p, a0, e, ea, cfg.steps)
        assert res.eff_step[i, j, k] == pytest.approx(eff, rel=rtol, abs=0)
        assert res.loss[i, j, k] == pytest.approx(loss, rel=0, abs=atol * c)
        near = 0.8 * eps_opt < eff < eps_opt / 0.8
        below = max(loss, cfg.floor * c) < max(gd, cfg.floor * c)
        expected[i, j, k] = 2 * (not near) + (not below)
    assert np.array_equal(res.classes, expected)
    assert {0, 2, 3} <= set(expected.ravel().tolist())
    shares = res.fractions()
    assert list(shares) == list(experiments.CLASS_LABELS)
    assert [shares[lab] for lab in experiments.CLASS_LABELS] == [np.mean(expected == i) for i in range(5)]


# --- sweeps and slider computations ---------------------------------------------------------

def first_step_below(loss, tol):
    """First k with loss[k] ≤ tol in each column, −1 if none: a plain loop."""
    return np.array([next((k for k in range(loss.shape[0]) if loss[k, j] <= tol), -1)
                     for j in range(loss.shape[1])])


def test_eps_sweep_runs_gd_and_bngd_on_every_eps():
    """Each column of the sweep is the separate GD and BNGD run at that ε (losses in units
    of c, BNGD's ε̂_k, GD's constants), and steps_to gives the first step at tolerance for
    GD and for BNGD in that order, −1 where never reached (a plain loop here; the sweep
    reaches the tolerance in some columns and not in others)."""
    p = experiments.paper_problem(50.0, d=6, seed=0, start="random")
    eps = np.array([1e-3, 0.1, 10.0])
    K = 40
    sw = experiments.eps_sweep(p, eps, K, a0=0.5, eps_a=0.8)
    assert sw.gd.eps_opt == pytest.approx(2 / 51, rel=1e-14) and sw.eps.tolist() == eps.tolist()
    for j, e in enumerate(eps):
        bn = dynamics.bngd(p.h, p.u, 0.5, p.w0, e, 0.8, K)
        rtol, atol = round_off(p, 0.5, e, 0.8, K)
        np.testing.assert_allclose(sw.loss_bn[:, j], bn.loss.numpy() / p.c, rtol=0, atol=atol)
        np.testing.assert_allclose(sw.eff_step[:, j], bn.eff_step.numpy(), rtol=rtol, atol=0)
        gd = dynamics.gd(p.h, p.u, p.w0, e, K).loss.numpy() / p.c   # linear: K·d·eps relative
        np.testing.assert_allclose(sw.loss_gd[:, j], gd, rtol=K * 6 * EPS64)
    gd_steps, bn_steps = sw.steps_to(0.1)
    assert gd_steps.tolist() == first_step_below(sw.loss_gd, 0.1).tolist()
    assert bn_steps.tolist() == first_step_below(sw.loss_bn, 0.1).tolist()
    assert -1 in gd_steps and -1 in bn_steps and max(gd_steps) > 0 and max(bn_steps) > 0


@pytest.fixture
def quiet_numpy():
    old = np.seterr(over="ignore", invalid="ignore")   # theory overflows where GD diverges
    yield
    np.seterr(**old)


def test_gd_rates_measures_the_spectral_radius(quiet_numpy):
    """The contraction measured from GD runs equals max_i |1 − ελ_i| at every ε, including
    divergence (> 1), ε_opt ((κ−1)/(κ+1)) and a one-step solution (κ = 1, ε = 1: 0)."""
    for kappa in (1.0, 3.0, 100.0, 1e4):
        r = experiments.gd_rates(kappa, steps=120, n_eps=31)
        k = r["constants"]
        assert np.all(np.isfinite(r["measured"]))
        np.testing.assert_allclose(r["measured"], r["theory"], rtol=1e-9, atol=1e-12)
        assert np.allclose(r["theory"], np.abs(1 - np.outer(r["eps"], [1.0, kappa])).max(1))
        i = int(np.argmin(np.abs(r["eps"] - k.eps_opt)))
        assert r["eps"][i] == k.eps_opt and r["measured"][i] == pytest.approx(k.rate, abs=1e-10)
        assert np.all(r["measured"][r["eps"] > k.eps_max] > 1)


def secular_roots(h, u):
    """The nonzero eigenvalues of H* = H − ggᵀ/c for H = diag(h) (distinct, increasing h;
    no u_i = 0), g = Hu, c = uᵀg, without an eigen-solver: the roots of the secular equation
    1 = Σ g_i²/(c (h_i − μ)), one in each interval (h_i, h_{i+1}), where the right side
    decreases from +∞ to −∞ (so bisection finds it to round-off)."""
    h, u = h.tolist(), u.tolist()
    g = [hi * ui for hi, ui in zip(h, u)]
    c = sum(gi * ui for gi, ui in zip(g, u))
    f = lambda mu: 1 - sum(gi * gi / (c * (hi - mu)) for gi, hi in zip(g, h))  # noqa: E731
    roots = []
    for lo, hi in zip(h[:-1], h[1:]):
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
        roots.append((lo + hi) / 2)
    return roots


def test_best_rates_use_kappa_and_kappa_star():
    """GD's best rate (κ−1)/(κ+1) from the spectrum of H, BNGD's (κ*−1)/(κ*+1) with κ* from
    the secular equation of H* (not from theory.pseudo_condition's eigen-solver). A rate
    with κ in place of κ*, or with H*'s zero eigenvalue kept, fails: κ* ≈ 300 here."""
    p = experiments.paper_problem(2000.0, d=5, start="random")
    r = experiments.best_rates(p)
    roots = secular_roots(p.h, p.u)
    kstar = roots[-1] / roots[0]
    kappa = float(p.h.max() / p.h.min())
    assert r["kappa"] == pytest.approx(kappa, rel=1e-14)
    assert r["kappa_star"] == pytest.approx(kstar, rel=1e-9) and kstar < 0.2 * kappa
    assert r["gd"] == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-14)
    assert r["bngd"] == pytest.approx((kstar - 1) / (kstar + 1), rel=1e-9)


def test_exercise_5_bngd_in_two_dimensions():
    """d = 2, κ = 2000 (exercise 5): κ* = 1; over ε = 1e-4 … 1e3 (29 values, 3000 steps), 24
    of the 28 BNGD runs from ε = 1.8e-4 up reach 1e-12·c, the fastest (at ε ≈ 0.03) in under ten steps,
    while GD at ε_opt is still above 1e-4·c after 3000 steps. The few runs that do not
    converge are not at a saddle: an early step has blown ‖w‖ up, their effective step has
    collapsed below 1e-4 (against 1/λ* ≈ 0.035), and their loss creeps, between 1e-3 c and 1e-2 c."""
    p2 = experiments.paper_problem(2000.0, d=2, start="random")
    assert experiments.best_rates(p2)["kappa_star"] == pytest.approx(1.0, abs=1e-9)
    eps = np.logspace(-4, 3, 29)
    sw = experiments.eps_sweep(p2, eps, 3000)
    _, bn_steps = sw.steps_to(1e-12)
    band = eps > 1.5e-4
    assert band.sum() == 28 and np.sum(bn_steps[band] >= 0) == 24
    fastest = int(np.argmin(np.where(bn_steps >= 0, bn_steps, 10**9)))
    assert eps[fastest] == pytest.approx(0.03, rel=0.1) and bn_steps[fastest] < 10
    gd_opt = dynamics.gd(p2.h, p2.u, p2.w0, p2.gd.eps_opt, 3000).loss[-1].item() / p2.c
    assert gd_opt > 1e-4
    stalled = band & (bn_steps < 0)
    assert stalled.any() and np.all(sw.eff_step[-1, stalled] < 1e-4)
    assert np.all((sw.loss_bn[-1, stalled] > 1e-3) & (sw.loss_bn[-1, stalled] < 1e-2))


def test_bngd_beats_the_best_gd_on_the_appendix_b_problem():
    """d = 5, κ = 2000 (κ* ≈ 300): after 3000 steps BNGD at ε from 1e-2 to 1 ends below GD
    at its best step on a fine grid up to 2/λ_max, and below GD at ε_opt."""
    p = experiments.paper_problem(2000.0, d=5, start="random")
    gd = dynamics.gd(p.h, p.u, p.w0, torch.logspace(-5, -3, 81), 3000).loss[-1]
    best_gd = torch.nan_to_num(gd, nan=float("inf")).min()
    bn = dynamics.bngd(p.h, p.u, 1.0, p.w0, [1e-2, 0.1, 1.0], 1.0, 3000).loss[-1]
    assert torch.all(bn < best_gd)
    assert best_gd < dynamics.gd(p.h, p.u, p.w0, p.gd.eps_opt, 3000).loss[-1]   # finite-time best
    assert experiments.best_rates(p)["kappa_star"] < 0.2 * p.kappa


def test_slider_run_batched_and_single_agree():
    """ε's column is the same whether ε runs alone or inside a batch, up to round-off.

    The paths sum the d-term inner products in another order (a batched matmul against a
    single row), so they differ by round-off, never bit for bit: each of the K steps adds
    relative differences of O(d·eps), which the later steps magnify by at most the run's
    own amplification A of a perturbation (measured, about 200 for ε̂ and 30 for loss/c
    here). So the states (ε̂_k) agree to rtol K·A·d·eps. The loss J = ½(c − 2a q + a²) is
    formed by cancellation, with an absolute round-off of a few eps·c besides, so losses (in
    units of c) agree to an absolute (4 + K·A·d)·eps, not relatively: the final loss is
    1e-8 c, where cancellation alone makes relative differences of 1e-8.
    """
    grid = (0.01, 1.0, 100.0)
    batched = experiments.slider_run(1.0, 1.5, 0.1, 30.0, batch_eps=grid)
    single = experiments.slider_run(1.0, 1.5, 0.1, 30.0)
    off_grid = experiments.slider_run(2.0, 1.5, 0.1, 30.0, batch_eps=grid)
    assert batched["bngd"].shape == (experiments.SLIDER_STEPS + 1,) and off_grid["eff_step"].shape == (experiments.SLIDER_STEPS,)
    p, K, d = experiments.paper_problem(30.0, d=experiments.SLIDER_D), experiments.SLIDER_STEPS, experiments.SLIDER_D
    amp_states, amp_loss = amplification(p, 0.1, 1.0, 1.5, K)
    states, losses = K * amp_states * d * EPS64, (4 + K * amp_loss * d) * EPS64
    assert losses < 1e-2 * single["bngd"][-1]       # still a sharp test of the final loss
    np.testing.assert_allclose(batched["eff_step"], single["eff_step"], rtol=states, atol=0)
    np.testing.assert_allclose(batched["bngd"], single["bngd"], rtol=0, atol=losses)
    for key in ("gd", "gd_opt"):   # linear GD: relative round-off K·d·eps (GD at ε = 1 diverges)
        np.testing.assert_allclose(batched[key], single[key], rtol=K * d * EPS64, atol=0)
    ref = dynamics.bngd(p.h, p.u, 0.1, p.w0, 1.0, 1.5, K)
    np.testing.assert_allclose(single["bngd"], ref.loss.numpy() / p.c, rtol=0, atol=losses)



# --- the chapter's reading of its figures ------------------------------------------------------

@pytest.fixture(scope="module")
def figure1_columns():
    """The chapter's figure-1 grids (κ = 1e3 and 1e4, d = 100, w₀ ∝ Hu, 2000 steps) in one
    column per decade of ε_a (every fourth): the same cells as the chapter's, a quarter of
    them (2365 per κ)."""
    cfg = experiments.Figure1Config()
    cfg = dataclasses.replace(cfg, eps_a=cfg.eps_a[::4])
    return {k: experiments.figure1(experiments.paper_problem(k), cfg) for k in (1e3, 1e4)}


def test_figure1_reads_as_the_chapter_says(figure1_columns):
    """The bullets under the chapter's figure 1, on a column per decade of ε_a:
    * no cell is non-finite;
    * every column with ε_a ≤ 0.2 of every panel has at least three cells whose ε̂ ended near
      ε_opt (a decade of ε or more), and the band widens as a₀ shrinks: more such cells
      per panel, spanning from 2–3 decades of ε (a₀ = 10) to more than 18 (a₀ = 1e-8);
    * in the leftmost column (ε_a = 2e-10, a hardly moves for a₀ ≥ 1e-4) the band's lower
      edge sits at the same ε·a₀ for a₀ = 10 … 1e-4, within one row (half a decade);
    * cells below GD at ε_opt all have ε_a > 5e-4, and there are more of them for κ = 1e4.
    Cells near a class boundary may change class with round-off, hence counts with slack
    rather than exact equalities."""
    below = {}
    for kappa, res in figure1_columns.items():
        cfg = res.config
        eps, eps_a, a0 = np.array(cfg.eps), np.array(cfg.eps_a), np.array(cfg.a0)
        assert not np.any(res.classes == 4), kappa
        near = np.isin(res.classes, [0, 1])                          # (a0, eps, eps_a)
        assert near[:, :, eps_a <= 0.25].sum(1).min() >= 3, kappa
        counts = near.sum((1, 2))
        assert np.all(np.diff(counts) > 0), (kappa, counts)          # a0 decreasing
        spans = [np.ptp(np.log10(eps[near[i].any(1)])) for i in range(len(a0))]
        assert 1.5 <= spans[0] <= 3 and spans[-1] > 18, (kappa, spans)
        edge = np.log10([eps[near[i, :, 0]].min() * a0[i] for i in range(4)])
        assert np.ptp(edge) <= 0.5, (kappa, edge)
        is_below = np.isin(res.classes, [0, 2])
        assert eps_a[is_below.any((0, 1))].min() > 5e-4, kappa
        below[kappa] = is_below.mean()
    assert below[1e4] > 1.5 * below[1e3] > 0


def test_eps_sweep_reads_as_the_chapter_says():
    """The chapter's ε sweep (d = 100, κ = 100, a₀ = 1, ε_a = 1, 15 000 steps, ε = 1e-4 … 1e10):
    * from the random start, the ε that reach 1e-10·c form one band more than four decades
      wide, most of it (in decades) above GD's limit 2/λ_max, and no loss is ever non-finite;
    * from the paper's start w₀ ∝ Hu the band reaches 1.5 to 2 decades further;
    * at ε = 1e6 the random start drops to between 0.05 and 0.2 c within 100 steps and then
      moves by less than 1e-2 c; the paper's start jumps above 0.85 c at the first step and
      ends at c/2 (the saddle a = 0) to 1e-6;
    * at ε = 1e3 the paper's start converges, the random start ends above 1e-3 c."""
    eps = np.logspace(-4, 10, 57)
    rand = experiments.paper_problem(100.0, d=100, start="random")
    hu = experiments.paper_problem(100.0, d=100, start="Hu")
    starts = torch.stack([rand.w0, hu.w0])[:, None, :]               # (2, 1, d)
    run = dynamics.bngd(rand.h, rand.u, 1.0, starts, torch.from_numpy(eps), 1.0, 15000)
    loss = run.loss.numpy() / rand.c                                  # (T+1, 2, 57)
    assert np.isfinite(loss).all()
    reach = theory.steps_to_tolerance(loss, 1e-10).numpy() >= 0      # (2, 57)
    for r in reach:
        assert np.all(np.diff(np.flatnonzero(r)) == 1)               # one band
    lo, hi = np.log10(eps[reach[0]].min()), np.log10(eps[reach[0]].max())
    limit = np.log10(rand.gd.eps_max)
    assert hi - lo > 4 and hi - limit > limit - lo
    further = np.log10(eps[reach[1]].max()) - hi
    assert 1.5 <= further <= 2
    j6, j3 = int(np.argmin(abs(eps - 1e6))), int(np.argmin(abs(eps - 1e3)))
    assert 0.05 < loss[100, 0, j6] < 0.2 and abs(loss[-1, 0, j6] - loss[100, 0, j6]) < 1e-2
    assert loss[1, 1, j6] > 0.85 and abs(loss[-1, 1, j6] - 0.5) < 1e-6
    assert reach[1, j3] and not reach[0, j3] and loss[-1, 0, j3] > 1e-3


# --- figures ----------------------------------------------------------------------------

def test_every_figure_draws(tmp_path):
    """Smoke test: each plotting function runs on small results, labels its axes, and the
    two interactive draw functions accept compute results (including a diverged GD run)."""
    from matplotlib.figure import Figure
    p = experiments.paper_problem(100.0, d=6, start="random")
    run = dynamics.bngd(p.h, p.u, 1.0, p.w0, [0.1, 10.0], 1.0, 30, trajectory=True)
    sw = experiments.eps_sweep(p, np.logspace(-3, 3, 7), 30)
    cfg = experiments.Figure1Config(a0=(1.0, 0.01), eps=(0.1, 10.0), eps_a=(0.5, 1.0), steps=20)
    figs = [figures.dynamics(run, [0.1, 10.0], p.gd, c=p.c),
            figures.scaling(np.arange(31), run.loss, [run.loss], [2.0], [0.1, 10.0]),
            figures.eps_sweeps(sw, sw, tol=1e-3),
            figures.acceleration(sw, np.arange(31), {"a": sw.loss_gd[:, 0], "b": sw.loss_bn[:, 1]}, {"r": 0.9}),
            figures.figure1([experiments.figure1(p, cfg)]),
            figures.eta_sweeps({"net": {"x": np.array([[0.5, 0.6], [np.inf, 0.4]])}}, {"net": [0.1, 1.0]}),
            figures.scaled_networks([0.1, 1.0], np.ones((2, 2, 3)), [1.0, 10.0])]
    for fig in figs:
        assert any(ax.get_xlabel() for ax in fig.axes) and any(ax.get_ylabel() for ax in fig.axes)
        assert all(ax.get_xlabel() or ax.get_ylabel() or ax.get_title() for ax in fig.axes)
        fig.savefig(tmp_path / "f.png")
        plt.close(fig)
    for draw, result in ((figures.draw_gd_rates, experiments.gd_rates(10.0, steps=50, n_eps=9)),
                         (lambda f: figures.draw_bngd_slider(f, experiments.SLIDER_STEPS),
                          experiments.slider_run(1e4, 1.0, 1.0, 100.0))):
        fig = Figure()
        update = draw(fig)
        update(result)
        fig.savefig(tmp_path / "g.png")
    assert not np.isfinite(result["gd"][-1])   # GD at ε = 1e4 diverged, and it still drew


# --- appendix B: modified BNGD over random draws -------------------------------------------

def test_modified_bngd_over_draws_reads_as_the_chapter_says():
    """The chapter's d = 5, κ = 2000 call (100 draws, 5000 steps): the G-mean effective step
    follows ε for small ε, peaks within 20 % of ε_opt and then falls like 1/ε; GD diverges
    past 2/λ_max; modified BNGD ends far below the best GD on a range over two decades
    wide. A few draws are rerun alone and agree; gmean is exp(mean ln)."""
    from lib.bngd import draws
    p5 = experiments.paper_problem(kappa=2000.0, d=5, start="random")
    eps = np.logspace(-4, 2, 13)
    res = draws.modified_draws(p5.h, eps, draws=100, steps=5000)
    eff, loss = draws.gmean(res.eff_bn), draws.gmean(res.loss_bn)
    assert 0.5 < eff[0] / eps[0] < 1
    assert 0.8 < eff.max() / res.eps_opt < 1.2 and 1e-3 <= eps[np.argmax(eff)] <= 1e-2
    slope = np.polyfit(np.log(eps[-5:]), np.log(eff[-5:]), 1)[0]
    assert abs(slope + 1) < 0.1
    assert np.all(np.isinf(res.loss_gd[eps > 1.001e-3])) and np.all(np.isfinite(res.loss_gd[eps < 1e-3]))
    best_gd = np.nanmin(draws.gmean(res.loss_gd))
    below = eps[loss < best_gd]
    assert below.min() <= 1e-3 and below.max() >= 0.3 and loss.min() < 1e-5 * best_gd
    assert np.all(res.loss_bn.mean(-1) >= loss)                      # A-mean ≥ G-mean
    x = np.array([1e-3, 2.0, 5.0])
    assert abs(draws.gmean(x) - 0.01 ** (1 / 3)) < 1e-12
    # the draws again, rerun alone where ε̂ stays below 2/λ_max (past it the transient
    # amplifies round-off, and a run alone sums in another order: no comparison there)
    gen = torch.Generator().manual_seed(0)
    us, ws = draws.sphere(100, 5, gen), draws.sphere(100, 5, gen)
    for i, j in ((1, 57),):
        one = dynamics.mbngd(p5.h, us[j], ws[j], eps[i], 5000)
        e = theory.residual(p5.h, us[j], one.w)
        np.testing.assert_allclose(float(e @ (p5.h * e)), res.loss_bn[i, j], rtol=1e-8)
        np.testing.assert_allclose(float(e.norm()), res.err_bn[i, j], rtol=1e-8)
        np.testing.assert_allclose(float(one.eff_step[-1]), res.eff_bn[i, j], rtol=1e-8)


def test_modified_bngd_sweeps_read_as_the_chapter_says():
    """The chapter's sweeps (30 draws, 500 steps, H = diag(linspace(1, κ, d))): the range of
    ε/ε_opt with G-mean ε̂_T > ε_opt/2 widens with d (printed: up to 3.16, 10, 31.6), and
    for d = 100 the curves for κ = 20, 200, 2000 agree within 25 % wherever ε̂_T > 0.01 ε_opt."""
    from lib.bngd import draws
    ratio = np.logspace(-1, 5, 13)

    def sweep(d, kappa):
        h = torch.linspace(1.0, kappa, d, dtype=torch.float64)
        res = draws.modified_draws(h, ratio * 2 / (1 + kappa), draws=30, steps=500)
        return draws.gmean(res.eff_bn) / res.eps_opt

    by_d = [sweep(d, 2000.0) for d in (5, 20, 100)]
    tops = [ratio[r > 0.5].max() for r in by_d]
    assert tops == pytest.approx([10**0.5, 10.0, 10**1.5])
    by_k = [sweep(100, k) for k in (20.0, 200.0)] + [by_d[2]]
    curves = np.array(by_k)
    keep = curves.min(0) > 0.01
    assert keep.sum() >= 8 and np.all(curves[:, keep].max(0) / curves[:, keep].min(0) < 1.25)


def test_the_figures_of_issue_15_draw(tmp_path):
    """Smoke test: the local-rate, random-start and appendix-B figures draw small results
    with labelled axes (a diverged GD draw included)."""
    from lib.bngd import draws
    p = experiments.paper_problem(100.0, d=4, start="random")
    run = dynamics.bngd(p.h, p.u, 1.0, p.w0, 0.3, 1.0, 20, trajectory=True)
    starts = draws.random_starts(p, [0.1, 10.0], n=5, steps=10)
    mod = draws.modified_draws(p.h, [1e-3, 1.0], draws=3, steps=200)
    assert np.isinf(mod.loss_gd[1]).all()           # GD at ε = 1 > 2/λ_max overflowed
    figs = [figures.local_rates(theory.local_rates(p.h, p.u, run, 0.3)),
            figures.random_starts(starts, draws.saddle_escape(p, [0.0, 1e-6], steps=10), [0.0, 1e-6]),
            figures.modified_draws(mod), figures.draws_sweeps({4: mod}, {100.0: mod})]
    for fig in figs:
        assert all(ax.get_xlabel() for ax in fig.axes) and any(ax.get_ylabel() for ax in fig.axes)
        fig.savefig(tmp_path / "f.png")
        plt.close(fig)


def test_figure_6_reads_as_the_chapter_says():
    """The chapter's figure 6 is the sweep's d = 100, κ = 2000 (linspace) run (30 draws, 500
    steps). Its draws are independent uniform points of the sphere, u apart from w₀; GD's
    curve is GD at each grid ε on those draws (the closed form (1 − ελ)^T (w₀ − u));
    G-mean ε̂_T follows ε, peaks at 0.8-1 ε_opt at ε = √10 ε_opt and falls like 1/ε; κ* of
    every draw is within 6 % of κ (for d = 5 it ranges from below 0.1 κ); modified BNGD's
    best G-mean loss is 2-5× below GD's best on the grid but within 1.3× of GD's best on a
    fine grid just below ε_opt, and stays within 2.5× of its best from ε_opt to 100 ε_opt."""
    from lib.bngd import draws
    ratio = np.logspace(-1, 5, 13)
    h = torch.linspace(1.0, 2000.0, 100, dtype=torch.float64)
    res = draws.modified_draws(h, ratio * 2 / 2001, draws=30, steps=500)
    d, n = 100, 30
    # the draws: the seeded recipe, unit vectors, and no two alike (pairwise inner products
    # of independent uniform unit vectors have standard deviation 1/√d; 5/√d is never reached)
    gen = torch.Generator().manual_seed(0)
    assert np.array_equal(res.u, draws.sphere(n, d, gen).numpy())
    assert np.array_equal(res.w0, draws.sphere(n, d, gen).numpy())
    np.testing.assert_allclose(np.linalg.norm(res.u, axis=1), 1, rtol=1e-14)
    uw = np.concatenate([res.u, res.w0])
    gram = uw @ uw.T - np.eye(2 * n)
    assert np.abs(gram).max() < 5 / np.sqrt(d)
    # GD's curve: the closed form on each draw at each ε (500 products: relative error of
    # each factor's power ≤ 500·ε_mach, the loss a sum of positive terms)
    with np.errstate(over="ignore", invalid="ignore"):     # the unstable ε overflow
        err = (1 - res.eps[:, None, None] * res.h) ** 500 * (res.w0 - res.u)
        closed = np.einsum("mni,i,mni->mn", err, res.h, err)
    stable = res.eps < 2 / 2000
    assert stable.sum() == 3 and np.all(np.isinf(res.loss_gd[~stable]))
    np.testing.assert_allclose(res.loss_gd[stable], closed[stable], rtol=1e-11)
    np.testing.assert_allclose(draws.gd_losses(res, res.eps[stable]), res.loss_gd[stable], rtol=0)
    # the effective step
    eff = draws.gmean(res.eff_bn) / res.eps_opt
    assert 0.8 < eff.max() < 1.0 and np.argmax(eff) == 3                  # ε = 10^0.5 ε_opt
    assert 0.5 < eff[0] / ratio[0] < 1
    slope = np.polyfit(np.log(ratio[-5:]), np.log(eff[-5:]), 1)[0]
    assert abs(slope + 1) < 0.15
    # κ*: d = 100 against d = 5 (the figure-5 call's draws: u comes first from the same seed)
    assert np.all((res.kappa_star > 0.94 * 2000) & (res.kappa_star <= 2000))
    p5 = experiments.paper_problem(kappa=2000.0, d=5, start="random")
    k5 = draws.modified_draws(p5.h, [1e-3], draws=100, steps=1).kappa_star
    assert k5.min() < 200 and k5.max() < 2000
    # losses against GD
    loss = draws.gmean(res.loss_bn)
    grid_gd = np.nanmin(draws.gmean(res.loss_gd))
    fine = np.linspace(0.5, 0.99, 50) * res.eps_opt
    fine_gd = draws.gmean(draws.gd_losses(res, fine)).min()
    assert 2 < grid_gd / loss.min() < 5 and 1 < fine_gd / loss.min() < 1.3
    near = ratio[loss < 2.5 * loss.min()]
    assert near.min() == 1 and near.max() == pytest.approx(100)
