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
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
LIB = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """``$NORMBOOK_CACHE`` if set, else ``data/cache`` in the repository."""
    return Path(os.environ.get("NORMBOOK_CACHE") or ROOT / "data" / "cache")


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
        except ValueError:
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
    ``functools.partial`` is hashed with its bound arguments.
    """
    if isinstance(fn, functools.partial):
        inner = json.dumps([function_hash(fn.func, depth), _canonical(list(fn.args)),
                            _canonical(fn.keywords)], sort_keys=True)
        return hashlib.sha256(inner.encode()).hexdigest()
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
    if isinstance(obj, functools.partial) or hasattr(obj, "__code__"):
        return {"__function__": getattr(obj, "__qualname__", repr(obj)), "hash": function_hash(obj)}
    raise ValueError(f"cannot build a cache key from {type(obj).__name__}: {obj!r}")


def key(config, fn=None) -> str:
    """Hex key for ``config`` (dataclasses, dicts, lists, numbers, arrays) and ``fn``'s code."""
    payload = {"config": _canonical(config), "lib": lib_source_hash(),
               "fn": function_hash(fn) if fn is not None else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def path_for(name: str, config, fn=None) -> Path:
    """Where the result of ``fn(config)`` for cache entry ``name`` is stored."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"cache name must be letters, digits, '-' or '_', got {name!r}")
    return cache_dir() / f"{name}-{key(config, fn)}.pkl"


def load(path: Path):
    """The stored result at ``path``, or None if there is none (or it is unreadable)."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return None


def store(path: Path, result) -> None:
    """Write ``result`` atomically, so an interrupted write never leaves a broken entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        pickle.dump(result, f, protocol=4)
    os.replace(tmp, path)


def memoize(name: str, config, fn):
    """``fn(config)``, computed once per (config, code) and then read from the cache."""
    path = path_for(name, config, fn)
    result = load(path)
    if result is None:
        result = fn(config)
        store(path, result)
    return result
