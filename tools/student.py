"""The student edition: the site and the notebooks with every solution removed.

Usage: python tools/student.py [BOOK_DIR]

Writes BOOK_DIR/_build/student/notebooks (every page's notebook with its solutions
stripped) and BOOK_DIR/_build/student/html (the site built from those notebooks as
tools/build.py builds: solutions are absent from the pages, the search index and the
downloadable sources, not folded). The site reuses the execution cache of the ordinary
build (BOOK_DIR/_build/.jupyter_cache), so after ``python tools/build.py`` it executes
only notebooks whose solutions held code cells.

Solutions are written with sphinx-exercise in Markdown cells, either as a directive
(```` ```{solution} label ```` ... closing fence) or gated, when they hold code cells
(```` ```{solution-start} label ```` ... ```` ```{solution-end} ````, the cells between
included). Both forms are stripped from the notebooks.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}")
_START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}")
_END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}")


def strip_solution_blocks(text: str) -> str:
    """``text`` (a Markdown cell) without its ``{solution}`` directives, fences included.

    A directive ends at the first line that is its opening fence alone (the same
    characters, at least as many), as MyST reads it; nested directives use longer
    fences and so cannot close it.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    out, fence = [], None
    for line in text.splitlines(keepends=True):
        if fence is None:
            match = _OPEN.match(line)
            if match:
                fence = match["fence"]
                continue
            out.append(line)
        elif re.fullmatch(re.escape(fence[0]) + "{%d,}\\s*" % len(fence), line.rstrip("\n")):
            fence = None
    if fence is not None:
        raise ValueError(f"a {{solution}} directive opened with {fence} is never closed")
    return "".join(out)


def student_notebook(nb: dict) -> dict:
    """A copy of the notebook ``nb`` (nbformat 4, as JSON) without any solution: gated
    solutions (every cell from ``{solution-start}`` to ``{solution-end}``) and solution
    directives inside Markdown cells. Outputs of the remaining cells are kept."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise TypeError("nb must be a notebook as a dict with a 'cells' list")
    cells, inside = [], False
    for cell in nb["cells"]:
        src = "".join(cell.get("source", []))
        lines = src.splitlines()
        if cell.get("cell_type") == "markdown" and any(_START.match(x) for x in lines):
            if inside:
                raise ValueError("a {solution-start} opens inside another gated solution")
            inside = not any(_END.match(x) for x in lines)
            continue
        if inside:
            if cell.get("cell_type") == "markdown" and any(_END.match(x) for x in lines):
                inside = False
            continue
        if cell.get("cell_type") == "markdown":
            src = strip_solution_blocks(src)
            cell = {**cell, "source": src.splitlines(keepends=True)}
        cells.append(cell)
    if inside:
        raise ValueError("a gated solution ({solution-start}) is never closed")
    return {**nb, "cells": cells}


def pages(book: Path) -> list[Path]:
    """The notebooks of the book at ``book`` that its table of contents lists."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    names = [toc["root"]] + [entry["file"] for part in toc.get("parts", [toc])
                             for entry in part.get("chapters", [])]
    return [book / f"{name}.ipynb" for name in names if (book / f"{name}.ipynb").exists()]


def write_notebooks(book: Path, dest: Path) -> list[Path]:
    """Student copies of the book's notebooks under ``dest``, at their relative paths."""
    written = []
    for page in pages(book):
        target = dest / page.relative_to(book)
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = student_notebook(json.loads(page.read_text()))
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def build_site(book: Path, dest: Path) -> None:
    """The site of ``book`` built from its student notebooks, into ``dest`` (html).

    A copy of the book's sources (``_build``, hidden folders and environments left out)
    gets the student notebooks and is built as tools/build.py builds, with the book's
    execution cache: a notebook whose code cells are unchanged is not executed again. No
    solution reaches the build, so none can reach the pages, the search index or the
    notebooks the site offers for download.
    """
    src = book / "_build" / "student-src"
    shutil.rmtree(src, ignore_errors=True)
    skip = {"_build", "node_modules", "site-packages", "__pycache__"}
    shutil.copytree(book, src, ignore=lambda d, names: [
        n for n in names if n in skip or n.startswith(".") or
        (Path(d, n) / "pyvenv.cfg").exists() or (Path(d, n) / "conda-meta").exists()])
    write_notebooks(book, src)  # over the copies
    config = yaml.safe_load((src / "_config.yml").read_text())
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["nb_execution_cache_path"] = str(book / "_build" / ".jupyter_cache")
    (src / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    subprocess.run([sys.executable, str(ROOT / "tools" / "build.py"), str(src)], cwd=src,
                   check=True)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src / "_build" / "html", dest)
    shutil.rmtree(src)


def main(book: Path = ROOT) -> Path:
    out = book / "_build" / "student"
    write_notebooks(book, out / "notebooks")
    build_site(book, out / "html")
    print(f"student edition: {out / 'html' / 'index.html'} and {out / 'notebooks'}")
    return out


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)
