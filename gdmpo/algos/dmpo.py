"""DMPO: decentralized model-based policy optimization (the paper's Algorithm 1).

One iteration, top to bottom:

1. act in the real environment with the current policy; add the segment to D^E (line 4);
2. fit the local dynamics models on D^E and measure their held-out errors (line 5);
3. unless still warming up, ``inner_updates`` PPO updates (lines 7-13), each on ``M`` branched
   rollouts of ``T`` steps from real states with probability ``p`` (model data, bootstrapped with V
   at the end, eq. 7), else on the latest real segment re-evaluated with the current networks.

Two guards keep the policy from exploiting model errors (each a ``dmpo`` knob; None turns it off):

- ``spread_threshold``: a branch stops where the ensemble's elites disagree beyond it
  (:func:`branched_rollout`), so imagined data come only from where the model is trusted;
- ``return_error_tolerance`` (τ): ``p = model_data_prob · clip((2τ − e) / τ, 0, 1)``, where ``e`` is
  the relative error of the T-step returns the model predicts for real trajectories it has not been
  fitted on: the held-out ones, and the segment just collected with the current policy, measured
  before the model sees it (the larger of the two). Full use of model data up to τ, less and less
  beyond, none from 2τ on: when the model's returns drift from those the current policy really
  gets (the policy found a flaw to exploit, or the model lags behind it), the policy learns from
  real data until the model has caught up.

With ``model_free_after`` the model hands over to model-free fine-tuning (Nagabandi et al. 2018):
from the first iteration that begins at or after that many real steps with the policy near its best
(:class:`Handoff`), each iteration runs DPPO's one update on the fresh segment and neither fits nor uses
the model. Model data buy the early speed; the model's bias, which caps the return DMPO reaches at fine
control, no longer limits the end of training. With ``handoff_entropy`` the policy is widened once, at the
hand-over (its logits divided by the temperature that gives that fraction of the largest entropy on the
fresh segment's states): ten PPO updates per real segment leave it nearly deterministic, and the model-
free updates that follow learn from what it explores. With ``handoff_deadline`` it hands over at the
latest from that many real steps on, even from a relapse, and then from the policy and critic that had the
best recent episodes (kept when they had them): a policy the model-based updates degraded is not left to
them to the end.

Only real transitions count as ``env_steps``; imagined ones are counted as ``model_steps``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import torch

from gdmpo.algos.base import UPDATE_METRICS, Algorithm, IterationResult
from gdmpo.algos.buffers import RealBuffer, Rollout
from gdmpo.algos.collect import EpisodeLog, collect
from gdmpo.algos.model_learning import DynamicsEnsemble
from gdmpo.algos.model_rollout import branched_rollout
from gdmpo.algos.ppo import PPO, UpdateStats
from gdmpo.checkpoints import load_weights
from gdmpo.config import DMPOConfig, ModelConfig
from gdmpo.envs.base import NetworkedVecEnv

MODEL_METRICS = ("model_loss", "model_state_mse", "model_reward_mse", "model_error_1", "model_error_5",
                 "model_error_T", "model_return_error", "model_return_error_fresh", "model_share", "model_stopped")
INNER_METRICS = ("inner_updates_run", "iteration_kl")  # how many inner updates ran; the policy's move
HANDOFF_METRICS = ("handoff_temperature",)  # what the logits were divided by at the hand-over
TIME_METRICS = ("time_env", "time_model", "time_rollout", "time_policy")


class DMPO(Algorithm):
    """Model-based decentralized PPO: a :class:`PPO` agent trained mostly on branched model rollouts.

    Args:
        agent: the decentralized PPO agent (extended critic, κ_v-hop advantages).
        env: the environment (its graph, spaces, and whether it has terminal states).
        rollout_steps: real vector steps per iteration.
        model: dynamics-model knobs; dmpo: outer-loop knobs.
    """

    metric_names = ("model_steps", "model_updates", *UPDATE_METRICS, *MODEL_METRICS, *INNER_METRICS,
                    *HANDOFF_METRICS, *TIME_METRICS)

    def __init__(self, agent: PPO, env: NetworkedVecEnv, rollout_steps: int, model: ModelConfig,
                 dmpo: DMPOConfig) -> None:
        super().__init__(agent, rollout_steps)
        _check(dmpo)
        self.config = dmpo
        device = agent.edge_index.device
        self.model = DynamicsEnsemble(env.obs_dim, env.action_space, model, env.graph.edge_index, env.num_agents,
                                      env.has_terminal_states).to(device)
        self.buffer = RealBuffer(dmpo.buffer_size, rollout_steps, model.holdout_fraction)
        space = env.observation_space
        self.obs_bounds = (torch.as_tensor(space.low, dtype=torch.float32, device=device),
                           torch.as_tensor(space.high, dtype=torch.float32, device=device))
        self.env_steps = 0
        self.model_steps = 0
        self.model_fitted = False
        self.handoff = Handoff(dmpo.model_free_after, dmpo.handoff_slack, window=env.num_envs,
                               deadline=dmpo.handoff_deadline)
        self.best_agent: dict[str, torch.Tensor] | None = None  # the agent's weights at the best recent episodes
        if dmpo.handoff_entropy is not None and not agent.policy.discrete:
            raise ValueError(f"dmpo.handoff_entropy softens categorical policies only; {env.action_space} "
                             "actions are not discrete (set it to null)")

    # ------------------------------------------------------------------ Algorithm 1
    def iteration(self, env: NetworkedVecEnv, obs: torch.Tensor) -> IterationResult:
        """Algorithm 1's loop body: collect (line 4), fit the models (line 5), the inner updates (lines 7-13);
        after the hand-over, DPPO's one update on the fresh segment instead of the last two."""
        timer = Timer()
        rollout, obs, episodes = self.collect_real(env, obs, timer)
        real_steps = rollout.num_steps * rollout.num_envs
        handing_over = not self.handoff.done
        model_free = self.handoff.update(self.env_steps - real_steps, episodes.returns)
        if self.handoff.improved and self.config.handoff_deadline is not None:
            self.best_agent = {k: v.detach().clone() for k, v in self.agent.state_dict().items()}
        if model_free:
            if handing_over and self.handoff.forced and self.best_agent is not None:
                self.agent.load_state_dict(self.best_agent)  # back to the best policy, then model-free
            metrics, stats, model_updates = self.model_free_update(rollout, handing_over, timer)
        else:
            metrics = self.fit_model(rollout, timer)
            stats, model_updates = self.inner_updates(rollout, metrics, timer)
        metrics.update(_mean_stats(stats))
        metrics.update(timer.totals)
        metrics["model_steps"] = self.model_steps
        metrics["model_updates"] = model_updates
        return IterationResult(obs, episodes, real_steps, metrics)

    def collect_real(self, env: NetworkedVecEnv, obs: torch.Tensor, timer: Timer
                     ) -> tuple[Rollout, torch.Tensor, EpisodeLog]:
        """Line 4: a real segment with the current policy, added to D^E."""
        with timer("time_env"):
            rollout, obs, episodes = collect(env, self.agent, obs, self.rollout_steps)
            self.env_steps += rollout.num_steps * rollout.num_envs
            self.buffer.add(rollout, self.agent.policy.to_env(rollout.actions))
        return rollout, obs, episodes

    def model_free_update(self, rollout: Rollout, handing_over: bool, timer: Timer
                          ) -> tuple[dict[str, Any], list[UpdateStats], int]:
        """After the hand-over: DPPO's one update on the fresh segment, no model (the policy widened once,
        at the hand-over, with ``handoff_entropy``)."""
        with timer("time_policy"):
            stats = [self.agent.update(rollout)]
        metrics: dict[str, Any] = {"model_share": 0.0, "inner_updates_run": 1}
        if handing_over and self.config.handoff_entropy is not None:  # explore again from here on
            metrics["handoff_temperature"] = self.agent.widen_policy(rollout.obs, self.config.handoff_entropy)
        return metrics, stats, 0

    def fit_model(self, rollout: Rollout, timer: Timer) -> dict[str, Any]:
        """Line 5: fit the models on D^E and measure their errors (on held-out trajectories, and on the fresh
        segment before they see it); the long warm-up fit runs once, when the warm-up data are in."""
        cfg = self.config
        metrics: dict[str, Any] = {}
        with timer("time_model"):
            if self.model_fitted:  # the current policy's fresh data, before the model is fitted on them
                fresh = self.buffer.windows(cfg.horizon, columns=self.buffer.latest_columns(rollout.num_envs))
                if fresh:
                    metrics["model_return_error_fresh"] = self.model.open_loop_errors(fresh)["model_return_error"]
            self.model.update_normalizers(rollout.obs, rollout.next_obs, rollout.rewards)
        warming_up = self.env_steps < cfg.warmup_env_steps
        with timer("time_model"):
            first_fit = not warming_up and not self.model_fitted
            steps = cfg.warmup_model_steps if first_fit else cfg.model_steps
            metrics["model_loss"] = self.model.fit(self.buffer, steps)
            self.model_fitted = self.model_fitted or not warming_up
            metrics.update(self.model.evaluate(self.buffer, cfg.horizon))
        return metrics

    def inner_updates(self, rollout: Rollout, metrics: dict[str, Any], timer: Timer) -> tuple[list[UpdateStats], int]:
        """Lines 7-13, once warm-up is over: ``inner_updates`` PPO updates, each on M branched model rollouts
        with probability ``p`` (:meth:`model_share`, from the model's errors in ``metrics``), else on the real
        segment re-evaluated. Adds its own figures to ``metrics``; returns each update's statistics and how
        many used model data."""
        cfg = self.config
        errors = [metrics[k] for k in ("model_return_error", "model_return_error_fresh") if k in metrics]
        share = self.model_share(max(errors) if errors else None)
        metrics["model_share"] = share
        stats: list[UpdateStats] = []
        model_updates, stopped = 0, []
        if self.env_steps >= cfg.warmup_env_steps:
            for _ in range(cfg.inner_updates):
                if float(torch.rand(())) < share:
                    with timer("time_rollout"):
                        start = self.buffer.start_states(cfg.rollouts)
                        data = branched_rollout(self.agent, self.model, start, cfg.horizon, self.buffer,
                                                bounds=self.obs_bounds, spread_threshold=cfg.spread_threshold)
                    self.model_steps += cfg.rollouts * cfg.horizon
                    model_updates += 1
                    stopped.append(float((data.dones & ~data.terminated).float().mean()))
                else:
                    with timer("time_policy"):
                        data = self.agent.reevaluate(rollout)
                with timer("time_policy"):
                    stats.append(self.agent.update(data))
                    if cfg.iteration_kl is not None:  # the policy's total move this iteration, on real states
                        metrics["iteration_kl"] = self.agent.drift(rollout)
                        if metrics["iteration_kl"] > cfg.iteration_kl:
                            break
        if stats:
            metrics["inner_updates_run"] = len(stats)
        if stopped:
            metrics["model_stopped"] = sum(stopped) / len(stopped)  # share of branch steps cut by the spread
        return stats, model_updates

    def model_share(self, return_error: float | None) -> float:
        """``p``, the chance that an inner update uses model data: ``model_data_prob``, lowered by the
        return-error guard when the model's predicted returns drift from the real ones."""
        cfg, tolerance = self.config, self.config.return_error_tolerance
        if tolerance is None or return_error is None:
            return cfg.model_data_prob
        return cfg.model_data_prob * min(1.0, max(0.0, (2 * tolerance - return_error) / tolerance))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "model": self.model.state_dict(),
                "model_optimizer": self.model.optimizer.state_dict(), "buffer": self.buffer.state_dict(),
                "counters": {"env_steps": self.env_steps, "model_steps": self.model_steps,
                             "model_fitted": self.model_fitted},
                "handoff": self.handoff.state_dict(), "best_agent": self.best_agent}

    def initialise_from(self, state: dict[str, Any]) -> list[str]:
        """The other run's dynamics model, if it had one; its buffer and counters stay behind."""
        if "model" not in state:
            return []
        load_weights(self.model, state["model"], "its dynamics model does not fit this environment")
        return ["dynamics model"]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.model.optimizer.load_state_dict(state["model_optimizer"])
        self.buffer.load_state_dict(state["buffer"], device=self.agent.edge_index.device)
        counters = state["counters"]
        self.env_steps, self.model_steps = counters["env_steps"], counters["model_steps"]
        self.model_fitted = counters["model_fitted"]
        if "handoff" in state:  # checkpoints from before the handoff start without one
            self.handoff.load_state_dict(state["handoff"])
        self.best_agent = state.get("best_agent")


class Handoff:
    """When DMPO hands over to model-free fine-tuning, for good.

    At or after ``after`` real steps, and only from a policy near its best: the mean return of its
    last ``window`` training episodes within ``slack`` x |best| of the best such mean so far. Handing
    over in a relapse (colliding again, say) leaves DPPO's updates a nearly deterministic policy to
    climb out with, which they may never do; the model-based updates get it out first. From ``deadline``
    real steps on (if set) it hands over even in a relapse (``forced``): model-based updates that keep
    the policy far from its best would otherwise run to the end.
    """

    def __init__(self, after: int | None, slack: float, window: int, deadline: int | None = None) -> None:
        self.after, self.slack, self.window, self.deadline = after, slack, window, deadline
        self.recent: deque[float] = deque(maxlen=window)
        self.best = -math.inf
        self.done = False
        self.improved = False  # whether the last update set a new best mean
        self.forced = False  # whether the hand-over came from the deadline, in a relapse

    def update(self, steps_before: int, returns: list[float]) -> bool:
        """Record the episodes an iteration finished (it began at ``steps_before`` real steps); whether
        that iteration and all later ones are model-free."""
        self.recent.extend(returns)
        self.improved = False
        if self.after is None or len(self.recent) < self.window or self.done:
            return self.done
        mean = sum(self.recent) / len(self.recent)
        self.improved = mean > self.best
        self.best = max(self.best, mean)
        near_best = steps_before >= self.after and mean >= self.best - self.slack * abs(self.best)
        self.forced = not near_best and self.deadline is not None and steps_before >= max(self.deadline, self.after)
        self.done = near_best or self.forced
        return self.done

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent), "best": self.best, "done": self.done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent.clear()
        self.recent.extend(state["recent"])
        self.best, self.done = state["best"], state["done"]


class Timer:
    """Accumulates wall-clock seconds per named phase: ``with timer("time_env"): ...``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {name: 0.0 for name in TIME_METRICS}
        self._name = ""
        self._start = 0.0

    def __call__(self, name: str) -> "Timer":
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.totals[self._name] = self.totals.get(self._name, 0.0) + time.perf_counter() - self._start


def _mean_stats(stats: list[UpdateStats]) -> dict[str, float]:
    if not stats:
        return {}
    rows = [s.as_dict() for s in stats]
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}


def _check(dmpo: DMPOConfig) -> None:
    for key in ("rollouts", "horizon", "inner_updates", "buffer_size"):
        if getattr(dmpo, key) < 1:
            raise ValueError(f"dmpo.{key} must be >= 1, got {getattr(dmpo, key)}")
    if not 0.0 <= dmpo.model_data_prob <= 1.0:
        raise ValueError(f"dmpo.model_data_prob must be in [0, 1], got {dmpo.model_data_prob}")
    if dmpo.model_free_after is not None and dmpo.model_free_after < 0:
        raise ValueError(f"dmpo.model_free_after must be >= 0 or null (never), got {dmpo.model_free_after}")
    if dmpo.handoff_deadline is not None and (dmpo.model_free_after is None or dmpo.handoff_deadline < 0):
        raise ValueError(f"dmpo.handoff_deadline must be >= 0 and needs dmpo.model_free_after, got "
                         f"{dmpo.handoff_deadline} with model_free_after {dmpo.model_free_after}")
    if dmpo.handoff_slack < 0:
        raise ValueError(f"dmpo.handoff_slack must be >= 0, got {dmpo.handoff_slack}")
    if dmpo.handoff_entropy is not None and not 0.0 < dmpo.handoff_entropy <= 1.0:
        raise ValueError(f"dmpo.handoff_entropy must be in (0, 1] or null (off), got {dmpo.handoff_entropy}")
    for key in ("spread_threshold", "return_error_tolerance"):
        value = getattr(dmpo, key)
        if value is not None and value <= 0:
            raise ValueError(f"dmpo.{key} must be > 0 or null (off), got {value}")
