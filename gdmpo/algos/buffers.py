"""Trajectory storage shared by real-environment and model rollouts."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Rollout:
    """``T`` steps of ``B`` copies of an ``n``-agent system, as collected (time-major).

    Attributes:
        obs: ``[T, B, n, d]`` observations the actions were taken in.
        actions: ``[T, B, n]`` (discrete) or ``[T, B, n, a]`` (continuous, unclipped samples).
        log_probs: ``[T, B, n]`` log π(a_i | s) at collection time.
        rewards: ``[T, B, n]`` raw per-agent rewards.
        values: ``[T, B, n]`` V_i(s_t) at collection time, in the critic's (learning) units.
        next_values: ``[T, B, n]`` V_i of the successor state: 0 after termination, the value of the
            final observation after truncation (time limit or rollout end), else ``values[t + 1]``.
        dones: ``[T, B]`` an episode ended at step t (terminated or truncated): no GAE across it.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    rewards: torch.Tensor
    values: torch.Tensor
    next_values: torch.Tensor
    dones: torch.Tensor

    @property
    def num_steps(self) -> int:
        return self.obs.size(0)

    @property
    def num_envs(self) -> int:
        return self.obs.size(1)

    def flat(self) -> "Rollout":
        """The same data with time and copies merged: ``[T B, n, ...]`` (``dones`` becomes ``[T B]``)."""
        return Rollout(**{f.name: getattr(self, f.name).flatten(0, 1) for f in fields(self)})

    @staticmethod
    def concat(parts: "list[Rollout]") -> "Rollout":
        """Join rollouts of equal ``T`` along the copies dimension."""
        return Rollout(**{f.name: torch.cat([getattr(p, f.name) for p in parts], dim=1) for f in fields(Rollout)})
