"""The smoke form of a scale (issue 18) refuses bad input by name."""

from hypothesis import strategies as st

from contracts import Case, parametrize
from lib import chapter, scale
from lib.explr import comparisons

NOT_A_SCALE = st.sampled_from([None, "gpu", 3, {"name": "gpu"}, scale.SCALES])
SMOKE_NAME_BAD = st.sampled_from(["gpu:fast", "gpu:", ":smoke", "huge:smoke", "gpu:smoke:smoke",
                                  "gpu smoke", "smoke"])

CASES = [
    Case(scale.smoke, lambda: dict(s=scale.SCALES["gpu"]), {"s": NOT_A_SCALE}),
    Case(scale.current, lambda: dict(name="gpu:smoke"), {"name": SMOKE_NAME_BAD}),
    Case(scale.Scale, lambda: dict(name="t", n_train=2, n_test=2, epochs=1, steps=1, width=2,
                                   grid=2, seeds=1, slider_grid=2, description="tiny",
                                   smoke=True), {"smoke": "bool"}, examples=6),
    Case(comparisons.schedule_setup, lambda: dict(s=scale.current("gpu:smoke")),
         {"s": NOT_A_SCALE}),
]

EXEMPT = {
    chapter.use_smoke_cache: "takes no arguments (reads and may set NORMBOOK_CACHE)",
}

test_bad_input_is_refused_by_name = parametrize(CASES)
