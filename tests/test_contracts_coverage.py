"""Together, the ``tests/test_contracts_*.py`` files check every public callable of ``lib``."""

import importlib
import inspect
from pathlib import Path

import lib

GROUPS = sorted(p.stem for p in Path(__file__).parent.glob("test_contracts_*.py")
                if p.stem != "test_contracts_coverage")


def lib_modules():
    """Every module of ``lib``: the shared ones and each chapter package's modules."""
    names = list(lib.SHARED)
    for chapter in lib.CHAPTERS:
        package = importlib.import_module(f"lib.{chapter}")
        names += [f"{chapter}.{sub}" for sub in package.__all__]
    return names


def public_callables():
    """Every public function and class defined in a ``lib`` module, by 'module.name'."""
    found = {}
    for name in lib_modules():
        module = importlib.import_module(f"lib.{name}")
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) == module.__name__:
                found[f"{name}.{attr}"] = obj
    return found


def covered():
    names, exempt = set(), {}
    for group in GROUPS:
        module = importlib.import_module(group)
        names |= {f"{c.func.__module__.removeprefix('lib.')}.{c.func.__qualname__}"
                  for c in module.CASES}
        for func, reason in getattr(module, "EXEMPT", {}).items():
            assert isinstance(reason, str) and len(reason) > 10, (func, "needs a reason")
            exempt[f"{func.__module__.removeprefix('lib.')}.{func.__qualname__}"] = reason
    return names, exempt


def test_every_public_callable_has_a_contract_or_a_reason():
    names, exempt = covered()
    missing = sorted(set(public_callables()) - names - set(exempt))
    assert not missing, f"public callables with no bad-input case: {missing}"


def test_contracts_name_only_public_callables():
    names, exempt = covered()
    unknown = sorted((names | set(exempt)) - set(public_callables()))
    assert not unknown, f"cases for names that are not public callables of lib: {unknown}"
