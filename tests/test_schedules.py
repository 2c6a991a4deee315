"""lib.explr.schedules against closed forms, independent root finding and direct loops."""

import math

import numpy as np
import pytest

from lib.explr import schedules


def larger_root(eta, lam, gamma):
    """The larger real root of x² − (1 + γ − λη)x + γ by numpy's companion matrix."""
    roots = np.roots([1.0, -(1 + gamma - lam * eta), gamma])
    return float(np.max(roots.real))


@pytest.mark.parametrize("eta,lam,gamma", [(0.1, 5e-4, 0.9), (0.1, 5e-3, 0.9), (1.0, 1e-2, 0.5),
                                           (0.05, 1e-3, 0.0), (0.3, 0.1, 0.2)])
def test_alpha_is_the_larger_root(eta, lam, gamma):
    a = schedules.exp_lr_alpha(eta, lam, gamma)
    assert a == pytest.approx(larger_root(eta, lam, gamma), rel=1e-8)
    assert abs(a * a - (1 + gamma - lam * eta) * a + gamma) < 1e-14
    assert math.sqrt(gamma) - 1e-12 <= a <= 1


def test_alpha_without_momentum_is_one_minus_lambda_eta():
    for eta, lam in [(0.1, 5e-4), (2.0, 0.3), (1.0, 0.0)]:
        assert schedules.exp_lr_alpha(eta, lam, 0.0) == pytest.approx(1 - lam * eta, abs=1e-15)


def test_standard_hyperparameters_give_1481_per_epoch():
    a = larger_root(0.1, 5e-4, 0.9)
    assert a == pytest.approx(0.999498, abs=5e-7)
    growth = schedules.growth_per_epoch(0.1, 5e-4, 0.9, 391)
    assert growth == pytest.approx(a ** (-2 * 391), rel=1e-8)
    assert round(growth, 3) == 1.481


def test_exp_lr_closed_form():
    eta, lam, gamma, steps = 0.1, 5e-3, 0.9, 50
    a = larger_root(eta, lam, gamma)
    etas = schedules.exp_lr(eta, lam, gamma, steps)
    assert etas.shape == (steps,)
    assert etas[0] == pytest.approx(eta / a, rel=1e-12)
    np.testing.assert_allclose(etas[1:] / etas[:-1], a ** -2, rtol=1e-12)
    np.testing.assert_allclose(etas, [eta * a ** (-2 * t - 1) for t in range(steps)], rtol=1e-10)


def test_root_is_real_exactly_up_to_the_bound():
    gamma, eta = 0.9, 0.1
    bound = (1 - math.sqrt(gamma)) ** 2 / eta   # largest λ with a real root
    schedules.exp_lr_alpha(eta, bound * (1 - 1e-9), gamma)
    with pytest.raises(ValueError, match=r"λη <= \(1 − √γ\)²"):
        schedules.exp_lr_alpha(eta, bound * 1.01, gamma)
    # the discriminant changes sign at the same place
    assert (1 + gamma - bound * 1.01 * eta) ** 2 - 4 * gamma < 0


@pytest.mark.parametrize("kwargs", [dict(eta=0.0, weight_decay=1e-3, momentum=0.9),
                                    dict(eta=-1.0, weight_decay=1e-3, momentum=0.9),
                                    dict(eta=0.1, weight_decay=-1e-3, momentum=0.9),
                                    dict(eta=0.1, weight_decay=1e-3, momentum=1.0),
                                    dict(eta=float("nan"), weight_decay=1e-3, momentum=0.9)])
def test_bad_hyperparameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        schedules.exp_lr_alpha(**kwargs)


def test_bad_steps_and_milestones_are_rejected():
    with pytest.raises(ValueError, match="steps"):
        schedules.exp_lr(0.1, 5e-4, 0.9, 0)
    with pytest.raises(ValueError, match="milestones"):
        schedules.step_decay(0.1, 100, [0, 50])
    with pytest.raises(ValueError, match="milestones"):
        schedules.step_decay(0.1, 100, [50, 50])
    with pytest.raises(ValueError, match="factor"):
        schedules.step_decay(0.1, 100, [50], factor=2.0)
    with pytest.raises(ValueError, match="^etas must not be empty"):
        schedules.texp(np.zeros((0,)), 5e-4, 0.9)
    with pytest.raises(ValueError, match="^etas must hold numbers > 0"):
        schedules.texp([0.1, -0.1], 5e-4, 0.9)


def test_step_decay_and_cosine_against_direct_loops():
    etas = schedules.step_decay(0.1, 100, [50, 75], factor=0.1)
    direct = [0.1 * (0.1 if t >= 50 else 1) * (0.1 if t >= 75 else 1) for t in range(100)]
    np.testing.assert_allclose(etas, direct, rtol=1e-15)
    cos = schedules.cosine(0.1, 95, 10)   # 10 epochs, the last one short
    direct = [0.1 * (1 + math.cos(math.pi * (t // 10) / 10)) / 2 for t in range(95)]
    np.testing.assert_allclose(cos, direct, rtol=1e-14)


def texp_plus_corrected(etas, lam, gamma):
    """TEXP++ (Theorem 2.13, a recursion) started at Theorem 2.9's α_0, with the derived
    correction e_t added to the weight decay of the first step of each phase."""
    e = schedules.texp_correction(etas, lam, gamma)
    return schedules.texp_plus(etas, lam + e / etas, gamma,
                               alpha0=larger_root(etas[0], lam, gamma))[0]


@pytest.mark.parametrize("lam", [5e-4, 5e-3])
@pytest.mark.parametrize("milestones", [[80], [60, 90]])
def test_texp_is_texp_plus_with_the_entry_correction(lam, milestones):
    """Theorem 2.12's closed form against Theorem 2.13's recursion: equal once e_t is added."""
    etas = schedules.step_decay(0.1, 120, milestones, factor=0.1)
    texp = schedules.texp(etas, lam, 0.9)
    # two float64 products of ~120 factors near 1: round-off ~120 · 1.1e-16 ≈ 1e-14 relative
    # (4e-13 measured); 1e-11 leaves ×25 and is far below the gap without e_t (next line)
    np.testing.assert_allclose(texp, texp_plus_corrected(etas, lam, 0.9), rtol=1e-11)
    plain = schedules.texp_plus(etas, lam, 0.9, alpha0=larger_root(0.1, lam, 0.9))[0]
    assert np.max(np.abs(texp / plain - 1)) > 1e-7               # ≥ 2e-6 at λη = 5e-5


LAMBDA_ETA = [5e-5, 1e-4, 5e-4, 1e-3]


def test_texp_correction_is_second_order_in_lambda_eta():
    """e_t against its derived expansion, and the issue's measured TEXP/TEXP++ gaps."""
    gamma, r = 0.9, 0.1                                      # ×0.1 at step 100, from η = 0.1
    etas = schedules.step_decay(0.1, 200, [100], factor=r)
    gaps = []
    for x in LAMBDA_ETA:                                     # x = λη before the decay
        lam = x / 0.1
        e = schedules.texp_correction(etas, lam, gamma)
        assert np.flatnonzero(e).tolist() == [100]           # only at the phase entry
        lead = -gamma * r * (1 - r) * x ** 2 / (1 - gamma) ** 3
        q = (1 + gamma) * (1 + r) * x / (1 - gamma) ** 2     # the next order, relative
        assert abs(e[100] / lead - 1) <= 1.5 * q             # q ≤ 0.21 here; O(q²) ≤ 0.5q
        # Theorem B.8's measure: TEXP's growth per step over TEXP++'s (same start, α_0)
        texp = schedules.texp(etas, lam, gamma)
        plus = schedules.texp_plus(etas, lam, gamma, alpha0=larger_root(0.1, lam, gamma))[0]
        gap = np.abs((texp[1:] / texp[:-1]) / (plus[1:] / plus[:-1]) - 1)
        a1 = larger_root(0.01, lam, gamma)                   # derived: e (1/α_1 + γ/α_1³)
        assert gap.max() == pytest.approx(abs(e[100]) * (1 / a1 + gamma / a1 ** 3), rel=1e-6)
        gaps.append(gap.max())
    assert [f"{g:.1e}" for g in gaps] == ["3.9e-07", "1.6e-06", "4.3e-05", "2.0e-04"]
    # slope of log gap against log λη: 2 + q/(1 + q) + O(λη) ≤ 2.2 over this range (q ≤ 0.21);
    # a first- or third-order correction would give 1 or 3
    slope = np.polyfit(np.log(LAMBDA_ETA), np.log(gaps), 1)[0]
    assert 2.0 <= slope <= 2.2


def test_texp_minus_drops_only_the_entry_factor():
    etas = schedules.step_decay(0.1, 120, [60, 90], factor=0.1)
    ratio = schedules.texp(etas, 5e-3, 0.9) / schedules.texp_minus(etas, 5e-3, 0.9)
    np.testing.assert_allclose(ratio, np.where(np.arange(120) >= 90, 0.01,
                                               np.where(np.arange(120) >= 60, 0.1, 1.0)), rtol=1e-12)


def test_constant_schedule_texp_is_exp_lr():
    etas = np.full(40, 0.1)
    np.testing.assert_allclose(schedules.texp(etas, 5e-3, 0.9), schedules.exp_lr(0.1, 5e-3, 0.9, 40),
                               rtol=1e-13)


def test_exp_cosine_is_texp_plus_of_cosine_with_the_entry_corrections():
    """Exp-cosine (section 4.2: TEXP with every epoch a phase) against Theorem 2.13's
    recursion on the cosine schedule, corrected at each epoch's first step."""
    cos = schedules.cosine(0.1, 100, 10)
    exp_cos = schedules.exp_cosine(0.1, 5e-3, 0.9, 100, 10)
    np.testing.assert_allclose(exp_cos, texp_plus_corrected(cos, 5e-3, 0.9), rtol=1e-11)
    assert np.flatnonzero(schedules.texp_correction(cos, 5e-3, 0.9)).tolist() == list(range(10, 100, 10))
    assert np.all(exp_cos[1:10] > exp_cos[:9])   # grows within the first epoch


def test_texp_plus_recursion_and_fixed_point():
    lam, gamma = 5e-3, 0.9
    etas = schedules.step_decay(0.1, 200, [100], factor=0.1)
    tilde, rho = schedules.texp_plus(etas, lam, gamma)
    a = rho[:-1] / rho[1:]                   # a_{t+1} = ρ_t / ρ_{t+1}
    prev = np.concatenate([[etas[0]], etas[:-1]])
    a_prev = np.concatenate([[1.0], a[:-1]])
    np.testing.assert_allclose(a, 1 - etas * lam + gamma * (etas / prev) * (1 - 1 / a_prev), rtol=1e-14)
    np.testing.assert_allclose(tilde, etas * rho[:-1] * rho[1:], rtol=1e-14)
    # within a phase a_t converges to that phase's α, geometrically
    assert a[99] == pytest.approx(larger_root(0.1, lam, gamma), rel=1e-5)
    assert a[199] == pytest.approx(larger_root(0.01, lam, gamma), rel=1e-5)
    assert abs(a[199] / larger_root(0.01, lam, gamma) - 1) < abs(a[110] / larger_root(0.01, lam, gamma) - 1)
    # started at the fixed point it is exp_lr exactly
    const, _ = schedules.texp_plus(np.full(30, 0.1), lam, gamma, alpha0=larger_root(0.1, lam, gamma))
    np.testing.assert_allclose(const, schedules.exp_lr(0.1, lam, gamma, 30), rtol=1e-12)


def test_exp_lr_refuses_to_overflow():
    with pytest.raises(ValueError, match="float64"):
        schedules.exp_lr(1.0, 0.1, 0.0, 5000)      # α = 0.9: 0.9^−10000 overflows
