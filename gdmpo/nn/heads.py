"""Policy and critic heads on the shared κ-hop network.

All heads take flattened batched graphs: ``obs: [N, obs_dim]`` with ``N = B n`` nodes,
``edge_index`` of the ``B`` copies (``gdmpo.graph.batch_edge_index``) and ``batch: [N]`` naming each
node's copy. Nothing in them depends on ``n``: one set of weights serves every graph.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Normal
from torch_geometric.nn import global_mean_pool

from gdmpo.config import NetworkConfig
from gdmpo.nn.message_passing import ACTIVATIONS, KHopNetwork, degree_feature
from gdmpo.nn.spaces import action_layout

MASKED_LOGIT = -1e9


class _GraphInput(nn.Module):
    """Adds the optional per-node degree feature to observations."""

    def __init__(self, net: NetworkConfig) -> None:
        super().__init__()
        self.use_degree = net.degree_feature

    @property
    def extra_dim(self) -> int:
        return int(self.use_degree)

    def features(self, obs: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        if not self.use_degree:
            return obs
        return torch.cat([obs, degree_feature(edge_index, obs.size(0)).to(obs.dtype)], dim=-1)


def khop_network(in_dim: int, out_dim: int, hops: int, net: NetworkConfig) -> KHopNetwork:
    """The κ-hop network ``net`` describes, from ``in_dim`` to ``out_dim`` features per node."""
    return KHopNetwork(in_dim, out_dim, hops, net.hidden, net.activation, net.aggr, net.residual, net.layer_norm)


class GraphPolicy(_GraphInput):
    """π(a_i | s_{N_i^κ}): Categorical over discrete actions (with optional masks) or a Gaussian.

    For Box actions the Gaussian's mean is squashed into the bounds (``centre + half_range ·
    tanh``) and its standard deviation is a learned per-dimension parameter; samples may leave the
    bounds and are clipped by :meth:`to_env`, while log-probabilities use the unclipped sample.
    """

    def __init__(self, obs_dim: int, action_space: gym.spaces.Space, hops: int, net: NetworkConfig) -> None:
        super().__init__(net)
        self.action_space = action_space
        layout = action_layout(action_space)
        self.discrete, out_dim = layout.discrete, layout.dim
        if not self.discrete:
            self.register_buffer("centre", layout.centre)
            self.register_buffer("half_range", layout.half_range)
            self.log_std = nn.Parameter(torch.full((out_dim,), math.log(0.5)))
        self.net = khop_network(obs_dim + self.extra_dim, out_dim, hops, net)
        if self.discrete:  # near-uniform initial policy
            nn.init.orthogonal_(self.net.out.weight, gain=0.01)
            nn.init.zeros_(self.net.out.bias)

    def distribution(self, obs: torch.Tensor, edge_index: torch.Tensor,
                     action_mask: torch.Tensor | None = None) -> Distribution:
        """Per-node action distribution; ``action_mask: [N, num_actions]`` bool, True = allowed."""
        out = self.outputs(obs, edge_index)
        if self.discrete:
            return self.categorical(out, action_mask)
        mean = self.centre + self.half_range * torch.tanh(out)
        return Normal(mean, self.half_range * self.log_std.exp(), validate_args=False)

    @staticmethod
    def categorical(logits: torch.Tensor, action_mask: torch.Tensor | None = None) -> Categorical:
        """The distribution of ``logits: [N, num_actions]``; actions masked off (False) get no mass."""
        if action_mask is not None:
            logits = logits.masked_fill(~action_mask, MASKED_LOGIT)
        return Categorical(logits=logits, validate_args=False)

    def outputs(self, obs: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``[N, out]`` logits (discrete) or pre-squash means (Gaussian) of each node."""
        return self.net(self.features(obs, edge_index), edge_index)

    def log_prob(self, dist: Distribution, actions: torch.Tensor) -> torch.Tensor:
        """``[N]`` log-probabilities (summed over action dimensions for Gaussians)."""
        logp = dist.log_prob(actions)
        return logp if self.discrete else logp.sum(-1)

    def entropy(self, dist: Distribution) -> torch.Tensor:
        entropy = dist.entropy()
        return entropy if self.discrete else entropy.sum(-1)

    def act(self, obs: torch.Tensor, edge_index: torch.Tensor, deterministic: bool = False,
            action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample (or take the mode of) an action per node; returns ``(actions, log_prob [N])``."""
        dist = self.distribution(obs, edge_index, action_mask)
        if deterministic:
            actions = dist.probs.argmax(-1) if self.discrete else dist.mean
        else:
            actions = dist.sample()
        return actions, self.log_prob(dist, actions)

    @torch.no_grad()
    def soften(self, temperature: float) -> None:
        """Divide the logits by ``temperature`` for good (the output layer's weights and bias): a wider
        policy that still prefers the same action in every state. Discrete actions only."""
        if not self.discrete:
            raise ValueError("soften applies to discrete (categorical) policies only")
        self.net.out.weight.div_(temperature)
        self.net.out.bias.div_(temperature)

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions as the environment takes them (Gaussian samples clipped into the bounds)."""
        if self.discrete:
            return actions
        return torch.maximum(torch.minimum(actions, self.centre + self.half_range), self.centre - self.half_range)


class GraphCritic(_GraphInput):
    """Extended critic V_i(s_{N_i^κ}): a κ-hop network with a scalar output per node."""

    def __init__(self, obs_dim: int, hops: int, net: NetworkConfig) -> None:
        super().__init__(net)
        self.net = khop_network(obs_dim + self.extra_dim, 1, hops, net)

    def forward(self, obs: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """``[N]`` values; ``batch`` is unused (the value is local)."""
        return self.net(self.features(obs, edge_index), edge_index).squeeze(-1)


class CentralCritic(_GraphInput):
    """Centralised critic V_i(s): node i's own encoding joined with the mean encoding of all agents.

    The pooled summary covers the whole graph of node i's copy (``batch``), so every agent's value
    is conditioned on the global state while the weights still fit any number of agents.
    """

    def __init__(self, obs_dim: int, net: NetworkConfig) -> None:
        super().__init__(net)
        width = net.hidden[0]
        act = ACTIVATIONS[net.activation]
        self.encoder = nn.Sequential(nn.Linear(obs_dim + self.extra_dim, width), act(), nn.Linear(width, width), act())
        self.head = khop_network(2 * width, 1, 0, net)

    def forward(self, obs: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.features(obs, edge_index))
        pooled = global_mean_pool(h, batch)[batch]
        return self.head(torch.cat([h, pooled], dim=-1), edge_index).squeeze(-1)
