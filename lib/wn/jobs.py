"""The chapter's sweeps at a scale, for ``python -m lib.reproduce wn``.

The same calls as the chapter's cells (its data and sizes, the α × η regime sweep, the
fair comparison at each α's best step with the best scale α* added, the width sweep), so
that their cache entries are the ones the chapter asks for; ``tests/test_reproduce.py``
executes the chapter's own cells against the entries these jobs leave.
"""

import functools

from lib import device, scale
from lib.reproduce import Job
from lib.wn import experiments


def jobs(s: scale.Scale) -> list:
    """The chapter's grid jobs at scale ``s`` (a :class:`lib.scale.Scale`)."""
    if not isinstance(s, scale.Scale):
        raise TypeError(f"s must be a lib.scale.Scale, got {type(s).__name__}")
    sz = experiments.sizes(s)

    @functools.lru_cache(maxsize=1)
    def points():
        on = experiments.float64_device(device.pick_device())
        return experiments.unit_sphere_data(sz.n, sz.d, seed=0, device=on)

    def tuned():
        X, y = points()
        a_star, _ = experiments.best_scale(X)
        return experiments.tuned_runs(X, y, sz, sorted([*sz.alphas, a_star]), cache="wn-tuned")

    return [
        Job("wn-regimes", lambda: experiments.regime_sweep(*points(), sz, cache="wn-regimes")),
        Job("wn-tuned", tuned),
        Job("wn-widths", lambda: experiments.width_sweep(*points(), sz, alpha=1.0,
                                                         cache="wn-widths")),
    ]
