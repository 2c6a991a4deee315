"""Auto rate-tuning by batch normalisation: the chapter's training experiments.

Sweeps of full-batch gradient descent over learning rates (sections 2 and 4), stochastic
gradient descent with Theorem 4.2's schedules measured against the gradient of the
objective SGD actually minimises (section 5), and the computations behind the chapter's
sliders. Built on :mod:`lib.autorate`; every run goes through :mod:`lib.train` or
:mod:`lib.sweep`.
"""

import numpy as np
import torch

from lib import cache, stack, sweep, train
from lib.autorate import (_check_positive, _check_steps, _xy, eval_steps, make_mlp,
                          sgd_schedules)


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


def random_batches(n: int, batch_size: int, n_batches: int, seed: int = 0) -> torch.Tensor:
    """(n_batches, batch_size) indices: independent mini-batches, each a uniformly random
    set of ``batch_size`` distinct examples out of ``n`` (as every batch of SGD is)."""
    _check_steps(n, "n"), _check_steps(n_batches, "n_batches")
    _check_steps(batch_size, "batch_size")
    if batch_size > n:
        raise ValueError(f"batch_size must be at most the {n} examples, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=gen)[:batch_size] for _ in range(n_batches)])


def _unit_norms(weight: torch.Tensor) -> torch.Tensor:
    """‖w_k‖ of every output unit k of stacked weights (K, out, ...), shaped (K, 1, out, 1, ...)
    to scale per-batch gradients (K, M, out, ...)."""
    norms = weight.flatten(2).norm(dim=-1)
    return norms.reshape(norms.shape[0], 1, norms.shape[1], *[1] * (weight.dim() - 2))


CHUNK_ELEMENTS = 2**25  # gradient entries held at once (K models × batches × parameters)


def _unit_gradients(stk: stack.Stack, X, y, batches, loss):
    """Every model's mini-batch gradients at (V; g) for ``batches`` (c, B): (K, c, P) and
    the mini-batch losses (K, c). Every model meets every batch: a stack of K·c copies."""
    k, c = stk.size, batches.shape[0]
    params = {n: p.repeat_interleave(c, 0) for n, p in stk.params.items()}
    buffers = {n: b.repeat_interleave(c, 0) for n, b in stk.buffers.items()}
    xb = X[batches].expand(k, *batches.shape, *X.shape[1:]).flatten(0, 1)
    yb = y[batches].expand(k, *batches.shape).flatten(0, 1)
    fn = lambda p, b, x, t: train.loss_and_accuracy(stk(p, b, x), t, loss)  # noqa: E731
    grads, (losses, _) = train.batched_grad(fn, k * c)(params, buffers, xb, yb)
    parts = [grads[n].unflatten(0, (k, c)) * _unit_norms(stk.params[n]) for n in stk.groups["w"]]
    parts += [grads[n].unflatten(0, (k, c)) for n in stk.groups.get("g", [])]
    return torch.cat([t.flatten(2) for t in parts], -1), losses.unflatten(0, (k, c))


def expected_gradients(stk: stack.Stack, data, batches, loss="cross_entropy") -> dict:
    """The objective SGD minimises, L = E_B F_B over mini-batches B, and its gradient, for
    every model of a stack, estimated from the mini-batches ``batches`` (M, B).

    With batch normalisation F_B depends on the whole batch (its statistics), so L is not
    the full-batch loss: its gradient is the mean of the mini-batch gradients g_1..g_M.
    The gradient is taken at the normalised point (V; g) of Theorem 4.2, where every
    output unit w_k of a weight in group ``w`` (a row of a matrix) is scaled to unit
    length, so its part is ‖w_k‖ ∇_{w_k} F. The batches are processed in chunks of at most
    :data:`CHUNK_ELEMENTS` gradient entries, so memory does not grow with M.

    Returns arrays over the K models: ``loss`` (mean of F_B), ``grad_sq`` the unbiased
    estimate (M‖ḡ‖² − mean_i ‖g_i‖²)/(M − 1) of ‖∇L(V; g)‖² (the mean of ⟨g_i, g_j⟩ over
    pairs i ≠ j: it can dip below 0 when the gradient is tiny), and ``norm_sq`` ‖w‖² of
    the whole group. The models' running statistics are left alone.
    """
    X, y = _xy(data)
    batches = torch.as_tensor(batches, device=X.device)
    if batches.ndim != 2 or batches.shape[0] < 2:
        raise ValueError("batches must be (M, B) indices with M >= 2, "
                         f"got shape {tuple(batches.shape)}")
    k, m = stk.size, batches.shape[0]
    n_params = sum(p[0].numel() for p in stk.params.values())
    chunk = max(1, min(m, CHUNK_ELEMENTS // (k * n_params)))
    total, square, loss_sum = 0.0, 0.0, 0.0
    for start in range(0, m, chunk):
        g, losses = _unit_gradients(stk, X, y, batches[start:start + chunk], loss)
        total = total + g.sum(1)                       # Σ_i g_i        (K, P)
        square = square + g.pow(2).sum((1, 2))         # Σ_i ‖g_i‖²     (K,)
        loss_sum = loss_sum + losses.sum(1)
    grad_sq = (total.pow(2).sum(-1) / m - square / m) / (m - 1)
    norm_sq = sum(stk.params[n].flatten(1).pow(2).sum(1) for n in stk.groups["w"])
    as_np = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    return {"loss": as_np(loss_sum / m), "grad_sq": as_np(grad_sq), "norm_sq": as_np(norm_sq)}


def sgd_convergence(data, lr_w, alpha, lr_g, steps, batch_size, seeds, width, depth=2,
                    n_evals=25, n_batches=200, cache_name=None) -> dict:
    """SGD with Theorem 4.2's schedules, measuring the objective's gradient along the way.

    Trains one stack of :func:`make_mlp` networks, one per (lr_w, alpha, seed), through
    :func:`lib.train.fit`, pausing at :func:`eval_steps` to apply
    :func:`expected_gradients` with ``n_batches`` fresh random mini-batches (each stretch
    between pauses reshuffles the data afresh). Returns ``step`` (E,), and ``loss``,
    ``grad_sq`` and ``norm_sq`` (at those steps) of shape (len(lr_w), len(alpha),
    len(seeds), E). Cached under ``cache_name`` if given.
    """
    X, y = _xy(data)
    _check_steps(batch_size, "batch_size")
    if not isinstance(n_batches, (int, np.integer)) or n_batches < 2:
        raise ValueError(f"n_batches must be an integer >= 2, got {n_batches!r}")
    if batch_size > X.shape[0]:
        raise ValueError(f"batch_size must be at most the {X.shape[0]} examples, "
                         f"got {batch_size}")
    at = eval_steps(steps, n_evals)
    points = [(float(a), float(b), int(s)) for a in np.atleast_1d(lr_w)
              for b in np.atleast_1d(alpha) for s in seeds]
    key = {"points": points, "lr_g": lr_g, "at": at, "batch_size": batch_size,
           "width": width, "depth": depth, "n_batches": n_batches,
           "data": sweep.data_fingerprint(data)}

    def measure(stk, t):
        batches = random_batches(X.shape[0], batch_size, n_batches, seed=int(t))
        return expected_gradients(stk, data, batches)

    def run(_key):
        scheds = [sgd_schedules(b, steps) for _, b, _ in points]
        nets = [make_mlp(seed=s, width=width, depth=depth, n_in=X[0].numel(),
                         n_out=int(y.max()) + 1) for _, _, s in points]
        stk = stack.from_models(nets, device=X.device)
        results = [measure(stk, 0)]
        for start, stop in zip(at[:-1], at[1:]):
            length = int(stop - start)
            configs = [train.TrainConfig(
                steps=length, batch_size=batch_size, lr={"w": a, "g": float(lr_g)},
                schedule={g: sc[g][start:stop] for g in sc}, seed=s * 100_003 + int(start),
                log_every=length) for (a, _, s), sc in zip(points, scheds)]
            train.fit(stk, data, configs, bar=False)
            results.append(measure(stk, stop))
        return {k: np.stack([r[k] for r in results], -1) for k in results[0]}

    out = cache.memoize(cache_name, key, run) if cache_name else run(None)
    shape = (np.size(lr_w), np.size(alpha), len(seeds), len(at))
    return {"step": at, **{k: v.reshape(shape) for k, v in out.items()}}


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
