"""A results cache in ``data/cache``, keyed by a configuration and the code behind it.

Results are small summaries (arrays of losses, not checkpoints), pickled, so they can
be committed: the site then builds fast even where a computation is slow, and results
computed elsewhere (at GPU scale) can be added. Any change to ``lib/`` or to the
function that computes a result gives a new key, so stale results are never reused.
"""

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import pickle
import types
import warnings
from pathlib import Path

import numpy as np
import torch

from lib import checks

ROOT = Path(__file__).resolve().parent.parent
LIB = Path(__file__).resolve().parent


ENV_VAR = "NORMBOOK_CACHE"


def cache_dir() -> Path:
    """``$NORMBOOK_CACHE`` if set, else ``data/cache`` in the repository."""
    return Path(os.environ.get(ENV_VAR) or ROOT / "data" / "cache")


def writable_cache_dir() -> Path:
    """:func:`cache_dir`, made if need be; a ValueError naming it if it cannot be written."""
    name = ENV_VAR if os.environ.get(ENV_VAR) else f"the cache folder (set {ENV_VAR} to move it)"
    return checks.writable_dir(name, cache_dir())


def lib_source_hash() -> str:
    """SHA-256 over the source of every module in ``lib/``."""
    digest = hashlib.sha256()
    for path in sorted(LIB.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _names(code) -> set:
    """Global names a code object (and the functions nested in it) may read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _referenced(fn, depth: int) -> list:
    """Canonical values of the globals and closure variables ``fn`` reads.

    Sizes or data defined in a notebook cell change a result as much as the function's
    own source does, so they belong in its cache key. Modules are skipped (``lib``'s
    source is hashed anyway), and so are mutable containers (lists, dicts, sets), which
    hold state such as counters rather than settings; helper functions are hashed like
    ``fn``, two levels deep.
    """
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    found = {n: fn.__globals__[n] for n in sorted(_names(code)) if n in fn.__globals__}
    cells = zip(code.co_freevars, fn.__closure__ or ())
    found.update({f"<closure {n}>": c.cell_contents for n, c in cells if _filled(c)})
    out = []
    for name, value in found.items():
        if isinstance(value, (types.ModuleType, type, list, dict, set)):
            continue  # modules and classes: code; mutable containers: state, not settings
        if callable(value) and not isinstance(value, functools.partial) and hasattr(value, "__code__"):
            out.append([name, function_hash(value, depth + 1) if depth < 2 else value.__qualname__])
            continue
        try:
            out.append([name, _canonical(value)])
        except TypeError:
            out.append([name, type(value).__qualname__])  # unkeyable: at least its type
    return out


def _filled(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:  # a closure variable not assigned yet
        return False


def function_hash(fn, depth: int = 0) -> str:
    """SHA-256 of a function's source and of the global values it reads.

    Falls back to bytecode and constants where the source is gone; a
    ``functools.partial`` is hashed with its bound arguments. ``fn`` is a Python function
    or a partial of one (a builtin or a callable object has no code to hash).
    """
    checks.integer("depth", depth, lo=0)
    if isinstance(fn, functools.partial):
        inner = json.dumps([function_hash(fn.func, depth), _canonical(list(fn.args)),
                            _canonical(fn.keywords)], sort_keys=True)
        return hashlib.sha256(inner.encode()).hexdigest()
    if not hasattr(fn, "__code__"):
        raise TypeError(f"fn must be a Python function or a functools.partial of one, got "
                        f"{type(fn).__name__} {fn!r:.60}")
    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = fn.__code__
        text = code.co_code + repr(code.co_consts).encode()
    refs = json.dumps(_referenced(fn, depth), sort_keys=True, default=str).encode()
    return hashlib.sha256(text + refs).hexdigest()


def _canonical(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__dataclass__": type(obj).__name__, **_canonical(dataclasses.asdict(obj))}
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__array__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, torch.Tensor):  # by content: large tensors are hashed, not listed
        data = obj.detach().cpu().contiguous().numpy().tobytes()
        return {"__tensor__": hashlib.sha256(data).hexdigest(), "shape": list(obj.shape),
                "dtype": str(obj.dtype)}
    if isinstance(obj, (np.floating, float)):
        return repr(float(obj))  # repr round-trips: 0.1 and 0.1000000001 differ
    if isinstance(obj, (np.integer, int, bool, str)) or obj is None:
        return obj if not isinstance(obj, np.integer) else int(obj)
    if isinstance(obj, torch.nn.Module):  # a network: its class and its current state
        return {"__module__": type(obj).__qualname__,
                "state": {k: _canonical(v) for k, v in obj.state_dict().items()}}
    if isinstance(obj, functools.partial) or hasattr(obj, "__code__"):  # not repr(): it holds
        return {"__function__": _qualname(obj), "hash": function_hash(obj)}  # an address
    raise TypeError(f"cannot build a cache key from {type(obj).__name__}: {obj!r:.60}")


def _qualname(fn) -> str:
    """The name of a function, or of the function a (nested) partial wraps."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__qualname__", type(fn).__qualname__)


def key(config, fn=None) -> str:
    """Hex key for ``config`` (dataclasses, dicts, lists, numbers, arrays) and ``fn``'s code.

    A ``config`` holding anything else (an object, a builtin) is a TypeError naming it.
    """
    try:
        config = _canonical(config)
    except TypeError as err:
        raise TypeError(f"config: {err}") from None
    payload = {"config": config, "lib": lib_source_hash(),
               "fn": function_hash(fn) if fn is not None else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def path_for(name: str, config, fn=None) -> Path:
    """Where the result of ``fn(config)`` for cache entry ``name`` is stored."""
    checks.string("name", name)
    if not name or not name.replace("-", "").replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"cache name must be letters, digits, '-' or '_', got {name!r}")
    return cache_dir() / f"{name}-{key(config, fn)}.pkl"


def _path(name: str, path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(path).__name__} {path!r:.60}")
    return Path(path)


def load(path: Path):
    """The stored result at ``path`` (a str or Path), or None if there is none.

    An entry that cannot be read back (corrupt, or pickled by other code) counts as none,
    with a warning, so that :func:`memoize` recomputes and overwrites it.
    """
    path = _path("path", path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as err:  # unpickling foreign or broken data can raise almost anything
        warnings.warn(f"cache entry {path} is unreadable ({type(err).__name__}: {err}); "
                      f"it will be recomputed", stacklevel=2)
        return None


def store(path: Path, result) -> None:
    """Write ``result`` atomically, so an interrupted write never leaves a broken entry.

    A folder that cannot be written is a ValueError, a result that cannot be pickled a
    TypeError, each naming what is wrong.
    """
    path = _path("path", path)
    checks.writable_dir(f"the folder of path {str(path)!r}", path.parent)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(result, f, protocol=4)
        os.replace(tmp, path)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise TypeError(f"result cannot be pickled: {err}") from None
    finally:
        tmp.unlink(missing_ok=True)


def memoize(name: str, config, fn):
    """``fn(config)``, computed once per (config, code) and then read from the cache.

    The cache folder must be writable before ``fn`` runs (a ValueError naming
    ``NORMBOOK_CACHE`` otherwise); if storing still fails, the result is returned with a
    warning.
    """
    checks.function("fn", fn)
    path = path_for(name, config, fn)
    result = load(path)
    if result is None:
        writable_cache_dir()
        result = fn(config)
        save(path, result, name)
    return result


def save(path: Path, result, name: str) -> None:
    """:func:`store`, but a failure is a warning that the result of cache entry ``name``
    was computed and not cached (the computation is not lost to a full disk)."""
    path, name = _path("path", path), checks.string("name", name)
    try:
        store(path, result)
    except (OSError, TypeError, ValueError) as err:
        warnings.warn(f"result of {name!r} computed but not cached: {err}", stacklevel=3)
