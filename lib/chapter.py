"""What the first cell of every chapter does: style, device, scale, and a line saying so."""

import atexit
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from lib import checks, device, plotting, scale


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
        return (f"Computed on {device.describe(self.device)} at {self.scale.name} scale\n"
                f"({self.scale.description}).\n"
                f"Set NORMBOOK_SCALE=cpu, gpu or paper before starting Jupyter to change it.")


def setup(name: str | None = None, verbose: bool = True) -> Setup:
    """Apply the book's plot style, pick the device and the scale, and report them.

    At CPU scale on a CPU, torch uses one thread: the models are small, and splitting
    their tiny matrix products across cores costs more than it saves (measured 10–20×
    slower with two threads on a busy 2-core machine). ``name`` is as for
    :func:`lib.scale.current`; ``verbose`` is a bool.
    """
    verbose, chosen_scale = checks.boolean("verbose", verbose), scale.current(name)
    chosen = Setup(device=device.pick_device(), scale=chosen_scale)
    plotting.use_style()
    if chosen.scale.name == "cpu" and chosen.device.type == "cpu":
        torch.set_num_threads(1)
    if verbose:
        print(chosen.describe())
    if os.environ.get(MEMORY_LOG):
        atexit.register(_log_peak_memory, Path(os.environ[MEMORY_LOG]))
    return chosen


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
