"""The live PNG of an interactive figure: only changed artists drawn, the same pixels as a
full ``canvas.draw()``.

Each figure is made twice, as the chapters make it; both get the same slider values, one
draws through ``InteractiveFigure.png()`` (changed artists drawn, the rest replayed), the
other with a full ``canvas.draw()``. Agg gets the same primitives with the same arguments
in the same order, so the pixels must be equal, not close.
"""

import functools
import io
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from matplotlib.figure import Figure

from lib.bngd import experiments as bngd_experiments, figures as bngd_figures
from lib.explr import experiments as explr_experiments, figures as explr_figures, toy
from lib.blit import Redrawer, png_rgb
from lib.widgets import InteractiveFigure, Slider

ROOT = Path(__file__).resolve().parent.parent


def _intro():
    """The intro's figure, from the notebook's own cell (compute and draw live there)."""
    cells = json.loads((ROOT / "intro.ipynb").read_text())["cells"]
    src = next("".join(c["source"]) for c in cells
               if c["cell_type"] == "code" and "def gd_on_quadratic" in "".join(c["source"]))
    scope = {}
    exec(src.replace("InteractiveFigure(gd_on_quadratic", "FIG = InteractiveFigure(gd_on_quadratic"),
         scope)
    return scope["FIG"]


def _gd_rates():
    return InteractiveFigure(bngd_experiments.gd_rates, bngd_figures.draw_gd_rates,
                             [Slider("kappa", "κ", 1.0, 1e4, default=100.0, log=True)],
                             figsize=(8, 4.4))


def _bngd():
    sliders = [Slider("eps", "ε", 1e-4, 1e4, default=1.0, log=True, grid=9),
               Slider("eps_a", "ε_a", 0.1, 1.9, default=1.0, grid=3),
               Slider("a0", "a₀", 1e-2, 1e2, default=1.0, log=True, grid=3),
               Slider("kappa", "κ", 10.0, 1e3, default=100.0, log=True, grid=3)]
    batch = tuple(sliders[0].grid_values())

    def compute(eps, eps_a, a0, kappa):
        return bngd_experiments.slider_run(eps, eps_a, a0, kappa, batch_eps=batch)
    draw = functools.partial(bngd_figures.draw_bngd_slider,
                             steps=bngd_experiments.SLIDER_STEPS)
    return InteractiveFigure(compute, draw, sliders, figsize=(9, 4.2))


def _schedule():
    return InteractiveFigure(explr_experiments.exp_lr_curve, explr_figures.draw_schedule, [
        Slider("eta", "η", 1e-3, 1.0, default=0.1, log=True, grid=5),
        Slider("weight_decay", "λ", 1e-5, 1e-1, default=5e-4, log=True, grid=5),
        Slider("momentum", "γ", 0.0, 0.99, default=0.9, grid=4)])


def _toy():
    X, y = toy.toy_data(n=200, m=10, seed=0)
    w0 = np.random.default_rng(1).standard_normal(10)
    trajectory = functools.partial(toy.toy_trajectory, X, y, w0, steps=1000, every=5)
    return InteractiveFigure(trajectory, explr_figures.draw_toy, [
        Slider("eta", "η", 0.03, 3.0, default=1.0, log=True, grid=7),
        Slider("weight_decay", "λ", 1e-3, 1e-1, default=1e-2, log=True, grid=7)],
        figsize=(10, 3.8))


# moves: slider values in turn; each list holds a move that changes a text, and the
# schedule's and BNGD's hold an error or a divergence note and a move back
MOVES = {
    _intro: [dict(eta=0.5), dict(eta=1.5), dict(kappa=50.0), dict(eta=0.01), dict(eta=0.1)],
    _gd_rates: [dict(kappa=3.0), dict(kappa=5e3), dict(kappa=1.0), dict(kappa=100.0)],
    _bngd: [dict(eps=30.0), dict(eps=0.01), dict(kappa=900.0), dict(a0=50.0),
            dict(eps_a=1.9), dict(eps=1.0)],
    _schedule: [dict(weight_decay=0.05), dict(eta=0.5), dict(weight_decay=5e-4),
                dict(momentum=0.0), dict(eta=0.1)],
    _toy: [dict(eta=3.0), dict(weight_decay=0.1), dict(eta=0.03), dict(eta=1.0)],
}


def _pixels(fig):
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()


def _full(ifig):
    ifig.render(ifig.figure.canvas.draw)
    return _pixels(ifig.figure)


def _live(ifig):
    return np.asarray(PIL.Image.open(io.BytesIO(ifig.png())).convert("RGB"))


@pytest.mark.parametrize("make", list(MOVES), ids=lambda f: f.__name__.strip("_"))
def test_live_png_equals_a_full_draw_after_every_move(make):
    live, full = make(), make()
    assert np.array_equal(_live(live), _full(full))
    notes, drawn = set(), []
    for move in MOVES[make]:
        values = {**live.values, **move}
        live.apply(values)
        full.apply(values)
        assert live.error == full.error
        notes.add(live.error)
        image = _live(live)
        stats = live._redrawer.stats
        drawn.append(stats["drawn"])
        assert stats["full"] == 0, "a move must not need a full draw"
        assert np.array_equal(image, _full(full)), (move, stats)
    # every figure redraws a few artists and replays the rest (axes, ticks, legends)
    assert max(drawn) < len(live._redrawer._order) // 2, drawn
    if make in (_schedule,):
        assert any(n for n in notes) and None in notes     # into an error state and back


def _legend_figure():
    def draw(fig):
        ax = fig.subplots()
        ax.set(xlim=(0, 1), ylim=(0, 1))
        line, = ax.plot([], [], label="a")
        ax.plot([0, 1], [0.5, 0.5], label="static")
        legend = ax.legend(loc="upper right")
        note = ax.text(0.1, 0.9, "", bbox=dict(fc="white"))

        def update(r):
            line.set_data([0, 1], [r, 1 - r])
            legend.get_texts()[0].set_text(f"a = {r:.2f}")   # inside the legend only
            note.get_bbox_patch().set_facecolor((r, 0.5, 0.5))  # inside the text only
        return update
    return InteractiveFigure(lambda r: r, draw, [Slider("r", "r", 0.0, 1.0, default=0.2)])


def test_a_change_inside_a_legend_or_a_text_box_is_drawn():
    live, full = _legend_figure(), _legend_figure()
    live.png()
    for r in (0.9, 0.4, 0.2):
        live.apply({"r": r})
        full.apply({"r": r})
        assert np.array_equal(_live(live), _full(full)), r


def test_a_full_draw_by_someone_else_is_seen():
    """savefig draws the whole figure and resets matplotlib's stale flags: the next live
    PNG must still show the current values."""
    live, full = _legend_figure(), _legend_figure()
    live.png()
    live.apply({"r": 0.7})
    full.apply({"r": 0.7})
    live.figure.savefig(io.BytesIO(), format="svg")
    assert np.array_equal(_live(live), _full(full))


def test_best_placed_legend_is_always_drawn():
    fig = Figure()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set(xlim=(0, 1), ylim=(0, 1))
    line, = ax.plot([0, 1], [0.95, 0.95], label="moves")   # best: lower left
    ax.legend(loc="best")
    red = Redrawer(fig)
    red.draw()
    line.set_ydata([0.05, 0.05])       # best: upper right
    red.draw()
    image = _pixels(fig)
    fig.canvas.draw()
    assert np.array_equal(image, _pixels(fig))


def _two_lines():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set(xlim=(0, 1), ylim=(0, 1))
    return fig, ax.plot([0, 1], [0.2, 0.2])[0], ax.plot([0, 1], [0.8, 0.8])[0]


def test_a_unit_changed_on_every_move_is_drawn_unrecorded_then_recorded_again():
    """A line changed on two moves in a row is drawn without a recording; once it stops
    changing it is recorded again and replayed after that. The pixels equal a full draw
    (of a second figure) throughout, so an outdated recording is never replayed."""
    (fig, a, b), (ref, *ref_lines) = _two_lines(), _two_lines()
    red = Redrawer(fig)
    red.draw()
    recorded, drawn = [], []
    for k, change in enumerate("aaabbba"):
        y = 0.2 + 0.05 * k
        for line in ((a, ref_lines[0]) if change == "a" else (b, ref_lines[1])):
            line.set_ydata([y, 1 - y])
        red.draw()
        assert red.stats["full"] == 0
        drawn.append(red.stats["drawn"])
        recorded.append((id(a) in red._calls, id(b) in red._calls))
        ref.canvas.draw()
        assert np.array_equal(_pixels(fig), _pixels(ref)), (k, change)
    # a: recorded at its first change, drawn unrecorded at the next two, then drawn once
    # more (recorded) at the first move that leaves it alone; b likewise
    assert recorded == [(True, True), (False, True), (False, True), (True, True),
                        (True, False), (True, False), (True, True)], recorded
    assert drawn == [1, 1, 1, 2, 1, 1, 2], drawn


def test_png_writer_round_trips_through_pillow():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    back = np.asarray(PIL.Image.open(io.BytesIO(png_rgb(rgba))))
    assert back.shape == (37, 53, 3) and np.array_equal(back, rgba[:, :, :3])
    strided = rgba[::2, ::3]                 # not contiguous: the byte-by-byte copy
    back = np.asarray(PIL.Image.open(io.BytesIO(png_rgb(strided))))
    assert np.array_equal(back, strided[:, :, :3])


def test_redrawer_refuses_what_it_cannot_draw():
    with pytest.raises(TypeError, match="fig"):
        Redrawer("not a figure")


def _many_kinds(image: bool):
    """Collections, mathtext, an annotation, twin axes and (optionally) an image."""
    def draw(fig):
        ax = fig.subplots()
        ax.set(xlim=(0, 1), ylim=(0, 1), title=r"$\hat\varepsilon_k$ and more")
        twin = ax.twinx()
        twin.set_ylim(0, 10)
        dots = ax.scatter([0.5], [0.5], s=40, label="dots")
        band = ax.fill_between([0, 1], [0, 0], [0.1, 0.1], alpha=0.3)
        note = ax.annotate("", xy=(0.5, 0.5), xytext=(0.2, 0.8),
                           arrowprops=dict(arrowstyle="->"))
        bars = ax.errorbar([0.3], [0.3], yerr=[0.1], fmt="o", capsize=3)
        line, = twin.plot([], [], "--", label=r"$\eta\,\alpha^{-2t}$")
        ax.legend(loc="lower right")
        if image:
            ax.imshow(np.zeros((4, 4)), extent=(0.8, 1, 0.8, 1), vmin=0, vmax=1)

        def update(r):
            dots.set_offsets([[r, 1 - r], [1 - r, r]])
            band.set_verts([[(0, 0), (1, 0), (1, r), (0, r)]])
            note.set_text(f"r = {r:.2f}")
            note.xy = (r, r)
            note.stale = True
            bars.lines[0].set_ydata([r])
            line.set_data([0, 1], [10 * r, 10 * (1 - r)])
        return update
    return InteractiveFigure(lambda r: r, draw, [Slider("r", "r", 0.0, 1.0, default=0.2)])


@pytest.mark.parametrize("image", [False, True], ids=["collections", "with-image"])
def test_other_artist_kinds_equal_a_full_draw(image):
    live, full = _many_kinds(image), _many_kinds(image)
    live.png()
    for r in (0.7, 0.1, 0.55):
        live.apply({"r": r})
        full.apply({"r": r})
        assert np.array_equal(_live(live), _full(full)), r
        assert live._redrawer.stats["full"] == (1 if image else 0)   # images: full draws


def test_kept_glyphs_drawn_whole_pixels_away_give_the_same_pixels():
    """A glyph kept at one sub-pixel offset is drawn again elsewhere: moving a text by
    whole pixels (display coordinates) must match FreeType rendering it there afresh."""
    from matplotlib.transforms import IdentityTransform

    def draw(fig):
        ax = fig.subplots()
        ax.set(xlim=(0, 1), ylim=(0, 1))
        text = ax.text(0, 0, "", transform=IdentityTransform(), fontsize=13)

        def update(r):
            text.set_position((100.3 + 7 * round(10 * r), 200.45 - 3 * round(10 * r)))
            text.set_text("κ = 3.75: ρ = 0.9996" if r < 0.5 else "ρ = 0.9996, κ = 3.75")
        return update
    live, full = (InteractiveFigure(lambda r: r, draw, [Slider("r", "r", 0.0, 1.0, default=0.0)])
                  for _ in range(2))
    live.png()
    for r in (0.1, 0.3, 0.6, 0.9, 0.2):
        live.apply({"r": r})
        full.apply({"r": r})
        assert np.array_equal(_live(live), _full(full)), r
    kept = live.figure.canvas.get_renderer()._draw_text_glyphs_and_boxes.args[1]
    assert 0 < len(kept) < 60      # 6 moves of ~18 glyphs: most drawn from kept bitmaps


def test_first_live_move_after_display_draws_only_what_changed(monkeypatch):
    """Displaying a figure in a live kernel draws its static HTML figure (a full draw by
    savefig) and the widgets' first PNG; the first slider move must not draw everything
    again (it took 257 ms for 'GD on diag(1, κ)', 35-40 ms after). Fails if the HTML is
    drawn after the widgets' PNG."""
    monkeypatch.delenv("NORMBOOK_BUILD", raising=False)
    fig = _gd_rates()
    fig._repr_mimebundle_()
    fig._widgets["rows"]["kappa"][0].value = 30.0
    assert fig._redrawer.stats["full"] == 0 and fig._redrawer.stats["drawn"] > 0
