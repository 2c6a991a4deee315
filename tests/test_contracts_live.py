"""The live-latency helpers (issue 18) refuse bad input by name: the progress report of
lib.controls and the slider computes that train one value off the site grid."""

import numpy as np
from hypothesis import strategies as st

from contracts import NAN, Case, parametrize
from lib import controls
from lib.autorate import experiments as autorate


def _family(values, eta_g):
    return {"step": np.arange(2), "x": np.array(values)[:, None] * [1.0, eta_g]}

CASES = [
    Case(controls.report, lambda: dict(done=1, total=4), {"done": "nonneg", "total": "positive"}),
    Case(controls.reporting, lambda: dict(listener=print),
         {"listener": st.sampled_from([3, "f", [1, 2], 0.5])}),
    Case(controls.part, lambda: dict(start=0.25, stop=0.5),
         {"start": st.sampled_from([-0.1, 1.5, NAN, None, "0"]),
          "stop": st.sampled_from([1.5, NAN, None, "1", 0.1])}),
    Case(autorate.SliderRuns,
         lambda: dict(run=_family, name="eta_w", grid=(0.1, 1.0), others={"eta_g": (0.5,)}),
         {"run": "callable", "name": st.sampled_from([None, 3, ("a",), b"eta_w"]),
          "grid": st.sampled_from([None, "x", [-1.0], [NAN], [[1.0, 2.0]]]),
          "others": st.sampled_from([None, [1.0], {"eta_g": None}, {"eta_g": [-1.0]},
                                     {"eta_w": [1.0]}, {3: [1.0]}])}),
]

test_bad_input_is_refused_by_name = parametrize(CASES)
