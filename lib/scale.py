"""One knob for the size of every experiment: ``cpu``, ``gpu`` or ``paper``.

Chapters never hard-code sizes; they read them from :func:`current`::

    S = scale.current()
    X, y = data.fashion_mnist(n=S.n_train)

``NORMBOOK_SCALE`` overrides the default, which is ``gpu`` when CUDA is present and
``cpu`` otherwise.
"""

import os
from dataclasses import dataclass

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

    def __post_init__(self):
        checks.string("name", self.name)
        checks.string("description", self.description)
        for field in ("n_train", "n_test", "epochs", "steps", "width", "grid", "seeds",
                      "slider_grid"):
            object.__setattr__(self, field, checks.integer(field, getattr(self, field)))


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


def default_name() -> str:
    """``gpu`` when CUDA is available, else ``cpu``."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def current(name: str | None = None) -> Scale:
    """The scale named ``name``, else ``$NORMBOOK_SCALE``, else :func:`default_name`.

    ``name`` is None or one of "cpu", "gpu", "paper" (case and spaces ignored); an unknown
    name, passed or in ``NORMBOOK_SCALE``, is a ValueError naming where it came from.
    """
    if name is None:
        where, name = ENV_VAR, os.environ.get(ENV_VAR) or default_name()
    else:
        where, name = "name", checks.string("name", name)
    return SCALES[checks.choice(where, name.strip().lower(), SCALES)]
