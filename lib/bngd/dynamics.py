"""Gradient dynamics on noise-free least squares (Cai, Li & Shen 2019).

The problem: inputs x with covariance H, targets y = uᵀx. The loss of weights w is
J₀(w) = ½ E[(y − wᵀx)²] = ½ (w − u)ᵀ H (w − u), minimal (zero) at w = u.
With batch normalisation the prediction is a·wᵀx/σ, σ = √(wᵀHw), and the loss is
J(a, w) = ½ (c − 2a wᵀg/σ + a²) with g = Hu, c = uᵀHu (paper eq. 7).
H is a floating tensor: 1-D eigenvalues >= 0 (meaning diag(H)) or a 2-D symmetric positive
semi-definite matrix; bad input (NaN, a wrong shape, an indefinite H) raises ValueError or
TypeError naming the argument.
Step sizes broadcast, so a whole grid of configurations runs as one batched computation;
a configuration that diverges shows inf/NaN in its own entries only. Two engines run BNGD:
"compiled" (diagonal H, float64, CPU: a Numba-compiled loop that keeps 32 configurations'
state in the L1 cache for all their steps, two threads over blocks) and "torch" (any H,
dtype and device: batched tensor operations, a few passes over memory per step). Plain GD
(:func:`gd`) has the same two engines: its compiled loop runs one configuration at a time
(the "GD on diag(1, κ)" slider's 200 steps × 246 runs: 1 ms against 10–12 ms in torch).
"""

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import torch

from lib import checks

BLOCK = 2048  # configurations per block on the CPU: a block's (n, d) state stays in cache
ENGINES = ("auto", "compiled", "torch")
LANES = 32    # configurations the compiled loop advances together (SIMD over this axis)
LANE_BLOCK = 32 * LANES  # configurations per thread task of the compiled engine


@dataclass(frozen=True)
class GDResult:
    """Trajectory summary of gradient descent on J₀."""

    loss: torch.Tensor  # (steps+1, *batch): J₀(w_k) for k = 0..steps
    w: torch.Tensor     # (*batch, d): final iterate


@dataclass(frozen=True)
class BNGDResult:
    """Trajectory summary of BNGD (iterations (9)–(10)) on J(a, w)."""

    loss: torch.Tensor      # (steps+1, *batch): J(a_k, w_k), k = 0..steps
    eff_step: torch.Tensor  # (steps, *batch): effective step ε̂_k = ε a_k wₖᵀg/σ_k³
    a: torch.Tensor         # (*batch,): final a
    w: torch.Tensor         # (*batch, d): final w
    a_path: torch.Tensor | None = None  # (steps+1, *batch) a_k, with trajectory=True
    w_path: torch.Tensor | None = None  # (steps+1, *batch, d) w_k, with trajectory=True

    @property
    def w_norm(self) -> torch.Tensor:
        """(steps+1, *batch) ‖w_k‖ (needs ``trajectory=True``)."""
        if self.w_path is None:
            raise ValueError("w_norm needs the path: call bngd(..., trajectory=True)")
        return self.w_path.norm(dim=-1)


def as_operator(H, dtype=torch.float64):
    """Return (matvec, d) for H given as eigenvalues (1-D) or a symmetric matrix (2-D).

    H: a floating tensor, finite, positive semi-definite (entries >= 0 for a 1-D H;
    for a matrix, symmetric and with smallest eigenvalue >= 0, both up to round-off).
    """
    H = _spsd("H", H)
    H = H.to(dtype=checks.float_dtype("dtype", dtype))
    if H.ndim == 1:
        return (lambda w: w * H), H.shape[0]
    return (lambda w: w @ H), H.shape[0]


def _spsd(name, H) -> torch.Tensor:
    """H as a checked tensor: (d,) entries >= 0, or (d, d) symmetric PSD up to round-off."""
    H = checks.tensor(name, H, ndim=(1, 2))
    if H.ndim == 2 and H.shape[0] != H.shape[1]:
        raise ValueError(f"{name} must be a 1-D array of eigenvalues or a square matrix, "
                         f"got shape {tuple(H.shape)}")
    top = float(H.abs().max())
    if top == 0:
        raise ValueError(f"{name} must not be zero")
    # round-off of a d-term sum, relative to the largest entry, in H's own precision
    tol = 8 * H.shape[0] * torch.finfo(H.dtype).eps * top
    if H.ndim == 1:
        if float(H.min()) < 0:
            raise ValueError(f"{name} as a 1-D array means diag({name}): all entries must be "
                             f">= 0, got min {float(H.min()):g}")
        return H
    if float((H - H.T).abs().max()) > tol:
        raise ValueError(f"{name} must be symmetric (|{name} − {name}ᵀ| up to round-off), got "
                         f"max |{name} − {name}ᵀ| = {float((H - H.T).abs().max()):g}")
    lam_min = float(torch.linalg.eigvalsh(H.double())[0])
    if lam_min < -tol:
        raise ValueError(f"{name} must be positive semi-definite, got smallest eigenvalue "
                         f"{lam_min:g}")
    return H


def _device(H):
    return H.device if isinstance(H, torch.Tensor) else torch.device("cpu")


def _vector(x, d, name, dtype=None, device=None, batched=True):
    """A finite floating tensor of shape (d,) (or (*batch, d) if ``batched``), as dtype."""
    x = checks.tensor(name, x, ndim=None if batched else 1)
    if x.shape[-1:] != (d,):
        raise ValueError(f"{name} must have last dimension d = {d} (the size of H), got "
                         f"shape {tuple(x.shape)}")
    return x.to(dtype=dtype, device=device)


def _values(name, x, dtype, device=None, positive=False):
    """Numbers (a number, list, array or tensor; broadcast later) as a finite tensor."""
    arr = (checks.positive_array if positive else checks.array)(name, x)
    return torch.as_tensor(arr, dtype=dtype, device=device)


def loss(matvec, u, w):
    """J₀(w) = ½ (w − u)ᵀ H (w − u) over the last dimension; ``matvec(x)`` is H x.

    u: (d,) and w: (*batch, d) finite floating tensors.
    """
    checks.function("matvec", matvec)
    u = checks.tensor("u", u, ndim=1)
    e = _vector(w, u.shape[0], "w") - u
    return _from_error(e, matvec(e))


def _from_error(e, He):
    """J₀ = ½ eᵀHe from the error e = w − u and H e (batched over leading axes)."""
    return 0.5 * (e * He).sum(-1)


def gd(H, u, w0, eps, steps: int, dtype=torch.float64, history: bool = True,
       engine: str = "auto") -> GDResult:
    """Plain gradient descent w ← w − ε H (w − u) for every ε in ``eps`` at once.

    Args:
        H: (d,) eigenvalues >= 0 or (d, d) symmetric PSD matrix (a floating tensor).
        u: (d,) or (*batch, d) true weights.  w0: (d,) or (*batch, d) start (finite
        floating tensors).  eps: step size(s) > 0 (number, list, array or tensor).
    The batch dimensions of u and w0 and the shape of eps broadcast together.
        steps: number of GD steps (an integer >= 0).
        history: keep J₀ of every step; False keeps the last one only (``loss`` (1, *batch)).
        engine: "compiled" (H 1-D, float64, CPU: a Numba loop, one configuration at a time),
        "torch" (any H, dtype, device) or "auto" (compiled where it applies), as for
        :func:`bngd`. Each step computes e = w − u, H e, J₀ = ½ Σᵢ eᵢ(He)ᵢ and w − ε He in
        both; only the order of the sum over i may differ (round-off).
    A diverging ε shows as growing losses (inf/NaN once they overflow), not as an error.
    """
    matvec, d = as_operator(H, dtype)
    dev = _device(H)
    u, w = _vector(u, d, "u", dtype, dev), _vector(w0, d, "w0", dtype, dev)
    eps = _values("eps", eps, dtype, dev, positive=True)
    checks.integer("steps", steps, lo=0)
    checks.boolean("history", history)
    engine = _engine(engine, checks.tensor("H", H), dtype, dev)
    try:
        batch = torch.broadcast_shapes(w.shape[:-1], eps.shape, u.shape[:-1])
    except RuntimeError:
        raise ValueError(f"eps (shape {tuple(eps.shape)}) and the batch shapes of w0 "
                         f"{tuple(w.shape[:-1])} and u {tuple(u.shape[:-1])} must broadcast "
                         f"together") from None
    w = torch.broadcast_to(w, (*batch, d)).clone(memory_format=torch.contiguous_format)
    # one preallocated record: a list of 15 000 small loss tensors kept between the steps'
    # freed temporaries fragmented the heap by up to 0.5 GB (it varied from run to run)
    losses = torch.empty((steps + 1 if history else 1, *batch), dtype=w.dtype, device=dev)
    if engine == "compiled":
        n = math.prod(batch)
        flat_u = u.reshape(1, d) if u.ndim == 1 else torch.broadcast_to(u, (*batch, d)).reshape(n, d)
        w_flat = w.reshape(n, d)          # w is a fresh contiguous copy: the loop runs in it
        _gd_loop(H.to(torch.float64).contiguous().numpy(), flat_u.contiguous().numpy(),
                 torch.broadcast_to(eps, batch).reshape(n).contiguous().numpy(),
                 steps, history, w_flat.numpy(), losses.reshape(-1, n).numpy())
        return GDResult(loss=losses, w=w)
    eps = eps[..., None]
    for k in range(steps + 1):
        # the error e_k = w_k − u and H e_k serve both J₀(w_k) and the step: one matvec
        # per step, not two, with the same numbers
        e = w - u
        grad = matvec(e)
        if history or k == steps:
            losses[k if history else 0] = _from_error(e, grad)
        if k < steps:
            w = w - eps * grad
    return GDResult(loss=losses, w=w)


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _gd_loop(h, U, eps, steps, history, W, loss):  # pragma: no cover (compiled)
    """GD on diag(h) for configurations j = 0..n−1 of W (n, d), in place: per step
    e = w − u, He = e ∘ h, J₀ = ½ Σᵢ eᵢ(He)ᵢ (i in order) into loss (steps+1 or 1, n),
    then w − ε He. U (1 or n, d): one u for all or one per configuration."""
    n, d = W.shape
    shared = U.shape[0] == 1
    e, he = np.empty(d), np.empty(d)
    for j in range(n):
        w, uj, ej = W[j], U[0 if shared else j], eps[j]
        for k in range(steps + 1):
            s = 0.0
            for i in range(d):
                e[i] = w[i] - uj[i]
                he[i] = e[i] * h[i]
                s += e[i] * he[i]
            if history:
                loss[k, j] = 0.5 * s
            elif k == steps:
                loss[0, j] = 0.5 * s
            if k < steps:
                for i in range(d):
                    w[i] = w[i] - ej * he[i]


def bngd(H, u, a0, w0, eps, eps_a, steps: int, dtype=torch.float64,
         trajectory: bool = False, history: bool = True, engine: str = "auto") -> BNGDResult:
    """Batch-normalised GD, iterations (9)–(10) of Cai, Li & Shen, for a grid at once.

        a_{k+1} = a_k + ε_a (wₖᵀg/σ_k − a_k),
        w_{k+1} = w_k + ε (a_k/σ_k) (g − (wₖᵀg/σ_k²) H w_k),   σ_k = √(wₖᵀHw_k).

    Args:
        H: (d,) eigenvalues or (d, d) PSD matrix.  u: (d,) true weights (g = Hu), or
        (*batch, d): one problem per configuration (appendix B's random draws of u).
        a0: finite initial BN gain(s).  w0: (d,) or (*batch, d) initial weights, w0ᵀHw0 > 0
        (H, u, w0: finite floating tensors).
        eps: weight step size(s) ε > 0.  eps_a: gain step size(s) ε_a > 0 (a0, eps, eps_a:
        numbers, lists, arrays or tensors).  steps: number of steps (an integer >= 0).
        trajectory: also return every a_k and w_k (memory: (steps+1)·batch·d numbers).
        history: keep the loss and ε̂ of every step (memory: 2·(steps+1)·batch numbers);
        False keeps the last ones only (``loss`` and ``eff_step`` then have one row, for
        the last step; ``eff_step`` none if steps = 0), for big grids; not with trajectory.
        engine: "compiled" (H 1-D, float64, CPU), "torch" (any H, dtype, device) or
        "auto" (compiled where it applies). Both compute the same float64 iteration;
        their sums run in another order, so they agree to round-off, amplified only
        where the dynamics amplify it.
    a0, eps, eps_a and the batch dimensions of w0 (and u) broadcast to ``batch``; the grid runs
    in cache-sized blocks on the CPU, in parallel threads (one block on a GPU).
    """
    return _run(H, u, a0, w0, eps, eps_a, steps, dtype, trajectory, modified=False,
                history=history, engine=engine)


def mbngd(H, u, w0, eps, steps: int, dtype=torch.float64, trajectory: bool = False,
          history: bool = True, engine: str = "auto") -> BNGDResult:
    """Modified BNGD (appendix B): the gain is set to its optimum a_k = wₖᵀg/σ_k each step.

    Same arguments and result as :func:`bngd` without a0 and eps_a; ``.a`` is wₖᵀg/σ_k.
    """
    return _run(H, u, 1.0, w0, eps, 1.0, steps, dtype, trajectory, modified=True,
                history=history, engine=engine)


def _engine(engine: str, H, dtype, device) -> str:
    """The engine to use: "compiled" needs a 1-D H, float64 and the CPU."""
    checks.choice("engine", engine, ENGINES)
    fits = H.ndim == 1 and dtype == torch.float64 and device.type == "cpu"
    if engine == "compiled" and not fits:
        raise ValueError("engine='compiled' needs H as 1-D eigenvalues, dtype float64 and the "
                         f"CPU, got H of {H.ndim} dimensions, {dtype} on {device}")
    return "compiled" if engine == "auto" and fits else engine


def _run(H, u, a0, w0, eps, eps_a, steps, dtype, trajectory, modified, history=True,
         engine="auto"):
    """:func:`bngd` (or :func:`mbngd` if ``modified``): check, flatten the batch, run it."""
    matvec, d = as_operator(H, dtype)
    dev = _device(H)
    u, w0 = _vector(u, d, "u", dtype, dev), _vector(w0, d, "w0", dtype, dev)
    if not torch.all((w0 * matvec(w0)).sum(-1) > 0):
        raise ValueError("w0 must be nonzero with w0ᵀHw0 > 0 (σ = √(wᵀHw) would be 0)")
    rates = (_values("a0", a0, dtype, dev), _values("eps", eps, dtype, dev, True),
             _values("eps_a", eps_a, dtype, dev, True))
    steps = checks.integer("steps", steps, lo=0)
    checks.boolean("trajectory", trajectory)
    if not checks.boolean("history", history) and trajectory:
        raise ValueError("history=False keeps the last step only: it cannot go with "
                         "trajectory=True")
    engine = _engine(engine, checks.tensor("H", H), dtype, dev)
    batch = _batch_shape(rates, w0, u)
    n = math.prod(batch)
    flat = [torch.broadcast_to(x, batch).reshape(n) for x in rates]   # a0, eps, eps_a: (n,)
    w0 = torch.broadcast_to(w0, (*batch, d)).reshape(n, d)
    if u.ndim > 1:                                  # one problem per configuration
        u = torch.broadcast_to(u, (*batch, d)).reshape(n, d)
    g = matvec(u)                                   # (d,) or (n, d)
    c = (u * g).sum(-1)                             # () or (n,)
    rows = (steps + 1, steps) if history else (1, min(steps, 1))
    out = _Outputs.empty(rows, n, d, dtype, dev, trajectory)
    if engine == "compiled":
        _compiled(H, g, c, flat, w0, steps, out, modified, history)
        return out.result(batch, d)

    def run_block(s):
        gs, cs = (g, c) if u.ndim == 1 else (g[s], c[s])
        _block(matvec, gs, cs, *(x[s] for x in flat), w0[s].clone(), steps, out.part(s),
               modified, history)

    _in_blocks(run_block, n, dev)
    return out.result(batch, d)


def _batch_shape(rates, w0, u) -> torch.Size:
    """The broadcast shape of a0, eps, eps_a (``rates``) and the batch dimensions of w0, u."""
    try:
        return torch.broadcast_shapes(*(x.shape for x in rates), w0.shape[:-1], u.shape[:-1])
    except RuntimeError:
        raise ValueError(f"a0, eps, eps_a and the batch shapes of w0 and u must broadcast "
                         f"together, got {[tuple(x.shape) for x in rates]}, "
                         f"{tuple(w0.shape[:-1])} and {tuple(u.shape[:-1])}") from None


@dataclass(frozen=True)
class _Outputs:
    """Results of n flattened runs, allocated once and filled block by block."""

    loss: torch.Tensor           # (steps+1, n), or (1, n): the last step only
    eff: torch.Tensor            # (steps, n), or (1, n) (none if steps = 0)
    a: torch.Tensor              # (n,) final a
    w: torch.Tensor              # (n, d) final w
    paths: tuple | None          # (a_k (steps+1, n), w_k (steps+1, n, d)) with trajectory

    @classmethod
    def empty(cls, rows, n, d, dtype, device, trajectory) -> "_Outputs":
        """``rows``: (loss rows, ε̂ rows); paths (with ``trajectory``) get loss rows too."""
        new = functools.partial(torch.empty, dtype=dtype, device=device)
        paths = (new(rows[0], n), new(rows[0], n, d)) if trajectory else None
        return cls(new(rows[0], n), new(rows[1], n), new(n), new(n, d), paths)

    def part(self, s: slice) -> tuple:
        """The views of runs ``s``, in the order :func:`_block` writes them."""
        paths = None if self.paths is None else (self.paths[0][:, s], self.paths[1][:, s])
        return self.loss[:, s], self.eff[:, s], self.a[s], self.w[s], paths

    def result(self, batch, d) -> BNGDResult:
        """The BNGDResult, with the flat run axis n reshaped to ``batch``."""
        def shaped(x, extra=()):
            return x.reshape(*x.shape[:-1 - len(extra)], *batch, *extra)
        paths = self.paths
        return BNGDResult(loss=shaped(self.loss), eff_step=shaped(self.eff),
                          a=self.a.reshape(batch), w=self.w.reshape(*batch, d),
                          a_path=None if paths is None else shaped(paths[0]),
                          w_path=None if paths is None else shaped(paths[1], (d,)))


def _in_blocks(run, n: int, device) -> None:
    """``run(s)`` for slices s covering range(n): cache-sized blocks on the CPU, run in
    threads where cores are idle (:func:`_workers`); one block on a GPU."""
    block = BLOCK if device.type == "cpu" else max(n, 1)
    blocks = [slice(lo, min(lo + block, n)) for lo in range(0, n, block)]
    workers = _workers(device, len(blocks))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, blocks))
    else:
        for s in blocks:
            run(s)


def _cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _workers(device, n_blocks: int) -> int:
    """Python threads to run blocks in: the cores torch's own threads leave idle.

    Each block's loop is a long chain of torch ops that release the GIL, so with one
    torch thread (the book's CPU-scale setting) two blocks run on two cores at once,
    with no barrier between threads at every op (slow when the machine is busy).
    """
    if device.type != "cpu" or n_blocks < 2:
        return 1
    cores = _cores()
    return max(1, min(n_blocks, cores // torch.get_num_threads()))


def _block(matvec, g, c, a0, eps, eps_a, w, steps, out, modified, history=True):
    """Run one block of n configurations in place; ``w`` (n, d) is this block's own copy.

    Per step, five (n, d)-sized operations (H w, two inner products, a two-part update in
    place); everything else is (n,)-sized. The loss is formed at the end from the stored
    a_k and wₖᵀg/σ_k, so the loop stays short; that formula cancels, so losses below about
    1e-16·c are round-off. Without ``history``, a_k and wₖᵀg/σ_k live in two rows used in
    turn (the same arithmetic, a fraction of the memory) and only the last step is kept.
    """
    loss_out, eff_out, a_out, w_out, paths = out
    n = w.shape[0]
    a = torch.empty(steps + 1 if history else 2, n, dtype=w.dtype, device=w.device)  # a_k
    q = torch.empty_like(a)                                          # wₖᵀg/σ_k
    a[0] = a0
    for step in range(steps + 1):
        k = step if history else step % 2                          # the row of step
        k1 = step + 1 if history else (step + 1) % 2
        if paths is not None:
            paths[1][k] = w
        Hw = matvec(w)                                             # (n, d)
        p = w @ g if g.ndim == 1 else (w * g).sum(-1)              # wₖᵀg, (n,)
        s2 = torch.bmm(w.unsqueeze(1), Hw.unsqueeze(2)).view(n)    # σ_k², (n,)
        sigma = s2.sqrt()
        torch.div(p, sigma, out=q[k])
        if modified:
            a[k] = q[k]
        if step == steps:
            break
        alpha = eps * a[k] / sigma                                 # ε a_k/σ_k
        beta = alpha * q[k] / sigma                                # ε̂_k = ε a_k wₖᵀg/σ_k³
        eff_out[step if history else 0] = beta
        if not modified:
            torch.add(a[k], eps_a * (q[k] - a[k]), out=a[k1])
        w.addcmul_(beta.unsqueeze(1), Hw, value=-1)
        if g.ndim == 1:
            w.addr_(alpha, g)
        else:                                                      # a g per configuration
            w.addcmul_(alpha.unsqueeze(1), g)
    if not history:
        a, q = a[k:k + 1], q[k:k + 1]                              # the last step's row
    # J = ½(c − 2aq + a²), the same roundings as that expression but in place (no
    # (steps+1, n) temporaries): (aq)·(−2) + c, plus a·a (into q, no longer needed), times ½
    loss_out.copy_(a).mul_(q).mul_(-2).add_(c)
    loss_out.add_(torch.mul(a, a, out=q)).mul_(0.5)
    a_out.copy_(a[-1])
    w_out.copy_(w)
    if paths is not None:
        paths[0].copy_(a)


def _compiled(H, g, c, rates, w0, steps, out, modified, history) -> None:
    """Fill ``out`` with the compiled engine, :data:`LANE_BLOCK` configurations per task,
    tasks on as many threads as there are cores (the loop releases the GIL)."""
    n, d = w0.shape
    arrays = [x.contiguous().numpy() for x in (H.to(torch.float64), g.reshape(-1, d),
                                               c.reshape(-1), *rates, w0)]
    paths = out.paths if out.paths is not None else (torch.empty(0, 0, dtype=torch.float64),
                                                     torch.empty(0, 0, 0, dtype=torch.float64))
    outs = [x.numpy() for x in (out.loss, out.eff, out.a, out.w, *paths)]

    def task(lo):
        _lanes(lo, min(lo + LANE_BLOCK, n), *arrays, steps, modified, history, *outs)

    tasks = range(0, n, LANE_BLOCK)
    cores = _cores()
    if min(cores, len(tasks)) > 1:
        with ThreadPoolExecutor(min(cores, len(tasks))) as pool:
            list(pool.map(task, tasks))
    else:
        for lo in tasks:
            task(lo)


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _lanes(lo, hi, h, G, c, a0, eps, eps_a, W0, steps, modified, history,
           loss, eff, a_out, w_out, a_path, w_path):  # pragma: no cover (compiled)
    """BNGD for configurations lo..hi−1, :data:`LANES` at a time, state held in (d, LANES).

    The same float64 operations as :func:`_block`, per configuration in a fixed order:
    inner products summed over i = 0..d−1, then the step (a lane past hi repeats the last
    configuration and is not written). G (1 or n, d) and c (1 or n,): one problem for all
    or one per configuration. Outputs as in :class:`_Outputs`; empty paths: no trajectory.
    """
    d, L = h.shape[0], LANES
    shared, trajectory = G.shape[0] == 1, w_path.shape[0] > 0
    w, gl = np.empty((d, L)), np.empty((d, L))
    cl, a, e, ea = np.empty(L), np.empty(L), np.empty(L), np.empty(L)
    p, s2, al, be = np.empty(L), np.empty(L), np.empty(L), np.empty(L)
    for base in range(lo, hi, L):
        for l in range(L):
            j = min(base + l, hi - 1)
            jg = 0 if shared else j
            for i in range(d):
                w[i, l], gl[i, l] = W0[j, i], G[jg, i]
            cl[l], a[l], e[l], ea[l] = c[jg], a0[j], eps[j], eps_a[j]
        for step in range(steps + 1):
            row, last = step if history else 0, step == steps
            p[:], s2[:] = 0.0, 0.0
            for i in range(d):                          # wₖᵀg and σ_k² = wₖᵀHw_k
                hi_, wr, gr = h[i], w[i], gl[i]
                for l in range(L):
                    p[l] += gr[l] * wr[l]
                    s2[l] += (hi_ * wr[l]) * wr[l]
            for l in range(L):
                sigma = np.sqrt(s2[l])
                q = p[l] / sigma                        # wₖᵀg/σ_k
                if modified:
                    a[l] = q
                j = base + l
                if j < hi and (history or last):
                    loss[row, j] = 0.5 * ((cl[l] - 2.0 * a[l] * q) + a[l] * a[l])
                if j < hi and trajectory:
                    a_path[row, j] = a[l]
                    for i in range(d):
                        w_path[row, j, i] = w[i, l]
                if not last:
                    al[l] = e[l] * a[l] / sigma         # ε a_k/σ_k
                    be[l] = al[l] * q / sigma           # ε̂_k
                    if j < hi and (history or step == steps - 1):
                        eff[row, j] = be[l]
                    if not modified:
                        a[l] = a[l] + ea[l] * (q - a[l])
            if last:
                break
            for i in range(d):                          # w ← w − ε̂ H w + (ε a/σ) g
                hi_, wr, gr = h[i], w[i], gl[i]
                for l in range(L):
                    wr[l] = (wr[l] - be[l] * (hi_ * wr[l])) + al[l] * gr[l]
        for l in range(min(L, hi - base)):
            a_out[base + l] = a[l]
            for i in range(d):
                w_out[base + l, i] = w[i, l]
