"""lib.invariance: the scale-invariance check, against autograd on scaled copies of the model.

Checked in float64 on the networks of two chapters: the auto rate-tuning MLP (smoothed BN
exactly invariant, standard BN nearly) and the exponential-LR chapter's ScaleInvariantMLP
(every trainable tensor in group ``w``, a fixed head as a buffer).
"""

import copy

import numpy as np
import pytest
import torch

from lib import invariance
from lib.explr.networks import ScaleInvariantMLP
from lib.models import NormLinear
from helpers import direct_loss_and_grads, net, tiny


def test_smoothed_bn_network_is_scale_invariant(f64):
    r = invariance.scale_invariance(net(), tiny(), np.logspace(-4, 4, 9))
    assert r["loss_gap"].max() < 1e-13
    assert r["grad_gap"].max() < 1e-12       # c ∇F(cw) = ∇F(w)
    assert np.abs(r["cosine"]).max() < 1e-12  # ⟨w, ∇F(w)⟩ = 0


def test_standard_bn_breaks_invariance_measurably(f64):
    """Standard BN at scale c is the same network with ε/c² in every layer, since
    (cz − cμ)/√(c²σ² + ε) = (z − μ)/√(σ² + ε/c²): small weights let ε dominate, large
    ones nearly remove it. The gaps are compared with that network (eps set on a copy).
    Both losses carry a few ulps of round-off (~1e-15 of a loss ≈ 1), against a smallest
    gap of ~8e-6 (at c = 1e3): ~1e-10 relative, so 1e-6 is ample."""
    X, y = tiny()
    model, scales = net("bn"), [1e-3, 1e3]
    r = invariance.scale_invariance(model, (X, y), scales)
    f0, _ = direct_loss_and_grads(model, X, y)
    for c, gap in zip(scales, r["loss_gap"]):
        moved = copy.deepcopy(model)
        for layer in moved.modules():
            if isinstance(layer, NormLinear):
                layer.eps = layer.eps / c**2
        f, _ = direct_loss_and_grads(moved, X, y)
        np.testing.assert_allclose(gap, abs(f - f0) / f0, rtol=1e-6)
    assert r["loss_gap"][0] > 1e-3 and r["grad_gap"][0] > 1e-2  # ε dominates small weights
    assert 0 < r["loss_gap"][1] < 1e-3                           # nearly, not exactly, invariant


def test_scale_invariance_matches_scaling_a_copy_of_the_model(f64):
    """The gaps equal those computed by scaling the weights of a model copy in place."""
    X, y = tiny()
    model, c = net("bn"), 0.02
    r = invariance.scale_invariance(model, (X, y), [c])
    f0, g0 = direct_loss_and_grads(model, X, y)
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        for p in scaled.groups()["w"]:
            p.mul_(c)
    f, g = direct_loss_and_grads(scaled, X, y)
    w = [n for n, p in model.named_parameters() if any(p is q for q in model.groups()["w"])]
    gap = np.sqrt(sum(((c * g[n] - g0[n]) ** 2).sum().item() for n in w))
    gap /= np.sqrt(sum((g0[n] ** 2).sum().item() for n in w))
    np.testing.assert_allclose(r["loss_gap"][0], abs(f - f0) / f0, rtol=1e-10)
    np.testing.assert_allclose(r["grad_gap"][0], gap, rtol=1e-10)


def test_the_exponential_lr_chapters_network_is_scale_invariant(f64):
    """ScaleInvariantMLP: all its parameters in ``w``, an empty ``g``, a buffer head."""
    X, y = tiny(n=32, d=12)
    model = ScaleInvariantMLP((12, 16, 16, 3), seed=0)
    r = invariance.scale_invariance(model, (X, y), [0.01, 1.0, 100.0])
    assert r["loss_gap"].max() < 1e-13 and r["grad_gap"].max() < 1e-12
    assert np.abs(r["cosine"]).max() < 1e-12
    f0, g0 = direct_loss_and_grads(model, X, y)  # and the same loss as a plain forward
    f, g = invariance.loss_and_grads(model, dict(model.named_parameters()), X, y)
    assert abs(f.item() - f0) < 1e-14 * f0
    for n in g0:
        torch.testing.assert_close(g[n], g0[n], rtol=1e-12, atol=0)


def test_loss_and_grads_leaves_the_model_alone(f64):
    """Evaluated at other parameters, in train mode: the model's weights and running
    statistics stay as they were, and the result equals a forward on a modified copy."""
    X, y = tiny()
    model = net("bn")
    before = copy.deepcopy(model.state_dict())
    params = {n: p * 1.5 for n, p in model.named_parameters()}
    f, g = invariance.loss_and_grads(model, params, X, y)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for p in moved.parameters():
            p.mul_(1.5)
    f1, g1 = direct_loss_and_grads(moved, X, y)
    np.testing.assert_allclose(f.item(), f1, rtol=1e-12)
    for n in g1:
        torch.testing.assert_close(g[n], g1[n], rtol=1e-10, atol=1e-14)


def test_group_names_and_the_checked_pair():
    model = net()
    w, g = invariance.group_names(model)
    params = dict(model.named_parameters())
    assert [params[n] for n in w] == model.groups()["w"]
    assert [params[n] for n in g] == model.groups()["g"]
    X, y = tiny()
    assert invariance.check_model_data(model, (X, y))[0] is X


@pytest.mark.parametrize("call, match", [
    (lambda: invariance.scale_invariance(net(), tiny(), []), "scales"),
    (lambda: invariance.scale_invariance(net(), tiny(), [1.0, -2.0]), "scales"),
    (lambda: invariance.scale_invariance(torch.nn.Linear(8, 3), tiny(), [1.0]), "group 'w'"),
    (lambda: invariance.check_model_data(net(), (tiny()[0][:, :-1], tiny()[1])), "fit"),
    (lambda: invariance.loss_and_grads(net(), {}, *tiny()), "params"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
