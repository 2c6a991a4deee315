"""lib.widgets, lib.sliders, lib.controls and lib.site_figure (the slider mechanism) refuse
bad input by name, before
any work; a compute that crashes never leaves a stale figure claiming the new values."""

import functools
import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from contracts import INF, NAN, Case, parametrize
from lib import controls, site_figure, sliders, widgets
from lib.widgets import ComputeFailed, InteractiveFigure, Slider


@pytest.fixture(autouse=True)
def live(monkeypatch, tmp_path):
    monkeypatch.delenv("NORMBOOK_BUILD", raising=False)
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NORMBOOK_SCALE", "cpu")


def line_of(a):
    return np.arange(3) * a


def draw_line(fig):
    ax = fig.subplots()
    ax.set(xlim=(0, 2), ylim=(0, 10))
    line, = ax.plot([0, 1, 2], [0, 0, 0])
    return lambda res: line.set_ydata(res)


def eta_slider(**kw):
    return Slider("eta", "η", 0.1, 2.0, **{"default": 0.5, "grid": 2, **kw})


@functools.cache
def ifig():
    """One cheap live figure (one slider, two grid points) shared by the cases."""
    return InteractiveFigure(lambda eta: line_of(eta), draw_line, [eta_slider()])


@functools.cache
def svg_and_line():
    fig = Figure()
    line, = fig.subplots().plot([0, 1], [0, 1])
    return fig, line, site_figure.render_svg(fig, [line], "f")


NOT_FIGURES = st.sampled_from([None, 3, "fig", [], object()])
NOT_IFIGS = st.sampled_from([None, 3, "fig", Figure(), object()])
NOT_ARTIST_LISTS = st.sampled_from([None, 3, "ab", [1], [None], ["line"]])
NOT_SLIDER_LISTS = st.sampled_from([None, 3, "eta", [], [3], ["eta"],
                                     [Slider("eta", "η", 0.1, 2.0, default=0.5)] * 2])
BAD_GRIDS = st.one_of(st.integers(max_value=1), st.sampled_from([2.5, 3.0, "3", True, NAN, INF]))

CASES = [
    Case(Slider, lambda: dict(name="eta", label="η", min=1e-3, max=2.0, default=0.1, log=True,
                              grid=3),
         {"name": st.sampled_from(["", "1x", "a b", "eta-1", None, 3, b"eta"]),
          "label": st.sampled_from([None, 3, b"x"]),
          "min": "finite", "max": "finite", "default": "finite",
          "log": "bool", "integer": "bool", "grid": BAD_GRIDS}),
    # an integer slider: its ends and default are integers (no silent rounding of 40.5)
    Case(Slider, lambda: dict(name="width", label="m", min=40, max=1000, default=200, log=True,
                              integer=True, grid=3),
         {"min": st.sampled_from([40.0, 40.5, NAN, "40", True, None]),
          "max": st.sampled_from([1000.0, INF, "1000", None]),
          "default": st.sampled_from([200.5, 200.0, NAN, "200"])}),
    Case(InteractiveFigure, lambda: dict(compute=lambda eta: line_of(eta), draw=draw_line,
                                         sliders=[eta_slider()], title="t", expensive=False,
                                         figsize=(3, 2), cache_name="ok"),
         {"compute": st.sampled_from([3, None, "f", lambda x: x, lambda: 0, lambda eta, b: 0]),
          "draw": st.sampled_from([3, None, "f", lambda fig: None, lambda fig: 3]),
          "sliders": st.sampled_from([[], None, eta_slider(), [1], ["eta"], "eta",
                                      [eta_slider(), eta_slider()], {"eta": 1}]),
          "title": st.sampled_from([None, 3, b"t"]),
          "expensive": "bool",
          "figsize": st.sampled_from([(0, 2), (-1, 2), (NAN, 2), (INF, 2), "big", (3,),
                                      (1, 2, 3), 3, [[1, 2]]]),
          "cache_name": st.sampled_from([3, "", "a/b", "../x", "é", b"ok"])}),
    Case(site_figure.tracked_artists, lambda: dict(fig=Figure()), {"fig": NOT_FIGURES}),
    Case(site_figure.hidden, lambda: dict(artists=[svg_and_line()[1]]),
         {"artists": st.one_of(NOT_ARTIST_LISTS, st.just(svg_and_line()[1]))}),
    Case(site_figure.render_svg, lambda: dict(fig=svg_and_line()[0], artists=[svg_and_line()[1]],
                                              prefix="f"),
         {"fig": NOT_FIGURES, "artists": NOT_ARTIST_LISTS,
          "prefix": st.sampled_from([None, 3, "", "1a", "a b", "a_b", 'f"'])}),
    Case(site_figure.fragments, lambda: dict(svg=svg_and_line()[2], prefix="f", n=1),
         {"svg": st.sampled_from([None, 3, "", "<svg></svg>", '<svg><g id="f-0"><g></svg>']),
          "prefix": st.sampled_from([None, 3, "g", ""]),
          "n": "count"}),
    Case(site_figure.frames, lambda: dict(ifig=ifig(), bar=None),
         {"ifig": NOT_IFIGS, "bar": st.sampled_from([3, "bar", object()])}),
    Case(site_figure.site_html, lambda: dict(ifig=ifig(), bar=None, budget=None),
         {"ifig": NOT_IFIGS, "bar": st.sampled_from([3, "bar"]),
          "budget": st.one_of(st.integers(max_value=0), st.sampled_from([2.5, "1e6", True, NAN]))}),
    Case(site_figure.static_html, lambda: dict(ifig=ifig()), {"ifig": NOT_IFIGS}),
    Case(site_figure.describe, lambda: dict(title="t", labels=["η", "κ"], values=["0.1", "10"]),
         {"title": st.sampled_from([None, 3, b"t"]),
          "labels": st.sampled_from([None, 3, "η", [3], [None], [b"x", "κ"]]),
          "values": st.sampled_from([None, 0.1, "0.1", [0.1, 10], [], ["0.1"],
                                     ["0.1", "10", "1"]])}),
    Case(sliders.slider_list, lambda: dict(sliders=[eta_slider()]), {"sliders": NOT_SLIDER_LISTS}),
    Case(sliders.site_grids, lambda: dict(sliders=[eta_slider()], title="t"),
         {"sliders": NOT_SLIDER_LISTS, "title": st.sampled_from([None, 3, b"t"])}),
]

EXEMPT = {
    widgets.build_mode: "takes no arguments (reads NORMBOOK_BUILD)",
    widgets.ComputeError: "a str subclass tagging a ValueError's message; any text is valid",
    widgets.ComputeFailed: "an exception type lib raises itself, never built from user input",
    controls.LiveControls: "a mixin of InteractiveFigure with no constructor arguments; its "
                           "set() is checked through InteractiveFigure's tests",
}

test_bad_input_is_refused_by_name = parametrize(CASES)


# --- a compute that raises something other than ValueError ---------------------------------
def crashing(eta):
    if eta > 1:
        return 1 / 0            # a bug in compute, not a bad configuration
    return line_of(eta)


def test_a_compute_crash_after_the_first_draw_is_a_note_not_a_stale_figure():
    fig = InteractiveFigure(crashing, draw_line, [eta_slider()])
    line = fig.figure.axes[0].lines[0]
    fig.set(eta=1.5)                                  # no raw ZeroDivisionError
    assert "Not computed: compute(eta=1.5) raised ZeroDivisionError" in fig.note
    assert fig.result is None and not line.get_visible()   # blanked: nothing stale shown
    assert "ZeroDivisionError" in fig.html()
    slider = fig.widget and fig._widgets["rows"]["eta"][0]
    slider.value = 0.7                                # a move to a good value draws again
    assert fig.note == "" and line.get_visible()
    np.testing.assert_allclose(line.get_ydata(), line_of(0.7))
    slider.value = 1.8                                # the live widget path notes it too
    assert "compute(eta=1.8" in fig._widgets["note"].value and not line.get_visible()


def test_a_compute_crash_at_the_defaults_or_in_a_build_names_the_values(monkeypatch):
    with pytest.raises(ComputeFailed, match=r"compute\(eta=1\.5\) raised ZeroDivisionError") as info:
        InteractiveFigure(crashing, draw_line, [eta_slider(default=1.5)])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    monkeypatch.setenv("NORMBOOK_BUILD", "1")         # the site grid [0.1, 0.5, 2.0] hits it
    with pytest.raises(ComputeFailed, match=r"compute\(eta=2\.0\) raised ZeroDivisionError"):
        InteractiveFigure(crashing, draw_line, [eta_slider()])


def test_a_crash_is_not_cached_for_expensive_figures():
    calls = []

    def flaky(eta):
        calls.append(eta)
        if len(calls) == 2:
            raise RuntimeError("out of memory")       # transient: must not be stored
        return line_of(eta)

    fig = InteractiveFigure(flaky, draw_line, [eta_slider()], expensive=True, cache_name="flaky")
    fig.set(eta=0.7)
    assert "RuntimeError: out of memory" in fig.note
    fig.set(eta=0.7)
    assert fig.note == "" and len(calls) == 3


# --- a typed string names no slider -----------------------------------------------------
def test_a_string_value_is_refused_naming_the_slider():
    fig = InteractiveFigure(lambda eta, kappa: line_of(eta), draw_line,
                            [eta_slider(), Slider("kappa", "κ", 1.0, 10.0, default=2.0)])
    with pytest.raises(TypeError, match=r"^eta must be a finite number, got str '0\.1'"):
        fig.set(eta="0.1")
    with pytest.raises(TypeError, match="^kappa must be a finite number"):
        fig.set(eta=0.3, kappa="2")                  # checked before anything moves
    assert fig.values == {"eta": 0.5, "kappa": 2.0} and fig.note == ""
    with pytest.raises(TypeError, match=r"^slider eta: min must be a finite number, got str"):
        Slider("eta", "η", "0.001", 2.0, default=0.1)
    with pytest.raises(TypeError, match=r"^slider eta: default must be a finite number"):
        Slider("eta", "η", 0.001, 2.0, default="0.1")


def test_an_integer_slider_takes_integers():
    fig = InteractiveFigure(lambda width: line_of(width / 100), draw_line,
                            [Slider("width", "m", 40, 1000, default=200, integer=True, grid=3)])
    with pytest.raises(TypeError, match="^width must be an integer"):
        fig.set(width=200.5)                         # no silent rounding
    fig.set(width=2000)                               # an integer out of range: clamped, noted
    assert fig.values["width"] == 1000 and "m = 2000 is outside [40, 1000]" in fig.note


@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(bad=st.one_of(st.text(max_size=5), st.sampled_from([None, NAN, INF, -INF, True, [0.3],
                                                            1j, np.bool_(False)])))
def test_set_refuses_every_non_number_by_name(bad):
    fig = ifig()
    before = dict(fig.values)
    with pytest.raises((TypeError, ValueError), match="^eta must be a finite number"):
        fig.set(eta=bad)
    assert fig.values == before


def test_a_nan_typed_in_the_text_box_is_a_note_not_a_raise():
    fig = InteractiveFigure(lambda eta: line_of(eta), draw_line, [eta_slider()])
    text = fig.widget and fig._widgets["rows"]["eta"][1]
    text.value = float("nan")
    assert "eta must be a finite number, got nan; keeping 0.5" in fig._widgets["note"].value
    assert fig.values["eta"] == 0.5 and text.value == 0.5


# --- the site grid is checked before anything is computed --------------------------------
def test_a_400_by_400_grid_is_refused_before_computing(monkeypatch):
    monkeypatch.setenv("NORMBOOK_BUILD", "1")
    calls = []

    def compute(eta, kappa):
        calls.append((eta, kappa))
        return line_of(eta)

    sliders = [Slider("eta", "η", 1e-3, 2.0, default=0.1, log=True, grid=400),
               Slider("kappa", "κ", 1.0, 1e3, default=10.0, log=True, grid=400)]
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"sliders eta \(400 points\) × kappa \(400 points\) make "
                                         r"160000 site frames, over the budget of 2000 frames"):
        InteractiveFigure(compute, draw_line, sliders, title="big")
    assert time.perf_counter() - start < 1.0 and calls == []
    # a grid too big to even list is refused from its declared size, without building it
    huge = [Slider("eta", "η", 1e-3, 2.0, default=0.1, log=True, grid=10**9)]
    with pytest.raises(ValueError, match=r"eta \(1000000000 points\)"):
        InteractiveFigure(compute, draw_line, huge + sliders[1:])
    assert calls == []


def test_frames_refuses_a_big_grid_before_computing(monkeypatch):
    fig = InteractiveFigure(lambda eta: line_of(eta), draw_line, [eta_slider(grid=5)])
    monkeypatch.setattr(site_figure, "MAX_FRAMES", 3)
    monkeypatch.setattr(fig, "precompute", lambda grids: pytest.fail("computed anyway"))
    with pytest.raises(ValueError, match=r"eta \(5 points\) make 5 site frames, over the budget of 3"):
        site_figure.frames(fig)


# --- slider definitions -------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(grid=0), ValueError, r"^slider x: grid must be an integer >= 2, got 0"),    # no grid
    (dict(grid=1), ValueError, r"^slider x: grid must be an integer >= 2, got 1"),
    (dict(min=NAN), ValueError, r"^slider x: min must be a finite number, got nan"),
    (dict(max=NAN), ValueError, r"^slider x: max must be a finite number, got nan"),
    (dict(default=NAN), ValueError, r"^slider x: default must be a finite number, got nan"),
    (dict(min=2.0, max=1.0), ValueError, r"^slider x: need min < max, got \[2.0, 1.0\]"),
    (dict(min=1.0, max=1.0, default=1.0), ValueError, r"need min < max"),
    (dict(default=3.0), ValueError, r"^slider x: default 3.0 is outside \[0.0, 1.0\]"),
    (dict(min=1, max=5, default=3, integer=True, grid=10), ValueError,
     r"^slider x: grid=10 points do not fit the 5 integers in \[1, 5\]"),
    (dict(name="x y"), ValueError, r"^name must be a Python identifier"),
    (dict(name=None), TypeError, r"^name must be a string"),
])
def test_bad_slider_definitions_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        Slider(**{"name": "x", "label": "x", "min": 0.0, "max": 1.0, "default": 0.5, **kwargs})


def test_grids_that_repeat_values_are_refused():
    rounding = Slider("n", "n", 1, 1000, default=1, log=True, integer=True, grid=17)
    with pytest.raises(ValueError, match=r"^slider n: its grid of 17 points from 1 to 1000 repeats"):
        rounding.grid_values()                        # 1, 1.5, 2.4, ... round to 1, 2, 2, ...
    narrow = Slider("x", "x", 1.0, math.nextafter(1.0, 2.0), default=1.0, grid=3)
    with pytest.raises(ValueError, match="^slider x: its grid of 3 points"):
        narrow.grid_values()


def test_a_default_off_the_grid_is_added_to_it_and_values_are_canonical():
    s = Slider("x", "x", np.float32(0.5), 2, default=np.float64(0.7), grid=2)
    assert s.grid_values() == [0.5, 0.7, 2.0]         # the site starts at the default
    assert type(s.min) is float and type(s.max) is float and type(s.default) is float
    n = Slider("n", "n", np.int64(1), 5, default=3, integer=True)
    assert type(n.min) is int and n.clamp(7.4) == 5


def test_unknown_slider_names_are_refused_by_name():
    fig = ifig()
    with pytest.raises(ValueError, match=r"^unknown slider\(s\) \['lr'\]; sliders are \['eta'\]"):
        fig.set(eta=0.3, lr=1.0)
    with pytest.raises(ValueError, match=r"^values must have exactly the keys \['eta'\]"):
        fig.apply({"lr": 1.0})
    with pytest.raises(ValueError, match=r"^grids must hold one list of values per slider"):
        fig.precompute([[0.1], [0.2]])


def test_describe_names_a_figure_by_title_and_values():
    """The accessible name the site script rebuilds on every slider move (same format)."""
    assert site_figure.describe("GD", ["η", "κ"], ["0.1", "10"]) == "GD: η = 0.1, κ = 10"
    assert site_figure.describe("", ["η"], ["2"]) == f"{site_figure.UNTITLED}: η = 2"
    page = site_figure.site_html(ifig())
    assert '<svg role="img" aria-label="' in page and 'aria-valuetext="' in page
    assert 'd.t + ": " + said.join(", ")' in page and 'd.l[i] + " = " + d.v[i][j]' in page
