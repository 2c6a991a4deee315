"""lib.explr.toy's fast full-batch loop (the live slider's compute) against the plain one.

The reference below is the plain NumPy loop: one :func:`toy._grad` per step. The fast
loop (compiled with Numba) does the same operations, its sums in another order. Full runs are compared only where the
dynamics are not chaotic (ηλ ≤ 1e-3 here: a 1-ulp change of w0 moves the result by
< 1e-14 relative); above ηλ ≈ 3e-3 a 1-ulp change of w0 changes the run by O(1), so there
each single step is compared from the reference's own iterate (the map, not the orbit).
"""

import numpy as np
import pytest

from lib.explr import toy

EPS = np.finfo(float).eps


def _reference(X, y, w, eta, weight_decay, steps):
    ws = np.empty((steps + 1, w.size))
    ws[0] = w
    for t in range(steps):
        w = (1 - eta * weight_decay) * w - eta * toy._grad(X, y, w, True)
        ws[t + 1] = w
    return ws


@pytest.fixture(scope="module")
def problem():
    X, y = toy.toy_data(n=200, m=10, seed=0)
    return X, y, np.random.default_rng(1).standard_normal(10)


def _tolerance(X, ws):
    """Round-off of one step: each of the n = 200 terms of X.T @ ds and the sums inside the
    BN gradient carries a relative error of about (n + m)·ε, on terms of size |X|·|ds|;
    the step adds η times that to w. 4·(n + m)·ε·‖w‖ bounds it with room to spare."""
    n, m = X.shape
    return 4 * (n + m) * EPS * np.linalg.norm(ws, axis=1, keepdims=True)


@pytest.mark.parametrize("eta, weight_decay", [(0.03, 1e-3), (0.3, 1e-3), (1.0, 1e-4)])
def test_fast_loop_gives_the_reference_run_where_it_is_not_chaotic(problem, eta, weight_decay):
    X, y, w0 = problem
    fast = toy.toy_gd(X, y, w0, eta, weight_decay, 1000)["w"]
    ref = _reference(X, y, w0, eta, weight_decay, 1000)
    # 1000 steps of a contracting map: the per-step round-off adds up, at most T times
    gap = np.abs(fast - ref).max(axis=1, keepdims=True)
    assert np.all(gap <= 1000 * _tolerance(X, ref)), gap.max()


@pytest.mark.parametrize("eta, weight_decay", [(1.0, 1e-2), (3.0, 0.05), (0.3, 0.1)])
def test_fast_loop_takes_the_reference_step_from_every_point_of_a_chaotic_run(
        problem, eta, weight_decay):
    X, y, w0 = problem
    ref = _reference(X, y, w0, eta, weight_decay, 300)
    one = np.array([toy._bn_gd(X, y, w, eta, weight_decay, 1)[1] for w in ref[:-1]])
    gap = np.abs(one - ref[1:]).max(axis=1, keepdims=True)
    assert np.all(gap <= _tolerance(X, ref[1:])), gap.max()


def test_trajectory_is_every_fifth_step_of_toy_gd(problem):
    X, y, w0 = problem
    r = toy.toy_trajectory(X, y, w0, eta=1.0, weight_decay=1e-2, steps=1000, every=5)
    full = toy.toy_gd(X, y, w0, 1.0, 1e-2, 1000)
    assert r["step"].tolist() == list(range(0, 1001, 5))
    np.testing.assert_array_equal(r["error"], full["error"][::5])
    np.testing.assert_array_equal(r["norm"], full["norm"][::5])
    np.testing.assert_allclose(r["error"], toy.toy_error(full["w"][::5]), rtol=0, atol=1e-15)
