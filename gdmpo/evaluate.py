"""Run a policy for whole episodes and summarise team returns."""

from __future__ import annotations

import math
from typing import Callable

import torch

from gdmpo.envs.base import NetworkedVecEnv

Policy = Callable[[torch.Tensor], torch.Tensor]


def run_episodes(env: NetworkedVecEnv, policy: Policy, episodes: int, seed: int | None = None) -> dict:
    """Play ``policy`` until ``episodes`` episodes have finished across the env's copies.

    Returns a summary with the team return of each episode (``returns``), their ``mean_return`` and
    ``std_return`` (population std), the per-step mean (team return / episode length), and the
    per-agent returns ``[episodes, n]``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    obs = env.reset(seed=seed)
    returns: list[float] = []
    lengths: list[int] = []
    agent_returns: list[torch.Tensor] = []
    with torch.no_grad():
        while len(returns) < episodes:
            obs, _, _, _, info = env.step(policy(obs))
            done = info["done"]
            if bool(done.any()):
                returns += info["episode_return"][done].tolist()
                lengths += info["episode_length"][done].tolist()
                agent_returns.append(info["episode_agent_return"][done].cpu())
    returns, lengths = returns[:episodes], lengths[:episodes]
    mean = sum(returns) / episodes
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / episodes)
    return {
        "episodes": episodes,
        "mean_return": mean,
        "std_return": std,
        "mean_step_return": sum(r / n for r, n in zip(returns, lengths)) / episodes,
        "returns": returns,
        "agent_returns": torch.cat(agent_returns)[:episodes].tolist(),
    }
