"""The live-latency helpers (issue 18) refuse bad input by name: the progress report of
lib.controls and the slider computes that train one value off the site grid."""

import numpy as np
from hypothesis import strategies as st

from contracts import NAN, Case, parametrize
from lib import blit, controls
from lib.autorate import experiments as autorate
from lib.wn import experiments as wn


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

WN_X, WN_Y = wn.unit_sphere_data(4, 3, seed=0)

CASES.append(Case(     # the grid widths of the WN slider (its other arguments: test_contracts_wn)
    wn.Comparison, lambda: dict(X=WN_X, y=WN_Y, steps=2, alphas=[1.0], etas=[0.1], widths=[4]),
    {"widths": st.sampled_from(["4", 4, [0], [2.5], [None], [NAN], {"m": 4}])}))

CASES += [    # the live redraw of lib.blit
    Case(blit.Redrawer, lambda: dict(fig=__import__("matplotlib.figure").figure.Figure()),
         {"fig": st.sampled_from([None, "fig", 3, [1]])}),
    Case(blit.png_rgb, lambda: dict(rgba=np.zeros((2, 3, 4), np.uint8)),
         {"rgba": st.sampled_from([None, np.zeros((2, 3, 3), np.uint8),
                                   np.zeros((2, 3, 4)), np.zeros((0, 3, 4), np.uint8),
                                   [[[0, 0, 0, 0]]]])}),
]

test_bad_input_is_refused_by_name = parametrize(CASES)

EXEMPT = {
    controls.hold_heap: "takes no arguments (freezes the heap in an IPython kernel, else nothing)",
    controls.thaw_heap: "IPython's pre_run_cell callback: its argument (IPython's ExecutionInfo) "
                        "is ignored, any value is accepted",
}
