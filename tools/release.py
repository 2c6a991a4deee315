"""The book's version, kept in step everywhere it is written.

Usage: python tools/release.py            # check that every place agrees (exit 1 if not)
       python tools/release.py X.Y.Z      # write version X.Y.Z everywhere

One version, ``lib.__version__`` (the package's version: pyproject.toml reads it from
there), is also written into

* the first (setup) cell of every notebook, whose ``RELEASE`` tag is what Colab and a
  lone notebook install (``git clone --branch vX.Y.Z``), so that a page and the code it
  runs come from the same release;
* ``_config.yml``: the footer shows it, and ``repository.branch`` is the tag, which the
  Binder and Colab launch buttons open;
* ``CITATION.cff`` (``version``) and ``CHANGELOG.md`` (its newest release heading).

The release steps are in the README; tests/test_release.py checks that all of these agree.
"""

import datetime
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_INIT_RE = re.compile(r'^__version__ = "([^"]*)"', re.M)
_FOOTER_RE = re.compile(r"normbook (\d+\.\d+\.\d+)")
_HEADING_RE = re.compile(r"^## \[?(\d+\.\d+\.\d+)\]? — (\d{4}-\d{2}-\d{2})", re.M)

SETUP_CELL = '''\
# Setup (run first). Where the book's `lib` is not installed, as on Colab, this
# fetches the release of the book this page was built from and installs it;
# elsewhere it only imports.
import importlib, os, site, subprocess, sys
RELEASE = "v{version}"
try:
    import lib.chapter
except ImportError:
    if not os.path.isdir("normbook"):
        url = "https://github.com/normbook/normbook"
        subprocess.run(["git", "clone", "--depth=1", "--branch", RELEASE, url,
                        "normbook"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e",
                    "normbook"], check=True)
    for path in site.getsitepackages():  # use the new install without restarting
        site.addsitedir(path)
    importlib.invalidate_caches()
    import lib.chapter
book = lib.chapter.setup()'''


def notebooks(root: Path = ROOT) -> list[Path]:
    """The book's notebooks, in _toc.yml order (each starts with the setup cell)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    return [root / f"{p}.ipynb" for p in pages if (root / f"{p}.ipynb").exists()]


def package_version(root: Path = ROOT) -> str:
    match = _INIT_RE.search((root / "lib" / "__init__.py").read_text())
    if not match:
        raise ValueError("lib/__init__.py has no line __version__ = \"X.Y.Z\"")
    return match.group(1)


def setup_cell(version: str) -> str:
    return SETUP_CELL.format(version=version)


def versions(root: Path = ROOT) -> dict:
    """Every place the version is written, and the version it holds there (or None)."""
    found = {"lib/__init__.py": package_version(root)}
    for nb in notebooks(root):
        source = setup_source(nb)
        match = re.search(r'^RELEASE = "v([^"]*)"$', source, re.M)
        found[f"{nb.relative_to(root).as_posix()} (setup cell)"] = match and match.group(1)
    config = yaml.safe_load((root / "_config.yml").read_text())
    footer = _FOOTER_RE.search(config["html"]["extra_footer"])
    found["_config.yml html.extra_footer"] = footer and footer.group(1)
    branch = str(config["repository"]["branch"])
    found["_config.yml repository.branch"] = branch[1:] if branch.startswith("v") else None
    found["CITATION.cff version"] = str(yaml.safe_load((root / "CITATION.cff").read_text())
                                        .get("version"))
    heading = _HEADING_RE.search((root / "CHANGELOG.md").read_text())
    found["CHANGELOG.md newest release"] = heading and heading.group(1)
    return found


def disagreements(root: Path = ROOT) -> list[str]:
    """Places whose version differs from lib.__version__, or whose setup cell differs from
    :data:`SETUP_CELL` (a lone notebook must install exactly the release it came from)."""
    found = versions(root)
    want = found["lib/__init__.py"]
    bad = [f"{where}: {got!r} (lib.__version__ is {want!r})"
           for where, got in found.items() if got != want]
    for nb in notebooks(root):
        if setup_source(nb) != setup_cell(want):
            bad.append(f"{nb.relative_to(root).as_posix()}: the setup cell is not "
                       f"tools/release.py's SETUP_CELL")
    return bad


def setup_source(nb_path: Path) -> str:
    """The source of a notebook's setup cell: its first code cell."""
    return "".join(_setup(json.loads(nb_path.read_text()), nb_path)["source"])


def _setup(nb: dict, nb_path: Path) -> dict:
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            return cell
    raise ValueError(f"{nb_path} has no code cell")


def _write_setup_cell(nb_path: Path, text: str) -> None:
    nb = json.loads(nb_path.read_text())
    _setup(nb, nb_path)["source"] = text.splitlines(keepends=True)
    nb_path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def set_version(version: str, root: Path = ROOT, today: datetime.date | None = None) -> None:
    """Write ``version`` (X.Y.Z) into every place :func:`versions` reads."""
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ValueError(f"version must look like 1.2.3, got {version!r}")
    today = (today or datetime.date.today()).isoformat()
    init = root / "lib" / "__init__.py"
    init.write_text(_INIT_RE.sub(f'__version__ = "{version}"', init.read_text()))
    for nb in notebooks(root):
        _write_setup_cell(nb, setup_cell(version))
    cfg = root / "_config.yml"
    text = _FOOTER_RE.sub(f"normbook {version}", cfg.read_text())
    cfg.write_text(re.sub(r"(?m)^(  branch: ).*$", rf"\g<1>v{version}", text))
    cff = root / "CITATION.cff"
    text = re.sub(r'(?m)^version: .*$', f'version: "{version}"', cff.read_text())
    cff.write_text(re.sub(r'(?m)^date-released: .*$', f'date-released: "{today}"', text))
    log = root / "CHANGELOG.md"
    text = log.read_text()
    if not re.search(rf"^## \[?{re.escape(version)}\]? — ", text, re.M):
        # the Unreleased section becomes the new release; a fresh one goes above it
        text = text.replace("## Unreleased\n", f"## Unreleased\n\n## {version} — {today}\n", 1)
    log.write_text(text)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python tools/release.py [X.Y.Z]")
        return 2
    if argv:
        try:
            set_version(argv[0])
        except ValueError as err:
            print(f"release: {err}")
            return 2
    bad = disagreements()
    for line in bad:
        print("release:", line)
    if not bad:
        print(f"release: every place says {package_version()}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
