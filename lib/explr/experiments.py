"""Experiments of the exponential learning-rate chapter (Li & Arora, 2020).

The equivalence runner (Theorems 2.1 and 2.9) on the scale-invariant networks of
:mod:`lib.explr.networks`, schedule comparisons on a small PreResNet, the weight-norm
equilibrium (appendix C), and the computations behind the chapter's sliders. Training
goes through the book's one loop, :func:`lib.train.fit`.
"""

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.func import functional_call

from lib import checks, data as _data, datachecks, stack, sweep, train
from lib.explr import networks, schedules

DATASETS = ("fashion_mnist", "cifar10")  # names :func:`lib.data.load` knows


def _pair(name: str, data) -> tuple:
    """(X, y) from a Dataset or a pair, as :func:`lib.datachecks.unpack` checks it, with
    integer class labels y (N,): these networks classify."""
    X, y = datachecks.unpack(data, name)
    checks.tensor(f"{name}.y", y, ndim=1, floating=False)
    return X, y


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


def paired_runs(data, etas_a, weight_decay_a, etas_b, weight_decay_b=0.0, momentum=0.9,
                init_b=None, make_model=None, batch_size=100, dtype=torch.float64,
                seed=0) -> dict:
    """Train two copies of one scale-invariant network with two schedules, same batches.

    ``data``: a Dataset or (X, y); ``etas_a``/``etas_b``: per-step learning rates > 0 (same
    length); ``init_b``: the ``init_momentum`` of run B; ``make_model(seed)``: default a
    ScaleInvariantMLP on (196, 32, 32, 10). Returns step (T,), theta_a and theta_b (T, P):
    all weights, flattened, at every step, and diverged_at_a/_b (None, or the first step
    with a non-finite loss: the histories stop there).
    """
    X, y = _pair("data", data)
    etas_a = checks.positive_array("etas_a", etas_a, ndim=1)
    etas_b = checks.positive_array("etas_b", etas_b, ndim=1)
    checks.same_length(etas_a=etas_a, etas_b=etas_b)
    wds = (checks.nonnegative("weight_decay_a", weight_decay_a),
           checks.nonnegative("weight_decay_b", weight_decay_b))
    momentum, seed = checks.fraction("momentum", momentum), checks.seed("seed", seed)
    init_b = _maybe(checks.function, "init_b", init_b)
    make_model = _maybe(checks.function, "make_model", make_model)
    batch_size, dtype = _batch_size(batch_size, len(y)), checks.float_dtype("dtype", dtype)
    make_model = make_model or (lambda seed: networks.ScaleInvariantMLP((196, 32, 32, 10), seed))
    data = (X.to(dtype), y)
    base = train.TrainConfig(steps=len(etas_a), batch_size=batch_size, momentum=momentum,
                             seed=seed, log_every=1)  # same seed: same mini-batches
    observe = lambda params, t: {"theta": _flat(params)}  # noqa: E731
    runs = []
    for etas, wd, init in ((etas_a, wds[0], None), (etas_b, wds[1], init_b)):
        model = make_model(seed).to(dtype)
        networks.check_input(model, X, "data", y)
        runs.append(train.train(model, data, replace(base, eta=etas, weight_decay=wd),
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
    sizes = networks.layer_sizes("sizes", sizes, min_len=3)
    etas_b = schedules.exp_lr(eta, weight_decay, momentum, steps)  # checks η, λ, γ, steps
    out = paired_runs(data, np.full(len(etas_b), float(eta)), weight_decay, etas_b, 0.0, momentum,
                      init_b=exp_lr_momentum(eta, weight_decay, momentum),
                      make_model=lambda seed: networks.ScaleInvariantMLP(sizes, seed),
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
    milestones: tuple     # epochs at which step decay divides η by 10 (increasing, < epochs)
    augment: bool         # random 4-pixel-padded crops and flips of the training images
    batch_size: int       # at most n_train
    eta: float            # initial learning rate η
    weight_decay: float   # λ
    momentum: float       # γ
    seeds: tuple          # one run per seed

    def __post_init__(self):
        checks.choice("dataset", self.dataset, DATASETS)
        for name in ("n_train", "n_test", "blocks", "stem_stride", "epochs"):
            checks.integer(name, getattr(self, name))
        _epochs(self.milestones, self.epochs), checks.boolean("augment", self.augment)
        checks.integer("batch_size", self.batch_size, hi=self.n_train)
        networks.layer_sizes("widths", self.widths)
        checks.positive("eta", self.eta), checks.nonnegative("weight_decay", self.weight_decay)
        checks.fraction("momentum", self.momentum), _seeds(self.seeds)


def _epochs(milestones, epochs: int) -> list:
    """Strictly increasing integer epochs in (0, ``epochs``)."""
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, (Sequence, np.ndarray)):
        raise TypeError(f"milestones must be a sequence of epochs, got {type(milestones).__name__}")
    ms = [checks.integer("milestones", m, lo=1, hi=epochs - 1) for m in milestones]
    if any(b <= a for a, b in zip(ms, ms[1:])):
        raise ValueError(f"milestones must be strictly increasing epochs in (0, {epochs}), got {ms}")
    return ms


def _seeds(seeds) -> list:
    """A non-empty sequence of seeds, as a list of ints."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, np.ndarray)):
        raise TypeError(f"seeds must be a sequence of integer seeds, got {type(seeds).__name__}")
    if len(seeds) == 0:
        raise ValueError("seeds must not be empty")
    return [checks.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]


_PRERESNET32 = dict(dataset="cifar10", n_train=50_000, n_test=10_000, widths=(16, 32, 64),
                    blocks=5, stem_stride=1, batch_size=128, eta=0.1, weight_decay=5e-4,
                    momentum=0.9)
SCHEDULE_SETUPS = {  # paper: Li & Arora's section 4 (PreResNet32, CIFAR-10, decays at 80, 120)
    "cpu": ScheduleSetup("fashion_mnist", 2_560, 500, (8, 16, 32), 1, 2, 8, (4, 6), False, 128,
                         0.1, 1e-2, 0.9, (0,)),
    "gpu": ScheduleSetup(**_PRERESNET32, epochs=40, milestones=(20, 30), augment=False,
                         seeds=(0, 1)),
    "paper": ScheduleSetup(**_PRERESNET32, epochs=160, milestones=(80, 120), augment=True,
                           seeds=(0, 1, 2)),
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


def check_runs(runs, steps: int = 1) -> dict:
    """``runs`` (name -> (etas, weight decay) or (etas, weight decay, init_momentum)) checked
    by name: each etas a 1-D array of at least ``steps`` rates > 0, each weight decay >= 0,
    each init_momentum None or a function (as :func:`lib.train.fit` takes it, e.g.
    :func:`exp_lr_momentum`). Returns name -> (etas, weight decay, init_momentum or None)."""
    steps = checks.integer("steps", steps)
    if not isinstance(runs, Mapping) or not runs:
        raise (ValueError if isinstance(runs, Mapping) else TypeError)(
            f"runs must be a non-empty dict name -> (etas, weight_decay), got {runs!r:.60}")
    out = {}
    for name, run in runs.items():
        if not (isinstance(run, (tuple, list)) and len(run) in (2, 3)):
            raise TypeError(f"runs[{name!r}] must be (etas, weight_decay) or (etas, weight_decay, "
                            f"init_momentum), got {run!r:.60}")
        etas = checks.positive_array(f"runs[{name!r}] etas", run[0], ndim=1)
        if len(etas) < steps:
            raise ValueError(f"runs[{name!r}] etas has {len(etas)} rates; config.steps needs {steps}")
        init = _maybe(checks.function, f"runs[{name!r}] init_momentum", run[2] if len(run) == 3 else None)
        out[name] = (etas, checks.nonnegative(f"runs[{name!r}] weight_decay", run[1]), init)
    return out


def schedule_runs(make_model, data, test, runs: dict, config, seeds=(0,),
                  cache_name=None) -> dict:
    """Train ``make_model(seed=s)`` with each named per-step schedule in ``runs``.

    ``runs``: as :func:`check_runs` takes them; an init_momentum (e.g. the ṽ_0 of
    :func:`exp_lr_momentum` for an exponential schedule) sets run B's first momentum buffer.
    ``config``: the shared TrainConfig (steps, batch size, momentum, log_every).
    ``data``/``test``: Datasets or (X, y). Each (schedule, seed) is one run of the training
    loop (:func:`lib.train.train`), swept over the seeds by :func:`lib.sweep.map_grid`
    (cached under ``cache_name``); the test set is evaluated in eval mode (no augmentation),
    in one batch. Returns name -> list over seeds of dicts with step, loss, train/test
    accuracy, per-tensor ‖w‖² (T, n_tensors), eta and diverged_at (NaN after divergence).
    """
    make_model = checks.function("make_model", make_model)
    (X, y), (X_test, y_test) = _pair("data", data), _pair("test", test)
    if not isinstance(config, train.TrainConfig):
        raise TypeError(f"config must be a lib.train.TrainConfig, got {type(config).__name__}")
    runs, seeds = check_runs(runs, config.steps), _seeds(seeds)
    cache_name = _maybe(checks.string, "cache_name", cache_name)
    net = make_model(seed=seeds[0])
    networks.check_input(net, X, "data", y), networks.check_input(net, X_test, "test", y_test)
    step = np.unique(np.r_[np.arange(0, config.steps + 1, config.log_every), config.steps])

    def one_run(seed, etas, weight_decay, init):  # NaN-padded after a divergence
        judge = make_model(seed=seed).eval()  # its buffers (the fixed last layer) are the run's

        def observe(params, t):  # test accuracy of the stack's one model, (1,)
            with torch.no_grad():
                out = functional_call(judge, {n: p[0] for n, p in params.items()}, (X_test,))
            return {"test_accuracy": (out.argmax(1) == y_test).double().mean()[None]}

        h = train.train(make_model(seed=seed), data, replace(config, eta=etas, weight_decay=weight_decay),
                        bar=False, observe=observe, init_momentum=init)
        pad = lambda a: np.concatenate([a, np.full((len(step) - len(a),) + a.shape[1:], np.nan)])  # noqa: E731
        return {"step": step,
                "loss": pad(h.loss), "accuracy": pad(h.accuracy),
                "test_accuracy": pad(h.extra["test_accuracy"]),
                "weight_norm_sq": pad(h.weight_norm_sq["w"]), "eta": pad(h.eta["w"]),
                "diverged_at": h.diverged_at}

    out = {}
    for i, (name, (etas, wd, init)) in enumerate(runs.items()):
        fn = functools.partial(one_run, etas=etas, weight_decay=wd, init=init)
        res = sweep.map_grid(fn, sweep.Grid(seed=list(seeds)), bar=False,
                             cache=f"{cache_name}-{i}" if cache_name else None)
        out[name] = list(res)
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

    ``points``: list of (η, λ, γ). All are trained at once on ``ScaleInvariantMLP(sizes)``,
    in the floating dtype of ``data``.
    Returns one dict per point: measured ratio (NaN if the run diverged, with its
    diverged_at step), predicted 2ηλ/(1+γ), ``drift`` (:func:`norm_drift`: what the norm's
    drift over the window adds, exactly measured/predicted − 1), and the per-step series
    ``step_sq`` and ``norm_sq`` (T,).
    """
    X, y = _pair("data", data)
    sizes, points = networks.layer_sizes("sizes", sizes, min_len=3), _points(points)
    steps, batch_size = checks.integer("steps", steps), _batch_size(batch_size, len(y))
    seed = checks.integer("seed", seed, lo=0, hi=checks.SEED_MAX - len(points) + 1)
    models = [networks.ScaleInvariantMLP(sizes, seed + k).to(X.dtype) for k in range(len(points))]
    networks.check_input(models[0], X, "data", y)
    s = stack.from_models(models)
    base = train.TrainConfig(steps=steps, batch_size=batch_size, log_every=1, seed=seed)
    configs = [replace(base, eta=e, weight_decay=l, momentum=g) for e, l, g in points]
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
        drift = math.nan if h.diverged or steps < 2 or l == 0 else \
            norm_drift(h.extra["step_sq"], h.extra["norm_sq"], k, e, l, g)
        out.append({"eta": e, "weight_decay": l, "momentum": g, "measured": float(measured),
                    "predicted": schedules.equilibrium_ratio(e, l, g), "drift": drift,
                    "diverged_at": h.diverged_at, "step_sq": h.extra["step_sq"],
                    "norm_sq": h.extra["norm_sq"]})
    return out


def norm_drift(step_sq, norm_sq, start: int, eta: float, weight_decay: float,
               momentum: float) -> float:
    """Measured over predicted equilibrium ratio, minus 1, from the norm's drift alone.

    With D_t = ‖θ_{t+1} − θ_t‖², R_t = ‖θ_t‖², constant η and ⟨θ_t, ∇L⟩ = 0, the momentum
    recursion gives exactly (appendix C of Li & Arora): over t = k..T−1,
    (1 + γ)ΣD_t − 2ηλΣR_t = (R_T − R_k) − γ(R_{T−1} − R_{k−1}) + γ(D_{T−1} − D_{k−1}).
    Returns the right side over 2ηλΣR_t. ``step_sq[t]`` = D_{t−1} and ``norm_sq[t]`` = R_t
    > 0 for t = 0..T (as :func:`equilibrium` records them); ``start`` = k in [1, T − 1];
    η > 0, λ > 0, γ in [0, 1).
    """
    R = checks.positive_array("norm_sq", norm_sq, ndim=1)
    D = checks.array("step_sq", step_sq, ndim=1, finite=False)[1:]  # D[t] = D_t, t = 0..T−1
    checks.same_length(step_sq=step_sq, norm_sq=R)
    T = len(R) - 1
    k = checks.integer("start", start, lo=1, hi=max(T - 1, 1))
    eta, momentum = checks.positive("eta", eta), checks.fraction("momentum", momentum)
    lam = checks.positive("weight_decay", weight_decay)
    if T < 2 or not np.all(np.isfinite(D)):
        raise ValueError(f"step_sq must hold finite steps after its first entry, over at least 2 "
                         f"steps, got {len(D)}")
    boundary = (R[T] - R[k]) - momentum * (R[T - 1] - R[k - 1]) + momentum * (D[T - 1] - D[k - 1])
    return float(boundary / (2 * eta * lam * np.sum(R[k:T])))


def exp_lr_curve(eta: float, weight_decay: float, momentum: float, epochs: int = 10,
                 steps_per_epoch: int = 391, every: int = 17) -> dict:
    """η̃_t of :func:`lib.explr.schedules.exp_lr` every ``every`` steps (a slider's curve).

    η, λ, γ as there; ``epochs``, ``steps_per_epoch``, ``every``: integers >= 1. Returns
    epoch and etas (⌈epochs·steps_per_epoch/every⌉,) and growth, the factor per epoch.
    """
    epochs, every = checks.integer("epochs", epochs), checks.integer("every", every)
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    etas = schedules.exp_lr(eta, weight_decay, momentum, epochs * steps_per_epoch)[::every]
    growth = schedules.growth_per_epoch(eta, weight_decay, momentum, steps_per_epoch)
    return {"epoch": np.arange(len(etas)) * every / steps_per_epoch, "etas": etas, "growth": growth}


def equivalence_distance(data, weight_decay: float, momentum: float, sizes=(196, 32, 32, 10),
                         eta: float = 0.1, steps: int = 300, batch_size: int = 100) -> dict:
    """Step and distance of directions (:func:`unit_distance`) of A and B in :func:`equivalence`.

    Arguments as there (in float64, seed 0). Returns step and distance, (steps + 1,).
    """
    r = equivalence(data, sizes=sizes, eta=eta, weight_decay=weight_decay,
                    momentum=momentum, steps=steps, batch_size=batch_size)
    return {"step": r["step"], "distance": unit_distance(r["theta_a"], r["theta_b"])}
