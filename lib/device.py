"""Device choice and seeding: CUDA, then Apple MPS, then CPU."""

import ctypes
import functools
import os
import random

import numpy as np
import torch

from lib import checks

ENV_VAR = "NORMBOOK_DEVICE"
# Training steps between two returns of freed host memory to the system (see
# release_host_memory); the training loop does it on the CPU.
TRIM_EVERY = 25


def _available() -> list[str]:
    """Device types that exist on this machine, best first."""
    mps = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    return ["cuda"] * torch.cuda.is_available() + ["mps"] * bool(mps) + ["cpu"]


def pick_device(verbose: bool = False) -> torch.device:
    """Return the best available device (CUDA, then MPS, then CPU).

    ``NORMBOOK_DEVICE`` (e.g. ``cpu``) overrides the choice; a device this machine lacks
    is a ValueError naming the variable and the devices available. On CUDA the speed-ups
    that only help there (cuDNN autotuning) are switched on.
    """
    verbose = checks.boolean("verbose", verbose)
    requested = os.environ.get(ENV_VAR)
    if requested:
        try:
            device = checks.device(ENV_VAR, requested.strip())
        except ValueError as err:
            raise ValueError(f"{err}; available here: {', '.join(_available())}") from None
    else:
        device = torch.device(_available()[0])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if verbose:
        print(f"lib: running on {describe(device)}")
    return device


def resolve_device(device=None, name: str = "device") -> torch.device:
    """The device a ``device=`` argument asks for: None means :func:`pick_device`.

    ``name`` is the argument's name, used in the error for a device that does not exist.
    """
    name = checks.string("name", name)
    return pick_device() if device is None else checks.device(name, device)


def describe(device: torch.device) -> str:
    """Human-readable name of a device, e.g. ``cuda (NVIDIA A100)`` or ``cpu (2 threads)``."""
    device = checks.device("device", device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def use_pinned_memory(device: torch.device) -> bool:
    """Pinned host memory speeds up host-to-GPU copies and only exists with CUDA."""
    return checks.device("device", device).type == "cuda"


def autocast(device: torch.device, enabled: bool = True):
    """Mixed-precision context on CUDA; a no-op context elsewhere."""
    device = checks.device("device", device)
    on = checks.boolean("enabled", enabled) and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=on)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator seeded the same way.

    ``seed`` is an integer in [0, 2**63 − 1] (Python or NumPy; no floats or strings).
    """
    seed = checks.seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):   # not glibc: macOS, musl, Windows
        return None


def release_host_memory() -> bool:
    """Give the pages of freed heap memory back to the system; True where that is possible.

    With glibc (Linux), PyTorch's CPU temporaries of a few MB come from the heap once
    glibc has raised its mmap threshold, and small allocations that outlive a step keep
    the freed pages between them resident. A batched 300-step sweep of the auto
    rate-tuning chapter (21 networks) grew to 1.1 GB resident while about 0.4 GB was in
    use; calling this every TRIM_EVERY steps (as the training loop does) held it at 0.44 GB
    for about 1 % of the time. Forcing every such temporary through mmap instead
    (``mallopt(M_MMAP_THRESHOLD)``) also held the memory down but tripled the time.
    Elsewhere (no glibc) it does nothing and returns False.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
