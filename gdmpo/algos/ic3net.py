"""IC3Net (Singh et al., 2019) on the communication graph: LSTM agents with a learned broadcast gate.

At step t agent i holds the LSTM state ``(h_i, c_i)`` of step t − 1 and the gate ``g_i ∈ {0, 1}`` it
chose then. Its input is its observation, encoded, joined with the mean over its graph neighbours j
of ``g_j h_j``: an agent whose gate was closed contributes zeros (it did not talk). The LSTM cell
gives ``h_i'``; an action head and a two-way gate head read it. The gate is sampled like an action
and trained by the same clipped PPO objective (the joint log-probability of action and gate).

The recurrent state travels with the observation: :class:`RecurrentCommEnv` appends
``[h, c, g]`` of the previous step to every agent's observation and resets it to zero when an
episode ends. A stored step therefore holds everything needed to recompute its action
distribution, and PPO, its minibatches and the rollout buffers work unchanged (gradients flow
through one LSTM step: truncated back-propagation of length 1). The critic is the extended critic
V_i(o_{N_i^κ}) of DPPO on the plain observations (:class:`PlainObservationCritic`): it learns
faster than one fed the unbounded LSTM cell states, and keeps the baselines' value functions alike.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

from gdmpo.config import NetworkConfig
from gdmpo.nn.heads import GraphPolicy


class MeanOfNeighbours(MessagePassing):
    """``out_i = mean_{j ∈ N(i)} x_j`` (zero for isolated nodes); takes an edge index or a sparse adj_t."""

    def __init__(self) -> None:
        super().__init__(aggr="mean")

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.propagate(edge_index, x=x)

    def message_and_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return spmm(adj_t, x, reduce="mean")


class ActionAndGate:
    """The joint distribution of an agent's environment action and its broadcast gate."""

    def __init__(self, action: Distribution, gate: Categorical) -> None:
        self.action, self.gate = action, gate


class IC3NetPolicy(GraphPolicy):
    """π(a_i, g_i | o_i, h_i, c_i, mean_j g_j h_j) with an LSTM cell; weights shared by all agents.

    Observations are :class:`RecurrentCommEnv`'s ``[o, h, c, g]`` rows. Actions are the env action
    with the gate appended as the last entry: ``[N, 2]`` (discrete) or ``[N, a + 1]`` (continuous).
    The action head is the :class:`GraphPolicy` head (``policy_net`` with κ = 0) on top of ``h'``.
    """

    def __init__(self, obs_dim: int, action_space: gym.spaces.Space, hidden: int, head: NetworkConfig) -> None:
        super().__init__(hidden, action_space, 0, head)
        self.raw_obs_dim, self.hidden = obs_dim, hidden
        self.encoder = nn.Linear(obs_dim, hidden)
        self.lstm = nn.LSTMCell(2 * hidden, hidden)
        self.gate_head = nn.Linear(hidden, 2)
        self.neighbours = MeanOfNeighbours()

    def recur(self, obs: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One LSTM step from augmented observations ``[N, d + 2H + 1]`` → ``(h', c')``, each ``[N, H]``."""
        d, width = self.raw_obs_dim, self.hidden
        x, h, c, gate = obs[:, :d], obs[:, d:d + width], obs[:, d + width:d + 2 * width], obs[:, -1:]
        message = self.neighbours(gate * h, edge_index)  # closed gates send nothing
        return self.lstm(torch.cat([torch.tanh(self.encoder(x)), message], dim=-1), (h, c))

    def distribution(self, obs: torch.Tensor, edge_index: torch.Tensor,
                     action_mask: torch.Tensor | None = None) -> ActionAndGate:
        h, _ = self.recur(obs, edge_index)
        return ActionAndGate(super().distribution(h, edge_index, action_mask),
                             Categorical(logits=self.gate_head(h).float(), validate_args=False))

    def _split(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        env_actions = actions[..., 0].long() if self.discrete else actions[..., :-1]
        return env_actions, actions[..., -1].long()

    def log_prob(self, dist: ActionAndGate, actions: torch.Tensor) -> torch.Tensor:
        env_actions, gate = self._split(actions)
        return super().log_prob(dist.action, env_actions) + dist.gate.log_prob(gate)

    def entropy(self, dist: ActionAndGate) -> torch.Tensor:
        return super().entropy(dist.action) + dist.gate.entropy()

    def act(self, obs: torch.Tensor, edge_index: torch.Tensor, deterministic: bool = False,
            action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self.distribution(obs, edge_index, action_mask)
        if deterministic:
            env_actions = dist.action.probs.argmax(-1) if self.discrete else dist.action.mean
            gate = dist.gate.probs.argmax(-1)
        else:
            env_actions, gate = dist.action.sample(), dist.gate.sample()
        joined = torch.cat([env_actions.unsqueeze(-1) if self.discrete else env_actions,
                            gate.unsqueeze(-1).to(env_actions.dtype)], dim=-1)
        return joined, self.log_prob(dist, joined)

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions for :class:`RecurrentCommEnv`: the env action (clipped) with the gate kept last."""
        if self.discrete:
            return actions
        env_actions = super().to_env(actions[..., :-1])
        return torch.cat([env_actions, actions[..., -1:]], dim=-1)


class PlainObservationCritic(nn.Module):
    """A critic that reads only the environment's part of :class:`RecurrentCommEnv` observations."""

    def __init__(self, critic: nn.Module, obs_dim: int) -> None:
        super().__init__()
        self.critic, self.obs_dim = critic, obs_dim

    def forward(self, obs: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return self.critic(obs[:, :self.obs_dim], edge_index, batch)


class RecurrentCommEnv:
    """Wraps a networked env so each observation carries the agent's recurrent state ``[h, c, g]``.

    Stepping takes the policy's joint actions (env action + gate), advances every agent's LSTM with
    the bound policy, steps the inner environment, and zeroes the state of copies whose episode
    ended (``info["final_obs"]`` keeps the state reached, for bootstrapping). Everything else
    (``graph``, ``action_mask``, ``episode_traffic``, ...) is the inner environment's.
    """

    def __init__(self, env: Any, hidden: int) -> None:
        self.env = env
        self.memory_dim = 2 * hidden + 1  # [h, c, g] per agent
        self.raw_obs_dim = env.obs_dim
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (env.obs_dim + self.memory_dim,), dtype=np.float32)
        self.policy: IC3NetPolicy | None = None
        self._graph_of = None
        self._obs: torch.Tensor | None = None
        self._gate_sum, self._gate_steps = 0.0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["env"], name)

    @property
    def obs_dim(self) -> int:
        return int(self.observation_space.shape[0])

    @property
    def agent_interface(self) -> dict[str, Any]:
        """The inner environment's, with the observation widened by the recurrent state."""
        return {**self.env.agent_interface, "obs_dim": self.obs_dim}

    def bind(self, policy: IC3NetPolicy, graph_of) -> None:
        """Use ``policy``'s LSTM to advance the state; ``graph_of(B)`` gives the batched graph."""
        self.policy, self._graph_of = policy, graph_of

    def reset(self, seed: int | None = None) -> torch.Tensor:
        obs = self.env.reset(seed=seed)
        self._obs = torch.cat([obs, obs.new_zeros(*obs.shape[:2], self.memory_dim)], dim=-1)
        return self._obs

    @torch.no_grad()
    def step(self, actions: torch.Tensor):
        if self.policy is None:
            raise RuntimeError("RecurrentCommEnv.step before bind(policy, graph_of)")
        if self._obs is None:
            raise RuntimeError("RecurrentCommEnv.step() called before reset()")
        b, n = self.env.num_envs, self.env.num_agents
        if actions.dim() != 3 or tuple(actions.shape[:2]) != (b, n):
            raise ValueError(f"IC3Net actions must be [num_envs, num_agents, action + gate] = [{b}, {n}, ·], "
                             f"got {list(actions.shape)}")
        gate = actions[..., -1:].to(self._obs.dtype)
        env_actions = actions[..., 0] if self.policy.discrete else actions[..., :-1]
        adj, _ = self._graph_of(b)
        h, c = self.policy.recur(self._obs.reshape(b * n, -1), adj)
        memory = torch.cat([h.reshape(b, n, -1), c.reshape(b, n, -1), gate], dim=-1)
        obs, reward, terminated, truncated, info = self.env.step(env_actions)
        done = info["done"]
        info["final_obs"] = torch.cat([info["final_obs"], memory], dim=-1)
        memory = memory.masked_fill(done[:, None, None], 0.0)
        self._obs = torch.cat([obs, memory], dim=-1)
        self._gate_sum += float(gate.mean())
        self._gate_steps += 1
        return self._obs, reward, terminated, truncated, info

    def pop_comm_fraction(self) -> float:
        """Mean share of agents whose gate was open per step since the last call (NaN if no step)."""
        value = self._gate_sum / self._gate_steps if self._gate_steps else float("nan")
        self._gate_sum, self._gate_steps = 0.0, 0
        return value

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> "RecurrentCommEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------- IC3Net's departures from the
# shared recipe, named by its entry in gdmpo.algos.registry
def recurrent_env(config: Any, env: Any) -> "RecurrentCommEnv":
    """The environment with each agent's recurrent state appended (once: a wrapped one is kept)."""
    return env if isinstance(env, RecurrentCommEnv) else RecurrentCommEnv(env, config.ic3net.hidden)


def policy_for(config: Any, env: Any) -> IC3NetPolicy:
    if not isinstance(env, RecurrentCommEnv):
        raise TypeError("ic3net needs the environment from gdmpo.algos.prepare_env(config, env)")
    return IC3NetPolicy(env.raw_obs_dim, env.action_space, config.ic3net.hidden, config.policy_net)


def bind_recurrence(agent: Any, env: Any) -> None:
    """Let the environment advance the LSTM state with the agent's policy."""
    if isinstance(env, RecurrentCommEnv):
        env.bind(agent.policy, agent.graph_of)
