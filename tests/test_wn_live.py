"""The WN chapter's slider compute (issue 18, live latency): a move off the site grid,
in α, η or the width m, trains only its own pair of networks, and gets the curves the
grid's stacked run gives."""

import numpy as np
import pytest

from lib import controls
from lib.wn import experiments, networks, training

from test_wn import path_rtol


@pytest.fixture
def stacks(monkeypatch):
    """The size (K) and kind of every stack training.train_batch is asked to train."""
    seen, real = [], training.train_batch

    def spy(params_list, *args, normalized=True, **kwargs):
        seen.append((len(params_list), "wn" if normalized else "plain"))
        return real(params_list, *args, normalized=normalized, **kwargs)
    monkeypatch.setattr(training, "train_batch", spy)
    return seen


@pytest.fixture(scope="module")
def data():
    return experiments.unit_sphere_data(12, 6, seed=3)


def test_width_off_the_grid_trains_one_pair_not_the_grid(data, stacks):
    runs = experiments.Comparison(*data, steps=20, alphas=[0.1, 1.0], etas=[0.1, 1.0],
                                  widths=[16, 32])
    runs(1.0, 0.1, 16)                               # on the grid: the grid, two stacks
    assert stacks == [(4, "wn"), (2, "plain")]
    runs(1.0, 0.1, 24)                               # width off the grid: one pair
    runs(0.5, 0.1, 24)                               # then α: the plain run is reused
    runs(0.5, 0.3, 24)                               # then η: a new pair
    assert stacks[2:] == [(1, "wn"), (1, "plain"), (1, "wn"), (1, "wn"), (1, "plain")]
    runs(0.1, 1.0, 16)                               # the grid of width 16 is kept
    assert len(stacks) == 7


def test_off_grid_width_gives_the_grid_runs_curves(data):
    """(α, η) = (0.1, 1) at m = 24 within the 2 × 2 grid (stacks of 4 and 2) and alone
    (stacks of 1): the same runs summed in another order, so they agree to the
    tolerance path_rtol derives from the measured amplification (spectra by Weyl)."""
    X, y = data
    family = experiments.Comparison(X, y, 30, [0.1, 10.0], [0.01, 1.0], widths=[24])
    alone = experiments.Comparison(X, y, 30, [0.1, 10.0], [0.01, 1.0], widths=[40])
    r, s = family(0.1, 1.0, 24), alone(0.1, 1.0, 24)
    tol = max(path_rtol(networks.init_wn(6, 24, 0.1, 0), X, y, 1.0, 30),
              path_rtol(networks.init_wn(6, 24, 1.0, 0), X, y, 1.0, 30, normalized=False))
    assert r["eta"] == s["eta"] == 1.0
    for key in ("wn", "plain"):
        np.testing.assert_allclose(r[key], s[key], rtol=tol, err_msg=key)
    for key in ("wn_spec0", "wn_specT", "plain_spec0", "plain_specT"):
        np.testing.assert_allclose(r[key], s[key], rtol=0, atol=2 * tol * s[key].max(),
                                   err_msg=key)
    assert np.abs(r["wn"] - family(10.0, 1.0, 24)["wn"]).max() > 1e-3   # α matters


def test_a_move_reports_both_runs_steps(data):
    heard = []
    runs = experiments.Comparison(*data, steps=10, alphas=[], etas=[], widths=[])
    with controls.reporting(heard.append):
        runs(1.0, 0.1, 16)
    np.testing.assert_allclose(heard, np.r_[np.arange(11), 10 + np.arange(11)] / 20)
    heard.clear()
    with controls.reporting(heard.append):
        runs(2.0, 0.1, 16)                           # plain run reused: WN steps only
    np.testing.assert_allclose(heard, np.arange(11) / 10)


def test_slider_suggestion_rescaling_holds_at_the_slider_steps():
    """The chapter's 'things to try' for the slider figure (cpu scale, width 200, half the
    sweeps' steps): at α = 0.1, η = 0.1 the largest eigenvalue of Λ starts above the
    stability line 2/η and ends below it. Measured 113.6 and 10.5 against 20 (the network
    rescales itself within 3 steps: 51.7 after 1, 16.3 after 2). Fails if the end spectrum
    were the start's (Λ recorded at the wrong step) or the run had a single step."""
    from lib import scale
    sz = experiments.sizes(scale.SCALES["cpu"])
    X, y = experiments.unit_sphere_data(sz.n, sz.d, seed=0)
    r = experiments.Comparison(X, y, sz.steps // 2, [], [])(0.1, 0.1, 200)
    line = 2 / 0.1
    assert np.max(r["wn_spec0"]) > 2 * line and np.max(r["wn_specT"]) < line / 1.5
