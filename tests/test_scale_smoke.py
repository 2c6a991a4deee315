"""The smoke form of a scale (issue 18): the scale's shapes and configuration, its counts
cut; never cut without the marker; results kept out of the book's cache."""

import dataclasses
import os
import sys
from pathlib import Path

import pytest

from lib import cache, chapter, scale
from lib.explr import comparisons
from lib.wn import experiments as wn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools import smoke as smoke_tool  # noqa: E402

COUNTS = ("n_train", "n_test", "epochs", "steps", "grid", "seeds", "slider_grid")
SHAPES = ("name", "width")
# the counts of a smoke run, written out here rather than read from lib.scale.SMOKE_COUNTS
SMOKE = dict(n_train=400, n_test=200, epochs=1, steps=50, grid=4, seeds=1, slider_grid=2)


@pytest.mark.parametrize("name", sorted(scale.SCALES))
def test_smoke_keeps_the_shapes_and_cuts_the_counts(name, monkeypatch):
    base = scale.SCALES[name]
    monkeypatch.setenv(scale.ENV_VAR, f"{name}:smoke")
    cut = scale.current()
    assert cut.smoke and not base.smoke and cut.label == f"{name}:smoke"
    for field in SHAPES:
        assert getattr(cut, field) == getattr(base, field), field
    for field in COUNTS:
        assert getattr(cut, field) == min(getattr(base, field), SMOKE[field]), field
    assert "SMOKE RUN" in cut.description
    assert scale.current(f" {name.upper()} : Smoke ") == cut   # case and spaces ignored


def test_gpu_smoke_is_smaller_in_every_count_and_runs_far_fewer_steps():
    gpu, cut = scale.SCALES["gpu"], scale.current("gpu:smoke")
    assert all(getattr(cut, f) < getattr(gpu, f) for f in COUNTS)
    # what a chapter trains scales with data x steps x seeds: 60 000 x 3 000 x 5 at gpu
    work = lambda s: s.n_train * s.steps * s.seeds   # noqa: E731
    assert work(cut) * 10_000 < work(gpu)


@pytest.mark.parametrize("value", ["gpu:fast", "gpu:", ":smoke", "huge:smoke",
                                   "gpu:smoke:smoke", "smoke", "gpu-smoke"])
def test_a_bad_value_names_the_variable(value, monkeypatch):
    monkeypatch.setenv(scale.ENV_VAR, value)
    with pytest.raises(ValueError, match=f"^{scale.ENV_VAR} must be one of 'cpu', 'gpu', "
                                         f"'paper'"):
        scale.current()
    with pytest.raises(ValueError, match="^name must be one of"):
        scale.current(value)


@pytest.mark.parametrize("name", sorted(scale.SCALES))
def test_the_cut_never_applies_without_the_marker(name, monkeypatch):
    monkeypatch.setenv(scale.ENV_VAR, name)
    for s in (scale.current(), scale.current(name), scale.SCALES[name]):
        assert s == scale.SCALES[name] and not s.smoke and s.label == name
        assert [s.cut(v, m) for v, m in ((5, 2), (1, 3), (60_000, 400))] == [5, 1, 60_000]
    smoke = scale.current(f"{name}:smoke")
    assert [smoke.cut(v, m) for v, m in ((5, 2), (1, 3), (60_000, 400))] == [2, 1, 400]
    assert comparisons.schedule_setup(scale.SCALES[name]) is comparisons.SCHEDULE_SETUPS[name]
    assert wn.sizes(scale.SCALES[name]).mc_samples == 2_000 * scale.SCALES[name].width


@pytest.mark.parametrize("name", ["gpu", "paper"])
def test_per_scale_tables_keep_the_configuration_and_cut_the_counts(name):
    full, cut = comparisons.SCHEDULE_SETUPS[name], comparisons.schedule_setup(
        scale.current(f"{name}:smoke"))
    counts = {"n_train", "n_test", "epochs", "milestones", "seeds"}
    for field in dataclasses.fields(full):
        if field.name not in counts:   # network, data set, batch, η, λ, γ, augmentation
            assert getattr(cut, field.name) == getattr(full, field.name), field.name
    assert cut.dataset == "cifar10" and cut.blocks == 5   # PreResNet-32 on CIFAR-10
    assert cut.n_train == cut.n_test == full.batch_size and cut.seeds == (0,)   # one batch
    assert cut.epochs == 3 and cut.milestones == (1, 2)   # every phase of step decay
    sizes, smoke_sizes = wn.sizes(scale.SCALES[name]), wn.sizes(scale.current(f"{name}:smoke"))
    for field in ("n", "d", "width", "widths", "kernel_widths", "alphas"):
        assert getattr(smoke_sizes, field) == getattr(sizes, field), field
    assert smoke_sizes.mc_samples == 2_000 < sizes.mc_samples
    assert smoke_sizes.steps == 50 and smoke_sizes.seeds == 1 and len(smoke_sizes.etas) == 2


def test_a_smoke_chapter_says_so_and_keeps_out_of_the_books_cache(monkeypatch, capsys):
    book = (ROOT / "data" / "cache").resolve()
    threads = []
    monkeypatch.setattr(chapter.torch, "set_num_threads", threads.append)
    for preset in (None, str(book)):   # unset, or set to the book's own cache
        if preset is None:
            monkeypatch.delenv(cache.ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(cache.ENV_VAR, preset)
        setup = chapter.setup("gpu:smoke")
        assert setup.scale.smoke and setup.scale.name == "gpu"
        used = cache.cache_dir().resolve()
        assert used != book and book not in used.parents and ROOT not in used.parents
        assert os.environ[cache.ENV_VAR] == str(chapter.SMOKE_CACHE)
        out = capsys.readouterr().out
        assert "SMOKE RUN" in out and "smoke run, not checked" in out and str(used) in out
    monkeypatch.setenv(cache.ENV_VAR, "/tmp/elsewhere")   # another folder is kept
    chapter.setup("gpu:smoke", verbose=False)
    assert os.environ[cache.ENV_VAR] == "/tmp/elsewhere"
    monkeypatch.delenv(cache.ENV_VAR)                      # no smoke: nothing is moved
    out = chapter.setup("gpu", verbose=True)
    assert cache.ENV_VAR not in os.environ and not out.scale.smoke
    assert threads == [1, 1, 1]   # one thread in each smoke run on this CPU, none at gpu
    assert "SMOKE" not in capsys.readouterr().out


def test_the_smoke_tool_runs_only_smoke_scales_with_a_cache_of_its_own(tmp_path):
    env = smoke_tool.smoke_env("gpu:smoke", tmp_path)
    assert env["NORMBOOK_SCALE"] == "gpu:smoke" and env["NORMBOOK_CACHE"] == str(tmp_path)
    assert env["NORMBOOK_BUILD"] == "1" and "NORMBOOK_MEMORY_LOG" not in env
    for bad in ("gpu", "paper", "cpu"):
        with pytest.raises(ValueError, match="^label must name a smoke scale"):
            smoke_tool.smoke_env(bad, tmp_path)
    with pytest.raises(ValueError, match="^name must be one of"):
        smoke_tool.smoke_env("gpu:fast", tmp_path)
    assert [p.stem for p in smoke_tool.pages()] == [
        "intro", "auto_rate_tuning", "bngd_least_squares", "exponential_lr",
        "wn_relu_convergence"]


def test_offline_means_no_download_and_says_why(monkeypatch, tmp_path):
    from lib import data
    tried = []
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *a, **k: tried.append(a))
    monkeypatch.setenv("NORMBOOK_DATA", str(tmp_path))
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "repo-data")   # nothing on disk
    monkeypatch.setenv(data.OFFLINE_VAR, "1")
    with pytest.raises(data.DatasetNotFoundError, match="NORMBOOK_OFFLINE=1, so no download"):
        data.cifar10("test", n=10)
    assert tried == [] and not (tmp_path / "repo-data").exists()


def test_a_smoke_run_cuts_a_sliders_site_grid_to_two_points(monkeypatch):
    """Slider grids the chapters fix themselves (grid=7, ...) are cut too in a smoke run:
    the site frames are the product of the sliders' grids."""
    from lib.sliders import Slider

    s = Slider("eta", "η", 0.01, 10.0, default=0.1, log=True, grid=7)
    monkeypatch.setenv(scale.ENV_VAR, "gpu")
    assert s.grid_size == 7
    monkeypatch.setenv(scale.ENV_VAR, "gpu:smoke")
    assert s.grid_size == 2
    assert len(s.grid_values()) <= 3        # the two ends, and the default if off them
    assert Slider("a", "a", 0.0, 1.0, default=0.5).grid_size == scale.SMOKE_COUNTS["slider_grid"]


def test_reproduce_refuses_a_smoke_scale(monkeypatch, capsys):
    """A smoke scale's cut counts must never fill the results cache as if they were gpu's."""
    from lib import reproduce

    monkeypatch.setenv(scale.ENV_VAR, "gpu:smoke")
    with pytest.raises(SystemExit) as stop:
        reproduce.main(["wn", "--list"])
    assert stop.value.code == 2
    assert "gpu:smoke" in capsys.readouterr().err
