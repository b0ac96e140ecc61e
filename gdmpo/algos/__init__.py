"""Learning algorithms around one decentralized PPO agent.

``build_agent(config, env)`` turns a :class:`~gdmpo.config.RunConfig` into a :class:`PPO` agent:

- ``dppo`` and ``dmpo``: extended critic V_i(s_{N_i^{κ_v}}) and extended advantage over N_i^{κ_v};
- ``cppo``: centralised critic V_i(s) (κ_v = ∞) and the team advantage Σ_j A_j;
- ``ia2c``: independent advantage actor-critic, a local critic, each agent's own advantage on spatially
  discounted rewards, one plain gradient step per batch (:mod:`gdmpo.algos.ia2c`);
- ``ic3net``: LSTM agents with a learned broadcast gate (:mod:`gdmpo.algos.ic3net`); its environment
  must first go through :func:`prepare_env`, which appends each agent's recurrent state.

``build_algorithm(config, env)`` wraps it in the learner the trainer drives: :class:`OnPolicy`
(DPPO, CPPO), :class:`IA2C`, :class:`IC3NetLearner` or :class:`DMPO` (the agent trained on branched model rollouts).
"""

from __future__ import annotations

import torch

from gdmpo.algos.base import Algorithm, IterationResult
from gdmpo.algos.buffers import RealBuffer, Rollout
from gdmpo.algos.collect import EpisodeLog, collect
from gdmpo.algos.dmpo import DMPO
from gdmpo.algos.ia2c import IA2C, a2c_ppo_config, spatial_discount
from gdmpo.algos.ic3net import IC3NetPolicy, PlainObservationCritic, RecurrentCommEnv
from gdmpo.algos.model_learning import DynamicsEnsemble
from gdmpo.algos.model_rollout import branched_rollout
from gdmpo.algos.on_policy import IC3NetLearner, OnPolicy
from gdmpo.algos.ppo import PPO, extended_advantage, gae
from gdmpo.algos.registry import ALGORITHM_SPECS, ALGORITHMS, AlgorithmSpec, algorithm_spec
from gdmpo.config import RunConfig
from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.nn import CentralCritic, GraphCritic, GraphPolicy
from gdmpo.graph.signals import SignalStructure
from gdmpo.nn.signals import MovementCritic, PhaseCompetitionPolicy


def prepare_env(config: RunConfig, env: NetworkedVecEnv) -> NetworkedVecEnv:
    """The environment as ``config.algo``'s agent sees it (IC3Net's carries recurrent state)."""
    spec = algorithm_spec(config.algo)
    return env if spec.prepare_env is None else spec.prepare_env(config, env)


def signal_layout(env: NetworkedVecEnv, what: str) -> tuple[int, SignalStructure]:
    """``(lane features, structure)`` of a traffic-signal environment, for a ``movements`` network."""
    structure = env.signal_structure
    if structure is None:
        raise ValueError(f"{what}.input 'movements' needs a traffic-signal environment (ATSC); this one has no "
                         "signal structure")
    return env.lane_features, structure


def build_agent(config: RunConfig, env: NetworkedVecEnv) -> PPO:
    """The policy, critic and PPO update of ``config.algo`` (its :class:`AlgorithmSpec`), sized for ``env``
    (after :func:`prepare_env`) and placed on its device."""
    spec = algorithm_spec(config.algo)
    ppo = config.ppo
    if spec.policy is not None:
        policy = spec.policy(config, env)
    elif config.policy_net.input == "movements":
        lane_features, structure = signal_layout(env, "policy_net")
        policy = PhaseCompetitionPolicy(lane_features, env.action_space, ppo.policy_hops, config.policy_net)
        policy.bind(structure)
    else:
        policy = GraphPolicy(env.obs_dim, env.action_space, ppo.policy_hops, config.policy_net)
    obs_dim = env.obs_dim if spec.obs_dim is None else spec.obs_dim(env)
    central = spec.central_critic or ppo.critic == "central"
    if config.value_net.input == "movements":
        if central or not spec.movement_critic:
            raise ValueError("value_net.input 'movements' is a local critic: not for cppo, ic3net or ppo.critic central")
        lane_features, structure = signal_layout(env, "value_net")
        critic = MovementCritic(lane_features, ppo.value_hops, config.value_net)
        critic.bind(structure)
    elif central:
        critic = CentralCritic(obs_dim, config.value_net)
    else:
        critic = GraphCritic(obs_dim, ppo.value_hops, config.value_net)
    # a central critic's advantage covers everyone unless told; a local one's, the critic's own hops
    advantage_hops = ppo.advantage_hops if central or ppo.advantage_hops is not None else ppo.value_hops
    if spec.own_advantage:  # each agent's own advantage (IA2C)
        if central:
            raise ValueError(f"{spec.name}'s critics are local: set ppo.critic to 'local'")
        advantage_hops = 0
    if spec.adapt_ppo is not None:
        ppo = spec.adapt_ppo(ppo)
    if spec.wrap_critic is not None:
        critic = spec.wrap_critic(critic, obs_dim)
    mask = env.action_mask
    agent = PPO(policy, critic, ppo, env.graph.edge_index, env.num_agents, advantage_hops,
                None if mask is None else torch.as_tensor(mask, dtype=torch.bool)).to(env.device)
    if spec.bind is not None:
        spec.bind(agent, env)
    return agent


def build_algorithm(config: RunConfig, env: NetworkedVecEnv) -> Algorithm:
    """The learner of ``config.algo`` around a fresh agent (see :func:`build_agent`)."""
    return algorithm_spec(config.algo).learner(build_agent(config, env), env, config)


__all__ = ["ALGORITHMS", "ALGORITHM_SPECS", "AlgorithmSpec", "algorithm_spec", "DMPO", "Algorithm", "DynamicsEnsemble", "EpisodeLog", "IC3NetLearner", "IC3NetPolicy",
           "IA2C", "IterationResult", "OnPolicy", "PPO", "RealBuffer", "RecurrentCommEnv", "Rollout", "branched_rollout",
           "a2c_ppo_config", "build_agent", "build_algorithm", "collect", "extended_advantage", "gae", "prepare_env",
           "spatial_discount"]
