"""Checks of arguments at the public boundary of ``lib``: one place, one wording.

Every public function states its contract in a line or two with these helpers::

    n = checks.integer("n", n)                       # int >= 1
    eta = checks.positive("eta", eta)                # finite float > 0
    momentum = checks.number("momentum", momentum, lo=0, hi=1, hi_open=True)
    X = checks.tensor("X", X, ndim=2)                # floating, finite, non-empty

Each helper returns the value in its canonical type (Python ``int``/``float``, a tensor)
and raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value of
the right kind out of range. Every message starts with the argument's name and says what
was expected and what came, e.g. ``eta must be a finite number > 0, got nan``.
"""

import math
import numbers
import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed accepts [0, 2**64); keep int64


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value) -> str:
    return type(value).__name__


def is_integer(value) -> bool:
    """True for Python and NumPy integers (and 0-d integer tensors); never for bools."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool \
            and not value.is_complex()
    return isinstance(value, numbers.Integral)


def is_real(value) -> bool:
    """True for real numbers (ints, floats, NumPy scalars, 0-d real tensors); not bools."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and value.dtype != torch.bool and not value.is_complex()
    return isinstance(value, numbers.Real)


def integer(name: str, value, lo: int | None = 1, hi: int | None = None) -> int:
    """``value`` as an ``int`` in [lo, hi] (either end may be None: unbounded)."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an integer{_range_text(lo, hi)}, got {_kind(value)} "
                        f"{_show(value)}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer{_range_text(lo, hi)}, got {value}")
    return value


def _num(x) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range_text(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {_num(hi)}"
    return ""


def number(name: str, value, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False, hi_open: bool = False, finite: bool = True) -> float:
    """``value`` as a ``float`` in the interval from ``lo`` to ``hi`` (open ends optional).

    NaN is always refused; ±inf unless ``finite=False``.
    """
    what = f"a {'finite ' if finite else ''}number{_range_text(lo, hi, lo_open, hi_open)}"
    if not is_real(value):
        raise TypeError(f"{name} must be {what}, got {_kind(value)} {_show(value)}")
    value = float(value)
    bad = math.isnan(value) or (finite and math.isinf(value))
    bad = bad or (lo is not None and (value <= lo if lo_open else value < lo))
    bad = bad or (hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def positive(name: str, value) -> float:
    """A finite ``float`` > 0 (learning rates, scales, widths of intervals)."""
    return number(name, value, lo=0, lo_open=True)


def nonnegative(name: str, value) -> float:
    """A finite ``float`` >= 0 (weight decay, noise levels)."""
    return number(name, value, lo=0)


def fraction(name: str, value, *, hi_open: bool = True) -> float:
    """A ``float`` in [0, 1) (momentum γ), or [0, 1] with ``hi_open=False``."""
    return number(name, value, lo=0, hi=1, hi_open=hi_open)


def seed(name: str, value) -> int:
    """A seed: an integer in [0, 2**63 − 1] (no floats, strings or wrapped negatives)."""
    return integer(name, value, lo=0, hi=SEED_MAX)


def boolean(name: str, value) -> bool:
    """A ``bool`` (NumPy bools accepted); 0/1 or strings are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_kind(value)} {_show(value)}")
    return bool(value)


def choice(name: str, value, options: Iterable):
    """``value`` if it is one of ``options`` (compared with ==)."""
    options = tuple(options)
    try:
        ok = any(value == o and type(value) is type(o) for o in options)
    except Exception:  # an array-like compared elementwise is not an option
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; "
                         f"got {_show(value)}")
    return value


def instance(name: str, value, cls: type, made_by: str | None = None):
    """``value`` if it is a ``cls`` (a result record, a config, a figure), else a TypeError
    naming the argument (and, if given, what makes such objects)."""
    if not isinstance(value, cls):
        where = f" (from {made_by})" if made_by else ""
        raise TypeError(f"{name} must be a {cls.__module__}.{cls.__qualname__}{where}, got "
                        f"{_kind(value)}")
    return value


def interval(name: str, value) -> tuple[float, float]:
    """A pair (lo, hi) of finite numbers with 0 < lo < hi (a range on a log axis)."""
    pair = positive_array(name, value, ndim=1)
    if pair.shape != (2,) or not pair[0] < pair[1]:
        raise ValueError(f"{name} must be a pair (lo, hi) with 0 < lo < hi, got {_show(value)}")
    return float(pair[0]), float(pair[1])


def string(name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {_kind(value)} {_show(value)}")
    return value


def function(name: str, value) -> Callable:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {_kind(value)} {_show(value)}")
    return value


def float_dtype(name: str, value) -> torch.dtype:
    """A floating ``torch.dtype`` (float16/32/64, bfloat16)."""
    if not isinstance(value, torch.dtype):
        raise TypeError(f"{name} must be a torch dtype such as torch.float32, got "
                        f"{_kind(value)} {_show(value)}")
    if not value.is_floating_point:
        raise ValueError(f"{name} must be a floating torch dtype (float32, float64, ...), "
                         f"got {value}")
    return value


def device(name: str, value) -> torch.device:
    """A device that exists on this machine, from a ``torch.device`` or a string."""
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a torch.device or a string such as 'cpu', got "
                        f"{_kind(value)} {_show(value)}")
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must name a device such as 'cpu', 'cuda' or 'mps', "
                         f"got {value!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} is {value!r} but CUDA is not available on this machine "
                         f"(use 'cpu')")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"{name} is {value!r} but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise ValueError(f"{name} is {value!r} but MPS is not available on this machine "
                         f"(use 'cpu')")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{name} must be 'cpu', 'cuda' or 'mps', got {value!r}")
    return dev


def tensor(name: str, value, *, ndim: int | Sequence[int] | None = None,
           shape: Sequence[int | None] | None = None, floating: bool = True,
           finite: bool = True, nonempty: bool = True, dtype: torch.dtype | None = None
           ) -> torch.Tensor:
    """A ``torch.Tensor`` with the stated properties (it is not copied or converted).

    ``shape`` may hold None for free dimensions, e.g. ``(None, d)``. ``floating`` asks for a
    floating dtype; ``floating=False`` for an integer dtype (labels, indices).
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_kind(value)} {_show(value)}")
    if ndim is not None:
        ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in ndims:
            raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimension(s), "
                             f"got shape {tuple(value.shape)}")
    if shape is not None:
        ok = len(shape) == value.ndim and all(s is None or s == v for s, v in zip(shape, value.shape))
        if not ok:
            want = "(" + ", ".join("·" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {tuple(value.shape)}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {value.dtype}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor (float32 or float64), got "
                        f"{value.dtype}")
    if floating is False and (value.is_floating_point() or value.is_complex()
                              or value.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer tensor, got {value.dtype}")
    if nonempty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    return value


def array(name: str, value, *, ndim: int | None = None, finite: bool = True,
          nonempty: bool = True, dtype=np.float64) -> np.ndarray:
    """Numbers (a list, a NumPy array, a CPU tensor) as a NumPy array of ``dtype``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of numbers, got {_kind(value)} {_show(value)}")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of numbers: {err}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)) or \
            np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    return arr


def positive_array(name: str, value, **kw) -> np.ndarray:
    """As :func:`array`, every entry finite and > 0 (a learning-rate schedule)."""
    arr = array(name, value, **kw)
    if arr.size and not np.all(arr > 0):
        raise ValueError(f"{name} must hold numbers > 0, got min {arr.min():g}")
    return arr


def labels(name: str, y, n_classes: int, n: int | None = None) -> torch.Tensor:
    """Integer class labels in [0, n_classes), of length ``n`` when given."""
    y = tensor(name, y, ndim=1, floating=False)
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} labels but the data have {n} examples")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{name} must hold labels in 0..{n_classes - 1}, got {lo}..{hi}")
    return y


def same_length(**arrays) -> int:
    """The common first dimension of the named tensors/arrays, or a ValueError naming them."""
    sizes = {k: len(v) for k, v in arrays.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k} has {s}" for k, s in sizes.items())
        raise ValueError(f"{' and '.join(sizes)} must have the same length: {listed}")
    return next(iter(sizes.values()))


def mapping_keys(name: str, value, keys: Iterable[str]) -> dict:
    """A dict with exactly the given keys."""
    keys = sorted(keys)
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict with keys {keys}, got {_kind(value)}")
    if sorted(value) != keys:
        raise ValueError(f"{name} must have exactly the keys {keys}, got {sorted(value)}")
    return value


def writable_dir(name: str, path) -> "os.PathLike":
    """A folder that exists or can be made, and can be written to."""
    from pathlib import Path

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {_kind(path)} {_show(path)}")
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"{name} {str(path)!r} is not a folder (a file is in the way)") from None
    except OSError as err:
        raise ValueError(f"{name} {str(path)!r} cannot be created: {err.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r} is not writable")
    return path
