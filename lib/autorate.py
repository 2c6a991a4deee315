"""Auto rate-tuning by batch normalisation (Arora, Li & Lyu 2019): the theory's objects.

The chapter's networks, scale-invariance checks on a real network, gradient descent on
``w`` beside its adaptive form on the sphere (Theorem 2.5), the norm identities
(Lemma 2.4, with and without weight decay), gradient-norm summaries and the schedules
of the convergence theorems. The training experiments built on these live in
:mod:`lib.autorate_experiments`; every training run goes through :mod:`lib.train`.

All scale-invariant weights (parameter group ``w``) are treated as ONE vector w: scaling
every normalised layer by the same c > 0 leaves the loss unchanged, so the paper's
results hold for w as a whole, with ‖w‖² the group's total squared norm, v = w/‖w‖ and
the effective learning rate η_w/‖w‖².
"""

import copy
import math

import numpy as np
import torch
from torch.func import functional_call

from lib import models, stack, train


class PlainMLP(models.MLP):
    """The MLP without normalisation, its hidden layers in group ``w`` and the head in ``g``,
    so that η_w and η_g act on the same layers as in the normalised network."""

    def groups(self) -> dict:
        return models.split_groups(self, list(self.hidden.parameters()))


def _check_positive(value, what):
    if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")


def _check_steps(steps, what="steps"):
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"{what} must be a positive integer, got {steps!r}")


def make_mlp(seed=0, width=100, depth=2, norm="bn_smooth", activation="softplus",
             init_scale=1.0, n_in=784, n_out=10) -> torch.nn.Module:
    """A seeded MLP n_in → width (× depth) → n_out, its group ``w`` scaled by ``init_scale``.

    Args:
        seed: initialisation seed (the global RNG is left as it was).
        norm: "bn_smooth" (exactly scale-invariant BN), "bn" or "none" (:class:`PlainMLP`).
        init_scale: g₀, the factor on the initial scale-invariant weights.
    """
    _check_steps(width, "width"), _check_steps(depth, "depth")
    _check_positive(init_scale, "init_scale")
    sizes = (n_in,) + (width,) * depth + (n_out,)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kind = PlainMLP if norm == "none" else models.MLP
        model = kind(sizes, norm=norm, activation=activation)
    with torch.no_grad():
        for p in model.groups()["w"]:
            p.mul_(init_scale)
    return model


def _xy(data):
    X, y = (data.X, data.y) if hasattr(data, "X") else data
    return X, y


def _loss_and_grads(model, params, X, y, loss):
    """Loss and gradients at ``params`` (train mode; the model's buffers are not touched)."""
    leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    with torch.enable_grad():
        out = functional_call(model, (leaves, buffers), (X,))
        value = train.loss_and_accuracy(out, y, loss)[0]
        grads = torch.autograd.grad(value, list(leaves.values()))
    return value.detach(), dict(zip(leaves, grads))


def _group_names(model):
    names = stack.group_names(model)
    if not names.get("w"):
        raise ValueError("the model has no scale-invariant weights (empty group 'w')")
    return names["w"], names.get("g", [])


def _sq(tensors) -> torch.Tensor:
    return sum(t.pow(2).sum() for t in tensors)


def scale_invariance(model, data, scales, loss="cross_entropy") -> dict:
    """How the loss and gradient change when every weight of group ``w`` is multiplied by c.

    Returns arrays over ``scales``: ``loss_gap`` |F(cw) − F(w)|/|F(w)|, ``grad_gap``
    ‖c ∇F(cw) − ∇F(w)‖/‖∇F(w)‖ and ``cosine`` ⟨cw, ∇F(cw)⟩/(‖cw‖ ‖∇F(cw)‖).
    For an exactly scale-invariant loss all three vanish.
    """
    scales = np.asarray(scales, dtype=float)
    if scales.ndim != 1 or scales.size == 0 or not np.all(scales > 0):
        raise ValueError(f"scales must be a non-empty 1-D list of numbers > 0, got {scales}")
    X, y = _xy(data)
    w, _ = _group_names(model)
    base = dict(model.named_parameters())
    f0, g0 = _loss_and_grads(model, base, X, y, loss)
    out = {"scale": scales, "loss_gap": [], "grad_gap": [], "cosine": []}
    for c in scales:
        scaled = {n: p * c if n in w else p for n, p in base.items()}
        f, g = _loss_and_grads(model, scaled, X, y, loss)
        gap = _sq([c * g[n] - g0[n] for n in w]).sqrt() / _sq([g0[n] for n in w]).sqrt()
        dot = sum((scaled[n].detach() * g[n]).sum() for n in w)
        norms = _sq([scaled[n].detach() for n in w]).sqrt() * _sq([g[n] for n in w]).sqrt()
        cos = dot / norms
        out["loss_gap"].append(abs((f - f0) / f0).item())
        out["grad_gap"].append(gap.item())
        out["cosine"].append(cos.item())
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _on_sphere(model, params):
    """(params with group w divided by its norm, ‖w‖²): the point (V; g) and G."""
    w, _ = _group_names(model)
    G = _sq([params[n] for n in w])
    return {n: p / G.sqrt() if n in w else p.detach().clone() for n, p in params.items()}, G


def _sphere_step(model, params, G, eta_w, eta_g, X, y, loss):
    """One step of Theorem 2.5 from (V; g) = ``params`` and G; returns (loss, params, G)."""
    w, g = _group_names(model)
    value, grads = _loss_and_grads(model, params, X, y, loss)
    stepped = {n: params[n] - eta_w / G * grads[n] for n in w}
    norm = _sq(stepped.values()).sqrt()
    new = {n: p / norm for n, p in stepped.items()}
    new.update({n: params[n] - eta_g * grads[n] for n in g})
    return value, new, G + eta_w**2 / G * _sq([grads[n] for n in w])


def _max_gap(a: dict, b: dict) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a)


def sphere_vs_gd(model, data, eta_w, eta_g, steps, loss="cross_entropy") -> dict:
    """Plain GD on w (through :func:`lib.train.train`) beside Theorem 2.5's iteration.

    Returns arrays over t = 0..T: ``loss_gd``, ``loss_sphere``, ``norm_sq`` (‖w_t‖² of GD),
    ``G``, ``path_gap`` (largest difference between the sphere iterate (V_t; g_t) and
    GD's (w_t/‖w_t‖; g_t)) and, over t = 1..T, ``step_gap`` (the same after ONE sphere
    step from GD's own w_{t−1}: the per-step equivalence, free of accumulated round-off).
    ``model`` is left unchanged.
    """
    _check_positive(eta_w, "eta_w"), _check_positive(eta_g, "eta_g"), _check_steps(steps)
    X, y = _xy(data)
    net = copy.deepcopy(model)
    config = train.TrainConfig(steps=1, lr={"w": float(eta_w), "g": float(eta_g)}, loss=loss)
    params, G = _on_sphere(net, dict(net.named_parameters()))
    out = {k: [] for k in ("loss_gd", "loss_sphere", "norm_sq", "G", "path_gap", "step_gap")}
    for t in range(steps + 1):
        gd_point, gd_G = _on_sphere(net, dict(net.named_parameters()))
        out["norm_sq"].append(gd_G.item()), out["G"].append(G.item())
        out["path_gap"].append(_max_gap(gd_point, params))
        if t == steps:
            out["loss_sphere"].append(_loss_and_grads(net, params, X, y, loss)[0].item())
            now = dict(net.named_parameters())
            out["loss_gd"].append(_loss_and_grads(net, now, X, y, loss)[0].item())
            break
        value, params, G = _sphere_step(net, params, G, eta_w, eta_g, X, y, loss)
        _, one, _ = _sphere_step(net, gd_point, gd_G, eta_w, eta_g, X, y, loss)
        hist = train.train(net, data, config, bar=False)
        out["loss_sphere"].append(value.item()), out["loss_gd"].append(hist.loss[0])
        out["step_gap"].append(_max_gap(_on_sphere(net, dict(net.named_parameters()))[0], one))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def intrinsic_grad_sq(record) -> np.ndarray:
    """‖∇L(V_t; g_t)‖² = ‖w_t‖² ‖∇_w L‖² + ‖∇_g L‖² (Lemma 2.2: ∇_v L = ‖w‖ ∇_w L).

    ``record``: a :class:`lib.train.History` or the ``metrics`` of a sweep (arrays with
    ``weight_norm_sq_w`` (..., T, n_tensors), ``grad_norm_sq_w`` and ``grad_norm_sq_g`` (..., T)).
    """
    if isinstance(record, train.History):
        record = {f"{k}_{g}": getattr(record, k)[g] for k in ("weight_norm_sq", "grad_norm_sq")
                  for g in ("w", "g")}
    wsq, gw, gg = (np.asarray(record[k], dtype=float)
                   for k in ("weight_norm_sq_w", "grad_norm_sq_w", "grad_norm_sq_g"))
    if wsq.shape[:-1] != gw.shape or gw.shape != gg.shape:
        raise ValueError(f"shapes do not match: weight norms {wsq.shape} (need (..., T, n)), "
                         f"gradients {gw.shape} and {gg.shape}")
    return wsq.sum(-1) * gw + gg


def running_min(values, axis=-1) -> np.ndarray:
    """min_{t<T} values_t for every T along ``axis`` (a NaN stays NaN from there on)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 0 or values.shape[axis] == 0:
        raise ValueError(f"need at least one value along axis {axis}, got shape {values.shape}")
    return np.minimum.accumulate(values, axis=axis)


def next_norm_sq(norm_sq, grad_sq, lr, weight_decay=0.0) -> np.ndarray:
    """‖w_{t+1}‖² predicted from step t: (1 − ηλ)²‖w_t‖² + η²‖∇_w L‖² (Lemma 2.4 with decay).

    Exact for a scale-invariant w, since ⟨w, ∇_w L⟩ = 0; arguments broadcast.
    """
    if np.any(np.asarray(weight_decay) < 0) or np.any(np.asarray(lr) <= 0):
        raise ValueError("need lr > 0 and weight_decay >= 0")
    shrink = (1 - np.asarray(lr) * np.asarray(weight_decay)) ** 2
    return shrink * np.asarray(norm_sq) + np.asarray(lr) ** 2 * np.asarray(grad_sq)


def constant_gradient_norm_sq(G0, eta, grad_v_sq, steps) -> np.ndarray:
    """G_t, t = 0..steps, from G_{t+1} = G_t + η²‖∇_v L‖²/G_t with ‖∇_v L‖² held fixed."""
    for value, what in ((G0, "G0"), (eta, "eta"), (grad_v_sq, "grad_v_sq")):
        _check_positive(value, what)
    _check_steps(steps)
    G = [float(G0)]
    for _ in range(steps):
        G.append(G[-1] + eta**2 * grad_v_sq / G[-1])
    return np.array(G)


def equilibrium_effective_lr(lr, weight_decay, grad_v_sq) -> np.ndarray:
    """η/‖w‖² at the fixed point of :func:`next_norm_sq` when ‖∇_v L‖² stays at ``grad_v_sq``:
    √(ηλ(2 − ηλ)/‖∇_v L‖²), about √(2ηλ)/‖∇_v L‖ (only the product ηλ enters)."""
    lr, wd, gv = (np.asarray(a, dtype=float) for a in (lr, weight_decay, grad_v_sq))
    if np.any(lr <= 0) or np.any(wd <= 0) or np.any(lr * wd >= 1) or np.any(gv <= 0):
        raise ValueError("need lr > 0, weight_decay > 0, lr·weight_decay < 1, grad_v_sq > 0")
    return np.sqrt(lr * wd * (2 - lr * wd) / gv)


def blew_up(loss, factor=10.0, axis=-1) -> np.ndarray:
    """True where a run's loss became non-finite or rose above ``factor`` × its first value."""
    loss = np.asarray(loss, dtype=float)
    _check_positive(factor, "factor")
    start = np.take(loss, [0], axis=axis)
    bad = ~np.isfinite(loss) | (loss > factor * start)
    return bad.any(axis=axis)


def sgd_schedules(alpha: float, steps: int) -> dict:
    """Theorem 4.2's factors: (t+1)^(−α) for group w and (t+1)^(−1/2) for group g."""
    if not 0 <= alpha <= 0.5:
        raise ValueError(f"alpha must be in [0, 1/2], got {alpha!r}")
    _check_steps(steps)
    t = np.arange(steps, dtype=float)
    return {"w": (t + 1) ** -alpha, "g": (t + 1) ** -0.5}


def eval_steps(steps: int, n_evals: int) -> np.ndarray:
    """About ``n_evals`` log-spaced steps in [0, steps], always including 0 and ``steps``."""
    _check_steps(steps), _check_steps(n_evals, "n_evals")
    return np.unique(np.r_[0, np.round(np.geomspace(1, steps, n_evals)).astype(int)])
