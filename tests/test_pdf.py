"""The book as a PDF (tools/pdf.py) and the print stylesheet (_static/print.css).

The PDF is printed from the built site (the ``book_build`` fixture builds it as the
README's first command does) by Debian's Chromium, then read back as text with pypdf and
checked against the sources: the titles from ``_toc.yml`` and the notebooks' first
headings, every figure caption (cell metadata ``mystnb.figure.caption``), the
bibliography (``references.bib``), the print-only line of every interactive figure (its
sliders' labels and default values, read from the built page's controls), solutions
printed, hidden code not, and no raw reprs or untypeset TeX. Without Chromium the tests
skip, saying why; in CI (``CI=true``) they fail instead.
"""

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.test_browser import need
from tools.pdf import page_title, site_pages, toc_pages
from tools.sitekit import ROOT

HTML = ROOT / "_build" / "html"
PRINT_NOTE = "In the web version the sliders are live."
# Smart quotes and dashes as Sphinx's smartquotes writes them, and MathJax's own ASCII
MATCH_TABLE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                             "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "..."})


def need_chromium() -> None:
    """Skip (fail in CI) unless Chromium, chromedriver, selenium and pypdf are installed."""
    need(modules=("selenium", "pypdf"))


def squash(text: str) -> str:
    """Text compared without layout: compatibility forms folded, quotes and dashes made
    ASCII, soft hyphens and all white space (line breaks of the PDF) removed, lower case."""
    text = unicodedata.normalize("NFKC", text).translate(MATCH_TABLE)
    return re.sub(r"\s+|\u00ad", "", text).lower()


@pytest.fixture(scope="module")
def book_pdf(book_build, tmp_path_factory):
    """The PDF of the real book, printed by the documented command."""
    need_chromium()
    out = tmp_path_factory.mktemp("pdf") / "book.pdf"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "pdf.py"), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0 and out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    print(run.stdout.strip())
    return out


@pytest.fixture(scope="module")
def printed(book_pdf):
    return read_pdf(book_pdf)


def read_pdf(path: Path):
    """(text of every PDF page, {page name: (first, last) PDF page index}) from the
    top-level bookmarks, one per page of the site."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    texts = [page.extract_text() for page in reader.pages]
    tops = [item for item in reader.outline if not isinstance(item, list)]
    starts = [reader.get_destination_page_number(item) for item in tops]
    ends = [s - 1 for s in starts[1:]] + [len(texts) - 1]
    names = toc_pages(ROOT)
    assert [item.title for item in tops] == [page_title(HTML / f"{n}.html") for n in names]
    return texts, dict(zip(names, zip(starts, ends)))


def page_text(printed, name: str) -> str:
    texts, spans = printed
    first, last = spans[name]
    return "\n".join(texts[first:last + 1])


def notebook(name: str) -> dict | None:
    path = ROOT / f"{name}.ipynb"
    return json.loads(path.read_text()) if path.exists() else None


def first_heading(name: str) -> str:
    nb = notebook(name)
    lines = ("".join(c["source"]).splitlines() for c in nb["cells"] if c["cell_type"] == "markdown")
    return next(line[2:].strip() for cell in lines for line in cell if line.startswith("# "))


def test_every_page_is_printed_in_order_under_its_title(printed):
    texts, spans = printed
    assert list(spans) == toc_pages(ROOT) and len(spans) >= 6   # intro, 4 chapters, references
    contents = squash(texts[0])
    for name, (first, last) in spans.items():
        assert first <= last, name
        title = page_title(HTML / f"{name}.html")
        # listed in the contents with its first page number, and printed from that page on
        assert re.search(re.escape(squash(title)) + rf"{first + 1}(?!\d)", contents), name
        heading = first_heading(name) if notebook(name) else title
        assert squash(heading) in squash(texts[first]), name


def test_pages_carry_their_numbers(printed):
    texts, _ = printed
    for i, text in enumerate(texts[1:], start=2):
        assert re.search(rf"(?<!\d){i}\s*$", text.strip()), f"page {i}: {text[-80:]!r}"


# *emphasis*, **strong**, `code`: an opening mark not after a letter, closing not before
# one (so the star of "α*" stays, as MyST prints it)
EMPHASIS = re.compile(r"(?<![\w*`])(\*{1,2}|`)(?=[^\s*`])(.+?)(?<=\S)\1(?![\w*`])")


def caption_fragments(caption: str) -> list[str]:
    """The plain-text runs of a caption: the pieces between its TeX ($...$) and MyST roles,
    emphasis and code marks dropped, at least two words long."""
    pieces = re.split(r"\$\$.*?\$\$|\$.*?\$|\{[\w:-]+\}`[^`]*`", caption)
    pieces = [EMPHASIS.sub(r"\2", p).strip(" ,;:.()") for p in pieces]
    return [p for p in pieces if len(p.split()) >= 2]


def figure_captions(name: str) -> list[str]:
    nb = notebook(name)
    if nb is None:
        return []
    return [c["metadata"]["mystnb"]["figure"]["caption"] for c in nb["cells"]
            if c["cell_type"] == "code" and c["metadata"].get("mystnb", {}).get("figure")]


def test_every_figure_caption_is_printed_with_its_number(printed):
    total = 0
    for name in toc_pages(ROOT):
        text = squash(page_text(printed, name))
        for caption in figure_captions(name):
            fragments = [squash(f) for f in caption_fragments(caption)]
            assert fragments, caption
            missing = [f for f in fragments if f not in text]
            assert not missing, (name, missing, caption)
            # located by its longest run of text; its first run and its number ("Fig. 2.3")
            # come just before (the mathematics between runs prints as little text)
            longest = max(fragments, key=len)
            at = text.find(longest)
            before = text[max(0, at - len(squash(caption)) - 20):at]
            first = before.rfind(fragments[0]) if fragments[0] != longest else len(before)
            assert first >= 0, (name, caption[:60])
            assert re.search(r"fig\.\d+(\.\d+)*$", before[max(0, first - 40):first]), \
                (name, caption[:60], before[max(0, first - 40):first])
            total += 1
    assert total >= 40, total   # the book's figures, static and interactive


def test_bibliography_is_printed(printed):
    bib = (ROOT / "references.bib").read_text()
    titles = dict(re.findall(r"@\w+\{(\w+),.*?\n\s*title\s*=\s*\{(.*?)\},\n", bib, re.S))
    refs = squash(page_text(printed, "references"))
    for key in ("arora2019autorate", "cai2019bngd", "li2020exponential", "dukler2020wn"):
        assert squash(titles[key].replace("{", "").replace("}", "")) in refs, key
    built = (HTML / "references.html").read_text().lower()
    for key, title in titles.items():   # every entry the site lists is in the PDF too
        plain = title.replace("{", "").replace("}", "")
        if plain.lower() in built:
            assert squash(plain) in refs, key


def slider_defaults(page: Path) -> list[str]:
    """For every interactive figure of a built page, "label = value, ..." read from its
    controls (each slider's label and the value its output shows at load)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(), "html.parser")
    lines = []
    for fig in soup.select("div.normbook-figure"):
        rows = fig.select(".nbf-controls .nbf-row")
        lines.append(", ".join(f"{r.label.get_text()} = {r.output.get_text()}" for r in rows))
    return lines


def test_each_interactive_figure_says_which_values_it_shows(printed):
    total = 0
    for name, page in zip(toc_pages(ROOT), site_pages(HTML, ROOT)):
        text = squash(page_text(printed, name))
        shown = slider_defaults(page)
        assert text.count(squash(PRINT_NOTE)) == len(shown), name
        for values in shown:
            assert squash(f"Shown at {values}. {PRINT_NOTE}") in text, (name, values)
        total += len(shown)
    assert total >= 8, total   # the intro's and every chapter's interactive figures


def test_no_reprs_no_untypeset_math_no_screen_furniture(printed):
    texts, _ = printed
    text = "\n".join(texts)
    for raw in ("<lib.", "object at 0x",                          # reprs
                "\\(", "\\)", "\\[", "\\]", "$$",                  # TeX MathJax left alone
                "Show code cell source", "Binder/Colab buttons above",  # screen notes
                "Traceback"):
        assert raw not in text, raw
    # an interactive figure's repr, InteractiveFigure('title', ...); the code that makes
    # one, InteractiveFigure(compute, draw, ...), is printed as the page shows it
    assert not re.search(r"InteractiveFigure\((['\"]|\s*\))", text)
    assert not re.search(r"\\(frac|eta|lVert|mathrm|alpha|nabla)\b", text)


def solution_texts(page: Path) -> list[str]:
    """For every solution on a built page, the longest run of its text between math."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(), "html.parser")
    found = []
    for box in soup.select("div.solution"):
        title = box.select_one(".admonition-title")
        if title:
            title.decompose()
        for math in box.select(".math, pre, code"):
            math.replace_with("\x00")
        runs = [r.strip(" ,;:.()") for r in box.get_text(" ").split("\x00")]
        found.append(max(runs, key=len))
    return found


def test_solutions_are_printed_open_and_hidden_code_is_not(printed):
    """The PDF is the instructor's book: every solution is printed, its text and not only
    its title. The code of hidden-input cells is not printed."""
    text = squash("\n".join(printed[0]))
    solutions = [t for page in site_pages(HTML) for t in solution_texts(page)]
    assert len(solutions) >= 10 and text.count(squash("Solution to Exercise")) == len(solutions)
    for body in solutions:
        assert len(body.split()) >= 3 and squash(body) in text, body
    for name in toc_pages(ROOT):
        nb = notebook(name)
        for cell in (nb or {"cells": []})["cells"]:
            if "hide-input" in cell["metadata"].get("tags", []):
                longest = max("".join(cell["source"]).splitlines(), key=len)
                assert squash(longest) not in text, (name, longest)


def test_pdf_refuses_a_missing_site(tmp_path):
    with pytest.raises(ValueError, match="^html: no built page"):
        site_pages(tmp_path, ROOT)
    with pytest.raises(TypeError, match="^html must be a path"):
        site_pages(str(tmp_path), ROOT)


# --- the print stylesheet, in the browser -------------------------------------------
VISIBLE_JS = """
const seen = sel => [...document.querySelectorAll(sel)].map(el =>
  el.checkVisibility({opacityProperty: true, visibilityProperty: true}));
return {sliders: seen('.normbook-figure input[type=range]'),
        figures: seen('.normbook-figure svg'),
        printLines: seen('.nbf-print-note'), siteNotes: seen('.nbf-site-note'),
        launch: seen('.dropdown-launch-buttons, .dropdown-download-buttons'),
        buttons: seen('.theme-switch-button, .search-button, .btn-fullscreen-button'),
        sidebars: seen('.bd-sidebar-primary, .bd-sidebar-secondary, .bd-header'),
        solutions: seen('div.solution .admonition-title ~ *'),
        hiddenCode: seen('div.cell.tag_hide-input div.cell_input')};
"""


def test_print_stylesheet_shows_only_the_printed_book(book_build):
    """Print media emulated on a built chapter: sliders, buttons, sidebars and the
    'run the notebook' note gone; the figure's image and its print-only line shown;
    solutions open; hidden code hidden. On screen, the print-only line is hidden."""
    need_chromium()
    from tools.sitekit import chrome

    page = HTML / "chapters" / "exponential_lr.html"
    assert re.search(r'<link[^>]+href="[./]*_static/print\.css', page.read_text())
    driver = chrome()
    driver.set_window_size(1280, 1000)   # a desktop: the sidebars and buttons are shown
    try:
        driver.get(page.as_uri())
        screen = driver.execute_script(VISIBLE_JS)
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        paper = driver.execute_script(VISIBLE_JS)
    finally:
        driver.quit()
    assert screen["sliders"] and all(screen["sliders"]) and not any(screen["printLines"])
    assert screen["hiddenCode"] and not any(screen["hiddenCode"])
    assert paper["figures"] and all(paper["figures"])
    assert len(paper["printLines"]) == len(paper["figures"]) and all(paper["printLines"])
    for hidden in ("sliders", "siteNotes", "launch", "buttons", "sidebars", "hiddenCode"):
        assert screen[hidden] and not any(paper[hidden]), hidden
    assert paper["solutions"] and all(paper["solutions"])


def test_the_print_line_states_the_sliders_default_values():
    """lib.site_figure writes, under each interactive figure, the values its image shows
    (the sliders' defaults, as their outputs show them), hidden on screen by itself."""
    from lib import site_figure
    from lib.widgets import Slider
    from tools.sitekit import demo

    fig, _ = demo(sliders=[Slider("eta", "η", 1e-3, 2.0, default=0.1, log=True, grid=5),
                           Slider("kappa", "κ", 1, 1e3, default=10, log=True, grid=4)])
    page = site_figure.site_html(fig)
    outputs = re.findall(r"<output[^>]*>([^<]*)</output>", page)
    line = re.search(r'<p class="nbf-print-note" style="([^"]*)">([^<]*)</p>', page)
    assert line and "display:none" in line.group(1).replace(" ", "")
    assert line.group(2) == f"Shown at η = {outputs[0]}, κ = {outputs[1]}. {PRINT_NOTE}"
    assert site_figure.PRINT_NOTE == PRINT_NOTE
    fig.set(eta=1.0)   # the live figure's static HTML states the values it shows
    assert "Shown at η = 1, κ = 10." in site_figure.static_html(fig)


def test_printing_from_the_dark_theme_prints_light(book_build):
    """_static/print.js: a page shown in the dark theme switches to the light one for
    printing (light text would vanish on white paper) and back afterwards."""
    need_chromium()
    from tools.sitekit import chrome, open_in_theme

    page = HTML / "intro.html"
    assert re.search(r'<script[^>]+src="[./]*_static/print\.js', page.read_text())
    driver = chrome()
    try:
        open_in_theme(driver, page.as_uri(), "dark")
        theme = "return document.documentElement.dataset.theme"
        driver.execute_script("window.dispatchEvent(new Event('beforeprint'))")
        assert driver.execute_script(theme) == "light"
        driver.execute_script("window.dispatchEvent(new Event('afterprint'))")
        assert driver.execute_script(theme) == "dark"
    finally:
        driver.quit()
