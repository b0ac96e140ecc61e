"""The local dynamics model of DMPO: p(s'_i, r_i | s_{N_i^κ}, a_i), one network shared by all agents.

States pass through a κ_p-hop message-passing network, so agent i's embedding depends on
``s_{N_i^κ}`` only; its own action is joined afterwards (paper eq. 4: the model sees a_i, not the
neighbours' actions). The head predicts the *change* of the local state and the reward (and a
termination logit where the environment has terminal states), all in running-normalised units.

Rewards can span six orders of magnitude in one task (CACC: squared errors near 0, a collision
−1000 × the steps left), and a plain normalisation then sizes its unit by the rare huge values, so
every ordinary step is predicted to within hundreds. With ``reward_transform="symlog"`` (DreamerV3's
``sign(r) log(1 + |r|)``) the model fits symlog rewards and inverts the prediction, which keeps both
ends accurate in relative terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from gdmpo.config import NetworkConfig
from gdmpo.nn.message_passing import ACTIVATIONS, KHopNetwork
from gdmpo.nn.normalization import RunningMeanStd
from gdmpo.nn.spaces import action_layout


@dataclass
class Prediction:
    """One model step for ``N`` nodes: ``next_obs [N, d]``, ``reward [N]``, ``done_prob [N]`` or None."""

    next_obs: torch.Tensor
    reward: torch.Tensor
    done_prob: torch.Tensor | None


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class LocalDynamicsModel(nn.Module):
    """Predicts each agent's next local state and reward from its κ-hop states and its own action.

    Args:
        obs_dim: local state size d.
        action_space: one agent's action space (Discrete → one-hot, Box → scaled to [-1, 1]).
        hops: κ_p.
        net: widths (``hidden[0]`` for the graph layers and the action join) and activation.
        predict_done: also predict termination (environments with terminal states).
        reward_transform: ``"none"`` or ``"symlog"`` (fit ``symlog(r)``; see the module doc).
    """

    def __init__(self, obs_dim: int, action_space: gym.spaces.Space, hops: int, net: NetworkConfig,
                 predict_done: bool = False, reward_transform: str = "none") -> None:
        super().__init__()
        if reward_transform not in ("none", "symlog"):
            raise ValueError(f"reward_transform must be 'none' or 'symlog', got {reward_transform!r}")
        self.obs_dim, self.predict_done = obs_dim, predict_done
        self.symlog_rewards = reward_transform == "symlog"
        layout = action_layout(action_space)
        self.discrete, self.action_dim = layout.discrete, layout.dim
        if not self.discrete:
            self.register_buffer("action_centre", layout.centre)
            self.register_buffer("action_half_range", layout.half_range)
        width = net.hidden[0]
        act = ACTIVATIONS[net.activation]
        self.state_net = KHopNetwork(obs_dim, None, hops, net.hidden[:1], net.activation, net.aggr,
                                     net.residual, net.layer_norm)
        layers: list[nn.Module] = []
        widths = [width + self.action_dim, *net.hidden[1:]]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), act()]
        layers.append(nn.Linear(widths[-1], obs_dim + 1 + int(predict_done)))
        self.head = nn.Sequential(*layers)
        self.obs_norm = RunningMeanStd((obs_dim,))
        self.delta_norm = RunningMeanStd((obs_dim,))
        self.reward_norm = RunningMeanStd(())

    def encode_action(self, actions: torch.Tensor) -> torch.Tensor:
        """``[N]`` indices → one-hot ``[N, A]``; ``[N, a]`` continuous → scaled to [-1, 1]."""
        if self.discrete:
            return F.one_hot(actions.long(), self.action_dim).float()
        return (actions - self.action_centre) / self.action_half_range

    def _reward_target(self, rewards: torch.Tensor) -> torch.Tensor:
        return symlog(rewards) if self.symlog_rewards else rewards

    def update_normalizers(self, obs: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor) -> None:
        """Fold a batch of real transitions into the input and target statistics."""
        self.obs_norm.update(obs)
        self.delta_norm.update(next_obs - obs)
        self.reward_norm.update(self._reward_target(rewards))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Raw head output ``[N, d + 1 (+ 1)]``: normalised Δs, normalised reward (, done logit)."""
        h = self.state_net(self.obs_norm.normalize(obs), edge_index)
        return self.head(torch.cat([h, self.encode_action(actions)], dim=-1))

    @torch.no_grad()
    def predict(self, obs: torch.Tensor, actions: torch.Tensor, edge_index: torch.Tensor) -> Prediction:
        """Next local states, rewards (and termination probabilities) in environment units."""
        out = self(obs, actions, edge_index)
        d = self.obs_dim
        next_obs = obs + self.delta_norm.denormalize(out[:, :d])
        reward = self.reward_norm.denormalize(out[:, d])
        reward = symexp(reward) if self.symlog_rewards else reward
        done = torch.sigmoid(out[:, d + 1]) if self.predict_done else None
        return Prediction(next_obs, reward, done)

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor,
             edge_index: torch.Tensor, dones: torch.Tensor | None = None,
             reward_weight: float = 10.0) -> tuple[torch.Tensor, dict[str, float]]:
        """State MSE (eq. 11) + ``reward_weight`` × reward MSE (+ termination BCE), normalised units."""
        out = self(obs, actions, edge_index)
        d = self.obs_dim
        state_loss = F.mse_loss(out[:, :d], self.delta_norm.normalize(next_obs - obs))
        reward_loss = F.mse_loss(out[:, d], self.reward_norm.normalize(self._reward_target(rewards)))
        total = state_loss + reward_weight * reward_loss
        parts = {"state_loss": state_loss.item(), "reward_loss": reward_loss.item()}
        if self.predict_done:
            if dones is None:
                raise ValueError("this model predicts termination: pass dones")
            done_loss = F.binary_cross_entropy_with_logits(out[:, d + 1], dones.float())
            total = total + done_loss
            parts["done_loss"] = done_loss.item()
        return total, parts
