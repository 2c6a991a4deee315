"""lib.bngd.networks: the networks of section 4.2 of Cai, Li & Shen, and the η sweeps."""

import math

import numpy as np
import pytest
import torch

from lib.bngd import networks
from lib import synthetic
from lib.train import TrainConfig, train


@pytest.fixture
def blobs():
    ds = synthetic.gaussian_classification(300, 20, n_classes=4, seed=1)
    return ds.X, ds.y


def test_one_layer_outputs_probabilities_and_splits_groups():
    torch.manual_seed(0)
    for bn in (True, False):
        m = networks.make_one_layer(n_in=20, n_out=4, bn=bn, seed=3)
        p = m(torch.randn(16, 20))
        assert p.shape == (16, 4) and torch.allclose(p.sum(1), torch.ones(16)) and torch.all(p > 0)
        groups = m.groups()
        ids = [id(q) for q in groups["w"] + groups["g"]]
        assert sorted(ids) == sorted(id(q) for q in m.parameters())
        assert [id(q) for q in groups["w"]] == [id(m.weight)] * bn


def test_glorot_initialisation_is_seeded_and_has_the_glorot_spread():
    a, b = networks.make_one_layer(seed=5), networks.make_one_layer(seed=5)
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(a.weight, networks.make_one_layer(seed=6).weight)
    bound = math.sqrt(6 / (784 + 10))
    w = a.weight
    assert w.abs().max() <= bound and w.var().item() == pytest.approx(bound ** 2 / 3, rel=0.05)
    conv = networks.make_conv_net(seed=0).layers[0].weight          # fan_in 9, fan_out 8·9
    assert conv.abs().max() <= math.sqrt(6 / (9 + 72))
    assert torch.equal(networks.make_one_layer(seed=5, scale=3.0).weight, 3 * a.weight)


def test_bn_makes_the_output_independent_of_the_weight_scale(f64):
    """Smoothed BN (ε‖w‖²) is exactly scale-invariant in W; the paper's BN (ε = 1e-3 added to
    the variance) is not once the weights are tiny: its ε-regularisation takes over."""
    x = torch.randn(64, 20)
    for norm, r1, r2, same in (("bn_smooth", 1.0, 1e-3, True), ("bn_smooth", 1.0, 1e3, True),
                               ("bn", 1e3, 1e4, True), ("bn", 1.0, 1e-3, False)):
        m = networks.OneLayer(n_in=20, n_out=4, norm=norm).double()
        with torch.no_grad():
            m.weight.mul_(r1)
            ref = m(x)
            m.weight.mul_(r2 / r1)
        assert torch.allclose(m(x), ref, rtol=0, atol=1e-7) == same, (norm, r1, r2)
    net = networks.make_conv_net(in_channels=3, image_size=8, width=2, hidden=5, n_out=3, eps=1e-14).double()
    imgs = torch.rand(10, 3, 8, 8)
    ref = net(imgs)
    with torch.no_grad():
        for w in net.groups()["w"]:
            w.mul_(7.0)
    torch.testing.assert_close(net(imgs), ref, rtol=0, atol=1e-10)


def test_scaling_law_in_a_network(blobs, f64):
    """(r W₀, r² η_w, η_g) trains exactly like (W₀, η_w, η_g): the network form of the
    scaling law (smoothed BN, so the loss is exactly scale-invariant in W).

    r is a power of two, so r·W₀ and r²η_w are exact and every later operation commutes
    with the scaling: the runs differ at most by round-off, K steps of sums over B
    examples, K·B·eps relative to losses of order one (no exact comparison across runs)."""
    X, y = blobs
    X = X.double()
    runs = []
    for r in (1.0, 2.0**-4, 2.0**4):
        m = networks.make_one_layer(n_in=20, n_out=4, seed=0, scale=r, norm="bn_smooth").double()
        h = train(m, (X, y), TrainConfig(steps=30, batch_size=50, loss="mse",
                                         eta={"w": 0.5 * r ** 2, "g": 0.1}), bar=False)
        runs.append(h.loss)
    assert runs[0][0] > runs[0][-1] + 0.02            # it trains
    for other in runs[1:]:
        np.testing.assert_allclose(other, runs[0], rtol=0, atol=30 * 50 * np.finfo(np.float64).eps)


def test_conv_net_shapes_and_groups():
    for c, side in ((1, 28), (3, 32)):
        for bn in (True, False):
            net = networks.make_conv_net(in_channels=c, image_size=side, width=3, hidden=7, bn=bn)
            assert net(torch.rand(4, c, side, side)).shape == (4, 10)
            w = net.groups()["w"]
            assert len(w) == (4 if bn else 0)
            if bn:   # every weight is followed by BN: no biases before BN
                assert all(m.bias is None for m in net.layers if hasattr(m, "bias") and
                           isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def test_end_of_epoch_loss():
    loss = np.array([[3.0, 2.0, 1.0, 0.5], [3.0, 2.0, np.nan, np.nan], [3.0, np.inf, 1.0, 1.0]])
    out = networks.end_of_epoch_loss(loss, 2)
    assert out[0] == pytest.approx(0.75) and out[1] == np.inf and out[2] == pytest.approx(1.0)
    assert networks.end_of_epoch_loss(loss, 3)[2] == np.inf


def test_eta_sweep_matches_direct_training_runs(blobs):
    """Each scheme's sweep point equals one lib.train.train run with the scheme's rates.

    The sweep trains its models together, so sums run in another order than in a single
    run: float32 round-off of K = 6 steps of sums over B = 50 examples, K·B·eps relative."""
    X, y = blobs
    tol = 6 * 50 * float(np.finfo(np.float32).eps)
    cfg = networks.SweepConfig(etas=(0.05, 5.0), seeds=2, batch_size=50, eta_g=0.2, tail=3)
    kw = dict(n_in=20, n_out=4)
    for scheme in networks.SCHEMES:
        out = networks.eta_sweep(networks.make_one_layer, (X, y), scheme, cfg, **kw)
        assert out.shape == (2, 2)
        eta = {"w": 5.0, "g": 0.2} if scheme == "bn_separate" else 5.0
        m = networks.make_one_layer(seed=1, bn=scheme != "gd", **kw)
        h = train(m, (X, y), TrainConfig(steps=6, batch_size=50, loss="mse", eta=eta, seed=1), bar=False)
        assert out[1, 1] == pytest.approx(h.loss[-3:].mean(), rel=tol)
    scaled = networks.eta_sweep(networks.make_one_layer, (X, y), "bn_separate", cfg, axes={"scale": [1.0, 3.0]}, **kw)
    assert scaled.shape == (2, 2, 2)
    np.testing.assert_allclose(scaled[0], networks.eta_sweep(networks.make_one_layer, (X, y), "bn_separate", cfg, **kw),
                               rtol=tol)


@pytest.mark.parametrize("change, err, match", [
    (dict(scheme="adam"), ValueError, "^scheme"), (dict(tail=7), ValueError, "^tail"),
    (dict(etas=()), ValueError, "^etas"), (dict(etas=(0.1, -1.0)), ValueError, "^etas"),
    (dict(tail=0), ValueError, "^tail"), (dict(seeds=1.5), TypeError, "^seeds"),
])
def test_eta_sweep_bad_arguments(blobs, change, err, match):
    scheme = change.pop("scheme", "gd")
    with pytest.raises(err, match=match):   # the config refuses its own bad fields
        cfg = networks.SweepConfig(**{**dict(etas=(0.1,), seeds=1, batch_size=50, tail=3), **change})
        networks.eta_sweep(networks.make_one_layer, blobs, scheme, cfg, n_in=20, n_out=4)


def test_conv_net_bad_arguments():
    with pytest.raises(ValueError, match="^image_size"):
        networks.ConvNet(image_size=2)
    with pytest.raises(ValueError, match="^width"):
        networks.ConvNet(width=0)


# --- the chapter's Fashion-MNIST claims, at the chapter's CPU-scale settings -------------

@pytest.fixture(scope="module")
def fmnist_sweeps():
    """The sweeps of the BNGD chapter's last section at CPU scale (5000 images, one epoch
    of 50 steps, η from 1e-2 to 1e3): mean loss after one epoch per scheme and rate."""
    from lib import data
    train_set = data.fashion_mnist("train", n=5000, device="cpu", download=False)
    etas = tuple(np.logspace(-2, 3, 6))
    runs = {"one": (networks.make_one_layer, networks.SweepConfig(etas=etas, seeds=3, loss="mse"), {}),
            "cnn": (networks.make_conv_net, networks.SweepConfig(etas=etas, seeds=2, loss="cross_entropy"),
                    dict(width=4, hidden=32))}
    out = {}
    for net, (make, cfg, kw) in runs.items():
        for scheme in networks.SCHEMES:
            loss = networks.eta_sweep(make, train_set, scheme, cfg, **kw)
            out[net, scheme] = np.where(np.isfinite(loss).all(1), loss.mean(1), np.inf)
    return out


@pytest.mark.parametrize("net", ["one", "cnn"])
def test_one_rate_for_everything_has_a_largest_usable_rate(fmnist_sweeps, net):
    for scheme in ("gd", "bn_shared"):
        loss = fmnist_sweeps[net, scheme]
        assert loss[-1] > 2 * loss.min(), (scheme, loss)          # at η = 1e3
    if net == "cnn":   # cross-entropy: orders of magnitude
        assert all(fmnist_sweeps[net, s][-1] > 10 * fmnist_sweeps[net, s].min()
                   for s in ("gd", "bn_shared"))


@pytest.mark.parametrize("net", ["one", "cnn"])
def test_a_separate_rate_for_bn_parameters_tolerates_any_weight_rate(fmnist_sweeps, net):
    """The chapter's words: with η_g fixed at 0.1, the loss after one epoch stays within a
    factor 2 of its best at every η_w from the best one up to 1e3, the largest tried (one
    rate for everything is more than 2× worse at 1e3: the previous test)."""
    loss = fmnist_sweeps[net, "bn_separate"]
    best = int(np.argmin(loss))
    assert np.all(loss[best:] < 2 * loss[best]), loss


@pytest.mark.parametrize("net", ["one", "cnn"])
def test_bn_lowers_the_best_loss_after_one_epoch(fmnist_sweeps, net):
    best_gd = fmnist_sweeps[net, "gd"].min()
    assert fmnist_sweeps[net, "bn_shared"].min() < 0.8 * best_gd
    assert fmnist_sweeps[net, "bn_separate"].min() < 0.8 * best_gd


def test_scaling_law_with_the_papers_bn_on_fashion_mnist():
    """The chapter's network form of figure 2 (one-layer network, η_g = 0.1, η_w = 1e-3 … 1e5,
    initial weights × r, 2 seeds, 5000 images, one epoch). r = 10^1.5 makes r² = 1e3 three
    grid points, so the r = 10^1.5 curve at 1e3·η_w is compared with the r = 1 curve at η_w,
    seed by seed (same batches). The only difference is BN's ε = 1e-3 added to the variance
    σ² of wᵀx: it rescales each output by √(σ²/(σ² + ε)) ≈ 1 − ε/(2σ²), so the two runs
    differ by a relative ε/σ² at most, σ² the smallest output variance of the r = 1 net at
    its start (about 1e-2 here; the r = 10^1.5 net's own is 1000× smaller). For
    r = 10^-1.5, σ² is below ε and the law fails: somewhere the gap is ten times larger."""
    from lib import data
    train_set = data.fashion_mnist("train", n=5000, device="cpu", download=False)
    rs = [10**-1.5, 1.0, 10**1.5]
    cfg = networks.SweepConfig(etas=tuple(np.logspace(-3, 5, 9)), seeds=2, loss="mse")
    loss = networks.eta_sweep(networks.make_one_layer, train_set, "bn_separate", cfg,
                              axes={"scale": rs})                   # (3, 9, 2)
    x = train_set.X.flatten(1)
    var = torch.stack([(x @ networks.make_one_layer(seed=s).weight.T).var(0) for s in range(2)])
    tol = networks.BN_EPS / var.min().item()
    big = np.abs(loss[2, 3:] - loss[1, :6]) / loss[1, :6]            # r = 10^1.5 vs r = 1
    small = np.abs(loss[0, :6] - loss[1, 3:]) / loss[1, 3:]          # r = 10^-1.5 vs r = 1
    assert np.isfinite(loss).all() and tol < 0.02
    assert big.max() < tol, (big, tol)
    assert small.max() > 10 * tol, (small, tol)
