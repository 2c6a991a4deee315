"""Experiments of the exponential learning-rate chapter (Li & Arora, 2020).

Scale-invariant networks (normalisation without ε or affine parameters, last layer
fixed at initialisation), the equivalence runner (Theorems 2.1 and 2.9), schedule
comparisons on a small PreResNet, the weight-norm equilibrium (appendix C) and the
section-3 toy where batch norm and weight decay together fail. Training goes through
the book's one loop, :func:`lib.train.fit`.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from lib import data as _data, schedules, stack, sweep, train
from lib.models import NormLinear


class ScaleInvariantMLP(nn.Module):
    """MLP whose loss satisfies L(cθ) = L(θ) exactly for every c > 0.

    Hidden layers: linear map, ε-free batch norm without gain or bias, ReLU. The last
    layer is a buffer fixed at its initialisation, so every trainable parameter is in
    group ``w``. Args: sizes, e.g. (196, 32, 32, 10); seed of the initialisation.
    """

    def __init__(self, sizes, seed: int = 0):
        super().__init__()
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 3 or min(sizes) < 1:
            raise ValueError(f"sizes needs an input, at least one hidden and an output width, got {sizes}")
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
            self.hidden = nn.Sequential(*[m for a, b in zip(sizes[:-2], sizes[1:-1]) for m in
                                          (NormLinear(a, b, norm="bn_smooth", eps=0.0, affine=False),
                                           nn.ReLU())])
            self.register_buffer("head", nn.Linear(sizes[-2], sizes[-1]).weight.detach().clone())

    def forward(self, x):  # (B, ...) -> (B, n_classes)
        return self.hidden(x.flatten(1)) @ self.head.T

    def groups(self) -> dict:
        return {"w": list(self.parameters()), "g": []}


class BatchNorm2dNoEps(nn.Module):
    """Batch norm over (N, H, W) with no ε, gain, bias or running statistics.

    Always normalises with the statistics of the batch it sees (also at test time):
    running averages mix weights of different scales and would break the equivalence.
    """

    def forward(self, x):  # (N, C, H, W)
        mean = x.mean((0, 2, 3), keepdim=True)
        var = (x - mean).pow(2).mean((0, 2, 3), keepdim=True)
        return (x - mean) / var.clamp_min(1e-30).sqrt()  # clamp only guards a dead channel


class PreActBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv-BN-ReLU-conv plus a shortcut."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.bn1, self.bn2 = BatchNorm2dNoEps(), BatchNorm2dNoEps()
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

    Args: in_channels; n_classes; widths of the stages (one block each; (16, 32, 64) is
    PreResNet-8); stem_stride (2 halves the image first, cheaper on a CPU); seed.
    The final linear layer is a buffer fixed at initialisation, as in Li & Arora's runs.
    """

    def __init__(self, in_channels=1, n_classes=10, widths=(16, 32, 64), blocks=1,
                 stem_stride=2, seed=0):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self._build(in_channels, n_classes, widths, blocks, stem_stride)

    def _build(self, in_channels, n_classes, widths, blocks, stem_stride):
        self.stem = nn.Conv2d(in_channels, widths[0], 3, stem_stride, 1, bias=False)
        layers, c = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(PreActBlock(c, w, 2 if (i > 0 and b == 0) else 1))
                c = w
        self.blocks, self.bn = nn.Sequential(*layers), BatchNorm2dNoEps()
        self.register_buffer("head", nn.Linear(c, n_classes).weight.detach().clone())

    def forward(self, x):  # (N, C, H, W) -> (N, n_classes)
        h = torch.relu(self.bn(self.blocks(self.stem(x))))
        return h.mean((2, 3)) @ self.head.T

    def groups(self) -> dict:
        return {"w": list(self.parameters()), "g": []}


def exp_lr_momentum(eta: float, weight_decay: float, momentum: float):
    """``init_momentum`` for the exp-LR run of Theorem 2.9, started at rest like run A.

    The theorem asks for θ̃_{−1} = α θ_{−1}, with η̃_{−1} = ηα. In PyTorch's form the
    buffer is v_0 = (θ_{−1} − θ_0)/η_{−1}; run A starts with v_0 = 0, i.e. θ_{−1} = θ_0,
    so the exp-LR run needs ṽ_0 = (αθ_0 − θ_0)/(ηα) = −(1 − α)/(αη) · θ_0.
    """
    alpha = schedules.exp_lr_alpha(eta, weight_decay, momentum)
    coef = -(1 - alpha) / (alpha * eta)
    return lambda params: {n: coef * p for n, p in params.items()}


def _flat(params):  # name -> (K, ...) to (K, P)
    return torch.cat([p.detach().flatten(1) for p in params.values()], 1)


def unit_distance(a, b) -> np.ndarray:
    """‖a/‖a‖ − b/‖b‖‖ along the last axis: how far apart two directions are."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.linalg.norm(a / np.linalg.norm(a, axis=-1, keepdims=True)
                          - b / np.linalg.norm(b, axis=-1, keepdims=True), axis=-1)


def paired_runs(data, lrs_a, weight_decay_a, lrs_b, weight_decay_b=0.0, momentum=0.9,
                init_b=None, make_model=None, batch_size=100, dtype=torch.float64,
                seed=0) -> dict:
    """Train two copies of one scale-invariant network with two schedules, same batches.

    ``lrs_a``/``lrs_b``: per-step learning rates (same length); ``init_b``: the
    ``init_momentum`` of run B; ``make_model(seed)``: default a ScaleInvariantMLP on
    (196, 32, 32, 10). Returns step (T,), theta_a and theta_b (T, P): all weights,
    flattened, at every step.
    """
    if len(lrs_a) != len(lrs_b):
        raise ValueError(f"both schedules need the same length, got {len(lrs_a)} and {len(lrs_b)}")
    make_model = make_model or (lambda seed: ScaleInvariantMLP((196, 32, 32, 10), seed))
    X, y = train._unpack(data)
    data = (X.to(dtype), y)
    base = train.TrainConfig(steps=len(lrs_a), batch_size=batch_size, momentum=momentum,
                             seed=seed, log_every=1, lr=1.0)  # same seed: same mini-batches
    observe = lambda params, t: {"theta": _flat(params)}  # noqa: E731
    runs = [train.train(make_model(seed).to(dtype), data,
                        replace(base, schedule=np.asarray(lrs), weight_decay=wd),
                        bar=False, observe=observe, init_momentum=init)
            for lrs, wd, init in ((lrs_a, weight_decay_a, None), (lrs_b, weight_decay_b, init_b))]
    return {"step": runs[0].step, "theta_a": runs[0].extra["theta"],
            "theta_b": runs[1].extra["theta"]}


def equivalence(data, sizes=(196, 32, 32, 10), eta=0.1, weight_decay=5e-3, momentum=0.9,
                steps=300, batch_size=100, dtype=torch.float64, seed=0) -> dict:
    """Run A (constant η, WD λ, momentum γ) against B (exp_lr, no WD, Theorem 2.9 start).

    Returns :func:`paired_runs`' dict plus ``alpha``; B's weights should be α^{−t}
    times A's.
    """
    out = paired_runs(data, np.full(steps, float(eta)), weight_decay,
                      schedules.exp_lr(eta, weight_decay, momentum, steps), 0.0, momentum,
                      init_b=exp_lr_momentum(eta, weight_decay, momentum),
                      make_model=lambda seed: ScaleInvariantMLP(sizes, seed),
                      batch_size=batch_size, dtype=dtype, seed=seed)
    return {**out, "alpha": schedules.exp_lr_alpha(eta, weight_decay, momentum)}


@dataclass(frozen=True)
class ScheduleSetup:
    """Sizes of the step decay ↔ TEXP experiment at one scale."""

    dataset: str          # "cifar10" (falls back to "fashion_mnist" when absent)
    n_train: int          # training images (a seeded subset)
    n_test: int           # test images, evaluated at once (batch statistics)
    widths: tuple         # channels per stage of the PreResNet
    blocks: int           # residual blocks per stage (5 for PreResNet32)
    stem_stride: int      # 2 halves the image first (cheap on a CPU)
    epochs: int           # passes over the training subset
    batch_size: int
    eta: float            # initial learning rate η
    weight_decay: float   # λ
    momentum: float       # γ
    seeds: tuple          # one run per seed


SCHEDULE_SETUPS = {
    "cpu": ScheduleSetup("fashion_mnist", 2_560, 500, (8, 16, 32), 1, 2, 8, 128, 0.1, 1e-2, 0.9, (0,)),
    "gpu": ScheduleSetup("cifar10", 50_000, 10_000, (16, 32, 64), 5, 1, 40, 128, 0.1, 5e-4, 0.9, (0, 1)),
    "paper": ScheduleSetup("cifar10", 50_000, 10_000, (16, 32, 64), 5, 1, 160, 128, 0.1, 5e-4, 0.9, (0, 1, 2)),
}


def schedule_data(setup: ScheduleSetup, device=None):
    """(train, test, note): the setup's data set, or Fashion-MNIST if it is missing."""
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


def schedule_runs(make_model, data, test, runs: dict, config, seeds=(0,),
                  cache_name=None) -> dict:
    """Train ``make_model(seed=s)`` with each named per-step schedule in ``runs``.

    ``runs``: name -> (lrs array, weight decay). ``config``: the shared TrainConfig
    (steps, batch size, momentum, log_every). Every schedule is one sweep over the seeds
    (:func:`lib.sweep.train_grid`, cached under ``cache_name``). Returns name -> list over
    seeds of dicts with step, loss, train/test accuracy and per-tensor ‖w‖² (T, n_tensors).
    """
    X_test, y_test = train._unpack(test)
    net = make_model(seed=seeds[0])  # the architecture, to evaluate stacked parameters

    def observe(params, t):  # test accuracy of every model in the chunk, (K,)
        k = next(iter(params.values())).shape[0]
        with torch.no_grad():
            outs = [functional_call(net, {n: p[i] for n, p in params.items()}, (X_test,))
                    for i in range(k)]
        return {"test_accuracy": torch.stack([(o.argmax(1) == y_test).double().mean() for o in outs])}

    out = {}
    for i, (name, (lrs, wd)) in enumerate(runs.items()):
        cfg = replace(config, lr=1.0, schedule=np.asarray(lrs, dtype=float), weight_decay=wd)
        res = sweep.train_grid(make_model, data, cfg, sweep.Grid(seed=list(seeds)),
                               observe=observe, bar=False,
                               cache=f"{cache_name}-{i}" if cache_name else None)
        m = res.metrics
        out[name] = [{"step": res.step, "loss": m["loss"][j], "accuracy": m["accuracy"][j],
                      "test_accuracy": m["test_accuracy"][j],
                      "weight_norm_sq": m["weight_norm_sq_w"][j], "lr": m["lr_w"][j]}
                     for j in range(len(seeds))]
    return out


def equilibrium(data, sizes, points, steps, batch_size, seed=0) -> list:
    """Measure mean‖θ_{t+1} − θ_t‖² / mean‖θ_t‖² over the second half of SGD runs.

    ``points``: list of (η, λ, γ). All are trained at once on ``ScaleInvariantMLP``.
    Returns one dict per point: measured ratio, predicted 2ηλ/(1+γ), and the per-step
    series ``step_sq`` and ``norm_sq`` (T,).
    """
    models = [ScaleInvariantMLP(sizes, seed + k) for k in range(len(points))]
    s = stack.from_models(models)
    base = train.TrainConfig(steps=steps, batch_size=batch_size, log_every=1, seed=seed)
    configs = [replace(base, lr=e, weight_decay=l, momentum=g) for e, l, g in points]
    prev = {}

    def observe(params, t):
        theta = _flat(params)
        step_sq = (theta - prev["theta"]).pow(2).sum(1) if prev else torch.full_like(theta[:, 0], math.nan)
        prev["theta"] = theta
        return {"step_sq": step_sq, "norm_sq": theta.pow(2).sum(1)}

    hists = train.fit(s, data, configs, bar=False, observe=observe)
    out = []
    for (e, l, g), h in zip(points, hists):
        k = steps // 2  # step_sq[t] = ‖θ_t − θ_{t−1}‖², norm_sq[t] = ‖θ_t‖²
        measured = np.mean(h.extra["step_sq"][k + 1:]) / np.mean(h.extra["norm_sq"][k:-1])
        out.append({"eta": e, "weight_decay": l, "momentum": g, "measured": float(measured),
                    "predicted": schedules.equilibrium_ratio(e, l, g),
                    "step_sq": h.extra["step_sq"], "norm_sq": h.extra["norm_sq"]})
    return out


def toy_data(n: int, m: int, seed: int = 0):
    """Section-3 toy: x ~ N(0, I_m), label y = sign(x_1) ∈ {−1, +1}; X (n, m), y (n,)."""
    if n < 2 or m < 2:
        raise ValueError(f"need n >= 2 examples and m >= 2 dimensions, got n={n}, m={m}")
    X = np.random.default_rng(seed).standard_normal((n, m))
    return X, np.where(X[:, 0] >= 0, 1.0, -1.0)


def toy_error(w) -> np.ndarray:
    """Population error arccos(w_1/‖w‖)/π of the linear classifier sign(wᵀx)."""
    w = np.asarray(w, dtype=float)
    return np.arccos(np.clip(w[..., 0] / np.linalg.norm(w, axis=-1), -1, 1)) / np.pi


def toy_gd(X, y, w0, eta: float, weight_decay: float, steps: int, bn: bool = True) -> dict:
    """Full-batch GD on the logistic loss of u = BN(Xw) (bn=True) or u = Xw, plus WD λ.

    BN uses the batch mean and standard deviation, with no gain or bias, so the loss
    is scale-invariant in w. The gradient is written out by hand (checked against
    autograd in the tests). Returns w (steps + 1, m), error and norm (steps + 1,).
    """
    if eta <= 0 or weight_decay < 0 or steps < 1 or eta * weight_decay >= 1:
        raise ValueError(f"need η > 0, λ >= 0, ηλ < 1 (else weight decay flips w) and "
                         f"steps >= 1; got η={eta}, λ={weight_decay}, steps={steps}")
    w = np.array(w0, dtype=float)
    ws = np.empty((steps + 1, w.size))
    ws[0] = w
    for t in range(steps):
        w = (1 - eta * weight_decay) * w - eta * toy_grad(X, y, w, bn)
        ws[t + 1] = w
    return {"w": ws, "error": toy_error(ws), "norm": np.linalg.norm(ws, axis=1)}


def toy_loss(X, y, w, bn: bool = True) -> float:
    """Mean logistic loss ln(1 + exp(−y u)), u = BN(Xw) or Xw (without the WD term)."""
    s = X @ w
    u = (s - s.mean()) / s.std() if bn else s
    return float(np.mean(np.logaddexp(0, -y * u)))


def toy_grad(X, y, w, bn: bool = True) -> np.ndarray:
    """Gradient of :func:`toy_loss` with respect to w, (m,)."""
    s = X @ w
    n = s.size
    if not bn:
        return X.T @ (-y / (1 + np.exp(y * s))) / n
    sd = s.std()
    u = (s - s.mean()) / sd
    g = -y / (1 + np.exp(y * u)) / n                  # dL/du
    ds = (g - g.mean() - u * np.mean(g * u)) / sd     # through the mean and the std
    return X.T @ ds
