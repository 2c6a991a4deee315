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
This module computes and draws; a slider's range and grid live in :mod:`lib.sliders`,
the live ipywidgets in :mod:`lib.controls`.
"""

import contextlib
import inspect
import itertools
import logging
import math
import os
import re
import warnings
from collections.abc import Iterable
from functools import partial

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lib import blit, checks, plotting, progress, site_figure, sweep
from lib.controls import LiveControls
# Slider and build_mode are re-exported: chapters import them from lib.widgets
from lib.sliders import Slider, build_mode, site_grids, slider_list

_RENDER_RC = {**plotting.STYLE, "savefig.bbox": "standard"}
_counter = itertools.count()


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


class InteractiveFigure(LiveControls):
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
        self.sliders = slider_list(sliders)
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
        self._widgets, self._hidden, self._redrawer = None, [], None
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
        return site_grids(self.sliders, self.title)

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
        """Redraw the artists that changed, replay the others (:class:`lib.blit.Redrawer`): the same
        pixels as a full ``canvas.draw()``."""
        if self._redrawer is None:
            self._redrawer = blit.Redrawer(self.figure)
        self._redrawer.draw()

    def render(self, fn):
        """Run ``fn()``, a rendering function, in the book style with warnings silenced."""
        checks.function("fn", fn)
        with rc_context(_RENDER_RC), self._quiet():
            return fn()

    def png(self) -> bytes:
        """The current figure as PNG bytes (Agg; only the artists that changed are drawn)."""
        self.render(self._blit)
        return blit.png_rgb(np.asarray(self.figure.canvas.buffer_rgba()))

    @property
    def note(self) -> str:
        """Text under the figure: clamped typed values and compute errors."""
        return "; ".join(self._clamp_notes + ([self.error] if self.error else []))

    # --- display -------------------------------------------------------------------
    def html(self) -> str:
        """text/html: precomputed frames in builds, else the static default figure."""
        return self._site if self._site is not None else site_figure.static_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        # the HTML first: its static figure is a full draw (savefig), which would make the
        # first live move draw everything again; the widgets' first PNG then records it
        page = self.html()
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["text/html"] = page
        data["text/plain"] = f"InteractiveFigure({self.title!r}, sliders={self.names})"
        return data

    def __repr__(self):
        return f"InteractiveFigure({self.title!r}, values={self.values})"
