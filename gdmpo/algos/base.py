"""What every training algorithm offers the trainer: one iteration at a time, and its state.

The :class:`~gdmpo.trainer.Trainer` owns the environment, the run directory, logging and
checkpoints; an :class:`Algorithm` owns the learning. Adding an algorithm means subclassing this
and listing it in ``gdmpo.algos.build_algorithm``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from gdmpo.algos.collect import EpisodeLog
from gdmpo.algos.ppo import PPO
from gdmpo.envs.base import NetworkedVecEnv

UPDATE_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "policy_epochs")


@dataclass
class IterationResult:
    """What one iteration did: where the environment stands, its finished episodes, and figures to log."""

    obs: torch.Tensor
    episodes: EpisodeLog
    env_steps: int  # real transitions (vector steps x copies) taken in this iteration
    metrics: dict[str, Any] = field(default_factory=dict)


class Algorithm(ABC):
    """A learner around a :class:`PPO` agent (whose policy is what gets evaluated and transferred)."""

    #: extra ``metrics.csv`` columns this algorithm fills, in order
    metric_names: tuple[str, ...] = UPDATE_METRICS

    def __init__(self, agent: PPO, rollout_steps: int) -> None:
        self.agent, self.rollout_steps = agent, rollout_steps

    @abstractmethod
    def iteration(self, env: NetworkedVecEnv, obs: torch.Tensor) -> IterationResult:
        """Collect real data from ``obs`` on and learn from it once."""

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the agent's weights that resuming needs (optimisers, buffers, models)."""
        return {"policy_optimizer": self.agent.policy_optimizer.state_dict(),
                "value_optimizer": self.agent.value_optimizer.state_dict()}

    def initialise_from(self, state: dict[str, Any]) -> list[str]:
        """Take the trained weights beyond the agent's (a learned model) from another run's
        :meth:`state_dict`, to fine-tune from them; returns what was taken. Optimisers start afresh."""
        return []

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.agent.value_optimizer.load_state_dict(state["value_optimizer"])
