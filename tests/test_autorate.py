"""lib.autorate.theory and lib.autorate.experiments: the claims of the auto rate-tuning chapter, checked on small networks.

Identities are checked in float64 against independent computations (autograd on copies
of the model, the training loop itself) or against the defining equations.
"""

import copy

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lib import stack, train
from lib.autorate import experiments, figures, theory
from lib.synthetic import gaussian_classification
from lib.train import TrainConfig
from helpers import assert_line, direct_loss_and_grads, net, tiny


# --- 2. norm growth ---------------------------------------------------------------------

@pytest.mark.parametrize("batch_size, lam", [(None, 0.0), (16, 0.05)])
def test_norm_identity_holds_for_gd_and_sgd_with_weight_decay(f64, batch_size, lam):
    eta = 3.0
    config = TrainConfig(steps=30, batch_size=batch_size, eta={"w": eta, "g": 0.1},
                         weight_decay={"w": lam, "g": 0.0})
    h = train.train(net(), tiny(), config, bar=False)
    norm_sq = h.weight_norm_sq["w"].sum(1)
    predicted = theory.next_norm_sq(norm_sq[:-1], h.grad_norm_sq["w"][:-1], eta, lam)
    np.testing.assert_allclose(predicted, norm_sq[1:], rtol=1e-10)


def test_norm_identity_fails_without_normalisation(f64):
    h = train.train(net("none"), tiny(), TrainConfig(steps=10, eta={"w": 1.0, "g": 0.1}), bar=False)
    norm_sq = h.weight_norm_sq["w"].sum(1)
    predicted = theory.next_norm_sq(norm_sq[:-1], h.grad_norm_sq["w"][:-1], 1.0)
    assert np.abs(predicted / norm_sq[1:] - 1).max() > 1e-4


def test_equilibrium_effective_eta_is_a_fixed_point_of_the_norm_recursion():
    eta, lam, gv = 0.7, 3e-3, 12.0
    G = eta / theory.equilibrium_effective_eta(eta, lam, gv)
    np.testing.assert_allclose(theory.next_norm_sq(G, gv / G, eta, lam), G, rtol=1e-12)
    # only the product ηλ matters (for a fixed ‖∇_v‖²)
    np.testing.assert_allclose(theory.equilibrium_effective_eta(2 * eta, lam / 2, gv),
                               theory.equilibrium_effective_eta(eta, lam, gv), rtol=1e-12)


def test_constant_gradient_recursion_obeys_the_exercise_bounds():
    G0, eta, gv, T = 5.0, 30.0, 2.0, 500
    G = theory.constant_gradient_norm_sq(G0, eta, gv, T)
    t = np.arange(T + 1)
    lower = G0**2 + 2 * eta**2 * gv * t
    assert np.all(G**2 >= lower * (1 - 1e-12))
    assert np.all(G**2 <= lower + t * eta**4 * gv**2 / G0**2)
    np.testing.assert_allclose(eta / G[-1], 1 / np.sqrt(2 * gv * T), rtol=0.05)  # η-free limit


# --- 4. the constant C(η_w): summed Lemma 2.4 and Lemma A.2 ---------------------------------

def _own_gd(model, X, y, eta_w, eta_g, steps):
    """Plain GD by autograd on a copy (not lib.train): Σ_t ‖w_t‖²‖∇_w F‖², Σ_t ‖∇_w F‖², ‖w_T‖²."""
    model = copy.deepcopy(model)
    ids = set(map(id, model.groups()["w"]))
    params = dict(model.named_parameters())
    w = [n for n, p in params.items() if id(p) in ids]
    sums = np.zeros(2)
    for _ in range(steps):
        _, grads = direct_loss_and_grads(model, X, y)
        wsq = sum(params[n].pow(2).sum().item() for n in w)
        gsq = sum(grads[n].pow(2).sum().item() for n in w)
        sums += [wsq * gsq, gsq]
        with torch.no_grad():
            for n, p in params.items():
                p -= (eta_w if n in w else eta_g) * grads[n]
    return sums, sum(p.pow(2).sum().item() for p in model.groups()["w"])


@pytest.mark.parametrize("eta_w", [1e-2, 1.0, 1e2])
def test_summed_growth_bound_sandwiches_the_intrinsic_sum_on_every_horizon(f64, eta_w):
    steps, model, (X, y) = 25, net(), tiny()
    config = TrainConfig(steps=steps, eta={"w": eta_w, "g": 0.1})
    h = train.train(copy.deepcopy(model), (X, y), config, bar=False)
    norm_sq = h.weight_norm_sq["w"].sum(1)
    sides = theory.summed_growth_bound(norm_sq, h.grad_norm_sq["w"], eta_w)
    (grad_v, grad_w), last = _own_gd(model, X, y, eta_w, 0.1, steps)  # independent loop
    np.testing.assert_allclose([sides["grad_v_sum"][-1], sides["grad_w_sum"][-1], norm_sq[-1]],
                               [grad_v, grad_w, last], rtol=1e-7)
    # round-off of ‖w_T‖² − ‖w_0‖² in float64, T + 1 rounded updates of ‖w‖²
    slack = 4 * (np.arange(steps + 1) + 1) * np.finfo(float).eps * norm_sq**2 / eta_w**2
    np.testing.assert_allclose(sides["growth"], sides["grad_w_sum"], rtol=0,
                               atol=slack.max() / norm_sq.min())  # the identity
    assert np.all(sides["lower"] - slack <= sides["grad_v_sum"])
    assert np.all(sides["grad_v_sum"] <= sides["bound"] + slack)
    assert sides["bound"][-1] > 1.01 * sides["grad_v_sum"][-1] or eta_w < 1  # not an identity


def test_norm_budget_is_half_the_loss_paid_when_the_effective_rate_is_small():
    """F(w) = ½ wᵀAw/‖w‖² is scale-invariant; with η/‖w‖² small every step lowers F by
    η‖∇F‖²(1 + O(η‖A‖/‖w‖²)), while ‖w‖² grows by η²‖∇F‖²: the ratio is ½."""
    A, eta = np.diag([1.0, 2.0, 3.0, 5.0]), 1e-3
    w = np.array([1.0, 1.0, 1.0, 1.0]) / 2  # ‖w_0‖² = 1
    F = lambda w: 0.5 * w @ A @ w / (w @ w)  # noqa: E731
    norm_sq, loss = [], []
    for _ in range(2000):
        norm_sq.append(w @ w), loss.append(F(w))
        w = w - eta * (A @ w - 2 * F(w) * w) / (w @ w)
    out = theory.norm_budget(np.array(norm_sq), np.array(loss), eta, start=0)
    assert abs(out["ratio"] - 0.5) < 0.5 * 4 * eta * 4.0  # within O(η (λ_max − λ_min)/‖w‖²)
    assert out["later_growth"] == out["last"] - out["first"] == norm_sq[-1] - norm_sq[0]
    np.testing.assert_allclose(out["loss_budget"], 2 * eta * (loss[0] - loss[-1]), rtol=1e-15)


# --- 3. Theorem 2.5 -----------------------------------------------------------------------

def test_sphere_iteration_reproduces_gradient_descent(f64):
    model = net(width=10)
    before = copy.deepcopy(model.state_dict())
    r = theory.sphere_vs_gd(model, tiny(), eta_w=10.0, eta_g=0.1, steps=20)
    assert r["step_gap"].max() < 1e-13
    assert r["path_gap"].max() < 1e-10
    np.testing.assert_allclose(r["G"], r["norm_sq"], rtol=1e-10)
    np.testing.assert_allclose(r["loss_sphere"], r["loss_gd"], rtol=1e-10)
    assert r["norm_sq"][-1] > 2 * r["norm_sq"][0]  # a step size where the norm really grows
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), "the model must be left unchanged"


def test_sphere_iteration_matches_one_uninterrupted_training_run(f64):
    """Loss and G_t of the sphere iteration against a single 15-step run of lib.train."""
    model, X = net(width=10), tiny()
    r = theory.sphere_vs_gd(model, X, 5.0, 0.05, 15)
    h = train.train(model, X, TrainConfig(steps=15, eta={"w": 5.0, "g": 0.05}), bar=False)
    np.testing.assert_allclose(r["loss_sphere"], h.loss, rtol=1e-10)
    np.testing.assert_allclose(r["G"], h.weight_norm_sq["w"].sum(1), rtol=1e-10)


# --- 4. Theorem 3.1 ---------------------------------------------------------------------

def test_intrinsic_gradient_is_the_gradient_at_the_normalised_point(f64):
    X, y = tiny()
    model = net(init_scale=7.0)
    h = train.train(copy.deepcopy(model), (X, y), TrainConfig(steps=1), bar=False)
    unit = copy.deepcopy(model)
    with torch.no_grad():
        norm = torch.sqrt(sum(p.pow(2).sum() for p in unit.groups()["w"]))
        for p in unit.groups()["w"]:
            p.div_(norm)
    _, grads = direct_loss_and_grads(unit, X, y)
    expected = sum((g ** 2).sum().item() for g in grads.values())
    np.testing.assert_allclose(theory.intrinsic_grad_sq(h)[0], expected, rtol=1e-10)


def test_gd_with_eta_w_1e3_converges_and_the_plain_network_does_not(f64):
    X, y = tiny(n=48)
    config = TrainConfig(steps=400, eta={"w": 1e3, "g": 0.2})
    h = train.train(net(width=8), (X, y), config, bar=False)
    assert not h.diverged
    best = theory.running_min(theory.intrinsic_grad_sq(h))
    T = np.arange(1, len(best) + 1)
    assert best[-1] < 1e-2 * best[0]
    # the 1/T bound: T · min_{t<T} ‖∇L‖² stops growing (late maximum below the early one)
    assert (T * best)[len(T) // 2:].max() <= (T * best)[: len(T) // 2].max()
    plain = train.train(net("none", width=8), (X, y), config, bar=False)
    assert theory.blew_up(plain.loss)


def test_running_min_and_blew_up_against_loops():
    rng = np.random.default_rng(0)
    a = rng.random((3, 50))
    expected = np.array([[a[i, : t + 1].min() for t in range(50)] for i in range(3)])
    np.testing.assert_array_equal(theory.running_min(a), expected)
    a[1, 10] = np.nan
    with_nan = theory.running_min(a)[1]
    assert np.isnan(with_nan[10:]).all() and not np.isnan(with_nan[:10]).any()
    loss = np.array([[1.0, 2.0, 9.0], [1.0, 11.0, 0.5], [1.0, np.inf, 1.0]])
    np.testing.assert_array_equal(theory.blew_up(loss), [False, True, True])


def test_rate_sweep_runs_are_the_training_loop_runs(f64, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path))
    X, y = tiny()
    res = experiments.rate_sweep((X, y), [0.1, 100.0], 0.05, 12, 10, seeds=[0, 1], cache="t")
    assert res.metrics["loss"].shape == (2, 1, 1, 2, 13)
    alone = train.train(theory.make_mlp(seed=1, width=10, n_in=8, n_out=3), (X, y),
                        TrainConfig(steps=12, eta={"w": 100.0, "g": 0.05}), bar=False)
    np.testing.assert_allclose(res.sel(eta_w=100.0, seed=1)["loss"][0, 0], alone.loss, rtol=1e-10)
    again = experiments.rate_sweep((X, y), [0.1, 100.0], 0.05, 12, 10, seeds=[0, 1], cache="t")
    np.testing.assert_array_equal(again.metrics["loss"], res.metrics["loss"])


def group_norm_sq(model) -> float:
    """‖w‖² of a model's group w, read off its parameters (not from a training record)."""
    return sum(p.detach().pow(2).sum().item() for p in model.groups()["w"])


def test_rate_curves_bn_survives_where_plain_blows_up(f64):
    """Survival, and the norm and effective rate it reports against the weights of lone
    runs of the training loop. Stack and lone run sum in different orders; at η_w = 1e4
    the first step sets ‖w_1‖² ≈ η_w²‖∇F‖² and later steps barely move w (effective rate
    ~1e-6), so round-off of ~1e-15 per step stays far below the 1e-9 allowed."""
    X, y = tiny()
    etas = [1e-2, 1e4]
    r = experiments.rate_curves((X, y), eta_w=etas, eta_g=0.1, steps=30, width=10)
    assert not theory.blew_up(r["loss_bn"]).any()
    np.testing.assert_array_equal(theory.blew_up(r["loss_plain"]), [False, True])
    for k, eta in enumerate(etas):
        model = theory.make_mlp(width=10, n_in=8, n_out=3)
        start = group_norm_sq(model)
        train.train(model, (X, y), TrainConfig(steps=30, eta={"w": eta, "g": 0.1}), bar=False)
        norm_sq = np.array([start, group_norm_sq(model)])       # ‖w_0‖², ‖w_T‖²
        np.testing.assert_allclose(r["norm_sq"][k, [0, -1]], norm_sq, rtol=1e-9)
        np.testing.assert_allclose(r["effective_eta"][k, [0, -1]], eta / norm_sq, rtol=1e-9)
    assert r["norm_sq"][1, -1] > 1e4 * r["norm_sq"][1, 0]  # η_w = 1e4 really grew the norm


def test_rate_curves_stack_equals_separate_runs(f64):
    """The stack (vmap) and a lone run sum in different orders. Over these 15 steps a
    relative perturbation of the start grows at most ~10-fold, except for the plain
    network at η_w = 50, where it grows ~1e4-fold (measured: 1e-12 became 8e-9). Round-off
    of up to ~1e-15 per step (a few ulps of each sum) then allows 15·1e4·1e-15 ≈ 2e-10
    there and ~2e-13 elsewhere; a wrong step would differ at O(1)."""
    X, y = tiny()
    both = experiments.rate_curves((X, y), eta_w=[0.5, 50.0], eta_g=0.1, steps=15, width=10)
    for k, eta in enumerate([0.5, 50.0]):
        for norm, key in (("bn_smooth", "loss_bn"), ("none", "loss_plain")):
            h = train.train(theory.make_mlp(width=10, norm=norm, n_in=8, n_out=3), (X, y),
                            TrainConfig(steps=15, eta={"w": eta, "g": 0.1}), bar=False)
            chaotic = norm == "none" and eta == 50.0
            np.testing.assert_allclose(both[key][k], h.loss, rtol=1e-8 if chaotic else 1e-10)


# --- 5. SGD ---------------------------------------------------------------------------

def unit_scaled_grads(model, X, y):
    """Loss and the gradient at (V; g) by plain autograd on a copy: rows of group w times ‖w_k‖."""
    loss, grads = direct_loss_and_grads(model, X, y)
    w = {id(p) for p in model.groups()["w"]}
    parts = [grads[n] * p.detach().norm(dim=-1, keepdim=True) if id(p) in w else grads[n]
             for n, p in model.named_parameters()]
    return loss, torch.cat([t.flatten() for t in parts])


def test_every_unit_of_the_smoothed_network_is_scale_invariant(f64):
    """Each row w_k of a normalised layer is orthogonal to its own gradient, which is what
    lets Theorem 4.2 normalise every unit on its own."""
    X, y = tiny()
    model = net(init_scale=3.0)
    _, grads = direct_loss_and_grads(model, X, y)
    for n, p in model.named_parameters():
        if any(p is q for q in model.groups()["w"]):
            cos = (p * grads[n]).sum(1) / (p.norm(dim=1) * grads[n].norm(dim=1))
            assert cos.abs().max() < 1e-12


def test_expected_gradients_match_autograd_batch_by_batch(f64):
    X, y = tiny()
    models = [net(seed=s, init_scale=s + 0.5) for s in range(2)]
    stk = stack.from_models(models)
    before = {n: b.clone() for n, b in stk.buffers.items()}
    batches = experiments.random_batches(len(y), 10, 4, seed=3)
    r = experiments.expected_gradients(stk, (X, y), batches)
    for k, model in enumerate(models):
        per = [unit_scaled_grads(model, X[b], y[b]) for b in batches]
        G = torch.stack([g for _, g in per])
        pairs = (G @ G.T).sum() - (G * G).sum()      # sum of <g_i, g_j> over i != j
        np.testing.assert_allclose(r["grad_sq"][k], (pairs / (4 * 3)).item(), rtol=1e-10)
        np.testing.assert_allclose(r["loss"][k], np.mean([f for f, _ in per]), rtol=1e-12)
        norm_sq = sum(p.pow(2).sum() for p in model.groups()["w"]).item()
        np.testing.assert_allclose(r["norm_sq"][k], norm_sq, rtol=1e-12)
    assert all(torch.equal(before[n], stk.buffers[n]) for n in before)  # running stats untouched


def test_expected_gradients_in_chunks_equal_one_pass(f64, monkeypatch):
    X, y = tiny()
    stk = stack.from_models([net(seed=s) for s in range(3)])
    batches = experiments.random_batches(len(y), 8, 7, seed=1)
    whole = experiments.expected_gradients(stk, (X, y), batches)
    monkeypatch.setattr(experiments, "CHUNK_ELEMENTS", 1)          # one batch at a time
    # the sums over 7 batches are regrouped: ~7 ulps, times ‖g_i‖²/‖ḡ‖² ≈ 5 (measured) for
    # the cancellation in grad_sq: ~4e-15, far below 1e-12
    for key, value in experiments.expected_gradients(stk, (X, y), batches).items():
        np.testing.assert_allclose(value, whole[key], rtol=1e-12)


def test_unit_norms_cover_every_output_unit_of_matrices_and_filters():
    for shape in [(2, 3, 4), (2, 3, 4, 5, 5)]:                      # (K, out, in[, kh, kw])
        w = torch.randn(shape)
        n = experiments._unit_norms(w)
        assert n.shape == (2, 1, 3) + (1,) * (len(shape) - 2)
        torch.testing.assert_close(n[1, 0, 2].flatten()[0], w[1, 2].norm())


def test_expected_gradient_estimate_is_unbiased(f64):
    """Over 6 examples in batches of 3 there are 20 batches: the exact ‖E_B ∇F_B‖² is their
    mean gradient's squared norm, and random batches estimate it without bias."""
    X, y = tiny(n=6)
    model = net(seed=1)
    subsets = torch.tensor(list(__import__("itertools").combinations(range(6), 3)))
    mean = torch.stack([unit_scaled_grads(model, X[b], y[b])[1] for b in subsets]).mean(0)
    exact = mean.pow(2).sum().item()
    r = experiments.expected_gradients(stack.from_models([model]), (X, y),
                              experiments.random_batches(6, 3, 4000, seed=0))
    assert abs(r["grad_sq"][0] / exact - 1) < 0.03
    plain = experiments.expected_gradients(stack.from_models([model]), (X, y), subsets)  # not i.i.d.
    assert plain["grad_sq"][0] < exact  # pairs without replacement: the diagonal is missing


def test_random_batches_are_sets_of_distinct_examples():
    b = experiments.random_batches(10, 4, 50, seed=0)
    assert b.shape == (50, 4) and b.min() >= 0 and b.max() < 10
    assert all(len(set(row.tolist())) == 4 for row in b)
    assert len({tuple(sorted(row.tolist())) for row in b}) > 30


def test_sgd_schedules_of_theorem_4_2():
    s = theory.sgd_schedules(0.25, 5)
    np.testing.assert_allclose(s["w"], [1, 2 ** -0.25, 3 ** -0.25, 4 ** -0.25, 5 ** -0.25])
    np.testing.assert_allclose(s["g"], 1 / np.sqrt(np.arange(1, 6)))


def test_segmented_training_continues_the_schedule(f64):
    """With full batches the segmented SGD runner equals one uninterrupted training run."""
    X, y = tiny()
    r = experiments.sgd_convergence((X, y), [10.0], [0.5], eta_g=0.2, steps=40, batch_size=len(y),
                                    seeds=[0], width=10, n_evals=6, n_batches=2)
    sc = theory.sgd_schedules(0.5, 40)
    model = theory.make_mlp(seed=0, width=10, n_in=8, n_out=3)
    h = train.train(copy.deepcopy(model), (X, y),
                    TrainConfig(steps=40, eta={g: r * sc[g] for g, r in (("w", 10.0), ("g", 0.2))}),
                    bar=False)
    np.testing.assert_allclose(r["loss"][0, 0, 0], h.loss[r["step"]], rtol=1e-10)
    np.testing.assert_allclose(r["norm_sq"][0, 0, 0],
                               h.weight_norm_sq["w"].sum(1)[r["step"]], rtol=1e-10)
    # a full batch in any order is the same batch: the estimate is the full gradient at (V; g)
    np.testing.assert_allclose(r["grad_sq"][0, 0, 0, 0],
                               unit_scaled_grads(model, X, y)[1].pow(2).sum().item(), rtol=1e-10)


def test_sgd_reaches_the_inverse_square_root_rate_for_every_eta_w():
    """Theorem 4.2 on the chapter's small problem (fewer steps and seeds): the smallest
    gradient norm² falls while T^(1/2) times it stays bounded, and with a constant η_w the
    effective rates of η_w four orders of magnitude apart meet."""
    d = gaussian_classification(2000, 10, n_classes=10, seed=0, label_noise=0.3, device="cpu")
    etas = np.array([0.1, 10.0, 1000.0])
    r = experiments.sgd_convergence(d, etas, [0.0, 0.5], eta_g=0.5, steps=2000, batch_size=50,
                                    seeds=[0, 1], width=16, depth=1, n_evals=12, n_batches=200)
    T = r["step"] + 1
    best = theory.running_min(r["grad_sq"].mean(2))
    i = np.searchsorted(T, 100)
    assert np.all(best[..., -1] < best[..., i] / 2.5)                    # √16 = 4 predicted
    assert np.all((best * np.sqrt(T))[..., i:].max(-1) < 2 * (best * np.sqrt(T))[..., i])
    eff = (etas[:, None, None] / r["norm_sq"][:, 0]).mean(1)           # α = 0: (η_w, T)
    assert eff[:, 1].max() / eff[:, 1].min() > 50
    assert eff[:, -1].max() / eff[:, -1].min() < 2
    growth = (r["norm_sq"][..., -1] / r["norm_sq"][..., 1]).mean(-1)  # ‖w_T‖²/‖w_1‖²: (η_w, α)
    assert np.all(growth[:, 1] < growth[:, 0]) and np.all(growth[:, 1] < 5)  # α = ½: little


def test_without_label_noise_sgd_fits_the_images_and_the_gradient_collapses():
    """Exercise 6, smaller: on 200 Fashion-MNIST images the network fits every image, the
    noise vanishes with the loss and T^(1/2)·min falls far below its peak; η_w = 1e3 with
    α = ½ is still fitting, its T^(1/2)·min still growing."""
    from lib import data
    fm = data.fashion_mnist(n=200, device="cpu", download=False)
    r = experiments.sgd_convergence(fm, [10.0, 1e3], [0.0, 0.5], eta_g=0.5, steps=2000, batch_size=50,
                                    seeds=[0], width=20, depth=2, n_evals=15, n_batches=100)
    T = r["step"] + 1
    scaled = theory.running_min(r["grad_sq"].mean(2)) * np.sqrt(T)  # (η_w, α, T)
    loss = r["loss"].mean(2)
    assert loss[0, 0, -1] < 0.05 and scaled[0, 0, -1] < 0.1 * scaled[0, 0].max()
    later = scaled[1, 1, np.searchsorted(T, 10):]                     # after the first steps
    assert loss[1, 1, -1] > 0.3 and later[-1] == later.max() > 2 * later.min()


# --- 6. initial scale and weight decay ---------------------------------------------------

@pytest.mark.parametrize("g0, lam", [(0.3, 0.0), (4.0, 0.02)])
def test_initial_scale_r_equals_rate_divided_by_r_squared(f64, g0, lam):
    r = experiments.scale_pair(tiny(), [g0, 1.0], lam, eta_w=2.0, eta_g=0.1, steps=40, width=10,
                                     batch_size=16)
    assert r["loss"].shape == (2, 2, 41)
    loss, norm_sq, eff = (r[k][0] for k in ("loss", "norm_sq", "effective_eta"))
    np.testing.assert_allclose(loss[0], loss[1], rtol=1e-10)
    np.testing.assert_allclose(norm_sq[0], g0**2 * norm_sq[1], rtol=1e-10)
    np.testing.assert_allclose(eff[0], eff[1], rtol=1e-10)
    # g₀ = 1: the same run twice within one stack. Over 40 steps a perturbation grows
    # < 10-fold (measured), so round-off of ~1e-15 per step stays below 40·10·1e-15 = 4e-13
    np.testing.assert_allclose(r["loss"][1, 0], r["loss"][1, 1], rtol=1e-12)
    assert np.abs(r["loss"][0, 0] - r["loss"][1, 0]).max() > 1e-3              # g₀ changes the run


def test_keeping_lambda_when_rescaling_breaks_the_equivalence(f64):
    X, y = tiny()
    g0, lam = 4.0, 0.02
    a = train.train(net(width=10, init_scale=g0), (X, y), TrainConfig(
        steps=40, eta={"w": 2.0, "g": 0.1}, weight_decay={"w": lam, "g": 0.0}), bar=False)
    b = train.train(net(width=10), (X, y), TrainConfig(
        steps=40, eta={"w": 2.0 / g0**2, "g": 0.1}, weight_decay={"w": lam, "g": 0.0}), bar=False)
    assert np.abs(a.loss - b.loss).max() > 1e-4


def test_make_mlp_scales_group_w_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = net(init_scale=3.0), net()
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip(a.groups()["w"], b.groups()["w"]):
        torch.testing.assert_close(p, 3.0 * q)
    for p, q in zip(a.groups()["g"], b.groups()["g"]):
        torch.testing.assert_close(p, q)
    plain = net("none")
    assert len(plain.groups()["w"]) == 4 and len(plain.groups()["g"]) == 2  # hidden W, b; head


# --- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: net(width=0), "width"),
    (lambda: net(init_scale=0.0), "init_scale"),
    (lambda: theory.sphere_vs_gd(net(), tiny(), 0.0, 0.1, 5), "eta_w"),
    (lambda: theory.sphere_vs_gd(net(), tiny(), 1.0, 0.1, 0), "steps"),
    (lambda: theory.sphere_vs_gd(net(), tiny(), 1.0, float("nan"), 5), "eta_g"),
    (lambda: theory.intrinsic_grad_sq({"weight_norm_sq_w": np.ones((5, 2)),
                                        "grad_norm_sq_w": np.ones(4),
                                        "grad_norm_sq_g": np.ones(4)}), "shapes"),
    (lambda: theory.running_min(np.ones((2, 0))), "at least one"),
    (lambda: theory.next_norm_sq(1.0, 1.0, 0.1, -1e-3), "weight_decay"),
    (lambda: theory.equilibrium_effective_eta(1.0, 0.0, 1.0), "weight_decay"),
    (lambda: theory.constant_gradient_norm_sq(1.0, 0.0, 1.0, 5), "eta"),
    (lambda: theory.blew_up([1.0, 2.0], factor=0), "factor"),
    (lambda: theory.sgd_schedules(0.7, 10), "alpha"),
    (lambda: theory.eval_steps(10, 0), "n_evals"),
    (lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0], 0.1, 10, 1000, [0], 10), "batch_size"),
    (lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0], 0.1, 10, 8, [0], 10, n_batches=1),
     "n_batches"),
    (lambda: experiments.random_batches(5, 6, 3), "batch_size"),
    (lambda: experiments.expected_gradients(stack.from_models([net()]), tiny(), torch.zeros(1, 4).long()),
     "M >= 2"),
    (lambda: experiments.scale_pair(tiny(), 1.0, -0.1, 1.0, 0.1, 5, 10, 8), "weight_decay"),
    (lambda: experiments.scale_pair(tiny(), [1.0, 0.0], 0.0, 1.0, 0.1, 5, 10, 8), "g0"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- figures: each draws exactly the arrays it is given ------------------------------------

RNG = np.random.default_rng(0)


def test_invariance_gaps_draws_each_networks_gaps_floored(close_figures):
    scales = np.array([0.1, 1.0, 10.0])
    gaps = {norm: {"scale": scales, "loss_gap": RNG.random(3) * [1, 0, 1],
                   "grad_gap": RNG.random(3), "cosine": np.zeros(3)} for norm in ("bn_smooth", "bn")}
    fig = figures.invariance_gaps(gaps)
    for ax, key in zip(fig.axes, ("loss_gap", "grad_gap")):
        curves = [l for l in ax.lines if len(l.get_xdata()) == 3]
        assert len(curves) == 2
        for line, norm in zip(curves, ("bn_smooth", "bn")):
            assert_line(line, scales, np.maximum(gaps[norm][key], figures.FLOOR))
    only = figures.invariance_gaps({"bn": gaps["bn"]})
    assert [len([l for l in ax.lines if len(l.get_xdata()) == 3]) for ax in only.axes] == [1, 1]


@pytest.mark.parametrize("scales", [np.array([0.5, 2.0]), np.logspace(-4, 4, 33)])
def test_invariance_gaps_round_off_label_stays_inside_its_axes(close_figures, scales):
    """The "float64 round-off" label sits near the left edge of the gradient panel for any
    range of scales (placed at a fixed scale, it fell outside narrow ranges and tight_layout
    gave up with a warning)."""
    gap = {"scale": scales, "loss_gap": np.full(len(scales), 1e-16),
           "grad_gap": np.full(len(scales), 1e-15), "cosine": np.zeros(len(scales))}
    fig = figures.invariance_gaps({"bn": gap})
    fig.canvas.draw()
    ax = fig.axes[1]
    (label,) = [t for t in ax.texts if t.get_text() == "float64 round-off"]
    box, frame = label.get_window_extent(), ax.get_window_extent()
    assert frame.x0 <= box.x0 < box.x1 <= frame.x1 and frame.y0 <= box.y0 < box.y1 <= frame.y1
    assert box.x0 - frame.x0 < 0.15 * frame.width          # near the left edge


def test_norm_growth_draws_the_norm_and_the_effective_rate(close_figures):
    eta, step = np.array([0.1, 10.0]), np.arange(5)
    norm_sq = 1 + RNG.random((2, 5))
    fig = figures.norm_growth(eta, step, norm_sq)
    for k in range(2):
        assert_line(fig.axes[0].lines[k], step, norm_sq[k])
        assert_line(fig.axes[1].lines[k], step + 1, eta[k] / norm_sq[k])
    assert len(fig.axes[0].lines) == len(fig.axes[1].lines) == 2


def test_sphere_vs_gd_draws_both_losses_and_both_gaps(close_figures):
    twin = {"loss_gd": RNG.random(4), "loss_sphere": RNG.random(4),
            "path_gap": np.r_[0.0, RNG.random(3) * 1e-12], "step_gap": RNG.random(3) * 1e-14}
    fig = figures.sphere_vs_gd(twin)
    t = np.arange(4)
    assert_line(fig.axes[0].lines[0], t, twin["loss_gd"])
    assert_line(fig.axes[0].lines[1], t, twin["loss_sphere"])
    assert_line(fig.axes[1].lines[0], t, np.maximum(twin["path_gap"], figures.FLOOR))
    assert_line(fig.axes[1].lines[1], t[1:], twin["step_gap"])


@pytest.mark.parametrize("blew_up", [[False, True, True], [False, False, False]])
def test_gd_rates_draws_minima_and_loss_summaries(close_figures, blew_up):
    eta, step = np.array([1e-2, 1.0, 1e2]), np.arange(12)
    best = RNG.random((3, 12))
    loss_bn, loss_plain = RNG.random((3, 2, 12)), RNG.random((3, 1, 12))
    loss_plain[2, 0, 5:] = np.nan
    fig = figures.gd_rates(eta, step, best, loss_bn, loss_plain, np.array(blew_up))
    top, left, right = fig.axes
    for k in range(3):
        assert_line(top.lines[k], step + 1, best[k])
    assert_line(top.lines[3], step + 1, best[1, 9] * 10 / (step + 1))  # the 1/T guide
    for line, loss in zip(left.lines, (loss_bn, loss_plain)):
        assert_line(line, eta, np.nanmax(loss, -1).mean(1))
    for line, loss in zip(right.lines, (loss_bn, loss_plain)):
        assert_line(line, eta, loss[..., -1].mean(1))
    assert len(left.patches) == any(blew_up)  # the blow-up region without BN, if any
    assert right.get_ylabel() == "loss after 11 steps"


def test_sgd_convergence_draws_every_rate_and_exponent(close_figures):
    eta, alpha, T = np.array([0.1, 10.0, 1e3]), np.array([0.0, 0.5]), np.arange(1, 41)
    eff, best = RNG.random((3, 2, 40)), RNG.random((3, 2, 40))
    fig = figures.sgd_convergence(eta, alpha, T, eff, best, 3)
    for i in range(3):
        for j in range(2):
            assert_line(fig.axes[0].lines[2 * i + j], T[1:], eff[i, j, 1:])
            assert_line(fig.axes[1].lines[2 * i + j], T, best[i, j])
    assert len(fig.axes[1].lines) == 7 and "3 seeds" in fig.axes[1].get_title()


def test_weight_decay_draws_means_over_seeds_and_the_levels(close_figures):
    lambdas, step = [0.0, 0.01], np.arange(6)
    norm_sq, levels = 1 + RNG.random((2, 3, 6)), [np.nan, 0.25]
    fig = figures.weight_decay(lambdas, step, norm_sq, levels, eta_w=2.0)
    for k in range(2):
        assert_line(fig.axes[0].lines[k], step, norm_sq[k].mean(0))
    curves = [l for l in fig.axes[1].lines if len(l.get_xdata()) == 6]
    for k in range(2):
        assert_line(curves[k], step, (2.0 / norm_sq[k]).mean(0))
    flat = [l for l in fig.axes[1].lines if len(l.get_xdata()) == 2]
    assert len(flat) == 1 and set(flat[0].get_ydata()) == {0.25}  # no level for λ = 0


def test_growth_bound_draws_both_sides_and_the_budget(close_figures):
    eta, step = np.array([0.1, 10.0]), np.arange(4)
    sides = {k: 1 + RNG.random((2, 3, 4)) for k in ("grad_v_sum", "bound")}
    keys = ("last", "first", "later_growth", "loss_budget")
    budget = {k: 1 + RNG.random((2, 3)) for k in keys}
    fig = figures.growth_bound(eta, step, sides, budget)
    left, middle, right = fig.axes
    for k in range(2):
        assert_line(left.lines[2 * k], step[1:], sides["grad_v_sum"][k].mean(0)[1:])
        assert_line(left.lines[2 * k + 1], step[1:], sides["bound"][k].mean(0)[1:])
    assert_line(middle.lines[0], eta, sides["grad_v_sum"].mean(1)[:, -1])
    assert_line(middle.lines[1], eta, sides["bound"].mean(1)[:, -1])
    for line, key in zip(right.lines, keys):
        assert_line(line, eta, budget[key].mean(1))


def test_slider_draws_show_the_member_they_are_given():
    fig = Figure()
    update = figures.draw_rates(fig, steps=4)
    r = {"step": np.arange(5), "loss_bn": RNG.random(5), "loss_plain": np.r_[1.0, 2.0, np.inf, np.nan, np.nan],
         "effective_eta": RNG.random(5)}
    update(r)
    (a, b), (c,) = fig.axes[0].lines, fig.axes[1].lines
    assert_line(a, r["step"], r["loss_bn"]), assert_line(b, r["step"], r["loss_plain"])
    assert_line(c, r["step"], r["effective_eta"])
    assert any("diverged at step 2" in t.get_text() for t in fig.axes[0].texts)
    fig = Figure()
    update = figures.draw_scale(fig, steps=4)
    r = {"step": np.arange(5), "norm_sq": RNG.random((2, 5)), "loss": RNG.random((2, 5))}
    update(r)
    for ax, key in zip(fig.axes, ("norm_sq", "loss")):
        assert_line(ax.lines[0], r["step"], r[key][0])
        assert_line(ax.lines[1], r["step"], r[key][1])
