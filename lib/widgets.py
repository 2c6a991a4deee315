"""One slider mechanism for every chapter: a figure declared once, live or precomputed.

A chapter declares what to compute, how to draw it and the sliders::

    def compute(eta, kappa):          # pure; receives the slider values by name
        return ols.gd(H=torch.tensor([1.0, kappa]), u=torch.ones(2),
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
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import PIL.Image
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lib import plotting, progress, scale, site_figure, sweep

_RENDER_RC = {**plotting.STYLE, "savefig.bbox": "standard"}
_counter = itertools.count()


def build_mode() -> bool:
    """True while ``jupyter-book build`` runs the notebooks (``NORMBOOK_BUILD=1``)."""
    return os.environ.get("NORMBOOK_BUILD") == "1"


@dataclass(frozen=True)
class Slider:
    """One slider: a keyword of ``compute`` and the range it moves over."""

    name: str                # keyword argument of compute() that receives the value
    label: str               # shown beside the slider; plain Unicode, e.g. "η"
    min: float               # smallest value (> 0 when log)
    max: float               # largest value
    default: float           # value before any move; always a site grid point
    log: bool = False        # log-spaced slider and grid
    integer: bool = False    # integer values (IntSlider)
    grid: int | None = None  # grid points in the built site; None: scale.current().slider_grid

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"slider name must be a Python identifier, got {self.name!r}")
        if not self.min < self.max:
            raise ValueError(f"slider {self.name}: need min < max, got [{self.min}, {self.max}]")
        if self.log and self.min <= 0:
            raise ValueError(f"slider {self.name}: a log slider needs min > 0, got {self.min}")
        if not self.min <= self.default <= self.max:
            raise ValueError(f"slider {self.name}: default {self.default} is outside "
                             f"[{self.min}, {self.max}]")
        if self.grid is not None and self.grid < 2:
            raise ValueError(f"slider {self.name}: grid must be >= 2 points, got {self.grid}")

    def clamp(self, value: float) -> float:
        """``value`` moved into [min, max] (rounded for integer sliders)."""
        value = min(max(float(value), self.min), self.max)
        return int(round(value)) if self.integer else value

    def grid_values(self) -> list:
        """Site grid: ``grid`` points from min to max (log or linear) plus the default."""
        n = self.grid or scale.current().slider_grid
        pts = (np.geomspace if self.log else np.linspace)(self.min, self.max, n)
        pts = [int(round(p)) if self.integer else float(p) for p in pts]
        pts[0], pts[-1] = self.min, self.max   # exact endpoints, no round-off
        close = [i for i, p in enumerate(pts) if math.isclose(p, self.default, rel_tol=1e-9)]
        if close:
            pts[close[0]] = self.default
        else:
            pts.append(self.default)
        return sorted(set(pts))


class ComputeError(str):
    """The message of a ValueError raised by a figure's compute (a bad configuration)."""


def _call_safely(compute, **values):
    try:
        return compute(**values)
    except ValueError as err:
        return ComputeError(err)


class InteractiveFigure:
    """A figure with sliders: live ipywidgets in a kernel, precomputed SVG in the site.

    Args:
        compute: ``compute(**values) -> result``; pure, calls lib. A ValueError
            (bad configuration) is shown as a note under the figure.
        draw: ``draw(fig) -> update``; makes axes and artists once and fixes the axis
            limits; ``update(result)`` changes artist data in place.
        sliders: the :class:`Slider` list; names are compute's keywords.
        title: shown above the figure.
        expensive: recompute only on slider release, show progress, and cache
            results in data/cache through :func:`lib.sweep.map_grid` (live and in builds).
        figsize: inches; the book style's default when None.
        cache_name: cache entry name for expensive figures (default: compute's name).
    """

    def __init__(self, compute, draw, sliders, title: str = "", expensive: bool = False,
                 figsize=None, cache_name: str | None = None):
        self.compute, self.sliders, self.title = compute, list(sliders), title
        self.names = [s.name for s in self.sliders]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"slider names must be unique, got {self.names}")
        inspect.signature(compute).bind(**{n: None for n in self.names})  # TypeError if not
        self.expensive = expensive
        self.cache_name = cache_name or compute.__name__.strip("_<>") or "widget"
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
        if build_mode():      # fail the cell (not the repr) if the grid is too big
            with progress.bar(self._grid_size(), desc=title or "precomputing") as bar:
                self._site = site_figure.site_html(self, bar)

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
        """compute(**values) (a ComputeError instead of a ValueError); cached if expensive."""
        fn = partial(_call_safely, self.compute)
        if not self.expensive:
            return fn(**values)
        point = sweep.Grid(**{k: [v] for k, v in values.items()})
        return sweep.map_grid(fn, point, cache=self.cache_name, chunk=1, bar=False).flat[0]

    def precompute(self, grids) -> np.ndarray:
        """Results at every point of the site grid (an object array), via the sweep engine.

        Expensive figures cache every point on its own, so a live move onto a grid point
        the build computed is instant, and an interrupted build resumes.
        """
        grid = sweep.Grid(**dict(zip(self.names, grids)))
        fn = partial(_call_safely, self.compute)
        return sweep.map_grid(fn, grid, cache=self.cache_name if self.expensive else None,
                              chunk=1 if self.expensive else 64, bar=False)

    def apply(self, values: dict, result=None) -> None:
        """Update the artists for ``values`` (computing unless ``result`` is given).

        A ValueError from compute becomes a note under the figure and blanks the data; so
        does an exception from update(result) once the figure exists (at the default
        values it propagates: a figure that cannot draw its defaults is a bug to fix).
        """
        self._show_hidden()
        with self._quiet():
            result = self._compute(values) if result is None else result
            failed = isinstance(result, ComputeError)
            self.result = None if failed else result
            self.error = f"Not computed: {result}" if failed else None
            drawn = hasattr(self, "tracked")   # False only during the first, default draw
            if not failed:
                try:
                    self._update(self.result)
                except Exception as err:
                    if not drawn:
                        raise
                    failed, self.result = True, None
                    self.error = f"Could not draw this result ({type(err).__name__}: {err})"
            if not failed:
                if drawn and len(site_figure.tracked_artists(self.figure)) != len(self.tracked):
                    raise RuntimeError("update(result) must change the artists made in draw "
                                       "(line.set_data, text.set_text), not add new ones")
            else:   # blank the data rather than show a stale figure
                self._hidden = [a for a in getattr(self, "tracked", []) if a.get_visible()]
                for a in self._hidden:
                    a.set_visible(False)

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
        """Run a rendering function in the book style with warnings silenced."""
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

    def _grid_size(self) -> int:
        return math.prod(len(s.grid_values()) for s in self.sliders)

    # --- live widget -----------------------------------------------------------------
    def set(self, **values):
        """Move sliders to ``values`` (clamped into range, with a note) and redraw."""
        unknown = set(values) - set(self.names)
        if unknown:
            raise ValueError(f"unknown slider(s) {sorted(unknown)}; sliders are {self.names}")
        notes = []
        for s in self.sliders:
            if s.name not in values:
                continue
            v = float(values[s.name])
            if math.isnan(v):
                notes.append(f"{s.label} = NaN is not a number; keeping {self.values[s.name]:g}")
                continue
            c = s.clamp(v)
            if c != v and not (s.integer and s.min <= v <= s.max):
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
        if not getattr(self, "_syncing", False):
            self.set(**{name: change.new})

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
