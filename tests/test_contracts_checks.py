"""lib.checks, the shared validators: each refuses what it should, by name (and the
good values they return are canonical)."""

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from contracts import Case, parametrize
from lib import checks

X = torch.ones(3, 2)

CASES = [
    Case(checks.integer, lambda: dict(name="n", value=3), {"value": "size"}, names={"value": "n"}),
    Case(checks.number, lambda: dict(name="c", value=0.5, lo=0, hi=1, hi_open=True),
         {"value": "fraction"}, names={"value": "c"}),
    Case(checks.positive, lambda: dict(name="eta", value=0.1), {"value": "positive"},
         names={"value": "eta"}),
    Case(checks.nonnegative, lambda: dict(name="lam", value=0.0), {"value": "nonneg"},
         names={"value": "lam"}),
    Case(checks.fraction, lambda: dict(name="momentum", value=0.9), {"value": "fraction"},
         names={"value": "momentum"}),
    Case(checks.seed, lambda: dict(name="seed", value=0), {"value": "seed"}, names={"value": "seed"}),
    Case(checks.boolean, lambda: dict(name="flag", value=True), {"value": "bool"},
         names={"value": "flag"}),
    Case(checks.choice, lambda: dict(name="loss", value="mse", options=("mse", "ce")),
         {"value": "name"}, names={"value": "loss"}),
    Case(checks.instance, lambda: dict(name="config", value=1.0, cls=float),
         {"value": st.sampled_from([1, "1.0", None, [1.0]])}, names={"value": "config"}),
    Case(checks.interval, lambda: dict(name="eps_range", value=(1e-2, 1e2)),
         {"value": st.sampled_from([(1.0, 1.0), (2.0, 1.0), (0.0, 1.0), (1.0,), (1, 2, 3),
                                    (np.nan, 1.0), "ab", None])}, names={"value": "eps_range"}),
    Case(checks.string, lambda: dict(name="label", value="a"),
         {"value": st.sampled_from([3, None, b"a"])},
         names={"value": "label"}),
    Case(checks.function, lambda: dict(name="fn", value=len), {"value": "callable"},
         names={"value": "fn"}),
    Case(checks.float_dtype, lambda: dict(name="dtype", value=torch.float64), {"value": "dtype"},
         names={"value": "dtype"}),
    Case(checks.device, lambda: dict(name="device", value="cpu"), {"value": "device"},
         names={"value": "device"}),
    Case(checks.tensor, lambda: dict(name="X", value=X.clone(), shape=(None, 2)),
         {"value": "tensor"}, names={"value": "X"}),
    Case(checks.array, lambda: dict(name="eta", value=[0.1, 0.2], ndim=1),
         {"value": st.sampled_from(
             [None, "x", [], [1.0, np.nan], [[1.0]], [1 + 1j], [True]])}, names={"value": "eta"}),
    Case(checks.positive_array, lambda: dict(name="eta", value=[0.1, 0.2]),
         {"value": "positive_array"}, names={"value": "eta"}),
    Case(checks.labels, lambda: dict(name="y", y=torch.tensor([0, 1, 2]), n_classes=3, n=3),
         {"y": "labels"}, names={"y": "y"}),
    Case(checks.same_length, lambda: dict(X=torch.ones(3, 2), y=torch.zeros(3)),
         {"y": st.sampled_from([torch.zeros(2), torch.zeros(4)])}),
    Case(checks.mapping_keys, lambda: dict(name="eta", value={"w": 1.0, "g": 1.0}, keys=("w", "g")),
         {"value": st.sampled_from(
             [{"w": 1.0}, {"w": 1, "g": 1, "h": 1}, [("w", 1)], 1.0])}, names={"value": "eta"}),
    Case(checks.writable_dir, lambda: dict(name="cache", path="/tmp/normbook-checks-ok"),
         {"path": st.sampled_from(
             [None, 3, "/etc/hostname/sub", "/proc/none/x"])}, names={"path": "cache"}),
]

EXEMPT = {
    checks.is_integer: "a predicate: answers True/False for any value, by design",
    checks.is_real: "a predicate: answers True/False for any value, by design",
}

test_bad_input_is_refused_by_name = parametrize(CASES)


def test_good_values_come_back_canonical():
    assert checks.integer("n", np.int64(3)) == 3 and type(checks.integer("n", np.int64(3))) is int
    assert type(checks.positive("eta", np.float32(0.5))) is float
    assert checks.number("x", torch.tensor(2.0), lo=0) == 2.0
    assert checks.seed("seed", 2**63 - 1) == 2**63 - 1
    assert checks.device("d", "cpu") == torch.device("cpu")
    assert checks.choice("loss", "mse", ("mse", "ce")) == "mse"
    np.testing.assert_array_equal(checks.positive_array("eta", torch.tensor([1.0, 2.0])), [1, 2])


@pytest.mark.parametrize("lo,hi,lo_open,hi_open,inside,outside", [
    (0, 1, False, True, [0.0, 0.5, 0.999], [1.0, -1e-300]),
    (0, 1, True, False, [1e-300, 1.0], [0.0, 1.0000001]),
    (None, 5, False, False, [-1e300, 5.0], [5.0000001]),
])
def test_interval_ends_are_as_stated(lo, hi, lo_open, hi_open, inside, outside):
    for x in inside:
        assert checks.number("x", x, lo, hi, lo_open=lo_open, hi_open=hi_open) == x
    for x in outside:
        with pytest.raises(ValueError, match="^x must be"):
            checks.number("x", x, lo, hi, lo_open=lo_open, hi_open=hi_open)


def test_a_bool_is_not_a_number_and_a_float_is_not_an_integer():
    for bad in (True, np.bool_(False), 2.0, "2"):
        with pytest.raises(TypeError, match="^n must be an integer"):
            checks.integer("n", bad)
    with pytest.raises(TypeError, match="^eta must be"):
        checks.positive("eta", True)


def test_cuda_is_refused_where_it_is_absent():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        checks.device("device", "cuda")
