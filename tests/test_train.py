import dataclasses

import numpy as np
import pytest
import torch

from lib import models
from lib.models import MLP, NormLinear
from lib.train import TrainConfig, sgd_update, train


def blobs(n=200, d=10, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).long()


def test_sgd_update_matches_torch_optim_sgd_per_model(f64):
    """Three stacked models with their own η, λ, γ against three torch.optim.SGD runs."""
    torch.manual_seed(0)
    hp = [(0.3, 5e-2, 0.9), (0.01, 0.0, 0.0), (1.5, 1e-3, 0.5)]
    p_ours, grads = torch.randn(3, 5, 4), [torch.randn(3, 5, 4) for _ in range(4)]
    refs = [torch.nn.Parameter(p_ours[k].clone()) for k in range(3)]
    opts = [torch.optim.SGD([r], lr=lr, momentum=m, weight_decay=wd) for r, (lr, wd, m) in zip(refs, hp)]
    eta, wd, mom = (torch.tensor(v) for v in zip(*hp))
    buf = torch.zeros_like(p_ours)
    for g in grads:
        p_ours, buf = sgd_update(p_ours, g, buf, eta, wd, mom)
        for k, (r, opt) in enumerate(zip(refs, opts)):
            r.grad = g[k].clone()
            opt.step()
    # Same elementwise arithmetic, other association order: each of the 4 steps rounds at
    # most 4 times (≤ 4ε·M, M the largest magnitude), and an error in p or buf is carried
    # to the next step multiplied by at most 1 + η(1 + λ) + γ ≤ 3.4.
    M = max(p_ours.abs().max(), buf.abs().max(), max(g.abs().max() for g in grads)).item()
    bound = 4 * 4 * torch.finfo(torch.float64).eps * M * 3.4 ** 4
    for k in range(3):
        torch.testing.assert_close(p_ours[k], refs[k].detach(), rtol=0, atol=bound)


def test_per_step_rates_and_weight_decays_match_torch_sgd_changed_every_step(f64):
    """η_t and λ_t given per step: the loop equals torch.optim.SGD whose param group is set
    to (η_t, λ_t) before step t (momentum on, full batch, linear regression)."""
    g = torch.Generator().manual_seed(2)
    X = torch.randn(40, 4, generator=g, dtype=torch.float64)
    y = torch.randn(40, 1, generator=g, dtype=torch.float64)
    T, gamma = 10, 0.5
    etas, decays = 0.2 * 0.8 ** np.arange(T), np.linspace(0.3, 0.0, T)  # both change every step
    model = torch.nn.Linear(4, 1, bias=False).double()
    ref = torch.nn.Parameter(model.weight.detach().clone())
    train(model, (X, y), TrainConfig(steps=T, eta=etas, weight_decay=decays, momentum=gamma,
                                     loss="mse"))
    opt = torch.optim.SGD([ref], lr=1.0, momentum=gamma)
    for t in range(T):
        opt.param_groups[0].update(lr=float(etas[t]), weight_decay=float(decays[t]))
        opt.zero_grad()
        (0.5 * ((X @ ref.T - y) ** 2).sum(1).mean()).backward()
        opt.step()
    # Other summation orders: ≤ (n + 4)ε·M per step, carried to the next step multiplied
    # by at most A = 1 + η_max(λ_max(XᵀX/n) + λ_max) + γ. A constant λ = λ_0 (the schedule
    # ignored) ends 0.1 away; the bound is ~1e-11.
    curvature = torch.linalg.eigvalsh(X.T @ X / len(X)).max().item()
    A = 1 + etas.max() * (curvature + decays.max()) + gamma
    M = max(ref.abs().max().item(), 1.0)
    bound = T * (len(X) + 4) * np.finfo(np.float64).eps * M * A ** T
    torch.testing.assert_close(model.weight.detach(), ref.detach(), rtol=0, atol=bound)


def test_full_batch_gd_on_linear_regression_matches_closed_form(f64):
    g = torch.Generator().manual_seed(1)
    X, w_true = torch.randn(50, 4, generator=g), torch.randn(4, 1, generator=g)
    y = (X @ w_true).squeeze(1)
    model = torch.nn.Linear(4, 1, bias=False)
    w = model.weight.detach().numpy().copy().T  # (4, 1)
    hist = train(model, (X, y), TrainConfig(steps=30, eta=0.1, loss="mse"))
    Xn, yn = X.numpy(), y.numpy()[:, None]
    expected = []
    for _ in range(31):  # loss ½ mean (Xw − y)², gradient Xᵀ(Xw − y)/n
        r = Xn @ w - yn
        expected.append(0.5 * np.mean(r ** 2))
        w = w - 0.1 * Xn.T @ r / len(Xn)
    # torch and NumPy sum in other orders: ≤ n·ε relative per step on the residual r; with
    # η·λ_max(XᵀX/n) < 2 GD does not amplify errors, so they add over 31 records, while
    # ‖r‖ shrinks by √(L_T/L_0): the loss (∝ ‖r‖²) may differ by twice the ratio.
    n, eps = len(Xn), np.finfo(np.float64).eps
    rtol = 2 * 31 * n * eps / np.sqrt(expected[-1] / expected[0])
    np.testing.assert_allclose(hist.loss, expected, rtol=rtol)
    assert np.all(np.isnan(hist.accuracy))  # regression: no accuracy


def test_per_group_learning_rates_apply_to_their_group(f64):
    X, y = blobs(dtype=torch.float64)
    model = MLP((10, 8, 3)).double()
    before = {k: [p.detach().clone() for p in ps] for k, ps in model.groups().items()}
    # one step: recompute the gradient independently, then compare θ_1 − θ_0 = −η_k ∇_k
    ref = MLP((10, 8, 3)).double()
    ref.load_state_dict(model.state_dict())
    torch.nn.functional.cross_entropy(ref(X), y).backward()
    grads = {k: [p.grad.clone() for p in ps] for k, ps in ref.groups().items()}
    train(model, (X, y), TrainConfig(steps=1, eta={"w": 7.0, "g": 0.01}))
    for k, eta in (("w", 7.0), ("g", 0.01)):
        for p, p0, gr in zip(model.groups()[k], before[k], grads[k]):
            torch.testing.assert_close(p.detach(), p0 - eta * gr, rtol=0, atol=1e-12)


def test_effective_eta_is_the_step_of_the_direction_at_unit_norm(f64):
    """A GD step η from a scale-invariant w turns w/‖w‖ exactly as a step η/‖w‖² from
    the unit vector w/‖w‖ does (∇F(cw) = ∇F(w)/c): the two directions agree to round-off."""
    A = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    F = lambda w: (A @ (w / w.norm())).sin().sum()  # noqa: E731  (scale-invariant)
    grad = lambda w: torch.func.grad(F)(w)  # noqa: E731
    for r, eta in [(0.3, 0.05), (7.0, 2.0)]:
        w = r * torch.tensor([0.5, -1.0, 2.0, 0.3], dtype=torch.float64)
        u = w / w.norm()
        step = models.effective_eta(eta, float(w.norm() ** 2))
        after_w, after_u = w - eta * grad(w), u - float(step) * grad(u)
        torch.testing.assert_close(after_w / after_w.norm(), after_u / after_u.norm(),
                                   rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(models.effective_eta([1.0, 2.0], [[4.0, np.nan]]),
                                  [[0.25, np.nan]])  # a diverged run stays NaN


def test_history_records_groups_per_step_rates_and_effective_eta(f64):
    X, y = blobs(dtype=torch.float64)
    model = MLP((10, 16, 16, 3)).double()
    rates = 2.0 * 0.5 ** np.arange(25)  # more rates than steps: the first 20 are used
    hist = train(model, (X, y), TrainConfig(steps=20, eta={"w": rates, "g": 0.1}))
    assert len(hist.step) == 21 and hist.diverged_at is None
    np.testing.assert_array_equal(hist.eta["w"][:20], rates[:20])
    np.testing.assert_allclose(hist.eta["g"], 0.1)
    assert hist.weight_norm_sq["w"].shape == (21, 2)  # two normalised layers
    # one division per entry, so exact: η_t of the step over each tensor's own ‖w_t‖²
    np.testing.assert_array_equal(hist.effective_eta("w"),
                                  hist.eta["w"][:, None] / hist.weight_norm_sq["w"])
    assert hist.loss[-1] < hist.loss[0]


def test_norm_growth_identity_for_scale_invariant_weights(f64):
    """Lemma 2.4 of Arora et al.: ‖w_{t+1}‖² = ‖w_t‖² + η²‖∇_w L‖² under GD, no weight decay."""
    X, y = blobs(dtype=torch.float64)
    model = MLP((10, 16, 16, 3), norm="bn_smooth").double()
    eta = 3.0
    hist = train(model, (X, y), TrainConfig(steps=40, eta={"w": eta, "g": 0.1}))
    total = hist.weight_norm_sq["w"].sum(1)
    np.testing.assert_allclose(total[1:], total[:-1] + eta**2 * hist.grad_norm_sq["w"][:-1],
                               rtol=1e-10)


def test_divergence_stops_the_run_and_is_recorded():
    """GD on a quadratic with η = 10 > 2/λ_max (λ_max ≈ 1.5 here) grows the error about
    14-fold a step from any start: float32 overflows within ~40 steps. (A ReLU network at a
    huge η is no sure test: a first step that kills every unit leaves a finite loss.)"""
    X, y = blobs()
    model = torch.nn.Linear(10, 3)
    hist = train(model, (X, y), TrainConfig(steps=200, eta=10.0, loss="mse"))
    assert hist.diverged and 0 < hist.diverged_at < 200
    assert np.all(np.isfinite(hist.loss)) and len(hist.loss) == hist.diverged_at


def test_minibatch_order_depends_on_seed_only():
    X, y = blobs()
    cfg = TrainConfig(steps=15, eta=0.5, batch_size=32, seed=3)
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(0)
        runs.append(train(MLP((10, 8, 3)), (X, y), dataclasses.replace(cfg, seed=seed)).loss)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_weight_decay_and_momentum_shrink_norm(f64):
    X, y = blobs(dtype=torch.float64)
    torch.manual_seed(0)
    model = MLP((10, 16, 16, 3), norm="bn_smooth").double()
    hist = train(model, (X, y), TrainConfig(steps=50, eta=0.05, weight_decay=0.5, momentum=0.9))
    w = hist.weight_norm_sq["w"].sum(1)
    assert w[-1] < w[0]  # with λ > 0 the scale-invariant weights shrink


@pytest.mark.parametrize("change, match", [
    (dict(steps=0), "^steps"), (dict(eta=0.0), "^eta"), (dict(eta=float("nan")), "^eta"),
    (dict(eta={"w": 1.0}), "^config.eta per group needs exactly the groups"),
    (dict(weight_decay=-1e-3), "^weight_decay"), (dict(momentum=1.0), "^momentum"),
    (dict(loss="hinge"), "^loss"), (dict(batch_size=0), "^batch_size"),
    (dict(batch_size=10_000), "^config.batch_size"), (dict(log_every=0), "^log_every"),
    (dict(eta=[1.0, 1.0]), "^eta has 2 rates, need one per step"),
])
def test_bad_config_raises_value_error(change, match):
    X, y = blobs()
    with pytest.raises(ValueError, match=match):
        train(MLP((10, 8, 3)), (X, y), dataclasses.replace(TrainConfig(steps=5), **change))


def test_mismatched_data_raises():
    X, y = blobs()
    with pytest.raises(ValueError, match="data.X and data.y must have the same length"):
        train(MLP((10, 8, 3)), (X, y[:10]), TrainConfig(steps=2))


def test_smoothed_bn_is_exactly_scale_invariant_and_standard_bn_is_not(f64):
    X = torch.randn(64, 20)
    for norm, tol_ok in (("bn_smooth", True), ("bn", False)):
        torch.manual_seed(0)
        layer = NormLinear(20, 30, norm=norm, eps=1e-3).double()
        out = layer(X)
        with torch.no_grad():
            layer.linear.weight.mul_(0.05)
        gap = (layer(X) - out).abs().max().item()
        assert (gap < 1e-12) == tol_ok, (norm, gap)


def test_gradient_is_orthogonal_to_scale_invariant_weights(f64):
    X, y = blobs(dtype=torch.float64)
    model = MLP((10, 16, 16, 3), norm="bn_smooth").double()
    torch.nn.functional.cross_entropy(model(X), y).backward()
    for w in model.groups()["w"]:
        assert abs((w * w.grad).sum().item()) < 1e-12 * w.norm().item() * w.grad.norm().item() + 1e-15


@pytest.mark.parametrize("kw, match", [
    (dict(sizes=(10,)), "^sizes must list at least 2"), (dict(sizes=(10, 8, 3), norm="ln"), "norm"),
    (dict(sizes=(10, 8, 3), activation="gelu"), "activation"), (dict(sizes=(10, 0, 3)), r"sizes\[1\]"),
])
def test_bad_model_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kw)


def test_standard_normlinear_equals_torch_batchnorm(f64):
    """NormLinear(norm="bn") is torch's BatchNorm1d after a bias-free linear map,
    in training mode, in its running statistics, and in eval mode."""
    torch.manual_seed(0)
    layer, bn = NormLinear(5, 4, norm="bn").double(), torch.nn.BatchNorm1d(4).double()
    X = torch.randn(32, 5)
    for _ in range(3):
        torch.testing.assert_close(layer(X), bn(layer.linear(X)), rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.running_var, bn.running_var, rtol=0, atol=1e-14)
    layer.eval(), bn.eval()
    torch.testing.assert_close(layer(X), bn(layer.linear(X)), rtol=0, atol=1e-12)


def test_sse_loss_is_the_sum_and_observe_records_extra_quantities(f64):
    g = torch.Generator().manual_seed(3)
    X, y = torch.randn(20, 3, generator=g), torch.randn(20, generator=g)
    model = torch.nn.Linear(3, 1, bias=False)
    w0 = model.weight.detach().clone()
    seen = []

    def observe(params, t):
        seen.append(t)
        return {"w_norm": params["weight"].flatten(1).norm(dim=1)}  # (K,) = (1,)

    hist = train(model, (X, y), TrainConfig(steps=6, eta=0.01, loss="sse", log_every=2), observe=observe)
    r = X @ w0.T - y[:, None]
    np.testing.assert_allclose(hist.loss[0], 0.5 * (r ** 2).sum().item(), rtol=1e-12)
    assert seen == [0, 2, 4, 6] and hist.extra["w_norm"].shape == (4,)
    np.testing.assert_allclose(hist.extra["w_norm"][-1], model.weight.norm().item(), rtol=1e-12)


def test_divergence_at_the_first_step_gives_an_empty_history():
    """Finite data, a model whose outputs overflow float32 at initialisation: a result."""
    X, y = blobs()
    model = torch.nn.Linear(10, 3)
    with torch.no_grad():
        model.weight.fill_(3e38)
    hist = train(model, (X, y), TrainConfig(steps=5))
    assert hist.diverged_at == 0 and len(hist.loss) == 0 and hist.eta["g"].shape == (0,)


def test_initial_momentum_enters_the_first_step(f64):
    g = torch.Generator().manual_seed(5)
    X, y = torch.randn(20, 3, generator=g), torch.randn(20, generator=g)
    model = torch.nn.Linear(3, 1, bias=False)
    w0 = model.weight.detach().clone()
    b = torch.randn(1, 1, 3, generator=g)  # (K=1, 1, 3)
    train(model, (X, y), TrainConfig(steps=1, eta=0.1, momentum=0.9, weight_decay=0.01, loss="mse"),
          init_momentum=lambda params: {"weight": b})
    grad = ((X @ w0.T - y[:, None]) * X).mean(0, keepdim=True)  # ∇ of mean ½(wx − y)²
    torch.testing.assert_close(model.weight.detach(), w0 - 0.1 * (0.9 * b[0] + grad + 0.01 * w0),
                               rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="init_momentum"):
        train(model, (X, y), TrainConfig(steps=1, loss="mse"), init_momentum=lambda p: {"bias": b})


def test_first_training_step_imports_nothing_slow():
    """A live slider's first move trains in a kernel where lib is imported but nothing has
    trained yet; the vmapped cross-entropy then used to import sympy (about a second).
    Fails if lib.train stops importing it up front."""
    import subprocess
    import sys
    code = (
        "import sys, torch\n"
        "import lib.train as T\n"
        "from lib import models, stack\n"
        "before = set(sys.modules)\n"
        "torch.manual_seed(0)\n"
        "nets = stack.from_models([models.MLP((4, 3, 2), norm='bn') for _ in (0, 1)])\n"
        "X, y = torch.randn(8, 4), torch.arange(8) % 2\n"
        "T.fit(nets, (X, y), [T.TrainConfig(steps=2, eta=0.1, seed=s) for s in (0, 1)], bar=False)\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('sympy', 'mpmath')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout[:300]
