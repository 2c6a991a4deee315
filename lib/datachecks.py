"""Training data, checked before any step: alone (:func:`unpack`) and against the models
that will train on them (:func:`probe_model`: dtype, device, features, label range).

Bad data are refused here with a message naming them, so that inside the training loop
(:mod:`lib.train`) a non-finite loss can only mean divergence.
"""

import torch

from lib import checks
from lib.stack import Stack


def unpack(data, name: str = "data"):
    """``(X, y)`` of a ``lib.data.Dataset`` or an ``(X, y)`` pair, checked.

    X: finite floating (n, ...) with n >= 1; y: (n,) integer labels, or real targets
    (n, ...) of X's dtype; both on one device.
    """
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise TypeError(f"{name} must be a lib.data.Dataset or an (X, y) pair, got "
                        f"{type(data).__name__}")
    X = checks.tensor(f"{name}.X", X, ndim=(2, 3, 4, 5))
    y = checks.tensor(f"{name}.y", y, floating=None, ndim=(1, 2))
    checks.same_length(**{f"{name}.X": X, f"{name}.y": y})
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name}.y must hold integer labels or real targets, got {y.dtype}")
    if not torch.is_floating_point(y) and y.ndim != 1:
        raise ValueError(f"{name}.y must be (n,) labels, got shape {tuple(y.shape)}")
    if torch.is_floating_point(y) and y.dtype != X.dtype:
        raise TypeError(f"{name}.y is {y.dtype} but {name}.X is {X.dtype}: targets and inputs "
                        f"must share a dtype")
    if X.device != y.device:
        raise ValueError(f"{name}.X is on {X.device} but {name}.y on {y.device}")
    return X, y


def probe_model(stack: Stack, X: torch.Tensor, y: torch.Tensor, name: str = "data"):
    """The first model's outputs on (at most) two rows of X, once (X, y) are known to fit it.

    A ValueError/TypeError naming ``name`` unless the stack's models can train on (X, y):
    same dtype and device, a forward pass runs, integer labels in range of the outputs.
    ``stack``: a :class:`lib.stack.Stack`; ``X``, ``y``: tensors as :func:`unpack` returns.
    The probe runs on copies of the buffers and leaves the random state as it was.
    """
    checks.instance("stack", stack, Stack, made_by="stack.from_models")
    name = checks.string("name", name)
    X = checks.tensor(f"{name}.X", X, finite=False)
    y = checks.tensor(f"{name}.y", y, floating=None, finite=False)
    p = next(iter(stack.params.values()))
    if X.dtype != p.dtype:
        raise TypeError(f"{name}.X is {X.dtype} but the model's parameters are {p.dtype}: "
                        f"convert one (e.g. model.double() or X.float())")
    if X.device != p.device:
        raise ValueError(f"{name}.X is on {X.device} but the model on {p.device}")
    out = _forward(stack, X, name)
    if not torch.is_floating_point(y) and out.ndim == 2:
        checks.labels(f"{name}.y", y, out.shape[-1])
    return out


def _forward(stack: Stack, X: torch.Tensor, name: str) -> torch.Tensor:
    """The first model's outputs on X[:2], or a ValueError saying what the model expects."""
    m = min(len(X), 2)
    params = {n: v[0].detach() for n, v in stack.params.items()}
    buffers = {n: b[0].clone() for n, b in stack.buffers.items()}  # the probe updates copies
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            return stack(params, buffers, X[:m])
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        raise ValueError(f"{name}.X of shape {tuple(X.shape)} does not fit the model"
                         f"{_expects(stack.template)}: {err}") from None


def _expects(template) -> str:
    first = next((mod for mod in template.modules()
                  if isinstance(mod, (torch.nn.Linear, torch.nn.modules.conv._ConvNd))), None)
    if isinstance(first, torch.nn.Linear):
        return f" (its first linear layer takes {first.in_features} features per example)"
    return f" (its first convolution takes {first.in_channels} channels)" if first else ""
