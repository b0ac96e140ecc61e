"""Learning algorithms. DPPO and CPPO are one PPO with different critics and advantage radii.

``build_agent(config, env)`` turns a :class:`~gdmpo.config.RunConfig` into a :class:`PPO` agent:

- ``dppo``: extended critic V_i(s_{N_i^{κ_v}}) and extended advantage over N_i^{κ_v};
- ``cppo``: centralised critic V_i(s) (κ_v = ∞) and the team advantage Σ_j A_j.
"""

from __future__ import annotations

import torch

from gdmpo.algos.buffers import Rollout
from gdmpo.algos.collect import EpisodeLog, collect
from gdmpo.algos.ppo import PPO, extended_advantage, gae
from gdmpo.config import RunConfig
from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.nn import CentralCritic, GraphCritic, GraphPolicy

ALGORITHMS = ("dppo", "cppo")


def build_agent(config: RunConfig, env: NetworkedVecEnv) -> PPO:
    """The policy, critic and PPO update that ``config.algo`` names, sized for ``env``."""
    if config.algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {config.algo!r}; available: {', '.join(ALGORITHMS)}")
    ppo = config.ppo
    policy = GraphPolicy(env.obs_dim, env.action_space, ppo.policy_hops, config.policy_net)
    central = config.algo == "cppo" or ppo.critic == "central"
    if central:
        critic = CentralCritic(env.obs_dim, config.value_net)
        advantage_hops = ppo.advantage_hops
    else:
        critic = GraphCritic(env.obs_dim, ppo.value_hops, config.value_net)
        advantage_hops = ppo.value_hops if ppo.advantage_hops is None else ppo.advantage_hops
    mask = getattr(env, "action_mask", None)
    agent = PPO(policy, critic, ppo, env.graph.edge_index, env.num_agents, advantage_hops,
                None if mask is None else torch.as_tensor(mask, dtype=torch.bool))
    return agent.to(config.device)


__all__ = ["ALGORITHMS", "EpisodeLog", "PPO", "Rollout", "build_agent", "collect",
           "extended_advantage", "gae"]
