"""The section-3 toy of Li & Arora (2020), where batch norm and weight decay fail together.

A linear classifier w on Gaussian inputs x ~ N(0, I_m) with labels sign(x_1), the logistic
loss of BN(Xw) (batch mean and standard deviation, no gain or bias: scale-invariant in w)
or of Xw, and gradient descent with weight decay: full-batch on a fixed sample
(:func:`toy_gd`) or with a fresh Gaussian batch every step, the setting of the paper's
Theorem 3.1 (:func:`toy_sgd`). NumPy, and Numba for the full-batch loop with BN that the
live slider runs; the gradient is written out by hand and checked against autograd in the
tests.
"""

import numba
import numpy as np

from lib import checks


def toy_data(n: int, m: int, seed: int = 0):
    """Section-3 toy: x ~ N(0, I_m), label y = sign(x_1) ∈ {−1, +1}; X (n, m), y (n,).

    ``n``, ``m``: integers >= 2; ``seed``: an integer seed.
    """
    n, m = checks.integer("n", n, lo=2), checks.integer("m", m, lo=2)
    X = np.random.default_rng(checks.seed("seed", seed)).standard_normal((n, m))
    return X, np.where(X[:, 0] >= 0, 1.0, -1.0)


def toy_error(w) -> np.ndarray:
    """Population error arccos(w_1/‖w‖)/π of the linear classifier sign(wᵀx).

    ``w``: finite (..., m), no zero vector.
    """
    w = checks.array("w", w)
    if w.ndim < 1 or w.shape[-1] == 0:
        raise ValueError(f"w must hold vectors along its last axis, got shape {w.shape}")
    norm = np.linalg.norm(w, axis=-1, keepdims=True)
    if not np.all(norm > 0):
        raise ValueError("w holds a zero vector: it has no direction")
    return np.arccos(np.clip((w / norm)[..., 0], -1, 1)) / np.pi


def _toy(X, y, w, bn, w_name="w"):
    """The toy's arguments checked: X (n, m), y (n,) of ±1, w (m,) nonzero, bn a bool."""
    X, y = checks.array("X", X, ndim=2), checks.array("y", y, ndim=1)
    w, bn = checks.array(w_name, w, ndim=1), checks.boolean("bn", bn)
    checks.same_length(X=X, y=y)
    if not np.all(np.abs(y) == 1):
        raise ValueError("y must hold labels -1 and +1")
    if w.shape[0] != X.shape[1] or not np.any(w):
        raise ValueError(f"{w_name} must be a nonzero vector of {X.shape[1]} weights (one per "
                         f"column of X), got shape {w.shape}")
    if bn and not np.std(X @ w) > 0:
        raise ValueError(f"X and {w_name}: BN needs X @ {w_name} to vary across examples")
    return X, y, w, bn


def toy_gd(X, y, w0, eta: float, weight_decay: float, steps: int, bn: bool = True) -> dict:
    """Full-batch GD on the logistic loss of u = BN(Xw) (bn=True) or u = Xw, plus WD λ.

    BN uses the batch mean and standard deviation, with no gain or bias, so the loss
    is scale-invariant in w. The gradient is written out by hand (checked against
    autograd in the tests). Accepts X, y, w0 as :func:`toy_loss`, η > 0, λ >= 0 with
    ηλ < 1, steps >= 1. Returns w (steps + 1, m), error and norm (steps + 1,), and
    diverged_at (None, or the first step where w is not finite).
    """
    X, y, w, bn = _toy(X, y, w0, bn, "w0")
    eta, weight_decay = checks.positive("eta", eta), checks.nonnegative("weight_decay", weight_decay)
    steps = checks.integer("steps", steps)
    if eta * weight_decay >= 1:
        raise ValueError(f"eta and weight_decay: need ηλ < 1 (else weight decay flips w), "
                         f"got η={eta}, λ={weight_decay}")
    if bn:
        ws = _bn_gd(X, y, w, eta, weight_decay, steps)
    else:
        ws = np.empty((steps + 1, w.size))
        ws[0] = w
        for t in range(steps):
            w = (1 - eta * weight_decay) * w - eta * _grad(X, y, w, bn)
            ws[t + 1] = w
    bad = np.flatnonzero(~np.all(np.isfinite(ws), axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):  # a diverged run has NaN rows
        norm = np.linalg.norm(ws, axis=1)
        error = np.arccos(np.clip(ws[:, 0] / norm, -1, 1)) / np.pi
    return {"w": ws, "error": error, "norm": norm,
            "diverged_at": int(bad[0]) if bad.size else None}


def toy_sgd(w0, eta: float, weight_decay: float, steps: int, batch_size: int = 500,
            seed: int = 0, bn: bool = True) -> dict:
    """SGD with weight decay on the toy as Theorem 3.1 poses it: a fresh batch every step.

    Step t draws ``batch_size`` new inputs x ~ N(0, I_m) (m = len(w0)), labels sign(x_1),
    and takes w ← (1 − ηλ)w − η∇L_batch(w) with the loss of :func:`toy_gd` (BN over the
    batch, or none). ``w0``: nonzero finite (m,), m >= 2; η > 0, λ >= 0 with ηλ < 1; steps,
    batch_size >= 2: integers; seed of the samples. Returns w (steps + 1, m), error and norm
    (steps + 1,), and angle (steps,): the angle between w_t and w_{t+1} in radians.
    """
    w = checks.array("w0", w0, ndim=1)
    if w.size < 2 or not np.any(w):
        raise ValueError(f"w0 must be a nonzero vector of at least 2 weights, got shape {w.shape}")
    eta, weight_decay = checks.positive("eta", eta), checks.nonnegative("weight_decay", weight_decay)
    if eta * weight_decay >= 1:
        raise ValueError(f"eta and weight_decay: need ηλ < 1 (else weight decay flips w), "
                         f"got η={eta}, λ={weight_decay}")
    steps, batch_size = checks.integer("steps", steps), checks.integer("batch_size", batch_size, lo=2)
    rng, bn = np.random.default_rng(checks.seed("seed", seed)), checks.boolean("bn", bn)
    ws = np.empty((steps + 1, w.size))
    ws[0] = w
    for t in range(steps):
        X = rng.standard_normal((batch_size, w.size))
        w = (1 - eta * weight_decay) * w - eta * _grad(X, np.where(X[:, 0] >= 0, 1.0, -1.0), w, bn)
        ws[t + 1] = w
    norm = np.linalg.norm(ws, axis=1)
    cos = np.sum(ws[1:] * ws[:-1], axis=1) / (norm[1:] * norm[:-1])
    return {"w": ws, "error": toy_error(ws), "norm": norm, "angle": np.arccos(np.clip(cos, -1, 1))}


def toy_trajectory(X, y, w0, eta: float, weight_decay: float, steps: int = 1000,
                   every: int = 5) -> dict:
    """Every ``every``-th step of :func:`toy_gd` with BN (the chapter's slider figure).

    Arguments as :func:`toy_gd`; ``every``: an integer >= 1. Returns step, error and norm,
    each (⌈(steps + 1)/every⌉,).
    """
    every = checks.integer("every", every)
    r = toy_gd(X, y, w0, eta=eta, weight_decay=weight_decay, steps=steps)
    return {"step": np.arange(0, steps + 1, every), "error": r["error"][::every],
            "norm": r["norm"][::every]}


def toy_loss(X, y, w, bn: bool = True) -> float:
    """Mean logistic loss ln(1 + exp(−y u)), u = BN(Xw) or Xw (without the WD term).

    ``X``: finite (n, m); ``y``: (n,) of ±1; ``w``: nonzero (m,) (Xw must vary with BN).
    """
    X, y, w, bn = _toy(X, y, w, bn)
    s = X @ w
    u = (s - s.mean()) / s.std() if bn else s
    return float(np.mean(np.logaddexp(0, -y * u)))


def toy_grad(X, y, w, bn: bool = True) -> np.ndarray:
    """Gradient of :func:`toy_loss` with respect to w, (m,); arguments as there."""
    return _grad(*_toy(X, y, w, bn))


def _bn_gd(X, y, w, eta, weight_decay, steps):
    """w_0 .. w_steps of toy_gd with BN, (steps + 1, m): the operations of :func:`_grad`,
    compiled (:func:`_bn_gd_loop`). A step costs about 7 µs instead of the 20-odd NumPy
    calls (24-30 µs) that made the live slider's 1000 steps its slowest part. The sums
    run in another order than NumPy's, so each step differs from :func:`_grad`'s by
    round-off; for ηλ above about 3e-3 the run is chaotic (a 1-ulp change of w0 changes
    it completely), and there the two loops give different runs with the same behaviour
    (the tests compare the map step by step there). Unchecked."""
    ws = np.empty((steps + 1, w.size))
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    _bn_gd_loop(f64(X), f64(y), np.array(w, dtype=np.float64), float(eta),
                float(weight_decay), int(steps), ws)      # w copied: the loop overwrites it
    return ws


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _bn_gd_loop(X, y, w, eta, weight_decay, steps, ws):  # pragma: no cover (compiled)
    """The loop of :func:`_bn_gd`, writing w_t into ``ws[t]``; ``w`` is overwritten."""
    n, m = X.shape
    decay = 1.0 - eta * weight_decay
    c, u, g, grad = np.empty(n), np.empty(n), np.empty(n), np.empty(m)
    ws[0] = w
    for t in range(steps):
        total = 0.0
        for i in range(n):                       # s = X w, and its mean
            acc = 0.0
            for j in range(m):
                acc += X[i, j] * w[j]
            c[i] = acc
            total += acc
        mean, sq = total / n, 0.0
        for i in range(n):                       # centred, and the variance
            c[i] -= mean
            sq += c[i] * c[i]
        sd = np.sqrt(sq / n)
        g_sum, gu_sum = 0.0, 0.0
        for i in range(n):                       # u = BN(s), g = dL/du = -y/(1 + e^{yu})/n
            u[i] = c[i] / sd
            g[i] = -y[i] / (1.0 + np.exp(y[i] * u[i])) / n
            g_sum += g[i]
            gu_sum += g[i] * u[i]
        g_mean, gu_mean = g_sum / n, gu_sum / n
        grad[:] = 0.0
        for i in range(n):                       # X.T @ ds, ds through the mean and std
            ds = (g[i] - g_mean - u[i] * gu_mean) / sd
            for j in range(m):
                grad[j] += X[i, j] * ds
        for j in range(m):
            w[j] = decay * w[j] - eta * grad[j]
        ws[t + 1] = w


def _grad(X, y, w, bn):  # unchecked: toy_gd calls it every step
    s = X @ w
    n = s.size
    if not bn:
        return X.T @ (-y / (1 + np.exp(y * s))) / n
    sd = s.std()
    u = (s - s.mean()) / sd
    g = -y / (1 + np.exp(y * u)) / n                  # dL/du
    ds = (g - g.mean() - u * np.mean(g * u)) / sd     # through the mean and the std
    return X.T @ ds
