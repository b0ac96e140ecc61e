"""The one vectorised interface every gdmpo environment implements.

A :class:`NetworkedVecEnv` runs ``B`` independent copies of a networked MDP with ``n`` agents on a
fixed communication graph and steps them together:

- ``reset(seed=None) -> obs`` with ``obs: [B, n, obs_dim]``;
- ``step(actions) -> (obs, reward, terminated, truncated, info)`` with ``reward: [B, n]`` (per
  agent) and ``terminated``/``truncated``: ``[B]``. Finished copies reset automatically: the
  returned ``obs`` is already the first observation of the next episode, and ``info`` carries what
  the finished episode ended with (see :meth:`NetworkedVecEnv.step`). This is Gymnasium's
  same-step autoreset, declared in ``metadata["autoreset_mode"]``; ``env.autoreset = False`` turns it
  off for wrappers that reset copies themselves (:meth:`NetworkedVecEnv.reset_copies`).

Subclasses implement three hooks, :meth:`_reset_envs`, :meth:`_step` and (optionally)
:meth:`close`; action checking, episode bookkeeping and auto-reset live here once.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch_geometric.data import Data

if TYPE_CHECKING:
    from gdmpo.graph.signals import SignalStructure

Info = dict[str, torch.Tensor]
StepResult = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Info]


class ActionError(ValueError):
    """Actions passed to ``step`` do not match the environment's action space."""


def action_layout(space: gym.spaces.Space) -> dict[str, Any]:
    """One agent's action space as plain data: ``{"kind": "discrete", "n": K}`` or ``{"kind": "continuous",
    "shape": [...], "low": [...], "high": [...]}`` (bounds flattened)."""
    if isinstance(space, gym.spaces.Discrete):
        return {"kind": "discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {"kind": "continuous", "shape": list(space.shape), "low": space.low.ravel().tolist(),
                "high": space.high.ravel().tolist()}
    raise TypeError(f"agents act in a Discrete or a Box space, got {space!r}")


class NetworkedVecEnv(ABC):
    """``B`` copies of an ``n``-agent networked environment, stepped as one batch of tensors.

    Attributes:
        num_envs: B, the number of copies.
        num_agents: n, the number of agents of each copy.
        graph: the communication graph (``Data`` with ``edge_index``, ``num_nodes = n``).
        observation_space: gymnasium space of ONE agent's observation, shape ``(obs_dim,)``.
        action_space: gymnasium space of ONE agent's action.
        max_episode_steps: time limit after which an episode is truncated.
        has_terminal_states: whether episodes can end before the time limit (a learned dynamics
            model then also predicts termination).
    """

    num_envs: int
    num_agents: int
    graph: Data
    observation_space: gym.spaces.Box
    action_space: gym.spaces.Space
    max_episode_steps: int
    has_terminal_states: bool = True
    #: per-episode figures beside the return (e.g. traffic delay) that :meth:`episode_figures` gives
    episode_figure_names: tuple[str, ...] = ()
    #: finished copies start their next episode within the step that ended theirs (Gymnasium's SAME_STEP);
    #: False: they stay finished until :meth:`reset_copies`, and stepping them before is an error
    autoreset: bool = True
    #: what agents may read beyond the two spaces, None where an environment has no such thing (every
    #: consumer reads these attributes; none probes for them): ``[n, K]`` bool of each agent's real
    #: actions of a padded discrete space (a light's own phases)
    action_mask: torch.Tensor | None = None
    #: traffic signals: features per lane row of an observation, and the lanes-and-phases layout that
    #: movement networks read (:class:`gdmpo.graph.signals.SignalStructure`)
    lane_features: int | None = None
    signal_structure: SignalStructure | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """Gymnasium's declarations: ``autoreset_mode`` (``SAME_STEP``, or ``DISABLED`` with autoreset off)."""
        mode = gym.vector.AutoresetMode.SAME_STEP if self.autoreset else gym.vector.AutoresetMode.DISABLED
        return {"autoreset_mode": mode}

    def episode_figures(self, copies: list[int]) -> list[dict[str, float]]:
        """The figures of the episode each of ``copies`` finished last (none by default)."""
        return [{} for _ in copies]

    def __init__(self, num_envs: int, seed: int | None, device: str | torch.device = "cpu") -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(_fresh_seed() if seed is None else int(seed))
        self._episode_return: torch.Tensor | None = None
        self._episode_length: torch.Tensor | None = None
        self._needs_reset = True
        self._finished = torch.zeros(num_envs, dtype=torch.bool, device=self.device)  # waiting for reset_copies
        self._closed = False
        self._busy = threading.Lock()  # held during reset and step: a second thread is refused, not interleaved

    # ------------------------------------------------------------------ hooks for subclasses
    @abstractmethod
    def _reset_envs(self, mask: torch.Tensor) -> torch.Tensor:
        """Start new episodes in the copies where ``mask: [B]`` is True; return ``obs: [B, n, d]``.

        Copies where ``mask`` is False keep their state; their rows of the returned observation are
        their current observation. Draw randomness from ``self._generator`` only.
        """

    @abstractmethod
    def _step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every copy by one step with validated ``actions``.

        Returns ``(obs [B, n, d], reward [B, n], terminated [B], truncated [B])`` of the step, before
        any auto-reset.
        """

    def close(self) -> None:
        """Release external resources (simulator processes). Safe to call twice; afterwards ``reset`` and
        ``step`` are refused (a closed SUMO environment would otherwise start workers nothing stops).
        Subclasses that override it call ``super().close()``."""
        self._closed = True

    def _check_open(self, call: str) -> None:
        if getattr(self, "_closed", False):
            raise RuntimeError(f"{type(self).__name__}.{call}() called after close(); make a new environment")

    @contextmanager
    def _exclusive(self, call: str) -> Iterator[None]:
        """One call at a time: an environment is not thread-safe (interleaved steps corrupt its state or
        its workers' pipes), so a call while another thread is inside one is an error."""
        busy = self.__dict__.get("_busy")
        if busy is None:  # a subclass that skipped NetworkedVecEnv.__init__
            yield
            return
        if not busy.acquire(blocking=False):
            raise RuntimeError(f"{type(self).__name__}.{call}() called while another thread is inside reset() or "
                               "step(): an environment is not thread-safe; give each thread its own")
        try:
            yield
        finally:
            busy.release()

    # ------------------------------------------------------------------ public API
    @property
    def obs_dim(self) -> int:
        return int(self.observation_space.shape[0])

    @property
    def agent_interface(self) -> dict[str, Any]:
        """What one agent reads and does, as plain data (what a checkpoint stores and
        :func:`gdmpo.checkpoints.check_fits` compares): ``obs_dim``, ``action`` (:func:`action_layout`) and,
        for traffic signals, ``lane_features``."""
        return {"obs_dim": self.obs_dim, "action": action_layout(self.action_space),
                "lane_features": self.lane_features}

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Start a new episode in every copy; ``seed`` re-seeds the environment's generator."""
        self._check_open("reset")
        with self._exclusive("reset"):
            return self._reset_all(seed)

    def _reset_all(self, seed: int | None) -> torch.Tensor:
        if seed is not None:
            self._generator.manual_seed(int(seed))
        all_envs = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        obs = self._reset_envs(all_envs)
        self._episode_return = None  # created on the first step, in the rewards' dtype
        self._episode_length = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._finished.zero_()
        self._needs_reset = False
        return obs

    def reset_copies(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Start new episodes in the copies where ``mask: [B]`` is True (default: the finished ones, with
        autoreset off); return ``obs [B, n, d]``, the other copies' rows their current observation."""
        self._check_open("reset_copies")
        if self._needs_reset:
            raise RuntimeError(f"{type(self).__name__}.reset_copies() called before reset()")
        mask = self._finished.clone() if mask is None else torch.as_tensor(mask, dtype=torch.bool, device=self.device)
        if tuple(mask.shape) != (self.num_envs,):
            raise ValueError(f"reset_copies: mask must have shape [num_envs] = [{self.num_envs}], got {list(mask.shape)}")
        with self._exclusive("reset_copies"):
            obs = self._restart(mask)
        self._finished &= ~mask
        return obs

    def _restart(self, mask: torch.Tensor) -> torch.Tensor:
        """New episodes in the copies of ``mask`` and their bookkeeping zeroed (auto-reset and reset_copies)."""
        obs = self._reset_envs(mask)
        if self._episode_return is not None:
            self._episode_return[mask] = 0.0
        self._episode_length[mask] = 0
        return obs

    def step(self, actions: torch.Tensor | np.ndarray) -> StepResult:
        """Apply ``actions`` and return ``(obs, reward, terminated, truncated, info)``.

        ``info`` holds, for every copy (rows of unfinished copies are filled but meaningless where
        noted):

        - ``done [B]``: ``terminated | truncated``;
        - ``final_obs [B, n, d]``: the observation the step reached, before any auto-reset (``obs`` itself
          where autoreset is off);
        - ``episode_return [B]``: team return (sum over agents and time) of finished copies, NaN elsewhere;
        - ``episode_agent_return [B, n]``: per-agent return of finished copies, NaN elsewhere;
        - ``episode_length [B]``: steps taken in the current (or just finished) episode.
        """
        self._check_open("step")
        if self._needs_reset:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset()")
        if bool(self._finished.any()):
            copies = self._finished.nonzero().flatten().tolist()
            raise RuntimeError(f"{type(self).__name__}.step(): copies {copies} finished their episode and autoreset "
                               "is off; call reset_copies() first")
        actions = self.check_actions(actions)
        with self._exclusive("step"):
            return self._step_and_account(actions)

    def _step_and_account(self, actions: torch.Tensor) -> StepResult:
        obs, reward, terminated, truncated = self._step(actions)
        if self._episode_return is None:
            self._episode_return = torch.zeros_like(reward)
        self._episode_return += reward
        self._episode_length += 1
        done = terminated | truncated
        nan = torch.full_like(self._episode_return, float("nan"))
        agent_return = torch.where(done[:, None], self._episode_return, nan)
        info: Info = {
            "done": done,
            "final_obs": obs,
            "episode_return": agent_return.sum(dim=1),
            "episode_agent_return": agent_return,
            "episode_length": self._episode_length.clone(),
        }
        if bool(done.any()):
            if self.autoreset:
                obs = self._restart(done)
            else:
                self._finished |= done
        return obs, reward, terminated, truncated, info

    def check_actions(self, actions: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Return ``actions`` as a tensor on the env's device, or raise :class:`ActionError`.

        Discrete spaces expect integers of shape ``[B, n]`` within ``[0, action_space.n)``; Box
        spaces expect floats of shape ``[B, n, *action_space.shape]`` without NaN (``[B, n]`` is
        accepted for one-dimensional actions).
        """
        actions = torch.as_tensor(actions, device=self.device)
        batch = (self.num_envs, self.num_agents)
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            if actions.dtype.is_floating_point or actions.dtype == torch.bool or actions.is_complex():
                raise ActionError(f"expected integer actions (phase/option indices), got dtype {actions.dtype}")
            if tuple(actions.shape) != batch:
                raise ActionError(f"expected actions of shape [num_envs, num_agents] = {list(batch)}, "
                                  f"got {list(actions.shape)}")
            low, high = int(actions.min()), int(actions.max())
            if low < 0 or high >= space.n:
                raise ActionError(f"discrete actions must lie in [0, {space.n - 1}], got values in [{low}, {high}]")
            return actions.long()
        if isinstance(space, gym.spaces.Box):
            expected = batch + tuple(space.shape)
            if space.shape == (1,) and tuple(actions.shape) == batch:
                actions = actions.unsqueeze(-1)
            if not actions.dtype.is_floating_point:
                raise ActionError(f"expected floating-point continuous actions, got dtype {actions.dtype}")
            if tuple(actions.shape) != expected:
                raise ActionError(f"expected actions of shape {list(expected)} "
                                  f"([num_envs, num_agents, *action_shape]), got {list(actions.shape)}")
            if bool(torch.isnan(actions).any()):
                raise ActionError("actions contain NaN")
            return actions
        raise TypeError(f"unsupported action space {space!r}")

    def __enter__(self) -> "NetworkedVecEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_envs={self.num_envs}, num_agents={self.num_agents}, "
                f"obs_dim={self.obs_dim}, action_space={self.action_space})")


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little")
