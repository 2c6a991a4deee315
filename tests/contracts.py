"""Property-based checks that every public function of ``lib`` refuses bad input clearly.

A :class:`Case` names a public function, a cheap valid call of it, and the kind of each
argument. For every argument, Hypothesis draws bad values of that kind (wrong types,
NaN/inf, zero and negative sizes, empty, mis-shaped and mismatched tensors, unknown
names), puts one of them in place of the valid value, and the test asserts a
``ValueError`` or ``TypeError`` whose message names the argument. A function that
accepts the bad value silently, or fails with a low-level error, fails the test.

Each ``tests/test_contracts_<group>.py`` holds ``CASES`` (and ``EXEMPT``: public names with
no argument to check, each with its reason) and calls :func:`parametrize`;
``tests/test_contracts_coverage.py`` checks that together they cover every public
callable of every ``lib`` module.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAN, INF = float("nan"), float("inf")
NOT_NUMBERS = [None, "1", [1.0], {}, 1j, object()]
BOOLS = [True, False, np.bool_(True)]

# Bad values by kind of argument; each is a strategy (or a function of the valid value
# returning one, for tensors, whose bad variants derive from the good one).
_sizes_bad = st.one_of(st.integers(max_value=0), st.sampled_from([2.5, 3.0, NAN, "3", None, True]),
                       st.floats(allow_nan=True).filter(lambda x: not float(x).is_integer()))
_count_bad = st.one_of(st.integers(max_value=-1), st.sampled_from([2.5, 1.0, NAN, "3", None, True]))
_positive_bad = st.one_of(st.floats(max_value=0.0), st.sampled_from([NAN, INF, -INF, *NOT_NUMBERS, *BOOLS]))
_nonneg_bad = st.one_of(st.floats(max_value=-1e-300, allow_infinity=True),
                        st.sampled_from([NAN, INF, *NOT_NUMBERS, True]))
_fraction_bad = st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0),
                          st.sampled_from([NAN, INF, *NOT_NUMBERS, True]))
_finite_bad = st.sampled_from([NAN, INF, -INF, *NOT_NUMBERS, True])
_seed_bad = st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63),
                      st.sampled_from([0.0, 1.5, "0", None, True, NAN]))
_dtype_bad = st.sampled_from([torch.int64, torch.int32, torch.bool, torch.complex64, "float32",
                              np.float32, float, None])
_device_bad = st.sampled_from(["bogus", "gpu", 3, None, [], "cpu:x"]
                              + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"]))
_callable_bad = st.sampled_from([3, "f", None, [1, 2]])
_bool_bad = st.sampled_from([0, 1, "yes", None, 1.0])
# Fixed names that no function accepts (a drawn text could hit a valid name: Hypothesis
# also tries string literals it finds in the code under test).
_name_bad = st.sampled_from(["", "no_such_name", "MSE ", "hinge-x", None, 3, ("a",)])


def _tensor_bad(valid: torch.Tensor):
    """Bad variants of a valid floating tensor: other types, NaN/inf, empty, wrong ndim or
    width, integer dtype."""
    out = [valid.tolist(), valid.detach().cpu().numpy(), None, "X", valid.long()]
    if valid.numel():
        for poison in (NAN, INF):
            bad = valid.detach().clone()
            bad.view(-1)[valid.numel() // 2] = poison
            out.append(bad)
    out += [valid[:0], valid.unsqueeze(0)]
    if valid.ndim >= 1:
        out.append(valid.reshape(-1)[:1].reshape(()))  # a 0-d tensor
    if valid.ndim >= 2 and valid.shape[-1] > 1:
        out.append(valid[..., :-1])  # one feature short: mismatched with its partner
    return st.sampled_from(out)


def _labels_bad(valid: torch.Tensor):
    """Bad label vectors: floats, out-of-range, negative, wrong length, wrong ndim."""
    out = [valid.float(), valid.tolist(), None, valid + int(valid.max()) + 100, valid - 100,
           valid[:-1], valid[:0], valid.unsqueeze(1)]
    return st.sampled_from(out)


def _array_bad(valid):
    arr = np.asarray(valid, dtype=float)
    out = [None, "x"]
    if arr.size:
        for poison in (NAN, INF, -1.0, 0.0):
            bad = arr.copy()
            bad.reshape(-1)[arr.size // 2] = poison
            out.append(bad)
    out += [arr[:0]]
    return st.sampled_from(out)


KINDS: dict[str, object] = {
    "size": _sizes_bad,              # integer >= 1
    "count": _count_bad,             # integer >= 0
    "positive": _positive_bad,       # finite float > 0
    "nonneg": _nonneg_bad,           # finite float >= 0
    "fraction": _fraction_bad,       # float in [0, 1)
    "finite": _finite_bad,           # any finite float
    "seed": _seed_bad,               # integer in [0, 2**63)
    "dtype": _dtype_bad,             # floating torch dtype
    "device": _device_bad,           # an available device
    "callable": _callable_bad,
    "bool": _bool_bad,
    "name": _name_bad,               # one of a fixed set of names (unknown names are bad)
    "tensor": _tensor_bad,           # floating finite tensor of a given shape
    "labels": _labels_bad,           # integer labels in range, of matching length
    "positive_array": _array_bad,    # finite array of numbers > 0 (a schedule)
}


@dataclasses.dataclass
class Case:
    """A public function, a cheap valid call, and the kind of each argument to attack.

    ``valid`` returns fresh keyword arguments (so mutable tensors are never shared). A
    kind may also be a strategy of bad values written for this argument. An argument
    written ``"config.steps"`` is a field of the dataclass passed as ``config``. ``names``
    maps an argument to the word its error message uses, when that is not its name.
    """

    func: Callable
    valid: Callable[[], dict]
    kinds: dict
    names: dict = dataclasses.field(default_factory=dict)
    examples: int = 12

    @property
    def id(self):
        return f"{self.func.__module__.removeprefix('lib.')}.{self.func.__qualname__}"


def _bad_strategy(kind, valid_value):
    strat = KINDS[kind] if isinstance(kind, str) else kind
    if callable(strat) and not isinstance(strat, st.SearchStrategy):
        strat = strat(valid_value)
    return strat


def _substitute(kwargs: dict, arg: str, value) -> dict:
    if "." in arg:
        outer, field = arg.split(".", 1)
        kwargs[outer] = dataclasses.replace(kwargs[outer], **{field: value}) \
            if dataclasses.is_dataclass(kwargs[outer]) else {**kwargs[outer], field: value}
    else:
        kwargs[arg] = value
    return kwargs


def _current(kwargs: dict, arg: str):
    if "." in arg:
        outer, field = arg.split(".", 1)
        obj = kwargs[outer]
        return getattr(obj, field) if dataclasses.is_dataclass(obj) else obj[field]
    return kwargs.get(arg)


def _fields(cases):
    return [pytest.param(case, arg, id=f"{case.id}:{arg}") for case in cases for arg in case.kinds]


def parametrize(cases):
    """A test function checking every (case, argument) pair of ``cases``."""

    @pytest.mark.parametrize("case,arg", _fields(cases))
    def test_bad_input_is_refused_by_name(case, arg):
        strat = _bad_strategy(case.kinds[arg], _current(case.valid(), arg))

        @settings(max_examples=case.examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(bad=strat)
        def check(bad):
            kwargs = _substitute(case.valid(), arg, bad)
            try:
                with pytest.raises((ValueError, TypeError)) as info:
                    case.func(**kwargs)
            except BaseException as err:
                if isinstance(err, (KeyboardInterrupt, SystemExit)):
                    raise
                raise AssertionError(f"{case.id}({arg}={_short(bad)}) did not raise ValueError/"
                                     f"TypeError: {type(err).__name__}: {err}") from None
            word = case.names.get(arg, arg.split(".")[-1])
            assert word in str(info.value), (
                f"{case.id}({arg}={_short(bad)}) raised {info.type.__name__} without naming "
                f"{word!r}: {info.value}")

        check()

    return test_bad_input_is_refused_by_name


def _short(value):
    if isinstance(value, torch.Tensor):
        return f"<{value.dtype} tensor {tuple(value.shape)}>"
    if isinstance(value, np.ndarray):
        return f"<{value.dtype} array {value.shape}>"
    text = repr(value)
    return text if len(text) < 50 else text[:47] + "..."

