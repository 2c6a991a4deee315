"""Scale-invariant networks of the exponential learning-rate chapter (Li & Arora, 2020).

Normalisation without ε, gain or bias, and a last layer fixed at initialisation (a
buffer): the loss then satisfies L(cθ) = L(θ) for every c > 0 and all trainable weights
θ, as Theorems 2.1 and 2.9 require. :class:`ScaleInvariantMLP` is the small network of
the equivalence runs; :class:`PreResNet` (built from :class:`PreActBlock` and
:class:`BatchNorm2dNoEps`) the residual network of the schedule comparison, made by
:func:`make_preresnet` there.
"""

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from lib import checks, datachecks
from lib.models import NormLinear


def layer_sizes(name: str, value, min_len: int = 1) -> tuple:
    """A sequence of at least ``min_len`` integers >= 1 (widths), as a tuple of ints.

    ``name``: the argument's name in error messages; ``min_len``: an integer >= 1.
    """
    name, min_len = checks.string("name", name), checks.integer("min_len", min_len)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of integers >= 1, got "
                        f"{type(value).__name__} {value!r}")
    if len(value) < min_len:
        raise ValueError(f"{name} needs at least {min_len} entries, got {tuple(value)}")
    return tuple(checks.integer(f"{name}[{i}]", v) for i, v in enumerate(value))


def labelled_data(name: str, data) -> tuple:
    """(X, y) from a Dataset or a pair, as :func:`lib.datachecks.unpack` checks it, with
    integer class labels y (N,): these networks classify. ``name`` names the argument."""
    X, y = datachecks.unpack(data, name)
    checks.tensor(f"{name}.y", y, ndim=1, floating=False)
    return X, y


def check_input(model, X, name: str = "x", y=None) -> None:
    """Refuse inputs X (and labels y) that do not fit ``model``, naming them ``name``.

    Shapes only, no data read (forward calls it on every batch); labels, when given, are
    read. ``model``: an nn.Module (only this module's networks are checked); ``X``: a
    floating tensor; ``y``: None or integer labels, one per input.
    """
    checks.instance("model", model, nn.Module)
    checks.tensor(checks.string("name", name), X, finite=False)
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
        checks.labels(f"{name}.y", y, model.head.shape[0], n=X.shape[0])


class ScaleInvariantMLP(nn.Module):
    """MLP whose loss satisfies L(cθ) = L(θ) exactly for every c > 0.

    Hidden layers: linear map, ε-free batch norm without gain or bias, ReLU. The last
    layer is a buffer fixed at its initialisation, so every trainable parameter is in
    group ``w``. Args: sizes, at least three integers >= 1, e.g. (196, 32, 32, 10);
    seed of the initialisation. Inputs: a batch of at least 2 with sizes[0] features.
    """

    def __init__(self, sizes, seed: int = 0):
        super().__init__()
        self.sizes = sizes = layer_sizes("sizes", sizes, min_len=3)
        g = torch.Generator().manual_seed(checks.seed("seed", seed))
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
            self.hidden = nn.Sequential(*[m for a, b in zip(sizes[:-2], sizes[1:-1]) for m in
                                          (NormLinear(a, b, norm="bn_smooth", eps=0.0, affine=False),
                                           nn.ReLU())])
            self.register_buffer("head", nn.Linear(sizes[-2], sizes[-1]).weight.detach().clone())

    def forward(self, x):  # (B, ...) -> (B, n_classes)
        check_input(self, x, "x")  # shapes only: no data read, no sync
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
    stage; (16, 32, 64) is PreResNet-8); blocks per stage (5: PreResNet32); stem_stride
    (2 halves the image first, cheaper on a CPU); seed in [0, 2**63). The final linear
    layer is a buffer fixed at initialisation, as in Li & Arora's runs. ``augment``: in
    training mode, each input batch first goes through :func:`crop_flip` (drawn from a
    generator seeded with ``seed``); never in eval mode.
    """

    def __init__(self, in_channels=1, n_classes=10, widths=(16, 32, 64), blocks=1,
                 stem_stride=2, seed=0, augment=False):
        super().__init__()
        self.in_channels = checks.integer("in_channels", in_channels)
        n_classes, widths = checks.integer("n_classes", n_classes), layer_sizes("widths", widths)
        blocks, stem_stride = checks.integer("blocks", blocks), checks.integer("stem_stride", stem_stride)
        self.augment = checks.boolean("augment", augment)
        self.generator = torch.Generator().manual_seed(checks.seed("seed", seed)) if augment else None
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
        check_input(self, x, "x")  # shapes only
        if self.augment and self.training:
            x = _crop_flip(x, 4, self.generator)
        h = torch.relu(self.bn(self.blocks(self.stem(x))))
        return h.mean((2, 3)) @ self.head.T

    def groups(self) -> dict:
        return {"w": list(self.parameters()), "g": []}


def make_preresnet(seed: int = 0, **kwargs) -> PreResNet:
    """``PreResNet(seed=seed, **kwargs)``: the chapter's model factory.

    A module-level function, so that ``functools.partial(make_preresnet, widths=...)``
    pickles (a process pool can run its sweeps) and hashes into the same cache key in
    every process (a lambda in a notebook cell does neither). ``seed`` in [0, 2**63);
    ``kwargs``: the other arguments of :class:`PreResNet`, checked there.
    """
    return PreResNet(seed=checks.seed("seed", seed), **kwargs)


def crop_flip(X, pad: int = 4, generator=None) -> torch.Tensor:
    """Random crops and horizontal flips of images, the usual CIFAR-10 training augmentation.

    Each image of ``X`` (N, C, H, W), a floating tensor, is padded with ``pad`` >= 0 zeros
    on every side, cut back to H × W at an offset drawn uniformly from the (2·pad + 1)²
    possible ones, and mirrored left-right with probability ½; ``generator``: None (torch's
    global one) or a ``torch.Generator`` on the CPU. Returns a new tensor like ``X``.
    """
    X = checks.tensor("X", X, ndim=4)
    pad = checks.integer("pad", pad, lo=0)
    if generator is not None:
        checks.instance("generator", generator, torch.Generator)
    return _crop_flip(X, pad, generator)


def _crop_flip(X, pad, generator):  # unchecked: PreResNet calls it on every batch
    n, c, h, w = X.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(X.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(X.device)
    rows = offsets[0][:, None] + torch.arange(h, device=X.device)           # (N, H)
    cols = offsets[1][:, None] + torch.arange(w, device=X.device)           # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    padded = torch.nn.functional.pad(X, (pad, pad, pad, pad))
    index = torch.arange(n, device=X.device)[:, None, None, None]
    return padded[index, torch.arange(c, device=X.device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
