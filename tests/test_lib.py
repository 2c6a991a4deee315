"""The house plan of ``lib``, kept by walking the source (AST): a top-level module is a
shared concept, a package is a chapter, and imports go one way only."""

import ast
import importlib
from pathlib import Path

import lib

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"


def test_every_module_is_listed_and_importable_lazily():
    assert {p.stem for p in LIB.glob("*.py")} - {"__init__"} == set(lib.SHARED)
    assert {p.name for p in LIB.iterdir() if (p / "__init__.py").exists()} == set(lib.CHAPTERS)
    for name in lib.__all__:
        assert getattr(lib, name).__name__ == f"lib.{name}"
    for chapter in lib.CHAPTERS:
        package = importlib.import_module(f"lib.{chapter}")
        files = {p.stem for p in (LIB / chapter).glob("*.py")} - {"__init__"}
        assert set(package.__all__) == files, chapter
        for sub in package.__all__:
            importlib.import_module(f"lib.{chapter}.{sub}")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(module imported, names taken from it) for every import statement of a file."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [a.name for a in node.names]
            yield node.module, names
            for name in names:  # "from lib import train" imports the module lib.train
                yield f"{node.module}.{name}", []


def _chapter_of(module: str):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "lib" and parts[1] in lib.CHAPTERS else None


def _lib_files():
    return sorted(LIB.rglob("*.py"))


def test_shared_modules_import_no_chapter_and_chapters_only_their_own():
    bad = []
    for path in _lib_files():
        own = _chapter_of(_module_name(path))
        for module, _ in _imports(path):
            other = _chapter_of(module)
            if other is not None and other != own:
                bad.append(f"{_module_name(path)} imports {module}")
    assert not bad, bad


def _is_lib_module(dotted: str) -> bool:
    path = LIB.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _private_uses(path: Path):
    """Private names taken from another module: ``from m import _x`` or ``m._x`` where ``m``
    is a name bound to a module of lib."""
    tree, this = ast.parse(path.read_text()), _module_name(path)
    modules = {}  # local name -> lib module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lib"):
            for a in node.names:
                if a.name.startswith("_") and node.module != this:
                    yield f"from {node.module} import {a.name}"
                if _is_lib_module(f"{node.module}.{a.name}"):
                    modules[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("lib"):
                    modules[a.asname or a.name.split(".")[0]] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                and node.value.id in modules and modules[node.value.id] != this):
            yield f"{node.value.id}.{node.attr}"


def test_nothing_imports_a_private_name_from_another_module():
    files = _lib_files() + sorted((ROOT / "bench").glob("*.py"))
    bad = {str(p.relative_to(ROOT)): uses for p in files if (uses := sorted(set(_private_uses(p))))}
    assert not bad, bad


def test_the_private_name_check_can_fail(tmp_path):
    """The walk above finds both spellings of a private import."""
    (tmp_path / "m.py").write_text("from lib import train\nfrom lib.train import _x\ntrain._y\n")
    path = tmp_path / "m.py"
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        assert sorted(_private_uses(path)) == ["from lib.train import _x", "train._y"]
    finally:
        ROOT = old


def test_benchmarks_import_no_test_module():
    """bench/ shares code with tests/ through tools.sitekit, never by loading test files."""
    tests = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"tests", "conftest"}
    for path in sorted((ROOT / "bench").glob("*.py")):
        text = path.read_text()
        imported = {module.split(".")[0] for module, _ in _imports(path)}
        assert not imported & tests, (path.name, imported & tests)
        assert "spec_from_file_location" not in text and "sys.path" not in text, path.name
