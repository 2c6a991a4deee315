"""Fill the results cache for one chapter's sweeps at a scale, here or on an executor.

    python -m lib.reproduce autorate --scale paper --executor dask://HOST:PORT
    python -m lib.reproduce wn --scale gpu --executor local:4
    python -m lib.reproduce bngd --scale paper --executor slurm --slurm-partition gpu

Each chapter package declares its sweeps in ``jobs.py``: ``jobs(scale)`` returns a list of
:class:`Job`, each calling the chapter's own function with the arguments the chapter
passes, so the cache entries are those the chapter asks for when it is next executed
(with ``NORMBOOK_SCALE`` set to the same scale). Chunks run on the executor
(:func:`lib.executors.from_url`); their results are stored here, in ``$NORMBOOK_CACHE`` or
``data/cache``. Chunks already cached are not recomputed, so an interrupted run resumes.
"""

import argparse
import dataclasses
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable

import lib
from lib import checks, executors, progress, scale


@dataclasses.dataclass(frozen=True)
class Job:
    """One sweep of a chapter, as the chapter runs it."""

    name: str           # the cache name the chapter's call uses (e.g. "autorate-gd-bn")
    run: Callable       # run() -> the chapter function's result; loads its own data

    def __post_init__(self):
        checks.string("name", self.name), checks.function("run", self.run)


def chapters() -> list:
    """The chapter packages that declare their sweeps (have a ``jobs`` module)."""
    return [c for c in lib.CHAPTERS if importlib.util.find_spec(f"lib.{c}.jobs") is not None]


def jobs(chapter: str, scale_name: str) -> list:
    """The :class:`Job` list of ``chapter`` (one of :func:`chapters`) at ``scale_name``."""
    chapter = checks.choice("chapter", chapter, chapters())
    chosen = scale.current(checks.choice("scale_name", scale_name, list(scale.SCALES)))
    found = importlib.import_module(f"lib.{chapter}.jobs").jobs(chosen)
    if not all(isinstance(j, Job) for j in found):
        raise TypeError(f"lib.{chapter}.jobs.jobs must return a list of lib.reproduce.Job")
    return found


def run(chapter: str, scale_name: str, executor=None, only=None, bar: bool = True) -> list:
    """Run ``chapter``'s jobs at ``scale_name`` (their chunks on ``executor``, None: here),
    those named in ``only`` (None: all); returns the names run. ``bar``: a progress bar
    counting chunks."""
    todo, bar = jobs(chapter, scale_name), checks.boolean("bar", bar)
    names = [j.name for j in todo]
    if only is not None:
        if not isinstance(only, (list, tuple)):
            raise TypeError(f"only must be None or a list of job names, got {type(only).__name__}")
        for name in only:
            checks.choice("only", name, names)
        todo = [j for j in todo if j.name in only]
    with progress.bar(0, f"{chapter} at {scale_name}: chunks", disable=not bar) as pbar, \
            executors.using(executor, bar=pbar):
        for job in todo:
            pbar.set_postfix_str(job.name)
            job.run()
    return [j.name for j in todo]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lib.reproduce", description=__doc__.split("\n\n")[0],
        epilog="Without --executor the chunks run in this process. SLURM options also come "
               "from NORMBOOK_SLURM_PARTITION, _TIME, _GPUS, _CPUS, _FOLDER.")
    parser.add_argument("chapter", choices=chapters(), help="the chapter package")
    parser.add_argument("--scale", choices=list(scale.SCALES), default=None,
                        help="experiment sizes (default: $NORMBOOK_SCALE, else gpu with CUDA, "
                             "else cpu)")
    parser.add_argument("--executor", default=None, metavar="URL",
                        help="local[:N] (N worker processes), dask://HOST:PORT, or slurm")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these jobs")
    parser.add_argument("--list", action="store_true", help="list the jobs and stop")
    for option, meaning in (("partition", "partition"), ("time", "time limit in minutes"),
                            ("gpus", "GPUs per node"), ("cpus", "CPUs per task"),
                            ("folder", "submitit's log folder (default slurm-logs/%%j)")):
        parser.add_argument(f"--slurm-{option}", dest=f"slurm_{option}", help=f"SLURM {meaning}")
    return parser


def main(argv=None) -> int:
    """The command line; bad arguments exit with status 2 and a message, a failed chunk 1."""
    parser = _parser()
    args = parser.parse_args(argv)
    chosen = scale.current(args.scale)
    if chosen.smoke:   # NORMBOOK_SCALE=gpu:smoke: its cut counts would fill the real cache
        parser.error(f"{scale.ENV_VAR}={chosen.label} is a smoke run, which fills no cache; "
                     f"run tools/smoke.py instead")
    name = chosen.name
    os.environ[scale.ENV_VAR] = name   # functions that read the scale themselves agree
    todo = jobs(args.chapter, name)
    if args.only:
        unknown = sorted(set(args.only) - {j.name for j in todo})
        if unknown:
            parser.error(f"--only: no job named {', '.join(unknown)} in {args.chapter} "
                         f"(jobs: {', '.join(j.name for j in todo)})")
    if args.list:
        print("\n".join(j.name for j in todo))
        return 0
    slurm = {k: getattr(args, f"slurm_{k}") for k in executors.SLURM_ENV
             if getattr(args, f"slurm_{k}") is not None}
    try:
        executor = executors.from_url(args.executor, slurm)
    except ValueError as err:
        parser.error(f"--executor {args.executor}: {err}")
    except ImportError as err:
        parser.error(f"--executor {args.executor} needs {err.name}: pip install "
                     f"{'submitit' if err.name == 'submitit' else 'dask[distributed]'}")
    except OSError as err:
        parser.error(f"--executor {args.executor}: cannot reach the scheduler ({err})")
    try:
        done = run(args.chapter, name, executor, args.only)
    except executors.ChunkFailed as err:
        print(f"lib.reproduce: {err}", file=sys.stderr)
        return 1
    finally:
        # a Dask client is closed (its cluster is someone else's), a process pool shut down
        close = getattr(executor, "close", None) or getattr(executor, "shutdown", None)
        close and close()
    print(f"{args.chapter} at {name} scale: {len(done)} jobs cached ({', '.join(done)})")
    return 0


if __name__ == "__main__":  # run as lib.reproduce, whose Job the chapters' jobs import
    sys.exit(importlib.import_module("lib.reproduce").main())
