import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from lib import synthetic
from lib.bngd import dynamics, theory


def numpy_gd(H, u, w0, eps, steps):
    w, out = w0.copy(), []
    for _ in range(steps + 1):
        e = w - u
        out.append(0.5 * e @ H @ e)
        w = w - eps * H @ (w - u)
    return np.array(out)


def numpy_bngd(H, u, a0, w0, eps, eps_a, steps, modified=False):
    """Iterations (9)-(10) (or (81) when modified) written out by hand, one configuration."""
    g, c = H @ u, u @ H @ u
    a, w, L, E, A, W = a0, w0.copy(), [], [], [], []
    for k in range(steps + 1):
        sigma = math.sqrt(w @ H @ w)
        if modified:
            a = (w @ g) / sigma
        A.append(a)
        W.append(w.copy())
        L.append(0.5 * (c - 2 * a * (w @ g) / sigma + a * a))
        if k == steps:
            break
        E.append(eps * a * (w @ g) / sigma ** 3)
        a_next = None if modified else a + eps_a * ((w @ g) / sigma - a)
        w = w + eps * (a / sigma) * (g - (w @ g) / sigma ** 2 * H @ w)
        a = a_next
    return np.array(L), np.array(E), np.array(A), np.array(W)


def problem(d=6, kappa=50.0, seed=2):
    return synthetic.least_squares(synthetic.log_spectrum(d, kappa), seed=seed)


def unit(v):
    return v / v.norm()


# --- plain GD ---------------------------------------------------------------------

def test_gd_matches_independent_numpy_loop_for_a_batch_of_steps():
    prob = problem()
    H, u = prob.H, prob.u
    eps = torch.tensor([0.001, 0.01, 0.03])
    res = dynamics.gd(H, u, torch.zeros(6), eps, steps=25)
    assert res.loss.shape == (26, 3) and res.w.shape == (3, 6)
    for j, e in enumerate(eps.tolist()):
        np.testing.assert_allclose(res.loss[:, j], numpy_gd(H.numpy(), u.numpy(), np.zeros(6), e, 25),
                                   rtol=1e-12)


def test_diagonal_and_matrix_forms_agree():
    lam = torch.tensor([1.0, 3.0, 9.0])
    a = dynamics.gd(lam, torch.ones(3), torch.zeros(3), 0.1, 10).loss
    b = dynamics.gd(torch.diag(lam), torch.ones(3), torch.zeros(3), 0.1, 10).loss
    torch.testing.assert_close(a, b, rtol=1e-14, atol=0)


def test_stability_boundary_is_two_over_lambda_max():
    lam = torch.tensor([1.0, 20.0])  # 2/λ_max = 0.1
    res = dynamics.gd(lam, torch.ones(2), torch.zeros(2), torch.tensor([0.099, 0.101]), 2000)
    assert res.loss[-1, 0] < 1e-10 * res.loss[0, 0]
    assert not torch.isfinite(res.loss[-1, 1]) or res.loss[-1, 1] > 1e10 * res.loss[0, 1]


def test_gd_constants_match_the_spectrum_and_the_measured_rate():
    prob = problem(d=5, kappa=30.0)
    k = theory.gd_constants(prob.H)   # from the matrix: eigenvalues 1 .. 30
    assert k.lam_min == pytest.approx(1.0, rel=1e-12) and k.kappa == pytest.approx(30.0, rel=1e-12)
    assert k.eps_max == pytest.approx(2 / 30) and k.eps_opt == pytest.approx(2 / 31)
    # measured: the error contracts by (κ−1)/(κ+1) per step at ε_opt; no other ε does better
    eps = torch.tensor([0.5, 0.9, 1.0, 1.1, 1.5]) * k.eps_opt
    loss = dynamics.gd(prob.H, prob.u, torch.zeros(5), eps, 400).loss
    rate = (loss[400] / loss[200]) ** (1 / 400)
    assert rate[2].item() == pytest.approx(k.rate, rel=1e-6)
    assert torch.all(rate[[0, 1, 3, 4]] > rate[2])


# --- BNGD -------------------------------------------------------------------------

@pytest.mark.parametrize("matrix", [False, True])
def test_bngd_matches_a_loop_written_out_by_hand(matrix):
    lam = synthetic.log_spectrum(6, 100.0)
    prob = synthetic.least_squares(lam, seed=3)
    H = prob.H if matrix else lam
    u = prob.u if matrix else unit(torch.arange(1.0, 7.0, dtype=torch.float64))
    w0 = torch.tensor([0.3, -0.2, 0.5, 0.1, 0.9, -0.4], dtype=torch.float64)
    a0 = torch.tensor([0.5, -1.0])[:, None]            # batch (2, 3)
    eps = torch.tensor([0.01, 2.0, 1e5])
    steps = 12   # a few steps: with a0 < 0 and ε = 1e5 the dynamics amplify round-off later
    res = dynamics.bngd(H, u, a0, w0, eps, 0.7, steps)
    assert res.loss.shape == (13, 2, 3) and res.eff_step.shape == (12, 2, 3)
    assert res.a.shape == (2, 3) and res.w.shape == (2, 3, 6)
    Hn = H.numpy() if matrix else np.diag(lam.numpy())
    for i in range(2):
        for j in range(3):
            L, E, A, W = numpy_bngd(Hn, u.numpy(), a0[i, 0].item(), w0.numpy(), eps[j].item(), 0.7,
                                    steps)
            np.testing.assert_allclose(res.loss[:, i, j], L, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(res.eff_step[:, i, j], E, rtol=1e-10)
            np.testing.assert_allclose(res.a[i, j], A[-1], rtol=1e-10)
            np.testing.assert_allclose(res.w[i, j], W[-1], rtol=1e-10)


def test_mbngd_matches_appendix_b_by_hand():
    lam = synthetic.log_spectrum(5, 2000.0)
    u, w0 = unit(torch.ones(5, dtype=torch.float64)), unit(torch.arange(1.0, 6.0, dtype=torch.float64))
    res = dynamics.mbngd(lam, u, w0, torch.tensor([0.1, 10.0], dtype=torch.float64), 30)
    for j, e in enumerate((0.1, 10.0)):
        L, E, A, W = numpy_bngd(np.diag(lam.numpy()), u.numpy(), None, w0.numpy(), e, None, 30,
                                modified=True)
        np.testing.assert_allclose(res.loss[:, j], L, rtol=1e-10, atol=1e-12 * L.max())
        np.testing.assert_allclose(res.eff_step[:, j], E, rtol=1e-10)
        np.testing.assert_allclose(res.a[j], A[-1], rtol=1e-10)


def test_loss_is_the_h_norm_of_the_prediction_error(f64):
    """J(a, w) = ½‖u − a w/σ‖²_H: the definition, against the formula ½(c − 2a wᵀg/σ + a²)."""
    prob = problem()
    res = dynamics.bngd(prob.H, prob.u, 0.8, unit(torch.ones(6)), 0.3, 0.5, 20, trajectory=True)
    w, a = res.w_path, res.a_path
    sigma = torch.einsum("ki,ij,kj->k", w, prob.H, w).sqrt()
    e = prob.u - (a / sigma)[:, None] * w
    direct = 0.5 * torch.einsum("ki,ij,kj->k", e, prob.H, e)
    c = prob.u @ prob.H @ prob.u
    torch.testing.assert_close(res.loss, direct, rtol=0, atol=1e-13 * c.item())


def test_weight_norm_grows_by_pythagoras(f64):
    """The step is orthogonal to w, so ‖w_{k+1}‖² = ‖w_k‖² + ‖w_{k+1} − w_k‖² and ‖w_k‖ grows."""
    prob = problem()
    res = dynamics.bngd(prob.H, prob.u, 1.0, unit(torch.ones(6)), torch.tensor([0.1, 10.0, 1e6]), 1.0, 100,
                        trajectory=True)
    w = res.w_path
    step_sq = (w[1:] - w[:-1]).pow(2).sum(-1)
    torch.testing.assert_close(w[1:].pow(2).sum(-1), w[:-1].pow(2).sum(-1) + step_sq,
                               rtol=1e-12, atol=0)
    assert torch.all(res.w_norm[1:] >= res.w_norm[:-1])


@pytest.mark.parametrize("r", [2.0**-10, 0.5, 8.0, 2.0**10])
def test_scaling_law(r, f64):
    """(a0, r w0, ε_a, r² ε) follows (a0, w0, ε_a, ε) with w'_k = r w_k, a'_k = a_k.

    r is a power of two, so r w0 and r² ε are exact and every step of the scaled run is
    the base run's step times an exact power of two (sums, products, quotients and
    √(r² x) = r √x all scale exactly): the runs agree to round-off however much the
    dynamics amplify, and 1e-12 is a margin, not a fit. (With r = 7 or 1e3 the inexact
    start would be amplified, up to 1e-7 for some starts of this problem family.)
    """
    prob = problem(kappa=100.0, seed=0)
    u = unit(prob.u)
    w0 = unit(torch.tensor([1.0, -2.0, 0.5, 3.0, 1.0, 2.0]))
    w0 = w0 * torch.sign(w0 @ prob.H @ u)
    eps = torch.tensor([0.01, 1.0, 100.0])
    base = dynamics.bngd(prob.H, u, 1.0, w0, eps, 0.6, 300)
    scaled = dynamics.bngd(prob.H, u, 1.0, r * w0, r * r * eps, 0.6, 300)
    c = (u @ prob.H @ u).item()
    assert (scaled.loss - base.loss).abs().max() < 1e-12 * c
    assert (scaled.eff_step - base.eff_step).abs().max() < 1e-12 * base.eff_step.abs().max()
    assert (scaled.a - base.a).abs().max() < 1e-12
    assert (scaled.w / r - base.w).abs().max() < 1e-12 * base.w.abs().max()
    assert base.loss[-1].max() < 1e-3 * c < base.loss[0].min()   # the runs do go somewhere


def test_converges_for_moderate_eps_with_eps_a_one():
    """Theorem 3.3 at work: ε from 1e-2 to 1e2 with ε_a = 1 reach loss 1e-10 in 3000 steps."""
    lam = synthetic.log_spectrum(10, 10.0)
    u = unit(torch.linspace(1.0, 2.0, 10, dtype=torch.float64))
    w0 = unit(torch.ones(10, dtype=torch.float64))
    res = dynamics.bngd(lam, u, 1.0, w0, torch.logspace(-2, 2, 9), 1.0, 3000)
    c = (u * lam * u).sum()
    assert torch.all(res.loss[-1].abs() < 1e-10 * c)
    assert torch.all(res.loss[0] > 1e-3 * c)   # a real start, not a fixed point


def test_huge_eps_does_not_blow_up_and_the_effective_step_is_order_one_over_eps(f64):
    """ε = 1e6 and 1e8: bounded losses, non-decreasing ‖w_k‖, and ε̂_k·ε settling to the
    same constant for both (Proposition 3.5(2)): convergence is guaranteed but very slow.

    With ε_a = 1, a_{k+1} = wₖᵀg/σ_k, and |wᵀg/σ| ≤ √c (Cauchy–Schwarz in the H inner
    product), so J = ½(c − 2a wᵀg/σ + a²) ≤ 2c whatever ε is.
    """
    lam = synthetic.log_spectrum(10, 100.0)
    gen = torch.Generator().manual_seed(0)
    u, w0 = unit(torch.randn(10, generator=gen)), unit(torch.randn(10, generator=gen))
    w0 = w0 * torch.sign(w0 @ (lam * u))
    eps = torch.tensor([1e6, 1e8])
    res = dynamics.bngd(lam, u, 1.0, w0, eps, 1.0, 2000, trajectory=True)
    c = (u * lam * u).sum()
    assert torch.all(torch.isfinite(res.loss)) and torch.all(res.loss <= 2 * c)
    assert torch.all(res.w_norm[1:] >= res.w_norm[:-1] * (1 - 1e-15))   # up to one rounding
    assert torch.all(res.w_norm[-1] > 0.1 * eps * res.w_norm[0])   # one giant first step
    product = res.eff_step[1:] * eps                      # (steps-1, 2)
    assert torch.all(product > 0)
    assert product.max() / product.min() < 10                 # C1 ≤ ε̂_k·ε ≤ C2 for all k ≥ 1
    assert torch.all((product[:, 0] / product[:, 1] - 1).abs() < 0.05)  # the same for both ε
    assert res.loss[-1, 0] > 1e-2 * c                     # still far from converged


def test_divergence_is_per_configuration_and_silent():
    """ε_a > 2 makes the gain iteration unstable; neighbours in the grid are unaffected."""
    lam = synthetic.log_spectrum(4, 10.0)
    u = unit(torch.ones(4, dtype=torch.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = dynamics.bngd(lam, u, 1.0, unit(torch.arange(1.0, 5.0)), 0.1, torch.tensor([1.0, 2.5]), 3000)
    assert torch.isfinite(res.loss[-1, 0]) and res.loss[-1, 0] < 1e-10
    assert not torch.isfinite(res.loss[-1, 1]) or res.loss[-1, 1] > 1e100


def test_exercise_3_gain_step_past_two():
    """The chapter's exercise 3, its own call: on the chapter's problem (d = 100, κ = 100,
    random start, ε = 1) ε_a = 1.5 ends at round-off after 2000 steps and ε_a = 2.5 blows up."""
    from lib.bngd import experiments
    p = experiments.paper_problem(kappa=100.0, d=100, start="random")
    end = dynamics.bngd(p.h, p.u, 1.0, p.w0, 1.0, torch.tensor([1.5, 2.5]), 2000).loss[-1] / p.c
    assert abs(end[0]) < 1e-14
    assert not torch.isfinite(end[1]) or end[1] > 1e100

def test_blocks_give_the_same_result_as_one_batch(monkeypatch):
    lam = synthetic.log_spectrum(5, 30.0)
    u, w0 = unit(torch.ones(5, dtype=torch.float64)), unit(torch.arange(1.0, 6.0, dtype=torch.float64))
    eps = torch.logspace(-2, 3, 11)
    one = dynamics.bngd(lam, u, torch.tensor([1.0, 0.1])[:, None], w0, eps, 0.5, 50)
    monkeypatch.setattr(dynamics, "BLOCK", 4)            # 22 configurations in 6 blocks
    many = dynamics.bngd(lam, u, torch.tensor([1.0, 0.1])[:, None], w0, eps, 0.5, 50, trajectory=True)
    torch.testing.assert_close(many.loss, one.loss, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(many.w, one.w, rtol=1e-13, atol=0)
    torch.testing.assert_close(many.w_path[-1], many.w, rtol=0, atol=0)
    torch.testing.assert_close(many.a_path[-1], many.a, rtol=0, atol=0)


def test_parallel_blocks_give_the_same_result(monkeypatch):
    lam = synthetic.log_spectrum(5, 30.0)
    u, w0 = unit(torch.ones(5, dtype=torch.float64)), unit(torch.arange(1.0, 6.0, dtype=torch.float64))
    monkeypatch.setattr(dynamics, "BLOCK", 3)
    runs = []
    for workers in (1, 4):
        monkeypatch.setattr(dynamics, "_workers", lambda device, n, k=workers: k)
        runs.append(dynamics.bngd(lam, u, 1.0, w0, torch.logspace(-2, 3, 13), 0.5, 40, trajectory=True))
    for name in ("loss", "eff_step", "a", "w", "a_path", "w_path"):
        torch.testing.assert_close(getattr(runs[1], name), getattr(runs[0], name), rtol=0, atol=0)


def test_w_norm_needs_the_trajectory():
    res = dynamics.bngd(torch.tensor([1.0, 2.0]), torch.ones(2), 1.0, torch.ones(2), 0.1, 1.0, 3)
    with pytest.raises(ValueError, match="trajectory"):
        res.w_norm  # noqa: B018


# --- bad input (every argument's contract: tests/test_contracts_bngd.py) ------------

@pytest.mark.parametrize("kw, err, match", [
    (dict(eps=-0.1), ValueError, "^eps must"), (dict(H=torch.tensor([1.0, -1.0])), ValueError, "diag"),
    (dict(H=torch.ones(2, 3)), ValueError, "square"), (dict(u=torch.ones(3)), ValueError, "^u must"),
    (dict(steps=-1), ValueError, "^steps"), (dict(steps=2.5), TypeError, "^steps"),
    (dict(H=torch.tensor([[1.0, 2.0], [0.0, 1.0]])), ValueError, "symmetric"),
    (dict(H=torch.tensor([[1.0, 2.0], [2.0, 1.0]])), ValueError, "^H must be positive semi-definite"),
])
def test_bad_arguments(kw, err, match):
    args = dict(H=torch.tensor([1.0, 2.0]), u=torch.ones(2), w0=torch.zeros(2), eps=0.1, steps=3)
    with pytest.raises(err, match=match):
        dynamics.gd(**{**args, **kw})


@pytest.mark.parametrize("kw, err, match", [
    (dict(eps=0.0), ValueError, "^eps must hold numbers > 0"),
    (dict(eps_a=-1.0), ValueError, "^eps_a must hold numbers > 0"),
    (dict(w0=torch.zeros(2)), ValueError, "^w0 must be nonzero"),
    (dict(a0=float("nan")), ValueError, "^a0 must be finite"),
    (dict(steps=2.5), TypeError, "^steps"), (dict(steps=True), TypeError, "^steps"),
    (dict(w0=torch.ones(3)), ValueError, "^w0 must have"),
    (dict(u=torch.tensor([1.0, float("inf")])), ValueError, "^u must be finite"),
    (dict(eps=torch.ones(3), eps_a=torch.ones(2)), ValueError, "broadcast"),
])
def test_bngd_bad_arguments(kw, err, match):
    args = dict(H=torch.tensor([1.0, 2.0]), u=torch.ones(2), a0=1.0, w0=torch.ones(2), eps=0.1,
                eps_a=1.0, steps=3)
    with pytest.raises(err, match=match):
        dynamics.bngd(**{**args, **kw})


def test_mbngd_bad_arguments():
    with pytest.raises(ValueError, match="nonzero"):
        dynamics.mbngd(torch.tensor([1.0, 2.0]), torch.ones(2), torch.zeros(2), 1.0, 3)


def test_one_problem_per_configuration_matches_separate_runs():
    """u of shape (*batch, d) (appendix B's random draws): bngd, mbngd and gd on a batch of
    problems agree with one run per problem (to round-off: sums in another order)."""
    lam = synthetic.log_spectrum(5, 30.0)
    gen = torch.Generator().manual_seed(4)
    us = unit(torch.randn(3, 5, generator=gen, dtype=torch.float64))
    w0 = unit(torch.randn(3, 5, generator=gen, dtype=torch.float64))
    eps = torch.tensor([0.05, 3.0], dtype=torch.float64)[:, None]        # batch (2, 3)
    runs = (lambda u, w, e: dynamics.bngd(lam, u, 0.5, w, e, 0.7, 60),
            lambda u, w, e: dynamics.mbngd(lam, u, w, e, 60),
            lambda u, w, e: dynamics.gd(lam, u, w, e, 60))
    for run in runs:
        batched = run(us, w0, eps)
        for i, j in itertools.product(range(2), range(3)):
            one = run(us[j], w0[j], eps[i, 0])
            torch.testing.assert_close(batched.loss[:, i, j], one.loss, rtol=1e-10, atol=1e-14)
            torch.testing.assert_close(batched.w[i, j], one.w, rtol=1e-10, atol=1e-14)
    # modified BNGD sets a_k = wₖᵀg/σ_k: iteration (81) by hand, in NumPy, for one problem
    h, u, w = lam.numpy(), us[1].numpy(), w0[1].numpy().copy()
    for _ in range(60):
        g, s2 = h * u, w @ (h * w)
        w = w + 3.0 * (w @ g) / s2 * (g - (w @ g) / s2 * h * w)
    np.testing.assert_allclose(dynamics.mbngd(lam, us, w0, eps, 60).w[1, 1].numpy(), w, rtol=1e-9)
