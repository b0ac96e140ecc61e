"""Algorithms as data: what each one changes in the shared recipe of one decentralized PPO agent.

Every algorithm builds the same thing: a κ-hop policy and critic with weights shared across agents and a
:class:`~gdmpo.algos.ppo.PPO` update, driven by a learner. An :class:`AlgorithmSpec` says where an
algorithm departs from that recipe (a centralised critic, each agent's own advantage, a recurrent policy
and the environment view it needs) and which learner drives it, so ``build_agent`` reads no algorithm
names and a new algorithm is one entry in :data:`ALGORITHM_SPECS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from gdmpo.algos import ic3net
from gdmpo.algos.base import Algorithm
from gdmpo.algos.dmpo import DMPO
from gdmpo.algos.ia2c import IA2C, a2c_ppo_config
from gdmpo.algos.on_policy import IC3NetLearner, OnPolicy
from gdmpo.algos.ppo import PPO
from gdmpo.config import RunConfig
from gdmpo.envs.base import NetworkedVecEnv

if TYPE_CHECKING:
    from torch import nn

    from gdmpo.config import PPOConfig


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm: its learner and its departures from the shared recipe (None: the recipe's own).

    - ``learner(agent, env, config)``: the :class:`Algorithm` the trainer drives;
    - ``central_critic``: V_i(s) of the whole state and the team advantage (CPPO);
    - ``own_advantage`` and ``adapt_ppo``: each agent's own advantage (κ = 0), and the PPO settings
      rewritten (IA2C: one plain actor-critic step per batch);
    - ``prepare_env(config, env)``: the environment as the agent sees it (IC3Net: with recurrent state);
    - ``policy(config, env)``, ``obs_dim(env)``, ``wrap_critic(critic, obs_dim)``, ``bind(agent, env)``:
      a policy of its own, the observation width its critic reads, a wrapper around the critic, and a
      last step once the agent exists (IC3Net's recurrence, all in :mod:`gdmpo.algos.ic3net`);
    - ``movement_critic``: whether a signal critic over movements fits it (a local critic on plain
      observations).
    """

    name: str
    learner: Callable[["PPO", "NetworkedVecEnv", "RunConfig"], "Algorithm"]
    central_critic: bool = False
    own_advantage: bool = False
    adapt_ppo: Callable[["PPOConfig"], "PPOConfig"] | None = None
    prepare_env: Callable[["RunConfig", "NetworkedVecEnv"], Any] | None = None
    policy: Callable[["RunConfig", Any], "nn.Module"] | None = None
    obs_dim: Callable[[Any], int] | None = None
    wrap_critic: Callable[["nn.Module", int], "nn.Module"] | None = None
    bind: Callable[["PPO", Any], None] | None = None
    movement_critic: bool = True


def _on_policy(agent: PPO, env: NetworkedVecEnv, config: RunConfig) -> Algorithm:
    return OnPolicy(agent, config.rollout_steps)


def _dmpo(agent: PPO, env: NetworkedVecEnv, config: RunConfig) -> Algorithm:
    return DMPO(agent, env, config.rollout_steps, config.model, config.dmpo)


def _ic3net(agent: PPO, env: NetworkedVecEnv, config: RunConfig) -> Algorithm:
    return IC3NetLearner(agent, config.rollout_steps)


def _ia2c(agent: PPO, env: NetworkedVecEnv, config: RunConfig) -> Algorithm:
    return IA2C(agent, config.rollout_steps, config.ia2c.spatial_discount)


ALGORITHM_SPECS: dict[str, AlgorithmSpec] = {
    "dppo": AlgorithmSpec("dppo", _on_policy),
    "cppo": AlgorithmSpec("cppo", _on_policy, central_critic=True),
    "dmpo": AlgorithmSpec("dmpo", _dmpo),
    "ic3net": AlgorithmSpec("ic3net", _ic3net, prepare_env=ic3net.recurrent_env, policy=ic3net.policy_for,
                            obs_dim=lambda env: env.raw_obs_dim, wrap_critic=ic3net.PlainObservationCritic,
                            bind=ic3net.bind_recurrence, movement_critic=False),
    "ia2c": AlgorithmSpec("ia2c", _ia2c, own_advantage=True, adapt_ppo=a2c_ppo_config),
}
ALGORITHMS = tuple(ALGORITHM_SPECS)


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The :class:`AlgorithmSpec` of ``name``; an unknown name lists the available ones."""
    if name not in ALGORITHM_SPECS:
        raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(ALGORITHMS)}")
    return ALGORITHM_SPECS[name]
