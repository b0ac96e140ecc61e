"""What every adapter reads the same way from a gdmpo environment: its agents' names and action masks."""

from __future__ import annotations

import gymnasium as gym
import torch

from gdmpo.envs.base import NetworkedVecEnv


def agent_names(env: NetworkedVecEnv) -> list[str]:
    """The agents in node order: the graph's ``names`` where it has them (a light's SUMO id), else ``agent_<i>``."""
    names = getattr(env.graph, "names", None)
    return [str(x) for x in names] if names is not None else [f"agent_{i}" for i in range(env.num_agents)]


def action_mask(env: NetworkedVecEnv) -> torch.Tensor:
    """``[n, K]`` bool: each agent's real actions of a discrete space (all of them where the environment
    declares no ``action_mask``, e.g. CACC's gains)."""
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise TypeError(f"action masks are for discrete actions, not {space!r}")
    mask = env.action_mask
    return torch.ones(env.num_agents, space.n, dtype=torch.bool) if mask is None else torch.as_tensor(mask, dtype=torch.bool)
