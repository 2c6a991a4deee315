"""The live kernel's controls of an interactive figure: a box of standard ipywidgets.

Each slider comes with a text box for typing a value (clamped into the slider's range,
with a note); the figure is a PNG drawn by Agg into an ``ipywidgets.Image``, with the
note and, for expensive figures, a progress bar below. :class:`LiveControls` is the part
of :class:`lib.widgets.InteractiveFigure` that builds and answers these widgets; the
figure supplies ``sliders``, ``values``, ``apply``, ``png`` and ``note``.

While a move computes, the bar shows how far it has got: a compute (or the library code
it calls) reports its progress with :func:`report`, which moves the bar of the figure
computing now and does nothing anywhere else (builds, scripts, tests, cache hits).

A live move first takes the kernel's heap out of the garbage collector's scans
(:func:`hold_heap`) until the reader runs a cell again.
"""

import contextlib
import gc
import html
import math
from functools import partial

from lib import checks
from lib.sliders import build_mode

BAR_STEPS = 100   # the bar's resolution: the frontend hears of at most 100 changes a move
_listener = None  # fraction -> None: the bar of the live move computing now, if any


def report(done, total) -> None:
    """Tell the live figure computing now that ``done`` of ``total`` units of its work
    are finished (training steps, grid points, networks...), so its progress bar advances.

    ``total`` > 0 and 0 <= ``done``; a ``done`` above ``total`` counts as all of it. Outside
    a live move (a build, a script, a test, a figure's default draw) it does nothing.
    """
    total = checks.positive("total", total)
    done = checks.nonnegative("done", done)
    if _listener is not None:
        _listener(min(done / total, 1.0))


def reporting(listener):
    """A context in which :func:`report` calls ``listener(fraction)`` with the fraction of
    the work done (0 to 1); the previous listener (or none) is restored on exit, also
    after an error. ``listener``: a function of one number, or None to silence reports."""
    if listener is not None:
        checks.function("listener", listener)
    return _reporting(listener)


def part(start, stop):
    """A context in which :func:`report`'s fractions fill [``start``, ``stop``] of the
    enclosing report's bar: a compute made of several pieces (0 <= start <= stop <= 1)
    lets each piece report its own work from 0 to all of it."""
    start, stop = checks.fraction("start", start, hi_open=False), \
        checks.fraction("stop", stop, hi_open=False)
    if stop < start:
        raise ValueError(f"stop must be >= start = {start:g}, got {stop:g}")
    outer = _listener
    return _reporting(None if outer is None else
                      lambda fraction: outer(start + fraction * (stop - start)))


@contextlib.contextmanager
def _reporting(listener):
    global _listener
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous


_thaw_hooked = False   # hold_heap registered thaw_heap with IPython (once per process)


def _ipython():
    """The running IPython shell, or None (a script, a test, no IPython installed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def hold_heap() -> bool:
    """Before a live move in an IPython kernel: move every object the kernel holds now
    into the garbage collector's permanent generation (``gc.freeze``), so a collection
    during the move scans only the move's own objects. After a chapter has run, the
    kernel holds about 425 000 objects (BNGD chapter), a full collection of them took
    0.44 s, and one fell inside a move every few moves (measured). The next cell the
    reader runs thaws them again (:func:`thaw_heap`, an IPython ``pre_run_cell``
    callback), so cycles that a cell's work leaves behind are collected as before; only
    what a series of moves leaves in cycles waits for that cell. Returns whether the
    heap was held: outside IPython (scripts, tests) it does nothing."""
    global _thaw_hooked
    shell = _ipython()
    if shell is None:
        return False
    if not _thaw_hooked:
        shell.events.register("pre_run_cell", thaw_heap)
        _thaw_hooked = True
    gc.freeze()
    return True


def thaw_heap(info=None) -> None:
    """Give the objects :func:`hold_heap` held back to the garbage collector
    (``gc.unfreeze``); ``info``: what IPython passes a ``pre_run_cell`` callback."""
    gc.unfreeze()


class LiveControls:
    """Sliders, text boxes, image and note of a figure in a live kernel (a mixin).

    The widgets are built on first use of :attr:`widget`; until then :meth:`set` only
    redraws the figure.
    """

    _widgets = None   # dict of the ipywidgets once built: box, rows, image, note, ...

    def set(self, **values):
        """Move sliders to ``values`` and redraw.

        Each value is a finite number (an integer for an integer slider) for a known slider
        name, else a TypeError/ValueError naming the slider; values outside the range are
        clamped into it with a note. Every value is checked before any slider moves.
        """
        unknown = set(values) - set(self.names)
        if unknown:
            raise ValueError(f"unknown slider(s) {sorted(unknown)}; sliders are {self.names}")
        moved = [(s, s.check(values[s.name])) for s in self.sliders if s.name in values]
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
        if self._widgets:   # a live move: no collection of the whole heap during it
            hold_heap()
        bar = self._widgets and self._widgets["progress"] if self.expensive else None
        if bar:
            bar.layout.visibility, bar.value = "visible", 0
        try:
            with self._widgets["out"] if self._widgets else contextlib.nullcontext(), \
                    reporting(partial(_advance, bar) if bar else None):
                self.apply(self.values)
        finally:   # hidden again whatever happened: a bar left showing claims work going on
            if bar:
                bar.value, bar.layout.visibility = BAR_STEPS, "hidden"
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
        bar = W.IntProgress(value=0, min=0, max=BAR_STEPS, description="computing…",
                            layout=W.Layout(visibility="hidden"))
        out = W.Output()
        head = [W.HTML(f"<b>{html.escape(self.title)}</b>")] if self.title else []
        extra = [bar, out] if self.expensive else []
        box = W.VBox([*head, image, *boxes, note, *extra])
        return {"box": box, "rows": rows, "image": image, "note": note, "progress": bar, "out": out}


def _advance(bar, fraction: float) -> None:
    """Move ``bar`` (an IntProgress of :data:`BAR_STEPS`) to ``fraction``, never back:
    an unchanged value sends nothing to the frontend."""
    bar.value = max(bar.value, int(fraction * BAR_STEPS))
