"""The built site works from disk, offline, in headless Chromium, and meets WCAG 2.1 AA.

Builds a one-page throwaway book with the real _config.yml mechanisms (NORMBOOK_BUILD
through _ext/, mime priorities, no ipywidgets CDN) and drives its sliders; runs axe-core
(npm, ``package.json``) on every page of it and of the real book, in the light and the
dark theme. Without Chromium or axe-core these tests skip, saying why; in CI
(``CI=true``) they fail instead, so a missing install step cannot pass as green.
"""

import os
import shutil
import time

import pytest

from lib.site_figure import describe
from tools.sitekit import (AXE_JS, CHROMEDRIVER, CHROMIUM, LOCAL_PREFIXES, MOVE_JS,  # noqa: F401
                           ROOT, THEMES, axe_violations, build_book, chrome, open_in_theme,
                           redraw_times, requested_urls, text_contrasts)

MIN_CONTRAST = 4.5   # WCAG 2.1 AA for text (1.4.3), applied to every text, large or not


def need(axe: bool = False, modules: tuple = ("selenium",)) -> None:
    """Skip (fail in CI) unless Chromium, chromedriver, the Python ``modules`` and, if
    ``axe``, axe-core are installed."""
    missing = [what for what, ok in [
        (f"chromium/chromedriver at {CHROMIUM}, {CHROMEDRIVER} (apt: chromium chromium-driver)",
         shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
        (f"{' and '.join(modules)} (pip install -r requirements.txt)",
         all(_has(m) for m in modules)),
        (f"axe-core at {AXE_JS} (npm ci, as tools/setup.sh does)", not axe or AXE_JS.exists()),
    ] if not ok]
    if missing:
        reason = "not installed: " + "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser tests, but {reason}")
        pytest.skip(reason)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need()
    return build_book(tmp_path_factory.mktemp("book"))


@pytest.fixture
def driver():
    """A headless Chromium (network off) at a desktop size: the theme's sidebars show."""
    browser = chrome()
    browser.set_window_size(1280, 1000)
    yield browser
    browser.quit()


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


# --- accessibility --------------------------------------------------------------------
FIGURE_STATE = """
const root = document.querySelectorAll('.normbook-figure')[arguments[0]];
const svg = root.querySelector('.nbf-svg svg');
return {role: svg.getAttribute('role'), name: svg.getAttribute('aria-label'),
        title: root.querySelector('strong').textContent, frame: root.getAttribute('data-frame'),
        labels: [...root.querySelectorAll('label')].map(l => l.textContent),
        values: [...root.querySelectorAll('output')].map(o => o.textContent),
        texts: [...root.querySelectorAll('input')].map(i => i.getAttribute('aria-valuetext')),
        svg: svg.innerHTML.length + ':' + svg.innerHTML.slice(-3000)};
"""


def test_figures_name_their_slider_values_and_follow_the_keyboard(site, driver):
    """Each figure is one image named by its title and slider values (as the browser
    computes names); arrow keys move a focused slider, and the figure, its values and
    its name follow."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(site.as_uri())
    figures = driver.find_elements(By.CSS_SELECTOR, ".normbook-figure")
    assert len(figures) == 2
    for fig, root in enumerate(figures):
        svg = root.find_element(By.CSS_SELECTOR, ".nbf-svg svg")
        state = driver.execute_script(FIGURE_STATE, fig)
        assert state["role"] == "img" and svg.aria_role in ("img", "image")  # ARIA 1.3: image
        named = describe(state["title"], state["labels"], state["values"])
        assert svg.accessible_name == state["name"] == named, (svg.accessible_name, named)
        assert state["texts"] == state["values"]     # a slider says 0.1, not its index 3
        for i, slider in enumerate(root.find_elements(By.CSS_SELECTOR, "input[type=range]")):
            assert slider.accessible_name == state["labels"][i]   # its visible label
            slider.send_keys(Keys.HOME)
            start = driver.execute_script(FIGURE_STATE, fig)
            slider.send_keys(Keys.ARROW_RIGHT)
            moved = driver.execute_script(FIGURE_STATE, fig)
            assert slider.get_attribute("value") == "1", f"figure {fig}: ARROW_RIGHT did nothing"
            assert moved["values"][i] != start["values"][i]
            assert moved["frame"] != start["frame"] and moved["svg"] != start["svg"]
            assert moved["texts"] == moved["values"]
            assert moved["name"] == describe(moved["title"], moved["labels"], moved["values"])
            assert svg.accessible_name == moved["name"] != start["name"]
            slider.send_keys(Keys.ARROW_LEFT)
            back = driver.execute_script(FIGURE_STATE, fig)
            assert (back["values"], back["name"], back["svg"]) == \
                   (start["values"], start["name"], start["svg"])
            print(f"figure {fig} slider {i}: {start['name']!r} -> {moved['name']!r}")


def axe_pages(driver, pages, themes=THEMES) -> dict:
    """{(page, theme): axe violations} over ``pages`` (paths) in each theme; prints times."""
    found = {}
    for theme in themes:
        for page in pages:
            open_in_theme(driver, page.as_uri(), theme)
            t0 = time.perf_counter()
            found[page.name, theme] = axe_violations(driver)
            count = sum(len(v["nodes"]) for v in found[page.name, theme])
            print(f"axe {theme:5} {page.name}: {count} violating nodes, "
                  f"{time.perf_counter() - t0:.1f} s")
    return found


def site_pages(html_root) -> list:
    """Every HTML page of a built site (not the theme's or the sources' files)."""
    return sorted(p for p in html_root.rglob("*.html")
                  if not {"_static", "_sources", "_images"} & set(p.relative_to(html_root).parts))


def test_axe_finds_no_wcag_21_aa_violation_in_either_theme(site, driver):
    """axe-core, offline, on every page of the throwaway book (two figures, a hidden-input
    cell, a bibliography, the theme's search and colour-mode buttons), light and dark,
    also with the sliders moved and a note shown; then a planted fault is caught."""
    need(axe=True)
    pages = site_pages(site.parent)
    assert len(pages) >= 3
    found = axe_pages(driver, pages)
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    for theme in THEMES:   # every figure at its sliders' maxima: "diverged at step ..." shows
        open_in_theme(driver, site.as_uri(), theme)
        for fig, n in enumerate(driver.execute_script(
                "return [...document.querySelectorAll('.normbook-figure')]"
                ".map(r => r.querySelectorAll('input[type=range]').length)")):
            for i in range(n):
                driver.execute_script(MOVE_JS, fig, i, 10 ** 6)
        assert "diverged" in driver.execute_script("return document.body.textContent")
        assert axe_violations(driver) == [], theme
    # the check can fail: a slider whose label is not tied to it (so it has no name), and
    # a button named otherwise than it reads
    driver.execute_script(
        "document.querySelector('.nbf-controls label').removeAttribute('for');"
        "document.querySelector('.nbf-controls').insertAdjacentHTML('beforeend',"
        " '<button aria-label=\"Close\">Open the notebook</button>');")
    planted = {v["id"] for v in axe_violations(driver)}
    assert {"label", "label-content-name-mismatch"} <= planted, planted


def test_figures_stay_readable_in_the_dark_theme(site, driver):
    """Screenshots of each figure in the dark theme (and the light one): every text, in
    the SVG and around it, has a contrast of at least 4.5:1 with what is behind it,
    measured from the pixels. Controls: a figure drawn straight on the dark page, and
    a pale text colour, are caught."""
    for theme in THEMES:
        open_in_theme(driver, site.as_uri(), theme)
        for fig, root in enumerate(driver.find_elements("css selector", ".normbook-figure")):
            t0 = time.perf_counter()
            measured = text_contrasts(driver, root)
            worst = min(measured, key=lambda m: m[1])
            print(f"{theme} figure {fig}: {len(measured)} texts, lowest contrast "
                  f"{worst[1]:.1f} ({worst[0]!r}), {time.perf_counter() - t0:.1f} s")
            assert len(measured) > 10   # tick labels, axis labels, title, sliders, notes
            assert worst[1] >= MIN_CONTRAST, (theme, fig, worst)
    root = driver.find_elements("css selector", ".normbook-figure")[0]
    driver.execute_script(  # what a transparent matplotlib figure would look like
        "const r = arguments[0]; r.style.background = 'transparent';"
        "r.style.color = 'inherit'; r.parentElement.style.background = '#121212';"
        "r.querySelectorAll('svg path').forEach(p => { if (/fill: ?#ffffff/.test("
        "p.getAttribute('style'))) p.style.fill = 'none'; });", root)
    dark = dict(text_contrasts(driver, root))
    assert dark["step k"] < 2, dark   # black axis labels on #121212
    open_in_theme(driver, site.as_uri(), "dark")
    root = driver.find_elements("css selector", ".normbook-figure")[0]
    driver.execute_script("arguments[0].querySelectorAll('svg text').forEach("
                          "t => t.style.fill = '#009E73');", root)   # Okabe-Ito green on white
    green = [ratio for _, ratio in text_contrasts(driver, root, texts="svg text")]
    assert len(green) > 10 and max(green) < MIN_CONTRAST, green   # 3.4:1


def test_divergence_notes_are_readable_in_the_dark_theme(site, driver):
    """With every slider at its maximum the figures say "diverged at step k" in their
    SVG: that text too keeps 4.5:1, measured from the pixels."""
    open_in_theme(driver, site.as_uri(), "dark")
    low, seen = [], 0
    for fig, root in enumerate(driver.find_elements("css selector", ".normbook-figure")):
        for i in range(len(root.find_elements("css selector", "input[type=range]"))):
            driver.execute_script(MOVE_JS, fig, i, 10 ** 6)
        for text, ratio in text_contrasts(driver, root):
            seen += "diverged" in text
            if ratio < MIN_CONTRAST:
                low.append((fig, text, round(ratio, 2)))
    assert seen and not low, (seen, low)


def test_the_real_book_meets_wcag_21_aa_in_both_themes(book_build, driver):
    """axe-core on every page of the real book, light and dark: no violation. Every
    interactive figure's texts keep 4.5:1 in the dark theme, and the intro's figure is
    named by its slider values and moves from the keyboard."""
    from selenium.webdriver.common.keys import Keys

    need(axe=True)
    pages = site_pages(BOOK_HTML)
    assert len(pages) >= len(BOOK_PAGES)
    t0 = time.perf_counter()
    found = axe_pages(driver, pages)
    print(f"axe over {len(pages)} pages x {len(THEMES)} themes: {time.perf_counter() - t0:.0f} s")
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    low = []
    for page in pages:
        open_in_theme(driver, page.as_uri(), "dark")
        for fig, root in enumerate(driver.find_elements("css selector", ".normbook-figure")):
            low += [(page.name, fig, text, round(ratio, 2))
                    for text, ratio in text_contrasts(driver, root) if ratio < MIN_CONTRAST]
    assert not low, low
    driver.get((BOOK_HTML / "intro.html").as_uri())
    before = driver.execute_script(FIGURE_STATE, 0)
    driver.find_element("css selector", ".normbook-figure input[type=range]").send_keys(
        Keys.ARROW_LEFT)
    after = driver.execute_script(FIGURE_STATE, 0)
    assert after["svg"] != before["svg"] and after["name"] != before["name"]
    assert after["name"] == describe(after["title"], after["labels"], after["values"])
