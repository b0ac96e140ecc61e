"""Networks for traffic signals of any shape: movements as a set, phases scored by competition.

A signalised junction is read as the set of its *movements* (signal links: an incoming lane to an
outgoing lane). Each movement is described by its incoming lane's observed features and, where a
neighbouring light observes the outgoing lane, that lane's features too (so the network sees what max-
pressure sees: queues upstream and downstream). A shared MLP embeds every movement; a phase is scored
from the movements it serves green, pooled (their mean, or with ``phase_pooling: sum`` their total over
the junction's mean per phase, so a phase serving more movements weighs more, as in max-pressure's
sums), and the junction's context, the mean of all its movements passed through κ message-passing layers
(phase competition, as in FRAP / MPLight). No weight depends on the number of lanes, links or phases, so
one set of weights drives junctions with 2 to 8 phases and any lane count, on any network.

:class:`~gdmpo.graph.signals.SignalStructure` holds a network's static layout (which lane each movement starts from and
ends on, which movements each phase serves); the environment builds it, the networks are *bound*
to it (it is not part of their weights) and use it for every copy of the graph in a batch.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from gdmpo.config import NetworkConfig
from gdmpo.graph.signals import SignalStructure  # the layout the networks bind to (re-exported here)
from gdmpo.nn.heads import GraphPolicy, khop_network
from gdmpo.nn.message_passing import ACTIVATIONS


class MovementEncoder(nn.Module):
    """Embeds every real movement of every node and pools them into a junction summary.

    Shapes: ``obs: [N, L·f]`` (feature-major: all lanes' first feature, then the second, ...), ``N = B n``
    → ``(movements [B R, h], summary [N, h])``, movements copy by copy in the order of
    :meth:`SignalStructure.real_movements`.
    """

    def __init__(self, lane_features: int, width: int, activation: str) -> None:
        super().__init__()
        act = ACTIVATIONS[activation]
        self.lane_features = lane_features
        self.embed = nn.Sequential(nn.Linear(2 * lane_features + 1, width), act(), nn.Linear(width, width), act())
        self.structure: SignalStructure | None = None

    def bind(self, structure: SignalStructure) -> None:
        self.structure = structure

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(self.features(obs), obs.size(0))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B R, 2f + 1]``: each movement's incoming lane features, outgoing lane features (zeros where
        no light observes that lane) and a 1/0 flag for an observed outgoing lane."""
        s = self.structure
        if s is None:
            raise RuntimeError("a signal network must be bound to its environment's SignalStructure first")
        big_n, n, lanes, f = obs.size(0), s.num_agents, s.lanes, self.lane_features
        if big_n % n or obs.size(1) != lanes * f:
            raise ValueError(f"signal network bound to {n} lights x {lanes} lanes x {f} features got obs "
                             f"{tuple(obs.shape)}")
        copies, real = big_n // n, s.real_movements(obs.device)
        node = (torch.arange(copies, device=obs.device) * n)[:, None] + real["agent"]  # [B, R]
        observed = real["out_node"] >= 0
        in_rows = node * lanes + real["in_lane"]
        out_rows = torch.where(observed, (node - real["agent"] + real["out_node"]) * lanes + real["out_lane"],
                               big_n * lanes)
        lane_rows = obs.reshape(big_n, f, lanes).transpose(1, 2).reshape(big_n * lanes, f)
        lane_rows = torch.cat([lane_rows, lane_rows.new_zeros(1, f)])  # a zero row for unobserved lanes
        flag = observed.to(obs.dtype).expand(copies, -1)[..., None]
        features = torch.cat([lane_rows[in_rows], lane_rows[out_rows], flag], dim=-1)  # [B, R, 2f + 1]
        return features.reshape(-1, 2 * f + 1)

    def encode(self, features: torch.Tensor, big_n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Movement features of ``N = B n`` lights → ``(movements [B R, h], summary [N, h])``."""
        real = self.structure.real_movements(features.device)
        copies = big_n // self.structure.num_agents
        movements = self.embed(features)  # [B R, h]
        node = (torch.arange(copies, device=features.device) * self.structure.num_agents)[:, None] + real["agent"]
        total = movements.new_zeros(big_n, movements.size(1)).index_add_(0, node.reshape(-1), movements)
        summary = total / real["movement_count"].to(movements.dtype).repeat(copies)[:, None]
        return movements, summary

    def pressure(self, features: torch.Tensor) -> torch.Tensor:
        """``[B R]`` each movement's pressure: its incoming lane's first feature (vehicles queued near the
        stop line) minus its outgoing lane's (0 where unobserved), max-pressure's per-link term."""
        return features[:, 0] - features[:, self.lane_features]


class PhaseCompetitionPolicy(GraphPolicy):
    """π(phase_i | s_{N_i^κ}) for traffic lights: every phase scored from the movements it serves.

    ``logit(p) = score([mean of phase p's green movement embeddings, context_i])`` where ``context_i``
    is the junction summary after ``hops`` message-passing layers; with ``pressure_prior`` plus
    ``w · prior(p)``, ``w`` learned from that initial value and ``prior`` a hand-written controller's score
    of the phase (``prior_score``: max-pressure's pressure, or greedy's wave), so the policy starts as a
    soft copy of that controller.
    Weights: the movement MLP, the κ-hop context network, the scorer (and ``w``), none sized by lanes
    or phases.
    """

    def __init__(self, lane_features: int, action_space: gym.spaces.Space, hops: int, net: NetworkConfig) -> None:
        nn.Module.__init__(self)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError("a phase-competition policy needs discrete actions (phases)")
        self.use_degree, self.action_space, self.discrete = False, action_space, True
        width = net.hidden[0]
        act = ACTIVATIONS[net.activation]
        self.movements = MovementEncoder(lane_features, width, net.activation)
        self.pooling = net.phase_pooling
        self.context = khop_network(width, width, hops, net)
        self.score = nn.Sequential(nn.Linear(2 * width, width), act(), nn.Linear(width, 1))
        nn.init.orthogonal_(self.score[-1].weight, gain=0.01)  # near-uniform initial policy
        nn.init.zeros_(self.score[-1].bias)
        prior = net.pressure_prior  # starts as a soft max-pressure (or greedy) controller
        self.pressure_weight = None if prior is None else nn.Parameter(torch.tensor(float(prior)))
        self.prior_score = net.prior_score

    def bind(self, structure: SignalStructure) -> None:
        self.movements.bind(structure)

    def outputs(self, obs: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``[N, P]`` phase scores (``P``: the bound network's largest phase count; 0 on padded phases,
        which :meth:`GraphPolicy.distribution` masks with the environment's action mask)."""
        features = self.movements.features(obs)
        movements, summary = self.movements.encode(features, obs.size(0))
        context = self.context(summary, edge_index)  # [N, h]
        structure = self.movements.structure
        n, phases, real = structure.num_agents, structure.num_phases, structure.real_movements(obs.device)
        copies, width = obs.size(0) // n, movements.size(1)
        served = self.serve(movements, copies)  # [B Q, h]
        # score([served, context]): the first layer split in two, so the context's half runs once per light
        first, act, last = self.score
        from_context = nn.functional.linear(context, first.weight[:, width:])  # [N, h]
        base = torch.arange(copies, device=obs.device)[:, None]
        owner = (base * n + real["phase_agent"]).reshape(-1)  # [B Q] in [N]
        hidden = nn.functional.linear(served, first.weight[:, :width], first.bias) + from_context[owner]
        scores = last(act(hidden)).squeeze(-1).float()  # [B Q]
        if self.pressure_weight is not None:
            scores = scores + self.pressure_weight * self.prior(features, copies).float()
        rows = (base * n * phases + real["phase_row"]).reshape(-1)  # [B Q] in [N P]
        return scores.new_zeros(obs.size(0) * phases).index_copy(0, rows, scores).reshape(obs.size(0), phases)

    def prior(self, features: torch.Tensor, copies: int) -> torch.Tensor:
        """``[B Q]`` the hand-written score of every real phase from the movement features ``[B R, 2f + 1]``:
        max-pressure's (its green movements' pressures summed) or greedy's (the wave feature of each
        incoming lane it gives green, each lane once)."""
        if self.prior_score == "pressure":
            pressure = self.movements.pressure(features)[:, None]  # [B R, 1]
            return self.serve(pressure, copies, pooling="total").squeeze(-1)
        real = self.movements.structure.real_movements(features.device)
        wave = features[:, 0].reshape(copies, -1)  # [B, R]: the incoming lane's wave
        pairs = wave[:, real["movement"]] * real["lane_share"].to(wave.dtype)  # [B, G]
        totals = wave.new_zeros(copies, real["phase_row"].numel()).index_add_(1, real["phase"], pairs)
        return totals.reshape(-1)

    @torch.no_grad()
    def soften(self, temperature: float) -> None:
        """Divide every phase score by ``temperature`` for good: the scorer's output layer and the
        pressure weight (the two terms of a logit). DMPO's hand-over to model-free updates uses it."""
        last = self.score[-1]
        last.weight.div_(temperature)
        last.bias.div_(temperature)
        if self.pressure_weight is not None:
            self.pressure_weight.div_(temperature)

    def serve(self, movements: torch.Tensor, copies: int, pooling: str | None = None) -> torch.Tensor:
        """``[B R, h]`` per-movement values → ``[B Q, h]``: each real phase's green movements pooled
        (``pooling``, default the network's ``phase_pooling``): by their mean, their total over the
        junction's mean green count per phase (``sum``: the phases of one junction compare totals as
        max-pressure does), or their plain ``total``."""
        real = self.movements.structure.real_movements(movements.device)
        count, num_real = real["agent"].numel(), real["phase_row"].numel()
        base = torch.arange(copies, device=movements.device)[:, None]
        targets = (base * num_real + real["phase"]).reshape(-1)  # [B G] in [B Q]
        sources = (base * count + real["movement"]).reshape(-1)  # [B G] in [B R]
        served = movements.new_zeros(copies * num_real, movements.size(1)).index_add_(0, targets, movements[sources])
        pooling = pooling or self.pooling
        if pooling == "total":
            return served
        divisor = real["green_count" if pooling == "mean" else "mean_green_count"]
        return served / divisor.to(served.dtype).repeat(copies)[:, None]


class MovementCritic(nn.Module):
    """V_i(s_{N_i^κ}) for traffic lights: the junction summary of its movements through κ hops."""

    def __init__(self, lane_features: int, hops: int, net: NetworkConfig) -> None:
        super().__init__()
        width = net.hidden[0]
        self.movements = MovementEncoder(lane_features, width, net.activation)
        self.net = khop_network(width, 1, hops, net)

    def bind(self, structure: SignalStructure) -> None:
        self.movements.bind(structure)

    def forward(self, obs: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """``[N]`` values (``batch`` unused: the value is local)."""
        return self.net(self.movements(obs)[1], edge_index).squeeze(-1)
