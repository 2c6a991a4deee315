"""One slider mechanism for every chapter: a figure declared once, live or precomputed.

A chapter declares what to compute, how to draw it and the sliders::

    def compute(eta, kappa):          # pure; receives the slider values by name
        return dynamics.gd(H=torch.tensor([1.0, kappa]), u=torch.ones(2),
                           w0=torch.zeros(2), eps=eta, steps=60)

    def draw(fig):                    # makes the axes and artists ONCE
        ax = fig.subplots()
        ax.set(yscale="log", xlim=(0, 60), ylim=(1e-12, 1e6))   # fixed limits
        line, = ax.plot([], [])
        def update(res):              # changes artist data in place
            line.set_data(range(len(res.loss)), res.loss)
            plotting.mark_divergence(ax, res.loss)
        return update

    InteractiveFigure(compute, draw, [Slider("eta", "η", 1e-3, 2.0, default=0.1, log=True)])

In a live kernel (Jupyter, Binder, Colab) this is a box of standard ipywidgets: sliders
with a text box each, and the figure drawn by Agg into an ``ipywidgets.Image``. In the
built site (``NORMBOOK_BUILD=1``) it is inline SVG precomputed over the slider grid, see
:mod:`lib.site_figure`. ``draw`` must fix the axis limits: only data artists may change.
"""

import contextlib
import html
import inspect
import io
import itertools
import logging
import math
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

import numpy as np
import PIL.Image
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lib import checks, plotting, progress, scale, site_figure, sweep

_RENDER_RC = {**plotting.STYLE, "savefig.bbox": "standard"}
_counter = itertools.count()


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
        """Regular points of the site grid (the default may add one more)."""
        return self.grid or scale.current().slider_grid

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

    def _value(self, value):
        """A value typed for this slider: a finite number (an integer if integer)."""
        if self.integer:
            return checks.integer(self.name, value, lo=None)
        return checks.number(self.name, value)


class ComputeError(str):
    """The message of a ValueError raised by a figure's compute (a bad configuration)."""


class ComputeFailed(RuntimeError):
    """compute raised something other than ValueError (a bug, a numerical failure) at the
    slider values its message names; the original exception is its ``__cause__``."""


def _call_safely(compute, **values):
    """compute(**values): a ValueError becomes a ComputeError (a note), any other error a
    ComputeFailed naming the values (a build fails on it; a live figure notes it)."""
    try:
        return compute(**values)
    except ValueError as err:
        return ComputeError(err)
    except Exception as err:
        raise ComputeFailed(f"compute({_show(values)}) raised {type(err).__name__}: {err}") from err


def _show(values: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _sliders(sliders) -> list:
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


def _keywords(compute, names: list):
    """``compute``, a function accepting every slider name as a keyword."""
    checks.function("compute", compute)
    try:
        signature = inspect.signature(compute)
    except (TypeError, ValueError):   # no signature to read (some builtins): the call will tell
        return compute
    try:
        signature.bind(**{n: None for n in names})
    except TypeError as err:
        raise TypeError(f"compute must accept the slider names {names} as keywords: {err}") from None
    return compute


def _figsize(figsize):
    """None or (width, height) in inches, both finite and > 0."""
    if figsize is None:
        return None
    size = checks.positive_array("figsize", figsize, ndim=1)
    if size.size != 2:
        raise ValueError(f"figsize must be (width, height) in inches, got {size.size} numbers")
    return tuple(size.tolist())


_CACHE_NAME = re.compile(r"[A-Za-z0-9_-]+")   # what lib.cache accepts as an entry name


def _cache_name(cache_name, compute) -> str:
    """The cache entry name: ``cache_name`` if given (checked), else compute's name."""
    if cache_name is None:
        name = re.sub(r"[^A-Za-z0-9_-]", "", getattr(compute, "__name__", "").strip("_<>"))
        return name or "widget"
    if not _CACHE_NAME.fullmatch(checks.string("cache_name", cache_name)):
        raise ValueError(f"cache_name must be ASCII letters, digits, '-' or '_', got {cache_name!r}")
    return cache_name


class InteractiveFigure:
    """A figure with sliders: live ipywidgets in a kernel, precomputed SVG in the site.

    Args:
        compute: ``compute(**values) -> result``; pure, calls lib, takes every slider name
            as a keyword. A ValueError (bad configuration) is shown as a note under the
            figure; any other error too in a live kernel, while a build fails on it
            (:class:`ComputeFailed`, naming the slider values).
        draw: ``draw(fig) -> update``; makes axes and artists once and fixes the axis
            limits; ``update(result)`` changes artist data in place.
        sliders: a non-empty list of :class:`Slider` with distinct names.
        title: shown above the figure.
        expensive: recompute only on slider release, show progress, and cache
            results in data/cache through :func:`lib.sweep.map_grid` (live and in builds).
        figsize: (width, height) in inches; the book style's default when None.
        cache_name: cache entry name for expensive figures (default: compute's name).

    In builds the site grid (product of the sliders' grid sizes) must be at most
    ``site_figure.MAX_FRAMES`` frames; a larger one is refused before anything is computed.
    """

    def __init__(self, compute, draw, sliders, title: str = "", expensive: bool = False,
                 figsize=None, cache_name: str | None = None):
        self.sliders = _sliders(sliders)
        self.names = [s.name for s in self.sliders]
        self.compute = _keywords(compute, self.names)
        checks.function("draw", draw)
        self.title, self.expensive = checks.string("title", title), checks.boolean("expensive", expensive)
        figsize, self.cache_name = _figsize(figsize), _cache_name(cache_name, compute)
        grids = self.site_grids() if build_mode() else None   # too big: refused before computing
        self.defaults = {s.name: s.clamp(s.default) for s in self.sliders}  # int or float, as the grid
        self.values = dict(self.defaults)
        self.result, self.error, self._clamp_notes = None, None, []
        self.fid = f"nbf{next(_counter)}-{os.getpid() % 10000}"
        self._widgets, self._hidden, self._background = None, [], None
        with rc_context(plotting.STYLE):
            self.figure = Figure(figsize=figsize)
            FigureCanvasAgg(self.figure)
            self._update = draw(self.figure)
        if not callable(self._update):
            raise TypeError("draw(fig) must return update(result), a function")
        self.apply(self.values)   # the first update may create artists (mark_divergence)
        if self.error:
            raise ValueError(f"the default slider values {self.values} fail: {self.error}")
        with self._quiet():
            self.figure.tight_layout()
        self.tracked = site_figure.tracked_artists(self.figure)
        self._site = None
        if grids is not None:      # fail the cell (not the repr) if the page grows too big
            with progress.bar(math.prod(map(len, grids)), desc=title or "precomputing") as bar:
                self._site = site_figure.site_html(self, bar)

    def site_grids(self) -> list:
        """Each slider's site grid, once their product (the frames the site stores) is known
        to be at most ``site_figure.MAX_FRAMES``; else a ValueError naming the sliders."""
        sizes = [s.grid_size for s in self.sliders]
        grids = None
        if math.prod(sizes) <= site_figure.MAX_FRAMES:   # never build a grid past the budget
            grids = [s.grid_values() for s in self.sliders]
            sizes = [len(g) for g in grids]
        if math.prod(sizes) > site_figure.MAX_FRAMES:
            shown = " × ".join(f"{s.name} ({n} points)" for s, n in zip(self.sliders, sizes))
            raise ValueError(f"{self.title or 'interactive figure'}: sliders {shown} make "
                             f"{math.prod(sizes)} site frames, over the budget of "
                             f"{site_figure.MAX_FRAMES} frames per figure; use coarser grids "
                             "(Slider(..., grid=n)) or fewer sliders")
        return grids

    # --- computing ---------------------------------------------------------------
    @contextlib.contextmanager
    def _quiet(self):
        """No floating-point warnings or matplotlib log lines: divergence is drawn instead."""
        log = logging.getLogger("matplotlib")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                yield
        finally:
            log.setLevel(level)

    def _compute(self, values):
        """compute(**values) through :func:`_call_safely`; cached if expensive."""
        fn = partial(_call_safely, self.compute)
        if not self.expensive:
            return fn(**values)
        point = sweep.Grid(**{k: [v] for k, v in values.items()})
        return sweep.map_grid(fn, point, cache=self.cache_name, chunk=1, bar=False).flat[0]

    def precompute(self, grids) -> np.ndarray:
        """Results at every point of the site grid (an object array), via the sweep engine.

        ``grids`` holds one non-empty list of values per slider. Expensive figures cache
        every point on its own, so a live move onto a grid point the build computed is
        instant, and an interrupted build resumes. A :class:`ComputeFailed` propagates.
        """
        if isinstance(grids, (str, dict)) or not isinstance(grids, Iterable):
            raise TypeError(f"grids must be a list of value lists, got {type(grids).__name__}")
        grids = list(grids)
        if len(grids) != len(self.names):
            raise ValueError(f"grids must hold one list of values per slider ({self.names}), "
                             f"got {len(grids)}")
        grid = sweep.Grid(**dict(zip(self.names, grids)))
        fn = partial(_call_safely, self.compute)
        return sweep.map_grid(fn, grid, cache=self.cache_name if self.expensive else None,
                              chunk=1 if self.expensive else 64, bar=False)

    def apply(self, values: dict, result=None) -> None:
        """Update the artists for ``values`` (a dict by slider name), computing unless
        ``result`` is given.

        Once the figure exists, any error of compute or of update(result) becomes a note
        under the figure and blanks the data, never a stale figure claiming the new values.
        At the default values they propagate: a figure that cannot draw its defaults is a
        bug to fix.
        """
        checks.mapping_keys("values", values, self.names)
        self._show_hidden()
        drawn = hasattr(self, "tracked")   # False only during the first, default draw
        with self._quiet():
            if result is None:
                try:
                    result = self._compute(values)
                except ComputeFailed as err:
                    if not drawn:
                        raise
                    result = ComputeError(err)
            failed = isinstance(result, ComputeError)
            self.result = None if failed else result
            self.error = f"Not computed: {result}" if failed else None
            if not failed:
                failed = not self._draw(drawn)
            if failed:   # blank the data rather than show a stale figure
                self._hidden = [a for a in getattr(self, "tracked", []) if a.get_visible()]
                for a in self._hidden:
                    a.set_visible(False)

    def _draw(self, drawn: bool) -> bool:
        """update(self.result); False (with the error noted) if it fails after the first draw."""
        try:
            self._update(self.result)
        except Exception as err:
            if not drawn:
                raise
            self.result = None
            self.error = f"Could not draw this result ({type(err).__name__}: {err})"
            return False
        if drawn and len(site_figure.tracked_artists(self.figure)) != len(self.tracked):
            raise RuntimeError("update(result) must change the artists made in draw "
                               "(line.set_data, text.set_text), not add new ones")
        return True

    def _show_hidden(self):
        for a in self._hidden:
            a.set_visible(True)
        self._hidden = []

    def _blit(self):
        """Redraw only the tracked artists over a cached background (axes, ticks, labels)."""
        canvas = self.figure.canvas
        if self._background is None:
            with site_figure.hidden(self.tracked):
                canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
        canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for artist in self.tracked:
            artist.draw(renderer)

    def render(self, fn):
        """Run ``fn()``, a rendering function, in the book style with warnings silenced."""
        checks.function("fn", fn)
        with rc_context(_RENDER_RC), self._quiet():
            return fn()

    def png(self) -> bytes:
        """The current figure as PNG bytes (Agg, only changed artists redrawn)."""
        self.render(self._blit)
        canvas, buf = self.figure.canvas, io.BytesIO()
        image = PIL.Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(),
                                     "raw", "RGBA", 0, 1)
        image.convert("RGB").save(buf, format="png", compress_level=1)  # speed over size
        return buf.getvalue()

    @property
    def note(self) -> str:
        """Text under the figure: clamped typed values and compute errors."""
        return "; ".join(self._clamp_notes + ([self.error] if self.error else []))

    # --- live widget -----------------------------------------------------------------
    def set(self, **values):
        """Move sliders to ``values`` and redraw.

        Each value is a finite number (an integer for an integer slider) for a known slider
        name, else a TypeError/ValueError naming the slider; values outside the range are
        clamped into it with a note. Every value is checked before any slider moves.
        """
        unknown = set(values) - set(self.names)
        if unknown:
            raise ValueError(f"unknown slider(s) {sorted(unknown)}; sliders are {self.names}")
        moved = [(s, s._value(values[s.name])) for s in self.sliders if s.name in values]
        notes = []
        for s, v in moved:
            c = s.clamp(v)
            if c != v:
                notes.append(f"{s.label} = {v:g} is outside [{s.min:g}, {s.max:g}]; using {c:g}")
            self.values[s.name] = c
        self._clamp_notes = notes
        self._sync_widgets()
        self._redraw()
        return self

    def _redraw(self):
        bar = self._widgets and self._widgets["progress"] if self.expensive else None
        if bar:
            bar.layout.visibility, bar.value = "visible", 0
        with self._widgets["out"] if self._widgets else contextlib.nullcontext():
            self.apply(self.values)
        if bar:
            bar.value, bar.layout.visibility = 1, "hidden"
        if self._widgets:
            self._widgets["image"].value = self.png()
            self._widgets["note"].value = self._note_html()

    def _note_html(self):
        return f'<span style="color:#D55E00">{html.escape(self.note)}</span>'

    def _sync_widgets(self):
        if not self._widgets:
            return
        self._syncing = True
        try:
            for name, (slider, text) in self._widgets["rows"].items():
                slider.value = text.value = self.values[name]
        finally:
            self._syncing = False

    def _on_slider(self, name, change):
        if not getattr(self, "_syncing", False):
            self.values[name], self._clamp_notes = change.new, []
            self._syncing = True
            shown = change.new if isinstance(change.new, int) else float(f"{change.new:.4g}")
            self._widgets["rows"][name][1].value = shown
            self._syncing = False
            self._redraw()

    def _on_text(self, name, change):
        if getattr(self, "_syncing", False):
            return
        try:
            self.set(**{name: change.new})
        except (TypeError, ValueError) as err:   # e.g. NaN typed: a callback must not raise
            self._clamp_notes = [f"{err}; keeping {self.values[name]:g}"]
            self._sync_widgets()
            self._widgets["note"].value = self._note_html()

    @property
    def widget(self):
        """The ipywidgets box (built on first use)."""
        if self._widgets is None:
            self._widgets = self._build_widgets()
        return self._widgets["box"]

    def _build_widgets(self):
        import ipywidgets as W
        rows, boxes = {}, []
        for s in self.sliders:
            common = dict(value=s.default, description=s.label, readout=False,
                          continuous_update=not self.expensive, layout=W.Layout(width="60%"))
            if s.integer:
                slider, text = W.IntSlider(min=s.min, max=s.max, **common), W.IntText(s.default)
            elif s.log:
                lo, hi = math.log10(s.min), math.log10(s.max)
                slider = W.FloatLogSlider(min=lo, max=hi, step=(hi - lo) / 500, **common)
                text = W.FloatText(s.default)
            else:
                slider = W.FloatSlider(min=s.min, max=s.max, step=(s.max - s.min) / 500, **common)
                text = W.FloatText(s.default)
            text.layout = W.Layout(width="8em")
            slider.observe(partial(self._on_slider, s.name), "value")
            text.observe(partial(self._on_text, s.name), "value")
            rows[s.name] = (slider, text)
            boxes.append(W.HBox([slider, text]))
        # In builds the site shows our HTML; an empty image keeps the saved widget state small.
        image = W.Image(value=b"" if build_mode() else self.png(), format="png")
        note = W.HTML(self._note_html())
        bar = W.IntProgress(value=0, min=0, max=1, description="computing…",
                            layout=W.Layout(visibility="hidden"))
        out = W.Output()
        head = [W.HTML(f"<b>{html.escape(self.title)}</b>")] if self.title else []
        extra = [bar, out] if self.expensive else []
        box = W.VBox([*head, image, *boxes, note, *extra])
        return {"box": box, "rows": rows, "image": image, "note": note, "progress": bar, "out": out}

    # --- display -------------------------------------------------------------------
    def html(self) -> str:
        """text/html: precomputed frames in builds, else the static default figure."""
        return self._site if self._site is not None else site_figure.static_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["text/html"] = self.html()
        data["text/plain"] = f"InteractiveFigure({self.title!r}, sliders={self.names})"
        return data

    def __repr__(self):
        return f"InteractiveFigure({self.title!r}, values={self.values})"
