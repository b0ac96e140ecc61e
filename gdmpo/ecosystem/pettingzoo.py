"""PettingZoo's Parallel API over one copy of any gdmpo environment.

``parallel_env("atsc-grid5x5", seed=0, **options)`` is a :class:`pettingzoo.ParallelEnv` whose agents
are the graph's nodes (named by the graph's ``names`` where it has them, else ``agent_<i>``):

- every agent has the same spaces, so one shared network can serve all of them: its observation is a
  ``Dict`` of ``observation`` (gdmpo's padded per-agent vector) and, for discrete actions,
  ``action_mask`` (1 on the agent's real actions, e.g. a light's own phases), where TorchRL and RLlib
  look for it;
- an episode ends by truncation at the time limit, or termination where the environment has terminal
  states; the step that ends it returns that step's rewards and observations, and then ``agents`` is
  empty until :meth:`GdmpoParallelEnv.reset`;
- the communication graph is ``edge_index`` (``[2, E]``, node indices in ``possible_agents`` order)
  and ``neighbours`` (agent → its neighbours' names); ``state()`` is every agent's observation
  concatenated, the global view centralised critics use.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gdmpo.ecosystem.agents import action_mask, agent_names
from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.envs.registry import make

try:
    from pettingzoo import ParallelEnv
except ModuleNotFoundError as err:  # pragma: no cover - exercised only without the extra
    raise ModuleNotFoundError("gdmpo.ecosystem.pettingzoo needs PettingZoo: pip install 'gdmpo[pettingzoo]'") from err


def parallel_env(env_id: str, seed: int | None = None, **options: Any) -> "GdmpoParallelEnv":
    """One copy of the registered environment ``env_id`` (``options`` as for :func:`gdmpo.make`)."""
    return GdmpoParallelEnv(make(env_id, num_envs=1, seed=seed, **options), env_id)


class GdmpoParallelEnv(ParallelEnv):
    """A :class:`NetworkedVecEnv` with one copy, as a PettingZoo ``ParallelEnv`` (see the module docstring)."""

    def __init__(self, env: NetworkedVecEnv, name: str | None = None) -> None:
        if env.num_envs != 1:
            raise ValueError(f"a PettingZoo environment is one copy; got an environment of {env.num_envs}")
        self.env = env
        env.autoreset = False  # the episode's last step is delivered as it ended; reset() starts the next
        self.possible_agents = agent_names(env)
        if len(set(self.possible_agents)) != env.num_agents:
            raise ValueError(f"{name or type(env).__name__}: agent names are not unique")
        self.agents: list[str] = []
        self.metadata = {"name": name or type(env).__name__, "render_modes": [], "is_parallelizable": True}
        self.render_mode = None
        low, high = env.observation_space.low, env.observation_space.high
        entries: dict[str, gym.Space] = {"observation": gym.spaces.Box(low, high, dtype=np.float32)}
        self._mask = None
        if isinstance(env.action_space, gym.spaces.Discrete):
            self._mask = action_mask(env).to(torch.int8).numpy()
            entries["action_mask"] = gym.spaces.Box(0, 1, (env.action_space.n,), dtype=np.int8)
        self._observation_space = gym.spaces.Dict(entries)
        self._action_space = env.action_space
        self.observation_spaces = dict.fromkeys(self.possible_agents, self._observation_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, self._action_space)
        self.state_space = gym.spaces.Box(np.tile(low, env.num_agents), np.tile(high, env.num_agents), dtype=np.float32)
        self.edge_index = env.graph.edge_index.cpu().numpy()
        self.neighbours = {agent: [] for agent in self.possible_agents}
        for u, v in self.edge_index.T.tolist():
            self.neighbours[self.possible_agents[u]].append(self.possible_agents[v])
        self._obs: np.ndarray | None = None

    def observation_space(self, agent: str) -> gym.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gym.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs = self.env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._observations(obs), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError(f"{self.metadata['name']}: step() after the episode ended; call reset()")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"{self.metadata['name']}: no action for {', '.join(missing[:5])}"
                             + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        stacked = np.stack([np.asarray(actions[agent]) for agent in self.possible_agents])[None]
        if isinstance(self._action_space, gym.spaces.Box):
            stacked = stacked.astype(np.float32).reshape(1, len(self.possible_agents), *self._action_space.shape)
        obs, reward, terminated, truncated, _ = self.env.step(torch.as_tensor(stacked))
        rewards = dict(zip(self.possible_agents, reward[0].tolist()))
        ended_by_termination, ended_by_truncation = bool(terminated[0]), bool(truncated[0])
        terminations = dict.fromkeys(self.possible_agents, ended_by_termination)
        truncations = dict.fromkeys(self.possible_agents, ended_by_truncation and not ended_by_termination)
        observations = self._observations(obs)
        infos = {agent: {} for agent in self.possible_agents}
        if ended_by_termination or ended_by_truncation:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        if self._obs is None:
            raise RuntimeError(f"{self.metadata['name']}: state() before reset()")
        return self._obs.reshape(-1).copy()

    def close(self) -> None:
        self.env.close()

    def _observations(self, obs: torch.Tensor) -> dict[str, dict[str, np.ndarray]]:
        self._obs = obs[0].detach().cpu().numpy().astype(np.float32)
        out = {}
        for i, agent in enumerate(self.possible_agents):
            entry = {"observation": self._obs[i]}
            if self._mask is not None:
                entry["action_mask"] = self._mask[i]
            out[agent] = entry
        return out
