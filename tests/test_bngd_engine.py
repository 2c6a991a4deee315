"""The compiled BNGD engine (lib.bngd.dynamics, engine="compiled") against independent
computations: the torch engine, a plain-Python loop of iterations (9)-(10), each
configuration run alone, and figure 1's classes (equal outside the round-off cells).
The compiled GD loop against the torch engine and GD's closed form on a diagonal H."""

import math

import numpy as np
import pytest
import torch

from lib.bngd import dynamics, experiments

F64 = dict(dtype=torch.float64)
U64 = torch.finfo(torch.float64).eps   # 2.2e-16


def problem(d=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.rand(d, generator=g, **F64) + 0.1
    return h, torch.randn(d, generator=g, **F64), torch.randn(d, generator=g, **F64)


def python_bngd(h, u, a, w, eps, eps_a, steps, modified=False):
    """Iterations (9)-(10) with Python floats, one configuration: (losses, ε̂'s, a, w)."""
    h, u, w = (list(map(float, x)) for x in (h, u, w))
    g = [hi * ui for hi, ui in zip(h, u)]
    c = sum(ui * gi for ui, gi in zip(u, g))
    losses, effs = [], []
    for k in range(steps + 1):
        p = sum(gi * wi for gi, wi in zip(g, w))
        sigma = math.sqrt(sum(hi * wi * wi for hi, wi in zip(h, w)))
        q = p / sigma
        a = q if modified else a
        losses.append(0.5 * (c - 2 * a * q + a * a))
        if k == steps:
            break
        alpha = eps * a / sigma
        effs.append(alpha * q / sigma)
        w = [wi - effs[-1] * hi * wi + alpha * gi for wi, hi, gi in zip(w, h, g)]
        a = a if modified else a + eps_a * (q - a)
    return np.array(losses), np.array(effs), a, np.array(w)


# Contracting settings (ε a/σ well below GD's limit): the map is non-expansive near its
# path, so the two engines' round-off (about d·u per step, sums in another order) adds
# up to at most steps·d·u ≈ 50·7·2.2e-16 ≈ 8e-14 relative; 1e-11 leaves a factor 100 for
# transient growth. Losses are compared relative to c (they reach 0, where relative
# error means nothing).
TOL = 1e-11


@pytest.mark.parametrize("kw", [{}, {"history": False}, {"trajectory": True}])
def test_compiled_matches_torch_engine(kw):
    h, u, w0 = problem()
    c = float(u @ (h * u))
    a0 = torch.tensor([1.0, 0.3, 2.0], **F64)[:, None]
    eps = torch.tensor([0.01, 0.1, 0.5, 1.0, 3.0], **F64)
    runs = [dynamics.bngd(h, u, a0, w0, eps, 0.7, 50, engine=e, **kw)
            for e in ("compiled", "torch")]
    one, two = runs
    assert one.loss.shape == two.loss.shape and one.eff_step.shape == two.eff_step.shape
    assert torch.allclose(one.loss / c, two.loss / c, rtol=0, atol=TOL)
    for f in ("eff_step", "a", "w", "a_path", "w_path"):
        x, y = getattr(one, f), getattr(two, f)
        assert (x is None) == (y is None), f
        if x is not None:
            assert x.shape == y.shape, f
            assert torch.allclose(x, y, rtol=TOL, atol=TOL * float(y.abs().max())), f


@pytest.mark.parametrize("modified", [False, True])
def test_compiled_matches_python_loop_one_problem_per_configuration(modified):
    h, _, w0 = problem(d=5, seed=1)
    U = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), **F64)
    eps = torch.tensor([0.05, 0.4], **F64)[:, None]                  # (2, 1) x (3,) u's
    if modified:
        run = dynamics.mbngd(h, U, w0, eps, 30, engine="compiled")
    else:
        run = dynamics.bngd(h, U, 0.5, w0, eps, 0.6, 30, engine="compiled")
    for i in range(2):
        for j in range(3):
            c = float(U[j] @ (h * U[j]))
            loss, eff, a, w = python_bngd(h, U[j], 0.5, w0, float(eps[i, 0]), 0.6, 30, modified)
            assert np.allclose(run.loss[:, i, j].numpy() / c, loss / c, rtol=0, atol=TOL)
            assert np.allclose(run.eff_step[:, i, j].numpy(), eff, rtol=TOL, atol=0)
            assert math.isclose(float(run.a[i, j]), a, rel_tol=TOL)
            assert np.allclose(run.w[i, j].numpy(), w, rtol=TOL, atol=TOL * np.abs(w).max())


def test_blocks_and_lanes_do_not_mix_configurations():
    """More configurations than one thread task (LANE_BLOCK), not a multiple of LANES:
    every configuration gives what it gives alone (its lanes' arithmetic is its own, so
    this is equality up to a few roundings at most)."""
    h, u, w0 = problem(d=3, seed=3)
    n = dynamics.LANE_BLOCK + dynamics.LANES + 5
    eps = torch.logspace(-3, 1, n, **F64)
    a0 = torch.linspace(-2, 2, n, **F64)
    run = dynamics.bngd(h, u, a0, w0, eps, 0.9, 20, engine="compiled")
    for i in (0, dynamics.LANES - 1, dynamics.LANES, dynamics.LANE_BLOCK - 1,
              dynamics.LANE_BLOCK, n - 1):
        alone = dynamics.bngd(h, u, a0[i], w0, eps[i], 0.9, 20, engine="compiled")
        assert torch.allclose(run.w[i], alone.w, rtol=8 * U64, atol=0), i
        assert torch.allclose(run.eff_step[:, i], alone.eff_step, rtol=8 * U64, atol=0), i


def test_divergence_stays_in_its_configuration():
    h, u, w0 = problem(d=4, seed=4)
    # the second configuration's step ε a/σ overflows (1e300·1e300): w becomes inf, then NaN
    a0, eps = torch.tensor([1.0, 1e300], **F64), torch.tensor([0.1, 1e300], **F64)
    run = dynamics.bngd(h, u, a0, w0, eps, 1.0, 10, engine="compiled")
    ref = dynamics.bngd(h, u, 1.0, w0, 0.1, 1.0, 10, engine="compiled")
    assert not torch.isfinite(run.loss[:, 1]).all()
    assert torch.allclose(run.loss[:, 0], ref.loss, rtol=8 * U64, atol=0)


def test_engine_argument():
    h, u, w0 = problem(d=3)
    with pytest.raises(ValueError, match="engine"):
        dynamics.bngd(h, u, 1.0, w0, 0.1, 1.0, 2, engine="fast")
    with pytest.raises(ValueError, match="engine"):
        dynamics.bngd(torch.diag(h), u, 1.0, w0, 0.1, 1.0, 2, engine="compiled")
    with pytest.raises(ValueError, match="engine"):
        dynamics.bngd(h, u, 1.0, w0, 0.1, 1.0, 2, dtype=torch.float32, engine="compiled")
    # auto: compiled where it applies, torch elsewhere (a matrix H, float32): both run
    for H, dt in ((h, torch.float64), (torch.diag(h), torch.float64), (h, torch.float32)):
        assert dynamics.bngd(H, u, 1.0, w0, 0.1, 1.0, 2, dtype=dt).loss.dtype == dt


@pytest.fixture(scope="module")
def figure1_runs():
    prob = experiments.paper_problem(1e3)
    new = experiments.figure1(prob, engine="compiled")
    old = experiments.figure1(prob, engine="torch")
    return new, old, experiments.round_off_cells(new, engine="compiled")


def test_figure1_classes_differ_only_in_round_off_cells(figure1_runs):
    """The two engines colour figure 1 alike except where a one-ulp change of w₀ already
    changes the colour (the cells round-off decides)."""
    new, old, fragile = figure1_runs
    differ = new.classes != old.classes
    assert not (differ & ~fragile).any(), np.argwhere(differ & ~fragile)
    assert fragile.mean() < 0.02    # "a few chaotic cells", not a different figure


def test_round_off_cells_are_found_where_they_are():
    """round_off_cells against a direct count on a small grid (its definition)."""
    prob = experiments.paper_problem(1e3, d=20)
    cfg = experiments.Figure1Config(a0=(1.0, 1e-4), eps=tuple(np.logspace(-2, 8, 11)),
                                    eps_a=(1e-3, 0.1, 1.0), steps=300)
    res = experiments.figure1(prob, cfg)
    up = experiments.figure1(experiments.nudged(prob, math.inf), cfg).classes
    down = experiments.figure1(experiments.nudged(prob, -math.inf), cfg).classes
    expect = (up != res.classes) | (down != res.classes)
    assert np.array_equal(experiments.round_off_cells(res), expect)
    moved = experiments.nudged(prob, math.inf).w0 - prob.w0
    assert (moved > 0).all() and (moved.abs() <= U64 * prob.w0.abs()).all()


# GD on diag(h) contracts each error component by |1 − ε hᵢ| <= 1 for the ε below, so the
# engines' round-off (a few u per step and per sum of d terms, in another order) stays
# within about steps·d·u = 40·100·2.2e-16 ≈ 1e-12 relative to J₀(w₀); 1e-11 leaves a
# factor 10. Diverging ε are compared in the same way relative to each step's own loss.
@pytest.mark.parametrize("d", [1, 2, 10, 100])
@pytest.mark.parametrize("history", [True, False])
@pytest.mark.parametrize("per_config_u", [False, True])
def test_compiled_gd_matches_torch_engine(d, history, per_config_u):
    g = torch.Generator().manual_seed(d)
    h = torch.rand(d, generator=g, **F64) * 4 + 0.1
    u = torch.randn(3, 1, d, generator=g, **F64) if per_config_u else torch.randn(d, generator=g, **F64)
    w0 = torch.randn(d, 3, generator=g, **F64).T[:, None, :]   # (3, 1, d), not contiguous
    eps = torch.tensor([0.01, 0.1, 0.3, 0.4, 0.48], **F64)      # ε h_i < 0.48·4.1 < 2: contracting
    one, two = (dynamics.gd(h, u, w0, eps, 40, history=history, engine=e)
                for e in ("compiled", "torch"))
    assert one.loss.shape == two.loss.shape == ((41 if history else 1), 3, 5)
    assert one.w.shape == two.w.shape == (3, 5, d)
    j0 = dynamics.gd(h, u, w0, eps, 0, engine="torch").loss[0]
    assert torch.allclose(one.loss, two.loss, rtol=0, atol=1e-11 * float(j0.max()))
    assert torch.allclose(one.w, two.w, rtol=0, atol=1e-11 * float(two.w.abs().max()))
    # diverging: ε h_i up to 87, losses growing up to 7e3-fold per step, finite for 40 steps
    big = dynamics.gd(h, u, w0, eps * 44, 40, engine="compiled").loss
    ref = dynamics.gd(h, u, w0, eps * 44, 40, engine="torch").loss
    assert torch.isfinite(ref).all() and float(ref.max()) > 1e60
    assert torch.allclose(big, ref, rtol=1e-12 * 40, atol=0)


def test_compiled_gd_follows_the_closed_form():
    """With u = 0 and w₀ along eigenvector i, w_k = (1 − ε hᵢ)^k w₀, so
    J₀(w_k) = ½ hᵢ (1 − ε hᵢ)^(2k) w₀ᵢ². A step rounds w three times (h w, ε h w, the
    difference), so w_k is within 3k·u relative and J₀ within 6k·u; the closed form's
    (1 − ε hᵢ) rounds once and is raised to the 2k-th power: 8k·u in all."""
    h = torch.tensor([1.0, 7.0, 30.0], **F64)
    eps = torch.tensor([1e-3, 0.05, 1 / 30, 0.06, 0.066], **F64)   # 0.066·30 = 1.98 < 2
    k = torch.arange(61, **F64)[:, None]
    for i in range(3):
        w0 = torch.zeros(3, **F64)
        w0[i] = 1.5
        run = dynamics.gd(h, torch.zeros(3, **F64), w0, eps, 60, engine="compiled")
        exact = 0.5 * h[i] * (1 - eps * h[i]) ** (2 * k) * 1.5 ** 2
        assert torch.allclose(run.loss, exact, rtol=8 * 60 * U64, atol=0), i
    assert float(run.loss[-1, 2]) == 0.0     # ε = 1/h_2 = 1/30: exact in one step


def test_gd_auto_engine_is_the_compiled_one_on_the_cpu_for_a_diagonal_float64_h():
    h, u, w0 = problem(d=5)
    eps = torch.tensor([0.1, 0.7], **F64)
    auto, compiled = (dynamics.gd(h, u, w0, eps, 30, engine=e) for e in ("auto", "compiled"))
    assert torch.equal(auto.loss, compiled.loss) and torch.equal(auto.w, compiled.w)
    # a matrix H or float32 runs the torch engine, which auto then picks
    for kw in (dict(H=torch.diag(h)), dict(H=h, dtype=torch.float32)):
        assert torch.equal(dynamics.gd(u=u, w0=w0, eps=eps, steps=30, **kw).loss,
                           dynamics.gd(u=u, w0=w0, eps=eps, steps=30, engine="torch", **kw).loss)
        with pytest.raises(ValueError, match="engine='compiled'"):
            dynamics.gd(u=u, w0=w0, eps=eps, steps=30, engine="compiled", **kw)
