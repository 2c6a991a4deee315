"""What the slider tests and the slider benchmark share: the intro-like demo figure, the
site payload reader, a one-page throwaway book and a headless Chromium with the network off.

Used by ``tests/test_widgets.py``, ``tests/test_browser.py`` and ``bench/bench_sliders.py``
(neither imports the other). Not part of ``lib``: only tests and benchmarks need it.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

from lib.widgets import InteractiveFigure, Slider

# A demo figure like the intro page's (DEMO_DEFS + DEMO_FIGURE); the real intro page is
# checked in the built book by tests/test_book.py and tests/test_browser.py.
DEMO_DEFS = '''\
import torch
from lib import plotting
from lib.bngd import dynamics
from lib.widgets import Slider, InteractiveFigure

def compute(eta, kappa):
    """60 GD steps of size η on J(w) = ½ (w − u)ᵀ H (w − u), H = diag(1, κ)."""
    return dynamics.gd(H=torch.tensor([1.0, kappa]), u=torch.ones(2), w0=torch.zeros(2),
                       eps=eta, steps=60)

def draw(fig):
    ax = fig.subplots()
    ax.set(yscale="log", xlim=(0, 60), ylim=(1e-12, 1e6), xlabel="step k", ylabel="loss J(w_k)")
    line, = ax.plot([], [])
    def update(res):
        line.set_data(range(len(res.loss)), res.loss)
        plotting.mark_divergence(ax, res.loss)
    return update
'''
DEMO_FIGURE = '''\
InteractiveFigure(compute, draw, [
    Slider("eta", "η", 1e-3, 2.0, default=0.1, log=True),
    Slider("kappa", "κ", 1, 1e3, default=10, log=True),
], title="GD on a quadratic")
'''


def demo(**kwargs):
    """(figure, namespace) of the intro demo; kwargs replace InteractiveFigure arguments."""
    ns = {}
    exec(DEMO_DEFS, ns)
    if not kwargs:
        return eval(DEMO_FIGURE, ns), ns
    sliders = kwargs.pop("sliders", [Slider("eta", "η", 1e-3, 2.0, default=0.1, log=True, grid=3),
                                     Slider("kappa", "κ", 1, 1e3, default=10, log=True, grid=3)])
    return InteractiveFigure(ns["compute"], ns["draw"], sliders, **kwargs), ns


def site_data(page: str) -> dict:
    text = re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>', page, re.S)
    return json.loads(text.group(1).replace("<\\/", "</"))


ROOT = Path(__file__).resolve().parent.parent  # the repository
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
LOCAL_PREFIXES = ("file://", "data:", "about:")
JB = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))


def _demo_cells():
    second = ('def compute_stiff(eta):\n    return compute(eta, kappa=100.0)\n\n'
              'InteractiveFigure(compute_stiff, draw, [Slider("eta", "η", 1e-3, 2.0, default=1.0, '
              'log=True, grid=5)], title="second figure, same page")')
    return DEMO_DEFS + "\n" + DEMO_FIGURE, second


BIB = """@misc{okabe2008,
  author = {Okabe, Masataka and Ito, Kei},
  title = {Color Universal Design},
  year = {2008},
  url = {https://jfly.uni-koeln.de/color/}
}
"""


BOXES = """```{prf:theorem} A claim
:label: demo-theorem

For every $\\eta$ small enough, GD converges (see {cite:t}`okabe2008` for its colours).
```

```{prf:proof}
By {prf:ref}`demo-theorem` itself.
```

```{exercise}
:label: demo-exercise

Move $\\eta$ past $2$.
```

```{solution} demo-exercise
It diverges.
```
"""


def build_book(dest: Path) -> Path:
    """Build a one-notebook book in ``dest`` with the book's config; return the page path."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.update(title="widget test book", only_build_toc_files=True)
    (dest / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (dest / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    (dest / "references.bib").write_text(BIB)
    shutil.copytree(ROOT / "_ext", dest / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "_static", dest / "_static")   # the book's CSS
    first, second = _demo_cells()
    # a hidden input, a bibliography, a theorem and an exercise: the book's kinds of markup
    # are on the page for axe-core (tests/test_browser.py)
    hidden = nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["hide-input"]})
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Sliders\n\nA figure with two sliders, then another "
                                      "(after {cite:t}`okabe2008`)."),
        nbformat.v4.new_code_cell(first), nbformat.v4.new_code_cell(second), hidden,
        nbformat.v4.new_markdown_cell(BOXES), nbformat.v4.new_markdown_cell("```{bibliography}\n```")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, dest / "index.ipynb")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NORMBOOK_CACHE": str(dest / "cache"),
           "NORMBOOK_SCALE": "cpu"}
    env.pop("NORMBOOK_BUILD", None)   # the extension must set it
    run = subprocess.run([JB, "build", str(dest)], env=env,
                         capture_output=True, text=True, timeout=900)
    page = dest / "_build" / "html" / "index.html"
    assert run.returncode == 0 and page.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    return page


def chrome():
    """Headless Chromium with the network switched off and request logging on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-quic", "--no-first-run", "--disable-sync",
                f"--user-data-dir={tempfile.mkdtemp(prefix='chrome-')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws*"]})
    return driver


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


# Moves one slider of one figure and returns (changed?, milliseconds incl. forced layout).
MOVE_JS = """
const [fig, i, value] = arguments;
const root = document.querySelectorAll('.normbook-figure')[fig];
const data = JSON.parse(document.getElementById(root.id + '-data').textContent);
const svg = () => data.g.map(g => document.getElementById(g).innerHTML).join('|');
const input = root.querySelectorAll('input[type=range]')[i];
const before = svg();
const t0 = performance.now();
input.value = value;
input.dispatchEvent(new Event('input', {bubbles: true}));
input.dispatchEvent(new Event('change', {bubbles: true}));
root.getBoundingClientRect(); void document.body.offsetHeight;
const ms = performance.now() - t0;
return [svg() !== before, ms, +input.max, root.querySelectorAll('output')[i].textContent];
"""


def redraw_times(driver, moves: int = 50, seed: int = 0) -> list[float]:
    """Milliseconds per random slider move of the page's first figure."""
    import random
    rng = random.Random(seed)
    n = driver.execute_script("return document.querySelectorAll('.normbook-figure')[0]"
                              ".querySelectorAll('input[type=range]').length")
    times = []
    for _ in range(moves):
        i = rng.randrange(n)
        top = driver.execute_script(MOVE_JS, 0, i, 0)[2]
        times.append(driver.execute_script(MOVE_JS, 0, i, rng.randrange(top + 1))[1])
    return times


# --- accessibility: axe-core (npm, pinned in package.json) and the colour themes ----------
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]   # WCAG 2.1 level AA
THEMES = ("light", "dark")
AXE_RUN = """
const [tags, done] = [arguments[0], arguments[arguments.length - 1]];
axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
     nodes: v.nodes.map(n => n.target.join(" ") + "  " + n.html.slice(0, 160))}))))
  .catch(e => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));
"""


def open_in_theme(driver, url: str, theme: str) -> None:
    """Open ``url`` in the pydata/sphinx-book theme's colour mode ``theme`` ("light" or
    "dark"), as its theme button leaves it: ``mode`` and ``theme`` in localStorage, read
    by the page's head script before anything is drawn."""
    driver.get(url)
    driver.execute_script("localStorage.setItem('mode', arguments[0]);"
                          "localStorage.setItem('theme', arguments[0]);", theme)
    driver.get(url)
    shown = driver.execute_script("return document.documentElement.dataset.theme")
    assert shown == theme, f"{url}: asked for the {theme} theme, the page shows {shown!r}"


def axe_violations(driver) -> list[dict]:
    """axe-core's WCAG 2.1 AA violations on the open page: [{id, impact, help, nodes}]."""
    driver.execute_script(AXE_JS.read_text())
    return driver.execute_async_script(AXE_RUN, AXE_TAGS)


def luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour (three integers 0..255)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
           for c in (v / 255 for v in rgb[:3])]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a, b) -> float:
    """WCAG contrast ratio of two sRGB colours, 1 to 21."""
    lo, hi = sorted((luminance(a), luminance(b)))
    return (hi + 0.05) / (lo + 0.05)


# Every non-empty text of a figure: the SVG's <text> elements and the HTML text around it
# (title, slider labels and values, notes); their boxes in CSS pixels relative to the figure.
TEXTS = "svg text, p, label, output, .nbf-note"
TEXT_BOXES = """
const [root, texts] = arguments, at = root.getBoundingClientRect(), boxes = [];
root.querySelectorAll(texts).forEach(el => { const r = el.getBoundingClientRect();
  if (r.width > 1 && r.height > 1 && el.textContent.trim())
    boxes.push([el.textContent.trim().slice(0, 50), r.left - at.left, r.top - at.top,
                r.width, r.height]); });
return boxes;
"""
SHOW_TEXTS = ("arguments[0].querySelectorAll(arguments[1]).forEach("
              "el => { el.style.visibility = arguments[2]; })")


def text_contrasts(driver, root, texts: str = TEXTS, scale: int = 2) -> list[tuple[str, float]]:
    """(text, contrast ratio) for every text (CSS selector ``texts``) of the element
    ``root`` (a figure), measured
    on screenshots at ``scale`` device pixels per CSS pixel: one with the texts, one
    without. A pixel that differs is a glyph's; its ratio is its colour against the
    pixel behind it, and a text's ratio is the best over its pixels (the glyph cores;
    anti-aliased edges lie in between). A text that changes no pixel has ratio 1."""
    import io

    import numpy as np
    from PIL import Image

    size = driver.get_window_size()
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size["width"], "height": size["height"], "deviceScaleFactor": scale,
        "mobile": False})
    try:
        driver.execute_script("arguments[0].scrollIntoView()", root)
        boxes = driver.execute_script(TEXT_BOXES, root, texts)
        shots = []
        for visibility in ("", "hidden"):
            driver.execute_script(SHOW_TEXTS, root, texts, visibility)
            shots.append(Image.open(io.BytesIO(root.screenshot_as_png)).convert("RGB"))
    finally:
        driver.execute_script(SHOW_TEXTS, root, texts, "")
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    with_text, without = (np.asarray(shot, dtype=np.int16) for shot in shots)
    found = []
    for text, x, y, w, h in boxes:
        rows = slice(round(y * scale), round((y + h) * scale))
        cols = slice(round(x * scale), round((x + w) * scale))
        a, b = with_text[rows, cols].reshape(-1, 3), without[rows, cols].reshape(-1, 3)
        glyph = (a != b).any(axis=1)
        pairs = {(tuple(fg), tuple(bg)) for fg, bg in zip(a[glyph], b[glyph])}
        found.append((text, float(max((contrast(fg, bg) for fg, bg in pairs), default=1))))
    return found
