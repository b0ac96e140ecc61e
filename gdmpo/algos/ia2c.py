"""IA2C: independent advantage actor-critic, the main baseline family of the NSC benchmark (Chu et al., 2020).

Each agent's policy acts on ``s_{N_i}`` and its critic is local (``V_i(s_{N_i^{κ_v}})``); both are the
same shared-weight κ-hop networks as every other algorithm. Learning is synchronous A2C: collect a
segment, compute per-agent n-step (``gae_lambda = 1``) or GAE returns, take **one** gradient step of
``−A_i log π(a_i) − c_H H(π) + c_V (V_i − R_i)²`` on the whole batch, discard the segment.

Cooperation comes from NSC's *spatial discount*: agent i learns from

    r̃_i = Σ_j α^{d(i, j)} r_j                          (d: hop distance on the communication graph)

so ``α = 0`` is fully independent learning (each agent its own reward) and ``α = 1`` gives every
agent the sum of all connected agents' rewards. Unreachable agents never contribute.

The gradient step is :meth:`PPO.update` with one epoch of one minibatch and no KL stop: at that only
step the probability ratio is exactly 1, so the clipped surrogate's gradient is ``A ∇ log π`` — the
actor-critic gradient itself, with no clipping and no trust region (``tests/test_ia2c.py`` checks it).
The advantage is the agent's own (``advantage_hops = 0``), not the extended sum of DPPO.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch_geometric.data import Data

from gdmpo.algos.base import Algorithm, IterationResult
from gdmpo.algos.collect import collect
from gdmpo.algos.ppo import PPO
from gdmpo.config import PPOConfig
from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.graph import hop_distances


def spatial_discount(edge_index: torch.Tensor, num_agents: int, alpha: float) -> torch.Tensor:
    """``[n, n]`` weights ``W[i, j] = α^{d(i, j)}`` (0 where j cannot be reached from i).

    ``α = 0`` gives the identity (``0^0 = 1``): each agent keeps its own reward.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"ia2c.spatial_discount must be in [0, 1], got {alpha}")
    dist = hop_distances(Data(edge_index=edge_index.cpu(), num_nodes=num_agents))
    weights = torch.tensor(alpha, dtype=torch.float64).pow(dist.clamp(min=0).double())
    weights[dist < 0] = 0.0
    return weights.float()


def a2c_ppo_config(ppo: PPOConfig) -> PPOConfig:
    """``ppo`` as one plain actor-critic step per batch: one epoch, one minibatch, no KL stop."""
    return replace(ppo, epochs=1, minibatches=1, target_kl=None)


class IA2C(Algorithm):
    """Synchronous IA2C on spatially discounted rewards: one gradient step per collected segment.

    Args:
        agent: a :class:`PPO` agent built with :func:`a2c_ppo_config` and ``advantage_hops = 0``
            (``gdmpo.algos.build_agent`` does both for ``algo: ia2c``).
        rollout_steps: vector steps per segment (the ``n`` of the n-step returns).
        alpha: the spatial discount factor α in [0, 1].
    """

    def __init__(self, agent: PPO, rollout_steps: int, alpha: float) -> None:
        super().__init__(agent, rollout_steps)
        cfg = agent.config
        if cfg.epochs != 1 or cfg.minibatches != 1 or cfg.target_kl is not None:
            raise ValueError("IA2C takes one plain gradient step per batch: build its agent with a2c_ppo_config")
        self.alpha = alpha
        self.weights = spatial_discount(agent.edge_index, agent.num_agents, alpha).to(agent.edge_index.device)

    def iteration(self, env: NetworkedVecEnv, obs: torch.Tensor) -> IterationResult:
        rollout, obs, episodes = collect(env, self.agent, obs, self.rollout_steps)
        discounted = rollout.rewards @ self.weights.t().to(rollout.rewards.dtype)  # r̃_i = Σ_j W[i, j] r_j
        stats = self.agent.update(replace(rollout, rewards=discounted))
        return IterationResult(obs, episodes, rollout.num_steps * rollout.num_envs, stats.as_dict())
