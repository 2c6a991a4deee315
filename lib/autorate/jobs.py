"""The chapter's sweeps at a scale, for ``python -m lib.reproduce autorate``.

The same calls as the chapter's cells (sizes from its first code cell, the rate sweeps
with and without BN, the weight-decay sweep), so that their cache entries are the ones
the chapter asks for. A change to those cells belongs here too; ``tests/test_reproduce.py``
executes the chapter's own cells against the entries these jobs leave.
"""

import functools

import numpy as np

from lib import data, device, scale
from lib.autorate import experiments
from lib.reproduce import Job

ETA_W, ETA_G = np.logspace(-2, 4, 7), 0.1       # the chapter's GD rate grid
WEIGHT_DECAYS = [0.0, 3e-3, 1e-2, 3e-2]         # its weight-decay sweep


def jobs(s: scale.Scale) -> list:
    """The chapter's grid jobs at scale ``s`` (a :class:`lib.scale.Scale`)."""
    if not isinstance(s, scale.Scale):
        raise TypeError(f"s must be a lib.scale.Scale, got {type(s).__name__}")
    N, sizes = s.n_train // 4, dict(steps=s.steps, width=s.width // 2)
    seeds = list(range(s.seeds))
    fmnist = functools.lru_cache(maxsize=1)(
        lambda: data.fashion_mnist(n=N, device=device.pick_device()))
    return [
        Job("autorate-gd-bn", lambda: experiments.rate_sweep(
            fmnist(), ETA_W, ETA_G, **sizes, seeds=seeds, cache="autorate-gd-bn")),
        Job("autorate-gd-plain", lambda: experiments.rate_sweep(
            fmnist(), ETA_W, ETA_G, **sizes, seeds=seeds[:1], norm="none",
            cache="autorate-gd-plain")),
        Job("autorate-wd", lambda: experiments.rate_sweep(
            fmnist(), 1.0, ETA_G, **sizes, seeds=seeds, batch_size=N // 10,
            weight_decay=WEIGHT_DECAYS, cache="autorate-wd")),
    ]
