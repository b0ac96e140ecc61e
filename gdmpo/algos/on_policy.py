"""DPPO, CPPO and IC3Net: model-free, on-policy. Each iteration collects a segment and runs one PPO update."""

from __future__ import annotations

from gdmpo.algos.base import UPDATE_METRICS, Algorithm, IterationResult
from gdmpo.algos.collect import collect
from gdmpo.envs.base import NetworkedVecEnv


class OnPolicy(Algorithm):
    """``rollout_steps`` vector steps of real experience, then :meth:`PPO.update` on them."""

    def iteration(self, env: NetworkedVecEnv, obs) -> IterationResult:
        rollout, obs, episodes = collect(env, self.agent, obs, self.rollout_steps)
        stats = self.agent.update(rollout)
        return IterationResult(obs, episodes, rollout.num_steps * rollout.num_envs, stats.as_dict())


class IC3NetLearner(OnPolicy):
    """:class:`OnPolicy` on a :class:`~gdmpo.algos.ic3net.RecurrentCommEnv`, also logging the
    communication cost: the mean share of agents whose gate was open per step."""

    metric_names = (*UPDATE_METRICS, "comm_fraction")

    def iteration(self, env: NetworkedVecEnv, obs) -> IterationResult:
        result = super().iteration(env, obs)
        result.metrics["comm_fraction"] = env.pop_comm_fraction()
        return result
