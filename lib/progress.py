"""Progress bars that show in a live notebook and stay out of the built site."""

import os

from tqdm.auto import tqdm

from lib import checks


def quiet() -> bool:
    """True inside a book build (``NORMBOOK_BUILD=1``) or when ``NORMBOOK_QUIET=1``."""
    return os.environ.get("NORMBOOK_BUILD") == "1" or os.environ.get("NORMBOOK_QUIET") == "1"


def bar(total: int, desc: str = "", disable: bool = False, leave: bool = False, **kwargs):
    """A tqdm bar over ``total`` items, disabled in builds so pages carry no widget state.

    ``total`` is an integer >= 0, ``desc`` a string, ``disable`` and ``leave`` bools.
    """
    total, desc = checks.integer("total", total, lo=0), checks.string("desc", desc)
    disable, leave = checks.boolean("disable", disable), checks.boolean("leave", leave)
    return tqdm(total=total, desc=desc, disable=quiet() or disable, leave=leave, **kwargs)
