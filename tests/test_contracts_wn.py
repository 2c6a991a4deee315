"""Bad input to lib.wn.networks, lib.wn.training, lib.wn.theory, lib.wn.experiments and lib.wn.figures is refused by
name (ValueError/TypeError), and divergence of training.train is a recorded result."""

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from matplotlib.figure import Figure

from contracts import NAN, Case, parametrize
from lib import scale
from lib.wn import experiments, figures, networks, theory, training

X, Y = experiments.unit_sphere_data(4, 3, seed=0)                  # tiny: 4 unit-norm points in R³
P = networks.init_wn(3, 5, 1.0, seed=0)                         # m = 5 units
K = networks.limit_kernels(X)[0]
SZ = experiments.Sizes(n=4, d=3, width=5, widths=(2, 4), kernel_widths=(2,), mc_samples=10, steps=2,
                       seeds=1, etas=(0.1,), alphas=(1.0,))
RUN = training.train(P, X, Y, 0.1, 2)
RS = experiments.RegimeSweep(np.array([1.0]), np.array([0.1]), np.arange(3), np.ones((1, 1, 1, 3)),
                             np.ones((1, 1, 1, 3)), np.ones((1, 1, 3)), np.ones((1, 1, 4)), np.ones((1, 4)))
TR = experiments.TunedRuns(np.array([1.0]), np.ones((1, 1)), np.full((1, 1), 2.0),
                           0.5 ** np.arange(6.0).reshape(1, 1, 6), np.ones(1), np.full(1, 2.0),
                           0.5 ** np.arange(6.0).reshape(1, 6))
WS = experiments.WidthSweep(np.array([2, 4]), 0.1, *[np.ones((2, 1, 3))] * 2, np.arange(3),
                            *[np.ones((2, 1, 3))] * 4)


def params():
    return {"params": networks.WNParams(P.v.clone(), P.g.clone(), P.c.clone())}


def data(**kw):
    return {"X": X.clone(), "y": Y.clone(), **kw}


def bad_params():
    nan = P.v.clone()
    nan[0, 0] = NAN
    return st.sampled_from([None, P.v, (P.v, P.g, P.c), {"v": P.v}, networks.WNParams(nan, P.g, P.c)])


def bad_shapes(t):
    """Wrong kinds, dtype or shape for a parameter tensor (non-finite ones are allowed)."""
    return st.sampled_from([None, t.tolist(), t.numpy(), t.long(), t[:0], t.unsqueeze(0)])


def bad_kernel():
    asym = K.clone()
    asym[0, 1] += 1e-3                                         # far above round-off
    nan = K.clone()
    nan[1] = NAN
    return st.sampled_from([None, K.tolist(), K.numpy(), asym, nan, K[:, :-1], K.long(), K[:0],
                            K[0]])


def bad_alone(t):
    """Bad variants of a tensor with no partner to mismatch (fewer columns are fine)."""
    nan, inf = t.clone(), t.clone()
    nan.view(-1)[1], inf.view(-1)[2] = NAN, float("inf")
    return st.sampled_from([None, t.tolist(), t.numpy(), "X", t.long(), nan, inf, t[:0],
                            t.unsqueeze(0), t.reshape(-1)[0]])


bad_list = st.sampled_from([None, [], "ab", 3.0, [0.0], [NAN], [-1.0], [None]])
bad_nonempty = st.sampled_from([None, "ab", 3.0, [0.0], [NAN], [-1.0], [None]])  # [] is fine
bad_int_list = st.sampled_from([None, [], "ab", 3, [0], [2.5], [True], [-1]])
bad_curve = st.sampled_from([None, "x", [], [[1.0, 2.0]], [1.0, NAN, 3.0]])

CASES = [
    # lib.wn.networks
    Case(networks.WNParams, lambda: {"v": P.v.clone(), "g": P.g.clone(), "c": P.c.clone()},
         {"v": bad_shapes(P.v), "g": bad_shapes(P.g), "c": bad_shapes(P.c)}),
    Case(networks.init_wn, lambda: dict(n_in=3, width=2, alpha=1.0, seed=0),
         {"n_in": "size", "width": "size", "alpha": "positive", "seed": "seed",
          "dtype": "dtype", "device": "device"}),
    Case(networks.forward, lambda: {**params(), "X": X.clone()}, {"params": bad_params(), "X": "tensor"}),
    Case(networks.gram_matrices, lambda: {**params(), "X": X.clone(), "alpha": 1.0},
         {"params": bad_params(), "X": "tensor", "alpha": "positive"}),
    Case(networks.evolution_kernel, lambda: {**params(), "X": X.clone()},
         {"params": bad_params(), "X": "tensor"}),
    Case(networks.limit_kernels, lambda: {"X": X.clone()}, {"X": "tensor"}),
    Case(networks.kernel_and_pattern, lambda: {"v": P.v.clone(), "g": P.g.clone(), "X": X.clone()},
         {"v": bad_shapes(P.v), "g": bad_shapes(P.g), "X": "tensor"}),
    Case(networks.WNNet, params, {"params": bad_params()}),
    Case(networks.PlainNet, params, {"params": bad_params()}),
    Case(networks.make_module, lambda: dict(seed=0, alpha=1.0, n_in=3, width=2),
         {"seed": "seed", "alpha": "positive", "n_in": "size", "width": "size",
          "normalized": "bool", "dtype": "dtype"}),
    # lib.wn.training
    Case(training.train, lambda: {**params(), **data(), "eta": 0.1, "steps": 1},
         {"params": bad_params(), "X": "tensor", "y": "tensor", "eta": "positive",
          "steps": "size", "normalized": "bool", "log_every": "size", "observe_every": "size"}),
    Case(training.train_batch, lambda: {"params_list": [P], **data(), "etas": [0.1], "steps": 1},
         {"params_list": st.sampled_from([None, [], P, [None], "ab", [P.v]]), "X": "tensor",
          "y": "tensor", "etas": bad_list, "steps": "size", "log_every": "size"}),
    Case(networks.check_inputs, lambda: {"X": X.clone()}, {"X": bad_alone(X)}),
    Case(networks.check_params, params, {"params": bad_params()}),
    Case(networks.check_kernel, lambda: {"name": "K", "K": K.clone()}, {"K": bad_kernel()}),
    Case(training.blow_up_step, lambda: {"h": RUN.history}, {"h": st.sampled_from([None, RUN, {}])}),
    # lib.wn.theory
    Case(theory.plain_ntk, lambda: {"w": P.v.clone(), "X": X.clone()},
         {"w": "tensor", "X": "tensor"}),
    Case(theory.monte_carlo_kernels, lambda: dict(X=X.clone(), samples=4, seed=0, chunk=2),
         {"X": bad_alone(X), "samples": "size", "seed": "seed", "chunk": "size"}),
    Case(theory.least_eigenvalue, lambda: {"K": K.clone()}, {"K": bad_kernel()}),
    Case(theory.largest_eigenvalue, lambda: {"K": K.clone()}, {"K": bad_kernel()}),
    Case(theory.jacobians, lambda: {**params(), "X": X.clone()},
         {"params": bad_params(), "X": "tensor"}),
    Case(theory.plain_jacobian, lambda: dict(w=P.v.clone(), c=P.c.clone(), X=X.clone()),
         {"w": "tensor", "c": "tensor", "X": "tensor"}),
    Case(theory.gram, lambda: {"J": torch.ones(4, 5, 3, dtype=torch.float64)},
         {"J": st.sampled_from([None, [[1.0]], np.ones((4, 5)), torch.ones(4, dtype=torch.float64),
                                torch.ones(4, 5).long(), torch.full((4, 5), NAN),
                                torch.ones(0, 5)])}),
    Case(theory.initial_outputs, lambda: dict(X=X.clone(), alphas=[1.0], width=2),
         {"X": bad_alone(X), "alphas": bad_list, "width": "size", "seed": "seed"}),
    Case(theory.decomposition_errors, lambda: dict(X=X.clone(), alphas=[1.0], width=2),
         {"X": bad_alone(X), "alphas": bad_list, "width": "size", "seed": "seed"}),
    Case(theory.natural_gradient_kernel, lambda: {**params(), "X": X.clone()},
         {"params": bad_params(), "X": "tensor"}),
    Case(theory.radial_cosines, lambda: {**params(), **data()},
         {"params": bad_params(), "X": "tensor", "y": "tensor"}),
    Case(theory.concentration, lambda: dict(X=X.clone(), widths=[2], seeds=1),
         {"X": "tensor", "widths": bad_int_list, "seeds": "size"}),
    # lib.wn.experiments
    Case(experiments.Sizes, lambda: dict(vars(SZ)),
         {"n": "size", "d": "size", "width": "size", "steps": "size", "seeds": "size",
          "mc_samples": "size", "widths": bad_int_list, "kernel_widths": bad_int_list,
          "etas": bad_list, "alphas": bad_list}),
    Case(experiments.sizes, lambda: {"scale": scale.current("cpu")},
         {"scale": st.sampled_from(["cpu", 3, {}, SZ])}),
    Case(experiments.float64_device, lambda: {"device": "cpu"}, {"device": "device"}),
    Case(experiments.unit_sphere_data, lambda: dict(n=3, d=2, seed=0),
         {"n": "size", "d": "size", "seed": "seed", "dtype": "dtype", "device": "device"}),
    Case(experiments.linear_loss, lambda: dict(K=K.clone(), r0=Y.clone(), eta=0.1, steps=2),
         {"K": bad_kernel(), "r0": "tensor", "eta": "positive", "steps": "count"}),
    Case(experiments.predicted_ratio, lambda: dict(K=K.clone(), eta=0.1),
         {"K": bad_kernel(), "eta": "positive"}),
    Case(experiments.measured_ratio, lambda: {"loss": 0.9 ** np.arange(10), "floor": 1e-20},
         {"loss": st.sampled_from([None, "x", [], [1.0, 0.5], [[1.0, 0.5, 0.2]], [1j, 1, 1]]),
          "floor": "positive"}),
    Case(experiments.rate_from_ratio, lambda: dict(ratio=0.5, eta=0.1),
         {"ratio": "nonneg", "eta": "positive"}),
    Case(experiments.effective_alpha,
         lambda: dict(weight_norm_sq_v=np.ones((3, 1)), weight_norm_sq_g=np.ones((3, 1))),
         {"weight_norm_sq_v": st.sampled_from([None, "x", np.ones(3), np.ones((2, 1)),
                                               -np.ones((3, 1)), np.full((3, 1), NAN)]),
          "weight_norm_sq_g": st.sampled_from([None, np.ones((3, 2)), np.zeros((3, 1))])},
         names={"weight_norm_sq_g": "weight_norm_sq_"}),
    Case(experiments.loglog_slope, lambda: dict(x=[1.0, 2.0, 4.0], y=[1.0, 0.5, 0.25]),
         {"x": "positive_array", "y": "positive_array"}),
    Case(experiments.limit_evolution_kernel, lambda: dict(X=X.clone(), alpha=1.0),
         {"X": "tensor", "alpha": "positive"}),
    Case(experiments.limit_least_eigenvalue, lambda: dict(X=X.clone(), alphas=[1.0]),
         {"X": "tensor", "alphas": bad_list}),
    Case(experiments.limit_edges, lambda: dict(X=X.clone(), alphas=[1.0]),
         {"X": "tensor", "alphas": bad_list}),
    Case(experiments.tuned_step, lambda: dict(X=X.clone(), alpha=1.0), {"X": "tensor", "alpha": "positive"}),
    Case(experiments.limit_condition, lambda: dict(X=X.clone(), alphas=[1.0]),
         {"X": "tensor", "alphas": bad_list}),
    Case(experiments.best_rate, lambda: dict(kappa=[2.0, 9.5]),
         {"kappa": st.sampled_from([None, "x", [], [1.0], [0.5], [NAN], [2.0, -1.0]])}),
    Case(experiments.best_scale, lambda: dict(X=X.clone(), lo=0.1, hi=10.0, points=5),
         {"X": "tensor", "lo": "positive", "hi": st.sampled_from([None, 0.0, NAN, 0.05]),
          "points": st.sampled_from([None, 2, 2.5, "a"])}),
    Case(experiments.tuned_runs, lambda: {**data(), "sz": SZ, "alphas": [1.0]},
         {"X": "tensor", "y": "tensor", "sz": st.sampled_from([None, {}]), "alphas": bad_list,
          "cache": st.sampled_from([3, b"x"])}),
    Case(experiments.regime_sweep, lambda: {**data(), "sz": SZ},
         {"X": "tensor", "y": "tensor", "sz": st.sampled_from([None, {}, scale.current("cpu")]),
          "cache": st.sampled_from([3, b"x", ["a"]])}),
    Case(experiments.window_kernels, lambda: {**data(), "rs": RS, "width": 5},
         {"X": "tensor", "y": "tensor", "rs": st.sampled_from([None, WS, {}]), "width": "size",
          "every": "size"}),
    Case(experiments.width_sweep, lambda: {**data(), "sz": SZ, "alpha": 1.0},
         {"X": "tensor", "y": "tensor", "sz": st.sampled_from([None, {}]), "alpha": "positive",
          "cache": st.sampled_from([3, b"x"])}),
    Case(experiments.Comparison, lambda: {**data(), "steps": 2, "alphas": [1.0], "etas": [0.1]},
         {"X": bad_alone(X), "y": "tensor", "steps": "size", "alphas": bad_nonempty,
          "etas": bad_nonempty, "seed": "seed"}),
    # lib.wn.figures: validation comes before any drawing
    Case(figures.norm_growth, lambda: dict(h=RUN, eta=0.1, zoom=2),
         {"h": st.sampled_from([None, RUN.history, {}]), "eta": "positive", "zoom": "size"}),
    Case(figures.kernel_heatmaps, lambda: dict(H=K.clone(), V=K.clone(), G=K.clone()),
         {k: st.sampled_from([None, "x", K[0], K[:0], K * NAN]) for k in "HVG"}),
    Case(figures.concentration,
         lambda: dict(widths=[2, 4], conc={k: np.ones((2, 1)) for k in ("err_V", "err_G",
                                                                        "lam_V", "lam_G")},
                      lam_V_inf=0.1, lam_G_inf=0.1),
         {"widths": "positive_array", "conc": st.sampled_from(
             [None, {}, {"err_V": np.ones((2, 1))},
              {k: np.ones((3, 1)) for k in ("err_V", "err_G", "lam_V", "lam_G")}]),
          "lam_V_inf": "finite", "lam_G_inf": "finite"}),
    Case(figures.regimes,
         lambda: dict(rs=RS, eta=0.1, limit_curve=(np.ones(3), np.ones(3)), lam_V_inf=0.1,
                      lam_G_inf=0.1),
         {"rs": st.sampled_from([None, WS, {}]), "eta": "positive",
          "limit_curve": st.sampled_from([None, np.ones(3), (np.ones(3),), (np.ones(3), np.ones(2)),
                                          (-np.ones(3), np.ones(3)), (np.ones(3), [NAN] * 3)]),
          "lam_V_inf": "finite", "lam_G_inf": "finite"}),
    Case(figures.fair_comparison,
         lambda: dict(kappa_curve=(np.ones(3), np.full(3, 2.0)), limits=[2.0, 3.0, 2.0], rs=RS,
                      tuned=TR, best=(1.0, 2.0)),
         {"kappa_curve": st.sampled_from([None, np.ones(3), (np.ones(3),), (np.ones(3), np.ones(2)),
                                          (-np.ones(3), np.ones(3)), (np.ones(3), [NAN] * 3)]),
          "limits": st.sampled_from([None, [2.0], [2.0, NAN, 1.0], [1.0, -1.0, 2.0]]),
          "rs": st.sampled_from([None, WS, {}]), "tuned": st.sampled_from([None, RS, {}]),
          "best": st.sampled_from([None, [1.0], [1.0, NAN], (0.0, 2.0)])}),
    Case(figures.edge, lambda: dict(rs=RS), {"rs": st.sampled_from([None, WS, "rs"])}),
    Case(figures.widths, lambda: dict(ws=WS, show=(0, 1)),
         {"ws": st.sampled_from([None, RS, "ws"]),
          "show": st.sampled_from([None, "ab", [2], [-3], [0.5], [True]])}),
    Case(figures.as_diverged, lambda: dict(loss=[1.0, 2.0]),
         {"loss": st.sampled_from([None, "x", [], [[1.0, 2.0]], ["a", "b"]])}),
    Case(figures.draw_comparison, lambda: dict(fig=Figure(), steps=3, n=4),
         {"fig": st.sampled_from([None, "fig", 3]), "steps": "size", "n": "size"}),
]

EXEMPT = {
    training.WNHistory: "a record of one run, filled by training.train from the training loop's history",
    experiments.RegimeSweep: "a record of results, filled by regime_sweep from lib.sweep's arrays",
    experiments.TunedRuns: "a record of results, filled by tuned_runs from training.train_batch's runs",
    experiments.WidthSweep: "a record of results, filled by width_sweep from training.train_batch's runs",
}

test_bad_input_is_refused_by_name = parametrize(CASES)


# --- the cases the issue lists ------------------------------------------------------------
def test_a_huge_step_is_recorded_as_divergence_not_raised():
    """η = 1e100: the loss overflows to ~1e200, then every ReLU dies and it sits at ½‖y‖²."""
    h = training.train(P, X, Y, eta=1e100, steps=5)
    assert h.diverged_at == 1 and h.history.diverged_at == 1
    assert h.step.tolist() == [0] and len(h.loss) == 1 and len(h.spectrum) == 1
    batch = training.train_batch([P, P], X, Y, etas=[0.1, 1e100], steps=5)
    assert batch[0].diverged_at is None and batch[1].diverged_at == 1


def test_the_chapters_stable_runs_are_not_diverged():
    sz = experiments.sizes(scale.current("cpu"))
    Xc, yc = experiments.unit_sphere_data(sz.n, sz.d, seed=0)
    p = networks.init_wn(sz.d, sz.width, alpha=0.1, seed=0)               # section 1's run
    run = training.train(p, Xc, yc, eta=0.1, steps=sz.steps, observe_every=sz.steps)
    assert run.diverged_at is None and len(run.loss) == sz.steps + 1
    # past its edge, WN's loss first rises, then the lengths rescale and it converges
    edge = 2 / float(torch.linalg.eigvalsh(networks.evolution_kernel(p, Xc))[-1])
    past = training.train(p, Xc, yc, eta=10 * edge, steps=150, observe_every=150)
    assert past.diverged_at is None and past.loss.max() > past.loss[0]
    assert past.loss[-1] < 1e-6 * past.loss[0]
    for m in sz.widths[:3]:                                          # the width sweep's step
        q = networks.init_wn(sz.d, m, 1.0, seed=0)
        h = training.train(q, Xc, yc, experiments.tuned_step(Xc, 1.0), steps=50, observe_every=50)
        assert h.diverged_at is None


@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("poison", ["nan", "inf", "empty"])
def test_bad_data_is_a_value_error_naming_it_not_divergence(where, poison):
    Xb, yb = X.clone(), Y.clone()
    bad = Xb if where == "X" else yb
    if poison == "empty":
        Xb, yb = (Xb[:0], yb) if where == "X" else (Xb, yb[:0])
    else:
        bad.view(-1)[1] = float(poison)
    with pytest.raises(ValueError, match=f"^{where} must"):
        training.train(P, Xb, yb, eta=0.1, steps=2)


def test_linear_loss_refuses_a_non_symmetric_kernel():
    A = K.clone()
    A[0, 2] += 1e-6 * float(K.abs().max())                 # 1e-6 relative: not round-off
    with pytest.raises(ValueError, match="^K must be symmetric"):
        experiments.linear_loss(A, Y.clone(), 0.1, 3)
    B = K.clone()                                          # round-off asymmetry passes
    B[0, 2] += 4 * torch.finfo(K.dtype).eps * float(K.abs().max())
    assert experiments.linear_loss(B, Y.clone(), 0.1, 3).shape == (4,)


def test_limit_kernels_refuse_a_nan_row():
    Xn = X.clone()
    Xn[2] = NAN
    with pytest.raises(ValueError, match="^X must be finite"):
        networks.limit_kernels(Xn)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_unit_sphere_data_refuses_non_floating_dtypes(dtype):
    with pytest.raises(ValueError, match="^dtype must be a floating"):
        experiments.unit_sphere_data(3, 2, dtype=dtype)


@pytest.mark.parametrize("seed, error", [(1.0, TypeError), (2.5, TypeError), ("0", TypeError),
                                         (True, TypeError), (-1, ValueError), (2**63, ValueError)])
def test_seeds_are_integers_in_range(seed, error):
    for call in (lambda: experiments.unit_sphere_data(3, 2, seed=seed), lambda: networks.init_wn(3, 2, 1.0, seed)):
        with pytest.raises(error, match="^seed must be an integer"):
            call()
    assert torch.equal(experiments.unit_sphere_data(3, 2, seed=np.int64(4))[0],
                       experiments.unit_sphere_data(3, 2, seed=4)[0])


@pytest.mark.parametrize("call, error, match", [
    (lambda: training.train(P, X, Y[:3], 0.1, 2), ValueError, "^X and y must have the same length"),
    (lambda: training.train(P, X[:, :2], Y, 0.1, 2), ValueError, "^X has 2 columns"),
    (lambda: networks.forward(networks.init_wn(4, 5, 1.0), X), ValueError, "^X has 3 columns"),
    (lambda: training.train(P, X.float(), Y, 0.1, 2), TypeError, "^X must have the network's dtype"),
    (lambda: training.train_batch([P, networks.init_wn(3, 6, 1.0)], X, Y, [0.1, 0.1], 2), ValueError,
     "^params_list must hold networks of one shape"),
    (lambda: networks.init_wn(3, 0, 1.0), ValueError, "^width must be an integer"),
    (lambda: networks.init_wn(3, 2.0, 1.0), TypeError, "^width must be an integer"),
    (lambda: experiments.Comparison(X, Y, 2, [1.0], [0.1])(1.0, 0.1, 2.5), TypeError, "^width"),
    (lambda: experiments.Comparison(X, Y, 2, [1.0], [0.1])(NAN, 0.1, 3), ValueError, "^alpha"),
    (lambda: experiments.Comparison(X, Y, 2, [1.0], [0.1])(1.0, -0.1, 3), ValueError, "^eta"),
    (lambda: experiments.regime_sweep(X, Y, experiments.Sizes(**{**vars(SZ), "d": 4})), ValueError,
     "^X has 3 columns but sz.d = 4"),
    (lambda: networks.init_wn(3, 2, 0.0), ValueError, "^alpha must be a finite number > 0"),
    (lambda: networks.init_wn(3, 2, NAN), ValueError, "^alpha must be a finite number > 0"),
    (lambda: training.train(P, X, Y, 0.0, 2), ValueError, "^eta must be a finite number > 0"),
    (lambda: training.train(P, X, Y, NAN, 2), ValueError, "^eta must be a finite number > 0"),
    (lambda: training.train(P, X, Y, 0.1, 2.0), TypeError, "^steps must be an integer"),
    (lambda: training.train(P, X, Y, 0.1, 2, log_every=1.5), TypeError, "^log_every must be an integer"),
    (lambda: training.train(P, X, Y, 0.1, 2, log_every=0), ValueError, "^log_every must be an integer"),
])
def test_mismatched_and_out_of_range_arguments_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_non_finite_parameters_are_recorded_but_refused_as_input():
    h = training.train(P, X, Y, eta=1e100, steps=3)
    assert h.params.v.abs().max() > 1e150                   # the record keeps what happened
    nan = networks.WNParams(P.v, P.g * NAN, P.c)                  # a record may hold NaN ...
    with pytest.raises(ValueError, match="^params.g must be finite"):
        networks.forward(nan, X)                                  # ... but it is no input
    with pytest.raises(ValueError, match="^params.g must be finite"):
        training.train(nan, X, Y, 0.1, 2)
    assert math.isfinite(float(networks.forward(P, X).sum()))
