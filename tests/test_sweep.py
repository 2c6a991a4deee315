import numpy as np
import pytest
import torch

from lib import stack, sweep, train
from lib.models import MLP, SmallCNN
from lib.train import TrainConfig


EPS = np.finfo(np.float64).eps
N = 96  # examples in blobs: the longest sum a step computes


def roundoff(steps):
    """Relative gap allowed between two code paths (vmap/bmm vs one model, other thread
    counts) after ``steps`` steps: each step sums at most N terms in another order (≤ N·ε
    relative, ×10 for cancellation in gradient sums), and where the compared runs do not
    amplify round-off (small effective steps) these gaps add up over the steps."""
    return 10 * steps * N * EPS


def make_mlp(seed=0, width=12):
    torch.manual_seed(seed)
    return MLP((8, width, 3), norm="bn").double()


@pytest.fixture
def blobs():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(96, 8, generator=g, dtype=torch.float64)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 1).long()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path))
    return tmp_path


def test_batched_and_looped_sweeps_agree(blobs):
    grid = sweep.Grid(eta=[0.03, 0.3, 3.0], seed=[0, 1])
    cfg = TrainConfig(steps=25, batch_size=32, momentum=0.9, weight_decay=1e-3)
    a = sweep.train_grid(make_mlp, blobs, cfg, grid, mode="batched")
    b = sweep.train_grid(make_mlp, blobs, cfg, grid, mode="loop")
    assert a.metrics["loss"].shape == (3, 2, 26)
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)
    tol = roundoff(26)
    for name in a.metrics:  # η ≤ 0.3: whole runs; η = 3 amplifies round-off (≈1.5× a step
        # with momentum 0.9), so that run is compared before it can: t = 0 and 1
        np.testing.assert_allclose(a.metrics[name][:2], b.metrics[name][:2], rtol=tol, atol=tol,
                                   err_msg=name)
        np.testing.assert_allclose(a.metrics[name][2, :, :2], b.metrics[name][2, :, :2], rtol=tol,
                                   atol=tol, err_msg=name)


def test_per_model_learning_rates_match_separate_runs(blobs):
    grid = sweep.Grid(eta_w=[0.1, 10.0], eta_g=[0.01, 0.5])
    res = sweep.train_grid(make_mlp, blobs, TrainConfig(steps=15), grid, mode="batched")
    for i, eta_w in enumerate([0.1, 10.0]):
        for j, eta_g in enumerate([0.01, 0.5]):
            alone = train.train(make_mlp(), blobs, TrainConfig(steps=15, eta={"w": eta_w, "g": eta_g}))
            # full batch, and η_w acts on scale-invariant weights whose effective step
            # shrinks as ‖w‖ grows: no amplification over these 15 steps
            np.testing.assert_allclose(res.metrics["loss"][i, j], alone.loss, rtol=roundoff(16))
            np.testing.assert_allclose(res.sel(eta_w=eta_w, eta_g=eta_g)["eta_g"], eta_g)
    assert not np.allclose(res.metrics["loss"][0, 0], res.metrics["loss"][1, 1])


def test_batchnorm_keeps_statistics_per_model(blobs):
    models = [make_mlp(seed=s) for s in range(3)]
    configs = [TrainConfig(steps=5, eta=eta, batch_size=16, seed=s) for s, eta in enumerate([0.1, 1.0, 5.0])]
    s = stack.from_models(models)
    train.fit(s, blobs, configs)
    for k, (seed, cfg) in enumerate(zip(range(3), configs)):
        alone = make_mlp(seed=seed)
        train.train(alone, blobs, cfg)
        for name, buf in alone.named_buffers():
            tol = roundoff(6)  # 5 short steps: the batch statistics differ by round-off only
            torch.testing.assert_close(s.buffers[name][k], buf, rtol=tol, atol=tol)
    means = s.buffers["hidden.0.running_mean"]
    assert not torch.allclose(means[0], means[1])


def test_divergence_is_per_model(blobs):
    grid = sweep.Grid(eta=[0.1, 1e6])
    res = sweep.train_grid(lambda seed: MLP((8, 12, 3), norm="none").double(), blobs,
                           TrainConfig(steps=30), grid, mode="batched")
    assert res.diverged_at[0] == -1 and res.diverged_at[1] > 0
    assert np.all(np.isfinite(res.metrics["loss"][0]))
    assert np.isnan(res.metrics["loss"][1, -1])


def test_model_axes_go_to_make_model(blobs):
    grid = sweep.Grid(width=[4, 9], seed=[0])
    res = sweep.train_grid(make_mlp, blobs, TrainConfig(steps=3), grid, mode="loop")
    assert res.metrics["weight_norm_sq_w"].shape == (2, 1, 4, 1)


def test_cache_reuses_and_resumes_an_interrupted_sweep(blobs, tmp_cache):
    calls = {"n": 0, "fail_at": 3}

    def make(seed=0):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt
        return make_mlp(seed)

    grid = sweep.Grid(eta=[0.1, 0.2, 0.4, 0.8])
    cfg = TrainConfig(steps=4)
    with pytest.raises(KeyboardInterrupt):
        sweep.train_grid(make, blobs, cfg, grid, mode="loop", cache="resume-test")
    done = calls["n"]  # choose_mode is not called in loop mode: 2 finished + 1 failed
    calls["fail_at"] = -1
    first = sweep.train_grid(make, blobs, cfg, grid, mode="loop", cache="resume-test")
    assert calls["n"] - done == 2  # only the two unfinished points ran
    calls["n"] = 0
    again = sweep.train_grid(make, blobs, cfg, grid, mode="loop", cache="resume-test")
    assert calls["n"] == 0  # everything read from the cache
    np.testing.assert_array_equal(first.metrics["loss"], again.metrics["loss"])
    changed = sweep.train_grid(make, blobs, TrainConfig(steps=5), grid, mode="loop", cache="resume-test")
    assert calls["n"] == 4 and changed.metrics["loss"].shape == (4, 6)  # new config, new runs


def test_cache_misses_when_the_data_change(blobs, tmp_cache):
    grid = sweep.Grid(eta=[0.1])
    X, y = blobs
    sweep.train_grid(make_mlp, (X, y), TrainConfig(steps=2), grid, cache="data-test")
    sweep.train_grid(make_mlp, (X + 1, y), TrainConfig(steps=2), grid, cache="data-test")
    assert len(list(tmp_cache.glob("data-test-*.pkl"))) == 2


def test_choose_mode(monkeypatch):
    assert sweep.choose_mode(SmallCNN(), "cpu") == "loop"
    assert sweep.choose_mode(make_mlp(), "cpu") == "batched"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # devices must exist
    assert sweep.choose_mode(SmallCNN(), "cuda") == "batched"


def test_map_grid_shapes_values_and_cache(tmp_cache):
    seen = []

    def f(a, b):
        seen.append((a, b))
        return a * 10 + b

    grid = sweep.Grid(a=[1, 2, 3], b=[0.5, 0.25])
    out = sweep.map_grid(f, grid, cache="map-test", chunk=4)
    assert out.shape == (3, 2) and out[2, 1] == 30.25
    sweep.map_grid(f, grid, cache="map-test", chunk=4)
    assert len(seen) == 6  # second call served from the cache


@pytest.mark.parametrize("build, match", [
    (lambda: sweep.Grid(), "at least one axis"),
    (lambda: sweep.Grid(eta=[]), "non-empty"),
    (lambda: sweep.Grid(eta=[[0.1, 0.2]]), "1-D"),
    (lambda: sweep.Grid(eta=[0.1]).index(eta=0.2), "not on the grid"),
    (lambda: sweep.Grid(eta=[0.1]).index(wd=0.2), "unknown axes"),
])
def test_bad_grids(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("kw, match", [(dict(mode="fast"), "mode"), (dict(chunk=0), "chunk")])
def test_bad_sweep_arguments(blobs, kw, match):
    with pytest.raises(ValueError, match=match):
        sweep.train_grid(make_mlp, blobs, TrainConfig(steps=2), sweep.Grid(eta=[0.1]), **kw)


def test_observed_quantities_become_metrics_in_both_modes(blobs):
    def observe(params, t):  # (K,) norm of the first layer's weights
        return {"w0_norm": params["hidden.0.linear.weight"].flatten(1).norm(dim=1)}

    grid = sweep.Grid(eta=[0.1, 2.0], seed=[0, 1])
    cfg = TrainConfig(steps=6, log_every=3)
    a = sweep.train_grid(make_mlp, blobs, cfg, grid, mode="batched", observe=observe)
    b = sweep.train_grid(make_mlp, blobs, cfg, grid, mode="loop", observe=observe)
    assert a.metrics["w0_norm"].shape == (2, 2, 3)
    np.testing.assert_allclose(a.metrics["w0_norm"], b.metrics["w0_norm"], rtol=roundoff(7))
    # one run, two roundings of one sum of squares: a few ε
    np.testing.assert_allclose(a.metrics["w0_norm"] ** 2, a.metrics["weight_norm_sq_w"][..., 0],
                               rtol=1e-13)


def test_initial_momentum_reaches_every_run_of_a_sweep(blobs):
    """init_momentum sets v_0 of every model of every chunk, as train.train does for one:
    the sweep's runs equal lone runs with the same v_0 and differ from runs from rest."""
    def init(params):  # v_0 = 2θ_0 for every parameter (K, ...)
        return {n: 2.0 * p for n, p in params.items()}

    grid = sweep.Grid(eta=[0.01, 0.03], seed=[0, 1])
    cfg = TrainConfig(steps=8, momentum=0.9)
    for mode in ("batched", "loop"):
        res = sweep.train_grid(make_mlp, blobs, cfg, grid, mode=mode, chunk=3, init_momentum=init)
        rest = sweep.train_grid(make_mlp, blobs, cfg, grid, mode=mode, chunk=3)
        for i, eta in enumerate([0.01, 0.03]):
            for s in (0, 1):
                alone = train.train(make_mlp(seed=s), blobs, TrainConfig(steps=8, momentum=0.9,
                                    eta=eta, seed=s), init_momentum=init)
                np.testing.assert_allclose(res.metrics["loss"][i, s], alone.loss, rtol=roundoff(9))
        # a start of 2θ_0 in v moves the first step by 0.9·η·2θ_0: far beyond round-off
        gap = np.abs(res.metrics["loss"][:, :, -1] / rest.metrics["loss"][:, :, -1] - 1)
        assert gap.min() > 1e3 * roundoff(9), gap
