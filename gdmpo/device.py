"""Where a run's networks, buffers and torch environments live: ``device: cpu | cuda | cuda:N | auto``.

SUMO always simulates on the CPU; its observations are moved to the run's device. A GPU pays for
DMPO's many model rollouts and PPO updates (5.5x per Catch-up iteration on an H200, see
``benchmarks/results/dmpo-iteration``) more than for small per-step work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a device is resolved: reading a config stays light
    import torch

DEVICE_CHOICES = "'cpu', 'cuda', 'cuda:N' or 'auto'"


def check_device_name(name: str) -> str | None:
    """None when ``name`` is a device setting torch understands (or ``auto``), else why not."""
    if name == "auto":
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        return f"device must be {DEVICE_CHOICES}, got {name!r}"
    if device.type not in ("cpu", "cuda"):
        return f"device must be {DEVICE_CHOICES}, got {name!r}"
    return None


def resolve_device(name: str, *, fallback: bool = False) -> torch.device:
    """The device a setting means on this machine.

    ``auto`` is the first GPU when torch sees one, else the CPU. A GPU asked for by name but absent is
    an error, unless ``fallback`` (playing a checkpoint trained on another machine): then the CPU.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        index = device.index or 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            if fallback:
                return torch.device("cpu")
            raise ValueError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA device(s) here; "
                             "set device: cpu or auto")
    return device
