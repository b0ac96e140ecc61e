"""Collect on-policy experience from a real (vectorised) environment into a :class:`Rollout`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gdmpo.algos.buffers import Rollout
from gdmpo.algos.ppo import PPO
from gdmpo.envs.base import NetworkedVecEnv


@dataclass
class EpisodeLog:
    """Team returns and lengths of the episodes that finished during a collection, and the
    environment's figures of each (:meth:`NetworkedVecEnv.episode_figures`)."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    figures: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def collect(env: NetworkedVecEnv, agent: PPO, obs: torch.Tensor, steps: int) -> tuple[Rollout, torch.Tensor, EpisodeLog]:
    """Run ``steps`` vector steps of the current policy from ``obs``.

    Truncated episodes (time limit) and the end of the segment are bootstrapped with the critic's
    value of the state reached; terminated ones are not. Returns the rollout, the observation to
    continue from, and the finished episodes.
    """
    b, n = env.num_envs, env.num_agents
    obs_buf, act_buf, logp_buf, rew_buf, val_buf, next_buf, done_buf = [], [], [], [], [], [], []
    reached_buf, term_buf = [], []
    log = EpisodeLog()
    values = agent.value(obs)
    for _ in range(steps):
        actions, logp = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(agent.policy.to_env(actions))
        done = info["done"]
        next_values = agent.value(next_obs)
        bootstrap = next_values
        if bool(done.any()):
            final_values = agent.value(info["final_obs"]) * (~terminated).to(next_values.dtype)[:, None]
            bootstrap = torch.where(done[:, None], final_values, next_values)
            log.returns += info["episode_return"][done].tolist()
            log.lengths += info["episode_length"][done].tolist()
            log.figures += env.episode_figures(done.nonzero(as_tuple=True)[0].tolist())
        obs_buf.append(obs)
        act_buf.append(actions)
        logp_buf.append(logp)
        rew_buf.append(reward.to(values.dtype))
        val_buf.append(values)
        next_buf.append(bootstrap)
        done_buf.append(done)
        reached_buf.append(info["final_obs"])
        term_buf.append(terminated)
        obs, values = next_obs, next_values
    rollout = Rollout(torch.stack(obs_buf), torch.stack(act_buf), torch.stack(logp_buf), torch.stack(rew_buf),
                      torch.stack(val_buf), torch.stack(next_buf), torch.stack(done_buf),
                      torch.stack(reached_buf), torch.stack(term_buf))
    assert rollout.obs.shape[:3] == (steps, b, n)
    return rollout, obs, log
