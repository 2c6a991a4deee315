"""The chapter notebooks as files: self-setup cell, clean sources, table of contents."""

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [c["file"] for c in TOC["chapters"]]
NOTEBOOKS = [ROOT / f"{p}.ipynb" for p in PAGES if (ROOT / f"{p}.ipynb").exists()]


def code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_every_toc_entry_exists_and_chapters_are_notebooks():
    for page in PAGES:
        assert (ROOT / f"{page}.ipynb").exists() or (ROOT / f"{page}.md").exists(), page
    chapters = [p for p in PAGES if p.startswith("chapters/")]
    assert len(chapters) == 4
    for page in chapters:  # Colab's launch button exists only for .ipynb sources
        assert (ROOT / f"{page}.ipynb").exists(), page


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_sets_the_notebook_up_alone(path):
    first = "".join(code_cells(path)[0]["source"])
    reference = "".join(code_cells(ROOT / "intro.ipynb")[0]["source"])
    assert first == reference, "every notebook starts with the same setup cell"
    assert CONFIG["repository"]["url"] in first, "the setup cell clones the book's repository"
    assert "pip" in first and "lib.chapter.setup()" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_sources_are_committed_without_outputs(path):
    for cell in code_cells(path):
        assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_binder_builds_from_the_repository_files():
    binder = (ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements.txt" in binder and "whl/cpu" in binder
    assert "dataset-fashion-mnist" in (ROOT / "binder" / "apt.txt").read_text()
    assert "-e ." in (ROOT / "requirements.txt").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_lines_fit_the_page_without_scrolling(path):
    """_static/normbook.css fits about 86 characters in a code cell at 1280 pixels."""
    long = [line for cell in code_cells(path) for line in "".join(cell["source"]).split("\n")
            if len(line) > 84]
    assert not long, f"{len(long)} code lines over 84 characters, e.g. {long[0]!r}"
