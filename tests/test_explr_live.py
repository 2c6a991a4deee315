"""The exponential-LR chapter's slider compute (issue 18, live latency): the equivalence
runs report their steps to a live figure's progress bar."""

import numpy as np
import torch

from lib import controls
from lib.explr import experiments


def test_equivalence_distance_reports_both_runs_steps():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(60, 12, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (60,), generator=gen)
    heard = []
    with controls.reporting(heard.append):
        d = experiments.equivalence_distance((X, y), 1e-2, 0.5, sizes=(12, 8, 3), steps=5,
                                             batch_size=20)
    # run A's steps 0..5, then run B's: 12 reports climbing from 0 to 1
    np.testing.assert_allclose(heard, np.r_[np.arange(6), 5 + np.arange(6)] / 10)
    assert d["distance"].shape == (6,) and d["distance"].max() < 1e-12
