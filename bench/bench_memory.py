"""Peak resident memory of each chapter's kernel, executed cell by cell as a reader would.

Each notebook runs in a fresh Jupyter kernel (nbclient, the executor jupyter-book uses).
After every cell the kernel process's peak resident set size is read from the operating
system: ``VmHWM`` in ``/proc/<pid>/status`` on Linux, the high-water mark the kernel keeps
itself, so no allocation between two readings is missed; elsewhere the current RSS after
each cell (psutil, which ipykernel already installs), a lower bound of the peak. The
results cache points at an empty folder (every experiment computed, the worst case)
unless ``--cache`` names one. By default the kernel runs as a live session does (Binder,
Colab); ``--build`` sets ``NORMBOOK_BUILD=1`` as the book build does (the sliders' site
frames are then precomputed too). Target: <= 1 GB per chapter (Binder gives 1-2 GB).

Usage: python -m bench.bench_memory [CHAPTER ...] [--cells N] [--build] [--cache DIR]
       [--save DIR]
CHAPTER: a notebook path or a chapter name such as ``bngd_least_squares`` (default: all
four chapters). ``--cells N`` also lists the N cells that raised the peak most;
``--save DIR`` writes the executed notebooks there (to compare printed outputs).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ("auto_rate_tuning", "bngd_least_squares", "exponential_lr", "wn_relu_convergence")
TARGET_MB = 1024


def peak_mb(pid: int) -> tuple[float, bool]:
    """(peak RSS in MiB, exact): VmHWM on Linux, else the current RSS (a lower bound)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, True
    import psutil
    return psutil.Process(pid).memory_info().rss / 2**20, False


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the kernel process has used: less sensitive than the wall
    time to other jobs on a shared machine."""
    import psutil
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def notebook_path(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".ipynb":
        return path.resolve()
    path = ROOT / "chapters" / f"{name}.ipynb"
    if not path.exists():
        raise SystemExit(f"no chapter {name!r}: expected one of {', '.join(CHAPTERS)} or a path")
    return path


def run(path: Path, env: dict, save: Path | None) -> dict:
    """Execute one notebook in a fresh kernel; the peak after every cell, and the wall time."""
    import nbclient
    import nbformat
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)            # the kernel inherits this process's environment
    try:
        start = time.perf_counter()
        peaks, exact = [], True
        with client.setup_kernel():
            pid = client.km.provisioner.process.pid
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                mb, exact = peak_mb(pid)
                peaks.append(mb)
            cpu = cpu_seconds(pid)
        seconds = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(old)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save / path.name)
    return {"peaks": peaks, "exact": exact, "seconds": seconds, "cpu": cpu, "cells": nb.cells}


def report(name: str, result: dict, top: int) -> None:
    peaks = result["peaks"]
    peak = max(peaks)
    kind = "peak RSS (VmHWM)" if result["exact"] else "largest RSS after a cell (lower bound)"
    verdict = "ok" if peak <= TARGET_MB else "OVER"
    print(f"{name:<24} {kind}: {peak / 1024:5.2f} GB  (target <= {TARGET_MB / 1024:.0f} GB: "
          f"{verdict}); executed in {result['seconds']:.0f} s wall, {result['cpu']:.0f} s "
          f"kernel CPU")
    if top:
        rises = [(b - a, i) for i, (a, b) in enumerate(zip([0.0] + peaks[:-1], peaks))]
        for rise, i in sorted(rises, reverse=True)[:top]:
            first = result["cells"][i].source.strip().splitlines()[:1] or [""]
            print(f"    cell {i:2d} raised the peak by {rise:6.0f} MB to {peaks[i]:6.0f} MB: "
                  f"{first[0][:60]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", default=list(CHAPTERS))
    parser.add_argument("--cells", type=int, default=0, metavar="N",
                        help="also list the N cells that raised the peak most")
    parser.add_argument("--build", action="store_true", help="run as the book build does")
    parser.add_argument("--cache", type=Path, help="results cache (default: a new empty one)")
    parser.add_argument("--save", type=Path, help="write the executed notebooks here")
    args = parser.parse_args(argv)
    if args.cells < 0:
        parser.error("--cells must be >= 0")
    paths = [notebook_path(name) for name in args.chapters]
    with tempfile.TemporaryDirectory(prefix="normbook-mem-") as tmp:
        env = {**os.environ, "NORMBOOK_CACHE": str(args.cache or tmp), "PYTHONPATH":
               os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        env.pop("NORMBOOK_BUILD", None)
        if args.build:
            env["NORMBOOK_BUILD"] = "1"
        for path in paths:
            report(path.stem, run(path, env, args.save), args.cells)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
