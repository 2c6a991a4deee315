"""Device choice and seeding: CUDA, then Apple MPS, then CPU."""

import os
import random

import numpy as np
import torch


def pick_device(verbose: bool = False) -> torch.device:
    """Return the best available device (CUDA, then MPS, then CPU).

    ``NORMBOOK_DEVICE`` (e.g. ``cpu``) overrides the choice. On CUDA the speed-ups that
    only help there (cuDNN autotuning) are switched on.
    """
    requested = os.environ.get("NORMBOOK_DEVICE")
    if requested:
        device = torch.device(requested)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if verbose:
        print(f"lib: running on {describe(device)}")
    return device


def describe(device: torch.device) -> str:
    """Human-readable name of a device, e.g. ``cuda (NVIDIA A100)`` or ``cpu (2 threads)``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def use_pinned_memory(device: torch.device) -> bool:
    """Pinned host memory speeds up host-to-GPU copies and only exists with CUDA."""
    return torch.device(device).type == "cuda"


def autocast(device: torch.device, enabled: bool = True):
    """Mixed-precision context on CUDA; a no-op context elsewhere."""
    device = torch.device(device)
    on = enabled and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=on)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator seeded the same way."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(int(seed))
