"""Bad input to the compiled BNGD and GD engines' arguments and the figure-1 round-off helpers
(lib.bngd.dynamics bngd/mbngd/gd engine=, lib.bngd.experiments.figure1 engine=, nudged, round_off_cells)
is refused by name."""

import torch
from hypothesis import strategies as st

from contracts import INF, NAN, Case, parametrize
from lib.bngd import dynamics, experiments

F64 = dict(dtype=torch.float64)
H = lambda: torch.tensor([1.0, 4.0], **F64)                      # noqa: E731
U = lambda: torch.tensor([0.6, 0.8], **F64)                      # noqa: E731
W = lambda: torch.tensor([1.0, 0.5], **F64)                      # noqa: E731
BAD_OBJ = st.sampled_from([None, 3, "x", object(), {}])

_prob = experiments.paper_problem(10.0, d=3, start="random")
_cfg = experiments.Figure1Config(a0=(1.0,), eps=(0.1,), eps_a=(1.0,), steps=2)
_fig1 = experiments.figure1(_prob, _cfg)
BAD_ENGINE = st.sampled_from(["", "fast", "Torch", None, 3, ("torch",)])

CASES = [
    Case(dynamics.bngd, lambda: dict(H=H(), u=U(), a0=1.0, w0=W(), eps=0.1, eps_a=1.0, steps=2,
                                     engine="compiled"), {"engine": BAD_ENGINE}),
    Case(dynamics.mbngd, lambda: dict(H=H(), u=U(), w0=W(), eps=0.1, steps=2, engine="auto"),
         {"engine": BAD_ENGINE}),
    Case(dynamics.gd, lambda: dict(H=H(), u=U(), w0=W(), eps=0.1, steps=2, engine="compiled"),
         {"engine": BAD_ENGINE}),
    Case(experiments.figure1, lambda: dict(problem=_prob, config=_cfg, engine="torch"),
         {"engine": BAD_ENGINE}),
    Case(experiments.nudged, lambda: dict(problem=_prob, direction=INF),
         {"problem": BAD_OBJ, "direction": st.sampled_from([0.0, 1.0, NAN, None, "inf", [INF]])}),
    Case(experiments.round_off_cells, lambda: dict(result=_fig1, engine="auto"),
         {"result": BAD_OBJ, "engine": BAD_ENGINE}),
]

test_bad_input_is_refused_by_name = parametrize(CASES)
