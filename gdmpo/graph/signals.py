"""The static signal layout of a road network: which lane each movement starts from and ends on, and
which movements each phase serves green.

The environment builds it from the graph of :func:`gdmpo.graph.from_sumo` (its ``lanes``, ``links`` and
``phases``); the movement networks of :mod:`gdmpo.nn.signals` are *bound* to it (it is not part of their
weights) and use it for every copy of the graph in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class SignalStructure:
    """The static layout of ``n`` lights with up to ``L`` observed lanes, ``M`` movements, ``P`` phases.

    ``in_lane [n, M]``: the incoming lane (index among the light's observed lanes) of each movement;
    ``out_node, out_lane [n, M]``: the light observing its outgoing lane and the lane's index there
    (-1 where no light observes it: the lane leaves the network or reaches an unsignalised junction);
    ``movement_mask [n, M]``: real movements; ``phase_movements [n, P, M]``: 1 where phase p shows
    movement m green. ``lanes`` is L, the lane count the observation is padded to.
    """

    lanes: int
    in_lane: torch.Tensor
    out_node: torch.Tensor
    out_lane: torch.Tensor
    movement_mask: torch.Tensor
    phase_movements: torch.Tensor

    @property
    def num_agents(self) -> int:
        return self.in_lane.size(0)

    @property
    def num_phases(self) -> int:
        return self.phase_movements.size(1)

    def real_movements(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The layout without padding, on ``device``: per real movement (``R`` of them, light by light)
        its ``agent``, ``in_lane``, ``out_node`` and ``out_lane``; per real phase (``Q``: phases serving
        a movement, every green phase of a programme) its ``phase_row`` ``agent · P + p`` and
        ``phase_agent``; per (phase, green movement) pair (``G``) its ``phase`` (index among the Q) and
        ``movement`` (index among the R); ``movement_count [n]``, ``green_count [Q]`` and
        ``mean_green_count [Q]`` (the phase's junction's mean green count over its real phases) and
        ``lane_share [G]``: 1 over the number of the phase's green movements from the pair's incoming lane
        (summed over a phase's pairs it counts each green lane once).
        Junctions differ in size, so padding can be most of ``[n, M]`` and ``[n, P]``: the networks
        compute on real movements and phases only."""
        key = str(device)
        cache = self.__dict__.setdefault("_real", {})
        if key not in cache:
            agent, slot = self.movement_mask.nonzero(as_tuple=True)
            per_phase = self.phase_movements.sum(-1)  # [n, P]; 0 on padded phases
            phase_row = (per_phase > 0).reshape(-1).nonzero().squeeze(1)  # [Q] in [n P]
            compact = torch.full((per_phase.numel(),), -1, dtype=torch.long)
            compact[phase_row] = torch.arange(phase_row.numel())
            green = self.phase_movements[agent, :, slot] > 0  # [R, P]
            movement, phase = green.nonzero(as_tuple=True)
            pair_phase = compact[agent[movement] * self.num_phases + phase]  # [G] in [Q]
            same_lane = pair_phase * self.lanes + self.in_lane[agent, slot][movement]  # (phase, incoming lane)
            _, lane_pair, pairs_per_lane = torch.unique(same_lane, return_inverse=True, return_counts=True)
            real_phases = (per_phase > 0).sum(1, keepdim=True).clamp(min=1)
            mean_green = (per_phase.sum(1, keepdim=True) / real_phases).expand_as(per_phase).reshape(-1)
            cache[key] = {k: v.to(device) for k, v in {
                "agent": agent, "in_lane": self.in_lane[agent, slot], "out_node": self.out_node[agent, slot],
                "out_lane": self.out_lane[agent, slot], "phase_row": phase_row,
                "phase_agent": phase_row // self.num_phases, "phase": pair_phase,
                "movement": movement, "movement_count": self.movement_mask.sum(1).clamp(min=1).float(),
                "green_count": per_phase.reshape(-1)[phase_row], "mean_green_count": mean_green[phase_row],
                "lane_share": 1.0 / pairs_per_lane[lane_pair].float()}.items()}
        return cache[key]

    @classmethod
    def from_graph(cls, graph: Any, lanes: int) -> "SignalStructure":
        """From a graph of :func:`gdmpo.graph.from_sumo` (its ``lanes``, ``links`` and ``phases``)."""
        where = {lane: (i, k) for i, own in enumerate(graph.lanes) for k, lane in enumerate(own)}
        per_agent = []
        for i, (own, links) in enumerate(zip(graph.lanes, graph.links)):
            index = {lane: k for k, lane in enumerate(own)}
            real = [(m, a, b) for m, (a, b) in enumerate(links) if a in index]  # link position, in, out
            per_agent.append([(m, index[a], *where.get(b, (-1, -1))) for m, a, b in real])
        n = len(per_agent)
        width = max(len(moves) for moves in per_agent)
        phases = max(len(p) for p in graph.phases)
        in_lane = torch.zeros(n, width, dtype=torch.long)
        out_node = torch.full((n, width), -1, dtype=torch.long)
        out_lane = torch.full((n, width), -1, dtype=torch.long)
        mask = torch.zeros(n, width, dtype=torch.bool)
        green = torch.zeros(n, phases, width)
        for i, moves in enumerate(per_agent):
            for slot, (link, lane, node, lane_there) in enumerate(moves):
                in_lane[i, slot], out_node[i, slot], out_lane[i, slot], mask[i, slot] = lane, node, lane_there, True
                for p, state in enumerate(graph.phases[i]):
                    green[i, p, slot] = float(state[link] in "Gg")
        return cls(lanes, in_lane, out_node, out_lane, mask, green)
