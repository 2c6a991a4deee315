"""Sliders: the range, values and site grid of one slider, and of a figure's set of them.

A :class:`Slider` names a keyword of a figure's ``compute`` and the range it moves over.
In a live kernel any value in the range is allowed (typed values are clamped into it);
the built site precomputes the figure at each slider's :meth:`Slider.grid_values`, and
:func:`site_grids` refuses a set of sliders whose grid is too big before anything is
computed. :class:`lib.widgets.InteractiveFigure` puts sliders to work.
"""

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

import numpy as np

from lib import checks, scale, site_figure


def build_mode() -> bool:
    """True while ``jupyter-book build`` runs the notebooks (``NORMBOOK_BUILD=1``)."""
    return os.environ.get("NORMBOOK_BUILD") == "1"


@dataclass(frozen=True)
class Slider:
    """One slider: a keyword of ``compute`` and the range it moves over.

    ``min < max`` and ``default`` in [min, max] are finite numbers (integers for an integer
    slider, ``min > 0`` for a log slider); ``grid`` is None or an integer >= 2.
    """

    name: str                # keyword argument of compute() that receives the value
    label: str               # shown beside the slider; plain Unicode, e.g. "η"
    min: float               # smallest value (> 0 when log)
    max: float               # largest value
    default: float           # value before any move; always a site grid point
    log: bool = False        # log-spaced slider and grid
    integer: bool = False    # integer values (IntSlider)
    grid: int | None = None  # grid points in the built site; None: scale.current().slider_grid

    def __post_init__(self):
        name = checks.string("name", self.name)
        if not name.isidentifier():
            raise ValueError(f"name must be a Python identifier (a keyword of compute), "
                             f"got {name!r}")
        checks.string(f"slider {name}: label", self.label)
        log = checks.boolean(f"slider {name}: log", self.log)
        integer = checks.boolean(f"slider {name}: integer", self.integer)
        number = partial(checks.integer, lo=None) if integer else checks.number
        lo, hi, default = (number(f"slider {name}: {field}", getattr(self, field))
                           for field in ("min", "max", "default"))
        grid = None if self.grid is None else checks.integer(f"slider {name}: grid", self.grid, lo=2)
        if not lo < hi:
            raise ValueError(f"slider {name}: need min < max, got [{lo}, {hi}]")
        if log and lo <= 0:
            raise ValueError(f"slider {name}: a log slider needs min > 0, got {lo}")
        if not lo <= default <= hi:
            raise ValueError(f"slider {name}: default {default} is outside [{lo}, {hi}]")
        if integer and grid is not None and grid > hi - lo + 1:
            raise ValueError(f"slider {name}: grid={grid} points do not fit the "
                             f"{hi - lo + 1} integers in [{lo}, {hi}]")
        for field, value in dict(log=log, integer=integer, min=lo, max=hi, default=default,
                                 grid=grid).items():   # canonical Python types
            object.__setattr__(self, field, value)

    def clamp(self, value: float) -> float:
        """``value`` (a number; ±inf allowed) moved into [min, max] (rounded if integer)."""
        value = checks.number(f"slider {self.name}: value", value, finite=False)
        value = min(max(value, self.min), self.max)
        return int(round(value)) if self.integer else value

    @property
    def grid_size(self) -> int:
        """Regular points of the site grid (the default may add one more); at most 2 in a
        smoke run (``NORMBOOK_SCALE=gpu:smoke``)."""
        now = scale.current()
        return now.cut(self.grid, 2) if self.grid else now.slider_grid

    def grid_values(self) -> list:
        """Site grid: ``grid`` points from min to max (log or linear) plus the default.

        A grid whose points are not distinct (integers rounding together, a range too
        narrow for floats) is refused with a ValueError naming the slider.
        """
        n = self.grid_size
        pts = (np.geomspace if self.log else np.linspace)(self.min, self.max, n)
        pts = [int(round(p)) if self.integer else float(p) for p in pts]
        pts[0], pts[-1] = self.min, self.max   # exact endpoints, no round-off
        if not all(a < b for a, b in zip(pts, pts[1:])):
            raise ValueError(f"slider {self.name}: its grid of {n} points from {self.min:g} to "
                             f"{self.max:g} repeats values; use a smaller grid (Slider(grid=))")
        close = [i for i, p in enumerate(pts) if math.isclose(p, self.default, rel_tol=1e-9)]
        if close:
            pts[close[0]] = self.default
        else:
            pts.append(self.default)
        return sorted(set(pts))

    def check(self, value):
        """A value typed for this slider, checked: a finite number (an integer if integer)."""
        if self.integer:
            return checks.integer(self.name, value, lo=None)
        return checks.number(self.name, value)


def slider_list(sliders) -> list:
    """``sliders`` as a non-empty list of :class:`Slider` with distinct names."""
    if isinstance(sliders, (Slider, str, dict)) or not isinstance(sliders, Iterable):
        raise TypeError(f"sliders must be a list of Slider, got {type(sliders).__name__}")
    sliders = list(sliders)
    if not sliders:
        raise ValueError("sliders must hold at least one Slider, got an empty list")
    for i, s in enumerate(sliders):
        if not isinstance(s, Slider):
            raise TypeError(f"sliders[{i}] must be a Slider, got {type(s).__name__} {s!r:.40}")
    names = [s.name for s in sliders]
    if len(set(names)) != len(names):
        raise ValueError(f"sliders must have distinct names, got {names}")
    return sliders


def site_grids(sliders, title: str = "") -> list:
    """Each slider's site grid, once their product (the frames the site stores) is known
    to be at most ``site_figure.MAX_FRAMES``; else a ValueError naming the sliders.

    ``sliders``: a non-empty list of :class:`Slider` with distinct names; ``title``: the
    figure's, for the message.
    """
    sliders, title = slider_list(sliders), checks.string("title", title)
    sizes = [s.grid_size for s in sliders]
    grids = None
    if math.prod(sizes) <= site_figure.MAX_FRAMES:   # never build a grid past the budget
        grids = [s.grid_values() for s in sliders]
        sizes = [len(g) for g in grids]
    if math.prod(sizes) > site_figure.MAX_FRAMES:
        shown = " × ".join(f"{s.name} ({n} points)" for s, n in zip(sliders, sizes))
        raise ValueError(f"{title or 'interactive figure'}: sliders {shown} make "
                         f"{math.prod(sizes)} site frames, over the budget of "
                         f"{site_figure.MAX_FRAMES} frames per figure; use coarser grids "
                         "(Slider(..., grid=n)) or fewer sliders")
    return grids
