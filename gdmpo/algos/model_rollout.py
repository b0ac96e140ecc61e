"""Branched model rollouts (Algorithm 1, lines 8-11): short imagined trajectories from real states.

All ``M`` rollouts of ``n`` agents advance together as one batched graph of ``M n`` nodes: at each
step the policy acts on every node at once, the model predicts every agent's next local state from
its κ_p-hop neighbourhood, and those predictions are what the neighbours see at the next step — the
exchange of predicted states of the paper, done by the message passing itself.

With a ``spread_threshold``, a branch also stops where the elites disagree beyond it (the model is
guessing there, and a policy trained on guesses learns to exploit them): that step is a truncation,
bootstrapped with the critic's value of the state reached, and the branch restarts from a fresh real
state. Each branch thus rolls as far as the model is trusted: a per-branch adaptive horizon.
"""

from __future__ import annotations

import torch

from gdmpo.algos.buffers import RealBuffer, Rollout
from gdmpo.algos.model_learning import DynamicsEnsemble
from gdmpo.algos.ppo import PPO

DONE_THRESHOLD = 0.5


@torch.no_grad()
def branched_rollout(agent: PPO, model: DynamicsEnsemble, start_obs: torch.Tensor, horizon: int,
                     buffer: RealBuffer | None = None, generator: torch.Generator | None = None,
                     bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
                     spread_threshold: float | None = None) -> Rollout:
    """Roll ``horizon`` steps of the current policy in the model from ``start_obs: [M, n, d]``.

    Each rollout follows one randomly drawn elite. A rollout whose state the model judges terminal
    (any agent's termination probability above 0.5) ends there, is not bootstrapped, and restarts
    from a fresh real state drawn from ``buffer``, so the batch stays rectangular. The last step is
    bootstrapped with the critic (paper eq. 7). Predicted states are clamped into ``bounds``
    (``(low, high)`` per feature, the observation space's), so the policy never sees states the
    environment cannot produce. With ``spread_threshold``, branches stop where the elites disagree
    more than that (see the module doc; needs ``buffer`` to restart them). Returns a time-major
    :class:`Rollout` ``[T, M, n]`` whose rewards are the model's predictions, ready for
    :meth:`PPO.update`.
    """
    m, n, _ = start_obs.shape
    members = model.assign_members(m, generator)
    obs = start_obs
    obs_buf, act_buf, logp_buf, rew_buf, reached_buf, term_buf, stop_buf = [], [], [], [], [], [], []
    no_stop = torch.zeros(m, dtype=torch.bool, device=obs.device)
    for _ in range(horizon):
        actions, logp = agent.act(obs)
        env_actions = agent.policy.to_env(actions)
        if spread_threshold is None:
            pred, stopped = model.step(obs, env_actions, members), no_stop
        else:
            pred, spread = model.step_with_spread(obs, env_actions, members)
            stopped = spread > spread_threshold
        if bounds is not None:
            pred.next_obs = torch.maximum(torch.minimum(pred.next_obs, bounds[1]), bounds[0])
        terminated = no_stop if pred.done_prob is None else pred.done_prob.amax(-1) > DONE_THRESHOLD
        stopped = stopped & ~terminated
        obs_buf.append(obs)
        act_buf.append(actions)
        logp_buf.append(logp)
        rew_buf.append(pred.reward)
        reached_buf.append(pred.next_obs)
        term_buf.append(terminated)
        stop_buf.append(stopped)
        obs = pred.next_obs
        ended = terminated | stopped
        if buffer is not None and bool(ended.any()):
            restart = ended.nonzero(as_tuple=True)[0]
            obs = obs.clone()
            obs[restart] = buffer.start_states(restart.numel(), generator).to(obs)
    t = horizon
    obs_all, reached = torch.stack(obs_buf), torch.stack(reached_buf)
    terminated, stopped = torch.stack(term_buf), torch.stack(stop_buf)
    values = agent.value(obs_all.reshape(t * m, n, -1)).reshape(t, m, n)
    next_values = torch.cat([values[1:], agent.value(reached[-1])[None]])
    if bool(stopped.any()):  # a stopped branch bootstraps from the state it reached, not the restart
        next_values[stopped] = agent.value(reached[stopped])
    next_values = next_values * (~terminated).to(values.dtype)[..., None]
    return Rollout(obs_all, torch.stack(act_buf), torch.stack(logp_buf), torch.stack(rew_buf), values, next_values,
                   terminated | stopped, reached, terminated)
