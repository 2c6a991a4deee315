"""BNGD beyond least squares (Cai, Li & Shen 2019, section 4.2): small networks on images.

Two networks, each with and without batch normalisation (BN):
  * :class:`OneLayer`: 784 → 10, softmax output, trained on the squared loss; with BN
    the ten outputs are normalised, a·BN(xᵀw) + b per class, the OLS model of the paper
    with a softmax on top;
  * :class:`ConvNet`: conv–pool–conv–pool–FC–FC with ReLU (the paper's network (2)),
    with BN after every convolution and linear layer.
With BN every weight matrix is followed by a normalisation (group ``w`` of the training
loop) and the BN gains and shifts form group ``g``. :func:`eta_sweep` trains one
"scheme" over a range of learning rates: plain GD without BN, BNGD with one learning
rate for everything, or BNGD with a separate, fixed learning rate for the BN parameters.
"""

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from lib import checks, models, sweep
from lib.train import TrainConfig

SCHEMES = ("gd", "bn_shared", "bn_separate")
SCHEME_LABELS = {"gd": "GD, no BN", "bn_shared": "BNGD, one learning rate",
                 "bn_separate": "BNGD, separate rate for BN parameters"}
BN_EPS = 1e-3   # the ε in √(σ² + ε) the paper's network experiments use


def _glorot(model: nn.Module, seed: int) -> nn.Module:
    """Glorot-uniform weights (the paper's initialisation), zero biases, seeded."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
                bound = math.sqrt(6 / (fan_in + fan_out))
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 2 * bound - bound)
                if m.bias is not None:
                    m.bias.zero_()
    return model


class OneLayer(nn.Module):
    """x ↦ softmax(BN(W x)) (bn=True, BN with gain and shift) or softmax(W x + b).

    Args: n_in: input size (784 for Fashion-MNIST); n_out: classes; bn: normalise the
    outputs; eps: the BN ε; norm: "bn" (ε added to the variance, as the paper) or
    "bn_smooth" (ε‖w‖², exactly scale-invariant; see :class:`lib.models.NormLinear`).
    """

    def __init__(self, n_in: int = 784, n_out: int = 10, bn: bool = True, eps: float = BN_EPS,
                 norm: str = "bn"):
        n_in, n_out = checks.integer("n_in", n_in), checks.integer("n_out", n_out)
        bn, eps = checks.boolean("bn", bn), checks.nonnegative("eps", eps)
        checks.choice("norm", norm, ("bn", "bn_smooth"))
        super().__init__()
        self.bn = bn
        self.layer = models.NormLinear(n_in, n_out, norm=norm, eps=eps) if bn else nn.Linear(n_in, n_out)

    @property
    def weight(self) -> torch.Tensor:
        """The (n_out, n_in) weight matrix W."""
        return self.layer.linear.weight if self.bn else self.layer.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (B, ...) -> (B, n_out) probabilities
        return torch.softmax(self.layer(x.flatten(1)), dim=-1)

    def groups(self) -> dict:
        """``w``: the weight matrix when BN follows it; ``g``: everything else."""
        return models.split_groups(self, [self.weight] if self.bn else [])


class ConvNet(nn.Module):
    """conv3×3–[BN]–ReLU–pool–conv3×3–[BN]–ReLU–pool–FC–[BN]–ReLU–FC–[BN] (logits).

    Args: in_channels (1 or 3), image_size (28 or 32), width: channels of the first
    convolution (the second has 2×), hidden: units of the first linear layer, n_out:
    classes, bn: batch normalisation after every layer, eps: the BN ε.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, width: int = 8,
                 hidden: int = 64, n_out: int = 10, bn: bool = True, eps: float = BN_EPS):
        in_channels, width = checks.integer("in_channels", in_channels), checks.integer("width", width)
        hidden, n_out = checks.integer("hidden", hidden), checks.integer("n_out", n_out)
        image_size = checks.integer("image_size", image_size, lo=4)
        bn, eps = checks.boolean("bn", bn), checks.nonnegative("eps", eps)
        super().__init__()
        c1, c2, side = width, 2 * width, image_size // 4
        norm2 = (lambda c: nn.BatchNorm2d(c, eps=eps)) if bn else (lambda c: nn.Identity())
        norm1 = (lambda c: nn.BatchNorm1d(c, eps=eps)) if bn else (lambda c: nn.Identity())
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=not bn), norm2(c1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=not bn), norm2(c2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * side * side, hidden, bias=not bn), norm1(hidden), nn.ReLU(),
            nn.Linear(hidden, n_out, bias=not bn), norm1(n_out))
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (B, C, H, W) -> (B, n_out) logits
        return self.layers(x)

    def groups(self) -> dict:
        """``w``: every conv/linear weight (each followed by BN when bn=True); ``g``: the rest."""
        weights = [m.weight for m in self.layers if isinstance(m, (nn.Conv2d, nn.Linear))]
        return models.split_groups(self, weights if self.bn else [])


def make_one_layer(seed: int = 0, bn: bool = True, scale: float = 1.0, **kw) -> OneLayer:
    """A Glorot-initialised :class:`OneLayer` whose weight matrix is multiplied by ``scale``.

    seed: an integer in [0, 2**63); scale > 0; kw go to :class:`OneLayer`.
    """
    seed, scale = checks.seed("seed", seed), checks.positive("scale", scale)
    model = _glorot(OneLayer(bn=bn, **kw), seed)
    with torch.no_grad():
        model.weight.mul_(scale)
    return model


def make_conv_net(seed: int = 0, bn: bool = True, **kw) -> ConvNet:
    """A Glorot-initialised :class:`ConvNet` (seed in [0, 2**63); kw go to its constructor)."""
    seed = checks.seed("seed", seed)
    return _glorot(ConvNet(bn=bn, **kw), seed)


@dataclass(frozen=True)
class SweepConfig:
    """Loss after one epoch of SGD against the learning rate (the paper's figure 3)."""

    etas: tuple                  # learning rates on the x-axis (η, or η_w for bn_separate)
    seeds: int = 3               # independent runs per point (initialisation and batch order)
    batch_size: int = 100        # images per SGD step
    eta_g: float = 0.1           # fixed rate η_g of the BN parameters (bn_separate scheme)
    loss: str = "mse"            # "mse" (with a softmax output: squared loss) or "cross_entropy"
    tail: int = 10               # last mini-batch losses averaged into "loss after one epoch"

    def __post_init__(self):
        checks.positive_array("etas", self.etas, ndim=1)
        checks.integer("seeds", self.seeds), checks.integer("batch_size", self.batch_size)
        checks.positive("eta_g", self.eta_g), checks.integer("tail", self.tail)
        checks.choice("loss", self.loss, ("mse", "cross_entropy"))


def eta_sweep(make_model, data, scheme: str, config: SweepConfig, cache: str | None = None,
             axes: dict | None = None, **model_kw) -> np.ndarray:
    """Loss after one epoch for one scheme, (*axes, len(etas), seeds); +inf where a run diverged.

    Args:
        make_model: ``make_model(seed=, bn=, **axes, **model_kw)`` (e.g. :func:`make_one_layer`).
        data: training Dataset (or (X, y)) on the device; one epoch = N // batch_size steps.
        scheme: one of SCHEMES.  cache: name for the sweep engine's results cache.
        axes: extra model arguments to sweep, e.g. ``{"scale": [0.1, 1, 10]}``; their axes
            come first in the result. All models of the sweep train together.
    """
    checks.function("make_model", make_model)
    checks.choice("scheme", scheme, SCHEMES)
    if not isinstance(config, SweepConfig):
        raise TypeError(f"config must be a SweepConfig, got {type(config).__name__}")
    if cache is not None:
        checks.string("cache", cache)
    if axes is not None and not isinstance(axes, dict):
        raise TypeError(f"axes must be a dict {{name: values}} or None, got {type(axes).__name__}")
    steps = _examples(data) // config.batch_size
    if steps < config.tail:
        raise ValueError(f"tail = {config.tail} is more than the {steps} steps of one epoch "
                         f"(batch_size {config.batch_size})")
    base = TrainConfig(steps=steps, batch_size=config.batch_size, loss=config.loss)
    if scheme == "bn_separate":  # every group at η_g; the grid's axis sets η_w
        base, axis = replace(base, eta=config.eta_g), "eta_w"
    else:
        axis = "eta"
    grid = sweep.Grid(**(axes or {}), **{axis: list(config.etas)}, seed=list(range(config.seeds)))
    build = functools.partial(make_model, bn=scheme != "gd", **model_kw)
    res = sweep.train_grid(build, data, base, grid, cache=cache, bar=False)
    return end_of_epoch_loss(res.metrics["loss"], config.tail)


def end_of_epoch_loss(loss: np.ndarray, tail: int) -> np.ndarray:
    """Mean of the last ``tail`` recorded mini-batch losses; +inf if any is not finite.

    Args: loss (..., T) per-step losses (NaN after a divergence, as the sweep engine pads);
    tail: an integer in [1, T].
    """
    loss = checks.array("loss", loss, finite=False)
    if loss.ndim < 1:
        raise ValueError("loss must have a last (step) axis, got a 0-d value")
    tail = checks.integer("tail", tail, lo=1, hi=loss.shape[-1])
    last = loss[..., -tail:]
    with np.errstate(invalid="ignore"):
        out = last.mean(-1)
    return np.where(np.all(np.isfinite(last), -1), out, np.inf)


def _examples(data) -> int:
    """Number of training examples in ``data``: a Dataset (with .X) or a pair (X, y)."""
    pair = isinstance(data, (tuple, list)) and len(data) == 2
    X = data.X if hasattr(data, "X") else data[0] if pair else None
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"data must be a Dataset or a pair (X, y) of tensors, got {type(data).__name__}")
    return checks.tensor("data", X, ndim=(2, 3, 4)).shape[0]
