"""CACC Catch-up and Slow-down: a platoon of vehicles behind a scripted leader (Chu et al., 2020).

Vehicle 0 leads and is not an agent; agents ``0 … n-1`` are vehicles ``1 … n``, each following the
vehicle ahead with an Optimal-Velocity-Model controller whose gains ``(α, β)`` it picks every
``dt`` from four options. Every quantity is a ``[B, n]`` tensor and one ``step`` is a fixed
sequence of tensor operations over all copies and vehicles: no Python loop over either.

Dynamics of one step (the paper's CACC task, after Chu et al.'s NSC), with ``v_lead`` the speed of the vehicle ahead::

    u  = clip(α (V(h) − v) + β (v_lead − v), −u_max, u_max)
    v' = clip(v + u dt, 0, v_max);   applied u = (v' − v) / dt
    h' = h + dt/2 (v_lead + v_lead' − v − v')                    (trapezoid)

Reward of agent i after the step: ``−(h' − h*)² − a (v' − v*)² − b u²``, plus the training-only
shaping ``−5 min(h' − 10, 0)²``. Once any headway falls below ``h_min`` the platoon has collided:
from that step to the end of the episode every agent's reward is ``−collision_penalty`` (the
dynamics keep running; there is no terminal state, only the 600-step time limit, which truncates).

With ``terminate_on_collision=True`` the collision step instead terminates the episode and charges
each agent the whole remaining penalty at once, ``−collision_penalty × (steps left, this one
included)``: every episode's return is exactly the same as under the rule above, but a learner sees
the failure as the terminal state it is. (Without it, the collided platoon is an absorbing state the
5-number observation cannot reveal, which misleads any critic.) Training configs turn it on.

Choices the spec leaves open, written down here: the reward is computed on the post-step state and
the applied acceleration; the observation's acceleration feature is the acceleration applied at the
previous step (0 at reset). In Slow-down the leader follows the NSC benchmark's profile exactly:
``linspace(v_start, v*, slowdown_points)`` over the first ``slowdown_points`` steps (step 0 is the
platoon's start speed, step ``slowdown_points − 1`` exactly ``v*``), then ``v*``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.envs.registry import OptionError
from gdmpo.graph import chain

Scenario = Literal["catchup", "slowdown"]
Start = Literal["random", "nominal"]


@dataclass(frozen=True)
class CACCParams:
    """Every constant of the CACC benchmark; defaults are Chu et al.'s."""

    num_vehicles: int = 8
    dt: float = 0.1
    episode_steps: int = 600
    h_stop: float = 5.0  # OVM: no motion below this headway (m)
    h_go: float = 35.0  # OVM: full speed above this headway (m)
    v_max: float = 30.0
    u_max: float = 2.5  # acceleration bound (m/s²), symmetric
    h_target: float = 20.0  # h*
    v_target: float = 15.0  # v*
    speed_weight: float = 1.0  # a
    accel_weight: float = 0.1  # b
    shaping_weight: float = 5.0
    shaping_headway: float = 10.0
    h_min: float = 1.0  # collision threshold
    collision_penalty: float = 1000.0
    slowdown_points: int = 300  # Slow-down: points of the leader's linspace profile from v_start to v*
    gains: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))


def ovm_speed(h: torch.Tensor, p: CACCParams) -> torch.Tensor:
    """Optimal-velocity function V(h): 0 below ``h_stop``, ``v_max`` above ``h_go``, cosine between."""
    ramp = 0.5 * p.v_max * (1 - torch.cos(math.pi * (h - p.h_stop) / (p.h_go - p.h_stop)))
    return torch.where(h <= p.h_stop, torch.zeros_like(h), torch.where(h >= p.h_go, torch.full_like(h, p.v_max), ramp))


class CACCEnv(NetworkedVecEnv):
    """``num_envs`` copies of a CACC platoon (Catch-up or Slow-down).

    Args:
        num_envs: B.
        seed: seed of the start-state randomness.
        scenario: ``"catchup"`` or ``"slowdown"``.
        start: ``"random"`` (the benchmark's) or ``"nominal"`` (Catch-up: vehicle 1 at headway
            exactly 2 h*; Slow-down: initial speed exactly 2 v*).
        train_shaping: add the training-only small-headway penalty (switch off for evaluation).
        terminate_on_collision: end the episode at a collision, charging the remaining penalty at once
            (same episode return; see the module docstring).
        device, dtype: where and in which precision the state lives.
        **params: overrides of :class:`CACCParams` fields (``num_vehicles=16`` for transfer, ...).
    """

    def __init__(
        self,
        num_envs: int = 1,
        seed: int | None = None,
        scenario: Scenario = "catchup",
        start: Start = "random",
        train_shaping: bool = True,
        terminate_on_collision: bool = False,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **params: float | int,
    ) -> None:
        super().__init__(num_envs, seed, device)
        if scenario not in ("catchup", "slowdown"):
            raise ValueError(f"scenario must be 'catchup' or 'slowdown', got {scenario!r}")
        if start not in ("random", "nominal"):
            raise ValueError(f"start must be 'random' or 'nominal', got {start!r}")
        known = {f.name for f in fields(CACCParams)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise OptionError(f"unknown CACC parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        self.params = replace(CACCParams(), **params)
        for name in ("num_vehicles", "episode_steps", "slowdown_points"):
            value = getattr(self.params, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CACC option {name} must be an integer >= 1, got {value!r}")
        self.scenario, self.start, self.train_shaping, self.dtype = scenario, start, train_shaping, dtype
        self.terminate_on_collision = terminate_on_collision
        self.has_terminal_states = terminate_on_collision
        p = self.params
        self.num_agents = p.num_vehicles
        self.max_episode_steps = p.episode_steps
        self.graph = chain(p.num_vehicles)
        inf = np.inf
        self.observation_space = gym.spaces.Box(
            low=np.array([-1, -2, -2, -inf, -1], dtype=np.float32),
            high=np.array([(p.v_max - p.v_target) / p.v_target, 2, 2, inf, 1], dtype=np.float32),
        )
        self.action_space = gym.spaces.Discrete(len(p.gains))
        gains = torch.tensor(p.gains, dtype=dtype, device=self.device)
        self._alpha, self._beta = gains[:, 0], gains[:, 1]
        shape = (num_envs, p.num_vehicles)
        self.headway = torch.zeros(shape, dtype=dtype, device=self.device)
        self.speed = torch.zeros(shape, dtype=dtype, device=self.device)
        self.accel = torch.zeros(shape, dtype=dtype, device=self.device)
        self.leader_start_speed = torch.zeros(num_envs, dtype=dtype, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.collided = torch.zeros(num_envs, dtype=torch.bool, device=self.device)

    # ------------------------------------------------------------------ state → observation
    def leader_speed(self, t: torch.Tensor) -> torch.Tensor:
        """Speed ``[B]`` of the scripted leader (vehicle 0) at step ``t``."""
        p = self.params
        if self.scenario == "catchup":
            return torch.full(t.shape, p.v_target, dtype=self.dtype, device=self.device)
        last = max(p.slowdown_points - 1, 1)  # linspace(v_start, v*, points): v* at step points - 1
        progress = t.clamp(max=last).to(self.dtype) / last
        return self.leader_start_speed + (p.v_target - self.leader_start_speed) * progress

    def _lead_speeds(self, v: torch.Tensor, v0: torch.Tensor) -> torch.Tensor:
        """Speed of the vehicle ahead of each agent: ``[v0, v_1, …, v_{n-1}]``."""
        return torch.cat([v0[:, None], v[:, :-1]], dim=1)

    def observe(self) -> torch.Tensor:
        """Observation ``[B, n, 5]`` of the current state (the paper's CACC task)."""
        p = self.params
        h, v = self.headway, self.speed
        v_lead = self._lead_speeds(v, self.leader_speed(self.t))
        return torch.stack(
            [
                (v - p.v_target) / p.v_target,
                ((v_lead - v) / 5).clamp(-2, 2),
                ((ovm_speed(h, p) - v) / 5).clamp(-2, 2),
                (h + (v_lead - v) * p.dt - p.h_target) / p.h_target,
                self.accel / p.u_max,
            ],
            dim=-1,
        )

    # ------------------------------------------------------------------ hooks
    def _reset_envs(self, mask: torch.Tensor) -> torch.Tensor:
        p = self.params
        k = int(mask.sum())
        headway = torch.full((k, p.num_vehicles), p.h_target, dtype=self.dtype, device=self.device)
        speed = torch.full((k, p.num_vehicles), p.v_target, dtype=self.dtype, device=self.device)
        if self.start == "nominal":
            factor = torch.full((k,), 2.0, dtype=self.dtype, device=self.device)
        else:
            factor = 1.5 + torch.rand(k, generator=self._generator, dtype=self.dtype, device=self.device)
        if self.scenario == "catchup":
            headway[:, 0] = p.h_target * factor
            leader = torch.full((k,), p.v_target, dtype=self.dtype, device=self.device)
        else:
            speed = speed * factor[:, None]
            leader = p.v_target * factor
        self.headway[mask] = headway
        self.speed[mask] = speed
        self.accel[mask] = 0.0
        self.leader_start_speed[mask] = leader
        self.t[mask] = 0
        self.collided[mask] = False
        return self.observe()

    @property
    def dt(self) -> float:
        return self.params.dt

    def vehicle_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(headway [B, n] m, speed [B, n] m/s)`` of every following vehicle now (profiles, Fig. 7)."""
        return self.headway.clone(), self.speed.clone()

    def _step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.params
        h, v = self.headway, self.speed
        v_lead = self._lead_speeds(v, self.leader_speed(self.t))
        command = self._alpha[actions] * (ovm_speed(h, p) - v) + self._beta[actions] * (v_lead - v)
        v_next = (v + command.clamp(-p.u_max, p.u_max) * p.dt).clamp(0.0, p.v_max)
        accel = (v_next - v) / p.dt
        t_next = self.t + 1
        v_lead_next = self._lead_speeds(v_next, self.leader_speed(t_next))
        h_next = h + 0.5 * p.dt * (v_lead + v_lead_next - v - v_next)

        reward = -((h_next - p.h_target) ** 2) - p.speed_weight * (v_next - p.v_target) ** 2 - p.accel_weight * accel**2
        if self.train_shaping:
            reward = reward - p.shaping_weight * (h_next - p.shaping_headway).clamp(max=0.0) ** 2
        self.collided |= (h_next < p.h_min).any(dim=1)
        penalty = torch.full_like(reward, -p.collision_penalty)
        if self.terminate_on_collision:
            steps_left = (p.episode_steps - self.t).to(reward.dtype)  # this step included
            penalty = penalty * steps_left[:, None]
        reward = torch.where(self.collided[:, None], penalty, reward)

        self.headway, self.speed, self.accel, self.t = h_next, v_next, accel, t_next
        terminated = self.collided.clone() if self.terminate_on_collision else torch.zeros_like(self.collided)
        truncated = (t_next >= p.episode_steps) & ~terminated
        return self.observe(), reward, terminated, truncated
