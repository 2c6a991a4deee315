"""lib.controls: the live progress bar of expensive figures follows what compute reports,
and never stays visible after a move, whatever happened in it."""

import numpy as np
import pytest

from lib import controls
from lib.widgets import InteractiveFigure, Slider


@pytest.fixture(autouse=True)
def live(monkeypatch, tmp_path):
    monkeypatch.delenv("NORMBOOK_BUILD", raising=False)
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path / "cache"))


def _figure(compute):
    """An expensive figure of one slider ``x`` drawing compute's result as one line."""
    def draw(fig):
        ax = fig.subplots()
        ax.set(xlim=(0, 4), ylim=(0, 10))
        line, = ax.plot([], [])
        return lambda r: line.set_data(np.arange(len(r)), r)
    fig = InteractiveFigure(compute, draw, [Slider("x", "x", 0.0, 1.0, default=0.5, grid=3)],
                            expensive=True, cache_name="test-controls")
    fig.widget                                          # build the live widgets
    bar, seen = fig._widgets["progress"], []
    bar.observe(lambda c: seen.append((c.new, bar.layout.visibility)), "value")
    return fig, bar, seen


def test_bar_advances_with_each_reported_chunk_then_hides():
    def compute(x):
        for k in range(1, 5):        # four chunks of work, each reported as it finishes
            controls.report(k, 4)
        return np.full(5, x)
    fig, bar, seen = _figure(compute)
    slider = fig._widgets["rows"]["x"][0]
    slider.value = 0.7                                  # a first move leaves the bar full
    seen.clear()
    slider.value = 0.3                                  # a reader's move
    assert seen == [(0, "visible"), (25, "visible"), (50, "visible"), (75, "visible"),
                    (100, "visible")]
    assert bar.layout.visibility == "hidden" and fig.error is None
    np.testing.assert_array_equal(fig.figure.axes[0].lines[0].get_ydata(), np.full(5, 0.3))


def test_bar_never_goes_back_and_a_cache_hit_only_starts_and_ends():
    def compute(x):
        controls.report(3, 4)
        controls.report(1, 4)        # out of order: the bar stays at 75
        controls.report(9, 4)        # over the total counts as all of it
        return np.full(5, x)
    fig, bar, seen = _figure(compute)
    slider = fig._widgets["rows"]["x"][0]
    slider.value = 0.3
    assert [v for v, _ in seen] == [75, 100]            # the bar starts at 0
    slider.value = 0.5                                  # default: cached, nothing reported
    seen.clear()
    slider.value = 0.3                                  # cached now as well
    assert [v for v, _ in seen] == [0, 100] and bar.layout.visibility == "hidden"


@pytest.mark.parametrize("failure", [ValueError, RuntimeError, KeyboardInterrupt])
def test_bar_hidden_after_a_failed_move(failure):
    def compute(x):
        if x != 0.5:                 # the default draws; the move fails half-way
            controls.report(1, 2)
            raise failure("boom")
        return np.full(5, x)
    fig, bar, seen = _figure(compute)
    slider = fig._widgets["rows"]["x"][0]
    if failure is KeyboardInterrupt:  # not a compute error: it propagates out of the move
        with pytest.raises(KeyboardInterrupt):
            slider.value = 0.3
    else:                             # a compute error: a note under the figure
        slider.value = 0.3
        assert "boom" in fig.error
    assert (50, "visible") in seen and bar.layout.visibility == "hidden"
    assert controls._listener is None                   # no report reaches the old bar
    before = len(seen)
    controls.report(1, 1)
    assert len(seen) == before


def test_report_outside_a_move_does_nothing_and_reporting_restores():
    heard = []
    controls.report(1, 2)                               # no listener: nothing happens
    with controls.reporting(heard.append):
        controls.report(1, 4)
        with controls.reporting(None):                  # silenced inside
            controls.report(2, 4)
        controls.report(4, 4)
    controls.report(3, 4)
    assert heard == [0.25, 1.0] and controls._listener is None


@pytest.mark.parametrize("done, total, match", [(1, 0, "total"), (-1, 2, "done"),
                                                (float("nan"), 2, "done"), (1, "2", "total")])
def test_report_refuses_bad_counts(done, total, match):
    with pytest.raises((ValueError, TypeError), match=match):
        controls.report(done, total)


def test_parts_fill_their_share_of_the_enclosing_report():
    heard = []
    with controls.reporting(heard.append):
        with controls.part(0.0, 0.5):
            controls.report(1, 2)
            controls.report(2, 2)
        with controls.part(0.5, 1.0):
            with controls.part(0.5, 1.0):     # nested: the last quarter
                controls.report(0, 4)
    with controls.part(0.2, 0.4):             # no listener: still nothing
        controls.report(1, 1)
    np.testing.assert_allclose(heard, [0.25, 0.5, 0.75])
    with pytest.raises(ValueError, match="stop"):
        controls.part(0.5, 0.2)


class _Shell:
    """Stands in for IPython's shell: records the callbacks registered for its events."""
    def __init__(self):
        self.callbacks = []
        self.events = self

    def register(self, event, fn):
        self.callbacks.append((event, fn))


@pytest.fixture
def shell(monkeypatch):
    import gc
    fake = _Shell()
    monkeypatch.setattr(controls, "_ipython", lambda: fake)
    monkeypatch.setattr(controls, "_thaw_hooked", False)
    yield fake
    gc.unfreeze()                      # whatever a test did, the process's heap is scanned again


def test_a_live_move_holds_the_heap_until_the_next_cell(shell):
    """A move in an IPython kernel freezes the heap (a full collection of an executed
    chapter's heap took 0.44 s) and the next cell thaws it. Fails if moves stop
    freezing, if no thaw is registered, or if it is registered on every move."""
    import gc
    gc.unfreeze()
    fig, _, _ = _figure(lambda x: np.full(5, x))
    kept = [object() for _ in range(10)]            # objects alive before the move
    fig._widgets["rows"]["x"][0].value = 0.3
    assert gc.get_freeze_count() >= len(kept)
    fig._widgets["rows"]["x"][0].value = 0.6
    assert [e for e, _ in shell.callbacks] == ["pre_run_cell"]    # registered once
    shell.callbacks[0][1](None)                     # the reader runs a cell
    assert gc.get_freeze_count() == 0


def test_no_heap_held_outside_ipython_or_without_live_widgets(monkeypatch):
    import gc
    gc.unfreeze()
    monkeypatch.setattr(controls, "_ipython", lambda: None)
    assert controls.hold_heap() is False and gc.get_freeze_count() == 0
    fig = InteractiveFigure(lambda x: np.full(5, x), lambda f: (lambda r: None),
                            [Slider("x", "x", 0.0, 1.0, default=0.5)])
    monkeypatch.setattr(controls, "_ipython", _Shell)
    fig.set(x=0.2)                                   # no widgets built: a script's redraw
    assert gc.get_freeze_count() == 0
