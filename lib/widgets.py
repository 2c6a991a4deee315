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
import copy
import inspect
import itertools
import logging
import math
import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterable
from functools import partial

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backend_bases import GraphicsContextBase
from matplotlib.backends import backend_agg
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, FigureImage
from matplotlib.legend import Legend
from matplotlib.path import Path
from matplotlib.transforms import Transform

from lib import checks, plotting, progress, site_figure, sweep
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


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png_rgb(rgba: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of ``rgba`` (height, width, 4), alpha dropped: no row filter and
    zlib level 1. Pillow's encoder tries every PNG filter on every row, which took 2x
    longer for a 1000x380 figure (the live figure's PNG is made on every slider move)."""
    h, w = rgba.shape[:2]
    rows = np.empty((h, 1 + 3 * w), np.uint8)
    rows[:, 0] = 0                                    # filter type 0 (none) for every row
    rows[:, 1:] = rgba[:, :, :3].reshape(h, 3 * w)
    head = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)   # 8 bits, RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", head)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + _png_chunk(b"IEND", b""))


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
        """Redraw the artists that changed, replay the others (:class:`_Redrawer`): the same
        pixels as a full ``canvas.draw()``."""
        if self._redrawer is None:
            self._redrawer = _Redrawer(self.figure)
        self._redrawer.draw()

    def render(self, fn):
        """Run ``fn()``, a rendering function, in the book style with warnings silenced."""
        checks.function("fn", fn)
        with rc_context(_RENDER_RC), self._quiet():
            return fn()

    def png(self) -> bytes:
        """The current figure as PNG bytes (Agg; only the artists that changed are drawn)."""
        self.render(self._blit)
        return _png_rgb(np.asarray(self.figure.canvas.buffer_rgba()))

    @property
    def note(self) -> str:
        """Text under the figure: clamped typed values and compute errors."""
        return "; ".join(self._clamp_notes + ([self.error] if self.error else []))

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


# --- live redraws: draw what changed, replay the rest ---------------------------------
# A live slider changes a few artists (lines, a note); the rest of the figure (axes, tick
# labels, legends, texts) costs most of a full ``canvas.draw()``, mostly laying out and
# rasterising text. :class:`_Redrawer` records, per top-level artist of the figure (each
# child of each Axes and of the Figure), the Agg primitives its ``draw`` issued (paths,
# markers, glyph bitmaps, with their graphics contexts copied) and the order a full draw
# draws those artists in. A later redraw clears the canvas and walks that order: an artist
# marked stale by matplotlib since (any setter, ``set_data``, ``set_text``, ``set_visible``,
# in it or in any artist it contains) is drawn again and re-recorded; any other is replayed
# primitive by primitive. Agg receives the same calls with the same arguments in the same
# order as in a full draw, so the pixels are the same; no artist needs to be declared static.
# ``update`` must change artists through their setters (which mark them stale), as
# matplotlib's own interactive redraws (draw_idle) also require: assigning an attribute
# directly (``annotation.xy = ...``) needs ``artist.stale = True`` after it.
#
# Anything this cannot see falls back to a full ``canvas.draw()`` (and re-records): a change
# of figure size, dpi, axes position or axis limits, artists added or removed, a full draw
# made by someone else (``savefig``, another canvas; its ``draw_event`` tells), legends
# placed with ``loc="best"`` (they move with the data: always redrawn), Agg filters,
# rasterisation, images and nested Axes (always a full draw).

# The Agg primitives artists call (RendererAgg forwards draw_path and glyph bitmaps to
# draw_path / draw_text_image; _update_methods binds the other five to the C++ object).
_PRIMITIVES = ("draw_path", "draw_markers", "draw_path_collection", "draw_quad_mesh",
               "draw_gouraud_triangles", "draw_image", "draw_text_image")
_BOUND = ("draw_markers", "draw_path_collection", "draw_quad_mesh",
          "draw_gouraud_triangles", "draw_image")


def _snapshot(x):
    """A copy of a primitive's argument as Agg reads it now (values, not live objects)."""
    if isinstance(x, GraphicsContextBase):
        gc = GraphicsContextBase()
        gc.copy_properties(x)
        return gc
    if isinstance(x, Transform):
        return x.frozen()
    if isinstance(x, Path):
        return copy.deepcopy(x)
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, (list, tuple)):
        return type(x)(_snapshot(v) for v in x)
    return x


class _Recorder:
    """Stands in for the C++ Agg renderer while one artist draws: forwards each primitive
    and keeps a copy of its arguments; any other call marks the recording unusable."""

    def __init__(self, real, strict=True):
        self._real, self._strict, self.calls, self.ok = real, strict, [], True

    def __getattr__(self, name):
        attr = getattr(self._real, name)
        if name not in _PRIMITIVES:
            if self._strict:       # e.g. restore_region or filters: a replay could not redo it
                self.ok = False
            return attr

        def primitive(*args):
            self.calls.append((name, tuple(_snapshot(a) for a in args)))
            return attr(*args)
        return primitive


def _subtree(artist):
    """The artist and every artist it contains (a Text's box too)."""
    out, todo = [], [artist]
    while todo:
        a = todo.pop()
        out.append(a)
        todo += a.get_children()
        box = getattr(a, "_bbox_patch", None)
        if box is not None:
            todo.append(box)
    return out


def _never_replayed(unit, inside) -> bool:
    """Artists whose pixels depend on more than their own state, or that Agg composites;
    ``inside``: the unit's subtree."""
    if isinstance(unit, Legend) and unit._loc in (0, "best"):
        return True                # "best" moves the legend away from the current data
    return any(a.get_agg_filter() is not None or a.get_rasterized() for a in inside)


def _unsupported(fig) -> bool:
    """Figures drawn with a full canvas.draw() every time (see the module docstring)."""
    for ax in fig.axes:
        for a in ax.get_children():
            if isinstance(a, (Axes, AxesImage)):
                return True
    return bool(fig.images) or any(isinstance(a, FigureImage) for a in fig.get_children())


_GLYPHS_MAX = 20_000   # glyph bitmaps kept per figure (a few MB at most)


def _cached_glyphs(renderer, cache, gc, x, y, angle, glyphs, boxes):
    """RendererAgg._draw_text_glyphs_and_boxes (matplotlib 3.11) with each glyph's bitmap
    kept: FreeType renders a glyph at the same sub-pixel offset (the 1/64 px remainder of
    its position) into the same bitmap, one whole pixel further per pixel of shift, so a
    kept bitmap drawn at the shifted place gives the same pixels. Rotated text, text with
    rules (mathtext fractions) and aliased text take matplotlib's own path."""
    boxes = list(boxes)
    if angle or boxes or not gc.get_antialiased():
        return RendererAgg._draw_text_glyphs_and_boxes(renderer, gc, x, y, angle, glyphs, boxes)
    if len(cache) > _GLYPHS_MAX:
        cache.clear()
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    load_flags = backend_agg.get_hinting_flag()
    for font, size, glyph_index, slant, extend, dx, dy in glyphs:   # as matplotlib does
        px = round(0x40 * (x + dx * cos - dy * sin))
        py = round(0x40 * (renderer.height - y + dx * sin + dy * cos))
        key = (id(font), size, renderer.dpi, glyph_index, slant, extend, px & 63, py & 63,
               load_flags)
        kept = cache.get(key)
        if kept is None:
            font.set_size(size, renderer.dpi)
            font._set_transform((0x10000 * np.array([[cos, -sin], [sin, cos]])
                                 @ [[extend, extend * slant], [0, 1]]).round().astype(int),
                                [px, py])
            bitmap = font._render_glyph(glyph_index, load_flags, _RENDER_NORMAL)
            kept = cache[key] = (bitmap.buffer.copy(), bitmap.left - (px >> 6),
                                 bitmap.top - (py >> 6), font)   # font: keeps its id unique
        buffer, left, top, _ = kept
        renderer._renderer.draw_text_image(buffer, left + (px >> 6),
                                           int(renderer.height) - top - (py >> 6)
                                           + buffer.shape[0], 0, gc)


try:   # matplotlib >= 3.11 renders text glyph by glyph; older versions keep their own path
    from matplotlib.ft2font import RenderMode
    _RENDER_NORMAL = RenderMode.NORMAL
    _GLYPH_CACHE = hasattr(RendererAgg, "_draw_text_glyphs_and_boxes")
except ImportError:
    _GLYPH_CACHE = False


class _Redrawer:
    """Redraws ``fig`` (a matplotlib Figure on an Agg canvas) exactly as
    ``fig.canvas.draw()`` would, drawing only the artists that changed since.

    Call :meth:`draw` after changing artists; ``stats`` counts what the last call did.
    """

    def __init__(self, fig):
        self.fig = checks.instance("fig", fig, Figure)
        if not hasattr(fig.canvas, "copy_from_bbox") or not hasattr(fig.canvas, "get_renderer"):
            raise TypeError("fig must be drawn by an Agg canvas (FigureCanvasAgg), got "
                            f"{type(fig.canvas).__name__}")
        self._order, self._calls, self._key, self._own, self._agg = None, {}, None, False, None
        self._inside, self._never = {}, {}   # per unit: its subtree, never replayed
        self._prefix = {}   # index of the first unit drawn -> the canvas before it
        self._outside = False
        self.stats = {"full": 0, "drawn": 0, "replayed": 0}
        fig.canvas.mpl_connect("draw_event", self._on_draw_event)

    def _on_draw_event(self, event):
        if not self._own:
            self._outside = True   # stale flags were reset by someone else's full draw

    def _units(self):
        fig = self.fig
        units = [a for ax in fig.axes for a in ax.get_children()]
        return units + [a for a in fig.get_children() if not isinstance(a, Axes)]

    def _state_key(self, renderer):
        fig = self.fig
        return (fig.canvas.get_width_height(), fig.dpi, renderer.width, renderer.height,
                tuple((tuple(ax.get_position().bounds), tuple(ax.viewLim.bounds),
                       ax.get_xscale(), ax.get_yscale(), ax.axison, ax.get_frame_on())
                      for ax in fig.axes),
                tuple((id(u), u.get_animated()) for u in self._units()))

    def draw(self) -> None:
        """Bring the canvas up to date (same pixels as ``fig.canvas.draw()``)."""
        canvas = self.fig.canvas
        renderer = canvas.get_renderer()
        engine = self.fig.get_layout_engine()
        if engine is not None and self.fig.axes:   # as Figure.draw: it may move the axes
            engine.execute(self.fig)
        key = self._state_key(renderer)
        if (self._order is None or key != self._key or self._outside
                or _unsupported(self.fig)):
            self._full(canvas, key)
            return
        stale = [u for u in self._order if id(u) not in self._calls
                 or self._never[id(u)] or any(a.stale for a in self._inside[id(u)])]
        if not stale:
            self.stats = {"full": 0, "drawn": 0, "replayed": 0}
            return
        stale_ids = {id(u) for u in stale}
        if renderer._renderer is not self._agg:    # a new renderer: record everything again
            self._full(canvas, key)
            return
        first = min(i for i, u in enumerate(self._order) if id(u) in stale_ids)
        # the pixels of the units drawn before the first stale one, kept per such index
        # (exact: restore_region copies the buffer back); a cache holding a unit drawn
        # again now is dropped below
        if first in self._prefix:
            canvas.restore_region(self._prefix[first])
        else:
            renderer.clear()
            self._replay(self._order[:first])
            self._prefix[first] = canvas.copy_from_bbox(self.fig.bbox)
        drawn = 0
        for unit in self._order[first:]:
            if id(unit) in stale_ids:
                self._record(unit, renderer, lambda u=unit: u.draw(renderer))
                drawn += 1
            else:
                self._replay([unit])
        self._prefix = {k: v for k, v in self._prefix.items() if k <= first}
        self.stats = {"full": 0, "drawn": drawn, "replayed": len(self._order) - drawn}

    def _replay(self, units):
        """Issue the recorded Agg primitives of ``units`` again, in order."""
        for unit in units:
            for name, args in self._calls[id(unit)]:
                getattr(self._agg, name)(*args)

    @staticmethod
    def _swap(renderer, agg):
        """Make ``renderer`` (a RendererAgg) draw through ``agg``; returns what it had."""
        old = renderer._renderer
        renderer._renderer = agg
        for name in _BOUND:
            setattr(renderer, name, getattr(agg, name))
        return old

    def _record(self, unit, renderer, draw):
        """Run ``draw`` with the Agg calls recorded as ``unit``'s; clear its stale flags."""
        rec = _Recorder(self._agg)
        old = self._swap(renderer, rec)
        try:
            draw()
        finally:
            self._swap(renderer, old)
        # what the unit holds now (an Axis's ticks are made by its draw): listed once per
        # recording, as walking it costs more than replaying it
        inside = self._inside[id(unit)] = _subtree(unit)
        self._never[id(unit)] = _never_replayed(unit, inside)
        if rec.ok:
            self._calls[id(unit)] = rec.calls
        else:
            self._calls.pop(id(unit), None)
        for a in inside:
            a.stale = False

    def _full(self, canvas, key):
        """A full canvas.draw(), recording each unit's primitives and the drawing order."""
        units = self._units()
        order = []
        renderer = canvas.get_renderer()
        self._calls, self._inside, self._never, self._prefix = {}, {}, {}, {}
        if _GLYPH_CACHE and "_draw_text_glyphs_and_boxes" not in vars(renderer):
            renderer._draw_text_glyphs_and_boxes = partial(_cached_glyphs, renderer, {})

        def wrap(unit):
            def draw(r, _u=unit):
                order.append(_u)
                self._record(_u, renderer, lambda: type(_u).draw(_u, r))
            return draw

        for u in units:
            u.draw = wrap(u)
        self._agg = renderer._renderer
        glue = _Recorder(self._agg, strict=False)   # primitives outside every unit: none expected
        self._swap(renderer, glue)
        self._own = True
        try:
            canvas.draw()
        finally:
            self._own = False
            self._swap(renderer, self._agg)
            for u in units:
                del u.draw
        supported = not glue.calls and glue.ok and not _unsupported(self.fig)
        self._order = order if supported else None
        self._key, self._outside = self._state_key(renderer), False
        self.stats = {"full": 1, "drawn": len(order), "replayed": 0}
