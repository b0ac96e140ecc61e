"""Reference policies that need no training: the yardsticks learned policies are compared against.

A policy here is any callable ``obs [B, n, d] -> actions`` accepted by ``env.step``.
"""

from __future__ import annotations

import gymnasium as gym
import torch

from gdmpo.envs.base import NetworkedVecEnv


class ConstantPolicy:
    """Every agent always takes the same discrete action (e.g. one fixed OVM gain pair in CACC)."""

    def __init__(self, env: NetworkedVecEnv, action: int) -> None:
        if not isinstance(env.action_space, gym.spaces.Discrete) or not 0 <= action < env.action_space.n:
            raise ValueError(f"constant action {action} is not in the action space {env.action_space}")
        self.action, self.shape = action, (env.num_envs, env.num_agents)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.full(self.shape, self.action, dtype=torch.long, device=obs.device)


class RandomPolicy:
    """Uniformly random actions from each agent's action space (its allowed ones where the env has an
    ``action_mask``), from a seeded generator."""

    def __init__(self, env: NetworkedVecEnv, seed: int = 0) -> None:
        self.space, self.shape = env.action_space, (env.num_envs, env.num_agents)
        mask = env.action_mask
        self.weights = None if mask is None else torch.as_tensor(mask, dtype=torch.float).repeat(env.num_envs, 1)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        if isinstance(self.space, gym.spaces.Discrete):
            if self.weights is not None:
                picks = torch.multinomial(self.weights, 1, generator=self.generator)
                return picks.reshape(self.shape).to(obs.device)
            return torch.randint(int(self.space.n), self.shape, generator=self.generator).to(obs.device)
        low = torch.as_tensor(self.space.low, dtype=obs.dtype)
        high = torch.as_tensor(self.space.high, dtype=obs.dtype)
        u = torch.rand(self.shape + tuple(self.space.shape), generator=self.generator, dtype=obs.dtype)
        return (low + u * (high - low)).to(obs.device)


class FixedTimePolicy:
    """Traffic signals: every light cycles through its green phases for the durations of the network's
    own programme (rounded to whole control intervals, at least one), as SUMO would run it."""

    def __init__(self, env: NetworkedVecEnv, control_interval: float = 5.0) -> None:
        graph = _signal_graph(env, "fixed-time")
        plan = []  # per agent: the phase index of each control step of its cycle
        for seconds in graph.green_seconds:
            plan.append([p for p, s in enumerate(seconds) for _ in range(max(1, round(s / control_interval)))])
        cycle = max(len(p) for p in plan)
        self.table = torch.tensor([[p[k % len(p)] for k in range(cycle)] for p in plan]).t()  # [cycle, n]
        self.shape, self.step = (env.num_envs, env.num_agents), 0

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        actions = self.table[self.step % self.table.size(0)].expand(self.shape)
        self.step += 1
        return actions.to(obs.device)


class MaxPressurePolicy:
    """Traffic signals: each light shows the green phase with the highest pressure.

    The pressure of a phase is the sum over its green links of the vehicles waiting near the stop line
    of the link's incoming lane minus those near the end of its outgoing lane when that lane is one a
    neighbouring light observes (zero for lanes leaving the network), read from the observations'
    wave features. Vectorised over copies: one fixed sparse map from observations to pressures.
    """

    def __init__(self, env: NetworkedVecEnv) -> None:
        graph = _signal_graph(env, "max-pressure")
        n, width, phases = env.num_agents, env.obs_dim, env.action_space.n
        where = {lane: i * width + k for i, lanes in enumerate(graph.lanes) for k, lane in enumerate(lanes)}
        rows, columns, signs = [], [], []  # pressure of (agent, phase) row += sign x observed feature
        for i, (states, links) in enumerate(zip(graph.phases, graph.links)):
            for p, state in enumerate(states):
                for link, signal in enumerate(state):
                    if signal not in "Gg" or not links[link][0]:
                        continue
                    in_lane, out_lane = links[link]
                    rows.append(i * phases + p), columns.append(where[in_lane]), signs.append(1.0)
                    if out_lane in where:
                        rows.append(i * phases + p), columns.append(where[out_lane]), signs.append(-1.0)
        # [n P, n d], float64 (see __call__); coalescing sums repeated (row, feature) pairs
        self.pressure = torch.sparse_coo_tensor(torch.tensor([rows, columns], dtype=torch.long).reshape(2, -1),
                                                torch.tensor(signs, dtype=torch.float64),
                                                (n * phases, n * width), check_invariants=True).coalesce()
        self.allowed = torch.as_tensor(env.action_mask, dtype=torch.bool)
        self.phases = phases

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        b, n, _ = obs.shape
        # float64, rounded: equal pressures are exact ties (float32 sums of 0.2-steps are not), so a tie
        # goes to the first phase whatever the observation's layout or the matrix product's summation order
        if self.pressure.device != obs.device:
            self.pressure = self.pressure.to(obs.device)
        scores = torch.sparse.mm(self.pressure, obs.reshape(b, -1).double().t()).t()
        scores = torch.round(scores.reshape(b, n, self.phases) * 1e6)
        scores = scores.masked_fill(~self.allowed.to(obs.device), float("-inf"))
        return scores.argmax(-1)


class GreedyPolicy:
    """Traffic signals: each light shows the green phase whose green lanes hold the most vehicles, queued
    or approaching within the observation distance (RESCO's greedy, or max-wave, controller).

    A phase's score is the sum, over the incoming lanes it gives green (each lane once, however many
    of its links are green), of the lane's wave feature: the vehicles within ``wave_distance`` of the
    stop line, moving or halted. It reads the observation only, so it plays on any junction shape and
    with the same yellow handling as every other controller; exact ties go to the first phase.
    Vectorised over copies: one ``[n, phases, lanes]`` table.
    """

    def __init__(self, env: NetworkedVecEnv) -> None:
        from gdmpo.envs.sumo.atsc import green_lanes, phase_green_table

        graph = _signal_graph(env, "greedy")
        self.lanes = max(len(lanes) for lanes in graph.lanes)
        greens = [green_lanes(*light) for light in zip(graph.lanes, graph.links, graph.phases)]
        table = torch.from_numpy(phase_green_table(graph.phases, greens, self.lanes)).double()  # [n, P', L]
        phases = env.action_space.n
        self.table = torch.zeros(env.num_agents, phases, self.lanes, dtype=torch.float64)
        self.table[:, : table.size(1)] = table
        self.allowed = torch.as_tensor(env.action_mask, dtype=torch.bool)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        if self.table.device != obs.device:
            self.table, self.allowed = self.table.to(obs.device), self.allowed.to(obs.device)
        waves = obs[..., : self.lanes].double()  # [B, n, L]: the wave block comes first
        scores = torch.round(torch.einsum("npl,bnl->bnp", self.table, waves) * 1e6)  # exact ties (see max-pressure)
        return scores.masked_fill(~self.allowed, float("-inf")).argmax(-1)


class CarFollowingPolicy:
    """Vehicle tracks: SUMO's own car-following model (IDM) drives every vehicle, the stop-and-go
    traffic the task is about. Building it switches the environment over (from its next reset); the
    actions it returns are ignored."""

    def __init__(self, env: NetworkedVecEnv) -> None:
        if not hasattr(env, "set_car_following"):
            raise ValueError(f"the idm controller drives SUMO vehicles; {type(env).__name__} has none")
        env.set_car_following(True)
        self.shape = (env.num_envs, env.num_agents, *env.action_space.shape)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.shape, dtype=obs.dtype, device=obs.device)


class ConstantSpeedPolicy:
    """Vehicle tracks: every vehicle accelerates towards one cruising speed (m/s), as hard as its action
    bounds allow, SUMO's safe speed keeping it from hitting the vehicle ahead. The default, 5 m/s, is
    about the uniform-flow speed of the paper's crowded ring (22 vehicles, 260 m) under IDM."""

    def __init__(self, env: NetworkedVecEnv, speed: float) -> None:
        if not hasattr(env, "speed_limit") or not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"the constant-speed controller drives SUMO vehicles; {type(env).__name__} has none")
        if not 0 <= speed <= env.speed_limit:
            raise ValueError(f"constant speed must lie in [0, {env.speed_limit}] m/s, got {speed}")
        self.speed, self.limit, self.dt = speed, env.speed_limit, env.dt
        self.high = float(env.action_space.high[0])

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        speed = obs[..., :1] * self.limit
        return ((self.speed - speed) / self.dt).clamp(-self.high, self.high)


def _signal_graph(env: NetworkedVecEnv, name: str):
    graph = env.graph
    if not all(hasattr(graph, key) for key in ("phases", "links", "green_seconds", "lanes")):
        raise ValueError(f"the {name} controller drives traffic lights; {type(env).__name__} has none")
    return graph


def reference_policy(env: NetworkedVecEnv, name: str, seed: int = 0):
    """Build a reference policy from its name: ``random``, ``constant:K`` (discrete action K),
    ``fixed-time``, ``max-pressure`` or ``greedy`` (traffic lights), ``idm`` or ``constant-speed[:V]`` (vehicles,
    V m/s, default 5)."""
    if name == "random":
        return RandomPolicy(env, seed)
    if name == "fixed-time":
        return FixedTimePolicy(env, getattr(env, "control_interval", 5.0))
    if name == "max-pressure":
        return MaxPressurePolicy(env)
    if name == "greedy":
        return GreedyPolicy(env)
    if name == "idm":
        return CarFollowingPolicy(env)
    if name == "constant-speed" or name.startswith("constant-speed:"):
        try:
            return ConstantSpeedPolicy(env, float(name.partition(":")[2] or 5.0))
        except ValueError as err:
            raise ValueError(f"bad reference policy {name!r}: {err}") from None
    if name.startswith("constant:"):
        try:
            return ConstantPolicy(env, int(name.split(":", 1)[1]))
        except ValueError as err:
            raise ValueError(f"bad reference policy {name!r}: {err}") from None
    raise ValueError(f"unknown reference policy {name!r}; use random, constant:K, fixed-time, max-pressure, greedy, idm "
                     "or constant-speed[:V]")
