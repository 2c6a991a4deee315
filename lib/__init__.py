"""Shared code for the book *Normalisation and learning rates*.

One module per concept; import what you need, e.g. ``from lib import train, data``.
Submodules are imported lazily so that ``import lib`` stays cheap.
"""

import importlib

__all__ = [
    "autorate", "autorate_experiments", "bn_experiments", "bngd_figure", "bngd_plots",
    "bngd_theory", "cache", "chapter", "checks", "data", "device", "explr", "models", "ols",
    "plotting", "progress", "scale", "schedules", "site_figure", "stack", "sweep",
    "synthetic", "train", "widgets", "wn", "wn_checks", "wn_experiments", "wn_figures",
]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
