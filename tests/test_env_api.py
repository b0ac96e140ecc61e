"""The shared vector API: continuous-action checks and auto-reset bookkeeping on a tiny env."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from gdmpo.envs import ActionError, NetworkedVecEnv
from gdmpo.graph import ring


class Drift(NetworkedVecEnv):
    """Each agent's state moves by its action; episodes last ``horizon`` steps; reward = state."""

    def __init__(self, num_envs=2, seed=0, horizon=3):
        super().__init__(num_envs, seed)
        self.num_agents, self.max_episode_steps, self.graph = 3, horizon, ring(3)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,))
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,))
        self.state = torch.zeros(num_envs, 3, 1)
        self.t = torch.zeros(num_envs, dtype=torch.long)

    def _reset_envs(self, mask):
        self.state[mask] = torch.rand(int(mask.sum()), 3, 1, generator=self._generator)
        self.t[mask] = 0
        return self.state.clone()

    def _step(self, actions):
        self.state = self.state + actions
        self.t += 1
        truncated = self.t >= self.max_episode_steps
        return self.state.clone(), self.state[..., 0].clone(), torch.zeros_like(truncated), truncated


def test_box_actions_checked():
    env = Drift()
    env.reset()
    env.step(torch.zeros(2, 3))  # [B, n] accepted for 1-d actions
    with pytest.raises(ActionError, match="NaN"):
        env.step(torch.full((2, 3, 1), float("nan")))
    with pytest.raises(ActionError, match="floating-point"):
        env.step(torch.zeros(2, 3, 1, dtype=torch.long))
    with pytest.raises(ActionError, match="\\[2, 3, 1\\]"):
        env.step(torch.zeros(2, 4, 1))


def test_auto_reset_reports_final_obs_and_returns():
    env = Drift(horizon=3)
    start = env.reset(seed=5)
    ones = torch.ones(2, 3, 1)
    rewards = []
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(ones)
        rewards.append(reward)
    assert bool(truncated.all()) and bool(info["done"].all())
    assert torch.allclose(info["final_obs"], start + 3)
    per_agent = torch.stack(rewards).sum(0)
    assert torch.allclose(info["episode_agent_return"], per_agent)
    assert torch.allclose(info["episode_return"], per_agent.sum(1))
    assert not torch.allclose(obs, info["final_obs"])  # the returned obs starts the next episode
    obs, reward, *_ , info = env.step(ones)
    assert info["episode_length"].tolist() == [1, 1] and info["episode_return"].isnan().all()


def test_context_manager_closes():
    closed = []

    class Closing(Drift):
        def close(self):
            closed.append(True)

    with Closing() as env:
        env.reset()
    assert closed == [True]
