"""lib.widgets: one slider mechanism, live (ipywidgets + Agg) and precomputed (site SVG)."""

import math
import re

import numpy as np
import pytest
import torch

from lib import site_figure
from lib.widgets import InteractiveFigure, Slider

from tools.sitekit import demo, site_data  # the intro-like demo figure, shared with bench/


@pytest.fixture(autouse=True)
def live(monkeypatch, tmp_path):
    monkeypatch.delenv("NORMBOOK_BUILD", raising=False)
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NORMBOOK_SCALE", "cpu")


def test_figure_after_set_is_compute_of_those_values():
    fig, ns = demo()
    fig.set(eta=0.3, kappa=5.0)
    expected = ns["compute"](eta=0.3, kappa=5.0).loss.numpy()
    line = fig.figure.axes[0].lines[0]
    np.testing.assert_array_equal(np.asarray(line.get_ydata()), expected)
    np.testing.assert_array_equal(np.asarray(line.get_xdata()), np.arange(61))
    assert fig.values == {"eta": 0.3, "kappa": 5.0}


def test_default_figure_shown_before_any_move():
    fig, ns = demo()
    bundle = fig._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<svg" in bundle["text/html"] and "precomputed" not in bundle["text/html"]
    png = fig._widgets["image"].value
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    line = fig.figure.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_ydata(), ns["compute"](eta=0.1, kappa=10).loss.numpy())


def test_slider_and_text_widgets_redraw_and_clamp():
    fig, _ = demo()
    slider, text = fig.widget and fig._widgets["rows"]["eta"]
    before = fig._widgets["image"].value
    slider.value = 1.5
    assert fig.values["eta"] == 1.5 and fig._widgets["image"].value != before
    text.value = 50.0                                   # typed value outside the range
    assert fig.values["eta"] == 2.0 and slider.value == 2.0
    assert "η = 50 is outside [0.001, 2]; using 2" in fig._widgets["note"].value
    slider.value = 0.5                                  # a slider move clears the note
    assert fig.note == ""


def test_set_clamps_with_note():
    fig, _ = demo()
    fig.set(kappa=0.01)
    assert fig.values["kappa"] == 1 and "κ = 0.01 is outside [1, 1000]; using 1" in fig.note
    with pytest.raises(ValueError, match="unknown slider"):
        fig.set(lr=1.0)


@pytest.mark.parametrize("log", [True, False])
def test_grid_contains_endpoints_and_default(log):
    s = Slider("x", "x", 0.01, 10.0, default=0.3, log=log, grid=5)
    g = s.grid_values()
    assert g[0] == 0.01 and g[-1] == 10.0 and 0.3 in g and g == sorted(g)
    spacing = np.diff(np.log(g) if log else g)
    regular = [v for v in g if v != 0.3]
    assert len(regular) == 5 and len(set(np.round(np.diff(
        np.log(regular) if log else regular), 9))) == 1
    assert np.all(spacing > 0)
    on_grid = Slider("x", "x", 1, 100, default=10, log=True, grid=3)
    assert on_grid.grid_values() == [1, 10, 100]       # default already a grid point
    assert len(Slider("n", "n", 1, 5, default=3, integer=True, grid=5).grid_values()) == 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(min=1, max=1, default=1), "min < max"),
    (dict(min=0, max=1, default=0.5, log=True), "log slider needs min > 0"),
    (dict(min=0, max=1, default=2), "outside"),
    (dict(min=0, max=1, default=0.5, grid=1), "grid must be an integer >= 2"),
])
def test_bad_slider_declarations_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Slider("x", "x", **kwargs)


def first_overflow(eta, kappa, steps=60):
    """Independent float64 recurrence for e_k = w_k − u per eigen-direction.

    Comparing this step with lib's (another code path) is safe: the loss grows by
    (1 − ηκ)² ≈ 4e6 a step, so the loss one step before overflow sits about 4 decades below
    the float64 maximum and one step after about 2.6 decades above it (η = 1.9 or 2, κ = 1000),
    while 60 steps of round-off move it by ~1e-14 relative.
    """
    lam = np.array([1.0, kappa])
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            e = (1 - eta * lam) ** k            # w0 − u = −1 in both directions
            if not np.isfinite(0.5 * np.sum(lam * e * e)):
                return k
    return None


def test_divergence_drawn_with_step(recwarn):
    fig, _ = demo()
    eta, kappa = 1.9, 1000.0                   # η ≫ 2/λ_max = 0.002
    fig.set(eta=eta, kappa=kappa)
    k = first_overflow(eta, kappa)
    assert k is not None
    texts = [t.get_text() for t in fig.figure.axes[0].texts if t.get_visible()]
    assert texts == [f"diverged at step {k}"]
    fig.set(eta=0.01)                          # back below 2/λ_max: the note disappears
    assert not any(t.get_visible() for t in fig.figure.axes[0].texts)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_value_error_in_compute_becomes_a_note():
    def compute(eta):
        if eta > 1:
            raise ValueError("eta > 1 is not a valid configuration")
        return np.arange(3) * eta

    def draw(fig):
        line, = fig.subplots().plot([0, 1, 2], [0, 1, 2])
        return lambda res: line.set_ydata(res)

    fig = InteractiveFigure(compute, draw, [Slider("eta", "η", 0.1, 2.0, default=0.5)])
    fig.set(eta=1.5)
    assert "eta > 1 is not a valid configuration" in fig.note
    assert not fig.figure.axes[0].lines[0].get_visible()      # no stale data shown
    assert "eta &gt; 1 is not a valid" in fig._repr_mimebundle_()["text/html"]
    fig.set(eta=0.7)
    assert fig.note == "" and fig.figure.axes[0].lines[0].get_visible()


def test_an_error_in_update_becomes_a_note_after_the_first_draw():
    def draw(fig):
        line, = fig.subplots().plot([0, 1, 2], [0, 1, 2])

        def update(res):
            if res > 1:
                raise IndexError("no data for this value")
            line.set_ydata(np.arange(3) * res)
        return update

    fig = InteractiveFigure(lambda eta: eta, draw, [Slider("eta", "η", 0.1, 2.0, default=0.5)])
    fig.set(eta=1.5)
    assert "Could not draw this result (IndexError: no data for this value)" in fig.note
    assert not fig.figure.axes[0].lines[0].get_visible()      # no stale data shown
    fig.set(eta=0.7)
    assert fig.note == "" and fig.figure.axes[0].lines[0].get_visible()
    np.testing.assert_allclose(fig.figure.axes[0].lines[0].get_ydata(), [0, 0.7, 1.4])
    with pytest.raises(IndexError):      # at the defaults it is a bug, not a note
        InteractiveFigure(lambda eta: eta, draw, [Slider("eta", "η", 0.1, 2.0, default=1.5)])


def test_update_is_in_place():
    fig, _ = demo()
    ax = fig.figure.axes[0]
    before = [*ax.lines, *ax.texts]
    fig.set(eta=1.9, kappa=1000.0)
    fig.set(eta=0.01, kappa=2.0)
    assert [*ax.lines, *ax.texts] == before and fig.figure.axes == [ax]


def test_update_adding_artists_or_failing_default_is_an_error():
    def draw(fig):
        ax = fig.subplots()
        return lambda res: ax.plot([0, 1], [0, res])  # a new line per move: not in place

    fig = InteractiveFigure(lambda a: a, draw, [Slider("a", "a", 1, 2, default=1)])
    with pytest.raises(RuntimeError, match="not add new ones"):
        fig.set(a=2)

    def compute(a):
        raise ValueError("never valid")
    with pytest.raises(ValueError, match="default slider values"):
        InteractiveFigure(compute, draw, [Slider("a", "a", 1, 2, default=1)])


def test_build_html_has_one_frame_per_grid_point(monkeypatch):
    monkeypatch.setenv("NORMBOOK_BUILD", "1")
    fig, ns = demo()
    page = fig._repr_mimebundle_()["text/html"]
    data = site_data(page)
    sizes = [len(s.grid_values()) for s in fig.sliders]
    assert sizes == [10, 10]                   # 9 grid points + the inserted default
    assert len(data["f"]) == len(data["n"]) == math.prod(sizes)
    assert len(page.encode()) < site_figure.BUDGET_BYTES
    assert site_figure.SITE_NOTE in page and "<svg" in page
    # the default frame's fragments are the ones inlined in the SVG
    row = data["f"][data["k"]]
    for gid, idx in zip(data["g"], row):
        assert data["s"][idx] in page.split(f'<g id="{gid}">', 1)[1]
    # the corner η = 2, κ = 1000 diverges, at the step an independent recurrence gives
    last = data["f"][-1]
    assert any(f"diverged at step {first_overflow(2.0, 1000.0)}<" in data["s"][i] for i in last)
    assert fig._widgets is None or fig._widgets["image"].value == b""


def test_build_budget_and_fixed_limits(monkeypatch):
    monkeypatch.setenv("NORMBOOK_BUILD", "1")
    monkeypatch.setattr(site_figure, "BUDGET_BYTES", 5_000)
    with pytest.raises(ValueError, match="coarser grid"):
        demo(title="t")

    def draw(fig):
        ax = fig.subplots()
        line, = ax.plot([0, 1], [0, 1])
        return lambda res: (line.set_ydata([0, res]), ax.set_ylim(0, res))

    monkeypatch.setattr(site_figure, "BUDGET_BYTES", 1_500_000)
    with pytest.raises(ValueError, match="axis limits changed"):
        InteractiveFigure(lambda a: a, draw, [Slider("a", "a", 1, 2, default=1, grid=2)])


def test_expensive_figures_are_cached(monkeypatch):
    monkeypatch.setenv("NORMBOOK_BUILD", "1")
    calls = []

    def compute(a):
        calls.append(a)
        return torch.tensor([0.0, a])

    def draw(fig):
        ax = fig.subplots()
        ax.set(ylim=(0, 3))
        line, = ax.plot([0, 1], [0, 0])
        return lambda res: line.set_ydata(res.numpy())

    sliders = [Slider("a", "a", 1, 2, default=1, grid=3)]
    first = InteractiveFigure(compute, draw, sliders, expensive=True, cache_name="t-cache")
    assert len(calls) == 3
    second = InteractiveFigure(compute, draw, sliders, expensive=True, cache_name="t-cache")
    assert len(calls) == 3
    assert site_data(first.html())["f"] == site_data(second.html())["f"]
    monkeypatch.delenv("NORMBOOK_BUILD")
    live = InteractiveFigure(compute, draw, sliders, expensive=True, cache_name="t-cache")
    assert not live.widget.children[1].children[0].continuous_update
    assert any(type(w).__name__ == "IntProgress" for w in live.widget.children)


def test_two_figures_on_a_page_have_distinct_ids(monkeypatch):
    monkeypatch.setenv("NORMBOOK_BUILD", "1")
    a, _ = demo(title="a")
    b, _ = demo(title="b")
    ids = lambda page: set(re.findall(r' id="([^"]+)"', page))
    assert not ids(a.html()) & ids(b.html())


def test_marker_definitions_live_outside_the_swapped_groups(monkeypatch):
    """The site replaces tracked groups on a slider move: defs inside them would vanish."""
    monkeypatch.setenv("NORMBOOK_BUILD", "1")

    def draw(fig):
        ax = fig.subplots()
        ax.set(xlim=(0, 3), ylim=(0, 10))
        line, = ax.plot([], [], marker="o")
        return lambda res: line.set_data([0, 1, 2, 3], res)

    fig = InteractiveFigure(lambda a: [0, a, 2 * a, 3 * a], draw,
                            [Slider("a", "a", 1, 3, default=1, grid=3)])
    page = fig.html()
    data = site_data(page)
    svg = page[page.index("<svg"):page.index("</svg>")]
    for gid in data["g"]:
        start = svg.index(f'<g id="{gid}">')
        group = svg[start:svg.index("</g>", start)]
        assert "<defs>" not in group
    for ref in set(re.findall(r'href="#([^"]+)"', "".join(data["s"]))):
        assert f'id="{ref}"' in svg, f"frame uses #{ref}, which the page does not define"
