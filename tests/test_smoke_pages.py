"""Every page executes at ``gpu:smoke`` (issue 18, "the GPU path, exercised"): the gpu
scale's widths, data sets, CIFAR-10 fallback, per-scale tables and ``S.name != "cpu"``
branches, with its counts cut, end to end on this CPU, with no cell error.

Each page runs in a fresh kernel with the build's variables, a fresh results cache of its
own (a temporary folder) and no downloads, through ``tools/smoke.py``. Slow: about
20–60 s per page on 2 idle cores.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools import smoke  # noqa: E402

# What each page prints only at the gpu scale's sizes and configuration (not at cpu), so
# the smoke run is seen to take the gpu code paths. Either text of a tuple will do: which
# one depends on whether CIFAR-10 is on disk.
GPU_MARKERS = {
    "intro": [],
    "auto_rate_tuning": ["WIDTH = 256"],                           # width 512 // 2
    "bngd_least_squares": [("CIFAR-10 not available, skipped", "CNN on CIFAR-10")],
    "exponential_lr": [("cifar10 is not available", "data: cifar10/train")],
    "wn_relu_convergence": ["width m = 1536"],                     # 3 × 512
}


def text_of(nb) -> str:
    """Every stream and plain-text output of an executed notebook."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if out.get("output_type") == "stream"
                         else out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("path", smoke.pages(), ids=lambda p: p.stem)
def test_the_page_executes_at_gpu_smoke(path, tmp_path):
    cache = tmp_path / "cache"
    nb, seconds = smoke.execute(path, smoke.smoke_env("gpu:smoke", cache))
    print(f"{path.stem}: {seconds:.0f} s at gpu:smoke; slowest cells: {smoke.slowest(nb)}")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, errors[0]
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "SMOKE RUN" in text_of(nbformat_like(first)), "the page must say it is a smoke run"
    text = text_of(nb)
    for marker in GPU_MARKERS[path.stem]:
        options = marker if isinstance(marker, tuple) else (marker,)
        assert any(m in text for m in options), f"{path.stem}: none of {options} printed"
    if path.stem != "intro":   # every chapter's sweeps stored their results in our folder
        assert any(cache.glob("*.pkl")), "the smoke run's cache entries are not in its folder"


def nbformat_like(cell):
    """A one-cell notebook-like object, for :func:`text_of`."""
    return type("One", (), {"cells": [cell]})()
