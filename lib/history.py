"""What happened during training: the :class:`History` of a run, and the :class:`Recorder`
the training loop (:mod:`lib.train`) fills for K models at once."""

from dataclasses import dataclass, field

import numpy as np
import torch

from lib import checks, models


@dataclass
class History:
    """What happened during one run; every array is indexed like ``step``."""

    step: np.ndarray                 # (T,) step index t of each record
    loss: np.ndarray                 # (T,) training loss at θ_t (of the batch, for SGD)
    accuracy: np.ndarray             # (T,) training accuracy (NaN for regression)
    eta: dict                        # group -> (T,) learning rate η_t
    grad_norm_sq: dict               # group -> (T,) ‖∇_group L(θ_t)‖² (without weight decay)
    weight_norm_sq: dict             # group -> (T, n_tensors) ‖θ_t‖² of each tensor
    diverged_at: int | None = None   # first step with a non-finite loss (or ‖θ‖², ‖∇L‖²), if any
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(checks.array("step", self.step, ndim=1, nonempty=False))
        for name in ("loss", "accuracy"):
            _per_record(name, getattr(self, name), n)
        for name in ("eta", "grad_norm_sq", "weight_norm_sq", "extra"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict of arrays, got {type(value).__name__}")
            for key, v in value.items():
                _per_record(f"{name}[{key!r}]", v, n)
        if self.diverged_at is not None:
            self.diverged_at = checks.integer("diverged_at", self.diverged_at, lo=0)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def effective_eta(self, group: str = "w") -> np.ndarray:
        """η_t/‖w_t‖² per tensor, (T, n_tensors) (:func:`lib.models.effective_eta`)."""
        checks.choice("group", group, tuple(self.eta))
        return models.effective_eta(self.eta[group][:, None], self.weight_norm_sq[group])


def _per_record(name: str, value, n: int) -> None:
    arr = checks.array(name, value, finite=False, nonempty=False)
    if arr.ndim == 0 or len(arr) != n:
        raise ValueError(f"{name} must have one row per recorded step ({n}), got shape {arr.shape}")


class Recorder:
    """Collects batched (K-model) records on the device; one transfer at the end.

    A model diverges at the first step whose loss is not finite, or whose recorded
    ‖θ‖² or ‖∇L‖² overflow (absurd parameters with a loss that happens to stay finite).
    ``groups``: group -> list of parameter names (a stack's groups); ``k``: models >= 1.
    """

    def __init__(self, groups: dict, k: int):
        if not isinstance(groups, dict):
            raise TypeError(f"groups must be a dict group -> parameter names, got "
                            f"{type(groups).__name__}")
        for g, names in groups.items():
            checks.string("groups", g)
            if isinstance(names, str) or not isinstance(names, (list, tuple)):
                raise TypeError(f"groups[{g!r}] must be a list of parameter names, got "
                                f"{type(names).__name__}")
        self.groups, self.rows = groups, []
        self.diverged_at = np.full(checks.integer("k", k), -1)

    def check(self, t, loss):
        """Mark the models whose loss (K,) at step ``t`` is not finite."""
        self._mark(t, ~torch.isfinite(loss.detach()))

    def _mark(self, t, bad: torch.Tensor):
        bad = bad.cpu().numpy()
        self.diverged_at[bad & (self.diverged_at < 0)] = t

    def all_diverged(self):
        return bool(np.all(self.diverged_at >= 0))

    def record(self, t, loss, acc, etas, params, grads, observed):
        """One record at step ``t``: loss, accuracy, rates, norms and observed values (K, ...)."""
        sq = lambda ts, names: torch.stack([ts[n].detach().flatten(1).pow(2).sum(1) for n in names], 1)  # noqa: E731
        gsq = {g: sq(grads, ns).sum(1) for g, ns in self.groups.items()}    # (K,)
        wsq = {g: sq(params, ns) for g, ns in self.groups.items()}          # (K, n_tensors)
        norms = torch.cat([v.reshape(v.shape[0], -1) for v in (*gsq.values(), *wsq.values())], 1)
        self._mark(t, ~torch.isfinite(norms).all(1))
        self.rows.append((t, loss.detach(), acc.detach(), etas, gsq, wsq,
                          {k: torch.as_tensor(v).detach() for k, v in observed.items()}))

    def histories(self):
        """One :class:`History` per model, cut before the step it diverged at."""
        np_ = lambda ts: torch.stack(ts).cpu().numpy().astype(float)  # noqa: E731  (T, K, ...)
        step = np.array([r[0] for r in self.rows])
        loss, acc = np_([r[1] for r in self.rows]), np_([r[2] for r in self.rows])
        eta = {g: np_([r[3][g] for r in self.rows]) for g in self.groups}
        gsq = {g: np_([r[4][g] for r in self.rows]) for g in self.groups}
        wsq = {g: np_([r[5][g] for r in self.rows]) for g in self.groups}
        extra = {k: np_([r[6][k] for r in self.rows]) for k in self.rows[0][6]} if self.rows else {}
        out = []
        for k, d in enumerate(self.diverged_at):
            keep = step < d if d >= 0 else slice(None)
            out.append(History(step=step[keep], loss=loss[keep, k], accuracy=acc[keep, k],
                               eta={g: v[keep, k] for g, v in eta.items()},
                               grad_norm_sq={g: v[keep, k] for g, v in gsq.items()},
                               weight_norm_sq={g: v[keep, k] for g, v in wsq.items()},
                               diverged_at=int(d) if d >= 0 else None,
                               extra={n: v[keep, k] for n, v in extra.items()}))
        return out
