"""The built site's interactive figures work from disk, offline, in headless Chromium.

Builds a one-page throwaway book with the real _config.yml mechanisms (NORMBOOK_BUILD
through _ext/, mime priorities, no ipywidgets CDN) and drives its sliders.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
LOCAL_PREFIXES = ("file://", "data:", "about:")
JB = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))


def _demo_cells():
    spec = importlib.util.spec_from_file_location("_widget_demo", ROOT / "tests" / "test_widgets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    second = ('def compute_stiff(eta):\n    return compute(eta, kappa=100.0)\n\n'
              'InteractiveFigure(compute_stiff, draw, [Slider("eta", "η", 1e-3, 2.0, default=1.0, '
              'log=True, grid=5)], title="second figure, same page")')
    return mod.DEMO_DEFS + "\n" + mod.DEMO_FIGURE, second


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


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium/chromedriver not installed at /usr/bin")
    pytest.importorskip("selenium")
    return build_book(tmp_path_factory.mktemp("book"))


def test_sliders_switch_frames_offline_from_disk(site):
    html = site.read_text()
    assert html.count('class="normbook-figure"') == 2
    assert "traceback" not in html.lower() and "Warning" not in html
    assert "html-manager" not in html and "require.min.js" not in html   # no widget CDN
    assert site.stat().st_size < 5_000_000
    driver = chrome()
    try:
        driver.get("about:blank")
        driver.get_log("performance")           # drop the browser's own start-up pages
        driver.get(site.as_uri())
        figures = driver.execute_script(
            "return [...document.querySelectorAll('.normbook-figure')].map("
            "r => r.querySelectorAll('input[type=range]').length)")
        assert figures == [2, 1]
        for fig, n_inputs in enumerate(figures):
            for i in range(n_inputs):
                changed, ms, top, shown = driver.execute_script(MOVE_JS, fig, i, 0)
                assert changed, f"figure {fig} slider {i} did not change the figure"
                changed, ms, top, shown = driver.execute_script(MOVE_JS, fig, i, top)
                assert changed and shown == "2" if i == 0 else changed
                print(f"figure {fig} slider {i}: redraw {ms:.1f} ms")
        diverged = driver.execute_script(
            "return document.querySelectorAll('.normbook-figure')[0].textContent")
        assert "diverged at step" in diverged   # both sliders at their maximum
        times = redraw_times(driver, moves=20)
        print(f"site redraw: median {sorted(times)[10]:.1f} ms over 20 moves")
        urls = requested_urls(driver)
        assert urls and all(u.startswith(LOCAL_PREFIXES) for u in urls), \
            [u for u in urls if not u.startswith(LOCAL_PREFIXES)]
        # the theme's own console errors (sphinx-thebe's script included twice) are not ours
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "THEBE_JS_URL" not in e["message"] and "/_static/" not in e["message"]]
        assert not errors, errors
    finally:
        driver.quit()


BOOK_HTML = ROOT / "_build" / "html"
BOOK_PAGES = ["intro", "references", "chapters/auto_rate_tuning", "chapters/bngd_least_squares",
              "chapters/exponential_lr", "chapters/wn_relu_convergence"]


def ours(errors):
    """Console errors that are not the theme's own (see test above)."""
    return [e for e in errors if e["level"] == "SEVERE" and "/_static/" not in e["message"]]


def test_the_real_book_works_offline_from_disk(book_build):
    """Every page of the real book, opened from disk with the network off: MathJax
    typesets, nothing is requested outside the site, and the intro's sliders respond."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium/chromedriver not installed at /usr/bin")
    driver = chrome()
    try:
        driver.get("about:blank")
        driver.get_log("performance")
        for name in BOOK_PAGES:
            driver.get((BOOK_HTML / f"{name}.html").as_uri())
            typeset = driver.execute_script(
                "return new Promise(r => { const t0 = Date.now(); (function wait() {"
                " if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
                "   MathJax.startup.promise.then(() => r(document.querySelectorAll('mjx-container').length));"
                " else if (Date.now() - t0 > 10000) r(-1); else setTimeout(wait, 50); })(); })")
            if name == "intro":
                assert typeset > 10, f"MathJax did not typeset the intro ({typeset})"
            errors = ours(driver.get_log("browser"))
            assert not errors, (name, errors)
        driver.get((BOOK_HTML / "intro.html").as_uri())
        n = driver.execute_script("return document.querySelectorAll('.normbook-figure input[type=range]').length")
        assert n == 2
        for i in range(n):
            assert driver.execute_script(MOVE_JS, 0, i, 0)[0], f"intro slider {i} did nothing"
        urls = requested_urls(driver)
        outside = [u for u in urls if not u.startswith(LOCAL_PREFIXES)]
        assert urls and not outside, outside
    finally:
        driver.quit()
