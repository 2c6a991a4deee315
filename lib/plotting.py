"""One look for every figure: readable projected in class and printed, colour-blind safe."""

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes

from lib import checks

# Okabe & Ito (2008), the palette recommended for colour-blind readers.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
           "#F0E442", "#000000")
# Text colours: PALETTE's hues darkened to at least 4.6:1 on white (WCAG 2.1 AA asks 4.5
# for text; vermilion #D55E00 is 3.9:1, bluish green #009E73 3.4:1).
TEXT_PALETTE = ("#0072B2", "#9C6C00", "#008460", "#BE5400", "#BB4D8A", "#177AB2",
                "#80770A", "#000000")

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "legend.fontsize": 10.5,
    "legend.frameon": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 2.0,
    "svg.fonttype": "none",      # text stays text in SVG: smaller, searchable, swappable
    "svg.hashsalt": "normbook",  # deterministic ids in SVG output
}


def use_style() -> None:
    """Apply the book's matplotlib style to every figure made afterwards."""
    mpl.rcParams.update(STYLE)


def first_nonfinite(values) -> int | None:
    """Index of the first inf/NaN in a 1-D sequence, or None if all values are finite.

    ``values`` is a non-empty 1-D list, array or tensor of real numbers (inf/NaN allowed).
    """
    values = checks.array("values", values, ndim=1, finite=False)
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else None


def mark_divergence(ax, values, what: str = "step", label: str = "") -> int | None:
    """Write "diverged at step k" on ``ax`` if ``values`` hit inf/NaN; clear it otherwise.

    Calling it again on the same axes updates the same text (so it works in place,
    as sliders need). Returns k, or None when the run stayed finite. ``ax`` is a
    matplotlib Axes, ``values`` as for :func:`first_nonfinite`, ``what`` and ``label`` strings.
    """
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    what, label = checks.string("what", what), checks.string("label", label)
    k = first_nonfinite(values)
    note = getattr(ax, "_normbook_divergence", None)
    if note is None:
        note = ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center",
                       fontsize=14, color=TEXT_PALETTE[3], fontweight="bold",
                       bbox=dict(boxstyle="round", fc="white", ec=PALETTE[3], alpha=0.9))
        ax._normbook_divergence = note
    text = "" if k is None else f"{label + ': ' if label else ''}diverged at {what} {k}"
    note.set_text(text)
    note.set_visible(k is not None)
    return k
