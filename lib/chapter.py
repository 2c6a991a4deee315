"""What the first cell of every chapter does: style, device, scale, and a line saying so."""

import atexit
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from lib import cache, checks, device, plotting, scale


@dataclass(frozen=True)
class Setup:
    """The choices a chapter runs with."""

    device: torch.device   # where tensors live
    scale: scale.Scale     # experiment sizes

    def __post_init__(self):
        object.__setattr__(self, "device", checks.device("device", self.device))
        if not isinstance(self.scale, scale.Scale):
            raise TypeError(f"scale must be a lib.scale.Scale, got {type(self.scale).__name__}")

    def describe(self) -> str:
        if self.scale.smoke:
            return (f"SMOKE RUN (NORMBOOK_SCALE={self.scale.label}) on "
                    f"{device.describe(self.device)}: the {self.scale.name} scale's code with "
                    f"its counts cut to a minimum.\nThe numbers, figures and claims on this "
                    f"page are not results: smoke run, not checked.\n"
                    f"Results cache: {cache.cache_dir()} (never the book's).")
        return (f"Computed on {device.describe(self.device)} at {self.scale.name} scale\n"
                f"({self.scale.description}).\n"
                f"Set NORMBOOK_SCALE=cpu, gpu or paper before starting Jupyter to change it.")


def setup(name: str | None = None, verbose: bool = True) -> Setup:
    """Apply the book's plot style, pick the device and the scale, and report them.

    At CPU scale on a CPU, torch uses one thread: the models are small, and splitting
    their tiny matrix products across cores costs more than it saves (measured 10–20×
    slower with two threads on a busy 2-core machine). So does a smoke run on a CPU: it
    runs in CI on shared machines, and most of its models are as small. A smoke run keeps
    its results out of the book's cache (:func:`use_smoke_cache`).
    ``name`` is as for :func:`lib.scale.current`; ``verbose`` is a bool.
    """
    verbose, chosen_scale = checks.boolean("verbose", verbose), scale.current(name)
    chosen = Setup(device=device.pick_device(), scale=chosen_scale)
    plotting.use_style()
    if chosen.scale.smoke:
        use_smoke_cache()
    if (chosen.scale.name == "cpu" or chosen.scale.smoke) and chosen.device.type == "cpu":
        torch.set_num_threads(1)
    if verbose:
        print(chosen.describe())
    if os.environ.get(MEMORY_LOG):
        atexit.register(_log_peak_memory, Path(os.environ[MEMORY_LOG]))
    return chosen


# Where a smoke run's results go unless NORMBOOK_CACHE already names another folder than
# the book's: outside the repository, so they never reach the book's cache or its pages.
SMOKE_CACHE = Path(tempfile.gettempdir()) / "normbook-smoke-cache"
_BOOK_CACHE = cache.ROOT / "data" / "cache"


def use_smoke_cache() -> Path:
    """Point ``NORMBOOK_CACHE`` (for this process and its children) away from the book's
    cache, to SMOKE_CACHE, unless it already names another folder; returns the folder used."""
    current = cache.cache_dir()
    if current.resolve() == _BOOK_CACHE.resolve():
        os.environ[cache.ENV_VAR] = str(SMOKE_CACHE)
    return cache.cache_dir()


# tools/build.py sets this to a folder: every kernel that ran a setup cell writes its peak
# resident memory there when it exits (tests/test_book.py holds each page to 1 GB).
MEMORY_LOG = "NORMBOOK_MEMORY_LOG"


def _log_peak_memory(folder: Path) -> None:
    """Write this process's peak resident memory (Linux: VmHWM) as JSON into ``folder``,
    named after the page that ran it: the working folder (a notebook's own, as the build
    runs it) and the chapter packages it imported (the intro imports only lib.bngd)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return
    peak_kb = next((int(line.split()[1]) for line in status.read_text().splitlines()
                    if line.startswith("VmHWM:")), None)
    if peak_kb is None:
        return
    from lib import CHAPTERS
    used = sorted(c for c in CHAPTERS if f"lib.{c}" in sys.modules)
    page = f"{Path.cwd().name}-{'+'.join(used) or 'none'}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{page}.json").write_text(json.dumps({"page": page, "peak_mb": peak_kb / 1024}))
