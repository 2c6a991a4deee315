"""Job 7 of _ext/normbook_sphinx.py: a build executes the notebooks its cache lacks side
by side, then myst-nb takes every page from the cache."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent
SLEEP = 4.0   # seconds each page's kernel is busy: long against the start-up of a kernel

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")


def _book(folder: Path, pages: dict, first=()) -> None:
    """A book in ``folder`` with the real configuration and one notebook per page:
    ``pages`` maps a page name to its code cell; ``first``: the pages to start first."""
    import yaml

    shutil.copy(ROOT / "references.bib", folder / "references.bib")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["config"]["normbook_execute_first"] = list(first)
    (folder / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    shutil.copytree(ROOT / "_ext", folder / "_ext")
    names = list(pages)
    toc = f"format: jb-book\nroot: {names[0]}\nchapters:\n"
    toc += "".join(f"  - file: {n}\n" for n in names[1:])
    (folder / "_toc.yml").write_text(toc)
    for name, code in pages.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# Page {name}"),
                                             nbformat.v4.new_code_cell(code)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")


def _build(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "build.py"), str(folder)],
                          capture_output=True, text=True, timeout=600)


TIMED = ("import json, os, time  # page {name}\nstart = time.time()\ntime.sleep({sleep})\n"
         "print(json.dumps([os.getpid(), start, time.time()]))\n")


def _interval(folder: Path, name: str) -> list:
    """[pid, start, end] printed by the page's cell, read back from the built page."""
    soup = BeautifulSoup((folder / "_build" / "html" / f"{name}.html").read_text(),
                         "html.parser")
    return json.loads(soup.select_one(".cell_output .output").get_text())


def test_notebooks_run_side_by_side_and_the_pages_come_from_the_cache(tmp_path):
    # distinct code: the cache matches notebooks by content
    pages = {name: TIMED.format(name=name, sleep=SLEEP) for name in ("one", "two", "three")}
    _book(tmp_path, pages, first=["two"])   # by name the order is one, three, two
    proc = _build(tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert not re.search(r"(WARNING|ERROR):", log), log[-3000:]
    assert "normbook: executing 3 notebooks on 2 processes" in log, log[-3000:]
    assert "failed in a worker" not in log, log     # (the worker's reason is in the log)
    assert "Executing notebook" not in log, log   # myst-nb ran none itself
    runs = {name: _interval(tmp_path, name) for name in pages}
    assert len({pid for pid, _, _ in runs.values()}) == 3   # a kernel per page
    # two kernels were busy at the same time: a serial run has disjoint intervals
    spans = sorted((start, end) for _, start, end in runs.values())
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans
    # "two" was asked to start first, so "three" waited for a free process
    assert runs["three"][1] > min(runs["one"][2], runs["two"][2]), runs
    for name in pages:
        assert f"normbook: {name}.ipynb: executed in" in log

    again = _build(tmp_path)   # a second build executes nothing
    assert again.returncode == 0
    assert "normbook: executing" not in again.stdout + again.stderr
    assert _interval(tmp_path, "one") == runs["one"]


def test_a_notebook_that_fails_in_a_worker_still_fails_the_build(tmp_path):
    _book(tmp_path, {"fine": "print('fine')", "broken": "raise RuntimeError('boom')"})
    proc = _build(tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "normbook: broken.ipynb: failed in a worker" in log, log[-3000:]
    assert "Executing notebook failed" in log   # myst-nb's own report, on its second run
    assert "boom" in log


def test_the_execution_cache_is_keyed_on_the_library_and_the_scale(monkeypatch):
    """A build at another NORMBOOK_SCALE (gpu, a smoke run) must not take the cpu pages
    from the cache, nor a cpu build a smoke run's pages."""
    sys.path.insert(0, str(ROOT))
    from _ext import normbook_sphinx as ext

    keys = {}
    for label in ("cpu", "gpu", "gpu:smoke", "cpu:smoke"):
        monkeypatch.setenv("NORMBOOK_SCALE", label)
        keys[label] = ext.cache_key()
    assert len(set(keys.values())) == 4, keys
    assert all(k.startswith(f"lib-{ext.lib_hash()}-") for k in keys.values())
    monkeypatch.setenv("NORMBOOK_SCALE", "cpu")
    assert ext.cache_key() == keys["cpu"]   # the same build finds its own pages again
