"""Decentralized PPO with extended advantages: the policy step of DPPO, CPPO and DMPO.

Reads top to bottom like the paper (sections IV-B): per-agent GAE with the critic V_i, the
extended advantage Ã_i = Σ_{j ∈ N_i^κ} A_j (eq. 9, up to the 1/n scale that normalisation removes),
then the PPO clipped surrogate (eq. 10 with the ratio π/π_old) and the value regression (eq. 8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from gdmpo import precision
from gdmpo.algos.buffers import Rollout
from gdmpo.config import PPOConfig
from gdmpo.graph import BatchedGraphs, khop_adjacency
from gdmpo.nn import GraphPolicy
from gdmpo.nn.normalization import RunningMeanStd
from gdmpo.threads import in_turn, side_by_side, stop_requested, threads_for


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor,
        gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimation per agent, vectorised over copies and agents.

    ``δ_t = r_t + γ V'(t) − V(s_t)`` with ``V'(t) = next_values[t]`` (which already holds 0 after
    termination and the bootstrap value after truncation); ``A_t = δ_t + γλ (1 − done_t) A_{t+1}``.

    Shapes: ``rewards, values, next_values: [T, B, n]``, ``dones: [T, B]`` → ``[T, B, n]``.
    """
    deltas = rewards + gamma * next_values - values
    carry = (gamma * lam) * (~dones).to(values.dtype).unsqueeze(-1)
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in range(rewards.size(0) - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages


def extended_advantage(advantages: torch.Tensor, reach: torch.Tensor | None) -> torch.Tensor:
    """Ã_i = Σ_{j ∈ N_i^κ} A_j for every agent at once, as one sparse product.

    Args:
        advantages: ``[..., n]`` per-agent advantages.
        reach: sparse ``[n, n]`` 0/1 κ-hop matrix with self loops (``gdmpo.graph.khop_adjacency``),
            or None to sum over all agents (the team advantage of a centralised critic).
    """
    n = advantages.size(-1)
    flat = advantages.reshape(-1, n)
    if reach is None:
        summed = flat.sum(-1, keepdim=True).expand(-1, n)
    else:
        summed = torch.sparse.mm(reach, flat.t()).t()
    return summed.reshape(advantages.shape)


@dataclass
class UpdateStats:
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    policy_epochs: int

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


class PPO(nn.Module):
    """Policy, critic, their optimisers and the PPO update, for one communication graph.

    Args:
        policy: the shared policy network.
        critic: ``GraphCritic`` (DPPO/DMPO) or ``CentralCritic`` (CPPO).
        config: PPO knobs.
        edge_index, num_agents: the communication graph of one copy.
        advantage_hops: radius of the extended advantage; None sums over all agents.
        action_mask: optional ``[n, num_actions]`` bool mask of each agent's allowed actions.
    """

    def __init__(self, policy: GraphPolicy, critic: nn.Module, config: PPOConfig, edge_index: torch.Tensor,
                 num_agents: int, advantage_hops: int | None, action_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.policy, self.critic, self.config = policy, critic, config
        self.num_agents = num_agents
        self.register_buffer("edge_index", edge_index, persistent=False)  # checkpoints fit any graph
        # buffers (not saved), so that ``.to(device)`` moves them with the networks
        self.register_buffer("reach", None if advantage_hops is None else
                             khop_adjacency(edge_index, num_agents, advantage_hops), persistent=False)
        self.register_buffer("action_mask", action_mask, persistent=False)
        self.value_norm = RunningMeanStd()
        # the two minibatch loops may run side by side only if no weight is trained by both
        policy_weights = {id(p) for p in policy.parameters()}
        self.loops_side_by_side = not any(id(p) in policy_weights for p in critic.parameters())
        self.policy_optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr_policy)
        self.value_optimizer = torch.optim.Adam(critic.parameters(), lr=config.lr_value)
        self._graphs = BatchedGraphs(num_agents)

    def _precision(self):
        """The block in which policy and critic run (bfloat16 matrix products when configured)."""
        device = self.edge_index.device
        return precision.autocast(precision.resolve(self.config.precision, device), device)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Weights only: checkpoints written before the graph left them may still hold ``edge_index``."""
        weights = {k: v for k, v in state_dict.items() if k != "edge_index"}
        return super().load_state_dict(weights, strict=strict, assign=assign)

    # ------------------------------------------------------------------ batched graph plumbing
    def graph_of(self, num_copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(adj_t, batch)`` of ``num_copies`` copies of the graph (cached per size).

        ``adj_t`` is the sparse transposed adjacency (``gdmpo.graph.batch_adjacency_t``): the networks
        take it in place of an ``edge_index`` and aggregate with one sparse product.
        """
        return self._graphs(self.edge_index, num_copies)

    def _mask(self, num_copies: int) -> torch.Tensor | None:
        return None if self.action_mask is None else self.action_mask.repeat(num_copies, 1)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs: [B, n, d]`` → ``(actions [B, n, ...] as sampled, log_probs [B, n])``."""
        b, n = obs.shape[:2]
        edge_index, _ = self.graph_of(b)
        with self._precision():
            actions, logp = self.policy.act(obs.reshape(b * n, -1), edge_index, deterministic, self._mask(b))
        return actions.reshape(b, n, *actions.shape[1:]), logp.reshape(b, n)

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs: [B, n, d]`` → ``V_i [B, n]`` in learning units (denormalised), in cache-sized chunks."""
        b, n = obs.shape[:2]
        parts = []
        for part in obs.split(self._chunk_copies(b)):
            edge_index, batch = self.graph_of(part.size(0))
            with self._precision():
                parts.append(self.critic(part.reshape(-1, part.size(-1)), edge_index, batch).reshape(-1, n))
        raw = torch.cat(parts)
        return self.value_norm.denormalize(raw) if self.config.value_norm else raw

    def _chunk_copies(self, copies: int) -> int:
        chunk = self.config.chunk_nodes
        return max(1, chunk // self.num_agents) if chunk else copies

    @torch.no_grad()
    def log_probs(self, rollout: Rollout) -> torch.Tensor:
        """``[T, B, n]`` log-probabilities of ``rollout``'s actions under the current policy."""
        t, b, n = rollout.rewards.shape
        flat = rollout.flat()
        edge_index, _ = self.graph_of(t * b)
        with self._precision():
            dist = self.policy.distribution(flat.obs.reshape(t * b * n, -1), edge_index, self._mask(t * b))
        log_probs = self.policy.log_prob(dist, flat.actions.reshape(t * b * n, *flat.actions.shape[2:]))
        return log_probs.reshape(t, b, n)

    @torch.no_grad()
    def drift(self, rollout: Rollout) -> float:
        """How far the policy has moved from the one that collected ``rollout``: the mean approximate
        KL(π_collect ‖ π_now) over its states, E[(r - 1) - log r] with r = π_now(a)/π_collect(a) (the
        estimator of PPO's early stop)."""
        log_ratio = self.log_probs(rollout) - rollout.log_probs
        return float(((log_ratio.exp() - 1) - log_ratio).mean())

    @torch.no_grad()
    def widen_policy(self, obs: torch.Tensor, fraction: float, steps: int = 40) -> float:
        """Soften the categorical policy until its mean entropy over ``obs: [..., n, d]`` is ``fraction``
        of the largest possible (uniform over each agent's allowed actions); returns the temperature
        the logits were divided by (1 where the policy is already that wide). Bisection on the log of
        the temperature in [1, 1e4]: the entropy grows with it."""
        n = obs.size(-2)
        flat = obs.reshape(-1, n, obs.size(-1))
        edge_index, _ = self.graph_of(flat.size(0))
        mask = self._mask(flat.size(0))
        with self._precision():
            logits = self.policy.outputs(flat.reshape(-1, flat.size(-1)), edge_index)
        allowed = torch.full_like(logits[:, 0], logits.size(-1)) if mask is None else mask.sum(-1).to(logits.dtype)
        goal = fraction * float(allowed.log().mean())

        def entropy(temperature: float) -> float:
            return float(self.policy.categorical(logits / temperature, mask).entropy().mean())

        if entropy(1.0) >= goal:
            return 1.0
        low, high = 0.0, math.log(1e4)
        for _ in range(steps):
            middle = (low + high) / 2
            low, high = (middle, high) if entropy(math.exp(middle)) < goal else (low, middle)
        temperature = math.exp(high)
        self.policy.soften(temperature)
        return temperature

    @torch.no_grad()
    def reevaluate(self, rollout: Rollout) -> Rollout:
        """``rollout`` with log-probabilities and values of the current networks.

        Lets an earlier real segment serve another PPO update (DMPO's real-data inner updates): the
        trust region is then taken around the current policy, and the advantages use the current
        critic. Needs ``next_obs`` and ``terminated`` (real collections carry them).
        """
        if rollout.next_obs is None or rollout.terminated is None:
            raise ValueError("reevaluate needs a rollout with next_obs and terminated")
        t, b, n = rollout.rewards.shape
        flat = rollout.flat()
        values = self.value(flat.obs).reshape(t, b, n)
        alive = (~rollout.terminated).to(values.dtype)[..., None]
        next_values = self.value(flat.next_obs).reshape(t, b, n) * alive
        return replace(rollout, log_probs=self.log_probs(rollout), values=values, next_values=next_values)

    # ------------------------------------------------------------------ learning
    def advantages(self, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """``(extended advantages, returns)``, both ``[T, B, n]``; returns = A_i + V_i (eq. 7)."""
        cfg = self.config
        rewards = rollout.rewards * cfg.reward_scale
        if cfg.reward_clip is not None:  # tames one-step charges (a collision's whole penalty at once)
            rewards = rewards.clamp(-cfg.reward_clip, cfg.reward_clip)
        adv = gae(rewards, rollout.values, rollout.next_values, rollout.dones, cfg.gamma, cfg.gae_lambda)
        return extended_advantage(adv, self.reach), adv + rollout.values

    def update(self, rollout: Rollout, generator: torch.Generator | None = None) -> UpdateStats:
        """Clipped-surrogate policy steps (with KL early stop) and value regression on ``rollout``."""
        cfg = self.config
        ext_adv, returns = self.advantages(rollout)
        if cfg.value_norm:
            self.value_norm.update(returns)
            returns = self.value_norm.normalize(returns)
        if cfg.normalize_advantage:
            ext_adv = (ext_adv - ext_adv.mean()) / (ext_adv.std() + 1e-8)
        data = rollout.flat()
        ext_adv, returns = ext_adv.flatten(0, 1), returns.flatten(0, 1)
        samples = data.obs.size(0)
        minibatch = max(1, samples // max(1, cfg.minibatches))
        # every epoch's minibatches drawn up front: the policy and the critic walk the same ones, each in
        # its own loop, side by side when two threads are configured (same results as in turn)
        batches = [torch.randperm(samples, generator=generator, device=data.obs.device).split(minibatch)
                   for _ in range(cfg.epochs)]
        with threads_for(minibatch * self.num_agents):  # one thread unless the minibatches are large
            run = side_by_side if self.loops_side_by_side else in_turn
            (policy, policy_epochs), value_loss = run(lambda: self._policy_epochs(data, ext_adv, batches),
                                                      lambda: self._value_epochs(data, returns, batches))
        return UpdateStats(policy["policy_loss"], value_loss, policy["entropy"], policy["approx_kl"],
                           policy["clip_fraction"], policy_epochs)

    def _policy_epochs(self, data: Rollout, ext_adv: torch.Tensor,
                       batches: list[tuple[torch.Tensor, ...]]) -> tuple[dict[str, float], int]:
        """Clipped-surrogate steps over ``batches`` (the minibatches of each epoch) until the KL early stop.

        Returns the statistics averaged over the steps taken and the number of epochs begun.
        """
        cfg = self.config
        sums = dict.fromkeys(("policy_loss", "entropy", "approx_kl", "clip_fraction"), 0.0)
        steps = epochs = 0
        for epoch in batches:
            epochs += 1
            for idx in epoch:
                stats = self._policy_step(data, ext_adv, idx)
                for key, value in stats.items():
                    sums[key] += value
                steps += 1
                if cfg.target_kl is not None and stats["approx_kl"] > cfg.kl_stop_factor * cfg.target_kl:
                    return {key: value / steps for key, value in sums.items()}, epochs
        return {key: value / max(steps, 1) for key, value in sums.items()}, epochs

    def _value_epochs(self, data: Rollout, returns: torch.Tensor, batches: list[tuple[torch.Tensor, ...]]) -> float:
        """Critic regression steps over every minibatch of ``batches`` (all epochs: the KL stop is the
        policy's); returns the mean loss."""
        losses = []
        for epoch in batches:
            for idx in epoch:
                if stop_requested():  # the policy's loop beside this one failed
                    return float("nan")
                losses.append(self._value_step(data, returns, idx))
        return sum(losses) / max(len(losses), 1)

    def _chunks(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Split a minibatch into pieces of at most ``chunk_nodes`` nodes (whole copies).

        Gradients of the pieces add up to the minibatch gradient exactly; pieces that fit the CPU
        cache run about 1.6x faster than one large pass (measured, 1e5 nodes, 64 features).
        """
        return list(idx.split(self._chunk_copies(idx.numel())))

    def _policy_step(self, data: Rollout, ext_adv: torch.Tensor, idx: torch.Tensor) -> dict[str, float]:
        """One clipped-surrogate step (eq. 10) on the copies ``idx``; returns its statistics."""
        cfg, n = self.config, self.num_agents
        total = idx.numel() * n
        stats = dict.fromkeys(("policy_loss", "entropy", "approx_kl", "clip_fraction"), 0.0)
        self.policy_optimizer.zero_grad(set_to_none=True)
        for part in self._chunks(idx):
            m = part.numel()
            edge_index, _ = self.graph_of(m)
            with self._precision():
                dist = self.policy.distribution(data.obs[part].reshape(m * n, -1), edge_index, self._mask(m))
            logp = self.policy.log_prob(dist, data.actions[part].reshape(m * n, *data.actions.shape[2:]))
            log_ratio = logp - data.log_probs[part].reshape(-1)
            ratio = log_ratio.exp()
            adv = ext_adv[part].reshape(-1)
            surrogate = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv).sum()
            entropy = self.policy.entropy(dist).sum()
            ((-surrogate - cfg.entropy_coef * entropy) / total).backward()
            with torch.no_grad():
                stats["policy_loss"] -= surrogate.item() / total
                stats["entropy"] += entropy.item() / total
                stats["approx_kl"] += ((ratio - 1) - log_ratio).sum().item() / total
                stats["clip_fraction"] += ((ratio - 1).abs() > cfg.clip).sum().item() / total
        nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
        self.policy_optimizer.step()
        return stats

    def _value_step(self, data: Rollout, returns: torch.Tensor, idx: torch.Tensor) -> float:
        """One regression step of the critic towards the (normalised) returns (eq. 8); returns the loss."""
        cfg, n = self.config, self.num_agents
        total = idx.numel() * n
        loss_sum = 0.0
        self.value_optimizer.zero_grad(set_to_none=True)
        for part in self._chunks(idx):
            m = part.numel()
            edge_index, batch = self.graph_of(m)
            with self._precision():
                values = self.critic(data.obs[part].reshape(m * n, -1), edge_index, batch)
            loss = cfg.value_coef * 0.5 * (values - returns[part].reshape(-1)).pow(2).sum() / total
            loss.backward()
            loss_sum += loss.item()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        self.value_optimizer.step()
        return loss_sum
