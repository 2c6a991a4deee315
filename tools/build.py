"""Build the HTML site into _build/html as CI does: warnings are errors, nitpicky checks on.

Usage: python tools/build.py [extra jupyter-book options]
"""

import sys
from pathlib import Path

from jupyter_book.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["build", str(ROOT), "--builder", "html", "--warningiserror", "--nitpick", "--keep-going"]

if __name__ == "__main__":
    main(ARGS + sys.argv[1:])
