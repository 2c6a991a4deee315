"""Execute every page at a smoke scale, as the build would, and time each page.

Usage: python tools/smoke.py [--scale gpu:smoke] [--page STEM ...] [--timeout SECONDS]

A smoke scale (``lib.scale.smoke``) runs the ``gpu`` (or ``paper``) scale's code, its widths,
data sets, CIFAR-10 fallback and per-scale tables, with every count cut to a minimum, so a
CPU machine executes the code paths no GPU-less machine otherwise runs. Each page runs in a
fresh kernel in its own folder with the build's variables (``NORMBOOK_BUILD=1``: the site's
slider frames are computed too), no downloads (``NORMBOOK_OFFLINE=1``: without CIFAR-10
on disk the fallbacks run, and CI never fetches 170 MB), a fresh results cache in a
temporary folder (deleted afterwards: smoke results never reach ``data/cache`` or
``_build``), and no memory record. A cell error stops the run with exit status 1.
``tests/test_smoke_pages.py`` runs every page the same way in CI.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

from lib import checks, scale

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600   # seconds per cell, as _config.yml gives the build


def pages(root: Path = ROOT) -> list:
    """The book's notebooks in table-of-contents order (pages written in Markdown skipped)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    stems = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    return [root / f"{s}.ipynb" for s in stems if (root / f"{s}.ipynb").exists()]


def smoke_env(label: str, cache_dir: Path) -> dict:
    """The environment of a smoke kernel: this one's, with the build's variables, the smoke
    scale ``label`` (refused unless it is a smoke scale) and the results cache ``cache_dir``."""
    chosen = scale.current(checks.string("label", label))
    if not chosen.smoke:
        raise ValueError(f"label must name a smoke scale such as 'gpu{scale.SMOKE_SUFFIX}', "
                         f"got {label!r}")
    env = dict(os.environ, NORMBOOK_SCALE=chosen.label, NORMBOOK_CACHE=str(cache_dir),
               NORMBOOK_BUILD="1", NORMBOOK_OFFLINE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("NORMBOOK_MEMORY_LOG", None)   # the build's memory records are for real pages
    return env


def execute(path: Path, env: dict, timeout: int = TIMEOUT):
    """Run the notebook at ``path`` in a fresh kernel in its folder with ``env``; returns
    (the executed notebook, seconds). A cell error raises nbclient's CellExecutionError."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute(env=env)
    return nb, time.perf_counter() - start


def slowest(nb, k: int = 3) -> list:
    """The ``k`` slowest code cells of an executed notebook: [(seconds, first line)]."""
    from datetime import datetime
    found = []
    for cell in nb.cells:
        times = cell.get("metadata", {}).get("execution", {})
        start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            found.append((seconds, cell.source.split("\n")[0][:60]))
    return sorted(found, reverse=True)[:k]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/smoke.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default=f"gpu{scale.SMOKE_SUFFIX}",
                        help="a smoke scale: gpu:smoke (default), paper:smoke or cpu:smoke")
    parser.add_argument("--page", nargs="+", metavar="STEM",
                        help="only these pages (file stems, e.g. exponential_lr)")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds per cell")
    args = parser.parse_args(argv)
    todo = [p for p in pages() if not args.page or p.stem in args.page]
    if args.page and len(todo) != len(set(args.page)):
        parser.error(f"--page: unknown page among {args.page} "
                     f"(pages: {', '.join(p.stem for p in pages())})")
    try:
        smoke_env(args.scale, Path())
    except (TypeError, ValueError) as err:
        parser.error(f"--scale: {err}")
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="normbook-smoke-") as folder:
        env = smoke_env(args.scale, Path(folder) / "cache")
        for path in todo:
            try:
                nb, seconds = execute(path, env, args.timeout)
            except Exception as err:   # a cell error, a timeout, a dead kernel
                print(f"smoke: {path.relative_to(ROOT)} FAILED at {args.scale}:\n{err}")
                return 1
            cells = ", ".join(f"{t:.0f} s {line!r}" for t, line in slowest(nb))
            print(f"smoke: {path.relative_to(ROOT)} at {args.scale}: {seconds:.0f} s "
                  f"(slowest cells: {cells})", flush=True)
    print(f"smoke: {len(todo)} pages in {time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
