"""lib.explr: scale invariance of the networks, the exp-LR equivalences in float64, the toy,
the equilibrium, and the figures drawing what they are given."""

import functools
import pickle

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dataclasses import replace

from lib import cache, data, stack, train
from lib.explr import comparisons, experiments, norms, figures, networks, schedules, toy
from lib.models import NormLinear
from helpers import assert_line, data_of


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
        model, (X, y) = networks.ScaleInvariantMLP((12, 16, 16, 3), seed=1).double(), gaussian_data()
    else:
        model = networks.PreResNet(widths=(4, 8, 8), n_classes=3, seed=1).double()
        X, y = torch.rand(16, 1, 12, 12, dtype=torch.float64), torch.arange(16) % 3
    loss, grads = loss_at(model, X, y)
    theta = [p.detach() for p in model.parameters()]
    assert abs(sum((g * p).sum() for g, p in zip(grads, theta))) < 1e-10  # ⟨∇L, θ⟩ = 0
    for c in (0.01, 7.0):
        loss_c, grads_c = loss_at(model, X, y, c)
        assert loss_c.item() == pytest.approx(loss.item(), rel=1e-12)
        for g, gc in zip(grads, grads_c):                                  # ∇L(cθ) = ∇L(θ)/c
            torch.testing.assert_close(gc * c, g, rtol=1e-9, atol=1e-12)
        # relative to the weights the gradient grows by 1/c² (the chapter's section 2), not 1/c
        rel = lambda gs, ps: torch.sqrt(sum((x ** 2).sum() for x in gs) / sum((x ** 2).sum() for x in ps))  # noqa: E731
        assert rel(grads_c, [c * p for p in theta]).item() == pytest.approx(
            c ** -2 * rel(grads, theta).item(), rel=1e-9)


def test_bn_epsilon_breaks_scale_invariance_measurably():
    """Why the book's networks drop BN's ε (the paper keeps PyTorch's ε = 1e-5)."""
    X, y = gaussian_data()
    model = networks.ScaleInvariantMLP((12, 16, 16, 3), seed=1).double()
    for m in model.modules():
        if isinstance(m, NormLinear):
            m.norm, m.eps = "bn", 1e-5          # standard BN: (wᵀz − μ)/√(σ² + ε)
    loss, _ = loss_at(model, X, y)
    loss_c, _ = loss_at(model, X, y, 0.01)     # σ² shrinks 10⁴-fold, to the order of ε
    assert abs(loss_c.item() / loss.item() - 1) > 1e-3     # vs 1e-12 with ε = 0 (above)


def test_only_scale_invariant_weights_are_trainable():
    for model in (networks.ScaleInvariantMLP((12, 8, 3)), networks.PreResNet(widths=(4, 8, 8))):
        groups = model.groups()
        assert groups["g"] == [] and len(groups["w"]) == len(list(model.parameters()))
        assert "head" in dict(model.named_buffers())


def test_bad_network_sizes_are_rejected():
    with pytest.raises(ValueError, match="sizes"):
        networks.ScaleInvariantMLP((12, 3))


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
    etas = schedules.exp_lr(0.1, 5e-3, 0.9, 250)
    r = experiments.paired_runs(data64, np.full(250, 0.1), 5e-3, etas, momentum=0.9,
                          make_model=lambda seed: networks.ScaleInvariantMLP((12, 16, 16, 3), seed),
                                batch_size=50)
    assert experiments.unit_distance(r["theta_a"], r["theta_b"]).max() > 1e-4


def test_texp_gap_is_the_response_to_the_entry_correction(data64):
    """Step decay against TEXP++ (exact), TEXP (exact up to e_t at each phase entry), the
    same with 2e_t, and TEXP−−: TEXP's whole gap is the linear response to e_t."""
    lam, gamma, steps = 5e-4, 0.9, 150                 # the paper's λ; λη = 5e-5
    etas = schedules.step_decay(0.1, steps, [100, 125])
    e = schedules.texp_correction(etas, lam, gamma)
    alpha0 = schedules.exp_lr_alpha(0.1, lam, gamma)
    start = experiments.exp_lr_momentum(0.1, lam, gamma)
    dist = {}
    for name, tilde, init in [  # (TEXP++ started at rest: test_preresnet_step_decay_equals...)
            ("texp++ from v0", schedules.texp_plus(etas, lam, gamma, alpha0=alpha0)[0], start),
            ("texp", schedules.texp(etas, lam, gamma), start),
            ("2e", schedules.texp_plus(etas, lam + 2 * e / etas, gamma, alpha0=alpha0)[0], start),
            ("texp--", schedules.texp_minus(etas, lam, gamma), start)]:
        r = experiments.paired_runs(data64, etas, lam, tilde, momentum=gamma, init_b=init,
                              make_model=lambda seed: networks.ScaleInvariantMLP((12, 16, 16, 3), seed),
                                    batch_size=50)
        dist[name] = experiments.unit_distance(r["theta_a"], r["theta_b"])
    assert dist["texp++ from v0"].max() < 1e-11        # round-off budget as above (3e-14 measured)
    assert dist["texp"][:101].max() < 1e-11            # up to θ_100 it is Theorem 2.9
    # Twice the correction, twice the gap (1.0e-7 measured): linear response. Its relative
    # non-linearity is second order, the perturbation (~1e-7) times the run's sensitivity
    # (1.5e-6 measured); 1e-3 leaves ×700 and still catches an error in TEXP of 0.1 % of e_t.
    assert dist["2e"].max() == pytest.approx(2 * dist["texp"].max(), rel=1e-3)
    assert dist["texp"].max() > 1e3 * dist["texp++ from v0"].max()
    assert dist["texp--"].max() > 100 * dist["texp"].max()   # 0.29 measured


def test_preresnet_step_decay_equals_texp_plus_in_float64():
    X, y = torch.rand(64, 1, 12, 12, dtype=torch.float64), torch.arange(64) % 10
    etas = schedules.step_decay(0.1, 30, [15])
    r = experiments.paired_runs((X, y), etas, 5e-3, schedules.texp_plus(etas, 5e-3, 0.9)[0],
                          make_model=lambda seed: networks.PreResNet(widths=(4, 8, 8), seed=seed),
                                batch_size=32)
    assert experiments.unit_distance(r["theta_a"], r["theta_b"]).max() < 1e-10


def test_schedule_runs_records_what_direct_runs_give():
    """Each (schedule, seed) of schedule_runs against the same run made directly with
    lib.train.train (the seed draws the initialisation and the mini-batches) and evaluated
    with the model itself (float64: no argmax ties); the test accuracy only every
    eval_every steps and at the last."""
    g = torch.Generator().manual_seed(5)
    X, y = torch.rand(64, 1, 12, 12, generator=g, dtype=torch.float64), torch.arange(64) % 10
    X_test = torch.rand(40, 1, 12, 12, generator=g, dtype=torch.float64)
    y_test = torch.randint(10, (40,), generator=g)
    make = lambda seed: networks.PreResNet(widths=(4, 8, 8), seed=seed).double()  # noqa: E731
    cfg = train.TrainConfig(steps=6, batch_size=32, momentum=0.9, log_every=3)
    etas, start = schedules.exp_lr(0.2, 1e-2, 0.9, 6), experiments.exp_lr_momentum(0.2, 1e-2, 0.9)
    out = comparisons.schedule_runs(make, (X, y), (X_test, y_test),
                                    {"exp": (etas, 0.0, start), "wd": (np.full(6, 0.2), 1e-2)},
                                    cfg, seeds=(0, 1))
    accuracy = lambda m: (m(X_test).argmax(1) == y_test).double().mean().item()  # noqa: E731
    for name, wd, init in (("exp", 0.0, start), ("wd", 1e-2, None)):
        for seed, run in zip((0, 1), out[name]):
            model = make(seed)
            before = accuracy(model.eval())
            rates = etas if name == "exp" else np.full(6, 0.2)
            h = train.train(model.train(), (X, y), replace(cfg, eta=rates, weight_decay=wd,
                                                           seed=seed),  # seed: batches too
                            bar=False, init_momentum=init)
            np.testing.assert_array_equal(run["step"], [0, 3, 6])
            assert run["test_accuracy"][0] == before and run["test_accuracy"][-1] == accuracy(model.eval())
            np.testing.assert_allclose(run["weight_norm_sq"], h.weight_norm_sq["w"], rtol=1e-12)
            np.testing.assert_allclose(run["loss"], h.loss, rtol=1e-12)
    # the two schedules are equivalent (Theorem 2.9, started with ṽ_0): same test accuracy
    np.testing.assert_array_equal(out["exp"][0]["test_accuracy"], out["wd"][0]["test_accuracy"])
    sparse = comparisons.schedule_runs(make, (X, y), (X_test, y_test), {"wd": (np.full(6, 0.2), 1e-2)},
                                       replace(cfg, log_every=1), seeds=(1, 0), eval_every=3)
    for seed, run in zip((1, 0), sparse["wd"]):
        assert np.isnan(run["test_accuracy"][[1, 2, 4, 5]]).all()
        np.testing.assert_array_equal(run["test_accuracy"][[0, 3, 6]],
                                      out["wd"][seed]["test_accuracy"])


def test_make_preresnet_is_preresnet_and_its_partial_pickles_to_the_same_key():
    """The chapter's factory makes what PreResNet makes with that seed; a partial of it
    (the chapter's make_model) survives pickling, as a process pool needs, and names the
    same cache key after the round trip, a different one with other sizes."""
    kw = dict(in_channels=1, widths=(2, 4), blocks=1, stem_stride=2, augment=False)
    for seed in (0, 3):
        a, b = networks.make_preresnet(seed=seed, **kw).state_dict(), \
            networks.PreResNet(seed=seed, **kw).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    make = functools.partial(networks.make_preresnet, **kw)
    back = pickle.loads(pickle.dumps(make))
    other = functools.partial(networks.make_preresnet, **{**kw, "widths": (2, 8)})
    assert cache.key({"m": back}) == cache.key({"m": make}) != cache.key({"m": other})


def test_schedule_runs_ship_picklable_functions_that_judge_each_model_by_its_seed():
    """What schedule_runs sends with each chunk to a process pool pickles: its observe
    and paper_schedules's ṽ_0 (partials of module-level functions). ṽ_0 is exactly
    exp_lr_momentum's; the observe function, pickled and back, gives each stacked model's
    test accuracy as that seed's own network scores it (models stacked in the order of
    seeds 1, 0; the labels are seed 1's predictions, so it scores 1), NaN between
    evaluations, names the same cache key, and keeps no state after the run."""
    g = torch.Generator().manual_seed(2)
    X_test = torch.rand(60, 1, 8, 8, generator=g)
    make = functools.partial(networks.make_preresnet, widths=(2, 4))
    nets = {s: make(seed=s).eval() for s in (0, 1)}
    with torch.no_grad():
        y_test = nets[1](X_test).argmax(1)
    score = lambda m: (m(X_test).argmax(1) == y_test).double().mean().item()  # noqa: E731
    params = stack.from_models([nets[1], nets[0]]).params
    observe = comparisons._test_accuracy(make, (0, 1), X_test, y_test, every=2, steps=3)
    back = pickle.loads(pickle.dumps(observe))
    assert cache.key({"o": back}) == cache.key({"o": observe})
    with torch.no_grad():
        first = back(params, 0)["test_accuracy"].tolist()
        assert first == [1.0, score(nets[0])] and first[1] < 1
        assert torch.isnan(back(params, 1)["test_accuracy"]).all()
        for name, p in params.items():                         # "trained": in place, as fit does
            params[name] = p + 0.5 * torch.randn(p.shape, generator=g)
        for i, s in enumerate((1, 0)):
            nets[s].load_state_dict({n: p[i] for n, p in params.items()}, strict=False)
        assert back(params, 3)["test_accuracy"].tolist() == [score(nets[1]), score(nets[0])]
    assert not comparisons._RUNS                               # the last step ended the run
    setup = comparisons.SCHEDULE_SETUPS["cpu"]
    start = comparisons.paper_schedules(setup, 5)["TEXP"][2]
    theta = {"w": torch.randn(3, 4, generator=g, dtype=torch.float64)}
    direct = experiments.exp_lr_momentum(setup.eta, setup.weight_decay, setup.momentum)
    assert torch.equal(pickle.loads(pickle.dumps(start))(theta)["w"], direct(theta)["w"])


def test_toy_gradient_matches_autograd():
    X, y = toy.toy_data(50, 5, seed=3)
    w = np.random.default_rng(0).standard_normal(5)
    for bn in (True, False):
        wt = torch.tensor(w, requires_grad=True)
        s = torch.tensor(X) @ wt
        u = (s - s.mean()) / s.std(unbiased=False) if bn else s
        loss = torch.nn.functional.softplus(-torch.tensor(y) * u).mean()
        loss.backward()
        assert loss.item() == pytest.approx(toy.toy_loss(X, y, w, bn), rel=1e-12)
        np.testing.assert_allclose(toy.toy_grad(X, y, w, bn), wt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_toy_error_formula_against_sampling():
    X, y = toy.toy_data(200_000, 4, seed=1)
    w = np.array([1.0, 0.7, -0.3, 0.2])
    assert toy.toy_error(w) == pytest.approx(np.mean(np.sign(X @ w) != y), abs=5e-3)


def test_toy_bn_and_wd_together_keep_failing():
    X, y = toy.toy_data(200, 10, seed=0)
    w0 = np.random.default_rng(1).standard_normal(10)
    late = slice(500, None)
    both = toy.toy_gd(X, y, w0, 1.0, 1e-2, 1500)
    bn_only = toy.toy_gd(X, y, w0, 1.0, 0.0, 1500)
    wd_only = toy.toy_gd(X, y, w0, 1.0, 1e-2, 1500, bn=False)
    assert bn_only["error"][late].max() < 0.06 and wd_only["error"][late].max() < 0.06
    assert both["error"][late].max() > 0.15                     # it keeps leaving the cone
    assert both["norm"][late].min() < 0.5 * bn_only["norm"][late].min()


def test_toy_sgd_steps_on_fresh_gaussian_batches():
    w0 = np.array([0.3, 1.0, -0.5, 0.2])
    r = toy.toy_sgd(w0, 0.5, 1e-2, 3, batch_size=50, seed=7)
    rng, w = np.random.default_rng(7), w0.copy()
    for t in range(3):                                 # the same draws, step by step
        X = rng.standard_normal((50, 4))
        w = (1 - 0.5e-2) * w - 0.5 * toy.toy_grad(X, np.sign(X[:, 0]), w)
        np.testing.assert_allclose(r["w"][t + 1], w, rtol=1e-13)
    cos = r["w"][1:] @ r["w"][:-1].T / np.outer(r["norm"][1:], r["norm"][:-1])
    np.testing.assert_allclose(np.cos(r["angle"]), np.diag(cos), rtol=1e-12)
    np.testing.assert_allclose(r["error"], toy.toy_error(r["w"]), rtol=1e-15)


def test_toy_sgd_theorem_3_1_bn_and_wd_keep_leaving_the_cone():
    """Theorem 3.1's setting (fresh N(0, I) batches of 500, m = 10, η = 1, λ = 1e-2): with
    BN and WD the angle to e_1 exceeds ε = 0.06 < √(ηλ/2) in every window of the theorem's
    length; BN alone and WD alone stay inside after step 500; and the angle per step
    settles at √(2ηλ), appendix C's equilibrium with γ = 0 (Remark B.10)."""
    w0 = np.random.default_rng(1).standard_normal(10)
    eta, lam, eps, delta, late = 1.0, 1e-2, 0.06, 0.01, 500
    both = toy.toy_sgd(w0, eta, lam, 1500, seed=0)
    for alone in (toy.toy_sgd(w0, eta, 0.0, 1500, seed=0),
                  toy.toy_sgd(w0, eta, lam, 1500, seed=0, bn=False)):
        assert np.pi * alone["error"][late:].max() < eps        # 0.029 and 0.026 rad measured
    # T1 + T2 of Theorem 3.1 from ‖w‖ at step 500: each window leaves the ε-cone w.p. ≥ 1 − δ
    t1 = np.log(64 * both["norm"][late] ** 2 * eps * np.sqrt(500) / (eta * np.sqrt(8))) \
        / (2 * (eta * lam - 2 * eps ** 2))
    window = int(np.ceil(t1 + 9 * np.log(1 / delta)))       # 484 steps
    angle = np.pi * both["error"]
    assert all(angle[s:s + window].max() > eps for s in range(late, 1501 - window))
    # tan² of the step angle is (D − η²λ²R)/((1 − ηλ)²R); appendix C gives D/R → 2ηλ: rms
    # angle → √(2ηλ − η²λ²)/(1 − ηλ) = 0.1425. Mean of 1000 correlated squares whose
    # relative spread is ~√(2/(m−1)) ≈ 0.5 per step: ±1.5 % (one σ), so 5 % is ~3σ.
    rms = np.sqrt(np.mean(both["angle"][late:] ** 2))
    assert rms == pytest.approx(np.sqrt(2 * eta * lam - (eta * lam) ** 2) / (1 - eta * lam), rel=0.05)


def test_toy_only_the_product_eta_lambda_matters():
    """(η, λ, w_0) and (cη, λ/c, √c w_0) give the same directions at every step."""
    X, y = toy.toy_data(100, 6, seed=2)
    w0 = np.random.default_rng(4).standard_normal(6)
    a = toy.toy_gd(X, y, w0, 0.1, 2e-2, 300)
    b = toy.toy_gd(X, y, 3.0 * w0, 0.1 * 9, 2e-2 / 9, 300)
    # two float64 runs equal in exact arithmetic: round-off ~T·ε ≈ 3e-14 over 300 steps
    # (8e-16 measured); 1e-12 leaves ×30 and is 1e10 below the other-ηλ control
    assert experiments.unit_distance(a["w"], b["w"]).max() < 1e-12
    c = toy.toy_gd(X, y, 3.0 * w0, 0.1 * 9, 2e-2, 300)         # same η/‖w_0‖², other ηλ
    assert experiments.unit_distance(a["w"], c["w"]).max() > 1e-2


def test_toy_rejects_bad_input():
    X, y = toy.toy_data(20, 2, seed=0)
    with pytest.raises(ValueError, match="^n must be"):
        toy.toy_data(1, 5)
    with pytest.raises(ValueError, match="^eta must be"):
        toy.toy_gd(X, y, np.ones(2), -1.0, 0.0, 10)
    with pytest.raises(ValueError, match="^eta and weight_decay: need ηλ < 1"):
        toy.toy_gd(X, y, np.ones(2), 10.0, 0.1, 10)
    with pytest.raises(ValueError, match="X and w0: BN needs"):    # Xw constant: BN divides by 0
        toy.toy_gd(np.ones((3, 2)), np.ones(3), np.ones(2), 1.0, 0.0, 10)


def test_equilibrium_identity_and_ratio_during_sgd():
    """Appendix C's norm identity on float64 SGD runs, step by step to round-off; the
    measured ratio then misses 2ηλ/(1+γ) by exactly the drift term, within 2 % once the
    norm has settled (the chapter's claim)."""
    X, y = gaussian_data(n=400, d=12, classes=3)
    points = [(0.1, 2e-2, 0.9), (0.5, 1e-2, 0.5)]
    for r in norms.equilibrium((X, y), (12, 32, 3), points, steps=600, batch_size=20):
        D, R = r["step_sq"][1:], r["norm_sq"]          # D[t] = ‖θ_{t+1} − θ_t‖², R[t] = ‖θ_t‖²
        eta, lam, gamma = r["eta"], r["weight_decay"], r["momentum"]
        # D_t + γD_{t−1} = (R_{t+1} − R_t) − γ(R_t − R_{t−1}) + 2ηλR_t for t ≥ 1; the right side
        # differences numbers ~R, so its round-off is ~1e-16·R (4e-16·R measured)
        np.testing.assert_allclose(D[1:] + gamma * D[:-1],
                                   (R[2:] - R[1:-1]) - gamma * (R[1:-1] - R[:-2]) + 2 * eta * lam * R[1:-1],
                                   rtol=0, atol=1e-13 * R.max())
        assert r["measured"] / r["predicted"] - 1 == pytest.approx(r["drift"], abs=1e-9)
        assert abs(r["drift"]) < 0.02                  # settled: −0.42 % and −0.17 % measured


def test_crop_flip_cuts_windows_of_the_padded_image():
    X = torch.arange(6 * 2 * 5 * 5, dtype=torch.float64).reshape(6, 2, 5, 5) + 1
    out = networks.crop_flip(X, pad=2, generator=torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(X, (2, 2, 2, 2))
    for x, o in zip(padded, out):                      # each: one of the 5 × 5 × 2 candidates
        candidates = [c for i in range(5) for j in range(5)
                      for c in (x[:, i:i + 5, j:j + 5], x[:, i:i + 5, j:j + 5].flip(-1))]
        assert sum(torch.equal(o, c) for c in candidates) == 1
    same = networks.crop_flip(X, pad=0, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(o, x) or torch.equal(o, x.flip(-1)) for o, x in zip(same, X))


def test_crop_flip_draws_offsets_and_flips_uniformly():
    X = torch.zeros(20_000, 1, 3, 3)
    X[:, 0, 0, 0] = 1.0                                # a marker in the top-left corner
    out = networks.crop_flip(X, pad=1, generator=torch.Generator().manual_seed(0))
    where = out[:, 0].reshape(len(X), 9).argmax(1)     # marker position: offset and flip
    seen = out[:, 0].reshape(len(X), 9).amax(1) > 0    # offsets (1..2, 1..2) lose the marker
    counts = np.bincount(where[seen].numpy(), minlength=9)
    # 9 offsets × 2 flips: the marker lands at (1 − dy, 1 − dx) or its mirror; each visible
    # cell has probability 1/18 per case: expected counts 20000/18 ≈ 1111 (corners), 2222
    # for the middle column (both flips land there); binomial σ ≈ 33 / 46: 5σ bounds
    expected = 20_000 / 18 * np.array([1, 2, 1, 1, 2, 1, 0, 0, 0])
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected + 1))


def test_preresnet_augments_only_in_training_mode():
    x = torch.rand(8, 1, 12, 12)
    plain, aug = (networks.PreResNet(widths=(4, 8, 8), seed=1, augment=a) for a in (False, True))
    assert torch.equal(aug.eval()(x), plain.eval()(x))
    assert not torch.equal(aug.train()(x), plain.train()(x))
    again = networks.PreResNet(widths=(4, 8, 8), seed=1, augment=True)
    assert torch.equal(again(x), networks.PreResNet(widths=(4, 8, 8), seed=1, augment=True)(x))


def test_paper_setup_is_the_papers_and_cpu_setup_unchanged():
    paper, gpu, cpu = (comparisons.SCHEDULE_SETUPS[k] for k in ("paper", "gpu", "cpu"))
    assert (paper.dataset, paper.n_train, paper.n_test, paper.epochs, paper.milestones) == \
        ("cifar10", 50_000, 10_000, 160, (80, 120))
    assert paper.augment and len(paper.seeds) >= 3 and paper.batch_size == 128
    assert (paper.eta, paper.weight_decay, paper.momentum) == (0.1, 5e-4, 0.9)
    net = networks.PreResNet(in_channels=3, widths=paper.widths, blocks=paper.blocks,
                             stem_stride=paper.stem_stride)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == 32                        # PreResNet32: 31 3×3 convolutions + head
    # gpu differs from the paper as the chapter says: 40 epochs, no augmentation; 3 seeds
    assert (gpu.epochs, gpu.milestones, gpu.augment, len(gpu.seeds)) == (40, (20, 30), False, 3)
    # the cpu setup keeps the decays at half and three quarters of 8 epochs, three seeds
    assert (cpu.epochs, cpu.milestones, cpu.augment, cpu.weight_decay) == (8, (4, 6), False, 1e-2)
    assert len(set(cpu.seeds)) == 3


def test_schedule_data_falls_back_to_fashion_mnist(monkeypatch):
    calls = []

    def fake_load(name, **kw):
        calls.append(name)
        if name == "cifar10":
            raise data.DatasetNotFoundError("no CIFAR-10 here")
        return (name, kw["split"], kw["n"])
    monkeypatch.setattr(data, "load", fake_load)  # experiments looks it up at call time
    setup = comparisons.SCHEDULE_SETUPS["gpu"]
    train_set, test_set, note = comparisons.schedule_data(setup)
    assert calls == ["cifar10", "fashion_mnist", "fashion_mnist"]
    assert train_set == ("fashion_mnist", "train", setup.n_train) and "Fashion-MNIST" in note


# ---- helpers moved into lib: same numbers as the computations they replace ---------------

def test_layer_sizes_and_check_input():
    assert networks.layer_sizes("sizes", np.array([4, 3, 2]), min_len=3) == (4, 3, 2)
    net = networks.ScaleInvariantMLP((4, 3, 2))
    X, y = torch.randn(5, 2, 2), torch.arange(5) % 2
    networks.check_input(net, X, "data", y)                       # 2×2 = 4 features: fits
    with pytest.raises(ValueError, match=r"^data\.y must hold labels in 0\.\.1"):
        networks.check_input(net, X, "data", y + 1)
    networks.check_input(torch.nn.Linear(3, 2), torch.ones(2, 7), "data")  # not checked


def test_exp_lr_curve_subsamples_the_schedule():
    r = experiments.exp_lr_curve(0.1, 5e-4, 0.9, epochs=3, steps_per_epoch=10, every=4)
    np.testing.assert_array_equal(r["etas"], schedules.exp_lr(0.1, 5e-4, 0.9, 30)[::4])
    np.testing.assert_array_equal(r["epoch"], np.arange(0, 30, 4) / 10)
    assert r["growth"] == schedules.growth_per_epoch(0.1, 5e-4, 0.9, 10)


def test_equivalence_distance_is_the_distance_of_equivalence(data64):
    r = experiments.equivalence(data64, sizes=(12, 8, 3), weight_decay=1e-2, momentum=0.5,
                                steps=5, batch_size=50)
    d = experiments.equivalence_distance(data64, 1e-2, 0.5, sizes=(12, 8, 3), steps=5,
                                         batch_size=50)
    np.testing.assert_array_equal(d["step"], r["step"])
    np.testing.assert_array_equal(d["distance"], experiments.unit_distance(r["theta_a"], r["theta_b"]))


def test_toy_trajectory_subsamples_toy_gd():
    X, y = toy.toy_data(30, 3, seed=0)
    w0 = np.array([0.3, 1.0, -0.5])
    r = toy.toy_gd(X, y, w0, 0.5, 1e-2, 12)
    t = toy.toy_trajectory(X, y, w0, 0.5, 1e-2, steps=12, every=5)
    np.testing.assert_array_equal(t["step"], [0, 5, 10])
    np.testing.assert_array_equal(t["error"], r["error"][::5])
    np.testing.assert_array_equal(t["norm"], r["norm"][::5])


# ---- figures draw what they are given --------------------------------------------------

def test_draw_schedule_shows_the_curve_and_the_growth():
    fig = Figure()
    update = figures.draw_schedule(fig, epochs=3, steps_per_epoch=10)
    r = experiments.exp_lr_curve(0.1, 5e-3, 0.9, epochs=3, steps_per_epoch=10, every=4)
    update(r)
    ax = fig.axes[0]
    assert_line(ax.lines[0], r["epoch"], r["etas"])
    assert ax.texts[0].get_text() == f"growth per epoch: ×{r['growth']:.4g}"
    assert ax.get_xlim() == (0, 3) and ax.get_xlabel() == "epoch (10 steps each)"


def test_draw_distance_and_draw_toy_show_their_results():
    fig = Figure()
    figures.draw_distance(fig, steps=4)({"step": np.arange(4), "distance": np.array([0, 1e-20, 1e-9, 1e-5])})
    assert_line(fig.axes[0].lines[0], np.arange(4), [1e-17, 1e-17, 1e-9, 1e-5])  # floored
    fig = Figure()
    r = {"step": np.array([0, 5, 10]), "error": np.array([0.4, 0.2, 0.1]), "norm": np.array([1.0, 2, 3])}
    figures.draw_toy(fig, steps=10)(r)
    assert_line(fig.axes[0].lines[0], r["step"], r["error"])
    assert_line(fig.axes[1].lines[0], r["step"], r["norm"])


def fake_runs(keys, steps=6, p=4, seed=0):
    g = np.random.default_rng(seed)
    return {k: {"step": np.arange(steps), "theta_a": g.standard_normal((steps, p)),
                "theta_b": g.standard_normal((steps, p)), "alpha": 0.9 + 0.01 * i}
            for i, k in enumerate(keys)}


def test_equivalence_figure_draws_distances_control_and_norm_ratios(close_figures):
    f64, f32 = torch.float64, torch.float32
    runs = fake_runs([(0.0, f64), (0.0, f32), (0.9, f64), (0.9, f32)])
    fig = figures.equivalence(runs, control=0.9)
    left, right = fig.axes
    assert len(left.lines) == 5                                    # 4 runs + the control
    for line, r in zip(left.lines, runs.values()):
        assert_line(line, r["step"], np.maximum(experiments.unit_distance(r["theta_a"], r["theta_b"]), 1e-17))
    ctrl = experiments.unit_distance(runs[0.9, f32]["theta_a"], runs[0.9, f64]["theta_a"])
    assert_line(left.lines[4], runs[0.9, f64]["step"], np.maximum(ctrl, 1e-17))
    assert [ln.get_linestyle() for ln in left.lines[:4]] == ["-", "--", "-", "--"]
    measured = right.lines[0:4:2]                                  # float64 runs only
    for line, key in zip(measured, [(0.0, f64), (0.9, f64)]):
        r = runs[key]
        ratio = np.linalg.norm(r["theta_b"], axis=1) / np.linalg.norm(r["theta_a"], axis=1)
        assert_line(line, r["step"], ratio)
    assert_line(right.lines[3], runs[0.9, f64]["step"], 0.92 ** -np.arange(6.0))
    assert len(figures.equivalence(runs, control=None).axes[0].lines) == 4


def test_learning_rates_figure_draws_each_schedule(close_figures):
    runs = {"a": (np.array([0.1, 0.1, 0.01, 0.01]), 1e-2), "b": (np.array([1.0, 2.0, 4.0, 8.0]), 0.0)}
    ax = figures.learning_rates(runs, steps_per_epoch=2).axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["a", "b"]
    for line, (etas, _) in zip(ax.lines, runs.values()):
        assert_line(line, np.arange(4) / 2, etas)
    assert ax.get_xlim() == (0, 2)


def test_schedule_runs_figure_draws_seed_means(close_figures):
    g = np.random.default_rng(1)
    results = {name: [{"step": np.array([0, 4, 8]), "test_accuracy": g.uniform(size=3),
                       "weight_norm_sq": g.uniform(1, 2, (3, 5))} for _ in range(3)]
               for name in ("x", "y")}
    acc, norm = figures.schedule_runs(results, 4, 2, milestones=(1, 1.5), layer=2).axes
    for k, rs in enumerate(results.values()):
        assert_line(acc.lines[k], [0, 1, 2], np.mean([r["test_accuracy"] for r in rs], 0))
        assert_line(norm.lines[k], [0, 1, 2],
                    np.mean([np.sqrt(r["weight_norm_sq"][:, 2]) for r in rs], 0))
    assert [ln.get_xdata()[0] for ln in acc.lines[2:]] == [1, 1.5]  # the decays, dotted


def test_equilibrium_figure_draws_running_means_and_predictions(close_figures):
    g = np.random.default_rng(2)
    points = [{"eta": 0.1, "weight_decay": 1e-2, "momentum": m, "predicted": p,
               "step_sq": g.uniform(1, 2, 9), "norm_sq": g.uniform(3, 4, 9)}
              for m, p in ((0.0, 2e-3), (0.5, 1e-3))]
    ax = figures.equilibrium(points, window=3).axes[0]
    for k, r in enumerate(points):
        ratio = r["step_sq"][1:] / r["norm_sq"][:-1]
        smooth = [ratio[i:i + 3].mean() for i in range(6)]
        x, y = data_of(ax.lines[2 * k])
        np.testing.assert_array_equal(x, np.arange(6) + 3)
        np.testing.assert_allclose(y, smooth, rtol=1e-14)
        assert list(ax.lines[2 * k + 1].get_ydata()) == [r["predicted"]] * 2


def test_toy_runs_figure_draws_error_and_norm(close_figures):
    runs = {"a": {"error": np.array([0.3, 0.2, 0.1]), "norm": np.array([1.0, 0.5, 0.25])},
            "b": {"error": np.array([0.4, 0.4, 0.3]), "norm": np.array([1.0, 2.0, 3.0])}}
    err, norm = figures.toy_runs(runs).axes
    for k, r in enumerate(runs.values()):
        assert_line(err.lines[k], np.arange(3), r["error"])
        assert_line(norm.lines[k], np.arange(3), r["norm"])


def test_monotone_bound_is_what_the_recursion_leaves():
    """Theorem C.1 on a float64 run without weight decay (TEXP of a step decay, started
    with Theorem 2.9's ṽ_0): R_{t+1} − R_t = η_t Q_t with Q_t unrolled by hand from the
    recorded steps D_t, and the bound is exactly what is left once the D terms (all >= 0)
    are dropped. Fails with γ^t for γ^{t+1}, without the 2, or with the sign of ⟨θ_0, v_0⟩
    flipped."""
    X, y = gaussian_data(n=200, d=12, classes=3)
    eta, lam, gamma, T = 0.2, 1e-2, 0.9, 60
    etas = schedules.texp(schedules.step_decay(eta, T, [30]), lam, gamma)
    make = lambda seed: networks.ScaleInvariantMLP((12, 16, 3), seed)  # noqa: E731
    r = experiments.paired_runs((X, y), etas, 0.0, etas, 0.0, gamma, make_model=make,
                                init_b=experiments.exp_lr_momentum(eta, lam, gamma),
                                batch_size=20)
    alpha = schedules.exp_lr_alpha(eta, lam, gamma)
    for theta, coef in ((r["theta_a"], 0.0), (r["theta_b"], -(1 - alpha) / (alpha * eta))):
        R, D = np.sum(theta ** 2, 1), np.sum(np.diff(theta, axis=0) ** 2, 1)
        dot = coef * R[0]                                   # ⟨θ_0, v_0⟩ with v_0 = coef·θ_0
        free = np.empty(T)                                  # Q_t without its bound part
        free[0] = D[0] / etas[0]
        for t in range(1, T):
            free[t] = gamma * free[t - 1] + D[t] / etas[t] + gamma * D[t - 1] / etas[t - 1]
        bound = norms.monotone_bound(etas, gamma, dot)
        np.testing.assert_allclose(np.diff(R), etas * free + bound, rtol=0, atol=1e-12 * R.max())
        slack = norms.monotone_slack(R, etas, gamma, dot)
        np.testing.assert_allclose(slack, etas * free / R[:-1], rtol=0, atol=1e-12)
        assert slack.min() > -1e-12
    assert np.all(np.diff(np.sum(r["theta_b"] ** 2, 1)) > 0)   # ṽ_0 points inwards: growth


def test_paper_schedules_constant_eta_with_wd_divided_is_texp_minus_up_to_entries():
    """Figure 6's pair: constant η with λ ÷10 per phase, translated exactly (TEXP++ from
    α_0), grows like TEXP−− of the step decay up to the first entry; at each entry the two
    part at first order in ηΔλ (the momentum correction of Theorem B.2), and the gap then
    relaxes geometrically at TEXP++'s rate γ/α_I². The exp schedules are exp_lr and
    exp_lr·0.1^k; every schedule without WD starts with ṽ_0. Fails with λ divided one step
    late or by 100, or with the ÷10 at the wrong epochs."""
    setup = replace(comparisons.SCHEDULE_SETUPS["cpu"], epochs=8, milestones=(4, 6))
    spe = 10
    runs = comparisons.paper_schedules(setup, spe)
    eta, lam, gamma = setup.eta, setup.weight_decay, setup.momentum
    etas, lams = runs["constant η, WD ÷10"]
    assert np.all(etas == eta)
    np.testing.assert_allclose(lams, lam * 0.1 ** np.searchsorted([40, 60], np.arange(80), "right"))
    plus = schedules.texp_plus(etas, lams, gamma, schedules.exp_lr_alpha(eta, lam, gamma))[0]
    minus = runs["TEXP−−"][0]
    off = np.abs(np.diff(np.log(plus)) - np.diff(np.log(minus)))
    assert np.all(off[:39] < 1e-12)                         # the same run up to the entry
    assert np.all(off[[39, 59]] > 1e-3)                     # first order in ηΔλ at each entry
    for end, l in ((58, lam / 10), (78, lam / 100)):        # then the gap relaxes at TEXP++'s
        a = schedules.exp_lr_alpha(eta, l, gamma)           # contraction γ/α_I² per step
        assert off[end] / off[end - 1] == pytest.approx(gamma / a ** 2, rel=1e-2)
    exp = schedules.exp_lr(eta, lam, gamma, 80)
    np.testing.assert_allclose(runs["exp"][0], exp, rtol=1e-15)
    np.testing.assert_allclose(runs["exp, ÷10 at decays"][0] / exp,
                               0.1 ** np.searchsorted([40, 60], np.arange(80), "right"), rtol=1e-14)
    assert {k for k, v in runs.items() if len(v) == 3 and v[2] is not None} == \
        {"TEXP", "TEXP−−", "exp", "exp, ÷10 at decays", "exp-cosine"}
