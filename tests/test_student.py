"""The student edition (tools/student.py): no solution anywhere in its site or notebooks."""

import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml

from tools import student
from tools.sitekit import ROOT

SECRET_TEXT, SECRET_CODE = "SOLUTIONTEXT", "SOLUTIONCODE"  # noqa: S105
EXERCISE = "EXERCISETEXT"


def md(text):
    return nbformat.v4.new_markdown_cell(text)


def exercise_notebook():
    """Two exercises: one with a solution directive, one with a gated solution holding code."""
    return nbformat.v4.new_notebook(cells=[
        md("# Exercises\n\nSome prose."),
        md(f"```{{exercise}}\n:label: ex-one\n\n{EXERCISE} one.\n```\n\n"
           f"````{{solution}} ex-one\n:label: sol-one\n:class: dropdown\n\n"
           f"The answer is {SECRET_TEXT} one.\n\n```python\nx = 1\n```\n````\n\nAfter it."),
        md(f"```{{exercise}}\n:label: ex-two\n\n{EXERCISE} two.\n```"),
        md("```{solution-start} ex-two\n:label: sol-two\n:class: dropdown\n```\n\n"
           f"Run this ({SECRET_TEXT} two):"),
        nbformat.v4.new_code_cell(f"print('{SECRET_CODE}')"),
        md("```{solution-end}\n```"),
        nbformat.v4.new_code_cell("print('kept')"),
    ])


def prose_notebook():
    """A page whose only solution is text: its code cells are the same in both editions."""
    return nbformat.v4.new_notebook(cells=[
        md("# Prose solutions"), nbformat.v4.new_code_cell("print('computed')"),
        md(f"```{{exercise}}\n:label: ex-three\n\n{EXERCISE} three.\n```\n\n"
           f"```{{solution}} ex-three\n:class: dropdown\n\n{SECRET_TEXT} three.\n```")])


def test_notebooks_lose_both_kinds_of_solution_and_keep_the_rest():
    nb = student.student_notebook(json.loads(nbformat.writes(exercise_notebook())))
    text = json.dumps(nb)
    assert SECRET_TEXT not in text and SECRET_CODE not in text and "solution" not in text
    assert text.count(EXERCISE) == 2 and "After it." in text and "kept" in text
    assert len(nb["cells"]) == 4  # the gated solution's three cells are gone


@pytest.mark.parametrize("bad, match", [
    ("````{solution} ex\nnever closed\n```\n", "never closed"),   # a shorter fence cannot close
])
def test_an_unclosed_solution_is_an_error_not_a_leak(bad, match):
    with pytest.raises(ValueError, match=match):
        student.strip_solution_blocks(bad)
    nb = {"cells": [{"cell_type": "markdown", "source": ["```{solution-start} ex\n```"]}]}
    with pytest.raises(ValueError, match="never closed"):
        student.student_notebook(nb)
    with pytest.raises(TypeError, match="^text"):
        student.strip_solution_blocks(None)


def test_student_edition_of_a_book_has_no_solution_anywhere(tmp_path):
    """Builds a two-page book with the real configuration, then its student edition. The
    ordinary site shows the solutions (so the check below can fail); the student one has
    no trace of them in any file, the exercises stay, and only the page whose solution
    held a code cell is executed again (the other comes from the execution cache)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.update(title="student test book")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n"
                                       "  - file: prose\n")
    (tmp_path / "references.bib").write_text("")
    shutil.copytree(ROOT / "_ext", tmp_path / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    for name, nb in (("index", exercise_notebook()), ("prose", prose_notebook())):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    build = [sys.executable, str(ROOT / "tools" / "build.py"), str(tmp_path)]
    subprocess.run(build, env=env, check=True, capture_output=True, timeout=600)
    full = (tmp_path / "_build" / "html" / "index.html").read_text()
    assert SECRET_TEXT in full and SECRET_CODE in full  # the ordinary edition has them
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "student.py"), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "index.ipynb: Executing notebook" in log and "prose.ipynb: Executing" not in log
    out = tmp_path / "_build" / "student"
    files = [f for f in out.rglob("*") if f.is_file() and f.suffix in
             (".html", ".js", ".ipynb", ".txt", ".json", ".md")]
    assert any(f.name == "searchindex.js" for f in files)
    assert {f.name for f in files if f.suffix == ".ipynb"} >= {"index.ipynb", "prose.ipynb"}
    for f in files:
        text = f.read_text(errors="replace")
        assert SECRET_TEXT not in text and SECRET_CODE not in text, f
    page = (out / "html" / "index.html").read_text()
    assert page.count(EXERCISE) == 2 and "kept" in page
    assert "computed" in (out / "html" / "prose.html").read_text()
