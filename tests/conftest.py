import os

import pytest
import torch

# Small models on 2 cores run faster single-threaded, and tests should not compete
# with each other for threads.
torch.set_num_threads(1)
os.environ.setdefault("NORMBOOK_QUIET", "1")


@pytest.fixture
def f64():
    """Run a test in float64 (identities checked to 1e-10 need it)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
