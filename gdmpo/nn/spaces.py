"""How networks read one agent's action space: discrete (one index) or a bounded vector."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch


@dataclass(frozen=True)
class ActionLayout:
    """``dim`` actions (Discrete) or action dimensions (Box) and, for Box, the bounds' centre and half range."""

    discrete: bool
    dim: int
    centre: torch.Tensor | None = None
    half_range: torch.Tensor | None = None


def action_layout(space: gym.spaces.Space) -> ActionLayout:
    """Describe ``space``; only Discrete and finite one-dimensional Box spaces are supported."""
    if isinstance(space, gym.spaces.Discrete):
        return ActionLayout(True, int(space.n))
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        low = torch.as_tensor(space.low, dtype=torch.float32)
        high = torch.as_tensor(space.high, dtype=torch.float32)
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError(f"continuous actions need finite bounds, got {space}")
        return ActionLayout(False, int(space.shape[0]), (high + low) / 2, (high - low) / 2)
    raise ValueError(f"unsupported action space {space}")
