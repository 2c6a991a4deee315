"""lib.autorate.theory, lib.autorate.experiments and the shared lib.invariance they rest on refuse
bad input by name, before any training, and record a diverged run as a result (never an exception)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from contracts import INF, NAN, Case, parametrize
from lib import invariance, models, stack, sweep, train
from lib.autorate import experiments, figures, theory
from lib.data import Dataset

N, D, C = 8, 4, 3  # examples, features, classes of the tiny data set


def tiny():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(N, D, generator=gen), torch.arange(N) % C


def net(**kw):
    return theory.make_mlp(**{"width": 3, "depth": 1, "n_in": D, "n_out": C, **kw})


def poisoned(value):
    X, y = tiny()
    X[N // 2, 1] = value
    return X, y


def _bad_data():
    """Data no function may accept: wrong containers, NaN/inf, empty, mismatched."""
    X, y = tiny()
    return [None, "data", X, (X,), (X, y, y), poisoned(NAN), poisoned(INF), (X[:0], y[:0]),
            (X, y[:-1]), (X[:-1], y), (X.long(), y), (X, y.float()), (X, y - C),
            (X, y[:, None]), (X[:, 0], y), (X.tolist(), y),
            poisoned_dataset()]


def poisoned_dataset():
    """A valid Dataset whose images were overwritten with NaN afterwards."""
    X, y = tiny()
    data = Dataset(X, y, "tiny", ("a", "b", "c"))
    data.X[0, 0] = NAN
    return data


def _bad_data_for_model():
    """Also bad for a given network: too narrow, labels beyond its outputs, another dtype."""
    X, y = tiny()
    return _bad_data() + [(X[:, :-1], y), (X, y + C), (X.double(), y)]


BAD_DATA = st.sampled_from(_bad_data())
BAD_MODEL_DATA = st.sampled_from(_bad_data_for_model())
def nan_net():
    model = net()
    with torch.no_grad():
        model.head.weight[0, 0] = NAN
    return model


BAD_MODEL = st.sampled_from([None, "net", torch.nn.Linear(D, C), nan_net()])
NOT_NUMBERS = [None, "1", {}, 1j, object(), True]
BAD_RATES = st.one_of(st.floats(max_value=0.0),  # a rate, or a list of rates, each > 0
                      st.sampled_from([NAN, INF, -INF, [1.0, -1.0], [], [[]], [1.0, NAN],
                                       *NOT_NUMBERS]))
BAD_DECAYS = st.one_of(st.floats(max_value=-1e-300),  # one or more numbers >= 0
                       st.sampled_from([NAN, INF, [0.0, -0.1], [], [0.1, INF], *NOT_NUMBERS]))
BAD_SQUARES = st.sampled_from([None, "x", [1.0, -1.0, 1.0], [1j] * 3, np.ones(2), {}])
BAD_ALPHA = st.one_of(st.floats(min_value=0.5000001), st.floats(max_value=-1e-300),
                      st.sampled_from([NAN, INF, None, "0.1", True, 1j]))
BAD_ALPHAS = st.one_of(BAD_ALPHA, st.sampled_from([[0.0, 0.6], [], [0.0, NAN]]))
BAD_SEEDS = st.sampled_from([None, 3, "0", [], [-1], [1.5], [2**63], [True], [0, "1"]])
BAD_BATCH = st.sampled_from([0, -1, N + 1, 2.5, 4.0, "4", True])
BAD_AXIS = st.sampled_from([2, -3, 1.5, None, "0", True])
BAD_NAME_OR_NONE = st.sampled_from([3, b"x", ["a"], 1.0])


def bad_name(known):
    """Unknown names and non-strings. (Hypothesis draws string literals of the code under
    test too, so the harness's "name" kind may hit a known name: filter them out.)"""
    known = set(known)
    return st.one_of(st.text(max_size=8).filter(lambda s: s not in known),
                     st.sampled_from([None, 3, ("a",), "BN", "cross entropy"]))


BAD_NORM, BAD_ACTIVATION = bad_name(models.NORMS), bad_name(models.ACTIVATIONS)
BAD_LOSS = bad_name(train.LOSSES)


def record():
    return {"weight_norm_sq_w": np.ones((2, 5, 3)), "grad_norm_sq_w": np.ones((2, 5)),
            "grad_norm_sq_g": np.ones((2, 5))}


BAD_RECORD = st.sampled_from([
    None, "record", [1.0, 2.0], {}, {k: v for k, v in record().items() if k != "grad_norm_sq_g"},
    {**record(), "grad_norm_sq_w": -np.ones((2, 5))}, {**record(), "grad_norm_sq_g": np.ones(5)},
    {**record(), "weight_norm_sq_w": np.ones(5)}, {**record(), "grad_norm_sq_w": "x"}])


def _bad_params():
    """Not a tensor for every parameter name of net(): other containers, a name missing or
    extra, a value that is not a tensor or not floating."""
    good = dict(net().named_parameters())
    first = next(iter(good))
    return [None, list(good.values()), {k: v for k, v in good.items() if k != first},
            {**good, "extra": torch.ones(1)}, {**good, first: good[first].tolist()},
            {**good, first: good[first].long()}]


BAD_PARAMS = st.sampled_from(_bad_params())


def gap_result():
    return {"scale": np.array([0.5, 2.0]), "loss_gap": np.zeros(2), "grad_gap": np.ones(2) * 1e-16,
            "cosine": np.zeros(2)}


def twin():
    return {"loss_gd": np.ones(3), "loss_sphere": np.ones(3), "path_gap": np.zeros(3),
            "step_gap": np.zeros(2)}


def sides():
    return {k: np.ones((2, 1, 3)) for k in ("grad_v_sum", "bound")}


def budget():
    return {k: np.ones((2, 1)) for k in ("last", "first", "later_growth", "loss_budget")}


# recorded curves: NaN is allowed (a divergence); wrong types, shapes and empties are not
BAD_CURVE = st.sampled_from([None, "x", 3.0, [], [[0.0, 1.0]], [1j, 2j], np.arange(7)])
BAD_CURVES = st.sampled_from([None, "x", 1.0, np.ones(3), np.ones((5, 5)), np.ones((2, 0)),
                              np.ones((1, 2, 3, 4)), [[1j]]])


def family():
    return {"step": np.arange(3), "loss": np.ones((2, 3)), "diverged_at": np.array([-1, -1])}


CASES = [
    Case(theory.PlainMLP, lambda: dict(sizes=[D, 3, C], activation="softplus"),
         {"sizes": st.sampled_from([None, 3, "43", [D], [], [D, 0, C], [D, 2.5, C],
                                    [D, True, C], [D, -1]]),
          "activation": BAD_ACTIVATION}),
    Case(theory.make_mlp, lambda: dict(seed=0, width=3, depth=1, n_in=D, n_out=C,
                                       init_scale=1.0, norm="bn_smooth", activation="softplus"),
       {"seed": "seed", "width": "size", "depth": "size", "n_in": "size", "n_out": "size",
        "init_scale": "positive", "norm": BAD_NORM, "activation": BAD_ACTIVATION}),
    Case(invariance.check_data, lambda: dict(data=tiny(), forward=net()),
         {"data": BAD_MODEL_DATA, "forward": st.sampled_from([3, "f", [1]])}),
    Case(invariance.group_names, lambda: dict(model=net()), {"model": BAD_MODEL}),
    Case(invariance.check_model_data, lambda: dict(model=net(), data=tiny(), loss="cross_entropy"),
         {"model": BAD_MODEL, "data": BAD_MODEL_DATA, "loss": BAD_LOSS}),
    Case(invariance.loss_and_grads,
         lambda: dict(model=net(), params=dict(net().named_parameters()), X=tiny()[0], y=tiny()[1],
                      loss="cross_entropy"),
         {"model": st.sampled_from([None, "net", net]), "params": BAD_PARAMS, "X": "tensor",
          "y": "labels", "loss": BAD_LOSS}),
    Case(invariance.scale_invariance,
         lambda: dict(model=net(), data=tiny(), scales=[0.5, 2.0], loss="cross_entropy"),
         {"model": BAD_MODEL, "data": BAD_MODEL_DATA, "scales": "positive_array", "loss": BAD_LOSS}),
    Case(theory.sphere_vs_gd, lambda: dict(model=net(), data=tiny(), eta_w=1.0, eta_g=0.1,
                                           steps=1, loss="cross_entropy"),
       {"model": BAD_MODEL, "data": BAD_MODEL_DATA, "eta_w": "positive", "eta_g": "positive",
        "steps": "size", "loss": BAD_LOSS}),
    Case(theory.intrinsic_grad_sq, lambda: dict(record=record()), {"record": BAD_RECORD}),
    Case(theory.running_min, lambda: dict(values=np.ones((2, 3)), axis=-1),
         {"values": st.sampled_from([None, "x", 3.0, np.ones((2, 0)), [1j], [[1.0], [1.0, 2.0]],
                                     [True, False]]),
          "axis": BAD_AXIS}),
    Case(theory.next_norm_sq, lambda: dict(norm_sq=np.ones(3), grad_sq=np.ones(3), eta=0.5,
                                           weight_decay=0.01),
       {"norm_sq": BAD_SQUARES, "grad_sq": BAD_SQUARES, "eta": BAD_RATES,
        "weight_decay": BAD_DECAYS}),
    Case(theory.constant_gradient_norm_sq, lambda: dict(G0=1.0, eta=1.0, grad_v_sq=1.0, steps=2),
         {"G0": "positive", "eta": "positive", "grad_v_sq": "positive", "steps": "size"}),
    Case(theory.equilibrium_effective_eta, lambda: dict(eta=1.0, weight_decay=0.01, grad_v_sq=2.0),
         {"eta": BAD_RATES, "weight_decay": BAD_RATES, "grad_v_sq": BAD_RATES}),
    Case(theory.blew_up, lambda: dict(loss=np.array([[1.0, 2.0], [1.0, INF]]), factor=10.0,
                                      axis=-1),
       {"loss": st.sampled_from([None, "x", 1.0, np.ones((2, 0)), [1j], [True]]),
        "factor": "positive", "axis": BAD_AXIS}),
    Case(theory.sgd_schedules, lambda: dict(alpha=0.25, steps=3),
         {"alpha": BAD_ALPHA, "steps": "size"}),
    Case(theory.eval_steps, lambda: dict(steps=10, n_evals=3),
         {"steps": "size", "n_evals": "size"}),
    Case(theory.summed_growth_bound, lambda: dict(norm_sq=np.ones(3), grad_sq=np.ones(3), eta=0.5),
         {"norm_sq": BAD_SQUARES, "grad_sq": BAD_SQUARES, "eta": BAD_RATES}),
    Case(theory.norm_budget, lambda: dict(norm_sq=np.ones(3), loss=np.ones(3), eta=0.5, start=1),
         {"norm_sq": BAD_SQUARES, "loss": st.sampled_from([None, "x", [1j] * 3, np.ones(2), {}]),
          "eta": BAD_RATES, "start": st.sampled_from([-1, 2, 1.5, None, "1", True])}),
    Case(experiments.rate_sweep, lambda: dict(data=tiny(), eta_w=[1.0], eta_g=0.1, steps=1, width=3,
                                              norm="bn_smooth", seeds=[0], depth=1, weight_decay=[0.0],
                                              batch_size=None, cache=None),
                  {"data": BAD_DATA, "eta_w": BAD_RATES, "eta_g": BAD_RATES, "steps": "size",
                   "width": "size", "norm": BAD_NORM, "seeds": BAD_SEEDS, "depth": "size",
                   "weight_decay": BAD_DECAYS, "batch_size": BAD_BATCH, "cache": BAD_NAME_OR_NONE}),
    Case(experiments.random_batches, lambda: dict(n=N, batch_size=2, n_batches=2, seed=0),
         {"n": "size", "batch_size": st.sampled_from([0, -1, N + 1, 2.5, None, True]),
          "n_batches": "size", "seed": "seed"}),
    Case(experiments.expected_gradients,
         lambda: dict(stk=stack.from_models([net()]), data=tiny(),
                      batches=torch.tensor([[0, 1], [2, 3]]), loss="cross_entropy"),
         {"stk": st.sampled_from([None, "stk", net()]), "data": BAD_MODEL_DATA,
          "batches": st.sampled_from([None, [[0, 1], [2, 3]], torch.ones(2, 2),
                                      torch.tensor([0, 1]), torch.tensor([[0, 1]]),
                                      torch.tensor([[0, 1], [2, N]]),
                                      torch.tensor([[0, -1], [2, 3]]),
                                      torch.zeros(2, 0, dtype=torch.long),
                                      np.array([[0.0, 1.0], [2.0, 3.0]])]),
          "loss": BAD_LOSS}),
    Case(experiments.sgd_convergence,
         lambda: dict(data=tiny(), eta_w=[1.0], alpha=[0.0], eta_g=0.1, steps=2, batch_size=4,
                      seeds=[0], width=3, depth=1, n_evals=2, n_batches=2, cache_name=None),
         {"data": BAD_DATA, "eta_w": BAD_RATES, "alpha": BAD_ALPHAS, "eta_g": "positive",
          "steps": "size", "batch_size": st.sampled_from([0, -1, N + 1, 2.5, None, True]),
          "seeds": BAD_SEEDS, "width": "size", "depth": "size", "n_evals": "size",
          "n_batches": st.sampled_from([1, 0, -1, 2.5, None, "2", True]),
          "cache_name": BAD_NAME_OR_NONE}),
    Case(experiments.rate_curves, lambda: dict(data=tiny(), eta_w=[1.0], eta_g=0.1, steps=1, width=3),
         {"data": BAD_DATA, "eta_w": BAD_RATES, "eta_g": "positive", "steps": "size",
          "width": "size"}),
    Case(experiments.member, lambda: dict(family=family(), values=[0.1, 0.2], value=0.1),
         {"family": st.sampled_from([None, [1], "f", {**family(), "loss": np.ones((3, 3))}]),
          "values": st.sampled_from([None, 3, "ab", [0.1]]),
          "value": st.sampled_from([0.3, None, "x", np.array([0.1, 0.2]), NAN])}),
    Case(experiments.scale_pair, lambda: dict(data=tiny(), g0=[1.0], weight_decay=0.0, eta_w=1.0, eta_g=0.1,
                                              steps=1, width=3, batch_size=None),
                  {"data": BAD_DATA, "g0": BAD_RATES, "weight_decay": "nonneg", "eta_w": "positive",
                   "eta_g": "positive", "steps": "size", "width": "size", "batch_size": BAD_BATCH}),

    # figures: results of the wrong shape or kind are refused before anything is drawn
    Case(figures.invariance_gaps, lambda: dict(gaps={"bn": gap_result()}),
         {"gaps": st.sampled_from([None, "gaps", [gap_result()], {}, {"layer": gap_result()},
                                   {"bn": {"scale": [1.0, 2.0]}}, {"bn": "r"},
                                   {"bn": {**gap_result(), "loss_gap": np.ones(3)}},
                                   {"bn": {**gap_result(), "scale": [0.0, 1.0]}}])}),
    Case(figures.norm_growth, lambda: dict(eta_w=[0.1, 1.0], step=np.arange(3),
                                           norm_sq=np.ones((2, 3))),
         {"eta_w": BAD_RATES, "step": BAD_CURVE, "norm_sq": BAD_CURVES}),
    Case(figures.sphere_vs_gd, lambda: dict(twin=twin()),
         {"twin": st.sampled_from([None, "twin", [1.0], {"loss_gd": np.ones(3)},
                                   {**twin(), "step_gap": np.ones(3)},
                                   {**twin(), "loss_sphere": np.ones((3, 1))},
                                   {**twin(), "path_gap": "x"}])}),
    Case(figures.gd_rates, lambda: dict(eta_w=[0.1, 1.0], step=np.arange(12), best=np.ones((2, 12)),
                                        loss_bn=np.ones((2, 1, 12)), loss_plain=np.ones((2, 1, 12)),
                                        blew_up=np.array([False, True])),
         {"eta_w": BAD_RATES, "step": BAD_CURVE, "best": BAD_CURVES,
          "loss_bn": BAD_CURVES, "loss_plain": BAD_CURVES,
          "blew_up": st.sampled_from([None, [0, 1], np.array([True]), "no", np.ones(2)])}),
    Case(figures.sgd_convergence, lambda: dict(eta_w=[0.1, 1.0], alpha=[0.0, 0.5], T=np.arange(1, 4),
                                               effective_eta=np.ones((2, 2, 3)), best=np.ones((2, 2, 3)),
                                               n_seeds=2),
         {"eta_w": BAD_RATES, "alpha": BAD_CURVE, "T": "positive_array", "effective_eta": BAD_CURVES,
          "best": BAD_CURVES, "n_seeds": "size"}),
    Case(figures.weight_decay, lambda: dict(weight_decays=[0.0, 0.01], step=np.arange(3),
                                            norm_sq=np.ones((2, 2, 3)), levels=[NAN, 0.5], eta_w=1.0),
         {"weight_decays": st.sampled_from([None, "x", [0.0, -0.1], [0.0, INF], [0.0], [[0.0, 0.1]]]),
          "step": BAD_CURVE, "norm_sq": BAD_CURVES,
          "levels": st.sampled_from([None, "x", [0.5], [[0.5, 0.5]], [1j, 1j]]), "eta_w": "positive"}),
    Case(figures.growth_bound, lambda: dict(eta_w=[0.1, 1.0], step=np.arange(3), sides=sides(),
                                            budget=budget()),
         {"eta_w": BAD_RATES, "step": BAD_CURVE,
          "sides": st.sampled_from([None, "s", [1.0], {}, {"grad_v_sum": np.ones((2, 1, 3))},
                                    {**sides(), "bound": np.ones(3)}]),
          "budget": st.sampled_from([None, "b", [1.0], {}, {**budget(), "last": np.ones(2)},
                                     {**budget(), "first": np.ones((3, 1))}])}),
    Case(figures.draw_rates, lambda: dict(fig=Figure(), steps=3),
         {"fig": st.sampled_from([None, "fig", 3]), "steps": "size"}),
    Case(figures.draw_scale, lambda: dict(fig=Figure(), steps=3),
         {"fig": st.sampled_from([None, "fig", 3]), "steps": "size"}),
]

EXEMPT = {}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")

test_bad_input_is_refused_by_name = parametrize(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_valid_calls_of_the_cases_succeed(case):
    """Each bad value above is measured against a call that works."""
    case.func(**case.valid())


# --- the specific bad inputs of the issue ------------------------------------------------

@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts: bad arguments must be refused before it."""
    def refuse(*args, **kw):
        raise AssertionError("training started before the arguments were checked")
    monkeypatch.setattr(train, "fit", refuse)
    monkeypatch.setattr(sweep, "train_grid", refuse)


def raises(error, names, call):
    with pytest.raises(error) as info:
        call()
    for name in names.split():
        assert name in str(info.value), str(info.value)


@pytest.mark.parametrize("call, error, names", [
    (lambda: theory.sphere_vs_gd(net(), tiny(), 0.0, 0.1, 2), ValueError, "eta_w"),
    (lambda: theory.sphere_vs_gd(net(), tiny(), 1.0, NAN, 2), ValueError, "eta_g"),
    (lambda: theory.sphere_vs_gd(net(), tiny(), "1", 0.1, 2), TypeError, "eta_w"),
    (lambda: experiments.rate_curves(tiny(), [1.0, -1.0], 0.1, 2, 3), ValueError, "eta_w"),
    (lambda: experiments.rate_curves(tiny(), [1.0], INF, 2, 3), ValueError, "eta_g"),
    (lambda: experiments.rate_sweep(tiny(), 1.0, 0.0, 2, 3), ValueError, "eta_g"),
    (lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0], -0.1, 2, 4, [0], 3), ValueError, "eta_g"),
    (lambda: experiments.scale_pair(tiny(), 1.0, 0.0, 0.0, 0.1, 2, 3, None), ValueError, "eta_w"),
    (lambda: theory.constant_gradient_norm_sq(1.0, True, 1.0, 2), TypeError, "eta"),
])
def test_learning_rates(no_training, call, error, names):
    raises(error, names, call)


@pytest.mark.parametrize("call, error, names", [
    (lambda: theory.next_norm_sq(1.0, 1.0, 0.1, -1e-3), ValueError, "weight_decay"),
    (lambda: theory.next_norm_sq(1.0, 1.0, 0.1, NAN), ValueError, "weight_decay"),
    (lambda: theory.equilibrium_effective_eta(1.0, 0.0, 1.0), ValueError, "weight_decay"),
    (lambda: theory.equilibrium_effective_eta(2.0, 0.5, 1.0), ValueError, "eta weight_decay"),
    (lambda: experiments.rate_sweep(tiny(), 1.0, 0.1, 2, 3, weight_decay=[0.0, -0.1]), ValueError,
     "weight_decay"),
    (lambda: experiments.scale_pair(tiny(), 1.0, -0.1, 1.0, 0.1, 2, 3, None), ValueError, "weight_decay"),
    (lambda: experiments.scale_pair(tiny(), 1.0, 0.5, 2.0, 0.1, 2, 3, None), ValueError, "weight_decay eta_w"),
])
def test_weight_decay(no_training, call, error, names):
    raises(error, names, call)


@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (-1.0, ValueError), (NAN, ValueError),
                                        (INF, ValueError), ("1", TypeError), (True, TypeError)])
def test_init_scale(bad, error):
    raises(error, "init_scale", lambda: net(init_scale=bad))
    raises(ValueError, "g0", lambda: experiments.scale_pair(tiny(), [1.0, 0.0], 0.0, 1.0, 0.1, 2, 3, None))


def test_alpha_stays_in_the_range_of_theorem_4_2(no_training):
    """α > 1/2 is refused (Remark 4.1: no way back to the t^(−1/2) rate), naming alpha."""
    for bad in (0.5000001, 0.7, -0.1, NAN):
        with pytest.raises(ValueError, match=r"^alpha must be"):
            theory.sgd_schedules(bad, 10)
    raises(TypeError, "alpha", lambda: theory.sgd_schedules("0.5", 10))
    raises(ValueError, "alpha", lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0, 0.6], 0.1, 2, 4,
                                                                    [0], 3))
    assert theory.sgd_schedules(0.5, 3)["w"][-1] == 3**-0.5  # both ends are allowed
    assert np.all(theory.sgd_schedules(np.float32(0.0), 3)["w"] == 1)


@pytest.mark.parametrize("call, error, names", [
    (lambda: theory.sphere_vs_gd(net(), tiny(), 1.0, 0.1, 0), ValueError, "steps"),
    (lambda: theory.sphere_vs_gd(net(), tiny(), 1.0, 0.1, 2.0), TypeError, "steps"),
    (lambda: theory.sphere_vs_gd(net(), tiny(), 1.0, 0.1, True), TypeError, "steps"),
    (lambda: theory.eval_steps(10, 0), ValueError, "n_evals"),
    (lambda: theory.constant_gradient_norm_sq(1.0, 1.0, 1.0, -1), ValueError, "steps"),
    (lambda: net(width=0), ValueError, "width"),
    (lambda: net(depth=1.5), TypeError, "depth"),
    (lambda: net(n_in=np.float64(4)), TypeError, "n_in"),
    (lambda: experiments.random_batches(N, 2, 0), ValueError, "n_batches"),
    (lambda: experiments.rate_sweep(tiny(), 1.0, 0.1, 0, 3), ValueError, "steps"),
    (lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0], 0.1, 2, 4, [0], 3, n_batches=1),
     ValueError, "n_batches"),
    (lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0], 0.1, 2, 4, [0], 3, n_evals=0),
     ValueError, "n_evals"),
])
def test_step_and_size_counts(no_training, call, error, names):
    raises(error, names, call)


def test_seeds(no_training):
    for bad, error in ((-1, ValueError), (2**63, ValueError), (1.5, TypeError), ("0", TypeError),
                       (True, TypeError)):
        raises(error, "seed", lambda: net(seed=bad))
        raises(error, "seed", lambda: experiments.random_batches(N, 2, 2, seed=bad))
        raises(error, "seeds", lambda: experiments.rate_sweep(tiny(), 1.0, 0.1, 2, 3, seeds=[0, bad]))
    raises(ValueError, "seeds", lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0], 0.1, 2, 4, [], 3))
    same = [net(seed=np.int64(3)), net(seed=3)]  # a NumPy integer is a seed like any other
    for p, q in zip(*(m.parameters() for m in same)):
        assert torch.equal(p, q)
    assert net(seed=2**63 - 1) is not None


@pytest.mark.parametrize("kw, error, name", [
    (dict(norm="batchnorm"), ValueError, "norm"), (dict(norm="None"), ValueError, "norm"),
    (dict(norm=None), TypeError, "norm"), (dict(activation="gelu"), ValueError, "activation"),
    (dict(activation=torch.nn.ReLU), TypeError, "activation"),
])
def test_norm_and_activation_names(kw, error, name):
    raises(error, name, lambda: net(**kw))
    if "norm" in kw:
        raises(error, name, lambda: experiments.rate_sweep(tiny(), 1.0, 0.1, 2, 3, **kw))
    for norm in ("none", "bn", "bn_smooth"):
        assert net(norm=norm, activation="tanh") is not None


@pytest.mark.parametrize("call", [
    lambda: experiments.random_batches(5, 6, 3),
    lambda: experiments.sgd_convergence(tiny(), [1.0], [0.0], 0.1, 2, N + 1, [0], 3),
    lambda: experiments.rate_sweep(tiny(), 1.0, 0.1, 2, 3, batch_size=N + 1),
    lambda: experiments.scale_pair(tiny(), 1.0, 0.0, 1.0, 0.1, 2, 3, N + 1),
])
def test_batch_sizes_larger_than_the_data(no_training, call):
    with pytest.raises(ValueError, match=r"^batch_size must be an integer in \[1, \d+\]"):
        call()


@pytest.mark.parametrize("data, words, for_a_given_model", [
    (poisoned(NAN), "data finite", False), (poisoned(INF), "data finite", False),
    ((tiny()[0][:0], tiny()[1][:0]), "data empty", False),
    ((tiny()[0], tiny()[1][:-1]), "data same length", False),
    ((tiny()[0][:, :-1], tiny()[1]), "data fit", True),
    ((tiny()[0], tiny()[1] + C), "data labels", True),
])
def test_data_with_nan_empty_or_mismatched_shapes(no_training, data, words, for_a_given_model):
    """Bad for every function; or (too narrow, too many classes) for a network built
    beforehand, while the experiments build their networks to fit the data."""
    def calls():
        yield lambda: invariance.scale_invariance(net(), data, [1.0])
        yield lambda: theory.sphere_vs_gd(net(), data, 1.0, 0.1, 2)
        yield lambda: experiments.expected_gradients(stack.from_models([net()]), data,
                                                     torch.tensor([[0, 1], [2, 3]]))
        if not for_a_given_model:
            yield lambda: experiments.rate_sweep(data, 1.0, 0.1, 2, 3)
            yield lambda: experiments.rate_curves(data, 1.0, 0.1, 2, 3)
            yield lambda: experiments.scale_pair(data, 1.0, 0.0, 1.0, 0.1, 2, 3, None)
            yield lambda: experiments.sgd_convergence(data, [1.0], [0.0], 0.1, 2, 2, [0], 3)
    for call in calls():
        with pytest.raises(ValueError) as info:
            call()
        assert all(w in str(info.value) for w in words.split()), str(info.value)


# --- divergence is a result ---------------------------------------------------------------

def test_a_diverged_run_is_recorded_not_raised():
    """η_g = 1e30 sends the head (group g, not scale-invariant) to overflow in float32."""
    r = theory.sphere_vs_gd(net(), tiny(), eta_w=1.0, eta_g=1e30, steps=6)
    t = r["diverged_at"]
    assert 0 <= t < 6 and np.isnan(r["loss_gd"][t:]).all() and np.isfinite(r["loss_gd"][:t]).all()
    assert r["loss_gd"].shape == (7,) and r["step_gap"].shape == (6,)
    curves = experiments.rate_curves(tiny(), [1.0, 1e30], 0.1, steps=4, width=3)  # η_w = 1e30 without BN
    t = curves["diverged_at_plain"]
    assert t[0] == -1 and t[1] >= 1 and np.isnan(curves["loss_plain"][1, t[1]:]).all()
    assert curves["diverged_at_bn"][0] == -1
    np.testing.assert_array_equal(theory.blew_up(curves["loss_plain"]), [False, True])
    assert experiments.member(curves, [1.0, 1e30], 1e30)["diverged_at_plain"] == t[1]


def test_recorded_nan_and_inf_are_results_not_bad_input():
    loss = np.array([[1.0, NAN, NAN], [1.0, 0.5, 0.2], [1.0, INF, 1.0]])
    np.testing.assert_array_equal(theory.blew_up(loss), [True, False, True])
    assert np.isnan(theory.running_min(loss)[0, 1:]).all()
    assert np.isnan(theory.next_norm_sq([1.0, NAN], [1.0, 1.0], 0.1)[1])
    rec = {**record(), "grad_norm_sq_w": np.where(np.arange(5) < 3, 1.0, NAN)[None].repeat(2, 0)}
    assert np.isnan(theory.intrinsic_grad_sq(rec)[:, 3:]).all()


def test_overflow_in_the_closed_forms_is_an_honest_inf():
    G = theory.constant_gradient_norm_sq(1.0, 1e200, 1.0, 2)
    assert math.isinf(G[-1])
    assert math.isinf(theory.next_norm_sq(1.0, 1.0, 1e200))
