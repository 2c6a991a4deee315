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
