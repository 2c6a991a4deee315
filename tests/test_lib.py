from pathlib import Path

import lib


def test_every_module_is_listed_and_importable_lazily():
    modules = {p.stem for p in Path(lib.__file__).parent.glob("*.py")} - {"__init__"}
    assert set(lib.__all__) == modules
    for name in lib.__all__:
        assert getattr(lib, name).__name__ == f"lib.{name}"
