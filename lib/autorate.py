"""Auto rate-tuning by batch normalisation (Arora, Li & Lyu 2019): the chapter's computations.

Scale-invariance checks on a real network, gradient descent on ``w`` beside its adaptive
form on the sphere (Theorem 2.5), gradient-norm summaries for the convergence theorems,
an SGD runner that measures full-batch gradients, and the computations behind the
chapter's sliders. Every training run goes through :mod:`lib.train` or :mod:`lib.sweep`.

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

from lib import cache, models, stack, sweep, train


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


def rate_sweep(data, lr_w, lr_g, steps, width, norm="bn_smooth", seeds=(0,), depth=2,
               weight_decay_w=(0.0,), batch_size=None, cache=None) -> sweep.SweepResult:
    """Train :func:`make_mlp` networks for every (lr_w, lr_g, weight_decay_w, seed).

    A thin layer over :func:`lib.sweep.train_grid` (batched over the grid, cached under
    ``cache``); metrics have the axes (lr_w, lr_g, weight_decay_w, seed, T, ...).
    """
    X, y = _xy(data)
    grid = sweep.Grid(lr_w=np.atleast_1d(lr_w), lr_g=np.atleast_1d(lr_g),
                      weight_decay_w=np.atleast_1d(weight_decay_w), seed=list(seeds),
                      width=[width], depth=[depth], norm=[norm], n_in=[X[0].numel()],
                      n_out=[int(y.max()) + 1])
    config = train.TrainConfig(steps=steps, batch_size=batch_size,
                               lr={"w": 1.0, "g": 1.0}, weight_decay={"w": 0.0, "g": 0.0})
    res = sweep.train_grid(make_mlp, data, config, grid, mode="batched", cache=cache)
    keep = (slice(None),) * 4 + (0,) * 5  # drop the one-value model axes
    metrics = {k: v[keep] for k, v in res.metrics.items()}
    small = sweep.Grid(**{k: grid.axes[k] for k in grid.names[:4]})
    return sweep.SweepResult(small, res.step, metrics, res.diverged_at[keep])


def full_gradients(stk: stack.Stack, data, loss="cross_entropy"):
    """Full-batch loss and ‖∇L(V; g)‖² of every model of a stack: two (K,) arrays."""
    X, y = _xy(data)
    k = stk.size
    fn = lambda p, b, xb, yb: train.loss_and_accuracy(stk(p, b, xb), yb, loss)  # noqa: E731
    buffers = {n: b.clone() for n, b in stk.buffers.items()}  # leave the running stats alone
    grads, (losses, _) = train.batched_grad(fn, k)(stk.params, buffers, X.expand(k, *X.shape),
                                                   y.expand(k, *y.shape))
    per = lambda ts: sum(t.detach().flatten(1).pow(2).sum(1) for t in ts)  # noqa: E731
    w, g = stk.groups["w"], stk.groups.get("g", [])
    total = per(stk.params[n] for n in w) * per(grads[n] for n in w) + per(grads[n] for n in g)
    return losses.detach().cpu().numpy(), total.cpu().numpy()


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


def sgd_convergence(data, lr_w, alpha, lr_g, steps, batch_size, seeds, width, depth=2,
                    n_evals=25, cache_name=None) -> dict:
    """SGD with Theorem 4.2's schedules, measuring the full-batch gradient along the way.

    Trains one stack of :func:`make_mlp` networks, one per (lr_w, alpha, seed), through
    :func:`lib.train.fit`, pausing at :func:`eval_steps` to measure every model's full-batch
    loss and ‖∇L(V; g)‖² (each stretch between pauses reshuffles the data afresh).
    Returns ``step`` (E,), and ``loss`` and ``grad_sq`` (full batch, at those steps) of
    shape (len(lr_w), len(alpha), len(seeds), E). Cached under ``cache_name`` if given.
    """
    X, y = _xy(data)
    _check_steps(batch_size, "batch_size")
    if batch_size > X.shape[0]:
        raise ValueError(f"batch_size must be at most the {X.shape[0]} examples, "
                         f"got {batch_size}")
    at = eval_steps(steps, n_evals)
    points = [(float(a), float(b), int(s)) for a in np.atleast_1d(lr_w)
              for b in np.atleast_1d(alpha) for s in seeds]
    key = {"points": points, "lr_g": lr_g, "at": at, "batch_size": batch_size,
           "width": width, "depth": depth, "data": sweep.data_fingerprint(data)}

    def run(_key):
        scheds = [sgd_schedules(b, steps) for _, b, _ in points]
        nets = [make_mlp(seed=s, width=width, depth=depth, n_in=X[0].numel(),
                         n_out=int(y.max()) + 1) for _, _, s in points]
        stk = stack.from_models(nets, device=X.device)
        results = [full_gradients(stk, data)]
        for start, stop in zip(at[:-1], at[1:]):
            configs = [train.TrainConfig(
                steps=int(stop - start), batch_size=batch_size, lr={"w": a, "g": float(lr_g)},
                schedule={g: sc[g][start:stop] for g in sc}, seed=s * 100_003 + int(start))
                for (a, _, s), sc in zip(points, scheds)]
            train.fit(stk, data, configs, bar=False)
            results.append(full_gradients(stk, data))
        return tuple(np.stack(r, -1) for r in zip(*results))

    loss, grad_sq = cache.memoize(cache_name, key, run) if cache_name else run(None)
    shape = (np.size(lr_w), np.size(alpha), len(seeds), len(at))
    return {"step": at, "loss": loss.reshape(shape), "grad_sq": grad_sq.reshape(shape)}


def _shape(data, width):
    X, y = _xy(data)
    return X.device, dict(width=width, n_in=X[0].numel(), n_out=int(y.max()) + 1)


def _curves(hists, steps):
    """(K, steps+1) arrays from K histories, NaN after a divergence."""
    pad = lambda a: np.r_[a, np.full(steps + 1 - len(a), np.nan)]  # noqa: E731
    norm_sq = np.stack([pad(h.weight_norm_sq["w"].sum(1)) for h in hists])
    return {"loss": np.stack([pad(h.loss) for h in hists]), "norm_sq": norm_sq,
            "eff_lr": np.stack([pad(h.lr["w"]) for h in hists]) / norm_sq}


def rate_curves(data, eta_w, eta_g, steps, width) -> dict:
    """Full-batch GD for every η_w in ``eta_w`` (and one η_g), on the normalised network
    and on the same network without normalisation, each set trained as one stack.

    Returns ``step`` (T+1,), ``loss_bn``, ``loss_plain``, and ``norm_sq`` (‖w_t‖²) and
    ``eff_lr`` (η_w/‖w_t‖²) of the normalised network, each (len(eta_w), T+1).
    """
    etas = np.atleast_1d(np.asarray(eta_w, dtype=float))
    device, shape = _shape(data, width)
    configs = [train.TrainConfig(steps=steps, lr={"w": e, "g": float(eta_g)}) for e in etas]
    out = {"step": np.arange(steps + 1)}
    for norm, tag in (("bn_smooth", "bn"), ("none", "plain")):
        nets = stack.from_models([make_mlp(norm=norm, **shape) for _ in etas], device=device)
        curves = _curves(train.fit(nets, data, configs, bar=False), steps)
        out[f"loss_{tag}"] = curves["loss"]
        if tag == "bn":
            out.update(norm_sq=curves["norm_sq"], eff_lr=curves["eff_lr"])
    return out


def member(family: dict, values, value) -> dict:
    """The part of ``family`` for ``value``: its arrays are indexed first by ``values``
    (``step`` is shared)."""
    values = list(values)
    if value not in values:
        raise ValueError(f"{value!r} is not one of the family's values {values}")
    i = values.index(value)
    return {k: v if k == "step" else v[i] for k, v in family.items()}


def scale_pair(data, g0, lam, eta_w, eta_g, steps, width, batch_size) -> dict:
    """For every g₀ in ``g0``, two real SGD runs that theory says are the same:
    (initial scale g₀, η_w, λ) and (initial scale 1, η_w/g₀², λg₀²), on the same batches.

    All runs are trained as one stack. Returns ``step`` (T+1,), and ``loss``, ``norm_sq``
    (‖w_t‖²) and ``eff_lr`` (η_w,t/‖w_t‖²), each (len(g0), 2, T+1).
    """
    g0 = np.atleast_1d(np.asarray(g0, dtype=float))
    if g0.ndim != 1 or not np.all(g0 > 0):
        raise ValueError(f"g0 must be one or more numbers > 0, got {g0}")
    _check_positive(eta_w, "eta_w")
    if not (isinstance(lam, (int, float, np.number)) and 0 <= lam < 1 / eta_w):
        raise ValueError(f"lam must be in [0, 1/eta_w), got {lam!r}")
    device, shape = _shape(data, width)
    nets = [make_mlp(init_scale=r, **shape) for r in g0] + [make_mlp(**shape) for _ in g0]
    pairs = [(eta_w, lam)] * len(g0) + [(eta_w / r**2, lam * r**2) for r in g0]
    configs = [train.TrainConfig(steps=steps, batch_size=batch_size,
                                 lr={"w": float(lr), "g": float(eta_g)},
                                 weight_decay={"w": float(wd), "g": 0.0}) for lr, wd in pairs]
    hists = train.fit(stack.from_models(nets, device=device), data, configs, bar=False)
    curves = _curves(hists, steps)
    out = {k: v.reshape(2, len(g0), steps + 1).swapaxes(0, 1) for k, v in curves.items()}
    return {"step": np.arange(steps + 1), **out}
