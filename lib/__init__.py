"""Shared code for the book *Normalisation and learning rates*.

A module at the top of ``lib`` is a concept every chapter shares (``train``, ``sweep``,
``widgets``, ...); a package is one chapter, and every chapter package uses the same inner
names: ``theory`` (the paper's formulas and identities), ``experiments`` (the runs behind
the figures), ``figures`` (drawing), plus what the chapter needs of its own (``dynamics``,
``networks``, ``schedules``). Import what you need, e.g. ``from lib import train, data`` or
``from lib.bngd import dynamics``. Submodules are imported lazily so that ``import lib``
stays cheap.
"""

import importlib

__version__ = "0.1.0"   # the book's release; tools/release.py writes it everywhere else

SHARED = ["blit", "cache", "chapter", "checks", "config", "controls", "data", "datachecks", "device",
          "executors", "grid", "history", "invariance", "models", "plotting", "progress",
          "reproduce", "scale", "site_figure", "sliders", "stack", "sweep", "synthetic", "train",
          "widgets"]
CHAPTERS = ["autorate", "bngd", "explr", "wn"]
__all__ = SHARED + CHAPTERS


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
