"""Fitting DMPO's local dynamics models on real data and measuring how wrong they are.

An :class:`DynamicsEnsemble` holds ``K`` shared-weight :class:`~gdmpo.nn.dynamics.LocalDynamicsModel`
members (K = 1 by default). Following MBPO, each member fits its own random minibatches, the members
with the lowest held-out error are the *elites*, and every branched rollout follows one elite.

The error figures are the paper's model-error curves: the one-step state MSE on held-out real
transitions, and the open-loop error after 1, 5 and T steps, where the model is fed the real actions
and its own predicted states (every agent's prediction reaching its neighbours at each step), so the
error compounds exactly as in a branched rollout. Beside them, ``model_return_error``: how far the
return the model predicts over those T open-loop steps is from the real one (relative), which is what
decides whether policy updates on model data help or mislead (DMPO's model-data guard reads it).

:meth:`DynamicsEnsemble.step` can also return each copy's *disagreement*: the spread of the elites'
predictions, in units of the typical one-step change of each feature; DMPO stops a branch where it is
large (the model is guessing there).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from gdmpo.algos.buffers import RealBuffer
from gdmpo.config import ModelConfig
from gdmpo.graph import BatchedGraphs
from gdmpo.nn.dynamics import LocalDynamicsModel, Prediction


class DynamicsEnsemble(nn.Module):
    """``K`` local dynamics models for one communication graph, their optimiser and elites.

    Args:
        obs_dim, action_space: one agent's observation size and action space.
        config: model architecture and fitting knobs.
        edge_index, num_agents: the communication graph of one copy.
        predict_done: also predict termination (environments with terminal states).
    """

    def __init__(self, obs_dim: int, action_space: gym.spaces.Space, config: ModelConfig, edge_index: torch.Tensor,
                 num_agents: int, predict_done: bool = False) -> None:
        super().__init__()
        if config.ensemble_size < 1:
            raise ValueError(f"model.ensemble_size must be >= 1, got {config.ensemble_size}")
        num_elites = config.ensemble_size if config.elites is None else config.elites
        if not 1 <= num_elites <= config.ensemble_size:
            raise ValueError(f"model.elites must be in [1, ensemble_size={config.ensemble_size}], got {config.elites}")
        self.config, self.num_agents, self.predict_done = config, num_agents, predict_done
        self.members = nn.ModuleList(
            LocalDynamicsModel(obs_dim, action_space, config.hops, config.net, predict_done, config.reward_transform)
            for _ in range(config.ensemble_size))
        self.register_buffer("edge_index", edge_index)
        self.register_buffer("elites", torch.arange(num_elites))
        self.optimizer = torch.optim.Adam(self.parameters(), lr=config.lr)
        self._graphs = BatchedGraphs(num_agents)

    def graph_of(self, num_copies: int) -> torch.Tensor:
        """Sparse transposed adjacency of ``num_copies`` copies of the graph (cached per size)."""
        return self._graphs(self.edge_index, num_copies)[0]

    # ------------------------------------------------------------------ fitting
    def update_normalizers(self, obs: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor) -> None:
        """Fold new real transitions (any leading shape, ``[..., n, d]``) into every member's statistics."""
        d = obs.size(-1)
        for member in self.members:
            member.update_normalizers(obs.reshape(-1, d), next_obs.reshape(-1, d), rewards.reshape(-1))

    def _loss(self, member: LocalDynamicsModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        m, n = batch["obs"].shape[:2]
        dones = batch["terminated"][:, None].expand(m, n).reshape(-1) if self.predict_done else None
        return member.loss(batch["obs"].reshape(m * n, -1), batch["actions"].reshape(m * n, *batch["actions"].shape[2:]),
                           batch["next_obs"].reshape(m * n, -1), batch["rewards"].reshape(-1), self.graph_of(m),
                           dones, self.config.reward_weight)

    def fit(self, buffer: RealBuffer, steps: int, generator: torch.Generator | None = None) -> float:
        """``steps`` Adam steps, each member on its own minibatch of fitting data; returns the mean loss."""
        total = 0.0
        for _ in range(steps):
            loss = sum(self._loss(member, buffer.sample(self.config.batch_size, generator))[0]
                       for member in self.members)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() / len(self.members)
        return total / max(steps, 1)

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def step_with_spread(self, obs: torch.Tensor, actions: torch.Tensor,
                         member_of_copy: torch.Tensor) -> tuple[Prediction, torch.Tensor]:
        """:meth:`step`, plus each copy's disagreement ``[B]``: every elite predicts every copy, and the
        spread is ``max_i mean_f std_k(ŝ'_{k,i,f}) / σ_f`` (σ_f: the std of feature f's one-step
        change in the real data), the largest over agents of the elites' standard deviation."""
        b, n, d = obs.shape
        flat_actions = actions.reshape(b * n, *actions.shape[2:])
        preds = [self.members[k].predict(obs.reshape(b * n, d), flat_actions, self.graph_of(b))
                 for k in self.elites.tolist()]
        next_all = torch.stack([p.next_obs.reshape(b, n, d) for p in preds])  # [K, B, n, d]
        row_of_member = torch.full((len(self.members),), -1, dtype=torch.long, device=obs.device)
        row_of_member[self.elites] = torch.arange(len(preds), device=obs.device)
        order = row_of_member[member_of_copy]  # each copy's own elite, as a row of the stacks
        rows = torch.arange(b, device=obs.device)
        reward_all = torch.stack([p.reward.reshape(b, n) for p in preds])
        done = None
        if self.predict_done:
            done = torch.stack([p.done_prob.reshape(b, n) for p in preds])[order, rows]
        scale = self.members[int(self.elites[0])].delta_norm.var.sqrt().clamp(min=1e-6)
        spread = (next_all.std(0, unbiased=False) / scale).mean(-1).amax(-1) if len(preds) > 1 \
            else obs.new_zeros(b)
        return Prediction(next_all[order, rows], reward_all[order, rows], done), spread

    @torch.no_grad()
    def step(self, obs: torch.Tensor, actions: torch.Tensor, member_of_copy: torch.Tensor | None = None) -> Prediction:
        """One model step for ``B`` copies: ``obs [B, n, d]``, env-form ``actions [B, n(, a)]``.

        ``member_of_copy: [B]`` picks the ensemble member that predicts each copy (default: the best
        elite for all). Copies are grouped by member, so each member runs once on its share of the
        batch. Returns ``next_obs [B, n, d]``, ``reward [B, n]``, ``done_prob [B, n]`` (or None).
        """
        b, n, d = obs.shape
        if member_of_copy is None:
            member_of_copy = self.elites[:1].expand(b)
        next_obs = torch.empty_like(obs)
        reward = obs.new_empty(b, n)
        done = obs.new_empty(b, n) if self.predict_done else None
        for index in member_of_copy.unique().tolist():
            rows = (member_of_copy == index).nonzero(as_tuple=True)[0]
            m = rows.numel()
            pred = self.members[index].predict(obs[rows].reshape(m * n, d),
                                               actions[rows].reshape(m * n, *actions.shape[2:]), self.graph_of(m))
            next_obs[rows] = pred.next_obs.reshape(m, n, d)
            reward[rows] = pred.reward.reshape(m, n)
            if done is not None:
                done[rows] = pred.done_prob.reshape(m, n)
        return Prediction(next_obs, reward, done)

    def assign_members(self, num_copies: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[num_copies]`` a random elite per rollout (the MBPO habit)."""
        pick = torch.randint(self.elites.numel(), (num_copies,), generator=generator)
        return self.elites.cpu()[pick].to(self.edge_index.device)

    # ------------------------------------------------------------------ measuring
    @torch.no_grad()
    def evaluate(self, buffer: RealBuffer, horizon: int, max_samples: int = 4096) -> dict[str, float]:
        """Held-out errors; also re-ranks the members and keeps the best as elites.

        Returns ``model_state_mse`` (one-step state MSE of the best elite, environment units),
        ``model_reward_mse``, and ``model_error_1``, ``model_error_5``, ``model_error_T``: the state
        MSE after that many open-loop steps from held-out real states under the real actions. Empty
        when there are no held-out data yet.
        """
        windows = buffer.windows(horizon)
        if not windows:
            return {}
        count = windows["obs"].size(0)
        if count > max_samples:  # an even spread of windows keeps evaluation cheap
            keep = torch.linspace(0, count - 1, max_samples).long()
            windows = {k: v[keep] for k, v in windows.items()}
        one_step = []
        for index in range(len(self.members)):
            members = torch.full((windows["obs"].size(0),), index, device=self.edge_index.device)
            pred = self.step(windows["obs"], windows["actions"][:, 0], members)
            one_step.append((pred.next_obs - windows["next_obs"][:, 0]).pow(2).mean())
        ranked = torch.stack(one_step).argsort()
        self.elites.copy_(ranked[: self.elites.numel()])
        batch = buffer.sample(min(max_samples, 4 * self.config.batch_size), held_out=True)
        best = self.elites[:1].expand(batch["obs"].size(0))
        pred = self.step(batch["obs"], batch["actions"], best)
        errors = {"model_state_mse": float((pred.next_obs - batch["next_obs"]).pow(2).mean()),
                  "model_reward_mse": float((pred.reward - batch["rewards"]).pow(2).mean())}
        errors.update(self.open_loop_errors(windows))
        return errors

    @torch.no_grad()
    def open_loop_errors(self, windows: dict[str, torch.Tensor]) -> dict[str, float]:
        """State MSE after 1, 5 and T (the window length) open-loop steps of the best elite, and the
        relative error of the return it predicts over the window, ``mean|R̂_i − R_i| / mean|R_i|``."""
        length = windows["actions"].size(1)
        report: dict[int, list[str]] = {}
        for steps, name in ((1, "model_error_1"), (5, "model_error_5"), (length, "model_error_T")):
            if steps <= length:
                report.setdefault(steps, []).append(name)
        obs = windows["obs"]
        errors: dict[str, float] = {}
        predicted_return = torch.zeros_like(windows["rewards"][:, 0])
        for t in range(length):
            pred = self.step(obs, windows["actions"][:, t])
            obs, predicted_return = pred.next_obs, predicted_return + pred.reward
            for name in report.get(t + 1, []):
                errors[name] = float((obs - windows["next_obs"][:, t]).pow(2).mean())
        real_return = windows["rewards"].sum(1)
        errors["model_return_error"] = float((predicted_return - real_return).abs().mean()
                                             / real_return.abs().mean().clamp(min=1e-8))
        return errors
