"""The class view (_static/classview.js, classview.css): a chapter's interactive figures
one per screen, for a projector, from disk with the network off.

Builds the one-page throwaway book of tools/sitekit.py (two figures: two sliders, then
one) with the second figure captioned as myst-nb does it (a <figure> with a
<figcaption>), and drives the view in headless Chromium with the keyboard. Without
Chromium (or axe-core, for the accessibility test) these tests skip, saying why; in CI
(``CI=true``) they fail instead (tests/test_browser.py's ``need``).
"""

import json
import time

import pytest

from tests.test_browser import BOOK_HTML, BOOK_PAGES, need
from tools.sitekit import (AXE_JS, AXE_RUN, AXE_TAGS, LOCAL_PREFIXES, THEMES, axe_violations,
                           build_book, chrome, open_in_theme, requested_urls)

CAPTION = "The same descent on a stiffer quadratic (κ = 100)."
VIEWPORT = (1920, 1080)   # a projector's window; the viewport is what the bar leaves


def _caption_second_figure(write):
    """nbformat.write that captions the throwaway book's second figure, as a chapter
    does with cell metadata (myst-nb then wraps the output in <figure>)."""
    def captioned(nb, path, **kwargs):
        for cell in nb.cells:
            if "second figure" in cell.source:
                cell.metadata["mystnb"] = {"figure": {"caption": CAPTION, "name": "fig-second"}}
        return write(nb, path, **kwargs)
    return captioned


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    need()
    import tools.sitekit as sitekit

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sitekit.nbformat, "write", _caption_second_figure(sitekit.nbformat.write))
        return build_book(tmp_path_factory.mktemp("classview"))


@pytest.fixture
def driver():
    browser = chrome()
    browser.set_window_size(*VIEWPORT)
    browser.get("about:blank")
    browser.get_log("performance")   # the browser's own start-up requests are not ours
    yield browser
    browser.quit()


# Everything the tests look at, read in one script: the view, the figures and their places.
STATE = """
const dlg = document.querySelector('dialog.classview');
const figs = [...document.querySelectorAll('.normbook-figure')];
// seen: some point of the figure inside the viewport is not covered by anything else
const seen = f => { const r = f.getBoundingClientRect();
  const x0 = Math.max(r.left, 0), x1 = Math.min(r.right, innerWidth);
  const y0 = Math.max(r.top, 0), y1 = Math.min(r.bottom, innerHeight);
  if (x1 - x0 < 2 || y1 - y0 < 2) return false;
  for (const [a, b] of [[.5, .5], [.1, .1], [.9, .1], [.1, .9], [.9, .9]]) {
    const hit = document.elementFromPoint(x0 + a * (x1 - x0), y0 + b * (y1 - y0));
    if (hit && f.contains(hit)) return true; }
  return false; };
const shown = figs.filter(seen);
const fig = dlg && dlg.open ? dlg.querySelector('.normbook-figure') : null;
const svg = fig && fig.querySelector('.nbf-svg svg');
const box = svg && svg.getBoundingClientRect();
const vb = svg && svg.viewBox.baseVal;
const active = document.activeElement;
return {
  open: !!(dlg && dlg.open), hash: location.hash, scrollY: window.scrollY,
  viewport: [innerWidth, innerHeight],
  role: dlg && dlg.getAttribute('role'), modal: dlg && dlg.getAttribute('aria-modal'),
  labelledby: dlg && dlg.getAttribute('aria-labelledby'),
  heading: dlg && dlg.querySelector('.classview-title').textContent,
  counter: dlg && dlg.querySelector('.classview-n').textContent,
  shown: shown.map(f => f.id), inView: fig && fig.id,
  title: fig && (fig.querySelector(':scope > p > strong') || {}).textContent,
  caption: (c => c && dlg.contains(c) && c.getBoundingClientRect().bottom <= innerHeight
             && c.checkVisibility() ? c.textContent.trim() : null)(
             fig && fig.closest('figure') && fig.closest('figure').querySelector('figcaption')),
  svgBox: box && [box.width, box.height], aspect: vb && vb.width / vb.height,
  name: svg && svg.getAttribute('aria-label'), svgHTML: svg && svg.innerHTML,
  values: fig && [...fig.querySelectorAll('input[type=range]')].map(i => i.value),
  outputs: fig && [...fig.querySelectorAll('output')].map(o => o.textContent),
  active: active && (active.id || active.className || active.tagName),
  activeInView: !!(dlg && dlg.contains(active)),
  places: Object.fromEntries(figs.map(f => { const u = f.closest('figure') || f;
    return [f.id, [u.parentElement.className, [...u.parentElement.children].indexOf(u)]]; })),
  onPage: figs.filter(f => !(dlg && dlg.contains(f))).length,
  leftovers: document.querySelectorAll('.classview-placeholder, .classview-chain').length,
  locked: document.documentElement.classList.contains('classview-active'),
};
"""


def state(driver) -> dict:
    return driver.execute_script(STATE)


def press(driver, *keys) -> dict:
    """Send keys to whatever has the focus (as a user types) and return the new state."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()
    return state(driver)


def filled(s) -> float:
    """How much of the viewport the drawing fills along its limiting dimension: the SVG's
    box shrunk to its viewBox's aspect ratio (the SVG scales its drawing to fit,
    centred), as a share of the viewport's width or height, whichever is larger."""
    w, h = s["svgBox"]
    w, h = min(w, h * s["aspect"]), min(h, w / s["aspect"])
    return max(w / s["viewport"][0], h / s["viewport"][1])


def test_button_opens_the_view_from_the_page(page, driver):
    """The page's head loads classview.css/js (jupyter-book includes every file of
    _static); one real <button> sits under the page title, is reached with Tab and shows
    a focus ring; Enter opens the view on figure 1 with the focus inside it."""
    from selenium.webdriver.common.keys import Keys

    head = page.read_text().split("</head>")[0]
    assert "_static/classview.css" in head and "_static/classview.js" in head
    driver.get(page.as_uri())
    buttons = driver.find_elements("css selector", ".classview-button")
    assert len(buttons) == 1 and buttons[0].tag_name == "button"
    assert buttons[0].get_attribute("type") == "button" and buttons[0].text == "Class view"
    assert driver.execute_script("const b = arguments[0], h = document.querySelector("
                                 "'.bd-article h1'); return h.nextElementSibling.contains(b)",
                                 buttons[0])
    before = driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle",
                                   buttons[0])
    for _ in range(60):   # skip link, header and sidebar links, then the article
        if driver.execute_script("return document.activeElement") == buttons[0]:
            break
        press(driver, Keys.TAB)
    assert driver.execute_script("return document.activeElement") == buttons[0], \
        "Tab never reached the Class view button"
    ring = driver.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, "
        "parseFloat(s.outlineWidth), arguments[0].matches(':focus-visible')]", buttons[0])
    assert before == "none" and ring[0] == "solid" and ring[1] >= 2 and ring[2], (before, ring)
    s = press(driver, Keys.ENTER)
    assert s["open"] and s["counter"] == "1 / 2" and s["hash"] == "#class-view-1"
    assert s["activeInView"] and s["active"].endswith("-s0"), s["active"]   # first slider


@pytest.mark.parametrize("fragment, n", [("#class-view", 1), ("#class-view-2", 2)])
def test_fragment_shows_one_figure_filling_the_viewport(page, driver, fragment, n):
    """Opened by the URL fragment (at load and by changing the fragment): a modal dialog
    named by the figure's title, only that figure visible, its drawing filling most of
    the viewport at its own aspect ratio, its caption with it."""
    for how in ("load", "hashchange"):
        if how == "load":
            driver.get(page.as_uri() + fragment)
        else:
            driver.get(page.as_uri())
            driver.execute_script("location.hash = arguments[0]", fragment)
        time.sleep(0.2)
        s = state(driver)
        assert s["open"] and s["role"] == "dialog" and s["modal"] == "true", (how, s["open"])
        dialog = driver.find_element("css selector", "dialog.classview")
        assert dialog.aria_role == "dialog" and dialog.accessible_name == s["title"], how
        assert s["heading"] == s["title"] and s["counter"] == f"{n} / 2"
        assert s["shown"] == [s["inView"]], f"{how}: visible figures {s['shown']}"
        assert s["activeInView"] and s["locked"]
        assert s["caption"] == (None if n == 1 else "Fig. 1 " + CAPTION + "#"), s["caption"]
        # the drawing spans the viewport's width, or its height bar the title bar, the
        # sliders, the caption and the keys line (about 200 px); on the page the drawing
        # is at most 720 pt wide (960 px, half the width)
        assert filled(s) >= 0.6, (how, s["svgBox"], s["viewport"], filled(s))
        print(f"{fragment} by {how}: SVG box {s['svgBox']} in a {s['viewport']} viewport, "
              f"the drawing fills {filled(s):.0%} of it")


def test_keys_move_sliders_and_figures(page, driver):
    """→ steps the current slider by one grid value and the drawing, the value shown and
    the accessible name follow (the figure's own script ran); ↓ picks the next slider;
    ← undoes; n / PageDown go to figure 2 (counter, fragment and title follow, figure 1
    back on the page), p / PageUp come back."""
    from selenium.webdriver.common.keys import Keys

    driver.get(page.as_uri())
    home = state(driver)["places"]
    driver.execute_script("location.hash = '#class-view'")
    start = state(driver)
    svg = driver.find_element("css selector", "dialog.classview .nbf-svg svg")
    assert svg.accessible_name == start["name"]
    right = press(driver, Keys.ARROW_RIGHT)
    assert int(right["values"][0]) == int(start["values"][0]) + 1
    assert right["values"][1] == start["values"][1]
    assert right["svgHTML"] != start["svgHTML"]
    assert right["outputs"][0] != start["outputs"][0] and right["name"] != start["name"]
    assert right["outputs"][0] in right["name"]
    assert svg.accessible_name == right["name"]
    down = press(driver, Keys.ARROW_DOWN)
    assert down["values"] == right["values"] and down["active"].endswith("-s1")
    second = press(driver, Keys.ARROW_RIGHT)
    assert int(second["values"][1]) == int(start["values"][1]) + 1
    assert second["values"][0] == right["values"][0] and second["svgHTML"] != right["svgHTML"]
    press(driver, Keys.ARROW_LEFT)
    press(driver, Keys.ARROW_UP)
    # the arrows move the current slider wherever the focus is in the view
    driver.execute_script("document.querySelector('dialog.classview .classview-close').focus()")
    back = press(driver, Keys.ARROW_LEFT)
    assert (back["values"], back["svgHTML"], back["name"]) == \
           (start["values"], start["svgHTML"], start["name"])
    driver.find_element("css selector", "dialog.classview input[type=range]").click()
    tab = press(driver, Keys.TAB)   # Tab reaches the next slider, and the arrows follow
    assert tab["active"].endswith("-s1"), tab["active"]
    moved = press(driver, Keys.ARROW_LEFT)
    assert moved["values"][0] == tab["values"][0] and moved["values"][1] != tab["values"][1]
    press(driver, Keys.ARROW_RIGHT)
    for forward, backward in (("n", "p"), (Keys.PAGE_DOWN, Keys.PAGE_UP)):
        nxt = press(driver, forward)
        assert nxt["counter"] == "2 / 2" and nxt["hash"] == "#class-view-2"
        assert nxt["inView"] != start["inView"] and nxt["shown"] == [nxt["inView"]]
        assert nxt["heading"] == nxt["title"] == "second figure, same page"
        assert driver.find_element("css selector", "dialog.classview").accessible_name \
            == nxt["title"]
        assert nxt["places"][start["inView"]] == home[start["inView"]]   # figure 1 home
        assert press(driver, forward)["counter"] == "2 / 2"   # the last figure stays
        prev = press(driver, backward)
        assert prev["counter"] == "1 / 2" and prev["hash"] == "#class-view-1"
        assert prev["inView"] == start["inView"]
    driver.refresh()   # a reload returns to the figure shown
    press(driver, "n")
    driver.refresh()
    assert state(driver)["counter"] == "2 / 2"


def test_escape_restores_the_page(page, driver):
    """Esc (and the Close button) leave the view: every figure back where it was, no
    overlay or placeholder left, the fragment gone, the page scrolled where it was and
    the focus back on the button."""
    from selenium.webdriver.common.keys import Keys

    driver.get(page.as_uri())
    home = state(driver)
    assert not home["open"] and home["leftovers"] == 0
    button = driver.find_element("css selector", ".classview-button")
    for close in (Keys.ESCAPE, "button"):
        driver.execute_script("window.scrollTo(0, 400)")
        at = state(driver)
        y = at["scrollY"]
        assert y > 300 and at["shown"], at["shown"]   # a figure is on screen
        driver.execute_script("arguments[0].click()", button)   # a click does not scroll
        press(driver, "n")
        assert state(driver)["counter"] == "2 / 2"
        if close == "button":
            driver.find_element("css selector", "dialog.classview .classview-close").click()
            s = state(driver)
        else:
            s = press(driver, close)
        assert not s["open"] and s["places"] == home["places"], (close, s["places"])
        assert s["leftovers"] == 0 and not s["locked"] and s["hash"] == ""
        assert s["shown"] == at["shown"]
        assert abs(s["scrollY"] - y) <= 1, (close, s["scrollY"], y)
        assert driver.execute_script("return document.activeElement") == button, close
        overlay = driver.execute_script(
            "const d = document.querySelector('dialog.classview');"
            "return d.getBoundingClientRect().height + ' ' + getComputedStyle(d).display")
        assert overlay == "0 none", overlay
    # going to another anchor (a link in a caption) leaves the view for that anchor
    driver.execute_script("location.hash = '#class-view-2'")
    assert state(driver)["open"]
    driver.execute_script("location.hash = '#fig-second'")
    s = state(driver)
    assert not s["open"] and s["hash"] == "#fig-second" and s["places"] == home["places"]
    # the figures still work where they are
    slider = driver.find_element("css selector", ".normbook-figure input[type=range]")
    before = state(driver)["places"]
    slider.send_keys(Keys.HOME)
    assert slider.get_attribute("value") == "0" and state(driver)["places"] == before


def test_view_is_accessible_offline_and_hidden_in_print(page, driver):
    """axe-core finds no WCAG 2.1 AA violation with the view open (each figure, light
    and dark); nothing was requested outside file://; in print neither the button nor
    the view shows."""
    need(axe=True)
    for theme in THEMES:
        open_in_theme(driver, page.as_uri(), theme)
        for n in (1, 2):
            driver.get(page.as_uri() + f"#class-view-{n}")
            assert state(driver)["counter"] == f"{n} / 2"
            found = axe_violations(driver)
            assert found == [], (theme, n, json.dumps(found, indent=1, ensure_ascii=False))
    urls = requested_urls(driver)
    assert urls and all(u.startswith(LOCAL_PREFIXES) for u in urls), \
        [u for u in urls if not u.startswith(LOCAL_PREFIXES)]
    assert any("_static/classview.js" in u for u in urls) and \
        any("mathjax" in u for u in urls), urls   # the log saw the page's own requests
    driver.get(page.as_uri())
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        shown = driver.execute_script(
            "return [...document.querySelectorAll('.classview-launch, dialog.classview')]"
            ".map(e => getComputedStyle(e).display)")
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert shown == ["none"], shown   # the dialog is made on first use
    driver.get(page.as_uri() + "#class-view-2")
    driver.execute_script("window.dispatchEvent(new Event('beforeprint'))")
    s = state(driver)   # printing from the view prints the page, figures in place
    assert not s["open"] and s["leftovers"] == 0 and s["onPage"] == 2


# axe-core on the open view only: tests/test_browser.py checks the rest of each page, and
# a chapter's whole page takes axe about 20 s a theme.
AXE_IN_VIEW = AXE_RUN.replace("axe.run(document,", "axe.run('dialog.classview',")


def axe_in_view(driver) -> list[dict]:
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(AXE_JS.read_text())
    return driver.execute_async_script(AXE_IN_VIEW, AXE_TAGS)


def check_book_page(driver, path) -> int:
    """A page of the real book: a button if and only if it has interactive figures; each
    figure in the view (counter, one figure shown, Home/End redraws), axe clean on the
    view in both themes, Esc home. Returns the number of figures."""
    from selenium.webdriver.common.keys import Keys

    driver.get(path.as_uri())
    home = state(driver)
    figures = driver.execute_script(
        "return [...document.querySelectorAll('.normbook-figure')]"
        ".filter(f => f.querySelector('input[type=range]')).length")
    buttons = len(driver.find_elements("css selector", ".classview-button"))
    assert buttons == (figures > 0), (path, figures, buttons)
    for n in range(1, figures + 1):
        driver.get(path.as_uri() + f"#class-view-{n}")
        s = state(driver)
        assert s["counter"] == f"{n} / {figures}" and s["shown"] == [s["inView"]], (path, n)
        assert filled(s) >= 0.5, (path, n, filled(s))
        moved = press(driver, Keys.END if s["values"][0] == "0" else Keys.HOME)
        assert moved["svgHTML"] != s["svgHTML"] and moved["name"] != s["name"], (path, n)
    if figures:
        for theme in THEMES:   # as the theme's button switches it (no reload: 10 s a page)
            driver.execute_script("document.documentElement.dataset.theme = arguments[0];"
                                  "document.documentElement.dataset.mode = arguments[0];", theme)
            assert axe_in_view(driver) == [], (path, theme)
        s = press(driver, Keys.ESCAPE)
        assert not s["open"] and s["places"] == home["places"] and s["leftovers"] == 0
    return figures


def test_the_real_chapters_have_a_class_view(book_build, driver):
    """Every page of the real book (tests/test_browser.py's BOOK_PAGES): see
    check_book_page; every chapter has at least one interactive figure."""
    need(axe=True)
    for name in BOOK_PAGES:
        t0 = time.perf_counter()
        figures = check_book_page(driver, BOOK_HTML / f"{name}.html")
        assert figures or not name.startswith("chapters/"), name
        print(f"{name}: {figures} figures in the class view, {time.perf_counter() - t0:.1f} s")
