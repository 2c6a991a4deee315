"""Build-time budget: a cold build (every page executed, empty caches) and a warm rebuild.

Copies the tracked files of this repository to a temporary folder, points the results
cache (NORMBOOK_CACHE) at an empty folder, builds the book there as tools/build.py does,
then builds again without any change. Targets at CPU scale on a 2-core machine: cold
≤ 15 min, warm ≤ 2 min.

Usage: python bench/bench_build.py
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_tracked(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def build(book: Path, env: dict) -> tuple[float, dict]:
    """Seconds for one build, and the seconds each notebook took to execute."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build.py"), str(book)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    log = proc.stdout + proc.stderr
    executed = {Path(m[0]).relative_to(book).as_posix(): float(m[1]) for m in re.findall(
        r"(\S+\.ipynb): Executed notebook in ([\d.]+) seconds", log)}   # by myst-nb
    executed |= {m[0]: float(m[1]) for m in re.findall(
        r"normbook: (\S+\.ipynb): executed in ([\d.]+) seconds", log)}   # side by side
    return time.perf_counter() - start, executed


def main():
    with tempfile.TemporaryDirectory(prefix="normbook-build-") as tmp:
        book, cache = Path(tmp) / "book", Path(tmp) / "cache"
        book.mkdir()
        copy_tracked(book)
        env = {**os.environ, "NORMBOOK_CACHE": str(cache), "NORMBOOK_SCALE": "cpu"}
        cold, pages = build(book, env)
        warm, _ = build(book, env)
    for name, seconds in sorted(pages.items()):
        print(f"  executed {name:<40} {seconds:6.1f} s  (target <= 90 s)")
    print(f"cold build (empty caches, every page executed): {cold:7.1f} s  (target <= 300 s)")
    print(f"warm rebuild (no change):                       {warm:7.1f} s  (target <= 120 s)")


if __name__ == "__main__":
    main()
