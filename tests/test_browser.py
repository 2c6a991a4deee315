"""The built site's interactive figures work from disk, offline, in headless Chromium.

Builds a one-page throwaway book with the real _config.yml mechanisms (NORMBOOK_BUILD
through _ext/, mime priorities, no ipywidgets CDN) and drives its sliders.
"""

import shutil

import pytest

from tools.sitekit import (CHROMEDRIVER, CHROMIUM, LOCAL_PREFIXES, MOVE_JS, ROOT,  # noqa: F401
                           build_book, chrome, redraw_times, requested_urls)


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
