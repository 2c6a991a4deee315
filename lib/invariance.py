"""Scale invariance: a loss that cannot see the length of a network's weights in group ``w``.

A network whose parameter group ``w`` (see ``groups()``) feeds only normalisation layers
has F(cw) = F(w) for every c > 0, hence c ∇F(cw) = ∇F(w) and ⟨w, ∇F(w)⟩ = 0.
:func:`scale_invariance` measures all three on a real network and data; the checks
of a (model, data) pair and the loss-and-gradient evaluation it rests on are shared with
the chapters that build on the property (auto rate-tuning, exponential learning rates).

All tensors of group ``w`` are treated as ONE vector w: scaling every normalised layer by
the same c leaves the loss unchanged, so ‖w‖² is the group's total squared norm.
"""

import numpy as np
import torch
from torch.func import functional_call

from lib import checks, datachecks, stack, train


def check_data(data, forward=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` of a classification data set, a ``lib.data.Dataset`` or an ``(X, y)`` pair.

    Checked as the training loop checks data (:func:`lib.datachecks.unpack`), and further:
    X is (N, features) or images (N, C, H, W) and y holds N integer labels >= 0. With
    ``forward`` (x ↦ the network's outputs on a few examples, its state left alone), data
    the network cannot read or labels beyond its outputs are refused too.
    """
    X, y = datachecks.unpack(data)
    if X.ndim > 4:
        raise ValueError(f"data.X must be (N, features) or images (N, C, H, W), got shape "
                         f"{tuple(X.shape)}")
    if torch.is_floating_point(y):
        raise TypeError(f"data.y must hold integer class labels, got {y.dtype} targets")
    checks.labels("data.y", y, n_classes=int(y.max()) + 1)  # refuses negative labels
    if forward is not None:
        _fits(checks.function("forward", forward), X, y)
    return X, y


def _fits(forward, X, y, x_name="data", y_name="data's labels") -> None:
    try:
        with torch.no_grad():
            out = forward(X[:2])
    except RuntimeError as err:  # wrong width, dtype or device: torch's words, our name
        raise ValueError(f"{x_name} of shape {tuple(X.shape)} and dtype {X.dtype} does not "
                         f"fit the model: {err}") from None
    if int(y.max()) >= out.shape[-1]:
        raise ValueError(f"{y_name} go up to {int(y.max())} but the model has "
                         f"{out.shape[-1]} outputs")


def group_names(model) -> tuple[list, list]:
    """The parameter names of groups ``w`` and ``g`` of ``model``: a ``torch.nn.Module`` with
    finite parameters and a non-empty scale-invariant group ``w`` (``g`` may be empty)."""
    checks.instance("model", model, torch.nn.Module)
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise ValueError("model has non-finite parameters (NaN or inf)")
    names = stack.group_names(model)
    if not names.get("w"):
        raise ValueError("model has no scale-invariant weights (empty group 'w')")
    return names["w"], names.get("g", [])


def check_model_data(model, data, loss="cross_entropy") -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` of ``data`` once ``model`` (see :func:`group_names`), ``data`` (see
    :func:`check_data`, read by the model) and ``loss`` (one of ``train.LOSSES``) pass."""
    group_names(model)
    checks.choice("loss", checks.string("loss", loss), train.LOSSES)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    params = dict(model.named_parameters())
    return check_data(data, lambda x: functional_call(model, (params, buffers), (x,)))


def loss_and_grads(model, params, X, y, loss="cross_entropy"):
    """The loss of ``model`` at ``params`` on (X, y) and its gradients, by parameter name.

    Train mode; the model's own parameters and buffers are not touched. ``params``: a
    tensor for every parameter name of ``model``; ``X`` (N, ...) a finite floating tensor
    the model reads and ``y`` (N,) integer labels within its outputs; ``loss``: one of
    ``train.LOSSES``.
    Returns (the loss, a 0-d tensor; a dict name → gradient).
    """
    checks.instance("model", model, torch.nn.Module)
    checks.mapping_keys("params", params, [n for n, _ in model.named_parameters()])
    for n, p in params.items():  # a diverged iterate may hold NaN: its loss is NaN
        checks.tensor(f"params[{n!r}]", p, finite=False)
    X = checks.tensor("X", X, ndim=(2, 3, 4))
    y = checks.tensor("y", y, ndim=1, floating=False)
    checks.same_length(X=X, y=y)
    checks.labels("y", y, n_classes=max(int(y.max()) + 1, 1))
    checks.choice("loss", checks.string("loss", loss), train.LOSSES)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    _fits(lambda x: functional_call(model, (params, buffers), (x,)), X, y, "X", "y's labels")
    return _loss_and_grads(model, params, X, y, loss)


def _loss_and_grads(model, params, X, y, loss):
    leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    with torch.enable_grad():
        out = functional_call(model, (leaves, buffers), (X,))
        value = train.loss_and_accuracy(out, y, loss)[0]
        grads = torch.autograd.grad(value, list(leaves.values()))
    return value.detach(), dict(zip(leaves, grads))


def _sq(tensors) -> torch.Tensor:
    return sum(t.pow(2).sum() for t in tensors)


def scale_invariance(model, data, scales, loss="cross_entropy") -> dict:
    """How the loss and gradient change when every weight of group ``w`` is multiplied by c.

    Returns arrays over ``scales``: ``loss_gap`` |F(cw) − F(w)|/|F(w)|, ``grad_gap``
    ‖c ∇F(cw) − ∇F(w)‖/‖∇F(w)‖ and ``cosine`` ⟨cw, ∇F(cw)⟩/(‖cw‖ ‖∇F(cw)‖).
    For an exactly scale-invariant loss all three vanish.
    ``model``: a module with a non-empty group ``w`` (see :func:`group_names`);
    ``data``: a ``Dataset`` or (X, y) it reads; ``scales``: a 1-D list of numbers > 0;
    ``loss``: one of ``train.LOSSES``.
    """
    scales = checks.positive_array("scales", scales, ndim=1)
    X, y = check_model_data(model, data, loss)
    w, _ = group_names(model)
    base = dict(model.named_parameters())
    f0, g0 = _loss_and_grads(model, base, X, y, loss)
    out = {"scale": scales, "loss_gap": [], "grad_gap": [], "cosine": []}
    for c in scales:
        scaled = {n: p * c if n in w else p for n, p in base.items()}
        f, g = _loss_and_grads(model, scaled, X, y, loss)
        gap = _sq([c * g[n] - g0[n] for n in w]).sqrt() / _sq([g0[n] for n in w]).sqrt()
        dot = sum((scaled[n].detach() * g[n]).sum() for n in w)
        norms = _sq([scaled[n].detach() for n in w]).sqrt() * _sq([g[n] for n in w]).sqrt()
        out["loss_gap"].append(abs((f - f0) / f0).item())
        out["grad_gap"].append(gap.item())
        out["cosine"].append((dot / norms).item())
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}
