"""Auto rate-tuning by batch normalisation: the chapter's training experiments.

Sweeps of full-batch gradient descent over learning rates (sections 2 and 4), stochastic
gradient descent with Theorem 4.2's schedules measured against the gradient of the
objective SGD actually minimises (section 5), and the computations behind the chapter's
sliders. Built on :mod:`lib.autorate.theory`; every run goes through :mod:`lib.train` or
:mod:`lib.sweep`.
"""

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping

import numpy as np
import torch

from lib import cache, checks, controls, models, stack, sweep, train
from lib.autorate.theory import eval_steps, make_mlp, sgd_schedules
from lib.invariance import check_data


def _values(name: str, values, nonneg: bool = False) -> np.ndarray:
    """One number or a 1-D list of them, finite and > 0 (>= 0 with ``nonneg``), as an array."""
    arr = np.atleast_1d(checks.array(name, values) if nonneg else
                        checks.positive_array(name, values))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a number or a 1-D list of numbers, got shape {arr.shape}")
    if nonneg and np.any(arr < 0):
        raise ValueError(f"{name} must hold numbers >= 0, got min {arr.min():g}")
    return arr


def _seeds(seeds) -> list:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be a list of integer seeds, got {seeds!r}")
    seeds = [checks.seed("seeds", s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    return seeds


def _batch_size(batch_size, n: int):
    """None (full batch) or an integer in [1, n]."""
    return None if batch_size is None else checks.integer("batch_size", batch_size, 1, n)


def _name_or_none(name: str, value):
    return None if value is None else checks.string(name, value)


def _checked(data, width, depth=2, norm="bn_smooth"):
    """(X, y, the make_mlp arguments that fit the data), refusing data its networks can't read."""
    X, y = check_data(data)
    shape = dict(width=width, depth=depth, n_in=X[0].numel(), n_out=int(y.max()) + 1)
    probe = make_mlp(norm=norm, **shape).to(X.device)
    check_data(data, probe)
    return X, y, shape


def rate_sweep(data, eta_w, eta_g, steps, width, norm="bn_smooth", seeds=(0,), depth=2,
               weight_decay=(0.0,), batch_size=None, cache=None) -> sweep.SweepResult:
    """Train :func:`make_mlp` networks for every (η_w, η_g, λ, seed); λ acts on w only.

    A thin layer over :func:`lib.sweep.train_grid` (batched over the grid, cached under
    ``cache``); metrics have the axes (eta_w, eta_g, weight_decay_w, seed, T, ...), NaN
    after a divergence, whose step is in ``diverged_at``. Learning rates > 0 and weight
    decays >= 0 (numbers or 1-D lists), seeds a list of integers, ``batch_size`` None or
    at most the number of examples, ``cache`` None or a name.
    """
    eta_w, eta_g = _values("eta_w", eta_w), _values("eta_g", eta_g)
    weight_decay = _values("weight_decay", weight_decay, nonneg=True)
    seeds, steps = _seeds(seeds), checks.integer("steps", steps)
    X, y, shape = _checked(data, width, depth, norm)
    batch_size, cache = _batch_size(batch_size, X.shape[0]), _name_or_none("cache", cache)
    grid = sweep.Grid(eta_w=eta_w, eta_g=eta_g, weight_decay_w=weight_decay, seed=seeds)
    config = train.TrainConfig(steps=steps, batch_size=batch_size)
    build = functools.partial(make_mlp, norm=norm, **shape)  # the model, bound once
    return sweep.train_grid(build, data, config, grid, mode="batched", cache=cache)


def random_batches(n: int, batch_size: int, n_batches: int, seed: int = 0) -> torch.Tensor:
    """(n_batches, batch_size) indices: independent mini-batches, each a uniformly random
    set of ``batch_size`` distinct examples out of ``n`` (as every batch of SGD is).

    ``n``, ``n_batches`` integers >= 1, ``batch_size`` in [1, n], ``seed`` in [0, 2**63)."""
    n, n_batches = checks.integer("n", n), checks.integer("n_batches", n_batches)
    batch_size, seed = checks.integer("batch_size", batch_size, 1, n), checks.seed("seed", seed)
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


def _stack_data(stk, data, loss):
    """(X, y) of ``data``, checked against the stack ``stk`` (scale-invariant, able to read X)."""
    if not isinstance(stk, stack.Stack):
        raise TypeError(f"stk must be a lib.stack.Stack, got {type(stk).__name__}")
    if not stk.groups.get("w"):
        raise ValueError("stk has no scale-invariant weights (empty group 'w')")
    checks.choice("loss", loss, train.LOSSES)
    first = ({n: p[0] for n, p in stk.params.items()},
             {n: b[0].clone() for n, b in stk.buffers.items()})
    return check_data(data, lambda x: stk(*first, x))


def _batches(batches, n: int) -> torch.Tensor:
    if isinstance(batches, np.ndarray) and batches.dtype.kind in "iu":
        batches = torch.from_numpy(batches)
    batches = checks.tensor("batches", batches, ndim=2, floating=False)
    if batches.shape[0] < 2:
        raise ValueError(f"batches must be (M, B) indices with M >= 2, got shape "
                         f"{tuple(batches.shape)}")
    if int(batches.min()) < 0 or int(batches.max()) >= n:
        raise ValueError(f"batches must index the {n} examples (0..{n - 1}), got "
                         f"{int(batches.min())}..{int(batches.max())}")
    return batches


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
    ``batches``: an integer tensor (or array) of indices into the data, M >= 2 rows.
    """
    X, y = _stack_data(stk, data, loss)
    batches = _batches(batches, X.shape[0]).to(X.device)
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


def sgd_convergence(data, eta_w, alpha, eta_g, steps, batch_size, seeds, width, depth=2,
                    n_evals=25, n_batches=200, cache_name=None) -> dict:
    """SGD with Theorem 4.2's schedules, measuring the objective's gradient along the way.

    Trains one stack of :func:`make_mlp` networks, one per (eta_w, alpha, seed), through
    :func:`lib.train.fit`, pausing at :func:`eval_steps` to apply
    :func:`expected_gradients` with ``n_batches`` fresh random mini-batches (each stretch
    between pauses reshuffles the data afresh). Returns ``step`` (E,), and ``loss``,
    ``grad_sq``, ``norm_sq`` and ``effective_eta`` (η_w,t/‖w_t‖²) at those steps, of
    shape (len(eta_w), len(alpha), len(seeds), E), NaN once a run has diverged, and
    ``diverged_at`` (len(eta_w),
    len(alpha), len(seeds)), the step of a run's first non-finite loss or −1. Cached
    under ``cache_name`` if given. ``eta_w`` > 0 and ``alpha`` in [0, 1/2] are numbers or
    1-D lists, ``batch_size`` at most the number of examples, ``n_batches`` >= 2.
    """
    eta_w, alphas = _values("eta_w", eta_w), _values("alpha", alpha, nonneg=True)
    for a in alphas:
        sgd_schedules(a, 1)  # refuses alpha outside Theorem 4.2's [0, 1/2], by name
    eta_g, seeds = checks.positive("eta_g", eta_g), _seeds(seeds)
    X, y, shape = _checked(data, width, depth)
    plan = _SGDPlan(points=[(float(a), float(b), s) for a in eta_w for b in alphas for s in seeds],
                    eta_g=eta_g, steps=steps, at=eval_steps(steps, n_evals),
                    batch_size=checks.integer("batch_size", batch_size, 1, X.shape[0]),
                    n_batches=checks.integer("n_batches", n_batches, lo=2))
    cache_name = _name_or_none("cache_name", cache_name)
    key = {"points": plan.points, "eta_g": eta_g, "at": plan.at, "batch_size": plan.batch_size,
           "width": width, "depth": depth, "n_batches": plan.n_batches,
           "data": sweep.data_fingerprint(data)}
    run = lambda _key: _sgd_runs(data, functools.partial(make_mlp, **shape), plan)  # noqa: E731
    out = cache.memoize(cache_name, key, run) if cache_name else run(None)
    grid = (len(eta_w), len(alphas), len(seeds))
    res = {k: v.reshape(grid + (len(plan.at),)) for k, v in out.items() if k != "diverged_at"}
    T = plan.at + 1  # η_w,t = η_w (t+1)^(−α) at the measured steps t
    rate = eta_w[:, None, None, None] * (T ** -alphas[:, None])[None, :, None, :]
    return {"step": plan.at, "diverged_at": out["diverged_at"].reshape(grid), **res,
            "effective_eta": models.effective_eta(rate, res["norm_sq"])}


@dataclasses.dataclass(frozen=True)
class _SGDPlan:
    points: list          # (η_w, α, seed) of every network of the stack
    eta_g: float          # η_g, the rate of group g
    steps: int            # SGD steps in all
    at: np.ndarray        # steps where the objective's gradient is measured, 0 and steps included
    batch_size: int       # examples per SGD step
    n_batches: int        # fresh mini-batches per measurement


def _sgd_runs(data, build, plan: _SGDPlan) -> dict:
    """Train one stack of ``build(seed=s)`` for every point of ``plan``, measuring
    :func:`expected_gradients` at ``plan.at``: arrays (K, E) and ``diverged_at`` (K,)."""
    X, _ = check_data(data)
    stk = stack.from_models([build(seed=s) for _, _, s in plan.points], device=X.device)

    def measure(t):
        batches = random_batches(X.shape[0], plan.batch_size, plan.n_batches, seed=int(t))
        return expected_gradients(stk, data, batches)

    scheds = [sgd_schedules(b, plan.steps) for _, b, _ in plan.points]
    results, diverged_at = [measure(0)], np.full(len(plan.points), -1)
    for start, stop in zip(plan.at[:-1], plan.at[1:]):
        new = _sgd_stretch(stk, data, plan, scheds, start, stop)
        diverged_at = np.where(diverged_at < 0, new, diverged_at)  # the first divergence
        results.append(measure(stop))
    return {"diverged_at": diverged_at,
            **{k: np.stack([r[k] for r in results], -1) for k in results[0]}}


def _sgd_stretch(stk, data, plan: _SGDPlan, scheds, start, stop) -> np.ndarray:
    """Train ``stk`` from step ``start`` to ``stop`` (the data reshuffled afresh); returns
    the step of each run's first non-finite loss in this stretch, or −1 (a result)."""
    length = int(stop - start)
    configs = [train.TrainConfig(
        steps=length, batch_size=plan.batch_size,
        eta={"w": a * sc["w"][start:stop], "g": plan.eta_g * sc["g"][start:stop]},
        seed=(s * 100_003 + int(start)) % 2**63, log_every=length)
        for (a, _, s), sc in zip(plan.points, scheds)]
    hists = train.fit(stk, data, configs, bar=False)
    return np.array([start + h.diverged_at if h.diverged else -1 for h in hists])


def _curves(hists, steps):
    """(K, steps+1) arrays from K histories, NaN after a divergence, and ``diverged_at`` (K,)."""
    pad = lambda a: np.r_[a, np.full(steps + 1 - len(a), np.nan)]  # noqa: E731
    norm_sq = [h.weight_norm_sq["w"].sum(1) for h in hists]  # the group's ‖w‖², one vector
    return {"loss": np.stack([pad(h.loss) for h in hists]),
            "norm_sq": np.stack([pad(n) for n in norm_sq]),
            "effective_eta": np.stack([pad(models.effective_eta(h.eta["w"], n))
                                       for h, n in zip(hists, norm_sq)]),
            "diverged_at": np.array([-1 if h.diverged_at is None else h.diverged_at
                                     for h in hists])}


def rate_curves(data, eta_w, eta_g, steps, width) -> dict:
    """Full-batch GD for every η_w in ``eta_w`` (and one η_g), on the normalised network
    and on the same network without normalisation, each set trained as one stack.

    Returns ``step`` (T+1,), ``loss_bn``, ``loss_plain``, and ``norm_sq`` (‖w_t‖²) and
    ``effective_eta`` (η_w/‖w_t‖²) of the normalised network, each (len(eta_w), T+1) and NaN
    after a divergence, and ``diverged_at_bn``, ``diverged_at_plain`` (len(eta_w),): the
    step of the first non-finite loss, or −1. ``eta_w`` > 0 a number or a 1-D list.
    """
    etas, eta_g = _values("eta_w", eta_w), checks.positive("eta_g", eta_g)
    steps = checks.integer("steps", steps)
    X, _, shape = _checked(data, width)
    configs = [train.TrainConfig(steps=steps, eta={"w": e, "g": eta_g}) for e in etas]
    out = {"step": np.arange(steps + 1)}
    for k, (norm, tag) in enumerate((("bn_smooth", "bn"), ("none", "plain"))):
        nets = stack.from_models([make_mlp(norm=norm, **shape) for _ in etas], device=X.device)
        hists = train.fit(nets, data, configs, bar=False,
                          observe=functools.partial(_report_step, k * steps, 2 * steps))
        curves = _curves(hists, steps)
        out[f"loss_{tag}"], out[f"diverged_at_{tag}"] = curves["loss"], curves["diverged_at"]
        if tag == "bn":
            out.update(norm_sq=curves["norm_sq"], effective_eta=curves["effective_eta"])
    return out


def member(family: dict, values, value) -> dict:
    """The part of ``family`` for ``value``: its arrays are indexed first by ``values``
    (``step`` is shared); ``value`` must be one of ``values``."""
    if not isinstance(family, Mapping):
        raise TypeError(f"family must be a dict of arrays, got {type(family).__name__}")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"values must be a list of the family's values, got {values!r}")
    values = list(values)
    wrong = [k for k, v in family.items() if k != "step" and np.shape(v)[:1] != (len(values),)]
    if wrong:
        raise ValueError(f"family's arrays {wrong} are not indexed by the {len(values)} values")
    try:
        i = values.index(value)
    except ValueError:  # also an array, whose comparison is ambiguous
        raise ValueError(f"value must be one of the family's values {values}, "
                         f"got {value!r}") from None
    return {k: v if k == "step" else v[i] for k, v in family.items()}


def scale_pair(data, g0, weight_decay, eta_w, eta_g, steps, width, batch_size) -> dict:
    """For every g₀ in ``g0``, two real SGD runs that theory says are the same:
    (initial scale g₀, η_w, λ) and (initial scale 1, η_w/g₀², λg₀²), on the same batches.

    All runs are trained as one stack. Returns ``step`` (T+1,), and ``loss``, ``norm_sq``
    (‖w_t‖²) and ``effective_eta`` (η_w,t/‖w_t‖²), each (len(g0), 2, T+1) and NaN after a
    divergence, and ``diverged_at`` (len(g0), 2), the step of the first non-finite loss or
    −1. ``g0`` > 0 a number or a 1-D list; 0 <= ``weight_decay`` (λ) < 1/``eta_w``; ``batch_size`` None
    (full batch) or at most the number of examples.
    """
    g0, eta_w = _values("g0", g0), checks.positive("eta_w", eta_w)
    weight_decay = checks.nonnegative("weight_decay", weight_decay)
    eta_g = checks.positive("eta_g", eta_g)
    if weight_decay * eta_w >= 1:
        raise ValueError(f"weight_decay must be < 1/eta_w = {1 / eta_w:g} (else the decay "
                         f"factor 1 − eta_w·weight_decay is not positive), got {weight_decay!r}")
    steps = checks.integer("steps", steps)
    X, _, shape = _checked(data, width)
    batch_size = _batch_size(batch_size, X.shape[0])
    nets = [make_mlp(init_scale=r, **shape) for r in g0] + [make_mlp(**shape) for _ in g0]
    pairs = [(eta_w, weight_decay)] * len(g0) + [(eta_w / r**2, weight_decay * r**2) for r in g0]
    configs = [train.TrainConfig(steps=steps, batch_size=batch_size,
                                 eta={"w": float(eta), "g": eta_g},
                                 weight_decay={"w": float(wd), "g": 0.0}) for eta, wd in pairs]
    hists = train.fit(stack.from_models(nets, device=X.device), data, configs, bar=False,
                      observe=functools.partial(_report_step, 0, steps))
    curves = _curves(hists, steps)
    out = {k: v.reshape(2, len(g0), *v.shape[1:]).swapaxes(0, 1) for k, v in curves.items()}
    return {"step": np.arange(steps + 1), **out}


def _report_step(offset: int, total: int, params, t: int) -> dict:
    """``observe`` that records nothing and tells a live figure's progress bar that
    ``offset + t`` of ``total`` training steps are done (:func:`lib.controls.report`)."""
    controls.report(offset + t, total)
    return {}


@dataclasses.dataclass
class SliderRuns:
    """A slider figure's compute, ``runs(**values) -> dict``, over a family of training
    runs indexed by one slider (``name``), such as :func:`rate_curves` (η_w) or
    :func:`scale_pair` (g₀).

    ``run(values, **others)`` trains every value of the tuple ``values`` of that slider,
    at the other sliders' values, and returns arrays indexed first by ``values`` (``step``
    shared). At a point of the site grid (``name`` in ``grid``, every other slider in its
    own list of ``others``) the whole family of ``grid`` is trained once, as one stack,
    and kept: a build computes every grid point, and one stack costs less than one run per
    point. Anywhere else only the value asked for is trained (a live move off the grid),
    so a move costs one member, not the family. Both give the same curves: the members of
    a stack are trained independently (same start, same batches), only summed in another
    order. The result is :func:`member`'s, a dict with ``step`` and one run's arrays.
    """

    run: Callable    # run(values: tuple, **others) -> dict of arrays indexed by values
    name: str        # the slider whose values index the family
    grid: tuple      # its site-grid values (numbers)
    others: dict     # every other slider's name -> its site-grid values

    def __post_init__(self):
        checks.function("run", self.run)
        self.name = checks.string("name", self.name)
        self.grid = tuple(float(v) for v in _values("grid", self.grid, nonneg=True))
        if not isinstance(self.others, Mapping):
            raise TypeError(f"others must be a dict slider name -> grid values, got "
                            f"{type(self.others).__name__}")
        self.others = {checks.string("others' names", k): tuple(
            float(v) for v in _values(f"others[{k!r}]", g, nonneg=True))
            for k, g in self.others.items()}
        if self.name in self.others:
            raise ValueError(f"others must not list the family's own slider {self.name!r}")
        self._families = {}   # the others' grid values (a tuple) -> the family's arrays

    def __call__(self, **values) -> dict:
        if set(values) != {self.name, *self.others}:
            raise ValueError(f"runs takes the sliders {[self.name, *self.others]} by name, "
                             f"got {sorted(values)}")
        value = checks.nonnegative(self.name, values.pop(self.name))
        others = {k: checks.nonnegative(k, v) for k, v in values.items()}
        point = tuple(_on_grid(self.others[k], v) for k, v in others.items())
        at = _on_grid(self.grid, value)
        if at is None or None in point:   # off the site grid: this member alone
            return member(self.run((value,), **others), [value], value)
        if point not in self._families:
            self._families[point] = self.run(self.grid, **dict(zip(others, point)))
        return member(self._families[point], list(self.grid), at)


def _on_grid(grid: tuple, value: float):
    """The grid value equal to ``value`` up to float formatting (1e-9), or None."""
    return next((g for g in grid if math.isclose(g, value, rel_tol=1e-9, abs_tol=1e-300)), None)
