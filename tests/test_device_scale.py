import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lib import device, scale


def test_pick_device_falls_back_to_cpu_here(monkeypatch):
    monkeypatch.delenv("NORMBOOK_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.pick_device().type == "cpu"


def test_pick_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("NORMBOOK_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert device.pick_device().type == "cuda"
    assert torch.backends.cudnn.benchmark  # CUDA-only speed-up switched on with CUDA
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device.pick_device().type == "mps"


def test_device_override_and_report(monkeypatch, capsys):
    monkeypatch.setenv("NORMBOOK_DEVICE", "cpu")
    assert device.pick_device(verbose=True).type == "cpu"
    assert "cpu (" in capsys.readouterr().out


def test_cuda_only_speedups_are_off_on_cpu():
    cpu = torch.device("cpu")
    assert not device.use_pinned_memory(cpu)
    x = torch.randn(4, 4)
    with device.autocast(cpu):
        assert (x @ x).dtype == torch.float32  # no mixed precision on CPU


def test_seed_everything_reproduces_all_three_generators():
    import random
    draws = []
    for _ in range(2):
        g = device.seed_everything(123)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item(),
                      torch.rand(1, generator=g).item()))
    assert draws[0] == draws[1]


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (2**63, ValueError), (1.5, TypeError),
                                       (3.0, TypeError), ("3", TypeError), (True, TypeError)])
def test_seed_rejects_bad_values(bad, error):
    with pytest.raises(error, match="^seed must be an integer in"):
        device.seed_everything(bad)


def test_numpy_seeds_reach_torch_as_python_ints():
    g = device.seed_everything(np.int64(5))
    assert g.initial_seed() == 5 and torch.initial_seed() == 5


def test_scale_default_and_override(monkeypatch):
    monkeypatch.delenv(scale.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert scale.current().name == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert scale.current().name == "gpu"
    monkeypatch.setenv(scale.ENV_VAR, "paper")
    assert scale.current().name == "paper"
    assert scale.current("cpu").name == "cpu"  # an explicit name beats the variable


def test_scales_grow_from_cpu_to_paper():
    cpu, gpu, paper = (scale.SCALES[k] for k in ("cpu", "gpu", "paper"))
    for f in ("n_train", "epochs", "steps", "width", "grid", "seeds", "slider_grid"):
        assert getattr(cpu, f) <= getattr(gpu, f) <= getattr(paper, f), f


def test_unknown_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(scale.ENV_VAR, "huge")
    with pytest.raises(ValueError, match="^NORMBOOK_SCALE must be one of 'cpu', 'gpu', 'paper'"):
        scale.current()
    with pytest.raises(ValueError, match="^name must be one of"):
        scale.current("huge")


TRIM_PROBE = """
import torch
from lib import device
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
x = torch.empty(8 << 20, dtype=torch.uint8); x.fill_(1); del x  # glibc raises its mmap threshold
big, small = [], []
for i in range(150):  # 300 MB of 2 MB blocks, each followed by a small block that stays
    t = torch.empty(2 << 20, dtype=torch.uint8); t.fill_(1); big.append(t)
    small.append(torch.ones(16))
del big
before = rss(); ok = device.release_host_memory(); after = rss()
print(ok, before, after)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists() or not device._malloc_trim(),
                    reason="needs Linux with glibc")
def test_release_host_memory_returns_freed_pages_to_the_system():
    """300 MB freed between small live blocks stay resident until released (glibc keeps
    them in the heap); releasing gives back at least half of them."""
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, check=True).stdout.split()
    ok, before, after = out[0] == "True", int(out[1]), int(out[2])   # kB
    assert ok and before - after > 150 * 1024, (before, after)


def test_release_host_memory_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(device, "_malloc_trim", lambda: None)
    assert device.release_host_memory() is False


def test_the_training_loop_releases_host_memory_every_few_steps_on_cpu(monkeypatch):
    from lib.train import TrainConfig, train
    calls = []
    monkeypatch.setattr(device, "release_host_memory", lambda: calls.append(1) or True)
    X, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    steps = 3 * device.TRIM_EVERY + 1
    train(model, (X, y), TrainConfig(steps=steps, eta=0.1))
    assert len(calls) == steps // device.TRIM_EVERY


def test_a_kernel_records_its_peak_memory_for_the_build(tmp_path, monkeypatch):
    """lib.chapter.setup registers the record when NORMBOOK_MEMORY_LOG names a folder."""
    import json

    from lib import chapter
    registered = []
    monkeypatch.setattr(chapter.atexit, "register", lambda f, *a: registered.append((f, a)))
    monkeypatch.setattr(chapter.torch, "set_num_threads", lambda n: None)  # keep the suite's
    monkeypatch.delenv(chapter.MEMORY_LOG, raising=False)
    chapter.setup("cpu", verbose=False)
    assert registered == []
    monkeypatch.setenv(chapter.MEMORY_LOG, str(tmp_path / "memory"))
    chapter.setup("cpu", verbose=False)
    (f, args), = registered
    f(*args)
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "memory").glob("*.json")]
    peak = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM:")) / 1024
    assert abs(record["peak_mb"] - peak) < 64 and record["peak_mb"] > 50
    assert record["page"].startswith(Path.cwd().name + "-")
