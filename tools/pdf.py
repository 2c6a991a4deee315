"""The whole book as one PDF, offline: _build/pdf/book.pdf.

Usage: python tools/pdf.py [--html DIR] [--out FILE]

Run it after ``python tools/build.py`` (tools/setup.sh builds the site): it builds and
executes nothing. Debian's Chromium (``/usr/bin/chromium`` and ``chromedriver``, driven
by selenium with the network switched off, as the browser tests do) opens every page of
the built site (DIR, default ``_build/html``) in ``_toc.yml`` order, waits until MathJax
has typeset it and its fonts and images have loaded, and prints it with the DevTools
command ``Page.printToPDF`` (print media, so ``_static/print.css`` applies: no sliders or
buttons, each interactive figure at its default values with a line saying so, solutions
expanded). pypdf then puts a title page with the contents in front, stamps running
titles and page numbers, and makes a bookmark per page with its sections below it.

Why each page alone rather than one page from Sphinx's ``singlehtml`` builder (tried:
``jupyter-book build --builder singlehtml`` reused the execution cache, then stopped in
``_ext/normbook_sphinx.py``, whose markup fix finds no HideCodeCellNode visitor for that
builder): printing the built site needs no second Sphinx build or configuration, the PDF
shows exactly the pages the tests check, and each page keeps its own MathJax run and SVG
ids. Most of the time goes into printing MathJax's CHTML mathematics (about 90 CPU
seconds for the book, 34 without mathematics).
"""

import argparse
import base64
import html
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:   # `python tools/pdf.py` puts tools/, not the root, on the path
    sys.path.insert(0, str(ROOT))

HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "pdf" / "book.pdf"
PAPER = (8.27, 11.69)                           # A4, inches
MARGINS = dict(marginTop=0.6, marginBottom=0.75, marginLeft=0.6, marginRight=0.6)  # inches
# Pages are laid out 1/0.88 times wider than the paper's 7.07-inch column (772 CSS pixels,
# close to the site's reading width, so the widest display equations fit) and printed at
# 0.88: body text 10.6 pt.
SCALE = 0.88
TYPESET_SECONDS = 180   # a page whose MathJax has not finished by then is an error

# Resolves once the page is ready to print: MathJax's first typeset done, every web font
# (MathJax's included) and every image loaded. Returns the math still untypeset.
READY_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  document.querySelectorAll('img[loading="lazy"]').forEach(img => { img.loading = 'eager'; });
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  const math = [...document.querySelectorAll('.math')];
  done({math: math.length, raw: math.filter(m => !m.querySelector('mjx-container')).length});
})().catch(err => done({error: String(err)}));
"""


# The headings printed on the open page, in document order, as plain text (math as the
# text of its MathML, the "#" links dropped); None for the theme's print header (the page
# title again and "Contents"), whose bookmarks the PDF leaves out. Chromium's own outline
# titles lose the spaces at line breaks, repeat some headings and drop the mathematics;
# its positions are right, so the bookmarks take its positions and these titles.
HEADINGS_JS = """
return [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
  .filter(h => h.checkVisibility())
  .map(h => {
    if (h.closest('#jb-print-docs-body')) return null;
    const c = h.cloneNode(true);
    c.querySelectorAll('.headerlink').forEach(e => e.remove());
    c.querySelectorAll('mjx-container').forEach(m => {
      const mml = m.querySelector('mjx-assistive-mml');
      m.replaceWith(mml ? mml.textContent : ''); });
    return c.textContent.replace(/\\s+/g, ' ').trim(); });
"""


def toc_pages(book: Path = ROOT) -> list[str]:
    """The page names of the book at ``book`` (a folder with ``_toc.yml``), in order."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    entries = [entry for part in toc.get("parts", [toc]) for entry in part.get("chapters", [])]
    names = [toc["root"]]
    while entries:   # depth first, as the site's navigation lists them
        entry = entries.pop(0)
        names.append(entry["file"])
        entries[:0] = entry.get("sections", [])
    return [str(Path(name).with_suffix("")) for name in names]


def page_title(page: Path) -> str:
    """The title of a built page: its ``<title>`` without the book's name after it."""
    import re

    text = html.unescape(re.search(r"<title>(.*?)</title>", page.read_text(), re.S).group(1))
    return text.split(" \u2014 ")[0].strip()


def site_pages(site: Path, book: Path = ROOT) -> list[Path]:
    """The built pages of ``site`` (an html folder) in the order of ``book``'s contents;
    a ValueError names ``html`` if the site is missing or lacks a page."""
    if not isinstance(site, Path):
        raise TypeError(f"html must be a path, got {type(site).__name__}")
    pages = [site / f"{name}.html" for name in toc_pages(book)]
    missing = [str(p) for p in pages if not p.is_file()]
    if missing:
        raise ValueError(f"html: no built page {', '.join(missing)}; build the site first "
                         "(python tools/build.py)")
    return pages


def print_to_pdf(driver, url: str, what: str, **options) -> tuple[bytes, list]:
    """Open ``url``, wait until it is typeset, print it (``Page.printToPDF``); returns
    the PDF's bytes and the printed headings (``HEADINGS_JS``)."""
    driver.get(url)
    state = driver.execute_async_script(READY_JS)
    if "error" in state or state["raw"]:
        raise RuntimeError(f"{what}: MathJax did not typeset the page ({state})")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    headings = driver.execute_script(HEADINGS_JS)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    options = {"paperWidth": PAPER[0], "paperHeight": PAPER[1], "printBackground": True,
               "generateDocumentOutline": True, "scale": SCALE, **MARGINS, **options}
    data = driver.execute_cdp_cmd("Page.printToPDF", options)["data"]
    return base64.b64decode(data), headings


def print_html(driver, text: str, what: str, **options) -> bytes:
    """Print an HTML document given as a string (the title page, the page numbers)."""
    with tempfile.TemporaryDirectory(prefix="normbook-pdf-") as tmp:
        path = Path(tmp) / "page.html"
        path.write_text(text, encoding="utf-8")
        return print_to_pdf(driver, path.as_uri(), what, **options)[0]


FRONT_CSS = """
body { font-family: sans-serif; color: #111; margin: 0; }
h1 { font-size: 28pt; font-weight: 500; margin: 2.2in 0 0.2in; }
.by { font-size: 14pt; margin: 0 0 1.4in; }
h2 { font-size: 14pt; font-weight: 600; margin: 0 0 0.15in; }
ol { list-style: none; padding: 0; font-size: 12pt; }
li { display: flex; margin: 0.08in 0; }
li .dots { flex: 1; border-bottom: 1px dotted #777; margin: 0 0.4em 0.3em; }
.small { font-size: 9pt; color: #444; margin-top: 1.2in; }
"""


def front_matter(config: dict, entries: list[tuple[str, int]], printed: str) -> str:
    """The title page as HTML: title, author, contents (title, first page), licences."""
    items = "".join(f'<li><span>{html.escape(t)}</span><span class="dots"></span>'
                    f"<span>{n}</span></li>" for t, n in entries)
    footer = str(config.get("html", {}).get("extra_footer", "")).strip()  # our own HTML
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(config['title'])}</title><style>{FRONT_CSS}</style></head>"
            f"<body><h1>{html.escape(config['title'])}</h1>"
            f'<p class="by">{html.escape(config.get("author", ""))}</p>'
            f"<h2>Contents</h2><ol>{items}</ol>"
            f'<p class="small">{footer}<br>Printed from the web version on {printed}; '
            "its figures with sliders are shown at their default values.</p></body></html>")


STAMP_CSS = (f"@page {{ size: {PAPER[0]}in {PAPER[1]}in; margin: 0 }} body {{ margin: 0 }}"
             f" .p {{ height: {PAPER[1] - 0.1}in; position: relative; break-after: page }}"
             " .p:last-child { break-after: auto }"
             " .f { position: absolute; left: 0.6in; right: 0.6in; bottom: 0.3in;"
             " display: flex; justify-content: space-between; font: 8pt sans-serif;"
             " color: #555 }")


def stamps(running: list[str], first: int) -> str:
    """One page per entry of ``running`` (its running title) with the page number,
    counting from ``first``: printed over the book's pages."""
    pages = "".join(f'<div class="p"><div class="f"><span>{html.escape(t)}</span>'
                    f"<span>{first + i}</span></div></div>" for i, t in enumerate(running))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>pages</title>'
            f"<style>{STAMP_CSS}</style></head><body>{pages}</body></html>")


def build_pdf(site: Path = HTML, out: Path = OUT, book: Path = ROOT) -> dict:
    """Print the built site ``site`` (the book at ``book``) into the PDF ``out``; returns
    its page count, size in bytes, and the seconds and CPU seconds (Chromium's included)
    it took."""
    from tools.sitekit import chrome

    start, cpu0, pages = time.perf_counter(), _own_cpu_seconds(), site_pages(site, book)
    config = yaml.safe_load((book / "_config.yml").read_text())
    titles = [page_title(p) for p in pages]
    driver = chrome()
    driver.set_script_timeout(TYPESET_SECONDS)
    try:
        printed, headings = zip(*(_print_page(driver, p) for p in pages))
        front = _front_matter(driver, config, titles, printed)
        running = [t for t, r in zip(titles, printed) for _ in r.pages]
        numbers = _read(print_html(driver, stamps(running, len(front.pages) + 1),
                                   "page numbers", generateDocumentOutline=False, scale=1,
                                   **dict.fromkeys(MARGINS, 0)))
        browser_cpu = _cpu_seconds(driver.service.process.pid)
    finally:
        driver.quit()
    writer = _merge(front, titles, printed, headings, numbers)
    writer.add_metadata({"/Title": config["title"], "/Author": config.get("author", ""),
                         "/Creator": "tools/pdf.py: Chromium Page.printToPDF, pypdf"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        writer.write(f)
    return {"pages": len(writer.pages), "bytes": out.stat().st_size,
            "seconds": time.perf_counter() - start,
            "cpu_seconds": _own_cpu_seconds() - cpu0 + browser_cpu}


def _read(pdf: bytes):
    from pypdf import PdfReader

    return PdfReader(io.BytesIO(pdf))


def _print_page(driver, page: Path):
    pdf, headings = print_to_pdf(driver, page.as_uri(), str(page))
    return _read(pdf), headings


def _front_matter(driver, config: dict, titles: list, printed: list):
    """The title page with the contents, printed twice: the first time to learn how many
    pages it takes, hence where each page of the book starts."""
    today = time.strftime("%d %B %Y")
    trial = _read(print_html(driver, front_matter(config, [(t, 999) for t in titles], today),
                             "title page", **FRONT_OPTIONS))
    first, entries = len(trial.pages) + 1, []
    for title, reader in zip(titles, printed):
        entries.append((title, first))
        first += len(reader.pages)
    return _read(print_html(driver, front_matter(config, entries, today), "title page",
                            **FRONT_OPTIONS))


FRONT_OPTIONS = dict(marginTop=0.8, marginBottom=0.8, generateDocumentOutline=False, scale=1)


def _own_cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(u.ru_utime + u.ru_stime for u in used)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants
    (chromedriver and Chromium: a measure of the work that the machine's load does not
    stretch)."""
    import psutil   # a dependency of ipykernel

    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:   # gone meanwhile
            pass
    return total


def _merge(front, titles, printed, headings, numbers):
    """Title page, then each printed page under a bookmark of its title, numbered."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.append(front, import_outline=False)
    for title, reader, names in zip(titles, printed, headings):
        offset = len(writer.pages)
        writer.append(reader, import_outline=False)
        _bookmarks(writer, reader, title, names, offset)
    body = writer.pages[len(front.pages):]
    if len(numbers.pages) != len(body):
        raise RuntimeError(f"page numbers: {len(numbers.pages)} stamps for {len(body)} pages")
    for page, stamp in zip(body, numbers.pages):
        page.merge_page(stamp)
    writer.compress_identical_objects()
    return writer


def _flat(items) -> list:
    return [x for item in items for x in (_flat(item) if isinstance(item, list) else [item])]


def _bookmarks(writer, reader, title: str, headings: list, offset: int) -> None:
    """A bookmark ``title`` at ``offset`` (where the first page ``reader`` printed now is
    in ``writer``), Chromium's outline of those pages below it, titled by ``headings``."""
    top = writer.add_outline_item(title=title, page_number=offset)
    items = reader.outline
    if len(headings) != len(_flat(items)):   # cannot pair them up: Chromium's own titles
        headings = [item.title for item in _flat(items)]
    _copy_outline(writer, reader, items, top, offset, iter(headings))


def _copy_outline(writer, reader, items, parent, offset, names) -> None:
    last = parent
    for item in items:
        if isinstance(item, list):   # the children of the item before it
            _copy_outline(writer, reader, item, last, offset, names)
            continue
        name = next(names)
        if name is None:             # the print header: its children go one level up
            last = parent
            continue
        last = writer.add_outline_item(
            title=name, parent=parent,
            page_number=offset + reader.get_destination_page_number(item))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=HTML,
                        help="the built site (default: _build/html)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="the PDF to write (default: _build/pdf/book.pdf)")
    args = parser.parse_args(argv)
    made = build_pdf(args.html.resolve(), args.out.resolve())
    print(f"{args.out}: {made['pages']} pages, {made['bytes'] / 1e6:.1f} MB, "
          f"{made['seconds']:.0f} s ({made['cpu_seconds']:.0f} CPU-s incl. Chromium)")
    return made


if __name__ == "__main__":
    main()
