import numpy as np
import pytest
import torch

from lib import ols, synthetic


def numpy_gd(H, u, w0, eps, steps):
    w, out = w0.copy(), []
    for _ in range(steps + 1):
        e = w - u
        out.append(0.5 * e @ H @ e)
        w = w - eps * H @ (w - u)
    return np.array(out)


def test_gd_matches_independent_numpy_loop_for_a_batch_of_steps():
    prob = synthetic.least_squares(synthetic.log_spectrum(6, 50.0), seed=2)
    H, u = prob.H, prob.u
    eps = torch.tensor([0.001, 0.01, 0.03])
    res = ols.gd(H, u, torch.zeros(6), eps, steps=25)
    assert res.loss.shape == (26, 3) and res.w.shape == (3, 6)
    for j, e in enumerate(eps.tolist()):
        np.testing.assert_allclose(res.loss[:, j], numpy_gd(H.numpy(), u.numpy(), np.zeros(6), e, 25),
                                   rtol=1e-12)


def test_diagonal_and_matrix_forms_agree():
    lam = torch.tensor([1.0, 3.0, 9.0])
    a = ols.gd(lam, torch.ones(3), torch.zeros(3), 0.1, 10).loss
    b = ols.gd(torch.diag(lam), torch.ones(3), torch.zeros(3), 0.1, 10).loss
    torch.testing.assert_close(a, b, rtol=1e-14, atol=0)


def test_stability_boundary_is_two_over_lambda_max():
    lam = torch.tensor([1.0, 20.0])  # 2/λ_max = 0.1
    res = ols.gd(lam, torch.ones(2), torch.zeros(2), torch.tensor([0.099, 0.101]), 2000)
    assert res.loss[-1, 0] < 1e-10 * res.loss[0, 0]
    assert not torch.isfinite(res.loss[-1, 1]) or res.loss[-1, 1] > 1e10 * res.loss[0, 1]


@pytest.mark.parametrize("kw, match", [
    (dict(eps=-0.1), "eps"), (dict(H=torch.tensor([1.0, -1.0])), "diag"),
    (dict(H=torch.ones(2, 3)), "square"), (dict(u=torch.ones(3)), "u must"),
    (dict(steps=-1), "steps"), (dict(H=torch.tensor([[1.0, 2.0], [0.0, 1.0]])), "symmetric"),
])
def test_bad_arguments(kw, match):
    args = dict(H=torch.tensor([1.0, 2.0]), u=torch.ones(2), w0=torch.zeros(2), eps=0.1, steps=3)
    with pytest.raises(ValueError, match=match):
        ols.gd(**{**args, **kw})
