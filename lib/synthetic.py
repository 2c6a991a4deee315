"""Seeded synthetic problems: Gaussian classification and least squares with a chosen spectrum."""

import math
from dataclasses import dataclass

import numpy as np
import torch

from lib.data import Dataset, _check_common, _check_int, _device


@dataclass(frozen=True, eq=False)
class LeastSquares:
    """A quadratic problem: Hessian with a prescribed spectrum and true weights."""

    H: torch.Tensor  # (d, d) symmetric positive-definite Hessian
    u: torch.Tensor  # (d,) true weight vector


def gaussian_classification(n, d, n_classes=2, seed=0, device=None,
                            dtype=torch.float32, label_noise=0.0) -> Dataset:
    """Gaussian inputs labelled by a random linear teacher: y = argmax(X W).

    Args:
        n: number of examples; d: input dimension; n_classes: >= 2.
        seed: seeds X ~ N(0, I_d), the teacher W ~ N(0, 1)^(d, n_classes) and the noise.
        label_noise: fraction p in [0, 1) of examples whose label is replaced by a class
            drawn uniformly at random (so no classifier fits them all when p > 0).
    Returns: Dataset with X (n, d) and y (n,) int64.
    """
    n, d = _check_int("n", n), _check_int("d", d)
    n_classes = _check_int("n_classes", n_classes, lo=2)
    _check_common(dtype, seed)
    if not (isinstance(label_noise, (int, float)) and 0 <= label_noise < 1):
        raise ValueError(f"label_noise must be a number in [0, 1), got {label_noise!r}")
    g = torch.Generator().manual_seed(seed)
    # float64 on CPU so labels do not depend on dtype or device.
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    W = torch.randn(d, n_classes, generator=g, dtype=torch.float64)
    y = (X @ W).argmax(dim=1)
    if label_noise > 0:
        flip = torch.rand(n, generator=g, dtype=torch.float64) < label_noise
        y[flip] = torch.randint(0, n_classes, (int(flip.sum()),), generator=g)
    device = _device(device)
    return Dataset(X=X.to(device, dtype), y=y.to(device), name="gaussian",
                   classes=tuple(str(k) for k in range(n_classes)))


def log_spectrum(d, kappa) -> torch.Tensor:
    """Eigenvalues 1 .. kappa, log-spaced: (d,) float64 tensor, condition number kappa."""
    d = _check_int("d", d)
    if not (isinstance(kappa, (int, float, np.number)) and math.isfinite(kappa) and kappa >= 1):
        raise ValueError(f"kappa must be a finite number >= 1, got {kappa!r}")
    return torch.logspace(0.0, math.log10(kappa), d, dtype=torch.float64)


def least_squares(spectrum, seed=0, dtype=torch.float64, device=None) -> LeastSquares:
    """Random quadratic problem whose Hessian has exactly the given eigenvalues.

    Args:
        spectrum: (d,) array-like of positive finite eigenvalues of H.
        seed: seeds the eigenbasis Q (Haar, via QR of a Gaussian) and u ~ N(0, I_d).
        dtype, device: of the returned tensors (built in float64 on CPU first).
    Returns: LeastSquares with H = Q diag(spectrum) Q^T (d, d) and u (d,).
    """
    try:
        lam = torch.as_tensor(spectrum, dtype=torch.float64).cpu()
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"spectrum must be a 1-D array of numbers ({e})") from None
    if lam.ndim != 1 or lam.numel() == 0:
        raise ValueError(f"spectrum must be a non-empty 1-D array, got shape {tuple(lam.shape)}")
    if not (torch.isfinite(lam).all() and (lam > 0).all()):
        raise ValueError("spectrum must contain only positive finite eigenvalues")
    _check_common(dtype, seed)
    d = lam.numel()
    g = torch.Generator().manual_seed(seed)
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    Q = Q * torch.where(R.diagonal() < 0, -1.0, 1.0)  # sign fix makes Q Haar-distributed
    H = (Q * lam) @ Q.T
    H = (H + H.T) / 2  # exact symmetry despite rounding
    u = torch.randn(d, generator=g, dtype=torch.float64)
    device = _device(device)
    return LeastSquares(H=H.to(device, dtype), u=u.to(device, dtype))
