"""Trajectory storage: on-policy segments (:class:`Rollout`) and the real-data buffer D^E of DMPO."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Rollout:
    """``T`` steps of ``B`` copies of an ``n``-agent system, as collected (time-major).

    Attributes:
        obs: ``[T, B, n, d]`` observations the actions were taken in.
        actions: ``[T, B, n]`` (discrete) or ``[T, B, n, a]`` (continuous, unclipped samples).
        log_probs: ``[T, B, n]`` log π(a_i | s) at collection time.
        rewards: ``[T, B, n]`` raw per-agent rewards.
        values: ``[T, B, n]`` V_i(s_t) at collection time, in the critic's (learning) units.
        next_values: ``[T, B, n]`` V_i of the successor state: 0 after termination, the value of the
            final observation after truncation (time limit or rollout end), else ``values[t + 1]``.
        dones: ``[T, B]`` an episode ended at step t (terminated or truncated): no GAE across it.
        next_obs: ``[T, B, n, d]`` the state each step reached (before any reset), or None.
        terminated: ``[T, B]`` the step reached a terminal state (not a time limit), or None.
            Real collections fill both, so the data can feed D^E and be re-evaluated later.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    rewards: torch.Tensor
    values: torch.Tensor
    next_values: torch.Tensor
    dones: torch.Tensor
    next_obs: torch.Tensor | None = None
    terminated: torch.Tensor | None = None

    @property
    def num_steps(self) -> int:
        return self.obs.size(0)

    @property
    def num_envs(self) -> int:
        return self.obs.size(1)

    def flat(self) -> "Rollout":
        """The same data with time and copies merged: ``[T B, n, ...]`` (``dones`` becomes ``[T B]``)."""
        return Rollout(**{name: None if value is None else value.flatten(0, 1) for name, value in self._items()})

    @staticmethod
    def concat(parts: "list[Rollout]") -> "Rollout":
        """Join rollouts of equal ``T`` along the copies dimension."""
        joined = {}
        for name, value in parts[0]._items():
            joined[name] = None if value is None else torch.cat([getattr(p, name) for p in parts], dim=1)
        return Rollout(**joined)

    def _items(self) -> list[tuple[str, torch.Tensor | None]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


class RealBuffer:
    """D^E: the latest real transitions, kept as whole trajectories so open-loop errors can be measured.

    Data arrive as on-policy segments of ``T`` steps × ``B`` copies; each copy's segment is one
    *column* of ``T`` consecutive transitions. The buffer holds the latest ``capacity`` columns
    (FIFO). Every ``round(1 / holdout_fraction)``-th column ever added is held out: the model never
    fits it, and its errors are measured on it.

    Shapes of the stored columns: ``obs, next_obs: [C, T, n, d]``, ``actions: [C, T, n(, a)]`` as the
    environment took them, ``rewards: [C, T, n]``, ``terminated, dones: [C, T]``.
    """

    def __init__(self, capacity_steps: int, segment_steps: int, holdout_fraction: float = 0.1) -> None:
        if segment_steps < 1 or capacity_steps < segment_steps:
            raise ValueError(f"buffer capacity ({capacity_steps} steps) must hold at least one segment "
                             f"of {segment_steps} steps")
        if not 0.0 <= holdout_fraction < 0.5:
            raise ValueError(f"holdout_fraction must be in [0, 0.5), got {holdout_fraction}")
        self.capacity = capacity_steps // segment_steps
        self.segment_steps = segment_steps
        self.holdout_every = 0 if holdout_fraction == 0 else max(2, round(1 / holdout_fraction))
        self.data: dict[str, torch.Tensor] = {}
        self.held_out = torch.zeros(self.capacity, dtype=torch.bool)
        self.added = 0  # columns ever added

    def __len__(self) -> int:
        """Columns currently stored."""
        return min(self.added, self.capacity)

    @property
    def num_steps(self) -> int:
        """Real time steps currently stored (each holds all ``n`` agents)."""
        return len(self) * self.segment_steps

    def add(self, rollout: Rollout, env_actions: torch.Tensor) -> None:
        """Store a real segment; ``env_actions`` are the actions as the environment took them."""
        if rollout.next_obs is None or rollout.terminated is None:
            raise ValueError("real segments must carry next_obs and terminated (see gdmpo.algos.collect)")
        if rollout.num_steps != self.segment_steps:
            raise ValueError(f"segments of {rollout.num_steps} steps do not fit a buffer of "
                             f"{self.segment_steps}-step columns")
        columns = {"obs": rollout.obs, "actions": env_actions, "rewards": rollout.rewards,
                   "next_obs": rollout.next_obs, "terminated": rollout.terminated, "dones": rollout.dones}
        if not self.data:
            self.data = {k: torch.zeros((self.capacity, *v.transpose(0, 1).shape[1:]), dtype=v.dtype, device=v.device)
                         for k, v in columns.items()}
        for b in range(rollout.num_envs):  # a few copies per segment, not a loop over agents or steps
            slot = self.added % self.capacity
            for key, value in columns.items():
                self.data[key][slot] = value[:, b]
            self.held_out[slot] = self.holdout_every > 0 and self.added % self.holdout_every == self.holdout_every - 1
            self.added += 1

    def _columns(self, held_out: bool) -> torch.Tensor:
        stored = torch.arange(len(self))
        return stored[self.held_out[: len(self)] == held_out]

    def sample(self, count: int, generator: torch.Generator | None = None, held_out: bool = False) -> dict[str, torch.Tensor]:
        """``count`` random transitions (all agents of one time step each) from the fitting (or held-out) columns."""
        columns = self._columns(held_out)
        if columns.numel() == 0:
            raise ValueError(f"the buffer holds no {'held-out' if held_out else 'fitting'} data yet")
        pick = torch.randint(columns.numel(), (count,), generator=generator)
        col, step = columns[pick], torch.randint(self.segment_steps, (count,), generator=generator)
        return {key: value[col, step] for key, value in self.data.items()}

    def start_states(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[count, n, d]`` real states, drawn uniformly from every stored column, to branch model rollouts from."""
        if len(self) == 0:
            raise ValueError("the buffer is empty")
        columns = torch.arange(len(self))
        col = columns[torch.randint(columns.numel(), (count,), generator=generator)]
        step = torch.randint(self.segment_steps, (count,), generator=generator)
        return self.data["obs"][col, step]

    def latest_columns(self, count: int) -> torch.Tensor:
        """Slots of the ``count`` columns added last (the newest segment), held out or not."""
        count = min(count, len(self))
        return (self.added - 1 - torch.arange(count)) % self.capacity

    def windows(self, length: int, held_out: bool = True, columns: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every run of ``length`` consecutive transitions within one episode, from the held-out columns
        (or from the given ``columns``, e.g. :meth:`latest_columns`).

        Returns ``obs [W, n, d]`` (the start states), ``actions [W, length, n(, a)]``,
        ``next_obs [W, length, n, d]`` (the real states reached) and ``rewards [W, length, n]``, for
        open-loop model evaluation.
        """
        columns = self._columns(held_out) if columns is None else columns
        length = min(length, self.segment_steps)
        if columns.numel() == 0:
            return {}
        dones = self.data["dones"][columns].long().cpu()  # [C, T]; index bookkeeping stays on the CPU
        # a window starting at t is valid when no episode ends at steps t .. t + length - 2
        ends = torch.cat([torch.zeros(len(columns), 1, dtype=torch.long), dones.cumsum(1)], dim=1)
        starts = torch.arange(self.segment_steps - length + 1)
        crossing = ends[:, starts + length - 1] - ends[:, starts]
        c, t = (crossing == 0).nonzero(as_tuple=True)
        col = columns[c]
        span = t[:, None] + torch.arange(length)
        return {"obs": self.data["obs"][col, t], "actions": self.data["actions"][col[:, None], span],
                "next_obs": self.data["next_obs"][col[:, None], span],
                "rewards": self.data["rewards"][col[:, None], span]}

    def state_dict(self) -> dict:
        return {"data": self.data, "held_out": self.held_out, "added": self.added}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        """Restore a saved buffer with its columns on ``device`` (checkpoints load on the CPU; the data
        live beside the networks). Index bookkeeping (``held_out``) stays on the CPU."""
        self.data = {key: value.to(device) for key, value in state["data"].items()}
        self.held_out, self.added = state["held_out"], state["added"]
