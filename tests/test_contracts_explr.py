"""lib.explr (schedules, networks, experiments, toy, figures) refuses bad input by name.

The property-based cases attack every argument of every public callable; the tests after
them are the specific bad inputs of issue 12: schedules that overflow float64, bad
rates/decays/momenta/steps/milestones, bad network sizes, and the experiment runners.
"""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from matplotlib.figure import Figure

from contracts import NAN, INF, Case, parametrize
import lib.explr
from lib import scale, train
from lib.explr import comparisons, experiments, norms, figures, networks, schedules, toy
from lib.explr import jobs as explr_jobs

# ---- bad values of this group's argument kinds (where a harness kind does not fit) ----
SIZES_BAD = st.one_of(st.integers(max_value=0), st.sampled_from([2.5, 3.0, NAN, "3", True]))
UNIT_BAD = st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True),
                     st.sampled_from([NAN, INF, None, "0.5", True]))          # for (0, 1]
CALLABLE_OR_NONE_BAD = st.sampled_from([3, "f", [1, 2]])
SEEDS_BAD = st.sampled_from([(), (-1,), (0.5,), ("0",), None, 3, "0", (True,), (2**63,)])
WIDTHS_BAD = st.sampled_from([(), (4, 0), (4, -1), (4, 2.5), (4.0,), "48", None, 4, (True,)])
SIZES3_BAD = st.sampled_from([(12, 3), (12, 0, 3), (12, -1, 3), (12, 2.5, 3), (12, 8.0, 3),
                              "abc", None, 5, (12, True, 3), {"a": 1}])
BATCH_BAD = st.one_of(st.integers(max_value=0), st.integers(min_value=1000),
                      st.sampled_from([2.5, "3", True, NAN]))                  # None is legal
DEVICE_OR_NONE_BAD = st.sampled_from(["bogus", "gpu", 3, [], "cpu:x"]
                                     + ([] if torch.cuda.is_available() else ["cuda"]))
MILESTONES_BAD = st.sampled_from([(0,), (5, 5), (7, 3), (2.5,), ("3",), (10,), (-1,), None, 3,
                                  "ab", (True,), (4.0,)])


def mlp_pair(n=8, d=4, classes=2):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.arange(n) % classes


def image_pair(n=8):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 10


def pair_bad(make):
    """Bad (X, y) pairs derived from a good one: each message must name the argument."""
    X, y = make()
    nan = X.clone()
    nan.view(-1)[0] = NAN
    wide = torch.cat([X, X], 1)  # one feature (channel) too many for the model
    return st.sampled_from([None, X, (X,), (X, y, y), ("X", y), (X.long(), y), (nan, y),
                            (X, y.float()), (X, y[:-1]), (X[:0], y[:0]), (X, y + 100),
                            (X, y - 100), (wide, y), (X[:, None, None, None, :1], y)])


def array_bad(good):
    """Bad real arrays for arguments that accept any finite array of one shape."""
    good = np.asarray(good, dtype=float)
    nan, inf = good.copy(), good.copy()
    nan.flat[0], inf.flat[-1] = NAN, INF
    return st.sampled_from([None, "x", nan, inf, good[..., :0], good[..., :-1], good + 1j,
                            np.zeros_like(good)])


TOY_X, TOY_Y = toy.toy_data(6, 3, seed=0)
TOY_W = np.array([1.0, 0.5, -0.2])
TOY_X_BAD = st.sampled_from([None, "X", TOY_X[:, 0], TOY_X[:-1], TOY_X[:, :2], np.ones((6, 3)),
                             np.where(TOY_X > 0, NAN, TOY_X), TOY_X + 1j, TOY_X[:0]])
TOY_Y_BAD = st.sampled_from([None, "y", (TOY_Y + 1) / 2, TOY_Y[:-1], TOY_Y[:, None],
                             np.full(6, NAN), TOY_Y[:0]])
TOY_W_BAD = st.sampled_from([None, "w", np.zeros(3), np.array([1.0, NAN, 0.0]), TOY_W[:2],
                             TOY_W[None], np.array([INF, 0.0, 0.0])])

SETUP = comparisons.SCHEDULE_SETUPS["cpu"]
SETUP_FIELDS = {f: getattr(SETUP, f) for f in SETUP.__dataclass_fields__}
CONFIG = train.TrainConfig(steps=2, batch_size=4, momentum=0.9)
ETAS = np.array([0.1, 0.1, 0.01])


def tiny_mlp(seed):
    return networks.ScaleInvariantMLP((4, 3, 2), seed)


def tiny_resnet(seed=0):
    return networks.PreResNet(widths=(2,), seed=seed)


def fake_equivalence_runs():
    """Results shaped like experiments.equivalence's for three (momentum, dtype) keys."""
    g = np.random.default_rng(0)
    run = lambda: dict(step=np.arange(4), theta_a=g.standard_normal((4, 3)),  # noqa: E731
                       theta_b=g.standard_normal((4, 3)), alpha=0.99)
    return {(0.0, torch.float64): run(), (0.9, torch.float64): run(), (0.9, torch.float32): run()}


def fake_schedule_results():
    """Results shaped like comparisons.schedule_runs's: one schedule, two seeds."""
    g = np.random.default_rng(0)
    return {"a": [dict(step=np.arange(0, 9, 3), test_accuracy=g.uniform(size=3),
                       weight_norm_sq=g.uniform(1, 2, (3, 5))) for _ in range(2)]}


def fake_equilibrium():
    """Results shaped like experiments.equilibrium's: one point, 6 steps."""
    return [dict(eta=0.1, weight_decay=1e-2, momentum=0.0, predicted=2e-3,
                 step_sq=np.linspace(1, 2, 6), norm_sq=np.linspace(3, 4, 6))]


FIG_BAD = st.sampled_from([None, "fig", 3, np.zeros(2)])
YLIM_BAD = st.sampled_from([None, (1.0,), (2.0, 1.0), (0.0, 1.0), (1.0, NAN), "ab"])
RESULTS_BAD = st.sampled_from([None, {}, [1], {"a": 1}, {"a": []}, {"a": [{"step": [0]}]},
                               {"a": [dict(step=[0], test_accuracy=[0.5])]}, "results"])
POINTS_BAD = st.sampled_from([None, [], {}, [1], [{"eta": 0.1}], "points"])
TOY_RUNS_BAD = st.sampled_from([None, {}, {"a": 1}, {"a": {"error": [0.1]}}, [1], "runs"])
EQ_RUNS_BAD = st.sampled_from([None, {}, {"a": 1}, {(0.9, torch.float64): {"step": [0]}},
                               {(0.9, "float64"): fake_equivalence_runs()[0.9, torch.float64]},
                               {0.9: fake_equivalence_runs()[0.9, torch.float64]}, "runs"])


HYPER = {"eta": "positive", "weight_decay": "nonneg", "momentum": "fraction"}
HYPER_VALID = dict(eta=0.1, weight_decay=5e-3, momentum=0.9)

CASES = [
    # lib.explr.schedules
    Case(schedules.exp_lr_alpha, lambda: dict(HYPER_VALID), HYPER),
    Case(schedules.exp_lr, lambda: dict(HYPER_VALID, steps=3), {**HYPER, "steps": "size"}),
    Case(schedules.growth_per_epoch, lambda: dict(HYPER_VALID, steps_per_epoch=3),
         {**HYPER, "steps_per_epoch": "size"}),
    Case(schedules.equilibrium_ratio, lambda: dict(HYPER_VALID), HYPER),
    Case(schedules.step_decay, lambda: dict(eta=0.1, steps=10, milestones=[5, 8], factor=0.1),
         {"eta": "positive", "steps": "size", "milestones": MILESTONES_BAD, "factor": UNIT_BAD}),
    Case(schedules.cosine, lambda: dict(eta=0.1, steps=6, steps_per_epoch=2),
         {"eta": "positive", "steps": "size", "steps_per_epoch": "size"}),
    Case(schedules.texp, lambda: dict(etas=ETAS.copy(), weight_decay=5e-3, momentum=0.9),
         {"etas": "positive_array", "weight_decay": "nonneg", "momentum": "fraction"}),
    Case(schedules.texp_minus, lambda: dict(etas=ETAS.copy(), weight_decay=5e-3, momentum=0.9),
         {"etas": "positive_array", "weight_decay": "nonneg", "momentum": "fraction"}),
    Case(schedules.exp_cosine, lambda: dict(HYPER_VALID, steps=6, steps_per_epoch=2),
         {**HYPER, "steps": "size", "steps_per_epoch": "size"}),
    Case(schedules.texp_plus, lambda: dict(etas=ETAS.copy(), weight_decay=5e-3, momentum=0.9,
                                           alpha0=1.0),
         {"etas": "positive_array", "weight_decay": "nonneg", "momentum": "fraction",
          "alpha0": UNIT_BAD}),
    Case(schedules.texp_plus, lambda: dict(etas=ETAS.copy(), weight_decay=np.full(3, 5e-3),
                                           momentum=0.9, alpha0=1.0),
         {"weight_decay": st.sampled_from([np.full(2, 5e-3), np.full(4, 5e-3), np.full((3, 1), 5e-3),
                                           np.array([5e-3, NAN, 0.0]), np.array([INF, 0.0, 0.0]),
                                           [5e-3, "x", 0.0], np.full(3, 1 + 1j)])}),
    Case(schedules.texp_correction, lambda: dict(etas=ETAS.copy(), weight_decay=5e-3, momentum=0.9),
         {"etas": "positive_array", "weight_decay": "nonneg", "momentum": "fraction"}),
    # lib.explr.networks
    Case(networks.ScaleInvariantMLP, lambda: dict(sizes=(4, 3, 2), seed=0),
         {"sizes": SIZES3_BAD, "seed": "seed"}),
    Case(networks.BatchNorm2dNoEps, lambda: dict(num_features=3), {"num_features": SIZES_BAD}),
    Case(networks.PreActBlock, lambda: dict(c_in=2, c_out=4, stride=2),
         {"c_in": "size", "c_out": "size", "stride": "size"}),
    Case(networks.PreResNet, lambda: dict(in_channels=1, n_classes=3, widths=(2, 4), blocks=1,
                                          stem_stride=2, seed=0, augment=True),
               {"in_channels": "size", "n_classes": "size", "widths": WIDTHS_BAD, "blocks": "size",
                "stem_stride": "size", "seed": "seed", "augment": "bool"}),
    Case(networks.make_preresnet, lambda: dict(seed=0, in_channels=1, n_classes=3, widths=(2, 4),
                                               stem_stride=2, augment=False),
         {"seed": "seed", "in_channels": "size", "n_classes": "size", "widths": WIDTHS_BAD,
          "stem_stride": "size", "augment": "bool"}),
    Case(networks.crop_flip, lambda: dict(X=image_pair()[0], pad=4, generator=torch.Generator()),
         {"X": st.sampled_from([None, "X", image_pair()[0][0], image_pair()[0].long(), image_pair()[0][:0],
                                image_pair()[0].numpy(), torch.full((2, 1, 4, 4), NAN)]),
          "pad": st.sampled_from([-1, 2.5, NAN, "4", None, True]),
          "generator": st.sampled_from([3, "g", np.random.default_rng(0)])}),
    Case(networks.layer_sizes, lambda: dict(name="sizes", value=(4, 3, 2), min_len=3),
         {"name": st.sampled_from([None, 3, b"x", ("a",)]), "value": SIZES3_BAD,
          "min_len": "size"}, names={"value": "sizes"}),
    Case(networks.check_input, lambda: dict(model=tiny_mlp(0), X=mlp_pair(d=4, classes=2)[0],
                                            name="data", y=mlp_pair(d=4, classes=2)[1]),
         {"model": st.sampled_from([None, "net", 3, torch.zeros(2)]),
          "X": st.sampled_from([None, "X", [[1.0] * 4] * 8, np.ones((8, 4)), torch.ones(8, 4).long(),
                                torch.ones(0, 4), torch.ones(8, 3), torch.ones(1, 4), torch.ones(())]),
          "name": st.sampled_from([None, 3, b"x", ("a",)]),
          "y": st.sampled_from([torch.zeros(8), torch.arange(8) + 5, torch.arange(7) % 2,
                                torch.zeros(8, 1, dtype=torch.long), [0] * 8, "y"])},
         names={"X": "data"}),
    Case(experiments.exp_lr_momentum, lambda: dict(HYPER_VALID), HYPER),
    Case(experiments.unit_distance, lambda: dict(a=np.ones((2, 3)), b=np.eye(2, 3) + 0.1),
         {"a": array_bad, "b": array_bad}),
    # lib.explr.experiments: runners (bad arguments fail before any training)
    Case(experiments.paired_runs, lambda: dict(data=mlp_pair(), etas_a=np.full(2, 0.1), weight_decay_a=5e-3,
                                               etas_b=np.full(2, 0.1), weight_decay_b=0.0, momentum=0.9,
                                               init_b=None, make_model=tiny_mlp, batch_size=4,
                                               dtype=torch.float64, seed=0),
               {"data": pair_bad(mlp_pair), "etas_a": "positive_array", "etas_b": "positive_array",
                "weight_decay_a": "nonneg", "weight_decay_b": "nonneg", "momentum": "fraction",
                "init_b": CALLABLE_OR_NONE_BAD, "make_model": CALLABLE_OR_NONE_BAD,
                "batch_size": BATCH_BAD, "dtype": "dtype", "seed": "seed"}),
    Case(experiments.equivalence, lambda: dict(data=mlp_pair(), sizes=(4, 3, 2), **HYPER_VALID, steps=2,
                                               batch_size=4, dtype=torch.float64, seed=0),
               {"data": pair_bad(mlp_pair), "sizes": SIZES3_BAD, **HYPER, "steps": "size",
                "batch_size": BATCH_BAD, "dtype": "dtype", "seed": "seed"}),
    Case(comparisons.ScheduleSetup, lambda: dict(SETUP_FIELDS),
         {"dataset": "name", "n_train": "size", "n_test": "size", "widths": WIDTHS_BAD,
          "blocks": "size", "stem_stride": "size", "epochs": "size",
          "milestones": st.sampled_from([(0,), (5, 5), (6, 4), (8,), (-1,), (2.5,), ("3",), None, 3,
                                         "ab", (True,)]),
          "augment": "bool",
          "batch_size": st.one_of(SIZES_BAD, st.just(SETUP.n_train + 1)),
          "eta": "positive", "weight_decay": "nonneg", "momentum": "fraction",
          "seeds": SEEDS_BAD}),
    Case(comparisons.schedule_data, lambda: dict(setup=SETUP, device=None),
         {"setup": st.sampled_from([None, "cpu", SETUP_FIELDS]), "device": DEVICE_OR_NONE_BAD}),
    Case(comparisons.schedule_runs, lambda: dict(make_model=tiny_resnet, data=image_pair(), test=image_pair(),
                                                 runs={"c": (np.full(2, 0.1), 5e-3)}, config=CONFIG,
                                                 seeds=(0,), cache_name=None),
               {"make_model": "callable", "data": pair_bad(image_pair), "test": pair_bad(image_pair),
                "runs": st.sampled_from([{}, None, [("c", 0.1)], {"c": 0.1}, {"c": (np.full(1, 0.1), 0.0)},
                                         {"c": (np.full(2, NAN), 0.0)}, {"c": (np.full(2, 0.1), -1.0)},
                                         {"c": (np.full(2, -0.1), 0.0)}, {"c": (np.full(2, 0.1), NAN)},
                                         {"c": (np.full(2, 0.1), 0.0, 3)}, {"c": (np.full(2, 0.1), 0.0, None, 1)}]),
                "config": st.sampled_from([None, {"steps": 2}, "config"]), "seeds": SEEDS_BAD,
                "cache_name": st.sampled_from([3, b"x", ["a"]]),
                "eval_every": st.sampled_from([0, -1, 2.5, "2", True])}),
    Case(comparisons.paper_schedules, lambda: dict(setup=SETUP, steps_per_epoch=3),
         {"setup": st.sampled_from([None, "cpu", SETUP_FIELDS]), "steps_per_epoch": "size"}),
    Case(networks.labelled_data, lambda: dict(name="data", data=mlp_pair()),
         {"data": st.sampled_from([None, "data", mlp_pair()[:1], (mlp_pair()[0], mlp_pair()[1][:-1]),
                                   (mlp_pair()[0], mlp_pair()[1].double()),
                                   (mlp_pair()[0], mlp_pair()[1][:, None]),
                                   (torch.full((8, 4), NAN), mlp_pair()[1])])}),
    Case(norms.monotone_bound, lambda: dict(etas=ETAS.copy(), momentum=0.9, start_dot=-0.5),
         {"etas": "positive_array", "momentum": "fraction", "start_dot": "finite"}),
    Case(norms.monotone_slack, lambda: dict(norm_sq=np.linspace(1, 2, 4), etas=ETAS.copy(),
                                            momentum=0.9, start_dot=-0.5),
         {"norm_sq": st.one_of(array_bad(np.linspace(1, 2, 4)), st.just(np.ones(3)),
                               st.just(np.array([1.0, -1.0, 2.0, 3.0]))),
          "etas": "positive_array", "momentum": "fraction", "start_dot": "finite"}),
    Case(norms.equilibrium, lambda: dict(data=mlp_pair(), sizes=(4, 3, 2), points=[(0.1, 5e-3, 0.9)],
                                               steps=2, batch_size=4, seed=0),
               {"data": pair_bad(mlp_pair), "sizes": SIZES3_BAD,
                "points": st.sampled_from([[], None, (0.1, 5e-3, 0.9), [(0.1, 5e-3)], [(-0.1, 0.0, 0.0)],
                                           [(0.1, NAN, 0.0)], [(0.1, 0.0, 1.0)], [(INF, 0.0, 0.0)], "pts"]),
                "steps": "size", "batch_size": BATCH_BAD, "seed": "seed"}),
    Case(experiments.exp_lr_curve, lambda: dict(HYPER_VALID, epochs=2, steps_per_epoch=5, every=3),
         {**HYPER, "epochs": "size", "steps_per_epoch": "size", "every": "size"}),
    Case(experiments.equivalence_distance, lambda: dict(data=mlp_pair(), weight_decay=5e-3,
                                                        momentum=0.9, sizes=(4, 3, 2), eta=0.1,
                                                        steps=2, batch_size=4),
         {"data": pair_bad(mlp_pair), "sizes": SIZES3_BAD, **HYPER, "steps": "size",
          "batch_size": BATCH_BAD}),
    Case(norms.norm_drift, lambda: dict(step_sq=np.r_[NAN, np.full(4, 1e-3)],
                                              norm_sq=np.linspace(1, 2, 5), start=2, eta=0.1,
                                              weight_decay=1e-2, momentum=0.9),
         {"step_sq": st.sampled_from([None, "s", np.full(4, 1e-3), np.r_[NAN, NAN, np.full(3, 1e-3)],
                                      np.r_[NAN, INF, np.full(3, 1e-3)]]),
          "norm_sq": array_bad(np.linspace(1, 2, 5)), "start": st.sampled_from([0, 4, -1, 2.5, None, "2", True]),
          "eta": "positive", "weight_decay": "positive", "momentum": "fraction"}),
    # lib.explr.toy: the section-3 toy
    Case(toy.toy_data, lambda: dict(n=4, m=2, seed=0), {"n": "size", "m": "size", "seed": "seed"}),
    Case(toy.toy_error, lambda: dict(w=TOY_W.copy()),
         {"w": st.sampled_from([None, "w", np.zeros(3), np.array([1.0, NAN]), TOY_W[:0],
                                np.array([[1.0, 0.0], [0.0, 0.0]]), np.float64(2.0)])}),
    Case(toy.toy_gd, lambda: dict(X=TOY_X, y=TOY_Y, w0=TOY_W.copy(), eta=0.5, weight_decay=1e-2,
                                          steps=2, bn=True),
               {"X": TOY_X_BAD, "y": TOY_Y_BAD, "w0": TOY_W_BAD, "eta": "positive",
                "weight_decay": "nonneg", "steps": "size", "bn": "bool"}),
    Case(toy.toy_loss, lambda: dict(X=TOY_X, y=TOY_Y, w=TOY_W.copy(), bn=True),
         {"X": TOY_X_BAD, "y": TOY_Y_BAD, "w": TOY_W_BAD, "bn": "bool"}),
    Case(toy.toy_grad, lambda: dict(X=TOY_X, y=TOY_Y, w=TOY_W.copy(), bn=True),
         {"X": TOY_X_BAD, "y": TOY_Y_BAD, "w": TOY_W_BAD, "bn": "bool"}),
    Case(toy.toy_trajectory, lambda: dict(X=TOY_X, y=TOY_Y, w0=TOY_W.copy(), eta=0.5,
                                          weight_decay=1e-2, steps=4, every=2),
         {"X": TOY_X_BAD, "y": TOY_Y_BAD, "w0": TOY_W_BAD, "eta": "positive",
          "weight_decay": "nonneg", "steps": "size", "every": "size"}),
    Case(toy.toy_sgd, lambda: dict(w0=TOY_W.copy(), eta=0.5, weight_decay=1e-2, steps=2,
                                   batch_size=8, seed=0, bn=True),
         {"w0": st.sampled_from([None, "w", np.zeros(3), np.array([1.0, NAN, 0.0]), TOY_W[:1],
                                 TOY_W[None], np.array([INF, 0.0, 0.0])]),
          "eta": "positive", "weight_decay": "nonneg", "steps": "size",
          "batch_size": st.sampled_from([1, 0, -2, 2.5, None, "8", True]), "seed": "seed", "bn": "bool"}),
    # lib.explr.figures (bad arguments fail before anything is drawn)
    Case(figures.draw_schedule, lambda: dict(fig=Figure(), epochs=2, steps_per_epoch=5,
                                             ylim=(1e-3, 1e12)),
         {"fig": FIG_BAD, "epochs": "size", "steps_per_epoch": "size", "ylim": YLIM_BAD}),
    Case(figures.equivalence, lambda: dict(runs=fake_equivalence_runs(), control=0.9),
         {"runs": EQ_RUNS_BAD, "control": st.sampled_from([1.0, -0.1, NAN, "0.9", 0.5, True])}),
    Case(figures.draw_distance, lambda: dict(fig=Figure(), steps=5),
         {"fig": FIG_BAD, "steps": "size"}),
    Case(comparisons.check_runs, lambda: dict(runs={"c": (ETAS.copy(), 0.0)}, steps=2),
         {"runs": st.sampled_from([None, {}, {"c": ETAS}, {"c": (ETAS,)}, {"c": (-ETAS, 0.0)},
                                   {"c": (ETAS, -1.0)}, {"c": (ETAS[:1], 0.0)},
                                   {"c": (np.full(3, NAN), 0.0)}, [("c", ETAS)], "runs",
                                   {"c": (ETAS, 0.0, "init")}, {"c": (ETAS, 0.0, None, None)}]),
          "steps": "size"}),
    Case(figures.learning_rates, lambda: dict(runs={"c": (ETAS.copy(), 0.0)}, steps_per_epoch=2),
         {"runs": st.sampled_from([None, {}, {"c": ETAS}, {"c": (ETAS,)}, {"c": (-ETAS, 0.0)},
                                   {"c": (np.full(3, NAN), 0.0)}, [("c", ETAS)], "runs"]),
          "steps_per_epoch": "size"}),
    Case(figures.schedule_runs, lambda: dict(results=fake_schedule_results(), steps_per_epoch=3,
                                             epochs=3, milestones=(1, 2), layer=3),
         {"results": RESULTS_BAD, "steps_per_epoch": "size", "epochs": "size",
          "milestones": st.sampled_from([None, "ab", (NAN,), (1, INF), ("a",)]),
          "layer": st.sampled_from([-1, 5, 2.5, None, "3", True])}),
    Case(figures.schedule_pairs, lambda: dict(results=fake_schedule_results(), panels={"p": ["a"]},
                                              steps_per_epoch=3, milestones=(1, 2)),
         {"results": RESULTS_BAD, "steps_per_epoch": "size",
          "panels": st.sampled_from([None, {}, {"p": []}, {"p": ["zz"]}, {"p": "a"}, "panels"]),
          "milestones": st.sampled_from([None, "ab", (NAN,), (1, INF), ("a",)])}),
    Case(figures.monotone, lambda: dict(results=fake_schedule_results(),
                                        slack={"a": [np.zeros(2), np.zeros(2)]}),
         {"results": RESULTS_BAD,
          "slack": st.sampled_from([None, {}, {"zz": [np.ones(2)]}, {"a": []}, {"a": 1}, "slack"])}),
    Case(figures.equilibrium, lambda: dict(points=fake_equilibrium(), window=2),
         {"points": POINTS_BAD, "window": st.sampled_from([0, -1, 6, 2.5, None, "2", True])}),
    Case(figures.toy_runs, lambda: dict(runs={"a": dict(error=np.ones(3), norm=np.ones(3))}),
         {"runs": TOY_RUNS_BAD}),
    Case(figures.draw_toy, lambda: dict(fig=Figure(), steps=5), {"fig": FIG_BAD, "steps": "size"}),
]
# lib.explr.jobs (python -m lib.reproduce explr): a public module once lib/explr/__init__.py
# lists it in __all__, as the other chapters list theirs
if "jobs" in lib.explr.__all__:
    CASES.append(Case(explr_jobs.jobs, lambda: dict(s=scale.current("cpu")),
                      {"s": st.sampled_from([None, "cpu", 3, scale.SCALES, {"name": "cpu"}])}))

EXEMPT = {}

test_bad_input_is_refused_by_name = parametrize(CASES)


# ---- schedules that overflow float64 are refused, by name, consistently --------------

LAM = 0.1      # with η = 0.1 and γ = 0: α = 1 − λη = 0.99, the rate grows ×1.0203 per step
ALPHA = 1 - 0.1 * LAM
FIRST_BAD = math.ceil(((math.log(np.finfo(float).max) - math.log(0.1)) / -math.log(ALPHA) - 1) / 2)


def test_the_first_overflowing_step_is_found_in_log_space():
    """η α^{−2t−1} > float64's max first at t = FIRST_BAD (35 426); one step less is fine."""
    assert 35_000 < FIRST_BAD < 36_000
    assert np.all(np.isfinite(schedules.exp_lr(0.1, LAM, 0.0, FIRST_BAD)))
    assert np.all(np.isfinite(schedules.texp(np.full(FIRST_BAD, 0.1), LAM, 0.0)))


@pytest.mark.parametrize("make,names", [
    (lambda n: schedules.exp_lr(0.1, LAM, 0.0, n), "weight_decay and steps"),
    (lambda n: schedules.texp(np.full(n, 0.1), LAM, 0.0), "weight_decay and etas"),
    (lambda n: schedules.texp_minus(np.full(n, 0.1), LAM, 0.0), "weight_decay and etas"),
    (lambda n: schedules.exp_cosine(0.1, LAM, 0.0, n, n), "weight_decay and steps"),
])
def test_overflowing_schedules_raise_naming_the_arguments_and_the_step(make, names):
    with pytest.raises(ValueError, match=f"^{names}: the rate exceeds float64 at step {FIRST_BAD} "):
        make(FIRST_BAD + 1)


def test_texp_plus_overflow_raises_instead_of_inf():
    # from a_0 = 1 the scales reach α a little later than exp_lr does: the step differs slightly
    with pytest.raises(ValueError, match=r"^weight_decay and etas: the rate exceeds float64 at step 35\d\d\d"):
        schedules.texp_plus(np.full(40_000, 0.1), LAM, 0.0)


def test_growth_per_epoch_refuses_to_overflow():
    with pytest.raises(ValueError, match="^weight_decay and steps_per_epoch: the growth per epoch"):
        schedules.growth_per_epoch(0.1, LAM, 0.0, 40_000)


def test_schedules_that_underflow_to_zero_are_refused():
    with pytest.raises(ValueError, match="^eta and factor: the rate underflows to 0 at step 9"):
        schedules.step_decay(0.1, 10, list(range(1, 10)), factor=1e-40)
    with pytest.raises(ValueError, match="^eta and steps: the rate underflows to 0"):
        schedules.cosine(5e-324, 4, 1)


def test_no_alpha_when_weight_decay_empties_the_weights():
    """γ = 0, λη = 1: α = 0 and η̃ = η/0: refused, not inf or a math domain error."""
    for call in (lambda: schedules.exp_lr_alpha(1.0, 1.0, 0.0), lambda: schedules.exp_lr(1.0, 1.0, 0.0, 3),
                 lambda: schedules.texp([0.5, 1.0], 1.0, 0.0)):
        with pytest.raises(ValueError, match="^weight_decay and (eta|etas): no real α > 0"):
            call()


# ---- bad rates, decays, momenta, steps, milestones -----------------------------------

@pytest.mark.parametrize("kwargs,name,error", [
    (dict(eta=-0.1), "eta", ValueError), (dict(eta=NAN), "eta", ValueError),
    (dict(eta=0.0), "eta", ValueError), (dict(eta="0.1"), "eta", TypeError),
    (dict(weight_decay=-1e-3), "weight_decay", ValueError),
    (dict(weight_decay=NAN), "weight_decay", ValueError),
    (dict(momentum=1.0), "momentum", ValueError), (dict(momentum=-0.1), "momentum", ValueError),
    (dict(momentum=NAN), "momentum", ValueError),
    (dict(steps=0), "steps", ValueError), (dict(steps=-5), "steps", ValueError),
    (dict(steps=10.0), "steps", TypeError), (dict(steps=True), "steps", TypeError),
])
def test_exp_lr_refuses_each_bad_argument_by_name(kwargs, name, error):
    with pytest.raises(error, match=f"^{name} must be"):
        schedules.exp_lr(**{**HYPER_VALID, "steps": 10, **kwargs})


@pytest.mark.parametrize("milestones,error", [
    ([0, 5], ValueError), ([5, 10], ValueError), ([5, 5], ValueError), ([7, 3], ValueError),
    ([2.5], TypeError), ([5.0], TypeError), ([True], TypeError), (["5"], TypeError),
    (5, TypeError), ("57", TypeError),
])
def test_milestones_must_be_increasing_integers_in_range(milestones, error):
    with pytest.raises(error, match="^milestones must"):
        schedules.step_decay(0.1, 10, milestones)
    assert schedules.step_decay(0.1, 10, (np.int64(3), 7)).tolist()[2:4] == [0.1, 0.010000000000000002]


def test_cosine_refuses_bad_epoch_lengths():
    for bad, error in ((0, ValueError), (2.0, TypeError), (None, TypeError)):
        with pytest.raises(error, match="^steps_per_epoch must be"):
            schedules.cosine(0.1, 10, bad)


# ---- networks --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,name,error", [
    (dict(blocks=-1), "blocks", ValueError), (dict(blocks=0), "blocks", ValueError),
    (dict(blocks=1.0), "blocks", TypeError), (dict(widths=(4, 0)), "widths", ValueError),
    (dict(widths=(4, 2.5)), "widths", TypeError), (dict(widths=()), "widths", ValueError),
    (dict(in_channels=0), "in_channels", ValueError), (dict(in_channels=3.0), "in_channels", TypeError),
    (dict(n_classes=-2), "n_classes", ValueError), (dict(n_classes="10"), "n_classes", TypeError),
    (dict(stem_stride=0), "stem_stride", ValueError), (dict(seed=-1), "seed", ValueError),
])
def test_preresnet_refuses_bad_sizes(kwargs, name, error):
    with pytest.raises(error, match=f"^{name}"):
        networks.PreResNet(**{"widths": (2, 4), **kwargs})


def test_batch_norm_without_eps_refuses_bad_sizes():
    with pytest.raises(ValueError, match="^num_features"):
        networks.BatchNorm2dNoEps(0)
    with pytest.raises(TypeError, match="^num_features"):
        networks.BatchNorm2dNoEps(2.0)
    bn = networks.BatchNorm2dNoEps(3)
    for x in (torch.ones(4, 2, 5, 5), torch.ones(4, 3, 5), torch.ones(1, 3, 1, 1)):
        with pytest.raises(ValueError, match=r"^x must be \(N, 3, H, W\) with N·H·W >= 2"):
            bn(x)
    assert bn(torch.randn(2, 3, 1, 1)).shape == (2, 3, 1, 1)


def test_networks_refuse_inputs_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"^x must be images \(N, 1, H, W\)"):
        networks.PreResNet(widths=(2,))(torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match="^x must be a batch of at least 2 inputs with 4 features"):
        networks.ScaleInvariantMLP((4, 3, 2))(torch.ones(5, 5))
    with pytest.raises(ValueError, match="^sizes needs at least 3 entries"):
        networks.ScaleInvariantMLP((4, 2))


# ---- the experiment runners check their arguments before training --------------------

@pytest.mark.parametrize("call,name", [
    (lambda: experiments.equivalence(mlp_pair(), sizes=(4, 3, 2), eta=NAN, steps=2), "eta"),
    (lambda: experiments.equivalence(mlp_pair(), sizes=(4, 3, 2), eta=-0.1, steps=2), "eta"),
    (lambda: experiments.equivalence(mlp_pair(), sizes=(4, 3, 2), momentum=1.0, steps=2), "momentum"),
    (lambda: experiments.equivalence(mlp_pair(d=5), sizes=(4, 3, 2), steps=2, batch_size=4), "data"),
    (lambda: experiments.paired_runs(mlp_pair(), [0.1, NAN], 0.0, [0.1, 0.1], make_model=tiny_mlp), "etas_a"),
    (lambda: experiments.paired_runs(mlp_pair(), [0.1, 0.1], 0.0, [0.1, -1.0], make_model=tiny_mlp), "etas_b"),
    (lambda: experiments.paired_runs(mlp_pair(), [0.1], 0.0, [0.1, 0.1], make_model=tiny_mlp), "etas_a and etas_b"),
    (lambda: experiments.paired_runs(mlp_pair(), [0.1], -1e-3, [0.1], make_model=tiny_mlp), "weight_decay_a"),
    (lambda: comparisons.schedule_runs(tiny_resnet, image_pair(), image_pair(),
                                       {"c": (np.full(2, -0.1), 0.0)}, CONFIG), "runs['c'] etas"),
    (lambda: comparisons.schedule_runs(tiny_resnet, image_pair(), image_pair(),
                                       {"c": (np.full(2, 0.1), NAN)}, CONFIG), "runs['c'] weight_decay"),
    (lambda: norms.equilibrium(mlp_pair(), (4, 3, 2), [(0.1, 5e-3, 0.9), (INF, 0.0, 0.0)], 2, 4),
     "points[1] eta"),
    (lambda: toy.toy_gd(TOY_X, TOY_Y, TOY_W, NAN, 0.0, 2), "eta"),
    (lambda: toy.toy_gd(TOY_X, TOY_Y, TOY_W, 0.5, -1.0, 2), "weight_decay"),
])
def test_runners_refuse_bad_rates_by_name(call, name):
    with pytest.raises(ValueError, match="^" + re.escape(name)):
        call()


def test_divergence_is_recorded_not_raised():
    """A finite rate so large that the weights overflow is a result: diverged_at is set."""
    r = experiments.paired_runs(mlp_pair(n=16), np.full(3, 1e300), 0.0, np.full(3, 0.1),
                                make_model=tiny_mlp, batch_size=16)
    assert r["diverged_at_a"] == 1 and r["diverged_at_b"] is None
    assert len(r["theta_a"]) == 1 and len(r["theta_b"]) == 4   # A's record stops there
