"""A batched TorchRL environment over ``B`` copies of any gdmpo environment (one agent group).

``batched_env("cacc-catchup", num_envs=32, seed=0)`` is a TorchRL ``EnvBase`` with ``batch_size=[B]``,
stepping all copies in one call as VMAS does, so BenchMARL and TorchRL's collectors keep gdmpo's
batching instead of stepping copies one by one. Keys (``A``: the agents' group, ``"agents"``):

- ``(A, "observation") [B, n, d]``; for discrete actions ``(A, "action_mask") [B, n, K]`` (bool, the
  agent's real actions) and an action spec that carries the same mask, so random actions are valid;
- ``(A, "action")``: ``[B, n]`` indices, or ``[B, n, a]`` continuous values;
- ``(A, "reward") [B, n, 1]``; ``(A, "done" | "terminated" | "truncated") [B, n, 1]`` and the same
  without the group, ``[B, 1]``, for the copy (every agent of a copy ends together);
- partial resets: a ``"_reset"`` mask (``[B, 1]``, or per agent under the group) resets those copies only
  (gdmpo's own auto-reset is switched off; TorchRL decides when a copy restarts).

The communication graph is ``edge_index`` (``[2, E]``, one copy's node indices).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from gdmpo.ecosystem.agents import action_mask, agent_names
from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.envs.registry import make

try:
    from tensordict import TensorDict, TensorDictBase
    from torchrl.data import Bounded, Categorical, Composite, Unbounded
    from torchrl.envs import EnvBase
except ModuleNotFoundError as err:  # pragma: no cover - exercised only without the extra
    raise ModuleNotFoundError("gdmpo.ecosystem.torchrl needs TorchRL: pip install 'gdmpo[torchrl]'") from err

GROUP = "agents"
DONE_KEYS = ("done", "terminated", "truncated")


def batched_env(env_id: str, num_envs: int = 1, seed: int | None = None, **options: Any) -> "GdmpoTorchRLEnv":
    """``num_envs`` copies of the registered environment ``env_id`` (``options`` as for :func:`gdmpo.make`)."""
    return GdmpoTorchRLEnv(make(env_id, num_envs=num_envs, seed=seed, **options))


class GdmpoTorchRLEnv(EnvBase):
    """A :class:`NetworkedVecEnv` as a batched TorchRL environment (see the module docstring)."""

    def __init__(self, env: NetworkedVecEnv) -> None:
        super().__init__(device=env.device, batch_size=torch.Size([env.num_envs]))
        self.env = env
        env.autoreset = False
        b, n = env.num_envs, env.num_agents
        self.n_agents = n
        self.edge_index = env.graph.edge_index
        #: TorchRL's and BenchMARL's group map: one group of every agent (names as the graph gives them)
        self.group_map = {GROUP: agent_names(env)}
        observations = {"observation": Unbounded(shape=(b, n, env.obs_dim), dtype=torch.float32, device=self.device)}
        space = env.action_space
        if isinstance(space, gym.spaces.Discrete):
            self._mask = action_mask(env).to(self.device).expand(b, n, space.n)
            observations["action_mask"] = Categorical(2, shape=(b, n, space.n), dtype=torch.bool, device=self.device)
            action = Categorical(space.n, shape=(b, n), device=self.device, mask=self._mask.clone())
        elif isinstance(space, gym.spaces.Box):
            self._mask = None
            shape = (b, n, *space.shape)
            low, high = (torch.as_tensor(bound, dtype=torch.float32).expand(shape) for bound in (space.low, space.high))
            action = Bounded(low.clone(), high.clone(), shape=shape, dtype=torch.float32, device=self.device)
        else:
            raise TypeError(f"unsupported action space {space!r}")
        self.observation_spec = Composite({GROUP: Composite(observations, shape=(b, n))}, shape=(b,))
        self.action_spec = Composite({GROUP: Composite({"action": action}, shape=(b, n))}, shape=(b,))
        self.reward_spec = Composite({GROUP: Composite({"reward": Unbounded(shape=(b, n, 1), device=self.device)},
                                                       shape=(b, n))}, shape=(b,))
        flag = {key: Categorical(2, shape=(b, n, 1), dtype=torch.bool, device=self.device) for key in DONE_KEYS}
        copy_flag = {key: Categorical(2, shape=(b, 1), dtype=torch.bool, device=self.device) for key in DONE_KEYS}
        self.done_spec = Composite({**copy_flag, GROUP: Composite(flag, shape=(b, n))}, shape=(b,))
        self._seed: int | None = None
        self._started = False

    def _set_seed(self, seed: int | None) -> None:
        self._seed = seed  # the next full reset re-seeds gdmpo's generator

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        mask = self._reset_mask(tensordict)
        if mask is None or not self._started:
            obs = self.env.reset(seed=self._seed)
            self._seed, self._started = None, True
            mask = torch.ones(self.batch_size[0], dtype=torch.bool, device=self.device)
        else:
            obs = self.env.reset_copies(mask)
        done = torch.zeros(self.batch_size[0], dtype=torch.bool, device=self.device)
        return self._output(obs, done, done, done)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get((GROUP, "action"))
        obs, reward, terminated, truncated, _ = self.env.step(action)
        out = self._output(obs, terminated, truncated, terminated | truncated)
        out.set((GROUP, "reward"), reward.to(torch.float32).unsqueeze(-1))
        return out

    def _output(self, obs: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
                done: torch.Tensor) -> TensorDictBase:
        b, n = self.batch_size[0], self.n_agents
        group = {"observation": obs.to(torch.float32)}
        if self._mask is not None:
            group["action_mask"] = self._mask.clone()
        flags = {"done": done, "terminated": terminated, "truncated": truncated & ~terminated}
        for key, value in flags.items():
            group[key] = value[:, None, None].expand(b, n, 1).clone()
        out = TensorDict({GROUP: TensorDict(group, batch_size=(b, n))}, batch_size=(b,), device=self.device)
        for key, value in flags.items():
            out.set(key, value[:, None].clone())
        return out

    def _reset_mask(self, tensordict: TensorDictBase | None) -> torch.Tensor | None:
        """``[B]`` copies to reset from a ``"_reset"`` entry (per copy or per agent); None: all of them."""
        if tensordict is None:
            return None
        masks = [tensordict.get(key).reshape(self.batch_size[0], -1).any(-1)
                 for key in ("_reset", (GROUP, "_reset")) if key in tensordict.keys(include_nested=True)]
        if not masks:
            return None
        return torch.stack(masks).any(0)

    def close(self, *, raise_if_closed: bool = True) -> None:
        self.env.close()
        super().close(raise_if_closed=raise_if_closed)
