"""One knob for the size of every experiment: ``cpu``, ``gpu`` or ``paper``.

Chapters never hard-code sizes; they read them from :func:`current`::

    S = scale.current()
    X, y = data.fashion_mnist(n=S.n_train)

``NORMBOOK_SCALE`` overrides the default, which is ``gpu`` when CUDA is present and
``cpu`` otherwise.

A *smoke* form of each scale, ``NORMBOOK_SCALE=gpu:smoke`` (or ``cpu:smoke``,
``paper:smoke``), keeps that scale's name, widths, data sets and per-scale tables but cuts
its counts (data subsets, steps, epochs, seeds, grid and slider points) to the minimum that
still runs every code path, so that CI on a CPU executes the ``gpu`` and ``paper`` code
in minutes. The cut is made here: fields of the Scale for the shared counts, and
:meth:`Scale.cut` for a chapter's own counts. Its numbers mean nothing.
"""

import os
from dataclasses import dataclass, replace

import torch

from lib import checks

ENV_VAR = "NORMBOOK_SCALE"


@dataclass(frozen=True)
class Scale:
    """Sizes shared by all chapters at one scale."""

    name: str          # "cpu", "gpu" or "paper"
    n_train: int       # training examples (a seeded subset below the full data set)
    n_test: int        # test examples
    epochs: int        # passes over the training subset for SGD experiments
    steps: int         # full-batch GD steps for the theory experiments
    width: int         # hidden width of MLPs
    grid: int          # points per axis of hyperparameter sweeps
    seeds: int         # independent runs behind every claim about training
    slider_grid: int   # points per slider that the built site can show
    description: str   # one line for the chapters' "this page was computed at" note
    smoke: bool = False  # counts cut to a minimum (see :func:`smoke`): a code check, no results

    def __post_init__(self):
        checks.string("name", self.name)
        checks.string("description", self.description)
        checks.boolean("smoke", self.smoke)
        for field in ("n_train", "n_test", "epochs", "steps", "width", "grid", "seeds",
                      "slider_grid"):
            object.__setattr__(self, field, checks.integer(field, getattr(self, field)))

    @property
    def label(self) -> str:
        """The value of ``NORMBOOK_SCALE`` that gives this scale ("gpu", "gpu:smoke")."""
        return f"{self.name}{SMOKE_SUFFIX if self.smoke else ''}"

    def cut(self, value: int, minimum: int) -> int:
        """A count of this scale: ``value``, or ``min(value, minimum)`` in a smoke run.

        ``value`` and ``minimum`` are integers >= 1; ``minimum`` is the least count that
        still runs every code path of the caller (e.g. 2 grid points for a fitted slope).
        """
        value, minimum = checks.integer("value", value), checks.integer("minimum", minimum)
        return min(value, minimum) if self.smoke else value


SCALES = {
    "cpu": Scale("cpu", n_train=2_000, n_test=1_000, epochs=2, steps=300, width=100,
                 grid=9, seeds=3, slider_grid=9,
                 description="CPU scale: data subsets and short runs, minutes on a laptop"),
    "gpu": Scale("gpu", n_train=60_000, n_test=10_000, epochs=20, steps=3_000, width=512,
                 grid=21, seeds=5, slider_grid=13,
                 description="GPU scale: full data, minutes per chapter on one GPU"),
    "paper": Scale("paper", n_train=60_000, n_test=10_000, epochs=200, steps=10_000,
                   width=1_000, grid=41, seeds=10, slider_grid=17,
                   description="paper scale: the papers' full settings, hours on a GPU"),
}


SMOKE_SUFFIX = ":smoke"
# The counts of a smoke run (upper bounds; a scale already below keeps its own): the least
# that runs every code path of every chapter (e.g. 20 * steps >= 1000 SGD steps, one seed).
SMOKE_COUNTS = dict(n_train=400, n_test=200, epochs=1, steps=50, grid=4, seeds=1,
                    slider_grid=2)


def smoke(s: Scale) -> Scale:
    """The smoke form of ``s`` (a Scale): same name, width and description's scale, with
    n_train, n_test, epochs, steps, grid, seeds and slider_grid cut to SMOKE_COUNTS."""
    checks.instance("s", s, Scale)
    cut = {k: min(getattr(s, k), v) for k, v in SMOKE_COUNTS.items()}
    return replace(s, **cut, smoke=True,
                   description=f"SMOKE RUN of the {s.name} scale: its widths, data and "
                               f"configuration with counts cut to a minimum; a check of the "
                               f"code, its numbers and claims are not results")


def default_name() -> str:
    """``gpu`` when CUDA is available, else ``cpu``."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def current(name: str | None = None) -> Scale:
    """The scale named ``name``, else ``$NORMBOOK_SCALE``, else :func:`default_name`.

    ``name`` is None or one of "cpu", "gpu", "paper", optionally followed by ":smoke" for
    its :func:`smoke` form (case and spaces ignored); an unknown name, passed or in
    ``NORMBOOK_SCALE``, is a ValueError naming where it came from.
    """
    if name is None:
        where, name = ENV_VAR, os.environ.get(ENV_VAR) or default_name()
    else:
        where, name = "name", checks.string("name", name)
    name = name.strip().lower()
    base, marker, rest = name.partition(":")
    if marker and (rest.strip() != SMOKE_SUFFIX[1:] or base.strip() not in SCALES):
        raise ValueError(f"{where} must be one of {', '.join(map(repr, SCALES))}, optionally "
                         f"followed by {SMOKE_SUFFIX!r} (e.g. 'gpu{SMOKE_SUFFIX}'); got {name!r}")
    chosen = SCALES[checks.choice(where, base.strip() if marker else name, SCALES)]
    return smoke(chosen) if marker else chosen
