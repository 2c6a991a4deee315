"""Progress bars that show in a live notebook and stay out of the built site."""

import os

from tqdm.auto import tqdm


def quiet() -> bool:
    """True inside a book build (``NORMBOOK_BUILD=1``) or when ``NORMBOOK_QUIET=1``."""
    return os.environ.get("NORMBOOK_BUILD") == "1" or os.environ.get("NORMBOOK_QUIET") == "1"


def bar(total: int, desc: str = "", disable: bool = False, leave: bool = False, **kwargs):
    """A tqdm bar over ``total`` items, disabled in builds so pages carry no widget state."""
    return tqdm(total=total, desc=desc, disable=quiet() or disable, leave=leave, **kwargs)
