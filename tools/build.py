"""Build the HTML site into _build/html as CI does: warnings are errors, nitpicky checks on.

Usage: python tools/build.py [BOOK_DIR] [extra jupyter-book options]
BOOK_DIR defaults to the repository (the tests build small throwaway books too).
"""

import os
import sys
from pathlib import Path

from jupyter_book.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--builder", "html", "--warningiserror", "--nitpick", "--keep-going"]

if __name__ == "__main__":
    args = sys.argv[1:]
    book = args.pop(0) if args and Path(args[0]).is_dir() else str(ROOT)
    # every kernel the build runs records its peak memory here (lib/chapter.py)
    os.environ.setdefault("NORMBOOK_MEMORY_LOG", str(Path(book) / "_build" / "memory"))
    main(["build", book, *FLAGS, *args])
