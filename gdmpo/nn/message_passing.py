"""The κ-layer message-passing network shared by all agents.

Each :class:`NeighbourLayer` lets a node see its one-hop neighbours, so ``hops`` of them give agent
``i`` an output that depends exactly on the inputs of ``N_i^κ`` (its κ-hop neighbourhood) — the
locality every DMPO component is built on. Weights are shared across nodes, so a trained network
runs unchanged on graphs of any size, and a batch of ``B`` environments is simply a graph of ``B n``
nodes (``gdmpo.graph.batch_edge_index``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU}


class NeighbourLayer(MessagePassing):
    """One hop: ``x_i' = W_self x_i + W_nbr · aggr_{j ∈ N(i)} x_j``.

    Shapes: ``x: [num_nodes, in_dim]``, ``edge_index: [2, num_edges]`` → ``[num_nodes, out_dim]``.
    """

    def __init__(self, in_dim: int, out_dim: int, aggr: str = "mean") -> None:
        super().__init__(aggr=aggr)
        self.lin_self = nn.Linear(in_dim, out_dim)
        self.lin_neighbour = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.lin_self(x) + self.lin_neighbour(self.propagate(edge_index, x=x))

    def message(self, x_j: torch.Tensor) -> torch.Tensor:
        return x_j


class KHopNetwork(nn.Module):
    """``hops`` neighbour layers followed by an MLP; output of node i depends on ``N_i^hops`` only.

    Layout: ``x → Linear(in, hidden[0]) → act → [NeighbourLayer(hidden[0]) → act] × hops →
    MLP(hidden[1:]) → Linear(out)``. With ``hops = 0`` it is a per-node MLP.

    Args:
        in_dim: input features per node.
        out_dim: output features per node.
        hops: κ, the receptive field in hops.
        hidden: hidden widths; the graph layers use ``hidden[0]``.
        activation: ``tanh``, ``relu``, ``elu`` or ``silu``.
        aggr: neighbour aggregation, ``mean`` (degree-independent scale), ``sum`` or ``max``.
        residual: add each graph layer's input to its output.
        layer_norm: normalise after each graph layer.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hops: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        aggr: str = "mean",
        residual: bool = False,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if hops < 0:
            raise ValueError(f"hops must be >= 0, got {hops}")
        if not hidden:
            raise ValueError("hidden must name at least one width")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        act = ACTIVATIONS[activation]
        width = hidden[0]
        self.hops, self.residual = hops, residual
        self.encoder = nn.Sequential(nn.Linear(in_dim, width), act())
        self.layers = nn.ModuleList(NeighbourLayer(width, width, aggr) for _ in range(hops))
        self.norms = nn.ModuleList((nn.LayerNorm(width) if layer_norm else nn.Identity()) for _ in range(hops))
        self.act = act()
        head: list[nn.Module] = []
        for w_in, w_out in zip(hidden[:-1], hidden[1:]):
            head += [nn.Linear(w_in, w_out), act()]
        head.append(nn.Linear(hidden[-1], out_dim))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x: [num_nodes, in_dim]``, ``edge_index: [2, num_edges]`` → ``[num_nodes, out_dim]``."""
        h = self.encoder(x)
        for layer, norm in zip(self.layers, self.norms):
            out = self.act(norm(layer(h, edge_index)))
            h = h + out if self.residual else out
        return self.head(h)


def degree_feature(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``[num_nodes, 1]`` node degree / 4: a per-node feature that does not tie a network to one graph."""
    degree = torch.zeros(num_nodes, device=edge_index.device)
    degree.index_add_(0, edge_index[0], torch.ones(edge_index.size(1), device=edge_index.device))
    return (degree / 4.0).unsqueeze(-1)
