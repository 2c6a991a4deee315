"""Live redraws of an interactive figure: draw only what changed, replay the rest.

:class:`Redrawer` gives the same pixels as a full ``canvas.draw()`` at a fraction of its
cost on a slider move, and :func:`png_rgb` writes the canvas as a PNG quickly; both serve
:class:`lib.widgets.InteractiveFigure` in a live kernel (the built site uses SVG frames,
:mod:`lib.site_figure`).
"""

import copy
import math
import struct
import sys
import zlib
from functools import partial

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import GraphicsContextBase
from matplotlib.backends import backend_agg
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, FigureImage
from matplotlib.legend import Legend
from matplotlib.path import Path
from matplotlib.transforms import Transform

from lib import checks

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_rgb(rgba: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of ``rgba`` (height, width, 4), alpha dropped: no row filter and
    zlib level 1. Pillow's encoder tries every PNG filter on every row, which took 2x
    longer for a 1000x380 figure (the live figure's PNG is made on every slider move)."""
    if not (isinstance(rgba, np.ndarray) and rgba.dtype == np.uint8 and rgba.ndim == 3
            and rgba.shape[2] == 4 and rgba.shape[0] > 0 and rgba.shape[1] > 0):
        raise TypeError(f"rgba must be a non-empty uint8 array (height, width, 4), got "
                        f"{getattr(rgba, 'dtype', type(rgba).__name__)} "
                        f"{getattr(rgba, 'shape', '')}")
    h, w = rgba.shape[:2]
    rows = np.empty((h, 1 + 3 * w), np.uint8)
    rows[:, 0] = 0                                    # filter type 0 (none) for every row
    rgb = rows[:, 1:].reshape(h, w, 3)
    if sys.byteorder == "little" and rgba.flags.c_contiguous:
        # a pixel as one 32-bit word, R its low byte: three word-wide copies instead of one
        # byte-strided copy (0.6 ms against 3.7 ms for an 800x440 figure)
        word = rgba.view(np.uint32)[..., 0]
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = word, word >> 8, word >> 16
    else:
        rgb[...] = rgba[:, :, :3]
    head = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)   # 8 bits, RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", head)
            + _png_chunk(b"IDAT", zlib.compress(rows, 1)) + _png_chunk(b"IEND", b""))


# --- live redraws: draw what changed, replay the rest ---------------------------------
# A live slider changes a few artists (lines, a note); the rest of the figure (axes, tick
# labels, legends, texts) costs most of a full ``canvas.draw()``, mostly laying out and
# rasterising text. :class:`Redrawer` records, per top-level artist of the figure (each
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


class Redrawer:
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
        self._hot = set()   # ids of the units changed at the last redraw
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
        changed = {id(u) for u in self._order
                   if self._never[id(u)] or any(a.stale for a in self._inside[id(u)])}
        stale = [u for u in self._order if id(u) in changed or id(u) not in self._calls]
        hot, self._hot = self._hot, changed
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
                if id(unit) in hot and id(unit) in changed:
                    self._draw_unrecorded(unit, renderer)
                else:
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

    def _draw_unrecorded(self, unit, renderer):
        """Draw ``unit`` without recording it: it changed at the last redraw too, as a
        unit a slider drives does on every move, so a recording would go unused (copying
        each primitive's arguments costs about as much as drawing). Its old recording is
        dropped; the next redraw that finds it unchanged records it again."""
        self._calls.pop(id(unit), None)
        unit.draw(renderer)
        for a in self._inside[id(unit)]:
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
        self._key, self._outside, self._hot = self._state_key(renderer), False, set()
        self.stats = {"full": 1, "drawn": len(order), "replayed": 0}
