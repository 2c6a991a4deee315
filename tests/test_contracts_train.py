"""Bad input to lib.train (with lib.config, lib.history, lib.datachecks), lib.sweep (with
lib.grid), lib.stack and lib.models is refused by name.

The property-based cases attack every argument of every public callable with bad values
of its kind (tests/contracts.py); the explicit tests below are the cases issue 12 lists:
bad per-step rates, NaN or empty data, unknown losses, coerced sizes, data that do not fit the
model, seeds, and bad grid axes. Every valid call is tiny (6 examples, 1-2 steps).
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from contracts import KINDS, Case, parametrize
from lib import datachecks, models, stack, sweep, train
from lib.history import Recorder
from lib.models import MLP, NormLinear, SmallCNN
from lib.train import History, TrainConfig

NAN, INF = math.nan, math.inf
BAD_NAMES = st.sampled_from(["hinge", "", "BN", "Relu", None, 3, ("bn",)])
NOT_CALLABLE = st.sampled_from([3, "f", [1, 2]])  # None is valid for optional callables


def X():  # (6, 4) float32 inputs
    return torch.randn(6, 4, generator=torch.Generator().manual_seed(0))


def Y():  # (6,) labels of 2 classes
    return torch.tensor([0, 1, 0, 1, 1, 0])


def net():
    torch.manual_seed(0)
    return MLP((4, 3, 2))


def make(seed=0):
    return net()


def history(n=2):
    return History(step=np.arange(n), loss=np.ones(n), accuracy=np.ones(n), eta={"g": np.ones(n)},
                   grad_norm_sq={"g": np.ones(n)}, weight_norm_sq={"g": np.ones((n, 1))})


def bad_pairs(valid):
    """(X, y) pairs that are wrong on their own: types, NaN/inf, empty, shapes, dtypes."""
    Xv, yv = valid
    nan_X, inf_X = Xv.clone(), Xv.clone()
    nan_X[2, 1], inf_X[0, 0] = NAN, INF
    return st.sampled_from([
        None, Xv, (Xv,), (Xv, yv, yv), (Xv.numpy(), yv), (Xv, yv.tolist()), (nan_X, yv),
        (inf_X, yv), (Xv[:0], yv[:0]), (Xv, yv[:-1]), (Xv.long(), yv), (Xv, yv.bool()),
        (Xv[0], yv[:1]), (Xv, yv[:, None]), (Xv, yv.double())])


def bad_data(valid):
    """Pairs wrong for the model MLP((4, 3, 2)) (float32): also dtype, width, labels."""
    Xv, yv = valid
    return st.one_of(bad_pairs(valid), st.sampled_from([
        (Xv.double(), yv), (Xv[:, :3], yv), (torch.randn(6, 5), yv), (Xv, yv + 5), (Xv, yv - 1),
        (Xv, yv.float())]))


def a_stack():
    return stack.from_models([net()])


POSITIVE_OR_GROUPS = st.one_of(KINDS["positive"],
                               st.sampled_from([{"w": -1.0}, {"g": NAN}, {3: 1.0}, {}]))
# per-step rates for steps=2: empty, NaN, 0, too short, text, 2-D, per group, infinite
BAD_PER_STEP_RATES = st.sampled_from([[], [1.0, NAN], [0.0, 1.0], [1.0], "ab", [[1.0, 1.0]],
                                      {"w": [0.0, 1.0]}, [1.0, INF]])
BAD_PER_STEP_DECAYS = st.sampled_from([[], [0.0, NAN], [-1.0, 0.0], [0.0], "ab", [[0.0, 0.0]],
                                       {"w": [-1.0, 0.0]}, [0.0, INF]])
NONNEG_OR_GROUPS = st.one_of(KINDS["nonneg"], st.sampled_from([{"w": -1e-3}, {"g": INF}, {}]))

CASES = [
    # models
    Case(NormLinear, lambda: dict(n_in=4, n_out=3),
         {"n_in": "size", "n_out": "size", "norm": st.sampled_from(["none", "", "BN", None, 3]),
          "eps": "nonneg", "affine": "bool",
          "momentum": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0000001),
                                st.sampled_from([NAN, INF, None, "0.1", True]))}),
    Case(MLP, lambda: dict(sizes=(4, 3, 2)),
         {"sizes": st.sampled_from([(4,), (4, 0, 2), (784, 2.7, 10), (4, True, 2), "42", None, 4,
                                    (4, -1, 2), (4, NAN, 2), [], {4, 2}, (4.0, 2)]),
          "norm": BAD_NAMES, "activation": BAD_NAMES, "eps": "nonneg"}),
    Case(SmallCNN, lambda: dict(in_channels=1, n_classes=2, width=1, image_size=4),
         {"in_channels": "size", "n_classes": "size", "width": "size",
          "image_size": st.sampled_from([3, 0, -1, 4.0, "4", None, True])}),
    Case(models.widths, lambda: dict(name="sizes", sizes=(4, 3)),
         {"sizes": st.sampled_from([(4,), (4, 0), (4, 2.5), None, "43", 4])}),
    Case(models.module, lambda: dict(name="model", value=torch.nn.Linear(2, 1)),
         {"value": st.sampled_from([None, 3, "m", torch.ones(2), [torch.nn.Linear(2, 1)]])},
         names={"value": "model"}),
    Case(models.split_groups, lambda: dict(model=net(), w=[]),
         {"model": st.sampled_from([None, 3, "m"]),
          "w": st.sampled_from([None, "w", 3, [torch.nn.Parameter(torch.ones(2))]])}),
    Case(models.groups, lambda: dict(model=net()),
         {"model": st.sampled_from([None, 3, object(), torch.ones(2)])}),
    Case(models.effective_eta, lambda: dict(eta=[0.1, 0.2], weight_norm_sq=[[1.0, 2.0]]),
         {"eta": "positive_array",
          "weight_norm_sq": st.sampled_from([None, "w", [0.0, 1.0], [-1.0, 1.0], [1.0, 1.0, 1.0],
                                             [[1.0, 2.0, 3.0]]])}),
    # stack
    Case(stack.Stack, lambda: {**vars(a_stack())},
         {"template": st.sampled_from([None, "net"]),
          "params": st.sampled_from([None, {}, {"a": torch.ones(())}, {"a": 3},
                                     {"a": torch.ones(2, 3), "b": torch.ones(3, 3)}]),
          "buffers": st.sampled_from([None, [], {"b": torch.ones(())}]),
          "groups": st.sampled_from([None, {"w": ["nope"]}])}),
    Case(stack.group_names, lambda: dict(model=net()), {"model": st.sampled_from([None, 3, "m"])}),
    Case(stack.from_models, lambda: dict(models=[net()]),
         {"models": st.sampled_from([None, [], torch.nn.Linear(4, 3), [3], [torch.nn.ReLU()],
                                     [torch.nn.Linear(4, 3), torch.nn.Linear(4, 2)],
                                     [torch.nn.Linear(4, 3), torch.nn.Linear(4, 3).double()]]),
          "device": KINDS["device"].filter(lambda d: d is not None)}),  # None: the model's
    Case(stack.write_back, lambda: dict(stack=a_stack(), models=[net()]),
         {"stack": st.sampled_from([None, 3, "s", net()]),
          "models": st.sampled_from([None, [], net(), [torch.nn.Linear(4, 3)], [net(), net()]])}),
    # train
    Case(TrainConfig, lambda: dict(steps=2),
         {"steps": "size", "batch_size": st.sampled_from([0, -1, 2.5, "3", True, NAN]),
          "eta": st.one_of(POSITIVE_OR_GROUPS, BAD_PER_STEP_RATES), "momentum": "fraction",
          "weight_decay": st.one_of(NONNEG_OR_GROUPS, BAD_PER_STEP_DECAYS),
          "loss": BAD_NAMES, "log_every": "size", "seed": "seed"}),
    Case(History, lambda: dict(step=np.arange(2), loss=np.ones(2), accuracy=np.ones(2),
                               eta={"g": np.ones(2)}, grad_norm_sq={"g": np.ones(2)},
                               weight_norm_sq={"g": np.ones((2, 1))}),
         {"step": st.sampled_from([None, "s", np.ones((2, 1))]),
          "loss": st.sampled_from([None, "x", np.ones(3), np.ones(1), 1.0]),
          "eta": st.sampled_from([None, np.ones(2), {"g": np.ones(3)}]),
          "weight_norm_sq": st.sampled_from([None, {"g": np.ones((3, 1))}]),
          "diverged_at": st.sampled_from([-1, 2.5, "3", True])}),
    Case(train.per_group, lambda: dict(value=1.0, names=["g", "w"], what="eta"),
         {"value": st.sampled_from([{"w": 1.0}, {"x": 1.0, "g": 1.0, "w": 1.0}]),
          "names": st.sampled_from([None, 3, "gw", [1, 2]]), "what": st.sampled_from([None, 3])},
         names={"value": "eta"}),
    Case(train.check_config, lambda: dict(config=TrainConfig(steps=2, batch_size=4),
                                          names=["g", "w"], n_examples=6),
         {"config": st.sampled_from([None, "c", {"steps": 2}, TrainConfig(eta={"w": 1.0}),
                                     TrainConfig(batch_size=7)]),
          "names": st.sampled_from([None, 3, "gw"]), "n_examples": "size"}),
    Case(train.per_step, lambda: dict(value=[1.0, 0.5], steps=2, name="eta", nonneg=False),
         {"value": st.sampled_from([[1.0], [NAN, 1.0], [0.0, 1.0], [-0.1, 1.0], "ab", None,
                                    -1.0, NAN, [[1.0, 1.0]], lambda t: 1.0]),
          "steps": "size", "name": st.sampled_from([None, 3]), "nonneg": "bool"},
         names={"value": "eta"}),
    Case(train.per_step, lambda: dict(value=[0.0, 0.5], steps=2, name="weight_decay",
                                      nonneg=True),
         {"value": st.sampled_from([[0.0], [NAN, 1.0], [-0.1, 1.0], "ab", -1.0, [1.0, INF]])},
         names={"value": "weight_decay"}),
    Case(train.loss_and_accuracy, lambda: dict(out=torch.randn(6, 2), y=Y(), kind="mse"),
         {"kind": BAD_NAMES, "y": "labels",
          "out": st.sampled_from([None, torch.ones(6, 2).long(), torch.ones(0, 2),
                                  torch.ones(1, 6, 2), torch.ones(6, 2).tolist()])}),
    Case(train.sgd_update, lambda: dict(p=torch.ones(2, 3), grad=torch.ones(2, 3),
                                        buf=torch.zeros(2, 3), eta=torch.tensor([0.1, 0.2]),
                                        weight_decay=torch.zeros(2), momentum=torch.zeros(2)),
         {"p": "tensor", "grad": "tensor", "buf": "tensor",
          "eta": st.sampled_from([torch.tensor([0.1, -0.2]), torch.tensor([NAN, 0.1]),
                                 torch.tensor([0.1]), 0.1, None]),
          "weight_decay": st.sampled_from([torch.tensor([-1.0, 0.0]), torch.zeros(3)]),
          "momentum": st.sampled_from([torch.tensor([1.0, 0.0]), torch.tensor([-0.1, 0.0])])}),
    Case(train.unpack, lambda: dict(data=(X(), Y())), {"data": bad_pairs}),
    Case(datachecks.probe_model, lambda: dict(stack=a_stack(), X=X(), y=Y()),
         {"stack": st.sampled_from([None, "s", net()]),
          "X": st.sampled_from([None, X().tolist(), X().long(), X().double(), X()[:, :3],
                                torch.randn(6, 5)]),
          "y": st.sampled_from([None, Y().tolist(), Y() + 5, Y() - 1, Y().numpy()]),
          "name": st.sampled_from([None, 3, b"data"])}),
    Case(Recorder, lambda: dict(groups={"g": ["head.weight"]}, k=2),
         {"groups": st.sampled_from([None, [("g", ["a"])], {3: ["a"]}, {"g": "a"}, {"g": None}]),
          "k": "size"}),
    Case(train.fit, lambda: dict(stack=a_stack(), data=(X(), Y()), configs=[TrainConfig(steps=1)]),
         {"stack": st.sampled_from([None, "s", net()]), "data": bad_data,
          "configs": st.sampled_from([None, TrainConfig(steps=1), [], [TrainConfig(steps=1)] * 2,
                                      [TrainConfig(steps=1, batch_size=7)], ["c"]]),
          "bar": "bool", "observe": NOT_CALLABLE,
          "init_momentum": st.sampled_from([3, "f", lambda p: {"nope": torch.ones(1)},
                                            lambda p: 3, lambda p: {"head.bias": 1.0}])}),
    Case(train.batched_grad, lambda: dict(loss_fn=lambda *a: None, k=1),
         {"loss_fn": "callable", "k": "size"}),
    Case(train.train, lambda: dict(model=net(), data=(X(), Y()), config=TrainConfig(steps=1)),
         {"model": st.sampled_from([None, "m", torch.nn.ReLU(), 3]), "data": bad_data,
          "config": st.sampled_from([None, {"steps": 1}, [TrainConfig()], TrainConfig(batch_size=7),
                                     TrainConfig(eta={"w": 1.0})]),
          "bar": "bool", "observe": NOT_CALLABLE, "init_momentum": NOT_CALLABLE}),
    # sweep
    Case(sweep.Grid, lambda: dict(eta=[0.1, 1.0]),
         {"eta": st.sampled_from([[], [[0.1]], [0.1, NAN], [INF], [0.1, 0.1], "ab", None, 0.1,
                                 [1 + 1j], {"a": 1}, [[0.1], [0.2, 0.3]]])}),
    Case(sweep.SweepResult, lambda: dict(grid=sweep.Grid(eta=[0.1, 1.0]), step=np.arange(2),
                                         metrics={"loss": np.ones((2, 2))},
                                         diverged_at=np.full(2, -1)),
         {"grid": st.sampled_from([None, {"eta": [0.1]}, sweep.Grid(eta=[0.1])]),
          "metrics": st.sampled_from([None, {"loss": np.ones(3)}, [1]]),
          "diverged_at": st.sampled_from([np.ones(3), None]), "step": st.sampled_from([None, "s"])}),
    Case(sweep.choose_mode, lambda: dict(model=net(), device="cpu"),
         {"model": st.sampled_from([None, 3, "m"]), "device": "device"}),
    Case(sweep.config_for, lambda: dict(point={"eta": 0.5}, base=TrainConfig(steps=1)),
         {"point": st.sampled_from([None, [("eta", 0.5)], {"eta": -1.0}, {"eta_w": NAN},
                                    {"momentum": 1.0}, {"seed": 1.5}, {"weight_decay_g": -1.0}]),
          "base": st.sampled_from([None, {"steps": 1}])}),
    Case(sweep.model_kwargs, lambda: dict(point={"width": 3, "seed": 1}),
         {"point": st.sampled_from([None, {"seed": -1}, {"seed": 1.5}, {"seed": "1"},
                                    [("seed", 1)]])}),
    Case(sweep.data_fingerprint, lambda: dict(data=(X(), Y())), {"data": bad_pairs}),
    Case(sweep.train_grid, lambda: dict(make_model=make, data=(X(), Y()),
                                        config=TrainConfig(steps=1), grid=sweep.Grid(eta=[0.1]),
                                        mode="batched", bar=False),
         {"make_model": st.sampled_from([None, 3, lambda: net(), lambda seed: 3]),
          "data": bad_data, "config": st.sampled_from([None, {"steps": 1}]),
          "grid": st.sampled_from([None, {"eta": [0.1]}, sweep.Grid(eta=[-1.0]),
                                   sweep.Grid(widht=[3]), sweep.Grid(seed=[-1]),
                                   sweep.Grid(momentum=[1.0]), sweep.Grid(seed=[0.5])]),
          "mode": BAD_NAMES, "chunk": "size", "cache": st.sampled_from([3, "", b"x"]),
          "bar": "bool", "observe": NOT_CALLABLE, "init_momentum": NOT_CALLABLE}),
    Case(sweep.collect, lambda: dict(grid=sweep.Grid(eta=[0.1]), histories=[history()]),
         {"grid": st.sampled_from([None, sweep.Grid(eta=[0.1, 0.2])]),
          "histories": st.sampled_from([None, [], [3], "h", [history(), history()]])}),
    Case(sweep.map_grid, lambda: dict(fn=lambda a: a, grid=sweep.Grid(a=[1, 2]), bar=False),
         {"fn": st.sampled_from([None, 3, lambda b: b]),
          "grid": st.sampled_from([None, sweep.Grid(b=[1])]),
          "chunk": "size", "cache": st.sampled_from([3, ""]), "bar": "bool"}),
]

EXEMPT = {}

test_bad_input_is_refused_by_name = parametrize(CASES)


# The specific cases of issue 12 --------------------------------------------------------

@pytest.mark.parametrize("eta, match", [
    ([1.0, -0.5, 1.0], "^eta must hold numbers > 0"),
    ([1.0, NAN, 1.0], "^eta must be finite"),
    ([1.0, 1.0], "^eta has 2 rates, need one per step"),
    ({"w": [1.0, 0.0, 1.0], "g": 0.1}, r"^eta\['w'\] must hold numbers > 0"),
])
def test_a_negative_nan_or_short_per_step_eta_is_refused(eta, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(steps=3, eta=eta)


def test_nan_or_empty_data_is_bad_input_not_divergence():
    Xn = X()
    Xn[3, 2] = NAN
    with pytest.raises(ValueError, match="^data.X must be finite"):
        train.train(net(), (Xn, Y()), TrainConfig(steps=2))
    with pytest.raises(ValueError, match="^data.X must not be empty"):
        train.train(net(), (X()[:0], Y()[:0]), TrainConfig(steps=2))
    yn = torch.tensor([0.5, NAN, 0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="^data.y must be finite"):
        train.train(torch.nn.Linear(4, 1), (X(), yn), TrainConfig(steps=2, loss="mse"))


def test_genuine_divergence_is_still_a_result():
    hist = train.train(net(), (X(), Y()), TrainConfig(steps=30, eta=1e30))
    assert hist.diverged and hist.diverged_at >= 1


def test_unknown_loss_names_are_refused():
    with pytest.raises(ValueError, match="^loss must be one of 'cross_entropy', 'mse', 'sse'"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="^kind must be one of"):
        train.loss_and_accuracy(torch.randn(6, 2), Y(), "hinge")


def test_sizes_and_dtypes_are_not_coerced():
    with pytest.raises(TypeError, match=r"^sizes\[1\] must be an integer >= 1, got float 2.7"):
        MLP((784, 2.7, 10))
    with pytest.raises(TypeError, match=r"^sizes\[0\] must be an integer"):
        MLP((True, 10))
    with pytest.raises(ValueError, match="^n_in must be an integer >= 1, got 0"):
        NormLinear(0, 6)
    with pytest.raises(ValueError, match="^eps must be a finite number >= 0, got nan"):
        MLP((4, 3, 2), eps=NAN)
    with pytest.raises(TypeError, match="^steps must be an integer"):
        TrainConfig(steps=2.0)
    with pytest.raises(TypeError, match="^data.X must be a floating tensor"):
        train.train(net(), (X().long(), Y()), TrainConfig(steps=1))
    assert MLP(np.array([4, 3, 2])).head.in_features == 3  # NumPy integers are integers


@pytest.mark.parametrize("boundary", ["train", "fit", "train_grid"])
@pytest.mark.parametrize("data, error, match", [
    ((X().double(), Y()), TypeError, "^data.X is torch.float64 but the model's parameters are "
                                     "torch.float32"),
    ((torch.randn(6, 5), Y()), ValueError, r"^data.X of shape \(6, 5\) does not fit the model "
                                           r"\(its first linear layer takes 4 features"),
    ((X(), torch.tensor([0, 1, 7, 1, 0, 0])), ValueError, r"^data.y must hold labels in 0..1, "
                                                          r"got 0..7"),
])
def test_data_that_do_not_fit_the_model_are_refused_by_name(boundary, data, error, match):
    config = TrainConfig(steps=1)
    call = {"train": lambda: train.train(net(), data, config),
            "fit": lambda: train.fit(stack.from_models([net()]), data, [config]),
            "train_grid": lambda: sweep.train_grid(make, data, config, sweep.Grid(eta=[0.1]),
                                                   bar=False)}[boundary]
    with pytest.raises(error, match=match):
        call()


def test_seeds_are_integers_in_range():
    assert type(TrainConfig(seed=np.int64(3)).seed) is int
    a = train.train(net(), (X(), Y()), TrainConfig(steps=2, batch_size=2, seed=np.int64(3)))
    b = train.train(net(), (X(), Y()), TrainConfig(steps=2, batch_size=2, seed=3))
    np.testing.assert_array_equal(a.loss, b.loss)  # same code path, same batches
    for bad, error in ((1.5, TypeError), ("3", TypeError), (True, TypeError), (-1, ValueError),
                       (2**63, ValueError)):
        with pytest.raises(error, match="^seed must be an integer in"):
            TrainConfig(seed=bad)
    assert sweep.model_kwargs({"seed": np.int64(2)}) == {"seed": 2}
    with pytest.raises(ValueError, match="^grid axis 'seed' must be an integer"):
        sweep.train_grid(make, (X(), Y()), TrainConfig(steps=1), sweep.Grid(seed=[-1]), bar=False)


@pytest.mark.parametrize("axes, error, match", [
    (dict(eta=[]), ValueError, "^eta must be a non-empty 1-D list"),
    (dict(eta=[0.1, NAN]), ValueError, "^eta must hold finite values"),
    (dict(eta=[0.1, 0.1]), ValueError, "^eta holds a value twice"),
    (dict(eta="0.1"), TypeError, "^eta must be a list of values"),
])
def test_bad_grid_axes_are_refused_by_name(axes, error, match):
    with pytest.raises(error, match=match):
        sweep.Grid(**axes)


def test_grid_axes_nobody_takes_are_refused_by_name():
    with pytest.raises(ValueError, match="^grid axis 'widht' is neither a training axis"):
        sweep.train_grid(make, (X(), Y()), TrainConfig(steps=1), sweep.Grid(widht=[3]), bar=False)
    with pytest.raises(ValueError, match="^grid axis 'b' is neither an argument of fn"):
        sweep.map_grid(lambda a: a, sweep.Grid(b=[1, 2]), bar=False)
    assert sweep.map_grid(lambda **kw: kw["b"], sweep.Grid(b=[1, 2]), bar=False).tolist() == [1, 2]
