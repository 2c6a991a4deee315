"""The live-latency helpers (issue 18) refuse bad input by name: the progress report of
lib.controls."""

from hypothesis import strategies as st

from contracts import Case, parametrize
from lib import controls

CASES = [
    Case(controls.report, lambda: dict(done=1, total=4), {"done": "nonneg", "total": "positive"}),
    Case(controls.reporting, lambda: dict(listener=print),
         {"listener": st.sampled_from([3, "f", [1, 2], 0.5])}),
]

test_bad_input_is_refused_by_name = parametrize(CASES)
