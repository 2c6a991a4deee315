"""Experiments of the exponential learning-rate chapter (Li & Arora, 2020).

Scale-invariant networks (normalisation without ε or affine parameters, last layer
fixed at initialisation), the equivalence runner (Theorems 2.1 and 2.9), schedule
comparisons on a small PreResNet, the weight-norm equilibrium (appendix C) and the
section-3 toy where batch norm and weight decay together fail. Training goes through
the book's one loop, :func:`lib.train.fit`.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from lib import checks, data as _data, stack, sweep, train
from lib.explr import schedules
from lib.models import NormLinear

DATASETS = ("fashion_mnist", "cifar10")  # names :func:`lib.data.load` knows


def _widths(name: str, value, min_len: int = 1) -> tuple:
    """A sequence of at least ``min_len`` integers >= 1, as a tuple of ints."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of integers >= 1, got "
                        f"{type(value).__name__} {value!r}")
    if len(value) < min_len:
        raise ValueError(f"{name} needs at least {min_len} entries, got {tuple(value)}")
    return tuple(checks.integer(f"{name}[{i}]", v) for i, v in enumerate(value))


def _pair(name: str, data) -> tuple:
    """(X, y) from a Dataset or a pair: finite floating X (N, ...), integer labels y (N,)."""
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise TypeError(f"{name} must be a lib.data.Dataset or an (X, y) pair of tensors, got "
                        f"{type(data).__name__}")
    X = checks.tensor(f"{name} X", X, ndim=(2, 3, 4))
    y = checks.tensor(f"{name} y", y, ndim=1, floating=False)
    checks.same_length(**{f"{name} X": X, f"{name} y": y})
    return X, y


def _check_input(model, X, name: str, y=None) -> None:
    """X (and labels y) fit one of this module's networks; other models are not checked."""
    if isinstance(model, ScaleInvariantMLP):
        if X.ndim < 2 or math.prod(X.shape[1:]) != model.sizes[0] or X.shape[0] < 2:
            raise ValueError(f"{name} must be a batch of at least 2 inputs with "
                             f"{model.sizes[0]} features each, got shape {tuple(X.shape)}")
    elif isinstance(model, PreResNet):
        if X.ndim != 4 or X.shape[1] != model.in_channels:
            raise ValueError(f"{name} must be images (N, {model.in_channels}, H, W), got "
                             f"shape {tuple(X.shape)}")
    else:
        return
    if y is not None:
        checks.labels(f"{name} y", y, model.head.shape[0], n=X.shape[0])


class ScaleInvariantMLP(nn.Module):
    """MLP whose loss satisfies L(cθ) = L(θ) exactly for every c > 0.

    Hidden layers: linear map, ε-free batch norm without gain or bias, ReLU. The last
    layer is a buffer fixed at its initialisation, so every trainable parameter is in
    group ``w``. Args: sizes, at least three integers >= 1, e.g. (196, 32, 32, 10);
    seed of the initialisation. Inputs: a batch of at least 2 with sizes[0] features.
    """

    def __init__(self, sizes, seed: int = 0):
        super().__init__()
        self.sizes = sizes = _widths("sizes", sizes, min_len=3)
        g = torch.Generator().manual_seed(checks.seed("seed", seed))
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
            self.hidden = nn.Sequential(*[m for a, b in zip(sizes[:-2], sizes[1:-1]) for m in
                                          (NormLinear(a, b, norm="bn_smooth", eps=0.0, affine=False),
                                           nn.ReLU())])
            self.register_buffer("head", nn.Linear(sizes[-2], sizes[-1]).weight.detach().clone())

    def forward(self, x):  # (B, ...) -> (B, n_classes)
        _check_input(self, x, "x")  # shapes only: no data read, no sync
        return self.hidden(x.flatten(1)) @ self.head.T

    def groups(self) -> dict:
        return {"w": list(self.parameters()), "g": []}


class BatchNorm2dNoEps(nn.Module):
    """Batch norm over (N, H, W) with no ε, gain, bias or running statistics.

    Always normalises with the statistics of the batch it sees (also at test time):
    running averages mix weights of different scales and would break the equivalence.
    ``num_features``: None (any) or the number of channels C >= 1 of its inputs, which
    must be (N, C, H, W) with at least 2 values per channel (N·H·W >= 2).
    """

    def __init__(self, num_features: int | None = None):
        super().__init__()
        self.num_features = (None if num_features is None
                             else checks.integer("num_features", num_features))

    def forward(self, x):  # (N, C, H, W)
        if x.ndim != 4 or x.shape[0] * x.shape[2] * x.shape[3] < 2 or \
                (self.num_features is not None and x.shape[1] != self.num_features):
            c = "C" if self.num_features is None else self.num_features
            raise ValueError(f"x must be (N, {c}, H, W) with N·H·W >= 2, got {tuple(x.shape)}")
        mean = x.mean((0, 2, 3), keepdim=True)
        var = (x - mean).pow(2).mean((0, 2, 3), keepdim=True)
        return (x - mean) / var.clamp_min(1e-30).sqrt()  # clamp only guards a dead channel


class PreActBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv-BN-ReLU-conv plus a shortcut.

    Args: c_in, c_out channels and stride, integers >= 1.
    """

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        c_in, c_out = checks.integer("c_in", c_in), checks.integer("c_out", c_out)
        stride = checks.integer("stride", stride)
        self.bn1, self.bn2 = BatchNorm2dNoEps(c_in), BatchNorm2dNoEps(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        o = torch.relu(self.bn1(x))
        short = x if self.shortcut is None else self.shortcut(o)
        return self.conv2(torch.relu(self.bn2(self.conv1(o)))) + short


class PreResNet(nn.Module):
    """A small PreResNet, scale-invariant in all its (conv) weights jointly.

    Args (integers >= 1): in_channels; n_classes; widths of the stages (one entry per
    stage; (16, 32, 64) is PreResNet-8); blocks per stage; stem_stride (2 halves the
    image first, cheaper on a CPU); seed in [0, 2**63). The final linear layer is a
    buffer fixed at initialisation, as in Li & Arora's runs.
    """

    def __init__(self, in_channels=1, n_classes=10, widths=(16, 32, 64), blocks=1,
                 stem_stride=2, seed=0):
        super().__init__()
        self.in_channels = checks.integer("in_channels", in_channels)
        n_classes, widths = checks.integer("n_classes", n_classes), _widths("widths", widths)
        blocks, stem_stride = checks.integer("blocks", blocks), checks.integer("stem_stride", stem_stride)
        with torch.random.fork_rng():
            torch.manual_seed(checks.seed("seed", seed))
            self._build(self.in_channels, n_classes, widths, blocks, stem_stride)

    def _build(self, in_channels, n_classes, widths, blocks, stem_stride):
        self.stem = nn.Conv2d(in_channels, widths[0], 3, stem_stride, 1, bias=False)
        layers, c = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(PreActBlock(c, w, 2 if (i > 0 and b == 0) else 1))
                c = w
        self.blocks, self.bn = nn.Sequential(*layers), BatchNorm2dNoEps(c)
        self.register_buffer("head", nn.Linear(c, n_classes).weight.detach().clone())

    def forward(self, x):  # (N, C, H, W) -> (N, n_classes)
        _check_input(self, x, "x")  # shapes only
        h = torch.relu(self.bn(self.blocks(self.stem(x))))
        return h.mean((2, 3)) @ self.head.T

    def groups(self) -> dict:
        return {"w": list(self.parameters()), "g": []}


def exp_lr_momentum(eta: float, weight_decay: float, momentum: float):
    """``init_momentum`` for the exp-LR run of Theorem 2.9, started at rest like run A.

    The theorem asks for θ̃_{−1} = α θ_{−1}, with η̃_{−1} = ηα. In PyTorch's form the
    buffer is v_0 = (θ_{−1} − θ_0)/η_{−1}; run A starts with v_0 = 0, i.e. θ_{−1} = θ_0,
    so the exp-LR run needs ṽ_0 = (αθ_0 − θ_0)/(ηα) = −(1 − α)/(αη) · θ_0.
    Accepts what :func:`lib.explr.schedules.exp_lr_alpha` accepts.
    """
    alpha = schedules.exp_lr_alpha(eta, weight_decay, momentum)
    coef = -(1 - alpha) / (alpha * float(eta))
    return lambda params: {n: coef * p for n, p in params.items()}


def _flat(params):  # name -> (K, ...) to (K, P)
    return torch.cat([p.detach().flatten(1) for p in params.values()], 1)


def _directions(name: str, value) -> np.ndarray:
    """Finite vectors along the last axis, none of them zero."""
    arr = checks.array(name, value)
    if arr.ndim < 1 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must hold vectors along its last axis, got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError(f"{name} holds a zero vector: it has no direction")
    return arr / norms


def unit_distance(a, b) -> np.ndarray:
    """‖a/‖a‖ − b/‖b‖‖ along the last axis: how far apart two directions are.

    ``a``, ``b``: finite arrays of one shape (..., P), no zero vector.
    """
    a, b = _directions("a", a), _directions("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return np.linalg.norm(a - b, axis=-1)


def _batch_size(value, n: int):
    return None if value is None else checks.integer("batch_size", value, hi=n)


def _maybe(check, name, value):
    return None if value is None else check(name, value)


def paired_runs(data, lrs_a, weight_decay_a, lrs_b, weight_decay_b=0.0, momentum=0.9,
                init_b=None, make_model=None, batch_size=100, dtype=torch.float64,
                seed=0) -> dict:
    """Train two copies of one scale-invariant network with two schedules, same batches.

    ``data``: a Dataset or (X, y); ``lrs_a``/``lrs_b``: per-step learning rates > 0 (same
    length); ``init_b``: the ``init_momentum`` of run B; ``make_model(seed)``: default a
    ScaleInvariantMLP on (196, 32, 32, 10). Returns step (T,), theta_a and theta_b (T, P):
    all weights, flattened, at every step, and diverged_at_a/_b (None, or the first step
    with a non-finite loss: the histories stop there).
    """
    X, y = _pair("data", data)
    lrs_a = checks.positive_array("lrs_a", lrs_a, ndim=1)
    lrs_b = checks.positive_array("lrs_b", lrs_b, ndim=1)
    checks.same_length(lrs_a=lrs_a, lrs_b=lrs_b)
    wds = (checks.nonnegative("weight_decay_a", weight_decay_a),
           checks.nonnegative("weight_decay_b", weight_decay_b))
    momentum, seed = checks.fraction("momentum", momentum), checks.seed("seed", seed)
    init_b = _maybe(checks.function, "init_b", init_b)
    make_model = _maybe(checks.function, "make_model", make_model)
    batch_size, dtype = _batch_size(batch_size, len(y)), checks.float_dtype("dtype", dtype)
    make_model = make_model or (lambda seed: ScaleInvariantMLP((196, 32, 32, 10), seed))
    data = (X.to(dtype), y)
    base = train.TrainConfig(steps=len(lrs_a), batch_size=batch_size, momentum=momentum,
                             seed=seed, log_every=1, lr=1.0)  # same seed: same mini-batches
    observe = lambda params, t: {"theta": _flat(params)}  # noqa: E731
    runs = []
    for lrs, wd, init in ((lrs_a, wds[0], None), (lrs_b, wds[1], init_b)):
        model = make_model(seed).to(dtype)
        _check_input(model, X, "data", y)
        runs.append(train.train(model, data, replace(base, schedule=lrs, weight_decay=wd),
                                bar=False, observe=observe, init_momentum=init))
    return {"step": runs[0].step, "theta_a": runs[0].extra["theta"],
            "theta_b": runs[1].extra["theta"], "diverged_at_a": runs[0].diverged_at,
            "diverged_at_b": runs[1].diverged_at}


def equivalence(data, sizes=(196, 32, 32, 10), eta=0.1, weight_decay=5e-3, momentum=0.9,
                steps=300, batch_size=100, dtype=torch.float64, seed=0) -> dict:
    """Run A (constant η, WD λ, momentum γ) against B (exp_lr, no WD, Theorem 2.9 start).

    Arguments as in :func:`paired_runs` and :func:`lib.explr.schedules.exp_lr`; ``sizes`` of the
    ScaleInvariantMLP. Returns :func:`paired_runs`' dict plus ``alpha``; B's weights should
    be α^{−t} times A's.
    """
    sizes = _widths("sizes", sizes, min_len=3)
    lrs_b = schedules.exp_lr(eta, weight_decay, momentum, steps)  # checks η, λ, γ, steps
    out = paired_runs(data, np.full(len(lrs_b), float(eta)), weight_decay, lrs_b, 0.0, momentum,
                      init_b=exp_lr_momentum(eta, weight_decay, momentum),
                      make_model=lambda seed: ScaleInvariantMLP(sizes, seed),
                      batch_size=batch_size, dtype=dtype, seed=seed)
    return {**out, "alpha": schedules.exp_lr_alpha(eta, weight_decay, momentum)}


@dataclass(frozen=True)
class ScheduleSetup:
    """Sizes of the step decay ↔ TEXP experiment at one scale (checked when made)."""

    dataset: str          # "cifar10" (falls back to "fashion_mnist" when absent)
    n_train: int          # training images (a seeded subset)
    n_test: int           # test images, evaluated at once (batch statistics)
    widths: tuple         # channels per stage of the PreResNet
    blocks: int           # residual blocks per stage (5 for PreResNet32)
    stem_stride: int      # 2 halves the image first (cheap on a CPU)
    epochs: int           # passes over the training subset
    batch_size: int       # at most n_train
    eta: float            # initial learning rate η
    weight_decay: float   # λ
    momentum: float       # γ
    seeds: tuple          # one run per seed

    def __post_init__(self):
        checks.choice("dataset", self.dataset, DATASETS)
        for name in ("n_train", "n_test", "blocks", "stem_stride", "epochs"):
            checks.integer(name, getattr(self, name))
        checks.integer("batch_size", self.batch_size, hi=self.n_train)
        _widths("widths", self.widths)
        checks.positive("eta", self.eta), checks.nonnegative("weight_decay", self.weight_decay)
        checks.fraction("momentum", self.momentum), _seeds(self.seeds)


def _seeds(seeds) -> list:
    """A non-empty sequence of seeds, as a list of ints."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, np.ndarray)):
        raise TypeError(f"seeds must be a sequence of integer seeds, got {type(seeds).__name__}")
    if len(seeds) == 0:
        raise ValueError("seeds must not be empty")
    return [checks.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]


SCHEDULE_SETUPS = {
    "cpu": ScheduleSetup("fashion_mnist", 2_560, 500, (8, 16, 32), 1, 2, 8, 128, 0.1, 1e-2, 0.9, (0,)),
    "gpu": ScheduleSetup("cifar10", 50_000, 10_000, (16, 32, 64), 5, 1, 40, 128, 0.1, 5e-4, 0.9, (0, 1)),
    "paper": ScheduleSetup("cifar10", 50_000, 10_000, (16, 32, 64), 5, 1, 160, 128, 0.1, 5e-4, 0.9, (0, 1, 2)),
}


def schedule_data(setup: ScheduleSetup, device=None):
    """(train, test, note): the setup's data set, or Fashion-MNIST if it is missing.

    ``setup``: a ScheduleSetup; ``device``: None or an available device.
    """
    if not isinstance(setup, ScheduleSetup):
        raise TypeError(f"setup must be a ScheduleSetup, got {type(setup).__name__}")
    device = _maybe(checks.device, "device", device)
    note = ""
    name = setup.dataset
    try:
        load = lambda split, n: _data.load(name, split=split, n=n, device=device)  # noqa: E731
        return load("train", setup.n_train), load("test", setup.n_test), note
    except (FileNotFoundError, OSError) as err:
        if name == "fashion_mnist":
            raise
        note = f"{name} is not available ({type(err).__name__}); using Fashion-MNIST instead."
        name = "fashion_mnist"
        return load("train", setup.n_train), load("test", setup.n_test), note


def _runs(runs, steps: int) -> dict:
    """name -> (lrs (>= steps,), weight decay), checked by name."""
    if not isinstance(runs, Mapping) or not runs:
        raise (ValueError if isinstance(runs, Mapping) else TypeError)(
            f"runs must be a non-empty dict name -> (lrs, weight_decay), got {runs!r:.60}")
    out = {}
    for name, run in runs.items():
        if not (isinstance(run, (tuple, list)) and len(run) == 2):
            raise TypeError(f"runs[{name!r}] must be a pair (lrs, weight_decay), got {run!r:.60}")
        lrs = checks.positive_array(f"runs[{name!r}] lrs", run[0], ndim=1)
        if len(lrs) < steps:
            raise ValueError(f"runs[{name!r}] lrs has {len(lrs)} rates; config.steps needs {steps}")
        out[name] = (lrs, checks.nonnegative(f"runs[{name!r}] weight_decay", run[1]))
    return out


def schedule_runs(make_model, data, test, runs: dict, config, seeds=(0,),
                  cache_name=None) -> dict:
    """Train ``make_model(seed=s)`` with each named per-step schedule in ``runs``.

    ``runs``: name -> (lrs array of rates > 0, weight decay >= 0). ``config``: the shared
    TrainConfig (steps, batch size, momentum, log_every). ``data``/``test``: Datasets or
    (X, y). Every schedule is one sweep over the seeds (:func:`lib.sweep.train_grid`,
    cached under ``cache_name``). Returns name -> list over seeds of dicts with step,
    loss, train/test accuracy, per-tensor ‖w‖² (T, n_tensors), lr and diverged_at.
    """
    make_model = checks.function("make_model", make_model)
    (X, y), (X_test, y_test) = _pair("data", data), _pair("test", test)
    if not isinstance(config, train.TrainConfig):
        raise TypeError(f"config must be a lib.train.TrainConfig, got {type(config).__name__}")
    runs, seeds = _runs(runs, config.steps), _seeds(seeds)
    cache_name = _maybe(checks.string, "cache_name", cache_name)
    net = make_model(seed=seeds[0])  # the architecture, to evaluate stacked parameters
    _check_input(net, X, "data", y), _check_input(net, X_test, "test", y_test)

    def observe(params, t):  # test accuracy of every model in the chunk, (K,)
        k = next(iter(params.values())).shape[0]
        with torch.no_grad():
            outs = [functional_call(net, {n: p[i] for n, p in params.items()}, (X_test,))
                    for i in range(k)]
        return {"test_accuracy": torch.stack([(o.argmax(1) == y_test).double().mean() for o in outs])}

    out = {}
    for i, (name, (lrs, wd)) in enumerate(runs.items()):
        cfg = replace(config, lr=1.0, schedule=lrs, weight_decay=wd)
        res = sweep.train_grid(make_model, data, cfg, sweep.Grid(seed=list(seeds)),
                               observe=observe, bar=False,
                               cache=f"{cache_name}-{i}" if cache_name else None)
        m = res.metrics
        out[name] = [{"step": res.step, "loss": m["loss"][j], "accuracy": m["accuracy"][j],
                      "test_accuracy": m["test_accuracy"][j],
                      "weight_norm_sq": m["weight_norm_sq_w"][j], "lr": m["lr_w"][j],
                      "diverged_at": int(res.diverged_at[j]) if res.diverged_at[j] >= 0 else None}
                     for j in range(len(seeds))]
    return out


def _points(points) -> list:
    """A non-empty list of (η > 0, λ >= 0, γ in [0, 1)) triples."""
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence) or not points:
        raise (ValueError if isinstance(points, Sequence) and not points else TypeError)(
            f"points must be a non-empty list of (eta, weight_decay, momentum), got {points!r:.60}")
    out = []
    for i, p in enumerate(points):
        if not (isinstance(p, (tuple, list)) and len(p) == 3):
            raise TypeError(f"points[{i}] must be (eta, weight_decay, momentum), got {p!r:.60}")
        out.append((checks.positive(f"points[{i}] eta", p[0]),
                    checks.nonnegative(f"points[{i}] weight_decay", p[1]),
                    checks.fraction(f"points[{i}] momentum", p[2])))
    return out


def equilibrium(data, sizes, points, steps, batch_size, seed=0) -> list:
    """Measure mean‖θ_{t+1} − θ_t‖² / mean‖θ_t‖² over the second half of SGD runs.

    ``points``: list of (η, λ, γ). All are trained at once on ``ScaleInvariantMLP(sizes)``.
    Returns one dict per point: measured ratio (NaN if the run diverged, with its
    diverged_at step), predicted 2ηλ/(1+γ), and the per-step series ``step_sq`` and
    ``norm_sq`` (T,).
    """
    X, y = _pair("data", data)
    sizes, points = _widths("sizes", sizes, min_len=3), _points(points)
    steps, batch_size = checks.integer("steps", steps), _batch_size(batch_size, len(y))
    seed = checks.integer("seed", seed, lo=0, hi=checks.SEED_MAX - len(points) + 1)
    models = [ScaleInvariantMLP(sizes, seed + k) for k in range(len(points))]
    _check_input(models[0], X, "data", y)
    s = stack.from_models(models)
    base = train.TrainConfig(steps=steps, batch_size=batch_size, log_every=1, seed=seed)
    configs = [replace(base, lr=e, weight_decay=l, momentum=g) for e, l, g in points]
    prev = {}

    def observe(params, t):
        theta = _flat(params)
        step_sq = (theta - prev["theta"]).pow(2).sum(1) if prev else torch.full_like(theta[:, 0], math.nan)
        prev["theta"] = theta
        return {"step_sq": step_sq, "norm_sq": theta.pow(2).sum(1)}

    hists = train.fit(s, (X, y), configs, bar=False, observe=observe)
    out = []
    for (e, l, g), h in zip(points, hists):
        k = steps // 2  # step_sq[t] = ‖θ_t − θ_{t−1}‖², norm_sq[t] = ‖θ_t‖²
        measured = (math.nan if h.diverged else
                    np.mean(h.extra["step_sq"][k + 1:]) / np.mean(h.extra["norm_sq"][k:-1]))
        out.append({"eta": e, "weight_decay": l, "momentum": g, "measured": float(measured),
                    "predicted": schedules.equilibrium_ratio(e, l, g), "diverged_at": h.diverged_at,
                    "step_sq": h.extra["step_sq"], "norm_sq": h.extra["norm_sq"]})
    return out


def toy_data(n: int, m: int, seed: int = 0):
    """Section-3 toy: x ~ N(0, I_m), label y = sign(x_1) ∈ {−1, +1}; X (n, m), y (n,).

    ``n``, ``m``: integers >= 2; ``seed``: an integer seed.
    """
    n, m = checks.integer("n", n, lo=2), checks.integer("m", m, lo=2)
    X = np.random.default_rng(checks.seed("seed", seed)).standard_normal((n, m))
    return X, np.where(X[:, 0] >= 0, 1.0, -1.0)


def toy_error(w) -> np.ndarray:
    """Population error arccos(w_1/‖w‖)/π of the linear classifier sign(wᵀx).

    ``w``: finite (..., m), no zero vector.
    """
    v = _directions("w", w)
    return np.arccos(np.clip(v[..., 0], -1, 1)) / np.pi


def _toy(X, y, w, bn, w_name="w"):
    """The toy's arguments checked: X (n, m), y (n,) of ±1, w (m,) nonzero, bn a bool."""
    X, y = checks.array("X", X, ndim=2), checks.array("y", y, ndim=1)
    w, bn = checks.array(w_name, w, ndim=1), checks.boolean("bn", bn)
    checks.same_length(X=X, y=y)
    if not np.all(np.abs(y) == 1):
        raise ValueError("y must hold labels -1 and +1")
    if w.shape[0] != X.shape[1] or not np.any(w):
        raise ValueError(f"{w_name} must be a nonzero vector of {X.shape[1]} weights (one per "
                         f"column of X), got shape {w.shape}")
    if bn and not np.std(X @ w) > 0:
        raise ValueError(f"X and {w_name}: BN needs X @ {w_name} to vary across examples")
    return X, y, w, bn


def toy_gd(X, y, w0, eta: float, weight_decay: float, steps: int, bn: bool = True) -> dict:
    """Full-batch GD on the logistic loss of u = BN(Xw) (bn=True) or u = Xw, plus WD λ.

    BN uses the batch mean and standard deviation, with no gain or bias, so the loss
    is scale-invariant in w. The gradient is written out by hand (checked against
    autograd in the tests). Accepts X, y, w0 as :func:`toy_loss`, η > 0, λ >= 0 with
    ηλ < 1, steps >= 1. Returns w (steps + 1, m), error and norm (steps + 1,), and
    diverged_at (None, or the first step where w is not finite).
    """
    X, y, w, bn = _toy(X, y, w0, bn, "w0")
    eta, weight_decay = checks.positive("eta", eta), checks.nonnegative("weight_decay", weight_decay)
    steps = checks.integer("steps", steps)
    if eta * weight_decay >= 1:
        raise ValueError(f"eta and weight_decay: need ηλ < 1 (else weight decay flips w), "
                         f"got η={eta}, λ={weight_decay}")
    ws = np.empty((steps + 1, w.size))
    ws[0] = w
    for t in range(steps):
        w = (1 - eta * weight_decay) * w - eta * _grad(X, y, w, bn)
        ws[t + 1] = w
    bad = np.flatnonzero(~np.all(np.isfinite(ws), axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):  # a diverged run has NaN rows
        norm = np.linalg.norm(ws, axis=1)
        error = np.arccos(np.clip(ws[:, 0] / norm, -1, 1)) / np.pi
    return {"w": ws, "error": error, "norm": norm,
            "diverged_at": int(bad[0]) if bad.size else None}


def toy_loss(X, y, w, bn: bool = True) -> float:
    """Mean logistic loss ln(1 + exp(−y u)), u = BN(Xw) or Xw (without the WD term).

    ``X``: finite (n, m); ``y``: (n,) of ±1; ``w``: nonzero (m,) (Xw must vary with BN).
    """
    X, y, w, bn = _toy(X, y, w, bn)
    s = X @ w
    u = (s - s.mean()) / s.std() if bn else s
    return float(np.mean(np.logaddexp(0, -y * u)))


def toy_grad(X, y, w, bn: bool = True) -> np.ndarray:
    """Gradient of :func:`toy_loss` with respect to w, (m,); arguments as there."""
    return _grad(*_toy(X, y, w, bn))


def _grad(X, y, w, bn):  # unchecked: toy_gd calls it every step
    s = X @ w
    n = s.size
    if not bn:
        return X.T @ (-y / (1 + np.exp(y * s))) / n
    sd = s.std()
    u = (s - s.mean()) / sd
    g = -y / (1 + np.exp(y * u)) / n                  # dL/du
    ds = (g - g.mean() - u * np.mean(g * u)) / sd     # through the mean and the std
    return X.T @ ds
