import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from matplotlib import pyplot as plt

# Small models on 2 cores run faster single-threaded, and tests should not compete
# with each other for threads. NORMBOOK_TEST_THREADS=2 runs the suite with two threads:
# it must pass either way (no test compares iterated float computations bit for bit).
torch.set_num_threads(int(os.environ.get("NORMBOOK_TEST_THREADS", "1")))
os.environ.setdefault("NORMBOOK_QUIET", "1")


@pytest.fixture
def f64():
    """Run a test in float64 (identities checked to 1e-10 need it)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def book_build():
    """Build the real book once per session with tools/build.py (as the README's first
    command does; warm execution cache makes a rebuild fast). Returns the build log."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    return log


@pytest.fixture
def close_figures():
    """Close every matplotlib figure a test made."""
    yield
    plt.close("all")
