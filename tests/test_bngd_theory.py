"""lib.bngd.theory: residual, effective step, H* and κ*, steps to a tolerance; the paper's
statements about them (Proposition 3.5, the minimisers and the Hessian there)."""

import dataclasses

import numpy as np
import pytest
import torch

from lib.bngd import dynamics, experiments, theory
from lib import synthetic


def problem(d=6, kappa=50.0, seed=2):
    return synthetic.least_squares(synthetic.log_spectrum(d, kappa), seed=seed)


def unit(v):
    return v / v.norm()


def test_residual_recursion_and_effective_step(f64):
    """u − s_k w_{k+1} = (I − ε̂_k H) e_k with s_k = wₖᵀg/σ_k², e_k = u − s_k w_k (eq. 12)."""
    prob = problem(kappa=200.0)
    H, u = prob.H, prob.u
    res = dynamics.bngd(H, u, torch.tensor([1.0, 0.01]), unit(torch.ones(6)), torch.tensor([0.05, 30.0]),
                        0.9, 50, trajectory=True)
    w = res.w_path                                  # (51, 2, 6)
    g = H @ u
    s = (w @ g) / torch.einsum("...i,ij,...j->...", w, H, w)
    e = u - s[..., None] * w
    lhs = u - s[:-1, ..., None] * w[1:]
    rhs = e[:-1] - res.eff_step[..., None] * (e[:-1] @ H)
    assert (lhs - rhs).abs().max() < 1e-10 * u.norm()
    torch.testing.assert_close(theory.residual(H, u, w), e, rtol=0, atol=1e-14)
    assert theory.residual_recursion_gap(H, u, res) < 1e-12
    wrong = dataclasses.replace(res, eff_step=res.eff_step * 1.01)   # the gap can detect errors
    assert theory.residual_recursion_gap(H, u, wrong) > 1e-6
    eff = theory.effective_step(H, u, res.a_path[:-1], w[:-1], torch.tensor([0.05, 30.0]))
    torch.testing.assert_close(eff, res.eff_step, rtol=1e-12, atol=0)


def test_pseudo_hessian_and_pseudo_condition_number(f64):
    """H* u = 0, PSD, interlacing with H (Lemma A.1), κ* ≤ κ; κ* against an independent
    computation: the nonzero eigenvalues of H* are those of P H P on the complement of
    q = H^{1/2}u/‖H^{1/2}u‖ (H* = H^{1/2}(I − qqᵀ)H^{1/2})."""
    for seed in range(3):
        prob = synthetic.least_squares(synthetic.log_spectrum(7, 500.0), seed=seed)
        H, u = prob.H, prob.u
        Hs = theory.pseudo_hessian(H, u)
        assert (Hs @ u).abs().max() < 1e-10 * H.norm()
        lam, lam_s = torch.linalg.eigvalsh(H), torch.linalg.eigvalsh(Hs)
        assert lam_s[0].abs() < 1e-10 * lam[-1]
        assert torch.all(lam_s[1:] >= lam[:-1] - 1e-10) and torch.all(lam_s <= lam + 1e-10)
        evals, evecs = torch.linalg.eigh(H)
        root = evecs @ torch.diag(evals.sqrt()) @ evecs.T
        q = unit(root @ u)
        basis = torch.linalg.qr(torch.cat([q[:, None], torch.eye(7)], 1))[0][:, 1:7]
        restricted = torch.linalg.eigvalsh(basis.T @ H @ basis)
        kstar = theory.pseudo_condition(H, u)
        assert kstar == pytest.approx((restricted[-1] / restricted[0]).item(), rel=1e-10)
        assert kstar <= theory.gd_constants(H).kappa
    diag = synthetic.log_spectrum(4, 10.0)   # diagonal H: same as its matrix
    assert theory.pseudo_condition(diag, torch.ones(4)) == pytest.approx(
        theory.pseudo_condition(torch.diag(diag), torch.ones(4)), rel=1e-12)


def test_steps_to_tolerance():
    loss = torch.tensor([[5.0, 5.0, 5.0], [1.0, 3.0, float("nan")], [0.1, 2.0, float("nan")],
                         [0.01, 0.5, float("nan")]])
    assert theory.steps_to_tolerance(loss, 0.5).tolist() == [2, 3, -1]
    loop = [next((k for k in range(4) if loss[k, j] <= 1.0), -1) for j in range(3)]
    assert theory.steps_to_tolerance(loss, 1.0).tolist() == loop


# --- Proposition 3.5: the effective step against ε -----------------------------------------

def eff_step_slopes(p, eps, eps_a, steps):
    """d log ε̂_k / d log ε between neighbouring ε: (steps, len(eps) − 1), one BNGD run per ε."""
    run = dynamics.bngd(p.h, p.u, 1.0, p.w0, torch.tensor(eps), eps_a, steps)
    return np.diff(np.log(run.eff_step.numpy()), axis=1) / np.diff(np.log(eps))


@pytest.mark.parametrize("start", ["random", "Hu"])
def test_proposition_3_5_part_1_small_eps_gives_an_effective_step_of_order_eps(start):
    """Part (1): for small ε, ε̂_k/ε lies between two constants independent of ε and k.

    ε̂_k/ε = a_k wₖᵀg/σ_k³ depends on ε only through how far w has moved, which over k steps
    is O(kε): so the log-log slope of ε̂_k against ε is 1 − O(kε). The test asserts slope 1
    to 0.02 at every k ≤ 2000 for ε = 1e-9 … 1e-7, and that the deviation is that O(ε)
    term: ten times smaller one decade lower (within a factor 2). An ε̂ of another order
    (ε² or ε⁰, say from σ² in place of σ³) fails both. The paper's start w₀ ∝ Hu is
    included: part (1) does not need the margin to be positive.
    """
    p = experiments.paper_problem(100.0, d=100, start=start)
    slopes = eff_step_slopes(p, np.logspace(-9, -7, 3), 1.0, 2000)   # (2000, 2)
    dev = np.abs(slopes - 1).max(0)
    assert dev.max() < 0.02
    assert 5 < dev[1] / dev[0] < 20
    ratio = dynamics.bngd(p.h, p.u, 1.0, p.w0, 1e-9, 1.0, 2000).eff_step / 1e-9
    assert ratio.max() / ratio.min() < 10          # C1 ≤ ε̂_k/ε ≤ C2 over the whole run


def test_proposition_3_5_part_2_needs_a_strictly_positive_margin():
    """Part (2) for large ε: ε̂_k ∝ 1/ε (k ≥ 1) when ‖g‖² > (w₀ᵀg/σ₀²) gᵀHw₀ (random start,
    margin > 0). At equality, which the paper's condition allows and its start w₀ ∝ Hu
    meets, the first step is orthogonal to g: w₁ᵀg = w₀ᵀg while σ₁ grows like ε, so
    ε̂₁ ∝ ε⁻², and with ε_a = 1 the gain a₂ = w₁ᵀg/σ₁ ∝ 1/ε too, so ε̂_k ∝ ε⁻³ for k ≥ 2.

    The next-order terms are relatively O(k/ε) (the w₀ part of w₁ is 1/ε of the step), so
    over ε = 1e6 … 1e10 and k < 50 the slopes are integers to about 1e-3; 1e-2 still
    separates −1, −2 and −3 a hundredfold.
    """
    eps = np.logspace(6, 10, 5)
    rand = experiments.paper_problem(100.0, d=100, start="random")
    hu = experiments.paper_problem(100.0, d=100, start="Hu")
    g2 = float((hu.h * hu.u) @ (hu.h * hu.u))
    assert experiments.first_step_margin(rand) > 0.1 * g2
    assert abs(experiments.first_step_margin(hu)) < 1e-12 * g2
    s_rand, s_hu = eff_step_slopes(rand, eps, 1.0, 50), eff_step_slopes(hu, eps, 1.0, 50)
    for s in (s_rand, s_hu):
        np.testing.assert_allclose(s[0], 1.0, atol=1e-2)        # ε̂₀ = ε a₀ w₀ᵀg/σ₀³
    np.testing.assert_allclose(s_rand[1:], -1.0, atol=1e-2)
    np.testing.assert_allclose(s_hu[1], -2.0, atol=1e-2)
    np.testing.assert_allclose(s_hu[2:], -3.0, atol=1e-2)


# --- the minimisers and the Hessian there ------------------------------------------------------

def test_minimisers_have_the_sign_of_u_dot_w(f64):
    """J(a, s u) = 0 for a = sign(s)√c and 2c for the opposite sign; BNGD (ε_a = 1) from starts
    of either sign ends at a = sign(uᵀw)√c with w parallel to u."""
    prob = problem(kappa=10.0)
    H, u = prob.H, prob.u
    c = float(u @ H @ u)
    for s in (2.5, -0.3):
        for a, expected in ((np.sign(s) * c ** 0.5, 0.0), (-np.sign(s) * c ** 0.5, 2 * c)):
            J = dynamics.bngd(H, u, a, s * u, 1.0, 1.0, 0).loss[0].item()
            assert J == pytest.approx(expected, abs=8 * c * np.finfo(float).eps)
    gen = torch.Generator().manual_seed(5)
    w0 = torch.randn(8, 6, generator=gen)                    # starts with uᵀw₀ of both signs
    a0 = torch.tensor([1.0, -1.0]).repeat(4)
    assert {1.0, -1.0} <= set(torch.sign(w0 @ u).tolist())
    run = dynamics.bngd(H, u, a0, w0, 0.2, 1.0, 3000)
    assert torch.all(run.loss[-1] < 1e-12 * c)
    torch.testing.assert_close(run.a, torch.sign(run.w @ u) * c ** 0.5, rtol=1e-8, atol=0)
    assert theory.residual(H, u, run.w).norm(dim=-1).max() < 1e-6 * u.norm()


def test_hessian_at_a_minimiser_is_diag_one_and_scaled_pseudo_hessian(f64):
    """At (a*, w*) = (sign(s)√c, s u) the Hessian of J is diag(1, ‖u‖² H*/‖w*‖²): here by
    automatic differentiation of J = ½‖u − a w/σ‖²_H. The paper's diag(1, H*/‖w*‖²) is the
    case ‖u‖ = 1; with ‖u‖ = 2.5 the two differ by 6.25. Round-off: a few eps times the
    largest entry, ‖H‖·‖u‖²/‖w*‖²."""
    prob = problem(d=5, kappa=30.0)
    H, u = prob.H, 2.5 * unit(prob.u)
    c = float(u @ H @ u)

    def J(x):
        a, w = x[0], x[1:]
        e = u - a * w / (w @ H @ w).sqrt()
        return 0.5 * e @ H @ e

    for s in (0.7, -1.9):
        x = torch.cat([torch.tensor([np.sign(s) * c ** 0.5]), s * u])
        hess = torch.autograd.functional.hessian(J, x)
        w_star = s * u
        expected = torch.block_diag(torch.ones(1),
                                    (u @ u) * theory.pseudo_hessian(H, u) / (w_star @ w_star))
        scale = expected.abs().max().item()
        torch.testing.assert_close(hess, expected, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("call, match", [
    (lambda: theory.steps_to_tolerance(torch.ones(3), 0.0), "tol"),
    (lambda: theory.steps_to_tolerance(torch.ones(0), 1.0), "^loss must not be empty"),
    (lambda: theory.pseudo_hessian(torch.tensor([1.0, 2.0]), torch.zeros(2)), "nonzero"),
])
def test_other_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- Proposition 3.4, Proposition 3.2 (1), Theorem 3.3 (2) --------------------------------

def np_local_rates(h, u, w_path, a_path, eps):
    """Inequalities (13)/(15) from a stored path, in NumPy, from the definitions: e_k from
    the best multiple, ε̂_k = ε a_k wₖᵀg/σ_k³, H* = H − ggᵀ/c and its nonzero eigenvalues."""
    h, u, w, a = (np.asarray(x, float) for x in (h, u, w_path, a_path))
    H, g = np.diag(h), h * u
    star = np.linalg.eigvalsh(H - np.outer(g, g) / (u @ g))[1:]
    s = (w @ g) / np.einsum("ki,i,ki->k", w, h, w)
    e = u - s[:, None] * w
    hn = lambda x: np.sqrt(np.einsum("...i,i,...i->...", x, h, x))   # noqa: E731
    sig2 = np.einsum("ki,i,ki->k", w, h, w)
    eff = eps * a[:-1] * (w[:-1] @ g) / sig2[:-1] ** 1.5
    step = e[:-1] - eff[:, None] * (e[:-1] * h)                     # (I − ε̂_k H) e_k
    rho_s = np.maximum(abs(1 - eff * star[0]), abs(1 - eff * star[-1]))
    delta = h.max() * eps * abs(a[:-1]) * hn(e[:-1]) / sig2[:-1]
    return dict(measured=hn(e[1:]) / hn(e[:-1]), middle=hn(step) / hn(e[:-1]),
                rho=np.max(abs(1 - eff[:, None] * h), 1), rho_star=rho_s, delta=delta)


def test_proposition_3_4_local_rate_step_by_step():
    """On the chapter's run (d = 5, κ = 2000, ε = 0.3): every term of (13) and (15) agrees
    with a NumPy computation from the definitions; (13) and (15) hold at every step; at the
    end (13) is vacuous (ρ ≈ 4.5 > 1) and the measured contraction equals ρ* to 1e-5."""
    p5 = experiments.paper_problem(kappa=2000.0, d=5, start="random")
    run = dynamics.bngd(p5.h, p5.u, 1.0, p5.w0, 0.3, 1.0, 2000, trajectory=True)
    rates = theory.local_rates(p5.h, p5.u, run, 0.3)
    ref = np_local_rates(p5.h, p5.u, run.w_path, run.a_path, 0.3)
    for name, want in ref.items():
        np.testing.assert_allclose(getattr(rates, name).numpy(), want, rtol=1e-9, atol=1e-13,
                                   err_msg=name)
    tiny = 1 + 1e-12
    assert np.all(ref["measured"] <= ref["middle"] * tiny)      # best multiple beats s_k
    assert np.all(ref["middle"] <= ref["rho"] * tiny)           # (13)
    small = ref["delta"] < 1
    bound = np.minimum((ref["rho_star"] + ref["delta"]) / (1 - np.where(small, ref["delta"], 0)),
                       ref["rho"])
    assert small[1:].all() and np.all(ref["measured"][small] <= bound[small] * tiny)   # (15)
    torch.testing.assert_close(rates.bound[small], torch.from_numpy(bound[small]), rtol=1e-9, atol=0)
    # ρ* alone (no δ_k) is not a bound early on: the correction of Lemma A.22 is needed
    assert np.any(ref["measured"] > ref["rho_star"] * 1.0001)
    # the end: (13) says nothing, ρ* is attained (the chapter prints 0.99624 for both)
    assert ref["rho"][-1] > 4 and ref["delta"][-1] < 1e-3
    assert abs(ref["measured"][-1] - ref["rho_star"][-1]) < 1e-5
    assert abs(ref["measured"][-1] - 0.99624) < 5e-6
    assert run.eff_step[-1] > 2.5 * p5.gd.eps_max           # past GD's stability limit


@pytest.mark.parametrize("mu, r", [(7.0, 0.1), (0.01, 30.0)])
def test_equivalent_configuration_rotates_and_rescales(mu, r):
    """Proposition 3.2 (1): (μQᵀHQ, (r/√μ)Qᵀu, r a₀, rQᵀw₀) runs as (H, u, a₀, w₀): a'_k = r a_k,
    w'_k = rQᵀw_k, J'_k = r²J_k, for several ε; the printed form √μ Qᵀu does not."""
    p = experiments.paper_problem(kappa=100.0, d=8, start="random")
    Q = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3)))[0]
    H2, u2, a2, w2 = theory.equivalent_configuration(p.h, p.u, 0.7, p.w0, Q, mu, r)
    np.testing.assert_allclose(H2.numpy(), mu * Q.numpy().T @ np.diag(p.h.numpy()) @ Q.numpy(), atol=1e-12 * mu * 100)
    eps = torch.tensor([0.01, 1.0, 100.0], dtype=torch.float64)
    one = dynamics.bngd(p.h, p.u, 0.7, p.w0, eps, 0.6, 300, trajectory=True)
    two = dynamics.bngd(H2, u2, a2, w2, eps, 0.6, 300, trajectory=True)
    c = p.c
    assert float((two.loss - r**2 * one.loss).abs().max()) < 1e-11 * r**2 * c
    assert float((two.a_path - r * one.a_path).abs().max()) < 1e-11 * r * np.sqrt(c)
    rel = (two.w_path - r * one.w_path @ Q).norm(dim=-1) / (r * one.w_path.norm(dim=-1))
    assert float(rel.max()) < 1e-11
    wrong = dynamics.bngd(H2, mu ** 0.5 * Q.T @ p.u, a2, w2, eps, 0.6, 300)
    assert float((wrong.loss - r**2 * one.loss).abs().max()) > 1e-3 * r**2 * c


def test_almost_every_start_converges_and_the_saddle_set_repels():
    """Theorem 3.3 (2) as the chapter reads it: of 1000 random starts (its own call), at
    least 99.8 % reach 1e-10·c within 1000 steps for ε ≤ 1, none ends near a saddle or at
    a loss near c/2, and the share still rises at the end for ε = 10 and 100; from the
    saddle set itself BNGD stays at c/2, from η > 0 it escapes, later for smaller η."""
    from lib.bngd import draws
    p10 = experiments.paper_problem(kappa=10.0, d=10, start="random")
    starts = draws.random_starts(p10, [0.1, 1.0, 10.0, 100.0], n=1000, steps=1000)
    share = starts.converged_by()
    assert np.all(share[-1, :2] >= 0.998)
    assert np.all(starts.near_saddle() == 0) and starts.loss.max() < 0.3
    assert np.all(share[-1, 2:] > share[-200, 2:]) and np.all(share[-1, 2:] < 1)
    # the shares are those of the first-hit steps, recomputed from a separate run
    sub = dynamics.bngd(p10.h, p10.u, 1.0, p10.w0, 100.0, 1.0, 1000).loss / p10.c
    hit = theory.steps_to_tolerance(sub, 1e-10)
    assert int(hit) == -1 or sub[int(hit)] <= 1e-10
    etas = [0.0, 1e-12, 1e-8, 1e-4]
    w = draws.saddle_start(p10)
    assert float(w @ (p10.h * p10.u)) == 0.0
    esc = draws.saddle_escape(p10, etas, eps=1.0, steps=300)
    assert np.all(np.abs(esc[:, 0] - 0.5) < 1e-12)
    left = [int(np.argmax(esc[:, j] < 0.25)) for j in range(1, 4)]
    assert all(0 < k < 100 for k in left) and left[0] > left[1] > left[2]
    assert np.all(esc[-1, 1:] < 1e-10)


def test_rotation_figure_shows_round_off_and_the_garbled_gap():
    """The chapter's Proposition 3.2 (1) figure (its own call: d = 100, κ = 100, three ε,
    500 steps, μ = 7, r = 0.1): the losses are those of the runs, the bound is 2(d+1)ε_mach T_k/c
    recomputed from the path, the correct gap is round-off (not zero everywhere: the moved run
    is another computation) and stays far below the bound at every step, while the garbled
    u' = r√μ Qᵀu is at least 1e4 times the bound at every step (mostly above 1e6)."""
    p = experiments.paper_problem(kappa=100.0, d=100, start="random")
    Q = torch.linalg.qr(torch.randn(100, 100, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(1)))[0]
    eps, T = [0.01, 1.0, 100.0], 500
    check = theory.rotation_check(p.h, p.u, 1.0, p.w0, eps, 1.0, T, Q, mu=7.0, r=0.1)
    c = p.c
    one = dynamics.bngd(p.h, p.u, 1.0, p.w0, eps, 1.0, T, trajectory=True)
    np.testing.assert_allclose(check.loss.numpy(), one.loss.numpy() / c, rtol=1e-15, atol=0)
    # the bound from the path, in NumPy: T_k = c + 2|a_k q_k| + a_k², q_k = wₖᵀg/σ_k
    w, a, h, g = one.w_path.numpy(), one.a_path.numpy(), p.h.numpy(), (p.h * p.u).numpy()
    q = (w @ g) / np.sqrt(np.einsum("kmi,i,kmi->km", w, h, w))
    terms = (c + 2 * np.abs(a * q) + a * a) / c
    unit = np.finfo(np.float64).eps
    np.testing.assert_allclose(check.bound.numpy(), 2 * 101 * unit * terms, rtol=1e-12)
    np.testing.assert_allclose(check.level.numpy(), unit * terms / 2, rtol=1e-12)
    gap, wrong, bound = check.gap, check.garbled_gap, check.bound
    assert float((gap > 0).double().mean()) > 0.5          # two computations, not one copied
    assert torch.all(gap <= bound / 30) and torch.all(gap <= 10 * check.level)
    assert float(check.w_gap.max()) < 1e-12
    assert torch.all(wrong > 1e4 * bound)
    assert torch.all((wrong / bound).median(0).values > 1e6)
    # the moved losses are J'_k/(r²c) of the configuration of equivalent_configuration
    H2, u2, a2, w2 = theory.equivalent_configuration(p.h, p.u, 1.0, p.w0, Q, 7.0, 0.1)
    moved = dynamics.bngd(H2, u2, a2, w2, eps, 1.0, 3).loss / (0.01 * c)
    np.testing.assert_allclose(check.moved[:4].numpy(), moved.numpy(), rtol=1e-15)
