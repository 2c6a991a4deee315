"""Gradient dynamics on noise-free least squares (Cai, Li & Shen 2019).

The problem: inputs x with covariance H, targets y = uᵀx. The loss of weights w is
J(w) = ½ E[(y − wᵀx)²] = ½ (w − u)ᵀ H (w − u), minimal (zero) at w = u.
H is given as a 1-D array of eigenvalues (meaning diag(H)) or a 2-D SPD matrix.
Step sizes broadcast, so a whole grid of configurations runs as one batched tensor
computation; a configuration that diverges shows inf/NaN in its own entries only.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GDResult:
    """Trajectory summary of gradient descent on J."""

    loss: torch.Tensor  # (steps+1, *batch): J(w_k) for k = 0..steps
    w: torch.Tensor     # (*batch, d): final iterate


def as_operator(H, dtype=torch.float64):
    """Return (matvec, d) for H given as eigenvalues (1-D) or a symmetric matrix (2-D)."""
    H = torch.as_tensor(H, dtype=dtype)
    if H.ndim == 1:
        if not torch.all(H > 0):
            raise ValueError("H as a 1-D array means diag(H): all entries must be > 0")
        return (lambda w: w * H), H.shape[0]
    if H.ndim == 2 and H.shape[0] == H.shape[1]:
        if not torch.allclose(H, H.T):
            raise ValueError("H must be symmetric")
        return (lambda w: w @ H), H.shape[0]
    raise ValueError(f"H must be a 1-D array of eigenvalues or a square matrix, got shape {tuple(H.shape)}")


def _vector(x, d, name, dtype):
    x = torch.as_tensor(x, dtype=dtype)
    if x.shape[-1:] != (d,):
        raise ValueError(f"{name} must have last dimension d = {d}, got shape {tuple(x.shape)}")
    return x


def _positive(x, name, dtype):
    x = torch.as_tensor(x, dtype=dtype)
    if not torch.all(x > 0):
        raise ValueError(f"{name} must be > 0 (got min {x.min().item():g})")
    return x


def loss(matvec, u, w):
    """J(w) = ½ (w − u)ᵀ H (w − u), over the last dimension."""
    e = w - u
    return 0.5 * (e * matvec(e)).sum(-1)


def gd(H, u, w0, eps, steps: int, dtype=torch.float64) -> GDResult:
    """Plain gradient descent w ← w − ε H (w − u) for every ε in ``eps`` at once.

    Args:
        H: (d,) eigenvalues or (d, d) SPD matrix.
        u: (d,) true weights.  w0: (d,) or (*batch, d) start.
        eps: step size(s), broadcast against w0's batch shape.
        steps: number of GD steps (>= 0).
    """
    matvec, d = as_operator(H, dtype)
    u, w = _vector(u, d, "u", dtype), _vector(w0, d, "w0", dtype)
    eps = _positive(eps, "eps", dtype)
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    w = torch.broadcast_to(w, (*torch.broadcast_shapes(w.shape[:-1], eps.shape), d)).clone()
    eps = eps[..., None]
    losses = [loss(matvec, u, w)]
    for _ in range(steps):
        w = w - eps * matvec(w - u)
        losses.append(loss(matvec, u, w))
    return GDResult(loss=torch.stack(losses), w=w)
