"""Executors, the reproduce command and the chapters' job lists refuse bad input by name."""

import torch
from hypothesis import strategies as st

from contracts import Case, parametrize
from lib import cache, executors, reproduce, sweep
from lib.autorate import jobs as autorate_jobs
from lib.bngd import jobs as bngd_jobs
from lib.train import TrainConfig
from lib.wn import jobs as wn_jobs

NOT_AN_EXECUTOR = st.sampled_from([object(), 3, "local:2", [len]])
CACHE_NAME_BAD = st.sampled_from(["", "a/b", "../x", "é", 3])
STRING_BAD = st.sampled_from([3, None, b"x", 1.5])
NOT_A_SCALE = st.sampled_from([None, "cpu", 3, {"name": "cpu"}])


class Inline:
    """The smallest executor: runs the task at once, returns a finished future."""

    def submit(self, fn, *args):
        from concurrent.futures import Future
        future = Future()
        future.set_result(fn(*args))
        return future


def twice(x):
    return 2 * x


def make(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 2))


def data():
    return torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1] * 3)


CASES = [
    Case(cache.save, lambda: dict(path=cache.cache_dir() / "contracts-save.pkl", result=1,
                                  name="t"),
         {"path": st.sampled_from([None, 3, 1.5, []]), "name": STRING_BAD}),
    Case(executors.check, lambda: dict(name="executor", executor=Inline()),
         {"name": STRING_BAD, "executor": NOT_AN_EXECUTOR}),
    Case(executors.using, lambda: dict(executor=None, bar=None),
         {"executor": NOT_AN_EXECUTOR, "bar": st.sampled_from([3, "bar", object()])}),
    Case(executors.run_chunks, lambda: dict(task=twice, args=[(1,)], keys=[{"x": 1}],
                                            cache_name=None, executor=Inline(), done=None),
         {"task": "callable", "args": st.sampled_from([None, "x", 3, (1,), [(1,), (2,)]]),
          "keys": st.sampled_from([None, "x", 3, [], [{}, {}]]), "cache_name": CACHE_NAME_BAD,
          "executor": NOT_AN_EXECUTOR, "done": st.sampled_from([3, "f", [1]])},
         names={"cache_name": "cache"}),
    Case(executors.from_url, lambda: dict(url=None, slurm=None),
         {"url": st.sampled_from([3, b"local", "local:0", "local:-1", "dask://", "dask://h:0",
                                  "dask://h:99999", "slurm:2", "thread", " "]),
          "slurm": st.sampled_from([3, "gpu", {"queue": "x"}, [("time", 5)]])}),
    Case(sweep.train_grid, lambda: dict(make_model=make, data=data(), config=TrainConfig(steps=1),
                                        grid=sweep.Grid(eta=[0.1]), bar=False, executor=None),
         {"executor": NOT_AN_EXECUTOR}),
    Case(sweep.map_grid, lambda: dict(fn=twice, grid=sweep.Grid(x=[1, 2]), bar=False,
                                      executor=None),
         {"executor": NOT_AN_EXECUTOR}),
    Case(reproduce.Job, lambda: dict(name="j", run=lambda: None),
         {"name": STRING_BAD, "run": "callable"}),
    Case(reproduce.jobs, lambda: dict(chapter="wn", scale_name="cpu"),
         {"chapter": st.sampled_from(["intro", "", "WN", 3, None]),
          "scale_name": st.sampled_from(["", "huge", "CPU ", 3, None])}),
    Case(reproduce.run, lambda: dict(chapter="wn", scale_name="cpu", executor=None, only=[],
                                     bar=False),
         {"chapter": st.sampled_from(["intro", 3, None]),
          "scale_name": st.sampled_from(["huge", 3, None]), "executor": NOT_AN_EXECUTOR,
          "only": st.sampled_from([["nope"], "wn-regimes", 3, [3]]), "bar": "bool"}),
    Case(autorate_jobs.jobs, lambda: dict(s=reproduce.scale.current("cpu")), {"s": NOT_A_SCALE}),
    Case(bngd_jobs.jobs, lambda: dict(s=reproduce.scale.current("cpu")), {"s": NOT_A_SCALE}),
    Case(wn_jobs.jobs, lambda: dict(s=reproduce.scale.current("cpu")), {"s": NOT_A_SCALE}),
]

EXEMPT = {
    cache.writable_cache_dir: "takes no arguments; NORMBOOK_CACHE is checked in it, by name",
    executors.active: "takes no arguments (reads the innermost executors.using block)",
    executors.ChunkFailed: "an exception raised by run_chunks, which writes its message",
    reproduce.chapters: "takes no arguments (lists the chapter packages with a jobs module)",
    reproduce.main: "the command line: argparse exits with status 2 and a message naming the "
                    "bad argument (tests/test_reproduce.py)",
}

test_bad_input_is_refused_by_name = parametrize(CASES)

