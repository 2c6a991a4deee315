"""Networks and normalisation layers, with their parameters split into groups.

Every model here has a ``groups()`` method returning ``{"w": [...], "g": [...]}``:
``w`` holds the scale-invariant weights (a linear map followed by normalisation, so the
loss satisfies F(cw) = F(w)), ``g`` the scale-variant rest (normalisation gains and
biases, the last layer). The training loop gives each group its own learning rate,
as in Arora, Li & Lyu (2019) with η_w and η_g.
"""

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from lib import checks

NORMS = ("none", "bn", "bn_smooth")
ACTIVATIONS = {"relu": nn.ReLU, "softplus": nn.Softplus, "tanh": nn.Tanh}


class NormLinear(nn.Module):
    """Linear map without bias followed by batch normalisation of its outputs.

    ``norm="bn"`` is standard BN: (wᵀz − μ)/√(σ² + ε), only approximately scale-invariant.
    ``norm="bn_smooth"`` is the smoothed BN of Arora et al. (eq. 8): ε is multiplied by
    ‖w_i‖², so scaling the weights by c > 0 changes nothing, exactly.
    Batch statistics are used in training mode; running estimates in eval mode.
    Accepts: integer sizes >= 1, ε >= 0 finite, momentum of the running estimates in [0, 1].
    """

    def __init__(self, n_in: int, n_out: int, norm: str = "bn_smooth", eps: float = 1e-5,
                 affine: bool = True, momentum: float = 0.1):
        super().__init__()
        n_in, n_out = checks.integer("n_in", n_in), checks.integer("n_out", n_out)
        norm = checks.choice("norm", norm, ("bn", "bn_smooth"))
        eps = checks.nonnegative("eps", eps)
        momentum = checks.fraction("momentum", momentum, hi_open=False)
        affine = checks.boolean("affine", affine)
        self.linear = nn.Linear(n_in, n_out, bias=False)
        self.norm, self.eps, self.momentum = norm, eps, momentum
        self.gain = nn.Parameter(torch.ones(n_out)) if affine else None
        self.bias = nn.Parameter(torch.zeros(n_out)) if affine else None
        self.register_buffer("running_mean", torch.zeros(n_out))
        self.register_buffer("running_var", torch.ones(n_out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (B, n_in) -> (B, n_out)
        x = self.linear(z)
        if self.training:
            mean = x.mean(0)
            centred = x - mean
            var = centred.pow(2).mean(0)  # biased, as BN normalises; cheaper than var() under vmap
            with torch.no_grad():  # mul_/add_ rather than lerp_: both have vmap batching rules
                n = x.shape[0]
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / max(n - 1, 1))
        else:
            centred, var = x - self.running_mean, self.running_var
        eps = self.eps
        if self.norm == "bn_smooth":
            eps = eps * self.linear.weight.pow(2).sum(1)  # ε‖w_i‖² per output unit
        x = centred / torch.sqrt(var + eps)
        return x if self.gain is None else x * self.gain + self.bias


class MLP(nn.Module):
    """Fully connected network; every hidden layer normalised when ``norm != "none"``.

    Args:
        sizes: layer widths, e.g. (784, 100, 100, 10), at least two integers >= 1;
            inputs are flattened.
        norm: "none", "bn" (standard BN) or "bn_smooth" (exactly scale-invariant BN).
        activation: "relu", "softplus" or "tanh".
        eps: the BN ε, finite and >= 0.
    """

    def __init__(self, sizes, norm: str = "bn_smooth", activation: str = "softplus",
                 eps: float = 1e-5):
        super().__init__()
        sizes = widths("sizes", sizes)
        norm = checks.choice("norm", norm, NORMS)
        activation = checks.choice("activation", activation, tuple(ACTIVATIONS))
        eps = checks.nonnegative("eps", eps)
        self.norm = norm
        hidden = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            layer = (nn.Linear(n_in, n_out) if norm == "none"
                     else NormLinear(n_in, n_out, norm=norm, eps=eps))
            hidden += [layer, ACTIVATIONS[activation]()]
        self.hidden = nn.Sequential(*hidden)
        self.head = nn.Linear(sizes[-2], sizes[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, ...) -> (B, n_classes)
        return self.head(self.hidden(x.flatten(1)))

    def groups(self) -> dict:
        """``{"w": scale-invariant weights, "g": everything else}``."""
        return split_groups(self, [m.linear.weight for m in self.hidden if isinstance(m, NormLinear)])


class SmallCNN(nn.Module):
    """Two conv(3×3) → BatchNorm → ReLU → max-pool blocks and a linear head.

    Args:
        in_channels: 1 for Fashion-MNIST, 3 for CIFAR-10.
        n_classes: outputs.  width: channels of the first block (the second has 2×).
        image_size: side of the square input (28 or 32).
    The conv weights, each followed by BN, are the scale-invariant group ``w``.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, width: int = 16,
                 image_size: int = 28):
        super().__init__()
        in_channels, n_classes = checks.integer("in_channels", in_channels), checks.integer("n_classes", n_classes)
        width, image_size = checks.integer("width", width), checks.integer("image_size", image_size, lo=4)
        c1, c2 = width, 2 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.MaxPool2d(2))
        self.head = nn.Linear(c2 * (image_size // 4) ** 2, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W) -> (B, n_classes)
        return self.head(self.features(x).flatten(1))

    def groups(self) -> dict:
        """``{"w": conv weights (each followed by BN), "g": everything else}``."""
        return split_groups(self, [m.weight for m in self.features if isinstance(m, nn.Conv2d)])


def widths(name: str, sizes, min_len: int = 2) -> tuple:
    """Layer widths: a sequence of at least ``min_len`` integers >= 1, as a tuple of ints."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a sequence of layer widths, got {type(sizes).__name__}")
    sizes = tuple(checks.integer(f"{name}[{i}]", s) for i, s in enumerate(sizes))
    if len(sizes) < min_len:
        raise ValueError(f"{name} must list at least {min_len} widths, got {sizes}")
    return sizes


def module(name: str, value) -> nn.Module:
    """``value`` if it is a ``torch.nn.Module``, else a TypeError naming it."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def split_groups(model: nn.Module, w: list) -> dict:
    """``{"w": w, "g": every other parameter of model}``; ``w``: parameters of ``model``."""
    module("model", model)
    if not isinstance(w, (list, tuple)):
        raise TypeError(f"w must be a list of parameters of model, got {type(w).__name__}")
    own = {id(p) for p in model.parameters()}
    if any(id(p) not in own for p in w):
        raise ValueError("w must hold parameters of model only")
    ids = {id(p) for p in w}
    return {"w": w, "g": [p for p in model.parameters() if id(p) not in ids]}


def groups(model: nn.Module) -> dict:
    """Parameter groups of ``model``: its own ``groups()``, else all parameters in ``g``."""
    module("model", model)
    if hasattr(model, "groups"):
        return checks.mapping_keys("model.groups()", model.groups(), ("w", "g"))
    return {"w": [], "g": list(model.parameters())}


def effective_eta(eta, weight_norm_sq) -> np.ndarray:
    """The effective learning rate η/‖w‖² of a scale-invariant weight w (arrays that broadcast).

    The loss sees only the direction w/‖w‖, and its gradient scales as 1/‖w‖, so a step η on
    w turns the direction as a step η/‖w‖² would at unit norm (Lemma 2.4 of Arora, Li &
    Lyu 2019). ``eta`` > 0; ``weight_norm_sq`` > 0, NaN
    allowed (a run that diverged: the result is NaN there too).
    """
    eta = checks.positive_array("eta", eta)
    norm_sq = checks.array("weight_norm_sq", weight_norm_sq, finite=False)
    if np.any(~np.isnan(norm_sq) & ~(norm_sq > 0)):
        raise ValueError(f"weight_norm_sq must be > 0 (or NaN after a divergence), got min "
                         f"{np.nanmin(norm_sq):g}")
    try:
        np.broadcast_shapes(eta.shape, norm_sq.shape)
    except ValueError:
        raise ValueError(f"eta {eta.shape} and weight_norm_sq {norm_sq.shape} must "
                         f"broadcast together") from None
    return eta / norm_sq
