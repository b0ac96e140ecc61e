"""Reference policies that need no training: the yardsticks learned policies are compared against.

A policy here is any callable ``obs [B, n, d] -> actions`` accepted by ``env.step``.
"""

from __future__ import annotations

import gymnasium as gym
import torch

from gdmpo.envs.base import NetworkedVecEnv


class ConstantPolicy:
    """Every agent always takes the same discrete action (e.g. one fixed OVM gain pair in CACC)."""

    def __init__(self, env: NetworkedVecEnv, action: int) -> None:
        if not isinstance(env.action_space, gym.spaces.Discrete) or not 0 <= action < env.action_space.n:
            raise ValueError(f"constant action {action} is not in the action space {env.action_space}")
        self.action, self.shape = action, (env.num_envs, env.num_agents)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.full(self.shape, self.action, dtype=torch.long, device=obs.device)


class RandomPolicy:
    """Uniformly random actions from each agent's action space, from a seeded generator."""

    def __init__(self, env: NetworkedVecEnv, seed: int = 0) -> None:
        self.space, self.shape = env.action_space, (env.num_envs, env.num_agents)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        if isinstance(self.space, gym.spaces.Discrete):
            return torch.randint(int(self.space.n), self.shape, generator=self.generator).to(obs.device)
        low = torch.as_tensor(self.space.low, dtype=obs.dtype)
        high = torch.as_tensor(self.space.high, dtype=obs.dtype)
        u = torch.rand(self.shape + tuple(self.space.shape), generator=self.generator, dtype=obs.dtype)
        return (low + u * (high - low)).to(obs.device)


def reference_policy(env: NetworkedVecEnv, name: str, seed: int = 0):
    """Build a reference policy from its name: ``random`` or ``constant:K``."""
    if name == "random":
        return RandomPolicy(env, seed)
    if name.startswith("constant:"):
        try:
            return ConstantPolicy(env, int(name.split(":", 1)[1]))
        except ValueError as err:
            raise ValueError(f"bad reference policy {name!r}: {err}") from None
    raise ValueError(f"unknown reference policy {name!r}; use 'random' or 'constant:K'")
