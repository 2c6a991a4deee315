"""One version everywhere: the package, every notebook's setup cell, _config.yml (footer and
the tag the launch buttons open), CITATION.cff and CHANGELOG.md (tools/release.py)."""

import datetime
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

import lib
from tools import release

ROOT = Path(__file__).resolve().parent.parent
FILES = ["lib/__init__.py", "_config.yml", "_toc.yml", "CITATION.cff", "CHANGELOG.md",
         *(p.relative_to(ROOT).as_posix() for p in release.notebooks())]


def copy_of_book(tmp_path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_every_place_agrees_with_the_package():
    found = release.versions()
    assert release.disagreements() == [], release.disagreements()
    assert set(found.values()) == {lib.__version__}
    assert re.fullmatch(r"\d+\.\d+\.\d+", lib.__version__)
    # pyproject.toml takes the package's version from lib.__version__ (the editable install)
    assert importlib.metadata.version("normbook") == lib.__version__


def test_every_chapter_has_one_setup_cell_pinned_to_the_release():
    """A notebook opened alone (Colab) clones the tag of the release it came from, not main."""
    for nb in release.notebooks():
        code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        first = "".join(code[0]["source"])
        assert first == release.setup_cell(lib.__version__), nb.name
        assert f'RELEASE = "v{lib.__version__}"' in first
        assert '"--branch", RELEASE' in first
        assert not any("git clone" in "".join(c["source"]) for c in code[1:]), nb.name


def test_setting_a_version_writes_every_place_and_a_changed_place_is_caught(tmp_path):
    book = copy_of_book(tmp_path)
    release.set_version("9.8.7", root=book, today=datetime.date(2031, 1, 2))
    found = release.versions(book)
    assert set(found.values()) == {"9.8.7"}, found
    assert release.disagreements(book) == []
    cff = yaml.safe_load((book / "CITATION.cff").read_text())
    assert (cff["version"], cff["date-released"]) == ("9.8.7", "2031-01-02")
    log = (book / "CHANGELOG.md").read_text()
    assert log.index("## Unreleased") < log.index("## 9.8.7 — 2031-01-02") \
        < log.index(f"## {lib.__version__} — ")
    config = yaml.safe_load((book / "_config.yml").read_text())
    assert config["repository"]["branch"] == "v9.8.7"
    assert "normbook 9.8.7" in config["html"]["extra_footer"]
    # the untouched repository still agrees with itself, and the copy no longer agrees with it
    assert release.versions() != found
    # each place on its own is read: put one back to the old version and it is named
    cff_path = book / "CITATION.cff"
    cff_path.write_text(cff_path.read_text().replace('"9.8.7"', f'"{lib.__version__}"'))
    assert [d.split(":")[0] for d in release.disagreements(book)] == ["CITATION.cff version"]
    nb = release.notebooks(book)[0]
    nb.write_text(nb.read_text().replace("--depth=1", "--depth=2"))
    assert any("setup cell is not" in d for d in release.disagreements(book))


def test_a_bad_version_is_refused_by_name(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "release.py"), "1.2"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "version must look like 1.2.3" in proc.stdout
    assert "Traceback" not in proc.stderr
    for bad in ("v1.2.3", "1.2.3rc1", "", "1.2.3 "):
        try:
            release.set_version(bad, root=tmp_path)
        except ValueError as err:
            assert "version" in str(err)
        else:
            raise AssertionError(f"set_version accepted {bad!r}")


def test_citation_file_names_the_book_and_its_four_papers():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "version", "date-released",
                "license", "repository-code"):
        assert cff.get(key), key
    datetime.date.fromisoformat(cff["date-released"])
    bib = (ROOT / "references.bib").read_text()
    titles = {r["title"].lower() for r in cff["references"]}
    for key in ("arora2019autorate", "cai2019bngd", "li2020exponential", "dukler2020wn"):
        entry = re.search(r"@\w+\{" + key + r",(.*?)\n\}", bib, re.S)
        assert entry, key
        title = re.search(r"title\s*=\s*\{(.*)\},?\n", entry.group(1)).group(1)
        assert re.sub(r"[{}]", "", title).lower() in titles, key
