"""Interactive figures for the built site: precomputed SVG frames switched by a tiny script.

The site has no kernel, so :class:`lib.widgets.InteractiveFigure` precomputes its figure
at every grid point of its sliders (only when ``NORMBOOK_BUILD=1``). The default figure
is inlined as SVG; every artist that ``update`` may touch is wrapped in ``<g id=...>``,
and for each grid point only the inner SVG of the artists that differ from point to
point is kept, deduplicated into one table of strings. The inline script below swaps
those fragments when a ``<input type=range>`` moves: no optimiser logic in JavaScript,
only a lookup of results that ``lib`` computed. Axis limits must be fixed by ``draw``
(else tick labels would change too); :func:`frames` checks this.
"""

import html
import io
import itertools
import json
import re
from contextlib import contextmanager

from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.spines import Spine

from lib import checks

SITE_NOTE = ("In the site, sliders move between precomputed values; "
             "run the notebook (Binder/Colab buttons above) for any value.")
LIVE_NOTE = "Run the notebook (Binder/Colab buttons above) to move the sliders."
# Printed under each figure instead of its sliders; hidden on screen (inline, so also in
# Jupyter), shown by _static/print.css in print media (tools/pdf.py prints the site).
PRINT_NOTE = "In the web version the sliders are live."
BUDGET_BYTES = 1_500_000   # per figure; a chapter page should stay under about 5 MB
# Frames (grid points) per figure, checked before anything is computed. A distinct frame
# of one line costs about 1.2 kB (the intro demo: 100 frames, 123 kB), so more than about
# 1250 distinct frames cannot fit BUDGET_BYTES; 2000 leaves room for repeated frames and
# caps a figure's build at about 40 s (about 18 ms a frame on one core).
MAX_FRAMES = 2_000
UNTITLED = "Interactive figure"   # the accessible name's start when a figure has no title
# The figure is a white card with dark text in every theme: matplotlib draws on white, and
# in a dark theme the text around it must stay readable against the same white.
CARD_STYLE = "background:#fff;color:#222;padding:0.3em 0.5em"
NOTE_COLOR = "#B35000"   # Okabe-Ito vermilion darkened to 5.2:1 on white (WCAG AA: 4.5)
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9-]*")   # an SVG id prefix (ids are prefix-i)
_AUTO_ID = re.compile(r' id="[A-Za-z][\w.]*_\d+"')  # matplotlib's numbered group ids
_DEFS = re.compile(r"<defs>(.*?)</defs>", re.S)
_DEF_ITEM = re.compile(r'<(path|clipPath)\b[^>]*\bid="([^"]+)"[^>]*?(?:/>|>.*?</\1>)', re.S)
_GAP = re.compile(r">\s+<")


def _figure(fig) -> Figure:
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    return fig


def _artists(artists) -> list:
    """``artists`` as a list of matplotlib Artists (a TypeError naming it otherwise)."""
    if isinstance(artists, (str, Artist)) or not hasattr(artists, "__iter__"):
        raise TypeError(f"artists must be a list of matplotlib Artists, got "
                        f"{type(artists).__name__}")
    artists = list(artists)
    for i, a in enumerate(artists):
        if not isinstance(a, Artist):
            raise TypeError(f"artists[{i}] must be a matplotlib Artist, got {type(a).__name__}")
    return artists


def _interactive(ifig):
    from lib.widgets import InteractiveFigure   # lib.widgets imports this module

    if not isinstance(ifig, InteractiveFigure):
        raise TypeError(f"ifig must be a lib.widgets.InteractiveFigure, got {type(ifig).__name__}")
    return ifig


def _bar(bar):
    if bar is not None and not callable(getattr(bar, "update", None)):
        raise TypeError(f"bar must be None or a progress bar with update(n), got "
                        f"{type(bar).__name__}")
    return bar


def tracked_artists(fig) -> list:
    """Artists ``update`` may change: all in the axes but the axes (ticks, labels), spines
    and background, in drawing (zorder) order. ``fig``: a matplotlib Figure."""
    _figure(fig)
    found = []
    for ax in fig.axes:
        skip = {id(ax.xaxis), id(ax.yaxis), id(ax.patch)}
        found += sorted((a for a in ax.get_children()
                         if id(a) not in skip and not isinstance(a, Spine)),
                        key=lambda a: a.get_zorder())
    found += [*fig.texts, *fig.lines, *fig.patches, *fig.images, *fig.legends]
    return found


def hidden(artists):
    """Temporarily hide ``artists``, a list of matplotlib Artists (a context manager that
    restores each one's own visibility); checked when called, not on entry."""
    return _hidden(_artists(artists))


@contextmanager
def _hidden(artists):
    shown = [a for a in artists if a.get_visible()]
    for a in shown:
        a.set_visible(False)
    try:
        yield
    finally:
        for a in shown:
            a.set_visible(True)


def _static_parts(fig) -> list:
    """Axes decorations that never change: skipped when rendering frames (ticks are slow)."""
    return [p for ax in fig.axes for p in (ax.xaxis, ax.yaxis, ax.patch, *ax.spines.values())]


@contextmanager
def _tagged(artists, prefix):
    """Wrap each artist's drawing in ``<g id="prefix-i">`` (also when it draws nothing)."""
    for i, artist in enumerate(artists):
        def draw(renderer, _a=artist, _gid=f"{prefix}-{i}"):
            renderer.open_group("nbf", gid=_gid)
            type(_a).draw(_a, renderer)
            renderer.close_group("nbf")
        artist.draw = draw
    try:
        yield
    finally:
        for artist in artists:
            del artist.draw


def render_svg(fig, artists=(), prefix="f") -> str:
    """The figure as an SVG string (no XML header), tracked artists wrapped in groups.

    ``fig``: a matplotlib Figure; ``artists``: Artists of it; ``prefix``: the group ids'
    prefix, a letter then letters, digits or '-'.
    """
    _figure(fig)
    artists = _artists(artists)
    if not _PREFIX.fullmatch(checks.string("prefix", prefix)):
        raise ValueError(f"prefix must be a letter then letters, digits or '-', got {prefix!r}")
    buf = io.StringIO()
    with _tagged(artists, prefix):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches=None)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'<g id="([^"]+)"/>', r'<g id="\1"></g>', text)  # empty: keep a slot
    # matplotlib's marker/clip ids hash the geometry: make them unique per figure
    text = re.sub(r'(id="|url\(#|href="#)([mp][0-9a-f]{10})\b', rf"\1{prefix}-\2", text)
    return _GAP.sub("><", _AUTO_ID.sub("", text)).strip()


def _group_span(svg: str, gid: str) -> tuple[int, int]:
    """(start, end) of the inner text of ``<g id="gid">``, matching nested groups."""
    open_tag = f'<g id="{gid}">'
    start = svg.find(open_tag)
    if start < 0:
        raise ValueError(f"svg has no group {open_tag}: is it render_svg's output for this "
                         "prefix, with n tracked artists?")
    start += len(open_tag)
    depth, pos = 1, start
    for m in re.compile(r"<g[\s>]|</g>").finditer(svg, start):
        depth += -1 if m.group() == "</g>" else 1
        if depth == 0:
            return start, m.start()
        pos = m.end()
    raise ValueError(f"svg has an unbalanced group {gid} after character {pos}")


def fragments(svg: str, prefix: str, n: int) -> tuple[list[str], dict]:
    """Inner SVG of groups ``prefix-0 .. prefix-(n-1)`` with their defs moved out.

    ``svg``: render_svg's output; ``n``: an integer >= 0; a missing group is a ValueError.
    """
    checks.string("svg", svg)
    checks.string("prefix", prefix)
    n = checks.integer("n", n, lo=0)
    parts, defs = [], {}
    for i in range(n):
        a, b = _group_span(svg, f"{prefix}-{i}")
        inner = svg[a:b]
        for block in _DEFS.findall(inner):
            defs.update({m.group(2): m.group(0) for m in _DEF_ITEM.finditer(block)})
        parts.append(_DEFS.sub("", inner))
    for block in _DEFS.findall(svg):   # clip paths written at the end of the document
        defs.update({m.group(2): m.group(0) for m in _DEF_ITEM.finditer(block)})
    return parts, defs


def _limits(fig):
    return [tuple(ax.viewLim.bounds) for ax in fig.axes]


def frames(ifig, bar=None) -> dict:
    """Render every grid point of ``ifig``; return the site data and the default SVG.

    ``ifig``: an InteractiveFigure; ``bar``: None or a progress bar (``update(n)``). A grid
    over ``MAX_FRAMES`` points is refused before anything is computed.
    """
    _interactive(ifig)
    _bar(bar)
    grids = ifig.site_grids()
    fig, artists, prefix = ifig.figure, ifig.tracked, ifig.fid
    table, index, rows, notes, all_defs = [], {}, [], [], {}

    def intern(s):
        if s not in index:
            index[s] = len(table)
            table.append(s)
        return index[s]

    limits = None
    results = ifig.precompute(grids).flat  # C order, as itertools.product below
    with hidden(_static_parts(fig)):
        for point, result in zip(itertools.product(*grids), results):
            _frame(ifig, point, result, rows, notes, all_defs, intern)
            if limits is None:
                limits = _limits(fig)
            elif _limits(fig) != limits:
                raise ValueError(f"{ifig.title or 'interactive figure'}: axis limits changed with "
                                 "the slider values; fix them in draw() (ax.set(xlim=, ylim=))")
            if bar is not None:
                bar.update(1)
    dynamic = [j for j in range(len(artists)) if len({r[j] for r in rows}) > 1]
    default_point = tuple(g.index(s.default) for g, s in zip(grids, ifig.sliders))
    k0 = sum(i * m for i, m in zip(default_point, _strides(grids)))
    ifig.apply(ifig.defaults)
    svg = ifig.render(lambda: render_svg(fig, artists, prefix))
    svg = _add_defs(_hoist_group_defs(svg, prefix, len(artists), all_defs), all_defs)
    used = sorted({rows[k][j] for k in range(len(rows)) for j in dynamic} | {n for n in notes if n >= 0})
    remap = {old: new for new, old in enumerate(used)}
    data = {"s": [table[i] for i in used], "g": [f"{prefix}-{j}" for j in dynamic],
            "f": [[remap[r[j]] for j in dynamic] for r in rows],
            "n": [remap.get(n, -1) for n in notes],
            "v": [[_fmt(v) for v in g] for g in grids], "k": k0}
    return {"data": data, "svg": svg, "default": default_point}


def _frame(ifig, point, result, rows, notes, all_defs, intern):
    """Render one grid point from its result; append its fragment and note indices."""
    ifig.apply(dict(zip(ifig.names, point)), result)
    svg = ifig.render(lambda: render_svg(ifig.figure, ifig.tracked, ifig.fid))
    parts, defs = fragments(svg, ifig.fid, len(ifig.tracked))
    all_defs.update(defs)
    rows.append([intern(p) for p in parts])
    notes.append(intern(ifig.error) if ifig.error else -1)


def _strides(grids):
    strides, m = [], 1
    for g in reversed(grids):
        strides.append(m)
        m *= len(g)
    return strides[::-1]


def _hoist_group_defs(svg: str, prefix: str, n: int, defs: dict) -> str:
    """Take the defs (e.g. marker shapes) out of the tracked groups into ``defs``.

    matplotlib writes a line's marker definition inside the line's own group; the site
    script replaces that group on the first slider move, so a def left there would
    vanish and every later frame would lose its markers.
    """
    parts, found = fragments(svg, prefix, n)
    defs.update(found)
    for i in reversed(range(n)):  # later groups first: earlier offsets stay valid
        a, b = _group_span(svg, f"{prefix}-{i}")
        svg = svg[:a] + parts[i] + svg[b:]
    return svg


def _add_defs(svg: str, defs: dict) -> str:
    """Put every def used by any frame into the default SVG once."""
    missing = [d for k, d in defs.items() if f'id="{k}"' not in svg]
    if not missing:
        return svg
    head = svg.index(">") + 1
    return svg[:head] + "<defs>" + "".join(missing) + "</defs>" + svg[head:]


def _fmt(v) -> str:
    return f"{v:.4g}"


def _responsive(svg: str) -> str:
    return re.sub(r'<svg([^>]*?) width="([\d.]+)pt" height="([\d.]+)pt"',
                  r'<svg\1 style="width:100%;max-width:\2pt;height:auto"', svg, count=1)


def _json_script(obj) -> str:
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def site_html(ifig, bar=None, budget: int | None = None) -> str:
    """Self-contained HTML (SVG + sliders + inline script) for the built site.

    ``budget``: bytes allowed (an integer >= 1; None: ``BUDGET_BYTES``); a bigger page is
    a ValueError.
    """
    _interactive(ifig)
    budget = BUDGET_BYTES if budget is None else checks.integer("budget", budget)
    built = frames(ifig, bar)
    fid, data = ifig.fid, built["data"]
    values = [vals[i] for vals, i in zip(data["v"], built["default"])]
    name = describe(ifig.title, [s.label for s in ifig.sliders], values)
    data.update(t=ifig.title or UNTITLED, l=[s.label for s in ifig.sliders])
    controls = "".join(
        f'<div class="nbf-row"><label for="{fid}-s{j}">{html.escape(s.label)}</label> '
        f'<input type="range" id="{fid}-s{j}" min="0" max="{len(vals) - 1}" step="1" '
        f'value="{i}" aria-valuetext="{vals[i]}" data-name="{html.escape(s.name)}" '
        f'style="width:14em;vertical-align:middle"> '
        f'<output for="{fid}-s{j}">{vals[i]}</output></div>'
        for j, (s, vals, i) in enumerate(zip(ifig.sliders, data["v"], built["default"])))
    page = (f'<div class="normbook-figure" id="{fid}" style="{CARD_STYLE}">{_title(ifig)}'
            f'<div class="nbf-svg">{_labelled(_responsive(built["svg"]), name)}</div>'
            f'<div class="nbf-controls">{controls}</div>'
            f'<div class="nbf-note" role="status" style="color:{NOTE_COLOR}">'
            f'{html.escape(ifig.error or "")}</div>'
            f'<p class="nbf-site-note" style="font-size:85%;color:#555">{SITE_NOTE}</p>'
            f'{_print_line([s.label for s in ifig.sliders], values)}'
            f'<script type="application/json" id="{fid}-data">{_json_script(data)}</script>'
            f'<script>{SCRIPT}({json.dumps(fid)});</script></div>')
    size = len(page.encode())
    if size > budget:
        raise ValueError(
            f"{ifig.title or 'interactive figure'}: site payload {size / 1e6:.2f} MB exceeds the "
            f"budget of {budget / 1e6:.2f} MB per figure ({len(data['f'])} grid points); "
            "use a coarser grid (Slider(..., grid=n)) or fewer sliders")
    return page


def static_html(ifig) -> str:
    """The default figure of ``ifig`` (an InteractiveFigure) as inline SVG plus the note;
    no grid (for live kernels)."""
    _interactive(ifig)
    svg = ifig.render(lambda: render_svg(ifig.figure, prefix=ifig.fid))
    labels = [s.label for s in ifig.sliders]
    values = [_fmt(ifig.values[s.name]) for s in ifig.sliders]
    return (f'<div class="normbook-figure" style="{CARD_STYLE}">{_title(ifig)}'
            f'{_labelled(_responsive(svg), describe(ifig.title, labels, values))}'
            f'<div class="nbf-note" role="status" style="color:{NOTE_COLOR}">'
            f'{html.escape(ifig.note)}</div>'
            f'<p class="nbf-site-note" style="font-size:85%;color:#555">{LIVE_NOTE}</p>'
            f'{_print_line(labels, values)}</div>')


def describe(title: str, labels, values) -> str:
    """The accessible name of an interactive figure: its title and its sliders' values,
    e.g. ``"GD on a quadratic: η = 0.1, κ = 10"`` (the site script writes the same).

    ``title``: a string ("" for none); ``labels``, ``values``: lists of strings of one length.
    """
    title = checks.string("title", title) or UNTITLED
    labels, values = _strings("labels", labels), _strings("values", values)
    if len(labels) != len(values):
        raise ValueError(f"values must have one entry per label ({len(labels)}), "
                         f"got {len(values)}")
    return title + ": " + ", ".join(f"{a} = {v}" for a, v in zip(labels, values))


def _strings(name, items) -> list:
    if isinstance(items, str) or not hasattr(items, "__iter__"):
        raise TypeError(f"{name} must be a list of strings, got {type(items).__name__}")
    items = list(items)
    for i, item in enumerate(items):
        checks.string(f"{name}[{i}]", item)
    return items


def _labelled(svg: str, name: str) -> str:
    """The SVG as one image whose accessible name is ``name`` (its text is not read out
    piece by piece: tick labels alone mean nothing)."""
    return svg.replace("<svg", f'<svg role="img" aria-label="{html.escape(name)}"', 1)


def _print_line(labels: list, values: list) -> str:
    """The print-only line under a figure, e.g. "Shown at η = 0.1, κ = 10. In the web
    version the sliders are live." (hidden on screen; _static/print.css shows it)."""
    shown = ", ".join(f"{a} = {v}" for a, v in zip(labels, values))
    return (f'<p class="nbf-print-note" style="display:none;font-size:85%;color:#555">'
            f'{html.escape(f"Shown at {shown}. {PRINT_NOTE}")}</p>')


def _title(ifig) -> str:
    return f"<p><strong>{html.escape(ifig.title)}</strong></p>" if ifig.title else ""


# One small function, inlined once per figure; it only looks results up.
SCRIPT = """(function (fid) {
  var root = document.getElementById(fid);
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var d = JSON.parse(document.getElementById(fid + "-data").textContent);
  var els = d.g.map(function (g) { return document.getElementById(g); });
  var inputs = root.querySelectorAll("input[type=range]");
  var outs = root.querySelectorAll(".nbf-controls output");
  var note = root.querySelector(".nbf-note");
  var svg = root.querySelector(".nbf-svg svg");
  var cur = d.f[d.k];
  function show() {
    var k = 0, said = [];
    for (var i = 0; i < inputs.length; i++) {
      var j = +inputs[i].value;
      k = k * d.v[i].length + j;
      outs[i].textContent = d.v[i][j];
      inputs[i].setAttribute("aria-valuetext", d.v[i][j]);
      said.push(d.l[i] + " = " + d.v[i][j]);
    }
    svg.setAttribute("aria-label", d.t + ": " + said.join(", "));
    var row = d.f[k];
    for (var e = 0; e < els.length; e++) {
      if (row[e] !== cur[e]) els[e].innerHTML = d.s[row[e]];
    }
    cur = row;
    note.textContent = d.n[k] < 0 ? "" : d.s[d.n[k]];
    root.setAttribute("data-frame", k);
  }
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("input", show);
    inputs[i].addEventListener("change", show);
  }
})"""
