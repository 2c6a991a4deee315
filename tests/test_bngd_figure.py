"""lib.bngd.experiments (the paper's problems, figure 1, sweeps over ε) and lib.bngd.figures."""

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


def test_figure1_grid_equals_separate_runs():
    """The batched grid against one dynamics.bngd call per configuration (small grid, d = 8)."""
    p = experiments.paper_problem(300.0, d=8, seed=2)
    cfg = experiments.Figure1Config(a0=(1.0, 1e-3), eps=(1e-2, 1.0, 1e6), eps_a=(0.1, 1.0, 1.9), steps=150)
    res = experiments.figure1(p, cfg)
    assert res.loss.shape == res.eff_step.shape == res.classes.shape == (2, 3, 3)
    for i, a0 in enumerate(cfg.a0):
        for j, e in enumerate(cfg.eps):
            for k, ea in enumerate(cfg.eps_a):
                one = dynamics.bngd(p.h, p.u, a0, p.w0, e, ea, cfg.steps)
                assert res.loss[i, j, k] == pytest.approx(one.loss[-1].item(), rel=1e-9, abs=1e-14)
                assert res.eff_step[i, j, k] == pytest.approx(one.eff_step[-1].item(), rel=1e-9)
    gd = dynamics.gd(p.h, p.u, p.w0, 2 / (1 + 300.0), cfg.steps).loss[-1].item()
    assert res.loss_gd == pytest.approx(gd, rel=1e-12) and res.seconds > 0
    expected = experiments.classify(res.loss, res.eff_step, gd, 2 / 301, cfg.floor * p.c)
    assert np.array_equal(res.classes, expected)
    assert sum(res.fractions().values()) == pytest.approx(1.0)


# --- sweeps and slider computations ---------------------------------------------------------

def test_eps_sweep_runs_gd_and_bngd_on_every_eps():
    p = experiments.paper_problem(50.0, d=6, seed=0, start="random")
    eps = np.array([1e-3, 0.1, 10.0])
    sw = experiments.eps_sweep(p, eps, 40, a0=0.5, eps_a=0.8)
    for j, e in enumerate(eps):
        bn = dynamics.bngd(p.h, p.u, 0.5, p.w0, e, 0.8, 40)
        np.testing.assert_allclose(sw.loss_bn[:, j], bn.loss.numpy() / p.c, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(sw.loss_gd[:, j], dynamics.gd(p.h, p.u, p.w0, e, 40).loss.numpy() / p.c,
                                   rtol=1e-12)
    gd_steps, bn_steps = sw.steps_to(0.05)
    assert gd_steps.tolist() == theory.steps_to_tolerance(torch.from_numpy(sw.loss_gd), 0.05).tolist()
    assert bn_steps.shape == (3,)


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


def test_best_rates_use_kappa_and_kappa_star():
    p = experiments.paper_problem(2000.0, d=5, start="random")
    r = experiments.best_rates(p)
    kstar = theory.pseudo_condition(p.h, p.u)
    assert r["kappa"] == pytest.approx(2000.0) and r["kappa_star"] == kstar < 2000.0
    assert r["gd"] == pytest.approx(1999 / 2001) and r["bngd"] == pytest.approx((kstar - 1) / (kstar + 1))
    # d = 2 (exercise 5): κ* = 1, and BNGD at a suitable ε converges in a few steps
    p2 = experiments.paper_problem(2000.0, d=2, start="random")
    assert experiments.best_rates(p2)["kappa_star"] == pytest.approx(1.0, abs=1e-9)
    sw = experiments.eps_sweep(p2, np.array([0.03, p2.gd.eps_opt]), 3000)
    gd_steps, bn_steps = sw.steps_to(1e-12)
    assert 0 <= bn_steps[0] <= 20 and gd_steps[1] == -1 and sw.loss_gd[-1, 1] > 1e-5


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
