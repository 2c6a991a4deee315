"""Seeded synthetic problems: Gaussian classification and least squares with a chosen spectrum."""

import math
from dataclasses import dataclass

import torch

from lib import checks
from lib.data import Dataset
from lib.device import resolve_device


@dataclass(frozen=True, eq=False)
class LeastSquares:
    """A quadratic problem: Hessian with a prescribed spectrum and true weights."""

    H: torch.Tensor  # (d, d) symmetric positive-definite Hessian
    u: torch.Tensor  # (d,) true weight vector

    def __post_init__(self):
        H = checks.tensor("H", self.H, ndim=2)
        checks.tensor("H", H, shape=(H.shape[0], H.shape[0]))
        checks.tensor("u", self.u, shape=(H.shape[0],))


def gaussian_classification(n, d, n_classes=2, seed=0, device=None,
                            dtype=torch.float32, label_noise=0.0) -> Dataset:
    """Gaussian inputs labelled by a random linear teacher: y = argmax(X W).

    Args:
        n: number of examples; d: input dimension (integers >= 1); n_classes: >= 2.
        seed: integer in [0, 2**63); seeds X ~ N(0, I_d), the teacher
            W ~ N(0, 1)^(d, n_classes) and the noise.
        device: an available device, None for lib.device.pick_device(); dtype: floating.
        label_noise: fraction p in [0, 1) of examples whose label is replaced by a class
            drawn uniformly at random (so no classifier fits them all when p > 0).
    Returns: Dataset with X (n, d) and y (n,) int64.
    """
    n, d = checks.integer("n", n), checks.integer("d", d)
    n_classes = checks.integer("n_classes", n_classes, lo=2)
    seed, dtype = checks.seed("seed", seed), checks.float_dtype("dtype", dtype)
    label_noise = checks.fraction("label_noise", label_noise)
    device = resolve_device(device)
    g = torch.Generator().manual_seed(seed)
    # float64 on CPU so labels do not depend on dtype or device.
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    W = torch.randn(d, n_classes, generator=g, dtype=torch.float64)
    y = (X @ W).argmax(dim=1)
    if label_noise > 0:
        flip = torch.rand(n, generator=g, dtype=torch.float64) < label_noise
        y[flip] = torch.randint(0, n_classes, (int(flip.sum()),), generator=g)
    return Dataset(X=X.to(device, dtype), y=y.to(device), name="gaussian",
                   classes=tuple(str(k) for k in range(n_classes)))


def log_spectrum(d, kappa) -> torch.Tensor:
    """Eigenvalues 1 .. kappa, log-spaced: (d,) float64 tensor, condition number kappa.

    ``d`` is an integer >= 1, ``kappa`` a finite number >= 1.
    """
    d, kappa = checks.integer("d", d), checks.number("kappa", kappa, lo=1)
    return torch.logspace(0.0, math.log10(kappa), d, dtype=torch.float64)


def least_squares(spectrum, seed=0, dtype=torch.float64, device=None) -> LeastSquares:
    """Random quadratic problem whose Hessian has exactly the given eigenvalues.

    Args:
        spectrum: (d,) array-like (list, array, CPU tensor) of finite eigenvalues > 0.
        seed: integer in [0, 2**63); seeds the eigenbasis Q (Haar, via QR of a Gaussian)
            and u ~ N(0, I_d).
        dtype, device: of the returned tensors (built in float64 on CPU first).
    Returns: LeastSquares with H = Q diag(spectrum) Q^T (d, d) and u (d,).
    """
    lam = torch.from_numpy(checks.positive_array("spectrum", spectrum, ndim=1))
    seed, dtype = checks.seed("seed", seed), checks.float_dtype("dtype", dtype)
    device = resolve_device(device)
    d = lam.numel()
    g = torch.Generator().manual_seed(seed)
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    Q = Q * torch.where(R.diagonal() < 0, -1.0, 1.0)  # sign fix makes Q Haar-distributed
    H = (Q * lam) @ Q.T
    H = (H + H.T) / 2  # exact symmetry despite rounding
    u = torch.randn(d, generator=g, dtype=torch.float64)
    return LeastSquares(H=H.to(device, dtype), u=u.to(device, dtype))
