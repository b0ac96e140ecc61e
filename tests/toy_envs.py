"""Tiny environments for testing the shared machinery without a real simulator."""

import gymnasium as gym
import numpy as np
import torch

from gdmpo.envs import NetworkedVecEnv
from gdmpo.graph import ring


class Drift(NetworkedVecEnv):
    """Each agent's state moves by its action; reward = new state; time limit ``horizon``.

    With ``terminate_above`` an episode terminates once any state exceeds it.
    """

    def __init__(self, num_envs=2, seed=0, horizon=3, terminate_above=None):
        super().__init__(num_envs, seed)
        self.num_agents, self.max_episode_steps, self.graph = 3, horizon, ring(3)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,))
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,))
        self.terminate_above = terminate_above
        self.state = torch.zeros(num_envs, 3, 1)
        self.t = torch.zeros(num_envs, dtype=torch.long)

    def _reset_envs(self, mask):
        self.state[mask] = torch.rand(int(mask.sum()), 3, 1, generator=self._generator)
        self.t[mask] = 0
        return self.state.clone()

    def _step(self, actions):
        self.state = self.state + actions
        self.t += 1
        if self.terminate_above is None:
            terminated = torch.zeros(self.num_envs, dtype=torch.bool)
        else:
            terminated = (self.state > self.terminate_above).flatten(1).any(1)
        truncated = (self.t >= self.max_episode_steps) & ~terminated
        return self.state.clone(), self.state[..., 0].clone(), terminated, truncated


class Sleeper:
    """A stand-in simulation for worker tests: ``nap(s)`` answers after ``s`` seconds."""

    def nap(self, seconds: float) -> float:
        import time

        time.sleep(seconds)
        return seconds
