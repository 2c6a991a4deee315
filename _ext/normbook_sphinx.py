"""Sphinx glue for the book (loaded through ``sphinx.local_extensions`` in _config.yml).

Seven jobs, each something a plain ``jupyter-book build`` would otherwise get wrong:

1. Tell the notebook kernels that they run inside a book build (``NORMBOOK_BUILD=1``),
   so interactive figures precompute their slider grids and progress bars stay quiet.
   Kernels inherit the environment of the Sphinx process that starts them.
2. Key the execution cache on the source of ``lib/`` and on the scale: jupyter-cache only
   hashes the notebooks' code cells, so without this a change to the library (or a build
   at another ``NORMBOOK_SCALE``) would leave stale figures in the site.
3. Serve MathJax from ``_static`` so the built pages work with no network.
4. Drop a script that sphinx-thebe includes twice (a console error on every page).
5. Skip every Python environment inside the book folder, whatever its name (a folder
   holding ``pyvenv.cfg`` or ``conda-meta``): its site-packages hold Markdown, reST and
   notebooks that are not pages. ``_config.yml`` skips the usual names by pattern.
6. Fix the markup faults axe-core finds (WCAG 2.1 AA) where they are made, since
   no option of the packages turns them off: docutils gives bibliography entries the
   deprecated role ``doc-biblioentry`` inside a ``role="list"`` (so the list's items are
   not list items); myst-nb names every hidden-input toggle "Toggle hidden content" while
   it shows "Show code cell source"; the theme's colour-mode button has icon titles that
   differ from its name, and the search field says "Search Ctrl+K" but is named "Search"
   (template overrides in ``_ext/templates``: the theme has no option for either).
7. Execute the notebooks the execution cache lacks side by side, one process per core,
   before Sphinx reads them: myst-nb executes them one after another, so a cold build
   took the sum of the pages' times. Each runs exactly as myst-nb would run it
   (jupyter-cache's own worker, the notebook's folder as working directory, the
   configured timeout and ``allow_errors``) and lands in the same cache, where myst-nb
   then finds it. A notebook that fails here is left out of the cache, so myst-nb runs it
   again and reports the error as usual.
"""

import hashlib
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path, PurePosixPath

from sphinx.util import logging

LOG = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
MATHJAX_FILES = ("tex-chtml-full.js",)
MATHJAX_FONTS = Path("output", "chtml", "fonts", "woff-v2")


def lib_hash() -> str:
    """Short SHA-256 of every Python file under lib/ (path and content)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "lib").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key() -> str:
    """The execution cache's folder name: the source of ``lib/`` and the scale the kernels
    will run at (``NORMBOOK_SCALE``: a gpu or smoke build never reuses cpu pages)."""
    from lib import scale

    return f"lib-{lib_hash()}-{scale.current().label.replace(':', '-')}"


def _key_cache_on_lib(app, config):
    base = Path(config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
    current = base / cache_key()
    for stale in base.glob("lib-*"):  # caches of older library versions
        if stale != current:
            shutil.rmtree(stale, ignore_errors=True)
    config.nb_execution_cache_path = str(current)


ENV_MARKERS = ("pyvenv.cfg", "conda-meta")
ENV_SEARCH_DEPTH = 3  # environments live near the top: ./.venv, ./envs/py311, ...


def environment_folders(root: Path, depth: int = ENV_SEARCH_DEPTH) -> list[str]:
    """Folders under ``root`` (relative, POSIX) that are Python environments, searched to
    ``depth`` levels; an environment's own subfolders are not searched."""
    found, level = [], [root]
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:  # unreadable folder: nothing of ours can be in it
                continue
            for child in children:
                if child.name in ("_build", ".git", "node_modules"):
                    continue
                if any((child / marker).exists() for marker in ENV_MARKERS):
                    found.append(child.relative_to(root).as_posix())
                else:
                    below.append(child)
        level = below
    return found


def _exclude_environments(app, config):
    extra = [f for f in environment_folders(Path(app.srcdir)) if f not in config.exclude_patterns]
    config.exclude_patterns = list(config.exclude_patterns) + extra


def _mathjax_source() -> Path:
    try:
        import mathjax  # the django-static-mathjax wheel: static files only
    except ImportError as err:
        raise RuntimeError(
            "MathJax for offline pages comes from the package django-static-mathjax: "
            "pip install -r requirements.txt"
        ) from err
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _copy_mathjax(app):
    if app.builder.format != "html":
        return
    src, dest = _mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    dest.mkdir(parents=True, exist_ok=True)
    for name in MATHJAX_FILES:
        shutil.copy2(src / name, dest / name)
    shutil.copytree(src / MATHJAX_FONTS, dest / MATHJAX_FONTS, dirs_exist_ok=True)


def _stale_notebooks(cache, paths) -> list:
    """The project records of the notebooks in ``paths`` that the cache has no match for."""
    import nbformat

    stale = []
    for path in paths:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=nbformat.NO_CONVERT))
        except KeyError:
            stale.append(cache.add_nb_to_project(str(path)))
    return stale


def _run_one(data):
    """Execute one project notebook into the cache with jupyter-cache's worker, timed."""
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc

    multiprocessing.log_to_stderr(30)   # the worker's reason for a failure, in the build log
    start = time.perf_counter()
    code, uri = ExecutionWorkerLocalMProc()(data)
    return code, uri, time.perf_counter() - start


def _execute_in_parallel(app, env, docnames):
    """Job 7: run the uncached notebooks among ``docnames`` side by side into the cache."""
    config = app.config
    if config.nb_execution_mode != "cache" or config.nb_execution_in_temp:
        return
    first = [d for d in config.normbook_execute_first if d in docnames]   # longest first
    paths = [Path(env.doc2path(name)) for name in first + sorted(set(docnames) - set(first))]
    skip = config.nb_execution_excludepatterns or ()   # matched as myst-nb matches them
    paths = [p for p in paths if p.suffix == ".ipynb" and p.is_file()
             and not any(PurePosixPath(p.as_posix()).match(pattern) for pattern in skip)]
    workers = min(len(paths), os.cpu_count() or 1)
    if workers < 2:   # nothing to gain: myst-nb executes a single notebook itself
        return
    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ProcessData

    cache = get_cache(config.nb_execution_cache_path)
    stale = _stale_notebooks(cache, paths)
    workers = min(len(stale), workers)
    if workers < 2:
        return
    LOG.info(f"normbook: executing {len(stale)} notebooks on {workers} processes")
    jobs = [ProcessData(r.pk, r.uri, cache, config.nb_execution_timeout,
                        config.nb_execution_allow_errors) for r in stale]
    # spawn: a fork of the Sphinx process could inherit its threads' locks
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for code, uri, seconds in pool.map(_run_one, jobs):
            shown = os.path.relpath(uri, app.srcdir)
            if code == 0:
                LOG.info(f"normbook: {shown}: executed in {seconds:.1f} seconds")
            else:   # myst-nb executes it again and reports the error in its own words
                LOG.info(f"normbook: {shown}: failed in a worker; myst-nb runs it again")


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """sphinx-thebe adds its inline config script twice under jupyter-book 1.x; the second
    copy redeclares a ``const`` and shows as a console error on every page."""
    scripts, seen, unique = context.get("script_files", []), set(), []
    for script in scripts:
        name = getattr(script, "filename", script) or ""  # None and "" both mean inline
        key = (str(name), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: later handlers append page scripts to this very list


# (node name, text its HTML visitor writes, the text we want). The visitor is the one an
# extension registered for the node (myst-nb's HideCodeCellNode), found when the builder
# starts, after every extension's setup; else the HTML translator's own method (citation).
MARKUP_FIXES = (
    ("citation", ' role="doc-biblioentry"', ' role="listitem"'),
    ("HideCodeCellNode", '<summary aria-label="Toggle hidden content">', "<summary>"),
)


def _rewriting(visit, old: str, new: str):
    """A visitor that runs ``visit`` and replaces ``old`` by ``new`` in what it wrote."""
    def visitor(self, node):
        start = len(self.body)
        visit(self, node)
        self.body[start:] = [piece.replace(old, new) for piece in self.body[start:]]
    return visitor


def _own_method(kind: str, name: str):
    return lambda self, node: getattr(type(self), f"{kind}_{name}")(self, node)


def _fix_markup(app):
    if app.builder.format != "html":
        return
    registry = app.registry.translation_handlers
    key = app.builder.name if app.builder.name in registry else app.builder.format
    handlers = registry.setdefault(key, {})
    for name, old, new in MARKUP_FIXES:
        visit, depart = handlers.get(name) or (_own_method("visit", name),
                                               _own_method("depart", name))
        handlers[name] = (_rewriting(visit, old, new), depart)


def _theme_templates(app, config):
    config.templates_path = [str(TEMPLATES), *config.templates_path]


def setup(app):
    os.environ["NORMBOOK_BUILD"] = "1"
    app.connect("config-inited", _key_cache_on_lib)
    app.connect("config-inited", _exclude_environments, priority=100)  # before etoc reads it
    app.connect("config-inited", _theme_templates)
    app.connect("builder-inited", _copy_mathjax)
    app.connect("builder-inited", _fix_markup)
    # pages to start first when run side by side (the longest: a better finish time)
    app.add_config_value("normbook_execute_first", [], "env", types=[list])
    app.connect("env-before-read-docs", _execute_in_parallel)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
