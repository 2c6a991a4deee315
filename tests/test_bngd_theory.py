"""lib.bngd.theory: residual, effective step, H* and κ*, steps to a tolerance."""

import dataclasses

import pytest
import torch

from lib.bngd import dynamics, theory
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


@pytest.mark.parametrize("call, match", [
    (lambda: theory.steps_to_tolerance(torch.ones(3), 0.0), "tol"),
    (lambda: theory.steps_to_tolerance(torch.ones(0), 1.0), "^loss must not be empty"),
    (lambda: theory.pseudo_hessian(torch.tensor([1.0, 2.0]), torch.zeros(2)), "nonzero"),
])
def test_other_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
