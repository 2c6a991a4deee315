"""Schedule comparisons of the exponential learning-rate chapter (Li & Arora, 2020, section 4).

The setups at each scale (:class:`ScheduleSetup`), their data, the named schedules of the
paper's figures 2 to 6 (:func:`paper_schedules`) and the runner that trains a PreResNet
with each of them over several seeds (:func:`schedule_runs`, one sweep per schedule
through :func:`lib.sweep.train_grid`, cached).
"""

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.func import functional_call

from lib import checks, data as _data, sweep, train
from lib import scale as _scale
from lib.explr import experiments, networks, schedules

DATASETS = ("fashion_mnist", "cifar10")  # names :func:`lib.data.load` knows


def _maybe(check, name, value):
    return None if value is None else check(name, value)


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
    "cpu": ScheduleSetup("fashion_mnist", 1_280, 500, (8, 16, 32), 1, 2, 8, (4, 6), False, 64,
                         0.1, 1e-2, 0.9, (0, 1, 2)),
    "gpu": ScheduleSetup(**_PRERESNET32, epochs=40, milestones=(20, 30), augment=False,
                         seeds=(0, 1, 2)),
    "paper": ScheduleSetup(**_PRERESNET32, epochs=160, milestones=(80, 120), augment=True,
                           seeds=(0, 1, 2)),
}


def schedule_setup(s) -> ScheduleSetup:
    """The schedule comparison at scale ``s`` (a :class:`lib.scale.Scale`): its row of
    SCHEDULE_SETUPS, in a smoke run with its counts cut (one batch of the same size per
    epoch and as test set, one epoch per phase, one seed; the network, data set and
    hyperparameters kept)."""
    if not isinstance(s, _scale.Scale):
        raise TypeError(f"s must be a lib.scale.Scale, got {type(s).__name__}")
    ex = SCHEDULE_SETUPS[s.name]
    if not s.smoke:
        return ex
    epochs = s.cut(ex.epochs, len(ex.milestones) + 1)     # every phase of step decay
    return replace(ex, n_train=s.cut(ex.n_train, ex.batch_size),
                   n_test=s.cut(ex.n_test, ex.batch_size), epochs=epochs,
                   milestones=ex.milestones if epochs == ex.epochs else tuple(range(1, epochs)),
                   seeds=tuple(ex.seeds[:s.cut(len(ex.seeds), s.seeds)]))


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


def _decay(name: str, value, steps: int):
    """One λ >= 0, or a 1-D array of at least ``steps`` values λ_t >= 0."""
    if isinstance(value, (list, tuple, np.ndarray, torch.Tensor)):
        lam = checks.array(name, value, ndim=1)
        if len(lam) < steps or np.any(lam < 0):
            raise ValueError(f"{name} per step must hold at least {steps} values >= 0, got "
                             f"{len(lam)} (smallest {lam.min() if lam.size else None})")
        return lam
    return checks.nonnegative(name, value)


def check_runs(runs, steps: int = 1) -> dict:
    """``runs`` (name -> (etas, weight decay) or (etas, weight decay, init_momentum)) checked
    by name: each etas a 1-D array of at least ``steps`` rates > 0, each weight decay one
    λ >= 0 or one λ_t >= 0 per step (at least ``steps``), each init_momentum None or a
    function (as :func:`lib.train.fit` takes it, e.g.
    :func:`lib.explr.experiments.exp_lr_momentum`). Returns name -> (etas, weight decay,
    init_momentum or None)."""
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
        out[name] = (etas, _decay(f"runs[{name!r}] weight_decay", run[1], steps), init)
    return out


def _test_accuracy(make_model, seeds, X_test, y_test, every: int, steps: int):
    """``observe`` for :func:`lib.sweep.train_grid`: the test accuracy of each model of a
    chunk, every ``every`` steps and at the last (NaN between), each judged by the
    network of its own seed (its buffers: the fixed last layer). A model is matched to
    its seed at step 0 by its initial weights, so caching or chunking cannot mix them.

    A partial of the module-level :func:`_observe`, with no state of its own: it pickles
    (a process pool can run the sweep's chunks) and hashes into the same cache key in
    every process. The state of a run (its judges, each model's seed) is made at its
    step 0 and kept in ``_RUNS`` by the identity of the run's parameter dict, which
    :func:`lib.train.fit` keeps for the whole run.
    """
    return functools.partial(_observe, make_model, tuple(seeds), X_test, y_test, every, steps)


_RUNS = {}  # id of a running fit's parameter dict -> (judges by seed, seed of each model)


def _observe(make_model, seeds, X_test, y_test, every, steps, params, t):
    first = next(iter(params.values()))
    k = first.shape[0]
    if t == 0:  # a new run (an id reused from a finished one is overwritten here)
        judges = {s: make_model(seed=s).to(first.device).eval() for s in seeds}
        starts = {s: torch.cat([p.detach().flatten() for p in j.parameters()])
                  for s, j in judges.items()}
        flat = torch.cat([p.detach().flatten(1) for p in params.values()], 1)
        _RUNS[id(params)] = judges, [next(s for s, w in starts.items() if torch.equal(w, flat[i]))
                                     for i in range(k)]
    if t % every and t != steps:
        return {"test_accuracy": torch.full((k,), float("nan"), dtype=torch.float64)}
    judges, rows = _RUNS.pop(id(params)) if t == steps else _RUNS[id(params)]
    X_test, y_test = X_test.to(first.device), y_test.to(first.device)
    acc = []
    with torch.no_grad():
        for i, s in enumerate(rows):
            out = functional_call(judges[s], {n: p[i] for n, p in params.items()}, (X_test,))
            acc.append((out.argmax(1) == y_test).double().mean())
    return {"test_accuracy": torch.stack(acc)}


def schedule_runs(make_model, data, test, runs: dict, config, seeds=(0,), cache_name=None,
                  eval_every=None) -> dict:
    """Train ``make_model(seed=s)`` with each named per-step schedule in ``runs``.

    ``runs``: as :func:`check_runs` takes them; an init_momentum (e.g. the ṽ_0 of
    :func:`lib.explr.experiments.exp_lr_momentum` for an exponential schedule) sets the
    first momentum buffer. ``config``: the shared TrainConfig (steps, batch size, momentum,
    log_every). ``data``/``test``: Datasets or (X, y). Each schedule is one sweep over the
    seeds by :func:`lib.sweep.train_grid` (cached under ``cache_name``): seed s draws the
    initialisation and the mini-batches (``TrainConfig.seed``); the test set is
    evaluated in eval mode (no augmentation), in one batch, every ``eval_every`` steps (a
    multiple of log_every; default log_every) and at the last, NaN at other records.
    Returns name -> list over seeds of dicts with step, loss, accuracy, test_accuracy,
    per-tensor ‖w‖² weight_norm_sq (T, n_tensors), eta and diverged_at (NaN after
    divergence).
    """
    make_model = checks.function("make_model", make_model)
    (X, y), (X_test, y_test) = networks.labelled_data("data", data), networks.labelled_data("test", test)
    if not isinstance(config, train.TrainConfig):
        raise TypeError(f"config must be a lib.train.TrainConfig, got {type(config).__name__}")
    runs, seeds = check_runs(runs, config.steps), _seeds(seeds)
    cache_name = _maybe(checks.string, "cache_name", cache_name)
    every = config.log_every if eval_every is None else checks.integer("eval_every", eval_every)
    if every % config.log_every:
        raise ValueError(f"eval_every must be a multiple of config.log_every "
                         f"({config.log_every}), got {every}")
    net = make_model(seed=seeds[0])
    networks.check_input(net, X, "data", y), networks.check_input(net, X_test, "test", y_test)
    observe = _test_accuracy(make_model, sorted(set(seeds)), X_test, y_test, every, config.steps)
    out = {}
    for i, (name, (etas, wd, init)) in enumerate(runs.items()):
        res = sweep.train_grid(make_model, (X, y), replace(config, eta=etas, weight_decay=wd),
                               sweep.Grid(seed=list(seeds)), bar=False, observe=observe,
                               init_momentum=init,
                               cache=f"{cache_name}-{i}" if cache_name else None)
        m = res.metrics
        out[name] = [{"step": res.step, "loss": m["loss"][j], "accuracy": m["accuracy"][j],
                      "test_accuracy": m["test_accuracy"][j],
                      "weight_norm_sq": m["weight_norm_sq_w"][j], "eta": m["eta_w"][j],
                      "diverged_at": None if res.diverged_at[j] < 0 else int(res.diverged_at[j])}
                     for j in range(len(seeds))]
    return out


def paper_schedules(setup: ScheduleSetup, steps_per_epoch: int) -> dict:
    """The named schedules of Li & Arora's figures 2 to 6 for ``setup``, as
    :func:`schedule_runs` takes them (name -> (etas, weight decay, init_momentum or None)).

    With η, λ, γ of the setup and its milestones (in epochs of ``steps_per_epoch`` steps):
    step decay + WD and its TEXP (figure 2); TEXP−− (figure 3); the exponential schedule
    of constant exponent (Theorem 2.9's, equivalent to constant η + WD) without and with
    an instant ÷10 at the milestones (figure 4); cosine + WD and its TEXP, exp-cosine
    (figure 5); constant η with λ divided by 10 at each milestone (figure 6). Every
    schedule without weight decay starts with Theorem 2.9's ṽ_0.
    """
    if not isinstance(setup, ScheduleSetup):
        raise TypeError(f"setup must be a ScheduleSetup, got {type(setup).__name__}")
    spe = checks.integer("steps_per_epoch", steps_per_epoch)
    eta, lam, gamma, steps = setup.eta, setup.weight_decay, setup.momentum, setup.epochs * spe
    ms = [m * spe for m in setup.milestones]
    step = schedules.step_decay(eta, steps, ms)
    v0 = experiments.exp_lr_momentum(eta, lam, gamma)  # Theorem 2.9's ṽ_0, picklable
    exp = schedules.exp_lr(eta, lam, gamma, steps)
    return {"step decay + WD": (step, lam),
            "TEXP": (schedules.texp(step, lam, gamma), 0.0, v0),
            "TEXP−−": (schedules.texp_minus(step, lam, gamma), 0.0, v0),
            "exp": (exp, 0.0, v0),
            "exp, ÷10 at decays": (exp * step / eta, 0.0, v0),
            "cosine + WD": (schedules.cosine(eta, steps, spe), lam),
            "exp-cosine": (schedules.exp_cosine(eta, lam, gamma, steps, spe), 0.0, v0),
            "constant η, WD ÷10": (np.full(steps, eta), lam * step / eta)}
