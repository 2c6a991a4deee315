"""``python -m lib.reproduce``: a chapter's jobs leave the cache entries its own cells ask for.

At a tiny scale, each chapter's jobs run in another process, through a process pool (as
the command runs them before a build); then, in this process, the chapter's own
statements that call its sweeps (read from the notebook, with the statements they depend
on) run with an executor that refuses every task: any chunk the jobs did not leave under
the key the chapter asks for would be submitted, and fail the test.
"""

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib import cache, chapter, device, executors, reproduce, scale
from lib.explr import comparisons

ROOT = Path(__file__).resolve().parent.parent
TINY = scale.Scale("cpu", n_train=400, n_test=100, epochs=1, steps=3, width=8, grid=4,
                   seeds=1, slider_grid=2, description="tiny: tests only")
# the exponential-LR chapter takes its schedule comparison's sizes from its own table
# (comparisons.SCHEDULE_SETUPS[scale name]): a tiny one, with two seeds so that each run is
# judged by its own seed's network in another process too
TINY_SCHEDULES = comparisons.ScheduleSetup(
    "fashion_mnist", n_train=64, n_test=20, widths=(2, 4), blocks=1, stem_stride=2, epochs=3,
    milestones=(1, 2), augment=False, batch_size=32, eta=0.1, weight_decay=1e-2, momentum=0.9,
    seeds=(0, 1))
# chapter -> (notebook, the chapter functions whose calls the jobs must match: "f" is any
# call of an attribute f, "m.f" only of m.f, as figures.schedule_runs is not a sweep)
CHAPTERS = {"autorate": ("auto_rate_tuning", {"rate_sweep"}),
            "bngd": ("bngd_least_squares", {"eta_sweep"}),
            "explr": ("exponential_lr", {"comparisons.schedule_runs"}),
            "wn": ("wn_relu_convergence", {"regime_sweep", "tuned_runs", "width_sweep"})}


@pytest.fixture(autouse=True)
def tiny(monkeypatch, tmp_path):
    monkeypatch.setattr(cache, "lib_source_hash", lambda: "lib")  # others edit lib/ meanwhile
    monkeypatch.setitem(scale.SCALES, "cpu", TINY)
    monkeypatch.setitem(comparisons.SCHEDULE_SETUPS, "cpu", TINY_SCHEDULES)
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path))


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """The cache folder after every chapter's jobs ran at TINY scale in a subprocess."""
    folder = tmp_path_factory.mktemp("reproduced")
    script = (f"from lib import cache, executors, reproduce, scale\n"
              f"cache.lib_source_hash = lambda: 'lib'\n"
              f"scale.SCALES['cpu'] = scale.Scale(**{dataclasses.asdict(TINY)!r})\n"
              f"from lib.explr import comparisons\n"
              f"comparisons.SCHEDULE_SETUPS['cpu'] = comparisons.ScheduleSetup("
              f"**{dataclasses.asdict(TINY_SCHEDULES)!r})\n"
              f"with executors.from_url('local:2') as pool:\n"
              f"    for name in {sorted(CHAPTERS)!r}:\n"
              f"        print(name, reproduce.run(name, 'cpu', executor=pool, bar=False))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=900, env={**os.environ, "NORMBOOK_CACHE": str(folder)})
    assert out.returncode == 0, out.stderr[-3000:]
    return folder, out.stdout


class Refusing:
    def submit(self, fn, *args):
        raise AssertionError("a chunk the chapter asks for is not in the cache")


def _names(node, ctx):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _calls(node) -> set:
    """Names of the attributes called in ``node``: "f" and, for a call m.f(...), "m.f"."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            found.add(n.func.attr)
            if isinstance(n.func.value, ast.Name):
                found.add(f"{n.func.value.id}.{n.func.attr}")
    return found


def chapter_statements(notebook: str, targets: set) -> str:
    """The notebook's top-level statements that call one of ``targets``, with every earlier
    statement they need (a backward slice over the names they read), in notebook order."""
    nb = json.loads((ROOT / "chapters" / f"{notebook}.ipynb").read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"][1:]  # after the setup cell
    body = [stmt for c in cells for stmt in ast.parse("".join(c["source"])).body]
    reads = lambda s: _names(s, ast.Load) - _names(s, ast.Store)  # noqa: E731 (not loop names)
    keep = set()
    for i in (i for i, s in enumerate(body) if _calls(s) & targets):
        keep.add(i)
        need = reads(body[i])
        for j in range(i - 1, -1, -1):
            s = body[j]
            made = _names(s, ast.Store) | {getattr(s, "name", None)} | {
                (a.asname or a.name).split(".")[0] for a in getattr(s, "names", [])
                if isinstance(s, (ast.Import, ast.ImportFrom))}
            if made & need:
                keep.add(j)
                need = (need - made) | reads(s)
    return "\n".join(ast.unparse(body[i]) for i in sorted(keep))


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_jobs_leave_what_the_chapter_asks_for(name, reproduced, monkeypatch):
    notebook, targets = CHAPTERS[name]
    code = chapter_statements(notebook, targets)
    assert _calls(ast.parse(code)) & targets == targets   # the slice holds every sweep
    folder, printed = reproduced
    assert f"{name} {[j.name for j in reproduce.jobs(name, 'cpu')]}" in printed
    assert list(folder.glob(f"{name}-*.pkl"))
    monkeypatch.setenv("NORMBOOK_CACHE", str(folder))
    book = chapter.Setup(device=device.pick_device(), scale=TINY)
    with executors.using(Refusing()):
        exec(compile(code, notebook, "exec"), {"book": book})


def test_the_slice_keeps_what_a_call_needs():
    code = chapter_statements("wn_relu_convergence", {"tuned_runs"})
    assert "a_star, k_star = experiments.best_scale(X)" in code
    assert "figures." not in code


def test_every_chapter_with_jobs_is_tested():
    assert set(reproduce.chapters()) == set(CHAPTERS)


@pytest.mark.parametrize("args, message", [
    (["intro"], "argument chapter: invalid choice: 'intro'"),
    (["wn", "--scale", "huge"], "argument --scale: invalid choice: 'huge'"),
    (["wn", "--executor", "dask://host"], "--executor dask://host: executor url must be"),
    (["wn", "--executor", "local:0"], "--executor local:0: executor url (local:N workers)"),
    (["wn", "--only", "nope"], "--only: no job named nope in wn"),
    (["wn", "--executor", "slurm", "--slurm-gpus", "two"], "slurm gpus"),
])
def test_bad_arguments_exit_with_a_message_not_a_traceback(args, message, capsys):
    with pytest.raises(SystemExit) as out:
        reproduce.main(args)
    assert out.value.code == 2 and message in capsys.readouterr().err


def test_the_command_lists_the_jobs():
    """The module runs as a command (one subprocess: importing torch there takes seconds)."""
    out = subprocess.run([sys.executable, "-m", "lib.reproduce", "autorate", "--scale",
                          "paper", "--list"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["autorate-gd-bn", "autorate-gd-plain", "autorate-wd"]
