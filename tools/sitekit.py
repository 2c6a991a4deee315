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


def build_book(dest: Path) -> Path:
    """Build a one-notebook book in ``dest`` with the book's config; return the page path."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.update(title="widget test book", only_build_toc_files=True)
    (dest / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (dest / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    (dest / "references.bib").write_text("")
    shutil.copytree(ROOT / "_ext", dest / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    first, second = _demo_cells()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Sliders\n\nA figure with two sliders, then another."),
        nbformat.v4.new_code_cell(first), nbformat.v4.new_code_cell(second)])
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
