"""lib.explr.experiments: scale invariance, the exp-LR equivalences in float64, the toy, the equilibrium."""

import numpy as np
import pytest
import torch

from lib import train
from lib.explr import experiments, schedules


def gaussian_data(n=200, d=12, classes=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randint(classes, (n,), generator=g)


def loss_at(model, X, y, scale=1.0):
    """Loss with every trainable parameter multiplied by ``scale`` (a fresh copy)."""
    params = {n: scale * p.detach() for n, p in model.named_parameters()}
    params = {n: p.requires_grad_() for n, p in params.items()}
    out = torch.func.functional_call(model, params, (X,))
    loss = torch.nn.functional.cross_entropy(out, y)
    return loss, torch.autograd.grad(loss, list(params.values()))


@pytest.mark.parametrize("which", ["mlp", "preresnet"])
def test_networks_are_exactly_scale_invariant(which):
    if which == "mlp":
        model, (X, y) = experiments.ScaleInvariantMLP((12, 16, 16, 3), seed=1).double(), gaussian_data()
    else:
        model = experiments.PreResNet(widths=(4, 8, 8), n_classes=3, seed=1).double()
        X, y = torch.rand(16, 1, 12, 12, dtype=torch.float64), torch.arange(16) % 3
    loss, grads = loss_at(model, X, y)
    theta = [p.detach() for p in model.parameters()]
    assert abs(sum((g * p).sum() for g, p in zip(grads, theta))) < 1e-10  # ⟨∇L, θ⟩ = 0
    for c in (0.01, 7.0):
        loss_c, grads_c = loss_at(model, X, y, c)
        assert loss_c.item() == pytest.approx(loss.item(), rel=1e-12)
        for g, gc in zip(grads, grads_c):                                  # ∇L(cθ) = ∇L(θ)/c
            torch.testing.assert_close(gc * c, g, rtol=1e-9, atol=1e-12)


def test_only_scale_invariant_weights_are_trainable():
    for model in (experiments.ScaleInvariantMLP((12, 8, 3)), experiments.PreResNet(widths=(4, 8, 8))):
        groups = model.groups()
        assert groups["g"] == [] and len(groups["w"]) == len(list(model.parameters()))
        assert "head" in dict(model.named_buffers())


def test_bad_network_sizes_are_rejected():
    with pytest.raises(ValueError, match="sizes"):
        experiments.ScaleInvariantMLP((12, 3))


def test_theorem_2_9_initial_momentum_one_step_by_hand():
    """θ̃_1 = θ_1/α after one PyTorch step of each process, written out by hand."""
    eta, lam, gamma = 0.1, 5e-3, 0.9
    a = schedules.exp_lr_alpha(eta, lam, gamma)
    theta0 = torch.tensor([0.3, -1.2, 0.7], dtype=torch.float64)
    grad = lambda th: torch.tensor([1.0, 0.5, -0.2], dtype=torch.float64) / th.norm()  # noqa: E731
    grad_si = lambda th: grad(th) - (grad(th) @ th) * th / th.dot(th)  # noqa: E731 (⊥ θ, ∝ 1/‖θ‖)
    theta1 = theta0 - eta * (grad_si(theta0) + lam * theta0)                  # v_0 = 0
    v0 = experiments.exp_lr_momentum(eta, lam, gamma)({"w": theta0})["w"]
    tilde1 = theta0 - schedules.exp_lr(eta, lam, gamma, 1)[0] * (gamma * v0 + grad_si(theta0))
    torch.testing.assert_close(tilde1, theta1 / a, rtol=1e-14, atol=1e-15)


@pytest.fixture(scope="module")
def data64():
    return gaussian_data(n=200, d=12)


@pytest.mark.parametrize("gamma", [0.0, 0.9])
def test_float64_equivalence_over_250_steps(data64, gamma):
    r = experiments.equivalence(data64, sizes=(12, 16, 16, 3), eta=0.1, weight_decay=5e-3,
                                momentum=gamma, steps=250, batch_size=50)
    assert len(r["step"]) == 251
    # A and B are two computations (not one run twice) that the theorem makes equal up to
    # a scalar: their round-off (~ε = 1.1e-16 per operation, a few per step) adds up about
    # linearly over T = 250 steps of this non-chaotic run, ~T·ε·few ≈ 1e-13 (8e-14 measured,
    # with 1 or 2 threads). The bound 1e-11 is that budget ×100, far below the 1e-4 a wrong
    # start gives (the control below).
    assert experiments.unit_distance(r["theta_a"], r["theta_b"]).max() < 1e-11
    ratio = np.linalg.norm(r["theta_b"], axis=1) / np.linalg.norm(r["theta_a"], axis=1)
    np.testing.assert_allclose(ratio, r["alpha"] ** -r["step"], rtol=1e-10)  # θ̃_t = α^{−t} θ_t, same budget


def test_equivalence_fails_without_the_initial_momentum(data64):
    """The control: same schedules, but run B started at rest."""
    lrs = schedules.exp_lr(0.1, 5e-3, 0.9, 250)
    r = experiments.paired_runs(data64, np.full(250, 0.1), 5e-3, lrs, momentum=0.9,
                          make_model=lambda seed: experiments.ScaleInvariantMLP((12, 16, 16, 3), seed),
                                batch_size=50)
    assert experiments.unit_distance(r["theta_a"], r["theta_b"]).max() > 1e-4


def test_step_decay_texp_plus_exact_texp_close_texp_minus_not(data64):
    lam, gamma, steps = 5e-3, 0.9, 200
    lrs = schedules.step_decay(0.1, steps, [100, 150])
    dist = {}
    for name, tilde in [("texp++", schedules.texp_plus(lrs, lam, gamma)[0]),
                        ("texp", schedules.texp(lrs, lam, gamma)),
                        ("texp--", schedules.texp_minus(lrs, lam, gamma))]:
        init = None if name == "texp++" else experiments.exp_lr_momentum(0.1, lam, gamma)
        r = experiments.paired_runs(data64, lrs, lam, tilde, momentum=gamma, init_b=init,
                              make_model=lambda seed: experiments.ScaleInvariantMLP((12, 16, 16, 3), seed),
                                    batch_size=50)
        dist[name] = experiments.unit_distance(r["theta_a"], r["theta_b"])
    assert dist["texp++"].max() < 1e-11               # round-off budget as above (3e-14 measured)
    assert dist["texp"][:100].max() < 1e-11            # the first phase is Theorem 2.9
    assert 1e-10 < dist["texp"].max() < 1e-3           # the phase-entry correction, small
    assert dist["texp--"].max() > 10 * dist["texp"].max()


def test_preresnet_step_decay_equals_texp_plus_in_float64():
    X, y = torch.rand(64, 1, 12, 12, dtype=torch.float64), torch.arange(64) % 10
    lrs = schedules.step_decay(0.1, 30, [15])
    r = experiments.paired_runs((X, y), lrs, 5e-3, schedules.texp_plus(lrs, 5e-3, 0.9)[0],
                          make_model=lambda seed: experiments.PreResNet(widths=(4, 8, 8), seed=seed),
                                batch_size=32)
    assert experiments.unit_distance(r["theta_a"], r["theta_b"]).max() < 1e-10


def test_schedule_runs_records_test_accuracy():
    X, y = torch.rand(64, 1, 12, 12), torch.arange(64) % 10
    cfg = train.TrainConfig(steps=4, batch_size=32, momentum=0.9, log_every=2)
    out = experiments.schedule_runs(lambda seed: experiments.PreResNet(widths=(4, 8, 8), seed=seed),
                                    (X, y), (X[:20], y[:20]), {"const": (np.full(4, 0.1), 5e-3)}, cfg)
    run = out["const"][0]
    assert run["test_accuracy"].shape == (3,) and np.all((0 <= run["test_accuracy"]) & (run["test_accuracy"] <= 1))
    assert run["weight_norm_sq"].shape[0] == 3


def test_toy_gradient_matches_autograd():
    X, y = experiments.toy_data(50, 5, seed=3)
    w = np.random.default_rng(0).standard_normal(5)
    for bn in (True, False):
        wt = torch.tensor(w, requires_grad=True)
        s = torch.tensor(X) @ wt
        u = (s - s.mean()) / s.std(unbiased=False) if bn else s
        loss = torch.nn.functional.softplus(-torch.tensor(y) * u).mean()
        loss.backward()
        assert loss.item() == pytest.approx(experiments.toy_loss(X, y, w, bn), rel=1e-12)
        np.testing.assert_allclose(experiments.toy_grad(X, y, w, bn), wt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_toy_error_formula_against_sampling():
    X, y = experiments.toy_data(200_000, 4, seed=1)
    w = np.array([1.0, 0.7, -0.3, 0.2])
    assert experiments.toy_error(w) == pytest.approx(np.mean(np.sign(X @ w) != y), abs=5e-3)


def test_toy_bn_and_wd_together_keep_failing():
    X, y = experiments.toy_data(200, 10, seed=0)
    w0 = np.random.default_rng(1).standard_normal(10)
    late = slice(500, None)
    both = experiments.toy_gd(X, y, w0, 1.0, 1e-2, 1500)
    bn_only = experiments.toy_gd(X, y, w0, 1.0, 0.0, 1500)
    wd_only = experiments.toy_gd(X, y, w0, 1.0, 1e-2, 1500, bn=False)
    assert bn_only["error"][late].max() < 0.06 and wd_only["error"][late].max() < 0.06
    assert both["error"][late].max() > 0.15                     # it keeps leaving the cone
    assert both["norm"][late].min() < 0.5 * bn_only["norm"][late].min()


def test_toy_only_the_product_eta_lambda_matters():
    """(η, λ, w_0) and (cη, λ/c, √c w_0) give the same directions at every step."""
    X, y = experiments.toy_data(100, 6, seed=2)
    w0 = np.random.default_rng(4).standard_normal(6)
    a = experiments.toy_gd(X, y, w0, 0.1, 2e-2, 300)
    b = experiments.toy_gd(X, y, 3.0 * w0, 0.1 * 9, 2e-2 / 9, 300)
    # two float64 runs equal in exact arithmetic: round-off ~T·ε ≈ 3e-14 over 300 steps
    # (8e-16 measured); 1e-12 leaves ×30 and is 1e10 below the other-ηλ control
    assert experiments.unit_distance(a["w"], b["w"]).max() < 1e-12
    c = experiments.toy_gd(X, y, 3.0 * w0, 0.1 * 9, 2e-2, 300)         # same η/‖w_0‖², other ηλ
    assert experiments.unit_distance(a["w"], c["w"]).max() > 1e-2


def test_toy_rejects_bad_input():
    X, y = experiments.toy_data(20, 2, seed=0)
    with pytest.raises(ValueError, match="^n must be"):
        experiments.toy_data(1, 5)
    with pytest.raises(ValueError, match="^eta must be"):
        experiments.toy_gd(X, y, np.ones(2), -1.0, 0.0, 10)
    with pytest.raises(ValueError, match="^eta and weight_decay: need ηλ < 1"):
        experiments.toy_gd(X, y, np.ones(2), 10.0, 0.1, 10)
    with pytest.raises(ValueError, match="X and w0: BN needs"):    # Xw constant: BN divides by 0
        experiments.toy_gd(np.ones((3, 2)), np.ones(3), np.ones(2), 1.0, 0.0, 10)


def test_equilibrium_ratio_measured_during_sgd():
    X, y = gaussian_data(n=400, d=12, classes=3, dtype=torch.float32)
    points = [(0.1, 5e-2, 0.0), (0.1, 2e-2, 0.9), (0.5, 1e-2, 0.5)]
    for r in experiments.equilibrium((X, y), (12, 32, 3), points, steps=1200, batch_size=20):
        assert r["measured"] == pytest.approx(r["predicted"], rel=0.1), r["eta"]


def test_schedule_data_falls_back_to_fashion_mnist(monkeypatch):
    calls = []

    def fake_load(name, **kw):
        calls.append(name)
        if name == "cifar10":
            raise experiments._data.DatasetNotFoundError("no CIFAR-10 here")
        return (name, kw["split"], kw["n"])
    monkeypatch.setattr(experiments._data, "load", fake_load)
    setup = experiments.SCHEDULE_SETUPS["gpu"]
    train_set, test_set, note = experiments.schedule_data(setup)
    assert calls == ["cifar10", "fashion_mnist", "fashion_mnist"]
    assert train_set == ("fashion_mnist", "train", setup.n_train) and "Fashion-MNIST" in note
