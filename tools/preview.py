"""Build a throwaway copy of the book, executing only the pages you are working on.

Usage: python tools/preview.py chapters/bngd_least_squares [more pages] [--out DIR]
Copies the working tree to DIR (default /tmp/preview-<first page>), keeps every page in
the table of contents (so cross-references resolve) but executes only intro and the
pages named, builds with the flags of tools/build.py, and prints the HTML path. The
real _build/ is left alone, so several people can preview different chapters at once;
the copy's own _build/.jupyter_cache makes the next preview of the same pages faster.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns("_build", ".git", "__pycache__", "*.egg-info", ".pytest_cache")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+", help="page paths without suffix, e.g. chapters/exponential_lr")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = args.out or Path("/tmp") / f"preview-{Path(args.pages[0]).name}"
    build = out / "_build"
    if build.exists():
        build.rename(out.parent / f".{out.name}-build")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(ROOT, out, ignore=SKIP)
    if (out.parent / f".{out.name}-build").exists():
        (out.parent / f".{out.name}-build").rename(build)
    config = yaml.safe_load((out / "_config.yml").read_text())
    others = [f"{p.relative_to(out).with_suffix('')}" for p in out.glob("chapters/*.ipynb")]
    config["execute"]["exclude_patterns"] = [f"{p}.ipynb" for p in others if p not in args.pages]
    (out / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    # results caches of the preview stay in the copy, not in the repository's data/cache
    env = {**os.environ, "NORMBOOK_CACHE": str(out / "data" / "cache")}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build.py"), str(out)], env=env)
    page = build / "html" / f"{args.pages[0]}.html"
    print(f"preview: {page}" if proc.returncode == 0 else "preview: build failed (see above)")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
