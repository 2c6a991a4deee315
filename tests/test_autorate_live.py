"""The auto rate-tuning chapter's slider computes (issue 18, live latency): a move off the
site grid trains only its own value, and gets the curves the grid's family run gives."""

import functools

import numpy as np
import pytest
import torch

from lib import controls
from lib.autorate import experiments


def tiny(n=48, d=8, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen), torch.randint(0, classes, (n,), generator=gen)


def counted(run):
    """``run`` that also records the values of every family it is asked to train."""
    calls = []

    def wrapped(values, **others):
        calls.append((tuple(values), others))
        return run(values, **others)
    return wrapped, calls


def assert_same_curves(a, b, rtol):
    assert a.keys() == b.keys()
    for k in a:
        if np.ndim(a[k]) == 0:
            assert a[k] == b[k], k
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=0, err_msg=k)


def test_rates_off_grid_trains_alone_and_matches_the_family(f64):
    """η_w = 3 in a family of three (one stack of K = 3) and alone (K = 1). The members
    of a stack are independent runs from the same start, so the two differ only by the
    order of sums: ~1e-15 relative per step. Over these 15 steps of full-batch GD a
    perturbation grows at most ~1e4-fold (test_rate_curves_stack_equals_separate_runs
    measured it on this problem at η_w = 50 without BN; at 3 it is smaller), so 15 · 1e4 ·
    1e-15 ≈ 2e-10 bounds the gap; 1e-8 leaves room, and a wrong run differs at O(1)."""
    run, calls = counted(functools.partial(experiments.rate_curves, tiny(), steps=15, width=10))
    grid = experiments.SliderRuns(run, "eta_w", (0.5, 3.0, 50.0), {"eta_g": (0.1, 1.0)})
    off = experiments.SliderRuns(run, "eta_w", (0.5, 50.0), {"eta_g": (0.1, 1.0)})
    family, alone = grid(eta_w=3.0, eta_g=0.1), off(eta_w=3.0, eta_g=0.1)
    assert [c[0] for c in calls] == [(0.5, 3.0, 50.0), (3.0,)]
    assert alone["loss_bn"].shape == (16,) and np.isfinite(alone["loss_bn"]).all()
    assert_same_curves(family, alone, rtol=1e-8)
    assert np.abs(family["loss_bn"] - grid(eta_w=0.5, eta_g=0.1)["loss_bn"]).max() > 1e-3
    grid(eta_w=50.0, eta_g=0.1)                     # the same family: nothing trained
    grid(eta_w=0.5, eta_g=0.3)                      # η_g off its grid: one η_w alone
    assert [c[0] for c in calls[2:]] == [(0.5,)] and calls[2][1] == {"eta_g": 0.3}


def test_scale_off_grid_trains_one_pair_and_matches_the_family(f64):
    """Both SGD runs of g₀ = 4, λ = 0.02 within the family of three g₀ (K = 6) and alone
    (K = 2): same starts, same mini-batches (each run's own seeded shuffle), sums in
    another order. Over 40 steps a perturbation grows < 10-fold on this problem (see
    test_initial_scale_r_equals_rate_divided_by_r_squared), so ~1e-15 per step gives at
    most 40 · 10 · 1e-15 = 4e-13; 1e-10 leaves room."""
    run, calls = counted(functools.partial(
        experiments.scale_pair, tiny(), eta_w=2.0, eta_g=0.1, steps=40, width=10,
        batch_size=16))
    grid = experiments.SliderRuns(run, "g0", (0.3, 1.0, 4.0), {"weight_decay": (0.0, 0.02)})
    off = experiments.SliderRuns(run, "g0", (0.3, 1.0), {"weight_decay": (0.0, 0.02)})
    family, alone = grid(g0=4.0, weight_decay=0.02), off(g0=4.0, weight_decay=0.02)
    assert [c[0] for c in calls] == [(0.3, 1.0, 4.0), (4.0,)]
    assert alone["loss"].shape == (2, 41)
    assert_same_curves(family, alone, rtol=1e-10)
    np.testing.assert_allclose(alone["loss"][0], alone["loss"][1], rtol=1e-10)  # Lemma 2.7
    assert np.abs(family["loss"] - grid(g0=0.3, weight_decay=0.02)["loss"]).max() > 1e-3


def test_a_value_within_float_formatting_of_a_grid_value_is_on_the_grid():
    run, calls = counted(lambda values, eta_g: {"step": np.arange(2),
                                                "x": np.array(values)[:, None] * [1, eta_g]})
    runs = experiments.SliderRuns(run, "eta_w", (0.1, 1.0), {"eta_g": (0.5,)})
    r = runs(eta_w=0.1 * (1 + 1e-12), eta_g=0.5)
    np.testing.assert_array_equal(r["x"], [0.1, 0.05])
    assert [c[0] for c in calls] == [(0.1, 1.0)]
    assert runs(eta_w=0.2, eta_g=0.5)["x"][1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="eta_g"):
        runs(eta_w=0.2)


def test_training_reports_its_steps_to_a_live_bar(f64):
    """rate_curves trains two stacks (with BN, then without): 2·(T+1) reports climbing from
    0 to 1; scale_pair one stack: T+1 reports."""
    heard = []
    with controls.reporting(heard.append):
        experiments.rate_curves(tiny(), [0.5], 0.1, steps=6, width=10)
    np.testing.assert_allclose(heard, np.r_[np.arange(7), 6 + np.arange(7)] / 12)
    heard.clear()
    with controls.reporting(heard.append):
        experiments.scale_pair(tiny(), [2.0], 0.0, eta_w=1.0, eta_g=0.1, steps=5, width=10,
                               batch_size=16)
    np.testing.assert_allclose(heard, np.arange(6) / 5)
